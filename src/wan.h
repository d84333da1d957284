/* wan: the public address and the WAN interface at run time. */
#ifndef SIPALGD_WAN_H
#define SIPALGD_WAN_H
#include <stdint.h>

struct conf;
/* Apply c's wan.interface and wan.public_address to the running daemon
 * (called by SIGHUP when either changed). 0 when applied, -1 (logged) when
 * the running values stay. */
int wan_reconfigure(const struct conf *c, uint64_t now);

#endif
