/* sipframe: Content-Length framing of a SIP stream across any segmentation
 * (RFC 3261 18.3), CRLF keep-alives through (RFC 5626 3.5.1), and what
 * cannot be framed refused with the documented error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "sipframe.h"

#define MAX 4096

static const char inv[] =
	"INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
	"Call-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length:   14\r\n\r\n"
	"v=0\r\no=- 1 1\r\n";
static const char ok200[] =
	"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK1\r\nl: 0\r\n\r\n";

/* A connection's receive side, as tcprelay keeps it: bytes arrive in
 * chunks, whole units leave from the front. Records units and errors. */
struct rx {
	uint8_t buf[MAX * 4];
	uint32_t len;
	struct sipframe f;
	char units[64][MAX];
	uint32_t ulen[64];
	int kinds[64];
	int n;
	int err;
};

static void rx_feed(struct rx *r, const char *p, uint32_t n)
{
	memcpy(r->buf + r->len, p, n);
	r->len += n;
	for (;;) {
		uint32_t u;
		enum sipframe_rc rc = sipframe_next(&r->f, r->buf, r->len, MAX, &u);
		if (rc < 0) {
			r->err = rc;
			return;
		}
		if (rc == SIPFRAME_MORE)
			return;
		assert_true(u > 0 && u <= r->len);
		memcpy(r->units[r->n], r->buf, u);
		r->ulen[r->n] = u;
		r->kinds[r->n++] = rc;
		memmove(r->buf, r->buf + u, r->len - u);
		r->len -= u;
		sipframe_reset(&r->f);
	}
}

static struct rx r;

static void rx_init(void) { memset(&r, 0, sizeof(r)); }

static void unit_is(int i, int kind, const char *want)
{
	assert_int_equal(r.kinds[i], kind);
	assert_int_equal(r.ulen[i], strlen(want));
	assert_memory_equal(r.units[i], want, strlen(want));
}

static void test_several_in_one_chunk(void **st)
{
	(void)st;
	char s[MAX];
	int n = snprintf(s, sizeof(s), "%s\r\n\r\n%s%s\r\n", inv, ok200, inv);
	rx_init();
	rx_feed(&r, s, (uint32_t)n);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 6);
	unit_is(0, SIPFRAME_MESSAGE, inv);
	unit_is(1, SIPFRAME_KEEPALIVE, "\r\n");  /* ping: CRLFCRLF */
	unit_is(2, SIPFRAME_KEEPALIVE, "\r\n");
	unit_is(3, SIPFRAME_MESSAGE, ok200);
	unit_is(4, SIPFRAME_MESSAGE, inv);
	unit_is(5, SIPFRAME_KEEPALIVE, "\r\n");  /* pong: CRLF */
	assert_int_equal(r.len, 0);
}

static void test_one_byte_per_chunk(void **st)
{
	(void)st;
	char s[MAX];
	int n = snprintf(s, sizeof(s), "%s%s\r\n\r\n", inv, ok200);
	rx_init();
	for (int i = 0; i < n; i++) {
		rx_feed(&r, s + i, 1);
		assert_int_equal(r.err, 0);
	}
	assert_int_equal(r.n, 4);
	unit_is(0, SIPFRAME_MESSAGE, inv);
	unit_is(1, SIPFRAME_MESSAGE, ok200);
	unit_is(2, SIPFRAME_KEEPALIVE, "\r\n");
	unit_is(3, SIPFRAME_KEEPALIVE, "\r\n");
}

/* Every split offset of two messages in two chunks, and in three. */
static void test_every_split_offset(void **st)
{
	(void)st;
	char s[MAX];
	int n = snprintf(s, sizeof(s), "%s%s", inv, ok200);
	for (int a = 0; a <= n; a++) {
		rx_init();
		rx_feed(&r, s, (uint32_t)a);
		rx_feed(&r, s + a, (uint32_t)(n - a));
		assert_int_equal(r.err, 0);
		assert_int_equal(r.n, 2);
		unit_is(0, SIPFRAME_MESSAGE, inv);
		unit_is(1, SIPFRAME_MESSAGE, ok200);
	}
	for (int a = 0; a <= n; a += 7)
		for (int b = a; b <= n; b += 5) {
			rx_init();
			rx_feed(&r, s, (uint32_t)a);
			rx_feed(&r, s + a, (uint32_t)(b - a));
			rx_feed(&r, s + b, (uint32_t)(n - b));
			assert_int_equal(r.n, 2);
			unit_is(1, SIPFRAME_MESSAGE, ok200);
		}
}

/* A large INVITE (RFC 3261 18.1.1: over 1300 bytes goes to TCP) across
 * many segments of uneven size. */
static void test_large_many_chunks(void **st)
{
	(void)st;
	static char s[MAX], body[3000];
	memset(body, 'a', sizeof(body));
	for (int i = 70; i < (int)sizeof(body); i += 72)
		body[i] = '\r', body[i + 1] = '\n';
	int n = snprintf(s, sizeof(s), "INVITE sip:b@x SIP/2.0\r\nContent-Length: %zu\r\n\r\n%.*s",
			 sizeof(body), (int)sizeof(body), body);
	rx_init();
	for (int p = 0, k = 1; p < n; k = k * 3 % 101 + 1) {
		int c = p + k > n ? n - p : k;
		rx_feed(&r, s + p, (uint32_t)c);
		p += c;
	}
	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.ulen[0], n);
}

static int first_error(const char *s)
{
	struct sipframe f;
	uint32_t u;
	sipframe_reset(&f);
	return sipframe_next(&f, (const uint8_t *)s, (uint32_t)strlen(s), MAX, &u);
}

static void test_bad_length(void **st)
{
	(void)st;
	assert_int_equal(first_error("OPTIONS sip:x SIP/2.0\r\nVia: x\r\n\r\n"), SIPFRAME_E_NOLEN);
	assert_int_equal(first_error("OPTIONS sip:x SIP/2.0\r\nContent-Length: -1\r\n\r\n"), SIPFRAME_E_BADLEN);
	assert_int_equal(first_error("OPTIONS sip:x SIP/2.0\r\nContent-Length: 1x\r\n\r\n"), SIPFRAME_E_BADLEN);
	assert_int_equal(first_error("OPTIONS sip:x SIP/2.0\r\nContent-Length:\r\n\r\n"), SIPFRAME_E_BADLEN);
	assert_int_equal(first_error("OPTIONS sip:x SIP/2.0\r\nContent-Length: 99999999999\r\n\r\n"),
			 SIPFRAME_E_BADLEN);
	/* two that disagree: which one the far side believes is a smuggling vector */
	assert_int_equal(first_error("OPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\nl: 4\r\n\r\nabcd"),
			 SIPFRAME_E_BADLEN);
	assert_int_equal(first_error("OPTIONS sip:x SIP/2.0\r\nContent-Length: 4\r\n 5\r\n\r\nabcd"),
			 SIPFRAME_E_BADLEN);
	/* agreeing duplicates and odd case are fine */
	assert_int_equal(first_error("OPTIONS sip:x SIP/2.0\r\ncOnTeNt-LeNgTh : 4\r\nl:4\r\n\r\nabcd"),
			 SIPFRAME_MESSAGE);
	/* names that only start like it are not it */
	assert_int_equal(first_error("OPTIONS sip:x SIP/2.0\r\nContent-Lengthy: 4\r\nLocation: 3\r\nl: 0\r\n\r\n"),
			 SIPFRAME_MESSAGE);
	/* the start line is not a header */
	assert_int_equal(first_error("l: 5 sip:x SIP/2.0\r\nVia: x\r\n\r\n"), SIPFRAME_E_NOLEN);
}

static void test_oversized(void **st)
{
	(void)st;
	static char s[MAX * 2];
	/* a Content-Length that points past the bound */
	assert_int_equal(first_error("OPTIONS sip:x SIP/2.0\r\nContent-Length: 4090\r\n\r\n"), SIPFRAME_E_TOOBIG);
	/* headers that never end */
	memset(s, 'a', sizeof(s) - 1);
	memcpy(s, "OPTIONS sip:x SIP/2.0\r\nX: ", 26);
	rx_init();
	for (uint32_t p = 0; p < sizeof(s) - 1 && !r.err; p += 100)
		rx_feed(&r, s + p, 100);
	assert_int_equal(r.err, SIPFRAME_E_TOOBIG);
	assert_true(r.len <= MAX + 100);
	/* just under the bound is fine */
	int hl = snprintf(s, sizeof(s), "OPTIONS sip:x SIP/2.0\r\nContent-Length: %d\r\n\r\n", 4000);
	assert_int_equal(first_error(s), SIPFRAME_MORE);
	assert_true(hl + 4000 <= MAX);
}

static void test_lone_cr_waits(void **st)
{
	(void)st;
	struct sipframe f;
	uint32_t u;
	sipframe_reset(&f);
	assert_int_equal(sipframe_next(&f, (const uint8_t *)"\r", 1, MAX, &u), SIPFRAME_MORE);
	assert_int_equal(sipframe_next(&f, (const uint8_t *)"\r\n", 2, MAX, &u), SIPFRAME_KEEPALIVE);
	assert_int_equal(u, 2);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(test_several_in_one_chunk),
		cmocka_unit_test(test_one_byte_per_chunk),
		cmocka_unit_test(test_every_split_offset),
		cmocka_unit_test(test_large_many_chunks),
		cmocka_unit_test(test_bad_length),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_lone_cr_waits),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
