//! The operations that move shmem pages outside swap: the THP policy and khugepaged,
//! compaction, NUMA placement (`mbind`, `move_pages`, `migrate_pages`), memory block
//! offlining and hugetlb pools. Each changes guest-wide state; [`restore_guest`] undoes all
//! of it after every program (the teardown) so the next program starts from the same guest.

use std::time::{Duration, Instant};

use nix::errno::Errno;
use shmemfuzz_core::program::{MbindFlags, ThpMode, HUGETLB_SIZES_KB, PAGE_SIZE};

use crate::sys::{read_trimmed, write_file};

const THP: &str = "/sys/kernel/mm/transparent_hugepage";
const KHUGEPAGED: &str = "/sys/kernel/mm/transparent_hugepage/khugepaged";
const MEMORY_BLOCKS: &str = "/sys/devices/system/memory";
/// The shmem THP policy every program starts from (pinned at boot by `setup`).
pub const DEFAULT_SHMEM_THP: ThpMode = ThpMode::Deny;
/// khugepaged's scan settings as the kernel sets them at boot.
const KHUGEPAGED_DEFAULTS: [(&str, &str); 3] = [
    ("scan_sleep_millisecs", "10000"),
    ("alloc_sleep_millisecs", "60000"),
    ("pages_to_scan", "4096"),
];
/// How long a khugepaged pass may take (two full scans with no sleeps).
const KHUGEPAGED_DEADLINE: Duration = Duration::from_secs(5);
/// How long offlining one memory block may retry migrations (`offline_pages` loops until a
/// signal): a SIGALRM ends it with EINTR.
const OFFLINE_DEADLINE_S: u32 = 3;

/// `mbind(2)`'s `MPOL_BIND` and `MPOL_MF_*` (the libc crate does not carry them).
const MPOL_BIND: libc::c_long = 2;
const MPOL_MF_STRICT: libc::c_long = 1 << 0;
const MPOL_MF_MOVE: libc::c_long = 1 << 1;
const MPOL_MF_MOVE_ALL: libc::c_long = 1 << 2;
/// Bits in the node masks passed to the NUMA syscalls.
const MAXNODE: libc::c_ulong = 64;

/// Sets the shmem THP policy. Anonymous THP follows as `madvise` whenever shmem may have huge
/// pages: khugepaged runs only while anonymous THP is enabled (start_stop_khugepaged()), and
/// MADV_HUGEPAGE registers a process with khugepaged only then (khugepaged_enter_vma()).
pub fn set_thp(mode: ThpMode) -> Result<(), Errno> {
    write_file(&format!("{THP}/shmem_enabled"), mode.keyword())?;
    let anon = match mode {
        ThpMode::Never | ThpMode::Deny => "never",
        _ => "madvise",
    };
    write_file(&format!("{THP}/enabled"), anon)
}

/// Sets the per-size shmem THP policy of `size`-byte folios
/// (`hugepages-<size>kB/shmem_enabled`: Linux 6.12; anonymous shmem mappings only). ENOENT
/// where the kernel has no such size or no per-size settings; `deny` and `force` are EINVAL
/// there (top-level only).
pub fn set_thp_size(size: u64, mode: ThpMode) -> Result<(), Errno> {
    write_file(
        &format!("{THP}/hugepages-{}kB/shmem_enabled", size >> 10),
        mode.keyword(),
    )
}

/// Puts every per-size shmem THP policy back as at boot (6.12: `inherit` for the PMD size,
/// `never` for the others); nothing on kernels without them.
fn restore_thp_sizes() {
    let Ok(dirs) = std::fs::read_dir(THP) else {
        return;
    };
    for d in dirs.flatten() {
        let name = d.file_name().to_string_lossy().into_owned();
        let Some(kb) = name
            .strip_prefix("hugepages-")
            .and_then(|s| s.strip_suffix("kB"))
        else {
            continue;
        };
        let path = d.path().join("shmem_enabled");
        let default = if kb == "2048" { "inherit" } else { "never" };
        if path.exists() && read_trimmed(&path.to_string_lossy()) != default {
            let _ = write_file(&path.to_string_lossy(), default);
        }
    }
}

/// Huge pages allocated for collapses so far (`thp_collapse_alloc` in /proc/vmstat: khugepaged
/// and MADV_COLLAPSE). It grows before the collapsed folio is in the page cache, unlike
/// khugepaged's `pages_collapsed`, which grows after: an observation that shows a collapsed
/// folio has this counter grown already.
pub fn collapse_allocs() -> Option<u64> {
    let count = *procfs::vmstat().ok()?.get("thp_collapse_alloc")?;
    u64::try_from(count).ok()
}

fn full_scans() -> Option<u64> {
    read_trimmed(&format!("{KHUGEPAGED}/full_scans"))
        .parse()
        .ok()
}

/// One khugepaged pass: its scanning made fast, wait for two more full scans (the first may have started before the program's
/// ranges were eligible), settings restored.
pub fn khugepaged_pass() -> Result<(), Errno> {
    let start = full_scans().ok_or(Errno::ENOENT)?;
    // khugepaged runs only while anonymous THP is enabled: without it nothing would scan.
    if read_trimmed(&format!("{THP}/enabled")).contains("[never]") {
        return Err(Errno::ETIMEDOUT);
    }
    for (file, value) in [
        ("scan_sleep_millisecs", "0"),
        ("alloc_sleep_millisecs", "0"),
        ("pages_to_scan", "4096"),
    ] {
        write_file(&format!("{KHUGEPAGED}/{file}"), value)?;
    }
    let begun = Instant::now();
    let mut done = false;
    while begun.elapsed() < KHUGEPAGED_DEADLINE {
        if full_scans().is_some_and(|n| n >= start + 2) {
            done = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    restore_khugepaged();
    if done {
        Ok(())
    } else {
        Err(Errno::ETIMEDOUT)
    }
}

fn restore_khugepaged() {
    for (file, value) in KHUGEPAGED_DEFAULTS {
        let _ = write_file(&format!("{KHUGEPAGED}/{file}"), value);
    }
}

pub fn compact() -> Result<(), Errno> {
    write_file("/proc/sys/vm/compact_memory", "1")
}

fn result(rc: libc::c_long) -> Result<(), Errno> {
    Errno::result(rc).map(drop)
}

/// `mbind(addr, len, MPOL_BIND, {node}, flags)`.
pub fn mbind(addr: *mut u8, len: usize, node: u8, flags: MbindFlags) -> Result<(), Errno> {
    let mask: libc::c_ulong = 1 << node;
    let mut f = 0;
    for (word, bit) in [
        ("move", MPOL_MF_MOVE),
        ("move-all", MPOL_MF_MOVE_ALL),
        ("strict", MPOL_MF_STRICT),
    ] {
        if flags.has(word) {
            f |= bit;
        }
    }
    // SAFETY: mbind only reads the node mask; the range is the caller's mapping.
    result(unsafe {
        libc::syscall(
            libc::SYS_mbind,
            addr,
            len,
            MPOL_BIND,
            &mask as *const libc::c_ulong,
            MAXNODE,
            f,
        )
    })
}

/// `move_pages(0, …, MPOL_MF_MOVE)` of every page of the range to `node`. Per-page
/// failures stay in the status array: the zone oracle sees where the pages went.
pub fn move_pages(addr: *mut u8, len: usize, node: u8) -> Result<(), Errno> {
    let n = len.div_ceil(PAGE_SIZE as usize);
    let pages: Vec<*mut u8> = (0..n)
        .map(|i| addr.wrapping_add(i * PAGE_SIZE as usize))
        .collect();
    let nodes = vec![libc::c_int::from(node); n];
    let mut status = vec![0 as libc::c_int; n];
    // SAFETY: the three arrays hold `n` entries each and outlive the call.
    result(unsafe {
        libc::syscall(
            libc::SYS_move_pages,
            0,
            n,
            pages.as_ptr(),
            nodes.as_ptr(),
            status.as_mut_ptr(),
            MPOL_MF_MOVE,
        )
    })
}

/// `migrate_pages(0, …, {from}, {to})`: every page of this process on `from` to `to`.
pub fn migrate_pages(from: u8, to: u8) -> Result<(), Errno> {
    let (old, new): (libc::c_ulong, libc::c_ulong) = (1 << from, 1 << to);
    // SAFETY: both masks are read only.
    result(unsafe {
        libc::syscall(
            libc::SYS_migrate_pages,
            0,
            MAXNODE,
            &old as *const libc::c_ulong,
            &new as *const libc::c_ulong,
        )
    })
}

fn block_size() -> Result<u64, Errno> {
    u64::from_str_radix(
        &read_trimmed(&format!("{MEMORY_BLOCKS}/block_size_bytes")),
        16,
    )
    .map_err(|_| Errno::ENOENT)
}

extern "C" fn on_alarm(_: libc::c_int) {}

/// Offlines the memory block holding frame `pfn`, with a deadline.
pub fn offline_pfn(pfn: u64) -> Result<(), Errno> {
    let block = pfn * PAGE_SIZE / block_size()?;
    let path = format!("{MEMORY_BLOCKS}/memory{block}/state");
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    // No SA_RESTART: the write must return EINTR when the alarm fires.
    let act = SigAction::new(
        SigHandler::Handler(on_alarm),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler does nothing; the previous action is put back below.
    let old = unsafe { sigaction(Signal::SIGALRM, &act) }?;
    nix::unistd::alarm::set(OFFLINE_DEADLINE_S);
    // One write: write_all would retry after the alarm's EINTR, with no deadline left.
    let res = crate::sys::write_once(&path, "offline");
    nix::unistd::alarm::cancel();
    // SAFETY: restoring what was there.
    let _ = unsafe { sigaction(Signal::SIGALRM, &old) };
    if let Err(e) = res {
        // The kernel says why only at pr_debug: leave the block's facts on the console.
        crate::sys::kmsg(&format!(
            "shmemfuzz-agent: offlining memory{block} (pfn {pfn:#x}) failed: {e}; \
             valid_zones {:?}, state {:?}, block size {:#x}",
            read_trimmed(&format!("{MEMORY_BLOCKS}/memory{block}/valid_zones")),
            read_trimmed(&path),
            block_size().unwrap_or(0),
        ));
    }
    res
}

/// Onlines every offline memory block.
pub fn online_all() -> Result<(), Errno> {
    let entries = std::fs::read_dir(MEMORY_BLOCKS).map_err(|_| Errno::ENOENT)?;
    let mut res = Ok(());
    for e in entries.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().starts_with("memory") {
            continue;
        }
        let state = e.path().join("state");
        let state = state.to_string_lossy();
        if read_trimmed(&state) == "offline" {
            if let Err(err) = write_file(&state, "online") {
                res = Err(err);
            }
        }
    }
    res
}

fn pool_path(size_kb: u32) -> String {
    format!("/sys/kernel/mm/hugepages/hugepages-{size_kb}kB/nr_hugepages")
}

/// Sets the hugetlb pool of `size_kb` pages to `count`. The kernel gives what it can and
/// the write succeeds anyway: a pool left smaller than asked is reported as ENOMEM.
pub fn hugetlb(size_kb: u32, count: u32) -> Result<(), Errno> {
    let path = pool_path(size_kb);
    write_file(&path, &count.to_string())?;
    match read_trimmed(&path).parse::<u32>() {
        Ok(n) if n < count => Err(Errno::ENOMEM),
        _ => Ok(()),
    }
}

/// Undoes every guest-wide change a program may have made: memory blocks online, hugetlb
/// pools empty, khugepaged's settings and the shmem THP policy as at boot.
pub fn restore_guest() {
    let _ = online_all();
    for size in HUGETLB_SIZES_KB {
        if read_trimmed(&pool_path(size)) != "0" {
            let _ = hugetlb(size, 0);
        }
    }
    restore_khugepaged();
    let _ = write_file(&format!("{THP}/enabled"), "never");
    let _ = set_thp(DEFAULT_SHMEM_THP);
    restore_thp_sizes();
}
