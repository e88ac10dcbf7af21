use super::*;
use crate::program::{parse, text::print};

fn decode(bytes: &[u8]) -> Program {
    Program::arbitrary(&mut Unstructured::new(bytes)).expect("every input decodes")
}

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.u8(..)).collect()
}

fn every_large() -> Vec<Large> {
    let mut all = Vec::new();
    for object in LARGE_OBJECTS {
        for size in 0..LARGE_SIZES_MIB.len() {
            for mask in MASKS {
                for pageout in [false, true] {
                    for folio in [0, THP_SIZES.len() - 1] {
                        all.push(Large {
                            object,
                            size,
                            mask,
                            pageout,
                            folio,
                            seed: 9,
                        });
                    }
                }
            }
        }
    }
    all
}

/// Whether `p` sets a THP policy that gives its objects large folios before it creates one.
fn policy_before_object(p: &Program) -> bool {
    let first_object = p
        .ops
        .iter()
        .position(|o| matches!(o, Op::Memfd { .. } | Op::Tmpfs { .. } | Op::Gem { .. }));
    let policy = p.ops.iter().position(|o| {
        matches!(
            o,
            Op::Thp {
                mode: ThpMode::Always,
                ..
            } | Op::Mount {
                huge: Some(ThpMode::Always),
                ..
            }
        )
    });
    matches!((policy, first_object), (Some(a), Some(b)) if a < b)
}

#[test]
fn every_large_record_decodes_to_a_valid_section_that_encodes_back() {
    for large in every_large() {
        let record = large.record().expect("in range");
        assert_eq!(Large::of(&record), large);
        let p = decode(&record);
        assert_eq!(parse(&print(&p)).expect("valid"), p, "{large:?}");
        assert!(policy_before_object(&p), "{large:?}\n{p}");
        let size = large.bytes();
        let created = p.ops.iter().any(|o| {
            matches!(o, Op::Memfd { size: s, .. } | Op::Tmpfs { size: s, .. }
                | Op::Gem { size: s, .. } if *s == size)
        });
        assert!(created, "{large:?}\n{p}");
        let paged_out = p.ops.iter().any(|o| {
            matches!(o, Op::Madvise { off: 0, len, advice: Advice::Pageout, .. } if *len == size)
        });
        assert_eq!(paged_out, large.pageout, "{large:?}\n{p}");
        let again = encode(&p).unwrap_or_else(|e| panic!("{large:?}: {e}\n{p}"));
        assert_eq!(decode(&again), p, "{large:?}");
    }
}

/// The shape that leaves a constrained object's large folios in swap: policy, object,
/// pages allocated unconstrained, the mask, the page-out.
#[test]
fn a_mask_after_puts_large_folios_of_a_constrained_object_in_swap() {
    let large = Large {
        object: LargeObject::Memfd,
        size: 1,
        mask: Mask::After,
        pageout: true,
        folio: 0,
        seed: 5,
    };
    assert_eq!(
        print(&decode(&large.record().expect("in range"))),
        "thp always\nmemfd m0 size=4M\nwrite m0 off=0 len=4M seed=5\n\
         mmap v1 m0 off=0 len=4M shared\ntouch v1 off=0 len=4M read\ndma32 m0\n\
         madvise v1 off=0 len=4M pageout\n"
    );
}

/// Anonymous shared memory follows the per-size policy, which applies to faults only: the
/// pages are allocated by a write fault, and the mask comes before them when asked.
#[test]
fn an_anonymous_memfd_gets_a_per_size_policy_and_a_write_fault() {
    let large = Large {
        object: LargeObject::AnonMemfd,
        size: 0,
        mask: Mask::Before,
        pageout: false,
        folio: 2,
        seed: 1,
    };
    assert_eq!(
        print(&decode(&large.record().expect("in range"))),
        "thp never\nthp always size=64K\nmemfd m0 size=2M anon\ndma32 m0\n\
         mmap v1 m0 off=0 len=2M shared\ntouch v1 off=0 len=2M write seed=1\n"
    );
}

/// A tmpfs file follows its mount's `huge=`; a GEM object is constrained from its creation,
/// so it gets no `dma32`.
#[test]
fn tmpfs_gets_a_huge_mount_and_gem_no_mask() {
    let tmpfs = Large {
        object: LargeObject::Tmpfs,
        size: 0,
        mask: Mask::After,
        pageout: true,
        folio: 0,
        seed: 2,
    };
    let p = decode(&tmpfs.record().expect("in range"));
    assert!(
        print(&p).starts_with("thp never\nmount f0 huge=always\ntmpfs t1 size=2M on=f0\n"),
        "{p}"
    );
    let gem = Large {
        object: LargeObject::Gem,
        ..tmpfs
    };
    let p = decode(&gem.record().expect("in range"));
    assert!(!p.ops.iter().any(|o| matches!(o, Op::Dma32 { .. })), "{p}");
}

#[test]
fn a_large_record_needs_the_top_level_and_room() {
    let large = Large {
        object: LargeObject::Tmpfs,
        size: 0,
        mask: Mask::After,
        pageout: true,
        folio: 0,
        seed: 0,
    };
    let mut d = Decoder::new();
    let mut threads = [0u8; RECORD_LEN];
    threads[0] = OpKind::Threads.selector();
    d.push(&threads);
    d.push(&large.record().expect("in range"));
    assert!(
        !d.ops.iter().any(|o| matches!(o, Op::Tmpfs { .. })),
        "no section inside a threaded one: {:?}",
        d.ops
    );
    let scope = Scope::new(DEFAULT_SWAP_DEVICES);
    let len = expand(&large, &scope, 0, GEN_MAX_OPS)
        .expect("fits")
        .ops
        .len();
    assert!(expand(&large, &scope, 0, len - 1).is_none());
    assert!(expand(&large, &scope, GEN_MAX_NAMES - 2, GEN_MAX_OPS).is_none());
}

/// One random record in 64 is a large-folio record: an input of 16 random records holds
/// one with probability 1 - (63/64)^16 = 22%, a little less where names run out.
#[test]
fn random_inputs_make_large_folio_sections_at_the_stated_share() {
    let n = 2000;
    let mut with = 0;
    for seed in 0..n {
        let p = decode(&bytes(seed, 16 * RECORD_LEN));
        with += usize::from(p.ops.windows(2).any(section_start));
        assert_eq!(parse(&print(&p)).expect("valid"), p, "seed {seed}");
    }
    let share = with as f64 / n as f64;
    eprintln!("{with} of {n} inputs of 16 records make a large-folio section");
    assert!((0.15..=0.30).contains(&share), "share {share}");
}

/// Whether `w` is a section's policy followed by its object.
fn section_start(w: &[Op]) -> bool {
    let pmd_sized = LARGE_SIZES_MIB.map(|m| m << 20);
    matches!(w, [Op::Thp { mode: ThpMode::Always, .. } | Op::Mount { huge: Some(ThpMode::Always), .. },
        Op::Memfd { size, .. } | Op::Tmpfs { size, .. } | Op::Gem { size, .. }]
        if pmd_sized.contains(size))
}

/// Random large-folio records are weighted toward the mask after the allocation and a
/// page-out: about 2 in 3 masks are "after" and 3 in 4 records page out.
#[test]
fn random_large_records_mostly_mask_after_and_page_out() {
    let n = 4000;
    let (mut after, mut pageout) = (0, 0);
    for seed in 0..n {
        let mut record = [0u8; RECORD_LEN];
        record.copy_from_slice(&bytes(seed, RECORD_LEN));
        record[0] = *LARGE_OPS.start();
        let large = Large::of(&record);
        after += usize::from(large.mask == Mask::After);
        pageout += usize::from(large.pageout);
    }
    let (after, pageout) = (after as f64 / n as f64, pageout as f64 / n as f64);
    eprintln!("mask after {after:.2}, page-out {pageout:.2}");
    assert!((0.62..=0.72).contains(&after), "after share {after}");
    assert!((0.70..=0.80).contains(&pageout), "page-out share {pageout}");
}
