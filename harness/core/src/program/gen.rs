//! Decoding fuzzer bytes into a valid program with `arbitrary`, and encoding programs back.
//!
//! The bytes are a sequence of fixed-size records, one per operation:
//!
//! ```text
//!  0        1        2        3        4 ....... 8 ....... 12 ...... 16
//! +--------+--------+--------+--------+---------+---------+---------+
//! | op     | object | mapping| flags  |    A    |    B    |  seed   |
//! +--------+--------+--------+--------+---------+---------+---------+
//! ```
//!
//! `op` picks the operation from [`OP_TABLE`] (an `op` byte of `0xE0 + i` for `i` below the
//! length of [`EXT_TABLE`] picks `EXT_TABLE[i]` instead: threaded sections, delays, mounts;
//! `0xF0`…`0xF3` make a whole race section, see [`race`]; `0xF4`…`0xF7` an object backed by
//! large folios, see [`large`]); `object` and `mapping` pick among
//! the names live at that point, newest first (modulo their number); `flags`, `A` and `B` are
//! the operation's arguments (sizes, offsets and lengths in pages, or in bytes when flag bit 7
//! asks for an unaligned range); `seed` is a write seed. Each field is decoded with
//! [`Unstructured::int_in_range`] from its own slice, so a field means the same thing wherever
//! its record moves: inserting, deleting, duplicating or reordering records are operations on
//! the program, and the structure-aware mutator ([`super::mutate`]) works on whole records.
//!
//! Every byte string decodes to a program that parses and runs: a record that makes no valid
//! operation at its point (nothing live to name, name budget spent, [`Scope`] refuses it) is
//! skipped; sizes stay small so one execution stays fast under TCG (larger objects only in a
//! program's one race section); the test-only operations are never produced. A short last
//! record is read as if padded with zeros.
//!
//! [`encode`] is the inverse: it turns a program into records that decode to the same
//! program with names made canonical (`m0`, `t1`, `v2`, `g3`, … in order of declaration),
//! a race section as its one record. It checks each record by decoding it, so what it
//! returns always round-trips.

use std::collections::HashMap;

use arbitrary::{Arbitrary, Result, Unstructured};

use super::scope::{ObjKind, Scope};
use super::{
    Advice, MapKind, MbindFlags, Op, Program, ThpMode, TouchMode, DEFAULT_SWAP_DEVICES,
    HUGETLB_SIZES_KB, PAGE_SIZE,
};

/// Bytes per operation record.
pub const RECORD_LEN: usize = 16;
/// Largest object the decoder creates, in pages (4 MiB).
pub const GEN_MAX_PAGES: u64 = 1024;
/// Largest number of operations the decoder produces.
pub const GEN_MAX_OPS: usize = 48;
/// Largest input the decoder reads: [`GEN_MAX_OPS`] records.
pub const GEN_MAX_LEN: usize = GEN_MAX_OPS * RECORD_LEN;
/// Objects and mappings a decoded program may declare.
pub const GEN_MAX_NAMES: usize = 12;
/// Largest `reclaim`, in pages.
const GEN_MAX_RECLAIM_PAGES: u64 = 64 * GEN_MAX_PAGES;
/// Flag bit asking for a byte-granular (unaligned) range.
const UNALIGNED: u8 = 0x80;
/// Flag bit of a `tmpfs` record asking for a file on one of the program's mounts.
const ON_MOUNT: u8 = 0x02;
/// Flag bit of a `memfd` record asking for an anonymous shared mapping's shmem file.
const ANON: u8 = 0x02;
/// Flag bit of a `thp` record asking for a per-size setting; B picks the size.
const PER_SIZE: u8 = 0x02;
/// The folio sizes a decoded per-size `thp` names: 6.12's shmem mTHP sizes on x86-64.
const THP_SIZES: [u64; 8] = [
    16 << 10,
    32 << 10,
    64 << 10,
    128 << 10,
    256 << 10,
    512 << 10,
    1 << 20,
    2 << 20,
];
/// `op` bytes from here select [`EXT_TABLE`].
const EXT_BASE: u8 = 0xE0;
/// Threads one decoded section starts at most.
pub const GEN_MAX_THREADS: usize = 4;
/// Longest decoded `delay`, in microseconds.
const GEN_MAX_DELAY_US: u64 = 2000;
/// Most iterations of a decoded `spin`.
const GEN_MAX_SPIN: u64 = 100_000;

/// An operation kind, as the `op` byte selects it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    Memfd,
    Tmpfs,
    Ftruncate,
    Write,
    Check,
    Punch,
    Mmap,
    Munmap,
    Touch,
    Madvise,
    Reclaim,
    Swapon,
    Swapoff,
    Unlink,
    Close,
    Gem,
    Dma32,
    Pin,
    Unpin,
    Zonecheck,
    Threads,
    Thread,
    Join,
    Delay,
    Spin,
    Mount,
    Umount,
    Thp,
    Khugepaged,
    Compact,
    Mbind,
    MovePages,
    MigratePages,
    Offline,
    Online,
    Hugetlb,
}

use OpKind as K;

/// `op` byte `EXT_BASE + i` → operation: the rarer kinds, so that random records seldom open
/// threaded sections (each costs a thread start in the guest).
pub const EXT_TABLE: [OpKind; 16] = [
    K::Threads,
    K::Thread,
    K::Join,
    K::Delay,
    K::Spin,
    K::Mount,
    K::Umount,
    K::Thp,
    K::Khugepaged,
    K::Compact,
    K::Mbind,
    K::MovePages,
    K::MigratePages,
    K::Offline,
    K::Online,
    K::Hugetlb,
];

/// The kinds that move pages outside swap (huge pages, migration, offlining, hugetlb pools):
/// the mutator draws them as often as each kind of [`OP_TABLE`].
pub const MOVING_KINDS: [OpKind; 9] = [
    K::Thp,
    K::Khugepaged,
    K::Compact,
    K::Mbind,
    K::MovePages,
    K::MigratePages,
    K::Offline,
    K::Online,
    K::Hugetlb,
];

/// Flag bit of a `madvise` record selecting [`Advice::MOVING`] instead of [`Advice::SWAP`].
const MOVING_ADVICE: u8 = 0x08;
/// Most pages one decoded `soft-offline` retires.
pub const GEN_MAX_SOFT_OFFLINE_PAGES: u64 = 16;
/// Largest decoded 2 MiB hugetlb pool (128 MiB).
const GEN_MAX_HUGETLB_2M: u64 = 64;

/// The name of thread `i` of a decoded section: `a`, `b`, ….
pub fn thread_name(i: usize) -> String {
    char::from(b'a' + (i % 26) as u8).to_string()
}

/// `op byte % 32` → operation. Operations that move pages (touch, madvise, write, reclaim,
/// check) appear more than once, so random records reach swap paths more often.
pub const OP_TABLE: [OpKind; 32] = [
    K::Memfd,
    K::Tmpfs,
    K::Ftruncate,
    K::Write,
    K::Check,
    K::Punch,
    K::Mmap,
    K::Munmap,
    K::Touch,
    K::Madvise,
    K::Reclaim,
    K::Swapon,
    K::Swapoff,
    K::Unlink,
    K::Close,
    K::Gem,
    K::Dma32,
    K::Pin,
    K::Unpin,
    K::Zonecheck,
    K::Write,
    K::Touch,
    K::Madvise,
    K::Reclaim,
    K::Check,
    K::Mmap,
    K::Dma32,
    K::Memfd,
    K::Gem,
    K::Touch,
    K::Madvise,
    K::Write,
];

impl OpKind {
    /// The kind of a (non test-only) operation.
    pub fn of(op: &Op) -> Option<OpKind> {
        Some(match op {
            Op::Memfd { .. } => K::Memfd,
            Op::Tmpfs { .. } => K::Tmpfs,
            Op::Ftruncate { .. } => K::Ftruncate,
            Op::Write { .. } => K::Write,
            Op::Check { .. } => K::Check,
            Op::Punch { .. } => K::Punch,
            Op::Mmap { .. } => K::Mmap,
            Op::Munmap { .. } => K::Munmap,
            Op::Touch { .. } => K::Touch,
            Op::Madvise { .. } => K::Madvise,
            Op::Reclaim { .. } => K::Reclaim,
            Op::Swapon { .. } => K::Swapon,
            Op::Swapoff { .. } => K::Swapoff,
            Op::Unlink { .. } => K::Unlink,
            Op::Close { .. } => K::Close,
            Op::Gem { .. } => K::Gem,
            Op::Dma32 { .. } => K::Dma32,
            Op::Pin { .. } => K::Pin,
            Op::Unpin { .. } => K::Unpin,
            Op::Zonecheck { .. } => K::Zonecheck,
            Op::Threads => K::Threads,
            Op::Thread { .. } => K::Thread,
            Op::Join => K::Join,
            Op::Delay { .. } => K::Delay,
            Op::Spin { .. } => K::Spin,
            Op::Mount { .. } => K::Mount,
            Op::Umount { .. } => K::Umount,
            Op::Thp { .. } => K::Thp,
            Op::Khugepaged => K::Khugepaged,
            Op::Compact => K::Compact,
            Op::Mbind { .. } => K::Mbind,
            Op::MovePages { .. } => K::MovePages,
            Op::MigratePages { .. } => K::MigratePages,
            Op::Offline { .. } => K::Offline,
            Op::Online => K::Online,
            Op::Hugetlb { .. } => K::Hugetlb,
            Op::Corrupt { .. } | Op::Sysrq { .. } | Op::Hold { .. } => return None,
        })
    }

    /// The first `op` byte that selects this kind.
    pub fn selector(self) -> u8 {
        match EXT_TABLE.iter().position(|k| *k == self) {
            Some(i) => EXT_BASE + i as u8,
            None => OP_TABLE.iter().position(|k| *k == self).unwrap_or(0) as u8,
        }
    }
}

impl<'a> Arbitrary<'a> for Program {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let mut d = Decoder::new();
        while d.ops.len() < GEN_MAX_OPS && !u.is_empty() {
            let mut record = [0u8; RECORD_LEN];
            let take = u.bytes(u.len().min(RECORD_LEN))?;
            record[..take.len()].copy_from_slice(take);
            d.push(&record);
        }
        d.finish();
        Ok(Program::new(d.ops))
    }
}

/// Decoding state between records: what is live, how many names were declared.
#[derive(Debug, Clone)]
pub struct Decoder {
    pub scope: Scope,
    names: usize,
    /// A race section was made: the program's only one (see [`race`]).
    raced: bool,
    pub ops: Vec<Op>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub fn new() -> Self {
        Decoder {
            scope: Scope::new(DEFAULT_SWAP_DEVICES),
            names: 0,
            raced: false,
            ops: Vec::new(),
        }
    }

    /// Decodes one record at this point; skipped if it makes no valid operation.
    /// An operation right after `threads` that is not a `thread` starts thread `a` first
    /// (so a `threads` record never swallows the records after it).
    pub fn push(&mut self, record: &[u8; RECORD_LEN]) {
        if race::is_race(record) {
            let room = GEN_MAX_OPS.saturating_sub(self.ops.len());
            let race = race::Race::of(record);
            if let Some(e) = (!self.raced)
                .then(|| race::expand(&race, &self.scope, self.names, room))
                .flatten()
            {
                self.raced = true;
                self.take(e);
            }
            return;
        }
        if large::is_large(record) {
            let room = GEN_MAX_OPS.saturating_sub(self.ops.len());
            let large = large::Large::of(record);
            if let Some(e) = large::expand(&large, &self.scope, self.names, room) {
                self.take(e);
            }
            return;
        }
        let Some(op) = decode_record(record, &self.scope, self.names) else {
            return;
        };
        let first_thread = self
            .scope
            .section
            .as_ref()
            .is_some_and(|s| s.threads.is_empty())
            && !matches!(op, Op::Thread { .. } | Op::Join);
        // Inside a section the last free place is the `join`'s.
        let needed = 1 + usize::from(first_thread);
        let full = self.scope.section.is_some() && self.ops.len() + needed >= GEN_MAX_OPS;
        if full && op != Op::Join {
            return;
        }
        if first_thread {
            let thread = Op::Thread {
                name: thread_name(0),
            };
            let mut scope = self.scope.clone();
            if scope.apply(&thread).is_ok() && scope.apply(&op).is_ok() {
                self.scope = scope;
                self.names += usize::from(op.declared_name().is_some());
                self.ops.extend([thread, op]);
            }
        } else if self.scope.apply(&op).is_ok() {
            self.names += usize::from(op.declared_name().is_some());
            self.ops.push(op);
        }
    }

    /// Appends a decoded section and takes on the state after it.
    fn take(&mut self, e: race::Expansion) {
        self.scope = e.scope;
        self.names += e.declared;
        self.ops.extend(e.ops);
    }

    /// Ends the program: a section still open is joined (or dropped, if it has no thread:
    /// then it is only its `threads`, the input's last operation).
    pub fn finish(&mut self) {
        let Some(sec) = &self.scope.section else {
            return;
        };
        if sec.threads.is_empty() {
            self.ops.pop();
            self.scope.section = None;
        } else if self.scope.apply(&Op::Join).is_ok() {
            self.ops.push(Op::Join);
        }
    }

    /// The state after the whole records of `bytes`.
    pub fn after(bytes: &[u8]) -> Decoder {
        let mut d = Decoder::new();
        for chunk in bytes.chunks_exact(RECORD_LEN) {
            if d.ops.len() >= GEN_MAX_OPS {
                break;
            }
            let mut record = [0u8; RECORD_LEN];
            record.copy_from_slice(chunk);
            d.push(&record);
        }
        d
    }

    /// What a record's object byte (1) and mapping byte (2) pick from here: the lists
    /// [`decode_record`] indexes, so a mutator can aim a record at a given name.
    pub fn live_objects(&self) -> Vec<String> {
        Live::of(&self.scope).open
    }

    pub fn live_maps(&self) -> Vec<String> {
        Live::of(&self.scope)
            .maps
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }
}

/// The record's fields.
struct Fields<'r>(&'r [u8; RECORD_LEN]);

impl Fields<'_> {
    fn op(&self) -> OpKind {
        let ext = usize::from(self.0[0].wrapping_sub(EXT_BASE));
        match (self.0[0] >= EXT_BASE, EXT_TABLE.get(ext)) {
            (true, Some(k)) => *k,
            _ => OP_TABLE[usize::from(self.0[0]) % OP_TABLE.len()],
        }
    }
    fn flags(&self) -> u8 {
        self.0[3]
    }
    fn seed(&self) -> u32 {
        u32::from_le_bytes([self.0[12], self.0[13], self.0[14], self.0[15]])
    }
    /// Argument A (bytes 4..8) in `lo..=hi`.
    fn a(&self, lo: u64, hi: u64) -> u64 {
        int_field(&self.0[4..8], lo, hi)
    }
    /// Argument B (bytes 8..12) in `lo..=hi`.
    fn b(&self, lo: u64, hi: u64) -> u64 {
        int_field(&self.0[8..12], lo, hi)
    }
    /// One of `items`, by the byte at `at`.
    fn pick<T: Clone>(&self, at: usize, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[usize::from(self.0[at]) % items.len()].clone())
    }
    /// An offset and length inside `limit` bytes: pages unless `unaligned`.
    fn range(&self, limit: u64, unaligned: bool) -> (u64, u64) {
        if unaligned {
            let off = self.a(0, limit.saturating_sub(1));
            (off, self.b(1, (limit - off).max(1)))
        } else {
            let total = (limit / PAGE_SIZE).max(1);
            let first = self.a(0, total - 1);
            (first * PAGE_SIZE, self.b(1, total - first) * PAGE_SIZE)
        }
    }
}

fn int_field(bytes: &[u8], lo: u64, hi: u64) -> u64 {
    Unstructured::new(bytes).int_in_range(lo..=hi).unwrap_or(lo)
}

/// Writes `value` so that [`int_field`] over `lo..=hi` reads it back: `int_in_range` reads
/// as many big-endian bytes as `hi - lo` needs and takes them modulo the range's size.
fn put_int(bytes: &mut [u8], lo: u64, hi: u64, value: u64) {
    let delta = hi - lo;
    let width = (0..8).find(|n| delta >> (8 * n) == 0).unwrap_or(8);
    let x = (value - lo).to_be_bytes();
    bytes[..width].copy_from_slice(&x[8 - width..]);
}

/// Lists of live names a record can pick from.
struct Live {
    open: Vec<String>,
    maps: Vec<(String, u64)>,
    tmpfs: Vec<String>,
    gem: Vec<String>,
    /// The program's tmpfs mounts still mounted.
    mounts: Vec<String>,
}

impl Live {
    /// The live names, newest first (declared names end in their declaration number), so
    /// that a small index — what a fresh or mutated record mostly holds — means "what the
    /// program made last", and stays meaning that when earlier records move.
    fn of(scope: &Scope) -> Live {
        // Inside a threaded section a thread sees only what no other thread of it uses.
        let mine = |n: &String| !scope.claimed_elsewhere(n);
        let open_of = |kind: Option<ObjKind>| -> Vec<String> {
            newest_first(
                scope
                    .open_objects()
                    .filter(|(n, o)| kind.is_none_or(|k| o.kind == k) && mine(n))
                    .map(|(n, _)| n.clone())
                    .collect(),
            )
        };
        let mut maps: Vec<(String, u64)> = scope
            .maps
            .iter()
            .filter(|(n, _)| mine(n))
            .map(|(n, m)| (n.clone(), m.len))
            .collect();
        maps.sort_by_key(|(n, _)| std::cmp::Reverse(declaration(n)));
        Live {
            open: open_of(None),
            maps,
            tmpfs: newest_first(
                scope
                    .objects
                    .iter()
                    .filter(|(n, o)| o.kind == ObjKind::Tmpfs && !o.unlinked && mine(n))
                    .map(|(n, _)| n.clone())
                    .collect(),
            ),
            gem: open_of(Some(ObjKind::Gem)),
            mounts: newest_first(
                scope
                    .mounts
                    .iter()
                    .filter(|(n, on)| **on && mine(n))
                    .map(|(n, _)| n.clone())
                    .collect(),
            ),
        }
    }
}

/// The declaration number at the end of a decoded name (`m12` -> 12).
fn declaration(name: &str) -> u32 {
    name.trim_start_matches(|c: char| c.is_ascii_alphabetic())
        .parse()
        .unwrap_or(0)
}

fn newest_first(mut names: Vec<String>) -> Vec<String> {
    names.sort_by_key(|n| std::cmp::Reverse(declaration(n)));
    names
}

/// The operation one record makes at a point where `scope` holds and `names` names were
/// declared, or `None` when it makes none.
fn decode_record(record: &[u8; RECORD_LEN], scope: &Scope, names: usize) -> Option<Op> {
    let f = Fields(record);
    let live = Live::of(scope);
    let fresh = |prefix: &str| (names < GEN_MAX_NAMES).then(|| format!("{prefix}{names}"));
    let obj = || f.pick(1, &live.open);
    let map = || f.pick(2, &live.maps);
    let max_bytes = GEN_MAX_PAGES * PAGE_SIZE;
    let unaligned = f.flags() & UNALIGNED != 0;
    Some(match f.op() {
        K::Memfd => Op::Memfd {
            obj: fresh("m")?,
            size: f.a(1, GEN_MAX_PAGES) * PAGE_SIZE,
            anon: f.flags() & ANON != 0,
        },
        K::Tmpfs => Op::Tmpfs {
            obj: fresh("t")?,
            size: f.a(1, GEN_MAX_PAGES) * PAGE_SIZE,
            on: if f.flags() & ON_MOUNT != 0 {
                f.pick(2, &live.mounts)
            } else {
                None
            },
        },
        K::Ftruncate => Op::Ftruncate {
            obj: obj()?,
            size: f.a(1, GEN_MAX_PAGES) * PAGE_SIZE,
        },
        K::Write => {
            let obj = obj()?;
            let (off, len) = f.range(max_bytes, unaligned);
            Op::Write {
                obj,
                off,
                len,
                seed: f.seed(),
            }
        }
        K::Check => {
            let obj = obj()?;
            let (off, len) = f.range(max_bytes, unaligned);
            Op::Check { obj, off, len }
        }
        K::Punch => {
            let obj = obj()?;
            let (off, len) = f.range(max_bytes, unaligned);
            Op::Punch { obj, off, len }
        }
        K::Mmap => {
            let obj = obj()?;
            let kind = if live.gem.contains(&obj) {
                [MapKind::Shared, MapKind::Gem][usize::from(f.flags() & 1)]
            } else if f.flags() & 3 == 3 {
                MapKind::Private
            } else {
                MapKind::Shared
            };
            let (off, len) = f.range(max_bytes, false);
            Op::Mmap {
                map: fresh("v")?,
                obj,
                off,
                len,
                kind,
            }
        }
        K::Munmap => Op::Munmap { map: map()?.0 },
        K::Touch => {
            let (map, limit) = map()?;
            let (off, len) = f.range(limit, unaligned);
            let mode = if f.flags() & 1 != 0 {
                TouchMode::Write { seed: f.seed() }
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
        K::Madvise => {
            let (map, limit) = map()?;
            let advice = if f.flags() & MOVING_ADVICE != 0 {
                Advice::MOVING[usize::from(f.flags() & 7) % Advice::MOVING.len()]
            } else {
                Advice::SWAP[usize::from(f.flags() & 7) % Advice::SWAP.len()]
            };
            // Soft offline retires each frame for the guest's life (hwpoison): a few pages a
            // program, so a long campaign does not drain DMA32.
            let limit = if advice == Advice::SoftOffline {
                limit.min(GEN_MAX_SOFT_OFFLINE_PAGES * PAGE_SIZE)
            } else {
                limit
            };
            let (off, len) = f.range(limit, false);
            Op::Madvise {
                map,
                off,
                len,
                advice,
            }
        }
        K::Reclaim => Op::Reclaim {
            bytes: f.a(1, GEN_MAX_RECLAIM_PAGES) * PAGE_SIZE,
        },
        K::Swapon => Op::Swapon {
            dev: f.a(0, u64::from(DEFAULT_SWAP_DEVICES) - 1) as u8,
            prio: (f.flags() & 1 != 0).then(|| f.b(0, 11) as i16 - 1),
        },
        K::Swapoff => Op::Swapoff {
            dev: f.a(0, u64::from(DEFAULT_SWAP_DEVICES) - 1) as u8,
        },
        K::Unlink => Op::Unlink {
            obj: f.pick(1, &live.tmpfs)?,
        },
        K::Close => Op::Close { obj: obj()? },
        K::Gem => Op::Gem {
            obj: fresh("g")?,
            size: f.a(1, GEN_MAX_PAGES) * PAGE_SIZE,
            pinned: f.flags() & 3 == 3,
        },
        K::Dma32 => Op::Dma32 { obj: obj()? },
        K::Pin => Op::Pin {
            obj: f.pick(1, &live.gem)?,
        },
        K::Unpin => Op::Unpin {
            obj: f.pick(1, &live.gem)?,
        },
        K::Zonecheck => Op::Zonecheck { obj: obj()? },
        K::Threads => Op::Threads,
        K::Thread => {
            let n = scope.section.as_ref()?.threads.len();
            (n < GEN_MAX_THREADS).then(|| Op::Thread {
                name: thread_name(n),
            })?
        }
        K::Join => Op::Join,
        // Flag bit 0 makes a range: A..=max(A, B), drawn per execution.
        K::Delay => {
            let lo = f.a(0, GEN_MAX_DELAY_US);
            Op::Delay {
                micros: lo as u32,
                upto: (f.flags() & 1 != 0).then(|| f.b(lo, GEN_MAX_DELAY_US) as u32),
            }
        }
        K::Spin => {
            let lo = f.a(0, GEN_MAX_SPIN);
            Op::Spin {
                iters: lo as u32,
                upto: (f.flags() & 1 != 0).then(|| f.b(lo, GEN_MAX_SPIN) as u32),
            }
        }
        K::Mount => Op::Mount {
            mnt: fresh("f")?,
            // Flag bit 2 asks for a `huge=` option, A picks it.
            huge: (f.flags() & 4 != 0)
                .then(|| ThpMode::MOUNT[f.a(0, ThpMode::MOUNT.len() as u64 - 1) as usize]),
        },
        K::Umount => Op::Umount {
            mnt: f.pick(1, &live.mounts)?,
            detach: f.flags() & 1 != 0,
        },
        K::Thp => Op::Thp {
            mode: ThpMode::ALL[f.a(0, ThpMode::ALL.len() as u64 - 1) as usize],
            size: (f.flags() & PER_SIZE != 0)
                .then(|| THP_SIZES[f.b(0, THP_SIZES.len() as u64 - 1) as usize]),
        },
        K::Khugepaged => Op::Khugepaged,
        K::Compact => Op::Compact,
        K::Online => Op::Online,
        K::Mbind | K::MovePages => {
            let (map, limit) = map()?;
            let (off, len) = f.range(limit, false);
            // Nodes 0 and 1: the two-node topology's; the seed field carries it.
            let node = (f.seed() & 1) as u8;
            if f.op() == K::Mbind {
                Op::Mbind {
                    map,
                    off,
                    len,
                    node,
                    flags: MbindFlags(f.flags() & 7),
                }
            } else {
                Op::MovePages {
                    map,
                    off,
                    len,
                    node,
                }
            }
        }
        K::MigratePages => Op::MigratePages {
            from: f.a(0, 1) as u8,
            to: f.b(0, 1) as u8,
        },
        K::Offline => Op::Offline {
            obj: obj()?,
            page: f.a(0, GEN_MAX_PAGES - 1),
        },
        K::Hugetlb => {
            let gigantic = f.flags() & 1 != 0;
            Op::Hugetlb {
                size_kb: HUGETLB_SIZES_KB[usize::from(gigantic)],
                count: f.a(0, if gigantic { 1 } else { GEN_MAX_HUGETLB_2M }) as u32,
            }
        }
    })
}

/// `write O off=0 len=LEN seed=SEED`: a section's fill of its whole object.
fn fill_whole(obj: &str, len: u64, seed: u32) -> Op {
    Op::Write {
        obj: obj.to_string(),
        off: 0,
        len,
        seed,
    }
}

/// `mmap MAP O off=0 len=LEN shared`: a section's mapping of its whole object.
fn map_whole(map: &str, obj: &str, len: u64) -> Op {
    Op::Mmap {
        map: map.to_string(),
        obj: obj.to_string(),
        off: 0,
        len,
        kind: MapKind::Shared,
    }
}

mod encode;
pub mod large;
pub mod race;
pub use encode::{encode, EncodeError};
