/* conf_test: the config parser, table-driven. Every error case pins the
 * exact "FILE:LINE: reason" an operator will read. Run from the repo root
 * (as `make unit` does): it also reads conf/sipalgd.yaml and tests/data/conf/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))

/* The IPv4 view of a LAN network (its address and mask, host order). */
static uint32_t NA(struct conf_net n)
{
	uint32_t a = 0xdeadbeef, m = 0;
	assert_true(conf_net_get_v4(&n, &a, &m));
	return a;
}
static uint32_t NM(struct conf_net n)
{
	uint32_t a = 0, m = 0xdeadbeef;
	assert_true(conf_net_get_v4(&n, &a, &m));
	return m;
}

/* The smallest valid file; cases append a section to it (lines 1-4). */
#define BASE "wan:\n  interface: eth1\nlan:\n  networks: [192.168.1.0/24]\n"

static int parse(const char *yaml, struct conf *c, char *err, size_t errlen)
{
	return conf_parse_buffer("t.yaml", yaml, strlen(yaml), c, err, errlen);
}

static void test_defaults(void **state)
{
	struct conf c;

	(void)state;
	memset(&c, 0xa5, sizeof(c));
	conf_defaults(&c);
	assert_string_equal(c.wan_if, "");
	assert_int_equal(c.public_ip, 0);
	assert_int_equal(c.n_lan, 0);
	assert_int_equal(c.n_sip_ports, 1);
	assert_int_equal(c.sip_ports[0], 5060);
	assert_int_equal(c.queue_num, 0);
	assert_int_equal(c.queue_maxlen, 4096);
	assert_int_equal(c.holdoff_us, 2000);
	assert_int_equal(c.batch_max, 64);
	assert_int_equal(c.divert, CONF_DIVERT_IPTABLES);
	assert_int_equal(c.realtime_priority, 1);
	assert_int_equal(c.media_port_min, 20000);
	assert_int_equal(c.media_port_max, 39999);
	assert_int_equal(c.sig_port_min, 40000);
	assert_int_equal(c.sig_port_max, 49999);
	assert_int_equal(c.pinhole_src, CONF_PINHOLE_PEER);
	assert_int_equal(c.media_other_hosts, 0);
	assert_int_equal(c.inbound_src, CONF_INBOUND_REGISTRAR);
	assert_int_equal(c.dialog_timeout_s, 7200);
	assert_int_equal(c.early_timeout_s, 180);
	assert_int_equal(c.binding_idle_s, 300);
	assert_int_equal(c.register_max_s, 7200);
	assert_int_equal(c.max_bindings, 16384);
	assert_int_equal(c.max_dialogs, 8192);
	assert_int_equal(c.max_pinholes, 16384);
	assert_int_equal(c.max_pinholes_per_phone, 64);
	assert_int_equal(c.max_streams_per_call, 8);
	assert_int_equal(c.rate_per_source, 500);
	assert_string_equal(c.nft_table, "sipalgd");
	assert_string_equal(c.ctl_socket, "/run/sipalgd.sock");
	assert_string_equal(c.pid_file, "/run/sipalgd.pid");
	assert_int_equal(c.log_level, LOG_LVL_INFO);
	assert_int_equal(c.log_syslog, 0);
}

/* The minimal file gives the defaults plus the two required keys. */
static void test_minimal(void **state)
{
	struct conf c, d;
	char err[256];

	(void)state;
	assert_int_equal(parse(BASE, &c, err, sizeof(err)), 0);
	conf_defaults(&d);
	strcpy(d.wan_if, "eth1");
	d.lan[0] = conf_net_v4(IP(192, 168, 1, 0), 24);
	d.n_lan = 1;
	assert_memory_equal(&c, &d, sizeof(c));
}

/* The shipped example must parse and must say exactly the defaults: an
 * operator who copies it changes nothing by accident. */
static void test_example(void **state)
{
	struct conf c, d;
	char err[256] = "";

	(void)state;
	if (conf_load("conf/sipalgd.yaml", &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	conf_defaults(&d);
	strcpy(d.wan_if, "eth1");
	d.lan[0] = conf_net_v4(IP(192, 168, 1, 0), 24);
	d.n_lan = 1;
	assert_memory_equal(&c, &d, sizeof(c));
}

/* The same, key by key from the table, so a failure names the key. */
static void test_example_defaults_by_key(void **state)
{
	struct conf c, d;
	char err[256] = "", got[256], want[256];
	int bad = 0;

	(void)state;
	if (conf_load("conf/sipalgd.yaml", &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	conf_defaults(&d);
	for (int k = 0; k < conf_key_count(); k++) {
		const char *name = conf_key_name(k);
		if (!strcmp(name, "wan.interface") || !strcmp(name, "lan.networks"))
			continue;
		if (conf_key_differs(&c, &d, k)) {
			conf_key_format(&c, k, got, sizeof(got));
			conf_key_format(&d, k, want, sizeof(want));
			print_error("conf/sipalgd.yaml: %s is %s, the default is %s\n", name, got, want);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* ---- the key table against the documents ---------------------------------- */

static const char *const doc_sections[] = {
	"wan", "lan", "sip", "queue", "media", "timers", "limits", "paths", "log", NULL,
};

static int is_section(const char *s, size_t n)
{
	for (int i = 0; doc_sections[i]; i++)
		if (strlen(doc_sections[i]) == n && !strncmp(doc_sections[i], s, n))
			return 1;
	return 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		fail_msg("cannot open %s (run from the repository root)", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int is_word(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
}

/* Every "section.key" written anywhere in `text` (prose, comments, man
 * markup) must be a key of the table; returns how many are not, each
 * reported. Words after '/' or '.' are file names (src/log.c), not keys. */
static int unknown_dotted(const char *path, const char *text)
{
	int bad = 0, line = 1;

	for (const char *t = text; *t; t++) {
		if (*t == '\n')
			line++;
		if (!(*t >= 'a' && *t <= 'z') || (t > text && (is_word(t[-1]) || t[-1] == '/' || t[-1] == '.')))
			continue;
		const char *e = t;
		while (is_word(*e))
			e++;
		if (*e != '.' || !is_section(t, (size_t)(e - t)) || !is_word(e[1]))
			continue;
		const char *f = e + 1;
		while (is_word(*f))
			f++;
		char name[96];
		snprintf(name, sizeof(name), "%.*s", (int)(f - t), t);
		/* docs/limits.md named without its directory */
		if (f - e == 3 && !strncmp(e, ".md", 3)) {
			t = f - 1;
			continue;
		}
		if (conf_key_find(name) < 0) {
			print_error("%s:%d: names %s, which is not a key\n", path, line, name);
			bad++;
		}
		t = f - 1;
	}
	return bad;
}

/* Compare a document's set of keys with the table's: `seen[k]` counts. */
static int compare_keys(const char *path, const int *seen)
{
	int bad = 0;

	for (int k = 0; k < conf_key_count(); k++)
		if (!seen[k]) {
			print_error("%s: key %s of the table is not documented\n", path, conf_key_name(k));
			bad++;
		}
	return bad;
}

static int note_key(const char *path, int line, const char *sect, const char *key, size_t n, int *seen)
{
	char name[96];
	int k;

	/* sect "-": a top-level key ("mode"), no section */
	if (!strcmp(sect, "-"))
		snprintf(name, sizeof(name), "%.*s", (int)n, key);
	else
		snprintf(name, sizeof(name), "%s.%.*s", sect, (int)n, key);
	k = conf_key_find(name);
	if (k < 0) {
		print_error("%s:%d: documents %s, which is not a key\n", path, line, name);
		return 1;
	}
	seen[k]++;
	return 0;
}

/* conf/sipalgd.yaml: "section:" at column 0, "  key:" under it. */
static int yaml_doc_check(const char *path)
{
	char *text = slurp(path), sect[32] = "";
	int seen[128] = { 0 }, bad = 0, line = 0;

	assert_true(conf_key_count() <= 128);
	for (char *l = text; l && *l; ) {
		char *nl = strchr(l, '\n');
		size_t n = 0;
		line++;
		if (nl)
			*nl = '\0';
		if (l[0] >= 'a' && l[0] <= 'z') {
			while (is_word(l[n]))
				n++;
			snprintf(sect, sizeof(sect), "%.*s", (int)n, l);
			/* "mode: enforce": a top-level key with its value */
			if (l[n] == ':' && l[n + 1] == ' ' && l[n + 2] && l[n + 2] != '#')
				bad += note_key(path, line, "-", l, n, seen);
		} else if (l[0] == ' ' && l[1] == ' ' && l[2] >= 'a' && l[2] <= 'z') {
			while (is_word(l[2 + n]))
				n++;
			if (l[2 + n] == ':')
				bad += note_key(path, line, sect, l + 2, n, seen);
		}
		if (nl)
			*nl = '\n';
		l = nl ? nl + 1 : NULL;
	}
	bad += compare_keys(path, seen);
	bad += unknown_dotted(path, text);
	free(text);
	return bad;
}

/* sipalgd.yaml(5): under ".SH WAN" etc., each ".TP" is followed by
 * ".BR key ..." or ".B key" naming the keys (quoted parts are prose). */
static int man_doc_check(const char *path)
{
	char *text = slurp(path), sect[32] = "";
	int seen[128] = { 0 }, bad = 0, line = 0, after_tp = 0;

	for (char *l = text; l && *l; ) {
		char *nl = strchr(l, '\n');
		line++;
		if (nl)
			*nl = '\0';
		if (!strncmp(l, ".SH ", 4)) {
			sect[0] = '\0';
			if (strlen(l + 4) < sizeof(sect)) {
				int i;
				for (i = 0; l[4 + i]; i++)
					sect[i] = (char)((l[4 + i] >= 'A' && l[4 + i] <= 'Z') ? l[4 + i] + 32 : l[4 + i]);
				sect[i] = '\0';
				if (conf_key_find(sect) >= 0)
					snprintf(sect, sizeof(sect), "-"); /* a top-level key's own section */
				else if (!is_section(sect, strlen(sect)))
					sect[0] = '\0';
			}
		} else if (sect[0] && after_tp && (!strncmp(l, ".BR ", 4) || !strncmp(l, ".B ", 3))) {
			int quoted = 0;
			for (char *w = l + 3; *w; ) {
				if (*w == '"') {
					quoted = !quoted;
					w++;
					continue;
				}
				if (!quoted && *w >= 'a' && *w <= 'z' && w[-1] == ' ') {
					size_t n = 0;
					while (is_word(w[n]))
						n++;
					bad += note_key(path, line, sect, w, n, seen);
					w += n;
					continue;
				}
				w++;
			}
		}
		after_tp = !strncmp(l, ".TP", 3);
		if (nl)
			*nl = '\n';
		l = nl ? nl + 1 : NULL;
	}
	bad += compare_keys(path, seen);
	bad += unknown_dotted(path, text);
	free(text);
	return bad;
}

/* sipalgd.yaml(5) RELOAD: after each marker comment `.\" reload: CLASS`
 * the keys of that class, all of them and no other. */
static int man_reload_check(const char *path)
{
	static const char *const cls[] = { "live", "rebuild", "restart" };
	char *text = slurp(path);
	int where[128], bad = 0, cur = -1;

	for (int k = 0; k < 128; k++)
		where[k] = -1;
	for (char *l = text; l && *l; ) {
		char *nl = strchr(l, '\n');
		if (nl)
			*nl = '\0';
		if (!strncmp(l, ".\\\" reload: ", 12)) {
			cur = -1;
			for (int i = 0; i < 3; i++)
				if (!strcmp(l + 12, cls[i]))
					cur = i;
			if (cur < 0)
				fail_msg("%s: unknown marker %s", path, l);
		} else if (!strncmp(l, ".SH", 3) || !strncmp(l, ".\\\" reload end", 14)) {
			cur = -1;
		} else if (cur >= 0) {
			for (char *t = l; *t; t++) {
				if (!(*t >= 'a' && *t <= 'z') || (t > l && is_word(t[-1])))
					continue;
				char *e = t;
				while (is_word(*e) || (*e == '.' && is_word(e[1])))
					e++;
				char name[96];
				snprintf(name, sizeof(name), "%.*s", (int)(e - t), t);
				int k = conf_key_find(name);
				if (k >= 0)
					where[k] = cur;
				t = e - 1;
			}
		}
		if (nl)
			*nl = '\n';
		l = nl ? nl + 1 : NULL;
	}
	for (int k = 0; k < conf_key_count(); k++) {
		int want = conf_key_reload(k) == CONF_RELOAD_LIVE ? 0 :
			   conf_key_reload(k) == CONF_RELOAD_REBUILD ? 1 : 2;
		if (where[k] != want) {
			print_error("%s: RELOAD lists %s under %s, the table says %s\n", path,
				    conf_key_name(k), where[k] < 0 ? "nothing" : cls[where[k]], cls[want]);
			bad++;
		}
	}
	free(text);
	return bad;
}

static void test_key_table(void **state)
{
	(void)state;
	for (int k = 0; k < conf_key_count(); k++) {
		const char *name = conf_key_name(k), *dot;
		assert_non_null(name);
		dot = strchr(name, '.');
		/* a key is section.key, or a top-level word that is no section */
		if (dot)
			assert_true(is_section(name, (size_t)(dot - name)));
		else
			assert_false(is_section(name, strlen(name)));
		assert_int_equal(conf_key_find(name), k);
		assert_non_null(conf_key_doc(k));
		assert_true(strlen(conf_key_doc(k)) > 8);
		assert_true((conf_key_reload(k) == CONF_RELOAD_REBUILD) ==
			    (conf_key_rebuild(k) != CONF_REBUILD_NONE));
	}
	assert_null(conf_key_name(conf_key_count()));
	assert_int_equal(conf_key_find("queue.nope"), -1);
}

static void test_docs_sample_config(void **state)
{
	(void)state;
	assert_int_equal(yaml_doc_check("conf/sipalgd.yaml"), 0);
}

static void test_docs_man5(void **state)
{
	(void)state;
	assert_int_equal(man_doc_check("docs/man/sipalgd.yaml.5"), 0);
	assert_int_equal(man_reload_check("docs/man/sipalgd.yaml.5"), 0);
}

/* sipalgd(8) and the README name keys in prose: only real ones, and
 * sipalgd(8)'s SIGHUP names every key that needs a restart. */
static void test_docs_prose(void **state)
{
	char *man8 = slurp("docs/man/sipalgd.8");
	char *readme = slurp("README.md");
	int bad = unknown_dotted("docs/man/sipalgd.8", man8) + unknown_dotted("README.md", readme);

	(void)state;
	for (int k = 0; k < conf_key_count(); k++)
		if (conf_key_reload(k) == CONF_RESTART_ONLY && !strstr(man8, conf_key_name(k))) {
			print_error("docs/man/sipalgd.8: SIGHUP does not name %s (restart only)\n",
				    conf_key_name(k));
			bad++;
		}
	free(man8);
	free(readme);
	assert_int_equal(bad, 0);
}

/* What reload() relies on: differs/copy/format by key. */
static void test_key_ops(void **state)
{
	struct conf a, b;
	char err[256], buf[128];
	int k;

	(void)state;
	assert_int_equal(parse(BASE "sip:\n  ports: [5060, 5070]\nqueue:\n  number: 3\nlog:\n  syslog: true\n",
			       &a, err, sizeof(err)), 0);
	assert_int_equal(parse(BASE, &b, err, sizeof(err)), 0);
	k = conf_key_find("sip.ports");
	assert_true(conf_key_differs(&a, &b, k));
	assert_int_equal(conf_key_format(&a, k, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "[5060, 5070]");
	conf_key_copy(&b, &a, k);
	assert_false(conf_key_differs(&a, &b, k));
	assert_int_equal(b.n_sip_ports, 2);
	k = conf_key_find("queue.number");
	assert_int_equal(conf_key_reload(k), CONF_RESTART_ONLY);
	conf_key_format(&b, k, buf, sizeof(buf));
	assert_string_equal(buf, "0");
	k = conf_key_find("log.syslog");
	assert_int_equal(conf_key_rebuild(k), CONF_REBUILD_LOG);
	conf_key_format(&a, k, buf, sizeof(buf));
	assert_string_equal(buf, "true");
	k = conf_key_find("wan.public_address");
	conf_key_format(&a, k, buf, sizeof(buf));
	assert_string_equal(buf, "\"\"");
	k = conf_key_find("lan.networks");
	conf_key_format(&a, k, buf, sizeof(buf));
	assert_string_equal(buf, "[192.168.1.0/24]");
	k = conf_key_find("log.level");
	conf_key_format(&a, k, buf, sizeof(buf));
	assert_string_equal(buf, "info");
	/* Strings compare up to their NUL: leftovers of a longer default do not count. */
	conf_defaults(&a);
	conf_defaults(&b);
	k = conf_key_find("paths.pid_file");
	strcpy(a.pid_file, "/x");
	memcpy(b.pid_file, "/x\0xx", 6);
	assert_false(conf_key_differs(&a, &b, k));
	/* Every key formats within a modest buffer. */
	for (k = 0; k < conf_key_count(); k++)
		assert_int_equal(conf_key_format(&a, k, buf, sizeof(buf)), 0);
}

static void test_all_keys(void **state)
{
	static const char yaml[] =
		"wan:\n"
		"  interface: br-wan\n"
		"  public_address: 203.0.113.7\n"
		"lan:\n"
		"  networks: [10.1.2.3/8, 192.168.7.9/32, 172.16.0.0/12]\n"
		"sip:\n"
		"  ports: [5060, 5080]\n"
		"  port_min: 50000\n"
		"  port_max: 50999\n"
		"  inbound_from: any\n"
		"queue:\n"
		"  number: 7\n"
		"  max_length: 100\n"
		"  holdoff_us: 0\n"
		"  batch: 256\n"
		"  divert: nft\n"
		"  realtime_priority: 0\n"
		"media:\n"
		"  port_min: 10000\n"
		"  port_max: 10001\n"
		"  pinhole_source: any\n"
		"  allow_other_lan_hosts: true\n"
		"timers: {dialog: 1, early_dialog: 2, binding_idle: 3, register_max: 4}\n"
		"limits: {bindings: 5, dialogs: 6, pinholes: 7, pinholes_per_phone: 8,\n"
		"         streams_per_call: 9, messages_per_second_per_source: 0}\n"
		"paths:\n"
		"  nft_table: Sip_ALG_2\n"
		"  control_socket: \"/tmp/s.sock\"\n"
		"  pid_file: /var/run/x.pid\n"
		"log:\n"
		"  level: debug\n"
		"  syslog: true\n";
	struct conf c;
	char err[256] = "";

	(void)state;
	if (parse(yaml, &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(c.wan_if, "br-wan");
	assert_int_equal(c.public_ip, IP(203, 0, 113, 7));
	assert_int_equal(c.n_lan, 3);
	assert_int_equal(NA(c.lan[0]), IP(10, 0, 0, 0));
	assert_int_equal(NM(c.lan[0]), IP(255, 0, 0, 0));
	assert_int_equal(NA(c.lan[1]), IP(192, 168, 7, 9));
	assert_int_equal(NM(c.lan[1]), 0xffffffffu);
	assert_int_equal(NM(c.lan[2]), IP(255, 240, 0, 0));
	assert_int_equal(c.n_sip_ports, 2);
	assert_int_equal(c.sip_ports[1], 5080);
	assert_int_equal(c.sig_port_min, 50000);
	assert_int_equal(c.sig_port_max, 50999);
	assert_int_equal(c.inbound_src, CONF_INBOUND_ANY);
	assert_int_equal(c.queue_num, 7);
	assert_int_equal(c.queue_maxlen, 100);
	assert_int_equal(c.holdoff_us, 0);
	assert_int_equal(c.batch_max, 256);
	assert_int_equal(c.divert, CONF_DIVERT_NFT);
	assert_int_equal(c.realtime_priority, 0);
	assert_int_equal(c.media_port_min, 10000);
	assert_int_equal(c.media_port_max, 10001);
	assert_int_equal(c.pinhole_src, CONF_PINHOLE_ANY);
	assert_int_equal(c.media_other_hosts, 1);
	assert_int_equal(c.dialog_timeout_s, 1);
	assert_int_equal(c.early_timeout_s, 2);
	assert_int_equal(c.binding_idle_s, 3);
	assert_int_equal(c.register_max_s, 4);
	assert_int_equal(c.max_bindings, 5);
	assert_int_equal(c.max_dialogs, 6);
	assert_int_equal(c.max_pinholes, 7);
	assert_int_equal(c.max_pinholes_per_phone, 8);
	assert_int_equal(c.max_streams_per_call, 9);
	assert_int_equal(c.rate_per_source, 0);
	assert_string_equal(c.nft_table, "Sip_ALG_2");
	assert_string_equal(c.ctl_socket, "/tmp/s.sock");
	assert_string_equal(c.pid_file, "/var/run/x.pid");
	assert_int_equal(c.log_level, LOG_LVL_DEBUG);
	assert_int_equal(c.log_syslog, 1);

	assert_true(conf_is_lan_v4(&c, IP(10, 255, 0, 1)));
	assert_true(conf_is_lan_v4(&c, IP(192, 168, 7, 9)));
	assert_false(conf_is_lan_v4(&c, IP(192, 168, 7, 10)));
	assert_true(conf_is_lan_v4(&c, IP(172, 31, 255, 255)));
	assert_false(conf_is_lan_v4(&c, IP(172, 32, 0, 0)));
	assert_false(conf_is_lan_v4(&c, IP(203, 0, 113, 7)));
	assert_true(conf_is_sip_port(&c, 5060));
	assert_true(conf_is_sip_port(&c, 5080));
	assert_false(conf_is_sip_port(&c, 5061));
	assert_false(conf_is_sip_port(&c, 0));
}

static void test_log_levels(void **state)
{
	static const struct { const char *word; int level; } t[] = {
		{ "error", LOG_LVL_ERR }, { "warning", LOG_LVL_WARN },
		{ "info", LOG_LVL_INFO }, { "debug", LOG_LVL_DEBUG },
	};
	char yaml[256], err[256] = "";
	struct conf c;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(yaml, sizeof(yaml), BASE "log: {level: %s}\n", t[i].word);
		if (parse(yaml, &c, err, sizeof(err)) != 0)
			fail_msg("%s", err);
		assert_int_equal(c.log_level, t[i].level);
	}
}

static void test_lan_edges(void **state)
{
	struct conf c;
	char err[256] = "";

	(void)state;
	/* /0 is every address; host bits are masked, not an error. */
	assert_int_equal(parse("wan: {interface: eth1}\nlan: {networks: [1.2.3.4/0]}\n",
			       &c, err, sizeof(err)), 0);
	assert_int_equal(NA(c.lan[0]), 0);
	assert_int_equal(NM(c.lan[0]), 0);
	assert_true(conf_is_lan_v4(&c, IP(8, 8, 8, 8)));
	assert_int_equal(parse("wan: {interface: eth1}\nlan: {networks: [192.168.1.77/25]}\n",
			       &c, err, sizeof(err)), 0);
	assert_int_equal(NA(c.lan[0]), IP(192, 168, 1, 0));
	assert_int_equal(NM(c.lan[0]), IP(255, 255, 255, 128));
	assert_true(conf_is_lan_v4(&c, IP(192, 168, 1, 127)));
	assert_false(conf_is_lan_v4(&c, IP(192, 168, 1, 128)));
	/* IPv6 prefixes (issue 13): of their own family only */
	assert_int_equal(parse("wan: {interface: eth1}\nlan: {networks: [192.168.1.0/24, 2001:db8:77::5/64]}\n",
			       &c, err, sizeof(err)), 0);
	{
		struct addr in, out, v4m;
		uint32_t a4, m4;
		assert_true(addr_parse_str("2001:db8:77::10", &in));
		assert_true(addr_parse_str("2001:db8:78::10", &out));
		assert_true(addr_parse_str("::ffff:192.168.1.9", &v4m));
		assert_true(conf_is_lan(&c, &in));
		assert_false(conf_is_lan(&c, &out));
		assert_true(conf_is_lan(&c, &v4m));
		assert_int_equal(c.lan[1].plen, 64);
		assert_false(conf_net_get_v4(&c.lan[1], &a4, &m4));
		assert_true(addr_parse_str("2001:db8:77::", &in));
		assert_true(addr_eq(&c.lan[1].net, &in)); /* host bits masked */
	}
	/* 16 networks is the maximum, not an error. */
	assert_int_equal(parse("wan: {interface: eth1}\nlan: {networks: [10.0.0.0/24, 10.0.1.0/24,"
			       " 10.0.2.0/24, 10.0.3.0/24, 10.0.4.0/24, 10.0.5.0/24, 10.0.6.0/24,"
			       " 10.0.7.0/24, 10.0.8.0/24, 10.0.9.0/24, 10.0.10.0/24, 10.0.11.0/24,"
			       " 10.0.12.0/24, 10.0.13.0/24, 10.0.14.0/24, 10.0.15.0/24]}\n",
			       &c, err, sizeof(err)), 0);
	assert_int_equal(c.n_lan, 16);
	assert_true(conf_is_lan_v4(&c, IP(10, 0, 15, 9)));
	assert_false(conf_is_lan_v4(&c, IP(10, 0, 16, 9)));
	/* 15 characters is the longest interface name Linux allows. */
	assert_int_equal(parse("wan: {interface: abcdefghijklmno}\nlan: {networks: [10.0.0.0/8]}\n",
			       &c, err, sizeof(err)), 0);
	assert_string_equal(c.wan_if, "abcdefghijklmno");
	/* An empty public_address means "the interface's address". */
	assert_int_equal(parse("wan: {interface: eth1, public_address: \"\"}\nlan: {networks: [10.0.0.0/8]}\n",
			       &c, err, sizeof(err)), 0);
	assert_int_equal(c.public_ip, 0);
	assert_int_equal(parse("wan: {interface: eth1, public_address: }\nlan: {networks: [10.0.0.0/8]}\n",
			       &c, err, sizeof(err)), 0);
	assert_int_equal(c.public_ip, 0);
}

struct bad { const char *yaml; const char *err; };

/* One row per kind of error, with the exact message. */
static const struct bad bad_cases[] = {
	/* required keys; an empty file is a config with nothing in it */
	{ "", "t.yaml:1: missing wan.interface (required)" },
	{ "# only a comment\n", "t.yaml:1: missing wan.interface (required)" },
	{ "---\n", "t.yaml:1: missing wan.interface (required)" },
	{ "lan:\n  networks: [10.0.0.0/8]\n", "t.yaml:1: missing wan.interface (required)" },
	{ "log: {level: info}\nwan:\n  public_address: 203.0.113.1\nlan:\n  networks: [10.0.0.0/8]\n",
	  "t.yaml:2: missing wan.interface (required)" },
	{ "wan:\n  interface: eth1\n", "t.yaml:1: missing lan.networks (required)" },
	{ "wan:\n  interface: eth1\nlan:\n  networks: []\n",
	  "t.yaml:4: lan.networks is empty (at least one LAN network is required)" },
	/* unknown and duplicate keys */
	{ BASE "wna:\n  x: 1\n", "t.yaml:5: unknown key \"wna\"" },
	{ "wan:\n  interface: eth1\n  interfase: eth2\n", "t.yaml:3: unknown key \"wan.interfase\"" },
	{ "wan:\n  interface: eth1\n  interface: eth2\n",
	  "t.yaml:3: duplicate key \"wan.interface\" (first at line 2)" },
	{ BASE "lan:\n  networks: [10.0.0.0/8]\n", "t.yaml:5: duplicate key \"lan\" (first at line 3)" },
	/* wrong types */
	{ "wan: eth1\n", "t.yaml:1: wan: expected a mapping of keys, got \"eth1\"" },
	{ "wan:\n", "t.yaml:1: wan: expected a mapping of keys, got an empty value" },
	{ "wan: [eth1]\n", "t.yaml:1: wan: expected a mapping of keys, got a list" },
	{ "- wan\n", "t.yaml:1: expected a mapping of sections at the top level, got a list" },
	{ "hello\n", "t.yaml:1: expected a mapping of sections at the top level, got \"hello\"" },
	{ "wan:\n  interface:\n", "t.yaml:2: wan.interface: expected an interface name, got an empty value" },
	{ "wan:\n  interface: {a: b}\n", "t.yaml:2: wan.interface: expected an interface name, got a mapping" },
	{ "wan:\n  [a]: b\n", "t.yaml:2: expected a key name, got a list" },
	{ BASE "queue:\n  batch: ten\n", "t.yaml:6: queue.batch: expected an integer, got \"ten\"" },
	{ BASE "queue:\n  batch: 1.5\n", "t.yaml:6: queue.batch: expected an integer, got \"1.5\"" },
	{ BASE "queue:\n  batch: 0x10\n", "t.yaml:6: queue.batch: expected an integer, got \"0x10\"" },
	{ BASE "queue:\n  batch: 010\n", "t.yaml:6: queue.batch: expected an integer, got \"010\"" },
	{ BASE "queue:\n  batch: '10'\n",
	  "t.yaml:6: queue.batch: expected an integer, got the quoted string \"10\"" },
	{ BASE "queue:\n  batch: []\n", "t.yaml:6: queue.batch: expected an integer, got a list" },
	{ BASE "log:\n  syslog: yes\n", "t.yaml:6: log.syslog: expected true or false, got \"yes\"" },
	{ BASE "log:\n  syslog: 1\n", "t.yaml:6: log.syslog: expected true or false, got \"1\"" },
	{ BASE "sip:\n  ports: 5060\n", "t.yaml:6: sip.ports: expected a list of ports, got \"5060\"" },
	{ BASE "sip:\n  ports: [[5060]]\n", "t.yaml:6: sip.ports: expected an integer, got a list" },
	{ "wan: {interface: eth1}\nlan:\n  networks: 10.0.0.0/8\n",
	  "t.yaml:3: lan.networks: expected a list of CIDRs, got \"10.0.0.0/8\"" },
	/* enums */
	{ BASE "log:\n  level: verbose\n",
	  "t.yaml:6: log.level: \"verbose\" is not one of error, warning, info or debug" },
	{ BASE "log:\n  level: INFO\n",
	  "t.yaml:6: log.level: \"INFO\" is not one of error, warning, info or debug" },
	{ BASE "queue:\n  divert: nftables\n",
	  "t.yaml:6: queue.divert: \"nftables\" is not one of iptables or nft" },
	{ BASE "sip:\n  inbound_from: all\n",
	  "t.yaml:6: sip.inbound_from: \"all\" is not one of registrar or any" },
	{ BASE "media:\n  pinhole_source: anyone\n",
	  "t.yaml:6: media.pinhole_source: \"anyone\" is not one of peer or any" },
	/* numeric ranges */
	{ BASE "sip:\n  ports: [5060, 70000]\n", "t.yaml:6: sip.ports: 70000 is out of range (1..65535)" },
	{ BASE "sip:\n  ports:\n    - 5060\n    - 0\n", "t.yaml:8: sip.ports: 0 is out of range (1..65535)" },
	{ BASE "sip:\n  ports: [5060, 5060]\n", "t.yaml:6: sip.ports: 5060 is listed twice" },
	{ BASE "sip:\n  ports: []\n", "t.yaml:6: sip.ports is empty (at least one SIP port is required)" },
	{ BASE "sip:\n  ports: [1, 2, 3, 4, 5, 6, 7, 8, 9]\n", "t.yaml:6: sip.ports: more than 8 ports" },
	{ BASE "sip:\n  port_min: 65536\n", "t.yaml:6: sip.port_min: 65536 is out of range (1..65535)" },
	{ BASE "queue:\n  number: 65536\n", "t.yaml:6: queue.number: 65536 is out of range (0..65535)" },
	{ BASE "queue:\n  batch: 0\n", "t.yaml:6: queue.batch: 0 is out of range (1..256)" },
	{ BASE "queue:\n  batch: 257\n", "t.yaml:6: queue.batch: 257 is out of range (1..256)" },
	{ BASE "queue:\n  batch: -1\n", "t.yaml:6: queue.batch: -1 is out of range (1..256)" },
	{ BASE "queue:\n  realtime_priority: 100\n",
	  "t.yaml:6: queue.realtime_priority: 100 is out of range (0..99)" },
	{ BASE "queue:\n  max_length: 0\n", "t.yaml:6: queue.max_length: 0 is out of range (1..1048576)" },
	{ BASE "queue:\n  holdoff_us: 4294967296\n",
	  "t.yaml:6: queue.holdoff_us: 4294967296 is out of range (0..1000000)" },
	{ BASE "timers:\n  dialog: 99999999999999999999999999999999\n",
	  "t.yaml:6: timers.dialog: 999999999999999999999999... is out of range (1..604800)" },
	{ BASE "timers:\n  early_dialog: 0\n", "t.yaml:6: timers.early_dialog: 0 is out of range (1..86400)" },
	{ BASE "limits:\n  bindings: 0\n", "t.yaml:6: limits.bindings: 0 is out of range (1..1048576)" },
	{ BASE "limits:\n  dialogs: 0\n", "t.yaml:6: limits.dialogs: 0 is out of range (1..1048576)" },
	{ BASE "limits:\n  pinholes: 0\n", "t.yaml:6: limits.pinholes: 0 is out of range (1..1048576)" },
	{ BASE "limits:\n  pinholes_per_phone: 0\n",
	  "t.yaml:6: limits.pinholes_per_phone: 0 is out of range (1..65536)" },
	{ BASE "limits:\n  streams_per_call: 0\n",
	  "t.yaml:6: limits.streams_per_call: 0 is out of range (1..64)" },
	{ BASE "media:\n  port_min: 1022\n", "t.yaml:6: media.port_min: 1022 is out of range (1024..65535)" },
	{ BASE "media:\n  port_min: 20001\n",
	  "t.yaml:6: media.port_min 20001 must be even (RTP takes the even port, RTCP the next)" },
	{ BASE "media:\n  port_min: 30000\n  port_max: 29000\n",
	  "t.yaml:7: media.port_max 29000 must be greater than media.port_min 30000" },
	{ BASE "media:\n  port_min: 40000\n",
	  "t.yaml:6: media.port_max 39999 must be greater than media.port_min 40000" },
	{ BASE "sip:\n  port_min: 5000\n  port_max: 5000\n",
	  "t.yaml:7: sip.port_max 5000 must be greater than sip.port_min 5000" },
	{ BASE "sip:\n  port_min: 30000\n  port_max: 30999\n",
	  "t.yaml:6: sip.port_min..port_max 30000-30999 overlaps media.port_min..port_max 20000-39999" },
	{ BASE "media:\n  port_min: 40000\n  port_max: 49999\n",
	  "t.yaml:6: sip.port_min..port_max 40000-49999 overlaps media.port_min..port_max 40000-49999" },
	{ BASE "media:\n  port_min: 2000\n  port_max: 9999\n",
	  "t.yaml:6: sip.ports: 5060 is inside the media port range 2000-9999" },
	/* CIDRs and addresses */
	{ "wan: {interface: eth1}\nlan:\n  networks: [10.0.0.0/33]\n",
	  "t.yaml:3: lan.networks: bad prefix length in \"10.0.0.0/33\" (must be 0..32)" },
	{ "wan: {interface: eth1}\nlan:\n  networks: [10.0.0.0/]\n",
	  "t.yaml:3: lan.networks: bad prefix length in \"10.0.0.0/\" (must be 0..32)" },
	{ "wan: {interface: eth1}\nlan:\n  networks: [10.0.0.0/-1]\n",
	  "t.yaml:3: lan.networks: bad prefix length in \"10.0.0.0/-1\" (must be 0..32)" },
	{ "wan: {interface: eth1}\nlan:\n  networks: [10.0.0.0/008]\n",
	  "t.yaml:3: lan.networks: bad prefix length in \"10.0.0.0/008\" (must be 0..32)" },
	{ "wan: {interface: eth1}\nlan:\n  networks: [10.0.0/8]\n",
	  "t.yaml:3: lan.networks: bad address in \"10.0.0/8\"" },
	{ "wan: {interface: eth1}\nlan:\n  networks: [010.0.0.0/8]\n",
	  "t.yaml:3: lan.networks: bad address in \"010.0.0.0/8\"" },
	{ "wan: {interface: eth1}\nlan:\n  networks: [2001:db8:77::/129]\n",
	  "t.yaml:3: lan.networks: bad prefix length in \"2001:db8:77::/129\" (must be 0..128)" },
	{ "wan: {interface: eth1}\nlan:\n  networks: [\"[2001:db8:77::]/64\"]\n",
	  "t.yaml:3: lan.networks: bad address in \"[2001:db8:77::]/64\"" },
	{ "wan: {interface: eth1}\nlan:\n  networks: [\"::ffff:10.0.0.0/104\"]\n",
	  "t.yaml:3: lan.networks: bad address in \"::ffff:10.0.0.0/104\"" },
	{ "wan: {interface: eth1}\nlan:\n  networks: [2001:db8:77::/64, 2001:db8:77::1/64]\n",
	  "t.yaml:3: lan.networks: \"2001:db8:77::1/64\" is listed twice" },
	{ "wan: {interface: eth1}\nlan:\n  networks: [10.0.0.1]\n",
	  "t.yaml:3: lan.networks: \"10.0.0.1\" is not a CIDR (expected ADDRESS/PREFIX, e.g. 192.168.1.0/24)" },
	{ "wan: {interface: eth1}\nlan:\n  networks: [10.0.0.0/8, 10.9.9.9/8]\n",
	  "t.yaml:3: lan.networks: \"10.9.9.9/8\" is listed twice" },
	{ "wan:\n  interface: eth1\n  public_address: 203.0.113\n",
	  "t.yaml:3: wan.public_address: \"203.0.113\" is not an IPv4 address" },
	{ "wan:\n  interface: eth1\n  public_address: 203.0.113.256\n",
	  "t.yaml:3: wan.public_address: \"203.0.113.256\" is not an IPv4 address" },
	{ "wan:\n  interface: eth1\n  public_address: 0.0.0.0\n",
	  "t.yaml:3: wan.public_address: \"0.0.0.0\" is not a usable unicast address" },
	{ "wan:\n  interface: eth1\n  public_address: 224.0.0.1\n",
	  "t.yaml:3: wan.public_address: \"224.0.0.1\" is not a usable unicast address" },
	{ "wan:\n  interface: eth1\n  public_address: 10.0.0.1\nlan:\n  networks: [10.0.0.0/8]\n",
	  "t.yaml:3: wan.public_address 10.0.0.1 is inside lan.networks 10.0.0.0/8" },
	/* names and paths */
	{ "wan:\n  interface: eth0123456789abc\n",
	  "t.yaml:2: wan.interface: \"eth0123456789abc\" is longer than 15 characters" },
	{ "wan:\n  interface: \"eth 1\"\n", "t.yaml:2: wan.interface: \"eth 1\" is not a valid interface name" },
	{ "wan:\n  interface: ..\n", "t.yaml:2: wan.interface: \"..\" is not a valid interface name" },
	{ "wan:\n  interface: \"e\\0\"\n", "t.yaml:2: wan.interface: \"e\\x00\" contains a NUL byte" },
	{ BASE "paths:\n  nft_table: sip-alg\n",
	  "t.yaml:6: paths.nft_table: \"sip-alg\" must be 1..31 characters of A-Z a-z 0-9 _" },
	{ BASE "paths:\n  nft_table: \"\"\n",
	  "t.yaml:6: paths.nft_table: \"\" must be 1..31 characters of A-Z a-z 0-9 _" },
	{ BASE "paths:\n  nft_table: abcdefghijklmnopqrstuvwxyz_01234\n",
	  "t.yaml:6: paths.nft_table: \"abcdefghijklmnopqrstuvwxyz_01234\" must be 1..31 characters of A-Z a-z 0-9 _" },
	{ BASE "paths:\n  control_socket: sipalgd.sock\n",
	  "t.yaml:6: paths.control_socket: \"sipalgd.sock\" is not an absolute path" },
	{ BASE "paths:\n  control_socket: /run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	  "t.yaml:6: paths.control_socket: \"/run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\" is longer than 107 characters" },
	/* a value that could carry terminal escapes is printed escaped */
	{ BASE "log:\n  level: \"\\e[31mred\"\n",
	  "t.yaml:6: log.level: \"\\x1b[31mred\" is not one of error, warning, info or debug" },
	/* YAML features we refuse */
	{ "wan:\n  interface: &i eth1\nlan:\n  networks: *i\n", "t.yaml:4: YAML aliases are not supported (*i)" },
	{ "wan:\n  interface: !!str eth1\n",
	  "t.yaml:2: YAML tags are not supported (\"tag:yaml.org,2002:str\")" },
	{ BASE "---\n" BASE, "t.yaml:5: only one YAML document is allowed" },
	{ BASE "media:\n  port_min: {a: {b: {c: [d]}}}\n",
	  "t.yaml:6: media.port_min: expected an integer, got a mapping" },
	/* YAML syntax: tabs, indentation, unclosed things, bad bytes */
	{ "wan:\n\tinterface: eth1\n", "t.yaml:2: YAML syntax error: tab character (indent with spaces, not tabs)" },
	{ BASE "log:\n  level: info\n\tsyslog: true\n",
	  "t.yaml:7: YAML syntax error: tab character (indent with spaces, not tabs)" },
	{ "wan:\n  interface: eth1\n lan:\n  networks: [10.0.0.0/8]\n",
	  "t.yaml:3: YAML syntax error: did not find expected key while parsing a block mapping started at line 1" },
	{ "wan:\n  interface: eth1\n    bad: 1\n",
	  "t.yaml:3: YAML syntax error: mapping values are not allowed in this context" },
	{ "wan:\n  interface: \"eth1\nlan:\n  networks: [10.0.0.0/8]\n",
	  "t.yaml:5: YAML syntax error: found unexpected end of stream while scanning a quoted scalar started at line 2" },
	{ "wan: {interface: eth1\n",
	  "t.yaml:2: YAML syntax error: did not find expected ',' or '}' while parsing a flow mapping started at line 1" },
	{ BASE "log:\n  level: \"\xc3\x28\"\n",
	  "t.yaml:6: YAML syntax error: invalid trailing UTF-8 octet (byte 12 of the line)" },
	{ BASE "log:\n  level: info\x01\n",
	  "t.yaml:6: YAML syntax error: control characters are not allowed (byte 14 of the line)" },
};

static void test_errors(void **state)
{
	char err[512];
	struct conf c, d;

	(void)state;
	conf_defaults(&d);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		memset(err, 0, sizeof(err));
		if (parse(bad_cases[i].yaml, &c, err, sizeof(err)) != -1)
			fail_msg("case %zu parsed but should fail with: %s", i, bad_cases[i].err);
		if (strcmp(err, bad_cases[i].err) != 0)
			fail_msg("case %zu:\n  want: %s\n  got:  %s", i, bad_cases[i].err, err);
		/* A failed parse leaves defaults, never half a config. */
		assert_memory_equal(&c, &d, sizeof(c));
	}
}

static void test_error_buffer(void **state)
{
	struct conf c;
	char err[12];

	(void)state;
	memset(err, 'x', sizeof(err));
	assert_int_equal(parse("wan: [", &c, err, sizeof(err)), -1);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_int_equal(parse("wan: [", &c, NULL, 0), -1);
	assert_int_equal(conf_parse_buffer(NULL, NULL, 0, &c, err, sizeof(err)), -1);
}

static void test_missing_file(void **state)
{
	struct conf c;
	char err[256];

	(void)state;
	assert_int_equal(conf_load("/nonexistent/sipalgd.yaml", &c, err, sizeof(err)), -1);
	assert_string_equal(err, "/nonexistent/sipalgd.yaml: cannot read: No such file or directory");
	assert_int_equal(conf_load("/", &c, err, sizeof(err)), -1);
	assert_string_equal(err, "/: cannot read: Is a directory");
}

/* tests/data/conf/: NAME.yaml fails with exactly NAME.err (which names the
 * file without its directory, as conf_check.sh runs the daemon from there);
 * good-*.yaml parse. */
static void test_data_dir(void **state)
{
	static const char dir[] = "tests/data/conf/";
	struct dirent *de;
	int n_good = 0, n_bad = 0;
	DIR *d;

	(void)state;
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d))) {
		char path[512], want[512] = "", err[512] = "";
		size_t n = strlen(de->d_name);
		struct conf c;
		FILE *f;

		if (n < 6 || strcmp(de->d_name + n - 5, ".yaml"))
			continue;
		snprintf(path, sizeof(path), "%s%s", dir, de->d_name);
		if (!strncmp(de->d_name, "good-", 5)) {
			if (conf_load(path, &c, err, sizeof(err)) != 0)
				fail_msg("%s", err);
			n_good++;
			continue;
		}
		snprintf(path, sizeof(path), "%s%.*s.err", dir, (int)(n - 5), de->d_name);
		f = fopen(path, "r");
		if (!f)
			fail_msg("%s: missing", path);
		if (!fgets(want, sizeof(want), f))
			want[0] = '\0';
		fclose(f);
		want[strcspn(want, "\n")] = '\0';
		snprintf(path, sizeof(path), "%s%s", dir, de->d_name);
		if (conf_load(path, &c, err, sizeof(err)) != -1)
			fail_msg("%s parsed", path);
		if (strncmp(err, dir, strlen(dir)) || strcmp(err + strlen(dir), want))
			fail_msg("%s:\n  want: %s%s\n  got:  %s", path, dir, want, err);
		n_bad++;
	}
	closedir(d);
	assert_true(n_good >= 3);
	assert_true(n_bad >= 30);
}

/* Fuzz-like inputs: must fail cleanly, never crash, never hang. */
static void test_garbage(void **state)
{
	const size_t len = 1 << 20;
	char *buf = malloc(len + 1), err[512];
	uint32_t x = 12345;
	struct conf c;

	(void)state;
	assert_non_null(buf);

	/* random bytes */
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (char)(x >> 16);
	}
	assert_int_equal(conf_parse_buffer("garbage", buf, len, &c, err, sizeof(err)), -1);
	assert_memory_equal(err, "garbage:", 8);

	/* random YAML punctuation: the parser's deepest paths */
	for (size_t i = 0; i < len; i++) {
		static const char alphabet[] = "ab:-[]{},&*!|>'\"#? \n\t0";
		x = x * 1103515245u + 12345u;
		buf[i] = alphabet[(x >> 16) % (sizeof(alphabet) - 1)];
	}
	assert_int_equal(conf_parse_buffer("garbage", buf, len, &c, err, sizeof(err)), -1);

	/* nesting a million deep, flow and block */
	memset(buf, '[', len);
	assert_int_equal(conf_parse_buffer("garbage", buf, len, &c, err, sizeof(err)), -1);
	assert_string_equal(err, "garbage:1: YAML nested more than 32 levels deep");
	for (size_t i = 0; i + 3 <= len; i += 3)
		memcpy(buf + i, "{a:", 3);
	assert_int_equal(conf_parse_buffer("garbage", buf, len, &c, err, sizeof(err)), -1);
	for (size_t i = 0; i + 2 <= len; i += 2)
		memcpy(buf + i, "- ", 2);
	assert_int_equal(conf_parse_buffer("garbage", buf, len, &c, err, sizeof(err)), -1);

	/* one enormous scalar: the error quotes a bounded piece of it */
	memset(buf, 'a', len);
	memcpy(buf, "wan: {interface: ", 17);
	buf[len - 1] = '}';
	assert_int_equal(conf_parse_buffer("garbage", buf, len, &c, err, sizeof(err)), -1);
	assert_true(strlen(err) < 120);

	/* a million keys */
	for (size_t i = 0; i + 5 <= len; i += 5)
		memcpy(buf + i, "wan:\n", 5);
	assert_int_equal(conf_parse_buffer("garbage", buf, len, &c, err, sizeof(err)), -1);

	/* NUL bytes */
	memset(buf, 0, len);
	assert_int_equal(conf_parse_buffer("garbage", buf, len, &c, err, sizeof(err)), -1);
	free(buf);

	/* over the size cap */
	buf = calloc((4u << 20) + 1, 1);
	assert_non_null(buf);
	assert_int_equal(conf_parse_buffer("big", buf, (4u << 20) + 1, &c, err, sizeof(err)), -1);
	assert_string_equal(err, "big:1: file is larger than 4194304 bytes");
	free(buf);
}

/* Every prefix of a valid file: truncation at any byte must be handled. */
static void test_truncations(void **state)
{
	static const char yaml[] =
		"wan: {interface: eth1, public_address: 203.0.113.9}\n"
		"lan:\n  networks:\n    - 192.168.1.0/24\n"
		"sip: {ports: [5060], inbound_from: any}\n"
		"log:\n  level: \"debug\"\n  syslog: true\n";
	char err[512];
	struct conf c;

	(void)state;
	for (size_t n = 0; n <= sizeof(yaml) - 1; n++) {
		char *copy = malloc(n ? n : 1); /* exact size: ASan sees overreads */
		assert_non_null(copy);
		memcpy(copy, yaml, n);
		conf_parse_buffer("trunc", copy, n, &c, err, sizeof(err));
		free(copy);
	}
	assert_int_equal(conf_parse_buffer("trunc", yaml, sizeof(yaml) - 1, &c, err, sizeof(err)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_example),
		cmocka_unit_test(test_example_defaults_by_key),
		cmocka_unit_test(test_key_table),
		cmocka_unit_test(test_key_ops),
		cmocka_unit_test(test_docs_sample_config),
		cmocka_unit_test(test_docs_man5),
		cmocka_unit_test(test_docs_prose),
		cmocka_unit_test(test_all_keys),
		cmocka_unit_test(test_log_levels),
		cmocka_unit_test(test_lan_edges),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_error_buffer),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_data_dir),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_truncations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
