/* nftmap: our own nftables table and its NAT maps. See nftmap.h.
 *
 * Two tools, each for what it is good at:
 *  - the table, maps and chains are created once at start from text with
 *    libnftables (in-process, no fork, loaded only for that: nftcmd.h), because the nat expressions are far
 *    clearer as nft syntax than as hand-built libnftnl rules;
 *  - element changes go over one long-lived libmnl socket as libnftnl
 *    batches, one NEWSETELEM/DESTROYSETELEM per element, without NLM_F_ACK:
 *    the kernel runs a batch inside our sendmsg() and queues an error,
 *    with the failing message's sequence number, for every refusal, ACK
 *    flag or not. So when sendmsg() returns, the socket holds exactly the
 *    refusals; a success costs no reply at all (an ACK per element was an
 *    skb, a copy and a read each, a tenth of a transaction's cost).
 *
 * A kernel nf_tables transaction is all or nothing: when one element of a
 * batch fails, the kernel aborts the whole batch. So after a batch with any
 * error, every element that did not fail itself is sent again in a new
 * batch (bounded rounds).
 *
 * The queue calls (snat_add, dnat_ref, ...) only record a pending operation
 * in preallocated arrays; nothing on these paths allocates.
 *
 * IPv6 (wan.masquerade6) gets a second table, `table ip6 <name>`, next to
 * `table ip <name>`, rather than one `table inet` for both:
 *  - the IPv4 table stays exactly what it was, byte for byte, with or
 *    without IPv6: kernel-rules/sipalgd-nat.nft, the operators' scripts
 *    that list `table ip sipalgd`, and a daemon upgraded under a running
 *    config see no change; with masquerade6 empty nothing else exists;
 *  - an ip6 table is the natural home of ipv6_addr maps and `snat to` /
 *    `dnat to`, like fw4's own masq6 (in inet, every NAT statement has to
 *    name its family and every rule needs a family match);
 *  - both are created, and put back after a firewall reload, by one nft
 *    text in one transaction, and element batches mix the two freely
 *    (each message carries its own family): one commit is still one
 *    transaction. Only the delete at exit is two messages, one per table. */
#include "nftmap.h"
#include "mem.h"
#include "nftcmd.h"

#include "conf.h"
#include "log.h"
#include "stats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netlink.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>

#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* Linux 6.3+: delete an element and do not fail when it is absent. Not in
 * the uapi headers Debian 12 ships; probed at open, DELSETELEM otherwise. */
#ifndef NFT_MSG_DESTROYSETELEM
#define NFT_MSG_DESTROYSETELEM 30
#endif

/* The ruleset, in one place. kernel-rules/sipalgd-nat.nft is the same text
 * for operators who load rules themselves (with the table called sipalgd);
 * change both together (tests/kernel checks they produce the same table).
 * The defines come first so the body reads exactly like that file.
 * "add table" + "delete table" removes a stale copy (take-over after a
 * crash) in the same atomic transaction that creates the new one. */
static const char nftmap_rules_fmt[] =
	"define WAN_IF = \"%s\"\n"
	"\n"
	"add table ip %s\n"
	"delete table ip %s\n"
	"\n"
	"table ip %s {\n"
	"\t# (private ip . private port) -> (public ip . public port)\n"
	"\tmap out4 { type ipv4_addr . inet_service : ipv4_addr . inet_service; }\n"
	"\t# (remote ip . public port) -> (private ip . private port)\n"
	"\tmap in_peer { type ipv4_addr . inet_service : ipv4_addr . inet_service; }\n"
	"\t# (public port) -> (private ip . private port), any remote\n"
	"\tmap in_any { type inet_service : ipv4_addr . inet_service; }\n"
	"\t# (LAN ip . public port) -> (private ip . private port): hairpin\n"
	"\tmap in_lan { type ipv4_addr . inet_service : ipv4_addr . inet_service; }\n"
	"\n"
	"\t# Before the operator's dstnat (priority - 5): our pinholes win.\n"
	"\t# To whatever address the router has now (fib ... local): no rule names\n"
	"\t# the public address, so a WAN address change needs no new rule.\n"
	"\tchain pre {\n"
	"\t\ttype nat hook prerouting priority dstnat - 5; policy accept;\n"
	"\t\tiifname $WAN_IF fib daddr type local meta l4proto udp dnat ip to ip saddr . udp dport map @in_peer\n"
	"\t\tiifname $WAN_IF fib daddr type local meta l4proto udp dnat ip to udp dport map @in_any\n"
	"\t\t# NAT reflection, for our pinholes only: a LAN phone sending to\n"
	"\t\t# another LAN phone's public media port, keyed by its private source.\n"
	"\t\tiifname != $WAN_IF fib daddr type local meta l4proto udp dnat ip to ip saddr . udp dport map @in_lan\n"
	"\t}\n"
	"\n"
	"\tchain post {\n"
	"\t\ttype nat hook postrouting priority srcnat - 5; policy accept;\n"
	"\t\toifname $WAN_IF meta l4proto udp snat ip to ip saddr . udp sport map @out4\n"
	"\t\t# The hairpinned flow leaves from the sender's public media address:\n"
	"\t\t# the callee sees the source its SDP named, and its media back is\n"
	"\t\t# this flow's reply, NATed back through the router.\n"
	"\t\t# (udp sport != 0, not meta l4proto udp: nft lists that one away and\n"
	"\t\t# then cannot read its own listing, `nft list ruleset > f; nft -f f`.)\n"
	"\t\toifname != $WAN_IF ct status dnat udp sport != 0 ip saddr . ct original proto-dst @in_lan snat ip to ip saddr . udp sport map @out4\n"
	"\t}\n"
	"}\n";

/* The IPv6 mirror (wan.masquerade6), appended to the text above so both
 * tables are made in one transaction; kernel-rules/sipalgd-nat6.nft is the
 * same text (tests/kernel checks it). Our post chain runs before the
 * operator's masquerade (srcnat): a flow our out6 maps keeps its mapped
 * port, everything else is masqueraded as before. No in_lan: see nftmap.h. */
static const char nftmap_rules6_fmt[] =
	"\n"
	"add table ip6 %s\n"
	"delete table ip6 %s\n"
	"\n"
	"table ip6 %s {\n"
	"\tmap out6 { type ipv6_addr . inet_service : ipv6_addr . inet_service; }\n"
	"\tmap in_peer6 { type ipv6_addr . inet_service : ipv6_addr . inet_service; }\n"
	"\tmap in_any6 { type inet_service : ipv6_addr . inet_service; }\n"
	"\n"
	"\tchain pre {\n"
	"\t\ttype nat hook prerouting priority dstnat - 5; policy accept;\n"
	"\t\tiifname $WAN_IF fib daddr type local meta l4proto udp dnat ip6 to ip6 saddr . udp dport map @in_peer6\n"
	"\t\tiifname $WAN_IF fib daddr type local meta l4proto udp dnat ip6 to udp dport map @in_any6\n"
	"\t}\n"
	"\n"
	"\tchain post {\n"
	"\t\ttype nat hook postrouting priority srcnat - 5; policy accept;\n"
	"\t\toifname $WAN_IF meta l4proto udp snat ip6 to ip6 saddr . udp sport map @out6\n"
	"\t}\n"
	"}\n";

/* The maps of both tables; from SET_OUT6 on, those of table ip6. */
enum { SET_OUT4, SET_IN_PEER, SET_IN_ANY, SET_IN_LAN, SET_OUT6, SET_IN_PEER6, SET_IN_ANY6, SET_N };
/* An element that goes to no map (an IPv6 LAN peer: no hairpin for IPv6). */
#define SET_NONE 0xff
static const char *const nftmap_set_name[SET_N] = {
	"out4", "in_peer", "in_any", "in_lan", "out6", "in_peer6", "in_any6"
};

static int set_is_v6(uint8_t set)
{
	return set >= SET_OUT6;
}

/* Is the ip6 table built (wan.masquerade6 names a prefix)? Fixed at open. */
static int nftmap_v6;

/* lan.networks, copied at open (changing them needs a restart): a peer
 * inside them is a LAN host reaching a pinhole through the public address. */
static struct conf_net nftmap_lan[CONF_MAX_LAN];
static int nftmap_n_lan;

static int nftmap_is_lan(const struct addr *a)
{
	for (int i = 0; i < nftmap_n_lan; i++)
		if (addr_in_prefix(a, &nftmap_lan[i].net, nftmap_lan[i].plen))
			return 1;
	return 0;
}

/* Which map an inbound element with this peer lives in. An IPv4 LAN peer
 * gets in_lan, matched only on packets that do not come from the WAN: a
 * LAN host can reach the phone directly anyway, so this opens nothing new,
 * and a packet from the WAN forging a LAN source matches nothing. An IPv6
 * LAN peer gets no map for the same reason and no hairpin (nftmap.h). */
static uint8_t nftmap_in_set(const struct addr *peer)
{
	if (!addr_is_v4(peer))
		return addr_is_any(peer) ? SET_IN_ANY6 : nftmap_is_lan(peer) ? SET_NONE : SET_IN_PEER6;
	return addr_is_any(peer) ? SET_IN_ANY : nftmap_is_lan(peer) ? SET_IN_LAN : SET_IN_PEER;
}

enum { OP_NONE, OP_ADD, OP_DEL };

/* One pending element change. */
struct nftmap_op {
	struct addr kip;  /* key: ip (unused for in_any) */
	struct addr dip;  /* data: ip (OP_ADD only) */
	uint16_t kport;
	uint16_t dport;
	uint8_t set;
	uint8_t kind;
	uint8_t done;
	int32_t prev;     /* earlier pending op on the same key, or -1 */
	int err;          /* last kernel answer for this op (errno, 0 = ok) */
};

/* Pending list: when full, it is committed on the spot (order kept), so
 * this bounds a transaction, not what the daemon can do. */
#define NFTMAP_PEND_MAX   4096
#define NFTMAP_PEND_HASH  (2 * NFTMAP_PEND_MAX)
static struct nftmap_op nftmap_ops[NFTMAP_PEND_MAX + 1]; /* +1: the probe */
static int nftmap_nops;
/* Index of the latest pending op per key, cleared per commit in O(1) by
 * bumping the generation. */
static struct { uint32_t gen; int32_t idx; } nftmap_pend_h[NFTMAP_PEND_HASH];
static uint32_t nftmap_pend_gen = 1;
static int nftmap_carried_errors; /* from commits forced by a full list */

/* One transaction: at most this many bytes of messages. Small enough for
 * the default netlink send buffer, and its ACKs fit the receive buffer. */
#define NFTMAP_BATCH_LIMIT (64 * 1024)
#define NFTMAP_MSG_MAX     256 /* one element message is ~110 bytes; checked */
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
static char nftmap_batch[NFTMAP_BATCH_LIMIT + 4 * NFTMAP_MSG_MAX] __attribute__((aligned(8)));
static int32_t nftmap_txn_idx[NFTMAP_BATCH_LIMIT / 64]; /* > what fits */

/* In-daemon reference counts of the inbound elements. Open addressing,
 * linear probing, deletion by backward shift (no tombstones). */
struct nftmap_ref {
	struct addr peer;  /* the family's unspecified address = in_any */
	struct addr priv_ip;
	uint16_t pub_port;
	uint16_t priv_port;
	uint32_t refs;     /* 0 = free entry */
	uint32_t next;     /* bucket chain or free list, index + 1 */
};
/* Chained hash: a small bucket array and entries handed out in order, so
 * the memory touched follows the number of live elements, not the limits
 * the table was sized for (an open-addressing table indexed by hash would
 * touch all of its pages after a few hundred calls). */
static struct nftmap_ref *nftmap_refs;
static uint32_t *nftmap_buckets;
static uint32_t nftmap_ref_mask, nftmap_ref_n, nftmap_ref_limit, nftmap_ref_seed;
static uint32_t nftmap_ref_used, nftmap_ref_free;
static uint32_t nftmap_ref_n6; /* of nftmap_ref_n, the IPv6 ones (dump) */

static struct mnl_socket *nftmap_nl;
static uint32_t nftmap_portid, nftmap_seq;
static char nftmap_table[32];
/* What the table text needs again when nftmap_restore() re-creates it. */
static char nftmap_wan_if[16];
static int nftmap_del_type = NFT_MSG_DELSETELEM;
/* One reusable libnftnl set (name, table) with one element per map: each
 * message sets that element's key/data and serialises it. No allocation
 * after open. */
static struct nftnl_set *nftmap_nset[SET_N];
static struct nftnl_set_elem *nftmap_nelem[SET_N];

/* ---- small helpers -------------------------------------------------- */

/* An address as nft writes it in an element (bare, both families). */
static const char *ip_str(const struct addr *a, char *buf)
{
	addr_fmt(buf, a, 0);
	return buf;
}

/* ip:port, [ip6]:port */
static const char *ipport_str(const struct addr *a, uint16_t port, char *buf, size_t len)
{
	char t[ADDR_STRLEN];

	addr_fmt(t, a, 1);
	snprintf(buf, len, "%s:%u", t, port);
	return buf;
}

static void nftmap_op_str(const struct nftmap_op *op, char *buf, size_t len)
{
	char k[ADDR_STRLEN], d[ADDR_STRLEN];
	const char *verb = op->kind == OP_ADD ? "add" : "delete";

	if (op->set == SET_IN_ANY || op->set == SET_IN_ANY6)
		snprintf(buf, len, "%s %s %u", verb, nftmap_set_name[op->set], op->kport);
	else
		snprintf(buf, len, "%s %s %s . %u", verb, nftmap_set_name[op->set],
			 ip_str(&op->kip, k), op->kport);
	if (op->kind == OP_ADD) {
		size_t l = strlen(buf);

		snprintf(buf + l, len - l, " : %s . %u", ip_str(&op->dip, d), op->dport);
	}
}

static uint32_t mix32(uint32_t h)
{
	/* murmur3 finaliser: good avalanche, a handful of instructions */
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* The 16 bytes as four words, folded: an IPv4 address (v4-mapped) varies
 * only in the last word, which goes in last, so its hash is as good as the
 * uint32_t one was. */
static uint32_t key_hash(const struct addr *a, uint16_t port, uint32_t salt)
{
	uint32_t w[4], h = mix32(((uint32_t)port << 8) ^ salt);

	memcpy(w, a->b, sizeof(w));
	for (int i = 0; i < 4; i++)
		h = mix32(h ^ w[i] * 0x9e3779b1u);
	return h;
}

/* ---- pending list ---------------------------------------------------- */

static int32_t *pend_slot(uint8_t set, const struct addr *kip, uint16_t kport, int create)
{
	uint32_t i = key_hash(kip, kport, set) & (NFTMAP_PEND_HASH - 1);
	uint32_t n;

	for (n = 0; n < NFTMAP_PEND_HASH; n++, i = (i + 1) & (NFTMAP_PEND_HASH - 1)) {
		const struct nftmap_op *op;

		if (nftmap_pend_h[i].gen != nftmap_pend_gen) {
			if (!create)
				return NULL;
			nftmap_pend_h[i].gen = nftmap_pend_gen;
			nftmap_pend_h[i].idx = -1;
			return &nftmap_pend_h[i].idx;
		}
		op = &nftmap_ops[nftmap_pend_h[i].idx];
		if (op->set == set && op->kport == kport && addr_eq(&op->kip, kip))
			return &nftmap_pend_h[i].idx;
	}
	return NULL; /* cannot happen: the table is twice the list */
}

static int nftmap_commit_all(void);

static void pend_reset(void)
{
	nftmap_nops = 0;
	if (++nftmap_pend_gen == 0) { /* wrapped: clear for real, once in 2^32 */
		memset(nftmap_pend_h, 0, sizeof(nftmap_pend_h));
		nftmap_pend_gen = 1;
	}
}

/* Record one change, coalescing with what is already pending for the key:
 *   add, add'      -> add' (later wins)
 *   add, del       -> del  (or nothing new, if a del preceded the add)
 *   del, add       -> del, add (a replacement: both, in order)
 *   del, del       -> del */
/* mode: observe. See nftmap_set_passive(). */
static int nftmap_passive;

static void pend_put(uint8_t set, int kind, const struct addr *kip, uint16_t kport,
		     const struct addr *dip, uint16_t dport)
{
	static const struct addr none;
	struct nftmap_op *last, *op;
	int32_t *slot;

	if (!nftmap_nl || nftmap_passive || set == SET_NONE)
		return;
	if (!dip)
		dip = &none;
	if (nftmap_nops >= NFTMAP_PEND_MAX)
		nftmap_carried_errors += nftmap_commit_all();
	slot = pend_slot(set, kip, kport, 1);
	last = (slot && *slot >= 0) ? &nftmap_ops[*slot] : NULL;
	if (last && last->kind == kind && kind == OP_DEL)
		return;
	if (last && last->kind == OP_ADD && kind == OP_ADD) {
		last->dip = *dip;
		last->dport = dport;
		return;
	}
	if (last && last->kind == OP_ADD && kind == OP_DEL) {
		if (last->prev >= 0) {   /* del, add, del: drop the add */
			last->kind = OP_NONE;
			*slot = last->prev;
		} else {                 /* add, del: the del alone */
			last->kind = OP_DEL;
		}
		return;
	}
	op = &nftmap_ops[nftmap_nops];
	op->set = set;
	op->kind = (uint8_t)kind;
	op->kip = *kip;
	op->kport = kport;
	op->dip = *dip;
	op->dport = dport;
	op->done = 0;
	op->err = 0;
	op->prev = last ? *slot : -1;
	if (slot)
		*slot = nftmap_nops;
	nftmap_nops++;
}

/* ---- netlink transaction -------------------------------------------- */

static void elem_set_pair(struct nftnl_set_elem *e, uint16_t attr, const struct addr *ip,
			  uint16_t port, int v6)
{
	/* A concatenation puts each field in its own 32-bit registers:
	 * ipv4_addr (4 bytes) or ipv6_addr (16 bytes), in network order as
	 * struct addr holds them, then inet_service (2 bytes + 2 zero bytes). */
	uint8_t v[20] = { 0 };
	uint16_t port_be = htons(port);
	size_t alen = v6 ? 16 : 4;

	memcpy(v, v6 ? ip->b : ip->b + 12, alen);
	memcpy(v + alen, &port_be, 2);
	nftnl_set_elem_set(e, attr, v, (uint32_t)alen + 4);
}

static struct nlmsghdr *nftmap_put_op(char *buf, const struct nftmap_op *op, uint32_t seq)
{
	struct nftnl_set_elem *e = nftmap_nelem[op->set];
	struct nlmsghdr *nlh;
	uint16_t type;

	int v6 = set_is_v6(op->set);

	if (op->set == SET_IN_ANY || op->set == SET_IN_ANY6) {
		uint16_t port_be = htons(op->kport);

		nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &port_be, sizeof(port_be));
	} else {
		elem_set_pair(e, NFTNL_SET_ELEM_KEY, &op->kip, op->kport, v6);
	}
	if (op->kind == OP_ADD) {
		elem_set_pair(e, NFTNL_SET_ELEM_DATA, &op->dip, op->dport, v6);
		type = NFT_MSG_NEWSETELEM;
	} else {
		nftnl_set_elem_unset(e, NFTNL_SET_ELEM_DATA);
		type = (uint16_t)nftmap_del_type;
	}
	/* No NLM_F_EXCL: adding the same mapping twice is a no-op; adding a
	 * different mapping for a present key is refused (EEXIST; EBUSY on
	 * older kernels). The family picks the table: ip or ip6, same name. */
	nlh = nftnl_nlmsg_build_hdr(buf, type, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4,
				    op->kind == OP_ADD ? NLM_F_CREATE : 0, seq);
	nftnl_set_elems_nlmsg_build_payload(nlh, nftmap_nset[op->set]);
	return nlh;
}

/* Collect the refusals of one transaction, already queued when its
 * sendmsg() returned (see the top of this file). seq_begin is the batch
 * begin message, then n element messages seq_begin+1.., then batch end.
 * Sets err of each op: 0 unless refused. Returns -1 when the socket lost
 * messages (ENOBUFS): then every op is in doubt and gets that error. */
static int nftmap_drain(uint32_t seq_begin, const int32_t *idx, int n)
{
	/* An error needs only its first bytes (header, error code, the echoed
	 * header: NETLINK_CAP_ACK), so small slots are enough. */
#define DRAIN_SLOTS 64
#define DRAIN_SLOT 512
	static char buf[DRAIN_SLOTS][DRAIN_SLOT] __attribute__((aligned(8)));
	static struct mmsghdr mm[DRAIN_SLOTS];
	static struct iovec iov[DRAIN_SLOTS];
	int fd = mnl_socket_get_fd(nftmap_nl);
	int i, ret;

	for (i = 0; i < n; i++)
		nftmap_ops[idx[i]].err = 0;
	for (;;) {
		for (i = 0; i < DRAIN_SLOTS; i++) {
			iov[i].iov_base = buf[i];
			iov[i].iov_len = DRAIN_SLOT;
			memset(&mm[i].msg_hdr, 0, sizeof(mm[i].msg_hdr));
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		ret = recvmmsg(fd, mm, DRAIN_SLOTS, MSG_DONTWAIT, NULL);
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			/* ENOBUFS: refusals were lost; nothing can be trusted. */
			int err = errno;

			log_err("nft: reading the kernel's answers: %s", strerror(err));
			for (i = 0; i < n; i++)
				nftmap_ops[idx[i]].err = err;
			return -1;
		}
		for (int m = 0; m < ret; m++) {
			/* Each datagram: walk its messages by hand (mnl_cb_run
			 * stops at the first error, and we want every one). A
			 * truncated one still has its first header intact. */
			const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf[m];
			int len = (int)mm[m].msg_len;

			if (len > DRAIN_SLOT)
				len = DRAIN_SLOT;
			for (; len >= (int)(NLMSG_HDRLEN + sizeof(struct nlmsgerr)); ) {
				const struct nlmsgerr *e;
				uint32_t s = nlh->nlmsg_seq;
				int err;

				if (nlh->nlmsg_len < NLMSG_HDRLEN)
					break;
				if (nlh->nlmsg_type == NLMSG_ERROR &&
				    nlh->nlmsg_len >= NLMSG_HDRLEN + sizeof(*e)) {
					e = mnl_nlmsg_get_payload(nlh);
					err = -e->error;
					if (err && (s == seq_begin || s == seq_begin + (uint32_t)n + 1)) {
						/* The batch itself, or its commit, was
						 * refused: every element is. */
						for (i = 0; i < n; i++)
							if (!nftmap_ops[idx[i]].err)
								nftmap_ops[idx[i]].err = err;
					} else if (err && s > seq_begin && s <= seq_begin + (uint32_t)n) {
						nftmap_ops[idx[s - seq_begin - 1]].err = err;
					}
					/* else: an answer to an older batch */
				}
				if ((int)NLMSG_ALIGN(nlh->nlmsg_len) >= len)
					break;
				len -= (int)NLMSG_ALIGN(nlh->nlmsg_len);
				nlh = (const struct nlmsghdr *)((const char *)nlh + NLMSG_ALIGN(nlh->nlmsg_len));
			}
		}
	}
#undef DRAIN_SLOTS
#undef DRAIN_SLOT
}

/* Send as many of ops idx[0..n) as fit in one transaction and drain their
 * ACKs. Returns how many were sent (their err is set), or -1. */
static int nftmap_txn(const int32_t *idx, int n)
{
	/* Messages are laid back to back in nftmap_batch at NLMSG_ALIGN
	 * offsets (what mnl_nlmsg_batch does, minus its malloc). */
	struct nlmsghdr *nlh;
	uint32_t seq_begin;
	size_t off = 0;
	int i, k, ret;

	seq_begin = nftmap_seq;
	nlh = nftnl_batch_begin(nftmap_batch, nftmap_seq++);
	off += NLMSG_ALIGN(nlh->nlmsg_len);
	for (k = 0; k < n; k++) {
		/* Room for one more element and the batch end, checked
		 * before writing: the builders do not check bounds. */
		if (off + 2 * NFTMAP_MSG_MAX > NFTMAP_BATCH_LIMIT)
			break;
		nlh = nftmap_put_op(nftmap_batch + off, &nftmap_ops[idx[k]], nftmap_seq++);
		if (nlh->nlmsg_len > NFTMAP_MSG_MAX) {
			/* Means NFTMAP_MSG_MAX is wrong; refuse rather than
			 * trust the room check above. */
			log_err("nft: element message of %u bytes, limit %u",
				nlh->nlmsg_len, NFTMAP_MSG_MAX);
			return -1;
		}
		off += NLMSG_ALIGN(nlh->nlmsg_len);
	}
	nlh = nftnl_batch_end(nftmap_batch + off, nftmap_seq++);
	off += NLMSG_ALIGN(nlh->nlmsg_len);
	STAT_INC(nft_batches);
	ret = (int)mnl_socket_sendto(nftmap_nl, nftmap_batch, off);
	if (ret < 0) {
		int err = errno;

		for (i = 0; i < k; i++)
			nftmap_ops[idx[i]].err = err;
		return k;
	}
	nftmap_drain(seq_begin, idx, k);
	return k;
}

/* Send every live, not-done op in order, in transactions of at most
 * NFTMAP_BATCH_LIMIT bytes. A transaction with any refusal was rolled back
 * whole: its ops that were not refused themselves go again, refused ones
 * are final. The next transaction goes only after the previous one
 * succeeded, so changes to one key never overtake each other. Returns the
 * number of refusals that matter (a delete of an absent element does not). */
static int nftmap_send_ops(void)
{
	int errors = 0, round, i;

	for (round = 0; round < 8; round++) {
		int first = 0, failed = 0;

		while (first < nftmap_nops && !failed) {
			int n = 0, k;

			for (i = first; i < nftmap_nops && n < (int)ARRAY_LEN(nftmap_txn_idx); i++) {
				if (nftmap_ops[i].kind == OP_NONE || nftmap_ops[i].done)
					continue;
				nftmap_txn_idx[n++] = i;
			}
			if (n == 0)
				break;
			k = nftmap_txn(nftmap_txn_idx, n);
			if (k <= 0) {
				round = 8; /* cannot build: give up on the rest */
				break;
			}
			/* Resume after the last op this transaction carried. */
			first = nftmap_txn_idx[k - 1] + 1;
			for (i = 0; i < k; i++)
				if (nftmap_ops[nftmap_txn_idx[i]].err)
					failed = 1;
			for (i = 0; i < k; i++) {
				struct nftmap_op *op = &nftmap_ops[nftmap_txn_idx[i]];
				char what[128];

				if (op->err == 0 && failed)
					continue; /* rolled back with the others: again */
				op->done = 1;
				if (op->err == 0) {
					STAT_INC(nft_elements);
					continue;
				}
				STAT_INC(nft_errors);
				if (op->kind == OP_DEL && op->err == ENOENT)
					continue; /* already gone: a counter, no more */
				errors++;
				nftmap_op_str(op, what, sizeof(what));
				LOG_RL(LOG_LVL_WARN, "nft: table %s: %s: %s%s", nftmap_table, what,
				       strerror(op->err),
				       op->kind == OP_ADD && (op->err == EEXIST || op->err == EBUSY) ?
				       " (key present with another mapping)" : "");
			}
		}
		if (!failed)
			break;
	}
	/* Left over only if the kernel kept refusing different ops, or a
	 * message could not be built. */
	for (i = 0; i < nftmap_nops; i++) {
		if (nftmap_ops[i].kind != OP_NONE && !nftmap_ops[i].done) {
			STAT_INC(nft_errors);
			errors++;
		}
	}
	return errors;
}

static int nftmap_commit_all(void)
{
	int errors;

	if (!nftmap_nl || nftmap_nops == 0) {
		pend_reset();
		return 0;
	}
	errors = nftmap_send_ops();
	pend_reset();
	return errors;
}

int nftmap_urgent(void)
{
	for (int i = 0; i < nftmap_nops; i++)
		if (nftmap_ops[i].kind == OP_ADD)
			return 1;
	return 0;
}

int nftmap_commit(void)
{
	int errors = nftmap_carried_errors + nftmap_commit_all();

	nftmap_carried_errors = 0;
	return errors;
}

/* ---- public queue calls --------------------------------------------- */

/* An IPv6 element with no ip6 table (wan.masquerade6 empty): refused, as
 * the kernel would refuse it, so a policy that hands us one is seen. */
static int nftmap_v6_refused(const struct addr *a, uint16_t port, const char *what)
{
	char s[ADDR_STRLEN];

	if (addr_is_v4(a) || nftmap_v6 || !nftmap_refs)
		return 0;
	STAT_INC(nft_errors);
	nftmap_carried_errors++;
	LOG_RL(LOG_LVL_ERR, "nft: %s for [%s]:%u refused: no ip6 table (wan.masquerade6 is empty)",
	       what, ip_str(a, s), port);
	return 1;
}

void nftmap_snat_add(const struct addr *priv, uint16_t priv_port, const struct addr *pub, uint16_t pub_port)
{
	if (addr_is_v4(priv) != addr_is_v4(pub)) {
		char a[64], b[64];

		STAT_INC(nft_errors);
		nftmap_carried_errors++;
		LOG_RL(LOG_LVL_ERR, "nft: snat %s -> %s refused: the families differ",
		       ipport_str(priv, priv_port, a, sizeof(a)), ipport_str(pub, pub_port, b, sizeof(b)));
		return;
	}
	if (nftmap_v6_refused(priv, priv_port, "snat"))
		return;
	pend_put(addr_is_v4(priv) ? SET_OUT4 : SET_OUT6, OP_ADD, priv, priv_port, pub, pub_port);
}

void nftmap_snat_del(const struct addr *priv, uint16_t priv_port)
{
	if (!addr_is_v4(priv) && !nftmap_v6)
		return; /* its add was refused: nothing to delete */
	pend_put(addr_is_v4(priv) ? SET_OUT4 : SET_OUT6, OP_DEL, priv, priv_port, NULL, 0);
}

static struct nftmap_ref *ref_find(const struct addr *peer, uint16_t port, uint32_t *bucket)
{
	uint32_t h = key_hash(peer, port, nftmap_ref_seed) & nftmap_ref_mask;

	*bucket = h;
	for (uint32_t i = nftmap_buckets[h]; i; i = nftmap_refs[i - 1].next) {
		struct nftmap_ref *r = &nftmap_refs[i - 1];
		if (r->pub_port == port && addr_eq(&r->peer, peer))
			return r;
	}
	return NULL;
}

static struct nftmap_ref *ref_insert(uint32_t bucket)
{
	uint32_t idx = nftmap_ref_free ? nftmap_ref_free : ++nftmap_ref_used;
	struct nftmap_ref *r = &nftmap_refs[idx - 1];

	if (nftmap_ref_free)
		nftmap_ref_free = r->next;
	r->next = nftmap_buckets[bucket];
	nftmap_buckets[bucket] = idx;
	return r;
}

static void ref_remove(struct nftmap_ref *r)
{
	uint32_t idx = (uint32_t)(r - nftmap_refs) + 1;
	uint32_t *pp = &nftmap_buckets[key_hash(&r->peer, r->pub_port, nftmap_ref_seed) & nftmap_ref_mask];

	while (*pp && *pp != idx)
		pp = &nftmap_refs[*pp - 1].next;
	if (*pp)
		*pp = r->next;
	if (!addr_is_v4(&r->peer))
		nftmap_ref_n6--;
	r->refs = 0;
	r->next = nftmap_ref_free;
	nftmap_ref_free = idx;
	nftmap_ref_n--;
}

/* "*" for in_any, else the address (peer of a dump line or log). */
static const char *peer_str(const struct addr *peer, char *buf)
{
	return addr_is_any(peer) ? "*" : ip_str(peer, buf);
}

void nftmap_dnat_ref(const struct addr *peer, uint16_t pub_port, const struct addr *priv, uint16_t priv_port)
{
	uint8_t set = nftmap_in_set(peer);
	struct nftmap_ref *r;
	uint32_t slot = 0;

	if (!nftmap_refs)
		return;
	if (addr_is_v4(peer) != addr_is_v4(priv)) {
		char a[ADDR_STRLEN], b[64];

		/* Would put an element in the other family's map, or
		 * (an IPv4 "any" for an IPv6 phone) leave one its unref
		 * cannot find: refused, loudly. */
		STAT_INC(nft_errors);
		nftmap_carried_errors++;
		LOG_RL(LOG_LVL_ERR, "nft: pinhole peer %s%s pub %u -> %s refused: the families differ",
		       peer_str(peer, a), addr_is_v4(peer) ? " (IPv4)" : " (IPv6)", pub_port,
		       ipport_str(priv, priv_port, b, sizeof(b)));
		return;
	}
	if (nftmap_v6_refused(priv, pub_port, "pinhole"))
		return;
	r = ref_find(peer, pub_port, &slot);
	if (r) {
		if (!addr_eq(&r->priv_ip, priv) || r->priv_port != priv_port) {
			char a[ADDR_STRLEN], o[64], n[64];

			/* The newest caller wins; earlier holders keep their
			 * references, so the element lives until all let go. */
			LOG_RL(LOG_LVL_WARN, "nft: %s %s pub %u moves from %s to %s (%u refs)",
			       set == SET_NONE ? "lan6" : nftmap_set_name[set], peer_str(peer, a), pub_port,
			       ipport_str(&r->priv_ip, r->priv_port, o, sizeof(o)),
			       ipport_str(priv, priv_port, n, sizeof(n)), r->refs);
			pend_put(set, OP_DEL, peer, pub_port, NULL, 0);
			pend_put(set, OP_ADD, peer, pub_port, priv, priv_port);
			r->priv_ip = *priv;
			r->priv_port = priv_port;
		}
		if (r->refs < UINT32_MAX)
			r->refs++;
		return;
	}
	if (nftmap_ref_n >= nftmap_ref_limit) {
		STAT_INC(nft_errors);
		nftmap_carried_errors++;
		LOG_RL(LOG_LVL_ERR, "nft: inbound table full (%u entries), pinhole pub %u refused",
		       nftmap_ref_n, pub_port);
		return;
	}
	r = ref_insert(slot);
	r->peer = *peer;
	r->pub_port = pub_port;
	r->priv_ip = *priv;
	r->priv_port = priv_port;
	r->refs = 1;
	nftmap_ref_n++;
	if (!addr_is_v4(peer))
		nftmap_ref_n6++;
	pend_put(set, OP_ADD, peer, pub_port, priv, priv_port);
}

void nftmap_dnat_unref(const struct addr *peer, uint16_t pub_port)
{
	struct nftmap_ref *r;
	uint32_t slot;

	if (!nftmap_refs)
		return;
	if (!addr_is_v4(peer) && !nftmap_v6)
		return; /* its ref was refused: nothing to let go of */
	r = ref_find(peer, pub_port, &slot);
	if (!r) {
		char a[ADDR_STRLEN];

		LOG_RL(LOG_LVL_WARN, "nft: unref of unknown inbound element peer %s pub %u",
		       peer_str(peer, a), pub_port);
		return;
	}
	if (--r->refs)
		return;
	ref_remove(r);
	pend_put(nftmap_in_set(peer), OP_DEL, peer, pub_port, NULL, 0);
}

void nftmap_dump(FILE *f)
{
	uint32_t i;

	if (!nftmap_refs)
		return;
	for (i = 0; i < nftmap_ref_used; i++) {
		const struct nftmap_ref *r = &nftmap_refs[i];
		char p[ADDR_STRLEN], q[64];

		if (!r->refs)
			continue;
		fprintf(f, "peer %s pub %u -> %s refs %u\n", peer_str(&r->peer, p), r->pub_port,
			ipport_str(&r->priv_ip, r->priv_port, q, sizeof(q)), r->refs);
	}
	/* Only with the ip6 table: the IPv4-only dump reads as it always did. */
	if (nftmap_v6)
		fprintf(f, "# inbound ipv4 %u ipv6 %u\n", nftmap_ref_n - nftmap_ref_n6, nftmap_ref_n6);
}

int nftmap_inbound_next(uint32_t *cursor, struct addr *peer, uint16_t *pub_port, struct addr *priv,
			uint16_t *priv_port, uint32_t *refs)
{
	while (nftmap_refs && *cursor < nftmap_ref_used) {
		const struct nftmap_ref *r = &nftmap_refs[(*cursor)++];
		if (!r->refs)
			continue;
		*peer = r->peer;
		*pub_port = r->pub_port;
		*priv = r->priv_ip;
		*priv_port = r->priv_port;
		*refs = r->refs;
		return 1;
	}
	return 0;
}

static int nftmap_run_text(const char *text, const char *what);

void nftmap_set_passive(int on)
{
	char text[512];

	if (on && !nftmap_passive && nftmap_nl) {
		/* Entering observe mode: what is queued still goes (the kernel
		 * agrees with the SDP that already left), then every element
		 * goes: observe means nothing of ours is open. */
		nftmap_commit();
		int l = snprintf(text, sizeof(text), "flush map ip %s out4\nflush map ip %s in_peer\n"
				 "flush map ip %s in_any\nflush map ip %s in_lan\n",
				 nftmap_table, nftmap_table, nftmap_table, nftmap_table);
		if (nftmap_v6)
			snprintf(text + l, sizeof(text) - (size_t)l, "flush map ip6 %s out6\n"
				 "flush map ip6 %s in_peer6\nflush map ip6 %s in_any6\n",
				 nftmap_table, nftmap_table, nftmap_table);
		nftmap_run_text(text, "emptying the maps for observe mode");
	}
	nftmap_passive = on;
}

/* ---- open / close ------------------------------------------------------ */

static int nftmap_run_text(const char *text, const char *what)
{
	char err[512];

	if (nftcmd_run(text, err, sizeof(err)) < 0) {
		log_err("nft: %s failed: %s", what, err);
		return -1;
	}
	return 0;
}

static int nftmap_sock_open(void)
{
	int fd, one = 1, v = 4 * 1024 * 1024;

	nftmap_nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!nftmap_nl) {
		log_err("nft: netlink socket: %s", strerror(errno));
		return -1;
	}
	if (mnl_socket_bind(nftmap_nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		log_err("nft: netlink bind: %s", strerror(errno));
		return -1;
	}
	nftmap_portid = mnl_socket_get_portid(nftmap_nl);
	fd = mnl_socket_get_fd(nftmap_nl);
	/* Every element gets an ACK: make room for a whole transaction's. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)) < 0)
		log_warn("nft: cannot raise the receive buffer: %s", strerror(errno));
	/* Errors without our request echoed back. */
	if (setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one)) < 0)
		log_debug("nft: NETLINK_CAP_ACK: %s", strerror(errno));
	nftmap_seq = (uint32_t)time(NULL);
	return 0;
}

static int nftmap_sets_alloc(void)
{
	int i;

	for (i = 0; i < SET_N; i++) {
		nftmap_nset[i] = nftnl_set_alloc();
		if (!nftmap_nset[i])
			goto oom;
		nftmap_nelem[i] = nftnl_set_elem_alloc();
		if (!nftmap_nelem[i])
			goto oom;
		/* owned by the set from here: nftnl_set_free() frees it */
		nftnl_set_elem_add(nftmap_nset[i], nftmap_nelem[i]);
		if (nftnl_set_set_str(nftmap_nset[i], NFTNL_SET_TABLE, nftmap_table) < 0 ||
		    nftnl_set_set_str(nftmap_nset[i], NFTNL_SET_NAME, nftmap_set_name[i]) < 0)
			goto oom;
	}
	return 0;
oom:
	log_err("nft: out of memory");
	return -1;
}

/* Does the kernel know DESTROYSETELEM (delete, absent is fine)? Ask it
 * with a key that is never used, in a transaction of its own. */
static void nftmap_probe_destroy(void)
{
	struct nftmap_op *op = &nftmap_ops[NFTMAP_PEND_MAX];
	int32_t idx = NFTMAP_PEND_MAX;

	/* Test hook: exercise the pre-6.3 path (DELSETELEM, where deleting an
	 * absent element aborts the whole transaction) on a newer kernel. */
	if (getenv("SIPALGD_NFT_FORCE_DELSETELEM")) {
		nftmap_del_type = NFT_MSG_DELSETELEM;
		return;
	}
	memset(op, 0, sizeof(*op));
	op->set = SET_OUT4;
	op->kind = OP_DEL;
	nftmap_del_type = NFT_MSG_DESTROYSETELEM;
	if (nftmap_txn(&idx, 1) == 1 && op->err == 0) {
		log_debug("nft: kernel supports DESTROYSETELEM");
		return;
	}
	nftmap_del_type = NFT_MSG_DELSETELEM;
}

/* Our tables from the texts above (the ip6 one only with masquerade6), in
 * one transaction that also removes any copy already there: both are
 * back, or neither. */
static int nftmap_table_create(const char *what)
{
	char *text;
	size_t len;
	int ret, l;

	/* The rules name no address (fib daddr type local): a table put back
	 * after a WAN address change is right as it is. */
	len = sizeof(nftmap_rules_fmt) + sizeof(nftmap_rules6_fmt) + 6 * sizeof(nftmap_table) +
	      sizeof(nftmap_wan_if);
	text = malloc(len);
	if (!text) {
		log_err("nft: out of memory");
		return -1;
	}
	l = snprintf(text, len, nftmap_rules_fmt, nftmap_wan_if,
		     nftmap_table, nftmap_table, nftmap_table);
	if (nftmap_v6 && l > 0 && (size_t)l < len)
		snprintf(text + l, len - (size_t)l, nftmap_rules6_fmt,
			 nftmap_table, nftmap_table, nftmap_table);
	ret = nftmap_run_text(text, what);
	free(text);
	return ret;
}

int nftmap_restore(void)
{
	if (!nftmap_nl || !nftmap_refs)
		return -1;
	if (nftmap_table_create(nftmap_v6 ? "re-creating the NAT tables" : "re-creating the NAT table") < 0)
		return -1;
	/* The table is new and empty: whatever was pending is either in the
	 * state re-queued here (adds) or moot (deletes). */
	pend_reset();
	nftmap_carried_errors = 0;
	nftmap_requeue();
	return 0;
}

void nftmap_requeue(void)
{
	for (uint32_t i = 0; i < nftmap_ref_used; i++) {
		const struct nftmap_ref *r = &nftmap_refs[i];

		if (r->refs)
			pend_put(nftmap_in_set(&r->peer), OP_ADD, &r->peer, r->pub_port,
				 &r->priv_ip, r->priv_port);
	}
}

int nftmap_open(const struct conf *c)
{
	uint32_t want = 1024, need;

	if (nftmap_nl)
		nftmap_close(0);
	if (!conf_name_ok(c->nft_table, sizeof(c->nft_table), 0)) {
		log_err("nft: table name \"%.*s\" must be 1-31 of [A-Za-z0-9_]",
			(int)sizeof(c->nft_table), c->nft_table);
		return -1;
	}
	if (!conf_name_ok(c->wan_if, sizeof(c->wan_if), 1)) {
		log_err("nft: WAN interface name \"%.*s\" is not usable in a rule",
			(int)sizeof(c->wan_if), c->wan_if);
		return -1;
	}
	snprintf(nftmap_table, sizeof(nftmap_table), "%s", c->nft_table);
	snprintf(nftmap_wan_if, sizeof(nftmap_wan_if), "%s", c->wan_if);
	nftmap_n_lan = c->n_lan < CONF_MAX_LAN ? c->n_lan : CONF_MAX_LAN;
	memcpy(nftmap_lan, c->lan, sizeof(nftmap_lan[0]) * (size_t)nftmap_n_lan);
	/* wan.masquerade6 needs a restart (conf.c): fixed for this open. */
	nftmap_v6 = c->n_masq6 > 0;
	if (nftmap_table_create(nftmap_v6 ? "creating the NAT tables" : "creating the NAT table") < 0)
		return -1;

	/* Inbound refcount table: room for every pinhole (RTP + RTCP, old and
	 * new peer during a move) and binding the limits allow. */
	need = 2 * (2 * c->max_pinholes + c->max_bindings);
	if (need > (1u << 24))
		need = 1u << 24;
	while (want < need / 8 && want < (1u << 22))
		want <<= 1;
	nftmap_refs = mem_table(need, sizeof(*nftmap_refs));
	nftmap_buckets = mem_table(want, sizeof(*nftmap_buckets));
	if (!nftmap_refs || !nftmap_buckets) {
		log_err("nft: cannot allocate %u inbound entries", need);
		goto fail;
	}
	nftmap_ref_mask = want - 1;
	nftmap_ref_limit = need;
	nftmap_ref_used = nftmap_ref_free = 0;
	nftmap_ref_n = nftmap_ref_n6 = 0;
	if (getrandom(&nftmap_ref_seed, sizeof(nftmap_ref_seed), GRND_NONBLOCK) != sizeof(nftmap_ref_seed))
		nftmap_ref_seed = (uint32_t)time(NULL) ^ (uint32_t)getpid();

	if (nftmap_sock_open() < 0 || nftmap_sets_alloc() < 0)
		goto fail;
	pend_reset();
	nftmap_carried_errors = 0;
	nftmap_probe_destroy();
	log_info("nft: table ip %s%s%s%s ready (WAN %s, %u inbound entries, deletes by %s)",
		 nftmap_table, nftmap_v6 ? " and table ip6 " : "", nftmap_v6 ? nftmap_table : "",
		 nftmap_v6 ? " (wan.masquerade6)" : "", c->wan_if, need,
		 nftmap_del_type == NFT_MSG_DESTROYSETELEM ? "DESTROYSETELEM" : "DELSETELEM");
	return 0;
fail:
	if (!nftmap_nl) {
		/* No socket to delete it with: the text route, so no NAT
		 * table of ours outlives a failed start. */
		char del[192];
		int l = snprintf(del, sizeof(del), "add table ip %s\ndelete table ip %s\n",
				 nftmap_table, nftmap_table);

		if (nftmap_v6)
			snprintf(del + l, sizeof(del) - (size_t)l, "add table ip6 %s\ndelete table ip6 %s\n",
				 nftmap_table, nftmap_table);
		nftmap_run_text(del, "removing the NAT table");
	}
	nftmap_close(1);
	return -1;
}

/* Delete our table of one family over the element socket: one message,
 * acknowledged. One transaction per table: a table already gone (ENOENT)
 * must not abort the delete of the other. */
static void nftmap_table_delete(uint16_t family)
{
	const char *fam = family == NFPROTO_IPV6 ? "ip6" : "ip";
	struct nftnl_table *t = nftnl_table_alloc();
	struct nftmap_op *op = &nftmap_ops[NFTMAP_PEND_MAX];
	int32_t idx = NFTMAP_PEND_MAX;
	struct nlmsghdr *nlh;
	uint32_t seq_begin;
	size_t off = 0;

	if (!t) {
		log_err("nft: out of memory deleting table %s", nftmap_table);
		return;
	}
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, nftmap_table);
	seq_begin = nftmap_seq;
	nlh = nftnl_batch_begin(nftmap_batch, nftmap_seq++);
	off += NLMSG_ALIGN(nlh->nlmsg_len);
	nlh = nftnl_nlmsg_build_hdr(nftmap_batch + off, NFT_MSG_DELTABLE, family,
				    NLM_F_ACK, nftmap_seq++);
	nftnl_table_nlmsg_build_payload(nlh, t);
	off += NLMSG_ALIGN(nlh->nlmsg_len);
	nlh = nftnl_batch_end(nftmap_batch + off, nftmap_seq++);
	off += NLMSG_ALIGN(nlh->nlmsg_len);
	nftnl_table_free(t);
	memset(op, 0, sizeof(*op));
	if (mnl_socket_sendto(nftmap_nl, nftmap_batch, off) < 0)
		op->err = errno;
	else
		nftmap_drain(seq_begin, &idx, 1);
	if (op->err && op->err != ENOENT)
		log_err("nft: deleting table %s %s: %s", fam, nftmap_table, strerror(op->err));
	else
		log_info("nft: table %s %s removed", fam, nftmap_table);
}

void nftmap_close(int remove)
{
	int i;

	if (nftmap_nl) {
		if (remove) {
			pend_reset();
			nftmap_table_delete(NFPROTO_IPV4);
			if (nftmap_v6)
				nftmap_table_delete(NFPROTO_IPV6);
		} else if (nftmap_nops) {
			nftmap_commit_all(); /* leave the kernel as the daemon saw it */
		}
		mnl_socket_close(nftmap_nl);
		nftmap_nl = NULL;
	}
	for (i = 0; i < SET_N; i++) {
		if (nftmap_nset[i])
			nftnl_set_free(nftmap_nset[i]); /* frees its element too */
		nftmap_nset[i] = NULL;
		nftmap_nelem[i] = NULL;
	}
	mem_table_free(nftmap_refs, nftmap_ref_limit, sizeof(*nftmap_refs));
	mem_table_free(nftmap_buckets, nftmap_ref_mask + 1, sizeof(*nftmap_buckets));
	nftmap_refs = NULL;
	nftmap_buckets = NULL;
	nftmap_ref_n = nftmap_ref_n6 = 0;
	nftmap_nops = 0;
	nftmap_carried_errors = 0;
}
