/* wan: the router's public address, followed over rtnetlink. The only
 * module that speaks rtnetlink (libmnl).
 *
 * With wan.public_address empty, the public address is the WAN interface's
 * IPv4 address, whatever it is now: an interface is followed by NAME, so a
 * pppoe-wan deleted and re-created (a new ifindex) is found again. With
 * wan.public_address set (a router behind a modem's NAT) that address
 * stays; rtnetlink then only keeps the router's own address list current.
 * A change goes to the policy (alg_set_public, dialog_set_local), which
 * queues the kernel changes in nftmap/ct; the caller commits them.
 * While there is no address, SIP from the LAN is dropped (alg.h).
 * IPv4 addresses in HOST byte order.
 *
 * The interface's IPv6 address is followed the same way, always (for
 * wan.masquerade6; alg_set_public(6, ...)): one global address that is not a
 * privacy (temporary), deprecated, tentative or LAN address; the current
 * one kept while it stays so, else the lowest. */
#ifndef SIPALGD_WAN_H
#define SIPALGD_WAN_H
#include <stdint.h>
#include <stdio.h>

struct addr;
struct conf;

/* Open the event socket and resolve the start address (there may be none
 * yet: not an error). Call after alg_init(). 0 or -1 (logged). */
int wan_open(const struct conf *c, uint64_t now);
/* poll() this for POLLIN; -1 before wan_open. */
int wan_fd(void);
/* Read pending RTM_NEWADDR/DELADDR/NEWLINK/DELLINK and apply a change.
 * Also safe to call on every tick: it then re-reads the kernel's addresses
 * every few seconds (a lost event, an overrun socket). */
void wan_event(uint64_t now);
/* SIGHUP: wan.interface or wan.public_address may have changed. 0, or -1
 * when a change needs a restart (logged; the rest is applied). */
int wan_reconfigure(const struct conf *c, uint64_t now);
/* The public address now, 0 while there is none. */
uint32_t wan_public(void);
/* The public IPv6 address now, NULL while there is none. */
const struct addr *wan_public6(void);
/* wan.interface's ifindex at the last scan (events and the slow re-check
 * rescan, so a re-created pppoe-wan is found), 0 while it does not exist. */
int wan_ifindex(void);
/* One line for `sipalgctl status`: the interface, its ifindex now and the
 * public address. */
void wan_status(FILE *out);
void wan_close(void);

#endif
