/* The policy on whole datagrams: what leaves the router, byte for byte, and
 * which kernel changes were asked for (recorded by stubs.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "alg.h"
#include "conf.h"
#include "stats.h"
#include "stubs.h"
#include "testpkt.h"

#define LAN1 0xc0a8010a /* 192.168.1.10 */
#define LAN2 0xc0a8010b /* 192.168.1.11 */
#define REM  0xc6336401 /* 198.51.100.1 */
#define PUB  0xcb007101 /* 203.0.113.1 */

static struct conf cf;
static uint8_t pkt[70000], out[70000];
static char got[70000];
static uint64_t now = 1000000;

/* Run one datagram; returns the payload that leaves (rewritten or not). */
static const char *run(uint32_t src, uint16_t sp, uint32_t dst, uint16_t dp, const char *msg, int *verdict)
{
	uint32_t len = tp_udp4(pkt, src, sp, dst, dp, msg, (uint32_t)strlen(msg)), olen = 0;
	int v = alg_packet(pkt, len, out, sizeof(out), &olen, now);
	if (verdict)
		*verdict = v;
	if (!olen) {
		snprintf(got, sizeof(got), "%s", msg);
		return got;
	}
	/* lengths and checksums must be right */
	assert_int_equal((out[2] << 8 | out[3]), olen);
	assert_int_equal(tp_csum(out, 20, 0), 0);
	uint32_t ulen = (uint32_t)(out[24] << 8 | out[25]);
	assert_int_equal(ulen, olen - 20);
	memcpy(got, out + 28, olen - 28);
	got[olen - 28] = 0;
	return got;
}

static int setup(void **st)
{
	(void)st;
	conf_defaults(&cf);
	strcpy(cf.wan_if, "wan");
	cf.public_ip = PUB;
	cf.lan[0] = conf_net_v4(0xc0a80100, 24);
	cf.n_lan = 1;
	cf.media_other_hosts = 1;
	stub_reset();
	stub_ct_snat_found = 0;
	memset(stats, 0, sizeof(stats));
	return alg_init(&cf, a4(PUB));
}

/* A public address longer than the private one: bodies grow. */
static int setup_long_public(void **st)
{
	setup(st);
	alg_fini();
	cf.public_ip = 0xcb007164; /* 203.0.113.100 */
	return alg_init(&cf, a4(cf.public_ip));
}

static int teardown(void **st)
{
	(void)st;
	alg_fini();
	return 0;
}

static const char *invite1 =
	"INVITE sip:bob@example.com SIP/2.0\r\n"
	"Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK776asdhds;rport\r\n"
	"Max-Forwards: 70\r\n"
	"To: Bob <sip:bob@example.com>\r\n"
	"From: Alice <sip:alice@example.com>;tag=1928301774\r\n"
	"Call-ID: a84b4c76e66710@192.168.1.10\r\n"
	"CSeq: 314159 INVITE\r\n"
	"Contact: <sip:alice@192.168.1.10:5060>\r\n"
	"X-Unknown:   keep   me  \r\n"
	"Content-Type: application/sdp\r\n"
	"Content-Length: 138\r\n"
	"\r\n"
	"v=0\r\n"
	"o=alice 2890844526 2890844526 IN IP4 192.168.1.10\r\n"
	"s=-\r\n"
	"c=IN IP4 192.168.1.10\r\n"
	"t=0 0\r\n"
	"m=audio 10000 RTP/AVP 0\r\n"
	"a=rtpmap:0 PCMU/8000\r\n";

static const char *invite1_out =
	"INVITE sip:bob@example.com SIP/2.0\r\n"
	"Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK776asdhds;rport\r\n"
	"Max-Forwards: 70\r\n"
	"To: Bob <sip:bob@example.com>\r\n"
	"From: Alice <sip:alice@example.com>;tag=1928301774\r\n"
	"Call-ID: a84b4c76e66710@203.0.113.1\r\n"
	"CSeq: 314159 INVITE\r\n"
	"Contact: <sip:alice@203.0.113.1:5060>\r\n"
	"X-Unknown:   keep   me  \r\n"
	"Content-Type: application/sdp\r\n"
	"Content-Length: 136\r\n"
	"\r\n"
	"v=0\r\n"
	"o=alice 2890844526 2890844526 IN IP4 203.0.113.1\r\n"
	"s=-\r\n"
	"c=IN IP4 203.0.113.1\r\n"
	"t=0 0\r\n"
	"m=audio 10000 RTP/AVP 0\r\n"
	"a=rtpmap:0 PCMU/8000\r\n";

static void test_invite_rewritten_byte_for_byte(void **st)
{
	(void)st;
	int v;
	const char *o = run(LAN1, 5060, REM, 5060, invite1, &v);
	assert_int_equal(v, ALG_ACCEPT);
	assert_string_equal(o, invite1_out);
	assert_non_null(strstr(stub_log, "snat+ 192.168.1.10:5060 203.0.113.1:5060\n"));
	assert_non_null(strstr(stub_log, "snat+ 192.168.1.10:10000 203.0.113.1:10000\n"));
	assert_non_null(strstr(stub_log, "snat+ 192.168.1.10:10001 203.0.113.1:10001\n"));
	/* pinhole restricted to the signalling peer until the answer names media */
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.1:10000 192.168.1.10:10000\n"));
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.1:10001 192.168.1.10:10001\n"));
	assert_int_equal(stats[ST_dialogs], 1);
	assert_int_equal(stats[ST_pinholes], 1);
}

/* Our own rewrite queued again (a base chain added before the diversion
 * while the INVITE waited: src/alg.c): passed as it is, no second dialog,
 * no pinhole refused, counted. The phone's retransmission (its own bytes)
 * is still a retransmission; a third pass is an ordinary datagram. */
static void test_own_rewrite_requeued(void **st)
{
	(void)st;
	int v;
	uint32_t len, olen = 0;
	static uint8_t again[70000];

	run(LAN1, 5060, REM, 5060, invite1, &v);
	assert_int_equal(v, ALG_ACCEPT);
	assert_int_equal(stats[ST_dialogs], 1);
	len = (uint32_t)((out[2] << 8) | out[3]);
	memcpy(again, out, len);
	uint64_t refused = stats[ST_pinholes_refused];
	v = alg_packet(again, len, out, sizeof(out), &olen, now + 3);
	assert_int_equal(v, ALG_ACCEPT);
	assert_int_equal(olen, 0);
	assert_int_equal(stats[ST_sip_requeued], 1);
	assert_int_equal(stats[ST_dialogs], 1);
	assert_int_equal(stats[ST_pinholes_refused], refused);
	/* the phone's retransmission is no copy of ours */
	assert_string_equal(run(LAN1, 5060, REM, 5060, invite1, &v), invite1_out);
	assert_int_equal(stats[ST_sip_requeued], 1);
	assert_int_equal(stats[ST_dialogs], 1);
	/* long after: not taken for ours */
	now += 10000;
	v = alg_packet(again, len, out, sizeof(out), &olen, now);
	assert_int_equal(stats[ST_sip_requeued], 1);
}

static const char *ok200 =
	"SIP/2.0 200 OK\r\n"
	"Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK776asdhds;rport=5060;received=203.0.113.1\r\n"
	"To: Bob <sip:bob@example.com>;tag=a6c85cf\r\n"
	"From: Alice <sip:alice@example.com>;tag=1928301774\r\n"
	"Call-ID: a84b4c76e66710@203.0.113.1\r\n"
	"CSeq: 314159 INVITE\r\n"
	"Contact: <sip:bob@198.51.100.1>\r\n"
	"Content-Type: application/sdp\r\n"
	"Content-Length: 135\r\n"
	"\r\n"
	"v=0\r\n"
	"o=bob 2808844564 2808844564 IN IP4 198.51.100.7\r\n"
	"s=-\r\n"
	"c=IN IP4 198.51.100.7\r\n"
	"t=0 0\r\n"
	"m=audio 3456 RTP/AVP 0\r\n"
	"a=rtpmap:0 PCMU/8000\r\n";

static void test_response_restores_via_and_moves_pinhole(void **st)
{
	(void)st;
	run(LAN1, 5060, REM, 5060, invite1, NULL);
	stub_reset();
	const char *o = run(REM, 5060, LAN1, 5060, ok200, NULL);
	assert_non_null(strstr(o, "Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK776asdhds;rport=5060;received=192.168.1.10\r\n"));
	assert_non_null(strstr(o, "Call-ID: a84b4c76e66710@192.168.1.10\r\n"));
	/* the SDP from the WAN reaches the phone unaltered */
	assert_non_null(strstr(o, "\r\n\r\nv=0\r\no=bob 2808844564 2808844564 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 3456 RTP/AVP 0\r\n"));
	assert_non_null(strstr(o, "Content-Length: 135\r\n"));
	/* answer: media server's address replaces the signalling peer */
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.7:10000 192.168.1.10:10000\n"));
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.1:10000"));
	assert_int_equal(stats[ST_dialogs], 1);

	/* BYE from the phone, 200 from the remote: everything closes */
	const char *bye =
		"BYE sip:bob@198.51.100.1 SIP/2.0\r\n"
		"Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKnashds7\r\n"
		"To: Bob <sip:bob@example.com>;tag=a6c85cf\r\n"
		"From: Alice <sip:alice@example.com>;tag=1928301774\r\n"
		"Call-ID: a84b4c76e66710@192.168.1.10\r\n"
		"CSeq: 231 BYE\r\n"
		"Content-Length: 0\r\n\r\n";
	const char *bye200 =
		"SIP/2.0 200 OK\r\n"
		"Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKnashds7\r\n"
		"To: Bob <sip:bob@example.com>;tag=a6c85cf\r\n"
		"From: Alice <sip:alice@example.com>;tag=1928301774\r\n"
		"Call-ID: a84b4c76e66710@203.0.113.1\r\n"
		"CSeq: 231 BYE\r\n"
		"Content-Length: 0\r\n\r\n";
	run(LAN1, 5060, REM, 5060, bye, NULL);
	assert_int_equal(stats[ST_dialogs], 1);
	stub_reset();
	o = run(REM, 5060, LAN1, 5060, bye200, NULL);
	assert_non_null(strstr(o, "Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKnashds7\r\n"));
	assert_int_equal(stats[ST_dialogs], 0);
	assert_int_equal(stats[ST_pinholes], 0);
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.7:10000"));
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.7:10001"));
	assert_non_null(strstr(stub_log, "ct- 192.168.1.10:10000 198.51.100.7:3456\n"));
	assert_non_null(strstr(stub_log, "ct- 192.168.1.10:10001 198.51.100.7:3457\n"));
	assert_non_null(strstr(stub_log, "snat- 192.168.1.10:10000"));
}

static void test_two_phones_same_ports(void **st)
{
	(void)st;
	char inv2[4096];
	run(LAN1, 5060, REM, 5060, invite1, NULL);
	/* phone 2: same ports, same Call-ID host part differs */
	snprintf(inv2, sizeof(inv2), "%s", invite1);
	for (char *p = inv2; (p = strstr(p, "192.168.1.10")); p++)
		p[11] = '1';
	const char *o = run(LAN2, 5060, REM, 5060, inv2, NULL);
	assert_null(strstr(o, "192.168.1."));
	assert_null(strstr(o, "m=audio 10000 "));
	assert_null(strstr(o, "203.0.113.1:5060;"));
	assert_int_equal(stats[ST_dialogs], 2);
	assert_int_equal(stats[ST_pinholes], 2);
	assert_int_equal(stats[ST_bindings], 4);
}

static void test_compact_headers_and_growth(void **st)
{
	(void)st;
	const char *in =
		"INVITE sip:bob@example.com SIP/2.0\r\n"
		"v: SIP/2.0/UDP 192.168.1.5;branch=z9hG4bKcomp\r\n"
		"t: <sip:bob@example.com>\r\n"
		"f: <sip:a@example.com>;tag=x1\r\n"
		"i: c1@x\r\n"
		"CSeq: 1 INVITE\r\n"
		"m: <sip:a@192.168.1.5>\r\n"
		"c: application/sdp\r\n"
		"l: 91\r\n"
		"\r\n"
		"v=0\r\n"
		"o=- 1 1 IN IP4 192.168.1.5\r\n"
		"s=-\r\n"
		"c=IN IP4 192.168.1.5\r\n"
		"t=0 0\r\n"
		"m=audio 4000 RTP/AVP 0\r\n";
	const char *want =
		"INVITE sip:bob@example.com SIP/2.0\r\n"
		"v: SIP/2.0/UDP 203.0.113.100;branch=z9hG4bKcomp\r\n"
		"t: <sip:bob@example.com>\r\n"
		"f: <sip:a@example.com>;tag=x1\r\n"
		"i: c1@x\r\n"
		"CSeq: 1 INVITE\r\n"
		"m: <sip:a@203.0.113.100>\r\n"
		"c: application/sdp\r\n"
		"l: 95\r\n"
		"\r\n"
		"v=0\r\n"
		"o=- 1 1 IN IP4 203.0.113.100\r\n"
		"s=-\r\n"
		"c=IN IP4 203.0.113.100\r\n"
		"t=0 0\r\n"
		"m=audio 4000 RTP/AVP 0\r\n";
	const char *o = run(0xc0a80105, 5060, REM, 5060, in, NULL);
	assert_string_equal(o, want);
}

static void test_register_and_inbound_invite(void **st)
{
	(void)st;
	const char *reg =
		"REGISTER sip:registrar.example.com SIP/2.0\r\n"
		"Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKreg1\r\n"
		"Max-Forwards: 70\r\n"
		"To: <sip:alice@example.com>\r\n"
		"From: <sip:alice@example.com>;tag=r1\r\n"
		"Call-ID: reg1@192.168.1.10\r\n"
		"CSeq: 1 REGISTER\r\n"
		"Contact: <sip:alice@192.168.1.10:5060>\r\n"
		"Expires: 3600\r\n"
		"Content-Length: 0\r\n\r\n";
	const char *o = run(LAN1, 5060, REM, 5060, reg, NULL);
	assert_non_null(strstr(o, "Contact: <sip:alice@203.0.113.1:5060>\r\n"));
	const char *ok =
		"SIP/2.0 200 OK\r\n"
		"Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKreg1\r\n"
		"To: <sip:alice@example.com>;tag=srv\r\n"
		"From: <sip:alice@example.com>;tag=r1\r\n"
		"Call-ID: reg1@203.0.113.1\r\n"
		"CSeq: 1 REGISTER\r\n"
		"Contact: <sip:alice@203.0.113.1:5060>;expires=1800\r\n"
		"Content-Length: 0\r\n\r\n";
	stub_reset();
	o = run(REM, 5060, LAN1, 5060, ok, NULL);
	/* the phone sees its own contact registered */
	assert_non_null(strstr(o, "Contact: <sip:alice@192.168.1.10:5060>;expires=1800\r\n"));
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.1:5060 192.168.1.10:5060\n"));
	assert_int_equal(stats[ST_registrations], 1);

	const char *inv =
		"INVITE sip:alice@203.0.113.1:5060 SIP/2.0\r\n"
		"Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKin1\r\n"
		"To: <sip:alice@example.com>\r\n"
		"From: <sip:carol@example.org>;tag=c1\r\n"
		"Call-ID: in1@example.org\r\n"
		"CSeq: 1 INVITE\r\n"
		"Contact: <sip:carol@198.51.100.1>\r\n"
		"Content-Length: 0\r\n\r\n";
	o = run(REM, 5060, LAN1, 5060, inv, NULL);
	assert_non_null(strstr(o, "INVITE sip:alice@192.168.1.10:5060 SIP/2.0\r\n"));

	/* un-REGISTER: Expires 0, the 200 lists no contact of ours */
	const char *unreg =
		"REGISTER sip:registrar.example.com SIP/2.0\r\n"
		"Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKreg2\r\n"
		"To: <sip:alice@example.com>\r\n"
		"From: <sip:alice@example.com>;tag=r2\r\n"
		"Call-ID: reg1@192.168.1.10\r\n"
		"CSeq: 2 REGISTER\r\n"
		"Contact: *\r\n"
		"Expires: 0\r\n"
		"Content-Length: 0\r\n\r\n";
	o = run(LAN1, 5060, REM, 5060, unreg, NULL);
	assert_non_null(strstr(o, "Contact: *\r\n"));
	const char *ok2 =
		"SIP/2.0 200 OK\r\n"
		"Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKreg2\r\n"
		"To: <sip:alice@example.com>;tag=srv\r\n"
		"From: <sip:alice@example.com>;tag=r2\r\n"
		"Call-ID: reg1@203.0.113.1\r\n"
		"CSeq: 2 REGISTER\r\n"
		"Content-Length: 0\r\n\r\n";
	stub_reset();
	run(REM, 5060, LAN1, 5060, ok2, NULL);
	assert_int_equal(stats[ST_registrations], 0);
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.1:5060"));
}

/* Issue 13, a hairpin call: the provider relays phone2's public Contact to
 * phone1. It must stay public (phone1's in-dialog requests go to the
 * provider, which reaches phone2 through that public port); only the
 * receiver's own public Contact goes back to its private address. */
static void test_other_phones_contact_stays_public(void **st)
{
	(void)st;
	char reg[512], want[128];
	unsigned p2 = 0;
	const char *o;

	for (int i = 0; i < 2; i++) {
		snprintf(reg, sizeof(reg),
			 "REGISTER sip:registrar.example.com SIP/2.0\r\n"
			 "Via: SIP/2.0/UDP 192.168.1.%d:5060;branch=z9hG4bKhp%d\r\n"
			 "To: <sip:u%d@example.com>\r\n"
			 "From: <sip:u%d@example.com>;tag=h%d\r\n"
			 "Call-ID: hp%d@example.com\r\n"
			 "CSeq: 1 REGISTER\r\n"
			 "Contact: <sip:u%d@192.168.1.%d:5060>\r\n"
			 "Content-Length: 0\r\n\r\n", i ? 11 : 10, i, i, i, i, i, i, i ? 11 : 10);
		o = run(i ? LAN2 : LAN1, 5060, REM, 5060, reg, NULL);
	}
	const char *c = strstr(o, "Contact: <sip:u1@203.0.113.1:");
	assert_non_null(c);
	p2 = (unsigned)atoi(c + strlen("Contact: <sip:u1@203.0.113.1:"));
	assert_true(p2 != 0 && p2 != 5060);
	snprintf(reg, sizeof(reg),
		 "INVITE sip:u0@203.0.113.1:5060 SIP/2.0\r\n"
		 "Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKhpi\r\n"
		 "To: <sip:u0@example.com>\r\n"
		 "From: <sip:u1@example.com>;tag=c1\r\n"
		 "Call-ID: hpcall@example.com\r\n"
		 "CSeq: 1 INVITE\r\n"
		 "Contact: <sip:u1@203.0.113.1:%u>\r\n"
		 "Content-Length: 0\r\n\r\n", p2);
	o = run(REM, 5060, LAN1, 5060, reg, NULL);
	assert_non_null(strstr(o, "INVITE sip:u0@192.168.1.10:5060 SIP/2.0\r\n"));
	snprintf(want, sizeof(want), "Contact: <sip:u1@203.0.113.1:%u>\r\n", p2);
	assert_non_null(strstr(o, want));
}

/* sip.inbound_from: any: the registered Contact is reachable from any WAN
 * host (an in_any element), not only from the registrar. */
static void test_register_inbound_from_any(void **st)
{
	(void)st;
	cf.inbound_src = CONF_INBOUND_ANY;
	const char *reg =
		"REGISTER sip:registrar.example.com SIP/2.0\r\n"
		"Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKany\r\n"
		"To: <sip:alice@example.com>\r\n"
		"From: <sip:alice@example.com>;tag=a1\r\n"
		"Call-ID: any1@192.168.1.10\r\n"
		"CSeq: 1 REGISTER\r\n"
		"Contact: <sip:alice@192.168.1.10:5060>\r\n"
		"Content-Length: 0\r\n\r\n";
	const char *ok =
		"SIP/2.0 200 OK\r\n"
		"Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKany\r\n"
		"To: <sip:alice@example.com>;tag=srv\r\n"
		"From: <sip:alice@example.com>;tag=a1\r\n"
		"Call-ID: any1@203.0.113.1\r\n"
		"CSeq: 1 REGISTER\r\n"
		"Contact: <sip:alice@203.0.113.1:5060>;expires=600\r\n"
		"Content-Length: 0\r\n\r\n";
	run(LAN1, 5060, REM, 5060, reg, NULL);
	stub_reset();
	run(REM, 5060, LAN1, 5060, ok, NULL);
	assert_non_null(strstr(stub_log, "dnat+ 0.0.0.0:5060 192.168.1.10:5060\n"));
	assert_null(strstr(stub_log, "dnat+ 198.51.100.1:5060"));
	cf.inbound_src = CONF_INBOUND_REGISTRAR;
}

static void test_malformed_outbound_dropped(void **st)
{
	(void)st;
	int v;
	const char *bad =
		"INVITE sip:bob@example.com SIP/2.0\r\n"
		"Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKbad\r\n"
		"Content-Length: 500\r\n\r\nv=0\r\n";
	run(LAN1, 5060, REM, 5060, bad, &v);
	assert_int_equal(v, ALG_DROP);
	assert_int_equal(stats[ST_drop_malformed_out], 1);
	run(REM, 5060, LAN1, 5060, bad, &v);
	assert_int_equal(v, ALG_ACCEPT);
	run(LAN1, 5060, REM, 5060, "\r\n\r\n", &v);
	assert_int_equal(v, ALG_ACCEPT);
	assert_int_equal(stats[ST_keepalives], 1);
	assert_int_equal(stats[ST_bindings], 0);
}

/* The WAN address changes under a call (wan.c -> alg_set_public): new
 * messages carry the new address, the dialog keeps its Call-ID, bindings
 * are re-NATed, the old address's flows go; with no address LAN SIP drops. */
static void test_wan_address_change(void **st)
{
	(void)st;
	int v;
	const char *r;
	char reinv[2048], bye[1024];

	assert_string_equal(run(LAN1, 5060, REM, 5060, invite1, &v), invite1_out);
	stub_reset();
	alg_set_public(4, a4(0xcb007102), now); /* 203.0.113.2 */
	assert_non_null(strstr(stub_log, "snat- 192.168.1.10:5060"));
	assert_non_null(strstr(stub_log, "snat+ 192.168.1.10:5060 203.0.113.2:5060"));
	assert_non_null(strstr(stub_log, "snat+ 192.168.1.10:10000 203.0.113.2:10000"));
	assert_non_null(strstr(stub_log, "ctaddr 203.0.113.1"));
	assert_int_equal(addr_get_v4(alg_public(4)), 0xcb007102);
	/* a second sweep once what was in flight has passed */
	stub_reset();
	alg_tick(now + 500);
	assert_null(strstr(stub_log, "ctaddr"));
	alg_tick(now + 1000);
	assert_non_null(strstr(stub_log, "ctaddr 203.0.113.1"));

	/* the phone's re-INVITE in the same dialog */
	snprintf(reinv, sizeof(reinv), "%s", invite1);
	char *cs = strstr(reinv, "314159 INVITE");
	memcpy(cs, "314160", 6);
	r = run(LAN1, 5060, REM, 5060, reinv, &v);
	assert_int_equal(v, ALG_ACCEPT);
	assert_non_null(strstr(r, "Via: SIP/2.0/UDP 203.0.113.2:5060"));
	assert_non_null(strstr(r, "Contact: <sip:alice@203.0.113.2:5060>"));
	assert_non_null(strstr(r, "c=IN IP4 203.0.113.2"));
	assert_non_null(strstr(r, "Call-ID: a84b4c76e66710@203.0.113.1\r\n")); /* identity kept */
	assert_null(strstr(r, "192.168.1.10"));

	/* the remote's BYE still names the old address in the Call-ID */
	snprintf(bye, sizeof(bye),
		 "BYE sip:alice@203.0.113.2:5060 SIP/2.0\r\n"
		 "Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKb1\r\n"
		 "From: Bob <sip:bob@example.com>;tag=99\r\n"
		 "To: Alice <sip:alice@example.com>;tag=1928301774\r\n"
		 "Call-ID: a84b4c76e66710@203.0.113.1\r\n"
		 "CSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n");
	r = run(REM, 5060, LAN1, 5060, bye, &v);
	assert_non_null(strstr(r, "Call-ID: a84b4c76e66710@192.168.1.10\r\n"));
	assert_non_null(strstr(r, "BYE sip:alice@192.168.1.10"));

	/* a flow the kernel still NATs to the old address (no binding of ours
	 * yet, e.g. after a restart) loses its conntrack */
	stub_reset();
	stub_ct_snat_found = 1;
	stub_ct_pub_ip = PUB;
	stub_ct_pub_port = 5060;
	run(LAN2, 5062, REM, 5060, invite1, &v);
	assert_non_null(strstr(stub_log, "ct- 192.168.1.11:5062 198.51.100.1:5060"));
	stub_ct_snat_found = 0;

	/* no address: LAN SIP is dropped and counted, keep-alives too */
	alg_set_public(4, NULL, now);
	r = run(LAN2, 5060, REM, 5060, invite1, &v);
	assert_int_equal(v, ALG_DROP);
	run(LAN2, 5060, REM, 5060, "\r\n\r\n", &v);
	assert_int_equal(v, ALG_DROP);
	assert_int_equal(stats[ST_drop_no_wan_address], 2);
}

/* A call from LAN2 that offers the RTP port LAN1's call already has on
 * the WAN (its public port differs), with the SDP `c` address, CSeq,
 * direction and port given. */
static const char *hold_msg(const char *first, const char *cseq, const char *totag, const char *c, const char *dir)
{
	static char m[1024];
	char body[256];
	int resp = first[0] == 'S';
	int bl = snprintf(body, sizeof(body),
			  "v=0\r\no=- 1 %c IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
			  "m=audio %s RTP/AVP 0\r\na=%s\r\n",
			  cseq[0], resp ? "198.51.100.9" : "192.168.1.11", c, resp ? "7000" : "10000", dir);
	snprintf(m, sizeof(m),
		 "%s\r\n"
		 "Via: SIP/2.0/UDP %s:5060;branch=z9hG4bKh%c\r\n"
		 "From: <sip:carol@example.com>;tag=h1\r\n"
		 "To: <sip:bob@example.com>%s%s\r\n"
		 "Call-ID: hold@%s\r\n"
		 "CSeq: %s\r\n"
		 "Contact: <sip:%s:5060>\r\n"
		 "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		 first, resp ? "203.0.113.1" : "192.168.1.11", cseq[0], totag ? ";tag=" : "", totag ? totag : "",
		 resp ? "203.0.113.1" : "192.168.1.11", cseq, resp ? "bob@198.51.100.1" : "carol@192.168.1.11",
		 bl, body);
	return m;
}

/* RFC 2543 hold (c=IN IP4 0.0.0.0, still allowed by RFC 3264 8.4, sent
 * by many phones and PBXs) from a phone whose public media port differs
 * from its private one: the stream keeps its public port and pinhole, the
 * m= line names that port, 0.0.0.0 stays, nothing counts as refused; the
 * unhold gets the same port back. Found by tests/netns/newuser.sh: the
 * hold was refused (a warning, pinholes_refused), its stream closed at
 * the answer, the private port left in the m= line, the phone's music on
 * hold went out by the router's masquerade, and that conntrack took the
 * phone's RTP after the unhold too. */
static void test_hold_c_zero_keeps_stream(void **st)
{
	(void)st;
	int v;
	const char *r;
	char pubm[32];

	run(LAN1, 5060, REM, 5060, invite1, &v); /* takes public 10000 */
	r = run(LAN2, 5060, REM, 5060, hold_msg("INVITE sip:bob@example.com SIP/2.0", "1 INVITE", NULL,
						 "192.168.1.11", "sendrecv"), &v);
	assert_int_equal(v, ALG_ACCEPT);
	const char *mp = strstr(r, "m=audio ");
	assert_non_null(mp);
	snprintf(pubm, sizeof(pubm), "m=audio %d ", atoi(mp + 8));
	assert_string_not_equal(pubm, "m=audio 10000 ");
	run(REM, 5060, LAN2, 5060, hold_msg("SIP/2.0 200 OK", "1 INVITE", "r1", "198.51.100.9", "sendrecv"), &v);
	assert_int_equal(stats[ST_pinholes], 2);
	stub_reset();

	/* hold */
	r = run(LAN2, 5060, REM, 5060, hold_msg("INVITE sip:bob@example.com SIP/2.0", "2 INVITE", "r1", "0.0.0.0",
						 "sendonly"), &v);
	assert_int_equal(v, ALG_ACCEPT);
	assert_non_null(strstr(r, "c=IN IP4 0.0.0.0\r\n"));
	assert_non_null(strstr(r, pubm));
	assert_null(strstr(r, "192.168.1.11"));
	run(REM, 5060, LAN2, 5060, hold_msg("SIP/2.0 200 OK", "2 INVITE", "r1", "198.51.100.9", "recvonly"), &v);
	assert_int_equal(stats[ST_pinholes_refused], 0);
	assert_int_equal(stats[ST_pinholes], 2);
	assert_null(strstr(stub_log, "dnat-"));
	assert_null(strstr(stub_log, "snat-"));

	/* unhold: the same public port */
	r = run(LAN2, 5060, REM, 5060, hold_msg("INVITE sip:bob@example.com SIP/2.0", "3 INVITE", "r1",
						 "192.168.1.11", "sendrecv"), &v);
	assert_non_null(strstr(r, pubm));
	assert_non_null(strstr(r, "c=IN IP4 203.0.113.1\r\n"));
	assert_int_equal(stats[ST_pinholes], 2);
}

/* A phone that learnt its public media address by STUN or ICE names it:
 * baresip's re-INVITE once ICE completes has c= our public address and
 * m= its own public port (the peer-reflexive candidate). It is the stream
 * it has: kept, its pinhole untouched, nothing refused, the SDP left as
 * written. Found by tests/netns/realua.sh: refused (a warning and
 * pinholes_refused on every ICE call). */
static void test_phone_names_own_public_media(void **st)
{
	(void)st;
	int v;
	const char *r;
	char pubm[32], pubport[8];

	cf.media_other_hosts = 0; /* as shipped */
	run(LAN1, 5060, REM, 5060, invite1, &v); /* takes public 10000 */
	r = run(LAN2, 5060, REM, 5060, hold_msg("INVITE sip:bob@example.com SIP/2.0", "1 INVITE", NULL,
						 "192.168.1.11", "sendrecv"), &v);
	const char *mp = strstr(r, "m=audio ");
	assert_non_null(mp);
	snprintf(pubport, sizeof(pubport), "%d", atoi(mp + 8));
	snprintf(pubm, sizeof(pubm), "m=audio %s ", pubport);
	assert_int_equal(strlen(pubport), 5);
	assert_string_not_equal(pubm, "m=audio 10000 ");
	run(REM, 5060, LAN2, 5060, hold_msg("SIP/2.0 200 OK", "1 INVITE", "r1", "198.51.100.9", "sendrecv"), &v);
	assert_int_equal(stats[ST_pinholes], 2);
	stub_reset();

	/* the re-INVITE naming 203.0.113.1 and the public port */
	char *re = (char *)hold_msg("INVITE sip:bob@example.com SIP/2.0", "2 INVITE", "r1", "203.0.113.1", "sendrecv");
	char *port = strstr(re, "m=audio 10000 ");
	assert_non_null(port);
	memcpy(port + 8, pubport, 5);
	char sent[1024];
	snprintf(sent, sizeof(sent), "%s", re);
	r = run(LAN2, 5060, REM, 5060, sent, &v);
	assert_int_equal(v, ALG_ACCEPT);
	assert_non_null(strstr(r, "c=IN IP4 203.0.113.1\r\n"));
	assert_non_null(strstr(r, pubm));
	assert_null(strstr(r, "192.168.1.11"));
	run(REM, 5060, LAN2, 5060, hold_msg("SIP/2.0 200 OK", "2 INVITE", "r1", "198.51.100.9", "sendrecv"), &v);
	assert_int_equal(stats[ST_pinholes_refused], 0);
	assert_int_equal(stats[ST_pinholes], 2);
	assert_null(strstr(stub_log, "dnat-"));
	assert_null(strstr(stub_log, "snat-"));
}

/* Issue 8: limits.messages_per_second_per_source (500) applies only while
 * the daemon falls behind. 1,000 new OPTIONS in one millisecond from one
 * LAN address all pass while the queue keeps up; after four full bursts in
 * a row the same source is throttled and every drop is counted. */
static void test_rate_only_when_behind(void **st)
{
	(void)st;
	char m[512];
	int v, dropped = 0;
	for (int i = 0; i < 1000; i++) {
		snprintf(m, sizeof(m),
			 "OPTIONS sip:bob@example.com SIP/2.0\r\n"
			 "Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKo%d\r\n"
			 "From: <sip:alice@example.com>;tag=a\r\nTo: <sip:bob@example.com>\r\n"
			 "Call-ID: opt%d@192.168.1.10\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", i, i);
		run(LAN1, 5060, REM, 5060, m, &v);
		dropped += v == ALG_DROP;
	}
	assert_int_equal(dropped, 0);
	assert_int_equal(stats[ST_drop_rate], 0);
	/* a short stall that drains (full reads for 60 ms) is not falling behind */
	for (int k = 0; k < 4; k++)
		alg_queue_burst(64, 64, now + 20u * k);
	alg_queue_burst(10, 64, now + 80);
	assert_int_equal(stats[ST_queue_behind], 0);
	/* full reads for 100 ms are */
	for (int k = 0; k < 6; k++)
		alg_queue_burst(64, 64, now + 100 + 20u * k);
	assert_int_equal(stats[ST_queue_behind], 1);
	now += 200; /* 200 ms: the bucket refilled 100 tokens */
	for (int i = 0; i < 300; i++) {
		snprintf(m, sizeof(m),
			 "OPTIONS sip:bob@example.com SIP/2.0\r\n"
			 "Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKp%d\r\n"
			 "From: <sip:alice@example.com>;tag=a\r\nTo: <sip:bob@example.com>\r\n"
			 "Call-ID: p%d@192.168.1.10\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", i, i);
		run(LAN1, 5060, REM, 5060, m, &v);
		dropped += v == ALG_DROP;
	}
	assert_int_equal(dropped, 200);
	assert_int_equal(stats[ST_drop_rate], 200);
	/* a second later, with the queue drained, it passes again */
	now += 1500;
	alg_queue_burst(3, 64, now);
	run(LAN1, 5060, REM, 5060, m, &v);
	assert_int_equal(v, ALG_ACCEPT);
}

static void test_early_failure_closes(void **st)
{
	(void)st;
	run(LAN1, 5060, REM, 5060, invite1, NULL);
	const char *busy =
		"SIP/2.0 486 Busy Here\r\n"
		"Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK776asdhds\r\n"
		"To: Bob <sip:bob@example.com>;tag=b1\r\n"
		"From: Alice <sip:alice@example.com>;tag=1928301774\r\n"
		"Call-ID: a84b4c76e66710@203.0.113.1\r\n"
		"CSeq: 314159 INVITE\r\n"
		"Content-Length: 0\r\n\r\n";
	stub_reset();
	run(REM, 5060, LAN1, 5060, busy, NULL);
	assert_int_equal(stats[ST_dialogs], 0);
	assert_int_equal(stats[ST_pinholes], 0);
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.1:10000"));
}

/* A message from head lines (CRLF each) and an SDP body, Content-Length computed. */
static const char *withbody(char *buf, size_t n, const char *head, const char *body)
{
	snprintf(buf, n, "%sContent-Type: application/sdp\r\nContent-Length: %zu\r\n\r\n%s", head, strlen(body), body);
	return buf;
}

#define PHONE_HEAD(method_line, cseq) \
	method_line "\r\n" \
	"Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKfork1\r\n" \
	"To: Bob <sip:bob@example.com>\r\n" \
	"From: Alice <sip:alice@example.com>;tag=ph1\r\n" \
	"Call-ID: fork1@192.168.1.10\r\n" \
	"CSeq: " cseq "\r\n" \
	"Contact: <sip:alice@192.168.1.10:5060>\r\n"

/* a=rtcp (RFC 3605) with another port and an address: rewritten to the
 * public port and address; a=rtcp naming the RTP port (multiplexing) to
 * the public RTP port. */
static void test_rtcp_attribute_rewritten(void **st)
{
	(void)st;
	static char m[4096];
	const char *o = run(LAN1, 5060, REM, 5060, withbody(m, sizeof(m), PHONE_HEAD("INVITE sip:bob@example.com SIP/2.0", "1 INVITE"),
		"v=0\r\no=a 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\n"
		"m=audio 10000 RTP/AVP 0\r\na=rtcp:53020 IN IP4 192.168.1.10\r\n"
		"m=video 12000 RTP/AVP 96\r\na=rtcp:12000\r\na=rtcp-mux\r\n"), NULL);
	assert_non_null(strstr(o, "m=audio 10000 RTP/AVP 0\r\na=rtcp:53020 IN IP4 203.0.113.1\r\n"));
	assert_non_null(strstr(o, "m=video 12000 RTP/AVP 96\r\na=rtcp:12000\r\na=rtcp-mux\r\n"));
	assert_null(strstr(o, "192.168."));
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.1:53020 192.168.1.10:53020\n"));
	assert_null(strstr(stub_log, "dnat+ 198.51.100.1:10001"));
	assert_int_equal(stats[ST_rtcp_ports], 1);

	/* a second call on the same ports: the public ports move, a=rtcp follows */
	stub_reset();
	o = run(LAN2, 5060, REM, 5060, withbody(m, sizeof(m),
		"INVITE sip:bob@example.com SIP/2.0\r\n"
		"Via: SIP/2.0/UDP 192.168.1.11:5060;branch=z9hG4bKsecond\r\n"
		"To: Bob <sip:bob@example.com>\r\nFrom: Carol <sip:carol@example.com>;tag=c1\r\n"
		"Call-ID: second@192.168.1.11\r\nCSeq: 1 INVITE\r\nContact: <sip:carol@192.168.1.11:5060>\r\n",
		"v=0\r\no=c 1 1 IN IP4 192.168.1.11\r\ns=-\r\nc=IN IP4 192.168.1.11\r\nt=0 0\r\n"
		"m=audio 10000 RTP/AVP 0\r\na=rtcp:53020\r\n"), NULL);
	const char *ma = strstr(o, "m=audio ");
	assert_non_null(ma);
	unsigned rtp = 0, rtcp = 0;
	assert_int_equal(sscanf(ma, "m=audio %u RTP/AVP 0\r\na=rtcp:%u\r\n", &rtp, &rtcp), 2);
	assert_int_not_equal(rtp, 10000);
	assert_int_not_equal(rtcp, 53020);
	assert_int_not_equal(rtcp, rtp + 1);
	char want[80];
	snprintf(want, sizeof(want), "dnat+ 198.51.100.1:%u 192.168.1.11:53020\n", rtcp);
	assert_non_null(strstr(stub_log, want));
}

static const char *fork_resp(char *buf, size_t n, int code, const char *tag, const char *media_ip, const char *cseq)
{
	char head[1024], body[512];
	snprintf(head, sizeof(head),
		 "SIP/2.0 %d %s\r\n"
		 "Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKfork%c\r\n"
		 "To: Bob <sip:bob@example.com>;tag=%s\r\n"
		 "From: Alice <sip:alice@example.com>;tag=ph1\r\n"
		 "Call-ID: fork1@203.0.113.1\r\n"
		 "CSeq: %s\r\n"
		 "Contact: <sip:bob@%s>\r\n", code, code == 200 ? "OK" : "Session Progress", cseq[0], tag, cseq,
		 media_ip);
	if (strstr(cseq, "BYE")) {
		snprintf(buf, n, "%sContent-Length: 0\r\n\r\n", head);
		return buf;
	}
	snprintf(body, sizeof(body), "v=0\r\no=b 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
		 media_ip, media_ip);
	return withbody(buf, n, head, body);
}

/* Forked INVITE through the whole policy: two 183s with different To tags
 * and their own media; the 200 of the second; the late 200 of the first is
 * ACKed and BYEd by the phone, and the 200 to that BYE closes nothing. */
static void test_forked_invite_policy(void **st)
{
	(void)st;
	static char m[4096];
	run(LAN1, 5060, REM, 5060, withbody(m, sizeof(m), PHONE_HEAD("INVITE sip:bob@example.com SIP/2.0", "1 INVITE"),
		"v=0\r\no=a 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 10000 RTP/AVP 0\r\n"),
	    NULL);
	stub_reset();
	run(REM, 5060, LAN1, 5060, fork_resp(m, sizeof(m), 183, "fa", "198.51.100.7", "1 INVITE"), NULL);
	run(REM, 5060, LAN1, 5060, fork_resp(m, sizeof(m), 183, "fb", "198.51.100.8", "1 INVITE"), NULL);
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.7:10000 192.168.1.10:10000\n"));
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.8:10000 192.168.1.10:10000\n"));
	assert_null(strstr(stub_log, "dnat- 198.51.100.7"));
	stub_reset();
	run(REM, 5060, LAN1, 5060, fork_resp(m, sizeof(m), 200, "fb", "198.51.100.8", "1 INVITE"), NULL);
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.7:10000"));
	assert_null(strstr(stub_log, "dnat- 198.51.100.8"));
	/* the first fork's late 200, ACK and BYE to it, and the 200 to that BYE */
	stub_reset();
	run(REM, 5060, LAN1, 5060, fork_resp(m, sizeof(m), 200, "fa", "198.51.100.7", "1 INVITE"), NULL);
	run(LAN1, 5060, REM, 5060,
	    "BYE sip:bob@198.51.100.7 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKfork2\r\n"
	    "To: Bob <sip:bob@example.com>;tag=fa\r\nFrom: Alice <sip:alice@example.com>;tag=ph1\r\n"
	    "Call-ID: fork1@192.168.1.10\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n", NULL);
	run(REM, 5060, LAN1, 5060, fork_resp(m, sizeof(m), 200, "fa", "198.51.100.7", "2 BYE"), NULL);
	assert_null(strstr(stub_log, "dnat"));
	assert_int_equal(stats[ST_dialogs], 1);
	assert_int_equal(stats[ST_pinholes], 1);
	/* the winner's BYE ends the call */
	run(LAN1, 5060, REM, 5060,
	    "BYE sip:bob@198.51.100.8 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKfork3\r\n"
	    "To: Bob <sip:bob@example.com>;tag=fb\r\nFrom: Alice <sip:alice@example.com>;tag=ph1\r\n"
	    "Call-ID: fork1@192.168.1.10\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n", NULL);
	run(REM, 5060, LAN1, 5060, fork_resp(m, sizeof(m), 200, "fb", "198.51.100.8", "3 BYE"), NULL);
	assert_int_equal(stats[ST_dialogs], 0);
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.8:10000"));
}


/* ---- routed IPv6 (issue 13): nothing rewritten, conntrack pinholes ---- */

static const uint8_t PH6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10 };
static const uint8_t PX6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0x01, 0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10 };

static int setup6(void **st)
{
	setup(st);
	alg_fini();
	assert_true(addr_parse_str("2001:db8:77::", &cf.lan[1].net));
	cf.lan[1].plen = 64;
	cf.n_lan = 2;
	cf.media_other_hosts = 0;
	return alg_init(&cf, a4(PUB));
}

/* One IPv6 datagram: it must leave exactly as it came. */
static void run6(int outbound, const char *msg)
{
	uint32_t len = outbound ? tp_udp6(pkt, PH6, 5060, PX6, 5060, msg, (uint32_t)strlen(msg))
				: tp_udp6(pkt, PX6, 5060, PH6, 5060, msg, (uint32_t)strlen(msg));
	uint32_t olen = 0;
	assert_int_equal(alg_packet(pkt, len, out, sizeof(out), &olen, now), ALG_ACCEPT);
	assert_int_equal(olen, 0);
}

static char msg6[2048];
static const char *sip6(const char *start, const char *from_tag, const char *to_tag, const char *cseq,
			const char *sdp_c, int port)
{
	char body[512] = "";
	if (sdp_c)
		snprintf(body, sizeof(body), "v=0\r\no=- 1 1 IN IP6 %s\r\ns=-\r\nc=IN IP6 %s\r\nt=0 0\r\n"
			 "m=audio %d RTP/AVP 0\r\n", sdp_c, sdp_c, port);
	snprintf(msg6, sizeof(msg6),
		 "%s\r\nVia: SIP/2.0/UDP [2001:db8:77::10]:5060;branch=z9hG4bK6\r\n"
		 "From: <sip:a@[2001:db8:77::10]>;tag=%s\r\nTo: <sip:b@[2001:db8:113::10]>%s%s\r\n"
		 "Call-ID: v6call@[2001:db8:77::10]\r\nCSeq: %s\r\nContact: <sip:a@[2001:db8:77::10]:5060>\r\n"
		 "%sContent-Length: %zu\r\n\r\n%s",
		 start, from_tag, to_tag ? ";tag=" : "", to_tag ? to_tag : "", cseq,
		 sdp_c ? "Content-Type: application/sdp\r\n" : "", strlen(body), body);
	return msg6;
}

static void test_v6_routed_call(void **st)
{
	(void)st;
	/* the phone calls out: its offer opens nothing yet (no remote known) */
	run6(1, sip6("INVITE sip:b@[2001:db8:113::10] SIP/2.0", "f1", NULL, "1 INVITE", "2001:db8:77::10", 16800));
	assert_null(strstr(stub_log, "ct+"));
	run6(0, sip6("SIP/2.0 180 Ringing", "f1", "t1", "1 INVITE", NULL, 0));
	assert_null(strstr(stub_log, "ct+"));
	/* the answer: exactly remote -> phone, RTP and RTCP, before its verdict */
	run6(0, sip6("SIP/2.0 200 OK", "f1", "t1", "1 INVITE", "2001:db8:113::20", 7000));
	assert_string_equal(stub_log, "ct+ [2001:db8:113::20]:7000 [2001:db8:77::10]:16800 180s\n"
				      "ct+ [2001:db8:113::20]:7001 [2001:db8:77::10]:16801 180s\n");
	stub_reset();
	/* a retransmitted 200 changes nothing */
	run6(0, sip6("SIP/2.0 200 OK", "f1", "t1", "1 INVITE", "2001:db8:113::20", 7000));
	run6(1, sip6("ACK sip:b@[2001:db8:113::10] SIP/2.0", "f1", "t1", "1 ACK", NULL, 0));
	assert_string_equal(stub_log, "");
	/* a re-INVITE from the remote moves its port: old out, new in */
	run6(0, sip6("INVITE sip:a@[2001:db8:77::10] SIP/2.0", "t1", "f1", "5 INVITE", "2001:db8:113::20", 7100));
	assert_non_null(strstr(stub_log, "ct- [2001:db8:113::20]:7000 [2001:db8:77::10]:16800\n"));
	assert_non_null(strstr(stub_log, "ct+ [2001:db8:113::20]:7100 [2001:db8:77::10]:16800 180s\n"));
	assert_non_null(strstr(stub_log, "ct+ [2001:db8:113::20]:7101 [2001:db8:77::10]:16801 180s\n"));
	stub_reset();
	/* BYE and its 200: the pinholes go, the exact tuples and the ports */
	run6(1, sip6("BYE sip:b@[2001:db8:113::10] SIP/2.0", "f1", "t1", "2 BYE", NULL, 0));
	assert_string_equal(stub_log, "");
	run6(0, sip6("SIP/2.0 200 OK", "f1", "t1", "2 BYE", NULL, 0));
	assert_non_null(strstr(stub_log, "ct- [2001:db8:113::20]:7100 [2001:db8:77::10]:16800\n"));
	assert_non_null(strstr(stub_log, "ct- [2001:db8:113::20]:7101 [2001:db8:77::10]:16801\n"));
	assert_non_null(strstr(stub_log, "ctscan-dst [2001:db8:77::10]:16800\n"));
	assert_non_null(strstr(stub_log, "ctscan-dst [2001:db8:77::10]:16801\n"));
	assert_null(strstr(stub_log, "ct+"));
	assert_null(strstr(stub_log, "dnat+"));
	assert_null(strstr(stub_log, "snat+"));
	assert_int_equal(stats[ST_sip_ipv6_rx], 8);
	assert_int_equal(stats[ST_pinholes], 0);
	assert_int_equal(stats[ST_dialogs], 0);
}

/* A call from the WAN: the phone's 200 opens the pinhole before it leaves;
 * an early failure (CANCEL, 487) closes; rtcp-mux agreed: no RTCP entry;
 * a remote inside the LAN or a phone address outside it: nothing. */
static void test_v6_routed_inbound(void **st)
{
	(void)st;
	const char *inv = "INVITE sip:a@[2001:db8:77::10] SIP/2.0\r\nVia: SIP/2.0/UDP [2001:db8:113::10];branch=z9hG4bKi\r\n"
			  "From: <sip:b@x>;tag=r1\r\nTo: <sip:a@y>\r\nCall-ID: in6\r\nCSeq: 1 INVITE\r\n"
			  "Content-Type: application/sdp\r\nContent-Length: 75\r\n\r\n"
			  "v=0\r\nc=IN IP6 2001:db8:113::20\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\na=rtcp-mux\r\n";
	uint32_t len = tp_udp6(pkt, PX6, 5060, PH6, 5060, inv, (uint32_t)strlen(inv)), olen = 0;
	assert_int_equal(alg_packet(pkt, len, out, sizeof(out), &olen, now), ALG_ACCEPT);
	assert_int_equal(olen, 0);
	assert_string_equal(stub_log, "");
	const char *ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP [2001:db8:113::10];branch=z9hG4bKi\r\n"
			 "From: <sip:b@x>;tag=r1\r\nTo: <sip:a@y>;tag=p1\r\nCall-ID: in6\r\nCSeq: 1 INVITE\r\n"
			 "Content-Type: application/sdp\r\nContent-Length: 75\r\n\r\n"
			 "v=0\r\nc=IN IP6 2001:db8:77::10\r\nt=0 0\r\nm=audio 16800 RTP/AVP 0\r\na=rtcp-mux\r\n";
	len = tp_udp6(pkt, PH6, 5060, PX6, 5060, ok, (uint32_t)strlen(ok));
	assert_int_equal(alg_packet(pkt, len, out, sizeof(out), &olen, now), ALG_ACCEPT);
	assert_int_equal(olen, 0);
	assert_string_equal(stub_log, "ct+ [2001:db8:113::20]:7000 [2001:db8:77::10]:16800 180s\n");
	stub_reset();
	/* the phone names another LAN host: refused (allow_other_lan_hosts off) */
	const char *ok2 = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP [2001:db8:113::10];branch=z9hG4bKi\r\n"
			  "From: <sip:b@x>;tag=r1\r\nTo: <sip:a@y>;tag=p1\r\nCall-ID: in6\r\nCSeq: 1 INVITE\r\n"
			  "Content-Type: application/sdp\r\nContent-Length: 75\r\n\r\n"
			  "v=0\r\nc=IN IP6 2001:db8:77::99\r\nt=0 0\r\nm=audio 16800 RTP/AVP 0\r\na=rtcp-mux\r\n";
	len = tp_udp6(pkt, PH6, 5060, PX6, 5060, ok2, (uint32_t)strlen(ok2));
	assert_int_equal(alg_packet(pkt, len, out, sizeof(out), &olen, now), ALG_ACCEPT);
	assert_string_equal(stub_log, "ct- [2001:db8:113::20]:7000 [2001:db8:77::10]:16800\n"
				      "ctscan-dst [2001:db8:77::10]:16800\nctscan-src [2001:db8:77::10]:16800\n");
	assert_int_equal(stats[ST_pinholes_refused], 1);
}

/* Mixed SDP over IPv4 signalling: the IPv4 stream is NATed as always, the
 * IN IP6 stream is left as written and gets its conntrack pinhole (when
 * other LAN hosts are allowed: see below; refused otherwise). */
static void test_v6_mixed_sdp(void **st)
{
	(void)st;
	/* The phone's IPv6 address cannot be checked against its IPv4 source:
	 * another LAN host, allowed only with media.allow_other_lan_hosts. */
	cf.media_other_hosts = 1;
	const char *inv = "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKm\r\n"
			  "From: <sip:a@example.com>;tag=m1\r\nTo: <sip:b@example.com>\r\nCall-ID: mixed\r\n"
			  "CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: 112\r\n\r\n"
			  "v=0\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 10000 RTP/AVP 0\r\n"
			  "m=video 16900 RTP/AVP 31\r\nc=IN IP6 2001:db8:77::10\r\n";
	const char *o = run(LAN1, 5060, REM, 5060, inv, NULL);
	assert_non_null(strstr(o, "c=IN IP4 203.0.113.1\r\n"));
	assert_non_null(strstr(o, "m=video 16900 RTP/AVP 31\r\nc=IN IP6 2001:db8:77::10\r\n"));
	assert_int_equal(stats[ST_pinholes_refused], 0);
	stub_reset();
	const char *ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKm\r\n"
			 "From: <sip:a@example.com>;tag=m1\r\nTo: <sip:b@example.com>;tag=r9\r\nCall-ID: mixed\r\n"
			 "CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: 111\r\n\r\n"
			 "v=0\r\nc=IN IP4 198.51.100.9\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n"
			 "m=video 7200 RTP/AVP 31\r\nc=IN IP6 2001:db8:113::20\r\n";
	run(REM, 5060, LAN1, 5060, ok, NULL);
	assert_non_null(strstr(stub_log, "ct+ [2001:db8:113::20]:7200 [2001:db8:77::10]:16900 180s\n"));
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.9:"));
}

/* ---- NAT66 (wan.nat66_*): the prefix written as the router's NAT does -- */

static const uint8_t PL6[16] = { 0xfd, 0x00, 0, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10 };

static int setup66(void **st)
{
	setup(st);
	alg_fini();
	assert_true(addr_parse_str("fd00:77::", &cf.lan[1].net));
	cf.lan[1].plen = 64;
	cf.n_lan = 2;
	cf.media_other_hosts = 0;
	cf.nat66_lan = cf.lan[1];
	assert_true(addr_parse_str("2001:db8:78::", &cf.nat66_pub.net));
	cf.nat66_pub.plen = 64;
	return alg_init(&cf, a4(PUB));
}

/* The message of sip6() with the phone at `ph`. */
static const char *sip66(const char *ph, const char *start, const char *tt, const char *cseq, const char *sdp_c,
			 int port)
{
	static char m[2048];
	char body[512] = "";
	if (sdp_c)
		snprintf(body, sizeof(body), "v=0\r\no=- 1 1 IN IP6 %s\r\ns=-\r\nc=IN IP6 %s\r\nt=0 0\r\n"
			 "m=audio %d RTP/AVP 0\r\na=rtcp:%d IN IP6 %s\r\n", sdp_c, sdp_c, port, port + 1, sdp_c);
	snprintf(m, sizeof(m),
		 "%s\r\nVia: SIP/2.0/UDP [%s]:5060;branch=z9hG4bK6;received=%s\r\n"
		 "From: <sip:a@[%s]>;tag=f1\r\nTo: <sip:b@[2001:db8:113::10]>%s%s\r\n"
		 "Call-ID: v6call@[%s]\r\nCSeq: %s\r\nContact: <sip:a@[%s]:5062>\r\n"
		 "%sContent-Length: %zu\r\n\r\n%s",
		 start, ph, ph, ph, tt ? ";tag=" : "", tt ? tt : "", ph, cseq, ph,
		 sdp_c ? "Content-Type: application/sdp\r\n" : "", strlen(body), body);
	return m;
}

/* One IPv6 datagram between a phone at `ph` and the proxy (inbound:
 * addressed to the phone, as the kernel's NAT leaves it before the forward
 * hook), with the verdict it must get; returns the payload that leaves. */
static const char *run6p(const uint8_t ph[16], int outbound, const char *msg, enum alg_verdict want)
{
	uint32_t len = outbound ? tp_udp6(pkt, ph, 5060, PX6, 5060, msg, (uint32_t)strlen(msg))
				: tp_udp6(pkt, PX6, 5060, ph, 5060, msg, (uint32_t)strlen(msg));
	uint32_t olen = 0;
	assert_int_equal(alg_packet(pkt, len, out, sizeof(out), &olen, now), want);
	if (!olen) {
		snprintf(got, sizeof(got), "%s", msg);
		return got;
	}
	/* IPv6 payload length and the UDP length follow the edits */
	assert_int_equal((out[4] << 8 | out[5]), olen - 40);
	assert_int_equal((out[44] << 8 | out[45]), olen - 40);
	memcpy(got, out + 48, olen - 48);
	got[olen - 48] = 0;
	return got;
}

/* The NAT66 phone (fd00:77::10). */
static const char *run66(int outbound, const char *msg) { return run6p(PL6, outbound, msg, ALG_ACCEPT); }

static void test_nat66_call(void **st)
{
	(void)st;
	char want[2048];
	/* out: every LAN-prefix literal (Via, received=, From, Call-ID,
	 * Contact, o=, c=, a=rtcp) becomes the public image, ports kept,
	 * Content-Length recounted; the proxy's address is not touched */
	snprintf(want, sizeof(want), "%s",
		 sip66("2001:db8:78::10", "INVITE sip:b@[2001:db8:113::10] SIP/2.0", NULL, "1 INVITE", "2001:db8:78::10", 16800));
	const char *o = run66(1, sip66("fd00:77::10", "INVITE sip:b@[2001:db8:113::10] SIP/2.0", NULL, "1 INVITE",
				      "fd00:77::10", 16800));
	assert_string_equal(o, want);
	assert_int_equal(stats[ST_nat66_out], 8);
	assert_null(strstr(stub_log, "ct+"));
	/* in: the headers map back, the remote's SDP stays; the answer opens
	 * RTP and RTCP to the public address, DNATed to the phone */
	snprintf(want, sizeof(want), "%s",
		 sip66("fd00:77::10", "SIP/2.0 200 OK", "t1", "1 INVITE", "2001:db8:113::20", 7000));
	o = run66(0, sip66("2001:db8:78::10", "SIP/2.0 200 OK", "t1", "1 INVITE", "2001:db8:113::20", 7000));
	assert_string_equal(o, want);
	assert_int_equal(stats[ST_nat66_in], 5);
	assert_string_equal(stub_log,
			    "ct+ [2001:db8:113::20]:7000 [2001:db8:78::10]:16800 dnat [fd00:77::10] 180s\n"
			    "ct+ [2001:db8:113::20]:7001 [2001:db8:78::10]:16801 dnat [fd00:77::10] 180s\n");
	assert_int_equal(stats[ST_dialogs], 1);
	stub_reset();
	/* BYE out, 200 in: both tuples of each entry, and the public ports */
	run66(1, sip66("fd00:77::10", "BYE sip:b@[2001:db8:113::10] SIP/2.0", "t1", "2 BYE", NULL, 0));
	assert_string_equal(stub_log, "");
	run66(0, sip66("2001:db8:78::10", "SIP/2.0 200 OK", "t1", "2 BYE", NULL, 0));
	assert_non_null(strstr(stub_log, "ct- [fd00:77::10]:16800 [2001:db8:113::20]:7000\n"));
	assert_non_null(strstr(stub_log, "ct- [fd00:77::10]:16801 [2001:db8:113::20]:7001\n"));
	assert_non_null(strstr(stub_log, "ctscan-dst [2001:db8:78::10]:16800\n"));
	assert_non_null(strstr(stub_log, "ctscan-src [fd00:77::10]:16800\n"));
	assert_int_equal(stats[ST_pinholes], 0);
	assert_int_equal(stats[ST_dialogs], 0);
}

/* An address outside the NAT66 prefix (a routed global one of the same
 * LAN, the proxy's) is left alone; a malformed LAN message naming the
 * prefix is dropped, as an IPv4 one naming a LAN address is. */
static void test_nat66_only_the_prefix(void **st)
{
	(void)st;
	const char *msg = "OPTIONS sip:[2001:db8:113::10] SIP/2.0\r\nVia: SIP/2.0/UDP [fd00:77::10];branch=z9hG4bKo\r\n"
			  "From: <sip:a@[fd00:99::10]>;tag=o\r\nTo: <sip:[fd00:77::10]>\r\nCall-ID: o@fd00:77::a:b\r\n"
			  "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
	const char *o = run66(1, msg);
	assert_non_null(strstr(o, "Via: SIP/2.0/UDP [2001:db8:78::10];branch"));
	assert_non_null(strstr(o, "From: <sip:a@[fd00:99::10]>"));
	assert_non_null(strstr(o, "To: <sip:[2001:db8:78::10]>"));
	assert_non_null(strstr(o, "Call-ID: o@2001:db8:78::a:b\r\n"));
	assert_non_null(strstr(o, "OPTIONS sip:[2001:db8:113::10] SIP/2.0"));
	const char *bad = "OPTIONS sip:x SIP/2.0\r\nVia: [fd00:77::10]\r\n\r\n";
	uint32_t len = tp_udp6(pkt, PL6, 5060, PX6, 5060, bad, (uint32_t)strlen(bad)), olen = 0;
	assert_int_equal(alg_packet(pkt, len, out, sizeof(out), &olen, now), ALG_DROP);
	assert_int_equal(stats[ST_drop_malformed_out], 1);
}

/* A ULA leaving for the Internet that no NAT66 of ours covers is dropped
 * (the router's own masq6/NPT would carry it out in the message); ULA to
 * ULA and what our NAT66 covers pass. */
/* SIP/TCP relayed on a registrar's new connection (RFC 3261 18.2.2) to a
 * Contact on a port outside sip.ports, from an ephemeral port: the relay
 * framed it, so it is SIP whatever its ports (alg_packet_framed). Found
 * by tests/netns/newuser.sh: the Request-URI reached the phone public and
 * the phone's 200 left with its private Contact. The queue's datagrams
 * keep the port test. */
static void test_framed_ignores_ports(void **st)
{
	(void)st;
	const char *reg =
		"REGISTER sip:example.com SIP/2.0\r\n"
		"Via: SIP/2.0/TCP 192.168.1.10:5090;branch=z9hG4bKf1\r\n"
		"From: <sip:alice@example.com>;tag=f1\r\nTo: <sip:alice@example.com>\r\n"
		"Call-ID: fr@192.168.1.10\r\nCSeq: 1 REGISTER\r\n"
		"Contact: <sip:alice@192.168.1.10:5090;transport=tcp>\r\nExpires: 60\r\nContent-Length: 0\r\n\r\n";
	const char *opt =
		"OPTIONS sip:alice@203.0.113.1:5090;transport=tcp SIP/2.0\r\n"
		"Via: SIP/2.0/TCP 198.51.100.1:5060;branch=z9hG4bKf2\r\n"
		"From: <sip:example.com>;tag=f2\r\nTo: <sip:alice@example.com>\r\n"
		"Call-ID: fo@198.51.100.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
	const char *ok =
		"SIP/2.0 200 OK\r\n"
		"Via: SIP/2.0/TCP 198.51.100.1:5060;branch=z9hG4bKf2\r\n"
		"From: <sip:example.com>;tag=f2\r\nTo: <sip:alice@example.com>;tag=f3\r\n"
		"Call-ID: fo@198.51.100.1\r\nCSeq: 1 OPTIONS\r\n"
		"Contact: <sip:alice@192.168.1.10:5090;transport=tcp>\r\nContent-Length: 0\r\n\r\n";
	uint32_t len, olen;
	int v;

	run(LAN1, 5090, REM, 5060, reg, &v); /* to a SIP port: a binding for 5090 */
	len = tp_udp4(pkt, REM, 40123, LAN1, 5090, opt, (uint32_t)strlen(opt));
	/* from the queue, no SIP port: not looked at */
	olen = 0;
	assert_int_equal(alg_packet_dir(pkt, len, out, sizeof(out), &olen, now, ALG_DIR_IN), ALG_ACCEPT);
	assert_int_equal(olen, 0);
	/* framed by the relay: the Request-URI is the phone's again */
	assert_int_equal(alg_packet_framed(pkt, len, out, sizeof(out), &olen, now, ALG_DIR_IN), ALG_ACCEPT);
	assert_true(olen > 28);
	out[olen] = 0;
	assert_non_null(strstr((const char *)out + 28, "OPTIONS sip:alice@192.168.1.10:5090;transport=tcp SIP/2.0\r\n"));
	/* and the phone's answer leaves with the public Contact */
	len = tp_udp4(pkt, LAN1, 5090, REM, 40123, ok, (uint32_t)strlen(ok));
	olen = 0;
	assert_int_equal(alg_packet_framed(pkt, len, out, sizeof(out), &olen, now, ALG_DIR_OUT), ALG_ACCEPT);
	assert_true(olen > 28);
	out[olen] = 0;
	assert_non_null(strstr((const char *)out + 28, "Contact: <sip:alice@203.0.113.1:5090;transport=tcp>\r\n"));
	assert_null(strstr((const char *)out + 28, "192.168.1.10"));
}

static void ula_case(void)
{
	static const uint8_t U1[16] = { 0xfd, 0x00, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10 };
	static const uint8_t U2[16] = { 0xfd, 0x00, 0, 0x98, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20 };
	const char *m = "OPTIONS sip:[2001:db8:113::10] SIP/2.0\r\nVia: SIP/2.0/UDP [fd00:99::10];branch=z9hG4bKu\r\n"
			"From: <sip:a@[fd00:99::10]>;tag=u\r\nTo: <sip:b@x>\r\nCall-ID: u1\r\n"
			"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
	uint32_t len = tp_udp6(pkt, U1, 5060, PX6, 5060, m, (uint32_t)strlen(m)), olen = 0;
	assert_int_equal(alg_packet(pkt, len, out, sizeof(out), &olen, now), ALG_DROP);
	assert_int_equal(stats[ST_drop_ula_out], 1);
	len = tp_udp6(pkt, U1, 5060, U2, 5060, m, (uint32_t)strlen(m));
	assert_int_equal(alg_packet(pkt, len, out, sizeof(out), &olen, now), ALG_ACCEPT);
	assert_int_equal(stats[ST_drop_ula_out], 1);
	/* from the WAN to a ULA: not leaving */
	len = tp_udp6(pkt, PX6, 5060, U1, 5060, m, (uint32_t)strlen(m));
	assert_int_equal(alg_packet_dir(pkt, len, out, sizeof(out), &olen, now, ALG_DIR_IN), ALG_ACCEPT);
	assert_int_equal(stats[ST_drop_ula_out], 1);
}

static void test_ula_dropped_without_nat66(void **st)
{
	(void)st;
	ula_case();
}

static void test_ula_outside_nat66_dropped(void **st)
{
	(void)st;
	ula_case();
	/* the NAT66 prefix's own phone still leaves, rewritten */
	const char *o = run66(1, "OPTIONS sip:[2001:db8:113::10] SIP/2.0\r\nVia: SIP/2.0/UDP [fd00:77::10];branch=z9hG4bKv\r\n"
				 "From: <sip:a@x>;tag=v\r\nTo: <sip:b@x>\r\nCall-ID: v1\r\nCSeq: 1 OPTIONS\r\n"
				 "Content-Length: 0\r\n\r\n");
	assert_non_null(strstr(o, "Via: SIP/2.0/UDP [2001:db8:78::10];branch"));
	assert_int_equal(stats[ST_drop_ula_out], 1);
}

/* Dual stack behind NAT66: IPv4 signalling whose SDP offers a stream at
 * the phone's ULA; that line leaves with the public image, and the
 * answer's pinhole is the NAT66 one. */
static void test_nat66_mixed_sdp(void **st)
{
	(void)st;
	cf.media_other_hosts = 1;
	const char *inv = "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKm\r\n"
			  "From: <sip:a@example.com>;tag=m1\r\nTo: <sip:b@example.com>\r\nCall-ID: mixed66\r\n"
			  "CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: 108\r\n\r\n"
			  "v=0\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 10000 RTP/AVP 0\r\n"
			  "m=video 16900 RTP/AVP 31\r\nc=IN IP6 fd00:77::10\r\n";
	const char *o = run(LAN1, 5060, REM, 5060, inv, NULL);
	assert_non_null(strstr(o, "c=IN IP4 203.0.113.1\r\n"));
	assert_non_null(strstr(o, "m=video 16900 RTP/AVP 31\r\nc=IN IP6 2001:db8:78::10\r\n"));
	assert_null(strstr(o, "fd00"));
	assert_int_equal(stats[ST_nat66_out], 1);
	stub_reset();
	const char *ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKm\r\n"
			 "From: <sip:a@example.com>;tag=m1\r\nTo: <sip:b@example.com>;tag=r9\r\nCall-ID: mixed66\r\n"
			 "CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: 111\r\n\r\n"
			 "v=0\r\nc=IN IP4 198.51.100.9\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n"
			 "m=video 7200 RTP/AVP 31\r\nc=IN IP6 2001:db8:113::20\r\n";
	run(REM, 5060, LAN1, 5060, ok, NULL);
	assert_non_null(strstr(stub_log, "ct+ [2001:db8:113::20]:7200 [2001:db8:78::10]:16900 dnat [fd00:77::10] 180s\n"));
	/* a NAT66 literal whose IPv4 tail the NAT scrub took: it cannot be
	 * translated whole, so the message does not leave */
	int v = ALG_ACCEPT;
	run(LAN1, 5060, REM, 5060, "OPTIONS sip:x@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10;branch=z9hG4bKq\r\n"
	    "From: <sip:a@example.com>;tag=q\r\nTo: <sip:b@example.com>\r\nCall-ID: q66\r\nCSeq: 1 OPTIONS\r\n"
	    "X-Addr: fd00:77::192.168.1.10\r\nContent-Length: 0\r\n\r\n", &v);
	assert_int_equal(v, ALG_DROP);
}


/* ---- IPv6 masquerade (wan.masquerade6): translated as IPv4 is ---------- */

static const uint8_t PM6[16] = { 0xfd, 0x00, 0, 0x78, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10 };

static int setupm(void **st)
{
	struct addr w;

	setup(st);
	alg_fini();
	assert_true(addr_parse_str("fd00:78::", &cf.lan[1].net));
	cf.lan[1].plen = 64;
	cf.n_lan = 2;
	cf.media_other_hosts = 0;
	cf.masq6[0] = cf.lan[1];
	cf.n_masq6 = 1;
	if (alg_init(&cf, a4(PUB)) < 0)
		return -1;
	assert_true(addr_parse_str("2001:db8:113::1", &w));
	alg_set_public(6, &w, now);
	return 0;
}

/* The masqueraded phone (fd00:78::10). */
static const char *runm(int outbound, const char *msg, enum alg_verdict want)
{
	return run6p(PM6, outbound, msg, want);
}

static void test_masq6_call(void **st)
{
	(void)st;
	char want[2048];
	/* out: Via, received=, From, Call-ID, Contact, o=, c=, a=rtcp name the
	 * WAN's IPv6 address; the ports are the bindings' (free here: kept) */
	snprintf(want, sizeof(want), "%s",
		 sip66("2001:db8:113::1", "INVITE sip:b@[2001:db8:113::10] SIP/2.0", NULL, "1 INVITE",
		       "2001:db8:113::1", 16800));
	const char *o = runm(1, sip66("fd00:78::10", "INVITE sip:b@[2001:db8:113::10] SIP/2.0", NULL, "1 INVITE",
				     "fd00:78::10", 16800), ALG_ACCEPT);
	assert_string_equal(o, want);
	/* the bindings' SNAT elements and the inbound ones, IPv6 */
	assert_non_null(strstr(stub_log, "snat+ [fd00:78::10]:5060 [2001:db8:113::1]:5060\n"));
	assert_non_null(strstr(stub_log, "snat+ [fd00:78::10]:16800 [2001:db8:113::1]:16800\n"));
	assert_non_null(strstr(stub_log, "snat+ [fd00:78::10]:16801 [2001:db8:113::1]:16801\n"));
	assert_non_null(strstr(stub_log, "dnat+ [2001:db8:113::10]:5060 [fd00:78::10]:5060\n"));
	assert_non_null(strstr(stub_log, "dnat+ [2001:db8:113::10]:16800 [fd00:78::10]:16800\n"));
	assert_null(strstr(stub_log, "ct+"));
	assert_int_equal(stats[ST_pinholes], 1);
	stub_reset();
	/* in: the phone's own view back in the headers; the remote's SDP
	 * stays and moves the media elements to its address */
	snprintf(want, sizeof(want), "%s",
		 sip66("fd00:78::10", "SIP/2.0 200 OK", "t1", "1 INVITE", "2001:db8:113::20", 7000));
	o = runm(0, sip66("2001:db8:113::1", "SIP/2.0 200 OK", "t1", "1 INVITE", "2001:db8:113::20", 7000),
		 ALG_ACCEPT);
	assert_string_equal(o, want);
	assert_non_null(strstr(stub_log, "dnat+ [2001:db8:113::20]:16800 [fd00:78::10]:16800\n"));
	assert_non_null(strstr(stub_log, "dnat- [2001:db8:113::10]:16800"));
	stub_reset();
	runm(1, sip66("fd00:78::10", "BYE sip:b@[2001:db8:113::10] SIP/2.0", "t1", "2 BYE", NULL, 0), ALG_ACCEPT);
	runm(0, sip66("2001:db8:113::1", "SIP/2.0 200 OK", "t1", "2 BYE", NULL, 0), ALG_ACCEPT);
	assert_non_null(strstr(stub_log, "dnat- [2001:db8:113::20]:16800"));
	assert_non_null(strstr(stub_log, "snat- [fd00:78::10]:16800"));
	assert_int_equal(stats[ST_pinholes], 0);
	assert_int_equal(stats[ST_dialogs], 0);
}

/* Two masqueraded phones on the same port: the second gets another public
 * port, written where the first's stays. */
static void test_masq6_port_taken(void **st)
{
	(void)st;
	static const uint8_t PM6B[16] = { 0xfd, 0x00, 0, 0x78, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11 };
	const char *m1 = "OPTIONS sip:[2001:db8:113::10] SIP/2.0\r\nVia: SIP/2.0/UDP [fd00:78::10]:5060;branch=z9hG4bKa\r\n"
			 "From: <sip:a@x>;tag=a\r\nTo: <sip:b@x>\r\nCall-ID: m1\r\nCSeq: 1 OPTIONS\r\n"
			 "Content-Length: 0\r\n\r\n";
	const char *m2 = "OPTIONS sip:[2001:db8:113::10] SIP/2.0\r\nVia: SIP/2.0/UDP [fd00:78::11]:5060;branch=z9hG4bKb\r\n"
			 "From: <sip:a@x>;tag=a\r\nTo: <sip:b@x>\r\nCall-ID: m2\r\nCSeq: 1 OPTIONS\r\n"
			 "Content-Length: 0\r\n\r\n";
	const char *o = runm(1, m1, ALG_ACCEPT);
	assert_non_null(strstr(o, "Via: SIP/2.0/UDP [2001:db8:113::1]:5060;branch"));
	uint32_t len = tp_udp6(pkt, PM6B, 5060, PX6, 5060, m2, (uint32_t)strlen(m2)), olen = 0;
	assert_int_equal(alg_packet(pkt, len, out, sizeof(out), &olen, now), ALG_ACCEPT);
	assert_true(olen > 48);
	out[olen] = 0;
	assert_non_null(strstr((const char *)out + 48, "Via: SIP/2.0/UDP [2001:db8:113::1]:40000;branch"));
	/* an IPv4 phone on 5060 too: one public port space, another port */
	assert_non_null(strstr(stub_log, "snat+ [fd00:78::11]:5060 [2001:db8:113::1]:40000\n"));
}

/* No global IPv6 address on the WAN: nothing true can be written, the
 * message is dropped (as IPv4 SIP is without a WAN address). */
static void test_masq6_no_address(void **st)
{
	(void)st;
	alg_set_public(6, NULL, now);
	runm(1, sip66("fd00:78::10", "INVITE sip:b@[2001:db8:113::10] SIP/2.0", NULL, "1 INVITE", "fd00:78::10",
		      16800), ALG_DROP);
	assert_int_equal(stats[ST_drop_no_wan_address], 1);
	assert_int_equal(stats[ST_drop_ula_out], 0);
	/* an IPv4 message offering a masqueraded IPv6 stream: dropped too */
	const char *m = "OPTIONS sip:bob@198.51.100.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKq\r\n"
			"From: <sip:a@x>;tag=a\r\nTo: <sip:b@x>\r\nCall-ID: q1\r\nCSeq: 1 OPTIONS\r\n"
			"X-Alt: [fd00:78::10]\r\nContent-Length: 0\r\n\r\n";
	uint32_t len = tp_udp4(pkt, LAN1, 5060, REM, 5060, m, (uint32_t)strlen(m)), olen = 0;
	assert_int_equal(alg_packet(pkt, len, out, sizeof(out), &olen, now), ALG_DROP);
	assert_int_equal(stats[ST_drop_no_wan_address], 2);
}


/* The WAN's IPv6 address changes: the masqueraded bindings keep their
 * ports, their SNAT elements name the new address, the flows NATed to the
 * old one are deleted, and new messages carry the new address. */
static void test_masq6_address_change(void **st)
{
	(void)st;
	struct addr w2;
	const char *reg = "REGISTER sip:[2001:db8:113::10] SIP/2.0\r\nVia: SIP/2.0/UDP [fd00:78::10]:5060;branch=z9hG4bKr\r\n"
			  "From: <sip:a@x>;tag=r\r\nTo: <sip:a@x>\r\nCall-ID: r1\r\nCSeq: 1 REGISTER\r\n"
			  "Contact: <sip:a@[fd00:78::10]:5060>\r\nContent-Length: 0\r\n\r\n";
	assert_non_null(strstr(runm(1, reg, ALG_ACCEPT), "Contact: <sip:a@[2001:db8:113::1]:5060>"));
	stub_reset();
	assert_true(addr_parse_str("2001:db8:113::2", &w2));
	alg_set_public(6, &w2, now);
	assert_non_null(strstr(stub_log, "snat- [fd00:78::10]:5060"));
	assert_non_null(strstr(stub_log, "snat+ [fd00:78::10]:5060 [2001:db8:113::2]:5060\n"));
	assert_non_null(strstr(stub_log, "ctaddr [2001:db8:113::1]"));
	/* the same address again changes nothing */
	stub_reset();
	alg_set_public(6, &w2, now);
	assert_string_equal(stub_log, "");
	assert_non_null(strstr(runm(1, reg, ALG_ACCEPT), "Contact: <sip:a@[2001:db8:113::2]:5060>"));
	/* the IPv4 side is not touched */
	assert_null(strstr(stub_log, "203.0.113"));
}


/* The WAN's IPv6 address changes under a call (an ISP's new prefix): the
 * remote's in-dialog requests still carry the old public address in the
 * Call-ID, From and To the call began with; they reach the phone with its
 * own literal back, byte for byte, the phone's answers leave with the old
 * address again (the dialog's identity, RFC 3261 12.2), and the old
 * address's flows are swept twice, as for IPv4. */
static void test_masq6_address_change_call(void **st)
{
	(void)st;
	struct addr w2;
	runm(1, sip66("fd00:78::10", "INVITE sip:b@[2001:db8:113::10] SIP/2.0", NULL, "1 INVITE", "fd00:78::10", 16800),
	     ALG_ACCEPT);
	runm(0, sip66("2001:db8:113::1", "SIP/2.0 200 OK", "t1", "1 INVITE", "2001:db8:113::20", 7000), ALG_ACCEPT);
	assert_int_equal(stats[ST_dialogs], 1);
	stub_reset();
	assert_true(addr_parse_str("2001:db8:113::2", &w2));
	alg_set_public(6, &w2, now);
	assert_non_null(strstr(stub_log, "ctaddr [2001:db8:113::1]"));
	/* a second sweep once what was in flight has passed */
	stub_reset();
	alg_tick(now + 500);
	assert_null(strstr(stub_log, "ctaddr"));
	alg_tick(now + 1000);
	assert_non_null(strstr(stub_log, "ctaddr [2001:db8:113::1]"));

	/* the remote's BYE: Request-URI the phone's Contact at the new
	 * address (its binding kept port 5062), the rest the old one */
	const char *bye = "BYE sip:a@[2001:db8:113::2]:5062 SIP/2.0\r\n"
			  "Via: SIP/2.0/UDP [2001:db8:113::10]:5060;branch=z9hG4bKb6\r\n"
			  "From: <sip:b@[2001:db8:113::10]>;tag=t1\r\nTo: <sip:a@[2001:db8:113::1]>;tag=f1\r\n"
			  "Call-ID: v6call@[2001:db8:113::1]\r\nCSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n";
	const char *bye_in = "BYE sip:a@[fd00:78::10]:5062 SIP/2.0\r\n"
			     "Via: SIP/2.0/UDP [2001:db8:113::10]:5060;branch=z9hG4bKb6\r\n"
			     "From: <sip:b@[2001:db8:113::10]>;tag=t1\r\nTo: <sip:a@[fd00:78::10]>;tag=f1\r\n"
			     "Call-ID: v6call@[fd00:78::10]\r\nCSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n";
	assert_string_equal(runm(0, bye, ALG_ACCEPT), bye_in);
	/* the phone's 200 names its own address; it leaves with the old one
	 * where the dialog's identity has it, and ends the dialog it found */
	const char *ok = "SIP/2.0 200 OK\r\n"
			 "Via: SIP/2.0/UDP [2001:db8:113::10]:5060;branch=z9hG4bKb6\r\n"
			 "From: <sip:b@[2001:db8:113::10]>;tag=t1\r\nTo: <sip:a@[fd00:78::10]>;tag=f1\r\n"
			 "Call-ID: v6call@[fd00:78::10]\r\nCSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n";
	const char *ok_out = "SIP/2.0 200 OK\r\n"
			     "Via: SIP/2.0/UDP [2001:db8:113::10]:5060;branch=z9hG4bKb6\r\n"
			     "From: <sip:b@[2001:db8:113::10]>;tag=t1\r\nTo: <sip:a@[2001:db8:113::1]>;tag=f1\r\n"
			     "Call-ID: v6call@[2001:db8:113::1]\r\nCSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n";
	assert_string_equal(runm(1, ok, ALG_ACCEPT), ok_out);
	assert_int_equal(stats[ST_dialogs], 0);
	assert_int_equal(stats[ST_pinholes], 0);
}

/* An inbound Call-ID naming `pub` (of either family) comes back to the
 * phone `ph` with the phone's own literal: pub is ours, now or earlier. */
static int maps_back(int v6, const char *pub)
{
	char m[512], want[128];
	const char *ph = v6 ? "fd00:78::10" : "192.168.1.10";
	snprintf(m, sizeof(m),
		 "OPTIONS sip:a@%s%s%s:5060 SIP/2.0\r\nVia: SIP/2.0/UDP %s:5060;branch=z9hG4bKh\r\n"
		 "From: <sip:b@x>;tag=h\r\nTo: <sip:a@x>\r\nCall-ID: h@%s\r\nCSeq: 1 OPTIONS\r\n"
		 "Content-Length: 0\r\n\r\n",
		 v6 ? "[" : "", pub, v6 ? "]" : "", v6 ? "[2001:db8:113::10]" : "198.51.100.1", pub);
	snprintf(want, sizeof(want), "Call-ID: h@%s\r\n", ph);
	const char *o = v6 ? runm(0, m, ALG_ACCEPT) : run(REM, 5060, LAN1, 5060, m, NULL);
	return strstr(o, want) != NULL;
}

/* An address the WAN had, left and took again holds no slot of the
 * history while it is current, and one when it leaves again: after
 * 1 -> 2 -> 3 -> 4 -> 5 -> 2 the four earlier addresses 1, 3, 4, 5 are all
 * known (a copy of 2, or a hole where it was, would push 1 out); a sixth
 * address then pushes out the oldest. Both families (one history code). */
static void test_public_history_once(void **st)
{
	(void)st;
	static const int seq[] = { 2, 3, 4, 5, 2 };
	struct addr w;
	char a[32];

	/* IPv6: ::1 from setupm */
	for (int i = 0; i < 5; i++) {
		snprintf(a, sizeof(a), "2001:db8:113::%d", seq[i]);
		assert_true(addr_parse_str(a, &w));
		alg_set_public(6, &w, now);
	}
	for (int i = 1; i <= 5; i++) {
		snprintf(a, sizeof(a), "2001:db8:113::%d", i);
		assert_true(maps_back(1, a));
	}
	assert_false(maps_back(1, "2001:db8:113::6"));
	assert_true(addr_parse_str("2001:db8:113::6", &w));
	alg_set_public(6, &w, now);
	assert_false(maps_back(1, "2001:db8:113::1"));
	for (int i = 2; i <= 6; i++) {
		snprintf(a, sizeof(a), "2001:db8:113::%d", i);
		assert_true(maps_back(1, a));
	}

	/* IPv4: 203.0.113.1 from setup */
	for (int i = 0; i < 5; i++)
		alg_set_public(4, a4(0xcb007100u | (uint32_t)seq[i]), now);
	for (int i = 1; i <= 5; i++) {
		snprintf(a, sizeof(a), "203.0.113.%d", i);
		assert_true(maps_back(0, a));
	}
	assert_false(maps_back(0, "203.0.113.6"));
	alg_set_public(4, a4(0xcb007106), now);
	assert_false(maps_back(0, "203.0.113.1"));
	assert_true(maps_back(0, "203.0.113.2"));
	/* the IPv4 changes left the IPv6 history as it was */
	assert_true(maps_back(1, "2001:db8:113::2"));
}

/* A malformed message from a masqueraded phone that names its address
 * is dropped (it would leak), one that names none passes unchanged. */
static void test_masq6_malformed(void **st)
{
	(void)st;
	runm(1, "OPTIONS sip:x SIP/2.0\r\nVia: [fd00:78::10]\r\n\r\n", ALG_DROP);
	assert_int_equal(stats[ST_drop_malformed_out], 1);
	runm(1, "OPTIONS sip:x SIP/2.0\r\nVia: [2001:db8:113::50]\r\n\r\n", ALG_ACCEPT);
	assert_int_equal(stats[ST_drop_malformed_out], 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_invite_rewritten_byte_for_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_own_rewrite_requeued, setup, teardown),
		cmocka_unit_test_setup_teardown(test_response_restores_via_and_moves_pinhole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_phones_same_ports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compact_headers_and_growth, setup_long_public, teardown),
		cmocka_unit_test_setup_teardown(test_register_and_inbound_invite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_inbound_from_any, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_outbound_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_early_failure_closes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wan_address_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_c_zero_keeps_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_phone_names_own_public_media, setup, teardown),
		cmocka_unit_test_setup_teardown(test_framed_ignores_ports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_only_when_behind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rtcp_attribute_rewritten, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forked_invite_policy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_phones_contact_stays_public, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v6_routed_call, setup6, teardown),
		cmocka_unit_test_setup_teardown(test_v6_routed_inbound, setup6, teardown),
		cmocka_unit_test_setup_teardown(test_v6_mixed_sdp, setup6, teardown),
		cmocka_unit_test_setup_teardown(test_nat66_call, setup66, teardown),
		cmocka_unit_test_setup_teardown(test_nat66_only_the_prefix, setup66, teardown),
		cmocka_unit_test_setup_teardown(test_nat66_mixed_sdp, setup66, teardown),
		cmocka_unit_test_setup_teardown(test_ula_dropped_without_nat66, setup6, teardown),
		cmocka_unit_test_setup_teardown(test_ula_outside_nat66_dropped, setup66, teardown),
		cmocka_unit_test_setup_teardown(test_masq6_call, setupm, teardown),
		cmocka_unit_test_setup_teardown(test_masq6_port_taken, setupm, teardown),
		cmocka_unit_test_setup_teardown(test_masq6_no_address, setupm, teardown),
		cmocka_unit_test_setup_teardown(test_masq6_address_change, setupm, teardown),
		cmocka_unit_test_setup_teardown(test_masq6_address_change_call, setupm, teardown),
		cmocka_unit_test_setup_teardown(test_public_history_once, setupm, teardown),
		cmocka_unit_test_setup_teardown(test_masq6_malformed, setupm, teardown),
	};
	return cmocka_run_group_tests_name("alg", tests, NULL, NULL);
}
