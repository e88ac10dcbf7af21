//! The operation phase: delta debugging over operations, with dependents removed together.

use std::collections::{HashMap, HashSet};

use super::{Halt, Run, Step};
use crate::program::Op;

/// Positions of `ops` kept when the positions in `remove` go, together with every operation
/// that uses a name a removed operation declared (transitively: `memfd m0` takes
/// `mmap v0 m0 …` and with it every `touch v0 …`).
///
/// A threaded section's markers (`threads`, `thread`, `join`) go together: removing any of
/// them flattens the section (its operations stay, in program order), which is how the
/// minimizer learns that a finding needs no race.
pub(super) fn keep_without(ops: &[Op], remove: impl Fn(usize) -> bool) -> Vec<usize> {
    let flattened = flattened_markers(ops, &remove);
    let mut dead: HashSet<&str> = HashSet::new();
    let mut keep = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        if remove(i) || flattened.contains(&i) || op.used_name().is_some_and(|n| dead.contains(n)) {
            dead.extend(op.declared_name());
        } else {
            keep.push(i);
        }
    }
    keep
}

/// The markers of every section one of whose markers `remove` takes.
fn flattened_markers(ops: &[Op], remove: &impl Fn(usize) -> bool) -> HashSet<usize> {
    let mut out = HashSet::new();
    let mut markers: Vec<usize> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if !op.is_section_marker() {
            continue;
        }
        markers.push(i);
        if *op == Op::Join {
            if markers.iter().any(|&m| remove(m)) {
                out.extend(markers.iter().copied());
            }
            markers.clear();
        }
    }
    out
}

/// What the operation phase removes at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unit {
    /// A whole family: a declaration and every operation that depends on it (an object with
    /// its mappings and their uses); an operation that uses no name is a family of its own.
    Family,
    /// One operation (with its dependents).
    Op,
}

/// The unit of each operation of `ops`, numbered `0..` in order of first appearance (so
/// removing units never renumbers the units before them).
fn units(ops: &[Op], unit: Unit) -> Vec<usize> {
    if unit == Unit::Op {
        return (0..ops.len()).collect();
    }
    let mut family_of_name: HashMap<&str, usize> = HashMap::new();
    let mut families = 0;
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let family = match op.used_name().and_then(|n| family_of_name.get(n)) {
            Some(&f) => f,
            None => {
                families += 1;
                families - 1
            }
        };
        if let Some(name) = op.declared_name() {
            family_of_name.insert(name, family);
        }
        out.push(family);
    }
    out
}

/// Removes what can go: first whole families (a padding object goes with all its operations
/// in one run), then single operations, each by delta debugging.
pub(super) fn reduce(run: &mut Run<'_>, current: &mut Vec<(usize, Op)>) -> Result<(), Halt> {
    ddmin(run, current, Unit::Family)?;
    ddmin(run, current, Unit::Op)
}

/// Removes chunks of units of `current`, from half the units down to single units, each chunk
/// tried once per sweep (a removal keeps the position, so the next chunk is tried against the
/// smaller program). Sweeps of single units repeat until one removes nothing, so the result
/// is 1-minimal: no single unit (with its dependents) can go.
fn ddmin(run: &mut Run<'_>, current: &mut Vec<(usize, Op)>, unit: Unit) -> Result<(), Halt> {
    let count = |current: &[(usize, Op)]| {
        let ops: Vec<Op> = current.iter().map(|(_, op)| op.clone()).collect();
        units(&ops, unit).into_iter().max().map_or(0, |u| u + 1)
    };
    let mut chunk = (count(current) / 2).max(1);
    loop {
        let mut removed_any = false;
        let mut start = 0;
        loop {
            let ops: Vec<Op> = current.iter().map(|(_, op)| op.clone()).collect();
            let unit_of = units(&ops, unit);
            let total = unit_of.iter().max().map_or(0, |&u| u + 1);
            if start >= total {
                break;
            }
            let end = (start + chunk).min(total);
            let keep = keep_without(&ops, |i| (start..end).contains(&unit_of[i]));
            let candidate: Vec<Op> = keep.iter().map(|&i| ops[i].clone()).collect();
            if run.test(&candidate)? {
                // Removed operations all belong to units `start..` (a dependent follows its
                // declaration), so the units before `start` are unchanged.
                let kept: HashSet<usize> = keep.iter().copied().collect();
                let removed = (0..current.len())
                    .filter(|i| !kept.contains(i))
                    .map(|i| current[i].0)
                    .collect();
                *current = keep.iter().map(|&i| current[i].clone()).collect();
                run.accept(Step::Removed { ops: removed }, current.len());
                removed_any = true;
            } else {
                start = end;
            }
        }
        run.end_sweep();
        if chunk == 1 {
            if !removed_any {
                return Ok(());
            }
        } else {
            chunk = (chunk / 2).min(count(current) / 2).max(1);
        }
    }
}
