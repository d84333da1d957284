#!/bin/bash
# stepcost.sh [ROUNDS]: the per-call cost of the daemon's kernel steps (ct
# stale-flow clear, nft transactions by size, with and without an nf_tables
# event listener), measured as thread CPU time in a namespace of its own.
# Timing only: prints, asserts nothing. SRC=dir measures another tree's
# src/ (an A/B of ct.c or nftmap.c).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SRC=${SRC:-$ROOT/src}
ID=${BENCH_ID:-$(( $$ % 10000 ))}
NS=salgs-$ID
BUILD=$(mktemp -d /tmp/salgs.$ID.XXXXXX)
cleanup() { ip netns del "$NS" 2>/dev/null || true; rm -rf "$BUILD"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
[ "$(id -u)" = 0 ] || { echo "stepcost.sh: needs root" >&2; exit 2; }
PKGS="libmnl libnftnl libnftables libnetfilter_conntrack yaml-0.1"
# shellcheck disable=SC2046
${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -D_GNU_SOURCE -I"$SRC" $(pkg-config --cflags $PKGS) \
	-o "$BUILD/stepcost" "$HERE/stepcost.c" \
	"$SRC/nftmap.c" "$SRC/ct.c" "$SRC/nftcmd.c" "$SRC/mem.c" "$SRC/log.c" "$SRC/stats.c" "$SRC/conf.c" "$SRC/addr.c" "$SRC/siphash.c" \
	$(pkg-config --libs $PKGS)
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add wan0 type veth peer name wan0p
ip -n "$NS" link set wan0 up
ip -n "$NS" addr add 192.0.2.1/24 dev wan0
ip netns exec "$NS" "$BUILD/stepcost" "${1:-2000}"
