/* edit: a list of byte-span replacements on one datagram, applied in one
 * pass into an output buffer. Bytes outside the spans are copied unchanged,
 * which is what keeps everything we do not mean to touch byte for byte. */
#ifndef SIPALGD_EDIT_H
#define SIPALGD_EDIT_H
#include <stdint.h>

#include "addr.h"

#define EDIT_MAX 256
#define EDIT_ARENA 8192

struct edit {
	uint32_t off, len;     /* span of the input replaced */
	uint32_t rep_off;      /* replacement bytes in the arena */
	uint32_t rep_len;
};

struct edit_list {
	struct edit e[EDIT_MAX];
	int n;
	int overflow;          /* an add did not fit: the list must not be applied */
	uint32_t arena_used;
	char arena[EDIT_ARENA];
};

void edit_init(struct edit_list *l);
/* Replace [off, off+len) by rep. Overlapping an earlier edit sets overflow. */
int edit_add(struct edit_list *l, uint32_t off, uint32_t len, const char *rep, uint32_t rep_len);
int edit_addf(struct edit_list *l, uint32_t off, uint32_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The same without printf (the packet path): host, then ":port" unless
 * port < 0; a decimal number. */
int edit_add_hostport(struct edit_list *l, uint32_t off, uint32_t len, const char *host, uint32_t host_len,
		      int port);
int edit_add_num(struct edit_list *l, uint32_t off, uint32_t len, uint32_t v);
/* Decimal of v into s (at most 10 bytes, no NUL); an address into s (at
 * most ADDR_STRLEN bytes with the NUL): IPv6 in brackets where a URI or
 * Via needs them (`brackets`), bare in SDP c=/o= (RFC 4566). Both return
 * the length. */
uint32_t edit_fmt_u32(char *s, uint32_t v);
uint32_t edit_fmt_addr(char *s, const struct addr *a, int brackets);
/* Net size change of the edits that fall inside [off, off+len). */
int64_t edit_delta(const struct edit_list *l, uint32_t off, uint32_t len);
/* Apply to `in`, writing to `out`. Returns the new length, or -1 when the
 * list overflowed, edits overlap or out is too small. */
int64_t edit_apply(struct edit_list *l, const uint8_t *in, uint32_t in_len,
		   uint8_t *out, uint32_t cap);

#endif
