# tests/bench/lib.sh: the benchmark's topology, router modes and CPU probes.
# Sourced by tests/bench/run.sh.
#
#   salgb-lan-ID  eth0 192.168.77.10 (sipp UAC / phones)      default via .1
#        | veth
#   salgb-rtr-ID  lanID 192.168.77.1/24   wanID 203.0.113.1/24
#                 nft inet salgbfw: forward policy drop + established/related,
#                 lan->wan, ct status dnat; masquerade on wan
#                 router mode: none | helper (nf_conntrack_sip+nf_nat_sip) | sipalgd
#        | veth
#   salgb-wan-ID  eth0 203.0.113.10 (sipp UAS / proxy)  .20 (media server)
#
# Every veth end: GRO on, TSO off, threaded NAPI. The router's packet work
# (forwarding, conntrack, NAT, kernel helper) then runs in the kernel threads
# napi/lanID-N and napi/wanID-N, and nothing else runs in them: the router's
# CPU is those threads plus every thread of sipalgd (which also carries the
# forwarding of the packets it reinjects with its verdicts).
#
# Everything started is recorded in B_PIDS and killed by pid; the namespaces
# are deleted by bench_cleanup (EXIT trap), also on failure or ^C.

B_PY=/usr/bin/python3
[ -x "$B_PY" ] || B_PY=python3

blog() { printf '# %s\n' "$*" >&2; }

bench_init() {
	: "${B_REPO:?}"
	[ "$(id -u)" = 0 ] || { echo "the benchmark needs root (network namespaces)" >&2; exit 2; }
	B_ID=${BENCH_ID:-$(( $$ % 10000 ))}
	NS_LAN=salgb-lan-$B_ID
	NS_RTR=salgb-rtr-$B_ID
	NS_WAN=salgb-wan-$B_ID
	IF_LAN=lan$B_ID
	IF_WAN=wan$B_ID
	local ns
	for ns in "$NS_LAN" "$NS_RTR" "$NS_WAN"; do
		if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
			echo "namespace $ns already exists (another run with BENCH_ID=$B_ID?)" >&2; exit 2
		fi
	done
	B_TMP=$(mktemp -d "/tmp/salgb.$B_ID.XXXXXX")
	# The binaries as they were when the run started: a rebuild during the run
	# must not mix two versions in one table.
	mkdir -p "$B_TMP/bin"
	cp "$B_REPO/sipalgctl" "$B_TMP/bin/" 2>/dev/null
	cp "${SIPALGD_BIN:-$B_REPO/sipalgd}" "$B_TMP/bin/sipalgd" 2>/dev/null
	# the `queue` router's reader, with the daemon's own queue code
	case " ${ROUTERS:-} " in *" queue "*)
		# shellcheck disable=SC2046
		${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -D_GNU_SOURCE -I"$B_REPO/src" \
			$(pkg-config --cflags libmnl libnetfilter_queue) -o "$B_TMP/bin/nullq" \
			"$B_REPO/tests/bench/nullq.c" "$B_REPO/src/nfq.c" "$B_REPO/src/holdoff.c" "$B_REPO/src/log.c" "$B_REPO/src/stats.c" \
			$(pkg-config --libs libmnl libnetfilter_queue) || echo "# nullq did not build" >&2 ;;
	esac
	B_PIDS=""
	B_DAEMON_PID=""
	B_KEEP_TMP=${KEEP:-0}
	B_NAPI_PIDS=""
	export B_ID NS_LAN NS_RTR NS_WAN IF_LAN IF_WAN B_TMP
}

# Kill what we started (by pid), anything still inside our namespaces, delete them.
bench_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	local p ns alive
	for p in $B_PIDS; do kill -TERM "$p" 2>/dev/null; done
	if [ -n "$B_PIDS" ]; then
		for _ in $(seq 1 25); do
			alive=0
			for p in $B_PIDS; do kill -0 "$p" 2>/dev/null && alive=1; done
			[ $alive = 0 ] && break
			sleep 0.2
		done
		for p in $B_PIDS; do kill -KILL "$p" 2>/dev/null; done
	fi
	for ns in "$NS_LAN" "$NS_RTR" "$NS_WAN"; do
		[ -n "$ns" ] || continue
		ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns" || continue
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	if [ -n "${B_TMP:-}" ] && [ -d "$B_TMP" ]; then
		if [ "$B_KEEP_TMP" = 1 ] || [ "$rc" != 0 ]; then
			blog "logs kept in $B_TMP"
		else
			rm -rf "$B_TMP"
		fi
	fi
	exit "$rc"
}

# Start a command in the background, recorded for cleanup; sets B_LASTPID.
bstart() {
	"$@" &
	B_LASTPID=$!
	B_PIDS="$B_PIDS $B_LASTPID"
}

# Forget a pid we have waited for.
bforget() {
	local p out=""
	for p in $B_PIDS; do [ "$p" = "$1" ] || out="$out $p"; done
	B_PIDS=$out
}

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# GRO on, TSO off (SIOCETHTOOL from Python: ethtool is not a dependency), threaded NAPI.
bench_tune_if() {
	local ns=$1 dev=$2
	nsx "$ns" "$B_PY" "$B_REPO/tests/bench/netdev.py" "$dev" gro=1 tso=0 || return 1
	nsx "$ns" sh -c "echo 1 > /sys/class/net/$dev/threaded" || return 1
	[ "$(nsx "$ns" cat /sys/class/net/"$dev"/threaded)" = 1 ] || { echo "$ns/$dev: threaded NAPI not enabled" >&2; return 1; }
}

bench_topology() {
	set -e
	ip netns add "$NS_LAN"
	ip netns add "$NS_RTR"
	ip netns add "$NS_WAN"
	ip -n "$NS_RTR" link add "$IF_LAN" type veth peer name eth0 netns "$NS_LAN"
	ip -n "$NS_RTR" link add "$IF_WAN" type veth peer name eth0 netns "$NS_WAN"
	local ns
	for ns in "$NS_LAN" "$NS_RTR" "$NS_WAN"; do
		nsx "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
		nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
		ip -n "$ns" link set lo up
	done
	ip -n "$NS_LAN" addr add 192.168.77.10/24 dev eth0
	ip -n "$NS_LAN" addr add 192.168.77.11/24 dev eth0
	ip -n "$NS_LAN" link set eth0 up
	ip -n "$NS_LAN" route add default via 192.168.77.1
	ip -n "$NS_RTR" addr add 192.168.77.1/24 dev "$IF_LAN"
	ip -n "$NS_RTR" addr add 203.0.113.1/24 dev "$IF_WAN"
	ip -n "$NS_RTR" link set "$IF_LAN" up
	ip -n "$NS_RTR" link set "$IF_WAN" up
	nsx "$NS_RTR" sysctl -qw net.ipv4.ip_forward=1
	nsx "$NS_RTR" sysctl -qw "net.ipv4.conf.$IF_LAN.rp_filter=0" "net.ipv4.conf.$IF_WAN.rp_filter=0"
	ip -n "$NS_WAN" addr add 203.0.113.10/24 dev eth0
	ip -n "$NS_WAN" addr add 203.0.113.20/24 dev eth0
	ip -n "$NS_WAN" link set eth0 up
	set +e
	bench_tune_if "$NS_LAN" eth0 && bench_tune_if "$NS_RTR" "$IF_LAN" &&
		bench_tune_if "$NS_RTR" "$IF_WAN" && bench_tune_if "$NS_WAN" eth0 || return 1
	set -e
	# The operator's firewall: stateful forward policy and masquerade (as tests/netns).
	nsx "$NS_RTR" nft -f - <<EOF
table inet salgbfw {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "$IF_LAN" oifname "$IF_WAN" accept
		ct status dnat accept
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "$IF_WAN" masquerade
	}
}
EOF
	set +e
	bench_find_napi || return 1
	# The path must work before anything is measured.
	bench_path_check || { echo "no UDP path LAN -> WAN through the router" >&2; return 1; }
	blog "topology up: $NS_LAN | $NS_RTR ($IF_LAN, $IF_WAN; napi threads $B_NAPI_PIDS) | $NS_WAN"
}

bench_path_check() {
	local rc
	nsx "$NS_WAN" timeout 5 "$B_PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("203.0.113.10", 5999)); s.settimeout(4)
print("ready", flush=True)
d, a = s.recvfrom(100); sys.exit(0 if d == b"salgb" and a[0] == "203.0.113.1" else 1)' >"$B_TMP/pathcheck.out" 2>&1 &
	local rp=$!
	for _ in $(seq 1 20); do grep -q ready "$B_TMP/pathcheck.out" 2>/dev/null && break; sleep 0.1; done
	nsx "$NS_LAN" "$B_PY" -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(5): s.sendto(b"salgb", ("203.0.113.10", 5999)); time.sleep(0.05)'
	wait $rp; rc=$?
	nsx "$NS_RTR" conntrack -F >/dev/null 2>&1
	return $rc
}

# The router's NAPI kthreads: comm "napi/<dev>-<napi id>" (truncated to 15 chars).
bench_find_napi() {
	local p c
	B_NAPI_PIDS=""
	for p in $(ps -eo pid=,comm= | awk -v a="napi/$IF_LAN-" -v b="napi/$IF_WAN-" \
		'index($2, a) == 1 || index($2, b) == 1 {print $1}'); do
		B_NAPI_PIDS="$B_NAPI_PIDS $p"
	done
	B_NAPI_PIDS=${B_NAPI_PIDS# }
	if [ -z "$B_NAPI_PIDS" ]; then
		echo "no napi/$IF_LAN-* or napi/$IF_WAN-* kernel threads: threaded NAPI did not take" >&2
		return 1
	fi
	for p in $B_NAPI_PIDS; do
		c=$(cat /proc/"$p"/comm)
		case "$c" in napi/$IF_LAN-*) B_NAPI_LAN="${B_NAPI_LAN:-} $p" ;; napi/$IF_WAN-*) B_NAPI_WAN="${B_NAPI_WAN:-} $p" ;; esac
	done
	export B_NAPI_PIDS
}

# Sum of on-CPU ns (schedstat field 1) over the given thread ids / processes' tasks.
# cpu_ns napi|daemon
cpu_ns_tids() {
	local t s=0 v
	for t in "$@"; do
		read -r v _ <"/proc/$t/schedstat" 2>/dev/null || continue
		s=$((s + v))
	done
	echo $s
}
cpu_ns_proc() {
	local pid=$1 f s=0 v
	[ -n "$pid" ] || { echo 0; return; }
	for f in /proc/"$pid"/task/*/schedstat; do
		read -r v _ <"$f" 2>/dev/null || continue
		s=$((s + v))
	done
	echo $s
}
# "ns/dev rx_dropped tx_dropped" for the four veth ends (ip -s link).
veth_drop_counts() {
	local ns dev
	for ns in "$NS_LAN:eth0" "$NS_RTR:$IF_LAN" "$NS_RTR:$IF_WAN" "$NS_WAN:eth0"; do
		dev=${ns#*:}; ns=${ns%%:*}
		ip -n "$ns" -s link show dev "$dev" 2>/dev/null | awk -v n="${ns%%-[0-9]*}/$dev" \
			'/RX:/ {getline; rx=$4} /TX:/ {getline; tx=$4} END {print n, rx + 0, tx + 0}'
	done
}
# Differences between two veth_drop_counts outputs, only the non-zero ones.
veth_drop_delta() {
	paste -d' ' <(printf '%s\n' "$1") <(printf '%s\n' "$2") | awk '{rx = $5 - $2; tx = $6 - $3;
		if (rx || tx) printf "%s rx %d tx %d; ", $1, rx, tx}'
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# ---- router modes -----------------------------------------------------------

router_helper_on() {
	modprobe nf_conntrack_sip 2>/dev/null || true
	modprobe nf_nat_sip 2>/dev/null || true
	[ -d /sys/module/nf_conntrack_sip ] || { echo "nf_conntrack_sip is not available" >&2; return 1; }
	nsx "$NS_RTR" nft -f "$B_REPO/tests/netns/kernel-helper.nft" || return 1
	nsx "$NS_RTR" conntrack -F >/dev/null 2>&1 || true
}

router_helper_off() {
	nsx "$NS_RTR" nft delete table inet sipref 2>/dev/null
	nsx "$NS_RTR" conntrack -F >/dev/null 2>&1 || true
	return 0
}

# router_sipalgd_on TAG [EXTRA_YAML_FILE]: start sipalgd with tests/bench/bench.yaml.
router_sipalgd_on() {
	local tag=$1 bin="$B_TMP/bin/sipalgd" ctl="$B_TMP/bin/sipalgctl" i
	[ -x "$bin" ] && [ -x "$ctl" ] || { echo "$B_REPO/sipalgd or sipalgctl not built (run make)" >&2; return 1; }
	B_SOCK="$B_TMP/sipalgd.sock"
	B_CONF="$B_TMP/sipalgd-$tag.yaml"
	B_DAEMON_LOG="$B_TMP/sipalgd-$tag.log"
	B_CTL="$ctl"
	sed -e "s|@SOCK@|$B_SOCK|g" -e "s|@PID@|$B_TMP/sipalgd.pid|g" -e "s|@WAN@|$IF_WAN|g" \
		-e "s|@TABLE@|salgb_$B_ID|g" -e "s|@QUEUE@|$((3000 + B_ID % 1000))|g" \
		-e "s|@HOLDOFF@|${HOLDOFF_US:-2000}|g" \
		"$B_REPO/tests/bench/bench.yaml" >"$B_CONF"
	# the TCP cell: the relay on whatever the shipped default
	[ "${B_SIP_TCP:-}" = 1 ] && sed -i 's|^sip: { ports: \[5060\] }|sip: { ports: [5060], tcp: true }|' "$B_CONF"
	[ -n "${SIPALGD_YAML:-}" ] && printf '%s\n' "$SIPALGD_YAML" >>"$B_CONF"
	nsx "$NS_RTR" conntrack -F >/dev/null 2>&1 || true
	# Every start is a cold start: no calls taken over from the previous run's
	# state file (kept beside the control socket when paths.state_file is unset).
	rm -f "${B_SOCK%.sock}.state"
	bstart ip netns exec "$NS_RTR" "$bin" -c "$B_CONF" >"$B_DAEMON_LOG" 2>&1 </dev/null
	B_DAEMON_PID=$B_LASTPID
	for i in $(seq 1 50); do
		if ! kill -0 "$B_DAEMON_PID" 2>/dev/null; then
			echo "sipalgd exited during start-up; its log:" >&2
			sed 's/^/  | /' "$B_DAEMON_LOG" >&2
			bforget "$B_DAEMON_PID"; B_DAEMON_PID=""
			return 1
		fi
		if nsx "$NS_RTR" timeout 2 "$ctl" -s "$B_SOCK" status >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.2
	done
	echo "sipalgd did not answer 'sipalgctl status' within 10 s; its log:" >&2
	sed 's/^/  | /' "$B_DAEMON_LOG" >&2
	return 1
}

sipalgctl_b() { nsx "$NS_RTR" timeout 5 "$B_CTL" -s "$B_SOCK" "$@"; }

# Stop with SIGTERM; returns the exit status (124 if it had to be killed).
router_sipalgd_off() {
	local i rc
	[ -n "$B_DAEMON_PID" ] || return 0
	kill -TERM "$B_DAEMON_PID" 2>/dev/null
	for i in $(seq 1 50); do
		kill -0 "$B_DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$B_DAEMON_PID" 2>/dev/null; then
		echo "sipalgd did not exit within 5 s of SIGTERM; killed" >&2
		kill -KILL "$B_DAEMON_PID" 2>/dev/null
	fi
	wait "$B_DAEMON_PID" 2>/dev/null; rc=$?
	bforget "$B_DAEMON_PID"
	B_DAEMON_PID=""
	nsx "$NS_RTR" conntrack -F >/dev/null 2>&1 || true
	return $rc
}

# router_queue_on: the floor of a queue-based ALG (tests/bench/nullq.c):
# SIP crossing the WAN link diverted to NFQUEUE as sipalgd diverts it (mangle
# FORWARD, UDP port 5060 both ways), read and accepted unchanged with
# sipalgd's batching and hold-off. Calls complete as through masquerade.
router_queue_on() {
	local q=$(( 3000 + B_ID % 1000 )) d k i
	[ -x "$B_TMP/bin/nullq" ] || { echo "nullq not built" >&2; return 1; }
	nsx "$NS_RTR" iptables -w -t mangle -N salgb_nullq || return 1
	for d in -i -o; do for k in --dport --sport; do
		nsx "$NS_RTR" iptables -w -t mangle -A salgb_nullq "$d" "$IF_WAN" -p udp "$k" 5060 \
			-j NFQUEUE --queue-num "$q" || return 1
	done; done
	nsx "$NS_RTR" iptables -w -t mangle -I FORWARD 1 -p udp -j salgb_nullq || return 1
	nsx "$NS_RTR" conntrack -F >/dev/null 2>&1 || true
	bstart ip netns exec "$NS_RTR" "$B_TMP/bin/nullq" "$q" "${HOLDOFF_US:-2000}" >"$B_TMP/nullq.log" 2>&1 </dev/null
	B_DAEMON_PID=$B_LASTPID
	for i in $(seq 1 50); do
		grep -q "^ *$q " /proc/net/netfilter/nfnetlink_queue 2>/dev/null && return 0
		nsx "$NS_RTR" grep -q "^ *$q " /proc/net/netfilter/nfnetlink_queue 2>/dev/null && return 0
		kill -0 "$B_DAEMON_PID" 2>/dev/null || { cat "$B_TMP/nullq.log" >&2; return 1; }
		sleep 0.1
	done
	echo "nullq did not bind queue $q" >&2
	return 1
}

router_queue_off() {
	[ -n "$B_DAEMON_PID" ] && { kill -TERM "$B_DAEMON_PID" 2>/dev/null; wait "$B_DAEMON_PID" 2>/dev/null; bforget "$B_DAEMON_PID"; }
	B_DAEMON_PID=""
	nsx "$NS_RTR" iptables -w -t mangle -D FORWARD -p udp -j salgb_nullq 2>/dev/null
	nsx "$NS_RTR" iptables -w -t mangle -F salgb_nullq 2>/dev/null
	nsx "$NS_RTR" iptables -w -t mangle -X salgb_nullq 2>/dev/null
	nsx "$NS_RTR" conntrack -F >/dev/null 2>&1 || true
	return 0
}

router_on() {
	case "$1" in
	none) nsx "$NS_RTR" conntrack -F >/dev/null 2>&1; return 0 ;;
	helper) router_helper_on ;;
	sipalgd) router_sipalgd_on "$2" ;;
	queue) router_queue_on ;;
	*) echo "unknown router '$1' (none, helper, sipalgd, queue)" >&2; return 2 ;;
	esac
}

router_off() {
	case "$1" in
	none) nsx "$NS_RTR" conntrack -F >/dev/null 2>&1; return 0 ;;
	helper) router_helper_off ;;
	sipalgd) router_sipalgd_off ;;
	queue) router_queue_off ;;
	esac
}
