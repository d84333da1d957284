/* fwwatch: keep the daemon's kernel rules in place through firewall reloads.
 *
 * `nft flush ruleset` (Debian's nftables.service on reload, the first line
 * of most /etc/nftables.conf), `iptables -t mangle -F`, a deleted or
 * swapped table: each removes our NAT table or our diversion, and SIP would
 * then cross the router unrewritten. This module listens to the nf_tables
 * notifications (NFNLGRP_NFTABLES; iptables-nft rules are nf_tables rules
 * in table ip mangle, so their deletion shows there too), checks what we
 * need after each foreign transaction and on the tick, and puts back what
 * is missing: the diversion, our table, and every binding and pinhole
 * element. It also looks for the kernel's own SIP helper on the same
 * traffic (two ALGs on one message).
 *
 * Nothing here runs on the packet path. */
#ifndef SIPALGD_FWWATCH_H
#define SIPALGD_FWWATCH_H

#include <stddef.h>
#include <stdint.h>

struct conf;

/* After nftmap_open() and rules_install(): subscribe, and remember the
 * table we created. `divert`: the diversion is ours to check and repair
 * (not with --no-rules). 0 or -1 (logged). */
int fwwatch_open(const struct conf *c, int divert);
void fwwatch_close(void);
/* After a reload that may have rebuilt the diversion: check the new one. */
void fwwatch_reconfigure(const struct conf *c, int divert);
/* The event socket, for poll(); -1 when closed. */
int fwwatch_fd(void);
/* Read the pending events; when a foreign transaction touched tables,
 * chains or rules, check and repair. */
void fwwatch_event(uint64_t now_ms);
/* The safety net: a check every second, and a retry of a failed repair. */
void fwwatch_tick(uint64_t now_ms);

/* Check now. 0 when everything is in place; otherwise the number of
 * missing pieces, named in buf ("table ip sipalgd, diversion ..."). */
int fwwatch_missing(char *buf, size_t len);

/* Is the kernel's SIP helper attached to traffic? 0 when not seen;
 * otherwise where it was seen, in buf. */
int fwwatch_helper(char *buf, size_t len);

/* 1 when a forward base chain with policy drop (ip or inet; ip6 as well
 * when wan.masquerade6 makes us DNAT IPv6 media) sits in a table
 * with no rule accepting `ct status dnat`: the media of our DNAT pinholes is
 * dropped there. buf names the chains. As found at start and once the ruleset
 * has been quiet for a second after a foreign change (a reload's passing
 * states are not reported; also counted: forward_drops_dnat). */
int fwwatch_forward_drop(char *buf, size_t len);

#endif
