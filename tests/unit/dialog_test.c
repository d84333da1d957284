/* The dialog state machine: offer/answer drives pinholes; re-offers retire
 * old streams only when the exchange completes; rejections roll back;
 * timers end what never ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "binding.h"
#include "conf.h"
#include "dialog.h"
#include "sdp.h"
#include "stats.h"
#include "stubs.h"

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

static int setup(void **st)
{
	(void)st;
	conf_defaults(&cf);
	cf.lan[0].addr = 0xc0a80100;
	cf.lan[0].mask = 0xffffff00;
	cf.n_lan = 1;
	cf.media_other_hosts = 1;
	memset(stats, 0, sizeof(stats));
	stub_reset();
	assert_int_equal(binding_init(&cf, PUB), 0);
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
	struct binding *sb = binding_get(PHONE, 5060, BIND_SIG, 0, 0);
	struct dialog *d = dialog_create((const uint8_t *)"cid", 3, PHONE, 5060, PROXY, 5060, sb, 0);
	assert_non_null(d);
	assert_ptr_equal(dialog_find((const uint8_t *)"cid", 3, PHONE), d);
	assert_null(dialog_find((const uint8_t *)"cid", 3, PHONE + 1));
	return d;
}

static void test_offer_answer_then_bye(void **st)
{
	(void)st;
	struct dialog *d = call();
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.1:5060 192.168.1.10:5060\n"));
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8000), 0, 1, PHONE, pub, 0);
	assert_int_equal(pub[0], 8000);
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.1:8000 192.168.1.10:8000\n"));
	stub_reset();
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 1, 1, PROXY, pub, 0);
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
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8000), 0, 1, PHONE, pub, 0);
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
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8000), 0, 1, PHONE, pub, 0);
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 1, 1, PROXY, pub, 0);
	stub_reset();
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8100), 0, 2, PHONE, pub, 0);
	assert_int_equal(pub[0], 8100);
	assert_int_equal(stats[ST_pinholes], 2);   /* both, until the answer */
	assert_null(strstr(stub_log, "dnat- 198.51.100.9:8000"));
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 1, 2, PROXY, pub, 0);
	assert_int_equal(stats[ST_pinholes], 1);
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.9:8000"));
	assert_non_null(strstr(stub_log, "ct- 192.168.1.10:8000 198.51.100.9:7000\n"));
}

static void test_rejected_reoffer_rolls_back(void **st)
{
	(void)st;
	struct dialog *d = call();
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8000), 0, 1, PHONE, pub, 0);
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 1, 1, PROXY, pub, 0);
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.12", 8000), 0, 2, PHONE, pub, 0);
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
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8000), 0, 1, PHONE, pub, 0);
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 1, 1, PROXY, pub, 0);
	stub_reset();
	/* remote re-offer from another address: both accepted until the answer */
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.30", 7100), 0, 5, PROXY, pub, 0);
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.30:8000 192.168.1.10:8000\n"));
	assert_null(strstr(stub_log, "dnat- 198.51.100.9:8000"));
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8000), 1, 5, PHONE, pub, 0);
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.9:8000"));
	assert_non_null(strstr(stub_log, "ct- 192.168.1.10:8000 198.51.100.9:7000\n"));
	assert_int_equal(stats[ST_pinholes], 1);
}

static void test_retransmitted_answer_is_not_an_offer(void **st)
{
	(void)st;
	struct dialog *d = call();
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8000), 0, 1, PHONE, pub, 0);
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 1, 1, PROXY, pub, 0);
	/* the 200 again, before the ACK got through */
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 1, 1, PROXY, pub, 0);
	/* a re-INVITE offer from the phone must wait for its own answer */
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8100), 0, 2, PHONE, pub, 0);
	assert_int_equal(stats[ST_pinholes], 2);
	dialog_sdp(d, SIDE_REMOTE, mk("198.51.100.9", 7000), 1, 2, PROXY, pub, 0);
	assert_int_equal(stats[ST_pinholes], 1);
}

static void test_refused_targets(void **st)
{
	(void)st;
	struct dialog *d = call();
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 80), 0, 1, PHONE, pub, 0);
	assert_int_equal(pub[0], 0);
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.255", 8000), 0, 1, PHONE, pub, 0);
	assert_int_equal(pub[0], 0);
	dialog_sdp(d, SIDE_PHONE, mk("10.9.9.9", 8000), 0, 1, PHONE, pub, 0);
	assert_int_equal(pub[0], 0);
	cf.media_other_hosts = 0;
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.12", 8000), 0, 1, PHONE, pub, 0);
	assert_int_equal(pub[0], 0);
	assert_int_equal(stats[ST_pinholes], 0);
	assert_int_equal(stats[ST_pinholes_refused], 4);
}

static void test_timers(void **st)
{
	(void)st;
	struct dialog *d = call();
	dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 8000), 0, 1, PHONE, pub, 0);
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
	struct binding *sb = binding_find(PHONE, 5060);
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
	struct dialog *d2 = dialog_create((const uint8_t *)"cid2", 4, PHONE, 5060, PROXY, 5060, sb, early + full);
	assert_non_null(d2);
	dialog_expire(early + full + early / 2 + 1000);
	assert_int_equal(sb->fp_hold, 1);
	dialog_expire(early + full + early + 1);
	assert_null(dialog_find((const uint8_t *)"cid2", 4, PHONE));
	assert_int_equal(sb->fp_hold, 0);
}

/* Issue 8: a PBX trunk is one LAN address with hundreds of calls. While the
 * table has room, limits.pinholes_per_phone (64) is no cap: every stream of
 * 300 calls from one phone gets its pinhole. */
static void test_trunk_beyond_per_phone_share(void **st)
{
	(void)st;
	struct binding *sb = binding_get(PHONE, 5060, BIND_SIG, 0, 0);
	char cid[32], ip[] = "192.168.1.10";
	for (int i = 0; i < 300; i++) {
		snprintf(cid, sizeof(cid), "trunk%d", i);
		struct dialog *d = dialog_create((const uint8_t *)cid, (uint32_t)strlen(cid), PHONE, 5060, PROXY,
						 5060, sb, 0);
		assert_non_null(d);
		stub_reset();
		assert_int_equal(dialog_sdp(d, SIDE_PHONE, mk(ip, 10000 + 2 * i), 0, 1, PHONE, pub, 0), 0);
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
	cf.lan[0].addr = 0xc0a80100;
	cf.lan[0].mask = 0xffffff00;
	cf.n_lan = 1;
	memset(stats, 0, sizeof(stats));
	stub_reset();
	assert_int_equal(binding_init(&cf, PUB), 0);
	(void)st;
	return dialog_init(&cf);
}

/* Once a table is 3/4 full, a phone that holds its share is refused and
 * counted; another phone still gets its call and its pinhole (the flood
 * guarantee: one host cannot take the whole table). */
static void test_fair_share_when_scarce(void **st)
{
	(void)st;
	struct binding *sa = binding_get(PHONE, 5060, BIND_SIG, 0, 0);
	struct binding *sbb = binding_get(PHONE + 1, 5060, BIND_SIG, 0, 0);
	char cid[32];
	int opened = 0, created = 0;
	for (int i = 0; i < 100; i++) {
		snprintf(cid, sizeof(cid), "a%d", i);
		struct dialog *d = dialog_create((const uint8_t *)cid, (uint32_t)strlen(cid), PHONE, 5060, PROXY,
						 5060, sa, 0);
		assert_non_null(d);
		stub_reset();
		dialog_sdp(d, SIDE_PHONE, mk("192.168.1.10", 10000 + 2 * i), 0, 1, PHONE, pub, 0);
		opened += pub[0] != 0;
	}
	/* 3/4 of 100 pinholes, all to the one active phone */
	assert_int_equal(opened, 75);
	assert_int_equal(stats[ST_refused_pinholes_share], 25);
	assert_int_equal(stats[ST_refused_pinholes_full], 0);

	struct dialog *b = dialog_create((const uint8_t *)"b0", 2, PHONE + 1, 5060, PROXY, 5060, sbb, 0);
	assert_non_null(b);
	dialog_sdp(b, SIDE_PHONE, mk("192.168.1.11", 10000), 0, 1, PHONE + 1, pub, 0);
	assert_int_not_equal(pub[0], 0);

	/* dialogs: phone A stops when the table is 3/4 full (150 of 200) */
	for (int i = 100; i < 300; i++) {
		snprintf(cid, sizeof(cid), "a%d", i);
		if (!dialog_create((const uint8_t *)cid, (uint32_t)strlen(cid), PHONE, 5060, PROXY, 5060, sa, 0))
			break;
		created++;
	}
	assert_int_equal(stats[ST_dialogs], 150);
	assert_int_equal(stats[ST_refused_dialogs_share], 1);
	/* ... and phone B's next call still works */
	assert_non_null(dialog_create((const uint8_t *)"b1", 2, PHONE + 1, 5060, PROXY, 5060, sbb, 0));
	assert_int_equal(stats[ST_refused_dialogs_full], 0);
	(void)created;
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
	};
	return cmocka_run_group_tests_name("dialog", tests, NULL, NULL);
}
