/* sdp: span scanner for the SDP fields an ALG must edit (RFC 4566): the o=
 * origin address, every c= address (session level and per media), every m=
 * port, a=rtcp (RFC 3605) and a=rtcp-mux (RFC 5761). IN IP4 and IN IP6
 * literals are understood (each line has its own family: mixed SDP is one
 * m= line per family); names and other address types are reported so the
 * caller can refuse to open pinholes. */
#ifndef SIPALGD_SDP_H
#define SIPALGD_SDP_H
#include "sipmsg.h"

#define SDP_MAX_MEDIA 16

struct sdp_media {
	struct span port;       /* the m= port digits */
	uint16_t port_num;      /* 0 = stream disabled */
	struct span c_addr;     /* media-level c= address, len 0 if none */
	struct addr c_ip;       /* all-zero if none or not an IP literal */
	struct span rtcp_port;  /* a=rtcp: port, len 0 if none */
	uint16_t rtcp_num;
	struct span rtcp_addr;  /* a=rtcp: ... IN IP4|IP6 addr, len 0 if none */
	struct addr rtcp_ip;
	uint8_t rtcp_mux;       /* a=rtcp-mux (RFC 5761): RTCP offered on the RTP port */
	struct addr ip;         /* effective connection address (media or session level) */
};

struct sdp {
	struct span o_addr;     /* o= unicast-address, len 0 if not an IP literal */
	struct addr o_ip;
	struct span c_addr;     /* session-level c= address */
	struct addr c_ip;
	struct sdp_media m[SDP_MAX_MEDIA];
	int nmedia;             /* m= lines kept (<= SDP_MAX_MEDIA) */
	int nmedia_total;       /* m= lines seen */
	uint8_t non_ip;         /* some c=/o= held no IP literal (a name, another type) */
};

enum sdp_err {
	SDP_OK = 0,
	SDP_E_SYNTAX = -1,  /* a line that is not "x=..." */
	SDP_E_CONN = -2,    /* a c= line that cannot be parsed */
	SDP_E_MEDIA = -3,   /* an m= line that cannot be parsed, bad port */
	SDP_E_NOCONN = -4,  /* a media stream without a connection address */
};

/* Scan `body` (a span of buf). Returns SDP_OK or a negative enum sdp_err. */
int sdp_parse(struct sdp *s, const uint8_t *buf, struct span body);

#endif
