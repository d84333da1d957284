/* fastpath: the loader of the tc eBPF fast path (bpf/sipfast.bpf.c, the
 * maps in bpf/sipfast.h, docs/fastpath.md). The only module that includes
 * libbpf. It loads the program, attaches it at clsact ingress of the WAN
 * interface and of the LAN interfaces (those holding an IPv4 address inside
 * lan.networks), keeps its configuration map in step with the public
 * address and the configuration, and mirrors the signalling bindings
 * (binding.c calls fastpath_binding_set/del; nothing else needs libbpf).
 *
 * Fail closed: the attachment is a TCX bpf_link owned by this process
 * (kernel >= 6.6), so a daemon that dies leaves no program behind and SIP
 * stops at the queue nobody reads. Older kernels get a classic tc filter,
 * replaced at start and removed at exit. Built with FASTPATH=0 every
 * function is a stub and queue.fastpath: auto means "queue only".
 * Addresses in HOST byte order, as everywhere in the daemon. */
#ifndef SIPALGD_FASTPATH_H
#define SIPALGD_FASTPATH_H
#include <stdint.h>
#include <stdio.h>

struct conf;
struct binding;

/* Load, fill the maps from the binding table as it is now (after
 * state_load) and attach. With queue.fastpath: auto a failure is one log
 * line, c->fastpath becomes off (so the diversion has no mark rule) and 0 is
 * returned; with on it is -1. off: nothing, 0. */
int fastpath_open(struct conf *c);
/* Detach and unload (exit). */
void fastpath_close(void);

/* SIGHUP applied `c`: re-read lan.networks' interfaces, sip.ports, mode. */
void fastpath_reconfigure(const struct conf *c);

/* A signalling binding was created or changed its flags / went away. */
void fastpath_binding_set(const struct binding *b);
void fastpath_binding_del(const struct binding *b);
/* The public address changed (0: the WAN has none: pass everything). */
void fastpath_set_public(uint32_t public_ip);
/* The earlier public addresses alg.c still recognises in dialog ids (host
 * order, 0 = none): a message naming one is left to the daemon. */
void fastpath_set_old_public(const uint32_t *old, int n);

/* Each tick: counters from the per-CPU map into stats, a failed map
 * update repaired, interfaces re-checked now and then. */
void fastpath_tick(uint64_t now_ms);
/* Only the counters (before sipalgctl reads them). */
void fastpath_stats_read(void);

/* One line for `sipalgctl status`. */
void fastpath_status(FILE *out);

#endif
