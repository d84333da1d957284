/* sipmsg: a one-pass span scanner for SIP messages (RFC 3261 §7, UDP framing
 * §18.3). It never copies or allocates: every field is an (offset, length)
 * span into the caller's datagram, so the rewriter can edit bytes in place and
 * leave everything else exactly as it arrived. It accepts what real stacks
 * send (LF-only line ends, folded headers, compact names, odd case) and
 * rejects what is ambiguous (bad or duplicate Content-Length, missing
 * Call-ID/CSeq/From/To/Via, unknown SIP version, a body shorter than
 * Content-Length). */
#ifndef SIPALGD_SIPMSG_H
#define SIPALGD_SIPMSG_H
#include <stdint.h>

#include "addr.h"

#define SIP_MAX_HDRS 256

struct span {
	uint32_t off;
	uint32_t len;
};

enum sip_hdr_id {
	H_OTHER, H_VIA, H_CONTACT, H_CLEN, H_CTYPE, H_CALLID, H_FROM, H_TO,
	H_CSEQ, H_EXPIRES, H_ROUTE, H_RROUTE,
};

enum sip_method {
	M_OTHER, M_INVITE, M_ACK, M_BYE, M_CANCEL, M_REGISTER, M_OPTIONS,
	M_UPDATE, M_PRACK, M_INFO, M_SUBSCRIBE, M_NOTIFY, M_MESSAGE, M_REFER,
};

enum sip_err {
	SIP_OK = 0,
	SIP_E_NOTSIP = -1,   /* no SIP start line at byte 0 */
	SIP_E_TRUNC = -2,    /* header section does not end, or body shorter than Content-Length */
	SIP_E_HDR = -3,      /* malformed header line or structure */
	SIP_E_TOOMANY = -4,  /* more than SIP_MAX_HDRS headers */
	SIP_E_CLEN = -5,     /* Content-Length not a number, duplicated or too large */
	SIP_E_MISSING = -6,  /* a header every request/response needs is missing */
	SIP_E_DUP = -7,      /* duplicate Call-ID or CSeq */
	SIP_E_VERSION = -8,  /* not SIP/2.0 */
	SIP_E_CSEQ = -9,     /* CSeq unparsable or method mismatch */
};

struct sip_hdr {
	struct span name;
	struct span value;  /* from the first non-blank byte to the last, folds included */
	uint8_t id;         /* enum sip_hdr_id */
	uint8_t compact;    /* the name was the one-letter form */
};

struct sip_msg {
	const uint8_t *buf;
	uint32_t len;            /* bytes scanned: headers + body (see trailing) */
	uint8_t is_request;
	uint8_t method;          /* enum sip_method of the request, or of CSeq for a response */
	uint16_t status;         /* responses */
	struct span method_s;    /* request method token */
	struct span ruri;        /* Request-URI */
	struct sip_hdr hdr[SIP_MAX_HDRS];
	int nhdr;
	int clen_idx;            /* index of Content-Length in hdr[], -1 if absent */
	int via_idx;             /* first Via header, -1 if none */
	int callid_idx, from_idx, to_idx, cseq_idx;
	uint32_t cseq;
	uint32_t body_off;
	uint32_t body_len;
	uint32_t trailing;       /* bytes after Content-Length's body (a second message?) */
};

/* Scan a datagram. Returns SIP_OK or a negative enum sip_err. `buf` must stay
 * valid while the spans are used. */
int sip_parse(struct sip_msg *m, const uint8_t *buf, uint32_t len);

/* Is this datagram a keep-alive (only CR, LF, NUL, SP: RFC 5626 §4.4.1, and the NUL phones send)? */
int sip_is_keepalive(const uint8_t *buf, uint32_t len);

const char *sip_strerror(int err);

/* Walk a comma-separated header value (Via, Contact). `pos` starts at 0; the
 * next element is returned in *elem (trimmed). Commas inside quotes and <>
 * do not split. Returns 1 while there is an element. */
int sip_list_next(const uint8_t *buf, struct span value, uint32_t *pos, struct span *elem);

/* A URI's host and port inside `s` (which holds a URI, or a name-addr /
 * addr-spec: the first sip:/sips: in it is used). port.len == 0 when the
 * port is absent; hostport spans host and ":port". Returns 0 or -1. */
struct sip_uri {
	struct span host;
	struct span port;
	struct span hostport;
	uint16_t port_num;  /* 0 when absent */
};
int sip_uri_find(const uint8_t *buf, struct span s, struct sip_uri *u);

/* One Via element: "SIP/2.0/UDP host[:port];params". */
struct sip_via {
	struct span host;
	struct span port;
	struct span hostport;
	uint16_t port_num;
	struct span params;     /* from the first ';' to the end of the element */
};
int sip_via_parse(const uint8_t *buf, struct span elem, struct sip_via *v);

/* Find `;name=value` (case-insensitive name) in a params span; the value span
 * (empty for a bare `;name`). Returns 1 if found. */
int sip_param_find(const uint8_t *buf, struct span params, const char *name, struct span *value);

/* The span is exactly one address literal: dotted IPv4, IPv6 bare or in
 * brackets (RFC 5118: a Via sent-by or URI host is bracketed, received= may
 * be either). Returns 1 and *a, else 0. ::ffff:a.b.c.d is the IPv4 address. */
int sip_addr_parse(const uint8_t *buf, struct span s, struct addr *a);

/* Case-insensitive compare of a span with a C string. */
int span_ieq(const uint8_t *buf, struct span s, const char *str);

/* Header value lookup: the value span of the first header `id`, or len 0. */
struct span sip_hdr_value(const struct sip_msg *m, enum sip_hdr_id id);

/* The tag parameter of From or To (len 0 when absent). */
struct span sip_tag(const struct sip_msg *m, int hdr_idx);

#endif
