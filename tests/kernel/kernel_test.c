/* Kernel test for nftmap, ct, nfq and rules against the real kernel.
 * Run by tests/kernel/run.sh inside the router namespace of a three-namespace
 * lab:  A (10.0.1.2, LAN host) -- lan0 [router R] wan0 -- B (192.0.2.2, WAN)
 * with R masquerading on wan0. The test opens sockets in A and B with
 * setns() and shells out to nft/iptables/conntrack only to observe.
 * Last line: "N passed, N failed"; exit status non-zero on any failure. */
#include "conf.h"
#include "ct.h"
#include "log.h"
#include "nfq.h"
#include "nftmap.h"
#include "rules.h"
#include "stats.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int passed, failed;
static const char *ns_a, *ns_b, *root;

#define IP4(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))
#define A_IP   IP4(10, 0, 1, 2)
#define R_LAN  IP4(10, 0, 1, 1)
#define R_WAN  IP4(192, 0, 2, 1)
#define B_IP   IP4(192, 0, 2, 2)
/* nftmap takes struct addr: an IPv4 host-order address, as a pointer. */
#define A4(ip) (&(struct addr){ .b = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, \
	(uint8_t)((ip) >> 24), (uint8_t)((ip) >> 16), (uint8_t)((ip) >> 8), (uint8_t)(ip) } })

static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	fflush(stderr);
	printf("%s: ", ok ? "PASS" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (ok)
		passed++;
	else
		failed++;
}

/* Run a shell command (observation only), capture stdout. Returns the exit
 * status or -1. */
static int sh(char *out, size_t outlen, const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	FILE *p;
	size_t n = 0;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (out && outlen) {
		n = fread(out, 1, outlen - 1, p);
		out[n] = '\0';
	} else {
		char sink[4096];

		while (fread(sink, 1, sizeof(sink), p) > 0)
			;
	}
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The JSON of one map with all white space removed. */
static char mapbuf[1 << 20];
static const char *map_json(const char *map)
{
	char *r, *w;

	/* out6, in_peer6, in_any6 live in table ip6 (wan.masquerade6) */
	const char *fam = map[strlen(map) - 1] == '6' ? "ip6" : "ip";

	if (sh(mapbuf, sizeof(mapbuf), "nft -j list map %s sipalgd %s 2>&1", fam, map) != 0)
		return "";
	for (r = w = mapbuf; *r; r++)
		if (*r != ' ' && *r != '\n' && *r != '\t')
			*w++ = *r;
	*w = '\0';
	return mapbuf;
}

static int map_has_pair(const char *map, const char *kip, unsigned kport,
			const char *dip, unsigned dport)
{
	char pat[160];

	if (kip)
		snprintf(pat, sizeof(pat), "[{\"concat\":[\"%s\",%u]},{\"concat\":[\"%s\",%u]}]",
			 kip, kport, dip, dport);
	else
		snprintf(pat, sizeof(pat), "[%u,{\"concat\":[\"%s\",%u]}]", kport, dip, dport);
	return strstr(map_json(map), pat) != NULL;
}

static int map_has_key(const char *map, const char *kip, unsigned kport)
{
	char pat[96];

	if (kip)
		snprintf(pat, sizeof(pat), "[{\"concat\":[\"%s\",%u]},", kip, kport);
	else
		snprintf(pat, sizeof(pat), "[%u,{", kport);
	return strstr(map_json(map), pat) != NULL;
}

static int map_count(const char *map)
{
	const char *s = map_json(map);
	int n = 0;

	/* every element is "[key,{"concat":[...]}]": count the data halves */
	while ((s = strstr(s, ",{\"concat\":")) != NULL) {
		n++;
		s++;
	}
	return n;
}

/* A UDP socket bound in namespace `ns` (NULL: the router's own). */
static int udp_sock(const char *ns, uint32_t ip, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(ip) };
	char path[256];
	int self = -1, fd = -1, s = -1, one = 1;

	if (ns) {
		snprintf(path, sizeof(path), "/run/netns/%s", ns);
		self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (self < 0 || fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
			perror("setns");
			exit(2);
		}
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s >= 0) {
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			perror("bind");
			close(s);
			s = -1;
		}
	}
	if (ns) {
		if (setns(self, CLONE_NEWNET) < 0) {
			perror("setns back");
			exit(2);
		}
		close(self);
		close(fd);
	}
	return s;
}

/* The same for IPv6 (the diversion's ip6tables copy). */
static int udp6_sock(const char *ns, const char *ip, uint16_t port)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	char path[256];
	int self, fd, s, one = 1;

	inet_pton(AF_INET6, ip, &sa.sin6_addr);
	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (self < 0 || fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
		perror("setns");
		exit(2);
	}
	s = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s >= 0) {
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			perror("bind6");
			close(s);
			s = -1;
		}
	}
	if (setns(self, CLONE_NEWNET) < 0) {
		perror("setns back");
		exit(2);
	}
	close(self);
	close(fd);
	return s;
}

static int udp6_send(int s, const char *ip, uint16_t port, const char *msg)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(port) };

	inet_pton(AF_INET6, ip, &sa.sin6_addr);
	return (int)sendto(s, msg, strlen(msg), 0, (struct sockaddr *)&sa, sizeof(sa));
}

static int udp_send(int s, uint32_t ip, uint16_t port, const char *msg)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(ip) };

	return (int)sendto(s, msg, strlen(msg), 0, (struct sockaddr *)&sa, sizeof(sa));
}

/* Receive one datagram within `ms` into buf (NUL-terminated); its length,
 * or -1. *ss: where it came from, either family. */
static int recv_any(int s, char *buf, size_t len, int ms, struct sockaddr_storage *ss)
{
	struct pollfd pfd = { .fd = s, .events = POLLIN };
	socklen_t sl = sizeof(*ss);
	int n;

	if (poll(&pfd, 1, ms) <= 0)
		return -1;
	n = (int)recvfrom(s, buf, len - 1, MSG_DONTWAIT, (struct sockaddr *)ss, &sl);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/* IPv4: the source address (host order) and port. */
static int udp_recv(int s, char *buf, size_t len, int ms, uint32_t *from, uint16_t *fport)
{
	struct sockaddr_storage ss;
	const struct sockaddr_in *sa = (const struct sockaddr_in *)&ss;
	int n = recv_any(s, buf, len, ms, &ss);

	if (n >= 0 && from)
		*from = ntohl(sa->sin_addr.s_addr);
	if (n >= 0 && fport)
		*fport = ntohs(sa->sin_port);
	return n;
}

/* IPv6: the source address as text into from[INET6_ADDRSTRLEN], and port. */
static int udp6_recv(int s, char *buf, size_t len, int ms, char *from, uint16_t *fport)
{
	struct sockaddr_storage ss;
	const struct sockaddr_in6 *sa = (const struct sockaddr_in6 *)&ss;
	int n = recv_any(s, buf, len, ms, &ss);

	from[0] = '\0';
	*fport = 0;
	if (n >= 0) {
		inet_ntop(AF_INET6, &sa->sin6_addr, from, INET6_ADDRSTRLEN);
		*fport = ntohs(sa->sin6_port);
	}
	return n;
}

static void drain(int s)
{
	char b[2048];
	int i;

	for (i = 0; i < 100 && udp_recv(s, b, sizeof(b), 0, NULL, NULL) >= 0; i++)
		;
}

/* ---- IPv4/UDP checksums, computed independently of the daemon ---------- */

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)(p[len - 1] << 8);
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static int udp_csum_ok(const uint8_t *pkt, uint32_t len)
{
	uint32_t ihl = (pkt[0] & 15) * 4, ulen, sum;
	uint8_t ph[12];

	if (len < ihl + 8)
		return 0;
	ulen = (uint32_t)(pkt[ihl + 4] << 8 | pkt[ihl + 5]);
	if (ulen > len - ihl)
		return 0;
	if (pkt[ihl + 6] == 0 && pkt[ihl + 7] == 0)
		return 1; /* no checksum */
	memcpy(ph, pkt + 12, 8);
	ph[8] = 0;
	ph[9] = 17;
	ph[10] = (uint8_t)(ulen >> 8);
	ph[11] = (uint8_t)ulen;
	sum = csum_add(0, ph, 12);
	sum = csum_add(sum, pkt + ihl, ulen);
	return csum_fold(sum) == 0 && csum_fold(csum_add(0, pkt, ihl)) == 0;
}

/* Copy the IP/UDP headers of `in` and put `payload` behind them, fixing
 * lengths and both checksums. Returns the new length. */
static uint32_t rewrite(const uint8_t *in, uint8_t *out, const char *payload)
{
	uint32_t ihl = (in[0] & 15) * 4, plen = (uint32_t)strlen(payload);
	uint32_t tot = ihl + 8 + plen, ulen = 8 + plen, sum;
	uint16_t c;
	uint8_t ph[12];

	memcpy(out, in, ihl + 8);
	memcpy(out + ihl + 8, payload, plen);
	out[2] = (uint8_t)(tot >> 8);
	out[3] = (uint8_t)tot;
	out[10] = out[11] = 0;
	c = csum_fold(csum_add(0, out, ihl));
	out[10] = (uint8_t)(c >> 8);
	out[11] = (uint8_t)c;
	out[ihl + 4] = (uint8_t)(ulen >> 8);
	out[ihl + 5] = (uint8_t)ulen;
	out[ihl + 6] = out[ihl + 7] = 0;
	memcpy(ph, out + 12, 8);
	ph[8] = 0;
	ph[9] = 17;
	ph[10] = (uint8_t)(ulen >> 8);
	ph[11] = (uint8_t)ulen;
	sum = csum_add(0, ph, 12);
	sum = csum_add(sum, out + ihl, ulen);
	c = csum_fold(sum);
	if (c == 0)
		c = 0xffff;
	out[ihl + 6] = (uint8_t)(c >> 8);
	out[ihl + 7] = (uint8_t)c;
	return tot;
}

/* Wait until `want` packets were read from the queue (bounded). */
static int nfq_wait(struct nfq_pkt *pkts, int want, int ms)
{
	struct pollfd pfd = { .fd = nfq_sock_fd(), .events = POLLIN };
	int got = 0, rounds;

	for (rounds = 0; got < want && rounds < 50; rounds++) {
		int n;

		if (poll(&pfd, 1, ms / 10 + 1) < 0)
			break;
		n = nfq_recv_burst(pkts + got, want - got);
		if (n < 0)
			break;
		got += n;
	}
	return got;
}

static void conf_fill(struct conf *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->wan_if, sizeof(c->wan_if), "wan0");
	c->public_ip = R_WAN;
	c->lan[0] = conf_net_v4(IP4(10, 0, 1, 0), 24);
	c->n_lan = 1;
	c->sip_ports[0] = 5060;
	c->n_sip_ports = 1;
	c->queue_num = 7;
	c->queue_maxlen = 4096;
	c->divert = CONF_DIVERT_IPTABLES;
	c->sip_ipv6 = 1; /* the default */
	c->pinhole_src = CONF_PINHOLE_PEER;
	c->max_pinholes = 16384;
	c->max_bindings = 16384;
	snprintf(c->nft_table, sizeof(c->nft_table), "sipalgd");
}

/* ---- nftmap ------------------------------------------------------------ */

/* `nft list table ip sipalgd` as nftmap_open made it without masquerade6:
 * with it, the IPv4 table must read the same. */
static char table_ip_plain[65536];

static void test_nftmap(const struct conf *c)
{
	char out[65536], out2[65536], line[256];
	uint64_t b0, e0, err0;
	int i, n, base;
	FILE *f;
	char *dump;
	size_t dlen;

	/* A stale table from a "crashed" run, with an element of its own. */
	sh(NULL, 0, "nft add table ip sipalgd && nft add map ip sipalgd out4 "
	   "'{ type ipv4_addr . inet_service : ipv4_addr . inet_service; }' && "
	   "nft add element ip sipalgd out4 '{ 10.9.9.9 . 1 : 192.0.2.1 . 1 }'");
	check(map_has_key("out4", "10.9.9.9", 1), "stale table with a stale element set up");

	check(nftmap_open(c) == 0, "nftmap_open");
	check(sh(out, sizeof(out), "nft list table ip sipalgd") == 0 &&
	      strstr(out, "map in_peer") && strstr(out, "map in_any") &&
	      strstr(out, "chain pre") && strstr(out, "chain post") &&
	      strstr(out, "priority dstnat - 5") && strstr(out, "priority srcnat - 5") &&
	      strstr(out, "iifname \"wan0\" fib daddr type local") &&
	      strstr(out, "snat ip to ip saddr . udp sport map @out4"),
	      "table ip sipalgd has the maps and chains");
	check(!map_has_key("out4", "10.9.9.9", 1), "stale element gone after take-over");
	snprintf(table_ip_plain, sizeof(table_ip_plain), "%s", out);
	/* The shipped config (no wan.masquerade6): no IPv6 table, and an
	 * IPv6 element is refused where the policy can see it. */
	check(sh(NULL, 0, "nft list table ip6 sipalgd >/dev/null 2>&1") != 0,
	      "without wan.masquerade6: no table ip6 sipalgd");
	{
		struct addr p6, w6;

		addr_parse_str("2001:db8:1::2", &p6);
		addr_parse_str("2001:db8:2::1", &w6);
		err0 = stats[ST_nft_errors];
		nftmap_snat_add(&p6, 4000, &w6, 40000);
		nftmap_snat_del(&p6, 4000);
		n = nftmap_commit();
		check(n == 1 && stats[ST_nft_errors] == err0 + 1 &&
		      sh(NULL, 0, "nft list table ip6 sipalgd >/dev/null 2>&1") != 0,
		      "without wan.masquerade6: an IPv6 snat is refused and counted (commit %d), no table made", n);
	}

	/* kernel-rules/sipalgd-nat.nft must produce the same table. */
	n = sh(out2, sizeof(out2),
	       "sed -e 's/^define WAN_IF = .*/define WAN_IF = \"wan0\"/' "
	       "%s/kernel-rules/sipalgd-nat.nft | nft -f - && nft list table ip sipalgd", root);
	check(n == 0 && strcmp(out, out2) == 0,
	      "kernel-rules/sipalgd-nat.nft gives the same table as nftmap_open");

	/* add, commit, visible; one batch for both */
	b0 = stats[ST_nft_batches];
	e0 = stats[ST_nft_elements];
	nftmap_snat_add(A4(A_IP), 4000, A4(R_WAN), 40000);
	nftmap_snat_add(A4(IP4(10, 0, 1, 3)), 4001, A4(R_WAN), 40001);
	check(nftmap_commit() == 0, "commit two snat adds");
	check(stats[ST_nft_batches] == b0 + 1 && stats[ST_nft_elements] == e0 + 2,
	      "two elements in one batch (batches +%llu, elements +%llu)",
	      (unsigned long long)(stats[ST_nft_batches] - b0),
	      (unsigned long long)(stats[ST_nft_elements] - e0));
	check(map_has_pair("out4", "10.0.1.2", 4000, "192.0.2.1", 40000) &&
	      map_has_pair("out4", "10.0.1.3", 4001, "192.0.2.1", 40001),
	      "both out4 elements visible in nft -j list map");

	nftmap_snat_del(A4(A_IP), 4000);
	check(nftmap_commit() == 0, "commit snat del");
	check(!map_has_key("out4", "10.0.1.2", 4000) &&
	      map_has_pair("out4", "10.0.1.3", 4001, "192.0.2.1", 40001),
	      "deleted element gone, the other stays");

	nftmap_snat_add(A4(IP4(10, 0, 1, 5)), 5000, A4(R_WAN), 45000);
	nftmap_snat_del(A4(IP4(10, 0, 1, 5)), 5000);
	check(nftmap_commit() == 0 && !map_has_key("out4", "10.0.1.5", 5000),
	      "add then del in one commit: absent, no error");

	nftmap_snat_del(A4(IP4(10, 0, 1, 3)), 4001);
	nftmap_snat_add(A4(IP4(10, 0, 1, 3)), 4001, A4(R_WAN), 40009);
	check(nftmap_commit() == 0 && map_has_pair("out4", "10.0.1.3", 4001, "192.0.2.1", 40009),
	      "del then add in one commit replaces the mapping");

	/* One bad element must not take the others down with it (the kernel
	 * aborts the whole transaction; we must resend the good ones). */
	err0 = stats[ST_nft_errors];
	nftmap_snat_add(A4(IP4(10, 0, 1, 3)), 4001, A4(R_WAN), 40010); /* clash: EBUSY */
	nftmap_snat_add(A4(IP4(10, 0, 1, 7)), 4007, A4(R_WAN), 40007);
	n = nftmap_commit();
	check(n == 1 && stats[ST_nft_errors] == err0 + 1,
	      "a clashing add is one refusal (commit returned %d)", n);
	check(map_has_pair("out4", "10.0.1.7", 4007, "192.0.2.1", 40007) &&
	      map_has_pair("out4", "10.0.1.3", 4001, "192.0.2.1", 40009),
	      "the good element of the failed batch went in; the old mapping kept");

	nftmap_snat_del(A4(IP4(10, 9, 9, 9)), 9);
	nftmap_snat_add(A4(IP4(10, 0, 1, 8)), 4008, A4(R_WAN), 40008);
	check(nftmap_commit() == 0 && map_has_pair("out4", "10.0.1.8", 4008, "192.0.2.1", 40008),
	      "deleting an absent element is not an error, and does not lose its batch");
	nftmap_snat_del(A4(IP4(10, 0, 1, 8)), 4008);
	check(nftmap_commit() == 0 && !map_has_key("out4", "10.0.1.8", 4008), "and out again");

	nftmap_snat_add(A4(IP4(10, 0, 1, 7)), 4007, A4(R_WAN), 40007);
	check(nftmap_commit() == 0, "adding the same mapping again is not an error");

	nftmap_snat_del(A4(IP4(10, 0, 1, 7)), 4007);
	nftmap_snat_add(A4(IP4(10, 0, 1, 7)), 4007, A4(R_WAN), 40008);
	nftmap_snat_del(A4(IP4(10, 0, 1, 7)), 4007);
	check(nftmap_commit() == 0 && !map_has_key("out4", "10.0.1.7", 4007),
	      "del, add, del in one commit: absent");

	/* refcounting, in_peer */
	nftmap_dnat_ref(A4(B_IP), 40100, A4(A_IP), 6100);
	nftmap_dnat_ref(A4(B_IP), 40100, A4(A_IP), 6100);
	check(nftmap_commit() == 0 && map_has_pair("in_peer", "192.0.2.2", 40100, "10.0.1.2", 6100),
	      "in_peer element after two refs");
	nftmap_dnat_unref(A4(B_IP), 40100);
	check(nftmap_commit() == 0 && map_has_pair("in_peer", "192.0.2.2", 40100, "10.0.1.2", 6100),
	      "two refs, one unref: element stays");
	dump = NULL;
	f = open_memstream(&dump, &dlen);
	nftmap_dump(f);
	fclose(f);
	check(dump && strstr(dump, "peer 192.0.2.2 pub 40100 -> 10.0.1.2:6100 refs 1\n"),
	      "dump shows the in_peer element with refs 1: %s", dump ? dump : "(null)");
	free(dump);
	nftmap_dnat_unref(A4(B_IP), 40100);
	check(nftmap_commit() == 0 && !map_has_key("in_peer", "192.0.2.2", 40100),
	      "last unref deletes the element");

	/* in_any, and a ref that moves the target */
	nftmap_dnat_ref(A4(0), 40000, A4(A_IP), 6000);
	nftmap_dnat_ref(A4(0), 40200, A4(A_IP), 6200);
	check(nftmap_commit() == 0 && map_has_pair("in_any", NULL, 40000, "10.0.1.2", 6000) &&
	      map_has_pair("in_any", NULL, 40200, "10.0.1.2", 6200), "in_any elements");
	nftmap_dnat_ref(A4(0), 40200, A4(IP4(10, 0, 1, 3)), 6201);
	check(nftmap_commit() == 0 && map_has_pair("in_any", NULL, 40200, "10.0.1.3", 6201),
	      "a ref with another target replaces the element");
	dump = NULL;
	f = open_memstream(&dump, &dlen);
	nftmap_dump(f);
	fclose(f);
	check(dump && strstr(dump, "peer * pub 40000 -> 10.0.1.2:6000 refs 1\n") &&
	      strstr(dump, "peer * pub 40200 -> 10.0.1.3:6201 refs 2\n") &&
	      !strstr(dump, "peer 192.0.2.2"),
	      "dump of in_any elements:\n%s", dump ? dump : "(null)");
	free(dump);
	nftmap_dnat_unref(A4(0), 40200);
	nftmap_dnat_unref(A4(0), 40200);
	check(nftmap_commit() == 0 && !map_has_key("in_any", NULL, 40200), "in_any unref x2: gone");

	/* Many elements: several transactions, and more than the pending list
	 * holds (forced commit in the middle). */
	base = map_count("out4");
	b0 = stats[ST_nft_batches];
	for (i = 0; i < 5000; i++)
		nftmap_snat_add(A4(IP4(10, 1, i / 250, i % 250 + 1)), (uint16_t)(10000 + i), A4(R_WAN),
				(uint16_t)(20000 + i));
	n = nftmap_commit();
	b0 = stats[ST_nft_batches] - b0;
	check(n == 0 && map_count("out4") == base + 5000 && b0 > 5,
	      "5000 adds: %d errors, %d elements (expected %d), %llu batches", n,
	      map_count("out4"), base + 5000, (unsigned long long)b0);
	for (i = 0; i < 5000; i++)
		nftmap_snat_del(A4(IP4(10, 1, i / 250, i % 250 + 1)), (uint16_t)(10000 + i));
	n = nftmap_commit();
	check(n == 0 && map_count("out4") == base, "5000 deletes: %d errors, %d left (expected %d)",
	      n, map_count("out4"), base);

	/* The maps really steer traffic. in_any 40000 -> 10.0.1.2:6000: */
	{
		int sa = udp_sock(ns_a, A_IP, 6000), sb = udp_sock(ns_b, B_IP, 7000);
		int sa2 = udp_sock(ns_a, A_IP, 6001), sb2 = udp_sock(ns_b, B_IP, 7001);
		uint32_t from = 0;
		uint16_t fport = 0;

		udp_send(sb, R_WAN, 40000, "dnat-test");
		n = udp_recv(sa, line, sizeof(line), 2000, &from, &fport);
		check(n > 0 && strcmp(line, "dnat-test") == 0 && from == B_IP && fport == 7000,
		      "in_any: WAN -> 192.0.2.1:40000 arrives at 10.0.1.2:6000 from 192.0.2.2:7000");
		nftmap_snat_add(A4(A_IP), 6001, A4(R_WAN), 41001);
		check(nftmap_commit() == 0, "out4 for 10.0.1.2:6001");
		udp_send(sa2, B_IP, 7001, "snat-test");
		n = udp_recv(sb2, line, sizeof(line), 2000, &from, &fport);
		check(n > 0 && strcmp(line, "snat-test") == 0 && from == R_WAN && fport == 41001,
		      "out4: LAN 10.0.1.2:6001 leaves as 192.0.2.1:%u (want 41001)", fport);
		close(sa);
		close(sb);
		close(sa2);
		close(sb2);
	}
}

/* ---- nftmap, IPv6 (wan.masquerade6) ------------------------------------- */

static struct addr A6(const char *s)
{
	struct addr a;

	if (!addr_parse_str(s, &a)) {
		fprintf(stderr, "bad address %s\n", s);
		exit(2);
	}
	return a;
}

static char *dump_text(void)
{
	char *dump = NULL;
	size_t dlen;
	FILE *f = open_memstream(&dump, &dlen);

	nftmap_dump(f);
	fclose(f);
	return dump;
}

/* A (2001:db8:1::2) is a masqueraded LAN host, R's WAN is 2001:db8:2::1, B
 * (2001:db8:2::2) the far end: the lab's routed IPv6, NATed by our maps. */
static void test_nftmap6(const struct conf *c)
{
	struct addr a6 = A6("2001:db8:1::2"), a6b = A6("2001:db8:1::3"), w6 = A6("2001:db8:2::1"),
		    b6 = A6("2001:db8:2::2"), any6 = A6("::");
	char out[65536], line[256], from[INET6_ADDRSTRLEN];
	uint64_t b0, e0, err0;
	uint16_t fport;
	char *dump;
	int n;

	check(nftmap_open(c) == 0, "nftmap_open with wan.masquerade6");
	check(sh(out, sizeof(out), "nft list table ip sipalgd") == 0 && strcmp(out, table_ip_plain) == 0,
	      "with wan.masquerade6, table ip sipalgd reads exactly as without");
	check(sh(out, sizeof(out), "nft list table ip6 sipalgd") == 0 &&
	      strstr(out, "map out6") && strstr(out, "map in_peer6") && strstr(out, "map in_any6") &&
	      strstr(out, "type ipv6_addr . inet_service : ipv6_addr . inet_service") &&
	      strstr(out, "priority dstnat - 5") && strstr(out, "priority srcnat - 5") &&
	      strstr(out, "iifname \"wan0\" fib daddr type local dnat ip6 to ip6 saddr . udp dport map @in_peer6") &&
	      strstr(out, "iifname \"wan0\" fib daddr type local dnat ip6 to udp dport map @in_any6") &&
	      strstr(out, "oifname \"wan0\" snat ip6 to ip6 saddr . udp sport map @out6") &&
	      !strstr(out, "in_lan"),
	      "table ip6 sipalgd has out6, in_peer6, in_any6 and the rules:\n%s", out);
	{
		char out2[65536];

		/* kernel-rules/sipalgd-nat6.nft must produce the same table. */
		n = sh(out2, sizeof(out2),
		       "sed -e 's/^define WAN_IF = .*/define WAN_IF = \"wan0\"/' "
		       "%s/kernel-rules/sipalgd-nat6.nft | nft -f - && nft list table ip6 sipalgd", root);
		check(n == 0 && strcmp(out, out2) == 0,
		      "kernel-rules/sipalgd-nat6.nft gives the same table ip6 as nftmap_open");
	}

	/* both families in one commit, one transaction */
	b0 = stats[ST_nft_batches];
	e0 = stats[ST_nft_elements];
	nftmap_snat_add(&a6, 4000, &w6, 40000);
	nftmap_snat_add(A4(A_IP), 4000, A4(R_WAN), 40000);
	check(nftmap_commit() == 0 && stats[ST_nft_batches] == b0 + 1 && stats[ST_nft_elements] == e0 + 2,
	      "an IPv6 and an IPv4 snat in one batch (batches +%llu, elements +%llu)",
	      (unsigned long long)(stats[ST_nft_batches] - b0),
	      (unsigned long long)(stats[ST_nft_elements] - e0));
	check(map_has_pair("out6", "2001:db8:1::2", 4000, "2001:db8:2::1", 40000) &&
	      map_has_pair("out4", "10.0.1.2", 4000, "192.0.2.1", 40000) && map_count("out6") == 1,
	      "out6 and out4 each hold their element: %s", map_json("out6"));
	nftmap_snat_del(&a6, 4000);
	check(nftmap_commit() == 0 && !map_has_key("out6", "2001:db8:1::2", 4000) &&
	      map_has_pair("out4", "10.0.1.2", 4000, "192.0.2.1", 40000),
	      "snat del of the IPv6 element: gone from out6, out4 untouched");
	nftmap_snat_del(A4(A_IP), 4000);
	err0 = stats[ST_nft_errors];
	nftmap_snat_add(&a6, 4001, &w6, 40001);
	nftmap_snat_add(&a6, 4001, &w6, 40011); /* later wins within a commit */
	check(nftmap_commit() == 0 && map_has_pair("out6", "2001:db8:1::2", 4001, "2001:db8:2::1", 40011),
	      "two adds of one IPv6 key in one commit: the later mapping");
	nftmap_snat_add(&a6, 4001, &w6, 40012); /* clash with the kernel's */
	n = nftmap_commit();
	check(n == 1 && stats[ST_nft_errors] == err0 + 1 &&
	      map_has_pair("out6", "2001:db8:1::2", 4001, "2001:db8:2::1", 40011),
	      "a clashing IPv6 add is one refusal (commit %d), the old mapping kept", n);
	nftmap_snat_del(&a6, 4001);
	check(nftmap_commit() == 0 && map_count("out6") == 0, "out6 empty again");

	/* refcounting in in_peer6 */
	nftmap_dnat_ref(&b6, 40100, &a6, 6100);
	nftmap_dnat_ref(&b6, 40100, &a6, 6100);
	check(nftmap_commit() == 0 && map_has_pair("in_peer6", "2001:db8:2::2", 40100, "2001:db8:1::2", 6100),
	      "in_peer6 element after two refs");
	nftmap_dnat_unref(&b6, 40100);
	check(nftmap_commit() == 0 && map_has_pair("in_peer6", "2001:db8:2::2", 40100, "2001:db8:1::2", 6100),
	      "two refs, one unref: the IPv6 element stays");
	dump = dump_text();
	check(dump && strstr(dump, "peer 2001:db8:2::2 pub 40100 -> [2001:db8:1::2]:6100 refs 1\n") &&
	      strstr(dump, "# inbound ipv4 0 ipv6 1\n"),
	      "dump shows the IPv6 element as [addr]:port and the family counts:\n%s", dump ? dump : "(null)");
	free(dump);
	{
		uint32_t cur = 0, refs = 0;
		struct addr peer, priv;
		uint16_t pp = 0, prp = 0;

		n = nftmap_inbound_next(&cur, &peer, &pp, &priv, &prp, &refs);
		check(n == 1 && addr_eq(&peer, &b6) && pp == 40100 && addr_eq(&priv, &a6) && prp == 6100 &&
		      refs == 1 && !nftmap_inbound_next(&cur, &peer, &pp, &priv, &prp, &refs),
		      "inbound_next gives the IPv6 element");
	}
	nftmap_dnat_unref(&b6, 40100);
	check(nftmap_commit() == 0 && !map_has_key("in_peer6", "2001:db8:2::2", 40100),
	      "last unref deletes the IPv6 element");

	/* "any" of each family: the same public port, two elements that
	 * never mix (:: is not ::ffff:0.0.0.0) */
	nftmap_dnat_ref(&any6, 40300, &a6, 6300);
	nftmap_dnat_ref(A4(0), 40300, A4(A_IP), 6300);
	check(nftmap_commit() == 0 && map_has_pair("in_any6", NULL, 40300, "2001:db8:1::2", 6300) &&
	      map_has_pair("in_any", NULL, 40300, "10.0.1.2", 6300) && map_count("in_peer6") == 0,
	      "in_any6 and in_any, same port: one element each");
	nftmap_dnat_ref(&any6, 40300, &a6b, 6301);
	check(nftmap_commit() == 0 && map_has_pair("in_any6", NULL, 40300, "2001:db8:1::3", 6301),
	      "a ref with another IPv6 target replaces the element");
	nftmap_dnat_unref(&any6, 40300);
	check(nftmap_commit() == 0 && map_has_pair("in_any6", NULL, 40300, "2001:db8:1::3", 6301) &&
	      map_has_pair("in_any", NULL, 40300, "10.0.1.2", 6300),
	      "IPv6 any unref (2 refs): both stay");
	nftmap_dnat_unref(&any6, 40300);
	check(nftmap_commit() == 0 && !map_has_key("in_any6", NULL, 40300) &&
	      map_has_pair("in_any", NULL, 40300, "10.0.1.2", 6300),
	      "last IPv6 any unref: in_any6 element gone, the IPv4 one stays");
	nftmap_dnat_unref(A4(0), 40300);
	check(nftmap_commit() == 0 && !map_has_key("in_any", NULL, 40300), "and the IPv4 any unref");

	/* no hairpin for IPv6: a LAN peer gets no element anywhere */
	nftmap_dnat_ref(&a6b, 40400, &a6, 6400);
	check(nftmap_commit() == 0 && map_count("in_peer6") == 0 && map_count("in_any6") == 0,
	      "an IPv6 LAN peer: no kernel element");
	nftmap_dnat_unref(&a6b, 40400);
	check(nftmap_commit() == 0, "and its unref is quiet");

	/* families mixed in one call: refused, counted, nothing sent */
	err0 = stats[ST_nft_errors];
	nftmap_dnat_ref(A4(0), 40500, &a6, 6500);
	nftmap_snat_add(&a6, 6500, A4(R_WAN), 40500);
	n = nftmap_commit();
	check(n == 2 && stats[ST_nft_errors] == err0 + 2 && !map_has_key("in_any", NULL, 40500) && map_count("out6") == 0 && map_count("out4") == 0,
	      "an IPv4 peer or public address for an IPv6 phone: refused (commit %d)", n);

	/* The maps really steer IPv6: in_any6 40000 -> [2001:db8:1::2]:6000,
	 * out6 [2001:db8:1::2]:6001 -> [2001:db8:2::1]:41001. */
	{
		int sa = udp6_sock(ns_a, "2001:db8:1::2", 6000), sb = udp6_sock(ns_b, "2001:db8:2::2", 7000);
		int sa2 = udp6_sock(ns_a, "2001:db8:1::2", 6001), sb2 = udp6_sock(ns_b, "2001:db8:2::2", 7001);

		/* Neighbour discovery first (A<->R, B<->R: a datagram to the
		 * router's discard port, which no element maps), so the checks
		 * below wait for the NAT, not for a first NS/NA on a busy box. */
		udp6_send(sa2, "2001:db8:1::1", 9, "nd");
		udp6_send(sb, "2001:db8:2::1", 9, "nd");
		nftmap_dnat_ref(&any6, 40000, &a6, 6000);
		nftmap_snat_add(&a6, 6001, &w6, 41001);
		check(nftmap_commit() == 0, "in_any6 40000 and out6 for [2001:db8:1::2]:6001");
		udp6_send(sb, "2001:db8:2::1", 40000, "dnat6-test");
		n = udp6_recv(sa, line, sizeof(line), 5000, from, &fport);
		check(n > 0 && strcmp(line, "dnat6-test") == 0 && strcmp(from, "2001:db8:2::2") == 0 && fport == 7000,
		      "in_any6: WAN -> [2001:db8:2::1]:40000 arrives at [2001:db8:1::2]:6000 from [%s]:%u",
		      n > 0 ? from : "-", n > 0 ? fport : 0);
		if (n <= 0) /* what the router saw, for whoever reads the failure */
			system("conntrack -L -f ipv6 2>&1 | sed 's/^/# ct: /'; ip -6 neigh | sed 's/^/# neigh: /'");
		udp6_send(sa2, "2001:db8:2::2", 7001, "snat6-test");
		n = udp6_recv(sb2, line, sizeof(line), 5000, from, &fport);
		check(n > 0 && strcmp(line, "snat6-test") == 0 && strcmp(from, "2001:db8:2::1") == 0 && fport == 41001,
		      "out6: LAN [2001:db8:1::2]:6001 leaves as [%s]:%u (want [2001:db8:2::1]:41001)",
		      n > 0 ? from : "-", n > 0 ? fport : 0);
		close(sa);
		close(sb);
		close(sa2);
		close(sb2);
		nftmap_snat_del(&a6, 6001);
		nftmap_dnat_unref(&any6, 40000);
		check(nftmap_commit() == 0, "and out again");
	}

	/* Firewall reload: each table deleted in turn, nftmap_restore() puts
	 * back both with every inbound element of both families. */
	nftmap_dnat_ref(&b6, 40600, &a6, 6600);
	nftmap_dnat_ref(A4(B_IP), 40600, A4(A_IP), 6600);
	check(nftmap_commit() == 0 && map_has_key("in_peer6", "2001:db8:2::2", 40600) &&
	      map_has_key("in_peer", "192.0.2.2", 40600), "one inbound element per family");
	for (int which = 0; which < 2; which++) {
		const char *fam = which ? "ip" : "ip6";

		sh(NULL, 0, "nft delete table %s sipalgd", fam);
		check(sh(NULL, 0, "nft list table %s sipalgd >/dev/null 2>&1", fam) != 0,
		      "table %s sipalgd deleted by someone else", fam);
		check(nftmap_restore() == 0 && nftmap_commit() == 0, "nftmap_restore after table %s went", fam);
		check(sh(out, sizeof(out), "nft list table ip6 sipalgd") == 0 && strstr(out, "snat ip6 to") &&
		      sh(NULL, 0, "nft list table ip sipalgd >/dev/null 2>&1") == 0 &&
		      map_has_pair("in_peer6", "2001:db8:2::2", 40600, "2001:db8:1::2", 6600) &&
		      map_has_pair("in_peer", "192.0.2.2", 40600, "10.0.1.2", 6600),
		      "after table %s went: both tables back with both elements", fam);
	}

	/* observe mode empties the IPv6 maps too; leaving it puts them back */
	nftmap_set_passive(1);
	check(map_count("in_peer6") == 0 && map_count("in_peer") == 0, "observe: in_peer6 and in_peer empty");
	nftmap_set_passive(0);
	nftmap_requeue();
	check(nftmap_commit() == 0 && map_has_key("in_peer6", "2001:db8:2::2", 40600) &&
	      map_has_key("in_peer", "192.0.2.2", 40600), "enforce again: both back");

	nftmap_close(1);
	check(sh(NULL, 0, "nft list table ip6 sipalgd >/dev/null 2>&1") != 0 &&
	      sh(NULL, 0, "nft list table ip sipalgd >/dev/null 2>&1") != 0,
	      "nftmap_close(1) deletes both tables");
}

/* ---- ct ------------------------------------------------------------------ */

static int ct_count(const char *filter)
{
	char out[65536], *p = out;
	int n = 0;

	sh(out, sizeof(out), "conntrack -L -p udp %s 2>/dev/null", filter);
	while ((p = strstr(p, "udp ")) != NULL) {
		n++;
		p++;
	}
	return n;
}

/* For more flows than ct_count's buffer holds. */
static int ct_count_many(const char *filter)
{
	char out[64];

	sh(out, sizeof(out), "conntrack -L -p udp %s 2>/dev/null | wc -l", filter);
	return atoi(out);
}

static void test_ct(void)
{
	char buf[256];
	uint32_t from;
	struct addr pub = { { 0 } };
	uint16_t pport = 0, fport = 0, bport;
	uint64_t d0, e0;
	int sa, sb, r, i, n;

	check(ct_open() == 0, "ct_open");
	sb = udp_sock(ns_b, B_IP, 7002);
	sa = udp_sock(ns_a, A_IP, 4444);
	udp_send(sa, B_IP, 7002, "ct-test");
	n = udp_recv(sb, buf, sizeof(buf), 2000, &from, &bport);
	check(n > 0 && from == R_WAN, "flow 10.0.1.2:4444 -> 192.0.2.2:7002 masqueraded (seen from port %u)", bport);
	r = ct_lookup_snat(addr_v4(A_IP), 4444, addr_v4(B_IP), 7002, &pub, &pport);
	check(r == 1 && addr_is_v4(&pub) && addr_get_v4(&pub) == R_WAN && pport == bport,
	      "ct_lookup_snat finds the SNAT: %d, %u.%u.%u.%u:%u", r,
	      pub.b[12], pub.b[13], pub.b[14], pub.b[15], pport);
	r = ct_lookup_snat(addr_v4(B_IP), 7002, addr_v4(R_WAN), bport, &pub, &pport);
	check(r == 0, "lookup by the reply tuple is not the original direction: %d", r);
	r = ct_lookup_snat(addr_v4(A_IP), 4449, addr_v4(B_IP), 7002, &pub, &pport);
	check(r == 0, "lookup of an absent flow: %d", r);
	{
		int sl = udp_sock(ns_a, A_IP, 4445);

		udp_send(sl, R_LAN, 7003, "to-router");
		usleep(100000);
		r = ct_lookup_snat(addr_v4(A_IP), 4445, addr_v4(R_LAN), 7003, &pub, &pport);
		check(r == 0 && ct_count("--orig-src 10.0.1.2 --orig-port-src 4445") == 1,
		      "a flow without NAT: lookup %d", r);
		close(sl);
	}

	d0 = stats[ST_ct_deletes];
	e0 = stats[ST_ct_errors];
	ct_del_udp(addr_v4(A_IP), 4444, addr_v4(B_IP), 7002);
	n = ct_commit();
	check(n == 0 && stats[ST_ct_deletes] == d0 + 1 &&
	      ct_count("--orig-src 10.0.1.2 --orig-port-src 4444") == 0,
	      "ct_del_udp by the original tuple removes the entry");

	/* by the reply tuple */
	sa = udp_sock(ns_a, A_IP, 4446);
	udp_send(sa, B_IP, 7002, "ct-test-2");
	n = udp_recv(sb, buf, sizeof(buf), 2000, &from, &fport);
	check(n > 0 && ct_count("--orig-src 10.0.1.2 --orig-port-src 4446") == 1,
	      "second flow exists (public port %u)", fport);
	ct_del_udp(addr_v4(B_IP), 7002, addr_v4(R_WAN), fport);
	n = ct_commit();
	check(n == 0 && ct_count("--orig-src 10.0.1.2 --orig-port-src 4446") == 0,
	      "ct_del_udp by the reply tuple removes the entry");
	close(sa);

	ct_del_udp(addr_v4(IP4(10, 9, 9, 9)), 1, addr_v4(IP4(10, 9, 9, 8)), 2);
	check(ct_commit() == 0 && stats[ST_ct_errors] == e0, "deleting an absent flow is no error");

	/* more deletes than fit in one sendmsg */
	for (i = 0; i < 40; i++) {
		int s = udp_sock(ns_a, A_IP, (uint16_t)(5000 + i));

		udp_send(s, B_IP, 7002, "many");
		close(s);
	}
	for (i = 0; i < 40 * 4 && udp_recv(sb, buf, sizeof(buf), 500, NULL, NULL) >= 0; i++)
		if (ct_count("--orig-src 10.0.1.2 --dst 192.0.2.2 --orig-port-dst 7002") >= 40)
			break;
	n = ct_count("--orig-src 10.0.1.2 --dst 192.0.2.2 --orig-port-dst 7002");
	d0 = stats[ST_ct_deletes];
	for (i = 0; i < 40; i++)
		ct_del_udp(addr_v4(A_IP), (uint16_t)(5000 + i), addr_v4(B_IP), 7002);
	r = ct_commit();
	check(n == 40 && r == 0 && stats[ST_ct_deletes] == d0 + 40 &&
	      ct_count("--orig-src 10.0.1.2 --dst 192.0.2.2 --orig-port-dst 7002") == 0,
	      "40 deletes (%d flows before): %d errors, %llu deleted", n, r,
	      (unsigned long long)(stats[ST_ct_deletes] - d0));
	/* ct_del_port: every flow from one source port, whatever its
	 * destination, found by a kernel-filtered dump (and flows to other
	 * ports left alone) */
	for (i = 0; i < 3; i++) {
		int s = udp_sock(ns_a, A_IP, 6100);
		udp_send(s, B_IP, (uint16_t)(7010 + i), "scan");
		close(s);
	}
	{
		int s = udp_sock(ns_a, A_IP, 6101);
		udp_send(s, B_IP, 7010, "keep");
		close(s);
	}
	usleep(200000);
	n = ct_count("--orig-src 10.0.1.2 --orig-port-src 6100");
	ct_del_port(addr_v4(A_IP), 6100, 0);
	r = ct_commit();
	check(n == 3 && r == 0 && ct_count("--orig-src 10.0.1.2 --orig-port-src 6100") == 0 &&
	      ct_count("--orig-src 10.0.1.2 --orig-port-src 6101") == 1,
	      "ct_del_port by source: %d flows before, %d errors, the other port's flow kept", n, r);
	/* and every flow to one destination port, whatever its source port */
	for (i = 0; i < 2; i++) {
		int s = udp_sock(ns_a, A_IP, (uint16_t)(6200 + i));
		udp_send(s, B_IP, 7020, "scan-dst");
		close(s);
	}
	usleep(200000);
	n = ct_count("--orig-src 10.0.1.2 --orig-port-dst 7020");
	ct_del_port(addr_v4(B_IP), 7020, 1);
	r = ct_commit();
	check(n == 2 && r == 0 && ct_count("--orig-src 10.0.1.2 --orig-port-dst 7020") == 0 &&
	      ct_count("--orig-src 10.0.1.2 --orig-port-src 6101") == 1,
	      "ct_del_port by destination: %d flows before, %d errors", n, r);
	/* ct_del_addr: every flow NATed to the router's WAN address (reply
	 * destination), more than one delete queue holds (the scan repeats),
	 * and a flow that does not name it is kept */
	{
		int s = udp_sock(ns_a, A_IP, 6300), k = udp_sock(ns_a, A_IP, 6301);

		for (i = 0; i < 1100; i++)
			udp_send(s, B_IP, (uint16_t)(20000 + i), "addr");
		udp_send(k, R_LAN, 7004, "keep");
		usleep(300000);
		n = ct_count_many("--orig-src 10.0.1.2 --orig-port-src 6300");
		d0 = stats[ST_ct_deletes];
		ct_del_addr(addr_v4(R_WAN));
		r = ct_commit();
		check(n >= 1100 && r == 0 && ct_count_many("--orig-src 10.0.1.2 --orig-port-src 6300") == 0 &&
		      ct_count("--orig-src 10.0.1.2 --orig-port-src 6301") == 1 &&
		      stats[ST_ct_deletes] - d0 >= 1100,
		      "ct_del_addr: %d flows NATed to the WAN address before, %d errors, %llu deleted, "
		      "the router-bound flow kept", n, r, (unsigned long long)(stats[ST_ct_deletes] - d0));
		close(s);
		close(k);
	}
	close(sa);
	close(sb);
	/* ct_create_udp (routed IPv6 pinholes, issue 13): the entry the kernel
	 * makes is exactly the tuple, seen-reply, with our timeout; a second
	 * create of it is EEXIST, which counts as created; delete takes it. */
	{
		struct addr rem, ph;
		char out[4096];
		uint64_t c0 = stats[ST_pinholes_ct_created], f0 = stats[ST_pinholes_ct_failed];

		addr_parse_str("2001:db8:113::20", &rem);
		addr_parse_str("2001:db8:77::10", &ph);
		ct_create_udp(rem, 7000, ph, 16800, 90);
		ct_create_udp(rem, 7001, ph, 16801, 90);
		r = ct_commit();
		sh(out, sizeof(out), "conntrack -L -f ipv6 -p udp --orig-src 2001:db8:113::20 2>/dev/null");
		check(r == 0 && stats[ST_pinholes_ct_created] == c0 + 2 &&
		      strstr(out, "src=2001:db8:113::20 dst=2001:db8:77::10 sport=7000 dport=16800 "
				  "src=2001:db8:77::10 dst=2001:db8:113::20 sport=16800 dport=7000") &&
		      strstr(out, "sport=7001 dport=16801") && !strstr(out, "UNREPLIED"),
		      "ct_create_udp: two IPv6 entries remote -> phone, seen reply: %d errors, conntrack says: %s",
		      r, out);
		ct_create_udp(rem, 7000, ph, 16800, 90);
		r = ct_commit();
		check(r == 0 && stats[ST_pinholes_ct_created] == c0 + 3 && stats[ST_pinholes_ct_failed] == f0,
		      "ct_create_udp of an existing entry: EEXIST is success (%d errors)", r);
		d0 = stats[ST_ct_deletes];
		ct_del_udp(rem, 7000, ph, 16800);
		r = ct_commit();
		check(r == 0 && stats[ST_ct_deletes] == d0 + 1, "IPv6 pinhole deleted by its tuple (%d errors)", r);
		ct_del_port(ph, 16801, 1);
		r = ct_commit();
		sh(out, sizeof(out), "conntrack -L -f ipv6 -p udp 2>/dev/null");
		check(r == 0 && stats[ST_ct_deletes] == d0 + 2 && !strstr(out, "2001:db8:113::20"),
		      "IPv6 pinhole deleted by a port scan (%d errors): %s", r, out);
		/* mixed families: refused before the kernel */
		ct_create_udp(addr_v4(A_IP), 1, ph, 2, 90);
		check(ct_commit() == 0 && stats[ST_pinholes_ct_created] == c0 + 3, "mixed-family create not sent");
		/* ct_create_udp_nat (NAT66): remote -> the phone's public image,
		 * CTA_NAT_DST to the phone: the kernel writes the reply tuple as
		 * the phone's and marks the entry DST_NAT; the reply tuple finds
		 * it for the delete. */
		struct addr pub66, lanp;
		addr_parse_str("2001:db8:78::10", &pub66);
		addr_parse_str("fd00:77::10", &lanp);
		uint64_t n0 = stats[ST_pinholes_ct_nat];
		ct_create_udp_nat(rem, 7100, pub66, 16900, lanp, 90);
		r = ct_commit();
		sh(out, sizeof(out), "conntrack -L -f ipv6 -p udp --orig-src 2001:db8:113::20 -o extended 2>/dev/null");
		check(r == 0 && stats[ST_pinholes_ct_nat] == n0 + 1 &&
		      strstr(out, "src=2001:db8:113::20 dst=2001:db8:78::10 sport=7100 dport=16900 "
				  "src=fd00:77::10 dst=2001:db8:113::20 sport=16900 dport=7100") &&
		      !strstr(out, "UNREPLIED"),
		      "ct_create_udp_nat: remote -> public, reply from the phone (DNAT): %d errors, conntrack says: %s",
		      r, out);
		sh(out, sizeof(out), "conntrack -L -f ipv6 -p udp --orig-src 2001:db8:113::20 --dst-nat 2>/dev/null");
		check(strstr(out, "dport=16900") != NULL, "ct_create_udp_nat: the entry is DST_NAT (conntrack --dst-nat lists it): %s", out);
		d0 = stats[ST_ct_deletes];
		ct_del_udp(lanp, 16900, rem, 7100);
		r = ct_commit();
		sh(out, sizeof(out), "conntrack -L -f ipv6 -p udp 2>/dev/null");
		check(r == 0 && stats[ST_ct_deletes] == d0 + 1 && !strstr(out, "2001:db8:78::10"),
		      "NAT66 pinhole deleted by its reply tuple (%d errors): %s", r, out);
	}
	ct_close();
}

/* ---- rules + nfq ------------------------------------------------------- */

static int count_lines(const char *s, const char *needle)
{
	int n = 0;

	while ((s = strstr(s, needle)) != NULL) {
		n++;
		s++;
	}
	return n;
}

static void test_nfq(struct conf *c)
{
	static struct nfq_pkt pkts[64];
	static uint8_t mod[64][2048];
	char out[16384], buf[2048];
	const char *inv = "INVITE sip:bob@192.0.2.2 SIP/2.0\r\n\r\n";
	const char *inv2 = "INVITE sip:bob@192.0.2.2 SIP/2.0\r\nX-Rewritten: by-test\r\n\r\n";
	uint32_t len, from;
	uint16_t fport;
	uint64_t vb;
	int sa, sb, sa6, sb6, n, i, ok;

	check(rules_install(c) == 0, "rules_install (iptables)");
	check(rules_install(c) == 0, "rules_install again (idempotent)");
	sh(out, sizeof(out), "iptables -w -t mangle -S");
	check(count_lines(out, "-A FORWARD -p udp -j SIPALGD") == 1 &&
	      strstr(out, "-A FORWARD -p udp -j SIPALGD") < strstr(out, "-A SIPALGD") &&
	      count_lines(out, "-j NFQUEUE --queue-num 7") == 4 &&
	      strstr(out, "-A SIPALGD -i wan0 -p udp -m udp --dport 5060 -j NFQUEUE --queue-num 7") &&
	      strstr(out, "-A SIPALGD -o wan0 -p udp -m udp --sport 5060 -j NFQUEUE --queue-num 7") &&
	      !strstr(out, "bypass"),
	      "one jump, four NFQUEUE rules, no bypass:\n%s", out);
	/* sip.ipv6 (default on): the same chain and jump in ip6tables. */
	sh(out, sizeof(out), "ip6tables -w -t mangle -S");
	check(c->sip_ipv6 && !rules_ipv6_off() &&
	      count_lines(out, "-A FORWARD -p udp -j SIPALGD") == 1 &&
	      count_lines(out, "-j NFQUEUE --queue-num 7") == 4 &&
	      strstr(out, "-A SIPALGD -i wan0 -p udp -m udp --dport 5060 -j NFQUEUE --queue-num 7") &&
	      strstr(out, "-A SIPALGD -o wan0 -p udp -m udp --sport 5060 -j NFQUEUE --queue-num 7") &&
	      !strstr(out, "bypass"),
	      "ip6tables: one jump, four NFQUEUE rules, no bypass (off: %s):\n%s",
	      rules_ipv6_off() ? rules_ipv6_off() : "-", out);

	check(nfq_sock_open(7, 4096) == 0, "nfq_sock_open queue 7");
	sa = udp_sock(ns_a, A_IP, 5060);
	sb = udp_sock(ns_b, B_IP, 5060);

	/* one packet, rewritten */
	udp_send(sa, B_IP, 5060, inv);
	n = nfq_wait(pkts, 1, 2000);
	check(n == 1, "packet from the LAN diverted to the queue (%d)", n);
	if (n == 1) {
		const uint8_t *p = pkts[0].data;

		ok = pkts[0].len == 20 + 8 + strlen(inv) && (p[0] >> 4) == 4 && p[9] == 17 &&
		     memcmp(p + 12, "\x0a\x00\x01\x02", 4) == 0 && memcmp(p + 16, "\xc0\x00\x02\x02", 4) == 0 &&
		     memcmp(p + 28, inv, strlen(inv)) == 0;
		check(ok, "queued packet is the whole IPv4/UDP datagram, pre-NAT (len %u)", pkts[0].len);
		check(udp_csum_ok(p, pkts[0].len), "queued packet has valid IP and UDP checksums");
		check(pkts[0].indev == if_nametoindex("lan0") && pkts[0].outdev == if_nametoindex("wan0"),
		      "indev %u outdev %u (lan0 %u wan0 %u)", pkts[0].indev, pkts[0].outdev,
		      if_nametoindex("lan0"), if_nametoindex("wan0"));
		len = rewrite(p, mod[0], inv2);
		check(udp_csum_ok(mod[0], len), "test's rewritten packet has valid checksums");
		vb = stats[ST_verdict_batches];
		nfq_verdict_add(pkts[0].id, 1, mod[0], len);
		check(nfq_verdict_flush() == 0 && stats[ST_verdict_batches] == vb + 1, "verdict flushed");
		n = udp_recv(sb, buf, sizeof(buf), 2000, &from, &fport);
		check(n > 0 && strcmp(buf, inv2) == 0 && from == R_WAN,
		      "receiver got the rewritten payload, source-NATed (%d bytes)", n);
	}

	/* drop verdict */
	udp_send(sa, B_IP, 5060, inv);
	n = nfq_wait(pkts, 1, 2000);
	if (n == 1) {
		nfq_verdict_add(pkts[0].id, 0, NULL, 0);
		nfq_verdict_flush();
	}
	check(n == 1 && udp_recv(sb, buf, sizeof(buf), 500, NULL, NULL) < 0, "drop verdict: nothing arrives");

	/* IPv6 SIP (routed, nothing to rewrite) reaches the same queue whole,
	 * and an accept verdict forwards it unchanged. */
	sa6 = udp6_sock(ns_a, "2001:db8:1::2", 5060);
	sb6 = udp6_sock(ns_b, "2001:db8:2::2", 5060);
	check(sa6 >= 0 && sb6 >= 0, "IPv6 sockets");
	udp6_send(sa6, "2001:db8:2::2", 5060, inv);
	n = nfq_wait(pkts, 1, 2000);
	check(n == 1 && pkts[0].len == 40 + 8 + strlen(inv) && (pkts[0].data[0] >> 4) == 6 &&
	      pkts[0].data[6] == 17 && memcmp(pkts[0].data + 48, inv, strlen(inv)) == 0,
	      "IPv6 SIP diverted to the queue: the whole IPv6/UDP datagram (%d, len %u)", n,
	      n == 1 ? pkts[0].len : 0);
	if (n == 1) {
		nfq_verdict_add(pkts[0].id, 1, NULL, 0);
		nfq_verdict_flush();
	}
	n = udp_recv(sb6, buf, sizeof(buf), 2000, NULL, NULL);
	check(n > 0 && strcmp(buf, inv) == 0, "IPv6: accepted, arrives unchanged (%d)", n);

	/* a burst: five packets, all verdicts in one sendmsg, some rewritten */
	for (i = 0; i < 5; i++) {
		snprintf(buf, sizeof(buf), "MESSAGE %d", i);
		udp_send(sa, B_IP, 5060, buf);
	}
	n = nfq_wait(pkts, 5, 3000);
	check(n == 5, "burst of 5 received (%d)", n);
	vb = stats[ST_verdict_batches];
	for (i = 0; i < n; i++) {
		if (i % 2 == 0) {
			snprintf(buf, sizeof(buf), "REWRITTEN MESSAGE %d, longer%s", i, i == 2 ? "!" : "");
			len = rewrite(pkts[i].data, mod[i], buf);
			nfq_verdict_add(pkts[i].id, 1, mod[i], len);
		} else {
			nfq_verdict_add(pkts[i].id, 1, NULL, 0);
		}
	}
	n = nfq_verdict_flush();
	check(n == 0 && stats[ST_verdict_batches] == vb + 1,
	      "five verdicts in one sendmsg (batches +%llu)",
	      (unsigned long long)(stats[ST_verdict_batches] - vb));
	ok = 1;
	for (i = 0; i < 5; i++) {
		char want[64];

		if (i % 2 == 0)
			snprintf(want, sizeof(want), "REWRITTEN MESSAGE %d, longer%s", i, i == 2 ? "!" : "");
		else
			snprintf(want, sizeof(want), "MESSAGE %d", i);
		if (udp_recv(sb, buf, sizeof(buf), 2000, NULL, NULL) < 0 || strcmp(buf, want) != 0) {
			printf("  burst %d: got \"%s\" want \"%s\"\n", i, buf, want);
			ok = 0;
		}
	}
	check(ok, "burst arrives in order, rewritten ones rewritten");
	check(stats[ST_verdict_errors] == 0, "no verdict errors (%llu)",
	      (unsigned long long)stats[ST_verdict_errors]);

	/* A verdict the kernel refuses (unknown id) comes back as an error
	 * message on the queue socket and is counted there. */
	nfq_verdict_add(0x7fffff00u, 1, NULL, 0);
	nfq_verdict_flush();
	for (i = 0; i < 20 && stats[ST_verdict_errors] == 0; i++) {
		usleep(10000);
		nfq_recv_burst(pkts, 64);
	}
	check(stats[ST_verdict_errors] == 1, "a refused verdict is counted (%llu)",
	      (unsigned long long)stats[ST_verdict_errors]);

	/* A replacement that is not a whole IPv4 datagram is dropped, not
	 * forwarded and not passed unrewritten. */
	udp_send(sa, B_IP, 5060, inv);
	n = nfq_wait(pkts, 1, 2000);
	if (n == 1) {
		len = rewrite(pkts[0].data, mod[0], inv2);
		nfq_verdict_add(pkts[0].id, 1, mod[0], len - 1); /* short by one */
		nfq_verdict_flush();
	}
	check(n == 1 && udp_recv(sb, buf, sizeof(buf), 500, NULL, NULL) < 0 &&
	      stats[ST_verdict_errors] == 2, "inconsistent replacement: dropped and counted");

	/* fail closed: nobody on the queue */
	nfq_sock_close();
	drain(sb);
	udp_send(sa, B_IP, 5060, inv);
	check(udp_recv(sb, buf, sizeof(buf), 700, NULL, NULL) < 0,
	      "no process on the queue: the packet is dropped (fail closed)");
	drain(sb6);
	udp6_send(sa6, "2001:db8:2::2", 5060, inv);
	check(udp_recv(sb6, buf, sizeof(buf), 700, NULL, NULL) < 0,
	      "no process on the queue: IPv6 SIP is dropped too (fail closed)");

	rules_remove(c);
	sh(out, sizeof(out), "iptables -w -t mangle -S");
	check(!strstr(out, "SIPALGD"), "rules_remove: jump and chain gone");
	check(sh(NULL, 0, "iptables -w -t mangle -S FORWARD | grep -qx -- '-P FORWARD ACCEPT'") == 0,
	      "mangle FORWARD left with its policy only");
	sh(out, sizeof(out), "ip6tables -w -t mangle -S");
	check(!strstr(out, "SIPALGD"), "rules_remove: the IPv6 jump and chain gone too");

	/* A router without IPv6 still gets its IPv4 diversion, and says why
	 * the IPv6 one is off: the switch, then disable_ipv6. */
	c->sip_ipv6 = 0;
	n = rules_install(c);
	sh(out, sizeof(out), "ip6tables -w -t mangle -S");
	check(n == 0 && rules_ipv6_off() && !strcmp(rules_ipv6_off(), "sip.ipv6: off") &&
	      !strstr(out, "SIPALGD"), "sip.ipv6: off: IPv4 only (%s)", rules_ipv6_off() ? rules_ipv6_off() : "-");
	c->sip_ipv6 = 1;
	sh(NULL, 0, "sysctl -qw net.ipv6.conf.all.disable_ipv6=1");
	n = rules_install(c);
	sh(out, sizeof(out), "iptables -w -t mangle -S; ip6tables -w -t mangle -S");
	check(n == 0 && rules_ipv6_off() && strstr(rules_ipv6_off(), "disable_ipv6=1") &&
	      count_lines(out, "-A FORWARD -p udp -j SIPALGD") == 1,
	      "disable_ipv6=1: starts with IPv4 only, says why (%s)", rules_ipv6_off() ? rules_ipv6_off() : "-");
	sh(NULL, 0, "sysctl -qw net.ipv6.conf.all.disable_ipv6=0");
	rules_remove(c);
	udp_send(sa, B_IP, 5060, inv);
	n = udp_recv(sb, buf, sizeof(buf), 2000, NULL, NULL);
	check(n > 0 && strcmp(buf, inv) == 0, "without the rules the packet passes unchanged");

	/* nft divert: this kernel has no nft queue, so a clean failure is
	 * expected; where it works, it must also clean up. */
	c->divert = CONF_DIVERT_NFT;
	n = rules_install(c);
	if (n == 0) {
		check(sh(NULL, 0, "nft list table ip sipalgd_divert >/dev/null") == 0,
		      "nft divert installed (kernel has the queue statement)");
		rules_remove(c);
	} else {
		check(1, "nft divert refused cleanly on this kernel (expected without CONFIG_NFT_QUEUE)");
	}
	check(sh(NULL, 0, "nft list table ip sipalgd_divert >/dev/null 2>&1") != 0,
	      "no divert table left behind");
	c->divert = CONF_DIVERT_IPTABLES;

	/* the shipped iptables script: same rules, idempotent, removes its own */
	n = sh(NULL, 0, "WAN_IF=wan0 SIP_PORTS='5060 5070' QUEUE_NUM=7 sh %s/kernel-rules/divert-iptables.sh add && "
	       "WAN_IF=wan0 SIP_PORTS='5060 5070' QUEUE_NUM=7 sh %s/kernel-rules/divert-iptables.sh add", root, root);
	sh(out, sizeof(out), "iptables -w -t mangle -S");
	check(n == 0 && count_lines(out, "-A FORWARD -p udp -j SIPALGD") == 1 &&
	      count_lines(out, "-j NFQUEUE --queue-num 7") == 8,
	      "divert-iptables.sh add twice: one jump, 8 rules");
	n = sh(NULL, 0, "WAN_IF=wan0 sh %s/kernel-rules/divert-iptables.sh del && "
	       "WAN_IF=wan0 sh %s/kernel-rules/divert-iptables.sh del", root, root);
	sh(out, sizeof(out), "iptables -w -t mangle -S");
	check(n == 0 && !strstr(out, "SIPALGD"), "divert-iptables.sh del (twice): all gone");
	n = sh(NULL, 0, "WAN_IF=wan0 SIP_PORTS='5060 5070' QUEUE_NUM=7 sh %s/kernel-rules/divert-ip6tables.sh add && "
	       "WAN_IF=wan0 SIP_PORTS='5060 5070' QUEUE_NUM=7 sh %s/kernel-rules/divert-ip6tables.sh add", root, root);
	sh(out, sizeof(out), "ip6tables -w -t mangle -S; iptables -w -t mangle -S");
	check(n == 0 && count_lines(out, "-A FORWARD -p udp -j SIPALGD") == 1 &&
	      count_lines(out, "-j NFQUEUE --queue-num 7") == 8,
	      "divert-ip6tables.sh add twice: one jump, 8 rules, all in ip6tables");
	n = sh(NULL, 0, "WAN_IF=wan0 sh %s/kernel-rules/divert-ip6tables.sh del && "
	       "WAN_IF=wan0 sh %s/kernel-rules/divert-ip6tables.sh del", root, root);
	sh(out, sizeof(out), "ip6tables -w -t mangle -S");
	check(n == 0 && !strstr(out, "SIPALGD"), "divert-ip6tables.sh del (twice): all gone");
	close(sa);
	close(sb);
	close(sa6);
	close(sb6);
}

int main(void)
{
	struct conf c;

	ns_a = getenv("SALGK_NS_A");
	ns_b = getenv("SALGK_NS_B");
	root = getenv("SALGK_ROOT");
	if (!ns_a || !ns_b || !root) {
		fprintf(stderr, "run me from tests/kernel/run.sh\n");
		return 2;
	}
	log_init(0, LOG_LVL_INFO);
	conf_fill(&c);

	test_nftmap(&c);
	/* Again on the path kernels before 6.3 take (no DESTROYSETELEM):
	 * a delete of an absent element aborts its whole transaction there. */
	nftmap_close(1);
	setenv("SIPALGD_NFT_FORCE_DELSETELEM", "1", 1);
	printf("-- nftmap again, deletes by DELSETELEM\n");
	test_nftmap(&c);
	unsetenv("SIPALGD_NFT_FORCE_DELSETELEM");
	/* wan.masquerade6 names the LAN's IPv6 prefix: the ip6 table too.
	 * Before test_nfq, whose disable_ipv6 case takes R's IPv6 addresses. */
	nftmap_close(1);
	{
		struct conf c6 = c;

		c6.lan[c6.n_lan].net = A6("2001:db8:1::");
		c6.lan[c6.n_lan++].plen = 64;
		c6.masq6[0] = c6.lan[1];
		c6.n_masq6 = 1;
		printf("-- nftmap with wan.masquerade6 (table ip6)\n");
		test_nftmap6(&c6);
	}
	test_ct();
	test_nfq(&c);

	/* A full inbound table: the element is refused, counted, logged; the
	 * ones already in stay and the daemon goes on. */
	nftmap_close(1);
	{
		struct conf small = c;
		uint64_t e0;
		int i;

		small.max_pinholes = 1;
		small.max_bindings = 1;   /* room for 2 * (2 * 1 + 1) = 6 inbound elements */
		check(nftmap_open(&small) == 0, "nftmap_open with a 6-element inbound table");
		for (i = 0; i < 6; i++)
			nftmap_dnat_ref(A4(IP4(198, 51, 100, 1)), (uint16_t)(30000 + i), A4(IP4(10, 0, 1, 2)), (uint16_t)(30000 + i));
		e0 = stats[ST_nft_errors];
		nftmap_dnat_ref(A4(IP4(198, 51, 100, 1)), 30010, A4(IP4(10, 0, 1, 2)), 30010);
		i = nftmap_commit();
		check(stats[ST_nft_errors] == e0 + 1 && i == 1,
		      "the 7th inbound element is refused and counted (nft_errors +%llu, commit %d)",
		      (unsigned long long)(stats[ST_nft_errors] - e0), i);
		check(sh(NULL, 0, "nft list map ip sipalgd in_peer | grep -q '30005'") == 0 &&
		      sh(NULL, 0, "nft list map ip sipalgd in_peer | grep -q '30010'") != 0,
		      "the six already in stay, the refused one is not in the kernel");
		nftmap_dnat_unref(A4(IP4(198, 51, 100, 1)), 30000);
		nftmap_dnat_ref(A4(IP4(198, 51, 100, 1)), 30010, A4(IP4(10, 0, 1, 2)), 30010);
		check(nftmap_commit() == 0 && sh(NULL, 0, "nft list map ip sipalgd in_peer | grep -q '30010'") == 0,
		      "after one goes, a new one fits");
	}

	nftmap_close(1);
	check(sh(NULL, 0, "nft list table ip sipalgd >/dev/null 2>&1") != 0,
	      "nftmap_close(1) deletes the table");

	fflush(stderr);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
