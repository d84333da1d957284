/* osipdiff: the span scanner (src/sipmsg.c, src/sdp.c) against libosip2 on
 * one message. Test-only: the differential unit test, the differential fuzz
 * target and the timing program link it; the daemon never does (libosip2
 * allocates per message, see docs/performance.md).
 *
 * Both parsers read the same bytes. When both accept the message, the fields
 * the ALG acts on are compared as text: Call-ID, CSeq number and method, the
 * top Via's sent-by host, port and branch, every Contact URI's host and port,
 * Content-Length and the body length; when both accept the body as SDP, the
 * session c= and o= addresses and each m= line's port and c= address. Each
 * field that differs is one osipdiff_diff, named so that a list of
 * deliberate differences (tests/osip/deliberate.tsv) can match it. */
#ifndef SIPALGD_OSIPDIFF_H
#define SIPALGD_OSIPDIFF_H
#include <stddef.h>
#include <stdint.h>

#define OSIPDIFF_MAX 48

struct osipdiff_diff {
	char field[32];   /* "callid", "via.host", "contact.1.port", "sdp.m.0.c", ... */
	char ours[96];    /* the value as our scanner reads it ("-" = absent) */
	char osip[96];    /* the value as libosip2 reads it */
	const char *kind; /* "ours-absent", "osip-absent", "ours-junk", "osip-junk"
			   * (a byte no RFC 3261 production allows in the field:
			   * CTL, SP, non-ASCII), or "value": both read a clean
			   * value and the values differ */
};

struct osipdiff {
	int ours_rc;       /* sip_parse(): SIP_OK or enum sip_err */
	int osip_rc;       /* osip_message_parse(): 0 or an OSIP_ error */
	int sdp;           /* the body is SDP (by our Content-Type reading) */
	int sdp_ours_rc;   /* sdp_parse() */
	int sdp_osip_rc;   /* sdp_message_parse() */
	int compared;      /* both accepted: fields were compared */
	int sdp_compared;  /* both accepted the SDP too */
	int ndiff;
	struct osipdiff_diff d[OSIPDIFF_MAX];
};

/* Once per process (libosip2's parser_init). */
void osipdiff_init(void);

/* Compare both parsers on one message; fills *r. */
void osipdiff_run(const uint8_t *buf, size_t len, struct osipdiff *r);

/* The list of deliberate differences: lines "file<TAB>field<TAB>why",
 * '#' comments. file "*" is a class of difference the fuzz target
 * accepts on any input; field may end in '*' (a prefix) and may be followed by "=KIND"
 * (the difference must then be of that kind). Returns the number of entries or
 * -1 when the file cannot be read or a line is malformed (message on
 * stderr). */
int osipdiff_list_load(const char *path);

/* Is the difference `d` on input `file` on the list (an entry naming
 * exactly that file: the unit test passes the corpus path, so a class
 * entry "*" never hides a new difference there; the fuzz target passes
 * "*")? Marks the entry as used. */
int osipdiff_listed(const char *file, const struct osipdiff_diff *d);

/* Entries naming a file (not "*") that matched nothing since the load: a
 * stale list. Prints each on stderr; returns how many. */
int osipdiff_list_unused(void);

/* The timing program (tests/osip/osipbench.c): one message through our
 * scanner (sip_parse, and sdp_parse when the body is SDP: *sdp says so),
 * or through libosip2 (osip_message_parse, sdp_message_parse when `sdp`,
 * and the frees). 0 when accepted. */
int osipdiff_parse_ours(const uint8_t *buf, size_t len, int *sdp);
int osipdiff_parse_osip(const uint8_t *buf, size_t len, int sdp);
/* Count libosip2's mallocs and reallocs from now on; the count so far. */
void osipdiff_count_allocs(void);
unsigned long osipdiff_allocs(void);

#endif
