/* sipguard: what the WAN egress guard (bpf/sipguard.bpf.c) and its loader
 * (src/guard.c) share. Included by both, so only fixed-size types.
 *
 * The program runs at the egress of the WAN interface, after the forward
 * hook and NAT. A forwarded UDP datagram to or from a SIP port that carries
 * none of the marks in cfg.mark_ok did not go through our queue (or the
 * fast path): the diversion is missing (a firewall reload flushed it) and
 * the datagram still holds the LAN's addresses. It is dropped; the phone
 * retransmits, and the retransmission finds the repaired diversion.
 * Ports in host order. */
#ifndef SIPALGD_SIPGUARD_H
#define SIPALGD_SIPGUARD_H

#if defined(__bpf__) || defined(__linux__)
#include <linux/types.h>
#else
#include <stdint.h>
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
#endif

#define SIPGUARD_MAX_PORTS 8

#define SIPGUARD_F_ENABLED 0x1 /* clear: the program passes everything */
#define SIPGUARD_F_NOETH   0x2 /* the WAN has no link header (ppp, tun, wg) */
#define SIPGUARD_F_IPV6    0x4 /* IPv6 SIP is diverted too: guard it as well */

/* Map "sipguard_cfg": an array of one, written whole by the daemon. */
struct sipguard_cfg {
	__u32 flags;
	__u32 mark_ok;                 /* any of these skb->mark bits: went through us */
	__u32 n_ports;
	__u16 ports[SIPGUARD_MAX_PORTS];
};

/* Map "sipguard_stats": a per-CPU array of counters, indexed by these. */
enum {
	SIPGUARD_DROPPED,  /* forwarded SIP without our mark: dropped */
	SIPGUARD_PASSED,   /* forwarded SIP with our mark */
	SIPGUARD_LOCAL,    /* SIP sent by the router itself: never dropped */
	SIPGUARD_STAT_MAX
};

#endif
