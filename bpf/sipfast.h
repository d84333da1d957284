/* sipfast: what the tc fast path (bpf/sipfast.bpf.c) and its loader
 * (src/fastpath.c) share: the maps' layouts and the counters. Included by
 * both the BPF program and the daemon, so only fixed-size types.
 *
 * The program runs at clsact ingress of the LAN and WAN interfaces, before
 * conntrack and NAT. It rewrites only messages that change no state in the
 * daemon (see docs/fastpath.md) and only when it is certain the bytes it
 * produces are the ones the daemon would produce; it marks what it handled
 * (cfg.mark) so that the diversion to NFQUEUE skips it. Everything else is
 * passed on untouched, to the queue as before.
 *
 * Byte order: addresses in network order (as in the packet), ports in host
 * order. */
#ifndef SIPALGD_SIPFAST_H
#define SIPALGD_SIPFAST_H

/* linux/types.h wherever it exists: libbpf's headers include it too, and
 * its __u64 (unsigned long long) conflicts with a uint64_t typedef. */
#if defined(__bpf__) || defined(__linux__)
#include <linux/types.h>
#else
#include <stdint.h>
typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
#endif

#define SIPFAST_MAX_LAN 16
#define SIPFAST_MAX_PORTS 8

#define SIPFAST_F_ENABLED 0x1 /* clear: the program passes everything */
#define SIPFAST_F_WAN_NOETH 0x2 /* the WAN interface has no link header (ppp, tun, wg):
				  * its frames start at the IP header */

#define SIPFAST_F_ANY_EGRESS 0x4 /* skip the route check of LAN -> WAN messages (tests);
				   * clear: an outbound message is handled only when the
				   * route to its destination leaves by wan_ifindex, since
				   * only those reach the queue (oifname WAN) */

#define SIPFAST_PUB_OLD 4      /* = alg.c PUB_OLD_MAX */

/* Map "sipfast_cfg": an array of one. The daemon writes it whole; pub_ip 0
 * (no WAN address) or flags without SIPFAST_F_ENABLED: pass everything. */
struct sipfast_cfg {
	__u32 flags;
	__u32 pub_ip;                  /* the router's public address */
	char pub_str[16];              /* the same as dotted quad, pub_len bytes */
	__u32 pub_len;
	__u32 wan_ifindex;             /* arriving here: inbound (WAN -> LAN) */
	__u32 mark;                    /* skb->mark bits set on handled packets */
	__u32 n_lan;
	__u32 lan_net[SIPFAST_MAX_LAN]; /* lan.networks: net & mask */
	__u32 lan_mask[SIPFAST_MAX_LAN];
	__u32 n_ports;
	__u16 sip_ports[SIPFAST_MAX_PORTS]; /* sip.ports */
	/* Added by the program (fields only ever appended): */
	__u32 pub_old[SIPFAST_PUB_OLD]; /* alg.c's earlier public addresses (0: none).
					 * Any set: outbound messages with a LAN literal
					 * in Call-ID/From/To and inbound ones naming an
					 * old address there are passed (scrub_dialog_ids,
					 * unscrub_pub are the daemon's then). */
};

/* Signalling bindings (binding.h, kind BIND_SIG only), mirrored by the
 * daemon whenever one is created, changes flags or goes. */
#define SIPFAST_BF_VIA_PORT     0x01 /* = BF_VIA_PORT */
#define SIPFAST_BF_CONTACT_PORT 0x02 /* = BF_CONTACT_PORT */

struct sipfast_priv_key { /* map "sipfast_priv": private ip:port -> binding */
	__u32 ip;
	__u16 port;
	__u16 pad;             /* 0 */
};
struct sipfast_pub_key {  /* map "sipfast_pub": public port -> binding */
	__u32 port;            /* host order, in 32 bits */
};
struct sipfast_binding {
	__u32 priv_ip;
	__u16 priv_port;
	__u16 pub_port;
	__u8 flags;            /* SIPFAST_BF_* */
	__u8 pad[3];
};

#define SIPFAST_BINDINGS_DEFAULT 65536 /* max_entries; the loader sets limits.bindings */

/* Map "sipfast_stats": per-CPU array of __u64, one slot per counter. */
enum sipfast_stat {
	SIPFAST_HANDLED_OUT = 0, /* LAN -> WAN rewritten and marked */
	SIPFAST_HANDLED_IN,      /* WAN -> LAN rewritten and marked */
	SIPFAST_PASS_NOT_SIP,    /* not UDP to/from a SIP port, fragments, options */
	SIPFAST_PASS_STATEFUL,   /* a message the daemon must see (body, INVITE...) */
	SIPFAST_PASS_UNSURE,     /* the program could not be sure of the result */
	SIPFAST_PASS_NO_BINDING, /* no binding for the address it would map */
	SIPFAST_ERRORS,          /* a helper failed after the packet was changed: dropped */
	SIPFAST_STAT_MAX
};

#endif
