/*
 * The gateway's spans, per the stable HTTP semantic conventions: one SERVER
 * span "{method} {route}" per kept request (status ERROR for 5xx only), and
 * a CLIENT span per upstream attempt whose id the backend saw as parent.
 *
 * Encoded straight into the batch's buffer in OTLP's protobuf wire format
 * (opentelemetry/proto/trace/v1/trace.proto field numbers): texts are
 * sanitised on the stack, attribute keys are constants, nothing is
 * allocated per span.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"
#include "obs_limits.h"
#include "otlp_pb.h"
#include "spans.h"
#include "text.h"

#define SPAN_SERVER   2
#define SPAN_CLIENT   3
#define STATUS_ERROR  2
#define SPAN_TEXT     1024

/* field numbers: Span, KeyValue, AnyValue, Status and the envelopes */
enum {
    SPAN_TRACE_ID = 1, SPAN_SPAN_ID = 2, SPAN_TRACE_STATE = 3,
    SPAN_PARENT = 4, SPAN_NAME = 5, SPAN_KIND = 6, SPAN_START = 7,
    SPAN_END = 8, SPAN_ATTRIBUTES = 9, SPAN_STATUS = 15, SPAN_FLAGS = 16,
    STATUS_CODE = 3, SS_SPANS = 2
};

typedef Opentelemetry__Proto__Common__V1__KeyValue        otlp_kv_t;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans       otlp_scope_spans_t;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans    otlp_resource_spans_t;

static void span_head(buf_t *b, const Obs__V1__Record *r, const char *name,
    size_t name_len, unsigned kind, const uint8_t *span_id,
    const uint8_t *parent, uint64_t start, uint64_t end);
static void attr_str(buf_t *b, unsigned field, const char *key,
    const char *value, size_t len);
static void attr_text(buf_t *b, const char *key,
    const ProtobufCBinaryData *t);
static void attr_int(buf_t *b, const char *key, int64_t value);
static void span_error(buf_t *b);
static void attr_peer(buf_t *b, const ProtobufCBinaryData *address);
static void attr_outcome(buf_t *b, const Obs__V1__UpstreamAttempt *u);
static void span_fields(buf_t *b, const Obs__V1__Record *r);
static json_t *json_attrs(otlp_kv_t **kv, size_t n);
static json_t *json_id(const ProtobufCBinaryData *b);

#define ATTR_STR(b, k, v)  attr_str(b, SPAN_ATTRIBUTES, k, v, strlen(v))

int
spans_append(buf_t *out, const Obs__V1__Record *r,
    const char *service)
{
    char        name[SPAN_TEXT], method[64], route[512], proto[16];
    const char *version;
    uint64_t    start, end, offset = 0;
    size_t      i, mlen, rlen, nlen, at;
    int         n = 1;

    if (r->trace_id.len != 16 || r->span_id.len != 8) {
        return 0;
    }

    mlen = text_utf8(r->method.data, r->method.len, method, sizeof(method));
    rlen = text_utf8(r->route.data, r->route.len, route, sizeof(route));

    /* "{method} {route}": both fit (63 + 1 + 511 bytes) */
    _Static_assert(sizeof(method) + sizeof(route) <= sizeof(name),
                   "a span name holds its method and route");
    memcpy(name, method, mlen);
    name[mlen] = ' ';
    memcpy(name + mlen + 1, route, rlen + 1);
    nlen = mlen + 1 + rlen;

    start = r->start_time_unix_nano;
    end = start + r->duration_us * 1000;

    at = pb_open(out, SS_SPANS);
    span_head(out, r, name, nlen, SPAN_SERVER, r->span_id.data,
              r->parent_span_id.len == 8 ? r->parent_span_id.data : NULL,
              start, end);
    if (r->tracestate.len) {
        char  ts[SPAN_TEXT];
        size_t  tl = text_utf8(r->tracestate.data, r->tracestate.len, ts,
                               sizeof(ts));
        pb_bytes(out, SPAN_TRACE_STATE, ts, tl);
    }

    attr_str(out, SPAN_ATTRIBUTES, "http.request.method", method, mlen);
    attr_text(out, "url.path", &r->path);
    attr_text(out, "url.scheme", &r->scheme);
    ATTR_STR(out, "http.route", route);
    attr_int(out, "http.response.status_code", r->status);
    attr_text(out, "server.address", &r->server_address);
    if (r->server_port) {
        attr_int(out, "server.port", r->server_port);
    }
    attr_text(out, "client.address", &r->client_address);
    attr_text(out, "user_agent.original", &r->user_agent);
    text_utf8(r->protocol.data, r->protocol.len, proto, sizeof(proto));
    version = strncmp(proto, "HTTP/", 5) == 0 ? proto + 5 : proto;
    if (strcmp(version, "2.0") == 0) {
        version = "2";
    }
    if (*version) {
        ATTR_STR(out, "network.protocol.version", version);
    }
    ATTR_STR(out, "peer.service", service);
    attr_text(out, "tenant.id", &r->tenant);
    if (r->request_body_bytes) {
        attr_int(out, "http.request.body.size",
                 (int64_t) r->request_body_bytes);
    }
    attr_int(out, "http.response.body.size",
             (int64_t) r->response_body_bytes);
    span_fields(out, r);
    if (r->status >= 500) {
        span_error(out);
    }
    pb_close(out, at);

    /* CLIENT spans: asked for, or retries (their ids must not dangle) */
    for (i = 0; i < r->n_upstreams && n <= OBS_MAX_UPSTREAM_ATTEMPTS; i++) {
        const Obs__V1__UpstreamAttempt  *u = r->upstreams[i];

        if (u->span_id.len != 8 || (!r->upstream_span && i == 0)
            || memcmp(u->span_id.data, r->span_id.data, 8) == 0)
        {
            offset += u->response_time_us * 1000;
            continue;
        }

        /* nginx gives attempt durations, not start times: attempts are
           placed one after another from the request's start */
        at = pb_open(out, SS_SPANS);
        span_head(out, r, method, mlen, SPAN_CLIENT, u->span_id.data,
                  r->span_id.data, start + offset,
                  start + offset + u->response_time_us * 1000);
        offset += u->response_time_us * 1000;

        attr_str(out, SPAN_ATTRIBUTES, "http.request.method", method, mlen);
        attr_peer(out, &u->address);
        ATTR_STR(out, "peer.service", service);
        attr_int(out, "http.request.resend_count", (int64_t) i);
        attr_outcome(out, u);
        pb_close(out, at);
        n++;
    }

    return n;
}

/* obs_log_field: string attributes of the SERVER span. */
static void
span_fields(buf_t *b, const Obs__V1__Record *r)
{
    const Obs__V1__LogField  *f[LOG_FIELDS_MAX];
    char                      key[LOG_FIELD_NAME_MAX + 1];
    size_t                    i, n;

    n = log_fields(r, f);

    for (i = 0; i < n; i++) {
        memcpy(key, f[i]->name.data, f[i]->name.len);
        key[f[i]->name.len] = '\0';
        attr_text(b, key, &f[i]->value);
    }
}

/* server.address without the port, server.port apart (OpenTelemetry HTTP
   client conventions). */
static void
attr_peer(buf_t *b, const ProtobufCBinaryData *address)
{
    const char  *host;
    size_t       host_len;
    int64_t      port;

    if (otlp_host_port((const char *) address->data, address->len, &host,
                       &host_len, &port))
    {
        attr_str(b, SPAN_ATTRIBUTES, "server.address", host, host_len);
        ATTR_STR(b, "network.transport", "unix");
        return;
    }

    attr_str(b, SPAN_ATTRIBUTES, "server.address", host, host_len);
    if (port) {
        attr_int(b, "server.port", port);
    }
}

/*
 * A response's status, or why none came: nginx's own 502/504 for a refused
 * or timed-out attempt is not the backend's answer, so it is not reported
 * as one.  Every failed attempt, 4xx included, is an error of the CLIENT
 * span, with error.type saying which.
 */
static void
attr_outcome(buf_t *b, const Obs__V1__UpstreamAttempt *u)
{
    char  code[16];

    if (u->error == 2) {
        ATTR_STR(b, "error.type", "timeout");
        span_error(b);
        return;
    }

    if (u->error != 0 || u->status == 0) {
        ATTR_STR(b, "error.type", "connection_error");
        span_error(b);
        return;
    }

    attr_int(b, "http.response.status_code", u->status);

    if (u->status >= 400) {
        snprintf(code, sizeof(code), "%u", u->status);
        ATTR_STR(b, "error.type", code);
        span_error(b);
    }
}

void
spans_resource(buf_t *b, const exporter_config_t *cfg)
{
    otlp_resource(b, cfg->gateway_name, cfg->gateway_host,
                  cfg->resource_attributes);
}

void
spans_request(buf_t *out, const buf_t *resource, const buf_t *spans)
{
    otlp_request(out, resource, spans);
}

json_t *
spans_json(const uint8_t *body, size_t len)
{
    otlp_request_t  *req;
    json_t          *root, *rss, *rs, *sss, *ss, *spans, *j;
    size_t           i, k, m;
    char             num[32];

    /* file mode only: the protobuf body read back with protobuf-c */
    req = otlp_request_unpack(NULL, len, body);
    if (req == NULL) {
        return NULL;
    }

    root = json_object();
    rss = json_array();
    json_object_set_new(root, "resourceSpans", rss);

    for (i = 0; i < req->n_resource_spans; i++) {
        const otlp_resource_spans_t  *r = req->resource_spans[i];

        rs = json_object();
        json_array_append_new(rss, rs);
        json_object_set_new(rs, "resource", json_pack("{s:o}", "attributes",
            json_attrs(r->resource->attributes, r->resource->n_attributes)));
        sss = json_array();
        json_object_set_new(rs, "scopeSpans", sss);

        for (k = 0; k < r->n_scope_spans; k++) {
            const otlp_scope_spans_t  *s = r->scope_spans[k];

            ss = json_object();
            json_array_append_new(sss, ss);
            json_object_set_new(ss, "scope", json_pack("{s:s,s:s}",
                "name", s->scope->name, "version", s->scope->version));
            spans = json_array();
            json_object_set_new(ss, "spans", spans);

            for (m = 0; m < s->n_spans; m++) {
                const otlp_span_t  *sp = s->spans[m];

                j = json_object();
                json_object_set_new(j, "traceId", json_id(&sp->trace_id));
                json_object_set_new(j, "spanId", json_id(&sp->span_id));
                if (sp->parent_span_id.len) {
                    json_object_set_new(j, "parentSpanId",
                                        json_id(&sp->parent_span_id));
                }
                if (sp->trace_state && *sp->trace_state) {
                    json_object_set_new(j, "traceState",
                                        json_string(sp->trace_state));
                }
                json_object_set_new(j, "flags", json_integer(sp->flags));
                json_object_set_new(j, "name", json_string(sp->name));
                json_object_set_new(j, "kind", json_integer(sp->kind));
                snprintf(num, sizeof(num), "%llu",
                         (unsigned long long) sp->start_time_unix_nano);
                json_object_set_new(j, "startTimeUnixNano", json_string(num));
                snprintf(num, sizeof(num), "%llu",
                         (unsigned long long) sp->end_time_unix_nano);
                json_object_set_new(j, "endTimeUnixNano", json_string(num));
                json_object_set_new(j, "attributes",
                    json_attrs(sp->attributes, sp->n_attributes));
                json_object_set_new(j, "status", json_pack("{s:i}", "code",
                                    sp->status ? (int) sp->status->code : 0));
                json_array_append_new(spans, j);
            }
        }
    }

    otlp_request_free(req, NULL);
    return root;
}

static void
span_head(buf_t *b, const Obs__V1__Record *r, const char *name,
    size_t name_len, unsigned kind, const uint8_t *span_id,
    const uint8_t *parent, uint64_t start, uint64_t end)
{
    pb_bytes(b, SPAN_TRACE_ID, r->trace_id.data, 16);
    pb_bytes(b, SPAN_SPAN_ID, span_id, 8);
    if (parent) {
        pb_bytes(b, SPAN_PARENT, parent, 8);
    }
    pb_bytes(b, SPAN_NAME, name, name_len);
    pb_uint(b, SPAN_KIND, kind);
    pb_fixed64(b, SPAN_START, start);
    pb_fixed64(b, SPAN_END, end);
    if (r->trace_flags & 0xff) {
        pb_fixed32(b, SPAN_FLAGS, r->trace_flags & 0xff);
    }
}

/* A KeyValue with a string attribute of the span. */
static void
attr_str(buf_t *b, unsigned field, const char *key, const char *value,
    size_t len)
{
    otlp_attr_str(b, field, key, strlen(key), value, len);
}

static void
attr_text(buf_t *b, const char *key, const ProtobufCBinaryData *t)
{
    char    text[SPAN_TEXT];
    size_t  n;

    if (t->len == 0) {
        return;
    }

    n = text_utf8(t->data, t->len, text, sizeof(text));
    attr_str(b, SPAN_ATTRIBUTES, key, text, n);
}

static void
attr_int(buf_t *b, const char *key, int64_t value)
{
    otlp_attr_int(b, SPAN_ATTRIBUTES, key, strlen(key), value);
}

static void
span_error(buf_t *b)
{
    pb_len(b, SPAN_STATUS, 2);
    pb_uint(b, STATUS_CODE, STATUS_ERROR);
}

static json_t *
json_attrs(otlp_kv_t **kv, size_t n)
{
    json_t  *arr = json_array(), *v;
    char     num[32];
    size_t   i;

    for (i = 0; i < n; i++) {
        if (kv[i]->value->value_case
            == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE)
        {
            snprintf(num, sizeof(num), "%lld",
                     (long long) kv[i]->value->int_value);
            v = json_pack("{s:s}", "intValue", num);
        } else {
            v = json_pack("{s:s}", "stringValue",
                          kv[i]->value->string_value);
        }
        json_array_append_new(arr, json_pack("{s:s,s:o}", "key", kv[i]->key,
                                             "value", v));
    }

    return arr;
}

static json_t *
json_id(const ProtobufCBinaryData *b)
{
    char  hex[33];

    text_hex(hex, b->data, b->len > 16 ? 16 : b->len);
    return json_string(hex);
}
