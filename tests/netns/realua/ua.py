#!/usr/bin/env python3
"""tests/netns/realua.sh helpers (no third-party modules).

  ua.py ctl PORT COMMAND [PARAMS]   one command to a baresip's ctrl_tcp
      (JSON in netstrings, RFC-less but documented in the module), run in
      the phone's namespace; prints the response's data, exit 1 if not ok.
  ua.py sip PCAP WANADDR            every SIP message in a capture taken at
      the provider's side: one summary line each; then each line of a
      message from WANADDR that names a private IPv4 literal; exit 1 if
      there is any.
  ua.py grep PCAP WANADDR REGEX [FIRST]   exit 0 if a SIP message from
      WANADDR (whose first line matches FIRST) has a line matching REGEX
      (each printed), 1 otherwise.
"""
import json
import re
import socket
import struct
import sys
import time

PRIVATE = re.compile(rb'(?<![\d.])(10\.\d{1,3}\.\d{1,3}\.\d{1,3}|192\.168\.\d{1,3}\.\d{1,3}|'
                     rb'172\.(1[6-9]|2\d|3[01])\.\d{1,3}\.\d{1,3})(?![\d])')
SIPSTART = re.compile(rb"^(SIP/2\.0 \d{3} [^\r\n]*|[A-Z]{3,9} [^ ]+ SIP/2\.0)\r\n")


def netstring(b):
    return str(len(b)).encode() + b':' + b + b','


def ctl(port, command, params):
    s = socket.create_connection(('127.0.0.1', int(port)), timeout=5)
    s.sendall(netstring(json.dumps({'command': command, 'params': params,
                                    'token': 'ru'}).encode()))
    buf = b''
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        while True:   # every complete netstring in buf
            m = re.match(rb'(\d+):', buf)
            if not m or len(buf) < m.end() + int(m.group(1)) + 1:
                break
            n = int(m.group(1))
            body = buf[m.end():m.end() + n]
            buf = buf[m.end() + n + 1:]
            msg = json.loads(body)
            if msg.get('response'):   # events come on the same socket: skip them
                print(msg.get('data', ''))
                return 0 if msg.get('ok') else 1
        d = s.recv(65536)
        if not d:
            break
        buf += d
    print('no response', file=sys.stderr)
    return 1


def packets(path):
    """(src, dst, proto, payload) of each IPv4 UDP/TCP packet (Ethernet, pcap)."""
    with open(path, 'rb') as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = struct.unpack('<I', data[:4])[0]
    end = '<' if magic in (0xa1b2c3d4, 0xa1b23c4d) else '>'
    link = struct.unpack(end + 'I', data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(end + 'I', data[off + 8:off + 12])[0]
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if link == 1:
            if len(pkt) < 14 or pkt[12:14] != b'\x08\x00':
                continue
            ip = pkt[14:]
        elif link == 113:   # Linux cooked (-i any)
            if len(pkt) < 16 or pkt[14:16] != b'\x08\x00':
                continue
            ip = pkt[16:]
        else:
            continue
        if len(ip) < 20 or ip[0] >> 4 != 4:
            continue
        ihl = (ip[0] & 15) * 4
        proto = ip[9]
        src = socket.inet_ntoa(ip[12:16])
        dst = socket.inet_ntoa(ip[16:20])
        l4 = ip[ihl:struct.unpack('>H', ip[2:4])[0]]
        if proto == 17 and len(l4) >= 8:
            yield src, dst, 'udp', struct.unpack('>HH', l4[:4]), l4[8:]
        elif proto == 6 and len(l4) >= 20:
            doff = (l4[12] >> 4) * 4
            yield src, dst, 'tcp', struct.unpack('>HH', l4[:4]), l4[doff:]


def sip_messages(path):
    """SIP messages in the capture; TCP segments are taken one by one (the
    lab's messages are small), a segment not starting a message is kept as
    a continuation so its lines are still checked."""
    for src, dst, proto, ports, pl in packets(path):
        if proto == 'udp' and SIPSTART.match(pl):
            yield src, dst, proto, ports, pl
        elif proto == 'tcp' and pl and 5060 in ports:
            yield src, dst, proto, ports, pl


def sip(path, wan):
    bad = 0
    n = 0
    for src, dst, proto, ports, pl in sip_messages(path):
        first = pl.split(b'\r\n', 1)[0].decode('latin-1')
        n += 1
        print(f'{src}:{ports[0]} > {dst}:{ports[1]} {proto} {first}')
        if src != wan:
            continue
        for line in pl.split(b'\r\n'):
            if PRIVATE.search(line):
                bad += 1
                print(f'  PRIVATE: {line.decode("latin-1")}')
    print(f'{n} SIP messages, {bad} lines with a private literal from {wan}')
    return 1 if bad or n == 0 else 0


def grep(path, wan, regex, first=None):
    """Lines matching regex in SIP messages from wan (whose first line
    matches first, if given); printed, exit 0 if any."""
    r = re.compile(regex.encode())
    f = re.compile(first.encode()) if first else None
    hit = 0
    for src, dst, proto, ports, pl in sip_messages(path):
        if src != wan:
            continue
        lines = pl.split(b'\r\n')
        if f and not f.search(lines[0]):
            continue
        for line in lines:
            if r.search(line):
                hit += 1
                print(line.decode('latin-1'))
    return 0 if hit else 1


def main(a):
    if a[0] == 'ctl':
        return ctl(a[1], a[2], a[3] if len(a) > 3 else '')
    if a[0] == 'sip':
        return sip(a[1], a[2])
    if a[0] == 'grep':
        return grep(a[1], a[2], a[3], a[4] if len(a) > 4 else None)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
