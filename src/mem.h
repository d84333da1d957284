/* mem: the daemon's few big tables (sized from the limits at start) come
 * straight from mmap: zero pages the kernel hands out only when first
 * touched, so an idle daemon with room for 8192 calls stays small. (calloc
 * may serve them from a heap it has to clear, once set-up has freed enough
 * to raise malloc's mmap threshold.) */
#ifndef SIPALGD_MEM_H
#define SIPALGD_MEM_H
#include <stddef.h>

void *mem_table(size_t n, size_t size);
void mem_table_free(void *p, size_t n, size_t size);

#endif
