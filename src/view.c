/* view: sipalgctl's answers. Every JSON answer is one object with one key
 * naming what it holds, so a reader can tell answers apart and new fields
 * never break an old reader. Errors are never JSON: a line "error: ..."
 * (sipalgctl exits 1 on it). */
#include "view.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "binding.h"
#include "calllog.h"
#include "conf.h"
#include "ct.h"
#include "dialog.h"
#include "fwwatch.h"
#include "json.h"
#include "nftmap.h"
#include "rules.h"
#include "stats.h"
#include "trace.h"
#include "wan.h"

#define VIEW_ARGS 4

static const struct conf *vc;
#define MODE() (vc && vc->observe ? "observe" : "enforce")

static const char *const stream_states[] = { "free", "new", "active", "retiring" };

static void ipport(FILE *f, const struct addr *ip, uint16_t port)
{
	char a[ADDR_STRLEN];

	addr_fmt(a, ip, 1);
	fprintf(f, "%s:%u", a, port);
}

/* ---- status, counters --------------------------------------------------- */

/* A table whose refusals (full, or over 3/4 with the phone at its share)
 * happened and which is still over 3/4 full: calls or streams were refused
 * and the next may be, and nothing else in status would say so (the log
 * names the phone, rate-limited). Appends "limits.K (N of MAX, refused_K_* N)" to
 * buf; 1 if it did. */
static int limit_hit(char *buf, size_t sz, const char *key, uint64_t live, uint32_t max, enum stat_id full,
		     enum stat_id share)
{
	uint64_t refused = stats[full] + stats[share];
	size_t n = strlen(buf);

	if (!max || !refused || live * 4 < (uint64_t)max * 3)
		return 0;
	snprintf(buf + n, sz - n, "%slimits.%s (%llu of %u in use, refused_%s_full %llu, refused_%s_share %llu)",
		 n ? ", " : "", key, (unsigned long long)live, max, key, (unsigned long long)stats[full], key,
		 (unsigned long long)stats[share]);
	return 1;
}

static void status(FILE *out, int json, uint64_t now, uint64_t start_ms)
{
	unsigned long long up = (now - start_ms) / 1000;
	char miss[384] = "", helper[256], fwd[256];
	/* Checked now, not from memory: a firewall reload not yet repaired
	 * makes the answer "missing ..." (and sipalgctl exit 1). */
	int missing = fwwatch_missing(miss, sizeof(miss));
	int kh = fwwatch_helper(helper, sizeof(helper));
	int fd = fwwatch_forward_drop(fwd, sizeof(fwd));
	char lim[384] = "";
	int lh = 0;

	if (vc) {
		lh |= limit_hit(lim, sizeof(lim), "dialogs", stats[ST_dialogs], vc->max_dialogs,
				ST_refused_dialogs_full, ST_refused_dialogs_share);
		lh |= limit_hit(lim, sizeof(lim), "pinholes", stats[ST_pinholes], vc->max_pinholes,
				ST_refused_pinholes_full, ST_refused_pinholes_share);
		lh |= limit_hit(lim, sizeof(lim), "bindings", stats[ST_bindings], vc->max_bindings,
				ST_refused_bindings_full, ST_refused_bindings_share);
	}
	/* The diversion names wan.interface: with no such interface nothing
	 * is diverted, and SIP leaving by the router's real WAN goes out as
	 * the phone wrote it. Not healthy, whatever else is in place. */
	if (vc && !wan_ifindex()) {
		size_t n = strlen(miss);
		snprintf(miss + n, sizeof(miss) - n, "%sWAN interface %s (no such interface now: "
			 "SIP is diverted only where it crosses it; check wan.interface)", missing ? ", " : "", vc->wan_if);
		missing = 1;
	} else if (vc && !wan_public()) {
		/* The interface is there but has no IPv4 address (PPPoE down, no
		 * DHCP lease yet) and wan.public_address is not set: every LAN
		 * SIP message is dropped (drop_no_wan_address) rather than leave
		 * with a private or stale address. The log says so once, at the
		 * change; status must say so for as long as it lasts. */
		size_t n = strlen(miss);
		snprintf(miss + n, sizeof(miss) - n, "%sIPv4 address on WAN interface %s (LAN SIP is dropped "
			 "until it has one, or set wan.public_address)", missing ? ", " : "", vc->wan_if);
		missing = 1;
	}

	/* Answered from the packet loop itself: an answer means the loop runs. */
	if (!json) {
		if (missing)
			fprintf(out, "missing %s; ", miss);
		else
			fputs("ok ", out);
		fprintf(out, "pid %d uptime %llus packets %llu dialogs %llu bindings %llu pinholes %llu mode %s "
			     "rules_restored %llu kernel_helper %d\n",
			(int)getpid(), up, (unsigned long long)stats[ST_pkts_in],
			(unsigned long long)stats[ST_dialogs], (unsigned long long)stats[ST_bindings],
			(unsigned long long)stats[ST_pinholes], MODE(),
			(unsigned long long)stats[ST_rules_restored], kh ? 1 : 0);
		if (kh)
			fprintf(out, "warning: kernel SIP helper on our traffic: %s: remove it (two ALGs "
				     "rewrite every message twice; the log says how)\n", helper);
		if (fd)
			fprintf(out, "warning: forward policy drops DNAT'ed media: %s: add `ct status dnat "
				     "accept` there\n", fwd);
		if (lh)
			fprintf(out, "warning: a table is over 3/4 full and has refused: %s: raise the limit, "
				     "or find the phone the log names\n", lim);
		if (rules_ipv6_off())
			fprintf(out, "ipv6 diversion: off (%s)\n", rules_ipv6_off());
		/* Only where it is used: masquerade6 phones are translated to it. */
		if (vc && vc->n_masq6) {
			char a6[ADDR_STRLEN] = "none";

			if (wan_public6())
				addr_fmt(a6, wan_public6(), 0);
			fprintf(out, "public IPv6: %s\n", a6);
		}
		return;
	}
	fprintf(out, "{\"status\":{\"ok\":%s,\"pid\":%d,\"mode\":\"%s\",\"uptime_s\":%llu,\"packets\":%llu,"
		     "\"dialogs\":%llu,\"bindings\":%llu,\"pinholes\":%llu,\"registrations\":%llu,"
		     "\"rules_restored\":%llu,\"missing\":",
		missing ? "false" : "true", (int)getpid(), MODE(), up, (unsigned long long)stats[ST_pkts_in],
		(unsigned long long)stats[ST_dialogs], (unsigned long long)stats[ST_bindings],
		(unsigned long long)stats[ST_pinholes], (unsigned long long)stats[ST_registrations],
		(unsigned long long)stats[ST_rules_restored]);
	if (missing)
		json_cstr(out, miss);
	else
		fputs("null", out);
	fputs(",\"kernel_helper\":", out);
	if (kh)
		json_cstr(out, helper);
	else
		fputs("null", out);
	fputs(",\"forward_drops_dnat\":", out);
	if (fd)
		json_cstr(out, fwd);
	else
		fputs("null", out);
	fputs(",\"limits_hit\":", out);
	if (lh)
		json_cstr(out, lim);
	else
		fputs("null", out);
	fputs(",\"ipv6_diversion_off\":", out);
	if (rules_ipv6_off())
		json_cstr(out, rules_ipv6_off());
	else
		fputs("null", out);
	/* The public IPv4 address as used now (wan.public_address or the WAN
	 * interface's), null while there is none. */
	fputs(",\"public_ipv4\":", out);
	json_ip4(out, wan_public(), 1);
	/* Always present (fields are only added): the WAN's IPv6 address as
	 * followed, null while it has none; used with wan.masquerade6. */
	fputs(",\"public_ipv6\":", out);
	if (wan_public6())
		json_ip(out, wan_public6(), 1);
	else
		fputs("null", out);
	fputs("}}\n", out);
}

static void counters(FILE *out, int json)
{
	if (!json) {
		stats_dump(out);
		return;
	}
	fputs("{\"counters\":{", out);
	for (int i = 0; i < ST__COUNT; i++)
		fprintf(out, "%s\"%s\":%llu", i ? "," : "", stats_name((enum stat_id)i),
			(unsigned long long)stats[i]);
	fputs("}}\n", out);
}

/* Prometheus text exposition format 0.0.4: HELP and TYPE before each
 * sample, counters named *_total, gauges without suffix; for the node
 * exporter's textfile collector (`sipalgctl metrics > x.prom.$$ && mv`). */
static void metrics(FILE *out, uint64_t now, uint64_t start_ms)
{
	for (int i = 0; i < ST__COUNT; i++) {
		int gauge = stats_kind((enum stat_id)i) == STAT_GAUGE;
		const char *n = stats_name((enum stat_id)i), *sfx = gauge ? "" : "_total";
		/* HELP text may not hold a newline or backslash unescaped; ours are
		 * plain sentences, checked by tests/data/counters_check.py. */
		fprintf(out, "# HELP sipalgd_%s%s %s\n# TYPE sipalgd_%s%s %s\nsipalgd_%s%s %llu\n",
			n, sfx, stats_help((enum stat_id)i), n, sfx, gauge ? "gauge" : "counter", n, sfx,
			(unsigned long long)stats[i]);
	}
	fprintf(out, "# HELP sipalgd_uptime_seconds seconds since the daemon started\n"
		     "# TYPE sipalgd_uptime_seconds gauge\nsipalgd_uptime_seconds %llu\n",
		(unsigned long long)((now - start_ms) / 1000));
}

/* ---- bindings ----------------------------------------------------------- */

static void bindings(FILE *out, int json, uint64_t now)
{
	const struct binding *b;
	uint32_t cur = 0;
	int n = 0;

	/* A header line even for an empty table: silence means trouble. */
	if (!json) {
		fprintf(out, "# bindings %llu\n", (unsigned long long)stats[ST_bindings]);
		binding_dump(out, now);
		return;
	}
	fputs("{\"bindings\":[", out);
	while ((b = binding_next(&cur))) {
		fprintf(out, "%s{\"kind\":\"%s\",\"private\":", n++ ? "," : "",
			b->kind == BIND_MEDIA ? "media" : b->kind == BIND_RTCP ? "rtcp" : "sip");
		json_ipport(out, &b->priv_ip, b->priv_port);
		fputs(",\"public\":", out);
		const struct addr *pub = binding_public(&b->priv_ip);
		if (pub)
			json_ipport(out, pub, b->pub_port);
		else
			fputs("null", out);
		fprintf(out, ",\"refs\":%u,\"adopted\":%s,\"registered_s\":", b->refs,
			b->flags & BF_ADOPTED ? "true" : "false");
		if (b->registered)
			fprintf(out, "%llu", (unsigned long long)(b->reg_until > now ? (b->reg_until - now) / 1000 : 0));
		else
			fputs("null", out);
		fputs(",\"registrar\":", out);
		if (b->registered)
			json_ip(out, &b->reg_peer, 1);
		else
			fputs("null", out);
		fputc('}', out);
	}
	fputs("]}\n", out);
}

/* ---- media counters from conntrack ---------------------------------------- */

struct pc { uint64_t pkts, bytes; };
#define REFUSED_SRC_MAX 4
struct port_count {
	struct pc to_phone, from_phone, refused;
	struct addr refused_ip[REFUSED_SRC_MAX];
	uint16_t refused_port[REFUSED_SRC_MAX];
	int n_refused, flows, no_acct, err;
	int routed;             /* routed IPv6: no DNAT, every flow into the port is the call's */
	struct addr priv_ip;
	uint16_t priv_port;
};

static void pc_add(struct pc *c, uint64_t p, uint64_t b) { c->pkts += p; c->bytes += b; }

/* Flows INTO the pinhole's public port: through the pinhole (DNAT) they
 * count to the phone (replies: from it); without DNAT they reached the
 * router itself: refused (a source the SDP did not name, or too early). */
static void count_to_pub(const struct ct_flow *f, void *arg)
{
	struct port_count *pc = arg;

	pc->flows++;
	pc->no_acct |= !f->has_counters;
	if (pc->routed || (f->dnat && addr_eq(&f->rsrc, &pc->priv_ip) && f->rsport == pc->priv_port)) {
		pc_add(&pc->to_phone, f->pkts[0], f->bytes[0]);
		pc_add(&pc->from_phone, f->pkts[1], f->bytes[1]);
		return;
	}
	pc_add(&pc->refused, f->pkts[0], f->bytes[0]);
	if (pc->n_refused < REFUSED_SRC_MAX) {
		pc->refused_ip[pc->n_refused] = f->src;
		pc->refused_port[pc->n_refused++] = f->sport;
	}
}

/* Flows the phone's media port started (phone first, source-NATed). */
static void count_from_priv(const struct ct_flow *f, void *arg)
{
	struct port_count *pc = arg;

	pc->flows++;
	pc->no_acct |= !f->has_counters;
	pc_add(&pc->from_phone, f->pkts[0], f->bytes[0]);
	pc_add(&pc->to_phone, f->pkts[1], f->bytes[1]);
}

static void port_count(struct port_count *pc, const struct addr *pub, uint16_t pub_port,
		       const struct addr *priv_ip, uint16_t priv_port)
{
	memset(pc, 0, sizeof(*pc));
	pc->priv_ip = *priv_ip;
	pc->priv_port = priv_port;
	/* routed IPv6 (pub_port 0): flows into the phone's own port, at the
	 * address the caller gives (the phone's, or its NAT66 image) */
	if (!pub_port) {
		pc->routed = 1;
		pub_port = priv_port;
	}
	if (ct_flows(*pub, pub_port, 1, count_to_pub, pc) < 0 ||
	    ct_flows(*priv_ip, priv_port, 0, count_from_priv, pc) < 0)
		pc->err = 1;
}

static void pc_json(FILE *out, const char *name, const struct pc *c)
{
	fprintf(out, "\"%s\":{\"packets\":%llu,\"bytes\":%llu}", name, (unsigned long long)c->pkts,
		(unsigned long long)c->bytes);
}

static void port_count_json(FILE *out, const struct port_count *pc)
{
	fprintf(out, "{\"flows\":%d,\"counted\":%s,", pc->flows, pc->err ? "false" : pc->no_acct ? "false" : "true");
	pc_json(out, "to_phone", &pc->to_phone);
	fputc(',', out);
	pc_json(out, "from_phone", &pc->from_phone);
	fputc(',', out);
	pc_json(out, "refused_at_wan", &pc->refused);
	fputs(",\"refused_sources\":[", out);
	for (int i = 0; i < pc->n_refused; i++) {
		if (i)
			fputc(',', out);
		json_ipport(out, &pc->refused_ip[i], pc->refused_port[i]);
	}
	fputs("]}", out);
}

static void port_count_text(FILE *out, const char *what, const struct port_count *pc)
{
	fprintf(out, "    %-4s to phone %llu pkts %llu B   from phone %llu pkts %llu B", what,
		(unsigned long long)pc->to_phone.pkts, (unsigned long long)pc->to_phone.bytes,
		(unsigned long long)pc->from_phone.pkts, (unsigned long long)pc->from_phone.bytes);
	if (pc->refused.pkts) {
		fprintf(out, "   REFUSED at WAN %llu pkts from", (unsigned long long)pc->refused.pkts);
		for (int i = 0; i < pc->n_refused; i++) {
			fputc(' ', out);
			ipport(out, &pc->refused_ip[i], pc->refused_port[i]);
		}
	}
	if (pc->err)
		fputs("   (conntrack not readable)", out);
	else if (pc->no_acct)
		fputs("   (some flows uncounted: nf_conntrack_acct was off)", out);
	fputc('\n', out);
}

/* ---- dialogs, pinholes, call -------------------------------------------- */

static void stream_json(FILE *out, const struct dialog_stream_view *s, const struct addr *pub, int counters)
{
	fprintf(out, "{\"m\":%u,\"state\":\"%s\",\"private\":", s->mindex,
		stream_states[s->state & 3]);
	json_ipport(out, &s->priv_ip, s->priv_port);
	fputs(",\"public\":", out);
	if (s->routed && addr_eq(&s->routed_pub, &s->priv_ip))
		fputs("null", out); /* routed IPv6: no translation */
	else if (s->routed)
		json_ipport(out, &s->routed_pub, s->priv_port); /* NAT66: the prefix, the same port */
	else
		json_ipport(out, &s->pub_ip, s->pub_port);
	fprintf(out, ",\"routed\":%s", s->routed ? "true" : "false");
	fputs(",\"remote\":", out);
	if (!addr_is_any(&s->remote_ip))
		json_ipport(out, &s->remote_ip, s->remote_port);
	else
		fputs("null", out);
	fputs(",\"rtcp_public\":", out);
	if (s->rtcp_mux)
		fputs("\"mux\"", out);
	else if (s->routed)
		fputs("null", out);
	else
		json_ipport(out, &s->pub_ip, s->rtcp_pub_port);
	fputs(",\"allowed_source\":", out);
	json_ip(out, &s->allowed_src, 1);
	if (counters) {
		struct port_count pc;
		port_count(&pc, s->routed ? &s->routed_pub : &s->pub_ip, s->pub_port, &s->priv_ip, s->priv_port);
		fputs(",\"rtp\":", out);
		port_count_json(out, &pc);
		if (!s->rtcp_mux) { /* muxed RTCP is counted with RTP */
			port_count(&pc, s->routed ? &s->routed_pub : &s->pub_ip, s->rtcp_pub_port, &s->rtcp_priv_ip,
				   s->rtcp_priv_port);
			fputs(",\"rtcp\":", out);
			port_count_json(out, &pc);
		}
	}
	fputc('}', out);
}

static void dialog_json(FILE *out, const struct dialog_view *v, const struct addr *pub, int counters, uint64_t now)
{
	fputs("{\"call_id\":", out);
	json_str(out, v->callid, v->callid_len);
	fprintf(out, ",\"call_id_length\":%u,\"state\":\"%s\",\"age_s\":%llu,\"expires_s\":%llu,"
		     "\"offer_outstanding\":\"%s\",\"phone\":{\"private\":",
		v->callid_full, v->confirmed ? "confirmed" : "early",
		(unsigned long long)(v->age_ms / 1000), (unsigned long long)(v->expires_ms / 1000),
		v->offer_from == SIDE_PHONE ? "phone" : v->offer_from == SIDE_REMOTE ? "remote" : "none");
	json_ipport(out, &v->phone_ip, v->phone_port);
	fputs(",\"public\":", out);
	if (v->sig_pub_port)
		json_ipport(out, pub, v->sig_pub_port);
	else
		fputs("null", out);
	fputs("},\"peer\":", out);
	json_ipport(out, &v->peer_ip, v->peer_port);
	fputs(",\"streams\":[", out);
	for (int k = 0; k < v->n_streams; k++) {
		if (k)
			fputc(',', out);
		stream_json(out, &v->st[k], pub, counters);
	}
	fputs("]", out);
	if (counters)
		calllog_json(out, v->slot, now);
	fputs("}", out);
}

static void dialogs(FILE *out, int json, uint64_t now)
{
	struct dialog_view v;
	uint32_t cur = 0;
	struct addr pub = addr_v4(binding_public_ip());
	int n = 0;

	if (!json) {
		fprintf(out, "# dialogs %llu\n", (unsigned long long)stats[ST_dialogs]);
		dialog_dump(out, now);
		return;
	}
	fputs("{\"dialogs\":[", out);
	while (dialog_view_next(&cur, &v, now)) {
		if (n++)
			fputc(',', out);
		dialog_json(out, &v, &pub, 0, now);
	}
	fputs("]}\n", out);
}

static void pinholes(FILE *out, int json, uint64_t now)
{
	struct dialog_view v;
	uint32_t cur = 0, refs;
	struct addr pub = addr_v4(binding_public_ip()), peer, pip;
	uint16_t pport, ppub;
	int n = 0;

	if (!json) {
		fprintf(out, "# pinholes %llu\n", (unsigned long long)stats[ST_pinholes]);
		dialog_dump_pinholes(out);
		fputs("# kernel inbound elements\n", out);
		nftmap_dump(out);
		return;
	}
	fprintf(out, "{\"pinholes\":{\"mode\":\"%s\",\"streams\":[", MODE());
	while (dialog_view_next(&cur, &v, now)) {
		for (int k = 0; k < v.n_streams; k++) {
			if (n++)
				fputc(',', out);
			fputs("{\"call_id\":", out);
			json_str(out, v.callid, v.callid_len);
			fputs(",\"stream\":", out);
			stream_json(out, &v.st[k], &pub, 0);
			fputc('}', out);
		}
	}
	fputs("],\"kernel_inbound\":[", out);
	cur = 0;
	n = 0;
	while (nftmap_inbound_next(&cur, &peer, &ppub, &pip, &pport, &refs)) {
		fprintf(out, "%s{\"peer\":", n++ ? "," : "");
		json_ip(out, &peer, 1);
		fputs(",\"public\":", out);
		const struct addr *pa = binding_public(&pip);
		if (pa)
			json_ipport(out, pa, ppub);
		else
			fputs("null", out);
		fputs(",\"private\":", out);
		json_ipport(out, &pip, pport);
		fprintf(out, ",\"refs\":%u}", refs);
	}
	fputs("]}}\n", out);
}

/* The two one-way-audio causes an operator cannot read off the numbers
 * alone. Media refused from another source than the pinhole admits: the
 * provider's media host is not the one its SDP names. Nothing counted at
 * all while a forward policy drops DNAT'ed media: the remote's first packet
 * is dropped after our DNAT, before conntrack confirms the flow, so the
 * flow never exists to be counted and the line reads as if the remote sent
 * nothing. */
static void stream_hint(FILE *out, const struct dialog_stream_view *s, const struct port_count *pc)
{
	char a[ADDR_STRLEN], b[ADDR_STRLEN];

	if (s->routed)
		return;
	for (int i = 0; i < pc->n_refused && !addr_is_any(&s->allowed_src); i++) {
		if (addr_eq(&pc->refused_ip[i], &s->allowed_src))
			continue;
		addr_fmt(a, &pc->refused_ip[i], 0);
		addr_fmt(b, &s->allowed_src, 0);
		fprintf(out, "    hint: media from %s is refused: the pinhole admits only %s, the remote's "
			     "SDP address (media.pinhole_source: peer); media.pinhole_source: any admits it\n", a, b);
		break;
	}
	if (!pc->to_phone.pkts && !pc->refused.pkts && !pc->err && stats[ST_forward_drops_dnat])
		fputs("    hint: nothing reached the phone and a forward policy drops DNAT'ed media "
		      "(sipalgctl status): media the remote sends first is dropped there, uncounted\n", out);
}

static void call_text(FILE *out, const struct dialog_view *v, const struct addr *pub, uint64_t now)
{
	fputs("call ", out);
	for (uint32_t i = 0; i < v->callid_len; i++)
		fputc(v->callid[i] >= 0x20 && v->callid[i] < 0x7f ? v->callid[i] : '?', out);
	fprintf(out, "%s%s\n", v->callid_full > v->callid_len ? "..." : "",
		vc && vc->observe ? "   [mode observe: nothing below was applied]" : "");
	fprintf(out, "  state %s  age %llus  expires in %llus  offer outstanding: %s\n",
		v->confirmed ? "confirmed" : "early", (unsigned long long)(v->age_ms / 1000),
		(unsigned long long)(v->expires_ms / 1000),
		v->offer_from == SIDE_PHONE ? "phone" : v->offer_from == SIDE_REMOTE ? "remote" : "none");
	fputs("  phone  ", out);
	ipport(out, &v->phone_ip, v->phone_port);
	if (v->sig_pub_port) {
		fputs(" public ", out);
		ipport(out, pub, v->sig_pub_port);
	}
	fputs("\n  remote ", out);
	ipport(out, &v->peer_ip, v->peer_port);
	fputc('\n', out);
	for (int k = 0; k < v->n_streams; k++) {
		const struct dialog_stream_view *s = &v->st[k];
		fprintf(out, "  stream m=%u %s  phone ", s->mindex, stream_states[s->state & 3]);
		ipport(out, &s->priv_ip, s->priv_port);
		if (s->routed && !addr_eq(&s->routed_pub, &s->priv_ip)) {
			fputs("  NAT66 public ", out);
			ipport(out, &s->routed_pub, s->priv_port);
		} else if (s->routed) {
			fputs("  routed (IPv6, not translated)", out);
		} else {
			fputs("  public ", out);
			ipport(out, &s->pub_ip, s->pub_port);
		}
		fputs("  remote ", out);
		if (!addr_is_any(&s->remote_ip))
			ipport(out, &s->remote_ip, s->remote_port);
		else
			fputs("(not yet known)", out);
		fputs("\n    pinhole ", out);
		if (s->routed) {
			/* a conntrack entry from exactly the remote's address and port */
			fputs(s->state == DST_ACTIVE ? "conntrack " : "(not created yet) ", out);
			ipport(out, &s->remote_ip, s->remote_port);
			fputs(" -> ", out);
			ipport(out, &s->routed_pub, s->priv_port);
			if (!addr_eq(&s->routed_pub, &s->priv_ip)) {
				fputs(" DNAT ", out);
				ipport(out, &s->priv_ip, s->priv_port);
			}
			fputs(s->rtcp_mux ? " (RTCP mux)\n" : " and RTCP\n", out);
		} else {
			ipport(out, &s->pub_ip, s->pub_port);
			if (s->rtcp_mux)
				fputs("/mux -> ", out);
			else
				fprintf(out, "/%u -> ", s->rtcp_pub_port);
			ipport(out, &s->priv_ip, s->priv_port);
		}
		if (!s->routed) {
			char aa[ADDR_STRLEN];
			fputs(" from ", out);
			if (!addr_is_any(&s->allowed_src))
				fputs((addr_fmt(aa, &s->allowed_src, 0), aa), out);
			else
				fputs("any", out);
			fputc('\n', out);
		}
		struct port_count pc;
		port_count(&pc, s->routed ? &s->routed_pub : &s->pub_ip, s->pub_port, &s->priv_ip, s->priv_port);
		port_count_text(out, "rtp", &pc);
		stream_hint(out, s, &pc);
		if (!s->rtcp_mux) {
			port_count(&pc, s->routed ? &s->routed_pub : &s->pub_ip, s->rtcp_pub_port, &s->rtcp_priv_ip,
				   s->rtcp_priv_port);
			port_count_text(out, "rtcp", &pc);
		}
	}
	calllog_text(out, v->slot, now);
}

/* All dialogs whose Call-ID starts with `prefix`. A prefix that matches two
 * different Call-IDs is refused (ambiguous); one Call-ID may be several
 * dialogs (a call hairpinned between two LAN phones). */
static void call(FILE *out, const char *prefix, int json, uint64_t now)
{
	struct dialog_view v, first;
	uint32_t cur = 0;
	struct addr pub = addr_v4(binding_public_ip());
	size_t pl = strlen(prefix);
	int n = 0;

	while (dialog_view_next(&cur, &v, now)) {
		if (v.callid_len < pl && v.callid_full >= pl)
			continue; /* the kept prefix is shorter than what was asked */
		if (memcmp(v.callid, prefix, pl < v.callid_len ? pl : v.callid_len))
			continue;
		if (!n) {
			first = v;
		} else if (v.callid_len != first.callid_len || v.callid_full != first.callid_full ||
			   memcmp(v.callid, first.callid, v.callid_len)) {
			fprintf(out, "error: '%s' matches more than one call; give more of the Call-ID\n", prefix);
			return;
		}
		n++;
	}
	if (!n && calllog_untracked_match(prefix)) {
		/* No dialog, but its messages were dropped or ignored: say why. */
		if (json) {
			fprintf(out, "{\"mode\":\"%s\",\"calls\":[],\"untracked\":", MODE());
			calllog_untracked_json(out, prefix, now);
			fputs("}\n", out);
		} else {
			fprintf(out, "call %s: no dialog\n", prefix);
			calllog_untracked_text(out, prefix, now);
		}
		return;
	}
	if (!n) {
		/* The counters that drop or pass a message before any dialog
		 * exists, and the ports: SIP on a port not in sip.ports is never
		 * queued to us, so it leaves no trace here at all (a phone or PBX
		 * on 5080 is the usual case). */
		fprintf(out, "error: no call matches '%s' (not_lan %llu, drop_rate %llu, drop_limit %llu, "
			     "drop_no_wan_address %llu); only SIP on sip.ports",
			prefix, (unsigned long long)stats[ST_not_lan], (unsigned long long)stats[ST_drop_rate],
			(unsigned long long)stats[ST_drop_limit], (unsigned long long)stats[ST_drop_no_wan_address]);
		for (int i = 0; vc && i < vc->n_sip_ports; i++)
			fprintf(out, "%s%u", i ? "," : " ", vc->sip_ports[i]);
		fputs(" is seen\n", out);
		return;
	}
	if (json)
		fprintf(out, "{\"mode\":\"%s\",\"calls\":[", MODE());
	cur = 0;
	n = 0;
	while (dialog_view_next(&cur, &v, now)) {
		if (v.callid_len != first.callid_len || v.callid_full != first.callid_full ||
		    memcmp(v.callid, first.callid, v.callid_len))
			continue;
		if (json) {
			if (n)
				fputc(',', out);
			dialog_json(out, &v, &pub, 1, now);
		} else {
			call_text(out, &v, &pub, now);
		}
		n++;
	}
	if (json)
		fputs("]}\n", out);
}

/* trace ADDRESS|CALL-ID [SECONDS] | trace off | trace status */
static void trace_cmd(FILE *out, const char *what, const char *secs, int json, uint64_t now)
{
	char d[160], *end;
	unsigned long n = 0;

	if (secs) {
		n = strtoul(secs, &end, 10);
		if (*end || !*secs || n == 0 || n > TRACE_MAX_S) {
			fprintf(out, "error: SECONDS must be 1..%d\n", TRACE_MAX_S);
			return;
		}
	}
	if (!strcmp(what, "off"))
		trace_stop(now, "sipalgctl trace off");
	else if (strcmp(what, "status") && trace_start(what, (uint32_t)n, now) < 0) {
		fprintf(out, "error: trace what? an IPv4 address or a Call-ID prefix of at most 64 bytes\n");
		return;
	}
	trace_active(now);
	trace_describe(d, sizeof(d), now);
	if (json) {
		fputs("{\"trace\":{\"state\":", out);
		json_cstr(out, d);
		fputs("}}\n", out);
	} else {
		fprintf(out, "trace %s\n", d);
	}
}

int view_answer(const char *line, FILE *out, const struct conf *c, uint64_t now, uint64_t start_ms)
{
	char buf[256], *arg[VIEW_ARGS], *save = NULL, *t;
	int nargs = 0, json = 0;

	vc = c;
	if (strlen(line) >= sizeof(buf))
		return -1;
	strcpy(buf, line);
	for (t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (!strcmp(t, "--json"))
			json = 1;
		else if (nargs < VIEW_ARGS)
			arg[nargs++] = t;
		else
			return -1;
	}
	if (nargs == 0)
		return -1;
	if (nargs == 1 && !strcmp(arg[0], "status"))
		status(out, json, now, start_ms);
	else if (nargs == 1 && !strcmp(arg[0], "counters"))
		counters(out, json);
	else if (nargs == 1 && !strcmp(arg[0], "metrics") && !json)
		metrics(out, now, start_ms);
	else if (nargs == 1 && !strcmp(arg[0], "bindings"))
		bindings(out, json, now);
	else if (nargs == 1 && !strcmp(arg[0], "dialogs"))
		dialogs(out, json, now);
	else if (nargs == 1 && !strcmp(arg[0], "pinholes"))
		pinholes(out, json, now);
	else if (nargs == 2 && !strcmp(arg[0], "call"))
		call(out, arg[1], json, now);
	else if ((nargs == 2 || nargs == 3) && !strcmp(arg[0], "trace"))
		trace_cmd(out, arg[1], nargs == 3 ? arg[2] : NULL, json, now);
	else
		return -1;
	return 0;
}
