# shellcheck shell=bash
# tests/package/podman-flags.sh: sourced; prints the `podman run` flags this
# kind of sandbox needs. podman 4.3's default crun fails here at setrlimit
# (RLIMIT_NOFILE: podman asks for more than the hard limit; EPERM) and then at
# "cgroups in hybrid mode"; runc passes both when the limits are given
# explicitly at or below the hard ones (lowering a limit is always allowed;
# 4096 is far above what sipalgd or sipp use here). On an ordinary host the
# flags are harmless. docs/container.md lists what was tried.
podman_run_flags() {
	local f="" n=4096 u=4096
	command -v runc >/dev/null 2>&1 && f="--runtime runc"
	[ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt $n ] && n=$(ulimit -Hn)
	[ "$(ulimit -Hu)" != unlimited ] && [ "$(ulimit -Hu)" -lt $u ] && u=$(ulimit -Hu)
	echo "$f --ulimit nofile=$n:$n --ulimit nproc=$u:$u"
}
