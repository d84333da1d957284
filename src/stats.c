#include "stats.h"

uint64_t stats[ST__COUNT];

static const char *const names[ST__COUNT] = {
#define STAT_NAME(n) #n,
	STATS_LIST(STAT_NAME)
#undef STAT_NAME
};

const char *stats_name(enum stat_id id)
{
	return (unsigned)id < ST__COUNT ? names[id] : "?";
}

void stats_dump(FILE *f)
{
	for (int i = 0; i < ST__COUNT; i++)
		fprintf(f, "%s %llu\n", names[i], (unsigned long long)stats[i]);
}
