#!/bin/bash
# tests/package/container.sh: `make container-check`. The lab's calls through
# the daemon as the container image holds it (tests/netns/run.sh with the
# daemon started by the image's entry point, in the lab's router namespace):
#   podman  the image run with podman in that namespace (--network ns:...,
#           the caps of docs/container.md), where `podman run` works;
#   chroot  the image's files (podman create + export, so what runs is what
#           the image holds) chrooted in that namespace: the fallback where
#           no container runtime runs (and a check of the files alone).
#
#   CONTAINER_TEST_MODES="podman chroot"  (default both; podman is skipped with
#                         a message when `podman run` fails here, unless it
#                         is the only mode asked for)
#   CONTAINER_REUSE=1     use build/container/image as built, no `make container`
#   FLOWS="reg_2_1 call_3_1"  the lab flows to run
# Exit 0 only if every mode that ran passed and at least one ran.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
MODES=${CONTAINER_TEST_MODES:-podman chroot}
FLOWS=${FLOWS:-reg_2_1 call_3_1}
[ "$(id -u)" = 0 ] || { echo "container.sh needs root (network namespaces, chroot)" >&2; exit 2; }

t0=$(date +%s)
if [ "${CONTAINER_REUSE:-0}" != 1 ] || [ ! -s "$REPO/build/container/image" ]; then
	make -s -C "$REPO" container || { echo "# make container failed" >&2; exit 1; }
fi
IMAGE=$(sed -n 1p "$REPO/build/container/image")
podman image exists "$IMAGE" || { echo "# image $IMAGE is not in podman's store" >&2; exit 1; }
echo "# image $IMAGE ($(podman image inspect --format '{{.Size}}' "$IMAGE") bytes), ready after $(( $(date +%s) - t0 )) s"

ROOT=""
CTR=""
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	[ -n "$CTR" ] && podman rm -f "$CTR" >/dev/null 2>&1
	[ -n "$ROOT" ] && rm -rf "$ROOT"
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=tests/package/podman-flags.sh
. "$HERE/podman-flags.sh"
CONTAINER_RUN_FLAGS=${CONTAINER_RUN_FLAGS:-$(podman_run_flags)}
export CONTAINER_RUN_FLAGS
CONTAINER_HOST_NS=/proc/$$/ns   # see container-wrap.sh
export CONTAINER_HOST_NS

lab() {   # $1 mode, $2 image or rootfs; the rest: extra environment
	local mode=$1 what=$2 t rc id
	shift 2
	t=$(date +%s)
	# Our own LAB_ID (the runs are one after the other), so that a container
	# left by a killed run can be named and removed.
	id=$(( $$ % 10000 ))
	env "$@" LAB_ID=$id LAB_SIPALGD_WRAP="$HERE/container-wrap.sh $mode $what" \
		LAB_SIPALGD_BIN=/usr/local/sbin/sipalgd-entrypoint \
		FLOWS="$FLOWS" "$REPO/tests/netns/run.sh"
	rc=$?
	[ "$mode" = podman ] && podman rm -f "salg-gw-$id" >/dev/null 2>&1
	echo "# container-check $mode: status $rc in $(( $(date +%s) - t )) s"
	return $rc
}

ran=0 bad=0
for mode in $MODES; do
	case $mode in
	podman)
		# shellcheck disable=SC2086
		if ! out=$(podman run --rm $CONTAINER_RUN_FLAGS --no-healthcheck --network none "$IMAGE" true 2>&1); then
			echo "# podman run does not work here ($CONTAINER_RUN_FLAGS): $out"
			if [ "$MODES" = podman ]; then bad=1; else echo "# podman mode skipped"; fi
			continue
		fi
		lab podman "$IMAGE" || bad=1
		ran=$((ran + 1)) ;;
	chroot)
		ROOT=$(mktemp -d /tmp/salg-ctr-root.XXXXXX)
		if ! CTR=$(podman create --no-healthcheck "$IMAGE") ||
		   ! podman export "$CTR" | tar -x -C "$ROOT"; then
			echo "# cannot unpack $IMAGE" >&2
			exit 1
		fi
		podman rm "$CTR" >/dev/null
		CTR=""
		# The image's sipalgctl too (it needs only libc).
		lab chroot "$ROOT" LAB_SIPALGCTL_BIN="$ROOT/usr/sbin/sipalgctl" || bad=1
		rm -rf "$ROOT"
		ROOT=""
		ran=$((ran + 1)) ;;
	*) echo "# unknown mode $mode (podman, chroot)" >&2; exit 2 ;;
	esac
done
[ $ran -gt 0 ] || bad=1
echo "# container-check: $ran mode(s) ran, $([ $bad = 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - t0 )) s"
exit $bad
