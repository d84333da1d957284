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

sipalgd_uci2yaml() {
	local s="$1" wan dev v nets ports
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
	config_get_bool v "$s" ipv6 1
	if [ "$v" = 1 ]; then
		_sipalgd_list=$nets
		config_list_foreach "$s" lan_interface sipalgd_lan6_add
		nets=$_sipalgd_list
		[ "$_sipalgd_bad" = 0 ] || return 1
	fi
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
