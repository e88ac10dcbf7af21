//! Mutations of race records (see [`crate::program::gen::race`]): fresh ones, and tweaks of
//! one parameter — the object, its size, either side, the delay window, the seed — that keep
//! the record a race record.

use crate::program::gen::race::{
    is_race, OtherSide, Race, RaceObject, SwapSide, RACE_OBJECTS, RACE_SIZES_MIB, SWAP_SIDES,
};
use crate::program::gen::RECORD_LEN;

/// Whether `record` (one whole record) is a race record.
pub fn is_race_bytes(record: &[u8]) -> bool {
    <&[u8; RECORD_LEN]>::try_from(record).is_ok_and(is_race)
}

/// A race record with every parameter drawn, weighted as the decoder weighs random records
/// (3 of 4 take the swap device off, 2 of 3 of those against a side that drops the last
/// reference: [`crate::program::gen::race`]), and a delay window of up to a third of the
/// longest delay for its size, anywhere below it.
pub fn fresh(rng: &mut fastrand::Rng) -> [u8; RECORD_LEN] {
    let object = RACE_OBJECTS[rng.usize(0..RACE_OBJECTS.len())];
    let size = rng.usize(0..RACE_SIZES_MIB.len());
    let swap = swap_side(rng);
    let max = Race::max_delay_us(size) as u32;
    let delay_lo = rng.u32(0..=max);
    let race = Race {
        object,
        size,
        swap,
        other: other_side(object, swap, rng),
        delay_lo,
        delay_hi: rng.u32(delay_lo..=max.min(delay_lo + max / 3)),
        seed: rng.u32(..),
    };
    race.record().expect("drawn in range")
}

/// A swap side, weighted as the decoder weighs random records: half of the draws take the
/// device off (swapoff, or swapoff + swapon), the other half any side.
fn swap_side(rng: &mut fastrand::Rng) -> SwapSide {
    if rng.bool() {
        [SwapSide::Swapoff, SwapSide::SwapCycle][rng.usize(0..2)]
    } else {
        SWAP_SIDES[rng.usize(0..SWAP_SIDES.len())]
    }
}

/// The other side against `swap`: against a swapoff, half of the draws drop the object's
/// last reference; otherwise any side the object kind allows.
fn other_side(object: RaceObject, swap: SwapSide, rng: &mut fastrand::Rng) -> OtherSide {
    let swapoff = matches!(swap, SwapSide::Swapoff | SwapSide::SwapCycle);
    let sides = if swapoff && rng.bool() {
        OtherSide::drops(object)
    } else {
        OtherSide::of(object).to_vec()
    };
    sides[rng.usize(0..sides.len())]
}

/// Changes one parameter of the race record `record`; a side is drawn with the decoder's
/// weights (the corpus otherwise keeps the seed's reclaim-against-write race in most
/// mutants: 17 minutes into a campaign from the seeds, 43 of its 78 inputs held that
/// section and 6 a swapoff one).
pub fn tweak(record: &mut [u8], rng: &mut fastrand::Rng) {
    let Ok(bytes) = <&[u8; RECORD_LEN]>::try_from(&*record) else {
        return;
    };
    let mut race = Race::of(bytes);
    let max = Race::max_delay_us(race.size) as u32;
    match rng.u8(0..7) {
        0 => {
            race.object = RACE_OBJECTS[rng.usize(0..RACE_OBJECTS.len())];
            let sides = OtherSide::of(race.object);
            if !sides.contains(&race.other) {
                race.other = sides[0];
            }
        }
        1 => {
            let up = race.size + 1 < RACE_SIZES_MIB.len() && (race.size == 0 || rng.bool());
            race.size = if up {
                race.size + 1
            } else {
                race.size.saturating_sub(1)
            };
            // The window stays where it was, cut to the new size's longest delay.
            let max = Race::max_delay_us(race.size) as u32;
            race.delay_hi = race.delay_hi.min(max);
            race.delay_lo = race.delay_lo.min(race.delay_hi);
        }
        2 => {
            race.swap = swap_side(rng);
            // A swapoff against a side that keeps the object is one more tweak from the
            // pairing that matters: take it now half of the time.
            if rng.bool() {
                race.other = other_side(race.object, race.swap, rng);
            }
        }
        3 => race.other = other_side(race.object, race.swap, rng),
        // Move the window by up to a tenth of the longest delay.
        4 => {
            let width = race.delay_hi - race.delay_lo;
            let shift = rng.u32(1..=max / 10);
            race.delay_lo = if rng.bool() {
                race.delay_lo.saturating_add(shift).min(max - width)
            } else {
                race.delay_lo.saturating_sub(shift)
            };
            race.delay_hi = race.delay_lo + width;
        }
        // Widen or narrow it (down to one value).
        5 => {
            race.delay_hi = if rng.bool() {
                rng.u32(race.delay_hi..=max)
            } else {
                rng.u32(race.delay_lo..=race.delay_hi)
            };
        }
        _ => race.seed = rng.u32(..),
    }
    if let Some(r) = race.record() {
        record.copy_from_slice(&r);
    }
}
