/* ct: conntrack over ctnetlink (libnetfilter_conntrack + libmnl): look up the
 * NAT an existing SIP flow already has, create the pinholes of routed IPv6
 * media in advance, and delete media flows when a call ends. This kernel
 * cannot hand conntrack data with a queued packet, hence lookups. Ports in
 * HOST byte order; addresses are struct addr, and the netlink family of a
 * request (AF_INET / AF_INET6) is the one addr_is_v4() gives. */
#ifndef SIPALGD_CT_H
#define SIPALGD_CT_H
#include <stdint.h>

#include "addr.h"

int ct_open(void);
void ct_close(void);

/* Is there a confirmed UDP conntrack with this original tuple that is
 * source-NATed? Returns 1 and the public address/port, 0 if none, -1 on error. */
int ct_lookup_snat(struct addr src, uint16_t sport, struct addr dst, uint16_t dport,
		   struct addr *pub_ip, uint16_t *pub_port);

/* Queue deletion of the UDP conntrack that has (a:ap -> b:bp) as either its
 * original or its reply tuple. */
void ct_del_udp(struct addr a, uint16_t ap, struct addr b, uint16_t bp);

/* Queue creation of a UDP conntrack whose ORIGINAL tuple is (src:sport ->
 * dst:dport), its reply the reverse, status SEEN_REPLY and `timeout_s`:
 * the pinhole of routed IPv6 media (docs/ipv6.md). The remote's first
 * datagram then finds an established flow, which every stateful forward
 * policy accepts, and only from exactly that address and port. The kernel
 * expires it after timeout_s without traffic, so a pinhole the daemon
 * forgets closes by itself. EEXIST (the phone sent first) is success.
 * Both addresses must be of one family. */
void ct_create_udp(struct addr src, uint16_t sport, struct addr dst, uint16_t dport, uint32_t timeout_s);

/* The same for a phone behind the router's NAT66 (wan.nat66_*): the
 * original tuple is (src:sport -> dst:dport), dst being the phone's public
 * address, and the entry carries its destination NAT to `to`:dport
 * (CTA_NAT_DST: the kernel writes the reply tuple to:dport -> src:sport and
 * marks it DST_NAT, as if the NAT66 rule had mapped it). The remote's first
 * datagram is ESTABLISHED and reaches the phone; the phone's own datagrams
 * on that flow leave from dst:dport, the NAT's mapping. */
void ct_create_udp_nat(struct addr src, uint16_t sport, struct addr dst, uint16_t dport, struct addr to,
		       uint32_t timeout_s);

/* Queue deletion of every UDP conntrack whose ORIGINAL tuple has ip:port as
 * its destination (to_dst) or its source: all flows into a pinhole whatever
 * port the remote sends from, or all flows a phone's media port started.
 * Done at commit with one kernel-filtered dump (CTA_FILTER) each: it walks
 * the conntrack table, so callers use it only when the exact tuple is not
 * known. */
void ct_del_port(struct addr ip, uint16_t port, int to_dst);

/* Queue deletion of every UDP conntrack that names `ip` as the original
 * destination (inbound flows NATed to it) or as the reply destination
 * (outbound flows SNATed to it): the flows of a public address the WAN no
 * longer has. Done at commit by kernel-filtered dumps, repeated until no
 * such flow is left (bounded). */
void ct_del_addr(struct addr ip);

/* The deletes queued so far must reach the kernel before the verdicts of
 * this burst (a stale flow that would hide a new pinhole); other deletes
 * (closing) may wait for the next tick. ct_urgent() tells; commit clears. */
void ct_mark_urgent(void);
int ct_urgent(void);

/* Send queued creates and deletes (several per sendmsg, in the order they
 * were queued); ENOENT on a delete and EEXIST on a create are not errors.
 * Returns the number of failures (counted in ct_errors). */
int ct_commit(void);

/* ---- for sipalgctl call (not the packet path: one kernel dump each) ---- */
struct ct_flow {
	struct addr src, dst, rsrc; /* original tuple, and the reply's source (NAT target) */
	uint16_t sport, dport, rsport;
	uint32_t status;           /* IPS_* */
	int dnat;                  /* destination-NATed: it went through a pinhole */
	int has_counters;          /* conntrack accounting was on when it was created */
	uint64_t pkts[2], bytes[2]; /* [0] original direction, [1] reply */
};
typedef void (*ct_flow_fn)(const struct ct_flow *f, void *arg);
/* Every UDP conntrack whose ORIGINAL tuple has ip:port as destination
 * (to_dst) or source, one call of fn each. 0, or -1 (errno). */
int ct_flows(struct addr ip, uint16_t port, int to_dst, ct_flow_fn fn, void *arg);
/* mode: observe: while on, deletes are not queued. */
void ct_set_passive(int on);
/* Switch on nf_conntrack_acct in our namespace (the counters above). */
void ct_accounting_on(void);

#endif
