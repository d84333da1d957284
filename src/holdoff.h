/* holdoff: the adaptive pause of the queue reader after a partial burst. A
 * wake-up costs more than handling the packets it brings (docs/performance.md),
 * so the reader pauses long enough for about HOLDOFF_BATCH packets to gather,
 * at most max_us, and not at all when fewer than two would come in that time:
 * a timer wake-up that batches nothing costs more than it saves. A full burst
 * never pauses (the caller's rule). One reader per process: the smoothed rate
 * is kept here. The bench's queue floor (tests/bench/nullq.c) uses it too. */
#ifndef SIPALGD_HOLDOFF_H
#define SIPALGD_HOLDOFF_H
#include <stdint.h>

#define HOLDOFF_BATCH 16

/* `n` packets came in this burst: microseconds to pause (0: none). */
uint32_t holdoff_next(uint32_t n, uint32_t max_us);

#endif
