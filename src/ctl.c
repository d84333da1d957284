/* ctl: the control socket. One command per connection, answered and closed.
 *
 * The daemon is single-threaded and the packet path must not stall behind a
 * slow or hostile client, so every wait here is bounded: the client gets 1 s
 * to send its command line and 1 s to take the answer. The answer is built
 * in memory first (open_memstream), so a handler never writes to a socket
 * that could block, and a handler that fails leaves no half answer. */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CTL_LINE_MAX 128  /* bytes, newline included */
#define CTL_TIMEOUT_MS 1000

static int ctl_sock = -1;
static ctl_handler ctl_h;
static char ctl_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Remove a socket left by a daemon that died, but refuse to steal one that
 * a live daemon still answers on, and never delete something that is not a
 * socket (a typo in paths.control_socket must not remove a file). */
/* 1 if a daemon answers on the socket at sa (connect succeeds or its
 * backlog is full), 0 otherwise. */
static int answering(const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, rc;

	if (lstat(sa->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return 0;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return 0;
	rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	return rc == 0 || errno == EAGAIN;
}

static int remove_stale(const struct sockaddr_un *sa)
{
	struct stat st;

	if (lstat(sa->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		errno = EEXIST;
		return -1;
	}
	if (answering(sa)) {
		errno = EADDRINUSE;
		return -1;
	}
	return unlink(sa->sun_path) < 0 && errno != ENOENT ? -1 : 0;
}

int ctl_in_use(const char *path)
{
	struct sockaddr_un sa;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (!path || strlen(path) >= sizeof(sa.sun_path))
		return 0;
	strcpy(sa.sun_path, path);
	return answering(&sa);
}

int ctl_open(const char *path, ctl_handler h)
{
	struct sockaddr_un sa;
	mode_t old;
	int fd, e;

	if (!path || !h || ctl_sock >= 0) {
		errno = EINVAL;
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	if (remove_stale(&sa) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	/* The umask closes the window between bind() and chmod() in which the
	 * socket would exist with the process's default mode. */
	old = umask(0117);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = errno;
		umask(old);
		close(fd);
		errno = e;
		return -1;
	}
	umask(old);
	if (chmod(path, 0660) < 0 || listen(fd, 8) < 0) {
		e = errno;
		close(fd);
		unlink(path);
		errno = e;
		return -1;
	}
	ctl_sock = fd;
	ctl_h = h;
	strcpy(ctl_path, path);
	return 0;
}

int ctl_fd(void)
{
	return ctl_sock;
}

/* Wait until fd is ready for `ev` or the deadline passes. */
static int wait_fd(int fd, short ev, long deadline)
{
	struct pollfd pfd = { .fd = fd, .events = ev };
	long left;
	int rc;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return 0;
		rc = poll(&pfd, 1, (int)left);
		if (rc < 0 && errno == EINTR)
			continue;
		return rc;
	}
}

/* Read one line. Returns its length without the line end, -1 on timeout,
 * error or a line longer than CTL_LINE_MAX (then *too_long is set). A
 * client that closes without a newline still gets its command run. */
static int read_line(int fd, char *buf, long deadline, int *too_long)
{
	size_t n = 0;
	char *nl;
	ssize_t r;

	*too_long = 0;
	for (;;) {
		r = recv(fd, buf + n, CTL_LINE_MAX - n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			if (wait_fd(fd, POLLIN, deadline) <= 0)
				return -1;
			continue;
		}
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		n += (size_t)r;
		if ((nl = memchr(buf, '\n', n))) {
			n = (size_t)(nl - buf);
			break;
		}
		if (n == CTL_LINE_MAX) {
			*too_long = 1;
			return -1;
		}
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return (int)n;
}

static void send_all(int fd, const char *buf, size_t len, long deadline)
{
	ssize_t w;

	while (len > 0) {
		/* MSG_NOSIGNAL: a client that hangs up must not SIGPIPE us. */
		w = send(fd, buf, len, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			if (wait_fd(fd, POLLOUT, deadline) <= 0)
				return;
			continue;
		}
		if (w <= 0)
			return;
		buf += w;
		len -= (size_t)w;
	}
}

/* The command as it may be echoed back: printable ASCII only, so that
 * garbage sent to the socket cannot reach a terminal as escapes. */
static int cmd_printable(const char *cmd)
{
	for (; *cmd; cmd++)
		if (*cmd < 0x20 || *cmd > 0x7e)
			return 0;
	return 1;
}

void ctl_serve(void)
{
	char line[CTL_LINE_MAX + 1], *ans = NULL;
	size_t anslen = 0;
	int fd, too_long, known = 0;
	long deadline;
	FILE *out;

	if (ctl_sock < 0)
		return;
	fd = accept4(ctl_sock, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return; /* EAGAIN: the client gave up already; others: retry on next poll */
	deadline = now_ms() + CTL_TIMEOUT_MS;
	if (read_line(fd, line, deadline, &too_long) < 0) {
		if (too_long)
			send_all(fd, "error: command too long\n", 24, deadline);
		close(fd);
		return;
	}
	out = open_memstream(&ans, &anslen);
	if (!out) {
		send_all(fd, "error: out of memory\n", 21, deadline);
		close(fd);
		return;
	}
	if (cmd_printable(line))
		known = ctl_h(line, out) == 0;
	if (!known) {
		/* Drop whatever the handler wrote before it gave up. */
		rewind(out);
		fprintf(out, "error: unknown command '");
		for (const char *s = line; *s; s++)
			fputc(*s >= 0x20 && *s <= 0x7e ? *s : '?', out);
		fprintf(out, "'\n");
	}
	if (fclose(out) == 0) {
		/* rewind() does not shrink a memstream; fclose() sets anslen to
		 * the current position, which is the end of what we wrote last. */
		send_all(fd, ans, anslen, now_ms() + CTL_TIMEOUT_MS);
	}
	free(ans);
	close(fd);
}

void ctl_close(void)
{
	if (ctl_sock < 0)
		return;
	close(ctl_sock);
	ctl_sock = -1;
	ctl_h = NULL;
	unlink(ctl_path);
	ctl_path[0] = '\0';
}
