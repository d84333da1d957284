/* sipframe: split a SIP byte stream (TCP) into messages. Pure: no I/O, no
 * allocation; the caller owns the buffer and keeps one struct sipframe per
 * direction of a connection.
 *
 * RFC 3261 18.3: on a stream transport a message ends Content-Length octets
 * after the blank line that ends its headers, and Content-Length MUST be
 * present. RFC 5626 3.5.1 keep-alives (CRLFCRLF ping, CRLF pong) and the
 * CRLFs RFC 3261 7.5 lets precede a message are returned as keep-alive units
 * of one CRLF each, so they pass byte for byte in both directions.
 *
 * Policy for what cannot be framed (the connection is then closed by the
 * caller, and counted): no Content-Length, an unparsable or repeated and
 * differing one, headers or a whole message larger than `max`. Octets
 * that begin neither a CRLF nor a start line are not refused here: the
 * message scanner behind us judges the start line, as for UDP. */
#ifndef SIPALGD_SIPFRAME_H
#define SIPALGD_SIPFRAME_H
#include <stdint.h>

enum sipframe_rc {
	SIPFRAME_MORE = 0,      /* no whole unit yet: read more */
	SIPFRAME_MESSAGE = 1,   /* buf[0..*unit) is one SIP message */
	SIPFRAME_KEEPALIVE = 2, /* buf[0..*unit) is one CRLF */
	SIPFRAME_E_NOLEN = -1,  /* headers ended without Content-Length */
	SIPFRAME_E_BADLEN = -2, /* Content-Length unparsable or conflicting */
	SIPFRAME_E_TOOBIG = -3, /* headers or message longer than max */
};

/* Per-direction scan state: where the search for the end of the headers
 * resumes, so a message arriving one byte at a time costs O(n), not O(n^2). */
struct sipframe {
	uint32_t scanned;
	uint32_t hend;          /* end of the headers once found, else 0 */
	uint32_t need;          /* whole message length once known, else 0 */
};

void sipframe_reset(struct sipframe *f);

/* Look at the first unit in buf[0..len). On MESSAGE or KEEPALIVE the caller
 * consumes *unit bytes and calls sipframe_reset() before the next call (the
 * buffer start moved). `max` bounds a whole message, headers included. */
enum sipframe_rc sipframe_next(struct sipframe *f, const uint8_t *buf, uint32_t len,
			       uint32_t max, uint32_t *unit);

const char *sipframe_strerror(enum sipframe_rc rc);

#endif
