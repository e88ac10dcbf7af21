//! The trace of one execution, written as JSON by `shmemfuzz run --trace FILE`.
//!
//! ```text
//! { "format": "shmemfuzz-trace", "version": 1,
//!   "harness": "<version>", "kernel": {id, release, version}, "qemu": "<command line>",
//!   "guest": {zones, settings, swap devices, taint, boot times},
//!   "program": "<program text>",
//!   "ops": [ {index, op, expected, result, data, micros}, ... ],
//!   "exit": ..., "teardown": ..., "reports": [...], "findings": [...] }
//! ```
//! The serialized types here are kept apart from the in-memory ones they are built from, so
//! the format changes only on purpose (bump `TRACE_VERSION`).

use serde::Serialize;
use shmemfuzz_core::oracle::{Finding, Model};
use shmemfuzz_core::program::Program;
use shmemfuzz_core::protocol::{
    ChildExit, DataCheck, FuncHits, ObjObs, OpResult, PageObs, PageState, PagemapCheck, Teardown,
};
use shmemfuzz_core::zoneinfo::{self, Zone};

use crate::session::{GuestInfo, RunOutcome};

pub const TRACE_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct Trace<'a> {
    pub format: &'static str,
    pub version: u32,
    pub harness: &'static str,
    pub kernel: KernelId<'a>,
    pub qemu: String,
    pub guest: &'a GuestInfo,
    pub program: String,
    pub ops: Vec<TraceOp>,
    pub exit: Option<&'a ChildExit>,
    pub teardown: Option<&'a Teardown>,
    pub reports: Vec<TraceReport>,
    pub findings: &'a [Finding],
    /// Kernel functions the program ran, with kprobe hit counts.
    pub coverage: &'a [FuncHits],
    /// The run's draw seed: ranged `delay`/`spin` values follow from it.
    pub draws: u64,
}

#[derive(Debug, Serialize)]
pub struct KernelId<'a> {
    pub id: &'a str,
    pub release: &'a str,
    pub version: &'a str,
}

#[derive(Debug, Serialize)]
pub struct TraceOp {
    pub index: u32,
    pub op: String,
    pub expected: String,
    pub result: OpResult,
    pub data: Option<DataCheck>,
    pub micros: u64,
    pub swap_used_kib: u64,
    /// Pages of the observed objects after the operation.
    pub pages: Vec<TracePages>,
    /// The introspection's self-check against /proc/self/pagemap.
    pub pagemap: Option<PagemapCheck>,
    /// What a ranged `delay` (µs) or `spin` (iterations) drew in this execution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drawn: Option<u32>,
}

/// One object's pages, one character per page index:
/// `states`: `A` absent, `R` resident, `S` swapped;
/// `zones` (resident pages): `d` DMA, `D` DMA32, `N` Normal, `?` other, `-` not resident;
/// `pinned`: `P` pinned, `-` not. PFNs are kept too (replay compares zones, not PFNs).
#[derive(Debug, Serialize)]
pub struct TracePages {
    pub obj: String,
    pub states: String,
    pub zones: String,
    pub pinned: String,
    pub pfns: Vec<u64>,
    /// Per page, the order of its folio (`0`–`9`, `+` above 9, `-` not resident).
    pub orders: String,
}

impl TracePages {
    pub fn new(obs: &ObjObs, zones: &[Zone]) -> Self {
        let zone_char = |p: &PageObs| match (p.state, zoneinfo::zone_of(zones, p.pfn)) {
            (PageState::Resident, Some("DMA")) => 'd',
            (PageState::Resident, Some("DMA32")) => 'D',
            (PageState::Resident, Some("Normal")) => 'N',
            (PageState::Resident, _) => '?',
            _ => '-',
        };
        TracePages {
            obj: obs.obj.clone(),
            states: obs
                .pages
                .iter()
                .map(|p| match p.state {
                    PageState::Absent => 'A',
                    PageState::Resident => 'R',
                    PageState::Swapped => 'S',
                })
                .collect(),
            zones: obs.pages.iter().map(zone_char).collect(),
            pinned: obs
                .pages
                .iter()
                .map(|p| if p.pinned { 'P' } else { '-' })
                .collect(),
            pfns: obs.pages.iter().map(|p| p.pfn).collect(),
            orders: obs
                .pages
                .iter()
                .map(|p| match (p.state, p.order) {
                    (PageState::Resident, o @ 0..=9) => char::from(b'0' + o),
                    (PageState::Resident, _) => '+',
                    _ => '-',
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TraceReport {
    pub kind: String,
    pub title: String,
    pub signature: String,
    pub is_finding: bool,
}

impl<'a> Trace<'a> {
    pub fn new(
        kernel_id: &'a str,
        guest: &'a GuestInfo,
        qemu: String,
        program: &Program,
        out: &'a RunOutcome,
    ) -> Self {
        let mut model = Model::new(shmemfuzz_core::program::initial_swap_state(
            guest.swap_devices.len(),
        ));
        let ops = out
            .records
            .iter()
            .filter_map(|r| {
                let op = program.ops.get(r.index as usize)?;
                let expected = model.apply(op).to_string();
                model.observe(op, &r.result);
                Some(TraceOp {
                    index: r.index,
                    op: op.to_string(),
                    expected,
                    result: r.result.clone(),
                    data: r.data.clone(),
                    micros: r.micros,
                    swap_used_kib: r.swap_used_kib,
                    pages: r
                        .pages
                        .iter()
                        .map(|o| TracePages::new(o, &guest.zones))
                        .collect(),
                    pagemap: r.pagemap,
                    drawn: r.drawn,
                })
            })
            .collect();
        let reports = out
            .reports
            .iter()
            .map(|r| TraceReport {
                kind: format!("{:?}", r.kind),
                title: r.title.clone(),
                signature: r.signature.clone(),
                is_finding: r.is_finding,
            })
            .collect();
        Trace {
            format: "shmemfuzz-trace",
            version: TRACE_VERSION,
            harness: env!("CARGO_PKG_VERSION"),
            kernel: KernelId {
                id: kernel_id,
                release: &guest.release,
                version: &guest.version,
            },
            qemu,
            guest,
            program: program.to_string(),
            ops,
            exit: out.exit.as_ref(),
            teardown: out.teardown.as_ref(),
            reports,
            findings: &out.verdict.findings,
            coverage: &out.coverage,
            draws: out.draws,
        }
    }
}
