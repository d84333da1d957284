/* calllog: see calllog.h. */
#include "calllog.h"

#include <string.h>

#include "edit.h"
#include "json.h"
#include "mem.h"

#define CL_LINE 64   /* start line bytes kept */
#define CL_EDITS 8   /* rewritten spans kept per message */
#define CL_SPAN 32   /* bytes kept of each side of a span */
#define CL_CALLID 64
#define CL_UNTRACKED 32

struct cl_edit {
	uint16_t olen, nlen;     /* whole lengths; the copies are cut at CL_SPAN */
	char old[CL_SPAN], rep[CL_SPAN];
};

struct cl_entry {
	uint64_t t;
	const char *reason;
	uint32_t src, dst;
	uint16_t sport, dport;
	uint8_t outbound, dropped, observe, used;
	uint8_t line_len, n_edits, edits_total;
	char line[CL_LINE];
	struct cl_edit ed[CL_EDITS];
};

struct cl_ring {
	uint32_t next;           /* entries written (the ring position is next % N) */
	struct cl_entry e[CALLLOG_ENTRIES];
};

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
		rings[slot].next = 0;
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
		memcpy(c->old, m->payload + x->off, x->len < CL_SPAN ? x->len : CL_SPAN);
		memcpy(c->rep, m->ed->arena + x->rep_off, x->rep_len < CL_SPAN ? x->rep_len : CL_SPAN);
	}
}

void calllog_note(uint32_t slot, uint64_t now, const struct calllog_msg *m)
{
	if (slot >= n_slots)
		return;
	struct cl_ring *r = &rings[slot];
	fill(&r->e[r->next++ % CALLLOG_ENTRIES], now, m);
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

static void ipport(FILE *f, uint32_t ip, uint16_t port)
{
	fprintf(f, "%u.%u.%u.%u:%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255, port);
}

static void entry_json(FILE *f, const struct cl_entry *e, uint64_t now)
{
	fprintf(f, "{\"ago_ms\":%llu,\"direction\":\"%s\",\"from\":",
		(unsigned long long)(now > e->t ? now - e->t : 0), e->outbound ? "out" : "in");
	json_ipport(f, e->src, e->sport);
	fputs(",\"to\":", f);
	json_ipport(f, e->dst, e->dport);
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
		fputs(i ? ",{\"before\":" : "{\"before\":", f);
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
	ipport(f, e->src, e->sport);
	fputs(" -> ", f);
	ipport(f, e->dst, e->dport);
	fprintf(f, " %s%s  ", e->dropped ? "DROPPED" : "accepted",
		e->observe ? " (observe: sent unchanged)" : "");
	safe(f, e->line, e->line_len);
	fputc('\n', f);
	if (e->reason)
		fprintf(f, "      why: %s\n", e->reason);
	for (int i = 0; i < e->n_edits; i++) {
		const struct cl_edit *c = &e->ed[i];
		fputs(e->observe ? "      would rewrite '" : "      rewrote '", f);
		safe(f, c->old, c->olen < CL_SPAN ? c->olen : CL_SPAN);
		fputs(c->olen > CL_SPAN ? "...' -> '" : "' -> '", f);
		safe(f, c->rep, c->nlen < CL_SPAN ? c->nlen : CL_SPAN);
		fputs(c->nlen > CL_SPAN ? "...'\n" : "'\n", f);
	}
	if (e->edits_total > e->n_edits)
		fprintf(f, "      (%u more rewrites)\n", e->edits_total - e->n_edits);
}

/* Oldest first. */
#define RING_FOR(r, i, e) \
	for (uint32_t i = (r)->next > CALLLOG_ENTRIES ? (r)->next - CALLLOG_ENTRIES : 0; i < (r)->next; i++) \
		if ((e = &(r)->e[i % CALLLOG_ENTRIES]), 1)

void calllog_json(FILE *f, uint32_t slot, uint64_t now)
{
	const struct cl_entry *e;
	int n = 0;

	fputs(",\"messages\":[", f);
	if (slot < n_slots)
		RING_FOR(&rings[slot], i, e) {
			if (n++)
				fputc(',', f);
			entry_json(f, e, now);
		}
	fputc(']', f);
}

void calllog_text(FILE *f, uint32_t slot, uint64_t now)
{
	const struct cl_entry *e;

	if (slot >= n_slots)
		return;
	fprintf(f, "  last messages (oldest first, at most %d):\n", CALLLOG_ENTRIES);
	RING_FOR(&rings[slot], i, e)
		entry_text(f, e, now);
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

/* About 5 KiB per live call (8 entries of ~650 bytes): the price of
 * answering "what did the router do to this call" without a capture. */
_Static_assert(sizeof(struct cl_ring) <= 6 * 1024, "calllog ring grew: check the memory per call");
