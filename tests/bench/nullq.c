/* nullq QUEUE [HOLDOFF_US]: the floor of any NFQUEUE-based ALG, for the
 * bench's `queue` router. It reads the queue exactly as sipalgd does (src/nfq.c,
 * linked as it is: recvmmsg bursts, every verdict of a burst in one sendmsg),
 * with sipalgd's adaptive hold-off (src/holdoff.c) and realtime priority, and
 * accepts every packet unchanged: no parse, no rewrite, no nft or ct transaction. What it
 * costs is what the queue itself costs (copy out, copy in, reinjection, the
 * wake-ups), which no ALG that handles its messages in user space avoids.
 * Timing only: the bench measures it, nothing asserts on it. */
#include "holdoff.h"
#include "log.h"
#include "nfq.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BATCH 64 /* queue.batch's shipped default */

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv)
{
	static struct nfq_pkt pkts[BATCH];
	uint32_t holdoff_us = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 2000;
	unsigned long long in = 0, wakes = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: nullq QUEUE [HOLDOFF_US]\n");
		return 2;
	}
	log_init(0, LOG_LVL_WARN);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	/* sipalgd's default queue.realtime_priority: 1 */
	struct sched_param sp = { .sched_priority = 1 };
	if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
		perror("nullq: sched_setscheduler (left at ordinary priority)");
	if (nfq_sock_open((uint16_t)strtoul(argv[1], NULL, 10), 4096) < 0) {
		fprintf(stderr, "nullq: cannot bind queue %s\n", argv[1]);
		return 1;
	}
	struct pollfd pfd = { .fd = nfq_sock_fd(), .events = POLLIN };
	while (!stop) {
		if (poll(&pfd, 1, 250) <= 0)
			continue;
		wakes++;
		for (;;) {
			int n = nfq_recv_burst(pkts, BATCH);
			if (n <= 0)
				break;
			in += (unsigned)n;
			for (int i = 0; i < n; i++)
				nfq_verdict_add(pkts[i].id, 1, NULL, 0);
			nfq_verdict_flush();
			if (n < BATCH) {
				uint32_t h = holdoff_next((uint32_t)n, holdoff_us);
				if (h) {
					struct timespec ts = { 0, (long)h * 1000L };
					nanosleep(&ts, NULL);
				}
				break;
			}
		}
	}
	nfq_sock_close();
	printf("pkts_in %llu\nwakeups %llu\n", in, wakes);
	return 0;
}
