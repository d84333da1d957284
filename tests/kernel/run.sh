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
DPID=
cleanup() {
	set +e
	# a test or daemon still running (we were interrupted) goes first
	for p in "$TPID" "$DPID"; do
		[ -n "$p" ] || continue
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
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

# The daemon itself (fwwatch + nftmap), with wan.masquerade6 and without:
# the ip6 NAT table exists only with it, a firewall reload that removes or
# empties it is repaired, a clean stop removes both tables.
# (kernel_test above took R's IPv6 addresses; these tables need none.)
pass=0 fail=0
ok() { echo "PASS: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
nsr() { ip netns exec "$NR" "$@"; }
# wait_for SECONDS CMD...: CMD succeeds within SECONDS (polled every 0.1 s)
wait_for() {
	n=$(($1 * 10)); shift
	while [ "$n" -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1; n=$((n - 1))
	done
	return 1
}
# the NAT rules of table ip6 salgk6, pre and post: "2 1" when whole
rules6() {
	echo "$(nsr nft list chain ip6 salgk6 pre 2>/dev/null | grep -c ' map @in_')" \
	     "$(nsr nft list chain ip6 salgk6 post 2>/dev/null | grep -c ' map @out6')"
}
rules6_whole() { [ "$(rules6)" = "2 1" ]; }
daemon() { # daemon WAN-EXTRA: start, wait until it answers
	cat >"$BUILD/d.yaml" <<EOF
wan: { interface: wan0$1 }
lan: { networks: [10.0.1.0/24, 2001:db8:1::/64] }
queue: { number: 9, fastpath: off, guard: off }
sip: { tcp: false }
paths: { nft_table: salgk6, control_socket: $BUILD/d.sock, pid_file: $BUILD/d.pid, state_file: $BUILD/d.state }
EOF
	# not through nsr (a function: & would fork a shell, and $! be its pid)
	ip netns exec "$NR" "$ROOT/sipalgd" -c "$BUILD/d.yaml" >"$BUILD/d.log" 2>&1 </dev/null &
	DPID=$!
	wait_for 10 nsr "$ROOT/sipalgctl" -s "$BUILD/d.sock" status
}
stop() { # a clean stop within 5 s, status 0 (a zombie answers kill -0: a watchdog instead)
	kill -TERM "$DPID"
	(sleep 5; kill -KILL "$DPID" 2>/dev/null) &
	wd=$!
	drc=0; wait "$DPID" || drc=$?; DPID=
	kill "$wd" 2>/dev/null; wait "$wd" 2>/dev/null
	return "$drc"
}
if [ ! -x "$ROOT/sipalgd" ] || [ ! -x "$ROOT/sipalgctl" ]; then
	bad "sipalgd/sipalgctl not built (make first)"
else
	if daemon ", masquerade6: [2001:db8:1::/64]"; then
		if nsr nft list table ip salgk6 >/dev/null 2>&1 && rules6_whole; then
			ok "masquerade6: table ip salgk6 and table ip6 salgk6 (2 + 1 rules)"
		else bad "masquerade6: tables missing ($(nsr nft list tables | tr '\n' ' '))"; fi
		nsr nft delete table ip6 salgk6 || true
		if wait_for 5 rules6_whole; then ok "table ip6 salgk6 deleted by someone else: put back"
		else bad "table ip6 salgk6 not put back within 5 s ($(rules6))"; fi
		nsr nft flush chain ip6 salgk6 pre || true
		if wait_for 5 rules6_whole; then ok "chain ip6 salgk6 pre emptied: its rules put back"
		else bad "chain ip6 salgk6 pre not repaired within 5 s ($(rules6))"; fi
		r=$(nsr "$ROOT/sipalgctl" -s "$BUILD/d.sock" counters | awk '$1 == "rules_restored" { print $2 }')
		if [ "$r" = 2 ]; then ok "rules_restored 2"; else bad "rules_restored ${r:-?}, want 2"; fi
		if stop && ! nsr nft list table ip6 salgk6 >/dev/null 2>&1 &&
			! nsr nft list table ip salgk6 >/dev/null 2>&1; then
			ok "a clean stop removes both tables"
		else bad "stop: exit status $drc, or a table left"; fi
	else
		bad "sipalgd with masquerade6 did not start"
	fi
	[ "$fail" = 0 ] || sed 's/^/  | /' "$BUILD/d.log"
	if daemon ""; then
		if nsr nft list table ip salgk6 >/dev/null 2>&1 && ! nsr nft list table ip6 salgk6 >/dev/null 2>&1; then
			ok "without masquerade6: table ip salgk6 only"
		else bad "without masquerade6: $(nsr nft list tables | tr '\n' ' ')"; fi
		stop || bad "stop without masquerade6: exit status $drc"
	else
		bad "sipalgd without masquerade6 did not start"
		sed 's/^/  | /' "$BUILD/d.log"
	fi
fi
echo "daemon: $pass passed, $fail failed"
[ "$fail" = 0 ] || rc=1
exit "$rc"
