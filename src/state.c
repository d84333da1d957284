#include "state.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "binding.h"
#include "dialog.h"
#include "log.h"

#define STATE_MAGIC "sipalgd-state 1"
#define SAVE_EVERY_MS 1000

static int dirty;
static uint64_t last_save;

void state_touch(void) { dirty = 1; }

int state_save(const char *path, uint64_t now, int force)
{
	char tmp[300];

	if (!path[0] || (!dirty && !force) || (!force && now - last_save < SAVE_EVERY_MS))
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		LOG_RL(LOG_LVL_WARN, "state: cannot write %s: %s", tmp, strerror(errno));
		return -1;
	}
	fprintf(f, "%s %lld\n", STATE_MAGIC, (long long)time(NULL));
	binding_save(f, now);
	dialog_save(f, now);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		LOG_RL(LOG_LVL_WARN, "state: cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	dirty = 0;
	last_save = now;
	return 0;
}

int state_load(const char *path, uint64_t now)
{
	char line[512];
	int lineno = 0, dialogs = 0, bad = 0;

	if (!path[0])
		return 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	long long saved;
	if (!fgets(line, sizeof(line), f) || strncmp(line, STATE_MAGIC, strlen(STATE_MAGIC)) != 0 ||
	    sscanf(line + strlen(STATE_MAGIC), "%lld", &saved) != 1) {
		log_warn("state: %s is not a state file of this version: ignored", path);
		fclose(f);
		return 0;
	}
	/* Lifetimes in the file count from when it was written: the time the
	 * daemon was away is already spent. */
	long long away = (long long)time(NULL) - saved;
	if (away > 0) {
		uint64_t a = (uint64_t)away * 1000u;
		now = now > a ? now - a : 0;
	}
	lineno = 1;
	while (fgets(line, sizeof(line), f)) {
		int rc;
		lineno++;
		if (line[0] == 'B')
			rc = binding_restore_line(line, now);
		else {
			rc = dialog_restore_line(line, now);
			dialogs += rc == 0 && line[0] == 'D';
		}
		if (rc < 0 && bad++ < 5)
			log_warn("state: %s:%d: not restored", path, lineno);
	}
	fclose(f);
	log_info("state: %d calls taken over from %s", dialogs, path);
	return dialogs;
}
