#!/usr/bin/python3
"""analyze.py CELL_DIR: turn one calls-run cell (one rate, one router) into
CELL_DIR/result.json.

Inputs in CELL_DIR (written by run.sh):
  meta.txt    key=value: rate, router, duration, cpu_*_ns, wall_ns, rss, ...
  uac.csv     sipp -trace_stat of the UAC (LAN side); the last line is final
  uas.csv     the same for the UAS (WAN side)
  uas_logs.log  one "RW|call-id|via|contact|o|c|m|opaque|lan|" line per INVITE
  lan.pcap    SIP as it left / reached the phones (LAN end of the router's lan veth)
  wan.pcap    SIP as it reached / left the proxy (WAN end of the router's wan veth)
  counters.txt  `sipalgctl counters` after the run (sipalgd only)

Per-message delay through the router: a message is keyed by its first line,
Call-ID and CSeq (none of which an ALG changes); the first copy seen on each
side counts (a retransmission is a new send, not a delay). LAN->WAN: time on
the WAN capture minus time on the LAN capture; WAN->LAN the other way round.
"""
import json
import os
import struct
import sys

PUB = "203.0.113.1"
PHONE = "192.168.77.10"
PROXY = "203.0.113.10"


def read_meta(path):
    meta = {}
    try:
        with open(path) as f:
            for line in f:
                k, sep, v = line.rstrip("\n").partition("=")
                if sep:
                    meta[k] = v
    except OSError:
        pass
    return meta


def sipp_final(path):
    """Last row of a sipp -trace_stat CSV as {column: value}."""
    try:
        with open(path, errors="replace") as f:
            lines = [l.rstrip("\n") for l in f if l.strip()]
    except OSError:
        return {}
    if len(lines) < 2:
        return {}
    head = lines[0].split(";")
    row = lines[-1].split(";")
    return dict(zip(head, row))


def ival(d, k):
    try:
        return int(d.get(k, "") or 0)
    except ValueError:
        return 0


def rewrite_counts(path):
    """Counts INVITEs (first arrival per Call-ID) the far side saw correctly rewritten."""
    seen = {}
    try:
        with open(path, errors="replace") as f:
            for line in f:
                i = line.find("RW|")
                if i < 0:
                    continue
                parts = line[i:].rstrip("\n").split("|")
                if len(parts) < 10:
                    continue
                cid, via, ct, o, c, m, x, lan = parts[1:9]
                ok = all((via, ct, o, c, m, x)) and not lan
                if cid not in seen:
                    seen[cid] = ok
    except OSError:
        pass
    return len(seen), sum(1 for v in seen.values() if v)


def pcap_packets(path):
    """Yield (ts_seconds, src_ip, dst_ip, udp_payload) from a classic pcap file."""
    try:
        f = open(path, "rb")
    except OSError:
        return
    with f:
        gh = f.read(24)
        if len(gh) < 24:
            return
        magic = struct.unpack("<I", gh[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            endian = "<"
        else:
            magic = struct.unpack(">I", gh[:4])[0]
            endian = ">"
        nano = magic == 0xA1B23C4D
        linktype = struct.unpack(endian + "I", gh[20:24])[0]
        div = 1e9 if nano else 1e6
        while True:
            ph = f.read(16)
            if len(ph) < 16:
                return
            sec, frac, incl, _orig = struct.unpack(endian + "IIII", ph)
            data = f.read(incl)
            if len(data) < incl:
                return
            if linktype == 1:       # Ethernet
                off = 14
                if data[12:14] != b"\x08\x00":
                    continue
            elif linktype == 113:   # Linux cooked (SLL)
                off = 16
            elif linktype == 276:   # SLL2
                off = 20
            else:
                off = 0
            ip = data[off:]
            if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            ihl = (ip[0] & 15) * 4
            if struct.unpack(">H", ip[6:8])[0] & 0x1FFF:
                continue  # a non-first fragment
            src = "%d.%d.%d.%d" % tuple(ip[12:16])
            dst = "%d.%d.%d.%d" % tuple(ip[16:20])
            yield sec + frac / div, src, dst, ip[ihl + 8:]


def sip_key(payload):
    """(first line, Call-ID, CSeq) from a (possibly truncated) SIP message."""
    head = payload.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    if not lines or not lines[0]:
        return None
    first = lines[0].strip()
    cid = cseq = None
    for l in lines[1:]:
        name, sep, val = l.partition(b":")
        if not sep:
            continue
        n = name.strip().lower()
        if n in (b"call-id", b"i"):
            cid = val.strip()
        elif n == b"cseq":
            cseq = b" ".join(val.split())
        if cid is not None and cseq is not None:
            break
    if cid is None or cseq is None:
        return None
    return (first, cid, cseq)


def first_seen(path, out_src):
    """{key: ts} for packets sent by out_src and for the others, first copy only."""
    sent, recv = {}, {}
    n = 0
    for ts, src, _dst, pl in pcap_packets(path):
        n += 1
        k = sip_key(pl)
        if k is None:
            continue
        d = sent if src == out_src else recv
        if k not in d:
            d[k] = ts
    return sent, recv, n


# Messages without a body that change no state: the ones the tc fast path
# handles (100 and 180 to the INVITE, the ACK). Keys as delays() names kinds.
FASTPATH_KINDS = ("100 INVITE", "180 INVITE", "ACK")


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * (len(sorted_vals) - 1)))))
    return sorted_vals[i]


def delays(cell):
    lan = os.path.join(cell, "lan.pcap")
    wan = os.path.join(cell, "wan.pcap")
    if not (os.path.exists(lan) and os.path.exists(wan)):
        return None
    # On the LAN capture, PHONE sends (LAN->WAN) and receives (WAN->LAN).
    lan_sent, lan_recv, n_lan = first_seen(lan, PHONE)
    # On the WAN capture, PROXY sends (WAN->LAN); the rest arrived from the router.
    wan_sent, wan_recv, n_wan = first_seen(wan, PROXY)
    out_d, in_d, by_kind = [], [], {}
    for k, t0 in lan_sent.items():
        t1 = wan_recv.get(k)
        if t1 is not None:
            v = (t1 - t0) * 1e3
            out_d.append(v)
            by_kind.setdefault(k[0].split(b" ", 1)[0].decode(errors="replace"), []).append(v)
    for k, t0 in wan_sent.items():
        t1 = lan_recv.get(k)
        if t1 is not None:
            v = (t1 - t0) * 1e3
            in_d.append(v)
            by_kind.setdefault(" ".join(x.decode(errors="replace") for x in
                                        (k[0].split(b" ")[1:2] + k[2].split(b" ")[1:2])), []).append(v)
    alld = sorted(out_d + in_d)
    out_d.sort()
    in_d.sort()
    res = {
        "pkts_lan": n_lan, "pkts_wan": n_wan,
        "matched": len(alld),
        "unmatched_out": len(lan_sent) - len(out_d),
        "unmatched_in": len(wan_sent) - len(in_d),
        "p50_ms": pct(alld, 50), "p99_ms": pct(alld, 99), "max_ms": alld[-1] if alld else None,
        "out_p50_ms": pct(out_d, 50), "out_p99_ms": pct(out_d, 99),
        "in_p50_ms": pct(in_d, 50), "in_p99_ms": pct(in_d, 99),
        "kinds": {},
    }
    fast, slow = [], []
    for kind, v in sorted(by_kind.items()):
        v.sort()
        res["kinds"][kind] = {"n": len(v), "p50_ms": pct(v, 50), "p99_ms": pct(v, 99)}
        (fast if kind in FASTPATH_KINDS else slow).extend(v)
    # The kinds a tc fast path takes off the queue (issue 11) against the
    # rest, so its effect on delay shows apart from the messages that still
    # wait for the daemon's hold-off.
    fast.sort()
    slow.sort()
    res["fast_kinds"] = {"n": len(fast), "p50_ms": pct(fast, 50), "p99_ms": pct(fast, 99)}
    res["slow_kinds"] = {"n": len(slow), "p50_ms": pct(slow, 50), "p99_ms": pct(slow, 99)}
    return res


def counters(path):
    c = {}
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) == 2 and p[1].isdigit():
                    c[p[0]] = int(p[1])
    except OSError:
        pass
    return c


def main(cell):
    meta = read_meta(os.path.join(cell, "meta.txt"))
    uac = sipp_final(os.path.join(cell, "uac.csv"))
    uas = sipp_final(os.path.join(cell, "uas.csv"))
    invites, rewritten = rewrite_counts(os.path.join(cell, "uas_logs.log"))
    ok = ival(uac, "SuccessfulCall(C)")
    failed = ival(uac, "FailedCall(C)")
    attempted = ival(uac, "OutgoingCall(C)")
    cpu_napi = int(meta.get("cpu_napi_ns", 0) or 0)
    cpu_daemon = int(meta.get("cpu_daemon_ns", 0) or 0)
    cpu = cpu_napi + cpu_daemon
    res = {
        "rate": int(meta.get("rate", 0) or 0),
        "router": meta.get("router", "?"),
        "duration_s": int(meta.get("duration", 0) or 0),
        "calls_wanted": int(meta.get("calls", 0) or 0),
        "calls_attempted": attempted,
        "calls_ok": ok,
        "calls_failed": failed,
        "uas_calls_ok": ival(uas, "SuccessfulCall(C)"),
        "uas_calls_failed": ival(uas, "FailedCall(C)"),
        "invites_seen_by_uas": invites,
        "invites_rewritten": rewritten,
        "retrans_uac": ival(uac, "Retransmissions(C)"),
        "retrans_uas": ival(uas, "Retransmissions(C)"),
        "dead_call_msgs": ival(uac, "DeadCallMsgs(C)") + ival(uas, "DeadCallMsgs(C)"),
        "out_of_call_msgs": ival(uac, "OutOfCallMsgs(C)") + ival(uas, "OutOfCallMsgs(C)"),
        "cpu_napi_ns": cpu_napi,
        "cpu_daemon_ns": cpu_daemon,
        "cpu_window_s": int(meta.get("wall_ns", 0) or 0) / 1e9,
        "cpu_per_call_us": (cpu / ok / 1e3) if ok else None,
        "napi_per_call_us": (cpu_napi / ok / 1e3) if ok else None,
        "daemon_per_call_us": (cpu_daemon / ok / 1e3) if ok else None,
        "rss_idle_kib": int(meta.get("rss_idle_kib", 0) or 0),
        "rss_max_kib": int(meta.get("rss_max_kib", 0) or 0),
        "rss_end_kib": int(meta.get("rss_end_kib", 0) or 0),
        "hwm_kib": int(meta.get("hwm_kib", 0) or 0),
        "dialogs_max": int(meta.get("dialogs_max", 0) or 0),
        "daemon_exit": meta.get("daemon_exit", ""),
        "capture_drops": meta.get("capture_drops", ""),
        "veth_drops": meta.get("veth_drops", ""),
        "sipp_uac_exit": meta.get("uac_exit", ""),
        "sipp_uas_exit": meta.get("uas_exit", ""),
        "delay": delays(cell),
        "counters": counters(os.path.join(cell, "counters.txt")),
    }
    res["retrans"] = res["retrans_uac"] + res["retrans_uas"]
    with open(os.path.join(cell, "result.json"), "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
