#!/usr/bin/python3
"""Every counter is documented in ONE place, src/stats.h's STATS_LIST
(name, kind, help). Check that the others agree with it:

  - docs/man/sipalgctl.8, section COUNTERS: each counter once, as
        .TP
        .BR NAME " (counter)"     (or "(gauge)")
        HELP.
    in STATS_LIST order, and nothing else;
  - conf/sipalgd.yaml: every `word` in its comments that looks like a
    counter (snake_case, not a key or a value of a key) is one;
  - the help texts can go into a Prometheus HELP line unescaped.
`sipalgctl metrics` prints HELP from the same strings (the ops lab parses it).
--print-man writes the section (to paste after a change). Exit 1 on any disagreement."""
import re
import sys
import os

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def stats_list():
    src = open(os.path.join(root, "src/stats.h")).read()
    rows = re.findall(r'^\tX\((\w+), ([CG]), "([^"\\]*)"\)', src, re.M)
    if len(rows) < 10:
        sys.exit("counters_check: cannot read STATS_LIST from src/stats.h")
    return [(n, "counter" if k == "C" else "gauge", h) for n, k, h in rows]


def man_section(rows):
    out = [".SH COUNTERS"]
    for n, k, h in rows:
        out += [".TP", '.BR %s " (%s)"' % (n, k), h + "."]
    return "\n".join(out) + "\n"


def main():
    rows = stats_list()
    if "--print-man" in sys.argv:
        sys.stdout.write(man_section(rows))
        return 0
    bad = []
    for n, k, h in rows:
        if "\n" in h or "\\" in h or not h:
            bad.append("src/stats.h: %s: help text must be one plain line" % n)
    man = open(os.path.join(root, "docs/man/sipalgctl.8")).read()
    m = re.search(r"^\.SH COUNTERS\n(.*?)(?=^\.SH |\Z)", man, re.M | re.S)
    if not m:
        bad.append("docs/man/sipalgctl.8: no COUNTERS section")
    else:
        got = re.findall(r'^\.TP\n\.BR (\w+) " \((\w+)\)"\n(.*)$', m.group(1), re.M)
        want = {n: (k, h + ".") for n, k, h in rows}
        have = {n: (k, h) for n, k, h in got}
        for n, (k, h) in want.items():
            if n not in have:
                bad.append("docs/man/sipalgctl.8: counter %s is not documented" % n)
            elif have[n] != (k, h):
                bad.append("docs/man/sipalgctl.8: %s says %r, src/stats.h says %r" % (n, have[n], (k, h)))
        for n in have:
            if n not in want:
                bad.append("docs/man/sipalgctl.8: %s is not a counter (not in src/stats.h)" % n)
        if [n for n, _, _ in got] != [n for n, _, _ in rows if n in have]:
            bad.append("docs/man/sipalgctl.8: COUNTERS not in STATS_LIST order")
    names = {n for n, _, _ in rows}
    # Backquoted words in the sample config that are not counters: values and key names.
    not_counters = {"any", "batch", "debug", "iptables", "nft", "peer", "queue", "registrar"}
    conf = open(os.path.join(root, "conf/sipalgd.yaml")).read()
    for w in sorted(set(re.findall(r"`([a-z_]+)`", conf))):
        if w not in names and w not in not_counters:
            bad.append("conf/sipalgd.yaml: `%s` is named like a counter but is not one" % w)
    for b in bad:
        print("counters: " + b)
    print("counters: %d in src/stats.h, %s" % (len(rows), "all documented alike" if not bad else "%d problems" % len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
