#include "nat66.h"

#include <string.h>

int nat66_map(const struct addr *from, const struct addr *to, unsigned plen, const struct addr *a,
	      struct addr *out)
{
	struct addr r;

	if (plen == 0 || plen > 128 || addr_is_v4(a) || addr_is_v4(from) || !addr_in_prefix(a, from, plen))
		return 0;
	r = *a;
	for (unsigned i = 0, bits = plen; i < 16 && bits; i++) {
		uint8_t m = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
		r.b[i] = (uint8_t)((to->b[i] & m) | (a->b[i] & (uint8_t)~m));
		bits = bits >= 8 ? bits - 8 : 0;
	}
	*out = r;
	return 1;
}

static int in_run(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
	       c == '.';
}

static int is_alnum(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* The longest IPv6 text: 8 groups of 4 and 7 colons, or 6 groups and a
 * dotted quad (45). */
#define LIT_MAX 45

int nat66_next(const uint8_t *b, struct span s, uint32_t *pos, struct span *hit, struct addr *a)
{
	uint32_t e = s.off + s.len;
	uint32_t p = s.off + *pos;

	while (p < e) {
		if (!in_run(b[p])) {
			p++;
			continue;
		}
		uint32_t q = p, colons = 0;
		while (q < e && in_run(b[q]))
			colons += b[q++] == ':';
		/* [p, q) is a whole run; the next search starts after it */
		uint32_t st = p, en = q;
		p = q;
		if (colons < 2)
			continue;
		/* "sip:fd00::1": the scheme's colon is not the address's */
		if (b[st] == ':' && (en - st < 2 || b[st + 1] != ':'))
			st++;
		/* "... fd00::1." ends a sentence */
		while (en > st && b[en - 1] == '.')
			en--;
		/* glued to a name ("x1::2", "fe80::1%eth0" stays out: '%' is
		 * no letter, but a zone has no meaning beyond the link) */
		if ((st > s.off && is_alnum(b[st - 1])) || (en < e && (is_alnum(b[en]) || b[en] == '%')))
			continue;
		if (en - st < 2 || en - st > LIT_MAX)
			continue;
		struct addr v;
		if (!addr_parse(b + st, en - st, &v) || addr_is_v4(&v))
			continue;
		*hit = (struct span){ st, en - st };
		*a = v;
		*pos = p - s.off;
		return 1;
	}
	*pos = s.len;
	return 0;
}

uint32_t nat66_map_text(const uint8_t *b, struct span s, const struct addr *from, const struct addr *to,
			unsigned plen, uint8_t *out, uint32_t cap)
{
	uint32_t n = 0, p = s.off, pos = 0;
	struct span h;
	struct addr a, m;
	char t[ADDR_STRLEN];

	while (nat66_next(b, s, &pos, &h, &a)) {
		if (!nat66_map(from, to, plen, &a, &m))
			continue;
		uint32_t k = h.off - p, tl = addr_fmt(t, &m, 0);
		if (n + k + tl > cap)
			break;
		memcpy(out + n, b + p, k);
		n += k;
		memcpy(out + n, t, tl);
		n += tl;
		p = h.off + h.len;
	}
	uint32_t rest = s.off + s.len - p;
	if (n + rest > cap)
		rest = cap - n;
	memcpy(out + n, b + p, rest);
	return n + rest;
}
