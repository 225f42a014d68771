/*
 * What the exporters make of one record: the structured JSON log line (the
 * brief's fields) and the gateway's spans (OTLP, stable HTTP semantic
 * conventions), each written straight into a reused buffer.  Internal to
 * the exporter library.
 */

#ifndef OBS_EXPORTER_BUILD_H
#define OBS_EXPORTER_BUILD_H

#include <jansson.h>

#include "buf.h"
#include "exporter.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

/* Longest text field of a log line, in sanitised bytes (plus one). */
#define LOG_TEXT_MAX  2048

typedef Opentelemetry__Proto__Trace__V1__Span           otlp_span_t;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest
                                                        otlp_request_t;

#define otlp_request_unpack \
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack
#define otlp_request_free \
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked

/* obs_log_field: the most fields of a record written, the longest name. */
#define LOG_FIELDS_MAX      16
#define LOG_FIELD_NAME_MAX  64

/*
 * Puts the record's fields that the log line and the span may write in out
 * (at most LOG_FIELDS_MAX, in order): a name of [a-z][a-z0-9_.]{0,63}
 * that is no key of their own and not a repeat, and a value.  Returns how
 * many.
 */
size_t log_fields(const Obs__V1__Record *r, const Obs__V1__LogField **out);

/* Tells whether key is one the log line or the span writes itself. */
int log_key_reserved(const char *key);

/* Level of a response: INFO below 400, WARN for 4xx, ERROR for 5xx. */
const char *log_level(unsigned status);

/* Appends the record's JSON log line (no line end) to b; service is
   sanitised text, host the gateway's name, kept whether the request's
   span was exported ("trace_kept"). */
void log_line(buf_t *b, const Obs__V1__Record *r, const char *service,
    const char *host, int kept);

/*
 * Appends the same line as an OTLP LogRecord (a ScopeLogs.log_records
 * field) to out: time, severity (INFO 9, WARN 13, ERROR 17, and its text),
 * trace_id, span_id and flags (the sampled bit: kept) in the record's own
 * fields, the message as the body, every other key of the line an
 * attribute of the same name and kind.  rec is scratch space.
 */
void log_record(buf_t *out, buf_t *rec, const Obs__V1__Record *r,
    const char *service, const char *host, int kept);

/* Whether a record's spans are exported (head sampled, 5xx, or at least
   slow_ms slow), traces being on. */
int span_keep(const exporter_config_t *cfg, const Obs__V1__Record *r);

/*
 * Appends the record's spans (SERVER, and CLIENT per upstream attempt that
 * has an id of its own), each as a ScopeSpans.spans field, to out; span is
 * scratch space.  Returns how many (at most 1 + 8).
 */
int spans_append(buf_t *out, buf_t *span, const Obs__V1__Record *r,
    const char *service);

/* The gateway's Resource message (its attributes), written once. */
void spans_resource(buf_t *b, const exporter_config_t *cfg);

/* An ExportTraceServiceRequest holding the resource and the spans. */
void spans_request(buf_t *out, const buf_t *resource, const buf_t *spans);

/* OTLP/JSON (the protobuf JSON mapping) of a request body; NULL if it does
   not decode. */
json_t *spans_json(const uint8_t *body, size_t len);

#endif
