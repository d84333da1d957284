/* tcbpf: see tcbpf.h. */
#include "tcbpf.h"

#ifdef SIPALGD_FASTPATH

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "log.h"

/* enum bpf_attach_type's BPF_TCX_INGRESS/EGRESS (Linux 6.6): Debian 12's
 * headers (6.1) and libbpf 1.1 do not know them, the kernel does. */
#define TCBPF_TCX_INGRESS 46
#define TCBPF_TCX_EGRESS  47

/* libbpf's own messages: only at debug level; the reason a load failed is
 * logged once by the caller, with its errno. */
static int tcbpf_print(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	if (lvl == LIBBPF_DEBUG)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = 0;
	log_debug("libbpf: %s", buf);
	return 0;
}

void tcbpf_libbpf_quiet(void)
{
	libbpf_set_print(tcbpf_print);
}

static void tc_filter_del(const struct tcbpf_at *at)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = at->ifindex,
		    .attach_point = at->egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = at->handle, .priority = at->handle);

	/* Also with the fast path off, before any loader quieted libbpf: an
	 * interface without a clsact qdisc (the usual case) is no error. */
	tcbpf_libbpf_quiet();
	bpf_tc_detach(&hook, &o); /* ENOENT: there was none */
}

/* Most routers in use run kernels without TCX (Debian 12: 6.1, OpenWrt
 * 23.05: 5.15): the tests take the classic path on purpose with this. */
static int tcbpf_no_tcx(void)
{
	const char *v = getenv("SIPALGD_TC_NO_TCX");

	return v && *v && strcmp(v, "0") != 0;
}

int tcbpf_attach(int prog_fd, const struct tcbpf_at *at, int *link_fd)
{
	int fd, r;

	*link_fd = -1;
	/* A classic filter of ours left by a run that was killed would go on
	 * with maps nobody updates: gone before anything else. */
	tc_filter_del(at);
	if (tcbpf_no_tcx()) {
		log_debug("tc: SIPALGD_TC_NO_TCX set: a tc filter on ifindex %d", at->ifindex);
	} else {
		fd = bpf_link_create(prog_fd, at->ifindex, at->egress ? TCBPF_TCX_EGRESS : TCBPF_TCX_INGRESS,
				     NULL);
		if (fd >= 0) {
			*link_fd = fd;
			return 0;
		}
		log_debug("tc: TCX attach to ifindex %d: %s; trying a tc filter", at->ifindex, strerror(errno));
	}
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = at->ifindex,
		    .attach_point = at->egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = at->handle, .priority = at->handle,
		    .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE);
	r = bpf_tc_hook_create(&hook);
	if (r < 0 && r != -EEXIST)
		return r;
	r = bpf_tc_attach(&hook, &o);
	return r < 0 ? r : 0;
}

int tcbpf_filter_present(int prog_fd, const struct tcbpf_at *at)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = at->ifindex,
		    .attach_point = at->egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = at->handle, .priority = at->handle);
	uint32_t want = tcbpf_prog_id(prog_fd);
	int r = bpf_tc_query(&hook, &o);

	if (r == -ENOENT || r == -EINVAL)
		return 0; /* no filter there, or no clsact qdisc at all */
	if (r < 0)
		return r;
	return !want || o.prog_id == want;
}

void tcbpf_detach(const struct tcbpf_at *at, int link_fd)
{
	if (link_fd >= 0)
		close(link_fd);
	else
		tc_filter_del(at);
}

uint32_t tcbpf_map_id(int fd)
{
	struct bpf_map_info mi;
	uint32_t n = sizeof(mi);

	memset(&mi, 0, sizeof(mi));
	return bpf_obj_get_info_by_fd(fd, &mi, &n) == 0 ? mi.id : 0;
}

uint32_t tcbpf_link_id(int fd)
{
	struct bpf_link_info li;
	uint32_t n = sizeof(li);

	memset(&li, 0, sizeof(li));
	return bpf_obj_get_info_by_fd(fd, &li, &n) == 0 ? li.id : 0;
}

uint32_t tcbpf_prog_id(int fd)
{
	struct bpf_prog_info pi;
	uint32_t n = sizeof(pi);

	memset(&pi, 0, sizeof(pi));
	return bpf_obj_get_info_by_fd(fd, &pi, &n) == 0 ? pi.id : 0;
}

int tcbpf_if_is_ether(const char *ifname)
{
	char path[96];
	int type = 1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/net/%s/type", ifname);
	f = fopen(path, "re");
	if (f) {
		if (fscanf(f, "%d", &type) != 1)
			type = 1;
		fclose(f);
	}
	return type == 1;
}

void tcbpf_percpu_sum(int map_fd, uint32_t n, uint64_t *sum, uint64_t *scratch, int ncpu)
{
	for (uint32_t k = 0; k < n; k++) {
		sum[k] = 0;
		if (bpf_map_lookup_elem(map_fd, &k, scratch) < 0)
			continue;
		for (int i = 0; i < ncpu; i++)
			sum[k] += scratch[i];
	}
}

#endif
