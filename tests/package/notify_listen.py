#!/usr/bin/env python3
"""A stand-in for systemd's notify socket, for tests/package/deb.sh.

notify_listen.py SOCKET_PATH OUT_FILE [SECONDS]

Binds an AF_UNIX datagram socket at SOCKET_PATH and writes each datagram the
daemon sends ("READY=1\\nSTATUS=...") to OUT_FILE, one line per datagram
(newlines shown as '|'). With SO_PASSCRED it learns the sender's pid, and
after the first READY=1 it sends that pid one SIGHUP, as `systemctl reload`
would, so the reload's RELOADING=1 ... READY=1 shows too. Stops at
STOPPING=1 or after SECONDS (default 90): never runs unbounded.
"""
import os
import select
import signal
import socket
import struct
import sys
import time


def main():
    path, out = sys.argv[1], sys.argv[2]
    limit = float(sys.argv[3]) if len(sys.argv) > 3 else 90.0
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    s.bind(path)
    deadline = time.monotonic() + limit
    hup_sent = False
    with open(out, "w", buffering=1) as f:
        f.write("listening\n")
        while time.monotonic() < deadline:
            r, _, _ = select.select([s], [], [], 0.5)
            if not r:
                continue
            data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
            pid = 0
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", cdata[:12])[0]
            text = data.decode(errors="replace")
            f.write(text.replace("\n", "|") + "\n")
            if text.startswith("READY=1") and not hup_sent and pid > 0:
                hup_sent = True
                os.kill(pid, signal.SIGHUP)
            if text.startswith("STOPPING=1"):
                break
    os.unlink(path)


if __name__ == "__main__":
    main()
