/* pkt: the IPv4/UDP or IPv6/UDP framing of a queued datagram. Lengths are
 * checked by hand before anything trusts them; a rewritten packet gets its
 * IP length (and IPv4 header checksum), UDP length and UDP checksum
 * recomputed here (no pktb_alloc: it mallocs and copies per packet).
 * Ports in HOST byte order; addresses as struct addr (IPv4 v4-mapped). */
#ifndef SIPALGD_PKT_H
#define SIPALGD_PKT_H
#include <stdint.h>

#include "addr.h"

struct pkt_udp {
	struct addr saddr, daddr;
	uint16_t sport, dport;
	uint8_t family;            /* 4 or 6: the IP version of the packet */
	uint32_t l3len;            /* bytes before the UDP header: IPv4 header,
	                              or IPv6 header + extension headers */
	const uint8_t *payload;
	uint32_t plen;
};

/* 0 for a whole, unfragmented IPv4/UDP or IPv6/UDP packet; -1 otherwise.
 * IPv6: hop-by-hop, routing and destination-options headers are skipped
 * (bounds-checked); a fragment header or any other next header is -1, as an
 * IPv4 fragment is. */
int pkt_parse_udp(const uint8_t *ip, uint32_t len, struct pkt_udp *u);

/* Write header + new payload into `out` (the payload may already sit at
 * out + l3len + 8: it is then not copied). Returns the packet length or -1
 * if it would exceed `cap` or 65535 (IPv4 total length / IPv6 payload
 * length: no jumbograms). */
int32_t pkt_build(const uint8_t *ip, const struct pkt_udp *u, const uint8_t *payload,
		  uint32_t plen, uint8_t *out, uint32_t cap);

/* UDP checksum of a packet as pkt_parse_udp() read it (0 when it verifies;
 * for tests and for checking what pkt_build wrote). */
uint16_t pkt_udp_csum(const uint8_t *ip, const struct pkt_udp *u);

#endif
