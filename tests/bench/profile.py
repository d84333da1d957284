#!/usr/bin/python3
"""profile.py PERF_DATA: where sipalgd's time goes, from `perf record -g -p PID`.

Every sample is put in one bucket by its call chain (kernel work is named by
what the daemon asked for: a conntrack dump, a verdict and the forwarding it
triggers, an nft batch, a sleep...), user-space samples by their leaf function.
Prints a markdown table (bucket, share of samples) and the top functions.
"""
import collections
import subprocess
import sys

BUCKETS = [
    # (bucket, any of these frame symbols)
    ("ctnetlink dump (conntrack table walk)", ("ctnetlink_dump_table", "ctnetlink_get_conntrack", "ctnetlink_start")),
    ("ctnetlink delete / create / get", ("ctnetlink_del_conntrack", "ctnetlink_new_conntrack", "ctnetlink_get_ct")),
    ("nft map updates (nftables transaction)", ("nfnetlink_rcv_batch", "nf_tables_commit", "nf_tables_newsetelem",
                                               "nf_tables_delsetelem", "nft_")),
    ("verdicts: reinjection and forwarding of the packets", ("nfqnl_recv_verdict", "nfqnl_reinject", "nfqnl_recv_verdict_batch")),
    ("queue read (recvmsg from NFQUEUE)", ("netlink_recvmsg", "__x64_sys_recvmsg", "__x64_sys_recvmmsg", "do_recvmmsg")),
    ("hold-off sleep / being scheduled", ("do_nanosleep", "hrtimer_nanosleep", "__x64_sys_clock_nanosleep")),
    ("poll / wake-up", ("do_sys_poll", "__x64_sys_poll", "__x64_sys_ppoll", "do_epoll_wait", "__x64_sys_epoll_wait")),
    ("control socket / logging", ("unix_stream_sendmsg", "unix_stream_recvmsg", "__x64_sys_write", "__x64_sys_accept4")),
]


def samples(path):
    out = subprocess.run(["perf", "script", "-i", path, "-F", "ip,sym,dso"], capture_output=True,
                         text=True, errors="replace").stdout
    cur = []
    for line in out.splitlines():
        if not line.strip():
            if cur:
                yield cur
            cur = []
            continue
        p = line.split()
        if len(p) >= 2:
            sym = p[1].split("+", 1)[0]
            dso = p[-1].strip("()") if p[-1].startswith("(") else ""
            cur.append((sym, dso))
    if cur:
        yield cur


def classify(frames):
    syms = [s for s, _ in frames]
    for name, keys in BUCKETS:
        for s in syms:
            if any(s.startswith(k) for k in keys):
                return name, None
    leaf, dso = frames[0]
    if leaf in ("clock_nanosleep@GLIBC_2.2.5", "clock_nanosleep", "__nanosleep", "nanosleep"):
        return "hold-off sleep / being scheduled", None
    if leaf in ("__poll", "poll", "ppoll"):
        return "poll / wake-up", None
    if any(s.startswith(("finish_task_switch", "__schedule", "schedule")) for s in syms) or \
            leaf.startswith(("pvm_irq_enable", "__raw_callee_save_pvm_irq_enable")):
        return "context switches / interrupts re-enabled (paravirt)", None
    if "kernel" in dso:
        sysc = next((s for s in syms if s.startswith("__x64_sys_")), None)
        return ("kernel, other: " + (sysc[len("__x64_"):] if sysc else leaf)), None
    if dso.endswith("sipalgd"):
        return "sipalgd code (scan, rewrite, tables)", leaf
    return "libraries: " + dso.rsplit("/", 1)[-1], leaf


def main(path):
    n = 0
    b = collections.Counter()
    fn = collections.Counter()
    for fr in samples(path):
        n += 1
        name, leaf = classify(fr)
        b[name] += 1
        if leaf:
            fn[leaf] += 1
    if not n:
        print("(no samples)")
        return 1
    print(f"{n} samples of sipalgd's threads (user + kernel), by what the time was spent on:")
    print()
    print("| where | share |")
    print("|---|---:|")
    for name, c in b.most_common(12):
        print(f"| {name} | {100.0 * c / n:.1f}% |")
    print()
    if fn:
        print("User-space functions: " + ", ".join(f"`{s}` {100.0 * c / n:.1f}%" for s, c in fn.most_common(8)) + ".")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
