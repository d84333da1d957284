/* fwwatch: firewall reloads repair themselves. See fwwatch.h.
 *
 * Two netlink sockets:
 *  - the event socket joins NFNLGRP_NFTABLES. Every nf_tables transaction
 *    ends with NFT_MSG_NEWGEN; a transaction that carried anything but set
 *    elements (a table, chain, rule or set added or deleted) marks the
 *    ruleset "to check", and the check runs at its NEWGEN. Our own element
 *    batches (one per burst of calls) carry only NEWSETELEM/DELSETELEM, so
 *    they never cause a check; our own repair does cause one, which finds
 *    everything in place and ends there: no loop.
 *  - the query socket asks the kernel (GETTABLE, rule dumps of one chain).
 *
 * What "in place" means:
 *  - our table exists and is the one we made (its handle: a table swapped
 *    for a copy, e.g. `nft -f` of a saved ruleset, has a new handle and
 *    stale elements), with its 3 rules in `pre` and 2 in `post`; with
 *    wan.masquerade6, its table ip6 twin too (2 rules and 1), under the
 *    same name: nftmap_restore() puts both back in one transaction;
 *  - the diversion: rules_where() names the chain and rule count, and the
 *    jump to it from FORWARD for iptables; for IPv4, and for IPv6 when
 *    rules.c installed that copy (ip6tables rules live in table ip6 mangle).
 * A check is a handful of netlink round trips (tens of microseconds), so it
 * also runs every second as a safety net: a lost event (ENOBUFS) or a
 * kernel that did not tell cannot leave us without rules for longer.
 *
 * Reacting to an event rather than polling only shortens the window; it
 * cannot close it: nf_tables has no object a `flush ruleset` leaves alone.
 * docs/limits.md says what leaks meanwhile (tens of ms) and why no drop
 * survives the flush on this kernel. */
#include "fwwatch.h"

#include "binding.h"
#include "conf.h"
#include "log.h"
#include "nftmap.h"
#include "rules.h"
#include "stats.h"
#include "tcprelay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/netfilter.h>
#include <linux/netlink.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/xt_conntrack.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

enum { MISS_TABLE = 1, MISS_DIVERT = 2, MISS_JUMP = 4, MISS_TCP = 8, MISS_DIVERT6 = 16, MISS_JUMP6 = 32 };

static const struct conf *fw_conf;
static int fw_divert, fw_divert6;
static struct rules_where fw_where, fw_where6;
static struct mnl_socket *fw_ev, *fw_q;
static uint32_t fw_qportid, fw_seq;
static uint64_t fw_handle;        /* of the table we made; 0 = unknown */
static uint64_t fw_handle6;       /* of its ip6 twin (wan.masquerade6); 0 = unknown */
static int fw_dirty;              /* a foreign transaction is in progress */
static uint64_t fw_dirty_since;   /* ms, first event of what is to check */
static uint64_t fw_next_check;    /* ms, the safety net */
static unsigned fw_failed;        /* repairs failed in a row */
static char fw_buf[64 * 1024] __attribute__((aligned(8)));

static uint64_t fw_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- queries ----------------------------------------------------------- */

/* Send one request, run cb on each answer until the dump ends or the ACK
 * comes. 0, or -1 with errno (ENOENT: no such object). */
static int fw_query(struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	uint32_t seq = nlh->nlmsg_seq;
	int ret;

	if (!fw_q) {
		errno = ENOTCONN;
		return -1;
	}
	if (mnl_socket_sendto(fw_q, nlh, nlh->nlmsg_len) < 0)
		return -1;
	for (;;) {
		ret = (int)mnl_socket_recvfrom(fw_q, fw_buf, sizeof(fw_buf));
		if (ret <= 0)
			return -1; /* SO_RCVTIMEO: never block the loop for long */
		ret = mnl_cb_run(fw_buf, (size_t)ret, seq, fw_qportid, cb, data);
		if (ret <= MNL_CB_STOP)
			return ret < 0 ? -1 : 0;
	}
}

static int fw_table_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_table *t = nftnl_table_alloc();

	if (t && nftnl_table_nlmsg_parse(nlh, t) == 0 && nftnl_table_is_set(t, NFTNL_TABLE_HANDLE))
		*(uint64_t *)data = nftnl_table_get_u64(t, NFTNL_TABLE_HANDLE);
	nftnl_table_free(t);
	return MNL_CB_OK;
}

/* The handle of table ip `name`, 0 when there is none. */
static uint64_t fw_table_handle_fam(uint16_t family, const char *name)
{
	struct nftnl_table *t = nftnl_table_alloc();
	char req[512] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	uint64_t h = 0;

	if (!t)
		return 0;
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, name);
	nlh = nftnl_nlmsg_build_hdr(req, NFT_MSG_GETTABLE, family, NLM_F_ACK, ++fw_seq);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	if (fw_query(nlh, fw_table_cb, &h) < 0)
		return 0;
	return h;
}

static uint64_t fw_table_handle(const char *name)
{
	return fw_table_handle_fam(NFPROTO_IPV4, name);
}

struct fw_rules {
	const char *jump;   /* count immediate jumps to this chain */
	int n, jumps;
	int ct_sip;         /* xt CT targets with helper "sip" */
	int dnat_accept;    /* rules accepting `ct status dnat` (or xt conntrack DNAT) */
};

/* iptables(-nft) `-m conntrack`: does it match DNAT'ed flows? Its info is
 * struct xt_conntrack_mtinfo1/2/3 (by revision): `--ctstate DNAT` or
 * `--ctstatus DNAT`, not inverted. `--ctstate RELATED,ESTABLISHED`, which
 * every iptables firewall has (ufw's ufw-before-forward, Docker's
 * DOCKER-CT), does not: a pinhole's first packet is NEW. A revision we do
 * not know is taken as a match (never a false alarm from it). */
static int fw_xt_ct_dnat(const struct nftnl_expr *e)
{
	uint32_t len = 0, rev = nftnl_expr_is_set(e, NFTNL_EXPR_MT_REV) ?
		nftnl_expr_get_u32(e, NFTNL_EXPR_MT_REV) : 0;
	const void *info = nftnl_expr_get(e, NFTNL_EXPR_MT_INFO, &len);
	uint16_t flags, inv, state, status;

	if (!info)
		return 0;
	if (rev == 1) {
		struct xt_conntrack_mtinfo1 m;

		if (len < sizeof(m))
			return 0;
		memcpy(&m, info, sizeof(m)); /* the info may sit unaligned */
		flags = m.match_flags, inv = m.invert_flags, state = m.state_mask, status = m.status_mask;
	} else if (rev == 2 || rev == 3) {
		/* 3 appends port ranges to 2: the fields read are where 2 has them */
		struct xt_conntrack_mtinfo2 m;

		if (len < sizeof(m))
			return 0;
		memcpy(&m, info, sizeof(m));
		flags = m.match_flags, inv = m.invert_flags, state = m.state_mask, status = m.status_mask;
	} else {
		return 1;
	}
	if ((flags & XT_CONNTRACK_STATE) && !(inv & XT_CONNTRACK_STATE) &&
	    (state & XT_CONNTRACK_STATE_DNAT))
		return 1;
	if ((flags & XT_CONNTRACK_STATUS) && !(inv & XT_CONNTRACK_STATUS) && (status & IPS_DST_NAT))
		return 1;
	return 0;
}

static int fw_rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct fw_rules *fr = data;
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nftnl_expr_iter *it;
	struct nftnl_expr *e;

	if (!r || nftnl_rule_nlmsg_parse(nlh, r) < 0) {
		nftnl_rule_free(r);
		return MNL_CB_OK;
	}
	fr->n++;
	int ct_status = 0, dnat_mask = 0, xt_ct = 0, accept = 0;
	it = nftnl_expr_iter_create(r);
	while (it && (e = nftnl_expr_iter_next(it))) {
		const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

		if (!name)
			continue;
		/* `ct status dnat accept`: ct load of the status, a bitwise
		 * whose mask has IPS_DST_NAT (host order), an accept verdict;
		 * or iptables' `-m conntrack --ctstate DNAT -j ACCEPT`. */
		if (!strcmp(name, "ct") && nftnl_expr_is_set(e, NFTNL_EXPR_CT_KEY) &&
		    nftnl_expr_get_u32(e, NFTNL_EXPR_CT_KEY) == NFT_CT_STATUS)
			ct_status = 1;
		if (ct_status && !strcmp(name, "bitwise") && nftnl_expr_is_set(e, NFTNL_EXPR_BITWISE_MASK)) {
			uint32_t ml = 0, m = 0;
			const void *mask = nftnl_expr_get(e, NFTNL_EXPR_BITWISE_MASK, &ml);

			if (mask && ml >= sizeof(m)) {
				memcpy(&m, mask, sizeof(m));
				if (m & IPS_DST_NAT)
					dnat_mask = 1;
			}
		}
		if (!strcmp(name, "match") && nftnl_expr_is_set(e, NFTNL_EXPR_MT_NAME) &&
		    !strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_MT_NAME), "conntrack") && fw_xt_ct_dnat(e))
			xt_ct = 1;
		if (!strcmp(name, "immediate") && nftnl_expr_is_set(e, NFTNL_EXPR_IMM_VERDICT) &&
		    (int)nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT) == NF_ACCEPT)
			accept = 1;
		if (fr->jump && !strcmp(name, "immediate") &&
		    nftnl_expr_is_set(e, NFTNL_EXPR_IMM_VERDICT) &&
		    (int)nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT) == NFT_JUMP &&
		    nftnl_expr_is_set(e, NFTNL_EXPR_IMM_CHAIN) &&
		    !strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_IMM_CHAIN), fr->jump))
			fr->jumps++;
		if (!strcmp(name, "target") && nftnl_expr_is_set(e, NFTNL_EXPR_TG_NAME) &&
		    !strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_TG_NAME), "CT")) {
			uint32_t len = 0;
			const char *info = nftnl_expr_get(e, NFTNL_EXPR_TG_INFO, &len);

			/* struct xt_ct_target_info(_v1): flags, zone,
			 * ct_events, exp_events, then helper[16] at 12. */
			if (info && len >= 12 + 4 && !memcmp(info + 12, "sip", 4))
				fr->ct_sip++;
		}
	}
	nftnl_expr_iter_destroy(it);
	nftnl_rule_free(r);
	if (accept && ((ct_status && dnat_mask) || xt_ct))
		fr->dnat_accept++;
	return MNL_CB_OK;
}

/* Rules of table `table` of family `nfproto` (chain `chain`, or all when
 * NULL). A missing table or chain is simply no rules. -1 when the kernel
 * did not answer. */
static int fw_rules_count(int nfproto, const char *table, const char *chain, struct fw_rules *fr)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	char req[512] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	int ret;

	if (!r)
		return -1;
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table);
	if (chain)
		nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	nlh = nftnl_nlmsg_build_hdr(req, NFT_MSG_GETRULE, (uint16_t)nfproto, NLM_F_DUMP, ++fw_seq);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	nftnl_rule_free(r);
	ret = fw_query(nlh, fw_rule_cb, fr);
	if (ret < 0 && errno == ENOENT)
		return 0;
	return ret;
}

/* What is missing, as a mask, named in buf. A kernel that does not answer
 * counts as nothing missing: we repair only what we saw gone. */
static unsigned fw_check(char *buf, size_t len)
{
	struct fw_rules fr;
	unsigned miss = 0;
	size_t off = 0;
	uint64_t h;

#define FW_SAY(...) do { if (off < len) off += (size_t)snprintf(buf + off, len - off, \
	"%s", off ? ", " : ""); if (off < len) off += (size_t)snprintf(buf + off, len - off, __VA_ARGS__); } while (0)
	if (len)
		buf[0] = '\0';
	/* Our NAT table, and its ip6 twin when nftmap built one (masquerade6
	 * needs a restart, so fw_conf says what nftmap_open saw). */
	for (int v6 = 0; v6 <= (fw_conf->n_masq6 > 0); v6++) {
		static const struct { const char *chain; int n, n6; } want[] = { { "pre", 3, 2 }, { "post", 2, 1 } };
		uint16_t nfproto = v6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
		uint64_t known = v6 ? fw_handle6 : fw_handle;
		const char *fam = v6 ? "ip6" : "ip";

		h = fw_table_handle_fam(nfproto, fw_conf->nft_table);
		if (!h) {
			miss |= MISS_TABLE;
			FW_SAY("table %s %s", fam, fw_conf->nft_table);
			continue;
		}
		if (known && h != known) {
			miss |= MISS_TABLE;
			FW_SAY("table %s %s (replaced)", fam, fw_conf->nft_table);
			continue;
		}
		for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
			int n = v6 ? want[i].n6 : want[i].n;

			memset(&fr, 0, sizeof(fr));
			if (fw_rules_count(nfproto, fw_conf->nft_table, want[i].chain, &fr) == 0 && fr.n != n) {
				miss |= MISS_TABLE;
				FW_SAY("chain %s %s %s (%d of %d rules)", fam, fw_conf->nft_table,
				       want[i].chain, fr.n, n);
			}
		}
	}
	/* The TCP relay's table: without it SIP/TCP is neither relayed nor
	 * reset, and leaves with the phone's addresses. */
	if (tcprelay_rules_expected()) {
		char tcp[48];

		snprintf(tcp, sizeof(tcp), "%s_tcp", fw_conf->nft_table);
		if (!fw_table_handle(tcp)) {
			miss |= MISS_TCP;
			FW_SAY("table ip %s", tcp);
		}
		/* its IPv6 copy: without it IPv6 SIP/TCP passes unseen */
		snprintf(tcp, sizeof(tcp), "%s_tcp6", fw_conf->nft_table);
		if (tcprelay_rules_expected() > 1 && !fw_table_handle_fam(NFPROTO_IPV6, tcp)) {
			miss |= MISS_TCP;
			FW_SAY("table ip6 %s", tcp);
		}
	}
	for (int v6 = 0; v6 < 2; v6++) {
		const struct rules_where *w = v6 ? &fw_where6 : &fw_where;
		unsigned m_div = v6 ? MISS_DIVERT6 : MISS_DIVERT, m_jump = v6 ? MISS_JUMP6 : MISS_JUMP;
		const char *fam = v6 ? "ip6" : "ip";

		if (!(v6 ? fw_divert6 : fw_divert))
			continue;
		memset(&fr, 0, sizeof(fr));
		if (fw_rules_count(w->nfproto, w->table, w->chain, &fr) == 0 && fr.n != w->nrules) {
			miss |= m_div;
			FW_SAY("diversion %s %s %s (%d of %d rules)", fam, w->table, w->chain,
			       fr.n, w->nrules);
		}
		if (w->from[0]) {
			memset(&fr, 0, sizeof(fr));
			fr.jump = w->chain;
			if (fw_rules_count(w->nfproto, w->table, w->from, &fr) == 0 && fr.jumps == 0) {
				miss |= m_div | m_jump;
				FW_SAY("diversion jump %s %s %s -> %s", fam, w->table, w->from, w->chain);
			}
		}
	}
#undef FW_SAY
	return miss;
}

int fwwatch_missing(char *buf, size_t len)
{
	unsigned m;

	if (!fw_conf)
		return 0;
	m = fw_check(buf, len);
	return (m & MISS_TABLE ? 1 : 0) + (m & MISS_DIVERT ? 1 : 0) + (m & MISS_TCP ? 1 : 0) +
	       (m & MISS_DIVERT6 ? 1 : 0);
}

/* ---- repair ------------------------------------------------------------ */

static void fw_repair(unsigned miss, const char *what, uint64_t since)
{
	char after[256];
	int ok = 1;

	/* The diversion first: without it SIP leaves unrewritten; without
	 * our table only our own port choices are off until it is back. */
	if ((miss & MISS_DIVERT) && rules_repair(fw_conf, RULES_IP4, !!(miss & MISS_JUMP)) < 0)
		ok = 0;
	if ((miss & MISS_DIVERT6) && rules_repair(fw_conf, RULES_IP6, !!(miss & MISS_JUMP6)) < 0)
		ok = 0;
	if ((miss & MISS_TCP) && tcprelay_rules_repair() < 0)
		ok = 0;
	if (miss & MISS_TABLE) {
		if (nftmap_restore() < 0) {
			ok = 0;
		} else {
			/* The tables are ours again: their new handles are the ones to keep. */
			fw_handle = fw_table_handle(fw_conf->nft_table);
			if (fw_conf->n_masq6 > 0)
				fw_handle6 = fw_table_handle_fam(NFPROTO_IPV6, fw_conf->nft_table);
			binding_repush();
			nftmap_commit();
		}
	}
	miss = fw_check(after, sizeof(after));
	if (ok && !miss) {
		uint64_t ms = fw_now() - since;

		fw_failed = 0;
		STAT_INC(rules_restored);
		stats[ST_rules_repair_ms] = ms;
		LOG_RL(LOG_LVL_WARN, "firewall: %s was removed by someone else; put back "
		       "with every binding and pinhole in %llu ms", what, (unsigned long long)ms);
		return;
	}
	fw_failed++;
	STAT_INC(rules_repair_failed);
	LOG_RL(LOG_LVL_ERR, "firewall: %s missing and could not be put back (still missing: %s); "
	       "SIP from the LAN is not rewritten meanwhile; retrying every second",
	       what, miss ? after : "?");
}

/* from_event: a repair that failed is retried by the tick only, once a
 * second, never from the events our own attempt caused (no loop). */
static void fw_check_and_repair(uint64_t since, int from_event)
{
	char what[256];
	unsigned miss = fw_check(what, sizeof(what));

	stats[ST_rules_missing] = miss ? 1 : 0;
	if (miss && !(from_event && fw_failed)) {
		fw_repair(miss, what, since);
		stats[ST_rules_missing] = fw_failed ? 1 : 0;
	}
}

/* ---- the kernel's SIP helper -------------------------------------------- */

struct fw_helper { int objs; char where[96]; };

static int fw_obj_cb(const struct nlmsghdr *nlh, void *data)
{
	struct fw_helper *fh = data;
	struct nftnl_obj *o = nftnl_obj_alloc();

	if (o && nftnl_obj_nlmsg_parse(nlh, o) == 0 &&
	    nftnl_obj_is_set(o, NFTNL_OBJ_CT_HELPER_NAME) &&
	    !strcmp(nftnl_obj_get_str(o, NFTNL_OBJ_CT_HELPER_NAME), "sip")) {
		if (!fh->objs++)
			snprintf(fh->where, sizeof(fh->where), "%s %s",
				 nftnl_obj_get_str(o, NFTNL_OBJ_TABLE), nftnl_obj_get_str(o, NFTNL_OBJ_NAME));
	}
	nftnl_obj_free(o);
	return MNL_CB_OK;
}

static int fw_ct_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *a, *h;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
		if ((mnl_attr_get_type(a) & NLA_TYPE_MASK) != CTA_HELP ||
		    mnl_attr_validate(a, MNL_TYPE_NESTED) < 0)
			continue;
		mnl_attr_for_each_nested(h, a) {
			if (mnl_attr_get_type(h) == CTA_HELP_NAME &&
			    mnl_attr_validate(h, MNL_TYPE_NUL_STRING) == 0 &&
			    !strcmp(mnl_attr_get_str(h), "sip"))
				(*(int *)data)++;
		}
	}
	return MNL_CB_OK;
}

static int fw_helper_find(char *buf, size_t len, int with_ct)
{
	char req[512] __attribute__((aligned(8)));
	struct nftnl_obj *o;
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;
	struct fw_helper fh;
	struct fw_rules fr;
	int found = 0, cts = 0;
	size_t off = 0;

	if (len)
		buf[0] = '\0';
	if (!fw_q)
		return 0;
	/* nft: a `ct helper` object naming the kernel's sip helper, in any
	 * table of any family (rules assign it with `ct helper set`). */
	memset(&fh, 0, sizeof(fh));
	o = nftnl_obj_alloc();
	if (o) {
		nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_CT_HELPER);
		nlh = nftnl_nlmsg_build_hdr(req, NFT_MSG_GETOBJ, NFPROTO_UNSPEC, NLM_F_DUMP, ++fw_seq);
		nftnl_obj_nlmsg_build_payload(nlh, o);
		nftnl_obj_free(o);
		fw_query(nlh, fw_obj_cb, &fh);
	}
	if (fh.objs) {
		found++;
		off += (size_t)snprintf(buf + off, len - off, "nft ct helper object %s", fh.where);
	}
	/* iptables(-nft): -t raw ... -j CT --helper sip, and the same in
	 * ip6tables (IPv6 SIP is diverted too). */
	for (int v6 = 0; v6 < 2; v6++) {
		memset(&fr, 0, sizeof(fr));
		if (fw_rules_count(v6 ? NFPROTO_IPV6 : NFPROTO_IPV4, "raw", NULL, &fr) == 0 && fr.ct_sip &&
		    off < len) {
			found++;
			off += (size_t)snprintf(buf + off, len - off, "%s%s -t raw -j CT --helper sip",
						off ? ", " : "", v6 ? "ip6tables" : "iptables");
		}
	}
	/* Conntrack entries the helper is attached to (however it got
	 * there). The dump walks the conntrack table: only at start and
	 * when an operator asks for status, at most once a minute. */
	nlh = mnl_nlmsg_put_header(req);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = ++fw_seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC; /* both families: IPv6 SIP is ours too */
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	/* What the last walk found stands in between walks. */
	static int cts_seen;
	if (with_ct) {
		fw_query(nlh, fw_ct_cb, &cts);
		cts_seen = cts;
	}
	cts = cts_seen;
	if (cts && off < len) {
		found++;
		off += (size_t)snprintf(buf + off, len - off, "%s%d conntrack entries with helper sip",
					off ? ", " : "", cts);
	}
	stats[ST_kernel_helper] = found ? 1 : 0;
	return found;
}

int fwwatch_helper(char *buf, size_t len)
{
	/* `status` runs in the packet loop: walk the conntrack table at most
	 * once a minute (a monitor may ask every few seconds). */
	static uint64_t last_walk;
	uint64_t now = fw_now();
	int walk = !last_walk || now - last_walk >= 60000;

	if (walk)
		last_walk = now;
	return fw_helper_find(buf, len, walk);
}

/* with_ct: also walk the conntrack table (start only; a rule change asks
 * the ruleset alone). */
static void fw_helper_warn(int with_ct)
{
	char where[256];

	if (fw_helper_find(where, sizeof(where), with_ct))
		LOG_RL(LOG_LVL_WARN, "the kernel SIP helper is attached to the same traffic (%s): two ALGs "
		       "rewrite every message twice. Switch it off: remove the `ct helper` rule/object "
		       "or `-j CT --helper sip` rule, `modprobe -r nf_nat_sip nf_conntrack_sip`, "
		       "and net.netfilter.nf_conntrack_helper=0 on kernels that still have it", where);
}

/* ---- a forward policy that drops our DNAT'ed media --------------------------
 *
 * Pinholes are DNAT state (style note 6): an accept in our table does not
 * beat a drop in the operator's, so remote-first media reaches the phone
 * only if every forward base chain lets DNAT'ed flows through. A forward
 * chain with policy drop (ip or inet; ip6 too with wan.masquerade6, whose
 * media pinholes are DNAT elements of our ip6 table) in a table where no
 * rule accepts `ct status dnat` drops it, silently for the operator.
 * Without masquerade6 an ip6 chain is none of our business: IPv6 media
 * pinholes are then conntrack entries, ESTABLISHED from their first
 * packet, and no IPv6 flow is DNAT'ed by us. Looked for at
 * start and after each foreign ruleset change (a dump of the chains, then
 * of the rules of the few tables concerned), said once per change. The
 * rule may sit in a chain the base chain jumps to (fw4's zone chains, or
 * its nftables.d fragment): any rule of the table counts. */

#define FWD_MAX 8
struct fw_fwd {
	int n;
	struct { uint16_t family; char table[64], chain[64]; } c[FWD_MAX];
};

static int fw_chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct fw_fwd *f = data;
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (c && nftnl_chain_nlmsg_parse(nlh, c) == 0 && f->n < FWD_MAX &&
	    nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM) && nftnl_chain_is_set(c, NFTNL_CHAIN_POLICY) &&
	    nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM) == NF_INET_FORWARD &&
	    nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY) == NF_DROP) {
		uint32_t fam = nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY);
		const char *t = nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE), *n = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME);

		int ours = fam == NFPROTO_IPV4 || fam == NFPROTO_INET ||
			   (fam == NFPROTO_IPV6 && fw_conf && fw_conf->n_masq6 > 0);

		if (ours && t && n) {
			f->c[f->n].family = (uint16_t)fam;
			snprintf(f->c[f->n].table, sizeof(f->c[f->n].table), "%s", t);
			snprintf(f->c[f->n].chain, sizeof(f->c[f->n].chain), "%s", n);
			f->n++;
		}
	}
	nftnl_chain_free(c);
	return MNL_CB_OK;
}

static int fwd_found = -1;         /* -1: not looked yet */
static char fwd_where[256];
/* A firewall reload passes through states that drop everything for a
 * moment (ufw's flushed chains under policy DROP, firewalld's
 * firewalld_policy_drop table while it reloads): the forward policy is
 * looked at once the ruleset has been quiet for FWD_SETTLE_MS, or
 * FWD_SETTLE_MAX_MS after the first change of a ruleset that never
 * settles. Until then status shows what was found before. */
#define FWD_SETTLE_MS 1000
#define FWD_SETTLE_MAX_MS 5000
static uint64_t fwd_due, fwd_pending_since; /* ms; 0: nothing pending */

/* 1 (and the chains named in buf) when a forward policy drops DNAT'ed media. */
static int fw_forward_find(char *buf, size_t len)
{
	char req[512] __attribute__((aligned(8)));
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;
	struct fw_fwd f;
	size_t off = 0;
	int found = 0;

	if (len)
		buf[0] = '\0';
	if (!c || !fw_q) {
		nftnl_chain_free(c);
		return 0;
	}
	memset(&f, 0, sizeof(f));
	nlh = nftnl_nlmsg_build_hdr(req, NFT_MSG_GETCHAIN, NFPROTO_UNSPEC, NLM_F_DUMP, ++fw_seq);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	if (fw_query(nlh, fw_chain_cb, &f) < 0)
		return 0; /* no answer: no alarm */
	for (int i = 0; i < f.n; i++) {
		struct fw_rules fr;

		memset(&fr, 0, sizeof(fr));
		if (fw_rules_count(f.c[i].family, f.c[i].table, NULL, &fr) < 0 || fr.dnat_accept)
			continue;
		found++;
		if (off < len)
			off += (size_t)snprintf(buf + off, len - off, "%s%s %s chain %s", off ? ", " : "",
						f.c[i].family == NFPROTO_INET ? "inet" :
						f.c[i].family == NFPROTO_IPV6 ? "ip6" : "ip", f.c[i].table,
						f.c[i].chain);
	}
	return found ? 1 : 0;
}

/* Look again; warn when what is found changed, and say when it is gone. */
static void fw_forward_check(void)
{
	char where[256];
	int found = fw_forward_find(where, sizeof(where));

	if (found && (fwd_found != 1 || strcmp(where, fwd_where)))
		log_warn("firewall: the forward policy of %s drops the media of our pinholes (DNAT "
			 "flows) and no rule there accepts them: RTP sent first by the remote never "
			 "reaches the phone. Add `ct status dnat accept` to that chain (iptables: "
			 "-A FORWARD -m conntrack --ctstate DNAT -j ACCEPT; README, \"On a router\"; "
			 "on OpenWrt the package's nftables.d fragment does it)", where);
	else if (!found && fwd_found == 1)
		log_info("firewall: the forward policy accepts DNAT'ed media again");
	fwd_found = found;
	snprintf(fwd_where, sizeof(fwd_where), "%s", found ? where : "");
	stats[ST_forward_drops_dnat] = (uint64_t)found;
}

int fwwatch_forward_drop(char *buf, size_t len)
{
	if (len)
		snprintf(buf, len, "%s", fwd_found == 1 ? fwd_where : "");
	return fwd_found == 1;
}

/* ---- events ------------------------------------------------------------ */

/* Events: our own element batches make two or three datagrams per burst
 * of calls (elements, NEWGEN), so take what is queued with one recvmmsg()
 * rather than a recv() each and one more for EAGAIN. Their own slots: a
 * check (below) queries through fw_buf. An event datagram is at most
 * NLMSG_GOODSIZE (< 8 KiB); a larger one is cut, and its cut-off tail is
 * read as "something changed": checked, never missed. */
#define FW_EV_SLOTS 8
#define FW_EV_SLOT 8192
static char fw_ev_buf[FW_EV_SLOTS][FW_EV_SLOT] __attribute__((aligned(8)));

void fwwatch_event(uint64_t now)
{
	static struct mmsghdr mm[FW_EV_SLOTS];
	static struct iovec iov[FW_EV_SLOTS];
	int fd, checks = 0, helper = 0;

	if (!fw_ev)
		return;
	fd = mnl_socket_get_fd(fw_ev);
	for (int rounds = 0; rounds < 64; rounds++) {
		for (int i = 0; i < FW_EV_SLOTS; i++) {
			iov[i].iov_base = fw_ev_buf[i];
			iov[i].iov_len = FW_EV_SLOT;
			memset(&mm[i].msg_hdr, 0, sizeof(mm[i].msg_hdr));
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		int got = recvmmsg(fd, mm, FW_EV_SLOTS, MSG_DONTWAIT, NULL);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				/* Events were lost: whatever they said, check. */
				if (!fw_dirty)
					fw_dirty_since = now;
				fw_dirty = 1;
				continue;
			}
			break; /* EAGAIN: all read */
		}
		for (int m = 0; m < got; m++) {
			const struct nlmsghdr *nlh = (const struct nlmsghdr *)fw_ev_buf[m];
			int len = (int)mm[m].msg_len;

			if ((mm[m].msg_hdr.msg_flags & MSG_TRUNC) || len > FW_EV_SLOT) {
				len = FW_EV_SLOT;
				if (!fw_dirty)
					fw_dirty_since = now;
				fw_dirty = 1;
			}
			for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
				int type;

				if ((nlh->nlmsg_type >> 8) != NFNL_SUBSYS_NFTABLES)
					continue;
				type = nlh->nlmsg_type & 0xff;
				switch (type) {
				case NFT_MSG_NEWSETELEM:
				case NFT_MSG_DELSETELEM:
					break; /* elements: ours, or nothing we need */
				case NFT_MSG_NEWGEN:
					if (fw_dirty) {
						fw_dirty = 0;
						checks++;
					}
					break;
				default:
					/* A new object or rule may be a ct helper. */
					if (type == NFT_MSG_NEWOBJ || type == NFT_MSG_NEWRULE)
						helper = 1;
					if (!fw_dirty)
						fw_dirty_since = now;
					fw_dirty = 1;
					break;
				}
			}
		}
		if (got < FW_EV_SLOTS)
			break; /* took all that was queued */
	}
	/* Checked once for every transaction read now, after the reading:
	 * the check's queries use fw_buf and may take long enough for more
	 * events, which the next poll brings. */
	if (checks)
		fw_check_and_repair(fw_dirty_since, 1);
	/* A transaction whose NEWGEN we have not seen yet is checked when it
	 * comes; a lost one by the tick. */
	if (checks) {
		fw_next_check = now + 1000;
		if (!fwd_pending_since)
			fwd_pending_since = now;
		fwd_due = now + FWD_SETTLE_MS;
	}
	if (helper)
		fw_helper_warn(0);
}

void fwwatch_tick(uint64_t now)
{
	if (fw_conf && fwd_pending_since &&
	    (now >= fwd_due || now - fwd_pending_since >= FWD_SETTLE_MAX_MS)) {
		fwd_pending_since = fwd_due = 0;
		fw_forward_check();
	}
	if (!fw_conf || now < fw_next_check)
		return;
	/* A dirty state older than a tick lost its NEWGEN (ENOBUFS). */
	fw_next_check = now + 1000;
	fw_dirty = 0;
	fw_check_and_repair(now, 0);
}

/* ---- open / close -------------------------------------------------------- */

int fwwatch_open(const struct conf *c, int divert)
{
	int grp = NFNLGRP_NFTABLES, v = 1024 * 1024;
	struct timeval tv = { 1, 0 };
	char what[256];

	fw_conf = c;
	fw_divert = divert && rules_where(c, RULES_IP4, &fw_where) == 0;
	fw_divert6 = divert && rules_where(c, RULES_IP6, &fw_where6) == 0;
	fw_ev = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);
	fw_q = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!fw_ev || !fw_q || mnl_socket_bind(fw_ev, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_bind(fw_q, 0, MNL_SOCKET_AUTOPID) < 0) {
		log_err("fwwatch: netlink socket: %s", strerror(errno));
		goto fail;
	}
	if (setsockopt(mnl_socket_get_fd(fw_ev), SOL_NETLINK, NETLINK_ADD_MEMBERSHIP,
		       &grp, sizeof(grp)) < 0) {
		log_err("fwwatch: cannot join the nftables event group: %s", strerror(errno));
		goto fail;
	}
	/* A flush of a large ruleset is one event per object. */
	if (setsockopt(mnl_socket_get_fd(fw_ev), SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
		setsockopt(mnl_socket_get_fd(fw_ev), SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	setsockopt(mnl_socket_get_fd(fw_q), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	fw_qportid = mnl_socket_get_portid(fw_q);
	fw_seq = (uint32_t)time(NULL);
	fw_handle = fw_table_handle(c->nft_table);
	fw_handle6 = c->n_masq6 > 0 ? fw_table_handle_fam(NFPROTO_IPV6, c->nft_table) : 0;
	if (fwwatch_missing(what, sizeof(what)))
		log_warn("fwwatch: at start, missing: %s", what);
	fw_helper_warn(1);
	fw_forward_check();
	fw_next_check = fw_now() + 1000;
	log_info("fwwatch: watching table ip %s%s%s%s%s", c->nft_table, c->n_masq6 > 0 ? " and its ip6 twin" : "",
		 fw_divert ? " and the diversion in ip " : "", fw_divert ? fw_where.table : "",
		 fw_divert6 ? " and ip6" : "");
	return 0;
fail:
	fwwatch_close();
	return -1;
}

void fwwatch_reconfigure(const struct conf *c, int divert)
{
	/* The diversion may have new ports, a new backend or a new chain: check
	 * for what is installed now, with a clean slate. */
	fw_conf = c;
	fw_divert = divert && rules_where(c, RULES_IP4, &fw_where) == 0;
	fw_divert6 = divert && rules_where(c, RULES_IP6, &fw_where6) == 0;
	fw_failed = 0;
	fw_dirty = 0;
}

void fwwatch_close(void)
{
	if (fw_ev)
		mnl_socket_close(fw_ev);
	if (fw_q)
		mnl_socket_close(fw_q);
	fw_ev = fw_q = NULL;
	fw_conf = NULL;
}

int fwwatch_fd(void)
{
	return fw_ev ? mnl_socket_get_fd(fw_ev) : -1;
}
