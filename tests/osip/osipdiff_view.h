/* The fields both parsers are asked for, as text, so that the side that
 * includes libosip2 (osipdiff_osip.c) and the side that includes our
 * scanner (osipdiff.c) never share a translation unit: libosip2's headers
 * define SIP_OK and struct sdp_media too. NULL = absent. */
#ifndef SIPALGD_OSIPDIFF_VIEW_H
#define SIPALGD_OSIPDIFF_VIEW_H
#include <stddef.h>
#include <stdint.h>

#define OV_CONTACTS 64
#define OV_MEDIA 16

struct osipdiff_view {
	int rc;                      /* 0 = the message was accepted */
	const char *callid, *cseq_num, *cseq_method;
	int via;                     /* a top Via with a sent-by was found */
	const char *via_host, *via_port, *via_branch;
	int ncontact;                /* Contact elements (all headers, in order) */
	const char *contact_host[OV_CONTACTS], *contact_port[OV_CONTACTS];
	uint8_t contact_addrspec_delim[OV_CONTACTS];  /* ours: "sip:a;b@h" without <> */
	int contact_odd;             /* ours: a Contact value no URI reading can agree on */
	const char *clen;            /* Content-Length as written */
	long body_len;               /* -1: not comparable (several MIME parts) */
	int sdp_rc;                  /* 0 = the body was accepted as SDP */
	const char *sdp_o, *sdp_c;   /* IN IP4 literal addresses only */
	int nmedia;
	const char *m_port[OV_MEDIA], *m_c[OV_MEDIA];
	char arena[140000];
	size_t used;
};

/* A copy of n bytes into the view's arena (NULL when it does not fit, which
 * the caller sees as a difference, never as silence). */
const char *ov_keep(struct osipdiff_view *v, const char *s, size_t n);

/* libosip2's reading. `sdp`: also parse the body as SDP. */
void osipdiff_osip_view(const uint8_t *buf, size_t len, int sdp, struct osipdiff_view *v);
void osipdiff_osip_init(void);
int osipdiff_osip_parse_only(const uint8_t *buf, size_t len, int sdp);
void osipdiff_osip_count_allocs(void);
unsigned long osipdiff_osip_allocs(void);

/* Is this IPv4 text a dotted quad as our scanner reads one? */
int osipdiff_is_ip4(const char *s);

#endif
