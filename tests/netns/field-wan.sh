#!/bin/bash
# tests/netns/field-wan.sh: the WAN address changes under running calls (issue 8, point 1),
# against the real daemon in the netns lab. Parts (in field_wan.py):
#   (a) 203.0.113.1 removed, 203.0.113.2 added: change seen within 1 s; new REGISTER/INVITE
#       carry .2; inbound call to the re-registered phone; RTP both ways; no conntrack entry
#       and no nft element of .1 left
#   (b) calls in progress re-INVITE and have media both ways again; one whose Call-ID names
#       the phone keeps the Call-ID it began with at the WAN side
#   (c) the WAN veth deleted and re-created with the same name: same checks
#   (d) no address (a route kept): LAN SIP dropped and counted, nothing private on the wire
#   (e) SIGHUP with wan.public_address set, then cleared
# Prints `N passed, N failed` last; exit 1 on any failure. Bounded: about 30 s.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
LAB_REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
ALG=sipalgd
LAB_ID=${LAB_ID:-$(( 1000 + $$ % 4000 ))}
lab_init
trap lab_cleanup EXIT
trap 'echo "# interrupted" >&2; exit 130' INT TERM
echo "# sipalgd field-wan lab: id=$LAB_ID tmp=$LAB_TMP"
lab_topology
lab_router_start || exit 1
export LAB_CONF LAB_DAEMON_PID
timeout 120 "$PY" "$HERE/field_wan.py"
rc=$?
grep -E "public address|WAN wan" "$LAB_DAEMON_LOG" | sed 's/^/# log: /'
lab_router_stop || rc=1
[ $rc = 0 ] || { LAB_KEEP_TMP=1; }
exit $rc
