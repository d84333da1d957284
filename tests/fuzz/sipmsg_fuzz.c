/* libFuzzer target: the SIP span scanner (src/sipmsg.c) on arbitrary bytes.
 * Beyond "no crash, no out-of-bounds read" (ASan), it checks the contract of
 * src/sipmsg.h: every span lies inside the datagram, a parsed message has the
 * headers it promises, and the list/URI/Via/param walkers only ever return
 * spans inside the span they were given and always make progress. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sipmsg.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void in_span(struct span outer, struct span inner)
{
	CHECK((uint64_t)inner.off + inner.len <= (uint64_t)outer.off + outer.len);
	CHECK(inner.off >= outer.off || inner.len == 0);
}

static void walk_value(const uint8_t *b, struct span v)
{
	static const char *const names[] = { "branch", "received", "rport", "tag",
					     "expires", "maddr", "transport", "lr" };
	struct span el, pv;
	uint32_t pos = 0, last = 0;
	int n = 0;

	while (sip_list_next(b, v, &pos, &el)) {
		in_span(v, el);
		CHECK(pos <= v.len);
		CHECK(n == 0 || pos > last); /* progress: no endless list */
		last = pos;
		if (++n > 100000)
			__builtin_trap();

		struct sip_uri u;
		if (sip_uri_find(b, el, &u) == 0) {
			in_span(el, u.host);
			in_span(el, u.hostport);
			in_span(el, u.port);
			CHECK(u.host.len > 0);
			CHECK((u.port.len == 0) == (u.port_num == 0));
		}
		struct sip_via via;
		if (sip_via_parse(b, el, &via) == 0) {
			in_span(el, via.host);
			in_span(el, via.hostport);
			in_span(el, via.params);
			CHECK(via.host.len > 0);
			for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
				if (sip_param_find(b, via.params, names[i], &pv))
					in_span(via.params, pv);
		}
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (sip_param_find(b, el, names[i], &pv))
				in_span(el, pv);
		struct addr ip;
		(void)sip_addr_parse(b, el, &ip);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sip_msg m;

	if (size > 65535)
		return 0;
	/* A private copy of exactly `size` bytes: ASan sees any read past it. */
	uint8_t *b = malloc(size ? size : 1);
	if (!b)
		return 0;
	memcpy(b, data, size);
	struct span all = { 0, (uint32_t)size };

	(void)sip_is_keepalive(b, (uint32_t)size);
	/* The daemon reuses one struct for every datagram: whatever the last
	 * message left in it must not leak into this parse. */
	memset(&m, 0xa5, sizeof(m));
	int rc = sip_parse(&m, b, (uint32_t)size);
	CHECK(rc <= 0 && rc >= SIP_E_CSEQ);
	CHECK(sip_strerror(rc) != NULL);
	CHECK(m.nhdr >= 0 && m.nhdr <= SIP_MAX_HDRS);
	for (int i = 0; i < m.nhdr; i++) {
		in_span(all, m.hdr[i].name);
		in_span(all, m.hdr[i].value);
	}
	if (rc == SIP_OK) {
		CHECK(m.callid_idx >= 0 && m.cseq_idx >= 0 && m.from_idx >= 0 &&
		      m.to_idx >= 0 && m.via_idx >= 0);
		CHECK(m.callid_idx < m.nhdr && m.cseq_idx < m.nhdr && m.via_idx < m.nhdr);
		CHECK(m.clen_idx < m.nhdr);
		CHECK((uint64_t)m.body_off + m.body_len + m.trailing == size);
		if (m.is_request) {
			in_span(all, m.method_s);
			in_span(all, m.ruri);
			CHECK(m.ruri.len > 0 && m.method_s.len > 0);
		} else {
			CHECK(m.status >= 100 && m.status <= 699);
		}
		struct span t = sip_tag(&m, m.from_idx);
		in_span(all, t);
		t = sip_tag(&m, m.to_idx);
		in_span(all, t);
		for (int id = H_OTHER; id <= H_RROUTE; id++)
			in_span(all, sip_hdr_value(&m, (enum sip_hdr_id)id));
	}
	/* The walkers run on every header a failed parse left behind too: the
	 * ALG's malformed-input path may look at them. */
	for (int i = 0; i < m.nhdr; i++)
		walk_value(b, m.hdr[i].value);
	if (m.is_request && rc == SIP_OK)
		walk_value(b, m.ruri);
	/* And on the raw datagram as one value, with quotes and <> unbalanced. */
	walk_value(b, all);
	free(b);
	return 0;
}
