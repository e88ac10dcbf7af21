//! The seeded byte pattern: byte `off` of a write with seed `s` is a pure function of
//! `(s, off)`, so the model stores extents, never bytes, and any range can be regenerated.

/// SplitMix64 finaliser: a cheap bijective mix with good avalanche.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Byte at absolute file offset `off` of the pattern with `seed`.
pub fn byte(seed: u32, off: u64) -> u8 {
    mix((u64::from(seed) << 40) ^ (off >> 3)).to_le_bytes()[(off & 7) as usize]
}

/// Fills `buf` with the pattern for file offsets `off..off + buf.len()`.
pub fn fill(seed: u32, off: u64, buf: &mut [u8]) {
    let mut i = 0usize;
    while i < buf.len() {
        let pos = off + i as u64;
        let word = mix((u64::from(seed) << 40) ^ (pos >> 3)).to_le_bytes();
        let start = (pos & 7) as usize;
        let n = (8 - start).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&word[start..start + n]);
        i += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_matches_byte_at_any_alignment() {
        for off in [0u64, 1, 7, 8, 4095, 4096, 1 << 33] {
            let mut buf = vec![0u8; 37];
            fill(9, off, &mut buf);
            for (i, b) in buf.iter().enumerate() {
                assert_eq!(*b, byte(9, off + i as u64), "off {off} i {i}");
            }
        }
    }

    #[test]
    fn seeds_differ() {
        let (mut a, mut b) = (vec![0u8; 4096], vec![0u8; 4096]);
        fill(1, 0, &mut a);
        fill(2, 0, &mut b);
        assert_ne!(a, b);
        assert!(
            a.iter().filter(|&&x| x == 0).count() < 64,
            "pattern is mostly non-zero"
        );
    }
}
