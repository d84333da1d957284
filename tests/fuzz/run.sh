#!/bin/sh
# Build the libFuzzer targets and run each for FUZZ_SECONDS (default 60).
#   tests/fuzz/run.sh                 all targets
#   tests/fuzz/run.sh alg sdp         some of them
# Every regression input under tests/fuzz/regress/<target>/ is replayed
# first; then each target fuzzes a scratch copy of its seed corpus (the repo
# is never written). Exit status 1 on any crash, leak, timeout or invariant
# violation, with the path of the reproducer.
#   FUZZ_SECONDS   seconds per target (make fuzz-short: 60, make fuzz: 1800)
#   FUZZ_SEED      a fixed search (make fuzz-short: 1): each target then runs
#                  a fixed number of inputs (its line in runs_of below) from
#                  a corpus listed in a fixed order, FUZZ_SECONDS only as a cap
#                  (a slower machine runs a prefix of the same search)
#   FUZZ_KEEP=1    keep the scratch directory (new corpus, crash files)
#   CC             clang with libFuzzer (default clang)
set -u
cd "$(dirname "$0")/../.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
CC_FUZZ=${CC_FUZZ:-clang}
OUT=build/fuzz
# The core list is the Makefile's (src/core.mk): one list for both builds.
CORE="$(make -s --no-print-directory print-core-src) tests/unit/stubs.c" || exit 1
CFLAGS_FUZZ="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=gnu11 -D_GNU_SOURCE -DSIPALGD_FUZZ_CLOCK -Wall -Wextra -Isrc"
TARGETS=${*:-"sipmsg sdp conf alg sipframe osipdiff"}

# ASan: leaks fail the run; UBSan: a report is fatal (-fno-sanitize-recover).
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

# Inputs per target for the fixed search: about a minute each on the
# 2-core machine of the CI (measured with FUZZ_SEED=1, docs in README).
runs_of() {
	case $1 in
	sipmsg) echo 600000 ;; sdp) echo 2500000 ;; conf) echo 2000000 ;;
	alg) echo 250000 ;; sipframe) echo 1500000 ;; osipdiff) echo 400000 ;;
	*) echo 100000 ;;
	esac
}

mkdir -p "$OUT" || exit 1
# libFuzzer runs its seeds in the order the directory lists them (sorted
# by size only, ties as listed): on ext4 that order is a hash with a
# per-filesystem key, so the same seed searched differently on another
# machine (a CI run found what no run here had reached). tmpfs lists in
# creation order, and the seeds are copied in sorted order below.
tmpbase=${TMPDIR:-/tmp}
if [ -n "${FUZZ_SEED:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	tmpbase=/dev/shm
fi
scratch=$(mktemp -d "$tmpbase/sipalgd-fuzz.XXXXXX") || exit 1
if [ "${FUZZ_KEEP:-0}" = 1 ]; then
	echo "fuzz: scratch directory kept: $scratch"
else
	trap 'rm -rf "$scratch"' EXIT INT TERM
fi

status=0
lsan_saved=${LSAN_OPTIONS:-}
for t in $TARGETS; do
	src=tests/fuzz/${t}_fuzz.c
	bin=$OUT/${t}_fuzz
	# libosip2's own leaks do not fail the osipdiff target (ours still do).
	if [ "$t" = osipdiff ]; then
		export LSAN_OPTIONS="suppressions=$PWD/tests/osip/lsan.supp"
	else
		export LSAN_OPTIONS="$lsan_saved"
	fi
	if [ ! -f "$src" ]; then
		echo "fuzz: no target $t ($src)"; status=1; continue
	fi
	echo "== fuzz: build $bin"
	# osipdiff also links the comparison and libosip2 (issue 13).
	more=""
	[ "$t" = osipdiff ] && more="tests/osip/osipdiff.c tests/osip/osipdiff_osip.c -losipparser2"
	# shellcheck disable=SC2086
	if ! $CC_FUZZ $CFLAGS_FUZZ -o "$bin" "$src" $CORE $more -lyaml; then
		echo "fuzz: $t: build failed"; status=1; continue
	fi

	# 1. regression inputs: each must run clean
	dirs="tests/fuzz/regress/$t"
	failed=0
	for d in $dirs; do
		[ -d "$d" ] && [ -n "$(ls -A "$d")" ] || continue
		for f in "$d"/*; do
			if ! "$bin" -rss_limit_mb=2048 -timeout=10 "$f" >"$scratch/$t-regress.log" 2>&1; then
				grep -aE 'INVARIANT|ERROR: |SUMMARY|runtime error' "$scratch/$t-regress.log" | head -n 5
				echo "fuzz: $t: REGRESSION: $f fails"
				failed=1
			fi
		done
		echo "== fuzz: $t: $(ls "$d" | wc -l) inputs from $d replayed"
	done
	if [ $failed = 1 ]; then
		status=1
		continue
	fi

	# 2. fuzz on a scratch copy of the seeds
	work=$scratch/$t
	mkdir -p "$work/corpus" "$work/artifacts"
	seeds="tests/fuzz/corpus/$t"
	if [ "$t" = sipmsg ]; then
		seeds="$seeds tests/data/torture/rfc4475 tests/data/torture/rfc5118"
	fi
	if [ "$t" = osipdiff ]; then
		# The differential test's corpora are its seeds.
		seeds="tests/fuzz/corpus/sipmsg tests/data/torture/rfc4475 tests/data/torture/rfc5118 tests/data/rewrite tests/data/malformed"
	fi
	# One scratch corpus, filled in a sorted order (names prefixed with
	# their directory: two corpora may share a file name).
	n=0
	for d in $seeds; do
		[ -d "$d" ] || continue
		for f in $(cd "$d" && LC_ALL=C ls); do
			[ -f "$d/$f" ] || continue
			cp "$d/$f" "$work/corpus/$(echo "$d" | tr / _)_$f" && n=$((n + 1))
		done
	done
	# FUZZ_SEED (make fuzz-short: 1): the same search every run, so that
	# make check does not pass or fail on what a random seed happens to
	# reach; make fuzz leaves it unset and explores for FUZZ_SECONDS.
	limit=""
	if [ -n "${FUZZ_SEED:-}" ]; then
		runs=${FUZZ_RUNS:-$(runs_of "$t")}
		limit="-runs=$runs -reload=0"
		echo "== fuzz: $t: $n seeds, $runs inputs from seed $FUZZ_SEED (at most ${FUZZ_SECONDS}s)"
	else
		echo "== fuzz: $t: $n seeds, ${FUZZ_SECONDS}s"
	fi
	# Comparisons the fuzzer learns from include pointer values: for the
	# fixed search they must be the same on every machine, so no address
	# randomisation, and the same environment and argument lengths (the
	# stack's addresses follow from them; the scratch names have one
	# length).
	norand=""
	if [ -n "${FUZZ_SEED:-}" ] && setarch "$(uname -m)" -R true 2>/dev/null; then
		lsan=""
		if [ "$t" = osipdiff ]; then
			cp tests/osip/lsan.supp "$scratch/lsan.supp"
			lsan="suppressions=$scratch/lsan.supp"
		fi
		norand="env -i PATH=/usr/bin:/bin ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS LSAN_OPTIONS=$lsan setarch $(uname -m) -R"
	fi
	# shellcheck disable=SC2086
	$norand "$bin" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
		${FUZZ_SEED:+-seed="$FUZZ_SEED"} $limit -print_final_stats=1 \
		-artifact_prefix="$work/artifacts/" "$work/corpus" \
		>"$work/fuzz.log" 2>&1
	rc=$?
	grep -aE '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ *DONE)' "$work/fuzz.log" | sed "s/^/   $t: /"
	crash=$(ls "$work/artifacts" 2>/dev/null | head -n 1)
	if [ $rc -ne 0 ] || [ -n "$crash" ]; then
		grep -aE 'INVARIANT|ERROR: |SUMMARY|runtime error' "$work/fuzz.log" | head -n 20
		if [ -n "$crash" ]; then
			mkdir -p "$OUT/crashes/$t"
			cp "$work/artifacts/$crash" "$OUT/crashes/$t/"
			echo "fuzz: $t: CRASH (exit $rc); reproducer: $OUT/crashes/$t/$crash"
			echo "      replay: $bin $OUT/crashes/$t/$crash"
		else
			tail -n 30 "$work/fuzz.log"
			echo "fuzz: $t: fuzzer exited $rc without a reproducer (log above)"
		fi
		status=1
	else
		echo "   $t: ok, corpus $(ls "$work/corpus" | wc -l) inputs"
	fi
done
[ $status -eq 0 ] && echo "fuzz: all targets passed" || echo "fuzz: FAILED"
exit $status
