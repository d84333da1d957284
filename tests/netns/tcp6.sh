#!/bin/bash
# tests/netns/tcp6.sh (make tcp-lab): SIP over TCP on IPv6 through the relay.
#
# Routed IPv6 (no NAT66): the relay takes the phone's connection (TPROXY,
# table ip6 <nft_table>_tcp6) and connects to the provider from the phone's
# own address and port, so each message goes through the policy (media
# pinholes: conntrack entries) and leaves byte for byte. The router here also
# drops conntrack-invalid packets on its own input and output (as fw4's
# drop_invalid does): the phone's connection to the relay and the relay's to
# the provider have the same addresses and ports; the relay's own conntrack
# zone gives each its own entry, and none of their packets may be invalid.
#  1. flows.py v6_tcp_call passes; counters: tcp_ipv6, pinholes_ct_created,
#     nothing rewritten, no invalid packet dropped; status says the relay is on.
#     A connection straight to the listener is refused; an unframeable
#     message is reset, nothing of it forwarded. Its table deleted (a
#     firewall reload) is put back.
#     With NAT66 (1d): v6_nat66_tcp_call under a router NAT66 rule for forwarded
#     traffic only; counters tcp_nat66, nat66_out, pinholes_ct_nat.
#  2. a clean stop leaves no ip6 table, rule or route; kernel-rules/tproxy.sh
#     installs the same IPv6 copy and removes it.
#  3. kill -9: IPv6 SIP/TCP from the LAN (and from the NAT66 ULA) is reset, nothing
#     reaches the WAN.
#  4. sip.tcp: false: IPv6 SIP/TCP is left alone (it reaches the provider
#     directly, no relay table).  5. sip.ipv6: false: the relay says IPv6 is off.
# shellcheck disable=SC2034  # lib.sh reads LAB_KEEP_TMP
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
LAB_REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
PY=/usr/bin/python3
LAB_V6=1
export LAB_V6

lab_init
trap lab_cleanup EXIT
trap 'echo "# interrupted" >&2; exit 130' INT TERM
echo "# sipalgd SIP/TCP over IPv6 lab: id=$LAB_ID tmp=$LAB_TMP"
# As shipped: no IPv6 prefix in lan.networks (a delegated prefix is the
# provider's to change), so the LAN side is the side away from wan.interface
# (run.sh runs v6_tcp_call with the prefix named).
lab_conf_no_v6_prefix "$HERE/lab.yaml" "$LAB_TMP/lab-noprefix.yaml" || exit 1
LAB_CONF_TEMPLATE=$LAB_TMP/lab-noprefix.yaml
lab_topology
lab_nsx "$NS_RTR" nft -f - <<'EOF'
table inet salgstrict {
	chain input {
		type filter hook input priority filter; policy accept;
		ct state invalid counter drop
	}
	chain output {
		type filter hook output priority filter; policy accept;
		ct state invalid counter drop
	}
}
EOF
ALG=sipalgd
fail=0
ctr() { awk -v k="$1" '$1 == k { print $2 }' "$LAB_TMP/counters.txt"; }

# 1. the call
lab_sipalgd_start || { LAB_KEEP_TMP=1; exit 1; }
if timeout 60 "$PY" "$HERE/flows.py" --id "$LAB_ID" --v6 v6_tcp_call >"$LAB_TMP/flow.out" 2>&1; then
	sed 's/^/# /' "$LAB_TMP/flow.out" | grep -E '^# (ok|not ok)'
else
	sed 's/^/# /' "$LAB_TMP/flow.out"; fail=1
fi
lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" counters >"$LAB_TMP/counters.txt" 2>&1
st=$(lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" status 2>&1)
echo "$st" | grep '^tcp relay' | sed 's/^/# status: /'
grep -E '^(tcp_ipv6|tcp_msgs|tcp_accepted|sip_ipv6_rx|pinholes_ct_created|pkts_rewritten|ct_deletes) ' \
	"$LAB_TMP/counters.txt" | tr '\n' ' ' | sed 's/^/# counters: /'; echo
[ "$(ctr tcp_ipv6)" = 1 ] || { echo "FAIL tcp_ipv6 $(ctr tcp_ipv6), want 1: the relay did not take the call" >&2; fail=1; }
[ "$(ctr tcp_msgs)" -ge 6 ] || { echo "FAIL tcp_msgs $(ctr tcp_msgs) < 6 (INVITE, 180, 200, ACK, BYE, 200)" >&2; fail=1; }
[ "$(ctr pinholes_ct_created)" -ge 1 ] || { echo "FAIL pinholes_ct_created $(ctr pinholes_ct_created)" >&2; fail=1; }
[ "$(ctr pkts_rewritten)" = 0 ] || { echo "FAIL pkts_rewritten $(ctr pkts_rewritten): routed IPv6 is never rewritten" >&2; fail=1; }
echo "$st" | grep -q '^tcp relay ipv6: on' || { echo "FAIL status does not say 'tcp relay ipv6: on'" >&2; fail=1; }
inv=$(lab_nsx "$NS_RTR" nft list table inet salgstrict | grep -o 'packets [0-9]*' | awk '{ s += $2 } END { print s + 0 }')
echo "# conntrack-invalid packets dropped on the router's input/output: $inv"
[ "$inv" = 0 ] || { echo "FAIL $inv packets were conntrack-invalid (the zone keeps the relay's two connections apart)" >&2; fail=1; }

rules6_of() {
	lab_nsx "$NS_RTR" nft list table ip6 sipalgd_lab_tcp6 2>/dev/null | sed -E 's/packets [0-9]+ bytes [0-9]+/COUNTER/'
	lab_nsx "$NS_RTR" ip -6 rule | grep 0x5f10
	lab_nsx "$NS_RTR" ip -6 route show table 5061 2>/dev/null
}
rules6_of >"$LAB_TMP/rules6-daemon.txt"
grep -q 'tproxy to :' "$LAB_TMP/rules6-daemon.txt" || { echo "FAIL no IPv6 TPROXY rule while the daemon runs" >&2; fail=1; }
relay_port=$(sed -n 's/.*relay listening on port \([0-9]*\).*/\1/p' "$LAB_DAEMON_LOG")

# 1a. straight to the relay's listener (not diverted, from the WAN to the
# router's own address): refused, never relayed to itself
timeout 10 ip netns exec "$NS_WAN" "$PY" - "$relay_port" <<'EOF' | sed 's/^/# direct to the listener: /'
import socket, sys, time
s = socket.socket(socket.AF_INET6); s.settimeout(3)
try:
    s.connect(("2001:db8:113::1", int(sys.argv[1])))
    s.sendall(b"\r\n\r\n"); time.sleep(0.3)
    print("connected, read %r" % s.recv(100))
except OSError as e:
    print("refused (%s)" % type(e).__name__)
EOF
sleep 0.3
lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" counters >"$LAB_TMP/counters.txt" 2>&1
[ "$(ctr tcp_conns)" = 0 ] && [ "$(ctr tcp_accepted)" = 2 ] ||
	{ echo "FAIL a connection straight to the listener: tcp_conns $(ctr tcp_conns) (want 0), tcp_accepted $(ctr tcp_accepted) (want 2)" >&2; fail=1; }

# 1b. unframeable over IPv6 (no Content-Length): reset, nothing of it forwarded
timeout 10 ip netns exec "$NS_WAN" "$PY" - "$LAB_TMP/unframed.txt" <<'EOF' &
import socket, sys
ls = socket.socket(socket.AF_INET6); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("2001:db8:113::10", 5060)); ls.listen(1); ls.settimeout(5)
got = b""
try:
    c, a = ls.accept(); c.settimeout(3)
    while True:
        d = c.recv(4096)
        if not d:
            break
        got += d
except OSError:
    pass
open(sys.argv[1], "w").write("%d" % len(got))
EOF
wpid=$!
sleep 0.3
timeout 10 ip netns exec "$NS_LAN" "$PY" - <<'EOF' | sed 's/^/# unframeable: /'
import socket
s = socket.socket(socket.AF_INET6); s.settimeout(3); s.bind(("2001:db8:77::10", 0))
s.connect(("2001:db8:113::10", 5060))
s.sendall(b"OPTIONS sip:x@[2001:db8:113::10] SIP/2.0\r\nVia: SIP/2.0/TCP [2001:db8:77::10]:5060\r\n"
          b"Call-ID: nolen@x\r\nCSeq: 1 OPTIONS\r\n\r\n")
try:
    print("phone read %r" % s.recv(100))
except OSError as e:
    print("phone: %s" % type(e).__name__)
EOF
wait "$wpid"
lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" counters >"$LAB_TMP/counters.txt" 2>&1
echo "# unframeable: the provider got $(cat "$LAB_TMP/unframed.txt" 2>/dev/null) bytes; tcp_frame_errors $(ctr tcp_frame_errors)"
[ "$(cat "$LAB_TMP/unframed.txt" 2>/dev/null)" = 0 ] && [ "$(ctr tcp_frame_errors)" = 1 ] ||
	{ echo "FAIL an unframeable message over IPv6: want 0 bytes forwarded and tcp_frame_errors 1" >&2; fail=1; }

# 1c. a firewall reload that removes the IPv6 relay table: put back (fwwatch)
lab_nsx "$NS_RTR" nft delete table ip6 sipalgd_lab_tcp6
back=0
for _ in $(seq 1 50); do
	lab_nsx "$NS_RTR" nft list table ip6 sipalgd_lab_tcp6 >/dev/null 2>&1 && { back=1; break; }
	sleep 0.1
done
if [ $back = 1 ]; then echo "# firewall reload: table ip6 sipalgd_lab_tcp6 put back"
else echo "FAIL table ip6 sipalgd_lab_tcp6 not put back within 5 s of its deletion" >&2; fail=1; fi

# 1d. NAT66 over TCP (wan.nat66_*): v6_nat66_tcp_call from the ULA fd00:77::10. The
# router's NAT66 rule here covers forwarded traffic only (iifname "lan", as a rule written
# for the LAN's hosts would), not the router's own connections: the relay must not depend
# on it (it connects from the phone's public image itself, nothing of its connection NATed).
lab_nsx "$NS_RTR" nft flush chain ip6 salgnat66 postrouting
lab_nsx "$NS_RTR" nft add rule ip6 salgnat66 postrouting iifname lan oifname wan ip6 saddr fd00:77::/64 \
	snat ip6 prefix to 2001:db8:78::/64
if timeout 60 "$PY" "$HERE/flows.py" --id "$LAB_ID" --v6 v6_nat66_tcp_call >"$LAB_TMP/flow66.out" 2>&1; then
	sed 's/^/# /' "$LAB_TMP/flow66.out" | grep -E '^# (ok|not ok)'
else
	sed 's/^/# /' "$LAB_TMP/flow66.out"; fail=1
fi
lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" counters >"$LAB_TMP/counters.txt" 2>&1
grep -E '^(tcp_ipv6|tcp_nat66|nat66_out|nat66_in|pinholes_ct_nat|pkts_rewritten) ' \
	"$LAB_TMP/counters.txt" | tr '\n' ' ' | sed 's/^/# NAT66 counters: /'; echo
[ "$(ctr tcp_nat66)" = 1 ] || { echo "FAIL tcp_nat66 $(ctr tcp_nat66), want 1" >&2; fail=1; }
[ "$(ctr nat66_out)" -ge 9 ] || { echo "FAIL nat66_out $(ctr nat66_out) < 9 (INVITE: Via, Call-ID, Contact, o=, c=; ACK, BYE: Via, Call-ID)" >&2; fail=1; }
[ "$(ctr pinholes_ct_nat)" -ge 1 ] || { echo "FAIL pinholes_ct_nat $(ctr pinholes_ct_nat): no NAT66 media pinhole" >&2; fail=1; }
inv=$(lab_nsx "$NS_RTR" nft list table inet salgstrict | grep -o 'packets [0-9]*' | awk '{ s += $2 } END { print s + 0 }')
[ "$inv" = 0 ] || { echo "FAIL NAT66: $inv packets were conntrack-invalid" >&2; fail=1; }

# 2. a clean stop removes the IPv6 copy too
lab_sipalgd_stop || fail=1
left=$( { lab_nsx "$NS_RTR" nft list tables; lab_nsx "$NS_RTR" ip -6 rule; } 2>&1 | grep -E 'sipalgd|0x5f10'
	lab_nsx "$NS_RTR" ip -6 route show table 5061 2>/dev/null)
[ -z "$left" ] || { echo "FAIL left after a clean stop: $left" >&2; fail=1; }
# kernel-rules/tproxy.sh installs the same IPv6 copy, and removes it all
lab_nsx "$NS_RTR" env WAN_IF=wan SIP_PORTS=5060 RELAY_PORT="$relay_port" TABLE=sipalgd_lab_tcp \
	sh "$LAB_REPO/kernel-rules/tproxy.sh" add || fail=1
rules6_of >"$LAB_TMP/rules6-script.txt"
if diff -u "$LAB_TMP/rules6-daemon.txt" "$LAB_TMP/rules6-script.txt" >"$LAB_TMP/rules6.diff"; then
	echo "# kernel-rules/tproxy.sh: the same ip6 table, rule and route as the daemon's"
else
	echo "FAIL kernel-rules/tproxy.sh differs from the daemon's IPv6 rules:" >&2; cat "$LAB_TMP/rules6.diff" >&2; fail=1
fi
lab_nsx "$NS_RTR" env WAN_IF=wan RELAY_PORT="$relay_port" TABLE=sipalgd_lab_tcp sh "$LAB_REPO/kernel-rules/tproxy.sh" del
[ -z "$(rules6_of)" ] || { echo "FAIL tproxy.sh del left: $(rules6_of)" >&2; fail=1; }

# A phone's connection to [proxy]:5060 and what reaches the provider, for 3 and 4.
attempt() {   # attempt FILE [SRC]: the provider's view in FILE (json), the phone's (from SRC) in stdout
	timeout 20 ip netns exec "$NS_WAN" "$PY" - "$1" <<'EOF' &
import json, socket, sys, time
ls = socket.socket(socket.AF_INET6); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("2001:db8:113::10", 5060)); ls.listen(4); ls.settimeout(0.2)
got, end = [], time.time() + 4
while time.time() < end and not got:
    try:
        c, a = ls.accept()
        got.append(a[0])
        c.settimeout(1)
        try:
            got.append(c.recv(4096).decode("latin-1"))
        except socket.timeout:
            pass
    except socket.timeout:
        pass
json.dump(got, open(sys.argv[1], "w"))
EOF
	local lst=$!
	sleep 0.3
	timeout 10 ip netns exec "$NS_LAN" "$PY" - "${2:-2001:db8:77::10}" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET6); s.settimeout(3); s.bind((sys.argv[1], 0))
try:
    s.connect(("2001:db8:113::10", 5060))
    s.sendall(b"OPTIONS sip:x@[2001:db8:113::10] SIP/2.0\r\nVia: SIP/2.0/TCP [2001:db8:77::10]:5060\r\n"
              b"Call-ID: t6@x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    print("connected")
except OSError as e:
    print("refused (%s)" % type(e).__name__)
EOF
	wait "$lst"
}

# 3. kill -9: the rules stay, the relay is gone
lab_sipalgd_start || { LAB_KEEP_TMP=1; exit 1; }
kill -KILL "$LAB_DAEMON_PID"; wait "$LAB_DAEMON_PID" 2>/dev/null; LAB_DAEMON_PID=""
ph=$(attempt "$LAB_TMP/dead.json")
echo "# dead daemon: phone: $ph; provider got: $(cat "$LAB_TMP/dead.json")"
# reset at once by the failclosed chain (a timeout would mean it went out and its answer was dropped)
case "$ph" in "refused (ConnectionRefusedError)"|"refused (ConnectionResetError)") ;;
*) echo "FAIL with the daemon dead, IPv6 SIP/TCP was not reset: $ph" >&2; fail=1 ;; esac
[ "$(cat "$LAB_TMP/dead.json")" = "[]" ] || { echo "FAIL with the daemon dead, IPv6 SIP/TCP reached the WAN" >&2; fail=1; }
# the same from the NAT66 ULA: reset, never out (its router NAT66 rule would carry it)
ph=$(attempt "$LAB_TMP/dead66.json" fd00:77::10)
echo "# dead daemon, NAT66 ULA: phone: $ph; provider got: $(cat "$LAB_TMP/dead66.json")"
case "$ph" in "refused (ConnectionRefusedError)"|"refused (ConnectionResetError)") ;;
*) echo "FAIL with the daemon dead, SIP/TCP from the NAT66 ULA was not reset: $ph" >&2; fail=1 ;; esac
[ "$(cat "$LAB_TMP/dead66.json")" = "[]" ] || { echo "FAIL with the daemon dead, SIP/TCP from the NAT66 ULA reached the WAN" >&2; fail=1; }
lab_sipalgd_start && lab_sipalgd_stop || fail=1   # the stale rest (diversion, routes) removed

# 4. sip.tcp: false: left alone, like IPv4 TCP
sed 's|^sip: { ports: \[5060\] }|sip: { ports: [5060], tcp: false }|' "$LAB_TMP/lab-noprefix.yaml" >"$LAB_TMP/notcp.yaml"
grep -q 'tcp: false' "$LAB_TMP/notcp.yaml" || { echo "lab.yaml: cannot turn sip.tcp off" >&2; exit 1; }
LAB_CONF_TEMPLATE="$LAB_TMP/notcp.yaml" lab_sipalgd_start || { LAB_KEEP_TMP=1; exit 1; }
ph=$(attempt "$LAB_TMP/notcp.json")
echo "# sip.tcp false: phone: $ph; provider got a connection from: $("$PY" -c 'import json,sys; print((json.load(open(sys.argv[1])) or ["nothing"])[0])' "$LAB_TMP/notcp.json")"
"$PY" -c 'import json,sys; g = json.load(open(sys.argv[1])); sys.exit(0 if g[:1] == ["2001:db8:77::10"] and "OPTIONS" in "".join(g[1:]) else 1)' \
	"$LAB_TMP/notcp.json" || { echo "FAIL sip.tcp: false: IPv6 SIP/TCP did not pass untouched" >&2; fail=1; }
lab_nsx "$NS_RTR" nft list table ip6 sipalgd_lab_tcp6 >/dev/null 2>&1 && { echo "FAIL sip.tcp: false installed the ip6 relay table" >&2; fail=1; }
lab_sipalgd_stop || fail=1

# 5. sip.ipv6: false: the IPv4 relay only, and status says so
sed 's|^sip: { ports: \[5060\] }|sip: { ports: [5060], ipv6: false }|' "$LAB_TMP/lab-noprefix.yaml" >"$LAB_TMP/nov6.yaml"
LAB_CONF_TEMPLATE="$LAB_TMP/nov6.yaml" lab_sipalgd_start || { LAB_KEEP_TMP=1; exit 1; }
st=$(lab_nsx "$NS_RTR" "$LAB_CTL" -s "$LAB_SOCK" status 2>&1)
echo "$st" | grep '^tcp relay ipv6' | sed 's/^/# sip.ipv6 false: /'
echo "$st" | grep -q '^tcp relay ipv6: off (sip.ipv6: false)' || { echo "FAIL sip.ipv6: false: status: $st" >&2; fail=1; }
lab_nsx "$NS_RTR" nft list table ip6 sipalgd_lab_tcp6 >/dev/null 2>&1 && { echo "FAIL sip.ipv6: false installed the ip6 relay table" >&2; fail=1; }
lab_sipalgd_stop || fail=1

if [ $fail != 0 ]; then
	LAB_KEEP_TMP=1
	echo "# sipalgd log:"; sed 's/^/  | /' "$LAB_DAEMON_LOG" | tail -n 30
	echo "# tcp6 lab: FAILED"
	exit 1
fi
echo "# tcp6 lab: passed"
