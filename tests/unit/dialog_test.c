/* The dialog state machine: offer/answer drives pinholes; re-offers retire
 * old streams only when the exchange completes; rejections roll back;
 * timers end what never ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "binding.h"
#include "conf.h"
#include "dialog.h"
#include "siphash.h"
#include "sdp.h"
#include "stats.h"
#include "stubs.h"

/* A host-order IPv4 address as the struct addr the dialog table takes. */
#define A4(ip) (&(const struct addr){ { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, (uint8_t)((ip) >> 24), \
					(uint8_t)((ip) >> 16), (uint8_t)((ip) >> 8), (uint8_t)(ip) } })

#define PUB 0xcb007101
#define PHONE 0xc0a8010a
#define PROXY 0xc6336401

static struct conf cf;
static struct sdp sd;
static char sdpbuf[512];
static uint16_t pub[SDP_MAX_MEDIA];

static const struct sdp *mk(const char *ip, int port)
{
	snprintf(sdpbuf, sizeof(sdpbuf), "v=0\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\n", ip, port);
	assert_int_equal(sdp_parse(&sd, (const uint8_t *)sdpbuf, (struct span){ 0, (uint32_t)strlen(sdpbuf) }), SDP_OK);
	return &sd;
}

/* An SDP with attribute lines after the m= line (each ending in CRLF). */
/* The same with an IPv6 connection address. */
static const struct sdp *mk6(const char *ip, int port)
{
	snprintf(sdpbuf, sizeof(sdpbuf), "v=0\r\nc=IN IP6 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\n", ip, port);
	assert_int_equal(sdp_parse(&sd, (const uint8_t *)sdpbuf, (struct span){ 0, (uint32_t)strlen(sdpbuf) }), SDP_OK);
	return &sd;
}

static const struct sdp *mka(const char *ip, int port, const char *attrs)
{
	snprintf(sdpbuf, sizeof(sdpbuf), "v=0\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\n%s", ip, port,
		 attrs);
	assert_int_equal(sdp_parse(&sd, (const uint8_t *)sdpbuf, (struct span){ 0, (uint32_t)strlen(sdpbuf) }), SDP_OK);
	return &sd;
}

static int setup(void **st)
{
	(void)st;
	conf_defaults(&cf);
	cf.lan[0] = conf_net_v4(0xc0a80100, 24);
	cf.n_lan = 1;
	cf.media_other_hosts = 1;
	memset(stats, 0, sizeof(stats));
	stub_reset();
	assert_int_equal(binding_init(&cf, a4(PUB)), 0);
	return dialog_init(&cf);
}

static int teardown(void **st)
{
	(void)st;
	dialog_fini();
	binding_fini();
	return 0;
}

static struct dialog *call(void)
{
	struct binding *sb = binding_get(a4(PHONE), 5060, BIND_SIG, 0, 0);
	struct dialog *d = dialog_create((const uint8_t *)"cid", 3, A4(PHONE), 5060, A4(PROXY), 5060, sb, 0);
	assert_non_null(d);
	assert_ptr_equal(dialog_find((const uint8_t *)"cid", 3, A4(PHONE)), d);
	assert_null(dialog_find((const uint8_t *)"cid", 3, A4(PHONE + 1)));
	return d;
}

static void test_offer_answer_then_bye(void **st)
{
	(void)st;
	struct dialog *d = call();
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.1:5060 192.168.1.10:5060\n"));
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8000), 0, 1, A4(PHONE), pub, 0);
	assert_int_equal(pub[0], 8000);
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.1:8000 192.168.1.10:8000\n"));
	stub_reset();
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 1, 1, A4(PROXY), pub, 0);
	/* the answer names the media server: the pinhole follows it */
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.9:8000 192.168.1.10:8000\n"));
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.1:8000"));
	stub_reset();
	dialog_close(d, 0);
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.9:8000"));
	assert_non_null(strstr(stub_log, "ct- 192.168.1.10:8000 198.51.100.9:7000\n"));
	/* the remote's address was known: exact deletes, no table walk */
	assert_null(strstr(stub_log, "ctscan-dst"));
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.1:5060"));
	assert_int_equal(stats[ST_dialogs], 0);
	assert_int_equal(stats[ST_pinholes], 0);
}

static void test_failure_before_answer_scans(void **st)
{
	(void)st;
	struct dialog *d = call();
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8000), 0, 1, A4(PHONE), pub, 0);
	stub_reset();
	dialog_close(d, 0);
	assert_non_null(strstr(stub_log, "ctscan-dst 203.0.113.1:8000"));
	assert_non_null(strstr(stub_log, "ctscan-dst 203.0.113.1:8001"));
	assert_non_null(strstr(stub_log, "ctscan-src 192.168.1.10:8000"));
}

static void test_reinvite_new_port_retires_on_answer(void **st)
{
	(void)st;
	struct dialog *d = call();
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8000), 0, 1, A4(PHONE), pub, 0);
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 1, 1, A4(PROXY), pub, 0);
	stub_reset();
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8100), 0, 2, A4(PHONE), pub, 0);
	assert_int_equal(pub[0], 8100);
	assert_int_equal(stats[ST_pinholes], 2);   /* both, until the answer */
	assert_null(strstr(stub_log, "dnat- 198.51.100.9:8000"));
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 1, 2, A4(PROXY), pub, 0);
	assert_int_equal(stats[ST_pinholes], 1);
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.9:8000"));
	assert_non_null(strstr(stub_log, "ct- 192.168.1.10:8000 198.51.100.9:7000\n"));
}

static void test_rejected_reoffer_rolls_back(void **st)
{
	(void)st;
	struct dialog *d = call();
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8000), 0, 1, A4(PHONE), pub, 0);
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 1, 1, A4(PROXY), pub, 0);
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.12", 8000), 0, 2, A4(PHONE), pub, 0);
	assert_int_equal(stats[ST_pinholes], 2);
	stub_reset();
	dialog_offer_failed(d);
	assert_int_equal(stats[ST_pinholes], 1);
	assert_non_null(strstr(stub_log, "snat- 192.168.1.12:8000"));
	assert_null(strstr(stub_log, "snat- 192.168.1.10:8000"));
}

static void test_remote_moves_media(void **st)
{
	(void)st;
	struct dialog *d = call();
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8000), 0, 1, A4(PHONE), pub, 0);
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 1, 1, A4(PROXY), pub, 0);
	stub_reset();
	/* remote re-offer from another address: both accepted until the answer */
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.30", 7100), 0, 5, A4(PROXY), pub, 0);
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.30:8000 192.168.1.10:8000\n"));
	assert_null(strstr(stub_log, "dnat- 198.51.100.9:8000"));
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8000), 1, 5, A4(PHONE), pub, 0);
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.9:8000"));
	assert_non_null(strstr(stub_log, "ct- 192.168.1.10:8000 198.51.100.9:7000\n"));
	assert_int_equal(stats[ST_pinholes], 1);
}

static void test_retransmitted_answer_is_not_an_offer(void **st)
{
	(void)st;
	struct dialog *d = call();
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8000), 0, 1, A4(PHONE), pub, 0);
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 1, 1, A4(PROXY), pub, 0);
	/* the 200 again, before the ACK got through */
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 1, 1, A4(PROXY), pub, 0);
	/* a re-INVITE offer from the phone must wait for its own answer */
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8100), 0, 2, A4(PHONE), pub, 0);
	assert_int_equal(stats[ST_pinholes], 2);
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 1, 2, A4(PROXY), pub, 0);
	assert_int_equal(stats[ST_pinholes], 1);
}

static void test_refused_targets(void **st)
{
	(void)st;
	struct dialog *d = call();
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 80), 0, 1, A4(PHONE), pub, 0);
	assert_int_equal(pub[0], 0);
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.255", 8000), 0, 1, A4(PHONE), pub, 0);
	assert_int_equal(pub[0], 0);
	dialog_sdp(d, SIDE_PHONE, mk("10.9.9.9", 8000), 0, 1, A4(PHONE), pub, 0);
	assert_int_equal(pub[0], 0);
	cf.media_other_hosts = 0;
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.12", 8000), 0, 1, A4(PHONE), pub, 0);
	assert_int_equal(pub[0], 0);
	assert_int_equal(stats[ST_pinholes], 0);
	assert_int_equal(stats[ST_pinholes_refused], 4);
}

static void test_timers(void **st)
{
	(void)st;
	struct dialog *d = call();
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8000), 0, 1, A4(PHONE), pub, 0);
	dialog_expire((uint64_t)cf.early_timeout_s * 1000 - 1);
	assert_int_equal(stats[ST_dialogs], 1);
	dialog_confirmed(d, 1000);
	dialog_expire((uint64_t)cf.early_timeout_s * 1000 + 1);
	assert_int_equal(stats[ST_dialogs], 1);
	dialog_bye_seen(d, 2000);
	dialog_expire(2000 + 32000);
	assert_int_equal(stats[ST_dialogs], 0);
	assert_int_equal(stats[ST_dialogs_expired], 1);
	assert_int_equal(stats[ST_pinholes], 0);
}

/* Issue 11: the fast path handles the 1xx, ACK and body-less requests that
 * refresh a dialog's timer, unseen by the daemon. With less than half of the
 * timer left the phone's binding leaves the fast path's maps (those messages
 * reach the daemon again), and goes back once one of them refreshed it; BYE
 * and the dialog's end give the hold back. */
static void test_fastpath_hold(void **st)
{
	(void)st;
	struct dialog *d = call();
	struct binding *sb = binding_find(a4(PHONE), 5060);
	uint64_t early = (uint64_t)cf.early_timeout_s * 1000u, full = (uint64_t)cf.dialog_timeout_s * 1000u;

	stub_fp_set = stub_fp_del = 0;
	dialog_expire(early / 2 - 1000);
	assert_int_equal(sb->fp_hold, 0);
	dialog_expire(early / 2 + 1000);     /* ringing, no 1xx seen: out of the maps */
	assert_int_equal(sb->fp_hold, 1);
	assert_int_equal(stub_fp_del, 1);
	dialog_touch(d, early / 2 + 2000);   /* the next 180 reached the daemon */
	assert_int_equal(sb->fp_hold, 0);
	assert_int_equal(stub_fp_set, 1);
	dialog_expire(early / 2 + 3000);
	assert_int_equal(sb->fp_hold, 0);
	dialog_confirmed(d, early);
	dialog_expire(early + full / 2 - 1000);
	assert_int_equal(sb->fp_hold, 0);
	dialog_expire(early + full / 2 + 1000); /* a long call refreshed only by body-less requests */
	assert_int_equal(sb->fp_hold, 1);
	dialog_bye_seen(d, early + full / 2 + 2000);
	assert_int_equal(sb->fp_hold, 0);
	assert_int_equal(stub_fp_set, 2);
	/* a second call held when it expires gives its hold back */
	struct dialog *d2 = dialog_create((const uint8_t *)"cid2", 4, A4(PHONE), 5060, A4(PROXY), 5060, sb, early + full);
	assert_non_null(d2);
	dialog_expire(early + full + early / 2 + 1000);
	assert_int_equal(sb->fp_hold, 1);
	dialog_expire(early + full + early + 1);
	assert_null(dialog_find((const uint8_t *)"cid2", 4, A4(PHONE)));
	assert_int_equal(sb->fp_hold, 0);
}

/* Issue 8: a PBX trunk is one LAN address with hundreds of calls. While the
 * table has room, limits.pinholes_per_phone (64) is no cap: every stream of
 * 300 calls from one phone gets its pinhole. */
static void test_trunk_beyond_per_phone_share(void **st)
{
	(void)st;
	struct binding *sb = binding_get(a4(PHONE), 5060, BIND_SIG, 0, 0);
	char cid[32], ip[] = "192.168.1.10";
	for (int i = 0; i < 300; i++) {
		snprintf(cid, sizeof(cid), "trunk%d", i);
		struct dialog *d = dialog_create((const uint8_t *)cid, (uint32_t)strlen(cid), A4(PHONE), 5060, A4(PROXY),
						 5060, sb, 0);
		assert_non_null(d);
		stub_reset();
		assert_int_equal(dialog_sdp(d, SIDE_PHONE, mk(ip, 10000 + 2 * i), 0, 1, A4(PHONE), pub, 0), 0);
		assert_int_not_equal(pub[0], 0);
	}
	assert_int_equal(stats[ST_pinholes], 300);
	assert_int_equal(stats[ST_drop_limit], 0);
	assert_int_equal(stats[ST_refused_pinholes_share], 0);
}

static int setup_scarce(void **st)
{
	conf_defaults(&cf);
	cf.max_pinholes = 100;
	cf.max_pinholes_per_phone = 10;
	cf.max_dialogs = 200;
	cf.lan[0] = conf_net_v4(0xc0a80100, 24);
	cf.n_lan = 1;
	memset(stats, 0, sizeof(stats));
	stub_reset();
	assert_int_equal(binding_init(&cf, a4(PUB)), 0);
	(void)st;
	return dialog_init(&cf);
}

/* 8 pinholes, a floor of 1 per phone: the fair share decides early. */
static int setup_tiny(void **st)
{
	conf_defaults(&cf);
	cf.max_pinholes = 8;
	cf.max_pinholes_per_phone = 1;
	cf.lan[0] = conf_net_v4(0xc0a80100, 24);
	cf.n_lan = 1;
	memset(stats, 0, sizeof(stats));
	stub_reset();
	assert_int_equal(binding_init(&cf, a4(PUB)), 0);
	(void)st;
	return dialog_init(&cf);
}

/* Once a table is 3/4 full, a phone that holds its share is refused and
 * counted; another phone still gets its call and its pinhole (the flood
 * guarantee: one host cannot take the whole table). */
/* Issue 13: phone A calls phone B of the same LAN through the provider (one
 * Call-ID, two dialogs). Each SDP names the public address and the other
 * phone's public media port; the pinhole must take media from the other
 * phone's private address (an in_lan element), whatever media.pinhole_source
 * says, and only from it; a public port nobody owns keeps our own address. */
static void hairpin(int policy_any)
{
	char want[96];

	if (policy_any)
		cf.pinhole_src = CONF_PINHOLE_ANY;
	struct dialog *a = call();
	struct binding *sb = binding_get(a4(PHONE + 10), 5060, BIND_SIG, 0, 0);
	struct dialog *b = dialog_create((const uint8_t *)"cid", 3, A4(PHONE + 10), 5060, A4(PROXY), 5060, sb, 0);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	dialog_sdp(a, SIDE_PHONE, mk("192.168.1.10", 8000), 0, 1, A4(PHONE), pub, 0);
	uint16_t pa = pub[0];
	/* the provider relays A's offer to B */
	dialog_sdp(b, SIDE_REMOTE, mk("203.0.113.1", pa), 0, 1, A4(PROXY), pub, 0);
	stub_reset();
	dialog_sdp(b, SIDE_PHONE, mk("192.168.1.20", 8000), 1, 1, A4(PHONE + 10), pub, 0);
	uint16_t pb = pub[0];
	assert_int_not_equal(pa, pb);
	snprintf(want, sizeof(want), "dnat+ 192.168.1.10:%u 192.168.1.20:8000\n", pb);
	assert_non_null(strstr(stub_log, want));
	snprintf(want, sizeof(want), "dnat+ 192.168.1.10:%u 192.168.1.20:8001\n", pb + 1);
	assert_non_null(strstr(stub_log, want));
	assert_null(strstr(stub_log, "dnat+ 203.0.113.1"));
	assert_null(strstr(stub_log, "dnat+ 0.0.0.0"));
	/* A may send before this pinhole exists (a real phone sends at once):
	 * its un-NATed flow from its private port to B's public port would
	 * keep the element from ever applying (NAT is decided only for a new
	 * conntrack). Found by tests/netns/realua.sh: no audio either way in
	 * a hairpin call between two baresip phones; the flow deleted was
	 * the one from our public address, which no packet has. */
	snprintf(want, sizeof(want), "ct- 192.168.1.10:8000 203.0.113.1:%u\n", pb);
	assert_non_null(strstr(stub_log, want));
	snprintf(want, sizeof(want), "ct- 192.168.1.10:8001 203.0.113.1:%u\n", pb + 1);
	assert_non_null(strstr(stub_log, want));
	/* B's answer reaches A: A's pinhole moves from the provider to B */
	stub_reset();
	dialog_sdp(a, SIDE_REMOTE, mk("203.0.113.1", pb), 1, 1, A4(PROXY), pub, 0);
	snprintf(want, sizeof(want), "dnat+ 192.168.1.20:%u 192.168.1.10:8000\n", pa);
	assert_non_null(strstr(stub_log, want));
	/* and B's flow, begun with its answer, to A's public port */
	snprintf(want, sizeof(want), "ct- 192.168.1.20:8000 203.0.113.1:%u\n", pa);
	assert_non_null(strstr(stub_log, want));
	assert_int_equal(stats[ST_pinholes_hairpin], 2);
	/* the call ends: elements and the hairpinned flow go */
	stub_reset();
	dialog_close(b, 0);
	snprintf(want, sizeof(want), "dnat- 192.168.1.10:%u\n", pb);
	assert_non_null(strstr(stub_log, want));
	snprintf(want, sizeof(want), "ct- 192.168.1.20:8000 203.0.113.1:%u\n", pa);
	assert_non_null(strstr(stub_log, want));
	dialog_close(a, 0);
	/* our address with a port no media binding owns: no LAN key */
	a = call();
	dialog_sdp(a, SIDE_PHONE, mk("192.168.1.10", 8200), 0, 1, A4(PHONE), pub, 0);
	stub_reset();
	dialog_sdp(a, SIDE_REMOTE, mk("203.0.113.1", 30000), 1, 1, A4(PROXY), pub, 0);
	assert_non_null(strstr(stub_log, "dnat+ 203.0.113.1:"));
	assert_null(strstr(stub_log, "dnat+ 192.168.1."));
	dialog_close(a, 0);
}

static void test_hairpin_peer(void **st) { (void)st; hairpin(0); }
static void test_hairpin_policy_any(void **st) { (void)st; hairpin(1); }

static void test_fair_share_when_scarce(void **st)
{
	(void)st;
	struct binding *sa = binding_get(a4(PHONE), 5060, BIND_SIG, 0, 0);
	struct binding *sbb = binding_get(a4(PHONE + 1), 5060, BIND_SIG, 0, 0);
	char cid[32];
	int opened = 0, created = 0;
	for (int i = 0; i < 100; i++) {
		snprintf(cid, sizeof(cid), "a%d", i);
		struct dialog *d = dialog_create((const uint8_t *)cid, (uint32_t)strlen(cid), A4(PHONE), 5060, A4(PROXY),
						 5060, sa, 0);
		assert_non_null(d);
		stub_reset();
		dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 10000 + 2 * i), 0, 1, A4(PHONE), pub, 0);
		opened += pub[0] != 0;
	}
	/* 3/4 of 100 pinholes, all to the one active phone */
	assert_int_equal(opened, 75);
	assert_int_equal(stats[ST_refused_pinholes_share], 25);
	assert_int_equal(stats[ST_refused_pinholes_full], 0);

	struct dialog *b = dialog_create((const uint8_t *)"b0", 2, A4(PHONE + 1), 5060, A4(PROXY), 5060, sbb, 0);
	assert_non_null(b);
	dialog_sdp(b, SIDE_PHONE, mk("192.168.1.11", 10000), 0, 1, A4(PHONE + 1), pub, 0);
	assert_int_not_equal(pub[0], 0);

	/* dialogs: phone A stops when the table is 3/4 full (150 of 200) */
	for (int i = 100; i < 300; i++) {
		snprintf(cid, sizeof(cid), "a%d", i);
		if (!dialog_create((const uint8_t *)cid, (uint32_t)strlen(cid), A4(PHONE), 5060, A4(PROXY), 5060, sa, 0))
			break;
		created++;
	}
	assert_int_equal(stats[ST_dialogs], 150);
	assert_int_equal(stats[ST_refused_dialogs_share], 1);
	/* ... and phone B's next call still works */
	assert_non_null(dialog_create((const uint8_t *)"b1", 2, A4(PHONE + 1), 5060, A4(PROXY), 5060, sbb, 0));
	assert_int_equal(stats[ST_refused_dialogs_full], 0);
	(void)created;
}

/* RFC 3605 / RFC 5761 attributes as the scanner reads them. */
static void test_sdp_rtcp_attributes(void **st)
{
	(void)st;
	mka("192.168.1.10", 8000, "a=rtcp:53020\r\n");
	assert_int_equal(sd.m[0].rtcp_num, 53020);
	assert_int_equal(sd.m[0].rtcp_addr.len, 0);
	assert_int_equal(sd.m[0].rtcp_mux, 0);
	mka("192.168.1.10", 8000, "a=rtcp:53020 IN IP4 192.168.1.12\r\na=rtcp-mux\r\n");
	assert_int_equal(sd.m[0].rtcp_num, 53020);
	assert_memory_equal(&sd.m[0].rtcp_ip, A4(0xc0a8010c), 16);
	assert_memory_equal(sdpbuf + sd.m[0].rtcp_addr.off, "192.168.1.12", 12);
	assert_int_equal(sd.m[0].rtcp_mux, 1);
	/* not rtcp-mux: another attribute that begins with its name */
	mka("192.168.1.10", 8000, "a=rtcp-mux-only\r\na=rtcp-fb:* nack\r\n");
	assert_int_equal(sd.m[0].rtcp_mux, 0);
	assert_int_equal(sd.m[0].rtcp_port.len, 0);
}

/* a=rtcp naming a port other than RTP+1: its own public port and inbound
 * elements (from the same peer as RTP), no RTP+1 element, gone with the call. */
static void test_rtcp_other_port(void **st)
{
	(void)st;
	struct dialog *d = call();
	stub_reset();
	dialog_sdp(d, SIDE_PHONE, mka("192.168.1.10", 8000, "a=rtcp:53020\r\n"), 0, 1, A4(PHONE), pub, 0);
	assert_int_equal(pub[0], 8000);
	assert_int_equal(dialog_rtcp_public(d, 0), 53020);
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.1:8000 192.168.1.10:8000\n"));
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.1:53020 192.168.1.10:53020\n"));
	assert_non_null(strstr(stub_log, "snat+ 192.168.1.10:53020 203.0.113.1:53020\n"));
	assert_null(strstr(stub_log, "dnat+ 198.51.100.1:8001"));
	assert_int_equal(stats[ST_rtcp_ports], 1);
	stub_reset();
	/* the remote's answer names its own RTCP port: the key moves, both ports */
	dialog_sdp(d, SIDE_REMOTE, mka("198.51.100.9", 7000, "a=rtcp:7100\r\n"), 1, 1, A4(PROXY), pub, 0);
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.9:53020 192.168.1.10:53020\n"));
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.1:53020"));
	stub_reset();
	dialog_close(d, 0);
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.9:53020"));
	assert_non_null(strstr(stub_log, "snat- 192.168.1.10:53020"));
	assert_non_null(strstr(stub_log, "ct- 192.168.1.10:53020 198.51.100.9:7100\n"));
	assert_int_equal(stats[ST_bindings], 1); /* the signalling binding only */
}

/* The RTCP address of a=rtcp: another LAN host gets the element; a port
 * below 1024 is refused (RTCP only, RTP unaffected). */
static void test_rtcp_address_and_refusal(void **st)
{
	(void)st;
	struct dialog *d = call();
	stub_reset();
	dialog_sdp(d, SIDE_PHONE, mka("192.168.1.10", 8000, "a=rtcp:9100 IN IP4 192.168.1.12\r\n"), 0, 1, A4(PHONE),
		   pub, 0);
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.1:9100 192.168.1.12:9100\n"));
	assert_int_equal(dialog_rtcp_public(d, 0), 9100);
	stub_reset();
	dialog_sdp(d, SIDE_PHONE, mka("192.168.1.10", 8000, "a=rtcp:999\r\n"), 0, 2, A4(PHONE), pub, 0);
	assert_int_equal(pub[0], 8000);
	assert_int_equal(dialog_rtcp_public(d, 0), 0);
	assert_int_equal(stats[ST_pinholes_refused], 1);
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.1:9100"));
	assert_non_null(strstr(stub_log, "snat- 192.168.1.12:9100"));
	assert_null(strstr(stub_log, ":999 "));
}

/* rtcp-mux (RFC 5761): RTP+1 stays open until the answer has it too, then
 * goes; offered but not answered, RTCP keeps RTP+1. */
static void test_rtcp_mux(void **st)
{
	(void)st;
	struct dialog *d = call();
	dialog_sdp(d, SIDE_PHONE, mka("192.168.1.10", 8000, "a=rtcp-mux\r\n"), 0, 1, A4(PHONE), pub, 0);
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.1:8001 192.168.1.10:8001\n"));
	stub_reset();
	dialog_sdp(d, SIDE_REMOTE, mka("198.51.100.9", 7000, "a=rtcp-mux\r\n"), 1, 1, A4(PROXY), pub, 0);
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.9:8000 192.168.1.10:8000\n"));
	assert_null(strstr(stub_log, "dnat+ 198.51.100.9:8001"));
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.1:8001"));
	assert_int_equal(stats[ST_rtcp_mux], 1);
	stub_reset();
	dialog_close(d, 0);
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.9:8000"));
	assert_null(strstr(stub_log, "dnat- 198.51.100.9:8001"));

	d = dialog_create((const uint8_t *)"cid2", 4, A4(PHONE), 5060, A4(PROXY), 5060,
			  binding_get(a4(PHONE), 5060, BIND_SIG, 0, 0), 0);
	dialog_sdp(d, SIDE_PHONE, mka("192.168.1.10", 8000, "a=rtcp-mux\r\n"), 0, 1, A4(PHONE), pub, 0);
	stub_reset();
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 1, 1, A4(PROXY), pub, 0);
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.9:8001 192.168.1.10:8001\n"));
	assert_int_equal(stats[ST_rtcp_mux], 1);
}

/* Forked INVITE (RFC 3261 13.2.2.4): two early dialogs each name a media
 * address; both get elements (early media from both); the 2xx of the
 * second keeps its elements and drops the first's; a late 2xx from the
 * first changes nothing. */
static void test_forked_invite(void **st)
{
	(void)st;
	struct dialog *d = call();
	dialog_set_caller(d, SIDE_PHONE);
	assert_int_equal(dialog_fork(d, (const uint8_t *)"", 0), 0);
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8000), 0, 1, A4(PHONE), pub, 0);
	stub_reset();
	assert_int_equal(dialog_fork(d, (const uint8_t *)"forkA", 5), 0);
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 1, 1, A4(PROXY), pub, 0);
	assert_int_equal(dialog_fork(d, (const uint8_t *)"forkB", 5), 0);
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.30", 7200), 1, 1, A4(PROXY), pub, 0);
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.9:8000 192.168.1.10:8000\n"));
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.30:8000 192.168.1.10:8000\n"));
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.30:8001 192.168.1.10:8001\n"));
	assert_null(strstr(stub_log, "dnat- 198.51.100.9:8000"));
	assert_int_equal(stats[ST_forks], 1);
	/* A sends again (183 retransmitted): still both */
	stub_reset();
	assert_int_equal(dialog_fork(d, (const uint8_t *)"forkA", 5), 0);
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 1, 1, A4(PROXY), pub, 0);
	assert_null(strstr(stub_log, "dnat-"));
	/* B answers with 200 */
	stub_reset();
	assert_int_equal(dialog_fork(d, (const uint8_t *)"forkB", 5), 0);
	dialog_confirmed(d, 0);
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.30", 7200), 1, 1, A4(PROXY), pub, 0);
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.9:8000"));
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.9:8001"));
	assert_non_null(strstr(stub_log, "ct- 192.168.1.10:8000 198.51.100.9:7000\n"));
	assert_null(strstr(stub_log, "dnat- 198.51.100.30"));
	/* A's late 200: the phone ACKs and BYEs it; nothing here moves */
	stub_reset();
	assert_int_equal(dialog_fork(d, (const uint8_t *)"forkA", 5), 1);
	assert_int_equal(dialog_fork(d, (const uint8_t *)"forkB", 5), 0);
	assert_null(strstr(stub_log, "dnat"));
	stub_reset();
	dialog_close(d, 0);
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.30:8000"));
	assert_null(strstr(stub_log, "dnat- 198.51.100.9"));
	assert_int_equal(stats[ST_pinholes], 0);
	assert_int_equal(stats[ST_bindings], 1);
}

/* Forks beyond DLG_FORKS are counted and get nothing; the call ending
 * before any answer releases every fork's elements. */
static void test_forks_bounded_and_closed(void **st)
{
	(void)st;
	char tag[8], ip[20];
	struct dialog *d = call();
	dialog_set_caller(d, SIDE_PHONE);
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8000), 0, 1, A4(PHONE), pub, 0);
	for (int i = 0; i < 6; i++) {
		snprintf(tag, sizeof(tag), "t%d", i);
		snprintf(ip, sizeof(ip), "198.51.100.%d", 40 + i);
		dialog_fork(d, (const uint8_t *)tag, (uint32_t)strlen(tag));
		dialog_sdp(d, SIDE_REMOTE, mk(ip, 7000), 1, 1, A4(PROXY), pub, 0);
	}
	assert_int_equal(stats[ST_forks], 3);
	assert_int_equal(stats[ST_forks_refused], 2);
	assert_null(strstr(stub_log, "dnat+ 198.51.100.44"));
	stub_reset();
	dialog_close(d, 0);
	for (int i = 0; i < 4; i++) {
		char want[48];
		snprintf(want, sizeof(want), "dnat- 198.51.100.%d:8000", 40 + i);
		assert_non_null(strstr(stub_log, want));
	}
}

/* A call the remote began does not fork at our side: tags change nothing. */
static void test_inbound_call_no_forks(void **st)
{
	(void)st;
	struct dialog *d = call();
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 0, 1, A4(PROXY), pub, 0);
	assert_int_equal(dialog_fork(d, (const uint8_t *)"x", 1), 0);
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8000), 1, 1, A4(PHONE), pub, 0);
	dialog_confirmed(d, 0);
	assert_int_equal(dialog_fork(d, (const uint8_t *)"y", 1), 0);
	assert_int_equal(stats[ST_forks], 0);
}

/* The state file of the tables now (bindings, then dialogs), as the
 * daemon writes it at a restart; freed by state_restore. */
static char *state_text(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	binding_save(f, 0);
	dialog_save(f, 0);
	fclose(f);
	return text;
}

/* Read it back line by line into fresh tables, every line accepted. */
static void state_restore(char *text)
{
	for (char *ln = strtok(text, "\n"); ln; ln = strtok(NULL, "\n"))
		assert_int_equal(ln[0] == 'B' ? binding_restore_line(ln, 0) : dialog_restore_line(ln, 0), 0);
	free(text);
}

/* The state file keeps a stream's RTCP layout (its own port, rtcp-mux):
 * after a restart the same elements come back. Lines without it (older
 * files) still restore. */
static void test_state_keeps_rtcp_layout(void **st)
{
	(void)st;
	struct dialog *d = call();
	dialog_sdp(d, SIDE_PHONE, mka("192.168.1.10", 8000, "a=rtcp:53020\r\n"), 0, 1, A4(PHONE), pub, 0);
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 1, 1, A4(PROXY), pub, 0);
	char *text = state_text();
	teardown(NULL);
	setup(NULL);
	stub_reset();
	state_restore(text);
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.9:53020 192.168.1.10:53020\n"));
	assert_null(strstr(stub_log, "dnat+ 198.51.100.9:8001"));
	assert_non_null(strstr(stub_log, "snat+ 192.168.1.10:53020 203.0.113.1:53020\n"));
	/* an older line, without the RTCP fields: RTP+1 as before */
	teardown(NULL);
	setup(NULL);
	stub_reset();
	assert_int_equal(dialog_restore_line("D 636964 c0a8010a 5060 c6336401 5060 1 60000 0 1 1 2 1 3 0", 0), 0);
	assert_int_equal(dialog_restore_line("S c0a8010a 8000 8000 2 0 c6336409 c6336409 7000", 0), 0);
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.9:8001 192.168.1.10:8001\n"));
}

/* A phone whose pinholes came back from the state file is one of the
 * phones holding pinholes (phones_pin), as if it had opened them: the
 * restore counted its pinholes but not the phone, so the fair share was
 * computed for one phone too few (here the other phone took 6 of 8, not
 * its half of the scarce 3/4), and closing the restored call took the
 * count below zero. */
static void test_state_restore_counts_phone(void **st)
{
	(void)st;
	char cid[16];
	int opened = 0;

	assert_int_equal(dialog_restore_line("D 636964 c0a8010a 5060 c6336401 5060 1 60000 0 1 1 2 1 3 0", 0), 0);
	assert_int_equal(dialog_restore_line("S c0a8010a 8000 8000 2 0 c6336409 c6336409 7000", 0), 0);
	assert_int_equal(dialog_restore_line("S c0a8010a 8002 8002 2 1 c6336409 c6336409 7002", 0), 0);
	assert_int_equal(stats[ST_pinholes], 2);
	struct binding *sb = binding_get(a4(PHONE + 1), 5060, BIND_SIG, 0, 0);
	for (int i = 0; i < 8; i++) {
		snprintf(cid, sizeof(cid), "b%d", i);
		struct dialog *d = dialog_create((const uint8_t *)cid, (uint32_t)strlen(cid), A4(PHONE + 1), 5060,
						 A4(PROXY), 5060, sb, 0);
		assert_non_null(d);
		dialog_sdp(d, SIDE_PHONE, mk("192.168.1.11", 10000 + 2 * i), 0, 1, A4(PHONE + 1), pub, 0);
		opened += pub[0] != 0;
	}
	/* free below 6 of 8; from there each of the two phones keeps 3 */
	assert_int_equal(opened, 4);
	assert_int_equal(stats[ST_refused_pinholes_share], 4);
	assert_int_equal(stats[ST_refused_pinholes_full], 0);
}

/* Routed IPv6 streams come from a pool of their own. A remote's SDP takes
 * a dialog's routed slots (up to 4) with no pinhole yet, so with the pool
 * sized limits.pinholes two early calls whose remote offered four IN IP6
 * lines each took all 8 entries, and a third call's IPv6 stream was
 * refused while no pinhole was open at all: every dialog must find its 4. */
static void test_routed_pool_not_taken_by_remote_offers(void **st)
{
	(void)st;
	struct addr ph, px;
	char cid[16];
	assert_true(addr_parse_str("2001:db8:77::10", &ph));
	assert_true(addr_parse_str("2001:db8:113::10", &px));
	cf.lan[1].net = ph;
	cf.lan[1].plen = 64;
	cf.n_lan = 2;
	for (int i = 0; i < 2; i++) {
		snprintf(cid, sizeof(cid), "in%d", i);
		struct dialog *d = dialog_create((const uint8_t *)cid, 3, &ph, 5060, &px, 5060, NULL, 0);
		assert_non_null(d);
		snprintf(sdpbuf, sizeof(sdpbuf),
			 "v=0\r\nc=IN IP6 2001:db8:113::20\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n"
			 "m=video 7002 RTP/AVP 96\r\nm=audio 7004 RTP/AVP 0\r\nm=video 7006 RTP/AVP 96\r\n");
		assert_int_equal(sdp_parse(&sd, (const uint8_t *)sdpbuf,
					   (struct span){ 0, (uint32_t)strlen(sdpbuf) }), SDP_OK);
		dialog_sdp(d, SIDE_REMOTE, &sd, 0, 1, &px, pub, 0);
	}
	assert_int_equal(stats[ST_pinholes], 0);
	struct dialog *d = dialog_create((const uint8_t *)"out", 3, &ph, 5060, &px, 5060, NULL, 0);
	assert_non_null(d);
	stub_reset();
	dialog_sdp(d, SIDE_PHONE, mk6("2001:db8:77::10", 16800), 0, 1, &ph, pub, 0);
	dialog_sdp(d, SIDE_REMOTE, mk6("2001:db8:113::30", 7000), 1, 1, &px, pub, 0);
	assert_non_null(strstr(stub_log, "ct+ [2001:db8:113::30]:7000 [2001:db8:77::10]:16800 180s\n"));
	assert_int_equal(stats[ST_pinholes_refused], 0);
	assert_int_equal(stats[ST_pinholes], 1);
}

/* dialog_fini then dialog_init (what each test, and any re-init, does):
 * nothing of the old tables is used. The restore's current dialog pointed
 * into the unmapped pool, so an S line without its D line wrote there,
 * and the walks after dialog_fini read pool_used entries of no pool. */
static void test_reinit_forgets_old_tables(void **st)
{
	(void)st;
	assert_int_equal(dialog_restore_line("D 636964 c0a8010a 5060 c6336401 5060 1 60000 0 1 1 2 1 3 0", 0), 0);
	assert_int_equal(dialog_restore_line("S c0a8010a 8000 8000 2 0 c6336409 c6336409 7000", 0), 0);
	dialog_fini();
	FILE *f = fopen("/dev/null", "w");
	assert_non_null(f);
	dialog_expire(UINT64_MAX);
	dialog_save(f, 0);
	dialog_dump(f, 0);
	uint32_t cursor = 0;
	struct dialog_view v;
	assert_int_equal(dialog_view_next(&cursor, &v, 0), 0);
	fclose(f);
	binding_fini();
	setup(NULL);
	assert_int_equal(dialog_restore_line("S c0a8010a 8002 8002 2 0 c6336409 c6336409 7002", 0), -1);
	assert_int_equal(dialog_restore_line("R 0 198.51.100.9 7000", 0), -1);
}

/* SDP of n audio lines on ports port, port+2, ... */
static const struct sdp *mkn(int n, int port)
{
	int o = snprintf(sdpbuf, sizeof(sdpbuf), "v=0\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\n");
	for (int i = 0; i < n; i++)
		o += snprintf(sdpbuf + o, sizeof(sdpbuf) - (size_t)o, "m=audio %d RTP/AVP 0\r\n", port + 2 * i);
	assert_true(o < (int)sizeof(sdpbuf));
	assert_int_equal(sdp_parse(&sd, (const uint8_t *)sdpbuf, (struct span){ 0, (uint32_t)strlen(sdpbuf) }), SDP_OK);
	return &sd;
}

/* A re-offer that moves 7 streams needs 14 of a call's 12 stream slots
 * (the old ones retire at the answer): the last two are refused with
 * m= port 0, and that was counted nowhere. */
static void test_streams_over_call_slots_counted(void **st)
{
	(void)st;
	struct dialog *d = call();
	dialog_sdp(d, SIDE_PHONE, mkn(7, 8000), 0, 1, A4(PHONE), pub, 0);
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 1, 1, A4(PROXY), pub, 0);
	assert_int_equal(stats[ST_pinholes], 7);
	dialog_sdp(d, SIDE_PHONE, mkn(7, 9000), 0, 2, A4(PHONE), pub, 0);
	assert_int_not_equal(pub[4], 0);
	assert_int_equal(pub[5], 0);
	assert_int_equal(pub[6], 0);
	assert_int_equal(stats[ST_pinholes], 12);
	assert_int_equal(stats[ST_pinholes_refused], 2);
	dialog_close(d, 0);
	assert_int_equal(stats[ST_pinholes], 0);
}

/* A restart after a forked call was answered: the late 2xx of the losing
 * fork must still be told apart (who called and which fork won are kept). */
static void test_state_keeps_fork_winner(void **st)
{
	(void)st;
	struct dialog *d = call();
	dialog_set_caller(d, SIDE_PHONE);
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8000), 0, 1, A4(PHONE), pub, 0);
	dialog_fork(d, (const uint8_t *)"forkA", 5);
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 1, 1, A4(PROXY), pub, 0);
	dialog_confirmed(d, 0);
	char *text = state_text();
	teardown(NULL);
	/* a restart draws a new table key: the winner must still be known */
	struct siphash_key was = siphash_table_key;
	siphash_table_key.k0 ^= 0x9e3779b97f4a7c15ULL;
	setup(NULL);
	state_restore(text);
	d = dialog_find((const uint8_t *)"cid", 3, A4(PHONE));
	assert_non_null(d);
	assert_int_equal(dialog_fork(d, (const uint8_t *)"forkB", 5), 1);
	assert_int_equal(dialog_fork(d, (const uint8_t *)"forkA", 5), 0);
	assert_int_equal(dialog_fork(d, (const uint8_t *)"forkB", 5), 1);
	assert_int_equal(dialog_fork(d, (const uint8_t *)"forkA", 5), 0);
	siphash_table_key = was;
}

/* A routed IPv6 call survives a restart: the state file carries the
 * dialog's IPv6 key and its conntrack pinholes, which the BYE then deletes
 * (a forgotten entry would stay open while media flows). */
static void test_state_keeps_routed_v6(void **st)
{
	(void)st;
	struct addr ph, px;
	assert_true(addr_parse_str("2001:db8:77::10", &ph));
	assert_true(addr_parse_str("2001:db8:113::10", &px));
	cf.lan[1].net = ph;
	cf.lan[1].plen = 64;
	cf.n_lan = 2;
	struct dialog *d = dialog_create((const uint8_t *)"v6cid", 5, &ph, 5060, &px, 5060, NULL, 0);
	assert_non_null(d);
	dialog_sdp(d, SIDE_PHONE, mk6("2001:db8:77::10", 16800), 0, 1, &ph, pub, 0);
	dialog_sdp(d, SIDE_REMOTE, mk6("2001:db8:113::20", 7000), 1, 1, &px, pub, 0);
	assert_non_null(strstr(stub_log, "ct+ [2001:db8:113::20]:7000 [2001:db8:77::10]:16800 180s\n"));
	char *text = state_text();
	assert_non_null(strstr(text, " 2001:db8:77::10 5060 2001:db8:113::10 5060 "));
	teardown(NULL);
	setup(NULL);
	cf.lan[1].net = ph;
	cf.lan[1].plen = 64;
	cf.n_lan = 2;
	stub_reset();
	state_restore(text);
	assert_string_equal(stub_log, ""); /* restored, not created again */
	d = dialog_find((const uint8_t *)"v6cid", 5, &ph);
	assert_non_null(d);
	assert_int_equal(stats[ST_pinholes], 1);
	dialog_close(d, 0);
	assert_non_null(strstr(stub_log, "ct- [2001:db8:113::20]:7000 [2001:db8:77::10]:16800\n"));
	assert_non_null(strstr(stub_log, "ct- [2001:db8:113::20]:7001 [2001:db8:77::10]:16801\n"));
	assert_int_equal(stats[ST_pinholes], 0);
}


/* wan.masquerade6: the /64 of `ph` masqueraded behind `pub6`. */
static void masq6_conf(const struct addr *ph, const struct addr *pub6)
{
	cf.lan[1].net = *ph;
	cf.lan[1].plen = 64;
	cf.n_lan = 2;
	cf.masq6[0] = cf.lan[1];
	cf.n_masq6 = 1;
	binding_set_public(1, pub6);
}

/* A masqueraded IPv6 call (wan.masquerade6) survives a restart: its
 * bindings and streams come back from text addresses, with their IPv6
 * SNAT and DNAT elements. */
static void test_state_keeps_masq6(void **st)
{
	(void)st;
	struct addr ph, px, pub6;
	assert_true(addr_parse_str("fd00:78::10", &ph));
	assert_true(addr_parse_str("2001:db8:113::10", &px));
	assert_true(addr_parse_str("2001:db8:113::1", &pub6));
	masq6_conf(&ph, &pub6);
	struct binding *sb = binding_get(&ph, 5060, BIND_SIG, 0, 0);
	struct dialog *d = dialog_create((const uint8_t *)"m6cid", 5, &ph, 5060, &px, 5060, sb, 0);
	assert_non_null(d);
	dialog_sdp(d, SIDE_PHONE, mk6("fd00:78::10", 16800), 0, 1, &ph, pub, 0);
	dialog_sdp(d, SIDE_REMOTE, mk6("2001:db8:113::20", 7000), 1, 1, &px, pub, 0);
	assert_non_null(strstr(stub_log, "dnat+ [2001:db8:113::20]:16800 [fd00:78::10]:16800\n"));
	char *text = state_text();
	assert_non_null(strstr(text, "B fd00:78::10 5060 5060 "));
	teardown(NULL);
	setup(NULL);
	masq6_conf(&ph, &pub6);
	stub_reset();
	state_restore(text);
	assert_non_null(strstr(stub_log, "snat+ [fd00:78::10]:5060 [2001:db8:113::1]:5060\n"));
	assert_non_null(strstr(stub_log, "snat+ [fd00:78::10]:16800 [2001:db8:113::1]:16800\n"));
	assert_non_null(strstr(stub_log, "dnat+ [2001:db8:113::20]:16800 [fd00:78::10]:16800\n"));
	assert_non_null(strstr(stub_log, "dnat+ [2001:db8:113::10]:5060 [fd00:78::10]:5060\n"));
	assert_non_null(dialog_find((const uint8_t *)"m6cid", 5, &ph));
	cf.n_masq6 = 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_offer_answer_then_bye, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_before_answer_scans, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reinvite_new_port_retires_on_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejected_reoffer_rolls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remote_moves_media, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retransmitted_answer_is_not_an_offer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_targets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fastpath_hold, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trunk_beyond_per_phone_share, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fair_share_when_scarce, setup_scarce, teardown),
		cmocka_unit_test_setup_teardown(test_sdp_rtcp_attributes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_keeps_routed_v6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_keeps_masq6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rtcp_other_port, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rtcp_address_and_refusal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rtcp_mux, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forked_invite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forks_bounded_and_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbound_call_no_forks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_keeps_rtcp_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_keeps_fork_winner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_restore_counts_phone, setup_tiny, teardown),
		cmocka_unit_test_setup_teardown(test_streams_over_call_slots_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reinit_forgets_old_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_routed_pool_not_taken_by_remote_offers, setup_tiny, teardown),
		cmocka_unit_test_setup_teardown(test_hairpin_peer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hairpin_policy_any, setup, teardown),
	};
	return cmocka_run_group_tests_name("dialog", tests, NULL, NULL);
}
