#!/bin/bash
# tests/netns/hostile.sh: hostile input against the real sipalgd in the netns lab.
#
#   tests/netns/hostile.sh                       # every part (< 5 minutes)
#   PARTS=malformed,slip tests/netns/hostile.sh  # some parts (malformed torture slip flood tcp v6)
#   HOSTILE_V6=0 tests/netns/hostile.sh          # every part but v6 (malformed IPv6 SIP, the lab's
#                                                # IPv6 side is built only with it; see hostile_v6.py)
#   LAB_ID=4242 tests/netns/hostile.sh           # choose the namespace id
#
# Builds salg-{lan,rtr,wan}-ID with lib.sh, starts sipalgd with its own config
# (the DEFAULT media policy: no media.allow_other_lan_hosts key; small limits for
# the flood), runs hostile.py (corpus and expectations: tests/data/malformed/), stops
# sipalgd and checks it exits 0 leaving no rules. Prints `N passed, N failed` last;
# exit 1 if anything failed. Logs of a failed run stay in /tmp/salg-lab.ID.*.
# shellcheck disable=SC2086
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
LAB_REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
. "$HERE/hostile-lib.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
ALG=sipalgd
LAB_ID=${LAB_ID:-$(( 5000 + $$ % 4000 ))}
# v6 before flood: the flood leaves the small tables of this config full of early
# dialogs for 150 s, and v6 ends with an ordinary call that needs a pinhole
if [ "${HOSTILE_V6:-1}" = 1 ]; then PARTS=${PARTS:-malformed,torture,slip,v6,flood,tcp}
else PARTS=${PARTS:-malformed,torture,slip,flood,tcp}; fi
case ",$PARTS," in *,v6,*) export LAB_V6=1 ;; esac
HX_BUDGET=${HX_BUDGET:-290}

lab_init
trap lab_cleanup EXIT
trap 'echo "# interrupted" >&2; exit 130' INT TERM
start=$(date +%s)
echo "# sipalgd hostile lab: id=$LAB_ID tmp=$LAB_TMP parts=$PARTS"

lab_watchdog hostile.sh "$HX_BUDGET"

lab_topology
HX_LIM_DIALOGS=2000 HX_LIM_BINDINGS=4000 HX_LIM_PINHOLES=4000
export HX_LIM_DIALOGS HX_LIM_BINDINGS HX_LIM_PINHOLES
hx_conf "$LAB_TMP/hostile.yaml" \
	"limits: { dialogs: $HX_LIM_DIALOGS, bindings: $HX_LIM_BINDINGS, pinholes: $HX_LIM_PINHOLES }" \
	"log: { level: info }"
if ! hx_daemon_start "$LAB_TMP/hostile.yaml"; then
	LAB_KEEP_TMP=1
	hx_fail sipalgd_started "see the log above"
	hx_summary
	exit 1
fi
export LAB_TMP

: >"$LAB_TMP/hostile.out"
"$PY" "$HERE/hostile.py" --id "$LAB_ID" --parts "$PARTS" >"$LAB_TMP/hostile.out" 2>&1 &
pypid=$!
LAB_PIDS="$LAB_PIDS $pypid"
tail -n +1 --pid=$pypid -f "$LAB_TMP/hostile.out" | grep -v -E '^[0-9]+ passed, [0-9]+ failed$' &
tailpid=$!
LAB_PIDS="$LAB_PIDS $tailpid"
wait $pypid
wait $tailpid 2>/dev/null
hx_take_py "$LAB_TMP/hostile.out"

# the daemon must still be the one we started, and healthy
if hx_ctl status >"$LAB_TMP/status.txt" 2>&1; then hx_ok "final_status_healthy"
else hx_fail "final_status_healthy" "$(cat "$LAB_TMP/status.txt")"; fi
if [ -n "${LAB_DAEMON_PID:-}" ] && [ -r "/proc/$LAB_DAEMON_PID/status" ]; then
	echo "# sipalgd VmRSS at the end: $(awk '/^VmRSS/{print $2, $3}' "/proc/$LAB_DAEMON_PID/status")"
fi
hx_daemon_stop sipalgd_clean_exit
echo "# counters at the end:"; tr '\n' ' ' <"$LAB_TMP/counters-final.txt" | fold -s -w 160 | sed 's/^/#   /'; echo
if grep -qiE 'AddressSanitizer|runtime error|segfault|assert' "$LAB_DAEMON_LOG"; then
	hx_fail "daemon_log_clean" "$(grep -iE 'AddressSanitizer|runtime error|segfault|assert' "$LAB_DAEMON_LOG" | head -3)"
fi
echo "# hostile lab: $(( $(date +%s) - start ))s"
if ! hx_summary; then LAB_KEEP_TMP=1; exit 1; fi
exit 0
