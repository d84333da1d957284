/* nfq: the NFQUEUE socket. See nfq.h for the contract.
 *
 * Why it looks like this (measured on the target: shared notes, nfqueue-costs):
 * the cost of a userspace ALG is the wake-up, not the parsing, so we take a
 * burst with one recvmmsg() and send every verdict of the burst with one
 * sendmsg(). Everything lives in static buffers sized at compile time by
 * what they hold (one maximal netlink packet message per slot): the packet
 * path allocates nothing. */
/* Our socket functions are nfq_sock_*: libnetfilter_queue's legacy API
 * owns nfq_open/nfq_close/nfq_fd. We use only its nfq_nlmsg_* helpers. */
#include <libnetfilter_queue/libnetfilter_queue.h>

#include "nfq.h"
#include "log.h"
#include "stats.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <poll.h>
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netlink.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <libnetfilter_queue/linux_nfnetlink_queue.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define NFQ_BURST_MAX   256
#define NFQ_COPY_RANGE  0xffff
/* One packet message: headers and attributes around at most 0xffff bytes of
 * packet. 4096 is generous for nlmsghdr, nfgenmsg, packet header, ifindexes,
 * hw address, timestamp, cap_len, skb_info, uid/gid and a security context. */
#define NFQ_SLOT_SIZE   ((NFQ_COPY_RANGE + 4096 + 7) & ~7) /* every slot 8-aligned */
#define NFQ_RCVBUF      (8 * 1024 * 1024)
#define NFQ_SNDBUF      (8 * 1024 * 1024)
/* Largest packet a verdict can carry: nla_len is 16 bits and includes the
 * attribute header. */
#define NFQ_PAYLOAD_MAX (0xffff - NLA_HDRLEN)

static struct mnl_socket *nfq_nl;
static uint16_t nfq_queue;
static uint32_t nfq_portid;
static size_t nfq_send_max; /* largest sendmsg the socket accepts */

/* Receive side: one buffer per recvmmsg slot. BSS: costs address space only
 * until a burst that size actually arrives. */
static uint8_t nfq_rx_buf[NFQ_BURST_MAX][NFQ_SLOT_SIZE] __attribute__((aligned(8)));
static struct mmsghdr nfq_rx_msg[NFQ_BURST_MAX];
static struct iovec nfq_rx_iov[NFQ_BURST_MAX];

/* Verdict side: per queued verdict, the netlink header, nfgenmsg, verdict
 * attribute and (when rewritten) the payload attribute header live in
 * nfq_vd[i].hdr; the payload itself is referenced by an iovec; the padding
 * up to NLA_ALIGN comes from nfq_zero. */
#define NFQ_VD_HDR_SIZE 64
struct nfq_vd {
	uint8_t hdr[NFQ_VD_HDR_SIZE] __attribute__((aligned(4)));
	uint32_t hdr_len;
	const uint8_t *payload;
	uint32_t payload_len;
	uint32_t msg_len; /* whole netlink message, aligned */
};
static struct nfq_vd nfq_vd[NFQ_BURST_MAX];
static int nfq_vd_n;
static struct iovec nfq_vd_iov[NFQ_BURST_MAX * 3];
static const uint8_t nfq_zero[4];

/* Filled by the parse callback. */
struct nfq_rx_ctx {
	struct nfq_pkt *pkts;
	int n;
	int max;
};


/* Send one verdict right away, outside the batch: used for the rare packet
 * we cannot hand to the caller (configuration time, malformed message, no
 * room). Always a drop: fail closed. */
static void nfq_verdict_now_drop(uint32_t id)
{
	char buf[NFQ_VD_HDR_SIZE] __attribute__((aligned(4)));
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT, nfq_queue);

	nfq_nlmsg_verdict_put(nlh, (int)id, NF_DROP);
	STAT_INC(verdict_batches);
	if (mnl_socket_sendto(nfq_nl, nlh, nlh->nlmsg_len) < 0) {
		STAT_INC(verdict_errors);
		LOG_RL(LOG_LVL_WARN, "nfq: drop verdict for packet %u: %s",
		       id, strerror(errno));
	}
}

static int nfq_pkt_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nfq_rx_ctx *ctx = data;
	struct nlattr *attr[NFQA_MAX + 1] = { NULL };
	const struct nfqnl_msg_packet_hdr *ph;
	const struct nfgenmsg *nfg;
	struct nfq_pkt *p;
	uint32_t id;

	if (nlh->nlmsg_type != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET))
		return MNL_CB_OK;
	if (nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(*nfg))
		return MNL_CB_OK;
	nfg = mnl_nlmsg_get_payload(nlh);
	if (ntohs(nfg->res_id) != nfq_queue)
		return MNL_CB_OK;
	/* nfq_nlmsg_parse validates the type and length of every known
	 * attribute before we touch it. */
	if (nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR]) {
		LOG_RL(LOG_LVL_WARN, "nfq: malformed packet message dropped from view");
		return MNL_CB_OK;
	}
	ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	id = ntohl(ph->packet_id);
	if (!attr[NFQA_PAYLOAD] || ctx->pkts == NULL || ctx->n >= ctx->max) {
		/* No bytes to look at, or read while waiting for a config
		 * answer (the unbind of a clean stop: SIP kept arriving), or no
		 * room (which recvmmsg's vlen makes impossible: the kernel sends
		 * one packet per datagram). The packet would otherwise wait in
		 * the kernel forever. */
		LOG_RL(LOG_LVL_WARN, "nfq: packet %u %s, dropped", id,
		       !attr[NFQA_PAYLOAD] ? "without payload"
		       : ctx->pkts == NULL ? "queued while the queue was being (un)bound (the sender retransmits)"
					   : "beyond the burst");
		nfq_verdict_now_drop(id);
		return MNL_CB_OK;
	}
	p = &ctx->pkts[ctx->n++];
	p->id = id;
	p->data = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
	p->len = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
	p->indev = attr[NFQA_IFINDEX_INDEV] ?
		ntohl(mnl_attr_get_u32(attr[NFQA_IFINDEX_INDEV])) : 0;
	p->outdev = attr[NFQA_IFINDEX_OUTDEV] ?
		ntohl(mnl_attr_get_u32(attr[NFQA_IFINDEX_OUTDEV])) : 0;
	return MNL_CB_OK;
}

/* Find the packet id in a message we could not read whole, and drop it. */
static void nfq_drop_truncated(const uint8_t *buf, size_t len)
{
	size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));

	while (off + NLA_HDRLEN <= len) {
		const struct nlattr *a = (const struct nlattr *)(buf + off);

		if (a->nla_len < NLA_HDRLEN || off + a->nla_len > len)
			return;
		if ((a->nla_type & NLA_TYPE_MASK) == NFQA_PACKET_HDR &&
		    a->nla_len >= NLA_HDRLEN + sizeof(struct nfqnl_msg_packet_hdr)) {
			const struct nfqnl_msg_packet_hdr *ph =
				(const void *)((const uint8_t *)a + NLA_HDRLEN);

			nfq_verdict_now_drop(ntohl(ph->packet_id));
			return;
		}
		off += NLA_ALIGN(a->nla_len);
	}
}

/* An NLMSG_ERROR that reaches the packet path answers one of our verdicts
 * (verdicts ask for no ACK, so only failures come back). */
static void nfq_note_async_error(void)
{
	STAT_INC(verdict_errors);
	LOG_RL(LOG_LVL_WARN, "nfq: kernel refused a verdict: %s", strerror(errno));
}

/* Send a configuration message and wait (bounded) for its ACK. Packets
 * that arrive meanwhile get a drop verdict: nobody is ready for them yet. */
static int nfq_cfg_send(struct nlmsghdr *nlh)
{
	struct nfq_rx_ctx ctx = { NULL, 0, 0 };
	uint8_t *buf = nfq_rx_buf[0];
	uint32_t seq = nlh->nlmsg_seq;
	struct pollfd pfd;
	int fd = mnl_socket_get_fd(nfq_nl);
	int ret, rounds;

	if (mnl_socket_sendto(nfq_nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (rounds = 0; rounds < 1024; rounds++) {
		ret = poll(&pfd, 1, 2000);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0) {
			errno = ret == 0 ? ETIMEDOUT : errno;
			return -1;
		}
		ret = mnl_socket_recvfrom(nfq_nl, buf, NFQ_SLOT_SIZE);
		if (ret < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == ENOBUFS)
				continue;
			return -1;
		}
		ret = mnl_cb_run(buf, (size_t)ret, 0, nfq_portid, nfq_pkt_cb, &ctx);
		if (ret == MNL_CB_ERROR) {
			/* mnl_cb_run reports an error message with errno; an
			 * error for another seq would be a stale verdict. */
			const struct nlmsghdr *e = (const struct nlmsghdr *)buf;

			if (e->nlmsg_seq == seq)
				return -1;
			continue;
		}
		if (ret == MNL_CB_STOP && ((const struct nlmsghdr *)buf)->nlmsg_seq == seq)
			return 0;
	}
	errno = ETIMEDOUT;
	return -1;
}

static struct nlmsghdr *nfq_cfg_msg(char *buf, uint32_t seq)
{
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, nfq_queue);

	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	return nlh;
}

static void nfq_sock_bufs(int fd)
{
	socklen_t sl;
	int v = NFQ_RCVBUF;

	/* SO_RCVBUFFORCE ignores net.core.rmem_max (it needs CAP_NET_ADMIN,
	 * which binding a queue needs anyway); fall back for odd setups. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)) < 0)
		log_warn("nfq: cannot raise the receive buffer: %s", strerror(errno));
	v = NFQ_SNDBUF;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)) < 0)
		log_warn("nfq: cannot raise the send buffer: %s", strerror(errno));
	/* netlink_sendmsg() refuses a message longer than sk_sndbuf - 32:
	 * remember the real limit so that a burst of big rewritten packets is
	 * split over several sendmsg() calls instead of refused. */
	v = 0;
	sl = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &sl) < 0 || v < 2 * NFQ_SLOT_SIZE)
		v = 2 * NFQ_SLOT_SIZE; /* the kernel doubles what we set; 64 KiB+ always fits */
	nfq_send_max = (size_t)v - 64;
}

int nfq_sock_open(uint16_t num, uint32_t maxlen)
{
	char buf[512] __attribute__((aligned(4))); /* one config message */
	struct nlmsghdr *nlh;
	uint32_t seq = 1;
	int fd, one = 1;

	if (nfq_nl)
		nfq_sock_close();
	nfq_queue = num;
	nfq_vd_n = 0;
	/* CLOEXEC: the iptables we run at start must not inherit the queue.
	 * Non-blocking from the start: every wait below is a bounded poll. */
	nfq_nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!nfq_nl) {
		log_err("nfq: netlink socket: %s", strerror(errno));
		return -1;
	}
	if (mnl_socket_bind(nfq_nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		log_err("nfq: netlink bind: %s", strerror(errno));
		goto fail;
	}
	nfq_portid = mnl_socket_get_portid(nfq_nl);
	fd = mnl_socket_get_fd(nfq_nl);
	nfq_sock_bufs(fd);
	/* Error messages without our request echoed back: smaller, and a
	 * refused verdict must not cost a 64 KiB copy. */
	if (setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one)) < 0)
		log_debug("nfq: NETLINK_CAP_ACK: %s", strerror(errno));

	/* Bind on its own: a configuration message carrying anything the
	 * kernel refuses fails whole (queue bound, nothing delivered). */
	nlh = nfq_cfg_msg(buf, seq++);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
	if (nfq_cfg_send(nlh) < 0) {
		log_err("nfq: bind queue %u: %s%s", num, strerror(errno),
			/* the kernel says EPERM when another socket owns the queue */
			errno == EBUSY || errno == EPERM ? " (another process holds this queue: a second sipalgd?)" : "");
		goto fail;
	}

	/* Whole packets, and a queue long enough to ride out a burst. Never
	 * the fail-open flag: an overloaded queue must drop SIP, not
	 * let private addresses leak. */
	nlh = nfq_cfg_msg(buf, seq++);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, NFQ_COPY_RANGE);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, maxlen);
	if (nfq_cfg_send(nlh) < 0) {
		log_err("nfq: queue %u parameters (copy range %u, max length %u): %s",
			num, NFQ_COPY_RANGE, maxlen, strerror(errno));
		goto fail_unbind;
	}

	/* No optional flags, on purpose:
	 *  - NFQA_CFG_F_CONNTRACK is refused by this kernel, and bundled with
	 *    anything it makes the whole message fail;
	 *  - the fail-open flag contradicts fail-closed;
	 *  - NFQA_CFG_F_GSO would hand us GRO'd UDP superpackets (several SIP
	 *    datagrams behind one header) and CHECKSUM_PARTIAL packets whose
	 *    UDP checksum is not filled in. Without it the kernel segments and
	 *    completes checksums before queueing, so every nfq_pkt is exactly
	 *    one checksummed IPv4 datagram. Its saving is for TCP bulk, not
	 *    SIP (measured: no gain at our rates).
	 * A flag added later goes in its own acknowledged message, and a
	 * refusal is logged and ignored. */
	log_info("nfq: bound queue %u (max length %u)", num, maxlen);
	return 0;

fail_unbind:
	nlh = nfq_cfg_msg(buf, seq++);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_UNBIND);
	nfq_cfg_send(nlh);
fail:
	mnl_socket_close(nfq_nl);
	nfq_nl = NULL;
	return -1;
}

void nfq_sock_close(void)
{
	char buf[512] __attribute__((aligned(4))); /* one config message */
	struct nlmsghdr *nlh;

	if (!nfq_nl)
		return;
	if (nfq_vd_n)
		nfq_verdict_flush();
	/* Closing the socket unbinds too; the explicit UNBIND only makes a
	 * refusal visible. Packets still queued are dropped by the kernel. */
	nlh = nfq_cfg_msg(buf, 0xffffff);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_UNBIND);
	if (nfq_cfg_send(nlh) < 0)
		log_warn("nfq: unbind queue %u: %s", nfq_queue, strerror(errno));
	mnl_socket_close(nfq_nl);
	nfq_nl = NULL;
}

int nfq_sock_fd(void)
{
	return nfq_nl ? mnl_socket_get_fd(nfq_nl) : -1;
}

int nfq_recv_burst(struct nfq_pkt *pkts, int max)
{
	static struct sockaddr_nl from[NFQ_BURST_MAX];
	struct nfq_rx_ctx ctx;
	int fd, i, n, tries = 0;

	if (!nfq_nl) {
		errno = EBADF;
		return -1;
	}
	if (max <= 0)
		return 0;
	if (max > NFQ_BURST_MAX)
		max = NFQ_BURST_MAX;
	fd = mnl_socket_get_fd(nfq_nl);
	for (i = 0; i < max; i++) {
		nfq_rx_iov[i].iov_base = nfq_rx_buf[i];
		nfq_rx_iov[i].iov_len = NFQ_SLOT_SIZE;
		memset(&nfq_rx_msg[i].msg_hdr, 0, sizeof(nfq_rx_msg[i].msg_hdr));
		nfq_rx_msg[i].msg_hdr.msg_iov = &nfq_rx_iov[i];
		nfq_rx_msg[i].msg_hdr.msg_iovlen = 1;
		nfq_rx_msg[i].msg_hdr.msg_name = &from[i];
		nfq_rx_msg[i].msg_hdr.msg_namelen = sizeof(from[i]);
	}
	for (;;) {
		n = recvmmsg(fd, nfq_rx_msg, (unsigned)max, MSG_DONTWAIT, NULL);
		if (n >= 0)
			break;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (errno == ENOBUFS) {
			/* The socket overflowed: the kernel dropped packets
			 * (fail closed). Count it and read what is there. */
			STAT_INC(queue_enobufs);
			LOG_RL(LOG_LVL_WARN, "nfq: queue %u socket overflow (ENOBUFS): "
			       "packets dropped; raise queue.max_length or lower queue.holdoff_us",
			       nfq_queue);
		} else if (errno != EINTR) {
			return -1;
		}
		if (++tries > 4)
			return 0;
	}

	ctx.pkts = pkts;
	ctx.n = 0;
	ctx.max = max;
	for (i = 0; i < n; i++) {
		struct msghdr *mh = &nfq_rx_msg[i].msg_hdr;
		size_t len = nfq_rx_msg[i].msg_len;

		/* Only the kernel may speak for the queue: a local process
		 * could otherwise unicast forged packets to our port id. */
		if (mh->msg_namelen < sizeof(struct sockaddr_nl) || from[i].nl_pid != 0) {
			LOG_RL(LOG_LVL_WARN, "nfq: ignored a message from port id %u",
			       (unsigned)from[i].nl_pid);
			continue;
		}
		if (mh->msg_flags & MSG_TRUNC) {
			/* Cannot happen with slots larger than the copy range;
			 * if it does, the packet id is still at the front:
			 * drop the packet rather than strand it. */
			LOG_RL(LOG_LVL_ERR, "nfq: truncated message (%zu bytes), packet dropped", len);
			nfq_drop_truncated(nfq_rx_buf[i], len);
			continue;
		}
		if (mnl_cb_run(nfq_rx_buf[i], len, 0, nfq_portid, nfq_pkt_cb, &ctx) == MNL_CB_ERROR)
			nfq_note_async_error();
	}
	return ctx.n;
}

void nfq_verdict_add(uint32_t id, int accept, const uint8_t *payload, uint32_t len)
{
	struct nfq_vd *v;
	struct nlmsghdr *nlh;

	if (!nfq_nl)
		return;
	if (nfq_vd_n == NFQ_BURST_MAX)
		nfq_verdict_flush(); /* keeps the order: everything before goes first */
	/* The queue hands over the L3 packet of either family (ip6tables
	 * queues to the same number); the version nibble tells which. */
	int v6 = payload && len >= 1 && (payload[0] >> 4) == 6;
	if (accept && payload && (len > NFQ_PAYLOAD_MAX || len < (v6 ? 48u : 28u) ||
				  (!v6 && (payload[0] >> 4) != 4) ||
				  (v6 ? 40u + ((uint32_t)payload[4] << 8 | payload[5])
				      : ((uint32_t)payload[2] << 8 | payload[3])) != len)) {
		/* The kernel puts whatever we send in place of the packet and
		 * does not look at it again on the forward path: a replacement
		 * must be one whole IPv4 or IPv6 datagram whose total length is
		 * what we send (and fit one attribute). Otherwise drop: the only
		 * verdict that neither forwards garbage nor leaks the original. */
		STAT_INC(verdict_errors);
		LOG_RL(LOG_LVL_ERR, "nfq: replacement for packet %u is not a whole IP datagram "
		       "(%u bytes), dropped", id, len);
		accept = 0;
	}
	v = &nfq_vd[nfq_vd_n++];
	nlh = nfq_nlmsg_put((char *)v->hdr, NFQNL_MSG_VERDICT, nfq_queue);
	nfq_nlmsg_verdict_put(nlh, (int)id, accept ? NF_ACCEPT : NF_DROP);
	v->payload = NULL;
	v->payload_len = 0;
	if (accept && payload) {
		/* The attribute header is ours, its data is the caller's buffer
		 * (an iovec at flush time), then padding to NLA_ALIGN. */
		struct nlattr *a = (struct nlattr *)((char *)nlh + nlh->nlmsg_len);

		a->nla_type = NFQA_PAYLOAD;
		a->nla_len = (uint16_t)(NLA_HDRLEN + len);
		nlh->nlmsg_len += NLA_HDRLEN;
		v->payload = payload;
		v->payload_len = len;
	}
	v->hdr_len = nlh->nlmsg_len;
	/* Messages in one datagram start at NLMSG_ALIGN boundaries and the
	 * kernel steps by NLMSG_ALIGN(nlmsg_len): count the padding in. */
	nlh->nlmsg_len += NLA_ALIGN(v->payload_len);
	v->msg_len = nlh->nlmsg_len;
}

/* sendmsg() verdicts [from, to) as one datagram. 0 or -1 with errno. */
static int nfq_vd_send(int from, int to)
{
	static struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct msghdr mh;
	int i, k = 0, tries;

	for (i = from; i < to; i++) {
		struct nfq_vd *v = &nfq_vd[i];

		nfq_vd_iov[k].iov_base = v->hdr;
		nfq_vd_iov[k++].iov_len = v->hdr_len;
		if (v->payload) {
			uint32_t pad = NLA_ALIGN(v->payload_len) - v->payload_len;

			nfq_vd_iov[k].iov_base = (void *)v->payload;
			nfq_vd_iov[k++].iov_len = v->payload_len;
			if (pad) {
				nfq_vd_iov[k].iov_base = (void *)nfq_zero;
				nfq_vd_iov[k++].iov_len = pad;
			}
		}
	}
	memset(&mh, 0, sizeof(mh));
	mh.msg_name = &kernel;
	mh.msg_namelen = sizeof(kernel);
	mh.msg_iov = nfq_vd_iov;
	mh.msg_iovlen = (size_t)k;
	STAT_INC(verdict_batches);
	for (tries = 0; tries < 4; tries++) {
		if (sendmsg(mnl_socket_get_fd(nfq_nl), &mh, 0) >= 0)
			return 0;
		if (errno != EINTR)
			break;
	}
	return -1;
}

int nfq_verdict_flush(void)
{
	int from = 0, i, rc = 0;

	if (!nfq_nl || nfq_vd_n == 0) {
		nfq_vd_n = 0;
		return 0;
	}
	while (from < nfq_vd_n) {
		size_t bytes = 0;
		int to = from;

		/* Normally one sendmsg for the whole burst; split only when
		 * the socket's send limit would refuse it. */
		while (to < nfq_vd_n && (to == from || bytes + nfq_vd[to].msg_len <= nfq_send_max)) {
			bytes += nfq_vd[to].msg_len;
			to++;
		}
		if (nfq_vd_send(from, to) < 0) {
			int err = errno;

			/* The whole datagram was refused (the kernel parses
			 * nothing of it): retry one by one, and where even
			 * that fails fall back to a plain drop so no packet
			 * waits in the queue and nothing unrewritten leaks. */
			rc = -1;
			for (i = from; i < to; i++) {
				if (to - from > 1 && nfq_vd_send(i, i + 1) == 0)
					continue;
				STAT_INC(verdict_errors);
				LOG_RL(LOG_LVL_ERR, "nfq: verdict send failed: %s",
				       strerror(to - from > 1 ? errno : err));
				nfq_verdict_now_drop(ntohl(((struct nfqnl_msg_verdict_hdr *)
					mnl_attr_get_payload((struct nlattr *)(nfq_vd[i].hdr +
					NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg)))))->id));
			}
		}
		from = to;
	}
	nfq_vd_n = 0;
	return rc;
}
