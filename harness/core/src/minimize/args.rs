//! The argument phase: each operation's arguments toward their simplest values.

use std::iter::successors;

use super::{Halt, Run, Step};
use crate::program::{MapKind, Op, TouchMode, PAGE_SIZE};

/// An argument the argument phase simplifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// Every argument of the operation at once.
    All,
    /// `mmap`'s mapping kind, toward `shared`.
    Kind,
    /// `gem … pinned`, toward unpinned.
    Pinned,
    /// `swapon … prio=`, toward none.
    Prio,
    Off,
    Len,
    /// Object size (`memfd`, `tmpfs`, `ftruncate`, `gem`).
    Size,
    /// `reclaim`'s byte count.
    Bytes,
    Seed,
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::All => "every argument",
            Field::Kind => "kind",
            Field::Pinned => "pinned",
            Field::Prio => "prio",
            Field::Off => "off",
            Field::Len => "len",
            Field::Size => "size",
            Field::Bytes => "bytes",
            Field::Seed => "seed",
        }
    }
}

/// The order fields are tried in: the one-run choices first, then the searches.
const FIELDS: [Field; 8] = [
    Field::Kind,
    Field::Pinned,
    Field::Prio,
    Field::Off,
    Field::Len,
    Field::Size,
    Field::Bytes,
    Field::Seed,
];

/// The numeric argument `field` of `op`, if it has one.
fn number(op: &mut Op, field: Field) -> Option<&mut u64> {
    match (op, field) {
        (
            Op::Memfd { size, .. }
            | Op::Tmpfs { size, .. }
            | Op::Ftruncate { size, .. }
            | Op::Gem { size, .. },
            Field::Size,
        ) => Some(size),
        (
            Op::Write { off, .. }
            | Op::Check { off, .. }
            | Op::Punch { off, .. }
            | Op::Corrupt { off, .. }
            | Op::Mmap { off, .. }
            | Op::Touch { off, .. }
            | Op::Madvise { off, .. },
            Field::Off,
        ) => Some(off),
        (
            Op::Write { len, .. }
            | Op::Check { len, .. }
            | Op::Punch { len, .. }
            | Op::Corrupt { len, .. }
            | Op::Mmap { len, .. }
            | Op::Touch { len, .. }
            | Op::Madvise { len, .. },
            Field::Len,
        ) => Some(len),
        (Op::Reclaim { bytes }, Field::Bytes) => Some(bytes),
        _ => None,
    }
}

fn with_number(op: &Op, field: Field, value: u64) -> Op {
    let mut op = op.clone();
    if let Some(v) = number(&mut op, field) {
        *v = value;
    }
    op
}

/// The simplest value of a numeric argument now at `cur`: offsets and file sizes 0, lengths,
/// byte counts and GEM sizes one page (one byte if they are under a page already).
fn floor(op: &Op, field: Field, cur: u64) -> u64 {
    let at_least_one = if cur >= PAGE_SIZE { PAGE_SIZE } else { 1 };
    match (op, field) {
        (_, Field::Off) => 0,
        (Op::Memfd { .. } | Op::Tmpfs { .. } | Op::Ftruncate { .. }, Field::Size) => 0,
        _ => at_least_one,
    }
}

/// Whether the argument must stay a multiple of the page size.
fn page_aligned(op: &Op, field: Field) -> bool {
    field == Field::Off && matches!(op, Op::Mmap { .. } | Op::Madvise { .. })
}

/// The simpler versions of `op` for a non-numeric `field`, simplest first.
fn alternatives(op: &Op, field: Field) -> Vec<Op> {
    let mut op = op.clone();
    match (&mut op, field) {
        (Op::Mmap { kind, .. }, Field::Kind) if *kind != MapKind::Shared => {
            *kind = MapKind::Shared;
            vec![op]
        }
        (Op::Gem { pinned, .. }, Field::Pinned) if *pinned => {
            *pinned = false;
            vec![op]
        }
        (Op::Swapon { prio, .. }, Field::Prio) if prio.is_some() => {
            *prio = None;
            vec![op]
        }
        (
            Op::Write { seed, .. }
            | Op::Corrupt { seed, .. }
            | Op::Touch {
                mode: TouchMode::Write { seed },
                ..
            },
            Field::Seed,
        ) => {
            let cur = *seed;
            // Seed 0 first, then 1 (in case the bug needs a pattern seed 0 does not give).
            [0, 1]
                .into_iter()
                .filter(|&s| s < cur)
                .map(|s| {
                    let mut alt = op.clone();
                    if let Op::Write { seed, .. }
                    | Op::Corrupt { seed, .. }
                    | Op::Touch {
                        mode: TouchMode::Write { seed },
                        ..
                    } = &mut alt
                    {
                        *seed = s;
                    }
                    alt
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Whether `field` of `op` has a simpler value than its current one.
fn can_simplify(op: &Op, field: Field) -> bool {
    match number(&mut op.clone(), field) {
        Some(&mut cur) => cur > floor(op, field, cur),
        None => !alternatives(op, field).is_empty(),
    }
}

/// `op` with every argument at its simplest value.
fn simplest(op: &Op) -> Op {
    let mut op = op.clone();
    for field in FIELDS {
        let cur = number(&mut op, field).map(|v| *v);
        op = match cur {
            Some(cur) => with_number(&op, field, floor(&op, field, cur)),
            None => alternatives(&op, field).into_iter().next().unwrap_or(op),
        };
    }
    op
}

/// Simplifies the arguments of `current`, last operation first, so that uses (a `touch`
/// range) shrink before the declarations that bound them (the `mmap` length).
pub(super) fn simplify(run: &mut Run<'_>, current: &mut [(usize, Op)]) -> Result<(), Halt> {
    for pos in (0..current.len()).rev() {
        let fields: Vec<Field> = FIELDS
            .into_iter()
            .filter(|&f| can_simplify(&current[pos].1, f))
            .collect();
        if fields.len() >= 2 {
            let to = simplest(&current[pos].1);
            if try_op(run, current, pos, Field::All, to)? {
                continue;
            }
        }
        for field in fields {
            let cur = number(&mut current[pos].1.clone(), field).map(|v| *v);
            match cur {
                Some(cur) => shrink(run, current, pos, field, cur)?,
                None => {
                    for alt in alternatives(&current[pos].1, field) {
                        if try_op(run, current, pos, field, alt)? {
                            break;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Bisection over pages stops when the bracket is within this fraction of the value.
const PRECISION: u64 = 4;

/// Shrinks a numeric argument (now `cur`) toward the smallest value that still reproduces,
/// assuming that larger values reproduce if smaller ones do. Values are multiples of the unit
/// (a page, or a byte for arguments under a page):
/// 1. the floor (one run when the argument does not matter);
/// 2. half the value: if that does not reproduce, the value stays (it is within a factor of
///    two of the smallest: two runs for an argument that matters as it is);
/// 3. binary search over the powers of two below the half, then bisection between the last
///    failing and the first passing value, down to a page or a quarter of the value (a byte
///    for arguments under a page).
///
/// So `2` runs for an argument that matters as it is, and about
/// `2 + log2(log2(cur / unit)) + min(2, log2(answer / unit))` for one that can shrink.
fn shrink(
    run: &mut Run<'_>,
    current: &mut [(usize, Op)],
    pos: usize,
    field: Field,
    cur: u64,
) -> Result<(), Halt> {
    let op = &current[pos].1;
    let floor = floor(op, field, cur);
    let unit = if page_aligned(op, field) || cur >= PAGE_SIZE {
        PAGE_SIZE
    } else {
        1
    };
    let attempt = |run: &mut Run<'_>, current: &mut [(usize, Op)], v: u64| {
        let to = with_number(&current[pos].1, field, v);
        try_op(run, current, pos, field, to)
    };
    if cur <= floor || attempt(run, current, floor)? {
        return Ok(());
    }
    // Invariant: `lo` does not reproduce, `hi` does.
    let (mut lo, mut hi) = (floor, cur);
    let half = cur / 2 / unit * unit;
    if half > lo && half < hi {
        if !attempt(run, current, half)? {
            return Ok(());
        }
        hi = half;
    }
    let ladder: Vec<u64> = successors(Some(unit), |v| v.checked_mul(2))
        .take_while(|&v| v < hi)
        .filter(|&v| v > lo)
        .collect();
    let (mut l, mut r) = (0, ladder.len());
    while l < r {
        let m = (l + r) / 2;
        if attempt(run, current, ladder[m])? {
            hi = ladder[m];
            r = m;
        } else {
            lo = ladder[m];
            l = m + 1;
        }
    }
    loop {
        let first = lo / unit + 1;
        let last = (hi - 1) / unit;
        if first > last || (unit == PAGE_SIZE && (hi - lo) * PRECISION <= hi) {
            return Ok(());
        }
        let mid = (first + last) / 2 * unit;
        if attempt(run, current, mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
}

/// Tries `current` with operation `pos` replaced by `to`; keeps it if it reproduces.
fn try_op(
    run: &mut Run<'_>,
    current: &mut [(usize, Op)],
    pos: usize,
    field: Field,
    to: Op,
) -> Result<bool, Halt> {
    if to == current[pos].1 {
        return Ok(false);
    }
    let mut candidate: Vec<Op> = current.iter().map(|(_, op)| op.clone()).collect();
    candidate[pos] = to.clone();
    if !run.test(&candidate)? {
        return Ok(false);
    }
    let from = std::mem::replace(&mut current[pos].1, to.clone());
    run.accept(
        Step::Simplified {
            op: current[pos].0,
            field,
            from,
            to,
        },
        current.len(),
    );
    Ok(true)
}
