//! Large folios through swap on Linux 6.12 (issue 16): with the swap disks marked
//! non-rotational (`shmemfuzz.swap_media=ssd`), a DMA32 memfd's 2 MiB folios go to swap whole
//! and come back whole, by fault and by swapoff, in DMA32; on the default rotational disks the
//! same program splits them at swap-out. Both must hold, so the test fails if the swap-media
//! setting stops reaching the guest or if 6.12 stops swapping large folios whole.
//!
//! `#[ignore]`d (boots Debian 6.12 under QEMU twice); ci/test.sh runs it.

mod fixture;

use fixture::{boot_with, example, kernel, Workdir};
use shmemfuzz::session::RunOutcome;
use shmemfuzz_core::program::Program;
use shmemfuzz_core::protocol::{PageState, SWAP_MEDIA_SSD};

fn run(ssd: bool) -> (Program, RunOutcome, Vec<String>) {
    let wd = Workdir::new(if ssd {
        "large-folio-ssd"
    } else {
        "large-folio-disk"
    });
    let mut s = boot_with(&kernel("debian-6.12"), &wd, |o| {
        if ssd {
            o.append.push(SWAP_MEDIA_SSD.into());
        }
    });
    let rotational = s.info.settings.swap_rotational.clone();
    let program = example("large-folio-swap.prog");
    let out = s
        .run(&program, &mut |_| {})
        .unwrap_or_else(|e| panic!("large-folio-swap (ssd {ssd}): {e:#}"));
    s.shutdown();
    (program, out, rotational)
}

fn hits(out: &RunOutcome, func: &str) -> u64 {
    out.coverage
        .iter()
        .find(|f| f.func == func)
        .map_or(0, |f| f.hits)
}

/// The folio orders of `m0`'s resident pages after the operation printed as `op` (n-th).
fn orders_after(program: &Program, out: &RunOutcome, op: &str, nth: usize) -> Vec<u8> {
    let i = program
        .ops
        .iter()
        .enumerate()
        .filter(|(_, o)| o.to_string() == op)
        .nth(nth)
        .unwrap_or_else(|| panic!("no {nth}th `{op}`"))
        .0;
    out.records[i]
        .pages
        .iter()
        .filter(|o| o.obj == "m0")
        .flat_map(|o| &o.pages)
        .map(|p| {
            assert_eq!(p.state, PageState::Resident, "after `{op}`: {p:?}");
            p.order
        })
        .collect()
}

#[test]
#[ignore = "boots a VM"]
fn large_folios_swap_whole_on_ssd_and_split_on_disk() {
    let (program, out, rotational) = run(true);
    assert!(
        out.verdict.is_clean(),
        "findings: {:#?}",
        out.verdict.findings
    );
    assert!(rotational.iter().all(|r| r == "0"), "{rotational:?}");
    // Two pageouts of two 2 MiB folios: four writepages, not 2048.
    let writes = hits(&out, "shmem_writepage");
    eprintln!(
        "ssd: shmem_writepage {writes}, swapin {}",
        hits(&out, "shmem_swapin_folio")
    );
    assert!(
        (1..=8).contains(&writes),
        "shmem_writepage ran {writes} times"
    );
    let touch = "touch v0 off=0 len=4M read";
    for (op, nth) in [(touch, 1), ("swapoff swap0", 0)] {
        let orders = orders_after(&program, &out, op, nth);
        assert_eq!(orders.len(), 1024, "after {op}");
        assert!(orders.iter().all(|&o| o == 9), "after {op}: {orders:?}");
    }

    let (program, out, rotational) = run(false);
    assert!(out.verdict.is_clean(), "{:#?}", out.verdict.findings);
    assert!(rotational.iter().all(|r| r == "1"), "{rotational:?}");
    let writes = hits(&out, "shmem_writepage");
    eprintln!("disk: shmem_writepage {writes}");
    assert!(writes >= 1024, "shmem_writepage ran {writes} times");
    let orders = orders_after(&program, &out, touch, 1);
    assert!(orders.iter().all(|&o| o == 0), "{orders:?}");
}
