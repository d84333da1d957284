#!/usr/bin/env python3
"""SIP/TCP relay edges (tests/netns/tcp.sh): RST and FIN from either side,
half-close, an unframeable stream, backpressure with bounded memory, the
per-phone connection limit. One process; each socket is made in the
namespace it belongs to (a thread that setns()es, sockets outlive it).

  tcp_edges.py LAN_NS WAN_NS DAEMON_PID
Exits 1 naming every failed check. Every wait is bounded."""
import ctypes, os, socket, sys, threading, time

LANIP, FAR = "192.168.77.10", "203.0.113.10"
libc = ctypes.CDLL(None, use_errno=True)
fails = []

def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        fails.append(what)

def in_ns(ns, fn):
    out = []
    def run():
        fd = os.open("/var/run/netns/" + ns, os.O_RDONLY)
        if libc.setns(fd, 0x40000000) != 0:   # CLONE_NEWNET
            raise OSError(ctypes.get_errno(), "setns " + ns)
        os.close(fd)
        out.append(fn())
    t = threading.Thread(target=run); t.start(); t.join()
    return out[0]

def listener():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((FAR, 5060)); s.listen(64); s.settimeout(3)
    return s

def phone():
    s = socket.socket(); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.bind((LANIP, 0)); s.settimeout(3)
    return s

def msg(n, body=0):
    b = "x" * body
    return ("OPTIONS sip:bob@%s SIP/2.0\r\nVia: SIP/2.0/TCP %s:5060;branch=z9hG4bKe%d\r\n"
            "From: <sip:a@x>;tag=f\r\nTo: <sip:bob@x>;tag=t\r\nCall-ID: edge@x\r\nCSeq: %d OPTIONS\r\n"
            "Content-Length: %d\r\n\r\n%s" % (FAR, LANIP, n, n, len(b), b)).encode()

def pair(L, lan, wan):
    p = in_ns(lan, phone)
    p.connect((FAR, 5060))
    f, _ = L.accept()
    f.settimeout(3)
    return p, f

def recv_exactly(s, n):
    d = b""
    end = time.time() + 10
    while len(d) < n and time.time() < end:
        try:
            c = s.recv(n - len(d))
        except socket.timeout:
            break
        if not c:
            break
        d += c
    return d

def outcome(s):
    try:
        d = s.recv(100)
        return "eof" if d == b"" else "data"
    except ConnectionResetError:
        return "rst"
    except socket.timeout:
        return "timeout"

def rss_kb(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1

def main():
    lan, wan, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
    L = in_ns(wan, listener)

    # RST from the phone reaches the far end as RST
    p, f = pair(L, lan, wan)
    p.sendall(msg(1)); recv_exactly(f, len(msg(1)))
    p.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0"); p.close()
    check(outcome(f) == "rst", "phone's RST reaches the far end as RST")
    f.close()

    # RST from the far end reaches the phone as RST
    p, f = pair(L, lan, wan)
    p.sendall(msg(2)); recv_exactly(f, len(msg(2)))
    f.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0"); f.close()
    check(outcome(p) == "rst", "far end's RST reaches the phone as RST")
    p.close()

    # FIN from the far end: the phone sees EOF and may still send (half-close)
    p, f = pair(L, lan, wan)
    f.shutdown(socket.SHUT_WR)
    check(outcome(p) == "eof", "far end's FIN reaches the phone")
    p.sendall(msg(3))
    got = recv_exactly(f, len(msg(3)))
    check(b"CSeq: 3 OPTIONS" in got and b"203.0.113.1" in got and b"192.168.77." not in got,
          "after the far end's FIN the phone's message still arrives, rewritten (half-close)")
    p.shutdown(socket.SHUT_WR)
    check(outcome(f) == "eof", "then the phone's FIN reaches the far end")
    p.close(); f.close()

    # an unframeable stream (no Content-Length, RFC 3261 18.3) resets the connection
    p, f = pair(L, lan, wan)
    p.sendall(b"OPTIONS sip:bob@x SIP/2.0\r\nVia: SIP/2.0/TCP 192.168.77.10:5060\r\n\r\n")
    o = outcome(p)
    check(o in ("rst", "eof"), "no Content-Length: the phone's connection is reset (%s)" % o)
    o = outcome(f)
    check(o in ("rst", "eof"), "... and nothing of it reaches the far end (%s)" % o)
    p.close(); f.close()

    # backpressure: the far end does not read; the daemon's memory stays bounded;
    # then it reads, and every message arrives whole and in order
    p, f = pair(L, lan, wan)
    # the test's own ends small too: what is in flight is then the relay's
    f.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    p.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    rss0 = rss_kb(pid)
    p.setblocking(False)
    sent, n, data = 0, 0, b""
    end = time.time() + 4
    while time.time() < end and n < 20000:
        m = msg(10000 + n, 900)
        try:
            k = p.send(m)
        except BlockingIOError:
            time.sleep(0.05)
            continue
        if k < len(m):              # finish this message blocking, bounded
            p.settimeout(0.5)
            try:
                p.sendall(m[k:])
            except socket.timeout:
                break
            p.setblocking(False)
        n += 1
    blocked = n < 20000
    rss1 = rss_kb(pid)
    check(blocked, "a far end that does not read stops the phone (%d messages, %d KiB, in flight)" % (n, n * len(msg(0, 900)) // 1024))
    check(rss1 - rss0 < 2048, "daemon RSS bounded under backpressure (%d -> %d KiB)" % (rss0, rss1))
    p.setblocking(True); p.settimeout(3)
    # rewritten (the Via names the public address, so lengths differ):
    # read until every CSeq is in or nothing comes for 5 s. Not 1 s: after
    # seconds of a zero window the relay's socket probes on TCP's backed-off
    # persist timer, and a CI rehearsal saw 8 of 151 arrive, then a second of
    # silence (the next run: 145 of 145)
    got, end = b"", time.time() + 20
    f.settimeout(5)
    while not (got.count(b"\r\nCSeq: ") >= n and got.endswith(b"x" * 900)) and time.time() < end:
        try:
            c = f.recv(1 << 20)
        except socket.timeout:
            break
        if not c:
            break
        got += c
    cseqs = [int(x.split()[1]) for x in got.decode("latin-1").split("\r\n") if x.startswith("CSeq:")]
    check(cseqs == list(range(10000, 10000 + n)),
          "then every message arrives, in order (%d of %d)" % (len(cseqs), n))
    p.close(); f.close()

    # a slow reader at the end: whole messages that waited in the relay for
    # room must go once there is room, though the phone sends nothing more.
    # (This did not reproduce the stall fixed in tcprelay.c's conn_event,
    # which the kernel's buffers hide here; it checks a slow reader.)
    p = in_ns(lan, phone)
    p.connect((FAR, 5060))
    f, _ = L.accept()
    f.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    n = 400
    p.settimeout(10)
    p.sendall(b"".join(msg(20000 + i, 900) for i in range(n)))
    time.sleep(1.0)
    got, end = b"", time.time() + 10
    f.settimeout(0.5)
    while not (got.count(b"\r\nCSeq: ") >= n and got.endswith(b"x" * 900)) and time.time() < end:
        try:
            c = f.recv(1500)
        except socket.timeout:
            continue
        if not c:
            break
        got += c
        time.sleep(0.001)
    cseqs = [int(x.split()[1]) for x in got.decode("latin-1").split("\r\n") if x.startswith("CSeq:")]
    check(cseqs == list(range(20000, 20000 + n)),
          "a slow reader gets every message though the phone went quiet (%d of %d)" % (len(cseqs), n))
    if cseqs != list(range(20000, 20000 + n)):
        bad = [(i, c) for i, c in enumerate(cseqs) if c != 20000 + i][:5]
        print("  first differences (index, CSeq):", bad, "total bytes", len(got), flush=True)
    p.close(); f.close()

    # the per-phone limit (limits.tcp_connections_per_phone, 16): the 17th is reset
    conns = []
    for i in range(16):
        conns.append(pair(L, lan, wan))
    extra = in_ns(lan, phone)
    try:
        extra.connect((FAR, 5060))
        o = outcome(extra)
    except (ConnectionResetError, ConnectionRefusedError):
        o = "rst"
    check(o in ("rst", "eof"), "17th connection from one phone is refused (%s)" % o)
    L.settimeout(0.5)
    try:
        L.accept(); leaked = True
    except socket.timeout:
        leaked = False
    check(not leaked, "... and never reaches the far end")
    for p, f in conns:
        p.close(); f.close()
    extra.close()
    sys.exit(1 if fails else 0)

def sip(l):
    return "\r\n".join(l).encode()

class Rx:
    """A tiny Content-Length reader (independent of src/sipframe.c)."""
    def __init__(self, s):
        self.s, self.buf = s, b""
    def msg(self, timeout=3):
        import re
        end = time.time() + timeout
        while True:
            self.buf = self.buf.lstrip(b"\r\n")
            h = self.buf.find(b"\r\n\r\n")
            if h >= 0:
                n = h + 4 + int(re.search(rb"Content-Length: (\d+)", self.buf[:h]).group(1))
                if len(self.buf) >= n:
                    m, self.buf = self.buf[:n], self.buf[n:]
                    return m.decode("latin-1")
            if time.time() > end:
                return None
            self.s.settimeout(max(0.05, end - time.time()))
            try:
                d = self.s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                return None
            if not d:
                return None
            self.buf += d

def reg(lport, cseq):
    b = ("REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/TCP %s:%d;branch=z9hG4bKr%d\r\nFrom: <sip:al@%s>;tag=r\r\n"
         "To: <sip:al@%s>\r\nCall-ID: rreg@x\r\nCSeq: %d REGISTER\r\nContact: <sip:al@%s:%d;transport=tcp>\r\n"
         "Content-Length: 0\r\n\r\n" % (FAR, LANIP, lport, cseq, FAR, FAR, cseq, LANIP, lport))
    return b.encode()

def ok(m, body=""):
    import re
    keep = [l for l in m.split("\r\n") if re.match(r"(Via|From|To|Call-ID|CSeq):", l)]
    keep = [l + ";tag=far" if l.startswith("To:") and "tag=" not in l else l for l in keep]
    extra = "Content-Type: application/sdp\r\n" if body else ""
    return ("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\n" + extra +
            "Content-Length: %d\r\n\r\n%s" % (len(body), body)).encode()

def rtp_both(lan, wan, pub_port, label):
    import struct
    pu = in_ns(lan, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    fu = in_ns(wan, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    pu.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); fu.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    pu.bind((LANIP, 16100)); fu.bind((FAR, 31000))
    pkt = b"\x80\x00" + b"\0" * 10 + b"r" * 160
    def count(u, peer_ok):
        got, end = 0, time.time() + 2
        while got < 10 and time.time() < end:
            u.settimeout(max(0.01, end - time.time()))
            try:
                d, a = u.recvfrom(2048)
            except socket.timeout:
                break
            got += peer_ok(a)
        return got
    for _ in range(10):
        pu.sendto(pkt, (FAR, 31000)); time.sleep(0.003)
    a = count(fu, lambda a: a == ("203.0.113.1", pub_port))
    for _ in range(10):
        fu.sendto(pkt, ("203.0.113.1", pub_port)); time.sleep(0.003)
    b = count(pu, lambda a: a == (FAR, 31000))
    check(a >= 9 and b >= 9, "%s: RTP both ways (%d/10 out, %d/10 in)" % (label, a, b))
    pu.close(); fu.close()

def restart(lan, wan, ready, restarted):
    """A call over TCP, the daemon restarted (shell), the phone reconnects:
    the old connections are reset, the call goes on (media, then BYE over
    the new connection, rewritten)."""
    import re
    L = in_ns(wan, listener)
    p, f = pair(L, lan, wan)
    lport = p.getsockname()[1]
    pr, fr = Rx(p), Rx(f)
    p.sendall(reg(lport, 1)); m = fr.msg(); f.sendall(ok(m)); pr.msg()
    sdp = "v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio 16100 RTP/AVP 0\r\n" % (LANIP, LANIP)
    hdrs = ("Via: SIP/2.0/TCP %s:%d;branch=z9hG4bK%%s\r\nFrom: <sip:al@%s>;tag=c\r\nTo: <sip:bob@%s>%%s\r\n"
            "Call-ID: rcall@x\r\nCSeq: %%d %%s\r\n" % (LANIP, lport, FAR, FAR))
    p.sendall(("INVITE sip:bob@%s SIP/2.0\r\n" % FAR + hdrs % ("i", "", 1, "INVITE") +
               "Contact: <sip:al@%s:%d;transport=tcp>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s"
               % (LANIP, lport, len(sdp), sdp)).encode())
    inv = fr.msg() or ""
    pub_port = int(re.search(r"m=audio (\d+)", inv).group(1)) if "m=audio" in inv else 0
    fsdp = "v=0\r\no=- 2 2 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio 31000 RTP/AVP 0\r\n" % (FAR, FAR)
    f.sendall(ok(inv, fsdp)); pr.msg()
    p.sendall(("ACK sip:bob@%s SIP/2.0\r\n" % FAR + hdrs % ("a", ";tag=far", 1, "ACK") + "Content-Length: 0\r\n\r\n").encode())
    fr.msg()
    rtp_both(lan, wan, pub_port, "before the restart")
    open(ready, "w").close()
    end = time.time() + 30
    while not os.path.exists(restarted) and time.time() < end:
        time.sleep(0.1)
    check(os.path.exists(restarted), "the daemon was restarted")
    check(pr.msg(1) is None and fr.msg(1) is None, "the relayed connections ended with the daemon (phone and far end)")
    p.close(); f.close()
    # the phone reconnects and re-registers; the call goes on
    p, f = pair(L, lan, wan)
    lport2 = p.getsockname()[1]
    pr, fr = Rx(p), Rx(f)
    p.sendall(reg(lport2, 2)); m = fr.msg() or ""
    check("Contact: <sip:al@203.0.113.1:" in m and "192.168.77." not in m, "re-REGISTER over the new connection, rewritten")
    f.sendall(ok(m)); pr.msg()
    rtp_both(lan, wan, pub_port, "after the restart")
    p.sendall(("BYE sip:bob@%s SIP/2.0\r\n" % FAR + hdrs.replace(":%d;" % lport, ":%d;" % lport2) % ("b", ";tag=far", 2, "BYE") +
               "Content-Length: 0\r\n\r\n").encode())
    m = fr.msg() or ""
    check(m.startswith("BYE ") and "192.168.77." not in m and "Via: SIP/2.0/TCP 203.0.113.1:" in m,
          "BYE after the restart reaches the far end rewritten")
    f.sendall(ok(m))
    r = pr.msg() or ""
    check(r.startswith("SIP/2.0 200"), "its 200 reaches the phone")
    p.close(); f.close()
    sys.exit(1 if fails else 0)

def many(lan, wan, pid, nconn):
    """nconn concurrent relayed connections from 63 phones (16 each at most):
    each carries a message both ways; the daemon's RSS is reported."""
    import resource
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
    L = in_ns(wan, listener)
    L.settimeout(5)
    rss0 = rss_kb(pid)
    pairs = []
    def ph(ip):
        s = socket.socket(); s.bind((ip, 0)); s.settimeout(5)
        return s
    for i in range(nconn):
        ip = "192.168.77.%d" % (100 + i // 16)
        p = in_ns(lan, lambda: ph(ip))
        p.connect((FAR, 5060))
        f, _ = L.accept()
        f.settimeout(5)
        pairs.append((p, f))
    ok_n = 0
    for i, (p, f) in enumerate(pairs):
        m = msg(i)
        p.sendall(m)
    for i, (p, f) in enumerate(pairs):
        got = b""
        end = time.time() + 5
        while b"\r\n\r\n" not in got and time.time() < end:
            c = f.recv(4096)
            if not c:
                break
            got += c
        ok_n += (b"CSeq: %d OPTIONS" % i) in got and b"192.168.77." not in got
    rss1 = rss_kb(pid)
    check(ok_n == nconn, "%d concurrent connections each carried a message, rewritten (%d ok)" % (nconn, ok_n))
    check(rss1 - rss0 < 64 * 1024, "daemon RSS with %d connections: %d KiB (was %d KiB, +%d KiB)"
          % (nconn, rss1, rss0, rss1 - rss0))
    for p, f in pairs:
        p.close(); f.close()
    sys.exit(1 if fails else 0)

if sys.argv[1] == "many":
    many(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
elif sys.argv[1] == "restart":
    restart(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
else:
    main()
