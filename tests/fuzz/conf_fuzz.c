/* libFuzzer target: the YAML configuration parser (src/conf.c). A config is
 * operator input, but SIGHUP reloads whatever file is there: it must never
 * crash, leak (LeakSanitizer runs at exit and per-input with -detect_leaks),
 * or hand back a struct that violates its own documented bounds. */
#include <stdint.h>
#include <string.h>

#include "conf.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct conf c;
	char err[256];

	memset(err, 'x', sizeof(err));
	int rc = conf_parse_buffer("fuzz.yaml", (const char *)data, size, &c, err, sizeof(err));
	CHECK(rc == 0 || rc == -1);
	CHECK(memchr(err, 0, sizeof(err)) != NULL); /* always terminated */
	if (rc < 0) {
		CHECK(err[0] != 0); /* an error says why */
		return 0;
	}
	CHECK(memchr(c.wan_if, 0, sizeof(c.wan_if)) && c.wan_if[0]);
	CHECK(c.n_lan >= 1 && c.n_lan <= CONF_MAX_LAN);
	for (int i = 0; i < c.n_lan; i++)
		CHECK(c.lan[i].plen <= (addr_is_v4(&c.lan[i].net) ? 32 : 128));
	CHECK(c.n_sip_ports >= 1 && c.n_sip_ports <= CONF_MAX_PORTS);
	CHECK(c.media_port_min < c.media_port_max && c.media_port_min % 2 == 0);
	CHECK(c.sig_port_min < c.sig_port_max);
	CHECK(c.sig_port_max < c.media_port_min || c.media_port_max < c.sig_port_min);
	CHECK(c.batch_max >= 1 && c.batch_max <= 256);
	CHECK(memchr(c.nft_table, 0, sizeof(c.nft_table)));
	CHECK(memchr(c.ctl_socket, 0, sizeof(c.ctl_socket)));
	CHECK(memchr(c.pid_file, 0, sizeof(c.pid_file)));
	/* The accessors work on whatever was accepted. */
	(void)conf_is_lan_v4(&c, 0xc0a8010a);
	(void)conf_is_sip_port(&c, 5060);
	return 0;
}
