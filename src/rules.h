/* rules: the diversion of SIP to our queue (iptables -j NFQUEUE, or the nft
 * queue statement where the kernel has it), for IPv4 and, with sip.ipv6, the
 * same rules for IPv6 (ip6tables, or a table of family ip6). Installed at
 * start and removed at exit unless the operator loads kernel-rules/ himself
 * (--no-rules). Runs a process only at start, exit and repair, never per
 * packet or call. */
#ifndef SIPALGD_RULES_H
#define SIPALGD_RULES_H

struct conf;

/* The two copies of the diversion. */
enum rules_family { RULES_IP4, RULES_IP6 };

/* Install; removes any stale copy of our rules first. 0 or -1 (logged).
 * Only the IPv4 diversion decides the result: a router without IPv6 (no
 * ip6tables, no ip6_tables module, disable_ipv6=1) must still run, so the
 * IPv6 one is installed when it can be, and otherwise rules_ipv6_off()
 * says why (warned once). */
int rules_install(const struct conf *c);
/* Remove only what rules_install() created. */
void rules_remove(const struct conf *c);

/* Put the diversion back after someone else removed it (fwwatch), as fast
 * as possible: the jump from FORWARD is added only when `need_jump`. Falls
 * back on rules_install(). 0 or -1 (logged). */
int rules_repair(const struct conf *c, enum rules_family f, int need_jump);

/* NULL when rules_install() diverted IPv6 SIP (or has not run: --no-rules);
 * otherwise why it did not ("sip.ipv6: off", "net.ipv6.conf.all.
 * disable_ipv6=1", "no ip6tables", ...), for `sipalgctl status`. */
const char *rules_ipv6_off(void);

/* Where the diversion lives in the nf_tables ruleset (iptables-nft rules
 * are nf_tables rules too), so that fwwatch can tell it is still there:
 * `nrules` rules in table `table` of family `nfproto` (NFPROTO_IPV4/6),
 * chain `chain`, and, when `from` is not empty, a jump to `chain` from
 * chain `from` of the same table. -1 when that family's diversion is not
 * ours to watch (IPv6 off). */
struct rules_where {
	char table[48];
	char chain[32];
	char from[32];
	int nrules;
	int nfproto;
};
int rules_where(const struct conf *c, enum rules_family f, struct rules_where *w);

#endif
