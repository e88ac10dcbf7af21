//! Large-folio sections: one record that makes an object backed by large folios.
//!
//! A large-folio record (an `op` byte in [`LARGE_OPS`]) makes, at the top level of a program:
//!
//! ```text
//! thp always                          the THP policy the object's pages follow (memfd, GEM:
//!   | thp never + mount fN huge=always  the sysfs one; tmpfs: its mount's; anonymous memfd:
//!   | thp never + thp always size=S     the per-size one, 6.12's mTHP for shmem; `never`
//!                                       lifts the guest's default `deny`, which overrides both)
//! memfd|tmpfs|gem O size=N            N = 2 or 4 MiB: whole PMD-sized folios
//! [dma32 O]                           mask "before": the folios come in DMA32
//! write O off=0 len=N seed=…          allocate the folios (a file's write allocates with
//! mmap V O off=0 len=N shared           the sysfs policy; anonymous shmem's per-size policy
//! touch V off=0 len=N read|write        applies only to faults, so a write fault there)
//! [dma32 O]                           mask "after": large folios in Normal, constrained now
//! [madvise V off=0 len=N pageout]     out whole, to an SSD or zram (split on a disk)
//! ```
//!
//! What happens to the folios next — a fault, read, write, pin or swapoff bringing them back
//! (and `shmem_replace_folio()` copying a whole large folio into DMA32), a punch or a partial
//! write splitting them — is for the rest of the program, which the fuzzer writes. The
//! section only makes the state that ordinary records reach too rarely to matter: the THP
//! policy set before the object grows, an object of at least one PMD, every page allocated
//! while the object is unconstrained, and a page-out covering whole folios (a page-out of
//! part of a PMD-mapped folio splits it). docs/fuzzing.md, "Large-folio sections", says what
//! share of programs get one and what one costs.
//!
//! Record fields: byte 1 picks the object kind (low 2 bits) and the size (bit 2); byte 2 the
//! mask (top bit set: "after", else none / before / after by its value modulo 3); byte 3 the
//! page-out (top bit or bit 0 set) and, for an anonymous memfd, the per-size folio size
//! (bits 1..=3 index [`THP_SIZES`]); the seed is the fill's. Weighted toward "after" and
//! page-out, the shape that leaves a constrained object's large folios in swap.
//! [`Large::record`] writes bytes that decode to the same section.
//!
//! Every operation of a section is an ordinary one that ordinary records also make, so the
//! encoder needs no record of its own for it: it writes them one by one.

use super::*;

/// `op` bytes that make a large-folio section: 4 of 256, as many as race sections.
pub const LARGE_OPS: std::ops::RangeInclusive<u8> = 0xF4..=0xF7;
/// Object sizes of large-folio sections, in MiB: one or two PMD-sized folios.
pub const LARGE_SIZES_MIB: [u64; 2] = [2, 4];

/// What the object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LargeObject {
    /// A memfd: the sysfs `shmem_enabled` policy.
    Memfd,
    /// A file on a tmpfs the section mounts with `huge=always`.
    Tmpfs,
    /// An anonymous shared mapping's object: the per-size policy (`size=S`).
    AnonMemfd,
    /// A GEM object: constrained from its creation, so the mask fields do not apply.
    Gem,
}

pub const LARGE_OBJECTS: [LargeObject; 4] = [
    LargeObject::Memfd,
    LargeObject::Tmpfs,
    LargeObject::AnonMemfd,
    LargeObject::Gem,
];

/// When the object gets its DMA32 mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mask {
    None,
    /// Before its pages are allocated: they come in DMA32.
    Before,
    /// After: its large folios sit in Normal while the object is constrained.
    After,
}

pub const MASKS: [Mask; 3] = [Mask::None, Mask::Before, Mask::After];

/// A large-folio record's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Large {
    pub object: LargeObject,
    /// Index into [`LARGE_SIZES_MIB`].
    pub size: usize,
    pub mask: Mask,
    pub pageout: bool,
    /// Index into [`THP_SIZES`]: the per-size setting of an anonymous memfd.
    pub folio: usize,
    pub seed: u32,
}

/// Whether `record` is a large-folio record.
pub fn is_large(record: &[u8; RECORD_LEN]) -> bool {
    LARGE_OPS.contains(&record[0])
}

impl Large {
    /// The parameters a large-folio record holds.
    pub fn of(record: &[u8; RECORD_LEN]) -> Large {
        let mask = match record[2] {
            b if b & 0x80 != 0 => Mask::After,
            b => MASKS[usize::from(b) % MASKS.len()],
        };
        Large {
            object: LARGE_OBJECTS[usize::from(record[1] & 3)],
            size: usize::from(record[1] >> 2 & 1),
            mask,
            pageout: record[3] & 0x81 != 0,
            folio: usize::from(record[3] >> 1 & 7) % THP_SIZES.len(),
            seed: Fields(record).seed(),
        }
    }

    /// The record holding these parameters (`None` if they are out of range).
    pub fn record(&self) -> Option<[u8; RECORD_LEN]> {
        if self.size >= LARGE_SIZES_MIB.len() || self.folio >= THP_SIZES.len() {
            return None;
        }
        let mut r = [0u8; RECORD_LEN];
        r[0] = *LARGE_OPS.start();
        r[1] = LARGE_OBJECTS.iter().position(|k| *k == self.object)? as u8 | (self.size as u8) << 2;
        r[2] = MASKS.iter().position(|m| *m == self.mask)? as u8;
        r[3] = u8::from(self.pageout) | (self.folio as u8) << 1;
        r[12..16].copy_from_slice(&self.seed.to_le_bytes());
        Some(r)
    }

    pub fn bytes(&self) -> u64 {
        LARGE_SIZES_MIB[self.size] << 20
    }

    /// The section's operations, with names from `names` on.
    pub fn ops(&self, names: usize) -> Vec<Op> {
        let size = self.bytes();
        let mut next = names;
        let mut fresh = |prefix: &str| {
            next += 1;
            format!("{prefix}{}", next - 1)
        };
        let mut ops = Vec::new();
        let always = |size| Op::Thp {
            mode: ThpMode::Always,
            size,
        };
        // The guest's default top-level `deny` overrides every per-size setting and every
        // mount's `huge=`: `never` lifts it for those.
        let never = Op::Thp {
            mode: ThpMode::Never,
            size: None,
        };
        let mnt = match self.object {
            LargeObject::Memfd | LargeObject::Gem => {
                ops.push(always(None));
                None
            }
            LargeObject::AnonMemfd => {
                ops.push(never);
                ops.push(always(Some(THP_SIZES[self.folio])));
                None
            }
            LargeObject::Tmpfs => {
                ops.push(never);
                let mnt = fresh("f");
                ops.push(Op::Mount {
                    mnt: mnt.clone(),
                    huge: Some(ThpMode::Always),
                });
                Some(mnt)
            }
        };
        let obj = fresh(match self.object {
            LargeObject::Gem => "g",
            LargeObject::Tmpfs => "t",
            _ => "m",
        });
        let map = fresh("v");
        ops.push(match self.object {
            LargeObject::Memfd | LargeObject::AnonMemfd => Op::Memfd {
                obj: obj.clone(),
                size,
                anon: self.object == LargeObject::AnonMemfd,
            },
            LargeObject::Tmpfs => Op::Tmpfs {
                obj: obj.clone(),
                size,
                on: mnt,
            },
            LargeObject::Gem => Op::Gem {
                obj: obj.clone(),
                size,
                pinned: false,
            },
        });
        let masked = |when| self.object != LargeObject::Gem && self.mask == when;
        if masked(Mask::Before) {
            ops.push(Op::Dma32 { obj: obj.clone() });
        }
        let (off, len) = (0, size);
        let anon = self.object == LargeObject::AnonMemfd;
        if !anon {
            ops.push(fill_whole(&obj, len, self.seed));
        }
        ops.push(map_whole(&map, &obj, len));
        ops.push(Op::Touch {
            map: map.clone(),
            off,
            len,
            mode: if anon {
                TouchMode::Write { seed: self.seed }
            } else {
                TouchMode::Read
            },
        });
        if masked(Mask::After) {
            ops.push(Op::Dma32 { obj });
        }
        if self.pageout {
            ops.push(Op::Madvise {
                map,
                off,
                len,
                advice: Advice::Pageout,
            });
        }
        ops
    }
}

/// The section `large` makes where `scope` holds, `names` names were declared and `room`
/// operations are left, or `None` when it does not fit ([`race::Expansion::fit`]).
pub fn expand(large: &Large, scope: &Scope, names: usize, room: usize) -> Option<race::Expansion> {
    race::Expansion::fit(large.ops(names), scope, names, room)
}

#[cfg(test)]
mod tests;
