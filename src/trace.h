/* trace: `sipalgctl trace ADDRESS|CALL-ID [SECONDS]` logs every matching SIP
 * message in full, as it arrived and as it left, for a while. Bounded: at
 * most TRACE_PER_SEC messages a second reach the log (the rest are counted
 * and the count logged), and the trace switches itself off after its time
 * (default 60 s, at most 3600) or after TRACE_MAX messages. One trace at a
 * time; a new one replaces it. No allocation: the match is kept in place. */
#ifndef SIPALGD_TRACE_H
#define SIPALGD_TRACE_H
#include "addr.h"
#include <stdint.h>

#define TRACE_PER_SEC 20
#define TRACE_MAX 2000
#define TRACE_DEFAULT_S 60
#define TRACE_MAX_S 3600

/* `what` is an IPv4 address (either end of the datagram) or a Call-ID
 * prefix. Returns 0, or -1 for an empty or too long `what`. */
int trace_start(const char *what, uint32_t seconds, uint64_t now);
void trace_stop(uint64_t now, const char *why);
/* Is a trace running (cheap: the packet path asks this first)? Also
 * switches an expired trace off. */
int trace_active(uint64_t now);
/* Describe the running trace into buf ("" when none). */
void trace_describe(char *buf, unsigned len, uint64_t now);

/* Does this message match (either address, or the Call-ID prefix)? callid may be NULL. */
int trace_match(const struct addr *saddr, const struct addr *daddr, const uint8_t *callid,
		uint32_t callid_len);
/* Log one message: `before` as it arrived, `after` as it left (NULL when
 * unchanged), `verdict` in words. Rate-limited. */
void trace_log(uint64_t now, const uint8_t *before, uint32_t blen, const uint8_t *after, uint32_t alen,
	       const char *verdict);

#endif
