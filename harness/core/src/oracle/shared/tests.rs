//! The shared-object model against brute force: every interleaving of the threads' byte
//! accesses of small programs is executed, and for every read and every byte at the join the
//! set of values the model permits must be exactly the set some interleaving produced (all
//! 256 byte values are asked, so a missing outcome and an unreachable one both fail).

use std::collections::BTreeSet;

use super::*;
use crate::program::MapKind;

/// The object's size: small enough to enumerate, two mapping pages are not needed.
const SIZE: u64 = 6;

fn write(off: u64, len: u64, seed: u32) -> Op {
    Op::Write {
        obj: "m0".into(),
        off,
        len,
        seed,
    }
}

fn check(off: u64, len: u64) -> Op {
    Op::Check {
        obj: "m0".into(),
        off,
        len,
    }
}

fn touch(off: u64, len: u64, seed: Option<u32>) -> Op {
    Op::Touch {
        map: "v0".into(),
        off,
        len,
        mode: seed.map_or(TouchMode::Read, |seed| TouchMode::Write { seed }),
    }
}

/// The model at `threads`: `m0` holds seed 1 at 0..4 and zeros at 4..6, mapped shared as `v0`.
fn start() -> Model {
    let mut m = Model::new(Vec::new());
    for op in [
        Op::Memfd {
            obj: "m0".into(),
            size: SIZE,
            anon: false,
        },
        write(0, 4, 1),
        Op::Mmap {
            map: "v0".into(),
            obj: "m0".into(),
            off: 0,
            len: SIZE,
            kind: MapKind::Shared,
        },
    ] {
        m.apply(&op);
    }
    m
}

/// One byte access of an operation.
#[derive(Clone, Copy)]
enum Access {
    Write {
        pos: usize,
        value: u8,
    },
    /// Byte `byte` of read number `read` (global over the section).
    Read {
        read: usize,
        byte: usize,
        pos: usize,
    },
}

/// What every interleaving produced: per read and byte, and per byte at the join, the values
/// seen; and every distinct final content.
struct Reachable {
    reads: Vec<Vec<BTreeSet<u8>>>,
    finals: Vec<BTreeSet<u8>>,
    contents: BTreeSet<Vec<u8>>,
}

/// The byte accesses of each thread, in order (an operation's bytes in ascending order: each
/// byte is its own location, so the order inside one operation does not change which value
/// one byte can hold), and the reads' lengths.
fn accesses(blocks: &[Vec<Op>]) -> (Vec<Vec<Access>>, Vec<usize>) {
    let mut reads = Vec::new();
    let threads = blocks
        .iter()
        .map(|block| {
            let mut v = Vec::new();
            for op in block {
                let (off, len, seed) = match op {
                    Op::Write { off, len, seed, .. } => (*off, *len, Some(*seed)),
                    Op::Check { off, len, .. } => (*off, *len, None),
                    Op::Touch { off, len, mode, .. } => match mode {
                        TouchMode::Write { seed } => (*off, *len, Some(*seed)),
                        TouchMode::Read => (*off, *len, None),
                    },
                    _ => unreachable!("only writes and reads"),
                };
                let read = reads.len();
                if seed.is_none() {
                    reads.push(len as usize);
                }
                for (byte, pos) in (off..off + len).enumerate() {
                    v.push(match seed {
                        Some(s) => Access::Write {
                            pos: pos as usize,
                            value: pattern::byte(s, pos),
                        },
                        None => Access::Read {
                            read,
                            byte,
                            pos: pos as usize,
                        },
                    });
                }
            }
            v
        })
        .collect();
    (threads, reads)
}

fn explore(threads: &[Vec<Access>], at: &mut [usize], mem: &mut Vec<u8>, r: &mut Reachable) {
    let mut moved = false;
    for t in 0..threads.len() {
        let Some(&a) = threads[t].get(at[t]) else {
            continue;
        };
        moved = true;
        at[t] += 1;
        match a {
            Access::Write { pos, value } => {
                let old = std::mem::replace(&mut mem[pos], value);
                explore(threads, at, mem, r);
                mem[pos] = old;
            }
            Access::Read { read, byte, pos } => {
                r.reads[read][byte].insert(mem[pos]);
                explore(threads, at, mem, r);
            }
        }
        at[t] -= 1;
    }
    if !moved {
        for (set, b) in r.finals.iter_mut().zip(mem.iter()) {
            set.insert(*b);
        }
        r.contents.insert(mem.clone());
    }
}

fn enumerate(blocks: &[Vec<Op>]) -> Reachable {
    let (threads, reads) = accesses(blocks);
    let mut r = Reachable {
        reads: reads.iter().map(|n| vec![BTreeSet::new(); *n]).collect(),
        finals: vec![BTreeSet::new(); SIZE as usize],
        contents: BTreeSet::new(),
    };
    let mut mem = start().expected_read("m0", 0, SIZE);
    explore(&threads, &mut vec![0; threads.len()], &mut mem, &mut r);
    r
}

fn same_values(
    what: &str,
    allowed: &Allowed,
    i: usize,
    reachable: &BTreeSet<u8>,
) -> Result<(), String> {
    for v in 0..=255u8 {
        if allowed.permits(i, v) != reachable.contains(&v) {
            return Err(format!(
                "{what}, byte {i}: the model {} {v:#04x}; reachable: {reachable:02x?}",
                if allowed.permits(i, v) {
                    "permits unreachable"
                } else {
                    "rejects reachable"
                }
            ));
        }
    }
    Ok(())
}

/// Compares the model with the enumeration; `racing` says whether the threads' models get
/// the other threads' writes (false: a deliberately wrong model, which must fail).
fn cross_check(blocks: &[Vec<Op>], racing: bool) -> Result<(), String> {
    let r = enumerate(blocks);
    let pre = start();
    let refs: Vec<Vec<&Op>> = blocks.iter().map(|b| b.iter().collect()).collect();
    let writes = SectionWrites::of(&pre, &refs);
    let mut read = 0;
    for (t, block) in blocks.iter().enumerate() {
        let mut m = pre.clone();
        if racing {
            m.racing = writes.others(t);
        }
        for (k, op) in block.iter().enumerate() {
            let allowed = match op {
                Op::Check { off, len, .. } => Some(m.allowed_read("m0", *off, *len)),
                Op::Touch {
                    off,
                    len,
                    mode: mode @ TouchMode::Read,
                    ..
                } => match m.touch_plan("v0", *off, *len, *mode) {
                    TouchPlan::Read { expected } => Some(m.allowed_touch("v0", *off, expected)),
                    other => return Err(format!("thread {t} op {k}: plan {other:?}")),
                },
                _ => None,
            };
            if let Some(allowed) = allowed {
                for (i, set) in r.reads[read].iter().enumerate() {
                    same_values(&format!("thread {t} op {k} `{op}`"), &allowed, i, set)?;
                }
                read += 1;
            }
            m.apply(op);
        }
    }
    let mut after = pre.clone();
    for op in blocks.iter().flatten() {
        after.apply(op);
    }
    let at_join = writes.at_join(&after, "m0");
    for (i, set) in r.finals.iter().enumerate() {
        same_values("at the join", &at_join, i, set)?;
    }
    // Every reachable content is clean and settles the model to exactly itself.
    for content in &r.contents {
        let d = at_join.compare(0, content);
        if !d.is_clean() {
            return Err(format!("reachable {content:02x?} is a finding: {d:?}"));
        }
        let mut settled = after.clone();
        at_join.settle(&mut settled, "m0", content);
        let got = settled.expected_read("m0", 0, SIZE);
        if &got != content {
            return Err(format!(
                "settled on {content:02x?}, the model holds {got:02x?}"
            ));
        }
    }
    Ok(())
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) % n
    }

    /// A write, check or touch of 1 to 3 bytes of the object.
    fn op(&mut self, seed: u32) -> Op {
        let off = self.below(SIZE);
        let len = 1 + self.below(3.min(SIZE - off));
        match self.below(4) {
            0 => write(off, len, seed),
            1 => check(off, len),
            2 => touch(off, len, Some(seed)),
            _ => touch(off, len, None),
        }
    }
}

#[test]
fn two_threads_match_every_interleaving_of_hand_picked_programs() {
    let cases = [
        // A read racing a write of the same bytes, and the write's own later read.
        vec![vec![write(0, 6, 2), check(0, 6)], vec![check(0, 6)]],
        // Both write the whole object twice: at the join each byte is one of the last writes.
        vec![
            vec![write(0, 6, 2), write(0, 6, 3)],
            vec![write(0, 6, 4), check(2, 4), write(1, 3, 5)],
        ],
        // Through the mapping: a touch write racing pread and a touch read.
        vec![
            vec![touch(0, 6, Some(6)), check(0, 6)],
            vec![touch(2, 4, None), write(4, 2, 7)],
        ],
    ];
    for blocks in cases {
        cross_check(&blocks, true).unwrap_or_else(|e| panic!("{blocks:?}: {e}"));
    }
}

#[test]
fn generated_programs_match_every_interleaving() {
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    for case in 0..150 {
        let threads = 2 + (case % 3 == 0) as usize;
        let mut seed = 10;
        let blocks: Vec<Vec<Op>> = (0..threads)
            .map(|_| {
                let n = 1 + rng.below(if threads == 2 { 3 } else { 2 });
                (0..n)
                    .map(|_| {
                        seed += 1;
                        rng.op(seed)
                    })
                    .collect()
            })
            .collect();
        cross_check(&blocks, true).unwrap_or_else(|e| panic!("case {case} {blocks:?}: {e}"));
    }
}

#[test]
fn the_cross_check_fails_a_model_that_ignores_the_other_threads() {
    // A read racing a write: the racing bytes are reachable, a model without them rejects them.
    let blocks = vec![vec![write(0, 6, 2)], vec![check(0, 6)]];
    let e = cross_check(&blocks, false).expect_err("the exact model is wrong here");
    assert!(e.contains("rejects reachable"), "{e}");
    // And a join that only allowed the program order would reject the other order.
    let r = enumerate(&[vec![write(0, 6, 2)], vec![write(0, 6, 3)]]);
    let mut after = start();
    after.apply(&write(0, 6, 2));
    after.apply(&write(0, 6, 3));
    let exact = Allowed::exact(0, after.expected_read("m0", 0, SIZE));
    assert!(same_values("join", &exact, 0, &r.finals[0]).is_err());
}

#[test]
fn a_byte_no_interleaving_leaves_is_a_data_finding() {
    let blocks = vec![vec![write(0, 6, 2), write(0, 3, 3)], vec![write(2, 4, 4)]];
    let r = enumerate(&blocks);
    let refs: Vec<Vec<&Op>> = blocks.iter().map(|b| b.iter().collect()).collect();
    let writes = SectionWrites::of(&start(), &refs);
    let mut after = start();
    blocks.iter().flatten().for_each(|op| {
        after.apply(op);
    });
    let at_join = writes.at_join(&after, "m0");
    let good = r.contents.iter().next().expect("some content").clone();
    assert!(at_join.compare(0, &good).is_clean());
    // Byte 1 with thread 0's first write: its second write (seed 3) covers byte 1 after it.
    let mut stale = good.clone();
    stale[1] = pattern::byte(2, 1);
    assert_ne!(stale[1], pattern::byte(3, 1), "the seeds differ at byte 1");
    let d = at_join.compare(0, &stale);
    assert_eq!(
        (
            d.mismatched_bytes,
            d.first_mismatch.map(|(off, _, got)| (off, got))
        ),
        (1, Some((1, stale[1]))),
        "{d:?}"
    );
    // A byte nobody wrote, in the middle of a read racing every write.
    let mut reader = start();
    reader.racing = writes.threads.concat();
    let allowed = reader.allowed_read("m0", 0, SIZE);
    let mut junk = reader.expected_read("m0", 0, SIZE);
    junk[3] = (0..=255u8)
        .find(|v| !allowed.permits(3, *v))
        .expect("some value is not allowed");
    assert_eq!(allowed.compare(0, &junk).mismatched_bytes, 1);
}
