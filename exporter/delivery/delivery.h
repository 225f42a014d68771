/*
 * The delivery layer: how every destination (Loki, OTLP traces,
 * remote-write, ClickHouse, and the ones to come) gets its payloads to its
 * receiver.  Encoders hand it payloads (payload.h); the layer owns them
 * from then on.  Per destination:
 *
 * - a memory queue bounded in bytes and, with spool_dir, an on-disk spool
 *   bounded in bytes and files (spool.h), replayed in order after a
 *   restart; what does not fit is dropped and counted, oldest or newest
 *   first as the destination says, or (OVERFLOW_BLOCK, "never shed") not
 *   taken at all: the producer waits in delivery_submit;
 * - one request in flight, so that payloads arrive in order; 2xx is sent
 *   (less the items a receiver says it refused: OTLP's partial success,
 *   counted `rejected');
 *   429, 5xx and connection errors are retried with exponential backoff
 *   and jitter, Retry-After honoured up to the backoff's cap; a 3xx is a
 *   configuration error: the payload is kept and retried, the redirect
 *   logged, never followed; any other answer drops the payload, counted
 *   `rejected' (http_client.h's classifier, replaceable per destination);
 * - failures logged (rate-limited) with the status or connection error and
 *   the answer's first bytes, and the recovery too;
 * - the same self-metrics: sent, requests by result, retries, dropped by
 *   reason, queue and spool bytes, last success.
 *
 * One thread ("obs-deliver", started with the first destination that
 * sends) runs every destination's transfers; producers never wait for a
 * receiver, only (OVERFLOW_BLOCK, or a file that blocks) for this thread.
 */

#ifndef OBS_DELIVERY_H
#define OBS_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "destination_config.h"
#include "http_client.h"
#include "payload.h"

#define DELIVERY_MAX_DESTINATIONS  16

typedef enum {
    DROP_QUEUE_FULL = 0, DROP_SPOOL_FULL, DROP_REJECTED, DROP_SHUTDOWN,
    DROP_REASONS
} drop_reason_t;

/* What goes when a payload does not fit in the queue (and spool). */
typedef enum {
    OVERFLOW_DROP_NEWEST = 0,       /* the new one: order kept (logs) */
    OVERFLOW_DROP_OLDEST,           /* the oldest: the newest says most */
    OVERFLOW_BLOCK                  /* none: the producer waits (audit) */
} delivery_overflow_t;

/* What a destination is: everything the layer needs from its exporter. */
typedef struct {
    const char                  *name;      /* "loki": logs, exporter="" */
    const char                  *legacy;    /* also obs_<legacy>_* */
    const char                  *items;     /* "samples", "rows", ... */
    const destination_config_t  *cfg;       /* copied */
    const char                  *url;       /* NULL: cfg->url (copied) */
    const char                  *content_type;
    const char                  *content_encoding;  /* or NULL */
    const char *const           *headers;   /* more "Name: value", NULL-
                                               ended (static), or NULL */
    double                       backoff_first;     /* seconds */
    double                       backoff_max;
    delivery_overflow_t                   overflow;
    int                          spool_first;   /* every payload on disk
                                                   before it is sent */
    int                          off;       /* counters only: not used */
    int                          grpc;      /* the gRPC transport
                                               (http_client.h) */
    http_classify_pt             classify;  /* NULL: http_classify */
} destination_spec_t;

typedef struct {
    uint64_t     requests_ok;
    uint64_t     requests_retried;  /* 429, 5xx, no answer, 3xx */
    uint64_t     requests_rejected; /* any other answer */
    uint64_t     redirects;         /* 3xx, among the retried */
    uint64_t     retries;
    uint64_t     items_sent;
    uint64_t     items_dropped[DROP_REASONS];
    uint64_t     payloads_spooled;
    uint64_t     queue_bytes;
    uint64_t     queue_items;
    uint64_t     spool_bytes;
    uint64_t     spool_files;
    uint64_t     spool_limit;
    double       last_success;      /* unix seconds; 0: never */
    double       last_delay;        /* seconds waited before the last retry */
    int          enabled;
    const char  *mode;              /* "http", "file" or "off" */
} destination_stats_t;

typedef struct delivery     delivery_t;
typedef struct destination  destination_t;

extern const char *const  delivery_drop_names[DROP_REASONS];

/* A layer whose stop delivers for at most drain_seconds; NULL when out of
   memory. */
delivery_t *delivery_new(double drain_seconds);

/*
 * Adds a destination (a copy of spec and its settings); loads what its
 * spool holds from an earlier run.  Without a URL a destination with
 * cfg->file writes each payload to that file ("-": stdout).  NULL with err
 * set when it cannot.
 */
destination_t *delivery_add(delivery_t *d, const destination_spec_t *spec,
    char *err, size_t errlen);

/*
 * Hands a payload over (owned by the layer from now on); any thread but
 * ingest.  Waits only while the delivery thread has not taken a queue's
 * worth (a file that blocks) or, OVERFLOW_BLOCK, while queue and spool are
 * full.
 */
void delivery_submit(destination_t *t, payload_t *p);

/* Counts items that were lost before they became a payload (no memory),
   as queue_full. */
void delivery_lost(destination_t *t, size_t items);

/* Copies a destination's counters. */
void delivery_stats(destination_t *t, destination_stats_t *out);

/* The destinations, in the order they were added; NULL past the last. */
destination_t *delivery_destination(delivery_t *d, int i);

/* The spec a destination was added with (names for metrics). */
const destination_spec_t *destination_spec(const destination_t *t);

/*
 * Delivers what is queued for at most the drain time (a destination whose
 * receiver is failing is not waited for), then keeps what is left in the
 * spool or counts it dropped at shutdown.  Counters stay readable.
 */
void delivery_stop(delivery_t *d);

/* Frees the layer and its destinations (after delivery_stop). */
void delivery_free(delivery_t *d);

/* Wall-clock seconds. */
double delivery_now(void);

#endif
