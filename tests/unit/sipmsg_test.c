/* The span scanners: every span points at the bytes it names, and what is
 * ambiguous is refused with the documented error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "edit.h"
#include "sdp.h"
#include "sipmsg.h"

/* The IPv4 address of an SDP field (it must be one). */
static uint32_t V4(struct addr a)
{
	assert_true(addr_is_v4(&a));
	return addr_get_v4(&a);
}

static struct sip_msg m;

static int parse(const char *s) { return sip_parse(&m, (const uint8_t *)s, (uint32_t)strlen(s)); }

static int span_is(const char *buf, struct span sp, const char *want)
{
	return sp.len == strlen(want) && memcmp(buf + sp.off, want, sp.len) == 0;
}

#define HDRS "Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;received=1.2.3.4\r\n" \
	"To: <sip:b@x>\r\nFrom: \"A, sip:x\" <sip:a@x>;tag=t1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n"

static void test_request_spans(void **st)
{
	(void)st;
	const char *s = "INVITE sip:b@x SIP/2.0\r\n" HDRS "Content-Length: 4\r\n\r\nabcd";
	assert_int_equal(parse(s), SIP_OK);
	assert_true(m.is_request);
	assert_int_equal(m.method, M_INVITE);
	assert_true(span_is(s, m.ruri, "sip:b@x"));
	assert_int_equal(m.body_len, 4);
	assert_true(span_is(s, (struct span){ m.body_off, m.body_len }, "abcd"));
	assert_true(span_is(s, sip_tag(&m, m.from_idx), "t1"));

	struct span el;
	uint32_t pos = 0;
	struct sip_via v;
	assert_true(sip_list_next(m.buf, m.hdr[m.via_idx].value, &pos, &el));
	assert_int_equal(sip_via_parse(m.buf, el, &v), 0);
	assert_true(span_is(s, v.host, "10.0.0.1"));
	assert_int_equal(v.port_num, 5070);
	assert_true(span_is(s, v.hostport, "10.0.0.1:5070"));
	struct span pv;
	assert_true(sip_param_find(m.buf, v.params, "received", &pv));
	assert_true(span_is(s, pv, "1.2.3.4"));
	assert_false(sip_param_find(m.buf, v.params, "rport", &pv));

	/* a display name that contains "sip:" and a comma is not the URI */
	struct sip_uri u;
	assert_int_equal(sip_uri_find(m.buf, m.hdr[m.from_idx].value, &u), 0);
	assert_true(span_is(s, u.host, "x"));
}

/* Regression (fuzz find alg-ruri-rewritten-malformed): bytes glued to a
 * URI's port are not part of a hostport the rewriter may replace. The scanner
 * refuses the Request-URI, and sip_uri_find refuses the same bytes anywhere,
 * so the rewriter can never map a hostport whose end the scanner disagrees on. */
static void test_ruri_port_followed_by_junk(void **st)
{
	(void)st;
#define BYEHDRS "Via: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\nTo: <sip:b@x>;tag=t2\r\n" \
	"From: <sip:a@x>;tag=t1\r\nCall-ID: c1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
	const char *bad = "BYE sip:alice@203.0.113.1:5060sip:al SIP/2.0\r\n" BYEHDRS;
	assert_int_equal(parse(bad), SIP_E_HDR);
	const char *ok = "BYE sip:alice@203.0.113.1:5060;transport=udp SIP/2.0\r\n" BYEHDRS;
	assert_int_equal(parse(ok), SIP_OK);

	struct sip_uri u;
	const char *c1 = "<sip:a@1.2.3.4:5060x>";
	assert_int_equal(sip_uri_find((const uint8_t *)c1, (struct span){ 0, (uint32_t)strlen(c1) }, &u), -1);
	const char *c2 = "<sip:a@[::1]x>";
	assert_int_equal(sip_uri_find((const uint8_t *)c2, (struct span){ 0, (uint32_t)strlen(c2) }, &u), -1);
	const char *c3 = "<sip:a@1.2.3.4:5060>;expires=60";
	assert_int_equal(sip_uri_find((const uint8_t *)c3, (struct span){ 0, (uint32_t)strlen(c3) }, &u), 0);
	assert_true(span_is(c3, u.hostport, "1.2.3.4:5060"));
}

static void test_compact_folded_lf(void **st)
{
	(void)st;
	const char *s = "SIP/2.0 180 Ringing\n"
		"v: SIP/2.0/UDP 10.0.0.1\n"
		" ;branch=z9hG4bK2\n"
		"t: <sip:b@x>;tag=9\nf: <sip:a@x>;tag=1\ni: c2\nCSeq: 2 INVITE\nl: 0\n\n";
	assert_int_equal(parse(s), SIP_OK);
	assert_false(m.is_request);
	assert_int_equal(m.status, 180);
	assert_int_equal(m.method, M_INVITE);
	assert_true(m.hdr[m.via_idx].compact);
	assert_true(span_is(s, m.hdr[m.via_idx].value, "SIP/2.0/UDP 10.0.0.1\n ;branch=z9hG4bK2"));
	assert_int_equal(m.clen_idx, 5);
	/* the fold's LF is not part of the host */
	struct span el;
	uint32_t pos = 0;
	struct sip_via v;
	assert_true(sip_list_next((const uint8_t *)s, m.hdr[m.via_idx].value, &pos, &el));
	assert_int_equal(sip_via_parse((const uint8_t *)s, el, &v), 0);
	assert_true(span_is(s, v.host, "10.0.0.1"));
}

/* Found by the libosip2 differential fuzz target: libosip2 ends a header
 * line at a bare CR, we used to keep it inside the value, so a Contact
 * hidden behind a CR was a header only the other stack saw. */
static void test_bare_cr_refused(void **st)
{
	(void)st;
	assert_int_equal(parse("INVITE sip:b@x SIP/2.0\r\n" HDRS
			       "X-A: a\rContact: <sip:evil@192.168.1.66>\r\nContent-Length: 0\r\n\r\n"),
			 SIP_E_HDR);
	assert_int_equal(parse("INVITE sip:b@x SIP/2.0\r\n" HDRS
			       "Subject: a\r\n b\rc\r\nContent-Length: 0\r\n\r\n"), SIP_E_HDR);
	assert_int_equal(parse("INVITE sip:b@x\r SIP/2.0\r\n" HDRS "Content-Length: 0\r\n\r\n"),
			 SIP_E_HDR);
	assert_int_equal(parse("SIP/2.0 200 O\rK\r\n" HDRS "Content-Length: 0\r\n\r\n"), SIP_E_HDR);
	/* CRLF, LF-only and a CR in the body stay as they were */
	assert_int_equal(parse("INVITE sip:b@x SIP/2.0\n" HDRS "Content-Length: 3\n\na\rb"), SIP_OK);
}

/* Found by the libosip2 differential fuzz target: ';' and '?' are
 * user-unreserved (RFC 3261 §25.1), so inside <...> the host follows the
 * '@', not the first ';' or '?'. We read host "al" and the ALG left
 * 192.168.1.10 in the Contact. Outside <...> they still end the URI. */
static void test_uri_user_semicolon_question(void **st)
{
	(void)st;
	struct sip_uri u;
	const char *a = "<sip:al?ce@192.168.1.10:5062>;expires=60";
	assert_int_equal(sip_uri_find((const uint8_t *)a, (struct span){ 0, (uint32_t)strlen(a) }, &u), 0);
	assert_true(span_is(a, u.host, "192.168.1.10"));
	assert_int_equal(u.port_num, 5062);
	const char *b = "\"x\" <sip:+15551234;npdi;rn=+1555@192.168.1.10;user=phone>";
	assert_int_equal(sip_uri_find((const uint8_t *)b, (struct span){ 0, (uint32_t)strlen(b) }, &u), 0);
	assert_true(span_is(b, u.host, "192.168.1.10"));
	assert_true(span_is(b, u.hostport, "192.168.1.10"));
	const char *c = "sip:host.example.com;tag=x@y";  /* addr-spec: ';' ends the URI */
	assert_int_equal(sip_uri_find((const uint8_t *)c, (struct span){ 0, (uint32_t)strlen(c) }, &u), 0);
	assert_true(span_is(c, u.host, "host.example.com"));
	const char *d = "<sip:a@192.168.1.10@evil.example.com>";  /* two '@': no host */
	assert_int_equal(sip_uri_find((const uint8_t *)d, (struct span){ 0, (uint32_t)strlen(d) }, &u), -1);
	const char *sp = "<sip:cal%6Ce.com SIP/2r@host5.example.com>";  /* LWS inside <...> */
	assert_int_equal(sip_uri_find((const uint8_t *)sp, (struct span){ 0, (uint32_t)strlen(sp) }, &u), -1);
	const char *sp2 = "<sip:al?l-ID: hx4c3@192.168.1.10:5060>";  /* LWS before the '@' */
	assert_int_equal(sip_uri_find((const uint8_t *)sp2, (struct span){ 0, (uint32_t)strlen(sp2) }, &u), -1);
	const char *gt = "sip:alice@192.168.1.10:5060>";  /* a '>' with no '<' */
	assert_int_equal(sip_uri_find((const uint8_t *)gt, (struct span){ 0, (uint32_t)strlen(gt) }, &u), -1);
	const char *ok = "<sip:a@192.168.1.10:5060;transport=udp?x=y> ;expires=60";
	assert_int_equal(sip_uri_find((const uint8_t *)ok, (struct span){ 0, (uint32_t)strlen(ok) }, &u), 0);
	assert_true(span_is(ok, u.hostport, "192.168.1.10:5060"));
}

/* Found by the libosip2 differential fuzz target: a c= after an m= beyond
 * SDP_MAX_MEDIA became the session-level address. */
static void test_sdp_c_beyond_max_media(void **st)
{
	(void)st;
	static char b[4096];
	int n = snprintf(b, sizeof(b), "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n");
	for (int i = 0; i < SDP_MAX_MEDIA + 2; i++)
		n += snprintf(b + n, sizeof(b) - (size_t)n, "m=audio %d RTP/AVP 0\r\nc=IN IP4 10.0.1.%d\r\n",
			      4000 + 2 * i, i);
	struct sdp s;
	assert_int_equal(sdp_parse(&s, (const uint8_t *)b, (struct span){ 0, (uint32_t)n }), SDP_OK);
	assert_int_equal(s.nmedia, SDP_MAX_MEDIA);
	assert_int_equal(s.nmedia_total, SDP_MAX_MEDIA + 2);
	assert_true(span_is(b, s.c_addr, "10.0.0.1"));
	assert_int_equal(V4(s.c_ip), 0x0a000001);
	assert_int_equal(V4(s.m[SDP_MAX_MEDIA - 1].ip), 0x0a00010f);
}

/* IN IP6 (issue 13): parsed into struct addr, per line, so a mixed SDP
 * has an IPv4 and an IPv6 stream; what is not an IP literal of the type the
 * line names is reported (non_ip) and has no address. */
static void test_sdp_ipv6(void **st)
{
	(void)st;
	struct sdp s;
	struct addr a;
	const char *v6 = "v=0\r\no=- 1 1 IN IP6 2001:db8:77::10\r\ns=-\r\nc=IN IP6 2001:DB8:77::10\r\nt=0 0\r\n"
		"m=audio 16800 RTP/AVP 0\r\na=rtcp:16901 IN IP6 2001:db8:77::11\r\n"
		"m=video 4000 RTP/AVP 31\r\nc=IN IP4 192.168.1.10\r\n";
	assert_int_equal(sdp_parse(&s, (const uint8_t *)v6, (struct span){ 0, (uint32_t)strlen(v6) }), SDP_OK);
	assert_true(addr_parse_str("2001:db8:77::10", &a));
	assert_true(span_is(v6, s.c_addr, "2001:DB8:77::10"));
	assert_true(addr_eq(&s.c_ip, &a));
	assert_true(addr_eq(&s.o_ip, &a));
	assert_true(addr_eq(&s.m[0].ip, &a));
	assert_true(addr_parse_str("2001:db8:77::11", &a));
	assert_true(addr_eq(&s.m[0].rtcp_ip, &a));
	assert_int_equal(s.m[0].rtcp_num, 16901);
	assert_int_equal(V4(s.m[1].ip), 0xc0a8010a);
	assert_int_equal(s.non_ip, 0);
	/* the type must match the literal; no brackets in SDP (RFC 4566 9) */
	const char *bad[] = {
		"v=0\r\nc=IN IP4 2001:db8::1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
		"v=0\r\nc=IN IP6 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
		"v=0\r\nc=IN IP6 [2001:db8::1]\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
		"v=0\r\nc=IN IP6 ::ffff:10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
		"v=0\r\nc=IN IP6 host.example\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		assert_int_equal(sdp_parse(&s, (const uint8_t *)bad[k], (struct span){ 0, (uint32_t)strlen(bad[k]) }),
				 SDP_OK);
		assert_int_equal(s.non_ip, 1);
		assert_int_equal(s.c_addr.len, 0);
		assert_true(addr_is_any(&s.m[0].ip));
	}
}

/* RFC 5118: addresses in Via, URIs and received= as the scanner reads them */
static void test_addr_parse_rfc5118(void **st)
{
	(void)st;
	struct addr a, b;
	const char *t = "[2001:db8::9:1]2001:db8::9:1[2001:db8::9:1]:5060::ffff:192.0.2.1[2001:db8:::1]";
	assert_true(sip_addr_parse((const uint8_t *)t, (struct span){ 0, 15 }, &a));
	assert_true(sip_addr_parse((const uint8_t *)t, (struct span){ 15, 13 }, &b));
	assert_true(addr_eq(&a, &b));
	assert_false(addr_is_v4(&a));
	/* a host:port is not an address ("[2001:db8::9:1:5060]" would be one:
	 * RFC 5118 4.9, the reason for brackets) */
	assert_false(sip_addr_parse((const uint8_t *)t, (struct span){ 28, 20 }, &a));
	/* RFC 5118 4.1: the v4-mapped form is the IPv4 address it maps */
	assert_true(sip_addr_parse((const uint8_t *)t, (struct span){ 48, 16 }, &a));
	assert_true(addr_is_v4(&a));
	assert_int_equal(addr_get_v4(&a), 0xc0000201);
	/* RFC 5118 4.10: three colons */
	assert_false(sip_addr_parse((const uint8_t *)t, (struct span){ 64, 14 }, &a));
}

/* Found by the libosip2 differential fuzz target: a bare CR ends an SDP
 * line for libosip2 (an m= only it saw), and two c= at one level were read
 * as the last by us and the first by libosip2 (the other left unrewritten). */
static void test_sdp_bare_cr_two_c(void **st)
{
	(void)st;
	struct sdp s;
	const char *cr = "v=0\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\x1am=audio 4000 RTP/AVP 0\r\n";
	assert_int_equal(sdp_parse(&s, (const uint8_t *)cr, (struct span){ 0, (uint32_t)strlen(cr) }), SDP_E_SYNTAX);
	const char *c2 = "v=0\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
		"c=IN IP4 192.168.1.10\r\nc=IN IP4 10.0.0.2\r\n";
	assert_int_equal(sdp_parse(&s, (const uint8_t *)c2, (struct span){ 0, (uint32_t)strlen(c2) }), SDP_E_CONN);
	const char *c2s = "v=0\r\nc=IN IP4 192.168.1.10\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n";
	assert_int_equal(sdp_parse(&s, (const uint8_t *)c2s, (struct span){ 0, (uint32_t)strlen(c2s) }), SDP_E_CONN);
	/* one c= per level, session and media: fine */
	const char *ok = "v=0\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\n"
		"m=video 4002 RTP/AVP 31\r\nc=IN IP4 10.0.0.3\r\n";
	assert_int_equal(sdp_parse(&s, (const uint8_t *)ok, (struct span){ 0, (uint32_t)strlen(ok) }), SDP_OK);
	assert_int_equal(V4(s.m[1].ip), 0x0a000003);
}

/* Found by the libosip2 differential fuzz target: a parameter name must be
 * followed by '=', ';', ',' or the end to be that name. */
static void test_param_name_then_junk(void **st)
{
	(void)st;
	const char *p = ";branch/UDP 203.0.113.10:5060;branch=z9hG4bK1;rport";
	struct span ps = { 0, (uint32_t)strlen(p) }, v;
	assert_int_equal(sip_param_find((const uint8_t *)p, ps, "branch", &v), 1);
	assert_true(span_is(p, v, "z9hG4bK1"));
	assert_int_equal(sip_param_find((const uint8_t *)p, ps, "rport", &v), 1);
	assert_int_equal(v.len, 0);
	const char *q = ";tag = 1918181833n ;lr";  /* LWS around '=' is fine */
	struct span qs = { 0, (uint32_t)strlen(q) };
	assert_int_equal(sip_param_find((const uint8_t *)q, qs, "tag", &v), 1);
	assert_true(span_is(q, v, "1918181833n"));
	assert_int_equal(sip_param_find((const uint8_t *)q, qs, "lr", &v), 1);
}

/* Found by the libosip2 differential fuzz target: a host is letters,
 * digits, '-', '.' (and '_'); "spindle.example.co<m" opened a '<' that
 * kept the next Via element's ',' from splitting. */
static void test_host_charset(void **st)
{
	(void)st;
	struct sip_via v;
	const char *bad = "SIP/2.0/TCP spindle.example.co<m ;x";
	assert_int_equal(sip_via_parse((const uint8_t *)bad, (struct span){ 0, (uint32_t)strlen(bad) }, &v), -1);
	const char *ok = "SIP/2.0/UDP my_pbx-1.example.com:5060;branch=z9hG4bK1";
	assert_int_equal(sip_via_parse((const uint8_t *)ok, (struct span){ 0, (uint32_t)strlen(ok) }, &v), 0);
	assert_true(span_is(ok, v.host, "my_pbx-1.example.com"));
	assert_int_equal(parse("INVITE sip:b@x SIP/2.0\r\n"
			       "Via: SIP/2.0/TCP spindle.example.co<m ;\r\n x , SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK2\r\n"
			       "To: <sip:b@x>\r\nFrom: <sip:a@x>;tag=t1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n"
			       "Content-Length: 0\r\n\r\n"), SIP_E_HDR);
}

static void test_refusals(void **st)
{
	(void)st;
	assert_int_equal(parse("INVITE sip:b@x SIP/2.0\r\n" HDRS "Content-Length: 10\r\n\r\nabc"), SIP_E_TRUNC);
	assert_int_equal(parse("INVITE sip:b@x SIP/2.0\r\n" HDRS "Content-Length: -1\r\n\r\n"), SIP_E_CLEN);
	assert_int_equal(parse("INVITE sip:b@x SIP/2.0\r\n" HDRS "Content-Length: 99999999999999999999999\r\n\r\n"), SIP_E_CLEN);
	assert_int_equal(parse("INVITE sip:b@x SIP/2.0\r\n" HDRS "Content-Length: 0\r\nl: 0\r\n\r\n"), SIP_E_CLEN);
	assert_int_equal(parse("INVITE sip:b@x SIP/2.0\r\n" HDRS "Call-ID: again\r\n\r\n"), SIP_E_DUP);
	assert_int_equal(parse("INVITE sip:b@x SIP/7.0\r\n" HDRS "\r\n"), SIP_E_VERSION);
	assert_int_equal(parse("INVITE sip:b@x SIP/2.0\r\n" HDRS), SIP_E_TRUNC);
	assert_int_equal(parse("INVITE sip:b@x SIP/2.0\r\nTo: <sip:b@x>\r\n\r\n"), SIP_E_MISSING);
	assert_int_equal(parse("hello world"), SIP_E_NOTSIP);
	assert_int_equal(parse(" INVITE sip:b@x SIP/2.0\r\n" HDRS "\r\n"), SIP_E_NOTSIP);
	assert_int_equal(parse("INVITE sip:b@x SIP/2.0\r\n" HDRS "Bad Header\r\n\r\n"), SIP_E_HDR);
	assert_int_equal(parse("INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nTo: <sip:b@x>\r\n"
			       "From: <sip:a@x>;tag=1\r\nCall-ID: c\r\nCSeq: 1 BYE\r\n\r\n"), SIP_E_CSEQ);
	assert_true(sip_is_keepalive((const uint8_t *)"\r\n\r\n", 4));
	assert_false(sip_is_keepalive((const uint8_t *)"\r\nX", 3));
}

static void test_sdp(void **st)
{
	(void)st;
	const char *b = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1/127\r\nt=0 0\r\n"
		"m=audio 49170 RTP/AVP 0\r\na=rtcp:49171 IN IP4 10.0.0.9\r\n"
		"m=video 0 RTP/AVP 31\r\n"
		"m=audio 5004/2 RTP/AVP 8\r\nc=IN IP4 10.0.0.2\r\n";
	struct sdp s;
	assert_int_equal(sdp_parse(&s, (const uint8_t *)b, (struct span){ 0, (uint32_t)strlen(b) }), SDP_OK);
	assert_true(span_is(b, s.o_addr, "10.0.0.1"));
	assert_true(span_is(b, s.c_addr, "10.0.0.1"));
	assert_int_equal(s.nmedia, 3);
	assert_int_equal(s.m[0].port_num, 49170);
	assert_int_equal(s.m[0].rtcp_num, 49171);
	assert_true(span_is(b, s.m[0].rtcp_addr, "10.0.0.9"));
	assert_int_equal(s.m[1].port_num, 0);
	assert_true(span_is(b, s.m[2].port, "5004"));
	assert_int_equal(V4(s.m[2].ip), 0x0a000002);
	assert_int_equal(V4(s.m[0].ip), 0x0a000001);

	const char *bad = "v=0\r\nc=IN IP4\r\n";
	assert_int_equal(sdp_parse(&s, (const uint8_t *)bad, (struct span){ 0, (uint32_t)strlen(bad) }), SDP_E_CONN);
	const char *port = "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 99999 RTP/AVP 0\r\n";
	assert_int_equal(sdp_parse(&s, (const uint8_t *)port, (struct span){ 0, (uint32_t)strlen(port) }), SDP_E_MEDIA);
	const char *noc = "v=0\r\nm=audio 4000 RTP/AVP 0\r\n";
	assert_int_equal(sdp_parse(&s, (const uint8_t *)noc, (struct span){ 0, (uint32_t)strlen(noc) }), SDP_E_NOCONN);
}

static void test_edits(void **st)
{
	(void)st;
	static struct edit_list l;
	uint8_t out[64];
	const char *in = "hello 10.0.0.1 world";
	edit_init(&l);
	edit_add(&l, 15, 5, "there!", 6);
	edit_add(&l, 6, 8, "203.0.113.1", 11);
	assert_int_equal(edit_delta(&l, 0, 20), 4);
	int64_t n = edit_apply(&l, (const uint8_t *)in, 20, out, sizeof(out));
	assert_int_equal(n, 24);
	assert_memory_equal(out, "hello 203.0.113.1 there!", 24);
	/* overlapping edits are refused, not applied */
	edit_init(&l);
	edit_add(&l, 0, 5, "a", 1);
	edit_add(&l, 3, 5, "b", 1);
	assert_int_equal(edit_apply(&l, (const uint8_t *)in, 20, out, sizeof(out)), -1);
	/* output too small */
	edit_init(&l);
	edit_add(&l, 0, 1, "xxxxxxxxxx", 10);
	assert_int_equal(edit_apply(&l, (const uint8_t *)in, 20, out, 20), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_spans),
		cmocka_unit_test(test_ruri_port_followed_by_junk),
		cmocka_unit_test(test_compact_folded_lf),
		cmocka_unit_test(test_bare_cr_refused),
		cmocka_unit_test(test_uri_user_semicolon_question),
		cmocka_unit_test(test_sdp_c_beyond_max_media),
		cmocka_unit_test(test_sdp_bare_cr_two_c),
		cmocka_unit_test(test_sdp_ipv6),
		cmocka_unit_test(test_addr_parse_rfc5118),
		cmocka_unit_test(test_param_name_then_junk),
		cmocka_unit_test(test_host_charset),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_sdp),
		cmocka_unit_test(test_edits),
	};
	return cmocka_run_group_tests_name("sipmsg", tests, NULL, NULL);
}
