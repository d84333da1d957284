#include "holdoff.h"

#include <time.h>

uint32_t holdoff_next(uint32_t n, uint32_t max_us)
{
	static struct timespec last;
	static double rate; /* packets per second, smoothed */
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	double dt = (double)(ts.tv_sec - last.tv_sec) + (double)(ts.tv_nsec - last.tv_nsec) / 1e9;
	last = ts;
	if (dt <= 0 || dt > 1.0)
		dt = 1.0;
	rate = 0.75 * rate + 0.25 * ((double)n / dt);
	if (!max_us || rate * max_us / 1e6 < 2.0)
		return 0;
	double h = HOLDOFF_BATCH / rate * 1e6;
	return h > max_us ? max_us : (uint32_t)h;
}
