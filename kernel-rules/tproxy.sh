#!/bin/sh
# sipalgd SIP/TCP relay diversion (sip.tcp): the same rules the daemon
# installs (src/tproxy.c; change both together), for operators who run
# sipalgd --no-rules and load rules themselves. Set sip.tcp_relay_port to RELAY_PORT.
#
# Usage: WAN_IF=eth0 SIP_PORTS="5060" RELAY_PORT=5058 tproxy.sh add|del
#   TABLE (default sipalgd_tcp) names our nft table; the IPv6 copy is
#   table ip6 ${TABLE}6. IPV6=0 leaves IPv6 out (sip.ipv6: false); by
#   default it is added where the router has IPv6.
# add is idempotent (removes a stale copy first); del removes only our table,
# our routing rule and our route.
#
# What it does: TCP to a SIP port arriving from anywhere but the WAN is
# handed by TPROXY to the relay's listener (mark 0x5f10, routed to a local
# default route in table 5061). With no relay socket (the daemon is dead),
# tproxy does not match, the connection goes on to forward, and the
# failclosed chain resets it: SIP/TCP never leaves with private addresses.
# failclosed runs at priority mangle + 1, after the SIP diversion: a chain
# added at the diversion's own priority would go before it and make the kernel
# run the diversion twice on a datagram the daemon holds (src/tproxy.c).
# From the WAN only the public ports in the set in_tcp are diverted: the
# daemon fills it with the ports of registered or in-dialog Contacts (a
# registrar opening a new connection to a phone); the relay connects to the
# phone from the caller's address, and the phone's answers to such a
# connection are marked (socket transparent) so they reach the relay.
# IPv6 (routed, no NAT66): the same diversion from the LAN side, of what
# routes out the WAN (fib daddr oifname); the relay
# connects from the phone's own address and port, so the phone's side is
# tracked in conntrack zone 5061 (same addresses and ports as the relay's
# connection), and the far end's answers are marked by socket transparent.
# No new connection from the WAN is diverted over IPv6.
set -u

TABLE=${TABLE:-sipalgd_tcp}
SIP_PORTS=$(echo "${SIP_PORTS:-5060}" | tr ' ' ',' | sed 's/,,*/,/g; s/^,//; s/,$//')
MARK=0x5f10
RT_TABLE=5061
RULE_PRIO=5061
ZONE=5061

die() { echo "tproxy.sh: $*" >&2; exit 1; }

check() {
	[ -n "${WAN_IF:-}" ] || die "WAN_IF is not set"
	[ -n "${RELAY_PORT:-}" ] || die "RELAY_PORT is not set (sip.tcp_relay_port)"
	case "$TABLE" in *[!A-Za-z0-9_]*|"") die "bad TABLE '$TABLE'";; esac
	case "$RELAY_PORT" in *[!0-9]*|"") die "bad RELAY_PORT '$RELAY_PORT'";; esac
	case "$SIP_PORTS" in *[!0-9,]*|"") die "bad SIP_PORTS '$SIP_PORTS'";; esac
}

del() {
	nft delete table ip "$TABLE" 2>/dev/null
	while ip rule del fwmark $MARK lookup $RT_TABLE priority $RULE_PRIO 2>/dev/null; do :; done
	ip route del local 0.0.0.0/0 dev lo table $RT_TABLE 2>/dev/null
	nft delete table ip6 "${TABLE}6" 2>/dev/null
	while ip -6 rule del fwmark $MARK lookup $RT_TABLE priority $RULE_PRIO 2>/dev/null; do :; done
	ip -6 route del local ::/0 dev lo table $RT_TABLE 2>/dev/null
	return 0
}

has_ipv6() {
	case "${IPV6:-auto}" in 0) return 1 ;; 1) return 0 ;; esac
	[ "$(cat /proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null)" = 0 ]
}

add6() {
	ip -6 route add local ::/0 dev lo table $RT_TABLE proto static || return 1
	ip -6 rule add fwmark $MARK lookup $RT_TABLE priority $RULE_PRIO || return 1
	nft -f - <<EOT
table ip6 ${TABLE}6 {
	chain zone_in {
		type filter hook prerouting priority raw; policy accept;
		iifname != "$WAN_IF" tcp dport { $SIP_PORTS } fib daddr oifname "$WAN_IF" ct zone set $ZONE
	}

	chain zone_out {
		type filter hook output priority raw; policy accept;
		oifname != "$WAN_IF" tcp sport { $SIP_PORTS } fib saddr type != local ct zone set $ZONE
	}

	chain divert {
		type filter hook prerouting priority mangle; policy accept;
		iifname != "$WAN_IF" tcp dport { $SIP_PORTS } fib daddr oifname "$WAN_IF" tproxy to :$RELAY_PORT meta mark set $MARK accept
		iifname "$WAN_IF" ct direction reply meta l4proto tcp socket transparent 1 meta mark set $MARK accept
	}

	chain failclosed {
		type filter hook forward priority mangle + 1; policy accept;
		iifname != "$WAN_IF" oifname "$WAN_IF" tcp dport { $SIP_PORTS } counter reject with tcp reset
	}
}
EOT
}

add() {
	del
	ip route add local 0.0.0.0/0 dev lo table $RT_TABLE proto static || exit 1
	ip rule add fwmark $MARK lookup $RT_TABLE priority $RULE_PRIO || { del; exit 1; }
	nft -f - <<EOT || { del; exit 1; }
table ip $TABLE {
	set in_tcp {
		type inet_service
	}

	chain divert {
		type filter hook prerouting priority mangle; policy accept;
		iifname != "$WAN_IF" tcp dport { $SIP_PORTS } fib daddr type != local tproxy to :$RELAY_PORT meta mark set $MARK accept
		iifname "$WAN_IF" tcp dport @in_tcp fib daddr type local tproxy to :$RELAY_PORT meta mark set $MARK accept
		iifname != "$WAN_IF" ct direction reply meta l4proto tcp socket transparent 1 meta mark set $MARK accept
	}

	chain failclosed {
		type filter hook forward priority mangle + 1; policy accept;
		iifname != "$WAN_IF" oifname "$WAN_IF" tcp dport { $SIP_PORTS } counter reject with tcp reset
	}
}
EOT
	if has_ipv6; then
		add6 || { del; exit 1; }
	fi
}

check
case "${1:-}" in
add) add ;;
del) del ;;
*) die "usage: WAN_IF=... RELAY_PORT=... tproxy.sh add|del" ;;
esac
