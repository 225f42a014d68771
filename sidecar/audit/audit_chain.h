/*
 * The audit trail's chain: each event is one JSON line
 *
 *   {"seq":N,<the event's members>,"prev":"<64 hex>","mac":"<64 hex>"}
 *
 * where mac = HMAC-SHA256(key, prev || the line up to, not including,
 * ',"mac":"'), prev being the raw 32 bytes of the event before's mac (all
 * zeros before the first event, seq 1).  Editing, removing, inserting or
 * reordering an event breaks the mac of that line or of the next; the
 * chain goes on across files (a rotated file's last mac is the next
 * file's first prev).  What it cannot show: a chain rewritten by someone
 * who holds the key, and events cut from the end of the last file (unless
 * the last mac is known from elsewhere: Loki, a copy).
 */

#ifndef OBS_AUDIT_CHAIN_H
#define OBS_AUDIT_CHAIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"

#define AUDIT_MAC_LEN      32
/* ',"mac":"' + 64 hex + '"}': the fixed end of every line */
#define AUDIT_LINE_TAIL    (8 + 2 * AUDIT_MAC_LEN + 2)
/* ',"prev":"' + 64 hex + '"': the fixed end of the part the mac covers */
#define AUDIT_PREV_TAIL    (9 + 2 * AUDIT_MAC_LEN + 1)

typedef struct audit_key  audit_key_t;

/* Where a chain stands: its last event. */
typedef struct {
    uint64_t  seq;                  /* 0: no event yet */
    uint8_t   mac[AUDIT_MAC_LEN];   /* zeros: no event yet */
} audit_chain_t;

/* A key for the chain's HMAC (the key file's first line); NULL if OpenSSL
   cannot make one. */
audit_key_t *audit_key_new(const char *key, size_t len);

/* Frees a key (NULL is fine). */
void audit_key_free(audit_key_t *k);

/*
 * Appends the chain's next line (line end included) for an event whose
 * members are body (JSON members, no braces); advances c.  -1 when the
 * HMAC fails or out of memory (nothing is appended, c unchanged).
 */
int audit_chain_append(audit_chain_t *c, audit_key_t *k, const char *body,
    size_t len, buf_t *out);

/*
 * Reads one line (no line end) as an event of the chain: its seq, prev and
 * mac where they belong, and its mac right.  Fills seq, prev and mac.
 * Returns NULL, or what is wrong.
 */
const char *audit_chain_parse(audit_key_t *k, const char *line, size_t len,
    uint64_t *seq, uint8_t *prev, uint8_t *mac);

/*
 * Verifies files (oldest first) as one chain under key: exits 0 when it
 * holds (saying so on out: events, files, where it starts, the last mac),
 * 1 naming the first bad line on err (file:line: what).  A chain that does
 * not start at seq 1 is reported (its earlier files were rotated away) but
 * holds; anchor (64 hex, or NULL) is a mac that must be in the chain, as
 * one shipped elsewhere shows what the files' tail was.
 */
int audit_verify(const char *key, char *const *files, int n,
    const char *anchor, FILE *out, FILE *err);

#endif
