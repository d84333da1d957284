/* libFuzzer target: the whole decision path, alg_packet() on IPv4/UDP
 * datagrams built from the fuzz input, with the kernel stubbed
 * (tests/unit/stubs.c records what the policy asked of nftables/conntrack).
 *
 * Input layout (tests/fuzz/gen_seeds.py writes seeds in it):
 *   byte 0            configuration variant (bits below, CV_*)
 *   then records separated by RS ("\x1e\x1e\x1e\x1e"), each:
 *     byte 0          flags: bit 0 direction (0 LAN->WAN, 1 WAN->LAN),
 *                     bits 1-2 LAN host, bit 3 remote host, bits 4-5 ports,
 *                     bit 6 conntrack already NATs the flow, bit 7 tick first
 *     byte 1          time advance, in units of 100 ms
 *     rest            the UDP payload
 * State (bindings, dialogs) lives across the records of one input and is
 * reset between inputs, so every crash reproduces from its file alone.
 *
 * Invariants checked after every datagram (a violation aborts with a message
 * naming it, so libFuzzer saves the reproducer):
 *   - a rewritten datagram is valid IPv4/UDP: header copied, lengths right,
 *     IP and UDP checksums verify; the verdict is accept;
 *   - LAN->WAN: no LAN address literal (192.168.1.x as a dotted-quad token)
 *     is left in a payload that leaves (rewritten, or accepted unchanged),
 *     nor an IPv6 literal of the NAT66 LAN prefix (fd00:77::/64; NAT66 is
 *     configured, so an IPv6 stream in an IPv4 message is translated), nor
 *     one of the masqueraded prefix (fd00:78::/64, wan.masquerade6: its
 *     streams are NAT streams with bindings, as IPv4 ones);
 *   - a payload that leaves and parses as SIP has Content-Length == body;
 *     a rewrite of a clean message is still a clean message;
 *   - the live bindings/dialogs/pinholes (stats gauges) stay within the
 *     configured limits; kernel element refs never go below zero;
 *   - at the end, after the timers have run far enough, nothing is left:
 *     no binding, dialog, pinhole or registration, and every nft element the
 *     policy added was deleted (refcounts balance).
 * Edits that write outside a buffer are ASan's to catch. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alg.h"
#include "conf.h"
#include "log.h"
#include "nat66.h"
#include "sipmsg.h"
#include "stats.h"
#include "../unit/stubs.h"
#include "../unit/testpkt.h"

#define LANNET 0xc0a80100u /* 192.168.1.0/24 */
#define LANMASK 0xffffff00u
#define PUB_SHORT 0xcb007101u /* 203.0.113.1: shorter than most LAN literals */
#define PUB_LONG  0xcb007164u /* 203.0.113.100: bodies grow */

/* configuration variant (input byte 0) */
#define CV_PINHOLE_ANY  0x01
#define CV_INBOUND_ANY  0x02
#define CV_OTHER_HOSTS  0x04
#define CV_LONG_PUBLIC  0x08
#define CV_SMALL_CAP    0x10 /* output buffer just larger than the input */
#define CV_IP_OPTIONS   0x20 /* IHL 6 with a 4-byte option */
#define CV_TWO_SIP_PORTS 0x40

static const char RS[] = "\x1e\x1e\x1e\x1e";

static struct conf cf;
static uint8_t pkt[65536 + 64], out[65536 + 256];

static void fail(const char *what, const uint8_t *p, uint32_t n)
{
	fprintf(stderr, "\nalg_fuzz: INVARIANT VIOLATED: %s\n", what);
	if (p) {
		fprintf(stderr, "--- payload (%u bytes) ---\n", n);
		fwrite(p, 1, n, stderr);
		fprintf(stderr, "\n--- end ---\n");
	}
	abort();
}

/* ---- kernel element accounting (from the stub log) -------------------- */

#define KEYS 2048
static struct { char k[48]; int n; } keys[KEYS];
static int nkeys;

static int *key_slot(const char *k)
{
	for (int i = 0; i < nkeys; i++)
		if (strcmp(keys[i].k, k) == 0)
			return &keys[i].n;
	if (nkeys == KEYS)
		fail("too many distinct nft elements", NULL, 0);
	snprintf(keys[nkeys].k, sizeof(keys[nkeys].k), "%s", k);
	keys[nkeys].n = 0;
	return &keys[nkeys++].n;
}

/* snat+ A:p B:q / snat- A:p / dnat+ P:u B:q / dnat- P:u: the map key is
 * the first address:port. SNAT elements are set-once (add then delete);
 * DNAT elements are refcounted by the policy. */
static void account_stub_log(void)
{
	char *save = NULL;

	if (strlen(stub_log) > STUB_LOG_SIZE - 256)
		fail("stub log overflow (too many kernel intents for one datagram)", NULL, 0);
	for (char *l = strtok_r(stub_log, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char op[8], a[64], k[72];
		if (sscanf(l, "%7s %63s", op, a) != 2)
			fail("unparsable stub log line", (const uint8_t *)l, (uint32_t)strlen(l));
		if (strncmp(op, "ct", 2) == 0)
			continue;
		snprintf(k, sizeof(k), "%.4s %s", op, a);
		int *n = key_slot(k);
		if (op[4] == '+') {
			++*n;
			/* One owner per SNAT element (regress/alg/snat-overlap-odd-media-port). */
			if (op[0] == 's' && *n > 1)
				fail("SNAT element added twice", (const uint8_t *)l, (uint32_t)strlen(l));
		} else if (--*n < 0) {
			fail("nft element deleted more often than added", (const uint8_t *)l,
			     (uint32_t)strlen(l));
		}
	}
	stub_reset();
}

/* ---- payload checks ------------------------------------------------------ */

#define dig tp_dig

static void check_datagram(const uint8_t *in, uint32_t in_len, const uint8_t *o, uint32_t olen)
{
	uint32_t ihl = (in[0] & 15) * 4u;

	if (olen < ihl + 8 || olen > 65535)
		fail("rewritten datagram shorter than its headers or too long", NULL, 0);
	if ((o[0] & 15) * 4u != ihl || o[9] != 17)
		fail("rewritten datagram: IP header changed", NULL, 0);
	if ((uint32_t)(o[2] << 8 | o[3]) != olen)
		fail("rewritten datagram: IP total length wrong", NULL, 0);
	if (memcmp(o + 12, in + 12, 8) || memcmp(o + ihl, in + ihl, 4) ||
	    memcmp(o + 4, in + 4, 4) || o[8] != in[8] || memcmp(o + 20, in + 20, ihl - 20))
		fail("rewritten datagram: addresses, ports or IP fields changed", NULL, 0);
	if (tp_csum(o, ihl, 0) != 0)
		fail("rewritten datagram: IP checksum wrong", NULL, 0);
	uint32_t ulen = (uint32_t)(o[ihl + 4] << 8 | o[ihl + 5]);
	if (ulen != olen - ihl)
		fail("rewritten datagram: UDP length wrong", NULL, 0);
	/* pseudo header: saddr, daddr, proto, UDP length */
	uint32_t s = 0;
	for (int i = 12; i < 20; i += 2)
		s += (uint32_t)(o[i] << 8 | o[i + 1]);
	s += 17 + ulen;
	if (tp_csum(o + ihl, ulen, s) != 0 || (o[ihl + 6] == 0 && o[ihl + 7] == 0))
		fail("rewritten datagram: UDP checksum wrong", NULL, 0);
	(void)in_len;
}


static void check_payload(const uint8_t *pl, uint32_t n, int outbound, int in_clean, int rewritten)
{
	static struct sip_msg m;
	int64_t at;

	int rc = sip_parse(&m, pl, n);
	for (uint32_t from = 0; outbound && (at = tp_find_lan(pl, n, from, LANNET, LANMASK)) >= 0; from = (uint32_t)at + 1) {
		char what[96];
		snprintf(what, sizeof(what), "LAN address literal leaves the router (offset %lld, %s)",
			 (long long)at, rewritten ? "rewritten" : "unchanged");
		fail(what, pl, n);
	}
	struct span all = { 0, n }, h;
	struct addr a;
	uint32_t pos = 0;
	while (outbound && nat66_next(pl, all, &pos, &h, &a)) {
		if (addr_in_prefix(&a, &cf.nat66_lan.net, cf.nat66_lan.plen))
			fail("NAT66 LAN-prefix literal leaves the router", pl, n);
		if (conf_is_masq6(&cf, &a))
			fail("masquerade6 literal leaves the router", pl, n);
	}
	if (rc == SIP_OK && m.clen_idx >= 0 && m.trailing != 0 && (rewritten || in_clean))
		fail("Content-Length does not match the body", pl, n);
	if (rewritten && in_clean && (rc != SIP_OK || m.trailing))
		fail("a clean message was rewritten into a malformed one", pl, n);
}

static void check_gauges(void)
{
	if (stats[ST_bindings] > cf.max_bindings)
		fail("more live bindings than limits.bindings (or gauge underflow)", NULL, 0);
	if (stats[ST_dialogs] > cf.max_dialogs)
		fail("more live dialogs than limits.dialogs (or gauge underflow)", NULL, 0);
	if (stats[ST_pinholes] > cf.max_pinholes)
		fail("more live pinholes than limits.pinholes (or gauge underflow)", NULL, 0);
	if (stats[ST_registrations] > stats[ST_bindings])
		fail("more registrations than bindings (or gauge underflow)", NULL, 0);
}

/* ---- one datagram -------------------------------------------------------- */

static uint32_t build(uint8_t flags, int ip_opts, const uint8_t *pl, uint32_t n,
		      int *outbound)
{
	static const uint8_t lan_host[4] = { 10, 11, 200, 10 };
	uint32_t lan = LANNET | lan_host[(flags >> 1) & 3];
	uint32_t rem = (flags & 8) ? 0xc6336401u : 0xc6336402u; /* 198.51.100.1/.2 */
	static const uint16_t ports[4][2] = { { 5060, 5060 }, { 5062, 5060 },
					      { 5060, 5080 }, { 40000, 5060 } };
	uint16_t lp = ports[(flags >> 4) & 3][0], rp = ports[(flags >> 4) & 3][1];
	uint32_t ihl = ip_opts ? 24 : 20, tot = ihl + 8 + n;
	uint32_t src = lan, dst = rem;
	uint16_t sp = lp, dp = rp;

	*outbound = !(flags & 1);
	if (!*outbound) {
		src = rem; dst = lan; sp = rp; dp = lp;
	}
	memset(pkt, 0, ihl + 8);
	pkt[0] = (uint8_t)(0x40 | ihl / 4);
	pkt[2] = (uint8_t)(tot >> 8); pkt[3] = (uint8_t)tot;
	pkt[4] = 0x12; pkt[5] = 0x34;
	pkt[8] = 64; pkt[9] = 17;
	for (int i = 0; i < 4; i++) {
		pkt[12 + i] = (uint8_t)(src >> (24 - 8 * i));
		pkt[16 + i] = (uint8_t)(dst >> (24 - 8 * i));
	}
	if (ip_opts)
		memset(pkt + 20, 1, 4); /* NOPs */
	uint16_t ic = tp_csum(pkt, ihl, 0);
	pkt[10] = (uint8_t)(ic >> 8); pkt[11] = (uint8_t)ic;
	uint8_t *u = pkt + ihl;
	u[0] = (uint8_t)(sp >> 8); u[1] = (uint8_t)sp; u[2] = (uint8_t)(dp >> 8); u[3] = (uint8_t)dp;
	u[4] = (uint8_t)((8 + n) >> 8); u[5] = (uint8_t)(8 + n);
	memcpy(u + 8, pl, n);
	return tot;
}

static void one(uint8_t cv, uint8_t flags, uint64_t *now, const uint8_t *pl, uint32_t n)
{
	static struct sip_msg m;
	int outbound;

	if (n > 65535 - 24 - 8)
		n = 65535 - 24 - 8;
	if (flags & 0x80) {
		alg_tick(*now);
		account_stub_log();
		check_gauges();
	}
	stub_ct_snat_found = (flags & 0x40) != 0;
	stub_ct_pub_port = 40001;
	uint32_t len = build(flags, (cv & CV_IP_OPTIONS) != 0, pl, n, &outbound);
	uint32_t cap = (cv & CV_SMALL_CAP) ? len + 16 : (uint32_t)sizeof(out);
	/* The original, for comparison after the call: alg_packet must not write it. */
	uint8_t *copy = malloc(len);
	if (!copy)
		return;
	memcpy(copy, pkt, len);
	int in_clean = sip_parse(&m, pl, n) == SIP_OK && m.trailing == 0;

	uint32_t olen = 12345;
	enum alg_verdict v = alg_packet(pkt, len, out, cap, &olen, *now);
	if (v != ALG_ACCEPT && v != ALG_DROP)
		fail("verdict is neither accept nor drop", NULL, 0);
	if (memcmp(copy, pkt, len))
		fail("alg_packet wrote into its input", NULL, 0);
	if (olen > cap)
		fail("out_len larger than the buffer", NULL, 0);
	if (olen) {
		if (v != ALG_ACCEPT)
			fail("rewritten datagram with a drop verdict", NULL, 0);
		check_datagram(pkt, len, out, olen);
		uint32_t ihl = (out[0] & 15) * 4u;
		check_payload(out + ihl + 8, olen - ihl - 8, outbound, in_clean, 1);
	} else if (v == ALG_ACCEPT) {
		check_payload(pl, n, outbound, in_clean, 0);
	}
	free(copy);
	account_stub_log();
	check_gauges();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int inited;

	if (!inited) {
		log_init(0, LOG_LVL_ERR); /* the policy's warnings would flood the run */
		inited = 1;
	}
	if (size < 1 || size > 262144)
		return 0;
	uint8_t cv = data[0];
	conf_defaults(&cf);
	strcpy(cf.wan_if, "wan");
	cf.lan[0] = conf_net_v4(LANNET, 24);
	cf.n_lan = 1;
	/* NAT66 on: the IPv4 path translates the IPv6 literals of the prefix too */
	addr_parse_str("fd00:77::", &cf.nat66_lan.net);
	cf.nat66_lan.plen = 64;
	addr_parse_str("2001:db8:78::", &cf.nat66_pub.net);
	cf.nat66_pub.plen = 64;
	/* and a masqueraded IPv6 prefix (its literals in IPv4 messages) */
	addr_parse_str("fd00:78::", &cf.lan[1].net);
	cf.lan[1].plen = 64;
	cf.n_lan = 2;
	cf.masq6[0] = cf.lan[1];
	cf.n_masq6 = 1;
	if (cv & CV_TWO_SIP_PORTS) {
		cf.sip_ports[1] = 5080;
		cf.n_sip_ports = 2;
	}
	cf.public_ip = (cv & CV_LONG_PUBLIC) ? PUB_LONG : PUB_SHORT;
	cf.pinhole_src = (cv & CV_PINHOLE_ANY) ? CONF_PINHOLE_ANY : CONF_PINHOLE_PEER;
	cf.inbound_src = (cv & CV_INBOUND_ANY) ? CONF_INBOUND_ANY : CONF_INBOUND_REGISTRAR;
	cf.media_other_hosts = (cv & CV_OTHER_HOSTS) != 0;
	/* Small tables and ranges, so that "full" is reached within one input. */
	cf.max_bindings = 6;
	cf.max_dialogs = 3;
	cf.max_pinholes = 4;
	cf.max_pinholes_per_phone = 3;
	cf.max_streams_per_call = 2;
	cf.sig_port_min = 40000;
	cf.sig_port_max = 40003;
	cf.media_port_min = 20000;
	cf.media_port_max = 20007;
	cf.binding_idle_s = 2;
	cf.early_timeout_s = 3;
	cf.dialog_timeout_s = 10;
	cf.register_max_s = 5;

	memset(stats, 0, sizeof(stats));
	stub_reset();
	nkeys = 0;
	if (alg_init(&cf, a4(cf.public_ip)) < 0)
		fail("alg_init failed", NULL, 0);
	struct addr pub6;
	addr_parse_str("2001:db8:113::1", &pub6);
	alg_set_public(6, &pub6, 1000000);

	uint64_t now = 1000000;
	const uint8_t *p = data + 1, *end = data + size;
	while (p + 2 <= end) {
		const uint8_t *r = memmem(p + 2, (size_t)(end - p - 2), RS, 4);
		const uint8_t *re = r ? r : end;
		now += (uint64_t)p[1] * 100;
		one(cv, p[0], &now, p + 2, (uint32_t)(re - p - 2));
		p = r ? r + 4 : end;
	}

	/* Everything must go once the timers have run: dialogs first (their
	 * longest life is timers.dialog after the last message), then the
	 * registrations (<= timers.register_max), then idle bindings. */
	now += (uint64_t)cf.dialog_timeout_s * 1000 + 40000;
	alg_tick(now);
	now += (uint64_t)cf.register_max_s * 1000 + 1000;
	alg_tick(now);
	now += (uint64_t)cf.binding_idle_s * 1000 + 1000;
	alg_tick(now);
	account_stub_log();
	if (stats[ST_dialogs] || stats[ST_pinholes] || stats[ST_registrations] || stats[ST_bindings])
		fail("state left after every timer has expired", NULL, 0);
	for (int i = 0; i < nkeys; i++)
		if (keys[i].n != 0) {
			char what[96];
			snprintf(what, sizeof(what), "nft element never deleted: %s (refs %d)",
				 keys[i].k, keys[i].n);
			fail(what, NULL, 0);
		}
	alg_fini();
	return 0;
}
