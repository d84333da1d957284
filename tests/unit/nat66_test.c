/* nat66: the prefix translation (vectors computed by hand from the bits),
 * the IPv6 literal scanner on the forms SIP and SDP carry (RFC 5118), and
 * the text copy the dialog key is built with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "nat66.h"

static struct addr P(const char *s)
{
	struct addr a;
	assert_true(addr_parse_str(s, &a));
	return a;
}

static void map_ok(const char *from, const char *to, unsigned plen, const char *in, const char *want)
{
	struct addr f = P(from), t = P(to), a = P(in), o;
	char buf[ADDR_STRLEN];

	memset(&o, 0xee, sizeof(o));
	assert_int_equal(nat66_map(&f, &t, plen, &a, &o), 1);
	addr_fmt(buf, &o, 0);
	assert_string_equal(buf, want);
	/* and back: the same function with the prefixes swapped */
	struct addr back;
	assert_int_equal(nat66_map(&t, &f, plen, &o, &back), 1);
	assert_true(addr_eq(&back, &a));
}

static void test_map(void **st)
{
	(void)st;
	/* the lab's /64: host bits (the last 64) kept */
	map_ok("fd00:77::", "2001:db8:78::", 64, "fd00:77::10", "2001:db8:78::10");
	map_ok("fd00:77::", "2001:db8:78::", 64, "fd00:77::a:b:c:d", "2001:db8:78:0:a:b:c:d");
	/* RFC 6296 3.1's /48 pair. NPTv6 would give 2001:db8:1:d550::1234
	 * (the checksum-neutral word); nft's prefix NAT, which the router
	 * runs, keeps the subnet word: 2001:db8:1:1::1234. */
	map_ok("fd01:203:405::", "2001:db8:1::", 48, "fd01:203:405:1::1234", "2001:db8:1:1::1234");
	/* not on a byte: /60, the 4th group 0x005a = 0x005 | 0xa, the public
	 * 0x00a0 -> 0x00a | 0xa = 0x00aa */
	map_ok("fd00:0:0:50::", "2001:db8:0:a0::", 60, "fd00:0:0:5a::1", "2001:db8:0:aa::1");
	/* /57: the 8th byte is 1 prefix bit and 7 host bits: 0x7f keeps its
	 * 0x7f under the public 0x80 (-> 0xff), the 7th byte 0x03 -> 0x00 */
	map_ok("fd00:1:2:300::", "2001:db8:9:80::", 57, "fd00:1:2:37f::7", "2001:db8:9:ff::7");
	/* /128: one address */
	map_ok("fd00::5", "2001:db8::9", 128, "fd00::5", "2001:db8::9");
}

static void test_map_refused(void **st)
{
	(void)st;
	struct addr f = P("fd00:77::"), t = P("2001:db8:78::"), o = P("::1"), keep = o;
	struct addr out = P("fd00:78::10"), v4 = P("192.168.77.10"), m4 = P("::ffff:192.168.77.10");

	assert_int_equal(nat66_map(&f, &t, 64, &out, &o), 0);
	assert_int_equal(nat66_map(&f, &t, 64, &v4, &o), 0);
	assert_int_equal(nat66_map(&f, &t, 64, &m4, &o), 0);
	assert_int_equal(nat66_map(&f, &t, 0, &f, &o), 0);
	assert_int_equal(nat66_map(&f, &t, 129, &f, &o), 0);
	assert_true(addr_eq(&o, &keep));
}

/* Every literal nat66_next finds in text, as "addr@offset" joined by ' '. */
static void scan(const char *text, const char *want)
{
	const uint8_t *b = (const uint8_t *)text;
	struct span s = { 0, (uint32_t)strlen(text) }, h;
	uint32_t pos = 0;
	struct addr a;
	char got[512] = "", one[80], t[ADDR_STRLEN];
	int guard = 0;

	while (nat66_next(b, s, &pos, &h, &a) && guard++ < 32) {
		addr_fmt(t, &a, 0);
		snprintf(one, sizeof(one), "%s%s@%u", got[0] ? " " : "", t, h.off);
		strncat(got, one, sizeof(got) - strlen(got) - 1);
		/* the hit is the literal's own text */
		struct addr again;
		assert_true(addr_parse(b + h.off, h.len, &again));
		assert_true(addr_eq(&again, &a));
	}
	assert_int_equal(pos, s.len);
	assert_string_equal(got, want);
}

static void test_scan(void **st)
{
	(void)st;
	scan("Via: SIP/2.0/UDP [fd00:77::10]:5060;branch=z9hG4bK1;received=fd00:77::10",
	     "fd00:77::10@18 fd00:77::10@61");
	scan("Contact: <sip:alice@[fd00:77::10]:5062;transport=udp>", "fd00:77::10@21");
	scan("o=- 1 1 IN IP6 fd00:77::10\r\nc=IN IP6 FD00:77:0:0:0:0:0:10\r\n",
	     "fd00:77::10@15 fd00:77::10@37");
	/* dotted tail; a sentence's full stop; the scheme's colon */
	scan("a ::ffff:1.2.3.4 is v4; fd00::1.2.3.4 is not.", "fd00::102:304@24");
	scan("see fd00::1.", "fd00::1@4");
	scan("sip:fd00::1", "fd00::1@4");
	/* not addresses: glued to names, a zone, times, MACs, one colon */
	scan("x1::2 1::2y fe80::1%eth0 12:30:45 00:1b:44:11:3a:b7 a:b", "");
	scan("Call-ID: 3c8f@fd00:77::10", "fd00:77::10@14");
	scan("", "");
	/* a run too long to be one address */
	scan("1:2:3:4:5:6:7:8:9:10:11:12:13:14:15:16:17", "");
}

static void test_map_text(void **st)
{
	(void)st;
	struct addr l = P("fd00:77::"), u = P("2001:db8:78::");
	const char *in = "c0ffee@[fd00:77:0::10] fd00:78::1 2001:db8:78::11";
	const uint8_t *b = (const uint8_t *)in;
	struct span s = { 0, (uint32_t)strlen(in) };
	uint8_t out[128];
	uint32_t n;

	n = nat66_map_text(b, s, &l, &u, 64, out, sizeof(out));
	assert_int_equal(n, strlen("c0ffee@[2001:db8:78::10] fd00:78::1 2001:db8:78::11"));
	assert_memory_equal(out, "c0ffee@[2001:db8:78::10] fd00:78::1 2001:db8:78::11", n);
	n = nat66_map_text(b, s, &u, &l, 64, out, sizeof(out));
	assert_memory_equal(out, "c0ffee@[fd00:77:0::10] fd00:78::1 fd00:77::11", n);
	/* from == to: the canonical text */
	n = nat66_map_text(b, s, &l, &l, 64, out, sizeof(out));
	assert_memory_equal(out, "c0ffee@[fd00:77::10] fd00:78::1 2001:db8:78::11", n);
	/* a buffer too small is cut, never overrun */
	memset(out, 0x55, sizeof(out));
	n = nat66_map_text(b, s, &l, &u, 64, out, 10);
	assert_true(n <= 10);
	assert_int_equal(out[10], 0x55);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map),
		cmocka_unit_test(test_map_refused),
		cmocka_unit_test(test_scan),
		cmocka_unit_test(test_map_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
