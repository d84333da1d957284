#include "sipmsg.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <string.h>

static int lc(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }
static int is_ws(int c) { return c == ' ' || c == '\t'; }
/* Inside a header value a fold leaves CR/LF between the words. */
static int is_lws(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
static int is_digit(int c) { return c >= '0' && c <= '9'; }

/* RFC 3261 token characters (header names, methods). */
static int is_token(int c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c))
		return 1;
	return c && strchr("-.!%*_+`'~", c) != NULL;
}

int span_ieq(const uint8_t *buf, struct span s, const char *str)
{
	size_t n = strlen(str);

	if (s.len != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (lc(buf[s.off + i]) != lc((unsigned char)str[i]))
			return 0;
	return 1;
}

const char *sip_strerror(int err)
{
	switch (err) {
	case SIP_OK: return "ok";
	case SIP_E_NOTSIP: return "not a SIP start line";
	case SIP_E_TRUNC: return "truncated message";
	case SIP_E_HDR: return "malformed header";
	case SIP_E_TOOMANY: return "too many headers";
	case SIP_E_CLEN: return "bad Content-Length";
	case SIP_E_MISSING: return "required header missing";
	case SIP_E_DUP: return "duplicate Call-ID or CSeq";
	case SIP_E_VERSION: return "unsupported SIP version";
	case SIP_E_CSEQ: return "bad CSeq";
	}
	return "unknown error";
}

int sip_is_keepalive(const uint8_t *buf, uint32_t len)
{
	if (len == 0)
		return 1;
	for (uint32_t i = 0; i < len; i++)
		if (buf[i] != '\r' && buf[i] != '\n' && buf[i] != 0 && buf[i] != ' ')
			return 0;
	return 1;
}

static const struct { const char *name; char compact; uint8_t id; } hdr_names[] = {
	{ "via", 'v', H_VIA }, { "contact", 'm', H_CONTACT },
	{ "content-length", 'l', H_CLEN }, { "content-type", 'c', H_CTYPE },
	{ "call-id", 'i', H_CALLID }, { "from", 'f', H_FROM }, { "to", 't', H_TO },
	{ "cseq", 0, H_CSEQ }, { "expires", 0, H_EXPIRES }, { "route", 0, H_ROUTE },
	{ "record-route", 0, H_RROUTE },
};

static void hdr_classify(const uint8_t *buf, struct sip_hdr *h)
{
	h->id = H_OTHER;
	h->compact = 0;
	if (h->name.len == 1) {
		int c = lc(buf[h->name.off]);
		for (size_t i = 0; i < sizeof(hdr_names) / sizeof(hdr_names[0]); i++)
			if (hdr_names[i].compact == c) {
				h->id = hdr_names[i].id;
				h->compact = 1;
				return;
			}
		return;
	}
	for (size_t i = 0; i < sizeof(hdr_names) / sizeof(hdr_names[0]); i++)
		if (span_ieq(buf, h->name, hdr_names[i].name)) {
			h->id = hdr_names[i].id;
			return;
		}
}

static const struct { const char *name; uint8_t id; } methods[] = {
	{ "INVITE", M_INVITE }, { "ACK", M_ACK }, { "BYE", M_BYE },
	{ "CANCEL", M_CANCEL }, { "REGISTER", M_REGISTER }, { "OPTIONS", M_OPTIONS },
	{ "UPDATE", M_UPDATE }, { "PRACK", M_PRACK }, { "INFO", M_INFO },
	{ "SUBSCRIBE", M_SUBSCRIBE }, { "NOTIFY", M_NOTIFY }, { "MESSAGE", M_MESSAGE },
	{ "REFER", M_REFER },
};

/* Methods are case-sensitive (RFC 3261 §7.1). */
static uint8_t method_id(const uint8_t *buf, struct span s)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (s.len == strlen(methods[i].name) &&
		    memcmp(buf + s.off, methods[i].name, s.len) == 0)
			return methods[i].id;
	return M_OTHER;
}

/* End of the line starting at p: returns the index of the first byte of the
 * terminator, sets *next to the byte after it. -1 when no terminator. Bare CR
 * is not a line end (RFC 3261 wants CRLF; LF alone is tolerated). */
static int64_t line_end(const uint8_t *b, uint32_t len, uint32_t p, uint32_t *next)
{
	const uint8_t *lf = memchr(b + p, '\n', len - p);

	if (!lf)
		return -1;
	uint32_t e = (uint32_t)(lf - b);
	*next = e + 1;
	if (e > p && b[e - 1] == '\r')
		e--;
	return e;
}

static int parse_start_line(struct sip_msg *m, uint32_t e)
{
	const uint8_t *b = m->buf;
	uint32_t p = 0;

	if (e >= 8 && memcmp(b, "SIP/", 4) == 0) {
		/* Status-Line: SIP-Version SP Status-Code SP Reason-Phrase */
		if (e < 12 || memcmp(b, "SIP/2.0 ", 8) != 0)
			return memcmp(b, "SIP/2.0", 7) == 0 ? SIP_E_NOTSIP : SIP_E_VERSION;
		p = 8;
		if (!is_digit(b[p]) || !is_digit(b[p + 1]) || !is_digit(b[p + 2]) ||
		    (p + 3 < e && b[p + 3] != ' '))
			return SIP_E_NOTSIP;
		m->status = (b[p] - '0') * 100 + (b[p + 1] - '0') * 10 + (b[p + 2] - '0');
		if (m->status < 100 || m->status > 699)
			return SIP_E_NOTSIP;
		m->is_request = 0;
		return SIP_OK;
	}
	/* Request-Line: Method SP Request-URI SP SIP-Version */
	while (p < e && is_token(b[p]))
		p++;
	if (p == 0 || p >= e || b[p] != ' ')
		return SIP_E_NOTSIP;
	m->method_s = (struct span){ 0, p };
	uint32_t u = ++p;
	while (p < e && b[p] != ' ')
		p++;
	if (p == u || p >= e)
		return SIP_E_NOTSIP;
	m->ruri = (struct span){ u, p - u };
	p++;
	if (e - p < 4 || memcmp(b + p, "SIP/", 4) != 0)
		return SIP_E_NOTSIP;
	if (e - p != 7 || memcmp(b + p, "SIP/2.0", 7) != 0)
		return SIP_E_VERSION;
	/* A URI needs a scheme: "INVITE foo SIP/2.0" is not a request we understand. */
	if (!memchr(b + u, ':', m->ruri.len))
		return SIP_E_NOTSIP;
	m->is_request = 1;
	m->method = method_id(b, m->method_s);
	return SIP_OK;
}

static int parse_uint(const uint8_t *b, struct span s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (s.len == 0 || s.len > 20)
		return -1;
	for (uint32_t i = 0; i < s.len; i++) {
		if (!is_digit(b[s.off + i]))
			return -1;
		v = v * 10 + (uint64_t)(b[s.off + i] - '0');
		if (v > max)
			return -1;
	}
	*out = v;
	return 0;
}

static int parse_cseq(struct sip_msg *m)
{
	const uint8_t *b = m->buf;
	struct span v = m->hdr[m->cseq_idx].value;
	uint32_t p = v.off, e = v.off + v.len;
	uint64_t n;

	while (p < e && is_digit(b[p]))
		p++;
	if (parse_uint(b, (struct span){ v.off, p - v.off }, 0xffffffffu, &n) < 0)
		return SIP_E_CSEQ;
	m->cseq = (uint32_t)n;
	/* LWS, folds included: "CSeq: 0009\r\n  INVITE" (RFC 4475 3.1.1.1) */
	while (p < e && is_lws(b[p]))
		p++;
	uint32_t ms = p;
	while (p < e && is_token(b[p]))
		p++;
	if (p == ms || p != e)
		return SIP_E_CSEQ;
	uint8_t id = method_id(b, (struct span){ ms, p - ms });
	if (m->is_request) {
		/* RFC 3261 §8.1.1.5: the CSeq method matches the request's. */
		if (p - ms != m->method_s.len || memcmp(b + ms, b + m->method_s.off, p - ms) != 0)
			return SIP_E_CSEQ;
	} else {
		m->method = id;
	}
	return SIP_OK;
}

static int sip_check_strict(const struct sip_msg *m);

int sip_parse(struct sip_msg *m, const uint8_t *buf, uint32_t len)
{
	uint32_t p, next;
	int64_t e;
	int rc;

	memset(m, 0, offsetof(struct sip_msg, hdr));
	m->buf = buf;
	m->len = len;
	m->nhdr = 0;
	m->trailing = 0; /* after hdr[]: not covered by the memset; a message without
			  * Content-Length must not inherit the last one's */
	m->clen_idx = m->via_idx = m->callid_idx = m->from_idx = m->to_idx = m->cseq_idx = -1;

	e = line_end(buf, len, 0, &next);
	if (e < 0)
	{
		/* No LF at all. A SIP start line ended by a bare CR is SIP with
		 * CR-only line ends (malformed); anything else is not SIP. */
		const uint8_t *cr = memchr(buf, '\r', len);
		if (cr && parse_start_line(m, (uint32_t)(cr - buf)) == SIP_OK)
			return SIP_E_HDR;
		return SIP_E_NOTSIP;
	}
	if ((rc = parse_start_line(m, (uint32_t)e)) != SIP_OK)
		return rc;
	if (memchr(buf, '\r', (size_t)e))
		return SIP_E_HDR;

	p = next;
	for (;;) {
		if (p >= len)
			return SIP_E_TRUNC;
		e = line_end(buf, len, p, &next);
		if (e < 0)
			return SIP_E_TRUNC;
		/* A CR that does not end a line is no SIP byte in the header
		 * section (RFC 3261 §25.1: not in TEXT-UTF8, qdtext nor
		 * quoted-pair), and stacks disagree on it: libosip2 ends the line
		 * there, so "X: a<CR>Contact: <sip:...>" is a Contact to it and a
		 * value of X to a scanner that waits for LF. A header the ALG
		 * does not see is one it cannot rewrite: refuse the message
		 * (found by the libosip2 differential fuzz target). */
		if (memchr(buf + p, '\r', (size_t)e - p))
			return SIP_E_HDR;
		if ((uint32_t)e == p) { /* empty line: end of headers */
			p = next;
			break;
		}
		if (is_ws(buf[p])) {
			/* Folded continuation (RFC 3261 §7.3.1): extend the previous value. */
			if (m->nhdr == 0)
				return SIP_E_HDR;
			struct sip_hdr *h = &m->hdr[m->nhdr - 1];
			uint32_t ve = (uint32_t)e;
			while (ve > p && is_ws(buf[ve - 1]))
				ve--;
			if (ve > p) {
				if (h->value.len == 0)
					h->value.off = p + 1;
				h->value.len = ve - h->value.off;
			}
			p = next;
			continue;
		}
		if (m->nhdr == SIP_MAX_HDRS)
			return SIP_E_TOOMANY;
		struct sip_hdr *h = &m->hdr[m->nhdr];
		uint32_t q = p;
		while (q < (uint32_t)e && is_token(buf[q]))
			q++;
		if (q == p)
			return SIP_E_HDR;
		h->name = (struct span){ p, q - p };
		while (q < (uint32_t)e && is_ws(buf[q]))
			q++;
		if (q >= (uint32_t)e || buf[q] != ':')
			return SIP_E_HDR;
		q++;
		while (q < (uint32_t)e && is_ws(buf[q]))
			q++;
		uint32_t ve = (uint32_t)e;
		while (ve > q && is_ws(buf[ve - 1]))
			ve--;
		h->value = (struct span){ q, ve - q };
		hdr_classify(buf, h);
		int idx = m->nhdr++;
		switch (h->id) {
		case H_VIA:
			if (m->via_idx < 0)
				m->via_idx = idx;
			break;
		case H_CLEN:
			if (m->clen_idx >= 0)
				return SIP_E_CLEN;
			m->clen_idx = idx;
			break;
		case H_CALLID:
			if (m->callid_idx >= 0)
				return SIP_E_DUP;
			m->callid_idx = idx;
			break;
		case H_CSEQ:
			if (m->cseq_idx >= 0)
				return SIP_E_DUP;
			m->cseq_idx = idx;
			break;
		case H_FROM:
			if (m->from_idx >= 0)
				return SIP_E_DUP;
			m->from_idx = idx;
			break;
		case H_TO:
			if (m->to_idx >= 0)
				return SIP_E_DUP;
			m->to_idx = idx;
			break;
		}
		p = next;
	}

	/* The header section has ended: fold-only values may be empty. */
	for (int i = 0; i < m->nhdr; i++)
		if (m->hdr[i].value.len == 0 && m->hdr[i].id != H_OTHER &&
		    m->hdr[i].id != H_CTYPE && m->hdr[i].id != H_CLEN)
			return SIP_E_HDR;

	m->body_off = p;
	m->body_len = len - p;
	if (m->clen_idx >= 0) {
		uint64_t cl;
		if (parse_uint(buf, m->hdr[m->clen_idx].value, 0xffffffffu, &cl) < 0)
			return SIP_E_CLEN;
		if (cl > m->body_len)
			return SIP_E_TRUNC;
		m->trailing = m->body_len - (uint32_t)cl;
		m->body_len = (uint32_t)cl;
	}
	if (m->callid_idx < 0 || m->cseq_idx < 0 || m->from_idx < 0 ||
	    m->to_idx < 0 || m->via_idx < 0)
		return SIP_E_MISSING;
	if (m->hdr[m->callid_idx].value.len == 0)
		return SIP_E_MISSING;
	if ((rc = parse_cseq(m)) != SIP_OK)
		return rc;
	return sip_check_strict(m);
}

struct span sip_hdr_value(const struct sip_msg *m, enum sip_hdr_id id)
{
	for (int i = 0; i < m->nhdr; i++)
		if (m->hdr[i].id == id)
			return m->hdr[i].value;
	return (struct span){ 0, 0 };
}

int sip_list_next(const uint8_t *b, struct span v, uint32_t *pos, struct span *elem)
{
	uint32_t p = v.off + *pos, e = v.off + v.len;
	int inq = 0, inangle = 0;

	while (p < e && (is_ws(b[p]) || b[p] == ',' || b[p] == '\r' || b[p] == '\n'))
		p++;
	if (p >= e)
		return 0;
	uint32_t s = p;
	for (; p < e; p++) {
		uint8_t c = b[p];
		if (inq) {
			if (c == '\\' && p + 1 < e)
				p++;
			else if (c == '"')
				inq = 0;
		} else if (c == '"') {
			inq = 1;
		} else if (c == '<') {
			inangle = 1;
		} else if (c == '>') {
			inangle = 0;
		} else if (c == ',' && !inangle) {
			break;
		}
	}
	uint32_t t = p;
	while (t > s && (is_ws(b[t - 1]) || b[t - 1] == '\r' || b[t - 1] == '\n'))
		t--;
	*elem = (struct span){ s, t - s };
	*pos = p - v.off;
	return 1;
}

static int parse_port(const uint8_t *b, struct span s, uint16_t *port)
{
	uint64_t v;

	if (parse_uint(b, s, 65535, &v) < 0 || v == 0)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* host [":" port] starting at p, stopping at any of `stops` or LWS. */
static int parse_hostport(const uint8_t *b, uint32_t p, uint32_t e, const char *stops,
			  struct span *host, struct span *port, struct span *hp, uint16_t *pn)
{
	uint32_t s = p;

	if (p < e && b[p] == '[') { /* IPv6 reference: must be one (RFC 5118 3.3) */
		char v6[48];
		struct in6_addr a6;
		while (p < e && b[p] != ']')
			p++;
		if (p >= e || p - s - 1 >= sizeof(v6))
			return -1;
		memcpy(v6, b + s + 1, p - s - 1);
		v6[p - s - 1] = 0;
		if (inet_pton(AF_INET6, v6, &a6) != 1)
			return -1;
		p++;
	} else {
		/* a fold's CR/LF ends the host too ("10.0.0.1\n ;branch=..."
		 * read as host "10.0.0.1\n" before) */
		while (p < e && b[p] != ':' && !is_lws(b[p]) && !strchr(stops, b[p])) {
			/* hostname / IPv4address (RFC 3261 §25.1): letters, digits,
			 * '-', '.'; '_' too, as real names carry it. Anything else
			 * is no host: "spindle.example.co<m" opened a '<' that
			 * sip_list_next then kept open over the next Via's ','
			 * (libosip2 differential fuzz target). */
			if (!is_digit(b[p]) && !((b[p] | 0x20) >= 'a' && (b[p] | 0x20) <= 'z') &&
			    b[p] != '-' && b[p] != '.' && b[p] != '_')
				return -1;
			p++;
		}
	}
	if (p == s)
		return -1;
	*host = (struct span){ s, p - s };
	*port = (struct span){ p, 0 };
	*pn = 0;
	if (p < e && b[p] == ':') {
		uint32_t ps = ++p;
		while (p < e && is_digit(b[p]))
			p++;
		*port = (struct span){ ps, p - ps };
		if (parse_port(b, *port, pn) < 0)
			return -1;
	}
	/* hostport must end where the caller's grammar says it does: at the
	 * end, LWS or a stop byte. "1.2.3.4:5060sip:x" is not host 1.2.3.4 port
	 * 5060 followed by junk; accepting it let the rewriter replace the
	 * hostport and glue the junk onto the new host (fuzz find
	 * alg-ruri-rewritten-malformed). The scanner and the rewriter both call
	 * here, so they agree on what the host and port are. */
	if (p < e && !is_lws(b[p]) && !strchr(stops, b[p]))
		return -1;
	*hp = (struct span){ s, p - s };
	return 0;
}

int sip_uri_find(const uint8_t *b, struct span s, struct sip_uri *u)
{
	uint32_t p = s.off, e = s.off + s.len;
	int inq = 0, found = 0, inangle = 0;

	/* Skip a quoted display name: it may contain "sip:". */
	for (; p + 4 <= e && !found; p++) {
		if (b[p] == '"') {
			inq = !inq;
			continue;
		}
		if (inq) {
			if (b[p] == '\\')
				p++;
			continue;
		}
		if (b[p] == '<')
			inangle = 1;
		if (lc(b[p]) == 's' && lc(b[p + 1]) == 'i' && lc(b[p + 2]) == 'p') {
			if (b[p + 3] == ':') {
				p += 3;
				found = 1;
			} else if (p + 5 <= e && lc(b[p + 3]) == 's' && b[p + 4] == ':') {
				p += 4;
				found = 1;
			}
		}
	}
	if (!found)
		return -1;
	/* userinfo ends at the '@' before the first of ";?>" or LWS.
	 * Inside <...> the URI ends only at '>': ';' and '?' are
	 * user-unreserved (RFC 3261 §25.1), so "<sip:al?ce@192.168.1.10>" and
	 * "<sip:+1;npdi@192.168.1.10>" are users at 192.168.1.10 (no '@' can
	 * come later: params and headers have none). An addr-spec outside
	 * <...> cannot hold ';' or '?' (§20), so there they end it. Found by
	 * the libosip2 differential fuzz target: we read host "al" and left
	 * the private address in the Contact. */
	uint32_t q = p, at = 0;
	for (; q < e && b[q] != '>' && !is_ws(b[q]) &&
	       (inangle || !strchr(";?,", b[q])); q++)
		if (b[q] == '@') {
			/* user and password hold no '@' (§25.1: it is escaped):
			 * "sip:a@b@c" has no one host (libosip2 reads "b@c") */
			if (at)
				return -1;
			at = q + 1;
		}
	/* no LWS between LAQUOT and RAQUOT: "<sip:al?x y@host>" is no URI */
	if (inangle && q < e && is_lws(b[q]))
		return -1;
	if (at)
		p = at;
	/* inside <...> a ',' ends no hostport (libosip2 agrees), and LWS
	 * none either; outside, a '>' ends none (there was no '<'): "<sip:x SIP/2r@host>" is no URI (RFC 3261 §25.1: no
	 * LWS between LAQUOT and RAQUOT); we used to read host "x". */
	if (parse_hostport(b, p, e, inangle ? ";?>" : ";?,", &u->host, &u->port, &u->hostport,
			   &u->port_num) < 0)
		return -1;
	q = u->hostport.off + u->hostport.len;
	if (inangle && q < e && !strchr(";?>", b[q]))
		return -1;
	return 0;
}

int sip_via_parse(const uint8_t *b, struct span el, struct sip_via *v)
{
	uint32_t p = el.off, e = el.off + el.len;
	int slashes = 0;

	/* sent-protocol: name LWS? "/" LWS? version LWS? "/" LWS? transport */
	while (p < e && slashes < 2) {
		if (b[p] == '/')
			slashes++;
		p++;
	}
	if (slashes < 2)
		return -1;
	while (p < e && is_lws(b[p]))
		p++;
	while (p < e && is_token(b[p]))
		p++;
	if (p >= e || !is_lws(b[p]))
		return -1;
	while (p < e && is_lws(b[p]))
		p++;
	if (parse_hostport(b, p, e, ";(", &v->host, &v->port, &v->hostport, &v->port_num) < 0)
		return -1;
	p = v->hostport.off + v->hostport.len;
	while (p < e && is_lws(b[p]))
		p++;
	v->params = (struct span){ p, e - p };
	if (p < e && b[p] != ';' && b[p] != '(')
		return -1;
	return 0;
}

int sip_param_find(const uint8_t *b, struct span ps, const char *name, struct span *val)
{
	uint32_t p = ps.off, e = ps.off + ps.len;
	size_t n = strlen(name);

	while (p < e) {
		if (b[p] != ';') {
			p++;
			continue;
		}
		p++;
		while (p < e && is_lws(b[p]))
			p++;
		uint32_t ns = p;
		while (p < e && is_token(b[p]))
			p++;
		struct span nm = { ns, p - ns };
		while (p < e && is_lws(b[p]))
			p++;
		/* generic-param = token [EQUAL gen-value] (RFC 3261 §25.1): a
		 * name followed by anything else is not that name. We used to
		 * take ";branch/UDP x;branch=z9hG4bK1" as an empty branch,
		 * libosip2 the second one (libosip2 differential fuzz target). */
		if (p < e && b[p] != '=' && b[p] != ';' && b[p] != ',')
			continue;
		uint32_t vs = p, ve = p;
		if (p < e && b[p] == '=') {
			p++;
			while (p < e && is_lws(b[p]))
				p++;
			vs = p;
			if (p < e && b[p] == '"') {
				p++;
				while (p < e && b[p] != '"')
					p++;
				if (p < e)
					p++;
			} else {
				while (p < e && b[p] != ';' && b[p] != ',' && b[p] != '>' && !is_lws(b[p]))
					p++;
			}
			ve = p;
		}
		if (nm.len == n && span_ieq(b, nm, name)) {
			*val = (struct span){ vs, ve - vs };
			return 1;
		}
	}
	return 0;
}

int sip_addr_parse(const uint8_t *b, struct span s, struct addr *a)
{
	return addr_parse(b + s.off, s.len, a);
}

struct span sip_tag(const struct sip_msg *m, int idx)
{
	struct span v, none = { 0, 0 };

	if (idx < 0)
		return none;
	v = m->hdr[idx].value;
	/* Header params come after the URI: after '>' for a name-addr. */
	const uint8_t *gt = memchr(m->buf + v.off, '>', v.len);
	if (gt) {
		uint32_t o = (uint32_t)(gt - m->buf);
		v.len -= o - v.off;
		v.off = o;
	}
	struct span t;
	if (sip_param_find(m->buf, v, "tag", &t))
		return t;
	return none;
}

/* Quotes must pair up (RFC 4475 3.1.2.6: an unterminated display name). */
static int quotes_balanced(const uint8_t *b, struct span v)
{
	int inq = 0;

	for (uint32_t p = v.off; p < v.off + v.len; p++) {
		if (inq && b[p] == '\\')
			p++;
		else if (b[p] == '"')
			inq = !inq;
	}
	return !inq;
}

/* ";;" or ";," or a trailing ";": an empty parameter (RFC 4475 3.1.2.5). */
static int params_ok(const uint8_t *b, struct span v)
{
	int inq = 0, empty = 0;

	for (uint32_t p = v.off; p < v.off + v.len; p++) {
		if (inq) {
			if (b[p] == '\\')
				p++;
			else if (b[p] == '"')
				inq = 0;
			continue;
		}
		if (b[p] == '"')
			inq = 1;
		else if (b[p] == ';') {
			if (empty)
				return 0;
			empty = 1;
		} else if (b[p] == ',') {
			if (empty)
				return 0;
		} else if (!is_lws(b[p]))
			empty = 0;
	}
	return !empty;
}

/* What the ALG needs to trust before a message may create state: a
 * Request-URI that is a URI (not "<sip:...>", no escaped headers, a real
 * host), balanced quotes in the address headers, and Via/Contact lists
 * whose elements and parameters are all there. */
static int sip_check_strict(const struct sip_msg *m)
{
	const uint8_t *b = m->buf;

	if (m->is_request) {
		struct span r = m->ruri;
		if (b[r.off] == '<' || memchr(b + r.off, '?', r.len))
			return SIP_E_HDR;
		if (r.len > 4 && (lc(b[r.off]) == 's' && lc(b[r.off + 1]) == 'i' && lc(b[r.off + 2]) == 'p')) {
			struct sip_uri u;
			if (sip_uri_find(b, r, &u) < 0)
				return SIP_E_HDR;
		}
	}
	for (int i = 0; i < m->nhdr; i++) {
		const struct sip_hdr *h = &m->hdr[i];
		struct span el;
		uint32_t pos = 0;
		switch (h->id) {
		case H_FROM:
		case H_TO:
			if (!quotes_balanced(b, h->value))
				return SIP_E_HDR;
			break;
		case H_CONTACT:
			if (!quotes_balanced(b, h->value) || !params_ok(b, h->value))
				return SIP_E_HDR;
			break;
		case H_VIA:
			if (!params_ok(b, h->value))
				return SIP_E_HDR;
			while (sip_list_next(b, h->value, &pos, &el)) {
				struct sip_via v;
				if (sip_via_parse(b, el, &v) < 0)
					return SIP_E_HDR;
			}
			break;
		default:
			break;
		}
	}
	return SIP_OK;
}
