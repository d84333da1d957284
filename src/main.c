/* sipalgd: main loop. One thread: the queue socket, the control socket and
 * a 250 ms tick, in one poll(). Signal handlers only set flags. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "alg.h"
#include "binding.h"
#include "conf.h"
#include "ct.h"
#include "ctl.h"
#include "dialog.h"
#include "fastpath.h"
#include "guard.h"
#include "fwwatch.h"
#include "holdoff.h"
#include "log.h"
#include "nfq.h"
#include "nftmap.h"
#include "notify.h"
#include "rules.h"
#include "state.h"
#include "siphash.h"
#include "tcprelay.h"
#include "stats.h"
#include "version.h"
#include "view.h"
#include "wan.h"

#define MAX_BATCH 256
#define OUT_CAP (65535 + 64)

static volatile sig_atomic_t stop_flag, reload_flag;
static int detached; /* -d: stderr is /dev/null, logs go to syslog */
static struct conf conf;
static const char *conf_path = "/etc/sipalgd/sipalgd.yaml";
static uint64_t start_ms, last_loop_ms;
static struct nfq_pkt pkts[MAX_BATCH];
/* Rewritten packets of a burst, packed one after the other: a burst
 * touches about as many pages as it writes bytes (there is always room for
 * one more maximal packet). */
static uint8_t outbuf[(MAX_BATCH + 1) * (size_t)OUT_CAP] __attribute__((aligned(8)));

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_flag = 1;
	else
		stop_flag = 1;
}

/* After set-up the packet loop needs netlink (queue, nftables, conntrack):
 * CAP_NET_ADMIN; removing iptables rules at exit runs iptables, which may
 * want CAP_NET_RAW. Everything else goes, from the bounding set too, so
 * not even that child can get it back. */
static void drop_capabilities(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	uint64_t keep = (1ull << CAP_NET_ADMIN) | (1ull << CAP_NET_RAW);

	for (int cap = 0; cap <= 63; cap++)
		if (!(keep & (1ull << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			break;
	memset(d, 0, sizeof(d));
	d[0].effective = d[0].permitted = (uint32_t)keep;
	d[0].inheritable = 0;
	if (syscall(SYS_capset, &h, d) < 0)
		log_warn("cannot drop capabilities: %s", strerror(errno));
	else
		log_debug("capabilities reduced to CAP_NET_ADMIN, CAP_NET_RAW");
}

/* A SIP message waits in the queue whenever we are not running, so the
 * daemon is part of the forwarding path, as the kernel helper is (it runs in
 * softirq, ahead of every process). At an ordinary priority the wake-up at
 * the end of a hold-off waits behind whatever else the router runs, and that
 * wait, not our work, made the p99 delay (docs/performance.md). The lowest
 * realtime priority is enough to run first. What a realtime loop must not
 * do is take a CPU whole under a flood: handle_burst() rests after
 * BUSY_MAX_MS of uninterrupted full bursts. Children (iptables at exit) are
 * ordinary processes: SCHED_RESET_ON_FORK. */
static int realtime;

static void set_scheduling(void)
{
	struct sched_param sp = { .sched_priority = (int)conf.realtime_priority };

	if (!conf.realtime_priority)
		return;
	if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) < 0) {
		log_warn("queue.realtime_priority %u: %s; running at ordinary priority "
			 "(SIP waits longer in the queue when the router is busy)",
			 conf.realtime_priority, strerror(errno));
		return;
	}
	realtime = 1;
	log_debug("scheduling: SCHED_FIFO priority %u", conf.realtime_priority);
}

/* sipalgctl's commands: answered by view.c (text and --json). */
static int ctl_answer(const char *cmd, FILE *out)
{
	fastpath_stats_read(); /* the kernel's counters as of now */
	guard_stats_read();
	int rc = view_answer(cmd, out, &conf, now_ms(), start_ms);

	/* the relay's own line, only when sip.tcp is on (text status only) */
	if (rc == 0 && strcmp(cmd, "status") == 0) {
		wan_status(out);
		tcprelay_status(out);
		fastpath_status(out);
		guard_status(out);
	}
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: sipalgd [-c FILE] [-n] [-d] [--no-rules] [-V]\n"
		   "  -c FILE     configuration (default /etc/sipalgd/sipalgd.yaml)\n"
		   "  -n          check the configuration and exit\n"
		   "  -V          print the version and exit\n"
		   "  -d          detach and write the pid file\n"
		   "  --no-rules  do not install the diversion rules (kernel-rules/ loaded by the system)\n");
}

static int write_pidfile(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fprintf(f, "%d\n", (int)getpid());
	return fclose(f);
}

/* The file as last applied: conf_file.public_ip stays 0 when the address
 * comes from the interface, so a reload compares file with file. */
static struct conf conf_file;
static int manage_rules = 1;

/* "kept"/"applied" lists for the log; a key name at most 40 characters. */
static void list_add(char *list, size_t len, const char *name)
{
	size_t n = strlen(list);

	snprintf(list + n, len - n, "%s%s", n ? ", " : "", name);
}

/* Undo key k in `next` (back to the running value) and say why. */
static void reload_keep(struct conf *next, int k, const char *why)
{
	char val[256];

	conf_key_copy(next, &conf, k);
	conf_key_format(&conf_file, k, val, sizeof(val));
	log_warn("reload: %s %s; kept %s", conf_key_name(k), why, val);
}

/* Replace the diversion with no moment where SIP crosses the router
 * unqueued (that would be the ALG failing open): the new rules go in first
 * under a scratch name (table "<name>_r", iptables chain "<NAME>_R"), both
 * queue to us for a moment (the first match wins, same queue), then the old
 * rules go, the new ones are installed under the real name (which exit
 * removes) and the scratch copy goes. On failure the old rules are in place
 * and -1 is returned. */
static int rules_replace(const struct conf *old, const struct conf *nw)
{
	static struct conf tmp;
	int n;

	tmp = *nw;
	n = snprintf(tmp.nft_table, sizeof(tmp.nft_table), "%s_r", nw->nft_table);
	if (n < 0 || (size_t)n >= sizeof(tmp.nft_table)) {
		/* No room for a scratch name: a short gap is the price. */
		log_warn("reload: paths.nft_table too long for a seamless swap; SIP is not diverted for a moment");
		rules_remove(old);
		if (rules_install(nw) == 0)
			return 0;
		if (rules_install(old) < 0)
			log_err("reload: the previous diversion could not be restored either");
		return -1;
	}
	if (rules_install(&tmp) < 0)
		return -1;
	rules_remove(old);
	if (rules_install(nw) < 0) {
		if (rules_install(old) == 0)
			rules_remove(&tmp);
		else /* SIP keeps reaching the queue through the scratch copy */
			log_err("reload: the previous diversion could not be restored; %s stays",
				tmp.nft_table);
		return -1;
	}
	rules_remove(&tmp);
	return 0;
}

/* SIGHUP: parse into a fresh struct, then walk the key table (conf.h):
 * LIVE keys are copied in, REBUILD keys are copied in once what depends on
 * them has been rebuilt, RESTART keys are named and kept. The log says
 * which keys were applied and which were kept. */
static void reload(void)
{
	static struct conf nc, next;
	char err[512], applied[1024] = "", msg[64];
	int n = conf_key_count(), changed[CONF_KEYS_MAX] = { 0 }, want[CONF_REBUILD_WAN + 1] = { 0 };
	struct timespec ts;

	/* systemd: RELOADING=1 ... READY=1 brackets the reload, so
	 * `systemctl reload` returns once it is done (MONOTONIC_USEC: which
	 * reload this is, as systemd 253's Type=notify-reload wants). */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000u);
	notify_send(msg);
	if (conf_load(conf_path, &nc, err, sizeof(err)) < 0) {
		log_err("reload refused, keeping the running configuration: %s", err);
		notify_send("READY=1\nSTATUS=reload refused, running configuration kept");
		return;
	}
	/* log.level and log.syslog first, so that this reload's own report
	 * goes where the new file says. */
	log_init(nc.log_syslog || detached, (enum log_level)nc.log_level);
	next = conf;
	for (int k = 0; k < n; k++) {
		if (!conf_key_differs(&conf_file, &nc, k))
			continue;
		if (conf_key_reload(k) == CONF_RESTART_ONLY) {
			reload_keep(&next, k, "needs a restart");
			continue;
		}
		conf_key_copy(&next, &nc, k);
		changed[k] = 1;
		want[conf_key_rebuild(k)] = 1;
	}
	/* The WAN module rewrites what names the address; it reads the file's
	 * values (public_address 0 = the interface's). */
	if (want[CONF_REBUILD_WAN]) {
		if (wan_reconfigure(&next, now_ms()) < 0) {
			for (int k = 0; k < n; k++)
				if (changed[k] && conf_key_rebuild(k) == CONF_REBUILD_WAN) {
					reload_keep(&next, k, "needs a restart");
					changed[k] = 0;
				}
		}
	}
	/* Ports or backend: the new diversion replaces the old (rules_replace).
	 * If it cannot be installed the old one stays and so do the keys. */
	if (want[CONF_REBUILD_RULES] && manage_rules) {
		if (rules_replace(&conf, &next) < 0)
			for (int k = 0; k < n; k++)
				if (changed[k] && conf_key_rebuild(k) == CONF_REBUILD_RULES) {
					reload_keep(&next, k, "could not be installed in the diversion");
					changed[k] = 0;
				}
	} else if (want[CONF_REBUILD_RULES]) {
		log_warn("reload: --no-rules: the system's diversion (kernel-rules/) must match sip.ports and queue.divert");
	}
	if (next.observe != conf.observe)
		log_warn("mode %s: %s", next.observe ? "observe" : "enforce",
			 next.observe ? "nothing is rewritten or opened from now on; the maps are emptied"
				      : "calls set up while observing stay unchanged; new calls are handled");
	int ports_changed = next.n_sip_ports != conf.n_sip_ports ||
			    memcmp(next.sip_ports, conf.sip_ports, sizeof(conf.sip_ports[0]) * (size_t)conf.n_sip_ports);
	int was_observing = conf.observe;
	conf = next;
	fastpath_reconfigure(&conf); /* mode, sip.ports, the LAN's interfaces */
	guard_reconfigure(&conf);    /* sip.ports */
	nftmap_set_passive(conf.observe);
	ct_set_passive(conf.observe);
	if (was_observing && !conf.observe) {
		/* Back to enforce: what observe mode tracked but kept out of the
		 * kernel (bindings, pinholes of calls in progress) goes in now. */
		nftmap_requeue();
		binding_repush();
	}
	if (want[CONF_REBUILD_RULES] && manage_rules) {
		/* fwwatch checks the diversion as it is now; the TCP relay's
		 * table names the SIP ports too. */
		fwwatch_reconfigure(&conf, manage_rules);
		if (ports_changed && conf.sip_tcp && tcprelay_rules_repair() < 0)
			log_err("reload: the TCP relay's rules could not be rebuilt for sip.ports");
	}
	for (int k = 0; k < n; k++)
		if (changed[k]) {
			conf_key_copy(&conf_file, &nc, k);
			list_add(applied, sizeof(applied), conf_key_name(k));
		}
	log_init(conf.log_syslog || detached, (enum log_level)conf.log_level);
	if (applied[0])
		log_info("reload: applied %s", applied);
	else
		log_info("reload: nothing to apply");
	log_info("configuration reloaded from %s", conf_path);
	notify_send("READY=1\nSTATUS=running");
}

/* Under a flood every burst is full. At realtime priority, after this much
 * uninterrupted work rest BUSY_REST_US, so at least a fifth of the CPU stays
 * with the rest of the router (the kernel queues, or drops, meanwhile). */
#define BUSY_MAX_MS 8
#define BUSY_REST_US 2000

static void handle_burst(void)
{
	uint64_t busy_since = now_ms();

	for (;;) {
		uint32_t max = conf.batch_max < MAX_BATCH ? conf.batch_max : MAX_BATCH;
		int n = nfq_recv_burst(pkts, (int)max);
		uint64_t now = now_ms();
		alg_queue_burst(n, (int)max, now); /* behind? then per-source rates apply */
		if (n <= 0)
			return;
		state_touch();
		STAT_ADD(pkts_in, (uint64_t)n);
		size_t off = 0;
		for (int i = 0; i < n; i++) {
			uint32_t olen = 0;
			uint8_t *out = outbuf + off;
			/* the diversion queues only what crosses the WAN interface */
			int wi = wan_ifindex();
			enum alg_dir dir = !wi ? ALG_DIR_UNKNOWN
					   : pkts[i].outdev == (uint32_t)wi ? ALG_DIR_OUT
					   : pkts[i].indev == (uint32_t)wi ? ALG_DIR_IN : ALG_DIR_UNKNOWN;
			enum alg_verdict v = alg_packet_dir(pkts[i].data, pkts[i].len, out, OUT_CAP, &olen, now, dir);
			if (v == ALG_DROP)
				STAT_INC(pkts_dropped);
			else if (!olen)
				STAT_INC(pkts_unchanged);
			nfq_verdict_add(pkts[i].id, v == ALG_ACCEPT, olen ? out : NULL, olen);
			off += (olen + 7u) & ~7u;
		}
		/* The kernel must agree with the SDP before the SDP leaves. What
		 * only closes (element deletes, media conntrack deletes) waits for
		 * the next tick, <= 250 ms: many calls' closing then costs one
		 * transaction, well inside the 2 s a closed pinhole may live. */
		if (nftmap_urgent())
			nftmap_commit();
		if (ct_urgent())
			ct_commit();
		nfq_verdict_flush();
		if ((uint32_t)n < max) {
			uint32_t h = holdoff_next((uint32_t)n, conf.holdoff_us);
			if (h) {
				struct timespec ts = { 0, (long)h * 1000L };
				STAT_INC(holdoffs);
				nanosleep(&ts, NULL);
			}
			return;
		}
		if (realtime && now_ms() - busy_since >= BUSY_MAX_MS) {
			struct timespec ts = { 0, BUSY_REST_US * 1000L };
			STAT_INC(busy_rests);
			nanosleep(&ts, NULL);
			return;
		}
		/* At ordinary priority a flood keeps every burst full: back to the
		 * loop once a tick anyway, so timers, the state file and the
		 * watchdog ping (WatchdogSec=) still run. */
		if (now_ms() - busy_since >= 250)
			return;
	}
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "no-rules", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int check_only = 0, detach = 0, opt;
	char err[512];

	while ((opt = getopt_long(argc, argv, "c:ndhV", lopts, NULL)) != -1) {
		switch (opt) {
		case 'c': conf_path = optarg; break;
		case 'n': check_only = 1; break;
		case 'd': detach = 1; break;
		case 'R': manage_rules = 0; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("sipalgd %s\n", SIPALGD_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (conf_load(conf_path, &conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "%ssipalgd: %s\n", log_journal_prefix(LOG_LVL_ERR), err);
		return 1;
	}
	if (check_only) {
		printf("sipalgd: %s: configuration OK\n", conf_path);
		return 0;
	}
	conf_file = conf;
	log_init(conf.log_syslog, (enum log_level)conf.log_level);
	notify_init();
	if (ctl_in_use(conf.ctl_socket)) {
		log_err("another sipalgd answers on %s (sipalgctl status): not starting; starting "
			"would replace its table and rules", conf.ctl_socket);
		return 1;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	/* A signal must not fail a netlink round trip in progress (EINTR):
	 * the flags are read by the loop, which poll() wakes anyway. */
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int rc = 1;
	/* One key per start for every table indexed by attacker-chosen bytes. */
	if (siphash_key_init() < 0)
		log_warn("getrandom: no randomness yet; table hash key taken from the clock");
	if (ct_open() < 0 || nftmap_open(&conf) < 0 || alg_init(&conf, NULL) < 0 ||
	    wan_open(&conf, now_ms()) < 0 ||
	    nfq_sock_open(conf.queue_num, conf.queue_maxlen) < 0)
		goto out;
	ct_accounting_on(); /* per-call media counters for sipalgctl call */
	nftmap_set_passive(conf.observe);
	ct_set_passive(conf.observe);
	/* Take over the calls of a previous run before any packet is queued. */
	state_load(conf.state_file, now_ms());
	nftmap_commit();
	/* Before the diversion: whether it skips the fast path's mark depends
	 * on the fast path being there (auto turns it off when it is not). */
	if (fastpath_open(&conf) < 0)
		goto out;
	/* Likewise: the diversion marks what it queues only for a guard. */
	if (guard_open(&conf) < 0)
		goto out;
	if (manage_rules && rules_install(&conf) < 0)
		goto out;
	guard_reconfigure(&conf); /* whether IPv6 is diverted, known now */
	if (fwwatch_open(&conf, manage_rules) < 0)
		goto out_rules;
	/* Without the relay (a kernel without TPROXY), SIP/TCP leaves as it
	 * would without sipalgd, as with sip.tcp: false; UDP must not stop
	 * working for it. status says so and exits 1. */
	if (conf.sip_tcp && tcprelay_open(&conf, wan_public(), manage_rules) < 0)
		log_warn("tcprelay: not running (see above): SIP over TCP is not rewritten; "
			 "load nft_tproxy and nft_socket, or set sip.tcp: false to say so");
	if (ctl_open(conf.ctl_socket, ctl_answer) < 0)
		goto out_rules;
	if (detach) {
		if (daemon(0, 0) < 0) {
			log_err("daemon: %s", strerror(errno));
			goto out_ctl;
		}
		/* stderr is /dev/null now: a detached daemon logs to syslog */
		detached = 1;
		log_init(1, (enum log_level)conf.log_level);
		if (write_pidfile(conf.pid_file) < 0)
			log_warn("cannot write %s: %s", conf.pid_file, strerror(errno));
	}
	set_scheduling();
	drop_capabilities();
	/* Set-up (libnftables, libyaml) leaves freed heap behind: give it back.
	 * glibc only: musl (OpenWrt) has no malloc_trim and returns freed
	 * pages by itself. */
#ifdef __GLIBC__
	malloc_trim(0);
#endif
	start_ms = last_loop_ms = now_ms();
	log_info("running: WAN %s public %u.%u.%u.%u queue %u", conf.wan_if,
		 wan_public() >> 24, (wan_public() >> 16) & 255, (wan_public() >> 8) & 255,
		 wan_public() & 255, conf.queue_num);
	/* Ready: rules in place, queue bound, calls taken over. The watchdog
	 * is pinged from the tick, so a loop stuck anywhere (a netlink call that
	 * never returns) stops the pings and systemd restarts us. */
	notify_send("READY=1\nSTATUS=running");
	uint64_t wd_every = notify_watchdog_ms() / 2, wd_last = 0;

	uint64_t next_tick = now_ms() + 250;
	while (!stop_flag) {
		struct pollfd pfd[5] = {
			{ .fd = nfq_sock_fd(), .events = POLLIN },
			{ .fd = ctl_fd(), .events = POLLIN },
			{ .fd = wan_fd(), .events = POLLIN },
			{ .fd = tcprelay_fd(), .events = POLLIN },   /* -1 when sip.tcp is off */
			{ .fd = fwwatch_fd(), .events = POLLIN },
		};
		uint64_t now = now_ms();
		int timeout = next_tick > now ? (int)(next_tick - now) : 0;
		int pr = poll(pfd, 5, timeout);
		if (pr < 0 && errno != EINTR) {
			log_err("poll: %s", strerror(errno));
			break;
		}
		if (reload_flag) {
			reload_flag = 0;
			reload();
			nftmap_commit(); /* a new public address: before the next message */
			ct_commit();
		}
		/* The address first: a queued message then carries the new one. */
		if (pr > 0 && (pfd[2].revents & POLLIN)) {
			wan_event(now_ms());
			nftmap_commit();
			ct_commit();
		}
		if (pr > 0 && (pfd[0].revents & POLLIN))
			handle_burst();
		if (pr > 0 && (pfd[1].revents & POLLIN))
			ctl_serve();
		if (pr > 0 && (pfd[3].revents & POLLIN))
			tcprelay_serve(now_ms());
		/* After the control socket: a status asked before a firewall
		 * event is answered with what the event left (tests rely on it). */
		if (pr > 0 && (pfd[4].revents & POLLIN))
			fwwatch_event(now_ms());
		now = now_ms();
		if (now >= next_tick) {
			uint64_t before = stats[ST_dialogs] + stats[ST_bindings] + stats[ST_registrations];
			wan_event(now); /* a slow re-check besides the events */
			alg_tick(now);
			tcprelay_tick(now);
			fastpath_tick(now);
			guard_tick(now);
			if (stats[ST_dialogs] + stats[ST_bindings] + stats[ST_registrations] != before)
				state_touch();
			state_save(conf.state_file, now, 0);
			nftmap_commit();
			ct_commit();
			fwwatch_tick(now);
			next_tick = now + 250;
			if (wd_every && now - wd_last >= wd_every) {
				notify_send("WATCHDOG=1");
				wd_last = now;
			}
		}
		last_loop_ms = now;
	}
	log_info("stopping");
	notify_send("STOPPING=1");
	/* Calls outlive a restart: the next run takes them over. */
	state_save(conf.state_file, now_ms(), 1);
	rc = 0;
	if (detach)
		unlink(conf.pid_file);
out_ctl:
	ctl_close();
out_rules:
	tcprelay_close();
	fwwatch_close();
	/* the program first: nothing rewritten outside the queue from here */
	fastpath_close();
	if (manage_rules)
		rules_remove(&conf);
	/* after the rules: until they are gone, unmarked SIP is still a leak */
	guard_close();
out:
	fastpath_close();
	guard_close();
	nfq_sock_close();
	wan_close();
	alg_fini();
	nftmap_close(1);
	ct_close();
	return rc;
}
