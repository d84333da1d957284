/* notify: the sd_notify datagram reaches a socket named by a path or by an
 * abstract name ('@'), the watchdog interval is ours only for our pid, and
 * without NOTIFY_SOCKET nothing is sent and nothing fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "notify.h"

/* A receiving socket bound to `name` (leading '@': abstract). */
static int listener(const char *name)
{
	struct sockaddr_un sa;
	size_t len = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, name, len);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	else
		unlink(name);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)), 0);
	return fd;
}

static void expect_datagram(int fd, const char *want)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

static void test_abstract_socket(void **st)
{
	char name[64];

	(void)st;
	snprintf(name, sizeof(name), "@sipalgd-notify-test-%d", (int)getpid());
	int fd = listener(name);
	setenv("NOTIFY_SOCKET", name, 1);
	notify_init();
	assert_null(getenv("NOTIFY_SOCKET")); /* a child cannot speak for us */
	assert_int_equal(notify_send("READY=1\nSTATUS=running"), 0);
	expect_datagram(fd, "READY=1\nSTATUS=running");
	assert_int_equal(notify_send("STOPPING=1"), 0);
	expect_datagram(fd, "STOPPING=1");
	close(fd);
}

static void test_path_socket(void **st)
{
	char path[64];

	(void)st;
	snprintf(path, sizeof(path), "/tmp/sipalgd-notify-test-%d", (int)getpid());
	int fd = listener(path);
	setenv("NOTIFY_SOCKET", path, 1);
	notify_init();
	assert_int_equal(notify_send("WATCHDOG=1"), 0);
	expect_datagram(fd, "WATCHDOG=1");
	close(fd);
	unlink(path);
}

static void test_no_manager(void **st)
{
	(void)st;
	unsetenv("NOTIFY_SOCKET");
	notify_init();
	assert_int_equal(notify_send("READY=1"), 0);
	/* relative paths are not sockets systemd would name: ignored */
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	notify_init();
	assert_int_equal(notify_send("READY=1"), 0);
}

static void test_watchdog_pid(void **st)
{
	char pid[32];

	(void)st;
	setenv("WATCHDOG_USEC", "10000000", 1);
	unsetenv("WATCHDOG_PID");
	notify_init();
	assert_int_equal(notify_watchdog_ms(), 10000);
	assert_null(getenv("WATCHDOG_USEC"));

	snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
	setenv("WATCHDOG_USEC", "10000000", 1);
	setenv("WATCHDOG_PID", pid, 1);
	notify_init();
	assert_int_equal(notify_watchdog_ms(), 0); /* meant for another process */

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_USEC", "4000000", 1);
	setenv("WATCHDOG_PID", pid, 1);
	notify_init();
	assert_int_equal(notify_watchdog_ms(), 4000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abstract_socket),
		cmocka_unit_test(test_path_socket),
		cmocka_unit_test(test_no_manager),
		cmocka_unit_test(test_watchdog_pid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
