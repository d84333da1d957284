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
#   3. a git checkout under $MUSL_GIT_DIR/<owner+repo>/ (git archive HEAD)
# The script fails, naming the library, if none is there.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
M=$REPO/build/musl
SYSROOT=$M/sysroot
SRC=$M/src
WORK=$M/work
MUSL_GIT_DIR=${MUSL_GIT_DIR:-/work/.mirror}
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

# fetch_src NAME DEB_SRC_PKG GIT_REPOS... -> prints an unpacked source dir
fetch_src() {
	local name=$1 deb=$2; shift 2
	local dir=$WORK/$name t g
	if [ -d "$dir" ]; then echo "$dir"; return; fi
	t=$(ls "$SRC/$name".tar.* 2>/dev/null | head -1 || true)
	if [ -z "$t" ] && [ -n "$deb" ]; then
		(cd "$SRC" && apt-get source --download-only -qq "$deb" >/dev/null 2>&1) || true
		t=$(ls "$SRC/${deb}_"*.orig.tar.* 2>/dev/null | grep -v '\.asc$' | head -1 || true)
		[ -n "$t" ] && log "$name: Debian source package $deb ($(basename "$t"))"
	fi
	mkdir -p "$dir"
	if [ -n "$t" ]; then
		tar -xf "$t" -C "$dir" --strip-components=1
		echo "$dir"; return
	fi
	for g in "$@"; do
		for gd in "$MUSL_GIT_DIR/$g/repo" "$MUSL_GIT_DIR/$g/repo/.git"; do
			if git -C "$gd" rev-parse -q --verify HEAD >/dev/null 2>&1; then
				log "$name: git $g at $(git -C "$gd" rev-parse --short HEAD)"
				git -C "$gd" archive HEAD | tar -x -C "$dir"
				echo "$dir"; return
			fi
		done
	done
	rmdir "$dir"
	echo "no source for $name: put a release tarball at $SRC/$name.tar.gz" >&2
	exit 2
}

# autotools_lib NAME DEB GIT... : configure --disable-shared into the sysroot
autotools_lib() {
	local name=$1 stamp=$SYSROOT/.built-$1 dir
	[ -f "$stamp" ] && return
	dir=$(fetch_src "$@")
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

autotools_lib libmnl libmnl justmirror+libmnl
autotools_lib libnfnetlink libnfnetlink CyanogenMod+android_external_libnfnetlink
# libnfnetlink 1.0.1's header uses u_int16_t without <sys/types.h>; glibc
# happens to declare it anyway, musl does not (1.0.2 includes it).
h=$SYSROOT/include/libnfnetlink/libnfnetlink.h
grep -q '<sys/types.h>' "$h" || sed -i '0,/^#include/s//#include <sys\/types.h>\n#include/' "$h"
autotools_lib libnetfilter_queue libnetfilter-queue rcoscali+libnetfilter_queue
autotools_lib libnftnl libnftnl greearb+libnftnl-ct
autotools_lib libnetfilter_conntrack libnetfilter-conntrack sailfishos-mirror+libnetfilter_conntrack
autotools_lib yaml libyaml

if [ ! -f "$SYSROOT/.built-cmocka" ]; then
	dir=$(fetch_src cmocka cmocka)
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
cp -a "$REPO/Makefile" "$REPO/src" "$T/"
cp -a "$REPO/tests/unit" "$T/tests/"
units=$(cd "$T" && ls tests/unit/*_test.c | sed 's|tests/unit/\(.*\)\.c|build/unit/\1|')
# shellcheck disable=SC2086
make -C "$T" -s CC=musl-gcc \
	CFLAGS="-Os -isystem $KINC -I$SYSROOT/include" LDFLAGS="-L$SYSROOT/lib" \
	PKG_CONFIG="pkg-config --static" sipalgd sipalgctl $units
OUT=$T

# Proof that these are musl binaries, not glibc ones that slipped through.
for b in "$OUT/sipalgd" "$OUT/sipalgctl"; do
	interp=$(readelf -l "$b" | sed -n 's/.*interpreter: \(.*\)]/\1/p')
	case "$interp" in *ld-musl*) ;; *) echo "FAIL: $b interpreter is '$interp', not musl" >&2; exit 1 ;; esac
done
"$OUT/sipalgd" -n -c "$REPO/conf/sipalgd.yaml"
"$OUT/sipalgctl" -V >/dev/null 2>&1 || "$OUT/sipalgctl" --help >/dev/null 2>&1 || true
fail=0
for t in "$T"/build/unit/*_test; do
	echo "== $t (musl)"
	"$t" || fail=1
done
[ $fail = 0 ] || { echo "FAIL: unit tests under musl" >&2; exit 1; }
echo "musl-check: sipalgd, sipalgctl and $(ls "$T"/build/unit/*_test | wc -l) unit test programs built with musl-gcc; all passed"
