/* wan: see wan.h.
 *
 * Two rtnetlink sockets: one subscribed to link and IPv4/IPv6 address
 * events, one for dumps. An event is only a hint: whatever it says, the
 * addresses of both families are read again with one RTM_GETADDR dump, so
 * a lost event (socket overrun: ENOBUFS) or an odd order (DELLINK before
 * DELADDR, an address added before its link is up) cannot leave a stale
 * view. The IPv6 address is followed always (one dump serves both); it is
 * used, and its changes logged at info, only with wan.masquerade6. */
#include "wan.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_addr.h>

#include <libmnl/libmnl.h>

#include "addr.h"
#include "alg.h"
#include "conf.h"
#include "dialog.h"
#include "log.h"
#include "stats.h"
#include "tcprelay.h"

#define WAN_MAX_LOCAL 16
/* Slow safety re-read from the tick (events do the real work). */
#define WAN_RECHECK_MS 5000

static struct mnl_socket *ev_nl, *q_nl;
static uint32_t q_portid, q_seq;
static char wan_if[IFNAMSIZ];
static uint32_t explicit_ip;   /* wan.public_address, 0 = follow the interface */
static uint32_t cur_ip;        /* the public address now */
static int started;
static int cur_ifindex; /* of wan_if at the last scan, 0 if absent */
static uint64_t last_scan;
static struct addr cur6;       /* the public IPv6 address now, if have6 */
static int have6;
static int masq6_on;           /* wan.masquerade6 set: IPv6 changes matter to calls */
static struct conf_net lan6[CONF_MAX_LAN]; /* lan.networks' IPv6 prefixes: never public */
static int n_lan6;
static char rx[32 * 1024] __attribute__((aligned(8)));

/* What one dump found. */
struct wan_scan {
	int ifindex;                /* of wan_if now, 0 if absent */
	uint32_t keep;              /* cur_ip, if still on the interface */
	uint32_t primary, any;      /* first primary / first address on it */
	uint32_t local[WAN_MAX_LOCAL];
	int nlocal;
	int keep6;                  /* cur6 is still on the interface and fit */
	int have_low6;
	struct addr low6;           /* the lowest fit IPv6 address on it */
};

static void ipstr(char *s, size_t n, uint32_t ip)
{
	if (!ip)
		snprintf(s, n, "none");
	else
		snprintf(s, n, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

static int addr_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(a);

	if (mnl_attr_type_valid(a, IFA_MAX) < 0)
		return MNL_CB_OK;
	switch (type) {
	case IFA_ADDRESS:
	case IFA_LOCAL:
		/* 4 or 16 bytes; addr_cb checks it against the family */
		if (mnl_attr_get_payload_len(a) != 4 && mnl_attr_get_payload_len(a) != 16)
			return MNL_CB_OK;
		break;
	case IFA_FLAGS:
		if (mnl_attr_validate(a, MNL_TYPE_U32) < 0)
			return MNL_CB_OK;
		break;
	case IFA_LABEL:
		if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
			return MNL_CB_OK;
		break;
	default:
		return MNL_CB_OK;
	}
	tb[type] = a;
	return MNL_CB_OK;
}

/* Is this address on the WAN interface? By index, or by label: an IPv4
 * label is the device name, or "name:alias". */
static int on_wan(const struct ifaddrmsg *ifa, const char *label, int ifindex)
{
	size_t n = strlen(wan_if);

	if (ifindex && (int)ifa->ifa_index == ifindex)
		return 1;
	return label && strncmp(label, wan_if, n) == 0 && (label[n] == 0 || label[n] == ':');
}

/* May this IPv6 address of the WAN interface be the public one? Only a
 * global address the kernel will use as a source for a long time: not a
 * privacy address (IFA_F_TEMPORARY: replaced every few hours, a call or a
 * registration on it would break), not one being given up (DEPRECATED),
 * not one still in or failed duplicate address detection, not link-local
 * or a LAN address (a misconfiguration would make phones look remote). */
static int fit6(const struct ifaddrmsg *ifa, uint32_t flags, const struct addr *a)
{
	if (ifa->ifa_scope != RT_SCOPE_UNIVERSE ||
	    (flags & (IFA_F_TEMPORARY | IFA_F_DEPRECATED | IFA_F_TENTATIVE | IFA_F_DADFAILED)))
		return 0;
	/* fe80::/10 and multicast are never scope global, but say so here
	 * too; a v4-mapped or the unspecified address is no IPv6 address. */
	if ((a->b[0] == 0xfe && (a->b[1] & 0xc0) == 0x80) || a->b[0] == 0xff || addr_is_v4(a) ||
	    addr_is_any(a))
		return 0;
	for (int i = 0; i < n_lan6; i++)
		if (addr_in_prefix(a, &lan6[i].net, lan6[i].plen))
			return 0;
	return 1;
}

static void addr_cb6(struct wan_scan *sc, const struct ifaddrmsg *ifa, const struct nlattr **tb)
{
	/* IFA_LOCAL only on a point-to-point link with a peer (IFA_ADDRESS
	 * is the peer then), as for IPv4. */
	const struct nlattr *at = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	/* IFA_FLAGS is the whole set; ifa_flags only its low 8 bits (the
	 * four tested here fit, but an old kernel sends nothing else) */
	uint32_t flags = tb[IFA_FLAGS] ? mnl_attr_get_u32(tb[IFA_FLAGS]) : ifa->ifa_flags;
	struct addr a;

	if (!at || mnl_attr_get_payload_len(at) != 16)
		return;
	/* IPv6 addresses carry no label: the index is the only way to tell */
	if (!sc->ifindex || (int)ifa->ifa_index != sc->ifindex)
		return;
	a = addr_v6(mnl_attr_get_payload(at));
	if (!fit6(ifa, flags, &a))
		return;
	if (have6 && addr_eq(&a, &cur6))
		sc->keep6 = 1;
	/* Lowest first: the same choice on every scan whatever the kernel's
	 * order, and a global unicast (2000::/3) before a ULA (fc00::/7). */
	if (!sc->have_low6 || memcmp(a.b, sc->low6.b, 16) < 0) {
		sc->low6 = a;
		sc->have_low6 = 1;
	}
}

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	struct wan_scan *sc = data;
	const struct nlattr *tb[IFA_MAX + 1] = { 0 };
	const struct ifaddrmsg *ifa;
	uint32_t ip;

	if (nlh->nlmsg_type != RTM_NEWADDR || nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*ifa)))
		return MNL_CB_OK;
	ifa = mnl_nlmsg_get_payload(nlh);
	if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*ifa), addr_attr_cb, tb);
	if (ifa->ifa_family == AF_INET6) {
		addr_cb6(sc, ifa, tb);
		return MNL_CB_OK;
	}
	/* IFA_LOCAL is the router's own address; IFA_ADDRESS is the peer's on
	 * a point-to-point link (PPPoE) and equals IFA_LOCAL elsewhere. */
	const struct nlattr *a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!a || mnl_attr_get_payload_len(a) != 4)
		return MNL_CB_OK;
	memcpy(&ip, mnl_attr_get_payload(a), 4);
	ip = ntohl(ip);
	if (sc->nlocal < WAN_MAX_LOCAL)
		sc->local[sc->nlocal++] = ip;
	if ((ip >> 24) == 127 || !on_wan(ifa, tb[IFA_LABEL] ? mnl_attr_get_str(tb[IFA_LABEL]) : NULL, sc->ifindex))
		return MNL_CB_OK;
	if (ip == cur_ip)
		sc->keep = ip;
	if (!sc->any)
		sc->any = ip;
	if (!sc->primary && !(ifa->ifa_flags & IFA_F_SECONDARY))
		sc->primary = ip;
	return MNL_CB_OK;
}

/* One RTM_GETADDR dump. 0, or -1 (the view is unchanged then). */
static int wan_scan(struct wan_scan *sc)
{
	char buf[MNL_SOCKET_BUFFER_SIZE] __attribute__((aligned(8)));
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifaddrmsg *ifa;
	uint32_t seq = ++q_seq;
	int ret, rounds;

	memset(sc, 0, sizeof(*sc));
	sc->ifindex = (int)if_nametoindex(wan_if);
	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_UNSPEC; /* both families, one dump */
	if (mnl_socket_sendto(q_nl, nlh, nlh->nlmsg_len) < 0) {
		LOG_RL(LOG_LVL_WARN, "wan: address dump request: %s", strerror(errno));
		return -1;
	}
	/* Bounded: a dump of a few hundred addresses ends long before. */
	for (rounds = 0; rounds < 1024; rounds++) {
		ret = (int)mnl_socket_recvfrom(q_nl, rx, sizeof(rx));
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		ret = mnl_cb_run(rx, (size_t)ret, seq, q_portid, addr_cb, sc);
		if (ret == MNL_CB_STOP)
			return 0;
		if (ret == MNL_CB_ERROR)
			break;
	}
	LOG_RL(LOG_LVL_WARN, "wan: address dump did not complete: %s", strerror(errno));
	return -1;
}

static void wan_apply(uint32_t ip, uint64_t now)
{
	char a[16], b[16];

	if (ip == cur_ip)
		return;
	ipstr(a, sizeof(a), cur_ip);
	ipstr(b, sizeof(b), ip);
	if (started) {
		STAT_INC(wan_address_changes);
		if (ip)
			log_info("WAN %s: public address %s -> %s", wan_if, a, b);
		else
			log_warn("WAN %s: public address %s -> none: SIP from the LAN is dropped until it has one",
				 wan_if, a);
	}
	cur_ip = ip;
	struct addr a4 = addr_v4(ip);
	alg_set_public(4, ip ? &a4 : NULL, now);
	tcprelay_set_public(ip); /* new outbound TCP connections bind to it */
}

static void wan_apply6(const struct addr *a, uint64_t now)
{
	char o[ADDR_STRLEN] = "none", n[ADDR_STRLEN] = "none";

	if (a ? have6 && addr_eq(a, &cur6) : !have6)
		return;
	if (have6)
		addr_fmt(o, &cur6, 0);
	if (a)
		addr_fmt(n, a, 0);
	if (started) {
		STAT_INC(wan6_address_changes);
		if (!masq6_on)
			log_debug("WAN %s: public IPv6 address %s -> %s", wan_if, o, n);
		else if (a)
			log_info("WAN %s: public IPv6 address %s -> %s", wan_if, o, n);
		else
			log_warn("WAN %s: public IPv6 address %s -> none: SIP from wan.masquerade6 phones is "
				 "dropped until it has one", wan_if, o);
	}
	have6 = a != NULL;
	if (a)
		cur6 = *a;
	alg_set_public(6, a, now);
}

/* Read the kernel's addresses and apply what changed. */
static void wan_sync(uint64_t now)
{
	struct wan_scan sc;

	last_scan = now;
	if (wan_scan(&sc) < 0)
		return;
	cur_ifindex = sc.ifindex;
	dialog_set_local(sc.local, sc.nlocal);
	if (explicit_ip)
		wan_apply(explicit_ip, now);
	else
		wan_apply(sc.keep ? sc.keep : sc.primary ? sc.primary : sc.any, now);
	/* The current IPv6 address while it stays fit: a new one added
	 * beside it (a renumbering announced ahead) does not move calls. */
	if (!sc.keep6)
		wan_apply6(sc.have_low6 ? &sc.low6 : NULL, now);
}

/* What wan.c needs of the configuration: lan.networks' IPv6 prefixes and
 * whether wan.masquerade6 is set (both restart-only: read at open). */
static void wan_conf6(const struct conf *c)
{
	n_lan6 = 0;
	for (int i = 0; i < c->n_lan && i < CONF_MAX_LAN; i++)
		if (!addr_is_v4(&c->lan[i].net))
			lan6[n_lan6++] = c->lan[i];
	masq6_on = c->n_masq6 > 0;
}

static struct mnl_socket *wan_sock(unsigned groups, int nonblock)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0));

	if (!nl)
		return NULL;
	if (mnl_socket_bind(nl, groups, MNL_SOCKET_AUTOPID) < 0) {
		mnl_socket_close(nl);
		return NULL;
	}
	return nl;
}

int wan_open(const struct conf *c, uint64_t now)
{
	char a[16];

	if (ev_nl)
		wan_close();
	snprintf(wan_if, sizeof(wan_if), "%s", c->wan_if);
	explicit_ip = c->public_ip;
	wan_conf6(c);
	ev_nl = wan_sock(RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR, 1);
	q_nl = wan_sock(0, 0);
	if (!ev_nl || !q_nl) {
		log_err("wan: rtnetlink socket: %s", strerror(errno));
		wan_close();
		return -1;
	}
	/* A dump is answered at once; never let a lost answer stop the loop. */
	struct timeval tv = { 1, 0 };
	if (setsockopt(mnl_socket_get_fd(q_nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		log_warn("wan: SO_RCVTIMEO: %s", strerror(errno));
	q_portid = mnl_socket_get_portid(q_nl);
	q_seq = (uint32_t)time(NULL);
	started = 0;
	cur_ip = 0;
	have6 = 0;
	alg_set_public(6, NULL, now);
	wan_sync(now);
	started = 1;
	ipstr(a, sizeof(a), cur_ip);
	if (explicit_ip)
		log_info("WAN %s: public address %s (wan.public_address)", wan_if, a);
	else if (cur_ip)
		log_info("WAN %s: public address %s, followed over rtnetlink", wan_if, a);
	else if (!cur_ifindex)
		/* A typo here diverts nothing: SIP leaving by the real WAN goes
		 * out unrewritten. A pppoe-wan not up yet is the other reason. */
		log_err("WAN %s: no such interface (yet): SIP is diverted only where it crosses %s; "
			"if the WAN is another interface (ip link), fix wan.interface", wan_if, wan_if);
	else
		log_warn("WAN %s has no IPv4 address yet: SIP from the LAN is dropped until it has one",
			 wan_if);
	if (masq6_on && have6) {
		char a6[ADDR_STRLEN];

		addr_fmt(a6, &cur6, 0);
		log_info("WAN %s: public IPv6 address %s (wan.masquerade6), followed over rtnetlink", wan_if, a6);
	} else if (masq6_on && cur_ifindex) {
		log_warn("WAN %s has no global IPv6 address yet: SIP from wan.masquerade6 phones is dropped "
			 "until it has one", wan_if);
	}
	return 0;
}

int wan_fd(void)
{
	return ev_nl ? mnl_socket_get_fd(ev_nl) : -1;
}

void wan_event(uint64_t now)
{
	int seen = 0, rounds;

	if (!ev_nl)
		return;
	/* Drain: a burst of events (a PPPoE reconnect) costs one dump. What
	 * they say does not matter, only that something changed. */
	for (rounds = 0; rounds < 256; rounds++) {
		ssize_t n = recv(mnl_socket_get_fd(ev_nl), rx, sizeof(rx), MSG_DONTWAIT);
		if (n > 0) {
			const struct nlmsghdr *nlh = (const struct nlmsghdr *)rx;
			int len = (int)n;

			for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len))
				if (nlh->nlmsg_type == RTM_NEWADDR || nlh->nlmsg_type == RTM_DELADDR ||
				    nlh->nlmsg_type == RTM_NEWLINK || nlh->nlmsg_type == RTM_DELLINK)
					seen = 1;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			seen = 1; /* events were lost: read everything again */
			continue;
		}
		break;
	}
	if (seen || now - last_scan >= WAN_RECHECK_MS)
		wan_sync(now);
}

int wan_reconfigure(const struct conf *c, uint64_t now)
{
	int rc = 0;

	if (strncmp(c->wan_if, wan_if, sizeof(wan_if))) {
		/* The NAT table and the diversion rules name the interface. */
		log_warn("reload: wan.interface %s -> %s needs a restart; still following %s",
			 wan_if, c->wan_if, wan_if);
		rc = -1;
	}
	if (c->public_ip != explicit_ip) {
		char a[16], b[16];

		ipstr(a, sizeof(a), explicit_ip);
		ipstr(b, sizeof(b), c->public_ip);
		log_info("reload: wan.public_address %s -> %s%s", a, b,
			 c->public_ip ? "" : " (follow the interface)");
		explicit_ip = c->public_ip;
	}
	wan_conf6(c);
	wan_sync(now);
	return rc;
}

uint32_t wan_public(void)
{
	return cur_ip;
}

const struct addr *wan_public6(void)
{
	return have6 ? &cur6 : NULL;
}

int wan_ifindex(void)
{
	return cur_ifindex;
}

void wan_status(FILE *out)
{
	char ip[INET_ADDRSTRLEN] = "none";

	if (cur_ip)
		ipstr(ip, sizeof(ip), cur_ip);
	/* The ifindex changes with each PPPoE session (the device is made
	 * anew): an operator comparing two answers sees the reconnect. */
	fprintf(out, "wan: %s ifindex %d public %s (%s)\n", wan_if, cur_ifindex, ip,
		explicit_ip ? "wan.public_address" : "the interface's address");
}

void wan_close(void)
{
	if (ev_nl)
		mnl_socket_close(ev_nl);
	if (q_nl)
		mnl_socket_close(q_nl);
	ev_nl = q_nl = NULL;
}
