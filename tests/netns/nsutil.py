"""What the lab's own small Python programs (newuser_ua.py, pppoe_ua.py,
pppoe_link.py) share: running a step inside a network namespace the script
made, and counting checks.

setns() on this thread, not `ip netns exec`: a socket or tun device opened
inside stays in that namespace after we come back, so one process drives
phones, router and provider at once."""

import ctypes
import os

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
failures = []


def in_ns(name, fn):
    """Run fn() inside network namespace `name` (/run/netns/NAME), then come back."""
    here = os.open("/proc/self/ns/net", os.O_RDONLY)
    there = os.open("/run/netns/" + name, os.O_RDONLY)
    try:
        if _libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + name)
        return fn()
    finally:
        _libc.setns(here, CLONE_NEWNET)
        os.close(here)
        os.close(there)


def check(cond, what):
    """Print ok/FAIL for one assertion; failures collects the failed ones."""
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)
    return cond
