#include "sdp.h"

#include <string.h>

static int is_digit(int c) { return c >= '0' && c <= '9'; }

/* Split a line's value into space-separated fields. */
static int fields(const uint8_t *b, uint32_t p, uint32_t e, struct span *f, int max)
{
	int n = 0;

	while (p < e && n < max) {
		while (p < e && b[p] == ' ')
			p++;
		if (p >= e)
			break;
		uint32_t s = p;
		while (p < e && b[p] != ' ')
			p++;
		f[n++] = (struct span){ s, p - s };
	}
	return n;
}

/* "IN IP4|IP6 addr[/ttl[/n]]" -> address span and value. 1 an IP literal of
 * the type the line names, 0 another address type or a name (an FQDN is
 * legal, but not ours to map), -1 malformed. */
static int conn_addr(const uint8_t *b, struct span *f, int n, struct span *addr, struct addr *ip)
{
	if (n < 3 || !span_ieq(b, f[0], "IN"))
		return -1;
	int v6 = span_ieq(b, f[1], "IP6");
	if (!v6 && !span_ieq(b, f[1], "IP4"))
		return 0;
	struct span a = f[2];
	const uint8_t *sl = memchr(b + a.off, '/', a.len);
	if (sl)
		a.len = (uint32_t)(sl - (b + a.off));
	/* Bare only (RFC 4566 9: IP6-address has no brackets), and of the
	 * type the line says: "IN IP4 2001:db8::1" is not an address we
	 * would know how to write back. A v4-mapped IP6 address parses as
	 * IPv4 and stays with IP6: not ours either. */
	struct addr x;
	if (a.len == 0 || b[a.off] == '[' || !sip_addr_parse(b, a, &x) || addr_is_v4(&x) != !v6)
		return 0;
	*ip = x;
	*addr = a;
	return 1;
}

static int port_of(const uint8_t *b, struct span s, uint16_t *port)
{
	uint32_t v = 0;

	if (s.len == 0 || s.len > 5)
		return -1;
	for (uint32_t i = 0; i < s.len; i++) {
		if (!is_digit(b[s.off + i]))
			return -1;
		v = v * 10 + (b[s.off + i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

int sdp_parse(struct sdp *s, const uint8_t *b, struct span body)
{
	uint32_t p = body.off, e = body.off + body.len;
	struct sdp_media *cur = NULL;
	int in_media = 0;  /* past the first m=, even one beyond SDP_MAX_MEDIA */
	int c_seen = 0;    /* a c= at the current level (session or this m=) */
	struct span f[8];

	memset(s, 0, sizeof(*s));
	while (p < e) {
		const uint8_t *lf = memchr(b + p, '\n', e - p);
		uint32_t le = lf ? (uint32_t)(lf - b) : e;
		uint32_t next = lf ? le + 1 : e;
		if (le > p && b[le - 1] == '\r')
			le--;
		if (le == p) { /* tolerate blank lines (trailing CRLF) */
			p = next;
			continue;
		}
		if (le - p < 2 || b[p + 1] != '=')
			return SDP_E_SYNTAX;
		/* A CR inside a line is in no SDP field (RFC 4566 §9: text
		 * excludes CR and LF), and libosip2 ends the line there: an m=
		 * after it is a stream to such a stack and none to us. */
		if (memchr(b + p, '\r', le - p))
			return SDP_E_SYNTAX;
		uint8_t type = b[p];
		uint32_t v = p + 2;
		int n = fields(b, v, le, f, 8);
		int r;

		switch (type) {
		case 'o':
			if (n >= 6) {
				struct span a;
				struct addr ip = { { 0 } };
				r = conn_addr(b, &f[3], n - 3, &a, &ip);
				if (r == 1) {
					s->o_addr = a;
					s->o_ip = ip;
				} else {
					s->non_ip = 1;
				}
			}
			break;
		case 'c': {
			struct span a = { 0, 0 };
			struct addr ip = { { 0 } };
			r = conn_addr(b, f, n, &a, &ip);
			if (r < 0)
				return SDP_E_CONN;
			/* One address per level is all we record and rewrite; a
			 * second c= (RFC 4566 §5.7 allows it for multicast layers)
			 * would leave the first one as it came, and stacks
			 * disagree on which one counts (libosip2: the first, we
			 * used to take the last). Refused: the ALG scrubs. */
			if (c_seen)
				return SDP_E_CONN;
			c_seen = 1;
			if (r == 0)
				s->non_ip = 1;
			if (cur) {
				cur->c_addr = r == 1 ? a : (struct span){ 0, 0 };
				cur->c_ip = ip;
			} else if (in_media) {
				/* the c= of a stream beyond SDP_MAX_MEDIA: not the
				 * session's (it used to overwrite it; found by the
				 * libosip2 differential fuzz target) */
			} else {
				s->c_addr = r == 1 ? a : (struct span){ 0, 0 };
				s->c_ip = ip;
			}
			break;
		}
		case 'm':
			s->nmedia_total++;
			cur = NULL;
			in_media = 1;
			c_seen = 0;
			if (n < 3)
				return SDP_E_MEDIA;
			if (s->nmedia < SDP_MAX_MEDIA) {
				cur = &s->m[s->nmedia++];
				struct span ps = f[1];
				const uint8_t *sl = memchr(b + ps.off, '/', ps.len);
				if (sl)
					ps.len = (uint32_t)(sl - (b + ps.off));
				cur->port = ps;
				if (port_of(b, ps, &cur->port_num) < 0)
					return SDP_E_MEDIA;
			} else {
				/* Beyond what we track: keep scanning, the caller sees nmedia_total. */
				struct span ps = f[1];
				uint16_t dummy;
				const uint8_t *sl = memchr(b + ps.off, '/', ps.len);
				if (sl)
					ps.len = (uint32_t)(sl - (b + ps.off));
				if (port_of(b, ps, &dummy) < 0)
					return SDP_E_MEDIA;
			}
			break;
		case 'a':
			/* a=rtcp:port [IN IP4 addr] (RFC 3605) */
			if (cur && le - v > 5 && memcmp(b + v, "rtcp:", 5) == 0) {
				int k = fields(b, v + 5, le, f, 8);
				if (k >= 1 && port_of(b, f[0], &cur->rtcp_num) == 0) {
					cur->rtcp_port = f[0];
					struct span a;
					struct addr ip;
					if (k >= 4 && conn_addr(b, &f[1], k - 1, &a, &ip) == 1) {
						cur->rtcp_addr = a;
						cur->rtcp_ip = ip;
					}
				}
			}
			/* a=rtcp-mux, a property attribute: nothing after the name
			 * (RFC 5761 5.1.1); "a=rtcp-mux-only" and the like are not it */
			else if (cur && le - v == 8 && memcmp(b + v, "rtcp-mux", 8) == 0)
				cur->rtcp_mux = 1;
			break;
		default:
			break;
		}
		p = next;
	}
	for (int i = 0; i < s->nmedia; i++) {
		struct sdp_media *m = &s->m[i];
		m->ip = m->c_addr.len ? m->c_ip : s->c_ip;
		if (m->port_num && !m->c_addr.len && !s->c_addr.len && !s->non_ip)
			return SDP_E_NOCONN;
	}
	return SDP_OK;
}
