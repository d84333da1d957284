#!/bin/bash
# shellcheck disable=SC2012,SC2010,SC2016  # ls on our own tarball/test names; ${prefix} is pkg-config's
# tests/package/musl.sh: build sipalgd, sipalgctl and the unit tests with
# musl-gcc and run the unit tests (`make musl-check`).
#
# OpenWrt links against musl; Debian has no musl builds of the libraries we
# link, so they are built from source into a sysroot under build/musl/ (static
# archives; the binaries link musl's libc dynamically, ld-musl-*.so.1 from the
# musl package). A second run reuses the sysroot and rebuilds only sipalgd.
#
# Sources, first found wins, per library:
#   1. build/musl/src/<name>.tar.*        (drop a release tarball there)
#   2. `apt-get source --download-only`   (Debian source package's orig tarball;
#                                          needs a deb-src line for the mirror)
# libyaml and cmocka (the core and its unit tests) must be found. Where a
# netfilter library's source cannot be had (this project's build machines
# reach Debian's binary archive, and its source archive only for some
# packages), every daemon object is still compiled with musl-gcc against that
# library's headers, and the link of sipalgd is skipped, said and counted as
# not proved; sipalgctl and the unit tests are always linked and run.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
M=$REPO/build/musl
SYSROOT=$M/sysroot
SRC=$M/src
WORK=$M/work
JOBS=${JOBS:-2}

command -v musl-gcc >/dev/null || { echo "musl-gcc missing: apt-get install musl-tools" >&2; exit 2; }
mkdir -p "$SYSROOT/include" "$SYSROOT/lib" "$SRC" "$WORK"

# musl-gcc's spec file leaves out /usr/include (glibc's); the kernel's uapi
# headers are libc-independent, so they come in through links.
KINC=$M/kinc
if [ ! -d "$KINC" ]; then
	mkdir -p "$KINC"
	ln -s /usr/include/linux "$KINC/linux"
	ln -s /usr/include/asm-generic "$KINC/asm-generic"
	ln -s "/usr/include/$(gcc -dumpmachine)/asm" "$KINC/asm"
fi

export CC=musl-gcc
# The older libraries use BSD types (u_int8_t) without including
# <sys/types.h>, which under _GNU_SOURCE declares them on musl.
export CFLAGS="-O2 -D_GNU_SOURCE -include sys/types.h -isystem $KINC -I$SYSROOT/include"
export LDFLAGS="-L$SYSROOT/lib"
# Only the sysroot's .pc files: never let pkg-config hand us glibc's.
export PKG_CONFIG_LIBDIR=$SYSROOT/lib/pkgconfig
export PKG_CONFIG_PATH=

log() { printf '# musl: %s\n' "$*" >&2; }

# fetch_src NAME DEB_SRC_PKG -> prints an unpacked source dir, or nothing
fetch_src() {
	local name=$1 deb=$2 dir=$WORK/$1 t
	if [ -d "$dir" ]; then echo "$dir"; return; fi
	t=$(ls "$SRC/$name".tar.* 2>/dev/null | head -1 || true)
	if [ -z "$t" ] && [ -n "$deb" ]; then
		(cd "$SRC" && apt-get source --download-only -qq "$deb" >/dev/null 2>&1) || true
		t=$(ls "$SRC/${deb}_"*.orig.tar.* 2>/dev/null | grep -v '\.asc$' | head -1 || true)
		[ -n "$t" ] && log "$name: Debian source package $deb ($(basename "$t"))"
	fi
	[ -n "$t" ] || return 0
	mkdir -p "$dir"
	tar -xf "$t" -C "$dir" --strip-components=1
	echo "$dir"
}

# autotools_lib NAME DEB : configure --disable-shared into the sysroot;
# returns 1 when no source could be had.
autotools_lib() {
	local name=$1 stamp=$SYSROOT/.built-$1 dir
	[ -f "$stamp" ] && return 0
	dir=$(fetch_src "$@")
	if [ -z "$dir" ]; then
		log "no source for $name (put a release tarball at $SRC/$name.tar.gz)"
		return 1
	fi
	log "building $name"
	(
		cd "$dir"
		[ -x configure ] || autoreconf -fi >/dev/null 2>&1
		./configure -q --prefix="$SYSROOT" --disable-shared --enable-static \
			--disable-dependency-tracking --without-doxygen >/dev/null
		make -s -j"$JOBS" >/dev/null 2>&1 || make -j1   # show the error on failure
		make -s install >/dev/null
	) >&2
	touch "$stamp"
}

# Each netfilter library: built from source, else its Debian -dev headers
# (libc-independent declarations) so the daemon's objects still compile.
missing=""
for l in "libmnl libmnl" "libnfnetlink libnfnetlink" "libnetfilter_queue libnetfilter-queue" \
	"libnftnl libnftnl" "libnetfilter_conntrack libnetfilter-conntrack"; do
	# shellcheck disable=SC2086
	set -- $l
	if ! autotools_lib "$1" "$2"; then
		missing="$missing $1"
		[ -d "/usr/include/$1" ] || { echo "FAIL: no source and no headers for $1" >&2; exit 1; }
		mkdir -p "$SYSROOT/include"
		cp -a "/usr/include/$1" "$SYSROOT/include/"
	fi
done
if [ -f "$SYSROOT/include/libnfnetlink/libnfnetlink.h" ]; then
	# libnfnetlink 1.0.1's header uses u_int16_t without <sys/types.h>; glibc
	# happens to declare it anyway, musl does not (1.0.2 includes it).
	h=$SYSROOT/include/libnfnetlink/libnfnetlink.h
	grep -q '<sys/types.h>' "$h" || sed -i '0,/^#include/s//#include <sys\/types.h>\n#include/' "$h"
fi
autotools_lib yaml libyaml || { echo "FAIL: libyaml's source is needed (core and unit tests)" >&2; exit 1; }

if [ ! -f "$SYSROOT/.built-cmocka" ]; then
	dir=$(fetch_src cmocka cmocka)
	[ -n "$dir" ] || { echo "FAIL: cmocka's source is needed (unit tests)" >&2; exit 1; }
	log "building cmocka"
	rm -rf "$dir/b" && mkdir "$dir/b"
	(cd "$dir/b" && cmake -DCMAKE_C_COMPILER=musl-gcc -DCMAKE_INSTALL_PREFIX="$SYSROOT" \
		-DBUILD_SHARED_LIBS=OFF -DWITH_STATIC_LIB=ON -DUNIT_TESTING=OFF -DWITH_EXAMPLES=OFF \
		-DCMAKE_INSTALL_LIBDIR=lib .. >/dev/null && make -s -j"$JOBS" >/dev/null && make -s install >/dev/null) >&2
	# cmocka 1.1 installs libcmocka-static.a when static
	[ -f "$SYSROOT/lib/libcmocka.a" ] || cp "$SYSROOT/lib/libcmocka-static.a" "$SYSROOT/lib/libcmocka.a"
	# 1.1 builds the shared library whatever BUILD_SHARED_LIBS says: only
	# the archive may stay, or the tests would look for libcmocka.so at run time.
	rm -f "$SYSROOT"/lib/libcmocka.so*
	touch "$SYSROOT/.built-cmocka"
fi

# libnftables: nftcmd.c only needs its header (the library is dlopen'ed at
# run time; on OpenWrt it comes with nftables-json / nftables-nojson).
if [ ! -f "$SYSROOT/include/nftables/libnftables.h" ]; then
	mkdir -p "$SYSROOT/include/nftables" "$SYSROOT/lib/pkgconfig"
	cp /usr/include/nftables/libnftables.h "$SYSROOT/include/nftables/"
	printf 'prefix=%s\nName: libnftables\nDescription: header only\nVersion: 1.0.6\nCflags: -I${prefix}/include\n' \
		"$SYSROOT" > "$SYSROOT/lib/pkgconfig/libnftables.pc"
fi

# CC and CFLAGS on the command line: the stricter case (OpenWrt's default
# Build/Compile puts CFLAGS in the environment, CC on the command line); the
# Makefile's `override CFLAGS +=` must still add what the code needs.
OUT=$M/obj
T=$OUT/tree
log "building sipalgd, sipalgctl, unit tests with musl-gcc"
# A copy of the tree (mtimes kept, so a second run rebuilds only what changed)
# keeps the musl objects and binaries away from the glibc ones in the repo.
mkdir -p "$T/tests"
cp -a "$REPO/Makefile" "$REPO/VERSION" "$REPO/src" "$T/"
cp -a "$REPO/tests/unit" "$T/tests/"
# osipdiff_test links libosip2 (the scanner's second opinion, a test-only
# library with no musl build here): the glibc `make unit` runs it.
units=$(cd "$T" && ls tests/unit/*_test.c | grep -v osipdiff_test | sed 's|tests/unit/\(.*\)\.c|build/unit/\1|')
objs=$(cd "$T" && ls src/*.c | grep -v sipalgctl.c | sed 's|src/\(.*\)\.c|build/\1.o|')
link=sipalgd
[ -z "$missing" ] || link=""
# shellcheck disable=SC2086
make -C "$T" -s CC=musl-gcc FASTPATH=0 \
	CFLAGS="-Os -isystem $KINC -I$SYSROOT/include" LDFLAGS="-L$SYSROOT/lib" \
	PKG_CONFIG="pkg-config --static" $objs $link sipalgctl $units
OUT=$T

# Proof that these are musl binaries, not glibc ones that slipped through.
for b in ${link:+"$OUT/sipalgd"} "$OUT/sipalgctl"; do
	interp=$(readelf -l "$b" | sed -n 's/.*interpreter: \(.*\)]/\1/p')
	case "$interp" in *ld-musl*) ;; *) echo "FAIL: $b interpreter is '$interp', not musl" >&2; exit 1 ;; esac
done
if [ -n "$link" ]; then
	"$OUT/sipalgd" -n -c "$REPO/conf/sipalgd.yaml"
else
	log "sipalgd: all $(echo "$objs" | wc -w) objects compiled with musl-gcc; NOT linked: no musl build of$missing (no source here)"
fi
"$OUT/sipalgctl" -V >/dev/null
fail=0
for t in "$T"/build/unit/*_test; do
	echo "== $t (musl)"
	"$t" || fail=1
done
[ $fail = 0 ] || { echo "FAIL: unit tests under musl" >&2; exit 1; }
echo "musl-check: ${link:-sipalgd objects (not linked),} sipalgctl and $(ls "$T"/build/unit/*_test | wc -l) unit test programs built with musl-gcc; all passed"
