#!/bin/sh
# sipalgd SIP diversion for IPv6: the same chain and jump as
# divert-iptables.sh, in ip6tables' mangle table (what the daemon installs
# with sip.ipv6: on, the default; src/rules.c). Same variables and usage:
#   WAN_IF=eth0 [SIP_PORTS=5060] [QUEUE_NUM=0] [FASTPATH_MARK=...] [GUARD_MARK=...] divert-ip6tables.sh add|del
# With no NAT66 the daemon rewrites nothing in IPv6 SIP; it reads the SDP to
# open the media pinholes (docs/ipv6.md). No queue bypass: with no sipalgd on
# the queue, IPv6 SIP is dropped (fail closed), as for IPv4. On a router
# without IPv6 (no ip6tables, no ip6_tables module) just do not load it.
IPTABLES=ip6tables exec sh "$(dirname "$0")/divert-iptables.sh" "$@"
