/* addr: one address type for both families.
 *
 * An IPv4 address is held in its v4-mapped form (::ffff:a.b.c.d), as the
 * kernel's nf_inet_addr does, so tables, hashes and comparisons have one
 * code path; the family is asked only where the kernel needs it (netlink
 * attributes, nft key types, the IP header). The all-zero address (::) and
 * 0.0.0.0 both mean "none / any / on hold", the role 0 had as a uint32_t. */
#ifndef SIPALGD_ADDR_H
#define SIPALGD_ADDR_H
#include <stdint.h>
#include <string.h>

struct addr {
	uint8_t b[16];
};

/* Longest text addr_fmt writes, with brackets and the terminating NUL. */
#define ADDR_STRLEN 48

static inline int addr_is_v4(const struct addr *a)
{
	static const uint8_t pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	return memcmp(a->b, pfx, 12) == 0;
}

/* From / to an IPv4 address in host byte order (as the code had it). */
static inline struct addr addr_v4(uint32_t ip)
{
	struct addr a = { { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
			    (uint8_t)(ip >> 24), (uint8_t)(ip >> 16), (uint8_t)(ip >> 8), (uint8_t)ip } };
	return a;
}

static inline uint32_t addr_get_v4(const struct addr *a)
{
	return (uint32_t)a->b[12] << 24 | (uint32_t)a->b[13] << 16 | (uint32_t)a->b[14] << 8 | a->b[15];
}

/* From / to the 16 bytes of an IPv6 header or netlink attribute. */
static inline struct addr addr_v6(const void *b16)
{
	struct addr a;
	memcpy(a.b, b16, 16);
	return a;
}

static inline int addr_eq(const struct addr *a, const struct addr *b)
{
	return memcmp(a->b, b->b, 16) == 0;
}

/* "None / any / on hold": :: or 0.0.0.0. */
static inline int addr_is_any(const struct addr *a)
{
	static const uint8_t zero[16];
	if (addr_is_v4(a))
		return addr_get_v4(a) == 0;
	return memcmp(a->b, zero, 16) == 0;
}

/* Table index of an address (SipHash under the process table key). */
uint64_t addr_hash(const struct addr *a);

/* a inside net/plen. plen counts bits of the family's own address: 0-32
 * for an IPv4 net, 0-128 for an IPv6 one; the families never match. */
int addr_in_prefix(const struct addr *a, const struct addr *net, unsigned plen);

/* Text to address: dotted IPv4, IPv6 (RFC 4291 2.2, with :: and a dotted
 * tail), or IPv6 in brackets (RFC 3986 / RFC 5118 references). Returns 1 if
 * all n bytes are one address, 0 otherwise (nothing written). A v4-mapped
 * IPv6 text (::ffff:10.0.0.1) gives the IPv4 address it maps. */
int addr_parse(const uint8_t *s, uint32_t n, struct addr *out);
int addr_parse_str(const char *s, struct addr *out);

/* An address of the state file: text (either family), or the 8 hex
 * digits of a host-order IPv4 address that files before IPv6 held.
 * 0, or -1 (nothing written). */
int addr_parse_state(const char *s, struct addr *a);

/* Address to text, NUL-terminated, returns its length. IPv4 dotted; IPv6
 * in RFC 5952 form (lowercase, longest zero run as ::), in brackets when
 * `brackets` (a URI host or Via sent-by) and bare otherwise (SDP c=/o=).
 * s holds ADDR_STRLEN bytes. */
uint32_t addr_fmt(char *s, const struct addr *a, int brackets);

#endif
