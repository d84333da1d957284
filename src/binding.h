/* binding: the NAT binding table the daemon owns. One entry maps a private
 * (ip, port) to a public port on the router's public address: a signalling
 * flow (one port) or a media stream (a pair: RTP port and RTCP port+1).
 * Public port = private port where that is free, else one from the
 * configured range (RFC 4787 endpoint-independent mapping: the mapping does
 * not depend on the remote). Creating a binding queues its SNAT element in
 * nftmap; freeing it queues the delete. Entries are refcounted by the
 * dialogs, streams and registrations that use them; an unused signalling
 * binding lingers for timers.binding_idle, a media binding goes at once.
 * The pool is sized from limits.bindings at start; nothing is allocated later.
 * Signalling bindings are mirrored into the fast path's maps (fastpath.h)
 * as they are created, change flags or go.
 * Ports in HOST byte order. */
#ifndef SIPALGD_BINDING_H
#define SIPALGD_BINDING_H
#include <stdint.h>
#include <stdio.h>

#include "addr.h"

struct conf;

/* BIND_RTCP: one port, the RTCP port an SDP names with a=rtcp (RFC 3605)
 * when it is not RTP+1; freed at once like a media pair. */
enum binding_kind { BIND_SIG = 0, BIND_MEDIA = 1, BIND_RTCP = 2 };

#define BF_VIA_PORT     0x01  /* the phone wrote an explicit port in its Via */
#define BF_CONTACT_PORT 0x02  /* ... and in its Contact */
#define BF_ADOPTED      0x04  /* public port taken from an existing conntrack NAT */

struct binding {
	struct addr priv_ip;     /* IPv4 (v4-mapped) or a wan.masquerade6 IPv6 host */
	uint16_t priv_port;
	uint16_t pub_port;
	uint8_t kind;
	uint8_t flags;
	uint8_t in_use;
	uint32_t refs;
	uint32_t pinholes;       /* media pinholes of the dialogs of this phone (signalling) */
	uint32_t dialogs;        /* dialogs of this phone (signalling), for fair shares */
	uint32_t fp_hold;        /* dialogs keeping it out of the fast path's maps (dialog.c) */
	uint64_t idle_until;     /* ms; only meaningful when refs == 0 */
	uint8_t registered;
	struct addr reg_peer;    /* registrar address while registered */
	struct addr reg_key;     /* peer used for the inbound element (the family's any = any) */
	uint64_t reg_until;      /* ms */
	uint32_t next_priv;      /* hash chains (index + 1, 0 = end) */
	uint32_t next_pub;
};

/* Size the pool and port maps. `pub4` is the router's public IPv4
 * address (NULL: none yet). The public IPv6 address (wan.masquerade6)
 * comes with binding_set_public. One public port space serves both
 * families: a public port names one binding, whichever its family, so an
 * inbound lookup by port needs no family (callers check it). */
int binding_init(const struct conf *c, const struct addr *pub4);
void binding_fini(void);
/* The public address for a private address's family, NULL while none. */
const struct addr *binding_public(const struct addr *priv);
/* The IPv4 one as host order, 0 none: for the v4-only fast path (bpf). */
uint32_t binding_public_ip(void);

/* The WAN address of one family changed (`a` NULL: the WAN has none).
 * Every binding of that family keeps its public port; its SNAT elements
 * are replaced to name `a`, or deleted while there is none (queued in
 * nftmap). */
void binding_set_public(int v6, const struct addr *a);

struct binding *binding_find(const struct addr *priv_ip, uint16_t priv_port);
struct binding *binding_find_public(uint16_t pub_port);

/* Find or create. `want_pub` != 0 asks for that public port (a flow the
 * kernel already NATs); it is taken if free. NULL when the table is full or
 * no public port is free (counted). A media binding needs priv_port+1 too. */
struct binding *binding_get(const struct addr *priv_ip, uint16_t priv_port, enum binding_kind kind,
			    uint16_t want_pub, uint64_t now);

/* Set or clear BF_VIA_PORT / BF_CONTACT_PORT (the fast path mirrors them). */
void binding_set_flag(struct binding *b, uint8_t flag, int on);
/* A dialog wants the messages the fast path would handle for this phone to
 * reach the daemon (hold 1), or no longer (hold 0): counted per dialog; the
 * binding is out of the fast path's maps while any dialog holds it. */
void binding_fastpath_hold(struct binding *b, int hold);

void binding_ref(struct binding *b);
void binding_unref(struct binding *b, uint64_t now);

/* Registration state of a signalling binding: expires_s == 0 removes it.
 * Keeps the binding and an inbound element (from `peer`, or from anyone when
 * `any` is set) alive until it expires. */
void binding_register(struct binding *b, const struct addr *peer, int any, uint32_t expires_s, uint64_t now);

/* Free idle bindings and end expired registrations. */
void binding_expire(uint64_t now);

/* State file lines ("B ..."), see state.h: signalling bindings and their
 * registrations; media bindings come back with their dialogs. */
void binding_save(FILE *f, uint64_t now);
/* Parse one "B" line and re-create the binding. 0 or -1 (bad line). */
int binding_restore_line(const char *line, uint64_t now);

/* Queue the SNAT element of every live binding again (our table was
 * re-created after a firewall reload; see nftmap_restore()). */
void binding_repush(void);

/* One line per binding for sipalgctl. */
void binding_dump(FILE *f, uint64_t now);
/* The next live binding from *cursor (start at 0), NULL at the end (sipalgctl --json). */
const struct binding *binding_next(uint32_t *cursor);

#endif
