#!/bin/sh
# Data-driven checks on the built daemon: configuration files (good and bad,
# with the exact expected error).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rc=0
echo "== config files"
sh "$here/conf_check.sh" "$root/sipalgd" || rc=1
echo "== counters documented alike (src/stats.h, sipalgctl.8, sample config)"
python3 "$here/counters_check.py" || rc=1
exit $rc
