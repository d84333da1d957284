#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>

static int log_syslog;
static int log_journal; /* stderr is a journald stream: prefix "<prio>" */
static enum log_level log_level = LOG_LVL_INFO;
static const char *const jprio[] = { "<3>", "<4>", "<6>", "<7>" };

/* systemd sets JOURNAL_STREAM=DEV:INODE of the stream it connected to
 * stderr (systemd.exec(5)). Only when our stderr is still that stream do
 * lines start with "<3>".."<7>" (sd-daemon(3)), which journald turns into
 * the line's priority, so `journalctl -p err` finds errors; a terminal, a
 * pipe or a file, and a child whose stderr was redirected, get clean lines. */
static int stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(int use_syslog, enum log_level level)
{
	log_syslog = use_syslog;
	log_level = level;
	log_journal = stderr_is_journal();
	if (use_syslog)
		openlog("sipalgd", LOG_PID, LOG_DAEMON);
}

const char *log_journal_prefix(enum log_level lvl)
{
	return stderr_is_journal() ? jprio[lvl] : "";
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
	fprintf(stderr, "%ssipalgd: %s: ", log_journal ? jprio[lvl] : "", tag[lvl]);
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
#ifdef SIPALGD_FUZZ_CLOCK
	/* The fuzz targets' fixed search (tests/fuzz/run.sh) takes the same
	 * branches on every machine: no wall clock decides what is logged. */
	ts.tv_sec = 0;
#endif
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
