#!/bin/bash
# tests/netns/tcp.sh (make tcp-lab): SIP over TCP through sipalgd's relay.
#
# The lab's topology (lib.sh) with sip.tcp on; tcp.py plays a phone on the
# LAN and a registrar/UAS on the WAN: REGISTER one byte per segment, an
# INVITE over 1300 bytes in uneven segments after a CRLFCRLF ping, RTP both
# ways, a request from the provider over the phone's own connection, BYE,
# FIN both ways; then kill -9 of the daemon: a new SIP/TCP connection must
# be refused and nothing may reach the WAN (fail closed). The daemon must
# leave no table, rule or route behind on SIGTERM. Also: a provider's new
# connection to a registered phone's Contact (1a), and a relay that cannot
# start (its port taken, after that kill -9): the daemon runs without it (4).
# shellcheck disable=SC2010,SC2046,SC2034,SC2086  # as faults.sh: word splitting of compiler flags intended; lib.sh reads ALG, LAB_KEEP_TMP
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
LAB_REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
PY=/usr/bin/python3

lab_init
trap lab_cleanup EXIT
trap 'echo "# interrupted" >&2; exit 130' INT TERM
echo "# sipalgd SIP/TCP lab: id=$LAB_ID tmp=$LAB_TMP"

sed 's|^sip: { ports: \[5060\] }|sip: { ports: [5060], tcp: true }|' "$HERE/lab.yaml" >"$LAB_TMP/tcp-lab.yaml"
grep -q 'tcp: true' "$LAB_TMP/tcp-lab.yaml" || { echo "lab.yaml: cannot turn sip.tcp on" >&2; exit 1; }
LAB_CONF_TEMPLATE="$LAB_TMP/tcp-lab.yaml"
export LAB_CONF_TEMPLATE
# SAN=asan: the daemon built with -fsanitize=address,undefined (as faults.sh
# builds it); its clean exit and a log free of reports are then checked too.
if [ "${SAN:-}" = asan ]; then
	LAB_SIPALGD_BIN=$LAB_REPO/build/asan/sipalgd
	srcs=$(ls "$LAB_REPO"/src/*.c | grep -v '/sipalgctl\.c$')
	newest=$(ls -t $srcs "$LAB_REPO"/src/*.h | head -n1)
	if [ ! -x "$LAB_SIPALGD_BIN" ] || [ "$newest" -nt "$LAB_SIPALGD_BIN" ]; then
		mkdir -p "$LAB_REPO/build/asan"
		echo "# building $LAB_SIPALGD_BIN (clang -fsanitize=address,undefined)"
		clang -fsanitize=address,undefined -fno-omit-frame-pointer -g -O1 -std=gnu11 -D_GNU_SOURCE \
			-I"$LAB_REPO/src" $srcs -o "$LAB_SIPALGD_BIN.tmp" \
			$(pkg-config --cflags --libs libnetfilter_queue libmnl libnftnl libnftables libnetfilter_conntrack yaml-0.1) \
			|| exit 1
		mv "$LAB_SIPALGD_BIN.tmp" "$LAB_SIPALGD_BIN"
	fi
	export LAB_SIPALGD_BIN
	export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=23"
	export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=24"
fi
lab_topology
ALG=sipalgd
lab_sipalgd_start || { LAB_KEEP_TMP=1; exit 1; }

fail=0
# 1. the call, both sides asserting
timeout 40 ip netns exec "$NS_WAN" "$PY" "$HERE/tcp.py" uas --out "$LAB_TMP/uas.json" >"$LAB_TMP/uas.out" 2>&1 &
uas=$!
LAB_PIDS="$LAB_PIDS $uas"
sleep 0.3
timeout 40 ip netns exec "$NS_LAN" "$PY" "$HERE/tcp.py" uac >"$LAB_TMP/uac.out" 2>&1 || fail=1
wait "$uas" || fail=1
sed 's/^/# phone:    /' "$LAB_TMP/uac.out"
sed 's/^/# provider: /' "$LAB_TMP/uas.out"
# 1a. a new connection from the WAN to a registered Contact (RFC 3261
# 18.2.2): the phone registered over TCP and closed; the provider calls its
# public Contact on a new connection and the phone takes it; other public
# ports (the closed connection's, 5062) stay refused.
timeout 40 ip netns exec "$NS_WAN" "$PY" "$HERE/tcp.py" in-provider "$LAB_TMP/inp.json" >"$LAB_TMP/inp.out" 2>&1 &
inp=$!
LAB_PIDS="$LAB_PIDS $inp"
sleep 0.3
timeout 40 ip netns exec "$NS_LAN" "$PY" "$HERE/tcp.py" in-phone >"$LAB_TMP/inph.out" 2>&1 || fail=1
wait "$inp" || fail=1
sed 's/^/# new conn, phone:    /' "$LAB_TMP/inph.out"
sed 's/^/# new conn, provider: /' "$LAB_TMP/inp.out"

# 1b. sipp over TCP (-t t1) on both sides: 3 calls, the UAS checks the
# rewrite with <ereg check_it> (the lab's UDP scenario, transport TCP; no
# timewait for BYE retransmissions, which TCP has not, and which would see
# the UAC's connection close as a failed call)
sed -e 's|SIP/2\\.0/UDP|SIP/2\\.0/TCP|g' -e '/<timewait/d' "$LAB_REPO/tests/sipp/uas_check.xml" >"$LAB_TMP/uas_check_tcp.xml"
grep -q 'SIP/2\\.0/TCP' "$LAB_TMP/uas_check_tcp.xml" || { echo "uas_check.xml: no Via check to turn to TCP" >&2; exit 1; }
timeout 40 ip netns exec "$NS_WAN" sipp -sf "$LAB_TMP/uas_check_tcp.xml" -t t1 -i 203.0.113.10 -p 5060 -m 3 \
	-timeout 25s -timeout_error -nostdin -trace_err -error_file "$LAB_TMP/sipp-uas-errors.log" \
	>"$LAB_TMP/sipp-uas.out" 2>&1 &
suas=$!
LAB_PIDS="$LAB_PIDS $suas"
sleep 0.5
timeout 40 ip netns exec "$NS_LAN" sipp -sf "$LAB_REPO/tests/sipp/uac_call.xml" -t t1 -i 192.168.77.11 -p 5060 \
	-mp 17200 -s bob -m 3 -r 5 -l 1 -timeout 20s -timeout_error -nostdin -trace_err \
	-error_file "$LAB_TMP/sipp-uac-errors.log" -recv_timeout 4000 203.0.113.10:5060 >"$LAB_TMP/sipp-uac.out" 2>&1
rc_uac=$?
wait "$suas"; rc_uas=$?
if [ $rc_uac = 0 ] && [ $rc_uas = 0 ]; then
	echo "# sipp -t t1: 3 calls through the relay, rewrite checked at the far side"
else
	echo "FAIL sipp -t t1: UAC exit $rc_uac, UAS exit $rc_uas" >&2
	tail -n 5 "$LAB_TMP"/sipp-u*-errors.log 2>/dev/null | sed 's/^/  | /' >&2
	fail=1
fi

# 1c. TLS on a SIP port: passed untouched, counted
timeout 20 ip netns exec "$NS_WAN" "$PY" "$HERE/tcp.py" listen "$LAB_TMP/tls.json" &
lst=$!
sleep 0.3
timeout 20 ip netns exec "$NS_LAN" "$PY" "$HERE/tcp.py" tls || fail=1
wait "$lst"
"$PY" "$HERE/tcp.py" tls-check "$LAB_TMP/tls.json" | sed 's/^/# tls: /'
[ "${PIPESTATUS[0]}" = 0 ] || fail=1

# 1d. edges: RST/FIN both ways, half-close, unframeable, backpressure, limits
if timeout 60 "$PY" "$HERE/tcp_edges.py" "$NS_LAN" "$NS_WAN" "$LAB_DAEMON_PID" >"$LAB_TMP/edges.out" 2>&1; then
	sed 's/^/# edges: /' "$LAB_TMP/edges.out"
else
	sed 's/^/# edges: /' "$LAB_TMP/edges.out"; fail=1
fi

# 1e. 1,000 concurrent connections from 63 phones: all carried, RSS reported
for i in $(seq 100 162); do ip -n "$NS_LAN" addr add "192.168.77.$i/24" dev eth0; done
if timeout 90 "$PY" "$HERE/tcp_edges.py" many "$NS_LAN" "$NS_WAN" "$LAB_DAEMON_PID" 1000 >"$LAB_TMP/many.out" 2>&1; then
	sed 's/^/# many: /' "$LAB_TMP/many.out"
else
	sed 's/^/# many: /' "$LAB_TMP/many.out"; fail=1
fi
lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" status | sed 's/^/# status: /'

lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" counters >"$LAB_TMP/counters.txt" 2>&1
grep -E '^(tcp_|keepalives|pinholes_opened)' "$LAB_TMP/counters.txt" | tr '\n' ' ' | sed 's/^/# counters: /'; echo
msgs=$(awk '$1 == "tcp_msgs" { print $2 }' "$LAB_TMP/counters.txt")
tlsn=$(awk '$1 == "tcp_tls_passed" { print $2 }' "$LAB_TMP/counters.txt")
[ "${tlsn:-0}" = 1 ] || { echo "FAIL tcp_tls_passed ${tlsn:-?}, want 1" >&2; fail=1; }
[ "${msgs:-0}" -ge 20 ] || { echo "FAIL tcp_msgs ${msgs:-?} < 20: the relay did not carry the call" >&2; fail=1; }

# what the daemon installed, to compare with kernel-rules/tproxy.sh
rules_of() {
	# the set's elements are the daemon's live state, not rules
	lab_nsx "$NS_RTR" nft list table ip sipalgd_lab_tcp 2>/dev/null | sed -E 's/packets [0-9]+ bytes [0-9]+/COUNTER/' |
		sed -E '/elements = \{.*\}/d; /elements = \{/,/\}/d'
	lab_nsx "$NS_RTR" ip rule | grep 0x5f10
	lab_nsx "$NS_RTR" ip route show table 5061
}
rules_of >"$LAB_TMP/rules-daemon.txt"
grep -q 'tproxy to :' "$LAB_TMP/rules-daemon.txt" || { echo "FAIL no TPROXY rule while the daemon runs" >&2; fail=1; }
relay_port=$(sed -n 's/.*relay listening on port \([0-9]*\).*/\1/p' "$LAB_DAEMON_LOG")

# 1f. a firewall reload that removes the relay's table: put back (fwwatch)
lab_nsx "$NS_RTR" nft delete table ip sipalgd_lab_tcp
for _ in $(seq 1 50); do
	lab_nsx "$NS_RTR" nft list table ip sipalgd_lab_tcp >/dev/null 2>&1 && break
	sleep 0.1
done
rules_of >"$LAB_TMP/rules-repaired.txt"
if diff -u "$LAB_TMP/rules-daemon.txt" "$LAB_TMP/rules-repaired.txt" >"$LAB_TMP/repair.diff"; then
	echo "# firewall reload: the relay's table was put back as it was"
else
	echo "FAIL the relay's table was not put back after its deletion:" >&2; cat "$LAB_TMP/repair.diff" >&2; fail=1
fi

# 2. a clean stop removes everything it made
if ! lab_sipalgd_stop; then fail=1; fi
if grep -qE 'ERROR: AddressSanitizer|runtime error|LeakSanitizer' "$LAB_DAEMON_LOG"; then
	echo "FAIL sanitizer report in the daemon's log" >&2; grep -A12 -E 'ERROR: AddressSanitizer|runtime error|LeakSanitizer' "$LAB_DAEMON_LOG" | head -30 >&2; fail=1
fi
# kernel-rules/tproxy.sh installs the same, and removes it all
lab_nsx "$NS_RTR" env WAN_IF=wan SIP_PORTS=5060 RELAY_PORT="$relay_port" TABLE=sipalgd_lab_tcp \
	sh "$LAB_REPO/kernel-rules/tproxy.sh" add || fail=1
rules_of >"$LAB_TMP/rules-script.txt"
if diff -u "$LAB_TMP/rules-daemon.txt" "$LAB_TMP/rules-script.txt" >"$LAB_TMP/rules.diff"; then
	echo "# kernel-rules/tproxy.sh: the same table, rule and route as the daemon's"
else
	echo "FAIL kernel-rules/tproxy.sh differs from the daemon's rules:" >&2; cat "$LAB_TMP/rules.diff" >&2; fail=1
fi
lab_nsx "$NS_RTR" env WAN_IF=wan RELAY_PORT="$relay_port" TABLE=sipalgd_lab_tcp sh "$LAB_REPO/kernel-rules/tproxy.sh" del
[ -z "$(rules_of)" ] || { echo "FAIL tproxy.sh del left: $(rules_of)" >&2; fail=1; }
left=$( { lab_nsx "$NS_RTR" ip rule; lab_nsx "$NS_RTR" ip route show table 5061; } 2>&1 | grep -E 'fwmark 0x5f10|local default')
if [ -n "$left" ]; then echo "FAIL policy routing left behind: $left" >&2; fail=1; fi

# 2b. a restart: relayed connections end, the phone reconnects, the call goes on
lab_sipalgd_start || { LAB_KEEP_TMP=1; exit 1; }
timeout 60 "$PY" "$HERE/tcp_edges.py" restart "$NS_LAN" "$NS_WAN" "$LAB_TMP/ready" "$LAB_TMP/restarted" \
	>"$LAB_TMP/restart.out" 2>&1 &
rpy=$!
LAB_PIDS="$LAB_PIDS $rpy"
for _ in $(seq 1 100); do [ -e "$LAB_TMP/ready" ] && break; sleep 0.1; done
lab_sipalgd_stop || fail=1
lab_sipalgd_start || { LAB_KEEP_TMP=1; exit 1; }
touch "$LAB_TMP/restarted"
wait "$rpy" || fail=1
sed 's/^/# restart: /' "$LAB_TMP/restart.out"
lab_sipalgd_stop || fail=1

# 3. kill -9: the rules stay, the relay is gone: SIP/TCP must not leave
lab_sipalgd_start || { LAB_KEEP_TMP=1; exit 1; }
kill -KILL "$LAB_DAEMON_PID"; wait "$LAB_DAEMON_PID" 2>/dev/null; LAB_DAEMON_PID=""
timeout 20 ip netns exec "$NS_WAN" "$PY" "$HERE/tcp.py" listen "$LAB_TMP/leak.json" &
lst=$!
sleep 0.3
if timeout 20 ip netns exec "$NS_LAN" "$PY" "$HERE/tcp.py" refused >"$LAB_TMP/refused.out" 2>&1; then
	sed 's/^/# dead daemon: /' "$LAB_TMP/refused.out"
else
	cat "$LAB_TMP/refused.out"; fail=1
fi
wait "$lst"
if [ "$(cat "$LAB_TMP/leak.json" 2>/dev/null)" != "[]" ]; then
	echo "FAIL with the daemon dead, SIP/TCP reached the WAN: $(cat "$LAB_TMP/leak.json")" >&2; fail=1
else
	echo "# dead daemon: nothing reached the WAN"
fi

# 4. the relay cannot start (its port taken here; a kernel without TPROXY
# is the same case): sip.tcp is on by default, so the daemon must still run
# SIP over UDP, say so in status, and leave no relay table behind
sed 's|^sip: { ports: \[5060\], tcp: true }|sip: { ports: [5060], tcp: true, tcp_relay_port: 5057 }|' \
	"$LAB_TMP/tcp-lab.yaml" >"$LAB_TMP/tcp-busy.yaml"
grep -q 'tcp_relay_port: 5057' "$LAB_TMP/tcp-busy.yaml" || { echo "cannot set tcp_relay_port" >&2; exit 1; }
timeout 30 ip netns exec "$NS_RTR" "$PY" -c 'import socket, time
s = socket.socket(); s.bind(("0.0.0.0", 5057)); s.listen(1); time.sleep(25)' &
busy=$!
LAB_PIDS="$LAB_PIDS $busy"
for _ in $(seq 1 50); do lab_nsx "$NS_RTR" ss -Hltn 'sport = :5057' | grep -q . && break; sleep 0.1; done
LAB_CONF_TEMPLATE="$LAB_TMP/tcp-busy.yaml" lab_sipalgd_start || { LAB_KEEP_TMP=1; exit 1; }
st=$(lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" status 2>&1)
if echo "$st" | grep -q '^ok .*' && echo "$st" | grep -q 'tcp relay: NOT running' &&
	lab_nsx "$NS_RTR" nft list table ip sipalgd_lab >/dev/null 2>&1 &&
	! lab_nsx "$NS_RTR" nft list table ip sipalgd_lab_tcp >/dev/null 2>&1; then
	echo "# relay port taken: the daemon runs (UDP table in place), status says 'tcp relay: NOT running'"
else
	echo "FAIL relay port taken: want the daemon up without the relay, status saying so: $st" >&2; fail=1
fi
lab_sipalgd_stop || fail=1
kill "$busy" 2>/dev/null; wait "$busy" 2>/dev/null

if [ $fail != 0 ]; then
	LAB_KEEP_TMP=1
	echo "# sipalgd log:"; sed 's/^/  | /' "$LAB_DAEMON_LOG" | tail -n 40
	echo "# tcp lab: FAILED"
	exit 1
fi
echo "# tcp lab: passed"
