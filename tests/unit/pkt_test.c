/* pkt: IPv4 and IPv6 UDP framing (issue 13). The IPv6 parser walks the
 * extension headers a router may see before UDP, refuses what is not a
 * whole datagram of ours, and the builder's checksum covers the 128-bit
 * pseudo-header (RFC 8200 8.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "pkt.h"
#include "testpkt.h"

static const uint8_t SRC6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10 };
static const uint8_t DST6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0x01, 0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10 };

/* IPv6 header + `ext` bytes of extension headers (first next-header nh0)
 * + UDP + payload; the UDP checksum filled in by the test's own sum. */
static uint32_t mk6(uint8_t *p, uint8_t nh0, const uint8_t *ext, uint32_t next, const char *pl)
{
	uint32_t n = (uint32_t)strlen(pl), ulen = 8 + n, plen = next + ulen;

	memset(p, 0, 40);
	p[0] = 0x60;
	p[4] = (uint8_t)(plen >> 8);
	p[5] = (uint8_t)plen;
	p[6] = nh0;
	p[7] = 64;
	memcpy(p + 8, SRC6, 16);
	memcpy(p + 24, DST6, 16);
	if (next)
		memcpy(p + 40, ext, next);
	uint8_t *u = p + 40 + next;
	u[0] = 5060 >> 8; u[1] = 5060 & 255; u[2] = 5060 >> 8; u[3] = 5060 & 255;
	u[4] = (uint8_t)(ulen >> 8); u[5] = (uint8_t)ulen; u[6] = u[7] = 0;
	memcpy(u + 8, pl, n);
	/* pseudo-header sum, written out apart from pkt.c's */
	uint32_t s = 0;
	for (int i = 0; i < 16; i += 2)
		s += (uint32_t)(SRC6[i] << 8 | SRC6[i + 1]) + (uint32_t)(DST6[i] << 8 | DST6[i + 1]);
	s += ulen + 17;
	uint16_t c = tp_csum(u, ulen, s);
	c = c ? c : 0xffff;
	u[6] = (uint8_t)(c >> 8);
	u[7] = (uint8_t)c;
	return 40 + plen;
}

static void test_v6_plain(void **st)
{
	uint8_t p[256];
	struct pkt_udp u;
	struct addr a = addr_v6(SRC6);

	(void)st;
	uint32_t n = mk6(p, 17, NULL, 0, "OPTIONS");
	assert_int_equal(pkt_parse_udp(p, n, &u), 0);
	assert_int_equal(u.family, 6);
	assert_int_equal(u.l3len, 40);
	assert_true(addr_eq(&u.saddr, &a));
	assert_false(addr_is_v4(&u.daddr));
	assert_int_equal(u.sport, 5060);
	assert_int_equal(u.plen, 7);
	assert_memory_equal(u.payload, "OPTIONS", 7);
	/* the vector, computed apart (python: RFC 8200 pseudo-header sum) */
	assert_int_equal(p[46] << 8 | p[47], 0x3544);
	assert_int_equal(pkt_udp_csum(p, &u), 0);
	/* trailing bytes past the payload length (an Ethernet pad) are not ours */
	assert_int_equal(pkt_parse_udp(p, n + 6, &u), 0);
	assert_int_equal(u.plen, 7);
}

static void test_v6_ext_headers(void **st)
{
	uint8_t p[256];
	struct pkt_udp u;
	/* hop-by-hop (8 bytes, PadN) -> destination options (16 bytes) -> UDP */
	const uint8_t ext[24] = { 60, 0, 1, 4, 0, 0, 0, 0,
				  17, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };

	(void)st;
	uint32_t n = mk6(p, 0, ext, 24, "BYE");
	assert_int_equal(pkt_parse_udp(p, n, &u), 0);
	assert_int_equal(u.l3len, 64);
	assert_memory_equal(u.payload, "BYE", 3);
	assert_int_equal(pkt_udp_csum(p, &u), 0);
	/* a fragment header: refused, as an IPv4 fragment is */
	const uint8_t frag[8] = { 17, 0, 0, 0, 0, 0, 0, 1 };
	n = mk6(p, 44, frag, 8, "BYE");
	assert_int_equal(pkt_parse_udp(p, n, &u), -1);
	/* an extension header longer than the packet */
	const uint8_t big[8] = { 17, 200, 1, 4, 0, 0, 0, 0 };
	n = mk6(p, 0, big, 8, "BYE");
	assert_int_equal(pkt_parse_udp(p, n, &u), -1);
	/* TCP, ICMPv6, "no next header" */
	n = mk6(p, 6, NULL, 0, "x");
	assert_int_equal(pkt_parse_udp(p, n, &u), -1);
	n = mk6(p, 59, NULL, 0, "x");
	assert_int_equal(pkt_parse_udp(p, n, &u), -1);
	/* a chain of nine destination-options headers: bounded */
	uint8_t chain[72];
	for (int i = 0; i < 9; i++) {
		memset(chain + 8 * i, 0, 8);
		chain[8 * i] = i < 8 ? 60 : 17;
		chain[8 * i + 2] = 1;
		chain[8 * i + 3] = 4;
	}
	n = mk6(p, 60, chain, 72, "x");
	assert_int_equal(pkt_parse_udp(p, n, &u), -1);
	n = mk6(p, 60, chain + 8, 64, "x"); /* eight: still fine */
	assert_int_equal(pkt_parse_udp(p, n, &u), 0);
}

static void test_v6_malformed(void **st)
{
	uint8_t p[256];
	struct pkt_udp u;

	(void)st;
	uint32_t n = mk6(p, 17, NULL, 0, "OPTIONS");
	for (uint32_t k = 0; k < n; k++) /* every truncation */
		assert_int_equal(pkt_parse_udp(p, k, &u), -1);
	p[46] = p[47] = 0; /* zero UDP checksum: invalid over IPv6 */
	assert_int_equal(pkt_parse_udp(p, n, &u), -1);
	n = mk6(p, 17, NULL, 0, "OPTIONS");
	p[45] = 4; /* UDP length shorter than its header */
	assert_int_equal(pkt_parse_udp(p, n, &u), -1);
	n = mk6(p, 17, NULL, 0, "OPTIONS");
	p[5] = (uint8_t)(p[5] + 1); /* payload length past the buffer */
	assert_int_equal(pkt_parse_udp(p, n, &u), -1);
	n = mk6(p, 17, NULL, 0, "OPTIONS");
	p[0] = 0x50;
	assert_int_equal(pkt_parse_udp(p, n, &u), -1);
}

/* pkt_build over IPv6 (for NAT66 later): lengths and checksum right, the
 * extension headers kept. */
static void test_v6_build(void **st)
{
	uint8_t p[256], out[512];
	struct pkt_udp u, v;
	const uint8_t ext[8] = { 17, 0, 1, 4, 0, 0, 0, 0 };

	(void)st;
	uint32_t n = mk6(p, 60, ext, 8, "OPTIONS");
	assert_int_equal(pkt_parse_udp(p, n, &u), 0);
	int32_t m = pkt_build(p, &u, (const uint8_t *)"REGISTER sip:x", 14, out, sizeof(out));
	assert_int_equal(m, 40 + 8 + 8 + 14);
	assert_int_equal(pkt_parse_udp(out, (uint32_t)m, &v), 0);
	assert_int_equal(v.l3len, 48);
	assert_int_equal(v.plen, 14);
	assert_memory_equal(v.payload, "REGISTER sip:x", 14);
	assert_int_equal(out[4] << 8 | out[5], 8 + 8 + 14);
	assert_int_equal(pkt_udp_csum(out, &v), 0);
	assert_memory_equal(out + 40, ext, 8);
	/* what the test's own sum says of the result */
	uint8_t again[512];
	assert_int_equal(mk6(again, 60, ext, 8, "REGISTER sip:x"), (uint32_t)m);
	assert_memory_equal(again, out, (size_t)m);
	assert_int_equal(pkt_build(p, &u, (const uint8_t *)"x", 1, out, 40), -1);
}

/* IPv4 keeps its behaviour: addresses v4-mapped, l3len the IHL. */
static void test_v4(void **st)
{
	uint8_t p[256], out[256];
	struct pkt_udp u;

	(void)st;
	uint32_t n = tp_udp4(p, 0xc0a8010a, 5060, 0xcb007101, 5060, "OPTIONS", 7);
	assert_int_equal(pkt_parse_udp(p, n, &u), 0);
	assert_int_equal(u.family, 4);
	assert_int_equal(u.l3len, 20);
	assert_true(addr_is_v4(&u.saddr));
	assert_int_equal(addr_get_v4(&u.saddr), 0xc0a8010a);
	assert_int_equal(addr_get_v4(&u.daddr), 0xcb007101);
	int32_t m = pkt_build(p, &u, (const uint8_t *)"BYE", 3, out, sizeof(out));
	assert_int_equal(m, 31);
	assert_int_equal(pkt_parse_udp(out, (uint32_t)m, &u), 0);
	assert_int_equal(pkt_udp_csum(out, &u), 0);
	assert_int_equal(tp_csum(out, 20, 0), 0);
	p[6] = 0x20; /* more fragments */
	assert_int_equal(pkt_parse_udp(p, n, &u), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v6_plain),
		cmocka_unit_test(test_v6_ext_headers),
		cmocka_unit_test(test_v6_malformed),
		cmocka_unit_test(test_v6_build),
		cmocka_unit_test(test_v4),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
