/* notify: tell the service manager how we are, by the sd_notify(3) protocol
 * written out by hand (one datagram of "KEY=value" lines to the AF_UNIX
 * socket named in $NOTIFY_SOCKET), so no build needs libsystemd: OpenWrt's
 * procd never sets NOTIFY_SOCKET and every call is then a no-op. */
#ifndef SIPALGD_NOTIFY_H
#define SIPALGD_NOTIFY_H

#include <stdint.h>

/* Read $NOTIFY_SOCKET and $WATCHDOG_USEC/$WATCHDOG_PID, open the socket,
 * and remove the variables from the environment so a child (iptables)
 * cannot speak for us. Call once at start, before privileges go. */
void notify_init(void);

/* Send `state` ("READY=1", "STOPPING=1", ...). Never blocks; 0 when sent
 * or when there is no service manager to tell, -1 with errno otherwise. */
int notify_send(const char *state);

/* The watchdog interval the manager asked for, in milliseconds (0: none).
 * Pinging at half of it (sd_watchdog_enabled(3)) leaves room for one late tick. */
uint64_t notify_watchdog_ms(void);

#endif
