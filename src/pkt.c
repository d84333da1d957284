#include "pkt.h"

#include <string.h>

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void wr16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }

/* IPv6 next-header values (RFC 8200 4.1). */
#define NH_HOPOPTS 0
#define NH_ROUTING 43
#define NH_FRAGMENT 44
#define NH_DSTOPTS 60
#define NH_UDP 17
/* Extension headers walked before giving up: the RFC allows each once
 * (destination options twice); more is not a packet a phone sends. */
#define NH_MAX 8

static int parse_v4(const uint8_t *ip, uint32_t len, struct pkt_udp *u, uint32_t *end)
{
	if (len < 20)
		return -1;
	uint32_t ihl = (ip[0] & 0x0f) * 4u;
	uint32_t tot = rd16(ip + 2);
	if (ihl < 20 || tot < ihl + 8 || tot > len || ip[9] != NH_UDP)
		return -1;
	/* conntrack hands over reassembled datagrams; a fragment here is not ours. */
	if (rd16(ip + 6) & 0x3fff)
		return -1;
	u->saddr = addr_v4((uint32_t)ip[12] << 24 | ip[13] << 16 | ip[14] << 8 | ip[15]);
	u->daddr = addr_v4((uint32_t)ip[16] << 24 | ip[17] << 16 | ip[18] << 8 | ip[19]);
	u->family = 4;
	u->l3len = ihl;
	*end = tot;
	return 0;
}

static int parse_v6(const uint8_t *ip, uint32_t len, struct pkt_udp *u, uint32_t *end)
{
	if (len < 40)
		return -1;
	uint32_t tot = 40u + rd16(ip + 4);  /* payload length 0 = jumbogram: refused below */
	if (tot > len)
		return -1;
	uint8_t nh = ip[6];
	uint32_t off = 40;
	for (int k = 0; nh != NH_UDP; k++) {
		/* RFC 8200 4.3-4.6: these three share the (next, length in
		 * 8-octet units not counting the first 8) layout. A fragment
		 * is refused as an IPv4 fragment is: the kernel reassembles
		 * before conntrack, so one here is not a datagram of ours. */
		if (k == NH_MAX || (nh != NH_HOPOPTS && nh != NH_ROUTING && nh != NH_DSTOPTS))
			return -1;
		if (off + 8 > tot)
			return -1;
		uint32_t hl = 8u + ip[off + 1] * 8u;
		if (off + hl > tot)
			return -1;
		nh = ip[off];
		off += hl;
	}
	if (off + 8 > tot)
		return -1;
	u->saddr = addr_v6(ip + 8);
	u->daddr = addr_v6(ip + 24);
	u->family = 6;
	u->l3len = off;
	*end = tot;
	return 0;
}

int pkt_parse_udp(const uint8_t *ip, uint32_t len, struct pkt_udp *u)
{
	uint32_t tot;

	if (len < 1)
		return -1;
	if ((ip[0] >> 4) == 4) {
		if (parse_v4(ip, len, u, &tot) < 0)
			return -1;
	} else if ((ip[0] >> 4) == 6) {
		if (parse_v6(ip, len, u, &tot) < 0)
			return -1;
	} else {
		return -1;
	}
	const uint8_t *udp = ip + u->l3len;
	uint32_t ulen = rd16(udp + 4);
	if (ulen < 8 || u->l3len + ulen > tot)
		return -1;
	/* RFC 8200 8.1: a zero UDP checksum over IPv6 is invalid (the kernel
	 * drops it before us anyway; a crafted one is not ours to forward). */
	if (u->family == 6 && rd16(udp + 6) == 0)
		return -1;
	u->sport = rd16(udp);
	u->dport = rd16(udp + 2);
	u->payload = udp + 8;
	u->plen = ulen - 8;
	return 0;
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, uint32_t n)
{
	while (n > 1) {
		sum += rd16(p);
		p += 2;
		n -= 2;
	}
	if (n)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Pseudo-header sum: RFC 768 (IPv4: 12 bytes) or RFC 8200 8.1 (IPv6: both
 * 128-bit addresses, the upper-layer length, next header 17). The addresses
 * sit at the same place in `ip` before and after a rewrite. */
static uint32_t pseudo(const uint8_t *ip, uint8_t family, uint32_t ulen)
{
	if (family == 6)
		return csum_add(0, ip + 8, 32) + (ulen >> 16) + (ulen & 0xffff) + NH_UDP;
	return csum_add(0, ip + 12, 8) + NH_UDP + ulen;
}

uint16_t pkt_udp_csum(const uint8_t *ip, const struct pkt_udp *u)
{
	uint32_t ulen = 8 + u->plen;
	return csum_fold(csum_add(pseudo(ip, u->family, ulen), ip + u->l3len, ulen));
}

int32_t pkt_build(const uint8_t *ip, const struct pkt_udp *u, const uint8_t *payload,
		  uint32_t plen, uint8_t *out, uint32_t cap)
{
	uint32_t tot = u->l3len + 8 + plen;

	if (tot > cap || (u->family == 6 ? tot - 40 : tot) > 65535)
		return -1;
	memcpy(out, ip, u->l3len + 8);
	if (payload != out + u->l3len + 8)
		memmove(out + u->l3len + 8, payload, plen);
	if (u->family == 6) {
		/* No header checksum in IPv6; the payload length counts the
		 * extension headers too. */
		wr16(out + 4, (uint16_t)(tot - 40));
	} else {
		wr16(out + 2, (uint16_t)tot);
		wr16(out + 10, 0);
		wr16(out + 10, csum_fold(csum_add(0, out, u->l3len)));
	}
	uint8_t *udp = out + u->l3len;
	wr16(udp + 4, (uint16_t)(8 + plen));
	wr16(udp + 6, 0);
	uint16_t c = csum_fold(csum_add(pseudo(out, u->family, 8 + plen), udp, 8 + plen));
	/* 0 means "no checksum" on the wire (and is invalid over IPv6). */
	wr16(udp + 6, c ? c : 0xffff);
	return (int32_t)tot;
}
