//! A report being collected: its lines, how it ends, which following report starts it
//! absorbs (the x86 oops banner, a panic that prints its stack, ...).

use super::classify::{is_separator, EndRule, Start};
use super::{frames, normalize_text, report, KernelReport, ReportKind};
use super::{MAX_BODY_LINES, MAX_LINES_WITHOUT_TRACE, MAX_LOCKDEP_BODY_LINES};

/// A report being collected.
#[derive(Debug)]
pub(crate) struct Open {
    kind: ReportKind,
    end: EndRule,
    first_line: usize,
    lines: Vec<String>,
    truncated: bool,
    /// A `Call Trace:` (or another stack header) was seen.
    seen_trace: bool,
    /// A `Call Trace:` line itself was seen.
    seen_call_trace: bool,
    /// The x86 oops banner (`Oops:`, `invalid opcode:`, `general protection fault`) was seen.
    seen_banner: bool,
    /// A `Kernel panic` line continued the report (its stack comes with the panic): the
    /// index of that line in `lines` and its console line number.
    panic_at: Option<(usize, usize)>,
    /// Stack frames seen after the call trace started.
    trace_frames: usize,
    /// A `<TASK>` marker was seen (the kernel closes its stacks with `</TASK>`).
    task_marker: bool,
}

impl Open {
    pub(crate) fn new(start: Start, first_line: usize, msg: &str) -> Open {
        Open {
            kind: start.kind,
            end: start.end,
            first_line,
            lines: vec![msg.to_string()],
            truncated: false,
            seen_trace: false,
            seen_call_trace: false,
            seen_banner: start.oops_banner,
            panic_at: None,
            trace_frames: 0,
            task_marker: false,
        }
    }

    pub(crate) fn is_end(&self, msg: &str) -> bool {
        let t = msg.trim();
        match self.end {
            EndRule::EndTrace => t.starts_with("---[ end trace"),
            EndRule::Separator => self.lines.len() > 1 && is_separator(t),
            EndRule::Panic => {
                t.starts_with("---[ end Kernel panic") || t.starts_with("Kernel Offset:")
            }
            EndRule::TaskClose => t == "</TASK>",
            EndRule::Lockdep => self.seen_trace && t == "</TASK>",
            EndRule::Indented => false,
            EndRule::Single => true,
        }
    }

    /// Does the report end before `msg`? A lockdep report on a kernel without `<TASK>`
    /// markers ends at the first line after its final stack that is not part of it.
    pub(crate) fn ends_before(&self, msg: &str) -> bool {
        match self.end {
            EndRule::Lockdep => {
                self.trace_frames > 0
                    && !self.task_marker
                    && !msg.starts_with([' ', '\t', '?', '<', '['])
                    && frames::parse_frame(msg).is_none()
            }
            // kmemleak: every line after the first is indented; syzkaller's `BUG: memory
            // leak` is followed by the kernel's `unreferenced object` line.
            EndRule::Indented => {
                let continues = msg.starts_with([' ', '\t'])
                    || (self.lines.len() == 1 && msg.starts_with("unreferenced object"));
                !continues
            }
            _ => false,
        }
    }

    /// Most lines the body keeps.
    fn limit(&self) -> usize {
        if self.end == EndRule::Lockdep {
            MAX_LOCKDEP_BODY_LINES
        } else {
            MAX_BODY_LINES
        }
    }

    /// Does a `Kernel panic` line continue this report? It does when the report has not
    /// printed its stack yet: old kernels panic for `panic_on_warn` inside `__warn()`, before
    /// the registers and the call trace, and the panic's own stack is the report's.
    pub(crate) fn takes_panic(&self, s: &Start) -> bool {
        s.kind == ReportKind::Panic
            && self.kind != ReportKind::Panic
            && self.panic_at.is_none()
            && !self.seen_call_trace
    }

    /// Continue the report with the panic line `msg` (console line `line_no`): from now on
    /// it ends where the panic ends.
    pub(crate) fn take_panic(&mut self, msg: &str, line_no: usize) {
        if self.lines.len() < self.limit() {
            self.panic_at = Some((self.lines.len(), line_no));
        }
        self.end = EndRule::Panic;
        self.push(msg);
    }

    /// Does the start line `s` continue this report rather than begin a new one?
    pub(crate) fn absorbs(&mut self, s: &Start) -> bool {
        use ReportKind as K;
        if s.oops_banner
            && matches!(self.kind, K::Oops | K::KernelBug | K::ListCorruption)
            && !self.seen_banner
            && !self.seen_trace
        {
            self.seen_banner = true;
            return true;
        }
        if s.oops_banner || self.seen_call_trace {
            return false;
        }
        match self.kind {
            // list_del corruption. ... / ------------[ cut here ]------------ /
            // kernel BUG at lib/list_debug.c:59! (or a WARNING at lib/list_debug.c)
            K::ListCorruption => {
                self.lines.len() < 6
                    && matches!(s.kind, K::KernelBug | K::Warning | K::ListCorruption)
            }
            // 6.12's object_err() follows the SLUB report (after its object dump, before any
            // call trace) with a WARN_ON at mm/slub.c.
            K::SlabCorruption => s.kind == K::Warning,
            // `BUG: Dentry ... still in use` is a pr_err() that the WARN_ON of
            // umount_check() follows: one report, which ends where the WARNING ends.
            K::Bug if self.end == EndRule::TaskClose => {
                let takes =
                    self.lines.len() < 4 && s.kind == K::Warning && s.end == EndRule::EndTrace;
                if takes {
                    self.end = EndRule::EndTrace;
                }
                takes
            }
            K::MemoryLeak => s.kind == K::MemoryLeak && self.lines.len() == 1,
            _ => false,
        }
    }

    /// Add a line to the body (dropped if the body is full).
    pub(crate) fn push(&mut self, msg: &str) {
        let t = msg.trim();
        // x86 prints `Call Trace:`, arm64 `Call trace:`.
        if t.starts_with("Call Trace") || t.starts_with("Call trace") {
            self.seen_call_trace = true;
        }
        if t == "<TASK>" {
            self.task_marker = true;
        }
        if self.seen_trace && frames::parse_frame(t).is_some() {
            self.trace_frames += 1;
        }
        if self.seen_call_trace
            || t.starts_with("Allocated in ")
            || t.starts_with("stack backtrace:")
        {
            self.seen_trace = true;
        }
        if self.lines.len() < self.limit() {
            self.lines.push(msg.to_string());
        }
    }

    /// Should the report be closed although its end marker has not been seen? Marks a full
    /// body as truncated.
    pub(crate) fn is_exhausted(&mut self) -> bool {
        if self.lines.len() >= self.limit() {
            self.truncated = true;
            return true;
        }
        self.end == EndRule::TaskClose
            && !self.seen_trace
            && self.lines.len() >= MAX_LINES_WITHOUT_TRACE
    }

    /// The report, then the panic that continued it (if any) as a report of its own.
    pub(crate) fn finish(self) -> Vec<KernelReport> {
        let mut out = vec![make_report(
            self.kind,
            self.first_line,
            &self.lines,
            self.truncated,
        )];
        if let Some((at, line_no)) = self.panic_at {
            out.push(make_report(
                ReportKind::Panic,
                line_no,
                &self.lines[at..],
                self.truncated,
            ));
        }
        out
    }
}

fn make_report(
    kind: ReportKind,
    first_line: usize,
    lines: &[String],
    truncated: bool,
) -> KernelReport {
    let (mut title, signature) = report::describe(kind, lines);
    // A last pass, so that no signature carries noise whatever part of it came from.
    let signature = normalize_text(&signature);
    if title.trim().is_empty() {
        title = kind.tag().to_string();
    }
    KernelReport {
        kind,
        title,
        first_line,
        text: lines.join("\n"),
        is_finding: kind.is_finding(),
        signature,
        truncated,
    }
}

/// What makes a cut-off report a copy of a whole one: the kind and the function its title
/// names (`KASAN: use-after-free Read in shmem_unuse` and `... Write in shmem_unuse` are the
/// same loop; `Oops in a_fn` and `Oops in b_fn` are two oopses).
pub(crate) fn cut_off_key(r: &KernelReport) -> (ReportKind, String) {
    let place = r
        .title
        .rsplit_once(" in ")
        .map_or(r.title.as_str(), |(_, f)| f);
    (r.kind, place.to_string())
}
