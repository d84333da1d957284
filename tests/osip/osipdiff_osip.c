/* libosip2's side of osipdiff: osip_message_parse and sdp_message_parse,
 * read into the neutral view (osipdiff_view.h). The only file that
 * includes libosip2. */
#include "osipdiff_view.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include <osipparser2/osip_parser.h>
#include <osipparser2/sdp_message.h>

static void quiet(const char *fi, int li, osip_trace_level_t level, const char *chfr, va_list ap)
{
	(void)fi, (void)li, (void)level, (void)chfr, (void)ap;
}

/* Debian's libosip2 is built with tracing on and prints every rejected
 * message as an ERROR line on stdout: silence it, the caller reports. */
void osipdiff_osip_init(void)
{
	parser_init();
	osip_trace_initialize_func(END_TRACE_LEVEL, quiet);
	for (int l = TRACE_LEVEL0; l < END_TRACE_LEVEL; l++)
		osip_trace_disable_level((osip_trace_level_t)l);
}

static const char *keep(struct osipdiff_view *v, const char *s)
{
	return s ? ov_keep(v, s, strlen(s)) : NULL;
}

/* An SDP address as our scanner reports one: "IN IP4 <dotted quad>" or
 * "IN IP6 <IPv6 address>" (sdp.h), else absent. */
static const char *ip_only(struct osipdiff_view *v, const char *net, const char *type,
			   const char *addr)
{
	if (!net || !type || !addr || strcasecmp(net, "IN") != 0)
		return NULL;
	if (strcasecmp(type, "IP6") == 0) {
		/* the same test as for IPv4 below: an address alone, or one
		 * followed by what libosip2 keeps after it */
		struct in6_addr a6;
		char t[INET6_ADDRSTRLEN];
		size_t n = strcspn(addr, " \t/");
		if (n >= sizeof(t))
			return NULL;
		memcpy(t, addr, n);
		t[n] = 0;
		/* a v4-mapped IP6 address is none for us (sdp.c: it would be
		 * IPv4 written as IP6, which we could not write back) */
		return inet_pton(AF_INET6, t, &a6) == 1 && !IN6_IS_ADDR_V4MAPPED(&a6) ? keep(v, addr) : NULL;
	}
	if (strcasecmp(type, "IP4") != 0)
		return NULL;
	if (osipdiff_is_ip4(addr))
		return keep(v, addr);
	/* An IPv4 address followed by something, as libosip2 keeps it: a
	 * "/suffix" ("192.0.2.1/8" on an o=), trailing blanks ("c=IN IP4
	 * 192.0.2.1 "), or more words after an o= address. Handed on as
	 * read, so that the difference is sdp-slash or osip-junk. */
	size_t n = strcspn(addr, " \t/");
	if (n < strlen(addr) && n < 16) {
		char t[16];
		memcpy(t, addr, n);
		t[n] = 0;
		if (osipdiff_is_ip4(t))
			return keep(v, addr);
	}
	return NULL;
}

static void sdp_view(struct osipdiff_view *v, const char *body)
{
	sdp_message_t *x = NULL;

	v->sdp_rc = -1;
	if (!body || sdp_message_init(&x) != 0)
		return;
	v->sdp_rc = sdp_message_parse(x, body);
	if (v->sdp_rc == 0) {
		v->sdp_o = ip_only(v, x->o_nettype, x->o_addrtype, x->o_addr);
		v->sdp_c = ip_only(v, sdp_message_c_nettype_get(x, -1, 0),
				    sdp_message_c_addrtype_get(x, -1, 0), sdp_message_c_addr_get(x, -1, 0));
		v->nmedia = osip_list_size(&x->m_medias);
		for (int i = 0; i < v->nmedia && i < OV_MEDIA; i++) {
			v->m_port[i] = keep(v, sdp_message_m_port_get(x, i));
			v->m_c[i] = ip_only(v, sdp_message_c_nettype_get(x, i, 0),
					     sdp_message_c_addrtype_get(x, i, 0),
					     sdp_message_c_addr_get(x, i, 0));
		}
	}
	sdp_message_free(x);
}

void osipdiff_osip_view(const uint8_t *buf, size_t len, int sdp, struct osipdiff_view *v)
{
	osip_message_t *x = NULL;

	if (osip_message_init(&x) != 0) {
		v->rc = -1;
		return;
	}
	v->rc = osip_message_parse(x, (const char *)buf, len);
	if (v->rc != 0) {
		osip_message_free(x);
		return;
	}
	/* Call-ID: libosip2 splits number@host; joined again as written. */
	osip_call_id_t *ci = osip_message_get_call_id(x);
	if (ci) {
		char *s = NULL;
		if (osip_call_id_to_str(ci, &s) == 0 && s) {
			v->callid = keep(v, s);
			osip_free(s);
		}
	}
	osip_cseq_t *cs = osip_message_get_cseq(x);
	if (cs) {
		v->cseq_num = keep(v, cs->number);
		v->cseq_method = keep(v, cs->method);
	}
	osip_via_t *via = NULL;
	if (osip_message_get_via(x, 0, &via) >= 0 && via && via->host) {
		osip_generic_param_t *p = NULL;
		v->via = 1;
		v->via_host = keep(v, via->host);
		v->via_port = keep(v, via->port);
		osip_via_param_get_byname(via, "branch", &p);
		if (p)
			v->via_branch = keep(v, p->gvalue ? p->gvalue : "");
	}
	v->ncontact = osip_list_size(&x->contacts);
	for (int i = 0; i < v->ncontact && i < OV_CONTACTS; i++) {
		osip_contact_t *c = NULL;
		osip_message_get_contact(x, i, &c);
		osip_uri_t *u = c ? osip_contact_get_url(c) : NULL;
		if (u) {
			v->contact_host[i] = keep(v, u->host);
			v->contact_port[i] = keep(v, u->port);
		}
	}
	osip_content_length_t *cl = osip_message_get_content_length(x);
	if (cl)
		v->clen = keep(v, cl->value);
	osip_body_t *bd = NULL;
	osip_message_get_body(x, 0, &bd);
	v->body_len = osip_list_size(&x->bodies) > 1 ? -1 : bd ? (long)bd->length : 0;
	if (sdp && bd && bd->body) {
		/* body->body is length bytes, not always NUL-terminated (the
		 * fuzz target saw sdp_message_parse's strchr read past it):
		 * hand it a terminated copy. */
		static char copy[70000];
		size_t n = bd->length < sizeof(copy) - 1 ? bd->length : sizeof(copy) - 1;
		memcpy(copy, bd->body, n);
		copy[n] = 0;
		sdp_view(v, copy);
	} else if (sdp) {
		v->sdp_rc = -1;
	}
	osip_message_free(x);
}

/* The timing program's view of libosip2: what a daemon on libosip2 does per
 * datagram (parse, the SDP body too when there is one, free). */
int osipdiff_osip_parse_only(const uint8_t *buf, size_t len, int sdp)
{
	osip_message_t *x = NULL;

	if (osip_message_init(&x) != 0)
		return -1;
	int rc = osip_message_parse(x, (const char *)buf, len);
	osip_body_t *bd = NULL;
	if (rc == 0 && sdp && osip_message_get_body(x, 0, &bd) >= 0 && bd && bd->body) {
		sdp_message_t *s = NULL;
		static char copy[70000];
		size_t n = bd->length < sizeof(copy) - 1 ? bd->length : sizeof(copy) - 1;
		memcpy(copy, bd->body, n);
		copy[n] = 0;
		if (sdp_message_init(&s) == 0) {
			rc = sdp_message_parse(s, copy);
			sdp_message_free(s);
		}
	}
	osip_message_free(x);
	return rc;
}

/* Count libosip2's allocations (osip_set_allocators). */
static unsigned long nallocs;
static void *count_malloc(size_t n) { nallocs++; return malloc(n); }
static void *count_realloc(void *p, size_t n) { nallocs++; return realloc(p, n); }
static void count_free(void *p) { free(p); }

void osipdiff_osip_count_allocs(void)
{
	osip_set_allocators(count_malloc, count_realloc, count_free);
}

unsigned long osipdiff_osip_allocs(void)
{
	return nallocs;
}
