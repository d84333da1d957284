/* Helpers the unit tests and the decision-path fuzzer share: an IPv4/UDP
 * datagram around a SIP payload, the Internet checksum, and a LAN-literal
 * finder written apart from the ALG's own scanner (stricter: a maximal run
 * of digits and dots that is exactly four components). */
#ifndef TEST_TESTPKT_H
#define TEST_TESTPKT_H
#include <stdint.h>
#include <string.h>

static inline int tp_dig(uint8_t c) { return c >= '0' && c <= '9'; }

/* One's-complement sum of p[0..n) added to s, folded and inverted. */
static inline uint16_t tp_csum(const uint8_t *p, uint32_t n, uint32_t s)
{
	for (uint32_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* pkt = IPv4 (no options, no checksums needed by the ALG) + UDP + m[0..n).
 * Returns the datagram's length. */
static inline uint32_t tp_udp4(uint8_t *pkt, uint32_t src, uint16_t sp, uint32_t dst, uint16_t dp,
			       const void *m, uint32_t n)
{
	uint32_t tot = 28 + n;

	memset(pkt, 0, 28);
	pkt[0] = 0x45;
	pkt[2] = (uint8_t)(tot >> 8);
	pkt[3] = (uint8_t)tot;
	pkt[8] = 64;
	pkt[9] = 17;
	for (int i = 0; i < 4; i++) {
		pkt[12 + i] = (uint8_t)(src >> (24 - 8 * i));
		pkt[16 + i] = (uint8_t)(dst >> (24 - 8 * i));
	}
	pkt[20] = (uint8_t)(sp >> 8);
	pkt[21] = (uint8_t)sp;
	pkt[22] = (uint8_t)(dp >> 8);
	pkt[23] = (uint8_t)dp;
	pkt[24] = (uint8_t)((8 + n) >> 8);
	pkt[25] = (uint8_t)(8 + n);
	memcpy(pkt + 28, m, n);
	return tot;
}

/* pkt = IPv6 (no extension headers) + UDP (checksum filled in: it is
 * mandatory over IPv6, RFC 8200 8.1) + m[0..n). Returns the length. */
static inline uint32_t tp_udp6(uint8_t *pkt, const uint8_t src[16], uint16_t sp, const uint8_t dst[16],
			       uint16_t dp, const void *m, uint32_t n)
{
	uint32_t ulen = 8 + n, s = 0;

	memset(pkt, 0, 48);
	pkt[0] = 0x60;
	pkt[4] = (uint8_t)(ulen >> 8);
	pkt[5] = (uint8_t)ulen;
	pkt[6] = 17;
	pkt[7] = 64;
	memcpy(pkt + 8, src, 16);
	memcpy(pkt + 24, dst, 16);
	pkt[40] = (uint8_t)(sp >> 8);
	pkt[41] = (uint8_t)sp;
	pkt[42] = (uint8_t)(dp >> 8);
	pkt[43] = (uint8_t)dp;
	pkt[44] = (uint8_t)(ulen >> 8);
	pkt[45] = (uint8_t)ulen;
	memcpy(pkt + 48, m, n);
	for (int i = 0; i < 32; i += 2)
		s += (uint32_t)(pkt[8 + i] << 8 | pkt[9 + i]);
	uint16_t c = tp_csum(pkt + 40, ulen, s + ulen + 17);
	c = c ? c : 0xffff;
	pkt[46] = (uint8_t)(c >> 8);
	pkt[47] = (uint8_t)c;
	return 40 + ulen;
}

/* Offset of the first dotted quad at or after `from` inside net/mask, or -1. */
static inline int64_t tp_find_lan(const uint8_t *b, uint32_t n, uint32_t from, uint32_t net, uint32_t mask)
{
	for (uint32_t p = from; p < n; p++) {
		if (!tp_dig(b[p]) || (p > 0 && (tp_dig(b[p - 1]) || b[p - 1] == '.')))
			continue;
		uint32_t q = p;
		while (q < n && (tp_dig(b[q]) || b[q] == '.'))
			q++;
		uint32_t t = q;
		while (t > p && b[t - 1] == '.')
			t--;
		uint32_t v = 0, comp = 0, o = 0, d = 0, ok = 1;
		for (uint32_t i = p; i <= t && ok; i++) {
			if (i == t || b[i] == '.') {
				if (d == 0 || d > 3 || o > 255)
					ok = 0;
				v = v << 8 | o;
				comp++;
				o = d = 0;
			} else {
				o = o * 10 + (uint32_t)(b[i] - '0');
				d++;
			}
		}
		if (ok && comp == 4 && (v & mask) == net)
			return p;
		p = q;
	}
	return -1;
}

#endif
