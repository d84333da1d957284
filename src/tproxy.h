/* tproxy: the kernel side of the TCP relay. SIP/TCP from the LAN to the
 * SIP ports is diverted to our listener (nft tproxy + a fwmark routed to a
 * local table), and SIP/TCP from the LAN that would be forwarded to the WAN
 * anyway (no relay socket: the daemon is dead) is reset: fail closed.
 * Installed at start and removed at exit; kernel-rules/tproxy.sh is the same
 * for operators who load rules themselves.
 * IPv6 (sip.ipv6) has its own copy, `table ip6 <nft_table>_tcp6`, with the
 * same mark and an ip6 rule and route: routed IPv6 is relayed from the
 * phone's own address, so the phone's connection to us is tracked in a
 * conntrack zone of its own (TPROXY_ZONE), away from ours to the far end,
 * which has the very same addresses and ports. */
#ifndef SIPALGD_TPROXY_H
#define SIPALGD_TPROXY_H
#include <stdint.h>

struct conf;

#define TPROXY_MARK  0x5f10     /* fwmark of diverted packets */
#define TPROXY_TABLE 5061       /* routing table with the local default route */
#define TPROXY_ZONE  5061       /* conntrack zone of IPv6 phone-to-relay connections */

/* Install for our listener on `port`; removes a stale copy first. 0 or -1. */
int tproxy_install(const struct conf *c, uint16_t port);
/* The IPv6 copy, for the same port (after tproxy_install); removes a stale
 * one first. 0, or -1 logged: the IPv4 relay runs on without it. */
int tproxy_install6(const struct conf *c, uint16_t port);
/* br_netfilter on (bridge-nf-call-iptables 1) with bridges present: the
 * bridges' names ("br-lan, br-wan"), for status: SIP/TCP entering by them
 * cannot reach the relay (tproxy.c says why). NULL when not the case. */
const char *tproxy_bridge_nf(void);
/* Both copies, whatever is there. */
void tproxy_remove(const struct conf *c);

#endif
