/* tproxy: the kernel side of the TCP relay. SIP/TCP from the LAN to the
 * SIP ports is diverted to our listener (nft tproxy + a fwmark routed to a
 * local table), and SIP/TCP from the LAN that would be forwarded to the WAN
 * anyway (no relay socket: the daemon is dead) is reset: fail closed.
 * Installed at start and removed at exit; kernel-rules/tproxy.sh is the same
 * for operators who load rules themselves. */
#ifndef SIPALGD_TPROXY_H
#define SIPALGD_TPROXY_H
#include <stdint.h>

struct conf;

#define TPROXY_MARK  0x5f10     /* fwmark of diverted packets */
#define TPROXY_TABLE 5061       /* routing table with the local default route */

/* Install for our listener on `port`; removes a stale copy first. 0 or -1. */
int tproxy_install(const struct conf *c, uint16_t port);
void tproxy_remove(const struct conf *c);

#endif
