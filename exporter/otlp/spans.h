/*
 * The gateway's spans (OTLP, stable HTTP semantic conventions): a SERVER
 * span per kept request and a CLIENT span per upstream attempt, written
 * straight into a reused buffer.
 */

#ifndef OBS_EXPORTER_SPANS_H
#define OBS_EXPORTER_SPANS_H

#include <jansson.h>

#include "buf.h"
#include "exporter.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Trace__V1__Span           otlp_span_t;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest
                                                        otlp_request_t;

#define otlp_request_unpack \
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack
#define otlp_request_free \
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked

/*
 * Appends the record's spans (SERVER, and CLIENT per upstream attempt that
 * has an id of its own), each as a ScopeSpans.spans field, to out.
 * Returns how many (at most 1 + 8).
 */
int spans_append(buf_t *out, const Obs__V1__Record *r, const char *service);

/* The gateway's Resource message (its attributes), written once. */
void spans_resource(buf_t *b, const exporter_config_t *cfg);

/* An ExportTraceServiceRequest holding the resource and the spans. */
void spans_request(buf_t *out, const buf_t *resource, const buf_t *spans);

/* OTLP/JSON (the protobuf JSON mapping) of a request body; NULL if it does
   not decode. */
json_t *spans_json(const uint8_t *body, size_t len);

#endif
