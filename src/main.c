/* sipalgd: main loop. One thread: the queue socket, the control socket and
 * a 250 ms tick, in one poll(). Signal handlers only set flags. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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
#include "fwwatch.h"
#include "log.h"
#include "nfq.h"
#include "nftmap.h"
#include "rules.h"
#include "state.h"
#include "stats.h"

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

static int wan_address(const char *ifname, uint32_t *ip)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	int rc = ioctl(fd, SIOCGIFADDR, &ifr);
	close(fd);
	if (rc < 0)
		return -1;
	*ip = ntohl(((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr.s_addr);
	return 0;
}

/* The router's own addresses: a pinhole must never lead to the router. */
static void local_addresses(struct conf *c)
{
	struct ifaddrs *ifa, *i;

	c->n_local = 0;
	if (getifaddrs(&ifa) < 0) {
		log_warn("getifaddrs: %s", strerror(errno));
		return;
	}
	for (i = ifa; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    c->n_local < (int)(sizeof(c->local_ips) / sizeof(c->local_ips[0])))
			c->local_ips[c->n_local++] = ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
	freeifaddrs(ifa);
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

static int ctl_answer(const char *cmd, FILE *out)
{
	uint64_t now = now_ms();

	if (strcmp(cmd, "status") == 0) {
		char miss[256], helper[256];

		/* Answered from the packet loop itself: an answer means the loop
		 * runs. The rules are checked now, not from memory: a firewall
		 * reload not yet repaired makes the first word "missing". */
		if (fwwatch_missing(miss, sizeof(miss)))
			fprintf(out, "missing %s; ", miss);
		else
			fputs("ok ", out);
		fprintf(out, "pid %d uptime %llus packets %llu dialogs %llu bindings %llu pinholes %llu "
			"rules_restored %llu kernel_helper %d\n",
			(int)getpid(), (unsigned long long)((now - start_ms) / 1000),
			(unsigned long long)stats[ST_pkts_in], (unsigned long long)stats[ST_dialogs],
			(unsigned long long)stats[ST_bindings], (unsigned long long)stats[ST_pinholes],
			(unsigned long long)stats[ST_rules_restored], fwwatch_helper(helper, sizeof(helper)));
		if (helper[0])
			fprintf(out, "warning: kernel SIP helper on our traffic: %s\n", helper);
		return 0;
	}
	if (strcmp(cmd, "counters") == 0) {
		stats_dump(out);
		return 0;
	}
	/* A header line even for an empty table: silence means trouble. */
	if (strcmp(cmd, "bindings") == 0) {
		fprintf(out, "# bindings %llu\n", (unsigned long long)stats[ST_bindings]);
		binding_dump(out, now);
		return 0;
	}
	if (strcmp(cmd, "dialogs") == 0) {
		fprintf(out, "# dialogs %llu\n", (unsigned long long)stats[ST_dialogs]);
		dialog_dump(out, now);
		return 0;
	}
	if (strcmp(cmd, "pinholes") == 0) {
		fprintf(out, "# pinholes %llu\n", (unsigned long long)stats[ST_pinholes]);
		dialog_dump_pinholes(out);
		fputs("# kernel inbound elements\n", out);
		nftmap_dump(out);
		return 0;
	}
	return -1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: sipalgd [-c FILE] [-n] [-d] [--no-rules]\n"
		   "  -c FILE     configuration (default /etc/sipalgd/sipalgd.yaml)\n"
		   "  -n          check the configuration and exit\n"
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

/* SIGHUP: parse into a fresh struct; swap in only what can change under
 * running calls (timers, limits that only bound future state, logging). */
static void reload(void)
{
	static struct conf nc;
	char err[512];

	if (conf_load(conf_path, &nc, err, sizeof(err)) < 0) {
		log_err("reload refused, keeping the running configuration: %s", err);
		return;
	}
	if (strcmp(nc.wan_if, conf.wan_if) || nc.queue_num != conf.queue_num ||
	    nc.n_lan != conf.n_lan || memcmp(nc.lan, conf.lan, sizeof(nc.lan[0]) * (size_t)nc.n_lan) ||
	    strcmp(nc.nft_table, conf.nft_table) || nc.max_bindings != conf.max_bindings ||
	    nc.max_dialogs != conf.max_dialogs)
		log_warn("reload: interface, LAN, queue, table and table sizes need a restart; kept");
	conf.dialog_timeout_s = nc.dialog_timeout_s;
	conf.early_timeout_s = nc.early_timeout_s;
	conf.binding_idle_s = nc.binding_idle_s;
	conf.register_max_s = nc.register_max_s;
	conf.max_pinholes = nc.max_pinholes;
	conf.max_pinholes_per_phone = nc.max_pinholes_per_phone;
	conf.max_streams_per_call = nc.max_streams_per_call;
	conf.rate_per_source = nc.rate_per_source;
	conf.holdoff_us = nc.holdoff_us;
	conf.batch_max = nc.batch_max;
	conf.pinhole_src = nc.pinhole_src;
	conf.inbound_src = nc.inbound_src;
	conf.media_other_hosts = nc.media_other_hosts;
	conf.log_level = nc.log_level;
	local_addresses(&conf);
	log_init(conf.log_syslog || detached, (enum log_level)conf.log_level);
	log_info("configuration reloaded from %s", conf_path);
}

/* Adaptive hold-off. A wake-up costs more than handling the packets it
 * brings (shared notes: 15-18 us per wake-up, 0.4 us per scan), so after a
 * partial burst we pause long enough for about HOLDOFF_BATCH packets to
 * gather, at most queue.holdoff_us, and not at all when fewer than two
 * would come in that time: a timer wake-up that batches nothing costs more
 * than it saves. A full burst never pauses. */
#define HOLDOFF_BATCH 16
/* Under a flood every burst is full. At realtime priority, after this much
 * uninterrupted work rest BUSY_REST_US, so at least a fifth of the CPU stays
 * with the rest of the router (the kernel queues, or drops, meanwhile). */
#define BUSY_MAX_MS 8
#define BUSY_REST_US 2000

static uint32_t holdoff_next(uint32_t n)
{
	static struct timespec last;
	static double rate; /* packets per second, smoothed */
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	double dt = (double)(ts.tv_sec - last.tv_sec) + (double)(ts.tv_nsec - last.tv_nsec) / 1e9;
	last = ts;
	if (dt <= 0 || dt > 1.0)
		dt = 1.0;
	rate = 0.75 * rate + 0.25 * ((double)n / dt);
	if (!conf.holdoff_us || rate * conf.holdoff_us / 1e6 < 2.0)
		return 0;
	double h = HOLDOFF_BATCH / rate * 1e6;
	return h > conf.holdoff_us ? conf.holdoff_us : (uint32_t)h;
}

static void handle_burst(void)
{
	uint64_t busy_since = now_ms();

	for (;;) {
		uint32_t max = conf.batch_max < MAX_BATCH ? conf.batch_max : MAX_BATCH;
		int n = nfq_recv_burst(pkts, (int)max);
		if (n <= 0)
			return;
		uint64_t now = now_ms();
		state_touch();
		STAT_ADD(pkts_in, (uint64_t)n);
		size_t off = 0;
		for (int i = 0; i < n; i++) {
			uint32_t olen = 0;
			uint8_t *out = outbuf + off;
			enum alg_verdict v = alg_packet(pkts[i].data, pkts[i].len, out, OUT_CAP, &olen, now);
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
			uint32_t h = holdoff_next((uint32_t)n);
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
	}
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "no-rules", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int check_only = 0, detach = 0, manage_rules = 1, opt;
	char err[512];

	while ((opt = getopt_long(argc, argv, "c:ndh", lopts, NULL)) != -1) {
		switch (opt) {
		case 'c': conf_path = optarg; break;
		case 'n': check_only = 1; break;
		case 'd': detach = 1; break;
		case 'R': manage_rules = 0; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (conf_load(conf_path, &conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "sipalgd: %s\n", err);
		return 1;
	}
	if (check_only) {
		printf("sipalgd: %s: configuration OK\n", conf_path);
		return 0;
	}
	log_init(conf.log_syslog, (enum log_level)conf.log_level);
	if (!conf.public_ip && wan_address(conf.wan_if, &conf.public_ip) < 0) {
		log_err("no IPv4 address on WAN interface %s (set wan.public_address)", conf.wan_if);
		return 1;
	}

	local_addresses(&conf);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int rc = 1;
	if (ct_open() < 0 || nftmap_open(&conf) < 0 || alg_init(&conf, conf.public_ip) < 0 ||
	    nfq_sock_open(conf.queue_num, conf.queue_maxlen) < 0)
		goto out;
	/* Take over the calls of a previous run before any packet is queued. */
	state_load(conf.state_file, now_ms());
	nftmap_commit();
	if (manage_rules && rules_install(&conf) < 0)
		goto out;
	if (fwwatch_open(&conf, manage_rules) < 0)
		goto out_rules;
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
	/* Set-up (libnftables, libyaml) leaves freed heap behind: give it back. */
	malloc_trim(0);
	start_ms = last_loop_ms = now_ms();
	log_info("running: WAN %s public %u.%u.%u.%u queue %u", conf.wan_if,
		 conf.public_ip >> 24, (conf.public_ip >> 16) & 255, (conf.public_ip >> 8) & 255,
		 conf.public_ip & 255, conf.queue_num);

	uint64_t next_tick = now_ms() + 250;
	while (!stop_flag) {
		struct pollfd pfd[3] = {
			{ .fd = nfq_sock_fd(), .events = POLLIN },
			{ .fd = ctl_fd(), .events = POLLIN },
			{ .fd = fwwatch_fd(), .events = POLLIN },
		};
		uint64_t now = now_ms();
		int timeout = next_tick > now ? (int)(next_tick - now) : 0;
		int pr = poll(pfd, 3, timeout);
		if (pr < 0 && errno != EINTR) {
			log_err("poll: %s", strerror(errno));
			break;
		}
		if (reload_flag) {
			reload_flag = 0;
			reload();
		}
		if (pr > 0 && (pfd[0].revents & POLLIN))
			handle_burst();
		if (pr > 0 && (pfd[1].revents & POLLIN))
			ctl_serve();
		/* After the control socket: a status asked before a firewall
		 * event is answered with what the event left (tests rely on it). */
		if (pr > 0 && (pfd[2].revents & POLLIN))
			fwwatch_event(now_ms());
		now = now_ms();
		if (now >= next_tick) {
			uint64_t before = stats[ST_dialogs] + stats[ST_bindings] + stats[ST_registrations];
			alg_tick(now);
			if (stats[ST_dialogs] + stats[ST_bindings] + stats[ST_registrations] != before)
				state_touch();
			state_save(conf.state_file, now, 0);
			nftmap_commit();
			ct_commit();
			fwwatch_tick(now);
			next_tick = now + 250;
		}
		last_loop_ms = now;
	}
	log_info("stopping");
	/* Calls outlive a restart: the next run takes them over. */
	state_save(conf.state_file, now_ms(), 1);
	rc = 0;
	if (detach)
		unlink(conf.pid_file);
out_ctl:
	ctl_close();
out_rules:
	fwwatch_close();
	if (manage_rules)
		rules_remove(&conf);
out:
	nfq_sock_close();
	alg_fini();
	nftmap_close(1);
	ct_close();
	return rc;
}
