#!/usr/bin/env python3
"""The PPP link of tests/netns/pppoe.sh, for kernels without PPP.

This machine's kernel has no CONFIG_PPP (no /dev/ppp), so pppd cannot
make a ppp device. What sipalgd sees of a PPPoE session is a point-to-point
device without a link header, named pppoe-wan, that exists only while the
session is up (gone at LCP down, re-created with a new ifindex and often a
new IPCP address), MTU 1492. This process is that session: it opens a tun
device (IFF_TUN: IP packets, no Ethernet header, ARPHRD_NONE like ppp's
ARPHRD_PPP to the guard) in the router namespace and another in the ISP
namespace and carries the packets between them. Killing it drops both
devices, as pppd's exit does.

  pppoe_link.py up --ns-r R --ns-i I --tap FILE
      Every packet the router sends to the ISP is appended to FILE
      (4-byte length, then the IP packet): the wire, for pppoe.sh's leak checks.
  pppoe_link.py scan FILE [--forbid TEXT]... [--allow TEXT]... [--pub A.B.C.D]
      Prints one line: packets, fragments, and each violation (a forbidden
      text in a packet, a source other than --pub). Exit 1 on a violation.
"""
import argparse
import fcntl
import os
import select
import signal
import socket
import struct
import sys

from nsutil import in_ns

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def tun_in_ns(ns, name):
    """A tun device opened inside namespace ns; it stays there."""
    def mk():
        fd = os.open("/dev/net/tun", os.O_RDWR)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI))
        return fd
    return in_ns(ns, mk)


def up(a):
    r = tun_in_ns(a.ns_r, a.if_r)
    i = tun_in_ns(a.ns_i, a.if_i)
    tap = open(a.tap, "ab", buffering=0)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("up", flush=True)
    while True:
        rd, _, _ = select.select([r, i], [], [], 1.0)
        for fd in rd:
            try:
                pkt = os.read(fd, 65536)
            except OSError:
                continue
            if fd == r:
                tap.write(struct.pack("!I", len(pkt)) + pkt)
            try:
                os.write(i if fd == r else r, pkt)
            except OSError:
                pass   # the far side not up yet: lost, as on a real link


def scan(a):
    data = open(a.file, "rb").read()
    pkts = frags = 0
    bad = []
    off = 0
    pub = socket.inet_aton(a.pub) if a.pub else None
    while off + 4 <= len(data):
        n, = struct.unpack_from("!I", data, off)
        pkt = data[off + 4:off + 4 + n]
        off += 4 + n
        if len(pkt) < 20 or pkt[0] >> 4 != 4:
            continue
        pkts += 1
        if struct.unpack_from("!H", pkt, 6)[0] & 0x3FFF:
            frags += 1
        if pub and pkt[12:16] != pub:
            bad.append("source %s" % socket.inet_ntoa(pkt[12:16]))
        payload = pkt[20:]
        for t in a.allow:
            payload = payload.replace(t.encode(), b"")
        for t in a.forbid:
            if t.encode() in payload:
                bad.append("%r in a packet to %s" % (t, socket.inet_ntoa(pkt[16:20])))
    print("wire: %d packets, %d fragments, %d violations%s" %
          (pkts, frags, len(bad), (": " + "; ".join(sorted(set(bad))[:5])) if bad else ""))
    return 1 if bad else 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up")
    u.add_argument("--ns-r", required=True)
    u.add_argument("--ns-i", required=True)
    u.add_argument("--if-r", default="pppoe-wan")
    u.add_argument("--if-i", default="ppp-isp0")
    u.add_argument("--tap", required=True)
    s = sub.add_parser("scan")
    s.add_argument("file")
    s.add_argument("--forbid", action="append", default=[])
    s.add_argument("--allow", action="append", default=[],
                   help="text taken out of each packet before --forbid looks")
    s.add_argument("--pub")
    a = p.parse_args()
    return up(a) if a.cmd == "up" else scan(a)


if __name__ == "__main__":
    sys.exit(main())
