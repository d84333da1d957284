/* nftmap: the daemon's own nftables table, whose NAT maps carry the binding
 * table's decisions into the kernel (libnftnl over one long-lived libmnl socket).
 *
 *   out4     (private ip . private port) -> (public ip . public port)   SNAT, postrouting srcnat-5
 *   in_peer  (remote ip . public port)   -> (private ip . private port) DNAT, prerouting dstnat-5
 *   in_any   (public port)               -> (private ip . private port) DNAT, same chain, after in_peer
 *   in_lan   (LAN ip . public port)      -> (private ip . private port) DNAT of packets that do
 *            not arrive on the WAN (hairpin: a LAN phone sending to another one's public
 *            media port), then SNAT to the sender's out4 mapping so the reply comes back
 *            through the router and the callee sees the address its SDP named
 *
 * Calls below only queue changes; nftmap_commit() sends them all in one
 * batch transaction and drains every ACK. Commit before sending the verdicts
 * of the packets that caused them, so the kernel agrees with the SDP before
 * it leaves the router.
 * in_peer/in_any elements are reference counted here (a PBX trunk's calls
 * share one signalling flow): the kernel element is added on the first ref
 * and deleted on the last unref. A peer of 0 means in_any; a peer inside
 * lan.networks means in_lan; any other, in_peer.
 * All addresses and ports are in HOST byte order. */
#ifndef SIPALGD_NFTMAP_H
#define SIPALGD_NFTMAP_H
#include <stdint.h>
#include <stdio.h>

#include "addr.h"

struct conf;

/* Create (or take over: flush and re-create) our table and its chains and maps.
 * Returns 0 or -1 (logged). */
int nftmap_open(const struct conf *c);
/* Remove our table from the kernel when `remove` is set, close the socket. */
void nftmap_close(int remove);

/* Addresses are struct addr (IPv4 as v4-mapped, addr_v4()); the family of
 * an element is the family of `priv`. A peer that is the family's
 * unspecified address (addr_v4(0) for IPv4, :: for IPv6) means "any"
 * (in_any), as 0 did. */
void nftmap_snat_add(const struct addr *priv, uint16_t priv_port, const struct addr *pub, uint16_t pub_port);
void nftmap_snat_del(const struct addr *priv, uint16_t priv_port);
void nftmap_dnat_ref(const struct addr *peer, uint16_t pub_port, const struct addr *priv, uint16_t priv_port);
void nftmap_dnat_unref(const struct addr *peer, uint16_t pub_port);

/* Send what was queued since the last commit. Returns the number of elements
 * the kernel refused (counted in nft_errors), 0 when all went in. */
int nftmap_commit(void);

/* Is an add pending? Adds must reach the kernel before the message that
 * needs them leaves; deletes alone may wait for the next timer tick, where
 * the deletes of many calls share one transaction. */
int nftmap_urgent(void);

/* mode: observe. While on, nothing is queued or sent: the reference
 * counts still follow the calls (sipalgctl shows the would-be elements),
 * the kernel maps stay empty. Switching it on empties the maps. */
void nftmap_set_passive(int on);
/* Put our table back after someone else removed or replaced it (a
 * firewall reload): the same atomic take-over as nftmap_open(), then every
 * inbound element this module holds a reference for is queued again. The
 * caller queues the SNAT elements (binding_repush()) and commits. Pending
 * changes are dropped: the re-queued state already includes them.
 * 0 or -1 (logged). */
int nftmap_restore(void);
/* Queue an add of every inbound element this module holds a reference for
 * (leaving observe mode: the references were kept, the elements not). */
void nftmap_requeue(void);

/* One line per inbound element: "peer PEER pub PORT -> IP:PORT refs N". */
void nftmap_dump(FILE *f);
/* The same elements one by one (sipalgctl --json): from *cursor (start at
 * 0); 1 and the element's fields, or 0 at the end. */
int nftmap_inbound_next(uint32_t *cursor, struct addr *peer, uint16_t *pub_port, struct addr *priv,
			uint16_t *priv_port, uint32_t *refs);

#endif
