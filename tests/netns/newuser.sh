#!/bin/bash
# A new user's router, built from README.md ("On a router") and the shipped
# conf/sipalgd.yaml, not from lib.sh: the WAN a bridge (br-wan; this kernel
# has no 802.1Q for eth0.100), the LAN a bridge (br-lan) with two phones on
# it, a second LAN subnet on another interface (lan2), br_netfilter on as
# the machine has it, the firewall written the way a Debian
# admin writes /etc/nftables.conf (inet filter, policy drop in input and
# forward, masquerade in an ip nat table), sipalgd installed with
# `make install DESTDIR=`, phones on SIP ports 5080, 5062 and 5060 and the
# provider on 5060. The calls, RTP and checks are in newuser_ua.py:
# registrations, inbound OPTIONS and INVITE, three calls at once (two
# phones offering the same RTP port), hold/unhold moving the port, hold
# with c=0.0.0.0, RTP counted both ways, a stranger refused, nothing after
# BYE; SIP/TCP from br-lan and lan2 with the registrar's new connection
# back; then sipp -t u1 calls while 200 phones refresh short
# registrations.
#
# Usage: tests/netns/newuser.sh   (root; about 35 s)
#   NU_NO_DNAT_ACCEPT=1  leave out `ct status dnat accept` (README step 1):
#                        the daemon must warn and remote-first RTP fails.
#   NU_NO_TCP_INPUT=1    leave out the input accept for SIP/TCP (step 1):
#                        the registrar's new connections fail.
#   NU_BRNF=1            keep bridge-nf-call-iptables=1: SIP/TCP from
#                        br-lan fails (the daemon's warning says why).
#   NU_PHONES, NU_CALLS  the load step (0 calls: no load step).
#   NU_PAUSE=SECONDS     stop after start-up, to explore by hand.
set -eu
cd "$(dirname "$0")/../.."
ROOT=$PWD
ID=${NU_ID:-$(( $$ % 10000 ))}
P1=salg-nu-p1-$ID P2=salg-nu-p2-$ID P3=salg-nu-p3-$ID
R=salg-nu-r-$ID I=salg-nu-i-$ID
# sip.ports: the provider's port, as README step 3 says (the phones' own
# 5080, 5062, 5090 need no entry); NU_SIP_PORTS="5060, 5062, 5080" lists them.
SIP_PORTS=${NU_SIP_PORTS:-5060}
NU_PHONES=${NU_PHONES:-200}   # the load step: phones re-registering on lan2
NU_CALLS=${NU_CALLS:-200}     # and sipp calls (-t u1) from p1, 20 a second
WORK=$(mktemp -d /tmp/salg-nu-$ID.XXXXXX)
DPID= UASPID=

cleanup() {
	set +e
	if [ -n "$UASPID" ]; then kill "$UASPID" 2>/dev/null; wait "$UASPID" 2>/dev/null; fi
	if [ -n "$DPID" ]; then kill "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; fi
	for n in $P1 $P2 $P3 $R $I; do ip netns del "$n" 2>/dev/null; done
	if [ "${NU_KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT INT TERM

say() { echo "newuser: $*"; }
fail() { echo "newuser: FAIL: $*" >&2; exit 1; }

# --- install as the README says ("From source") -----------------------------
make -s >/dev/null
make -s install PREFIX=/usr SYSCONFDIR=/etc DESTDIR="$WORK/root" >/dev/null
SBIN=$WORK/root/usr/sbin

# --- topology -----------------------------------------------------------------
for n in $P1 $P2 $P3 $R $I; do
	ip netns add "$n"
	ip -n "$n" link set lo up
done
# LAN: br-lan with two phones.
ip -n $R link add br-lan type bridge
ip -n $R addr add 192.168.50.1/24 dev br-lan
ip -n $R link set br-lan up
i=0
for p in $P1 $P2; do
	i=$((i + 1))
	ip link add nu-lan$i-$ID netns $R type veth peer name eth0 netns "$p"
	ip -n $R link set nu-lan$i-$ID master br-lan up
	ip -n "$p" addr add 192.168.50.1$i/24 dev eth0
	ip -n "$p" link set eth0 up
	ip -n "$p" route add default via 192.168.50.1
done
# A second LAN subnet on its own interface.
ip link add lan2 netns $R type veth peer name eth0 netns $P3
ip -n $R addr add 10.20.0.1/24 dev lan2
ip -n $R link set lan2 up
ip -n $P3 addr add 10.20.0.10/24 dev eth0
ip -n $P3 link set eth0 up
ip -n $P3 route add default via 10.20.0.1
# The load step's phones: 10.20.0.20 up, on lan2 as well.
for i in $(seq 0 $((NU_PHONES - 1))); do echo "address add 10.20.0.$((20 + i))/24 dev eth0"; done |
	ip -n $P3 -batch -
# WAN: a bridge br-wan with the uplink eth0 in it, the provider at the
# other end.
ip -n $R link add br-wan type bridge
ip link add eth0 netns $R type veth peer name eth0 netns $I
ip -n $R link set eth0 master br-wan up
ip -n $R addr add 203.0.113.2/24 dev br-wan
ip -n $R link set br-wan up
ip -n $I addr add 203.0.113.1/24 dev eth0
ip -n $I addr add 203.0.113.9/24 dev eth0   # a stranger on the Internet
ip -n $I addr add 203.0.113.3/24 dev eth0   # the load step's registrar
ip -n $I link set eth0 up
ip netns exec $R sysctl -qw net.ipv4.ip_forward=1

# --- the admin's /etc/nftables.conf ----------------------------------------
DNAT_ACCEPT="ct status dnat accept"
# README "On a router", step 1: SIP/TCP reaches the relay as local input
TCP_INPUT="meta l4proto tcp meta mark 0x5f10 accept"
[ "${NU_NO_TCP_INPUT:-0}" = 1 ] && TCP_INPUT=""
[ "${NU_NO_DNAT_ACCEPT:-0}" = 1 ] && DNAT_ACCEPT=""
cat >"$WORK/nftables.conf" <<EOF
flush ruleset
table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		ct state invalid drop
		iif lo accept
		iifname { "br-lan", "lan2" } accept
		icmp type echo-request accept
		$TCP_INPUT
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		ct state invalid drop
		iifname { "br-lan", "lan2" } oifname "br-wan" accept
		# br_netfilter is on here (bridge-nf-call-iptables=1, as where
		# docker runs): phone to phone across br-lan passes this hook too.
		iifname "br-lan" oifname "br-lan" accept
		$DNAT_ACCEPT
	}
	chain output {
		type filter hook output priority filter; policy accept;
	}
}
table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "br-wan" masquerade
	}
}
EOF
ip netns exec $R nft -f "$WORK/nftables.conf"

# --- the configuration: the shipped file, edited as README step 3 says ------
# wan.interface, lan.networks, sip.ports (the phones' ports and the
# provider's); the control socket and state file moved only so that this
# run does not meet another daemon on the same machine.
sed -e 's/^  interface: eth1$/  interface: br-wan/' \
    -e 's|^    - 192.168.1.0/24$|    - 192.168.50.0/24\n    - 10.20.0.0/24|' \
    -e "s/^  ports: \[5060\]\$/  ports: [$SIP_PORTS]/" \
    -e "s|/run/sipalgd\\.|$WORK/sipalgd.|" \
    conf/sipalgd.yaml >"$WORK/sipalgd.yaml"
grep -q 'interface: br-wan' "$WORK/sipalgd.yaml" || fail "sed: wan.interface"
grep -q '10.20.0.0/24' "$WORK/sipalgd.yaml" || fail "sed: lan.networks"
grep -q "ports: \[$SIP_PORTS\]" "$WORK/sipalgd.yaml" || fail "sed: sip.ports"
"$SBIN/sipalgd" -n -c "$WORK/sipalgd.yaml" >/dev/null || fail "sipalgd -n"

ip netns exec $R "$SBIN/sipalgd" -c "$WORK/sipalgd.yaml" >"$WORK/daemon.log" 2>&1 &
DPID=$!
CTL="ip netns exec $R $SBIN/sipalgctl -s $WORK/sipalgd.sock"
ok=0
for _ in $(seq 50); do
	if $CTL status >"$WORK/status" 2>&1; then ok=1; break; fi
	kill -0 $DPID 2>/dev/null || break
	sleep 0.1
done
if [ $ok != 1 ]; then
	cat "$WORK/status" "$WORK/daemon.log" >&2
	fail "sipalgctl status never said ok"
fi
if [ -z "$DNAT_ACCEPT" ]; then
	grep -q 'warning' "$WORK/status" || fail "no warning for the missing ct status dnat accept"
fi
say "daemon up: $(head -1 "$WORK/status")"
# br_netfilter is loaded on this machine (bridge-nf-call-iptables=1 in a
# new namespace, as where Docker runs): SIP/TCP by a bridge cannot reach
# the relay, and the daemon must say so. Then the remedy it names.
if [ "$(ip netns exec $R cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null)" = 1 ]; then
	grep -q 'bridge-nf-call-iptables is 1 and br-lan, br-wan are each a bridge' "$WORK/daemon.log" ||
		fail "no br_netfilter warning in the daemon log"
	grep -q '^warning: tcp relay: bridge-nf-call-iptables is 1 and br-lan, br-wan are each a bridge' \
		"$WORK/status" || fail "no br_netfilter warning in sipalgctl status"
	[ "${NU_BRNF:-0}" = 1 ] || ip netns exec $R sysctl -qw net.bridge.bridge-nf-call-iptables=0
	# and gone from status once the remedy is applied
	if [ "${NU_BRNF:-0}" != 1 ] && $CTL status | grep -q 'bridge-nf-call-iptables'; then
		fail "the br_netfilter warning stays in status after bridge-nf-call-iptables=0"
	fi
fi

if [ -n "${NU_PAUSE:-}" ]; then   # explore by hand: NU_PAUSE=SECONDS
	say "paused ${NU_PAUSE}s: $P1 $P2 $P3 $R $I, work $WORK"
	sleep "$NU_PAUSE"
fi
rc=0
UA="python3 tests/netns/newuser_ua.py --ns-p1 $P1 --ns-p2 $P2 --ns-p3 $P3 --ns-i $I"
[ "${NU_SKIP_BASIC:-0}" = 1 ] || $UA || rc=$?
# SIP/TCP: p1 on br-lan and p3 on lan2 register over TCP from port 5090;
# the registrar's new connection to each Contact reaches the phone.
[ $rc != 0 ] || $UA --tcp || rc=$?

# --- load: sipp -t u1 (a socket, so a source port, per call) from p1,
# 2 s calls at 20 a second, while NU_PHONES phones on lan2 refresh
# short registrations ------------------------------------------------------
if [ $rc = 0 ] && [ "$NU_CALLS" -gt 0 ]; then
	ip netns exec $I timeout 90 sipp -sn uas -i 203.0.113.1 -p 5060 -m "$NU_CALLS" \
		-nostdin -trace_msg -message_file "$WORK/uas.msg" \
		>"$WORK/uas.out" 2>&1 &
	UASPID=$!
	sleep 0.3
	ip netns exec $P1 timeout 90 sipp -sn uac -t u1 -i 192.168.50.11 -r 20 -d 2000 \
		-m "$NU_CALLS" -nostdin -timeout 60s -timeout_error \
		-trace_stat -stf "$WORK/uac.csv" 203.0.113.1:5060 \
		>"$WORK/uac.out" 2>&1 &
	UACPID=$!
	lrc=0
	$UA --load "$NU_PHONES" --rounds 8 || lrc=$?
	urc=0
	wait $UACPID || urc=$?
	[ $urc = 0 ] || { tail -5 "$WORK/uac.out" >&2; echo "newuser: FAIL: sipp uac exit $urc" >&2; rc=1; }
	wait $UASPID || true
	UASPID=
	invites=$(grep -c '^INVITE sip:' "$WORK/uas.msg" || true)
	leaks=$(grep -cE '192\.168\.50\.|10\.20\.0\.' "$WORK/uas.msg" || true)
	echo "newuser: sipp: $NU_CALLS calls, uac exit $urc; the UAS saw $invites INVITEs, $leaks lines with a LAN address"
	[ "$invites" -ge "$NU_CALLS" ] || { echo "newuser: FAIL: INVITEs at the UAS" >&2; rc=1; }
	[ "$leaks" = 0 ] || { grep -m3 -E '192\.168\.50\.|10\.20\.0\.' "$WORK/uas.msg" >&2; echo "newuser: FAIL: LAN address at the UAS" >&2; rc=1; }
	[ $lrc = 0 ] || rc=1
fi
$CTL counters >"$WORK/counters" 2>&1 || true
if [ $rc != 0 ]; then
	echo "--- counters (non-zero)" >&2
	awk '$2 != 0' "$WORK/counters" >&2
	echo "--- daemon log (tail)" >&2
	tail -20 "$WORK/daemon.log" >&2
	fail "newuser_ua.py"
fi
# nothing in these flows may be dropped, unparsable or refused
bad=$(grep -E '^(pkts_dropped|parse_errors|drop_limit|pinholes_refused|drop_no_binding|queue_enobufs) ' \
	"$WORK/counters" | awk '$2 != 0')
[ -z "$bad" ] || fail "counters: $bad"
if grep -iE 'error|warning' "$WORK/daemon.log" | grep -v realtime >"$WORK/warn"; then
	echo "--- daemon warnings"; cat "$WORK/warn"
fi
say "PASS"
