//! After a program: put the guest back as every program finds it, and measure accounting
//! against the baseline taken before the program, exactly.
//!
//! Teardown forces what settles lazily before anything is called a leak: the program's files
//! are removed, its cgroup is reclaimed and removed, and then one of two paths runs.
//!
//! - **Quiet** (most programs that swapped nothing): Shmem is back at its baseline to the page,
//!   no swap slot is in use on any device, and the devices are on at the priorities the
//!   program found. Swapping off would then have nothing to free and nothing to find: a
//!   leaked entry is a slot in use, and slots the per-CPU swap slot caches hold count as in
//!   use too (`/proc/swaps`' Used is the device's `inuse_pages`). The guest is already in the
//!   state the exact path leaves, so the teardown stops here.
//! - **Exact** (everything else): every swap device is swapped off (which frees every entry for
//!   certain, or never finishes if one leaked: that has a deadline), Shmem is polled until it
//!   is back at its baseline **to the page**, with a bound, and swap0 goes back on.
//!
//! A leak verdict only ever comes from the exact path: a one-page Shmem drift fails the quiet
//! test and takes the exact path, which reports it as before. The swapoff costs an RCU grace
//! period (8–10 ms of a 45 ms execution under TCG at HZ=250), which is what the quiet path
//! saves.

use std::fs;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::WaitStatus;
use nix::unistd::{fork, ForkResult};
use shmemfuzz_core::protocol::{Accounting, Teardown};

use crate::setup::Guest;
use crate::sys::{self, SwapLine};

/// How long a teardown swapoff may run before its device is declared stuck.
const SWAPOFF_DEADLINE: Duration = Duration::from_secs(120);
/// How long Shmem may take to return to its baseline after the swapoffs.
const SETTLE_DEADLINE: Duration = Duration::from_secs(10);

/// What the guest looked like before the program: accounting and the swap devices on.
pub struct Before {
    pub accounting: Accounting,
    pub swaps: Vec<SwapLine>,
}

impl Before {
    /// Takes the baseline (call after [`restore_default_swap`]).
    pub fn take() -> Self {
        Before {
            accounting: sys::accounting(),
            swaps: sys::swaps(),
        }
    }
}

/// Whether the guest is, without a swapoff, in the state the exact path would leave it in:
/// Shmem at its baseline to the page, no swap slot in use anywhere, and the same devices on
/// at the same priorities as before the program.
pub fn quiet(before: &Before, shmem_kib: u64, swaps: &[SwapLine]) -> bool {
    let same_devices = swaps.len() == before.swaps.len()
        && swaps
            .iter()
            .zip(&before.swaps)
            .all(|(a, b)| a.path == b.path && a.priority == b.priority);
    shmem_kib == before.accounting.shmem_kib
        && same_devices
        && swaps.iter().all(|s| s.used_kib == 0)
}

/// Tears down after a program; `lap` ends each step's phase. `guest_wide`: the program
/// changed guest-wide settings (THP, khugepaged, offline memory, …) that must be put back.
pub fn teardown(
    guest: &Guest,
    dir: &str,
    cgroup: &str,
    before: &Before,
    guest_wide: bool,
    lap: &mut dyn FnMut(&str),
) -> Teardown {
    let mut phase = |name: &str| lap(&format!("teardown: {name}"));
    remove_files(dir);
    phase("remove files");
    let _ = sys::write_file(&format!("{cgroup}/memory.reclaim"), "1G");
    let _ = fs::remove_dir(cgroup);
    phase("reclaim cgroup");
    if guest_wide {
        crate::moving::restore_guest();
        phase("restore guest");
    }
    let now = sys::accounting();
    let swaps = sys::swaps();
    phase("quiet check");
    if quiet(before, now.shmem_kib, &swaps) {
        return Teardown {
            baseline: before.accounting.clone(),
            after: Accounting {
                swap_used_kib: 0,
                ..now
            },
            ..Teardown::default()
        };
    }
    exact(guest, before, lap)
}

/// The exact path: every device off, Shmem polled back to its baseline, swap0 back on.
fn exact(guest: &Guest, before: &Before, lap: &mut dyn FnMut(&str)) -> Teardown {
    let mut phase = |name: &str| lap(&format!("teardown: {name}"));
    let mut stuck = Vec::new();
    for path in sys::active_swaps() {
        if !swapoff_bounded(&path, SWAPOFF_DEADLINE) {
            let dev = guest
                .swap_paths
                .iter()
                .position(|p| *p == path)
                .unwrap_or(usize::MAX);
            stuck.push(u8::try_from(dev).unwrap_or(u8::MAX));
        }
    }
    phase("swapoff");
    let baseline = before.accounting.clone();
    let start = Instant::now();
    let mut after = sys::accounting();
    while after.shmem_kib != baseline.shmem_kib && start.elapsed() < SETTLE_DEADLINE {
        std::thread::sleep(Duration::from_millis(20));
        after = sys::accounting();
    }
    let settle_ms = start.elapsed().as_millis() as u64;
    phase("settle");
    restore_default_swap(guest);
    phase("swapon");
    after.swap_used_kib = sys::accounting().swap_used_kib;
    phase("accounting");
    Teardown {
        baseline,
        after,
        swapoff_stuck: stuck,
        settle_ms,
        phases_us: Vec::new(),
    }
}

fn remove_files(dir: &str) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            // A directory is a tmpfs the program mounted (`mount`): detach it, which frees
            // its files once nothing uses them (the child is gone), then remove the directory.
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = nix::mount::umount2(&e.path(), nix::mount::MntFlags::MNT_DETACH);
                let _ = fs::remove_dir(e.path());
            } else {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

/// swapoff in a child with a deadline: a leaked swap entry makes swapoff loop forever, and a
/// signal is what ends that loop.
fn swapoff_bounded(path: &str, limit: Duration) -> bool {
    let Ok(c) = std::ffi::CString::new(path) else {
        return false;
    };
    // SAFETY: single-threaded parent; the child only calls swapoff and _exit.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // SAFETY: valid C string; _exit skips the parent's destructors.
            let rc = unsafe { libc::swapoff(c.as_ptr()) };
            unsafe { libc::_exit(if rc == 0 { 0 } else { 1 }) }
        }
        Ok(ForkResult::Parent { child }) => match sys::wait_bounded(child, limit) {
            Some(WaitStatus::Exited(_, 0)) => true,
            Some(_) => false,
            None => {
                let _ = kill(child, Signal::SIGKILL);
                let _ = sys::wait_bounded(child, Duration::from_secs(10));
                false
            }
        },
        Err(_) => false,
    }
}

/// The state every program starts from: swap0 on at default priority, the others off.
pub fn restore_default_swap(guest: &Guest) {
    let active = sys::active_swaps();
    for (i, path) in guest.swap_paths.iter().enumerate() {
        let on = active.iter().any(|a| a == path);
        let Ok(c) = std::ffi::CString::new(path.as_str()) else {
            continue;
        };
        // SAFETY: valid C strings.
        unsafe {
            let wanted = shmemfuzz_core::program::swap_on_at_start(i);
            if wanted && !on {
                libc::swapon(c.as_ptr(), 0);
            } else if !wanted && on {
                libc::swapoff(c.as_ptr());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(path: &str, used_kib: u64, priority: i32) -> SwapLine {
        SwapLine {
            path: path.into(),
            used_kib,
            priority,
        }
    }

    fn before(shmem_kib: u64) -> Before {
        Before {
            accounting: Accounting {
                shmem_kib,
                swap_used_kib: 0,
                taint: 0,
            },
            swaps: vec![line("/dev/vda", 0, -2)],
        }
    }

    #[test]
    fn back_at_baseline_with_no_swap_in_use_is_quiet() {
        assert!(quiet(&before(1000), 1000, &[line("/dev/vda", 0, -2)]));
    }

    #[test]
    fn one_page_of_shmem_drift_takes_the_exact_path() {
        assert!(!quiet(&before(1000), 1004, &[line("/dev/vda", 0, -2)]));
        assert!(!quiet(&before(1000), 996, &[line("/dev/vda", 0, -2)]));
    }

    #[test]
    fn any_swap_slot_in_use_takes_the_exact_path() {
        // One slot: a leaked entry, or one a per-CPU slot cache holds; only swapoff tells.
        assert!(!quiet(&before(1000), 1000, &[line("/dev/vda", 4, -2)]));
    }

    #[test]
    fn devices_changed_by_the_program_take_the_exact_path() {
        let b = before(1000);
        assert!(!quiet(&b, 1000, &[]));
        assert!(!quiet(&b, 1000, &[line("/dev/vda", 0, 5)]));
        assert!(!quiet(
            &b,
            1000,
            &[line("/dev/vda", 0, -2), line("/dev/vdb", 0, -3)]
        ));
        assert!(!quiet(&b, 1000, &[line("/dev/vdb", 0, -2)]));
    }
}
