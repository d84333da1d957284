#!/usr/bin/python3
"""report.py: the benchmark's tables.

  report.py --line CELL/result.json          one line per calls cell (progress)
  report.py --results DIR [--doc FILE]       all tables to stdout; with --doc,
        replace in FILE the sections this run measured (between
        <!-- bench:NAME:begin --> and <!-- bench:NAME:end -->), keeping the rest.
"""
import argparse
import glob
import json
import os
import re
import sys

ROUTER_ORDER = {"none": 0, "helper": 1, "sipalgd": 2, "queue": 3}
ROUTER_NAME = {"none": "masquerade", "helper": "kernel helper", "sipalgd": "sipalgd",
               "queue": "queue floor"}


def f1(v, nd=1):
    return "-" if v is None else f"{v:.{nd}f}"


def mib(kib):
    return "-" if not kib else f"{kib / 1024:.1f}"


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def machine(res):
    m = {}
    try:
        with open(os.path.join(res, "machine.txt")) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                m[k] = v
    except OSError:
        pass
    return m


def fastpath_share(k):
    """Share of the SIP messages through the router that the tc fast path
    handled: what it handled over that plus what reached the queue (pkts_in
    counts every datagram the diversion queued, the fast path's pass-ons
    included). "-" for a daemon without the fast-path counters."""
    if "fastpath_handled_out" not in k and "fastpath_handled_in" not in k:
        return "-"
    fp = int(k.get("fastpath_handled_out", 0)) + int(k.get("fastpath_handled_in", 0))
    total = fp + int(k.get("pkts_in", 0))
    return f"{100.0 * fp / total:.1f}%" if total else "-"


def cell_line(r):
    d = r.get("delay") or {}
    s = (f"  {r['rate']:>5}/s {r['router']:<8} ok {r['calls_ok']}/{r['calls_wanted']} "
         f"failed {r['calls_failed']} rewritten {r['invites_rewritten']}/{r['invites_seen_by_uas']} "
         f"retrans {r['retrans']} cpu/call {f1(r['cpu_per_call_us'])} us "
         f"(napi {f1(r['napi_per_call_us'])} + daemon {f1(r['daemon_per_call_us'])}) "
         f"delay p50/p99 {f1(d.get('p50_ms'), 2)}/{f1(d.get('p99_ms'), 2)} ms")
    if r["router"] == "sipalgd":
        s += f" rss {mib(r['rss_idle_kib'])}->{mib(r['rss_max_kib'])} MiB dialogs<= {r['dialogs_max']}"
        c = r.get("counters") or {}
        refused = sum(int(c.get(k, 0)) for k in ("refused_pinholes_full", "refused_pinholes_share",
                                                   "pinholes_refused"))
        s += (f" streams pinholed {c.get('pinholes_opened', '-')} refused {refused}"
              f" drop_rate {c.get('drop_rate', '-')} drop_limit {c.get('drop_limit', '-')}"
              f" queue_behind {c.get('queue_behind', '-')} fastpath {fastpath_share(c)}")
    return s


def calls_tables(cells):
    out = []
    if not cells:
        return out
    rates = sorted({c["rate"] for c in cells})
    by = {(c["rate"], c["router"]): c for c in cells}
    out.append("| calls/s | router | calls ok | failed | INVITEs rewritten | retrans | router CPU/call (us) | = NAPI + daemon (us) | delay p50 / p99 (ms) | sipalgd RSS idle / max (MiB) | max dialogs |")
    out.append("|---:|---|---:|---:|---:|---:|---:|---|---|---|---:|")
    for c in sorted(cells, key=lambda c: (c["rate"], ROUTER_ORDER.get(c["router"], 9))):
        d = c.get("delay") or {}
        rss = f"{mib(c['rss_idle_kib'])} / {mib(c['rss_max_kib'])}" if c["router"] == "sipalgd" else ""
        dm = str(c["dialogs_max"]) if c["router"] == "sipalgd" else ""
        fails = c["calls_failed"]
        missing = c["calls_wanted"] - c["calls_ok"] - c["calls_failed"]
        ftxt = str(fails) + (f" (+{missing} not done)" if missing > 0 else "")
        out.append(
            f"| {c['rate']} | {ROUTER_NAME.get(c['router'], c['router'])} | {c['calls_ok']} / {c['calls_wanted']} | {ftxt} "
            f"| {c['invites_rewritten']} / {c['invites_seen_by_uas']} | {c['retrans']} "
            f"| {f1(c['cpu_per_call_us'])} | {f1(c['napi_per_call_us'])} + {f1(c['daemon_per_call_us'])} "
            f"| {f1(d.get('p50_ms'), 2)} / {f1(d.get('p99_ms'), 2)} | {rss} | {dm} |")
    out.append("")
    # Ratios per rate.
    out.append("| calls/s | CPU/call sipalgd / helper | ALG work/call (over masquerade) sipalgd / helper (us) | delay sipalgd adds p50 / p99 (ms) | sipalgd RSS (max - idle) / max dialogs (B) | targets met |")
    out.append("|---:|---:|---|---|---:|---|")
    for rate in rates:
        s, h, n = by.get((rate, "sipalgd")), by.get((rate, "helper")), by.get((rate, "none"))
        ratio = "-"
        if s and h and s["cpu_per_call_us"] and h["cpu_per_call_us"]:
            ratio = f"{s['cpu_per_call_us'] / h['cpu_per_call_us']:.2f}x"
        work = "-"
        if n and n["cpu_per_call_us"] and s and h and s["cpu_per_call_us"] and h["cpu_per_call_us"]:
            work = f"{s['cpu_per_call_us'] - n['cpu_per_call_us']:.1f} / {h['cpu_per_call_us'] - n['cpu_per_call_us']:.1f}"
        added = "-"
        base = n if (n and n.get("delay") and n["delay"].get("p50_ms") is not None) else h
        bname = "masquerade" if base is n else "helper"
        if s and base and s.get("delay") and base.get("delay") and s["delay"].get("p50_ms") is not None \
                and base["delay"].get("p50_ms") is not None:
            added = (f"{s['delay']['p50_ms'] - base['delay']['p50_ms']:.2f} / "
                     f"{s['delay']['p99_ms'] - base['delay']['p99_ms']:.2f} (vs {bname})")
        per = "-"
        if s and s["dialogs_max"] and s["rss_max_kib"] and s["rss_idle_kib"]:
            per = f"{(s['rss_max_kib'] - s['rss_idle_kib']) * 1024 / s['dialogs_max']:.0f}"
        met = []
        if s:
            ok = (s["calls_failed"] == 0 and s["calls_ok"] == s["calls_wanted"] and s["retrans"] == 0
                  and s["invites_rewritten"] == s["calls_wanted"])
            met.append("calls " + ("yes" if ok else "NO"))
            if added != "-":
                p99 = s["delay"]["p99_ms"] - base["delay"]["p99_ms"]
                met.append("delay " + ("yes" if p99 <= 3.0 else "NO"))
            if rate == 500 and ratio != "-":
                met.append("CPU " + ("yes" if s["cpu_per_call_us"] <= h["cpu_per_call_us"] else "NO"))
            if s["rss_idle_kib"]:
                rss_ok = s["rss_idle_kib"] <= 4096 and (
                    not s["dialogs_max"] or (s["rss_max_kib"] - 4096) * 1024 <= 2048 * s["dialogs_max"])
                met.append("RSS " + ("yes" if rss_ok else "NO"))
        out.append(f"| {rate} | {ratio} | {work} | {added} | {per} | {', '.join(met) or '-'} |")
    out.append("")
    # The `queue` router (nullq.c): SIP through NFQUEUE, accepted unchanged
    # with sipalgd's batching. Any ALG that handles its messages in user
    # space pays at least this; the CPU targets are ratios to the helper.
    if any(c["router"] == "queue" for c in cells):
        out.append("Queue floor: every SIP message through NFQUEUE to a reader that accepts it unchanged "
                   "(tests/bench/nullq.c: sipalgd's queue code, batching and hold-off; no parse, no rewrite, "
                   "no pinholes), against the kernel helper and the CPU target at that rate:")
        out.append("")
        out.append("| calls/s | queue floor CPU/call (us) = NAPI + reader | / helper | / masquerade | CPU target (x helper) |")
        out.append("|---:|---|---:|---:|---:|")
        for rate in rates:
            q, h, n = by.get((rate, "queue")), by.get((rate, "helper")), by.get((rate, "none"))
            if not q or not q["cpu_per_call_us"]:
                continue
            rh = f"{q['cpu_per_call_us'] / h['cpu_per_call_us']:.2f}x" if h and h["cpu_per_call_us"] else "-"
            rn = f"{q['cpu_per_call_us'] / n['cpu_per_call_us']:.2f}x" if n and n["cpu_per_call_us"] else "-"
            tgt = {500: "1.0", 2000: "0.8"}.get(rate, "-")
            out.append(f"| {rate} | {f1(q['cpu_per_call_us'])} = {f1(q['napi_per_call_us'])} + "
                       f"{f1(q['daemon_per_call_us'])} | {rh} | {rn} | {tgt} |")
        out.append("")
    # Delay per message kind, sipalgd vs the helper, at each rate.
    kinds = ["INVITE", "100 INVITE", "180 INVITE", "200 INVITE", "ACK", "BYE", "200 BYE"]
    groups = [("fast_kinds", "fast-path kinds (100, 180, ACK)"), ("slow_kinds", "all others")]
    hdr = "| calls/s | router | " + " | ".join(kinds + [g[1] for g in groups]) + " |"
    out.append("Delay through the router per message, p50 / p99 (ms); the last two columns pool the "
               "kinds a tc fast path takes off the queue and the rest:")
    out.append("")
    out.append(hdr)
    out.append("|---:|---|" + "---|" * (len(kinds) + len(groups)))
    for c in sorted(cells, key=lambda c: (c["rate"], ROUTER_ORDER.get(c["router"], 9))):
        d = c.get("delay") or {}
        k = d.get("kinds") or {}
        cols = []
        for v in [k.get(kd) for kd in kinds] + [d.get(g[0]) for g in groups]:
            cols.append(f"{f1(v['p50_ms'], 2)} / {f1(v['p99_ms'], 2)}" if v and v.get("n") else "-")
        out.append(f"| {c['rate']} | {ROUTER_NAME.get(c['router'], c['router'])} | " + " | ".join(cols) + " |")
    out.append("")
    # Daemon internals per rate: what the batching achieved.
    srows = [c for c in cells if c["router"] == "sipalgd" and c.get("counters")]
    if srows:
        out.append("sipalgd counters per run (packets per wake-up = pkts_in / verdict_batches; fast path "
                   "share = fastpath_handled_out + fastpath_handled_in over those plus pkts_in, \"-\" "
                   "when the daemon has no fast-path counters):")
        out.append("")
        out.append("| calls/s | pkts_in | rewritten | dropped | packets per verdict batch | holdoffs | nft batches | nft elements | ct deletes | queue_enobufs | errors (nft/ct/verdict) | drop_limit / drop_rate | fast path share |")
        out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|")
        for c in sorted(srows, key=lambda c: c["rate"]):
            k = c["counters"]
            vb = k.get("verdict_batches", 0)
            ppb = f"{k.get('pkts_in', 0) / vb:.2f}" if vb else "-"
            out.append(f"| {c['rate']} | {k.get('pkts_in', 0)} | {k.get('pkts_rewritten', 0)} | {k.get('pkts_dropped', 0)} "
                       f"| {ppb} | {k.get('holdoffs', 0)} | {k.get('nft_batches', 0)} | {k.get('nft_elements', 0)} "
                       f"| {k.get('ct_deletes', 0)} | {k.get('queue_enobufs', 0)} "
                       f"| {k.get('nft_errors', 0)}/{k.get('ct_errors', 0)}/{k.get('verdict_errors', 0)} "
                       f"| {k.get('drop_limit', 0)} / {k.get('drop_rate', 0)} | {fastpath_share(k)} |")
        out.append("")
    notes = []
    for c in cells:
        if c["router"] == "sipalgd" and c.get("daemon_exit") not in ("0", "", None):
            notes.append(f"- {c['rate']}/s: sipalgd exit status {c['daemon_exit']} on SIGTERM")
        d = c.get("delay") or {}
        if d and (d.get("unmatched_out", 0) or d.get("unmatched_in", 0)):
            notes.append(f"- {c['rate']}/s {c['router']}: {d.get('unmatched_out', 0)} LAN->WAN and "
                         f"{d.get('unmatched_in', 0)} WAN->LAN messages captured on one side only "
                         f"(dropped by the router or by a capture)")
        if str(c.get("capture_drops", "0")) not in ("0", ""):
            notes.append(f"- {c['rate']}/s {c['router']}: the captures dropped {c['capture_drops']} packets")
        if c.get("veth_drops"):
            notes.append(f"- {c['rate']}/s {c['router']}: packets dropped by the veth devices during the run: {c['veth_drops']}")
    if notes:
        out.append("Notes from the run:")
        out.append("")
        out.extend(notes)
        out.append("")
    return out


def media_tables(m):
    out = []
    if not m:
        return out
    out.append(f"{m.get('calls_up', '?')} of {m['calls']} calls set up through sipalgd and held; {m['streams_up']} of them "
               f"got RTP through both ways (LAN->WAN via the SNAT element, WAN->LAN via the pinhole). "
               f"RTP: {m['pps']} packets/s per call each way, {m['rtp_bytes']}-byte packets, {m['seconds']} s per phase.")
    out.append("")
    out.append("| phase | RTP sent / received (packets) | RTP packets/s | sipalgd CPU (ms/s) | sipalgd pkts_in during phase | router NAPI CPU (ms/s) | NAPI CPU per RTP packet (us) |")
    out.append("|---|---|---:|---:|---:|---:|---:|")
    for ph in m["phases"]:
        out.append(f"| {ph['name']} | {ph['sent']} / {ph['received']} | {ph['pps']:.0f} | {ph['daemon_ms_per_s']:.2f} "
                   f"| {ph['daemon_pkts_in']} | {ph['napi_ms_per_s']:.1f} | {f1(ph.get('napi_us_per_pkt'), 2)} |")
    out.append("")
    out.append(f"sipalgd CPU with media / without: {m.get('daemon_cpu_ratio', '-')}; RSS {mib(m.get('rss_kib'))} MiB "
               f"with the calls up; pinholes {m.get('pinholes_up')} with the calls up, {m.get('pinholes_end')} after "
               f"their BYEs ({m.get('closed')} closed); after the BYEs {m.get('after_bye_leaked')} of "
               f"{m.get('after_bye_sent')} RTP packets sent to the old public ports still reached the phone "
               f"(should be 0); SIP messages lost: {m.get('lost_sip')}.")
    out.append("")
    return out


def state_tables(s):
    out = []
    if not s:
        return out
    out.append(f"{s['phones_registered']} of {s['phones']} phones registered (each from its own LAN address), "
               f"then {s['dialogs_up']} of {s['dialogs']} dialogs established and held open; "
               f"a probe of {s['probe']} short calls (INVITE/200/ACK/BYE/200, a pinhole opened and closed each) at each level.")
    out.append("")
    out.append("| level | registrations | bindings | dialogs | pinholes | sipalgd RSS (MiB) | idle sipalgd CPU (ms/s) | probe: sipalgd CPU per call, raw / minus idle (us) | probe: INVITE->200 p50 / p99 (ms) |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for lv in s["levels"]:
        out.append(f"| {lv['name']} | {lv['registrations']} | {lv['bindings']} | {lv['dialogs']} | {lv['pinholes']} "
                   f"| {mib(lv['rss_kib'])} | {f1(lv.get('idle_ms_per_s'), 2)} "
                   f"| {f1(lv.get('probe_cpu_us_per_call'))} / {f1(lv.get('probe_cpu_us_per_call_net'))} "
                   f"| {f1(lv.get('probe_rtt_p50_ms'), 2)} / {f1(lv.get('probe_rtt_p99_ms'), 2)} |")
    out.append("")
    for k in ("rss_per_registration_b", "rss_per_dialog_b"):
        pass
    out.append(f"Memory: {f1(s.get('rss_per_registration_b'), 0)} B of RSS per registered phone, "
               f"{f1(s.get('rss_per_dialog_b'), 0)} B per dialog (target <= 2048); idle RSS {mib(s.get('rss_idle_kib'))} MiB (target <= 4). "
               f"Probe cost minus idle, fullest level / empty: {s.get('probe_ratio', '-')}. "
               f"sipalgd CPU per dialog set up (INVITE/200/ACK): {f1(s.get('setup_us_per_dialog_first_half'))} us for the first half, "
               f"{f1(s.get('setup_us_per_dialog_second_half'))} us for the second; per dialog torn down (BYE/200): "
               f"{f1(s.get('teardown_us_per_dialog_at_full'))} us from full, {f1(s.get('teardown_us_per_dialog_at_half'))} us from half. "
               f"SIP messages lost: {s.get('lost_sip')}.")
    if s.get("notes"):
        out.append("")
        out.extend("- " + n for n in s["notes"])
    out.append("")
    return out


def header(m):
    return [f"Measured {m.get('date', '?')} on {m.get('nproc', '?')} vCPU `{m.get('cpu', '?')}`, "
            f"{m.get('mem', '?')} RAM, kernel `{m.get('kernel', '?')}`, sipp {m.get('sipp', '?')}, "
            f"sipalgd at `{m.get('git', '?')}` (binary sha256 {m.get('binary', '?')}).", "",
            "Command:", "", "    " + m.get("command", "?"), ""]


def tcp_tables(cells):
    """The TCP cell (issue 12): single-segment messages over one connection."""
    out = ["| calls/s | router | calls ok | failed | INVITEs rewritten | retrans | router CPU/call (us) "
           "| = NAPI + daemon (us) |", "|---:|---|---:|---:|---:|---:|---:|---|"]
    for c in sorted(cells, key=lambda c: (c["rate"], ROUTER_ORDER.get(c["router"], 9))):
        missing = c["calls_wanted"] - c["calls_ok"] - c["calls_failed"]
        out.append(f"| {c['rate']} | {ROUTER_NAME.get(c['router'], c['router'])} | {c['calls_ok']} / {c['calls_wanted']} "
                   f"| {c['calls_failed']}{f' (+{missing} not done)' if missing > 0 else ''} "
                   f"| {c['invites_rewritten']} / {c['invites_seen_by_uas']} | {c['retrans']} "
                   f"| {f1(c['cpu_per_call_us'])} | {f1(c['napi_per_call_us'])} + {f1(c['daemon_per_call_us'])} |")
    out += ["", "| calls/s | CPU/call sipalgd / helper | ALG work/call (over masquerade) sipalgd / helper (us) |",
            "|---:|---:|---|"]
    by = {(c["rate"], c["router"]): c for c in cells}
    for rate in sorted({c["rate"] for c in cells}):
        s, h, n = by.get((rate, "sipalgd")), by.get((rate, "helper")), by.get((rate, "none"))
        ratio = work = "-"
        if s and h and s["cpu_per_call_us"] and h["cpu_per_call_us"]:
            ratio = f"{s['cpu_per_call_us'] / h['cpu_per_call_us']:.2f}x"
            if n and n["cpu_per_call_us"]:
                work = (f"{s['cpu_per_call_us'] - n['cpu_per_call_us']:.1f} / "
                        f"{h['cpu_per_call_us'] - n['cpu_per_call_us']:.1f}")
        out.append(f"| {rate} | {ratio} | {work} |")
    out.append("")
    return out


def update_doc(path, sections):
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        text = ""
    if not text:
        text = DOC_SKELETON
    for name, body in sections.items():
        begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
        block = begin + "\n" + body.rstrip("\n") + "\n" + end
        if begin in text and end in text:
            i, j = text.index(begin), text.index(end) + len(end)
            text = text[:i] + block + text[j:]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


DOC_SKELETON = """# sipalgd performance

Produced by `tests/bench/run.sh` (`make bench`); the sections between the
`bench:` markers are rewritten by each run, the rest is kept.

## Calls: masquerade, kernel helper, sipalgd

<!-- bench:calls:begin -->
<!-- bench:calls:end -->

## Where sipalgd's time goes

<!-- bench:profile:begin -->
<!-- bench:profile:end -->

## Media through the pinholes

<!-- bench:media:begin -->
<!-- bench:media:end -->

## State scale

<!-- bench:state:begin -->
<!-- bench:state:end -->
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--line")
    ap.add_argument("--results")
    ap.add_argument("--doc")
    a = ap.parse_args()
    if a.line:
        r = load(a.line)
        print(cell_line(r) if r else f"  (no result in {a.line})")
        return 0
    res = a.results
    m = machine(res)
    cells = [c for c in (load(p) for p in sorted(glob.glob(os.path.join(res, "calls-*.json")))) if c]
    media = load(os.path.join(res, "media.json"))
    state = load(os.path.join(res, "state.json"))
    prof_cell = load(os.path.join(res, "profile-cell.json"))
    trunk = load(os.path.join(res, "trunk.json"))
    tcp = [c for c in (load(p) for p in sorted(glob.glob(os.path.join(res, "tcp-*.json")))) if c]
    try:
        with open(os.path.join(res, "profile.md")) as f:
            prof = f.read()
    except OSError:
        prof = ""
    sections = {}
    hdr = header(m)
    if prof_cell and prof:
        sections["profile"] = "\n".join(hdr + [
            f"sipalgd alone at {prof_cell['rate']} calls/s for {prof_cell['duration_s']} s under `perf record -g -p` "
            f"(a separate run, not one of the table's):", "", cell_line(prof_cell).strip(), "", prof])
    if cells:
        sections["calls"] = "\n".join(hdr + calls_tables(cells))
    if trunk:
        c = trunk.get("counters") or {}
        refused = sum(int(c.get(k, 0)) for k in ("refused_pinholes_full", "refused_pinholes_share",
                                                   "pinholes_refused"))
        sections["trunk"] = "\n".join(hdr + [
            f"A PBX trunk with the shipped limits (issue 8): one LAN address, {trunk['rate']} calls/s for "
            f"{trunk['duration_s']} s, each call held {os.environ.get('HOLD_MS_TRUNK', '1500')} ms "
            f"(at most {trunk['dialogs_max']} dialogs up at once).", "",
            "| calls | failed | retransmissions | INVITEs rewritten | streams pinholed | streams refused "
            "| drop_rate | drop_limit | queue_behind |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {trunk['calls_ok']} / {trunk['calls_wanted']} | {trunk['calls_failed']} | {trunk['retrans']} "
            f"| {trunk['invites_rewritten']} / {trunk['invites_seen_by_uas']} | {c.get('pinholes_opened', '-')} "
            f"| {refused} | {c.get('drop_rate', '-')} | {c.get('drop_limit', '-')} | {c.get('queue_behind', '-')} |",
            ""])
    if tcp:
        sections["tcp"] = "\n".join(hdr + [
            "SIP over TCP (issue 12): the calls cell with sipp -t t1, one connection each way, each "
            "message written at once (the kernel helper handles TCP only where a message sits within "
            "one segment; TCP may still coalesce or split them under load); sipalgd with sip.tcp on "
            "relays each connection (terminated and re-originated), the helper edits segments in place. "
            "Calls \"not done\": the UAC's connection stopped carrying calls (sipp waits on it).", ""]
            + tcp_tables(tcp))
    if media:
        sections["media"] = "\n".join(hdr + media_tables(media))
    if state:
        sections["state"] = "\n".join(hdr + state_tables(state))
    if not sections:
        print("no results", file=sys.stderr)
        return 1
    for name in ("calls", "trunk", "tcp", "profile", "media", "state"):
        if name in sections:
            print(f"\n== {name} ==\n")
            print(sections[name])
    if a.doc:
        update_doc(a.doc, sections)
    return 0


if __name__ == "__main__":
    sys.exit(main())
