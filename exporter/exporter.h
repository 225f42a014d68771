/*
 * The exporters obs-sidecar links: every request's structured log line to
 * Loki and the gateway's spans to an OTLP/HTTP receiver (Jaeger), off
 * nginx's request path.  With no receiver configured, log lines go as JSON
 * lines and spans as OTLP/JSON lines to files (or stdout).
 *
 * The ingest thread only copies each datagram into a bounded queue
 * (queue.h); the exporter threads decode it again and build the log lines
 * and spans of their share of the streams.  Batching by size and time,
 * compression, delivery with retries, the bounded memory queue and the
 * on-disk spool run on the delivery thread.
 */

#ifndef OBS_EXPORTER_H
#define OBS_EXPORTER_H

#include <stddef.h>
#include <stdint.h>

#include "obs/v1/record.pb-c.h"

#define EXPORTER_MAX_HEADERS  16

typedef enum { TENANT_HEADER_NONE, TENANT_HEADER_FIXED,
               TENANT_HEADER_PER_TENANT } tenant_header_t;

typedef struct {
    char    *url;                   /* Loki push URL, or the OTLP endpoint */
    char    *file;                  /* fallback: "-" for stdout */
    char    *headers[EXPORTER_MAX_HEADERS];     /* "Name: value" */
    int      n_headers;
    char    *basic_user;
    char    *basic_password;
    char    *bearer_token;
    char    *ca_file;
    char    *cert_file;
    char    *key_file;
    size_t   batch_bytes;           /* Loki: 1 MiB */
    size_t   batch_items;           /* OTLP: 512 spans */
    long     batch_wait_ms;         /* 1000 */
    long     timeout_ms;            /* per request: 10000 */
    size_t   queue_bytes;           /* memory queue bound */
    size_t   spool_bytes;           /* disk spool bound (0: no spool) */
    char    *spool_dir;
} sink_config_t;

typedef struct {
    sink_config_t    loki;
    sink_config_t    otlp;
    tenant_header_t  tenant_header;
    char            *org_id;            /* TENANT_HEADER_FIXED */
    char            *gateway_name;      /* resource service.name */
    char            *gateway_host;      /* Loki stream label "host" */
    char            *resource_attributes;   /* OTEL_RESOURCE_ATTRIBUTES */
    long             slow_ms;           /* tail keep: slower spans */
    double           drain_seconds;     /* SIGTERM: at most this long */
    int              logs;              /* 0: no log lines at all */
    int              traces;            /* 0: no spans at all */
    long             threads;           /* exporter threads (default 1) */
    long             queue_datagrams;   /* hand-off ring: datagram copies */
    int              loki_json;         /* 1: JSON + gzip push, 0: protobuf */
    int              otlp_gzip;         /* 1: gzip OTLP bodies (default 0) */
} exporter_config_t;

typedef enum { SIGNAL_LOGS = 0, SIGNAL_TRACES, SIGNALS } signal_id_t;

typedef enum { EXPORTER_LOKI = 0, EXPORTER_OTLP, EXPORTER_SINKS } sink_id_t;

typedef enum {
    DROP_QUEUE_FULL = 0, DROP_SPOOL_FULL, DROP_REJECTED, DROP_SHUTDOWN,
    DROP_REASONS
} drop_reason_t;

typedef struct {
    uint64_t  requests_ok;
    uint64_t  requests_failed;
    uint64_t  retries;
    uint64_t  items_sent;
    uint64_t  items_dropped[DROP_REASONS];
    uint64_t  payloads_spooled;
    uint64_t  queue_bytes;
    uint64_t  queue_items;
    uint64_t  spool_bytes;
    uint64_t  spool_limit;
    int       enabled;
    const char *mode;                   /* "http" or "file" */
} sink_stats_t;

extern const char *const  exporter_sink_names[EXPORTER_SINKS];
extern const char *const  exporter_drop_names[DROP_REASONS];
extern const char *const  exporter_signal_names[SIGNALS];

typedef struct exporter  exporter_t;

/* Fills cfg with the defaults (exporter_config.h reads the rest). */
void exporter_config_defaults(exporter_config_t *cfg);

/* Frees what a configuration holds. */
void exporter_config_free(exporter_config_t *cfg);

/* Starts the exporter thread; err says why not. */
exporter_t *exporter_start(const exporter_config_t *cfg, char *err,
    size_t errlen);

/*
 * Takes a copy of one aggregated datagram holding records records (ingest
 * thread): never waits; when the exporter threads are a full queue behind,
 * the records are counted shed for each signal that is on.
 */
void exporter_offer(exporter_t *e, const uint8_t *data, size_t len,
    size_t records);

/* Copies a sink's counters. */
void exporter_stats(exporter_t *e, sink_id_t sink, sink_stats_t *out);

/* Records whose log line (or spans) were shed because the queue was full. */
uint64_t exporter_shed(exporter_t *e, signal_id_t signal);

/* Datagrams handed over and not yet read by every exporter thread. */
size_t exporter_backlog(exporter_t *e);

/* Sends what is batched and queued, for at most the drain time, then
   stops; what is left stays in the spool (or is counted dropped). */
void exporter_stop(exporter_t *e);

#endif
