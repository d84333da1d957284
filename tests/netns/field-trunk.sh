#!/bin/bash
# tests/netns/field-trunk.sh: a PBX trunk through sipalgd with the shipped limits
# (issue 8 point 3; make field-trunk). Root; about 30 s.
#
#   TRUNK_CALLS=2000 TRUNK_RATE=1000 LAB_ID=4243 tests/netns/field-trunk.sh
#
# One LAN address (192.168.77.10:5060, a sipp UAC standing for a PBX) places
# TRUNK_CALLS calls at TRUNK_RATE calls/s to a sipp UAS on the WAN, each held
# 1 s with its own media port: about TRUNK_RATE calls up at once (far more than
# limits.pinholes_per_phone, 64) and more new requests than
# limits.messages_per_second_per_source (500) from that one source. The config
# is tests/netns/lab.yaml with no limits section (the shipped limits) and log
# level info (a debug line per message would be the bottleneck).
# Asserted: every call completed (0 failed), every INVITE arrived rewritten
# (Via, Contact, o=, c= public, m= port non-zero, nothing private left), every
# stream got a pinhole (pinholes_opened = calls), nothing refused for a limit
# (drop_limit, refused_*). Retransmissions and rate drops are reported, not
# asserted: they depend on how busy the machine is (the daemon falling behind
# is the one case where the per-source rate is meant to apply).
# Prints `N passed, N failed` last; exit 1 if anything failed.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
LAB_REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
ALG=sipalgd
LAB_ID=${LAB_ID:-$(( 1000 + $$ % 4000 ))}
CALLS=${TRUNK_CALLS:-2000}
RATE=${TRUNK_RATE:-1000}
for v in "$CALLS" "$RATE"; do
	case "$v" in ''|*[!0-9]*|0) echo "TRUNK_CALLS / TRUNK_RATE must be positive numbers" >&2; exit 2 ;; esac
done
[ "$CALLS" -le 20000 ] && [ "$RATE" -le 5000 ] || { echo "at most 20000 calls, 5000 calls/s" >&2; exit 2; }
command -v sipp >/dev/null || { echo "sipp missing (make deps)" >&2; exit 2; }

lab_init
trap lab_cleanup EXIT
trap 'echo "# interrupted" >&2; exit 130' INT TERM
passed=0 failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
nok() { echo "FAIL - $1: $2"; failed=$((failed + 1)); LAB_KEEP_TMP=1; }
echo "# field-trunk: id=$LAB_ID tmp=$LAB_TMP calls=$CALLS rate=$RATE/s"

lab_topology
# The lab's config as it is, except the log level; no limits section at all.
grep -q '^limits' "$LAB_REPO/tests/netns/lab.yaml" && { echo "lab.yaml overrides limits: not the shipped config" >&2; exit 2; }
LAB_CONF_TEMPLATE_SRC=$LAB_TMP/trunk-lab.yaml
sed 's/level: debug/level: info/' "$LAB_REPO/tests/netns/lab.yaml" >"$LAB_CONF_TEMPLATE_SRC"
# lab_sipalgd_start reads tests/netns/lab.yaml: give it ours through a copy of the repo path.
LAB_REPO_REAL=$LAB_REPO
mkdir -p "$LAB_TMP/repo/tests/netns"
cp "$LAB_CONF_TEMPLATE_SRC" "$LAB_TMP/repo/tests/netns/lab.yaml"
LAB_SIPALGD_BIN=${LAB_SIPALGD_BIN:-$LAB_REPO_REAL/sipalgd} LAB_SIPALGCTL_BIN=${LAB_SIPALGCTL_BIN:-$LAB_REPO_REAL/sipalgctl}
export LAB_SIPALGD_BIN LAB_SIPALGCTL_BIN
LAB_REPO=$LAB_TMP/repo
if ! lab_sipalgd_start; then
	LAB_REPO=$LAB_REPO_REAL
	nok sipalgd_started "see the log above"; echo "$passed passed, $failed failed"; exit 1
fi
LAB_REPO=$LAB_REPO_REAL
ctl() { lab_nsx "$NS_RTR" timeout 5 "$LAB_CTL" -s "$LAB_SOCK" "$@"; }

PORTS=$LAB_TMP/media-ports.csv
{ echo SEQUENTIAL; seq 10000 2 59998 | sed 's/$/;/'; } >"$PORTS"
tmo=$(( CALLS / RATE + 40 ))
(cd "$LAB_TMP" && exec timeout "$tmo" ip netns exec "$NS_WAN" sipp -sf "$LAB_REPO/tests/bench/uas.xml" \
	-i 203.0.113.10 -p 5060 -inf "$PORTS" -m "$CALLS" -nostdin -buff_size 4194304 \
	-trace_stat -stf "$LAB_TMP/uas.csv" -fd 1 -trace_logs -log_file "$LAB_TMP/uas_logs.log" \
	>"$LAB_TMP/uas.out" 2>&1) &
uas=$!; LAB_PIDS="$LAB_PIDS $uas"
sleep 0.5
(cd "$LAB_TMP" && exec timeout "$tmo" ip netns exec "$NS_LAN" sipp -sf "$LAB_REPO/tests/bench/uac.xml" \
	-i 192.168.77.10 -p 5060 -inf "$PORTS" -s bob -r "$RATE" -rp 1000 -m "$CALLS" -d 1000 \
	-timeout "$(( tmo - 5 ))s" -timeout_error -nostdin -buff_size 4194304 \
	-cid_str '%u-%p@trunk.invalid' -trace_stat -stf "$LAB_TMP/uac.csv" -fd 1 \
	-trace_err -error_file "$LAB_TMP/uac_err.log" 203.0.113.10:5060 >"$LAB_TMP/uac.out" 2>&1) &
uac=$!; LAB_PIDS="$LAB_PIDS $uac"
# gauges while the load runs (bounded: tmo seconds)
pmax=0 dmax=0 i=0
while kill -0 "$uac" 2>/dev/null && [ $i -lt $(( tmo * 4 )) ]; do
	c=$(ctl counters 2>/dev/null)
	p=$(echo "$c" | awk '$1 == "pinholes" {print $2}'); d=$(echo "$c" | awk '$1 == "dialogs" {print $2}')
	[ "${p:-0}" -gt "$pmax" ] && pmax=$p
	[ "${d:-0}" -gt "$dmax" ] && dmax=$d
	sleep 0.25; i=$((i + 1))
done
wait "$uac"; uac_rc=$?
for i in $(seq 1 40); do kill -0 "$uas" 2>/dev/null || break; sleep 0.25; done
kill -TERM "$uas" 2>/dev/null; wait "$uas" 2>/dev/null
[ -f "$LAB_TMP/uas_logs.log" ] || mv "$LAB_TMP"/uas_*_logs.log "$LAB_TMP/uas_logs.log" 2>/dev/null
ctl counters >"$LAB_TMP/counters.txt" 2>&1
cnt() { awk -v k="$1" '$1 == k {print $2}' "$LAB_TMP/counters.txt"; }
# sipp's last statistics line (cumulative columns)
stat() { # stat FILE COLUMN
	awk -F';' -v col="$2" 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == col) c = i; next} c {v = $c} END {print v + 0}' "$1"
}
ok_calls=$(stat "$LAB_TMP/uac.csv" "SuccessfulCall(C)")
failed_calls=$(stat "$LAB_TMP/uac.csv" "FailedCall(C)")
retrans=$(( $(stat "$LAB_TMP/uac.csv" "Retransmissions(C)") + $(stat "$LAB_TMP/uas.csv" "Retransmissions(C)") ))
# INVITEs the UAS saw rewritten: first arrival per Call-ID, every check filled, nothing private
read -r seen rewritten < <(awk -F'|' '/RW\|/ {
	sub(/.*RW\|/, "RW|"); split($0, f, "|"); cid = f[2]
	if (cid in s) next
	s[cid] = 1; n++
	if (f[3] != "" && f[4] != "" && f[5] != "" && f[6] != "" && f[7] != "" && f[8] != "" && f[9] == "") r++
} END {print n + 0, r + 0}' "$LAB_TMP/uas_logs.log" 2>/dev/null)
echo "# calls ok $ok_calls/$CALLS, failed $failed_calls, retransmissions $retrans (uac exit $uac_rc);" \
	"INVITEs rewritten $rewritten/$seen; pinholes_opened $(cnt pinholes_opened), max live pinholes $pmax," \
	"max dialogs $dmax; drop_rate $(cnt drop_rate), queue_behind $(cnt queue_behind), queue_enobufs $(cnt queue_enobufs)"

[ "$ok_calls" = "$CALLS" ] && [ "$failed_calls" = 0 ] && ok "every_call_completed" ||
	nok every_call_completed "$ok_calls of $CALLS ok, $failed_calls failed (uac exit $uac_rc)"
[ "$seen" = "$CALLS" ] && [ "$rewritten" = "$CALLS" ] && ok "every_invite_rewritten" ||
	nok every_invite_rewritten "$rewritten of $seen INVITEs rewritten (want $CALLS)"
[ "$(cnt pinholes_opened)" = "$CALLS" ] && ok "every_stream_pinholed" ||
	nok every_stream_pinholed "pinholes_opened $(cnt pinholes_opened), want $CALLS"
[ "$pmax" -gt 64 ] && ok "more_than_64_pinholes_from_one_phone" ||
	nok more_than_64_pinholes_from_one_phone "max live pinholes $pmax: the load does not test the per-phone bound"
refused=$(( $(cnt drop_limit) + $(cnt refused_pinholes_full) + $(cnt refused_pinholes_share) + \
	$(cnt refused_dialogs_full) + $(cnt refused_dialogs_share) + $(cnt pinholes_refused) + $(cnt drop_no_binding) ))
[ "$refused" = 0 ] && ok "nothing_refused_for_a_limit" ||
	nok nothing_refused_for_a_limit "$(grep -E '^(drop_limit|refused_|pinholes_refused|drop_no_binding)' "$LAB_TMP/counters.txt" | tr '\n' ' ')"
if lab_sipalgd_stop; then ok "sipalgd_stopped_cleanly"; else nok sipalgd_stopped_cleanly "see above"; fi
[ "$failed" = 0 ] || { echo "# sipalgd log (last lines):"; tail -n 20 "$LAB_DAEMON_LOG" | sed 's/^/  | /'; }
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
