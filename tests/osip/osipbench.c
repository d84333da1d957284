/* osipbench: parse time per message, our span scanner against libosip2, on
 * the messages of the differential test's corpora that both accept. Run by
 * hand (make osip-bench); the numbers go to docs/performance.md and are
 * never asserted (they depend on the machine).
 *   build/osipbench [ROUNDS]      default 2000 rounds over the set
 * Each round parses every message once with each parser; the two parsers
 * alternate by message so that neither gets a warmer cache. Ours is
 * sip_parse (+ sdp_parse when the body is SDP); libosip2's is
 * osip_message_init/parse (+ sdp_message_init/parse)/free, which is what a
 * daemon on libosip2 does per datagram. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "osipdiff.h"

#define MAXMSG 512

static int by_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(v[0]), by_double);
	return n ? v[n / 2] : 0;
}

static const struct { const char *dir; const char *suffix; } corpora[] = {
	{ "tests/fuzz/corpus/sipmsg", "" },
	{ "tests/data/rewrite", ".in" },
	{ "tests/data/torture/rfc4475", ".dat" },
	{ "tests/data/torture/rfc5118", "" },
	{ "tests/data/malformed", ".in.bin" },
};

static struct { uint8_t *b; size_t n; int sdp; double ours, osip; } set[MAXMSG];
static int nset;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void load(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d) {
		fprintf(stderr, "%s: cannot open (run from the repository root)\n", dir);
		exit(1);
	}
	while ((e = readdir(d)) && nset < MAXMSG) {
		size_t k = strlen(e->d_name), s = strlen(suffix);
		char path[512];
		if (e->d_name[0] == '.' || k < s || strcmp(e->d_name + k - s, suffix) != 0 ||
		    strstr(e->d_name, ".py") || strstr(e->d_name, ".tsv"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		FILE *f = fopen(path, "rb");
		if (!f)
			continue;
		static uint8_t buf[70000];
		size_t n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		struct osipdiff r;
		osipdiff_run(buf, n, &r);
		if (!r.compared)
			continue;  /* only what both accept */
		set[nset].b = malloc(n);
		memcpy(set[nset].b, buf, n);
		set[nset].n = n;
		set[nset].sdp = r.sdp;
		nset++;
	}
	closedir(d);
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 2000;
	double t_ours = 0, t_osip = 0;
	size_t bytes = 0;
	int nsdp = 0, sink = 0;

	osipdiff_init();
	for (size_t c = 0; c < sizeof(corpora) / sizeof(corpora[0]); c++)
		load(corpora[c].dir, corpora[c].suffix);
	for (int i = 0; i < nset; i++) {
		bytes += set[i].n;
		nsdp += set[i].sdp;
	}
	osipdiff_count_allocs();
	unsigned long a0 = osipdiff_allocs();
	for (int i = 0; i < nset; i++)
		sink += osipdiff_parse_osip(set[i].b, set[i].n, set[i].sdp);
	unsigned long allocs = osipdiff_allocs() - a0;

	for (int r = 0; r < rounds; r++)
		for (int i = 0; i < nset; i++) {
			int sdp;
			double t0 = now();
			sink += osipdiff_parse_ours(set[i].b, set[i].n, &sdp);
			double t1 = now();
			sink += osipdiff_parse_osip(set[i].b, set[i].n, set[i].sdp);
			double t2 = now();
			t_ours += t1 - t0;
			t_osip += t2 - t1;
			set[i].ours += t1 - t0;
			set[i].osip += t2 - t1;
		}
	double per = (double)rounds * nset;
	printf("osipbench: %d messages both accept (%d with SDP), mean %zu bytes, %d rounds\n", nset,
	       nsdp, nset ? bytes / (size_t)nset : 0, rounds);
	printf("  span scanner  %8.0f ns/message  0 allocations\n", t_ours / per);
	printf("  libosip2      %8.0f ns/message  %.1f allocations/message\n", t_osip / per,
	       nset ? (double)allocs / nset : 0.0);
	printf("  ratio         %8.1fx\n", t_ours > 0 ? t_osip / t_ours : 0.0);
	/* The mean is pulled by the few 60 KB messages: the median message too. */
	static double mo[MAXMSG], mx[MAXMSG], mb[MAXMSG];
	for (int i = 0; i < nset; i++) {
		mo[i] = set[i].ours / rounds;
		mx[i] = set[i].osip / rounds;
		mb[i] = (double)set[i].n;
	}
	printf("  median message (%.0f bytes): span scanner %.0f ns, libosip2 %.0f ns\n",
	       median(mb, nset), median(mo, nset), median(mx, nset));
	return sink == 42 ? 2 : 0;  /* keep the calls */
}
