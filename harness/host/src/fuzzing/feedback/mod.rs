//! Kernel coverage as fuzzer feedback: what one run reached, as libFuzzer counters.
//!
//! libFuzzer keeps an input when it sets a counter it has not seen set, or moves one into a
//! new magnitude bucket (1, 2, 3, 4–7, 8–15, 16–31, 32–127, 128+). The host process's own
//! coverage says nothing about the kernel, so the fuzz target writes these counters into
//! libFuzzer's extra-counter section after each run. Regions, each indexed by a stable hash:
//!
//! | region | what | value |
//! |---|---|---|
//! | functions | kprobe hit counts of the mm functions the agent probes | bit length of hits |
//! | outcomes | each operation kind with its result (errno) and how the program ended | 1 |
//! | constrained | pages of DMA32-constrained or pinned objects by state (resident, swapped, absent) after each operation kind | bit length of pages |
//! | replaced | DMA32 pages back from swap at a new PFN, by object kind and operation | pages |
//! | overlap | where one thread's operation ended in the other's, per pairing ([`overlap`]) | 1 |
//! | kcov | basic blocks in mm/ the program's syscalls ran (KCOV kernels only) | 1 |
//!
//! KCOV hit counts are not used: hot blocks (the page allocator, reclaim loops) run a slightly
//! different number of times in every run, so counts made nearly every input look new and the
//! corpus filled with noise (measured: 173 of 1055 inputs kept in 3 minutes, most of them
//! reclaim variations). Presence of a PC, as syzkaller uses, is stable. The constrained-pages
//! region is the gradient towards the bug class: an input that gets a constrained page swapped
//! out after some operation is kept before any replacement happens.
//!
//! A page replacement is counted even though it is no finding: an input that makes the
//! kernel allocate a constrained page again on swap-in is one step from the bug class this
//! tool exists for, so libFuzzer keeps it. [`Feedback`] also accumulates what a campaign has
//! reached so far, for progress lines.

mod mmtext;
mod overlap;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use shmemfuzz_core::program::gen::OpKind;
use shmemfuzz_core::program::Program;
use shmemfuzz_core::protocol::{ObjObs, OpResult, PageState};

use crate::session::RunOutcome;

pub use mmtext::{MmText, MmTextError};

const FUNC_SLOTS: usize = 512;
const OUTCOME_SLOTS: usize = 1024;
const CONSTRAINED_SLOTS: usize = 512;
const REPLACED_SLOTS: usize = 256;
const OVERLAP_SLOTS: usize = 1024;
const KCOV_SLOTS: usize = 1 << 16;
const FUNC_BASE: usize = 0;
const OUTCOME_BASE: usize = FUNC_BASE + FUNC_SLOTS;
const CONSTRAINED_BASE: usize = OUTCOME_BASE + OUTCOME_SLOTS;
const REPLACED_BASE: usize = CONSTRAINED_BASE + CONSTRAINED_SLOTS;
const OVERLAP_BASE: usize = REPLACED_BASE + REPLACED_SLOTS;
const KCOV_BASE: usize = OVERLAP_BASE + OVERLAP_SLOTS;
/// Bytes of counters [`Feedback::fill`] writes.
pub const COUNTERS_LEN: usize = KCOV_BASE + KCOV_SLOTS;

/// FNV-1a: a stable hash (the same slot in every process and release), unlike std's.
fn slot(bytes: &[u8], slots: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % slots as u64) as usize
}

fn bump(counter: &mut u8, by: u64) {
    *counter = u64::from(*counter).saturating_add(by).min(255) as u8;
}

/// 0 for 0, else the number of bits: orders of magnitude without jitter.
fn bit_length(n: u64) -> u64 {
    u64::from(u64::BITS - n.leading_zeros())
}

/// What a campaign has reached, summed over runs.
#[derive(Debug, Default)]
pub struct Feedback {
    mm_text: Option<MmText>,
    /// Probed functions that ran at least once.
    pub functions: BTreeSet<String>,
    /// Distinct mm/ PCs seen (KCOV kernels).
    pub pcs: HashSet<u64>,
    /// Pages back from swap at a new PFN, over all runs.
    pub replaced_pages: u64,
    /// Runs in which at least one page was replaced.
    pub replacing_runs: u64,
    /// The same pages by `kind:op[:large|:split]` (the zone tracker's keys): which routes and
    /// folio sizes the campaign took back from swap.
    pub replaced_by_key: BTreeMap<String, u64>,
    /// Runs fed in.
    pub runs: u64,
}

impl Feedback {
    /// `mm_text` keeps KCOV PCs to mm/; without it (no build tree), every PC counts.
    pub fn new(mm_text: Option<MmText>) -> Self {
        Feedback {
            mm_text,
            ..Feedback::default()
        }
    }

    /// Whether KCOV PCs are filtered to mm/.
    pub fn filters_mm(&self) -> bool {
        self.mm_text.is_some()
    }

    /// Writes the counters of one run of `program` into `counters` (at least
    /// [`COUNTERS_LEN`] bytes, zeroed by the caller as libFuzzer does before each run), and
    /// adds the run to the totals.
    pub fn fill(&mut self, program: &Program, out: &RunOutcome, counters: &mut [u8]) {
        let counters = &mut counters[..COUNTERS_LEN];
        self.runs += 1;
        for f in &out.coverage {
            // Kprobe counts are global: kswapd and kworkers add to them whatever the program
            // does. The bit length (1, 2–3, 4–7, 8–15, …) keeps orders of magnitude and drops
            // that jitter; libFuzzer's buckets over it then separate 1, 2–3, 4–7, 8–127,
            // 128–32767 hits.
            let at = FUNC_BASE + slot(f.func.as_bytes(), FUNC_SLOTS);
            bump(&mut counters[at], bit_length(f.hits));
            if f.hits > 0 {
                self.functions.insert(f.func.clone());
            }
        }
        for rec in &out.records {
            let Some(op) = program.ops.get(rec.index as usize) else {
                continue;
            };
            // Keyed on the advice for madvise: `soft-offline:ok` and `pageout:ok` are
            // different outcomes, so a program that first reaches a page-moving advice is kept.
            let kind = OpKind::of(op).map_or("test", |_| op.action_word());
            let result = match &rec.result {
                OpResult::Ok => "ok".to_string(),
                other => other.to_string(),
            };
            // Presence, not a count: counting rewarded repeating an operation (a corpus of
            // ever longer runs of `reclaim`).
            let key = format!("{kind}:{result}");
            counters[OUTCOME_BASE + slot(key.as_bytes(), OUTCOME_SLOTS)] = 1;
            for (state, pages) in page_states(&rec.pages) {
                let key = format!("{kind}:{state}");
                let at = CONSTRAINED_BASE + slot(key.as_bytes(), CONSTRAINED_SLOTS);
                counters[at] = counters[at].max(bit_length(pages) as u8);
            }
        }
        for key in overlap::overlap_keys(program, &out.records) {
            counters[OVERLAP_BASE + slot(key.as_bytes(), OVERLAP_SLOTS)] = 1;
        }
        if let Some(exit) = &out.exit {
            let key = format!("exit:{exit:?}");
            bump(
                &mut counters[OUTCOME_BASE + slot(key.as_bytes(), OUTCOME_SLOTS)],
                1,
            );
        }
        let mut replaced = 0;
        for (key, pages) in &out.verdict.replaced {
            bump(
                &mut counters[REPLACED_BASE + slot(key.as_bytes(), REPLACED_SLOTS)],
                *pages,
            );
            replaced += pages;
            *self.replaced_by_key.entry(key.clone()).or_insert(0) += pages;
        }
        self.replaced_pages += replaced;
        self.replacing_runs += u64::from(replaced > 0);
        for p in out.kcov.iter().flatten() {
            if self.mm_text.as_ref().is_some_and(|t| !t.contains(p.pc)) {
                continue;
            }
            self.pcs.insert(p.pc);
            counters[KCOV_BASE + slot(&p.pc.to_le_bytes(), KCOV_SLOTS)] = 1;
        }
    }
}

/// Pages of the observed (constrained or pinned) objects by state, after one operation;
/// `large` counts the resident ones in a large folio besides: a constrained object holding a
/// large folio is the first step to swapping one out whole and to a large replacement.
fn page_states(observed: &[ObjObs]) -> [(&'static str, u64); 4] {
    let mut n = [("resident", 0), ("swapped", 0), ("absent", 0), ("large", 0)];
    for p in observed.iter().flat_map(|o| &o.pages) {
        let i = match p.state {
            PageState::Resident => 0,
            PageState::Swapped => 1,
            PageState::Absent => 2,
        };
        n[i].1 += 1;
        if p.state == PageState::Resident && p.order > 0 {
            n[3].1 += 1;
        }
    }
    n
}

impl Feedback {
    /// One line for progress output: `fns 21 · mm PCs 3456 · replaced 120 pages in 4 runs`.
    pub fn summary(&self) -> String {
        let mut s = format!("kernel fns {}", self.functions.len());
        if !self.pcs.is_empty() {
            s.push_str(&format!(" · mm PCs {}", self.pcs.len()));
        }
        s.push_str(&format!(
            " · replaced {} pages in {} runs",
            self.replaced_pages, self.replacing_runs
        ));
        s
    }
}

#[cfg(test)]
mod tests;
