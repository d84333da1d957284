/* edit: a list of byte-span replacements on one datagram, applied in one
 * pass into an output buffer. Bytes outside the spans are copied unchanged,
 * which is what keeps everything we do not mean to touch byte for byte. */
#ifndef SIPALGD_EDIT_H
#define SIPALGD_EDIT_H
#include <stdint.h>

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
/* Net size change of the edits that fall inside [off, off+len). */
int64_t edit_delta(const struct edit_list *l, uint32_t off, uint32_t len);
/* Apply to `in`, writing to `out`. Returns the new length, or -1 when the
 * list overflowed, edits overlap or out is too small. */
int64_t edit_apply(struct edit_list *l, const uint8_t *in, uint32_t in_len,
		   uint8_t *out, uint32_t cap);

#endif
