/* libFuzzer target: the SDP span scanner (src/sdp.c). The body is placed
 * at a non-zero offset inside a larger buffer, as it sits in a SIP message,
 * and every span returned must lie inside the body span. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sdp.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void in_body(struct span body, struct span s)
{
	if (s.len == 0)
		return;
	CHECK(s.off >= body.off);
	CHECK((uint64_t)s.off + s.len <= (uint64_t)body.off + body.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sdp s;

	if (size < 1 || size > 65535)
		return 0;
	/* First byte: how many bytes of "headers" precede the body (0..15). */
	uint32_t pre = data[0] & 15;
	uint32_t blen = (uint32_t)size - 1;
	uint8_t *b = malloc(pre + blen + 1);
	if (!b)
		return 0;
	memset(b, 'H', pre);
	memcpy(b + pre, data + 1, blen);
	struct span body = { pre, blen };

	int rc = sdp_parse(&s, b, body);
	CHECK(rc <= 0 && rc >= SDP_E_NOCONN);
	CHECK(s.nmedia >= 0 && s.nmedia <= SDP_MAX_MEDIA && s.nmedia <= s.nmedia_total);
	in_body(body, s.o_addr);
	in_body(body, s.c_addr);
	for (int i = 0; i < s.nmedia; i++) {
		const struct sdp_media *m = &s.m[i];
		in_body(body, m->port);
		in_body(body, m->c_addr);
		in_body(body, m->rtcp_port);
		in_body(body, m->rtcp_addr);
		if (rc == SDP_OK) {
			CHECK(m->port.len > 0 && m->port.len <= 5);
			/* an address span is kept only when it parsed as an IP literal */
			struct addr ip;
			if (m->c_addr.len)
				CHECK(sip_addr_parse(b, m->c_addr, &ip) && addr_eq(&ip, &m->c_ip));
		}
	}
	if (rc == SDP_OK) {
		struct addr ip;
		if (s.o_addr.len)
			CHECK(sip_addr_parse(b, s.o_addr, &ip) && addr_eq(&ip, &s.o_ip));
		if (s.c_addr.len)
			CHECK(sip_addr_parse(b, s.c_addr, &ip) && addr_eq(&ip, &s.c_ip));
	}
	free(b);
	return 0;
}
