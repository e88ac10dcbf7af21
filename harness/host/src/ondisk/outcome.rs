//! `outcome.json`, bundle format 1: how the recorded run ended ([`OutcomeV1`]), the on-disk
//! twin of the session's outcome and the core types it holds (child exit, teardown, verdict,
//! kernel reports).
//!
//! Checked on read ([`OutcomeV1::check`]), besides the shape (`deny_unknown_fields`
//! everywhere):
//! - a kernel report's `first_line` is at least 1 and its `is_finding` agrees with its kind;
//! - the verdict's findings have distinct signatures.
//!
//! Not checked: operation numbers (the exit's, the findings') and stuck swap devices, which
//! the agent may report as `u8::MAX` for a device it did not attach.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shmemfuzz_core::console::{KernelReport, ReportKind};
use shmemfuzz_core::oracle::{Finding, FindingKind, Verdict};
use shmemfuzz_core::protocol::{Accounting, ChildExit, Teardown};

use super::OnDiskError;

/// `outcome.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeV1 {
    pub exit: Option<ChildExitV1>,
    pub teardown: Option<TeardownV1>,
    pub verdict: VerdictV1,
    pub reports: Vec<KernelReportV1>,
    pub vm_alive: bool,
    pub wall_ms: u64,
    /// The run's draw seed; absent in bundles from before draws: 0.
    #[serde(default)]
    pub draws: u64,
}

/// `"Completed"`, `{"Signaled": {signal, op}}`, `{"Hung": {op}}` or
/// `{"ExecutorError": {message}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ChildExitV1 {
    Completed,
    Signaled { signal: i32, op: u32 },
    Hung { op: u32 },
    ExecutorError { message: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountingV1 {
    pub shmem_kib: u64,
    pub swap_used_kib: u64,
    pub taint: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeardownV1 {
    pub baseline: AccountingV1,
    pub after: AccountingV1,
    /// Swap device numbers (255 for one the agent did not attach).
    pub swapoff_stuck: Vec<u8>,
    pub settle_ms: u64,
    /// `[phase, microseconds]` pairs; absent in older bundles: none.
    #[serde(default)]
    pub phases_us: Vec<(String, u64)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictV1 {
    pub findings: Vec<FindingV1>,
    /// Absent in older bundles: empty.
    #[serde(default)]
    pub replaced: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingV1 {
    pub kind: FindingKindV1,
    pub title: String,
    pub signature: String,
    /// An operation of the program.
    pub op: Option<u32>,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelReportV1 {
    pub kind: ReportKindV1,
    pub title: String,
    /// 1-based.
    pub first_line: usize,
    pub text: String,
    /// Must equal the kind's `is_finding()`.
    pub is_finding: bool,
    pub signature: String,
    pub truncated: bool,
}

/// A unit enum on disk and its runtime twin, with conversions both ways. The on-disk
/// variant names are the JSON strings: renaming one is a format change.
macro_rules! mirror {
    ($(#[$m:meta])* $disk:ident <=> $rt:ident { $($v:ident),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
        pub enum $disk { $($v),+ }

        impl From<$rt> for $disk {
            fn from(k: $rt) -> Self {
                match k { $($rt::$v => $disk::$v),+ }
            }
        }

        impl From<$disk> for $rt {
            fn from(k: $disk) -> Self {
                match k { $($disk::$v => $rt::$v),+ }
            }
        }
    };
}

mirror!(
    /// `"Data"`, `"Zone"`, ...
    FindingKindV1 <=> FindingKind { Data, Result, Signal, Kernel, Taint, Hang, Leak, Zone }
);

mirror!(
    /// `"Warning"`, `"Kasan"`, ...
    ReportKindV1 <=> ReportKind {
        Bug, KernelBug, Warning, Oops, Kasan, Kfence, SlabCorruption, BadPageState,
        ListCorruption, Panic, SoftLockup, HardLockup, HungTask, RcuStall, VmstatRefresh,
        MemoryLeak, OomKill, Taint, Sysrq,
    }
);

/// What `outcome.json` holds, in memory (the rest of the session's outcome is elsewhere in
/// the bundle, or not kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub exit: Option<ChildExit>,
    pub teardown: Option<Teardown>,
    pub verdict: Verdict,
    pub reports: Vec<KernelReport>,
    pub vm_alive: bool,
    pub wall_ms: u64,
    pub draws: u64,
}

impl From<&Outcome> for OutcomeV1 {
    fn from(o: &Outcome) -> Self {
        let acct = |a: &Accounting| AccountingV1 {
            shmem_kib: a.shmem_kib,
            swap_used_kib: a.swap_used_kib,
            taint: a.taint,
        };
        OutcomeV1 {
            exit: o.exit.as_ref().map(|e| match e {
                ChildExit::Completed => ChildExitV1::Completed,
                ChildExit::Signaled { signal, op } => ChildExitV1::Signaled {
                    signal: *signal,
                    op: *op,
                },
                ChildExit::Hung { op } => ChildExitV1::Hung { op: *op },
                ChildExit::ExecutorError { message } => ChildExitV1::ExecutorError {
                    message: message.clone(),
                },
            }),
            teardown: o.teardown.as_ref().map(|t| TeardownV1 {
                baseline: acct(&t.baseline),
                after: acct(&t.after),
                swapoff_stuck: t.swapoff_stuck.clone(),
                settle_ms: t.settle_ms,
                phases_us: t.phases_us.clone(),
            }),
            verdict: VerdictV1 {
                findings: o
                    .verdict
                    .findings
                    .iter()
                    .map(|f| FindingV1 {
                        kind: f.kind.into(),
                        title: f.title.clone(),
                        signature: f.signature.clone(),
                        op: f.op,
                        detail: f.detail.clone(),
                    })
                    .collect(),
                replaced: o.verdict.replaced.clone(),
            },
            reports: o
                .reports
                .iter()
                .map(|r| KernelReportV1 {
                    kind: r.kind.into(),
                    title: r.title.clone(),
                    first_line: r.first_line,
                    text: r.text.clone(),
                    is_finding: r.is_finding,
                    signature: r.signature.clone(),
                    truncated: r.truncated,
                })
                .collect(),
            vm_alive: o.vm_alive,
            wall_ms: o.wall_ms,
            draws: o.draws,
        }
    }
}

impl TryFrom<OutcomeV1> for Outcome {
    type Error = OnDiskError;

    fn try_from(o: OutcomeV1) -> Result<Self, OnDiskError> {
        o.check()?;
        let acct = |a: AccountingV1| Accounting {
            shmem_kib: a.shmem_kib,
            swap_used_kib: a.swap_used_kib,
            taint: a.taint,
        };
        Ok(Outcome {
            exit: o.exit.map(|e| match e {
                ChildExitV1::Completed => ChildExit::Completed,
                ChildExitV1::Signaled { signal, op } => ChildExit::Signaled { signal, op },
                ChildExitV1::Hung { op } => ChildExit::Hung { op },
                ChildExitV1::ExecutorError { message } => ChildExit::ExecutorError { message },
            }),
            teardown: o.teardown.map(|t| Teardown {
                baseline: acct(t.baseline),
                after: acct(t.after),
                swapoff_stuck: t.swapoff_stuck,
                settle_ms: t.settle_ms,
                phases_us: t.phases_us,
            }),
            verdict: Verdict {
                findings: o
                    .verdict
                    .findings
                    .into_iter()
                    .map(|f| Finding {
                        kind: f.kind.into(),
                        title: f.title,
                        signature: f.signature,
                        op: f.op,
                        detail: f.detail,
                    })
                    .collect(),
                replaced: o.verdict.replaced,
            },
            reports: o
                .reports
                .into_iter()
                .map(|r| KernelReport {
                    kind: r.kind.into(),
                    title: r.title,
                    first_line: r.first_line,
                    text: r.text,
                    is_finding: r.is_finding,
                    signature: r.signature,
                    truncated: r.truncated,
                })
                .collect(),
            vm_alive: o.vm_alive,
            wall_ms: o.wall_ms,
            draws: o.draws,
        })
    }
}

impl OutcomeV1 {
    /// The checks of the module doc that need nothing but this file.
    pub fn check(&self) -> Result<(), OnDiskError> {
        for (i, r) in self.reports.iter().enumerate() {
            let at = || format!("report {i} ({})", r.title);
            if r.first_line == 0 {
                return Err(OnDiskError::out_of_range(
                    at(),
                    "first_line is 0; lines count from 1",
                ));
            }
            let kind = ReportKind::from(r.kind);
            if r.is_finding != kind.is_finding() {
                return Err(OnDiskError::out_of_range(
                    at(),
                    format!(
                        "is_finding is {}, but a {kind} report is {}a finding",
                        r.is_finding,
                        if kind.is_finding() { "" } else { "not " }
                    ),
                ));
            }
        }
        let findings = &self.verdict.findings;
        for (i, f) in findings.iter().enumerate() {
            if findings[..i].iter().any(|g| g.signature == f.signature) {
                return Err(OnDiskError::out_of_range(
                    "verdict",
                    format!("finding {i}'s signature `{}` is listed twice", f.signature),
                ));
            }
        }
        Ok(())
    }
}
