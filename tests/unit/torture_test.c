/* Every RFC 4475 / RFC 5118 torture message through the whole policy
 * (alg_packet), in the direction and with the outcome that
 * tests/data/torture/expected.tsv gives (its header says how to read it).
 * Per case, in a fresh ALG:
 *   - the verdict and whether the datagram was rewritten are as expected;
 *   - state=none: no binding, dialog or pinhole was created and no kernel
 *     element was asked for;
 *   - out: no LAN address literal leaves (lan_left=no), or, for a leak the
 *     ALG is known to have today, it is still there (lan_left=yes: the row
 *     must change when the ALG is fixed);
 *   - a rewritten datagram has right lengths and checksums, and when it
 *     parses as SIP with a Content-Length, that equals its body.
 * TORTURE_PRINT=1 prints what the ALG does for each case instead of
 * failing (to review a change of behaviour). */
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
#include "log.h"
#include "sipmsg.h"
#include "stats.h"
#include "pkt.h"
#include "stubs.h"
#include "testpkt.h"

#define DIR "tests/data/torture/"
#define PHONE 0xc0a8010au /* 192.168.1.10 */
#define REM   0xc6336401u /* 198.51.100.1 */
#define PUB   0xcb007101u /* 203.0.113.1 */

struct row {
	char file[64];
	char dir[4];      /* out | in */
	char subst[48];   /* ADDR, ADDR@body or - */
	char verdict[8];  /* accept | drop */
	char rewritten[4];
	char state[8];    /* none | any */
	char lan_left[4]; /* out: no | yes (known leak) | - */
	char name[80];
};

static struct row rows[256];
static int nrows;
static int print_mode;
static struct conf cf;
static uint8_t msgbuf[70000], pkt[70000], out[70000];

static long slurp(const char *path, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, cap, f);
	fclose(f);
	return (long)n;
}

#define dig tp_dig

/* Whole-token occurrences of `from` (a dotted quad) replaced by `to`, in
 * [start, n). Returns the new length. */
static uint32_t substitute(uint8_t *b, uint32_t n, uint32_t start, const char *from, const char *to)
{
	static uint8_t tmp[70000];
	size_t fl = strlen(from), tl = strlen(to);
	uint32_t o = 0;

	for (uint32_t i = 0; i < n;) {
		if (i >= start && i + fl <= n && memcmp(b + i, from, fl) == 0 &&
		    (i == 0 || (!dig(b[i - 1]) && b[i - 1] != '.')) &&
		    (i + fl == n || !dig(b[i + fl]))) {
			memcpy(tmp + o, to, tl);
			o += (uint32_t)tl;
			i += (uint32_t)fl;
		} else {
			tmp[o++] = b[i++];
		}
	}
	memcpy(b, tmp, o);
	return o;
}

static int setup(void **st)
{
	(void)st;
	conf_defaults(&cf);
	strcpy(cf.wan_if, "wan");
	cf.public_ip = PUB;
	cf.lan[0] = conf_net_v4(0xc0a80100, 24);
	cf.n_lan = 1;
	stub_reset();
	stub_ct_snat_found = 0;
	memset(stats, 0, sizeof(stats));
	return alg_init(&cf, a4(PUB));
}

static int teardown(void **st)
{
	(void)st;
	alg_fini();
	return 0;
}

/* ADDR[,ADDR...][@body]: each address, as a whole token, becomes the
 * phone's (192.168.1.10); @body limits that to the body. When the message's
 * Content-Length was right, it is kept right (the test wants the ALG's
 * behaviour on the message, not on a length error the test made). */
static uint32_t substitute_all(const struct row *r, uint32_t n)
{
	static uint8_t head[70000], body[70000];
	static struct sip_msg m;
	char list[48], *save = NULL;
	int body_only = 0;

	snprintf(list, sizeof(list), "%s", r->subst);
	char *at = strchr(list, '@');
	if (at) {
		*at = 0;
		body_only = 1;
	}
	int clean = sip_parse(&m, msgbuf, n) == SIP_OK && m.trailing == 0;
	const uint8_t *e = memmem(msgbuf, n, "\r\n\r\n", 4);
	uint32_t hl = e ? (uint32_t)(e - msgbuf) + 4 : n, bl = n - hl;
	uint32_t cl_len = clean && m.clen_idx >= 0 ? m.hdr[m.clen_idx].value.len : 0;
	memcpy(head, msgbuf, hl);
	memcpy(body, msgbuf + hl, bl);
	for (char *a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
		uint32_t h0 = hl, b0 = bl;
		if (!body_only) {
			/* the Content-Length value sits before any address: offsets
			 * up to it do not move */
			hl = substitute(head, hl, 0, a, "192.168.1.10");
		}
		bl = substitute(body, bl, 0, a, "192.168.1.10");
		if (hl == h0 && bl == b0)
			fail_msg("%s: substitution of %s matched nothing", r->name, a);
	}
	memcpy(msgbuf, head, hl);
	char num[16];
	uint32_t o = hl;
	if (cl_len) {
		/* locate the Content-Length value in the new head by header order */
		static struct sip_msg m3;
		(void)sip_parse(&m3, msgbuf, hl); /* headers only: the header array is filled */
		if (m3.clen_idx < 0)
			fail_msg("%s: Content-Length lost in the substitution", r->name);
		struct span v = m3.hdr[m3.clen_idx].value;
		int k = snprintf(num, sizeof(num), "%u", bl);
		memmove(msgbuf + v.off + k, msgbuf + v.off + v.len, hl - v.off - v.len);
		memcpy(msgbuf + v.off, num, (size_t)k);
		o = hl + (uint32_t)k - v.len;
	}
	memcpy(msgbuf + o, body, bl);
	return o + bl;
}

/* The message bytes of a row: the file, "+crlf" appends an empty line
 * (baddn.dat exists in both framings), then the row's substitution. */
static uint32_t load(const struct row *r)
{
	char path[128], file[64];
	int crlf = 0;

	snprintf(file, sizeof(file), "%s", r->file);
	char *plus = strstr(file, "+crlf");
	if (plus) {
		*plus = 0;
		crlf = 1;
	}
	snprintf(path, sizeof(path), DIR "%s", file);
	long n = slurp(path, msgbuf, sizeof(msgbuf) - 2);
	if (n < 0)
		fail_msg("%s: cannot read %s", r->name, path);
	if (crlf) {
		memcpy(msgbuf + n, "\r\n", 2);
		n += 2;
	}
	if (strcmp(r->dir, "out") == 0 && strcmp(r->subst, "-") != 0)
		n = substitute_all(r, (uint32_t)n);
	return (uint32_t)n;
}

static void run_row(void **st)
{
	const struct row *r = *st;
	uint32_t n = load(r), olen = 0;
	int outbound = strcmp(r->dir, "out") == 0;
	uint32_t len = outbound ? tp_udp4(pkt, PHONE, 5060, REM, 5060, msgbuf, n)
				: tp_udp4(pkt, REM, 5060, PHONE, 5060, msgbuf, n);
	uint64_t b0 = stats[ST_bindings_created], d0 = stats[ST_dialogs_created],
		 p0 = stats[ST_pinholes_opened];

	enum alg_verdict v = alg_packet(pkt, len, out, sizeof(out), &olen, 1000000);

	const uint8_t *pl = olen ? out + 28 : msgbuf;
	uint32_t pn = olen ? olen - 28 : n;
	int created = stats[ST_bindings_created] != b0 || stats[ST_dialogs_created] != d0 ||
		      stats[ST_pinholes_opened] != p0 || strchr(stub_log, '+') != NULL;
	int leak = outbound && v == ALG_ACCEPT && tp_find_lan(pl, pn, 0, 0xc0a80100u, 0xffffff00u) >= 0;
	const char *got_v = v == ALG_ACCEPT ? "accept" : "drop";
	const char *got_rw = olen ? "yes" : "no";

	if (print_mode) {
		struct sip_msg m;
		int rc = sip_parse(&m, msgbuf, n);
		printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t# parse=%s bind+%llu dlg+%llu pin+%llu\n",
		       r->file, r->dir, r->subst, got_v, got_rw, created ? "any" : "none",
		       outbound ? (leak ? "yes" : "no") : "-", rc == SIP_OK && m.trailing ?
		       "ok+trailing" : sip_strerror(rc),
		       (unsigned long long)(stats[ST_bindings_created] - b0),
		       (unsigned long long)(stats[ST_dialogs_created] - d0),
		       (unsigned long long)(stats[ST_pinholes_opened] - p0));
		return;
	}
	if (strcmp(got_v, r->verdict) != 0)
		fail_msg("%s: verdict %s, expected %s", r->name, got_v, r->verdict);
	if (strcmp(got_rw, r->rewritten) != 0)
		fail_msg("%s: rewritten %s, expected %s", r->name, got_rw, r->rewritten);
	if (strcmp(r->state, "none") == 0 && created)
		fail_msg("%s: state created (bindings +%llu, dialogs +%llu, pinholes +%llu; kernel: %s)",
			 r->name, (unsigned long long)(stats[ST_bindings_created] - b0),
			 (unsigned long long)(stats[ST_dialogs_created] - d0),
			 (unsigned long long)(stats[ST_pinholes_opened] - p0), stub_log);
	if (outbound && leak != (strcmp(r->lan_left, "yes") == 0))
		fail_msg("%s: LAN literal %s, expected lan_left=%s", r->name,
			 leak ? "leaves" : "does not leave", r->lan_left);
	if (olen) {
		assert_int_equal(out[2] << 8 | out[3], olen);
		assert_int_equal(tp_csum(out, 20, 0), 0);
		uint32_t ulen = (uint32_t)(out[24] << 8 | out[25]);
		assert_int_equal(ulen, olen - 20);
		uint32_t s = 17 + ulen;
		for (int i = 12; i < 20; i += 2)
			s += (uint32_t)(out[i] << 8 | out[i + 1]);
		assert_int_equal(tp_csum(out + 20, ulen, s), 0);
		struct sip_msg m;
		if (sip_parse(&m, pl, pn) == SIP_OK && m.clen_idx >= 0 && m.trailing)
			fail_msg("%s: Content-Length is not the body length after the rewrite", r->name);
	}
}

/* Every torture file of the MANIFEST has a row in both directions. */
static void test_tsv_complete(void **st)
{
	(void)st;
	FILE *f = fopen(DIR "MANIFEST.tsv", "r");
	char line[1024];
	int files = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *tab = strchr(line, '\t');
		if (!tab || strncmp(line, "file\t", 5) == 0)
			continue;
		*tab = 0;
		files++;
		int in = 0, outd = 0;
		for (int i = 0; i < nrows; i++)
			if (strcmp(rows[i].file, line) == 0) {
				in += strcmp(rows[i].dir, "in") == 0;
				outd += strcmp(rows[i].dir, "out") == 0;
			}
		if (in != 1 || outd != 1)
			fail_msg("expected.tsv: %s has %d in and %d out rows (want 1 and 1)", line, in, outd);
	}
	fclose(f);
	assert_int_equal(files, 61);
}

/* Regression: a folded CSeq ("cseq: 0009\r\n  INVITE", RFC 4475 3.1.1.1)
 * was "bad CSeq", so the valid wsinv.dat was not processed at all. */
static void test_folded_cseq_parses(void **st)
{
	(void)st;
	static struct sip_msg m;
	long n = slurp(DIR "rfc4475/wsinv.dat", msgbuf, sizeof(msgbuf));
	assert_true(n > 0);
	assert_int_equal(sip_parse(&m, msgbuf, (uint32_t)n), SIP_OK);
	assert_int_equal(m.cseq, 9);
	assert_int_equal(m.method, M_INVITE);
}

/* Regression: sip_msg.trailing lies past hdr[] and was not reset, so a
 * message without Content-Length inherited the previous message's trailing
 * count and the ALG refused it as "a second message after the body". */
static void test_stale_trailing_not_inherited(void **st)
{
	(void)st;
	static struct sip_msg m;
	static uint8_t a[8192];
	long n = slurp(DIR "rfc4475/dblreq.dat", a, sizeof(a));
	assert_true(n > 0);
	assert_int_equal(sip_parse(&m, a, (uint32_t)n), SIP_OK);
	assert_true(m.trailing > 0);
	n = slurp(DIR "rfc4475/inv2543.dat", msgbuf, sizeof(msgbuf));
	assert_true(n > 0);
	assert_int_equal(sip_parse(&m, msgbuf, (uint32_t)n), SIP_OK);
	assert_int_equal(m.trailing, 0);
	assert_int_equal(m.clen_idx, -1);
}

static void load_tsv(void)
{
	FILE *f = fopen(DIR "expected.tsv", "r");
	char line[1024];

	if (!f) {
		fprintf(stderr, "cannot open " DIR "expected.tsv (run from the repo root)\n");
		exit(1);
	}
	while (fgets(line, sizeof(line), f) && nrows < (int)(sizeof(rows) / sizeof(rows[0]))) {
		struct row *r = &rows[nrows];
		if (line[0] == '#' || line[0] == '\n' || strncmp(line, "file\t", 5) == 0)
			continue;
		if (sscanf(line, "%63[^\t]\t%3[^\t]\t%47[^\t]\t%7[^\t]\t%3[^\t]\t%7[^\t]\t%3[^\t\n]",
			   r->file, r->dir, r->subst, r->verdict, r->rewritten, r->state, r->lan_left) != 7) {
			fprintf(stderr, "expected.tsv: bad line: %s", line);
			exit(1);
		}
		char nm[80];
		snprintf(nm, sizeof(nm), "%s %s", r->file, r->dir);
		memcpy(r->name, nm, sizeof(nm));
		nrows++;
	}
	fclose(f);
}

/* The RFC 5118 messages over IPv6 (issue 13), as a phone on the LAN's
 * IPv6 prefix sends them and as it receives them: routed, so each leaves
 * byte for byte (a malformed one too: no IPv4 LAN literal in it to leak),
 * and only a parsed INVITE makes a dialog. */
static void test_rfc5118_over_ipv6(void **st)
{
	static const char *const files[] = {
		"ipv4-mapped-ipv6", "ipv6-bad", "ipv6-bug-abnf-3-colons", "ipv6-correct-abnf-2-colons",
		"ipv6-good", "ipv6-in-sdp", "mult-ip-in-header", "mult-ip-in-sdp", "port-ambiguous",
		"port-unambiguous", "via-received-param-no-delim", "via-received-param-with-delim",
	};
	static const uint8_t ph[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10 };
	static const uint8_t px[16] = { 0x20, 0x01, 0x0d, 0xb8, 0x01, 0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10 };
	char path[128];
	int seen = 0;

	(void)st;
	assert_true(addr_parse_str("2001:db8:77::", &cf.lan[1].net));
	cf.lan[1].plen = 64;
	cf.n_lan = 2;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), DIR "rfc5118/%s", files[i]);
		long n = slurp(path, msgbuf, sizeof(msgbuf));
		if (n < 0)
			continue; /* the list is the directory's as of writing */
		seen++;
		for (int outbound = 0; outbound < 2; outbound++) {
			uint32_t olen = 0;
			uint32_t len = outbound ? tp_udp6(pkt, ph, 5060, px, 5060, msgbuf, (uint32_t)n)
						: tp_udp6(pkt, px, 5060, ph, 5060, msgbuf, (uint32_t)n);
			enum alg_verdict v = alg_packet(pkt, len, out, sizeof(out), &olen, 1000000);
			/* octets after Content-Length are cut, as over IPv4
			 * (expected.tsv: ipv6-in-sdp and others in this copy) */
			static struct sip_msg m;
			uint32_t want = sip_parse(&m, msgbuf, (uint32_t)n) == SIP_OK && m.trailing
					? 48 + (uint32_t)n - m.trailing : 0;
			if (v != ALG_ACCEPT || olen != want)
				fail_msg("rfc5118/%s %s over IPv6: verdict %d, %u bytes out (want accept, %u)",
					 files[i], outbound ? "out" : "in", v, olen, want);
			if (want) {
				struct pkt_udp u;
				assert_int_equal(pkt_parse_udp(out, olen, &u), 0);
				assert_int_equal(pkt_udp_csum(out, &u), 0);
				assert_memory_equal(out + 48, msgbuf, olen - 48);
				assert_memory_equal(out + 8, pkt + 8, 32); /* addresses as they came */
			}
		}
	}
	assert_true(seen >= 10);
	assert_int_equal(stats[ST_sip_ipv6_rx], (uint64_t)(2 * seen));
	assert_int_equal(stats[ST_bindings_created], 0);
}

int main(void)
{
	static struct CMUnitTest tests[264];
	int n = 0;

	log_init(0, LOG_LVL_ERR);
	print_mode = getenv("TORTURE_PRINT") != NULL;
	load_tsv();
	tests[n++] = (struct CMUnitTest){ "expected.tsv covers every message", test_tsv_complete,
					  NULL, NULL, NULL };
	tests[n++] = (struct CMUnitTest){ "folded CSeq parses", test_folded_cseq_parses,
					  NULL, NULL, NULL };
	tests[n++] = (struct CMUnitTest){ "stale trailing not inherited", test_stale_trailing_not_inherited,
					  NULL, NULL, NULL };
	tests[n++] = (struct CMUnitTest){ "RFC 5118 over IPv6: routed, unchanged", test_rfc5118_over_ipv6,
					  setup, teardown, NULL };
	for (int i = 0; i < nrows; i++)
		tests[n++] = (struct CMUnitTest){ rows[i].name, run_row, setup, teardown, &rows[i] };
	return _cmocka_run_group_tests("torture", tests, (size_t)n, NULL, NULL);
}
