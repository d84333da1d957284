/* guard: the WAN egress guard (bpf/sipguard.bpf.c, the contract in
 * bpf/sipguard.h). A firewall reload (`nft flush ruleset`, `iptables -t
 * mangle -F`) removes the diversion for the tens of milliseconds fwwatch
 * needs to put it back; SIP forwarded meanwhile would leave the WAN with
 * the LAN's addresses. The diversion marks what it queues
 * (queue.guard_mark_bit); this program, at tc egress of the WAN where no
 * netfilter flush reaches, drops forwarded UDP SIP that carries neither
 * that mark nor the fast path's. The phone retransmits; the repaired
 * diversion takes the retransmission.
 *
 * The attachment is a TCX link owned by this process: a clean stop removes
 * it with the rules, kill -9 removes it while leaving the rules (which then
 * queue SIP to nobody: dropped, fail closed as before). Kernels without TCX
 * get a classic clsact egress filter, replaced at start, removed at exit.
 * Built with FASTPATH=0 (no libbpf) every function is a stub: auto means
 * "no guard" and status says so. */
#ifndef SIPALGD_GUARD_H
#define SIPALGD_GUARD_H
#include <stdint.h>
#include <stdio.h>

struct conf;

/* Load and attach to the WAN, after fastpath_open (whether its mark counts
 * depends on it) and before rules_install (whether the diversion sets the
 * guard's mark depends on this: auto turns c->guard off on failure, with
 * one warning; on returns -1). off: removes a classic filter a killed run
 * left; 0. */
int guard_open(struct conf *c);
/* Detach and unload (exit). */
void guard_close(void);

/* The configuration changed (SIGHUP: sip.ports), or the IPv6 diversion
 * came or went (after rules_install): push it to the program. */
void guard_reconfigure(const struct conf *c);

/* Each tick: counters, and the WAN re-checked (a pppoe-wan re-created
 * gets the guard again within a tick). */
void guard_tick(uint64_t now_ms);
/* Only the counters (before sipalgctl reads them). */
void guard_stats_read(void);

/* One line for `sipalgctl status`. */
void guard_status(FILE *out);

#endif
