#!/bin/sh
# packaging/openwrt/update-makefile.sh (`make openwrt-makefile`): sets
# PKG_VERSION and PKG_HASH of the OpenWrt recipe from the tarball that
# `make dist` wrote. Usage: update-makefile.sh [TARBALL]; without an
# argument it runs `make dist` and takes the newest sipalgd-*.tar.gz.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
mk=$top/packaging/openwrt/sipalgd/Makefile
tarball=${1:-}
if [ -z "$tarball" ]; then
	make -C "$top" -s dist >&2
	# shellcheck disable=SC2012  # names are ours: sipalgd-<version>.tar.gz
	tarball=$(ls -t "$top"/build/dist/sipalgd-*.tar.gz 2>/dev/null | head -1)
fi
[ -f "$tarball" ] || { echo "no tarball (make dist)" >&2; exit 1; }
name=$(basename "$tarball")
ver=${name#sipalgd-}
ver=${ver%.tar.gz}
hash=$(sha256sum "$tarball" | cut -d' ' -f1)
# make dist may also have written the .sha256 next to it: both must agree.
if [ -f "$tarball.sha256" ] && ! grep -q "$hash" "$tarball.sha256"; then
	echo "$tarball.sha256 does not match the tarball" >&2; exit 1
fi
sed -i -e "s/^PKG_VERSION:=.*/PKG_VERSION:=$ver/" -e "s/^PKG_HASH:=.*/PKG_HASH:=$hash/" "$mk"
echo "$mk: PKG_VERSION=$ver PKG_HASH=$hash"
