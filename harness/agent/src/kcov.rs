//! KCOV in the program's executor: which kernel basic blocks the program's own syscalls ran.
//!
//! Kernels built with `CONFIG_KCOV` (the debug fragment) expose `/sys/kernel/debug/kcov`. The
//! agent opens it once, asks for a trace buffer (`KCOV_INIT_TRACE`) and maps it ([`Buffer`]);
//! each program's child inherits both and enables `KCOV_TRACE_PC` for itself (allocating and
//! mapping the 8 MiB buffer per program cost 27 ms under TCG). When the child exits the kernel
//! disables it again (`kcov_task_exit()`), ready for the next child. Before each operation the
//! child resets the buffer's count, after it folds the PCs into hit counts. KCOV follows one task, so work done by kswapd, kworkers or
//! writeback is not seen (the kprobe counts in [`crate::coverage`] are global and cover it).
//! Each thread of a threaded section traces itself with its own buffer (KCOV is per task),
//! and its hits are folded into the executor's ([`Kcov::absorb`]) when the section joins:
//! a swapoff in thread a and a close in thread b are coverage like any other operation.
//! The PCs are reported as KCOV gives them (KASLR offset removed); the host keeps the ones in
//! mm/ and maps them into the fuzzer's counters.

use std::fs::{File, OpenOptions};
use std::num::NonZeroUsize;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::mount::{mount, MsFlags};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};
use rustc_hash::FxHashMap;
use shmemfuzz_core::protocol::{PcHits, MAX_KCOV_PCS};

const DEBUGFS: &str = "/sys/kernel/debug";
const KCOV_PATH: &str = "/sys/kernel/debug/kcov";
/// Entries in the trace buffer (8 bytes each): 8 MiB, enough for one operation's mm work.
const ENTRIES: usize = 1 << 20;
const KCOV_TRACE_PC: u64 = 0;

// include/uapi/linux/kcov.h. KCOV_INIT_TRACE is declared _IOR but takes its argument by
// value, hence the `_bad` forms with the computed request numbers.
nix::ioctl_write_int_bad!(
    kcov_init_trace,
    nix::request_code_read!(b'c', 1, std::mem::size_of::<libc::c_ulong>())
);
nix::ioctl_write_int_bad!(kcov_enable, nix::request_code_none!(b'c', 100));
nix::ioctl_write_int_bad!(kcov_disable, nix::request_code_none!(b'c', 101));

/// Mounts debugfs if needed (once, in the agent); whether the kernel has KCOV.
pub fn available() -> bool {
    if !std::path::Path::new(KCOV_PATH).exists() {
        let _ = std::fs::create_dir_all(DEBUGFS);
        let _ = mount(
            Some("debugfs"),
            DEBUGFS,
            Some("debugfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&str>,
        );
    }
    std::path::Path::new(KCOV_PATH).exists()
}

/// A KCOV descriptor with its trace buffer, initialised and mapped, enabled for no task.
#[derive(Debug)]
pub struct Buffer {
    file: File,
    area: NonNull<AtomicU64>,
}

// SAFETY: the mapping is only read and written through atomics, and the kernel writes it
// only for the task that enabled KCOV on it; sharing the reference across a section's threads
// (each of which traces into a buffer of its own) reads nothing from it.
unsafe impl Sync for Buffer {}
// SAFETY: as above; the mapping belongs to the process, not to a thread.
unsafe impl Send for Buffer {}

/// The buffer a tracer uses: its own (a section's thread) or the agent's (the child).
#[derive(Debug)]
enum Held<'a> {
    Own(Buffer),
    Shared(&'a Buffer),
}

/// KCOV enabled for the calling task.
#[derive(Debug)]
pub struct Kcov<'a> {
    buf: Held<'a>,
    /// Hit counts by PC (Fx hashing: a PC is no attacker's key, and under TCG SipHash over
    /// every traced PC cost more than the operations).
    hits: FxHashMap<u64, u32>,
}

impl Buffer {
    /// Opens KCOV and maps a trace buffer.
    pub fn open() -> Result<Buffer, String> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(KCOV_PATH)
            .map_err(|e| format!("opening {KCOV_PATH}: {e}"))?;
        let fd = file.as_raw_fd();
        // SAFETY: the request numbers are KCOV's and the argument is passed by value.
        unsafe { kcov_init_trace(fd, ENTRIES as libc::c_int) }
            .map_err(|e| format!("KCOV_INIT_TRACE: {e}"))?;
        let len = NonZeroUsize::new(ENTRIES * 8).ok_or("empty KCOV buffer")?;
        // SAFETY: a fresh shared mapping of the KCOV buffer, unmapped in Drop.
        let area = unsafe {
            mmap(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                &file,
                0,
            )
        }
        .map_err(|e| format!("mapping the KCOV buffer: {e}"))?;
        Ok(Buffer {
            file,
            area: area.cast(),
        })
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: the mapping made in open(), not used after this.
        let _ = unsafe { munmap(self.area.cast(), ENTRIES * 8) };
    }
}

impl Kcov<'static> {
    /// Opens, maps and enables KCOV for this task (a section's thread: KCOV is per task).
    pub fn start() -> Result<Kcov<'static>, String> {
        Kcov::enable(Held::Own(Buffer::open()?))
    }
}

impl<'a> Kcov<'a> {
    /// Enables the agent's buffer for this task (the program's child).
    pub fn start_on(buf: &'a Buffer) -> Result<Kcov<'a>, String> {
        Kcov::enable(Held::Shared(buf))
    }

    fn enable(buf: Held<'a>) -> Result<Kcov<'a>, String> {
        let fd = buf.get().file.as_raw_fd();
        // SAFETY: KCOV's request number, the mode passed by value; KCOV_TRACE_PC traces
        // this task from now on.
        unsafe { kcov_enable(fd, KCOV_TRACE_PC as libc::c_int) }
            .map_err(|e| format!("KCOV_ENABLE: {e}"))?;
        Ok(Kcov {
            buf,
            hits: FxHashMap::default(),
        })
    }

    fn entry(&self, i: usize) -> &AtomicU64 {
        // SAFETY: i < ENTRIES, inside the mapping, which lives as long as the buffer.
        unsafe { &*self.buf.get().area.as_ptr().add(i) }
    }

    /// Empties the buffer before an operation.
    pub fn reset(&mut self) {
        self.entry(0).store(0, Ordering::Relaxed);
    }

    /// Folds the PCs the operation traced into the hit counts.
    pub fn collect(&mut self) {
        let n = (self.entry(0).load(Ordering::Relaxed) as usize).min(ENTRIES - 1);
        for i in 1..=n {
            let pc = self.entry(i).load(Ordering::Relaxed);
            if self.hits.len() < MAX_KCOV_PCS || self.hits.contains_key(&pc) {
                let h = self.hits.entry(pc).or_insert(0);
                *h = h.saturating_add(1);
            }
        }
        self.reset();
    }

    /// Adds the hit counts another task traced (a section's thread) to these.
    pub fn absorb(&mut self, pcs: &[PcHits]) {
        for p in pcs {
            if self.hits.len() < MAX_KCOV_PCS || self.hits.contains_key(&p.pc) {
                let h = self.hits.entry(p.pc).or_insert(0);
                *h = h.saturating_add(p.hits);
            }
        }
    }

    /// Stops tracing; the hit counts, by PC.
    pub fn finish(mut self) -> Vec<PcHits> {
        // SAFETY: disabling KCOV for this task, on its fd.
        let _ = unsafe { kcov_disable(self.buf.get().file.as_raw_fd(), 0) };
        let mut pcs: Vec<PcHits> = self
            .hits
            .drain()
            .map(|(pc, hits)| PcHits { pc, hits })
            .collect();
        pcs.sort_by_key(|p| p.pc);
        pcs
    }
}

impl Held<'_> {
    fn get(&self) -> &Buffer {
        match self {
            Held::Own(b) => b,
            Held::Shared(b) => b,
        }
    }
}
