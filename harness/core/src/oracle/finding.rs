//! Findings and the verdict over one run.
//!
//! A finding is something the kernel did wrong, never something the harness did wrong (those
//! are errors of the host). Every finding has a **signature**, `kind:where`, stable across
//! runs and kernels, so that replay, minimization and bisection chase the same bug:
//!
//! | kind     | signature example                         | raised when                                   |
//! |----------|-------------------------------------------|-----------------------------------------------|
//! | data     | `data:memfd:check`                        | a byte read back differs from the model       |
//! | result   | `result:swapoff:ENOMEM`                   | an operation returned what the model forbids  |
//! | signal   | `signal:SIGBUS:touch`                     | the program died of a signal                  |
//! | kernel   | `kernel:WARNING in shmem_replace_folio`   | the console shows a report (see `console`)    |
//! | taint    | `taint:W`                                 | the kernel gained taint flags during the run  |
//! | hang     | `hang:swapoff`                            | an operation or the guest stopped answering   |
//! | leak     | `leak:shmem`                              | accounting did not return to its baseline     |
//! | zone     | `zone:gem:fault:Normal`                   | a DMA32-bound page lives above 4 GiB (`zones`) |

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::Model;
use super::zones::ZoneTracker;
use crate::console::KernelReport;
use crate::program::{Op, Program};
use crate::protocol::{errno, ChildExit, OpRecord, OpResult, Teardown};
use crate::zoneinfo::Zone;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FindingKind {
    Data,
    Result,
    Signal,
    Kernel,
    Taint,
    Hang,
    Leak,
    Zone,
}

impl FindingKind {
    pub fn tag(self) -> &'static str {
        match self {
            FindingKind::Data => "data",
            FindingKind::Result => "result",
            FindingKind::Signal => "signal",
            FindingKind::Kernel => "kernel",
            FindingKind::Taint => "taint",
            FindingKind::Hang => "hang",
            FindingKind::Leak => "leak",
            FindingKind::Zone => "zone",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    pub kind: FindingKind,
    /// One line for humans.
    pub title: String,
    /// `kind:where`, stable across runs.
    pub signature: String,
    /// The operation it was seen at, if any.
    pub op: Option<u32>,
    /// Extra lines: the mismatch, the console excerpt, the accounting delta.
    pub detail: String,
}

impl Finding {
    pub fn new(
        kind: FindingKind,
        place: &str,
        title: String,
        op: Option<u32>,
        detail: String,
    ) -> Self {
        Finding {
            kind,
            title,
            signature: format!("{}:{place}", kind.tag()),
            op,
            detail,
        }
    }
}

/// All findings of one run, deduplicated by signature (first occurrence kept).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    pub findings: Vec<Finding>,
    /// DMA32 pages that came back from swap at a new PFN, by `kind:op`
    /// ([`ZoneTracker::replaced`]): what the run reached, not what it found.
    #[serde(default)]
    pub replaced: BTreeMap<String, u64>,
}

impl Verdict {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    pub fn push(&mut self, f: Finding) {
        if !self.findings.iter().any(|g| g.signature == f.signature) {
            self.findings.push(f);
        }
    }

    pub fn signatures(&self) -> Vec<&str> {
        self.findings.iter().map(|f| f.signature.as_str()).collect()
    }
}

/// Letters of the kernel's taint bits, in bit order (`include/linux/panic.h`).
const TAINT_LETTERS: &[u8] = b"PFSRMBUDAWCIOELKXT";

/// `"OE"` for taint bits 12 and 13, etc.
pub fn taint_letters(bits: u64) -> String {
    TAINT_LETTERS
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, &c)| c as char)
        .collect()
}

/// Signal names for the signals a program can die of.
pub fn signal_name(sig: i32) -> String {
    match sig {
        4 => "SIGILL".into(),
        6 => "SIGABRT".into(),
        7 => "SIGBUS".into(),
        9 => "SIGKILL".into(),
        11 => "SIGSEGV".into(),
        other => format!("SIG{other}"),
    }
}

/// What the host knows at the end of a run.
#[derive(Debug)]
pub struct RunFacts<'a> {
    pub program: &'a Program,
    /// Swap devices on at program start.
    pub swap_on: Vec<bool>,
    pub records: &'a [OpRecord],
    /// `None` if the agent never said the program ended (the guest died or hung).
    pub exit: Option<&'a ChildExit>,
    pub teardown: Option<&'a Teardown>,
    pub reports: &'a [KernelReport],
    /// Taint flags at the program's start (after module loading).
    pub taint_before: u64,
    /// The guest's zones, to name the zone of a misplaced page.
    pub zones: &'a [Zone],
}

/// Judges one run: recomputes every expectation from the program and compares.
pub fn judge(facts: &RunFacts<'_>) -> Verdict {
    let mut v = Verdict::default();
    let ops = &facts.program.ops;
    let kinds = object_kinds(facts.program);
    let mut model = Model::new(facts.swap_on.clone());
    let mut zone_tracker = ZoneTracker::new();
    // In program order: a threaded section's records arrive interleaved. (Threads of a
    // section share no mount or swap device, and an object only for operations whose result
    // does not depend on the order (scope/section.rs), so each lane's order is all the
    // model needs for results; program order keeps that. A shared object's bytes are judged
    // in the guest, `oracle::shared`.)
    let mut records: Vec<&OpRecord> = facts.records.iter().collect();
    records.sort_by_key(|r| r.index);
    for rec in records {
        let Some(op) = ops.get(rec.index as usize) else {
            continue;
        };
        let expect = model.apply(op);
        model.observe(op, &rec.result);
        let ok = rec.result == OpResult::Ok;
        zone_tracker.background_collapse = rec.background_collapse;
        for f in zone_tracker.step(rec.index, op, ok, &rec.pages, facts.zones) {
            v.push(f);
        }
        if !expect.allows(&rec.result) {
            let got = match &rec.result {
                OpResult::Errno(e) => errno::name(*e).to_string(),
                other => other.to_string(),
            };
            let title = format!(
                "op {} `{op}` returned {}, the model expects {expect}",
                rec.index, rec.result
            );
            v.push(Finding::new(
                FindingKind::Result,
                &format!("{}:{got}", op.keyword()),
                title,
                Some(rec.index),
                String::new(),
            ));
        }
        if let Some(d) = rec.data.as_ref().filter(|d| !d.is_clean()) {
            let kind = data_subject(op)
                .and_then(|n| kinds.get(n))
                .copied()
                .unwrap_or("object");
            let title = format!(
                "op {} `{op}`: {} bytes in {} pages differ from what was written",
                rec.index, d.mismatched_bytes, d.mismatched_pages
            );
            let detail = match d.first_mismatch {
                Some((off, want, got)) => format!("first difference at offset {off:#x}: expected {want:#04x}, read {got:#04x}; read {} of {} bytes", d.read_len, d.expected_len),
                None => format!("short read: {} of {} bytes", d.read_len, d.expected_len),
            };
            v.push(Finding::new(
                FindingKind::Data,
                &format!("{kind}:{}", op.keyword()),
                title,
                Some(rec.index),
                detail,
            ));
        }
    }
    for f in v
        .findings
        .iter_mut()
        .filter(|f| f.kind == FindingKind::Zone)
    {
        let place = f.signature.trim_start_matches("zone:");
        let n = zone_tracker.violations.get(place).copied().unwrap_or(0);
        f.detail = format!("{n} page observations in all break the DMA32 mask with this signature");
        if let Some(o) = facts.records.iter().find_map(|r| r.page_owner.as_ref()) {
            f.detail.push_str(&format!(
                "\npage_owner of page {} of `{}` (PFN {:#x}), the first seen above 4 GiB:\n{}",
                o.page,
                o.obj,
                o.pfn,
                o.report.trim_end()
            ));
        }
    }
    v.replaced = std::mem::take(&mut zone_tracker.replaced);
    for r in facts.reports.iter().filter(|r| r.is_finding) {
        v.push(Finding::new(
            FindingKind::Kernel,
            &r.signature,
            r.title.clone(),
            None,
            r.text.clone(),
        ));
    }
    let keyword = |i: u32| ops.get(i as usize).map_or("?", Op::keyword);
    match facts.exit {
        Some(ChildExit::Signaled { signal, op }) => {
            let name = signal_name(*signal);
            let title = format!("the program died of {name} in op {op} `{}`", keyword(*op));
            v.push(Finding::new(
                FindingKind::Signal,
                &format!("{name}:{}", keyword(*op)),
                title,
                Some(*op),
                String::new(),
            ));
        }
        Some(ChildExit::Hung { op }) => {
            let title = format!("op {op} `{}` did not finish", keyword(*op));
            v.push(Finding::new(
                FindingKind::Hang,
                keyword(*op),
                title,
                Some(*op),
                String::new(),
            ));
        }
        Some(ChildExit::Completed | ChildExit::ExecutorError { .. }) | None => {}
    }
    if let Some(t) = facts.teardown {
        judge_teardown(&mut v, t, facts.taint_before);
    }
    v
}

fn judge_teardown(v: &mut Verdict, t: &Teardown, taint_before: u64) {
    if !t.swapoff_stuck.is_empty() {
        let title = format!(
            "swapoff of swap{:?} did not finish at teardown: a swap entry leaked",
            t.swapoff_stuck
        );
        v.push(Finding::new(
            FindingKind::Leak,
            "swap",
            title,
            None,
            String::new(),
        ));
    }
    if t.after.shmem_kib != t.baseline.shmem_kib {
        let title = format!(
            "Shmem is {} KiB after teardown, {} KiB before the program",
            t.after.shmem_kib, t.baseline.shmem_kib
        );
        let detail = format!(
            "polled {} ms after a reclaim pass and swapoff of every device",
            t.settle_ms
        );
        v.push(Finding::new(
            FindingKind::Leak,
            "shmem",
            title,
            None,
            detail,
        ));
    }
    // The baseline can be high but not low: entries freed before the program may still sit
    // in the per-CPU swap slot caches, while `after` follows a swapoff of every device (exact).
    // Less swap after than before is those caches emptied, not a leak.
    if t.after.swap_used_kib > t.baseline.swap_used_kib {
        let title = format!(
            "swap in use is {} KiB after teardown, {} KiB before",
            t.after.swap_used_kib, t.baseline.swap_used_kib
        );
        v.push(Finding::new(
            FindingKind::Leak,
            "swap-used",
            title,
            None,
            String::new(),
        ));
    }
    let new_taint = t.after.taint & !taint_before;
    if new_taint != 0 {
        let letters = taint_letters(new_taint);
        let title = format!("the kernel gained taint {letters} during the program");
        v.push(Finding::new(
            FindingKind::Taint,
            &letters,
            title,
            None,
            String::new(),
        ));
    }
}

/// Object kind (`memfd` / `tmpfs`) by object and mapping name.
fn object_kinds(p: &Program) -> BTreeMap<&str, &'static str> {
    let mut kinds = BTreeMap::new();
    for op in &p.ops {
        match op {
            Op::Memfd { obj, .. } => {
                kinds.insert(obj.as_str(), "memfd");
            }
            Op::Tmpfs { obj, .. } => {
                kinds.insert(obj.as_str(), "tmpfs");
            }
            Op::Gem { obj, .. } => {
                kinds.insert(obj.as_str(), "gem");
            }
            Op::Mmap { map, obj, .. } => {
                let k = kinds.get(obj.as_str()).copied().unwrap_or("object");
                kinds.insert(map.as_str(), k);
            }
            _ => {}
        }
    }
    kinds
}

fn data_subject(op: &Op) -> Option<&str> {
    match op {
        Op::Check { obj, .. } => Some(obj),
        Op::Touch { map, .. } => Some(map),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Accounting;

    fn judge_swap(before: u64, after: u64) -> Vec<String> {
        let program = Program::default();
        let acct = |swap_used_kib| Accounting {
            shmem_kib: 10,
            swap_used_kib,
            taint: 0,
        };
        let teardown = Teardown {
            baseline: acct(before),
            after: acct(after),
            ..Teardown::default()
        };
        let v = judge(&RunFacts {
            program: &program,
            swap_on: vec![true],
            records: &[],
            exit: Some(&ChildExit::Completed),
            teardown: Some(&teardown),
            reports: &[],
            taint_before: 0,
            zones: &[],
        });
        v.signatures().into_iter().map(String::from).collect()
    }

    fn rec(index: u32, result: OpResult) -> OpRecord {
        OpRecord::bare(index, result)
    }

    #[test]
    fn records_of_a_section_are_judged_in_program_order_whatever_their_arrival() {
        let program = crate::program::parse(
            "memfd m0 size=4K\nthreads\nthread a\n  swapoff swap0\nthread b\n  close m0\njoin\nswapon swap0\n",
        )
        .expect("valid");
        let judge_arrival = |order: &[u32], close: OpResult, swapoff: OpResult| {
            let records: Vec<OpRecord> = order
                .iter()
                .map(|&i| match i {
                    3 => rec(i, swapoff.clone()),
                    5 => rec(i, close.clone()),
                    _ => rec(i, OpResult::Ok),
                })
                .collect();
            let v = judge(&RunFacts {
                program: &program,
                swap_on: vec![true, false],
                records: &records,
                exit: Some(&ChildExit::Completed),
                teardown: None,
                reports: &[],
                taint_before: 0,
                zones: &[],
            });
            v.signatures()
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        let interleaved = [0, 1, 4, 5, 2, 3, 6, 7];
        assert!(judge_arrival(&interleaved, OpResult::Ok, OpResult::Ok).is_empty());
        // swapoff racing may fail for want of memory; swap0 is then still on at `swapon`.
        assert_eq!(
            judge_arrival(&interleaved, OpResult::Ok, OpResult::Errno(errno::ENOMEM)),
            ["result:swapon:ok"],
            "after ENOMEM the model expects EBUSY from swapon, and the kernel said ok"
        );
        // A racing close must still succeed: anything else is a finding.
        assert_eq!(
            judge_arrival(&interleaved, OpResult::Errno(errno::EBUSY), OpResult::Ok),
            ["result:close:EBUSY"]
        );
    }

    #[test]
    fn swap_left_in_use_is_a_leak_and_slot_caches_emptied_are_not() {
        assert_eq!(judge_swap(0, 64), ["leak:swap-used"]);
        assert!(judge_swap(268, 0).is_empty(), "freed before the program");
        assert!(judge_swap(0, 0).is_empty());
    }

    /// Judges the shared-object program below with the `join` record's data check made by the
    /// shared-object model from `content` (what the agent read back at the join).
    fn judge_shared_join(content: &[u8]) -> Vec<String> {
        use crate::oracle::model::Model;
        use crate::oracle::shared::SectionWrites;
        let program = crate::program::parse(
            "memfd m0 size=8K\nwrite m0 off=0 len=8K seed=1\nthreads\nthread a\n  write m0 off=0 len=8K seed=2\nthread b\n  write m0 off=4K len=4K seed=3\njoin\n",
        )
        .expect("two threads may write one memfd");
        let ops = &program.ops;
        let mut model = Model::new(vec![true]);
        ops[..2].iter().for_each(|op| {
            model.apply(op);
        });
        let writes = SectionWrites::of(&model, &[vec![&ops[4]], vec![&ops[6]]]);
        ops[2..].iter().for_each(|op| {
            model.apply(op);
        });
        let mut records: Vec<OpRecord> = (0..ops.len() as u32)
            .map(|i| rec(i, OpResult::Ok))
            .collect();
        records[7].data = Some(writes.at_join(&model, "m0").compare(0, content));
        let v = judge(&RunFacts {
            program: &program,
            swap_on: vec![true],
            records: &records,
            exit: Some(&ChildExit::Completed),
            teardown: None,
            reports: &[],
            taint_before: 0,
            zones: &[],
        });
        v.signatures().into_iter().map(String::from).collect()
    }

    #[test]
    fn a_shared_object_is_judged_at_the_join_by_what_some_interleaving_leaves() {
        let mut content = vec![0u8; 8192];
        // b's write first, a's over it: all of a's (not the program order's answer).
        crate::oracle::pattern::fill(2, 0, &mut content);
        assert!(judge_shared_join(&content).is_empty());
        // Program order: b's write last over the second page.
        crate::oracle::pattern::fill(3, 4096, &mut content[4096..]);
        assert!(judge_shared_join(&content).is_empty());
        // A byte of the first write, which both threads overwrote: no interleaving leaves it.
        content[5000] = crate::oracle::pattern::byte(1, 5000);
        assert_ne!(content[5000], crate::oracle::pattern::byte(2, 5000));
        assert_ne!(content[5000], crate::oracle::pattern::byte(3, 5000));
        assert_eq!(judge_shared_join(&content), ["data:object:join"]);
    }
}
