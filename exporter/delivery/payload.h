/*
 * What an encoder hands the delivery layer: the bytes of one request body
 * (already compressed as the destination's Content-Encoding says), how
 * many items (log lines, spans, samples, rows) they hold, and the
 * X-Scope-OrgID to send them under.
 */

#ifndef OBS_PAYLOAD_H
#define OBS_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "compress.h"
#include "label_rules.h"

typedef struct payload {
    struct payload  *next;
    uint64_t         seq;           /* spool file number, 0 when in memory */
    size_t           len;
    size_t           disk_len;      /* bytes its spool file takes */
    size_t           items;         /* log lines, spans, samples or rows */
    int              legacy;        /* an old ClickHouse spool file */
    char             org[ORG_ID_MAX + 1];   /* X-Scope-OrgID, or "" */
    unsigned char   *data;          /* NULL while it is only on disk */
    size_t           cap;           /* data's size from payload_new (0:
                                       another's, freed as it is) */
} payload_t;

/* A payload with room for cap bytes (len 0) for items items under org
   (NULL or "" for none; must satisfy org_id_valid); NULL when out of
   memory. */
payload_t *payload_new(size_t cap, size_t items, const char *org);

/* A payload holding len bytes of body compressed as how says (gzip at its
   fastest level, or snappy's block format); NULL when that fails. */
payload_t *payload_compress(compress_t how, const void *body, size_t len,
    size_t items, const char *org);

/* Frees a payload (NULL is fine). */
void payload_free(payload_t *p);

/* Frees the bodies payload_free kept for payload_new to reuse. */
void payload_spares_free(void);

#endif
