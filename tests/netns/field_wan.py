#!/usr/bin/env python3
"""tests/netns/field_wan.py: the WAN address changes under running calls (issue 8, point 1).
Run by field-wan.sh inside the lab it built; reuses flows.py's UAs, calls and checks.
Environment: LAB_ID, NS_RTR, LAB_CONF, LAB_DAEMON_PID, LAB_CTL, LAB_SOCK.
Prints TAP-ish lines and `N passed, N failed` last."""
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flows  # noqa: E402
from flows import (Call, Fail, check, phone, remote, register, inbound_invite, Reg, sdp_body,  # noqa: E402
                   response, check_outbound, check_inbound_response, media_remote_first,
                   media_phone_symmetric, PHONE1, PHONE2, PROXY, uniq, close_all_sockets)

LID = os.environ["LAB_ID"]
for side in ("lan", "rtr", "wan"):
    flows.NS[side] = "salg-%s-%s" % (side, LID)
RTR, WAN = flows.NS["rtr"], flows.NS["wan"]
A1, A2, A3 = "203.0.113.1", "203.0.113.2", "198.51.100.7"


def sh(*cmd):
    r = subprocess.run(list(cmd), capture_output=True, text=True)
    if r.returncode != 0:
        raise Fail("%s: %s" % (" ".join(cmd), r.stderr.strip()))
    return r.stdout


def counters():
    out = sh("ip", "netns", "exec", RTR, os.environ["LAB_CTL"], "-s", os.environ["LAB_SOCK"], "counters")
    return {k: int(v) for k, v in (l.split() for l in out.splitlines() if len(l.split()) == 2)}


def wait_changes(before, n, what):
    """The daemon must have seen n more address changes within 1 s."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.0:
        if counters()["wan_address_changes"] >= before + n:
            return time.monotonic() - t0
        time.sleep(0.05)
    raise Fail("%s: wan_address_changes did not rise by %d within 1 s (%d -> %d)"
               % (what, n, before, counters()["wan_address_changes"]))


def nothing_of(addr, what):
    """No conntrack entry and no element of our maps names `addr`."""
    ct = subprocess.run(["ip", "netns", "exec", RTR, "conntrack", "-L", "-p", "udp"],
                        capture_output=True, text=True).stdout
    bad = [l for l in ct.splitlines() if re.search(r"=%s\b" % re.escape(addr), l)]
    check(not bad, "%s: conntrack entries of the old address %s left: %s" % (what, addr, bad[:3]))
    nft = sh("ip", "netns", "exec", RTR, "nft", "list", "table", "ip", "sipalgd_lab")
    left = [l.strip() for l in nft.splitlines() if re.search(r"\b%s\b" % re.escape(addr), l)]
    check(not left, "%s: the nft table still names %s: %s" % (what, addr, left[:3]))


def set_pub(a):
    flows.PUB = a


def reinvite_media(c, what):
    """The phone re-INVITEs (same media); the offer carries the new address; media both ways."""
    body = sdp_body(PHONE1, [c.rtp_port], ver=int(time.time()) % 100000, origin=PHONE1)
    raw = c.dlg.reinvite(body)
    c.phone.send(raw, (c.remote.ip, 5060))
    m, src = c.remote.recv_req("INVITE", c.dlg.callid)
    info = check_outbound(raw, m, what + " re-INVITE")
    c.pub_media = info["media"][0]
    check(c.pub_media[0] == flows.PUB, "%s: re-INVITE media %s, want %s" % (what, c.pub_media, flows.PUB))
    ans = sdp_body(PROXY, [c.remote_rtp_port], sess="2890844527", ver=int(time.time()) % 100000 + 1, user="bob")
    ok = response(m, 200, "OK", ans, contact="<sip:bob@%s:5060>" % PROXY)
    c.remote.send(ok, src)
    got, _ = c.phone.recv_resp(200, c.dlg.callid, "INVITE")
    check_inbound_response(raw, ok, got, what + " 200 OK to re-INVITE")
    c.ack()
    c.media_both(what + " media after re-INVITE")


class IpCall:
    """A call whose Call-ID names the phone's private address (as many phones write it):
    at the WAN side it names the public address the call began with, and must keep naming
    it after the address changes (RFC 3261 12.2: the Call-ID identifies the dialog)."""

    def __init__(self, p1, reg, port):
        self.c = Call(p1, reg, port)
        self.tok = uniq("ipcid")
        self.c.dlg.callid = self.tok + "@" + PHONE1
        self.pub_cid = None

    def wan_recv(self, method):
        c = self.c
        m, src = c.remote.recv(lambda m: m.is_request and m.method == method and
                               m.callid.startswith(self.tok + "@"), what="%s request" % method)
        check(PHONE1 not in m.raw.decode("latin-1"), "%s left with %s in it" % (method, PHONE1))
        if self.pub_cid is None:
            self.pub_cid = m.callid
        check(m.callid == self.pub_cid, "%s: Call-ID %s at the WAN side, the dialog began as %s"
              % (method, m.callid, self.pub_cid))
        return m, src

    def offer(self, raw, what):
        """Send an INVITE/re-INVITE; answer it at the WAN side; ACK. Returns the public media."""
        c = self.c
        c.phone.send(raw, (c.remote.ip, 5060))
        m, src = self.wan_recv("INVITE")
        via = m.get("via")
        check(flows.PUB + ":" in via, "%s: Via %r, want %s" % (what, via, flows.PUB))
        pub_media = flows.Sdp(m.body).addr(0)
        check(pub_media[0] == flows.PUB, "%s: SDP media %s, want %s" % (what, pub_media, flows.PUB))
        ans = sdp_body(PROXY, [c.remote_rtp_port], sess="2890844527", ver=int(time.time()) % 100000,
                       user="bob")
        c.remote.send(response(m, 200, "OK", ans, to_tag=c.rtag, contact="<sip:bob@%s:5060>" % PROXY), src)
        got, _ = c.phone.recv_resp(200, c.dlg.callid, "INVITE")
        c.dlg.learn(got)
        c.phone.send(c.dlg.ack(), (c.remote.ip, 5060))
        self.wan_recv("ACK")
        c.pub_media = pub_media
        c.media_both(what)

    def setup(self):
        c = self.c
        self.offer(c.dlg.invite(c.offer), "IP Call-ID call")

    def reinvite(self, what):
        c = self.c
        body = sdp_body(PHONE1, [c.rtp_port], ver=int(time.time()) % 100000, origin=PHONE1)
        self.offer(c.dlg.reinvite(body), what)

    def bye(self):
        c = self.c
        c.phone.send(c.dlg.bye(), (c.remote.ip, 5060))
        m, src = self.wan_recv("BYE")
        c.remote.send(response(m, 200, "OK"), src)
        c.phone.recv_resp(200, c.dlg.callid, "BYE")


def full_checks(what, p1, reg):
    """New REGISTER carries the new address; an inbound call reaches the phone; a new call has
    media both ways and closes."""
    r = register(p1, reg)
    check(flows.PUB in r["pub"], "%s: re-REGISTER Contact %s, want %s" % (what, r["pub"], flows.PUB))
    inbound_invite(reg, r["pub"], Reg(p1, r["private"]), what=what + " inbound INVITE")
    c = Call(phone(PHONE2), reg, 17100 + int(time.time()) % 50 * 2)
    c.setup()
    c.media_both(what + " new call")
    c.bye_from_phone()


class Sniffer:
    """A raw socket on the wan namespace's eth0: every IPv4/UDP datagram that leaves the router."""

    def __init__(self):
        flows.setns(WAN)
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
        flows.setns(None)
        self.s.bind(("eth0", 0))
        self.s.settimeout(0.1)
        self.bad, self.n, self.stop = [], 0, False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        t0 = time.monotonic()
        while not self.stop and time.monotonic() - t0 < 30:
            try:
                pkt = self.s.recv(65535)
            except socket.timeout:
                continue
            if len(pkt) < 34 or pkt[14 + 9] != 17:
                continue
            src = socket.inet_ntoa(pkt[26:30])
            if src.startswith("203.0.113.1") and src != A1 and src != A2:
                continue
            if src in ("203.0.113.10", "203.0.113.20", "203.0.113.30"):
                continue   # sent by the wan side itself
            self.n += 1
            if src.startswith("192.168.") or b"192.168.77." in pkt:
                self.bad.append(src)

    def done(self):
        self.stop = True
        self.t.join()
        self.s.close()
        return self.n, self.bad


def part_a_b():
    """(a) address removed, another added; (b) the call in progress re-INVITEs."""
    set_pub(A1)
    p1, reg = phone(PHONE1), remote(PROXY, name="registrar")
    register(p1, reg)
    c = Call(p1, reg, 16500)
    c.setup()
    c.media_both("before the change")
    ic = IpCall(p1, reg, 16520)
    ic.setup()
    before = counters()["wan_address_changes"]
    sh("ip", "-n", RTR, "addr", "del", A1 + "/24", "dev", "wan")
    sh("ip", "-n", RTR, "addr", "add", A2 + "/24", "dev", "wan")
    dt = wait_changes(before, 2, "(a) %s -> %s" % (A1, A2))
    print("# (a) change seen after %.2f s" % dt)
    set_pub(A2)
    reinvite_media(c, "(b)")
    c.bye_from_phone()
    ic.reinvite("(b) call with an IP Call-ID, after re-INVITE")
    ic.bye()
    full_checks("(a)", p1, reg)
    nothing_of(A1, "(a)")


def part_c():
    """(c) the WAN interface deleted and re-created with the same name."""
    p1, reg = phone(PHONE1), remote(PROXY, name="registrar")
    before = counters()["wan_address_changes"]
    close_all_sockets()
    sh("ip", "-n", RTR, "link", "del", "wan")
    sh("ip", "-n", RTR, "link", "add", "wan", "type", "veth", "peer", "name", "eth0", "netns", WAN)
    for a in ("203.0.113.10", "203.0.113.20", "203.0.113.30"):
        sh("ip", "-n", WAN, "addr", "add", a + "/24", "dev", "eth0")
    sh("ip", "-n", WAN, "link", "set", "eth0", "up")
    sh("ip", "-n", RTR, "addr", "add", A1 + "/24", "dev", "wan")
    sh("ip", "-n", RTR, "link", "set", "wan", "up")
    dt = wait_changes(before, 2, "(c) wan re-created")
    print("# (c) change seen after %.2f s" % dt)
    time.sleep(0.5)  # veth carrier
    set_pub(A1)
    p1, reg = phone(PHONE1), remote(PROXY, name="registrar")
    full_checks("(c)", p1, reg)
    nothing_of(A2, "(c)")


def part_d():
    """(d) no address: LAN SIP dropped and counted, nothing private leaves."""
    c0 = counters()
    sh("ip", "-n", RTR, "addr", "del", A1 + "/24", "dev", "wan")
    # Keep a route, so only the ALG stands between the LAN and the wire.
    sh("ip", "-n", RTR, "route", "add", "203.0.113.0/24", "dev", "wan")
    wait_changes(c0["wan_address_changes"], 1, "(d) address removed")
    sn = Sniffer()
    p1, reg = phone(PHONE1), remote(PROXY, name="registrar")
    for _ in range(3):
        cid = uniq("nowan") + "@biloxi.example.com"
        raw = flows.register_msg(p1, cid, uniq("f"), 1, "z9hG4bK" + uniq(),
                                 "Contact: <sip:bob@%s:5060>" % PHONE1, 3600)
        p1.send(raw, (PROXY, 5060))
        got = reg.expect_nothing(cid, timeout=0.3)
        check(got is None, "(d) a REGISTER reached the registrar while the WAN had no address")
    n, bad = sn.done()
    d = counters()["drop_no_wan_address"] - c0["drop_no_wan_address"]
    print("# (d) drop_no_wan_address +%d, %d datagrams left the router, %d with a private address"
          % (d, n, len(bad)))
    check(d >= 3, "(d) drop_no_wan_address rose by %d, want >= 3" % d)
    check(not bad, "(d) datagrams left with a private address: %s" % bad[:3])
    before = counters()["wan_address_changes"]
    sh("ip", "-n", RTR, "route", "del", "203.0.113.0/24", "dev", "wan")
    sh("ip", "-n", RTR, "addr", "add", A1 + "/24", "dev", "wan")
    wait_changes(before, 1, "(d) address back")
    set_pub(A1)
    register(p1, reg)


def part_e():
    """(e) SIGHUP with wan.public_address set, then cleared again."""
    conf = os.environ["LAB_CONF"]
    text = open(conf).read()
    p1, reg = phone(PHONE1), remote(PROXY, name="registrar")
    try:
        hup = text.replace("wan: { interface: wan", "wan: { interface: wan, public_address: %s" % A3, 1)
        check(hup != text, "(e) lab.yaml changed: no 'wan: { interface: wan' line to add public_address to")
        open(conf, "w").write(hup)
        before = counters()["wan_address_changes"]
        os.kill(int(os.environ["LAB_DAEMON_PID"]), 1)
        wait_changes(before, 1, "(e) SIGHUP public_address %s" % A3)
        set_pub(A3)
        # an explicit address stays as set: the interface's changes are ignored
        before = counters()["wan_address_changes"]
        sh("ip", "-n", RTR, "addr", "del", A1 + "/24", "dev", "wan")
        sh("ip", "-n", RTR, "addr", "add", A2 + "/24", "dev", "wan")
        time.sleep(0.5)
        check(counters()["wan_address_changes"] == before,
              "(e) the interface's address change moved the explicit wan.public_address")
        sh("ip", "-n", RTR, "addr", "del", A2 + "/24", "dev", "wan")
        sh("ip", "-n", RTR, "addr", "add", A1 + "/24", "dev", "wan")
        cid = uniq("hup") + "@biloxi.example.com"
        raw = flows.register_msg(p1, cid, uniq("f"), 1, "z9hG4bK" + uniq(),
                                 "Contact: <sip:bob@%s:5060>" % PHONE1, 3600)
        p1.send(raw, (PROXY, 5060))
        m, _ = reg.recv_req("REGISTER", cid)
        check_outbound(raw, m, "(e) REGISTER with wan.public_address %s" % A3)
    finally:
        open(conf, "w").write(text)
    before = counters()["wan_address_changes"]
    os.kill(int(os.environ["LAB_DAEMON_PID"]), 1)
    wait_changes(before, 1, "(e) SIGHUP back to following the interface")
    set_pub(A1)
    register(p1, reg)


def main():
    passed = failed = 0
    for i, part in enumerate((part_a_b, part_c, part_d, part_e), 1):
        try:
            part()
            print("ok %d - %s" % (i, part.__doc__.split("\n")[0]))
            passed += 1
        except Fail as e:
            print("not ok %d - %s: %s" % (i, part.__name__, e))
            failed += 1
        except Exception as e:
            print("not ok %d - %s: lab error: %s: %s" % (i, part.__name__, type(e).__name__, e))
            failed += 1
        finally:
            close_all_sockets()
        sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
