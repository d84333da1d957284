/* nat66: the IPv6 prefix translation of the router's NAT66, as the daemon
 * must write it into SIP and SDP (wan.nat66_lan_prefix ->
 * wan.nat66_public_prefix, docs/ipv6.md).
 *
 * The router runs nft's stateful prefix NAT (`snat ip6 prefix to`,
 * NF_NAT_RANGE_NETMAP): the prefix bits are replaced and the host bits are
 * kept, nothing else (no RFC 6296 checksum-neutral adjustment: conntrack
 * fixes the transport checksum), and the ports are left as they are. The
 * mapping is 1:1 and stateless, so the daemon computes it here instead of
 * asking the kernel, and the reverse is the same function with the two
 * prefixes swapped. Pure: no I/O, no allocation. */
#ifndef SIPALGD_NAT66_H
#define SIPALGD_NAT66_H
#include <stdint.h>

#include "addr.h"
#include "sipmsg.h"

/* a inside from/plen: *out = to's first plen bits, then a's host bits;
 * returns 1. Otherwise 0 and *out untouched. IPv6 only (an IPv4 or
 * v4-mapped address never matches); plen 1..128. */
int nat66_map(const struct addr *from, const struct addr *to, unsigned plen, const struct addr *a,
	      struct addr *out);

/* The next IPv6 address literal in b[s] at or after *pos (relative to
 * s.off): a run of hex digits, colons and dots with at least two colons
 * that addr_parse() reads as IPv6 (not v4-mapped), not glued to a letter
 * or digit on either side. The brackets of an RFC 5118 reference are not
 * part of the hit, nor is a lone ':' before it ("sip:fd00::1", which
 * RFC 5118 forbids but phones write). *hit is the literal's span, *a its
 * address, *pos moves past it. Returns 0 at the end (*pos = s.len). */
int nat66_next(const uint8_t *b, struct span s, uint32_t *pos, struct span *hit, struct addr *a);

/* Copy b[s] into out (at most cap bytes) with every IPv6 literal inside
 * from/plen replaced by its image in `to` (RFC 5952 text, no brackets:
 * the brackets around it, if any, stay). from == to gives the canonical
 * text of those literals. Returns the length written (cut at cap). */
uint32_t nat66_map_text(const uint8_t *b, struct span s, const struct addr *from, const struct addr *to,
			unsigned plen, uint8_t *out, uint32_t cap);

#endif
