/* calllog: see calllog.h. */
#include "calllog.h"

#include <stddef.h>
#include <string.h>

#include "edit.h"
#include "json.h"
#include "mem.h"

#define CL_LINE 64   /* start line bytes kept */
#define CL_EDITS 8   /* rewritten spans kept per message */
#define CL_SPAN 32   /* bytes kept of each side of a span */
#define CL_CALLID 64
#define CL_UNTRACKED 32
/* Bytes of records per call. A call's messages vary a lot in what is worth
 * keeping (an INVITE with SDP: start line and 5-6 rewritten spans, ~200
 * bytes; a 100 Trying: its start line and the Via, ~70), so each call has a
 * byte ring of variable-length records rather than CALLLOG_ENTRIES slots
 * sized for the worst message: 1 KiB holds the 7 messages of an ordinary
 * call (issue 4: 2 KiB per live dialog, all tables included; the fixed
 * slots were ~5 KiB). */
#define CL_RING_BYTES (1024 - 2 * sizeof(uint32_t))

struct cl_edit {
	uint16_t olen, nlen;     /* whole lengths; the copies are cut at CL_SPAN */
	uint8_t where;           /* W_*: the header or SDP line the span is in */
	char old[CL_SPAN], rep[CL_SPAN];
};

/* Where a rewrite was: one byte per kept span, found from the span's offset
 * when the message is noted (the line it starts in), so the edit list and
 * the packet path stay as they are. The names are what `sipalgctl call`
 * prints and its JSON's "header" holds (docs/man/sipalgctl.8). */
enum {
	W_HEADER, W_RURI, W_STATUS, W_VIA, W_CONTACT, W_CALLID, W_FROM, W_TO, W_ROUTE,
	W_RROUTE, W_CLEN, W_PAI, W_PPI, W_RPID, W_REFER_TO, W_REFERRED_BY, W_REPLACES,
	W_DIVERSION, W_HISTORY, W_PATH, W_REPLY_TO, W_WARNING, W_SDP_O, W_SDP_C, W_SDP_M,
	W_SDP_RTCP, W_SDP_A, W_SDP, W_BODY, W_N
};
static const char *const where_name[W_N] = {
	[W_HEADER] = "header", [W_RURI] = "Request-URI", [W_STATUS] = "status line",
	[W_VIA] = "Via", [W_CONTACT] = "Contact", [W_CALLID] = "Call-ID", [W_FROM] = "From",
	[W_TO] = "To", [W_ROUTE] = "Route", [W_RROUTE] = "Record-Route",
	[W_CLEN] = "Content-Length", [W_PAI] = "P-Asserted-Identity",
	[W_PPI] = "P-Preferred-Identity", [W_RPID] = "Remote-Party-ID", [W_REFER_TO] = "Refer-To",
	[W_REFERRED_BY] = "Referred-By", [W_REPLACES] = "Replaces", [W_DIVERSION] = "Diversion",
	[W_HISTORY] = "History-Info", [W_PATH] = "Path", [W_REPLY_TO] = "Reply-To",
	[W_WARNING] = "Warning", [W_SDP_O] = "SDP o=", [W_SDP_C] = "SDP c=", [W_SDP_M] = "SDP m=",
	[W_SDP_RTCP] = "SDP a=rtcp", [W_SDP_A] = "SDP a=", [W_SDP] = "SDP", [W_BODY] = "body",
};
/* Compact forms (RFC 3261 7.3.3, RFC 3515 for r and b). */
static const struct { char c; uint8_t w; } where_compact[] = {
	{ 'v', W_VIA }, { 'm', W_CONTACT }, { 'i', W_CALLID }, { 'f', W_FROM }, { 't', W_TO },
	{ 'l', W_CLEN }, { 'r', W_REFER_TO }, { 'b', W_REFERRED_BY },
};

static int name_ieq(const uint8_t *a, uint32_t n, const char *b)
{
	uint32_t i;

	for (i = 0; i < n && b[i]; i++)
		if ((a[i] | 0x20) != (b[i] | 0x20))
			return 0;
	return i == n && !b[i];
}

/* The W_* of the line holding byte `off` of a message whose body starts at
 * `body` (bounded by the message: walks back to the line's start). */
static uint8_t where_of(const uint8_t *p, uint32_t len, uint32_t body, uint32_t off)
{
	uint32_t ls = off;

	while (ls > 0 && p[ls - 1] != '\n')
		ls--;
	if (ls >= body) {
		/* SDP: one letter, '=' (RFC 4566 5) */
		if (ls + 1 >= len || p[ls] < 'a' || p[ls] > 'z' || p[ls + 1] != '=')
			return W_BODY;
		switch (p[ls]) {
		case 'o': return W_SDP_O;
		case 'c': return W_SDP_C;
		case 'm': return W_SDP_M;
		case 'a':
			return ls + 7 <= len && !memcmp(p + ls, "a=rtcp", 6) && (p[ls + 6] == ':' || p[ls + 6] == ' ')
				       ? W_SDP_RTCP : W_SDP_A;
		default: return W_SDP;
		}
	}
	/* a folded header line (RFC 3261 7.3.1): the header is the line above */
	while (ls > 0 && (p[ls] == ' ' || p[ls] == '\t')) {
		ls--;
		while (ls > 0 && p[ls - 1] != '\n')
			ls--;
	}
	if (ls == 0)
		return len >= 4 && !memcmp(p, "SIP/", 4) ? W_STATUS : W_RURI;
	uint32_t e = ls;
	while (e < len && e < body && p[e] != ':' && p[e] != ' ' && p[e] != '\t' && p[e] != '\r')
		e++;
	uint32_t n = e - ls;
	if (n == 1) {
		for (size_t i = 0; i < sizeof(where_compact) / sizeof(where_compact[0]); i++)
			if ((p[ls] | 0x20) == where_compact[i].c)
				return where_compact[i].w;
		return W_HEADER;
	}
	for (int w = W_VIA; w <= W_WARNING; w++)
		if (name_ieq(p + ls, n, where_name[w]))
			return (uint8_t)w;
	return W_HEADER;
}

/* Where the body starts: after the first empty line (the whole message if
 * there is none). */
static uint32_t body_start(const uint8_t *p, uint32_t len)
{
	for (uint32_t i = 0; i + 1 < len; i++)
		if (p[i] == '\n' && (p[i + 1] == '\n' || (p[i + 1] == '\r' && i + 2 < len && p[i + 2] == '\n')))
			return p[i + 1] == '\n' ? i + 2 : i + 3;
	return len;
}

/* A message as the output code reads it (a record unpacked, or an untracked
 * message as kept). */
struct cl_entry {
	uint64_t t;
	const char *reason;
	struct addr src, dst;
	uint16_t sport, dport;
	uint8_t outbound, dropped, observe, used;
	uint8_t line_len, n_edits, edits_total;
	char line[CL_LINE];
	struct cl_edit ed[CL_EDITS];
};

/* A record in the byte ring: this header, the start line, then per kept
 * edit its two whole lengths (uint16 each), where it was (one byte) and the
 * kept bytes of each side. */
#define CL_EDIT_HDR 5
struct __attribute__((packed)) cl_rec {
	uint16_t len;            /* the whole record; first: eviction reads only it */
	uint64_t t;
	const char *reason;
	struct addr src, dst;
	uint16_t sport, dport;
	uint8_t flags;           /* CLF_* */
	uint8_t line_len, n_edits, edits_total;
};
_Static_assert(offsetof(struct cl_rec, len) == 0, "eviction reads the length first");
#define CLF_OUT 1
#define CLF_DROP 2
#define CLF_OBSERVE 4

struct cl_ring {
	uint32_t head, tail;     /* bytes written / oldest record kept (both unwrapped) */
	uint8_t buf[CL_RING_BYTES];
};
/* The record count is not stored: at most CALLLOG_ENTRIES are shown. */

struct cl_untracked {
	struct cl_entry e;
	uint8_t callid_len;
	char callid[CL_CALLID];
};

static struct cl_ring *rings;
static uint32_t n_slots;
static struct cl_untracked untracked[CL_UNTRACKED];
static uint32_t untracked_next;

int calllog_init(uint32_t slots)
{
	rings = mem_table(slots, sizeof(*rings));
	n_slots = rings ? slots : 0;
	untracked_next = 0;
	memset(untracked, 0, sizeof(untracked));
	return rings ? 0 : -1;
}

void calllog_fini(void)
{
	mem_table_free(rings, n_slots, sizeof(*rings));
	rings = NULL;
	n_slots = 0;
}

void calllog_reset(uint32_t slot)
{
	if (slot < n_slots)
		rings[slot].head = rings[slot].tail = 0;
}

static void fill(struct cl_entry *e, uint64_t now, const struct calllog_msg *m)
{
	uint32_t ll = m->line_len < CL_LINE ? m->line_len : CL_LINE;

	e->t = now;
	e->reason = m->reason;
	e->src = m->src;
	e->dst = m->dst;
	e->sport = m->sport;
	e->dport = m->dport;
	e->outbound = m->outbound;
	e->dropped = m->dropped;
	e->observe = m->observe;
	e->used = 1;
	e->line_len = (uint8_t)ll;
	memcpy(e->line, m->payload, ll);
	e->n_edits = 0;
	e->edits_total = 0;
	if (!m->ed)
		return;
	uint32_t body = body_start(m->payload, m->len);
	for (int i = 0; i < m->ed->n; i++) {
		const struct edit *x = &m->ed->e[i];
		/* A span rewritten to the same bytes (a media port that stayed
		 * the phone's own) changed nothing: not worth a line. */
		if (x->off + x->len <= m->len && x->len == x->rep_len &&
		    !memcmp(m->payload + x->off, m->ed->arena + x->rep_off, x->len))
			continue;
		if (e->edits_total < 255)
			e->edits_total++;
		if (e->n_edits == CL_EDITS || x->off + x->len > m->len)
			continue;
		struct cl_edit *c = &e->ed[e->n_edits++];
		c->olen = (uint16_t)(x->len > 65535 ? 65535 : x->len);
		c->nlen = (uint16_t)(x->rep_len > 65535 ? 65535 : x->rep_len);
		c->where = where_of(m->payload, m->len, body, x->off);
		memcpy(c->old, m->payload + x->off, x->len < CL_SPAN ? x->len : CL_SPAN);
		memcpy(c->rep, m->ed->arena + x->rep_off, x->rep_len < CL_SPAN ? x->rep_len : CL_SPAN);
	}
}

static inline uint32_t kept(uint16_t n) { return n < CL_SPAN ? n : CL_SPAN; }

/* Copy into / out of the ring at an unwrapped position. */
static void ring_put(struct cl_ring *r, uint32_t pos, const void *src, uint32_t n)
{
	uint32_t at = pos % CL_RING_BYTES, first = CL_RING_BYTES - at < n ? CL_RING_BYTES - at : n;
	memcpy(r->buf + at, src, first);
	memcpy(r->buf, (const uint8_t *)src + first, n - first);
}

static void ring_get(const struct cl_ring *r, uint32_t pos, void *dst, uint32_t n)
{
	uint32_t at = pos % CL_RING_BYTES, first = CL_RING_BYTES - at < n ? CL_RING_BYTES - at : n;
	memcpy(dst, r->buf + at, first);
	memcpy((uint8_t *)dst + first, r->buf, n - first);
}

/* The record length that a message would take. */
static uint32_t rec_len(const struct cl_entry *e)
{
	uint32_t n = sizeof(struct cl_rec) + e->line_len;
	for (int i = 0; i < e->n_edits; i++)
		n += CL_EDIT_HDR + kept(e->ed[i].olen) + kept(e->ed[i].nlen);
	return n;
}

void calllog_note(uint32_t slot, uint64_t now, const struct calllog_msg *m)
{
	struct cl_entry e;

	if (slot >= n_slots)
		return;
	struct cl_ring *r = &rings[slot];
	fill(&e, now, m);
	/* Drop the message's last kept spans until it fits (never happens
	 * with CL_EDITS * 2 * CL_SPAN well under the ring). */
	while (e.n_edits && rec_len(&e) > CL_RING_BYTES)
		e.n_edits--;
	struct cl_rec h = {
		.len = (uint16_t)rec_len(&e),
		.flags = (uint8_t)((e.outbound ? CLF_OUT : 0) | (e.dropped ? CLF_DROP : 0) |
				   (e.observe ? CLF_OBSERVE : 0)),
		.line_len = e.line_len, .n_edits = e.n_edits, .edits_total = e.edits_total,
		.sport = e.sport, .dport = e.dport, .src = e.src, .dst = e.dst, .t = e.t,
		.reason = e.reason,
	};
	/* Make room: the oldest records go. */
	while (r->head - r->tail + h.len > CL_RING_BYTES) {
		uint16_t ol;
		ring_get(r, r->tail, &ol, sizeof(ol));
		r->tail += ol;
	}
	uint32_t p = r->head;
	ring_put(r, p, &h, sizeof(h));
	p += sizeof(h);
	ring_put(r, p, e.line, e.line_len);
	p += e.line_len;
	for (int i = 0; i < e.n_edits; i++) {
		const struct cl_edit *c = &e.ed[i];
		ring_put(r, p, &c->olen, 2);
		ring_put(r, p + 2, &c->nlen, 2);
		ring_put(r, p + 4, &c->where, 1);
		ring_put(r, p + CL_EDIT_HDR, c->old, kept(c->olen));
		ring_put(r, p + CL_EDIT_HDR + kept(c->olen), c->rep, kept(c->nlen));
		p += CL_EDIT_HDR + kept(c->olen) + kept(c->nlen);
	}
	r->head = p;
	/* Unwrapped positions: start over before they could wrap (4 GiB). */
	if (r->tail > 0x80000000u) {
		uint32_t base = r->tail - r->tail % CL_RING_BYTES;
		r->tail -= base;
		r->head -= base;
	}
}

/* Unpack the record at `pos`; returns the next record's position. */
static uint32_t rec_read(const struct cl_ring *r, uint32_t pos, struct cl_entry *e)
{
	struct cl_rec h;

	ring_get(r, pos, &h, sizeof(h));
	memset(e, 0, offsetof(struct cl_entry, line));
	e->t = h.t;
	e->reason = h.reason;
	e->src = h.src;
	e->dst = h.dst;
	e->sport = h.sport;
	e->dport = h.dport;
	e->outbound = !!(h.flags & CLF_OUT);
	e->dropped = !!(h.flags & CLF_DROP);
	e->observe = !!(h.flags & CLF_OBSERVE);
	e->used = 1;
	e->line_len = h.line_len;
	e->n_edits = h.n_edits;
	e->edits_total = h.edits_total;
	uint32_t p = pos + sizeof(h);
	ring_get(r, p, e->line, h.line_len);
	p += h.line_len;
	for (int i = 0; i < h.n_edits; i++) {
		struct cl_edit *c = &e->ed[i];
		ring_get(r, p, &c->olen, 2);
		ring_get(r, p + 2, &c->nlen, 2);
		ring_get(r, p + 4, &c->where, 1);
		if (c->where >= W_N)
			c->where = W_HEADER;
		ring_get(r, p + CL_EDIT_HDR, c->old, kept(c->olen));
		ring_get(r, p + CL_EDIT_HDR + kept(c->olen), c->rep, kept(c->nlen));
		p += CL_EDIT_HDR + kept(c->olen) + kept(c->nlen);
	}
	return h.len >= sizeof(h) ? pos + h.len : r->head;
}

void calllog_note_untracked(uint64_t now, const struct calllog_msg *m, const uint8_t *callid,
			    uint32_t callid_len)
{
	struct cl_untracked *u = &untracked[untracked_next++ % CL_UNTRACKED];
	uint32_t n = callid_len < CL_CALLID ? callid_len : CL_CALLID;

	fill(&u->e, now, m);
	u->callid_len = (uint8_t)(callid ? n : 0);
	if (callid)
		memcpy(u->callid, callid, n);
}

/* ---- output ------------------------------------------------------------- */

static void ipport(FILE *f, const struct addr *ip, uint16_t port)
{
	char a[ADDR_STRLEN];

	addr_fmt(a, ip, 1);
	fprintf(f, "%s:%u", a, port);
}

static void entry_json(FILE *f, const struct cl_entry *e, uint64_t now)
{
	fprintf(f, "{\"ago_ms\":%llu,\"direction\":\"%s\",\"from\":",
		(unsigned long long)(now > e->t ? now - e->t : 0), e->outbound ? "out" : "in");
	json_ipport(f, &e->src, e->sport);
	fputs(",\"to\":", f);
	json_ipport(f, &e->dst, e->dport);
	fprintf(f, ",\"verdict\":\"%s\",\"observe\":%s,\"start_line\":", e->dropped ? "drop" : "accept",
		e->observe ? "true" : "false");
	json_str(f, e->line, e->line_len);
	fputs(",\"reason\":", f);
	if (e->reason)
		json_cstr(f, e->reason);
	else
		fputs("null", f);
	fprintf(f, ",\"rewrites_total\":%u,\"rewrites\":[", e->edits_total);
	for (int i = 0; i < e->n_edits; i++) {
		const struct cl_edit *c = &e->ed[i];
		fputs(i ? ",{\"header\":" : "{\"header\":", f);
		json_cstr(f, where_name[c->where]);
		fputs(",\"before\":", f);
		json_str(f, c->old, c->olen < CL_SPAN ? c->olen : CL_SPAN);
		fputs(",\"after\":", f);
		json_str(f, c->rep, c->nlen < CL_SPAN ? c->nlen : CL_SPAN);
		fprintf(f, ",\"cut\":%s}", c->olen > CL_SPAN || c->nlen > CL_SPAN ? "true" : "false");
	}
	fputs("]}", f);
}

/* Printable ASCII only: a Call-ID or start line must not reach a terminal
 * as escapes. */
static void safe(FILE *f, const char *s, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		fputc(s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?', f);
}

static void entry_text(FILE *f, const struct cl_entry *e, uint64_t now)
{
	fprintf(f, "    %6llums ago %s ", (unsigned long long)((now > e->t ? now - e->t : 0)),
		e->outbound ? "out" : "in ");
	ipport(f, &e->src, e->sport);
	fputs(" -> ", f);
	ipport(f, &e->dst, e->dport);
	fprintf(f, " %s%s  ", e->dropped ? "DROPPED" : "accepted",
		e->observe ? " (observe: sent unchanged)" : "");
	safe(f, e->line, e->line_len);
	fputc('\n', f);
	if (e->reason)
		fprintf(f, "      why: %s\n", e->reason);
	for (int i = 0; i < e->n_edits; i++) {
		const struct cl_edit *c = &e->ed[i];
		fprintf(f, "      %s %s '", e->observe ? "would rewrite" : "rewrote", where_name[c->where]);
		safe(f, c->old, c->olen < CL_SPAN ? c->olen : CL_SPAN);
		fputs(c->olen > CL_SPAN ? "...' -> '" : "' -> '", f);
		safe(f, c->rep, c->nlen < CL_SPAN ? c->nlen : CL_SPAN);
		fputs(c->nlen > CL_SPAN ? "...'\n" : "'\n", f);
	}
	if (e->edits_total > e->n_edits)
		fprintf(f, "      (%u more rewrites)\n", e->edits_total - e->n_edits);
}

/* The position of the oldest of the last CALLLOG_ENTRIES records. */
static uint32_t ring_first(const struct cl_ring *r)
{
	uint32_t n = 0, p = r->tail;

	/* Record lengths are at least a header: the walks end. */
	while (p < r->head) {
		struct cl_rec h;
		ring_get(r, p, &h, sizeof(h));
		p += h.len >= sizeof(h) ? h.len : r->head - p;
		n++;
	}
	for (p = r->tail; n > CALLLOG_ENTRIES; n--) {
		struct cl_rec h;
		ring_get(r, p, &h, sizeof(h));
		p += h.len >= sizeof(h) ? h.len : r->head - p;
	}
	return p;
}

void calllog_json(FILE *f, uint32_t slot, uint64_t now)
{
	struct cl_entry e;
	int n = 0;

	fputs(",\"messages\":[", f);
	if (slot < n_slots) {
		const struct cl_ring *r = &rings[slot];
		for (uint32_t p = ring_first(r); p < r->head;) {
			p = rec_read(r, p, &e);
			if (n++)
				fputc(',', f);
			entry_json(f, &e, now);
		}
	}
	fputc(']', f);
}

void calllog_text(FILE *f, uint32_t slot, uint64_t now)
{
	struct cl_entry e;

	if (slot >= n_slots)
		return;
	const struct cl_ring *r = &rings[slot];
	fprintf(f, "  last messages (oldest first, at most %d):\n", CALLLOG_ENTRIES);
	for (uint32_t p = ring_first(r); p < r->head;) {
		p = rec_read(r, p, &e);
		entry_text(f, &e, now);
	}
}

static int untracked_is(const struct cl_untracked *u, const char *prefix)
{
	size_t pl = strlen(prefix);
	return u->e.used && u->callid_len >= pl && !memcmp(u->callid, prefix, pl);
}

int calllog_untracked_match(const char *prefix)
{
	int n = 0;

	for (int i = 0; i < CL_UNTRACKED; i++)
		n += untracked_is(&untracked[i], prefix);
	return n;
}

void calllog_untracked_json(FILE *f, const char *prefix, uint64_t now)
{
	int n = 0;

	fputs("[", f);
	for (uint32_t k = 0; k < CL_UNTRACKED; k++) {
		const struct cl_untracked *u = &untracked[(untracked_next + k) % CL_UNTRACKED];
		if (!untracked_is(u, prefix))
			continue;
		fputs(n++ ? ",{\"call_id\":" : "{\"call_id\":", f);
		json_str(f, u->callid, u->callid_len);
		fputs(",\"message\":", f);
		entry_json(f, &u->e, now);
		fputc('}', f);
	}
	fputs("]", f);
}

void calllog_untracked_text(FILE *f, const char *prefix, uint64_t now)
{
	fputs("  messages of this Call-ID that created no call:\n", f);
	for (uint32_t k = 0; k < CL_UNTRACKED; k++) {
		const struct cl_untracked *u = &untracked[(untracked_next + k) % CL_UNTRACKED];
		if (untracked_is(u, prefix))
			entry_text(f, &u->e, now);
	}
}

/* 1 KiB per live call: the price of answering "what did the router do to
 * this call" without a capture. */
_Static_assert(sizeof(struct cl_ring) == 1024, "calllog ring grew: check the memory per call");
_Static_assert(sizeof(struct cl_rec) + CL_LINE + CL_EDITS * (CL_EDIT_HDR + 2 * CL_SPAN) <= CL_RING_BYTES,
	       "the largest record must fit the ring");
