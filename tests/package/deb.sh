#!/bin/bash
# tests/package/deb.sh: the Debian package, end to end (make deb-check).
#
#   1. make deb: build/deb/sipalgd_<version>_<arch>.deb from the committed
#      tree; the working tree must be as clean afterwards as before;
#      debian/changelog's version must be the file VERSION.
#   2. lintian on the binary package and on the source package: no error,
#      no warning (what is overridden is justified in docs/packaging.md).
#   3. A throwaway Debian 12 root (mmdebstrap, from Debian's archive):
#      install with apt (dependencies resolved), reinstall over itself,
#      upgrade to a higher version, each keeping the operator's edits to
#      the conffile; the unit enabled, held by the first-install marker.
#   4. The lab's call with RTP, with /usr/sbin/sipalgd and sipalgctl of
#      that root (chroot) as the router's ALG (tests/netns/run.sh), started
#      as systemd would (notify socket, watchdog, journald stderr).
#      Then the root boots its own systemd (systemd-nspawn, the WAN in a
#      namespace of ours): the packaged unit starts at boot under its whole
#      sandbox, reloads, is restarted by the watchdog, stops cleanly, and
#      is skipped while /etc/sipalgd/unconfigured exists.
#   5. remove (conffile stays), purge (nothing of ours left).
# Environment:
#   DEB_CHECK_FLOWS   lab flows to run (default: call_3_1)
#   DEB_CHECK_NOBUILD=1  use the .deb already in build/deb (a hand-made one)
#   DEB_CHECK_KEEP=1  keep the root (build/deb-check/root) for a look
# Exit 0 only if every step passed. Needs root, network access to the Debian
# archive (as `make deps` does), mmdebstrap and lintian (apt-get install).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
cd "$REPO" || exit 1

OUT=$REPO/build/deb-check
ROOT=$OUT/root
FLOWS=${DEB_CHECK_FLOWS:-call_3_1}
start=$(date +%s)
failures=0
mounted=""
nspawn=""
cleanup_ns=0
id=$(($$ % 10000))

step() { echo "== deb-check: $*"; }
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; failures=$((failures + 1)); }
check() { # check DESCRIPTION COMMAND...: passes if the command does
	local what=$1; shift
	if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi
}
die() { echo "deb-check: FAIL: $*"; exit 1; }
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	DEBIAN_FRONTEND=noninteractive "$@"; }

cleanup() {
	local m
	if [ -n "$nspawn" ]; then kill "$nspawn" 2>/dev/null; wait "$nspawn" 2>/dev/null; fi
	if [ "$cleanup_ns" = 1 ]; then
		ip link del "salg-debv-$id" 2>/dev/null
		ip netns del "salg-deb-$id" 2>/dev/null
	fi
	for m in $mounted; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
	if [ "${DEB_CHECK_KEEP:-0}" = 1 ]; then
		echo "deb-check: root kept in $ROOT"
	else
		# Only after every mount above is gone: never delete through a bind mount.
		if ! grep -q " $ROOT/" /proc/mounts; then rm -rf "$ROOT"; fi
	fi
}
trap cleanup EXIT
trap 'echo "# interrupted"; exit 130' INT TERM

for tool in mmdebstrap lintian dpkg-buildpackage systemd-nspawn; do
	command -v $tool >/dev/null || die "$tool not installed (make deb-check-deps)"
done
[ "$(id -u)" = 0 ] || die "needs root (chroot, namespaces)"

version=$(cat VERSION)
arch=$(dpkg --print-architecture)
deb=$REPO/build/deb/sipalgd_${version}_${arch}.deb

# ---- 1. build ---------------------------------------------------------------
step "build"
check "debian/changelog version is VERSION ($version)" \
	test "$(dpkg-parsechangelog -S Version)" = "$version"
if [ "${DEB_CHECK_NOBUILD:-0}" != 1 ]; then
	before=$(git status --porcelain)
	make -s deb >"$OUT.build.log" 2>&1 || { tail -n 30 "$OUT.build.log"; die "make deb failed"; }
	check "make deb leaves the working tree as it was" test "$(git status --porcelain)" = "$before"
fi
[ -f "$deb" ] || die "no $deb"
ok "built $(basename "$deb") ($(stat -c %s "$deb") bytes)"

# ---- 2. lintian ---------------------------------------------------------------
step "lintian"
# Never delete through a mount a killed earlier run may have left.
grep -q " $OUT/" /proc/mounts && die "something is still mounted under $OUT"
rm -rf "$OUT"
mkdir -p "$OUT/src" || die "cannot make $OUT"
# The source package, from the same tarball (make dist) as the binary one.
if ! tar -C "$OUT/src" -xzf "build/dist/sipalgd-$version.tar.gz" ||
	! (cd "$OUT/src" && dpkg-source -b "sipalgd-$version" >/dev/null 2>&1); then
	bad "dpkg-source -b"
fi
for f in "$deb" "$OUT/src/sipalgd_$version.dsc"; do
	[ -f "$f" ] || { bad "lintian: $f missing"; continue; }
	lintian --pedantic -I --fail-on error,warning "$f" >"$OUT/lintian.out" 2>&1
	lrc=$?
	grep -v '^running with root' "$OUT/lintian.out" | sed 's/^/  | /'
	if [ $lrc = 0 ]; then ok "lintian $(basename "$f"): no error, no warning"
	else bad "lintian $(basename "$f") (status $lrc)"; fi
done

# ---- 3. a Debian 12 root, install, reinstall, upgrade -----------------------
step "Debian 12 root (mmdebstrap)"
mmdebstrap --quiet --variant=apt --include=systemd,systemd-sysv bookworm "$ROOT" >"$OUT/mmdebstrap.log" 2>&1 ||
	{ tail -n 20 "$OUT/mmdebstrap.log"; die "mmdebstrap failed (no access to the Debian archive?)"; }
ok "root in $ROOT"
cp "$deb" "$ROOT/root/" || die "copy"
rdeb=/root/$(basename "$deb")
# mmdebstrap leaves no package lists behind; apt in the root needs them
# (and a resolver) to resolve the package's dependencies itself.
[ -s "$ROOT/etc/resolv.conf" ] || cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
in_root apt-get update -q >"$OUT/update.log" 2>&1 || { tail "$OUT/update.log"; die "apt-get update in the root"; }

step "install"
in_root apt-get install -y -q "$rdeb" >"$OUT/install.log" 2>&1 || { tail -n 20 "$OUT/install.log"; die "apt-get install failed"; }
check "sipalgd -V is $version" test "$(in_root /usr/sbin/sipalgd -V)" = "sipalgd $version"
check "sipalgctl -V is $version" test "$(in_root /usr/sbin/sipalgctl -V)" = "sipalgctl $version"
check "/etc/sipalgd/sipalgd.yaml is a conffile" grep -qx /etc/sipalgd/sipalgd.yaml "$ROOT/var/lib/dpkg/info/sipalgd.conffiles"
check "the shipped config passes sipalgd -n" in_root /usr/sbin/sipalgd -n -c /etc/sipalgd/sipalgd.yaml
check "unit enabled (multi-user.target.wants)" test -L "$ROOT/etc/systemd/system/multi-user.target.wants/sipalgd.service"
check "first install leaves the unconfigured marker" test -f "$ROOT/etc/sipalgd/unconfigured"
check "unit is held by the marker" grep -qx 'ConditionPathExists=!/etc/sipalgd/unconfigured' "$ROOT/lib/systemd/system/sipalgd.service"
check "unit is Type=notify with a watchdog" grep -qx 'WatchdogSec=10s' "$ROOT/lib/systemd/system/sipalgd.service"
for m in man8/sipalgd.8.gz man8/sipalgctl.8.gz man5/sipalgd.yaml.5.gz; do
	check "man page $m" test -s "$ROOT/usr/share/man/$m"
done
if command -v systemd-analyze >/dev/null; then
	score=$(systemd-analyze security --offline=true "$ROOT/lib/systemd/system/sipalgd.service" 2>/dev/null |
		sed -n 's/.*Overall exposure level for sipalgd.service: \([0-9.]*\).*/\1/p')
	check "systemd-analyze security (offline): ${score:-none} <= 3.0" \
		awk -v s="${score:-99}" 'BEGIN { exit !(s <= 3.0) }'
fi

step "reinstall over itself, then upgrade: the operator's config stays"
# The operator configures the router: edits the conffile, removes the marker.
echo "# edited by the operator" >>"$ROOT/etc/sipalgd/sipalgd.yaml"
rm -f "$ROOT/etc/sipalgd/unconfigured"
in_root dpkg -i "$rdeb" >"$OUT/reinstall.log" 2>&1 || { tail "$OUT/reinstall.log"; bad "dpkg -i over itself"; }
check "reinstall keeps the edited conffile" grep -qx '# edited by the operator' "$ROOT/etc/sipalgd/sipalgd.yaml"
check "reinstall does not bring the marker back" test ! -e "$ROOT/etc/sipalgd/unconfigured"
# A higher version of the same package: the maintainer scripts' upgrade path.
if ! dpkg-deb -R "$deb" "$OUT/up" ||
	! sed -i "s/^Version: .*/Version: ${version}+deb.check1/" "$OUT/up/DEBIAN/control" ||
	! dpkg-deb -b "$OUT/up" "$ROOT/root/up.deb" >/dev/null 2>&1; then
	die "cannot make the upgrade package"
fi
in_root dpkg -i /root/up.deb >"$OUT/upgrade.log" 2>&1 || { tail "$OUT/upgrade.log"; bad "upgrade"; }
# shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
check "upgraded to ${version}+deb.check1" test "$(in_root dpkg-query -W -f '${Version}' sipalgd)" = "${version}+deb.check1"
check "upgrade keeps the edited conffile" grep -qx '# edited by the operator' "$ROOT/etc/sipalgd/sipalgd.yaml"
check "upgrade does not bring the marker back" test ! -e "$ROOT/etc/sipalgd/unconfigured"
check "upgrade keeps the unit enabled" test -L "$ROOT/etc/systemd/system/multi-user.target.wants/sipalgd.service"

# ---- 4. the lab call from the installed package ------------------------------
step "lab call ($FLOWS) with the installed /usr/sbin/sipalgd (chroot)"
# The lab keeps its config, socket and state in /tmp/salg-lab.*: the same
# path inside the root. The daemon reads nothing else from the host.
mount --bind /tmp "$ROOT/tmp" || die "bind /tmp"
mounted="$ROOT/tmp $mounted"
mount -t proc proc "$ROOT/proc" || die "mount proc"
mounted="$ROOT/proc $mounted"
ctl=$OUT/sipalgctl-in-root
printf '#!/bin/sh\nexec chroot %s /usr/sbin/sipalgctl "$@"\n' "$ROOT" >"$ctl" && chmod +x "$ctl"
# The daemon as systemd would start it, without systemd (not PID 1 here):
# a notify socket (tests/package/notify_listen.py stands in for systemd's),
# a watchdog of 400 ms, and stderr that JOURNAL_STREAM names as journald's.
notify_sock=$(mktemp -u /tmp/sipalgd-deb-check-notify.XXXXXX)
wrap=$OUT/sipalgd-as-a-service
cat >"$wrap" <<EOF
#!/bin/sh
exec 2>>"$OUT/daemon.stderr"
js=\$(stat -L -c %d:%i /proc/self/fd/2)
exec chroot "$ROOT" /usr/bin/env NOTIFY_SOCKET="$notify_sock" WATCHDOG_USEC=400000 JOURNAL_STREAM="\$js" "\$@"
EOF
chmod +x "$wrap"
python3 "$HERE/notify_listen.py" "$notify_sock" "$OUT/notify.log" 90 &
listener=$!
for _ in $(seq 1 50); do [ -S "$notify_sock" ] && break; sleep 0.1; done
if LAB_SIPALGD_WRAP=$wrap LAB_SIPALGD_BIN=/usr/sbin/sipalgd LAB_SIPALGCTL_BIN=$ctl \
	FLOWS=$FLOWS tests/netns/run.sh >"$OUT/lab.log" 2>&1; then
	ok "lab: $(tail -n 1 "$OUT/lab.log")"
else
	sed 's/^/  | /' "$OUT/lab.log" | tail -n 40
	sed 's/^/  | stderr: /' "$OUT/daemon.stderr" | tail -n 20
	bad "lab call with the packaged daemon"
fi
# STOPPING=1 ends the listener; if it never came, its bound runs out.
kill "$listener" 2>/dev/null; wait "$listener" 2>/dev/null
rm -f "$notify_sock"
sed 's/^/  | notify: /' "$OUT/notify.log" | awk '!/WATCHDOG/ || !w++'
check "notify: READY=1 once set up" grep -q '^READY=1' "$OUT/notify.log"
check "notify: WATCHDOG=1 from the tick (>= 5)" \
	test "$(grep -c '^WATCHDOG=1$' "$OUT/notify.log")" -ge 5
check "notify: SIGHUP gives RELOADING=1 then READY=1" \
	sh -c "grep -A1 '^RELOADING=1' '$OUT/notify.log' | grep -q '^READY=1'"
check "notify: STOPPING=1 last" test "$(tail -n 1 "$OUT/notify.log")" = STOPPING=1
check "journal stderr: lines carry <6> priorities" grep -q '^<6>sipalgd: info: running' "$OUT/daemon.stderr"
for m in $mounted; do umount "$m" || bad "umount $m"; done
mounted=""

# ---- 4b. under systemd as PID 1 ------------------------------------------------
# No systemd here (PID 1 is the sandbox's), so the root boots its own in a
# systemd-nspawn container whose network namespace has a WAN eth1 with an
# address: the packaged unit, with its whole sandbox, as a router boots it.
step "systemd: the unit in a booted container (systemd-nspawn)"
ns=salg-deb-$id
ip netns add "$ns" || die "ip netns add"
cleanup_ns=1
if ! ip link add "salg-debv-$id" type veth peer name eth1 netns "$ns" ||
	! ip -n "$ns" addr add 203.0.113.1/24 dev eth1 ||
	! ip -n "$ns" link set eth1 up || ! ip -n "$ns" link set lo up; then
	die "WAN link in $ns"
fi
timeout 180 systemd-nspawn -D "$ROOT" --keep-unit --register=no --capability=CAP_NET_ADMIN \
	--network-namespace-path="/run/netns/$ns" --boot >"$OUT/nspawn.log" 2>&1 </dev/null &
nspawn=$!
ctinit=""
for _ in $(seq 1 100); do
	n=$(pgrep -P "$nspawn" -x systemd-nspawn) && ctinit=$(pgrep -P "$n" -x systemd) && break
	sleep 0.1
done
[ -n "$ctinit" ] || { tail "$OUT/nspawn.log"; die "the container did not boot"; }
in_ct() { nsenter -t "$ctinit" -a /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
in_ct timeout 60 systemctl is-system-running --wait >/dev/null 2>&1
for _ in $(seq 1 50); do [ "$(in_ct systemctl is-active sipalgd 2>/dev/null)" = active ] && break; sleep 0.2; done
check "started at boot, active (Type=notify: READY=1 came)" test "$(in_ct systemctl is-active sipalgd)" = active
check "StatusText from the daemon" test "$(in_ct systemctl show -p StatusText --value sipalgd)" = running
check "sipalgctl status in the container" in_ct sipalgctl status
pid=$(in_ct systemctl show -p MainPID --value sipalgd)
st=$(in_ct cat "/proc/$pid/status")
check "sandbox: NoNewPrivs, seccomp filter" sh -c "echo '$st' | grep -q '^NoNewPrivs:.*1' && echo '$st' | grep -q '^Seccomp:.*2'"
check "capabilities after set-up: CAP_NET_ADMIN, CAP_NET_RAW only" sh -c "echo '$st' | grep -q '^CapEff:.*0000000000003000'"
# /proc/PID/stat field 41 is the policy: 1 is SCHED_FIFO (pid: the container's)
check "SCHED_FIFO through the sandbox (CAP_SYS_NICE at start)" \
	test "$(in_ct cat "/proc/$pid/stat" | awk '{ print $41 }')" = 1
check "journal keeps levels: -p warning has no info line" \
	sh -c "! nsenter -t $ctinit -a journalctl -u sipalgd -p warning -o cat | grep -q 'info: running'"
check "journal keeps levels: -p info has it" \
	sh -c "nsenter -t $ctinit -a journalctl -u sipalgd -p info -o cat | grep -q 'info: running'"
check "systemctl reload" in_ct systemctl reload sipalgd
check "reload reached the daemon" sh -c "nsenter -t $ctinit -a journalctl -u sipalgd -o cat | grep -q 'configuration reloaded'"
# The watchdog: a stopped loop sends no WATCHDOG=1; systemd kills and restarts
# it (2 s instead of 10 s, from a runtime drop-in, to keep the test short).
in_ct sh -c 'mkdir -p /run/systemd/system/sipalgd.service.d &&
	printf "[Service]\nWatchdogSec=2s\nTimeoutAbortSec=2s\n" >/run/systemd/system/sipalgd.service.d/wd.conf &&
	systemctl daemon-reload && systemctl restart sipalgd'
old=$(in_ct systemctl show -p MainPID --value sipalgd)
in_ct sh -c "kill -STOP $old" # the shell's kill: no procps in the root
new=$old
for _ in $(seq 1 50); do
	sleep 0.2
	new=$(in_ct systemctl show -p MainPID --value sipalgd)
	[ "$new" != "$old" ] && [ "$new" != 0 ] && [ "$(in_ct systemctl is-active sipalgd)" = active ] && break
done
check "watchdog: a stopped loop is killed and restarted ($old -> $new)" \
	sh -c "[ '$new' != '$old' ] && nsenter -t $ctinit -a journalctl -u sipalgd -o cat | grep -q 'Watchdog timeout'"
in_ct sh -c 'rm -r /run/systemd/system/sipalgd.service.d && systemctl daemon-reload'
check "systemctl stop" in_ct systemctl stop sipalgd
check "stopped cleanly (Result=success)" test "$(in_ct systemctl show -p Result --value sipalgd)" = success
check "stop removed the diversion" sh -c "! ip netns exec $ns iptables -t mangle -S | grep -q SIPALGD"
in_ct touch /etc/sipalgd/unconfigured
in_ct systemctl start sipalgd
check "with the marker, start is skipped (ConditionResult=no)" \
	test "$(in_ct systemctl show -p ConditionResult --value sipalgd)" = no
in_ct rm -f /etc/sipalgd/unconfigured
in_ct systemctl poweroff >/dev/null 2>&1
for _ in $(seq 1 100); do kill -0 "$nspawn" 2>/dev/null || break; sleep 0.1; done
kill "$nspawn" 2>/dev/null; wait "$nspawn" 2>/dev/null
nspawn=""

# ---- 5. remove, purge ---------------------------------------------------------
step "remove"
in_root apt-get remove -y -q sipalgd >"$OUT/remove.log" 2>&1 || { tail "$OUT/remove.log"; bad "apt-get remove"; }
check "remove: binary gone" test ! -e "$ROOT/usr/sbin/sipalgd"
check "remove: unit gone" test ! -e "$ROOT/lib/systemd/system/sipalgd.service"
check "remove: the edited conffile stays" grep -qx '# edited by the operator' "$ROOT/etc/sipalgd/sipalgd.yaml"
# shellcheck disable=SC2016 # a dpkg-query format
check "remove: package in state config-files" \
	test "$(in_root dpkg-query -W -f '${db:Status-Status}' sipalgd)" = config-files

step "purge"
touch "$ROOT/etc/sipalgd/unconfigured" # as if never configured: purge takes it too
in_root apt-get purge -y -q sipalgd >"$OUT/purge.log" 2>&1 || { tail "$OUT/purge.log"; bad "apt-get purge"; }
check "purge: /etc/sipalgd gone" test ! -e "$ROOT/etc/sipalgd"
check "purge: enable link gone" test ! -e "$ROOT/etc/systemd/system/multi-user.target.wants/sipalgd.service"
check "purge: dpkg knows nothing of sipalgd" sh -c "! chroot '$ROOT' dpkg-query -W sipalgd"
leftover=$(cd "$ROOT" && find etc lib usr var/lib/dpkg/info -name '*sipalgd*' 2>/dev/null | head -n 5)
check "purge: no file named sipalgd left${leftover:+ ($leftover)}" test -z "$leftover"

echo "# deb-check: $failures failed; $(($(date +%s) - start))s; $([ $failures = 0 ] && echo PASS || echo FAIL)"
[ $failures = 0 ]
