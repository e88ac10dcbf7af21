//! The trace of one execution, written as JSON by `shmemfuzz run --trace FILE` and into
//! every bundle: built here from the runtime types into its on-disk type,
//! [`crate::files::ondisk::trace::TraceV1`], whose module doc has the fields.
//!
//! ```text
//! { "format": "shmemfuzz-trace", "version": 1,
//!   "harness": "<version>", "kernel": {id, release, version}, "qemu": "<command line>",
//!   "guest": {zones, settings, swap devices, taint, boot times},
//!   "program": "<program text>",
//!   "ops": [ {index, op, expected, result, data, micros, pages, ...}, ... ],
//!   "exit": ..., "teardown": ..., "reports": [...], "findings": [...], "coverage": [...],
//!   "draws": N }
//! ```

use shmemfuzz_core::oracle::Model;
use shmemfuzz_core::program::Program;
use shmemfuzz_core::protocol::{ObjObs, OpRecord, PageObs, PageState};
use shmemfuzz_core::zoneinfo::{self, Zone};

use crate::files::ondisk::outcome::{self, OutcomeV1, ReportKindV1};
use crate::files::ondisk::records::OpRecordV1;
use crate::files::ondisk::trace::{
    FuncHitsV1, TraceGuestV1, TraceKernelV1, TraceOpV1, TracePagesV1, TraceReportV1, TraceV1,
};
pub use crate::files::ondisk::trace::{TRACE_FORMAT, TRACE_VERSION};
use crate::findings::bundle::format::{DiskSettings, DiskZone};
use crate::session::{GuestInfo, RunOutcome};

/// The trace as written.
pub type Trace = TraceV1;

/// One object's pages as the trace shows them (see [`TracePagesV1`]).
pub fn pages(obs: &ObjObs, zones: &[Zone]) -> TracePagesV1 {
    let zone_char = |p: &PageObs| match (p.state, zoneinfo::zone_of(zones, p.pfn)) {
        (PageState::Resident, Some("DMA")) => 'd',
        (PageState::Resident, Some("DMA32")) => 'D',
        (PageState::Resident, Some("Normal")) => 'N',
        (PageState::Resident, _) => '?',
        _ => '-',
    };
    TracePagesV1 {
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
        heads: obs
            .pages
            .iter()
            .map(|p| match (p.state, p.head) {
                (PageState::Resident, true) => 'H',
                (PageState::Resident, false) => 't',
                _ => '-',
            })
            .collect(),
    }
}

impl TraceV1 {
    /// The trace of `out`, a run of `program` on kernel `kernel_id` in a guest that reported
    /// `guest`, with QEMU command line `qemu`.
    pub fn new(
        kernel_id: &str,
        guest: &GuestInfo,
        qemu: String,
        program: &Program,
        out: &RunOutcome,
    ) -> Self {
        let mut model = Model::new(shmemfuzz_core::program::initial_swap_state(
            guest.swap_devices.len(),
        ));
        let ops = out
            .records
            .iter()
            .filter_map(|r: &OpRecord| {
                let op = program.ops.get(r.index as usize)?;
                let expected = model.apply(op).to_string();
                model.observe(op, &r.result);
                let disk = OpRecordV1::from(r);
                Some(TraceOpV1 {
                    index: r.index,
                    op: op.to_string(),
                    expected,
                    result: disk.result,
                    data: disk.data,
                    micros: r.micros,
                    swap_used_kib: r.swap_used_kib,
                    pages: r.pages.iter().map(|o| pages(o, &guest.zones)).collect(),
                    pagemap: disk.pagemap,
                    drawn: r.drawn,
                })
            })
            .collect();
        let reports = out
            .reports
            .iter()
            .map(|r| TraceReportV1 {
                kind: format!("{:?}", ReportKindV1::from(r.kind)),
                title: r.title.clone(),
                signature: r.signature.clone(),
                is_finding: r.is_finding,
            })
            .collect();
        let outcome = OutcomeV1::from(&outcome::Outcome {
            exit: out.exit.clone(),
            teardown: out.teardown.clone(),
            verdict: out.verdict.clone(),
            reports: Vec::new(),
            vm_alive: out.vm_alive,
            wall_ms: out.wall_ms,
            draws: out.draws,
        });
        TraceV1 {
            format: TRACE_FORMAT.into(),
            version: TRACE_VERSION,
            harness: env!("CARGO_PKG_VERSION").into(),
            kernel: TraceKernelV1 {
                id: kernel_id.into(),
                release: guest.release.clone(),
                version: guest.version.clone(),
            },
            qemu,
            guest: TraceGuestV1 {
                release: guest.release.clone(),
                version: guest.version.clone(),
                zones: guest.zones.iter().map(DiskZone::from).collect(),
                swap_devices: guest.swap_devices.clone(),
                taint: guest.taint,
                settings: DiskSettings::from(&guest.settings),
                modules: guest.modules.clone(),
                boot_ms: guest.boot_ms,
                ready_after_ms: guest.ready_after_ms,
            },
            program: program.to_string(),
            ops,
            exit: outcome.exit,
            teardown: outcome.teardown,
            reports,
            findings: outcome.verdict.findings,
            coverage: out
                .coverage
                .iter()
                .map(|c| FuncHitsV1 {
                    func: c.func.clone(),
                    hits: c.hits,
                })
                .collect(),
            draws: out.draws,
        }
    }
}
