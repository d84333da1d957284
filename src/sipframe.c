/* sipframe: Content-Length framing of a SIP stream. See sipframe.h. */
#include "sipframe.h"

#include <stddef.h>

void sipframe_reset(struct sipframe *f)
{
	f->scanned = 0;
	f->hend = 0;
	f->need = 0;
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Does the header line at b[p..e) name Content-Length (long or compact
 * form, RFC 3261 7.3.3)? On a match *v is where its value begins. */
static int is_clen(const uint8_t *b, uint32_t p, uint32_t e, uint32_t *v)
{
	static const char name[] = "content-length";
	uint32_t i = 0, q = p;

	while (q < e && name[i] && lower(b[q]) == name[i]) {
		q++;
		i++;
	}
	if (name[i] != 0) {
		/* not the long form: maybe the compact "l" */
		q = p;
		if (q < e && lower(b[q]) == 'l')
			q++;
		else
			return 0;
	}
	while (q < e && (b[q] == ' ' || b[q] == '\t'))
		q++;
	if (q >= e || b[q] != ':')
		return 0;
	*v = q + 1;
	return 1;
}

/* The value at b[v..e): LWS, 1-10 digits, LWS. -1 when it is not that. */
static int64_t clen_value(const uint8_t *b, uint32_t v, uint32_t e)
{
	int64_t n = 0;
	int digits = 0;

	while (v < e && (b[v] == ' ' || b[v] == '\t'))
		v++;
	while (v < e && b[v] >= '0' && b[v] <= '9') {
		if (++digits > 10)
			return -1;
		n = n * 10 + (b[v] - '0');
		v++;
	}
	while (v < e && (b[v] == ' ' || b[v] == '\t'))
		v++;
	return digits && v == e ? n : -1;
}

enum sipframe_rc sipframe_next(struct sipframe *f, const uint8_t *buf, uint32_t len,
			       uint32_t max, uint32_t *unit)
{
	*unit = 0;
	if (len == 0)
		return SIPFRAME_MORE;
	/* RFC 5626 3.5.1 / RFC 3261 7.5: CRLFs between messages, one at a time. */
	if (buf[0] == '\r') {
		if (len < 2)
			return SIPFRAME_MORE;
		if (buf[1] == '\n') {
			*unit = 2;
			return SIPFRAME_KEEPALIVE;
		}
	}

	if (f->need) {
		if (len < f->need)
			return SIPFRAME_MORE;
		*unit = f->need;
		return SIPFRAME_MESSAGE;
	}

	/* The blank line that ends the headers: resume where the last call
	 * stopped (3 bytes back, a CRLFCRLF may straddle the old end). */
	uint32_t i = f->scanned > 3 ? f->scanned - 3 : 0, hend = f->hend;
	uint32_t lim = len < max ? len : max;
	for (; !hend && i + 4 <= lim; i++) {
		if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n') {
			hend = i + 4;
			break;
		}
	}
	if (!hend) {
		f->scanned = lim;
		if (len >= max)
			return SIPFRAME_E_TOOBIG;
		return SIPFRAME_MORE;
	}
	f->scanned = f->hend = hend;

	/* Content-Length, from the header lines after the start line. */
	int64_t clen = -1;
	uint32_t p = 0;
	int prev_clen = 0;
	while (p < hend - 2) {
		uint32_t e = p;
		while (e + 1 < hend && !(buf[e] == '\r' && buf[e + 1] == '\n'))
			e++;
		if (p > 0) {
			uint32_t v;
			if (buf[p] == ' ' || buf[p] == '\t') {
				/* a folded continuation of Content-Length: refuse,
				 * rather than guess which digits count */
				if (prev_clen)
					return SIPFRAME_E_BADLEN;
			} else if (is_clen(buf, p, e, &v)) {
				int64_t n = clen_value(buf, v, e);
				if (n < 0 || (clen >= 0 && n != clen))
					return SIPFRAME_E_BADLEN;
				clen = n;
				prev_clen = 1;
				p = e + 2;
				continue;
			}
		}
		prev_clen = 0;
		p = e + 2;
	}
	if (clen < 0)
		return SIPFRAME_E_NOLEN;
	if ((uint64_t)hend + (uint64_t)clen > max)
		return SIPFRAME_E_TOOBIG;
	f->need = hend + (uint32_t)clen;
	if (len < f->need)
		return SIPFRAME_MORE;
	*unit = f->need;
	return SIPFRAME_MESSAGE;
}

const char *sipframe_strerror(enum sipframe_rc rc)
{
	switch (rc) {
	case SIPFRAME_MORE: return "incomplete";
	case SIPFRAME_MESSAGE: return "message";
	case SIPFRAME_KEEPALIVE: return "keep-alive";
	case SIPFRAME_E_NOLEN: return "no Content-Length on a stream (RFC 3261 18.3)";
	case SIPFRAME_E_BADLEN: return "unparsable or conflicting Content-Length";
	case SIPFRAME_E_TOOBIG: return "message larger than the connection buffer";
	}
	return "?";
}
