#!/bin/sh
# packaging/container/build.sh: `make container`. Builds the sipalgd image
# with no registry: a Debian 12 base root filesystem made by mmdebstrap from
# the host's configured apt sources, imported as a local image, then the
# Containerfile on top of it with the binaries built on this host.
#
#   CONTAINER_IMAGE  the tag to build      (default localhost/sipalgd:lab)
#   CONTAINER_BASE   the local base image  (default localhost/sipalgd-base:bookworm)
#   CONTAINER_SOURCES an apt sources file for mmdebstrap (default: the host's)
#
# Outputs in build/container/: base-rootfs.tar (the mmdebstrap tarball, kept
# so a rebuild skips mmdebstrap while the package list is unchanged), ctx/
# (the build context) and image (the tag and the image id, one per line).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=$REPO/build/container
IMAGE=${CONTAINER_IMAGE:-localhost/sipalgd:lab}
BASE=${CONTAINER_BASE:-localhost/sipalgd-base:bookworm}
SUITE=bookworm
# Only what the daemon needs at run time: the libraries it links (ldd
# sipalgd), libnftables1 (dlopen'ed by nftcmd.c), and nft/iptables for the
# operator and for the iptables NFQUEUE diversion the daemon installs.
PKGS=libnetfilter-queue1,libmnl0,libnftnl11,libnftables1,libnetfilter-conntrack3,libyaml-0-2,libbpf1,nftables,iptables
if [ -z "${CONTAINER_SOURCES:-}" ]; then
	for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
		[ -s "$f" ] && { CONTAINER_SOURCES=$f; break; }
	done
fi
: "${CONTAINER_SOURCES:?no apt sources file found; set CONTAINER_SOURCES}"
for t in mmdebstrap podman; do
	command -v $t >/dev/null 2>&1 || { echo "container: $t is missing (apt-get install mmdebstrap podman)" >&2; exit 2; }
done
mkdir -p "$OUT"
t0=$(date +%s)

# 1. The base. minbase + the merged-/usr hook (without it mmdebstrap 1.3
# installs usrmerge, which pulls in all of perl: 130 MB instead of 82 MB);
# no man pages, docs (copyrights kept) or translations.
key="$SUITE $PKGS $(sha256sum <"$CONTAINER_SOURCES" | cut -c1-16) v1"
if [ -s "$OUT/base-rootfs.tar" ] && [ "$(cat "$OUT/base.key" 2>/dev/null)" = "$key" ] &&
   podman image exists "$BASE"; then
	echo "container: base $BASE is up to date (build/container/base-rootfs.tar)"
else
	echo "container: mmdebstrap $SUITE (minbase + $PKGS)"
	rm -f "$OUT/base.key"
	mmdebstrap --quiet --variant=minbase --format=tar \
		--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
		--include="$PKGS" \
		--dpkgopt='path-exclude=/usr/share/man/*' \
		--dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-include=/usr/share/doc/*/copyright' \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		--dpkgopt='path-exclude=/usr/share/info/*' \
		"$SUITE" "$OUT/base-rootfs.tar.part" "$CONTAINER_SOURCES" >"$OUT/mmdebstrap.log" 2>&1 || {
		tail -n 30 "$OUT/mmdebstrap.log" >&2
		echo "container: mmdebstrap failed (log: build/container/mmdebstrap.log)" >&2
		exit 1
	}
	mv "$OUT/base-rootfs.tar.part" "$OUT/base-rootfs.tar"
	old_base=$(podman image inspect --format '{{.Id}}' "$BASE" 2>/dev/null || true)
	podman import --quiet --change 'CMD ["/bin/sh"]' "$OUT/base-rootfs.tar" "$BASE" >/dev/null
	# Still the parent of the previous image: removing it may fail, that is fine.
	[ -n "$old_base" ] && podman rmi "$old_base" >/dev/null 2>&1
	echo "$key" >"$OUT/base.key"
fi

# 2. The context: what `make install` puts in a Debian-style root, minus the
# systemd unit and man pages (no systemd, no man in the image).
rm -rf "$OUT/ctx"
mkdir -p "$OUT/ctx"
${MAKE:-make} -s -C "$REPO" install DESTDIR="$OUT/ctx/stage" PREFIX=/usr SYSCONFDIR=/etc >/dev/null
rm -rf "$OUT/ctx/stage/usr/lib/systemd" "$OUT/ctx/stage/usr/share/man"
install -m 0755 "$HERE/sipalgd-entrypoint" "$OUT/ctx/sipalgd-entrypoint"

# 3. The image. --format docker keeps HEALTHCHECK (the OCI format drops it).
# The image a rebuild replaces keeps no tag: remove it (only that one).
old_id=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
rev=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
podman build --quiet --format docker --pull=never \
	--build-arg BASE="$BASE" --build-arg REVISION="$rev" \
	-t "$IMAGE" -f "$HERE/Containerfile" "$OUT/ctx" >/dev/null
id=$(podman image inspect --format '{{.Id}}' "$IMAGE")
if [ -n "$old_id" ] && [ "$old_id" != "$id" ] &&
   [ -z "$(podman image inspect --format '{{join .RepoTags ""}}' "$old_id" 2>/dev/null)" ]; then
	podman rmi "$old_id" >/dev/null 2>&1 || true
fi
printf '%s\n%s\n' "$IMAGE" "$id" >"$OUT/image"
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "container: built $IMAGE (id ${id%"${id#????????????}"}, $((size / 1000000)) MB, revision $rev) in $(( $(date +%s) - t0 )) s"
echo "container: tag and id in build/container/image; run it as docs/container.md shows"
