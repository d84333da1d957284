/* The binding table: port choice, pairs, refcounts, idle expiry, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "binding.h"
#include "conf.h"
#include "stats.h"
#include "stubs.h"

static struct conf cf;
#define PUB 0xcb007101

static int setup(void **st)
{
	(void)st;
	conf_defaults(&cf);
	cf.max_bindings = 8;
	cf.media_port_min = 20000;
	cf.media_port_max = 20005;
	cf.sig_port_min = 40000;
	cf.sig_port_max = 40001;
	cf.binding_idle_s = 10;
	memset(stats, 0, sizeof(stats));
	stub_reset();
	return binding_init(&cf, a4(PUB));
}

static int teardown(void **st)
{
	(void)st;
	binding_fini();
	return 0;
}

static void test_private_port_kept_when_free(void **st)
{
	(void)st;
	struct binding *a = binding_get(a4(0xc0a8010a), 5060, BIND_SIG, 0, 0);
	struct binding *b = binding_get(a4(0xc0a8010b), 5060, BIND_SIG, 0, 0);
	struct binding *c = binding_get(a4(0xc0a8010c), 5060, BIND_SIG, 0, 0);
	struct binding *d = binding_get(a4(0xc0a8010d), 5060, BIND_SIG, 0, 0);
	assert_non_null(a);
	assert_int_equal(a->pub_port, 5060);
	assert_int_equal(b->pub_port, 40000);
	assert_int_equal(c->pub_port, 40001);
	assert_null(d); /* range exhausted: refused, counted */
	assert_int_equal(stats[ST_drop_no_binding], 1);
	assert_ptr_equal(binding_get(a4(0xc0a8010a), 5060, BIND_SIG, 0, 0), a);
	assert_ptr_equal(binding_find_public(40000), b);
	assert_ptr_equal(binding_find(a4(0xc0a8010b), 5060), b);
	assert_non_null(strstr(stub_log, "snat+ 192.168.1.11:5060 203.0.113.1:40000\n"));
}

static void test_media_pairs(void **st)
{
	(void)st;
	struct binding *a = binding_get(a4(0xc0a8010a), 30000, BIND_MEDIA, 0, 0);
	struct binding *b = binding_get(a4(0xc0a8010b), 30000, BIND_MEDIA, 0, 0);
	struct binding *c = binding_get(a4(0xc0a8010c), 29999, BIND_MEDIA, 0, 0);
	assert_int_equal(a->pub_port, 30000);
	assert_int_equal(b->pub_port, 20000);
	/* 29999 is free but 30000 (its RTCP) is not */
	assert_int_equal(c->pub_port, 20002);
	assert_ptr_equal(binding_find_public(20001), b); /* RTCP half */
	binding_ref(b);
	binding_unref(b, 5);
	/* a media binding goes as soon as nothing uses it */
	assert_null(binding_find(a4(0xc0a8010b), 30000));
	assert_non_null(strstr(stub_log, "snat- 192.168.1.11:30000"));
	assert_non_null(strstr(stub_log, "snat- 192.168.1.11:30001"));
	struct binding *d = binding_get(a4(0xc0a8010d), 30000, BIND_MEDIA, 0, 0);
	/* round robin: a port just released is not handed straight out */
	assert_int_equal(d->pub_port, 20004);
}

static void test_overlapping_pairs_refused(void **st)
{
	(void)st;
	assert_non_null(binding_get(a4(0xc0a8010a), 10002, BIND_MEDIA, 0, 0));
	assert_null(binding_get(a4(0xc0a8010a), 10003, BIND_MEDIA, 0, 0));
	assert_null(binding_get(a4(0xc0a8010a), 10001, BIND_MEDIA, 0, 0));
	assert_null(binding_get(a4(0xc0a8010a), 10003, BIND_SIG, 0, 0));
	assert_non_null(binding_get(a4(0xc0a8010a), 10004, BIND_MEDIA, 0, 0));
	assert_non_null(binding_get(a4(0xc0a8010b), 10003, BIND_MEDIA, 0, 0));
}

static void test_want_pub_and_idle(void **st)
{
	(void)st;
	struct binding *a = binding_get(a4(0xc0a8010a), 5060, BIND_SIG, 6000, 0);
	assert_int_equal(a->pub_port, 6000);
	assert_true(a->flags & BF_ADOPTED);
	binding_expire(9999);
	assert_non_null(binding_find(a4(0xc0a8010a), 5060));
	binding_expire(10000);
	assert_null(binding_find(a4(0xc0a8010a), 5060));
	assert_int_equal(stats[ST_bindings], 0);
}

static void test_registration(void **st)
{
	(void)st;
	struct binding *a = binding_get(a4(0xc0a8010a), 5060, BIND_SIG, 0, 0);
	binding_register(a, a4(0xc6336401), 0, 60, 0);
	assert_int_equal(stats[ST_registrations], 1);
	assert_non_null(strstr(stub_log, "dnat+ 198.51.100.1:5060 192.168.1.10:5060\n"));
	binding_expire(30000);
	assert_non_null(binding_find(a4(0xc0a8010a), 5060));
	binding_expire(60000); /* registration over; then idle for 10 s */
	assert_int_equal(stats[ST_registrations], 0);
	assert_non_null(strstr(stub_log, "dnat- 198.51.100.1:5060"));
	assert_non_null(binding_find(a4(0xc0a8010a), 5060));
	binding_expire(70000);
	assert_null(binding_find(a4(0xc0a8010a), 5060));
}

static void test_table_full(void **st)
{
	(void)st;
	for (int i = 0; i < 8; i++)
		assert_non_null(binding_get(a4(0x0a000001 + (uint32_t)i), (uint16_t)(2000 + i), BIND_SIG, 0, 0));
	assert_null(binding_get(a4(0x0a0000ff), 2000, BIND_SIG, 0, 0));
	assert_int_equal(stats[ST_drop_limit], 1);
	assert_int_equal(stats[ST_bindings], 8);
}

static int setup_share(void **st)
{
	(void)st;
	conf_defaults(&cf);
	cf.max_bindings = 100;
	cf.max_pinholes_per_phone = 10;
	memset(stats, 0, sizeof(stats));
	stub_reset();
	return binding_init(&cf, a4(PUB));
}

/* Issue 8: one LAN host may hold bindings freely until the table is 3/4
 * full; then a host holding its share is refused (counted), and another
 * host still gets its binding (a REGISTER flood from 5,000 sockets of one
 * host cannot take every public port). */
static void test_fair_share_per_host(void **st)
{
	(void)st;
	int made = 0;
	for (int i = 0; i < 100; i++) {
		stub_reset();
		if (binding_get(a4(0xc0a8010a), (uint16_t)(5000 + i), BIND_SIG, 0, 0))
			made++;
	}
	assert_int_equal(made, 75);
	assert_int_equal(stats[ST_refused_bindings_share], 25);
	assert_int_equal(stats[ST_refused_bindings_full], 0);
	assert_non_null(binding_get(a4(0xc0a8010b), 5060, BIND_SIG, 0, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_private_port_kept_when_free, setup, teardown),
		cmocka_unit_test_setup_teardown(test_media_pairs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overlapping_pairs_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_want_pub_and_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fair_share_per_host, setup_share, teardown),
	};
	return cmocka_run_group_tests_name("binding", tests, NULL, NULL);
}
