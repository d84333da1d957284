/* tproxy: TPROXY rules and policy routing for the TCP relay. See tproxy.h.
 *
 * nft text goes through nftcmd (libnftables, loaded for the call); the
 * routing rule and route go over one rtnetlink request each (libmnl). Both
 * at start and exit only. */
#include "tproxy.h"
#include "nftcmd.h"

#include "conf.h"
#include "log.h"

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <libmnl/libmnl.h>

#define TPROXY_RULE_PRIO 5061

/* Diverted: TCP to a SIP port arriving from anywhere but the WAN, not to
 * the router itself. The tproxy statement matches only when a socket takes
 * the packet (the relay's listener or a relayed connection); then the mark
 * routes it to us. Without our socket the packet goes on to forward, where
 * `failclosed` resets it before the operator's accept: SIP/TCP never
 * leaves unrewritten while these rules stand.
 * From the WAN, only a new connection to the public port of a registered
 * or in-dialog Contact is diverted (the set in_tcp, which the daemon fills:
 * RFC 3261 18.2.2, a registrar calling a phone whose connection closed);
 * anything else to the router is left to the router (refused, as before).
 * A reply of a relayed connection finds its established socket first, and
 * our own connections are not transparent: tproxy does not match them.
 * The relay opens its connection to the phone from the caller's address
 * (IP_TRANSPARENT, as DNAT would show it); the phone's answers are marked
 * by `socket transparent` so they come to that socket, not to the WAN.
 * failclosed sits at mangle + 1, just after the SIP diversion (iptables
 * mangle FORWARD, or the nft divert table at mangle): a base chain added at
 * the same priority goes before the ones already there, and a datagram the
 * daemon holds while this table is (re)installed would then run the
 * diversion a second time on its way back (nf_reinject resumes by position;
 * see alg.c, "our own rewrite, queued again"). */
static const char tproxy_nft_fmt[] =
	"table ip %s_tcp {\n"
	"\tset in_tcp {\n"
	"\t\ttype inet_service\n"
	"\t}\n"
	"\n"
	"\tchain divert {\n"
	"\t\ttype filter hook prerouting priority mangle; policy accept;\n"
	"\t\tiifname != \"%s\" tcp dport { %s } fib daddr type != local"
	" tproxy to :%u meta mark set 0x%x accept\n"
	"\t\tiifname \"%s\" tcp dport @in_tcp fib daddr type local"
	" tproxy to :%u meta mark set 0x%x accept\n"
	"\t\tiifname != \"%s\" ct direction reply meta l4proto tcp socket transparent 1"
	" meta mark set 0x%x accept\n"
	"\t}\n"
	"\n"
	"\tchain failclosed {\n"
	"\t\ttype filter hook forward priority mangle + 1; policy accept;\n"
	"\t\tiifname != \"%s\" oifname \"%s\" tcp dport { %s } counter reject with tcp reset\n"
	"\t}\n"
	"}\n";

/* IPv6, routed (no NAT66): the relay connects to the far end from the
 * phone's own address and port, so nothing the provider sees changes. Our
 * connection then has exactly the addresses and ports of the phone's
 * connection to us, and one conntrack entry would hold both: the phone's
 * side (to us, and our answers to it: the packets that go out on the LAN)
 * is tracked in a zone of its own before conntrack sees it (priority raw).
 * The far end's answers to our connection, addressed to the phone, are
 * marked by `socket transparent` so they come to our socket, not to the
 * LAN. The failclosed chain is the IPv4 one: with no relay socket, the
 * phone's SIP/TCP is reset rather than passed by the ALG unseen (no media
 * pinholes would open for it). No set in_tcp: a new connection from the
 * WAN to a phone is the operator's ip6 forward policy's to allow, and
 * passes the relay by (docs/limits.md). Only what routes out the WAN is
 * taken (`fib daddr oifname`): SIP/TCP between two LAN segments is no
 * ALG's business, and its far end is not across the stateful policy. */
static const char tproxy6_nft_fmt[] =
	"table ip6 %s_tcp6 {\n"
	"\tchain zone_in {\n"
	"\t\ttype filter hook prerouting priority raw; policy accept;\n"
	"\t\tiifname != \"%s\" tcp dport { %s } fib daddr oifname \"%s\" ct zone set %u\n"
	"\t}\n"
	"\n"
	"\tchain zone_out {\n"
	"\t\ttype filter hook output priority raw; policy accept;\n"
	"\t\toifname != \"%s\" tcp sport { %s } fib saddr type != local ct zone set %u\n"
	"\t}\n"
	"\n"
	"\tchain divert {\n"
	"\t\ttype filter hook prerouting priority mangle; policy accept;\n"
	"\t\tiifname != \"%s\" tcp dport { %s } fib daddr oifname \"%s\""
	" tproxy to :%u meta mark set 0x%x accept\n"
	"\t\tiifname \"%s\" ct direction reply meta l4proto tcp socket transparent 1"
	" meta mark set 0x%x accept\n"
	"\t}\n"
	"\n"
	"\tchain failclosed {\n"
	"\t\ttype filter hook forward priority mangle + 1; policy accept;\n"
	"\t\tiifname != \"%s\" oifname \"%s\" tcp dport { %s } counter reject with tcp reset\n"
	"\t}\n"
	"}\n";

static int ports_text(const struct conf *c, char *s, size_t n)
{
	size_t o = 0;
	for (int i = 0; i < c->n_sip_ports; i++) {
		int w = snprintf(s + o, n - o, "%s%u", i ? ", " : "", c->sip_ports[i]);
		if (w < 0 || (size_t)w >= n - o)
			return -1;
		o += (size_t)w;
	}
	return 0;
}

/* One rtnetlink request (rule or route, add or delete), acknowledged. */
static int rt_request(uint16_t type, uint16_t flags, int is_rule, uint8_t family)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
	int rc = -1;

	if (!nl)
		return -1;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto out;
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = (uint32_t)time(NULL);
	if (is_rule) {
		struct fib_rule_hdr *fr = mnl_nlmsg_put_extra_header(nlh, sizeof(*fr));
		fr->family = family;
		fr->action = FR_ACT_TO_TBL;
		fr->table = RT_TABLE_UNSPEC;
		mnl_attr_put_u32(nlh, FRA_FWMARK, TPROXY_MARK);
		mnl_attr_put_u32(nlh, FRA_FWMASK, 0xffffffffu);
		mnl_attr_put_u32(nlh, FRA_TABLE, TPROXY_TABLE);
		mnl_attr_put_u32(nlh, FRA_PRIORITY, TPROXY_RULE_PRIO);
	} else {
		/* local 0.0.0.0/0 (::/0) dev lo table TPROXY_TABLE: a marked
		 * packet is delivered here, whatever its destination */
		struct rtmsg *rt = mnl_nlmsg_put_extra_header(nlh, sizeof(*rt));
		rt->rtm_family = family;
		rt->rtm_dst_len = 0;
		rt->rtm_table = RT_TABLE_UNSPEC;
		rt->rtm_protocol = RTPROT_STATIC;
		rt->rtm_scope = RT_SCOPE_HOST;
		rt->rtm_type = RTN_LOCAL;
		mnl_attr_put_u32(nlh, RTA_TABLE, TPROXY_TABLE);
		mnl_attr_put_u32(nlh, RTA_OIF, if_nametoindex("lo"));
	}
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		goto out;
	int n = (int)mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0)
		goto out;
	rc = mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, mnl_socket_get_portid(nl), NULL, NULL) < 0 ? -1 : 0;
out:
	{
		int e = errno;
		mnl_socket_close(nl);
		errno = e;
	}
	return rc;
}

static void routing_remove(uint8_t family)
{
	/* Delete until the kernel has none left (a stale duplicate too). */
	for (int i = 0; i < 4 && rt_request(RTM_DELRULE, 0, 1, family) == 0; i++)
		;
	rt_request(RTM_DELROUTE, 0, 0, family);
}

/* The local route and the fwmark rule that deliver TPROXY-marked packets
 * to the listener, for one family; nothing left behind on failure. */
static int routing_add(int family)
{
	const char *v = family == AF_INET6 ? "IPv6 " : "";

	if (rt_request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, 0, family) < 0) {
		log_err("tproxy: %slocal route in table %u: %s", v, TPROXY_TABLE, strerror(errno));
		return -1;
	}
	if (rt_request(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, 1, family) < 0) {
		log_err("tproxy: %srule fwmark 0x%x lookup %u: %s", v, TPROXY_MARK, TPROXY_TABLE, strerror(errno));
		routing_remove(family);
		return -1;
	}
	return 0;
}

/* br_netfilter (net.bridge.bridge-nf-call-iptables=1; Docker loads it)
 * runs the IPv4 prerouting hooks on a bridged frame before the IP layer
 * takes it, and the IP layer then drops the socket TPROXY assigned there
 * (ip_rcv_core orphans the skb). SIP/TCP that enters by a bridge never
 * reaches the relay: a phone on br-lan gets no answer to its SYN (failing
 * closed), the registrar's new connection over a bridged WAN is reset
 * (tests/netns/newuser.sh). Nothing in our rules can change that: say so,
 * once in the log and in every status, naming the bridges. UDP (NFQUEUE,
 * at forward) is not affected. */
const char *tproxy_bridge_nf(void)
{
	static char names[128];
	char v = 0, path[64];
	size_t n = 0;

	FILE *f = fopen("/proc/sys/net/bridge/bridge-nf-call-iptables", "r");
	if (!f)
		return NULL; /* br_netfilter not loaded */
	int on = fscanf(f, " %c", &v) == 1 && v == '1';
	fclose(f);
	if (!on)
		return NULL;
	names[0] = 0;
	struct if_nameindex *ifs = if_nameindex();
	for (struct if_nameindex *i = ifs; i && i->if_index; i++) {
		snprintf(path, sizeof(path), "/sys/class/net/%s/bridge", i->if_name);
		if (access(path, F_OK) == 0 && n + strlen(i->if_name) + 3 < sizeof(names))
			n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s", n ? ", " : "", i->if_name);
	}
	if (ifs)
		if_freenameindex(ifs);
	return n ? names : NULL;
}

static void bridge_nf_check(void)
{
	static int said;
	const char *names = tproxy_bridge_nf();

	if (!names || said)
		return;
	said = 1;
	log_warn("tproxy: net.bridge.bridge-nf-call-iptables is 1 and %s %s a bridge: SIP/TCP entering "
		 "by a bridge cannot reach the relay (br_netfilter drops the TPROXY socket); set it to 0, "
		 "or sip.tcp: false (docs/limits.md)", names, strchr(names, ',') ? "are each" : "is");
}

int tproxy_install(const struct conf *c, uint16_t port)
{
	char ports[CONF_MAX_PORTS * 8], text[2048], err[256];

	tproxy_remove(c);
	if (ports_text(c, ports, sizeof(ports)) < 0)
		return -1;
	if (routing_add(AF_INET) < 0)
		return -1;
	snprintf(text, sizeof(text), tproxy_nft_fmt, c->nft_table, c->wan_if, ports, port, TPROXY_MARK,
		 c->wan_if, port, TPROXY_MARK, c->wan_if, TPROXY_MARK, c->wan_if, c->wan_if, ports);
	if (nftcmd_run(text, err, sizeof(err)) < 0) {
		log_err("tproxy: nft refused the TPROXY table: %s", err);
		routing_remove(AF_INET);
		return -1;
	}
	log_info("tproxy: SIP/TCP to ports %s diverted to the relay on port %u", ports, port);
	bridge_nf_check();
	return 0;
}

static void remove6(const struct conf *c)
{
	char text[64], err[64];

	snprintf(text, sizeof(text), "delete table ip6 %s_tcp6\n", c->nft_table);
	nftcmd_run(text, err, sizeof(err));   /* absent is fine */
	routing_remove(AF_INET6);
}

int tproxy_install6(const struct conf *c, uint16_t port)
{
	char ports[CONF_MAX_PORTS * 8], text[2048], err[256];

	remove6(c);
	if (ports_text(c, ports, sizeof(ports)) < 0)
		return -1;
	if (routing_add(AF_INET6) < 0)
		return -1;
	snprintf(text, sizeof(text), tproxy6_nft_fmt, c->nft_table, c->wan_if, ports, c->wan_if, TPROXY_ZONE,
		 c->wan_if, ports, TPROXY_ZONE, c->wan_if, ports, c->wan_if, port, TPROXY_MARK, c->wan_if,
		 TPROXY_MARK, c->wan_if, c->wan_if, ports);
	if (nftcmd_run(text, err, sizeof(err)) < 0) {
		log_err("tproxy: nft refused the IPv6 TPROXY table: %s", err);
		routing_remove(AF_INET6);
		return -1;
	}
	log_info("tproxy: SIP/TCP over IPv6 to ports %s diverted to the relay on port %u", ports, port);
	return 0;
}

void tproxy_remove(const struct conf *c)
{
	char text[64], err[64];

	snprintf(text, sizeof(text), "delete table ip %s_tcp\n", c->nft_table);
	nftcmd_run(text, err, sizeof(err));   /* absent is fine */
	routing_remove(AF_INET);
	remove6(c);
}
