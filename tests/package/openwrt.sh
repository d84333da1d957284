#!/bin/bash
# shellcheck disable=SC2016  # the dash -c scripts expand in dash, not here
# tests/package/openwrt.sh (`make openwrt-check`): the OpenWrt package's
# scripts without OpenWrt.
#  1. UCI -> YAML: each tests/package/uci/NAME.conf goes through
#     files/sipalgd-uci2yaml.sh with stand-ins for /lib/functions.sh and
#     network_get_device (fake-openwrt/functions.sh; the devices each network
#     has are in the .conf's "# devices:" line, its IPv6 subnets in
#     "# subnets6:"; /etc/config/firewall, if the case has one, in
#     NAME.firewall). Then
#       NAME.yaml  the exact YAML expected, and `sipalgd -n -c` accepts it
#                  (or, with NAME.nerr, refuses it with that message);
#       NAME.err   the conversion fails with exactly that message.
#  2. shellcheck of the init, hotplug and conversion scripts, as ash
#     (OpenWrt's /bin/sh is busybox ash). Excluded: SC1091 (the sourced
#     /lib/functions*.sh exist only on the target).
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
F=$REPO/packaging/openwrt/sipalgd/files
D=$REPO/tests/package/uci
SIPALGD=${SIPALGD:-$REPO/sipalgd}
tmp=$(mktemp -d /tmp/salg-openwrt.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0 n=0
bad() { echo "FAIL: $*" >&2; fail=1; }

for conf in "$D"/*.conf; do
	name=$(basename "$conf" .conf)
	n=$((n + 1))
	mkdir -p "$tmp/$name"
	cp "$conf" "$tmp/$name/sipalgd"
	# NAME.firewall: /etc/config/firewall for the run (fw4's masq6).
	[ -f "$D/$name.firewall" ] && cp "$D/$name.firewall" "$tmp/$name/firewall"
	devs=$(sed -n 's/^# devices: *//p' "$conf")
	subs6=$(sed -n 's/^# subnets6: *//p' "$conf")
	# The same steps as start_service, in busybox-like sh (dash).
	UCI_CONFIG_DIR=$tmp/$name FAKE_NET_DEVICES=$devs FAKE_NET_SUBNETS6=$subs6 dash -c '
		. "$1/functions.sh"; . "$2/sipalgd-uci2yaml.sh"
		config_load sipalgd && sipalgd_uci2yaml main' sh \
		"$REPO/tests/package/fake-openwrt" "$F" >"$tmp/$name.yaml" 2>"$tmp/$name.err"
	rc=$?
	if [ -f "$D/$name.err" ]; then
		[ $rc != 0 ] || bad "$name: conversion succeeded, expected: $(cat "$D/$name.err")"
		diff -u "$D/$name.err" "$tmp/$name.err" >&2 || bad "$name: wrong error"
		continue
	fi
	[ $rc = 0 ] || { bad "$name: conversion failed: $(cat "$tmp/$name.err")"; continue; }
	diff -u "$D/$name.yaml" "$tmp/$name.yaml" >&2 || bad "$name: YAML differs from $name.yaml"
	out=$("$SIPALGD" -n -c "$tmp/$name.yaml" 2>&1); rc=$?
	if [ -f "$D/$name.nerr" ]; then
		[ $rc != 0 ] || bad "$name: sipalgd -n accepted it"
		grep -qF -- "$(cat "$D/$name.nerr")" <<<"$out" || bad "$name: sipalgd -n said '$out'"
	else
		[ $rc = 0 ] || bad "$name: sipalgd -n refused it: $out"
	fi
done
# The shipped /etc/config/sipalgd converts to a configuration the daemon takes.
mkdir -p "$tmp/shipped" && cp "$F/sipalgd.config" "$tmp/shipped/sipalgd"
UCI_CONFIG_DIR=$tmp/shipped FAKE_NET_DEVICES="wan=eth1" dash -c '
	. "$1/functions.sh"; . "$2/sipalgd-uci2yaml.sh"
	config_load sipalgd && sipalgd_uci2yaml main' sh \
	"$REPO/tests/package/fake-openwrt" "$F" >"$tmp/shipped.yaml" || bad "shipped config: conversion failed"
"$SIPALGD" -n -c "$tmp/shipped.yaml" >/dev/null || bad "shipped config: sipalgd -n refused it"
echo "uci: $n sample configs + the shipped one"

sc=(shellcheck -e SC1091 "$F/sipalgd.init" "$F/sipalgd.hotplug" "$F/sipalgd-uci2yaml.sh"
	"$REPO/tests/package/fake-openwrt/functions.sh" "$REPO/packaging/openwrt/update-makefile.sh"
	"$REPO/tests/package/openwrt.sh" "$REPO/tests/package/musl.sh")
[ -f "$REPO/tests/netns/fw4.sh" ] && sc+=("$REPO/tests/netns/fw4.sh")
"${sc[@]}" || bad "shellcheck"
echo "shellcheck: $(( ${#sc[@]} - 3 )) scripts"

[ $fail = 0 ] || { echo "openwrt-check: FAILED" >&2; exit 1; }
echo "openwrt-check: passed"
