#include "dialog.h"

#include <stdlib.h>
#include <string.h>

#include "binding.h"
#include "calllog.h"
#include "conf.h"
#include "ct.h"
#include "log.h"
#include "mem.h"
#include "nat66.h"
#include "nftmap.h"
#include "siphash.h"
#include "stats.h"

#define DLG_CALLID_MAX 64  /* prefix kept; the whole value is hashed (state file: %128s) */
#define DLG_MAX_STREAMS 12 /* streams_per_call (8) plus room for a re-offer's new ones */
#define DLG_RIP 12
#define BYE_LINGER_MS 32000u  /* 64*T1: a BYE transaction that never completes */
/* Early dialogs of one forked INVITE (RFC 3261 13.2.2.4) that get their own
 * inbound elements: the first (fork 0, the stream's own key) and 3 more.
 * More forks are counted (forks_refused) and get no early media. */
#define DLG_FORKS 4

enum st_state { ST_FREE = 0, ST_NEW, ST_ACTIVE, ST_RETIRING };

/* A NAT stream's addresses are of one family: IPv4, or IPv6 of a
 * wan.masquerade6 phone. "Any" (key) and "unknown" (rip) are that
 * family's unspecified address (addr_is_any). */
struct stream {
	struct binding *b;     /* media pair binding */
	struct addr priv_ip;
	uint16_t priv_port;
	uint8_t state;
	uint8_t mindex;
	struct addr key;       /* peer of the inbound elements we hold (any = any) */
	struct addr old_key;   /* previous peer, released when the new offer completes */
	uint8_t has_old_key;
	/* RTCP (RFC 3605, RFC 5761): by default the pair's second port, RTP+1.
	 * `rb` is the phone's own RTCP port when its a=rtcp names another;
	 * `mux` set when RTCP rides on the RTP port (rtcp-mux offered and
	 * answered): then no RTCP element at all. */
	uint8_t mux;
	uint8_t pmux, rmux;    /* the phone's / the remote's last SDP offered rtcp-mux */
	struct addr rip;       /* remote media address from its SDP, any = unknown */
	uint16_t rport;
	uint16_t rrtcp;        /* the remote's RTCP port (a=rtcp, else rport+1) */
	struct addr old_rip;
	uint16_t old_rport;
	uint8_t fheld;         /* bit f: fork f (1..DLG_FORKS-1) holds fkey[f - 1] */
	/* Extra early dialogs of a forked INVITE: the peer each one named
	 * (fork f at index f - 1; fork 0's is key/rip/rport). */
	struct addr fkey[DLG_FORKS - 1];
	struct addr frip[DLG_FORKS - 1];
	uint16_t frport[DLG_FORKS - 1];
	struct binding *rb;
	uint32_t snext;        /* free list of the stream pool, index + 1 */
};

/* Routed IPv6 media (docs/ipv6.md): nothing is translated, so there is no
 * binding and no DNAT element. The pinhole is a conntrack entry created in
 * advance for exactly (remote addr:port -> phone addr:port), and another
 * for RTCP unless rtcp-mux was offered and answered: the remote's first
 * datagram is then ESTABLISHED for the operator's stateful forward policy.
 * One per m= line (the first DLG_ROUTED lines of a call). */
#define DLG_ROUTED 4
/* The routed stream of an extra early dialog (fork f at index f - 1 of
 * rstream.fk): its remote, and whether its pinhole is in the kernel (to
 * the stream's phone address, on the ports it had then). */
struct rfork {
	struct addr remote;
	uint16_t rport, rrtcp;
	uint16_t lpport, lprtcp;
	uint8_t rmux, live, live_mux;
};

struct rstream {
	struct addr phone, remote; /* from the phone's / the remote's SDP (:: unknown) */
	uint16_t pport, rport;     /* RTP ports, 0 unknown */
	uint16_t prtcp, rrtcp;     /* RTCP ports: a=rtcp, else RTP+1 */
	uint8_t pmux, rmux;        /* the phone's / the remote's SDP offered rtcp-mux */
	uint8_t mindex, used;
	/* what is in the kernel now (live): deleted when it changes or ends */
	uint8_t live, live_mux;
	struct addr lphone, lremote;
	uint16_t lpport, lrport, lprtcp, lrrtcp;
	struct rfork fk[DLG_FORKS - 1];
	uint32_t rnext;            /* free list of the routed pool, index + 1 */
};

struct dialog {
	uint8_t in_use;
	uint8_t confirmed;
	uint8_t offer_from;    /* enum dlg_side with an offer outstanding */
	uint8_t callid_len;    /* bytes kept in callid[] */
	uint32_t callid_full;  /* length of the whole Call-ID */
	uint32_t callid_hash;  /* of the whole Call-ID: long ones differ past 128 bytes */
	uint32_t next;         /* hash chain, index + 1 */
	struct addr phone_ip;  /* the dialog's key with the Call-ID; IPv4 or IPv6 */
	uint16_t phone_port;
	uint16_t peer_port;
	struct addr peer_ip;
	struct addr sig_key;
	uint32_t invite_cseq;
	uint32_t offer_cseq;   /* transaction whose request carried the outstanding offer */
	uint32_t answered_cseq;/* transaction whose answer completed the last exchange */
	uint8_t answered_from; /* side that gave that answer */
	uint8_t phone_uac;     /* the phone sent the INVITE: the remote may fork */
	int8_t cur_fork;       /* of the message being handled (dialog_fork): 0 main, >0 extra, -1 none */
	uint32_t cur_tag;      /* its remote tag (hash), 0 none */
	uint32_t fork_tag[DLG_FORKS]; /* remote tags of the early dialogs, 0 free */
	uint32_t won_tag;      /* remote tag of the 2xx that answered the call, 0 before */
	uint32_t cur_fixed;    /* cur_tag and won_tag under the state file's fixed key: the */
	uint32_t won_fixed;    /* per-start key is gone after a restart (see dialog_fork) */
	uint8_t fork_answered; /* bit f: fork f sent an SDP answer */
	uint16_t rmux;         /* bit i: the remote's last SDP offered rtcp-mux on m= line i */
	struct binding *sigb;
	uint8_t fp_held;       /* holds sigb out of the fast path (fp_hold_update) */
	uint8_t bye_seen;
	struct addr pub_ip;    /* public address when it began (dialog_public) */
	uint64_t expires;
	uint64_t created;      /* ms; a restored dialog counts from its restore */
	/* The remote's media address per m= line, for a stream the phone's
	 * answer opens after the remote's offer. The first DLG_RIP lines only
	 * (a line past them learns it from the remote's next SDP, its pinhole
	 * keyed by the signalling peer meanwhile): they are 18 B each in every
	 * dialog. */
	struct addr rip[DLG_RIP];
	uint16_t rport[DLG_RIP];
	struct stream *st[DLG_MAX_STREAMS]; /* from the stream pool; FREE_ST when free */
	struct rstream *rs[DLG_ROUTED]; /* from the routed pool; FREE_RS when unused */
	char callid[DLG_CALLID_MAX];
};

static struct dialog *pool;
static uint32_t pool_size, pool_used, free_head, *htab, hmask;
static struct dialog *restoring; /* of the state file's last D line (dialog_restore_line) */

/* Streams come from a pool of their own, limits.pinholes entries (a live
 * stream is one pinhole, and stream_open refuses at that count), so a call
 * carries DLG_MAX_STREAMS pointers instead of DLG_MAX_STREAMS streams:
 * 216 B per stream in use rather than 2.6 KiB in every dialog (issue 9's
 * <= 2 KiB per dialog). A free slot points at st_none, read-only: reading
 * it says ST_FREE, and nothing may write it. */
static const struct stream st_none = { .state = ST_FREE };
#define FREE_ST ((struct stream *)&st_none)
static struct stream *spool;
static uint32_t spool_size, spool_used, sfree_head;
/* Routed IPv6 streams likewise (rare: most calls have none). A dialog
 * keeps the ones it took until it ends, and the remote's SDP takes them
 * before any pinhole is counted, so limits.pinholes does not bound them:
 * DLG_ROUTED per dialog, never dry. The table is mapped untouched and
 * handed out from one end (mem_table), so only entries used are resident. */
static const struct rstream rs_none;
#define FREE_RS ((struct rstream *)&rs_none)
static struct rstream *rpool;
static uint32_t rpool_size, rpool_used, rfree_head;
static const struct conf *cf;
static uint32_t local_ips[16];
static int n_local;
/* Phones (signalling bindings) holding at least one dialog / pinhole: the
 * "active sources" among which a scarce table is shared. */
static uint32_t phones_dlg, phones_pin;

/* Fair shares (issue 8: a PBX trunk is one phone with thousands of calls).
 * A table is only rationed when it is scarce: below 3/4 full anyone may
 * take an entry, so one LAN address can carry as many calls as the table
 * holds. From 3/4 full on, a phone that already holds its share of those
 * 3/4 among the phones holding entries (and at least `floor`) is refused,
 * so the last quarter stays for the others: a flood from one host stops at
 * 3/4 of the table and another phone's call still finds room. */
static int over_share(uint64_t used, uint32_t max, uint32_t held, uint32_t active, uint32_t floor)
{
	uint64_t scarce = (uint64_t)max * 3 / 4;

	if (used < scarce)
		return 0;
	uint64_t share = scarce / (active ? active : 1);
	if (share < floor)
		share = floor;
	return held >= share;
}

/* Bucket of (phone, Call-ID prefix). The Call-ID is the remote's choice for
 * inbound calls: SipHash under the per-start key, so nobody can compute
 * Call-IDs that share a bucket (hash flooding turns every lookup into a
 * walk of one long chain). */
static uint32_t hash(const uint8_t *s, uint32_t n, const struct addr *ip)
{
	uint8_t k[16 + DLG_CALLID_MAX];

	memcpy(k, ip->b, 16);
	memcpy(k + 16, s, n);
	return (uint32_t)siphash_table(k, 16 + n) & hmask;
}

/* The unspecified address of a's family: "any" for an inbound element's
 * peer, "unknown" for a remote address (nftmap.h). */
static struct addr any_of(const struct addr *a)
{
	return addr_is_v4(a) ? addr_v4(0) : (struct addr){ { 0 } };
}

static int same_family(const struct addr *a, const struct addr *b) { return addr_is_v4(a) == addr_is_v4(b); }

/* An SDP address the NAT streams take: IPv4, or IPv6 of a masqueraded
 * prefix (or, the remote's side, any address of the stream's family).
 * Other IN IP6 lines are routed (routed_sdp). */
static int nat_media(const struct addr *a)
{
	return !addr_is_any(a) && (addr_is_v4(a) || conf_is_masq6(cf, a));
}

static const char *astr(char buf[ADDR_STRLEN], const struct addr *a)
{
	addr_fmt(buf, a, 0);
	return buf;
}

int dialog_init(const struct conf *c)
{
	uint32_t hs = 1;

	cf = c;
	phones_dlg = phones_pin = 0;
	pool_size = c->max_dialogs;
	while (hs < pool_size * 2)
		hs <<= 1;
	pool = mem_table(pool_size, sizeof(*pool));
	htab = mem_table(hs, sizeof(*htab));
	hmask = hs - 1;
	spool_size = c->max_pinholes ? c->max_pinholes : 1;
	spool = mem_table(spool_size, sizeof(*spool));
	spool_used = sfree_head = 0;
	rpool_size = pool_size * DLG_ROUTED;
	rpool = mem_table(rpool_size, sizeof(*rpool));
	rpool_used = rfree_head = 0;
	if (!pool || !htab || !spool || !rpool)
		return -1;
	/* Entries are handed out from the untouched end first, so an idle
	 * daemon does not keep the whole pool resident. */
	free_head = 0;
	pool_used = 0;
	dialog_set_local(c->local_ips, c->n_local);
	return 0;
}

const struct addr *dialog_public(const struct dialog *d) { return &d->pub_ip; }

void dialog_set_local(const uint32_t *ips, int n)
{
	n_local = n < 0 ? 0 : n > 16 ? 16 : n;
	for (int i = 0; i < n_local; i++)
		local_ips[i] = ips[i];
}

void dialog_fini(void)
{
	mem_table_free(pool, pool_size, sizeof(*pool));
	mem_table_free(htab, hmask + 1, sizeof(*htab));
	mem_table_free(spool, spool_size, sizeof(*spool));
	mem_table_free(rpool, rpool_size, sizeof(*rpool));
	pool = NULL;
	htab = NULL;
	spool = NULL;
	rpool = NULL;
	pool_size = spool_size = rpool_size = 0;
	/* the walks (expire, save, dump, view) see no entries of no table */
	pool_used = free_head = spool_used = sfree_head = rpool_used = rfree_head = 0;
	restoring = NULL;
}

/* A Call-ID is kept to its first DLG_CALLID_MAX bytes (bounded memory);
 * the whole value's length and hash tell apart two that share a prefix. */
static uint32_t key_len(uint32_t len) { return len < DLG_CALLID_MAX ? len : DLG_CALLID_MAX; }

static uint32_t full_hash(const uint8_t *s, uint32_t n)
{
	uint32_t h = 2166136261u;
	for (uint32_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 16777619u;
	return h;
}

struct dialog *dialog_find(const uint8_t *callid, uint32_t full, const struct addr *phone_ip)
{
	uint32_t len = key_len(full);
	uint32_t fh = full > len ? full_hash(callid, full) : 0;

	if (!pool)
		return NULL;
	for (uint32_t i = htab[hash(callid, len, phone_ip)]; i; i = pool[i - 1].next) {
		struct dialog *d = &pool[i - 1];
		if (addr_eq(&d->phone_ip, phone_ip) && d->callid_full == full && d->callid_hash == fh &&
		    memcmp(d->callid, callid, len) == 0)
			return d;
	}
	return NULL;
}

static int is_local(const struct addr *a)
{
	const struct addr *p = binding_public(a);

	if (addr_is_any(a))
		return 0;
	if (p && addr_eq(p, a))
		return 1;
	if (!addr_is_v4(a))
		return 0;
	for (int i = 0; i < n_local; i++)
		if (local_ips[i] == addr_get_v4(a))
			return 1;
	return 0;
}

/* The source the kernel sees for media from a remote whose SDP says
 * ip:port: the key of the inbound elements (0 = any source).
 * Hairpin (issue 13): two LAN phones calling each other through the
 * provider each name the router's public address. The other phone's RTP
 * then reaches the router from the LAN, from its private address, before
 * any SNAT: so the key is the private address of the LAN phone that owns
 * that public media port (nftmap puts a LAN key in in_lan, matched only on
 * packets that do not come from the WAN). Only that phone, whatever the
 * policy: `any` means any host on the internet, not any host on the LAN.
 * A public port of ours that no media binding owns leaves the key on our
 * own address, which no packet from the WAN carries. */
static struct addr peer_key(const struct addr *ip, uint16_t port)
{
	if (is_local(ip)) {
		const struct binding *b = binding_find_public(port);

		if (b && b->kind == BIND_MEDIA && same_family(&b->priv_ip, ip))
			return b->priv_ip;
		return *ip;
	}
	return cf->pinhole_src == CONF_PINHOLE_ANY ? any_of(ip) : *ip;
}

/* Is m= line i a NAT stream's (its remote's lines are the stream's too)? */
static int nat_stream_at(const struct dialog *d, int i)
{
	for (int k = 0; k < DLG_MAX_STREAMS; k++)
		if (d->st[k]->state != ST_FREE && d->st[k]->mindex == i)
			return 1;
	return 0;
}

/* A LAN peer key (hairpin): counted. */
static int hairpin_key(const struct addr *k) { return !addr_is_any(k) && conf_is_lan(cf, k); }

struct dialog *dialog_create(const uint8_t *callid, uint32_t full, const struct addr *phone_ip,
			     uint16_t phone_port, const struct addr *peer_ip, uint16_t peer_port,
			     struct binding *sigb, uint64_t now)
{
	uint32_t len = key_len(full);
	char pa[ADDR_STRLEN];
	if (!free_head && pool_used == pool_size) {
		STAT_INC(drop_limit);
		STAT_INC(refused_dialogs_full);
		LOG_RL(LOG_LVL_WARN, "call of phone %s:%u refused: dialog table full (limits.dialogs=%u)",
		       astr(pa, phone_ip), phone_port, pool_size);
		return NULL;
	}
	if (sigb && over_share(stats[ST_dialogs], pool_size, sigb->dialogs, phones_dlg, 1)) {
		STAT_INC(drop_limit);
		STAT_INC(refused_dialogs_share);
		LOG_RL(LOG_LVL_WARN, "call of phone %s:%u refused: dialog table over 3/4 full "
		       "(%llu of limits.dialogs=%u) and the phone holds its share (%u dialogs)",
		       astr(pa, phone_ip), phone_port, (unsigned long long)stats[ST_dialogs], pool_size,
		       sigb->dialogs);
		return NULL;
	}
	uint32_t idx = free_head ? free_head : ++pool_used;
	struct dialog *d = &pool[idx - 1];
	if (free_head)
		free_head = d->next;
	memset(d, 0, sizeof(*d));
	for (int k = 0; k < DLG_MAX_STREAMS; k++)
		d->st[k] = FREE_ST;
	for (int k = 0; k < DLG_ROUTED; k++)
		d->rs[k] = FREE_RS;
	calllog_reset(idx - 1);
	d->in_use = 1;
	memcpy(d->callid, callid, len);
	d->callid_len = (uint8_t)len;
	d->callid_full = full;
	d->callid_hash = full > len ? full_hash(callid, full) : 0;
	d->phone_ip = *phone_ip;
	d->phone_port = phone_port;
	d->peer_ip = *peer_ip;
	d->peer_port = peer_port;
	d->sigb = sigb;
	const struct addr *pub = binding_public(phone_ip);
	d->pub_ip = pub ? *pub : any_of(phone_ip);
	d->expires = now + (uint64_t)cf->early_timeout_s * 1000u;
	d->created = now;
	d->sig_key = cf->inbound_src == CONF_INBOUND_ANY ? any_of(peer_ip) : *peer_ip;
	if (sigb) {
		binding_ref(sigb);
		if (sigb->dialogs++ == 0)
			phones_dlg++;
		/* In-dialog requests from the peer must reach the phone after the
		 * signalling conntrack has timed out (long calls). */
		if (!same_family(&d->sig_key, &sigb->priv_ip))
			d->sig_key = any_of(&sigb->priv_ip); /* as the IPv4-only table had it: 0 */
		nftmap_dnat_ref(&d->sig_key, sigb->pub_port, &sigb->priv_ip, sigb->priv_port);
	}
	uint32_t h = hash(callid, len, phone_ip);
	d->next = htab[h];
	htab[h] = idx;
	STAT_INC(dialogs);
	STAT_INC(dialogs_created);
	return d;
}

/* NAT Slipstreaming class (docs/security.md): a pinhole leads only to a
 * LAN host (the sender unless media.allow_other_lan_hosts), never to the
 * router itself, broadcast, multicast, loopback or unspecified addresses,
 * never to a port below 1024. */
static int lan_target_ok(const struct addr *a, uint16_t port, const struct addr *sender)
{
	if (port < 1024 || port == 65535 || addr_is_any(a))
		return 0;
	if (!addr_is_v4(a)) {
		/* a masqueraded IPv6 host: never multicast (ff00::/8); the prefix
		 * check keeps loopback and link-local out */
		if (a->b[0] == 0xff || !conf_is_masq6(cf, a))
			return 0;
		return addr_eq(a, sender) || cf->media_other_hosts;
	}
	uint32_t ip = addr_get_v4(a);
	if (ip == 0xffffffffu || (ip >> 24) == 127 || (ip >> 28) == 0xe || (ip >> 28) == 0xf)
		return 0;
	if (!conf_is_lan(cf, a))
		return 0;
	for (int i = 0; i < n_local; i++)
		if (local_ips[i] == ip)
			return 0;
	/* never the network or broadcast address of the LAN prefix */
	for (int i = 0; i < cf->n_lan; i++) {
		uint32_t na, nm;
		if (conf_net_get_v4(&cf->lan[i], &na, &nm) && (ip & nm) == na && nm != 0xffffffffu &&
		    (ip == na || ip == (na | ~nm)))
			return 0;
	}
	if (!addr_eq(a, sender) && !cf->media_other_hosts)
		return 0;
	return 1;
}

/* Where the phone takes RTCP: its a=rtcp port, else RTP+1 (RFC 3550 11). */
static uint16_t rtcp_pub(const struct stream *s)
{
	return s->rb ? s->rb->pub_port : (uint16_t)(s->b->pub_port + 1);
}

static void stream_ref_key(struct stream *s, const struct addr *key)
{
	nftmap_dnat_ref(key, s->b->pub_port, &s->priv_ip, s->priv_port);
	if (s->mux)
		return;
	if (s->rb)
		nftmap_dnat_ref(key, s->rb->pub_port, &s->rb->priv_ip, s->rb->priv_port);
	else
		nftmap_dnat_ref(key, (uint16_t)(s->b->pub_port + 1), &s->priv_ip, (uint16_t)(s->priv_port + 1));
}

static void stream_unref_key(struct stream *s, const struct addr *key)
{
	nftmap_dnat_unref(key, s->b->pub_port);
	if (!s->mux)
		nftmap_dnat_unref(key, rtcp_pub(s));
}

/* Every peer key the stream holds elements for: the current one, the one
 * an offer in progress is leaving, and those of extra early dialogs. */
static void stream_keys(struct stream *s, void (*fn)(struct stream *, const struct addr *))
{
	fn(s, &s->key);
	if (s->has_old_key)
		fn(s, &s->old_key);
	for (int f = 1; f < DLG_FORKS; f++)
		if (s->fheld & (1u << f))
			fn(s, &s->fkey[f - 1]);
}

/* The RTCP port changed (a=rtcp named another, or rtcp-mux was agreed or
 * dropped): every key's elements move to the new layout. The new ones are
 * referenced before the old ones go, so an element both share (the RTP
 * port's) never leaves the kernel. */
static void stream_layout(struct stream *s, struct binding *rb, uint8_t mux, uint64_t now)
{
	struct stream old = *s;

	if (rb == s->rb && mux == s->mux)
		return;
	if (rb)
		binding_ref(rb);
	s->rb = rb;
	s->mux = mux;
	stream_keys(s, stream_ref_key);
	stream_keys(&old, stream_unref_key);
	if (old.rb)
		binding_unref(old.rb, now);
	if (mux && !old.mux)
		STAT_INC(rtcp_mux);
}

/* Media flows between the phone's port and a remote address: the kernel
 * finds a conntrack by either direction, so one tuple covers phone-first
 * (SNAT) and remote-first (DNAT) flows alike. */
static void stream_kill_flows(struct stream *s, const struct addr *rip, uint16_t rport)
{
	struct addr cip = s->rb ? s->rb->priv_ip : s->priv_ip;
	uint16_t cport = s->rb ? s->rb->priv_port : (uint16_t)(s->priv_port + 1);

	if (addr_is_any(rip) || !rport)
		return;
	ct_del_udp(s->priv_ip, s->priv_port, *rip, rport);
	ct_del_udp(cip, cport, *rip, (uint16_t)(rport + 1));
	if (addr_eq(rip, &s->rip) && s->rrtcp && s->rrtcp != (uint16_t)(rport + 1))
		ct_del_udp(cip, cport, *rip, s->rrtcp);
}

/* A flow from the remote's media address to the pinhole's public port that
 * conntrack already knows without NAT (the remote kept sending after an
 * earlier call on this port ended, and the router took the packets for
 * itself) would keep the new pinhole from ever applying: NAT is decided
 * only for a new conntrack. */
static void stream_clear_stale(struct stream *s, const struct addr *rip, uint16_t rport)
{
	const struct addr *pub = binding_public(&s->priv_ip);
	struct addr src;

	if (addr_is_any(rip) || !rport || !pub)
		return;
	src = *rip;
	/* Hairpin: the remote is the other LAN phone behind our public
	 * address. Its flow reaches us from its private address and port
	 * (conntrack's original tuple is the one before our SNAT), and a real
	 * phone sends as soon as it has answered, before the answer reaches
	 * this phone and its in_lan element exists. */
	if (is_local(rip)) {
		const struct binding *b = binding_find_public(rport);
		if (b && b->kind == BIND_MEDIA && b->pub_port == rport && same_family(&b->priv_ip, rip)) {
			src = b->priv_ip;
			rport = b->priv_port;
		}
	}
	ct_del_udp(src, rport, *pub, s->b->pub_port);
	ct_del_udp(src, (uint16_t)(rport + 1), *pub, rtcp_pub(s));
	ct_mark_urgent(); /* before the SDP that invites the remote's media leaves */
}

/* A free slot of d (or -1) and a zeroed stream for it, from the untouched
 * end of the pool first (an idle daemon keeps little resident). NULL when
 * the pool is empty, which stream_open's pinhole limit keeps from
 * happening; a restored state file is bounded the same way. */
static struct stream *stream_alloc(struct dialog *d)
{
	int k = 0;
	while (k < DLG_MAX_STREAMS && d->st[k] != FREE_ST)
		k++;
	if (k == DLG_MAX_STREAMS || (!sfree_head && spool_used == spool_size))
		return NULL;
	uint32_t idx = sfree_head ? sfree_head : ++spool_used;
	struct stream *s = &spool[idx - 1];
	if (sfree_head)
		sfree_head = s->snext;
	memset(s, 0, sizeof(*s));
	d->st[k] = s;
	return s;
}

/* Back to the pool, zeroed: a caller still holding s reads ST_FREE. */
static void stream_release(struct dialog *d, struct stream *s)
{
	for (int k = 0; k < DLG_MAX_STREAMS; k++)
		if (d->st[k] == s)
			d->st[k] = FREE_ST;
	memset(s, 0, sizeof(*s));
	s->snext = sfree_head;
	sfree_head = (uint32_t)(s - spool) + 1;
}

static int st_index(const struct dialog *d, const struct stream *s)
{
	for (int k = 0; k < DLG_MAX_STREAMS; k++)
		if (d->st[k] == s)
			return k;
	return 0; /* cannot happen: s came from d */
}

static void stream_close(struct dialog *d, struct stream *s, uint64_t now)
{
	if (s->state == ST_FREE)
		return;
	const struct addr *pubp = binding_public(&s->priv_ip);
	struct addr pub = pubp ? *pubp : any_of(&s->priv_ip);
	stream_unref_key(s, &s->key);
	if (s->has_old_key) {
		stream_unref_key(s, &s->old_key);
		stream_kill_flows(s, &s->old_rip, s->old_rport);
	}
	for (int f = 1; f < DLG_FORKS; f++)
		if (s->fheld & (1u << f)) {
			stream_unref_key(s, &s->fkey[f - 1]);
			stream_kill_flows(s, &s->frip[f - 1], s->frport[f - 1]);
		}
	stream_kill_flows(s, &s->rip, s->rport);
	if (addr_is_any(&s->rip) && pubp) {
		/* The remote never named its media address (a call that failed
		 * before any answer, media sent to the offer's pinhole): find its
		 * flows by the pinhole's port and by the phone's. A dump walks the
		 * whole conntrack table, so only here, not for every call. */
		ct_del_port(pub, s->b->pub_port, 1);
		ct_del_port(pub, rtcp_pub(s), 1);
		ct_del_port(s->priv_ip, s->priv_port, 0);
		if (s->rb)
			ct_del_port(s->rb->priv_ip, s->rb->priv_port, 0);
		else
			ct_del_port(s->priv_ip, (uint16_t)(s->priv_port + 1), 0);
	}
	if (s->rb)
		binding_unref(s->rb, now);
	binding_unref(s->b, now);
	stream_release(d, s);
	if (d->sigb && d->sigb->pinholes && --d->sigb->pinholes == 0)
		phones_pin--;
	STAT_DEC(pinholes);
	STAT_INC(pinholes_closed);
}

/* The remote's new address for a stream: hold both until the offer/answer
 * completes, so media from either reaches the phone meanwhile. */
static void stream_set_remote(struct stream *s, const struct addr *rip, uint16_t rport, int final)
{
	if (rip && addr_is_any(rip))
		rip = NULL;
	struct addr key = rip ? peer_key(rip, rport) : s->key;
	int moved = rip && (!addr_eq(rip, &s->rip) || rport != s->rport);

	if (!addr_eq(&key, &s->key)) {
		if (hairpin_key(&key))
			STAT_INC(pinholes_hairpin);
		if (s->has_old_key) {
			stream_unref_key(s, &s->old_key);
			stream_kill_flows(s, &s->old_rip, s->old_rport);
		}
		stream_ref_key(s, &key);
		s->old_key = s->key;
		s->old_rip = s->rip;
		s->old_rport = s->rport;
		s->has_old_key = 1;
		s->key = key;
	} else if (moved && !addr_is_any(&s->rip)) {
		/* Same peer key (policy any, or same host) but a new port: the
		 * old flow still has to go when this completes. */
		if (s->has_old_key) {
			stream_unref_key(s, &s->old_key);
			stream_kill_flows(s, &s->old_rip, s->old_rport);
		}
		stream_ref_key(s, &key);
		s->old_key = key;
		s->old_rip = s->rip;
		s->old_rport = s->rport;
		s->has_old_key = 1;
	}
	if (rip) {
		if (moved)
			stream_clear_stale(s, rip, rport);
		s->rip = *rip;
		s->rport = rport;
	}
	if (final && s->has_old_key) {
		stream_unref_key(s, &s->old_key);
		if (!addr_eq(&s->old_rip, &s->rip) || s->old_rport != s->rport)
			stream_kill_flows(s, &s->old_rip, s->old_rport);
		s->has_old_key = 0;
	}
}

/* Offer/answer completed: new streams become active, dropped ones go, and
 * a remote address change becomes final. */
static void complete(struct dialog *d, uint64_t now)
{
	for (int k = 0; k < DLG_MAX_STREAMS; k++) {
		struct stream *s = d->st[k];
		if (s->state == ST_RETIRING)
			stream_close(d, s, now);
		else if (s->state == ST_NEW)
			s->state = ST_ACTIVE;
		if (s->state != ST_FREE && s->has_old_key)
			stream_set_remote(s, NULL, 0, 1);
		/* RFC 5761 5.1.1: the answer decides; until then the offerer
		 * takes RTCP where it would without rtcp-mux. */
		if (s->state != ST_FREE)
			stream_layout(s, s->rb, s->pmux && s->rmux, now);
	}
	d->offer_from = SIDE_NONE;
}

static struct stream *stream_find(struct dialog *d, const struct addr *ip, uint16_t port)
{
	for (int k = 0; k < DLG_MAX_STREAMS; k++)
		if (d->st[k]->state != ST_FREE && d->st[k]->priv_port == port && addr_eq(&d->st[k]->priv_ip, ip))
			return d->st[k];
	return NULL;
}

/* The stream that m= line mi already has on private port `port`. */
static const struct stream *stream_at(const struct dialog *d, int mi, uint16_t port)
{
	for (int k = 0; k < DLG_MAX_STREAMS; k++)
		if (d->st[k]->state != ST_FREE && d->st[k]->mindex == mi && d->st[k]->priv_port == port)
			return d->st[k];
	return NULL;
}

static struct stream *stream_open(struct dialog *d, const struct addr *ip, uint16_t port, int mi,
				  struct binding *rb, uint64_t now)
{
	struct stream *s = NULL;
	char pa[ADDR_STRLEN];

	if (stats[ST_pinholes] >= cf->max_pinholes) {
		STAT_INC(drop_limit);
		STAT_INC(refused_pinholes_full);
		LOG_RL(LOG_LVL_WARN, "stream of phone %s:%u refused (m= port 0): pinhole table full "
		       "(limits.pinholes=%u)", astr(pa, &d->phone_ip), d->phone_port, cf->max_pinholes);
		return NULL;
	}
	/* limits.pinholes_per_phone is the share every phone keeps once the
	 * table is scarce, not a cap on a phone while there is room. */
	if (d->sigb && over_share(stats[ST_pinholes], cf->max_pinholes, d->sigb->pinholes, phones_pin,
				  cf->max_pinholes_per_phone)) {
		STAT_INC(drop_limit);
		STAT_INC(refused_pinholes_share);
		LOG_RL(LOG_LVL_WARN, "stream of phone %s:%u refused (m= port 0): pinhole table over "
		       "3/4 full (%llu of limits.pinholes=%u) and the phone holds its share (%u pinholes)",
		       astr(pa, &d->phone_ip), d->phone_port, (unsigned long long)stats[ST_pinholes],
		       cf->max_pinholes, d->sigb->pinholes);
		return NULL;
	}
	struct binding *b = binding_get(ip, port, BIND_MEDIA, 0, now);
	if (!b)
		return NULL;
	if (!(s = stream_alloc(d))) {
		/* The call's DLG_MAX_STREAMS slots are taken: a re-offer that
		 * moves most of its streams holds the old ones until the answer.
		 * Refused (m= port 0), as the other limits are: counted. */
		STAT_INC(drop_limit);
		STAT_INC(pinholes_refused);
		LOG_RL(LOG_LVL_WARN, "stream of phone %s:%u refused (m= port 0): the call holds %d streams",
		       astr(pa, &d->phone_ip), d->phone_port, DLG_MAX_STREAMS);
		binding_ref(b); /* made for this stream: free it */
		binding_unref(b, now);
		return NULL;
	}
	binding_ref(b);
	s->b = b;
	if (rb)
		binding_ref(rb);
	s->rb = rb;
	s->priv_ip = *ip;
	s->priv_port = port;
	s->state = ST_NEW;
	s->mindex = (uint8_t)mi;
	/* the remote's address of this line, if its SDP came first and named
	 * one of the stream's family */
	s->rip = mi < DLG_RIP && same_family(&d->rip[mi], ip) ? d->rip[mi] : any_of(ip);
	s->rport = addr_is_any(&s->rip) ? 0 : d->rport[mi];
	s->rmux = (uint8_t)(d->rmux >> mi & 1);
	/* Until the remote's SDP names its media address, only the signalling
	 * peer may send (policy peer); the answer then moves the key. A peer
	 * of the other family (a dual-stack SDP) says nothing about this
	 * stream's: any, as the IPv4-only table had it. */
	if (!addr_is_any(&s->rip))
		s->key = peer_key(&s->rip, s->rport);
	else if (same_family(&d->peer_ip, ip))
		s->key = peer_key(&d->peer_ip, 0);
	else
		s->key = any_of(ip);
	if (hairpin_key(&s->key))
		STAT_INC(pinholes_hairpin);
	stream_ref_key(s, &s->key);
	stream_clear_stale(s, &s->rip, s->rport);
	if (d->sigb && d->sigb->pinholes++ == 0)
		phones_pin++;
	STAT_INC(pinholes);
	STAT_INC(pinholes_opened);
	return s;
}

/* The phone's a=rtcp (RFC 3605) naming a port other than RTP+1 (or RTP,
 * which is multiplexing): that port gets its own public port and inbound
 * elements, under the same rules as the RTP port. Refused, RTCP has no
 * pinhole (counted); the call's RTP is unaffected. The phone takes RTCP
 * there as soon as its SDP leaves, offer or answer. */
static struct binding *phone_rtcp(const struct stream *s, const struct sdp_media *m, const struct addr *sender,
				  uint64_t now)
{
	struct binding *rb = NULL;

	if (m->rtcp_port.len && m->rtcp_num != m->port_num && m->rtcp_num != (uint32_t)m->port_num + 1) {
		const struct addr *ip = m->rtcp_addr.len ? &m->rtcp_ip : &m->ip;
		char ra[ADDR_STRLEN];
		if (addr_is_v4(ip) && addr_is_any(ip)) /* on hold: phone_sdp */
			ip = s ? &s->priv_ip : sender;
		if (s && s->rb && s->rb->priv_port == m->rtcp_num && addr_eq(&s->rb->priv_ip, ip))
			return s->rb;
		if (same_family(ip, &m->ip) && lan_target_ok(ip, m->rtcp_num, sender))
			rb = binding_get(ip, m->rtcp_num, BIND_RTCP, 0, now);
		if (rb && rb->kind != BIND_RTCP)
			rb = NULL; /* the port is another flow's (signalling, a pair) */
		if (!rb) {
			STAT_INC(pinholes_refused);
			LOG_RL(LOG_LVL_WARN, "a=rtcp port %s:%u refused: RTCP gets no pinhole", astr(ra, ip),
			       m->rtcp_num);
		} else {
			STAT_INC(rtcp_ports);
		}
	}
	return rb;
}

uint16_t dialog_rtcp_public(const struct dialog *d, int mindex)
{
	for (int k = 0; k < DLG_MAX_STREAMS; k++) {
		const struct stream *s = d->st[k];
		if (s->state != ST_FREE && s->state != ST_RETIRING && s->mindex == mindex && s->rb)
			return s->rb->pub_port;
	}
	return 0;
}

static int phone_sdp(struct dialog *d, const struct sdp *sd, const struct addr *sender,
		     uint16_t pub[SDP_MAX_MEDIA], int is_answer, uint64_t now)
{
	uint8_t keep[DLG_MAX_STREAMS] = { 0 };
	int opened = 0, wanted = 0;

	for (int i = 0; i < sd->nmedia; i++) {
		const struct sdp_media *m = &sd->m[i];
		const struct addr *mip = &m->ip;
		uint16_t mport = m->port_num;
		char ma[ADDR_STRLEN];
		pub[i] = 0;
		if (!m->port_num || (!addr_is_v4(&m->ip) && !nat_media(&m->ip)))
			continue; /* port 0, or an IN IP6 line not masqueraded: routed (routed_sdp) */
		wanted++;
		if (is_local(mip)) {
			/* Our public address and one of our public media ports:
			 * what STUN or ICE taught the phone (baresip's re-INVITE
			 * once ICE completes names its peer-reflexive candidate,
			 * RFC 8445 8.1.1). That is a stream it already has: take
			 * the binding's private end, as if it had written it.
			 * Refused, it was a warning and pinholes_refused on
			 * every such call (tests/netns/realua.sh). */
			const struct binding *b = binding_find_public(mport);
			if (b && b->kind == BIND_MEDIA && b->pub_port == mport && same_family(&b->priv_ip, mip)) {
				mip = &b->priv_ip;
				mport = b->priv_port;
			}
		}
		if (addr_is_v4(mip) && addr_is_any(mip)) {
			/* c=IN IP4 0.0.0.0 on a line that already has a stream
			 * on that port: hold as RFC 2543 wrote it (RFC 3264
			 * 8.4), which phones and PBXs still send. The phone
			 * sends from that port (music on hold) and takes media
			 * there on unhold: the stream stays. Refused, it was
			 * closed at the answer, the phone's RTP left by the
			 * router's masquerade and kept that conntrack (and its
			 * port) after the unhold, and after BYE. A first offer
			 * of 0.0.0.0 names no host: refused as before. */
			const struct stream *h = stream_at(d, i, m->port_num);
			if (h)
				mip = &h->priv_ip;
		}
		if ((uint32_t)i >= cf->max_streams_per_call ||
		    !lan_target_ok(mip, mport, sender)) {
			STAT_INC(pinholes_refused);
			LOG_RL(LOG_LVL_WARN, "SDP stream %d refused (media %s:%u)", i, astr(ma, &m->ip),
			       m->port_num);
			continue;
		}
		struct stream *s = stream_find(d, mip, mport);
		struct binding *rb = phone_rtcp(s, m, sender, now);
		if (s) {
			stream_layout(s, rb, s->mux, now);
		} else if (!(s = stream_open(d, mip, mport, i, rb, now))) {
			if (rb && !rb->refs) { /* made for this stream: free it */
				binding_ref(rb);
				binding_unref(rb, now);
			}
			continue;
		}
		if (s->state == ST_RETIRING)
			s->state = ST_ACTIVE;
		s->mindex = (uint8_t)i;
		s->pmux = m->rtcp_mux;
		keep[st_index(d, s)] = 1;
		pub[i] = s->b->pub_port;
		opened++;
	}
	for (int k = 0; k < DLG_MAX_STREAMS; k++) {
		struct stream *s = d->st[k];
		if (s->state == ST_FREE || keep[k])
			continue;
		/* Dropped by this SDP: it stays usable until the exchange completes. */
		s->state = ST_RETIRING;
	}
	if (is_answer)
		complete(d, now);
	return wanted && !opened ? -1 : 0;
}

/* The remote's RTCP port for a stream: what its a=rtcp names, else RTP+1.
 * Inbound elements are keyed by the remote's address, not its port, so
 * its RTCP passes the peer restriction as its RTP does. */
static uint16_t remote_rtcp(const struct sdp_media *m)
{
	if (m->rtcp_port.len && m->rtcp_num)
		return m->rtcp_num;
	return (uint16_t)(m->port_num + 1);
}

/* The SDP of an extra early dialog (fork f > 0): its media address gets
 * inbound elements of its own next to the first early dialog's, so early
 * media from every fork reaches the phone. Offer/answer state is the
 * first early dialog's: this changes nothing else. */
static void routed_fork_sdp(struct dialog *d, int f, const struct sdp *sd);

static void fork_sdp(struct dialog *d, int f, const struct sdp *sd)
{
	d->fork_answered |= (uint8_t)(1u << f);
	routed_fork_sdp(d, f, sd);
	for (int i = 0; i < sd->nmedia && i < SDP_MAX_MEDIA; i++) {
		const struct sdp_media *m = &sd->m[i];
		const struct addr *mip = &m->ip;
		if (!m->port_num || addr_is_any(mip))
			continue;
		for (int k = 0; k < DLG_MAX_STREAMS; k++) {
			struct stream *s = d->st[k];
			if (s->state == ST_FREE || s->mindex != i || !same_family(mip, &s->priv_ip))
				continue;
			struct addr key = peer_key(mip, m->port_num);
			if (s->fheld & (1u << f)) {
				if (addr_eq(&s->frip[f - 1], mip) && s->frport[f - 1] == m->port_num)
					continue;
				stream_unref_key(s, &s->fkey[f - 1]);
				if (!addr_eq(&s->frip[f - 1], &s->rip) || s->frport[f - 1] != s->rport)
					stream_kill_flows(s, &s->frip[f - 1], s->frport[f - 1]);
			}
			stream_ref_key(s, &key);
			s->fkey[f - 1] = key;
			s->frip[f - 1] = *mip;
			s->frport[f - 1] = m->port_num;
			s->fheld |= (uint8_t)(1u << f);
			stream_clear_stale(s, mip, m->port_num);
		}
	}
}

static void remote_sdp(struct dialog *d, const struct sdp *sd, int is_answer, uint64_t now)
{
	for (int i = 0; i < sd->nmedia && i < SDP_MAX_MEDIA; i++) {
		const struct sdp_media *m = &sd->m[i];
		const struct addr *mip = &m->ip;
		if (i < DLG_RIP) {
			d->rip[i] = m->port_num ? *mip : addr_v4(0);
			d->rport[i] = m->port_num;
		}
		d->rmux = (uint16_t)((d->rmux & ~(1u << i)) | (uint32_t)m->rtcp_mux << i);
		for (int k = 0; k < DLG_MAX_STREAMS; k++) {
			struct stream *s = d->st[k];
			if (s->state == ST_FREE || s->mindex != i)
				continue;
			s->rmux = m->rtcp_mux;
			/* the answer settles rtcp-mux before the key moves, so
			 * no RTP+1 element is added only to be deleted */
			if (is_answer)
				stream_layout(s, s->rb, s->pmux && s->rmux, now);
			if (m->port_num && !addr_is_any(mip) && same_family(mip, &s->priv_ip)) {
				stream_set_remote(s, mip, m->port_num, 0);
				s->rrtcp = remote_rtcp(m);
			}
		}
	}
	if (is_answer)
		complete(d, now);
}

/* ---- forked INVITEs (RFC 3261 12.1, 13.2.2.4) ------------------------ */

/* The remote chooses its tags: keyed (SipHash under the per-start key),
 * so none can be made to pass for another early dialog's. */
static uint32_t tag_hash(const uint8_t *t, uint32_t n)
{
	uint32_t h = (uint32_t)siphash_table(t, n);
	return h ? h : 1;
}

/* The winner's tag as the state file keeps it: a fixed key, so that the
 * next start can recognise it (the table key is drawn anew). Compared only
 * once after a restart, to re-learn the keyed hash. */
static uint32_t tag_fixed(const uint8_t *t, uint32_t n)
{
	static const struct siphash_key k = { 0x7369702d666f726bULL, 0x73746174652d7461ULL };
	uint32_t h = (uint32_t)siphash24(&k, t, n);
	return h ? h : 1;
}

void dialog_set_caller(struct dialog *d, enum dlg_side side)
{
	d->phone_uac = side == SIDE_PHONE;
}

int dialog_fork(struct dialog *d, const uint8_t *tag, uint32_t len)
{
	uint32_t h = len ? tag_hash(tag, len) : 0;

	d->cur_fork = 0;
	d->cur_tag = h;
	d->cur_fixed = 0;
	if (!d->phone_uac || !h)
		return 0;
	if (!d->won_tag && d->won_fixed) {
		/* restored from the state file: known by its fixed-key hash only */
		if (tag_fixed(tag, len) != d->won_fixed)
			return 1;
		d->won_tag = h;
	}
	if (d->won_tag)
		return h != d->won_tag;
	d->cur_fixed = tag_fixed(tag, len);
	for (int f = 0; f < DLG_FORKS; f++)
		if (d->fork_tag[f] == h) {
			d->cur_fork = (int8_t)f;
			return 0;
		}
	for (int f = 0; f < DLG_FORKS; f++)
		if (!d->fork_tag[f]) {
			d->fork_tag[f] = h;
			d->cur_fork = (int8_t)f;
			if (f)
				STAT_INC(forks);
			return 0;
		}
	/* More early dialogs than we keep: this one gets no early media,
	 * but its 2xx may still answer the call (dialog_confirmed). */
	STAT_INC(forks_refused);
	LOG_RL(LOG_LVL_WARN, "forked INVITE: more than %d early dialogs, call %.*s: no early media for the others",
	       DLG_FORKS, d->callid_len, d->callid);
	d->cur_fork = -1;
	return 0;
}

/* The 2xx of early dialog `w` answered the call (-1: one we did not keep,
 * its SDP follows as the answer): its peer becomes the streams' key, the
 * other early dialogs' elements and flows go (RFC 3261 13.2.2.4: the UAC
 * keeps one, BYEs the others). */
static void routed_fork_win(struct dialog *d, int w);

static void fork_win(struct dialog *d, int w, uint64_t now)
{
	routed_fork_win(d, w);
	for (int k = 0; k < DLG_MAX_STREAMS; k++) {
		struct stream *s = d->st[k];
		if (s->state == ST_FREE)
			continue;
		if (w > 0 && (s->fheld & (1u << w))) {
			struct addr key = s->key, rip = s->rip;
			uint16_t rport = s->rport;
			s->key = s->fkey[w - 1];
			s->rip = s->frip[w - 1];
			s->rport = s->frport[w - 1];
			s->rrtcp = (uint16_t)(s->rport + 1);
			s->fheld &= (uint8_t)~(1u << w);
			if (s->mindex < DLG_RIP) {
				d->rip[s->mindex] = s->rip;
				d->rport[s->mindex] = s->rport;
			}
			stream_unref_key(s, &key);
			if (!addr_eq(&rip, &s->rip) || rport != s->rport)
				stream_kill_flows(s, &rip, rport);
			if (s->has_old_key) {
				stream_unref_key(s, &s->old_key);
				if (!addr_eq(&s->old_rip, &s->rip) || s->old_rport != s->rport)
					stream_kill_flows(s, &s->old_rip, s->old_rport);
				s->has_old_key = 0;
			}
		}
		for (int f = 1; f < DLG_FORKS; f++) {
			if (!(s->fheld & (1u << f)))
				continue;
			stream_unref_key(s, &s->fkey[f - 1]);
			if (!addr_eq(&s->frip[f - 1], &s->rip) || s->frport[f - 1] != s->rport)
				stream_kill_flows(s, &s->frip[f - 1], s->frport[f - 1]);
			s->fheld &= (uint8_t)~(1u << f);
		}
	}
	/* The winner's early answer completed the offer (the first early
	 * dialog's own answer would have done it already). */
	if (w > 0 && (d->fork_answered & (1u << w)) && d->offer_from == SIDE_PHONE)
		complete(d, now);
}

/* ---- routed IPv6 media: conntrack pinholes ----------------------------- */

/* The entries for the stream's addresses and ports are in the kernel: the
 * ones routed_kill() will delete, whatever a later SDP changes. */
static void routed_set_live(struct rstream *r, int mux)
{
	r->live = 1;
	r->live_mux = (uint8_t)mux;
	r->lphone = r->phone;
	r->lremote = r->remote;
	r->lpport = r->pport;
	r->lrport = r->rport;
	r->lprtcp = r->prtcp;
	r->lrrtcp = r->rrtcp;
}

/* The phone's address as the WAN sees it: its NAT66 image (wan.nat66_*),
 * or its own when IPv6 is routed. 1 when translated. */
static int routed_public(const struct addr *phone, struct addr *pub)
{
	if (conf_has_nat66(cf) &&
	    nat66_map(&cf->nat66_lan.net, &cf->nat66_pub.net, cf->nat66_lan.plen, phone, pub))
		return 1;
	*pub = *phone;
	return 0;
}

/* Take the pinhole of a routed stream out of the kernel: the exact
 * tuples, and what else reached or left the phone's ports (the remote
 * sending from another port once the phone had sent first, the phone's
 * flows to anyone). Queued; the caller's commit sends them. */
static void routed_kill(struct rstream *r)
{
	struct addr pub;

	if (!r->live)
		return;
	/* Behind NAT66 the entry's original tuple is remote -> public and its
	 * reply phone -> remote: the reply tuple finds it (a tuple lookup
	 * matches either direction), and the scans look for the public
	 * address as the destination of flows in. */
	int nat = routed_public(&r->lphone, &pub);
	ct_del_udp(r->lremote, r->lrport, r->lphone, r->lpport);
	if (nat)
		ct_del_udp(r->lphone, r->lpport, r->lremote, r->lrport);
	ct_del_port(pub, r->lpport, 1);
	ct_del_port(r->lphone, r->lpport, 0);
	if (!r->live_mux) {
		ct_del_udp(r->lremote, r->lrrtcp, r->lphone, r->lprtcp);
		if (nat)
			ct_del_udp(r->lphone, r->lprtcp, r->lremote, r->lrrtcp);
		ct_del_port(pub, r->lprtcp, 1);
		ct_del_port(r->lphone, r->lprtcp, 0);
	}
	r->live = 0;
	STAT_DEC(pinholes);
	STAT_INC(pinholes_closed);
}

/* Both sides of a routed stream are known: the kernel gets exactly that
 * pinhole before the SDP's verdict (urgent). The timeout is the early
 * dialog's: the kernel refreshes the entry with every datagram once media
 * flows, and one the remote never uses expires by itself (fail closed). */
static void routed_sync(struct dialog *d, struct rstream *r)
{
	char pa[ADDR_STRLEN];
	int mux = r->pmux && r->rmux;

	if (!r->pport || !r->rport || addr_is_any(&r->phone) || addr_is_any(&r->remote)) {
		routed_kill(r);
		return;
	}
	if (r->live && r->live_mux == mux && addr_eq(&r->lphone, &r->phone) && addr_eq(&r->lremote, &r->remote) &&
	    r->lpport == r->pport && r->lrport == r->rport && r->lprtcp == r->prtcp && r->lrrtcp == r->rrtcp)
		return; /* a repeated SDP: the pinhole is there */
	routed_kill(r);
	if (stats[ST_pinholes] >= cf->max_pinholes) {
		STAT_INC(drop_limit);
		STAT_INC(refused_pinholes_full);
		LOG_RL(LOG_LVL_WARN, "IPv6 stream of phone %s:%u refused: pinhole table full (limits.pinholes=%u)",
		       astr(pa, &d->phone_ip), d->phone_port, cf->max_pinholes);
		return;
	}
	/* Behind NAT66 the remote sends to the phone's public image, and the
	 * entry carries the destination NAT to the phone (ct_create_udp_nat). */
	struct addr pub, none = { { 0 } };
	int nat = routed_public(&r->phone, &pub);
	ct_create_udp_nat(r->remote, r->rport, pub, r->pport, nat ? r->phone : none, cf->early_timeout_s);
	if (!mux)
		ct_create_udp_nat(r->remote, r->rrtcp, pub, r->prtcp, nat ? r->phone : none, cf->early_timeout_s);
	ct_mark_urgent();
	routed_set_live(r, mux);
	STAT_INC(pinholes);
	STAT_INC(pinholes_opened);
	if (mux)
		STAT_INC(rtcp_mux);
}

/* ---- routed IPv6 media of a forked INVITE's extra early dialogs ------ */

static void rfork_kill(const struct rstream *r, struct rfork *k)
{
	struct addr pub;

	if (!k->live)
		return;
	/* as routed_kill: behind NAT66 the reply tuple finds the entry */
	int nat = routed_public(&r->phone, &pub);
	ct_del_udp(k->remote, k->rport, r->phone, k->lpport);
	if (nat)
		ct_del_udp(r->phone, k->lpport, k->remote, k->rport);
	if (!k->live_mux) {
		ct_del_udp(k->remote, k->rrtcp, r->phone, k->lprtcp);
		if (nat)
			ct_del_udp(r->phone, k->lprtcp, k->remote, k->rrtcp);
	}
	k->live = 0;
	STAT_DEC(pinholes);
	STAT_INC(pinholes_closed);
}

/* Early media from every fork reaches the phone (as fork_sdp does for
 * IPv4): fork f's IN IP6 lines get pinholes of their own to the phone's
 * port of the same m= line; one naming the first early dialog's remote
 * needs none (that pinhole is there). The phone's side is the stream's:
 * an extra early dialog answers the phone's offer. */
static void routed_fork_sdp(struct dialog *d, int f, const struct sdp *sd)
{
	char pa[ADDR_STRLEN];

	for (int i = 0; i < sd->nmedia; i++) {
		const struct sdp_media *m = &sd->m[i];
		if (addr_is_v4(&m->ip) || addr_is_any(&m->ip) || nat_stream_at(d, i))
			continue;
		struct rstream *r = NULL;
		for (int k = 0; k < DLG_ROUTED && !r; k++)
			if (d->rs[k]->used && d->rs[k]->mindex == i)
				r = d->rs[k];
		if (!r || !r->pport || addr_is_any(&r->phone))
			continue; /* no phone side: the phone offered no IPv6 stream here */
		struct rfork *k = &r->fk[f - 1];
		uint16_t rtcp = m->rtcp_port.len && m->rtcp_num ? m->rtcp_num : (uint16_t)(m->port_num + 1);
		int mux = r->pmux && m->rtcp_mux;
		int on_lan = conf_has_lan_v6(cf) ? conf_is_lan(cf, &m->ip) : addr_eq(&m->ip, &d->phone_ip);
		if (!m->port_num || on_lan) {
			rfork_kill(r, k);
			continue;
		}
		if (k->live && addr_eq(&k->remote, &m->ip) && k->rport == m->port_num && k->rrtcp == rtcp &&
		    k->live_mux == mux && k->lpport == r->pport && k->lprtcp == r->prtcp)
			continue; /* a repeated 183 */
		rfork_kill(r, k);
		k->remote = m->ip;
		k->rport = m->port_num;
		k->rrtcp = rtcp;
		k->rmux = m->rtcp_mux;
		if (r->live && addr_eq(&r->lremote, &m->ip) && r->lrport == m->port_num)
			continue; /* the first early dialog's pinhole lets it in */
		if (stats[ST_pinholes] >= cf->max_pinholes) {
			STAT_INC(drop_limit);
			STAT_INC(refused_pinholes_full);
			LOG_RL(LOG_LVL_WARN, "IPv6 stream of phone %s:%u refused: pinhole table full (limits.pinholes=%u)",
			       astr(pa, &d->phone_ip), d->phone_port, cf->max_pinholes);
			continue;
		}
		struct addr pub, none = { { 0 } };
		int nat = routed_public(&r->phone, &pub);
		ct_create_udp_nat(m->ip, m->port_num, pub, r->pport, nat ? r->phone : none, cf->early_timeout_s);
		if (!mux)
			ct_create_udp_nat(m->ip, rtcp, pub, r->prtcp, nat ? r->phone : none, cf->early_timeout_s);
		ct_mark_urgent();
		k->live = 1;
		k->live_mux = (uint8_t)mux;
		k->lpport = r->pport;
		k->lprtcp = r->prtcp;
		STAT_INC(pinholes);
		STAT_INC(pinholes_opened);
	}
}

/* The 2xx of early dialog w answered (fork_win): w > 0 becomes the
 * stream's remote (its 2xx may carry no SDP: the answer was its 183's),
 * every other extra early dialog's pinhole goes. */
static void routed_fork_win(struct dialog *d, int w)
{
	for (int j = 0; j < DLG_ROUTED; j++) {
		struct rstream *r = d->rs[j];
		if (!r->used)
			continue;
		for (int f = 1; f < DLG_FORKS; f++) {
			struct rfork *k = &r->fk[f - 1];
			if (f == w && !addr_is_any(&k->remote) && k->rport) {
				r->remote = k->remote;
				r->rport = k->rport;
				r->rrtcp = k->rrtcp;
				r->rmux = k->rmux;
				rfork_kill(r, k);
				routed_sync(d, r); /* the first early dialog's goes, the winner's is made anew */
			} else {
				rfork_kill(r, k);
			}
			memset(k, 0, sizeof(*k));
		}
	}
}

static struct rstream *routed_slot(struct dialog *d, int mindex)
{
	int free_k = -1;

	for (int k = 0; k < DLG_ROUTED; k++) {
		if (d->rs[k]->used && d->rs[k]->mindex == mindex)
			return d->rs[k];
		if (!d->rs[k]->used && free_k < 0)
			free_k = k;
	}
	if (free_k < 0 || (!rfree_head && rpool_used == rpool_size))
		return NULL;
	uint32_t idx = rfree_head ? rfree_head : ++rpool_used;
	struct rstream *r = &rpool[idx - 1];
	if (rfree_head)
		rfree_head = r->rnext;
	memset(r, 0, sizeof(*r));
	r->used = 1;
	r->mindex = (uint8_t)mindex;
	d->rs[free_k] = r;
	return r;
}

/* The dialog's routed streams back to the pool (dialog_close, after their
 * pinholes went). */
static void routed_release(struct dialog *d)
{
	for (int k = 0; k < DLG_ROUTED; k++) {
		struct rstream *r = d->rs[k];
		if (r == FREE_RS)
			continue;
		memset(r, 0, sizeof(*r));
		r->rnext = rfree_head;
		rfree_head = (uint32_t)(r - rpool) + 1;
		d->rs[k] = FREE_RS;
	}
}

/* The IN IP6 m= lines of an SDP, from either side. The phone's must name a
 * LAN address (lan.networks) that is the phone's own unless
 * media.allow_other_lan_hosts, on a port >= 1024; the remote's must be
 * outside the LAN (two LAN hosts do not cross the router). A line that
 * names none of that, or port 0, takes the stream's pinhole away. */
static void routed_sdp(struct dialog *d, enum dlg_side side, const struct sdp *sd)
{
	for (int i = 0; i < sd->nmedia; i++) {
		const struct sdp_media *m = &sd->m[i];
		if ((addr_is_v4(&m->ip) && !addr_is_any(&m->ip)) || conf_is_masq6(cf, &m->ip) || nat_stream_at(d, i))
			continue; /* IPv4, masqueraded IPv6: the NAT streams' (mixed SDP) */
		struct rstream *r = NULL;
		for (int k = 0; k < DLG_ROUTED && !r; k++)
			if (d->rs[k]->used && d->rs[k]->mindex == i)
				r = d->rs[k];
		int ok = m->port_num && !addr_is_v4(&m->ip) && !addr_is_any(&m->ip);
		/* With no IPv6 prefix in lan.networks the LAN side is known only
		 * as the dialog's phone (alg_packet_dir): its own address, then,
		 * whatever media.allow_other_lan_hosts says. A dual-stack phone
		 * signalling over IPv4 offers an IPv6 address that cannot be
		 * compared with its sender: inside the configured prefix is all
		 * that can be asked of it. */
		int by_prefix = conf_has_lan_v6(cf);
		int on_lan = by_prefix ? conf_is_lan(cf, &m->ip) : addr_eq(&m->ip, &d->phone_ip);
		int other_family = addr_is_v4(&d->phone_ip);
		if (ok && side == SIDE_PHONE)
			ok = m->port_num >= 1024 && m->port_num < 65535 && on_lan &&
			     (addr_eq(&m->ip, &d->phone_ip) || (by_prefix && (other_family || cf->media_other_hosts)));
		else if (ok)
			ok = !on_lan;
		if (!ok) {
			if (r && m->port_num && side == SIDE_PHONE)
				STAT_INC(pinholes_refused);
			if (r) {
				routed_kill(r);
				if (side == SIDE_PHONE)
					r->pport = 0;
				else
					r->rport = 0;
			}
			continue;
		}
		if (!r && !(r = routed_slot(d, i))) {
			STAT_INC(pinholes_refused);
			continue;
		}
		uint16_t rtcp = m->rtcp_port.len && m->rtcp_num ? m->rtcp_num : (uint16_t)(m->port_num + 1);
		if (side == SIDE_PHONE) {
			r->phone = m->ip;
			r->pport = m->port_num;
			r->prtcp = rtcp;
			r->pmux = m->rtcp_mux;
		} else {
			r->remote = m->ip;
			r->rport = m->port_num;
			r->rrtcp = rtcp;
			r->rmux = m->rtcp_mux;
		}
		routed_sync(d, r);
	}
}

int dialog_sdp(struct dialog *d, enum dlg_side side, const struct sdp *s, int in_response,
	       uint32_t cseq, const struct addr *sender_ip, uint16_t pub[SDP_MAX_MEDIA], uint64_t now)
{
	int is_answer;
	int rc = 0;

	if (side == SIDE_REMOTE && in_response && d->phone_uac && !d->won_tag && d->cur_fork != 0) {
		/* an extra early dialog of a forked INVITE, or one beyond those we keep */
		if (d->cur_fork > 0)
			fork_sdp(d, d->cur_fork, s);
		return 0;
	}
	if (in_response)
		/* The answer to the request's offer, or a repeat of it (183
		 * then 200, retransmitted 200); else an offer in a response to
		 * an offerless INVITE (answered in the ACK). */
		is_answer = (d->offer_from != SIDE_NONE && d->offer_from != side && d->offer_cseq == cseq) ||
			    (d->offer_from == SIDE_NONE && d->answered_cseq == cseq && d->answered_from == side);
	else
		/* ACK and PRACK answer an offer made in a response. */
		is_answer = d->offer_from != SIDE_NONE && d->offer_from != side;
	if (is_answer) {
		d->answered_cseq = cseq;
		d->answered_from = (uint8_t)side;
	} else {
		d->offer_from = (uint8_t)side;
		d->offer_cseq = cseq;
	}
	/* IPv4 lines: the NAT streams; IN IP6 lines: routed pinholes. A
	 * mixed SDP feeds both, each its own m= lines. */
	if (side == SIDE_PHONE)
		rc = phone_sdp(d, s, sender_ip, pub, is_answer, now);
	else
		remote_sdp(d, s, is_answer, now);
	routed_sdp(d, side, s);
	return rc;
}

void dialog_offer_failed(struct dialog *d)
{
	/* The offer was rejected: what it opened goes, what it dropped stays. */
	for (int k = 0; k < DLG_MAX_STREAMS; k++) {
		struct stream *s = d->st[k];
		if (s->state == ST_NEW)
			stream_close(d, s, 0);
		else if (s->state == ST_RETIRING)
			s->state = ST_ACTIVE;
		if (s->state != ST_FREE && s->has_old_key) {
			/* undo a remote move that was offered */
			struct addr nk = s->key;
			s->key = s->old_key;
			s->rip = s->old_rip;
			s->rport = s->old_rport;
			stream_unref_key(s, &nk);
			s->has_old_key = 0;
		}
	}
	d->offer_from = SIDE_NONE;
}

/* The fast path (docs/fastpath.md, "Timers") handles 1xx, ACK and body-less
 * in-dialog requests without the daemon seeing them, and those are what
 * refresh a dialog's timer (a phone ringing for minutes repeats its 180
 * every minute, RFC 3261 13.3.1.1). So once less than half of the timer is
 * left, the phone's binding leaves the fast path's maps: the next such
 * message reaches the daemon, refreshes the timer, and the binding goes back.
 * Only calls that ring or last that long pay; a dialog that saw BYE is
 * ending anyway and holds nothing (a trunk's binding stays in). */
static void fp_hold_update(struct dialog *d, uint64_t now)
{
	uint64_t full = (uint64_t)(d->confirmed ? cf->dialog_timeout_s : cf->early_timeout_s) * 1000u;
	int want = d->sigb && !d->bye_seen && (d->expires <= now || d->expires - now < full / 2);

	if (want != d->fp_held) {
		binding_fastpath_hold(d->sigb, want);
		d->fp_held = (uint8_t)want;
	}
}

void dialog_touch(struct dialog *d, uint64_t now)
{
	uint64_t t = now + (uint64_t)(d->confirmed ? cf->dialog_timeout_s : cf->early_timeout_s) * 1000u;
	if (t > d->expires)
		d->expires = t;
	fp_hold_update(d, now);
}

void dialog_confirmed(struct dialog *d, uint64_t now)
{
	if (d->phone_uac && !d->won_tag && d->cur_tag) {
		d->won_tag = d->cur_tag;
		d->won_fixed = d->cur_fixed;
		fork_win(d, d->cur_fork, now);
		d->cur_fork = 0;
	}
	d->confirmed = 1;
	d->expires = now + (uint64_t)cf->dialog_timeout_s * 1000u;
	fp_hold_update(d, now);
}

void dialog_bye_seen(struct dialog *d, uint64_t now)
{
	d->expires = now + BYE_LINGER_MS;
	d->bye_seen = 1;
	fp_hold_update(d, now);
}

int dialog_is_confirmed(const struct dialog *d) { return d->confirmed; }
uint32_t dialog_invite_cseq(const struct dialog *d) { return d->invite_cseq; }
void dialog_set_invite_cseq(struct dialog *d, uint32_t cseq) { d->invite_cseq = cseq; }

uint32_t dialog_hash_longest_chain(uint32_t *nbuckets)
{
	uint32_t best = 0;

	for (uint32_t h = 0; pool && h <= hmask; h++) {
		uint32_t n = 0;
		for (uint32_t i = htab[h]; i && n <= pool_size; i = pool[i - 1].next)
			n++;
		if (n > best)
			best = n;
	}
	if (nbuckets)
		*nbuckets = pool ? hmask + 1 : 0;
	return best;
}

void dialog_close(struct dialog *d, uint64_t now)
{
	uint32_t idx = (uint32_t)(d - pool) + 1;

	for (int k = 0; k < DLG_MAX_STREAMS; k++)
		stream_close(d, d->st[k], now);
	for (int k = 0; k < DLG_ROUTED; k++) {
		if (d->rs[k] == FREE_RS)
			continue;
		for (int f = 1; f < DLG_FORKS; f++)
			rfork_kill(d->rs[k], &d->rs[k]->fk[f - 1]);
		routed_kill(d->rs[k]);
	}
	routed_release(d);
	if (d->sigb) {
		if (d->fp_held)
			binding_fastpath_hold(d->sigb, 0);
		d->fp_held = 0;
		if (d->sigb->dialogs && --d->sigb->dialogs == 0)
			phones_dlg--;
		nftmap_dnat_unref(&d->sig_key, d->sigb->pub_port);
		binding_unref(d->sigb, now);
	}
	for (uint32_t *pp = &htab[hash((uint8_t *)d->callid, d->callid_len, &d->phone_ip)]; *pp;
	     pp = &pool[*pp - 1].next) {
		if (*pp == idx) {
			*pp = d->next;
			break;
		}
	}
	d->in_use = 0;
	d->next = free_head;
	free_head = idx;
	STAT_DEC(dialogs);
	STAT_INC(dialogs_closed);
}

void dialog_expire(uint64_t now)
{
	for (uint32_t i = 0; i < pool_used; i++) {
		if (!pool[i].in_use)
			continue;
		if (pool[i].expires <= now) {
			STAT_INC(dialogs_expired);
			dialog_close(&pool[i], now);
		} else {
			fp_hold_update(&pool[i], now);
		}
	}
}

static void ipstr(FILE *f, const struct addr *a)
{
	char t[ADDR_STRLEN];

	addr_fmt(t, a, 1);
	fputs(t, f);
}

void dialog_dump(FILE *f, uint64_t now)
{
	for (uint32_t i = 0; i < pool_used; i++) {
		struct dialog *d = &pool[i];
		int n = 0;
		if (!d->in_use)
			continue;
		for (int k = 0; k < DLG_MAX_STREAMS; k++)
			n += d->st[k]->state != ST_FREE;
		for (int k = 0; k < DLG_ROUTED; k++)
			n += d->rs[k]->used && (d->rs[k]->pport || d->rs[k]->rport);
		char a[ADDR_STRLEN];
		fprintf(f, "%.*s phone ", d->callid_len, d->callid);
		addr_fmt(a, &d->phone_ip, 1);
		fprintf(f, "%s:%u peer ", a, d->phone_port);
		addr_fmt(a, &d->peer_ip, 1);
		fputs(a, f);
		fprintf(f, ":%u %s streams %d expires %llus\n", d->peer_port,
			d->confirmed ? "confirmed" : "early", n,
			(unsigned long long)(d->expires > now ? (d->expires - now) / 1000 : 0));
	}
}

void dialog_dump_pinholes(FILE *f)
{
	static const char *const names[] = { "free", "new", "active", "retiring" };

	for (uint32_t i = 0; i < pool_used; i++) {
		struct dialog *d = &pool[i];
		if (!d->in_use)
			continue;
		for (int k = 0; k < DLG_MAX_STREAMS; k++) {
			struct stream *s = d->st[k];
			if (s->state == ST_FREE)
				continue;
			const struct addr *pub = binding_public(&s->priv_ip);
			struct addr none = any_of(&s->priv_ip);
			ipstr(f, pub ? pub : &none);
			if (s->mux)
				fprintf(f, ":%u/mux -> ", s->b->pub_port);
			else
				fprintf(f, ":%u/%u -> ", s->b->pub_port, rtcp_pub(s));
			ipstr(f, &s->priv_ip);
			fprintf(f, ":%u from ", s->priv_port);
			if (!addr_is_any(&s->key))
				ipstr(f, &s->key);
			else
				fputs("any", f);
			fprintf(f, " %s call %.*s\n", names[s->state], d->callid_len, d->callid);
		}
		/* routed IPv6: a conntrack entry from exactly the remote's port */
		for (int k = 0; k < DLG_ROUTED; k++) {
			const struct rstream *r = d->rs[k];
			char ra[ADDR_STRLEN], pa[ADDR_STRLEN];
			if (!r->live)
				continue;
			addr_fmt(ra, &r->lremote, 1);
			addr_fmt(pa, &r->lphone, 1);
			fprintf(f, "conntrack %s:%u -> %s:%u%s routed call %.*s\n", ra, r->lrport, pa, r->lpport,
				r->live_mux ? " (rtcp-mux)" : " (+RTCP)", d->callid_len, d->callid);
		}
		for (int k = 0; k < DLG_ROUTED; k++)
			for (int j = 0; j < DLG_FORKS - 1; j++) {
				const struct rfork *x = &d->rs[k]->fk[j];
				char ra[ADDR_STRLEN], pa[ADDR_STRLEN];
				if (!x->live)
					continue;
				addr_fmt(ra, &x->remote, 1);
				addr_fmt(pa, &d->rs[k]->phone, 1);
				fprintf(f, "conntrack %s:%u -> %s:%u%s routed early dialog %d call %.*s\n", ra, x->rport,
					pa, x->lpport, x->live_mux ? " (rtcp-mux)" : " (+RTCP)", j + 1, d->callid_len,
					d->callid);
			}
	}
}

void dialog_save(FILE *f, uint64_t now)
{
	for (uint32_t i = 0; i < pool_used; i++) {
		struct dialog *d = &pool[i];
		if (!d->in_use)
			continue;
		/* The Call-ID in hex by table: the file is rewritten every second
		 * under load, with every live call in it, and one fprintf per
		 * byte showed in the profile. */
		static const char hexd[] = "0123456789abcdef";
		char hex[2 + 2 * DLG_CALLID_MAX];
		int n = 0;
		hex[n++] = 'D';
		hex[n++] = ' ';
		for (int k = 0; k < d->callid_len; k++) {
			hex[n++] = hexd[(unsigned char)d->callid[k] >> 4];
			hex[n++] = hexd[(unsigned char)d->callid[k] & 15];
		}
		fwrite(hex, 1, (size_t)n, f);
		/* then who called and which fork answered (older files end before) */
		/* Addresses as text (IPv6 too); files from before held IPv4
		 * as 8 hex digits, still read (dialog_restore_line). */
		char pa[ADDR_STRLEN], ra[ADDR_STRLEN];
		fprintf(f, " %s %u %s %u %u %llu %u %u %u %u %u %u %08x %u %08x\n", astr(pa, &d->phone_ip),
			d->phone_port, astr(ra, &d->peer_ip), d->peer_port, d->confirmed,
			(unsigned long long)(d->expires > now ? d->expires - now : 0), d->offer_from,
			d->offer_cseq, d->answered_cseq, d->answered_from, d->invite_cseq,
			d->callid_full, d->callid_hash, d->phone_uac, d->won_fixed);
		for (int m = 0; m < DLG_RIP; m++)
			if (!addr_is_any(&d->rip[m]))
				fprintf(f, "R %d %s %u\n", m, astr(ra, &d->rip[m]), d->rport[m]);
		for (int k = 0; k < DLG_MAX_STREAMS; k++) {
			struct stream *st = d->st[k];
			char sa[ADDR_STRLEN], ka[ADDR_STRLEN], xa[ADDR_STRLEN], ca[ADDR_STRLEN];
			if (st->state == ST_FREE)
				continue;
			/* addresses as text, as the D line's (the 8 hex digits of
			 * older files are still read); then the RTCP layout (older
			 * files end before it) */
			fprintf(f, "S %s %u %u %u %u %s %s %u %s %u %u %u %u %u %u\n", astr(sa, &st->priv_ip),
				st->priv_port, st->b->pub_port, st->state, st->mindex, astr(ka, &st->key),
				astr(xa, &st->rip), st->rport, st->rb ? astr(ca, &st->rb->priv_ip) : "0",
				st->rb ? st->rb->priv_port : 0, st->rb ? st->rb->pub_port : 0, st->mux, st->pmux,
				st->rmux, st->rrtcp);
		}
		/* routed IPv6 streams: what the SDPs said, and whether the kernel
		 * holds the pinhole (then it is deleted at the call's end) */
		for (int k = 0; k < DLG_ROUTED; k++) {
			const struct rstream *r = d->rs[k];
			char ph[ADDR_STRLEN], rm[ADDR_STRLEN];
			if (!r->used)
				continue;
			/* what is live is what the fields say (routed_sync) */
			fprintf(f, "V %u %s %u %u %u %s %u %u %u %u %u\n", r->mindex,
				astr(ph, r->live ? &r->lphone : &r->phone), r->live ? r->lpport : r->pport,
				r->live ? r->lprtcp : r->prtcp, r->pmux, astr(rm, r->live ? &r->lremote : &r->remote),
				r->live ? r->lrport : r->rport, r->live ? r->lrrtcp : r->rrtcp, r->rmux, r->live,
				r->live_mux);
		}
	}
}

int dialog_restore_line(const char *line, uint64_t now)
{
	if (line[0] == 'D') {
		char hex[2 * DLG_CALLID_MAX + 1];
		uint8_t cid[DLG_CALLID_MAX];
		char pips[ADDR_STRLEN], rips[ADDR_STRLEN];
		unsigned pport, rport, conf, of, oc, ac, af, ic, full, fh, uac = 0, won = 0;
		unsigned long long left;
		struct addr pip, rip;
		restoring = NULL;
		int nf = sscanf(line, "D %128s %47s %u %47s %u %u %llu %u %u %u %u %u %u %x %u %x", hex, pips, &pport,
				rips, &rport, &conf, &left, &of, &oc, &ac, &af, &ic, &full, &fh, &uac, &won);
		if ((nf != 14 && nf != 16) || pport > 65535 || rport > 65535 || addr_parse_state(pips, &pip) < 0 ||
		    addr_parse_state(rips, &rip) < 0)
			return -1;
		size_t n = strlen(hex) / 2;
		if (n == 0 || n > DLG_CALLID_MAX)
			return -1;
		for (size_t k = 0; k < n; k++) {
			unsigned v;
			if (sscanf(hex + 2 * k, "%2x", &v) != 1)
				return -1;
			cid[k] = (uint8_t)v;
		}
		/* a signalling binding is NAT state (IPv4, masqueraded IPv6): a
		 * routed IPv6 call has none */
		struct binding *sb = addr_is_v4(&pip) || conf_is_masq6(cf, &pip)
					     ? binding_get(&pip, (uint16_t)pport, BIND_SIG, 0, now) : NULL;
		struct dialog *d = dialog_create(cid, (uint32_t)n, &pip, (uint16_t)pport, &rip, (uint16_t)rport, sb,
						 now);
		if (!d)
			return -1;
		d->confirmed = conf != 0;
		d->expires = now + left;
		d->offer_from = (uint8_t)(of <= SIDE_REMOTE ? of : SIDE_NONE);
		d->offer_cseq = oc;
		d->answered_cseq = ac;
		d->answered_from = (uint8_t)(af <= SIDE_REMOTE ? af : SIDE_NONE);
		d->invite_cseq = ic;
		d->phone_uac = uac != 0;
		d->won_fixed = won; /* won_tag is learnt again from the next tagged message */
		if (full > n) {
			d->callid_full = full;
			d->callid_hash = fh;
		}
		restoring = d;
		return 0;
	}
	if (!restoring)
		return -1;
	if (line[0] == 'R') {
		int m;
		unsigned port;
		char ips[ADDR_STRLEN];
		struct addr ip;
		if (sscanf(line, "R %d %47s %u", &m, ips, &port) != 3 || m < 0 || m >= SDP_MAX_MEDIA || port > 65535 ||
		    addr_parse_state(ips, &ip) < 0)
			return -1;
		if (m < DLG_RIP) { /* an older file may name later lines: not kept */
			restoring->rip[m] = ip;
			restoring->rport[m] = (uint16_t)port;
		}
		return 0;
	}
	if (line[0] == 'V') {
		char ph[ADDR_STRLEN], rm[ADDR_STRLEN];
		unsigned mi, pp, pr, pm, rp, rr, rmx, live, lmux;
		struct rstream *r;
		if (sscanf(line, "V %u %47s %u %u %u %47s %u %u %u %u %u", &mi, ph, &pp, &pr, &pm, rm, &rp, &rr, &rmx,
			   &live, &lmux) != 11 || mi >= SDP_MAX_MEDIA || pp > 65535 || pr > 65535 || rp > 65535 ||
		    rr > 65535 || !(r = routed_slot(restoring, (int)mi)) || addr_parse_state(ph, &r->phone) < 0 ||
		    addr_parse_state(rm, &r->remote) < 0)
			return -1;
		r->pport = (uint16_t)pp;
		r->prtcp = (uint16_t)pr;
		r->pmux = pm != 0;
		r->rport = (uint16_t)rp;
		r->rrtcp = (uint16_t)rr;
		r->rmux = rmx != 0;
		if (live) {
			/* the entries are the kernel's still: ours to delete */
			routed_set_live(r, lmux != 0);
			STAT_INC(pinholes);
		}
		return 0;
	}
	if (line[0] == 'S') {
		unsigned port, pub, state, mi, rport;
		unsigned cport = 0, cpub = 0, mux = 0, pmux = 0, rmux = 0, rrtcp = 0;
		char ips[ADDR_STRLEN], keys[ADDR_STRLEN], rips[ADDR_STRLEN], cips[ADDR_STRLEN] = "0";
		struct addr ip, key, rip, cip = addr_v4(0);
		int nf = sscanf(line, "S %47s %u %u %u %u %47s %47s %u %47s %u %u %u %u %u %u", ips, &port, &pub,
				&state, &mi, keys, rips, &rport, cips, &cport, &cpub, &mux, &pmux, &rmux, &rrtcp);
		if ((nf != 8 && nf != 15) || cport > 65535 || cpub > 65535 || rrtcp > 65535 ||
		    port == 0 || port >= 65535 || pub > 65535 || rport > 65535 || mi >= SDP_MAX_MEDIA ||
		    state < ST_NEW || state > ST_RETIRING || addr_parse_state(ips, &ip) < 0 ||
		    addr_parse_state(keys, &key) < 0 || addr_parse_state(rips, &rip) < 0 ||
		    (cport && addr_parse_state(cips, &cip) < 0))
			return -1;
		/* a key or remote of 0 (any, unknown) is the stream's family's */
		if (addr_is_any(&key))
			key = any_of(&ip);
		if (addr_is_any(&rip))
			rip = any_of(&ip);
		if (!same_family(&key, &ip) || !same_family(&rip, &ip))
			return -1;
		struct binding *b = binding_get(&ip, (uint16_t)port, BIND_MEDIA, (uint16_t)pub, now);
		if (!b)
			return -1;
		struct stream *st = stream_alloc(restoring);
		if (!st) {
			binding_ref(b);
			binding_unref(b, now);
			return -1;
		}
		binding_ref(b);
		st->b = b;
		st->priv_ip = ip;
		st->priv_port = (uint16_t)port;
		st->state = (uint8_t)state;
		st->mindex = (uint8_t)mi;
		st->key = key;
		st->rip = rip;
		st->rport = (uint16_t)rport;
		st->mux = mux != 0;
		st->pmux = pmux != 0;
		st->rmux = rmux != 0;
		st->rrtcp = (uint16_t)rrtcp;
		if (cport && (st->rb = binding_get(&cip, (uint16_t)cport, BIND_RTCP, (uint16_t)cpub, now)) &&
		    st->rb->kind != BIND_RTCP)
			st->rb = NULL;
		if (st->rb)
			binding_ref(st->rb);
		stream_ref_key(st, &key);
		/* as stream_open counts: stream_close takes the phone off again */
		if (restoring->sigb && restoring->sigb->pinholes++ == 0)
			phones_pin++;
		STAT_INC(pinholes);
		return 0;
	}
	return -1;
}

/* ---- the operator's view ---------------------------------------------- */
_Static_assert(DIALOG_VIEW_STREAMS == DLG_MAX_STREAMS, "view and dialog agree on streams");
_Static_assert(DST_RETIRING == (int)ST_RETIRING, "stream states agree");

int dialog_view_next(uint32_t *cursor, struct dialog_view *v, uint64_t now)
{
	while (*cursor < pool_used) {
		const struct dialog *d = &pool[(*cursor)++];
		if (!d->in_use)
			continue;
		memset(v, 0, sizeof(*v));
		v->slot = (uint32_t)(d - pool);
		v->callid = d->callid;
		v->callid_len = d->callid_len;
		v->callid_full = d->callid_full;
		v->phone_ip = d->phone_ip;
		v->phone_port = d->phone_port;
		v->sig_pub_port = d->sigb ? d->sigb->pub_port : 0;
		v->peer_ip = d->peer_ip;
		v->peer_port = d->peer_port;
		v->confirmed = d->confirmed;
		v->offer_from = d->offer_from;
		v->age_ms = now > d->created ? now - d->created : 0;
		v->expires_ms = d->expires > now ? d->expires - now : 0;
		for (int k = 0; k < DLG_MAX_STREAMS; k++) {
			const struct stream *s = d->st[k];
			if (s->state == ST_FREE)
				continue;
			struct dialog_stream_view *o = &v->st[v->n_streams++];
			o->mindex = s->mindex;
			o->state = s->state;
			o->priv_ip = s->priv_ip;
			const struct addr *pub = binding_public(&s->priv_ip);
			o->pub_ip = pub ? *pub : any_of(&s->priv_ip);
			o->priv_port = s->priv_port;
			o->pub_port = s->b ? s->b->pub_port : 0;
			o->allowed_src = s->key;
			o->remote_ip = s->rip;
			o->remote_port = s->rport;
			o->rtcp_mux = s->mux;
			o->rtcp_pub_port = s->b ? rtcp_pub(s) : 0;
			o->rtcp_priv_ip = s->rb ? s->rb->priv_ip : s->priv_ip;
			o->rtcp_priv_port = s->rb ? s->rb->priv_port : (uint16_t)(s->priv_port + 1);
		}
		for (int k = 0; k < DLG_ROUTED && v->n_streams < DIALOG_VIEW_STREAMS; k++) {
			const struct rstream *r = d->rs[k];
			if (!r->used || (!r->pport && !r->rport))
				continue;
			struct dialog_stream_view *o = &v->st[v->n_streams++];
			o->routed = 1;
			o->mindex = r->mindex;
			o->state = r->live ? ST_ACTIVE : ST_NEW;
			o->priv_ip = r->phone;
			routed_public(&r->phone, &o->routed_pub);
			o->priv_port = r->pport;
			o->allowed_src = r->remote; /* exactly the remote's address and port */
			o->remote_ip = r->remote;
			o->remote_port = r->rport;
			o->rtcp_mux = r->pmux && r->rmux;
			o->rtcp_priv_ip = r->phone;
			o->rtcp_priv_port = r->prtcp;
		}
		return 1;
	}
	return 0;
}

uint32_t dialog_slot(const struct dialog *d)
{
	return (uint32_t)(d - pool);
}
