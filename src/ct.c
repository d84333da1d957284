/* ct: conntrack over ctnetlink. See ct.h.
 *
 * One long-lived NETLINK_NETFILTER socket of our own; libnetfilter_conntrack
 * only builds and parses messages (nfct_nlmsg_build / nfct_nlmsg_parse);
 * creates are built by hand (below). Creates and deletes are queued and sent
 * several per sendmsg(), each with an ACK, and every ACK is drained before
 * ct_commit() returns. */
#include "ct.h"

#include "log.h"
#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/netlink.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nf_conntrack_common.h>

#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* Queued deletes. When full, ct_del_udp() commits on the spot, so this
 * bounds one round, not what the daemon can delete. */
#define CT_DEL_MAX   1024
/* One delete message is ~100 bytes; this many share one sendmsg(). */
#define CT_SEND_MAX  32
#define CT_MSG_MAX   256

struct ct_del {
	struct addr a, b;
	uint16_t ap, bp;
	uint8_t create;    /* ct_create_udp: (a:ap -> b:bp) is the new original tuple */
	uint8_t dnat;      /* ct_create_udp_nat: destination NAT to nat:bp */
	struct addr nat;
	uint32_t timeout;  /* of a create, seconds */
	uint32_t seq;  /* of its message, 0 if none was sent */
	int err;       /* kernel answer; ETIMEDOUT until one comes */
};

/* Flows to find by a dump before they can be deleted (ct_del_port). */
#define CT_SCAN_MAX 256
enum { SCAN_SRC_PORT, SCAN_DST_PORT, SCAN_ORIG_DST, SCAN_REPL_DST };
struct ct_scan {
	struct addr ip;
	uint16_t port;
	uint8_t to_dst; /* SCAN_* */
};
static struct ct_scan ct_scans[CT_SCAN_MAX];
static int ct_nscan;
static int ct_scanning; /* a dump is being read: ct_rx is in use */
static int ct_scan_full; /* a delete found by the scan did not fit the queue */
/* Addresses whose flows go (ct_del_addr): few, an address change is rare. */
#define CT_ADDR_MAX 4
static struct addr ct_addrs[CT_ADDR_MAX];
static int ct_naddr;
static int ct_is_urgent;

void ct_mark_urgent(void) { ct_is_urgent = 1; }
int ct_urgent(void) { return ct_is_urgent; }

static struct mnl_socket *ct_nl;
static uint32_t ct_portid, ct_seq;
static struct ct_del ct_dels[CT_DEL_MAX];
static int ct_ndel;
static int ct_carried_errors;
/* Reused to build every request: only the tuple attributes are set, the
 * same ones each time, so nothing stale can leak into a message. */
static struct nf_conntrack *ct_req;
static char ct_rx[64 * 1024] __attribute__((aligned(8)));

int ct_open(void)
{
	int fd, one = 1, v = 1024 * 1024;

	if (ct_nl)
		ct_close();
	ct_nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!ct_nl) {
		log_err("ct: netlink socket: %s", strerror(errno));
		return -1;
	}
	if (mnl_socket_bind(ct_nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		log_err("ct: netlink bind: %s", strerror(errno));
		goto fail;
	}
	ct_portid = mnl_socket_get_portid(ct_nl);
	fd = mnl_socket_get_fd(ct_nl);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)) < 0)
		log_warn("ct: cannot raise the receive buffer: %s", strerror(errno));
	/* Errors without our request echoed back. */
	if (setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one)) < 0)
		log_debug("ct: NETLINK_CAP_ACK: %s", strerror(errno));
	ct_req = nfct_new();
	if (!ct_req) {
		log_err("ct: out of memory");
		goto fail;
	}
	ct_seq = (uint32_t)time(NULL);
	ct_ndel = 0;
	ct_carried_errors = 0;
	return 0;
fail:
	mnl_socket_close(ct_nl);
	ct_nl = NULL;
	return -1;
}

void ct_close(void)
{
	if (ct_nl && ct_ndel)
		ct_carried_errors += ct_commit();
	if (ct_nl)
		mnl_socket_close(ct_nl);
	ct_nl = NULL;
	if (ct_req)
		nfct_destroy(ct_req);
	ct_req = NULL;
	ct_ndel = 0;
}

/* Header + the UDP original tuple (src:sport -> dst:dport), host order in.
 * Returns the message, or NULL if it could not be built. */
static uint8_t fam(const struct addr *a) { return addr_is_v4(a) ? AF_INET : AF_INET6; }

/* An address into / out of a libnetfilter_conntrack object, by family. */
static void ct_set_addr(struct nf_conntrack *ct, enum nf_conntrack_attr a4, enum nf_conntrack_attr a6,
			const struct addr *a)
{
	if (addr_is_v4(a))
		nfct_set_attr_u32(ct, a4, htonl(addr_get_v4(a)));
	else
		nfct_set_attr(ct, a6, a->b);
}

static struct addr ct_get_addr(const struct nf_conntrack *ct, enum nf_conntrack_attr a4,
			       enum nf_conntrack_attr a6)
{
	if (nfct_get_attr_u8(ct, ATTR_L3PROTO) == AF_INET6) {
		const void *p = nfct_get_attr(ct, a6);
		static const uint8_t zero[16];
		return addr_v6(p ? p : zero);
	}
	return addr_v4(ntohl(nfct_get_attr_u32(ct, a4)));
}

static struct nlmsghdr *ct_put_req(char *buf, uint16_t type, uint16_t flags, uint32_t seq,
				   const struct addr *src, uint16_t sport, const struct addr *dst, uint16_t dport)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfh;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = seq;
	nfh = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfh));
	nfh->nfgen_family = fam(src);
	nfh->version = NFNETLINK_V0;
	nfh->res_id = 0;

	/* The library builds the tuple of the family L3PROTO names, so
	 * addresses of the other family left from an earlier request are
	 * not sent. */
	nfct_set_attr_u8(ct_req, ATTR_L3PROTO, fam(src));
	nfct_set_attr_u8(ct_req, ATTR_L4PROTO, IPPROTO_UDP);
	ct_set_addr(ct_req, ATTR_IPV4_SRC, ATTR_IPV6_SRC, src);
	ct_set_addr(ct_req, ATTR_IPV4_DST, ATTR_IPV6_DST, dst);
	nfct_set_attr_u16(ct_req, ATTR_PORT_SRC, htons(sport));
	nfct_set_attr_u16(ct_req, ATTR_PORT_DST, htons(dport));
	/* Only the original tuple is needed to find an entry (lookups and
	 * deletes); creates are built by ct_put_create, so the reply side of
	 * this object stays unset (a half-filled one would be sent along). */
	if (nfct_nlmsg_build(nlh, ct_req) < 0)
		return NULL;
	return nlh;
}

/* Wait (bounded) for the next datagram on the socket. */
static int ct_recv(int timeout_ms)
{
	struct pollfd pfd = { .fd = mnl_socket_get_fd(ct_nl), .events = POLLIN };
	int ret, tries;

	/* The kernel answers inside our sendmsg(): the answer is usually
	 * queued already, so try before polling. */
	ret = (int)recv(pfd.fd, ct_rx, sizeof(ct_rx), MSG_DONTWAIT);
	if (ret >= 0 || (errno != EAGAIN && errno != EINTR))
		return ret;
	for (tries = 0; tries < 8; tries++) {
		ret = poll(&pfd, 1, timeout_ms);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (ret < 0)
			return -1;
		ret = (int)recv(pfd.fd, ct_rx, sizeof(ct_rx), MSG_DONTWAIT);
		if (ret < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		return ret;
	}
	errno = ETIMEDOUT;
	return -1;
}

struct ct_lookup_res {
	struct addr src, dst;   /* asked-for original tuple */
	uint16_t sport, dport;  /* network order */
	int found;              /* 1 NATed, 0 not NATed / other entry */
	struct addr pub_ip;
	uint16_t pub_port;      /* network order */
};

static int ct_lookup_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ct_lookup_res *r = data;
	struct nf_conntrack *ct;

	if ((nlh->nlmsg_type & 0xff) != IPCTNL_MSG_CT_NEW ||
	    (nlh->nlmsg_type >> 8) != NFNL_SUBSYS_CTNETLINK)
		return MNL_CB_OK;
	/* One allocation per lookup (a lookup happens once per new SIP flow,
	 * not per packet): the library's parser may attach allocated fields
	 * (helper info, labels, security context), so a reused object could
	 * leak them. */
	ct = nfct_new();
	if (!ct)
		return MNL_CB_ERROR;
	if (nfct_nlmsg_parse(nlh, ct) < 0) {
		nfct_destroy(ct);
		return MNL_CB_ERROR;
	}
	/* The kernel finds an entry by either direction's tuple: make sure
	 * this is the flow whose ORIGINAL direction we asked about. */
	int v4 = addr_is_v4(&r->src);
	struct addr s = ct_get_addr(ct, ATTR_IPV4_SRC, ATTR_IPV6_SRC);
	struct addr d = ct_get_addr(ct, ATTR_IPV4_DST, ATTR_IPV6_DST);
	if (nfct_attr_is_set(ct, v4 ? ATTR_IPV4_SRC : ATTR_IPV6_SRC) &&
	    nfct_attr_is_set(ct, v4 ? ATTR_IPV4_DST : ATTR_IPV6_DST) &&
	    nfct_attr_is_set(ct, ATTR_PORT_SRC) && nfct_attr_is_set(ct, ATTR_PORT_DST) &&
	    nfct_get_attr_u8(ct, ATTR_L4PROTO) == IPPROTO_UDP &&
	    addr_eq(&s, &r->src) && addr_eq(&d, &r->dst) &&
	    nfct_get_attr_u16(ct, ATTR_PORT_SRC) == r->sport &&
	    nfct_get_attr_u16(ct, ATTR_PORT_DST) == r->dport &&
	    nfct_attr_is_set(ct, ATTR_STATUS) &&
	    (nfct_get_attr_u32(ct, ATTR_STATUS) & IPS_SRC_NAT) &&
	    nfct_attr_is_set(ct, v4 ? ATTR_REPL_IPV4_DST : ATTR_REPL_IPV6_DST) &&
	    nfct_attr_is_set(ct, ATTR_REPL_PORT_DST)) {
		/* Source-NATed: replies come back to the public address,
		 * i.e. the reply tuple's destination. */
		r->found = 1;
		r->pub_ip = ct_get_addr(ct, ATTR_REPL_IPV4_DST, ATTR_REPL_IPV6_DST);
		r->pub_port = nfct_get_attr_u16(ct, ATTR_REPL_PORT_DST);
	}
	nfct_destroy(ct);
	return MNL_CB_OK;
}

int ct_lookup_snat(struct addr src, uint16_t sport, struct addr dst, uint16_t dport,
		   struct addr *pub_ip, uint16_t *pub_port)
{
	char buf[CT_MSG_MAX * 2] __attribute__((aligned(8)));
	struct ct_lookup_res r = { src, dst, htons(sport), htons(dport), 0, { { 0 } }, 0 };
	struct nlmsghdr *nlh;
	uint32_t seq;
	int ret, rounds;

	if (!ct_nl) {
		errno = EBADF;
		return -1;
	}
	STAT_INC(ct_lookups);
	seq = ++ct_seq;
	nlh = ct_put_req(buf, IPCTNL_MSG_CT_GET, NLM_F_ACK, seq, &src, sport, &dst, dport);
	if (!nlh || mnl_socket_sendto(ct_nl, nlh, nlh->nlmsg_len) < 0) {
		STAT_INC(ct_errors);
		LOG_RL(LOG_LVL_WARN, "ct: lookup request: %s", strerror(errno));
		return -1;
	}
	/* The answer is the entry, then the ACK (or just an error). Messages
	 * of other sequence numbers (a late answer to a timed-out request) are
	 * skipped by mnl_cb_run's sequence check. */
	for (rounds = 0; rounds < 16; rounds++) {
		ret = ct_recv(1000);
		if (ret < 0)
			break;
		ret = mnl_cb_run(ct_rx, (size_t)ret, seq, ct_portid, ct_lookup_cb, &r);
		if (ret == MNL_CB_STOP) /* the ACK */
			goto done;
		if (ret == MNL_CB_ERROR) {
			if (errno == ENOENT)
				return 0;
			if (errno == ESRCH || errno == EPROTO)
				continue; /* someone else's sequence number */
			break;
		}
	}
	STAT_INC(ct_errors);
	int err = errno;
	char sa[ADDR_STRLEN], da[ADDR_STRLEN];
	addr_fmt(sa, &src, 1);
	addr_fmt(da, &dst, 1);
	LOG_RL(LOG_LVL_WARN, "ct: lookup of %s:%u -> %s:%u: %s", sa, sport, da, dport, strerror(err));
	return -1;
done:
	if (!r.found)
		return 0;
	if (pub_ip)
		*pub_ip = r.pub_ip;
	if (pub_port)
		*pub_port = ntohs(r.pub_port);
	return 1;
}

/* mode: observe: no conntrack of the router's is deleted either. */
static int ct_passive;
void ct_set_passive(int on) { ct_passive = on; }

static struct ct_del *ct_queue(void)
{
	if (ct_ndel == CT_DEL_MAX) {
		if (ct_scanning) {
			/* committing now would reuse the buffer the dump is read from */
			ct_scan_full = 1;
			LOG_RL(LOG_LVL_WARN, "ct: delete queue full during a flow scan; flow left to time out");
			return NULL;
		}
		ct_carried_errors += ct_commit();
	}
	return &ct_dels[ct_ndel++];
}

void ct_del_udp(struct addr a, uint16_t ap, struct addr b, uint16_t bp)
{
	struct ct_del *d;

	if (!ct_nl || ct_passive || !(d = ct_queue()))
		return;
	*d = (struct ct_del){ .a = a, .b = b, .ap = ap, .bp = bp, .err = ETIMEDOUT };
}

void ct_create_udp(struct addr src, uint16_t sport, struct addr dst, uint16_t dport, uint32_t timeout_s)
{
	struct addr none = { { 0 } };

	ct_create_udp_nat(src, sport, dst, dport, none, timeout_s);
}

void ct_create_udp_nat(struct addr src, uint16_t sport, struct addr dst, uint16_t dport, struct addr to,
		       uint32_t timeout_s)
{
	struct ct_del *d;
	int dnat = !addr_is_any(&to);

	/* mode: observe changes no kernel state, creates included */
	if (!ct_nl || ct_passive || addr_is_v4(&src) != addr_is_v4(&dst) ||
	    (dnat && addr_is_v4(&to) != addr_is_v4(&dst)))
		return;
	/* During a scan the queue may be in use by the dump's callback:
	 * a create then waits for the next commit like a delete would. */
	if (!(d = ct_queue()))
		return;
	*d = (struct ct_del){ .a = src, .b = dst, .ap = sport, .bp = dport, .create = 1,
			      .dnat = (uint8_t)dnat, .nat = to, .timeout = timeout_s, .err = ETIMEDOUT };
}

void ct_del_port(struct addr ip, uint16_t port, int to_dst)
{
	if (ct_passive)
		return;
	if (!ct_nl || ct_nscan == CT_SCAN_MAX) {
		if (ct_nl)
			LOG_RL(LOG_LVL_WARN, "ct: too many flow scans in one round; some media flows are left to time out");
		return;
	}
	ct_scans[ct_nscan++] = (struct ct_scan){ ip, port, (uint8_t)(to_dst ? SCAN_DST_PORT : SCAN_SRC_PORT) };
}

void ct_del_addr(struct addr ip)
{
	if (!ct_nl || addr_is_any(&ip))
		return;
	for (int i = 0; i < ct_naddr; i++)
		if (addr_eq(&ct_addrs[i], &ip))
			return;
	if (ct_naddr == CT_ADDR_MAX) {
		LOG_RL(LOG_LVL_WARN, "ct: too many address flushes in one round; flows left to time out");
		return;
	}
	ct_addrs[ct_naddr++] = ip;
}

/* These live in the kernel's nf_conntrack_netlink.c, not in the uapi. */
#define CT_FILTER_F_IP_SRC     (1u << 0)
#define CT_FILTER_F_IP_DST     (1u << 1)
#define CT_FILTER_F_PROTO_NUM  (1u << 3)
#define CT_FILTER_F_PORT_SRC   (1u << 4)
#define CT_FILTER_F_PORT_DST   (1u << 5)

/* A flow this round creates anew (its old copy's exact delete is queued
 * before the create): the scans run first at commit and still see the
 * old copy, and their delete, sent after the create, would take the new
 * one (a forked call's winner keeping the phone's port, a re-INVITE
 * back to an earlier remote). */
static int ct_create_queued(struct addr a, uint16_t ap, struct addr b, uint16_t bp)
{
	for (int i = 0; i < ct_ndel; i++) {
		const struct ct_del *d = &ct_dels[i];
		if (d->create && d->ap == ap && d->bp == bp && addr_eq(&d->a, &a) && addr_eq(&d->b, &b))
			return 1;
	}
	return 0;
}

static int ct_scan_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ct_scan *sc = data;
	struct nf_conntrack *ct;

	if ((nlh->nlmsg_type & 0xff) != IPCTNL_MSG_CT_NEW ||
	    (nlh->nlmsg_type >> 8) != NFNL_SUBSYS_CTNETLINK)
		return MNL_CB_OK;
	ct = nfct_new();
	if (!ct)
		return MNL_CB_ERROR;
	if (nfct_nlmsg_parse(nlh, ct) == 0 && nfct_get_attr_u8(ct, ATTR_L4PROTO) == IPPROTO_UDP) {
		struct addr a = ct_get_addr(ct, ATTR_IPV4_SRC, ATTR_IPV6_SRC);
		struct addr b = ct_get_addr(ct, ATTR_IPV4_DST, ATTR_IPV6_DST);
		uint16_t ap = ntohs(nfct_get_attr_u16(ct, ATTR_PORT_SRC));
		uint16_t bp = ntohs(nfct_get_attr_u16(ct, ATTR_PORT_DST));
		struct addr rb = ct_get_addr(ct, ATTR_REPL_IPV4_DST, ATTR_REPL_IPV6_DST);
		int hit;

		/* An old kernel ignores CTA_FILTER and dumps everything: check. */
		switch (sc->to_dst) {
		case SCAN_DST_PORT: hit = addr_eq(&b, &sc->ip) && bp == sc->port; break;
		case SCAN_SRC_PORT: hit = addr_eq(&a, &sc->ip) && ap == sc->port; break;
		case SCAN_ORIG_DST: hit = addr_eq(&b, &sc->ip); break;
		default:            hit = addr_eq(&rb, &sc->ip); break;
		}
		if (hit && !ct_create_queued(a, ap, b, bp))
			ct_del_udp(a, ap, b, bp);
	}
	nfct_destroy(ct);
	return MNL_CB_OK;
}

static int ct_dump(const struct ct_scan *sc, mnl_cb_t cb, void *data);

static void ct_scan_one(const struct ct_scan *sc)
{
	if (ct_dump(sc, ct_scan_cb, (void *)sc) < 0) {
		STAT_INC(ct_errors);
		LOG_RL(LOG_LVL_WARN, "ct: flow scan did not complete: %s", strerror(errno));
	}
}

/* One filtered dump (CTA_FILTER) of the UDP flows whose original tuple has
 * sc's address and port as destination (to_dst) or source; cb per entry.
 * 0 when the dump completed, -1 otherwise (errno). */
static int ct_dump(const struct ct_scan *sc, mnl_cb_t cb, void *data)
{
	char buf[512] __attribute__((aligned(8)));
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfh;
	struct nlattr *tup, *nest;
	uint32_t seq = ++ct_seq;
	int ret, rounds;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	nfh = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfh));
	nfh->nfgen_family = fam(&sc->ip);
	nfh->version = NFNETLINK_V0;
	nfh->res_id = 0;
	int repl = sc->to_dst == SCAN_REPL_DST, addr_only = sc->to_dst >= SCAN_ORIG_DST;
	int dst = sc->to_dst != SCAN_SRC_PORT;
	/* IPv6: 6.18's CTA_FILTER matches no IPv6 entry (measured: a dump
	 * filtered on an entry's own destination returns nothing), so the
	 * whole IPv6 table of the family is dumped and the callback checks
	 * each entry, as it does for an old kernel that ignores the filter.
	 * IPv6 flows are few on a router that does not translate them. */
	if (!addr_is_v4(&sc->ip))
		goto send;
	tup = mnl_attr_nest_start(nlh, repl ? CTA_TUPLE_REPLY : CTA_TUPLE_ORIG);
	nest = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	if (addr_is_v4(&sc->ip))
		mnl_attr_put_u32(nlh, dst ? CTA_IP_V4_DST : CTA_IP_V4_SRC, htonl(addr_get_v4(&sc->ip)));
	else
		mnl_attr_put(nlh, dst ? CTA_IP_V6_DST : CTA_IP_V6_SRC, 16, sc->ip.b);
	mnl_attr_nest_end(nlh, nest);
	nest = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_UDP);
	if (!addr_only)
		mnl_attr_put_u16(nlh, dst ? CTA_PROTO_DST_PORT : CTA_PROTO_SRC_PORT, htons(sc->port));
	mnl_attr_nest_end(nlh, nest);
	mnl_attr_nest_end(nlh, tup);
	nest = mnl_attr_nest_start(nlh, CTA_FILTER);
	mnl_attr_put_u32(nlh, repl ? CTA_FILTER_REPLY_FLAGS : CTA_FILTER_ORIG_FLAGS,
			 CT_FILTER_F_PROTO_NUM | (dst ? CT_FILTER_F_IP_DST : CT_FILTER_F_IP_SRC) |
			 (addr_only ? 0 : dst ? CT_FILTER_F_PORT_DST : CT_FILTER_F_PORT_SRC));
	mnl_attr_nest_end(nlh, nest);
send:
	if (mnl_socket_sendto(ct_nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	/* Bounded: a dump of a huge table ends in NLMSG_DONE long before this. */
	for (rounds = 0; rounds < 4096; rounds++) {
		ret = ct_recv(1000);
		if (ret < 0)
			break;
		ret = mnl_cb_run(ct_rx, (size_t)ret, seq, ct_portid, cb, data);
		if (ret == MNL_CB_STOP)
			return 0;
		if (ret == MNL_CB_ERROR && errno != ESRCH && errno != EPROTO)
			break;
	}
	return -1;
}

/* ---- flow counters (sipalgctl call; the operator's request, not the packet path) */

struct ct_flows_req {
	ct_flow_fn fn;
	void *arg;
	const struct ct_scan *sc;
};

static int ct_flows_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ct_flows_req *rq = data;
	struct nf_conntrack *ct;
	struct ct_flow f;

	if ((nlh->nlmsg_type & 0xff) != IPCTNL_MSG_CT_NEW ||
	    (nlh->nlmsg_type >> 8) != NFNL_SUBSYS_CTNETLINK)
		return MNL_CB_OK;
	ct = nfct_new();
	if (!ct)
		return MNL_CB_ERROR;
	if (nfct_nlmsg_parse(nlh, ct) == 0 && nfct_get_attr_u8(ct, ATTR_L4PROTO) == IPPROTO_UDP) {
		memset(&f, 0, sizeof(f));
		f.src = ct_get_addr(ct, ATTR_IPV4_SRC, ATTR_IPV6_SRC);
		f.dst = ct_get_addr(ct, ATTR_IPV4_DST, ATTR_IPV6_DST);
		f.sport = ntohs(nfct_get_attr_u16(ct, ATTR_PORT_SRC));
		f.dport = ntohs(nfct_get_attr_u16(ct, ATTR_PORT_DST));
		f.rsrc = ct_get_addr(ct, ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV6_SRC);
		f.rsport = ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC));
		f.status = nfct_attr_is_set(ct, ATTR_STATUS) ? nfct_get_attr_u32(ct, ATTR_STATUS) : 0;
		f.has_counters = nfct_attr_is_set(ct, ATTR_ORIG_COUNTER_PACKETS);
		if (f.has_counters) {
			f.pkts[0] = nfct_get_attr_u64(ct, ATTR_ORIG_COUNTER_PACKETS);
			f.bytes[0] = nfct_get_attr_u64(ct, ATTR_ORIG_COUNTER_BYTES);
			f.pkts[1] = nfct_get_attr_u64(ct, ATTR_REPL_COUNTER_PACKETS);
			f.bytes[1] = nfct_get_attr_u64(ct, ATTR_REPL_COUNTER_BYTES);
		}
		f.dnat = (f.status & IPS_DST_NAT) != 0;
		/* the kernel's filter is not trusted (IPv6: none, see ct_dump) */
		int hit = rq->sc->to_dst ? addr_eq(&f.dst, &rq->sc->ip) && f.dport == rq->sc->port
					 : addr_eq(&f.src, &rq->sc->ip) && f.sport == rq->sc->port;
		if (hit)
			rq->fn(&f, rq->arg);
	}
	nfct_destroy(ct);
	return MNL_CB_OK;
}

int ct_flows(struct addr ip, uint16_t port, int to_dst, ct_flow_fn fn, void *arg)
{
	struct ct_scan sc = { ip, port, (uint8_t)!!to_dst };
	struct ct_flows_req rq = { fn, arg, &sc };

	if (!ct_nl || ct_scanning) {
		errno = EBUSY;
		return -1;
	}
	return ct_dump(&sc, ct_flows_cb, &rq);
}

/* Per-flow packet and byte counts (sipalgctl call) exist only while
 * conntrack accounting is on in this namespace; flows created before it
 * was switched on have none. The cost is two counters per conntrack. */
void ct_accounting_on(void)
{
	static const char path[] = "/proc/sys/net/netfilter/nf_conntrack_acct";
	char cur = '0';
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		log_warn("ct: %s: %s; sipalgctl call shows no media counters", path, strerror(errno));
		return;
	}
	if (read(fd, &cur, 1) == 1 && cur == '0') {
		if (pwrite(fd, "1\n", 2, 0) != 2)
			log_warn("ct: cannot switch on %s: %s; sipalgctl call shows no media counters",
				 path, strerror(errno));
		else
			log_info("ct: switched on conntrack accounting (%s) for per-call media counters", path);
	}
	close(fd);
}

/* One tuple nest: CTA_TUPLE_IP {src, dst}, CTA_TUPLE_PROTO {UDP, ports}. */
static void ct_put_tuple(struct nlmsghdr *nlh, uint16_t type, const struct addr *src, uint16_t sport,
			 const struct addr *dst, uint16_t dport)
{
	struct nlattr *tup = mnl_attr_nest_start(nlh, type), *nest;

	nest = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	if (addr_is_v4(src)) {
		mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, htonl(addr_get_v4(src)));
		mnl_attr_put_u32(nlh, CTA_IP_V4_DST, htonl(addr_get_v4(dst)));
	} else {
		mnl_attr_put(nlh, CTA_IP_V6_SRC, 16, src->b);
		mnl_attr_put(nlh, CTA_IP_V6_DST, 16, dst->b);
	}
	mnl_attr_nest_end(nlh, nest);
	nest = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_UDP);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(sport));
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(dport));
	mnl_attr_nest_end(nlh, nest);
	mnl_attr_nest_end(nlh, tup);
}

/* IPCTNL_MSG_CT_NEW for a conntrack that does not exist yet. What the
 * kernel's ctnetlink_new_conntrack wants for a create: NLM_F_CREATE (and
 * EXCL, so an existing flow is left alone and answered EEXIST), the
 * nfgenmsg family the tuples are parsed with, both tuples, and CTA_TIMEOUT
 * (a create without one is EINVAL). CTA_STATUS: SEEN_REPLY makes the
 * remote's first datagram ESTABLISHED rather than NEW (its original
 * direction is the remote's). */
static struct nlmsghdr *ct_put_create(char *buf, uint32_t seq, const struct ct_del *d)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfh;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	nlh->nlmsg_seq = seq;
	nfh = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfh));
	nfh->nfgen_family = fam(&d->a);
	nfh->version = NFNETLINK_V0;
	nfh->res_id = 0;
	ct_put_tuple(nlh, CTA_TUPLE_ORIG, &d->a, d->ap, &d->b, d->bp);
	ct_put_tuple(nlh, CTA_TUPLE_REPLY, &d->b, d->bp, &d->a, d->ap);
	/* CONFIRMED too: the kernel compares the bits it does not let
	 * userspace change with the new entry's, which is confirmed by the
	 * time they are checked; without it the create is EBUSY (measured on
	 * 6.18; conntrack -I sends the same 0x0a). */
	mnl_attr_put_u32(nlh, CTA_STATUS, htonl(IPS_SEEN_REPLY | IPS_CONFIRMED));
	mnl_attr_put_u32(nlh, CTA_TIMEOUT, htonl(d->timeout));
	if (d->dnat) {
		/* CTA_NAT_DST: one address and one port, the phone's. The kernel
		 * (nf_nat_setup_info via ctnetlink) rewrites the reply tuple
		 * given above into the phone's and sets DST_NAT; the source
		 * side gets the null binding. */
		struct nlattr *nat = mnl_attr_nest_start(nlh, CTA_NAT_DST), *pr;
		if (addr_is_v4(&d->nat)) {
			mnl_attr_put_u32(nlh, CTA_NAT_V4_MINIP, htonl(addr_get_v4(&d->nat)));
			mnl_attr_put_u32(nlh, CTA_NAT_V4_MAXIP, htonl(addr_get_v4(&d->nat)));
		} else {
			mnl_attr_put(nlh, CTA_NAT_V6_MINIP, 16, d->nat.b);
			mnl_attr_put(nlh, CTA_NAT_V6_MAXIP, 16, d->nat.b);
		}
		pr = mnl_attr_nest_start(nlh, CTA_NAT_PROTO);
		mnl_attr_put_u16(nlh, CTA_PROTONAT_PORT_MIN, htons(d->bp));
		mnl_attr_put_u16(nlh, CTA_PROTONAT_PORT_MAX, htons(d->bp));
		mnl_attr_nest_end(nlh, pr);
		mnl_attr_nest_end(nlh, nat);
	}
	return nlh;
}

/* Answers to creates and deletes: with NETLINK_CAP_ACK an error or ACK is
 * its header, the code and the echoed request header, so small slots do. */
#define CT_ANS_SLOT 256
static char ct_ans[CT_SEND_MAX][CT_ANS_SLOT] __attribute__((aligned(8)));
static struct mmsghdr ct_ans_mm[CT_SEND_MAX];
static struct iovec ct_ans_iov[CT_SEND_MAX];

/* Take the answers queued now (up to a send's worth) in one recvmmsg();
 * wait (bounded) when none is there yet. Returns the number of datagrams
 * in ct_ans, or -1 (errno). */
static int ct_recv_answers(int timeout_ms)
{
	int fd = mnl_socket_get_fd(ct_nl);

	for (int tries = 0; tries < 8; tries++) {
		for (int i = 0; i < CT_SEND_MAX; i++) {
			ct_ans_iov[i].iov_base = ct_ans[i];
			ct_ans_iov[i].iov_len = CT_ANS_SLOT;
			memset(&ct_ans_mm[i].msg_hdr, 0, sizeof(ct_ans_mm[i].msg_hdr));
			ct_ans_mm[i].msg_hdr.msg_iov = &ct_ans_iov[i];
			ct_ans_mm[i].msg_hdr.msg_iovlen = 1;
		}
		int n = recvmmsg(fd, ct_ans_mm, CT_SEND_MAX, MSG_DONTWAIT, NULL);
		if (n > 0)
			return n;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int pr = poll(&pfd, 1, timeout_ms);
		if (pr == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (pr < 0 && errno != EINTR)
			return -1;
	}
	errno = ETIMEDOUT;
	return -1;
}

/* Send creates and deletes [from, to) in one sendmsg and drain their ACKs. */
static void ct_send_dels(int from, int to)
{
	static char buf[CT_SEND_MAX * CT_MSG_MAX] __attribute__((aligned(8)));
	size_t off = 0;
	int i, sent = 0, seen = 0, rounds;

	for (i = from; i < to; i++) {
		struct ct_del *d = &ct_dels[i];
		struct nlmsghdr *nlh;

		d->seq = 0;
		/* Messages are built back to back and the builder does not
		 * check bounds: check the room first, and the size after. */
		if (off + CT_MSG_MAX > sizeof(buf)) {
			d->err = ENOSPC;
			continue;
		}
		nlh = d->create ? ct_put_create(buf + off, ct_seq + 1, d)
				: ct_put_req(buf + off, IPCTNL_MSG_CT_DELETE, NLM_F_ACK, ct_seq + 1,
					     &d->a, d->ap, &d->b, d->bp);
		if (!nlh || nlh->nlmsg_len > CT_MSG_MAX) {
			d->err = EINVAL;
			continue;
		}
		d->seq = ++ct_seq;
		off += NLMSG_ALIGN(nlh->nlmsg_len);
		sent++;
	}
	if (sent == 0)
		return;
	if (mnl_socket_sendto(ct_nl, buf, off) < 0) {
		int err = errno;

		for (i = from; i < to; i++)
			if (ct_dels[i].seq)
				ct_dels[i].err = err;
		return;
	}
	/* One ACK or error per message, all queued inside our sendmsg(): one
	 * recvmmsg() takes a send's worth (a recv() each was 4-5 system calls
	 * per call at the tick). The bound on rounds only guards against a
	 * socket that keeps delivering something else. */
	for (rounds = 0; seen < sent && rounds < 4 * CT_SEND_MAX; rounds++) {
		int n = ct_recv_answers(1000);

		if (n < 0)
			break; /* the rest stay ETIMEDOUT */
		for (int m = 0; m < n; m++) {
			const struct nlmsghdr *nlh = (const struct nlmsghdr *)ct_ans[m];
			int len = (int)ct_ans_mm[m].msg_len;

			/* (a slot holds a whole answer: see CT_ANS_SLOT) */
			if (len > CT_ANS_SLOT)
				len = CT_ANS_SLOT;
			for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
				const struct nlmsgerr *e;

				if (nlh->nlmsg_type != NLMSG_ERROR ||
				    nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(*e))
					continue;
				e = mnl_nlmsg_get_payload(nlh);
				for (i = from; i < to; i++) {
					struct ct_del *d = &ct_dels[i];

					if (d->seq && d->seq == nlh->nlmsg_seq && d->err == ETIMEDOUT) {
						d->err = -e->error;
						seen++;
						break;
					}
				}
				/* no match: a late answer to something older */
			}
		}
	}
}

static int ct_flush_dels(void);

/* The flows of an old public address: more than a delete queue's worth
 * (a busy PBX), so scan, delete, and scan again until a scan finds no more
 * than fits. Both directions: inbound flows DNATed from it (original
 * destination) and outbound flows SNATed to it (reply destination). */
static int ct_commit_addrs(void)
{
	int errors = 0, n = ct_naddr;

	ct_naddr = 0;
	for (int i = 0; ct_nl && i < n; i++) {
		for (int mode = SCAN_ORIG_DST; mode <= SCAN_REPL_DST; mode++) {
			struct ct_scan sc = { ct_addrs[i], 0, (uint8_t)mode };
			int rounds = 0;

			do {
				ct_scan_full = 0;
				ct_scanning = 1;
				ct_scan_one(&sc);
				ct_scanning = 0;
				errors += ct_flush_dels();
			} while (ct_scan_full && ++rounds < 64);
		}
	}
	return errors;
}

int ct_commit(void)
{
	int i, errors = ct_carried_errors;

	ct_carried_errors = 0;
	ct_is_urgent = 0;
	/* Scans queue exact deletes; they are sent below with the others. */
	int nscan = ct_nscan;
	ct_nscan = 0;
	ct_scanning = 1;
	for (i = 0; ct_nl && i < nscan; i++)
		ct_scan_one(&ct_scans[i]);
	ct_scanning = 0;
	if (!ct_nl || ct_ndel == 0) {
		ct_ndel = 0;
		return errors + ct_commit_addrs();
	}
	errors += ct_flush_dels();
	return errors + ct_commit_addrs();
}

/* Send every queued delete and count the answers. */
static int ct_flush_dels(void)
{
	int i, errors = 0;

	for (i = 0; i < ct_ndel; i += CT_SEND_MAX)
		ct_send_dels(i, i + CT_SEND_MAX < ct_ndel ? i + CT_SEND_MAX : ct_ndel);
	for (i = 0; i < ct_ndel; i++) {
		struct ct_del *d = &ct_dels[i];

		if (d->create) {
			/* EEXIST: the flow is there already (the phone sent
			 * first, or a retransmitted SDP): the remote gets in. */
			if (d->err == 0 || d->err == EEXIST) {
				STAT_INC(pinholes_ct_created);
				if (d->dnat)
					STAT_INC(pinholes_ct_nat);
				continue;
			}
			STAT_INC(pinholes_ct_failed);
		} else if (d->err == 0 || d->err == ENOENT) {
			/* ENOENT: gone already (timed out, or deleted by its
			 * other direction's tuple): exactly what we wanted. */
			if (d->err == 0)
				STAT_INC(ct_deletes);
			continue;
		}
		STAT_INC(ct_errors);
		errors++;
		char sa[ADDR_STRLEN], da[ADDR_STRLEN];
		addr_fmt(sa, &d->a, 1);
		addr_fmt(da, &d->b, 1);
		LOG_RL(LOG_LVL_WARN, "ct: %s udp %s:%u %s %s:%u: %s", d->create ? "create" : "delete",
		       sa, d->ap, d->create ? "->" : "<->", da, d->bp, strerror(d->err));
	}
	ct_ndel = 0;
	return errors;
}
