/* view: the answers to sipalgctl's commands, as text or as JSON (the
 * schemas are in docs/operations.md and are stable: fields are only ever
 * added). Reads the state modules' views; changes nothing. */
#ifndef SIPALGD_VIEW_H
#define SIPALGD_VIEW_H
#include <stdint.h>
#include <stdio.h>

/* `line` is the command line as sipalgctl sent it: "COMMAND [ARG] [--json]".
 * `c` the running configuration; `start_ms` is when the daemon started (uptime). Returns 0 for a known
 * command (errors then start with "error: "), -1 for an unknown one. */
struct conf;
int view_answer(const char *line, FILE *out, const struct conf *c, uint64_t now, uint64_t start_ms);

#endif
