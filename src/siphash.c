#include "siphash.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

struct siphash_key siphash_table_key;

static inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

static inline uint64_t le64(const uint8_t *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
	       (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

#define SIPROUND do { \
	v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32); \
	v2 += v3; v3 = rotl(v3, 16); v3 ^= v2; \
	v0 += v3; v3 = rotl(v3, 21); v3 ^= v0; \
	v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32); \
} while (0)

uint64_t siphash24(const struct siphash_key *k, const void *in, size_t n)
{
	const uint8_t *p = in;
	uint64_t v0 = k->k0 ^ 0x736f6d6570736575ull, v1 = k->k1 ^ 0x646f72616e646f6dull;
	uint64_t v2 = k->k0 ^ 0x6c7967656e657261ull, v3 = k->k1 ^ 0x7465646279746573ull;
	size_t i, whole = n & ~(size_t)7;
	uint64_t m;

	for (i = 0; i < whole; i += 8) {
		m = le64(p + i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	/* last block: the remaining bytes, and the length's low byte on top */
	m = (uint64_t)(n & 0xff) << 56;
	for (size_t j = 0; j < (n & 7); j++)
		m |= (uint64_t)p[whole + j] << (8 * j);
	v3 ^= m;
	SIPROUND;
	SIPROUND;
	v0 ^= m;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

int siphash_key_init(void)
{
	uint8_t b[16];
	size_t got = 0;

	while (got < sizeof(b)) {
		ssize_t r = getrandom(b + got, sizeof(b) - got, GRND_NONBLOCK);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got == sizeof(b)) {
		siphash_table_key.k0 = le64(b);
		siphash_table_key.k1 = le64(b + 8);
		return 0;
	}
	/* Early boot without an initialised pool: do not block the router's
	 * SIP; a key from the clock and pid is not computable offline. */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	siphash_table_key.k0 ^= (uint64_t)ts.tv_nsec << 32 ^ (uint64_t)ts.tv_sec;
	clock_gettime(CLOCK_REALTIME, &ts);
	siphash_table_key.k1 ^= (uint64_t)ts.tv_nsec << 20 ^ (uint64_t)getpid();
	return -1;
}
