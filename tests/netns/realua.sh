#!/bin/bash
# Real third-party user agents through the ALG: two baresip phones behind
# the router (sipalgd as README "On a router" says, conf/sipalgd.yaml as
# shipped with wan.interface and lan.networks set), kamailio as the
# provider's registrar and record-routing proxy, and a third baresip on the
# Internet. What arrives at the provider's side is captured (tcpdump on the
# Internet namespace's link) and RTP is counted where it arrives (an nft
# counter in each UA's namespace).
#
#   phone A 192.168.50.11 --+
#                           br-lan 192.168.50.1  router  wan 203.0.113.2 --- 203.0.113.10 kamailio
#   phone B 192.168.50.12 --+        (sipalgd, masquerade, forward drop)      203.0.113.30 phone C
#
# Steps: 1. both phones register (B with RFC 5626 outbound) and refresh;
# 2. A calls C (BYE from A, then from C); 3. C calls A through kamailio;
# 4. A calls B through kamailio (hairpin through the public address, BYE
# from B); 5. A calls C, holds (re-INVITE a=sendonly), resumes; 6. an
# SRTP call (RTP/SAVP, a=crypto); 7. an ICE call (a=candidate), audio
# checked again after ICE's re-INVITE; 8. a TCP account on A (the relay):
# registers, calls C and is called; 9. REFER: A transfers C to B, C -> B
# (inbound to the phone), audio both ways; kamailio's OPTIONS pings answered.
# Each call: audio both ways (>= 50 RTP packets counted at each end), no
# pinhole or dialog left after BYE. At the end: no private literal in any
# SIP line that reached the Internet, no drop or refusal counted.
#
# Usage: tests/netns/realua.sh   (root; baresip-core, kamailio; ~30 s)
#   RU_MODE=observe   run the daemon in observe mode: the lab must fail
#                     (private literals reach kamailio).
#   RU_KEEP=1         keep the work directory (logs, capture).
#   RU_MEDIA_PCAP=1   also capture all UDP at the Internet side (media.pcap).
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
ID=${RU_ID:-$(( $$ % 10000 ))}
NA=salg-ru-a-$ID NB=salg-ru-b-$ID NR=salg-ru-r-$ID NI=salg-ru-i-$ID NC=salg-ru-c-$ID
WAN=203.0.113.2 KAM=203.0.113.10 IPA=192.168.50.11 IPB=192.168.50.12 IPC=203.0.113.30
WORK=$(mktemp -d /tmp/salg-ru-$ID.XXXXXX)
PIDS=""
CREATED=""

cleanup() {
	local rc=$?
	# ignored, not reset: `timeout` signals the script and then its whole
	# process group, and a second TERM must not cut the cleanup short
	# (the namespaces stayed behind)
	trap - EXIT
	trap '' INT TERM
	set +e
	local p
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for p in $PIDS; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null # reaped here: no "Killed" job notice
	done
	for n in $CREATED; do
		for p in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
		ip netns del "$n" 2>/dev/null
	done
	if [ "${RU_KEEP:-0}" = 1 ] || [ $rc != 0 ]; then echo "realua: work directory kept: $WORK" >&2
	else rm -rf "$WORK"; fi
	exit $rc
}
trap cleanup EXIT INT TERM

say() { echo "realua: $*"; }
FAILS=0
bad() { echo "realua: FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
die() { echo "realua: FAIL: $*" >&2; exit 1; }

for t in baresip kamailio kamcmd tcpdump; do
	command -v $t >/dev/null || die "$t not installed (make deps: baresip-core kamailio)"
done
[ "$(id -u)" = 0 ] || die "needs root"
make -s >/dev/null || die "make"

# --- topology -----------------------------------------------------------------
for n in $NA $NB $NR $NI $NC; do
	ip netns list | grep -qw "$n" && die "namespace $n exists"
	ip netns add "$n" || die "netns add $n"
	CREATED="$CREATED $n"
	ip -n "$n" link set lo up
done
set -e
ip -n $NR link add br-lan type bridge
ip -n $NR addr add 192.168.50.1/24 dev br-lan
ip -n $NR link set br-lan up
i=0
for pair in "$NA $IPA" "$NB $IPB"; do
	set -- $pair
	i=$((i + 1))
	ip link add ru-lan$i-$ID netns $NR type veth peer name eth0 netns "$1"
	ip -n $NR link set ru-lan$i-$ID master br-lan up
	ip -n "$1" addr add "$2"/24 dev eth0
	ip -n "$1" link set eth0 up
	ip -n "$1" route add default via 192.168.50.1
done
# The Internet: a bridge in kamailio's namespace, the router's WAN and
# phone C on it; the capture on that bridge sees all that arrives.
ip -n $NI link add br0 type bridge
ip -n $NI addr add $KAM/24 dev br0
ip -n $NI link set br0 up
ip link add wan netns $NR type veth peer name i-wan netns $NI
ip link add eth0 netns $NC type veth peer name i-c netns $NI
ip -n $NI link set i-wan master br0 up
ip -n $NI link set i-c master br0 up
ip -n $NR addr add $WAN/24 dev wan
ip -n $NR link set wan up
ip -n $NC addr add $IPC/24 dev eth0
ip -n $NC link set eth0 up
ip -n $NC route add default via $KAM
ip netns exec $NR sysctl -qw net.ipv4.ip_forward=1
# br_netfilter, where loaded, would hand bridged frames to the IP hooks
# (README: SIP/TCP then never reaches the relay): off, as README says.
if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
	ip netns exec $NR sysctl -qw net.bridge.bridge-nf-call-iptables=0 2>/dev/null || true
fi
# The router's own firewall (README "On a router", step 1).
ip netns exec $NR nft -f - <<'NFT'
table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iif lo accept
		iifname "br-lan" accept
		meta l4proto tcp meta mark 0x5f10 accept
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "br-lan" oifname "wan" accept
		ct status dnat accept
	}
}
table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" masquerade
	}
}
NFT
# RTP counted where it arrives: baresip's rtp_ports are 10000-10999.
for pair in "$NA $IPA" "$NB $IPB" "$NC $IPC"; do
	set -- $pair
	ip netns exec "$1" nft -f - <<NFT
table inet ru {
	counter rtp_in { }
	chain input {
		type filter hook input priority filter; policy accept;
		ip daddr $2 udp dport 10000-10999 counter name rtp_in
	}
}
NFT
done
set +e

# --- sipalgd: the shipped configuration, README step 3 ----------------------
sed -e 's/^  interface: eth1$/  interface: wan/' \
    -e 's|^    - 192.168.1.0/24$|    - 192.168.50.0/24|' \
    -e "s|/run/sipalgd\\.|$WORK/sipalgd.|" \
    -e "s/^mode: enforce\$/mode: ${RU_MODE:-enforce}/" \
    conf/sipalgd.yaml >"$WORK/sipalgd.yaml"
grep -q 'interface: wan' "$WORK/sipalgd.yaml" || die "sed: wan.interface"
grep -q '192.168.50.0/24' "$WORK/sipalgd.yaml" || die "sed: lan.networks"
./sipalgd -n -c "$WORK/sipalgd.yaml" >/dev/null || die "sipalgd -n"
ip netns exec $NR ./sipalgd -c "$WORK/sipalgd.yaml" >"$WORK/daemon.log" 2>&1 &
DPID=$!
PIDS="$PIDS $DPID"
CTL="ip netns exec $NR ./sipalgctl -s $WORK/sipalgd.sock"
ok=0
for _ in $(seq 50); do
	$CTL status >"$WORK/status" 2>&1 && { ok=1; break; }
	kill -0 $DPID 2>/dev/null || break
	sleep 0.1
done
[ $ok = 1 ] || { cat "$WORK/status" "$WORK/daemon.log" >&2; die "sipalgctl status never said ok"; }
say "sipalgd up: $(head -1 "$WORK/status")"

# --- the provider's side: capture, kamailio ---------------------------------
ip netns exec $NI tcpdump -i br0 -n -s 0 -U -w "$WORK/wan.pcap" port 5060 >"$WORK/tcpdump.log" 2>&1 &
PIDS="$PIDS $!"
if [ "${RU_MEDIA_PCAP:-0}" = 1 ]; then   # diagnosis: all UDP at the Internet side
	ip netns exec $NI tcpdump -i br0 -n -s 200 -U -w "$WORK/media.pcap" udp >/dev/null 2>&1 &
	PIDS="$PIDS $!"
fi
sed "s|WORKDIR|$WORK|g" tests/netns/realua/kamailio.cfg >"$WORK/kamailio.cfg"
ip netns exec $NI kamailio -f "$WORK/kamailio.cfg" -DD -E -w "$WORK" -P "$WORK/kamailio.pid" \
	>"$WORK/kamailio.log" 2>&1 &
PIDS="$PIDS $!"
KAMCMD="ip netns exec $NI kamcmd -s unix:$WORK/kamailio.ctl"
ok=0
for _ in $(seq 50); do
	$KAMCMD core.version >/dev/null 2>&1 && { ok=1; break; }
	sleep 0.1
done
[ $ok = 1 ] || { tail -20 "$WORK/kamailio.log" >&2; die "kamailio did not start"; }
for _ in $(seq 20); do grep -q 'listening on' "$WORK/tcpdump.log" && break; sleep 0.1; done

# --- the three baresip UAs ----------------------------------------------------
# ua NAME NS ADDR CTLPORT RTCPMUX ACCOUNT-PARAMS
ua() {
	local name=$1 ns=$2 addr=$3 port=$4 mux=$5 params=$6 d=$WORK/ua-$1
	mkdir -p "$d"
	sed -e "s|@ADDR@|$addr|g" -e "s|@CTLPORT@|$port|g" -e "s|@RTCPMUX@|$mux|" \
		tests/netns/realua/baresip.conf >"$d/config"
	echo "<sip:$name@$KAM>;answermode=auto;regint=10${params:+;$params}" >"$d/accounts"
	: >"$d/contacts"
	ip netns exec "$ns" baresip -f "$d" </dev/null >"$d/log" 2>&1 &
	PIDS="$PIDS $!"
}
uctl() {   # uctl NS PORT COMMAND [PARAMS]
	local ns=$1 port=$2
	shift 2
	ip netns exec "$ns" python3 tests/netns/realua/ua.py ctl "$port" "$@"
}
# All three offer and accept rtcp-mux. (RU_C_MUX=no: C does not, and the
# ICE call then has no audio from C: C answers a=ice-mismatch and sends no
# RTP at all, only 2 STUN checks (RU_MEDIA_PCAP=1). Baresip 1.0.0's own
# doing: A's offer, muxed with one component, is as consistent after the
# rewrite as before it (c=, m= and the candidate name the same address and
# port).) B registers with RFC 5626 outbound (+sip.instance, reg-id;
# Supported: outbound)
ua a $NA $IPA 4444 yes "${RU_A_PARAMS:-}"
ua b $NB $IPB 4444 yes "${RU_B_PARAMS-sipnat=outbound;outbound=\"sip:$KAM\"}"
ua c $NC $IPC 4444 ${RU_C_MUX:-yes} "${RU_C_PARAMS:-}"

# --- 1. registrations: kamailio's location holds public contacts -----------
ok=0
for _ in $(seq 50); do
	$KAMCMD ul.dump >"$WORK/ul" 2>&1
	n=$(grep -c 'Address: sip:' "$WORK/ul")
	[ "$n" -ge 3 ] && { ok=1; break; }
	sleep 0.2
done
grep -E 'AOR|Address' "$WORK/ul" | sed 's/^/  /'
[ $ok = 1 ] || die "not all three UAs registered (kamailio location: $n contacts)"
grep 'Address: sip:' "$WORK/ul" | grep -qE '192\.168\.' && bad "a private contact in kamailio's location"
for u in a b; do
	grep -q "Address: sip:$u-[^@]*@$WAN:" "$WORK/ul" ||
		bad "phone $u's contact in kamailio's location is not $WAN"
done
say "1. A, B, C registered; A's and B's contacts name $WAN"

rtp() {   # rtp NS: packets counted by the rtp_in counter
	ip netns exec "$1" nft list counter inet ru rtp_in | awk '/packets/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }'
}
# audio_both NAME NS1 NS2: both ends receive >= 50 more RTP packets within 6 s
audio_both() {
	local what=$1 n1=$2 n2=$3 a0 b0 a1 b1
	a0=$(rtp "$n1"); b0=$(rtp "$n2")
	for _ in $(seq 60); do
		a1=$(rtp "$n1"); b1=$(rtp "$n2")
		[ $((a1 - a0)) -ge 50 ] && [ $((b1 - b0)) -ge 50 ] && break
		sleep 0.1
	done
	say "   $what: RTP arrived $((a1 - a0)) at ${n1%-$ID}, $((b1 - b0)) at ${n2%-$ID}"
	[ $((a1 - a0)) -ge 50 ] && [ $((b1 - b0)) -ge 50 ] || { bad "$what: no audio both ways"; return 1; }
}
# closed WHAT: no dialog, no pinhole stream, no inbound media element
# left in the daemon within 5 s of the BYE
left() {
	$CTL --json pinholes >"$WORK/pinholes.json" 2>&1
	$CTL --json dialogs >"$WORK/dialogs.json" 2>&1
	python3 - "$WORK/pinholes.json" "$WORK/dialogs.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))['pinholes']
d = json.load(open(sys.argv[2]))['dialogs']
# media elements only: the registrations' signalling elements stay
media = [e for e in p['kernel_inbound'] if 10000 <= int(e['private'].rsplit(':', 1)[1]) <= 10999]
print(len(p['streams']), len(media), len(d))
PY
}
closed() {
	local what=$1 n
	for _ in $(seq 50); do
		n=$(left)
		[ "$n" = "0 0 0" ] && break
		sleep 0.1
	done
	say "   $what: after BYE streams/inbound elements/dialogs: $n"
	[ "$n" = "0 0 0" ] || bad "$what: pinholes or dialogs left after BYE ($n)"
}
# call NAME FROM-NS FROM-PORT TO-URI TO-NS HANGUP-NS HANGUP-PORT [SETTLE]
# SETTLE seconds later audio is checked again (after ICE's re-INVITE)
call() {
	local what=$1 fns=$2 fport=$3 uri=$4 tns=$5 hns=$6 hport=$7 settle=${8:-}
	# after a failure the UAs' state is unknown: the rest is skipped, the
	# checks of what reached the Internet still run
	[ $FAILS = 0 ] || { say "   $what: skipped"; return 0; }
	uctl "$fns" "$fport" dial "$uri" >/dev/null || { bad "$what: dial"; return 1; }
	audio_both "$what" "$fns" "$tns"
	if [ -n "$settle" ]; then
		sleep "$settle"
		audio_both "$what, ${settle}s later" "$fns" "$tns"
	fi
	# the daemon's view during the call, for a failure's diagnosis
	local f="$WORK/during-${what%%.*}-$RANDOM"
	{ $CTL dialogs; $CTL pinholes; ip netns exec $NR nft list table ip sipalgd
	  ip netns exec $NR conntrack -L -p udp 2>/dev/null; } >"$f" 2>&1
	uctl "$hns" "$hport" hangup >/dev/null || bad "$what: hangup"
	closed "$what"
}

call "2. A -> C, BYE from A" $NA 4444 "sip:c@$KAM" $NC $NA 4444
call "2. A -> C, BYE from C" $NA 4444 "sip:c@$KAM" $NC $NC 4444
call "3. C -> A, BYE from C" $NC 4444 "sip:a@$KAM" $NA $NC 4444
call "4. A -> B (hairpin), BYE from B" $NA 4444 "sip:b@$KAM" $NB $NB 4444

# --- 5. hold and resume: A calls C, holds (re-INVITE a=sendonly), resumes
if [ $FAILS = 0 ]; then
uctl $NA 4444 dial "sip:c@$KAM" >/dev/null || bad "5. dial"
audio_both "5. A -> C before hold" $NA $NC
uctl $NA 4444 hold >"$WORK/hold.out" || bad "5. hold"
sleep 1
uctl $NA 4444 resume >"$WORK/resume.out" || bad "5. resume"
audio_both "5. A -> C after resume" $NA $NC
uctl $NA 4444 hangup >/dev/null || bad "5. hangup"
closed "5. hold/resume"
fi

# --- 6. SRTP (RTP/SAVP with a=crypto) and 7. ICE (a=candidate with the
# phone's private address): second accounts on A (outbound only) and C
# (registered), each with the knob at both ends
if [ $FAILS = 0 ]; then
uctl $NC 4444 uanew "<sip:cs@$KAM>;answermode=auto;regint=10;mediaenc=srtp-mand" >/dev/null || bad "uanew cs"
uctl $NC 4444 uanew "<sip:ci@$KAM>;answermode=auto;regint=10;medianat=ice" >/dev/null || bad "uanew ci"
uctl $NA 4444 uanew "<sip:as@$KAM>;regint=0;mediaenc=srtp-mand" >/dev/null || bad "uanew as"
uctl $NA 4444 uanew "<sip:ai@$KAM>;regint=0;medianat=ice" >/dev/null || bad "uanew ai"
for _ in $(seq 50); do
	$KAMCMD ul.dump >"$WORK/ul" 2>&1
	grep -q 'Address: sip:cs-' "$WORK/ul" && grep -q 'Address: sip:ci-' "$WORK/ul" && break
	sleep 0.2
done
uctl $NA 4444 uafind "sip:as@$KAM" >/dev/null || bad "uafind as"
call "6. SRTP A -> C, BYE from A" $NA 4444 "sip:cs@$KAM" $NC $NA 4444
uctl $NA 4444 uafind "sip:ai@$KAM" >/dev/null || bad "uafind ai"
call "7. ICE A -> C, BYE from A" $NA 4444 "sip:ci@$KAM" $NC $NA 4444 3
fi

# --- 8. SIP over TCP (sip.tcp, the relay): a third account on A registers
# over TCP; A calls C over it, then C calls it (kamailio sends the INVITE
# down A's connection)
if [ $FAILS = 0 ]; then
uctl $NA 4444 uanew "<sip:at@$KAM;transport=tcp>;regint=10;answermode=auto" >/dev/null || bad "uanew at"
for _ in $(seq 50); do
	$KAMCMD ul.dump >"$WORK/ul" 2>&1
	grep -q 'Address: sip:at-' "$WORK/ul" && break
	sleep 0.2
done
grep 'Address: sip:at-' "$WORK/ul" | sed 's/^[[:space:]]*/  /'
grep -q "Address: sip:at-[^@]*@$WAN:[0-9]*;transport=tcp" "$WORK/ul" ||
	bad "8. A's TCP contact in kamailio's location is not $WAN;transport=tcp"
uctl $NA 4444 uafind "sip:at@$KAM" >/dev/null || bad "uafind at"
call "8. TCP: A -> C, BYE from A" $NA 4444 "sip:c@$KAM" $NC $NA 4444
uctl $NC 4444 uafind "sip:c@$KAM" >/dev/null || bad "uafind c"
call "8. TCP: C -> A, BYE from C" $NC 4444 "sip:at@$KAM" $NA $NC 4444
fi

# grep REGEX [FIRST-LINE-REGEX]: lines of SIP messages from our public address at the provider
G="python3 tests/netns/realua/ua.py grep $WORK/wan.pcap $WAN"

# --- 9. REFER (blind transfer): A calls C, then transfers C to B; C
# calls B (inbound to the phone behind the router), audio both ways
if [ $FAILS = 0 ]; then
uctl $NA 4444 uafind "sip:a@$KAM" >/dev/null || bad "uafind a"
uctl $NC 4444 uafind "sip:c@$KAM" >/dev/null || bad "uafind c"
uctl $NA 4444 dial "sip:c@$KAM" >/dev/null || bad "9. dial"
audio_both "9. A -> C before the transfer" $NA $NC
uctl $NA 4444 transfer "sip:b@$KAM" >"$WORK/transfer.out" || bad "9. transfer"
audio_both "9. C -> B after the transfer" $NC $NB
uctl $NB 4444 hangup >/dev/null || bad "9. hangup B"
uctl $NA 4444 hangup >/dev/null 2>&1
closed "9. REFER"
$G '^Refer-To:' '^REFER ' >"$WORK/refer" || bad "9. no REFER from A at the provider"
say "   9. at the provider: $(head -1 "$WORK/refer")"
fi

# --- what reached the Internet ----------------------------------------------
# keep-alives: kamailio's OPTIONS pings (every 4 s) answered by each phone
# through the router; the phones' registrations refreshed (regint 10 s)
end=$((SECONDS + 25))   # regint 10: a refresh within ~10 s, a ping every 4 s
while [ $SECONDS -lt $end ]; do
	ra=$($G "^From: <sip:a@$KAM>" '^REGISTER ' | wc -l)
	rb=$($G "^From: <sip:b@$KAM>" '^REGISTER ' | wc -l)
	oa=$($G '^CSeq: [0-9]+ OPTIONS' "^SIP/2.0 200" | wc -l)
	[ "$ra" -ge 2 ] && [ "$rb" -ge 2 ] && [ "$oa" -ge 4 ] && break
	sleep 0.5
done
say "1/5. from $WAN: REGISTERs from A $ra, from B $rb; 200 answers to kamailio's OPTIONS pings $oa"
[ "$ra" -ge 2 ] && [ "$rb" -ge 2 ] || bad "the phones' registrations were not refreshed through the router"
$G '^Contact: <sip:b-[^@]*@203\.0\.113\.2:[0-9]+>.*\+sip\.instance=.*;reg-id=1' '^REGISTER ' >/dev/null ||
	bad "B's RFC 5626 Contact (+sip.instance, reg-id) did not reach the provider rewritten"
[ "$oa" -ge 4 ] || bad "fewer than 4 answers to kamailio's OPTIONS pings"
# what the SRTP and ICE calls offered, as the provider saw it
if [ $FAILS = 0 ]; then
	$G '^m=audio [0-9]+ RTP/SAVP' '^INVITE ' >/dev/null && $G '^a=crypto:' '^INVITE ' >/dev/null ||
		bad "6. no RTP/SAVP offer with a=crypto at the provider"
	$G '^a=candidate:' '^INVITE ' >"$WORK/candidates" || bad "7. no a=candidate at the provider"
	say "6/7. at the provider: RTP/SAVP with a=crypto; $(wc -l <"$WORK/candidates") a=candidate lines, e.g. $(head -1 "$WORK/candidates")"
	# hold: the re-INVITE offering a=sendonly (or inactive) reached C
	$G '^a=(sendonly|inactive)' '^INVITE ' >"$WORK/hold.sdp" || bad "5. no hold re-INVITE at the provider"
fi
$KAMCMD ul.dump >"$WORK/ul" 2>&1
[ "$(grep -c 'Address: sip:' "$WORK/ul")" -ge 3 ] || bad "registrations lost by the end"

python3 tests/netns/realua/ua.py sip "$WORK/wan.pcap" $WAN >"$WORK/sip.txt"
rc=$?
grep -E 'PRIVATE|SIP messages' "$WORK/sip.txt" | head -20
[ $rc = 0 ] || bad "private literals reached the Internet (or no SIP captured)"
$CTL counters >"$WORK/counters"
badc=$(grep -E '^(pkts_dropped|parse_errors|drop_limit|pinholes_refused|drop_no_binding|queue_enobufs) ' \
	"$WORK/counters" | awk '$2 != 0')
[ -z "$badc" ] || bad "counters: $badc"
if [ $FAILS != 0 ]; then
	awk '$2 != 0' "$WORK/counters" >&2
	tail -20 "$WORK/daemon.log" >&2
	die "$FAILS failures"
fi
say PASS
