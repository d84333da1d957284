/* siphash: SipHash-2-4 (Aumasson, Bernstein, "SipHash: a fast short-input
 * PRF", 2012), our own implementation. Tables indexed by bytes an attacker
 * chooses (Call-IDs, addresses, ports) hash with it under a key drawn at
 * start, so colliding keys cannot be computed offline (hash flooding). */
#ifndef SIPALGD_SIPHASH_H
#define SIPALGD_SIPHASH_H
#include <stddef.h>
#include <stdint.h>

struct siphash_key {
	uint64_t k0, k1;
};

/* SipHash-2-4 of in[0..n) under `k` (the paper's byte order: k0 is key
 * bytes 0-7 little-endian, k1 bytes 8-15). */
uint64_t siphash24(const struct siphash_key *k, const void *in, size_t n);

/* The process-wide table key. siphash_key_init() fills it from getrandom()
 * (0, or -1 if the kernel gave no randomness: the key then mixes time and
 * pid, which is weaker but still not known offline). Tests may set it. */
extern struct siphash_key siphash_table_key;
int siphash_key_init(void);

/* Shorthand for table indices: SipHash-2-4 under the table key. */
static inline uint64_t siphash_table(const void *in, size_t n)
{
	return siphash24(&siphash_table_key, in, n);
}

#endif
