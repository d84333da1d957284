/* libFuzzer target: the differential test of tests/unit/osipdiff_test.c on
 * arbitrary bytes. Our span scanner and libosip2 parse the same input;
 * where both accept it, the fields the ALG acts on must agree, or the
 * difference must be a class on the deliberate list (the "*" entries of
 * tests/osip/deliberate.tsv). Anything else traps with both readings on
 * stderr. libosip2 itself is not instrumented (the Debian library): the
 * coverage that guides the fuzzer is our scanner's and the comparison's.
 *   OSIPDIFF_FUZZ_LOG=1  print differences instead of trapping (to survey) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../osip/osipdiff.h"

static int log_only;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	osipdiff_init();
	if (osipdiff_list_load("tests/osip/deliberate.tsv") < 0)
		abort();
	log_only = getenv("OSIPDIFF_FUZZ_LOG") != NULL;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct osipdiff r;

	if (size > 65535)
		return 0;
	osipdiff_run(data, size, &r);
	for (int i = 0; i < r.ndiff; i++) {
		if (osipdiff_listed("*", &r.d[i]))
			continue;
		fprintf(stderr, "INVARIANT: osipdiff: %s=%s: ours \"%s\", libosip2 \"%s\"\n",
			r.d[i].field, r.d[i].kind, r.d[i].ours, r.d[i].osip);
		if (!log_only)
			__builtin_trap();
		const char *dump = getenv("OSIPDIFF_FUZZ_DUMP");
		if (dump) {
			/* one example input per field, to survey */
			char path[512];
			snprintf(path, sizeof(path), "%s/%s=%s", dump, r.d[i].field, r.d[i].kind);
			FILE *f = fopen(path, "wb");
			if (f) {
				fwrite(data, 1, size, f);
				fclose(f);
			}
		}
	}
	return 0;
}
