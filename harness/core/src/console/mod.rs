//! Kernel console parser: turns the text a kernel prints on its console into
//! [`KernelReport`]s (findings such as WARNINGs, Oopses, KASAN reports, lockups and panics,
//! plus a few recognised non-finding events), syzkaller-style but small.
//!
//! # Input
//! Console bytes arrive in arbitrary chunks ([`ConsoleScanner::feed`]); lines may be split
//! anywhere, including inside a UTF-8 sequence. Lines are split on `\n`, decoded lossily,
//! `\r` is removed, and the printk prefixes are stripped: the timestamp `[    1.234567]`,
//! the caller id `[    T1]`/`[  C0]` (CONFIG_PRINTK_CALLER, common on self-built and
//! syzkaller kernels; not set on Debian's) and a syslog level `<4>`. A line longer than
//! [`MAX_LINE_BYTES`] is cut into pieces of exactly that size, so the result never depends
//! on how the input was chunked. Caller ids are dropped, not used to separate the output of
//! concurrent CPUs.
//!
//! # Reports
//! A report starts at a recognised first line and ends at its end marker: `---[ end trace
//! ... ]---` (WARNING, kernel BUG, Oops, list corruption), the closing `=====` line (KASAN,
//! KFENCE, UBSAN), `---[ end Kernel panic ...` or the `Kernel Offset:` line before it (with
//! `panic=-1` the guest resets before the end marker is printed), the `</TASK>` that closes
//! the first task stack (hung task, lockups, RCU stalls, bad page state, SLUB errors, other
//! `BUG:` lines), the end of the final stack of a lockdep report (read by its structure, see
//! `lockdep.rs`), the first unindented line after a kmemleak report, or the start of the next
//! report. A report that has not printed its call trace yet stays open through a following
//! `Kernel panic` line (old kernels panic for `panic_on_warn` inside `__warn()`, and the
//! panic's stack is the WARNING's); both are returned. A body is bounded to
//! [`MAX_BODY_LINES`] lines, a lockdep report's to [`MAX_LOCKDEP_BODY_LINES`]
//! ([`KernelReport::truncated`]); a report still open when the console ends is returned by
//! [`ConsoleScanner::finish`], unless a report of the same kind in the same function already
//! ended properly (a kernel reporting in a loop is cut off mid-report when its VM is ended;
//! that last copy may lack the cache or the free stack and so get another signature). `text` holds the body with the printk prefixes
//! stripped.
//!
//! When a panic follows an Oops or a KASAN report in the same console, both are reported;
//! callers dedupe by signature if they want.
//!
//! # Titles and signatures
//! A title names the report the way kernel developers do (`WARNING in shmem_replace_folio`,
//! `KASAN: slab-use-after-free Read in shmem_unuse`, `kernel BUG at mm/shmem.c:1234`,
//! `BUG: soft lockup in shmem_unuse`, `INFO: task hung in shmem_unuse`, `kernel BUG in
//! sctp_packet_transmit`, `memory leak in new_inode_pseudo`,
//! `Kernel panic - not syncing: sysrq triggered crash`). The function is the one the report's
//! first line names (the `WARNING: ... at file:line func+0x..` site, the KASAN access site) or
//! the `RIP:`/`pc :` function, unless that is generic (`generic.rs`: plumbing such as locking,
//! scheduling, allocation, `xas_*`, list debugging, and helpers that only report, such as
//! `skb_panic`, `fortify_panic`, refcount helpers, `__might_sleep`, `warn_slowpath*`, the
//! stack-walk and trap frames of every architecture, `save_stack`/`kasan_save_*`), in which
//! case the first reliable (not `?`) non-generic frame of the report's own stack is used;
//! lockups and stalls skip the frames inside `<IRQ>`/`<NMI>`.
//!
//! The [`KernelReport::signature`] is a stable string to group reports and to recognise
//! the same bug in a later run (repro, minimization, bisection): `<KIND>:<where>`, with no
//! offsets, addresses, PIDs, CPU numbers, sizes or line numbers ([`normalize_text`] is applied
//! to every signature), e.g. `WARNING:shmem_replace_folio`, `HUNG_TASK:shmem_unuse`,
//! `PANIC:Fatal exception`. Lockdep signatures are `WARNING:<headline>:<place>`, the place
//! being the two locks of a circular or recursive dependency. See `docs/console-triage.md`.
//!
//! **KASAN, KFENCE and SLUB signatures are keyed on the free, not the access.** One race
//! (swapoff's `shmem_unuse` against `shmem_evict_inode`) shows up as a use-after-free in
//! `shmem_unuse`, in `shmem_find_swap_entries`, in `xas_*`, ... depending on timing; what stays
//! the same is the object (its slab cache) and where it was freed. So a use-after-free,
//! double-free or invalid-free signature is
//! `KASAN:<bug type>:<cache>:free:<first meaningful frame of the "Freed by task" stack>`,
//! e.g. `KASAN:use-after-free:shmem_inode_cache:free:i_callback`, where the free stack
//! skips `kasan_*`, `kmem_cache_free`/`kfree`, slab internals, `rcu_*`/`__rcu_*` and softirq
//! frames. When every free frame is such plumbing (an object freed from an RCU callback that
//! was tail-called away), the caller of `call_rcu` from "Last potentially related work
//! creation" is used; failing that, `access:<func>`. The bug type is normalized
//! (`slab-use-after-free`, printed since 6.5, and `use-after-free`, printed by 6.1, are both
//! `use-after-free`), and so is `kmalloc-rnd-NN-<size>` (to `kmalloc-<size>`). Other KASAN bug
//! types (out-of-bounds, null-ptr-deref) use `access:<func>`. A cache of `-` means the report
//! named none. Beware slab merging: on kernels booted without `slab_nomerge` an object can be
//! reported under the name of another cache of the same size (cf. the KFENCE golden file);
//! `shmem_inode_cache` has a constructor and is never merged.
//!
//! # Non-findings
//! Recognised but `is_finding == false`: OOM kills ([`ReportKind::OomKill`], from
//! `Out of memory: Killed process` and `Memory cgroup out of memory: Killed process`), the
//! taint lines that loading an out-of-tree or unsigned module prints
//! ([`ReportKind::Taint`]), and `sysrq: ...` lines ([`ReportKind::Sysrq`]). Everything else
//! that is not recognised is ignored, in particular the informational lines that start with
//! `WARNING:` (deprecation and driver notices, user space) and a lone `BUG <cache> (...):
//! kasan: bad access detected`; each exclusion is listed with its reason in `classify.rs`
//! (`INFORMATIONAL`).
//!
//! # Bounds
//! Nothing grows without limit: a partial line is at most [`MAX_LINE_BYTES`], a body at most
//! [`MAX_BODY_LINES`] lines ([`MAX_LOCKDEP_BODY_LINES`] for lockdep); a scanner returns at
//! most [`MAX_REPORTS_PER_SIGNATURE`] reports with the same signature and at most
//! [`MAX_REPORTS`] in total, and counts the rest in [`ConsoleScanner::suppressed`]. The parser never panics, whatever the input.

mod analysis;
mod classify;
mod frames;
mod generic;
mod line;
mod lockdep;
mod normalize;
mod open;
mod report;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod triage_tests;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use classify::{classify, EndRule};
pub use normalize::{normalize_text, signature_noise};
use open::{cut_off_key, Open};

/// Longest console line kept as one line; longer lines are cut into pieces of this size.
pub const MAX_LINE_BYTES: usize = 4096;
/// Most lines kept in one report's body (the first line included).
pub const MAX_BODY_LINES: usize = 200;
/// Most lines kept in the body of a lockdep report (its dependency chain prints a stack per
/// link before the final stack that names the report).
pub const MAX_LOCKDEP_BODY_LINES: usize = 3 * MAX_BODY_LINES;
/// A report that ends at `</TASK>` but has printed no `Call Trace` after this many lines is
/// closed (stack-less `BUG:` lines must not swallow the console).
const MAX_LINES_WITHOUT_TRACE: usize = 40;
/// Most reports a scanner returns in total.
pub const MAX_REPORTS: usize = 1024;
/// Most reports with one signature a scanner returns (a soft lockup repeats every few
/// seconds for as long as it lasts).
pub const MAX_REPORTS_PER_SIGNATURE: u32 = 16;

/// What kind of kernel report (or recognised event) a [`KernelReport`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ReportKind {
    /// Other `BUG: ...` lines (`sleeping function called from invalid context`,
    /// `Bad rss-counter state`, ...), UBSAN reports, and mm/swapfile.c's
    /// `Bad/Unused swap file/offset entry` errors.
    Bug,
    /// `kernel BUG at file:line!` (BUG_ON/VM_BUG_ON).
    KernelBug,
    /// `WARNING: CPU: N PID: N at file:line func+0x..` and lockdep-style `WARNING: ...`.
    Warning,
    /// `BUG: kernel NULL pointer dereference`, `BUG: unable to handle page fault`,
    /// `general protection fault`, `Oops: ...`.
    Oops,
    /// `BUG: KASAN: ...`.
    Kasan,
    /// `BUG: KFENCE: ...` (Debian 6.12 has KFENCE built in, off unless
    /// `kfence.sample_interval` is set).
    Kfence,
    /// `BUG <cache> (...): <reason>`: a SLUB consistency check (`slub_debug`), e.g.
    /// `Poison overwritten` after a write to a freed object.
    SlabCorruption,
    /// `BUG: Bad page state in process ...`.
    BadPageState,
    /// `list_add corruption` / `list_del corruption` (with CONFIG_BUG_ON_DATA_CORRUPTION, as on
    /// Debian, followed by `kernel BUG at lib/list_debug.c`; otherwise by a WARNING).
    ListCorruption,
    /// `Kernel panic - not syncing: <reason>`.
    Panic,
    /// `watchdog: BUG: soft lockup - CPU#0 stuck for 22s!`.
    SoftLockup,
    /// `Watchdog detected hard LOCKUP on cpu N`.
    HardLockup,
    /// `INFO: task NAME:PID blocked for more than N seconds.`.
    HungTask,
    /// `rcu: INFO: rcu_preempt self-detected stall on CPU` / `detected stalls on CPUs/tasks`.
    RcuStall,
    /// `vmstat_refresh: <counter> <negative value>` (writing /proc/sys/vm/stat_refresh).
    VmstatRefresh,
    /// A kmemleak report (`unreferenced object 0x... (size N):` and its backtrace, as
    /// `/sys/kernel/debug/kmemleak` prints it; syzkaller precedes it with `BUG: memory leak`).
    MemoryLeak,
    /// An OOM kill (global or memcg). Not a finding.
    OomKill,
    /// A line announcing a new taint (`loading out-of-tree module taints kernel.`,
    /// `module verification failed: ... - tainting kernel`). Not a finding.
    Taint,
    /// A `sysrq: ...` line. Not a finding.
    Sysrq,
}

impl ReportKind {
    /// All kinds, in declaration order.
    pub const ALL: [ReportKind; 19] = [
        ReportKind::Bug,
        ReportKind::KernelBug,
        ReportKind::Warning,
        ReportKind::Oops,
        ReportKind::Kasan,
        ReportKind::Kfence,
        ReportKind::SlabCorruption,
        ReportKind::BadPageState,
        ReportKind::ListCorruption,
        ReportKind::Panic,
        ReportKind::SoftLockup,
        ReportKind::HardLockup,
        ReportKind::HungTask,
        ReportKind::RcuStall,
        ReportKind::VmstatRefresh,
        ReportKind::MemoryLeak,
        ReportKind::OomKill,
        ReportKind::Taint,
        ReportKind::Sysrq,
    ];

    /// The stable upper-case tag that starts signatures (`WARNING`, `KASAN`, `HUNG_TASK`, ...).
    pub fn tag(self) -> &'static str {
        match self {
            ReportKind::Bug => "BUG",
            ReportKind::KernelBug => "KERNEL_BUG",
            ReportKind::Warning => "WARNING",
            ReportKind::Oops => "OOPS",
            ReportKind::Kasan => "KASAN",
            ReportKind::Kfence => "KFENCE",
            ReportKind::SlabCorruption => "SLUB",
            ReportKind::BadPageState => "BAD_PAGE_STATE",
            ReportKind::ListCorruption => "LIST_CORRUPTION",
            ReportKind::Panic => "PANIC",
            ReportKind::SoftLockup => "SOFT_LOCKUP",
            ReportKind::HardLockup => "HARD_LOCKUP",
            ReportKind::HungTask => "HUNG_TASK",
            ReportKind::RcuStall => "RCU_STALL",
            ReportKind::VmstatRefresh => "VMSTAT_REFRESH",
            ReportKind::MemoryLeak => "MEMORY_LEAK",
            ReportKind::OomKill => "OOM_KILL",
            ReportKind::Taint => "TAINT",
            ReportKind::Sysrq => "SYSRQ",
        }
    }

    /// Is a report of this kind a finding (a kernel bug or a hang) rather than an event?
    pub fn is_finding(self) -> bool {
        !matches!(
            self,
            ReportKind::OomKill | ReportKind::Taint | ReportKind::Sysrq
        )
    }

    /// The kind whose [`tag`](Self::tag) is `tag`.
    pub fn from_tag(tag: &str) -> Option<ReportKind> {
        ReportKind::ALL.into_iter().find(|k| k.tag() == tag)
    }
}

impl fmt::Display for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// One report (or recognised event) found on the console.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelReport {
    /// What it is.
    pub kind: ReportKind,
    /// A human title, e.g. `WARNING in shmem_replace_folio`.
    pub title: String,
    /// 1-based number of the report's first line in the console (lines as split by the
    /// scanner: a line longer than [`MAX_LINE_BYTES`] counts as several).
    pub first_line: usize,
    /// The report's lines, printk prefixes stripped, joined with `\n` (at most
    /// [`MAX_BODY_LINES`] lines, [`MAX_LOCKDEP_BODY_LINES`] for lockdep).
    pub text: String,
    /// `kind.is_finding()`.
    pub is_finding: bool,
    /// Stable grouping key: kind and place, without offsets, addresses, PIDs or CPU numbers
    /// (see the module documentation, in particular for KASAN).
    pub signature: String,
    /// The body hit its bound ([`MAX_BODY_LINES`]) before its end marker.
    pub truncated: bool,
}

impl KernelReport {
    /// The taint flags printed in the report (its `CPU: ... Tainted: ...` line), if any.
    pub fn taint(&self) -> Option<BTreeSet<char>> {
        self.text.lines().find_map(taint_flags)
    }
}

/// Parse the taint flags of a kernel line such as
/// `CPU: 0 PID: 1 Comm: init Tainted: G    B   O E      6.1.0-56-amd64 #1`,
/// `Tainted: [B]=BAD_PAGE, [O]=OOT_MODULE` (6.12 prints both) or
/// `CPU: 0 PID: 1 Comm: init Not tainted 6.1.0 #1`.
///
/// Returns the set of taint letters (`G`, the "no proprietary module" placeholder, is not a
/// flag and is left out; `P` is kept), an empty set for "Not tainted", and `None` when the
/// line says nothing about taint.
pub fn taint_flags(line: &str) -> Option<BTreeSet<char>> {
    if line.contains("Not tainted") {
        return Some(BTreeSet::new());
    }
    let (_, rest) = line.split_once("Tainted: ")?;
    if rest.starts_with('[') {
        // [B]=BAD_PAGE, [O]=OOT_MODULE, [E]=UNSIGNED_MODULE
        let flags = rest
            .split(", ")
            .filter_map(|item| {
                let mut c = item.chars();
                match (c.next(), c.next(), c.next()) {
                    (Some('['), Some(f), Some(']')) if f.is_ascii_uppercase() => Some(f),
                    _ => None,
                }
            })
            .collect();
        return Some(flags);
    }
    Some(
        rest.chars()
            .take_while(|c| c.is_ascii_uppercase() || *c == ' ')
            .filter(|c| *c != ' ' && *c != 'G')
            .collect(),
    )
}

/// Incremental console parser. Feed it console bytes as they arrive; it returns each report
/// once the report is complete.
///
/// ```
/// use shmemfuzz_core::console::{ConsoleScanner, ReportKind};
/// let mut s = ConsoleScanner::new();
/// let mut reports = s.feed(b"[    2.2] sysrq: Trigger a crash\r\n[    2.2] Kernel panic - not sy");
/// reports.extend(s.feed(b"ncing: sysrq triggered crash\r\n"));
/// reports.extend(s.finish());
/// assert_eq!(reports[0].kind, ReportKind::Sysrq);
/// assert_eq!(reports[1].title, "Kernel panic - not syncing: sysrq triggered crash");
/// ```
#[derive(Debug, Default)]
pub struct ConsoleScanner {
    partial: Vec<u8>,
    lines_seen: usize,
    open: Option<Open>,
    emitted: usize,
    per_signature: HashMap<String, u32>,
    /// [`cut_off_key`]s of the reports that ended before the console did.
    completed: HashSet<(ReportKind, String)>,
    suppressed: u64,
}

impl ConsoleScanner {
    /// A scanner at the start of a console.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consume the next chunk of console output; return the reports completed by it.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<KernelReport> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = MAX_LINE_BYTES - self.partial.len();
            let window = &rest[..rest.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.partial.extend_from_slice(&window[..i]);
                    rest = &rest[i + 1..];
                    self.complete_line(&mut out);
                }
                None => {
                    self.partial.extend_from_slice(window);
                    rest = &rest[window.len()..];
                    if self.partial.len() >= MAX_LINE_BYTES {
                        self.complete_line(&mut out);
                    }
                }
            }
        }
        out
    }

    /// The console ended (or the caller wants what is pending now): process a last partial
    /// line and return the report still being collected, if any. The scanner stays usable.
    pub fn finish(&mut self) -> Vec<KernelReport> {
        let mut out = Vec::new();
        if !self.partial.is_empty() {
            self.complete_line(&mut out);
        }
        if let Some(open) = self.open.take() {
            for report in open.finish() {
                if self.completed.contains(&cut_off_key(&report)) {
                    // Cut off by the end of the console (the VM was ended while a kernel
                    // reported in a loop): whole reports of its kind and place were already
                    // returned, and this one may lack the lines its signature needs (the
                    // cache, the free stack).
                    self.suppressed += 1;
                } else {
                    self.emit(report, &mut out);
                }
            }
        }
        out
    }

    /// Is a report being collected (started, not yet ended)?
    pub fn in_report(&self) -> bool {
        self.open.is_some()
    }

    /// How many lines have been completed so far.
    pub fn lines_seen(&self) -> usize {
        self.lines_seen
    }

    /// How many reports were dropped by the [`MAX_REPORTS`] and
    /// [`MAX_REPORTS_PER_SIGNATURE`] bounds.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }

    fn complete_line(&mut self, out: &mut Vec<KernelReport>) {
        self.lines_seen += 1;
        let mut text = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        text.retain(|c| c != '\r');
        self.process_line(&text, out);
    }

    fn process_line(&mut self, raw: &str, out: &mut Vec<KernelReport>) {
        for msg in line::split_messages(raw) {
            self.process_message(msg.trim_end(), out);
        }
    }

    fn process_message(&mut self, msg: &str, out: &mut Vec<KernelReport>) {
        let start = classify(msg);
        if self.open.as_ref().is_some_and(|o| o.ends_before(msg)) {
            self.close(out);
        }
        if let Some(open) = self.open.as_mut() {
            if open.is_end(msg) {
                open.push(msg);
                self.close(out);
                return;
            }
            match start {
                Some(s) if open.takes_panic(&s) => {
                    open.take_panic(msg, self.lines_seen);
                    return;
                }
                Some(s) if !open.absorbs(&s) => self.close(out),
                _ => {
                    open.push(msg);
                    if open.is_exhausted() {
                        self.close(out);
                    }
                    return;
                }
            }
        }
        if let Some(s) = start {
            let open = Open::new(s, self.lines_seen, msg);
            if s.end == EndRule::Single {
                self.emit_complete(open, out);
            } else {
                self.open = Some(open);
            }
        }
    }

    fn close(&mut self, out: &mut Vec<KernelReport>) {
        if let Some(open) = self.open.take() {
            self.emit_complete(open, out);
        }
    }

    /// Emits a report that reached its end (see [`ConsoleScanner::finish`] for the others).
    fn emit_complete(&mut self, open: Open, out: &mut Vec<KernelReport>) {
        for report in open.finish() {
            self.completed.insert(cut_off_key(&report));
            self.emit(report, out);
        }
    }

    fn emit(&mut self, report: KernelReport, out: &mut Vec<KernelReport>) {
        if self.emitted >= MAX_REPORTS {
            self.suppressed += 1;
            return;
        }
        let seen = self
            .per_signature
            .entry(report.signature.clone())
            .or_insert(0);
        if *seen >= MAX_REPORTS_PER_SIGNATURE {
            self.suppressed += 1;
            return;
        }
        *seen += 1;
        self.emitted += 1;
        out.push(report);
    }
}

/// Parse a whole console log at once (same result as feeding it to a [`ConsoleScanner`] in
/// any chunking and calling [`ConsoleScanner::finish`]).
pub fn parse(text: &str) -> Vec<KernelReport> {
    parse_bytes(text.as_bytes())
}

/// [`parse`] for raw bytes (invalid UTF-8 is decoded lossily).
pub fn parse_bytes(bytes: &[u8]) -> Vec<KernelReport> {
    let mut scanner = ConsoleScanner::new();
    let mut reports = scanner.feed(bytes);
    reports.extend(scanner.finish());
    reports
}
