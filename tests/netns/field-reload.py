#!/usr/bin/python3
"""field-reload.py: the SIP side of tests/netns/field-reload.sh (stdlib only, root).

  field-reload.py --id ID call PORT      a call phone1:PORT -> proxy:PORT, rewritten, RTP both
                                         ways, BYE rewritten: PORT is diverted to sipalgd
  field-reload.py --id ID plain PORT     an INVITE phone1:PORT -> proxy:PORT arrives with the
                                         phone's private address in it: PORT is NOT diverted
  field-reload.py --id ID burst PORT N   N out-of-dialog OPTIONS phone2:PORT -> proxy:PORT at
                                         once; prints `received K` (what reached the WAN side)
  field-reload.py --id ID streams PORT N an INVITE phone1:PORT -> proxy:PORT offering N audio
                                         streams; prints `refused K` (streams the WAN side sees
                                         with port 0), then answers 486
  field-reload.py --id ID leak PORT SECS OPTIONS every 2 ms for SECS; prints `sent S received R
                                         unrewritten U` (U: crossed with a private address)

Exit 0 when the step's check holds, 1 with the reason otherwise. The lab's own
helpers (flows.py: setns, UAs, checks on the bytes that arrive) do the work.
"""
import importlib.util
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("flows", os.path.join(HERE, "flows.py"))
flows = importlib.util.module_from_spec(spec)
spec.loader.exec_module(flows)
F = flows


def call(port):
    p1 = F.phone(F.PHONE1, port)
    bob = F.remote(F.PROXY, port, name="bob")
    c = F.Call(p1, bob, 16400)
    c.dlg.remote_target = "sip:bob@%s:%d" % (F.PROXY, port)
    c.inv_raw = c.dlg.invite(c.offer)
    p1.send(c.inv_raw, (F.PROXY, port))
    c.wan_invite("INVITE on port %d" % port)
    c.answer()
    c.phone_gets_final()
    raw = c.dlg.ack()
    p1.send(raw, (F.PROXY, port))
    m, _ = bob.recv_req("ACK", c.dlg.callid)
    F.check_outbound(raw, m, "ACK on port %d" % port)
    c.media_both("RTP of the call on port %d" % port)
    raw = c.dlg.bye()
    p1.send(raw, (F.PROXY, port))
    m, src = bob.recv_req("BYE", c.dlg.callid)
    F.check_outbound(raw, m, "BYE on port %d" % port)
    bob.send(F.response(m, 200, "OK"), src)
    p1.recv_resp(200, c.dlg.callid, "BYE")


def plain(port):
    p1 = F.phone(F.PHONE1, port)
    bob = F.remote(F.PROXY, port, name="bob")
    d = F.Dialog(F.PHONE1, port)
    raw = d.invite(F.sdp_body(F.PHONE1, [16500], origin=F.PHONE1))
    p1.send(raw, (F.PROXY, port))
    m, src = bob.recv_req("INVITE", d.callid)
    F.check(F.LAN_PREFIX in m.raw,
            "INVITE on port %d arrived rewritten (no %r in it): the port is still diverted"
            % (port, F.LAN_PREFIX.decode()))
    F.check(m.raw == raw, "INVITE on port %d arrived changed but not through sipalgd" % port)


def burst(port, n):
    p2 = F.phone(F.PHONE2, port)
    bob = F.remote(F.PROXY, port, name="bob")
    cids = []
    for i in range(n):
        cid = F.uniq("opt") + "@field-reload"
        cids.append(cid)
        raw = F.sip(["OPTIONS sip:bob@biloxi.example.com SIP/2.0",
                     "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%s" % (F.PHONE2, port, F.uniq()),
                     "Max-Forwards: 70", "From: <sip:carol@atlanta.example.com>;tag=" + F.uniq("t"),
                     "To: <sip:bob@biloxi.example.com>", "Call-ID: " + cid, "CSeq: 1 OPTIONS"])
        p2.send(raw, (F.PROXY, port))
    got = 0
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline and got < n:
        m, _ = bob.recv(lambda m: m.is_request and m.method == "OPTIONS", timeout=0.8, must=False)
        if m is None:
            break
        got += 1
    print("received %d" % got)


def streams(port, n):
    p1 = F.phone(F.PHONE1, port)
    bob = F.remote(F.PROXY, port, name="bob")
    d = F.Dialog(F.PHONE1, port)
    raw = d.invite(F.sdp_body(F.PHONE1, [16600 + 2 * i for i in range(n)], origin=F.PHONE1))
    p1.send(raw, (F.PROXY, port))
    m, src = bob.recv_req("INVITE", d.callid)
    print("refused %d" % m.raw.count(b"\r\nm=audio 0 "))
    # end the call attempt: nothing of it stays open
    bob.send(F.response(m, 486, "Busy Here"), src)
    p1.recv_resp(486, d.callid, "INVITE")


def leak(port, seconds):
    """OPTIONS phone1:PORT -> proxy:PORT every 2 ms for `seconds`; count what arrives and
    how much of it still carries the phone's private address (crossed unqueued)."""
    p1 = F.phone(F.PHONE1, port)
    bob = F.remote(F.PROXY, port, name="bob")
    sent = got = plain = 0
    end = time.monotonic() + seconds
    while True:
        now = time.monotonic()
        if now < end:
            raw = F.sip(["OPTIONS sip:bob@biloxi.example.com SIP/2.0",
                         "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%s" % (F.PHONE1, port, F.uniq()),
                         "Max-Forwards: 70", "From: <sip:alice@atlanta.example.com>;tag=" + F.uniq("t"),
                         "To: <sip:bob@biloxi.example.com>", "Call-ID: " + F.uniq("lk"),
                         "CSeq: 1 OPTIONS"])
            p1.sock.sendto(raw, (F.PROXY, port))
            sent += 1
        elif now > end + 1.0:
            break
        while True:
            r, _, _ = F.select.select([bob.sock], [], [], 0.002)
            if not r:
                break
            data, _ = bob.sock.recvfrom(65535)
            got += 1
            if F.LAN_PREFIX in data:
                plain += 1
    print("sent %d received %d unrewritten %d" % (sent, got, plain))


def main():
    a = sys.argv[1:]
    if len(a) < 4 or a[0] != "--id":
        print(__doc__, file=sys.stderr)
        return 2
    for side in ("lan", "rtr", "wan"):
        F.NS[side] = "salg-%s-%s" % (side, a[1])
    step, args = a[2], a[3:]
    try:
        if step == "call":
            call(int(args[0]))
        elif step == "plain":
            plain(int(args[0]))
        elif step == "leak":
            leak(int(args[0]), float(args[1]))
        elif step == "streams":
            streams(int(args[0]), int(args[1]))
        elif step == "burst":
            burst(int(args[0]), int(args[1]))
        else:
            print("unknown step %s" % step, file=sys.stderr)
            return 2
    except F.Fail as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        F.close_all_sockets()
    return 0


if __name__ == "__main__":
    sys.exit(main())
