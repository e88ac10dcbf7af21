//! Race sections: one record that expands into a whole swap race on one object.
//!
//! A race record (an `op` byte in [`RACE_OPS`]) makes, at the top level of a program:
//!
//! ```text
//! [mount fN]                          the object is a file on the program's own tmpfs
//! memfd|tmpfs|gem O size=S            S from RACE_SIZES_MIB: larger than ordinary records
//! write O off=0 len=S seed=…          fill it,
//! mmap V O off=0 len=S shared         map it,
//! touch V off=0 len=S read            fault it in,
//! madvise V off=0 len=S pageout       and push it all out to swap0
//! [munmap V]                          unless the section still uses the mapping
//! [close O | umount fN detach]        what the other side's operation needs first
//! threads
//! thread a                            the swap side: swapoff swap0 | swapoff + swapon |
//!   …                                   reclaim S | madvise V pageout
//! thread b                            the other side, after a delay drawn per execution:
//!   delay LO..HI                        close (+unlink) | unlink | munmap + close | umount |
//!   …                                   close a detached file | ftruncate 0 | punch |
//! join                                  check (read) | write | touch (fault)
//! [swapon swap0]                      after a swapoff
//! ```
//!
//! Record fields: byte 1 picks the object kind (low 2 bits) and the size (the bits above),
//! byte 2 the swap side, byte 3 the other side (among those the kind allows), A and B the
//! delay range in microseconds (`LO` in `0..=max`, `HI` in `LO..=max`, where `max` is
//! [`Race::max_delay_us`], scaled to the object's size), the seed the fill's seed.
//!
//! The choice is weighted toward the pairing that frees an inode under swapoff (docs/races.md):
//! byte 2 with its top bit set is `swapoff` (bit 0 clear) or `swapoff` + `swapon`, so 3 of 4
//! records take the object's swap device off; against those, byte 3 with its top bit set picks
//! among the sides that drop the object's last reference ([`OtherSide::drops`]), so 2 of 3 of
//! them do. [`Race::record`] writes bytes below `0x80`, which decode unweighted: every record
//! it writes decodes to the same race.
//!
//! The expansion is checked against [`Scope`] as a whole: a record that does not fit (inside
//! a section, too few names or operations left) makes nothing, and so does every race record
//! after the program's first race section: one large object a program bounds what one
//! execution costs (docs/fuzzing.md, "Race sections"). A swap side that names the
//! object itself (`madvise V pageout` while thread b closes or reads it) needs an object
//! shared by both threads; while the scope refuses that, the swap side falls back to
//! `reclaim S`, so the day the scope accepts shared objects such sections appear unchanged.

use super::*;

/// `op` bytes that make a race section: 4 of 256, so about one random record in 64.
pub const RACE_OPS: std::ops::RangeInclusive<u8> = 0xF0..=0xF3;
/// Object sizes of race sections, in MiB: large enough to keep swapoff busy (see
/// docs/fuzzing.md for the time each costs).
pub const RACE_SIZES_MIB: [u64; 4] = [8, 16, 24, 32];
/// Longest delay before the second side per MiB of the object, in microseconds: swapoff
/// of a 32 MiB object paged out takes 60–100 ms on the KASAN kernel under TCG, and the
/// window in which dropping the last reference races it is its second half (docs/races.md).
pub const RACE_DELAY_US_PER_MIB: u64 = 3_200;
/// Longest delay before the second side of any race section, in microseconds.
pub const RACE_MAX_DELAY_US: u64 = RACE_DELAY_US_PER_MIB * RACE_SIZES_MIB[RACE_SIZES_MIB.len() - 1];
/// The swap device race sections page out to and take off.
const DEV: u8 = 0;

/// What the object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaceObject {
    Memfd,
    Tmpfs,
    /// A file on a tmpfs the program mounts first.
    MountedTmpfs,
    Gem,
}

pub const RACE_OBJECTS: [RaceObject; 4] = [
    RaceObject::Memfd,
    RaceObject::Tmpfs,
    RaceObject::MountedTmpfs,
    RaceObject::Gem,
];

/// Thread a: what moves the object's pages between memory and swap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapSide {
    Swapoff,
    /// `swapoff` then `swapon` of the same device.
    SwapCycle,
    Reclaim,
    /// `madvise pageout` on the object's mapping (needs a shared object; else `reclaim`).
    Pageout,
}

pub const SWAP_SIDES: [SwapSide; 4] = [
    SwapSide::Swapoff,
    SwapSide::SwapCycle,
    SwapSide::Reclaim,
    SwapSide::Pageout,
];

/// Thread b: what drops, cuts or uses the object meanwhile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtherSide {
    /// `close` (and `unlink` for a tmpfs file): the last reference goes.
    Close,
    /// `close` before the section, `unlink` in it.
    Unlink,
    /// The mapping stays until the section: `munmap`, then `close` (+ `unlink`).
    Munmap,
    /// `close` before the section, `umount` of its tmpfs in it.
    Umount,
    /// `umount -l` before the section, `close` in it.
    Detach,
    Ftruncate,
    Punch,
    Read,
    Write,
    /// `touch` the still mapped object.
    Fault,
}

impl OtherSide {
    /// The sides an object kind allows, in record order.
    pub fn of(kind: RaceObject) -> &'static [OtherSide] {
        use OtherSide::*;
        match kind {
            RaceObject::Memfd => &[Close, Munmap, Ftruncate, Punch, Read, Write, Fault],
            RaceObject::Tmpfs => &[Close, Unlink, Munmap, Ftruncate, Punch, Read, Write, Fault],
            RaceObject::MountedTmpfs => &[
                Close, Unlink, Munmap, Umount, Detach, Ftruncate, Punch, Read, Write, Fault,
            ],
            RaceObject::Gem => &[Close, Munmap, Read, Write, Fault],
        }
    }

    /// The sides of `kind` that drop the object's last reference (what frees the inode).
    pub fn drops(kind: RaceObject) -> Vec<OtherSide> {
        use OtherSide::*;
        Self::of(kind)
            .iter()
            .copied()
            .filter(|s| matches!(s, Close | Unlink | Munmap | Umount | Detach))
            .collect()
    }

    /// Whether the object stays mapped into the section.
    fn keeps_mapping(self) -> bool {
        matches!(self, OtherSide::Munmap | OtherSide::Fault)
    }
}

/// A race record's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Race {
    pub object: RaceObject,
    /// Index into [`RACE_SIZES_MIB`].
    pub size: usize,
    pub swap: SwapSide,
    pub other: OtherSide,
    pub delay_lo: u32,
    pub delay_hi: u32,
    pub seed: u32,
}

/// Whether `record` is a race record.
pub fn is_race(record: &[u8; RECORD_LEN]) -> bool {
    RACE_OPS.contains(&record[0])
}

impl Race {
    /// The parameters a race record holds.
    pub fn of(record: &[u8; RECORD_LEN]) -> Race {
        let f = Fields(record);
        let object = RACE_OBJECTS[usize::from(record[1] & 3)];
        let size = usize::from(record[1] >> 2) % RACE_SIZES_MIB.len();
        let swap = match record[2] {
            b if b & 0x80 == 0 => SWAP_SIDES[usize::from(b) % SWAP_SIDES.len()],
            b if b & 1 == 0 => SwapSide::Swapoff,
            _ => SwapSide::SwapCycle,
        };
        let swapoff = matches!(swap, SwapSide::Swapoff | SwapSide::SwapCycle);
        let other = if swapoff && record[3] & 0x80 != 0 {
            let drops = OtherSide::drops(object);
            drops[usize::from(record[3] & 0x7f) % drops.len()]
        } else {
            let sides = OtherSide::of(object);
            sides[usize::from(record[3] & 0x7f) % sides.len()]
        };
        let max = Self::max_delay_us(size);
        let lo = f.a(0, max);
        Race {
            object,
            size,
            swap,
            other,
            delay_lo: lo as u32,
            delay_hi: f.b(lo, max) as u32,
            seed: f.seed(),
        }
    }

    /// The longest delay before the second side for objects of size index `size`.
    pub fn max_delay_us(size: usize) -> u64 {
        RACE_DELAY_US_PER_MIB * RACE_SIZES_MIB[size.min(RACE_SIZES_MIB.len() - 1)]
    }

    /// The record holding these parameters (`None` if they are out of range).
    pub fn record(&self) -> Option<[u8; RECORD_LEN]> {
        let kind = RACE_OBJECTS.iter().position(|k| *k == self.object)? as u8;
        let other = OtherSide::of(self.object)
            .iter()
            .position(|s| *s == self.other)? as u8;
        let (lo, hi) = (u64::from(self.delay_lo), u64::from(self.delay_hi));
        if self.size >= RACE_SIZES_MIB.len() || hi < lo || hi > Self::max_delay_us(self.size) {
            return None;
        }
        let max = Self::max_delay_us(self.size);
        let mut r = [0u8; RECORD_LEN];
        r[0] = *RACE_OPS.start();
        r[1] = kind | (self.size as u8) << 2;
        r[2] = SWAP_SIDES.iter().position(|s| *s == self.swap)? as u8;
        r[3] = other;
        put_int(&mut r[4..8], 0, max, lo);
        put_int(&mut r[8..12], lo, max, hi);
        r[12..16].copy_from_slice(&self.seed.to_le_bytes());
        Some(r)
    }

    pub fn bytes(&self) -> u64 {
        RACE_SIZES_MIB[self.size] << 20
    }

    /// The operations of the section with names from `names` on, the swap side as asked
    /// (`pageout` may be refused by `scope`: see [`expand`]).
    fn ops(&self, swap: SwapSide, names: usize) -> Vec<Op> {
        use OtherSide as S;
        let size = self.bytes();
        let mut next = names;
        let mut fresh = |prefix: &str| {
            next += 1;
            format!("{prefix}{}", next - 1)
        };
        let mnt = (self.object == RaceObject::MountedTmpfs).then(|| fresh("f"));
        let obj = match self.object {
            RaceObject::Memfd => fresh("m"),
            RaceObject::Gem => fresh("g"),
            _ => fresh("t"),
        };
        let map = fresh("v");
        let tmpfs = matches!(self.object, RaceObject::Tmpfs | RaceObject::MountedTmpfs);
        let mut ops = Vec::new();
        if let Some(m) = &mnt {
            ops.push(Op::Mount {
                mnt: m.clone(),
                huge: None,
            });
        }
        ops.push(match self.object {
            RaceObject::Memfd => Op::Memfd {
                obj: obj.clone(),
                size,
                anon: false,
            },
            RaceObject::Gem => Op::Gem {
                obj: obj.clone(),
                size,
                pinned: false,
            },
            _ => Op::Tmpfs {
                obj: obj.clone(),
                size,
                on: mnt.clone(),
            },
        });
        // Every operation covers the whole object.
        let (o, off, len) = (obj.clone(), 0, size);
        ops.push(fill_whole(&o, len, self.seed));
        ops.push(map_whole(&map, &o, len));
        let on_map = |advice| Op::Madvise {
            map: map.clone(),
            off,
            len,
            advice,
        };
        ops.push(Op::Touch {
            map: map.clone(),
            off,
            len,
            mode: TouchMode::Read,
        });
        ops.push(on_map(Advice::Pageout));
        if !self.other.keeps_mapping() && swap != SwapSide::Pageout {
            ops.push(Op::Munmap { map: map.clone() });
        }
        let close = Op::Close { obj: o.clone() };
        let unlink = Op::Unlink { obj: o.clone() };
        match self.other {
            S::Unlink | S::Umount => ops.push(close.clone()),
            S::Detach => ops.push(Op::Umount {
                mnt: mnt.clone().unwrap_or_default(),
                detach: true,
            }),
            _ => {}
        }
        ops.push(Op::Threads);
        ops.push(Op::Thread {
            name: thread_name(0),
        });
        match swap {
            SwapSide::Swapoff => ops.push(Op::Swapoff { dev: DEV }),
            SwapSide::SwapCycle => ops.extend([
                Op::Swapoff { dev: DEV },
                Op::Swapon {
                    dev: DEV,
                    prio: None,
                },
            ]),
            SwapSide::Reclaim => ops.push(Op::Reclaim { bytes: size }),
            SwapSide::Pageout => ops.push(on_map(Advice::Pageout)),
        }
        ops.push(Op::Thread {
            name: thread_name(1),
        });
        ops.push(Op::Delay {
            micros: self.delay_lo,
            upto: Some(self.delay_hi),
        });
        match self.other {
            S::Close | S::Munmap => {
                if self.other == S::Munmap {
                    ops.push(Op::Munmap { map: map.clone() });
                }
                ops.push(close);
                if tmpfs {
                    ops.push(unlink);
                }
            }
            S::Unlink => ops.push(unlink),
            S::Umount => ops.push(Op::Umount {
                mnt: mnt.unwrap_or_default(),
                detach: false,
            }),
            S::Detach => ops.push(close),
            S::Ftruncate => ops.push(Op::Ftruncate { obj: o, size: 0 }),
            S::Punch => ops.push(Op::Punch { obj: o, off, len }),
            S::Read => ops.push(Op::Check { obj: o, off, len }),
            S::Write => ops.push(Op::Write {
                obj: o,
                off,
                len,
                seed: self.seed.wrapping_add(1),
            }),
            S::Fault => ops.push(Op::Touch {
                map,
                off,
                len,
                mode: if self.seed & 1 == 0 {
                    TouchMode::Read
                } else {
                    TouchMode::Write {
                        seed: self.seed.wrapping_add(1),
                    }
                },
            }),
        }
        ops.push(Op::Join);
        if swap == SwapSide::Swapoff {
            ops.push(Op::Swapon {
                dev: DEV,
                prio: None,
            });
        }
        ops
    }
}

/// A section (race or large-folio) decoded at a point of a program: its operations and the
/// state after them.
#[derive(Debug, Clone)]
pub struct Expansion {
    pub ops: Vec<Op>,
    pub scope: Scope,
    /// Names declared by the section.
    pub declared: usize,
}

impl Expansion {
    /// `ops` as a section at the top level where `scope` holds, `names` names were declared
    /// and `room` operations are left, or `None` when they do not fit (inside a threaded
    /// section, too few names or operations left, or refused by the scope).
    pub fn fit(ops: Vec<Op>, scope: &Scope, names: usize, room: usize) -> Option<Expansion> {
        let declared = ops.iter().filter(|o| o.declared_name().is_some()).count();
        if scope.section.is_some() || ops.len() > room || names + declared > GEN_MAX_NAMES {
            return None;
        }
        let mut scope = scope.clone();
        ops.iter().try_for_each(|op| scope.apply(op)).ok()?;
        scope.finish().ok()?;
        Some(Expansion {
            ops,
            scope,
            declared,
        })
    }
}

/// The section `race` makes where `scope` holds, `names` names were declared and `room`
/// operations are left, or `None` when it does not fit. A `pageout` swap side the scope
/// refuses (the object is shared with thread b) becomes `reclaim`.
pub fn expand(race: &Race, scope: &Scope, names: usize, room: usize) -> Option<Expansion> {
    let mut sides = vec![race.swap];
    if race.swap == SwapSide::Pageout {
        sides.push(SwapSide::Reclaim);
    }
    sides
        .into_iter()
        .find_map(|swap| Expansion::fit(race.ops(swap, names), scope, names, room))
}

/// The race record that decodes to the start of `ops` (already canonical: names as the
/// decoder gives them, threads `a` and `b`) where `scope` holds and `names` were declared,
/// with the number of operations it covers.
pub fn find(
    ops: &[Op],
    scope: &Scope,
    names: usize,
    room: usize,
) -> Option<([u8; RECORD_LEN], usize)> {
    let (object, at) = match ops {
        [Op::Mount { .. }, Op::Tmpfs { on: Some(_), .. }, ..] => (RaceObject::MountedTmpfs, 1),
        [Op::Tmpfs { on: None, .. }, ..] => (RaceObject::Tmpfs, 0),
        [Op::Memfd { .. }, ..] => (RaceObject::Memfd, 0),
        [Op::Gem { .. }, ..] => (RaceObject::Gem, 0),
        _ => return None,
    };
    let size = match &ops[at] {
        Op::Memfd { size, .. } | Op::Tmpfs { size, .. } | Op::Gem { size, .. } => *size,
        _ => return None,
    };
    let size = RACE_SIZES_MIB.iter().position(|m| m << 20 == size)?;
    let Some(Op::Write { seed, .. }) = ops.get(at + 1) else {
        return None;
    };
    let threads = ops.iter().position(|o| *o == Op::Threads)?;
    let (delay_lo, delay_hi) = ops[threads..].iter().find_map(|o| match o {
        Op::Delay {
            micros,
            upto: Some(hi),
        } => Some((*micros, *hi)),
        _ => None,
    })?;
    for swap in SWAP_SIDES {
        for other in OtherSide::of(object) {
            let race = Race {
                object,
                size,
                swap,
                other: *other,
                delay_lo,
                delay_hi,
                seed: *seed,
            };
            let Some(e) = expand(&race, scope, names, room) else {
                continue;
            };
            if ops.starts_with(&e.ops) {
                return Some((race.record()?, e.ops.len()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
