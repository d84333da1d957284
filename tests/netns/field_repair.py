#!/usr/bin/python3
"""sipalgd netns lab: a firewall reload repairs itself (issue 8, point 2).

Driven by field-repair.sh, which built the lab and started the daemon:

  field_repair.py --id ID --pid DAEMON_PID --ctl SIPALGCTL --sock SOCK --table T
                  --fw FILE [--guard] EVENT...

EVENT is one of flush, mangle, deltable, swap, requeue (run_requeue: an INVITE held in the
queue while the operator adds a forward chain at priority mangle). For the others:
  1. a call is set up and held, with RTP both ways; its map elements are listed;
  2. under a continuous OPTIONS stream from the LAN (~300/s), the event is applied
     while the daemon runs; we wait (bounded) for rules_restored to grow, then count the
     datagrams that reached the WAN side carrying a LAN address (leaked);
  3. the rules are back (nft/iptables listings), the held call's elements are back in
     the maps and its RTP flows both ways again, status is ok;
  4. with the daemon stopped (SIGSTOP) the event is applied again and `sipalgctl status`
     is asked before the daemon runs again: it must exit non-zero naming what is missing
     (deterministic: the daemon serves the control socket before the firewall events);
  5. the held call ends with BYE, and a new call is rewritten with RTP both ways.
Prints `ok`/`not ok` per check, then `N passed, N failed`; exit 1 on a failure.
Figures (leaks, repair time) are printed as `# figure ...` lines.
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flows  # noqa: E402  (the lab's UAs and checks)
from flows import Fail, check  # noqa: E402

A = None
RESULTS = [0, 0]


def rtr(*cmd, inp=None, ok=True):
    p = subprocess.run(["ip", "netns", "exec", flows.NS["rtr"]] + list(cmd), input=inp,
                       capture_output=True, text=True, timeout=20)
    if ok and p.returncode != 0:
        raise Fail("`%s` failed: %s" % (" ".join(cmd), p.stderr.strip()))
    return p


def counters():
    p = rtr(A.ctl, "-s", A.sock, "counters")
    return {k: int(v) for k, v in (ln.split() for ln in p.stdout.splitlines() if len(ln.split()) == 2)}


def wait_restored(before, what, limit=5.0):
    """Wait (bounded) until rules_restored grew past `before`; returns the counters."""
    deadline = time.monotonic() + limit
    while True:
        c = counters()
        if c["rules_restored"] > before:
            return c
        if time.monotonic() > deadline:
            raise Fail("%s: rules_restored stayed %d for %.0f s (log: %s)"
                       % (what, c["rules_restored"], limit, A.log))
        time.sleep(0.05)


ELEM_RE = re.compile(r"([\d.]+ \. \d+|\d+) : ([\d.]+ \. \d+)")


def elements():
    out = {}
    for m in ("out4", "in_peer", "in_any", "in_lan"):
        p = rtr("nft", "list", "map", "ip", A.table, m, ok=False)
        out[m] = set(ELEM_RE.findall(p.stdout)) if p.returncode == 0 else set()
    return out


def rules_present():
    """What a listing shows: our table's chains and the diversion."""
    t = rtr("nft", "list", "table", "ip", A.table, ok=False)
    ipt = rtr("iptables", "-w", "5", "-t", "mangle", "-S", ok=False).stdout
    chain = A.table.upper()
    have = {
        "table": t.returncode == 0 and "chain pre" in t.stdout and "chain post" in t.stdout
        and t.stdout.count(" dnat ip to ") == 3 and t.stdout.count(" snat ip to ") == 2,
        "jump": ("-A FORWARD -p udp -j %s" % chain) in ipt,
        # four queue rules (plus the fast path's mark test first, when on)
        "divert": sum(1 for l in ipt.splitlines()
                      if l.startswith("-A %s " % chain) and "-j NFQUEUE" in l) == 4,
    }
    return have


def apply(event):
    if event == "flush":
        # nftables.service stop + start: the whole ruleset goes, the router's rules come back
        rtr("nft", "flush", "ruleset")
        rtr("nft", "-f", A.fw)
    elif event == "mangle":
        rtr("iptables", "-w", "5", "-t", "mangle", "-F")
    elif event == "deltable":
        rtr("nft", "delete", "table", "ip", A.table)
    elif event == "swap":
        # One transaction that swaps every table: `flush ruleset`, the router's rules, and a
        # stale copy of our own table (a saved ruleset restored): no diversion, our table
        # replaced by one whose elements are old.
        with open(A.fw) as f:
            fw = f.read()
        rtr("nft", "-f", "-", inp="flush ruleset\n" + fw + "\n" + STALE[0])
    else:
        raise Fail("unknown event " + event)


STALE = [""]


class Load:
    """~rate datagrams/s from a LAN phone to a WAN host: new OPTIONS at a third of the
    rate, each retransmitted 0.5 s and 1.5 s later (RFC 3261 timer E: T1, then 2*T1).
    The WAN side counts what arrives, how much of it carries a LAN address, and which
    requests arrived at least once (nothing may be lost for good: a request the guard
    dropped during the reload must get through on a retransmission)."""

    RETX = (0.5, 1.5)

    def __init__(self, rate=300):
        self.tx = flows.udp_socket("lan", flows.PHONE2, 5062)
        self.rx = flows.udp_socket("wan", flows.OTHER, 5060)
        self.rx.settimeout(0.1)
        self.rate, self.sent, self.got, self.leaked = rate, 0, 0, 0
        self.leak_times = []
        self.new = 0                # requests sent (ids 1..new)
        self.arrived = set()        # ids that reached the WAN side
        self.stop = threading.Event()

    @staticmethod
    def _msg(i):
        if i % 10 == 0:
            # every tenth request an INVITE with SDP: new dialogs under way during the
            # reload (one queued twice would leave a dialog keyed by our public Call-ID)
            sdp = ("v=0\r\no=- %d 1 IN IP4 192.168.77.11\r\ns=-\r\nc=IN IP4 192.168.77.11\r\n"
                   "t=0 0\r\nm=audio %d RTP/AVP 0\r\n" % (i, 30000 + 2 * (i % 500)))
            return ("INVITE sip:load@203.0.113.30 SIP/2.0\r\n"
                    "Via: SIP/2.0/UDP 192.168.77.11:5062;branch=z9hG4bKload%d\r\n"
                    "Max-Forwards: 70\r\nFrom: <sip:load@192.168.77.11>;tag=l%d\r\n"
                    "To: <sip:load@203.0.113.30>\r\nCall-ID: load%d@192.168.77.11\r\n"
                    "CSeq: 1 INVITE\r\nContact: <sip:load@192.168.77.11:5062>\r\n"
                    "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s"
                    % (i, i, i, len(sdp), sdp)).encode()
        return ("OPTIONS sip:load@203.0.113.30 SIP/2.0\r\n"
                "Via: SIP/2.0/UDP 192.168.77.11:5062;branch=z9hG4bKload%d\r\n"
                "Max-Forwards: 70\r\nFrom: <sip:load@192.168.77.11>;tag=l%d\r\n"
                "To: <sip:load@203.0.113.30>\r\nCall-ID: load%d@192.168.77.11\r\n"
                "CSeq: 1 OPTIONS\r\nContact: <sip:load@192.168.77.11:5062>\r\n"
                "Content-Length: 0\r\n\r\n" % (i, i, i)).encode()

    def _send(self):
        gap = 3.0 / self.rate
        due = []                    # (time, id) of retransmissions, in time order
        t0 = t_next = time.monotonic()
        # bounded: ~20 s of new requests, then the last retransmissions
        while (not self.stop.is_set() and self.new < 20 * self.rate // 3) or due:
            now = time.monotonic()
            if now > t0 + 30:
                break
            if not self.stop.is_set() and self.new < 20 * self.rate // 3:
                self.new += 1
                batch = [self.new]
                due.extend((now + d, self.new) for d in self.RETX)
                due.sort()
            else:
                batch = []
            while due and due[0][0] <= now:
                batch.append(due.pop(0)[1])
            for i in batch:
                try:
                    self.tx.sendto(self._msg(i), (flows.OTHER, 5060))
                    self.sent += 1
                except OSError:
                    pass
            t_next += gap
            d = t_next - time.monotonic()
            if d > 0:
                time.sleep(d)

    def _recv(self):
        while True:
            try:
                data, _ = self.rx.recvfrom(65535)
            except socket.timeout:
                if self.stop.is_set() and not self.sender.is_alive():
                    return
                continue
            except OSError:
                return
            self.got += 1
            m = re.search(rb"Call-ID: load(\d+)@", data)
            if m:
                self.arrived.add(int(m.group(1)))
            if flows.LAN_PREFIX in data:
                self.leaked += 1
                self.leak_times.append(time.monotonic())

    def lost(self):
        return sorted(set(range(1, self.new + 1)) - self.arrived)

    def start(self):
        self.sender = threading.Thread(target=self._send)
        self.threads = [self.sender, threading.Thread(target=self._recv)]
        for t in self.threads:
            t.start()

    def finish(self):
        """Stop new requests; the pending retransmissions go out (1.5 s at most)."""
        self.stop.set()
        for t in self.threads:
            t.join(5)


def result(name, fn):
    try:
        fn()
        print("ok - %s" % name)
        RESULTS[0] += 1
    except Fail as e:
        print("not ok - %s: %s" % (name, str(e).replace("\n", " ")))
        RESULTS[1] += 1
    except Exception as e:  # a bug in the lab itself
        print("not ok - %s: lab error: %s: %s" % (name, type(e).__name__, e))
        RESULTS[1] += 1
    sys.stdout.flush()


def status_while_stopped(event):
    """SIGSTOP the daemon, apply the event, ask `sipalgctl status` and make sure the request
    is in the daemon's socket before SIGCONT: the daemon answers it before it reads the
    firewall events of the same poll round, so the answer describes the broken ruleset."""
    os.kill(A.pid, signal.SIGSTOP)
    try:
        apply(event)
        p = subprocess.Popen(["ip", "netns", "exec", flows.NS["rtr"], A.ctl, "-s", A.sock, "status"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # sipalgctl sends, then waits in poll() for the answer: once it sleeps in poll,
        # the request is queued (bounded wait, 2 s).
        deadline = time.monotonic() + 2.0
        waiting = False
        while time.monotonic() < deadline and not waiting:
            try:
                kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                                      text=True).stdout.split()
                for k in [str(p.pid)] + kids:
                    with open("/proc/%s/comm" % k) as f:
                        comm = f.read().strip()
                    with open("/proc/%s/wchan" % k) as f:
                        wchan = f.read()
                    if comm == "sipalgctl" and "poll" in wchan:
                        waiting = True
            except OSError:
                pass
            time.sleep(0.01)
    finally:
        os.kill(A.pid, signal.SIGCONT)
    out, _ = p.communicate(timeout=5)
    check(waiting, "sipalgctl status never reached its wait for the answer")
    check(p.returncode != 0, "status exited %d while rules were missing: %s" % (p.returncode, out.strip()))
    check(out.startswith("missing "), "status answer does not say what is missing: %r" % out.strip())
    print("# status while missing (%s): %s" % (event, out.strip().split(";")[0]))


def run_event(event):
    p1, bob = flows.phone(flows.PHONE1), flows.remote(flows.PROXY, name="bob")
    held = flows.Call(p1, bob, 17000 + 10 * len(event))
    state = {}

    def before():
        held.setup()
        held.media_both("%s: held call before" % event)
        state["el"] = elements()
        check(held.pub_media and any(str(held.pub_media[1]) in k for k, _ in state["el"]["in_peer"]),
              "the held call's pinhole %s is not in in_peer" % (held.pub_media,))
        state["c0"] = counters()
    result("%s: call set up and held, RTP both ways" % event, before)
    if "c0" not in state:
        return

    def under_load():
        load = Load(A.rate)
        load.start()
        try:
            time.sleep(1.0)           # the stream is flowing
            t0 = time.monotonic()
            apply(event)
            c = wait_restored(state["c0"]["rules_restored"], event)
            t1 = time.monotonic()
            time.sleep(0.5)           # the stream runs on through the repaired rules
        finally:
            load.finish()             # also when the repair never came: bounded
        state["c1"] = c
        c2 = counters()
        win = [t - t0 for t in load.leak_times]
        lost = load.lost()
        print("# figure %s: %d OPTIONS datagrams sent at %d/s (%d requests, each retransmitted "
              "twice), %d arrived, %d leaked with a LAN address (%s), guard_dropped +%d, "
              "%d requests lost for good, repair %d ms (daemon: first event -> rules back), "
              "restored seen after %.0f ms"
              % (event, load.sent, A.rate, load.new, load.got, load.leaked,
                 "within %.0f..%.0f ms of the event" % (min(win) * 1000, max(win) * 1000) if win else "none",
                 c2.get("guard_dropped", 0) - state["c0"].get("guard_dropped", 0), len(lost),
                 c["rules_repair_ms"], (t1 - t0) * 1000))
        check(load.got > 0.8 * load.sent - 2 * A.rate * 2.0,
              "only %d of %d OPTIONS arrived" % (load.got, load.sent))
        # a retransmission gets through once the diversion is back: nothing lost for good
        check(not lost, "%d of %d requests never arrived (not even retransmitted): %s"
              % (len(lost), load.new, lost[:8]))
        if A.guard:
            check(load.leaked == 0, "%d datagrams left with a LAN address" % load.leaked)
        else:
            # No drop survives the flush on this kernel (docs/limits.md): the window is
            # bounded, not closed. A second of the stream is far above the ~25 ms seen.
            check(load.leaked < A.rate, "%d datagrams left with a LAN address: the window "
                  "lasted about a second or more" % load.leaked)
    result("%s under load: repaired, rules_restored counted" % event, under_load)

    def back():
        have = rules_present()
        check(all(have.values()), "after repair, missing in the listings: %s"
              % [k for k, v in have.items() if not v])
        el = elements()
        for m in ("out4", "in_peer", "in_any", "in_lan"):
            lost = state["el"][m] - el[m]
            check(not lost, "map %s lost %s" % (m, sorted(lost)[:4]))
        held.media_both("%s: held call after repair" % event)
        st = rtr(A.ctl, "-s", A.sock, "status", ok=False)
        check(st.returncode == 0 and st.stdout.startswith("ok "), "status after repair: %s" % st.stdout.strip())
    result("%s: rules, bindings and pinholes back, held call's RTP both ways" % event, back)

    def stopped():
        c = counters()
        status_while_stopped(event)
        wait_restored(c["rules_restored"], event + " (after SIGCONT)")
        st = rtr(A.ctl, "-s", A.sock, "status", ok=False)
        check(st.returncode == 0, "status after the second repair: %s" % st.stdout.strip())
    result("%s: sipalgctl status non-zero while missing" % event, stopped)

    def after():
        held.media_both("%s: held call after the second repair" % event)
        held.bye_from_phone()
        flows.call_3_1()
    result("%s: held call ends, a new call is rewritten with RTP both ways" % event, after)
    flows.close_all_sockets()


def queued_total(qnum):
    """Packets waiting in queue qnum of the router's namespace (nfnetlink_queue's table)."""
    p = rtr("cat", "/proc/net/netfilter/nfnetlink_queue", ok=False)
    for ln in p.stdout.splitlines():
        f = ln.split()
        if len(f) > 2 and f[0] == str(qnum):
            return int(f[2])
    return 0


def run_requeue():
    """The operator reloads a ruleset with a forward chain at priority mangle (fw4's
    mangle_forward) while the daemon holds an INVITE. The kernel resumes the accepted INVITE
    by position in the forward hook's list, which the new chain shifted: the diversion runs
    again on the datagram we rewrote. The daemon must know its own bytes: the INVITE leaves
    once, rewritten, sip_requeued +1, and no dialog is keyed by our public Call-ID.
    Deterministic: the daemon is stopped while the INVITE waits in the queue."""
    def fn():
        c0 = counters()
        tx = flows.udp_socket("lan", flows.PHONE2, 5066)
        rx = flows.udp_socket("wan", flows.OTHER, 5060)
        rx.settimeout(0.2)
        cid = "requeue%d@%s" % (os.getpid(), flows.PHONE2)
        sdp = ("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
               "m=audio 31000 RTP/AVP 0\r\n" % (flows.PHONE2, flows.PHONE2))
        inv = ("INVITE sip:rq@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s:5066;branch=z9hG4bKrq1\r\n"
               "Max-Forwards: 70\r\nFrom: <sip:rq@%s>;tag=rq1\r\nTo: <sip:rq@%s>\r\n"
               "Call-ID: %s\r\nCSeq: 1 INVITE\r\nContact: <sip:rq@%s:5066>\r\n"
               "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s"
               % (flows.OTHER, flows.PHONE2, flows.PHONE2, flows.OTHER, cid, flows.PHONE2,
                  len(sdp), sdp)).encode()
        qnum = A.queue
        os.kill(A.pid, signal.SIGSTOP)
        try:
            q0 = queued_total(qnum)
            tx.sendto(inv, (flows.OTHER, 5060))
            deadline = time.monotonic() + 3.0
            while queued_total(qnum) <= q0 and time.monotonic() < deadline:
                time.sleep(0.01)
            check(queued_total(qnum) > q0, "the INVITE never waited in queue %d" % qnum)
            rtr("nft", "-f", "-", inp="table ip salg_op_reload {\n chain mangle_forward {\n"
                "  type filter hook forward priority mangle; policy accept;\n }\n}\n")
        finally:
            os.kill(A.pid, signal.SIGCONT)
        got = []
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and not got:
            try:
                got.append(rx.recvfrom(65535)[0])
            except socket.timeout:
                pass
        time.sleep(0.3)             # a second copy, if one were sent, would be here by now
        try:
            while True:
                got.append(rx.recvfrom(65535)[0])
        except socket.timeout:
            pass
        rtr("nft", "delete", "table", "ip", "salg_op_reload", ok=False)
        check(len(got) == 1, "the INVITE arrived %d times at the WAN side" % len(got))
        check(flows.LAN_PREFIX not in got[0], "the INVITE left with a LAN address")
        c1 = counters()
        rq = c1.get("sip_requeued", 0) - c0.get("sip_requeued", 0)
        print("# figure requeue: sip_requeued +%d, pinholes_refused +%d" %
              (rq, c1["pinholes_refused"] - c0["pinholes_refused"]))
        check(rq == 1, "sip_requeued +%d, want +1 (the INVITE came back once)" % rq)
        d = rtr(A.ctl, "-s", A.sock, "--json", "dialogs").stdout
        ids = re.findall(r'"call_id":"([^"]*)"', d)
        check(cid in ids, "no dialog for %s: %s" % (cid, ids[:6]))
        ghost = [i for i in ids if i.startswith("requeue") and re.search(re.escape(flows.PUB) + r"(?!\d)", i)]
        check(not ghost, "a ghost dialog keyed by the public Call-ID: %s" % ghost)
        check(c1["pinholes_refused"] == c0["pinholes_refused"], "pinholes_refused grew")
    result("requeue: an INVITE held while the operator adds a forward chain at priority "
           "mangle leaves once, no ghost dialog, sip_requeued +1", fn)
    flows.close_all_sockets()


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument("--id", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--ctl", required=True)
    ap.add_argument("--sock", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--fw", required=True, help="the router's own ruleset file")
    ap.add_argument("--log", default="")
    ap.add_argument("--rate", type=int, default=300)
    ap.add_argument("--queue", type=int, default=7, help="the daemon's queue.number")
    ap.add_argument("--guard", action="store_true", help="assert that nothing leaks")
    ap.add_argument("events", nargs="+")
    A = ap.parse_args()
    for side in ("lan", "rtr", "wan"):
        flows.NS[side] = "salg-%s-%s" % (side, A.id)
    STALE[0] = rtr("nft", "list", "table", "ip", A.table).stdout
    for ev in A.events:
        if ev == "requeue":
            run_requeue()
        else:
            run_event(ev)

    def no_ghost():
        # A message queued twice during a repair (its second pass sees our own rewrite)
        # must not leave a dialog keyed by the public Call-ID: every Call-ID the lab's
        # phones write names their LAN address, never the router's public one.
        d = rtr(A.ctl, "-s", A.sock, "--json", "dialogs").stdout
        ids = re.findall(r'"call_id":"([^"]*)"', d)
        ghost = [i for i in ids if re.search(re.escape(flows.PUB) + r"(?!\d)", i)]
        c = counters()
        print("# dialogs after the events: %d, keyed by the public address: %d, "
              "sip_requeued %d" % (len(ids), len(ghost), c.get("sip_requeued", -1)))
        check(not ghost, "dialogs keyed by a public Call-ID: %s" % ghost[:4])
    result("no dialog keyed by a public Call-ID after the reloads", no_ghost)
    print("%d passed, %d failed" % tuple(RESULTS))
    return 1 if RESULTS[1] else 0


if __name__ == "__main__":
    sys.exit(main())
