#!/usr/bin/env python3
"""Write the seed corpora under tests/fuzz/corpus/<target>/ (run from the
repo root). The committed seeds are this script's output; rerun it after
changing a message. alg seeds use the record format of alg_fuzz.c."""
import os
import shutil

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
TORTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "torture")
RS = b"\x1e\x1e\x1e\x1e"

PHONE = "192.168.1.10"
REM = "198.51.100.1"


def crlf(s):
    return s.replace("\n", "\r\n").encode()


def sdp(addr, port, extra=""):
    return (f"v=0\no=alice 2890844526 2890844526 IN IP4 {addr}\ns=-\nc=IN IP4 {addr}\n"
            f"t=0 0\nm=audio {port} RTP/AVP 0 8 101\na=rtpmap:0 PCMU/8000\n"
            f"a=rtcp:{port + 1}\n{extra}")


def msg(start, hdrs, body=""):
    b = crlf(body)
    h = start + "\n" + "".join(x + "\n" for x in hdrs)
    if body:
        h += "Content-Type: application/sdp\n"
    h += f"Content-Length: {len(b)}\n\n"
    return crlf(h) + b


CID = f"a84b4c76e66710@{PHONE}"
VIA_P = f"Via: SIP/2.0/UDP {PHONE}:5060;branch=z9hG4bK776asdhds;rport"
VIA_P_PUB = "Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK776asdhds;rport=5060;received=203.0.113.1"
FROM = "From: Alice <sip:alice@example.com>;tag=1928301774"
TO = "To: Bob <sip:bob@example.com>"
TO_T = TO + ";tag=a6c85cf"
CONTACT_P = f"Contact: <sip:alice@{PHONE}:5060>"
CONTACT_R = f"Contact: <sip:bob@{REM}:5060>"

invite = msg("INVITE sip:bob@example.com SIP/2.0",
             [VIA_P, "Max-Forwards: 70", TO, FROM, f"Call-ID: {CID}", "CSeq: 314159 INVITE",
              CONTACT_P], sdp(PHONE, 10000))
ringing = msg("SIP/2.0 180 Ringing", [VIA_P_PUB, TO_T, FROM, "Call-ID: a84b4c76e66710@203.0.113.1",
                                      "CSeq: 314159 INVITE", CONTACT_R])
ok_inv = msg("SIP/2.0 200 OK", [VIA_P_PUB, TO_T, FROM, "Call-ID: a84b4c76e66710@203.0.113.1",
                                "CSeq: 314159 INVITE", CONTACT_R], sdp(REM, 30000))
busy = msg("SIP/2.0 486 Busy Here", [VIA_P_PUB, TO_T, FROM, "Call-ID: a84b4c76e66710@203.0.113.1",
                                     "CSeq: 314159 INVITE"])
ack = msg("ACK sip:bob@198.51.100.1:5060 SIP/2.0",
          [f"Via: SIP/2.0/UDP {PHONE}:5060;branch=z9hG4bKack1", "Max-Forwards: 70", TO_T, FROM,
           f"Call-ID: {CID}", "CSeq: 314159 ACK"])
reinv = msg("INVITE sip:bob@198.51.100.1:5060 SIP/2.0",
            [f"Via: SIP/2.0/UDP {PHONE}:5060;branch=z9hG4bKre1", "Max-Forwards: 70", TO_T, FROM,
             f"Call-ID: {CID}", "CSeq: 314160 INVITE", CONTACT_P],
            sdp(PHONE, 10002, "m=video 10004 RTP/AVP 96\nc=IN IP4 192.168.1.11\n"))
bye = msg("BYE sip:bob@198.51.100.1:5060 SIP/2.0",
          [f"Via: SIP/2.0/UDP {PHONE}:5060;branch=z9hG4bKbye1", "Max-Forwards: 70", TO_T, FROM,
           f"Call-ID: {CID}", "CSeq: 314161 BYE"])
ok_bye = msg("SIP/2.0 200 OK", ["Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKbye1", TO_T, FROM,
                                "Call-ID: a84b4c76e66710@203.0.113.1", "CSeq: 314161 BYE"])
cancel = msg("CANCEL sip:bob@example.com SIP/2.0",
             [VIA_P, "Max-Forwards: 70", TO, FROM, f"Call-ID: {CID}", "CSeq: 314159 CANCEL"])
register = msg("REGISTER sip:example.com SIP/2.0",
               [f"Via: SIP/2.0/UDP {PHONE}:5060;branch=z9hG4bKreg1;rport", "Max-Forwards: 70",
                "To: <sip:alice@example.com>", "From: <sip:alice@example.com>;tag=456248",
                f"Call-ID: 843817637684230@{PHONE}", "CSeq: 1826 REGISTER",
                f"Contact: <sip:alice@{PHONE}:5060>;expires=3600", "Expires: 3600"])
ok_reg = msg("SIP/2.0 200 OK",
             ["Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKreg1;rport=5060;received=203.0.113.1",
              "To: <sip:alice@example.com>;tag=2493k59kd", "From: <sip:alice@example.com>;tag=456248",
              "Call-ID: 843817637684230@203.0.113.1", "CSeq: 1826 REGISTER",
              "Contact: <sip:alice@203.0.113.1:5060>;expires=4"])
inb_invite = msg("INVITE sip:alice@203.0.113.1:5060 SIP/2.0",
                 [f"Via: SIP/2.0/UDP {REM}:5060;branch=z9hG4bKin1", "Max-Forwards: 69",
                  "To: <sip:alice@example.com>", "From: Bob <sip:bob@example.com>;tag=77",
                  "Call-ID: inbound-1@198.51.100.1", "CSeq: 1 INVITE", CONTACT_R], sdp(REM, 30002))
inb_ok = msg("SIP/2.0 200 OK",
             [f"Via: SIP/2.0/UDP {REM}:5060;branch=z9hG4bKin1", "To: <sip:alice@example.com>;tag=99",
              "From: Bob <sip:bob@example.com>;tag=77", "Call-ID: inbound-1@198.51.100.1",
              "CSeq: 1 INVITE", CONTACT_P], sdp(PHONE, 10010))
inb_bye = msg("BYE sip:alice@203.0.113.1:5060 SIP/2.0",
              [f"Via: SIP/2.0/UDP {REM}:5060;branch=z9hG4bKin2", "Max-Forwards: 69",
               "From: <sip:alice@example.com>;tag=99", "To: Bob <sip:bob@example.com>;tag=77",
               "Call-ID: inbound-1@198.51.100.1", "CSeq: 2 BYE"])
inb_bye_ok = msg("SIP/2.0 200 OK",
                 [f"Via: SIP/2.0/UDP {REM}:5060;branch=z9hG4bKin2",
                  "From: <sip:alice@example.com>;tag=99", "To: Bob <sip:bob@example.com>;tag=77",
                  "Call-ID: inbound-1@198.51.100.1", "CSeq: 2 BYE"])
compact = crlf("INVITE sip:bob@example.com SIP/2.0\n"
               f"v: SIP/2.0/UDP {PHONE};branch=z9hG4bKc1\n"
               "t: <sip:bob@example.com>\nf: <sip:alice@example.com>;tag=1\n"
               "i: compact-1\nCSeq: 1 INVITE\n"
               f"m: <sip:alice@{PHONE}>\nc: application/sdp\nl: 129\n\n") + crlf(sdp(PHONE, 10020))[:129]
options_ka = b"\r\n\r\n"

OUT, IN = 0x00, 0x01
TICK = 0x80


def rec(flags, dt, payload):
    return bytes([flags, dt]) + payload


def seq(cv, *recs):
    return bytes([cv]) + RS.join(recs)


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    singles = {"invite": invite, "180": ringing, "200-invite": ok_inv, "486": busy, "ack": ack,
               "reinvite": reinv, "bye": bye, "200-bye": ok_bye, "cancel": cancel,
               "register": register, "200-register": ok_reg, "invite-inbound": inb_invite,
               "200-inbound": inb_ok, "compact": compact, "keepalive": options_ka}
    for k, v in singles.items():
        write("sipmsg", k, v)
    # (run.sh also seeds sipmsg with tests/data/torture/rfc4475 and rfc5118)

    # sdp: byte 0 is the offset of the body in its buffer
    write("sdp", "offer", b"\x05" + crlf(sdp(PHONE, 10000)))
    write("sdp", "two-media", b"\x00" + crlf(sdp(PHONE, 10002, "m=video 10004 RTP/AVP 96\nc=IN IP4 192.168.1.11/127/2\n")))
    write("sdp", "rtcp-addr", b"\x03" + crlf(sdp(PHONE, 10000, "a=rtcp:53020 IN IP4 192.168.1.10\n")))
    write("sdp", "ip6", b"\x01" + crlf("v=0\no=- 1 1 IN IP6 2001:db8::1\ns=-\nc=IN IP6 2001:db8::1\nt=0 0\nm=audio 6000 RTP/AVP 0\n"))
    write("sdp", "fqdn-lf", b"\x02" + b"v=0\no=- 1 1 IN IP4 host.example\ns=-\nc=IN IP4 host.example\nt=0 0\nm=audio 0 RTP/AVP 0\n")
    write("sdp", "many-media", b"\x00" + crlf("v=0\nc=IN IP4 192.168.1.10\n" + "".join(f"m=audio {10000 + 2 * i} RTP/AVP 0\n" for i in range(18))))

    # conf
    write("conf", "minimal.yaml", b"wan:\n  interface: eth0\nlan:\n  networks: [192.168.1.0/24]\n")
    write("conf", "full.yaml", b"""wan:
  interface: wan
  public_address: 203.0.113.1
lan:
  networks:
    - 192.168.1.0/24
    - 10.0.0.0/8
sip:
  ports: [5060, 5080]
  port_min: 40000
  port_max: 40999
  inbound_from: registrar
queue:
  number: 0
  max_length: 4096
  holdoff_us: 1000
  batch: 64
  divert: iptables
media:
  port_min: 20000
  port_max: 39999
  pinhole_source: peer
  allow_other_lan_hosts: false
timers:
  dialog: 7200
  early_dialog: 180
  binding_idle: 300
  register_max: 7200
limits:
  bindings: 16384
  dialogs: 8192
  pinholes: 16384
  pinholes_per_phone: 64
  streams_per_call: 8
  messages_per_second_per_source: 500
paths:
  nft_table: sipalgd
  control_socket: /run/sipalgd.sock
  pid_file: /run/sipalgd.pid
log:
  level: info
  syslog: false
""")
    write("conf", "flow.yaml", b"{wan: {interface: eth1}, lan: {networks: ['10.1.0.0/16']}, media: {pinhole_source: any}}\n")
    write("conf", "bad-alias.yaml", b"wan: &a\n  interface: eth0\nlan: *a\n")

    # alg: call flows (cv 0 = defaults, 0x08 = long public address)
    write("alg", "call-out", seq(0x00, rec(OUT, 1, invite), rec(IN, 1, ringing), rec(IN, 1, ok_inv),
                                 rec(OUT, 1, ack), rec(OUT, 5, reinv), rec(IN, 1, ok_inv),
                                 rec(OUT, 20, bye), rec(IN, 1, ok_bye)))
    write("alg", "call-busy", seq(0x08, rec(OUT, 1, invite), rec(IN, 1, busy)))
    write("alg", "call-cancel", seq(0x01, rec(OUT, 1, invite), rec(IN, 1, ringing), rec(OUT, 1, cancel)))
    write("alg", "register-inbound", seq(0x02, rec(OUT, 1, register), rec(IN, 1, ok_reg),
                                          rec(IN, 1, inb_invite), rec(OUT, 1, inb_ok),
                                          rec(IN, 10, inb_bye), rec(OUT, 1, inb_bye_ok)))
    write("alg", "compact", seq(0x04, rec(OUT, 1, compact)))
    write("alg", "keepalive", seq(0x00, rec(OUT, 0, options_ka)))
    # many calls from two phones: the tables fill up
    many = []
    for i in range(6):
        m = invite.replace(b"a84b4c76e66710", f"call{i}xxxxxxxxx".encode()).replace(b"10000", f"{10000 + 4 * i}".encode())
        many.append(rec(OUT | (2 if i % 2 else 0), 1, m))
    write("alg", "table-full", seq(0x04, *many, rec(IN | TICK, 250, ok_inv)))
    for k in ("wsinv.dat", "dblreq.dat", "mcl01.dat", "inv2543.dat", "multi01.dat"):
        p = os.path.join(TORTURE, "rfc4475", k)
        if os.path.exists(p):
            with open(p, "rb") as f:
                t = f.read().replace(b"192.0.2.", b"192.168.1.")
            write("alg", "torture-" + k, seq(0x00, rec(OUT, 1, t)))


if __name__ == "__main__":
    main()
