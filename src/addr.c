/* addr: see addr.h. Parsing is strict: a scanner that accepts "almost an
 * address" would rewrite bytes that were never an address. */
#include "addr.h"

#include <stdio.h>

#include "siphash.h"

uint64_t addr_hash(const struct addr *a)
{
	return siphash_table(a->b, 16);
}

int addr_in_prefix(const struct addr *a, const struct addr *net, unsigned plen)
{
	if (addr_is_v4(a) != addr_is_v4(net))
		return 0;
	if (addr_is_v4(net)) {
		/* one word: the LAN test runs for every IPv4 literal of a message */
		if (plen > 32)
			return 0;
		uint32_t m = plen ? 0xffffffffu << (32 - plen) : 0;
		return ((addr_get_v4(a) ^ addr_get_v4(net)) & m) == 0;
	}
	if (plen > 128)
		return 0;
	unsigned bits = plen, i = 0;
	for (; bits >= 8; bits -= 8, i++)
		if (a->b[i] != net->b[i])
			return 0;
	if (bits) {
		uint8_t m = (uint8_t)(0xff << (8 - bits));
		if ((a->b[i] & m) != (net->b[i] & m))
			return 0;
	}
	return 1;
}

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Dotted quad filling all of s[0..n): four 1-3 digit octets <= 255. */
static int parse_v4(const uint8_t *s, uint32_t n, uint8_t out[4])
{
	uint32_t p = 0;

	for (int i = 0; i < 4; i++) {
		uint32_t o = 0, d = 0;
		while (p < n && s[p] >= '0' && s[p] <= '9' && d < 4) {
			o = o * 10 + (uint32_t)(s[p++] - '0');
			d++;
		}
		if (d == 0 || d > 3 || o > 255)
			return 0;
		out[i] = (uint8_t)o;
		if (i < 3) {
			if (p >= n || s[p] != '.')
				return 0;
			p++;
		}
	}
	return p == n;
}

/* RFC 4291 2.2: up to 8 groups of 1-4 hex digits, at most one "::", an
 * optional dotted IPv4 tail standing for the last two groups. */
static int parse_v6(const uint8_t *s, uint32_t n, uint8_t out[16])
{
	uint16_t g[8];
	int ng = 0, gap = -1;
	uint32_t p = 0;

	if (n < 2)
		return 0;
	if (s[0] == ':') {
		if (s[1] != ':')
			return 0;
		gap = 0;
		p = 2;
		if (p == n)
			goto done;
	}
	for (;;) {
		/* one group, or the dotted tail */
		uint32_t start = p, v = 0;
		int d = 0;
		while (p < n && hexval(s[p]) >= 0 && d < 5) {
			v = v << 4 | (uint32_t)hexval(s[p++]);
			d++;
		}
		if (p < n && s[p] == '.') {
			uint8_t q[4];
			if (ng > 6 || !parse_v4(s + start, n - start, q))
				return 0;
			g[ng++] = (uint16_t)(q[0] << 8 | q[1]);
			g[ng++] = (uint16_t)(q[2] << 8 | q[3]);
			p = n;
			break;
		}
		if (d == 0 || d > 4 || ng == 8)
			return 0;
		g[ng++] = (uint16_t)v;
		if (p == n)
			break;
		if (s[p] != ':')
			return 0;
		p++;
		if (p < n && s[p] == ':') {
			if (gap >= 0)
				return 0;
			gap = ng;
			p++;
			if (p == n)
				break;
		} else if (p == n) {
			return 0; /* a trailing single ':' */
		}
	}
done:
	if (gap < 0 ? ng != 8 : ng > 7)
		return 0;
	memset(out, 0, 16);
	int tail = gap < 0 ? 0 : ng - gap;
	for (int i = 0; i < ng - tail; i++) {
		out[2 * i] = (uint8_t)(g[i] >> 8);
		out[2 * i + 1] = (uint8_t)g[i];
	}
	for (int i = 0; i < tail; i++) {
		int o = 8 - tail + i;
		out[2 * o] = (uint8_t)(g[gap + i] >> 8);
		out[2 * o + 1] = (uint8_t)g[gap + i];
	}
	return 1;
}

int addr_parse(const uint8_t *s, uint32_t n, struct addr *out)
{
	uint8_t b[16];

	if (n >= 2 && s[0] == '[') {
		if (s[n - 1] != ']' || !parse_v6(s + 1, n - 2, b))
			return 0;
		memcpy(out->b, b, 16);
		return 1;
	}
	if (parse_v4(s, n, b)) {
		*out = addr_v4((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]);
		return 1;
	}
	if (!parse_v6(s, n, b))
		return 0;
	memcpy(out->b, b, 16);
	return 1;
}

int addr_parse_str(const char *s, struct addr *out)
{
	return addr_parse((const uint8_t *)s, (uint32_t)strlen(s), out);
}

static uint32_t put_dec(char *s, unsigned v)
{
	uint32_t n = 0;
	if (v >= 100)
		s[n++] = (char)('0' + v / 100);
	if (v >= 10)
		s[n++] = (char)('0' + v / 10 % 10);
	s[n++] = (char)('0' + v % 10);
	return n;
}

uint32_t addr_fmt(char *s, const struct addr *a, int brackets)
{
	static const char hex[] = "0123456789abcdef";
	uint32_t n = 0;

	if (addr_is_v4(a)) {
		for (int i = 12; i < 16; i++) {
			n += put_dec(s + n, a->b[i]);
			if (i < 15)
				s[n++] = '.';
		}
		s[n] = 0;
		return n;
	}
	uint16_t g[8];
	for (int i = 0; i < 8; i++)
		g[i] = (uint16_t)(a->b[2 * i] << 8 | a->b[2 * i + 1]);
	/* RFC 5952 4.2: the longest run of two or more zero groups, the first
	 * one on a tie, becomes "::". */
	int best = -1, blen = 1;
	for (int i = 0; i < 8;) {
		if (g[i]) {
			i++;
			continue;
		}
		int j = i;
		while (j < 8 && !g[j])
			j++;
		if (j - i > blen) {
			best = i;
			blen = j - i;
		}
		i = j;
	}
	if (brackets)
		s[n++] = '[';
	for (int i = 0; i < 8; i++) {
		if (i == best) {
			s[n++] = ':';
			if (i == 0)
				s[n++] = ':';
			i += blen - 1;
			continue;
		}
		int lead = 1;
		for (int sh = 12; sh >= 0; sh -= 4) {
			unsigned d = (g[i] >> sh) & 15;
			if (lead && d == 0 && sh)
				continue;
			lead = 0;
			s[n++] = hex[d];
		}
		if (i < 7)
			s[n++] = ':';
	}
	if (brackets)
		s[n++] = ']';
	s[n] = 0;
	return n;
}

int addr_parse_state(const char *s, struct addr *a)
{
	unsigned v;
	char end;

	if (strlen(s) == 8 && sscanf(s, "%8x%c", &v, &end) == 1) {
		*a = addr_v4(v);
		return 0;
	}
	return addr_parse_str(s, a) ? 0 : -1;
}
