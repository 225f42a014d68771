/* Settings every OTLP signal shares.  See otlp_config.h. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "otlp_config.h"

const char *const  otlp_protocols[] = { "http/protobuf", "grpc", NULL };
const char *const  otlp_compressions[] = { "none", "gzip", NULL };

static const char *const  signal_paths[] = {
    "/v1/traces", "/v1/metrics", "/v1/logs"
};

static const char *const  grpc_methods[] = {
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
};

int
otlp_set_endpoint(const setting_t *s, void *base, json_t *v, const char *text,
    const char *where, char *err, size_t errlen)
{
    char        **url = (char **) ((char *) base + s->offset);
    const char   *e, *path = s->more ? s->more : "/v1/traces";
    size_t        n;

    if (v && !json_is_string(v)) {
        snprintf(err, errlen, "config: \"%s\" must be a string", where);
        return -1;
    }
    e = v ? json_string_value(v) : text;
    if (!settings_url_ok(e)) {
        snprintf(err, errlen, "%s: \"%.256s\" is not an http:// or https:// "
                 "URL with a host", where, e);
        return -1;
    }

    n = strlen(e);
    n -= n && e[n - 1] == '/';
    free(*url);
    *url = malloc(n + strlen(path) + 1);
    if (*url == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    sprintf(*url, "%.*s%s", (int) n, e, path);
    return 0;
}

/* "key1=value1,key2=value2" with percent-encoded values (W3C baggage
   style, as the OpenTelemetry specification defines it); the signal's own
   variable, when set, is taken instead of the general one. */

int
otlp_set_env_headers(const setting_t *s, void *base, json_t *v,
    const char *text, const char *where, char *err, size_t errlen)
{
    destination_config_t  *d;
    const char            *own = s->more ? getenv(s->more) : NULL;

    (void) v;
    d = (destination_config_t *) ((char *) base + s->offset);

    if (own && *own) {
        return 0;
    }

    return destination_add_header_list(d, text, where, err, errlen);
}

const char *
otlp_url(const char *configured, otlp_signal_t signal, int protocol,
    char *out, size_t size)
{
    const char  *host;
    size_t       n;

    if (protocol != OTLP_GRPC) {
        if (configured) {
            return configured;
        }
        if (signal == OTLP_TRACES) {
            return NULL;
        }
        snprintf(out, size, "http://localhost:4318%s", signal_paths[signal]);
        return out;
    }

    if (configured == NULL) {
        if (signal == OTLP_TRACES) {
            return NULL;
        }
        configured = "http://localhost:4317";
    }

    /* gRPC names a service, not a path: scheme and authority only */
    host = strstr(configured, "://");
    host = host ? host + 3 : configured;
    n = (size_t) (host - configured) + strcspn(host, "/?#");
    snprintf(out, size, "%.*s%s", (int) n, configured,
             grpc_methods[signal]);
    return out;
}

const char *
otlp_grpc_method(otlp_signal_t signal)
{
    return grpc_methods[signal];
}
