//! The record channel: how the program's child reports each operation to the host.
//!
//! A record goes **straight to the host's port** from the child, in one `write(2)`: no pipe
//! to the supervisor, no wake-up of the supervisor, no second encoding (that path cost about
//! 0.3 ms a record under TCG, most of it context switches). What the supervisor still needs
//! from the records, it reads from a page the two processes share ([`Shared`]): when the last
//! record was written (its per-operation deadline runs from there) and which operation is in
//! flight (a hang is that operation's).
//!
//! Two things keep the byte stream to the host whole:
//! - a frame that fits one write of the virtio console ([`DIRECT_MAX`]) leaves in one
//!   `write(2)`, which the driver takes whole or not at all, so a signal that kills the child
//!   (the supervisor's deadline, the OOM killer, a crash in another thread of a section)
//!   cannot cut it; a larger frame goes through the supervisor's pipe, which forwards it and
//!   acknowledges, while the child holds the channel;
//! - before the supervisor kills the child at its deadline it raises `closing` and waits for
//!   any write in progress to end: the child raises `writing` before it looks at `closing`,
//!   so one of the two always sees the other (both sequentially consistent).

use std::fs::File;
use std::io::{Read, Write};
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use nix::sys::mman::{mmap_anonymous, munmap, MapFlags, ProtFlags};
use shmemfuzz_core::program::threads::Progress;
use shmemfuzz_core::protocol::{encode_frame, AgentMsg, OpRecord};

/// The largest frame written straight to the port: `port_fops_write()` in
/// drivers/char/virtio_console.c takes at most 32 KiB a call, whole or nothing.
pub const DIRECT_MAX: usize = 32 * 1024;

/// How long the supervisor waits for a record in progress before it kills the child anyway
/// (a port the host does not read any more).
const WRITE_GRACE: Duration = Duration::from_secs(10);

/// What the child tells the supervisor about its records (in a page both map).
#[derive(Default)]
pub struct Shared {
    /// Microseconds from the fork to the last record written (0: none yet).
    last_record_us: AtomicU64,
    /// The operation in flight after the records so far ([`Progress::in_flight`]).
    in_flight: AtomicU32,
    /// A record is being written to the port.
    writing: AtomicU32,
    /// The supervisor is about to kill the child: no record may start.
    closing: AtomicU32,
}

/// A page shared with the child across `fork`, holding a [`Shared`].
pub struct SharedPage {
    ptr: NonNull<Shared>,
}

impl SharedPage {
    pub fn new() -> Result<Self, String> {
        let len = NonZeroUsize::new(4096).ok_or("page size")?;
        // SAFETY: a fresh anonymous mapping nothing else aliases; zeroed by the kernel, which
        // is `Shared::default()` (atomics of zero).
        let ptr = unsafe {
            mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .map_err(|e| format!("mapping the record channel's shared page: {e}"))?;
        Ok(SharedPage { ptr: ptr.cast() })
    }

    pub fn get(&self) -> &Shared {
        // SAFETY: the mapping lives as long as `self` and holds a zero-initialised Shared,
        // whose fields are atomics (shared across processes without further synchronisation).
        unsafe { self.ptr.as_ref() }
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        let _ = unsafe { munmap(self.ptr.cast(), 4096) };
    }
}

/// The child's end: records to the port (or, when too large, through the supervisor).
pub struct Sink<'a> {
    pub port: &'a File,
    pub pipe: &'a File,
    pub ack: &'a File,
    pub shared: &'a Shared,
    pub progress: Progress,
    pub forked_at: Instant,
}

impl Sink<'_> {
    /// Sends `rec` to the host, then tells the supervisor.
    pub fn record(&mut self, rec: OpRecord) -> Result<(), String> {
        let index = rec.index;
        let frame =
            encode_frame(&AgentMsg::Op(rec)).map_err(|e| format!("encoding op {index}: {e}"))?;
        if frame.len() <= DIRECT_MAX {
            self.shared.writing.store(1, SeqCst);
            let sent = if self.shared.closing.load(SeqCst) != 0 {
                Err("the supervisor is ending the program".to_string())
            } else {
                self.port
                    .write_all(&frame)
                    .map_err(|e| format!("reporting op {index}: {e}"))
            };
            self.shared.writing.store(0, SeqCst);
            sent?;
        } else {
            let mut pipe = self.pipe;
            pipe.write_all(&frame)
                .map_err(|e| format!("handing op {index} to the supervisor: {e}"))?;
            let mut byte = [0u8; 1];
            let mut ack = self.ack;
            ack.read_exact(&mut byte)
                .map_err(|e| format!("waiting for op {index} to be forwarded: {e}"))?;
        }
        let _ = self.progress.accept(index);
        let in_flight = self.progress.in_flight().unwrap_or(index + 1);
        self.shared.in_flight.store(in_flight, SeqCst);
        let us = self.forked_at.elapsed().as_micros().max(1) as u64;
        self.shared.last_record_us.store(us, SeqCst);
        Ok(())
    }
}

impl Shared {
    /// When the last record was written (`forked_at` before any).
    pub fn last_record(&self, forked_at: Instant) -> Instant {
        forked_at + Duration::from_micros(self.last_record_us.load(SeqCst))
    }

    /// The operation in flight after the records written so far.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(SeqCst)
    }

    /// Stops new records and waits (bounded) for one in progress to end: after this the
    /// child can be killed without cutting a frame.
    pub fn close(&self) {
        self.closing.store(1, SeqCst);
        let start = Instant::now();
        while self.writing.load(SeqCst) != 0 && start.elapsed() < WRITE_GRACE {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
