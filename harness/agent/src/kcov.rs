//! KCOV in the program's executor: which kernel basic blocks the program's own syscalls ran.
//!
//! Kernels built with `CONFIG_KCOV` (the debug fragment) expose `/sys/kernel/debug/kcov`. The
//! executor opens it, asks for a trace buffer (`KCOV_INIT_TRACE`), maps it and enables
//! `KCOV_TRACE_PC` for itself; before each operation it resets the buffer's count, after it
//! folds the PCs into hit counts. KCOV follows one task, so work done by kswapd, kworkers or
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

/// KCOV enabled for the calling task.
#[derive(Debug)]
pub struct Kcov {
    _file: File,
    area: NonNull<AtomicU64>,
    /// Hit counts by PC (Fx hashing: a PC is no attacker's key, and under TCG SipHash over
    /// every traced PC cost more than the operations).
    hits: FxHashMap<u64, u32>,
}

impl Kcov {
    /// Opens, maps and enables KCOV for this task.
    pub fn start() -> Result<Kcov, String> {
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
        // SAFETY: as above; KCOV_TRACE_PC traces this task from now on.
        unsafe { kcov_enable(fd, KCOV_TRACE_PC as libc::c_int) }
            .map_err(|e| format!("KCOV_ENABLE: {e}"))?;
        Ok(Kcov {
            _file: file,
            area: area.cast(),
            hits: FxHashMap::default(),
        })
    }

    fn entry(&self, i: usize) -> &AtomicU64 {
        // SAFETY: i < ENTRIES, inside the mapping, which lives as long as self.
        unsafe { &*self.area.as_ptr().add(i) }
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
        // SAFETY: disabling KCOV for this task, on its own fd.
        let _ = unsafe { kcov_disable(self._file.as_raw_fd(), 0) };
        let mut pcs: Vec<PcHits> = self
            .hits
            .drain()
            .map(|(pc, hits)| PcHits { pc, hits })
            .collect();
        pcs.sort_by_key(|p| p.pc);
        pcs
    }
}

impl Drop for Kcov {
    fn drop(&mut self) {
        // SAFETY: the mapping made in start(), not used after this.
        let _ = unsafe { munmap(self.area.cast(), ENTRIES * 8) };
    }
}
