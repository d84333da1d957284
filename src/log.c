#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

static int log_syslog;
static enum log_level log_level = LOG_LVL_INFO;

void log_init(int use_syslog, enum log_level level)
{
	log_syslog = use_syslog;
	log_level = level;
	if (use_syslog)
		openlog("sipalgd", LOG_PID, LOG_DAEMON);
}

static void log_v(enum log_level lvl, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *const tag[] = { "error", "warning", "info", "debug" };

	if (lvl > log_level)
		return;
	if (log_syslog) {
		vsyslog(prio[lvl], fmt, ap);
		return;
	}
	fprintf(stderr, "sipalgd: %s: ", tag[lvl]);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_v(lvl, fmt, ap);
	va_end(ap);
}

void log_rl(struct log_rl_state *st, enum log_level lvl, const char *fmt, ...)
{
	struct timespec ts;
	va_list ap;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	if (st->last_sec && ts.tv_sec - st->last_sec < 1) {
		st->held++;
		return;
	}
	if (st->held)
		log_msg(lvl, "(%u similar messages suppressed)", st->held);
	st->last_sec = ts.tv_sec ? ts.tv_sec : 1;
	st->held = 0;
	va_start(ap, fmt);
	log_v(lvl, fmt, ap);
	va_end(ap);
}
