/* tcbpf: what the loaders of our two tc programs share (fastpath.c at
 * ingress, guard.c at the WAN's egress): attaching by a TCX link owned by
 * this process, with a classic clsact filter as the fallback on kernels
 * without TCX, and the kernel's ids of what was loaded. Built only with
 * FASTPATH=1 (it needs libbpf); nothing else includes it. */
#ifndef SIPALGD_TCBPF_H
#define SIPALGD_TCBPF_H
#include <stdint.h>

/* Where, and which classic filter is ours (handle = priority). */
struct tcbpf_at {
	int ifindex;
	int egress;
	uint32_t handle;
};

/* Attach prog_fd. Returns 0 with *link_fd the TCX link (closing it
 * detaches), or 0 with *link_fd -1 (a classic filter, replaced if one of
 * ours was there), or -errno. A classic filter of ours that a killed run
 * left is removed first in every case. */
int tcbpf_attach(int prog_fd, const struct tcbpf_at *at, int *link_fd);
/* With SIPALGD_TC_NO_TCX=1 in the environment, tcbpf_attach() behaves as
 * on a kernel without TCX (before 6.6): a classic filter. */

/* A classic filter is a tc object anyone can remove (`tc qdisc del dev X
 * clsact`, a QoS script), unlike a TCX link: is ours (this program) still
 * at `at`? 1 yes, 0 no, -errno when the kernel cannot tell. */
int tcbpf_filter_present(int prog_fd, const struct tcbpf_at *at);
/* Undo tcbpf_attach (link_fd -1: remove the classic filter, if any). */
void tcbpf_detach(const struct tcbpf_at *at, int link_fd);

/* The kernel's ids (0 when unknown), for `sipalgctl status`. */
uint32_t tcbpf_link_id(int fd);
uint32_t tcbpf_prog_id(int fd);
uint32_t tcbpf_map_id(int fd);

/* Sum over the CPUs of keys 0..n-1 of a per-CPU array of u64 counters
 * into sum[0..n); scratch holds ncpu values (one lookup). A key the
 * kernel does not give sums to 0. */
void tcbpf_percpu_sum(int map_fd, uint32_t n, uint64_t *sum, uint64_t *scratch, int ncpu);

/* ARPHRD_ETHER by sysfs (1 when unknown): frames of other devices (ppp,
 * tun, wireguard) start at the IP header. */
int tcbpf_if_is_ether(const char *ifname);
/* libbpf's messages at our debug level only. */
void tcbpf_libbpf_quiet(void);

#endif
