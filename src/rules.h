/* rules: the diversion of SIP to our queue (iptables -j NFQUEUE, or the nft
 * queue statement where the kernel has it). Installed at start and removed at
 * exit unless the operator loads kernel-rules/ himself (--no-rules). Runs a
 * process only at start and exit, never per packet or call. */
#ifndef SIPALGD_RULES_H
#define SIPALGD_RULES_H

struct conf;

/* Install; removes any stale copy of our rules first. 0 or -1 (logged). */
int rules_install(const struct conf *c);
/* Remove only what rules_install() created. */
void rules_remove(const struct conf *c);

#endif
