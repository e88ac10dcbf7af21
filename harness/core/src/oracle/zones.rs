//! The zone oracle: pages of a DMA32-constrained object must live below 4 GiB once the
//! kernel allocated them under the constraint.
//!
//! Precision rules (DESIGN.md, "Zone oracle precision"): write, read, fault and swapoff all
//! allocate with the mapping's mask, so a page is **held** to the mask once it has been seen
//! absent or swapped, or with a changed PFN, after the mask was set. Pages resident before the
//! mask was set (observed right after `dma32`) are exempt until one of those happens, except
//! that `compact` moving an exempt page within its zone keeps it exempt: compaction takes its
//! free pages from the page's own zone and allocates nothing under the mapping's mask (a
//! campaign reported such a move of a pre-mask Normal page as `zone:memfd:compact:Normal`). A GEM
//! object is constrained from creation, so none of its pages is exempt; a pinned GEM page is
//! held whatever its history. A held, resident page at or above 4 GiB is a finding whose
//! signature names the object kind, the operation after which the page was first seen at
//! that PFN, and the zone: `zone:memfd:willneed:Normal`.

use std::collections::BTreeMap;

use super::finding::{Finding, FindingKind};
use crate::program::Op;
use crate::protocol::{ObjObs, PageState};
use crate::zoneinfo::{self, Zone, PFN_4G};

#[derive(Clone, Debug, Default)]
struct PageTrack {
    exempt: bool,
    pfn: Option<u64>,
    /// Keyword of the operation after which the page was first seen at `pfn`.
    arrived: &'static str,
    /// The last PFN the page was seen resident at, kept across swap-outs.
    last_pfn: Option<u64>,
    /// Seen swapped since it was last resident.
    swapped: bool,
    /// The order of the folio the page was last seen resident in, kept across swap-outs.
    last_order: u8,
    /// It arrived at `pfn` back from swap (not by a first fault or a migration).
    from_swap: bool,
}

#[derive(Clone, Debug)]
struct ObjTrack {
    kind: &'static str,
    constrained: bool,
    /// Set by `dma32`: the next observation decides which pages are exempt.
    fresh_constraint: bool,
    pages: Vec<PageTrack>,
}

/// Follows every object's pages through a run.
#[derive(Clone, Debug, Default)]
pub struct ZoneTracker {
    objects: BTreeMap<String, ObjTrack>,
    /// (signature) -> pages seen violating, for the titles.
    pub violations: BTreeMap<String, u64>,
    /// `kind:op` -> pages of constrained objects that came back from swap at a new PFN
    /// after that operation: the kernel allocated them again on swap-in (through
    /// `shmem_replace_folio` when the swap cache copy was outside the mask). Coverage for
    /// the fuzzer, not a finding.
    pub replaced: BTreeMap<String, u64>,
    /// Set before a [`ZoneTracker::step`] whose record saw khugepaged collapse in the
    /// background: pages arriving in large folios are then attributed to `khugepaged`.
    pub background_collapse: bool,
    /// Some record of the run saw a background collapse allocate: a collapse may still be
    /// under way (khugepaged swaps a range's pages in before publishing its new folio, which
    /// took ten operations under TCG), so a large folio that appears after an operation that
    /// allocates nothing for an object is khugepaged's too.
    collapse_seen: bool,
}

/// Operations that allocate no page-cache folio for any object (and move none; some free or
/// split): a page seen at a new PFN after one of them was put there by something else.
fn allocates_nothing(word: &str) -> bool {
    matches!(
        word,
        "reclaim"
            | "pageout"
            | "cold"
            | "dontneed"
            | "remove"
            | "punch"
            | "ftruncate"
            | "zonecheck"
            | "munmap"
            | "close"
            | "unlink"
            | "dma32"
            | "thp"
            | "mount"
            | "umount"
            | "swapon"
            | "delay"
            | "spin"
            | "unpin"
    )
}

impl ZoneTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Advances the tracker past `op` (index `index`), with the observations taken after it.
    pub fn step(
        &mut self,
        index: u32,
        op: &Op,
        ok: bool,
        observed: &[ObjObs],
        zones: &[Zone],
    ) -> Vec<Finding> {
        match op {
            Op::Memfd { obj, .. } | Op::Tmpfs { obj, .. } => {
                let kind = if matches!(op, Op::Memfd { .. }) {
                    "memfd"
                } else {
                    "tmpfs"
                };
                self.objects.insert(
                    obj.clone(),
                    ObjTrack {
                        kind,
                        constrained: false,
                        fresh_constraint: false,
                        pages: Vec::new(),
                    },
                );
            }
            Op::Gem { obj, .. } => {
                self.objects.insert(
                    obj.clone(),
                    ObjTrack {
                        kind: "gem",
                        constrained: true,
                        fresh_constraint: false,
                        pages: Vec::new(),
                    },
                );
            }
            Op::Dma32 { obj } if ok => {
                // Only the first mask exempts what is resident: a second `dma32` changes nothing.
                if let Some(t) = self.objects.get_mut(obj).filter(|t| !t.constrained) {
                    t.constrained = true;
                    t.fresh_constraint = true;
                }
            }
            _ => {}
        }
        let came = op.action_word();
        self.collapse_seen |= self.background_collapse;
        let by_khugepaged = |order: u8| {
            order > 0
                && !matches!(came, "collapse" | "khugepaged")
                && (self.background_collapse || (self.collapse_seen && allocates_nothing(came)))
        };
        let mut findings = Vec::new();
        for obs in observed {
            let Some(t) = self.objects.get_mut(&obs.obj) else {
                continue;
            };
            // Large folios holding an exempt page: a page first seen now (the file grew) inside
            // one of them was allocated with it, before the mask, not under it. Looked for only
            // when the object grew.
            let seen = t.pages.len();
            let exempt_folios: Vec<(u64, u8)> = if seen < obs.pages.len() {
                obs.pages
                    .iter()
                    .zip(&t.pages)
                    .filter(|(p, tr)| {
                        tr.exempt && p.state == PageState::Resident && p.order > 0 && p.order < 64
                    })
                    .map(|(p, _)| (p.pfn >> p.order, p.order))
                    .collect()
            } else {
                Vec::new()
            };
            if seen < obs.pages.len() {
                // Pages never seen before are not exempt: they were allocated under the mask
                // unless this is the observation that establishes the constraint, or they
                // belong to a large folio allocated before it (above).
                t.pages.resize(obs.pages.len(), PageTrack::default());
            }
            for (i, (p, tr)) in obs.pages.iter().zip(t.pages.iter_mut()).enumerate() {
                let in_exempt_folio = i >= seen
                    && p.state == PageState::Resident
                    && exempt_folios.contains(&(p.pfn >> p.order.min(63), p.order));
                if in_exempt_folio {
                    tr.exempt = true;
                    tr.pfn = Some(p.pfn);
                    tr.last_pfn = Some(p.pfn);
                    tr.arrived = came;
                }
                match p.state {
                    PageState::Absent | PageState::Swapped => {
                        tr.exempt = false;
                        tr.pfn = None;
                        tr.swapped |= p.state == PageState::Swapped;
                    }
                    PageState::Resident => {
                        if t.constrained
                            && tr.swapped
                            && tr.last_pfn.is_some_and(|last| last != p.pfn)
                        {
                            // Large folios apart: a page back in a large folio came by a
                            // large allocation (on 6.12 a whole-folio replacement), one back
                            // alone from a large folio was split on the way.
                            let folio = match (tr.last_order, p.order) {
                                (_, 1..) => ":large",
                                (1.., 0) => ":split",
                                (0, 0) => "",
                            };
                            *self
                                .replaced
                                .entry(format!("{}:{came}{folio}", t.kind))
                                .or_insert(0) += 1;
                        }
                        let back_from_swap = tr.swapped;
                        tr.swapped = false;
                        tr.last_pfn = Some(p.pfn);
                        tr.last_order = p.order;
                        if t.fresh_constraint {
                            tr.exempt = true;
                            tr.pfn = Some(p.pfn);
                            tr.arrived = came;
                        } else if tr.pfn != Some(p.pfn) {
                            // Compaction moves a page within its zone (its free pages come
                            // from the same zone) and allocates nothing for the mapping: a
                            // page exempt in Normal stays where the mask never applied.
                            let compacted_in_zone = came == "compact"
                                && tr.pfn.is_some_and(|old| {
                                    zoneinfo::zone_of(zones, old) == zoneinfo::zone_of(zones, p.pfn)
                                });
                            if tr.pfn.is_some() && !(tr.exempt && compacted_in_zone) {
                                tr.exempt = false;
                            }
                            tr.pfn = Some(p.pfn);
                            tr.from_swap = back_from_swap;
                            tr.arrived = if by_khugepaged(p.order) {
                                "khugepaged"
                            } else {
                                came
                            };
                        }
                        let held = t.constrained && (!tr.exempt || p.pinned);
                        if held && p.pfn >= PFN_4G {
                            let zone = zoneinfo::zone_of(zones, p.pfn).unwrap_or("above-4G");
                            // A large folio back from swap went through 6.12's large-folio
                            // swap-in and replacement, code of its own: its own signature.
                            let large = if tr.from_swap && p.order > 0 {
                                ":large"
                            } else {
                                ""
                            };
                            let sig_place = format!("{}:{}:{zone}{large}", t.kind, tr.arrived);
                            let count = self.violations.entry(sig_place.clone()).or_insert(0);
                            *count += 1;
                            let folio = if p.order > 0 {
                                format!(", in an order-{} folio", p.order)
                            } else {
                                String::new()
                            };
                            let title = format!(
                                "page {i} of DMA32-constrained {} `{}` is in zone {zone} (PFN {:#x}{folio}) after op {index}; it arrived after `{}`",
                                t.kind, obs.obj, p.pfn, tr.arrived
                            );
                            findings.push(Finding::new(
                                FindingKind::Zone,
                                &sig_place,
                                title,
                                Some(index),
                                String::new(),
                            ));
                        }
                    }
                }
            }
            t.fresh_constraint = false;
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::parse;
    use crate::protocol::PageObs;

    fn zones() -> Vec<Zone> {
        vec![
            Zone {
                name: "DMA32".into(),
                start_pfn: 4096,
                spanned: PFN_4G - 4096,
                present: 1,
                ..Zone::default()
            },
            Zone {
                name: "Normal".into(),
                start_pfn: PFN_4G,
                spanned: 1 << 18,
                present: 1,
                ..Zone::default()
            },
        ]
    }

    fn obs(obj: &str, pages: &[(PageState, u64)]) -> Vec<ObjObs> {
        let pages = pages
            .iter()
            .map(|&(state, pfn)| PageObs {
                order: 0,
                state,
                pfn,
                pinned: false,
                head: true,
            })
            .collect();
        vec![ObjObs {
            obj: obj.into(),
            pages,
        }]
    }

    /// Object `m` with one page at `pfn`, in a folio of `order`.
    fn folio_page(state: PageState, pfn: u64, order: u8) -> Vec<ObjObs> {
        vec![ObjObs {
            obj: "m".into(),
            pages: vec![PageObs {
                order,
                state,
                pfn,
                pinned: false,
                head: PageObs::head_by_alignment(pfn, order),
            }],
        }]
    }

    const R: PageState = PageState::Resident;
    const S: PageState = PageState::Swapped;
    const HIGH: u64 = PFN_4G + 10;

    #[test]
    fn pages_back_from_swap_at_a_new_pfn_count_as_replaced() {
        let p = parse("memfd m size=8K\ndma32 m\ncheck m off=0 len=8K\n").expect("valid");
        let mut z = ZoneTracker::new();
        let zs = zones();
        z.step(0, &p.ops[0], true, &obs("m", &[(R, 5000), (R, 5001)]), &zs);
        z.step(1, &p.ops[1], true, &obs("m", &[(R, 5000), (R, 5001)]), &zs);
        z.step(2, &p.ops[2], true, &obs("m", &[(S, 0), (S, 0)]), &zs);
        // Page 0 comes back elsewhere, page 1 at its old PFN (the swap cache kept it).
        z.step(3, &p.ops[2], true, &obs("m", &[(R, 7000), (R, 5001)]), &zs);
        assert_eq!(z.replaced.get("memfd:check"), Some(&1));
        // A page of a large folio back alone was split; one back in a large folio was not.
        for (back_order, key) in [(0, "memfd:check:split"), (9, "memfd:check:large")] {
            let mut z = ZoneTracker::new();
            z.step(0, &p.ops[0], true, &folio_page(R, 512, 9), &zs);
            z.step(1, &p.ops[1], true, &folio_page(R, 512, 9), &zs);
            z.step(2, &p.ops[2], true, &folio_page(S, 0, 0), &zs);
            z.step(3, &p.ops[2], true, &folio_page(R, 1024, back_order), &zs);
            assert_eq!(z.replaced.keys().collect::<Vec<_>>(), [key]);
        }
        // Unconstrained objects never count.
        let q = parse("memfd n size=4K\n").expect("valid");
        let mut z = ZoneTracker::new();
        z.step(0, &q.ops[0], true, &obs("n", &[(R, 5000)]), &zs);
        z.step(1, &q.ops[0], true, &obs("n", &[(S, 0)]), &zs);
        z.step(2, &q.ops[0], true, &obs("n", &[(R, 6000)]), &zs);
        assert!(z.replaced.is_empty());
    }

    #[test]
    fn a_large_folio_back_from_swap_in_the_wrong_zone_has_its_own_signature() {
        let p = parse("memfd m size=8K\ndma32 m\ncheck m off=0 len=8K\n").expect("valid");
        let zs = zones();
        // Allocated before the mask in Normal, swapped, back at another PFN in Normal.
        for (order, sig) in [
            (9, "zone:memfd:check:Normal:large"),
            (0, "zone:memfd:check:Normal"),
        ] {
            let mut z = ZoneTracker::new();
            z.step(0, &p.ops[0], true, &folio_page(R, HIGH & !511, order), &zs);
            z.step(1, &p.ops[1], true, &folio_page(R, HIGH & !511, order), &zs);
            z.step(2, &p.ops[2], true, &folio_page(S, 0, 0), &zs);
            let f = z.step(
                3,
                &p.ops[2],
                true,
                &folio_page(R, (HIGH & !511) + 4096, order),
                &zs,
            );
            assert_eq!(
                f.iter().map(|f| f.signature.as_str()).collect::<Vec<_>>(),
                [sig]
            );
        }
    }

    /// A collapse allocated during one operation and published ten operations later (it swaps
    /// the range in first) is still khugepaged's when the folio appears after an operation that
    /// allocates nothing (Debian and src-6.12 campaigns blamed `reclaim` and `pageout`); after
    /// an operation that does allocate, or with no collapse seen, the operation keeps the blame.
    #[test]
    fn a_large_folio_after_a_slow_background_collapse_is_khugepaged_s() {
        let p = parse(
            "memfd m size=8K\ndma32 m\ncheck m off=0 len=8K\nreclaim 16M\n\
             mmap v m off=0 len=8K shared\nmadvise v off=0 len=8K pageout\n",
        )
        .expect("valid");
        let zs = zones();
        let new_folio = (HIGH & !511) + 4096;
        for (collapse_seen, last, sig) in [
            (true, 3, "zone:memfd:khugepaged:Normal:large"),
            // An src-6.12 campaign blamed a page-out of another object's mapping.
            (true, 5, "zone:memfd:khugepaged:Normal:large"),
            (false, 3, "zone:memfd:reclaim:Normal:large"),
            (true, 2, "zone:memfd:check:Normal:large"),
        ] {
            let mut z = ZoneTracker::new();
            z.step(0, &p.ops[0], true, &folio_page(R, 5000, 0), &zs);
            z.step(1, &p.ops[1], true, &folio_page(R, 5000, 0), &zs);
            z.step(2, &p.ops[3], true, &folio_page(S, 0, 0), &zs);
            // The collapse allocates during an unrelated operation.
            z.background_collapse = collapse_seen;
            z.step(3, &p.ops[3], true, &folio_page(S, 0, 0), &zs);
            z.background_collapse = false;
            let f = z.step(4, &p.ops[last], true, &folio_page(R, new_folio, 9), &zs);
            assert_eq!(
                f.iter().map(|f| f.signature.as_str()).collect::<Vec<_>>(),
                [sig],
                "collapse seen {collapse_seen}, last op {}",
                p.ops[last]
            );
        }
    }

    #[test]
    fn pages_resident_before_the_mask_are_exempt_until_they_move() {
        let p = parse(
            "memfd m size=8K\ndma32 m\nmadvise_placeholder\n"
                .replace("madvise_placeholder\n", "")
                .as_str(),
        )
        .expect("valid");
        let mut z = ZoneTracker::new();
        let zs = zones();
        assert!(z
            .step(0, &p.ops[0], true, &obs("m", &[(R, HIGH), (R, 5000)]), &zs)
            .is_empty());
        assert!(
            z.step(1, &p.ops[1], true, &obs("m", &[(R, HIGH), (R, 5000)]), &zs)
                .is_empty(),
            "pre-mask pages are exempt"
        );
        let will = parse(
            "memfd m size=8K\nmmap v m off=0 len=8K shared\nmadvise v off=0 len=8K willneed\n",
        )
        .expect("valid");
        // Swapped out, then back in Normal: held now.
        assert!(z
            .step(2, &will.ops[2], true, &obs("m", &[(S, 0), (R, 5000)]), &zs)
            .is_empty());
        let f = z.step(
            3,
            &will.ops[2],
            true,
            &obs("m", &[(R, HIGH + 1), (R, 5000)]),
            &zs,
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].signature, "zone:memfd:willneed:Normal");
        // A changed PFN also ends the exemption.
        let f = z.step(
            4,
            &p.ops[1],
            true,
            &obs("m", &[(R, 6000), (R, HIGH + 2)]),
            &zs,
        );
        assert_eq!(f.len(), 1, "page 1 moved to Normal");
    }

    #[test]
    fn pages_of_a_pre_mask_large_folio_first_seen_later_are_exempt() {
        // `thp always`: a 16K file's first write made a 2M folio in Normal before `dma32`; the
        // file then grows into the rest of that folio (pages first seen now).
        let p = parse("memfd m size=16K\ndma32 m\nwrite m off=0 len=32K seed=1\n").expect("valid");
        let mut z = ZoneTracker::new();
        let zs = zones();
        let head = HIGH & !511;
        let folio = |n: u64| -> Vec<PageObs> {
            (0..n)
                .map(|i| PageObs {
                    state: PageState::Resident,
                    pfn: head + i,
                    pinned: false,
                    order: 9,
                    head: i == 0,
                })
                .collect()
        };
        let at = |pages: Vec<PageObs>| {
            vec![ObjObs {
                obj: "m".into(),
                pages,
            }]
        };
        assert!(z.step(0, &p.ops[0], true, &at(folio(4)), &zs).is_empty());
        assert!(z.step(1, &p.ops[1], true, &at(folio(4)), &zs).is_empty());
        assert!(
            z.step(2, &p.ops[2], true, &at(folio(8)), &zs).is_empty(),
            "pages 4..8 are in the pre-mask folio"
        );
        // A page first seen now in another folio was allocated under the mask: held.
        let mut grown = folio(8);
        grown.push(PageObs {
            state: PageState::Resident,
            pfn: head + 4096,
            pinned: false,
            order: 0,
            head: true,
        });
        let f = z.step(3, &p.ops[2], true, &at(grown), &zs);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].signature, "zone:memfd:write:Normal");
    }

    #[test]
    fn compaction_within_the_zone_keeps_a_pre_mask_page_exempt() {
        let p = parse("memfd m size=8K\ndma32 m\ncompact\nmemfd n size=4K\n").expect("valid");
        let mut z = ZoneTracker::new();
        let zs = zones();
        assert!(z
            .step(
                0,
                &p.ops[0],
                true,
                &obs("m", &[(R, HIGH), (R, HIGH + 1)]),
                &zs
            )
            .is_empty());
        assert!(z
            .step(
                1,
                &p.ops[1],
                true,
                &obs("m", &[(R, HIGH), (R, HIGH + 1)]),
                &zs
            )
            .is_empty());
        // Compaction moves page 0 within Normal: still exempt.
        assert!(
            z.step(
                2,
                &p.ops[2],
                true,
                &obs("m", &[(R, HIGH + 7), (R, HIGH + 1)]),
                &zs
            )
            .is_empty(),
            "a pre-mask page compaction moved within Normal is still exempt"
        );
        // Any other operation that moves it ends the exemption, as before.
        let f = z.step(
            3,
            &p.ops[3],
            true,
            &obs("m", &[(R, HIGH + 9), (R, HIGH + 1)]),
            &zs,
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].signature, "zone:memfd:memfd:Normal");
    }

    #[test]
    fn gem_pages_are_held_from_creation_and_unconstrained_objects_never() {
        let p = parse("gem g size=4K\nmemfd m size=4K\n").expect("valid");
        let mut z = ZoneTracker::new();
        let f = z.step(0, &p.ops[0], true, &obs("g", &[(R, HIGH)]), &zones());
        assert_eq!(f[0].signature, "zone:gem:gem:Normal");
        assert!(z
            .step(1, &p.ops[1], true, &obs("m", &[(R, HIGH)]), &zones())
            .is_empty());
    }
}
