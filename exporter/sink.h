/*
 * One delivery destination (Loki, or the OTLP receiver): a bounded memory
 * queue, a bounded on-disk spool replayed in order, and one request in
 * flight at a time (so payloads arrive in order), retried on 429, 5xx and
 * connection errors with exponential backoff that honours Retry-After.
 * Without a URL the sink appends each payload to a file instead.
 * Internal to the exporter library; used only by the exporter thread.
 */

#ifndef OBS_EXPORTER_SINK_H
#define OBS_EXPORTER_SINK_H

#include <curl/curl.h>
#include <stdio.h>

#include "exporter.h"

typedef struct payload {
    struct payload  *next;
    uint64_t         seq;           /* spool file number, 0 when in memory */
    size_t           len;
    size_t           disk_len;      /* bytes its spool file takes */
    size_t           items;         /* log lines or spans inside */
    char             org[128];      /* X-Scope-OrgID, or "" */
    unsigned char   *data;          /* NULL while it is only on disk */
} payload_t;

typedef struct {
    sink_id_t             id;
    const sink_config_t  *cfg;
    const char           *content_type;
    CURLM                *multi;
    CURL                 *easy;
    struct curl_slist    *headers;
    FILE                 *file;

    payload_t            *mem_head, *mem_tail;
    payload_t            *spool_head, *spool_tail;
    uint64_t              next_seq;
    payload_t            *current;      /* being delivered, until it is done */
    int                   inflight;
    double                retry_at;
    double                backoff;
    double                retry_after;
    int                   org_header;   /* an X-Scope-OrgID node is first */
    char                  error[CURL_ERROR_SIZE];

    sink_stats_t          stats;
} sink_t;

/* Prepares a sink (encoding: a Content-Encoding, or NULL); loads what an
   earlier run left in the spool. */
int sink_init(sink_t *s, sink_id_t id, const sink_config_t *cfg,
    const char *content_type, const char *encoding, CURLM *multi, char *err,
    size_t errlen);

/* Queues a payload (owning it) or writes it to the file. */
void sink_enqueue(sink_t *s, payload_t *p);

/* Starts the next delivery if none is running and no backoff waits. */
void sink_pump(sink_t *s, double now);

/* Handles the end of the sink's transfer. */
void sink_done(sink_t *s, CURLcode rc, double now);

/* Whether nothing is queued or in flight. */
int sink_idle(const sink_t *s);

/* Moves what is still in memory to the spool (or counts it dropped). */
void sink_shutdown(sink_t *s);

/* Frees the sink. */
void sink_free(sink_t *s);

/*
 * Reads a Retry-After response header line (seconds, or an HTTP date)
 * into seconds; returns 1 when line is one, else 0.
 */
int sink_retry_after(const char *line, size_t len, double *seconds);

#endif
