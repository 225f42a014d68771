/*
 * OTLP metrics from the sidecar: every OTEL_METRIC_EXPORT_INTERVAL, what
 * /metrics serves (the store's series, business metrics, requests in
 * flight, the sidecar's own health; the same caps and __overflow__ series)
 * becomes ExportMetricsServiceRequests handed to the delivery layer, over
 * OTLP/HTTP protobuf or OTLP/gRPC.
 *
 * - Names and attributes: the gateway's families under OpenTelemetry's
 *   names (http.server.request.duration, ...) with the stable HTTP
 *   semantic-convention attributes (the table in metrics.c, and
 *   docs/exporters.md); every other family under its /metrics name (counters without
 *   _total), its labels as attributes.
 * - Histograms: explicit bounds equal to the sidecar's buckets, the bucket
 *   counts, sum and count, and the buckets' exemplars (trace and span ids).
 * - Temporality: cumulative (delta when asked: counters and histograms;
 *   requests in flight and gauges stay as they are).  A series' start time
 *   is when its counting began: the sidecar's start, or the push before the
 *   one that first saw it, or the push before a reset (a series that
 *   expired and came back, a count that went down), so a restart or a
 *   reset is visible to the receiver.
 */

#ifndef OBS_OTLP_METRICS_H
#define OBS_OTLP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "delivery.h"
#include "payload.h"
#include "settings.h"
#include "store.h"

typedef struct {
    destination_config_t  sink;     /* url, auth, TLS, headers, timeout,
                                       queue, spool; batch_bytes */
    int      protocol;              /* otlp_protocol_t */
    int      gzip;
    long     interval_ms;           /* OTEL_METRIC_EXPORT_INTERVAL: 60000 */
    int      delta;                 /* temporality preference */
    int      prometheus;            /* OTEL_METRICS_EXPORTER: /metrics */
    int      otlp;                  /*   and/or pushed over OTLP */
} otlp_metrics_config_t;

typedef struct otlp_metrics          otlp_metrics_t;
typedef struct otlp_metrics_encoder  otlp_metrics_encoder_t;

/* The rows of "metrics_exporter" and "otlp_metrics" (top level, over an
   otlp_metrics_config_t). */
extern const setting_t  otlp_metrics_settings[];

/* Fills cfg with the defaults: /metrics served, nothing pushed. */
void otlp_metrics_config_defaults(otlp_metrics_config_t *cfg);

/* Frees what cfg holds. */
void otlp_metrics_config_free(otlp_metrics_config_t *cfg);

/* What the delivery layer is told of the "otlp_metrics" destination (its
   URL: otlp_url of the configured one). */
void otlp_metrics_destination(const otlp_metrics_config_t *cfg,
    destination_spec_t *spec);

/*
 * Starts pushing store's series (NULL, and no error, when OTLP is not
 * among the metrics exporters); the resource is service_name, host and
 * resource_attributes (OTEL_RESOURCE_ATTRIBUTES).  NULL with err set when
 * it cannot.
 */
otlp_metrics_t *otlp_metrics_start(const otlp_metrics_config_t *cfg,
    const char *service_name, const char *host,
    const char *resource_attributes, store_t *store, delivery_t *d,
    char *err, size_t errlen);

/* Pushes once more, then stops the thread and frees everything but its
   destination (delivery_stop delivers what is left). */
void otlp_metrics_stop(otlp_metrics_t *m);

/* An encoder whose series started counting at start (unix seconds);
   resource is copied.  NULL when out of memory. */
otlp_metrics_encoder_t *otlp_metrics_encoder_new(
    const otlp_metrics_config_t *cfg, const buf_t *resource, double start);

/*
 * Encodes everything /metrics shows at now (unix seconds) into requests of
 * about batch_bytes (gzip'd when asked), each a payload whose items are its
 * data points, chained by next; *points says how many in all, *lost how
 * many were not encoded for lack of memory.  Returns the chain (NULL when
 * empty).
 */
payload_t *otlp_metrics_encode(otlp_metrics_encoder_t *e, store_t *store,
    double now, size_t *points, size_t *lost);

/* Frees an encoder. */
void otlp_metrics_encoder_free(otlp_metrics_encoder_t *e);

#endif
