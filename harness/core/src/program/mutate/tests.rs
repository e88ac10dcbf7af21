use super::*;
use crate::program::{Op, Program};
use arbitrary::{Arbitrary, Unstructured};

fn decode(bytes: &[u8]) -> Program {
    Program::arbitrary(&mut Unstructured::new(bytes)).expect("decodes")
}

#[test]
fn mutants_stay_whole_records_within_the_limit() {
    let mut data = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for seed in 0..5000u32 {
        let m = mutate(&mut data, 200, seed);
        seen.insert(format!("{m:?}"));
        assert_eq!(data.len() % RECORD_LEN, 0, "seed {seed}");
        assert!(data.len() <= limit(200), "seed {seed}: {}", data.len());
        if m == Mutation::ByteLevel {
            // What libFuzzer might do: tear the last record.
            data.push(7);
        }
    }
    assert_eq!(seen.len(), 10, "every mutation happens: {seen:?}");
}

#[test]
fn the_same_seed_gives_the_same_mutant() {
    let start: Vec<u8> = (0..64).collect();
    let (mut a, mut b) = (start.clone(), start);
    for seed in [1, 99, 12345] {
        assert_eq!(mutate(&mut a, 4096, seed), mutate(&mut b, 4096, seed));
        assert_eq!(a, b);
    }
}

#[test]
fn crossover_cuts_on_record_boundaries() {
    let a = vec![1u8; 5 * RECORD_LEN];
    let b = vec![2u8; 3 * RECORD_LEN];
    for seed in 0..100 {
        let c = crossover(&a, &b, 4096, seed);
        assert_eq!(c.len() % RECORD_LEN, 0);
        let ones = c.iter().take_while(|x| **x == 1).count();
        assert_eq!(ones % RECORD_LEN, 0, "seed {seed}");
    }
}

/// How far a program gets along the shortest route to `shmem_replace_folio` on 6.1: a
/// DMA32-constrained object, written, reclaimed, then read back.
fn route_progress(p: &Program) -> usize {
    let mut best = 0;
    let mut state: std::collections::HashMap<&str, usize> = Default::default();
    let mut maps: std::collections::HashMap<&str, &str> = Default::default();
    for op in &p.ops {
        match op {
            Op::Gem { obj, .. } => {
                state.insert(obj, 1);
            }
            Op::Dma32 { obj } => {
                state
                    .entry(obj)
                    .and_modify(|s| *s = (*s).max(1))
                    .or_insert(1);
            }
            Op::Write { obj, .. } if state.get(obj.as_str()) == Some(&1) => {
                state.insert(obj, 2);
            }
            Op::Reclaim { .. } => state.values_mut().filter(|s| **s == 2).for_each(|s| *s = 3),
            Op::Mmap { map, obj, .. } => {
                maps.insert(map, obj);
            }
            Op::Check { obj, .. } if state.get(obj.as_str()) == Some(&3) => {
                state.insert(obj, 4);
            }
            Op::Touch { map, .. } => {
                if let Some(obj) = maps.get(map.as_str()) {
                    if state.get(obj) == Some(&3) {
                        state.insert(obj, 4);
                    }
                }
            }
            _ => {}
        }
        best = best.max(state.values().copied().max().unwrap_or(0));
    }
    best
}

/// With guidance as coarse as "keep an input that gets further along the route" (the
/// kernel's coverage gives more), the mutator reaches the replacement route from nothing in
/// most runs within 20000 mutations (a corpus this small has a heavy tail).
#[test]
fn the_replacement_route_is_reachable_from_an_empty_input() {
    let mut reached = Vec::new();
    for run in 0..20u32 {
        let mut corpus: Vec<Vec<u8>> = vec![Vec::new()];
        let mut best = 0;
        let mut steps = 0u32;
        while best < 4 && steps < 20_000 {
            steps += 1;
            let seed = run.wrapping_mul(1_000_003).wrapping_add(steps);
            let mut input = corpus[seed as usize % corpus.len()].clone();
            mutate(&mut input, GEN_MAX_LEN, seed);
            let got = route_progress(&decode(&input));
            if got > best {
                best = got;
                corpus.push(input);
            }
        }
        if best == 4 {
            reached.push(steps);
        }
    }
    reached.sort_unstable();
    eprintln!(
        "route reached in {} of 20 runs; mutations: {reached:?}",
        reached.len()
    );
    assert!(
        reached.len() >= 15,
        "the route is reached in most runs: {reached:?}"
    );
}

#[test]
fn sections_wrap_records_in_two_racing_threads() {
    let base = crate::program::gen::encode(
        &crate::program::parse(
            "memfd m0 size=64K\nwrite m0 off=0 len=64K seed=1\nreclaim 64K\nswapoff swap0\nclose m0\n",
        )
        .expect("valid"),
    )
    .expect("encodes");
    let mut two = 0;
    for seed in 0..2000 {
        let mut data = base.clone();
        if mutate(&mut data, 4096, seed) != Mutation::Section {
            continue;
        }
        let p = decode(&data);
        assert!(p.is_threaded() || p.ops.len() <= 5, "seed {seed}: {p}");
        two += usize::from(
            p.ops
                .iter()
                .filter(|o| matches!(o, crate::program::Op::Thread { .. }))
                .count()
                == 2,
        );
    }
    assert!(two > 5, "sections with two threads: {two}");
}

fn valid(p: &Program) -> bool {
    let text = crate::program::text::print(p);
    crate::program::parse(&text).is_ok_and(|back| back == *p)
}

fn race_sections(p: &Program) -> usize {
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

/// Chains of mutations (byte-level ones stood in for by random bytes) from the seeds keep
/// every decoded program valid, and race sections appear and stay.
#[test]
fn mutants_decode_to_valid_programs_with_race_sections() {
    let seeds =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/shmem_ops");
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&seeds)
        .expect("seeds")
        .map(|e| std::fs::read(e.expect("entry").path()).expect("readable"))
        .collect();
    inputs.push(Vec::new());
    let (mut programs, mut with_race, mut with_large) = (0, 0, 0);
    for (i, start) in inputs.iter().enumerate() {
        let mut data = start.clone();
        for step in 0..1500u32 {
            let seed = (i as u32) << 16 | step;
            if mutate(&mut data, GEN_MAX_LEN, seed) == Mutation::ByteLevel && !data.is_empty() {
                let mut rng = fastrand::Rng::with_seed(u64::from(seed));
                let at = rng.usize(0..data.len());
                data[at] = rng.u8(..);
            }
            let p = decode(&data);
            assert!(valid(&p), "input {i} step {step}:\n{p}");
            programs += 1;
            with_race += usize::from(race_sections(&p) > 0);
            with_large += usize::from(p.ops.windows(2).any(large_section_start));
        }
    }
    eprintln!(
        "{with_race} of {programs} mutants hold a race section, {with_large} a large-folio one"
    );
    assert!(with_race * 10 > programs, "{with_race} of {programs}");
    assert!(with_large * 10 > programs, "{with_large} of {programs}");
}

/// Whether `w` is a large-folio section's policy followed by its PMD-sized object.
fn large_section_start(w: &[Op]) -> bool {
    use crate::program::{gen::large::LARGE_SIZES_MIB, ThpMode};
    let sizes = LARGE_SIZES_MIB.map(|m| m << 20);
    matches!(w, [Op::Thp { mode: ThpMode::Always, .. } | Op::Mount { huge: Some(ThpMode::Always), .. },
        Op::Memfd { size, .. } | Op::Tmpfs { size, .. } | Op::Gem { size, .. }]
        if sizes.contains(size))
}

#[test]
fn race_tweaks_keep_the_record_a_race_and_reach_every_parameter() {
    use crate::program::gen::race::{is_race, Race};
    let mut rng = fastrand::Rng::with_seed(3);
    let mut changed = [0usize; 5];
    for seed in 0..3000u64 {
        let mut record = race::fresh(&mut rng);
        let before = Race::of(&record);
        race::tweak(&mut record, &mut fastrand::Rng::with_seed(seed));
        assert!(is_race(&record), "seed {seed}");
        let after = Race::of(&record);
        assert!(after.delay_lo <= after.delay_hi, "seed {seed}: {after:?}");
        for (n, differs) in [
            before.object != after.object,
            before.size != after.size,
            before.swap != after.swap || before.other != after.other,
            (before.delay_lo, before.delay_hi) != (after.delay_lo, after.delay_hi),
            before.seed != after.seed,
        ]
        .into_iter()
        .enumerate()
        {
            changed[n] += usize::from(differs);
        }
        let p = decode(&record);
        assert!(valid(&p) && race_sections(&p) == 1, "seed {seed}:\n{p}");
    }
    assert!(
        changed.iter().all(|n| *n > 100),
        "tweaks per parameter: {changed:?}"
    );
}

/// One tweak of the seed's race (reclaim against a rewrite of an 8 MiB memfd) reaches the
/// pairing that frees an inode under swapoff (swapoff against a last-reference drop) in a few
/// percent of the draws: with the sides drawn uniformly and one side per tweak it never did.
#[test]
fn a_tweak_of_a_harmless_race_reaches_swapoff_against_a_last_reference_drop() {
    use crate::program::gen::race::{OtherSide, Race, RaceObject, SwapSide};
    let seed_race = Race {
        object: RaceObject::Memfd,
        size: 0,
        swap: SwapSide::Reclaim,
        other: OtherSide::Write,
        delay_lo: 0,
        delay_hi: 39,
        seed: 12,
    };
    let n = 4000;
    let mut fatal = 0;
    for seed in 0..n {
        let mut record = seed_race.record().expect("in range");
        race::tweak(&mut record, &mut fastrand::Rng::with_seed(seed));
        let r = Race::of(&record);
        let off = matches!(r.swap, SwapSide::Swapoff | SwapSide::SwapCycle);
        fatal += usize::from(off && OtherSide::drops(r.object).contains(&r.other));
    }
    eprintln!("{fatal} of {n} tweaks make the fatal pairing");
    assert!(fatal * 50 > n as usize, "{fatal} of {n}");
}
