#include "dialog.h"

#include <stdlib.h>
#include <string.h>

#include "binding.h"
#include "calllog.h"
#include "conf.h"
#include "ct.h"
#include "log.h"
#include "mem.h"
#include "nftmap.h"
#include "siphash.h"
#include "stats.h"

#define DLG_CALLID_MAX 64  /* prefix kept; the whole value is hashed (state file: %128s) */
#define DLG_MAX_STREAMS 12 /* streams_per_call (8) plus room for a re-offer's new ones */
#define BYE_LINGER_MS 32000u  /* 64*T1: a BYE transaction that never completes */

enum st_state { ST_FREE = 0, ST_NEW, ST_ACTIVE, ST_RETIRING };

struct stream {
	struct binding *b;     /* media pair binding */
	uint32_t priv_ip;
	uint16_t priv_port;
	uint8_t state;
	uint8_t mindex;
	uint32_t key;          /* peer of the inbound elements we hold (0 = any) */
	uint32_t old_key;      /* previous peer, released when the new offer completes */
	uint8_t has_old_key;
	uint32_t rip;          /* remote media address from its SDP, 0 unknown */
	uint16_t rport;
	uint32_t old_rip;
	uint16_t old_rport;
};

struct dialog {
	uint8_t in_use;
	uint8_t confirmed;
	uint8_t offer_from;    /* enum dlg_side with an offer outstanding */
	uint8_t callid_len;    /* bytes kept in callid[] */
	uint32_t callid_full;  /* length of the whole Call-ID */
	uint32_t callid_hash;  /* of the whole Call-ID: long ones differ past 128 bytes */
	uint32_t next;         /* hash chain, index + 1 */
	uint32_t phone_ip;
	uint16_t phone_port;
	uint16_t peer_port;
	uint32_t peer_ip;
	uint32_t sig_key;
	uint32_t invite_cseq;
	uint32_t offer_cseq;   /* transaction whose request carried the outstanding offer */
	uint32_t answered_cseq;/* transaction whose answer completed the last exchange */
	uint8_t answered_from; /* side that gave that answer */
	struct binding *sigb;
	uint8_t fp_held;       /* holds sigb out of the fast path (fp_hold_update) */
	uint8_t bye_seen;
	uint32_t pub_ip;       /* public address when it began (dialog_public) */
	uint64_t expires;
	uint64_t created;      /* ms; a restored dialog counts from its restore */
	uint32_t rip[SDP_MAX_MEDIA];
	uint16_t rport[SDP_MAX_MEDIA];
	struct stream st[DLG_MAX_STREAMS];
	char callid[DLG_CALLID_MAX];
};

static struct dialog *pool;
static uint32_t pool_size, pool_used, free_head, *htab, hmask;
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
static uint32_t hash(const uint8_t *s, uint32_t n, uint32_t ip)
{
	uint8_t k[4 + DLG_CALLID_MAX];

	memcpy(k, &ip, 4);
	memcpy(k + 4, s, n);
	return (uint32_t)siphash_table(k, 4 + n) & hmask;
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
	if (!pool || !htab)
		return -1;
	/* Entries are handed out from the untouched end first, so an idle
	 * daemon does not keep the whole pool resident. */
	free_head = 0;
	pool_used = 0;
	dialog_set_local(c->local_ips, c->n_local);
	return 0;
}

uint32_t dialog_public(const struct dialog *d) { return d->pub_ip; }

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
	pool = NULL;
	htab = NULL;
	pool_size = 0;
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

struct dialog *dialog_find(const uint8_t *callid, uint32_t full, uint32_t phone_ip)
{
	uint32_t len = key_len(full);
	uint32_t fh = full > len ? full_hash(callid, full) : 0;

	if (!pool)
		return NULL;
	for (uint32_t i = htab[hash(callid, len, phone_ip)]; i; i = pool[i - 1].next) {
		struct dialog *d = &pool[i - 1];
		if (d->phone_ip == phone_ip && d->callid_full == full && d->callid_hash == fh &&
		    memcmp(d->callid, callid, len) == 0)
			return d;
	}
	return NULL;
}

static uint32_t peer_key(uint32_t ip)
{
	return cf->pinhole_src == CONF_PINHOLE_ANY ? 0 : ip;
}

struct dialog *dialog_create(const uint8_t *callid, uint32_t full, uint32_t phone_ip,
			     uint16_t phone_port, uint32_t peer_ip, uint16_t peer_port,
			     struct binding *sigb, uint64_t now)
{
	uint32_t len = key_len(full);
	if (!free_head && pool_used == pool_size) {
		STAT_INC(drop_limit);
		STAT_INC(refused_dialogs_full);
		LOG_RL(LOG_LVL_WARN, "call of phone %u.%u.%u.%u:%u refused: dialog table full (limits.dialogs=%u)",
		       phone_ip >> 24, (phone_ip >> 16) & 255, (phone_ip >> 8) & 255, phone_ip & 255,
		       phone_port, pool_size);
		return NULL;
	}
	if (sigb && over_share(stats[ST_dialogs], pool_size, sigb->dialogs, phones_dlg, 1)) {
		STAT_INC(drop_limit);
		STAT_INC(refused_dialogs_share);
		LOG_RL(LOG_LVL_WARN, "call of phone %u.%u.%u.%u:%u refused: dialog table over 3/4 full "
		       "(%llu of limits.dialogs=%u) and the phone holds its share (%u dialogs)",
		       phone_ip >> 24, (phone_ip >> 16) & 255, (phone_ip >> 8) & 255, phone_ip & 255,
		       phone_port, (unsigned long long)stats[ST_dialogs], pool_size, sigb->dialogs);
		return NULL;
	}
	uint32_t idx = free_head ? free_head : ++pool_used;
	struct dialog *d = &pool[idx - 1];
	if (free_head)
		free_head = d->next;
	memset(d, 0, sizeof(*d));
	calllog_reset(idx - 1);
	d->in_use = 1;
	memcpy(d->callid, callid, len);
	d->callid_len = (uint8_t)len;
	d->callid_full = full;
	d->callid_hash = full > len ? full_hash(callid, full) : 0;
	d->phone_ip = phone_ip;
	d->phone_port = phone_port;
	d->peer_ip = peer_ip;
	d->peer_port = peer_port;
	d->sigb = sigb;
	d->pub_ip = binding_public_ip();
	d->expires = now + (uint64_t)cf->early_timeout_s * 1000u;
	d->created = now;
	d->sig_key = cf->inbound_src == CONF_INBOUND_ANY ? 0 : peer_ip;
	if (sigb) {
		binding_ref(sigb);
		if (sigb->dialogs++ == 0)
			phones_dlg++;
		/* In-dialog requests from the peer must reach the phone after the
		 * signalling conntrack has timed out (long calls). */
		nftmap_dnat_ref(d->sig_key, sigb->pub_port, sigb->priv_ip, sigb->priv_port);
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
static int lan_target_ok(uint32_t ip, uint16_t port, uint32_t sender)
{
	if (port < 1024 || port == 65535)
		return 0;
	if (ip == 0 || ip == 0xffffffffu || (ip >> 24) == 127 || (ip >> 28) == 0xe || (ip >> 28) == 0xf)
		return 0;
	if (!conf_is_lan(cf, ip))
		return 0;
	for (int i = 0; i < n_local; i++)
		if (local_ips[i] == ip)
			return 0;
	/* never the network or broadcast address of the LAN prefix */
	for (int i = 0; i < cf->n_lan; i++) {
		const struct conf_net *n = &cf->lan[i];
		if ((ip & n->mask) == n->addr && n->mask != 0xffffffffu &&
		    (ip == n->addr || ip == (n->addr | ~n->mask)))
			return 0;
	}
	if (ip != sender && !cf->media_other_hosts)
		return 0;
	return 1;
}

static void stream_ref_key(struct stream *s, uint32_t key)
{
	nftmap_dnat_ref(key, s->b->pub_port, s->priv_ip, s->priv_port);
	nftmap_dnat_ref(key, (uint16_t)(s->b->pub_port + 1), s->priv_ip, (uint16_t)(s->priv_port + 1));
}

static void stream_unref_key(struct stream *s, uint32_t key)
{
	nftmap_dnat_unref(key, s->b->pub_port);
	nftmap_dnat_unref(key, (uint16_t)(s->b->pub_port + 1));
}

/* Media flows between the phone's port and a remote address: the kernel
 * finds a conntrack by either direction, so one tuple covers phone-first
 * (SNAT) and remote-first (DNAT) flows alike. */
static void stream_kill_flows(struct stream *s, uint32_t rip, uint16_t rport)
{
	if (!rip || !rport)
		return;
	ct_del_udp(s->priv_ip, s->priv_port, rip, rport);
	ct_del_udp(s->priv_ip, (uint16_t)(s->priv_port + 1), rip, (uint16_t)(rport + 1));
}

/* A flow from the remote's media address to the pinhole's public port that
 * conntrack already knows without NAT (the remote kept sending after an
 * earlier call on this port ended, and the router took the packets for
 * itself) would keep the new pinhole from ever applying: NAT is decided
 * only for a new conntrack. */
static void stream_clear_stale(struct stream *s, uint32_t rip, uint16_t rport)
{
	uint32_t pub = binding_public_ip();

	if (!rip || !rport)
		return;
	ct_del_udp(rip, rport, pub, s->b->pub_port);
	ct_del_udp(rip, (uint16_t)(rport + 1), pub, (uint16_t)(s->b->pub_port + 1));
	ct_mark_urgent(); /* before the SDP that invites the remote's media leaves */
}

static void stream_close(struct dialog *d, struct stream *s, uint64_t now)
{
	uint32_t pub = binding_public_ip();

	if (s->state == ST_FREE)
		return;
	stream_unref_key(s, s->key);
	if (s->has_old_key) {
		stream_unref_key(s, s->old_key);
		stream_kill_flows(s, s->old_rip, s->old_rport);
	}
	stream_kill_flows(s, s->rip, s->rport);
	if (!s->rip) {
		/* The remote never named its media address (a call that failed
		 * before any answer, media sent to the offer's pinhole): find its
		 * flows by the pinhole's port and by the phone's. A dump walks the
		 * whole conntrack table, so only here, not for every call. */
		ct_del_port(pub, s->b->pub_port, 1);
		ct_del_port(pub, (uint16_t)(s->b->pub_port + 1), 1);
		ct_del_port(s->priv_ip, s->priv_port, 0);
		ct_del_port(s->priv_ip, (uint16_t)(s->priv_port + 1), 0);
	}
	binding_unref(s->b, now);
	memset(s, 0, sizeof(*s));
	if (d->sigb && d->sigb->pinholes && --d->sigb->pinholes == 0)
		phones_pin--;
	STAT_DEC(pinholes);
	STAT_INC(pinholes_closed);
}

/* The remote's new address for a stream: hold both until the offer/answer
 * completes, so media from either reaches the phone meanwhile. */
static void stream_set_remote(struct stream *s, uint32_t rip, uint16_t rport, int final)
{
	uint32_t key = rip ? peer_key(rip) : s->key;

	if (key != s->key) {
		if (s->has_old_key) {
			stream_unref_key(s, s->old_key);
			stream_kill_flows(s, s->old_rip, s->old_rport);
		}
		stream_ref_key(s, key);
		s->old_key = s->key;
		s->old_rip = s->rip;
		s->old_rport = s->rport;
		s->has_old_key = 1;
		s->key = key;
	} else if (rip && (rip != s->rip || rport != s->rport) && s->rip) {
		/* Same peer key (policy any, or same host) but a new port: the
		 * old flow still has to go when this completes. */
		if (s->has_old_key) {
			stream_unref_key(s, s->old_key);
			stream_kill_flows(s, s->old_rip, s->old_rport);
		}
		stream_ref_key(s, key);
		s->old_key = key;
		s->old_rip = s->rip;
		s->old_rport = s->rport;
		s->has_old_key = 1;
	}
	if (rip) {
		if (rip != s->rip || rport != s->rport)
			stream_clear_stale(s, rip, rport);
		s->rip = rip;
		s->rport = rport;
	}
	if (final && s->has_old_key) {
		stream_unref_key(s, s->old_key);
		if (s->old_rip != s->rip || s->old_rport != s->rport)
			stream_kill_flows(s, s->old_rip, s->old_rport);
		s->has_old_key = 0;
	}
}

/* Offer/answer completed: new streams become active, dropped ones go, and
 * a remote address change becomes final. */
static void complete(struct dialog *d, uint64_t now)
{
	for (int k = 0; k < DLG_MAX_STREAMS; k++) {
		struct stream *s = &d->st[k];
		if (s->state == ST_RETIRING)
			stream_close(d, s, now);
		else if (s->state == ST_NEW)
			s->state = ST_ACTIVE;
		if (s->state != ST_FREE && s->has_old_key)
			stream_set_remote(s, 0, 0, 1);
	}
	d->offer_from = SIDE_NONE;
}

static struct stream *stream_find(struct dialog *d, uint32_t ip, uint16_t port)
{
	for (int k = 0; k < DLG_MAX_STREAMS; k++)
		if (d->st[k].state != ST_FREE && d->st[k].priv_ip == ip && d->st[k].priv_port == port)
			return &d->st[k];
	return NULL;
}

static struct stream *stream_open(struct dialog *d, uint32_t ip, uint16_t port, int mi, uint64_t now)
{
	struct stream *s = NULL;

	if (stats[ST_pinholes] >= cf->max_pinholes) {
		STAT_INC(drop_limit);
		STAT_INC(refused_pinholes_full);
		LOG_RL(LOG_LVL_WARN, "stream of phone %u.%u.%u.%u:%u refused (m= port 0): pinhole table full "
		       "(limits.pinholes=%u)", d->phone_ip >> 24, (d->phone_ip >> 16) & 255,
		       (d->phone_ip >> 8) & 255, d->phone_ip & 255, d->phone_port, cf->max_pinholes);
		return NULL;
	}
	/* limits.pinholes_per_phone is the share every phone keeps once the
	 * table is scarce, not a cap on a phone while there is room. */
	if (d->sigb && over_share(stats[ST_pinholes], cf->max_pinholes, d->sigb->pinholes, phones_pin,
				  cf->max_pinholes_per_phone)) {
		STAT_INC(drop_limit);
		STAT_INC(refused_pinholes_share);
		LOG_RL(LOG_LVL_WARN, "stream of phone %u.%u.%u.%u:%u refused (m= port 0): pinhole table over "
		       "3/4 full (%llu of limits.pinholes=%u) and the phone holds its share (%u pinholes)",
		       d->phone_ip >> 24, (d->phone_ip >> 16) & 255, (d->phone_ip >> 8) & 255,
		       d->phone_ip & 255, d->phone_port, (unsigned long long)stats[ST_pinholes],
		       cf->max_pinholes, d->sigb->pinholes);
		return NULL;
	}
	for (int k = 0; k < DLG_MAX_STREAMS && !s; k++)
		if (d->st[k].state == ST_FREE)
			s = &d->st[k];
	if (!s)
		return NULL;
	struct binding *b = binding_get(ip, port, BIND_MEDIA, 0, now);
	if (!b)
		return NULL;
	binding_ref(b);
	s->b = b;
	s->priv_ip = ip;
	s->priv_port = port;
	s->state = ST_NEW;
	s->mindex = (uint8_t)mi;
	s->rip = d->rip[mi];
	s->rport = d->rport[mi];
	/* Until the remote's SDP names its media address, only the signalling
	 * peer may send (policy peer); the answer then moves the key. */
	s->key = peer_key(s->rip ? s->rip : d->peer_ip);
	stream_ref_key(s, s->key);
	stream_clear_stale(s, s->rip, s->rport);
	if (d->sigb && d->sigb->pinholes++ == 0)
		phones_pin++;
	STAT_INC(pinholes);
	STAT_INC(pinholes_opened);
	return s;
}

static int phone_sdp(struct dialog *d, const struct sdp *sd, uint32_t sender,
		     uint16_t pub[SDP_MAX_MEDIA], int is_answer, uint64_t now)
{
	uint8_t keep[DLG_MAX_STREAMS] = { 0 };
	int opened = 0, wanted = 0;

	for (int i = 0; i < sd->nmedia; i++) {
		const struct sdp_media *m = &sd->m[i];
		pub[i] = 0;
		if (!m->port_num)
			continue;
		wanted++;
		if ((uint32_t)i >= cf->max_streams_per_call ||
		    !lan_target_ok(m->ip, m->port_num, sender)) {
			STAT_INC(pinholes_refused);
			LOG_RL(LOG_LVL_WARN, "SDP stream %d refused (media %u.%u.%u.%u:%u)", i,
			       m->ip >> 24, (m->ip >> 16) & 255, (m->ip >> 8) & 255, m->ip & 255,
			       m->port_num);
			continue;
		}
		struct stream *s = stream_find(d, m->ip, m->port_num);
		if (!s)
			s = stream_open(d, m->ip, m->port_num, i, now);
		if (!s)
			continue;
		if (s->state == ST_RETIRING)
			s->state = ST_ACTIVE;
		s->mindex = (uint8_t)i;
		keep[s - d->st] = 1;
		pub[i] = s->b->pub_port;
		opened++;
	}
	for (int k = 0; k < DLG_MAX_STREAMS; k++) {
		struct stream *s = &d->st[k];
		if (s->state == ST_FREE || keep[k])
			continue;
		/* Dropped by this SDP: it stays usable until the exchange completes. */
		s->state = ST_RETIRING;
	}
	if (is_answer)
		complete(d, now);
	return wanted && !opened ? -1 : 0;
}

static void remote_sdp(struct dialog *d, const struct sdp *sd, int is_answer, uint64_t now)
{
	for (int i = 0; i < sd->nmedia && i < SDP_MAX_MEDIA; i++) {
		const struct sdp_media *m = &sd->m[i];
		d->rip[i] = m->port_num ? m->ip : 0;
		d->rport[i] = m->port_num;
		for (int k = 0; k < DLG_MAX_STREAMS; k++) {
			struct stream *s = &d->st[k];
			if (s->state != ST_FREE && s->mindex == i && m->port_num && m->ip)
				stream_set_remote(s, m->ip, m->port_num, 0);
		}
	}
	if (is_answer)
		complete(d, now);
}

int dialog_sdp(struct dialog *d, enum dlg_side side, const struct sdp *s, int in_response,
	       uint32_t cseq, uint32_t sender_ip, uint16_t pub[SDP_MAX_MEDIA], uint64_t now)
{
	int is_answer;
	int rc = 0;

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
	if (side == SIDE_PHONE)
		rc = phone_sdp(d, s, sender_ip, pub, is_answer, now);
	else
		remote_sdp(d, s, is_answer, now);
	return rc;
}

void dialog_offer_failed(struct dialog *d)
{
	/* The offer was rejected: what it opened goes, what it dropped stays. */
	for (int k = 0; k < DLG_MAX_STREAMS; k++) {
		struct stream *s = &d->st[k];
		if (s->state == ST_NEW)
			stream_close(d, s, 0);
		else if (s->state == ST_RETIRING)
			s->state = ST_ACTIVE;
		if (s->state != ST_FREE && s->has_old_key) {
			/* undo a remote move that was offered */
			uint32_t nk = s->key;
			s->key = s->old_key;
			s->rip = s->old_rip;
			s->rport = s->old_rport;
			stream_unref_key(s, nk);
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
		stream_close(d, &d->st[k], now);
	if (d->sigb) {
		if (d->fp_held)
			binding_fastpath_hold(d->sigb, 0);
		d->fp_held = 0;
		if (d->sigb->dialogs && --d->sigb->dialogs == 0)
			phones_dlg--;
		nftmap_dnat_unref(d->sig_key, d->sigb->pub_port);
		binding_unref(d->sigb, now);
	}
	for (uint32_t *pp = &htab[hash((uint8_t *)d->callid, d->callid_len, d->phone_ip)]; *pp;
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

static void ipstr(FILE *f, uint32_t ip)
{
	fprintf(f, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

void dialog_dump(FILE *f, uint64_t now)
{
	for (uint32_t i = 0; i < pool_used; i++) {
		struct dialog *d = &pool[i];
		int n = 0;
		if (!d->in_use)
			continue;
		for (int k = 0; k < DLG_MAX_STREAMS; k++)
			n += d->st[k].state != ST_FREE;
		fprintf(f, "%.*s phone ", d->callid_len, d->callid);
		ipstr(f, d->phone_ip);
		fprintf(f, ":%u peer ", d->phone_port);
		ipstr(f, d->peer_ip);
		fprintf(f, ":%u %s streams %d expires %llus\n", d->peer_port,
			d->confirmed ? "confirmed" : "early", n,
			(unsigned long long)(d->expires > now ? (d->expires - now) / 1000 : 0));
	}
}

void dialog_dump_pinholes(FILE *f)
{
	static const char *const names[] = { "free", "new", "active", "retiring" };
	uint32_t pub = binding_public_ip();

	for (uint32_t i = 0; i < pool_used; i++) {
		struct dialog *d = &pool[i];
		if (!d->in_use)
			continue;
		for (int k = 0; k < DLG_MAX_STREAMS; k++) {
			struct stream *s = &d->st[k];
			if (s->state == ST_FREE)
				continue;
			ipstr(f, pub);
			fprintf(f, ":%u/%u -> ", s->b->pub_port, s->b->pub_port + 1);
			ipstr(f, s->priv_ip);
			fprintf(f, ":%u from ", s->priv_port);
			if (s->key)
				ipstr(f, s->key);
			else
				fputs("any", f);
			fprintf(f, " %s call %.*s\n", names[s->state], d->callid_len, d->callid);
		}
	}
}

void dialog_save(FILE *f, uint64_t now)
{
	for (uint32_t i = 0; i < pool_used; i++) {
		struct dialog *d = &pool[i];
		if (!d->in_use)
			continue;
		fputs("D ", f);
		for (int k = 0; k < d->callid_len; k++)
			fprintf(f, "%02x", (unsigned char)d->callid[k]);
		fprintf(f, " %08x %u %08x %u %u %llu %u %u %u %u %u %u %08x\n", d->phone_ip, d->phone_port,
			d->peer_ip, d->peer_port, d->confirmed,
			(unsigned long long)(d->expires > now ? d->expires - now : 0), d->offer_from,
			d->offer_cseq, d->answered_cseq, d->answered_from, d->invite_cseq,
			d->callid_full, d->callid_hash);
		for (int m = 0; m < SDP_MAX_MEDIA; m++)
			if (d->rip[m])
				fprintf(f, "R %d %08x %u\n", m, d->rip[m], d->rport[m]);
		for (int k = 0; k < DLG_MAX_STREAMS; k++) {
			struct stream *st = &d->st[k];
			if (st->state == ST_FREE)
				continue;
			fprintf(f, "S %08x %u %u %u %u %08x %08x %u\n", st->priv_ip, st->priv_port,
				st->b->pub_port, st->state, st->mindex, st->key, st->rip, st->rport);
		}
	}
}

static struct dialog *restoring;

int dialog_restore_line(const char *line, uint64_t now)
{
	if (line[0] == 'D') {
		char hex[2 * DLG_CALLID_MAX + 1];
		uint8_t cid[DLG_CALLID_MAX];
		unsigned pip, pport, rip, rport, conf, of, oc, ac, af, ic, full, fh;
		unsigned long long left;
		restoring = NULL;
		if (sscanf(line, "D %128s %x %u %x %u %u %llu %u %u %u %u %u %u %x", hex, &pip, &pport, &rip,
			   &rport, &conf, &left, &of, &oc, &ac, &af, &ic, &full, &fh) != 14 ||
		    pport > 65535 || rport > 65535)
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
		struct binding *sb = binding_get(pip, (uint16_t)pport, BIND_SIG, 0, now);
		struct dialog *d = dialog_create(cid, (uint32_t)n, pip, (uint16_t)pport, rip, (uint16_t)rport, sb, now);
		if (!d)
			return -1;
		d->confirmed = conf != 0;
		d->expires = now + left;
		d->offer_from = (uint8_t)(of <= SIDE_REMOTE ? of : SIDE_NONE);
		d->offer_cseq = oc;
		d->answered_cseq = ac;
		d->answered_from = (uint8_t)(af <= SIDE_REMOTE ? af : SIDE_NONE);
		d->invite_cseq = ic;
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
		unsigned ip, port;
		if (sscanf(line, "R %d %x %u", &m, &ip, &port) != 3 || m < 0 || m >= SDP_MAX_MEDIA || port > 65535)
			return -1;
		restoring->rip[m] = ip;
		restoring->rport[m] = (uint16_t)port;
		return 0;
	}
	if (line[0] == 'S') {
		unsigned ip, port, pub, state, mi, key, rip, rport;
		if (sscanf(line, "S %x %u %u %u %u %x %x %u", &ip, &port, &pub, &state, &mi, &key, &rip, &rport) != 8 ||
		    port == 0 || port >= 65535 || pub > 65535 || rport > 65535 || mi >= SDP_MAX_MEDIA ||
		    state < ST_NEW || state > ST_RETIRING)
			return -1;
		struct stream *st = NULL;
		for (int k = 0; k < DLG_MAX_STREAMS && !st; k++)
			if (restoring->st[k].state == ST_FREE)
				st = &restoring->st[k];
		struct binding *b = st ? binding_get(ip, (uint16_t)port, BIND_MEDIA, (uint16_t)pub, now) : NULL;
		if (!b)
			return -1;
		binding_ref(b);
		st->b = b;
		st->priv_ip = ip;
		st->priv_port = (uint16_t)port;
		st->state = (uint8_t)state;
		st->mindex = (uint8_t)mi;
		st->key = key;
		st->rip = rip;
		st->rport = (uint16_t)rport;
		stream_ref_key(st, key);
		if (restoring->sigb)
			restoring->sigb->pinholes++;
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
			const struct stream *s = &d->st[k];
			if (s->state == ST_FREE)
				continue;
			struct dialog_stream_view *o = &v->st[v->n_streams++];
			o->mindex = s->mindex;
			o->state = s->state;
			o->priv_ip = s->priv_ip;
			o->priv_port = s->priv_port;
			o->pub_port = s->b ? s->b->pub_port : 0;
			o->allowed_src = s->key;
			o->remote_ip = s->rip;
			o->remote_port = s->rport;
		}
		return 1;
	}
	return 0;
}

uint32_t dialog_slot(const struct dialog *d)
{
	return (uint32_t)(d - pool);
}
