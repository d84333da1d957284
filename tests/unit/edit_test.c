/* edit: the printf-free formatters the packet path uses give the bytes
 * snprintf would (every width of number, both ends of the address range),
 * and edit_add_hostport writes ":port" only when asked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "edit.h"

static void test_fmt_u32(void **st)
{
	const uint32_t v[] = { 0, 1, 9, 10, 99, 100, 5060, 65535, 65536, 999999999, 1000000000, 4294967295u };
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char want[16], got[16] = { 0 };
		int n = snprintf(want, sizeof(want), "%u", v[i]);
		assert_int_equal(edit_fmt_u32(got, v[i]), n);
		assert_memory_equal(got, want, (size_t)n);
	}
}

static void test_fmt_ipv4(void **st)
{
	const uint32_t v[] = { 0, 0xffffffffu, 0xcb007101u, 0xc0a84d0au, 0x0a000001u, 0x01020304u };
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char want[16], got[ADDR_STRLEN];
		memset(got, 'x', sizeof(got));
		int n = snprintf(want, sizeof(want), "%u.%u.%u.%u", v[i] >> 24, (v[i] >> 16) & 255,
				 (v[i] >> 8) & 255, v[i] & 255);
		struct addr a = addr_v4(v[i]);
		/* IPv4 has no brackets, in a URI or not */
		assert_int_equal(edit_fmt_addr(got, &a, 1), n);
		assert_string_equal(got, want);
		assert_int_equal(edit_fmt_addr(got, &a, 0), n);
		assert_string_equal(got, want);
	}
}

/* IPv6: bracketed in URIs and Via (RFC 5118), bare in SDP c=/o= (RFC 4566) */
static void test_fmt_ipv6(void **st)
{
	char got[ADDR_STRLEN];
	struct addr a;

	(void)st;
	assert_true(addr_parse_str("2001:DB8:77:0:0:0:0:10", &a));
	assert_int_equal(edit_fmt_addr(got, &a, 1), 17);
	assert_string_equal(got, "[2001:db8:77::10]");
	assert_int_equal(edit_fmt_addr(got, &a, 0), 15);
	assert_string_equal(got, "2001:db8:77::10");
}

static void test_hostport_and_num(void **st)
{
	static struct edit_list l;
	const char *in = "Via: SIP/2.0/UDP 192.168.77.10:5060;rport\r\nContent-Length: 12\r\n";
	uint8_t out[256];

	edit_init(&l);
	assert_int_equal(edit_add_hostport(&l, 17, 18, "203.0.113.1", 11, 61000), 0);
	assert_int_equal(edit_add_num(&l, 59, 2, 1234), 0);
	int64_t n = edit_apply(&l, (const uint8_t *)in, (uint32_t)strlen(in), out, sizeof(out));
	const char *want = "Via: SIP/2.0/UDP 203.0.113.1:61000;rport\r\nContent-Length: 1234\r\n";
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, strlen(want));
	edit_init(&l);
	assert_int_equal(edit_add_hostport(&l, 17, 18, "203.0.113.1", 11, -1), 0);
	n = edit_apply(&l, (const uint8_t *)in, (uint32_t)strlen(in), out, sizeof(out));
	want = "Via: SIP/2.0/UDP 203.0.113.1;rport\r\nContent-Length: 12\r\n";
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, strlen(want));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fmt_u32),
		cmocka_unit_test(test_fmt_ipv4),
		cmocka_unit_test(test_fmt_ipv6),
		cmocka_unit_test(test_hostport_and_num),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
