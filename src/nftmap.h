/* nftmap: the daemon's own nftables tables, whose NAT maps carry the binding
 * table's decisions into the kernel (libnftnl over one long-lived libmnl socket).
 *
 * table ip <paths.nft_table>, always:
 *   out4     (private ip . private port) -> (public ip . public port)   SNAT, postrouting srcnat-5
 *   in_peer  (remote ip . public port)   -> (private ip . private port) DNAT, prerouting dstnat-5
 *   in_any   (public port)               -> (private ip . private port) DNAT, same chain, after in_peer
 *   in_lan   (LAN ip . public port)      -> (private ip . private port) DNAT of packets that do
 *            not arrive on the WAN (hairpin: a LAN phone sending to another one's public
 *            media port), then SNAT to the sender's out4 mapping so the reply comes back
 *            through the router and the callee sees the address its SDP named
 * table ip6 <paths.nft_table>, only when wan.masquerade6 names a prefix (the
 * router masquerades those LAN hosts behind its WAN IPv6 address, OpenWrt
 * masq6), the same three NAT maps at the same priorities, for IPv6:
 *   out6, in_peer6, in_any6
 *   No hairpin map for IPv6: an element whose peer is an IPv6 address
 *   inside lan.networks is counted here (references, dump) but sent to no
 *   map: in in_peer6 it would match only a WAN packet forging a LAN source.
 * Without wan.masquerade6 (the shipped configuration) there is no ip6 table
 * at all, and an IPv6 element is refused (logged, counted in nft_errors).
 *
 * Calls below only queue changes; nftmap_commit() sends them all, both
 * families, in one batch transaction and drains every ACK. Commit before
 * sending the verdicts of the packets that caused them, so the kernel
 * agrees with the SDP before it leaves the router.
 * in_peer/in_any elements are reference counted here (a PBX trunk's calls
 * share one signalling flow): the kernel element is added on the first ref
 * and deleted on the last unref.
 * Addresses are struct addr (IPv4 as v4-mapped, addr_v4()); the family of
 * an element is the family of `priv` (dnat_ref: peer and priv must agree,
 * a mix is refused). A peer that is the family's unspecified address
 * (addr_v4(0) for IPv4, :: for IPv6) means in_any; an IPv4 peer inside
 * lan.networks means in_lan; any other, in_peer. dnat_unref takes the
 * family from `peer`: the two families' "any" never mix.
 * Ports are in HOST byte order. */
#ifndef SIPALGD_NFTMAP_H
#define SIPALGD_NFTMAP_H
#include <stdint.h>
#include <stdio.h>

#include "addr.h"

struct conf;

/* Create (or take over: flush and re-create) our tables and their chains and maps.
 * Returns 0 or -1 (logged). */
int nftmap_open(const struct conf *c);
/* Remove our tables from the kernel when `remove` is set, close the socket. */
void nftmap_close(int remove);

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
/* Put our tables back after someone else removed or replaced one (a
 * firewall reload): the same atomic take-over of both as nftmap_open(), then every
 * inbound element this module holds a reference for is queued again. The
 * caller queues the SNAT elements (binding_repush()) and commits. Pending
 * changes are dropped: the re-queued state already includes them.
 * 0 or -1 (logged). */
int nftmap_restore(void);
/* Queue an add of every inbound element this module holds a reference for
 * (leaving observe mode: the references were kept, the elements not). */
void nftmap_requeue(void);

/* One line per inbound element: "peer PEER pub PORT -> IP:PORT refs N"
 * (IPv6 target as [IP]:PORT; PEER * for in_any). With the ip6 table a last
 * line "# inbound ipv4 N ipv6 M" counts the elements of each family. */
void nftmap_dump(FILE *f);
/* The same elements one by one (sipalgctl --json): from *cursor (start at
 * 0); 1 and the element's fields, or 0 at the end. */
int nftmap_inbound_next(uint32_t *cursor, struct addr *peer, uint16_t *pub_port, struct addr *priv,
			uint16_t *priv_port, uint32_t *refs);

#endif
