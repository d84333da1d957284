/* ctl: the control socket (unix stream, one text command per connection,
 * answer then close) that sipalgctl talks to. The commands themselves
 * (status, counters, metrics, bindings, dialogs, pinholes, call, trace;
 * --json) are view.c's. The daemon's main loop polls ctl_fd(). */
#ifndef SIPALGD_CTL_H
#define SIPALGD_CTL_H
#include <stdio.h>

/* Called for each command with a stream to write the answer to.
 * Returns 0 for a known command, -1 for an unknown one. */
typedef int (*ctl_handler)(const char *cmd, FILE *out);

int ctl_open(const char *path, ctl_handler h);
/* Does a live daemon answer on `path`? Asked before the kernel is touched:
 * a second sipalgd started by mistake must not replace the first one's
 * table and rules on its way to failing. */
int ctl_in_use(const char *path);
int ctl_fd(void);
/* Accept and serve one pending connection (never blocks for long: the
 * client gets 1 s to send its command). */
void ctl_serve(void);
void ctl_close(void);

#endif
