#!/bin/bash
# tests/netns/demo.sh: one call through sipalgd, shown message by message.
#
#   tests/netns/demo.sh             # ALG=sipalgd (default); ALG=kernel / ALG=none to compare
#
# Builds the lab (lib.sh), starts the router mode, places ONE call (flow call_3_1 in
# verbose mode): the INVITE as phone1 sent it and as it arrived at the WAN side, the
# 200 OK as the WAN side sent it and as phone1 received it, and the RTP counts each way
# (remote first, then the phone's symmetric media, RTCP, the closing check). Cleans up.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
LAB_REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

lab_init
trap lab_cleanup EXIT
trap 'echo "# interrupted" >&2; exit 130' INT TERM

echo "# sipalgd lab demo: ALG=$ALG, namespaces $NS_LAN / $NS_RTR / $NS_WAN"
echo "#   phone1 192.168.77.10:5060 (LAN)  --  router 192.168.77.1 | 203.0.113.1  --  bob 203.0.113.10:5060 (WAN)"
lab_topology
if ! lab_router_start; then LAB_KEEP_TMP=1; exit 1; fi

"$PY" "$HERE/flows.py" --id "$LAB_ID" --verbose call_3_1 &
pypid=$!
LAB_PIDS="$LAB_PIDS $pypid"
wait $pypid
rc=$?
if [ "$ALG" = sipalgd ]; then
	echo "# sipalgctl counters at the end of the call:"
	ip netns exec "$NS_RTR" timeout 2 "$LAB_REPO/sipalgctl" -s "$LAB_SOCK" counters 2>&1 | sed 's/^/    /'
	lab_router_stop || rc=1
fi
[ $rc = 0 ] || LAB_KEEP_TMP=1
exit $rc
