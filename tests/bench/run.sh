#!/bin/bash
# tests/bench/run.sh: the sipalgd benchmark (make bench). Root; about 14 minutes (the TCP cell: 3).
#
#   tests/bench/run.sh [calls|media|state|trunk|tcp|all]  default: all
#
#   calls  three routers in the same run, same topology: plain masquerade (none),
#          the kernel helper (nf_conntrack_sip + nf_nat_sip via an nft ct helper
#          rule) and sipalgd; sipp UAC on the LAN, sipp UAS on the WAN, short
#          calls with SDP at each rate for DURATION seconds. Per rate and router:
#          calls ok/failed, INVITEs the far side saw correctly rewritten,
#          retransmissions, router CPU per call, sipalgd's RSS, the delay through
#          the router (p50/p99); then sipalgd / helper per rate.
#   media  MEDIA_CALLS calls held open by sipalgd, RTP both ways through the
#          pinholes at MEDIA_PPS packets/s per stream and direction: the daemon's
#          CPU with media flowing against the same calls without media.
#   trunk  the PBX trunk cell alone (issue 8): sipalgd only, TRUNK_RATE [2000]
#          calls/s for DURATION from one LAN address, each held HOLD_MS_TRUNK
#          [1500] ms, so about 3,000 calls up at once, with the shipped limits
#          (bench.yaml has no limits section): calls, failed,
#          retransmissions, INVITEs rewritten, streams pinholed / refused.
#   tcp    SIP over TCP (issue 12): the calls cell with sipp -t t1 (one
#          connection, every message in one segment, which is all the kernel
#          helper handles over TCP) at each of TCP_RATES ["200 1000"] calls/s,
#          the same routers (the helper with a TCP ct helper too, sipalgd with
#          sip.tcp on): calls ok/failed, retransmissions, INVITEs rewritten,
#          router CPU per call (NAPI + daemon), sipalgd / helper per rate. No
#          delay column (the captures read UDP only).
#   state  STATE_PHONES registered phones and STATE_DIALOGS concurrent dialogs:
#          RSS per dialog, and the daemon CPU for a fixed probe of calls at each
#          level (lookups, pinhole add/remove) staying flat.
#
# Environment (defaults in brackets):
#   RATES ["50 200 500 1000 2000"]  ROUTERS ["none helper sipalgd queue"]  DURATION [20]
#          `queue`: the floor of any queue-based ALG, SIP through NFQUEUE to a
#          reader that accepts it unchanged (tests/bench/nullq.c)
#   HOLD_MS [1000]  how long each calls-cell call is held before its BYE
#   HOLDOFF_US [2000]  sipalgd's queue.holdoff_us (the longest adaptive pause)
#   MEDIA_CALLS [300] MEDIA_PPS [50] MEDIA_SECONDS [10]
#   STATE_PHONES [10000] STATE_DIALOGS [5000] STATE_PROBE [500]
#   PROFILE [1] PROFILE_RATE [500] PROFILE_SECONDS [10]: after the calls table, one
#          more sipalgd run under `perf record -g` (not in the table): where its time goes
#   BENCH_DOC [1]  1: write the sections of docs/performance.md this run measured
#   KEEP [0]       1: keep the raw files (captures, sipp logs, daemon logs)
#   BENCH_ID       namespace suffix (salgb-{lan,rtr,wan}-ID), default pid % 10000
#   SIPALGD_YAML   extra configuration appended to tests/bench/bench.yaml
#   SIPALGD_BIN    the sipalgd binary to measure [the repository's]: A/B runs
#                  against a build of another commit, alternating, in one VM state
#
# Nothing passes or fails on timing: the run exits non-zero only if the
# harness itself could not measure (topology, a router that would not start,
# a tool missing). Targets are printed next to the numbers.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
B_REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"

# What the caller set, for the record of the exact command.
ENVLINE=""
for v in RATES TCP_RATES ROUTERS TRUNK_RATE HOLD_MS HOLD_MS_TRUNK DURATION HOLDOFF_US MEDIA_CALLS MEDIA_PPS MEDIA_SECONDS STATE_PHONES STATE_DIALOGS STATE_PROBE SIPALGD_YAML SIPALGD_BIN PROFILE PROFILE_RATE PROFILE_SECONDS; do
	if [ -n "${!v+x}" ]; then ENVLINE="$ENVLINE $v=\"${!v}\""; fi
done

MODE=${1:-all}
case "$MODE" in
calls|media|state|trunk|tcp|all) ;;
-h|--help|help) sed -n '2,42p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
*) echo "usage: $0 [calls|media|state|trunk|tcp|all]" >&2; exit 2 ;;
esac

RATES=${RATES:-"50 200 500 1000 2000"}
HOLD_MS=${HOLD_MS:-1000}
case "$HOLD_MS" in ''|*[!0-9]*) echo "HOLD_MS must be a number of milliseconds" >&2; exit 2 ;; esac
ROUTERS=${ROUTERS:-"none helper sipalgd queue"}
DURATION=${DURATION:-20}
BENCH_DOC=${BENCH_DOC:-1}
TCP_RATES=${TCP_RATES:-"200 1000"}
for r in $RATES $TCP_RATES; do case "$r" in ''|*[!0-9]*) echo "RATES: '$r' is not a number" >&2; exit 2 ;; esac; done
for r in $ROUTERS; do case "$r" in none|helper|sipalgd|queue) ;; *) echo "ROUTERS: '$r' (none, helper, sipalgd, queue)" >&2; exit 2 ;; esac; done
case "$DURATION" in ''|*[!0-9]*|0) echo "DURATION must be a positive number of seconds" >&2; exit 2 ;; esac
[ "$DURATION" -le 600 ] || { echo "DURATION is at most 600 s" >&2; exit 2; }

for tool in sipp dumpcap nft conntrack "$B_PY"; do
	command -v "$tool" >/dev/null 2>&1 || { echo "missing tool: $tool (make deps)" >&2; exit 2; }
done

CMDLINE="$*"
if [ "${MAKELEVEL:-}" != "" ] && [ "$MODE" = all ] && [ -z "$CMDLINE" ]; then
	B_COMMAND="${ENVLINE# } make bench"
else
	B_COMMAND="${ENVLINE# } tests/bench/run.sh $CMDLINE"
fi
B_COMMAND=${B_COMMAND# }

bench_init
trap bench_cleanup EXIT
trap 'echo "# interrupted" >&2; exit 130' INT TERM

RES=$B_TMP/results
mkdir -p "$RES"
{
	echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "nproc=$(nproc)"
	echo "kernel=$(uname -r)"
	echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
	echo "mem=$(awk '/^MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
	echo "sipp=$(sipp -v 2>&1 | awk '/SIPp v/ {sub(/\.$/, "", $2); print $2; exit}')"
	echo "git=$(cd "$B_REPO" && git rev-parse --short HEAD 2>/dev/null)$(cd "$B_REPO" && git diff --quiet HEAD -- src 2>/dev/null || echo '+dirty src')"
	echo "binary=$(sha256sum "$B_TMP/bin/sipalgd" 2>/dev/null | cut -c1-12) built $(date -u -r "$B_REPO/sipalgd" '+%Y-%m-%d %H:%M UTC' 2>/dev/null)"
	echo "command=$B_COMMAND"
} >"$RES/machine.txt"
echo "# sipalgd benchmark: mode $MODE, id $B_ID, tmp $B_TMP"
sed 's/^/# /' "$RES/machine.txt"

bench_topology || exit 1

# Even media ports 10000..59998, one line per call; sipp wraps around (SEQUENTIAL).
PORTS=$B_TMP/media-ports.csv
{ echo SEQUENTIAL; seq 10000 2 59998 | sed 's/$/;/'; } >"$PORTS"

# ---- capture --------------------------------------------------------------
# SIP on the two veth links of the router, at their outer ends (the phone's and
# the proxy's side of the cable): a packet tap on the router's own interfaces
# would run inside the router's NAPI threads and be billed as router CPU.
cap_start() { # cap_start NS FILE
	bstart ip netns exec "$1" dumpcap -i eth0 -f "udp port 5060" -s 600 -B 64 -P -w "$2" 2>"$2.err"
	eval "CAP_$3=$B_LASTPID"
}
cap_wait_ready() {
	local f i
	for f in "$@"; do
		for i in $(seq 1 50); do
			[ -s "$f" ] && [ "$(stat -c %s "$f")" -ge 24 ] && break
			sleep 0.1
		done
		[ -s "$f" ] || { echo "capture $f did not start: $(cat "$f.err" 2>/dev/null)" >&2; return 1; }
	done
	sleep 0.3
}
cap_stop() {
	local p
	for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
	for p in "$@"; do wait "$p" 2>/dev/null; bforget "$p"; done
}

# ---- one calls cell ---------------------------------------------------------
run_cell() { # run_cell RATE ROUTER [profile|trunk|tcp]
	local rate=$1 router=$2 prof=${3:-} cell="$B_TMP/calls/$1-$2${3:+-$3}" calls=$(( $1 * DURATION ))
	local tmo=$(( DURATION + 60 )) uas uac t0 t1 c0n c1n c0d c1d rss rssmax=0 dmax=0 d i
	local uacsf="$HERE/uac.xml" uassf="$HERE/uas.xml" tr="" lport=5060
	mkdir -p "$cell"
	echo "# calls: $rate calls/s x ${DURATION}s through '$router'${3:+ ($3)}" >&2
	if [ "$prof" = tcp ]; then
		# one TCP connection each way (sipp -t t1), from a phone port of
		# its own per cell: the last router's connection may still be in
		# TIME_WAIT at the far side (same 4-tuple: the new one would not
		# connect); the far side checks a TCP Via; no timewait (its BYE
		# retransmissions are UDP's)
		TCP_CELL_N=$(( ${TCP_CELL_N:-0} + 1 ))
		tr="-t t1"
		lport=$(( 5100 + TCP_CELL_N ))
		uassf="$cell/uas-tcp.xml"
		sed -e 's|SIP/2\\.0/UDP|SIP/2\\.0/TCP|g' -e '/<timewait/d' "$HERE/uas.xml" >"$uassf"
		grep -q 'SIP/2\\.0/TCP' "$uassf" || { echo "uas.xml: no Via check to turn to TCP" >&2; return 1; }
	fi
	if ! B_SIP_TCP=$([ "$prof" = tcp ] && echo 1) router_on "$router" "$rate"; then
		echo "router $router did not start" >&2
		return 1
	fi
	if [ "$prof" = tcp ] && [ "$router" = helper ]; then
		nsx "$NS_RTR" nft -f "$HERE/kernel-helper-tcp.nft" || { echo "TCP ct helper refused" >&2; return 1; }
	fi
	local dpid=""
	if [ "$router" = sipalgd ] || [ "$router" = queue ]; then
		dpid=$B_DAEMON_PID
		sleep 1
		echo "rss_idle_kib=$(rss_kib "$dpid")" >>"$cell/meta.txt"
	fi
	if [ "$prof" != tcp ]; then
		cap_start "$NS_LAN" "$cell/lan.pcap" LAN
		cap_start "$NS_WAN" "$cell/wan.pcap" WAN
		cap_wait_ready "$cell/lan.pcap" "$cell/wan.pcap" || return 1
	fi
	# shellcheck disable=SC2086  # $tr: empty or "-t t1"
	(cd "$cell" && exec timeout "$tmo" ip netns exec "$NS_WAN" sipp -sf "$uassf" $tr \
		-i 203.0.113.10 -p 5060 -inf "$PORTS" -m "$calls" -nostdin -buff_size 4194304 \
		-trace_stat -stf "$cell/uas.csv" -fd 1 -trace_logs -log_file "$cell/uas_logs.log" \
		-trace_err -error_file "$cell/uas_err.log" >"$cell/uas.out" 2>&1) &
	uas=$!; B_PIDS="$B_PIDS $uas"
	sleep 0.5
	local vd0; vd0=$(veth_drop_counts)
	t0=$(date +%s%N)
	c0n=$(cpu_ns_tids $B_NAPI_PIDS)
	c0d=$(cpu_ns_proc "$dpid")
	# shellcheck disable=SC2086
	(cd "$cell" && exec timeout "$tmo" ip netns exec "$NS_LAN" sipp -sf "$uacsf" $tr \
		-i 192.168.77.10 -p "$lport" -inf "$PORTS" -s bob -r "$rate" -rp 1000 -m "$calls" -d "$HOLD_MS" \
		-timeout "$(( DURATION + 40 ))s" -timeout_error -nostdin -buff_size 4194304 \
		-cid_str '%u-%p@bench.invalid' \
		-trace_stat -stf "$cell/uac.csv" -fd 1 -trace_err -error_file "$cell/uac_err.log" \
		203.0.113.10:5060 >"$cell/uac.out" 2>&1) &
	uac=$!; B_PIDS="$B_PIDS $uac"
	local perfpid=""
	if [ -n "$dpid" ] && [ "$prof" = profile ]; then
		bstart perf record -q -g -F 2999 -p "$dpid" -o "$cell/perf.data" -- sleep "$DURATION" >"$cell/perf.out" 2>&1
		perfpid=$B_LASTPID
	fi
	# While the load runs: the daemon's RSS and live dialogs, once a second.
	i=0
	while kill -0 "$uac" 2>/dev/null && [ $i -lt $(( tmo * 2 )) ]; do
		if [ "$router" = sipalgd ]; then
			rss=$(rss_kib "$dpid"); [ "${rss:-0}" -gt "$rssmax" ] && rssmax=$rss
			d=$(sipalgctl_b counters 2>/dev/null | awk '$1 == "dialogs" {print $2}')
			[ "${d:-0}" -gt "$dmax" ] && dmax=$d
		fi
		sleep 0.5; i=$((i + 1))
	done
	wait "$uac"; local uac_rc=$?; bforget "$uac"
	if [ -n "$perfpid" ]; then
		wait "$perfpid"; bforget "$perfpid"
		"$B_PY" "$HERE/profile.py" "$cell/perf.data" >"$RES/profile.md" 2>&1
	fi
	# The UAS ends after its last call's BYE (+0.5 s timewait); bounded.
	for i in $(seq 1 40); do kill -0 "$uas" 2>/dev/null || break; sleep 0.25; done
	kill -TERM "$uas" 2>/dev/null
	wait "$uas"; local uas_rc=$?; bforget "$uas"
	t1=$(date +%s%N)
	c1n=$(cpu_ns_tids $B_NAPI_PIDS)
	c1d=$(cpu_ns_proc "$dpid")
	sleep 0.3
	[ "$prof" = tcp ] || cap_stop "$CAP_LAN" "$CAP_WAN"
	# the UAS names its log after the scenario when -log_file is not honoured
	[ -f "$cell/uas_logs.log" ] || mv "$cell"/uas_*_logs.log "$cell/uas_logs.log" 2>/dev/null
	{
		echo "rate=$rate"; echo "router=$router"; echo "duration=$DURATION"; echo "calls=$calls"
		echo "cpu_napi_ns=$((c1n - c0n))"; echo "cpu_daemon_ns=$((c1d - c0d))"; echo "wall_ns=$((t1 - t0))"
		echo "uac_exit=$uac_rc"; echo "uas_exit=$uas_rc"
		echo "veth_drops=$(veth_drop_delta "$vd0" "$(veth_drop_counts)")"
		echo "capture_drops=$(sed -n "s|.*received/dropped on interface '[^']*': [0-9]*/\([0-9]*\).*|\1|p" "$cell"/lan.pcap.err "$cell"/wan.pcap.err 2>/dev/null | awk '{s += $1} END {print s + 0}')"
	} >>"$cell/meta.txt"
	if [ "$router" = sipalgd ]; then
		echo "rss_max_kib=$rssmax" >>"$cell/meta.txt"
		echo "dialogs_max=$dmax" >>"$cell/meta.txt"
		echo "rss_end_kib=$(rss_kib "$dpid")" >>"$cell/meta.txt"
		echo "hwm_kib=$(hwm_kib "$dpid")" >>"$cell/meta.txt"
		sipalgctl_b counters >"$cell/counters.txt" 2>&1
		if ! kill -0 "$dpid" 2>/dev/null; then
			echo "# sipalgd died during the run; its log is in $cell" >&2
			B_KEEP_TMP=1
		fi
	fi
	router_off "$router"; local rc=$?
	[ "$router" = sipalgd ] && { echo "daemon_exit=$rc" >>"$cell/meta.txt"; cp "$B_DAEMON_LOG" "$cell/sipalgd.log" 2>/dev/null; }
	"$B_PY" "$HERE/analyze.py" "$cell" || echo "# analyze.py failed for $cell" >&2
	if [ "$prof" = profile ]; then
		cp "$cell/result.json" "$RES/profile-cell.json" 2>/dev/null
	elif [ "$prof" = trunk ]; then
		cp "$cell/result.json" "$RES/trunk.json" 2>/dev/null
	elif [ "$prof" = tcp ]; then
		cp "$cell/result.json" "$RES/tcp-$rate-$router.json" 2>/dev/null
	else
		cp "$cell/result.json" "$RES/calls-$rate-$router.json" 2>/dev/null
	fi
	"$B_PY" "$HERE/report.py" --line "$cell/result.json" >&2
	# Keep the disk small: captures of a 2000 calls/s run are ~100 MB.
	[ "$B_KEEP_TMP" = 1 ] || rm -f "$cell"/*.pcap
	nsx "$NS_RTR" conntrack -F >/dev/null 2>&1
	sleep 1
	return 0
}

run_calls() {
	local rate router
	for rate in $RATES; do
		# The routers take turns at each rate: drift on a shared VM hits them alike.
		for router in $ROUTERS; do
			run_cell "$rate" "$router" || return 1
		done
	done
	# A separate pass under perf (its sampling would bill the table's cells).
	case " $ROUTERS " in *" sipalgd "*) ;; *) return 0 ;; esac
	if [ "${PROFILE:-1}" = 1 ] && command -v perf >/dev/null 2>&1; then
		local d=$DURATION
		DURATION=${PROFILE_SECONDS:-10}
		run_cell "${PROFILE_RATE:-500}" sipalgd profile || { DURATION=$d; return 1; }
		DURATION=$d
	fi
}

run_trunk() {
	case " $ROUTERS " in *" sipalgd "*) ;; *) return 0 ;; esac
	HOLD_MS=${HOLD_MS_TRUNK:-1500} run_cell "${TRUNK_RATE:-2000}" sipalgd trunk
}

run_tcp() {
	local rate router
	for rate in $TCP_RATES; do
		for router in $ROUTERS; do
			[ "$router" = queue ] && continue # its diversion is UDP's
			run_cell "$rate" "$router" tcp || return 1
		done
	done
}

run_media() {
	echo "# media: ${MEDIA_CALLS:-300} calls, RTP ${MEDIA_PPS:-50} packets/s per stream each way, ${MEDIA_SECONDS:-10}s" >&2
	router_on sipalgd media || return 1
	"$B_PY" "$HERE/loadgen.py" media --lan-ns "$NS_LAN" --wan-ns "$NS_WAN" --rtr-ns "$NS_RTR" \
		--daemon-pid "$B_DAEMON_PID" --napi "$B_NAPI_PIDS" --ctl "$B_CTL" --sock "$B_SOCK" \
		--calls "${MEDIA_CALLS:-300}" --pps "${MEDIA_PPS:-50}" --seconds "${MEDIA_SECONDS:-10}" \
		--out "$RES/media.json" &
	local p=$!; B_PIDS="$B_PIDS $p"; wait $p; local rc=$?; bforget $p
	cp "$B_DAEMON_LOG" "$B_TMP/sipalgd-media.log" 2>/dev/null
	router_off sipalgd; echo "daemon_exit=$?" >"$RES/media.exit"
	[ $rc = 0 ] || { echo "# media run failed (status $rc)" >&2; B_KEEP_TMP=1; }
	return 0
}

run_state() {
	echo "# state: ${STATE_PHONES:-10000} phones, ${STATE_DIALOGS:-5000} dialogs" >&2
	# the phones' addresses (loadgen.py PHONE_NET): local to the LAN
	# namespace, routed to it by the router
	ip -n "$NS_LAN" route replace local 10.77.0.0/16 dev lo || return 1
	ip -n "$NS_RTR" route replace 10.77.0.0/16 via 192.168.77.10 || return 1
	SIPALGD_YAML="${SIPALGD_YAML:-}" router_on sipalgd state || return 1
	"$B_PY" "$HERE/loadgen.py" state --lan-ns "$NS_LAN" --wan-ns "$NS_WAN" --rtr-ns "$NS_RTR" \
		--daemon-pid "$B_DAEMON_PID" --napi "$B_NAPI_PIDS" --ctl "$B_CTL" --sock "$B_SOCK" \
		--phones "${STATE_PHONES:-10000}" --dialogs "${STATE_DIALOGS:-5000}" --probe "${STATE_PROBE:-500}" \
		--out "$RES/state.json" &
	local p=$!; B_PIDS="$B_PIDS $p"; wait $p; local rc=$?; bforget $p
	cp "$B_DAEMON_LOG" "$B_TMP/sipalgd-state.log" 2>/dev/null
	router_off sipalgd; echo "daemon_exit=$?" >"$RES/state.exit"
	[ $rc = 0 ] || { echo "# state run failed (status $rc)" >&2; B_KEEP_TMP=1; }
	return 0
}

rc=0
case "$MODE" in
calls) run_calls || rc=1 ;;
trunk) run_trunk || rc=1 ;;
tcp) run_tcp || rc=1 ;;
media) run_media || rc=1 ;;
state) run_state || rc=1 ;;
all) run_calls || rc=1; [ $rc = 0 ] && { run_trunk || rc=1; }; [ $rc = 0 ] && { run_tcp || rc=1; }
	[ $rc = 0 ] && { run_media || rc=1; }
	[ $rc = 0 ] && { run_state || rc=1; } ;;
esac

doc_args=()
[ "$BENCH_DOC" = 1 ] && doc_args=(--doc "$B_REPO/docs/performance.md")
"$B_PY" "$HERE/report.py" --results "$RES" "${doc_args[@]}" || rc=1
[ "$BENCH_DOC" = 1 ] && echo "# tables written to docs/performance.md"
if [ "$B_KEEP_TMP" = 1 ]; then cp -r "$RES" "$B_TMP/results-copy" 2>/dev/null; fi
exit $rc
