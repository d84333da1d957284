# shellcheck shell=ash
# Stand-ins for OpenWrt's /lib/functions.sh and /lib/functions/network.sh,
# enough for the package's scripts to run on a Debian host in tests:
#   config_load NAME       reads $UCI_CONFIG_DIR/NAME (config/option/list
#                          lines with '...' or "..." or bare values)
#   config_get[_bool], config_list_foreach, config_foreach as OpenWrt's behave
#   network_get_device VAR NET   from $FAKE_NET_DEVICES ("wan=pppoe-wan ...")
#   network_get_subnets6 VAR NET from $FAKE_NET_SUBNETS6
# Not a UCI parser: no escapes, no anonymous-section @type[n] lookups.

_fake_unq() {
	local v=$1
	case "$v" in
	\'*\') v=${v#\'}; v=${v%\'} ;;
	\"*\") v=${v#\"}; v=${v%\"} ;;
	esac
	printf '%s' "$v"
}

config_load() {
	local f="${UCI_CONFIG_DIR:?}/$1" kw a b sect="" n
	[ -f "$f" ] || return 1
	_fake_vars=""
	# config_foreach sees the sections of this config only, as OpenWrt's
	# (its config_load resets CONFIG_SECTIONS).
	_fake_sections=""
	while read -r kw a b; do
		case "$kw" in
		config)
			sect=$(_fake_unq "$b")
			# Anonymous sections (firewall zones) get names of their own,
			# as uci's cfgXXXXXX.
			if [ -z "$sect" ]; then
				_fake_anon=$((${_fake_anon:-0} + 1))
				sect=cfg$_fake_anon
			fi
			_fake_sections="${_fake_sections:-}${_fake_sections:+ }$sect"
			eval "CONFIG_${sect}_TYPE=\$(_fake_unq \"\$a\")" ;;
		option)
			eval "CONFIG_${sect}_${a}=\$(_fake_unq \"\$b\")"
			_fake_vars="$_fake_vars CONFIG_${sect}_${a}" ;;
		list)
			eval "n=\${CONFIG_${sect}_${a}_LENGTH:-0}"
			n=$((n + 1))
			eval "CONFIG_${sect}_${a}_ITEM$n=\$(_fake_unq \"\$b\")"
			eval "CONFIG_${sect}_${a}_LENGTH=$n"
			# As OpenWrt's list(): config_get of a list gives its items
			# separated by spaces.
			eval "CONFIG_${sect}_${a}=\"\${CONFIG_${sect}_${a}:+\$CONFIG_${sect}_${a} }\$(_fake_unq \"\$b\")\""
			_fake_vars="$_fake_vars CONFIG_${sect}_${a}_ITEM$n CONFIG_${sect}_${a}_LENGTH" ;;
		esac
	done < "$f"
}

# Locals are prefixed: the caller's variable name is assigned by eval and
# must not be shadowed by one of ours (config_get v ... inside a function
# with `local v`).
config_get() {
	local _cg_v _cg_def="$4"
	eval "_cg_v=\${CONFIG_${2}_${3}-\$_cg_def}"
	eval "$1=\$_cg_v"
}

config_get_bool() {
	local _cgb_v
	config_get _cgb_v "$2" "$3" "$4"
	case "$_cgb_v" in
	1|on|true|yes|enabled) _cgb_v=1 ;;
	0|off|false|no|disabled) _cgb_v=0 ;;
	*) _cgb_v=$4 ;;
	esac
	eval "$1=\$_cgb_v"
}

config_list_foreach() {
	local _cl_s=$1 _cl_o=$2 _cl_fn=$3 _cl_n _cl_i _cl_v
	shift 3
	eval "_cl_n=\${CONFIG_${_cl_s}_${_cl_o}_LENGTH:-0}"
	_cl_i=1
	while [ "$_cl_i" -le "$_cl_n" ]; do
		eval "_cl_v=\$CONFIG_${_cl_s}_${_cl_o}_ITEM$_cl_i"
		"$_cl_fn" "$_cl_v" "$@"
		_cl_i=$((_cl_i + 1))
	done
}

# config_foreach FUNCTION [TYPE] [ARGS...]: FUNCTION SECTION ARGS... for
# each section (of TYPE) of the configs loaded, in file order.
config_foreach() {
	local _cf_fn=$1 _cf_type=${2:-} _cf_s _cf_t
	shift
	[ $# = 0 ] || shift
	for _cf_s in ${_fake_sections:-}; do
		eval "_cf_t=\$CONFIG_${_cf_s}_TYPE"
		[ -z "$_cf_type" ] || [ "$_cf_t" = "$_cf_type" ] || continue
		"$_cf_fn" "$_cf_s" "$@"
	done
}

network_get_device() {
	local _nd_p
	for _nd_p in ${FAKE_NET_DEVICES:-}; do
		if [ "${_nd_p%%=*}" = "$2" ]; then
			eval "$1=\${_nd_p#*=}"
			return 0
		fi
	done
	eval "$1="
	return 1
}

# From $FAKE_NET_SUBNETS6 ("lan=2001:db8:1::1/64,fd00:1::1/64 ..."), as
# OpenWrt's: space-separated, fails when the network has none.
network_get_subnets6() {
	local _ns_p
	for _ns_p in ${FAKE_NET_SUBNETS6:-}; do
		if [ "${_ns_p%%=*}" = "$2" ]; then
			eval "$1=\$(echo \"\${_ns_p#*=}\" | tr , ' ')"
			return 0
		fi
	done
	eval "$1="
	return 1
}
