/*
 * What the exporters make of one record: the structured JSON log line (the
 * brief's fields) and the gateway's spans (OTLP, stable HTTP semantic
 * conventions).  Internal to the exporter library.
 */

#ifndef OBS_EXPORTER_BUILD_H
#define OBS_EXPORTER_BUILD_H

#include <jansson.h>

#include "exporter.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Trace__V1__Span           otlp_span_t;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest
                                                        otlp_request_t;

#define otlp_request_size \
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size
#define otlp_request_init \
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init
#define otlp_request_pack \
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack

/* Level of a response: INFO below 400, WARN for 4xx, ERROR for 5xx. */
const char *log_level(unsigned status);

/* The JSON log line of a record (a new object; the caller owns it). */
json_t *log_line(const Obs__V1__Record *r, const char *service,
    const char *host);

/* Allocates from a batch's memory; freed with the batch. */
typedef struct arena  arena_t;
arena_t *arena_new(void);
void *arena_alloc(arena_t *a, size_t size);
char *arena_strndup(arena_t *a, const char *s, size_t len);
void arena_free(arena_t *a);

/* Appends the record's spans (SERVER, and CLIENT per upstream attempt
   that has an id of its own) to spans[]; returns how many (at most 1 + 8). */
int spans_build(arena_t *a, const Obs__V1__Record *r, const char *service,
    otlp_span_t **spans);

/* The OTLP request holding spans, with the gateway's resource. */
otlp_request_t *spans_request(arena_t *a, const exporter_config_t *cfg,
    otlp_span_t **spans, size_t n);

/* OTLP/JSON (the protobuf JSON mapping) of a request. */
json_t *spans_json(const otlp_request_t *req);

#endif
