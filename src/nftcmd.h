/* nftcmd: run nft command text (the start-up and shutdown work: our
 * table, its maps and chains, the nft divert table).
 *
 * libnftables is loaded for each call and unloaded after it. The daemon
 * needs it for a few milliseconds at start and stop, but linked in, it and
 * what it pulls in (libgmp, libjansson, libxtables) would stay mapped for
 * the daemon's life: about 1.2 MiB of the idle RSS budget of 4 MiB. */
#ifndef SIPALGD_NFTCMD_H
#define SIPALGD_NFTCMD_H

#include <stddef.h>

/* Runs text as one nft command buffer. 0 when nft accepted all of it;
 * -1 with the first line of nft's message in err (when errlen > 0). */
int nftcmd_run(const char *text, char *err, size_t errlen);

#endif
