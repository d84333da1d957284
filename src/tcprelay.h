/* tcprelay: SIP over TCP through the ALG, as a transparent proxy.
 *
 * An NFQUEUE verdict cannot change a TCP segment's length on this kernel
 * (no sequence adjustment without ctnetlink glue), so TCP is terminated and
 * re-originated: TPROXY (tproxy.h) hands a phone's connection to a SIP port
 * to our listener with its original destination; we open one connection to
 * that destination from the public address and the phone's binding port
 * (binding.h), so the provider sees what NAT would give it, and relay.
 * Each message, framed by Content-Length (sipframe.h), goes through the
 * same policy as a UDP datagram (alg_packet) in both directions; the
 * provider's requests come back over the same connection (RFC 3261 18.2.2,
 * RFC 5626 connection reuse).
 * A new connection from the WAN is taken only to a public port in the set
 * in_tcp, which the relay keeps equal to the public ports of signalling
 * bindings that are registered or in a call (synced from the binding table
 * after WAN messages, at most every 50 ms, and on every tick); it is
 * accepted when the binding still is (from its registrar when the
 * registration names one), and relayed to the phone's private Contact
 * from the caller's own address (IP_TRANSPARENT), the same rewrite both
 * ways (tcp_inbound, tcp_inbound_refused).
 *
 * Connections: a pool sized at start (limits.tcp_connections; per phone
 * limits.tcp_connections_per_phone),
 * buffers allocated per connection at accept and freed at close, nothing per
 * message; a side is not read while the other side's send buffer could not
 * take a whole rewritten message (backpressure); FIN is passed on once what
 * preceded it is sent, RST as RST; idle connections are reset after
 * TCPRELAY_IDLE_S. A TLS handshake (first byte 0x16) is relayed byte for
 * byte, untouched and counted: an ALG cannot read TLS.
 *
 * IPv6 (sip.ipv6) is routed, not translated: a phone's connection over IPv6
 * is taken the same way (its own listener and table, tproxy.h) and relayed
 * from the phone's own address and port (IPV6_TRANSPARENT), each message
 * through the policy for its dialog and media pinholes and left byte for
 * byte (tcp_ipv6). A phone of the NAT66 LAN prefix (wan.nat66_*) is
 * relayed from its public image instead (nat66.h, port kept: nothing of
 * that connection is NATed), its messages with the NAT66 edits as over UDP
 * (tcp_nat66). No new connection from the WAN is taken over IPv6: the
 * operator's ip6 forward policy decides those, and they pass the relay by.
 *
 * One epoll descriptor is the whole interface to the main loop. */
#ifndef SIPALGD_TCPRELAY_H
#define SIPALGD_TCPRELAY_H
#include <stdint.h>
#include <stdio.h>

struct conf;

#define TCPRELAY_MSG_MAX       16384  /* largest SIP message, headers included */
#define TCPRELAY_IDLE_S        7200   /* a registration refresh is at most timers.register_max */

/* Listener and policy routing/TPROXY rules (when `rules`). 0, or -1 logged. */
int tcprelay_open(const struct conf *c, uint32_t public_ip, int rules);
/* Reset every relayed connection, remove the rules we installed. */
void tcprelay_close(void);
/* The descriptor to poll for POLLIN (-1 when closed). */
int tcprelay_fd(void);
/* The public address changed (wan.h): new connections leave from it;
 * relayed ones keep theirs until they end (as NAT would). */
void tcprelay_set_public(uint32_t public_ip);
/* The relay's kernel rules (table ip <paths.nft_table>_tcp): 1 when we
 * installed them and they should be there, 2 when the IPv6 copy (table ip6
 * <paths.nft_table>_tcp6) should be there too; put them back (after a
 * firewall reload, or for new sip.ports). 0 or -1. */
int tcprelay_rules_expected(void);
int tcprelay_rules_repair(void);
/* Serve whatever is ready, without blocking. */
void tcprelay_serve(uint64_t now_ms);
/* One line for `sipalgctl status` when the relay runs (nothing otherwise):
 * connections, and TLS seen, which no ALG can rewrite. */
void tcprelay_status(FILE *out);
/* Idle timeouts; call with the main tick. */
void tcprelay_tick(uint64_t now_ms);

#endif
