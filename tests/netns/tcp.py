#!/usr/bin/env python3
"""SIP over TCP through sipalgd's relay: the lab's own UAs (tests/netns/tcp.sh).

  tcp.py uas --out FILE     WAN side: a registrar + UAS on 203.0.113.10:5060/TCP
  tcp.py uac                LAN side: a phone at 192.168.77.10

The phone registers (sent one byte per segment), places a call with an INVITE
over 1300 bytes (split at uneven offsets, after a CRLFCRLF ping), RTP flows
both ways through the pinholes, the UAS sends a request back over the phone's
own connection, the phone hangs up and closes. Each side asserts what it saw
and exits 1 naming every failed check. Every wait is bounded."""
import json, re, socket, sys, time

PUB, LANIP, FAR = "203.0.113.1", "192.168.77.10", "203.0.113.10"
DEADLINE = time.time() + 30

class Stream:
    """Content-Length framing of our own, independent of src/sipframe.c."""
    def __init__(self, s):
        self.s, self.buf, self.keepalives = s, b"", 0
    def recv_msg(self, timeout=5):
        end = min(time.time() + timeout, DEADLINE)
        while True:
            while self.buf.startswith(b"\r\n"):
                self.buf = self.buf[2:]
                self.keepalives += 1
            h = self.buf.find(b"\r\n\r\n")
            if h >= 0:
                m = re.search(rb"\r\n(?:content-length|l)[ \t]*:[ \t]*(\d+)", self.buf[:h + 2], re.I)
                n = h + 4 + int(m.group(1))
                if len(self.buf) >= n:
                    msg, self.buf = self.buf[:n], self.buf[n:]
                    return msg.decode("latin-1")
            left = end - time.time()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                return None
            if not d:
                return ""
            self.buf += d

fails = []
def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        fails.append(what)

def hdr(msg, name):
    m = re.search(r"^" + name + r"[ \t]*:[ \t]*(.*?)\r$", msg, re.I | re.M)
    return m.group(1) if m else ""

def body_ok(msg):
    h = msg.find("\r\n\r\n")
    return int(hdr(msg, "Content-Length") or hdr(msg, "l") or -1) == len(msg) - h - 4

def rtp(seq):
    return bytes([0x80, 0, seq >> 8, seq & 255]) + b"\0" * 8 + b"x" * 160

def count_rtp(u, n, peer_ok, timeout=3):
    got, end = 0, time.time() + timeout
    while got < n and time.time() < end:
        u.settimeout(max(0.01, end - time.time()))
        try:
            d, a = u.recvfrom(2048)
        except socket.timeout:
            break
        if len(d) == 172 and peer_ok(a):
            got += 1
    return got

def resp(req, code, extra="", body=""):
    lines = [l for l in req.split("\r\n")[1:] if re.match(r"(Via|From|To|Call-ID|CSeq)\s*:", l, re.I)]
    lines = [l + (";tag=uas1" if l.lower().startswith("to") and "tag=" not in l else "") for l in lines]
    return ("SIP/2.0 %d X\r\n" % code + "\r\n".join(lines) + "\r\n" + extra +
            "Content-Length: %d\r\n\r\n%s" % (len(body), body))

def uas(out):
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((FAR, 5060)); ls.listen(8); ls.settimeout(20)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((FAR, 30000))
    c, peer = ls.accept()
    check(peer[0] == PUB, "the provider sees the public address (%s:%d)" % peer)
    st = Stream(c)
    contact, seen = None, {}
    while True:
        m = st.recv_msg(10)
        if not m:
            break
        first = m.split("\r\n", 1)[0]
        meth = first.split()[0] if not first.startswith("SIP/") else "RESP " + hdr(m, "CSeq")
        seen[meth] = m
        check("192.168.77." not in m, "%s: no private address" % meth)
        check(body_ok(m), "%s: Content-Length matches the body" % meth)
        if meth == "REGISTER":
            check(re.search(r"^Via: SIP/2\.0/TCP 203\.0\.113\.1[:;]", m, re.M) is not None, "REGISTER: Via public")
            contact = re.search(r"<([^>]*)>", hdr(m, "Contact")).group(1)
            check("@203.0.113.1" in contact, "REGISTER: Contact public (%s)" % contact)
            c.sendall(resp(m, 200, "Contact: <%s>;expires=600\r\n" % contact).encode())
        elif meth == "INVITE":
            check(len(m) > 1300, "INVITE larger than 1300 bytes (%d)" % len(m))
            check("c=IN IP4 203.0.113.1\r\n" in m, "INVITE: SDP c= public")
            check("X-Lab-Opaque: tcp-keep-me" in m, "INVITE: other headers byte for byte")
            port = int(re.search(r"m=audio (\d+)", m).group(1))
            sdp = "v=0\r\no=- 2 2 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\n" % (FAR, FAR)
            c.sendall(("\r\n" + resp(m, 200, "Contact: <sip:bob@%s:5060;transport=tcp>\r\nContent-Type: application/sdp\r\n" % FAR, sdp)).encode())
            for i in range(20):
                u.sendto(rtp(i), (PUB, port))
                time.sleep(0.005)
            got = count_rtp(u, 20, lambda a: a[0] == PUB and a[1] == port)
            check(got >= 18, "RTP phone -> far through the pinhole (%d/20 from %s:%d)" % (got, PUB, port))
        elif meth == "ACK":
            # a request from the provider over the phone's own connection
            c.sendall(("OPTIONS %s SIP/2.0\r\nVia: SIP/2.0/TCP %s:5060;branch=z9hG4bKopt1\r\n"
                       "From: <sip:reg@%s>;tag=o1\r\nTo: <%s>\r\nCall-ID: opt1@%s\r\nCSeq: 1 OPTIONS\r\n"
                       "Content-Length: 0\r\n\r\n" % (contact, FAR, FAR, contact, FAR)).encode())
        elif meth == "BYE":
            c.sendall(resp(m, 200).encode())
    check(m == "", "the phone's FIN reached the provider")
    for want in ("REGISTER", "INVITE", "ACK", "RESP 1 OPTIONS", "BYE"):
        check(want in seen, "provider saw %s" % want)
    check(st.keepalives >= 2, "CRLFCRLF ping passed (%d CRLF)" % st.keepalives)
    c.close()
    json.dump({"fails": fails}, open(out, "w"))

def uac():
    s = socket.socket(); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.bind((LANIP, 0)); s.settimeout(5); s.connect((FAR, 5060))
    lport = s.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((LANIP, 16000))
    st = Stream(s)
    via = "Via: SIP/2.0/TCP %s:%d;branch=z9hG4bK%%s;rport\r\n" % (LANIP, lport)
    contact = "Contact: <sip:alice@%s:%d;transport=tcp>\r\n" % (LANIP, lport)
    reg = ("REGISTER sip:%s SIP/2.0\r\n" % FAR + via % "r1" + "From: <sip:alice@%s>;tag=a1\r\n"
           "To: <sip:alice@%s>\r\nCall-ID: reg1@%s\r\nCSeq: 1 REGISTER\r\n" % (FAR, FAR, LANIP) +
           contact + "Expires: 600\r\nContent-Length: 0\r\n\r\n")
    for ch in reg.encode():            # one byte per segment
        s.send(bytes([ch])); time.sleep(0.002)
    r = st.recv_msg()
    check(r is not None and r.startswith("SIP/2.0 200"), "REGISTER answered 200 over TCP")
    check(r is not None and ("Via: SIP/2.0/TCP %s:%d" % (LANIP, lport)) in r, "200: Via private again")
    pad = "".join("a=x-pad%02d:%s\r\n" % (i, "p" * 60) for i in range(20))
    sdp = ("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio 16000 RTP/AVP 0\r\n" % (LANIP, LANIP)) + pad
    inv = ("INVITE sip:bob@%s SIP/2.0\r\n" % FAR + via % "i1" + "From: <sip:alice@%s>;tag=a2\r\n"
           "To: <sip:bob@%s>\r\nCall-ID: call1@%s\r\nCSeq: 1 INVITE\r\n" % (FAR, FAR, LANIP) + contact +
           "X-Lab-Opaque: tcp-keep-me\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s" % (len(sdp), sdp))
    data = ("\r\n\r\n" + inv).encode()
    i, k = 0, 1
    while i < len(data):               # uneven segments: 2, 5, 17, 53, ...
        s.send(data[i:i + k]); i += k; k = k * 3 % 97 + 2; time.sleep(0.003)
    r = st.recv_msg()
    check(r is not None and r.startswith("SIP/2.0 200"), "INVITE answered 200")
    check(st.keepalives >= 1, "CRLF pong from the far side reached the phone")
    for n in range(20):
        u.sendto(rtp(n), (FAR, 30000)); time.sleep(0.005)
    got = count_rtp(u, 20, lambda a: a == (FAR, 30000))
    check(got >= 18, "RTP far -> phone through the pinhole (%d/20)" % got)
    s.sendall(("ACK sip:bob@%s:5060;transport=tcp SIP/2.0\r\n" % FAR + via % "k1" + "From: <sip:alice@%s>;tag=a2\r\n"
               "To: <sip:bob@%s>;tag=uas1\r\nCall-ID: call1@%s\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n" % (FAR, FAR, LANIP)).encode())
    r = st.recv_msg()
    check(r is not None and r.startswith("OPTIONS sip:alice@%s:%d" % (LANIP, lport)),
          "the provider's OPTIONS came over the phone's connection, R-URI private (%r)" % (r or "")[:60])
    if r:
        s.sendall(resp(r, 200).encode())
    time.sleep(0.2)
    s.sendall(("BYE sip:bob@%s:5060;transport=tcp SIP/2.0\r\n" % FAR + via % "b1" + "From: <sip:alice@%s>;tag=a2\r\n"
               "To: <sip:bob@%s>;tag=uas1\r\nCall-ID: call1@%s\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n" % (FAR, FAR, LANIP)).encode())
    r = st.recv_msg()
    check(r is not None and r.startswith("SIP/2.0 200") and "CSeq: 2 BYE" in r, "BYE answered 200")
    s.shutdown(socket.SHUT_WR)
    check(st.recv_msg(5) == "", "the provider's FIN reached the phone")
    s.close()

TLS_HELLO = bytes([0x16, 3, 1, 0, 0x2e, 1, 0, 0, 0x2a, 3, 3]) + bytes(range(32)) + b"\0\0\x02\x13\x01\x01\x00"

def tls():
    """A TLS ClientHello on a SIP port: relayed untouched (an ALG cannot read it)."""
    s = socket.socket(); s.settimeout(3)
    s.connect((FAR, 5060)); s.sendall(TLS_HELLO); time.sleep(0.5); s.close()

def refused():
    """The daemon is dead: a connection must not get through."""
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((FAR, 5060))
        s.sendall(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP 192.168.77.10:5060\r\nContent-Length: 0\r\n\r\n")
        check(False, "SIP/TCP with the daemon dead is refused (it connected)")
    except (ConnectionRefusedError, ConnectionResetError, socket.timeout, OSError) as e:
        check(True, "SIP/TCP with the daemon dead is refused (%s)" % type(e).__name__)

def listen(out):
    """WAN side during the kill -9 check: count connections that got through."""
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((FAR, 5060)); ls.listen(8); ls.settimeout(0.2)
    got, end = [], time.time() + 6
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
    json.dump(got, open(out, "w"))

def refused_at(port):
    """A connection from the WAN to the router's public address: refused?"""
    s = socket.socket(); s.settimeout(2)
    try:
        s.connect((PUB, port))
        return False
    except (ConnectionRefusedError, ConnectionResetError, socket.timeout, OSError):
        return True
    finally:
        s.close()

def in_provider(out):
    """WAN side of the new-connection case (RFC 3261 18.2.2): the phone
    registered over TCP and closed; we call its public Contact on a new
    connection, which only a registered or in-dialog Contact may get."""
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((FAR, 5060)); ls.listen(8); ls.settimeout(10)
    c, peer = ls.accept()
    st = Stream(c)
    m = st.recv_msg(5) or ""
    check(m.startswith("REGISTER "), "REGISTER over the phone's connection")
    contact = re.search(r"<([^>]*)>", hdr(m, "Contact")).group(1)
    cport = int(re.search(r"@203\.0\.113\.1:(\d+)", contact).group(1))
    vport = int(re.search(r"^Via: SIP/2\.0/TCP 203\.0\.113\.1:(\d+)", m, re.M).group(1))
    check(cport != vport, "Contact (public %d) and the connection (public %d) have their own ports" % (cport, vport))
    c.sendall(resp(m, 200, "Contact: <%s>;expires=600\r\n" % contact).encode())
    check(st.recv_msg(5) == "", "the phone closed its connection")
    c.close()
    time.sleep(0.3)
    check(refused_at(vport), "WAN -> public port %d of the closed connection (not a Contact): refused" % vport)
    check(refused_at(5062), "WAN -> public port 5062 (nothing registered): refused")
    s = socket.socket(); s.settimeout(5)
    try:
        s.connect((PUB, cport))
    except OSError as e:
        check(False, "WAN -> registered Contact %s:%d on a new connection (%s)" % (PUB, cport, e))
        json.dump({"fails": fails}, open(out, "w")); return
    check(True, "WAN -> registered Contact %s:%d on a new connection: accepted" % (PUB, cport))
    st = Stream(s)
    sdp = "v=0\r\no=- 3 3 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio 30002 RTP/AVP 0\r\n" % (FAR, FAR)
    base = ("Via: SIP/2.0/TCP %s:5060;branch=z9hG4bK%%s\r\nFrom: <sip:pbx@%s>;tag=p1\r\nTo: <sip:carol@%s>%%s\r\n"
            "Call-ID: in1@%s\r\nCSeq: %%s\r\n" % (FAR, FAR, FAR, FAR))
    s.sendall(("INVITE %s SIP/2.0\r\n" % contact + base % ("i9", "", "1 INVITE") +
               "Contact: <sip:pbx@%s:5060;transport=tcp>\r\nContent-Type: application/sdp\r\n"
               "Content-Length: %d\r\n\r\n%s" % (FAR, len(sdp), sdp)).encode())
    r = st.recv_msg(5) or ""
    check(r.startswith("SIP/2.0 200"), "INVITE on the new connection answered 200 (%r)" % r[:40])
    check("192.168.77." not in r, "200: no private address")
    check("c=IN IP4 203.0.113.1\r\n" in r, "200: SDP c= public")
    check(body_ok(r), "200: Content-Length matches the body")
    s.sendall(("ACK %s SIP/2.0\r\n" % contact + base % ("a9", ";tag=c1", "1 ACK") + "Content-Length: 0\r\n\r\n").encode())
    s.sendall(("BYE %s SIP/2.0\r\n" % contact + base % ("b9", ";tag=c1", "2 BYE") + "Content-Length: 0\r\n\r\n").encode())
    r = st.recv_msg(5) or ""
    check(r.startswith("SIP/2.0 200") and "CSeq: 2 BYE" in r, "BYE answered 200")
    s.close()
    json.dump({"fails": fails}, open(out, "w"))

def in_phone():
    """LAN side: register over TCP naming our listening port, close, take
    the call that comes on a new connection."""
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((LANIP, 5060)); ls.listen(4); ls.settimeout(10)
    s = socket.socket(); s.bind((LANIP, 0)); s.settimeout(5); s.connect((FAR, 5060))
    lport = s.getsockname()[1]
    st = Stream(s)
    s.sendall(("REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/TCP %s:%d;branch=z9hG4bKr9;rport\r\n"
               "From: <sip:carol@%s>;tag=c0\r\nTo: <sip:carol@%s>\r\nCall-ID: reg9@%s\r\nCSeq: 1 REGISTER\r\n"
               "Contact: <sip:carol@%s:5060;transport=tcp>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
               % (FAR, LANIP, lport, FAR, FAR, LANIP, LANIP)).encode())
    r = st.recv_msg() or ""
    check(r.startswith("SIP/2.0 200"), "REGISTER answered 200")
    s.close()
    try:
        c, peer = ls.accept()
    except socket.timeout:
        check(False, "a new connection to our Contact within 10 s"); return
    check(peer[0] == FAR, "the new connection comes from the caller's address (%s:%d)" % peer)
    st = Stream(c)
    m = st.recv_msg(5) or ""
    check(m.startswith("INVITE sip:carol@%s:5060" % LANIP), "INVITE on the new connection, R-URI private (%r)" % m[:50])
    check(re.search(r"203\.0\.113\.1(?!\d)", m.split("\r\n\r\n")[0]) is None,
          "INVITE: no public address of ours left in the headers")
    sdp = "v=0\r\no=- 4 4 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio 16010 RTP/AVP 0\r\n" % (LANIP, LANIP)
    c.sendall(resp(m, 200, "Contact: <sip:carol@%s:5060;transport=tcp>\r\nContent-Type: application/sdp\r\n" % LANIP,
                   sdp).encode())
    a = st.recv_msg(5) or ""
    check(a.startswith("ACK "), "ACK on the new connection")
    b = st.recv_msg(5) or ""
    check(b.startswith("BYE "), "BYE on the new connection")
    if b:
        c.sendall(resp(b, 200).encode())
    check(st.recv_msg(5) == "", "the caller's FIN reached the phone")
    c.close()

if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "uas":
        uas(sys.argv[3])
    elif mode == "uac":
        uac()
    elif mode == "listen":
        listen(sys.argv[2])
    elif mode == "tls":
        tls()
    elif mode == "tls-check":
        got = json.load(open(sys.argv[2]))
        check(got[:1] == [PUB] and got[1:2] == [TLS_HELLO.decode("latin-1")],
              "TLS ClientHello relayed byte for byte from the public address")
    elif mode == "refused":
        refused()
    elif mode == "in-provider":
        in_provider(sys.argv[2])
    elif mode == "in-phone":
        in_phone()
    sys.exit(1 if fails else 0)
