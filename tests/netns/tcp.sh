#!/bin/bash
# tests/netns/tcp.sh (make tcp-lab): SIP over TCP through sipalgd's relay.
#
# The lab's topology (lib.sh) with sip.tcp on; tcp.py plays a phone on the
# LAN and a registrar/UAS on the WAN: REGISTER one byte per segment, an
# INVITE over 1300 bytes in uneven segments after a CRLFCRLF ping, RTP both
# ways, a request from the provider over the phone's own connection, BYE,
# FIN both ways; then kill -9 of the daemon: a new SIP/TCP connection must
# be refused and nothing may reach the WAN (fail closed). The daemon must
# leave no table, rule or route behind on SIGTERM.
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
LAB_YAML="$LAB_TMP/tcp-lab.yaml"
export LAB_YAML
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
lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" counters >"$LAB_TMP/counters.txt" 2>&1
grep -E '^(tcp_|keepalives|pinholes_opened)' "$LAB_TMP/counters.txt" | tr '\n' ' ' | sed 's/^/# counters: /'; echo
msgs=$(awk '$1 == "tcp_msgs" { print $2 }' "$LAB_TMP/counters.txt")
[ "${msgs:-0}" -ge 8 ] || { echo "FAIL tcp_msgs ${msgs:-?} < 8: the relay did not carry the call" >&2; fail=1; }

# 2. a clean stop removes everything it made
if ! lab_sipalgd_stop; then fail=1; fi
left=$( { lab_nsx "$NS_RTR" ip rule; lab_nsx "$NS_RTR" ip route show table 5061; } 2>&1 | grep -E 'fwmark 0x5f10|local default')
if [ -n "$left" ]; then echo "FAIL policy routing left behind: $left" >&2; fail=1; fi

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

if [ $fail != 0 ]; then
	LAB_KEEP_TMP=1
	echo "# sipalgd log:"; sed 's/^/  | /' "$LAB_DAEMON_LOG" | tail -n 40
	echo "# tcp lab: FAILED"
	exit 1
fi
echo "# tcp lab: passed"
