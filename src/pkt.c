#include "pkt.h"

#include <string.h>

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
static void wr16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }

int pkt_parse_udp(const uint8_t *ip, uint32_t len, struct pkt_udp *u)
{
	if (len < 20 || (ip[0] >> 4) != 4)
		return -1;
	uint32_t ihl = (ip[0] & 0x0f) * 4u;
	uint32_t tot = rd16(ip + 2);
	if (ihl < 20 || tot < ihl + 8 || tot > len || ip[9] != 17)
		return -1;
	/* conntrack hands over reassembled datagrams; a fragment here is not ours. */
	if (rd16(ip + 6) & 0x3fff)
		return -1;
	const uint8_t *udp = ip + ihl;
	uint32_t ulen = rd16(udp + 4);
	if (ulen < 8 || ihl + ulen > tot)
		return -1;
	u->saddr = rd32(ip + 12);
	u->daddr = rd32(ip + 16);
	u->sport = rd16(udp);
	u->dport = rd16(udp + 2);
	u->ihl = ihl;
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

int32_t pkt_build(const uint8_t *ip, const struct pkt_udp *u, const uint8_t *payload,
		  uint32_t plen, uint8_t *out, uint32_t cap)
{
	uint32_t tot = u->ihl + 8 + plen;

	if (tot > cap || tot > 65535)
		return -1;
	memcpy(out, ip, u->ihl + 8);
	if (payload != out + u->ihl + 8)
		memmove(out + u->ihl + 8, payload, plen);
	wr16(out + 2, (uint16_t)tot);
	wr16(out + 10, 0);
	wr16(out + 10, csum_fold(csum_add(0, out, u->ihl)));
	uint8_t *udp = out + u->ihl;
	wr16(udp + 4, (uint16_t)(8 + plen));
	wr16(udp + 6, 0);
	uint32_t sum = csum_add(0, out + 12, 8);  /* pseudo header: addresses */
	sum += 17 + 8 + plen;
	sum = csum_add(sum, udp, 8 + plen);
	uint16_t c = csum_fold(sum);
	wr16(udp + 6, c ? c : 0xffff);
	return (int32_t)tot;
}
