#ifndef TEST_STUBS_H
#define TEST_STUBS_H
#include <stdint.h>
#define STUB_LOG_SIZE 65536
extern char stub_log[STUB_LOG_SIZE];
extern int stub_ct_snat_found;
extern uint32_t stub_ct_pub_ip;
extern uint16_t stub_ct_pub_port;
extern int stub_fp_set, stub_fp_del; /* fastpath_binding_set/del calls */
void stub_reset(void);
#include "addr.h"
/* An IPv4 address (host order) as the struct addr the tables take: a
 * pointer into a small ring, good for the call it is passed to. */
static inline const struct addr *a4(uint32_t ip)
{
	static struct addr ring[8];
	static unsigned i;
	struct addr *r = &ring[i++ & 7];
	*r = addr_v4(ip);
	return r;
}
#endif
