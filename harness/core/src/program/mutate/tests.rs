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
    assert_eq!(seen.len(), 8, "every mutation happens: {seen:?}");
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
