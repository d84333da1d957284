#!/usr/bin/python3
"""loadgen.py media|state ...: the media and state-scale runs of tests/bench/run.sh.

One process holds UDP sockets in the LAN and WAN namespaces (setns) and plays
both the phones and the far side, so every message and RTP packet is checked
where it arrives. Every wait has a deadline; nothing is retransmitted (a lost
message is counted, not hidden).

  media  --calls N --pps P --seconds S
         N calls set up through sipalgd and held; phase "no media": S seconds
         of nothing; phase "media": RTP both ways on every call (P packets/s per
         stream and direction, 172-byte RTP); then BYE, and a last burst from
         the WAN to the closed pinholes (must get 0 through).
         Measured per phase: sipalgd CPU (all threads, schedstat), the router's
         NAPI threads' CPU, the daemon's pkts_in counter, packets sent/received.
  state  --phones N --dialogs D --probe P
         N phones REGISTER, each from its own LAN address (10.77.0.0/16); then
         D of them (D <= N) each set up one dialog (INVITE with SDP / 200 with
         SDP / ACK) held open. At each level (empty,
         N phones, + D/2 dialogs, + D dialogs) a probe of P short calls
         (INVITE/200/ACK/BYE/200: a dialog and a pinhole created and removed)
         measures sipalgd CPU per call and the INVITE->200 round trip; RSS and
         counters at every level.
Writes --out JSON (read by report.py).
"""
import argparse
import ctypes
import json
import os
import random
import resource
import select
import socket
import subprocess
import sys
import time

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL("libc.so.6", use_errno=True)
_ORIG = None

PHONE_IP = "192.168.77.10"
PROBE_IP = "192.168.77.11"
# The state run's phones: each its own address in PHONE_NET, which the LAN
# namespace takes as local (a `local` route on lo: any address of it can be
# bound) and the router routes to it (run.sh's run_state). One address per
# phone, as on a real LAN: one host holding 10,000 registrations would be
# rationed by the fair share of limits.bindings (issue 8), which is the trunk
# cell's subject, not this one's.
PHONE_NET = "10.77.0.0/16"


def phone_ip(k):
    return "10.77.%d.%d" % (1 + k // 250, 1 + k % 250)
PUB = "203.0.113.1"
PROXY = "203.0.113.10"
MEDIA_SRV = "203.0.113.20"


def setns(path):
    global _ORIG
    if _ORIG is None:
        _ORIG = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    if path is None:
        fd = _ORIG
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back")
        return
    fd = os.open("/var/run/netns/" + path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + path)
    finally:
        os.close(fd)


def sendto(s, data, addr):
    """sendto on a non-blocking socket, waiting (bounded) for room in its buffer."""
    deadline = time.monotonic() + 2.0
    while True:
        try:
            return s.sendto(data, addr)
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise
            select.select([], [s], [], 0.05)


def sock_in(ns, ip, port, rcvbuf=1 << 20):
    setns(ns)
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        s.bind((ip, port))
        s.setblocking(False)
    finally:
        setns(None)
    return s


# ---------------------------------------------------------------- measurement

class Probe:
    def __init__(self, a):
        self.pid = a.daemon_pid
        self.napi = [int(x) for x in a.napi.split()]
        self.ctl = [ "ip", "netns", "exec", a.rtr_ns, a.ctl, "-s", a.sock]

    def daemon_ns(self):
        s = 0
        base = f"/proc/{self.pid}/task"
        for t in os.listdir(base):
            try:
                with open(f"{base}/{t}/schedstat") as f:
                    s += int(f.read().split()[0])
            except OSError:
                pass
        return s

    def napi_ns(self):
        s = 0
        for t in self.napi:
            try:
                with open(f"/proc/{t}/schedstat") as f:
                    s += int(f.read().split()[0])
            except OSError:
                pass
        return s

    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def counters(self):
        try:
            out = subprocess.run(self.ctl + ["counters"], capture_output=True, text=True, timeout=10).stdout
        except subprocess.TimeoutExpired:
            return {}
        c = {}
        for line in out.splitlines():
            p = line.split()
            if len(p) == 2 and p[1].isdigit():
                c[p[0]] = int(p[1])
        return c

    def alive(self):
        return os.path.exists(f"/proc/{self.pid}")


# ---------------------------------------------------------------- SIP

def parse(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for l in lines[1:]:
        n, sep, v = l.partition(":")
        if sep:
            hdrs.setdefault(n.strip().lower(), v.strip())
    return lines[0], hdrs, body.decode("latin-1"), lines


def sdp_addr_port(body):
    c = port = None
    for l in body.split("\r\n"):
        if l.startswith("c=IN IP4 "):
            c = l.split()[2]
        elif l.startswith("m=audio "):
            port = int(l.split()[1])
    return c, port


def msg(first, headers, body=""):
    b = body.encode()
    h = "\r\n".join([first] + headers + ["Content-Length: %d" % len(b), "", ""])
    return h.encode() + b


def sdp(user, ip, port):
    return ("v=0\r\no=%s 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
            "m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n" % (user, ip, ip, port))


class Call:
    __slots__ = ("cid", "ftag", "ttag", "lport", "lip", "sock", "priv_media", "pub_media",
                 "wan_media", "t_inv", "t_200", "ok", "via_wan", "to_wan")

    def __init__(self, cid, sock, lip, lport, priv_media, wan_media):
        self.cid, self.sock, self.lip, self.lport = cid, sock, lip, lport
        self.priv_media, self.wan_media = priv_media, wan_media
        self.ftag = "f" + cid[:8]
        self.ttag = None
        self.pub_media = None
        self.t_inv = self.t_200 = None
        self.ok = False


def invite(c):
    hdrs = ["Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-%s-1" % (c.lip, c.lport, c.cid),
            "Max-Forwards: 70",
            "From: <sip:alice@atlanta.example.com>;tag=%s" % c.ftag,
            "To: <sip:bob@biloxi.example.com>",
            "Call-ID: %s" % c.cid, "CSeq: 1 INVITE",
            "Contact: <sip:alice@%s:%d>" % (c.lip, c.lport),
            "Content-Type: application/sdp"]
    return msg("INVITE sip:bob@biloxi.example.com SIP/2.0", hdrs, sdp("alice", c.lip, c.priv_media))


def in_dialog(c, method, cseq):
    hdrs = ["Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-%s-%s" % (c.lip, c.lport, c.cid, method),
            "Max-Forwards: 70",
            "From: <sip:alice@atlanta.example.com>;tag=%s" % c.ftag,
            "To: <sip:bob@biloxi.example.com>;tag=%s" % c.ttag,
            "Call-ID: %s" % c.cid, "CSeq: %d %s" % (cseq, method)]
    return msg("%s sip:bob@%s:5060 SIP/2.0" % (method, PROXY), hdrs)


def response(hdrs, code, reason, totag=None, body="", contact=None):
    to = hdrs.get("to", "")
    if totag and ";tag=" not in to:
        to += ";tag=" + totag
    h = ["Via: " + hdrs.get("via", ""), "From: " + hdrs.get("from", ""), "To: " + to,
         "Call-ID: " + hdrs.get("call-id", ""), "CSeq: " + hdrs.get("cseq", "")]
    if contact:
        h.append("Contact: " + contact)
    if body:
        h.append("Content-Type: application/sdp")
    return msg("SIP/2.0 %d %s" % (code, reason), h, body)


class Sip:
    """The far side (proxy at 203.0.113.10:5060) and bookkeeping of calls."""

    def __init__(self, a):
        self.a = a
        self.proxy = sock_in(a.wan_ns, PROXY, 5060, rcvbuf=8 << 20)
        self.calls = {}
        self.lost = 0

    def wan_serve(self, deadline, want, on_req):
        """Answer requests at the proxy until `want()` is true or the deadline."""
        while time.monotonic() < deadline and not want():
            r, _, _ = select.select([self.proxy], [], [], max(0.0, min(0.02, deadline - time.monotonic())))
            if not r:
                continue
            for _ in range(256):
                try:
                    raw, src = self.proxy.recvfrom(65535)
                except BlockingIOError:
                    break
                on_req(raw, src)

    def setup_calls(self, calls, media_srv_sockets=None, batch=50):
        """INVITE/200/ACK for every call, `batch` at a time. Returns the established ones."""
        for c in calls:
            self.calls[c.cid] = c
        done = []
        for i in range(0, len(calls), batch):
            part = calls[i:i + batch]
            socks = {c.sock.fileno(): c.sock for c in part}
            for c in part:
                c.t_inv = time.monotonic()
                sendto(c.sock, invite(c), (PROXY, 5060))
            pending = {c.cid for c in part}
            deadline = time.monotonic() + 3.0

            def on_req(raw, src):
                first, h, body, _ = parse(raw)
                c = self.calls.get(h.get("call-id"))
                if c is None:
                    return
                if first.startswith("INVITE"):
                    ip, port = sdp_addr_port(body)
                    c.pub_media = port if ip == PUB else None
                    c.ttag = "t" + c.cid[:8]
                    sendto(self.proxy, response(h, 200, "OK", c.ttag, sdp("bob", MEDIA_SRV, c.wan_media),
                                               "<sip:bob@%s:5060>" % PROXY), src)
                elif first.startswith("BYE"):
                    sendto(self.proxy, response(h, 200, "OK"), src)

            while pending and time.monotonic() < deadline:
                self.wan_serve(time.monotonic() + 0.001, lambda: False, on_req)
                for fd, s in socks.items():
                    for _ in range(256):
                        try:
                            raw, _src = s.recvfrom(65535)
                        except BlockingIOError:
                            break
                        first, h, _b, _ = parse(raw)
                        c = self.calls.get(h.get("call-id"))
                        if c is None or c.cid not in pending:
                            continue
                        if first.startswith("SIP/2.0 200") and "INVITE" in h.get("cseq", ""):
                            c.t_200 = time.monotonic()
                            c.ok = bool(c.pub_media)  # rewritten, with a pinhole (m= port not 0)
                            sendto(c.sock, in_dialog(c, "ACK", 1), (PROXY, 5060))
                            pending.discard(c.cid)
            self.lost += len(pending)
            done.extend(c for c in part if c.ok)
        # let the ACKs arrive
        self.wan_serve(time.monotonic() + 0.02, lambda: False, lambda raw, src: None)
        return done

    def teardown(self, calls, batch=100):
        ok = 0
        for i in range(0, len(calls), batch):
            part = calls[i:i + batch]
            socks = {c.sock.fileno(): c.sock for c in part}
            for c in part:
                sendto(c.sock, in_dialog(c, "BYE", 2), (PROXY, 5060))
            pending = {c.cid for c in part}
            deadline = time.monotonic() + 3.0

            def on_req(raw, src):
                first, h, _b, _ = parse(raw)
                if first.startswith("BYE"):
                    sendto(self.proxy, response(h, 200, "OK"), src)

            while pending and time.monotonic() < deadline:
                self.wan_serve(time.monotonic() + 0.001, lambda: False, on_req)
                for s in socks.values():
                    for _ in range(256):
                        try:
                            raw, _src = s.recvfrom(65535)
                        except BlockingIOError:
                            break
                        first, h, _b, _ = parse(raw)
                        if first.startswith("SIP/2.0 200") and "BYE" in h.get("cseq", ""):
                            if h.get("call-id") in pending:
                                pending.discard(h.get("call-id"))
                                ok += 1
            self.lost += len(pending)
        for c in calls:
            self.calls.pop(c.cid, None)
        return ok


# ---------------------------------------------------------------- media run

def drain_count(socks, per=None):
    n = 0
    for k, s in enumerate(socks):
        while True:
            try:
                s.recv(2048)
                n += 1
                if per is not None:
                    per[k] += 1
            except (BlockingIOError, ConnectionRefusedError):
                break
    return n


def media_run(a, pr):
    sip = Sip(a)
    phone = sock_in(a.lan_ns, PHONE_IP, 5080, rcvbuf=8 << 20)
    calls = []
    lan_m, wan_m = [], []
    for i in range(a.calls):
        cid = "media-%d-%08x" % (i, random.getrandbits(32))
        c = Call(cid, phone, PHONE_IP, 5080, 12000 + 2 * i, 30000 + 2 * i)
        calls.append(c)
    for c in calls:
        lan_m.append(sock_in(a.lan_ns, PHONE_IP, c.priv_media))
        wan_m.append(sock_in(a.wan_ns, MEDIA_SRV, c.wan_media))
    up = sip.setup_calls(calls)
    print(f"# media: {len(up)} of {a.calls} calls up", file=sys.stderr)
    upset = {c.cid for c in up}
    idx = [i for i, c in enumerate(calls) if c.cid in upset]
    rtp = bytearray(12 + 160)
    rtp[0] = 0x80

    got = [0] * (2 * len(calls))

    def phase(name, send):
        time.sleep(0.5)
        drain_count(lan_m + wan_m)
        c0 = pr.counters()
        d0, n0, t0 = pr.daemon_ns(), pr.napi_ns(), time.monotonic()
        sent = recv = 0
        tick = 1.0 / a.pps
        nxt = t0
        end = t0 + a.seconds
        seq = 0
        while time.monotonic() < end:
            if send:
                seq += 1
                rtp[2:4] = (seq & 0xFFFF).to_bytes(2, "big")
                for i in idx:
                    c = calls[i]
                    try:
                        lan_m[i].sendto(rtp, (MEDIA_SRV, c.wan_media))
                        wan_m[i].sendto(rtp, (PUB, c.pub_media))
                        sent += 2
                    except OSError:
                        pass
            recv += drain_count(lan_m + wan_m, got)
            nxt += tick
            dt = nxt - time.monotonic()
            if dt > 0:
                time.sleep(dt)
        time.sleep(0.2)
        recv += drain_count(lan_m + wan_m, got)
        t1 = time.monotonic()
        d1, n1 = pr.daemon_ns(), pr.napi_ns()
        c1 = pr.counters()
        el = t1 - t0
        return {"name": name, "seconds": round(el, 2), "sent": sent, "received": recv,
                "pps": sent / el, "daemon_ms_per_s": (d1 - d0) / 1e6 / el,
                "daemon_pkts_in": c1.get("pkts_in", 0) - c0.get("pkts_in", 0),
                "napi_ms_per_s": (n1 - n0) / 1e6 / el,
                "napi_us_per_pkt": ((n1 - n0) / 1e3 / recv) if (send and recv) else None}

    phases = [phase("no media", False), phase("media", True), phase("no media again", False)]
    rss = pr.rss_kib()
    counters_up = pr.counters()
    # per-stream check: both directions got through
    time.sleep(0.2)
    # Close the calls and send once more towards the old pinholes.
    closed = sip.teardown(up)
    time.sleep(0.5)
    drain_count(lan_m + wan_m)
    for i in idx:
        try:
            wan_m[i].sendto(rtp, (PUB, calls[i].pub_media))
        except OSError:
            pass
    time.sleep(0.5)
    leaked = drain_count(lan_m)
    counters_end = pr.counters()
    media_ph = phases[1]
    quiet = (phases[0]["daemon_ms_per_s"] + phases[2]["daemon_ms_per_s"]) / 2
    out = {
        "calls": a.calls, "calls_up": len(up),
        "streams_up": sum(1 for i in idx if got[i] > 0 and got[len(calls) + i] > 0), "pps": a.pps, "seconds": a.seconds, "rtp_bytes": len(rtp),
        "phases": phases, "rss_kib": rss, "closed": closed, "after_bye_leaked": leaked,
        "after_bye_sent": len(idx), "lost_sip": sip.lost,
        "pinholes_up": counters_up.get("pinholes"), "pinholes_end": counters_end.get("pinholes"),
        "daemon_cpu_ratio": (f"{media_ph['daemon_ms_per_s'] / quiet:.2f}x" if quiet > 0 else "-"),
        "daemon_alive": pr.alive(),
    }
    return out


# ---------------------------------------------------------------- state run

def register_phones(a, sip, n, port=5060, batch=250):
    ok = 0
    lost = 0
    for i in range(0, n, batch):
        socks = {}
        for k in range(i, min(n, i + batch)):
            ip = phone_ip(k)
            s = sock_in(a.lan_ns, ip, port, rcvbuf=1 << 16)
            socks[k] = s
            cid = "reg-%d-%08x" % (k, random.getrandbits(32))
            hdrs = ["Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-r%d" % (ip, port, k),
                    "Max-Forwards: 70",
                    "From: <sip:phone%d@biloxi.example.com>;tag=r%d" % (k, k),
                    "To: <sip:phone%d@biloxi.example.com>" % k,
                    "Call-ID: %s" % cid, "CSeq: 1 REGISTER",
                    "Contact: <sip:phone%d@%s:%d>" % (k, ip, port),
                    "Expires: 3600"]
            sendto(s, msg("REGISTER sip:biloxi.example.com SIP/2.0", hdrs), (PROXY, 5060))
        pending = set(socks)
        deadline = time.monotonic() + 5.0

        def on_req(raw, src):
            first, h, _b, _ = parse(raw)
            if first.startswith("REGISTER"):
                sendto(sip.proxy, response(h, 200, "OK", "reg", contact=h.get("contact", "") + ";expires=3600"), src)

        while pending and time.monotonic() < deadline:
            sip.wan_serve(time.monotonic() + 0.001, lambda: False, on_req)
            for k in list(pending):
                try:
                    raw = socks[k].recv(65535)
                except BlockingIOError:
                    continue
                if raw.startswith(b"SIP/2.0 200"):
                    pending.discard(k)
                    ok += 1
        lost += len(pending)
        for s in socks.values():
            s.close()
    return ok, lost


def probe(a, sip, pr, n, tag, conc=10):
    """n short calls from PROBE_IP, conc at a time; daemon CPU per call and INVITE->200 RTT."""
    s = sock_in(a.lan_ns, PROBE_IP, 5090, rcvbuf=4 << 20)
    rtts = []
    failed = 0
    time.sleep(0.3)
    d0 = pr.daemon_ns()
    for i in range(0, n, conc):
        calls = []
        for j in range(i, min(n, i + conc)):
            cid = "probe-%s-%d-%08x" % (tag, j, random.getrandbits(32))
            calls.append(Call(cid, s, PROBE_IP, 5090, 62000 + 2 * (j % conc), 61000 + 2 * (j % conc)))
        up = sip.setup_calls(calls, batch=conc)
        rtts.extend((c.t_200 - c.t_inv) * 1e3 for c in up)
        failed += len(calls) - len(up)
        sip.teardown(up, batch=conc)
    d1 = pr.daemon_ns()
    s.close()
    rtts.sort()
    pick = lambda p: rtts[min(len(rtts) - 1, int(p / 100 * (len(rtts) - 1)))] if rtts else None
    return {"probe_calls": n, "probe_failed": failed,
            "probe_cpu_us_per_call": (d1 - d0) / 1e3 / max(1, n - failed),
            "probe_rtt_p50_ms": pick(50), "probe_rtt_p99_ms": pick(99)}


def state_run(a, pr):
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sip = Sip(a)
    levels = []
    notes = []

    def level(name):
        time.sleep(1.0)
        c = pr.counters()
        lv = {"name": name, "rss_kib": pr.rss_kib(), "registrations": c.get("registrations", 0),
              "bindings": c.get("bindings", 0), "dialogs": c.get("dialogs", 0), "pinholes": c.get("pinholes", 0)}
        # Housekeeping at this level (timers walking the tables), no traffic.
        i0, t0 = pr.daemon_ns(), time.monotonic()
        time.sleep(2.0)
        idle = (pr.daemon_ns() - i0) / 1e6 / (time.monotonic() - t0)
        lv["idle_ms_per_s"] = idle
        p0 = time.monotonic()
        lv.update(probe(a, sip, pr, a.probe, name.replace(" ", "_")))
        dur = time.monotonic() - p0
        lv["probe_seconds"] = dur
        n_ok = max(1, lv["probe_calls"] - lv["probe_failed"])
        lv["probe_cpu_us_per_call_net"] = lv["probe_cpu_us_per_call"] - idle * 1e3 * dur / n_ok
        levels.append(lv)
        print(f"# state: {name}: {json.dumps(lv)}", file=sys.stderr)
        return lv

    if a.dialogs > a.phones:
        raise SystemExit("state: --dialogs must not exceed --phones (one dialog per phone)")
    rss_idle = pr.rss_kib()
    level("empty")
    t0 = time.monotonic()
    ok, lost = register_phones(a, sip, a.phones)
    print(f"# state: {ok} of {a.phones} phones registered in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    if lost:
        notes.append(f"{lost} REGISTERs got no 200 OK")
    lv_reg = level(f"{a.phones} phones")
    # Dialogs: phone i (of the registered ones) in one call each.
    socks = [sock_in(a.lan_ns, phone_ip(i), 5060, rcvbuf=1 << 16) for i in range(a.dialogs)]
    dialogs = []
    half = a.dialogs // 2
    for i in range(a.dialogs):
        cid = "dlg-%d-%08x" % (i, random.getrandbits(32))
        dialogs.append(Call(cid, socks[i], phone_ip(i), 5060, 10000 + 2 * i, 40000 + 2 * i))
    rss_before_dialogs = pr.rss_kib()
    d0 = pr.daemon_ns()
    up1 = sip.setup_calls(dialogs[:half], batch=100)
    d1 = pr.daemon_ns()
    lv_half = level(f"{a.phones} phones + {half} dialogs")
    d2 = pr.daemon_ns()
    up2 = sip.setup_calls(dialogs[half:], batch=100)
    d3 = pr.daemon_ns()
    lv_full = level(f"{a.phones} phones + {a.dialogs} dialogs")
    up = up1 + up2
    if len(up) < a.dialogs:
        notes.append(f"{a.dialogs - len(up)} of {a.dialogs} dialogs did not come up")
    setup_first = (d1 - d0) / 1e3 / max(1, len(up1))
    setup_second = (d3 - d2) / 1e3 / max(1, len(up2))
    # Tear down, timed per half as well.
    e0 = pr.daemon_ns()
    closed2 = sip.teardown(up2, batch=100)
    e1 = pr.daemon_ns()
    closed1 = sip.teardown(up1, batch=100)
    e2 = pr.daemon_ns()
    for s in socks:
        s.close()
    lv_end = level("after BYE of all dialogs")
    full_dialogs = lv_full["dialogs"] or len(up)
    out = {
        "phones": a.phones, "phones_registered": ok, "dialogs": a.dialogs, "dialogs_up": len(up),
        "probe": a.probe, "levels": levels, "rss_idle_kib": rss_idle, "notes": notes,
        "rss_per_registration_b": ((lv_reg["rss_kib"] - rss_idle) * 1024 / ok) if ok else None,
        "rss_per_dialog_b": ((lv_full["rss_kib"] - rss_before_dialogs) * 1024 / full_dialogs) if full_dialogs else None,
        "setup_us_per_dialog_first_half": setup_first, "setup_us_per_dialog_second_half": setup_second,
        "teardown_us_per_dialog_at_full": (e1 - e0) / 1e3 / max(1, closed2),
        "teardown_us_per_dialog_at_half": (e2 - e1) / 1e3 / max(1, closed1),
        "lost_sip": sip.lost, "daemon_alive": pr.alive(),
    }
    base = levels[0].get("probe_cpu_us_per_call_net")
    top = lv_full.get("probe_cpu_us_per_call_net")
    if base and top:
        out["probe_ratio"] = f"{top / base:.2f}x"
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["media", "state"])
    for k in ("lan-ns", "wan-ns", "rtr-ns", "napi", "ctl", "sock", "out"):
        ap.add_argument("--" + k, required=True)
    ap.add_argument("--daemon-pid", type=int, required=True)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--pps", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--phones", type=int, default=10000)
    ap.add_argument("--dialogs", type=int, default=5000)
    ap.add_argument("--probe", type=int, default=500)
    a = ap.parse_args()
    if not (1 <= a.calls <= 5000 and 1 <= a.pps <= 1000 and 1 <= a.seconds <= 300
            and 0 <= a.phones <= 20000 and 0 <= a.dialogs <= 9000 and 1 <= a.probe <= 10000):
        print("loadgen: a parameter is out of its bounds", file=sys.stderr)
        return 2
    pr = Probe(a)
    out = media_run(a, pr) if a.mode == "media" else state_run(a, pr)
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
