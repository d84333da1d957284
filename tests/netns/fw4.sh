#!/bin/bash
# tests/netns/fw4.sh (`make fw4-lab`): calls with RTP both ways through a
# router whose ruleset has OpenWrt fw4's shape, plus the package's fragment.
#
# The router's ruleset is `table inet fw4` as firewall4's
# templates/ruleset.uc generates it for the stock lan/wan zones (its
# tests/01_configuration/01_ruleset, root/etc/config/firewall): one forward
# chain for both families, policy drop and `jump handle_reject` at the end
# (`option forward REJECT`), `ct state vmap { established : accept, related :
# accept }` first, zone chains (forward_lan -> accept_to_wan, forward_wan ->
# drop_to_wan), the stock rules' IPv6 part (Allow-DHCPv6, Allow-MLD,
# Allow-ICMPv6-Input on input_wan, Allow-ICMPv6-Forward on forward_wan),
# masquerade in srcnat_wan for IPv4 only (`masq6` off: IPv6 is routed; the
# WAN routes the LAN's /64 to the router, as a delegated prefix; runs 5 and
# 6 turn masq6 on), and flow
# offloading on (`flowtable ft` over lan and wan, `flow offload @ft` first in
# the forward chain; software offload works over veths; left out, and said
# so, on a kernel without CONFIG_NF_FLOW_TABLE; the lan zone has both LAN
# ports of the lab, lan and lan2, the second not offloaded). There are no
# port forwards, so fw4 emits no `ct status dnat accept`: the IPv4 pinholes
# live or die by the package's fragment
# (packaging/openwrt/sipalgd/files/sipalgd.nft), included where fw4 includes
# /usr/share/nftables.d/chain-pre/forward/*.nft. The IPv6 pinholes are
# conntrack entries, `established` from the first packet: fw4's own vmap
# lets them in.
#
# Six runs (tests/netns/run.sh with lib.sh's LAB_ROUTER_RULESET and
# LAB_CONF_TEMPLATE; FW4_STAGES picks some):
#   1. IPv4, with the fragments, lab.yaml: every selected flow must pass;
#   2. IPv6 (LAB_NAT66=0: routed only), with the fragments, the daemon's
#      config made from the package's /etc/config/sipalgd by its UCI step:
#      every selected v6 flow must pass;
#   3. IPv4 without the fragments: call_3_1 must fail (the remote's RTP is
#      refused), which proves the fragment is what lets the media in;
#   4. IPv6 with the fragments but no ALG: v6_call must fail the same way,
#      which proves the daemon's conntrack entry is what lets it in.
#   5. IPv6 with fw4's masq6 (`option masq6 '1'` on wan: srcnat_wan gets
#      `meta nfproto ipv6 masquerade`), with the fragments, the daemon's
#      config made by the UCI step from the shipped /etc/config/sipalgd and
#      an /etc/config/firewall with that masq6 (the step writes
#      wan.masquerade6 with netifd's ULA of `lan`, fd00:78::/64):
#      v6_masq_register, v6_masq_call and v6_masq_two_phones must pass;
#   6. the same without the fragments: v6_masq_call must fail (the remote's
#      RTP to the daemon's in_any6/in_peer6 DNAT element is refused by fw4's
#      forward policy): the `ct status dnat` fragment is what lets masqueraded
#      IPv6 media in, as for IPv4.
# Diversion: the nft `queue` statement where this kernel takes it
# (queue.divert: nft, as on OpenWrt), otherwise iptables' NFQUEUE.
#
#   FW4_FLOWS="call_3_1 remote_media_server" FW4_FLOWS6="v6_call" tests/netns/fw4.sh
#   FW4_STAGES=5 FW4_FLOWS6M=v6_masq_call tests/netns/fw4.sh
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
FRAG=$REPO/packaging/openwrt/sipalgd/files/sipalgd.nft
FRAG_OFFLOAD=$REPO/packaging/openwrt/sipalgd/files/sipalgd-offload.nft
FRAG_INPUT=$REPO/packaging/openwrt/sipalgd/files/sipalgd-input.nft
FLOWS_SEL=${FW4_FLOWS:-call_3_1 remote_media_server reinvite_remote hairpin_call}
[ "$(id -u)" = 0 ] || { echo "fw4-lab needs root" >&2; exit 2; }
tmp=$(mktemp -d /tmp/salg-fw4.XXXXXX)
probe_ns=""
# shellcheck disable=SC2317  # called by the trap
cleanup() {
	[ -n "$probe_ns" ] && ip netns del "$probe_ns" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# fw4_ruleset FILE WITH_FRAGMENT(0|1) [MASQ6(0|1)]
fw4_ruleset() {
	local inc="" inc_in="" ft="" offload="" masq6=""
	# `option masq6 '1'` on the wan zone: the rule firewall4's
	# templates/zone-masq.uc writes for family 6 with no masq_src.
	[ "${3:-0}" = 1 ] && masq6='meta nfproto ipv6 masquerade comment "!fw4: Masquerade IPv6 wan traffic"'
	[ "$2" = 1 ] && inc="include \"$FRAG\"" && inc_in="include \"$FRAG_INPUT\""
	if [ "$flowtable" = 1 ]; then
		ft='flowtable ft { hook ingress priority 0; devices = { "lan", "wan" }; counter; }'
		offload='meta l4proto { tcp, udp } flow offload @ft;'
	fi
	cat >"$1" <<RULESET
table inet fw4
flush table inet fw4
table inet fw4 {
	$ft
	chain input {
		type filter hook input priority filter; policy drop;
		$inc_in
		iif "lo" accept comment "!fw4: Accept traffic from loopback"
		ct state vmap { established : accept, related : accept } comment "!fw4: Handle inbound flows"
		iifname { "lan", "lan2" } jump input_lan comment "!fw4: Handle lan IPv4/IPv6 input traffic"
		iifname "wan" jump input_wan comment "!fw4: Handle wan IPv4/IPv6 input traffic"
		jump handle_reject
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		$offload
		$inc
		ct state vmap { established : accept, related : accept } comment "!fw4: Handle forwarded flows"
		iifname { "lan", "lan2" } jump forward_lan comment "!fw4: Handle lan IPv4/IPv6 forward traffic"
		iifname "wan" jump forward_wan comment "!fw4: Handle wan IPv4/IPv6 forward traffic"
		jump handle_reject
	}
	chain output {
		type filter hook output priority filter; policy accept;
		oif "lo" accept comment "!fw4: Accept traffic towards loopback"
		ct state vmap { established : accept, related : accept } comment "!fw4: Handle outbound flows"
	}
	chain handle_reject {
		meta l4proto tcp reject with tcp reset comment "!fw4: Reject TCP traffic"
		reject with icmpx type port-unreachable comment "!fw4: Reject any other traffic"
	}
	chain input_lan { jump accept_from_lan; }
	chain input_wan {
		meta nfproto ipv4 udp dport 68 counter accept comment "!fw4: Allow-DHCP-Renew"
		icmp type echo-request counter accept comment "!fw4: Allow-Ping"
		ip6 saddr fc00::/6 ip6 daddr fc00::/6 udp dport 546 counter accept comment "!fw4: Allow-DHCPv6"
		ip6 saddr fe80::/10 icmpv6 type . icmpv6 code { 130 . 0, 131 . 0, 132 . 0, 143 . 0 } counter accept comment "!fw4: Allow-MLD"
		meta nfproto ipv6 icmpv6 type { 128, 129, 1, 3, 133, 134 } limit rate 1000/second counter accept comment "!fw4: Allow-ICMPv6-Input"
		meta nfproto ipv6 icmpv6 type . icmpv6 code { 2 . 0, 4 . 0, 4 . 1, 135 . 0, 136 . 0 } limit rate 1000/second counter accept comment "!fw4: Allow-ICMPv6-Input"
		jump drop_from_wan
	}
	chain forward_lan {
		jump accept_to_wan comment "!fw4: Accept lan to wan forwarding"
		jump accept_to_lan
	}
	chain forward_wan {
		meta nfproto ipv6 icmpv6 type { 128, 129, 1, 3 } limit rate 1000/second counter accept comment "!fw4: Allow-ICMPv6-Forward"
		meta nfproto ipv6 icmpv6 type . icmpv6 code { 2 . 0, 4 . 0, 4 . 1 } limit rate 1000/second counter accept comment "!fw4: Allow-ICMPv6-Forward"
		meta l4proto esp counter jump accept_to_lan comment "!fw4: Allow-IPSec-ESP"
		udp dport 500 counter jump accept_to_lan comment "!fw4: Allow-ISAKMP"
		jump drop_to_wan
	}
	chain accept_from_lan { iifname { "lan", "lan2" } counter accept comment "!fw4: accept lan IPv4/IPv6 traffic"; }
	chain accept_to_lan { oifname { "lan", "lan2" } counter accept comment "!fw4: accept lan IPv4/IPv6 traffic"; }
	chain accept_to_wan {
		meta nfproto ipv4 oifname "wan" ct state invalid counter drop comment "!fw4: Prevent NAT leakage"
		oifname "wan" counter accept comment "!fw4: accept wan IPv4/IPv6 traffic"
	}
	chain drop_from_wan { iifname "wan" counter drop comment "!fw4: drop wan IPv4/IPv6 traffic"; }
	chain drop_to_wan { oifname "wan" counter drop comment "!fw4: drop wan IPv4/IPv6 traffic"; }
	chain dstnat {
		type nat hook prerouting priority dstnat; policy accept;
	}
	chain srcnat {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" jump srcnat_wan comment "!fw4: Handle wan IPv4/IPv6 srcnat traffic"
	}
	chain srcnat_wan {
		meta nfproto ipv4 masquerade comment "!fw4: Masquerade IPv4 wan traffic"
		$masq6
	}
	chain mangle_forward {
		type filter hook forward priority mangle; policy accept;
		iifname "wan" tcp flags syn tcp option maxseg size set rt mtu comment "!fw4: Zone wan IPv4/IPv6 ingress MTU fixing"
		oifname "wan" tcp flags syn tcp option maxseg size set rt mtu comment "!fw4: Zone wan IPv4/IPv6 egress MTU fixing"
	}
}
RULESET
	# fw4's ruleset-append position: after the table.
	[ "$2" = 1 ] && echo "include \"$FRAG_OFFLOAD\"" >>"$1"
	return 0
}

# Does this kernel take the nft queue statement, and flowtables? (probed in
# a namespace of our own)
probe_ns=salg-fw4probe-$$
ip netns add "$probe_ns"
ip -n "$probe_ns" link add p0 type veth peer name p1
if echo 'table inet probe { flowtable ft { hook ingress priority 0; devices = { p0, p1 }; }; }' |
	ip netns exec "$probe_ns" nft -f - >/dev/null 2>&1; then
	flowtable=1
else
	flowtable=0
fi
if echo 'table ip probe { chain c { type filter hook forward priority 0; udp dport 9 queue num 9; }; }' |
	ip netns exec "$probe_ns" nft -f - >/dev/null 2>&1; then
	divert=nft
else
	divert=iptables
fi
# The offload fragment must put SIP's accept before fw4's `flow offload`
# (checked on a ruleset with the flowtable, where the kernel has one).
ip -n "$probe_ns" link add lan type veth peer name wan
fw4_ruleset "$tmp/probe.nft" 1
if ! ip netns exec "$probe_ns" nft -f "$tmp/probe.nft"; then
	echo "# fw4-lab: FAIL: the fw4-shaped ruleset with the fragments does not load" >&2
	exit 1
fi
first=$(ip netns exec "$probe_ns" nft list chain inet fw4 forward | grep -m2 -E 'accept|offload|vmap')
if [ "$(grep -c 'sipalgd: SIP stays out of the flowtable' <<<"$first")" != 2 ]; then
	echo "# fw4-lab: FAIL: the first rules of fw4's forward chain are not sipalgd's:" >&2
	printf '%s\n' "$first" >&2
	exit 1
fi
echo "# fw4-lab: sipalgd's SIP accept rules come first in fw4's forward chain$([ "$flowtable" = 1 ] && echo ", before flow offload")"
ip netns del "$probe_ns"; probe_ns=""
echo "# fw4-lab: diversion $divert (nft queue statement $([ $divert = nft ] && echo available || echo not available on this kernel))"
if [ $flowtable = 1 ]; then
	echo "# fw4-lab: flowtable ft with offloading over lan and wan"
else
	echo "# fw4-lab: this kernel has no flowtables (CONFIG_NF_FLOW_TABLE): ruleset WITHOUT fw4's flowtable and flow offload rule"
fi
sed "s/^queue: { number: 7, /queue: { number: 7, divert: $divert, /" "$HERE/lab.yaml" >"$tmp/lab.yaml"
grep -q "divert: $divert" "$tmp/lab.yaml" || { echo "lab.yaml: queue line not found" >&2; exit 1; }

# The IPv6 run's configuration is the package's: /etc/config/sipalgd as
# shipped, through the init script's UCI -> YAML step (the stand-ins of
# tests/package/fake-openwrt for /lib/functions.sh and network.sh: `wan` is
# the device wan, netifd's IPv6 subnet of `lan` is the router's address in
# the delegated prefix, which lan_interface 'lan' adds to lan.networks). Only
# the lab's IPv4 LAN networks replace the shipped 192.168.1.0/24. The lab
# adds its control socket and pid file, its diversion if the kernel has no
# nft queue, and stderr for the log (syslog in the shipped YAML).
mkdir -p "$tmp/uci"
sed "s|^\(\tlist lan_network \)'192.168.1.0/24'|\1'192.168.77.0/24'\n\1'192.168.79.0/24'|" \
	"$REPO/packaging/openwrt/sipalgd/files/sipalgd.config" >"$tmp/uci/sipalgd"
# shellcheck disable=SC2016  # expanded by dash
UCI_CONFIG_DIR=$tmp/uci FAKE_NET_DEVICES="wan=wan lan=lan" FAKE_NET_SUBNETS6="lan=2001:db8:77::1/64" dash -c '
	. "$1/functions.sh"; . "$2/sipalgd-uci2yaml.sh"
	config_load sipalgd && sipalgd_uci2yaml main' sh \
	"$REPO/tests/package/fake-openwrt" "$REPO/packaging/openwrt/sipalgd/files" >"$tmp/uci.yaml" ||
	{ echo "# fw4-lab: FAIL: the shipped UCI config does not convert" >&2; exit 1; }
if ! { grep -q '^  networks: \[192.168.77.0/24, 192.168.79.0/24, 2001:db8:77::1/64\]$' "$tmp/uci.yaml" &&
	grep -q '^  divert: nft$' "$tmp/uci.yaml" && grep -q '^  syslog: true$' "$tmp/uci.yaml"; }; then
	cat "$tmp/uci.yaml" >&2
	echo "# fw4-lab: FAIL: the UCI step's YAML changed shape" >&2
	exit 1
fi
{
	sed -e "s/^  divert: nft$/  divert: $divert/" -e 's/^  syslog: true$/  syslog: false/' "$tmp/uci.yaml"
	printf 'paths:\n  control_socket: @SOCK@\n  pid_file: @PID@\n'
} >"$tmp/openwrt.yaml"

# The masq6 run's configuration: the same /etc/config/sipalgd, nothing added
# for NAT66, and an /etc/config/firewall whose wan zone has `option masq6
# '1'` (with lan and wan as firewall4's root/etc/config/firewall ships
# them): the UCI step finds masq6 there and writes wan.masquerade6 with the
# LAN prefix netifd has on `lan` (the ULA fd00:78::/64 of lib.sh's masq6
# side; the router's address in it, as network_get_subnets6 gives it).
mkdir -p "$tmp/uci6"
cp "$tmp/uci/sipalgd" "$tmp/uci6/sipalgd"
cat >"$tmp/uci6/firewall" <<'FIREWALL'
config defaults
	option input 'REJECT'
	option output 'ACCEPT'
	option forward 'REJECT'

config zone
	option name 'lan'
	list network 'lan'
	option input 'ACCEPT'
	option output 'ACCEPT'
	option forward 'ACCEPT'

config zone
	option name 'wan'
	list network 'wan'
	list network 'wan6'
	option input 'REJECT'
	option output 'ACCEPT'
	option forward 'REJECT'
	option masq '1'
	option masq6 '1'
	option mtu_fix '1'

config forwarding
	option src 'lan'
	option dest 'wan'
FIREWALL
# shellcheck disable=SC2016  # expanded by dash
UCI_CONFIG_DIR=$tmp/uci6 FAKE_NET_DEVICES="wan=wan lan=lan" FAKE_NET_SUBNETS6="lan=fd00:78::1/64" dash -c '
	. "$1/functions.sh"; . "$2/sipalgd-uci2yaml.sh"
	config_load sipalgd && sipalgd_uci2yaml main' sh \
	"$REPO/tests/package/fake-openwrt" "$REPO/packaging/openwrt/sipalgd/files" >"$tmp/uci6.yaml" ||
	{ echo "# fw4-lab: FAIL: the shipped UCI config with fw4's masq6 does not convert" >&2; exit 1; }
if ! { grep -q '^  masquerade6: \[fd00:78::1/64\]$' "$tmp/uci6.yaml" &&
	grep -q '^  networks: \[192.168.77.0/24, 192.168.79.0/24, fd00:78::1/64\]$' "$tmp/uci6.yaml"; }; then
	cat "$tmp/uci6.yaml" >&2
	echo "# fw4-lab: FAIL: the UCI step wrote no wan.masquerade6 for fw4's masq6" >&2
	exit 1
fi
{
	sed -e "s/^  divert: nft$/  divert: $divert/" -e 's/^  syslog: true$/  syslog: false/' "$tmp/uci6.yaml"
	printf 'paths:\n  control_socket: @SOCK@\n  pid_file: @PID@\n'
} >"$tmp/openwrt-masq6.yaml"
FLOWS6M_SEL=${FW4_FLOWS6M:-v6_masq_register v6_masq_call v6_masq_two_phones}
FLOWS6_SEL=${FW4_FLOWS6:-v6_register v6_call v6_early v6_reinvite v6_fork v6_dual v6_tcp_call}

# A run that failed as it must keeps its logs (lib.sh: "logs kept in DIR"):
# nothing to look at there, so they go.
fw4_drop_kept() {
	local d
	d=$(sed -n 's|^# logs kept in \(/tmp/salg-lab\.[^ /]*\)$|\1|p' "$1")
	[ -n "$d" ] && [ -d "$d" ] && rm -rf "$d"
	return 0
}
# FW4_STAGES="2 5": only those runs (all six by default).
FW4_STAGES=${FW4_STAGES:-1 2 3 4 5 6}
fw4_stage() { case " $FW4_STAGES " in *" $1 "*) return 0 ;; esac; return 1; }
rc=0
fw4_ruleset "$tmp/fw4.nft" 1
if fw4_stage 1; then
	echo "# fw4-lab 1/6: fw4-shaped ruleset + sipalgd.nft fragment: $FLOWS_SEL must pass"
	if LAB_ROUTER_RULESET=$tmp/fw4.nft LAB_CONF_TEMPLATE=$tmp/lab.yaml FLOWS=$FLOWS_SEL \
		"$HERE/run.sh" >"$tmp/with.out" 2>&1; then
		grep '^ok\|^# lab' "$tmp/with.out"
	else
		cat "$tmp/with.out"
		echo "# fw4-lab: FAIL with the fragment"
		rc=1
	fi
fi

if fw4_stage 2; then
	echo "# fw4-lab 2/6: IPv6 (routed, no NAT66), the package's UCI config: $FLOWS6_SEL must pass"
	if V6=1 LAB_NAT66=0 LAB_ROUTER_RULESET=$tmp/fw4.nft LAB_CONF_TEMPLATE=$tmp/openwrt.yaml FLOWS="$FLOWS6_SEL" \
		"$HERE/run.sh" >"$tmp/with6.out" 2>&1; then
		grep '^ok\|^# lab\|^# IPv6' "$tmp/with6.out"
	else
		cat "$tmp/with6.out"
		echo "# fw4-lab: FAIL: IPv6 with the fragment"
		rc=1
	fi
fi

if fw4_stage 3; then
	fw4_ruleset "$tmp/fw4-nofrag.nft" 0
	echo "# fw4-lab 3/6: the same without the fragment: call_3_1 must fail (the remote's RTP refused)"
	LAB_ROUTER_RULESET=$tmp/fw4-nofrag.nft LAB_CONF_TEMPLATE=$tmp/lab.yaml FLOWS=call_3_1 \
		"$HERE/run.sh" >"$tmp/without.out" 2>&1
	# Only the media may fail: the call itself ran to the end (flows.py's summary).
	if grep -q '^not ok [0-9]* - call_3_1: .*RTP.*received 0' "$tmp/without.out" &&
		grep -q '^0 passed, 1 failed$' "$tmp/without.out"; then
		grep '^not ok' "$tmp/without.out" | head -3
		echo "# fw4-lab: without the fragment the call fails, as it must"
		fw4_drop_kept "$tmp/without.out"
	elif grep -q '^1 passed, 0 failed$' "$tmp/without.out"; then
		echo "# fw4-lab: FAIL: call_3_1 passed without the fragment: the lab cannot tell"
		rc=1
	else
		cat "$tmp/without.out"
		echo "# fw4-lab: FAIL: the run without the fragment did not fail the way expected"
		rc=1
	fi
fi
if fw4_stage 4; then
	echo "# fw4-lab 4/6: IPv6 with the fragments but no ALG (ALG=none): v6_call must fail (the remote's RTP refused)"
	V6=1 LAB_NAT66=0 ALG=none LAB_ROUTER_RULESET=$tmp/fw4.nft FLOWS=v6_call \
		"$HERE/run.sh" >"$tmp/none6.out" 2>&1
	# fw4's `ct state established` accept lets the remote's first RTP in only
	# through the daemon's conntrack entry: the fragments do nothing for it.
	if grep -q '^not ok [0-9]* - v6_call: .*remote first.*received 0' "$tmp/none6.out" &&
		grep -q '^0 passed, 1 failed$' "$tmp/none6.out"; then
		grep '^not ok' "$tmp/none6.out" | head -3
		echo "# fw4-lab: without the daemon's pinhole the IPv6 call fails, as it must"
	elif grep -q '^1 passed, 0 failed$' "$tmp/none6.out"; then
		echo "# fw4-lab: FAIL: v6_call passed with no ALG: the lab cannot tell"
		rc=1
	else
		cat "$tmp/none6.out"
		echo "# fw4-lab: FAIL: the IPv6 run without an ALG did not fail the way expected"
		rc=1
	fi
fi

if fw4_stage 5; then
	fw4_ruleset "$tmp/fw4-masq6.nft" 1 1
	echo "# fw4-lab 5/6: IPv6 with fw4's masq6 (srcnat_wan masquerades IPv6, no table of the lab's), the UCI step's masquerade6: $FLOWS6M_SEL must pass"
	# LAB_MASQ6=0: lib.sh's own masquerade table stays out, fw4's rule does it.
	if V6=1 LAB_NAT66=0 LAB_MASQ6=0 LAB_ROUTER_RULESET=$tmp/fw4-masq6.nft LAB_CONF_TEMPLATE=$tmp/openwrt-masq6.yaml \
		FLOWS="$FLOWS6M_SEL" "$HERE/run.sh" >"$tmp/masq6.out" 2>&1; then
		grep '^ok\|^# lab\|^# IPv6' "$tmp/masq6.out"
	else
		cat "$tmp/masq6.out"
		echo "# fw4-lab: FAIL: IPv6 with fw4's masq6"
		rc=1
	fi
fi
if fw4_stage 6; then
	fw4_ruleset "$tmp/fw4-masq6-nofrag.nft" 0 1
	echo "# fw4-lab 6/6: the same without the fragment: v6_masq_call must fail (the remote's RTP to the in_any6/in_peer6 DNAT refused)"
	V6=1 LAB_NAT66=0 LAB_MASQ6=0 LAB_ROUTER_RULESET=$tmp/fw4-masq6-nofrag.nft LAB_CONF_TEMPLATE=$tmp/openwrt-masq6.yaml \
		FLOWS=v6_masq_call "$HERE/run.sh" >"$tmp/masq6-nofrag.out" 2>&1
	# The call itself runs to the end; only the remote-first RTP through
	# the DNAT element is dropped, by fw4's forward policy (the daemon's
	# own warning says so too).
	if grep -q '^not ok [0-9]* - v6_masq_call: .*remote first.*received 0' "$tmp/masq6-nofrag.out" &&
		grep -q '^0 passed, 1 failed$' "$tmp/masq6-nofrag.out"; then
		grep '^not ok' "$tmp/masq6-nofrag.out" | head -3
		echo "# fw4-lab: without the fragment the masqueraded IPv6 call fails, as it must"
		fw4_drop_kept "$tmp/masq6-nofrag.out"
	elif grep -q '^1 passed, 0 failed$' "$tmp/masq6-nofrag.out"; then
		echo "# fw4-lab: FAIL: v6_masq_call passed without the fragment: the lab cannot tell"
		rc=1
	else
		cat "$tmp/masq6-nofrag.out"
		echo "# fw4-lab: FAIL: the masq6 run without the fragment did not fail the way expected"
		rc=1
	fi
fi
echo "# fw4-lab: $([ $rc = 0 ] && echo PASS || echo FAIL)"
exit $rc
