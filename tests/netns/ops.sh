#!/bin/bash
# tests/netns/ops.sh: the operator's view (issue 10) against the real daemon in the
# namespace lab: every sipalgctl command's --json parsed by python3's json, the
# metrics by prometheus_client's parser, and each failure that docs/operations.md
# describes produced for real and read back from `sipalgctl call ... --json`.
#
#   tests/netns/ops.sh                  # all cases
#   CASES="json one_way" tests/netns/ops.sh
#   CASES=daemon_killed tests/netns/ops.sh   # the kill -9 phase alone (it runs last otherwise)
#   CASES=limits_hint tests/netns/ops.sh     # the small-limits daemon's phase alone
#
# Topology and daemon from lib.sh; the call building blocks from flows.py.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
LAB_REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

ALG=sipalgd
lab_init
trap lab_cleanup EXIT
trap 'echo "# interrupted" >&2; exit 130' INT TERM

echo "# sipalgd ops lab: id=$LAB_ID tmp=$LAB_TMP"
lab_topology
# A phone outside lan.networks on the same segment (case outside_lan).
ip -n "$NS_LAN" addr add 192.168.78.10/24 dev eth0
ip -n "$NS_RTR" addr add 192.168.78.1/24 dev lan
if ! lab_router_start; then
	LAB_KEEP_TMP=1
	exit 1
fi
export LAB_CONF LAB_PIDFILE LAB_DAEMON_PID LAB_DAEMON_LOG
rc=0
if [ "${CASES:-}" != daemon_killed ] && [ "${CASES:-}" != limits_hint ]; then
	# shellcheck disable=SC2086 # CASES is a word list
	timeout 240 "$PY" "$HERE/ops.py" --id "$LAB_ID" ${CASES:-} &
	pypid=$!
	LAB_PIDS="$LAB_PIDS $pypid"
	wait $pypid
	rc=$?
fi
if ! lab_router_stop; then
	rc=1
fi
# One ops.py case again on a daemon of its own, whose configuration is lab.yaml
# changed by a sed expression (checked to have taken: GREP must then match / not match).
variant() { # NAME SED GREP MUST_MATCH(1|0) CASE
	local name=$1 expr=$2 pat=$3 must=$4 case=$5 conf="$LAB_TMP/lab-$1.yaml" have=0
	sed "$expr" "$HERE/lab.yaml" >"$conf"
	grep -q "$pat" "$conf" && have=1
	if [ "$have" != "$must" ]; then
		echo "# lab.yaml changed: cannot make the $name variant" >&2
		rc=1
	elif echo "# $case, $name" && ! LAB_CONF_TEMPLATE=$conf lab_router_start; then
		rc=1
	else
		timeout 60 "$PY" "$HERE/ops.py" --id "$LAB_ID" "$case" &
		pypid=$!
		LAB_PIDS="$LAB_PIDS $pypid"
		wait $pypid || rc=1
		lab_router_stop || rc=1
	fi
}
# forward_drop_hint again, on a daemon without wan.masquerade6: an ip6 forward chain
# is then none of its business (no IPv6 flow is DNAT'ed), and the case asserts so.
if [ $rc = 0 ] && { [ -z "${CASES:-}" ] || [[ " $CASES " == *" forward_drop_hint "* ]]; }; then
	variant nomasq6 's/, masquerade6: \[[^]]*\]//' masquerade6 0 forward_drop_hint
fi
# limits_hint (CASES=limits_hint alone): a daemon with limits.dialogs: 4, whose table a
# busy phone fills; status must name the table that refuses.
if [ $rc = 0 ] && { [ -z "${CASES:-}" ] || [ "$CASES" = limits_hint ]; }; then
	variant small 's/^log:/limits: { dialogs: 4 }\nlog:/' '^limits: { dialogs: 4 }' 1 limits_hint
fi
# daemon_killed (CASES="daemon_killed" runs it alone): the daemon killed, not stopped, leaves
# its diversion in place and the kernel drops the SIP it queues (fail closed). sipalgctl
# must say the daemon is not running and what that does to SIP, not only "cannot reach".
if [ $rc = 0 ] && { [ -z "${CASES:-}" ] || [ "$CASES" = daemon_killed ]; }; then
	echo "# daemon_killed"
	if ! lab_router_start; then
		rc=1
	else
		kill -KILL "$LAB_DAEMON_PID"
		wait "$LAB_DAEMON_PID" 2>/dev/null
		LAB_DAEMON_PID=""
		out=$(ip netns exec "$NS_RTR" timeout 5 "$LAB_CTL" -s "$LAB_SOCK" status 2>&1)
		crc=$?
		if ! ip netns exec "$NS_RTR" iptables-save -t mangle 2>/dev/null | grep -q -- '-j NFQUEUE'; then
			echo "not ok - daemon_killed: no NFQUEUE rule left after kill -9 (the case assumes one)"
			rc=1
		elif [ $crc != 2 ] || [[ "$out" != *"sipalgd is not running"*"the kernel drops the SIP they divert (fail closed)"* ]]; then
			echo "not ok - daemon_killed: sipalgctl status exit $crc: $out"
			rc=1
		else
			# and SIP really stops: one OPTIONS from the phone, a listener at the proxy for 1.5 s
			ip netns exec "$NS_WAN" timeout 5 "$PY" -c '
import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("203.0.113.10", 5060))
s.settimeout(1.5)
try: s.recv(2000); print("got")
except socket.timeout: print("none")' >"$LAB_TMP/killed-rx" &
			lpid=$!
			sleep 0.3
			ip netns exec "$NS_LAN" timeout 5 "$PY" -c '
import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("192.168.77.10", 5060))
s.sendto(b"OPTIONS sip:bob@203.0.113.10 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.77.10:5060;branch=z9hG4bKk\r\n"
         b"Call-ID: killed\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", ("203.0.113.10", 5060))'
			wait $lpid
			if [ "$(cat "$LAB_TMP/killed-rx")" != none ]; then
				echo "not ok - daemon_killed: SIP crossed the router with the daemon killed: '$(cat "$LAB_TMP/killed-rx")'"
				rc=1
			else
				echo "ok - daemon_killed: sipalgctl says not running, SIP dropped (fail closed)"
			fi
		fi
	fi
fi
[ $rc = 0 ] || { LAB_KEEP_TMP=1; echo "# ops lab FAILED (logs in $LAB_TMP)"; }
[ $rc = 0 ] && echo "# ops lab passed"
exit $rc
