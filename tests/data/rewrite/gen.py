#!/usr/bin/env python3
"""Writes the rewrite corpus: real-looking SIP exchanges, each step's datagram
as sent (NAME.N.in) and as it must leave the router (NAME.N.out, only when it
differs). The expected bytes are written here by hand-stated substitutions,
not by running the ALG. cases.tsv lists: case step direction src dst.
LAN 192.168.1.0/24, public 203.0.113.1, WAN peers 198.51.100.x.
Run: python3 gen.py (from this folder)."""
import os

rows = []

def crlf(s):
    return s.replace('\r\n', '\n').replace('\n', '\r\n')

def msg(head, body=''):
    head = crlf(head.strip('\n') + '\n')
    body = crlf(body.lstrip('\n')) if body else ''
    head = head.replace('@CL@', str(len(body.encode())))
    return head + '\r\n' + body

def step(case, n, d, src, dst, inp, subs=None, out=None):
    with open('%s.%d.in' % (case, n), 'wb') as f:
        f.write(inp.encode())
    if subs is not None:
        out = inp
        for a, b in subs:
            assert a in out, (case, n, a)
            out = out.replace(a, b)
    if out is not None and out != inp:
        with open('%s.%d.out' % (case, n), 'wb') as f:
            f.write(out.encode())
    rows.append((case, n, d, src, dst))

def fixcl(m):
    h, b = m.split('\r\n\r\n', 1)
    import re
    h = re.sub(r'(?m)^(Content-Length|l):( *)\d+', lambda x: '%s:%s%d' % (x.group(1), x.group(2), len(b.encode())), h)
    return h + '\r\n\r\n' + b

PH = '192.168.1.10:5060'
PR = '198.51.100.1:5060'

# 1. An outgoing call, RFC 3665 3.1 shaped, with an unknown header and odd spacing.
sdp_a = '''v=0
o=alice 2890844526 2890844526 IN IP4 192.168.1.10
s=-
c=IN IP4 192.168.1.10
t=0 0
m=audio 49170 RTP/AVP 0 8 97
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:97 iLBC/8000
'''
inv = msg('''
INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK74bf9;rport
Max-Forwards: 70
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
To: Bob <sip:bob@biloxi.example.com>
Call-ID: 3848276298220188511@192.168.1.10
CSeq: 1 INVITE
Contact: <sip:alice@192.168.1.10;transport=udp>
User-Agent: Example phone 1.0
X-Opaque:   left   alone
Content-Type: application/sdp
Content-Length: @CL@
''', sdp_a)
step('call', 1, 'out', PH, PR, inv, out=fixcl(inv.replace('192.168.1.10', '203.0.113.1')))
trying = msg('''
SIP/2.0 100 Trying
Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK74bf9;rport=5060;received=203.0.113.1
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
To: Bob <sip:bob@biloxi.example.com>
Call-ID: 3848276298220188511@203.0.113.1
CSeq: 1 INVITE
Content-Length: 0
''')
step('call', 2, 'in', PR, PH, trying, subs=[('203.0.113.1:5060;branch', '192.168.1.10:5060;branch'),
    ('received=203.0.113.1', 'received=192.168.1.10'), ('@203.0.113.1', '@192.168.1.10')])
sdp_b = '''v=0
o=bob 2890844527 2890844527 IN IP4 198.51.100.20
s=-
c=IN IP4 198.51.100.20
t=0 0
m=audio 3456 RTP/AVP 0
a=rtpmap:0 PCMU/8000
'''
ok = msg('''
SIP/2.0 200 OK
Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK74bf9;rport=5060;received=203.0.113.1
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
To: Bob <sip:bob@biloxi.example.com>;tag=8321234356
Call-ID: 3848276298220188511@203.0.113.1
CSeq: 1 INVITE
Contact: <sip:bob@198.51.100.1>
Content-Type: application/sdp
Content-Length: @CL@
''', sdp_b)
step('call', 3, 'in', PR, PH, ok, subs=[('203.0.113.1:5060;branch', '192.168.1.10:5060;branch'),
    ('received=203.0.113.1', 'received=192.168.1.10'), ('@203.0.113.1', '@192.168.1.10')])
ack = msg('''
ACK sip:bob@198.51.100.1 SIP/2.0
Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK74bfa;rport
Max-Forwards: 70
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
To: Bob <sip:bob@biloxi.example.com>;tag=8321234356
Call-ID: 3848276298220188511@192.168.1.10
CSeq: 1 ACK
Content-Length: 0
''')
step('call', 4, 'out', PH, PR, ack, subs=[('192.168.1.10', '203.0.113.1')])
bye = ack.replace('ACK sip', 'BYE sip').replace('1 ACK', '2 BYE').replace('bK74bfa', 'bK74bfb')
step('call', 5, 'out', PH, PR, bye, subs=[('192.168.1.10', '203.0.113.1')])
byeok = msg('''
SIP/2.0 200 OK
Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK74bfb;rport=5060;received=203.0.113.1
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
To: Bob <sip:bob@biloxi.example.com>;tag=8321234356
Call-ID: 3848276298220188511@203.0.113.1
CSeq: 2 BYE
Content-Length: 0
''')
step('call', 6, 'in', PR, PH, byeok, subs=[('203.0.113.1:5060;branch', '192.168.1.10:5060;branch'),
    ('received=203.0.113.1', 'received=192.168.1.10'), ('@203.0.113.1', '@192.168.1.10')])

# 2. Compact forms, folded Via, two Contacts in one header, display name with "sip:".
inv2 = msg('''
INVITE sip:carol@chicago.example.com SIP/2.0
v: SIP/2.0/UDP 192.168.1.10:5060
 ;branch=z9hG4bKcompact1
f: "sip:alice, at home" <sip:alice@atlanta.example.com>;tag=c1
t: <sip:carol@chicago.example.com>
i: compact-1@atlanta.example.com
CSeq: 7 INVITE
m: <sip:alice@192.168.1.10:5060>;q=0.5, "Second" <sip:alice@192.168.1.10:5060;ob>
c: application/sdp
l: @CL@
''', sdp_a.replace('49170', '49180'))
step('compact', 1, 'out', PH, PR, inv2, out=fixcl(inv2.replace('192.168.1.10', '203.0.113.1')))

# 3. Registration, re-registration with expires param, un-REGISTER with Contact: *.
reg = msg('''
REGISTER sip:registrar.biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKnashds7
Max-Forwards: 70
To: Bob <sip:bob@biloxi.example.com>
From: Bob <sip:bob@biloxi.example.com>;tag=456248
Call-ID: 843817637684230@998sdasdh09
CSeq: 1826 REGISTER
Contact: <sip:bob@192.168.1.10>
Expires: 7200
Content-Length: 0
''')
step('register', 1, 'out', PH, PR, reg, subs=[('192.168.1.10', '203.0.113.1')])
regok = msg('''
SIP/2.0 200 OK
Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKnashds7;received=203.0.113.1
To: Bob <sip:bob@biloxi.example.com>;tag=2493k59kd
From: Bob <sip:bob@biloxi.example.com>;tag=456248
Call-ID: 843817637684230@998sdasdh09
CSeq: 1826 REGISTER
Contact: <sip:bob@203.0.113.1>;expires=3600
Content-Length: 0
''')
step('register', 2, 'in', PR, PH, regok, subs=[('203.0.113.1:5060;branch', '192.168.1.10:5060;branch'),
    ('received=203.0.113.1', 'received=192.168.1.10'), ('<sip:bob@203.0.113.1>', '<sip:bob@192.168.1.10>')])
inv_in = msg('''
INVITE sip:bob@203.0.113.1 SIP/2.0
Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKinbound1
Max-Forwards: 69
From: Carol <sip:carol@chicago.example.com>;tag=in1
To: Bob <sip:bob@biloxi.example.com>
Call-ID: inbound-1@chicago.example.com
CSeq: 1 INVITE
Contact: <sip:carol@198.51.100.1>
Content-Type: application/sdp
Content-Length: @CL@
''', sdp_b)
step('register', 3, 'in', PR, PH, inv_in, subs=[('INVITE sip:bob@203.0.113.1 SIP', 'INVITE sip:bob@192.168.1.10 SIP')])
unreg = msg('''
REGISTER sip:registrar.biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKnashds8
Max-Forwards: 70
To: Bob <sip:bob@biloxi.example.com>
From: Bob <sip:bob@biloxi.example.com>;tag=456249
Call-ID: 843817637684230@998sdasdh09
CSeq: 1827 REGISTER
Contact: *
Expires: 0
Content-Length: 0
''')
step('register', 4, 'out', PH, PR, unreg, subs=[('192.168.1.10', '203.0.113.1')])

# 4. Two media lines, media-level c= naming another LAN host, a=rtcp, session c= elsewhere.
sdp_m = '''v=0
o=pbx 1 1 IN IP4 192.168.1.10
s=call
c=IN IP4 192.168.1.10
t=0 0
m=audio 40000 RTP/AVP 0
a=rtcp:40001 IN IP4 192.168.1.10
m=video 40002 RTP/AVP 96
c=IN IP4 192.168.1.12
a=rtpmap:96 H264/90000
m=audio 0 RTP/AVP 0
'''
inv4 = msg('''
INVITE sip:dave@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKmulti
From: <sip:pbx@atlanta.example.com>;tag=m1
To: <sip:dave@biloxi.example.com>
Call-ID: multi-1@atlanta.example.com
CSeq: 1 INVITE
Contact: <sip:pbx@192.168.1.10:5060>
Content-Type: application/sdp
Content-Length: @CL@
''', sdp_m)
step('multimedia', 1, 'out', PH, PR, inv4, out=fixcl(inv4.replace('192.168.1.10', '203.0.113.1').replace('192.168.1.12', '203.0.113.1')))

# 5. A datagram that is not SIP on the SIP port, and a keep-alive: left alone.
step('notsip', 1, 'out', PH, PR, '\r\n\r\n')
step('notsip', 2, 'in', PR, PH, 'SIP/2.0 200 OK but not really a message')

with open('cases.tsv', 'w') as f:
    f.write('# case\tstep\tdirection\tsrc\tdst\n')
    for r in rows:
        f.write('%s\t%d\t%s\t%s\t%s\n' % r)
