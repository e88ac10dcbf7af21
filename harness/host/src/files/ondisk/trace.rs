//! `trace.json` (a bundle's, and `shmemfuzz run --trace FILE`), version 1: [`TraceV1`].
//! Built from the runtime types by `crate::session::trace`; written for people and never read back
//! by shmemfuzz, so there is no conversion back and nothing is checked on read. It derives
//! `Deserialize` (with `deny_unknown_fields`) so that the golden test can read it.

use serde::{Deserialize, Serialize};

use super::outcome::{ChildExitV1, FindingV1, TeardownV1};
use super::records::{DataCheckV1, OpResultV1, PagemapCheckV1};
use crate::findings::bundle::format::{DiskSettings, DiskZone};

/// `trace.json`'s `format`.
pub const TRACE_FORMAT: &str = "shmemfuzz-trace";
/// The trace version this harness writes.
pub const TRACE_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceV1 {
    pub format: String,
    pub version: u32,
    /// The shmemfuzz version that wrote it.
    pub harness: String,
    pub kernel: TraceKernelV1,
    pub qemu: String,
    pub guest: TraceGuestV1,
    pub program: String,
    pub ops: Vec<TraceOpV1>,
    pub exit: Option<ChildExitV1>,
    pub teardown: Option<TeardownV1>,
    pub reports: Vec<TraceReportV1>,
    pub findings: Vec<FindingV1>,
    /// Kernel functions the program ran, with kprobe hit counts.
    pub coverage: Vec<FuncHitsV1>,
    /// The run's draw seed: ranged `delay`/`spin` values follow from it.
    pub draws: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceKernelV1 {
    pub id: String,
    pub release: String,
    pub version: String,
}

/// What the agent reported at ready.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceGuestV1 {
    pub release: String,
    pub version: String,
    pub zones: Vec<DiskZone>,
    pub swap_devices: Vec<String>,
    pub taint: u64,
    pub settings: DiskSettings,
    pub modules: Vec<String>,
    pub boot_ms: u64,
    pub ready_after_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceOpV1 {
    pub index: u32,
    /// The operation's text.
    pub op: String,
    /// What the model expected.
    pub expected: String,
    pub result: OpResultV1,
    pub data: Option<DataCheckV1>,
    pub micros: u64,
    pub swap_used_kib: u64,
    /// Pages of the observed objects after the operation.
    pub pages: Vec<TracePagesV1>,
    /// The introspection's self-check against /proc/self/pagemap.
    pub pagemap: Option<PagemapCheckV1>,
    /// What a ranged `delay` (µs) or `spin` (iterations) drew; absent when nothing was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drawn: Option<u32>,
}

/// One object's pages, one character per page index:
/// `states`: `A` absent, `R` resident, `S` swapped;
/// `zones` (resident pages): `d` DMA, `D` DMA32, `N` Normal, `?` other, `-` not resident;
/// `pinned`: `P` pinned, `-` not; `orders`: the folio's order (`0`–`9`, `+` above 9, `-` not
/// resident); `heads`: `H` the first page of its folio, `t` a tail page, `-` not resident.
/// PFNs are kept too (replay compares zones, not PFNs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracePagesV1 {
    pub obj: String,
    pub states: String,
    pub zones: String,
    pub pinned: String,
    pub pfns: Vec<u64>,
    pub orders: String,
    pub heads: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceReportV1 {
    /// The report kind's Rust name (`Warning`, `Kasan`, ...).
    pub kind: String,
    pub title: String,
    pub signature: String,
    pub is_finding: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FuncHitsV1 {
    pub func: String,
    pub hits: u64,
}
