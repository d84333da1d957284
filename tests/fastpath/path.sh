#!/bin/bash
# tests/fastpath/path.sh: the fast-path program on a real forwarding path.
#
# fastpath-agree runs the program with BPF_PROG_TEST_RUN, where every skb is
# CHECKSUM_NONE and nothing comes after it. Here it sits at clsact ingress of
# the lab router's LAN veth (tests/netns/lib.sh, ALG=none: no daemon), its
# maps filled by hand the way the loader would, and two ACKs from a phone
# cross the router: veth senders hand over CHECKSUM_PARTIAL packets, and
# conntrack + masquerade run after the program. One rewrite shrinks the
# message, one grows it. Asserts: the far side reads exactly the expected
# bytes off the wire, with right IPv4/UDP lengths and checksums (the
# router's WAN veth has tx checksum offload off, so it finishes a
# CHECKSUM_PARTIAL packet from what the program left), and the program
# counted both as handled. Needs root.
set -u
LAB_REPO=$(cd "$(dirname "$0")/../.." && pwd)
ALG=none
export LAB_REPO ALG
# shellcheck source=../netns/lib.sh
. "$LAB_REPO/tests/netns/lib.sh"
OBJ=${1:-$LAB_REPO/build/sipfast.bpf.o}
[ -f "$OBJ" ] || { echo "FAIL: $OBJ missing (make build/sipfast.bpf.o)" >&2; exit 1; }
lab_init
trap lab_cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }

lab_topology
lab_nsx "$NS_RTR" tc qdisc add dev lan clsact || fail "clsact on the router's lan"
lab_nsx "$NS_RTR" tc filter add dev lan ingress bpf da obj "$OBJ" sec tc || fail "tc refused the program"
PROG=$(lab_nsx "$NS_RTR" tc -j filter show dev lan ingress | python3 -c '
import json, sys
for f in json.load(sys.stdin):
    p = f.get("options", {}).get("prog")
    if p: print(p["id"]); break')
[ -n "$PROG" ] || fail "no program id on lan ingress"
WAN_IF=$(ip -n "$NS_RTR" -j link show wan | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["ifindex"])')

# The maps, as the loader fills them (bpf/sipfast.h; addresses in network
# order, the rest host order): cfg, and two phones' signalling bindings.
python3 - "$PROG" "$WAN_IF" <<'EOF' || fail "filling the maps"
import json, socket, struct, subprocess, sys
prog, wan_if = sys.argv[1], int(sys.argv[2])
def bt(*a):
    return subprocess.run(["bpftool", "-j"] + list(a), check=True, capture_output=True, text=True).stdout
ids = {}
for m in json.loads(bt("prog", "show", "id", prog))["map_ids"]:
    ids[json.loads(bt("map", "show", "id", str(m)))["name"]] = m
def upd(name, key, val):
    subprocess.run(["bpftool", "map", "update", "id", str(ids[name]), "key", "hex"] + ["%02x" % b for b in key]
                   + ["value", "hex"] + ["%02x" % b for b in val], check=True)
ip = lambda s: socket.inet_aton(s)
pub = "203.0.113.1"
cfg = struct.pack("<I", 1) + ip(pub) + pub.encode().ljust(16, b"\0") + struct.pack("<III", len(pub), wan_if, 0x100)
cfg += struct.pack("<I", 1) + (ip("192.168.77.0") + b"\0" * 60) + (ip("255.255.255.0") + b"\0" * 60)
cfg += struct.pack("<I", 1) + struct.pack("<8H", 5060, 0, 0, 0, 0, 0, 0, 0) + b"\0" * 16
assert len(cfg) == 204, len(cfg)
upd("sipfast_cfg", struct.pack("<I", 0), cfg)
for phone, pub_port, flags in (("192.168.77.10", 5060, 3), ("192.168.77.11", 5062, 0)):
    val = ip(phone) + struct.pack("<HHB3x", 5060, pub_port, flags)
    upd("sipfast_priv", ip(phone) + struct.pack("<HH", 5060, 0), val)
    upd("sipfast_pub", struct.pack("<I", pub_port), val)
EOF

# The router's WAN veth computes no checksums (as a NIC without offload
# would not): a CHECKSUM_PARTIAL packet is finished in software from what the
# program left in it, so the bytes on the wire show whether that was right.
lab_nsx "$NS_RTR" python3 - <<'EOF' || fail "turning off tx checksum offload on the router's wan"
import array, fcntl, socket, struct
ev = array.array("B", struct.pack("II", 0x17, 0))  # ETHTOOL_STXCSUM, off
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
fcntl.ioctl(s.fileno(), 0x8946, struct.pack("16sP", b"wan", ev.buffer_info()[0]))  # SIOCETHTOOL
EOF

# The far side reads the wire (AF_PACKET, before any checksum test) and
# checks the IPv4 and UDP checksums itself: two datagrams, or give up at 5 s.
lab_nsx "$NS_WAN" python3 - "$LAB_TMP" <<'EOF' &
import socket, struct, sys, time
d = sys.argv[1]
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return s
r = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
r.bind(("eth0", 0x0800))
r.settimeout(0.5)
open(d + "/ready", "w").close()
n, end = 0, time.time() + 5
while n < 2 and time.time() < end:
    try:
        f = r.recv(65535)
    except socket.timeout:
        continue
    ip = f[14:]
    if len(ip) < 28 or ip[9] != 17 or struct.unpack("!H", ip[22:24])[0] != 5060:
        continue
    tot, ulen = struct.unpack("!H", ip[2:4])[0], struct.unpack("!H", ip[24:26])[0]
    ok = csum(ip[:20]) == 0xffff and tot == 20 + ulen and len(ip) >= tot
    udp = ip[20:tot]
    if ok and udp[6:8] != b"\0\0":
        ok = csum(ip[12:20] + struct.pack("!HH", 17, ulen) + udp) == 0xffff
    open("%s/got.%d" % (d, n), "wb").write(udp[8:])
    open("%s/csum.%d" % (d, n), "w").write("ok" if ok else "BAD")
    n += 1
EOF
LAB_PIDS="$LAB_PIDS $!"
RECV=$!
for _ in $(seq 50); do [ -e "$LAB_TMP/ready" ] && break; sleep 0.1; done
[ -e "$LAB_TMP/ready" ] || fail "receiver did not start"

lab_nsx "$NS_LAN" python3 - "$LAB_TMP" <<'EOF' || fail "sending"
import socket, sys, time
d = sys.argv[1]
A = ("ACK sip:200@203.0.113.10:5060 SIP/2.0\r\n"
     "Via: SIP/2.0/UDP 192.168.77.10:5060;branch=z9hG4bKp1\r\n"
     "From: <sip:100@192.168.77.10>;tag=a1\r\nTo: <sip:200@203.0.113.10>;tag=b1\r\n"
     "Call-ID: p1@192.168.77.10\r\nCSeq: 1 ACK\r\nContact: <sip:100@192.168.77.10:5060>\r\n"
     "Content-Length: 0\r\n\r\n")
A_OUT = A.replace("192.168.77.10", "203.0.113.1")
B = ("ACK sip:200@203.0.113.10 SIP/2.0\r\n"
     "Via: SIP/2.0/UDP 192.168.77.11;branch=z9hG4bKp2\r\n"
     "From: <sip:101@example.com>;tag=a2\r\nTo: <sip:200@example.com>;tag=b2\r\n"
     "Call-ID: p2@example.com\r\nCSeq: 1 ACK\r\nContact: <sip:101@192.168.77.11>\r\n"
     "Content-Length: 0\r\n\r\n")
B_OUT = B.replace("192.168.77.11", "203.0.113.1:5062")
assert len(A_OUT) < len(A) and len(B_OUT) > len(B)
open(d + "/want.0", "w").write(A_OUT)
open(d + "/want.1", "w").write(B_OUT)
for src, msg in (("192.168.77.10", A), ("192.168.77.11", B)):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 5060))
    s.sendto(msg.encode(), ("203.0.113.10", 5060))
    s.close()
    time.sleep(0.2)
EOF
wait "$RECV"

rc=0
for i in 0 1; do
	if [ ! -e "$LAB_TMP/got.$i" ]; then
		echo "FAIL: datagram $i not received (dropped: bad checksum or lengths?)" >&2; rc=1
	elif [ "$(cat "$LAB_TMP/csum.$i")" != ok ]; then
		echo "FAIL: datagram $i: IPv4/UDP lengths or checksums wrong on the wire" >&2; rc=1
	elif ! cmp -s "$LAB_TMP/got.$i" "$LAB_TMP/want.$i"; then
		echo "FAIL: datagram $i differs:" >&2; diff "$LAB_TMP/want.$i" "$LAB_TMP/got.$i" >&2; rc=1
	fi
done
HANDLED=$(python3 - "$PROG" <<'EOF'
import json, subprocess, sys
def bt(*a):
    return json.loads(subprocess.run(["bpftool", "-j"] + list(a), check=True, capture_output=True, text=True).stdout)
for m in bt("prog", "show", "id", sys.argv[1])["map_ids"]:
    if bt("map", "show", "id", str(m))["name"] == "sipfast_stats":
        for e in bt("map", "dump", "id", str(m)):
            k = e.get("key")
            k = int(k[0], 16) if isinstance(k, list) else int(k)
            if k == 0:  # SIPFAST_HANDLED_OUT
                print(sum(int(v["value"]) if not isinstance(v["value"], list) else
                          int.from_bytes(bytes(int(x, 16) for x in v["value"]), "little") for v in e["values"]))
EOF
)
[ "$HANDLED" = 2 ] || { echo "FAIL: handled_out counter is '$HANDLED', want 2" >&2; rc=1; }
[ $rc = 0 ] && echo "fastpath-path: OK (2 ACKs rewritten on a forwarding path, shrink and grow, CHECKSUM_PARTIAL senders, NAT after)"
exit $rc
