/* state: what the daemon knows about calls and registrations, in a small
 * text file, so a restart (crash, upgrade) takes running calls over: their
 * pinholes come back into the fresh nft table and their BYE still closes
 * them. Written atomically (temp file + rename), at most once a second
 * while something changed; read once at start. */
#ifndef SIPALGD_STATE_H
#define SIPALGD_STATE_H
#include <stdint.h>

/* Something worth saving changed. */
void state_touch(void);
/* Write the file if it is due. Returns 0, or -1 (logged, retried later). */
int state_save(const char *path, uint64_t now, int force);
/* Read the file, if there is one. Returns the number of dialogs restored. */
int state_load(const char *path, uint64_t now);

#endif
