#!/bin/bash
# tests/netns/field-repair.sh: a firewall reload repairs itself, and the kernel's SIP
# helper is detected (issue 8, points 2 and 6), in the netns lab with real calls and RTP.
#
#   tests/netns/field-repair.sh                 # every event, then the helper detection
#   EVENTS="flush swap" tests/netns/field-repair.sh
#
# Events (field_repair.py does the calls, the load and the checks):
#   flush     `nft flush ruleset`, then the router's own rules (the lab's salgfw) again
#   mangle    `iptables -t mangle -F`
#   deltable  `nft delete table ip <our table>`
#   swap      one `nft -f`: flush ruleset + the router's rules + a stale copy of our table
# helper: a `ct helper` sip object and rule in the router's ruleset; the daemon must warn
# at start, name what to switch off, and show kernel_helper 1 in status and counters.
# ipv6: the ip6tables copy of the diversion put back after a flush and a deleted jump;
# with disable_ipv6=1 the daemon starts, warns once, and status says why it is off.
# Prints `N passed, N failed`; exit 1 on any failure. Bounded: about a minute.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
LAB_REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
ALG=sipalgd
LAB_ID=${LAB_ID:-$(( 1000 + $$ % 4000 ))}
EVENTS=${EVENTS:-flush mangle deltable swap}
GUARD=${GUARD:-}

lab_init
trap lab_cleanup EXIT
trap 'echo "# interrupted" >&2; exit 130' INT TERM
# Never longer than 4 minutes, whatever hangs.
( sleep 240; echo "# field-repair.sh: 240 s budget exceeded" >&2; kill -TERM $$ ) &
LAB_PIDS="$LAB_PIDS $!"
echo "# sipalgd field-repair lab: id=$LAB_ID tmp=$LAB_TMP events=$EVENTS"
lab_topology
pass=0 fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
nok() { echo "not ok - $*"; fail=$((fail + 1)); }

# The router's own rules, as its nftables.conf would load them again.
lab_nsx "$NS_RTR" nft list table inet salgfw >"$LAB_TMP/fw.nft"

if lab_sipalgd_start; then
	table=$(sed -n 's/.*nft_table: \([A-Za-z0-9_]*\).*/\1/p' "$LAB_CONF")
	guard=""
	[ -n "$GUARD" ] && guard=--guard
	"$PY" -u "$HERE/field_repair.py" --id "$LAB_ID" --pid "$LAB_DAEMON_PID" --ctl "$LAB_CTL" \
		--sock "$LAB_SOCK" --table "$table" --fw "$LAB_TMP/fw.nft" --log "$LAB_DAEMON_LOG" \
		$guard $EVENTS 2>&1 | tee "$LAB_TMP/py.out" | grep --line-buffered -v -E '^[0-9]+ passed, [0-9]+ failed$'
	p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$LAB_TMP/py.out")
	f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$LAB_TMP/py.out")
	if [ -z "$p" ]; then nok "field_repair.py ended without a summary"; else
		pass=$((pass + p)); fail=$((fail + f)); fi
	n=$(grep -c 'put back' "$LAB_DAEMON_LOG")
	echo "# daemon log: $n 'put back' lines"
	grep -m3 'firewall:' "$LAB_DAEMON_LOG" | sed 's/^/#   | /'
	if lab_sipalgd_stop; then ok "clean stop after the repairs (nothing of ours left)"; else nok "clean stop"; fi
else
	nok "daemon start"
fi

# ---- point 6: the kernel's SIP helper on the same traffic ----
lab_nsx "$NS_RTR" nft -f - <<'NFT'
table inet salghelper {
	ct helper sip-5060 { type "sip" protocol udp; }
	chain pre {
		type filter hook prerouting priority raw; policy accept;
		udp dport 5060 ct helper set "sip-5060"
	}
}
NFT
if lab_sipalgd_start; then
	if grep -q 'kernel SIP helper is attached.*salghelper sip-5060.*modprobe -r nf_nat_sip' "$LAB_DAEMON_LOG"; then
		ok "helper: warned at start with the object and what to switch off"
	else
		nok "helper: no start-up warning naming the ct helper object"; sed 's/^/  | /' "$LAB_DAEMON_LOG" | grep -i helper
	fi
	st=$(lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" status 2>&1)
	case "$st" in
	*"kernel_helper 1"*"warning: kernel SIP helper"*) ok "helper: status shows kernel_helper 1 and the warning" ;;
	*) nok "helper: status does not flag it: $st" ;;
	esac
	if lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" counters | grep -qx 'kernel_helper 1'; then
		ok "helper: counter kernel_helper 1"
	else
		nok "helper: counter kernel_helper is not 1"
	fi
	lab_nsx "$NS_RTR" nft delete table inet salghelper
	st=$(lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" status 2>&1)
	case "$st" in
	*"kernel_helper 0"*) ok "helper: gone from status once the rule is removed" ;;
	*) nok "helper: status still flags it after removal: $st" ;;
	esac
	# The iptables way of attaching it: seen on the next status, no restart.
	if lab_nsx "$NS_RTR" iptables -w 5 -t raw -A PREROUTING -p udp --dport 5060 -j CT --helper sip; then
		st=$(lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" status 2>&1)
		case "$st" in
		*"kernel_helper 1"*"iptables -t raw -j CT --helper sip"*) ok "helper: iptables CT --helper sip rule flagged" ;;
		*) nok "helper: iptables CT --helper sip rule not flagged: $st" ;;
		esac
		lab_nsx "$NS_RTR" iptables -w 5 -t raw -D PREROUTING -p udp --dport 5060 -j CT --helper sip
	else
		nok "helper: could not add an iptables CT --helper sip rule"
	fi
	# The same in ip6tables: IPv6 SIP is diverted too.
	if lab_nsx "$NS_RTR" ip6tables -w 5 -t raw -A PREROUTING -p udp --dport 5060 -j CT --helper sip; then
		st=$(lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" status 2>&1)
		case "$st" in
		*"kernel_helper 1"*"ip6tables -t raw -j CT --helper sip"*) ok "helper: ip6tables CT --helper sip rule flagged" ;;
		*) nok "helper: ip6tables CT --helper sip rule not flagged: $st" ;;
		esac
		lab_nsx "$NS_RTR" ip6tables -w 5 -t raw -D PREROUTING -p udp --dport 5060 -j CT --helper sip
	else
		nok "helper: could not add an ip6tables CT --helper sip rule"
	fi
	lab_sipalgd_stop >/dev/null 2>&1 || nok "clean stop (helper part)"
else
	nok "daemon start (helper part)"
fi

# ---- the IPv6 diversion (sip.ipv6, default on): repaired like the IPv4 one; a router
# with IPv6 disabled starts all the same and says why in status ----
v6_rules() { lab_nsx "$NS_RTR" ip6tables -w 5 -t mangle -S 2>/dev/null | grep -c -- "$1"; }
lab_nsx "$NS_RTR" sysctl -qw net.ipv6.conf.all.disable_ipv6=0
if lab_sipalgd_start; then
	chain=$(sed -n 's/.*nft_table: \([A-Za-z0-9_]*\).*/\1/p' "$LAB_CONF" | tr a-z A-Z)
	st=$(lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" status 2>&1)
	if [ "$(v6_rules "-A $chain ")" -ge 4 ] && [ "$(v6_rules "-A FORWARD -p udp -j $chain")" = 1 ] &&
		! printf '%s' "$st" | grep -q 'ipv6 diversion: off'; then
		ok "ipv6: ip6tables mangle FORWARD -> $chain installed, status does not say off"
	else
		nok "ipv6: diversion not installed: $(lab_nsx "$NS_RTR" ip6tables -t mangle -S | tr '\n' ' ') / $st"
	fi
	want=$(v6_rules "-A $chain ")
	for what in flush jump; do
		if [ $what = flush ]; then lab_nsx "$NS_RTR" ip6tables -w 5 -t mangle -F "$chain"
		else lab_nsx "$NS_RTR" ip6tables -w 5 -t mangle -D FORWARD -p udp -j "$chain"; fi
		i=0
		while [ $i -lt 30 ] && { [ "$(v6_rules "-A $chain ")" != "$want" ] ||
			[ "$(v6_rules "-A FORWARD -p udp -j $chain")" != 1 ]; }; do sleep 0.1; i=$((i + 1)); done
		if [ $i -lt 30 ]; then ok "ipv6: ip6tables $what repaired within $((i * 100 + 100)) ms"
		else nok "ipv6: ip6tables $what not repaired in 3 s: $(lab_nsx "$NS_RTR" ip6tables -t mangle -S | tr '\n' ' ')"; fi
	done
	lab_sipalgd_stop >/dev/null 2>&1 || nok "clean stop (ipv6 part)"
	if [ "$(v6_rules "$chain")" = 0 ]; then ok "ipv6: nothing of ours left in ip6tables after stop"
	else nok "ipv6: ip6tables rules left after stop"; fi
else
	nok "daemon start (ipv6 part)"
fi
lab_nsx "$NS_RTR" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
if lab_sipalgd_start; then
	st=$(lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" status 2>&1)
	case "$st" in
	ok*"ipv6 diversion: off (net.ipv6.conf.all.disable_ipv6=1)"*) ok "ipv6: disable_ipv6=1: starts, status ok and says why IPv6 is not diverted" ;;
	*) nok "ipv6: disable_ipv6=1: status $st" ;;
	esac
	n=$(grep -c 'SIP over IPv6 is not diverted' "$LAB_DAEMON_LOG")
	if [ "$n" = 1 ]; then ok "ipv6: disable_ipv6=1: warned once"; else nok "ipv6: $n warnings, want 1"; fi
	lab_sipalgd_stop >/dev/null 2>&1 || nok "clean stop (ipv6 off part)"
else
	nok "daemon start with IPv6 disabled"
fi

[ $fail = 0 ] || LAB_KEEP_TMP=1
echo "$pass passed, $fail failed"
[ $fail = 0 ]
