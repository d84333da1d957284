#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_addrlen;
static uint64_t watchdog_ms;

void notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	const char *wd = getenv("WATCHDOG_USEC"), *wpid = getenv("WATCHDOG_PID");
	size_t len;

	if (notify_fd >= 0)
		close(notify_fd);
	notify_fd = -1;
	watchdog_ms = 0;
	/* The watchdog is ours only if WATCHDOG_PID is unset or names us. */
	if (wd && (!wpid || strtol(wpid, NULL, 10) == (long)getpid())) {
		unsigned long long us = strtoull(wd, NULL, 10);
		watchdog_ms = us / 1000u;
	}
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	if (!path || !*path)
		return;
	len = strlen(path);
	/* A path or, with a leading '@', a name in the abstract namespace
	 * (unix(7)): there the first byte is NUL and the length says where
	 * the name ends. */
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(notify_addr.sun_path))
		goto out;
	memset(&notify_addr, 0, sizeof(notify_addr));
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, path, len);
	if (path[0] == '@')
		notify_addr.sun_path[0] = '\0';
	notify_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
out:
	unsetenv("NOTIFY_SOCKET");
}

int notify_send(const char *state)
{
	if (notify_fd < 0)
		return 0;
	if (sendto(notify_fd, state, strlen(state), MSG_DONTWAIT | MSG_NOSIGNAL,
		   (const struct sockaddr *)&notify_addr, notify_addrlen) < 0)
		return -1;
	return 0;
}

uint64_t notify_watchdog_ms(void)
{
	return watchdog_ms;
}
