#include "stats.h"

uint64_t stats[ST__COUNT];

#define C STAT_COUNTER
#define G STAT_GAUGE
static const struct {
	const char *name;
	enum stat_kind kind;
	const char *help;
} info[ST__COUNT] = {
#define STAT_INFO(n, k, h) { #n, k, h },
	STATS_LIST(STAT_INFO)
#undef STAT_INFO
};
#undef C
#undef G

const char *stats_name(enum stat_id id)
{
	return (unsigned)id < ST__COUNT ? info[id].name : "?";
}

enum stat_kind stats_kind(enum stat_id id)
{
	return (unsigned)id < ST__COUNT ? info[id].kind : STAT_COUNTER;
}

const char *stats_help(enum stat_id id)
{
	return (unsigned)id < ST__COUNT ? info[id].help : "";
}

void stats_dump(FILE *f)
{
	for (int i = 0; i < ST__COUNT; i++)
		fprintf(f, "%s %llu\n", info[i].name, (unsigned long long)stats[i]);
}
