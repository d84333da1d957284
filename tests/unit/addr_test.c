/* addr: parsing and formatting of both families (RFC 4291 text forms,
 * RFC 5952 output, RFC 5118 bracketed references), prefixes, and the
 * v4-mapped form that lets one code path carry IPv4. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "addr.h"

static struct addr P(const char *s)
{
	struct addr a;
	memset(&a, 0xee, sizeof(a));
	assert_true(addr_parse_str(s, &a));
	return a;
}

static void roundtrip(const char *in, const char *out, int br)
{
	char buf[ADDR_STRLEN];
	struct addr a = P(in);
	uint32_t n = addr_fmt(buf, &a, br);
	assert_string_equal(buf, out);
	assert_int_equal(n, strlen(out));
}

static void test_v4(void **st)
{
	(void)st;
	struct addr a = P("192.168.77.10");
	assert_true(addr_is_v4(&a));
	assert_int_equal(addr_get_v4(&a), 0xc0a84d0a);
	struct addr b = addr_v4(0xc0a84d0a);
	assert_true(addr_eq(&a, &b));
	roundtrip("0.0.0.0", "0.0.0.0", 1);
	roundtrip("255.255.255.255", "255.255.255.255", 0);
	assert_true(addr_is_any(&(struct addr){ { 0 } }));
	struct addr z = addr_v4(0);
	assert_true(addr_is_any(&z));
	assert_false(addr_is_any(&a));
}

static void test_v6_forms(void **st)
{
	(void)st;
	roundtrip("2001:db8::1", "2001:db8::1", 0);
	roundtrip("2001:DB8:0:0:0:0:0:1", "[2001:db8::1]", 1);
	roundtrip("[2001:db8::1]", "2001:db8::1", 0);
	roundtrip("::", "::", 0);
	roundtrip("::1", "::1", 0);
	roundtrip("1::", "1::", 0);
	/* RFC 5952 4.2.2: a single zero group is not compressed; 4.2.3: the
	 * first of two equal runs is. */
	roundtrip("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1", 0);
	roundtrip("2001:0:0:1:0:0:0:1", "2001:0:0:1::1", 0);
	roundtrip("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1", 0);
	roundtrip("fe80::0a:00ff", "fe80::a:ff", 0);
	/* a dotted tail; the v4-mapped form is the IPv4 address */
	roundtrip("64:ff9b::192.0.2.33", "64:ff9b::c000:221", 0);
	struct addr m = P("::ffff:10.0.0.1");
	assert_true(addr_is_v4(&m));
	assert_int_equal(addr_get_v4(&m), 0x0a000001);
	struct addr v6 = P("2001:db8:77::10");
	assert_false(addr_is_v4(&v6));
	assert_false(addr_is_any(&v6));
	assert_int_equal(v6.b[0], 0x20);
	assert_int_equal(v6.b[15], 0x10);
}

static void test_refused(void **st)
{
	(void)st;
	static const char *bad[] = {
		"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", "01234.1.1.1", "1..2.3",
		":", ":::", "1:2", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::1", "1:2:3:4:5:6:7:8::",
		"2001:db8::1:", ":2001:db8::1", "g::1", "[2001:db8::1", "2001:db8::1]", "[1.2.3.4]",
		"[]", "::1.2.3", "1:2:3:4:5:6:7:1.2.3.4", "2001:db8:::1",
		/* RFC 5118 4.3 (3-colons) and a dotted tail too long */
		"2001:db8:::192.0.2.1", "2001:db8::9:1.2.3.4.5",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct addr a;
		memset(&a, 0x5a, sizeof(a));
		if (addr_parse_str(bad[i], &a))
			fail_msg("accepted \"%s\"", bad[i]);
		for (int j = 0; j < 16; j++)
			assert_int_equal(a.b[j], 0x5a);
	}
	/* 8 groups with a :: is one too many; 7 with a :: is fine */
	struct addr a;
	assert_true(addr_parse_str("1:2:3:4:5:6:7::", &a));
	assert_true(addr_parse_str("1:2:3:4:5:6::1.2.3.4", &a) == 0);
	assert_true(addr_parse_str("1:2:3:4:5::1.2.3.4", &a));
}

static void test_prefix(void **st)
{
	(void)st;
	struct addr lan4 = P("192.168.0.0"), lan6 = P("2001:db8:77::");
	struct addr p4 = P("192.168.77.10"), o4 = P("192.169.0.1"), p6 = P("2001:db8:77::10"),
		    o6 = P("2001:db8:78::10");
	assert_true(addr_in_prefix(&p4, &lan4, 16));
	assert_false(addr_in_prefix(&o4, &lan4, 16));
	assert_true(addr_in_prefix(&o4, &lan4, 0));
	assert_true(addr_in_prefix(&p6, &lan6, 64));
	assert_false(addr_in_prefix(&o6, &lan6, 64));
	assert_true(addr_in_prefix(&o6, &lan6, 44));
	assert_false(addr_in_prefix(&o6, &lan6, 47));
	/* families never match, even with a zero-length prefix */
	assert_false(addr_in_prefix(&p4, &lan6, 0));
	assert_false(addr_in_prefix(&p6, &lan4, 0));
	assert_false(addr_in_prefix(&p4, &lan4, 33));
	assert_true(addr_in_prefix(&p6, &p6, 128));
	assert_false(addr_in_prefix(&p6, &p6, 129));
}

static void test_hash(void **st)
{
	(void)st;
	struct addr a = P("10.0.0.1"), b = P("::ffff:10.0.0.1"), c = P("10.0.0.2");
	assert_true(addr_hash(&a) == addr_hash(&b));
	assert_true(addr_hash(&a) != addr_hash(&c));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v4),
		cmocka_unit_test(test_v6_forms),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_prefix),
		cmocka_unit_test(test_hash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
