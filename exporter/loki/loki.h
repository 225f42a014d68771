/*
 * Loki batches of one exporter thread: the entries of each stream
 * (service, level) kept already encoded, in Loki's native protobuf push
 * (logproto.PushRequest: StreamAdapter{labels=1, entries=2},
 * EntryAdapter{timestamp=1, line=2, structuredMetadata=3},
 * LabelPairAdapter{name=1, value=2}), in the JSON push, or as JSON lines
 * for the file fallback.  Buffers are kept from batch to batch.  Internal
 * to the exporter library.
 */

#ifndef OBS_EXPORTER_LOKI_H
#define OBS_EXPORTER_LOKI_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "label_rules.h"

#define LOKI_MAX_STREAMS  32
#define LOKI_SERVICE_MAX  256             /* the line's */
#define LOKI_TENANT_MAX   80

typedef enum { LOKI_PROTOBUF = 0, LOKI_JSON, LOKI_FILE } loki_format_t;

/* Room kept before a protobuf stream's entries for its StreamAdapter's
   tag, length and labels: a batch of one stream is sent from there. */
#define LOKI_HEAD  256

typedef struct {
    char         service[LABEL_BUF_LEN];    /* the stream label */
    const char  *level;
    buf_t        entries;
    size_t       head;              /* LOKI_HEAD (protobuf), or 0 */
} loki_stream_t;

typedef struct {
    char           org[ORG_ID_MAX + 1];     /* X-Scope-OrgID, or "" */
    const char    *job;             /* set: one stream {job, host} (audit) */
    loki_stream_t  streams[LOKI_MAX_STREAMS];
    int            n_streams;
    size_t         bytes;           /* encoded entries */
    size_t         items;
    double         opened;          /* when the first entry came */
    loki_stream_t *open;            /* loki_open's entry, until loki_close */
    size_t         open_before;
    size_t         open_entry;
    size_t         open_line;
    int            open_new;        /* its stream came with it */
} loki_batch_t;

/* One log line and what goes beside it. */
typedef struct {
    const char     *service;        /* label_sanitize()d, or __overflow__ */
    const char     *level;
    const buf_t    *line;           /* the JSON log line */
    uint64_t        time_ns;
    const uint8_t  *trace_id;       /* 16 bytes, or NULL */
    const char     *tenant;         /* sanitised; "" for none */
} loki_entry_t;

/*
 * Adds an entry to its stream; returns -1 (adding nothing) when the batch
 * has no room for another stream or memory ran out: seal, then add again.
 */
int loki_add(loki_batch_t *b, loki_format_t f, const loki_entry_t *e);

/*
 * The protobuf format's entry written in place (no line apart, no copy of
 * it): loki_open starts the entry of e (its service, level and time) and
 * returns the buffer its JSON log line is to be appended to, or NULL when
 * the batch has no room for another stream (seal, then open again);
 * loki_close ends it with e's trace id and tenant.  Returns 0, or -1 when
 * memory ran out, the batch left as it was.  The same bytes as loki_add.
 */
buf_t *loki_open(loki_batch_t *b, const loki_entry_t *e);
int loki_close(loki_batch_t *b, const loki_entry_t *e);

/*
 * Empties the batch into its uncompressed body and returns where that is,
 * *len bytes: in out, or, a protobuf batch of one stream, in place in the
 * stream's buffer (valid until the batch's next entry).
 */
const char *loki_seal(loki_batch_t *b, loki_format_t f, const char *host,
    buf_t *out, size_t *len);

/* Writes the batch's uncompressed body to out and empties the batch. */
void loki_body(loki_batch_t *b, loki_format_t f, const char *host,
    buf_t *out);

/* Frees the batch's buffers. */
void loki_free(loki_batch_t *b);

#endif
