/* The JSON writer on every byte string that sipalgctl may have to print:
 * the Call-ID of each RFC 4475 / RFC 5118 torture message (and, to cover
 * every byte they hold, each whole message), and all 256 byte values.
 * Each result is checked by a strict C decoder (RFC 8259 string grammar,
 * ASCII only) that must give back exactly the original bytes, then the lot
 * is parsed by python3's json module when python3 is there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "json.h"

#define DIR "tests/data/torture/"

static int hexv(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* Decode one JSON string at s[0..n) into out; -1 if it is not exactly one
 * valid JSON string or holds a code point > U+00FF (json.h's contract). */
static long decode(const char *s, size_t n, unsigned char *out)
{
	size_t i = 1;
	long o = 0;

	if (n < 2 || s[0] != '"' || s[n - 1] != '"')
		return -1;
	while (i < n - 1) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f || c == '"')
			return -1;
		if (c != '\\') {
			out[o++] = c;
			i++;
			continue;
		}
		if (i + 1 >= n - 1)
			return -1;
		c = (unsigned char)s[i + 1];
		if (c == '"' || c == '\\' || c == '/') {
			out[o++] = c;
			i += 2;
		} else if (c == 'u') {
			if (i + 6 > n - 1 || s[i + 2] != '0' || s[i + 3] != '0')
				return -1;
			int h = hexv(s[i + 4]), l = hexv(s[i + 5]);
			if (h < 0 || l < 0)
				return -1;
			out[o++] = (unsigned char)(h << 4 | l);
			i += 6;
		} else {
			return -1;
		}
	}
	return o;
}

static FILE *pyin;
static int checked;

static void check_one(const unsigned char *b, size_t n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	unsigned char *back = malloc(n + 1);

	assert_non_null(m);
	json_str(m, b, n);
	assert_int_equal(fclose(m), 0);
	long got = decode(buf, len, back);
	if (got != (long)n || memcmp(back, b, n) != 0)
		fail_msg("JSON string does not decode to the input: %s", buf);
	if (pyin)
		fprintf(pyin, "%s%s", checked ? "," : "", buf);
	checked++;
	free(back);
	free(buf);
}

/* The raw value of every Call-ID / i header line (the bytes up to the line
 * end, whatever they are). */
static int callids(const unsigned char *msg, size_t n)
{
	int found = 0;

	for (size_t i = 0; i < n; i++) {
		if (i && msg[i - 1] != '\n')
			continue;
		size_t k;
		if (n - i > 7 && !strncasecmp((const char *)msg + i, "call-id", 7))
			k = i + 7;
		else if (n - i > 1 && (msg[i] == 'i' || msg[i] == 'I') && (msg[i + 1] == ':' || msg[i + 1] == ' '))
			k = i + 1;
		else
			continue;
		while (k < n && (msg[k] == ' ' || msg[k] == '\t'))
			k++;
		if (k >= n || msg[k] != ':')
			continue;
		k++;
		size_t e = k;
		while (e < n && msg[e] != '\r' && msg[e] != '\n')
			e++;
		check_one(msg + k, e - k);
		found++;
	}
	return found;
}

static void test_torture_callids(void **st)
{
	FILE *man = fopen(DIR "MANIFEST.tsv", "r");
	char line[1024], path[1100];
	static unsigned char msg[70000];
	int files = 0, ids = 0;

	assert_non_null(man);
	pyin = getenv("JSON_TEST_NO_PYTHON") ? NULL : popen(
		"python3 -c 'import json,sys; v=json.load(sys.stdin); assert isinstance(v,list); "
		"print(\"python3 json: %d strings parsed\" % len(v))'", "w");
	if (pyin)
		fputc('[', pyin);
	while (fgets(line, sizeof(line), man)) {
		char *tab = strchr(line, '\t');
		if (!tab || !strncmp(line, "file\t", 5))
			continue;
		*tab = '\0';
		snprintf(path, sizeof(path), DIR "%s", line);
		FILE *f = fopen(path, "rb");
		assert_non_null(f);
		size_t n = fread(msg, 1, sizeof(msg), f);
		fclose(f);
		ids += callids(msg, n);
		check_one(msg, n);
		files++;
	}
	fclose(man);
	for (int c = 0; c < 256; c++) {
		unsigned char b = (unsigned char)c;
		check_one(&b, 1);
	}
	if (pyin) {
		fputs("]\n", pyin);
		assert_int_equal(pclose(pyin), 0);
	}
	print_message("%d torture files, %d Call-ID values, %d strings checked\n", files, ids, checked);
	assert_true(files >= 40);
	assert_true(ids >= files - 5); /* a few torture messages lack a Call-ID on purpose */
}

static void test_other_writers(void **st)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	json_ip4(m, 0xc0a8010a, 1);
	fputc(' ', m);
	json_ip4(m, 0, 1);
	fputc(' ', m);
	json_ipport4(m, 0xcb007101, 5060);
	fputc(' ', m);
	struct addr a6, none = { { 0 } };
	assert_true(addr_parse_str("2001:db8:77::10", &a6));
	json_ip(m, &a6, 1);
	fputc(' ', m);
	json_ip(m, &none, 1);
	fputc(' ', m);
	json_ipport(m, &a6, 16800);
	fputc(' ', m);
	json_cstr(m, "a\"b\\c\n");
	fclose(m);
	assert_string_equal(buf, "\"192.168.1.10\" null \"203.0.113.1:5060\" \"2001:db8:77::10\" null "
				 "\"[2001:db8:77::10]:16800\" \"a\\\"b\\\\c\\u000a\"");
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_torture_callids),
		cmocka_unit_test(test_other_writers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
