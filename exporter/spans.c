/*
 * The gateway's spans, per the stable HTTP semantic conventions: one SERVER
 * span "{method} {route}" per kept request (status ERROR for 5xx only), and
 * a CLIENT span per upstream attempt whose id the backend saw as parent.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build.h"
#include "text.h"

#define ARENA_CHUNK   (256 * 1024)

#define SPAN_SERVER   OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER
#define SPAN_CLIENT   OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT
#define STATUS_ERROR  \
    OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR
#define SPAN_ATTRS    16
#define SPAN_TEXT     1024

typedef Opentelemetry__Proto__Common__V1__KeyValue        otlp_kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue        otlp_any_t;
typedef Opentelemetry__Proto__Trace__V1__Status           otlp_status_t;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans       otlp_scope_spans_t;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans    otlp_resource_spans_t;
typedef Opentelemetry__Proto__Resource__V1__Resource      otlp_resource_t;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope  otlp_scope_t;

typedef struct chunk {
    struct chunk  *next;
    size_t         used;
    size_t         size;
    unsigned char  data[];
} chunk_t;

struct arena {
    chunk_t  *head;
};

typedef struct {
    arena_t      *arena;
    otlp_kv_t   **attrs;
    size_t        n;
    size_t        cap;
} attrs_t;

static otlp_span_t *span_new(arena_t *a, const Obs__V1__Record *r);
static void attr_text(attrs_t *t, const char *key,
    const ProtobufCBinaryData *b);
static void attr_str(attrs_t *t, const char *key, const char *value);
static void attr_int(attrs_t *t, const char *key, int64_t value);
static json_t *json_attrs(otlp_kv_t **kv, size_t n);
static json_t *json_id(const ProtobufCBinaryData *b);
static char *bytes_text(arena_t *a, const ProtobufCBinaryData *b);

arena_t *
arena_new(void)
{
    return calloc(1, sizeof(arena_t));
}

void *
arena_alloc(arena_t *a, size_t size)
{
    chunk_t  *c = a->head;
    void     *p;
    size_t    want;

    size = (size + 15) & ~(size_t) 15;

    if (c == NULL || c->used + size > c->size) {
        want = size > ARENA_CHUNK ? size : ARENA_CHUNK;
        c = malloc(sizeof(chunk_t) + want);
        if (c == NULL) {
            return NULL;
        }
        c->next = a->head;
        c->used = 0;
        c->size = want;
        a->head = c;
    }

    p = c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

char *
arena_strndup(arena_t *a, const char *s, size_t len)
{
    char  *p = arena_alloc(a, len + 1);

    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

void
arena_free(arena_t *a)
{
    chunk_t  *c, *next;

    if (a == NULL) {
        return;
    }

    for (c = a->head; c; c = next) {
        next = c->next;
        free(c);
    }
    free(a);
}

int
spans_build(arena_t *a, const Obs__V1__Record *r, const char *service,
    otlp_span_t **spans)
{
    otlp_span_t    *s;
    attrs_t         t;
    char            name[SPAN_TEXT], method[64], route[512], proto[16];
    const char     *version;
    uint64_t        start, offset = 0;
    size_t          i;
    int             n = 0;

    s = span_new(a, r);
    if (s == NULL) {
        return 0;
    }

    text_utf8(r->method.data, r->method.len, method, sizeof(method));
    text_utf8(r->route.data, r->route.len, route, sizeof(route));
    snprintf(name, sizeof(name), "%s %s", method, route);

    s->name = arena_strndup(a, name, strlen(name));
    s->kind = SPAN_SERVER;
    s->span_id.data = arena_alloc(a, 8);
    if (s->span_id.data) {
        memcpy(s->span_id.data, r->span_id.data, 8);
        s->span_id.len = 8;
    }
    if (r->parent_span_id.len == 8) {
        s->parent_span_id.data = arena_alloc(a, 8);
        if (s->parent_span_id.data) {
            memcpy(s->parent_span_id.data, r->parent_span_id.data, 8);
            s->parent_span_id.len = 8;
        }
    }
    if (r->tracestate.len) {
        s->trace_state = bytes_text(a, &r->tracestate);
    }

    t.arena = a;
    t.attrs = arena_alloc(a, sizeof(otlp_kv_t *) * SPAN_ATTRS);
    t.n = 0;
    t.cap = SPAN_ATTRS;
    if (t.attrs == NULL) {
        return 0;
    }

    attr_str(&t, "http.request.method", method);
    attr_text(&t, "url.path", &r->path);
    attr_text(&t, "url.scheme", &r->scheme);
    attr_str(&t, "http.route", route);
    attr_int(&t, "http.response.status_code", r->status);
    attr_text(&t, "server.address", &r->server_address);
    if (r->server_port) {
        attr_int(&t, "server.port", r->server_port);
    }
    attr_text(&t, "client.address", &r->client_address);
    attr_text(&t, "user_agent.original", &r->user_agent);
    text_utf8(r->protocol.data, r->protocol.len, proto, sizeof(proto));
    version = strncmp(proto, "HTTP/", 5) == 0 ? proto + 5 : proto;
    if (strcmp(version, "2.0") == 0) {
        version = "2";
    }
    if (*version) {
        attr_str(&t, "network.protocol.version", version);
    }
    attr_str(&t, "peer.service", service);
    attr_text(&t, "tenant.id", &r->tenant);
    if (r->request_body_bytes) {
        attr_int(&t, "http.request.body.size", (int64_t) r->request_body_bytes);
    }
    attr_int(&t, "http.response.body.size", (int64_t) r->response_body_bytes);

    s->n_attributes = t.n;
    s->attributes = t.attrs;

    if (r->status >= 500) {
        s->status->code = STATUS_ERROR;
    }

    spans[n++] = s;

    /* CLIENT spans: asked for, or retries (their ids must not dangle) */
    start = r->start_time_unix_nano;
    for (i = 0; i < r->n_upstreams && n < 9; i++) {
        const Obs__V1__UpstreamAttempt  *u = r->upstreams[i];
        otlp_span_t                     *c;

        if (u->span_id.len != 8 || (!r->upstream_span && i == 0)
            || memcmp(u->span_id.data, r->span_id.data, 8) == 0)
        {
            offset += u->response_time_us * 1000;
            continue;
        }

        c = span_new(a, r);
        if (c == NULL) {
            break;
        }

        c->name = arena_strndup(a, method, strlen(method));
        c->kind = SPAN_CLIENT;
        c->span_id.data = arena_alloc(a, 8);
        c->parent_span_id.data = arena_alloc(a, 8);
        if (c->span_id.data == NULL || c->parent_span_id.data == NULL) {
            break;
        }
        memcpy(c->span_id.data, u->span_id.data, 8);
        memcpy(c->parent_span_id.data, r->span_id.data, 8);
        c->span_id.len = c->parent_span_id.len = 8;

        /* nginx gives attempt durations, not start times: attempts are
           placed one after another from the request's start */
        c->start_time_unix_nano = start + offset;
        c->end_time_unix_nano = start + offset + u->response_time_us * 1000;
        offset += u->response_time_us * 1000;

        t.attrs = arena_alloc(a, sizeof(otlp_kv_t *) * SPAN_ATTRS);
        t.n = 0;
        t.cap = SPAN_ATTRS;
        if (t.attrs == NULL) {
            break;
        }
        attr_str(&t, "http.request.method", method);
        attr_text(&t, "server.address", &u->address);
        if (u->status) {
            attr_int(&t, "http.response.status_code", u->status);
        }
        attr_str(&t, "peer.service", service);
        attr_int(&t, "http.request.resend_count", (int64_t) i);
        c->n_attributes = t.n;
        c->attributes = t.attrs;

        /* CLIENT spans: 4xx is an error too */
        if (u->status >= 400 || u->status == 0) {
            c->status->code = STATUS_ERROR;
        }

        spans[n++] = c;
    }

    return n;
}

otlp_request_t *
spans_request(arena_t *a, const exporter_config_t *cfg, otlp_span_t **spans,
    size_t n)
{
    otlp_request_t          *req;
    otlp_resource_spans_t   *rs, **rs_list;
    otlp_scope_spans_t      *ss, **ss_list;
    otlp_resource_t         *res;
    otlp_scope_t            *scope;
    attrs_t                  t;
    char                    *attrs, *item, *save, *eq;

    req = arena_alloc(a, sizeof(*req));
    rs = arena_alloc(a, sizeof(*rs));
    rs_list = arena_alloc(a, sizeof(*rs_list));
    ss = arena_alloc(a, sizeof(*ss));
    ss_list = arena_alloc(a, sizeof(*ss_list));
    res = arena_alloc(a, sizeof(*res));
    scope = arena_alloc(a, sizeof(*scope));
    t.arena = a;
    t.attrs = arena_alloc(a, sizeof(otlp_kv_t *) * 64);
    t.n = 0;
    t.cap = 64;

    if (!req || !rs || !rs_list || !ss || !ss_list || !res || !scope
        || !t.attrs)
    {
        return NULL;
    }

    otlp_request_init(req);
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    opentelemetry__proto__resource__v1__resource__init(res);
    opentelemetry__proto__common__v1__instrumentation_scope__init(scope);

    attr_str(&t, "service.name", cfg->gateway_name);
    attr_str(&t, "host.name", cfg->gateway_host);

    /* OTEL_RESOURCE_ATTRIBUTES: key=value,key=value */
    if (cfg->resource_attributes && *cfg->resource_attributes) {
        attrs = arena_strndup(a, cfg->resource_attributes,
                              strlen(cfg->resource_attributes));
        for (item = strtok_r(attrs, ",", &save); item;
             item = strtok_r(NULL, ",", &save))
        {
            eq = strchr(item, '=');
            if (eq && eq != item && strncmp(item, "service.name=", 13) != 0) {
                *eq = '\0';
                attr_str(&t, item, eq + 1);
            }
        }
    }

    res->n_attributes = t.n;
    res->attributes = t.attrs;
    scope->name = "obs-gateway";
    scope->version = OBS_EXPORTER_VERSION;

    ss->scope = scope;
    ss->n_spans = n;
    ss->spans = spans;
    ss_list[0] = ss;

    rs->resource = res;
    rs->n_scope_spans = 1;
    rs->scope_spans = ss_list;
    rs_list[0] = rs;

    req->n_resource_spans = 1;
    req->resource_spans = rs_list;
    return req;
}

json_t *
spans_json(const otlp_request_t *req)
{
    json_t  *root, *rss, *rs, *sss, *ss, *spans, *j;
    size_t   i, k, m;
    char     num[32];

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
                                    (int) sp->status->code));
                json_array_append_new(spans, j);
            }
        }
    }

    return root;
}

static otlp_span_t *
span_new(arena_t *a, const Obs__V1__Record *r)
{
    otlp_span_t    *s = arena_alloc(a, sizeof(otlp_span_t));
    otlp_status_t  *st = arena_alloc(a, sizeof(otlp_status_t));

    if (s == NULL || st == NULL || r->trace_id.len != 16) {
        return NULL;
    }

    opentelemetry__proto__trace__v1__span__init(s);
    opentelemetry__proto__trace__v1__status__init(st);

    s->trace_id.data = arena_alloc(a, 16);
    if (s->trace_id.data == NULL) {
        return NULL;
    }
    memcpy(s->trace_id.data, r->trace_id.data, 16);
    s->trace_id.len = 16;
    s->flags = r->trace_flags & 0xff;
    s->start_time_unix_nano = r->start_time_unix_nano;
    s->end_time_unix_nano = r->start_time_unix_nano + r->duration_us * 1000;
    s->status = st;
    return s;
}

static otlp_kv_t *
attr_new(attrs_t *t, const char *key)
{
    otlp_kv_t   *kv;
    otlp_any_t  *v;

    if (t->n == t->cap) {
        return NULL;
    }

    kv = arena_alloc(t->arena, sizeof(*kv));
    v = arena_alloc(t->arena, sizeof(*v));
    if (kv == NULL || v == NULL) {
        return NULL;
    }

    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(v);
    kv->key = arena_strndup(t->arena, key, strlen(key));
    kv->value = v;
    t->attrs[t->n++] = kv;
    return kv;
}

static void
attr_str(attrs_t *t, const char *key, const char *value)
{
    otlp_kv_t  *kv;

    if (value == NULL || (kv = attr_new(t, key)) == NULL) {
        return;
    }

    kv->value->value_case =
        OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    kv->value->string_value = arena_strndup(t->arena, value, strlen(value));
}

static void
attr_text(attrs_t *t, const char *key, const ProtobufCBinaryData *b)
{
    char  text[SPAN_TEXT];

    if (b->len == 0) {
        return;
    }

    text_utf8(b->data, b->len, text, sizeof(text));
    attr_str(t, key, text);
}

static void
attr_int(attrs_t *t, const char *key, int64_t value)
{
    otlp_kv_t  *kv = attr_new(t, key);

    if (kv) {
        kv->value->value_case =
            OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        kv->value->int_value = value;
    }
}

static char *
bytes_text(arena_t *a, const ProtobufCBinaryData *b)
{
    char  text[SPAN_TEXT];
    size_t n = text_utf8(b->data, b->len, text, sizeof(text));

    return arena_strndup(a, text, n);
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
