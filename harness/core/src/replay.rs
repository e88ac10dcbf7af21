//! Diffing a replay against its recording.
//!
//! A replay runs a recorded program again (on the same kernel or another one) and [`diff`]
//! says, operation by operation, where it went differently. Only what a program determines
//! is compared; what varies from run to run on a healthy kernel is not (see "Replay
//! equality" in the design):
//!
//! | compared                                            | ignored                                 |
//! |-----------------------------------------------------|-----------------------------------------|
//! | the result (`ok`, the errno, `skipped`)             | PFNs (allocation order varies)          |
//! | the data check: clean or not, bytes read, and the   | which byte differed first, and its      |
//! | counts of differing bytes and pages                 | value                                   |
//! | each observed page's state (absent / resident /     | timing (`micros`)                       |
//! | swapped), its zone when resident (each side's PFN   | `swap_used_kib` (slot caches make it    |
//! | looked up in that side's own zone table), pinning   | inexact)                                |
//! | which operations have a record at all               | the pagemap self-check                  |
//!
//! Differing pages are compressed into runs of consecutive indices with the same recorded
//! and replayed state, e.g. `g0 pages 3-7 (5 pages): recorded swapped, replayed resident in
//! Normal`; an object with very many runs is cut off after [`MAX_PAGE_RUNS`] of them.

use std::collections::BTreeMap;
use std::fmt;

use crate::program::Program;
use crate::protocol::{DataCheck, ObjObs, OpRecord, OpResult, PageObs, PageState};
use crate::zoneinfo::{self, Zone};

/// Runs of differing pages reported per object and operation before the rest are summed up
/// in one line.
pub const MAX_PAGE_RUNS: usize = 8;

/// What part of an operation's record differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DivergenceKind {
    /// The operation returned something else.
    Result,
    /// The data check came out differently.
    Data,
    /// Observed pages are in another state or zone, or another object or page count was seen.
    Pages,
    /// The recording has records the replay lacks (the replay ended early).
    Missing,
    /// The replay has records the recording lacks (the recording ended early).
    Extra,
}

/// One difference between a recording and its replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The operation's index (for a run of missing or extra records, the first one).
    pub op: u32,
    /// The operation in program text form.
    pub op_text: String,
    pub kind: DivergenceKind,
    /// What differs, e.g. `result: recorded ok, replayed ENOMEM (12)`.
    pub what: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op {} `{}`: {}", self.op, self.op_text, self.what)
    }
}

/// Compares `replayed` with `recorded`, both runs of `program`. `zones_rec` and `zones_rep`
/// are the zone tables of the guests each ran in, used to name the zone of resident pages.
/// An empty result means the replay matched the recording.
pub fn diff(
    program: &Program,
    recorded: &[OpRecord],
    replayed: &[OpRecord],
    zones_rec: &[Zone],
    zones_rep: &[Zone],
) -> Vec<Divergence> {
    let rec = by_index(recorded);
    let rep = by_index(replayed);
    let op_text = |i: u32| {
        program.ops.get(i as usize).map_or_else(
            || format!("<op {i} is not in the program>"),
            |op| op.to_string(),
        )
    };
    let mut out = Vec::new();
    let mut one_sided: Vec<(u32, DivergenceKind)> = Vec::new();
    let mut indices: Vec<u32> = rec.keys().chain(rep.keys()).copied().collect();
    indices.sort_unstable();
    indices.dedup();
    for i in indices {
        let (a, b) = match (rec.get(&i), rep.get(&i)) {
            (Some(a), Some(b)) => (*a, *b),
            (Some(_), None) => {
                one_sided.push((i, DivergenceKind::Missing));
                continue;
            }
            (None, _) => {
                one_sided.push((i, DivergenceKind::Extra));
                continue;
            }
        };
        let mut push = |kind, what: String| {
            out.push(Divergence {
                op: i,
                op_text: op_text(i),
                kind,
                what,
            })
        };
        if a.result != b.result {
            push(
                DivergenceKind::Result,
                format!("result: recorded {}, replayed {}", a.result, b.result),
            );
        }
        if let Some(what) = diff_data(a, b) {
            push(DivergenceKind::Data, what);
        }
        for what in diff_pages(&a.pages, &b.pages, zones_rec, zones_rep) {
            push(DivergenceKind::Pages, what);
        }
    }
    for (first, last, kind) in runs_of(&one_sided) {
        let ops = if first == last {
            format!("op {first} was")
        } else {
            format!("ops {first}-{last} ({} ops) were", last - first + 1)
        };
        let what = match kind {
            DivergenceKind::Missing => {
                format!("missing: {ops} recorded but not replayed (the replay ended early)")
            }
            _ => format!("extra: {ops} replayed but not recorded (the recording ended early)"),
        };
        out.push(Divergence {
            op: first,
            op_text: op_text(first),
            kind,
            what,
        });
    }
    out.sort_by_key(|d| d.op);
    out
}

/// Records by operation index (the first one if an index repeats).
fn by_index(recs: &[OpRecord]) -> BTreeMap<u32, &OpRecord> {
    let mut m = BTreeMap::new();
    for r in recs {
        m.entry(r.index).or_insert(r);
    }
    m
}

/// Groups consecutive indices with the same kind: (first, last, kind).
fn runs_of(items: &[(u32, DivergenceKind)]) -> Vec<(u32, u32, DivergenceKind)> {
    let mut runs: Vec<(u32, u32, DivergenceKind)> = Vec::new();
    for &(i, kind) in items {
        match runs.last_mut() {
            Some((_, last, k)) if *k == kind && last.checked_add(1) == Some(i) => *last = i,
            _ => runs.push((i, i, kind)),
        }
    }
    runs
}

fn diff_data(a: &OpRecord, b: &OpRecord) -> Option<String> {
    let key = |d: &DataCheck| {
        (
            d.expected_len,
            d.read_len,
            d.mismatched_bytes,
            d.mismatched_pages,
        )
    };
    let same = match (&a.data, &b.data) {
        (Some(x), Some(y)) => key(x) == key(y),
        (None, None) => true,
        // A failed operation has no data to check: the result line already says why.
        _ => a.result != b.result,
    };
    (!same).then(|| {
        format!(
            "data: recorded {}, replayed {}",
            describe_data(a.data.as_ref(), &a.result),
            describe_data(b.data.as_ref(), &b.result)
        )
    })
}

fn describe_data(d: Option<&DataCheck>, result: &OpResult) -> String {
    let Some(d) = d else {
        return match result {
            OpResult::Ok => "no data check".into(),
            _ => format!("no data check ({result})"),
        };
    };
    let short = d.read_len != d.expected_len;
    match (d.mismatched_bytes, short) {
        (0, false) => format!("clean ({} bytes match)", d.read_len),
        (0, true) => format!("short read ({} of {} bytes)", d.read_len, d.expected_len),
        (bytes, short) => {
            let mut s = format!(
                "{bytes} bytes in {} {} differ",
                d.mismatched_pages,
                plural(d.mismatched_pages, "page", "pages")
            );
            if short {
                s.push_str(&format!(
                    ", read {} of {} bytes",
                    d.read_len, d.expected_len
                ));
            }
            s
        }
    }
}

fn plural<'s>(n: u64, one: &'s str, many: &'s str) -> &'s str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// What replay compares of one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PageClass<'z> {
    state: PageState,
    /// For resident pages: the zone, `None` if the PFN is outside every zone.
    zone: Option<&'z str>,
    pinned: bool,
}

impl<'z> PageClass<'z> {
    fn of(p: &PageObs, zones: &'z [Zone]) -> Self {
        let zone = match p.state {
            PageState::Resident => zoneinfo::zone_of(zones, p.pfn),
            PageState::Absent | PageState::Swapped => None,
        };
        PageClass {
            state: p.state,
            zone,
            pinned: p.pinned,
        }
    }
}

impl fmt::Display for PageClass<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pinned {
            f.write_str("pinned ")?;
        }
        match (self.state, self.zone) {
            (PageState::Absent, _) => f.write_str("absent"),
            (PageState::Swapped, _) => f.write_str("swapped"),
            (PageState::Resident, Some(z)) => write!(f, "resident in {z}"),
            (PageState::Resident, None) => f.write_str("resident outside every zone"),
        }
    }
}

fn diff_pages(
    rec: &[ObjObs],
    rep: &[ObjObs],
    zones_rec: &[Zone],
    zones_rep: &[Zone],
) -> Vec<String> {
    let mut out = Vec::new();
    for a in rec {
        let Some(b) = rep.iter().find(|b| b.obj == a.obj) else {
            out.push(format!(
                "{}: observed in the recording ({} pages), not in the replay",
                a.obj,
                a.pages.len()
            ));
            continue;
        };
        if a.pages.len() != b.pages.len() {
            out.push(format!(
                "{}: recorded {} pages, replayed {} pages",
                a.obj,
                a.pages.len(),
                b.pages.len()
            ));
        }
        out.extend(diff_object(a, b, zones_rec, zones_rep));
    }
    for b in rep.iter().filter(|b| !rec.iter().any(|a| a.obj == b.obj)) {
        out.push(format!(
            "{}: observed in the replay ({} pages), not in the recording",
            b.obj,
            b.pages.len()
        ));
    }
    out
}

/// The differing pages of the indices both sides observed, as runs.
fn diff_object(a: &ObjObs, b: &ObjObs, zones_rec: &[Zone], zones_rep: &[Zone]) -> Vec<String> {
    // (first index, last index, recorded, replayed)
    type Run<'z> = (usize, usize, PageClass<'z>, PageClass<'z>);
    let mut runs: Vec<Run<'_>> = Vec::new();
    for (i, (pa, pb)) in a.pages.iter().zip(&b.pages).enumerate() {
        let (ca, cb) = (PageClass::of(pa, zones_rec), PageClass::of(pb, zones_rep));
        if ca == cb {
            continue;
        }
        match runs.last_mut() {
            Some((_, last, ra, rb)) if *last + 1 == i && *ra == ca && *rb == cb => *last = i,
            _ => runs.push((i, i, ca, cb)),
        }
    }
    let mut out: Vec<String> = runs
        .iter()
        .take(MAX_PAGE_RUNS)
        .map(|(first, last, ca, cb)| {
            let pages = if first == last {
                format!("page {first}")
            } else {
                format!("pages {first}-{last} ({} pages)", last - first + 1)
            };
            format!("{} {pages}: recorded {ca}, replayed {cb}", a.obj)
        })
        .collect();
    if runs.len() > MAX_PAGE_RUNS {
        let rest = &runs[MAX_PAGE_RUNS..];
        let pages: usize = rest.iter().map(|(f, l, _, _)| l - f + 1).sum();
        out.push(format!(
            "{}: {} more runs of differing pages ({pages} pages) not listed",
            a.obj,
            rest.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program;
    use crate::protocol::errno;
    use crate::zoneinfo::PFN_4G;

    const PROG: &str = "memfd m0 size=32K\nwrite m0 off=0 len=32K seed=1\ncheck m0 off=0 len=32K\nreclaim 1M\ncheck m0 off=0 len=32K\n";

    fn zones(normal_start: u64) -> Vec<Zone> {
        let z = |name: &str, start_pfn, spanned| Zone {
            name: name.into(),
            start_pfn,
            spanned,
            present: spanned,
            ..Zone::default()
        };
        vec![
            z("DMA", 1, 4095),
            z("DMA32", 4096, PFN_4G - 4096),
            z("Normal", normal_start, 1 << 18),
        ]
    }

    fn page(state: PageState, pfn: u64) -> PageObs {
        PageObs {
            order: 0,
            state,
            pfn,
            pinned: false,
            head: true,
        }
    }

    fn rec(index: u32, pages: Vec<PageObs>) -> OpRecord {
        OpRecord {
            index,
            result: OpResult::Ok,
            data: None,
            micros: 100,
            swap_used_kib: 0,
            pages: vec![ObjObs {
                obj: "m0".into(),
                pages,
            }],
            pagemap: None,
            page_owner: None,
            drawn: None,
            background_collapse: false,
            start_micros: 0,
        }
    }

    fn resident(first_pfn: u64) -> Vec<PageObs> {
        (0..8)
            .map(|i| page(PageState::Resident, first_pfn + i))
            .collect()
    }

    fn run(first_pfn: u64) -> Vec<OpRecord> {
        (0..5).map(|i| rec(i, resident(first_pfn))).collect()
    }

    fn prog() -> Program {
        program::parse(PROG).expect("parses")
    }

    #[test]
    fn pfns_timing_and_swap_use_are_not_compared() {
        let z = zones(PFN_4G);
        let a = run(5000);
        let mut b = run(9000);
        for r in &mut b {
            r.micros = 7;
            r.swap_used_kib = 1234;
        }
        assert_eq!(diff(&prog(), &a, &b, &z, &z), Vec::new());
    }

    #[test]
    fn a_different_result_is_named_with_both_values() {
        let z = zones(PFN_4G);
        let a = run(5000);
        let mut b = run(5000);
        b[3].result = OpResult::Errno(errno::ENOMEM);
        let d = diff(&prog(), &a, &b, &z, &z);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].kind, DivergenceKind::Result);
        assert_eq!(
            d[0].to_string(),
            "op 3 `reclaim 1M`: result: recorded ok, replayed ENOMEM (12)"
        );
    }

    #[test]
    fn data_checks_compare_counts_not_the_first_byte() {
        let z = zones(PFN_4G);
        let clean = DataCheck {
            expected_len: 32768,
            read_len: 32768,
            ..DataCheck::default()
        };
        let dirty = |first| DataCheck {
            mismatched_bytes: 10,
            mismatched_pages: 2,
            first_mismatch: Some((first, 1, 0)),
            ..clean.clone()
        };
        let mut a = run(5000);
        let mut b = run(5000);
        a[2].data = Some(clean.clone());
        b[2].data = Some(dirty(4));
        a[4].data = Some(dirty(4));
        b[4].data = Some(dirty(4096));
        let d = diff(&prog(), &a, &b, &z, &z);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].op, 2);
        assert_eq!(
            d[0].what,
            "data: recorded clean (32768 bytes match), replayed 10 bytes in 2 pages differ"
        );
    }

    #[test]
    fn a_failed_op_without_data_reports_only_its_result() {
        let z = zones(PFN_4G);
        let mut a = run(5000);
        let mut b = run(5000);
        a[2].data = Some(DataCheck {
            expected_len: 32768,
            read_len: 32768,
            ..DataCheck::default()
        });
        b[2].result = OpResult::Errno(errno::EINTR);
        let d = diff(&prog(), &a, &b, &z, &z);
        assert_eq!(
            d.iter().map(|d| d.kind).collect::<Vec<_>>(),
            [DivergenceKind::Result]
        );
    }

    #[test]
    fn page_differences_are_compressed_into_runs() {
        let z = zones(PFN_4G);
        let a = run(5000);
        let mut b = run(5000);
        for i in 3..=7 {
            b[1].pages[0].pages[i] = page(PageState::Swapped, 0);
        }
        b[1].pages[0].pages[0] = page(PageState::Resident, PFN_4G + 9);
        let d = diff(&prog(), &a, &b, &z, &z);
        let what: Vec<&str> = d.iter().map(|d| d.what.as_str()).collect();
        assert_eq!(
            what,
            [
                "m0 page 0: recorded resident in DMA32, replayed resident in Normal",
                "m0 pages 3-7 (5 pages): recorded resident in DMA32, replayed swapped",
            ]
        );
        assert!(d
            .iter()
            .all(|d| d.op == 1 && d.kind == DivergenceKind::Pages));
    }

    #[test]
    fn zones_are_looked_up_in_each_sides_own_table() {
        // The same PFN is Normal in the recording's guest and outside every zone in the
        // replay's (whose Normal starts higher): a zone difference; while different PFNs in
        // the same zone are not.
        let pfn = PFN_4G + 10;
        let a = vec![rec(0, vec![page(PageState::Resident, pfn)])];
        let b = a.clone();
        let d = diff(&prog(), &a, &b, &zones(PFN_4G), &zones(2 * PFN_4G));
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].what,
            "m0 page 0: recorded resident in Normal, replayed resident outside every zone"
        );
        let c = vec![rec(0, vec![page(PageState::Resident, 2 * PFN_4G + 10)])];
        assert!(diff(&prog(), &a, &c, &zones(PFN_4G), &zones(2 * PFN_4G)).is_empty());
    }

    #[test]
    fn pinning_objects_and_page_counts_are_compared() {
        let z = zones(PFN_4G);
        let a = run(5000);
        let mut b = run(5000);
        b[0].pages[0].pages[2].pinned = true;
        b[1].pages[0].pages.truncate(6);
        b[2].pages[0].obj = "m1".into();
        let what: Vec<String> = diff(&prog(), &a, &b, &z, &z)
            .into_iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            what,
            [
                "op 0 `memfd m0 size=32K`: m0 page 2: recorded resident in DMA32, replayed pinned resident in DMA32",
                "op 1 `write m0 off=0 len=32K seed=1`: m0: recorded 8 pages, replayed 6 pages",
                "op 2 `check m0 off=0 len=32K`: m0: observed in the recording (8 pages), not in the replay",
                "op 2 `check m0 off=0 len=32K`: m1: observed in the replay (8 pages), not in the recording",
            ]
        );
    }

    #[test]
    fn a_replay_that_ended_early_is_one_divergence() {
        let z = zones(PFN_4G);
        let a = run(5000);
        let b = a[..2].to_vec();
        let d = diff(&prog(), &a, &b, &z, &z);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].kind, DivergenceKind::Missing);
        assert_eq!(
            d[0].to_string(),
            "op 2 `check m0 off=0 len=32K`: missing: ops 2-4 (3 ops) were recorded but not replayed (the replay ended early)"
        );
        let d = diff(&prog(), &b, &a[..3], &z, &z);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].kind, DivergenceKind::Extra);
        assert!(d[0].what.starts_with("extra: op 2 was replayed"), "{d:?}");
    }

    #[test]
    fn many_runs_are_cut_off_with_a_count() {
        let z = zones(PFN_4G);
        let pages = |n: usize| {
            (0..n as u64)
                .map(|i| page(PageState::Resident, 5000 + i))
                .collect::<Vec<_>>()
        };
        let a = vec![rec(0, pages(64))];
        let mut b = a.clone();
        for i in (0..64).step_by(2) {
            b[0].pages[0].pages[i].state = PageState::Absent;
        }
        let d = diff(&prog(), &a, &b, &z, &z);
        assert_eq!(d.len(), MAX_PAGE_RUNS + 1);
        assert_eq!(
            d[MAX_PAGE_RUNS].what,
            "m0: 24 more runs of differing pages (24 pages) not listed"
        );
    }

    #[test]
    fn records_outside_the_program_do_not_panic() {
        let z = zones(PFN_4G);
        let a = vec![rec(40, Vec::new())];
        let d = diff(&prog(), &a, &[], &z, &z);
        assert_eq!(d[0].op_text, "<op 40 is not in the program>");
    }
}
