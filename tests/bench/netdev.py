#!/usr/bin/python3
"""netdev.py DEV gro=0|1 tso=0|1 ...: set offloads with the legacy SIOCETHTOOL
commands (what `ethtool -K` does), so that the benchmark needs no ethtool.
Prints nothing; exits 1 with a message if the device refuses a setting."""
import ctypes
import fcntl
import socket
import struct
import sys

SIOCETHTOOL = 0x8946
# (get, set) legacy ethtool commands, include/uapi/linux/ethtool.h
CMDS = {
    "gro": (0x0000002b, 0x0000002c),
    "tso": (0x0000001e, 0x0000001f),
    "gso": (0x00000023, 0x00000024),
}


def ethtool_value(sock, dev, cmd, data=0):
    buf = ctypes.create_string_buffer(struct.pack("II", cmd, data))
    ifreq = struct.pack("16sP", dev.encode(), ctypes.addressof(buf)) + b"\0" * 16
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)
    return struct.unpack("II", buf.raw[:8])[1]


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    dev = argv[1]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for arg in argv[2:]:
        name, _, val = arg.partition("=")
        get, set_ = CMDS[name]
        want = int(val)
        ethtool_value(s, dev, set_, want)
        got = ethtool_value(s, dev, get)
        if bool(got) != bool(want):
            print(f"{dev}: {name} is {got}, wanted {want}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
