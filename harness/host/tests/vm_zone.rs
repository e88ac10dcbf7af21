//! VM tests of the mock GMA500 driver and the zone oracle on Debian's kernels: GEM objects
//! go to swap and come back (by fault, by pin, through their shmem file) below 4 GiB, the
//! driver's introspection agrees with /proc/self/pagemap, and the reference routes to
//! `shmem_replace_folio` are clean on stock kernels.

mod fixture;

use fixture::{boot, example, kernel, Workdir};
use shmemfuzz_core::protocol::{ChildExit, PageState};
use shmemfuzz_core::zoneinfo::PFN_4G;

fn gem_lifecycle_on(kernel_id: &str) {
    let wd = Workdir::new(&format!("gem-{kernel_id}"));
    let k = kernel(kernel_id);
    let mut s = boot(&k, &wd);
    assert!(
        s.info.modules.iter().any(|m| m.starts_with("gma500_mock")),
        "mock loaded: {:?}",
        s.info.modules
    );
    let program = example("gem-lifecycle.prog");
    let out = s.run(&program, &mut |_| {}).expect("the run completes");
    assert_eq!(out.exit, Some(ChildExit::Completed));
    assert!(out.verdict.is_clean(), "{:#?}", out.verdict.findings);
    let g0 = |i: usize| {
        out.records[i]
            .pages
            .iter()
            .find(|o| o.obj == "g0")
            .expect("g0 observed")
            .pages
            .clone()
    };
    let find = |text: &str| -> Vec<usize> {
        program
            .ops
            .iter()
            .enumerate()
            .filter(|(_, op)| op.to_string() == text)
            .map(|(i, _)| i)
            .collect()
    };
    let pageouts = find("madvise vs off=0 len=1M pageout");
    assert_eq!(pageouts.len(), 3);
    // Every pageout really put every page in swap.
    for op in pageouts {
        assert!(
            g0(op).iter().all(|p| p.state == PageState::Swapped),
            "op {op}: {:?}",
            &g0(op)[..4]
        );
    }
    // After each way back (a GEM fault, a pin, a read of the shmem file), every page is
    // resident below 4 GiB.
    let ways_back = [
        find("touch vg2 off=0 len=1M read")[0],
        find("pin g0")[0],
        find("check g0 off=0 len=1M")[0],
    ];
    for op in ways_back {
        assert!(
            g0(op)
                .iter()
                .all(|p| p.state == PageState::Resident && p.pfn < PFN_4G),
            "op {op}"
        );
    }
    assert!(
        g0(ways_back[1]).iter().all(|p| p.pinned),
        "pin pins every page"
    );
    let compared: u32 = out
        .records
        .iter()
        .filter_map(|r| r.pagemap)
        .map(|c| c.compared)
        .sum();
    let mismatched: u32 = out
        .records
        .iter()
        .filter_map(|r| r.pagemap)
        .map(|c| c.mismatched)
        .sum();
    assert!(
        compared >= 1024,
        "the introspection was cross-checked ({compared} pages)"
    );
    assert_eq!(mismatched, 0, "PAGE_INFO disagrees with /proc/self/pagemap");
    let t = out.teardown.expect("teardown");
    assert_eq!(
        t.after.taint, t.baseline.taint,
        "no new taint (O/E were set at module load)"
    );
    s.shutdown();
}

#[test]
#[ignore = "boots a VM"]
fn gem_objects_swap_and_return_below_4g_on_debian_6_1() {
    gem_lifecycle_on("debian-6.1");
}

#[test]
#[ignore = "boots a VM"]
fn gem_objects_swap_and_return_below_4g_on_debian_6_12() {
    gem_lifecycle_on("debian-6.12");
}

fn routes_are_clean_on(kernel_id: &str) {
    let wd = Workdir::new(&format!("routes-{kernel_id}"));
    let k = kernel(kernel_id);
    let mut s = boot(&k, &wd);
    for name in [
        "dma32-willneed.prog",
        "dma32-readahead.prog",
        "gem-willneed.prog",
    ] {
        let out = s
            .run(&example(name), &mut |_| {})
            .expect("the run completes");
        assert!(
            out.verdict.is_clean(),
            "{name} on {kernel_id}: {:#?}",
            out.verdict.findings
        );
    }
    s.shutdown();
}

#[test]
#[ignore = "boots a VM"]
fn replacement_routes_are_clean_on_debian_6_1() {
    routes_are_clean_on("debian-6.1");
}

#[test]
#[ignore = "boots a VM"]
fn replacement_routes_are_clean_on_debian_6_12() {
    routes_are_clean_on("debian-6.12");
}
