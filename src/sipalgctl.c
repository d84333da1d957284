/* sipalgctl: ask a running sipalgd for its status, counters or tables.
 *
 * libc only: it must run on a broken router where the daemon's libraries
 * are the thing that is broken. Exit status is for scripts and monitoring:
 *   0  answer printed (for `status`: the daemon said "ok")
 *   1  the daemon answered, but not "ok" (or "error: ...")
 *   2  the daemon could not be reached, or did not answer within 2 s
 *  64  usage error */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "version.h"

#define DEFAULT_SOCKET "/run/sipalgd.sock"
#define TIMEOUT_MS 2000
#define EXIT_UNREACHABLE 2
#define EXIT_USAGE 64

/* name, number of arguments (min, max) */
static const struct { const char *name; int min, max; } commands[] = {
	{ "status", 0, 0 }, { "counters", 0, 0 }, { "bindings", 0, 0 }, { "dialogs", 0, 0 },
	{ "pinholes", 0, 0 }, { "call", 1, 1 }, { "metrics", 0, 0 }, { "trace", 1, 2 }, { NULL, 0, 0 },
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sipalgctl [-s SOCKET] COMMAND [ARG] [--json]\n"
		"  -s SOCKET  control socket (default " DEFAULT_SOCKET ")\n"
		"  -V         print the version and exit\n"
		"  -h         this help\n"
		"  --json     one JSON object instead of text (docs/operations.md)\n"
		"commands:\n"
		"  status     \"ok\" and a summary; exit 0 only if the daemon is healthy\n"
		"  counters   every counter, one \"name value\" per line\n"
		"  bindings   the signalling NAT bindings\n"
		"  dialogs    the calls in progress\n"
		"  pinholes   the open media pinholes\n"
		"  metrics    counters and gauges in the Prometheus text format\n"
		"  call ID    one call: parties, streams with packets/bytes each way, pinholes,\n"
		"             its last messages and why any was dropped (ID: a unique Call-ID prefix)\n"
		"  trace ADDRESS|CALL-ID [SECONDS]\n"
		"             log matching SIP messages in full, before and after, for SECONDS\n"
		"             (default 60); 'trace off' stops, 'trace status' shows\n"
		"exit: 0 ok, 1 the daemon reported a problem, 2 daemon unreachable, 64 usage\n");
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* 1 ready, 0 timed out, -1 error */
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
		return rc > 0 ? 1 : rc;
	}
}

static const char *sock_path;

static int unreachable(const char *reason)
{
	fprintf(stderr, "sipalgctl: cannot reach sipalgd at %s: %s\n", sock_path, reason);
	return EXIT_UNREACHABLE;
}

/* connect() failed with err. No socket or nobody listening: the daemon is
 * not running. What that does to SIP depends on how it ended, which only
 * the operator can check; both outcomes are worth knowing before blaming
 * the phones. */
static int not_connected(int err)
{
	unreachable(strerror(err));
	if (err == ENOENT || err == ECONNREFUSED)
		fprintf(stderr, "sipalgctl: sipalgd is not running: stopped cleanly, it removed its rules and SIP "
				"crosses unrewritten; killed (or run with --no-rules), the queue rules stay and "
				"the kernel drops the SIP they divert (fail closed) until it runs again "
				"(docs/operations.md)\n");
	return EXIT_UNREACHABLE;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa;
	char cmdline[192], buf[4096], first[24];
	size_t nfirst = 0, sent = 0, len;
	int opt, fd, rc, i, got_any = 0, json = 0, nargs = 0;
	const char *cmd = NULL, *arg = NULL, *arg2 = NULL;
	long deadline;
	socklen_t sl;

	sock_path = DEFAULT_SOCKET;
	/* --json may come anywhere; "+" keeps getopt from permuting past the command. */
	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--json")) {
			json = 1;
			memmove(&argv[i], &argv[i + 1], sizeof(*argv) * (size_t)(argc - i));
			argc--;
			i--;
		}
	while ((opt = getopt(argc, argv, "+s:hV")) != -1) {
		switch (opt) {
		case 's':
			sock_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("sipalgctl %s\n", SIPALGD_VERSION);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[optind];
	nargs = argc - optind - 1;
	for (i = 0; commands[i].name && strcmp(commands[i].name, cmd); i++)
		;
	if (!commands[i].name) {
		fprintf(stderr, "sipalgctl: unknown command '%s'\n", cmd);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (nargs < commands[i].min || nargs > commands[i].max) {
		fprintf(stderr, "sipalgctl: wrong number of arguments for '%s'\n", cmd);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (nargs)
		arg = argv[optind + 1];
	if (nargs == 2)
		arg2 = argv[optind + 2];
	if (json && !strcmp(cmd, "metrics")) {
		fprintf(stderr, "sipalgctl: metrics has its own format; --json does not apply\n");
		return EXIT_USAGE;
	}
	/* The daemon reads one line of printable ASCII words. */
	if ((arg && (!*arg || strpbrk(arg, " \t\r\n"))) || (arg2 && (!*arg2 || strpbrk(arg2, " \t\r\n")))) {
		fprintf(stderr, "sipalgctl: an argument must be one word\n");
		return EXIT_USAGE;
	}
	len = (size_t)snprintf(cmdline, sizeof(cmdline), "%s%s%s%s%s%s\n", cmd, arg ? " " : "",
			       arg ? arg : "", arg2 ? " " : "", arg2 ? arg2 : "", json ? " --json" : "");
	if (len >= sizeof(cmdline) || len > 128) {
		fprintf(stderr, "sipalgctl: command too long\n");
		return EXIT_USAGE;
	}

	deadline = now_ms() + TIMEOUT_MS;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(sock_path) >= sizeof(sa.sun_path))
		return unreachable(strerror(ENAMETOOLONG));
	strcpy(sa.sun_path, sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return unreachable(strerror(errno));
	/* A unix connect() only blocks when the listen backlog is full, i.e.
	 * when the daemon is stuck: that too must end at the deadline. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EAGAIN && errno != EINPROGRESS)
			return not_connected(errno);
		if (wait_fd(fd, POLLOUT, deadline) <= 0)
			return unreachable("timed out");
		sl = sizeof(rc);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &rc, &sl) < 0)
			return unreachable(strerror(errno));
		if (rc)
			return unreachable(strerror(rc));
	}

	while (sent < len) {
		ssize_t w = send(fd, cmdline + sent, len - sent, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			if (wait_fd(fd, POLLOUT, deadline) <= 0)
				return unreachable("timed out");
			continue;
		}
		if (w < 0)
			return unreachable(strerror(errno));
		sent += (size_t)w;
	}

	/* Stream the answer: a bindings table can be long. */
	for (;;) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			rc = wait_fd(fd, POLLIN, deadline);
			if (rc == 0)
				return unreachable(got_any ? "answer cut off: timed out"
							   : "no answer: timed out");
			if (rc < 0)
				return unreachable(strerror(errno));
			continue;
		}
		if (r < 0)
			return unreachable(strerror(errno));
		if (r == 0)
			break;
		got_any = 1;
		if (nfirst < sizeof(first)) {
			size_t k = sizeof(first) - nfirst < (size_t)r ? sizeof(first) - nfirst : (size_t)r;
			memcpy(first + nfirst, buf, k);
			nfirst += k;
		}
		if (fwrite(buf, 1, (size_t)r, stdout) != (size_t)r)
			break;
	}
	close(fd);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "sipalgctl: writing the answer: %s\n", strerror(errno));
		return 1;
	}
	if (!got_any) {
		/* The daemon closes without a word only if it could not read us. */
		fprintf(stderr, "sipalgctl: sipalgd at %s closed the connection without an answer\n",
			sock_path);
		return 1;
	}
	if (nfirst >= 6 && !memcmp(first, "error:", 6))
		return 1;
	if (!strcmp(cmd, "status") && !json && !(nfirst >= 2 && !memcmp(first, "ok", 2)))
		return 1;
	if (!strcmp(cmd, "status") && json && !(nfirst >= 20 && !memcmp(first, "{\"status\":{\"ok\":true", 20)))
		return 1;
	return 0;
}
