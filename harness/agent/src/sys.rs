//! Small helpers over /proc and /sys: reading and writing one-line files, the kernel log,
//! and the accounting numbers teardown compares.

use std::fs;
use std::io::Write;

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use procfs::FromRead;
use shmemfuzz_core::protocol::Accounting;

/// Writes a line to the kernel log, so it appears on the console in order with the kernel's.
pub fn kmsg(line: &str) {
    match fs::OpenOptions::new().write(true).open("/dev/kmsg") {
        Ok(mut f) => {
            let _ = writeln!(f, "{line}");
        }
        Err(_) => eprintln!("{line}"),
    }
}

/// Writes `value` to a sysctl/sysfs file; the errno on failure.
pub fn write_file(path: &str, value: &str) -> Result<(), nix::errno::Errno> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_errno)?;
    f.write_all(value.as_bytes()).map_err(io_errno)
}

/// One `write(2)` of `value` (no retry on EINTR, unlike `write_all`): for writes a signal
/// is meant to interrupt (offlining a memory block under a deadline).
pub fn write_once(path: &str, value: &str) -> Result<(), nix::errno::Errno> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_errno)?;
    match f.write(value.as_bytes()).map_err(io_errno)? {
        n if n == value.len() => Ok(()),
        _ => Err(nix::errno::Errno::EIO),
    }
}

pub fn read_trimmed(path: &str) -> String {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("unreadable: {e}"))
}

pub fn io_errno(e: std::io::Error) -> nix::errno::Errno {
    nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Folds per-CPU vmstat deltas so Shmem is exact (`/proc/sys/vm/stat_refresh`).
pub fn stat_refresh() {
    let _ = write_file("/proc/sys/vm/stat_refresh", "1");
}

pub fn taint() -> u64 {
    read_trimmed("/proc/sys/kernel/tainted")
        .parse()
        .unwrap_or(u64::MAX)
}

/// Shmem and swap in use (KiB) and the taint flags, after a stat refresh.
pub fn accounting() -> Accounting {
    stat_refresh();
    let (shmem, swap_used) = match procfs::Meminfo::from_file("/proc/meminfo") {
        Ok(m) => (
            m.shmem.unwrap_or(u64::MAX) / 1024,
            m.swap_total.saturating_sub(m.swap_free) / 1024,
        ),
        Err(_) => (u64::MAX, u64::MAX),
    };
    Accounting {
        shmem_kib: shmem,
        swap_used_kib: swap_used,
        taint: taint(),
    }
}

/// Swap in use on all devices together (KiB): SwapTotal - SwapFree, the per-CPU slot
/// caches' slots included, as /proc/swaps counts them. One sysinfo(2) call: every
/// operation's record carries it, and reading /proc/swaps cost 0.2 ms an operation under TCG.
pub fn swap_used_kib() -> u64 {
    nix::sys::sysinfo::sysinfo()
        .map(|i| (i.swap_total().saturating_sub(i.swap_free())) / 1024)
        .unwrap_or(u64::MAX)
}

/// One device of /proc/swaps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwapLine {
    pub path: String,
    /// The `Used` column: the device's slots in use, those the per-CPU slot caches hold
    /// included (KiB).
    pub used_kib: u64,
    pub priority: i32,
}

/// The devices currently on, from /proc/swaps (`Filename Type Size Used Priority`).
pub fn swaps() -> Vec<SwapLine> {
    fs::read_to_string("/proc/swaps")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(SwapLine {
                path: f.first()?.to_string(),
                // An unreadable column counts as in use, and as a priority no device has
                // (outside i16): the teardown's exact path then runs.
                used_kib: f.get(3).and_then(|v| v.parse().ok()).unwrap_or(u64::MAX),
                priority: f.get(4).and_then(|v| v.parse().ok()).unwrap_or(i32::MIN),
            })
        })
        .collect()
}

/// Swap device paths currently on, from /proc/swaps.
pub fn active_swaps() -> Vec<String> {
    swaps().into_iter().map(|s| s.path).collect()
}

/// Whether `/sys/kernel/debug/page_owner` answers (CONFIG_PAGE_OWNER, booted with
/// `page_owner=on`; otherwise the read fails with EINVAL or the file is missing).
pub fn page_owner_enabled() -> bool {
    use std::io::Read;
    // A record must fit the read whole (print_page_owner() fails a short buffer).
    let mut buf = vec![0u8; 8192];
    std::fs::File::open("/sys/kernel/debug/page_owner")
        .and_then(|mut f| f.read(&mut buf))
        .is_ok()
}

/// The page_owner record of frame `pfn` (CONFIG_PAGE_OWNER with `page_owner=on`), or `None`.
/// The file's position is the PFN to start from (read_page_owner()): one seek, one read, and
/// the record is kept only if it is that frame's (free frames are skipped by the kernel).
pub fn page_owner(pfn: u64) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open("/sys/kernel/debug/page_owner").ok()?;
    f.seek(SeekFrom::Start(pfn)).ok()?;
    let mut buf = vec![0u8; 8192];
    let n = f.read(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    let pfn_line = format!("PFN {pfn} ");
    let pfn_hex = format!("PFN 0x{pfn:x} ");
    text.lines()
        .any(|l| l.starts_with(&pfn_line) || l.starts_with(&pfn_hex))
        .then_some(text)
}

/// Waits up to `limit` for child `pid` to end and reaps it; `None` if it is still running.
///
/// A pidfd (Linux >= 5.3) wakes the wait the moment the child ends: a polling loop with a
/// sleep cost every run its sleep's granularity (5 ms of a 55 ms execution under TCG).
pub fn wait_bounded(pid: Pid, limit: Duration) -> Option<WaitStatus> {
    let start = Instant::now();
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if raw >= 0 {
        // SAFETY: a fresh fd from pidfd_open, owned here.
        let pidfd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
        loop {
            let left = limit.saturating_sub(start.elapsed());
            let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
            let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            match poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(0) => return None,
                Ok(_) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break, // fall back to the loop below
            }
        }
    }
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if start.elapsed() < limit => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(status) => return Some(status),
        }
    }
}
