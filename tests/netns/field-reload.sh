#!/bin/bash
# tests/netns/field-reload.sh: SIGHUP in the field, in the netns lab (make field-reload).
#
# The daemon runs with sip.ports [5060], log.level warning, limits.streams_per_call 8
# (the default), log.syslog false. Then, each step checked on real traffic and on the
# daemon's own log:
#   1. before: a call on 5060 is rewritten (RTP both ways); an offer of 3 streams keeps all
#      3; no info line was logged (level warning).
#   2. SIGHUP with sip.ports [5070], log.level info, limits.streams_per_call 1
#      and queue.number 9 (restart-only): the log says "reload: applied" (an info line: the
#      new level is in force) with the three keys, and "reload: queue.number needs a restart;
#      kept 7"; the diversion names 5070, not 5060, and still queue 7; a call on 5070 is
#      rewritten with RTP both ways; an INVITE on 5060 crosses unrewritten (no longer
#      diverted); an offer of 3 streams on 5070 gets 2 refused (port 0), counted.
#   3. SIGHUP with log.syslog true: the daemon's lines (the reload's own, then the refused
#      stream's warning) go to syslog, which the daemon reaches at /dev/log in a private mount
#      namespace (a socket of this test's), and no longer to stderr.
#   4. SIP flowing on 5070 (every 2 ms) while SIGHUP adds 5080: no datagram crosses
#      unrewritten during the swap of the diversion; a call on 5080 is then rewritten.
#   5. SIGHUP with queue.divert nft, which this kernel refuses: the key is named and kept,
#      the running diversion still works.
#   6. SIGTERM: exit 0, no rules left (neither the real nor the scratch copy of the swap).
# VERBOSE=1 prints the daemon's log and syslog at the end.
# Prints `N passed, N failed` last; exit 1 on any failure. About 30 s.
# LAB_SIPALGD_BIN=/path/to/sipalgd runs another build (as lib.sh does): against a daemon
# whose SIGHUP does not rebuild the diversion, or one from before the key table, it fails.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
LAB_REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
. "$HERE/hostile-lib.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
ALG=sipalgd
LAB_ID=${LAB_ID:-$(( 1000 + $$ % 4000 ))}

lab_init
trap lab_cleanup EXIT INT TERM
lab_watchdog field-reload 180
lab_topology || exit 1

CONF=$LAB_TMP/field.yaml
LOG=$LAB_TMP/sipalgd.log
SYSLOG_SOCK=$LAB_TMP/syslog.sock
SYSLOG_TXT=$LAB_TMP/syslog.txt

# conf PORTS LEVEL RATE QUEUE SYSLOG [DIVERT]
conf() {
	cat >"$CONF.new" <<EOC
wan: { interface: wan }
lan: { networks: [192.168.77.0/24] }
sip: { ports: [$1] }
queue: { number: $4, divert: ${6:-iptables} }
limits: { streams_per_call: $3 }
paths: { nft_table: sipalgd_fr, control_socket: $LAB_TMP/sipalgd.sock, pid_file: $LAB_TMP/sipalgd.pid }
log: { level: $2, syslog: $5 }
EOC
	mv "$CONF.new" "$CONF"
}

py() { "$PY" "$HERE/field-reload.py" --id "$LAB_ID" "$@"; }
counter() { hx_ctl counters | awk -v k="$1" '$1 == k { print $2 }'; }
check() { # check NAME CONDITION-EXIT-STATUS WHY
	if [ "$2" = 0 ]; then hx_ok "$1"; else hx_fail "$1" "$3"; fi
}
# wait_line FILE PATTERN: up to 5 s for a line matching PATTERN
wait_line() {
	local i
	for i in $(seq 1 50); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# A syslog of our own: a datagram socket in this run's directory, written line by line.
"$PY" - "$SYSLOG_SOCK" "$SYSLOG_TXT" <<'EOP' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as f:
    while True:
        f.write(s.recv(65536).rstrip(b"\0\n") + b"\n")
EOP
LAB_PIDS="$LAB_PIDS $!"
for _ in $(seq 1 50); do [ -S "$SYSLOG_SOCK" ] && break; sleep 0.1; done

# The daemon in the router namespace, in a mount namespace of its own where /dev is a
# tmpfs with the usual devices and /dev/log is our socket: its syslog() reaches us and
# nothing of the machine's /dev changes.
BIN=${LAB_SIPALGD_BIN:-$LAB_REPO/sipalgd}
conf 5060 warning 8 7 false
LAB_SOCK=$LAB_TMP/sipalgd.sock
LAB_CTL=$LAB_REPO/sipalgctl
LAB_DAEMON_LOG=$LOG
export LAB_SOCK LAB_CTL
mkdir -p "$LAB_TMP/olddev"
ip netns exec "$NS_RTR" unshare -m --propagation private sh -c '
	set -e
	mount --bind /dev "$1/olddev"
	mount -t tmpfs -o mode=755 tmpfs /dev
	for d in null zero full random urandom; do touch /dev/$d; mount --bind "$1/olddev/$d" /dev/$d; done
	touch /dev/log
	mount --bind "$2" /dev/log
	exec "$3" -c "$4"' sh "$LAB_TMP" "$SYSLOG_SOCK" "$BIN" "$CONF" >"$LOG" 2>&1 </dev/null &
LAB_DAEMON_PID=$!
LAB_PIDS="$LAB_PIDS $LAB_DAEMON_PID"
up=1
for _ in $(seq 1 100); do
	hx_ctl status >/dev/null 2>&1 && { up=0; break; }
	kill -0 "$LAB_DAEMON_PID" 2>/dev/null || break
	sleep 0.2
done
if [ $up != 0 ]; then
	echo "sipalgd did not start; log:" >&2; sed 's/^/  | /' "$LOG" >&2
	exit 1
fi

# 1. before
out=$(py call 5060); check before_call_5060_rewritten $? "$out"
out=$(py streams 5060 3); n=${out#refused }
[ "$n" = 0 ]; check before_3_streams_kept $? "$out of 3 (streams_per_call 8)"
grep -q "sipalgd: info:" "$LOG"; [ $? != 0 ]; check before_no_info_lines $? "info lines at log.level warning"

# 2. ports, level, a limit, and a restart-only key
ref0=$(counter pinholes_refused)
conf 5070 info 1 9 false
kill -HUP "$LAB_DAEMON_PID"
wait_line "$LOG" "reload: applied"; check hup1_logged $? "no 'reload: applied' line within 5 s"
applied=$(grep "reload: applied" "$LOG" | tail -n 1)
for k in sip.ports limits.streams_per_call log.level; do
	case "$applied" in *"$k"*) r=0 ;; *) r=1 ;; esac
	check "hup1_applied_$k" $r "log: $applied"
done
grep -q "reload: queue.number needs a restart; kept 7" "$LOG"
check hup1_queue_number_kept_named $? "no 'reload: queue.number needs a restart; kept 7' in the log"
case "$applied" in *queue.number*) r=1 ;; *) r=0 ;; esac
check hup1_queue_number_not_applied $r "log: $applied"
rules=$(lab_nsx "$NS_RTR" iptables -t mangle -S SIPALGD_FR 2>&1)
echo "$rules" | grep -q -- "--dport 5070 .*--queue-num 7"; check hup1_diversion_5070_queue7 $? "$rules"
echo "$rules" | grep -q -- "port 5060"; [ $? != 0 ]; check hup1_diversion_not_5060 $? "$rules"
left=$(lab_nsx "$NS_RTR" iptables -t mangle -S 2>&1 | grep -c -- "SIPALGD_FR_R")
[ "$left" = 0 ]; check hup1_no_scratch_chain $? "$left SIPALGD_FR_R lines left"
grep -q "sipalgd: info: reload: applied" "$LOG"; check hup1_level_info_in_force $? "the reload's info line is missing"
out=$(py call 5070); check hup1_call_5070_rewritten $? "$out"
out=$(py plain 5060); check hup1_5060_not_diverted $? "$out"
out=$(py streams 5070 3); n=${out#refused }
[ "$n" = 2 ]; check hup1_streams_limited $? "$out of 3 (streams_per_call 1)"
ref1=$(counter pinholes_refused)
[ "$((ref1 - ref0))" = 2 ]; check hup1_refused_counted $? "pinholes_refused $ref0 -> $ref1"
hx_ctl status >/dev/null; check hup1_status_ok $? "sipalgctl status failed"

# 3. log.syslog
nerr=$(wc -l <"$LOG")
conf 5070 info 1 9 true
kill -HUP "$LAB_DAEMON_PID"
wait_line "$SYSLOG_TXT" "reload: applied log.syslog"; check hup2_applied_in_syslog $? "syslog: $(tail -n 3 "$SYSLOG_TXT" 2>/dev/null)"
out=$(py call 5070); check hup2_call_5070 $? "$out"
sleep 1.1 # the refusal's warning is itself limited to one a second
py streams 5070 3 >/dev/null
wait_line "$SYSLOG_TXT" "SDP stream 1 refused"
check hup2_warning_in_syslog $? "no refused-stream warning in syslog"
after=$(tail -n +"$((nerr + 1))" "$LOG" | grep -c "sipalgd: ")
[ "$after" = 0 ]; check hup2_stderr_quiet $? "$after lines still on stderr after the switch"

# 4. the swap itself: SIP flows on 5070 while SIGHUP adds 5080 (streams_per_call 8 again,
# and log.syslog back to false): not one datagram may cross unrewritten while the
# diversion is replaced, and the new port is diverted afterwards.
py leak 5070 3 >"$LAB_TMP/leak.txt" &
leakpid=$!
LAB_PIDS="$LAB_PIDS $leakpid"
sleep 1
conf "5070, 5080" info 8 9 false
kill -HUP "$LAB_DAEMON_PID"
wait $leakpid
out=$(cat "$LAB_TMP/leak.txt")
set -- $out # sent S received R unrewritten U
echo "# swap under load: $out"
[ "${6:-x}" = 0 ] && [ "${4:-0}" -gt 100 ]; check swap_no_unrewritten_sip $? "$out"
grep -q "reload: applied sip.ports, limits.streams_per_call, log.syslog" "$LOG"
check swap_applied_back_on_stderr $? "log: $(grep 'reload: applied' "$LOG" | tail -n 1)"
out=$(py call 5080); check swap_call_5080_rewritten $? "$out"

# 5. a rebuild that cannot be done: queue.divert nft on a kernel without the nft queue
# statement (this one: see tests/netns/README.md). The new diversion is refused by the
# kernel, the key is named and kept, and the running diversion still works.
if lab_nsx "$NS_RTR" nft -c 'table ip t { chain c { type filter hook forward priority 0; queue num 1; } }' 2>/dev/null; then
	lab_log "this kernel has the nft queue statement: the refused-rebuild step is skipped"
else
	conf "5070, 5080" info 8 9 false nft
	kill -HUP "$LAB_DAEMON_PID"
	wait_line "$LOG" "reload: queue.divert could not be installed in the diversion; kept iptables"
	check divert_refused_named_kept $? "log: $(grep 'queue.divert' "$LOG" | tail -n 2)"
	left=$(lab_nsx "$NS_RTR" nft list tables 2>&1 | grep -c "_divert")
	[ "$left" = 0 ]; check divert_no_partial_table $? "$left nft divert tables left"
	out=$(py call 5080); check divert_call_still_rewritten $? "$out"
fi

# 6. stop: exit 0, no rules (real or scratch) left
hx_ctl counters >"$LAB_TMP/counters-final.txt" 2>&1
# no datagram came back through the queue as a new message: no dialog keyed by our public
# address in its Call-ID (the lab's phones write their LAN address there)
ghost=$(hx_ctl --json dialogs 2>&1 | grep -oE '"call_id":"[^"]*203\.0\.113\.1([^0-9"][^"]*)?"' | head -n 3)
[ -z "$ghost" ]; check no_dialog_keyed_by_public_callid $? "$ghost"
# the firewall watch checks what each reload installed: it never "repairs" a reload
r=$(awk '$1 == "rules_restored" || $1 == "rules_repair_failed" { s += $2 } END { print s + 0 }' \
	"$LAB_TMP/counters-final.txt")
[ "$r" = 0 ]; check fwwatch_follows_reload $? "rules_restored + rules_repair_failed = $r after the reloads"
kill -TERM "$LAB_DAEMON_PID"
for _ in $(seq 1 100); do kill -0 "$LAB_DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
wait "$LAB_DAEMON_PID"; rc=$?
[ $rc = 0 ]; check stop_exit_0 $? "exit status $rc"
left=$( { lab_nsx "$NS_RTR" iptables -t mangle -S; lab_nsx "$NS_RTR" nft list tables; } 2>&1 | grep -ci sipalgd_fr)
[ "$left" = 0 ]; check stop_no_rules_left $? "$left rules/tables left"

if [ "$HX_FAIL" != 0 ] || [ "${VERBOSE:-0}" = 1 ]; then
	[ "$HX_FAIL" != 0 ] && LAB_KEEP_TMP=1
	echo "# sipalgd log (stderr):"; sed 's/^/  | /' "$LOG" | tail -n 40
	echo "# syslog:"; sed 's/^/  | /' "$SYSLOG_TXT" 2>/dev/null | tail -n 10
fi
echo "$HX_PASS passed, $HX_FAIL failed"
[ "$HX_FAIL" = 0 ]
