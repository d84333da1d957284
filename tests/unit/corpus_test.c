/* The rewrite corpus (tests/data/rewrite, written by its gen.py): every
 * step's datagram must leave the router exactly as NAME.N.out says, or
 * unchanged when there is no .out. Each case runs in a fresh ALG. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "alg.h"
#include "conf.h"
#include "stats.h"
#include "stubs.h"
#include "testpkt.h"

#define DIR "tests/data/rewrite/"

static struct conf cf;
static uint8_t pkt[70000], out[70000];

static long slurp(const char *path, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, cap, f);
	fclose(f);
	return (long)n;
}

static uint32_t ip_of(const char *s, uint16_t *port)
{
	unsigned a, b, c, d, p;
	assert_int_equal(sscanf(s, "%u.%u.%u.%u:%u", &a, &b, &c, &d, &p), 5);
	*port = (uint16_t)p;
	return a << 24 | b << 16 | c << 8 | d;
}

static void run_step(const char *name, int step, const char *src, const char *dst)
{
	static uint8_t in[66000], want[66000];
	char path[256];
	uint16_t sp, dp;
	uint32_t s = ip_of(src, &sp), d = ip_of(dst, &dp), olen = 0;

	snprintf(path, sizeof(path), DIR "%s.%d.in", name, step);
	long n = slurp(path, in, sizeof(in));
	assert_true(n >= 0);
	snprintf(path, sizeof(path), DIR "%s.%d.out", name, step);
	long w = slurp(path, want, sizeof(want));
	if (w < 0) {
		memcpy(want, in, (size_t)n);
		w = n;
	}
	uint32_t tot = tp_udp4(pkt, s, sp, d, dp, in, (uint32_t)n);
	int v = alg_packet(pkt, tot, out, sizeof(out), &olen, 1000);
	if (v != ALG_ACCEPT)
		print_error("%s step %d: dropped\n", name, step);
	assert_int_equal(v, ALG_ACCEPT);
	const uint8_t *got = olen ? out + 28 : in;
	long glen = olen ? (long)olen - 28 : n;
	if (glen != w || memcmp(got, want, (size_t)w) != 0) {
		print_error("%s step %d: leaves as\n%.*s\n--- expected\n%.*s\n", name, step,
			    (int)glen, (const char *)got, (int)w, (const char *)want);
		fail();
	}
}

static void test_corpus(void **st)
{
	(void)st;
	FILE *f = fopen(DIR "cases.tsv", "r");
	char line[512], cur[64] = "";
	int steps = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char name[64], dir[8], src[32], dst[32];
		int step;
		if (line[0] == '#')
			continue;
		assert_int_equal(sscanf(line, "%63s %d %7s %31s %31s", name, &step, dir, src, dst), 5);
		if (strcmp(name, cur) != 0) {
			if (cur[0])
				alg_fini();
			memset(stats, 0, sizeof(stats));
			assert_int_equal(alg_init(&cf, a4(cf.public_ip)), 0);
			snprintf(cur, sizeof(cur), "%s", name);
		}
		run_step(name, step, src, dst);
		steps++;
	}
	fclose(f);
	if (cur[0])
		alg_fini();
	assert_true(steps >= 10);
}

int main(void)
{
	conf_defaults(&cf);
	cf.public_ip = 0xcb007101;
	cf.lan[0] = conf_net_v4(0xc0a80100, 24);
	cf.n_lan = 1;
	cf.media_other_hosts = 1;
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_corpus) };
	return cmocka_run_group_tests_name("corpus", tests, NULL, NULL);
}
