# shellcheck shell=ash
# sipalgd-uci2yaml.sh: /etc/config/sipalgd -> the daemon's YAML.
#
# Sourced by /etc/init.d/sipalgd after /lib/functions.sh and
# /lib/functions/network.sh (config_load, config_get, network_get_device);
# the tests source it after stand-ins for those (tests/package/fake-openwrt).
#
# sipalgd_uci2yaml SECTION writes the YAML on stdout, 0 on success; on error
# a message on stderr and 1. Values are checked only for characters that
# could change the YAML's structure: their meaning is checked by `sipalgd -n`.

# A value safe to write unquoted: letters, digits and . : / _ -
sipalgd_yaml_word() {
	case "$2" in
	''|*[!A-Za-z0-9.:/_-]*) echo "sipalgd: $1: '$2' is not a valid value" >&2; return 1 ;;
	esac
	printf '%s' "$2"
}

# config_list_foreach callback: appends to $_sipalgd_list. The caller
# ignores a callback's status, so a bad item sets $_sipalgd_bad.
sipalgd_list_add() {
	local v
	v=$(sipalgd_yaml_word "$2" "$1") || { _sipalgd_bad=1; return 1; }
	_sipalgd_list="${_sipalgd_list:+$_sipalgd_list, }$v"
}

# config_list_foreach callback: appends the IPv6 subnets netifd has on the
# logical network $1 (network_get_subnets6: the router's address on each,
# host bits set, which lan.networks takes) to $_sipalgd_list.
sipalgd_lan6_add() {
	local subs sub v
	network_get_subnets6 subs "$1" || return 0
	for sub in $subs; do
		case "$sub" in fe[89ab]?:*|FE[89AB]?:*) continue ;; esac   # link-local
		v=$(sipalgd_yaml_word "IPv6 subnet of $1" "$sub") || { _sipalgd_bad=1; return 1; }
		_sipalgd_list="${_sipalgd_list:+$_sipalgd_list, }$v"
	done
}

# sipalgd_v6net PREFIX: PREFIX with its host bits cleared, all eight groups
# written out (fd00:78::1/64 -> fd00:78:0:0:0:0:0:0/64), so that two ways
# of writing one network compare equal (lan.networks refuses a network
# listed twice). Anything that is not IPv6 comes back as it was.
sipalgd_v6net() {
	local a="${1%/*}" l="${1##*/}" head tail g n=0 i=0 z out="" bits
	case "$1" in */*) ;; *) l=128 ;; esac
	case "$a:$l" in *.*|*[!0-9A-Fa-f:]*|*:*:*:*:*:*:*:*:*:*:*) printf '%s' "$1"; return ;; esac
	case "$a" in
	*::*) head=${a%%::*} tail=${a#*::} ;;
	*) head=$a tail= ;;
	esac
	for g in $(echo "$head $tail" | tr : ' '); do n=$((n + 1)); done
	z=$((8 - n))
	for g in $(echo "$head" | tr : ' ') $(while [ "$z" -gt 0 ]; do printf '0 '; z=$((z - 1)); done) \
		$(echo "$tail" | tr : ' '); do
		bits=$((l - i * 16))
		if [ "$bits" -le 0 ]; then g=0
		elif [ "$bits" -lt 16 ]; then g=$(( 0x$g & (0xffff << (16 - bits)) & 0xffff ))
		else g=$((0x$g)); fi
		out="$out${out:+:}$(printf '%x' "$g")"
		i=$((i + 1))
	done
	printf '%s/%s' "$out" "$l"
}

# sipalgd_fw_holds ZONE WAN DEV: 0 when the firewall zone ZONE holds the
# WAN, as fw4 resolves a zone (fw4.uc parse_zone): its `network` entries
# name logical networks, each standing for its device (so `wan6`, which
# shares wan's device, holds it too), and its `device` entries name devices
# as they are. 2 when a wildcard entry (fw4's `pppoe+`, or nft's `pppoe*`)
# may cover DEV and nothing else holds it: what fw4 makes of a wildcard
# depends on where it lands (alone in its rule it is a prefix; in a set,
# on the nft version), so we do not guess; the pattern is left in
# $_sipalgd_fw_wild. 1 otherwise. A negated entry (`!eth0`) is an
# exclusion: it never puts the WAN in the zone.
sipalgd_fw_holds() {
	local v item pre d wild=""
	config_get v "$1" network
	for item in $v; do
		[ "$item" = "$2" ] && return 0
		case "$item" in !*) continue ;; esac
		network_get_device d "$item" && [ -n "$d" ] && [ "$d" = "$3" ] && return 0
	done
	config_get v "$1" device
	for item in $v; do
		case "$item" in
		"$3") return 0 ;;
		!*) ;;
		*[*+?[]*)
			# Cut at the first wildcard character: a prefix that covers
			# DEV means the pattern may (an over-estimate, on purpose).
			pre=${item%%[*+?[]*}
			case "$3" in "$pre"*) wild=$item ;; esac ;;
		esac
	done
	[ -n "$wild" ] || return 1
	_sipalgd_fw_wild=$wild
	return 2
}

# config_foreach callback on /etc/config/firewall's zones: a zone that
# holds the WAN (network $2, device $3: sipalgd_fw_holds) and masquerades
# IPv6 (`masq6`, fw4 templates/zone-masq.uc: `meta nfproto ipv6
# masquerade` in srcnat_<zone>) sets $_sipalgd_fw_masq6 to "lan" (every
# LAN source is masqueraded) or, when the zone's `masq_src` has IPv6
# entries (fw4 splits that one list by family and masquerades only those
# sources), to "src" with the entries in $_sipalgd_fw_src. A negated
# entry (`!prefix`) is "neg": masquerade6 cannot say "all but". A zone
# that may hold the WAN only by a wildcard device is "wild" (its name in
# $_sipalgd_fw_zname). "neg" and "wild" stay: they refuse the conversion.
sipalgd_fw_zone() {
	local z="$1" v item rc=0
	case "$_sipalgd_fw_masq6" in neg|wild) return 0 ;; esac
	config_get_bool v "$z" enabled 1
	[ "$v" = 1 ] || return 0
	config_get_bool v "$z" masq6 0
	[ "$v" = 1 ] || return 0
	config_get v "$z" family any
	case "$v" in ipv4|4) return 0 ;; esac
	sipalgd_fw_holds "$z" "$2" "$3" || rc=$?
	case "$rc" in
	0) ;;
	2) _sipalgd_fw_masq6=wild; config_get _sipalgd_fw_zname "$z" name "$z"; return 0 ;;
	*) return 0 ;;
	esac
	config_get v "$z" masq_src
	for item in $v; do
		case "$item" in
		!*:*) _sipalgd_fw_masq6=neg; return 0 ;;
		*:*) _sipalgd_fw_src="$_sipalgd_fw_src $item" ;;
		esac
	done
	if [ -n "$_sipalgd_fw_src" ]; then _sipalgd_fw_masq6=src; else _sipalgd_fw_masq6=lan; fi
}

# sipalgd_fw_masq6 WAN DEV: whether fw4 masquerades IPv6 towards the
# network WAN (device DEV), from /etc/config/firewall (run it in a
# subshell: config_load replaces the loaded config). Prints nothing (no
# masq6), "lan", or "src PREFIX...", as sipalgd_fw_zone finds; 1 (and the
# option to set, on stderr) on a negated masq_src or a wildcard device.
sipalgd_fw_masq6() {
	_sipalgd_fw_masq6=
	_sipalgd_fw_src=
	_sipalgd_fw_wild=
	_sipalgd_fw_zname=
	config_load firewall 2>/dev/null || return 0
	config_foreach sipalgd_fw_zone zone "$1" "$2"
	case "$_sipalgd_fw_masq6" in
	neg)
		echo "sipalgd: the firewall zone of '$1' has masq6 with a negated IPv6 masq_src: list the masqueraded LAN prefixes as masquerade6 in /etc/config/sipalgd" >&2
		return 1 ;;
	wild)
		echo "sipalgd: the firewall zone '$_sipalgd_fw_zname' has masq6 and the wildcard device '$_sipalgd_fw_wild', which may cover the device '$2' of '$1': list the masqueraded LAN prefixes as masquerade6 in /etc/config/sipalgd (or name the device in the zone: list device '$2')" >&2
		return 1 ;;
	src) echo "src$_sipalgd_fw_src" ;;
	lan) echo lan ;;
	esac
	return 0
}

# config_list_foreach callback, and called on each detected prefix: adds $1
# to $_sipalgd_masq (wan.masquerade6) and, unless lan.networks ($_sipalgd_list)
# has that network already, to lan.networks too (the daemon takes a
# masqueraded prefix only inside lan.networks).
sipalgd_masq6_add() {
	local v n k had=0
	v=$(sipalgd_yaml_word "$2" "$1") || { _sipalgd_bad=1; return 1; }
	_sipalgd_masq="${_sipalgd_masq:+$_sipalgd_masq, }$v"
	k=$(sipalgd_v6net "$v")
	for n in $(echo "$_sipalgd_list" | tr -d ,); do
		[ -n "$k" ] && [ "$(sipalgd_v6net "$n")" = "$k" ] && had=1
	done
	[ "$had" = 1 ] || _sipalgd_list="${_sipalgd_list:+$_sipalgd_list, }$v"
}

sipalgd_uci2yaml() {
	local s="$1" wan dev v v6 nets ports lan6="" masq fw p
	config_get wan "$s" wan wan
	wan=$(sipalgd_yaml_word wan "$wan") || return 1
	# The WAN is a logical network: its device changes with the protocol
	# (pppoe-wan, eth0.2, wwan0) and exists only while it is up.
	if ! network_get_device dev "$wan" || [ -z "$dev" ]; then
		echo "sipalgd: network '$wan' has no device (is it up?)" >&2
		return 1
	fi
	dev=$(sipalgd_yaml_word "device of $wan" "$dev") || return 1

	_sipalgd_list=
	_sipalgd_bad=0
	config_list_foreach "$s" lan_network sipalgd_list_add lan_network
	nets=$_sipalgd_list
	[ "$_sipalgd_bad" = 0 ] || return 1
	[ -n "$nets" ] || { echo "sipalgd: no lan_network" >&2; return 1; }
	# lan_interface: the LAN's IPv6 prefixes as netifd has them now (a
	# delegated prefix is the provider's to change; the hotplug script
	# reloads on the LAN's ifupdate). Named, they let the IPv6 stream of a
	# dual-stack phone's IPv4 call in; none (no IPv6 on the LAN yet): the
	# daemon takes the side away from the WAN as the IPv6 LAN side.
	config_get_bool v6 "$s" ipv6 1
	if [ "$v6" = 1 ]; then
		_sipalgd_list=
		config_list_foreach "$s" lan_interface sipalgd_lan6_add
		lan6=$_sipalgd_list
		nets="$nets${lan6:+, $lan6}"
		[ "$_sipalgd_bad" = 0 ] || return 1
	fi
	# wan.masquerade6: the list in /etc/config/sipalgd if there is one;
	# otherwise, with IPv6 on, what fw4 masquerades: with `masq6` on the
	# WAN's zone and no IPv6 masq_src, every source leaving by the WAN, so
	# the LAN prefixes lan_interface found (none yet: nothing written, and
	# the daemon drops ULA SIP rather than leak it until the LAN's ifupdate
	# reload brings them); with IPv6 masq_src entries, those.
	_sipalgd_list=$nets
	_sipalgd_masq=
	config_list_foreach "$s" masquerade6 sipalgd_masq6_add masquerade6
	[ "$_sipalgd_bad" = 0 ] || return 1
	if [ -z "$_sipalgd_masq" ] && [ "$v6" = 1 ]; then
		fw=$(sipalgd_fw_masq6 "$wan" "$dev") || return 1
		case "$fw" in
		lan) _sipalgd_masq=$lan6 ;;
		src\ *)
			for p in ${fw#src }; do
				sipalgd_masq6_add "$p" "masq_src of the firewall zone of $wan" || return 1
			done ;;
		esac
	fi
	nets=$_sipalgd_list
	masq=$_sipalgd_masq
	_sipalgd_list=
	config_list_foreach "$s" sip_port sipalgd_list_add sip_port
	ports=$_sipalgd_list
	[ "$_sipalgd_bad" = 0 ] || return 1

	echo "# Written by /etc/init.d/sipalgd from /etc/config/sipalgd: edit that file."
	echo "wan:"
	echo "  interface: $dev"
	config_get v "$s" public_address
	if [ -n "$v" ]; then
		v=$(sipalgd_yaml_word public_address "$v") || return 1
		echo "  public_address: $v"
	fi
	[ -n "$masq" ] && echo "  masquerade6: [$masq]"
	echo "lan:"
	echo "  networks: [$nets]"
	echo "sip:"
	[ -n "$ports" ] && echo "  ports: [$ports]"
	config_get v "$s" inbound_from registrar
	v=$(sipalgd_yaml_word inbound_from "$v") || return 1
	echo "  inbound_from: $v"
	# IPv6 SIP is diverted by default (the same ip6 table, fw4's `ct state
	# established accept` lets the media pinholes in); only `0` is written.
	config_get_bool v "$s" ipv6 1
	[ "$v" = 0 ] && echo "  ipv6: false"
	echo "queue:"
	# fw4's kernels have the nft queue statement (kmod-nft-queue).
	echo "  divert: nft"
	config_get v "$s" realtime_priority 1
	v=$(sipalgd_yaml_word realtime_priority "$v") || return 1
	echo "  realtime_priority: $v"
	echo "media:"
	config_get v "$s" pinhole_source peer
	v=$(sipalgd_yaml_word pinhole_source "$v") || return 1
	echo "  pinhole_source: $v"
	config_get_bool v "$s" allow_other_lan_hosts 0
	if [ "$v" = 1 ]; then v=true; else v=false; fi
	echo "  allow_other_lan_hosts: $v"
	echo "log:"
	echo "  syslog: true"
	config_get v "$s" log_level info
	v=$(sipalgd_yaml_word log_level "$v") || return 1
	echo "  level: $v"
}
