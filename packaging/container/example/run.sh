#!/bin/bash
# packaging/container/example/run.sh: the three-container example of
# docs/container.md (phones / gateway / provider), run and checked:
# `make container-example`. A sipp phone behind the gateway calls a sipp
# provider that fails the call unless the INVITE arrived rewritten to the
# gateway's public address (tests/sipp/uas_check.xml).
#
#   EXAMPLE_NETNS=1  (default) everything podman creates on the host side
#                    (the two bridges, netavark's rules) lives in a network
#                    namespace made for the run and deleted after it;
#                    0: in the host's own, as the doc's commands do.
#   CONTAINER_RUN_FLAGS extra `podman run` flags (default: runc and explicit
#                    ulimits, which this sandbox needs: tests/package/podman-flags.sh)
#   IMAGE            the gateway image (default: build/container/image)
# The phones' and provider's image (sipp, iproute2) is made like the
# gateway's base: mmdebstrap, podman import, no registry.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
OUT=$REPO/build/container
IMAGE=${IMAGE:-$(sed -n 1p "$OUT/image" 2>/dev/null)}
UA_IMAGE=${UA_IMAGE:-localhost/sipalgd-ua:bookworm}
[ -n "$IMAGE" ] || { echo "example: no gateway image (make container)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "example: needs root (rootful podman networks)" >&2; exit 2; }
ID=$$
LAN=salg-ex-lan-$ID WAN=salg-ex-wan-$ID
GW=salg-ex-gw-$ID PROV=salg-ex-provider-$ID PHONE=salg-ex-phone-$ID
NS=""
EX=()
# shellcheck source=tests/package/podman-flags.sh
. "$REPO/tests/package/podman-flags.sh"
CONTAINER_RUN_FLAGS=${CONTAINER_RUN_FLAGS:-$(podman_run_flags)}
t0=$(date +%s)

# shellcheck disable=SC2317 # called by the trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	"${EX[@]}" podman rm -f -t 2 "$PHONE" "$PROV" "$GW" >/dev/null 2>&1
	"${EX[@]}" podman network rm -f "$LAN" "$WAN" >/dev/null 2>&1
	[ -n "$NS" ] && ip netns del "$NS" 2>/dev/null
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${EXAMPLE_NETNS:-1}" = 1 ]; then
	NS=salg-ex-$ID
	ip netns add "$NS" || exit 1
	ip -n "$NS" link set lo up
	# Only the network namespace: podman keeps the host's /sys (cgroups).
	EX=(nsenter --net="/run/netns/$NS")
fi
pm() { "${EX[@]}" podman "$@"; }

# The UA image, once (sipp from Debian's sip-tester, ip for the default route).
if ! podman image exists "$UA_IMAGE"; then
	echo "# example: building $UA_IMAGE (mmdebstrap: sip-tester iproute2)"
	mmdebstrap --quiet --variant=minbase --format=tar \
		--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
		--include=sip-tester,iproute2 \
		--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
		bookworm "$OUT/ua-rootfs.tar" /etc/apt/sources.list.d/debian.sources \
		>"$OUT/ua-mmdebstrap.log" 2>&1 || { tail -n 20 "$OUT/ua-mmdebstrap.log"; exit 1; }
	podman import --quiet "$OUT/ua-rootfs.tar" "$UA_IMAGE" >/dev/null || exit 1
	rm -f "$OUT/ua-rootfs.tar"
fi

set -e
# --- the commands of docs/container.md -------------------------------------
# Two networks; the bridges' own addresses (.254) are not the gateway.
pm network create --internal --disable-dns --subnet 192.168.77.0/24 --gateway 192.168.77.254 "$LAN" >/dev/null
pm network create --internal --disable-dns --subnet 203.0.113.0/24 --gateway 203.0.113.254 "$WAN" >/dev/null

# shellcheck disable=SC2086 # CONTAINER_RUN_FLAGS is a list of flags
pm run -d --name "$GW" $CONTAINER_RUN_FLAGS --no-healthcheck \
	--network "$LAN:ip=192.168.77.1,interface_name=lan" \
	--network "$WAN:ip=203.0.113.1,interface_name=wan" \
	--cap-drop all --cap-add NET_ADMIN,NET_RAW,SYS_NICE \
	--sysctl net.ipv4.ip_forward=1 \
	-v "$HERE/gateway.yaml:/etc/sipalgd/sipalgd.yaml:ro" \
	-v "$HERE/gateway.nft:/etc/sipalgd/gateway.nft:ro" \
	-e SIPALGD_RULESET=/etc/sipalgd/gateway.nft \
	"$IMAGE" >/dev/null

# The provider: a sipp UAS that checks the rewrite, one call.
# shellcheck disable=SC2086
pm run -d --name "$PROV" $CONTAINER_RUN_FLAGS \
	--network "$WAN:ip=203.0.113.10" -v "$REPO/tests/sipp:/sipp:ro" \
	"$UA_IMAGE" sipp -sf /sipp/uas_check.xml -i 203.0.113.10 -p 5060 -m 1 \
	-timeout 25s -timeout_error -nostdin -trace_err -error_file /dev/stderr >/dev/null
set +e

# Wait (bounded) until the daemon answers: it checks its config first.
up=0
for _ in $(seq 1 50); do
	if pm exec "$GW" sipalgctl status >/dev/null 2>&1; then up=1; break; fi
	[ "$(pm inspect --format '{{.State.Running}}' "$GW" 2>/dev/null)" = true ] || break
	sleep 0.2
done
if [ $up != 1 ]; then
	echo "# example: the gateway did not come up; its log:"
	pm logs "$GW" 2>&1 | sed 's/^/  | /'
	exit 1
fi

# The phone: default route via the gateway (the bridge's .254 is not a
# router here), then a sipp UAC call: INVITE with SDP, ACK, BYE.
# shellcheck disable=SC2086
pm run --name "$PHONE" --rm $CONTAINER_RUN_FLAGS --cap-add NET_ADMIN \
	--network "$LAN:ip=192.168.77.10" -v "$REPO/tests/sipp:/sipp:ro" \
	"$UA_IMAGE" sh -c 'ip route replace default via 192.168.77.1 &&
		exec sipp -sf /sipp/uac_call.xml -i 192.168.77.10 -p 5060 -s bob -m 1 \
			-timeout 20s -timeout_error -nostdin -trace_err -error_file /dev/stderr \
			-recv_timeout 4000 -max_retrans 2 203.0.113.10:5060' >"$OUT/example-phone.out" 2>&1
phone_rc=$?
prov_rc=$(timeout 30 "${EX[@]}" podman wait "$PROV" 2>/dev/null || echo timeout)
counters=$(pm exec "$GW" sipalgctl counters 2>&1)
pm stop -t 10 "$GW" >/dev/null 2>&1
gw_rc=$(pm inspect --format '{{.State.ExitCode}}' "$GW" 2>/dev/null)

bad=0
[ "$phone_rc" = 0 ] || { echo "# phone (sipp UAC) exit $phone_rc"; sed 's/^/  | /' "$OUT/example-phone.out" | tail -n 20; bad=1; }
[ "$prov_rc" = 0 ] || { echo "# provider (sipp UAS, checks the rewrite) exit $prov_rc"; pm logs "$PROV" 2>&1 | tail -n 20 | sed 's/^/  | /'; bad=1; }
[ "$gw_rc" = 0 ] || { echo "# gateway exit status $gw_rc after podman stop (want 0)"; bad=1; }
cval() { printf '%s\n' "$counters" | awk -v k="$1" '$1 == k { print $2 }'; }
opened=$(cval pinholes_opened) closed=$(cval pinholes_closed)
echo "# gateway: pkts_rewritten $(cval pkts_rewritten), dialogs_closed $(cval dialogs_closed), pinholes_opened $opened, pinholes_closed $closed"
# The call's media pinholes must have opened and, after the BYE, closed.
if [ "${opened:-0}" -lt 1 ] || [ "$closed" != "$opened" ]; then
	echo "# want pinholes_opened >= 1 and pinholes_closed == pinholes_opened"
	bad=1
fi
if [ $bad != 0 ]; then
	echo "# gateway log:"
	pm logs "$GW" 2>&1 | tail -n 40 | sed 's/^/  | /'
fi
echo "# container-example: $([ $bad = 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - t0 )) s"
exit $bad
