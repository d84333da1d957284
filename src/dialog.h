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
 * The pool is sized from limits.dialogs at start. Ports in host byte order;
 * a dialog's phone and peer are struct addr (IPv4 or IPv6); the IPv4 NAT
 * state under it (bindings, nft elements) is v4-only (docs/ipv6.md). */
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

/* The router's own addresses changed (wan.c follows them): a pinhole must
 * never lead to one. Starts as conf.local_ips. At most 16 are kept. */
void dialog_set_local(const uint32_t *ips, int n);

struct dialog *dialog_find(const uint8_t *callid, uint32_t len, const struct addr *phone_ip);
/* Create; `sigb` is the phone's signalling binding (referenced while the
 * dialog lives, with an inbound element from `peer_ip`). NULL when full. */
struct dialog *dialog_create(const uint8_t *callid, uint32_t len, const struct addr *phone_ip,
			     uint16_t phone_port, const struct addr *peer_ip, uint16_t peer_port,
			     struct binding *sigb, uint64_t now);

/* An SDP passed from `side`, in a request or in a response of transaction
 * `cseq`. Classified as offer or answer from the dialog's state (RFC 3264:
 * an SDP in a response to a request that carried an offer is the answer,
 * also when the response is retransmitted). For the phone's SDP, fills
 * pub[i] with the public port to write into m= line i (0: stream refused,
 * write port 0). Returns 0, or -1 if nothing could be opened at all. */
int dialog_sdp(struct dialog *d, enum dlg_side side, const struct sdp *s, int in_response,
	       uint32_t cseq, const struct addr *sender_ip, uint16_t pub[SDP_MAX_MEDIA], uint64_t now);

/* The phone's a=rtcp (RFC 3605) of m= line `mindex` named a port other than
 * RTP+1: the public port opened for it (write it into the a=rtcp line), 0
 * when there is none (RTCP is RTP+1, multiplexed, or refused). RTCP
 * multiplexing (RFC 5761) is followed from the SDPs: once a=rtcp-mux is
 * offered and answered, RTCP has no inbound elements of its own. */
uint16_t dialog_rtcp_public(const struct dialog *d, int mindex);

/* Forked INVITEs (RFC 3261 12.1, 13.2.2.4). `side` sent the initial INVITE;
 * only a call the phone began can fork. */
void dialog_set_caller(struct dialog *d, enum dlg_side side);
/* The remote party's tag in the message being handled (the To tag in the
 * phone's requests and the responses to them, else the From tag; len 0:
 * none). Call it for every message of the dialog before dialog_sdp() and
 * dialog_confirmed(), which act for that early dialog: up to 4 early
 * dialogs each get inbound elements for the media address their SDP names
 * (early media from every fork reaches the phone); the 2xx picks one and
 * the others' elements and flows go. Returns 1 when the message belongs to
 * an early dialog that lost (the call was answered by another): the caller
 * must then let it change nothing (no SDP, no BYE, no close). */
int dialog_fork(struct dialog *d, const uint8_t *tag, uint32_t len);

/* A request from `side` that may carry an offer (INVITE/UPDATE) was answered
 * with a final non-2xx response: roll back what its offer opened. */
void dialog_offer_failed(struct dialog *d);

/* The public address of the phone's family the router had when the
 * dialog began (the family's unspecified address: unknown, e.g. none then,
 * or taken over from a state file before the WAN's address was known). */
const struct addr *dialog_public(const struct dialog *d);

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

/* ---- the operator's view (sipalgctl --json, call) ---------------------- */
#define DIALOG_VIEW_STREAMS 12
enum dlg_stream_state { DST_FREE = 0, DST_NEW, DST_ACTIVE, DST_RETIRING };
struct dialog_stream_view {
	uint8_t mindex;         /* m= line index in the SDP */
	uint8_t routed;         /* routed IPv6: the pinhole is a conntrack entry from remote to
	                           priv (no public port, pub_port 0), `state` ACTIVE once created */
	uint8_t state;          /* enum dlg_stream_state */
	struct addr priv_ip;    /* the phone's media address */
	struct addr routed_pub; /* routed: the phone's address as the WAN sees it, its NAT66
	                           image (wan.nat66_*) or priv_ip itself */
	uint16_t priv_port;     /* RTP; RTCP is +1 unless a=rtcp named another port or rtcp-mux was agreed (sipalgctl pinholes) */
	uint16_t pub_port;      /* on the router's public address; RTCP +1 */
	struct addr pub_ip;     /* NAT stream: that public address (IPv4, or the WAN's IPv6 for
	                           wan.masquerade6); its family's any while the WAN has none */
	struct addr allowed_src; /* inbound elements accept this source (any address: any) */
	struct addr remote_ip;  /* the remote's media address from its SDP (any address: unknown yet) */
	uint16_t remote_port;
	uint8_t rtcp_mux;       /* RTCP on the RTP port: no RTCP pinhole */
	uint16_t rtcp_pub_port; /* where RTCP is taken (RTP+1, or an a=rtcp port) */
	struct addr rtcp_priv_ip;
	uint16_t rtcp_priv_port;
};
struct dialog_view {
	uint32_t slot;          /* dialog_slot() */
	const char *callid;     /* the kept prefix (up to 64 bytes), not NUL-terminated */
	uint32_t callid_len;
	uint32_t callid_full;   /* length of the whole Call-ID */
	struct addr phone_ip;
	uint16_t phone_port;
	uint16_t sig_pub_port;  /* the phone's signalling binding, 0 if none */
	struct addr peer_ip;    /* remote signalling peer */
	uint16_t peer_port;
	uint8_t confirmed;
	uint8_t offer_from;     /* enum dlg_side with an offer outstanding */
	uint64_t age_ms;
	uint64_t expires_ms;    /* left */
	int n_streams;
	struct dialog_stream_view st[DIALOG_VIEW_STREAMS];
};
/* The dialog's index in the pool (0 .. limits.dialogs-1): its calllog ring. */
uint32_t dialog_slot(const struct dialog *d);
/* Fill *v with the next live dialog from *cursor (start at 0). 1, or 0 at the end. */
int dialog_view_next(uint32_t *cursor, struct dialog_view *v, uint64_t now);

#endif
