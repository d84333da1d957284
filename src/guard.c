/* guard: the WAN egress guard's loader. See guard.h. */
#include "guard.h"

#include <string.h>

#include "conf.h"
#include "log.h"
#include "rules.h"
#include "stats.h"

#ifndef SIPALGD_FASTPATH

/* FASTPATH=0 (musl/OpenWrt builds): no libbpf, no guard; the diversion
 * sets no mark. A reload leaks until fwwatch repairs it (docs/limits.md). */
int guard_open(struct conf *c)
{
	if (c->guard == CONF_GUARD_OFF)
		return 0;
	if (c->guard == CONF_GUARD_ON) {
		log_err("queue.guard: on, but this sipalgd was built without BPF support (FASTPATH=0)");
		return -1;
	}
	log_warn("guard: not in this build (FASTPATH=0); a firewall reload can leak SIP until it is repaired");
	c->guard = CONF_GUARD_OFF;
	return 0;
}
void guard_close(void) {}
void guard_reconfigure(const struct conf *c) { (void)c; }
void guard_tick(uint64_t now_ms) { (void)now_ms; }
void guard_stats_read(void) {}
void guard_status(FILE *out) { fprintf(out, "guard: off (not in this build: FASTPATH=0)\n"); }

#else

#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../bpf/sipguard.h"
#include "sipguard.skel.h"
#include "tcbpf.h"

/* The classic egress filter (kernels without TCX): ours by handle and
 * priority; the fast path's is 0x5a1f at ingress. */
#define GD_TC_HANDLE 0x5a20

static struct sipguard *skel;
static const struct conf *gcf;
static int prog_fd = -1, fd_cfg = -1, fd_stats = -1;
static int gd_ifindex;           /* attached here; 0: nowhere */
static int gd_link = -1;         /* TCX link; -1: classic filter (or none) */
static char gd_name[IF_NAMESIZE];
static uint32_t id_prog, id_link;
static int ncpu;
static uint64_t *percpu;
static char why_off[160] = "queue.guard: off";
static int gd_noeth;              /* the WAN has no link header (ppp, tun): IP at offset 0 */

static void cfg_push(void)
{
	struct sipguard_cfg cfg;
	uint32_t k = 0;

	if (!skel)
		return;
	memset(&cfg, 0, sizeof(cfg));
	cfg.flags = SIPGUARD_F_ENABLED;
	gd_noeth = !tcbpf_if_is_ether(gcf->wan_if);
	if (gd_noeth)
		cfg.flags |= SIPGUARD_F_NOETH;
	/* IPv6 only where its SIP is diverted (and so marked): with
	 * --no-rules, sip.ipv6 says whether the system's rules do. */
	if (gcf->sip_ipv6 && !rules_ipv6_off())
		cfg.flags |= SIPGUARD_F_IPV6;
	cfg.mark_ok = 1u << (gcf->guard_mark_bit & 31);
	/* What the fast path rewrote skips the queue; only while the fast
	 * path is there, else that bit proves nothing. */
	if (gcf->fastpath != CONF_FASTPATH_OFF)
		cfg.mark_ok |= 1u << (gcf->fastpath_mark_bit & 31);
	for (int i = 0; i < gcf->n_sip_ports && i < SIPGUARD_MAX_PORTS; i++)
		cfg.ports[cfg.n_ports++] = gcf->sip_ports[i];
	if (bpf_map_update_elem(fd_cfg, &k, &cfg, BPF_ANY) < 0)
		LOG_RL(LOG_LVL_WARN, "guard: updating its configuration failed: %s", strerror(errno));
}

static void gd_detach(void)
{
	struct tcbpf_at at = { .ifindex = gd_ifindex, .egress = 1, .handle = GD_TC_HANDLE };

	if (gd_ifindex)
		tcbpf_detach(&at, gd_link);
	gd_ifindex = 0;
	gd_link = -1;
	id_link = 0;
	stats[ST_guard_attached] = 0;
}

/* Attached to the WAN as it is now? A re-created interface has a new
 * index (and a TCX link on the old one is defunct): attach again. */
static void gd_reconcile(void)
{
	struct tcbpf_at at = { .egress = 1, .handle = GD_TC_HANDLE };
	int want = (int)if_nametoindex(gcf->wan_if), r;

	if (want && want == gd_ifindex && gd_link < 0) {
		/* A classic filter: someone may have removed it (or its clsact
		 * qdisc) since the last tick. Put back, as a firewall reload's
		 * diversion is. */
		at.ifindex = want;
		if (tcbpf_filter_present(prog_fd, &at) != 0)
			return;
		LOG_RL(LOG_LVL_WARN, "guard: its tc filter on %s egress was removed (tc qdisc del?): attached again",
		       gd_name);
		STAT_INC(guard_reattached);
		gd_detach();
	}
	if (want == gd_ifindex)
		return;
	if (gd_ifindex) {
		log_info("guard: %s went away", gd_name);
		gd_detach();
	}
	if (!want)
		return;
	at.ifindex = want;
	r = tcbpf_attach(prog_fd, &at, &gd_link);
	if (r < 0) {
		LOG_RL(LOG_LVL_WARN, "guard: cannot attach to %s: %s", gcf->wan_if, strerror(-r));
		return;
	}
	gd_ifindex = want;
	snprintf(gd_name, sizeof(gd_name), "%s", gcf->wan_if);
	id_link = gd_link >= 0 ? tcbpf_link_id(gd_link) : 0;
	stats[ST_guard_attached] = 1;
	cfg_push(); /* ppp or ethernet: the new device may differ */
	log_info("guard: attached at %s egress (%s)", gd_name, gd_link >= 0 ? "tcx" : "tc filter");
}

static int gd_load(void)
{
	int r;

	tcbpf_libbpf_quiet();
	skel = sipguard__open();
	if (!skel) {
		r = errno ? -errno : -EINVAL;
		snprintf(why_off, sizeof(why_off), "the program could not be opened: %s", strerror(-r));
		return r;
	}
	if (bpf_map__value_size(skel->maps.sipguard_cfg) != sizeof(struct sipguard_cfg)) {
		snprintf(why_off, sizeof(why_off), "the program's maps do not match bpf/sipguard.h");
		return -EINVAL;
	}
	if ((r = sipguard__load(skel)) < 0) {
		snprintf(why_off, sizeof(why_off), "the kernel refused the program: %s", strerror(-r));
		return r;
	}
	prog_fd = bpf_program__fd(skel->progs.sipguard_egress);
	fd_cfg = bpf_map__fd(skel->maps.sipguard_cfg);
	fd_stats = bpf_map__fd(skel->maps.sipguard_stats);
	id_prog = tcbpf_prog_id(prog_fd);
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0 || !(percpu = calloc((size_t)ncpu, sizeof(*percpu)))) {
		snprintf(why_off, sizeof(why_off), "cannot count the CPUs");
		return -ENOMEM;
	}
	return 0;
}

static void gd_unload(void)
{
	gd_detach();
	if (skel)
		sipguard__destroy(skel);
	skel = NULL;
	free(percpu);
	percpu = NULL;
	prog_fd = fd_cfg = fd_stats = -1;
}

int guard_open(struct conf *c)
{
	int r;

	gcf = c;
	if (c->guard == CONF_GUARD_OFF) {
		/* A classic filter a killed run left would drop SIP the
		 * diversion, now without the mark, lets through. */
		struct tcbpf_at at = { .ifindex = (int)if_nametoindex(c->wan_if), .egress = 1,
				       .handle = GD_TC_HANDLE };
		if (at.ifindex)
			tcbpf_detach(&at, -1);
		return 0;
	}
	if ((r = gd_load()) == 0) {
		cfg_push();
		gd_reconcile();
		/* A WAN that does not exist yet (PPPoE not up at boot) is no
		 * failure: the guard stays loaded and gd_reconcile attaches it
		 * within a tick of the interface appearing. Turning it off here
		 * left every later pppoe-wan unguarded for the daemon's life. */
		if (!gd_ifindex && if_nametoindex(c->wan_if)) {
			snprintf(why_off, sizeof(why_off), "it could not be attached to %s", c->wan_if);
			r = -ENODEV;
		}
	}
	if (r < 0) {
		gd_unload();
		if (c->guard == CONF_GUARD_ON) {
			log_err("guard (queue.guard: on): %s", why_off);
			return -1;
		}
		log_warn("guard: %s; a firewall reload can leak SIP until it is repaired (queue.guard: auto)",
			 why_off);
		c->guard = CONF_GUARD_OFF;
		return 0;
	}
	return 0;
}

void guard_close(void)
{
	if (skel)
		log_info("guard: detached");
	gd_unload();
}

void guard_reconfigure(const struct conf *c)
{
	gcf = c;
	cfg_push();
}

void guard_stats_read(void)
{
	uint64_t sum[SIPGUARD_STAT_MAX];

	if (!skel)
		return;
	tcbpf_percpu_sum(fd_stats, SIPGUARD_STAT_MAX, sum, percpu, ncpu);
	stats[ST_guard_dropped] = sum[SIPGUARD_DROPPED];
	stats[ST_guard_passed] = sum[SIPGUARD_PASSED];
	stats[ST_guard_local] = sum[SIPGUARD_LOCAL];
}

void guard_tick(uint64_t now)
{
	(void)now;
	if (!skel)
		return;
	guard_stats_read();
	/* if_nametoindex is one ioctl: cheap enough for every tick, and a
	 * WAN re-created unguarded must not wait long. */
	gd_reconcile();
}

void guard_status(FILE *out)
{
	if (!skel) {
		fprintf(out, "guard: off (%s)\n", why_off);
		return;
	}
	if (!gd_ifindex) {
		fprintf(out, "guard: loaded but not attached (%s is absent); prog %u\n", gcf->wan_if, id_prog);
		return;
	}
	/* "no link header": the program reads IP at offset 0 there (ppp); an
	 * operator can tell it parses the device it is on. */
	if (gd_link >= 0)
		fprintf(out, "guard: %s egress (tcx link %u%s), dropping forwarded SIP without mark 0x%x; prog %u\n",
			gd_name, id_link, gd_noeth ? ", no link header" : "", 1u << (gcf->guard_mark_bit & 31),
			id_prog);
	else
		fprintf(out, "guard: %s egress (tc filter%s), dropping forwarded SIP without mark 0x%x; prog %u\n",
			gd_name, gd_noeth ? ", no link header" : "", 1u << (gcf->guard_mark_bit & 31), id_prog);
}

#endif
