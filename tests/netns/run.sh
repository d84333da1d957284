#!/bin/bash
# tests/netns/run.sh: the sipalgd integration lab.
#
#   tests/netns/run.sh                      # ALG=sipalgd, all flows
#   ALG=kernel tests/netns/run.sh           # baseline: the kernel's nf_conntrack_sip/nf_nat_sip
#   ALG=none tests/netns/run.sh             # plain masquerade (diagnostic: checks must fail)
#   FLOWS="call_3_1 busy_3_9" tests/netns/run.sh
#   VERBOSE=1 ...                           # print messages and RTP counts
#   V6=0 tests/netns/run.sh                 # without the IPv6 side and its flows (v6_*); the default
#                                           # is V6=1 (V6=0 when LAB_ROUTER_RULESET brings another firewall,
#                                           # whose ip6 policy is its own business)
#   LAB_V6_HAND_PINHOLE=1 ...               # the v6 flows create the media conntrack entry by hand
#                                           # (what a correct ALG does): checks the flows themselves
#   LAB_V6_PREFIX=0 FLOWS="v6_call ..." ... # lan.networks without the IPv6 prefix, as shipped:
#                                           # routed IPv6 takes its LAN side from the WAN interface
#
# Builds three namespaces salg-{lan,rtr,wan}-ID (see lib.sh), starts the router mode,
# runs flows.py, and deletes everything on exit (also on failure and ^C).
# Pass/fail:
#   ALG=sipalgd  every flow must pass but those in sipalgd-pending-v6.txt, which must fail (the
#                daemon side of IPv6 is not merged yet), and sipalgd must exit 0 on SIGTERM leaving
#                no rules;
#   ALG=kernel   exactly the flows in kernel-expected-failures.txt must fail;
#   ALG=none     diagnostic only: prints the results, exits 0 if some flow failed.
# Word splitting of flow lists is intended below.
# shellcheck disable=SC2086,SC2116
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
LAB_REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

if [ -n "${LAB_ROUTER_RULESET:-}" ]; then V6=${V6:-0}; else V6=${V6:-1}; fi
[ "$V6" = 1 ] && export LAB_V6=1
lab_init
trap lab_cleanup EXIT
if [ "${LAB_V6_PREFIX:-1}" = 0 ]; then
	lab_conf_no_v6_prefix "${LAB_CONF_TEMPLATE:-$HERE/lab.yaml}" "$LAB_TMP/lab-noprefix.yaml" || exit 1
	export LAB_CONF_TEMPLATE=$LAB_TMP/lab-noprefix.yaml
fi
trap 'echo "# interrupted" >&2; exit 130' INT TERM

echo "# sipalgd netns lab: ALG=$ALG id=$LAB_ID tmp=$LAB_TMP"
start=$(date +%s)
# The checks themselves first: each must reject a damaged message (offline, no namespaces).
if ! "$PY" "$HERE/flows.py" --selftest >"$LAB_TMP/selftest.out" 2>&1; then
	cat "$LAB_TMP/selftest.out"
	echo "# flows.py --selftest failed: the lab's own checks are broken"
	LAB_KEEP_TMP=1
	exit 1
fi
echo "# $(tail -n1 "$LAB_TMP/selftest.out")"
lab_topology    # set -e inside: a failing step exits, the trap cleans up
if ! lab_router_start; then
	LAB_KEEP_TMP=1
	echo "router mode $ALG failed to start" >&2
	exit 1
fi

# The IPv6 side is only worth its flows if IPv6 SIP reaches the daemon: the diversion
# must be in ip6tables (sip.ipv6 defaults to on) and `status` must not say it is off.
v6_divert_rc=0
if [ "$ALG" = sipalgd ] && [ "$V6" = 1 ] && [ -z "${LAB_SIPALGD_WRAP:-}" ]; then
	# (queue.divert: nft, as fw4.sh sets where the kernel has the queue statement: a table
	# ip6 <nft_table>_divert instead)
	if { lab_nsx "$NS_RTR" ip6tables -w -t mangle -S FORWARD 2>/dev/null | grep -q -- '-p udp -j SIPALGD' ||
		lab_nsx "$NS_RTR" nft list tables ip6 2>/dev/null | grep -q '_divert$'; } &&
		! lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" status 2>&1 | grep -q '^ipv6 diversion: off'; then
		echo "# IPv6 SIP diverted: ip6tables mangle FORWARD -> SIPALGD_LAB, or nft ip6 *_divert"
	else
		echo "# IPv6 SIP NOT diverted (ip6tables mangle FORWARD, sipalgctl status):"
		lab_nsx "$NS_RTR" ip6tables -w -t mangle -S 2>&1 | sed 's/^/#   /'
		lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" status 2>&1 | sed 's/^/#   /'
		v6_divert_rc=1
	fi
fi

args=()
case "$ALG" in
kernel) args+=(--expect-fail "$HERE/kernel-expected-failures.txt") ;;
sipalgd)
	# The hand-made pinhole stands in for the missing daemon side: nothing pending then.
	if [ "$V6" = 1 ] && [ "${LAB_V6_HAND_PINHOLE:-0}" != 1 ]; then
		args+=(--expect-fail "$HERE/sipalgd-pending-v6.txt")
	fi ;;
esac
[ "${VERBOSE:-0}" = 1 ] && args+=(--verbose)
[ "$V6" = 1 ] && args+=(--v6)

# shellcheck disable=SC2086
# In the background so that INT/TERM reach the trap at once; the trap kills it by pid.
"$PY" "$HERE/flows.py" --id "$LAB_ID" "${args[@]}" ${FLOWS:-} >"$LAB_TMP/flows.out" 2>&1 &
pypid=$!
LAB_PIDS="$LAB_PIDS $pypid"
tail -n +1 --pid=$pypid -f "$LAB_TMP/flows.out" &
tailpid=$!
LAB_PIDS="$LAB_PIDS $tailpid"
wait $pypid
frc=$?
wait $tailpid
summary=$(tail -n1 "$LAB_TMP/flows.out")
failed_flows=$(sed -n 's/^not ok [0-9]* - \([a-z0-9_]*\):.*/\1/p' "$LAB_TMP/flows.out" | sort)
nfailed=$(printf '%s\n' "$failed_flows" | grep -c .)

rc=0
if ! printf '%s\n' "$summary" | grep -Eq '^[0-9]+ passed, [0-9]+ failed$'; then
	echo "# flows.py did not finish (status $frc, last line: $summary)"
	rc=1
fi

if [ "$ALG" = sipalgd ]; then
	if ! lab_router_stop; then rc=1; fi
	# With a pending list, flows.py's closing line counts flows that did not do what
	# was expected of them (a pending flow that passes counts as a failure too).
	nbad=$(printf '%s\n' "$summary" | sed -n 's/^[0-9]* passed, \([0-9]*\) failed$/\1/p')
	if [ $rc = 0 ] && [ "${nbad:-1}" != 0 ]; then rc=1; fi
	if [ "$v6_divert_rc" != 0 ]; then rc=1; fi
	if [ $rc != 0 ] && [ -n "${LAB_DAEMON_LOG:-}" ] && [ -f "$LAB_DAEMON_LOG" ]; then
		echo "# sipalgd log (last 200 lines):"
		tail -n 200 "$LAB_DAEMON_LOG" | sed 's/^/  | /'
	fi
elif [ "$ALG" = kernel ]; then
	sel=${FLOWS:-$("$PY" "$HERE/flows.py" --list $([ "$V6" = 1 ] && echo --v6) | awk '{print $1}')}
	want=$(grep -v '^[[:space:]]*#' "$HERE/kernel-expected-failures.txt" | awk 'NF{print $1}' | sort)
	want_sel=$(for f in $want; do for s in $sel; do [ "$f" = "$s" ] && echo "$f"; done; done | sort)
	echo "# kernel baseline: expected to fail: $(echo $want_sel)"
	echo "# kernel baseline: failed:           $(echo $failed_flows)"
	if [ "$want_sel" = "$failed_flows" ]; then
		echo "# kernel baseline: exactly the expected flows failed"
	else
		echo "# kernel baseline: MISMATCH"
		echo "#   failed but not expected: $(comm -13 <(printf '%s\n' $want_sel) <(printf '%s\n' $failed_flows) | xargs)"
		echo "#   expected but passed:     $(comm -23 <(printf '%s\n' $want_sel) <(printf '%s\n' $failed_flows) | xargs)"
		rc=1
	fi
else
	if [ "$nfailed" = 0 ]; then
		echo "# ALG=none: nothing failed - the checks cannot tell an ALG from plain NAT"
		rc=1
	else
		echo "# ALG=none: $nfailed flow(s) failed without an ALG, as they should: $(echo $failed_flows)"
	fi
fi
echo "# lab ALG=$ALG: $summary; $(( $(date +%s) - start ))s; $([ $rc = 0 ] && echo PASS || echo FAIL)"
[ $rc = 0 ] || LAB_KEEP_TMP=1
exit $rc
