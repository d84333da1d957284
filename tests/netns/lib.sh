# tests/netns/lib.sh: the lab topology, sourced by run.sh and demo.sh.
#
#   lan ns  eth0 192.168.77.10 (phone1) .11 (phone2) .12 (LAN media host)
#      |  veth                          lan2 ns  eth0 192.168.79.10 (phone3: hairpin calls)
#      |                                   |  veth
#   rtr ns  lan 192.168.77.1/24   lan2 192.168.79.1/24   wan 203.0.113.1/24
#           (sipalgd | kernel helper | none; lan and lan2 are one LAN zone)
#      |  veth
#   wan ns  eth0 203.0.113.10 (proxy/registrar) .20 (media server) .30 (other host)
#
# The caller sets LAB_REPO and ALG, calls lab_init, installs
#   trap lab_cleanup EXIT INT TERM
# and then lab_topology, lab_router_start, ..., lab_router_stop.
# Everything the lab starts is recorded in LAB_PIDS and killed by pid;
# every namespace it creates is deleted by lab_cleanup, also on failure or ^C.

lab_log() { printf '# %s\n' "$*" >&2; }

lab_init() {
	: "${LAB_REPO:?}"
	ALG=${ALG:-sipalgd}
	case "$ALG" in sipalgd|kernel|none) ;; *) echo "ALG must be sipalgd, kernel or none (got '$ALG')" >&2; exit 2 ;; esac
	[ "$(id -u)" = 0 ] || { echo "the lab needs root (network namespaces)" >&2; exit 2; }
	LAB_ID=${LAB_ID:-$(( $$ % 10000 ))}
	NS_LAN=salg-lan-$LAB_ID
	NS_RTR=salg-rtr-$LAB_ID
	NS_WAN=salg-wan-$LAB_ID
	NS_LAN2=salg-lan2-$LAB_ID
	for ns in "$NS_LAN" "$NS_RTR" "$NS_WAN" "$NS_LAN2"; do
		if ip netns list | grep -qw "$ns"; then
			echo "namespace $ns already exists (another run with LAB_ID=$LAB_ID?)" >&2; exit 2
		fi
	done
	LAB_TMP=$(mktemp -d "/tmp/salg-lab.$LAB_ID.XXXXXX")
	LAB_PIDS=""
	LAB_CREATED=""
	LAB_DAEMON_PID=""
	LAB_KEEP_TMP=0
	export LAB_ID NS_LAN NS_RTR NS_WAN NS_LAN2 LAB_TMP
}

# Idempotent; safe to call from the trap at any point (even before lab_init finished).
lab_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	local p ns
	for p in $LAB_PIDS; do kill -TERM "$p" 2>/dev/null; done
	if [ -n "$LAB_PIDS" ]; then
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			local alive=0
			for p in $LAB_PIDS; do kill -0 "$p" 2>/dev/null && alive=1; done
			[ $alive = 0 ] && break
			sleep 0.2
		done
		for p in $LAB_PIDS; do kill -KILL "$p" 2>/dev/null; done
	fi
	# Anything still living inside our own namespaces was started by this run.
	for ns in ${LAB_CREATED:-}; do
		ip netns list 2>/dev/null | grep -qw "$ns" || continue
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	if [ -n "$LAB_TMP" ] && [ -d "$LAB_TMP" ]; then
		if [ "$LAB_KEEP_TMP" = 1 ]; then
			lab_log "logs kept in $LAB_TMP"
		else
			rm -rf "$LAB_TMP"
		fi
	fi
	exit "$rc"
}

lab_nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

lab_topology() {
	set -e
	local n
	for n in "$NS_LAN" "$NS_RTR" "$NS_WAN" "$NS_LAN2"; do
		ip netns add "$n"
		LAB_CREATED="$LAB_CREATED $n"   # only namespaces this run created are deleted
	done
	ip -n "$NS_RTR" link add lan type veth peer name eth0 netns "$NS_LAN"
	ip -n "$NS_RTR" link add wan type veth peer name eth0 netns "$NS_WAN"
	ip -n "$NS_RTR" link add lan2 type veth peer name eth0 netns "$NS_LAN2"
	local ns
	for ns in "$NS_LAN" "$NS_RTR" "$NS_WAN" "$NS_LAN2"; do
		lab_nsx "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
		lab_nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
		ip -n "$ns" link set lo up
	done
	ip -n "$NS_LAN" addr add 192.168.77.10/24 dev eth0
	ip -n "$NS_LAN" addr add 192.168.77.11/24 dev eth0
	ip -n "$NS_LAN" addr add 192.168.77.12/24 dev eth0
	ip -n "$NS_LAN" link set eth0 up
	ip -n "$NS_LAN" route add default via 192.168.77.1
	ip -n "$NS_RTR" addr add 192.168.77.1/24 dev lan
	ip -n "$NS_RTR" addr add 203.0.113.1/24 dev wan
	ip -n "$NS_RTR" link set lan up
	ip -n "$NS_RTR" link set wan up
	# A second phone in a namespace of its own (hairpin calls through the
	# provider between two LAN phones): another router port of the LAN.
	ip -n "$NS_RTR" addr add 192.168.79.1/24 dev lan2
	ip -n "$NS_RTR" link set lan2 up
	ip -n "$NS_LAN2" addr add 192.168.79.10/24 dev eth0
	ip -n "$NS_LAN2" link set eth0 up
	ip -n "$NS_LAN2" route add default via 192.168.79.1
	lab_nsx "$NS_LAN2" sysctl -qw net.ipv4.conf.eth0.rp_filter=0
	lab_nsx "$NS_RTR" sysctl -qw net.ipv4.ip_forward=1
	lab_nsx "$NS_RTR" sysctl -qw net.ipv4.conf.lan.rp_filter=0 net.ipv4.conf.wan.rp_filter=0 \
		net.ipv4.conf.lan2.rp_filter=0
	ip -n "$NS_WAN" addr add 203.0.113.10/24 dev eth0
	ip -n "$NS_WAN" addr add 203.0.113.20/24 dev eth0
	ip -n "$NS_WAN" addr add 203.0.113.30/24 dev eth0
	ip -n "$NS_WAN" link set eth0 up
	lab_nsx "$NS_LAN" sysctl -qw net.ipv4.conf.eth0.rp_filter=0
	lab_nsx "$NS_WAN" sysctl -qw net.ipv4.conf.eth0.rp_filter=0
	# The operator's firewall: a stateful forward policy and masquerade, or
	# LAB_ROUTER_RULESET (an nft file: another firewall's shape, e.g. fw4).
	if [ -n "${LAB_ROUTER_RULESET:-}" ]; then
		lab_nsx "$NS_RTR" nft -f "$LAB_ROUTER_RULESET"
	else
	lab_nsx "$NS_RTR" nft -f - <<'EOF'
table inet salgfw {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname { "lan", "lan2" } oifname { "wan", "lan", "lan2" } accept
		ct status dnat accept
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		# IPv4 only: an inet masquerade would be NAT66 on the IPv6 side (LAB_V6=1).
		meta nfproto ipv4 oifname "wan" masquerade
	}
}
EOF
	fi
	if [ "${LAB_V6:-0}" = 1 ]; then lab_topology_v6 || exit 1; fi
	set +e
}

# LAB_V6=1: the IPv6 side of lan, rtr and wan (lan2 stays IPv4 only). Off by default,
# so the IPv4 flows run in a lab without IPv6 exactly as before.
#   lan  eth0 2001:db8:77::10 (phone1) ::11 (phone2)    default via 2001:db8:77::1
#   rtr  lan 2001:db8:77::1/64  wan 2001:db8:113::1/64  forwarding on, no NAT66 for it
#   lan  eth0 fd00:77::10 (phone1's ULA), rtr lan fd00:77::1/64: NAT66 to 2001:db8:78::/64
#   lan  eth0 fd00:78::10 (phone1) ::11 (phone2), rtr lan fd00:78::1/64: masquerade (masq6)
#        behind 2001:db8:113::1, no route to it on the WAN (LAB_MASQ6=0: no masquerade)
#   wan  eth0 2001:db8:113::10 (proxy) ::20 (media) ::30 (other); the LAN /64 routed via
#        the router, as a provider routes a delegated prefix.
# The ip6 forward policy is the inet salgfw table above (inet covers both families): drop
# by default, established/related accepted, LAN -> WAN accepted; `ct status dnat` never
# matches without NAT66. Its masquerade is IPv4 only. With LAB_ROUTER_RULESET the file
# must bring its own ip6 policy.
lab_topology_v6() {
	set -e
	local ns
	# No duplicate address detection, also for the link-local addresses: neighbour
	# discovery waits for them, and the first datagrams would wait ~1.3 s.
	local dev
	for ns in "$NS_LAN" "$NS_RTR" "$NS_WAN"; do
		for dev in all default; do
			lab_nsx "$ns" sysctl -qw net.ipv6.conf.$dev.accept_dad=0 net.ipv6.conf.$dev.accept_ra=0
		done
	done
	lab_nsx "$NS_LAN" sysctl -qw net.ipv6.conf.eth0.accept_dad=0 net.ipv6.conf.eth0.accept_ra=0
	lab_nsx "$NS_WAN" sysctl -qw net.ipv6.conf.eth0.accept_dad=0 net.ipv6.conf.eth0.accept_ra=0
	lab_nsx "$NS_RTR" sysctl -qw net.ipv6.conf.lan.accept_dad=0 net.ipv6.conf.wan.accept_dad=0
	for ns in "$NS_LAN" "$NS_RTR" "$NS_WAN"; do
		lab_nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0
	done
	lab_nsx "$NS_LAN" sysctl -qw net.ipv6.conf.eth0.disable_ipv6=0
	lab_nsx "$NS_WAN" sysctl -qw net.ipv6.conf.eth0.disable_ipv6=0
	lab_nsx "$NS_RTR" sysctl -qw net.ipv6.conf.lan.disable_ipv6=0 net.ipv6.conf.wan.disable_ipv6=0
	# nodad: the addresses are usable at once (no 1 s of duplicate address detection).
	ip -n "$NS_LAN" addr add 2001:db8:77::10/64 dev eth0 nodad
	ip -n "$NS_LAN" addr add 2001:db8:77::11/64 dev eth0 nodad
	ip -n "$NS_LAN" -6 route add default via 2001:db8:77::1
	ip -n "$NS_RTR" addr add 2001:db8:77::1/64 dev lan nodad
	ip -n "$NS_RTR" addr add 2001:db8:113::1/64 dev wan nodad
	lab_nsx "$NS_RTR" sysctl -qw net.ipv6.conf.all.forwarding=1
	ip -n "$NS_WAN" addr add 2001:db8:113::10/64 dev eth0 nodad
	ip -n "$NS_WAN" addr add 2001:db8:113::20/64 dev eth0 nodad
	ip -n "$NS_WAN" addr add 2001:db8:113::30/64 dev eth0 nodad
	ip -n "$NS_WAN" -6 route add 2001:db8:77::/64 via 2001:db8:113::1
	# NAT66 (flows.py v6_nat66_call): a second LAN prefix, the ULA fd00:77::/64 (phone1
	# ::10), that the router translates to 2001:db8:78::/64 with nft's stateful prefix
	# NAT, host bits and ports kept (lab.yaml wan.nat66_*). Only snat: the WAN reaches a
	# phone at its public address through conntrack (replies, the daemon's pinholes),
	# never through a blanket dnat (the forward policy's `ct status dnat accept` would
	# then let every stranger in). The WAN routes the public /64 via the router.
	ip -n "$NS_LAN" addr add fd00:77::10/64 dev eth0 nodad
	ip -n "$NS_RTR" addr add fd00:77::1/64 dev lan nodad
	ip -n "$NS_WAN" -6 route add 2001:db8:78::/64 via 2001:db8:113::1
	# NAT66 masquerade, OpenWrt's masq6 (flows.py v6_masq_*): phone1 fd00:78::10 and
	# phone2 ::11 (the same LAN namespace) behind the router's one WAN address
	# 2001:db8:113::1, source ports translated by conntrack where two phones use the
	# same one. The WAN has no route to fd00:78::/64 (it is private): the only way back
	# is conntrack's reverse NAT or the daemon's DNAT map (lab.yaml wan.masquerade6).
	ip -n "$NS_LAN" addr add fd00:78::10/64 dev eth0 nodad
	ip -n "$NS_LAN" addr add fd00:78::11/64 dev eth0 nodad
	ip -n "$NS_RTR" addr add fd00:78::1/64 dev lan nodad
	# LAB_MASQ6=0: no masquerade table (the ULA then leaves as it is, as v6_ula_unnated's).
	# The rule as fw4 writes masq6 for a zone: srcnat, oifname, the zone's source prefix.
	[ "${LAB_MASQ6:-1}" = 0 ] || lab_nsx "$NS_RTR" nft -f - <<'EOFM6'
table ip6 salgmasq6 {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" ip6 saddr fd00:78::/64 masquerade
	}
}
EOFM6
	# A ULA that no NAT66 covers (flows.py v6_ula_unnated): the router
	# forwards it to the WAN as it is, as a NAT after the ALG would leave it.
	ip -n "$NS_LAN" addr add fd00:99::10/64 dev eth0 nodad
	ip -n "$NS_RTR" addr add fd00:99::1/64 dev lan nodad
	# LAB_NAT66=0: no NAT66 table (a firewall's shape with routed IPv6 only, fw4.sh).
	[ "${LAB_NAT66:-1}" = 0 ] || lab_nsx "$NS_RTR" nft -f - <<'EOF6'
table ip6 salgnat66 {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" ip6 saddr fd00:77::/64 snat ip6 prefix to 2001:db8:78::/64
	}
}
EOF6
	# That the policy is stateful (new WAN -> LAN dropped, LAN -> WAN and its replies
	# passing) is the first IPv6 flow's job (flows.py v6_policy): no ping here.
	lab_log "IPv6 side up: 2001:db8:77::/64, fd00:77::/64 (NAT66 to 2001:db8:78::/64) and" \
		"fd00:78::/64 ($([ "${LAB_MASQ6:-1}" = 0 ] && echo "no masquerade" || echo "masquerade behind 2001:db8:113::1")) (LAN) /" \
		"2001:db8:113::/64 (WAN), ip6 forward drop + stateful"
}

# lab_conf_no_v6_prefix IN OUT: IN with every IPv6 prefix taken out of lan.networks (as
# shipped: the LAN side is then the side away from wan.interface; NAT66 then needs none
# there, conf.c check_nat66), and wan.masquerade6 with them (its prefixes are inside
# lan.networks: the v6_masq_* flows need them named). For run.sh LAB_V6_PREFIX=0 and tcp6.sh.
lab_conf_no_v6_prefix() {
	sed -e '/^lan:/s#, [0-9a-f]*:[0-9a-f:]*/[0-9]*##g' -e 's/, masquerade6: \[[^]]*\]//' "$1" >"$2"
	if grep -Eq "^lan:.*(2001:db8|fd00)" "$2" || ! grep -q '^lan: { networks: \[' "$2"; then
		echo "lab.yaml changed: cannot drop its IPv6 prefixes from lan.networks" >&2
		return 1
	fi
}

lab_kernel_helper() {
	set -e
	# Built into this kernel (CONFIG_NF_CONNTRACK_SIP=y); load the modules where they are modules.
	if command -v modprobe >/dev/null 2>&1; then
		modprobe nf_conntrack_sip 2>/dev/null || true
		modprobe nf_nat_sip 2>/dev/null || true
	fi
	[ -d /sys/module/nf_conntrack_sip ] || { echo "nf_conntrack_sip is not available" >&2; return 1; }
	lab_nsx "$NS_RTR" nft -f "$LAB_REPO/tests/netns/kernel-helper.nft"
	lab_nsx "$NS_RTR" conntrack -F >/dev/null 2>&1 || true
	lab_log "kernel helper: sip_direct_media=$(cat /sys/module/nf_conntrack_sip/parameters/sip_direct_media 2>/dev/null)" \
		"sip_direct_signalling=$(cat /sys/module/nf_conntrack_sip/parameters/sip_direct_signalling 2>/dev/null)"
	set +e
}

# LAB_SIPALGD_WRAP (e.g. "chroot /srv/root") and LAB_SIPALGD_BIN / LAB_SIPALGCTL_BIN
# run another build of the daemon in the router namespace: an installed package,
# a container's root filesystem, a musl build. Default: this checkout's binaries.
lab_sipalgd_start() {
	local bin="${LAB_SIPALGD_BIN:-$LAB_REPO/sipalgd}" ctl="${LAB_SIPALGCTL_BIN:-$LAB_REPO/sipalgctl}"
	local wrap=${LAB_SIPALGD_WRAP:-}
	if [ -z "$wrap" ] && { [ ! -x "$bin" ] || [ ! -x "$ctl" ]; }; then
		echo "ALG=sipalgd: $bin or $ctl not built (run 'make' first, or ALG=kernel)" >&2
		return 1
	fi
	LAB_SOCK="$LAB_TMP/sipalgd.sock"
	LAB_PIDFILE="$LAB_TMP/sipalgd.pid"
	LAB_CONF="$LAB_TMP/lab.yaml"
	LAB_DAEMON_LOG="$LAB_TMP/sipalgd.log"
	LAB_CTL="$ctl"
	export LAB_SOCK LAB_CTL
	# LAB_CONF_TEMPLATE: another lab.yaml (same @SOCK@/@PID@ placeholders).
	sed -e "s|@SOCK@|$LAB_SOCK|g" -e "s|@PID@|$LAB_PIDFILE|g" \
		"${LAB_CONF_TEMPLATE:-$LAB_REPO/tests/netns/lab.yaml}" >"$LAB_CONF"
	# shellcheck disable=SC2086 # the wrapper is a command and its arguments
	ip netns exec "$NS_RTR" $wrap "$bin" -c "$LAB_CONF" >"$LAB_DAEMON_LOG" 2>&1 </dev/null &
	LAB_DAEMON_PID=$!
	LAB_PIDS="$LAB_PIDS $LAB_DAEMON_PID"
	local i
	for i in $(seq 1 50); do
		if ! kill -0 "$LAB_DAEMON_PID" 2>/dev/null; then
			wait "$LAB_DAEMON_PID"; local drc=$?
			echo "sipalgd exited during start-up (status $drc); its log:" >&2
			sed 's/^/  | /' "$LAB_DAEMON_LOG" >&2
			LAB_DAEMON_PID=""
			return 1
		fi
		# LAB_START_UNHEALTHY=1: up when it answers at all (status exit 1:
		# a test of what status reports about a broken set-up)
		ip netns exec "$NS_RTR" timeout 2 "$ctl" -s "$LAB_SOCK" status >/dev/null 2>&1
		local src=$?
		if [ $src = 0 ] || { [ $src = 1 ] && [ "${LAB_START_UNHEALTHY:-0}" = 1 ]; }; then
			lab_log "sipalgd up (pid $LAB_DAEMON_PID) after ~$((i * 200)) ms"
			return 0
		fi
		sleep 0.2
	done
	echo "sipalgd did not answer 'sipalgctl status' within 10 s; its log:" >&2
	sed 's/^/  | /' "$LAB_DAEMON_LOG" >&2
	# not left running: the next start in the same lab would find it
	kill -KILL "$LAB_DAEMON_PID" 2>/dev/null
	wait "$LAB_DAEMON_PID" 2>/dev/null
	LAB_DAEMON_PID=""
	return 1
}

# Stop with SIGTERM, expect status 0 and no rules of its own left behind.
lab_sipalgd_stop() {
	local bad=0 i
	[ -n "$LAB_DAEMON_PID" ] || return 1
	ip netns exec "$NS_RTR" timeout 2 "$LAB_REPO/sipalgctl" -s "$LAB_SOCK" counters >"$LAB_TMP/counters.txt" 2>&1
	kill -TERM "$LAB_DAEMON_PID" 2>/dev/null
	for i in $(seq 1 50); do
		kill -0 "$LAB_DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$LAB_DAEMON_PID" 2>/dev/null; then
		echo "sipalgd did not exit within 5 s of SIGTERM" >&2
		kill -KILL "$LAB_DAEMON_PID" 2>/dev/null
		bad=1
	fi
	wait "$LAB_DAEMON_PID"; local drc=$?
	LAB_DAEMON_PID=""
	if [ "$drc" != 0 ]; then echo "sipalgd exit status $drc (want 0)" >&2; bad=1; fi
	local left
	left=$( { lab_nsx "$NS_RTR" iptables -t mangle -S; lab_nsx "$NS_RTR" ip6tables -t mangle -S; lab_nsx "$NS_RTR" nft list tables; } 2>&1 | grep -i sipalgd)
	if [ -n "$left" ]; then
		echo "sipalgd left rules behind after exit:" >&2
		printf '  | %s\n' "$left" >&2
		bad=1
	fi
	if [ $bad != 0 ]; then
		echo "sipalgd log:" >&2
		sed 's/^/  | /' "$LAB_DAEMON_LOG" >&2
		return 1
	fi
	lab_log "sipalgd stopped cleanly (status 0, no sipalgd rules left)"
	return 0
}

lab_router_start() {
	case "$ALG" in
	sipalgd) lab_sipalgd_start ;;
	kernel) lab_kernel_helper ;;
	none) lab_log "ALG=none: plain masquerade, no SIP ALG (rewrite/pinhole checks are expected to fail)" ;;
	esac
}

lab_router_stop() {
	case "$ALG" in
	sipalgd) lab_sipalgd_stop ;;
	*) return 0 ;;
	esac
}
