#include "alg.h"

#include <stdio.h>
#include <string.h>

#include "binding.h"
#include "calllog.h"
#include "trace.h"
#include "conf.h"
#include "ct.h"
#include "dialog.h"
#include "edit.h"
#include "fastpath.h"
#include "log.h"
#include "nat66.h"
#include "pkt.h"
#include "sdp.h"
#include "siphash.h"
#include "sipmsg.h"
#include "stats.h"

static const struct conf *cf;
static uint32_t pub_ip;
/* wan.masquerade6: the WAN's IPv6 address (alg_set_public(6, ...)), as text
 * bare (SDP, received=) and bracketed (URI hosts, Via sent-by). */
static struct addr pub6;
static int has_pub6;
static char pub6_str[ADDR_STRLEN], pub6_br[ADDR_STRLEN];
static uint32_t pub6_len, pub6_brlen;
/* An outbound message named an address of a family the WAN has no public
 * address for: nothing true can be written, it is dropped. */
static int no_pub_fam;
static char pub_str[16];
static uint32_t pub_len;
/* Earlier public addresses, one history per family ([0] IPv4, the one
 * the fast path gets too; [1] IPv6, wan.masquerade6): an inbound message
 * of a dialog that began before a change still carries the old one in its
 * Call-ID, From, To. Newest first, then :: (free); never the current
 * address, never one address twice. */
#define PUB_OLD_MAX 4
/* A second sweep of the old address's flows, once what was in flight at
 * the change (queued, or conntracked before the first sweep) has passed. */
#define PUB_SWEEP_MS 1000
static struct pub_hist {
	struct addr old[PUB_OLD_MAX];
	struct addr sweep;     /* swept again at sweep_at; :: none */
	uint64_t sweep_at;
} hist[2];

/* Our public address now (not an earlier one), of a's family. */
static int is_cur_pub(const struct addr *a)
{
	if (!addr_is_v4(a))
		return has_pub6 && addr_eq(a, &pub6);
	return pub_ip && addr_get_v4(a) == pub_ip;
}

/* Our public address now or an earlier one of the same family. The
 * history is read only after the current address did not match, for the
 * few literals of an inbound Call-ID, From, To. */
static int is_pub(const struct addr *a)
{
	if (is_cur_pub(a))
		return 1;
	if (addr_is_any(a))
		return 0;
	const struct pub_hist *h = &hist[!addr_is_v4(a)];
	for (int i = 0; i < PUB_OLD_MAX; i++)
		if (addr_eq(&h->old[i], a))
			return 1;
	return 0;
}

/* Per-source budget for requests that create state (new calls,
 * registrations, anything outside a dialog): a token bucket per source
 * address in a fixed table; a new source takes over its slot with a full
 * bucket, so the table never grows and a flood cannot starve it.
 *
 * The budget is only enforced while the daemon falls behind (see
 * alg_queue_burst): a PBX trunk may send thousands of INVITEs a second
 * through a router that keeps up, and refusing them then protects nobody
 * (issue 8: 23,651 of 40,000 calls failed at 2000 calls/s). When the queue
 * backs up, the heaviest sources are the ones throttled, so the others'
 * messages still get through. The buckets are kept filling all along, so a
 * source's budget is right the moment the limit applies. */
#define RL_SLOTS 4096
static struct rl_slot {
	struct addr ip;
	uint32_t milli;   /* tokens x 1000 */
	uint64_t last;
} rl_tab[RL_SLOTS];

/* Falling behind: every read from the queue came back full for at least
 * BEHIND_MS (and BEHIND_BURSTS reads), so a backlog is not draining, or the
 * kernel dropped queued packets (ENOBUFS). A short stall (the CPU taken by
 * something else for a few tens of ms) drains in a few full reads and is
 * not a sign: throttling a trunk then would turn one stall into
 * retransmissions (measured: a 2000 calls/s trunk on a busy 2-CPU box lost
 * 336 of 40,000 calls with a 4-read trigger). The state lasts
 * BEHIND_HOLD_MS after the last sign. */
#define BEHIND_BURSTS 4
#define BEHIND_MS 100
#define BEHIND_HOLD_MS 1000
static uint64_t behind_until, last_enobufs, full_since;
static uint32_t full_run;

void alg_queue_burst(int n, int max, uint64_t now)
{
	int sign = 0;

	if (n >= max && max > 0) {
		if (full_run++ == 0)
			full_since = now;
		if (full_run >= BEHIND_BURSTS && now - full_since >= BEHIND_MS)
			sign = 1;
	} else {
		full_run = 0;
	}
	if (stats[ST_queue_enobufs] != last_enobufs) {
		last_enobufs = stats[ST_queue_enobufs];
		sign = 1;
	}
	if (sign) {
		if (now >= behind_until) {
			STAT_INC(queue_behind);
			LOG_RL(LOG_LVL_WARN, "falling behind (%s): limits.messages_per_second_per_source "
			       "(%u) applies to new requests", full_run >= BEHIND_BURSTS ? "queue backlog" :
			       "queue overflow, ENOBUFS", cf->rate_per_source);
		}
		behind_until = now + BEHIND_HOLD_MS;
	}
}

static int alg_behind(uint64_t now) { return now < behind_until; }

static int rl_allow(const struct addr *ip, uint64_t now)
{
	uint64_t rate = cf->rate_per_source, cap = rate * 1000u;
	struct rl_slot *r = &rl_tab[addr_hash(ip) & (RL_SLOTS - 1)];

	if (!rate)
		return 1;
	if (!addr_eq(&r->ip, ip)) {
		r->ip = *ip;
		r->milli = (uint32_t)(cap > 0xffffffffu ? 0xffffffffu : cap);
		r->last = now;
	}
	uint64_t t = r->milli + (now - r->last) * rate;
	r->milli = (uint32_t)(t > cap ? cap : t);
	r->last = now;
	if (r->milli < 1000)
		return 0;
	r->milli -= 1000;
	return 1;
}

/* Per-packet scratch: static, so the hot path allocates nothing. */
static struct sip_msg msg;
/* This datagram carried octets after its message: rewrite the message so
 * nothing private leaves, but let it open nothing (NAT Slipstreaming
 * hides its payload behind a first message). */
static int no_new_state;
static struct edit_list ed;
static struct sdp sdpv;
/* The operator's view (calllog): the dialog the current message belongs
 * to, and whether it came from outside lan.networks. Set by the policy,
 * read by alg_packet() after it. */
static struct dialog *cur_dlg;
static int cur_not_lan, cur_parse_ok, cur_outbound;

/* The IPv4 NAT below holds addresses as host-order uint32_t (binding,
 * nftmap, the bpf fast path are v4-only: docs/ipv6.md); this is where the
 * message's struct addr meets it. */
static int ipfmt(char *s, size_t n, uint32_t ip)
{
	struct addr a = addr_v4(ip);
	(void)n; /* every caller's buffer holds 16: a dotted quad */
	return (int)edit_fmt_addr(s, &a, 0);
}

/* A datagram's 5-tuple on the NAT path: IPv4, or IPv6 of a
 * wan.masquerade6 phone (the same code, the family from the address). */
struct udpn {
	struct addr sa, da;
	uint16_t sport, dport;
};

/* An address the router's NAT translates: an IPv4 LAN host, or an IPv6
 * host of a masqueraded prefix. */
static int nat_lan(const struct addr *a)
{
	return addr_is_v4(a) ? conf_is_lan(cf, a) : conf_is_masq6(cf, a);
}

/* Our public address for a's family as text: bare (SDP, received=) or
 * bracketed (URI host, Via sent-by). NULL when the WAN has none of that
 * family; the message is then dropped (no_pub_fam). */
static const char *pub_text(const struct addr *a, int brackets, uint32_t *n)
{
	if (addr_is_v4(a)) {
		if (!pub_ip) {
			no_pub_fam = 1;
			return NULL;
		}
		*n = pub_len;
		return pub_str;
	}
	if (!has_pub6) {
		no_pub_fam = 1;
		return NULL;
	}
	*n = brackets ? pub6_brlen : pub6_len;
	return brackets ? pub6_br : pub6_str;
}

/* Replace span [off, len) by the public address of a's family. */
static void put_pub_addr(uint32_t off, uint32_t len, const struct addr *a, int brackets)
{
	uint32_t n;
	const char *t = pub_text(a, brackets, &n);

	if (t)
		edit_add(&ed, off, len, t, n);
}

/* A host (Via sent-by, URI host) the NAT translates: 1 and *a. */
static int parse_host(const uint8_t *b, struct span s, struct addr *a)
{
	return sip_addr_parse(b, s, a) && !addr_is_any(a);
}

static void seen_reset(void);

static void set_public4(uint32_t ip, uint64_t now);
static void set_public6(const struct addr *a, uint64_t now);

int alg_init(const struct conf *c, const struct addr *pub4)
{
	cf = c;
	seen_reset();
	memset(rl_tab, 0, sizeof(rl_tab));
	memset(hist, 0, sizeof(hist));
	behind_until = 0;
	full_run = 0;
	full_since = 0;
	last_enobufs = stats[ST_queue_enobufs];
	pub_ip = pub4 && addr_is_v4(pub4) ? addr_get_v4(pub4) : 0;
	pub_len = (uint32_t)ipfmt(pub_str, sizeof(pub_str), pub_ip);
	has_pub6 = 0;
	struct addr p4 = addr_v4(pub_ip);
	if (binding_init(c, pub_ip ? &p4 : NULL) < 0 || dialog_init(c) < 0 || calllog_init(c->max_dialogs) < 0)
		return -1;
	return 0;
}

/* ---- WAN address change (called by wan.c, no I/O here) -------------- */

void alg_set_public(int family, const struct addr *a, uint64_t now)
{
	if (family == 6)
		set_public6(a, now);
	else
		set_public4(a && addr_is_v4(a) ? addr_get_v4(a) : 0, now);
}

const struct addr *alg_public(int family)
{
	static struct addr p4;

	if (family == 6)
		return has_pub6 ? &pub6 : NULL;
	p4 = addr_v4(pub_ip);
	return pub_ip ? &p4 : NULL;
}

/* The WAN address of h's family went from old to cur (NULL: none): old
 * goes first, cur leaves, the rest keep their order and close up. old was
 * current, so it was not in the history: an address that comes back and
 * goes again holds one slot, not two, and while it is back it holds none
 * (the oldest falls out only when PUB_OLD_MAX distinct addresses other
 * than the current one are newer). */
static void hist_push(struct pub_hist *h, const struct addr *old, const struct addr *cur)
{
	struct addr was[PUB_OLD_MAX];
	int n = 0;

	memcpy(was, h->old, sizeof(was));
	memset(h->old, 0, sizeof(h->old));
	if (old)
		h->old[n++] = *old;
	for (int i = 0; i < PUB_OLD_MAX && n < PUB_OLD_MAX; i++) {
		if (addr_is_any(&was[i]) || (cur && addr_eq(&was[i], cur)))
			continue;
		h->old[n++] = was[i];
	}
}

/* Flows NATed to the old address would keep it (NAT is decided only for a
 * new conntrack): phones' signalling and media would go on leaving from an
 * address the router no longer has. Deleted now, and again once what was
 * in flight has passed (alg_tick). */
static void hist_sweep(struct pub_hist *h, const struct addr *old, uint64_t now)
{
	ct_del_addr(*old);
	ct_mark_urgent();
	h->sweep = *old;
	h->sweep_at = now + PUB_SWEEP_MS;
}

static void set_public4(uint32_t ip, uint64_t now)
{
	uint32_t old = pub_ip;
	struct addr o = addr_v4(old), a = addr_v4(ip);
	uint32_t fp_old[PUB_OLD_MAX];

	if (ip == old)
		return;
	hist_push(&hist[0], old ? &o : NULL, ip ? &a : NULL);
	pub_ip = ip;
	pub_len = (uint32_t)ipfmt(pub_str, sizeof(pub_str), ip);
	for (int i = 0; i < PUB_OLD_MAX; i++)
		fp_old[i] = addr_get_v4(&hist[0].old[i]); /* a free slot (::) gives 0 */
	fastpath_set_old_public(fp_old, PUB_OLD_MAX);
	binding_set_public(0, ip ? &a : NULL);
	if (old)
		hist_sweep(&hist[0], &o, now);
}

static void set_public6(const struct addr *a, uint64_t now)
{
	struct addr old = pub6;
	int had = has_pub6;

	if (a && (addr_is_any(a) || addr_is_v4(a)))
		a = NULL;
	if ((a != NULL) == had && (!a || addr_eq(a, &old)))
		return;
	hist_push(&hist[1], had ? &old : NULL, a);
	has_pub6 = a != NULL;
	if (a) {
		pub6 = *a;
		pub6_len = addr_fmt(pub6_str, a, 0);
		pub6_brlen = addr_fmt(pub6_br, a, 1);
	}
	binding_set_public(1, a);
	if (had)
		hist_sweep(&hist[1], &old, now);
}

void alg_fini(void)
{
	calllog_fini();
	dialog_fini();
	binding_fini();
}

void alg_tick(uint64_t now)
{
	trace_active(now); /* switches an expired trace off on time */
	for (int f = 0; f < 2; f++) {
		struct pub_hist *h = &hist[f];
		if (addr_is_any(&h->sweep) || now < h->sweep_at)
			continue;
		if (!is_cur_pub(&h->sweep)) /* not back to it meanwhile */
			ct_del_addr(h->sweep);
		memset(&h->sweep, 0, sizeof(h->sweep));
	}
	dialog_expire(now);
	binding_expire(now);
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }

/* Next dotted-quad IPv4 literal in s at or after *pos: four runs of 1-3
 * digits joined by dots, not glued to more digits. Every start after a
 * non-digit is tried, so a literal hidden in a longer dotted run
 * ("1.192.168.1.10", "192.168.1.10...") is still found. */
static int next_ipv4(const uint8_t *b, struct span s, uint32_t *pos, struct span *hit, uint32_t *ip)
{
	uint32_t e = s.off + s.len;

	for (uint32_t p = s.off + *pos; p < e; p++) {
		if (!is_digit(b[p]) || (p > s.off && is_digit(b[p - 1])))
			continue;
		uint32_t q = p, v = 0;
		int oct;
		for (oct = 0; oct < 4; oct++) {
			uint32_t d = 0, o = 0;
			while (q < e && is_digit(b[q]) && d < 4) {
				o = o * 10 + (uint32_t)(b[q++] - '0');
				d++;
			}
			if (d == 0 || d > 3 || o > 255)
				break;
			v = v << 8 | o;
			if (oct < 3) {
				if (q >= e || b[q] != '.')
					break;
				q++;
			}
		}
		if (oct < 4 || (q < e && is_digit(b[q])))
			continue;
		*hit = (struct span){ p, q - p };
		*ip = v;
		*pos = q - s.off;
		return 1;
	}
	*pos = s.len;
	return 0;
}

/* The next address literal of one family in s: IPv4 dotted quads, or
 * IPv6 (nat66.h's finder: brackets not part of the hit). */
static int next_lit(int v6, const uint8_t *b, struct span s, uint32_t *pos, struct span *h, struct addr *a)
{
	uint32_t ip;

	if (v6)
		return nat66_next(b, s, pos, h, a);
	if (!next_ipv4(b, s, pos, h, &ip))
		return 0;
	*a = addr_v4(ip);
	return 1;
}

static int edited(uint32_t off, uint32_t len)
{
	for (int k = 0; k < ed.n; k++)
		if (off < ed.e[k].off + ed.e[k].len && ed.e[k].off < off + len)
			return 1;
	return 0;
}

/* Is [off, off+len) inside one edit (a Via or Contact host rewritten whole)? */
static int covered(uint32_t off, uint32_t len)
{
	for (int k = 0; k < ed.n; k++)
		if (ed.e[k].off <= off && off + len <= ed.e[k].off + ed.e[k].len)
			return 1;
	return 0;
}

/* The LAN address literals in s: replaced by the public address when
 * `scrub` is set (those not inside an edit already), else only looked for.
 * Returns 1 if there was at least one. */
static int lan_literals(const uint8_t *b, struct span s, int scrub)
{
	struct span h;
	struct addr a;
	int found = 0;

	/* IPv4 LAN literals, then (wan.masquerade6) IPv6 ones of a
	 * masqueraded prefix, whatever the message's own family */
	for (int v6 = 0; v6 <= (cf->n_masq6 ? 1 : 0); v6++) {
		uint32_t pos = 0;
		while (next_lit(v6, b, s, &pos, &h, &a)) {
			if (!nat_lan(&a))
				continue;
			if (!scrub)
				return 1;
			found = 1;
			if (!edited(h.off, h.len))
				put_pub_addr(h.off, h.len, &a, 0);
			else if (v6 && !covered(h.off, h.len))
				no_pub_fam = 1; /* "fd00:78::192.168.1.10": its prefix would leak */
		}
	}
	return found;
}

/* A dialog that began before the WAN address changed keeps the address
 * its Call-ID, From and To were given (RFC 3261 12.2: the Call-ID is part
 * of the dialog's identity; a changed one gets 481): the phone's literals
 * there become that address, of either family, not the current one. */
static void scrub_dialog_ids(const struct sip_msg *m, const struct dialog *d)
{
	const struct addr *was = d ? dialog_public(d) : NULL;
	char a[ADDR_STRLEN];
	uint32_t n;

	if (!was || addr_is_any(was) || is_cur_pub(was))
		return;
	n = addr_fmt(a, was, 0);
	int v6 = !addr_is_v4(was);
	const int idx[3] = { m->callid_idx, m->from_idx, m->to_idx };
	for (int k = 0; k < 3; k++) {
		struct span s = m->hdr[idx[k]].value;
		uint32_t pos = 0;
		struct span h;
		struct addr ip;

		while (next_lit(v6, m->buf, s, &pos, &h, &ip))
			if (nat_lan(&ip) && !edited(h.off, h.len))
				edit_add(&ed, h.off, h.len, a, n);
	}
}

/* Does this span name any LAN address? Used by the malformed-input policy. */
static int has_lan_literal(const uint8_t *b, struct span s) { return lan_literals(b, s, 0); }

/* Replace every LAN address literal in s by the public address. */
static void scrub_lan(const uint8_t *b, struct span s) { lan_literals(b, s, 1); }

/* Replace literals of the public address by the phone's (inbound). */
static void unscrub_pub(const uint8_t *b, struct span s, const struct addr *phone)
{
	char tmp[ADDR_STRLEN];
	uint32_t n = addr_fmt(tmp, phone, 0), pos = 0;
	int v6 = !addr_is_v4(phone);
	struct span h;
	struct addr a;

	while (next_lit(v6, b, s, &pos, &h, &a))
		if (is_pub(&a) && !edited(h.off, h.len))
			edit_add(&ed, h.off, h.len, tmp, n);
}

/* host[:port] text for a public binding; the port is written when the phone
 * wrote one or when the default (5060) would be wrong. */
static void put_public(struct span hostport, const struct addr *priv, int had_port, uint16_t pub_port)
{
	uint32_t n;
	const char *t = pub_text(priv, 1, &n);

	if (!t)
		return;
	if (had_port || pub_port != 5060)
		edit_add_hostport(&ed, hostport.off, hostport.len, t, n, pub_port);
	else
		edit_add(&ed, hostport.off, hostport.len, t, n);
}

static void put_private(struct span hostport, const struct addr *ip, int had_port, uint16_t port)
{
	char a[ADDR_STRLEN];

	uint32_t n = addr_fmt(a, ip, 1);
	edit_add_hostport(&ed, hostport.off, hostport.len, a, n, had_port || port != 5060 ? port : -1);
}

static int is_sdp_body(const struct sip_msg *m)
{
	struct span ct = sip_hdr_value(m, H_CTYPE);

	if (m->body_len == 0)
		return 0;
	if (ct.len == 0)
		return m->body_len >= 3 && memcmp(m->buf + m->body_off, "v=0", 3) == 0;
	if (ct.len < 15)
		return 0;
	struct span head = { ct.off, 15 };
	return span_ieq(m->buf, head, "application/sdp") &&
	       (ct.len == 15 || m->buf[ct.off + 15] == ';' || m->buf[ct.off + 15] == ' ');
}

static uint64_t parse_num(const uint8_t *b, struct span s, uint64_t dflt)
{
	uint64_t v = 0;

	if (s.len == 0 || s.len > 10)
		return dflt;
	for (uint32_t i = 0; i < s.len; i++) {
		if (!is_digit(b[s.off + i]))
			return dflt;
		v = v * 10 + (b[s.off + i] - '0');
	}
	return v;
}

/* The Call-ID as the phone knows it: inbound messages carry our public
 * address where the phone wrote its own. */
static uint32_t callid_key(const struct sip_msg *m, int inbound, const struct addr *phone, uint8_t *buf,
			   uint32_t cap)
{
	struct span c = m->hdr[m->callid_idx].value;
	const uint8_t *b = m->buf;
	uint32_t n = 0, p = c.off, pos = 0;
	struct span h;
	struct addr ip;
	char tmp[ADDR_STRLEN];
	int tl = (int)addr_fmt(tmp, phone, 0);

	while (inbound && next_lit(!addr_is_v4(phone), b, c, &pos, &h, &ip)) {
		if (!is_pub(&ip))
			continue;
		uint32_t k = h.off - p;
		if (n + k + (uint32_t)tl > cap)
			break;
		memcpy(buf + n, b + p, k);
		n += k;
		memcpy(buf + n, tmp, (size_t)tl);
		n += (uint32_t)tl;
		p = h.off + h.len;
	}
	uint32_t rest = c.off + c.len - p;
	if (n + rest > cap)
		rest = cap - n;
	memcpy(buf + n, b + p, rest);
	return n + rest;
}

/* ---- a dialog's lifecycle: one path for both directions and families -- */

struct dlg_step {
	struct dialog *d;
	int lost;         /* the message belongs to an early dialog that lost a fork */
	int close_after;  /* the message ends the dialog (once its SDP is handled) */
};

/* What one message does to its dialog (d: the one found, or NULL):
 * INVITE creates (a response never does: an unsolicited 200 with SDP must
 * not open pinholes), 2xx to INVITE confirms, a final >= 300 to the
 * initial INVITE or the 200 to BYE ends it, a failed re-offer rolls back;
 * forks as dialog_fork says. `create` makes the dialog when an INVITE has
 * none (it is not called for a message that may create no state). */
static void dialog_step(const struct sip_msg *m, int from_phone, struct dialog *d,
			struct dialog *(*create)(void *arg), void *arg, uint64_t now, struct dlg_step *o)
{
	const uint8_t *b = m->buf;
	/* The remote's tag: To in the phone's requests and in the remote's
	 * responses, From in the others. */
	struct span rtag = sip_tag(m, from_phone == m->is_request ? m->to_idx : m->from_idx);

	o->lost = d && dialog_fork(d, b + rtag.off, rtag.len);
	o->close_after = 0;
	if (m->is_request) {
		if (m->method == M_INVITE && !d && !no_new_state && (d = create(arg))) {
			dialog_set_invite_cseq(d, m->cseq);
			if (from_phone)
				dialog_set_caller(d, SIDE_PHONE);
		}
		if (d && m->method == M_BYE) {
			if (!o->lost)
				dialog_bye_seen(d, now);
		} else if (d) {
			dialog_touch(d, now);
		}
	} else if (d && !o->lost && (m->method == M_INVITE || m->method == M_UPDATE || m->method == M_PRACK)) {
		dialog_touch(d, now);
		if (m->method == M_INVITE && m->status >= 200 && m->status < 300)
			dialog_confirmed(d, now);
		if (m->status >= 300) {
			if (m->method == M_INVITE && !dialog_is_confirmed(d))
				o->close_after = 1;
			else
				dialog_offer_failed(d);
		}
	} else if (d && !o->lost && m->method == M_BYE && m->status >= 200) {
		o->close_after = 1;
	}
	o->d = d;
}

/* The arguments of a dialog_create() that dialog_step() may call. */
struct dlg_new {
	const uint8_t *key;
	uint32_t klen;
	const struct addr *phone, *peer;
	uint16_t pport, peer_port;
	struct binding *sigb;     /* the phone's signalling binding (IPv4 NAT), or NULL */
	uint16_t sig_port;        /* inbound: get one for the phone's port first */
	struct addr sig_ip;
	uint64_t now;
};

static struct dialog *dlg_new(void *arg)
{
	struct dlg_new *n = arg;

	if (n->sig_port) {
		n->sigb = binding_find(&n->sig_ip, n->sig_port);
		if (!n->sigb)
			n->sigb = binding_get(&n->sig_ip, n->sig_port, BIND_SIG, 0, n->now);
	}
	return dialog_create(n->key, n->klen, n->phone, n->pport, n->peer, n->peer_port, n->sigb, n->now);
}

/* ---- outbound: LAN -> WAN ------------------------------------------- */

static struct binding *sig_binding(const struct addr *ip, uint16_t port, const struct udpn *u,
				   struct binding *sigb, uint64_t now)
{
	if (port == u->sport && addr_eq(ip, &u->sa))
		return sigb;
	return binding_get(ip, port, BIND_SIG, 0, now);
}

static int out_via(const struct sip_msg *m, const struct udpn *u, struct binding *sigb, uint64_t now)
{
	const uint8_t *b = m->buf;
	struct span el;
	uint32_t pos = 0;
	struct addr ip;
	struct sip_via v;

	if (!sip_list_next(b, m->hdr[m->via_idx].value, &pos, &el) || sip_via_parse(b, el, &v) < 0)
		return -1;
	if (!parse_host(b, v.host, &ip) || !nat_lan(&ip))
		return 0;
	struct binding *x = sig_binding(&ip, v.port_num ? v.port_num : 5060, u, sigb, now);
	if (!x)
		return -1;
	binding_set_flag(x, BF_VIA_PORT, v.port.len != 0);
	put_public(v.hostport, &ip, v.port.len != 0, x->pub_port);
	return 0;
}

static int out_contacts(const struct sip_msg *m, const struct udpn *u, struct binding *sigb, uint64_t now)
{
	const uint8_t *b = m->buf;

	for (int i = 0; i < m->nhdr; i++) {
		if (m->hdr[i].id != H_CONTACT)
			continue;
		struct span el;
		uint32_t pos = 0;
		struct addr ip;
		while (sip_list_next(b, m->hdr[i].value, &pos, &el)) {
			struct sip_uri uri;
			if (el.len == 1 && b[el.off] == '*')
				continue;
			if (sip_uri_find(b, el, &uri) < 0) {
				/* unparsable: at least leave nothing private */
				scrub_lan(b, el);
				continue;
			}
			if (!parse_host(b, uri.host, &ip) || !nat_lan(&ip)) {
				scrub_lan(b, el);
				continue;
			}
			struct binding *x = sig_binding(&ip, uri.port_num ? uri.port_num : 5060, u, sigb, now);
			if (!x)
				return -1;
			binding_set_flag(x, BF_CONTACT_PORT, uri.port.len != 0);
			put_public(uri.hostport, &ip, uri.port.len != 0, x->pub_port);
			/* the rest of the element (params, display name) */
			struct span before = { el.off, uri.hostport.off - el.off };
			struct span after = { uri.hostport.off + uri.hostport.len,
					      el.off + el.len - (uri.hostport.off + uri.hostport.len) };
			scrub_lan(b, before);
			scrub_lan(b, after);
		}
	}
	return 0;
}

/* Rewrite the phone's SDP; open pinholes through the dialog when there is one. */
static int out_sdp(const struct sip_msg *m, struct dialog *d, const struct addr *sender, uint64_t now)
{
	const uint8_t *b = m->buf;
	struct span body = { m->body_off, m->body_len };
	uint16_t pub[SDP_MAX_MEDIA] = { 0 };

	if (sdp_parse(&sdpv, b, body) != SDP_OK) {
		STAT_INC(sdp_errors);
		LOG_RL(LOG_LVL_WARN, "malformed SDP from the LAN: addresses scrubbed, no pinhole");
		scrub_lan(b, body);
		return 0;
	}
	if (d)
		dialog_sdp(d, SIDE_PHONE, &sdpv, !m->is_request, m->cseq, sender, pub, now);
	/* IPv4 LAN addresses and IPv6 ones of a masqueraded prefix are
	 * translated: any other IN IP6 line of a mixed SDP names a routed
	 * address and leaves as it came (or NAT66's prefix edits take it). */
	if (sdpv.o_addr.len && nat_lan(&sdpv.o_ip))
		put_pub_addr(sdpv.o_addr.off, sdpv.o_addr.len, &sdpv.o_ip, 0);
	if (sdpv.c_addr.len && nat_lan(&sdpv.c_ip))
		put_pub_addr(sdpv.c_addr.off, sdpv.c_addr.len, &sdpv.c_ip, 0);
	for (int i = 0; i < sdpv.nmedia; i++) {
		struct sdp_media *md = &sdpv.m[i];
		int lan = nat_lan(&md->ip);
		if (md->c_addr.len && nat_lan(&md->c_ip))
			put_pub_addr(md->c_addr.off, md->c_addr.len, &md->c_ip, 0);
		/* c=0.0.0.0 (hold, RFC 3264 8.4): the address stays, the port
		 * is the stream's public one (dialog.c took it as the phone's) */
		if (d && pub[i] && addr_is_v4(&md->ip) && addr_is_any(&md->ip))
			lan = 1;
		if (!md->port_num || !lan)
			continue;
		if (d && pub[i]) {
			edit_add_num(&ed, md->port.off, md->port.len, pub[i]);
			/* a=rtcp (RFC 3605): RTP+1 is the pair's second port, the
			 * RTP port itself is multiplexing (RFC 5761), any other has
			 * its own public port (0: refused, left as written) */
			uint16_t rp = 0;
			if (md->rtcp_port.len && md->rtcp_num == md->port_num + 1)
				rp = (uint16_t)(pub[i] + 1);
			else if (md->rtcp_port.len && md->rtcp_num == md->port_num)
				rp = pub[i];
			else if (md->rtcp_port.len)
				rp = dialog_rtcp_public(d, i);
			if (rp)
				edit_add_num(&ed, md->rtcp_port.off, md->rtcp_port.len, rp);
		} else if (d) {
			/* refused (rules or limits): reject the stream rather than
			 * advertise a port nothing will reach */
			edit_add(&ed, md->port.off, md->port.len, "0", 1);
		}
		if (md->rtcp_addr.len && nat_lan(&md->rtcp_ip))
			put_pub_addr(md->rtcp_addr.off, md->rtcp_addr.len, &md->rtcp_ip, 0);
	}
	/* Any other LAN literal (a=candidate, m= lines past SDP_MAX_MEDIA...):
	 * nothing private leaves, even where we open no pinhole. */
	scrub_lan(b, body);
	return 0;
}

/* The flow is NATed to an address that is not ours now: the WAN address
 * changed while no daemon ran (or before a binding existed). Its conntrack
 * would keep the old source on every later datagram: delete it, so the
 * next one takes the map's new mapping. */
static void stale_nat(const struct udpn *u, const struct addr *nat)
{
	char a[ADDR_STRLEN], o[ADDR_STRLEN];

	LOG_RL(LOG_LVL_INFO, "flow %s:%u NATed to the old address %s: conntrack deleted",
	       (addr_fmt(a, &u->sa, 1), a), u->sport, (addr_fmt(o, nat, 0), o));
	ct_del_udp(u->sa, u->sport, u->da, u->dport);
	ct_mark_urgent();
}

static int handle_out(const struct sip_msg *m, const struct udpn *u, uint64_t now)
{
	const uint8_t *b = m->buf;
	struct binding *sigb = binding_find(&u->sa, u->sport);

	if (!sigb) {
		struct addr nat_a;
		uint16_t nat_port = 0, want = 0;
		/* A flow older than the daemon keeps the NAT the kernel gave it. */
		if (ct_lookup_snat(u->sa, u->sport, u->da, u->dport, &nat_a, &nat_port) == 1) {
			if (is_cur_pub(&nat_a))
				want = nat_port;
			else
				stale_nat(u, &nat_a);
		}
		sigb = binding_get(&u->sa, u->sport, BIND_SIG, want, now);
		if (!sigb)
			return -1;
		if (sigb->flags & BF_ADOPTED)
			STAT_INC(bindings_adopted);
	}
	if (sigb->refs == 0)
		sigb->idle_until = now + (uint64_t)cf->binding_idle_s * 1000u;

	if (m->is_request) {
		scrub_lan(b, m->ruri);
		if (out_via(m, u, sigb, now) < 0)
			return -1;
	}
	if (out_contacts(m, u, sigb, now) < 0)
		return -1;
	/* One lookup serves the Call-ID scrub and the dialog state below:
	 * nothing between them creates or ends a dialog. */
	struct span cid = m->hdr[m->callid_idx].value;
	uint32_t klen = cid.len;
	struct dialog *d = dialog_find(b + cid.off, klen, &u->sa);
	scrub_dialog_ids(m, d);
	/* Whatever the fields above did not cover (other headers, lower Vias,
	 * Via parameters, reason phrases, even header names): nothing private
	 * leaves the router. */
	scrub_lan(b, (struct span){ 0, m->body_off });

	/* dialog state */
	int sdp = is_sdp_body(m);
	struct dlg_new nw = { b + cid.off, klen, &u->sa, &u->da, u->sport, u->dport, sigb, 0, { { 0 } }, now };
	struct dlg_step st;
	dialog_step(m, 1, d, dlg_new, &nw, now, &st);
	d = st.d;
	int lost = st.lost, close_after = st.close_after;
	cur_dlg = d;

	if (m->body_len) {
		if (sdp && (!m->is_request || m->method == M_INVITE || m->method == M_ACK ||
			    m->method == M_UPDATE || m->method == M_PRACK || m->method == M_OPTIONS ||
			    m->method == M_MESSAGE || m->method == M_OTHER || m->method == M_INFO ||
			    m->method == M_NOTIFY || m->method == M_SUBSCRIBE || m->method == M_REFER ||
			    m->method == M_REGISTER || m->method == M_BYE || m->method == M_CANCEL))
			out_sdp(m, (m->status < 300 && !lost) ? d : NULL, &u->sa, now);
		else
			scrub_lan(b, (struct span){ m->body_off, m->body_len });
	}
	if (close_after && d)
		dialog_close(d, now);
	return 0;
}

/* ---- inbound: WAN -> LAN -------------------------------------------- */

/* A Contact naming one of our public signalling ports goes back to the
 * phone's own address only in a message to that phone (its registration's
 * 200 lists its own bindings). Another LAN phone's public Contact stays
 * public (issue 13, a hairpin call through the provider): mapped to that
 * phone's private address, the receiver's in-dialog requests would carry
 * it to the provider as a Request-URI that the outbound scrub can only
 * turn into the public address with the wrong port. */
/* Walk the Contact URIs of m that name our public address on a signalling
 * binding of `phone_ip`: each call gives the next one (NULL at the end).
 * Start with *hi = 0, *pos = 0. */
static struct binding *next_own_contact(const struct sip_msg *m, const struct addr *phone_ip, int *hi,
					uint32_t *pos, struct sip_uri *uri)
{
	const uint8_t *b = m->buf;

	for (; *hi < m->nhdr; (*hi)++, *pos = 0) {
		if (m->hdr[*hi].id != H_CONTACT)
			continue;
		struct span el;
		struct addr ip;
		while (sip_list_next(b, m->hdr[*hi].value, pos, &el)) {
			if (sip_uri_find(b, el, uri) < 0 || !parse_host(b, uri->host, &ip) || !is_cur_pub(&ip))
				continue;
			struct binding *x = binding_find_public(uri->port_num ? uri->port_num : 5060);
			if (x && x->kind == BIND_SIG && addr_eq(&x->priv_ip, phone_ip))
				return x;
		}
	}
	return NULL;
}

static void in_contacts(const struct sip_msg *m, const struct addr *phone_ip)
{
	struct sip_uri uri;
	struct binding *x;
	int hi = 0;
	uint32_t pos = 0;

	while ((x = next_own_contact(m, phone_ip, &hi, &pos, &uri)))
		put_private(uri.hostport, &x->priv_ip, (x->flags & BF_CONTACT_PORT) != 0, x->priv_port);
}

/* The expiry the registrar granted to our public Contact (RFC 3261 §10.3):
 * its expires parameter, else the Expires header; absent from the 200: 0. */
static uint32_t granted_expiry(const struct sip_msg *m, const struct binding *x)
{
	const uint8_t *b = m->buf;
	int listed = 0;
	uint64_t exp = parse_num(b, sip_hdr_value(m, H_EXPIRES), 3600);

	for (int i = 0; i < m->nhdr; i++) {
		if (m->hdr[i].id != H_CONTACT)
			continue;
		struct span el, v;
		uint32_t pos = 0;
		struct addr ip;
		while (sip_list_next(b, m->hdr[i].value, &pos, &el)) {
			struct sip_uri uri;
			if (sip_uri_find(b, el, &uri) < 0 || !parse_host(b, uri.host, &ip))
				continue;
			if (!is_cur_pub(&ip) || addr_is_v4(&ip) != addr_is_v4(&x->priv_ip) ||
			    (uri.port_num ? uri.port_num : 5060) != x->pub_port)
				continue;
			listed = 1;
			struct span rest = { uri.hostport.off, el.off + el.len - uri.hostport.off };
			const uint8_t *gt = memchr(b + rest.off, '>', rest.len);
			if (gt) {
				rest.len -= (uint32_t)(gt - (b + rest.off));
				rest.off = (uint32_t)(gt - b);
			}
			if (sip_param_find(b, rest, "expires", &v))
				return (uint32_t)parse_num(b, v, exp);
		}
	}
	if (!listed)
		return 0;
	return exp > 0xffffffffu ? 0xffffffffu : (uint32_t)exp;
}

/* A phone over TCP sends from an ephemeral port but names its listening
 * port in Contact (RFC 3261 18.2.1): that Contact has its own binding, and
 * it is the one the registrar calls back (a new connection, tcprelay.h).
 * Register every signalling binding of this phone the 200 lists, besides
 * the flow's own (`x`, done by the caller). */
static void register_contacts(const struct sip_msg *m, const struct udpn *u, const struct binding *x,
			      uint64_t now)
{
	struct sip_uri uri;
	struct binding *y;
	int hi = 0;
	uint32_t pos = 0;

	while ((y = next_own_contact(m, &u->da, &hi, &pos, &uri))) {
		if (y == x)
			continue;
		uint32_t exp = granted_expiry(m, y);
		if (exp > cf->register_max_s)
			exp = cf->register_max_s;
		binding_register(y, &u->sa, cf->inbound_src == CONF_INBOUND_ANY, exp, now);
	}
}

/* A binding of ours that a public host:port of this message names: the
 * address must be our current public one and of the binding's family. */
static struct binding *own_public(const struct addr *ip, uint16_t port)
{
	if (!is_cur_pub(ip))
		return NULL;
	struct binding *x = binding_find_public(port);
	if (!x || x->kind != BIND_SIG || addr_is_v4(&x->priv_ip) != addr_is_v4(ip))
		return NULL;
	return x;
}

static int handle_in(const struct sip_msg *m, const struct udpn *u, uint64_t now)
{
	const uint8_t *b = m->buf;
	struct addr ip;

	if (m->is_request) {
		struct sip_uri uri;
		struct binding *x;
		if (sip_uri_find(b, m->ruri, &uri) == 0 && parse_host(b, uri.host, &ip) &&
		    (x = own_public(&ip, uri.port_num ? uri.port_num : 5060)))
			put_private(uri.hostport, &x->priv_ip, (x->flags & BF_CONTACT_PORT) != 0, x->priv_port);
	} else {
		struct span el, pv;
		uint32_t pos = 0;
		struct sip_via v;
		struct binding *x;
		if (sip_list_next(b, m->hdr[m->via_idx].value, &pos, &el) && sip_via_parse(b, el, &v) == 0 &&
		    parse_host(b, v.host, &ip) && (x = own_public(&ip, v.port_num ? v.port_num : 5060))) {
			{
				char a[ADDR_STRLEN];
				uint32_t al = addr_fmt(a, &x->priv_ip, 0);
				put_private(v.hostport, &x->priv_ip, (x->flags & BF_VIA_PORT) != 0, x->priv_port);
				/* RFC 3581: received/rport name what the phone would see
				 * without the ALG; give it back its own view (RFC 5118
				 * 4.5: an IPv6 received= is bare). */
				if (sip_param_find(b, v.params, "received", &pv) && parse_host(b, pv, &ip) &&
				    is_cur_pub(&ip))
					edit_add(&ed, pv.off, pv.len, a, al);
				if (sip_param_find(b, v.params, "rport", &pv) && pv.len &&
				    parse_num(b, pv, 0) == x->pub_port)
					edit_add_num(&ed, pv.off, pv.len, x->priv_port);
			}
		}
	}
	in_contacts(m, &u->da);
	unscrub_pub(b, m->hdr[m->callid_idx].value, &u->da);
	unscrub_pub(b, m->hdr[m->from_idx].value, &u->da);
	unscrub_pub(b, m->hdr[m->to_idx].value, &u->da);

	/* static: a Call-ID may be as long as the datagram */
	static uint8_t key[66000];
	uint32_t klen = callid_key(m, 1, &u->da, key, sizeof(key));
	struct dialog *d = dialog_find(key, klen, &u->da);
	int sdp = is_sdp_body(m) && m->body_len;
	uint16_t pub[SDP_MAX_MEDIA];
	/* An early dialog that lost a forked INVITE (its late 2xx is ACKed and
	 * BYEd by the phone, RFC 3261 13.2.2.4) changes nothing. The phone's
	 * signalling binding is taken only when an INVITE creates a dialog. */
	struct dlg_new nw = { key, klen, &u->da, &u->sa, u->dport, u->sport, NULL, u->dport, u->da, now };
	struct dlg_step st;
	dialog_step(m, 0, d, dlg_new, &nw, now, &st);
	d = st.d;
	int lost = st.lost, close_after = st.close_after;

	if (!m->is_request && !(d && lost) && m->method == M_REGISTER && m->status >= 200 && m->status < 300) {
		struct binding *x = binding_find(&u->da, u->dport);
		if (x) {
			uint32_t exp = granted_expiry(m, x);
			if (exp > cf->register_max_s)
				exp = cf->register_max_s;
			binding_register(x, &u->sa, cf->inbound_src == CONF_INBOUND_ANY, exp, now);
		}
		register_contacts(m, u, x, now);
	}
	cur_dlg = d;
	if (d && !lost && sdp && m->status < 300) {
		if (sdp_parse(&sdpv, b, (struct span){ m->body_off, m->body_len }) == SDP_OK)
			dialog_sdp(d, SIDE_REMOTE, &sdpv, !m->is_request, m->cseq, &u->sa, pub, now);
		else
			STAT_INC(sdp_errors);
	}
	if (close_after && d)
		dialog_close(d, now);
	return 0;
}

/* ---- NAT66: the router's prefix translation written into the message -- */

/* The router's NAT66 (wan.nat66_*) translates the datagram's address; the
 * message must say the same. Outbound: every IPv6 literal of the LAN
 * prefix, anywhere in the message (Request-URI, Via sent-by and
 * received=, Contact, Call-ID, From, To, SDP o=, c=, a=rtcp...), becomes
 * its public image; the ports stay (the NAT keeps them). Inbound: the
 * public prefix maps back in the headers only, as the IPv4 path gives the
 * phone back its Request-URI, Via, Call-ID, From and To; the remote's SDP
 * is the remote's. The mapping is 1:1 and stateless (nat66.h): no binding,
 * and the same text comes back whichever message carries it. Edits that
 * would overlap one made already (an IPv4 span of a mixed message) are
 * skipped inbound; outbound such a literal cannot be translated whole and
 * the message is dropped (-1). Returns how many literals were rewritten. */
static int nat66_edits(const uint8_t *b, struct span s, int outbound)
{
	const struct conf_net *from = outbound ? &cf->nat66_lan : &cf->nat66_pub;
	const struct conf_net *to = outbound ? &cf->nat66_pub : &cf->nat66_lan;
	uint32_t pos = 0, n = 0;
	struct span h;
	struct addr a, m;
	char t[ADDR_STRLEN];

	while (nat66_next(b, s, &pos, &h, &a)) {
		if (!nat66_map(&from->net, &to->net, from->plen, &a, &m))
			continue;
		if (edited(h.off, h.len)) {
			/* "fd00:77::192.168.1.10": its IPv4 tail was translated
			 * already; what is left of the prefix would leak */
			if (outbound)
				return -1;
			continue;
		}
		uint32_t tl = addr_fmt(t, &m, 0);
		if (edit_add(&ed, h.off, h.len, t, tl) == 0)
			n++;
	}
	return (int)n;
}

/* Does s name an address of the NAT66 LAN prefix (it would leak)? */
static int has_nat66_lan(const uint8_t *b, struct span s)
{
	uint32_t pos = 0;
	struct span h;
	struct addr a, m;

	if (!conf_has_nat66(cf))
		return 0;
	while (nat66_next(b, s, &pos, &h, &a))
		if (nat66_map(&cf->nat66_lan.net, &cf->nat66_pub.net, cf->nat66_lan.plen, &a, &m))
			return 1;
	return 0;
}

/* A ULA source (fc00::/7, RFC 4193) to a global destination, leaving by
 * the WAN: no provider routes a ULA back, so something NATs it after us
 * (OpenWrt's masq6, ip6tables SNPT) and the message would carry the
 * private address out. Only what the daemon is told of rewrites it (the
 * prefix NAT66 wan.nat66_*, the masquerade wan.masquerade6); anything
 * else is dropped, fail closed, as IPv4 SIP is without a WAN address.
 * dir unknown: the addresses decide alone. */
static int ula_unnated(const struct pkt_udp *u, enum alg_dir dir)
{
	const uint8_t *s = u->saddr.b, *d = u->daddr.b;

	if (u->family != 6 || dir == ALG_DIR_IN || (s[0] & 0xfe) != 0xfc)
		return 0;
	if ((d[0] & 0xfe) == 0xfc || (d[0] == 0xfe && (d[1] & 0xc0) == 0x80))
		return 0; /* ULA to ULA, or link-local: not to the Internet */
	if (conf_is_masq6(cf, &u->saddr))
		return 0; /* masqueraded: translated as IPv4 is (wan.masquerade6) */
	return !(conf_has_nat66(cf) && addr_in_prefix(&u->saddr, &cf->nat66_lan.net, cf->nat66_lan.plen));
}

/* ---- routed IPv6: nothing rewritten, the call's pinholes tracked ------ */

/* Without NAT66 every byte leaves as it came (docs/ipv6.md); what the
 * daemon does is follow the dialog (dialog_step, as on the IPv4 path) so
 * that each IN IP6 stream gets its conntrack pinhole (dialog.c,
 * routed_sdp) and loses it with the call. No binding: nothing is NATed. */
static int handle_routed(const struct sip_msg *m, const struct pkt_udp *u, int outbound, uint64_t now)
{
	const uint8_t *b = m->buf;
	const struct addr *phone = outbound ? &u->saddr : &u->daddr;
	const struct addr *peer = outbound ? &u->daddr : &u->saddr;
	uint16_t pport = outbound ? u->sport : u->dport, peer_port = outbound ? u->dport : u->sport;
	struct span cid = m->hdr[m->callid_idx].value;
	const uint8_t *key = b + cid.off;
	uint32_t klen = cid.len;
	if (conf_has_nat66(cf)) {
		/* The Call-ID as the phone wrote it, whichever way the message
		 * goes: inbound it carries the public image of the phone's
		 * address (nat66_edits), canonical text both ways. static: a
		 * Call-ID may be as long as the datagram. */
		static uint8_t kbuf[66000];
		klen = nat66_map_text(b, cid, outbound ? &cf->nat66_lan.net : &cf->nat66_pub.net,
				      &cf->nat66_lan.net, cf->nat66_lan.plen, kbuf, sizeof(kbuf));
		key = kbuf;
	}
	struct dialog *d = dialog_find(key, klen, phone);
	struct dlg_new nw = { key, klen, phone, peer, pport, peer_port, NULL, 0, { { 0 } }, now };
	struct dlg_step st;
	dialog_step(m, outbound, d, dlg_new, &nw, now, &st);
	d = st.d;
	int lost = st.lost, close_after = st.close_after;
	cur_dlg = d;
	if (d && !lost && m->status < 300 && is_sdp_body(m)) {
		uint16_t pub[SDP_MAX_MEDIA];
		if (sdp_parse(&sdpv, b, (struct span){ m->body_off, m->body_len }) == SDP_OK)
			dialog_sdp(d, outbound ? SIDE_PHONE : SIDE_REMOTE, &sdpv, !m->is_request, m->cseq,
				   &u->saddr, pub, now);
		else
			STAT_INC(sdp_errors);
	}
	if (close_after && d)
		dialog_close(d, now);
	return 0;
}

/* ---- the one entry point ------------------------------------------- */

/* Set for the length of one alg_packet_framed call. */
static int framed;

static enum alg_verdict alg_policy(const uint8_t *ip, uint32_t len, uint8_t *out, uint32_t cap,
				   uint32_t *out_len, uint64_t now, enum alg_dir dir)
{
	struct pkt_udp u;
	int outbound;

	*out_len = 0;
	no_pub_fam = 0;
	if (pkt_parse_udp(ip, len, &u) < 0) {
		STAT_INC(not_sip);
		return ALG_ACCEPT;
	}
	if (!framed && !conf_is_sip_port(cf, u.sport) && !conf_is_sip_port(cf, u.dport))
		return ALG_ACCEPT;
	if (ula_unnated(&u, dir)) {
		char sa[ADDR_STRLEN];
		STAT_INC(drop_ula_out);
		LOG_RL(LOG_LVL_WARN, "SIP from %s:%u to the Internet dropped: a ULA leaves only through NAT66, and "
		       "neither wan.nat66_lan_prefix nor wan.masquerade6 covers it (a NAT the daemon does not "
		       "know of would leave the ULA in the message: docs/ipv6.md)", (addr_fmt(sa, &u.saddr, 1), sa),
		       u.sport);
		return ALG_DROP;
	}
	int lan_s = conf_is_lan(cf, &u.saddr), lan_d = conf_is_lan(cf, &u.daddr);
	if (!addr_is_v4(&u.saddr) && !conf_has_lan_v6(cf) && dir != ALG_DIR_UNKNOWN) {
		/* routed IPv6, no prefix configured: the side away from the WAN */
		lan_s = dir == ALG_DIR_OUT;
		lan_d = dir == ALG_DIR_IN;
	}
	if (lan_s && !lan_d)
		outbound = 1;
	else if (lan_d && !lan_s)
		outbound = 0;
	else {
		/* not between the LAN and the WAN: not ours. Neither end on the
		 * LAN: most likely a phone outside lan.networks (the diversion
		 * queues all SIP through the WAN interface). */
		if (!lan_s && !lan_d) {
			STAT_INC(not_lan);
			cur_not_lan = 1;
		}
		return ALG_ACCEPT;
	}
	cur_outbound = outbound;
	if (outbound)
		STAT_INC(pkts_out_lan);
	else
		STAT_INC(pkts_in_wan);
	/* the addresses as text, for log lines only (formatted when one is written) */
	char sa[ADDR_STRLEN], da[ADDR_STRLEN];
#define FMT_SA (addr_fmt(sa, &u.saddr, 1), sa)
#define FMT_DA (addr_fmt(da, &u.daddr, 1), da)
	/* IPv6 of a masqueraded prefix takes the NAT path with IPv4 */
	int nat6 = u.family == 6 && conf_is_masq6(cf, outbound ? &u.saddr : &u.daddr);
	if (u.family == 6)
		STAT_INC(sip_ipv6_rx);
	if (nat6 && outbound && !has_pub6) {
		STAT_INC(drop_no_wan_address);
		LOG_RL(LOG_LVL_WARN, "LAN SIP from %s:%u dropped: the WAN interface has no global IPv6 address "
		       "to masquerade it behind (wan.masquerade6)", FMT_SA, u.sport);
		return ALG_DROP;
	}
	if (u.family == 6) {
		/* routed, NAT66 or masquerade6: below */
	} else if (outbound && !pub_ip) {
		/* No WAN address (PPPoE down, DHCP lost): nothing true can be
		 * written into the message, and forwarding it would leak the
		 * private addresses or name a stale one. The phone retransmits.
		 * (IPv6 is routed: nothing of it is translated.) */
		STAT_INC(drop_no_wan_address);
		LOG_RL(LOG_LVL_WARN, "LAN SIP from %s:%u dropped: the WAN interface has no IPv4 address",
		       FMT_SA, u.sport);
		return ALG_DROP;
	}

	if (sip_is_keepalive(u.payload, u.plen)) {
		STAT_INC(keepalives);
		return ALG_ACCEPT;
	}
	int rc = sip_parse(&msg, u.payload, u.plen);
	cur_parse_ok = rc == SIP_OK;
	if (rc == SIP_OK && msg.trailing) {
		/* RFC 3261 18.3: octets after Content-Length are not part of the
		 * message. They leave no more (a second message smuggled behind
		 * the first, NAT Slipstreaming style, is neither acted on nor
		 * forwarded with whatever it names). */
		STAT_INC(trailing_dropped);
		msg.len -= msg.trailing;
	}
	no_new_state = msg.trailing != 0;
	if (rc != SIP_OK) {
		struct span all = { 0, u.plen };
		if (rc == SIP_E_NOTSIP)
			STAT_INC(not_sip);
		else
			STAT_INC(parse_errors);
		char head[49];
		uint32_t hl = u.plen < sizeof(head) - 1 ? u.plen : (uint32_t)sizeof(head) - 1;
		for (uint32_t i = 0; i < hl; i++)
			head[i] = u.payload[i] >= 0x20 && u.payload[i] < 0x7f ? (char)u.payload[i] : '.';
		head[hl] = 0;
		LOG_RL(LOG_LVL_WARN, "%s datagram %s:%u -> %s:%u: %s (\"%s\")",
		       outbound ? "LAN" : "WAN", FMT_SA, u.sport, FMT_DA, u.dport, sip_strerror(rc), head);
		if (outbound && (has_lan_literal(u.payload, all) || has_nat66_lan(u.payload, all))) {
			STAT_INC(drop_malformed_out);
			return ALG_DROP;
		}
		return ALG_ACCEPT;
	}
	if (msg.is_request)
		STAT_INC(requests);
	else
		STAT_INC(responses);
	if (msg.is_request && msg.method != M_ACK && msg.method != M_CANCEL &&
	    sip_tag(&msg, msg.to_idx).len == 0 && !rl_allow(&u.saddr, now) && alg_behind(now)) {
		STAT_INC(drop_rate);
		LOG_RL(LOG_LVL_WARN, "%s %s:%u: request dropped: daemon falling behind and the source "
		       "is over limits.messages_per_second_per_source (%u)", outbound ? "phone" : "WAN host",
		       FMT_SA, u.sport, cf->rate_per_source);
		return ALG_DROP;
	}
	if (msg.is_request && msg.method == M_REGISTER)
		STAT_INC(registers);

	edit_init(&ed);
	if (u.family == 6 && !nat6) {
		/* IPv6: the dialog and its conntrack pinholes; without NAT66 no
		 * edit, with it (wan.nat66_*) the prefix edits below. Octets after
		 * Content-Length are still cut below, as for IPv4. */
		rc = handle_routed(&msg, &u, outbound, now);
	} else {
		struct udpn un = { u.saddr, u.daddr, u.sport, u.dport };
		rc = outbound ? handle_out(&msg, &un, now) : handle_in(&msg, &un, now);
	}
	if (rc >= 0 && outbound && no_pub_fam) {
		/* an address of a family the WAN has no public address for
		 * (an IPv6 masquerade line with no global IPv6 on the WAN):
		 * nothing true can be written in its place */
		STAT_INC(drop_no_wan_address);
		LOG_RL(LOG_LVL_WARN, "LAN SIP from %s:%u dropped: it names a private address of a family the "
		       "WAN interface has no public address for", FMT_SA, u.sport);
		return ALG_DROP;
	}
	if (rc >= 0 && conf_has_nat66(cf)) {
		/* Both families: an IPv4 message's SDP may offer an IPv6 stream
		 * of the LAN prefix (dual stack), and its pinhole is NATed too. */
		int n = nat66_edits(msg.buf, (struct span){ 0, outbound ? msg.len : msg.body_off }, outbound);
		if (n < 0) {
			LOG_RL(LOG_LVL_WARN, "LAN SIP from %s:%u dropped: a NAT66 address overlaps an IPv4 one",
			       FMT_SA, u.sport);
			STAT_INC(drop_malformed_out);
			return ALG_DROP;
		}
		if (outbound)
			STAT_ADD(nat66_out, (uint64_t)n);
		else
			STAT_ADD(nat66_in, (uint64_t)n);
	}
	if (rc < 0) {
		if (outbound) {
			STAT_INC(drop_no_binding);
			return ALG_DROP;
		}
		return ALG_ACCEPT;
	}
	if (ed.n == 0 && !msg.trailing)
		return ALG_ACCEPT;

	/* Content-Length follows the body (long and compact forms alike). */
	if (msg.clen_idx >= 0) {
		int64_t nb = (int64_t)msg.body_len + edit_delta(&ed, msg.body_off, msg.body_len);
		struct span cl = msg.hdr[msg.clen_idx].value;
		if (nb != msg.body_len && nb >= 0 && nb <= UINT32_MAX)
			edit_add_num(&ed, cl.off, cl.len, (uint32_t)nb);
		else if (nb != msg.body_len)
			edit_addf(&ed, cl.off, cl.len, "%lld", (long long)nb);
	}
	uint8_t *pl = out + u.l3len + 8;
	if (cap < u.l3len + 8) {
		STAT_INC(pkts_dropped);
		return ALG_DROP;
	}
	int64_t n = edit_apply(&ed, u.payload, msg.len, pl, cap - u.l3len - 8);
	int32_t tot = n < 0 ? -1 : pkt_build(ip, &u, pl, (uint32_t)n, out, cap);
	if (tot < 0) {
		LOG_RL(LOG_LVL_WARN, "rewritten message does not fit: dropped");
		if (outbound) {
			STAT_INC(drop_malformed_out);
			return ALG_DROP;
		}
		return ALG_ACCEPT;
	}
	*out_len = (uint32_t)tot;
	STAT_INC(pkts_rewritten);
	return ALG_ACCEPT;
}

/* ---- the operator's view: what happened to this message, per call ---- */

/* The counters that say why a message was dropped or a stream refused, in
 * the order they are checked, with the words sipalgctl call shows. */
static const struct { enum stat_id id; const char *why; } reasons[] = {
	{ ST_drop_rate, "over limits.messages_per_second_per_source (drop_rate)" },
	{ ST_drop_no_binding, "no public port could be allocated (drop_no_binding)" },
	{ ST_drop_malformed_out, "malformed LAN message that would leak a LAN address (drop_malformed_out)" },
	{ ST_drop_limit, "a limits.* bound was hit: table full or stream refused (drop_limit)" },
	{ ST_pinholes_refused, "a stream refused: the SDP asked for what the rules forbid, port 0 written (pinholes_refused)" },
	{ ST_trailing_dropped, "octets after Content-Length cut off (trailing_dropped)" },
	{ ST_not_lan, "source outside lan.networks: passed untouched (not_lan)" },
};
#define N_REASONS (sizeof(reasons) / sizeof(reasons[0]))

/* ---- our own rewrite, queued again ----------------------------------------
 *
 * The kernel resumes a packet we accepted at the hook entry after the one
 * that queued it, counted by position in the hook list as it is *now*
 * (nf_reinject: hook_index + 1). A base chain registered on the forward hook
 * at the diversion's priority or before it (another table at priority
 * mangle: fw4's mangle_forward, a reloaded ruleset) while the packet waits
 * for our verdict shifts the list by one, and the diversion's rule runs
 * again on the datagram we already rewrote. Our own TCP relay table keeps
 * out of the way (priority mangle + 1, tproxy.c); the operator's reload
 * cannot be kept out. A second pass sees our public address everywhere:
 * a new dialog keyed by the public Call-ID, a refused pinhole.
 *
 * So the daemon remembers what it sent: a hash of each rewritten datagram's
 * payload, addresses and ports, for a few seconds, in a direct-mapped table
 * (fixed, nothing allocated; a slot overwritten only costs the old
 * behaviour). A datagram that is byte for byte one we produced is accepted
 * as it is and creates no state. That is not a bypass: the bytes are the
 * ones we vetted (LAN -> WAN: already scrubbed; WAN -> LAN: bound for the
 * LAN), so nothing private can leave through it, and no mark or rule is
 * trusted for it. Only datagrams we changed are remembered, so a phone's
 * retransmission (its own bytes) is never taken for ours. */
#define SEEN_SLOTS 4096
#define SEEN_MS 5000
/* slot by addresses, ports and length (cheap: every queued datagram is
 * looked up); the payload's hash only where those match */
static struct { uint64_t key, body, until; } seen[SEEN_SLOTS];
static uint64_t seen_any_until; /* no live slot after this: skip the lookup */

static void seen_reset(void)
{
	memset(seen, 0, sizeof(seen));
	seen_any_until = 0;
}

static uint64_t seen_key(const struct pkt_udp *u)
{
	struct { uint8_t s[16], d[16]; uint16_t sp, dp; uint32_t plen; } k;

	memcpy(k.s, u->saddr.b, 16);
	memcpy(k.d, u->daddr.b, 16);
	k.sp = u->sport;
	k.dp = u->dport;
	k.plen = u->plen;
	return siphash_table(&k, sizeof(k)) | 1; /* 0 marks an empty slot */
}

static int seen_lookup(const uint8_t *ip, uint32_t len, uint64_t now)
{
	struct pkt_udp u;

	if (now >= seen_any_until || pkt_parse_udp(ip, len, &u) < 0 || u.plen == 0)
		return 0;
	uint64_t k = seen_key(&u);
	uint32_t i = (uint32_t)(k >> 32) & (SEEN_SLOTS - 1);
	if (seen[i].key != k || now >= seen[i].until || seen[i].body != siphash_table(u.payload, u.plen))
		return 0;
	seen[i].key = 0; /* once: a third pass is processed as any datagram */
	return 1;
}

static void seen_note(const uint8_t *in, uint32_t in_len, const uint8_t *out, uint32_t out_len, uint64_t now)
{
	struct pkt_udp u, o;

	if (pkt_parse_udp(out, out_len, &o) < 0 || o.plen == 0)
		return;
	if (pkt_parse_udp(in, in_len, &u) == 0 && u.plen == o.plen && !memcmp(u.payload, o.payload, o.plen))
		return; /* unchanged: a retransmission would look the same */
	uint64_t k = seen_key(&o);
	uint32_t i = (uint32_t)(k >> 32) & (SEEN_SLOTS - 1);
	seen[i].key = k;
	seen[i].body = siphash_table(o.payload, o.plen);
	seen[i].until = now + SEEN_MS;
	seen_any_until = seen[i].until;
}

enum alg_verdict alg_packet(const uint8_t *ip, uint32_t len, uint8_t *out, uint32_t cap,
			    uint32_t *out_len, uint64_t now)
{
	return alg_packet_dir(ip, len, out, cap, out_len, now, ALG_DIR_UNKNOWN);
}

/* A registrar's new connection to a Contact on port 5090 comes from an
 * ephemeral port: with the port test, neither its requests (Request-URI
 * left public) nor the phone's answers on it (private Contact, SDP) were
 * looked at, and the answers left with the LAN's addresses
 * (tests/netns/newuser.sh). */
enum alg_verdict alg_packet_framed(const uint8_t *ip, uint32_t len, uint8_t *out, uint32_t cap,
				   uint32_t *out_len, uint64_t now, enum alg_dir dir)
{
	framed = 1;
	enum alg_verdict v = alg_packet_dir(ip, len, out, cap, out_len, now, dir);
	framed = 0;
	return v;
}

enum alg_verdict alg_packet_dir(const uint8_t *ip, uint32_t len, uint8_t *out, uint32_t cap,
				uint32_t *out_len, uint64_t now, enum alg_dir dir)
{
	uint64_t before[N_REASONS];
	const char *why = NULL;
	struct pkt_udp u;

	if (seen_lookup(ip, len, now)) {
		STAT_INC(sip_requeued);
		LOG_RL(LOG_LVL_DEBUG, "alg: a datagram we rewrote came back through the queue "
		       "(a base chain was added before the diversion while it waited): passed as it is");
		*out_len = 0;
		return ALG_ACCEPT;
	}
	for (size_t i = 0; i < N_REASONS; i++)
		before[i] = stats[reasons[i].id];
	cur_dlg = NULL;
	cur_not_lan = 0;
	cur_parse_ok = 0;
	cur_outbound = 0;
	enum alg_verdict v = alg_policy(ip, len, out, cap, out_len, now, dir);
	for (size_t i = 0; i < N_REASONS && !why; i++)
		if (stats[reasons[i].id] != before[i])
			why = reasons[i].why;
	if (trace_active(now) && pkt_parse_udp(ip, len, &u) == 0) {
		struct span c = cur_parse_ok && msg.callid_idx >= 0 ? msg.hdr[msg.callid_idx].value
								     : (struct span){ 0, 0 };
		if (trace_match(&u.saddr, &u.daddr, c.len ? u.payload + c.off : NULL, c.len)) {
			uint32_t h = u.l3len + 8;
			int rw = *out_len > h;
			trace_log(now, u.payload, u.plen, rw ? out + h : NULL, rw ? *out_len - h : 0,
				  v == ALG_DROP ? (cf->observe ? "would drop (observe)" : "DROPPED")
				  : rw && cf->observe ? "accepted, would rewrite (observe: sent as it came)"
				  : "accepted");
		}
	}
	/* mode: observe. Everything above ran (state, would-be edits and
	 * elements, counters); the datagram leaves as it came. */
	int would_rewrite = *out_len > 0;
	enum alg_verdict would = v;
	if (cf->observe) {
		if (would_rewrite || v == ALG_DROP)
			STAT_INC(observed_changes);
		*out_len = 0;
		v = ALG_ACCEPT;
	}
	if (v == ALG_ACCEPT && *out_len)
		seen_note(ip, len, out, *out_len, now);
	/* Without a dialog, noted only when there is something to tell: a drop,
	 * a phone outside lan.networks, or a reason (a call refused at a
	 * limits.* bound leaves rewritten but with no dialog to record it). */
	if (!cur_dlg && would != ALG_DROP && !cur_not_lan && !why)
		return v;
	if (pkt_parse_udp(ip, len, &u) < 0)
		return v;
	if (cur_not_lan)
		cur_parse_ok = sip_parse(&msg, u.payload, u.plen) == SIP_OK;
	struct calllog_msg cm = {
		.payload = u.payload, .len = u.plen, .line_len = 0,
		.ed = cur_dlg && would_rewrite ? &ed : NULL,
		.outbound = (uint8_t)cur_outbound, .dropped = would == ALG_DROP,
		.observe = (uint8_t)cf->observe, .reason = why,
		.src = u.saddr, .dst = u.daddr, .sport = u.sport, .dport = u.dport,
	};
	while (cm.line_len < u.plen && u.payload[cm.line_len] != '\r' && u.payload[cm.line_len] != '\n')
		cm.line_len++;
	if (cur_dlg) {
		calllog_note(dialog_slot(cur_dlg), now, &cm);
	} else {
		/* Dropped before or without a dialog (a new INVITE over the rate
		 * limit), or from outside lan.networks: kept by Call-ID. */
		int parsed = cur_parse_ok && msg.callid_idx >= 0;
		struct span cid = parsed ? msg.hdr[msg.callid_idx].value : (struct span){ 0, 0 };
		calllog_note_untracked(now, &cm, parsed ? u.payload + cid.off : NULL, cid.len);
	}
	return v;
}
