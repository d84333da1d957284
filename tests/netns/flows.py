#!/usr/bin/python3
"""sipalgd netns lab: SIP call flows checked on the bytes that reach the far side.

One process holds UDP sockets in the three lab namespaces (salg-lan-ID,
salg-wan-ID; the router sits between them). Each flow plays the phone(s) on
the LAN side and the proxy/registrar/media servers on the WAN side, writes every
SIP message as a text template, and asserts on what arrives.

  flows.py --id ID [--expect-fail FILE] [--verbose] [flow ...]

Output: `ok N - name` / `not ok N - name: reason` per flow, then one line
`N passed, N failed` (with --expect-fail: flows that did / did not do what was expected of
them). Exit 1 if a flow failed that was not expected to fail,
or a flow expected to fail passed (so a baseline run proves the lab can fail).
stdlib only; run with Debian's /usr/bin/python3 as root.
"""
import argparse
import ctypes
import os
import random
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback

CLONE_NEWNET = 0x40000000

PHONE1 = "192.168.77.10"
PHONE2 = "192.168.77.11"
LANHOST = "192.168.77.12"
PHONE3 = "192.168.79.10"   # in salg-lan2-ID, behind the router's lan2 port
PUB = "203.0.113.1"
PROXY = "203.0.113.10"
MEDIASRV = "203.0.113.20"
OTHER = "203.0.113.30"
LAN_PREFIX = b"192.168.77."

T_SIG = 2.0        # wait for a SIP message that must arrive
T_QUIET = 0.6      # wait for a SIP message that must NOT arrive
RTP_N = 20         # packets per media burst
RTP_MIN = 18       # at least this many must arrive
CLOSE_WAIT = 2.0   # pinholes must be gone this long after the closing message

VERBOSE = False
NS = {}

libc = ctypes.CDLL(None, use_errno=True)
_ORIG_NS_FD = None


class Fail(Exception):
    pass


def check(cond, reason):
    if not cond:
        raise Fail(reason)


def vprint(*a):
    if VERBOSE:
        print(*a, flush=True)


def show(title, data):
    """Print a SIP message in verbose/demo mode, CRLFs made visible at line ends."""
    if not VERBOSE:
        return
    print("    .---- %s (%d bytes)" % (title, len(data)))
    text = data.decode("utf-8", "replace")
    for line in text.split("\r\n"):
        print("    | " + line)
    print("    '----", flush=True)


# ---------------------------------------------------------------- namespaces

def setns(name):
    global _ORIG_NS_FD
    if _ORIG_NS_FD is None:
        _ORIG_NS_FD = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    if name is None:
        fd = _ORIG_NS_FD
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back to the original namespace")
        return
    fd = os.open("/var/run/netns/" + name, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + name)
    finally:
        os.close(fd)


OPEN_SOCKETS = []


def family_of(ip):
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def host_of(ip):
    """An address as the host part of a URI or Via: IPv6 in brackets (RFC 3261 25.1)."""
    return "[%s]" % ip if ":" in ip else ip


def udp_socket(side, ip, port=0, family=None):
    """A UDP socket bound in namespace `side` ('lan' or 'wan'); port 0 = ephemeral.
    family: socket.AF_INET / AF_INET6, by default the family of `ip`."""
    setns(NS[side])
    try:
        s = socket.socket(family or family_of(ip), socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, port))
    finally:
        setns(None)
    OPEN_SOCKETS.append(s)
    return s


def close_all_sockets():
    while OPEN_SOCKETS:
        try:
            OPEN_SOCKETS.pop().close()
        except OSError:
            pass


def drain(sock):
    n = 0
    while True:
        r, _, _ = select.select([sock], [], [], 0)
        if not r:
            return n
        try:
            sock.recvfrom(65535)
        except OSError:
            pass  # ICMP errors surface as ECONNREFUSED on some paths
        n += 1
        if n > 10000:
            return n


# ---------------------------------------------------------------- SIP parsing

COMPACT = {"v": "via", "m": "contact", "c": "content-type", "l": "content-length",
           "i": "call-id", "f": "from", "t": "to", "k": "supported", "s": "subject",
           "e": "content-encoding", "o": "event", "r": "refer-to", "u": "allow-events"}


class Header:
    def __init__(self, raw):
        self.raw = raw                      # the whole (unfolded) line, bytes
        name, _, value = raw.partition(b":")
        self.rawname = name                 # as written, e.g. b"v" or b"Via "
        n = name.strip().decode("latin-1").lower()
        self.name = COMPACT.get(n, n)       # canonical long form, lower case
        self.value = value.strip().decode("latin-1")


class SipMsg:
    def __init__(self, raw):
        self.raw = raw
        head, sep, body = raw.partition(b"\r\n\r\n")
        if not sep:
            raise Fail("not a SIP message (no CRLFCRLF): %r" % raw[:80])
        self.body = body
        lines = head.split(b"\r\n")
        self.start = lines[0].decode("latin-1")
        self.headers = []
        for ln in lines[1:]:
            if ln[:1] in (b" ", b"\t") and self.headers:
                h = self.headers[-1]
                self.headers[-1] = Header(h.raw + b"\r\n" + ln)
            else:
                self.headers.append(Header(ln))
        parts = self.start.split(" ", 2)
        if parts[0].startswith("SIP/2.0"):
            self.is_request = False
            self.status = int(parts[1])
            self.method = None
            self.ruri = None
        else:
            self.is_request = True
            self.method = parts[0]
            self.ruri = parts[1] if len(parts) > 1 else ""
            self.status = None

    def all(self, name):
        name = name.lower()
        return [h for h in self.headers if h.name == name]

    def get(self, name, default=None):
        h = self.all(name)
        return h[0].value if h else default

    def vias(self):
        """Every Via value, one per comma-separated entry, in order."""
        out = []
        for h in self.all("via"):
            out.extend(v.strip() for v in split_commas(h.value))
        return out

    @property
    def callid(self):
        return self.get("call-id")

    @property
    def cseq(self):
        return self.get("cseq", "")

    def describe(self):
        return "%s [%s]" % (self.start, self.cseq)


def split_commas(value):
    out, depth, quote, cur = [], 0, False, ""
    for ch in value:
        if ch == '"':
            quote = not quote
        elif not quote and ch == "<":
            depth += 1
        elif not quote and ch == ">":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def via_sentby(value):
    """('SIP/2.0/UDP', host, port or None, params-string) of one Via value."""
    m = re.match(r"\s*(SIP\s*/\s*2\.0\s*/\s*\S+)\s+(\[[0-9A-Fa-f:.]+\]|[^;:\s]+)(?::(\d+))?\s*(.*)$",
                 value, re.S)
    if not m:
        raise Fail("unparsable Via %r" % value)
    return m.group(1), m.group(2).strip("[]"), (int(m.group(3)) if m.group(3) else None), m.group(4)


def contact_uri(value):
    """The URI of a Contact/To/From value (inside <> or bare)."""
    m = re.search(r"<([^>]*)>", value)
    if m:
        return m.group(1)
    return value.split(";", 1)[0].strip()


def uri_hostport(uri):
    m = re.match(r"sips?:(?:[^@]*@)?(\[[0-9A-Fa-f:.]+\]|[^;:>?]+)(?::(\d+))?", uri)
    if not m:
        raise Fail("unparsable URI %r" % uri)
    return m.group(1).strip("[]"), (int(m.group(2)) if m.group(2) else 5060)


class Sdp:
    def __init__(self, body):
        check(body.endswith(b"\r\n"), "SDP does not end with CRLF: %r" % body[-20:])
        self.lines = body[:-2].split(b"\r\n")
        check(self.lines[0] == b"v=0", "SDP does not start with v=0: %r" % self.lines[0])
        self.origin = None
        self.conn = None
        self.media = []   # dicts: kind, port, proto, conn
        for ln in self.lines:
            check(re.match(rb"^[a-z]=", ln) is not None, "bad SDP line %r" % ln)
            t, v = ln[:1].decode(), ln[2:].decode("latin-1")
            if t == "o":
                f = v.split()
                check(len(f) == 6, "bad o= %r" % v)
                self.origin = f[5]
            elif t == "c":
                f = v.split()
                check(len(f) == 3 and f[0] == "IN" and f[1] in ("IP4", "IP6"), "bad c= %r" % v)
                if self.media:
                    self.media[-1]["conn"] = f[2]
                else:
                    self.conn = f[2]
            elif t == "m":
                f = v.split()
                check(len(f) >= 4 and f[1].isdigit(), "bad m= %r" % v)
                port = int(f[1])
                check(0 < port < 65536, "bad m= port %r" % v)
                self.media.append({"kind": f[0], "port": port, "rest": f[2:], "conn": None})
        for m in self.media:
            if m["conn"] is None:
                m["conn"] = self.conn
            check(m["conn"] is not None, "m= without any c=")

    def addr(self, i=0):
        return (self.media[i]["conn"], self.media[i]["port"])


# ---------------------------------------------------------------- SIP message templates

def sip(lines, body=b"", cl_name="Content-Length"):
    """Build a SIP message from header lines (str) + body (bytes); Content-Length computed."""
    if isinstance(body, str):
        body = body.encode()
    head = "\r\n".join(lines + ["%s: %d" % (cl_name, len(body))]) + "\r\n\r\n"
    return head.encode() + body


def sdp_body(ip, ports, sess="2890844526", ver=1, user="alice", conn_lines=None, origin=None):
    """A plain audio SDP; `ports` a list of RTP ports, one m= line each. IN IP4 or IN IP6
    after each address's family."""
    fam = lambda a: "IP6" if ":" in a else "IP4"
    o = origin or ip
    lines = ["v=0", "o=%s %s %d IN %s %s" % (user, sess, ver, fam(o), o), "s=-",
             "c=IN %s %s" % (fam(ip), ip), "t=0 0"]
    for i, p in enumerate(ports):
        lines.append("m=audio %d RTP/AVP 0 8 101" % p)
        if conn_lines and i < len(conn_lines) and conn_lines[i]:
            lines.append("c=IN %s %s" % (fam(conn_lines[i]), conn_lines[i]))
        lines += ["a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
                  "a=rtpmap:101 telephone-event/8000", "a=sendrecv"]
    return ("\r\n".join(lines) + "\r\n").encode()


_seq = [random.randint(1000, 9000)]


def uniq(prefix=""):
    _seq[0] += 1
    return "%s%x%04d" % (prefix, random.getrandbits(32), _seq[0])


class Dialog:
    """The phone-side bookkeeping of one call (phone = UAC)."""

    def __init__(self, phone_ip, phone_port=5060, user="alice", peer=PROXY, peer_port=5060):
        self.phone_ip, self.phone_port, self.user = phone_ip, phone_port, user
        self.peer, self.peer_port = peer, peer_port
        self.callid = uniq("cid") + "@atlanta.example.com"
        self.ftag = uniq("ft")
        self.ttag = None
        self.cseq = 1
        self.contact = "sip:%s@%s:%d" % (user, phone_ip, phone_port)
        self.remote_target = "sip:bob@%s:%d" % (peer, peer_port)
        self.route = None

    def via(self, branch):
        return "Via: SIP/2.0/UDP %s:%d;branch=%s" % (self.phone_ip, self.phone_port, branch)

    def to_hdr(self):
        return "To: Bob <sip:bob@biloxi.example.com>" + (";tag=" + self.ttag if self.ttag else "")

    def invite(self, body, branch=None, extra=(), ruri="sip:bob@biloxi.example.com"):
        self.inv_branch = branch or "z9hG4bK" + uniq()
        lines = ["INVITE %s SIP/2.0" % ruri, self.via(self.inv_branch), "Max-Forwards: 70"]
        lines += list(extra)
        lines += ["From: Alice <sip:alice@atlanta.example.com>;tag=" + self.ftag, self.to_hdr(),
                  "Call-ID: " + self.callid, "CSeq: %d INVITE" % self.cseq,
                  "Contact: <%s>" % self.contact, "User-Agent: salg-lab-phone/1.0",
                  "X-Lab-Opaque: keep-me;v=1 \"quoted, text\"",
                  "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS"]
        if body:
            lines.append("Content-Type: application/sdp")
        self.inv_cseq = self.cseq
        return sip(lines, body)

    def reinvite(self, body):
        self.cseq += 1
        self.inv_branch = "z9hG4bK" + uniq()
        self.inv_cseq = self.cseq
        lines = ["INVITE %s SIP/2.0" % self.remote_target, self.via(self.inv_branch),
                 "Max-Forwards: 70",
                 "From: Alice <sip:alice@atlanta.example.com>;tag=" + self.ftag, self.to_hdr(),
                 "Call-ID: " + self.callid, "CSeq: %d INVITE" % self.cseq,
                 "Contact: <%s>" % self.contact, "Content-Type: application/sdp"]
        return sip(lines, body)

    def ack(self, non2xx=False):
        """ACK for 2xx (new branch, remote target) or non-2xx (INVITE's branch and R-URI)."""
        if non2xx:
            lines = ["ACK sip:bob@biloxi.example.com SIP/2.0", self.via(self.inv_branch)]
        else:
            lines = ["ACK %s SIP/2.0" % self.remote_target, self.via("z9hG4bK" + uniq())]
        lines += ["Max-Forwards: 70"]
        if self.route and not non2xx:
            lines.append("Route: " + self.route)
        lines += ["From: Alice <sip:alice@atlanta.example.com>;tag=" + self.ftag, self.to_hdr(),
                  "Call-ID: " + self.callid, "CSeq: %d ACK" % self.inv_cseq]
        return sip(lines)

    def cancel(self):
        lines = ["CANCEL sip:bob@biloxi.example.com SIP/2.0", self.via(self.inv_branch),
                 "Max-Forwards: 70",
                 "From: Alice <sip:alice@atlanta.example.com>;tag=" + self.ftag,
                 "To: Bob <sip:bob@biloxi.example.com>",
                 "Call-ID: " + self.callid, "CSeq: %d CANCEL" % self.inv_cseq]
        return sip(lines)

    def bye(self):
        self.cseq += 1
        lines = ["BYE %s SIP/2.0" % self.remote_target, self.via("z9hG4bK" + uniq()),
                 "Max-Forwards: 70"]
        if self.route:
            lines.append("Route: " + self.route)
        lines += ["From: Alice <sip:alice@atlanta.example.com>;tag=" + self.ftag, self.to_hdr(),
                  "Call-ID: " + self.callid, "CSeq: %d BYE" % self.cseq]
        return sip(lines)

    def learn(self, resp):
        """Take To-tag / remote target / route set from a dialog-creating response."""
        m = re.search(r";\s*tag=([^;>\s]+)", resp.get("to", ""))
        if m:
            self.ttag = m.group(1)
        c = resp.get("contact")
        if c:
            self.remote_target = contact_uri(c)
        rr = resp.all("record-route")
        if rr:
            self.route = ", ".join(h.value for h in reversed(rr))


def response(req, code, reason, body=b"", to_tag=None, contact=None, extra=(), rr=None):
    """A UAS response to a received request: Via lines, From, To, Call-ID, CSeq copied as received."""
    lines = ["SIP/2.0 %d %s" % (code, reason)]
    for h in req.headers:
        if h.name == "via":
            lines.append(h.raw.decode("latin-1"))
    if rr:
        lines.append("Record-Route: " + rr)
    lines.append("From: " + req.get("from"))
    to = req.get("to")
    if to_tag and ";tag=" not in to:
        to += ";tag=" + to_tag
    lines.append("To: " + to)
    lines += ["Call-ID: " + req.callid, "CSeq: " + req.cseq]
    if contact:
        lines.append("Contact: " + contact)
    lines += list(extra)
    if body:
        lines.append("Content-Type: application/sdp")
    return sip(lines, body)


# ---------------------------------------------------------------- user agents

class UA:
    """A SIP endpoint: one UDP socket in one namespace; receive with timeout and matching."""

    def __init__(self, side, ip, port=5060, name=None, family=None):
        self.side, self.ip, self.port = side, ip, port
        self.family = family or family_of(ip)
        self.name = name or ("[%s]:%d" if self.family == socket.AF_INET6 else "%s:%d") % (ip, port)
        self.sock = udp_socket(side, ip, port, self.family)
        self.backlog = []
        self.sent = []

    def send(self, data, dst, title=None):
        self.sock.sendto(data, dst)
        self.sent.append(data)
        if title:
            show("%s (%s -> %s:%d)" % (title, self.name, dst[0], dst[1]), data)

    def recv(self, match=None, timeout=T_SIG, what="a SIP message", must=True):
        """First message (from the backlog, then the socket) for which match(msg) is true.
        Returns (msg, src) or raises Fail (must=True) / returns (None, None)."""
        for i, (m, src) in enumerate(self.backlog):
            if match is None or match(m):
                del self.backlog[i]
                return m, src
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                break
            try:
                data, src = self.sock.recvfrom(65535)
            except OSError:
                continue
            src = src[:2]   # IPv6: (host, port, flowinfo, scope_id)
            try:
                m = SipMsg(data)
            except Fail:
                vprint("    (%s: dropped a non-SIP datagram from %s)" % (self.name, src))
                continue
            if match is None or match(m):
                return m, src
            self.backlog.append((m, src))
        if must:
            raise Fail("%s: no %s within %.1fs" % (self.name, what, timeout))
        return None, None

    def recv_req(self, method, callid=None, timeout=T_SIG, must=True):
        return self.recv(lambda m: m.is_request and m.method == method and
                         (callid is None or m.callid == callid),
                         timeout, "%s request" % method, must)

    def recv_resp(self, code, callid, method=None, timeout=T_SIG, must=True):
        def ok(m):
            if m.is_request or m.callid != callid:
                return False
            if method and not m.cseq.endswith(" " + method):
                return False
            return code is None or m.status == code
        return self.recv(ok, timeout, "%s response to %s" % (code, method or "request"), must)

    def expect_nothing(self, callid=None, timeout=T_QUIET):
        m, src = self.recv(lambda m: callid is None or m.callid == callid, timeout, must=False)
        return m


# ---------------------------------------------------------------- RTP

def rtp_packet(seq, ssrc, pt=0, marker=b""):
    payload = (marker + b"\xd5" * 160)[:160]
    return struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, ssrc) + payload


def rtcp_rr(ssrc):
    return struct.pack("!BBHI", 0x80, 201, 1, ssrc)   # RR, no report blocks


def send_rtp(sock, dst, n=RTP_N, ssrc=None, tag=b"", rtcp=False):
    ssrc = ssrc if ssrc is not None else random.getrandbits(32)
    seq0 = random.randint(0, 30000)
    for i in range(n):
        pkt = rtcp_rr(ssrc) + tag if rtcp else rtp_packet(seq0 + i, ssrc, marker=tag)
        try:
            sock.sendto(pkt, dst)
        except OSError:
            pass  # an ICMP error from an earlier packet; keep going
        time.sleep(0.002)
    return ssrc


def count_rtp(sock, idle=0.4, limit=2.0, tag=None):
    """Count datagrams arriving on sock until `idle` s without any (at most `limit` s).
    Returns (count, set of sources, count carrying `tag`)."""
    n, srcs, tagged = 0, set(), 0
    deadline = time.monotonic() + limit
    while True:
        left = min(idle, deadline - time.monotonic())
        if left <= 0:
            break
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            break
        try:
            data, src = sock.recvfrom(65535)
        except OSError:
            continue
        n += 1
        srcs.add(src[:2])   # IPv6 sources come as (host, port, flowinfo, scope_id)
        if tag is not None and tag in data:
            tagged += 1
    return n, srcs, tagged


def media_remote_first(remote_sock, dst, phone_sock, what, tag=b"", n=RTP_N, need=RTP_MIN):
    """The remote sends first to the public media address; the phone's private socket counts."""
    drain(phone_sock)
    send_rtp(remote_sock, dst, n, tag=tag)
    got, srcs, _ = count_rtp(phone_sock)
    vprint("    RTP %s: remote %s:%d -> %s:%d, phone %s:%d received %d/%d"
           % (what, remote_sock.getsockname()[0], remote_sock.getsockname()[1], dst[0], dst[1],
              phone_sock.getsockname()[0], phone_sock.getsockname()[1], got, n))
    check(got >= need, "%s: remote sent %d RTP first to %s:%d, phone %s:%d received %d"
          % (what, n, dst[0], dst[1], phone_sock.getsockname()[0],
             phone_sock.getsockname()[1], got))
    return got


def media_phone_symmetric(phone_sock, remote_dst, remote_sock, public, what, n=RTP_N):
    """The phone sends to the remote's SDP address; every packet must come from `public`."""
    drain(remote_sock)
    send_rtp(phone_sock, remote_dst, n)
    got, srcs, _ = count_rtp(remote_sock)
    vprint("    RTP %s: phone %s:%d -> %s:%d, remote received %d/%d from %s"
           % (what, phone_sock.getsockname()[0], phone_sock.getsockname()[1], remote_dst[0],
              remote_dst[1], got, n, sorted(srcs)))
    check(got >= RTP_MIN, "%s: phone sent %d RTP to %s:%d, remote received %d"
          % (what, n, remote_dst[0], remote_dst[1], got))
    check(srcs == {tuple(public)}, "%s: phone RTP reached the remote from %s, advertised %s:%d"
          % (what, sorted(srcs), public[0], public[1]))


def media_closed(remote_sock, dst, phone_sock, what, new_src_ip=None):
    """After the dialog ended (+CLOSE_WAIT): the old 5-tuple and a new source port get 0 through."""
    ip = new_src_ip or remote_sock.getsockname()[0]
    other = udp_socket("wan", ip, 0, remote_sock.family)
    drain(phone_sock)
    send_rtp(remote_sock, dst)
    old, _, _ = count_rtp(phone_sock, idle=0.5)
    drain(phone_sock)
    send_rtp(other, dst)
    new, _, _ = count_rtp(phone_sock, idle=0.5)
    vprint("    RTP %s after close: old 5-tuple %d/%d, new source port %d/%d reached the phone"
           % (what, old, RTP_N, new, RTP_N))
    where = None
    if old or new:
        where = diag("closing-%s" % re.sub(r"[^A-Za-z0-9]+", "_", what).strip("_"), dst[1])
    check(old == 0 and new == 0,
          "%s: %.0fs after the dialog ended, RTP to %s:%d still reached the phone "
          "(old 5-tuple %d/%d, new source port %d/%d)%s"
          % (what, CLOSE_WAIT, dst[0], dst[1], old, RTP_N, new, RTP_N,
             "; router state in " + where if where else ""))


def diag(label, port=None):
    """Save the router's view (conntrack, sipalgctl) next to the run's logs; return the path."""
    tmp = os.environ.get("LAB_TMP")
    if not tmp or not os.path.isdir(tmp):
        return None
    path = os.path.join(tmp, "diag-%s.txt" % label)
    cmds = [["conntrack", "-L", "-p", "udp"]]
    sock, ctl = os.environ.get("LAB_SOCK"), os.environ.get("LAB_CTL")
    if sock and ctl:
        cmds += [[ctl, "-s", sock, c] for c in ("dialogs", "pinholes", "bindings")]
    with open(path, "w") as f:
        for c in cmds:
            f.write("$ %s\n" % " ".join(c))
            try:
                r = subprocess.run(["ip", "netns", "exec", NS["rtr"]] + c, capture_output=True,
                                   text=True, timeout=5)
                out = r.stdout + r.stderr
            except (OSError, subprocess.TimeoutExpired) as e:
                out = "(%s)\n" % e
            if port is not None and c[0] == "conntrack":
                out = "".join(ln + "\n" for ln in out.splitlines() if "port=%d " % port in ln) or "(no entry for port %d)\n" % port
            f.write(out + "\n")
    return path


# ---------------------------------------------------------------- common checks

def header_lines(msg, skip):
    return [h.raw for h in msg.headers if h.name not in skip]


def nat_of(nat):
    """(public address, bytes of the private addresses that must not leave) of the NAT a
    check expects: `nat` (MASQ6: the IPv6 masquerade), or by default the IPv4 NAT, read at
    call time (field_wan.py moves PUB)."""
    return nat or (PUB, LAN_PREFIX)


def check_outbound(sent_raw, got, what, rewritten=("via", "contact", "content-length"),
                   sdp_rewritten=(), nat=None):
    """An outbound (LAN->WAN) message as it arrived on the WAN side. Returns a dict with
    the public Contact URI, the top Via's sent-by (requests) and the public media addresses.
    `sdp_rewritten`: prefixes of further SDP lines the ALG may change (checked by the caller).
    `nat`: see nat_of."""
    pub, private = nat_of(nat)
    sent = SipMsg(sent_raw)
    check(private not in got.raw.lower(), "%s at the WAN side still contains %r: %s"
          % (what, private.decode(), first_line_with(got.raw, private)))
    check(got.start == sent.start, "%s: start line changed %r -> %r" % (what, sent.start, got.start))
    # header order and names (compact forms kept as written)
    check([h.rawname for h in got.headers] == [h.rawname for h in sent.headers],
          "%s: header names/order changed: %r -> %r"
          % (what, [h.rawname for h in sent.headers], [h.rawname for h in got.headers]))
    a, b = header_lines(sent, rewritten), header_lines(got, rewritten)
    check(a == b, "%s: headers that must pass untouched changed: %s"
          % (what, first_diff(a, b)))
    # Via: the phone's (top) Via gets the public sent-by; parameters (branch) untouched;
    # any further Vias (in responses: the remote side's) byte for byte.
    sv, gv = sent.vias(), got.vias()
    check(len(sv) == len(gv), "%s: Via count %d -> %d" % (what, len(sv), len(gv)))
    info = {"contacts": []}
    if sent.is_request:
        _, host, vport, params = via_sentby(gv[0])
        _, _, _, sparams = via_sentby(sv[0])
        check(host == pub, "%s: top Via sent-by %r, want %s" % (what, gv[0], pub))
        info["via"] = (host, vport)
        check(params == sparams, "%s: top Via parameters changed %r -> %r" % (what, sparams, params))
        check(sv[1:] == gv[1:], "%s: lower Vias changed" % what)
    else:
        check(sv == gv, "%s: the remote side's Vias changed: %s" % (what, first_diff(sv, gv)))
    for sh, gh in zip(sent.all("contact"), got.all("contact")):
        if sh.value.strip() == "*":
            check(gh.value.strip() == "*", "%s: Contact * became %r" % (what, gh.value))
            info["contacts"].append("*")
            continue
        for sc, gc in zip(split_commas(sh.value), split_commas(gh.value)):
            suri, guri = contact_uri(sc), contact_uri(gc)
            host, port = uri_hostport(guri)
            check(host == pub, "%s: Contact %r, want host %s" % (what, gc.strip(), pub))
            # user part and everything after the URI unchanged
            check(suri.split("@")[0] == guri.split("@")[0],
                  "%s: Contact user part changed %r -> %r" % (what, suri, guri))
            check(sc.split(">", 1)[-1] == gc.split(">", 1)[-1] if ">" in sc else True,
                  "%s: Contact parameters changed %r -> %r" % (what, sc, gc))
            info["contacts"].append(guri)
    check(len(sent.all("contact")) == len(got.all("contact")), "%s: Contact count changed" % what)
    cl = got.get("content-length")
    check(cl is not None and cl.isdigit(), "%s: no Content-Length at the WAN side" % what)
    check(int(cl) == len(got.body), "%s: Content-Length %s but %d body bytes arrived"
          % (what, cl, len(got.body)))
    if sent.body:
        ss, gs = Sdp(sent.body), Sdp(got.body)
        check(gs.origin == pub, "%s: SDP o= address %r, want %s" % (what, gs.origin, pub))
        check(len(ss.media) == len(gs.media), "%s: m= count %d -> %d"
              % (what, len(ss.media), len(gs.media)))
        for i, m in enumerate(gs.media):
            if (":" in (ss.media[i]["conn"] or "")) != (":" in pub):
                # a stream of the family the NAT does not cover (an IPv6 stream in an IPv4
                # call: dual stack, no NAT66): left as the phone wrote it
                check((m["conn"], m["port"]) == (ss.media[i]["conn"], ss.media[i]["port"]),
                      "%s: IPv6 stream m=#%d [%s]:%d became [%s]:%d (no NAT66: must stay)"
                      % (what, i, ss.media[i]["conn"], ss.media[i]["port"], m["conn"], m["port"]))
                continue
            check(m["conn"] == pub, "%s: SDP c= for m=#%d is %r, want %s" % (what, i, m["conn"], pub))
            check(m["kind"] == ss.media[i]["kind"] and m["rest"] == ss.media[i]["rest"],
                  "%s: m= line changed beyond its port" % what)
        keep = lambda s: [ln for ln in s.lines if ln[:2] not in (b"o=", b"c=", b"m=") and
                          not any(ln.startswith(p) for p in sdp_rewritten)]
        check(keep(ss) == keep(gs), "%s: SDP lines other than o=/c=/m= changed: %s"
              % (what, first_diff(keep(ss), keep(gs))))
        info["media"] = [gs.addr(i) for i in range(len(gs.media))]
        info["sdp"] = gs
    else:
        check(got.body == b"", "%s: body appeared" % what)
    return info


def check_inbound_response(phone_sent_raw, wan_sent_raw, got, what):
    """A response (WAN->LAN) as the phone received it: its own top Via exactly as it sent
    it, the body exactly as the WAN sent it, Content-Length right."""
    phone_req = SipMsg(phone_sent_raw)
    wan = SipMsg(wan_sent_raw)
    pv = [h.raw for h in phone_req.headers if h.name == "via"]
    gv = [h.raw for h in got.headers if h.name == "via"]
    check(gv[:1] == pv[:1], "%s: the phone's top Via came back as %r, it sent %r"
          % (what, gv[:1], pv[:1]))
    check(gv == pv, "%s: Via lines at the phone %r differ from what the phone sent %r" % (what, gv, pv))
    check(got.body == wan.body, "%s: body changed on the way in:\n sent %r\n got  %r"
          % (what, wan.body, got.body))
    cl = got.get("content-length")
    check(cl is not None and int(cl) == len(got.body), "%s: Content-Length %s, body %d"
          % (what, cl, len(got.body)))
    skip = ("via", "contact", "content-length")
    a, b = header_lines(wan, skip), header_lines(got, skip)
    check(a == b, "%s: headers changed on the way in: %s" % (what, first_diff(a, b)))


def check_inbound_request(wan_sent_raw, got, want_ruri, what):
    wan = SipMsg(wan_sent_raw)
    check(got.ruri == want_ruri, "%s: Request-URI at the phone %r, want the phone's contact %r"
          % (what, got.ruri, want_ruri))
    check(got.body == wan.body, "%s: body changed on the way in:\n sent %r\n got  %r"
          % (what, wan.body, got.body))
    cl = got.get("content-length")
    check(cl is not None and int(cl) == len(got.body), "%s: Content-Length %s, body %d"
          % (what, cl, len(got.body)))
    a, b = [h.raw for h in wan.headers if h.name != "content-length"], \
        [h.raw for h in got.headers if h.name != "content-length"]
    check(a == b, "%s: headers changed on the way in: %s" % (what, first_diff(a, b)))


def first_line_with(raw, needle):
    for ln in raw.split(b"\r\n"):
        if needle.lower() in ln.lower():
            return ln.decode("latin-1")
    return "?"


def first_diff(a, b):
    for x, y in zip(a, b):
        if x != y:
            return "%r -> %r" % (x, y)
    return "lengths %d -> %d" % (len(a), len(b))


# ---------------------------------------------------------------- call building blocks

class Call:
    """One phone->WAN call with its media sockets, and what arrived where. IPv4, or IPv6
    through the masquerade (nat=MASQ6, see nat_of)."""

    def __init__(self, phone, remote, rtp_port, phone_ip=None, media_ip=None,
                 remote_media_ip=None, remote_rtp_port=None, conn_lines=None, sdp=None,
                 route=None, rtcp=False, nat=None):
        self.phone, self.remote = phone, remote
        self.nat = nat
        self.dlg = Dialog(host_of(phone.ip), phone.port)
        self.media_ip = media_ip or phone.ip
        self.rtp_port = rtp_port
        self.phone_rtp = udp_socket("lan", self.media_ip, rtp_port)
        self.phone_rtcp = udp_socket("lan", self.media_ip, rtp_port + 1) if rtcp else None
        self.remote_media_ip = remote_media_ip or remote.ip
        self.remote_rtp_port = remote_rtp_port or rtp_port + 20000
        self.remote_rtp = udp_socket("wan", self.remote_media_ip, self.remote_rtp_port)
        self.remote_rtcp = (udp_socket("wan", self.remote_media_ip, self.remote_rtp_port + 1)
                            if rtcp else None)
        self.offer = sdp if sdp is not None else sdp_body(self.media_ip, [rtp_port], origin=phone.ip)
        self.route = route
        self.rtag = uniq("rt")

    def send_invite(self, extra=(), title=None):
        ex = list(extra)
        if self.route:
            ex.insert(0, "Route: " + self.route)
        self.inv_raw = self.dlg.invite(self.offer, extra=ex)
        self.phone.send(self.inv_raw, (self.remote.ip, 5060), title)

    def wan_invite(self, what="INVITE", title=None, sdp_rewritten=()):
        """Receive the INVITE on the WAN side and check the rewrite."""
        self.inv_wan, self.inv_src = self.remote.recv_req("INVITE", self.dlg.callid)
        if title:
            show(title, self.inv_wan.raw)
        info = check_outbound(self.inv_raw, self.inv_wan, what, sdp_rewritten=sdp_rewritten, nat=self.nat)
        pub = nat_of(self.nat)[0]
        check(self.inv_src[0] == pub, "%s arrived from %s, want %s" % (what, self.inv_src[0], pub))
        self.pub_contact = info["contacts"][0]
        self.pub_media = info["media"][0]
        self.info = info
        return info

    def answer(self, code=200, reason="OK", sdp=True, rr=None, provisional=(100, 180), title=None,
               answer_sdp=None):
        req, src = self.inv_wan, self.inv_src
        for p in provisional:
            self.remote.send(response(req, p, {100: "Trying", 180: "Ringing"}[p],
                                      to_tag=None if p == 100 else self.rtag,
                                      contact=None if p == 100 else "<sip:bob@%s:5060>" % host_of(self.remote.ip),
                                      rr=None if p == 100 else rr), src)
        body = b""
        if sdp:
            body = answer_sdp or sdp_body(self.remote_media_ip, [self.remote_rtp_port], sess="2890844527",
                                          user="bob")
        self.answer_body = body
        self.ok_raw = response(req, code, reason, body, to_tag=self.rtag,
                               contact="<sip:bob@%s:5060>" % host_of(self.remote.ip), rr=rr)
        self.remote.send(self.ok_raw, src, title)

    def phone_gets_final(self, code=200, what="200 OK", title=None):
        for p in (100, 180):
            self.phone.recv_resp(p, self.dlg.callid, "INVITE", timeout=0.2, must=False)
        m, _ = self.phone.recv_resp(code, self.dlg.callid, "INVITE")
        if title:
            show(title, m.raw)
        check_inbound_response(self.inv_raw, self.ok_raw, m, what)
        self.dlg.learn(m)
        return m

    def ack(self):
        raw = self.dlg.ack()
        self.phone.send(raw, (self.remote.ip, 5060))
        m, _ = self.remote.recv_req("ACK", self.dlg.callid)
        check_outbound(raw, m, "ACK", nat=self.nat)

    def setup(self, extra=(), rr=None):
        self.send_invite(extra)
        self.wan_invite()
        self.answer(rr=rr)
        self.phone_gets_final()
        self.ack()

    def media_both(self, what="media", tag=b""):
        media_remote_first(self.remote_rtp, self.pub_media, self.phone_rtp, what + " (remote first)",
                           tag=tag)
        media_phone_symmetric(self.phone_rtp, (self.remote_media_ip, self.remote_rtp_port),
                              self.remote_rtp, self.pub_media, what + " (phone, symmetric)")

    def bye_from_phone(self):
        raw = self.dlg.bye()
        self.phone.send(raw, (self.remote.ip, 5060))
        m, src = self.remote.recv_req("BYE", self.dlg.callid)
        check_outbound(raw, m, "BYE", nat=self.nat)
        r = response(m, 200, "OK")
        self.remote.send(r, src)
        got, _ = self.phone.recv_resp(200, self.dlg.callid, "BYE")
        check_inbound_response(raw, r, got, "200 OK to BYE")

    def closed(self, what="after the call"):
        time.sleep(CLOSE_WAIT)
        media_closed(self.remote_rtp, self.pub_media, self.phone_rtp, what)


def phone(ip=PHONE1, port=5060, name=None):
    return UA("lan", ip, port, name or "phone(%s:%d)" % (ip, port))


def remote(ip=PROXY, port=5060, name=None):
    return UA("wan", ip, port, name or "wan(%s:%d)" % (ip, port))


# ---------------------------------------------------------------- registration helpers

def register_msg(ua, dlg_cid, ftag, cseq, branch, contact_line, expires=None, auth=False):
    lines = ["REGISTER sip:biloxi.example.com SIP/2.0",
             "Via: SIP/2.0/UDP %s:%d;branch=%s" % (host_of(ua.ip), ua.port, branch),
             "Max-Forwards: 70",
             "From: Bob <sip:bob@biloxi.example.com>;tag=" + ftag,
             "To: Bob <sip:bob@biloxi.example.com>",
             "Call-ID: " + dlg_cid, "CSeq: %d REGISTER" % cseq, contact_line]
    if expires is not None:
        lines.append("Expires: %d" % expires)
    if auth:
        lines += ['Authorization: Digest username="bob", realm="biloxi.example.com",'
                  ' nonce="ea9c8e88df84f1cec4341ae6cbe5a359", opaque="",'
                  ' uri="sip:biloxi.example.com", response="dfe56131d1958046689d83306477ecc"']
    return sip(lines)


def register(ua, reg, challenge=False, user="bob", nat=None):
    """REGISTER ua's private contact (optionally through a 401 challenge); return the public
    Contact URI the registrar saw, after checking both REGISTERs on the WAN side (`nat`: see
    nat_of), with the last REGISTER's top Via sent-by and source at the registrar."""
    cid = uniq("reg") + "@biloxi.example.com"
    ftag = uniq("rf")
    contact = "Contact: <sip:%s@%s:%d>" % (user, host_of(ua.ip), ua.port)
    cseq = 1
    if challenge:
        raw = register_msg(ua, cid, ftag, cseq, "z9hG4bK" + uniq(), contact, 3600)
        ua.send(raw, (reg.ip, 5060))
        m, src = reg.recv_req("REGISTER", cid)
        info = check_outbound(raw, m, "REGISTER F1", nat=nat)
        r = response(m, 401, "Unauthorized", to_tag=uniq("rt"), extra=[
            'WWW-Authenticate: Digest realm="biloxi.example.com", qop="auth",'
            ' nonce="ea9c8e88df84f1cec4341ae6cbe5a359", opaque="", stale=FALSE, algorithm=MD5'])
        reg.send(r, src)
        got, _ = ua.recv_resp(401, cid, "REGISTER")
        check_inbound_response(raw, r, got, "401 Unauthorized")
        cseq += 1
    raw = register_msg(ua, cid, ftag, cseq, "z9hG4bK" + uniq(), contact, 3600, auth=challenge)
    ua.send(raw, (reg.ip, 5060))
    m, src = reg.recv_req("REGISTER", cid)
    info = check_outbound(raw, m, "REGISTER", nat=nat)
    pub = info["contacts"][0]
    r = response(m, 200, "OK", to_tag=uniq("rt"), contact="<%s>;expires=3600" % pub)
    reg.send(r, src)
    got, _ = ua.recv_resp(200, cid, "REGISTER")
    check_inbound_response(raw, r, got, "200 OK to REGISTER")
    return {"cid": cid, "ftag": ftag, "cseq": cseq, "pub": pub, "contact": contact,
            "private": "sip:%s@%s:%d" % (user, host_of(ua.ip), ua.port), "src": src,
            "via": info["via"]}


def inbound_invite(reg, pub_contact, callee, others=(), sdp=None, what="inbound INVITE", nat=None):
    """The registrar sends an INVITE to a registered public Contact; it must reach `callee`
    (Request-URI mapped back to its private contact) and no one in `others`."""
    host, port = uri_hostport(pub_contact)
    cid = uniq("in") + "@biloxi.example.com"
    branch = "z9hG4bK" + uniq()
    lines = ["INVITE %s SIP/2.0" % pub_contact,
             "Via: SIP/2.0/UDP %s:%d;branch=%s" % (host_of(reg.ip), reg.port, branch),
             "Via: SIP/2.0/UDP ss3.chicago.example.com:5060;branch=z9hG4bK%s;received=198.51.100.33"
             % uniq(),
             "Max-Forwards: 69",
             "Record-Route: <sip:%s;lr>" % host_of(reg.ip),
             "From: Carol <sip:carol@chicago.example.com>;tag=" + uniq("cf"),
             "To: Bob <sip:bob@biloxi.example.com>",
             "Call-ID: " + cid, "CSeq: 1 INVITE",
             "Contact: <sip:carol@%s:%d>" % (host_of(reg.ip), reg.port)]
    if sdp:
        lines.append("Content-Type: application/sdp")
    raw = sip(lines, sdp or b"")
    reg.send(raw, (host, port))
    got, src = callee.ua.recv_req("INVITE", cid)
    check_inbound_request(raw, got, callee.private, what)
    for o in others:
        stray = o.ua.expect_nothing(cid, timeout=0.3)
        check(stray is None, "%s for %s also reached %s" % (what, callee.ua.name, o.ua.name))
    # the phone rejects; the registrar ACKs (non-2xx ACK, hop by hop)
    r = response(got, 486, "Busy Here", to_tag=uniq("pt"))
    callee.ua.send(r, src)
    m, s2 = reg.recv_resp(486, cid, "INVITE")
    check_outbound(r, m, "486 from the phone", nat=nat)
    ack = sip(["ACK %s SIP/2.0" % pub_contact,
               "Via: SIP/2.0/UDP %s:%d;branch=%s" % (host_of(reg.ip), reg.port, branch),
               "Max-Forwards: 70", "From: " + got.get("from"), "To: " + m.get("to"),
               "Call-ID: " + cid, "CSeq: 1 ACK"])
    reg.send(ack, (host, port))
    callee.ua.recv_req("ACK", cid)
    return got


class Reg:
    def __init__(self, ua, private):
        self.ua, self.private = ua, private


# ---------------------------------------------------------------- flows

FLOWS = []


def flow(fn):
    FLOWS.append(fn)
    return fn


@flow
def reg_2_1():
    """RFC 3665 2.1: REGISTER, 401, REGISTER with credentials, 200; inbound INVITE to the
    registered public Contact; un-REGISTER (Expires: 0) and Contact: *."""
    p1, reg = phone(PHONE1), remote(PROXY, name="registrar")
    r = register(p1, reg, challenge=True)
    inbound_invite(reg, r["pub"], Reg(p1, r["private"]))
    # un-REGISTER this contact: the registrar must see exactly the public Contact it knows
    raw = register_msg(p1, r["cid"], r["ftag"], r["cseq"] + 1, "z9hG4bK" + uniq(),
                       "Contact: <%s>;expires=0" % r["private"], 0, auth=True)
    p1.send(raw, (reg.ip, 5060))
    m, src = reg.recv_req("REGISTER", r["cid"])
    info = check_outbound(raw, m, "un-REGISTER")
    check(info["contacts"][0] == r["pub"], "un-REGISTER Contact %r, the registrar knows %r"
          % (info["contacts"][0], r["pub"]))
    check(m.get("expires") == "0", "un-REGISTER Expires changed to %r" % m.get("expires"))
    resp = response(m, 200, "OK", to_tag=uniq("rt"))
    reg.send(resp, src)
    got, _ = p1.recv_resp(200, r["cid"], "REGISTER")
    check_inbound_response(raw, resp, got, "200 OK to un-REGISTER")
    # Contact: * (remove all bindings)
    raw = register_msg(p1, r["cid"], r["ftag"], r["cseq"] + 2, "z9hG4bK" + uniq(), "Contact: *", 0,
                       auth=True)
    p1.send(raw, (reg.ip, 5060))
    m, src = reg.recv_req("REGISTER", r["cid"])
    info = check_outbound(raw, m, "REGISTER Contact: *")
    check(info["contacts"] == ["*"], "Contact: * arrived as %r" % m.get("contact"))
    resp = response(m, 200, "OK", to_tag=uniq("rt"))
    reg.send(resp, src)
    got, _ = p1.recv_resp(200, r["cid"], "REGISTER")
    check_inbound_response(raw, resp, got, "200 OK to REGISTER Contact: *")


@flow
def reg_2_4():
    """RFC 3665 2.4 Cancellation of Registration: (phone2 registers, then) REGISTER with
    Expires: 0, Contact: * and credentials, 200 OK."""
    p2, reg = phone(PHONE2), remote(PROXY, name="registrar")
    r = register(p2, reg, challenge=False)
    raw = sip(["REGISTER sip:biloxi.example.com SIP/2.0",
               "Via: SIP/2.0/UDP %s:5060;branch=z9hG4bKnashds7%s" % (PHONE2, uniq()),
               "Max-Forwards: 70",
               "From: Bob <sip:bob@biloxi.example.com>;tag=" + r["ftag"],
               "To: Bob <sip:bob@biloxi.example.com>",
               "Call-ID: " + r["cid"], "CSeq: %d REGISTER" % (r["cseq"] + 1),
               "Expires: 0", "Contact: *",
               'Authorization: Digest username="bob", realm="biloxi.example.com",'
               ' nonce="88df84f1cac4341aea9c8ee6cbe5a359", opaque="",'
               ' uri="sip:biloxi.example.com", response="ff0437c51696f9a76244f0cf1dbabbea"'])
    p2.send(raw, (reg.ip, 5060))
    m, src = reg.recv_req("REGISTER", r["cid"])
    info = check_outbound(raw, m, "REGISTER F1 (cancel)")
    check(info["contacts"] == ["*"], "Contact: * arrived as %r" % m.get("contact"))
    check(m.get("expires") == "0", "Expires changed to %r" % m.get("expires"))
    check(src == r["src"], "the cancel came from %s:%d, the registration from %s:%d"
          % (src + r["src"]))
    resp = response(m, 200, "OK", to_tag=uniq("rt"))
    reg.send(resp, src)
    got, _ = p2.recv_resp(200, r["cid"], "REGISTER")
    check_inbound_response(raw, resp, got, "F2 200 OK")


@flow
def call_3_1():
    """RFC 3665 3.1: INVITE/180/200/ACK, remote sends RTP (and RTCP) first, the phone's media
    is symmetric, media only from the SDP peer, BYE from the phone, pinholes closed."""
    p1, bob = phone(PHONE1), remote(PROXY, name="bob")
    c = Call(p1, bob, 16000, rtcp=True)
    c.send_invite(title="INVITE as phone1 sent it")
    c.wan_invite(title="INVITE as it arrived at the WAN side")
    c.answer(title="200 OK as the WAN side sent it")
    c.phone_gets_final(title="200 OK as phone1 received it")
    c.ack()
    c.media_both("call_3_1 RTP")
    # RTCP = port+1, remote first
    pub_rtcp = (c.pub_media[0], c.pub_media[1] + 1)
    drain(c.phone_rtcp)
    send_rtp(c.remote_rtcp, pub_rtcp, 5, rtcp=True)
    n, _, _ = count_rtp(c.phone_rtcp)
    vprint("    RTCP remote first -> %s:%d: phone received %d/5" % (pub_rtcp + (n,)))
    check(n >= 4, "RTCP from the remote to %s:%d: phone received %d/5" % (pub_rtcp + (n,)))
    # the pinhole is for the SDP peer only
    stranger = udp_socket("wan", OTHER, 0)
    drain(c.phone_rtp)
    send_rtp(stranger, c.pub_media)
    n, _, _ = count_rtp(c.phone_rtp)
    check(n == 0, "RTP from %s (not the SDP peer) to %s:%d reached the phone (%d)"
          % ((OTHER,) + tuple(c.pub_media) + (n,)))
    c.bye_from_phone()
    c.closed("call_3_1")


@flow
def call_3_5():
    """RFC 3665 3.5 session through an ALG: pre-loaded Route, Record-Route, the remote's Vias;
    BYE from the remote to the Contact learned in the dialog, mapped back; closing."""
    p1, bob = phone(PHONE1), remote(PROXY, name="proxy2")
    c = Call(p1, bob, 16100, route="<sip:%s;lr>" % PROXY)
    c.send_invite(extra=["Proxy-Authorization: Digest username=\"alice\", realm=\"biloxi.example.com\","
                         " nonce=\"85b4f1cen4341ae6cbe5a3a9c8e88df9\", opaque=\"\","
                         " uri=\"sip:bob@biloxi.example.com\", response=\"b3f392f9218a328b9294076d708e6815\""])
    c.wan_invite()
    c.answer(rr="<sip:%s;lr>" % PROXY)
    c.phone_gets_final()
    c.ack()
    c.media_both("call_3_5 RTP")
    # BYE from the remote: to the public Contact learned from the INVITE, with its own Vias
    req = c.inv_wan
    host, port = uri_hostport(c.pub_contact)
    bye = sip(["BYE %s SIP/2.0" % c.pub_contact,
               "Via: SIP/2.0/UDP %s:5060;branch=z9hG4bK%s" % (PROXY, uniq()),
               "Via: SIP/2.0/UDP client.biloxi.example.com:5060;branch=z9hG4bK%s;received=198.51.100.201"
               % uniq(),
               "Max-Forwards: 69",
               "From: " + req.get("to") + ";tag=" + c.rtag,
               "To: " + req.get("from"),
               "Call-ID: " + c.dlg.callid, "CSeq: 1 BYE"])
    bob.send(bye, (host, port))
    got, src = p1.recv_req("BYE", c.dlg.callid)
    check_inbound_request(bye, got, c.dlg.contact, "BYE from the remote")
    ok = response(got, 200, "OK")
    p1.send(ok, src)
    m, _ = bob.recv_resp(200, c.dlg.callid, "BYE")
    check_outbound(ok, m, "200 OK to the remote's BYE")
    c.closed("call_3_5")


@flow
def reinvite_port():
    """RFC 3665 3.7 (moved to the phone): re-INVITE moving the phone's media to a new port."""
    p1, bob = phone(PHONE1), remote(PROXY, name="bob")
    c = Call(p1, bob, 16200)
    c.setup()
    c.media_both("before re-INVITE")
    old_pub, old_sock = c.pub_media, c.phone_rtp
    new_port = 16210
    new_sock = udp_socket("lan", PHONE1, new_port)
    body = sdp_body(PHONE1, [new_port], ver=2)
    raw = c.dlg.reinvite(body)
    p1.send(raw, (bob.ip, 5060))
    m, src = bob.recv_req("INVITE", c.dlg.callid)
    info = check_outbound(raw, m, "re-INVITE")
    new_pub = info["media"][0]
    ans = sdp_body(PROXY, [c.remote_rtp_port], sess="2890844527", ver=2, user="bob")
    ok = response(m, 200, "OK", ans, contact="<sip:bob@%s:5060>" % PROXY)
    bob.send(ok, src)
    got, _ = p1.recv_resp(200, c.dlg.callid, "INVITE")
    check_inbound_response(raw, ok, got, "200 OK to re-INVITE")
    c.ack()
    media_remote_first(c.remote_rtp, new_pub, new_sock, "new port (remote first)")
    media_phone_symmetric(new_sock, (PROXY, c.remote_rtp_port), c.remote_rtp, new_pub,
                          "new port (phone, symmetric)")
    if new_pub != old_pub:
        time.sleep(CLOSE_WAIT)
        media_closed(c.remote_rtp, old_pub, old_sock, "old port after the re-INVITE")
    c.phone_rtp = new_sock
    c.pub_media = new_pub
    c.bye_from_phone()


@flow
def reinvite_addr():
    """re-INVITE moving the phone's media to another LAN address (192.168.77.12)."""
    p1, bob = phone(PHONE1), remote(PROXY, name="bob")
    c = Call(p1, bob, 16300)
    c.setup()
    c.media_both("before re-INVITE")
    old_pub, old_sock = c.pub_media, c.phone_rtp
    new_sock = udp_socket("lan", LANHOST, 16310)
    body = sdp_body(LANHOST, [16310], ver=2, origin=PHONE1)
    raw = c.dlg.reinvite(body)
    p1.send(raw, (bob.ip, 5060))
    m, src = bob.recv_req("INVITE", c.dlg.callid)
    info = check_outbound(raw, m, "re-INVITE to %s" % LANHOST)
    new_pub = info["media"][0]
    ans = sdp_body(PROXY, [c.remote_rtp_port], sess="2890844527", ver=2, user="bob")
    ok = response(m, 200, "OK", ans, contact="<sip:bob@%s:5060>" % PROXY)
    bob.send(ok, src)
    got, _ = p1.recv_resp(200, c.dlg.callid, "INVITE")
    check_inbound_response(raw, ok, got, "200 OK to re-INVITE")
    c.ack()
    media_remote_first(c.remote_rtp, new_pub, new_sock, "media on %s (remote first)" % LANHOST)
    media_phone_symmetric(new_sock, (PROXY, c.remote_rtp_port), c.remote_rtp, new_pub,
                          "media from %s (symmetric)" % LANHOST)
    if new_pub != old_pub:
        time.sleep(CLOSE_WAIT)
        media_closed(c.remote_rtp, old_pub, old_sock, "phone1's old media after the re-INVITE")
    c.phone_rtp, c.pub_media = new_sock, new_pub
    c.bye_from_phone()


@flow
def reinvite_remote():
    """The remote re-INVITEs to move ITS media to 203.0.113.30 (RFC 3665 3.7's direction);
    the phone gets the SDP unaltered; media from .30, sent first, reaches the phone."""
    p1, bob = phone(PHONE1), remote(PROXY, name="bob")
    c = Call(p1, bob, 16400)
    c.setup()
    c.media_both("before re-INVITE")
    new_remote = udp_socket("wan", OTHER, 36400)
    req = c.inv_wan
    host, port = uri_hostport(c.pub_contact)
    rbody = sdp_body(OTHER, [36400], sess="2890844527", ver=2, user="bob")
    rinv = sip(["INVITE %s SIP/2.0" % c.pub_contact,
                "Via: SIP/2.0/UDP %s:5060;branch=z9hG4bK%s" % (PROXY, uniq()),
                "Max-Forwards: 70",
                "From: " + req.get("to") + ";tag=" + c.rtag, "To: " + req.get("from"),
                "Call-ID: " + c.dlg.callid, "CSeq: 2 INVITE",
                "Contact: <sip:bob@%s:5060>" % PROXY,
                "Content-Type: application/sdp"], rbody)
    bob.send(rinv, (host, port))
    got, src = p1.recv_req("INVITE", c.dlg.callid)
    check_inbound_request(rinv, got, c.dlg.contact, "remote's re-INVITE")
    ans = sdp_body(PHONE1, [16400], ver=2)
    ok = response(got, 200, "OK", ans, contact="<%s>" % c.dlg.contact)
    p1.send(ok, src)
    m, _ = bob.recv_resp(200, c.dlg.callid, "INVITE")
    info = check_outbound(ok, m, "200 OK to the remote's re-INVITE")
    pub = info["media"][0]
    ack = sip(["ACK %s SIP/2.0" % c.pub_contact,
               "Via: SIP/2.0/UDP %s:5060;branch=z9hG4bK%s" % (PROXY, uniq()), "Max-Forwards: 70",
               "From: " + req.get("to") + ";tag=" + c.rtag, "To: " + req.get("from"),
               "Call-ID: " + c.dlg.callid, "CSeq: 2 ACK"])
    bob.send(ack, (host, port))
    p1.recv_req("ACK", c.dlg.callid)
    media_remote_first(new_remote, pub, c.phone_rtp, "media from %s (remote first)" % OTHER)
    media_phone_symmetric(c.phone_rtp, (OTHER, 36400), new_remote, pub,
                          "phone media to %s (symmetric)" % OTHER)
    c.pub_media = pub
    c.bye_from_phone()


@flow
def cancel_3_8():
    """RFC 3665 3.8: INVITE, 183 with SDP (early media, remote first), CANCEL (its Via at the
    far side identical to the INVITE's), 200 to CANCEL, 487, ACK; pinholes closed."""
    p1, bob = phone(PHONE1), remote(PROXY, name="bob")
    c = Call(p1, bob, 16500)
    c.send_invite()
    c.wan_invite()
    req, src = c.inv_wan, c.inv_src
    early = sdp_body(PROXY, [c.remote_rtp_port], sess="2890844527", user="bob")
    bob.send(response(req, 100, "Trying"), src)
    r183 = response(req, 183, "Session Progress", early, to_tag=c.rtag,
                    contact="<sip:bob@%s:5060>" % PROXY)
    bob.send(r183, src)
    got, _ = p1.recv_resp(183, c.dlg.callid, "INVITE")
    check_inbound_response(c.inv_raw, r183, got, "183 Session Progress")
    media_remote_first(c.remote_rtp, c.pub_media, c.phone_rtp, "early media (remote first)")
    cancel = c.dlg.cancel()
    p1.send(cancel, (bob.ip, 5060))
    m, csrc = bob.recv_req("CANCEL", c.dlg.callid)
    check_outbound(cancel, m, "CANCEL")
    iv = [h.raw for h in req.headers if h.name == "via"]
    cv = [h.raw for h in m.headers if h.name == "via"]
    check(iv == cv, "CANCEL's Via at the far side %r differs from the INVITE's %r" % (cv, iv))
    r200 = response(m, 200, "OK", to_tag=c.rtag)
    bob.send(r200, csrc)
    got, _ = p1.recv_resp(200, c.dlg.callid, "CANCEL")
    check_inbound_response(cancel, r200, got, "200 OK to CANCEL")
    r487 = response(req, 487, "Request Terminated", to_tag=c.rtag)
    bob.send(r487, src)
    got, _ = p1.recv_resp(487, c.dlg.callid, "INVITE")
    check_inbound_response(c.inv_raw, r487, got, "487")
    c.dlg.learn(got)
    ack = c.dlg.ack(non2xx=True)
    p1.send(ack, (bob.ip, 5060))
    m, _ = bob.recv_req("ACK", c.dlg.callid)
    check_outbound(ack, m, "ACK to 487")
    c.closed("early media after CANCEL/487")


def _failed_call(code, reason, ringing, port):
    p1, bob = phone(PHONE1), remote(PROXY, name="bob")
    c = Call(p1, bob, port)
    c.send_invite()
    c.wan_invite()
    req, src = c.inv_wan, c.inv_src
    bob.send(response(req, 100, "Trying"), src)
    if ringing:
        r180 = response(req, 180, "Ringing", to_tag=c.rtag, contact="<sip:bob@%s:5060>" % PROXY)
        bob.send(r180, src)
        got, _ = p1.recv_resp(180, c.dlg.callid, "INVITE")
        check_inbound_response(c.inv_raw, r180, got, "180 Ringing")
    # the offer's pinhole exists: the remote may send before any answer
    media_remote_first(c.remote_rtp, c.pub_media, c.phone_rtp, "media to the offer before %d" % code)
    rf = response(req, code, reason, to_tag=c.rtag)
    bob.send(rf, src)
    got, _ = p1.recv_resp(code, c.dlg.callid, "INVITE")
    check_inbound_response(c.inv_raw, rf, got, "%d %s" % (code, reason))
    c.dlg.learn(got)
    ack = c.dlg.ack(non2xx=True)
    p1.send(ack, (bob.ip, 5060))
    m, _ = bob.recv_req("ACK", c.dlg.callid)
    check_outbound(ack, m, "ACK to %d" % code)
    c.closed("after %d" % code)


@flow
def busy_3_9():
    """RFC 3665 3.9: INVITE, 486 Busy Here, ACK; the offer's pinhole is gone."""
    _failed_call(486, "Busy Here", False, 16600)


@flow
def noanswer_3_11():
    """RFC 3665 3.11 (temporarily unavailable): INVITE, 180, 480, ACK; pinhole gone."""
    _failed_call(480, "Temporarily Unavailable", True, 16700)


def media_not_crossed(c1, c2):
    """Two calls up at once (Call): each remote's RTP, sent first to its call's public media
    address, reaches that call's phone and not the other; then each phone's RTP reaches its
    remote from the public address its SDP named."""
    for c, other, name in ((c1, c2, "phone1"), (c2, c1, "phone2")):
        tag = ("<%s>" % name).encode()
        drain(c.phone_rtp)
        drain(other.phone_rtp)
        send_rtp(c.remote_rtp, c.pub_media, tag=tag)
        n, _, t = count_rtp(c.phone_rtp, tag=tag)
        n2, _, _ = count_rtp(other.phone_rtp, idle=0.2)
        check(t >= RTP_MIN, "%s's media (remote first to %s:%d): %d/%d arrived"
              % ((name,) + tuple(c.pub_media) + (t, RTP_N)))
        check(n2 == 0, "%s's media also reached the other phone (%d)" % (name, n2))
    for c in (c1, c2):
        media_phone_symmetric(c.phone_rtp, (c.remote_media_ip, c.remote_rtp_port), c.remote_rtp,
                              c.pub_media, "%s symmetric" % c.phone.name)


def answer_cross_bye(c1, c2):
    """Both calls (Call, INVITEs seen at the provider) answered and ACKed, their media
    checked not to cross (media_not_crossed), then each phone hangs up."""
    for c in (c1, c2):
        c.answer()
        c.phone_gets_final()
        c.ack()
    media_not_crossed(c1, c2)
    for c in (c1, c2):
        c.bye_from_phone()


@flow
def two_phones_same_port():
    """phone1 and phone2, both from port 5060, both offering RTP port 30000 at the same time;
    then both REGISTER from the same private port and get inbound INVITEs."""
    errors = []
    p1, p2, bob = phone(PHONE1), phone(PHONE2), remote(PROXY, name="bob")
    try:
        c1 = Call(p1, bob, 30000, remote_rtp_port=40100)
        c2 = Call(p2, bob, 30000, remote_rtp_port=40200)
        c1.send_invite()
        c2.send_invite()
        c1.wan_invite("phone1's INVITE")
        c2.wan_invite("phone2's INVITE")
        check(c1.pub_media != c2.pub_media, "both phones got the same public media address %s:%d"
              % c1.pub_media)
        answer_cross_bye(c1, c2)
    except Fail as e:
        errors.append("same RTP port: %s" % e)
    try:
        reg = bob
        r1 = register(p1, reg)
        r2 = register(p2, reg)
        check(r1["pub"] != r2["pub"], "two phones registered with the same public Contact %r" % r1["pub"])
        a, b = Reg(p1, r1["private"]), Reg(p2, r2["private"])
        inbound_invite(reg, r1["pub"], a, [b], what="INVITE to phone1's public Contact")
        inbound_invite(reg, r2["pub"], b, [a], what="INVITE to phone2's public Contact")
    except Fail as e:
        errors.append("same SIP port registration: %s" % e)
    check(not errors, "; ".join(errors))


@flow
def trunk_three_calls():
    """Three calls on one signalling 5-tuple (phone1:5060 <-> 203.0.113.10:5060), all set up
    before any media; the media server .20 sends first to each; BYE on call 2 closes only it."""
    p1, proxy = phone(PHONE1), remote(PROXY, name="proxy")
    calls = [Call(p1, proxy, port, remote_media_ip=MEDIASRV, remote_rtp_port=port + 20000)
             for port in (16800, 16820, 16840)]
    for c in calls:
        c.setup()
    res = []
    for i, c in enumerate(calls):
        drain(c.phone_rtp)
        send_rtp(c.remote_rtp, c.pub_media)
        n, _, _ = count_rtp(c.phone_rtp)
        res.append(n)
    check(all(n >= RTP_MIN for n in res), "media server first, RTP arriving per call: %s (want >= %d each)"
          % (res, RTP_MIN))
    for i, c in enumerate(calls):
        media_phone_symmetric(c.phone_rtp, (MEDIASRV, c.remote_rtp_port), c.remote_rtp, c.pub_media,
                              "call %d symmetric" % (i + 1))
    calls[1].bye_from_phone()
    time.sleep(CLOSE_WAIT)
    media_closed(calls[1].remote_rtp, calls[1].pub_media, calls[1].phone_rtp, "call 2 after its BYE")
    for i in (0, 2):
        media_remote_first(calls[i].remote_rtp, calls[i].pub_media, calls[i].phone_rtp,
                           "call %d after call 2's BYE" % (i + 1))
    calls[0].bye_from_phone()
    calls[2].bye_from_phone()


@flow
def trunk_proxy_media():
    """Kernel helper note 5 on its own: three calls on one signalling 5-tuple whose media
    comes from the proxy's own address (so note 3 does not apply), all set up before any
    media; the proxy then sends first to each call. Every INVITE on the trunk must not
    take the earlier calls' pinholes away."""
    p1, proxy = phone(PHONE1), remote(PROXY, name="proxy")
    calls = [Call(p1, proxy, port, remote_media_ip=PROXY, remote_rtp_port=port + 20000)
             for port in (17800, 17820, 17840)]
    for c in calls:
        c.setup()
    res = []
    for c in calls:
        drain(c.phone_rtp)
        send_rtp(c.remote_rtp, c.pub_media)
        n, _, _ = count_rtp(c.phone_rtp)
        res.append(n)
    check(all(n >= RTP_MIN for n in res), "proxy-address media first, RTP arriving per call: %s "
          "(want >= %d each)" % (res, RTP_MIN))
    for c in calls:
        c.bye_from_phone()


@flow
def compact_headers():
    """An INVITE in compact form (v: m: c: l: i: f: t:): rewritten like the long forms, the
    compact names kept byte for byte, l: fixed."""
    p1, bob = phone(PHONE1), remote(PROXY, name="bob")
    c = Call(p1, bob, 16900)
    d = c.dlg
    d.inv_branch = "z9hG4bK" + uniq()
    d.inv_cseq = 1
    body = c.offer
    c.inv_raw = sip(["INVITE sip:bob@biloxi.example.com SIP/2.0",
                     "v: SIP/2.0/UDP %s:5060;branch=%s" % (PHONE1, d.inv_branch),
                     "Max-Forwards: 70",
                     "f: Alice <sip:alice@atlanta.example.com>;tag=" + d.ftag,
                     "t: Bob <sip:bob@biloxi.example.com>",
                     "i: " + d.callid, "CSeq: 1 INVITE",
                     "m: <%s>" % d.contact, "k: 100rel", "c: application/sdp"], body, cl_name="l")
    p1.send(c.inv_raw, (bob.ip, 5060))
    c.wan_invite("compact INVITE")
    lhdr = [h for h in c.inv_wan.headers if h.name == "content-length"]
    check(len(lhdr) == 1 and lhdr[0].rawname == b"l", "the l: header arrived as %r"
          % [h.raw for h in lhdr])
    c.answer()
    c.phone_gets_final()
    c.ack()
    c.media_both("compact call")
    c.bye_from_phone()


@flow
def body_grows():
    """An INVITE whose SDP gets longer at the router. The LAN address (13 chars) is longer than
    the public one (11), so growth must come from the ports: phone2 holds a pending offer on the
    same six 4-digit private RTP ports, so phone1's public media ports must be allocated
    elsewhere (sipalgd's range is 5-digit: media.port_min 20000). Six m= lines (+6 or more)
    outweigh o= and the session c= (-2 each). Content-Length must match, the SDP parse, and
    every stream work (remote first)."""
    p1, p2, bob = phone(PHONE1), phone(PHONE2), remote(PROXY, name="bob")
    ports = [1100 + 2 * i for i in range(6)]
    hold = Call(p2, bob, 1200, sdp=sdp_body(PHONE2, ports), remote_rtp_port=40300)
    hold.send_invite()
    hold.wan_invite("phone2's INVITE (holding the ports)")
    hold.remote.send(response(hold.inv_wan, 100, "Trying"), hold.inv_src)
    body = sdp_body(PHONE1, ports)
    c = Call(p1, bob, 1300, sdp=body, remote_rtp_port=40400)
    socks = [udp_socket("lan", PHONE1, p) for p in ports]
    c.send_invite(title="phone1's INVITE as sent")
    c.wan_invite("phone1's INVITE", title="phone1's INVITE at the WAN side")
    sent, got = SipMsg(c.inv_raw), c.inv_wan
    grow = len(got.body) - len(sent.body)
    pub_ports = [p for _, p in c.info["media"]]
    vprint("    body %d -> %d bytes (%+d), ports %s -> %s"
           % (len(sent.body), len(got.body), grow, ports, pub_ports))
    check(not set(pub_ports) & set(p for _, p in hold.info["media"]),
          "phone1 and phone2 share public media ports: %s / %s"
          % (pub_ports, [p for _, p in hold.info["media"]]))
    check(grow > 0, "test precondition: the body did not grow (%d -> %d bytes): public ports %s "
          "for private %s" % (len(sent.body), len(got.body), pub_ports, ports))
    c.answer()
    c.phone_gets_final()
    c.ack()
    for (ip, port), s in zip(c.info["media"], socks):
        media_remote_first(c.remote_rtp, (ip, port), s, "stream to %s:%d" % (ip, port))
    c.bye_from_phone()
    # end phone2's pending call
    r = response(hold.inv_wan, 480, "Temporarily Unavailable", to_tag=hold.rtag)
    bob.send(r, hold.inv_src)
    got, _ = p2.recv_resp(480, hold.dlg.callid, "INVITE")
    hold.dlg.learn(got)
    p2.send(hold.dlg.ack(non2xx=True), (bob.ip, 5060))
    bob.recv_req("ACK", hold.dlg.callid)


@flow
def media_other_host():
    """phone1's INVITE names a separate LAN media host (192.168.77.12) in c=; rewritten to the
    public address; RTP to the public port reaches .12; .12's media is symmetric."""
    p1, bob = phone(PHONE1), remote(PROXY, name="bob")
    c = Call(p1, bob, 17000, media_ip=LANHOST)
    c.offer = sdp_body(LANHOST, [17000], origin=PHONE1)
    c.setup()
    c.media_both("media host %s" % LANHOST)
    c.bye_from_phone()


@flow
def remote_media_server():
    """The remote answers with c=203.0.113.20 (not the proxy .10); .20 sends first."""
    p1, bob = phone(PHONE1), remote(PROXY, name="proxy")
    c = Call(p1, bob, 17100, remote_media_ip=MEDIASRV)
    c.setup()
    c.media_both("media server %s" % MEDIASRV)
    c.bye_from_phone()


# ---------------------------------------------------------------- RTCP, rtcp-mux, forking (issue 13)

def nft_inbound():
    """The daemon's inbound elements as a set of (peer, public port); None when there is
    no sipalgd (ALG=kernel/none: no table to look at)."""
    if not os.environ.get("LAB_SOCK"):
        return None
    out = set()
    for m in ("in_peer", "in_any"):
        r = subprocess.run(["ip", "netns", "exec", NS["rtr"], "nft", "list", "map", "ip", "sipalgd_lab", m],
                           capture_output=True, text=True, timeout=5)
        check(r.returncode == 0, "nft list map %s: %s" % (m, r.stderr.strip()))
        if m == "in_peer":
            out |= {(a, int(p)) for a, p in re.findall(r"(\d+\.\d+\.\d+\.\d+) \. (\d+) :", r.stdout)}
        else:
            out |= {("any", int(p)) for p in re.findall(r"(?:\{|,)\s*(\d+) :", r.stdout)}
    return out


def ctl_pinholes():
    """`sipalgctl pinholes` (the operator's view), or None without sipalgd."""
    sock, ctl = os.environ.get("LAB_SOCK"), os.environ.get("LAB_CTL")
    if not sock or not ctl:
        return None
    r = subprocess.run(["ip", "netns", "exec", NS["rtr"], ctl, "-s", sock, "pinholes"],
                       capture_output=True, text=True, timeout=5)
    return r.stdout


def count_from(sock_from, dst, sock_to, n=5, rtcp=True):
    """Send n RTCP (or RTP) datagrams, count what arrives at sock_to; returns (count, sources)."""
    drain(sock_to)
    send_rtp(sock_from, dst, n, rtcp=rtcp)
    got, srcs, _ = count_rtp(sock_to)
    return got, srcs


@flow
def rtcp_port():
    """a=rtcp:PORT IN IP4 addr (RFC 3605) naming a port other than RTP+1, both sides: the
    phone's RTCP port gets its own pinhole and is rewritten; RTCP counted both ways on the
    named ports (remote first); closed with the call."""
    p1, bob = phone(PHONE1), remote(PROXY, name="bob")
    rtp, rtcp_priv, r_rtp, r_rtcp = 17400, 17450, 37400, 37480
    c = Call(p1, bob, rtp, remote_rtp_port=r_rtp)
    c.offer = sdp_body(PHONE1, [rtp]).replace(
        b"a=sendrecv\r\n", b"a=sendrecv\r\na=rtcp:%d IN IP4 %s\r\n" % (rtcp_priv, PHONE1.encode()))
    phone_rtcp = udp_socket("lan", PHONE1, rtcp_priv)
    bob_rtcp = udp_socket("wan", PROXY, r_rtcp)
    c.send_invite()
    info = c.wan_invite(sdp_rewritten=(b"a=rtcp:",))
    a = [ln for ln in info["sdp"].lines if ln.startswith(b"a=rtcp:")]
    check(len(a) == 1, "a=rtcp line at the WAN side: %r" % a)
    f = a[0][7:].decode().split()
    check(len(f) == 4 and f[1:] == ["IN", "IP4", PUB] and f[0].isdigit(),
          "a=rtcp at the WAN side %r, want PORT IN IP4 %s" % (a[0], PUB))
    pub_rtcp = (PUB, int(f[0]))
    check(pub_rtcp[1] != c.pub_media[1] + 1 or rtcp_priv == rtp + 1,
          "a=rtcp port %d is RTP+1 of %d" % (pub_rtcp[1], c.pub_media[1]))
    ans = sdp_body(PROXY, [r_rtp], sess="2890844527", user="bob").replace(
        b"a=sendrecv\r\n", b"a=sendrecv\r\na=rtcp:%d\r\n" % r_rtcp)
    c.answer(answer_sdp=ans)
    c.phone_gets_final()
    c.ack()
    c.media_both("rtcp_port RTP")
    n, _ = count_from(bob_rtcp, pub_rtcp, phone_rtcp)
    vprint("    RTCP remote first %s:%d -> %s:%d: phone received %d/5" % (PROXY, r_rtcp, pub_rtcp[0], pub_rtcp[1], n))
    check(n >= 4, "RTCP from the remote's a=rtcp port to the phone's public a=rtcp %s:%d: phone received %d/5"
          % (pub_rtcp + (n,)))
    n, srcs = count_from(phone_rtcp, (PROXY, r_rtcp), bob_rtcp)
    vprint("    RTCP phone -> remote %s:%d: received %d/5 from %s" % (PROXY, r_rtcp, n, sorted(srcs)))
    check(n >= 4, "RTCP from the phone to the remote's a=rtcp port %d: received %d/5" % (r_rtcp, n))
    check(srcs == {pub_rtcp}, "the phone's RTCP reached the remote from %s, advertised %s:%d"
          % (sorted(srcs), pub_rtcp[0], pub_rtcp[1]))
    view = ctl_pinholes()
    if view is not None:
        want = "%s:%d/%d -> %s:%d" % (PUB, c.pub_media[1], pub_rtcp[1], PHONE1, rtp)
        check(want in view, "sipalgctl pinholes does not show %r:\n%s" % (want, view))
    c.bye_from_phone()
    c.closed("rtcp_port")
    n, _ = count_from(bob_rtcp, pub_rtcp, phone_rtcp)
    check(n == 0, "after the call, RTCP to %s:%d still reached the phone (%d/5)" % (pub_rtcp + (n,)))


@flow
def rtcp_mux():
    """a=rtcp-mux (RFC 5761) offered and answered: RTP and RTCP share the RTP port both ways,
    and nothing opens RTP+1 (no RTP+1 element; RTCP-shaped packets to RTP+1 reach nobody)."""
    p1, bob = phone(PHONE1), remote(PROXY, name="bob")
    rtp = 17500
    c = Call(p1, bob, rtp)
    c.offer = sdp_body(PHONE1, [rtp]).replace(b"a=sendrecv\r\n", b"a=sendrecv\r\na=rtcp-mux\r\n")
    plus1 = udp_socket("lan", PHONE1, rtp + 1)
    c.send_invite()
    c.wan_invite()
    ans = sdp_body(PROXY, [c.remote_rtp_port], sess="2890844527", user="bob").replace(
        b"a=sendrecv\r\n", b"a=sendrecv\r\na=rtcp-mux\r\n")
    c.answer(answer_sdp=ans)
    c.phone_gets_final()
    c.ack()
    c.media_both("rtcp_mux RTP")
    # RTCP on the RTP port, remote first, then the phone's
    n, _ = count_from(c.remote_rtp, c.pub_media, c.phone_rtp)
    check(n >= 4, "muxed RTCP from the remote to %s:%d: phone received %d/5" % (tuple(c.pub_media) + (n,)))
    n, srcs = count_from(c.phone_rtp, (PROXY, c.remote_rtp_port), c.remote_rtp)
    check(n >= 4 and srcs == {tuple(c.pub_media)}, "muxed RTCP from the phone: %d/5 from %s"
          % (n, sorted(srcs)))
    el = nft_inbound()
    if el is not None:
        vprint("    inbound elements: %s" % sorted(el))
        check((PROXY, c.pub_media[1]) in el, "no inbound element for %s . %d: %s" % (PROXY, c.pub_media[1], sorted(el)))
        check((PROXY, c.pub_media[1] + 1) not in el and ("any", c.pub_media[1] + 1) not in el,
              "rtcp-mux offered and answered, yet an element for RTP+1 %d: %s" % (c.pub_media[1] + 1, sorted(el)))
    view = ctl_pinholes()
    if view is not None:
        want = "%s:%d/mux -> %s:%d" % (PUB, c.pub_media[1], PHONE1, rtp)
        check(want in view, "sipalgctl pinholes does not show %r:\n%s" % (want, view))
    n, _ = count_from(c.remote_rtcp or udp_socket("wan", PROXY, c.remote_rtp_port + 1),
                      (PUB, c.pub_media[1] + 1), plus1)
    check(n == 0, "rtcp-mux: RTCP from the remote to RTP+1 %s:%d reached the phone (%d/5): a pinhole "
          "nobody needs" % (PUB, c.pub_media[1] + 1, n))
    c.bye_from_phone()
    c.closed("rtcp_mux")


@flow
def fork_early():
    """Forked INVITE (RFC 3261 13.2.2.4): two early dialogs (183, To tags A and B, media from
    .20 and .30) both send early media (remote first) that reaches the phone; B answers: A's
    pinhole goes (element gone, its media stopped), B's media both ways; A's late 200 is ACKed
    and BYEd without touching B's call; B's BYE closes it."""
    p1, prox = phone(PHONE1), remote(PROXY, name="proxy")
    rtp = 17600
    c = Call(p1, prox, rtp)
    a_sock = udp_socket("wan", MEDIASRV, 37600)
    b_sock = udp_socket("wan", OTHER, 37700)
    c.send_invite()
    c.wan_invite()
    req, src = c.inv_wan, c.inv_src
    tag_a, tag_b = uniq("fa"), uniq("fb")

    def resp(code, reason, tag, ip, port):
        body = sdp_body(ip, [port], sess="2890844527", user="bob")
        return response(req, code, reason, body, to_tag=tag, contact="<sip:bob@%s:5060>" % PROXY)

    prox.send(response(req, 100, "Trying"), src)
    prox.send(resp(183, "Session Progress", tag_a, MEDIASRV, 37600), src)
    p1.recv(lambda m: not m.is_request and m.status == 183 and tag_a in m.get("to", ""), what="183 of fork A")
    prox.send(resp(183, "Session Progress", tag_b, OTHER, 37700), src)
    p1.recv(lambda m: not m.is_request and m.status == 183 and tag_b in m.get("to", ""), what="183 of fork B")
    media_remote_first(a_sock, c.pub_media, c.phone_rtp, "early media of fork A (%s)" % MEDIASRV)
    media_remote_first(b_sock, c.pub_media, c.phone_rtp, "early media of fork B (%s)" % OTHER)
    el = nft_inbound()
    if el is not None:
        vprint("    inbound elements, two early dialogs: %s" % sorted(el))
        check({(MEDIASRV, c.pub_media[1]), (OTHER, c.pub_media[1])} <= el,
              "two early dialogs: elements %s, want one from %s and one from %s"
              % (sorted(el), MEDIASRV, OTHER))
    # B answers
    ok_b = resp(200, "OK", tag_b, OTHER, 37700)
    prox.send(ok_b, src)
    m, _ = p1.recv(lambda m: not m.is_request and m.status == 200 and tag_b in m.get("to", ""), what="200 of fork B")
    c.dlg.learn(m)
    c.ack()
    time.sleep(CLOSE_WAIT)
    el = nft_inbound()
    if el is not None:
        vprint("    inbound elements after B's 200: %s" % sorted(el))
        check((MEDIASRV, c.pub_media[1]) not in el, "fork A lost, its element %s . %d stays: %s"
              % (MEDIASRV, c.pub_media[1], sorted(el)))
        check((OTHER, c.pub_media[1]) in el, "fork B won, its element %s . %d is gone" % (OTHER, c.pub_media[1]))
    drain(c.phone_rtp)
    send_rtp(a_sock, c.pub_media)
    n, _, _ = count_rtp(c.phone_rtp, idle=0.5)
    check(n == 0, "fork A lost, its media from %s still reached the phone (%d/%d)" % (MEDIASRV, n, RTP_N))
    media_remote_first(b_sock, c.pub_media, c.phone_rtp, "fork B after its 200 (remote first)")
    media_phone_symmetric(c.phone_rtp, (OTHER, 37700), b_sock, c.pub_media, "fork B (phone, symmetric)")
    # A's late 200: the phone ACKs it and BYEs it (RFC 3261 13.2.2.4)
    ok_a = resp(200, "OK", tag_a, MEDIASRV, 37600)
    prox.send(ok_a, src)
    m, _ = p1.recv(lambda m: not m.is_request and m.status == 200 and tag_a in m.get("to", ""), what="late 200 of fork A")
    late = Dialog(PHONE1)
    late.callid, late.ftag, late.inv_cseq, late.cseq = c.dlg.callid, c.dlg.ftag, c.dlg.inv_cseq, c.dlg.cseq
    late.learn(m)
    p1.send(late.ack(), (PROXY, 5060))
    prox.recv(lambda m: m.is_request and m.method == "ACK" and tag_a in m.get("to", ""), what="ACK to fork A")
    p1.send(late.bye(), (PROXY, 5060))
    bye, bsrc = prox.recv(lambda m: m.is_request and m.method == "BYE" and tag_a in m.get("to", ""), what="BYE to fork A")
    prox.send(response(bye, 200, "OK"), bsrc)
    p1.recv(lambda m: not m.is_request and m.status == 200 and m.cseq.endswith("BYE"), what="200 to the BYE of fork A")
    time.sleep(0.3)
    media_remote_first(b_sock, c.pub_media, c.phone_rtp, "fork B after fork A's BYE (remote first)")
    drain(c.phone_rtp)
    send_rtp(a_sock, c.pub_media)
    n, _, _ = count_rtp(c.phone_rtp, idle=0.5)
    check(n == 0, "fork A's late 200 reopened its media (%d/%d reached the phone)" % (n, RTP_N))
    c.remote_rtp, c.remote_media_ip, c.remote_rtp_port = b_sock, OTHER, 37700
    c.bye_from_phone()
    c.closed("fork_early")
    el = nft_inbound()
    if el is not None:
        check(not any(p == c.pub_media[1] for _, p in el), "after the call: elements on %d stay: %s"
              % (c.pub_media[1], sorted(el)))


# ---------------------------------------------------------------- fast path ordering (issue 11)

@flow
def early_order():
    """A 183 with SDP (through the daemon) and a 180 without a body (the tc fast path's
    kind) sent back to back: the 180 may overtake the 183 (plain UDP may too). Whatever
    order they arrive in, each is intact (the phone's own Via, the body as sent), the early
    media of the 183's SDP reaches the phone, and the call goes on to 200/ACK/BYE. (With the
    fast path on, the 180 arrived first in every run seen.)"""
    p1, bob = phone(PHONE1), remote(PROXY, name="bob")
    c = Call(p1, bob, 17800)
    c.send_invite()
    c.wan_invite()
    req, src = c.inv_wan, c.inv_src
    early = sdp_body(PROXY, [c.remote_rtp_port], sess="2890844527", user="bob")
    r183 = response(req, 183, "Session Progress", early, to_tag=c.rtag,
                    contact="<sip:bob@%s:5060>" % PROXY)
    r180 = response(req, 180, "Ringing", to_tag=c.rtag, contact="<sip:bob@%s:5060>" % PROXY)
    bob.send(r183, src)
    bob.send(r180, src)
    order = []
    for _ in range(2):
        m, _ = p1.recv(lambda m: not m.is_request and m.callid == c.dlg.callid and m.status in (180, 183)
                       and m.status not in order, what="183 and 180")
        order.append(m.status)
        check_inbound_response(c.inv_raw, r183 if m.status == 183 else r180, m, "%d" % m.status)
    vprint("    arrived in the order %s" % order)
    media_remote_first(c.remote_rtp, c.pub_media, c.phone_rtp, "early media of the 183")
    c.answer(provisional=())
    c.phone_gets_final()
    c.ack()
    c.media_both("early_order RTP")
    c.bye_from_phone()
    c.closed("early_order")


# ---------------------------------------------------------------- hairpin (issue 13)

def proxy_request(m, ruri=None, record_route=False):
    """What a stateless proxy forwards: its own Via on top, Max-Forwards - 1, the
    Request-URI replaced by the registered Contact (ruri), its Route entry taken off,
    optionally its Record-Route; everything else (the SDP) byte for byte."""
    head, body = m.raw.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    start = lines[0]
    if ruri:
        meth, _, ver = start.split(b" ", 2)
        start = b" ".join([meth, ruri.encode(), ver])
    out = [start, ("Via: SIP/2.0/UDP %s:5060;branch=z9hG4bK%s" % (PROXY, uniq())).encode()]
    if record_route:
        out.append(("Record-Route: <sip:%s;lr>" % PROXY).encode())
    for ln in lines[1:]:
        low = ln.lower()
        if low.startswith(b"max-forwards:"):
            ln = b"Max-Forwards: %d" % (int(ln.split(b":", 1)[1]) - 1)
        elif low.startswith(b"route:") and PROXY.encode() in ln:
            continue
        out.append(ln)
    return b"\r\n".join(out) + b"\r\n\r\n" + body


def proxy_response(m):
    """A response on its way back through the proxy: the proxy's (top) Via taken off."""
    head, body = m.raw.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    out, popped = [lines[0]], False
    for ln in lines[1:]:
        if not popped and ln.lower().startswith(b"via:"):
            popped = True
            continue
        out.append(ln)
    return b"\r\n".join(out) + b"\r\n\r\n" + body


def router_conntrack_udp():
    r = subprocess.run(["ip", "netns", "exec", NS["rtr"], "conntrack", "-L", "-p", "udp"],
                       capture_output=True, text=True, timeout=5)
    return r.stdout


def router_nft_ruleset():
    r = subprocess.run(["ip", "netns", "exec", NS["rtr"], "nft", "list", "ruleset"],
                       capture_output=True, text=True, timeout=5)
    return r.stdout


@flow
def hairpin_call():
    """phone1 calls phone3 (another LAN port) through the provider, which registered both
    and proxies the INVITE to phone3's public Contact (Call-ID and SDP untouched). RTP both
    ways between the phones via the public address, from the address each SDP named and
    from no other LAN host; BYE closes it: no inbound elements, no media conntracks."""
    check("lan2" in NS, "no second LAN namespace (tests/netns/lib.sh builds salg-lan2-ID)")
    a, prov = phone(PHONE1), remote(PROXY, name="provider")
    b = UA("lan2", PHONE3, 5060, "phone3(%s:5060)" % PHONE3)
    ra = register(a, prov, user="alice")
    rb = register(b, prov, user="bob")
    a_port, b_port = 18000, 18100
    a_rtp = udp_socket("lan", PHONE1, a_port)
    b_rtp = udp_socket("lan2", PHONE3, b_port)
    # phone1 -> provider
    dlg = Dialog(PHONE1, 5060, user="alice")
    inv = dlg.invite(sdp_body(PHONE1, [a_port], origin=PHONE1), ruri="sip:bob@biloxi.example.com")
    a.send(inv, (PROXY, 5060), "INVITE as phone1 sent it")
    m1, a_src = prov.recv_req("INVITE", dlg.callid)
    check_outbound(inv, m1, "phone1's INVITE")
    # provider -> phone3's registered public Contact
    fwd = proxy_request(m1, ruri=rb["pub"], record_route=True)
    prov.send(fwd, uri_hostport(rb["pub"]), "INVITE as the provider relayed it")
    got, b_src = b.recv_req("INVITE", dlg.callid)
    show("INVITE as phone3 received it", got.raw)
    check(got.ruri == rb["private"], "INVITE at phone3: Request-URI %r, want its contact %r"
          % (got.ruri, rb["private"]))
    b_sees_a = Sdp(got.body).addr(0)
    # phone3 answers -> provider -> phone1
    ok = response(got, 200, "OK", sdp_body(PHONE3, [b_port], sess="2890844527", user="bob"),
                  to_tag=uniq("bt"), contact="<sip:bob@%s:5060>" % PHONE3, rr="<sip:%s;lr>" % PROXY)
    b.send(ok, b_src, "200 OK as phone3 sent it")
    m2, _ = prov.recv_resp(200, dlg.callid, "INVITE")
    check_outbound(ok, m2, "phone3's 200 OK")
    prov.send(proxy_response(m2), a_src)
    got_ok, _ = a.recv_resp(200, dlg.callid, "INVITE")
    show("200 OK as phone1 received it", got_ok.raw)
    a_sees_b = Sdp(got_ok.body).addr(0)
    dlg.learn(got_ok)
    ack = dlg.ack()
    a.send(ack, (PROXY, 5060))
    m3, _ = prov.recv_req("ACK", dlg.callid)
    prov.send(proxy_request(m3), uri_hostport(m3.ruri))
    b.recv_req("ACK", dlg.callid)
    vprint("    phone1's SDP reached phone3 as %s:%d, phone3's reached phone1 as %s:%d"
           % (b_sees_a + a_sees_b))
    # media: phone1 first, then phone3; each from the address its own SDP named
    for snd, rcv, dst, src_want, what in (
            (a_rtp, b_rtp, a_sees_b, b_sees_a, "phone1 -> phone3"),
            (b_rtp, a_rtp, b_sees_a, a_sees_b, "phone3 -> phone1")):
        drain(rcv)
        send_rtp(snd, dst)
        n, srcs, _ = count_rtp(rcv)
        vprint("    RTP %s to %s:%d: %d/%d arrived from %s" % ((what,) + tuple(dst) + (n, RTP_N, sorted(srcs))))
        if n < RTP_MIN:
            where = diag("hairpin-" + what.replace(" ", "").replace(">", ""), dst[1])
            check(False, "hairpin RTP %s to %s:%d: %d/%d arrived (no audio)%s"
                  % ((what,) + tuple(dst) + (n, RTP_N, "; router state in " + where if where else "")))
        check(srcs == {tuple(src_want)}, "hairpin RTP %s arrived from %s, the SDP named %s:%d"
              % ((what, sorted(srcs)) + tuple(src_want)))
    # only the other phone: not another LAN host, not the internet
    for side, ip in (("lan", PHONE2), ("wan", OTHER)):
        s = udp_socket(side, ip, 0)
        drain(b_rtp)
        send_rtp(s, a_sees_b)
        n, _, _ = count_rtp(b_rtp, idle=0.3)
        check(n == 0, "RTP from %s to phone3's public media %s:%d reached phone3 (%d)"
              % ((ip,) + tuple(a_sees_b) + (n,)))
    # BYE phone1 -> provider -> phone3, 200 back
    bye = dlg.bye()
    a.send(bye, (PROXY, 5060))
    m4, _ = prov.recv_req("BYE", dlg.callid)
    prov.send(proxy_request(m4), uri_hostport(m4.ruri))
    gb, gb_src = b.recv_req("BYE", dlg.callid)
    b.send(response(gb, 200, "OK"), gb_src)
    m5, _ = prov.recv_resp(200, dlg.callid, "BYE")
    prov.send(proxy_response(m5), a_src)
    a.recv_resp(200, dlg.callid, "BYE")
    time.sleep(CLOSE_WAIT)
    # the call's media flows: between the phones' media ports, whatever NAT they had
    # (the probes from the other hosts above are the router's, not the call's)
    ports = ["port=%d " % p for p in (a_port, b_port, a_sees_b[1], b_sees_a[1])]
    left = [ln for ln in router_conntrack_udp().splitlines()
            if any(p in ln for p in ports) and ("=%s " % PHONE1 in ln or "=%s " % PHONE3 in ln)]
    check(not left, "%.0fs after the BYE the router still has the call's media conntracks: %s"
          % (CLOSE_WAIT, left[:2]))
    if os.environ.get("LAB_SOCK"):   # sipalgd: its inbound elements are gone too
        rs = router_nft_ruleset()
        el = [x for x in (": %s . %d" % (PHONE1, a_port), ": %s . %d" % (PHONE3, b_port)) if x in rs]
        check(not el, "after the BYE the DNAT elements %s are still in the router's maps" % el)
    for snd, rcv, dst, what in ((a_rtp, b_rtp, a_sees_b, "phone1 -> phone3"),
                                (b_rtp, a_rtp, b_sees_a, "phone3 -> phone1")):
        drain(rcv)
        send_rtp(snd, dst)
        n, _, _ = count_rtp(rcv, idle=0.5)
        check(n == 0, "%s: %.0fs after the BYE, RTP to %s:%d still arrived (%d)"
              % ((what, CLOSE_WAIT) + tuple(dst) + (n,)))


SIPP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sipp")
CHILDREN = []


def run_sipp_pair(uas_xml, uac_xml, calls, tmp, label, uac_extra=()):
    """sipp UAS in the WAN ns at the proxy, sipp UAC in the LAN ns as phone1, both bounded."""
    uas_cmd = ["ip", "netns", "exec", NS["wan"], "sipp", "-sf", os.path.join(SIPP_DIR, uas_xml),
               "-i", PROXY, "-p", "5060", "-m", str(calls), "-timeout", "25s", "-timeout_error",
               "-nostdin", "-trace_err", "-error_file", os.path.join(tmp, label + "-uas-errors.log"),
               "-trace_msg", "-message_file", os.path.join(tmp, label + "-uas-messages.log")]
    uac_cmd = ["ip", "netns", "exec", NS["lan"], "sipp", "-sf", os.path.join(SIPP_DIR, uac_xml),
               "-i", PHONE1, "-p", "5060", "-mp", "17200", "-s", "bob", "-m", str(calls),
               "-r", "5", "-l", "1", "-cid_str", "%u-%p@atlanta.example.com", "-timeout", "20s", "-timeout_error", "-nostdin", "-trace_err",
               "-error_file", os.path.join(tmp, label + "-uac-errors.log"),
               "-recv_timeout", "4000", "-max_retrans", "2"] + list(uac_extra) + ["%s:5060" % PROXY]
    out = open(os.path.join(tmp, label + "-sipp.out"), "wb")
    uas = subprocess.Popen(uas_cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    CHILDREN.append(uas)
    time.sleep(0.5)
    uac = subprocess.Popen(uac_cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    CHILDREN.append(uac)
    try:
        rc_uac = uac.wait(timeout=30)
        rc_uas = uas.wait(timeout=30)
    except subprocess.TimeoutExpired:
        for p in (uac, uas):
            p.kill()
            p.wait()
        raise Fail("%s: sipp did not finish in 30 s" % label)
    finally:
        out.close()

    def tail(name):
        path = os.path.join(tmp, name)
        try:
            with open(path, errors="replace") as f:
                lines = [ln.rstrip() for ln in f if ln.strip()]
            return " | ".join(lines[-6:])
        except OSError:
            return ""
    check(rc_uas == 0 and rc_uac == 0, "%s: sipp UAS exit %d, UAC exit %d; UAS errors: %s; UAC errors: %s"
          % (label, rc_uas, rc_uac, tail(label + "-uas-errors.log")[:600],
             tail(label + "-uac-errors.log")[:600]))


@flow
def sipp_basic():
    """sipp: phone1 UAC (INVITE with SDP, ACK, pause, BYE) x5 against a WAN UAS that checks with
    <ereg check_it> that Via/Contact/c=/o= carry 203.0.113.1 and no 192.168.77. appears;
    then a REGISTER pair likewise."""
    tmp = os.environ.get("LAB_TMP", "/tmp")
    run_sipp_pair("uas_check.xml", "uac_call.xml", 5, tmp, "sipp-call")
    run_sipp_pair("registrar_check.xml", "uac_register.xml", 3, tmp, "sipp-register")


# ---------------------------------------------------------------- IPv6 flows (--v6)
#
# They need the lab's IPv6 side (lib.sh LAB_V6=1; run.sh sets it unless V6=0). No NAT66 on
# the router, so what a correct ALG must do is: rewrite nothing (every message arrives byte
# for byte, from the sender's own address) and open a pinhole in the stateful ip6 forward
# path for the SDP peer's media, closed with the call. URIs and Vias carry the address in
# brackets (RFC 3261 25.1, RFC 5118 4.1).
#
# LAB_V6_HAND_PINHOLE=1 (a check of the flows themselves, not of any ALG): the flow plays
# the ALG's media part by hand, creating the conntrack entry a correct ALG creates (SDP
# peer addr:port -> phone addr:port, docs/ipv6.md design item 1) when the answer is seen
# and deleting it when the call ends or the media moves. Run with ALG=none, every v6 flow
# must then pass: what fails without it is the missing pinhole and nothing else.

PHONE1_6 = "2001:db8:77::10"
PROXY_6 = "2001:db8:113::10"
OTHER_6 = "2001:db8:113::30"

V6_FLOWS = []


def flow6(fn):
    V6_FLOWS.append(fn)
    return fn


def sdp_body6(ip, port, user, sess):
    """An audio SDP offering/answering `port` at IPv6 address `ip` (c=IN IP6, RFC 4566 5.7)."""
    lines = ["v=0", "o=%s %s 1 IN IP6 %s" % (user, sess, ip), "s=-", "c=IN IP6 %s" % ip, "t=0 0",
             "m=audio %d RTP/AVP 0 8 101" % port, "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
             "a=rtpmap:101 telephone-event/8000", "a=sendrecv"]
    return ("\r\n".join(lines) + "\r\n").encode()


def sdp_dual(ip4, ip6, port, user, sess, ver=1):
    """Dual stack: the session is IPv4 (o= IN IP4, rewritten like any IPv4 SDP), its one
    audio stream is IPv6 (media-level c=IN IP6, RFC 4566 5.7), no session-level c=."""
    lines = ["v=0", "o=%s %s %d IN IP4 %s" % (user, sess, ver, ip4), "s=-", "t=0 0",
             "m=audio %d RTP/AVP 0 8 101" % port, "c=IN IP6 %s" % ip6, "a=rtpmap:0 PCMU/8000",
             "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000", "a=sendrecv"]
    return ("\r\n".join(lines) + "\r\n").encode()


def hand_pinhole(add, peer, pport, ph, port):
    """LAB_V6_HAND_PINHOLE=1 only: create (or delete) by hand, in the router, the conntrack
    entry a correct ALG creates for an IPv6 stream: original peer:pport -> phone:port, seen
    both ways so the first packet is `established`."""
    if os.environ.get("LAB_V6_HAND_PINHOLE") != "1":
        return
    cmd = ["ip", "netns", "exec", NS["rtr"], "conntrack", "-I" if add else "-D",
           "-p", "udp", "-s", peer, "-d", ph, "--sport", str(pport), "--dport", str(port)]
    if add:
        cmd += ["-r", ph, "-q", peer, "--reply-port-src", str(port), "--reply-port-dst", str(pport),
                "-t", "60", "-u", "SEEN_REPLY"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
    vprint("    hand pinhole %s [%s]:%d -> [%s]:%d: %s" % ("add" if add else "del", peer, pport, ph,
                                                        port, (r.stderr or r.stdout).strip()))


def stranger_gets_nothing(ph_rtp, dst, what):
    """RTP to the phone's media port from another WAN host (not the SDP peer): 0 through."""
    stranger = udp_socket("wan", OTHER_6, 0)
    drain(ph_rtp)
    send_rtp(stranger, dst)
    n, _, _ = count_rtp(ph_rtp)
    check(n == 0, "%s: RTP from %s (not the SDP peer) to [%s]:%d reached the phone (%d)"
          % (what, OTHER_6, dst[0], dst[1], n))


def arrived_as_sent(sent, got, src, want_src, what):
    """No NAT66: the message must arrive byte for byte, from the sender's own address."""
    if got.raw != sent:
        a, b = sent.split(b"\r\n"), got.raw.split(b"\r\n")
        diff = next(("%r -> %r" % (x, y) for x, y in zip(a, b) if x != y),
                    "lengths %d -> %d" % (len(sent), len(got.raw)))
        raise Fail("%s changed on the way (no NAT66: must arrive as sent): %s" % (what, diff))
    check(src[0] == want_src, "%s arrived from %s, was sent from %s (no NAT66)"
          % (what, src[0], want_src))


@flow6
def v6_policy():
    """IPv6 lab: the router's ip6 forward policy is stateful: LAN -> WAN UDP and its reply
    pass (from the sender's own address), a new WAN -> LAN datagram is dropped."""
    lan = udp_socket("lan", PHONE1_6, 0)
    wan = udp_socket("wan", PROXY_6, 0)
    other = udp_socket("wan", OTHER_6, 0)
    lan.sendto(b"out", (PROXY_6, wan.getsockname()[1]))
    n, srcs, _ = count_rtp(wan)
    check(n == 1 and {s[0] for s in srcs} == {PHONE1_6},
          "LAN -> WAN over IPv6: %d datagram(s) from %s (want 1 from %s)" % (n, sorted(srcs), PHONE1_6))
    wan.sendto(b"reply", (PHONE1_6, lan.getsockname()[1]))
    n, _, _ = count_rtp(lan)
    check(n == 1, "the reply WAN -> LAN over IPv6 reached the phone %d time(s), want 1" % n)
    other.sendto(b"new", (PHONE1_6, lan.getsockname()[1]))
    n, _, _ = count_rtp(lan)
    check(n == 0, "a new WAN -> LAN datagram over IPv6 reached the phone: the router has no "
          "stateful ip6 forward policy")


@flow6
def v6_register():
    """IPv6: REGISTER from phone1's IPv6 address to the registrar's, 200 back, then the
    registrar's OPTIONS to the registered Contact; every message arrives as sent."""
    p1 = UA("lan", PHONE1_6, 5060, "phone1(v6)")
    reg = UA("wan", PROXY_6, 5060, "registrar(v6)")
    cid = uniq("reg6") + "@biloxi.example.com"
    contact = "<sip:bob@[%s]:5060>" % PHONE1_6
    raw = sip(["REGISTER sip:biloxi.example.com SIP/2.0",
               "Via: SIP/2.0/UDP [%s]:5060;branch=z9hG4bK%s" % (PHONE1_6, uniq()),
               "Max-Forwards: 70", "From: Bob <sip:bob@biloxi.example.com>;tag=" + uniq("rf"),
               "To: Bob <sip:bob@biloxi.example.com>", "Call-ID: " + cid, "CSeq: 1 REGISTER",
               "Contact: " + contact, "Expires: 3600"])
    p1.send(raw, (PROXY_6, 5060), "REGISTER (IPv6)")
    m, src = reg.recv_req("REGISTER", cid)
    arrived_as_sent(raw, m, src, PHONE1_6, "REGISTER")
    r = response(m, 200, "OK", to_tag=uniq("rt"), contact=contact + ";expires=3600")
    reg.send(r, src)
    got, gsrc = p1.recv_resp(200, cid, "REGISTER")
    arrived_as_sent(r, got, gsrc, PROXY_6, "200 OK to REGISTER")
    # the registrar reaches the registered Contact (RFC 5118 4.1 form) at its own address
    ocid = uniq("opt6") + "@biloxi.example.com"
    opt = sip(["OPTIONS sip:bob@[%s]:5060 SIP/2.0" % PHONE1_6,
               "Via: SIP/2.0/UDP [%s]:5060;branch=z9hG4bK%s" % (PROXY_6, uniq()),
               "Max-Forwards: 70", "From: <sip:registrar@biloxi.example.com>;tag=" + uniq("of"),
               "To: " + contact, "Call-ID: " + ocid, "CSeq: 1 OPTIONS"])
    reg.send(opt, (PHONE1_6, 5060))
    m, src = p1.recv_req("OPTIONS", ocid)
    arrived_as_sent(opt, m, src, PROXY_6, "OPTIONS to the registered Contact")


@flow6
def v6_call():
    """IPv6: INVITE and 200 with c=IN IP6, ACK, RTP remote first then the phone's, media only
    from the SDP peer, BYE; nothing rewritten; media closed after BYE."""
    p1 = UA("lan", PHONE1_6, 5060, "phone1(v6)")
    bob = UA("wan", PROXY_6, 5060, "bob(v6)")
    port, rport = 16800, 36800
    ph_rtp = udp_socket("lan", PHONE1_6, port)
    rem_rtp = udp_socket("wan", PROXY_6, rport)
    d = Dialog("[%s]" % PHONE1_6, peer="[%s]" % PROXY_6)
    inv = d.invite(sdp_body6(PHONE1_6, port, "alice", "2890844526"))
    p1.send(inv, (PROXY_6, 5060), "INVITE (IPv6) as phone1 sent it")
    m, src = bob.recv_req("INVITE", d.callid)
    show("INVITE (IPv6) as it arrived at the WAN side", m.raw)
    arrived_as_sent(inv, m, src, PHONE1_6, "INVITE")
    rtag = uniq("rt")
    bcontact = "<sip:bob@[%s]:5060>" % PROXY_6
    bob.send(response(m, 180, "Ringing", to_tag=rtag, contact=bcontact), src)
    ok = response(m, 200, "OK", sdp_body6(PROXY_6, rport, "bob", "2890844527"), to_tag=rtag,
                  contact=bcontact)
    bob.send(ok, src, "200 OK (IPv6)")
    got, gsrc = p1.recv_resp(200, d.callid, "INVITE")
    arrived_as_sent(ok, got, gsrc, PROXY_6, "200 OK")
    hand_pinhole(True, PROXY_6, rport, PHONE1_6, port)
    d.learn(got)
    ack = d.ack()
    p1.send(ack, (PROXY_6, 5060))
    m, src = bob.recv_req("ACK", d.callid)
    arrived_as_sent(ack, m, src, PHONE1_6, "ACK")
    # No NAT66: the media address is the one in the phone's SDP; the remote sends first
    # (new WAN -> LAN flow: only a pinhole lets it through the stateful forward policy).
    media_remote_first(rem_rtp, (PHONE1_6, port), ph_rtp, "v6_call RTP (remote first)")
    media_phone_symmetric(ph_rtp, (PROXY_6, rport), rem_rtp, (PHONE1_6, port),
                          "v6_call RTP (phone)")
    stranger = udp_socket("wan", OTHER_6, 0)
    drain(ph_rtp)
    send_rtp(stranger, (PHONE1_6, port))
    n, _, _ = count_rtp(ph_rtp)
    check(n == 0, "RTP from %s (not the SDP peer) to [%s]:%d reached the phone (%d)"
          % (OTHER_6, PHONE1_6, port, n))
    bye = d.bye()
    p1.send(bye, (PROXY_6, 5060))
    m, src = bob.recv_req("BYE", d.callid)
    arrived_as_sent(bye, m, src, PHONE1_6, "BYE")
    r = response(m, 200, "OK")
    bob.send(r, src)
    got, gsrc = p1.recv_resp(200, d.callid, "BYE")
    arrived_as_sent(r, got, gsrc, PROXY_6, "200 OK to BYE")
    hand_pinhole(False, PROXY_6, rport, PHONE1_6, port)
    time.sleep(CLOSE_WAIT)
    media_closed(rem_rtp, (PHONE1_6, port), ph_rtp, "v6_call")


class Call6:
    """One IPv6 call phone1 -> bob over the routed IPv6 side: every message must arrive as
    sent (arrived_as_sent), from the sender's own address."""

    def __init__(self, port, rport, name):
        self.p1 = UA("lan", PHONE1_6, 5060, "phone1(v6)")
        self.bob = UA("wan", PROXY_6, 5060, "bob(v6)")
        self.port, self.rport, self.name = port, rport, name
        self.rmedia = PROXY_6   # the remote's media address (v6_fork: the winner's)
        self.ph_rtp = udp_socket("lan", PHONE1_6, port)
        self.rem_rtp = udp_socket("wan", PROXY_6, rport)
        self.d = Dialog("[%s]" % PHONE1_6, peer="[%s]" % PROXY_6)
        self.rtag = uniq("rt")
        self.bcontact = "<sip:bob@[%s]:5060>" % PROXY_6

    def invite(self):
        self.inv = self.d.invite(sdp_body6(PHONE1_6, self.port, "alice", "2890844526"))
        self.p1.send(self.inv, (PROXY_6, 5060), "INVITE (IPv6)")
        self.m, self.src = self.bob.recv_req("INVITE", self.d.callid)
        arrived_as_sent(self.inv, self.m, self.src, PHONE1_6, "INVITE")

    def respond(self, code, reason, sdp=True):
        body = sdp_body6(PROXY_6, self.rport, "bob", "2890844527") if sdp else b""
        r = response(self.m, code, reason, body, to_tag=self.rtag, contact=self.bcontact)
        self.bob.send(r, self.src, "%d (IPv6)" % code)
        got, gsrc = self.p1.recv_resp(code, self.d.callid, "INVITE")
        arrived_as_sent(r, got, gsrc, PROXY_6, "%d %s" % (code, reason))
        if sdp:
            hand_pinhole(True, PROXY_6, self.rport, PHONE1_6, self.port)
        return got

    def ack(self, ok):
        self.d.learn(ok)
        ack = self.d.ack()
        self.p1.send(ack, (PROXY_6, 5060))
        m, src = self.bob.recv_req("ACK", self.d.callid)
        arrived_as_sent(ack, m, src, PHONE1_6, "ACK")

    def media(self, what):
        media_remote_first(self.rem_rtp, (PHONE1_6, self.port), self.ph_rtp, what + " (remote first)")
        media_phone_symmetric(self.ph_rtp, (self.rmedia, self.rport), self.rem_rtp, (PHONE1_6, self.port),
                              what + " (phone)")

    def bye(self):
        bye = self.d.bye()
        self.p1.send(bye, (PROXY_6, 5060))
        m, src = self.bob.recv_req("BYE", self.d.callid)
        arrived_as_sent(bye, m, src, PHONE1_6, "BYE")
        r = response(m, 200, "OK")
        self.bob.send(r, src)
        got, gsrc = self.p1.recv_resp(200, self.d.callid, "BYE")
        arrived_as_sent(r, got, gsrc, PROXY_6, "200 OK to BYE")
        hand_pinhole(False, self.rmedia, self.rport, PHONE1_6, self.port)

    def closed(self):
        time.sleep(CLOSE_WAIT)
        media_closed(self.rem_rtp, (PHONE1_6, self.port), self.ph_rtp, self.name)


@flow6
def v6_dual():
    """Dual stack: IPv4 signalling (NAT as usual) with an m=audio stream at c=IN IP6 (the
    phone's IPv6 address); the IPv6 stream's lines leave unchanged; the remote sends first
    over IPv6; media only from the SDP peer; closed after BYE."""
    p1, bob = phone(PHONE1), remote(PROXY, name="bob")
    port, rport = 16820, 36820
    ph_rtp = udp_socket("lan", PHONE1_6, port)
    rem_rtp = udp_socket("wan", PROXY_6, rport)
    c = Call(p1, bob, 16830, sdp=sdp_dual(PHONE1, PHONE1_6, port, "alice", "2890844526"))
    c.send_invite()
    info = c.wan_invite("INVITE (dual stack)")
    check(info["media"][0] == (PHONE1_6, port), "INVITE (dual stack): the IPv6 stream arrived as "
          "%r, sent [%s]:%d" % (info["media"][0], PHONE1_6, port))
    c.answer(answer_sdp=sdp_dual(PROXY, PROXY_6, rport, "bob", "2890844527"))
    c.phone_gets_final(what="200 OK (dual stack)")
    hand_pinhole(True, PROXY_6, rport, PHONE1_6, port)
    c.ack()
    media_remote_first(rem_rtp, (PHONE1_6, port), ph_rtp, "v6_dual RTP over IPv6 (remote first)")
    media_phone_symmetric(ph_rtp, (PROXY_6, rport), rem_rtp, (PHONE1_6, port),
                          "v6_dual RTP over IPv6 (phone)")
    stranger_gets_nothing(ph_rtp, (PHONE1_6, port), "v6_dual")
    c.bye_from_phone()
    hand_pinhole(False, PROXY_6, rport, PHONE1_6, port)
    time.sleep(CLOSE_WAIT)
    media_closed(rem_rtp, (PHONE1_6, port), ph_rtp, "v6_dual")


@flow6
def v6_early():
    """IPv6: 183 Session Progress with SDP, early media remote first before any answer,
    then 200 (same SDP), ACK, media both ways, BYE; nothing rewritten; closed after BYE."""
    c = Call6(16840, 36840, "v6_early")
    c.invite()
    c.respond(183, "Session Progress")
    media_remote_first(c.rem_rtp, (PHONE1_6, c.port), c.ph_rtp, "v6_early early media of the 183")
    stranger_gets_nothing(c.ph_rtp, (PHONE1_6, c.port), "v6_early (early)")
    ok = c.respond(200, "OK")
    c.ack(ok)
    c.media("v6_early RTP after 200")
    c.bye()
    c.closed()


@flow6
def v6_reinvite():
    """IPv6: re-INVITE from the phone moving its media to a new port: the new port gets the
    remote's RTP (remote first), the old port gets nothing after it; nothing rewritten."""
    c = Call6(16860, 36860, "v6_reinvite")
    c.invite()
    ok = c.respond(200, "OK")
    c.ack(ok)
    c.media("v6_reinvite before the re-INVITE")
    old_port, old_sock = c.port, c.ph_rtp
    new_port = 16870
    new_sock = udp_socket("lan", PHONE1_6, new_port)
    raw = c.d.reinvite(sdp_body6(PHONE1_6, new_port, "alice", "2890844526").replace(
        b" 1 IN IP6", b" 2 IN IP6"))
    c.p1.send(raw, (PROXY_6, 5060), "re-INVITE (IPv6)")
    m, src = c.bob.recv_req("INVITE", c.d.callid)
    arrived_as_sent(raw, m, src, PHONE1_6, "re-INVITE")
    r = response(m, 200, "OK", sdp_body6(PROXY_6, c.rport, "bob", "2890844527").replace(
        b" 1 IN IP6", b" 2 IN IP6"), contact=c.bcontact)
    c.bob.send(r, src)
    got, gsrc = c.p1.recv_resp(200, c.d.callid, "INVITE")
    arrived_as_sent(r, got, gsrc, PROXY_6, "200 OK to re-INVITE")
    hand_pinhole(False, PROXY_6, c.rport, PHONE1_6, old_port)
    hand_pinhole(True, PROXY_6, c.rport, PHONE1_6, new_port)
    ack = c.d.ack()
    c.p1.send(ack, (PROXY_6, 5060))
    m, src = c.bob.recv_req("ACK", c.d.callid)
    arrived_as_sent(ack, m, src, PHONE1_6, "ACK to re-INVITE")
    c.port, c.ph_rtp = new_port, new_sock
    c.media("v6_reinvite new port")
    time.sleep(CLOSE_WAIT)
    media_closed(c.rem_rtp, (PHONE1_6, old_port), old_sock, "v6_reinvite old port after the re-INVITE")
    c.bye()
    c.closed()


MEDIA_6 = "2001:db8:113::20"


@flow6
def v6_fork():
    """IPv6 forked INVITE (RFC 3261 13.2.2.4): two early dialogs (183 + SDP, To tags A and B,
    media from [proxy]:36940 and [media]:36950) both send early media remote first and reach
    the phone; B answers (its 200 without SDP: the answer was its 183's): A's media gets 0
    from then on, B's media both ways; BYE closes B's. Nothing rewritten."""
    c = Call6(16940, 36940, "v6_fork")
    b_rtp = udp_socket("wan", MEDIA_6, 36950)
    c.invite()
    tag_a, tag_b = uniq("fa"), uniq("fb")

    def resp(code, reason, tag, ip, port, sdp=True):
        body = sdp_body6(ip, port, "bob", "2890844527") if sdp else b""
        r = response(c.m, code, reason, body, to_tag=tag, contact=c.bcontact)
        c.bob.send(r, c.src, "%d (IPv6, fork %s)" % (code, tag))
        got, gsrc = c.p1.recv_resp(code, c.d.callid, "INVITE")
        arrived_as_sent(r, got, gsrc, PROXY_6, "%d %s of fork %s" % (code, reason, tag))
        return got

    resp(183, "Session Progress", tag_a, PROXY_6, 36940)
    hand_pinhole(True, PROXY_6, 36940, PHONE1_6, c.port)
    resp(183, "Session Progress", tag_b, MEDIA_6, 36950)
    hand_pinhole(True, MEDIA_6, 36950, PHONE1_6, c.port)
    media_remote_first(c.rem_rtp, (PHONE1_6, c.port), c.ph_rtp, "v6_fork early media of fork A")
    media_remote_first(b_rtp, (PHONE1_6, c.port), c.ph_rtp, "v6_fork early media of fork B")
    stranger_gets_nothing(c.ph_rtp, (PHONE1_6, c.port), "v6_fork (two early dialogs)")
    ok = resp(200, "OK", tag_b, MEDIA_6, 36950, sdp=False)
    hand_pinhole(False, PROXY_6, 36940, PHONE1_6, c.port)
    c.ack(ok)
    time.sleep(CLOSE_WAIT)
    media_closed(c.rem_rtp, (PHONE1_6, c.port), c.ph_rtp, "v6_fork fork A after B answered")
    c.rem_rtp, c.rmedia, c.rport = b_rtp, MEDIA_6, 36950
    c.media("v6_fork fork B after its 200")
    c.bye()
    c.closed()


class TcpEnd:
    """One end of a SIP/TCP connection: messages framed by Content-Length (RFC 3261 18.3),
    our own framing, independent of src/sipframe.c. Every wait is bounded."""

    def __init__(self, sock, name):
        self.sock, self.name, self.buf = sock, name, b""
        OPEN_SOCKETS.append(sock)

    def send(self, data, split=False):
        """split: in uneven segments (2, 5, 17, 53, ... bytes), so no message is one read."""
        if not split:
            self.sock.sendall(data)
            return
        i, k = 0, 1
        while i < len(data):
            self.sock.sendall(data[i:i + k])
            i, k = i + k, k * 3 % 97 + 2
            time.sleep(0.002)

    def recv(self, what, timeout=T_SIG):
        deadline = time.monotonic() + timeout
        while True:
            self.buf = self.buf.lstrip(b"\r\n")
            h = self.buf.find(b"\r\n\r\n")
            if h >= 0:
                m = re.search(rb"\r\n(?:content-length|l)[ \t]*:[ \t]*(\d+)", self.buf[:h + 2], re.I)
                check(m is not None, "%s: a message without Content-Length over TCP" % self.name)
                n = h + 4 + int(m.group(1))
                if len(self.buf) >= n:
                    raw, self.buf = self.buf[:n], self.buf[n:]
                    return SipMsg(raw)
            left = deadline - time.monotonic()
            r, _, _ = select.select([self.sock], [], [], max(0, left))
            if not r:
                raise Fail("%s: no %s within %.1fs over TCP" % (self.name, what, timeout))
            d = self.sock.recv(65536)
            if not d:
                raise Fail("%s: the connection closed before %s" % (self.name, what))
            self.buf += d


def tcp_arrived_as_sent(sent, got, what):
    if got.raw != sent:
        a, b = sent.split(b"\r\n"), got.raw.split(b"\r\n")
        diff = next(("%r -> %r" % (x, y) for x, y in zip(a, b) if x != y),
                    "lengths %d -> %d" % (len(sent), len(got.raw)))
        raise Fail("%s changed on the way over TCP (no NAT66: must arrive as sent): %s" % (what, diff))


def fin_reaches(phone, bob):
    """The phone closes its side: the provider must read the end of the stream."""
    phone.sock.shutdown(socket.SHUT_WR)
    bob.sock.settimeout(T_SIG)
    try:
        eof = bob.sock.recv(1) == b""
    except OSError:
        eof = False
    check(eof, "the phone's FIN did not reach the provider")


def tcp6_answer(bob, m, rport):
    """The provider answers INVITE m over its TCP connection: 180, then 200 with its SDP
    (c=IN IP6 PROXY_6, RTP port rport). Returns both as sent."""
    rtag = uniq("rt")
    bcontact = "<sip:bob@[%s]:5060;transport=tcp>" % PROXY_6
    ring = response(m, 180, "Ringing", to_tag=rtag, contact=bcontact)
    ok = response(m, 200, "OK", sdp_body6(PROXY_6, rport, "bob", "2890844527"), to_tag=rtag,
                  contact=bcontact)
    bob.send(ring)
    bob.send(ok)
    return ring, ok


def tcp6_connect(addr, tag):
    """The provider listens on [PROXY_6]:5060, the phone connects from `addr`: returns the
    phone's and the provider's TcpEnd, the phone's port and where the connection came from."""
    setns(NS["wan"])
    try:
        ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        OPEN_SOCKETS.append(ls)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((PROXY_6, 5060))
        ls.listen(4)
    finally:
        setns(None)
    setns(NS["lan"])
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.bind((addr, 0))
        s.settimeout(T_SIG)
        try:
            s.connect((PROXY_6, 5060))
        except OSError as e:
            s.close()
            raise Fail("phone [%s] -> [%s]:5060 over TCP: %s" % (addr, PROXY_6, e))
    finally:
        setns(None)
    phone = TcpEnd(s, "phone1(%s, TCP)" % tag)
    lport = s.getsockname()[1]
    r, _, _ = select.select([ls], [], [], T_SIG)
    check(bool(r), "the provider got no TCP connection from the phone within %.1fs" % T_SIG)
    c, src = ls.accept()
    return phone, TcpEnd(c, "bob(%s, TCP)" % tag), lport, src


@flow6
def v6_tcp_call():
    """IPv6 over TCP: INVITE (in uneven segments) and 200 with c=IN IP6, 180, ACK, BYE over one
    connection, all unchanged, from the phone's own address and port; RTP remote first, the
    phone's back, stranger 0, closed after BYE (the TCP relay, routed)."""
    port, rport = 16880, 36940
    ph_rtp = udp_socket("lan", PHONE1_6, port)
    rem_rtp = udp_socket("wan", PROXY_6, rport)
    phone, bob, lport, src = tcp6_connect(PHONE1_6, "v6")
    check(src[:2] == (PHONE1_6, lport), "the provider's connection comes from [%s]:%d, the phone's "
          "is [%s]:%d (no NAT66: its own address and port)" % (src[0], src[1], PHONE1_6, lport))
    d = Dialog("[%s]" % PHONE1_6, phone_port=lport, peer="[%s]" % PROXY_6)
    d.contact += ";transport=tcp"
    tcp = lambda raw: raw.replace(b"SIP/2.0/UDP ", b"SIP/2.0/TCP ")
    inv = tcp(d.invite(sdp_body6(PHONE1_6, port, "alice", "2890844526")))
    phone.send(inv, split=True)
    show("INVITE (IPv6, TCP, sent in uneven segments)", inv)
    m = bob.recv("INVITE")
    tcp_arrived_as_sent(inv, m, "INVITE")
    ring, ok = tcp6_answer(bob, m, rport)
    tcp_arrived_as_sent(ring, phone.recv("180"), "180 Ringing")
    got = phone.recv("200 to INVITE")
    tcp_arrived_as_sent(ok, got, "200 OK")
    hand_pinhole(True, PROXY_6, rport, PHONE1_6, port)
    d.learn(got)
    ack = tcp(d.ack())
    phone.send(ack)
    tcp_arrived_as_sent(ack, bob.recv("ACK"), "ACK")
    media_remote_first(rem_rtp, (PHONE1_6, port), ph_rtp, "v6_tcp_call RTP (remote first)")
    media_phone_symmetric(ph_rtp, (PROXY_6, rport), rem_rtp, (PHONE1_6, port), "v6_tcp_call RTP (phone)")
    stranger_gets_nothing(ph_rtp, (PHONE1_6, port), "v6_tcp_call")
    bye = tcp(d.bye())
    phone.send(bye)
    m = bob.recv("BYE")
    tcp_arrived_as_sent(bye, m, "BYE")
    r200 = response(m, 200, "OK")
    bob.send(r200)
    tcp_arrived_as_sent(r200, phone.recv("200 to BYE"), "200 OK to BYE")
    hand_pinhole(False, PROXY_6, rport, PHONE1_6, port)
    time.sleep(CLOSE_WAIT)
    media_closed(rem_rtp, (PHONE1_6, port), ph_rtp, "v6_tcp_call")
    fin_reaches(phone, bob)


# NAT66 (wan.nat66_*): phone1's ULA fd00:77::10 leaves as 2001:db8:78::10 (lib.sh: nft
# `snat ip6 prefix to`, host bits and ports kept). The provider must see only the public
# prefix, the phone its own addresses back, and the remote's first RTP to the public
# address must reach the phone through the daemon's pinhole (a conntrack entry carrying
# its destination NAT) from the SDP peer only.

PHONE1_66 = "fd00:77::10"
PUB_66 = "2001:db8:78::10"


def hand_pinhole66(add, peer, pport, port):
    """LAB_V6_HAND_PINHOLE=1 only: the NAT66 pinhole by hand: original peer:pport ->
    public:port, destination-NATed to the phone's port (conntrack -I --dst-nat)."""
    if os.environ.get("LAB_V6_HAND_PINHOLE") != "1":
        return
    cmd = ["ip", "netns", "exec", NS["rtr"], "conntrack", "-I" if add else "-D",
           "-p", "udp", "-s", peer, "-d", PUB_66, "--sport", str(pport), "--dport", str(port)]
    if add:
        cmd += ["-r", PUB_66, "-q", peer, "--reply-port-src", str(port), "--reply-port-dst", str(pport),
                "-t", "60", "-u", "SEEN_REPLY", "--dst-nat", PHONE1_66]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
    vprint("    hand pinhole66 %s: %s" % ("add" if add else "del", (r.stderr or r.stdout).strip()))


def no_private66(got, src, what):
    """At the provider: no byte of the LAN prefix, and from the public address, same port."""
    low = got.raw.lower()
    i = low.find(b"fd00:77")
    check(i < 0, "%s reached the provider with the private prefix: %r" % (what, got.raw[max(0, i - 30):i + 30]))
    check(src[0] == PUB_66, "%s arrived from %s, the NAT66 public address is %s" % (what, src[0], PUB_66))


def own_view66(sent, got, what):
    """At the phone: its own top Via and Call-ID back, nothing of the public prefix in the
    headers (the provider's view mapped back)."""
    via_sent = next(ln for ln in sent.split(b"\r\n") if ln.lower().startswith(b"via:"))
    via_got = next((ln for ln in got.raw.split(b"\r\n") if ln.lower().startswith(b"via:")), b"")
    check(via_got.startswith(via_sent), "%s: the phone's Via came back as %r, it sent %r" % (what, via_got, via_sent))
    head = got.raw.split(b"\r\n\r\n", 1)[0]
    check(PUB_66.encode() not in head, "%s: the public address %s reached the phone in the headers"
          % (what, PUB_66))


@flow6
def v6_nat66_call():
    """NAT66: REGISTER and a call from phone1's ULA through the router's prefix NAT: the
    provider sees only the public prefix (Via, Contact, Call-ID, o=, c=), ports unchanged,
    the phone its own addresses back; remote-first RTP to the public address reaches the
    phone, the phone's RTP leaves from it, stranger 0, closed after BYE."""
    p1 = UA("lan", PHONE1_66, 5060, "phone1(nat66)")
    reg = UA("wan", PROXY_6, 5060, "registrar(v6)")
    # REGISTER: the Contact the registrar stores is the public one, same port
    cid = uniq("reg66") + "@" + PHONE1_66
    contact = "<sip:bob@[%s]:5060>" % PHONE1_66
    raw = sip(["REGISTER sip:biloxi.example.com SIP/2.0",
               "Via: SIP/2.0/UDP [%s]:5060;branch=z9hG4bK%s" % (PHONE1_66, uniq()),
               "Max-Forwards: 70", "From: Bob <sip:bob@biloxi.example.com>;tag=" + uniq("rf"),
               "To: Bob <sip:bob@biloxi.example.com>", "Call-ID: " + cid, "CSeq: 1 REGISTER",
               "Contact: " + contact, "Expires: 3600"])
    p1.send(raw, (PROXY_6, 5060), "REGISTER (NAT66)")
    # by method: a Call-ID left private must fail as a leak, not as a timeout
    m, src = reg.recv_req("REGISTER")
    show("REGISTER (NAT66) as it arrived at the registrar", m.raw)
    no_private66(m, src, "REGISTER")
    check(m.callid == cid.replace(PHONE1_66, PUB_66), "REGISTER: Call-ID %r at the registrar, sent %r"
          % (m.callid, cid))
    check(src[1] == 5060, "REGISTER left from port %d, sent from 5060 (NAT66 keeps ports)" % src[1])
    pub_contact = "<sip:bob@[%s]:5060>" % PUB_66
    check(m.get("contact", "").startswith(pub_contact), "REGISTER: Contact %r at the registrar, want %s"
          % (m.get("contact"), pub_contact))
    r = response(m, 200, "OK", to_tag=uniq("rt"), contact=pub_contact + ";expires=3600")
    reg.send(r, src)
    got, _ = p1.recv_resp(200, cid, "REGISTER")
    own_view66(raw, got, "200 OK to REGISTER")
    # a request to the registered (public) Contact reaches the phone with its own address
    ocid = uniq("opt66") + "@biloxi.example.com"
    opt = sip(["OPTIONS sip:bob@[%s]:5060 SIP/2.0" % PUB_66,
               "Via: SIP/2.0/UDP [%s]:5060;branch=z9hG4bK%s" % (PROXY_6, uniq()),
               "Max-Forwards: 70", "From: <sip:registrar@biloxi.example.com>;tag=" + uniq("of"),
               "To: " + pub_contact, "Call-ID: " + ocid, "CSeq: 1 OPTIONS"])
    reg.send(opt, (PUB_66, 5060))
    m, _ = p1.recv_req("OPTIONS", ocid)
    check(m.ruri == "sip:bob@[%s]:5060" % PHONE1_66 and m.get("to") == contact,
          "OPTIONS to the public Contact reached the phone as %r, To %r (want its own address)"
          % (m.ruri, m.get("to")))
    # the call: the phone offers its ULA, the provider must see the public address
    bob = reg
    port, rport = 16880, 36880
    ph_rtp = udp_socket("lan", PHONE1_66, port)
    rem_rtp = udp_socket("wan", PROXY_6, rport)
    d = Dialog("[%s]" % PHONE1_66, peer="[%s]" % PROXY_6)
    d.callid = uniq("cid66") + "@" + PHONE1_66
    inv = d.invite(sdp_body6(PHONE1_66, port, "alice", "2890844526"))
    p1.send(inv, (PROXY_6, 5060), "INVITE (NAT66) as phone1 sent it")
    pub_cid = d.callid.replace(PHONE1_66, PUB_66)
    m, src = bob.recv_req("INVITE")
    show("INVITE (NAT66) as it arrived at the WAN side", m.raw)
    no_private66(m, src, "INVITE")
    check(m.callid == pub_cid, "INVITE: Call-ID %r at the provider, want %r" % (m.callid, pub_cid))
    body = Sdp(m.body)
    check(body.addr(0) == (PUB_66, port), "INVITE (NAT66): the SDP offers %r, want [%s]:%d"
          % (body.addr(0), PUB_66, port))
    check(b"o=alice 2890844526 1 IN IP6 " + PUB_66.encode() in m.body, "INVITE (NAT66): o= not the public address")
    rtag = uniq("rt")
    bcontact = "<sip:bob@[%s]:5060>" % PROXY_6
    bob.send(response(m, 180, "Ringing", to_tag=rtag, contact=bcontact), src)
    ok = response(m, 200, "OK", sdp_body6(PROXY_6, rport, "bob", "2890844527"), to_tag=rtag,
                  contact=bcontact)
    bob.send(ok, src, "200 OK (NAT66)")
    got, _ = p1.recv_resp(200, d.callid, "INVITE")
    own_view66(inv, got, "200 OK to INVITE")
    hand_pinhole66(True, PROXY_6, rport, port)
    d.learn(got)
    ack = d.ack()
    p1.send(ack, (PROXY_6, 5060))
    m, src = bob.recv_req("ACK", pub_cid)
    no_private66(m, src, "ACK")
    media_remote_first(rem_rtp, (PUB_66, port), ph_rtp, "v6_nat66_call RTP (remote first)")
    media_phone_symmetric(ph_rtp, (PROXY_6, rport), rem_rtp, (PUB_66, port), "v6_nat66_call RTP (phone)")
    stranger_gets_nothing(ph_rtp, (PUB_66, port), "v6_nat66_call")
    sock, ctl = os.environ.get("LAB_SOCK"), os.environ.get("LAB_CTL")
    if sock and ctl:   # sipalgd: the operator's view names the public address and the DNAT
        r = subprocess.run(["ip", "netns", "exec", NS["rtr"], ctl, "-s", sock, "call", d.callid],
                           capture_output=True, text=True, timeout=5)
        vprint(r.stdout)
        want = "conntrack [%s]:%d -> [%s]:%d DNAT [%s]:%d" % (PROXY_6, rport, PUB_66, port, PHONE1_66, port)
        check(want in r.stdout, "sipalgctl call does not show the NAT66 pinhole %r: %s" % (want, r.stdout))
    bye = d.bye()
    p1.send(bye, (PROXY_6, 5060))
    m, src = bob.recv_req("BYE", pub_cid)
    no_private66(m, src, "BYE")
    bob.send(response(m, 200, "OK"), src)
    got, _ = p1.recv_resp(200, d.callid, "BYE")
    own_view66(bye, got, "200 OK to BYE")
    hand_pinhole66(False, PROXY_6, rport, port)
    time.sleep(CLOSE_WAIT)
    media_closed(rem_rtp, (PUB_66, port), ph_rtp, "v6_nat66_call")


def nat66_image(raw, old=PHONE1_66, new=PUB_66, body_too=True):
    """raw with every literal of old replaced by new (headers, and the body when body_too),
    Content-Length following the body: what the router's NAT66 must make of a message."""
    head, _, body = raw.partition(b"\r\n\r\n")
    head = head.replace(old.encode(), new.encode())
    if body_too:
        body = body.replace(old.encode(), new.encode())
    head = re.sub(rb"(?mi)^(Content-Length|l)[ \t]*:[ \t]*\d+", lambda x: x.group(1) + b": %d" % len(body), head)
    return head + b"\r\n\r\n" + body


def tcp_arrived_as(want, got, what):
    if got.raw != want:
        a, b = want.split(b"\r\n"), got.raw.split(b"\r\n")
        diff = next(("want %r, got %r" % (x, y) for x, y in zip(a, b) if x != y),
                    "lengths %d -> %d" % (len(want), len(got.raw)))
        raise Fail("%s over TCP through NAT66: %s" % (what, diff))


@flow6
def v6_nat66_tcp_call():
    """NAT66 over TCP: the phone's connection from its ULA reaches the provider from the public
    image, same port; INVITE (in uneven segments), ACK, BYE arrive with every LAN-prefix literal
    made public and Content-Length right; 180, 200 come back with the phone's own addresses;
    remote-first RTP to the public address, stranger 0, closed after BYE (the TCP relay)."""
    port, rport = 16890, 36960
    ph_rtp = udp_socket("lan", PHONE1_66, port)
    rem_rtp = udp_socket("wan", PROXY_6, rport)
    phone, bob, lport, src = tcp6_connect(PHONE1_66, "nat66")
    check(src[:2] == (PUB_66, lport), "the provider's connection comes from [%s]:%d, want the phone's "
          "public image [%s]:%d (NAT66 keeps ports)" % (src[0], src[1], PUB_66, lport))
    d = Dialog("[%s]" % PHONE1_66, phone_port=lport, peer="[%s]" % PROXY_6, peer_port=5060)
    d.callid = uniq("cid66t") + "@" + PHONE1_66
    d.contact += ";transport=tcp"
    tcp = lambda raw: raw.replace(b"SIP/2.0/UDP ", b"SIP/2.0/TCP ")
    inv = tcp(d.invite(sdp_body6(PHONE1_66, port, "alice", "2890844526")))
    phone.send(inv, split=True)
    show("INVITE (NAT66, TCP, sent in uneven segments)", inv)
    m = bob.recv("INVITE")
    show("INVITE (NAT66, TCP) as it arrived at the provider", m.raw)
    no_private66(m, src, "INVITE over TCP")
    tcp_arrived_as(nat66_image(inv), m, "INVITE")
    ring, ok = tcp6_answer(bob, m, rport)
    # back to the phone: the public prefix maps back in the headers; the remote's SDP is its own
    tcp_arrived_as(nat66_image(ring, PUB_66, PHONE1_66, False), phone.recv("180"), "180 Ringing")
    got = phone.recv("200 to INVITE")
    tcp_arrived_as(nat66_image(ok, PUB_66, PHONE1_66, False), got, "200 OK")
    own_view66(inv, got, "200 OK to INVITE (TCP)")
    hand_pinhole66(True, PROXY_6, rport, port)
    d.learn(got)
    ack = tcp(d.ack())
    phone.send(ack)
    m = bob.recv("ACK")
    no_private66(m, src, "ACK over TCP")
    tcp_arrived_as(nat66_image(ack), m, "ACK")
    media_remote_first(rem_rtp, (PUB_66, port), ph_rtp, "v6_nat66_tcp_call RTP (remote first)")
    media_phone_symmetric(ph_rtp, (PROXY_6, rport), rem_rtp, (PUB_66, port), "v6_nat66_tcp_call RTP (phone)")
    stranger_gets_nothing(ph_rtp, (PUB_66, port), "v6_nat66_tcp_call")
    bye = tcp(d.bye())
    phone.send(bye)
    m = bob.recv("BYE")
    no_private66(m, src, "BYE over TCP")
    tcp_arrived_as(nat66_image(bye), m, "BYE")
    r200 = response(m, 200, "OK")
    bob.send(r200)
    tcp_arrived_as(nat66_image(r200, PUB_66, PHONE1_66, False), phone.recv("200 to BYE"), "200 OK to BYE")
    hand_pinhole66(False, PROXY_6, rport, port)
    time.sleep(CLOSE_WAIT)
    media_closed(rem_rtp, (PUB_66, port), ph_rtp, "v6_nat66_tcp_call")
    fin_reaches(phone, bob)


# ---------------------------------------------------------------- self-test of the checks

ULA_99 = "fd00:99::10"


@flow6
def v6_ula_unnated():
    """A phone on a ULA that no NAT66 of the daemon covers (fd00:99::/64; the router
    forwards it to the WAN as it is, as OpenWrt's masq6 or an SNPT after the ALG would
    leave the ULA in the message): its REGISTER must not reach the provider at all."""
    p1 = UA("lan", ULA_99, 5060, "phone1(ULA, no NAT66)")
    reg = UA("wan", PROXY_6, 5060, "registrar(v6)")
    cid = uniq("ula") + "@" + ULA_99
    raw = sip(["REGISTER sip:biloxi.example.com SIP/2.0",
               "Via: SIP/2.0/UDP [%s]:5060;branch=z9hG4bK%s" % (ULA_99, uniq()),
               "Max-Forwards: 70", "From: Bob <sip:bob@biloxi.example.com>;tag=" + uniq("uf"),
               "To: Bob <sip:bob@biloxi.example.com>", "Call-ID: " + cid, "CSeq: 1 REGISTER",
               "Contact: <sip:bob@[%s]:5060>" % ULA_99, "Expires: 3600"])
    before = ctl_counter("drop_ula_out")
    p1.send(raw, (PROXY_6, 5060), "REGISTER from a ULA with no NAT66")
    m = reg.expect_nothing(cid, timeout=1.0)
    check(m is None, "REGISTER from %s reached the provider with the ULA in it: %r"
          % (ULA_99, m.raw[:160] if m else None))
    after = ctl_counter("drop_ula_out")
    if before is not None:
        check(after == before + 1, "drop_ula_out %s -> %s, want +1" % (before, after))


# NAT66 masquerade (OpenWrt's masq6, lib.sh table ip6 salgmasq6, lab.yaml wan.masquerade6):
# phones on fd00:78::/64 behind the router's one WAN address, ports translated where they
# clash. What a correct ALG must do is what it does for IPv4 NAT (check_outbound with
# nat=MASQ6): every private address rewritten to [PUB_M6]:a public port, the phone's own
# view restored on the way back, media pinholes on the public ports. The WAN has no route to
# fd00:78::/64: nothing reaches a phone but conntrack's reverse NAT or the daemon's DNAT.
PUB_M6 = "2001:db8:113::1"
MASQ6 = (PUB_M6, b"fd00:78:")
PHONE1_M6 = "fd00:78::10"
PHONE2_M6 = "fd00:78::11"


def masq6_seen(r, what):
    """A REGISTER through the masquerade as the registrar saw it (register()'s result): Via
    sent-by, Contact and the datagram's source all [PUB_M6] and one port. Returns the port."""
    host, port = uri_hostport(r["pub"])
    check(r["via"] == (PUB_M6, port), "%s: Via sent-by [%s]:%s, Contact %s (want one public "
          "address and port)" % (what, r["via"][0], r["via"][1], r["pub"]))
    check(r["src"] == (PUB_M6, port), "%s: came from [%s]:%d, its Via and Contact name [%s]:%d"
          % (what, r["src"][0], r["src"][1], PUB_M6, port))
    return port


def registrar_other_port():
    """The registrar's host on another port than the one phones register with: a request from
    it to a registered Contact is no reply of the REGISTER's conntrack entry, so only the ALG's
    binding (its DNAT) takes it to the phone."""
    return UA("wan", PROXY_6, 5070, "registrar(v6, port 5070)")


@flow6
def v6_masq_register():
    """NAT66 masquerade: phone1 ([fd00:78::10]:5060) REGISTERs: at the registrar no byte of
    fd00:78:, Via, Contact and source [2001:db8:113::1] and one port; the 200 comes back with
    the phone's own Via; an INVITE to that Contact (from another registrar port) reaches it."""
    p1 = UA("lan", PHONE1_M6, 5060, "phone1(masq6)")
    reg = UA("wan", PROXY_6, 5060, "registrar(v6)")
    r = register(p1, reg, nat=MASQ6)
    masq6_seen(r, "REGISTER")
    inbound_invite(registrar_other_port(), r["pub"], Reg(p1, r["private"]), nat=MASQ6,
                   what="INVITE to the masqueraded Contact")


@flow6
def v6_masq_call():
    """NAT66 masquerade: phone1 calls (c=/o= IN IP6 fd00:78::10): at the provider no byte of
    fd00:78:, c= [2001:db8:113::1] and a public port; remote-first RTP there reaches the phone,
    the phone's RTP arrives from that address and port, a stranger gets 0, closed after BYE."""
    p1 = UA("lan", PHONE1_M6, 5060, "phone1(masq6)")
    bob = UA("wan", PROXY_6, 5060, "bob(v6)")
    c = Call(p1, bob, 16980, nat=MASQ6)
    c.setup()
    check(c.pub_media[0] == PUB_M6, "INVITE: media at %r, want [%s]" % (c.pub_media, PUB_M6))
    c.media_both("v6_masq_call RTP")
    stranger_gets_nothing(c.phone_rtp, c.pub_media, "v6_masq_call")
    c.bye_from_phone()
    c.closed("v6_masq_call after BYE")


@flow6
def v6_masq_tcp_call():
    """IPv6 masquerade over TCP: the phone's connection from its ULA reaches the provider from
    [PUB_M6] (the relay connects from the WAN's address and the phone's binding port); INVITE
    (in uneven segments), ACK, BYE arrive rewritten as over UDP (no fd00:78: byte; Via,
    Contact, o=, c= the public address); 180 and 200 give the phone its own Via back;
    remote-first RTP to the public media port, the phone's from it, stranger 0, closed after
    BYE."""
    port, rport = 16990, 36970
    ph_rtp = udp_socket("lan", PHONE1_M6, port)
    rem_rtp = udp_socket("wan", PROXY_6, rport)
    phone, bob, lport, src = tcp6_connect(PHONE1_M6, "masq6")
    check(src[0] == PUB_M6, "the provider's connection comes from [%s]:%d, want [%s] (the masquerade)"
          % (src[0], src[1], PUB_M6))
    d = Dialog("[%s]" % PHONE1_M6, phone_port=lport, peer="[%s]" % PROXY_6, peer_port=5060)
    d.contact += ";transport=tcp"
    tcp = lambda raw: raw.replace(b"SIP/2.0/UDP ", b"SIP/2.0/TCP ")
    inv = tcp(d.invite(sdp_body6(PHONE1_M6, port, "alice", "2890844526")))
    phone.send(inv, split=True)
    m = bob.recv("INVITE")
    show("INVITE (masquerade, TCP) as it arrived at the provider", m.raw)
    info = check_outbound(inv, m, "INVITE over TCP", nat=MASQ6)
    pub_media = info["media"][0]
    check(info["via"] == (PUB_M6, src[1]), "INVITE over TCP: Via sent-by [%s]:%s, the connection "
          "comes from [%s]:%d" % (info["via"] + src[:2]))
    ring, ok = tcp6_answer(bob, m, rport)
    check_inbound_response(inv, ring, phone.recv("180"), "180 Ringing (TCP)")
    got = phone.recv("200 to INVITE")
    check_inbound_response(inv, ok, got, "200 OK (TCP)")
    d.learn(got)
    ack = tcp(d.ack())
    phone.send(ack)
    check_outbound(ack, bob.recv("ACK"), "ACK over TCP", nat=MASQ6)
    media_remote_first(rem_rtp, pub_media, ph_rtp, "v6_masq_tcp_call RTP (remote first)")
    media_phone_symmetric(ph_rtp, (PROXY_6, rport), rem_rtp, pub_media, "v6_masq_tcp_call RTP (phone)")
    stranger_gets_nothing(ph_rtp, pub_media, "v6_masq_tcp_call")
    bye = tcp(d.bye())
    phone.send(bye)
    m = bob.recv("BYE")
    check_outbound(bye, m, "BYE over TCP", nat=MASQ6)
    r200 = response(m, 200, "OK")
    bob.send(r200)
    check_inbound_response(bye, r200, phone.recv("200 to BYE"), "200 OK to BYE (TCP)")
    time.sleep(CLOSE_WAIT)
    media_closed(rem_rtp, pub_media, ph_rtp, "v6_masq_tcp_call")
    fin_reaches(phone, bob)


@flow6
def v6_masq_two_phones():
    """NAT66 masquerade, two phones with the same ports ([fd00:78::10]:5060 and ::11:5060,
    RTP 4000 each): both REGISTER (two public ports, each inbound INVITE to its phone only),
    both calls up at once (two public c=/m= pairs); each remote's RTP reaches its phone
    20/20, 0 crossed."""
    p1 = UA("lan", PHONE1_M6, 5060, "phone1(masq6)")
    p2 = UA("lan", PHONE2_M6, 5060, "phone2(masq6)")
    bob = UA("wan", PROXY_6, 5060, "registrar/bob(v6)")
    r1, r2 = register(p1, bob, nat=MASQ6), register(p2, bob, nat=MASQ6)
    port1, port2 = masq6_seen(r1, "phone1's REGISTER"), masq6_seen(r2, "phone2's REGISTER")
    check(port1 != port2, "both phones registered as [%s]:%d" % (PUB_M6, port1))
    a, b = Reg(p1, r1["private"]), Reg(p2, r2["private"])
    other = registrar_other_port()
    inbound_invite(other, r1["pub"], a, [b], what="INVITE to phone1's public Contact", nat=MASQ6)
    inbound_invite(other, r2["pub"], b, [a], what="INVITE to phone2's public Contact", nat=MASQ6)
    c1 = Call(p1, bob, 4000, remote_rtp_port=24000, nat=MASQ6)
    c2 = Call(p2, bob, 4000, remote_rtp_port=24002, nat=MASQ6)
    c1.send_invite()
    c2.send_invite()
    c1.wan_invite("phone1's INVITE")
    c2.wan_invite("phone2's INVITE")
    check(c1.pub_contact != c2.pub_contact, "both INVITEs name the Contact %s" % c1.pub_contact)
    check(c1.pub_media != c2.pub_media, "both phones got the public media address [%s]:%d" % c1.pub_media)
    answer_cross_bye(c1, c2)


def ctl_counter(name):
    """One counter of `sipalgctl counters`, or None without sipalgd."""
    sock, ctl = os.environ.get("LAB_SOCK"), os.environ.get("LAB_CTL")
    if not sock or not ctl:
        return None
    r = subprocess.run(["ip", "netns", "exec", NS["rtr"], ctl, "-s", sock, "counters"],
                       capture_output=True, text=True, timeout=5)
    mm = re.search(r"(?m)^%s\s+(\d+)" % re.escape(name), r.stdout)
    check(mm is not None, "sipalgctl counters has no %s: %s" % (name, r.stdout[:200]))
    return int(mm.group(1))


def selftest():
    """Offline: each check must accept a correct rewrite and reject each kind of damage.
    Proves the assertions can fail without needing an ALG that gets them wrong."""
    d = Dialog(PHONE1)
    inv = d.invite(sdp_body(PHONE1, [16000, 16002], conn_lines=[PHONE1, None]))

    def rewrite(raw, old=PHONE1.encode(), new=PUB.encode(), fix_cl=True):
        m = raw.replace(old, new)
        if fix_cl:
            head, _, body = m.partition(b"\r\n\r\n")
            head = re.sub(rb"(?m)^(Content-Length|l): *\d+", lambda x: x.group(1) + b": %d" % len(body), head)
            m = head + b"\r\n\r\n" + body
        return m

    good = rewrite(inv)
    fixcl = lambda m: rewrite(m, b"", b"")
    out_cases = [
        ("correct rewrite", good, True),
        ("Content-Length not fixed", rewrite(inv, fix_cl=False), False),
        ("c= left private", rewrite(inv).replace(b"c=IN IP4 203.0.113.1\r\nt=", b"c=IN IP4 192.168.77.10\r\nt="), False),
        ("branch changed", good.replace(d.inv_branch.encode(), b"z9hG4bKother"), False),
        ("unknown header changed", good.replace(b"keep-me;v=1", b"keep-me; v=1"), False),
        ("header order changed", good.replace(b"Max-Forwards: 70\r\nFrom:", b"From:").replace(
            b"CSeq: 1 INVITE\r\n", b"CSeq: 1 INVITE\r\nMax-Forwards: 70\r\n", 1), False),
        ("Contact host not public", good.replace(b"<sip:alice@203.0.113.1:5060>", b"<sip:alice@203.0.113.2:5060>"), False),
        ("m= line changed beyond port", fixcl(good.replace(b"RTP/AVP 0 8 101", b"RTP/AVP 0 8", 1)), False),
        ("a= line dropped", fixcl(good.replace(b"a=sendrecv\r\n", b"", 1)), False),
        ("media-level c= left private", fixcl(good.replace(b"101\r\nc=IN IP4 203.0.113.1", b"101\r\nc=IN IP4 10.1.1.1")), False),
        ("o= not rewritten", fixcl(good.replace(b"1 IN IP4 203.0.113.1", b"1 IN IP4 10.1.1.1")), False),
    ]
    cinv = sip(["INVITE sip:bob@biloxi.example.com SIP/2.0", "v: SIP/2.0/UDP %s:5060;branch=z9hG4bKc1" % PHONE1,
                "i: x@y", "m: <sip:a@%s:5060>" % PHONE1, "c: application/sdp"], sdp_body(PHONE1, [16000]), "l")
    out_cases += [
        ("compact: correct rewrite", rewrite(cinv), True),
        ("compact: v: expanded to Via:", rewrite(cinv).replace(b"\r\nv: ", b"\r\nVia: "), False),
        ("compact: l: expanded", rewrite(cinv).replace(b"\r\nl: ", b"\r\nContent-Length: "), False),
    ]
    # the IPv6 masquerade (nat=MASQ6): [fd00:78::10]:5060 -> [PUB_M6]:40000, o=/c= too
    minv = Dialog(host_of(PHONE1_M6)).invite(sdp_body(PHONE1_M6, [4000]))
    mgood = fixcl(minv.replace(b"[fd00:78::10]:5060", b"[2001:db8:113::1]:40000").replace(
        PHONE1_M6.encode(), PUB_M6.encode()))
    out_cases += [(n, r, w, minv, MASQ6) for n, r, w in [
        ("masq6: correct rewrite", mgood, True),
        ("masq6: ULA left in c= (upper case)", mgood.replace(b"c=IN IP6 " + PUB_M6.encode(),
                                                              b"c=IN IP6 FD00:78::10"), False),
        ("masq6: Via sent-by left private", minv.replace(b"<sip:alice@[fd00:78::10]", b"<sip:alice@[2001:db8:113::1]")
         .replace(b"IP6 fd00:78::10", b"IP6 2001:db8:113::1"), False),
        ("masq6: IPv4 public address", mgood.replace(b"[2001:db8:113::1]", PUB.encode()), False),
    ]]
    bad = 0
    for case in out_cases:
        name, raw, want = case[:3]
        src, nat = case[3:] or (cinv if name.startswith("compact") else inv, None)
        try:
            check_outbound(src, SipMsg(raw), "selftest", nat=nat)
            got = True
            why = ""
        except Fail as e:
            got, why = False, str(e)
        ok = got == want
        bad += not ok
        print("%s selftest outbound: %s -> %s %s" % ("ok" if ok else "NOT OK", name,
              "accepted" if got else "rejected", ("(" + why[:100] + ")") if why else ""))
    # inbound response: the phone must get its own Via back and the WAN's body untouched
    wan_ok = response(SipMsg(good), 200, "OK", sdp_body(PROXY, [36000], user="bob"), to_tag="t1",
                      contact="<sip:bob@203.0.113.10>")
    at_phone = wan_ok.replace(("%s:5060;branch" % PUB).encode(), ("%s:5060;branch" % PHONE1).encode())
    in_cases = [
        ("correct restore", at_phone, True),
        ("Via not restored", wan_ok, False),
        ("received= left on the Via", at_phone.replace(d.inv_branch.encode(), d.inv_branch.encode() + b";received=203.0.113.1"), False),
        ("SDP altered on the way in", rewrite(at_phone, b"203.0.113.10", b"192.168.77.99"), False),
    ]
    for name, raw, want in in_cases:
        try:
            check_inbound_response(inv, wan_ok, SipMsg(raw), "selftest")
            got, why = True, ""
        except Fail as e:
            got, why = False, str(e)
        ok = got == want
        bad += not ok
        print("%s selftest inbound: %s -> %s %s" % ("ok" if ok else "NOT OK", name,
              "accepted" if got else "rejected", ("(" + why[:100] + ")") if why else ""))
    # arrived_as_sent (IPv6 flows, no NAT66): one changed byte or another source is rejected
    raw6 = Dialog("[%s]" % PHONE1_6, peer="[%s]" % PROXY_6).invite(
        sdp_body6(PHONE1_6, 16800, "alice", "2890844526"))
    v6_cases = [
        ("as sent", raw6, PHONE1_6, True),
        ("c= changed", raw6.replace(b"c=IN IP6 2001:db8:77::10", b"c=IN IP6 2001:db8:77::11"),
         PHONE1_6, False),
        ("from another address (NAT66)", raw6, "2001:db8:113::1", False),
    ]
    for name, raw, src, want in v6_cases:
        try:
            arrived_as_sent(raw6, SipMsg(raw), (src, 5060), PHONE1_6, "selftest")
            got, why = True, ""
        except Fail as e:
            got, why = False, str(e)
        ok = got == want
        bad += not ok
        print("%s selftest v6: %s -> %s %s" % ("ok" if ok else "NOT OK", name,
              "accepted" if got else "rejected", ("(" + why[:100] + ")") if why else ""))
    print("selftest: %d case(s) wrong" % bad)
    return 1 if bad else 0


# ---------------------------------------------------------------- driver

def main():
    global VERBOSE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--id", default=os.environ.get("LAB_ID"), help="lab id (namespaces salg-*-ID)")
    ap.add_argument("--expect-fail", help="file listing flows expected to fail (one per line, # comments)")
    ap.add_argument("--verbose", "-v", action="store_true", help="print messages and RTP counts")
    ap.add_argument("--list", action="store_true", help="list the flows and exit")
    ap.add_argument("--selftest", action="store_true", help="offline: show that every check can fail")
    ap.add_argument("--v6", action="store_true",
                    help="also the IPv6 flows (the lab must have its IPv6 side: lib.sh LAB_V6=1)")
    ap.add_argument("flows", nargs="*")
    a = ap.parse_args()
    allflows = FLOWS + (V6_FLOWS if a.v6 else [])
    names = [f.__name__ for f in allflows]
    if a.list:
        for f in allflows:
            print("%-22s %s" % (f.__name__, (f.__doc__ or "").strip().splitlines()[0]))
        return 0
    if a.selftest:
        return selftest()
    if not a.id:
        ap.error("--id (or LAB_ID) is required")
    VERBOSE = a.verbose
    for side in ("lan", "rtr", "wan"):
        NS[side] = "salg-%s-%s" % (side, a.id)
        if not os.path.exists("/var/run/netns/" + NS[side]):
            print("namespace %s does not exist (build it with run.sh)" % NS[side], file=sys.stderr)
            return 2
    if os.path.exists("/var/run/netns/salg-lan2-%s" % a.id):   # hairpin_call's second phone
        NS["lan2"] = "salg-lan2-%s" % a.id
    sel = a.flows or names
    bad = [n for n in sel if n not in names]
    if bad:
        print("unknown flow(s): %s; known: %s%s" % (" ".join(bad), " ".join(names),
              "" if a.v6 else " (IPv6 flows need --v6)"), file=sys.stderr)
        return 2
    expected = set()
    if a.expect_fail:
        with open(a.expect_fail) as f:
            for ln in f:
                ln = ln.split("#", 1)[0].strip()
                if ln:
                    expected.add(ln.split()[0])
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    passed = failed = 0
    unexpected_fail, unexpected_pass, xfail = [], [], []
    byname = {f.__name__: f for f in allflows}
    t_all = time.monotonic()
    try:
        for i, name in enumerate(sel, 1):
            t0 = time.monotonic()
            reason = None
            try:
                byname[name]()
            except Fail as e:
                reason = str(e)
            except Exception as e:   # a bug in the lab itself: report it, keep going
                reason = "lab error: %s: %s" % (type(e).__name__, e)
                if VERBOSE:
                    traceback.print_exc()
            finally:
                close_all_sockets()
            dt = time.monotonic() - t0
            vprint("# %s took %.1fs" % (name, dt))
            reason = reason.replace("\n", " ") if reason else None
            if reason is None:
                passed += 1
                if name in expected:
                    unexpected_pass.append(name)
                    print("ok %d - %s # UNEXPECTED PASS: listed as an expected failure" % (i, name))
                else:
                    print("ok %d - %s" % (i, name))
            else:
                failed += 1
                if name in expected:
                    xfail.append(name)
                    print("not ok %d - %s: %s # expected failure" % (i, name, reason))
                else:
                    unexpected_fail.append(name)
                    print("not ok %d - %s: %s" % (i, name, reason))
            sys.stdout.flush()
            time.sleep(0.2)   # let the last datagrams of a flow drain
    except KeyboardInterrupt:
        print("# interrupted", flush=True)
        for p in CHILDREN:
            if p.poll() is None:
                p.kill()
        raise
    finally:
        for p in CHILDREN:
            if p.poll() is None:
                p.kill()
                p.wait()
    if expected:
        print("# expected failures that failed: %s" % (" ".join(xfail) or "-"))
        missing = sorted(expected & set(sel) - set(xfail))
        print("# expected failures that passed: %s" % (" ".join(missing) or "-"))
    print("# unexpected failures: %s" % (" ".join(unexpected_fail) or "-"))
    print("# %.1fs" % (time.monotonic() - t_all))
    if expected:
        # A baseline run passes when each flow does what is expected of it
        # (the listed ones fail): count outcomes against expectations, so a
        # test runner reading the closing line sees the run's real verdict.
        print("# flows: %d passed, %d failed (%d of the failures expected)" % (passed, failed, len(xfail)))
        bad = len(unexpected_fail) + len(unexpected_pass)
        print("%d passed, %d failed" % (len(sel) - bad, bad), flush=True)
    else:
        print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if (unexpected_fail or unexpected_pass) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
