#include "edit.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void edit_init(struct edit_list *l)
{
	l->n = 0;
	l->overflow = 0;
	l->arena_used = 0;
}

int edit_add(struct edit_list *l, uint32_t off, uint32_t len, const char *rep, uint32_t rep_len)
{
	if (l->n >= EDIT_MAX || rep_len > EDIT_ARENA - l->arena_used) {
		l->overflow = 1;
		return -1;
	}
	memcpy(l->arena + l->arena_used, rep, rep_len);
	l->e[l->n++] = (struct edit){ off, len, l->arena_used, rep_len };
	l->arena_used += rep_len;
	return 0;
}

int edit_addf(struct edit_list *l, uint32_t off, uint32_t len, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(tmp)) {
		l->overflow = 1;
		return -1;
	}
	return edit_add(l, off, len, tmp, (uint32_t)n);
}

/* Decimal and dotted-quad without printf: these run for several spans of
 * every message, and vfprintf was the hottest libc function in the
 * daemon's profile (issue 11). */
uint32_t edit_fmt_u32(char *s, uint32_t v)
{
	char t[10];
	uint32_t n = 0;

	do {
		t[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (uint32_t i = 0; i < n; i++)
		s[i] = t[n - 1 - i];
	return n;
}

uint32_t edit_fmt_addr(char *s, const struct addr *a, int brackets)
{
	return addr_fmt(s, a, brackets);
}

int edit_add_hostport(struct edit_list *l, uint32_t off, uint32_t len, const char *host, uint32_t host_len,
		      int port)
{
	char tmp[64];

	if (host_len > sizeof(tmp) - 11) {
		l->overflow = 1;
		return -1;
	}
	memcpy(tmp, host, host_len);
	uint32_t n = host_len;
	if (port >= 0) {
		tmp[n++] = ':';
		n += edit_fmt_u32(tmp + n, (uint32_t)port);
	}
	return edit_add(l, off, len, tmp, n);
}

int edit_add_num(struct edit_list *l, uint32_t off, uint32_t len, uint32_t v)
{
	char tmp[10];

	return edit_add(l, off, len, tmp, edit_fmt_u32(tmp, v));
}

int64_t edit_delta(const struct edit_list *l, uint32_t off, uint32_t len)
{
	int64_t d = 0;

	for (int i = 0; i < l->n; i++)
		if (l->e[i].off >= off && l->e[i].off + l->e[i].len <= off + len)
			d += (int64_t)l->e[i].rep_len - l->e[i].len;
	return d;
}

int64_t edit_apply(struct edit_list *l, const uint8_t *in, uint32_t in_len,
		   uint8_t *out, uint32_t cap)
{
	uint32_t ip = 0, op = 0;

	if (l->overflow)
		return -1;
	/* Insertion sort: edits arrive nearly in order and there are few. */
	for (int i = 1; i < l->n; i++) {
		struct edit t = l->e[i];
		int j = i - 1;
		while (j >= 0 && l->e[j].off > t.off) {
			l->e[j + 1] = l->e[j];
			j--;
		}
		l->e[j + 1] = t;
	}
	for (int i = 0; i < l->n; i++) {
		const struct edit *e = &l->e[i];
		if (e->off < ip || e->off + e->len > in_len || e->off + e->len < e->off)
			return -1; /* overlap or outside the datagram */
		uint32_t keep = e->off - ip;
		if ((uint64_t)op + keep + e->rep_len > cap)
			return -1;
		memcpy(out + op, in + ip, keep);
		op += keep;
		memcpy(out + op, l->arena + e->rep_off, e->rep_len);
		op += e->rep_len;
		ip = e->off + e->len;
	}
	if ((uint64_t)op + (in_len - ip) > cap)
		return -1;
	memcpy(out + op, in + ip, in_len - ip);
	return op + (in_len - ip);
}
