#!/bin/bash
# tests/netns/fwtools.sh (`make fwtools-lab`): the router's firewall is an admin's tool
# that reloads its rules on its own schedule, next to sipalgd: ufw, Docker's iptables
# rules, firewalld. Phones | router | internet (lib.sh's lab, namespaces salg-fw-*-ID),
# calls with RTP both ways, the tool's reloads during a held call under a stream of
# OPTIONS, a sniffer on the internet side (fwtools.py does the calls and the checks).
#
#   tests/netns/fwtools.sh                # every part whose tool is installed
#   PARTS="ufw docker" tests/netns/fwtools.sh
#   PARTS=ufw UFW_STEPS="do=dnat-fix event=builtins-reload" GUARD=off tests/netns/fwtools.sh
#
# Parts:
#   ufw     ufw as Ubuntu's server guide makes a router of it (NAT section in
#           before.rules, ip_forward in ufw's sysctl.conf, `ufw route allow` LAN -> WAN)
#           with the Debian default DEFAULT_FORWARD_POLICY="DROP": the pinholes' media is
#           dropped and status must say so; then the line docs/operations.md gives for ufw
#           (before.rules: --ctstate DNAT accept), `ufw reload`: status ok, calls work;
#           `ufw reload`, `ufw disable && ufw enable` and a reload with MANAGE_BUILTINS=yes
#           (flushes mangle and nat: the diversion goes) during a held call; finally
#           DEFAULT_FORWARD_POLICY="ACCEPT" (the guide's own choice): status ok.
#           SIP/TCP (sip.tcp, on as shipped) with docs/operations.md's ufw-before-input
#           line for the relay's mark: the registrar's new connection back is relayed.
#           ufw reads /etc/ufw, /etc/default/ufw and /lib/ufw: it runs in a private mount
#           namespace (unshare -m) with temp copies of /etc/ufw, /etc/default and
#           /lib/ufw bound over them, and a tmpfs on /run; the host's are never touched.
#   docker  the rules dockerd writes (iptables-nft; FORWARD policy DROP, DOCKER-USER,
#           DOCKER-FORWARD, DOCKER-CT, DOCKER-BRIDGE, DOCKER-ISOLATION-STAGE-*, nat
#           DOCKER and its masquerade; a docker0 bridge with no containers) next to the
#           router's masquerade, with the DOCKER-USER lines Docker's docs give for
#           routing (LAN -> WAN, established): status must warn and the media is dropped;
#           then the DOCKER-USER line from docs/operations.md; dockerd's restart (its
#           chains flushed and written again, jumps re-inserted, policy DROP) during a
#           held call. SIP/TCP needs nothing (Docker leaves INPUT alone).
#   firewalld  firewalld with a private system D-Bus (dbus-daemon) in a private mount
#           namespace: wan in zone external (masquerade), lan/lan2 in internal, a policy
#           internal -> external ACCEPT; the SIP/TCP ports of docs/operations.md;
#           `firewall-cmd --reload` and `--complete-reload` during a held call.
# Without the SIP/TCP lines, ufw's INPUT policy and firewalld's input reject drop the
# phones' own SIP/TCP connections (TPROXY makes them input to the router): the `tcp`
# step fails (UFW_STEPS="do=dnat-fix tcp", FWD_STEPS=tcp).
# A part whose tool is not installed is skipped, and said so. Bounded: about 2 minutes.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
LAB_REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
ALG=sipalgd  # lib.sh's lab_init reads it
export ALG
PARTS=${PARTS:-ufw docker firewalld}
LAB_ID=${LAB_ID:-$(( 5000 + $$ % 4000 ))}
PATH=$PATH:/usr/sbin:/sbin

lab_init
# Our own names (lab_init checked its defaults; these are checked here).
NS_LAN=salg-fw-lan-$LAB_ID NS_RTR=salg-fw-rtr-$LAB_ID NS_WAN=salg-fw-wan-$LAB_ID NS_LAN2=salg-fw-lan2-$LAB_ID
for ns in "$NS_LAN" "$NS_RTR" "$NS_WAN" "$NS_LAN2"; do
	if ip netns list | grep -qw "$ns"; then echo "namespace $ns already exists" >&2; exit 2; fi
done
export NS_LAN NS_RTR NS_WAN NS_LAN2
trap lab_cleanup EXIT
trap 'echo "# interrupted" >&2; exit 130' INT TERM
( sleep 300 >/dev/null 2>&1 & s=$!; trap 'kill $s 2>/dev/null; exit 0' TERM; wait $s
  echo "# fwtools.sh: 300 s budget exceeded" >&2; kill -TERM $$ ) &
LAB_PIDS="$LAB_PIDS $!"
echo "# sipalgd fwtools lab: id=$LAB_ID tmp=$LAB_TMP parts=$PARTS"
# No ruleset of the lab's: each part's tool writes the router's.
# GUARD=off: queue.guard off, to see the leak checks fail (a reload that removes the
# diversion lets unrewritten SIP out: UFW_STEPS="do=dnat-fix event=builtins-reload").
if [ "${GUARD:-on}" = off ]; then
	sed 's/^queue: { /queue: { guard: off, /' "$LAB_REPO/tests/netns/lab.yaml" >"$LAB_TMP/lab-noguard.yaml"
	export LAB_CONF_TEMPLATE="$LAB_TMP/lab-noguard.yaml"
fi
echo "# the router's firewall is written by the tool of each part" >"$LAB_TMP/empty.nft"
export LAB_ROUTER_RULESET=$LAB_TMP/empty.nft  # lab_topology loads it
lab_topology
pass=0 fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
nok() { echo "not ok - $*"; fail=$((fail + 1)); }
rx() { ip netns exec "$NS_RTR" "$@"; }

# HOLD: a process in the router's namespace and a private mount namespace, where the
# tool's files are temp copies; every command of the tool runs there (fwx).
HOLD=""
fwx() { nsenter -t "$HOLD" -m -n "$@"; }
# hold_start "mount commands": bounded wait until the mounts are done (sleep runs).
hold_start() {
	ip netns exec "$NS_RTR" unshare -m --propagation private sh -c "$1 && exec sleep 600" &
	HOLD=$!
	LAB_PIDS="$LAB_PIDS $HOLD"
	local i
	for i in $(seq 1 50); do
		[ "$(cat /proc/$HOLD/comm 2>/dev/null)" = sleep ] && return 0
		kill -0 "$HOLD" 2>/dev/null || break
		sleep 0.1
	done
	echo "the private mount namespace did not come up" >&2
	return 1
}
# The router as it was: no rules, nothing of the tool left running.
part_reset() {
	local p
	[ -n "$HOLD" ] && for p in $(ps -o pid= --ppid "$HOLD" 2>/dev/null) $HOLD; do kill -TERM "$p" 2>/dev/null; done
	# anything the part started in the router namespace (firewalld, dbus-daemon)
	for p in $(ip netns pids "$NS_RTR" 2>/dev/null); do kill -TERM "$p" 2>/dev/null; done
	sleep 0.3
	for p in $(ip netns pids "$NS_RTR" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	HOLD=""
	rx nft flush ruleset
	rx conntrack -F >/dev/null 2>&1
	ip -n "$NS_RTR" link del docker0 2>/dev/null
	# The next part's daemon starts afresh: no dialogs or registrations of this one
	# (the tcp step's checks that other ports stay refused rely on it).
	rm -f "$LAB_TMP"/*.state
	return 0
}

# run_part NAME HOOK STEP...: the daemon on the tool's rules, fwtools.py's steps, a clean stop.
run_part() {
	local name=$1 hook=$2; shift 2
	if ! lab_sipalgd_start; then nok "$name: daemon start"; return; fi
	local table
	table=$(sed -n 's/.*nft_table: \([A-Za-z0-9_]*\).*/\1/p' "$LAB_CONF")
	"$PY" -u "$HERE/fwtools.py" --ns salg-fw --id "$LAB_ID" --ctl "$LAB_CTL" --sock "$LAB_SOCK" \
		--table "$table" --hook "$hook" --part "$name" --log "$LAB_DAEMON_LOG" "$@" 2>&1 | tee "$LAB_TMP/$name.out" |
		grep --line-buffered -v -E '^[0-9]+ passed, [0-9]+ failed$'
	local p f
	p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$LAB_TMP/$name.out")
	f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$LAB_TMP/$name.out")
	if [ -z "$p" ]; then nok "$name: fwtools.py ended without a summary"; else
		pass=$((pass + p)); fail=$((fail + f)); fi
	grep -E 'firewall:|put back' "$LAB_DAEMON_LOG" | head -4 | sed 's/^/#   | /'
	if lab_sipalgd_stop; then ok "$name: clean stop (nothing of ours left)"; else nok "$name: clean stop"; fi
	cp "$LAB_DAEMON_LOG" "$LAB_TMP/$name.daemon.log"
}

# ---------------------------------------------------------------------- ufw
part_ufw() {
	local d=$LAB_TMP/ufw
	mkdir -p "$d"
	cp -a /etc/ufw "$d/etc"
	cp -a /usr/lib/ufw "$d/lib"
	# the whole of /etc/default: a file bound on its own cannot be edited by `sed -i`
	cp -a /etc/default "$d/default"
	# the package's pristine rules (the host's copies may have been edited)
	cp /usr/share/ufw/*.rules "$d/etc/"
	cp /usr/share/ufw/ufw.conf "$d/etc/ufw.conf"
	# Ubuntu's server guide, "IP Masquerading": forwarding in ufw's sysctl.conf, and the
	# NAT table before the *filter section of before.rules.
	sed -i 's|^#net/ipv4/ip_forward=1|net/ipv4/ip_forward=1|' "$d/etc/sysctl.conf"
	grep -q '^net/ipv4/ip_forward=1' "$d/etc/sysctl.conf" || { nok "ufw: sysctl.conf changed shape"; return; }
	{
		printf '# NAT table rules (the router)\n*nat\n:POSTROUTING ACCEPT [0:0]\n'
		printf -- '-A POSTROUTING -s 192.168.77.0/24 -o wan -j MASQUERADE\n'
		printf -- '-A POSTROUTING -s 192.168.79.0/24 -o wan -j MASQUERADE\nCOMMIT\n\n'
		cat /usr/share/ufw/before.rules
	} >"$d/etc/before.rules"
	hold_start "mount --bind $d/etc /etc/ufw && mount --bind $d/default /etc/default && \
mount --bind $d/lib /usr/lib/ufw && mount -t tmpfs salg-fw-run /run" || { nok "ufw: private mount namespace"; return; }
	fwx sh -c 'grep -q "192.168.77.0/24 -o wan" /etc/ufw/before.rules && grep -q "^MANAGE_BUILTINS=no" /etc/default/ufw' ||
		{ nok "ufw: the private copies are not what ufw sees"; return; }
	# The rest as the admin types it.
	local out
	if ! out=$( { fwx ufw --force enable && fwx ufw route allow in on lan out on wan &&
		fwx ufw route allow in on lan2 out on wan; } 2>&1); then
		nok "ufw: enable / route allow failed: $out"; return
	fi
	rx iptables -S FORWARD | head -3 | sed 's/^/# ufw: /'
	cat >"$LAB_TMP/hook-ufw.sh" <<EOF
#!/bin/bash
# fwtools.py's hook for ufw: \$1 is what the admin does.
fwx() { nsenter -t $HOLD -m -n "\$@"; }
case "\$1" in
dnat-fix)
	# docs/operations.md, ufw: accept the pinholes (DNAT) in ufw-before-forward; in
	# before6.rules too (ufw6-before-forward), as lab.yaml has wan.masquerade6.
	fwx sed -i '/^-A ufw-before-forward -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT$/a -A ufw-before-forward -m conntrack --ctstate DNAT -j ACCEPT' /etc/ufw/before.rules &&
	fwx sed -i '/^-A ufw6-before-forward -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT$/a -A ufw6-before-forward -m conntrack --ctstate DNAT -j ACCEPT' /etc/ufw/before6.rules &&
	fwx grep -q -- '--ctstate DNAT -j ACCEPT' /etc/ufw/before.rules &&
	fwx grep -q -- '--ctstate DNAT -j ACCEPT' /etc/ufw/before6.rules && fwx ufw reload ;;
tcp-fix)
	# docs/operations.md, ufw and sip.tcp: the relay's connections (TPROXY, marked
	# 0x5f10 by the daemon) are input to the router, which ufw's INPUT policy drops.
	fwx sed -i '/^-A ufw-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT$/a -A ufw-before-input -p tcp -m mark --mark 0x5f10 -j ACCEPT' /etc/ufw/before.rules &&
	fwx grep -q -- '--mark 0x5f10 -j ACCEPT' /etc/ufw/before.rules && fwx ufw reload ;;
reload) fwx ufw reload ;;
disable-enable) fwx ufw disable && fwx ufw --force enable ;;
builtins-reload)
	fwx sed -i 's/^MANAGE_BUILTINS=no/MANAGE_BUILTINS=yes/' /etc/default/ufw && fwx ufw reload ;;
policy-accept)
	fwx sed -i 's/^MANAGE_BUILTINS=yes/MANAGE_BUILTINS=no/; s/^DEFAULT_FORWARD_POLICY="DROP"/DEFAULT_FORWARD_POLICY="ACCEPT"/' /etc/default/ufw &&
	fwx sed -i '/--ctstate DNAT -j ACCEPT/d' /etc/ufw/before.rules /etc/ufw/before6.rules && fwx ufw reload ;;
*) echo "unknown step \$1" >&2; exit 2 ;;
esac
EOF
	chmod +x "$LAB_TMP/hook-ufw.sh"
	# shellcheck disable=SC2086  # UFW_STEPS: other steps, to look at one closer
	run_part ufw "$LAB_TMP/hook-ufw.sh" ${UFW_STEPS:-status=warn blocked do=dnat-fix status=ok call do=tcp-fix tcp \
		event=reload event=disable-enable event=builtins-reload status=ok \
		do=policy-accept status=ok call}
}

# ------------------------------------------------------------------- docker
# The filter and nat rules dockerd (28.x, iptables backend) writes for the default bridge
# with no container, as docs.docker.com "Docker with iptables" names its chains. At its
# start dockerd creates what is missing, flushes its own chains and writes them again,
# puts the FORWARD jumps first (DOCKER-USER, then DOCKER-FORWARD) and sets the FORWARD
# policy to DROP; DOCKER-USER is the admin's and is left as it is.
docker_rules() {
	local c
	for c in DOCKER DOCKER-BRIDGE DOCKER-CT DOCKER-FORWARD DOCKER-ISOLATION-STAGE-1 DOCKER-ISOLATION-STAGE-2 DOCKER-USER; do
		rx iptables -w -N "$c" 2>/dev/null
	done
	rx iptables -w -t nat -N DOCKER 2>/dev/null
	for c in DOCKER DOCKER-BRIDGE DOCKER-CT DOCKER-FORWARD DOCKER-ISOLATION-STAGE-1 DOCKER-ISOLATION-STAGE-2; do
		rx iptables -w -F "$c" || return 1
	done
	rx iptables -w -t nat -F DOCKER || return 1
	rx iptables -w -P FORWARD DROP || return 1
	while rx iptables -w -D FORWARD -j DOCKER-FORWARD 2>/dev/null; do :; done
	while rx iptables -w -D FORWARD -j DOCKER-USER 2>/dev/null; do :; done
	rx iptables-restore -w -n <<'EOF' || return 1
*filter
-I FORWARD 1 -j DOCKER-USER
-I FORWARD 2 -j DOCKER-FORWARD
-A DOCKER ! -i docker0 -o docker0 -j DROP
-A DOCKER-BRIDGE -o docker0 -j DOCKER
-A DOCKER-CT -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A DOCKER-FORWARD -j DOCKER-CT
-A DOCKER-FORWARD -j DOCKER-ISOLATION-STAGE-1
-A DOCKER-FORWARD -j DOCKER-BRIDGE
-A DOCKER-FORWARD -i docker0 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
COMMIT
*nat
-A DOCKER -i docker0 -j RETURN
COMMIT
EOF
	rx sh -c 'iptables -w -t nat -C PREROUTING -m addrtype --dst-type LOCAL -j DOCKER 2>/dev/null ||
		iptables -w -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER' &&
	rx sh -c 'iptables -w -t nat -C OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER 2>/dev/null ||
		iptables -w -t nat -A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER' &&
	rx sh -c 'iptables -w -t nat -C POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE 2>/dev/null ||
		iptables -w -t nat -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE'
}

part_docker() {
	if ! { ip -n "$NS_RTR" link add docker0 type bridge && ip -n "$NS_RTR" addr add 172.17.0.1/16 dev docker0 &&
		ip -n "$NS_RTR" link set docker0 up; }; then
		nok "docker: docker0"; return
	fi
	# The router before Docker: masquerade, forward policy ACCEPT (iptables).
	rx iptables -w -t nat -A POSTROUTING -o wan -j MASQUERADE || { nok "docker: masquerade"; return; }
	docker_rules || { nok "docker: dockerd's rules do not load"; return; }
	# Docker's docs, "Docker on a router": let the routed traffic through in DOCKER-USER.
	local r
	for r in "-i lan -o wan -j ACCEPT" "-i lan2 -o wan -j ACCEPT" \
		"-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"; do
		# shellcheck disable=SC2086
		rx iptables -w -A DOCKER-USER $r || { nok "docker: DOCKER-USER $r"; return; }
	done
	rx iptables -S FORWARD | sed 's/^/# docker: /'
	cat >"$LAB_TMP/hook-docker.sh" <<EOF
#!/bin/bash
set -u
NS_RTR=$NS_RTR
rx() { ip netns exec "\$NS_RTR" "\$@"; }
$(declare -f docker_rules)
case "\$1" in
dnat-fix) rx iptables -w -I DOCKER-USER -m conntrack --ctstate DNAT -j ACCEPT ;;
docker-restart) docker_rules ;;
*) echo "unknown step \$1" >&2; exit 2 ;;
esac
EOF
	chmod +x "$LAB_TMP/hook-docker.sh"
	# shellcheck disable=SC2086
	run_part docker "$LAB_TMP/hook-docker.sh" ${DOCKER_STEPS:-status=warn blocked do=dnat-fix status=ok call tcp \
		event=docker-restart status=ok}
}

# ---------------------------------------------------------------- firewalld
# firewalld (nftables backend, as Debian ships it) needs the D-Bus system bus: a private
# dbus-daemon on a tmpfs /run, in the private mount namespace where /etc/firewalld and
# /var/log are temp copies. Its zones as a router's admin sets them: wan in `external`
# (masquerade on), lan and lan2 in `internal`, a policy internal -> external ACCEPT.
fwd_start() {
	fwx firewalld --nofork --nopid >>"$LAB_TMP/firewalld.log" 2>&1 &
	LAB_PIDS="$LAB_PIDS $!"
	local _i
	for _i in $(seq 1 100); do
		[ "$(fwx firewall-cmd --state 2>/dev/null)" = running ] && return 0
		sleep 0.1
	done
	echo "firewalld did not come up within 10 s; its log:" >&2
	tail -20 "$LAB_TMP/firewalld.log" >&2
	return 1
}
part_firewalld() {
	local d=$LAB_TMP/firewalld
	mkdir -p "$d/log"
	cp -a /etc/firewalld "$d/etc"
	hold_start "mount --bind $d/etc /etc/firewalld && mount --bind $d/log /var/log && \
mount -t tmpfs salg-fw-run /run && mkdir -p /run/dbus && dbus-daemon --system --fork" ||
		{ nok "firewalld: private mount namespace and D-Bus"; return; }
	fwd_start || { nok "firewalld: does not start here"; return; }
	local out
	if ! out=$( { fwx firewall-cmd --permanent --zone=external --add-interface=wan &&
		fwx firewall-cmd --permanent --zone=internal --add-interface=lan &&
		fwx firewall-cmd --permanent --zone=internal --add-interface=lan2 &&
		fwx firewall-cmd --permanent --new-policy lan2wan &&
		fwx firewall-cmd --permanent --policy lan2wan --add-ingress-zone internal &&
		fwx firewall-cmd --permanent --policy lan2wan --add-egress-zone external &&
		fwx firewall-cmd --permanent --policy lan2wan --set-target ACCEPT &&
		fwx firewall-cmd --reload; } 2>&1); then
		nok "firewalld: zones: $out"; return
	fi
	rx nft list chain inet firewalld filter_FORWARD | grep -E 'policy|dnat|reject' | sed 's/^\s*/# firewalld: /'
	cat >"$LAB_TMP/hook-firewalld.sh" <<EOF
#!/bin/bash
fwx() { nsenter -t $HOLD -m -n "\$@"; }
case "\$1" in
tcp-fix)
	# docs/operations.md, firewalld and sip.tcp: firewalld cannot match the relay's
	# mark; the ports, on the LAN zone (phones' connections to sip.ports) and on the
	# WAN zone (the registrar's new connection to a phone's public Contact port).
	fwx firewall-cmd --permanent --zone=internal --add-port=5060/tcp &&
	fwx firewall-cmd --permanent --zone=external --add-port=5060/tcp &&
	fwx firewall-cmd --permanent --zone=external --add-port=40000-49999/tcp &&
	fwx firewall-cmd --reload ;;
reload) fwx firewall-cmd --reload ;;
complete-reload) fwx firewall-cmd --complete-reload ;;
*) echo "unknown step \$1" >&2; exit 2 ;;
esac
EOF
	chmod +x "$LAB_TMP/hook-firewalld.sh"
	# shellcheck disable=SC2086
	run_part firewalld "$LAB_TMP/hook-firewalld.sh" ${FWD_STEPS:-status=ok call do=tcp-fix tcp event=reload \
		event=complete-reload status=ok}
}

for part in $PARTS; do
	case $part in
	ufw) tool=ufw ;;
	docker) tool=iptables ;;
	firewalld) tool=firewalld ;;
	*) nok "unknown part $part"; continue ;;
	esac
	if ! command -v "$tool" >/dev/null; then
		echo "# $part: SKIPPED: $tool is not installed (apt-get install $tool)"
		continue
	fi
	echo "# ---- $part"
	"part_$part"
	part_reset
done
echo "$pass passed, $fail failed"
[ $fail = 0 ] && [ "${FWTOOLS_KEEP:-0}" = 0 ] || LAB_KEEP_TMP=1
[ $fail = 0 ] && [ $pass -gt 0 ]
