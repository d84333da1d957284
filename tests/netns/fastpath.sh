#!/bin/bash
# tests/netns/fastpath.sh: the tc fast path's loader and its place in the
# daemon (issue 11, docs/fastpath.md), in the netns lab. About a minute.
#
#   (a) queue.fastpath: auto (as the lab's config has it) attaches a TCX link at
#       ingress of `wan` and `lan`; the diversion's first rule skips the mark.
#   (b) the counters add up: every packet that reached the interfaces was
#       handled or passed by the program (= rx packets of lan + wan), and
#       every SIP datagram forwarded was handled by it or queued to the
#       daemon (= an nft counter at the forward hook). Lab calls pass.
#   (c) the binding maps hold exactly the daemon's signalling bindings, and
#       again after a restart (refilled from the state file).
#   (d) kill -9: no link, no program left; SIP from the LAN does not leave
#       (fail closed: the queue nobody reads drops it).
#   (e) queue.fastpath: off attaches nothing, the diversion has no mark
#       rule, a call passes.
#   (g) without CAP_BPF (a sandbox): auto logs one line and runs on the
#       queue alone (a call passes); on refuses to start.
#   (f) (before d) the configuration map: public address, WAN ifindex, mark,
#       LAN, ports; pub_ip 0 and not enabled while the WAN has no address.
# With the placeholder program nothing is handled yet (fastpath_handled_*
# stay 0); the checks are written so they hold for the real one too.
# Prints `N passed, N failed` last; exit 1 on any failure.
# shellcheck disable=SC2086,SC2116,SC2034 # word lists; ALG and LAB_KEEP_TMP are read by lib.sh
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
LAB_REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
ALG=sipalgd
command -v bpftool >/dev/null || PATH=$PATH:/usr/sbin
command -v bpftool >/dev/null || { echo "fastpath.sh needs bpftool" >&2; exit 2; }

lab_init
trap lab_cleanup EXIT
trap 'echo "# interrupted" >&2; exit 130' INT TERM
echo "# sipalgd fast path lab: id=$LAB_ID tmp=$LAB_TMP"
lab_topology

npass=0 nfail=0
ok() { echo "ok - $*"; npass=$((npass + 1)); }
bad() { echo "not ok - $*"; nfail=$((nfail + 1)); LAB_KEEP_TMP=1; }
ctl() { lab_nsx "$NS_RTR" timeout 5 "$LAB_REPO/sipalgctl" -s "$LAB_SOCK" "$@"; }
counter() { ctl counters | awk -v n="$1" '$1 == n { print $2 }'; }
fpline() { ctl status | grep '^fast path:'; }
# rx packets of the router's lan and wan interfaces together
rxsum() {
	lab_nsx "$NS_RTR" ip -j -s link show | "$PY" -c '
import json, sys
print(sum(l["stats64"]["rx"]["packets"] for l in json.load(sys.stdin) if l["ifname"] in ("lan", "wan")))'
}
fpsum() { echo $(( $(counter fastpath_handled_out) + $(counter fastpath_handled_in) + $(counter fastpath_passed) )); }
sipfwd() {
	lab_nsx "$NS_RTR" nft -j list table ip salgfpcount | "$PY" -c '
import json, sys
print(sum(e["counter"]["packets"] for r in json.load(sys.stdin)["nftables"] if "rule" in r
          for e in r["rule"]["expr"] if "counter" in e))'
}
flows() { "$PY" "$HERE/flows.py" --id "$LAB_ID" "$@" >"$LAB_TMP/flows-$1.out" 2>&1; }
# "priv_ip:port pub_port" per signalling binding, sorted: from the daemon ...
daemon_bindings() {
	ctl bindings | awk '$1 == "sip" { split($4, p, ":"); print $2, p[2] }' | sort
}
# ... and from the maps the status line names
map_bindings() {
	local id
	id=$(fpline | sed -n 's/.* priv \([0-9]*\) .*/\1/p')
	[ -n "$id" ] || return 1
	bpftool -j map dump id "$id" | "$PY" -c '
import json, socket, struct, sys
for e in json.load(sys.stdin):
    e = e.get("formatted", e)  # with BTF: the fields by name
    k, v = e["key"], e["value"]
    print("%s:%d %d" % (socket.inet_ntoa(struct.pack("=I", k["ip"])), k["port"], v["pub_port"]))' | sort
}

# SIP datagrams forwarded, counted ahead of everything (priority -300).
lab_nsx "$NS_RTR" nft -f - <<'EOF'
table ip salgfpcount {
	chain count {
		type filter hook forward priority -300; policy accept;
		udp sport 5060 counter
		udp dport 5060 udp sport != 5060 counter
	}
}
EOF

# ---- (a) attached where it should be ---------------------------------------
lab_sipalgd_start || { echo "sipalgd did not start"; exit 1; }
line=$(fpline)
echo "# $line"
if [ "$line" = "fast path: off (not in this build)" ]; then
	echo "# skipped: sipalgd was built with FASTPATH=0"
	lab_sipalgd_stop
	exit 0
fi
# the lab's router has wan, lan and lan2 (the hairpin flow's second LAN port)
if printf '%s\n' "$line" | grep -Eq '^fast path: attached to .*; rewriting;' &&
   printf '%s\n' "$line" | grep -Eq '(to |, )wan \(tcx link [0-9]+\)' &&
   printf '%s\n' "$line" | grep -Eq '(to |, )lan \(tcx link [0-9]+\)' &&
   printf '%s\n' "$line" | grep -Eq '(to |, )lan2 \(tcx link [0-9]+\)' &&
   [ "$(counter fastpath_attached)" = 3 ]; then
	ok "auto: TCX links at ingress of wan, lan and lan2, fastpath_attached 3"
else
	bad "auto: not attached to wan, lan and lan2 by TCX ($line; fastpath_attached $(counter fastpath_attached))"
fi
first=$(lab_nsx "$NS_RTR" iptables -w -t mangle -S SIPALGD_LAB | sed -n 2p)
if [ "$first" = "-A SIPALGD_LAB -m mark --mark 0x10000000/0x10000000 -j RETURN" ]; then
	ok "the diversion's first rule skips the fast path's mark"
else
	bad "first rule of the diversion: '$first'"
fi

# ---- (b) the counters add up -------------------------------------------------
rx0=$(rxsum) fp0=$(fpsum) q0=$(counter pkts_in) h0=$(( $(counter fastpath_handled_out) + $(counter fastpath_handled_in) )) s0=$(sipfwd)
if flows call_3_1 reg_2_1 busy_3_9; then ok "lab flows call_3_1 reg_2_1 busy_3_9 with the fast path on"
else bad "lab flows with the fast path on: $(grep -c '^not ok' "$LAB_TMP/flows-call_3_1.out") failed"; sed 's/^/  | /' "$LAB_TMP/flows-call_3_1.out" | tail -20; fi
# quiet: the flows are over, nothing else sends into the lab
sleep 0.5
rx1=$(rxsum) fp1=$(fpsum) q1=$(counter pkts_in) h1=$(( $(counter fastpath_handled_out) + $(counter fastpath_handled_in) )) s1=$(sipfwd)
seen=$((rx1 - rx0)) byprog=$((fp1 - fp0)) sip=$((s1 - s0)) sipdone=$(( (h1 - h0) + (q1 - q0) ))
echo "# rx at lan+wan $seen, handled+passed by the program $byprog; SIP forwarded $sip, handled $((h1 - h0)) + queued $((q1 - q0))"
if [ "$seen" -gt 0 ] && [ "$byprog" = "$seen" ]; then
	ok "every packet at the interfaces was handled or passed by the program ($seen)"
else
	bad "program counters do not add up: rx $seen, handled+passed $byprog"
fi
if [ "$sip" -gt 0 ] && [ "$sipdone" = "$sip" ]; then
	ok "every SIP datagram forwarded was handled by the fast path or queued ($sip)"
else
	bad "SIP forwarded $sip, handled+queued $sipdone"
fi
# the flows' 1xx from the provider and the phones' ACKs have no body: the
# program takes them both ways, and the flows checked the bytes that arrived
hin=$(counter fastpath_handled_in) hout=$(counter fastpath_handled_out)
if [ "$hin" -gt 0 ] && [ "$hout" -gt 0 ]; then
	ok "the fast path rewrote SIP both ways (in $hin, out $hout) and the flows' byte checks held"
else
	bad "the fast path took in $hin, out $hout: want both > 0"
fi
if [ "$(counter fastpath_errors)" = 0 ] && [ "$(counter fastpath_map_errors)" = 0 ]; then
	ok "fastpath_errors 0, fastpath_map_errors 0"
else
	bad "fastpath_errors $(counter fastpath_errors), fastpath_map_errors $(counter fastpath_map_errors)"
fi

# ---- (c) the maps mirror the bindings, also after a restart --------------------
daemon_bindings >"$LAB_TMP/b-daemon"
map_bindings >"$LAB_TMP/b-map"
if [ -s "$LAB_TMP/b-daemon" ] && cmp -s "$LAB_TMP/b-daemon" "$LAB_TMP/b-map"; then
	ok "the binding maps hold the $(wc -l <"$LAB_TMP/b-daemon") signalling bindings"
else
	bad "maps differ from the bindings: $(diff "$LAB_TMP/b-daemon" "$LAB_TMP/b-map" | tr '\n' ' ')"
fi
lab_sipalgd_stop || bad "sipalgd did not stop cleanly"
lab_sipalgd_start || { echo "sipalgd did not restart"; exit 1; }
map_bindings >"$LAB_TMP/b-map2"
if cmp -s "$LAB_TMP/b-daemon" "$LAB_TMP/b-map2"; then
	ok "after a restart the maps hold the same bindings again"
else
	bad "after a restart: $(diff "$LAB_TMP/b-daemon" "$LAB_TMP/b-map2" | tr '\n' ' ')"
fi

# ---- (f) the configuration map follows the WAN address --------------------------
# "flags pub_str pub_len wan_ifindex mark n_lan lan0 n_ports port0" from the map
cfg_now() {
	local id
	id=$(fpline | sed -n 's/.* cfg \([0-9]*\) .*/\1/p')
	bpftool -j map dump id "$id" | "$PY" -c '
import json, socket, struct, sys
v = json.load(sys.stdin)[0]["formatted"]["value"]
print(v["flags"], v["pub_str"] or "-", v["pub_len"], v["wan_ifindex"], hex(v["mark"]), v["n_lan"],
      socket.inet_ntoa(struct.pack("=I", v["lan_net"][0])), v["n_ports"], v["sip_ports"][0])'
}
# wait up to 3 s for the map to read $1
cfg_wait() {
	local i
	for i in $(seq 1 30); do [ "$(cfg_now)" = "$1" ] && return 0; sleep 0.1; done
	return 1
}
wanidx=$(lab_nsx "$NS_RTR" cat /sys/class/net/wan/ifindex)
want_up="1 203.0.113.1 11 $wanidx 0x10000000 2 192.168.77.0 1 5060"  # lan.networks: lan, lan2
want_down="0 - 0 $wanidx 0x10000000 2 192.168.77.0 1 5060"
if cfg_wait "$want_up"; then ok "cfg map: enabled, public address, WAN ifindex, mark, LAN, ports"
else bad "cfg map reads '$(cfg_now)', want '$want_up'"; fi
lab_nsx "$NS_RTR" ip addr del 203.0.113.1/24 dev wan
if cfg_wait "$want_down"; then ok "WAN address removed: cfg map pub_ip 0, not enabled"
else bad "WAN address removed: cfg map reads '$(cfg_now)', want '$want_down'"; fi
lab_nsx "$NS_RTR" ip addr add 203.0.113.1/24 dev wan
if cfg_wait "$want_up"; then ok "WAN address back: cfg map enabled with it again"
else bad "WAN address back: cfg map reads '$(cfg_now)', want '$want_up'"; fi

# ---- (d) kill -9 leaves nothing attached, SIP stops ----------------------------
line=$(fpline)
links=$(printf '%s\n' "$line" | grep -o 'tcx link [0-9]*' | awk '{print $3}')
prog=$(printf '%s\n' "$line" | sed -n 's/.*; prog \([0-9]*\) .*/\1/p')
kill -KILL "$LAB_DAEMON_PID"
wait "$LAB_DAEMON_PID" 2>/dev/null
LAB_DAEMON_PID=""
left=""
for l in $links; do bpftool link show id "$l" >/dev/null 2>&1 && left="$left link $l"; done
[ -n "$prog" ] && bpftool prog show id "$prog" >/dev/null 2>&1 && left="$left prog $prog"
tcleft=$(lab_nsx "$NS_RTR" bpftool -j net show | "$PY" -c 'import json,sys; print(sum(len(d.get("tc", [])) for d in json.load(sys.stdin)))')
if [ -n "$links" ] && [ -n "$prog" ] && [ -z "$left" ] && [ "$tcleft" = 0 ]; then
	ok "kill -9: links $(echo $links) and prog $prog are gone, no tc filter"
else
	bad "kill -9 left:$left (tc filters $tcleft; links '$(echo $links)' prog '$prog')"
fi
got=$("$PY" - "$NS_LAN" "$NS_WAN" <<'EOF'
import ctypes, os, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
def ns(name):
    fd = os.open("/var/run/netns/" + name, os.O_RDONLY)
    libc.setns(fd, 0x40000000)
    os.close(fd)
ns(sys.argv[2])
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
r.bind(("203.0.113.10", 5060))
ns(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("192.168.77.10", 5060))
msg = (b"OPTIONS sip:x@203.0.113.10 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.77.10:5060;branch=z9hG4bKfpkill\r\n"
       b"From: <sip:a@192.168.77.10>;tag=1\r\nTo: <sip:x@203.0.113.10>\r\nCall-ID: fpkill@192.168.77.10\r\n"
       b"CSeq: 1 OPTIONS\r\nContact: <sip:a@192.168.77.10:5060>\r\nContent-Length: 0\r\n\r\n")
for _ in range(3):
    s.sendto(msg, ("203.0.113.10", 5060))
r.settimeout(1.5)
try:
    d, a = r.recvfrom(65535)
    print("LEAKED from %s:%d %r" % (a[0], a[1], d[:80]))
except socket.timeout:
    print("nothing")
EOF
)
if [ "$got" = nothing ]; then
	ok "kill -9: SIP from the LAN does not leave the router (fail closed)"
else
	bad "kill -9: $got"
fi

# ---- (e) queue.fastpath: off ------------------------------------------------------
sed -e 's/^queue: { number: 7, fastpath: auto }$/queue: { number: 7, fastpath: off }/' "$HERE/lab.yaml" >"$LAB_TMP/lab-off.yaml"
grep -q "fastpath: off" "$LAB_TMP/lab-off.yaml" || { bad "lab.yaml changed: cannot make the off variant"; }
LAB_CONF_TEMPLATE=$LAB_TMP/lab-off.yaml lab_sipalgd_start || { echo "sipalgd did not start with fastpath off"; exit 1; }
line=$(fpline)
echo "# $line"
marks=$(lab_nsx "$NS_RTR" iptables -w -t mangle -S SIPALGD_LAB | grep -c -- "-m mark")
tcleft=$(lab_nsx "$NS_RTR" bpftool -j net show | "$PY" -c 'import json,sys; print(sum(len(d.get("tc", [])) for d in json.load(sys.stdin)))')
if [ "$line" = "fast path: off (queue.fastpath: off)" ] && [ "$(counter fastpath_attached)" = 0 ] &&
   [ "$marks" = 0 ] && [ "$tcleft" = 0 ]; then
	ok "off: nothing attached, no mark rule in the diversion"
else
	bad "off: '$line', fastpath_attached $(counter fastpath_attached), mark rules $marks, tc filters $tcleft"
fi
q0=$(counter pkts_in)
if flows call_3_1; then ok "lab flow call_3_1 with the fast path off"
else bad "lab flow call_3_1 with the fast path off"; tail -20 "$LAB_TMP/flows-call_3_1.out" | sed 's/^/  | /'; fi
[ "$(counter pkts_in)" -gt "$q0" ] || bad "off: the daemon saw no SIP"
lab_sipalgd_stop || bad "sipalgd (off) did not stop cleanly"

# ---- (g) where BPF is refused: auto falls back, on refuses to start -----------------
# No CAP_BPF and no CAP_SYS_ADMIN (a container, a sandbox): the kernel refuses
# the program. auto: one log line and the queue alone; on: the daemon exits.
nobpf="setpriv --bounding-set -bpf,-sys_admin --inh-caps -bpf,-sys_admin --"
LAB_SIPALGD_WRAP=$nobpf lab_sipalgd_start || { echo "sipalgd did not start without CAP_BPF"; exit 1; }
line=$(fpline)
echo "# $line"
nlog=$(grep -c 'fast path' "$LAB_DAEMON_LOG")
marks=$(lab_nsx "$NS_RTR" iptables -w -t mangle -S SIPALGD_LAB | grep -c -- "-m mark")
if printf '%s\n' "$line" | grep -q '^fast path: off (the kernel refused the program' && [ "$nlog" = 1 ] &&
   [ "$marks" = 0 ] && [ "$(counter fastpath_attached)" = 0 ]; then
	ok "auto without CAP_BPF: one log line, off, no mark rule"
else
	bad "auto without CAP_BPF: '$line', $nlog log lines, mark rules $marks"
fi
if flows call_3_1; then ok "lab flow call_3_1 where BPF is refused (auto)"
else bad "lab flow call_3_1 where BPF is refused"; tail -20 "$LAB_TMP/flows-call_3_1.out" | sed 's/^/  | /'; fi
lab_sipalgd_stop || bad "sipalgd (no CAP_BPF) did not stop cleanly"
sed -e 's/^queue: { number: 7, fastpath: auto }$/queue: { number: 7, fastpath: on }/' "$HERE/lab.yaml" >"$LAB_TMP/lab-on.yaml"
if LAB_CONF_TEMPLATE=$LAB_TMP/lab-on.yaml LAB_SIPALGD_WRAP=$nobpf lab_sipalgd_start 2>/dev/null; then
	bad "queue.fastpath: on started without CAP_BPF"
	lab_sipalgd_stop
elif grep -q 'fast path (queue.fastpath: on): the kernel refused the program' "$LAB_DAEMON_LOG"; then
	ok "queue.fastpath: on refuses to start where BPF is refused, and says why"
else
	bad "queue.fastpath: on without CAP_BPF: $(tail -n 3 "$LAB_DAEMON_LOG" | tr '\n' ' ')"
fi
left=$( { lab_nsx "$NS_RTR" iptables -t mangle -S; lab_nsx "$NS_RTR" nft list tables; } 2>&1 | grep -ci sipalgd)
[ "$left" = 0 ] || bad "queue.fastpath: on, refused: $left sipalgd rules or tables left"

if [ "$nfail" != 0 ] && [ -n "${LAB_DAEMON_LOG:-}" ] && [ -f "$LAB_DAEMON_LOG" ]; then
	echo "# sipalgd log (last 40 lines):"
	tail -n 40 "$LAB_DAEMON_LOG" | sed 's/^/  | /'
fi
echo "$npass passed, $nfail failed"
[ "$nfail" = 0 ]
