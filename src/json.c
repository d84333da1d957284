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

void json_ip(FILE *f, uint32_t ip, int zero_null)
{
	if (!ip && zero_null) {
		fputs("null", f);
		return;
	}
	fprintf(f, "\"%u.%u.%u.%u\"", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

void json_ipport(FILE *f, uint32_t ip, uint16_t port)
{
	fprintf(f, "\"%u.%u.%u.%u:%u\"", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255, port);
}
