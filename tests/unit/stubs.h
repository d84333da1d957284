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
#endif
