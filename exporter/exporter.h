/*
 * The exporters obs-sidecar links: every request's structured log line to
 * Loki and the gateway's spans to an OTLP/HTTP receiver (Jaeger), off
 * nginx's request path.  With no receiver configured, log lines go as JSON
 * lines and spans as OTLP/JSON lines to files (or stdout).
 *
 * The ingest thread only copies each datagram into a bounded queue
 * (queue.h); one exporter thread decodes it again, once for all of them
 * (decoded.h), and each builds the log lines and spans of its share of the
 * streams from that, batched by size and time and compressed.  They are encoders: the delivery layer (delivery.h) queues,
 * spools, retries and sends what they seal.
 */

#ifndef OBS_EXPORTER_H
#define OBS_EXPORTER_H

#include <stddef.h>
#include <stdint.h>

#include "delivery.h"
#include "obs/v1/record.pb-c.h"

typedef enum { TENANT_HEADER_NONE, TENANT_HEADER_FIXED,
               TENANT_HEADER_PER_TENANT } tenant_header_t;

typedef struct {
    destination_config_t  loki;
    destination_config_t  otlp;
    destination_config_t  otlp_logs;   /* log records over OTLP */
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
    int              otlp_protocol;     /* traces: otlp_protocol_t */
    int              otlp_logs_on;      /* OTEL_LOGS_EXPORTER=otlp */
    int              otlp_logs_protocol;
    int              otlp_logs_gzip;
} exporter_config_t;

typedef enum { SIGNAL_LOGS = 0, SIGNAL_TRACES, SIGNALS } signal_id_t;

typedef enum { EXPORTER_LOKI = 0, EXPORTER_OTLP, EXPORTER_OTLP_LOGS,
               EXPORTER_SINKS } sink_id_t;

/* The stream labels the metrics' caps bound: a Loki stream's service and
   per-tenant X-Scope-OrgID, an OTLP log record's service. */
typedef enum { STREAM_SERVICE = 0, STREAM_TENANT, STREAM_LABELS
             } stream_label_t;

extern const char *const  exporter_sink_names[EXPORTER_SINKS];
extern const char *const  exporter_signal_names[SIGNALS];
extern const char *const  exporter_stream_label_names[STREAM_LABELS];

typedef struct exporter  exporter_t;

/* Fills cfg with the defaults (exporter_config.h reads the rest). */
void exporter_config_defaults(exporter_config_t *cfg);

/* Frees what a configuration holds. */
void exporter_config_free(exporter_config_t *cfg);

/* Starts the exporter threads, their payloads going to destinations of d
   ("loki", "otlp": counted even when off; "otlp_logs" when log records go
   over OTLP); err says why not. */
exporter_t *exporter_start(const exporter_config_t *cfg, delivery_t *d,
    char *err, size_t errlen);

/*
 * Takes a copy of one aggregated datagram holding records records, and of
 * what the caps made of their labels (over: LABEL_OVER_BYTES(records)
 * bytes of LABEL_OVER_*, common/label_rules.h; NULL: none), whose
 * "__overflow__" the streams take too (ingest thread): never waits; when
 * the exporter threads are a full queue behind, the records are counted
 * shed for each signal that is on.
 */
void exporter_offer(exporter_t *e, const uint8_t *data, size_t len,
    size_t records, const uint8_t *over);

/* What the delivery layer is told of the Loki, OTLP traces or OTLP logs
   destination (the URL is the configured one: see otlp_url). */
void exporter_destination(const exporter_config_t *cfg, sink_id_t which,
    destination_spec_t *spec);

/* Copies a sink's counters. */
void exporter_stats(exporter_t *e, sink_id_t sink, destination_stats_t *out);

/* Records whose log line (or spans) were shed because the queue was full. */
uint64_t exporter_shed(exporter_t *e, signal_id_t signal);

/* Log lines (Loki) or log records (OTLP) built with a stream label put
   under "__overflow__" by the metrics' caps. */
uint64_t exporter_overflow(exporter_t *e, sink_id_t sink,
    stream_label_t label);

/* Datagrams the exporter threads decoded: each once, however many threads
   there are. */
uint64_t exporter_decodes(exporter_t *e);

/* Datagrams handed over and not yet read by every exporter thread. */
size_t exporter_backlog(exporter_t *e);

/* Seals what is batched and hands it to the delivery layer, then stops
   the exporter threads (delivery_stop delivers it). */
void exporter_stop(exporter_t *e);

/* Frees the exporter, after exporter_stop and once nothing reads its
   counters (/metrics: after http_stop). */
void exporter_free(exporter_t *e);

#endif
