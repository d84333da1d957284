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
    # read until every CSeq is in or nothing comes for a second
    got, end = b"", time.time() + 15
    f.settimeout(1)
    while got.count(b"\r\nCSeq: ") < n and time.time() < end:
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

    # the per-phone limit (TCPRELAY_MAX_PER_PHONE = 16): the 17th is reset
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

main()
