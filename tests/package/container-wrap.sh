#!/bin/sh
# tests/package/container-wrap.sh: LAB_SIPALGD_WRAP for tests/netns/run.sh,
# set by container.sh. The lab calls it inside the router namespace as
#   container-wrap.sh podman IMAGE   CMD ARGS...   run CMD in the image, in this namespace
#   container-wrap.sh chroot ROOTFS  CMD ARGS...   run CMD chrooted in the image's files
# with LAB_TMP (the lab's config, socket and pid file) bind-mounted at the
# same path, so the host's sipalgctl and the lab find them where they expect.
# Each branch ends in exec: the lab's SIGTERM reaches the daemon (podman run
# proxies it to the container's PID 1, the entry point exec'ed sipalgd).
set -eu
mode=$1 what=$2
shift 2
: "${LAB_TMP:?}" "${LAB_ID:?}" "${NS_RTR:?}"
case $mode in
podman)
	# Back to the namespaces container.sh ran in, then into the router's by
	# --network ns:: from inside `ip netns exec` runc would take the router's
	# namespace for the host's and refuse podman's default sysctls, and
	# ip netns exec's own /sys has no cgroup mounts for conmon.
	: "${CONTAINER_HOST_NS:?}"
	# shellcheck disable=SC2086 # CONTAINER_RUN_FLAGS is a list of flags
	exec nsenter --net="$CONTAINER_HOST_NS/net" --mount="$CONTAINER_HOST_NS/mnt" podman run --rm --name "salg-gw-$LAB_ID" ${CONTAINER_RUN_FLAGS:-} \
		--no-healthcheck --network "ns:/run/netns/$NS_RTR" \
		--cap-drop all --cap-add NET_ADMIN,NET_RAW,SYS_NICE \
		-v "$LAB_TMP:$LAB_TMP" --entrypoint "$1" "$what" "$@" ;;
chroot)
	# A private mount namespace: the mounts vanish with the daemon.
	# shellcheck disable=SC2016 # expanded by the inner sh
	exec unshare -m --propagation private sh -c '
		set -e; r=$1; shift
		mkdir -p "$r$LAB_TMP"
		mount --bind "$LAB_TMP" "$r$LAB_TMP"
		mount --bind /dev "$r/dev"
		mount -t proc proc "$r/proc"
		exec chroot "$r" "$@"' sh "$what" "$@" ;;
*)
	echo "container-wrap.sh: mode must be podman or chroot (got $mode)" >&2
	exit 2 ;;
esac
