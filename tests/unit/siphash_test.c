/* SipHash-2-4 against the reference paper's test vector, and the dialog
 * table against Call-IDs built to collide under the unkeyed FNV-1a it used
 * before (hash flooding): with the keyed hash they spread over the buckets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "binding.h"
#include "conf.h"
#include "dialog.h"
#include "siphash.h"
#include "stats.h"
#include "stubs.h"

/* A host-order IPv4 address as the struct addr the dialog table takes. */
#define A4(ip) (&(const struct addr){ { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, (uint8_t)((ip) >> 24), \
					(uint8_t)((ip) >> 16), (uint8_t)((ip) >> 8), (uint8_t)(ip) } })

#define PUB 0xcb007101
#define PHONE 0xc0a8010a
#define PROXY 0xc6336401
#define NCOLL 400

/* Aumasson & Bernstein, "SipHash: a fast short-input PRF", appendix A:
 * key 00 01 .. 0f, message 00 01 .. 0e (15 bytes). */
static void test_reference_vector(void **st)
{
	(void)st;
	struct siphash_key k;
	uint8_t kb[16], msg[15];
	for (int i = 0; i < 16; i++)
		kb[i] = (uint8_t)i;
	for (int i = 0; i < 15; i++)
		msg[i] = (uint8_t)i;
	memcpy(&k.k0, kb, 8); /* little-endian machine: bytes 0-7 */
	memcpy(&k.k1, kb + 8, 8);
	assert_true(siphash24(&k, msg, 15) == 0xa129ca6149be45e5ull);
	/* the empty message, from the reference implementation's vectors */
	assert_true(siphash24(&k, msg, 0) == 0x726fdb47dd0e0e31ull);
}

/* The dialog table's old bucket function, verbatim in effect. */
static uint32_t fnv_old(const char *s, uint32_t n, uint32_t ip, uint32_t mask)
{
	uint32_t h = 2166136261u ^ ip;
	for (uint32_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h & mask;
}

static char cids[NCOLL][32];

static void test_colliding_callids_spread(void **st)
{
	(void)st;
	struct conf cf;
	conf_defaults(&cf);
	cf.lan[0] = conf_net_v4(0xc0a80100, 24);
	cf.n_lan = 1;
	cf.max_dialogs = 1024; /* 400 dialogs stay under 3/4: no fair share in the way */
	memset(stats, 0, sizeof(stats));
	stub_reset();
	siphash_table_key = (struct siphash_key){ 0x0123456789abcdefull, 0xfedcba9876543210ull };
	assert_int_equal(binding_init(&cf, a4(PUB)), 0);
	assert_int_equal(dialog_init(&cf), 0);
	uint32_t nb = 0;
	dialog_hash_longest_chain(&nb);
	assert_true(nb >= 2 * cf.max_dialogs);

	/* An attacker's offline work: NCOLL Call-IDs in one bucket of the old hash. */
	int n = 0;
	for (uint32_t i = 0; n < NCOLL && i < 50000000u; i++) {
		int l = snprintf(cids[n], sizeof(cids[n]), "flood%u@x", i);
		if (fnv_old(cids[n], (uint32_t)l, PHONE, nb - 1) == 7)
			n++;
	}
	assert_int_equal(n, NCOLL);

	struct binding *sb = binding_get(a4(PHONE), 5060, BIND_SIG, 0, 0);
	assert_non_null(sb);
	for (int i = 0; i < NCOLL; i++)
		assert_non_null(dialog_create((const uint8_t *)cids[i], (uint32_t)strlen(cids[i]), A4(PHONE), 5060,
					      A4(PROXY), 5060, sb, 0));
	/* Old hash: one chain of NCOLL. Keyed: NCOLL over nb >= 2048 buckets; a
	 * uniform hash's longest chain is about 4 here, 12 is far out. */
	uint32_t longest = dialog_hash_longest_chain(NULL);
	printf("# %d Call-IDs colliding under FNV-1a (one chain of %d): longest keyed chain %u of %u buckets\n",
	       NCOLL, NCOLL, longest, nb);
	assert_true(longest <= 12);

	/* Measured, not asserted: cost of a lookup of each colliding Call-ID. */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int r = 0; r < 100; r++)
		for (int i = 0; i < NCOLL; i++)
			assert_non_null(dialog_find((const uint8_t *)cids[i], (uint32_t)strlen(cids[i]), A4(PHONE)));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("# lookup of a colliding Call-ID: %.0f ns\n",
	       ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / (100.0 * NCOLL));
	dialog_fini();
	binding_fini();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_vector),
		cmocka_unit_test(test_colliding_callids_spread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
