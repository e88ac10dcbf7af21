//! The structure-aware mutator: edits fuzzer inputs a whole operation record at a time.
//!
//! Inputs are sequences of [`RECORD_LEN`]-byte records (see [`super::gen`]), each decoding to
//! one operation wherever it sits. Mutating records keeps every input meaningful: inserting a
//! fresh operation or one that uses what the program has made so far, deleting, duplicating,
//! swapping or moving operations, wrapping a stretch of them in a two-thread section,
//! inserting a race section (one record, see [`super::gen::race`]; its parameters are tweaked
//! in `mutate/race.rs`) or a large-folio section (one record, see [`super::gen::large`]), and
//! tweaking one argument (the operation, which object or mapping it
//! names, its flags, a size, offset or length, its seed). A small share of calls asks the
//! caller for its byte-level mutation instead (libFuzzer's own), which finds what records
//! cannot express (a torn record).
//! Pure and deterministic per seed, as libFuzzer requires of a custom mutator.

use super::gen::large::LARGE_OPS;
use super::gen::{Decoder, OpKind, GEN_MAX_LEN, MOVING_KINDS, OP_TABLE, RECORD_LEN};

mod race;

/// What one call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    Insert,
    /// Insert an operation that uses what is live at that point (see [`insert_use`]).
    InsertUse,
    Delete,
    Duplicate,
    Swap,
    Move,
    Tweak,
    /// Wrap a stretch of records in a threaded section of two threads (see [`section`]).
    Section,
    /// Insert a race record: a large object paged out, then swapped back in or reclaimed on
    /// one thread while the other drops or uses it (see [`super::gen::race`]).
    Race,
    /// Insert a large-folio record: an object backed by PMD-sized or per-size folios, its
    /// mask and a page-out drawn (see [`super::gen::large`]).
    Large,
    /// Nothing done here: apply the byte-level mutator.
    ByteLevel,
}

/// Largest input worth producing for `max_len`: whole records, no more than the decoder reads.
pub fn limit(max_len: usize) -> usize {
    (max_len.min(GEN_MAX_LEN) / RECORD_LEN) * RECORD_LEN
}

/// Mutates `data` in place, keeping it within [`limit`]`(max_len)`.
pub fn mutate(data: &mut Vec<u8>, max_len: usize, seed: u32) -> Mutation {
    let mut rng = fastrand::Rng::with_seed(u64::from(seed));
    let limit = limit(max_len);
    // A torn last record reads as zero-padded: make that explicit so records stay aligned.
    data.resize(data.len().div_ceil(RECORD_LEN) * RECORD_LEN, 0);
    let records = data.len() / RECORD_LEN;
    let full = data.len() + RECORD_LEN > limit;
    let roll = rng.u32(0..100);
    let m = match roll {
        _ if records == 0 => Mutation::Insert,
        0..=7 => Mutation::ByteLevel,
        8..=17 if !full => Mutation::Insert,
        18..=33 if !full => Mutation::InsertUse,
        34..=43 if !full => Mutation::Duplicate,
        44..=55 => Mutation::Delete,
        56..=63 if records > 1 => Mutation::Swap,
        64..=71 if records > 1 => Mutation::Move,
        72..=74 if data.len() + 4 * RECORD_LEN <= limit => Mutation::Section,
        75..=78 if !full => Mutation::Race,
        79..=81 if !full => Mutation::Large,
        _ => Mutation::Tweak,
    };
    match m {
        Mutation::Insert => {
            let at = rng.usize(0..=records);
            insert(data, at, &fresh_record(&mut rng));
        }
        Mutation::InsertUse => {
            // Half of the time at the end: what a program does next with what it made.
            let at = if rng.bool() {
                records
            } else {
                rng.usize(0..=records)
            };
            let record = insert_use(&data[..at * RECORD_LEN], &mut rng);
            insert(data, at, &record);
        }
        Mutation::Duplicate => {
            let from = rng.usize(0..records);
            let record = data[span(from)].to_vec();
            insert(data, rng.usize(0..=records), &record);
        }
        Mutation::Delete => {
            data.drain(span(rng.usize(0..records)));
        }
        Mutation::Swap => {
            let (a, b) = (rng.usize(0..records), rng.usize(0..records));
            for i in 0..RECORD_LEN {
                data.swap(a * RECORD_LEN + i, b * RECORD_LEN + i);
            }
        }
        Mutation::Move => {
            let record: Vec<u8> = data.drain(span(rng.usize(0..records))).collect();
            insert(data, rng.usize(0..records), &record);
        }
        Mutation::Tweak => {
            let at = rng.usize(0..records) * RECORD_LEN;
            let record = &mut data[at..at + RECORD_LEN];
            // A race record's parameters, most of the time: its own tweaks keep it a race.
            if race::is_race_bytes(record) && rng.u8(0..4) > 0 {
                race::tweak(record, &mut rng);
            } else {
                tweak(record, &mut rng);
            }
        }
        Mutation::Section => section(data, records, &mut rng),
        Mutation::Race => {
            // Mostly at the end, where nothing after it competes for names and operations.
            let at = if rng.u8(0..4) > 0 {
                records
            } else {
                rng.usize(0..=records)
            };
            insert(data, at, &race::fresh(&mut rng));
        }
        Mutation::Large => {
            // Anywhere: the records after it use its object (they pick the newest first).
            // Random fields: the decoder's own weighting of masks and page-outs.
            let mut record = [0u8; RECORD_LEN];
            rng.fill(&mut record);
            record[0] = LARGE_OPS.start() + rng.u8(0..4);
            insert(data, rng.usize(0..=records), &record);
        }
        Mutation::ByteLevel => {}
    }
    data.truncate(limit);
    m
}

/// A child of two inputs: a prefix of records from `a`, the rest from `b` at the same cut or
/// another, bounded by [`limit`]`(max_len)`.
pub fn crossover(a: &[u8], b: &[u8], max_len: usize, seed: u32) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(u64::from(seed));
    let cut_a = rng.usize(0..=a.len() / RECORD_LEN) * RECORD_LEN;
    let cut_b = rng.usize(0..=b.len() / RECORD_LEN) * RECORD_LEN;
    let mut out = a[..cut_a].to_vec();
    out.extend_from_slice(&b[cut_b..]);
    out.truncate(limit(max_len));
    out
}

fn span(record: usize) -> std::ops::Range<usize> {
    record * RECORD_LEN..(record + 1) * RECORD_LEN
}

fn insert(data: &mut Vec<u8>, record: usize, bytes: &[u8]) {
    let at = (record * RECORD_LEN).min(data.len());
    data.splice(at..at, bytes.iter().copied());
}

/// `threads` + `thread a` before a record, `thread b` at or after it, `join` at or after
/// that: the records between race each other (those that would share an object with the
/// other thread decode to nothing, see `Scope`).
fn section(data: &mut Vec<u8>, records: usize, rng: &mut fastrand::Rng) {
    let marker = |kind: OpKind| {
        let mut r = [0u8; RECORD_LEN];
        r[0] = kind.selector();
        r
    };
    let start = rng.usize(0..=records);
    let mid = rng.usize(start..=records);
    let end = rng.usize(mid..=records);
    // From the back, so the earlier positions stay where they were.
    insert(data, end, &marker(OpKind::Join));
    insert(data, mid, &marker(OpKind::Thread));
    let mut open = marker(OpKind::Threads).to_vec();
    open.extend_from_slice(&marker(OpKind::Thread));
    insert(data, start, &open);
}

/// A random record whose operation is drawn evenly over the kinds (not over [`OP_TABLE`]'s
/// weighted slots) and the page-moving kinds ([`MOVING_KINDS`]), with small arguments half
/// of the time.
fn fresh_record(rng: &mut fastrand::Rng) -> [u8; RECORD_LEN] {
    let mut r = [0u8; RECORD_LEN];
    rng.fill(&mut r);
    let kinds: Vec<OpKind> = OP_TABLE
        .iter()
        .enumerate()
        .filter(|(i, k)| OP_TABLE[..*i].iter().all(|o| o != *k))
        .map(|(_, k)| *k)
        .chain(MOVING_KINDS)
        .collect();
    r[0] = kinds[rng.usize(0..kinds.len())].selector();
    if rng.bool() {
        r[1] = rng.u8(0..4);
        r[2] = rng.u8(0..4);
        r[4..8].copy_from_slice(&small(rng));
        r[8..12].copy_from_slice(&small(rng));
    }
    r
}

/// A record for an operation that fits after `prefix`: one that creates an object when
/// nothing is live, otherwise one that uses the objects (and mappings) live there, aimed at
/// the newest of them half of the time (index 0, see [`super::gen`]): what a program just made is what it goes on using.
/// (syzkaller's call priorities play the same role: calls that consume the resources the
/// program has are the likely useful ones.)
fn insert_use(prefix: &[u8], rng: &mut fastrand::Rng) -> [u8; RECORD_LEN] {
    use OpKind as K;
    let d = Decoder::after(prefix);
    let objects = d.live_objects();
    let maps = d.live_maps();
    let kinds: &[OpKind] = if objects.is_empty() {
        &[K::Memfd, K::Tmpfs, K::Gem]
    } else if maps.is_empty() {
        &[
            K::Write,
            K::Check,
            K::Dma32,
            K::Mmap,
            K::Reclaim,
            K::Punch,
            K::Zonecheck,
            K::Memfd,
            K::Gem,
            // The page-moving operations that need only an object (or nothing).
            K::Offline,
            K::Hugetlb,
            K::Compact,
        ]
    } else {
        &[
            K::Write,
            K::Check,
            K::Dma32,
            K::Reclaim,
            K::Touch,
            K::Madvise,
            K::Munmap,
            K::Mmap,
            // Page-moving uses of a mapping or object (half of madvise's advices move
            // pages too: collapse, soft-offline, ...).
            K::Madvise,
            K::Mbind,
            K::Offline,
            K::Khugepaged,
            K::Thp,
        ]
    };
    let mut r = fresh_record(rng);
    r[0] = kinds[rng.usize(0..kinds.len())].selector();
    r[1] = aim(&objects, rng);
    r[2] = aim(&maps, rng);
    r
}

/// An index into `names` (newest first): the newest half of the time.
fn aim(names: &[String], rng: &mut fastrand::Rng) -> u8 {
    if names.is_empty() || rng.bool() {
        return 0;
    }
    rng.usize(0..names.len()) as u8
}

/// A field value read as a small number: zero, or a few pages.
fn small(rng: &mut fastrand::Rng) -> [u8; 4] {
    let v = rng.u16(0..64);
    let [hi, lo] = v.to_be_bytes();
    // One-byte ranges read byte 0, two-byte ranges bytes 0..2 (big-endian).
    if rng.bool() {
        [lo, 0, 0, 0]
    } else {
        [hi, lo, 0, 0]
    }
}

/// Changes one field of `record`.
fn tweak(record: &mut [u8], rng: &mut fastrand::Rng) {
    match rng.u8(0..8) {
        0 => record[0] = rng.u8(..),
        1 => record[1] = record[1].wrapping_add(rng.u8(1..4)),
        2 => record[2] = record[2].wrapping_add(rng.u8(1..4)),
        3 => record[3] ^= 1 << rng.u8(0..8),
        4 | 5 => {
            let at = if rng.bool() { 4 } else { 8 };
            let field = &mut record[at..at + 4];
            match rng.u8(0..3) {
                0 => field.copy_from_slice(&small(rng)),
                1 => {
                    let v = u16::from_be_bytes([field[0], field[1]]);
                    let delta = rng.u16(1..16);
                    let v = if rng.bool() {
                        v.wrapping_add(delta)
                    } else {
                        v.wrapping_sub(delta)
                    };
                    field[..2].copy_from_slice(&v.to_be_bytes());
                }
                _ => rng.fill(field),
            }
        }
        6 => rng.fill(&mut record[12..16]),
        _ => {
            let i = rng.usize(0..RECORD_LEN);
            record[i] = rng.u8(..);
        }
    }
}

#[cfg(test)]
mod tests;
