/*
 * Settings every OTLP signal shares (traces, metrics, logs): the protocol,
 * the rows of OTEL_EXPORTER_OTLP_* (a general variable and the signal's
 * own, which wins), and where each signal goes over each protocol.
 */

#ifndef OBS_OTLP_CONFIG_H
#define OBS_OTLP_CONFIG_H

#include <stddef.h>

#include "destination_config.h"
#include "settings.h"

typedef enum { OTLP_HTTP_PROTOBUF = 0, OTLP_GRPC } otlp_protocol_t;

typedef enum { OTLP_TRACES = 0, OTLP_METRICS, OTLP_LOGS } otlp_signal_t;

/* "http/protobuf", "grpc" (otlp_protocol_t); "none", "gzip". */
extern const char *const  otlp_protocols[];
extern const char *const  otlp_compressions[];

/* A base endpoint ("endpoint", OTEL_EXPORTER_OTLP_ENDPOINT): the row's
   more is the signal's path ("/v1/metrics"), appended. */
int otlp_set_endpoint(const setting_t *s, void *base, json_t *v,
    const char *text, const char *where, char *err, size_t errlen);

/* OTEL_EXPORTER_OTLP_HEADERS into a destination_config_t: the row's more
   is the signal's own variable, which is taken instead when set. */
int otlp_set_env_headers(const setting_t *s, void *base, json_t *v,
    const char *text, const char *where, char *err, size_t errlen);

/*
 * Where a signal goes: over HTTP the configured URL (or, when none,
 * http://localhost:4318/v1/<signal>); over gRPC the scheme and authority of
 * the configured URL (or http://localhost:4317), the path being the
 * service's method (otlp_grpc_method).  NULL when a traces URL is not set
 * (spans then go to their file).  Written into out.
 */
const char *otlp_url(const char *configured, otlp_signal_t signal,
    int protocol, char *out, size_t size);

/* "/opentelemetry.proto.collector.<signal>.v1.<Signal>Service/Export" */
const char *otlp_grpc_method(otlp_signal_t signal);

/*
 * The rows of one signal's table over a destination_config_t at f of T,
 * with its protocol and gzip ints: SIG is the variables' infix
 * ("METRICS"), sig the help's word, path the HTTP path.
 */
#define OTLP_SIGNAL_ROWS(T, f, proto, gzip, SIG, sig, path)                  \
    { "endpoint", SETTING_CUSTOM, offsetof(T, f.url), 0, 0,                  \
      "OTEL_EXPORTER_OTLP_ENDPOINT", NULL,                                   \
      "OTLP base URL of every signal (over HTTP " path " is appended)",     \
      path, otlp_set_endpoint },                                             \
    { "url", SETTING_URL, offsetof(T, f.url), 0, 0,                          \
      "OTEL_EXPORTER_OTLP_" SIG "_ENDPOINT", NULL,                           \
      "the OTLP " sig " URL, used as it is (default "                        \
      "http://localhost:4318" path ", grpc: http://localhost:4317)", NULL,   \
      NULL },                                                                \
    { "protocol", SETTING_ENUM, offsetof(T, proto), 0, 0,                    \
      "OTEL_EXPORTER_OTLP_PROTOCOL", NULL,                                   \
      "OTLP/HTTP protobuf, or OTLP/gRPC", otlp_protocols, NULL },            \
    { NULL, SETTING_ENUM, offsetof(T, proto), 0, 0,                          \
      "OTEL_EXPORTER_OTLP_" SIG "_PROTOCOL", NULL,                           \
      "the same, for " sig " only (wins)", otlp_protocols, NULL },           \
    DESTINATION_ROWS(T, f),                                                  \
    { NULL, SETTING_LONG, offsetof(T, f.timeout_ms), 1, 3600000,             \
      "OTEL_EXPORTER_OTLP_TIMEOUT", NULL, "timeout_ms of every OTLP signal", \
      NULL, NULL },                                                          \
    { NULL, SETTING_LONG, offsetof(T, f.timeout_ms), 1, 3600000,             \
      "OTEL_EXPORTER_OTLP_" SIG "_TIMEOUT", NULL,                            \
      "the same, for " sig " only (wins)", NULL, NULL },                     \
    { NULL, SETTING_CUSTOM, offsetof(T, f), 0, 0,                            \
      "OTEL_EXPORTER_OTLP_HEADERS", NULL,                                    \
      "key=value,... headers of every OTLP signal (values "                  \
      "percent-encoded)", "OTEL_EXPORTER_OTLP_" SIG "_HEADERS",              \
      otlp_set_env_headers },                                                \
    { NULL, SETTING_CUSTOM, offsetof(T, f), 0, 0,                            \
      "OTEL_EXPORTER_OTLP_" SIG "_HEADERS", NULL,                            \
      "the same, for " sig " only (wins)", NULL, otlp_set_env_headers },     \
    { "compression", SETTING_ENUM, offsetof(T, gzip), 0, 0,                  \
      "OTEL_EXPORTER_OTLP_COMPRESSION", NULL, "OTLP request bodies",         \
      otlp_compressions, NULL },                                             \
    { NULL, SETTING_ENUM, offsetof(T, gzip), 0, 0,                           \
      "OTEL_EXPORTER_OTLP_" SIG "_COMPRESSION", NULL,                        \
      "the same, for " sig " only (wins)", otlp_compressions, NULL },        \
    DESTINATION_SPOOL_ROWS(T, f)

#endif
