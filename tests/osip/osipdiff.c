/* osipdiff: our span scanner against libosip2, field by field (see
 * osipdiff.h). Each parser's reading is put into the same view of text
 * fields (osipdiff_view.h) and the views are compared, with two
 * normalisations that are representation, not reading: an IPv6
 * reference's brackets (libosip2 keeps the address without them), and an
 * SDP address is compared only as an IN IP4 or IN IP6 literal (sdp.h: our
 * scanner reports nothing else). */
#include "osipdiff.h"
#include "osipdiff_view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdp.h"
#include "sipmsg.h"

static struct sip_msg msg;  /* large (SIP_MAX_HDRS): not on the stack */
static struct sdp sdpv;
static struct osipdiff_view ov, xv;

void osipdiff_init(void)
{
	osipdiff_osip_init();
}

const char *ov_keep(struct osipdiff_view *v, const char *s, size_t n)
{
	if (v->used + n + 1 > sizeof(v->arena))
		return NULL;
	char *d = v->arena + v->used;
	memcpy(d, s, n);
	d[n] = 0;
	v->used += n + 1;
	return d;
}

int osipdiff_is_ip4(const char *s)
{
	struct addr a;

	/* a dotted quad: an IPv4 literal that is not written as IPv6 */
	return sip_addr_parse((const uint8_t *)s, (struct span){ 0, (uint32_t)strlen(s) }, &a) &&
	       addr_is_v4(&a) && !strchr(s, ':');
}

static const char *sp(struct osipdiff_view *v, struct span s)
{
	return ov_keep(v, (const char *)msg.buf + s.off, s.len);
}

static const char *num(struct osipdiff_view *v, unsigned long n)
{
	char t[24];
	int k = snprintf(t, sizeof(t), "%lu", n);
	return ov_keep(v, t, (size_t)k);
}

/* libosip2 keeps an IPv6 reference's address without "[...]". */
static struct span unbracket(struct span h)
{
	if (h.len >= 2 && msg.buf[h.off] == '[' && msg.buf[h.off + h.len - 1] == ']')
		return (struct span){ h.off + 1, h.len - 2 };
	return h;
}

/* The CSeq method as written: the token after the number and LWS (the
 * scanner checked it is exactly that). */
static struct span cseq_method(void)
{
	struct span v = msg.hdr[msg.cseq_idx].value;
	uint32_t p = v.off, e = v.off + v.len;

	while (p < e && msg.buf[p] >= '0' && msg.buf[p] <= '9')
		p++;
	while (p < e && strchr(" \t\r\n", msg.buf[p]))
		p++;
	return (struct span){ p, e - p };
}

/* The same test as the ALG's (src/alg.c is_sdp_body). */
static int is_sdp(void)
{
	struct span ct = sip_hdr_value(&msg, H_CTYPE);

	if (msg.body_len == 0)
		return 0;
	if (ct.len == 0)
		return msg.body_len >= 3 && memcmp(msg.buf + msg.body_off, "v=0", 3) == 0;
	if (ct.len < 15)
		return 0;
	return span_ieq(msg.buf, (struct span){ ct.off, 15 }, "application/sdp") &&
	       (ct.len == 15 || msg.buf[ct.off + 15] == ';' || msg.buf[ct.off + 15] == ' ');
}

/* Does the body have an empty line with a non-empty one after it? */
static int sdp_blank_line(const uint8_t *b, uint32_t n)
{
	int blank = 0;

	for (uint32_t p = 0; p < n;) {
		const uint8_t *lf = memchr(b + p, '\n', n - p);
		uint32_t e = lf ? (uint32_t)(lf - b) : n;
		uint32_t le = (e > p && b[e - 1] == '\r') ? e - 1 : e;
		if (le == p)
			blank = 1;
		else if (blank)
			return 1;
		p = e + 1;
	}
	return 0;
}

/* A c=, o= or m= line with two SPs in a row (RFC 4566 §5: fields are
 * separated by one): libosip2 keeps no value there, we read over them. */
static int sdp_double_space(const uint8_t *b, uint32_t n)
{
	for (uint32_t p = 0; p < n;) {
		const uint8_t *lf = memchr(b + p, '\n', n - p);
		uint32_t e = lf ? (uint32_t)(lf - b) : n;
		if (e - p >= 2 && (b[p] == 'c' || b[p] == 'o' || b[p] == 'm') && b[p + 1] == '=')
			for (uint32_t i = p + 2; i + 1 < e; i++)
				if (b[i] == ' ' && b[i + 1] == ' ')
					return 1;
		p = e + 1;
	}
	return 0;
}

/* A Contact element not in <...> with a ';' or '?' before an '@'. */
static int addrspec_delim(const uint8_t *b, struct span el)
{
	const uint8_t *lt = memchr(b + el.off, '<', el.len);
	const uint8_t *at = memchr(b + el.off, '@', el.len);

	if (lt || !at)
		return 0;
	for (const uint8_t *p = b + el.off; p < at; p++)
		if (*p == ';' || *p == '?')
			return 1;
	return 0;
}

/* A Contact value that is not a list of "[name] <URI>" or "URI" elements
 * as RFC 3261 §20.10 writes them: a '<' or '>' without its pair (where one
 * reader splits at a ',' the other keeps inside the brackets), or an
 * element whose URI does not start at its beginning (or right after its
 * '<'): we take the first sip:/sips: anywhere ("sipa:sip:o" is host o to
 * us), libosip2 reads its own scheme from the first ':'; or LWS inside a
 * URI, where we end it and libosip2 reads on. */
static int contact_odd(const uint8_t *b, struct span v)
{
	int open = 0;

	for (uint32_t k = 0; k < v.len; k++) {
		if (b[v.off + k] == '<' && open++)
			return 1;
		if (b[v.off + k] == '>' && !open--)
			return 1;
	}
	return open != 0;
}

static int contact_uri_inside(const uint8_t *b, struct span el)
{
	const uint8_t *p = b + el.off, *e = p + el.len;
	const uint8_t *lt = memchr(p, '<', el.len);

	if (lt)
		p = lt + 1;
	/* before a '<' only a display-name: a quoted string, or tokens
	 * (RFC 3261 §25.1); "si:b<..." is no name-addr to either reader */
	const uint8_t *q = b + el.off;
	while (lt && q < lt && (*q == ' ' || *q == '\t'))
		q++;
	if (lt && q < lt && *q != '"')
		for (; q < lt; q++)
			if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
			      (*q >= '0' && *q <= '9') || strchr(" \t-.!%*_+`'~", *q)))
				return 1;
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	if (!(e - p >= 4 && strncasecmp((const char *)p, "sip:", 4) == 0) &&
	    !(e - p >= 5 && strncasecmp((const char *)p, "sips:", 5) == 0))
		return 1;
	/* LWS inside the URI ("sip:m<TAB>@h"): a URI has none; we end it
	 * at the LWS (host m), libosip2 reads on to the '@' */
	const uint8_t *end = lt ? memchr(p, '>', (size_t)(e - p)) : NULL;
	if (!end)
		end = e;
	int lws = 0;
	for (; p < end && (lt || *p != ';'); p++) {
		if (*p == ' ' || *p == '\t')
			lws = 1;
		else if (lws)
			return 1;
	}
	return 0;
}

/* Our reading into the view; returns whether the body is SDP. */
static int our_view(struct osipdiff_view *v)
{
	const uint8_t *b = msg.buf;

	v->callid = sp(v, msg.hdr[msg.callid_idx].value);
	v->cseq_num = num(v, msg.cseq);
	v->cseq_method = sp(v, cseq_method());

	struct sip_via via;
	struct span el;
	uint32_t pos = 0;
	if (sip_list_next(b, msg.hdr[msg.via_idx].value, &pos, &el) && sip_via_parse(b, el, &via) == 0) {
		struct span br;
		v->via = 1;
		v->via_host = sp(v, unbracket(via.host));
		v->via_port = via.port.len ? sp(v, via.port) : NULL;
		if (sip_param_find(b, via.params, "branch", &br))
			v->via_branch = sp(v, br);
	}
	for (int i = 0; i < msg.nhdr; i++) {
		if (msg.hdr[i].id != H_CONTACT)
			continue;
		pos = 0;
		if (contact_odd(b, msg.hdr[i].value))
			v->contact_odd = 1;
		while (sip_list_next(b, msg.hdr[i].value, &pos, &el)) {
			struct sip_uri u;
			int k = v->ncontact++;
			if (k < OV_CONTACTS)
				v->contact_addrspec_delim[k] = addrspec_delim(b, el);
			if (contact_uri_inside(b, el))
				v->contact_odd = 1;
			if (k < OV_CONTACTS && sip_uri_find(b, el, &u) == 0) {
				v->contact_host[k] = sp(v, unbracket(u.host));
				v->contact_port[k] = u.port.len ? sp(v, u.port) : NULL;
			}
		}
	}
	if (msg.clen_idx >= 0)
		v->clen = sp(v, msg.hdr[msg.clen_idx].value);
	v->body_len = msg.body_len;

	if (!is_sdp())
		return 0;
	v->sdp_rc = sdp_parse(&sdpv, b, (struct span){ msg.body_off, msg.body_len });
	if (v->sdp_rc == SDP_OK) {
		v->sdp_o = sdpv.o_addr.len ? sp(v, sdpv.o_addr) : NULL;
		v->sdp_c = sdpv.c_addr.len ? sp(v, sdpv.c_addr) : NULL;
		v->nmedia = sdpv.nmedia_total;
		for (int i = 0; i < sdpv.nmedia && i < OV_MEDIA; i++) {
			v->m_port[i] = sp(v, sdpv.m[i].port);
			v->m_c[i] = sdpv.m[i].c_addr.len ? sp(v, sdpv.m[i].c_addr) : NULL;
		}
	}
	return 1;
}

static void put(char *dst, const char *s)
{
	size_t k = 0;

	for (; s[k] && k + 1 < sizeof(((struct osipdiff_diff *)0)->ours); k++) {
		unsigned char c = (unsigned char)s[k];
		dst[k] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	dst[k] = 0;
}

/* A byte the field's RFC 3261 §25.1 production does not allow: none of
 * the fields may hold a CTL, SP or non-ASCII byte (word: Call-ID); a
 * branch and a method are tokens; a host is letters, digits, '-', '.',
 * '_' (seen in the wild), or an IPv6 address; ports and numbers are
 * digits. */
static int junk(const char *field, const char *s)
{
	const char *ok = NULL;

	if (strcmp(field, "via.branch") == 0 || strcmp(field, "cseq.method") == 0)
		ok = "-.!%*_+`'~";
	else if (strstr(field, ".host"))
		ok = "-._:";
	int digits = strstr(field, ".port") || strstr(field, "num");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c >= 0x7f || (digits && (c < '0' || c > '9')))
			return 1;
		if (ok && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || strchr(ok, c)))
			return 1;
	}
	return 0;
}

static void cmp(struct osipdiff *r, const char *field, const char *o, const char *x)
{
	if (!o && !x)
		return;
	if (o && x && strcmp(o, x) == 0)
		return;
	if (r->ndiff >= OSIPDIFF_MAX)
		return;
	struct osipdiff_diff *d = &r->d[r->ndiff++];
	/* junk first: "we read none, libosip2 a value with a tab in it" is
	 * libosip2 keeping junk, not us missing a value */
	d->kind = o && junk(field, o) ? "ours-junk" : x && junk(field, x) ? "osip-junk" :
		  !o ? "ours-absent" : !x ? "osip-absent" : "value";
	snprintf(d->field, sizeof(d->field), "%s", field);
	put(d->ours, o ? o : "-");
	put(d->osip, x ? x : "-");
}

static void cmp_int(struct osipdiff *r, const char *field, long o, long x)
{
	char a[24], b[24];

	if (o == x)
		return;
	snprintf(a, sizeof(a), "%ld", o);
	snprintf(b, sizeof(b), "%ld", x);
	cmp(r, field, a, b);
}

void osipdiff_run(const uint8_t *buf, size_t len, struct osipdiff *r)
{
	char f[32];

	memset(r, 0, sizeof(*r));
	memset(&ov, 0, offsetof(struct osipdiff_view, arena));
	memset(&xv, 0, offsetof(struct osipdiff_view, arena));
	ov.used = xv.used = 0;
	r->ours_rc = sip_parse(&msg, buf, (uint32_t)len);
	int sdp = r->ours_rc == SIP_OK ? our_view(&ov) : 0;
	/* libosip2 parses the body as SDP when we do, so that the SDP fields
	 * are compared whenever both accept it. */
	osipdiff_osip_view(buf, len, sdp, &xv);
	r->osip_rc = xv.rc;
	if (r->ours_rc != SIP_OK || xv.rc != 0)
		return;
	r->compared = 1;
	cmp(r, "callid", ov.callid, xv.callid);
	/* CSeq is a number (RFC 3261 §20.16): "0009" is 9. libosip2 keeps
	 * the digits as written, we keep the value. */
	const char *xn = xv.cseq_num;
	while (xn && xn[0] == '0' && xn[1] >= '0' && xn[1] <= '9')
		xn++;
	cmp(r, "cseq.num", ov.cseq_num, xn);
	cmp(r, "cseq.method", ov.cseq_method, xv.cseq_method);
	int nv = r->ndiff;
	cmp_int(r, "via", ov.via, xv.via);
	if (ov.via && xv.via) {
		cmp(r, "via.host", ov.via_host, xv.via_host);
		cmp(r, "via.port", ov.via_port, xv.via_port);
		cmp(r, "via.branch", ov.via_branch, xv.via_branch);
	}
	/* A '(' in the top Via: we end the sent-by there (an RFC 2543 Via
	 * comment, its ';' still seen by the parameter walk), libosip2 reads
	 * it as part of the host. */
	struct span vv = msg.hdr[msg.via_idx].value;
	if (r->ndiff > nv && memchr(buf + vv.off, '(', vv.len))
		for (int i = nv; i < r->ndiff; i++)
			r->d[i].kind = "via-comment";
	/* A TAB in the top Via (LWS to RFC 3261, e.g. after the transport):
	 * libosip2 splits the sent-protocol and sent-by on SP only and reads
	 * something else as the host */
	if (r->ndiff > nv && memchr(buf + vv.off, '\t', vv.len))
		for (int i = nv; i < r->ndiff; i++)
			r->d[i].kind = "via-tab";
	/* An odd number of '"' in the top Via: a quoted string that never
	 * ends. libosip2 stops reading the parameters at it; we do not give
	 * a quote in a Via parameter any meaning and read on at the next ';' */
	if (r->ndiff > nv) {
		int q = 0;
		for (uint32_t k = 0; k < vv.len; k++)
			q += buf[vv.off + k] == '"' && (k == 0 || buf[vv.off + k - 1] != '\\');
		/* or a quote before the first ';': the sent-protocol and
		 * sent-by have no quoted form, libosip2 then reads no
		 * parameter at all, we still read the ones after the ';' */
		const uint8_t *semi = memchr(buf + vv.off, ';', vv.len);
		const uint8_t *quote = memchr(buf + vv.off, '"', vv.len);
		if ((q & 1) || (quote && (!semi || quote < semi)))
			for (int i = nv; i < r->ndiff; i++)
				r->d[i].kind = "via-quote";
	}
	/* libosip2 read junk into the sent-by host (a TAB after the transport,
	 * which is LWS to RFC 3261): its port and branch follow from that */
	for (int i = nv; i < r->ndiff; i++)
		if (strcmp(r->d[i].field, "via.host") == 0 && strcmp(r->d[i].kind, "osip-junk") == 0)
			for (int k = nv; k < r->ndiff; k++)
				r->d[k].kind = "osip-junk";
	int nc0 = r->ndiff;
	cmp_int(r, "contact.count", ov.ncontact, xv.ncontact);
	for (int i = 0; i < ov.ncontact && i < xv.ncontact && i < OV_CONTACTS; i++) {
		int nc = r->ndiff;
		snprintf(f, sizeof(f), "contact.%d.host", i);
		cmp(r, f, ov.contact_host[i], xv.contact_host[i]);
		snprintf(f, sizeof(f), "contact.%d.port", i);
		cmp(r, f, ov.contact_port[i], xv.contact_port[i]);
		/* "sip:j.?ser@host" outside <...>: RFC 3261 §20 wants <...> for a
		 * URI with ';' or '?'; we end the addr-spec there (as for a
		 * Request-URI's user we cannot: RFC 4475 3.1.1.9), libosip2 reads
		 * on to the '@' */
		if (r->ndiff > nc && ov.contact_addrspec_delim[i])
			for (int k = nc; k < r->ndiff; k++)
				r->d[k].kind = "addrspec-delim";
	}
	if (ov.contact_odd)
		for (int k = nc0; k < r->ndiff; k++)
			r->d[k].kind = "contact-odd";
	cmp(r, "clen", ov.clen, xv.clen);
	/* Without Content-Length the datagram ends the body (RFC 3261 §18.3);
	 * libosip2 has its own idea (the clen=ours-absent entry of the list),
	 * so the body length is compared where the header frames it. */
	if (xv.body_len >= 0 && ov.clen) {
		int n = r->ndiff;
		cmp_int(r, "body.len", ov.body_len, xv.body_len);
		/* libosip2 keeps no body without a Content-Type (or an empty one) */
		struct span ct = sip_hdr_value(&msg, H_CTYPE);
		if (r->ndiff > n && xv.body_len == 0 && ct.len == 0)
			r->d[n].kind = "no-content-type";
		/* a multipart body is its parts to libosip2 (RFC 2046) */
		else if (r->ndiff > n && ct.len >= 10 &&
			 span_ieq(msg.buf, (struct span){ ct.off, 10 }, "multipart/"))
			r->d[n].kind = "multipart";
	}
	r->sdp = sdp;
	r->sdp_ours_rc = ov.sdp_rc;
	r->sdp_osip_rc = xv.sdp_rc;
	/* sdp_message_parse() reads a C string: a body with a NUL is another
	 * body to it. Not a reading to compare. */
	if (sdp && memchr(buf + msg.body_off, 0, msg.body_len))
		return;
	if (!sdp || ov.sdp_rc != SDP_OK || xv.sdp_rc != 0)
		return;
	r->sdp_compared = 1;
	int n0 = r->ndiff;
	cmp(r, "sdp.o", ov.sdp_o, xv.sdp_o);
	/* a "/suffix" is the multicast TTL/count of RFC 4566 §5.7 on a c=;
	 * on an o= there is none, we read up to the '/' all the same */
	if (r->ndiff > n0 && xv.sdp_o && strchr(xv.sdp_o, '/'))
		r->d[n0].kind = "sdp-slash";
	int n1 = r->ndiff;
	cmp(r, "sdp.c", ov.sdp_c, xv.sdp_c);
	if (r->ndiff > n1 && xv.sdp_c && strchr(xv.sdp_c, '/'))
		r->d[n1].kind = "sdp-slash";
	cmp_int(r, "sdp.m.count", ov.nmedia, xv.nmedia);
	for (int i = 0; i < ov.nmedia && i < xv.nmedia && i < OV_MEDIA && i < SDP_MAX_MEDIA; i++) {
		snprintf(f, sizeof(f), "sdp.m.%d.port", i);
		cmp(r, f, ov.m_port[i], xv.m_port[i]);
		snprintf(f, sizeof(f), "sdp.m.%d.c", i);
		cmp(r, f, ov.m_c[i], xv.m_c[i]);
	}
	/* An empty line inside the SDP: libosip2 stops reading there, we
	 * read on (sdp.c tolerates blank lines), so every line after it is
	 * ours alone. */
	if (r->ndiff > n0 && sdp_blank_line(buf + msg.body_off, msg.body_len))
		for (int i = n0; i < r->ndiff; i++)
			r->d[i].kind = "sdp-blank-line";
	/* Two SPs between an SDP line's fields: libosip2 reads no value
	 * there, we read over them (a LAN address is still rewritten). Only
	 * what libosip2 lacks: a value both read is still compared. */
	else if (r->ndiff > n0 && sdp_double_space(buf + msg.body_off, msg.body_len))
		for (int i = n0; i < r->ndiff; i++)
			if (!strcmp(r->d[i].kind, "osip-absent"))
				r->d[i].kind = "sdp-space";
}

int osipdiff_parse_osip(const uint8_t *buf, size_t len, int sdp)
{
	return osipdiff_osip_parse_only(buf, len, sdp);
}

int osipdiff_parse_ours(const uint8_t *buf, size_t len, int *sdp)
{
	int rc = sip_parse(&msg, buf, (uint32_t)len);

	*sdp = rc == SIP_OK && is_sdp();
	if (*sdp)
		rc = sdp_parse(&sdpv, buf, (struct span){ msg.body_off, msg.body_len });
	return rc;
}

void osipdiff_count_allocs(void)
{
	osipdiff_osip_count_allocs();
}

unsigned long osipdiff_allocs(void)
{
	return osipdiff_osip_allocs();
}

/* ---- the list of deliberate differences ---- */

#define LIST_MAX 256

static struct entry {
	char file[96];
	char field[64];
	int used;
} list[LIST_MAX];
static int nlist;

int osipdiff_list_load(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	int ln = 0;

	if (!f) {
		fprintf(stderr, "%s: cannot open\n", path);
		return -1;
	}
	nlist = 0;
	while (fgets(line, sizeof(line), f)) {
		ln++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
		if (!t1 || !t2 || t2[1] == '\n' || t2[1] == 0 || nlist == LIST_MAX ||
		    t1 - line >= (long)sizeof(list[0].file) || t2 - t1 - 1 >= (long)sizeof(list[0].field)) {
			fprintf(stderr, "%s:%d: want file<TAB>field<TAB>why\n", path, ln);
			fclose(f);
			return -1;
		}
		struct entry *e = &list[nlist++];
		memcpy(e->file, line, (size_t)(t1 - line));
		e->file[t1 - line] = 0;
		memcpy(e->field, t1 + 1, (size_t)(t2 - t1 - 1));
		e->field[t2 - t1 - 1] = 0;
		e->used = 0;
	}
	fclose(f);
	return nlist;
}

/* "name", "prefix*", either followed by "=KIND" (osipdiff.h). */
static int field_match(const char *pat, const struct osipdiff_diff *d)
{
	const char *eq = strchr(pat, '=');
	size_t n = eq ? (size_t)(eq - pat) : strlen(pat);

	if (eq && strcmp(eq + 1, d->kind) != 0)
		return 0;
	if (n && pat[n - 1] == '*')
		return strncmp(pat, d->field, n - 1) == 0;
	return strlen(d->field) == n && strncmp(pat, d->field, n) == 0;
}

int osipdiff_listed(const char *file, const struct osipdiff_diff *d)
{
	for (int i = 0; i < nlist; i++)
		if (strcmp(list[i].file, file) == 0 && field_match(list[i].field, d)) {
			list[i].used = 1;
			return 1;
		}
	return 0;
}

int osipdiff_list_unused(void)
{
	int n = 0;

	for (int i = 0; i < nlist; i++)
		if (!list[i].used && strcmp(list[i].file, "*") != 0) {
			fprintf(stderr, "deliberate.tsv: %s %s matched no difference (stale entry?)\n",
				list[i].file, list[i].field);
			n++;
		}
	return n;
}
