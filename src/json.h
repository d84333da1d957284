/* json: the few JSON writers sipalgctl's --json answers need. Pure: writes
 * to a stdio stream (the control socket's memstream), allocates nothing.
 *
 * Strings are written so that ANY bytes give valid JSON (RFC 8259) and the
 * original bytes can be recovered: printable ASCII is copied, except '"'
 * and '\\' which are escaped as \" and \\; every other byte (controls, DEL,
 * and each byte >= 0x80, whether or not it is part of valid UTF-8) is
 * written as \u00XX, i.e. the byte read as a code point U+0000..U+00FF.
 * A reader gets the Call-ID's bytes back by taking each code point of the
 * decoded string as one byte (Latin-1), and the output is pure ASCII. */
#ifndef SIPALGD_JSON_H
#define SIPALGD_JSON_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* "..." with the escaping above. */
void json_str(FILE *f, const void *s, size_t n);
/* A NUL-terminated C string, same escaping. */
void json_cstr(FILE *f, const char *s);
/* "a.b.c.d" (host byte order); null for 0 when `zero_null`. */
void json_ip(FILE *f, uint32_t ip, int zero_null);
/* "a.b.c.d:port" (host byte order) */
void json_ipport(FILE *f, uint32_t ip, uint16_t port);

#endif
