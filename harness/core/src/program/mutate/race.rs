//! Mutations of race records (see [`crate::program::gen::race`]): fresh ones, and tweaks of
//! one parameter — the object, its size, either side, the delay window, the seed — that keep
//! the record a race record.

use crate::program::gen::race::{
    is_race, OtherSide, Race, SwapSide, RACE_OBJECTS, RACE_SIZES_MIB, SWAP_SIDES,
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
    let swap = if rng.u8(0..4) < 2 {
        [SwapSide::Swapoff, SwapSide::SwapCycle][rng.usize(0..2)]
    } else {
        SWAP_SIDES[rng.usize(0..SWAP_SIDES.len())]
    };
    let swapoff = matches!(swap, SwapSide::Swapoff | SwapSide::SwapCycle);
    let sides = if swapoff && rng.bool() {
        OtherSide::drops(object)
    } else {
        OtherSide::of(object).to_vec()
    };
    let max = Race::max_delay_us(size) as u32;
    let delay_lo = rng.u32(0..=max);
    let race = Race {
        object,
        size,
        swap,
        other: sides[rng.usize(0..sides.len())],
        delay_lo,
        delay_hi: rng.u32(delay_lo..=max.min(delay_lo + max / 3)),
        seed: rng.u32(..),
    };
    race.record().expect("drawn in range")
}

/// Changes one parameter of the race record `record`.
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
        2 => race.swap = SWAP_SIDES[rng.usize(0..SWAP_SIDES.len())],
        3 => {
            let sides = OtherSide::of(race.object);
            race.other = sides[rng.usize(0..sides.len())];
        }
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
