#include "json.h"

void json_str(FILE *f, const void *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = s;

	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			fputc('\\', f);
			fputc(c, f);
		} else if (c >= 0x20 && c < 0x7f) {
			fputc(c, f);
		} else {
			/* Controls must be escaped (RFC 8259 s7); bytes >= 0x80 are
			 * escaped too, so that invalid UTF-8 cannot reach the reader
			 * and the value stays byte-exact (see json.h). */
			fputs("\\u00", f);
			fputc(hex[c >> 4], f);
			fputc(hex[c & 15], f);
		}
	}
	fputc('"', f);
}

void json_cstr(FILE *f, const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	json_str(f, s, n);
}

void json_ip(FILE *f, const struct addr *ip, int zero_null)
{
	char a[ADDR_STRLEN];

	if (addr_is_any(ip) && zero_null) {
		fputs("null", f);
		return;
	}
	addr_fmt(a, ip, 0);
	fprintf(f, "\"%s\"", a);
}

void json_ipport(FILE *f, const struct addr *ip, uint16_t port)
{
	char a[ADDR_STRLEN];

	addr_fmt(a, ip, 1);
	fprintf(f, "\"%s:%u\"", a, port);
}
