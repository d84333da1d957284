#!/bin/sh
# conf_check.sh SIPALGD: run `SIPALGD -n -c FILE` on every config in
# tests/data/conf/ and on the shipped example.
#   good-*.yaml  must exit 0 and print nothing on stderr;
#   NAME.yaml    must exit 1, and the first stderr line, without a leading
#                "sipalgd: ", must equal NAME.err exactly.
# The daemon is run from inside tests/data/conf/ with the bare file name, so
# the FILE in "FILE:LINE: reason" does not depend on where the repo lives.
# Last line: "N passed, N failed"; the exit status is non-zero on failure.
set -u

if [ $# -ne 1 ] || [ "$1" = "-h" ]; then
	echo "usage: $0 PATH/TO/sipalgd" >&2
	exit 2
fi
bin=$1
case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac
if [ ! -x "$bin" ]; then
	echo "$0: $bin is not executable" >&2
	exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
dir=$here/conf
example=$here/../../conf/sipalgd.yaml
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM

# A hung or looping parser must fail the case, not the whole run.
if command -v timeout >/dev/null 2>&1; then to="timeout 10"; else to=""; fi

pass=0
fail=0

# run FILE: sets rc and first (first stderr line, "sipalgd: " removed)
run() {
	(cd "$(dirname "$1")" && $to "$bin" -n -c "$(basename "$1")") \
		>"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
	first=$(head -n 1 "$tmp/err")
	first=${first#sipalgd: }
}

bad() {
	fail=$((fail + 1))
	echo "FAIL $1: $2"
}

for f in "$dir"/*.yaml "$example"; do
	[ -f "$f" ] || continue
	name=$(basename "$f" .yaml)
	run "$f"
	case $name in
	good-*|sipalgd)
		if [ "$rc" -ne 0 ]; then
			bad "$name" "exit $rc, stderr: $first"
		elif [ -s "$tmp/err" ]; then
			bad "$name" "exit 0 but stderr: $first"
		else
			pass=$((pass + 1))
		fi
		;;
	*)
		if [ ! -f "$dir/$name.err" ]; then
			bad "$name" "no $name.err next to it"
			continue
		fi
		want=$(head -n 1 "$dir/$name.err")
		if [ "$rc" -ne 1 ]; then
			bad "$name" "exit $rc (want 1), stderr: $first"
		elif [ "$first" != "$want" ]; then
			bad "$name" "stderr differs"
			echo "  want: $want"
			echo "  got:  $first"
		else
			pass=$((pass + 1))
		fi
		;;
	esac
done

# An .err with no config beside it is a test that silently stopped running.
for e in "$dir"/*.err; do
	[ -f "$e" ] || continue
	[ -f "${e%.err}.yaml" ] || bad "$(basename "$e")" "no matching .yaml"
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
