#!/usr/bin/python3
"""sipalgd netns lab: the router's firewall is a tool (ufw, Docker's rules, firewalld)
that reloads its rules on its own schedule. Driven by fwtools.sh, which built the lab,
wrote the tool's rules and started the daemon:

  fwtools.py --ns NS_PREFIX --id ID --ctl SIPALGCTL --sock SOCK --table T --hook HOOK
             --part NAME STEP...

STEP is one of
  status=warn|ok   `sipalgctl status` has the forward-policy warning (and the gauge
                   forward_drops_dnat is 1), or has neither;
  tcp              SIP/TCP: the registrar's new connection back to a registered phone
                   (tcp.py in-provider / in-phone) is relayed (the input policy lets it in);
  call             a new call (flows.call_3_1: rewrite, RTP both ways, stranger
                   refused, BYE, pinholes closed) passes;
  blocked          the same call's remote-first RTP is refused (the forward policy
                   drops the pinholes' media: what status=warn must say);
  do=NAME          HOOK NAME (what the admin changes), must succeed;
  event=NAME       a held call with RTP both ways; under a stream of OPTIONS from the LAN
                   and a sniffer on the internet side, HOOK NAME (the tool's reload, in
                   the router) runs; then: our table, the jump and the diversion are
                   there (bounded wait: a repair may be under way), nothing left the
                   router with a LAN address, no request was lost for good, no
                   forward-policy warning was logged if the policy accepted DNAT'ed
                   media before and after (the reload's intermediate states), the held
                   call's RTP flows both ways, it ends with BYE, and a new call works.
Prints `ok`/`not ok` per check, `# figure` lines, then `N passed, N failed`.
"""
import argparse
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flows  # noqa: E402  (the lab's UAs and checks)
from flows import Fail, check  # noqa: E402
from field_repair import Load  # noqa: E402  (the OPTIONS stream with retransmissions)

A = None
RESULTS = [0, 0]


def rtr(*cmd, inp=None, ok=True, timeout=30):
    p = subprocess.run(["ip", "netns", "exec", flows.NS["rtr"]] + list(cmd), input=inp,
                       capture_output=True, text=True, timeout=timeout)
    if ok and p.returncode != 0:
        raise Fail("`%s` failed: %s" % (" ".join(cmd), p.stderr.strip()))
    return p


def counters():
    p = rtr(A.ctl, "-s", A.sock, "counters")
    return {k: int(v) for k, v in (ln.split() for ln in p.stdout.splitlines() if len(ln.split()) == 2)}


def result(name, fn):
    try:
        fn()
        print("ok - %s: %s" % (A.part, name))
        RESULTS[0] += 1
    except Fail as e:
        print("not ok - %s: %s: %s" % (A.part, name, str(e).replace("\n", " ")))
        RESULTS[1] += 1
    except Exception as e:  # a bug in the lab itself
        print("not ok - %s: %s: lab error: %s: %s" % (A.part, name, type(e).__name__, e))
        RESULTS[1] += 1
    sys.stdout.flush()


def rules_present():
    t = rtr("nft", "list", "table", "ip", A.table, ok=False)
    ipt = rtr("iptables", "-w", "5", "-t", "mangle", "-S", ok=False).stdout
    chain = A.table.upper()
    return {
        "table": t.returncode == 0 and "chain pre" in t.stdout and "chain post" in t.stdout,
        "jump": ("-A FORWARD -p udp -j %s" % chain) in ipt,
        "divert": sum(1 for ln in ipt.splitlines()
                      if ln.startswith("-A %s " % chain) and "-j NFQUEUE" in ln) == 4,
    }


def wait_rules(what, limit=5.0):
    deadline = time.monotonic() + limit
    while True:
        have = rules_present()
        if all(have.values()):
            return
        if time.monotonic() > deadline:
            raise Fail("%s: %.0f s later still missing: %s" % (what, limit, [k for k, v in have.items() if not v]))
        time.sleep(0.05)


class Media:
    """The held call's RTP during the reload, remote -> phone at 50 packets/s (one
    every 20 ms); counts what reached the phone and the longest gap between arrivals."""

    def __init__(self, call):
        self.c, self.sent, self.got, self.gap = call, 0, 0, 0.0
        self.stop = threading.Event()
        self.c.phone_rtp.settimeout(0.1)
        self.threads = [threading.Thread(target=self._send), threading.Thread(target=self._recv)]

    def _send(self):
        t0 = time.monotonic()
        while not self.stop.is_set() and time.monotonic() - t0 < 30:
            try:
                self.c.remote_rtp.sendto(flows.rtp_packet(self.sent, 0x5a1f), tuple(self.c.pub_media))
            except OSError:
                pass
            self.sent += 1
            time.sleep(0.02)

    def _recv(self):
        last = time.monotonic()
        while True:
            try:
                self.c.phone_rtp.recvfrom(2048)
            except socket.timeout:
                if self.stop.is_set() and not self.threads[0].is_alive():
                    break
                continue
            except OSError:
                break
            now = time.monotonic()
            self.gap = max(self.gap, now - last)
            last = now
            self.got += 1

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(3)
        self.c.phone_rtp.settimeout(None)


class Sniffer:
    """Every IPv4 packet on the internet side's eth0 (AF_PACKET, as tcpdump would see it):
    counts those whose source address or payload names the LAN (192.168.)."""

    def __init__(self):
        flows.setns(flows.NS["wan"])
        try:
            self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
            self.s.bind(("eth0", 0))
        finally:
            flows.setns(None)
        self.s.settimeout(0.1)
        self.seen, self.leaks, self.first = 0, 0, None
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run)

    def _run(self):
        while not self.stop.is_set():
            try:
                pkt, addr = self.s.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            ip = pkt[14:] if len(pkt) > 14 else b""
            if len(ip) < 20:
                continue
            self.seen += 1
            if ip[12:14] == b"\xc0\xa8" or b"192.168." in ip[20:]:
                self.leaks += 1
                if self.first is None:
                    self.first = ip[:80]

    def start(self):
        self.t.start()

    def finish(self):
        self.stop.set()
        self.t.join(3)
        self.s.close()


def hook(name):
    p = subprocess.run([A.hook, name], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise Fail("hook %s failed (%d): %s" % (name, p.returncode, (p.stderr or p.stdout).strip()[-300:]))


def step_status(want):
    def fn():
        # The daemon looks again after each ruleset change: a bounded wait for the
        # answer wanted (a wrong answer stays wrong, and fails after 3 s).
        deadline = time.monotonic() + 3.0
        while True:
            st = rtr(A.ctl, "-s", A.sock, "status", ok=False)
            warn = [ln for ln in st.stdout.splitlines() if ln.startswith("warning: forward policy")]
            gauge = counters().get("forward_drops_dnat", -1)
            if bool(warn) == (want == "warn") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        print("# status (%s): exit %d, %s" % (want, st.returncode, warn[0][:150] if warn else "no forward warning"))
        if st.returncode != 0:
            print("# status: %s" % st.stdout.strip().replace("\n", " | ")[:600])
        if want == "warn":
            check(warn, "the forward policy drops the pinholes' media and status does not say so: %r"
                  % st.stdout.strip()[:300])
            check(gauge == 1, "forward_drops_dnat %d, want 1" % gauge)
        else:
            check(not warn, "status warns but the forward policy lets the pinholes' media in: %s" % warn)
            check(gauge == 0, "forward_drops_dnat %d, want 0" % gauge)
    result("status %s" % ("warns that the forward policy drops the pinholes' media" if want == "warn"
                          else "has no forward-policy warning"), fn)


def step_call():
    result("a new call: rewritten, RTP both ways, stranger refused, closed after BYE", flows.call_3_1)
    flows.close_all_sockets()


def step_blocked():
    """A call whose remote sends RTP first: none of it may reach the phone (the forward
    policy drops the DNAT'ed flow); the signalling and the phone's own RTP work; BYE
    ends it (no pinhole left for the next call on the phone's port)."""
    p1, bob = flows.phone(flows.PHONE1), flows.remote(flows.PROXY, name="bob")
    c = flows.Call(p1, bob, 16500)

    def fn():
        c.setup()
        flows.drain(c.phone_rtp)
        flows.send_rtp(c.remote_rtp, c.pub_media)
        n, _, _ = flows.count_rtp(c.phone_rtp)
        check(n == 0, "the remote sent %d RTP first to %s:%d and the phone received %d: the "
              "forward policy does not drop it" % ((flows.RTP_N,) + tuple(c.pub_media) + (n,)))
        flows.media_phone_symmetric(c.phone_rtp, (c.remote_media_ip, c.remote_rtp_port),
                                    c.remote_rtp, c.pub_media, "blocked: phone's RTP")
        c.bye_from_phone()
    result("the forward policy drops the remote-first RTP of a call (signalling and the "
           "phone's RTP work)", fn)
    flows.close_all_sockets()


def step_tcp():
    """SIP over TCP, the registrar's new connection back (tcp.py in-provider / in-phone,
    as tcp.sh runs them): the phone registers over TCP and closes, the provider calls
    its public Contact on a new connection, which reaches the daemon's relay as input
    to the router (TPROXY): the tool's input policy must let it in."""
    def fn():
        here = os.path.dirname(os.path.abspath(__file__))
        out = "/tmp/salg-fw-tcp-%s.json" % A.id
        prov = subprocess.Popen(["timeout", "30", "ip", "netns", "exec", flows.NS["wan"], sys.executable,
                                 os.path.join(here, "tcp.py"), "in-provider", out],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(0.3)
        ph = subprocess.run(["timeout", "30", "ip", "netns", "exec", flows.NS["lan"], sys.executable,
                             os.path.join(here, "tcp.py"), "in-phone"], capture_output=True, text=True)
        pout, _ = prov.communicate(timeout=40)
        try:
            os.unlink(out)
        except OSError:
            pass
        bad = [ln for ln in (pout + ph.stdout + ph.stderr).splitlines() if "FAIL" in ln or "not ok" in ln]
        check(prov.returncode == 0 and ph.returncode == 0,
              "provider exit %d, phone exit %d: %s" % (prov.returncode, ph.returncode, bad[:3] or
                                                       (pout + ph.stdout)[-300:]))
    result("SIP/TCP: the registrar's new connection to the phone's public Contact is relayed", fn)


def step_event(ev):
    p1, bob = flows.phone(flows.PHONE1), flows.remote(flows.PROXY, name="bob")
    held = flows.Call(p1, bob, 17000 + 10 * (sum(map(ord, ev)) % 50))
    state = {}

    def before():
        held.setup()
        held.media_both("%s: held call before" % ev)
        state["c0"] = counters()
    result("%s: call set up and held, RTP both ways" % ev, before)
    if "c0" not in state:
        flows.close_all_sockets()
        return

    def fwd_warnings():
        with open(A.log, errors="replace") as f:
            return sum(1 for ln in f if "firewall: the forward policy of" in ln)

    def during():
        w0 = fwd_warnings()
        sn = Sniffer()
        load = Load(300)
        media = Media(held)
        sn.start()
        load.start()
        media.start()
        try:
            time.sleep(0.8)
            t0 = time.monotonic()
            hook(ev)
            t1 = time.monotonic()
            wait_rules(ev)
            # the stream runs on through the reloaded rules; the daemon looks at the
            # forward policy once the ruleset has been quiet for a second
            time.sleep(1.5)
        finally:
            load.finish()
            media.finish()
            sn.finish()
        c = counters()
        c0 = state["c0"]
        lost = load.lost()
        print("# figure %s: held call's RTP remote -> phone at 50/s during it: %d sent, %d "
              "arrived, longest gap %.0f ms" % (ev, media.sent, media.got, media.gap * 1000))
        print("# figure %s: reload took %.0f ms; %d OPTIONS sent, %d arrived, %d lost for good; "
              "internet side saw %d packets, %d with a LAN address; rules_restored +%d, "
              "guard_dropped +%d, forward_drops_dnat %d"
              % (ev, (t1 - t0) * 1000, load.sent, load.got, len(lost), sn.seen, sn.leaks,
                 c["rules_restored"] - c0["rules_restored"],
                 c.get("guard_dropped", 0) - c0.get("guard_dropped", 0), c.get("forward_drops_dnat", -1)))
        check(sn.leaks == 0, "%d packets on the internet side carried a LAN address (first: %r)"
              % (sn.leaks, sn.first))
        check(load.leaked == 0, "%d OPTIONS arrived with a LAN address" % load.leaked)
        check(not lost, "%d of %d requests never arrived: %s" % (len(lost), load.new, lost[:8]))
        # The policy let DNAT'ed media in before and after: a reload's intermediate
        # states (ufw's flushed chains, firewalld's firewalld_policy_drop table) are no
        # reason to tell the admin to add a rule.
        w = fwd_warnings() - w0
        check(w == 0 or state["c0"].get("forward_drops_dnat", 0) or c.get("forward_drops_dnat", 0),
              "%d forward-policy warnings logged during a reload that left the policy accepting "
              "DNAT'ed media (%s)" % (w, A.log))
    result("%s under load: rules there afterwards, nothing private on the internet side, "
           "no request lost" % ev, during)

    def after():
        held.media_both("%s: held call after" % ev)
        held.bye_from_phone()
    result("%s: the held call's RTP flows both ways, BYE ends it" % ev, after)
    flows.close_all_sockets()
    step_call()


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument("--ns", required=True, help="namespace prefix: NS-lan-ID, NS-rtr-ID, NS-wan-ID")
    ap.add_argument("--id", required=True)
    ap.add_argument("--ctl", required=True)
    ap.add_argument("--sock", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--hook", required=True)
    ap.add_argument("--part", required=True)
    ap.add_argument("--log", required=True, help="the daemon's log")
    ap.add_argument("steps", nargs="+")
    A = ap.parse_args()
    for side in ("lan", "rtr", "wan", "lan2"):
        flows.NS[side] = "%s-%s-%s" % (A.ns, side, A.id)
    for s in A.steps:
        k, _, v = s.partition("=")
        if k == "status":
            step_status(v)
        elif k == "call":
            step_call()
        elif k == "tcp":
            step_tcp()
        elif k == "blocked":
            step_blocked()
        elif k == "event":
            step_event(v)
        elif k == "do":
            result("the admin: %s" % v, lambda: hook(v))
        else:
            print("not ok - unknown step %s" % s)
            RESULTS[1] += 1
    print("%d passed, %d failed" % tuple(RESULTS))
    return 1 if RESULTS[1] else 0


if __name__ == "__main__":
    sys.exit(main())
