/* alg: the policy. One queued IPv4 datagram in; a verdict, maybe a rewritten
 * datagram, and kernel intents (queued in nftmap/ct) out. Pure of I/O: the
 * caller commits nftmap and ct before sending the verdicts of a burst.
 *
 * Policy for what is not a clean SIP message (docs/security.md):
 *   keep-alive (CRLF/NUL)            accept unchanged, counted
 *   not SIP (no start line at byte 0) accept unchanged, no state; from the
 *                                     LAN: dropped if it names a LAN address
 *   malformed SIP from the WAN        accept unchanged, no state
 *   malformed SIP from the LAN        drop if it names a LAN address (it
 *                                     would leak), else accept unchanged
 *   octets after Content-Length       cut off; the message before them is
 *                                     rewritten but creates no dialog and
 *                                     no pinhole
 * Only datagrams between the LAN networks and the WAN on a SIP port are
 * looked at; anything else is accepted unchanged. */
#ifndef SIPALGD_ALG_H
#define SIPALGD_ALG_H
#include <stdint.h>

#include "addr.h"

struct conf;

enum alg_verdict { ALG_ACCEPT = 0, ALG_DROP = 1 };

/* `pub4` is the IPv4 address the router's NAT uses on the WAN (NULL or
 * 0.0.0.0: none yet); the IPv6 one comes with alg_set_public. */
int alg_init(const struct conf *c, const struct addr *pub4);
void alg_fini(void);

/* The WAN address of one family (4 or 6) changed (wan.c); `a` NULL means
 * the WAN has none of it. IPv4: the address the router's NAT uses; IPv6:
 * the one it masquerades wan.masquerade6 phones behind. While there is
 * none, SIP from the LAN phones of that family is dropped
 * (drop_no_wan_address) until one comes. New messages carry the new
 * address at once; bindings keep their ports with their SNAT elements
 * replaced; the conntrack flows of the old address are queued for deletion
 * (the caller commits nftmap and ct). A call in progress gets media on the
 * new address with its next offer/answer. */
void alg_set_public(int family, const struct addr *a, uint64_t now_ms);
/* The public address of a family now, NULL while there is none. */
const struct addr *alg_public(int family);

/* Handle one datagram (IPv4 or IPv6). When it is rewritten, the new
 * datagram is in out[0..*out_len) and *out_len > 0; otherwise *out_len = 0. */
enum alg_verdict alg_packet(const uint8_t *ip, uint32_t len, uint8_t *out, uint32_t cap,
			    uint32_t *out_len, uint64_t now_ms);

/* Which way the datagram crosses the WAN interface, from the queue's
 * in/out interfaces. IPv4 and IPv6 with an IPv6 prefix in lan.networks
 * ignore it: their LAN side is lan.networks. Routed IPv6 with no IPv6
 * prefix configured takes the LAN side from it: a delegated prefix is the
 * provider's to change, so the shipped config cannot name it. */
enum alg_dir { ALG_DIR_UNKNOWN = 0, ALG_DIR_OUT, ALG_DIR_IN };
enum alg_verdict alg_packet_dir(const uint8_t *ip, uint32_t len, uint8_t *out, uint32_t cap,
				uint32_t *out_len, uint64_t now_ms, enum alg_dir dir);

/* The same for a message the TCP relay framed (tcprelay.c): SIP because
 * the relay took its connection (to a SIP port, or from the WAN to a
 * registered Contact), whatever its ports: a phone's Contact port and the
 * registrar's source port of a new connection need not be in sip.ports. */
enum alg_verdict alg_packet_framed(const uint8_t *ip, uint32_t len, uint8_t *out, uint32_t cap,
				   uint32_t *out_len, uint64_t now_ms, enum alg_dir dir);

/* After each read from the queue: `n` messages of at most `max`. Tells
 * the policy whether the daemon is falling behind (every read full for
 * 100 ms, or queue_enobufs grew); only then is the per-source message rate
 * (limits.messages_per_second_per_source) enforced. */
void alg_queue_burst(int n, int max, uint64_t now_ms);

/* Timers: expire dialogs, registrations, idle bindings. Call about 4x/s. */
void alg_tick(uint64_t now_ms);

#endif
