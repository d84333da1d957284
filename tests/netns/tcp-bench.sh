#!/bin/bash
# tests/netns/tcp-bench.sh: a first TCP figure (not part of make check).
# sipp -t t1 (one connection, like a PBX trunk) at RATE calls/s for CALLS
# calls through sipalgd's TCP relay; prints calls ok/failed, the rate held,
# and sipalgd's own CPU (user+system, from /proc) per call. The kernel
# helper's cost is softirq time on the router and is not measured here.
#   RATE [100] CALLS [1000] tests/netns/tcp-bench.sh
# shellcheck disable=SC2010,SC2046,SC2034,SC2086  # as faults.sh: word splitting of compiler flags intended; lib.sh reads ALG, LAB_KEEP_TMP
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
LAB_REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
RATE=${RATE:-100}
CALLS=${CALLS:-1000}

lab_init
trap lab_cleanup EXIT
trap 'exit 130' INT TERM
sed 's|^sip: { ports: \[5060\] }|sip: { ports: [5060], tcp: true }|; s|level: debug|level: info|' \
	"$HERE/lab.yaml" >"$LAB_TMP/tcp-lab.yaml"
# One LAN address places every call, like a PBX trunk, with the limits as
# shipped (lab.yaml has no limits section): a trunk must pass without tuning.
LAB_CONF_TEMPLATE="$LAB_TMP/tcp-lab.yaml"; export LAB_CONF_TEMPLATE
lab_topology
ALG=sipalgd
lab_sipalgd_start || exit 1
pid=$(ip netns pids "$NS_RTR" | while read -r p; do
	[ "$(readlink "/proc/$p/exe")" = "$LAB_REPO/sipalgd" ] && echo "$p"; done | head -n1)
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
sed -e 's|SIP/2\\.0/UDP|SIP/2\\.0/TCP|g' -e '/<timewait/d' "$LAB_REPO/tests/sipp/uas_check.xml" >"$LAB_TMP/uas.xml"
timeout 300 ip netns exec "$NS_WAN" sipp -sf "$LAB_TMP/uas.xml" -t t1 -i 203.0.113.10 -p 5060 -m "$CALLS" \
	-timeout 60s -nostdin -trace_err -error_file "$LAB_TMP/uas-err.log" -trace_stat -stf "$LAB_TMP/uas.csv" >"$LAB_TMP/uas.out" 2>&1 &
uas=$!
sleep 0.5
c0=$(cpu); t0=$(date +%s.%N)
timeout 300 ip netns exec "$NS_LAN" sipp -sf "$LAB_REPO/tests/sipp/uac_call.xml" -t t1 -i 192.168.77.11 -p 5060 \
	-mp 17200 -s bob -m "$CALLS" -r "$RATE" -l 1000 -timeout 60s -nostdin -recv_timeout 4000 \
	-trace_err -error_file "$LAB_TMP/uac-err.log" -trace_stat -stf "$LAB_TMP/uac.csv" 203.0.113.10:5060 >"$LAB_TMP/uac.out" 2>&1
rc=$?
t1=$(date +%s.%N); c1=$(cpu)
wait "$uas"; rcs=$?
hz=$(getconf CLK_TCK)
ok=$(tail -n1 "$LAB_TMP/uac.csv" | awk -F';' '{ print $16 }')
failed=$(tail -n1 "$LAB_TMP/uac.csv" | awk -F';' '{ print $18 }')
awk -v c="$CALLS" -v r="$RATE" -v ok="$ok" -v f="$failed" -v d0="$c0" -v d1="$c1" -v hz="$hz" -v t0="$t0" -v t1="$t1" \
	-v rc="$rc" -v rcs="$rcs" 'BEGIN {
	printf "tcp bench: %d calls at %d/s over one TCP connection: %s ok, %s failed (uac exit %d, uas exit %d), %.1f s, sipalgd CPU %.0f ms = %.3f ms/call\n",
		c, r, ok, f, rc, rcs, t1 - t0, (d1 - d0) * 1000 / hz, (d1 - d0) * 1000 / hz / c }'
[ "$rcs" = 0 ] && [ "$rc" = 0 ] || { echo "# UAS errors:"; grep -hv "^\s*$" "$LAB_TMP/uas-err.log" "$LAB_TMP/uac-err.log" 2>/dev/null | cut -c1-100 | sort | uniq -c | sort -rn | head -n 8; tail -n 25 "$LAB_TMP/uas.out"; }
# what the shipped limits refused, if anything (a trunk must see none)
lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" counters 2>/dev/null |
	awk '$1 ~ /^(refused_|pinholes_refused|drop_rate|tcp_refused_limit|tcp_msgs_dropped|queue_behind)/ && $2 != 0 { r = r " " $1 " " $2 }
	     END { print "tcp bench: refused by limits:" (r == "" ? " nothing" : r) }'
lab_sipalgd_stop >/dev/null 2>&1
