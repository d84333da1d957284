/* nfq: the NFQUEUE socket (libnetfilter_queue's nfq_nlmsg_* helpers on libmnl).
 * Receive a burst, let the caller decide, then send every verdict of the burst
 * in one sendmsg, in packet-id order. Fail closed: the queue is bound without
 * the fail-open flag, so a dead daemon stops SIP instead of leaking. */
#ifndef SIPALGD_NFQ_H
#define SIPALGD_NFQ_H
#include <stdint.h>

struct nfq_pkt {
	uint32_t id;       /* packet id for the verdict */
	uint8_t *data;     /* IPv4 header onwards (points into nfq's receive buffer) */
	uint32_t len;
	uint32_t indev;    /* ifindex, 0 if unknown */
	uint32_t outdev;
};

/* Bind queue `num` (copy range 0xffff, maxlen, 8 MiB+ receive buffer,
 * NETLINK_NO_ENOBUFS off so overflows are seen and counted). 0 or -1. */
int nfq_sock_open(uint16_t num, uint32_t maxlen);
void nfq_sock_close(void);
int nfq_sock_fd(void);

/* Non-blocking: receive up to `max` packets that are waiting (recvmmsg).
 * Returns how many, 0 if none, -1 on error other than EAGAIN/ENOBUFS
 * (ENOBUFS is counted in queue_enobufs and returns what was read). The
 * packets stay valid until the next nfq_recv_burst(). */
int nfq_recv_burst(struct nfq_pkt *pkts, int max);

/* Queue a verdict. `payload` (the whole new IPv4 packet) may be NULL for
 * "unchanged". The payload is referenced, not copied, until nfq_verdict_flush(). */
void nfq_verdict_add(uint32_t id, int accept, const uint8_t *payload, uint32_t len);

/* Send all queued verdicts in one sendmsg. 0 or -1 (counted in verdict_errors). */
int nfq_verdict_flush(void);

#endif
