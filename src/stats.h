/* stats: every number that matters is a counter here; sipalgctl shows them.
 * Counters are plain uint64_t in one array: the daemon is single-threaded. */
#ifndef SIPALGD_STATS_H
#define SIPALGD_STATS_H
#include <stdint.h>
#include <stdio.h>

#define STATS_LIST(X) \
	X(pkts_in)            /* datagrams received from the queue */ \
	X(pkts_out_lan)       /* LAN -> WAN SIP datagrams handled */ \
	X(pkts_in_wan)        /* WAN -> LAN SIP datagrams handled */ \
	X(pkts_rewritten)     /* datagrams whose bytes were changed */ \
	X(pkts_unchanged)     /* accepted byte for byte */ \
	X(pkts_dropped)       /* verdict drop, any reason */ \
	X(keepalives)         /* CRLF / NUL keep-alives passed */ \
	X(not_sip)            /* UDP on a SIP port that is not a SIP message */ \
	X(parse_errors)       /* malformed SIP: outcome by policy */ \
	X(trailing_dropped)   /* octets after Content-Length cut from the datagram */ \
	X(sdp_errors)         /* malformed SDP */ \
	X(drop_malformed_out) /* malformed LAN message dropped: would leak */ \
	X(drop_limit)         /* dropped because a configured bound was hit */ \
	X(drop_rate)          /* dropped by the per-source rate limit */ \
	X(drop_no_binding)    /* no public port could be allocated */ \
	X(requests)           \
	X(responses)          \
	X(registers)          \
	X(registrations)      /* live registrations (gauge) */ \
	X(bindings)           /* live NAT bindings (gauge) */ \
	X(bindings_created)   \
	X(bindings_adopted)   /* taken over from an existing conntrack NAT */ \
	X(dialogs)            /* live dialogs (gauge) */ \
	X(dialogs_created)    \
	X(dialogs_closed)     \
	X(dialogs_expired)    \
	X(pinholes)           /* live media pinholes, RTP+RTCP pairs (gauge) */ \
	X(pinholes_opened)    \
	X(pinholes_closed)    \
	X(pinholes_refused)   /* SDP asked for something the rules forbid */ \
	X(nft_batches)        \
	X(nft_elements)       \
	X(nft_errors)         \
	X(ct_lookups)         \
	X(ct_deletes)         \
	X(ct_errors)          \
	X(verdict_batches)    \
	X(verdict_errors)     \
	X(queue_enobufs)      \
	X(holdoffs)           \
	X(busy_rests)         \
	X(rules_restored)     /* our table or diversion put back after a firewall reload */ \
	X(rules_repair_failed) /* ... and could not be (retried every second) */ \
	X(rules_missing)      /* 1 while something we need is missing (gauge) */ \
	X(rules_repair_ms)    /* the last repair: first event to rules back, ms */ \
	X(kernel_helper)      /* 1 when the kernel SIP helper was seen on our traffic */

enum stat_id {
#define STAT_ENUM(n) ST_##n,
	STATS_LIST(STAT_ENUM)
#undef STAT_ENUM
	ST__COUNT
};

extern uint64_t stats[ST__COUNT];

#define STAT_INC(n) (stats[ST_##n]++)
#define STAT_DEC(n) (stats[ST_##n]--)
#define STAT_ADD(n, v) (stats[ST_##n] += (v))

const char *stats_name(enum stat_id id);
/* "name value\n" per counter */
void stats_dump(FILE *f);

#endif
