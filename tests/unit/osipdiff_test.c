/* libosip2 as the span scanner's second opinion (issue 13 point 5): every
 * message of the corpora is parsed by sip_parse/sdp_parse and by
 * osip_message_parse/sdp_message_parse, and where both accept, the fields
 * the ALG acts on must agree (tests/osip/osipdiff.h). A difference is either
 * a bug in our scanner (fixed, with its own unit test in sipmsg_test.c) or
 * written in tests/osip/deliberate.tsv with the reason; any other
 * difference fails, and so does an entry of the list that no longer
 * matches anything (the list cannot go stale).
 *   OSIPDIFF_VERBOSE=1  print every difference and every accept/reject split */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../osip/osipdiff.h"
#include "sipmsg.h"

#define LIST "tests/osip/deliberate.tsv"

/* The corpora: the sipmsg unit/seed corpus, the rewrite corpus, the RFC
 * 4475/5118 torture messages and the malformed corpus. */
static const struct { const char *dir; const char *suffix; } corpora[] = {
	{ "tests/fuzz/corpus/sipmsg", "" },
	{ "tests/data/rewrite", ".in" },
	{ "tests/data/torture/rfc4475", ".dat" },
	{ "tests/data/torture/rfc5118", "" },
	{ "tests/data/malformed", ".in.bin" },
};

static uint8_t buf[70000];
static int verbose;

static int ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), k = strlen(suf);
	return n >= k && strcmp(s + n - k, suf) == 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

struct tally {
	int files, both, ours_only, osip_only, neither, sdp_both, diffs, listed, unlisted;
};

static void one(const char *path, struct tally *t)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);

	struct osipdiff r;
	osipdiff_run(buf, n, &r);
	t->files++;
	if (r.compared)
		t->both++;
	else if (r.ours_rc == SIP_OK)
		t->ours_only++;
	else if (r.osip_rc == 0)
		t->osip_only++;
	else
		t->neither++;
	t->sdp_both += r.sdp_compared;
	if (verbose && !r.compared && (r.ours_rc == SIP_OK || r.osip_rc == 0))
		printf("  split %s: ours %s, osip %d\n", path, sip_strerror(r.ours_rc), r.osip_rc);
	if (verbose && r.sdp && r.compared && !r.sdp_compared)
		printf("  sdp split %s: ours %d, osip %d\n", path, r.sdp_ours_rc, r.sdp_osip_rc);
	for (int i = 0; i < r.ndiff; i++) {
		int ok = osipdiff_listed(path, &r.d[i]);
		t->diffs++;
		if (ok)
			t->listed++;
		else
			t->unlisted++;
		if (!ok || verbose)
			printf("  %s %s\t%s=%s\t(ours \"%s\", libosip2 \"%s\")\n", ok ? "listed" : "NEW   ",
			       path, r.d[i].field, r.d[i].kind, r.d[i].ours, r.d[i].osip);
	}
}

static void test_corpora(void **st)
{
	(void)st;
	struct tally t = { 0 };

	assert_true(osipdiff_list_load(LIST) >= 0);
	for (size_t c = 0; c < sizeof(corpora) / sizeof(corpora[0]); c++) {
		struct dirent **ent;
		int n = scandir(corpora[c].dir, &ent, NULL, by_name);
		assert_true(n > 0);
		for (int i = 0; i < n; i++) {
			const char *nm = ent[i]->d_name;
			char path[512];
			if (nm[0] != '.' && ends_with(nm, corpora[c].suffix) &&
			    !ends_with(nm, ".py") && !ends_with(nm, ".tsv")) {
				snprintf(path, sizeof(path), "%s/%s", corpora[c].dir, nm);
				one(path, &t);
			}
			free(ent[i]);
		}
		free(ent);
	}
	printf("osipdiff: %d messages: both accept %d (SDP compared %d), only ours %d, "
	       "only libosip2 %d, neither %d; differences %d (%d listed, %d new)\n",
	       t.files, t.both, t.sdp_both, t.ours_only, t.osip_only, t.neither, t.diffs,
	       t.listed, t.unlisted);
	/* Enough was compared for the test to mean something. */
	assert_true(t.files >= 100);
	assert_true(t.both >= 50);
	assert_true(t.sdp_both >= 20);
	assert_int_equal(t.unlisted, 0);
	assert_int_equal(osipdiff_list_unused(), 0);
}

int main(void)
{
	verbose = getenv("OSIPDIFF_VERBOSE") && atoi(getenv("OSIPDIFF_VERBOSE"));
	osipdiff_init();
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_corpora) };
	return cmocka_run_group_tests_name("osipdiff", tests, NULL, NULL);
}
