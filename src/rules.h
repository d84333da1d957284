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

/* Put the diversion back after someone else removed it (fwwatch), as fast
 * as possible: the jump from FORWARD is added only when `need_jump`. Falls
 * back on rules_install(). 0 or -1 (logged). */
int rules_repair(const struct conf *c, int need_jump);

/* Where the diversion lives in the nf_tables ruleset (iptables-nft rules
 * are nf_tables rules too), so that fwwatch can tell it is still there:
 * `nrules` rules in table ip `table`, chain `chain`, and, when `from` is
 * not empty, a jump to `chain` from chain `from` of the same table. */
struct rules_where {
	char table[48];
	char chain[32];
	char from[32];
	int nrules;
};
int rules_where(const struct conf *c, struct rules_where *w);

#endif
