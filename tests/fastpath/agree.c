/* The fast path's byte-exact agreement with the daemon (issue 11).
 *
 * Loads build/sipfast.bpf.o with libbpf, sets up the ALG core as the daemon
 * would (bindings made by feeding it messages), mirrors every signalling
 * binding into sipfast_priv/sipfast_pub and fills sipfast_cfg, then runs
 * every message of the rewrite corpus, the torture messages and our own
 * cases through both: the program with BPF_PROG_TEST_RUN (an Ethernet frame
 * in the tc view: inbound before DNAT, to the public address and port) and
 * alg_packet (the queue's view, after DNAT). Asserts: what the program
 * handled (mark set) leaves with exactly the daemon's payload and valid
 * IPv4/UDP lengths and checksums; what it passed leaves byte for byte as it
 * came, unmarked. Needs bpf(): exits 0 with "SKIP" only when it is not
 * permitted.
 *
 * Usage: agree [path/to/sipfast.bpf.o [--cost]] (default
 * build/sipfast.bpf.o); run from the top of the tree (it reads
 * tests/data/...). --cost: only the ns per packet of each case. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "testpkt.h" /* tp_csum: the unit tests' checksum */
#include "../../bpf/sipfast.h"
#include "alg.h"
#include "binding.h"
#include "conf.h"
#include "stats.h"

#define PUB 0xcb007101u     /* 203.0.113.1 */
static const struct addr pub4 = { { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 1 } }; /* PUB */
#define LAN_NET 0xc0a80100u /* 192.168.1.0/24 */
#define PHONE 0xc0a8010au   /* 192.168.1.10 */
#define REMOTE 0xc6336401u  /* 198.51.100.1 */
#define MARK 0x5a0000u

static struct conf cf;
static int prog_fd, cfg_fd, priv_fd, pub_fd, stats_fd;
static int failures, n_handled_in, n_handled_out, n_passed, n_msgs;
static int kind_handled[8], kind_passed[8];
static const char *kind_name[8] = { "1xx in", "ACK in", "1xx out", "ACK out", "other in", "other out" };
static int ncpu;
/* In a network namespace of our own: a veth WAN (198.51.100.0/24 routed
 * there) and a veth DMZ (10.9.9.0/24), so the program's route check of
 * outbound messages runs for real. 0: no namespace, the check is off. */
static unsigned wan_idx;

static void netns_setup(void)
{
	if (unshare(CLONE_NEWNET) != 0) {
		printf("  note: no network namespace (%s): route check of outbound messages not tested\n",
		       strerror(errno));
		return;
	}
	if (system("ip link set lo up && ip link add wan0 type veth peer name wan0p && ip link add dmz0 type veth peer name dmz0p && "
		   "ip addr add 198.51.100.254/24 dev wan0 && ip addr add 10.9.9.254/24 dev dmz0 && "
		   "ip link set wan0 up && ip link set wan0p up && ip link set dmz0 up && ip link set dmz0p up && "
		   "sysctl -qw net.ipv4.ip_forward=1") != 0) {
		printf("  note: could not set up the veth WAN: route check of outbound messages not tested\n");
		return;
	}
	wan_idx = if_nametoindex("wan0");
}

static void fail(const char *name, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "FAIL %s: ", name);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	failures++;
}

/* IPv4 (checksummed) + UDP (checksummed) + payload at ip; returns length */
static uint32_t build_ip(uint8_t *ip, uint32_t src, uint16_t sp, uint32_t dst, uint16_t dp,
			 const uint8_t *m, uint32_t n)
{
	uint32_t tot = 28 + n;
	uint8_t ph[12];

	memset(ip, 0, 28);
	ip[0] = 0x45;
	ip[2] = (uint8_t)(tot >> 8);
	ip[3] = (uint8_t)tot;
	ip[6] = 0x40; /* DF */
	ip[8] = 64;
	ip[9] = 17;
	*(uint32_t *)(ip + 12) = htonl(src);
	*(uint32_t *)(ip + 16) = htonl(dst);
	uint16_t c = tp_csum(ip, 20, 0);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	ip[20] = (uint8_t)(sp >> 8);
	ip[21] = (uint8_t)sp;
	ip[22] = (uint8_t)(dp >> 8);
	ip[23] = (uint8_t)dp;
	ip[24] = (uint8_t)((8 + n) >> 8);
	ip[25] = (uint8_t)(8 + n);
	memcpy(ip + 28, m, n);
	memcpy(ph, ip + 12, 8);
	ph[8] = 0;
	ph[9] = 17;
	ph[10] = ip[24];
	ph[11] = ip[25];
	uint32_t s = 0;
	for (int i = 0; i < 12; i += 2)
		s += (uint32_t)(ph[i] << 8 | ph[i + 1]);
	c = tp_csum(ip + 20, 8 + n, s);
	if (c == 0)
		c = 0xffff;
	ip[26] = (uint8_t)(c >> 8);
	ip[27] = (uint8_t)c;
	return tot;
}

/* the IPv4 header and UDP checksums of a datagram are right */
static int valid_ip(const uint8_t *ip, uint32_t len)
{
	uint32_t tot = (uint32_t)(ip[2] << 8 | ip[3]), ul = (uint32_t)(ip[24] << 8 | ip[25]);
	uint8_t ph[12];

	if (tot != len || ul != tot - 20 || tp_csum(ip, 20, 0) != 0)
		return 0;
	if (ip[26] == 0 && ip[27] == 0)
		return 1;
	memcpy(ph, ip + 12, 8);
	ph[8] = 0;
	ph[9] = 17;
	ph[10] = ip[24];
	ph[11] = ip[25];
	uint32_t s = 0;
	for (int i = 0; i < 12; i += 2)
		s += (uint32_t)(ph[i] << 8 | ph[i + 1]);
	return tp_csum(ip + 20, ul, s) == 0;
}

static void maps_clear(int fd, size_t ksz)
{
	uint8_t k[16], nk[16];

	while (bpf_map_get_next_key(fd, NULL, nk) == 0) {
		memcpy(k, nk, ksz);
		if (bpf_map_delete_elem(fd, k))
			break;
	}
}

/* what the loader does: every signalling binding into the maps, cfg whole */
static void mirror(int inbound, uint32_t old_pub)
{
	uint32_t cur = 0;
	const struct binding *b;

	maps_clear(priv_fd, sizeof(struct sipfast_priv_key));
	maps_clear(pub_fd, sizeof(struct sipfast_pub_key));
	while ((b = binding_next(&cur))) {
		if (b->kind != BIND_SIG || !addr_is_v4(&b->priv_ip))
			continue;
		uint32_t pip = addr_get_v4(&b->priv_ip);
		struct sipfast_priv_key pk = { .ip = htonl(pip), .port = b->priv_port };
		struct sipfast_pub_key uk = { .port = b->pub_port };
		struct sipfast_binding v = { .priv_ip = htonl(pip), .priv_port = b->priv_port,
					     .pub_port = b->pub_port,
					     .flags = b->flags & (SIPFAST_BF_VIA_PORT | SIPFAST_BF_CONTACT_PORT) };
		bpf_map_update_elem(priv_fd, &pk, &v, BPF_ANY);
		bpf_map_update_elem(pub_fd, &uk, &v, BPF_ANY);
	}
	struct sipfast_cfg c = { 0 };
	c.flags = SIPFAST_F_ENABLED;
	uint32_t pub = addr_get_v4(alg_public(4));
	c.pub_ip = htonl(pub);
	c.pub_len = (uint32_t)snprintf(c.pub_str, sizeof(c.pub_str), "%u.%u.%u.%u", pub >> 24,
				       (pub >> 16) & 255, (pub >> 8) & 255, pub & 255);
	/* test_run gives the skb the loopback device: make it the WAN for an
	 * inbound message, something else for an outbound one */
	c.wan_ifindex = wan_idx ? wan_idx : inbound ? 1 : 0x7ffffff0;
	if (!wan_idx)
		c.flags |= SIPFAST_F_ANY_EGRESS;
	c.mark = MARK;
	c.n_lan = (uint32_t)cf.n_lan;
	for (int i = 0; i < cf.n_lan; i++) {
		uint32_t a = 0, m = 0;
		conf_net_get_v4(&cf.lan[i], &a, &m);
		c.lan_net[i] = htonl(a);
		c.lan_mask[i] = htonl(m);
	}
	c.n_ports = (uint32_t)cf.n_sip_ports;
	for (int i = 0; i < cf.n_sip_ports && i < SIPFAST_MAX_PORTS; i++)
		c.sip_ports[i] = cf.sip_ports[i];
	c.pub_old[0] = old_pub ? htonl(old_pub) : 0;
	uint32_t z = 0;
	bpf_map_update_elem(cfg_fd, &z, &c, BPF_ANY);
}

static uint64_t stat_sum(uint32_t i)
{
	uint64_t v[256] = { 0 }, s = 0;

	if (bpf_map_lookup_elem(stats_fd, &i, v))
		return 0;
	for (int c = 0; c < ncpu && c < 256; c++)
		s += v[c];
	return s;
}

static int msg_kind(const uint8_t *m, uint32_t n, int inbound)
{
	int k;

	if (n > 9 && memcmp(m, "SIP/2.0 1", 9) == 0)
		k = 0;
	else if (n > 4 && memcmp(m, "ACK ", 4) == 0)
		k = 1;
	else
		return inbound ? 4 : 5;
	return inbound ? k : k + 2;
}

/* One message through both. src/dst as the daemon sees them (after DNAT). */
static void run_one(const char *name, const uint8_t *m, uint32_t n, uint32_t src, uint16_t sp,
		    uint32_t dst, uint16_t dp, int expect_handled, uint32_t old_pub)
{
	static uint8_t frame[70000], got[70000], ipk[70000], out[70000];
	int inbound = !conf_is_lan_v4(&cf, src);
	uint32_t tsrc = src, tdst = dst;
	uint16_t tsp = sp, tdp = dp;

	n_msgs++;
	mirror(inbound, old_pub);
	if (inbound) {
		/* the tc view: before conntrack gives it back to the phone */
		struct addr da = addr_v4(dst);
		const struct binding *b = binding_find(&da, dp);
		tdst = addr_get_v4(alg_public(4));
		tdp = b ? b->pub_port : dp;
	}
	memset(frame, 0, 14);
	frame[12] = 0x08;
	uint32_t tl = build_ip(frame + 14, tsrc, tsp, tdst, tdp, m, n);
	struct __sk_buff ctx = { 0 }, ctx_out = { 0 };
	if (inbound && wan_idx)
		ctx.ifindex = wan_idx; /* arriving on the WAN */
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = 14 + tl, .data_out = got,
		    .data_size_out = sizeof(got), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .ctx_out = &ctx_out,
		    .ctx_size_out = sizeof(ctx_out), .repeat = 1);
	uint64_t h0 = stat_sum(SIPFAST_HANDLED_IN) + stat_sum(SIPFAST_HANDLED_OUT);
	uint64_t e0 = stat_sum(SIPFAST_ERRORS);
	uint64_t before[SIPFAST_STAT_MAX];
	for (uint32_t i = 0; i < SIPFAST_STAT_MAX; i++)
		before[i] = stat_sum(i);
	if (bpf_prog_test_run_opts(prog_fd, &o)) {
		fail(name, "test_run: %s", strerror(errno));
		return;
	}
	int handled = (ctx_out.mark & MARK) == MARK;
	uint64_t h1 = stat_sum(SIPFAST_HANDLED_IN) + stat_sum(SIPFAST_HANDLED_OUT);
	if (stat_sum(SIPFAST_ERRORS) != e0 || o.retval != (uint32_t)-1 /* TC_ACT_UNSPEC: go on */) {
		fail(name, "program returned %u (errors counted: %llu)", o.retval,
		     (unsigned long long)(stat_sum(SIPFAST_ERRORS) - e0));
		return;
	}
	if (handled != (h1 != h0)) {
		fail(name, "mark %d but handled counter moved %llu", handled, (unsigned long long)(h1 - h0));
		return;
	}

	/* the daemon */
	uint32_t dl = build_ip(ipk, src, sp, dst, dp, m, n), olen = 0;
	int v = alg_packet(ipk, dl, out, sizeof(out), &olen, 1000 + (uint64_t)n_msgs);
	const uint8_t *dpay = olen ? out + 28 : m;
	uint32_t dn = olen ? olen - 28 : n;
	int k = msg_kind(m, n, inbound);

	if (handled) {
		if (inbound)
			n_handled_in++;
		else
			n_handled_out++;
		kind_handled[k]++;
		const uint8_t *gip = got + 14;
		uint32_t glen = o.data_size_out - 14;
		if (v != ALG_ACCEPT)
			fail(name, "the program rewrote a message the daemon drops");
		else if (glen < 28 || glen - 28 != dn || memcmp(gip + 28, dpay, dn) != 0)
			fail(name, "payload differs from the daemon's:\n--- program (%u)\n%.*s\n--- daemon (%u)\n%.*s",
			     glen >= 28 ? glen - 28 : 0, (int)(glen >= 28 ? glen - 28 : 0), (const char *)gip + 28,
			     dn, (int)dn, (const char *)dpay);
		else if (!valid_ip(gip, glen))
			fail(name, "lengths or checksums wrong after the rewrite");
		else if (memcmp(gip, frame + 14, 2) || memcmp(gip + 4, frame + 14 + 4, 6) ||
			 memcmp(gip + 12, frame + 14 + 12, 12))
			fail(name, "headers changed beyond lengths and checksums");
		if (!expect_handled)
			fail(name, "handled, but this case must be passed");
	} else {
		n_passed++;
		kind_passed[k]++;
		if (o.data_size_out != 14 + tl || memcmp(got, frame, 14 + tl) != 0)
			fail(name, "passed but changed");
		if (ctx_out.mark)
			fail(name, "passed but marked");
		if (expect_handled == 1) {
			uint32_t why = 0;
			for (uint32_t i = 0; i < SIPFAST_STAT_MAX; i++)
				if (stat_sum(i) != before[i])
					why = i;
			fail(name, "passed (counter %u), but this case must be handled", why);
		}
	}
}

static long slurp(const char *path, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, cap, f);
	fclose(f);
	return (long)n;
}

static uint32_t ip_of(const char *s, uint16_t *port)
{
	unsigned a, b, c, d, p;
	if (sscanf(s, "%u.%u.%u.%u:%u", &a, &b, &c, &d, &p) != 5)
		return 0;
	*port = (uint16_t)p;
	return a << 24 | b << 16 | c << 8 | d;
}

static void fresh(void)
{
	alg_fini();
	memset(stats, 0, sizeof(stats));
	if (alg_init(&cf, &pub4) < 0) {
		fprintf(stderr, "alg_init failed\n");
		exit(1);
	}
}

/* the rewrite corpus, step by step (each case a fresh ALG) */
static void corpus(void)
{
	FILE *f = fopen("tests/data/rewrite/cases.tsv", "r");
	char line[512], cur[64] = "";
	static uint8_t in[66000];

	if (!f) {
		fail("corpus", "tests/data/rewrite/cases.tsv: %s", strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		char name[64], dir[8], src[32], dst[32], path[300], tag[128];
		int step;
		uint16_t sp, dp;
		if (line[0] == '#' || sscanf(line, "%63s %d %7s %31s %31s", name, &step, dir, src, dst) != 5)
			continue;
		if (strcmp(name, cur) != 0) {
			fresh();
			snprintf(cur, sizeof(cur), "%s", name);
		}
		snprintf(path, sizeof(path), "tests/data/rewrite/%s.%d.in", name, step);
		long n = slurp(path, in, sizeof(in));
		if (n < 0)
			continue;
		uint32_t s = ip_of(src, &sp), d = ip_of(dst, &dp);
		snprintf(tag, sizeof(tag), "rewrite/%s.%d", name, step);
		run_one(tag, in, (uint32_t)n, s, sp, d, dp, -1, 0);
	}
	fclose(f);
}

/* A phone registered and in a call: its signalling binding exists. */
static void setup_call(void)
{
	static const char reg[] =
		"REGISTER sip:example.com SIP/2.0\r\n"
		"Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKr1;rport\r\n"
		"From: <sip:100@example.com>;tag=r1\r\nTo: <sip:100@example.com>\r\n"
		"Call-ID: reg1@192.168.1.10\r\nCSeq: 1 REGISTER\r\n"
		"Contact: <sip:100@192.168.1.10:5060>\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n";
	static const char ok[] =
		"SIP/2.0 200 OK\r\n"
		"Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKr1;rport=5060;received=203.0.113.1\r\n"
		"From: <sip:100@example.com>;tag=r1\r\nTo: <sip:100@example.com>;tag=x\r\n"
		"Call-ID: reg1@203.0.113.1\r\nCSeq: 1 REGISTER\r\n"
		"Contact: <sip:100@203.0.113.1:5060>;expires=300\r\nContent-Length: 0\r\n\r\n";
	static const char inv[] =
		"INVITE sip:200@198.51.100.1 SIP/2.0\r\n"
		"Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKi1;rport\r\n"
		"From: <sip:100@192.168.1.10>;tag=a1\r\nTo: <sip:200@198.51.100.1>\r\n"
		"Call-ID: call1@192.168.1.10\r\nCSeq: 1 INVITE\r\n"
		"Contact: <sip:100@192.168.1.10:5060>\r\nContent-Length: 0\r\n\r\n";

	fresh();
	run_one("setup/register", (const uint8_t *)reg, sizeof(reg) - 1, PHONE, 5060, REMOTE, 5060, 0, 0);
	run_one("setup/200", (const uint8_t *)ok, sizeof(ok) - 1, REMOTE, 5060, PHONE, 5060, 0, 0);
	run_one("setup/invite", (const uint8_t *)inv, sizeof(inv) - 1, PHONE, 5060, REMOTE, 5060, 0, 0);
}

/* our own cases: { name, direction (1 in), must be handled (1) / passed (0), text } */
static const struct own {
	const char *name;
	int in;
	int handled;
	const char *text;
} own[] = {
	{ "100 Trying in", 1, 1,
	  "SIP/2.0 100 Trying\r\nVia: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKi1;rport=5060;received=203.0.113.1\r\n"
	  "From: <sip:100@203.0.113.1>;tag=a1\r\nTo: <sip:200@198.51.100.1>\r\nCall-ID: call1@203.0.113.1\r\n"
	  "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n" },
	{ "180 Ringing in, Contact, no rport value", 1, 1,
	  "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 203.0.113.1:5060;rport;branch=z9hG4bKi1\r\n"
	  "From: <sip:100@203.0.113.1>;tag=a1\r\nTo: <sip:200@198.51.100.1>;tag=b9\r\nCall-ID: call1@203.0.113.1\r\n"
	  "CSeq: 1 INVITE\r\nContact: <sip:200@198.51.100.1:5060>\r\nContent-Length: 0\r\n\r\n" },
	{ "183 in, received before rport, Contact naming us", 1, 1,
	  "SIP/2.0 183 Session Progress\r\nVia: SIP/2.0/UDP 203.0.113.1;received=203.0.113.1;rport=5060;branch=z9hG4bKi1\r\n"
	  "From: <sip:100@203.0.113.1>;tag=a1\r\nTo: <sip:200@198.51.100.1>;tag=b9\r\nCall-ID: call1@203.0.113.1\r\n"
	  "CSeq: 1 INVITE\r\nContact: <sip:100@203.0.113.1>\r\n\r\n" },
	{ "180 in, no Content-Length, odd case names", 1, 1,
	  "SIP/2.0 180 Ringing\r\nvIA: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKi1\r\n"
	  "FROM: <sip:100@203.0.113.1>;tag=a1\r\nto: <sip:200@198.51.100.1>;tag=b9\r\ncall-id: call1@203.0.113.1\r\n"
	  "cseq: 1 INVITE\r\n\r\n" },
	{ "ACK in, Request-URI to us", 1, 1,
	  "ACK sip:100@203.0.113.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKa2\r\n"
	  "From: <sip:200@198.51.100.1>;tag=b9\r\nTo: <sip:100@203.0.113.1>;tag=a1\r\nCall-ID: call1@203.0.113.1\r\n"
	  "CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n" },
	{ "ACK in, Request-URI without port", 1, 1,
	  "ACK sip:100@203.0.113.1;transport=udp SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKa3\r\n"
	  "From: <sip:200@198.51.100.1>;tag=b9\r\nTo: <sip:100@203.0.113.1>;tag=a1\r\nCall-ID: call1@203.0.113.1\r\n"
	  "CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n" },
	{ "ACK out", 0, 1,
	  "ACK sip:200@198.51.100.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKa4;rport\r\n"
	  "From: <sip:100@192.168.1.10>;tag=a1\r\nTo: <sip:200@198.51.100.1>;tag=b9\r\nCall-ID: call1@192.168.1.10\r\n"
	  "CSeq: 1 ACK\r\nContact: <sip:100@192.168.1.10:5060>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n" },
	{ "ACK out, LAN literals in odd places", 0, 1,
	  "ACK sip:200@198.51.100.1:5060;maddr=192.168.1.77 SIP/2.0\r\n"
	  "Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKa5;received=192.168.1.10\r\n"
	  "From: sipp <sip:sipp@192.168.1.10:5060>;tag=a1\r\nTo: <sip:200@198.51.100.1>;tag=b9\r\n"
	  "Call-ID: 1-2@192.168.1.10\r\nCSeq: 1 ACK\r\nX-Note: 1.192.168.1.10 and 192.168.1.10.5 and 10.0.0.1 192.168.1.2\r\n"
	  "Subject: 192.168.1.1000 192.168.001.010\r\nContent-Length: 0\r\n\r\n" },
	{ "180 out (phone answering)", 0, 1,
	  "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKx1;received=198.51.100.1\r\n"
	  "From: <sip:300@198.51.100.1>;tag=c1\r\nTo: <sip:100@192.168.1.10>;tag=d1\r\nCall-ID: in1@198.51.100.1\r\n"
	  "CSeq: 7 INVITE\r\nContact: <sip:100@192.168.1.10:5060>\r\nContent-Length: 0\r\n\r\n" },
	{ "100 out, no Contact", 0, 1,
	  "SIP/2.0 100 Trying\r\nVia: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKx1\r\n"
	  "From: <sip:300@198.51.100.1>;tag=c1\r\nTo: <sip:100@192.168.1.10>\r\nCall-ID: in1@198.51.100.1\r\n"
	  "CSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n" },
	{ "ACK out, Contact without port (flag change: stateful)", 0, 0,
	  "ACK sip:200@198.51.100.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKa6\r\n"
	  "From: <sip:100@192.168.1.10>;tag=a1\r\nTo: <sip:200@198.51.100.1>;tag=b9\r\nCall-ID: call1@192.168.1.10\r\n"
	  "CSeq: 1 ACK\r\nContact: <sip:100@192.168.1.10>\r\nContent-Length: 0\r\n\r\n" },
	{ "ACK out, two Vias", 0, 0,
	  "ACK sip:200@198.51.100.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKa7\r\n"
	  "Via: SIP/2.0/UDP 192.168.1.11:5060;branch=z9hG4bKa8\r\n"
	  "From: <sip:100@192.168.1.10>;tag=a1\r\nTo: <sip:200@198.51.100.1>;tag=b9\r\nCall-ID: call1@192.168.1.10\r\n"
	  "CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n" },
	{ "180 in, compact forms", 1, 0,
	  "SIP/2.0 180 Ringing\r\nv: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKi1\r\n"
	  "f: <sip:100@203.0.113.1>;tag=a1\r\nt: <sip:200@198.51.100.1>;tag=b9\r\ni: call1@203.0.113.1\r\n"
	  "CSeq: 1 INVITE\r\nl: 0\r\n\r\n" },
	{ "180 in, folded header", 1, 0,
	  "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKi1\r\n"
	  "From: <sip:100@203.0.113.1>\r\n ;tag=a1\r\nTo: <sip:200@198.51.100.1>;tag=b9\r\nCall-ID: call1@203.0.113.1\r\n"
	  "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n" },
	{ "180 in, display name in quotes", 1, 1,
	  "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKi1\r\n"
	  "From: \"Alice\" <sip:100@203.0.113.1>;tag=a1\r\nTo: <sip:200@198.51.100.1>;tag=b9\r\nCall-ID: call1@203.0.113.1\r\n"
	  "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n" },
	{ "ACK out, LAN address in a quoted display name", 0, 1,
	  "ACK sip:200@198.51.100.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKq1\r\n"
	  "From: \"me at 192.168.1.10, \\\"home\\\"\" <sip:100@192.168.1.10>;tag=a1\r\nTo: \"Bob\" <sip:200@198.51.100.1>;tag=b9\r\n"
	  "Call-ID: call1@192.168.1.10\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n" },
	{ "180 in, unbalanced quote in From", 1, 0,
	  "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKi1\r\n"
	  "From: \"Alice <sip:100@203.0.113.1>;tag=a1\r\nTo: <sip:200@198.51.100.1>;tag=b9\r\nCall-ID: call1@203.0.113.1\r\n"
	  "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n" },
	{ "180 in, quotes in Contact", 1, 0,
	  "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKi1\r\n"
	  "From: <sip:100@203.0.113.1>;tag=a1\r\nTo: <sip:200@198.51.100.1>;tag=b9\r\nCall-ID: call1@203.0.113.1\r\n"
	  "CSeq: 1 INVITE\r\nContact: \"Bob\" <sip:200@198.51.100.1>\r\nContent-Length: 0\r\n\r\n" },
	{ "183 in with a body", 1, 0,
	  "SIP/2.0 183 Session Progress\r\nVia: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKi1\r\n"
	  "From: <sip:100@203.0.113.1>;tag=a1\r\nTo: <sip:200@198.51.100.1>;tag=b9\r\nCall-ID: call1@203.0.113.1\r\n"
	  "CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n" },
	{ "180 in, octets after Content-Length: 0", 1, 0,
	  "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKi1\r\n"
	  "From: <sip:100@203.0.113.1>;tag=a1\r\nTo: <sip:200@198.51.100.1>;tag=b9\r\nCall-ID: call1@203.0.113.1\r\n"
	  "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\nINVITE sip:x@192.168.1.1 SIP/2.0\r\n" },
	{ "200 in (final response: the daemon's)", 1, 0,
	  "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKi1\r\n"
	  "From: <sip:100@203.0.113.1>;tag=a1\r\nTo: <sip:200@198.51.100.1>;tag=b9\r\nCall-ID: call1@203.0.113.1\r\n"
	  "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n" },
	{ "BYE out (the daemon's)", 0, 0,
	  "BYE sip:200@198.51.100.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKb1\r\n"
	  "From: <sip:100@192.168.1.10>;tag=a1\r\nTo: <sip:200@198.51.100.1>;tag=b9\r\nCall-ID: call1@192.168.1.10\r\n"
	  "CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n" },
	{ "ACK out from a phone with no binding", 0, 0, NULL /* sent from 192.168.1.99 below */ },
	{ "180 in, LF-only lines", 1, 0,
	  "SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKi1\n"
	  "From: <sip:100@203.0.113.1>;tag=a1\nTo: <sip:200@198.51.100.1>;tag=b9\nCall-ID: call1@203.0.113.1\n"
	  "CSeq: 1 INVITE\nContent-Length: 0\n\n" },
	{ "180 in, Via port of an unknown binding", 1, 0,
	  "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 203.0.113.1:7777;branch=z9hG4bKi1\r\n"
	  "From: <sip:100@203.0.113.1>;tag=a1\r\nTo: <sip:200@198.51.100.1>;tag=b9\r\nCall-ID: call1@203.0.113.1\r\n"
	  "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n" },
	{ "180 in, rport=05060 and received of someone else", 1, 1,
	  "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 203.0.113.1:5060;rport=05060;received=198.51.100.7;branch=z9hG4bKi1\r\n"
	  "From: <sip:100@203.0.113.1>;tag=a1\r\nTo: <sip:200@198.51.100.1>;tag=b9\r\nCall-ID: call1@203.0.113.1\r\n"
	  "CSeq: 1 INVITE\r\nContent-Length: 00\r\n\r\n" },
};

static const char *own_text(const char *name)
{
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (strcmp(own[i].name, name) == 0)
			return own[i].text;
	fprintf(stderr, "no case %s\n", name);
	exit(1);
}

static void own_cases(void)
{
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
		const struct own *c = &own[i];
		char tag[160];
		snprintf(tag, sizeof(tag), "own/%s", c->name);
		if (!c->text) {
			static const char ack[] =
				"ACK sip:200@198.51.100.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.99:5060;branch=z9hG4bKz\r\n"
				"From: <sip:1@192.168.1.99>;tag=a\r\nTo: <sip:2@198.51.100.1>;tag=b\r\nCall-ID: z@192.168.1.99\r\n"
				"CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n";
			run_one(tag, (const uint8_t *)ack, sizeof(ack) - 1, 0xc0a80163u, 5060, REMOTE, 5060, 0, 0);
			continue;
		}
		uint32_t n = (uint32_t)strlen(c->text);
		if (c->in)
			run_one(tag, (const uint8_t *)c->text, n, REMOTE, 5060, PHONE, 5060, c->handled, 0);
		else
			run_one(tag, (const uint8_t *)c->text, n, PHONE, 5060, REMOTE, 5060, c->handled, 0);
	}
	/* SIP from the LAN to a DMZ: never reaches the queue, so not ours */
	if (wan_idx) {
		const char *t = own_text("ACK out");
		setup_call();
		run_one("own/ACK out to the DMZ (route not via the WAN)", (const uint8_t *)t, (uint32_t)strlen(t),
			PHONE, 5060, 0x0a090909u, 5060, 0, 0);
		setup_call();
		run_one("own/ACK out (route via the WAN)", (const uint8_t *)t, (uint32_t)strlen(t), PHONE, 5060,
			REMOTE, 5060, 1, 0);
	}
	/* after a WAN address change: dialog ids are the daemon's */
	char tag[] = "own/ACK out after a WAN change (pub_old set)";
	setup_call();
	const char *t = own_text("ACK out");
	run_one(tag, (const uint8_t *)t, (uint32_t)strlen(t), PHONE, 5060, REMOTE, 5060, 0, 0xcb007199u);
}

/* every torture message, both ways, in a call's context */
static void torture(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	static uint8_t in[66000];

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[600], tag[700];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		long n = slurp(path, in, sizeof(in));
		if (n <= 0)
			continue;
		setup_call();
		snprintf(tag, sizeof(tag), "%s (in)", path);
		run_one(tag, in, (uint32_t)n, REMOTE, 5060, PHONE, 5060, -1, 0);
		setup_call();
		snprintf(tag, sizeof(tag), "%s (out)", path);
		run_one(tag, in, (uint32_t)n, PHONE, 5060, REMOTE, 5060, -1, 0);
	}
	closedir(d);
}

/* ns per packet of the program alone (test_run's own timing). handled:
 * what the program must do with it (1: rewrite and mark), so that a
 * "rewrite" figure never measures a pass by mistake. */
static void bench(const char *name, const char *text, int in, int handled)
{
	static uint8_t frame[4096], got[4096];
	uint32_t n = (uint32_t)strlen(text);

	setup_call();
	mirror(in, 0);
	struct addr ph = addr_v4(PHONE);
	const struct binding *b = binding_find(&ph, 5060);
	memset(frame, 0, 14);
	frame[12] = 0x08;
	uint32_t tl = in ? build_ip(frame + 14, REMOTE, 5060, PUB, b ? b->pub_port : 5060, (const uint8_t *)text, n)
			 : build_ip(frame + 14, PHONE, 5060, REMOTE, 5060, (const uint8_t *)text, n);
	struct __sk_buff ctx = { 0 }, ctx_out;
	if (in && wan_idx)
		ctx.ifindex = wan_idx;
	/* one run per call: with repeat > 1 the program would see its own
	 * output again (already rewritten, fewer edits) */
	uint64_t sum = 0;
	int runs = 0;
	for (int i = 0; i < 20000; i++) {
		memset(&ctx_out, 0, sizeof(ctx_out));
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = 14 + tl, .data_out = got,
			    .data_size_out = sizeof(got), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
			    .ctx_out = &ctx_out, .ctx_size_out = sizeof(ctx_out), .repeat = 1);
		if (bpf_prog_test_run_opts(prog_fd, &o) == 0) {
			if (i == 0 && !!(ctx_out.mark & MARK) != handled)
				fail(name, "cost case %s (mark 0x%x)", handled ? "not handled" : "handled", ctx_out.mark);
			sum += o.duration;
			runs++;
		}
	}
	if (runs)
		printf("  cost: %-34s %5llu ns/packet (test_run, mean of %d single runs, %u bytes)\n", name,
		       (unsigned long long)(sum / (uint64_t)runs), runs, n);
}

/* the cases make fastpath-cost reports (docs/fastpath.md quotes them) */
static void bench_all(void)
{
	bench("pass (200 OK in: the daemon's)", own_text("200 in (final response: the daemon's)"), 1, 0);
	bench("rewrite 100 in", own_text("100 Trying in"), 1, 1);
	bench("rewrite 180 in", own_text("180 Ringing in, Contact, no rport value"), 1, 1);
	bench("rewrite ACK in", own_text("ACK in, Request-URI to us"), 1, 1);
	bench("rewrite ACK out", own_text("ACK out"), 0, 1);
	bench("rewrite ACK out (odd literals)", own_text("ACK out, LAN literals in odd places"), 0, 1);
}

int main(int argc, char **argv)
{
	const char *obj_path = argc > 1 ? argv[1] : "build/sipfast.bpf.o";
	struct bpf_object *obj;

	libbpf_set_print(NULL);
	netns_setup();
	obj = bpf_object__open_file(obj_path, NULL);
	if (!obj) {
		fprintf(stderr, "FAIL: %s: %s\n", obj_path, strerror(errno));
		return 1;
	}
	/* the verifier's figures (log level 4: statistics only) */
	static char vlog[65536];
	struct bpf_program *vp = bpf_object__find_program_by_name(obj, "sipfast_ingress");
	if (vp) {
		bpf_program__set_log_buf(vp, vlog, sizeof(vlog));
		bpf_program__set_log_level(vp, 4);
	}
	/* May we use bpf() at all? (A verifier refusal is EACCES too: that
	 * one is a failure, not a skip.) */
	int probe = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sipfast_probe", 4, 4, 1, NULL);
	if (probe < 0 && (errno == EPERM || errno == EACCES)) {
		printf("SKIP: bpf() not permitted here (%s): the fast-path agreement test needs root\n",
		       strerror(errno));
		return 0;
	}
	if (probe >= 0)
		close(probe);
	if (bpf_object__load(obj)) {
		fprintf(stderr, "FAIL: loading %s: %s (the verifier refused it?)\n%s\n", obj_path, strerror(errno),
			vlog);
		return 1;
	}
	prog_fd = bpf_program__fd(bpf_object__find_program_by_name(obj, "sipfast_ingress"));
	cfg_fd = bpf_object__find_map_fd_by_name(obj, "sipfast_cfg");
	priv_fd = bpf_object__find_map_fd_by_name(obj, "sipfast_priv");
	pub_fd = bpf_object__find_map_fd_by_name(obj, "sipfast_pub");
	stats_fd = bpf_object__find_map_fd_by_name(obj, "sipfast_stats");
	ncpu = libbpf_num_possible_cpus();
	if (prog_fd < 0 || cfg_fd < 0 || priv_fd < 0 || pub_fd < 0 || stats_fd < 0 || ncpu <= 0) {
		fprintf(stderr, "FAIL: the object lacks the program or a map of bpf/sipfast.h\n");
		return 1;
	}

	for (char *l = strtok(vlog, "\n"); l; l = strtok(NULL, "\n"))
		if (strstr(l, "processed") || strstr(l, "verification time") || strstr(l, "stack depth"))
			printf("  verifier: %s\n", l);
	struct bpf_prog_info info = { 0 };
	__u32 il = sizeof(info);
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &il) == 0)
		printf("  verifier: xlated %u bytes (%u insns), jited %u bytes\n", info.xlated_prog_len,
		       info.xlated_prog_len / 8, info.jited_prog_len);

	conf_defaults(&cf);
	cf.public_ip = PUB;
	cf.lan[0] = conf_net_v4(LAN_NET, 24);
	cf.n_lan = 1;
	cf.media_other_hosts = 1;
	if (alg_init(&cf, &pub4) < 0)
		return 1;

	/* --cost: only the figures (make fastpath-cost) */
	if (argc > 2 && strcmp(argv[2], "--cost") == 0) {
		bench_all();
		alg_fini();
		bpf_object__close(obj);
		return failures ? 1 : 0;
	}
	corpus();
	setup_call();
	own_cases();
	torture("tests/data/torture/rfc4475");
	torture("tests/data/torture/rfc5118");

	printf("fastpath-agree: %d messages, %d handled inbound, %d handled outbound, %d passed\n", n_msgs,
	       n_handled_in, n_handled_out, n_passed);
	for (int k = 0; k < 6; k++)
		printf("  %-10s handled %3d  passed %3d\n", kind_name[k], kind_handled[k], kind_passed[k]);
	static const char *why[] = { "handled_out", "handled_in", "pass_not_sip", "pass_stateful",
				     "pass_unsure", "pass_no_binding", "errors" };
	for (uint32_t i = 0; i < SIPFAST_STAT_MAX && i < 7; i++)
		printf("  counter %-16s %llu\n", why[i], (unsigned long long)stat_sum(i));
	bench_all();
	alg_fini();
	bpf_object__close(obj);
	if (failures) {
		printf("fastpath-agree: FAIL (%d)\n", failures);
		return 1;
	}
	printf("fastpath-agree: OK\n");
	return 0;
}
