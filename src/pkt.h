/* pkt: the IPv4/UDP framing of a queued datagram. Lengths are checked by hand
 * before anything trusts them; a rewritten packet gets its IP total length,
 * IP checksum, UDP length and UDP checksum recomputed here (no pktb_alloc:
 * it mallocs and copies per packet). Addresses/ports in HOST byte order. */
#ifndef SIPALGD_PKT_H
#define SIPALGD_PKT_H
#include <stdint.h>

struct pkt_udp {
	uint32_t saddr, daddr;
	uint16_t sport, dport;
	uint32_t ihl;              /* IP header length in bytes */
	const uint8_t *payload;
	uint32_t plen;
};

/* 0 for a whole, unfragmented IPv4/UDP packet; -1 otherwise. */
int pkt_parse_udp(const uint8_t *ip, uint32_t len, struct pkt_udp *u);

/* Write header + new payload into `out` (the payload may already sit at
 * out + ihl + 8: it is then not copied). Returns the packet length or -1 if
 * it would exceed `cap` or 65535. */
int32_t pkt_build(const uint8_t *ip, const struct pkt_udp *u, const uint8_t *payload,
		  uint32_t plen, uint8_t *out, uint32_t cap);

#endif
