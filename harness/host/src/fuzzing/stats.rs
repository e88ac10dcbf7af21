//! What a fuzzing worker has done so far, written as JSON to the file `SHMEMFUZZ_STATS`
//! names (atomically, every few seconds and at each finding) and read by the campaign.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One worker's totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkerStats {
    /// The kernel the worker runs.
    pub kernel: String,
    /// Programs run on the kernel (each an execution libFuzzer counts).
    pub runs: u64,
    /// Inputs that decoded to no operation.
    pub empty: u64,
    /// Runs the harness could not complete (not findings).
    pub harness_failures: u64,
    /// Guests booted cold.
    pub boots: u32,
    /// Guests restored from the worker's snapshot (after a run killed the guest).
    pub restores: u32,
    /// Probed mm functions that ran.
    pub functions: Vec<String>,
    /// Distinct mm/ PCs (KCOV kernels).
    pub mm_pcs: u64,
    /// DMA32 pages back from swap at a new PFN, and in how many runs.
    pub replaced_pages: u64,
    pub replacing_runs: u64,
    /// The replaced pages by the zone tracker's key (`memfd:touch:large`, ...).
    pub replaced_by_key: std::collections::BTreeMap<String, u64>,
    /// Signatures found, in order.
    pub findings: Vec<String>,
    /// Findings of the known-findings file: signature → runs that had it.
    pub known: std::collections::BTreeMap<String, u64>,
    /// Milliseconds the worker spent inside runs (for executions per second).
    pub busy_ms: u64,
    /// Wall clock of the last write (ms since the epoch).
    pub updated_ms: u64,
}

impl WorkerStats {
    /// Writes atomically (temporary file, then rename).
    pub fn write(&mut self, path: &Path) -> std::io::Result<()> {
        self.updated_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::files::write_atomic(path, &text)
    }

    /// `None` while the file does not exist yet or is being replaced.
    pub fn read(path: &Path) -> Option<WorkerStats> {
        serde_json::from_slice(&crate::files::bounded::read(path, 1 << 20).ok()?).ok()
    }
}
