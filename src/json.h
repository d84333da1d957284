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

#include "addr.h"

/* "..." with the escaping above. */
void json_str(FILE *f, const void *s, size_t n);
/* A NUL-terminated C string, same escaping. */
void json_cstr(FILE *f, const char *s);
/* "a.b.c.d" or "2001:db8::1"; null for the any address when `zero_null`. */
void json_ip(FILE *f, const struct addr *ip, int zero_null);
/* "a.b.c.d:port" or "[2001:db8::1]:port" */
void json_ipport(FILE *f, const struct addr *ip, uint16_t port);
/* The same for the v4-only modules' host-order uint32_t (docs/ipv6.md). */
static inline void json_ip4(FILE *f, uint32_t ip, int zero_null)
{
	struct addr a = addr_v4(ip);
	json_ip(f, &a, zero_null);
}
static inline void json_ipport4(FILE *f, uint32_t ip, uint16_t port)
{
	struct addr a = addr_v4(ip);
	json_ipport(f, &a, port);
}

#endif
