//! Which console lines start a report, which end one, and which belong to the report
//! already open.

use super::{lockdep, ReportKind};

/// How an open report ends (besides the start of another report and the body bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndRule {
    /// `---[ end trace <hash> ]---` (WARN, BUG, Oops; list corruption ends in one of those).
    EndTrace,
    /// A line of `=` characters (KASAN, KFENCE, UBSAN print one before and one after).
    Separator,
    /// `---[ end Kernel panic - not syncing: ... ]---`, or `Kernel Offset:` which precedes it
    /// (with `panic=-1` the machine resets before the end marker is printed).
    Panic,
    /// `</TASK>` closing the first task stack (hung task, lockups, stalls, bad page state,
    /// slab corruption, generic `BUG:` lines).
    TaskClose,
    /// A lockdep report: `</TASK>` after its final stack (`stack backtrace:`), or, on kernels
    /// that print no `<TASK>` markers, the first line after that stack's frames that is not
    /// one of them (see [`super::lockdep`]).
    Lockdep,
    /// Before the first line (after the report's first) that is not indented (kmemleak).
    Indented,
    /// A report of a single line.
    Single,
}

/// A line that starts a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Start {
    pub kind: ReportKind,
    pub end: EndRule,
    /// The line is the x86 oops banner (`Oops: ...`, `invalid opcode: ...`,
    /// `general protection fault ...`), which continues a `BUG:`/`kernel BUG` report.
    pub oops_banner: bool,
}

const fn start(kind: ReportKind, end: EndRule) -> Start {
    Start {
        kind,
        end,
        oops_banner: false,
    }
}

/// A line made only of `=` (at least 20), as KASAN/KFENCE/UBSAN/SLUB print around reports.
pub(crate) fn is_separator(t: &str) -> bool {
    let t = t.trim();
    t.len() >= 20 && t.bytes().all(|b| b == b'=')
}

/// The swap-entry errors of mm/swapfile.c (`pr_err("%s: %s%08lx\n", __func__, ...)`).
pub(crate) const SWAP_ENTRY_ERRORS: &[&str] = &[
    "Bad swap file entry ",
    "Unused swap file entry ",
    "Bad swap offset entry ",
    "Unused swap offset entry ",
];

/// `BUG <cache> (Not tainted): <reason>`: a SLUB consistency-check report (slub_debug).
fn is_slub_header(t: &str) -> bool {
    let Some(rest) = t.strip_prefix("BUG ") else {
        return false;
    };
    let Some((cache, tail)) = rest.split_once(' ') else {
        return false;
    };
    !cache.is_empty() && !cache.ends_with(':') && tail.starts_with('(') && tail.contains("): ")
}

/// Is the value after `vmstat_refresh: <item> ` a negative number?
fn is_vmstat_negative(t: &str) -> bool {
    let Some(rest) = t.strip_prefix("vmstat_refresh: ") else {
        return false;
    };
    let mut words = rest.split_whitespace();
    let (Some(_item), Some(value), None) = (words.next(), words.next(), words.next()) else {
        return false;
    };
    value
        .strip_prefix('-')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// The parts of a `WARNING:` line printed by `__warn()` (the text after `WARNING: `).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WarnLine<'a> {
    /// `fs/dcache.c:829` (with the line number).
    pub file: &'a str,
    /// The symbol at the warning site, `fast_dput+0x334/0x430` (or `0x0` when the kernel
    /// could not name it).
    pub site: &'a str,
}

/// Is `file` a source location `path:line`?
fn is_source_location(file: &str) -> bool {
    file.rsplit_once(':').is_some_and(|(path, line)| {
        !path.is_empty()
            && (path.contains('/') || path.contains('.'))
            && !line.is_empty()
            && line.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Parse the three formats of `__warn()`'s first line (`rest` is the text after
/// `WARNING: `):
/// - `CPU: 0 PID: 1 at mm/shmem.c:1 shmem_foo+0x1/0x2 [mod]` (3.x to 6.17),
/// - `fs/dcache.c:829 at fast_dput+0x334/0x430, CPU#1: comm/5830` (since 6.18),
/// - `at mm/shmem.c:1 shmem_foo()` (before 3.x).
pub(crate) fn warn_format(rest: &str) -> Option<WarnLine<'_>> {
    if rest.starts_with("CPU:") {
        let (_, after) = rest.split_once(" at ")?;
        let mut words = after.split_whitespace();
        let file = words.next()?;
        return Some(WarnLine {
            file,
            site: words.next().unwrap_or(""),
        });
    }
    if let Some(after) = rest.strip_prefix("at ") {
        let mut words = after.split_whitespace();
        let file = words.next().filter(|f| is_source_location(f))?;
        return Some(WarnLine {
            file,
            site: words.next().unwrap_or(""),
        });
    }
    let (file, after) = rest.split_once(" at ")?;
    if !is_source_location(file) || !after.contains("CPU#") {
        return None;
    }
    let site = after.split([',', ' ']).next().unwrap_or("");
    Some(WarnLine { file, site })
}

/// Headlines of the `WARNING:` reports that the unwinder and lockdep's held-lock dumps print
/// (not `__warn()`): real reports, each followed by its stack. Matched at the start of the
/// text after `WARNING: `. Lockdep's and RCU's own headlines are [`super::lockdep::headline`]'s.
const DEBUG_HEADLINES: &[&str] = &[
    "lock held by ",
    "kernel stack regs at ",
    "kernel stack frame pointer at ",
    "stack going in the wrong direction",
    "stack recursion on stack type",
];

/// `WARNING:` lines that are not reports, and why. Anything starting with `WARNING:` that is
/// neither `__warn()`'s line ([`warn_format`]) nor a debug headline ([`DEBUG_HEADLINES`]) is
/// ignored; these are the ones seen in real consoles:
/// - `WARNING: the mand mount option is being deprecated and will be removed in v5.15!`
///   (fs/namespace.c, a `pr_warn_once` deprecation notice printed whenever user space mounts
///   with `-o mand`);
/// - `WARNING: The mand mount option has been deprecated and ...` (the same, later kernels);
/// - `WARNING: fbcon: Driver 'vkmsdrmfb' missed to adjust virtual screen size (0x0 vs.
///   128x16)` (drivers/video/fbdev/core/fbmem.c, a driver notice);
/// - `WARNING: workqueue cpumask: online intersect > possible intersect` (boot notice);
/// - `WARNING: /etc/ssh/moduli does not exist, using fixed modulus` (sshd, user space);
/// - ``WARNING: `SYZ.1.261' USES WIRELESS EXTENSIONS WHICH WILL STOP WORKING ...`` (a
///   `pr_warn_once` deprecation notice of net/wireless/wext-core.c).
///
/// Likewise `BUG <cache> (...): kasan: bad access detected` is not a SLUB report: old KASAN
/// printed it inside its own report to describe the object; alone it is a fragment.
pub(crate) const INFORMATIONAL: &[&str] = &[
    "WARNING: the mand mount option is being deprecated",
    "WARNING: The mand mount option has been deprecated",
    "WARNING: fbcon: Driver",
    "WARNING: workqueue cpumask: online intersect > possible intersect",
    "WARNING: /etc/ssh/moduli does not exist",
    "USES WIRELESS EXTENSIONS WHICH WILL STOP WORKING",
    "BUG UNIX (Not tainted): kasan: bad access detected",
];

/// Is `rest` (the text after `WARNING: `) a lockdep/RCU/unwinder headline?
pub(crate) fn is_debug_headline(rest: &str) -> bool {
    DEBUG_HEADLINES.iter().any(|h| rest.starts_with(h))
        || super::lockdep::headline(&format!("WARNING: {rest}")).is_some()
}

/// Classify a (prefix-stripped) console line as the start of a report.
pub(crate) fn classify(msg: &str) -> Option<Start> {
    use EndRule::*;
    use ReportKind as K;
    let t = msg.trim();
    if t.is_empty() || INFORMATIONAL.iter().any(|i| t.contains(i)) {
        return None;
    }
    // First, as its reason can quote another report's words ("Watchdog detected hard LOCKUP
    // on cpu 1").
    if t.starts_with("Kernel panic - not syncing") {
        return Some(start(K::Panic, Panic));
    }
    // Memory-safety tools.
    if t.starts_with("BUG: KASAN:") {
        return Some(start(K::Kasan, Separator));
    }
    if t.starts_with("BUG: KFENCE:") {
        return Some(start(K::Kfence, Separator));
    }
    if is_slub_header(t) && !t.ends_with("): kasan: bad access detected") {
        return Some(start(K::SlabCorruption, TaskClose));
    }
    if t.starts_with("UBSAN:") {
        return Some(start(K::Bug, Separator));
    }
    // Watchdogs.
    if t.contains("BUG: soft lockup") {
        return Some(start(K::SoftLockup, TaskClose));
    }
    if t.contains("Watchdog detected hard LOCKUP") {
        return Some(start(K::HardLockup, TaskClose));
    }
    // "INFO: task NAME:PID blocked for more than N seconds." and, since 6.16,
    // "INFO: task NAME:PID blocked in I/O wait for more than N seconds."
    // Before 5.x also "INFO: task NAME:PID can't die for more than N seconds." (a task with a
    // fatal signal that does not exit).
    if t.starts_with("INFO: task ")
        && (t.contains(" blocked ") || t.contains(" can't die "))
        && t.contains(" for more than ")
    {
        return Some(start(K::HungTask, TaskClose));
    }
    if t.contains("INFO: rcu") && t.contains(" stall") {
        return Some(start(K::RcuStall, TaskClose));
    }
    // mm consistency checks.
    if t.starts_with("BUG: Bad page state") {
        return Some(start(K::BadPageState, TaskClose));
    }
    if t.starts_with("BUG: Bad rss-counter state") {
        return Some(start(K::Bug, Single));
    }
    if is_vmstat_negative(t) {
        return Some(start(K::VmstatRefresh, Single));
    }
    if SWAP_ENTRY_ERRORS.iter().any(|e| t.contains(e)) {
        return Some(start(K::Bug, Single));
    }
    if t.contains("list_add corruption")
        || t.contains("list_del corruption")
        || t.contains("list_add double add")
    {
        return Some(start(K::ListCorruption, EndTrace));
    }
    if t.starts_with("unreferenced object ") || t == "BUG: memory leak" {
        return Some(start(K::MemoryLeak, Indented));
    }
    // fs/super.c and fs/file_table.c: inodes left at unmount, a file put once too often.
    if t.starts_with("VFS: Busy inodes after unmount")
        || t.starts_with("VFS: Close: file count is 0")
    {
        return Some(start(K::Bug, Single));
    }
    // net/core/dev.c, every 10 s while a device's references are not dropped.
    if t.starts_with("unregister_netdevice: waiting for ") && t.contains(" to become free") {
        return Some(start(K::Bug, Single));
    }
    // Oopses and BUG()s; arm64 says `Unable to handle kernel ...`, 32-bit arm
    // `Unhandled fault: ...`.
    if t.starts_with("BUG: kernel NULL pointer dereference")
        || t.starts_with("BUG: unable to handle")
        || t.starts_with("Unable to handle kernel ")
        || t.starts_with("BUG: Unable to handle kernel ")
        || t.starts_with("Unhandled fault:")
    {
        return Some(start(K::Oops, EndTrace));
    }
    // The oops banner; old kernels sometimes glue "general protection fault: 0000 [#1]" to
    // the end of a KASAN hint line.
    let gpf = t.starts_with("general protection fault")
        || (t.contains("general protection fault") && t.contains("[#"));
    // x86 traps (`divide error: 0000 [#1]`, `PANIC: double fault, error_code: 0x0`, ...) and
    // the arm oops banner (`Internal error: Oops: 96000005 [#1]`).
    // Those that could also be the words of another program need the die counter `[#1]`.
    let trap = ["invalid opcode:", "PANIC: double fault"]
        .iter()
        .any(|p| t.starts_with(p))
        || (t.contains("[#")
            && [
                "divide error:",
                "divide_error:",
                "stack segment:",
                "int3:",
                "Internal error:",
            ]
            .iter()
            .any(|p| t.starts_with(p)));
    if t.starts_with("Oops:") || gpf || trap {
        return Some(Start {
            oops_banner: true,
            ..start(K::Oops, EndTrace)
        });
    }
    if let Some(rest) = t.strip_prefix("kernel BUG at ") {
        let kind = if rest.starts_with("lib/list_debug.c") {
            K::ListCorruption
        } else {
            K::KernelBug
        };
        return Some(start(kind, EndTrace));
    }
    if let Some(rest) = t.strip_prefix("WARNING:") {
        let rest = rest.trim_start();
        if let Some(format) = warn_format(rest) {
            // __warn(): ends with an end-trace marker.
            if format.file.starts_with("lib/list_debug.c") {
                return Some(start(K::ListCorruption, EndTrace));
            }
            return Some(start(K::Warning, EndTrace));
        }
        if lockdep::headline(t).is_some() {
            return Some(start(K::Warning, Lockdep));
        }
        if is_debug_headline(rest) {
            // The unwinder's reports end with their stack.
            return Some(start(K::Warning, TaskClose));
        }
        // Anything else that starts with `WARNING:` is informational (see
        // [`INFORMATIONAL`]): not a report.
        return None;
    }
    // Lockdep before 4.15 (`[ INFO: possible circular locking dependency detected ]`,
    // `[ BUG: bad unlock balance detected! ]`) and `INFO: trying to register non-static key.`
    if lockdep::is_old_headline(t) {
        return Some(start(K::Warning, Lockdep));
    }
    if t.starts_with("BUG: ") {
        return Some(start(K::Bug, TaskClose));
    }
    // Events that are not findings.
    if t.contains("out of memory: Killed process") || t.contains("Out of memory: Killed process") {
        return Some(start(K::OomKill, Single));
    }
    if t.ends_with("taints kernel.") || t.contains("tainting kernel") {
        return Some(start(K::Taint, Single));
    }
    if t.starts_with("sysrq: ") || t.starts_with("SysRq : ") {
        return Some(start(K::Sysrq, Single));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::ReportKind as K;

    fn kind(s: &str) -> Option<K> {
        classify(s).map(|s| s.kind)
    }

    #[test]
    fn starts() {
        assert_eq!(
            kind("BUG: KASAN: slab-use-after-free in xas_start+0x1ef/0x7b0"),
            Some(K::Kasan)
        );
        assert_eq!(
            kind("watchdog: BUG: soft lockup - CPU#0 stuck for 6s! [init:1]"),
            Some(K::SoftLockup)
        );
        assert_eq!(
            kind("INFO: task init:81 blocked for more than 5 seconds."),
            Some(K::HungTask)
        );
        assert_eq!(
            kind("rcu: INFO: rcu_preempt self-detected stall on CPU"),
            Some(K::RcuStall)
        );
        assert_eq!(
            kind("vmstat_refresh: nr_shmem -4713"),
            Some(K::VmstatRefresh)
        );
        assert_eq!(kind("vmstat_refresh: nr_shmem 4713"), None);
        assert_eq!(
            kind("kernel BUG at lib/list_debug.c:59!"),
            Some(K::ListCorruption)
        );
        assert_eq!(kind("kernel BUG at mm/shmem.c:1234!"), Some(K::KernelBug));
        assert_eq!(
            kind("BUG provoke_cache (Tainted: G           OE     ): Poison overwritten"),
            Some(K::SlabCorruption)
        );
        assert_eq!(
            kind("BUG: Bad page state in process init  pfn:3c99b"),
            Some(K::BadPageState)
        );
        assert_eq!(
            kind("swap_info_get: Unused swap offset entry 00000123"),
            Some(K::Bug)
        );
        assert_eq!(
            kind("Out of memory: Killed process 79 (init) total-vm:182004kB"),
            Some(K::OomKill)
        );
        assert_eq!(
            kind("Memory cgroup out of memory: Killed process 79 (a)"),
            Some(K::OomKill)
        );
        assert_eq!(
            kind("crc7: loading out-of-tree module taints kernel."),
            Some(K::Taint)
        );
        assert_eq!(kind("sysrq: Trigger a crash"), Some(K::Sysrq));
        assert_eq!(kind("Oops: 0002 [#1] PREEMPT SMP NOPTI"), Some(K::Oops));
        assert_eq!(kind("Disabling lock debugging due to kernel taint"), None);
        assert_eq!(kind("divide error: 0000 [#1] SMP KASAN"), Some(K::Oops));
        assert_eq!(kind("PANIC: double fault, error_code: 0x0"), Some(K::Oops));
        assert_eq!(
            kind("Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008"),
            Some(K::Oops)
        );
        assert_eq!(
            kind("Internal error: Oops: 96000005 [#1] PREEMPT SMP"),
            Some(K::Oops)
        );
        assert_eq!(
            kind("unreferenced object 0xffff88007658a9e0 (size 944):"),
            Some(K::MemoryLeak)
        );
        assert_eq!(
            kind("unregister_netdevice: waiting for lo to become free. Usage count = 5"),
            Some(K::Bug)
        );
        assert_eq!(kind("BUG: Dentry still in use"), Some(K::Bug));
        assert_eq!(kind("page dumped because: nonzero mapcount"), None);
        assert_eq!(
            kind("WARNING: fs/dcache.c:829 at fast_dput+0x334/0x430, CPU#1: syz/5830"),
            Some(K::Warning)
        );
        assert_eq!(
            kind("WARNING: at mm/shmem.c:12 shmem_x()"),
            Some(K::Warning)
        );
        assert_eq!(
            kind("WARNING: possible circular locking dependency detected"),
            Some(K::Warning)
        );
        assert_eq!(
            kind("WARNING: syz-executor/123 still has locks held!"),
            Some(K::Warning)
        );
    }

    #[test]
    fn informational_lines_are_not_reports() {
        for line in INFORMATIONAL {
            assert_eq!(kind(line), None, "{line}");
        }
        for line in [
            "WARNING: the mand mount option is being deprecated and will be removed in v5.15!",
            "WARNING: fbcon: Driver 'vkmsdrmfb' missed to adjust virtual screen size (0x0 vs. 128x16)",
            "WARNING: /etc/ssh/moduli does not exist, using fixed modulus",
            "WARNING: at the end",
            "BUG UNIX (Not tainted): kasan: bad access detected",
        ] {
            assert_eq!(kind(line), None, "{line}");
        }
    }

    #[test]
    fn warn_formats() {
        assert_eq!(
            warn_format("fs/dcache.c:829 at fast_dput+0x334/0x430, CPU#1: syz/5830"),
            Some(WarnLine {
                file: "fs/dcache.c:829",
                site: "fast_dput+0x334/0x430"
            })
        );
        assert_eq!(
            warn_format("lib/refcount.c:28 at 0x0, CPU#0: syz.1.2/77"),
            Some(WarnLine {
                file: "lib/refcount.c:28",
                site: "0x0"
            })
        );
        assert_eq!(
            warn_format("CPU: 0 PID: 1 at mm/shmem.c:1 shmem_x+0x1/0x2 [m]"),
            Some(WarnLine {
                file: "mm/shmem.c:1",
                site: "shmem_x+0x1/0x2"
            })
        );
        assert_eq!(
            warn_format("at kernel/a.c:3 f()"),
            Some(WarnLine {
                file: "kernel/a.c:3",
                site: "f()"
            })
        );
        assert_eq!(warn_format("the mand mount option is deprecated"), None);
    }
}
