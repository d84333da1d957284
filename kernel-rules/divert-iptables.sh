#!/bin/sh
# sipalgd SIP diversion with iptables -j NFQUEUE: the same rules the daemon
# installs with queue.divert: iptables (src/rules.c; change both together).
#
# Usage: WAN_IF=eth0 SIP_PORTS="5060 5070" QUEUE_NUM=0 divert-iptables.sh add|del
#   IPTABLES (default iptables): ip6tables for the IPv6 copy, which is what
#   divert-ip6tables.sh does (sip.ipv6: on, the default, installs both).
#   CHAIN (default SIPALGD) names our chain in the mangle table.
#   FASTPATH_MARK (default 0x10000000, queue.fastpath_mark_bit 28): packets
#   the fast path rewrote carry it and skip the queue; FASTPATH_MARK= (empty)
#   when sipalgd runs with queue.fastpath: off (docs/fastpath.md).
#   GUARD_MARK (default 0x20000000, queue.guard_mark_bit 29): set on every
#   packet sent to the queue (a MARK rule before each NFQUEUE rule); the
#   WAN egress guard drops forwarded SIP without it. GUARD_MARK= (empty)
#   when sipalgd runs with queue.guard: off or is built with FASTPATH=0.
# add is idempotent (removes a stale copy first); del removes only our jump
# and our chain. No queue bypass option on purpose: with no sipalgd on the queue,
# SIP is dropped instead of leaving the router unrewritten (fail closed).
set -u

CHAIN=${CHAIN:-SIPALGD}
QUEUE_NUM=${QUEUE_NUM:-0}
FASTPATH_MARK=${FASTPATH_MARK-0x10000000}
GUARD_MARK=${GUARD_MARK-0x20000000}
SIP_PORTS=$(echo "${SIP_PORTS:-5060}" | tr ',' ' ')
IPTABLES=${IPTABLES:-iptables}
case "$IPTABLES" in iptables|ip6tables) ;; *) echo "divert-iptables.sh: IPTABLES must be iptables or ip6tables" >&2; exit 2;; esac
IPT="$IPTABLES -w 10 -t mangle"

die() { echo "divert-iptables.sh ($IPTABLES): $*" >&2; exit 1; }

check() {
	[ -n "${WAN_IF:-}" ] || die "WAN_IF is not set"
	case "$CHAIN" in *[!A-Za-z0-9_]*|"") die "bad CHAIN '$CHAIN'";; esac
	case "$QUEUE_NUM" in *[!0-9]*|"") die "bad QUEUE_NUM '$QUEUE_NUM'";; esac
	case "$FASTPATH_MARK" in "") ;; 0x*[!0-9a-fA-F]*|0x) die "bad FASTPATH_MARK '$FASTPATH_MARK'";; 0x*) ;;
		*) die "FASTPATH_MARK '$FASTPATH_MARK': write it as 0x...";; esac
	case "$GUARD_MARK" in "") ;; 0x*[!0-9a-fA-F]*|0x) die "bad GUARD_MARK '$GUARD_MARK'";; 0x*) ;;
		*) die "GUARD_MARK '$GUARD_MARK': write it as 0x...";; esac
	for p in $SIP_PORTS; do
		case "$p" in *[!0-9]*|"") die "bad port '$p' in SIP_PORTS";; esac
	done
}

del() {
	# every copy of our jump, then our chain; nothing else
	i=0
	while [ $i -lt 16 ] && $IPT -D FORWARD -p udp -j "$CHAIN" 2>/dev/null; do
		i=$((i + 1))
	done
	$IPT -F "$CHAIN" 2>/dev/null
	$IPT -X "$CHAIN" 2>/dev/null
	return 0
}

add() {
	del
	$IPT -N "$CHAIN" || { del; die "cannot create chain $CHAIN"; }
	# what the fast path already rewrote skips the queue (first rule)
	if [ -n "$FASTPATH_MARK" ]; then
		$IPT -A "$CHAIN" -m mark --mark "$FASTPATH_MARK/$FASTPATH_MARK" -j RETURN ||
			{ del; die "cannot add the fast path's mark rule"; }
	fi
	for p in $SIP_PORTS; do
		for dir in -i -o; do
			for port in --dport --sport; do
				# what goes to the queue carries the guard's mark
				if [ -n "$GUARD_MARK" ]; then
					$IPT -A "$CHAIN" $dir "$WAN_IF" -p udp $port "$p" \
						-j MARK --set-xmark "$GUARD_MARK/$GUARD_MARK" ||
						{ del; die "cannot add the guard's mark rule for port $p"; }
				fi
				$IPT -A "$CHAIN" $dir "$WAN_IF" -p udp $port "$p" \
					-j NFQUEUE --queue-num "$QUEUE_NUM" ||
					{ del; die "cannot add rule for port $p"; }
			done
		done
	done
	# first in FORWARD: SIP must reach the queue before any accept
	$IPT -I FORWARD 1 -p udp -j "$CHAIN" || { del; die "cannot add the jump"; }
}

case "${1:-}" in
add) check; add ;;
del) check; del ;;
*) echo "usage: WAN_IF=... [SIP_PORTS=5060] [QUEUE_NUM=0] [FASTPATH_MARK=0x10000000] [GUARD_MARK=0x20000000] $0 add|del" >&2; exit 2 ;;
esac
