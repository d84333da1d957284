/* fastpath: the loader of the tc fast path. See fastpath.h and
 * docs/fastpath.md. Knows the program only by the names bpf/sipfast.h
 * gives (four maps, one entry point), so a new program needs no change
 * here. */
#include "fastpath.h"

#include <string.h>

#include "binding.h"
#include "conf.h"
#include "log.h"
#include "stats.h"

#ifndef SIPALGD_FASTPATH

/* FASTPATH=0 (musl/OpenWrt builds, or no libbpf/clang/bpftool): the queue
 * does everything, as before the fast path existed. */
int fastpath_open(struct conf *c)
{
	if (c->fastpath == CONF_FASTPATH_OFF)
		return 0;
	if (c->fastpath == CONF_FASTPATH_ON) {
		log_err("queue.fastpath: on, but this sipalgd was built without the fast path (FASTPATH=0)");
		return -1;
	}
	log_info("fast path: not in this build (FASTPATH=0); every SIP message goes through the queue");
	c->fastpath = CONF_FASTPATH_OFF;
	return 0;
}
void fastpath_close(void) {}
void fastpath_reconfigure(const struct conf *c) { (void)c; }
void fastpath_binding_set(const struct binding *b) { (void)b; }
void fastpath_binding_del(const struct binding *b) { (void)b; }
void fastpath_set_public(uint32_t public_ip) { (void)public_ip; }
void fastpath_set_old_public(const uint32_t *old, int n) { (void)old; (void)n; }
void fastpath_tick(uint64_t now_ms) { (void)now_ms; }
void fastpath_stats_read(void) {}
void fastpath_status(FILE *out) { fprintf(out, "fast path: off (not in this build)\n"); }

#else

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../bpf/sipfast.h"
#include "sipfast.skel.h"
#include "tcbpf.h"

/* The classic tc filter (kernels without TCX): ours by handle and
 * priority, so that a start replaces a copy a crash left and exit removes
 * exactly it. */
#define FP_TC_HANDLE 0x5a1f
#define FP_MAX_IF (1 + SIPFAST_MAX_LAN)
/* Interfaces come and go (a WAN re-created by PPP, a bridge added): the
 * attachment is re-checked this often besides reloads and address changes. */
#define FP_IFCHECK_MS 5000

struct fp_if {
	int ifindex;
	int link_fd;               /* TCX link; -1: a classic tc filter */
	uint32_t link_id;          /* the kernel's id of the link, for status */
	char name[IF_NAMESIZE];
};

static struct sipfast *skel;
static const struct conf *fcf;
static struct fp_if att[FP_MAX_IF];
static int n_att;
static int fd_cfg = -1, fd_priv = -1, fd_pub = -1, fd_stats = -1, prog_fd = -1;
static uint32_t fp_pub;          /* host order */
static uint32_t fp_old[SIPFAST_PUB_OLD]; /* earlier public addresses, host order */
static int stale;                /* a map update failed: program disabled until resync */
static int ncpu;
static uint64_t *percpu;         /* ncpu values, one lookup's worth */
static uint64_t next_ifcheck;
static char why_off[160] = "queue.fastpath: off";
/* The kernel's ids of the program and maps: `sipalgctl status` names them so
 * that bpftool can find exactly ours (tests, an operator debugging). */
static uint32_t id_prog, id_cfg, id_priv, id_pub, id_stats;

static void fp_ip(char *s, size_t n, uint32_t a)
{
	snprintf(s, n, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

/* ---- the configuration map --------------------------------------------- */

static void map_failed(const char *what, int err);

static void cfg_push(void)
{
	struct sipfast_cfg cfg;
	uint32_t k = 0;

	if (!skel || !fcf)
		return;
	memset(&cfg, 0, sizeof(cfg));
	/* observe mode changes no byte; with stale maps the program could
	 * rewrite from a binding the daemon no longer has: pass everything. */
	if (fp_pub && !fcf->observe && !stale)
		cfg.flags = SIPFAST_F_ENABLED;
	cfg.pub_ip = htonl(fp_pub);
	if (fp_pub) {
		fp_ip(cfg.pub_str, sizeof(cfg.pub_str), fp_pub);
		cfg.pub_len = (uint32_t)strlen(cfg.pub_str);
	}
	for (int i = 0; i < SIPFAST_PUB_OLD; i++)
		cfg.pub_old[i] = htonl(fp_old[i]);
	cfg.wan_ifindex = if_nametoindex(fcf->wan_if);
	/* ppp, tun, wireguard: frames at tc ingress start at the IP header */
	if (cfg.wan_ifindex && !tcbpf_if_is_ether(fcf->wan_if))
		cfg.flags |= SIPFAST_F_WAN_NOETH;
	cfg.mark = 1u << (fcf->fastpath_mark_bit & 31);
	/* The program sees IPv4 only (IPv6 takes the queue): IPv6 nets are
	 * not its business. */
	for (int i = 0; i < fcf->n_lan && cfg.n_lan < SIPFAST_MAX_LAN; i++) {
		uint32_t a, m;
		if (!conf_net_get_v4(&fcf->lan[i], &a, &m))
			continue;
		cfg.lan_net[cfg.n_lan] = htonl(a);
		cfg.lan_mask[cfg.n_lan] = htonl(m);
		cfg.n_lan++;
	}
	for (int i = 0; i < fcf->n_sip_ports && i < SIPFAST_MAX_PORTS; i++)
		cfg.sip_ports[cfg.n_ports++] = fcf->sip_ports[i];
	if (bpf_map_update_elem(fd_cfg, &k, &cfg, BPF_ANY) < 0)
		map_failed("sipfast_cfg", errno);
}

/* ---- the binding maps --------------------------------------------------- */

static int binding_put(const struct binding *b)
{
	struct sipfast_priv_key pk;
	struct sipfast_pub_key qk;
	struct sipfast_binding v;

	/* the program is IPv4-only: a masqueraded IPv6 phone's messages take
	 * the queue (one public port space: its port is in no IPv4 element) */
	if (!addr_is_v4(&b->priv_ip))
		return 0;
	memset(&pk, 0, sizeof(pk));
	memset(&qk, 0, sizeof(qk));
	memset(&v, 0, sizeof(v));
	pk.ip = htonl(addr_get_v4(&b->priv_ip));
	pk.port = b->priv_port;
	qk.port = b->pub_port;
	v.priv_ip = htonl(addr_get_v4(&b->priv_ip));
	v.priv_port = b->priv_port;
	v.pub_port = b->pub_port;
	v.flags = (uint8_t)(b->flags & (BF_VIA_PORT | BF_CONTACT_PORT));
	/* public key second: a response from the WAN finds a binding only
	 * once the request direction knows it too */
	if (bpf_map_update_elem(fd_priv, &pk, &v, BPF_ANY) < 0 ||
	    bpf_map_update_elem(fd_pub, &qk, &v, BPF_ANY) < 0)
		return -errno;
	return 0;
}

static int binding_drop(const struct binding *b)
{
	struct sipfast_priv_key pk;
	struct sipfast_pub_key qk;

	if (!addr_is_v4(&b->priv_ip))
		return 0;
	memset(&pk, 0, sizeof(pk));
	memset(&qk, 0, sizeof(qk));
	pk.ip = htonl(addr_get_v4(&b->priv_ip));
	pk.port = b->priv_port;
	qk.port = b->pub_port;
	/* public first: nothing from the WAN maps to a phone being forgotten */
	if ((bpf_map_delete_elem(fd_pub, &qk) < 0 && errno != ENOENT) ||
	    (bpf_map_delete_elem(fd_priv, &pk) < 0 && errno != ENOENT))
		return -errno;
	return 0;
}

/* Empty both maps and fill them from the binding table. 0 or -errno. */
static int maps_resync(void)
{
	static const int *fds[2] = { &fd_pub, &fd_priv };
	uint8_t key[8], next[8];
	uint32_t cur = 0;
	const struct binding *b;

	for (int m = 0; m < 2; m++) {
		/* always delete the first key: next-key from a deleted one
		 * would restart the walk anyway; bounded by the map size */
		for (uint32_t n = 0; n <= fcf->max_bindings + 1; n++) {
			if (bpf_map_get_next_key(*fds[m], NULL, next) < 0)
				break;
			memcpy(key, next, sizeof(key));
			if (bpf_map_delete_elem(*fds[m], key) < 0 && errno != ENOENT)
				return -errno;
		}
	}
	while ((b = binding_next(&cur)))
		if (b->kind == BIND_SIG && !b->fp_hold) {
			int r = binding_put(b);
			if (r < 0)
				return r;
		}
	return 0;
}

static void map_failed(const char *what, int err)
{
	STAT_INC(fastpath_map_errors);
	LOG_RL(LOG_LVL_WARN, "fast path: updating map %s failed: %s; the program passes everything "
	       "to the queue until the maps are rebuilt", what, strerror(err));
	if (!stale) {
		stale = 1;
		cfg_push(); /* without SIPFAST_F_ENABLED; itself counted if it fails */
	}
}

void fastpath_binding_set(const struct binding *b)
{
	int r;

	if (!skel || b->kind != BIND_SIG || b->fp_hold)
		return;
	if ((r = binding_put(b)) < 0)
		map_failed("sipfast_priv/sipfast_pub", -r);
}

void fastpath_binding_del(const struct binding *b)
{
	int r;

	if (!skel || b->kind != BIND_SIG)
		return;
	if ((r = binding_drop(b)) < 0)
		map_failed("sipfast_priv/sipfast_pub", -r);
}

/* ---- attachment ---------------------------------------------------------- */

static void tc_detach(int ifindex)
{
	struct tcbpf_at at = { .ifindex = ifindex, .egress = 0, .handle = FP_TC_HANDLE };

	tcbpf_detach(&at, -1);
}

static int if_attach(int ifindex, struct fp_if *a)
{
	struct tcbpf_at at = { .ifindex = ifindex, .egress = 0, .handle = FP_TC_HANDLE };
	int r;

	memset(a, 0, sizeof(*a));
	a->ifindex = ifindex;
	a->link_fd = -1;
	if (!if_indextoname((unsigned)ifindex, a->name))
		snprintf(a->name, sizeof(a->name), "#%d", ifindex);
	r = tcbpf_attach(prog_fd, &at, &a->link_fd);
	if (r == 0 && a->link_fd >= 0)
		a->link_id = tcbpf_link_id(a->link_fd);
	return r;
}

static void if_detach(struct fp_if *a)
{
	struct tcbpf_at at = { .ifindex = a->ifindex, .egress = 0, .handle = FP_TC_HANDLE };

	tcbpf_detach(&at, a->link_fd);
	a->link_fd = -1;
}

/* The interfaces to attach to: the WAN, and every interface holding an
 * IPv4 address inside lan.networks (not the loopback: the router's own
 * traffic is not forwarded). At most FP_MAX_IF; returns the count. */
static int if_wanted(const struct conf *c, int *idx)
{
	struct ifaddrs *ifa, *i;
	int n = 0, wan = (int)if_nametoindex(c->wan_if);

	if (wan > 0)
		idx[n++] = wan;
	if (getifaddrs(&ifa) < 0)
		return n;
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK))
			continue;
		uint32_t ip = ntohl(((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr.s_addr);
		int x = (int)if_nametoindex(i->ifa_name), dup = 0;
		if (x <= 0 || !conf_is_lan_v4(c, ip))
			continue;
		for (int k = 0; k < n; k++)
			dup |= idx[k] == x;
		if (!dup && n < FP_MAX_IF)
			idx[n++] = x;
	}
	freeifaddrs(ifa);
	return n;
}

/* Detach where no longer wanted (an interface gone or renumbered), attach
 * where new. Returns how many attachments failed. */
static int if_reconcile(const struct conf *c)
{
	int want[FP_MAX_IF], nw = if_wanted(c, want), failed = 0;

	for (int k = 0; k < n_att; ) {
		int keep = 0;
		for (int j = 0; j < nw; j++)
			keep |= want[j] == att[k].ifindex;
		/* a TCX link on a device that went away is defunct: redo it */
		if (keep && att[k].link_fd >= 0) {
			char name[IF_NAMESIZE];
			keep = if_indextoname((unsigned)att[k].ifindex, name) != NULL;
		}
		/* a classic filter (kernels before 6.6) anyone may remove (tc
		 * qdisc del): meanwhile its SIP took the queue; redo it */
		if (keep && att[k].link_fd < 0) {
			struct tcbpf_at at = { .ifindex = att[k].ifindex, .egress = 0, .handle = FP_TC_HANDLE };
			if (tcbpf_filter_present(prog_fd, &at) == 0) {
				LOG_RL(LOG_LVL_WARN, "fast path: its tc filter on %s was removed: attached again",
				       att[k].name);
				keep = 0;
			}
		}
		if (keep) {
			k++;
			continue;
		}
		log_info("fast path: detached from %s", att[k].name);
		if_detach(&att[k]);
		att[k] = att[--n_att];
	}
	for (int j = 0; j < nw; j++) {
		int have = 0;
		for (int k = 0; k < n_att; k++)
			have |= att[k].ifindex == want[j];
		if (have || n_att >= FP_MAX_IF)
			continue;
		int r = if_attach(want[j], &att[n_att]);
		if (r < 0) {
			failed++;
			LOG_RL(LOG_LVL_WARN, "fast path: cannot attach to %s: %s (its SIP goes through the queue)",
			       att[n_att].name, strerror(-r));
			continue;
		}
		log_info("fast path: attached to %s (%s)", att[n_att].name,
			 att[n_att].link_fd >= 0 ? "tcx" : "tc filter");
		n_att++;
	}
	stats[ST_fastpath_attached] = (uint64_t)n_att;
	return failed;
}

/* ---- open / close ---------------------------------------------------------- */

static int fp_load(const struct conf *c)
{
	int r;

	tcbpf_libbpf_quiet();
	skel = sipfast__open();
	if (!skel) {
		r = errno ? -errno : -EINVAL;
		snprintf(why_off, sizeof(why_off), "the program could not be opened: %s", strerror(-r));
		return r;
	}
	/* The contract's sizes, checked before the kernel sees anything: a
	 * program built from another sipfast.h would read garbage. */
	if (bpf_map__value_size(skel->maps.sipfast_cfg) != sizeof(struct sipfast_cfg) ||
	    bpf_map__value_size(skel->maps.sipfast_priv) != sizeof(struct sipfast_binding) ||
	    bpf_map__key_size(skel->maps.sipfast_priv) != sizeof(struct sipfast_priv_key) ||
	    bpf_map__key_size(skel->maps.sipfast_pub) != sizeof(struct sipfast_pub_key)) {
		snprintf(why_off, sizeof(why_off), "the program's maps do not match bpf/sipfast.h");
		return -EINVAL;
	}
	/* Only signalling bindings are mirrored, never more than the table */
	bpf_map__set_max_entries(skel->maps.sipfast_priv, c->max_bindings);
	bpf_map__set_max_entries(skel->maps.sipfast_pub, c->max_bindings);
	if ((r = sipfast__load(skel)) < 0) {
		snprintf(why_off, sizeof(why_off), "the kernel refused the program: %s", strerror(-r));
		return r;
	}
	fd_cfg = bpf_map__fd(skel->maps.sipfast_cfg);
	fd_priv = bpf_map__fd(skel->maps.sipfast_priv);
	fd_pub = bpf_map__fd(skel->maps.sipfast_pub);
	fd_stats = bpf_map__fd(skel->maps.sipfast_stats);
	prog_fd = bpf_program__fd(skel->progs.sipfast_ingress);
	id_prog = tcbpf_prog_id(prog_fd);
	id_cfg = tcbpf_map_id(fd_cfg);
	id_priv = tcbpf_map_id(fd_priv);
	id_pub = tcbpf_map_id(fd_pub);
	id_stats = tcbpf_map_id(fd_stats);
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0 || !(percpu = calloc((size_t)ncpu, sizeof(*percpu)))) {
		snprintf(why_off, sizeof(why_off), "cannot count the CPUs");
		return -ENOMEM;
	}
	return 0;
}

static void fp_unload(void)
{
	for (int k = 0; k < n_att; k++)
		if_detach(&att[k]);
	n_att = 0;
	stats[ST_fastpath_attached] = 0;
	if (skel)
		sipfast__destroy(skel);
	skel = NULL;
	free(percpu);
	percpu = NULL;
	fd_cfg = fd_priv = fd_pub = fd_stats = prog_fd = -1;
}

int fastpath_open(struct conf *c)
{
	int r;

	fcf = c;
	if (c->fastpath == CONF_FASTPATH_OFF) {
		/* A classic filter of ours that a killed run left (kernels
		 * without TCX) would go on rewriting from stale maps. */
		int want[FP_MAX_IF], nw = if_wanted(c, want);
		for (int j = 0; j < nw; j++)
			tc_detach(want[j]);
		return 0;
	}
	fp_pub = binding_public_ip();
	stale = 0;
	if ((r = fp_load(c)) == 0) {
		cfg_push();
		if ((r = maps_resync()) < 0)
			snprintf(why_off, sizeof(why_off), "the binding maps could not be filled: %s", strerror(-r));
	}
	if (r == 0) {
		if_reconcile(c);
		if (!n_att) {
			snprintf(why_off, sizeof(why_off), "it could not be attached to %s or a LAN interface",
				 c->wan_if);
			r = -ENODEV;
		}
	}
	if (r < 0) {
		fp_unload();
		if (c->fastpath == CONF_FASTPATH_ON) {
			log_err("fast path (queue.fastpath: on): %s", why_off);
			return -1;
		}
		log_warn("fast path: %s; every SIP message goes through the queue (queue.fastpath: auto)", why_off);
		c->fastpath = CONF_FASTPATH_OFF;
		return 0;
	}
	next_ifcheck = 0;
	return 0;
}

void fastpath_close(void)
{
	if (skel)
		log_info("fast path: detached");
	fp_unload();
}

void fastpath_reconfigure(const struct conf *c)
{
	fcf = c;
	if (!skel)
		return;
	if_reconcile(c);
	cfg_push();
}

void fastpath_set_old_public(const uint32_t *old, int n)
{
	memset(fp_old, 0, sizeof(fp_old));
	for (int i = 0; i < n && i < SIPFAST_PUB_OLD; i++)
		fp_old[i] = old[i];
	/* pushed with the new address (fastpath_set_public follows) */
}

void fastpath_set_public(uint32_t public_ip)
{
	fp_pub = public_ip;
	if (!skel)
		return;
	/* an address change often comes with a re-created interface */
	if_reconcile(fcf);
	cfg_push();
}

void fastpath_stats_read(void)
{
	uint64_t sum[SIPFAST_STAT_MAX];

	if (!skel)
		return;
	tcbpf_percpu_sum(fd_stats, SIPFAST_STAT_MAX, sum, percpu, ncpu);
	stats[ST_fastpath_handled_out] = sum[SIPFAST_HANDLED_OUT];
	stats[ST_fastpath_handled_in] = sum[SIPFAST_HANDLED_IN];
	stats[ST_fastpath_pass_not_sip] = sum[SIPFAST_PASS_NOT_SIP];
	stats[ST_fastpath_pass_stateful] = sum[SIPFAST_PASS_STATEFUL];
	stats[ST_fastpath_pass_unsure] = sum[SIPFAST_PASS_UNSURE];
	stats[ST_fastpath_pass_no_binding] = sum[SIPFAST_PASS_NO_BINDING];
	stats[ST_fastpath_passed] = sum[SIPFAST_PASS_NOT_SIP] + sum[SIPFAST_PASS_STATEFUL] +
				    sum[SIPFAST_PASS_UNSURE] + sum[SIPFAST_PASS_NO_BINDING];
	stats[ST_fastpath_errors] = sum[SIPFAST_ERRORS];
}

void fastpath_tick(uint64_t now)
{
	if (!skel)
		return;
	fastpath_stats_read();
	if (stale) {
		int r = maps_resync();
		if (r == 0) {
			stale = 0;
			cfg_push();
			log_info("fast path: maps rebuilt from the binding table");
		}
	}
	if (now >= next_ifcheck) {
		if_reconcile(fcf);
		cfg_push(); /* the WAN's ifindex may have changed */
		next_ifcheck = now + FP_IFCHECK_MS;
	}
}

void fastpath_status(FILE *out)
{
	if (!skel) {
		fprintf(out, "fast path: off (%s)\n", why_off);
		return;
	}
	fprintf(out, "fast path: %s", n_att ? "attached to" : "loaded but attached nowhere");
	for (int k = 0; k < n_att; k++) {
		if (att[k].link_fd >= 0)
			fprintf(out, "%s %s (tcx link %u)", k ? "," : "", att[k].name, att[k].link_id);
		else
			fprintf(out, "%s %s (tc filter)", k ? "," : "", att[k].name);
	}
	fprintf(out, "; %s%s; prog %u maps cfg %u priv %u pub %u stats %u\n",
		fp_pub && !fcf->observe ? "rewriting" : "passing everything",
		stale ? " (maps being rebuilt)" : "", id_prog, id_cfg, id_priv, id_pub, id_stats);
}

#endif
