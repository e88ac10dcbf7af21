//! Objects shared by the threads of a section: which bytes a read may return while other
//! threads write the object, and which contents the object may hold at the `join`.
//!
//! The unit of atomicity is the byte. A `write` (pwrite, in chunks, page by page), a `touch`
//! (a CPU copy) and a `check` (pread) are each a set of single-byte accesses in no promised
//! order: a multi-page write is not atomic against a concurrent write or read, and a copy
//! may tear even inside a page. Each thread's operations stay in its order. Under that
//! semantics, for every byte `b`:
//! - a read by thread `T` may return what `T`'s own view holds (the program before the
//!   section plus `T`'s own earlier writes: [`Model`] advanced by `T`'s operations only), or
//!   what any write of another thread of the section puts at `b`;
//! - at the `join`, `b` holds the last write to it of one of the threads that wrote it (a
//!   thread's earlier write to `b` is overwritten by its own later one), or, if no thread
//!   wrote it, what it held before the section.
//!
//! Both sets are exact per byte (`shared/tests.rs` checks them against every interleaving of
//! small programs). What is not checked is the correlation between bytes or between two
//! reads (a read that saw thread `b`'s second write at one byte and the section's start at a
//! byte `b`'s first write also covers): every accepted outcome is possible byte by byte, so a
//! finding is always a real one, but a kernel that tears in a way no interleaving allows
//! across bytes may pass. docs/races.md says which operations may share an object.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::model::{Model, ObjectModel, TouchPlan};
use super::pattern;
use crate::program::{Op, TouchMode, PAGE_SIZE};
use crate::protocol::DataCheck;

/// One write of a section: the object, the file range and the seed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionWrite {
    pub obj: String,
    pub off: u64,
    pub len: u64,
    pub seed: u32,
}

impl SectionWrite {
    fn covers(&self, obj: &str, lo: u64, hi: u64) -> bool {
        self.obj == obj && self.off < hi && self.off + self.len > lo
    }
}

/// What each thread of a section writes to which object, in its own order.
#[derive(Clone, Debug, Default)]
pub struct SectionWrites {
    pub threads: Vec<Vec<SectionWrite>>,
}

impl SectionWrites {
    /// The writes of a section whose threads run `blocks` (each thread's operations, in
    /// order), starting from `model` (the model at `threads`). A write `touch` counts with
    /// its file range, clipped at end-of-file as the executor clips it; a private mapping's
    /// writes stay in the mapping and are not writes to the object.
    pub fn of(model: &Model, blocks: &[Vec<&Op>]) -> Self {
        let threads = blocks
            .iter()
            .map(|block| {
                let mut m = model.clone();
                let mut writes = Vec::new();
                for op in block {
                    match op {
                        Op::Write {
                            obj,
                            off,
                            len,
                            seed,
                        } => writes.push(SectionWrite {
                            obj: obj.clone(),
                            off: *off,
                            len: *len,
                            seed: *seed,
                        }),
                        Op::Touch {
                            map,
                            off,
                            len,
                            mode: mode @ TouchMode::Write { .. },
                        } => {
                            let target = m.maps.get(map).filter(|v| v.kind.is_shared());
                            if let (Some(v), TouchPlan::Write { len: n, seed }) =
                                (target, m.touch_plan(map, *off, *len, *mode))
                            {
                                if n > 0 {
                                    writes.push(SectionWrite {
                                        obj: v.obj.clone(),
                                        off: v.off + off,
                                        len: n,
                                        seed,
                                    });
                                }
                            }
                        }
                        _ => {}
                    }
                    m.apply(op);
                }
                writes
            })
            .collect();
        SectionWrites { threads }
    }

    /// Every write of the threads other than `thread`: what a read of `thread` may see.
    pub fn others(&self, thread: usize) -> Vec<SectionWrite> {
        self.threads
            .iter()
            .enumerate()
            .filter(|(t, _)| *t != thread)
            .flat_map(|(_, w)| w.iter().cloned())
            .collect()
    }

    /// Objects more than one thread writes: their contents at the join depend on the order.
    pub fn contended(&self) -> BTreeSet<String> {
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut twice = BTreeSet::new();
        for writes in &self.threads {
            let mine: BTreeSet<&str> = writes.iter().map(|w| w.obj.as_str()).collect();
            for o in mine {
                if !seen.insert(o) {
                    twice.insert(o.to_string());
                }
            }
        }
        twice
    }

    /// What `obj` may hold at the join: `after` is the model advanced through the section in
    /// program order (every byte's last writer in that order, or the section's start where no
    /// thread wrote); each thread's own last write of a byte is the alternative.
    pub fn at_join(&self, after: &Model, obj: &str) -> Allowed {
        let size = after.objects.get(obj).map_or(0, |o| o.size);
        let own = after.expected_read(obj, 0, size);
        let mut alts = Vec::new();
        for writes in &self.threads {
            let mut last = ObjectModel::new(size);
            for w in writes.iter().filter(|w| w.obj == obj) {
                last.write(w.off, w.len, w.seed);
            }
            alts.extend(last.extents().map(|(off, end, seed)| SectionWrite {
                obj: obj.to_string(),
                off,
                len: end - off,
                seed,
            }));
        }
        Allowed::new(obj, 0, own, &alts)
    }
}

/// The bytes a read of `own.len()` bytes at file offset `base` may return: each byte is the
/// reading thread's own view of it, or a byte one of `alts` writes there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allowed {
    pub base: u64,
    pub own: Vec<u8>,
    /// The racing writes that overlap the range.
    pub alts: Vec<SectionWrite>,
}

impl Allowed {
    /// `own` is what the reader's model expects at `base..`; `racing` the other threads'
    /// writes (those on other objects or ranges are dropped).
    pub fn new(obj: &str, base: u64, own: Vec<u8>, racing: &[SectionWrite]) -> Self {
        let hi = base + own.len() as u64;
        let alts = racing
            .iter()
            .filter(|w| w.covers(obj, base, hi))
            .cloned()
            .collect();
        Allowed { base, own, alts }
    }

    /// A read with no racing writes: the model's bytes only.
    pub fn exact(base: u64, own: Vec<u8>) -> Self {
        Allowed {
            base,
            own,
            alts: Vec::new(),
        }
    }

    /// The racing write whose byte at index `i` is `b`, if `b` is not the reader's own.
    fn source(&self, i: usize, b: u8) -> Option<&SectionWrite> {
        let pos = self.base + i as u64;
        self.alts
            .iter()
            .find(|w| w.off <= pos && pos < w.off + w.len && pattern::byte(w.seed, pos) == b)
    }

    /// Whether byte `i` of the range may read as `b`.
    pub fn permits(&self, i: usize, b: u8) -> bool {
        self.own.get(i) == Some(&b) || (i < self.own.len() && self.source(i, b).is_some())
    }

    /// Compares a read with the allowed bytes; `report_base` is the offset the finding names
    /// for byte 0 (a file offset for `check`, a mapping offset for `touch`).
    pub fn compare(&self, report_base: u64, actual: &[u8]) -> DataCheck {
        let mut d = DataCheck {
            expected_len: self.own.len() as u64,
            read_len: actual.len() as u64,
            ..Default::default()
        };
        let mut last_page = None;
        for (i, (e, a)) in self.own.iter().zip(actual).enumerate() {
            if e == a || self.source(i, *a).is_some() {
                continue;
            }
            let off = report_base + i as u64;
            d.mismatched_bytes += 1;
            d.first_mismatch.get_or_insert((off, *e, *a));
            let page = off / PAGE_SIZE;
            if last_page != Some(page) {
                d.mismatched_pages += 1;
                last_page = Some(page);
            }
        }
        d
    }

    /// Makes `model`'s `obj` hold what was read where it differs from the model but is
    /// allowed (which write each byte came from), so later reads are exact again.
    pub fn settle(&self, model: &mut Model, obj: &str, actual: &[u8]) {
        let Some(o) = model.objects.get_mut(obj) else {
            return;
        };
        let mut run: Option<(u64, u64, u32)> = None;
        let flush = |run: &mut Option<(u64, u64, u32)>, o: &mut ObjectModel| {
            if let Some((lo, hi, seed)) = run.take() {
                o.write(lo, hi - lo, seed);
            }
        };
        for (i, (e, a)) in self.own.iter().zip(actual).enumerate() {
            let pos = self.base + i as u64;
            let seed = (e != a)
                .then(|| self.source(i, *a))
                .flatten()
                .map(|w| w.seed);
            match (seed, run.as_mut()) {
                (Some(s), Some((_, hi, rs))) if *hi == pos && *rs == s => *hi = pos + 1,
                (Some(s), _) => {
                    flush(&mut run, o);
                    run = Some((pos, pos + 1, s));
                }
                (None, _) => flush(&mut run, o),
            }
        }
        flush(&mut run, o);
    }
}

#[cfg(test)]
mod tests;
