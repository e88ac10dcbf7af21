//! Every route of examples/routes/ reaches `shmem_replace_folio()` on src-6.12 (issue 16
//! part 2; the whole matrix is ci/route-table.sh, docs/zone-oracle.md "Routes on 6.12").
//!
//! Each route leaves pages of a DMA32-masked object in the swap cache in Normal and then
//! brings them back its own way (fault, pread, pwrite, swapoff, GEM fault, GEM pin). With
//! `shmem.planted_no_replace=1` (`shmem_should_replace_folio()` says no) the pages stay in
//! Normal: the route's zone finding (for the pin, DRM's own BUG_ON in drm_gem_get_pages()). Without it the same program is clean and the pages are
//! back in DMA32 at new PFNs. Both halves must hold, so the test fails when a route stops
//! going through the replacement (the switch changes nothing) or the replacement stops
//! working (a finding without the switch). The large-folio row (`thp always`, ssd swap) holds
//! the same of a 2 MiB folio: the planted kernel keeps it whole in Normal, the stock one
//! copies it whole into DMA32.
//!
//! In the `SHMEMFUZZ_612=1` tier (builds src-6.12); by hand:
//! `cargo test -p shmemfuzz --test routes_612 -- --ignored --nocapture`.

mod fixture;

use fixture::{boot_prepared, example, prepared, Workdir};
use shmemfuzz::session::RunOutcome;
use shmemfuzz_core::program::{parse, Program};
use shmemfuzz_core::swap::SwapMedia;

const NO_REPLACE: &str = "shmem.planted_no_replace=1";
/// Reading the page_owner record of a misplaced page oopses on 6.12.118 (kbuild_612.rs).
const NO_PAGE_OWNER: &str = "page_owner=off";

/// (example under examples/, the zone finding with the switch on, the `replaced` key
/// without it, pages of the masked object).
const ROUTES: &[(&str, &str, &str, u64)] = &[
    (
        "routes/fault.prog",
        "zone:memfd:touch:Normal",
        "memfd:touch",
        1024,
    ),
    (
        "routes/read.prog",
        "zone:memfd:check:Normal",
        "memfd:check",
        1024,
    ),
    (
        "routes/write.prog",
        "zone:memfd:write:Normal",
        "memfd:write",
        1024,
    ),
    (
        "routes/swapoff.prog",
        "zone:memfd:swapoff:Normal",
        "memfd:swapoff",
        1024,
    ),
    (
        "routes/gem-fault.prog",
        "zone:gem:touch:Normal",
        "gem:touch",
        8,
    ),
    // drm_gem_get_pages() BUG()s on a page of a DMA32 mapping at or above 4 GiB: DRM's own
    // check of this very constraint fires before the zone rule can look.
    (
        "routes/gem-pin.prog",
        "kernel:KERNEL_BUG:drm_gem_get_pages",
        "gem:pin",
        8,
    ),
];

/// Runs each of `programs` in a boot of its own of src-6.12 with `append` (as
/// ci/route-table.sh does: a route's swap slots and swap cache start from a fresh boot).
fn run_all(name: &str, append: &[String], programs: &[(String, Program)]) -> Vec<RunOutcome> {
    let kernel = prepared("src-6.12");
    programs
        .iter()
        .map(|(n, p)| {
            let wd = Workdir::new(name);
            let mut s = boot_prepared(&kernel, &wd, |o| {
                o.append.extend(append.iter().cloned());
            });
            let out = s
                .run(p, &mut |_| {})
                .unwrap_or_else(|e| panic!("{name}: {n}: {e:#}"));
            s.shutdown();
            eprintln!(
                "{name}: {n}: findings {:?}, replaced {:?}",
                out.verdict.signatures(),
                out.verdict.replaced
            );
            out
        })
        .collect()
}

/// The total of `replaced` keys that start with `key` (`memfd:touch` counts
/// `memfd:touch:split` and `memfd:touch:large`).
fn replaced(out: &RunOutcome, key: &str) -> u64 {
    let r = &out.verdict.replaced;
    r.iter()
        .filter(|(k, _)| k.starts_with(key))
        .map(|(_, v)| v)
        .sum()
}

#[test]
#[ignore = "builds linux-source-6.12 and boots it"]
fn every_route_reaches_the_replacement_on_6_12() {
    let programs: Vec<(String, Program)> = ROUTES
        .iter()
        .map(|(p, ..)| (p.to_string(), example(p)))
        .collect();
    let on = run_all(
        "routes-612-on",
        &[NO_REPLACE.into(), NO_PAGE_OWNER.into()],
        &programs,
    );
    let off = run_all("routes-612-off", &[NO_PAGE_OWNER.into()], &programs);
    for (((prog, sig, key, pages), on), off) in ROUTES.iter().zip(&on).zip(&off) {
        assert!(
            on.verdict.signatures().contains(sig),
            "{prog}: switch on, the pages stay in Normal: {:?}",
            on.verdict.findings
        );
        assert!(
            off.verdict.is_clean(),
            "{prog}: stock 6.12 replaces them: {:?}",
            off.verdict.findings
        );
        assert!(
            replaced(off, key) >= *pages,
            "{prog}: every page back in DMA32 at a new PFN: {:?}",
            off.verdict.replaced
        );
    }
}

#[test]
#[ignore = "builds linux-source-6.12 and boots it"]
fn a_large_folio_goes_through_the_replacement_whole_on_6_12() {
    let text = format!(
        "thp always\n{}",
        std::fs::read_to_string(fixture::examples_dir().join("routes/fault.prog"))
            .expect("routes/fault.prog")
    );
    let programs = [(
        "fault, thp always".to_string(),
        parse(&text).expect("parses"),
    )];
    let ssd = SwapMedia::Ssd.kernel_arg();
    let on = run_all(
        "routes-612-large-on",
        &[ssd.clone(), NO_REPLACE.into(), NO_PAGE_OWNER.into()],
        &programs,
    );
    let off = run_all(
        "routes-612-large-off",
        &[ssd, NO_PAGE_OWNER.into()],
        &programs,
    );
    assert!(
        on[0]
            .verdict
            .signatures()
            .contains(&"zone:memfd:touch:Normal:large"),
        "the planted kernel maps the large folio from Normal: {:?}",
        on[0].verdict.findings
    );
    assert!(off[0].verdict.is_clean(), "{:?}", off[0].verdict.findings);
    assert_eq!(
        off[0].verdict.replaced.get("memfd:touch:large"),
        Some(&1024),
        "both 2 MiB folios copied whole into DMA32: {:?}",
        off[0].verdict.replaced
    );
}
