use super::*;
use crate::program::{parse, text::print};

fn decode(bytes: &[u8]) -> Program {
    Program::arbitrary(&mut Unstructured::new(bytes)).expect("every input decodes")
}

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.u8(..)).collect()
}

/// Race sections in `p`: `threads` whose thread a starts with a swap-side operation.
fn races(p: &Program) -> usize {
    p.ops
        .windows(3)
        .filter(|w| {
            matches!(
                w,
                [
                    Op::Threads,
                    Op::Thread { .. },
                    Op::Swapoff { .. } | Op::Reclaim { .. } | Op::Madvise { .. }
                ]
            )
        })
        .count()
}

fn every_race() -> Vec<Race> {
    let mut all = Vec::new();
    for object in RACE_OBJECTS {
        for size in 0..RACE_SIZES_MIB.len() {
            for swap in SWAP_SIDES {
                for other in OtherSide::of(object) {
                    all.push(Race {
                        object,
                        size,
                        swap,
                        other: *other,
                        delay_lo: 1000,
                        delay_hi: 20_000,
                        seed: 7,
                    });
                }
            }
        }
    }
    all
}

#[test]
fn every_race_record_decodes_to_a_valid_section_that_encodes_back() {
    for race in every_race() {
        let record = race.record().expect("in range");
        assert_eq!(Race::of(&record), race);
        let p = decode(&record);
        assert_eq!(races(&p), 1, "{race:?}\n{p}");
        // Valid: the printed text parses (the parser checks the scope rules) to the same.
        assert_eq!(parse(&print(&p)).expect("valid"), p, "{race:?}");
        let delay = p.ops.iter().find(|o| matches!(o, Op::Delay { .. }));
        assert_eq!(
            delay,
            Some(&Op::Delay {
                micros: 1000,
                upto: Some(20_000)
            })
        );
        let size = RACE_SIZES_MIB[race.size] << 20;
        let filled = |o: &Op| matches!(o, Op::Write { off: 0, len, seed: 7, .. } if *len == size);
        assert!(p.ops.iter().any(filled), "{race:?}\n{p}");
        let again = encode(&p).unwrap_or_else(|e| panic!("{race:?}: {e}\n{p}"));
        assert_eq!(decode(&again), p, "{race:?}");
        assert_eq!(again.len(), RECORD_LEN, "one record: {race:?}");
    }
}

#[test]
fn both_threads_act_on_the_object_and_swapoff_is_undone() {
    let race = Race {
        object: RaceObject::Tmpfs,
        size: 3,
        swap: SwapSide::Swapoff,
        other: OtherSide::Close,
        delay_lo: 0,
        delay_hi: 50_000,
        seed: 5,
    };
    let p = decode(&race.record().expect("in range"));
    assert_eq!(
        print(&p),
        "tmpfs t0 size=32M\nwrite t0 off=0 len=32M seed=5\nmmap v1 t0 off=0 len=32M shared\n\
         touch v1 off=0 len=32M read\nmadvise v1 off=0 len=32M pageout\nmunmap v1\nthreads\n\
         thread a\n  swapoff swap0\nthread b\n  delay 0us..50ms\n  close t0\n  unlink t0\njoin\n\
         swapon swap0\n"
    );
}

/// `madvise pageout` on the object thread b uses shares the object between the threads:
/// refused by today's scope, so the section falls back to `reclaim`; a scope that accepts
/// it gets the pageout (the same record, nothing to change here).
#[test]
fn a_pageout_side_the_scope_refuses_becomes_reclaim() {
    let race = Race {
        object: RaceObject::Memfd,
        size: 0,
        swap: SwapSide::Pageout,
        other: OtherSide::Close,
        delay_lo: 10,
        delay_hi: 20,
        seed: 1,
    };
    let scope = Scope::new(DEFAULT_SWAP_DEVICES);
    let e = expand(&race, &scope, 0, GEN_MAX_OPS).expect("fits");
    let shared = race.ops(SwapSide::Pageout, 0);
    let mut check = scope.clone();
    let accepted = shared.iter().try_for_each(|op| check.apply(op)).is_ok();
    let thread_a = |ops: &[Op]| {
        let at = ops.iter().position(|o| *o == Op::Threads).expect("section") + 2;
        ops[at].clone()
    };
    if accepted {
        assert_eq!(e.ops, shared);
        assert!(matches!(thread_a(&e.ops), Op::Madvise { .. }));
    } else {
        assert_eq!(thread_a(&e.ops), Op::Reclaim { bytes: 8 << 20 });
    }
}

#[test]
fn a_race_record_needs_the_top_level_and_room() {
    let record = Race {
        object: RaceObject::Gem,
        size: 1,
        swap: SwapSide::Reclaim,
        other: OtherSide::Read,
        delay_lo: 0,
        delay_hi: 0,
        seed: 0,
    }
    .record()
    .expect("in range");
    let mut d = Decoder::new();
    let mut threads = [0u8; RECORD_LEN];
    threads[0] = OpKind::Threads.selector();
    d.push(&threads);
    d.push(&record);
    assert!(
        d.ops.iter().all(|o| !matches!(o, Op::Gem { .. })),
        "no race inside a section: {:?}",
        d.ops
    );
    let scope = Scope::new(DEFAULT_SWAP_DEVICES);
    let race = Race::of(&record);
    let len = expand(&race, &scope, 0, GEN_MAX_OPS)
        .expect("fits")
        .ops
        .len();
    assert!(expand(&race, &scope, 0, len - 1).is_none());
    assert!(expand(&race, &scope, GEN_MAX_NAMES - 1, GEN_MAX_OPS).is_none());
}

/// One random record in 64 is a race record, so an input of 16 random records holds one
/// with probability 1 - (63/64)^16 = 22%; sections that do not fit (names or operations
/// spent by the records before) make it a little less.
#[test]
fn random_inputs_make_race_sections_at_the_stated_share() {
    let n = 2000;
    let mut with_race = 0;
    for seed in 0..n {
        let p = decode(&bytes(seed, 16 * RECORD_LEN));
        with_race += usize::from(races(&p) > 0 && p.ops.iter().any(is_large));
        assert_eq!(parse(&print(&p)).expect("valid"), p, "seed {seed}");
    }
    let share = with_race as f64 / n as f64;
    eprintln!("{with_race} of {n} inputs of 16 records make a race section");
    assert!((0.15..=0.25).contains(&share), "share {share}");
}

fn is_large(op: &Op) -> bool {
    matches!(op, Op::Memfd { size, .. } | Op::Tmpfs { size, .. } | Op::Gem { size, .. }
        if *size > GEN_MAX_PAGES * PAGE_SIZE)
}

/// Large objects come only from race records.
#[test]
fn ordinary_records_stay_small() {
    for seed in 0..500 {
        let mut b = bytes(seed, 32 * RECORD_LEN);
        for r in b.chunks_mut(RECORD_LEN) {
            if RACE_OPS.contains(&r[0]) {
                r[0] = 0;
            }
        }
        let p = decode(&b);
        assert!(!p.ops.iter().any(is_large), "seed {seed}: {p}");
    }
}

/// One race section a program: the second race record makes nothing.
#[test]
fn a_program_gets_one_race_section() {
    let race = Race {
        object: RaceObject::Memfd,
        size: 0,
        swap: SwapSide::Reclaim,
        other: OtherSide::Write,
        delay_lo: 0,
        delay_hi: 10,
        seed: 3,
    };
    let record = race.record().expect("in range");
    let one = decode(&record);
    let two = decode(&[record, record].concat());
    assert_eq!(races(&one), 1);
    assert_eq!(two, one);
}

/// Random race records are weighted toward the pairing that frees an inode under swapoff:
/// 3 of 4 take the device off, and of those 2 of 3 (plus the unweighted third's own share)
/// drop the last reference. Without the weighting about 1 in 5 would.
#[test]
fn random_race_records_mostly_pair_swapoff_with_a_last_reference_drop() {
    let n = 4000;
    let (mut swapoff, mut fatal) = (0, 0);
    for seed in 0..n {
        let mut record = [0u8; RECORD_LEN];
        record.copy_from_slice(&bytes(seed, RECORD_LEN));
        record[0] = *RACE_OPS.start();
        let race = Race::of(&record);
        let off = matches!(race.swap, SwapSide::Swapoff | SwapSide::SwapCycle);
        swapoff += usize::from(off);
        fatal += usize::from(off && OtherSide::drops(race.object).contains(&race.other));
        assert!(
            u64::from(race.delay_hi) <= Race::max_delay_us(race.size),
            "{race:?}"
        );
    }
    let (swapoff, fatal) = (swapoff as f64 / n as f64, fatal as f64 / n as f64);
    eprintln!("swapoff {swapoff:.2}, swapoff against a last-reference drop {fatal:.2}");
    assert!((0.70..=0.80).contains(&swapoff), "swapoff share {swapoff}");
    assert!(
        (0.45..=0.65).contains(&fatal),
        "fatal pairing share {fatal}"
    );
}

/// The delay window scales with the object: a small object's swapoff is over sooner.
#[test]
fn the_longest_delay_grows_with_the_object() {
    let max: Vec<u64> = (0..RACE_SIZES_MIB.len()).map(Race::max_delay_us).collect();
    assert!(max.windows(2).all(|w| w[0] < w[1]), "{max:?}");
    assert_eq!(max[max.len() - 1], RACE_MAX_DELAY_US);
}
