#!/bin/bash
# tests/netns/nptv6-probe.sh: why wan.nat66_* needs nft's stateful prefix NAT and not
# stateless NPTv6 (docs/ipv6.md). Three namespaces of its own (salg-npt{l,r,w}-PID, deleted
# on exit), ip6tables SNPT/DNPT (RFC 6296) in mangle on the router, a stateful forward
# policy (established accepted, LAN -> WAN accepted, the rest dropped), one UDP datagram
# out and its reply. Not in `make check` (a measurement of the kernel, not of sipalgd).
# Exit 0 when the finding holds: the reply is dropped (conntrack looked it up before DNPT
# translated it, so it is NEW, and the LAN flow stays UNREPLIED); 1 otherwise.
set -u
L=salg-nptl-$$ R=salg-nptr-$$ W=salg-nptw-$$
trap 'for n in $L $R $W; do ip netns del $n 2>/dev/null; done' EXIT
for n in $L $R $W; do ip netns add $n; ip -n $n link set lo up; done
ip -n $R link add lan type veth peer name eth0 netns $L
ip -n $R link add wan type veth peer name eth0 netns $W
for n in $L $W; do ip netns exec $n sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.eth0.accept_dad=0; ip -n $n link set eth0 up; done
ip netns exec $R sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.lan.accept_dad=0 net.ipv6.conf.wan.accept_dad=0 net.ipv6.conf.all.forwarding=1
ip -n $R link set lan up; ip -n $R link set wan up
ip -n $L addr add fd00:77::10/64 dev eth0 nodad; ip -n $L -6 route add default via fd00:77::1
ip -n $R addr add fd00:77::1/64 dev lan nodad; ip -n $R addr add 2001:db8:113::1/64 dev wan nodad
ip -n $W addr add 2001:db8:113::10/64 dev eth0 nodad; ip -n $W -6 route add 2001:db8:78::/48 via 2001:db8:113::1
ip netns exec $R nft -f - <<'NFT'
table inet fw { chain forward { type filter hook forward priority filter; policy drop;
  ct state established,related counter accept
  iifname "lan" oifname "wan" counter accept
  counter comment "dropped"
}
}
NFT
ip netns exec $R ip6tables -t mangle -A POSTROUTING -o wan -s fd00:77::/48 -j SNPT --src-pfx fd00:77::/48 --dst-pfx 2001:db8:78::/48 || exit 1
ip netns exec $R ip6tables -t mangle -A PREROUTING -i wan -d 2001:db8:78::/48 -j DNPT --src-pfx 2001:db8:78::/48 --dst-pfx fd00:77::/48 || exit 1
sleep 1
ip netns exec $W python3 - <<'PY' &
import socket
s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM); s.bind(("2001:db8:113::10",9000)); s.settimeout(3)
d,a=s.recvfrom(100); print("wan got from", a[0], a[1]); s.sendto(b"reply",a[:2])
PY
sleep 0.5
out=$(ip netns exec $L python3 - <<'PY'
import socket
s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM); s.bind(("fd00:77::10",9001)); s.settimeout(2)
s.sendto(b"out",("2001:db8:113::10",9000))
try: d,a=s.recvfrom(100); print("lan got reply from", a[0])
except socket.timeout: print("lan: no reply")
PY
)
wait
echo "$out"
ip netns exec $R nft list chain inet fw forward | grep counter
ip netns exec $R conntrack -L -f ipv6 2>/dev/null
case "$out" in
*"no reply"*) echo "# NPTv6 + stateful forward policy: the reply was dropped (as docs/ipv6.md says)"; exit 0 ;;
*) echo "# NPTv6 + stateful forward policy: the reply got through (docs/ipv6.md is wrong for this kernel)"; exit 1 ;;
esac
