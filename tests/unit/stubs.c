/* Kernel stubs for unit tests: nftmap and ct record what the policy asked
 * for as text lines, so tests assert on intents without a kernel. */
#include <stdio.h>
#include <string.h>

#include "ct.h"
#include "nftmap.h"
#include "stubs.h"

char stub_log[STUB_LOG_SIZE];
static size_t stub_len;
int stub_ct_snat_found;
uint32_t stub_ct_pub_ip;
uint16_t stub_ct_pub_port;

static void rec_s(const char *fmt, const char *sa, uint16_t ap, const char *sb, uint16_t bp)
{
	int n = snprintf(stub_log + stub_len, sizeof(stub_log) - stub_len, fmt, sa, ap, sb, bp);
	if (n > 0 && stub_len + (size_t)n < sizeof(stub_log))
		stub_len += (size_t)n;
}

/* struct addr: IPv4 dotted as before, IPv6 in brackets */
static void rec_a(const char *fmt, struct addr a, uint16_t ap, struct addr b, uint16_t bp)
{
	char sa[ADDR_STRLEN], sb[ADDR_STRLEN];

	addr_fmt(sa, &a, 1);
	addr_fmt(sb, &b, 1);
	rec_s(fmt, sa, ap, sb, bp);
}

void stub_reset(void)
{
	stub_len = 0;
	stub_log[0] = 0;
}

int nftmap_open(const struct conf *c) { (void)c; return 0; }
void nftmap_close(int remove) { (void)remove; }
void nftmap_snat_add(const struct addr *a, uint16_t ap, const struct addr *b, uint16_t bp) { rec_a("snat+ %s:%u %s:%u\n", *a, ap, *b, bp); }
void nftmap_snat_del(const struct addr *a, uint16_t ap) { rec_a("snat- %s:%u%.0s%.0u\n", *a, ap, addr_v4(0), 0); }
void nftmap_dnat_ref(const struct addr *peer, uint16_t pub, const struct addr *b, uint16_t bp) { rec_a("dnat+ %s:%u %s:%u\n", *peer, pub, *b, bp); }
void nftmap_dnat_unref(const struct addr *peer, uint16_t pub) { rec_a("dnat- %s:%u%.0s%.0u\n", *peer, pub, addr_v4(0), 0); }
int nftmap_commit(void) { return 0; }
int nftmap_urgent(void) { return 0; }
void nftmap_dump(FILE *f) { (void)f; }

int ct_open(void) { return 0; }
void ct_close(void) {}
int ct_lookup_snat(struct addr src, uint16_t sport, struct addr dst, uint16_t dport,
		   struct addr *pub_ip, uint16_t *pub_port)
{
	(void)src; (void)sport; (void)dst; (void)dport;
	if (!stub_ct_snat_found)
		return 0;
	*pub_ip = addr_v4(stub_ct_pub_ip);
	*pub_port = stub_ct_pub_port;
	return 1;
}
void ct_del_udp(struct addr a, uint16_t ap, struct addr b, uint16_t bp) { rec_a("ct- %s:%u %s:%u\n", a, ap, b, bp); }
void ct_del_port(struct addr a, uint16_t ap, int to_dst) { rec_a(to_dst ? "ctscan-dst %s:%u%.0s%.0u\n" : "ctscan-src %s:%u%.0s%.0u\n", a, ap, a, 0); }
void ct_del_addr(struct addr a) { rec_a("ctaddr %s:%u%.0s%.0u\n", a, 0, a, 0); }
void ct_create_udp(struct addr a, uint16_t ap, struct addr b, uint16_t bp, uint32_t timeout_s)
{
	char t[24];

	rec_a("ct+ %s:%u %s:%u", a, ap, b, bp);
	snprintf(t, sizeof(t), " %us\n", timeout_s);
	rec_s("%s%.0u%.0s%.0u", t, 0, "", 0);
}
/* Routed (to = ::) records as ct_create_udp; NAT66 adds " dnat ADDR". */
void ct_create_udp_nat(struct addr a, uint16_t ap, struct addr b, uint16_t bp, struct addr to, uint32_t timeout_s)
{
	if (addr_is_any(&to)) {
		ct_create_udp(a, ap, b, bp, timeout_s);
		return;
	}
	rec_a("ct+ %s:%u %s:%u", a, ap, b, bp);
	rec_a(" dnat %s%.0u%.0s%.0u", to, 0, to, 0);
	char t[24];
	snprintf(t, sizeof(t), " %us\n", timeout_s);
	rec_s("%s%.0u%.0s%.0u", t, 0, "", 0);
}
int ct_commit(void) { return 0; }
void ct_mark_urgent(void) {}
int ct_urgent(void) { return 0; }

/* The fast path's loader (fastpath.c, libbpf) is not in the core: binding.c's
 * hooks are only counted. */
#include "fastpath.h"
int stub_fp_set, stub_fp_del;
void fastpath_binding_set(const struct binding *b) { (void)b; stub_fp_set++; }
void fastpath_binding_del(const struct binding *b) { (void)b; stub_fp_del++; }
void fastpath_set_public(uint32_t public_ip) { (void)public_ip; }
void fastpath_set_old_public(const uint32_t *old, int n) { (void)old; (void)n; }
