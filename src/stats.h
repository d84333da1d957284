/* stats: every number that matters is a counter here; sipalgctl shows them.
 * Counters are plain uint64_t in one array: the daemon is single-threaded. */
#ifndef SIPALGD_STATS_H
#define SIPALGD_STATS_H
#include <stdint.h>
#include <stdio.h>

/* Every counter, in ONE place: name, kind (C counter: only grows; G gauge:
 * goes up and down) and the help text that `sipalgctl metrics` prints as
 * HELP. docs/man/sipalgctl.8 (COUNTERS) must list each with the same text:
 * tests/data/counters_check.py fails otherwise. */
#define STATS_LIST(X) \
	X(pkts_in, C, "datagrams received from the queue") \
	X(pkts_out_lan, C, "LAN to WAN SIP datagrams handled") \
	X(pkts_in_wan, C, "WAN to LAN SIP datagrams handled") \
	X(pkts_rewritten, C, "datagrams whose bytes were changed") \
	X(pkts_unchanged, C, "datagrams accepted byte for byte") \
	X(pkts_dropped, C, "datagrams given verdict drop, for any reason") \
	X(keepalives, C, "CRLF or NUL keep-alives passed") \
	X(not_sip, C, "UDP datagrams on a SIP port that are not SIP messages") \
	X(not_lan, C, "SIP datagrams with neither end in lan.networks, passed untouched: a phone outside lan.networks") \
	X(parse_errors, C, "malformed SIP messages (outcome by policy)") \
	X(trailing_dropped, C, "octets after Content-Length cut from datagrams") \
	X(sdp_errors, C, "malformed SDP bodies") \
	X(drop_malformed_out, C, "malformed LAN messages dropped because they would leak a LAN address") \
	X(drop_limit, C, "messages dropped or streams refused because a configured bound was hit") \
	X(drop_rate, C, "messages dropped by the per-source rate limit") \
	X(drop_no_binding, C, "messages dropped because no public port could be allocated") \
	X(observed_changes, C, "mode observe: datagrams that would have been rewritten or dropped, sent unchanged") \
	X(requests, C, "SIP requests handled") \
	X(responses, C, "SIP responses handled") \
	X(registers, C, "REGISTER requests handled") \
	X(registrations, G, "live registrations") \
	X(bindings, G, "live NAT bindings, signalling and media") \
	X(bindings_created, C, "NAT bindings created") \
	X(bindings_adopted, C, "bindings whose public port was taken from an existing conntrack NAT") \
	X(dialogs, G, "live dialogs (calls as one phone sees them)") \
	X(dialogs_created, C, "dialogs created") \
	X(dialogs_closed, C, "dialogs closed by BYE or a final failure response") \
	X(dialogs_expired, C, "dialogs closed by timer (no SIP for timers.dialog)") \
	X(pinholes, G, "live media pinholes, RTP and RTCP pairs") \
	X(pinholes_opened, C, "media pinholes opened") \
	X(pinholes_closed, C, "media pinholes closed") \
	X(pinholes_refused, C, "media streams refused: the SDP asked for what the rules forbid") \
	X(pinholes_hairpin, C, "media streams whose remote is another LAN phone through the public address (hairpin)") \
	X(nft_batches, C, "nftables transactions sent") \
	X(nft_elements, C, "nftables map elements added or deleted") \
	X(nft_errors, C, "nftables map updates the kernel refused") \
	X(ct_lookups, C, "conntrack lookups of an existing NAT") \
	X(ct_deletes, C, "conntrack entries deleted") \
	X(ct_errors, C, "conntrack requests that failed") \
	X(verdict_batches, C, "verdict messages sent to the queue") \
	X(verdict_errors, C, "verdicts the kernel refused") \
	X(queue_enobufs, C, "times the kernel dropped queued packets because the daemon was behind") \
	X(holdoffs, C, "pauses to let a burst of packets gather") \
	X(busy_rests, C, "rests taken after long uninterrupted work at realtime priority") \
	X(drop_no_wan_address, C, "LAN SIP dropped while the WAN interface has no IPv4 address") \
	X(drop_ula_out, C, "IPv6 SIP from a ULA to the Internet dropped: no NAT66 of ours covers it") \
	X(wan_address_changes, C, "public address changes (rtnetlink or reload)") \
	X(wan6_address_changes, C, "public IPv6 address changes of the WAN interface (rtnetlink)") \
	X(refused_pinholes_full, C, "streams refused: limits.pinholes reached") \
	X(refused_pinholes_share, C, "streams refused: pinhole table over 3/4 full and the phone holds its share") \
	X(refused_dialogs_full, C, "calls refused: limits.dialogs reached") \
	X(refused_dialogs_share, C, "calls refused: dialog table over 3/4 full and the phone holds its share") \
	X(queue_behind, C, "times the daemon fell behind the queue (the per-source rate limit applies meanwhile)") \
	X(refused_bindings_full, C, "new public ports refused: limits.bindings reached") \
	X(refused_bindings_share, C, "new public ports refused: binding table over 3/4 full and the host holds its share") \
	X(tcp_conns, G, "relayed TCP connections open") \
	X(tcp_accepted, C, "TCP connections accepted by the relay") \
	X(tcp_closed, C, "relayed TCP connections closed") \
	X(tcp_msgs, C, "SIP messages relayed over TCP through the policy") \
	X(tcp_msgs_dropped, C, "TCP messages dropped by the policy, as a UDP datagram would be") \
	X(tcp_frame_errors, C, "TCP streams that could not be framed by Content-Length: reset") \
	X(tcp_refused_limit, C, "TCP connections refused by a connection limit or not from the LAN: reset") \
	X(tcp_connect_errors, C, "TCP connections whose far end could not be reached: reset") \
	X(tcp_port_fallback, C, "TCP connections given another public port because the binding port was busy") \
	X(tcp_idle_closed, C, "relayed TCP connections closed when idle") \
	X(tcp_tls_passed, C, "TLS connections relayed untouched") \
	X(tcp_inbound, C, "TCP connections from the WAN to a registered or in-dialog Contact, relayed to the phone") \
	X(tcp_inbound_refused, C, "TCP connections from the WAN refused: the Contact is not registered or in a call for that peer") \
	X(tcp_ipv6, C, "TCP connections over IPv6 taken by the relay (routed: relayed from the phone's own address, bytes unchanged)") \
	X(tcp_nat66, C, "of those, from a phone of wan.nat66_lan_prefix: relayed from its public image, messages NAT66-rewritten") \
	X(rules_restored, C, "times our table or diversion was put back after a firewall reload") \
	X(sip_requeued, C, "datagrams we had rewritten that came back through the queue (a base chain added before the diversion during a reload): passed as they were, no state made") \
	X(rules_repair_failed, C, "repairs that failed (retried every second)") \
	X(rules_missing, G, "1 while something the daemon needs is missing from the kernel") \
	X(rules_repair_ms, G, "the last repair: first event to rules back, in milliseconds") \
	X(forward_drops_dnat, G, "1 while a forward chain with policy drop has no ct status dnat accept: remote-first media through our pinholes is dropped") \
	X(kernel_helper, G, "1 when the kernel SIP helper was seen on our traffic") \
	X(rtcp_ports, C, "RTCP pinholes opened on a port an a=rtcp line named (not RTP+1)") \
	X(rtcp_mux, C, "streams whose RTCP was multiplexed on the RTP port (rtcp-mux offered and answered): no RTCP pinhole") \
	X(forks, C, "extra early dialogs of a forked INVITE given inbound elements of their own") \
	X(forks_refused, C, "messages of early dialogs beyond 4 per call: no early media for those dialogs") \
	X(fastpath_attached, G, "interfaces the tc fast path is attached to, 0 when every SIP message goes through the queue") \
	X(fastpath_handled_out, C, "LAN to WAN SIP datagrams rewritten by the fast path, not queued") \
	X(fastpath_handled_in, C, "WAN to LAN SIP datagrams rewritten by the fast path, not queued") \
	X(fastpath_passed, C, "datagrams the fast path passed on untouched, for any reason (the sum of the four below)") \
	X(fastpath_pass_not_sip, C, "fast path: not UDP to or from a SIP port, a fragment, IP options") \
	X(fastpath_pass_stateful, C, "fast path: a message the daemon must see (a body, INVITE, REGISTER...)") \
	X(fastpath_pass_unsure, C, "fast path: the program could not be sure of the result") \
	X(fastpath_pass_no_binding, C, "fast path: no binding for the address it would map") \
	X(fastpath_errors, C, "fast path: a kernel helper failed after the packet was changed, dropped") \
	X(fastpath_map_errors, C, "binding or configuration updates the fast path maps refused (the program then passes to the queue)") \
	X(sip_ipv6_rx, C, "SIP datagrams over IPv6 between the LAN and the WAN (routed: passed unchanged)") \
	X(pinholes_ct_created, C, "IPv6 media pinholes created in advance as conntrack entries (routed IPv6, docs/ipv6.md)") \
	X(pinholes_ct_failed, C, "IPv6 media pinhole creations the kernel refused (the remote gets in only after the phone sends)") \
	X(nat66_out, C, "IPv6 addresses of wan.nat66_lan_prefix rewritten to the public prefix in SIP/SDP leaving the LAN (NAT66)") \
	X(nat66_in, C, "IPv6 addresses of wan.nat66_public_prefix mapped back to the LAN prefix in SIP headers to a phone (NAT66)") \
	X(pinholes_ct_nat, C, "NAT66 media pinhole creations sent: conntrack entries to the public address, destination-NATed to the phone") \
	X(guard_attached, G, "1 while the WAN egress guard is attached (queue.guard)") \
	X(guard_dropped, C, "forwarded SIP datagrams without the diversion's mark dropped at the WAN egress (a firewall reload's leak stopped)") \
	X(guard_passed, C, "forwarded SIP datagrams with the diversion's or the fast path's mark let out by the guard") \
	X(guard_local, C, "SIP datagrams the router itself sent, never dropped by the guard") \
	X(guard_reattached, C, "times the guard's classic tc filter (kernels before 6.6) was found removed and attached again")

enum stat_id {
#define STAT_ENUM(n, k, h) ST_##n,
	STATS_LIST(STAT_ENUM)
#undef STAT_ENUM
	ST__COUNT
};

extern uint64_t stats[ST__COUNT];

#define STAT_INC(n) (stats[ST_##n]++)
#define STAT_DEC(n) (stats[ST_##n]--)
#define STAT_ADD(n, v) (stats[ST_##n] += (v))

enum stat_kind { STAT_COUNTER = 0, STAT_GAUGE = 1 };

const char *stats_name(enum stat_id id);
enum stat_kind stats_kind(enum stat_id id);
const char *stats_help(enum stat_id id);
/* "name value\n" per counter */
void stats_dump(FILE *f);

#endif
