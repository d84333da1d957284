/* log: one line per event to stderr (journald/procd capture it) or syslog.
 * log_rl() rate-limits per call site: at most one line per `key` per second,
 * with a count of what it held back, so hostile input cannot flood the log. */
#ifndef SIPALGD_LOG_H
#define SIPALGD_LOG_H

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_init(int use_syslog, enum log_level level);
void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* "<3>".."<7>" when stderr goes to journald (see log.c), else "": for the
 * few lines written before log_init() (config errors). */
const char *log_journal_prefix(enum log_level lvl);

struct log_rl_state { long last_sec; unsigned held; };
/* Rate-limited variant for the packet path: `st` is a static at the call site. */
void log_rl(struct log_rl_state *st, enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_err(...)   log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#define LOG_RL(lvl, ...) do { static struct log_rl_state st_; \
	log_rl(&st_, lvl, __VA_ARGS__); } while (0)

#endif
