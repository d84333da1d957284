/* trace: see trace.h. */
#include "trace.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

#define TRACE_WHAT 64

static struct {
	int on;
	int is_ip;
	struct addr ip;
	char what[TRACE_WHAT + 1];
	uint32_t what_len;
	uint64_t until, sec_start;
	uint32_t in_sec, logged, skipped, seq;
} tr;

int trace_start(const char *what, uint32_t seconds, uint64_t now)
{
	size_t n = strlen(what);

	if (n == 0 || n > TRACE_WHAT)
		return -1;
	if (tr.on)
		trace_stop(now, "replaced by a new trace");
	memset(&tr, 0, sizeof(tr));
	if (!seconds)
		seconds = TRACE_DEFAULT_S;
	if (seconds > TRACE_MAX_S)
		seconds = TRACE_MAX_S;
	/* An address of either family (IPv6 bare or bracketed), else a Call-ID. */
	tr.is_ip = addr_parse_str(what, &tr.ip);
	memcpy(tr.what, what, n + 1);
	tr.what_len = (uint32_t)n;
	tr.until = now + (uint64_t)seconds * 1000u;
	tr.sec_start = now;
	tr.on = 1;
	log_warn("trace on: %s %s for %u s (at most %d messages/s, %d in all)",
		 tr.is_ip ? "address" : "Call-ID", tr.what, seconds, TRACE_PER_SEC, TRACE_MAX);
	return 0;
}

void trace_stop(uint64_t now, const char *why)
{
	(void)now;
	if (!tr.on)
		return;
	tr.on = 0;
	log_warn("trace off (%s): %s: %u messages logged, %u not logged (over %d/s)", why, tr.what,
		 tr.logged, tr.skipped, TRACE_PER_SEC);
}

int trace_active(uint64_t now)
{
	if (!tr.on)
		return 0;
	if (now >= tr.until) {
		trace_stop(now, "time is up");
		return 0;
	}
	return 1;
}

void trace_describe(char *buf, unsigned len, uint64_t now)
{
	if (!tr.on) {
		snprintf(buf, len, "off");
		return;
	}
	snprintf(buf, len, "%s %s, %llu s left, %u logged, %u not logged", tr.is_ip ? "address" : "Call-ID",
		 tr.what, (unsigned long long)((tr.until - now) / 1000), tr.logged, tr.skipped);
}

int trace_match(const struct addr *saddr, const struct addr *daddr, const uint8_t *callid,
		uint32_t callid_len)
{
	if (!tr.on)
		return 0;
	if (tr.is_ip)
		return addr_eq(saddr, &tr.ip) || addr_eq(daddr, &tr.ip);
	return callid && callid_len >= tr.what_len && !memcmp(callid, tr.what, tr.what_len);
}

/* One log line per line of the message, control bytes as \xNN: a message
 * must not forge log lines or reach a terminal as escapes. */
static void log_lines(uint32_t seq, const char *side, const uint8_t *p, uint32_t n)
{
	char line[1024];
	uint32_t i = 0, k = 0, no = 0;

	while (i <= n) {
		int end = i == n || p[i] == '\n';
		if (!end && k + 5 < sizeof(line)) {
			uint8_t c = p[i];
			if (c == '\r' && i + 1 < n && p[i + 1] == '\n') {
				/* the CRLF line end: not shown */
			} else if (c >= 0x20 && c < 0x7f && c != '\\') {
				line[k++] = (char)c;
			} else {
				k += (uint32_t)snprintf(line + k, sizeof(line) - k, "\\x%02x", c);
			}
		}
		if (end) {
			line[k] = '\0';
			if (i < n || k)
				log_warn("trace #%u %s %3u| %s", seq, side, no++, line);
			k = 0;
		}
		i++;
	}
}

void trace_log(uint64_t now, const uint8_t *before, uint32_t blen, const uint8_t *after, uint32_t alen,
	       const char *verdict)
{
	if (!tr.on)
		return;
	if (now - tr.sec_start >= 1000) {
		tr.sec_start = now;
		tr.in_sec = 0;
	}
	if (tr.in_sec >= TRACE_PER_SEC) {
		tr.skipped++;
		return;
	}
	tr.in_sec++;
	tr.logged++;
	tr.seq++;
	log_warn("trace #%u: %s, %u bytes in, %s", tr.seq, verdict, blen,
		 after ? "rewritten:" : "left unchanged");
	log_lines(tr.seq, "before", before, blen);
	if (after)
		log_lines(tr.seq, "after ", after, alen);
	if (tr.logged >= TRACE_MAX)
		trace_stop(now, "message limit reached");
}
