/* calllog: the per-call ring keeps the last CALLLOG_ENTRIES messages,
 * oldest first, cuts long spans, skips spans rewritten to the same bytes,
 * forgets a slot's past when a new dialog takes it, and its JSON parses
 * (python3 json) whatever bytes the message holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "calllog.h"
#include "edit.h"

static struct edit_list ed;

static void note(uint32_t slot, uint64_t t, const char *msg)
{
	struct calllog_msg m = {
		.payload = (const uint8_t *)msg, .len = (uint32_t)strlen(msg),
		.ed = &ed, .outbound = 1, .src = addr_v4(0xc0a8010a), .dst = addr_v4(0xcb00710a), .sport = 5060, .dport = 5060,
	};
	while (m.line_len < m.len && msg[m.line_len] != '\r')
		m.line_len++;
	calllog_note(slot, t, &m);
}

static char *json_of(uint32_t slot, uint64_t now)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	fputc('{', f);
	fputs("\"x\":1", f);
	calllog_json(f, slot, now);
	fputc('}', f);
	fclose(f);
	return buf;
}

static int py_check(const char *json, const char *expr)
{
	/* The expression goes by the environment: it holds quotes. */
	setenv("CALLLOG_EXPR", expr, 1);
	FILE *p = popen("python3 -c 'import json,os,sys; v=json.load(sys.stdin); "
			"sys.exit(0 if eval(os.environ[\"CALLLOG_EXPR\"]) else 1)'", "w");
	if (!p)
		return -1;
	fputs(json, p);
	return pclose(p);
}

static void test_ring(void **st)
{
	char msg[256];

	assert_int_equal(calllog_init(4), 0);
	for (int i = 0; i < CALLLOG_ENTRIES + 3; i++) {
		edit_init(&ed);
		/* "INVITE" at 0: a same-bytes span (skipped); the address: a real one */
		snprintf(msg, sizeof(msg), "INVITE sip:%d@x SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5060\r\n\r\n", i);
		edit_add(&ed, 0, 6, "INVITE", 6);
		const char *a = strstr(msg, "192.168.1.10");
		edit_add(&ed, (uint32_t)(a - msg), 12, "203.0.113.1\x01\"\\", 14);
		note(1, 1000 + (uint64_t)i, msg);
	}
	char *j = json_of(1, 2000);
	assert_int_equal(py_check(j, "len(v['messages'])==8 and v['messages'][0]['start_line']=='INVITE sip:3@x SIP/2.0'"
				     " and v['messages'][-1]['start_line']=='INVITE sip:10@x SIP/2.0'"
				     " and v['messages'][0]['rewrites']==[{'header':'Via','before':'192.168.1.10','after':'203.0.113.1\\x01\"\\\\','cut':False}]"
				     " and v['messages'][0]['rewrites_total']==1 and v['messages'][0]['ago_ms']==997"), 0);
	free(j);
	/* a new dialog in the slot: nothing of the old one */
	calllog_reset(1);
	j = json_of(1, 2000);
	assert_int_equal(py_check(j, "v['messages']==[]"), 0);
	free(j);
	/* other slots untouched; out of range is ignored */
	j = json_of(2, 2000);
	assert_int_equal(py_check(j, "v['messages']==[]"), 0);
	free(j);
	note(99, 1, "X");
	calllog_fini();
}

static void test_cut_and_untracked(void **st)
{
	char msg[512];

	assert_int_equal(calllog_init(2), 0);
	edit_init(&ed);
	memset(msg, 'a', 200);
	memcpy(msg + 200, "\r\n\r\n", 5);
	edit_add(&ed, 10, 100, "b", 1);
	note(0, 5, msg);
	char *j = json_of(0, 5);
	assert_int_equal(py_check(j, "v['messages'][0]['rewrites'][0]['cut'] and len(v['messages'][0]['rewrites'][0]['before'])==32"
				     " and len(v['messages'][0]['start_line'])==64"), 0);
	free(j);
	struct calllog_msg m = { .payload = (const uint8_t *)"INVITE x SIP/2.0", .len = 16, .line_len = 16,
				 .dropped = 1, .reason = "why" };
	calllog_note_untracked(7, &m, (const uint8_t *)"abc\xff@h", 6);
	assert_int_equal(calllog_untracked_match("abc"), 1);
	assert_int_equal(calllog_untracked_match("abd"), 0);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	calllog_untracked_json(f, "abc", 10);
	fclose(f);
	assert_int_equal(py_check(buf, "v[0]['call_id']=='abc\\xff@h' and v[0]['message']['verdict']=='drop' and v[0]['message']['reason']=='why'"), 0);
	free(buf);
	calllog_fini();
}

/* Long messages: the ring is bytes, not slots (1 KiB a call), so fewer
 * are kept, still the newest, whole and in order, across many wraps. */
static void test_bytes_wrap(void **st)
{
	char msg[512];

	assert_int_equal(calllog_init(1), 0);
	for (int i = 0; i < 16; i++) {
		edit_init(&ed);
		int n = snprintf(msg, sizeof(msg), "BYE sip:%d@x SIP/2.0\r\n", i);
		/* four 40-byte spans each way: each record ~354 bytes (two
		 * 16-byte addresses since IPv6), so two fit in the 1 KB ring */
		memset(msg + n, 'a' + i % 26, 160);
		memcpy(msg + n + 160, "\r\n\r\n", 5);
		for (int k = 0; k < 4; k++)
			edit_add(&ed, (uint32_t)(n + 40 * k), 40, "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ", 40);
		note(0, (uint64_t)i, msg);
		{ /* every time: records wrap at every place in the ring */
			char *j = json_of(0, 1000);
			char expr[512];
			int want = i < 1 ? i + 1 : 2;
			snprintf(expr, sizeof(expr),
				 "len(v['messages'])==%d and v['messages'][-1]['start_line']=='BYE sip:%d@x SIP/2.0'"
				 " and v['messages'][0]['start_line']=='BYE sip:%d@x SIP/2.0'"
				 " and all(len(m['rewrites'])==4 and m['rewrites_total']==4 and m['rewrites'][3]['cut']"
				 " and m['rewrites'][3]['after']=='Z'*32 for m in v['messages'])"
				 " and v['messages'][-1]['rewrites'][3]['before']=='%c'*32",
				 want, i, i - want + 1, 'a' + i % 26);
			assert_int_equal(py_check(j, expr), 0);
			free(j);
		}
	}
	calllog_fini();
}

/* Each rewrite names where it was: the header (long or compact form, a
 * folded line's header), the start line, or the SDP line. */
static void test_where(void **st)
{
	static const char msg[] =
		"INVITE sip:bob@192.168.1.10 SIP/2.0\r\n"
		"Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK1\r\n"
		"m: <sip:a@192.168.1.10:5060>\r\n"
		"Call-ID: x@192.168.1.10\r\n"
		"P-Asserted-Identity: <sip:a@192.168.1.10>,\r\n"
		"  <sip:b@192.168.1.10>\r\n"
		"X-Odd: 192.168.1.10\r\n"
		"Content-Length: 99\r\n"
		"\r\n"
		"v=0\r\no=- 1 1 IN IP4 192.168.1.10\r\nc=IN IP4 192.168.1.10\r\n"
		"m=audio 4000 RTP/AVP 0\r\na=rtcp:4001 IN IP4 192.168.1.10\r\n";
	/* the n-th "192.168.1.10" in msg, and where it is */
	static const char *const want[] = { "Request-URI", "Via", "Contact", "Call-ID", "P-Asserted-Identity",
					    "P-Asserted-Identity", "header", "SDP o=", "SDP c=", "SDP a=rtcp" };
	char expr[1024];
	int off = 0;

	assert_int_equal(calllog_init(1), 0);
	edit_init(&ed);
	for (const char *a = msg; (a = strstr(a, "192.168.1.10")) != NULL; a += 12)
		edit_add(&ed, (uint32_t)(a - msg), 12, "203.0.113.1", 11);
	const char *port = strstr(msg, "4000");
	edit_add(&ed, (uint32_t)(port - msg), 4, "5000", 4);
	const char *cl = strstr(msg, "99");
	edit_add(&ed, (uint32_t)(cl - msg), 2, "98", 2);
	note(0, 1, msg);
	char *j = json_of(0, 1);
	off += snprintf(expr, sizeof(expr), "[r['header'] for r in v['messages'][0]['rewrites']]==[");
	/* CL_EDITS (8) kept, in the order added */
	for (int i = 0; i < 8; i++)
		off += snprintf(expr + off, sizeof(expr) - (size_t)off, "%s'%s'", i ? "," : "", want[i]);
	snprintf(expr + off, sizeof(expr) - (size_t)off, "] and v['messages'][0]['rewrites_total']==12");
	assert_int_equal(py_check(j, expr), 0);
	free(j);
	/* the rest, and the text form */
	edit_init(&ed);
	edit_add(&ed, (uint32_t)(strstr(msg, "IN IP4 192.168.1.10\r\nm=") - msg) + 7, 12, "203.0.113.1", 11);
	edit_add(&ed, (uint32_t)(port - msg), 4, "5000", 4);
	edit_add(&ed, (uint32_t)(cl - msg), 2, "98", 2);
	edit_add(&ed, (uint32_t)(strstr(msg, "a=rtcp:") - msg) + 7, 4, "5001", 4);
	note(0, 2, msg);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	calllog_text(f, 0, 2);
	fclose(f);
	assert_non_null(strstr(buf, "rewrote SDP c= '192.168.1.10' -> '203.0.113.1'"));
	assert_non_null(strstr(buf, "rewrote SDP m= '4000' -> '5000'"));
	assert_non_null(strstr(buf, "rewrote Content-Length '99' -> '98'"));
	assert_non_null(strstr(buf, "rewrote SDP a=rtcp '4001' -> '5001'"));
	assert_non_null(strstr(buf, "rewrote Request-URI '192.168.1.10' -> '203.0.113.1'"));
	free(buf);
	/* a response's start line */
	static const char resp[] = "SIP/2.0 200 OK 192.168.1.10\r\nl: 0\r\n\r\n";
	edit_init(&ed);
	edit_add(&ed, 15, 12, "203.0.113.1", 11);
	edit_add(&ed, (uint32_t)(strstr(resp, "l: 0") - resp) + 3, 1, "1", 1);
	note(0, 3, resp);
	j = json_of(0, 3);
	assert_int_equal(py_check(j, "[r['header'] for r in v['messages'][-1]['rewrites']]==['status line','Content-Length']"), 0);
	free(j);
	calllog_fini();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring),
		cmocka_unit_test(test_cut_and_untracked),
		cmocka_unit_test(test_bytes_wrap),
		cmocka_unit_test(test_where),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
