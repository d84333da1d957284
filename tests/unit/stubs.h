#ifndef TEST_STUBS_H
#define TEST_STUBS_H
#include <stdint.h>
#define STUB_LOG_SIZE 65536
extern char stub_log[STUB_LOG_SIZE];
extern int stub_ct_snat_found;
extern uint32_t stub_ct_pub_ip;
extern uint16_t stub_ct_pub_port;
void stub_reset(void);
#endif
