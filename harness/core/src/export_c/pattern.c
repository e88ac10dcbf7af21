/*
 * The seeded byte pattern of shmemfuzz (harness/core/src/oracle/pattern.rs):
 * byte `off` of a write with seed `seed` is byte (off & 7), little-endian, of
 * mix((seed << 40) ^ (off >> 3)), where mix() is the SplitMix64 finaliser. So
 * any range of any write can be regenerated from (seed, file offset) alone.
 */
static uint64_t pattern_mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Fills buf with the pattern of `seed` for file offsets off .. off + len. */
static void pattern_fill(uint32_t seed, uint64_t off, unsigned char *buf, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint64_t pos = off + i;
		uint64_t word = pattern_mix(((uint64_t)seed << 40) ^ (pos >> 3));
		unsigned int k;

		for (k = pos & 7; k < 8 && i < len; k++, i++)
			buf[i] = (unsigned char)(word >> (8 * k));
	}
}
