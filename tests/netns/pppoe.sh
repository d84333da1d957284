#!/bin/bash
# The WAN as most home routers in Europe have it: a PPPoE session. The WAN
# device (pppoe-wan) has no Ethernet header, MTU 1492, exists only while the
# session is up and gets its address from the ISP (IPCP), a different one
# after a reconnect. Router built as README "On a router" says (nftables
# policy drop, established, lan->wan, ct status dnat; masquerade out of
# pppoe-wan), sipalgd with the shipped conf/sipalgd.yaml edited only in
# wan.interface and lan.networks.
#
# This kernel has no CONFIG_PPP (no /dev/ppp): pppd cannot run. The session
# is tests/netns/pppoe_link.py: a tun device named pppoe-wan in the router
# (IP packets, no link header), carried to the ISP namespace, created at
# "LCP up" and gone when the process is killed, as pppd's ppp device is.
# It also records every packet that leaves the router (the wire).
#
# Checks (pppoe_ua.py does the SIP and RTP): the daemon started before the
# session says the WAN is missing; session 1 (203.0.113.7): status names
# the address and the guard on pppoe-wan as a device without link header;
# REGISTER and a call with RTP both ways, a large INVITE fragmented on the
# link (1498 bytes in IP: over PPP's 1492, under Ethernet's 1500) arrives
# rewritten. The session drops: nothing reaches the ISP, the daemon stays up
# and idle (CPU measured). Session 2: the device first, with a default route
# but no address (LCP before IPCP): the daemon drops the phone's SIP
# (drop_no_wan_address); then 203.0.113.42: status follows (new ifindex and
# address), the guard is on the new device; REGISTER and call carry the new
# address; a call kept up across the reconnect re-INVITEs with the new
# address, has media both ways again and ends with BYE.
# On the wire of each session: no phone address anywhere, no source but
# that session's address, nothing of the old address after the reconnect
# (but the kept call's Call-ID, which must not change). At the end no dialog
# or pinhole left, and the one drop counted is the addressless REGISTER;
# SIGTERM: exit 0, our nft table, diversion and guard program gone.
#
# Usage: tests/netns/pppoe.sh   (root; about 10 s)
#   PP_KEEP=1  keep the work directory (daemon log, status, the wires).
#   PP_PAUSE=SECONDS  on failure, wait before cleaning up (explore by hand).
#   PP_FASTPATH=on|auto  queue.fastpath (shipped: off).
set -eu
cd "$(dirname "$0")/../.."
ID=${PP_ID:-$(( $$ % 10000 ))}
P=salg-pp-p-$ID R=salg-pp-r-$ID I=salg-pp-i-$ID
PUB1=203.0.113.7 PUB2=203.0.113.42
WORK=$(mktemp -d /tmp/salg-pp-$ID.XXXXXX)
DPID='' LPID=''

say() { echo "pppoe: $*"; }
fail() { echo "pppoe: FAIL: $*" >&2; [ -z "${PP_PAUSE:-}" ] || sleep "$PP_PAUSE"; exit 1; }
skip() { echo "pppoe: SKIP: $*"; exit 0; }

[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
[ -c /dev/net/tun ] || skip "no /dev/net/tun (CONFIG_TUN): the PPP link cannot be emulated"
command -v python3 >/dev/null || skip "no python3"

cleanup() {
	set +e
	[ -n "$LPID" ] && { kill "$LPID" 2>/dev/null; wait "$LPID" 2>/dev/null; }
	[ -n "$DPID" ] && { kill "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; }
	for n in $P $R $I; do ip netns del "$n" 2>/dev/null; done
	if [ "${PP_KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT INT TERM

make -s >/dev/null

# --- topology: phone - router - (PPP) - ISP with the provider ---------------
for n in $P $R $I; do
	ip netns add "$n"
	ip -n "$n" link set lo up
done
ip link add lan0 netns $R type veth peer name eth0 netns $P
ip -n $R addr add 192.168.60.1/24 dev lan0
ip -n $R link set lan0 up
ip -n $P addr add 192.168.60.10/24 dev eth0
ip -n $P link set eth0 up
ip -n $P route add default via 192.168.60.1
ip -n $I addr add 198.51.100.10/32 dev lo   # the provider, behind the ISP
ip netns exec $R sysctl -qw net.ipv4.ip_forward=1

cat >"$WORK/nftables.conf" <<EOF
flush ruleset
table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		ct state invalid drop
		iif lo accept
		iifname "lan0" accept
		meta l4proto tcp meta mark 0x5f10 accept
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		ct state invalid drop
		iifname "lan0" oifname "pppoe-wan" accept
		ct status dnat accept
	}
}
table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "pppoe-wan" masquerade
	}
}
EOF
ip netns exec $R nft -f "$WORK/nftables.conf"

# --- the shipped configuration, README step 3's two keys ---------------------
sed -e 's/^  interface: eth1$/  interface: pppoe-wan/' \
    -e 's|^    - 192.168.1.0/24$|    - 192.168.60.0/24|' \
    -e "s/^  fastpath: off$/  fastpath: ${PP_FASTPATH:-off}/" \
    -e "s|/run/sipalgd\\.|$WORK/sipalgd.|" \
    conf/sipalgd.yaml >"$WORK/sipalgd.yaml"
grep -q 'interface: pppoe-wan' "$WORK/sipalgd.yaml" || fail "sed: wan.interface"
grep -q '192.168.60.0/24' "$WORK/sipalgd.yaml" || fail "sed: lan.networks"

CTL="ip netns exec $R ./sipalgctl -s $WORK/sipalgd.sock"
UA="python3 tests/netns/pppoe_ua.py --ns-p $P --ns-i $I"

# The session: pppoe_link.py makes pppoe-wan and ppp-isp0, then the
# addresses as IPCP gives them (local, peer), MTU 1492, the default route.
link_up() {   # $1 tap file: LCP up, the device exists, no address yet
	python3 tests/netns/pppoe_link.py up --ns-r $R --ns-i $I --tap "$1" >"$WORK/link.out" 2>&1 &
	LPID=$!
	for _ in $(seq 50); do
		grep -q '^up' "$WORK/link.out" && break
		kill -0 $LPID 2>/dev/null || break
		sleep 0.1
	done
	grep -q '^up' "$WORK/link.out" || { cat "$WORK/link.out" >&2; fail "the PPP link did not come up"; }
	ip -n $R link set pppoe-wan mtu 1492 up
	ip -n $I link set ppp-isp0 mtu 1492 up
}
ipcp_up() {   # $1 the public address IPCP gives, then the default route
	ip -n $R addr add "$1" peer 10.64.0.1 dev pppoe-wan
	ip -n $R route replace default dev pppoe-wan
	ip -n $I addr add 10.64.0.1 peer "$1" dev ppp-isp0
}
session_up() { link_up "$2"; ipcp_up "$1"; }
session_down() {
	kill "$LPID"
	wait "$LPID" 2>/dev/null || true
	LPID=
	! ip -n $R link show pppoe-wan >/dev/null 2>&1 || fail "pppoe-wan still there after the session dropped"
}
# status until it names $1 (the daemon follows within a tick or an event)
status_until() {
	for _ in $(seq 50); do
		$CTL status >"$WORK/status" 2>&1 || true
		grep -q "$1" "$WORK/status" && return 0
		sleep 0.1
	done
	cat "$WORK/status" >&2
	fail "sipalgctl status never said $1"
}
cpu_ticks() { awk '{print $14 + $15}' /proc/$DPID/stat; }
# the ISP's IP ReasmOKs: datagrams it put together from fragments
reasm_ok() {
	ip netns exec $I awk '/^Ip:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "ReasmOKs") c = i; h = 1 } else print $c }' /proc/net/snmp
}
counter() { $CTL counters | awk -v k="$1" '$1 == k {print $2}'; }

# --- the daemon starts before the session (boot) -----------------------------
./sipalgd -n -c "$WORK/sipalgd.yaml" >/dev/null || fail "sipalgd -n"
ip netns exec $R ./sipalgd -c "$WORK/sipalgd.yaml" >"$WORK/daemon.log" 2>&1 &
DPID=$!
for _ in $(seq 50); do
	[ -S "$WORK/sipalgd.sock" ] && break
	kill -0 $DPID 2>/dev/null || break
	sleep 0.1
done
$CTL status >"$WORK/status" 2>&1 && fail "status exits 0 with no pppoe-wan"
grep -q 'missing WAN interface' "$WORK/status" || { cat "$WORK/status" >&2; fail "status does not say the WAN is missing"; }
say "daemon up before the session: $(grep -m1 missing "$WORK/status")"

# --- session 1 ----------------------------------------------------------------
session_up $PUB1 "$WORK/wire1"
status_until "public $PUB1 "
status_until '^guard: pppoe-wan egress (.*, no link header)'   # within a tick of the device
[ "$(ip netns exec $R cat /sys/class/net/pppoe-wan/type)" != 1 ] || fail "pppoe-wan has an Ethernet header"
say "session 1: $(grep -m1 -E '^guard:' "$WORK/status")"
guard1=$(grep -m1 '^guard:' "$WORK/status")
wan1=$(grep -m1 '^wan:' "$WORK/status")
say "session 1: $wan1"
rc=0
$UA register --pub $PUB1 || rc=1
$UA call --pub $PUB1 || rc=1
reasm0=$(reasm_ok)
$UA call --big --pub $PUB1 || rc=1
reasm1=$(reasm_ok)
# a call that stays up across the reconnect (the ISP's forced daily one)
$UA call --keep "$WORK/kept-call" --pub $PUB1 || rc=1
[ $rc = 0 ] || fail "session 1 flows"
[ "$reasm1" -gt "$reasm0" ] || fail "the large INVITE was not fragmented on the link (ReasmOKs $reasm0 -> $reasm1)"
say "large INVITE: the ISP reassembled $((reasm1 - reasm0)) datagram(s)"

# --- the session drops ---------------------------------------------------------
session_down
status_until 'missing WAN interface'
t0=$(cpu_ticks)
$UA down --pub $PUB1 || fail "SIP while the session is down"
sleep 2
t1=$(cpu_ticks)
kill -0 $DPID || fail "the daemon died while the session was down"
# about 3 s down: more than 0.3 s of CPU would be a daemon spinning
[ $((t1 - t0)) -le 30 ] || fail "the daemon used $((t1 - t0)) ticks of CPU in 3 s down"
say "session down: daemon alive, $((t1 - t0)) CPU ticks in ~3 s"

# --- session 2: the device first, its address later (LCP before IPCP) -------------
link_up "$WORK/wire2"
# a route out of it already (as a static default route would be): SIP from
# the phone must be dropped by the daemon, not leave without an address
ip -n $R route add default dev pppoe-wan
status_until 'missing IPv4 address on WAN interface pppoe-wan'
d0=$(counter drop_no_wan_address)
$UA down --pub $PUB1 || fail "SIP while pppoe-wan has no address"
d1=$(counter drop_no_wan_address)
[ "$d1" -gt "$d0" ] || fail "drop_no_wan_address did not count the REGISTER ($d0 -> $d1)"
say "pppoe-wan without address: the REGISTER dropped (drop_no_wan_address $d0 -> $d1)"
ipcp_up $PUB2
status_until "public $PUB2 "
[ "$(grep -m1 '^wan:' "$WORK/status")" != "$wan1" ] || fail "wan: line unchanged"
grep -q "$PUB1" "$WORK/status" && fail "status still names $PUB1"
status_until '^guard: pppoe-wan egress (.*, no link header)'
guard2=$(grep -m1 '^guard:' "$WORK/status")
[ "$guard1" != "$guard2" ] || fail "guard: the same link as before the reconnect ($guard2)"
say "session 2: $(grep -m1 '^wan:' "$WORK/status")"
say "session 2: $guard2"
$UA register --pub $PUB2 || rc=1
$UA call --pub $PUB2 || rc=1
$UA resume --keep "$WORK/kept-call" --pub $PUB2 || rc=1
[ $rc = 0 ] || fail "session 2 flows"

# --- the guard on the PPP device: a rule ahead of the diversion lets SIP
# past the queue unmarked (an operator's ACCEPT, a reload's window); the
# guard, reading IP at offset 0 on pppoe-wan, must drop it at egress
ip netns exec $R iptables -t mangle -I FORWARD 1 -p udp --dport 5060 -j ACCEPT
g0=$(counter guard_dropped)
$UA down --pub $PUB2 || fail "SIP that skipped the queue reached the provider"
g1=$(counter guard_dropped)
ip netns exec $R iptables -t mangle -D FORWARD 1
[ "$g1" -gt "$g0" ] || fail "guard_dropped did not count the unmarked REGISTER ($g0 -> $g1)"
say "guard on pppoe-wan: the REGISTER that skipped the queue dropped (guard_dropped $g0 -> $g1)"

# --- the wire of each session ----------------------------------------------------
python3 tests/netns/pppoe_link.py scan "$WORK/wire1" --forbid 192.168.60. --pub $PUB1 ||
	fail "session 1's wire"
# One exception: the Call-ID of the call kept across the reconnect. It was
# rewritten to the old address at the INVITE and must stay the same for the
# whole dialog (RFC 3261 8.1.1.4, 12.2.1.1): the address in it routes nothing.
kept_cid=$(sed "s/@192\.168\.60\.10\$/@$PUB1/" "$WORK/kept-call")
python3 tests/netns/pppoe_link.py scan "$WORK/wire2" --forbid 192.168.60. --forbid $PUB1 --pub $PUB2 \
	--allow "Call-ID: $kept_cid" ||
	fail "session 2's wire"
kill -0 $DPID || fail "the daemon died"
$CTL counters >"$WORK/counters"
bad=$(grep -E '^(parse_errors|drop_limit|pinholes_refused|queue_enobufs) ' "$WORK/counters" | awk '$2 != 0')
[ -z "$bad" ] || fail "counters: $bad"
# every call ended with BYE: nothing left open; the one drop is the REGISTER
# sent while pppoe-wan had no address
left=$(awk '$1 == "dialogs" || $1 == "pinholes" {printf "%s %s ", $1, $2}' "$WORK/counters")
[ "$left" = "dialogs 0 pinholes 0 " ] || fail "left after the last BYE: $left"
[ "$(awk '$1 == "pkts_dropped" {print $2}' "$WORK/counters")" = "$d1" ] ||
	fail "pkts_dropped is not drop_no_wan_address ($d1): $(grep -E '^(pkts_dropped|drop_)' "$WORK/counters" | awk '$2 != 0')"
# a clean stop (the operator switches the ALG off): exit 0, our table,
# diversion and guard gone from the router
gprog=${guard2##* prog }
bpftool prog show id "$gprog" >/dev/null 2>&1 || fail "status named guard prog $gprog, bpftool has none"
kill "$DPID"
drc=0
wait "$DPID" || drc=$?
DPID=''
[ $drc = 0 ] || fail "sipalgd exited $drc on SIGTERM"
! ip netns exec $R nft list tables | grep -q sipalgd || fail "our nft table left after the stop"
! ip netns exec $R iptables -t mangle -S | grep -qi sipalgd || fail "the diversion left after the stop"
! bpftool prog show id "$gprog" >/dev/null 2>&1 || fail "the guard (prog $gprog) left after the stop"
say "PASS"
