/* stepcost: what the daemon's kernel calls cost per call, measured alone
 * (no traffic, no other process in the way): the thread's own CPU time
 * (CLOCK_THREAD_CPUTIME_ID, user + kernel: netlink requests run inside our
 * sendmsg) around
 *   - ct: the stale-flow clear of one pinhole (2 deletes of absent flows,
 *     ct_commit) as stream_clear_stale() queues it for every answer;
 *   - nft: a transaction of K element adds, then one of the K deletes
 *     (K = 1, 2, 4, 8, 16), so per transaction = a + b*K can be read off;
 *   - the same nft transactions with a listener on the nf_tables event
 *     group that reads every event (what fwwatch does), since the kernel
 *     builds element notifications only when someone listens.
 * Run by tests/bench/stepcost.sh in a namespace of its own. Prints a table;
 * asserts nothing (timing). */
#include "conf.h"
#include "ct.h"
#include "log.h"
#include "nftmap.h"
#include "stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/netfilter/nfnetlink.h>

#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

static double tnow(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int listener = -1;
static unsigned long events_read;

static void drain_events(void)
{
	static char buf[65536];
	if (listener < 0)
		return;
	for (int i = 0; i < 1024; i++) {
		ssize_t n = recv(listener, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0)
			break;
		events_read++;
	}
}

/* Per transaction (us): K adds then K deletes, `rounds` times each. */
static void nft_row(int k, int rounds, double *add_us, double *del_us)
{
	double ta = 0, td = 0;
	struct addr peer = addr_v4(IP4(198, 51, 100, 7)), priv = addr_v4(IP4(10, 0, 1, 2));

	for (int r = 0; r < rounds; r++) {
		uint16_t base = (uint16_t)(20000 + (r % 1000) * 32);
		double t0 = tnow();
		for (int i = 0; i < k; i++)
			nftmap_dnat_ref(&peer, (uint16_t)(base + i), &priv, (uint16_t)(base + i));
		nftmap_commit();
		drain_events();
		double t1 = tnow();
		for (int i = 0; i < k; i++)
			nftmap_dnat_unref(&peer, (uint16_t)(base + i));
		nftmap_commit();
		drain_events();
		double t2 = tnow();
		ta += t1 - t0;
		td += t2 - t1;
	}
	*add_us = ta / rounds;
	*del_us = td / rounds;
}

int main(int argc, char **argv)
{
	struct conf c;
	int rounds = argc > 1 ? atoi(argv[1]) : 2000;
	const int ks[] = { 1, 2, 4, 8, 16 };

	log_init(0, LOG_LVL_WARN);
	memset(&c, 0, sizeof(c));
	snprintf(c.wan_if, sizeof(c.wan_if), "wan0");
	c.public_ip = IP4(192, 0, 2, 1);
	c.pinhole_src = CONF_PINHOLE_PEER;
	c.max_pinholes = 16384;
	c.max_bindings = 16384;
	snprintf(c.nft_table, sizeof(c.nft_table), "salg_stepcost");
	if (ct_open() < 0 || nftmap_open(&c) < 0) {
		fprintf(stderr, "stepcost: cannot open ctnetlink / nft\n");
		return 1;
	}

	/* ct: the stale-flow clear of one pinhole: RTP and RTCP tuples. */
	double t0 = tnow();
	for (int r = 0; r < rounds * 5; r++) {
		uint16_t rp = (uint16_t)(30000 + 2 * (r % 10000));
		ct_del_udp(addr_v4(IP4(203, 0, 113, 10)), rp, addr_v4(c.public_ip), 16000);
		ct_del_udp(addr_v4(IP4(203, 0, 113, 10)), (uint16_t)(rp + 1), addr_v4(c.public_ip), 16001);
		ct_mark_urgent();
		ct_commit();
	}
	double ct_us = (tnow() - t0) / (rounds * 5);
	printf("| step | CPU per operation (us) |\n|---|---:|\n");
	printf("| ct: stale-flow clear of one pinhole (2 deletes, 1 commit) | %.2f |\n", ct_us);

	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			int grp = NFNLGRP_NFTABLES;
			struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
			listener = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
			if (listener < 0 || bind(listener, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
			    setsockopt(listener, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp)) < 0) {
				fprintf(stderr, "stepcost: event listener: %s\n", strerror(errno));
				return 1;
			}
		}
		for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
			double a, d;
			nft_row(ks[i], rounds, &a, &d);
			printf("| nft: transaction of %2d adds / of %2d deletes%s | %.2f / %.2f |\n", ks[i], ks[i],
			       pass ? ", an event listener reading" : "", a, d);
		}
	}
	printf("\n(%d rounds each; %lu event datagrams read by the listener; nft_errors %llu, ct_errors %llu)\n",
	       rounds, events_read, (unsigned long long)stats[ST_nft_errors],
	       (unsigned long long)stats[ST_ct_errors]);
	nftmap_close(1);
	ct_close();
	return 0;
}
