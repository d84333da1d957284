#!/usr/bin/env python3
"""The phone and the provider of tests/netns/pppoe.sh.

One process, no threads: each socket is opened inside its namespace (setns)
and every wait is a bounded recv. Phone 192.168.60.10:5060 (RTP 4000) behind
the router; provider 198.51.100.10:5060 (RTP 6000) behind the ISP; the
router's public address is the PPP session's, given as --pub.

  register          REGISTER, 200 back; the provider's OPTIONS to the
                    registered Contact reaches the phone, its 200 comes back
  call [--big]      INVITE (--big: an SDP that makes the datagram larger than
                    the PPP MTU, 1492), 200, ACK, RTP both ways counted on
                    arrival (remote first), BYE, 200
  call --keep FILE  the same without BYE: the call stays up (FILE: its Call-ID)
  resume --keep FILE  that call after the reconnect: re-INVITE, RTP both
                    ways, BYE
  down              (the session down, no address, the guard) a REGISTER
                    reaches nobody

Checked at the provider for every datagram: no phone address, the top Via,
Contact, o= and c= name --pub, Content-Length right. At the phone: each
response comes back with the phone's own Via.
"""
import argparse
import random
import re
import socket
import sys

from nsutil import check, failures, in_ns

PHONE = ("192.168.60.10", 5060)
PROV = ("198.51.100.10", 5060)
PRIV = b"192.168.60."
BIG = 1480
N_RTP = 20


def udp(ns, addr, port, timeout=2.0):
    def mk():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        s.settimeout(timeout)
        return s
    return in_ns(ns, mk)


def recv(s):
    try:
        return s.recvfrom(65536)
    except socket.timeout:
        return None, None


def hdr(msg, name):
    m = re.search(rb"^" + name.encode() + rb":\s*(.*?)\r$", msg, re.M | re.I)
    return m.group(1) if m else b""


def body(msg):
    return msg.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in msg else b""


def request(method, pub_hint, cseq, callid, tag, sdp=b"", ruri=b"sip:provider@198.51.100.10"):
    br = "z9hG4bK%08x" % random.getrandbits(32)
    h = [b"%s %s SIP/2.0" % (method.encode(), ruri),
         b"Via: SIP/2.0/UDP 192.168.60.10:5060;branch=" + br.encode() + b";rport",
         b"Max-Forwards: 70",
         b"From: <sip:100@198.51.100.10>;tag=" + tag,
         b"To: <sip:%s@198.51.100.10>" % (b"100" if method == "REGISTER" else b"provider"),
         b"Call-ID: " + callid,
         b"CSeq: %d %s" % (cseq, method.encode()),
         b"Contact: <sip:100@192.168.60.10:5060>"]
    if method == "REGISTER":
        h.append(b"Expires: 300")
    if sdp:
        h.append(b"Content-Type: application/sdp")
    h.append(b"Content-Length: %d" % len(sdp))
    return b"\r\n".join(h) + b"\r\n\r\n" + sdp


def sdp_offer(big):
    s = (b"v=0\r\no=- 1 1 IN IP4 192.168.60.10\r\ns=-\r\nc=IN IP4 192.168.60.10\r\n"
         b"t=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\n")
    s += b"a=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    if big:
        # BIG bytes in all: rewritten, the IP packet (+28) is still larger
        # than PPP's 1492 but fits Ethernet's 1500, so only the PPP link
        # fragments it (the size a veth lab never splits).
        size = lambda n: len(request("INVITE", "", 1, b"call-%08x@192.168.60.10" % 0, b"c1",
                                     s + b"a=x-pad:" + b"p" * n + b"\r\n"))
        n = BIG - size(0)
        n -= size(n) - BIG   # Content-Length grew a digit
        s += b"a=x-pad:" + b"p" * n + b"\r\n"
    return s


def check_at_provider(msg, pub, what):
    p = pub.encode()
    ok = check(PRIV not in msg, what + ": no phone address at the provider")
    via = hdr(msg, "Via")
    ok &= check(via.startswith(b"SIP/2.0/UDP " + p + b":"), what + ": top Via names %s (%s)" % (pub, via[:40].decode(errors="replace")))
    ct = hdr(msg, "Contact")
    if ct:
        ok &= check(b"@" + p + b":" in ct, what + ": Contact names %s (%s)" % (pub, ct.decode(errors="replace")))
    b = body(msg)
    ok &= check(int(hdr(msg, "Content-Length") or b"0") == len(b), what + ": Content-Length right")
    if b:
        ok &= check(b"\r\nc=IN IP4 " + p + b"\r\n" in b and b"IN IP4 " + p + b"\r\ns=" in b,
                    what + ": SDP o= and c= name " + pub)
    return ok


def answer(req, code, tag, sdp=b""):
    first = req.split(b"\r\n", 1)[0]
    lines = [b"SIP/2.0 %d OK" % code]
    for l in req.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        n = l.split(b":", 1)[0].strip().lower()
        if n in (b"via", b"from", b"call-id", b"cseq"):
            lines.append(l)
        elif n == b"to":
            lines.append(l + (b";tag=" + tag if b"INVITE" in first else b""))
    if first.startswith(b"REGISTER "):   # the binding as registered (RFC 3261 10.3)
        lines.append(b"Contact: " + hdr(req, "Contact") + b";expires=300")
    else:
        lines.append(b"Contact: <sip:provider@198.51.100.10:5060>")
    if sdp:
        lines.append(b"Content-Type: application/sdp")
    lines.append(b"Content-Length: %d" % len(sdp))
    return b"\r\n".join(lines) + b"\r\n\r\n" + sdp


def transact(ph, pv, req, pub, what, tag=b"pv1", sdp=b""):
    """phone -> provider -> phone; returns (request as seen, response as seen)."""
    ph.sendto(req, PROV)
    got, src = recv(pv)
    if not check(got is not None, what + ": reached the provider"):
        return None, None
    check(src[0] == pub, what + ": from %s (%s)" % (pub, src[0]))
    check_at_provider(got, pub, what)
    pv.sendto(answer(got, 200, tag, sdp), src)
    resp, _ = recv(ph)
    if check(resp is not None and resp.startswith(b"SIP/2.0 200"), what + ": 200 at the phone"):
        check(hdr(resp, "Via").startswith(b"SIP/2.0/UDP 192.168.60.10:5060"), what + ": the phone's own Via back")
    return got, resp


def register(a, ph, pv):
    got, resp = transact(ph, pv, request("REGISTER", a.pub, 1, b"reg-%x@192.168.60.10" % random.getrandbits(32),
                                         b"r1"), a.pub, "REGISTER")
    m = re.search(rb"@([0-9.]+):(\d+)", hdr(got or b"", "Contact"))
    if resp is None or not check(m is not None, "REGISTER: a Contact to reach the phone at"):
        return
    # The provider's OPTIONS to the registered Contact (the public address
    # of this session) reaches the phone, as its Request-URI says.
    host, port = m.group(1).decode(), int(m.group(2))
    opt = (b"OPTIONS sip:100@%s:%d SIP/2.0\r\n"
           b"Via: SIP/2.0/UDP 198.51.100.10:5060;branch=z9hG4bKopt%08x\r\n"
           b"From: <sip:provider@198.51.100.10>;tag=o1\r\nTo: <sip:100@198.51.100.10>\r\n"
           b"Call-ID: opt-%08x@198.51.100.10\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
           b"Content-Length: 0\r\n\r\n") % (host.encode(), port, random.getrandbits(32), random.getrandbits(32))
    # From another port of the provider: not the REGISTER's conntrack
    # reply, so it needs the binding's inbound element for this session.
    pv2 = udp(a.ns_i, PROV[0], 5070)
    pv2.sendto(opt.replace(b"198.51.100.10:5060;branch", b"198.51.100.10:5070;branch"), (host, port))
    r, _ = recv(ph)
    if not check(r is not None and r.startswith(b"OPTIONS sip:100@192.168.60.10:5060 "),
                 "inbound OPTIONS to %s:%d reaches the phone as its own Contact (%s)"
                 % (host, port, (r or b"nothing").split(b"\r\n", 1)[0].decode(errors="replace"))):
        return
    ph.sendto(answer(r, 200, b"o2"), (PROV[0], 5070))
    r2, src = recv(pv2)
    pv2.close()
    check(r2 is not None and r2.startswith(b"SIP/2.0 200") and PRIV not in r2 and src[0] == a.pub,
          "the phone's 200 to OPTIONS at the provider, from %s, no phone address" % a.pub)


def count(s, n, want_src=None):
    got = 0
    for _ in range(n):
        d, src = recv(s)
        if d is None:
            break
        if want_src is None or src[0] == want_src:
            got += 1
    return got


def invite(a, ph, pv, cid, cseq, what):
    """INVITE (or re-INVITE) in dialog cid, ACK, RTP both ways; True when
    media flowed."""
    inv = request("INVITE", a.pub, cseq, cid, b"c1", sdp_offer(a.big))
    what = "%s (%d bytes)" % (what, len(inv))
    ans = (b"v=0\r\no=- 2 %d IN IP4 198.51.100.10\r\ns=-\r\nc=IN IP4 198.51.100.10\r\n"
           b"t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=sendrecv\r\n") % cseq
    got, resp = transact(ph, pv, inv, a.pub, what, b"pv1", ans)
    if got is None or resp is None:
        return False
    if a.big:
        check(len(inv) == BIG, "the phone's INVITE is %d bytes (%d)" % (BIG, len(inv)))
        check(1492 < len(got) + 28 <= 1500,
              "the INVITE at the provider, in IP: %d bytes: over PPP's MTU, not Ethernet's" % (len(got) + 28))
    m = re.search(rb"^m=audio (\d+) ", body(got), re.M)
    if not check(m is not None, "m= at the provider"):
        return False
    pub_rtp = int(m.group(1))
    # the 200's SDP at the phone: the provider's own address, untouched
    check(b"c=IN IP4 198.51.100.10" in body(resp), "the 200's SDP reaches the phone as sent")
    ph.sendto(request("ACK", a.pub, cseq, cid, b"c1"), PROV)
    ack, _ = recv(pv)
    check(ack is not None and ack.startswith(b"ACK ") and PRIV not in ack, "ACK at the provider, no phone address")
    rp = udp(a.ns_p, PHONE[0], 4000, 0.5)
    rv = udp(a.ns_i, PROV[0], 6000, 0.5)
    for i in range(N_RTP):   # remote first: through the pinhole
        rv.sendto(b"\x80\x00" + bytes([0, i]) + b"r" * 168, (a.pub, pub_rtp))
    n1 = count(rp, N_RTP)
    check(n1 == N_RTP, "RTP provider -> %s:%d -> phone: %d/%d arrived" % (a.pub, pub_rtp, n1, N_RTP))
    for i in range(N_RTP):
        rp.sendto(b"\x80\x00" + bytes([0, i]) + b"p" * 168, (PROV[0], 6000))
    n2 = count(rv, N_RTP, a.pub)
    check(n2 == N_RTP, "RTP phone -> provider: %d/%d arrived from %s" % (n2, N_RTP, a.pub))
    rp.close()
    rv.close()
    return n1 == N_RTP and n2 == N_RTP


def call(a, ph, pv):
    cid = b"call-%08x@192.168.60.10" % random.getrandbits(32)
    if not invite(a, ph, pv, cid, 1, "INVITE"):
        return
    if a.keep:   # the call stays up across the reconnect: resume ends it
        with open(a.keep, "wb") as f:
            f.write(cid)
        return
    transact(ph, pv, request("BYE", a.pub, 2, cid, b"c1"), a.pub, "BYE")


def resume(a, ph, pv):
    """The call made with --keep before the reconnect: a re-INVITE with the
    new address (what a phone does when its media stops), media both
    ways again, then BYE."""
    cid = open(a.keep, "rb").read()
    if invite(a, ph, pv, cid, 2, "re-INVITE after the reconnect"):
        transact(ph, pv, request("BYE", a.pub, 3, cid, b"c1"), a.pub, "BYE after the reconnect")


def down(a, ph, pv):
    ph.sendto(request("REGISTER", a.pub, 2, b"down-%x@192.168.60.10" % random.getrandbits(32), b"r2"), PROV)
    got, _ = recv(pv)
    check(got is None, "the REGISTER reaches nobody")
    resp, _ = recv(ph)
    check(resp is None, "no answer at the phone")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("step", choices=("register", "call", "resume", "down"))
    p.add_argument("--keep", help="call: keep the call up, its Call-ID in this file; resume: the file")
    p.add_argument("--ns-p", required=True)
    p.add_argument("--ns-i", required=True)
    p.add_argument("--pub", required=True)
    p.add_argument("--big", action="store_true")
    a = p.parse_args()
    ph = udp(a.ns_p, *PHONE)
    pv = udp(a.ns_i, *PROV, timeout=1.0 if a.step == "down" else 2.0)
    {"register": register, "call": call, "resume": resume, "down": down}[a.step](a, ph, pv)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
