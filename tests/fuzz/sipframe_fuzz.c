/* libFuzzer target: the SIP stream framer (src/sipframe.c). The contract of
 * src/sipframe.h beyond "no crash": the units found when the input arrives
 * in chunks (sizes taken from the input's first bytes) are exactly the units
 * found when it arrives at once; every unit is inside the buffer and not
 * larger than max; an error is final and the same either way.
 *
 * Build and run: tests/fuzz/run.sh sipframe (with src/sipframe.c in CORE),
 * or by hand:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *     tests/fuzz/sipframe_fuzz.c src/sipframe.c -o build/fuzz/sipframe_fuzz */
#include <stdint.h>
#include <string.h>

#include "sipframe.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)
#define MAX 2048
#define UNITS 512

struct run {
	uint32_t off[UNITS], len[UNITS];
	int n, err;
};

/* Feed data[0..n) in chunks of the given sizes (cycled); record units. */
static void frame(const uint8_t *data, uint32_t n, const uint8_t *sizes, uint32_t nsizes, struct run *r)
{
	static uint8_t buf[MAX + 256];
	struct sipframe f;
	uint32_t have = 0, base = 0, fed = 0, k = 0;

	memset(r, 0, sizeof(*r));
	sipframe_reset(&f);
	while (fed < n || have) {
		uint32_t c = nsizes ? (uint32_t)(sizes[k++ % nsizes] % 200) + 1 : n;
		if (c > n - fed)
			c = n - fed;
		if (have + c > sizeof(buf))
			c = (uint32_t)sizeof(buf) - have;
		memcpy(buf + have, data + fed, c);
		have += c;
		fed += c;
		for (;;) {
			uint32_t u;
			enum sipframe_rc rc = sipframe_next(&f, buf, have, MAX, &u);
			if (rc < 0) {
				r->err = rc;
				return;
			}
			if (rc == SIPFRAME_MORE)
				break;
			CHECK(u > 0 && u <= have && u <= MAX);
			if (r->n < UNITS) {
				r->off[r->n] = base;
				r->len[r->n] = u;
				r->n++;
			}
			memmove(buf, buf + u, have - u);
			have -= u;
			base += u;
			sipframe_reset(&f);
		}
		if (fed == n)
			break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run a, b;
	if (size < 1 || size > 16384)
		return 0;
	uint32_t ns = data[0] % 16;
	if (size < 1 + ns)
		return 0;
	const uint8_t *sizes = data + 1, *s = data + 1 + ns;
	uint32_t n = (uint32_t)(size - 1 - ns);

	frame(s, n, NULL, 0, &a);
	frame(s, n, sizes, ns ? ns : 1, &b);
	/* at once vs in chunks: same units, same error */
	CHECK(a.n == b.n);
	CHECK(a.err == b.err);
	for (int i = 0; i < a.n; i++)
		CHECK(a.off[i] == b.off[i] && a.len[i] == b.len[i]);
	return 0;
}
