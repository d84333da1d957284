#!/bin/sh
# Kernel test of nftmap/ct/nfq/rules: builds tests/kernel/kernel_test.c with
# the four kernel-facing modules and runs it in a private three-namespace lab
#   A (10.0.1.2) --veth-- R: lan0 10.0.1.1 | wan0 192.0.2.1 --veth-- B (192.0.2.2)
#   and IPv6 2001:db8:1::2 -- 2001:db8:1::1 | 2001:db8:2::1 -- 2001:db8:2::2 (routed)
# R forwards and masquerades on wan0. Needs root. Everything it creates lives
# in namespaces named salgk-*-$$ that are removed on exit, success or not.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ID=$$
NA=salgk-a-$ID
NR=salgk-r-$ID
NB=salgk-b-$ID
BUILD=$(mktemp -d /tmp/salgk-build.XXXXXX)

TPID=
cleanup() {
	set +e
	# a test still running (we were interrupted) goes first
	if [ -n "$TPID" ]; then
		kill "$TPID" 2>/dev/null
		wait "$TPID" 2>/dev/null
	fi
	for ns in "$NA" "$NR" "$NB"; do
		ip netns del "$ns" 2>/dev/null || true
	done
	rm -rf "$BUILD"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

[ "$(id -u)" = 0 ] || { echo "run.sh: needs root" >&2; exit 2; }

PKGS="libnetfilter_queue libmnl libnftnl libnftables libnetfilter_conntrack yaml-0.1"
CC=${CC:-cc}
# shellcheck disable=SC2046
$CC -std=gnu11 -g -O1 -Wall -Wextra -Wshadow -D_GNU_SOURCE -I"$ROOT/src" \
	$(pkg-config --cflags $PKGS) -o "$BUILD/kernel_test" \
	"$ROOT/tests/kernel/kernel_test.c" \
	"$ROOT/src/nftmap.c" "$ROOT/src/ct.c" "$ROOT/src/nfq.c" "$ROOT/src/rules.c" "$ROOT/src/nftcmd.c" "$ROOT/src/mem.c" \
	"$ROOT/src/log.c" "$ROOT/src/stats.c" "$ROOT/src/conf.c" "$ROOT/src/addr.c" "$ROOT/src/siphash.c" \
	$(pkg-config --libs $PKGS)

ip netns add "$NA"
ip netns add "$NR"
ip netns add "$NB"
ip link add name lan0 netns "$NR" type veth peer name eth0 netns "$NA"
ip link add name wan0 netns "$NR" type veth peer name eth0 netns "$NB"
for ns in "$NA" "$NR" "$NB"; do ip -n "$ns" link set lo up; done
ip -n "$NA" addr add 10.0.1.2/24 dev eth0
ip -n "$NA" link set eth0 up
ip -n "$NA" route add default via 10.0.1.1
ip -n "$NR" addr add 10.0.1.1/24 dev lan0
ip -n "$NR" addr add 192.0.2.1/24 dev wan0
ip -n "$NR" link set lan0 up
ip -n "$NR" link set wan0 up
ip -n "$NB" addr add 192.0.2.2/24 dev eth0
ip -n "$NB" link set eth0 up
ip netns exec "$NR" sysctl -qw net.ipv4.ip_forward=1
# IPv6, routed (no NAT66): the diversion's ip6tables copy must queue it and
# fail closed like the IPv4 one.
ip -n "$NA" addr add 2001:db8:1::2/64 dev eth0 nodad
ip -n "$NA" -6 route add default via 2001:db8:1::1
ip -n "$NR" addr add 2001:db8:1::1/64 dev lan0 nodad
ip -n "$NR" addr add 2001:db8:2::1/64 dev wan0 nodad
ip -n "$NB" addr add 2001:db8:2::2/64 dev eth0 nodad
ip -n "$NB" -6 route add default via 2001:db8:2::1
ip netns exec "$NR" sysctl -qw net.ipv6.conf.all.forwarding=1
# The operator's own NAT: plain masquerade on the WAN side.
ip netns exec "$NR" nft -f - <<'NFT'
table ip salgktest {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan0" masquerade
	}
}
NFT

# In the background and waited for, so a signal reaches our trap at once.
SALGK_NS_A=$NA SALGK_NS_B=$NB SALGK_ROOT=$ROOT ip netns exec "$NR" timeout 300 "$BUILD/kernel_test" &
TPID=$!
rc=0
wait "$TPID" || rc=$?
TPID=
exit "$rc"
