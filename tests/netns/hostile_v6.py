"""Part `v6` of the hostile lab (hostile.sh PARTS=...,v6 or HOSTILE_V6=1): malformed IPv6
SIP datagrams sent from the LAN as raw Ethernet frames (AF_PACKET, so nothing in the
sender's stack repairs them) through the router to the WAN, where another AF_PACKET socket
sees what left the router.

Each case has a documented outcome (CASES below):
  where  "kernel"  the router's own IPv6 input drops it before netfilter: the daemon never
                   sees it (its pkts_in must not move), nothing leaves;
         "queue"   it reaches the queue (pkts_in +1) and must leave unchanged or not at all
                   (`unchanged`: the only change allowed is the hop limit, -1 when forwarded);
  leave  "same"    it must leave as the kernel alone forwards it (hop limit -1, trimmed to
                   its payload length, an atomic fragment's header removed by conntrack's
                   defrag): a well-formed SIP message has nothing to rewrite when routed;
         "same|none"  either: the daemon may pass it on untouched or drop it (it must not
                   rewrite it, and must not die);
         "none"    nothing leaves.
The daemon must answer `status` after every case. Valid today (the daemon passes every IPv6
packet untouched) and after the daemon parses IPv6 (docs/ipv6.md: refuse or pass, never
rewrite what it cannot parse).
"""
import os
import select
import socket
import struct
import subprocess
import time

ETH_P_IPV6 = 0x86DD
SRC6 = "2001:db8:77::10"      # phone1
DST6 = "2001:db8:113::10"     # the proxy


def _csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def udp6(src, dst, sport, dport, payload, csum=None, ulen=None):
    """A UDP datagram with the RFC 8200 8.1 checksum over the IPv6 pseudo-header."""
    length = 8 + len(payload)
    hdr = struct.pack("!HHHH", sport, dport, ulen if ulen is not None else length, 0)
    if csum is None:
        ph = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) +
              struct.pack("!I3xB", length, 17))
        csum = _csum(ph + hdr + payload) or 0xFFFF
    return hdr[:6] + struct.pack("!H", csum) + payload


def ip6(src, dst, nh, payload, flow, plen=None, hlim=64):
    return struct.pack("!IHBB", (6 << 28) | (flow & 0xFFFFF), len(payload) if plen is None else plen,
                       nh, hlim) + socket.inet_pton(socket.AF_INET6, src) + \
        socket.inet_pton(socket.AF_INET6, dst) + payload


def sip_options(tag):
    cid = "v6hx-%s-%d@biloxi.example.com" % (tag, os.getpid())
    lines = ["OPTIONS sip:bob@[%s]:5060 SIP/2.0" % DST6,
             "Via: SIP/2.0/UDP [%s]:5060;branch=z9hG4bKv6hx%s" % (SRC6, tag),
             "Max-Forwards: 70", "From: <sip:alice@atlanta.example.com>;tag=v6hx",
             "To: <sip:bob@biloxi.example.com>", "Call-ID: " + cid, "CSeq: 1 OPTIONS",
             "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def build_cases():
    """(name, [ip6 packets], where, leave, why). Flow labels tell the cases apart on the WAN."""
    out = []

    def fl(i):
        return 0x6A000 + i

    def sipudp(tag, **kw):
        return udp6(SRC6, DST6, 5060, 5060, sip_options(tag), **kw)

    i = 1
    full = ip6(SRC6, DST6, 17, sipudp("trunc"), fl(i))
    out.append(("trunc_header", [full[:24]], "kernel", "none",
                "24 bytes of a 40-byte IPv6 header: ipv6_rcv drops it"))
    i += 1
    u = sipudp("plenlong")
    out.append(("payload_length_long", [ip6(SRC6, DST6, 17, u, fl(i), plen=len(u) + 100)], "kernel", "none",
                "payload length 100 bytes beyond the frame: ipv6_rcv drops it (truncated)"))
    i += 1
    u = sipudp("plenshort")
    out.append(("payload_length_short", [ip6(SRC6, DST6, 17, u, fl(i), plen=len(u) - 40)], "queue",
                "same|none", "payload length 40 bytes short of the UDP length: the kernel trims the "
                "packet; its UDP header claims more than is there"))
    i += 1
    u = sipudp("jumbo")
    # Hop-by-hop with a Jumbo Payload option (RFC 2675) claiming 70000 bytes, payload length 0
    hbh = struct.pack("!BBBBI", 17, 0, 0xC2, 4, 70000)
    out.append(("jumbo_lie", [ip6(SRC6, DST6, 0, hbh + u, fl(i), plen=0)], "kernel", "none",
                "a jumbogram on a small frame (RFC 2675 length 70000): ipv6_rcv drops it"))
    i += 1
    u = sipudp("extchain")
    # Hop-by-hop (PadN) -> Destination Options (PadN) -> UDP: a legal chain to skip
    hbh = struct.pack("!BBBB4s", 60, 0, 1, 4, b"\0" * 4)
    dst = struct.pack("!BBBB4s", 17, 0, 1, 4, b"\0" * 4)
    out.append(("ext_header_chain", [ip6(SRC6, DST6, 0, hbh + dst + u, fl(i))], "queue", "same",
                "hop-by-hop + destination options before UDP: well formed, nothing to rewrite"))
    i += 1
    u = sipudp("frag2")
    cut = 8 + 48   # UDP header and 48 bytes of SIP in the first fragment (a multiple of 8)
    ident = 0x5A1600 + i
    f1 = struct.pack("!BBHI", 17, 0, (0 << 3) | 1, ident) + u[:cut]
    f2 = struct.pack("!BBHI", 17, 0, ((cut // 8) << 3) | 0, ident) + u[cut:]
    out.append(("fragmented", [ip6(SRC6, DST6, 44, f1, fl(i)), ip6(SRC6, DST6, 44, f2, fl(i))],
                "queue", "reassembled", "an OPTIONS in two fragments: conntrack reassembles it before "
                "the queue; the WAN host must receive it whole and unchanged"))
    i += 1
    u = sipudp("atomic")
    fa = struct.pack("!BBHI", 17, 0, 0, 0x5A1700) + u
    out.append(("atomic_fragment", [ip6(SRC6, DST6, 44, fa, fl(i))], "any", "same|none",
                "a fragment header with offset 0 and no more fragments (RFC 6946)"))
    i += 1
    u = sipudp("badcsum", csum=0x1234)
    out.append(("bad_udp_checksum", [ip6(SRC6, DST6, 17, u, fl(i))], "queue", "same|none",
                "UDP checksum wrong: conntrack marks it invalid, the lab's policy still forwards LAN->WAN"))
    i += 1
    u = sipudp("zerocsum", csum=0)
    out.append(("zero_udp_checksum", [ip6(SRC6, DST6, 17, u, fl(i))], "queue", "same|none",
                "UDP checksum 0: not allowed over IPv6 (RFC 8200 8.1)"))
    return out


class Lab:
    def __init__(self, F, rtr, counters, status_ok, record, info):
        self.F, self.rtr, self.counters, self.status_ok = F, rtr, counters, status_ok
        self.record, self.info = record, info

    def mac(self, ns_side, dev):
        out = subprocess.run(["ip", "netns", "exec", self.F.NS[ns_side], "cat",
                              "/sys/class/net/%s/address" % dev], capture_output=True, text=True).stdout
        return bytes.fromhex(out.strip().replace(":", ""))

    def packet_socket(self, side, dev):
        self.F.setns(self.F.NS[side])
        try:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IPV6))
            s.bind((dev, ETH_P_IPV6))
        finally:
            self.F.setns(None)
        self.F.OPEN_SOCKETS.append(s)
        return s


def capture(sock, flow, limit=0.8):
    """IPv6 packets with flow label `flow` seen on sock within `limit` s (Ethernet stripped)."""
    got, end = [], time.monotonic() + limit
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return got
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            return got
        data, addr = sock.recvfrom(65535)
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        p = data[14:]
        if len(p) >= 4 and (struct.unpack("!I", p[:4])[0] & 0xFFFFF) == flow:
            got.append(p)


def run(F, rtr, counters, status_ok, record, info):
    lab = Lab(F, rtr, counters, status_ok, record, info)
    rmac = lab.mac("rtr", "lan")
    lmac = lab.mac("lan", "eth0")
    tx = lab.packet_socket("lan", "eth0")
    rx = lab.packet_socket("wan", "eth0")
    # the WAN host's UDP socket, for the reassembled case
    wsock = F.udp_socket("wan", DST6, 5060)
    # neighbour discovery both ways first, with a well-formed datagram (not counted below)
    warm = F.udp_socket("lan", SRC6, 0)
    warm.sendto(b"nd", (DST6, 9))
    time.sleep(0.3)
    for name, pkts, where, leave, why in build_cases():
        F.drain(rx)
        F.drain(wsock)
        flow = struct.unpack("!I", pkts[0][:4])[0] & 0xFFFFF
        before = counters()
        for p in pkts:
            tx.send(rmac + lmac + struct.pack("!H", ETH_P_IPV6) + p)
        seen = capture(rx, flow)
        after = counters()
        dq = after.get("pkts_in", 0) - before.get("pkts_in", 0)
        info("v6 %s: %s; queued %d, %d packet(s) left the router" % (name, why, dq, len(seen)))
        # where it was stopped or seen
        if where == "kernel":
            record("v6_%s_not_queued" % name, dq == 0, "the daemon saw %d packet(s) the kernel must drop" % dq)
        elif where == "queue":
            record("v6_%s_queued_and_counted" % name, dq == 1,
                   "pkts_in moved by %d, want 1: the IPv6 diversion did not queue it" % dq)
        # what left
        if leave == "none":
            record("v6_%s_nothing_left" % name, not seen, "%d packet(s) left the router" % len(seen))
        elif leave == "reassembled":
            r, _, _ = select.select([wsock], [], [], 0.5)
            data = wsock.recvfrom(65535)[0] if r else None
            want = b"".join(p[48:] for p in pkts)[8:]   # the UDP payload, from both fragments
            record("v6_%s_arrived_whole" % name, data == want,
                   "the WAN host got %r, sent %d bytes" % (data[:60] if data else None, len(want)))
        else:
            # unchanged means: the same bytes as the kernel forwards them without any ALG:
            # hop limit one less, cut to the payload length (ipv6_rcv trims the rest), and an
            # atomic fragment without its fragment header (nf_conntrack's defrag removes it,
            # ALG or not)
            def fwd(p):
                plen = struct.unpack("!H", p[4:6])[0]
                p = p[:40 + plen] if plen else p
                if name == "atomic_fragment":
                    p = p[:4] + struct.pack("!HB", plen - 8, p[40]) + p[7:40] + p[48:]
                return p[:7] + bytes([p[7] - 1]) + p[8:]
            want = [fwd(p) for p in pkts]
            same = seen == want
            ok = same or (leave == "same|none" and not seen)
            how = "unchanged" if same else ("dropped" if not seen else "CHANGED")
            record("v6_%s_%s" % (name, "unchanged" if leave == "same" else "unchanged_or_dropped"), ok,
                   "what left the router: %s (%d packet(s)%s)" % (
                       how, len(seen), "" if same or not seen else
                       ", first differs at byte %d" % next((k for k, (a, b) in enumerate(zip(seen[0], want[0]))
                                                           if a != b), min(len(seen[0]), len(want[0])))))
            if ok:
                info("v6 %s: %s" % (name, how))
        ok, out = status_ok()
        record("v6_%s_daemon_alive" % name, ok, "sipalgctl status: %s" % out)
