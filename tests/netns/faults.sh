#!/bin/bash
# tests/netns/faults.sh: sipalgd under faults, in the netns lab.
#
#   tests/netns/faults.sh                  # (a) kill -9 mid-call + restart, (b) SIGHUP,
#                                          # (d) overload (ENOBUFS), (c) ASan build
#   FAULTS="kill hup" tests/netns/faults.sh
#   SAN=valgrind tests/netns/faults.sh     # (c) under valgrind instead of the ASan binary
#
# (a) kill -9 in the middle of a call: media keeps flowing on kernel state, SIP stops
#     (fail closed), a restart with the same config takes over (one copy of its iptables
#     chain/jump and nft table) and the call's BYE still closes the pinholes.
# (b) SIGHUP with a valid changed config keeps a running call; a broken file is refused
#     with FILE:LINE in the log, the old config stays, the daemon stays healthy.
# (d) overload: the daemon stopped (SIGSTOP) while a LAN host sends 30,000 datagrams: nothing
#     passes unqueued, ENOBUFS is counted and logged at most once a second, status stays
#     healthy and calls work after SIGCONT; the daemon's capabilities are NET_ADMIN+NET_RAW only.
# (e) ctfull: the router namespace's conntrack table filled to nf_conntrack_max: new SIP flows
#     are dropped by the kernel (nothing leaks), the daemon stays healthy, calls work after
#     the table is flushed.
# (c) the daemon built with -fsanitize=address,undefined into build/asan/ (or valgrind):
#     calls, a registration, the malformed corpus and the torture messages; SIGTERM; the
#     exit status must be 0 and the log free of sanitizer/valgrind reports.
# The python side (hostile.py parts fault_kill, fault_hup, san_calls) asks this script
# through two fifos to kill -9 / start / HUP the daemon, so every daemon is our child.
# Prints `N passed, N failed` last; exit 1 on any failure. Bounded: < 5 minutes.
# shellcheck disable=SC2086
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
LAB_REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
. "$HERE/hostile-lib.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
ALG=sipalgd
LAB_ID=${LAB_ID:-$(( 5000 + $$ % 4000 ))}
FAULTS=${FAULTS:-kill hup overload ctfull san}
SAN=${SAN:-asan}
HX_BUDGET=${HX_BUDGET:-290}

lab_init
trap lab_cleanup EXIT
trap 'echo "# interrupted" >&2; exit 130' INT TERM
start=$(date +%s)
echo "# sipalgd faults lab: id=$LAB_ID tmp=$LAB_TMP faults=$FAULTS san=$SAN"
lab_watchdog faults.sh "$HX_BUDGET"
lab_topology
export LAB_TMP
HX_REQ=$LAB_TMP/req.fifo HX_ACK=$LAB_TMP/ack.fifo
mkfifo "$HX_REQ" "$HX_ACK"
export HX_REQ HX_ACK
exec 3<>"$HX_REQ" 4<>"$HX_ACK"
HX_BIN=$LAB_REPO/sipalgd

# Run hostile.py --parts $1 and serve its requests until it exits.
serve_py() {
	local parts=$1 out=$LAB_TMP/py-$2.out cmd drc
	: >"$out"
	"$PY" "$HERE/hostile.py" --id "$LAB_ID" --parts "$parts" >"$out" 2>&1 &
	local pypid=$!
	LAB_PIDS="$LAB_PIDS $pypid"
	tail -n +1 --pid=$pypid -f "$out" | grep -v -E '^[0-9]+ passed, [0-9]+ failed$' &
	local tailpid=$!
	LAB_PIDS="$LAB_PIDS $tailpid"
	local part="" cmd
	while kill -0 $pypid 2>/dev/null; do
		# read -t keeps what it got of a line when it times out: keep it
		# too, or a command cut at the timeout reads as two unknown ones
		if ! read -r -t 0.5 -u 3 cmd; then
			part="$part$cmd"
			continue
		fi
		cmd="$part$cmd" part=""
		case "$cmd" in
		kill9)
			kill -KILL "$LAB_DAEMON_PID"; wait "$LAB_DAEMON_PID"; drc=$?
			echo "# kill -9 $LAB_DAEMON_PID (status $drc)"
			LAB_DAEMON_PID=""
			echo "ok killed $drc" >&4 ;;
		start)
			if hx_daemon_start "$HX_CONF" "$HX_BIN" "$LAB_DAEMON_LOG"; then
				echo "ok $LAB_DAEMON_PID" >&4
			else
				echo "fail" >&4
			fi ;;
		hup)
			kill -HUP "$LAB_DAEMON_PID"; echo "ok" >&4 ;;
		stop)
			kill -STOP "$LAB_DAEMON_PID"; echo "ok" >&4 ;;
		cont)
			kill -CONT "$LAB_DAEMON_PID"; echo "ok" >&4 ;;
		pid)
			echo "ok $LAB_DAEMON_PID" >&4 ;;
		*)
			echo "unknown" >&4 ;;
		esac
	done
	wait $pypid
	wait $tailpid 2>/dev/null
	hx_take_py "$out"
}

for f in $FAULTS; do
	case $f in
	kill|hup|overload|ctfull)
		# overload: a queue longer than the socket can hold, so the socket
		# overflows (ENOBUFS) before the kernel's queue limit does
		if [ $f = overload ]; then
			hx_conf "$LAB_TMP/faults-$f.yaml" "log: { level: info }" "limits: { messages_per_second_per_source: 0 }"
			sed -i 's/^queue: { number: 7 }$/queue: { number: 7, max_length: 200000 }/' "$LAB_TMP/faults-$f.yaml"
		else
			hx_conf "$LAB_TMP/faults-$f.yaml" "log: { level: info }"
		fi
		HX_BIN=$LAB_REPO/sipalgd
		if ! hx_daemon_start "$LAB_TMP/faults-$f.yaml" "$HX_BIN" "$LAB_TMP/sipalgd-$f.log"; then
			hx_fail "fault_${f}_daemon_start" "see the log"; continue
		fi
		case $f in
		kill) serve_py fault_kill kill ;;
		hup) serve_py fault_hup hup ;;
		overload) serve_py fault_overload overload ;;
		ctfull) serve_py fault_ctfull ctfull ;;
		esac
		hx_daemon_stop "fault_${f}_clean_exit"
		;;
	san)
		if [ "$SAN" = valgrind ]; then
			if ! command -v valgrind >/dev/null; then hx_fail san_available "valgrind not installed"; continue; fi
			HX_BIN=$LAB_TMP/sipalgd-valgrind
			printf '#!/bin/sh\nexec valgrind --leak-check=full --error-exitcode=9 --errors-for-leak-kinds=definite,indirect -q %s "$@"\n' \
				"$LAB_REPO/sipalgd" >"$HX_BIN"
			chmod +x "$HX_BIN"
		else
			HX_BIN=$LAB_REPO/build/asan/sipalgd
			srcs=$(ls "$LAB_REPO"/src/*.c | grep -v '/sipalgctl\.c$')
			newest=$(ls -t $srcs "$LAB_REPO"/src/*.h | head -n1)
			if [ ! -x "$HX_BIN" ] || [ "$newest" -nt "$HX_BIN" ]; then
				mkdir -p "$LAB_REPO/build/asan"
				echo "# building $HX_BIN (clang -fsanitize=address,undefined)"
				# the fast path's loader too, when `make` built its skeleton
				fp=""
				[ -f "$LAB_REPO/build/sipfast.skel.h" ] &&
					fp="-DSIPALGD_FASTPATH=1 -I$LAB_REPO/build $(pkg-config --cflags --libs libbpf)"
				if ! clang -fsanitize=address,undefined -fno-omit-frame-pointer -g -O1 -std=gnu11 -D_GNU_SOURCE \
					-DSIPALGD_VERSION="\"$(cat "$LAB_REPO/VERSION")\"" -I"$LAB_REPO/src" $srcs -o "$HX_BIN.tmp" \
					$fp $(pkg-config --cflags --libs libnetfilter_queue libmnl libnftnl libnftables libnetfilter_conntrack yaml-0.1) \
					>"$LAB_TMP/asan-build.log" 2>&1; then
					hx_fail san_build "$(tail -n 5 "$LAB_TMP/asan-build.log")"; continue
				fi
				mv "$HX_BIN.tmp" "$HX_BIN"
			fi
			export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=23"
			export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=24"
		fi
		hx_conf "$LAB_TMP/faults-san.yaml" "log: { level: debug }"
		if ! hx_daemon_start "$LAB_TMP/faults-san.yaml" "$HX_BIN" "$LAB_TMP/sipalgd-san.log"; then
			hx_fail "san_daemon_start" "see the log"; continue
		fi
		serve_py san_calls,malformed,torture,slip san
		hx_daemon_stop "san_clean_exit_status_0"
		if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: |==[0-9]+== [A-Z]|Invalid (read|write)|definitely lost' \
			"$LAB_TMP/sipalgd-san.log"; then
			hx_fail san_no_reports "$(grep -m5 -E 'ERROR|runtime error|SUMMARY|Invalid|lost' "$LAB_TMP/sipalgd-san.log" | tr '\n' ' ')"
		else
			hx_ok san_no_reports
		fi
		unset ASAN_OPTIONS UBSAN_OPTIONS
		;;
	esac
done
echo "# faults lab: $(( $(date +%s) - start ))s"
if ! hx_summary; then LAB_KEEP_TMP=1; exit 1; fi
exit 0
