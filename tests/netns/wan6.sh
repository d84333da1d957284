#!/bin/bash
# tests/netns/wan6.sh: the daemon follows the WAN interface's IPv6 address (wan.masquerade6,
# issue 13 point 1), against the real daemon and real rtnetlink in the netns lab (LAB_V6=1:
# wan starts with 2001:db8:113::1/64 nodad). Steps, each checked in `sipalgctl status`
# ("public IPv6: ADDR|none"), --json (public_ipv6) and the wan6_address_changes counter:
#   (a) at start: 2001:db8:113::1
#   (b) a lower global address added: the current one is kept (synchronised by an IPv4
#       change, whose scan must also have seen the IPv6 address)
#   (c) the current one deleted: the other follows within 2 s, logged at info
#   (d) only a deprecated (preferred_lft 0) and a lan.networks address left: none
#   (e) a privacy (temporary) address, made by the kernel from an mngtmpaddr address with
#       use_tempaddr=2 (`ip addr add ... temporary` is refused): the mngtmpaddr one is chosen,
#       never the temporary one (lower by construction; that check is skipped if the kernel
#       made none), nor one whose duplicate address detection failed
#   (f) every global address flushed: none, json null
# Prints `N passed, N failed` last; exit 1 on any failure. Bounded: about 10 s.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
LAB_REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
ALG=sipalgd
LAB_ID=${LAB_ID:-$(( 1000 + $$ % 4000 ))}
lab_init
trap lab_cleanup EXIT
trap 'echo "# interrupted" >&2; exit 130' INT TERM
echo "# sipalgd wan6 lab: id=$LAB_ID tmp=$LAB_TMP"
LAB_V6=1 lab_topology
# The lab's config with wan.masquerade6 naming the routed LAN prefix (nothing is translated
# in this test: it only watches what the daemon takes as the WAN's IPv6 address).
LAB_CONF_TEMPLATE=$LAB_TMP/wan6.yaml
cat >"$LAB_CONF_TEMPLATE" <<'EOF'
wan: { interface: wan, masquerade6: [2001:db8:77::/64] }
lan: { networks: [192.168.77.0/24, 2001:db8:77::/64] }
sip: { ports: [5060] }
queue: { number: 7 }
paths: { nft_table: sipalgd_lab, control_socket: @SOCK@, pid_file: @PID@ }
log: { level: info }
EOF
lab_router_start || exit 1

PASS=0 FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok - $*"; }
bad() { FAIL=$((FAIL + 1)); echo "not ok - $*"; }
rtr() { ip netns exec "$NS_RTR" "$@"; }
ctl() { rtr timeout 2 "$LAB_CTL" -s "$LAB_SOCK" "$@"; }
pub6() { ctl status | sed -n 's/^public IPv6: //p'; }
pub6_json() { ctl status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["public_ipv6"])'; }
counter() { ctl counters | awk -v k="$1" '$1 == k { print $2 }'; }

# want_pub6 WANT WHAT: status shows WANT within 2 s (an rtnetlink event is read at once; the
# daemon's slow re-scan is 5 s, so a lost event fails here). 40 polls at most.
want_pub6() {
	local want=$1 what=$2 got="" i
	for i in $(seq 1 40); do
		got=$(pub6)
		[ "$got" = "$want" ] && { ok "$what: public IPv6 $want"; return 0; }
		sleep 0.05
	done
	bad "$what: public IPv6 '$got', want '$want'"
	return 1
}
want_changes() {
	local got
	got=$(counter wan6_address_changes)
	if [ "$got" = "$1" ]; then ok "$2: wan6_address_changes $got"; else bad "$2: wan6_address_changes '$got', want $1"; fi
}
want_json() {
	local got
	got=$(pub6_json)
	if [ "$got" = "$1" ]; then ok "$2: --json public_ipv6 $got"; else bad "$2: --json public_ipv6 '$got', want $1"; fi
}

# (a)
want_pub6 2001:db8:113::1 "(a) start"
want_json 2001:db8:113::1 "(a) start"
want_changes 0 "(a) start (the first address is no change)"

# (b) a lower address must not move calls off the current one. Sync: an IPv4 change (a
# primary address of another subnet added, 203.0.113.1 deleted) is seen by a scan made
# after the IPv6 address was added (one dump reads both families).
v4=$(counter wan_address_changes)
rtr ip addr add 2001:db8:112::5/64 dev wan nodad
rtr ip addr add 198.51.100.7/24 dev wan
rtr ip addr del 203.0.113.1/24 dev wan
for i in $(seq 1 40); do [ "$(counter wan_address_changes)" -gt "$v4" ] && break; sleep 0.05; done
if [ "$(counter wan_address_changes)" -gt "$v4" ]; then ok "(b) IPv4 change seen (sync)"; else bad "(b) IPv4 change not seen within 2 s"; fi
want_pub6 2001:db8:113::1 "(b) lower address added, current kept"
want_changes 0 "(b)"

# (c)
rtr ip addr del 2001:db8:113::1/64 dev wan
want_pub6 2001:db8:112::5 "(c) current deleted"
want_changes 1 "(c)"
if grep -q "WAN wan: public IPv6 address 2001:db8:113::1 -> 2001:db8:112::5" "$LAB_DAEMON_LOG"; then
	ok "(c) change logged"
else
	bad "(c) no 'public IPv6 address 2001:db8:113::1 -> 2001:db8:112::5' in the log"
fi

# (d) both lower than the one left, so either would be the pick if it were allowed
rtr ip addr add 2001:db8:111::1/64 dev wan nodad preferred_lft 0
rtr ip addr add 2001:db8:77::99/64 dev wan nodad noprefixroute
if rtr ip -6 addr show dev wan | grep -q "2001:db8:111::1/64.*deprecated"; then
	ok "(d) the kernel marks 2001:db8:111::1 deprecated"
else
	bad "(d) 2001:db8:111::1 is not deprecated: $(rtr ip -6 addr show dev wan | tr '\n' ' ')"
fi
rtr ip addr del 2001:db8:112::5/64 dev wan
want_pub6 none "(d) only deprecated and LAN addresses left"
want_changes 2 "(d)"

# (e) use_tempaddr=2 and an mngtmpaddr address: the kernel adds a temporary address in its
# /64 (addrconf manage_tempaddrs). Its random interface identifier has the u bit cleared
# (RFC 4941), so it sorts below ...:ffff:ffff:ffff:fffe: allowed, it would be the pick.
# Both must exist when the daemon chooses (else the mngtmpaddr one, seen first, would be
# kept): 2001:db8:10f::1 holds the place meanwhile, and its deletion makes the choice.
rtr ip addr add 2001:db8:10f::1/64 dev wan nodad
want_pub6 2001:db8:10f::1 "(e) a place holder"
rtr sysctl -qw net.ipv6.conf.wan.use_tempaddr=2
rtr ip addr add 2001:db8:110::ffff:ffff:ffff:fffe/64 dev wan nodad mngtmpaddr
tmp=""
for i in $(seq 1 20); do
	# settled: out of duplicate address detection (accept_dad=0 makes that a moment)
	tmp=$(rtr ip -6 addr show dev wan temporary | grep -v tentative |
		sed -n 's/.*inet6 \([0-9a-f:]*\)\/64 .*/\1/p' | head -1)
	[ -n "$tmp" ] && break
	sleep 0.05
done
[ -n "$tmp" ] && echo "# temporary address $tmp" ||
	echo "# skip the temporary check: the kernel made no temporary address (use_tempaddr=2, mngtmpaddr)"
# And an address whose duplicate address detection fails (the provider's side has it):
# tentative, then dadfailed, never usable; lower than both.
ip -n "$NS_WAN" addr add 2001:db8:10e::10/64 dev eth0 nodad
rtr sysctl -qw net.ipv6.conf.wan.accept_dad=1
rtr ip addr add 2001:db8:10e::10/64 dev wan
for i in $(seq 1 60); do
	rtr ip -6 addr show dev wan | grep -q "2001:db8:10e::10/64.*dadfailed" && break
	sleep 0.05
done
if rtr ip -6 addr show dev wan | grep -q "2001:db8:10e::10/64.*dadfailed"; then
	ok "(e) 2001:db8:10e::10 failed duplicate address detection"
else
	bad "(e) 2001:db8:10e::10 did not fail DAD within 3 s: $(rtr ip -6 addr show dev wan | tr '\n' ' ')"
fi
rtr ip addr del 2001:db8:10f::1/64 dev wan
want_pub6 2001:db8:110:0:ffff:ffff:ffff:fffe \
	"(e) the mngtmpaddr address, not the temporary ${tmp:-(none made)} nor the dadfailed one"
want_changes 4 "(e)"

# (f)
rtr ip -6 addr flush dev wan scope global
want_pub6 none "(f) every global address flushed"
want_json None "(f)"
want_changes 5 "(f)"

grep -E "IPv6 address|WAN wan" "$LAB_DAEMON_LOG" | sed 's/^/# log: /'
rc=0
lab_router_stop || rc=1
echo "$PASS passed, $FAIL failed"
[ $FAIL = 0 ] || rc=1
[ $rc = 0 ] || LAB_KEEP_TMP=1
exit $rc
