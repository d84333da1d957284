#!/usr/bin/python3
"""sipalgd ops lab (issue 10): sipalgctl's answers checked on live calls.

  ops.py --id ID [case ...]

Every case builds its calls with flows.py's building blocks (Call, phone,
remote, send_rtp, count_rtp) and asserts on `sipalgctl ... --json` run in the
router namespace. Output: `ok N - case` / `not ok N - case: reason`.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flows  # noqa: E402
from flows import (Call, Fail, PHONE1, PROXY, OTHER, check, phone, remote,  # noqa: E402
                   send_rtp, count_rtp, drain, udp_socket, close_all_sockets)

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def ctl(*args, ok=True):
    """sipalgctl in the router namespace; returns (exit status, stdout)."""
    cmd = ["ip", "netns", "exec", flows.NS["rtr"], os.environ["LAB_CTL"], "-s",
           os.environ["LAB_SOCK"]] + list(args)
    r = subprocess.run(cmd, capture_output=True, timeout=5)
    if ok and r.returncode != 0:
        raise Fail("%s: exit %d: %s%s" % (" ".join(args), r.returncode, r.stdout.decode(errors="replace"),
                                        r.stderr.decode(errors="replace")))
    return r.returncode, r.stdout


def ctl_json(*args):
    _, out = ctl(*(list(args) + ["--json"]))
    try:
        return json.loads(out.decode("ascii"))
    except (ValueError, UnicodeDecodeError) as e:
        raise Fail("sipalgctl %s --json is not valid ASCII JSON (%s): %r" % (" ".join(args), e, out[:300]))


def call_view(callid):
    v = ctl_json("call", callid)
    check(isinstance(v.get("calls"), list) and v["calls"], "call %s: no 'calls' in %r" % (callid, v))
    return v["calls"][0]


@case
def json_all():
    """Every command's --json parses, and the live call shows with its stream."""
    p1, bob = phone(PHONE1), remote(PROXY, name="bob")
    c = Call(p1, bob, 16000)
    c.setup()
    c.media_both("ops json")
    cid = c.dlg.callid
    for cmd in ("status", "counters", "bindings", "dialogs", "pinholes"):
        v = ctl_json(cmd)
        check(list(v.keys()) == [cmd], "%s --json: want one key '%s', got %s" % (cmd, cmd, list(v)))
    st = ctl_json("status")["status"]
    check(st["ok"] is True and st["dialogs"] >= 1, "status: %r" % st)
    d = [x for x in ctl_json("dialogs")["dialogs"] if x["call_id"] == cid]
    check(len(d) == 1, "dialogs --json: call %s not listed once" % cid)
    v = call_view(cid[:12])
    check(v["call_id"] == cid, "call by prefix: got %r" % v["call_id"])
    check(v["phone"]["private"] == "%s:5060" % PHONE1, "phone private: %r" % v["phone"])
    check(v["peer"] == "%s:5060" % PROXY, "peer: %r" % v["peer"])
    check(len(v["streams"]) == 1, "streams: %r" % v["streams"])
    s = v["streams"][0]
    check(s["private"] == "%s:16000" % PHONE1 and s["public"] == "%s:%d" % tuple(c.pub_media),
          "stream addresses: %r" % s)
    check(s["remote"] == "%s:%d" % (c.remote_media_ip, c.remote_rtp_port), "stream remote: %r" % s)
    # bash completion offers the live Call-ID after `call`
    repo = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
    script = ('PATH="%s:$PATH"; . "%s/contrib/bash-completion/sipalgctl"; COMP_WORDS=(sipalgctl -s "%s" call "");'
              ' COMP_CWORD=4; _sipalgctl; echo "${COMPREPLY[@]}"'
              % (os.path.dirname(os.environ["LAB_CTL"]), repo, os.environ["LAB_SOCK"]))
    r = subprocess.run(["ip", "netns", "exec", flows.NS["rtr"], "bash", "-c", script], capture_output=True,
                       timeout=10)
    check(cid.encode() in r.stdout.split(), "bash completion after 'call': %r %r" % (r.stdout, r.stderr))
    rc, out = ctl("call", "no-such-call-id", ok=False)
    check(rc == 1 and out.startswith(b"error:"), "unknown call: exit %d %r" % (rc, out))
    c.bye_from_phone()


@case
def metrics():
    """`sipalgctl metrics` parses with prometheus_client's text parser; every counter of
    src/stats.h is there once, with its HELP and the right TYPE (gauges as gauge)."""
    import re
    from prometheus_client.parser import text_string_to_metric_families
    p1, bob = phone(PHONE1), remote(PROXY, name="bob")
    c = Call(p1, bob, 16010)
    c.setup()
    _, out = ctl("metrics")
    fams = {f.name: f for f in text_string_to_metric_families(out.decode("ascii"))}
    src = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../src/stats.h")).read()
    rows = re.findall(r'^\tX\((\w+), ([CG]), "([^"]*)"\)', src, re.M)
    check(len(rows) > 10, "cannot read STATS_LIST")
    for n, k, h in rows:
        f = fams.get("sipalgd_" + n)  # the parser strips _total from a counter's family name
        check(f is not None, "metrics: sipalgd_%s missing" % n)
        want = "counter" if k == "C" else "gauge"
        check(f.type == want, "metrics: sipalgd_%s is %s, want %s" % (n, f.type, want))
        check(f.documentation == h, "metrics: sipalgd_%s HELP %r, stats.h %r" % (n, f.documentation, h))
        sample = f.samples[0]
        check(sample.name == "sipalgd_" + n + ("_total" if k == "C" else ""),
              "metrics: sample name %s" % sample.name)
    check(fams["sipalgd_dialogs"].samples[0].value >= 1, "metrics: dialogs gauge 0 during a call")
    c.bye_from_phone()


def stream0(cid):
    v = call_view(cid)
    check(v["streams"], "call %s has no stream" % cid)
    return v, v["streams"][0]


OUTSIDE = "192.168.78.10"   # on the LAN segment, outside lan.networks (ops.sh adds it)


@case
def wrong_source():
    """One-way audio: the remote's media comes from an address its SDP did not name. The
    pinhole refuses it: call --json counts it as refused at the WAN, 0 to the phone."""
    p1, bob = phone(PHONE1), remote(PROXY, name="bob")
    c = Call(p1, bob, 16020)
    c.setup()
    stranger = udp_socket("wan", OTHER, 0)
    drain(c.phone_rtp)
    send_rtp(stranger, c.pub_media)
    n, _, _ = count_rtp(c.phone_rtp)
    check(n == 0, "RTP from %s reached the phone (%d): the pinhole should refuse it" % (OTHER, n))
    v, s = stream0(c.dlg.callid)
    rtp = s["rtp"]
    check(rtp["counted"], "rtp counters not available: %r" % rtp)
    check(rtp["refused_at_wan"]["packets"] >= flows.RTP_MIN,
          "refused_at_wan %r, want >= %d" % (rtp["refused_at_wan"], flows.RTP_MIN))
    check(rtp["to_phone"]["packets"] == 0, "to_phone %r, want 0" % rtp["to_phone"])
    check(any(x.startswith(OTHER + ":") for x in rtp["refused_sources"]),
          "refused_sources %r lacks %s" % (rtp["refused_sources"], OTHER))
    check(s["allowed_source"] == PROXY, "allowed_source %r" % s["allowed_source"])
    _, txt = ctl("call", c.dlg.callid)
    sys.stderr.write("--- sipalgctl call (one-way audio, wrong source):\n" + txt.decode() + "---\n")
    check(("hint: media from %s is refused: the pinhole admits only %s" % (OTHER, PROXY)).encode() in txt
          and b"media.pinhole_source: any" in txt, "call does not point at media.pinhole_source")
    check(b"forward policy" not in txt, "call blames the forward policy (the lab's accepts DNAT)")
    c.bye_from_phone()


@case
def phone_silent():
    """One-way audio: the phone never sends RTP. The remote's reaches it; the phone's
    outbound counter stays 0."""
    p1, bob = phone(PHONE1), remote(PROXY, name="bob")
    c = Call(p1, bob, 16030)
    c.setup()
    drain(c.phone_rtp)
    send_rtp(c.remote_rtp, c.pub_media)
    n, _, _ = count_rtp(c.phone_rtp)
    check(n >= flows.RTP_MIN, "remote RTP reached the phone %d times" % n)
    _, s = stream0(c.dlg.callid)
    rtp = s["rtp"]
    check(rtp["counted"], "rtp counters not available: %r" % rtp)
    check(rtp["to_phone"]["packets"] >= flows.RTP_MIN, "to_phone %r" % rtp["to_phone"])
    check(rtp["from_phone"]["packets"] == 0, "from_phone %r, want 0" % rtp["from_phone"])
    check(rtp["refused_at_wan"]["packets"] == 0, "refused %r, want 0" % rtp["refused_at_wan"])
    _, txt = ctl("call", c.dlg.callid)
    sys.stderr.write("--- sipalgctl call (one-way audio, silent phone):\n" + txt.decode() + "---\n")
    # and once the phone talks, the same view shows it
    send_rtp(c.phone_rtp, (c.remote_media_ip, c.remote_rtp_port))
    count_rtp(c.remote_rtp)
    _, s = stream0(c.dlg.callid)
    check(s["rtp"]["from_phone"]["packets"] >= flows.RTP_MIN, "from_phone after talking %r"
          % s["rtp"]["from_phone"])
    c.bye_from_phone()


@case
def outside_lan():
    """A phone outside lan.networks: its INVITE passes untouched, no dialog; call --json
    names it as untracked with the reason (not_lan)."""
    p = phone(OUTSIDE, 5070)  # 5060 would take the public 5060 the other cases need
    bob = remote(PROXY, name="bob")
    c = Call(p, bob, 16040)
    c.send_invite()
    m, _ = bob.recv_req("INVITE", c.dlg.callid)
    check(OUTSIDE.encode() in m.raw, "the INVITE of %s was rewritten" % OUTSIDE)
    v = ctl_json("call", c.dlg.callid)
    check(v.get("calls") == [], "a dialog exists for a phone outside lan.networks: %r" % v)
    u = v.get("untracked") or []
    check(u and "not_lan" in (u[-1]["message"]["reason"] or ""), "untracked: %r" % u)
    check(ctl_json("counters")["counters"]["not_lan"] >= 1, "not_lan counter 0")


@case
def stream_limit():
    """A stream refused by a limit (limits.streams_per_call: 8): the ninth m= line is
    written port 0; call --json says why and shows the rewrite."""
    p1, bob = phone(PHONE1), remote(PROXY, name="bob")
    ports = [16100 + 2 * i for i in range(9)]
    c = Call(p1, bob, 16100, sdp=flows.sdp_body(PHONE1, ports, origin=PHONE1))
    c.send_invite()
    m, _ = bob.recv_req("INVITE", c.dlg.callid)
    check(b"m=audio 0 " in m.raw, "the ninth stream was not refused (no port 0)")
    v = call_view(c.dlg.callid)
    check(len(v["streams"]) == 8, "streams %d, want 8" % len(v["streams"]))
    inv = [x for x in v["messages"] if x["start_line"].startswith("INVITE ")]
    check(inv, "no INVITE among the call's messages: %r" % v["messages"])
    check("pinholes_refused" in (inv[-1]["reason"] or "") or "drop_limit" in (inv[-1]["reason"] or ""),
          "reason %r" % inv[-1]["reason"])
    check(any(r["before"] == str(ports[8]) and r["after"] == "0" for r in inv[-1]["rewrites"]),
          "no '%d' -> '0' rewrite in %r" % (ports[8], inv[-1]["rewrites"]))
    check(any(r["before"] == PHONE1 for r in inv[-1]["rewrites"]), "no address rewrite shown")


@case
def rewrite_headers():
    """`call` names where each rewrite was: the INVITE's Via, Contact, SDP o= and c=, and
    the 200's Contact on the way back, in --json ("header") and in the text form."""
    p1, bob = phone(PHONE1), remote(PROXY, name="bob")
    c = Call(p1, bob, 16400)
    c.setup()
    v = call_view(c.dlg.callid)
    inv = [x for x in v["messages"] if x["start_line"].startswith("INVITE ") and x["direction"] == "out"]
    check(inv, "no outbound INVITE among the call's messages: %r" % v["messages"])
    where = {}
    for r in inv[-1]["rewrites"]:
        check(isinstance(r.get("header"), str) and r["header"], "a rewrite without a header: %r" % r)
        where.setdefault(r["header"], []).append(r["before"])
    for h in ("Via", "Contact", "SDP o=", "SDP c="):
        check(h in where and any(PHONE1 in b for b in where[h]),
              "no %s rewrite of %s in the INVITE's %r" % (h, PHONE1, inv[-1]["rewrites"]))
    check("header" not in where, "a rewrite named only 'header' in a plain INVITE: %r" % where)
    _, txt = ctl("call", c.dlg.callid)
    t = txt.decode(errors="replace")
    check(("rewrote Via '%s" % PHONE1) in t and ("rewrote SDP c= '%s'" % PHONE1) in t,
          "the text form does not name Via / SDP c=:\n%s" % t)
    c.bye_from_phone()


def rtr_nft(script):
    r = subprocess.run(["ip", "netns", "exec", flows.NS["rtr"], "nft", "-f", "-"], input=script.encode(),
                       capture_output=True, timeout=10)
    check(r.returncode == 0, "nft -f: %s" % r.stderr.decode(errors="replace"))


def wait_gauge(name, want, limit=3.0):
    """Poll (bounded) until the gauge reads want; returns what it read last."""
    deadline = time.monotonic() + limit
    while True:
        v = ctl_json("counters")["counters"][name]
        if v == want or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


def add_forward_drop():
    """The operator's forward chain with policy drop and no `ct status dnat accept`
    (table inet salg_opfw): the daemon must see it (forward_drops_dnat 1)."""
    rtr_nft("table inet salg_opfw {\n chain forward {\n"
            "  type filter hook forward priority filter + 10; policy drop;\n"
            "  ct state established,related accept\n"
            "  iifname { \"lan\", \"lan2\" } accept\n }\n}\n")
    check(wait_gauge("forward_drops_dnat", 1) == 1, "forward_drops_dnat not 1 with a drop policy and no accept")

def wait_fwd(ok, limit=3.0):
    """Poll (bounded) status --json's forward_drops_dnat until ok(value); returns it."""
    deadline = time.monotonic() + limit
    while True:
        v = ctl_json("status")["status"]["forward_drops_dnat"]
        if ok(v) or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


@case
def forward_drop_hint():
    """The operator's own forward chain with policy drop and no `ct status dnat accept`
    drops the media of our DNAT pinholes: the daemon says so (log warning, status line,
    forward_drops_dnat 1), and not for the lab's ruleset nor for fw4's shape with the
    package's fragment (the accept in the base chain, or in a zone chain it jumps to).
    An ip6 table's forward chain counts when the daemon has wan.masquerade6, only then."""
    log = os.environ["LAB_DAEMON_LOG"]
    check(wait_gauge("forward_drops_dnat", 0) == 0, "a hint for the lab's own ruleset (it has the accept)")
    check("drops the media of our pinholes" not in open(log, errors="replace").read(),
          "warned about the lab's own ruleset")
    st = ctl_json("status")["status"]
    check(st.get("forward_drops_dnat", "absent") is None, "status --json: %r" % st)
    try:
        add_forward_drop()
        _, txt = ctl("status")
        check(b"warning: forward policy drops DNAT'ed media: inet salg_opfw chain forward" in txt,
              "status does not say it: %r" % txt)
        check(ctl_json("status")["status"]["forward_drops_dnat"] == "inet salg_opfw chain forward",
              "status --json: %r" % ctl_json("status"))
        text = open(log, errors="replace").read()
        check("firewall: the forward policy of inet salg_opfw chain forward drops the media of our pinholes" in text
              and "ct status dnat accept" in text, "no warning in the daemon's log")
        # fw4's shape: the base chain jumps to a zone chain; the package's fragment is
        # included at the top of the base chain (packaging/openwrt: 30-sipalgd.nft)
        rtr_nft("delete table inet salg_opfw\ntable inet salg_opfw {\n chain forward_wan {\n"
                "  ct state established,related accept\n }\n chain forward {\n"
                "  type filter hook forward priority filter + 10; policy drop;\n"
                "  meta l4proto udp ct status dnat accept comment \"sipalgd: media pinholes\"\n"
                "  iifname \"wan\" jump forward_wan\n  iifname { \"lan\", \"lan2\" } accept\n }\n}\n")
        check(wait_gauge("forward_drops_dnat", 0) == 0, "still a hint with the fragment's accept in the base chain")
        _, txt = ctl("status")
        check(b"forward policy drops" not in txt, "status still warns: %r" % txt)
        # the accept in the zone chain the base chain jumps to
        rtr_nft("delete table inet salg_opfw\ntable inet salg_opfw {\n chain forward_wan {\n"
                "  ct status dnat accept\n }\n chain forward {\n"
                "  type filter hook forward priority filter + 10; policy drop;\n"
                "  ct state established,related accept\n"
                "  iifname \"wan\" jump forward_wan\n  iifname { \"lan\", \"lan2\" } accept\n }\n}\n")
        check(wait_gauge("forward_drops_dnat", 0) == 0, "a hint though a zone chain accepts ct status dnat")
        # An ip6 table counts only with wan.masquerade6 (lab.yaml has it; ops.sh runs this
        # case again on a daemon without it): then the daemon DNATs the media of the
        # masqueraded IPv6 phones (its ip6 table), and an ip6 forward policy drop with no
        # `ct status dnat accept` drops it as an ip or inet one would. Without it no IPv6
        # flow is DNAT'ed. Both tables in one batch: the status names the inet chain in
        # either case, so the ip6 one was seen in the same look (no waiting on a 0).
        masq6 = "masquerade6" in open(os.environ["LAB_CONF"]).read()
        drop = ("table %s %s {\n chain forward {\n"
                "  type filter hook forward priority filter + 10; policy drop;\n"
                "  ct state established,related accept\n"
                "  iifname { \"lan\", \"lan2\" } accept\n }\n}\n")
        rtr_nft("delete table inet salg_opfw\n" + drop % ("inet", "salg_opfw") + drop % ("ip6", "salg_opfw6"))
        want = {"inet salg_opfw chain forward"} | ({"ip6 salg_opfw6 chain forward"} if masq6 else set())
        got = wait_fwd(lambda v: v is not None and set(v.split(", ")) == want)
        check(got is not None and set(got.split(", ")) == want,
              "with%s wan.masquerade6 status names %r, want %r" % ("" if masq6 else "out", got, sorted(want)))
        # the inet chain accepts now: the ip6 one is left (with masquerade6), or nothing
        rtr_nft("add rule inet salg_opfw forward ct status dnat accept\n")
        want1 = "ip6 salg_opfw6 chain forward" if masq6 else None
        got = wait_fwd(lambda v: v == want1)
        check(got == want1, "status names %r with only the ip6 chain dropping, want %r" % (got, want1))
        check(wait_gauge("forward_drops_dnat", 1 if masq6 else 0) == (1 if masq6 else 0),
              "forward_drops_dnat with only the ip6 chain dropping (masquerade6: %s)" % masq6)
        rtr_nft("add rule ip6 salg_opfw6 forward ct status dnat accept\n")
        check(wait_gauge("forward_drops_dnat", 0) == 0, "still a hint with the accept in the ip6 chain")
    finally:
        for fam, table in (("inet", "salg_opfw"), ("ip6", "salg_opfw6")):
            subprocess.run(["ip", "netns", "exec", flows.NS["rtr"], "nft", "delete", "table", fam, table],
                           capture_output=True, timeout=10)
    check(wait_gauge("forward_drops_dnat", 0) == 0, "forward_drops_dnat after the table went")


@case
def forward_drop_call():
    """One-way audio from a forward policy drop: the remote's first RTP is DNATed by our
    pinhole, then dropped by the operator's chain before conntrack confirms it, so
    `call` counts nothing at all (not even REFUSED) and looks like a silent remote. It
    must point at the forward policy; a healthy call's view must not."""
    p1, bob = phone(PHONE1), remote(PROXY, name="bob")
    try:
        add_forward_drop()
        c = Call(p1, bob, 16060)
        c.setup()
        drain(c.phone_rtp)
        send_rtp(c.remote_rtp, c.pub_media)
        n, _, _ = count_rtp(c.phone_rtp)
        check(n == 0, "remote-first RTP reached the phone (%d) through a forward policy drop" % n)
        _, txt = ctl("call", c.dlg.callid)
        check(b"hint: nothing reached the phone and a forward policy drops DNAT'ed media" in txt,
              "call does not point at the forward policy: %r" % txt)
        c.bye_from_phone()
    finally:
        subprocess.run(["ip", "netns", "exec", flows.NS["rtr"], "nft", "delete", "table", "inet", "salg_opfw"],
                       capture_output=True, timeout=10)
    check(wait_gauge("forward_drops_dnat", 0) == 0, "forward_drops_dnat after the table went")
    c = Call(p1, bob, 16070)
    c.setup()
    _, txt = ctl("call", c.dlg.callid)
    check(b"hint:" not in txt, "a hint on a call with nothing wrong (no media yet): %r" % txt)
    c.bye_from_phone()


@case
def kernel_helper_hint():
    """The kernel's SIP helper assigned to our traffic by a ct helper rule: status must name
    the object and say to remove it, and stop once it is gone."""
    try:
        rtr_nft("table inet salg_ophelper {\n ct helper sip-5060 {\n  type \"sip\" protocol udp;\n"
                "  l3proto ip;\n }\n chain prerouting {\n"
                "  type filter hook prerouting priority filter; policy accept;\n"
                "  udp dport 5060 ct helper set \"sip-5060\"\n }\n}\n")
        rc, txt = ctl("status", ok=False)
        check(rc == 0 and b"kernel_helper 1" in txt, "status with a ct helper rule: %d %r" % (rc, txt[:300]))
        check(b"warning: kernel SIP helper on our traffic: nft ct helper object salg_ophelper sip-5060: "
              b"remove it" in txt, "status does not say what to do: %r" % txt)
    finally:
        subprocess.run(["ip", "netns", "exec", flows.NS["rtr"], "nft", "delete", "table", "inet",
                        "salg_ophelper"], capture_output=True, timeout=10)
    _, txt = ctl("status")
    check(b"kernel_helper 0" in txt and b"kernel SIP helper" not in txt, "status after removal: %r" % txt[:300])


def set_mode(mode):
    """Rewrite the lab config with `mode: MODE`, SIGHUP the daemon, wait until it says so."""
    conf = os.environ["LAB_CONF"]
    base = [ln for ln in open(conf).read().splitlines() if not ln.startswith("mode:")]
    with open(conf, "w") as f:
        f.write("\n".join(base + ["mode: %s" % mode]) + "\n")
    os.kill(int(os.environ["LAB_DAEMON_PID"]), 1)
    for _ in range(50):
        if ctl_json("status")["status"]["mode"] == mode:
            return
        time.sleep(0.1)
    raise Fail("the daemon did not switch to mode %s after SIGHUP" % mode)


def kernel_elements():
    """Elements in the daemon's maps, from nft itself."""
    out = subprocess.run(["ip", "netns", "exec", flows.NS["rtr"], "nft", "-j", "list", "table", "ip",
                          "sipalgd_lab"], capture_output=True, timeout=5).stdout
    n = 0
    for obj in json.loads(out)["nftables"]:
        if "map" in obj:
            n += len(obj["map"].get("elem", []))
    return n


@case
def observe():
    """mode: observe (by SIGHUP): a call's bytes leave the router unchanged both ways and no
    map element exists, while call --json shows the would-be rewrite and pinhole; back to
    enforce by SIGHUP, calls are handled again."""
    set_mode("observe")
    try:
        check(kernel_elements() == 0, "elements left in the maps in observe mode")
        p1, bob = phone(PHONE1), remote(PROXY, name="bob")
        c = Call(p1, bob, 16200)
        c.send_invite()
        m, src = bob.recv_req("INVITE", c.dlg.callid)
        check(m.raw == c.inv_raw, "observe: the INVITE was changed on its way out")
        c.inv_wan, c.inv_src = m, src
        c.answer()
        got, _ = p1.recv_resp(200, c.dlg.callid, "INVITE")
        check(got.raw == c.ok_raw, "observe: the 200 OK was changed on its way in")
        check(kernel_elements() == 0, "observe: the call put elements in the kernel maps")
        v = ctl_json("call", c.dlg.callid)
        check(v["mode"] == "observe", "call --json mode %r" % v["mode"])
        d = v["calls"][0]
        check(len(d["streams"]) == 1 and d["streams"][0]["public"].startswith(flows.PUB + ":"),
              "observe: would-be stream %r" % d["streams"])
        inv = [x for x in d["messages"] if x["start_line"].startswith("INVITE ")][-1]
        check(inv["observe"] is True and inv["verdict"] == "accept", "INVITE note %r" % inv)
        check(any(r["before"].startswith(PHONE1) and r["after"].startswith(flows.PUB) for r in inv["rewrites"]),
              "observe: no would-be rewrite %s -> %s in %r" % (PHONE1, flows.PUB, inv["rewrites"]))
        oc = ctl_json("counters")["counters"]
        check(oc["observed_changes"] >= 1, "observed_changes %d (pkts_rewritten %d)" % (oc["observed_changes"], oc["pkts_rewritten"]))
        _, txt = ctl("call", c.dlg.callid)
        check(re.search(rb"would rewrite (Via|Contact|Request-URI|SDP [a-z=]+) '" + re.escape(PHONE1.encode()), txt),
              "text view lacks 'would rewrite WHERE '%s'" % PHONE1)
    finally:
        set_mode("enforce")
    p1, bob = phone(PHONE1, 5062), remote(PROXY, name="bob")
    c = Call(p1, bob, 16210)
    c.setup()
    c.media_both("after observe")
    check(kernel_elements() > 0, "enforce again: no elements for a call")
    c.bye_from_phone()


@case
def trace():
    """trace ADDRESS SECONDS: full before/after messages of matching traffic in the log,
    at most 20 a second, and the trace switches itself off when its time is up."""
    log = os.environ["LAB_DAEMON_LOG"]
    start = os.path.getsize(log)
    _, out = ctl("trace", PHONE1, "2")
    check(out.startswith(b"trace address " + PHONE1.encode()), "trace answer %r" % out)
    p1, bob = phone(PHONE1), remote(PROXY, name="bob")
    c = Call(p1, bob, 16300)
    c.send_invite()
    bob.recv_req("INVITE", c.dlg.callid)
    # a burst over the rate limit: 40 OPTIONS within a second
    for i in range(40):
        p1.send(flows.sip(["OPTIONS sip:bob@biloxi.example.com SIP/2.0",
                           "Via: SIP/2.0/UDP %s:5060;branch=z9hG4bKtr%d" % (PHONE1, i),
                           "From: <sip:alice@atlanta.example.com>;tag=tr%d" % i,
                           "To: <sip:bob@biloxi.example.com>", "Call-ID: trace-%d@%s" % (i, PHONE1),
                           "CSeq: 1 OPTIONS", "Max-Forwards: 70"]), (PROXY, 5060))
    time.sleep(2.5)   # the trace's 2 s, and the daemon's 250 ms tick
    text = open(log, "rb").read()[start:].decode(errors="replace")
    before = [ln for ln in text.splitlines() if "before" in ln and "| INVITE sip:bob" in ln]
    after = [ln for ln in text.splitlines() if "after " in ln and "| Via: SIP/2.0/UDP %s:5060" % flows.PUB in ln]
    check(before and after, "trace: no before/after INVITE lines in the log")
    n = len([ln for ln in text.splitlines() if "trace #" in ln and "bytes in" in ln])
    check(n <= 2 * 20, "trace logged %d messages in about 1 s (limit 20/s)" % n)
    check("trace off (time is up)" in text, "the trace did not switch itself off")
    check("not logged" in text and ", 0 not logged" not in text, "the rate limit held nothing back")
    _, out = ctl("trace", "status")
    check(out.strip() == b"trace off", "trace status after the time: %r" % out)
    check(ctl_json("trace", "status") == {"trace": {"state": "off"}}, "trace status --json")
    rc, out = ctl("trace", PHONE1, "0", ok=False)
    check(rc == 1 and out.startswith(b"error:"), "trace with 0 s accepted: %r" % out)


@case
def sip_port_other():
    """A phone (or PBX) whose SIP is on a port not in sip.ports (5080): nothing diverts it, so
    it leaves unrewritten and no counter moves. `call` must say that only sip.ports is seen,
    naming the ports, so the operator looks at the port and not at the daemon."""
    p, bob = phone(PHONE1, 5080), remote(PROXY, 5080, name="bob")
    d = flows.Dialog(PHONE1, 5080, peer_port=5080)
    p.send(d.invite(flows.sdp_body(PHONE1, [16050], origin=PHONE1)), (PROXY, 5080))
    m, _ = bob.recv_req("INVITE", d.callid)
    check(PHONE1.encode() in m.raw, "SIP on 5080 was rewritten: the lab diverts more than sip.ports")
    rc, out = ctl("call", d.callid, ok=False)
    check(rc == 1 and out.startswith(b"error: no call matches"), "call: exit %d %r" % (rc, out))
    check(b"only SIP on sip.ports 5060 is seen" in out, "call does not name sip.ports: %r" % out)


def status_until(want_rc, limit=3.0):
    """`sipalgctl status` polled (every 50 ms, at most `limit` s) until it exits want_rc."""
    t_end = time.monotonic() + limit
    while True:
        rc, out = ctl("status", ok=False)
        if rc == want_rc or time.monotonic() > t_end:
            return rc, out
        time.sleep(0.05)


@case
def wan_no_address():
    """The WAN interface without an IPv4 address (PPPoE down, no DHCP lease) and no
    wan.public_address: every LAN SIP message is dropped, so status must not say ok: exit 1,
    'missing IPv4 address on WAN interface wan', --json public_ipv4 null; ok again with it."""
    pub = "203.0.113.1"
    rtr_ip = ["ip", "-n", flows.NS["rtr"], "addr"]
    subprocess.run(rtr_ip + ["del", pub + "/24", "dev", "wan"], check=True, timeout=5)
    try:
        rc, out = status_until(1)
        check(rc == 1 and out.startswith(b"missing IPv4 address on WAN interface wan (LAN SIP is dropped"),
              "status without a WAN address: exit %d %r" % (rc, out[:200]))
        rc, out = ctl("status", "--json", ok=False)
        st = json.loads(out.decode("ascii"))["status"]
        check(rc == 1 and st["ok"] is False and "IPv4 address on WAN interface wan" in (st["missing"] or ""),
              "status --json without a WAN address: %r" % st)
        check(st["public_ipv4"] is None, "status --json public_ipv4 %r, want null" % st["public_ipv4"])
    finally:
        subprocess.run(rtr_ip + ["add", pub + "/24", "dev", "wan"], check=True, timeout=5)
    rc, out = status_until(0)
    check(rc == 0 and out.startswith(b"ok "), "status with the address back: exit %d %r" % (rc, out[:200]))
    check(ctl_json("status")["status"]["public_ipv4"] == pub, "status --json public_ipv4 not %s" % pub)


@case
def wan_interface_missing():
    """wan.interface names no interface (a typo; a PPPoE device not created yet): nothing
    is diverted, so status must exit 1 naming it and wan.interface; ok again once it exists.
    The lab renames `wan` away and back (same ifindex; the daemon follows by name)."""
    link = ["ip", "-n", flows.NS["rtr"], "link", "set"]

    def rename(old, new):
        subprocess.run(link + [old, "down"], check=True, timeout=5)
        subprocess.run(link + [old, "name", new], check=True, timeout=5)
        subprocess.run(link + [new, "up"], check=True, timeout=5)
    rename("wan", "salgwanx")
    try:
        rc, out = status_until(1)
        check(rc == 1 and out.startswith(b"missing WAN interface wan (no such interface now") and
              b"check wan.interface" in out, "status without the WAN interface: exit %d %r" % (rc, out[:300]))
    finally:
        rename("salgwanx", "wan")
    rc, out = status_until(0, limit=8.0)  # found again at once by the link event, or the 5 s re-scan
    check(rc == 0 and out.startswith(b"ok "), "status with the interface back: exit %d %r" % (rc, out[:300]))


@case
def limits_hint():
    """Run alone, by ops.sh, on a daemon with limits.dialogs: 4. A phone (a busy PBX) with
    more calls than its share: the call is refused, and the log names the phone; status
    must say which table refuses (a warning line, --json limits_hit), not just `ok`."""
    rc, out = ctl("status")
    check(b"warning: a table" not in out, "a table warning before any refusal: %r" % out[:300])
    check("limits: { dialogs: 4 }" in open(os.environ["LAB_CONF"]).read(), "not the limits.dialogs: 4 daemon")
    p, bob = phone(PHONE1, 5066), remote(PROXY, name="bob")
    sent = []
    for i in range(6):   # at most 4 fit (3 by share when alone), the rest are refused
        d = flows.Dialog(PHONE1, 5066)
        p.send(d.invite(flows.sdp_body(PHONE1, [16400 + 2 * i], origin=PHONE1)), (PROXY, 5060))
        sent.append(d.callid)
    bob.recv_req("INVITE", sent[0])   # the first fits whatever else the table holds
    c = ctl_json("counters")["counters"]
    refused = c["refused_dialogs_share"] + c["refused_dialogs_full"]
    check(c["dialogs"] >= 3 and refused >= 2, "dialogs %d, refused %d: the table did not fill"
          % (c["dialogs"], refused))
    _, out = ctl("status")
    m = re.search(rb"warning: a table is over 3/4 full and has refused: limits\.dialogs \(([34]) of 4 in use, "
                  rb"refused_dialogs_full (\d+), refused_dialogs_share (\d+)\)", out)
    check(m and int(m.group(2)) + int(m.group(3)) == refused, "status does not name the table: %r" % out[:400])
    st = ctl_json("status")["status"]
    check(re.match(r"limits\.dialogs \([34] of 4 in use", st.get("limits_hit") or ""), "status --json: %r" % st)
    log = open(os.environ["LAB_DAEMON_LOG"], errors="replace").read()
    check("call of phone %s:5066 refused: dialog table" % PHONE1 in log, "the log does not name the phone")
    # the refused call itself: `call CALL-ID` must show its INVITE and why (it left without
    # a dialog or pinholes, so nothing else records it)
    rc, out = ctl("call", sent[-1], ok=False)
    check(rc == 0 and b"drop_limit" in out and b"INVITE" in out,
          "sipalgctl call of the refused call: exit %d: %r" % (rc, out[:400]))


ALONE = {"limits_hint"}   # needs its own daemon: only when named


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--id", required=True)
    ap.add_argument("cases", nargs="*")
    a = ap.parse_args()
    for side in ("lan", "rtr", "wan"):
        flows.NS[side] = "salg-%s-%s" % (side, a.id)
    todo = [f for f in CASES if (not a.cases and f.__name__ not in ALONE) or f.__name__ in a.cases]
    if a.cases and len(todo) != len(a.cases):
        print("unknown case in %s" % a.cases, file=sys.stderr)
        return 2
    failed = 0
    for i, fn in enumerate(todo, 1):
        t0 = time.monotonic()
        try:
            fn()
            print("ok %d - %s (%.1fs)" % (i, fn.__name__, time.monotonic() - t0), flush=True)
        except Fail as e:
            failed += 1
            print("not ok %d - %s: %s" % (i, fn.__name__, e), flush=True)
        except Exception:  # a bug in the case itself is a failure too
            failed += 1
            print("not ok %d - %s: %s" % (i, fn.__name__, traceback.format_exc()), flush=True)
        finally:
            close_all_sockets()
    print("%d passed, %d failed" % (len(todo) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
