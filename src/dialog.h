/* dialog: calls as a phone on the LAN sees them, and the media pinholes each
 * one holds. Keyed by Call-ID and the phone's private address, so several
 * calls on one signalling 5-tuple (a PBX trunk) never touch each other's
 * pinholes, and one call that hairpins through the provider between two LAN
 * phones is two dialogs.
 *
 * Offer/answer (RFC 3264) drives the pinholes: the phone's SDP opens a
 * pinhole per stream before it leaves the router; the remote's SDP tells
 * which address may use it (media.pinhole_source: peer). Streams that a new
 * offer drops are retired once the answer arrives; a rejected offer rolls
 * back. A dialog closes (pinholes, inbound elements and media conntracks
 * gone) on 200 to BYE, on a final >= 300 to the initial INVITE, or by timer.
 * The pool is sized from limits.dialogs at start. Host byte order. */
#ifndef SIPALGD_DIALOG_H
#define SIPALGD_DIALOG_H
#include <stdint.h>
#include <stdio.h>

#include "sdp.h"

struct conf;
struct binding;
struct dialog;

enum dlg_side { SIDE_NONE = 0, SIDE_PHONE = 1, SIDE_REMOTE = 2 };

int dialog_init(const struct conf *c);
void dialog_fini(void);

struct dialog *dialog_find(const uint8_t *callid, uint32_t len, uint32_t phone_ip);
/* Create; `sigb` is the phone's signalling binding (referenced while the
 * dialog lives, with an inbound element from `peer_ip`). NULL when full. */
struct dialog *dialog_create(const uint8_t *callid, uint32_t len, uint32_t phone_ip,
			     uint16_t phone_port, uint32_t peer_ip, uint16_t peer_port,
			     struct binding *sigb, uint64_t now);

/* An SDP passed from `side`, in a request or in a response of transaction
 * `cseq`. Classified as offer or answer from the dialog's state (RFC 3264:
 * an SDP in a response to a request that carried an offer is the answer,
 * also when the response is retransmitted). For the phone's SDP, fills
 * pub[i] with the public port to write into m= line i (0: stream refused,
 * write port 0). Returns 0, or -1 if nothing could be opened at all. */
int dialog_sdp(struct dialog *d, enum dlg_side side, const struct sdp *s, int in_response,
	       uint32_t cseq, uint32_t sender_ip, uint16_t pub[SDP_MAX_MEDIA], uint64_t now);

/* A request from `side` that may carry an offer (INVITE/UPDATE) was answered
 * with a final non-2xx response: roll back what its offer opened. */
void dialog_offer_failed(struct dialog *d);

/* SIP traffic on the dialog: keeps it from expiring. */
void dialog_touch(struct dialog *d, uint64_t now);
void dialog_confirmed(struct dialog *d, uint64_t now);
/* A BYE was seen: if no 200 comes, close when the transaction would time out. */
void dialog_bye_seen(struct dialog *d, uint64_t now);
int dialog_is_confirmed(const struct dialog *d);
/* CSeq of the INVITE that created the dialog. */
uint32_t dialog_invite_cseq(const struct dialog *d);
void dialog_set_invite_cseq(struct dialog *d, uint32_t cseq);

/* State file lines ("D ..." then its "S ..." streams), see state.h. */
void dialog_save(FILE *f, uint64_t now);
/* Feed lines in file order; returns 0 or -1 for a line that does not parse. */
int dialog_restore_line(const char *line, uint64_t now);

/* Longest hash chain and number of buckets (for tests of the keyed hash). */
uint32_t dialog_hash_longest_chain(uint32_t *nbuckets);

void dialog_close(struct dialog *d, uint64_t now);
void dialog_expire(uint64_t now);
void dialog_dump(FILE *f, uint64_t now);
void dialog_dump_pinholes(FILE *f);

#endif
