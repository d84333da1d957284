#!/bin/bash
# tests/netns/field-repair.sh: a firewall reload repairs itself, and the kernel's SIP
# helper is detected (issue 8, points 2 and 6), in the netns lab with real calls and RTP.
#
#   tests/netns/field-repair.sh                 # every event, then the helper detection
#   EVENTS="flush swap" tests/netns/field-repair.sh
#   GUARD=off tests/netns/field-repair.sh       # queue.guard: off: the leak is back (bounded)
#
# Events (field_repair.py does the calls, the load and the checks):
#   flush     `nft flush ruleset`, then the router's own rules (the lab's salgfw) again
#   mangle    `iptables -t mangle -F`
#   deltable  `nft delete table ip <our table>`
#   swap      one `nft -f`: flush ruleset + the router's rules + a stale copy of our table
#   requeue   the daemon holds an INVITE while the operator adds a forward chain at
#             priority mangle (fw4's mangle_forward): the kernel runs the diversion again
#             on our rewritten INVITE; it leaves once, sip_requeued +1, no dialog keyed by
#             the public Call-ID. After all events: no dialog keyed by a public Call-ID.
# helper: a `ct helper` sip object and rule in the router's ruleset; the daemon must warn
# at start, name what to switch off, and show kernel_helper 1 in status and counters.
# ipv6: the ip6tables copy of the diversion put back after a flush and a deleted jump;
# with disable_ipv6=1 the daemon starts, warns once, and status says why it is off.
# With the WAN egress guard (queue.guard: auto, on in the lab) no datagram with a LAN
# address leaves during a reload, and every request the guard dropped gets through on a
# retransmission. guard: its status line and program; SIP the router sends itself passes
# it; kill -9 leaves no guard program behind. The same on the classic tc filter of kernels
# before 6.6 (SIPALGD_TC_NO_TCX=1): a reload, a deleted clsact put back, kill -9 and restart.
# Prints `N passed, N failed`; exit 1 on any failure. Bounded: about a minute.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
LAB_REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
ALG=sipalgd
LAB_ID=${LAB_ID:-$(( 1000 + $$ % 4000 ))}
EVENTS=${EVENTS:-flush mangle deltable swap requeue}
GUARD=${GUARD:-on}
command -v bpftool >/dev/null || PATH=$PATH:/usr/sbin

lab_init
trap lab_cleanup EXIT
trap 'echo "# interrupted" >&2; exit 130' INT TERM
# Never longer than 4 minutes, whatever hangs.
# The sleep dies with its timer (killed by the cleanup): an orphaned sleep
# would hold this script's stdout, and a pipe reading it, open for 4 minutes.
( sleep 240 >/dev/null 2>&1 & s=$!; trap 'kill $s 2>/dev/null; exit 0' TERM; wait $s
  echo "# field-repair.sh: 240 s budget exceeded" >&2; kill -TERM $$ ) &
LAB_PIDS="$LAB_PIDS $!"
echo "# sipalgd field-repair lab: id=$LAB_ID tmp=$LAB_TMP events=$EVENTS"
lab_topology
pass=0 fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
nok() { echo "not ok - $*"; fail=$((fail + 1)); }

# The router's own rules, as its nftables.conf would load them again.
lab_nsx "$NS_RTR" nft list table inet salgfw >"$LAB_TMP/fw.nft"

if [ "$GUARD" = off ]; then
	sed 's/^queue: { /queue: { guard: off, /' "$LAB_REPO/tests/netns/lab.yaml" >"$LAB_TMP/lab-noguard.yaml"
	export LAB_CONF_TEMPLATE="$LAB_TMP/lab-noguard.yaml"
fi
if lab_sipalgd_start; then
	table=$(sed -n 's/.*nft_table: \([A-Za-z0-9_]*\).*/\1/p' "$LAB_CONF")
	guard=""
	[ "$GUARD" = off ] || guard=--guard
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
unset LAB_CONF_TEMPLATE

# ---- the guard itself: attached at the WAN's egress, the router's own SIP passes, and a
# daemon killed with -9 takes it along (the queue rules it leaves drop SIP anyway) ----
if [ "$GUARD" != off ] && lab_sipalgd_start; then
	st=$(lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" status 2>&1)
	link=$(printf '%s\n' "$st" | sed -n 's/^guard: wan egress (tcx link \([0-9]*\)).*prog \([0-9]*\)$/\1/p')
	prog=$(printf '%s\n' "$st" | sed -n 's/^guard: wan egress (tcx link [0-9]*).*prog \([0-9]*\)$/\1/p')
	if [ -n "$link" ] && [ -n "$prog" ] && bpftool link show id "$link" >/dev/null 2>&1 &&
		bpftool prog show id "$prog" 2>/dev/null | grep -q sipguard_egress; then
		ok "guard: status names its tcx link $link at wan egress and prog $prog"
	else
		nok "guard: not attached: $(printf '%s' "$st" | grep guard)"
	fi
	c0=$(lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" counters | sed -n 's/^guard_local //p')
	# The router's own SIP (a SIP server or the TCP relay on it) to the provider's 5060.
	got=$("$PY" - "$LAB_ID" <<'PYEOF'
import socket, subprocess, sys
lid = sys.argv[1]
rx = subprocess.Popen(["ip", "netns", "exec", "salg-wan-%s" % lid, "python3", "-c", """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("203.0.113.30", 5060))
s.settimeout(3)
print("ready", flush=True)
n = 0
try:
    while n < 3:
        d, a = s.recvfrom(4096)
        if b"router-own" in d:
            n += 1
except socket.timeout:
    pass
print(n, flush=True)
"""], stdout=subprocess.PIPE, text=True)
rx.stdout.readline()
subprocess.run(["ip", "netns", "exec", "salg-rtr-%s" % lid, "python3", "-c", """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(3):
    s.sendto(b"OPTIONS sip:p@203.0.113.30 SIP/2.0\\r\\nCall-ID: router-own%d\\r\\n\\r\\n" % i, ("203.0.113.30", 5060))
"""], check=True)
print(rx.stdout.readline().strip())
rx.wait(5)
PYEOF
)
	c1=$(lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" counters | sed -n 's/^guard_local //p')
	if [ "$got" = 3 ] && [ "${c1:-0}" -ge $(( ${c0:-0} + 3 )) ]; then
		ok "guard: 3 of 3 datagrams the router sent to 203.0.113.30:5060 arrived (guard_local ${c0:-?} -> $c1)"
	else
		nok "guard: router's own SIP: $got of 3 arrived, guard_local ${c0:-?} -> ${c1:-?}"
	fi
	# The WAN re-created (pppoe-wan after a reconnect): the guard follows it within ticks.
	ip -n "$NS_RTR" link del wan
	ip -n "$NS_RTR" link add wan type veth peer name eth0 netns "$NS_WAN"
	ip -n "$NS_RTR" addr add 203.0.113.1/24 dev wan
	ip -n "$NS_RTR" link set wan up
	for a in 10 20 30; do ip -n "$NS_WAN" addr add 203.0.113.$a/24 dev eth0; done
	ip -n "$NS_WAN" link set eth0 up
	lab_nsx "$NS_RTR" sysctl -qw net.ipv4.conf.wan.rp_filter=0
	lab_nsx "$NS_WAN" sysctl -qw net.ipv4.conf.eth0.rp_filter=0
	i=0 link2=""
	while [ $i -lt 20 ]; do   # bounded: 2 s
		st=$(lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" status 2>&1)
		link2=$(printf '%s\n' "$st" | sed -n 's/^guard: wan egress (tcx link \([0-9]*\)).*/\1/p')
		[ -n "$link2" ] && [ "$link2" != "$link" ] && break
		sleep 0.1; i=$((i + 1))
	done
	if [ -n "$link2" ] && [ "$link2" != "$link" ] && bpftool link show id "$link2" >/dev/null 2>&1; then
		ok "guard: the WAN re-created, attached again (tcx link $link -> $link2) within $((i * 100 + 100)) ms"
		link=$link2
	else
		nok "guard: not attached again after the WAN was re-created: $(printf '%s' "$st" | grep guard)"
	fi
	kill -KILL "$LAB_DAEMON_PID"
	wait "$LAB_DAEMON_PID" 2>/dev/null
	# By the ids this daemon attached: BPF programs are machine-wide, and another lab (or
	# the CI in another clone) may run a guard of its own meanwhile. The kernel frees a
	# killed process's link and program a moment later: up to 2 s.
	for _ in $(seq 1 20); do
		left=""
		[ -n "$link" ] && bpftool link show id "$link" >/dev/null 2>&1 && left="$left link $link"
		[ -n "$prog" ] && bpftool prog show id "$prog" >/dev/null 2>&1 && left="$left prog $prog"
		[ -z "$left" ] && break
		sleep 0.1
	done
	if [ -z "$left" ] && [ -n "$prog" ]; then ok "guard: kill -9 leaves no guard (link $link, prog $prog gone)"
	else nok "guard: kill -9 left:$left"; fi
	# what the killed daemon left in the firewall goes with a clean start and stop
	if lab_sipalgd_start; then lab_sipalgd_stop >/dev/null 2>&1 || nok "clean stop after kill -9"
	else nok "daemon start after kill -9"; fi
elif [ "$GUARD" != off ]; then
	nok "daemon start (guard part)"
fi

# ---- the guard on a kernel without TCX (before 6.6: Debian 12's 6.1, OpenWrt 23.05's 5.15):
# SIPALGD_TC_NO_TCX=1 makes the daemon take the classic clsact filter it uses there. A
# reload leaks nothing through it either; a removed filter (`tc qdisc del dev wan clsact`,
# a QoS script) is put back within ticks; kill -9 leaves the filter, the next start replaces
# it, a clean stop removes it. ----
tc_guard() { lab_nsx "$NS_RTR" tc filter show dev wan egress 2>/dev/null | grep -c 'handle 0x5a20.*sipguard_egress'; }
if [ "$GUARD" != off ]; then
	export SIPALGD_TC_NO_TCX=1
	if lab_sipalgd_start; then
		st=$(lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" status 2>&1)
		n=$(tc_guard)
		if printf '%s\n' "$st" | grep -q '^guard: wan egress (tc filter), dropping' && [ "$n" = 1 ]; then
			ok "classic guard: status says tc filter, and one filter 0x5a20 sipguard_egress at wan egress"
		else
			nok "classic guard: status '$(printf '%s' "$st" | grep guard)', $n filters of ours"
		fi
		"$PY" -u "$HERE/field_repair.py" --id "$LAB_ID" --pid "$LAB_DAEMON_PID" --ctl "$LAB_CTL" \
			--sock "$LAB_SOCK" --table "$table" --fw "$LAB_TMP/fw.nft" --log "$LAB_DAEMON_LOG" \
			--guard flush 2>&1 | sed 's/^\(ok\|not ok\) - /&classic guard: /' | tee "$LAB_TMP/py2.out" |
			grep --line-buffered -v -E '^[0-9]+ passed, [0-9]+ failed$'
		p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$LAB_TMP/py2.out")
		f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$LAB_TMP/py2.out")
		if [ -z "$p" ]; then nok "classic guard: field_repair.py ended without a summary"; else
			pass=$((pass + p)); fail=$((fail + f)); fi
		r0=$(lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" counters | sed -n 's/^guard_reattached //p')
		lab_nsx "$NS_RTR" tc qdisc del dev wan clsact
		i=0
		while [ $i -lt 20 ] && [ "$(tc_guard)" != 1 ]; do sleep 0.1; i=$((i + 1)); done   # bounded: 2 s
		r1=$(lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" counters | sed -n 's/^guard_reattached //p')
		if [ "$(tc_guard)" = 1 ] && [ "${r1:-0}" -gt "${r0:-0}" ] &&
			grep -q 'guard: its tc filter on wan egress was removed' "$LAB_DAEMON_LOG"; then
			ok "classic guard: clsact deleted, the filter is back within $((i * 100 + 100)) ms (guard_reattached ${r0:-?} -> $r1, logged)"
		else
			nok "classic guard: after tc qdisc del: $(tc_guard) filters, guard_reattached ${r0:-?} -> ${r1:-?}"
		fi
		# The lab runs the fast path too: its filter at wan ingress went with the clsact, and
		# comes back at its interface check (every 5 s).
		i=0
		while [ $i -lt 70 ] && ! lab_nsx "$NS_RTR" tc filter show dev wan ingress 2>/dev/null |
			grep -q 'handle 0x5a1f.*sipfast'; do sleep 0.1; i=$((i + 1)); done   # bounded: 7 s
		if [ $i -lt 70 ] && grep -q 'fast path: its tc filter on wan was removed' "$LAB_DAEMON_LOG"; then
			ok "classic fast path: its wan ingress filter is back within $((i * 100 + 100)) ms (logged)"
		else
			nok "classic fast path: no filter 0x5a1f at wan ingress 7 s after tc qdisc del"
		fi
		kill -KILL "$LAB_DAEMON_PID"
		wait "$LAB_DAEMON_PID" 2>/dev/null
		n=$(tc_guard)
		if lab_sipalgd_start; then
			n2=$(tc_guard)
			if [ "$n" = 1 ] && [ "$n2" = 1 ]; then
				ok "classic guard: kill -9 leaves the filter, the next start replaces it (one filter, not two)"
			else
				nok "classic guard: after kill -9 $n filters, after the restart $n2"
			fi
			if lab_sipalgd_stop >/dev/null 2>&1 && [ "$(tc_guard)" = 0 ]; then
				ok "classic guard: a clean stop removes the filter"
			else
				nok "classic guard: clean stop: $(tc_guard) filters left"
			fi
		else
			nok "classic guard: restart after kill -9"
		fi
	else
		nok "classic guard: daemon start"
	fi
	unset SIPALGD_TC_NO_TCX
fi

# ---- operator mistakes: a second daemon started by hand, a wan.interface that does not exist ----
if lab_sipalgd_start; then
	tab=$(sed -n 's/.*nft_table: \([A-Za-z0-9_]*\).*/\1/p' "$LAB_CONF")
	h1=$(lab_nsx "$NS_RTR" nft -a list table ip "$tab" 2>/dev/null | sed -n 's/.*# handle \([0-9]*\)$/\1/p' | head -1)
	r1=$(lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" counters | awk '$1 == "rules_restored" {print $2}')
	out=$(ip netns exec "$NS_RTR" timeout 10 "$LAB_REPO/sipalgd" -c "$LAB_CONF" 2>&1); rc=$?
	h2=$(lab_nsx "$NS_RTR" nft -a list table ip "$tab" 2>/dev/null | sed -n 's/.*# handle \([0-9]*\)$/\1/p' | head -1)
	sleep 1.2 # a repair, had there been a reason for one, shows within a tick
	r2=$(lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" counters | awk '$1 == "rules_restored" {print $2}')
	if [ $rc = 1 ] && printf '%s' "$out" | grep -q 'another sipalgd answers on' && [ -n "$h1" ] &&
		[ "$h1" = "$h2" ] && [ "$r1" = "$r2" ] &&
		lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" status >/dev/null 2>&1; then
		ok "second daemon: refused before touching the kernel (exit 1, the first's table and rules untouched)"
	else
		nok "second daemon: rc $rc, table handle $h1 -> $h2, rules_restored $r1 -> $r2: $out"
	fi
	lab_sipalgd_stop >/dev/null 2>&1 || nok "clean stop (second daemon part)"
else
	nok "daemon start (second daemon part)"
fi
sed 's/^wan: { interface: wan\([ ,}]\)/wan: { interface: wan9\1/' "$LAB_REPO/tests/netns/lab.yaml" >"$LAB_TMP/lab-wan9.yaml"
if ! grep -q 'interface: wan9' "$LAB_TMP/lab-wan9.yaml"; then
	nok "lab.yaml changed: cannot make the wrong-WAN variant"
elif LAB_START_UNHEALTHY=1 LAB_CONF_TEMPLATE=$LAB_TMP/lab-wan9.yaml lab_sipalgd_start; then
	st=$(lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" status 2>&1); rc=$?
	if [ $rc = 1 ] && printf '%s' "$st" | grep -q '^missing .*WAN interface wan9 (no such interface' &&
		grep -q 'WAN wan9: no such interface' "$LAB_DAEMON_LOG"; then
		ok "wrong wan.interface: logged as an error, status says missing and exits 1"
	else
		nok "wrong wan.interface: status rc $rc: $st"
	fi
	lab_sipalgd_stop >/dev/null 2>&1 || nok "clean stop (wrong WAN part)"
else
	nok "daemon start (wrong WAN part)"
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
