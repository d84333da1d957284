/* calllog: the last messages of each call as they arrived and as they left
 * (start line, and each rewritten span: the bytes before -> after), and why
 * a message was dropped or a stream refused; for `sipalgctl call`.
 *
 * One bounded ring per dialog slot (CALLLOG_ENTRIES messages), in a table
 * sized from limits.dialogs at start and touched only for slots in use;
 * plus one ring of messages that belong to no dialog but tell something
 * (dropped, or from a phone outside lan.networks). Nothing is allocated per
 * packet; a note copies at most a few hundred bytes. */
#ifndef SIPALGD_CALLLOG_H
#define SIPALGD_CALLLOG_H
#include <stdint.h>

#include "addr.h"
#include <stdio.h>

struct edit_list;

#define CALLLOG_ENTRIES 8

int calllog_init(uint32_t slots);
void calllog_fini(void);
/* A new dialog took `slot`: forget what the previous one left. */
void calllog_reset(uint32_t slot);

struct calllog_msg {
	const uint8_t *payload;  /* the SIP message as it arrived */
	uint32_t len;
	uint32_t line_len;       /* its start line */
	const struct edit_list *ed; /* the rewrites (NULL: none) */
	uint8_t outbound;        /* LAN -> WAN */
	uint8_t dropped;         /* verdict drop */
	uint8_t observe;         /* mode observe: the rewrites were not applied */
	const char *reason;      /* why dropped / what was refused (static), or NULL */
	struct addr src, dst;    /* addresses; ports in host order */
	uint16_t sport, dport;
};

/* Note one message of the dialog in `slot`. */
void calllog_note(uint32_t slot, uint64_t now, const struct calllog_msg *m);
/* Note a message with no dialog (only dropped or ignored ones are worth
 * keeping); `callid` may be NULL. */
void calllog_note_untracked(uint64_t now, const struct calllog_msg *m, const uint8_t *callid,
			    uint32_t callid_len);

/* "messages":[...] (JSON, a member of the call object) / text lines. */
void calllog_json(FILE *f, uint32_t slot, uint64_t now);
void calllog_text(FILE *f, uint32_t slot, uint64_t now);
/* The untracked messages whose Call-ID starts with prefix: count, and the
 * same output forms. */
int calllog_untracked_match(const char *prefix);
void calllog_untracked_json(FILE *f, const char *prefix, uint64_t now);
void calllog_untracked_text(FILE *f, const char *prefix, uint64_t now);

#endif
