//! Decoding fuzzer bytes into a valid program with `arbitrary`.
//!
//! Every byte string decodes to a program that parses and runs: operations only name objects
//! and mappings that are live at that point (checked with [`Scope`]), sizes stay small so one
//! execution stays fast under TCG, and the test-only operations are never produced.

use arbitrary::{Arbitrary, Result, Unstructured};

use super::scope::Scope;
use super::{Advice, MapKind, Op, Program, TouchMode, DEFAULT_SWAP_DEVICES, PAGE_SIZE};

/// Largest object the decoder creates, in pages (4 MiB).
pub const GEN_MAX_PAGES: u64 = 1024;
/// Largest number of operations the decoder produces.
pub const GEN_MAX_OPS: usize = 48;
/// Objects and mappings a decoded program may declare (names `m0`…, `t0`…, `v0`…).
const GEN_MAX_NAMES: usize = 8;

impl<'a> Arbitrary<'a> for Program {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let mut scope = Scope::new(DEFAULT_SWAP_DEVICES);
        let mut ops = Vec::new();
        let mut names = 0usize;
        while ops.len() < GEN_MAX_OPS && !u.is_empty() {
            let op = gen_op(u, &scope, &mut names)?;
            if scope.apply(&op).is_ok() {
                ops.push(op);
            }
        }
        Ok(Program::new(ops))
    }
}

fn pages(u: &mut Unstructured<'_>, max_pages: u64) -> Result<u64> {
    Ok(u.int_in_range(1..=max_pages.max(1))? * PAGE_SIZE)
}

/// An offset and length inside `limit` bytes; page-aligned when `aligned`.
fn range(u: &mut Unstructured<'_>, limit: u64, aligned: bool) -> Result<(u64, u64)> {
    if aligned || u.ratio(3, 4)? {
        let total = (limit / PAGE_SIZE).max(1);
        let first = u.int_in_range(0..=total - 1)?;
        let count = u.int_in_range(1..=total - first)?;
        return Ok((first * PAGE_SIZE, count * PAGE_SIZE));
    }
    let off = u.int_in_range(0..=limit.saturating_sub(1))?;
    let len = u.int_in_range(1..=(limit - off).max(1))?;
    Ok((off, len))
}

fn pick<'s, T>(u: &mut Unstructured<'_>, items: &'s [T]) -> Result<Option<&'s T>> {
    if items.is_empty() {
        return Ok(None);
    }
    Ok(Some(u.choose(items)?))
}

fn gen_op(u: &mut Unstructured<'_>, scope: &Scope, names: &mut usize) -> Result<Op> {
    let open: Vec<String> = scope.open_objects().map(|(n, _)| n.clone()).collect();
    let maps: Vec<(String, u64)> = scope.maps.iter().map(|(n, m)| (n.clone(), m.len)).collect();
    let tmpfs: Vec<String> = scope
        .objects
        .iter()
        .filter(|(_, o)| o.kind == super::scope::ObjKind::Tmpfs && !o.unlinked)
        .map(|(n, _)| n.clone())
        .collect();
    let gem: Vec<String> = scope
        .open_objects()
        .filter(|(_, o)| o.kind == super::scope::ObjKind::Gem)
        .map(|(n, _)| n.clone())
        .collect();
    let can_declare = *names < GEN_MAX_NAMES;
    let mut fresh = |prefix: &str| {
        *names += 1;
        format!("{prefix}{}", *names - 1)
    };
    let create = |u: &mut Unstructured<'_>, obj: String, tmpfs: bool| -> Result<Op> {
        let size = pages(u, GEN_MAX_PAGES)?;
        Ok(if tmpfs {
            Op::Tmpfs { obj, size }
        } else {
            Op::Memfd { obj, size }
        })
    };
    let choice = u.int_in_range(0u8..=20)?;
    let obj = pick(u, &open)?.cloned();
    let map = pick(u, &maps)?.cloned();
    Ok(match (choice, obj, map) {
        (0, _, _) | (1, None, _) if can_declare => create(u, fresh("m"), false)?,
        (1, _, _) if can_declare => create(u, fresh("t"), true)?,
        (2, Some(obj), _) => Op::Ftruncate {
            obj,
            size: pages(u, GEN_MAX_PAGES)?,
        },
        (3, Some(obj), _) => {
            let (off, len) = range(u, GEN_MAX_PAGES * PAGE_SIZE, false)?;
            Op::Write {
                obj,
                off,
                len,
                seed: u.arbitrary()?,
            }
        }
        (4, Some(obj), _) => {
            let (off, len) = range(u, GEN_MAX_PAGES * PAGE_SIZE, false)?;
            Op::Check { obj, off, len }
        }
        (5, Some(obj), _) => {
            let (off, len) = range(u, GEN_MAX_PAGES * PAGE_SIZE, false)?;
            Op::Punch { obj, off, len }
        }
        (6, Some(obj), _) if can_declare => {
            let (off, len) = range(u, GEN_MAX_PAGES * PAGE_SIZE, true)?;
            let kind = if gem.contains(&obj) {
                *u.choose(&[MapKind::Shared, MapKind::Gem])?
            } else if u.ratio(4, 5)? {
                MapKind::Shared
            } else {
                MapKind::Private
            };
            Op::Mmap {
                map: fresh("v"),
                obj,
                off,
                len,
                kind,
            }
        }
        (7, _, Some((map, _))) => Op::Munmap { map },
        (8 | 9, _, Some((map, len))) => {
            let (off, len) = range(u, len, false)?;
            let mode = if u.arbitrary()? {
                TouchMode::Write {
                    seed: u.arbitrary()?,
                }
            } else {
                TouchMode::Read
            };
            Op::Touch {
                map,
                off,
                len,
                mode,
            }
        }
        (10 | 11, _, Some((map, len))) => {
            let (off, len) = range(u, len, true)?;
            Op::Madvise {
                map,
                off,
                len,
                advice: *u.choose(&Advice::ALL)?,
            }
        }
        (12, _, _) => Op::Reclaim {
            bytes: pages(u, 4 * GEN_MAX_PAGES)?,
        },
        (13, _, _) => {
            let dev = u.int_in_range(0..=DEFAULT_SWAP_DEVICES - 1)?;
            if u.arbitrary()? {
                Op::Swapon {
                    dev,
                    prio: if u.arbitrary()? {
                        Some(u.int_in_range(-1..=10)?)
                    } else {
                        None
                    },
                }
            } else {
                Op::Swapoff { dev }
            }
        }
        (14, _, _) => match pick(u, &tmpfs)? {
            Some(obj) => Op::Unlink { obj: obj.clone() },
            None => Op::Reclaim {
                bytes: pages(u, GEN_MAX_PAGES)?,
            },
        },
        (15, Some(obj), _) => Op::Close { obj },
        (16, _, _) if can_declare => Op::Gem {
            obj: fresh("g"),
            size: pages(u, GEN_MAX_PAGES)?,
            pinned: u.ratio(1, 4)?,
        },
        (17, Some(obj), _) => Op::Dma32 { obj },
        (18, _, _) if !gem.is_empty() => Op::Pin {
            obj: u.choose(&gem)?.clone(),
        },
        (19, _, _) if !gem.is_empty() => Op::Unpin {
            obj: u.choose(&gem)?.clone(),
        },
        (20, Some(obj), _) => Op::Zonecheck { obj },
        // Nothing fits this choice here: fall back to reclaim, which is always valid.
        _ => Op::Reclaim {
            bytes: pages(u, GEN_MAX_PAGES)?,
        },
    })
}
