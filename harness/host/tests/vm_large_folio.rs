//! Large folios through swap on Linux 6.12 (issue 16), one program
//! (examples/large-folio-replace.prog: two 2 MiB folios in Normal, then a DMA32 mask,
//! PAGEOUT, fault) on the three swap media:
//! - `ssd` (the disks marked non-rotational): the folios go out whole and the fault finds them
//!   in the swap cache in the wrong zone: each comes back as a new order-9 folio in DMA32 —
//!   `shmem_replace_folio()` of a large folio — with no swap read;
//! - `disk` (the default, rotational): split before swap-out, order-0 pages back;
//! - `zram`: out whole, freed at once (synchronous), read back as order-0 pages (the large
//!   swap entry split on swap-in).
//!
//! Each row must hold, so the test fails if the media setting stops reaching the guest or the
//! route stops replacing a large folio.
//!
//! And per-size mTHP (examples/mthp-anon.prog): a 64K folio of anonymous shared memory goes
//! through the same replacement whole.
//!
//! And the fuzzer's large-folio sections (gen/large.rs) reach that replacement.
//!
//! `#[ignore]`d (boots Debian 6.12 under QEMU five times); ci/test.sh runs it.

mod fixture;

use fixture::{boot_with, example, kernel, Workdir};
use shmemfuzz::session::{GuestInfo, RunOutcome};
use shmemfuzz_core::program::Program;
use shmemfuzz_core::protocol::{PageObs, PageState};
use shmemfuzz_core::swap::SwapMedia;
use shmemfuzz_core::zoneinfo::PFN_4G;

struct Run {
    program: Program,
    out: RunOutcome,
    guest: GuestInfo,
}

fn run(media: SwapMedia) -> Run {
    run_example(media, "large-folio-replace.prog")
}

fn run_example(media: SwapMedia, name: &str) -> Run {
    let wd = Workdir::new(&format!("large-folio-{}", media.name()));
    let mut s = boot_with(&kernel("debian-6.12"), &wd, |o| {
        o.append.push(media.kernel_arg());
    });
    let program = example(name);
    let out = s
        .run(&program, &mut |_| {})
        .unwrap_or_else(|e| panic!("{}: {e:#}", media.name()));
    let guest = s.info.clone();
    s.shutdown();
    assert!(
        out.verdict.is_clean(),
        "{}: findings {:#?}",
        media.name(),
        out.verdict.findings
    );
    Run {
        program,
        out,
        guest,
    }
}

impl Run {
    fn hits(&self, func: &str) -> u64 {
        self.out
            .coverage
            .iter()
            .find(|f| f.func == func)
            .map_or(0, |f| f.hits)
    }

    fn replaced(&self) -> Vec<(&str, u64)> {
        let r = &self.out.verdict.replaced;
        r.iter().map(|(k, v)| (k.as_str(), *v)).collect()
    }

    /// `m0`'s pages (1024 of them) after the `nth` operation printed as `op`.
    fn pages(&self, op: &str, nth: usize) -> Vec<PageObs> {
        let pages = self.pages_of(op, nth);
        assert_eq!(pages.len(), 1024, "after {op}");
        pages
    }

    /// `m0`'s pages after the `nth` operation printed as `op`.
    fn pages_of(&self, op: &str, nth: usize) -> Vec<PageObs> {
        let i = self
            .program
            .ops
            .iter()
            .enumerate()
            .filter(|(_, o)| o.to_string() == op)
            .nth(nth)
            .unwrap_or_else(|| panic!("no {nth}th `{op}`"))
            .0;
        let pages: Vec<PageObs> = self.out.records[i]
            .pages
            .iter()
            .filter(|o| o.obj == "m0")
            .flat_map(|o| o.pages.clone())
            .collect();
        pages
    }
}

const TOUCH: &str = "touch v0 off=0 len=4M read";

#[test]
#[ignore = "boots a VM"]
fn a_large_folio_is_replaced_whole_on_ssd_and_split_on_disk_and_zram() {
    let ssd = run(SwapMedia::Ssd);
    assert!(
        ssd.guest.settings.swap_rotational.iter().all(|r| r == "0"),
        "{:?}",
        ssd.guest.settings.swap_rotational
    );
    let before = ssd.pages(TOUCH, 0);
    let after = ssd.pages(TOUCH, 1);
    eprintln!(
        "ssd: shmem_writepage {}, swap_read_folio {}, PFN {} -> {}",
        ssd.hits("shmem_writepage"),
        ssd.hits("swap_read_folio"),
        before[0].pfn,
        after[0].pfn
    );
    assert!(
        before.iter().all(|p| p.order == 9 && p.pfn >= PFN_4G),
        "the folios start large and in Normal"
    );
    assert!(
        (1..=4).contains(&ssd.hits("shmem_writepage")),
        "written whole"
    );
    assert_eq!(ssd.hits("swap_read_folio"), 0, "found in the swap cache");
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert!(
            a.state == PageState::Resident && a.order == 9 && a.pfn < PFN_4G && a.pfn != b.pfn,
            "replaced by a large folio in DMA32: {b:?} -> {a:?}"
        );
        // PAGE_INFO's head flag: the first page of each 2 MiB folio, at an aligned PFN.
        assert_eq!(a.head, i % 512 == 0, "page {i}: {a:?}");
        assert_eq!(
            a.head,
            PageObs::head_by_alignment(a.pfn, a.order),
            "page {i}"
        );
    }

    // The feedback's replaced-pages counters tell a large replacement from a split.
    assert_eq!(ssd.replaced(), [("memfd:touch:large", 1024)]);

    let disk = run(SwapMedia::Disk);
    assert_eq!(disk.replaced(), [("memfd:touch:split", 1024)]);
    assert!(disk.guest.settings.swap_rotational.iter().all(|r| r == "1"));
    assert!(
        disk.hits("shmem_writepage") >= 1024,
        "split before swap-out"
    );
    assert!(disk
        .pages(TOUCH, 1)
        .iter()
        .all(|p| p.order == 0 && p.pfn < PFN_4G));

    let zram = run(SwapMedia::Zram);
    assert!(
        zram.guest
            .swap_devices
            .iter()
            .all(|d| d.starts_with("/dev/zram")),
        "{:?}",
        zram.guest.swap_devices
    );
    eprintln!(
        "zram: shmem_writepage {}, shmem_swapin_folio {}",
        zram.hits("shmem_writepage"),
        zram.hits("shmem_swapin_folio")
    );
    assert!(
        (1..=4).contains(&zram.hits("shmem_writepage")),
        "written whole"
    );
    assert!(zram
        .pages(TOUCH, 1)
        .iter()
        .all(|p| p.order == 0 && p.pfn < PFN_4G));
}

#[test]
#[ignore = "boots a VM"]
fn a_64k_anonymous_shmem_folio_is_replaced_whole_on_ssd() {
    // Per-size mTHP: `thp always size=64K` on an anonymous shared mapping (`memfd ... anon`)
    // gives 64K folios, which the ssd swaps out whole and the fault replaces whole.
    let r = run_example(SwapMedia::Ssd, "mthp-anon.prog");
    let before = r.pages_of("dma32 m0", 0);
    let after = r.pages_of("touch v0 off=0 len=1M read", 0);
    assert_eq!((before.len(), after.len()), (256, 256));
    assert!(
        before.iter().all(|p| p.order == 4 && p.pfn >= PFN_4G),
        "64K folios in Normal before the mask: {:?}",
        before[0]
    );
    assert_eq!(
        r.hits("shmem_writepage"),
        16,
        "each 64K folio written whole"
    );
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert!(
            a.order == 4 && a.pfn < PFN_4G && a.pfn != b.pfn && a.head == (i % 16 == 0),
            "page {i}: replaced by a 64K folio in DMA32: {b:?} -> {a:?}"
        );
    }
    assert_eq!(r.replaced(), [("memfd:touch:large", 256)]);
}

/// The fuzzer's large-folio sections (`gen/large.rs`) reach the replacement of a large folio:
/// a decoded section (memfd under `thp always`, and a file on a `huge=always` tmpfs; mask
/// after the allocation, whole-folio page-out) followed by the read-back a campaign adds, on
/// the ssd, in one boot. Each object's pages come back as large folios in DMA32, counted under
/// the `:large` key; a section that stopped making large folios in swap would count order-0
/// keys or none.
#[test]
#[ignore = "boots a VM"]
fn generated_large_folio_sections_reach_a_large_folio_replacement() {
    use arbitrary::{Arbitrary, Unstructured};
    use shmemfuzz_core::program::gen::large::{Large, LargeObject, Mask};
    use shmemfuzz_core::program::{parse, text::print};
    let wd = Workdir::new("large-folio-sections");
    let mut s = boot_with(&kernel("debian-6.12"), &wd, |o| {
        o.append.push(SwapMedia::Ssd.kernel_arg());
    });
    for (object, obj, key) in [
        (LargeObject::Memfd, "m0", "memfd:check:large"),
        (LargeObject::Tmpfs, "t1", "tmpfs:check:large"),
    ] {
        let record = Large {
            object,
            size: 1,
            mask: Mask::After,
            pageout: true,
            folio: 0,
            seed: 3,
        }
        .record()
        .expect("in range");
        let section = Program::arbitrary(&mut Unstructured::new(&record)).expect("decodes");
        let text = format!("{}check {obj} off=0 len=4M\n", print(&section));
        let program = parse(&text).expect("valid");
        let out = s
            .run(&program, &mut |_| {})
            .unwrap_or_else(|e| panic!("{object:?}: {e:#}"));
        assert!(
            out.verdict.is_clean(),
            "{object:?}: {:#?}",
            out.verdict.findings
        );
        let replaced: Vec<(&str, u64)> = out
            .verdict
            .replaced
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(replaced, [(key, 1024)], "{object:?}:\n{text}");
    }
    s.shutdown();
}
