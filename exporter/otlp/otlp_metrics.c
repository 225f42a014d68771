/* OTLP metrics.  See otlp_metrics.h. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "compress.h"
#include "expo.h"
#include "hash.h"
#include "log.h"
#include "metrics.h"
#include "otlp_config.h"
#include "otlp_metrics.h"
#include "otlp_pb.h"
#include "otlp_result.h"
#include "settings.h"
#include "store.h"

#define OTLP_METRICS_BACKOFF_FIRST  0.5
#define OTLP_METRICS_BACKOFF_MAX    30.0
#define OTLP_BATCH_BYTES            (1024 * 1024)

/* field numbers (metrics.proto) */
enum {
    SM_METRICS = 2,
    M_NAME = 1, M_DESCRIPTION = 2, M_UNIT = 3, M_GAUGE = 5, M_SUM = 7,
    M_HISTOGRAM = 9,
    AGG_POINTS = 1, AGG_TEMPORALITY = 2, SUM_MONOTONIC = 3,
    NP_START = 2, NP_TIME = 3, NP_DOUBLE = 4, NP_ATTRIBUTES = 7,
    HP_START = 2, HP_TIME = 3, HP_COUNT = 4, HP_SUM = 5, HP_BUCKETS = 6,
    HP_BOUNDS = 7, HP_EXEMPLARS = 8, HP_ATTRIBUTES = 9,
    EX_TIME = 2, EX_DOUBLE = 3, EX_SPAN_ID = 4, EX_TRACE_ID = 5
};

enum { TEMPORALITY_DELTA = 1, TEMPORALITY_CUMULATIVE = 2 };

typedef enum { KIND_SUM, KIND_UPDOWN, KIND_GAUGE, KIND_HISTOGRAM } kind_t;

/* What the last push knew of a series. */
typedef struct {
    uint64_t   key;                 /* 0: a free slot */
    uint32_t   born;
    uint32_t   n;                   /* buckets kept (delta histograms) */
    double     start;
    double     value;               /* a sum's value, a histogram's count */
    double     sum;                 /* a histogram's sum */
    uint64_t  *buckets;
} mstate_t;

typedef struct {
    mstate_t  *slots;
    size_t     cap;                 /* a power of two, or 0 */
    size_t     n;
} mtable_t;

struct otlp_metrics_encoder {
    otlp_metrics_config_t  cfg;     /* protocol, gzip, delta, batch_bytes */
    buf_t                  resource;
    double                 started;
    double                 last;    /* the previous push; 0: none */
    double                 now;
    mtable_t               prev, cur;

    /* the push being made */
    const char            *family;  /* the /metrics base name */
    const char            *name;    /* OTel name */
    char                   name_buf[256];
    const char            *unit;
    const char            *help;
    kind_t                 kind;
    int                    delta;
    buf_t                  point;   /* a data point */
    buf_t                  points;  /* the current Metric's */
    size_t                 n_points;
    buf_t                  metrics; /* the current request's Metrics */
    size_t                 request_points;
    payload_t             *head, **tail;
    size_t                 total, lost;
    int                    failed;
};

struct otlp_metrics {
    collector_t              c;
    otlp_metrics_config_t    cfg;
    store_t                 *store;
    otlp_metrics_encoder_t  *enc;
    destination_t           *dest;
};

static int metrics_set_exporters(const setting_t *s, void *base, json_t *v,
    const char *text, const char *where, char *err, size_t errlen);
static void om_collect(collector_t *c, double start, int last);
static void om_family(void *data, const char *name, const char *help,
    const char *unit, expo_type_t type);
static void om_sample(void *data, const char *const *names,
    const char *const *values, int n, double value, uint32_t born);
static void om_histogram(void *data, const char *const *names,
    const char *const *values, int n, const histogram_t *h, uint32_t born);
static void om_family_end(void *data);
static mstate_t *om_state(otlp_metrics_encoder_t *e, const char *const *names,
    const char *const *values, int n, uint32_t born, double value,
    int *fresh);
static void om_attributes(buf_t *b, unsigned field, const char *const *names,
    const char *const *values, int n);
static void om_flush_metric(otlp_metrics_encoder_t *e);
static void om_seal(otlp_metrics_encoder_t *e);
static void om_point_done(otlp_metrics_encoder_t *e);
static mstate_t *table_find(mtable_t *t, uint64_t key);
static mstate_t *table_insert(mtable_t *t, uint64_t key);
static void table_clear(mtable_t *t);
static void pb_raw64(buf_t *b, uint64_t v);

static const expo_visitor_t  om_visitor = {
    om_family, om_sample, om_histogram, om_family_end
};

static const char *const  temporalities[] = { "cumulative", "delta", NULL };

#define OM  otlp_metrics_config_t

static const setting_t  otlp_metrics_rows[] = {
    OTLP_SIGNAL_ROWS(OM, sink, protocol, gzip, "METRICS", "metrics",
                     "/v1/metrics"),
    { "interval_ms", SETTING_LONG, offsetof(OM, interval_ms), 100, 86400000,
      "OTEL_METRIC_EXPORT_INTERVAL", NULL, "milliseconds between pushes",
      NULL, NULL },
    { "temporality", SETTING_ENUM, offsetof(OM, delta), 0, 0,
      "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", NULL,
      "counters and histograms: cumulative, or delta", temporalities,
      NULL },
    { "batch_bytes", SETTING_SIZE, offsetof(OM, sink.batch_bytes), 1024,
      1e9, NULL, NULL, "a push is split into requests of about this size",
      NULL, NULL },
    SETTINGS_END
};

const setting_t  otlp_metrics_settings[] = {
    { "metrics_exporter", SETTING_CUSTOM, 0, 0, 0, "OTEL_METRICS_EXPORTER",
      NULL, "prometheus (/metrics, the default), otlp (pushed: "
      "otlp_metrics.*), both (comma-separated) or none", NULL,
      metrics_set_exporters },
    { "otlp_metrics", SETTING_OBJECT, 0, 0, 0, NULL, NULL, "OTLP metrics",
      otlp_metrics_rows, NULL },
    SETTINGS_END
};

#undef OM

void
otlp_metrics_config_defaults(otlp_metrics_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->sink.timeout_ms = 10000;
    cfg->sink.queue_bytes = 32 << 20;
    cfg->sink.spool_files = SPOOL_FILES_DEFAULT;
    cfg->sink.batch_bytes = OTLP_BATCH_BYTES;
    cfg->interval_ms = 60000;
    cfg->prometheus = 1;
}

void
otlp_metrics_config_free(otlp_metrics_config_t *cfg)
{
    destination_config_free(&cfg->sink);
    memset(cfg, 0, sizeof(*cfg));
}

void
otlp_metrics_destination(const otlp_metrics_config_t *cfg,
    destination_spec_t *spec)
{
    /* a later value says more: past the bound the oldest go */
    memset(spec, 0, sizeof(*spec));
    spec->name = "otlp_metrics";
    spec->items = "data points";
    spec->cfg = &cfg->sink;
    spec->grpc = cfg->protocol == OTLP_GRPC;
    spec->content_type = spec->grpc ? "application/grpc"
                                    : "application/x-protobuf";
    spec->content_encoding = cfg->gzip ? "gzip" : NULL;
    spec->classify = spec->grpc ? otlp_grpc_classify : otlp_http_classify;
    spec->backoff_first = OTLP_METRICS_BACKOFF_FIRST;
    spec->backoff_max = OTLP_METRICS_BACKOFF_MAX;
    spec->overflow = OVERFLOW_DROP_OLDEST;
}

otlp_metrics_t *
otlp_metrics_start(const otlp_metrics_config_t *cfg, const char *service_name,
    const char *host, const char *resource_attributes, store_t *store,
    delivery_t *d, char *err, size_t errlen)
{
    otlp_metrics_t      *m;
    destination_spec_t   spec;
    buf_t                resource = { 0 };
    char                 url[1024];

    if (!cfg->otlp) {
        return NULL;
    }

    m = calloc(1, sizeof(otlp_metrics_t));
    if (m == NULL) {
        snprintf(err, errlen, "otlp_metrics: out of memory");
        return NULL;
    }

    m->cfg = *cfg;
    otlp_resource(&resource, service_name, host, resource_attributes);
    if (destination_config_copy(&m->cfg.sink, &cfg->sink) != 0
        || resource.failed
        || (m->enc = otlp_metrics_encoder_new(cfg, &resource,
                                              delivery_now())) == NULL)
    {
        snprintf(err, errlen, "otlp_metrics: out of memory");
        goto failed;
    }
    buf_free(&resource);
    m->store = store;

    otlp_metrics_destination(&m->cfg, &spec);
    spec.url = otlp_url(m->cfg.sink.url, OTLP_METRICS, m->cfg.protocol, url,
                        sizeof(url));
    m->dest = delivery_add(d, &spec, err, errlen);
    if (m->dest == NULL) {
        goto failed;
    }

    m->c.name = "otlp-metrics";
    m->c.interval = (double) m->cfg.interval_ms / 1000.0;
    m->c.collect = om_collect;
    m->c.data = m;
    if (collector_start(&m->c, err, errlen) != 0) {
        goto failed;
    }

    sidecar_log("info", "pushing metrics over OTLP/%s to %s every %gs (%s)",
                m->cfg.protocol == OTLP_GRPC ? "gRPC" : "HTTP", url,
                m->c.interval, m->cfg.delta ? "delta" : "cumulative");
    return m;

failed:
    buf_free(&resource);
    otlp_metrics_encoder_free(m->enc);
    otlp_metrics_config_free(&m->cfg);
    free(m);
    return NULL;
}

void
otlp_metrics_stop(otlp_metrics_t *m)
{
    if (m == NULL) {
        return;
    }

    collector_stop(&m->c);
    otlp_metrics_encoder_free(m->enc);
    otlp_metrics_config_free(&m->cfg);
    free(m);
}

/* Every interval (and once more at the end): encode, then hand over with
   no lock of the store held. */
static void
om_collect(collector_t *c, double start, int last)
{
    otlp_metrics_t  *m = c->data;
    payload_t       *p, *next;
    size_t           points, lost;

    (void) start;
    (void) last;

    p = otlp_metrics_encode(m->enc, m->store, delivery_now(), &points,
                            &lost);
    if (lost) {
        sidecar_log("error", "otlp_metrics: out of memory encoding a push; "
                    "%zu data points lost", lost);
        delivery_lost(m->dest, lost);
    }

    for ( ; p; p = next) {
        next = p->next;
        p->next = NULL;
        delivery_submit(m->dest, p);
    }
}

otlp_metrics_encoder_t *
otlp_metrics_encoder_new(const otlp_metrics_config_t *cfg,
    const buf_t *resource, double start)
{
    otlp_metrics_encoder_t  *e = calloc(1, sizeof(otlp_metrics_encoder_t));

    if (e == NULL) {
        return NULL;
    }

    e->cfg.protocol = cfg->protocol;
    e->cfg.gzip = cfg->gzip;
    e->cfg.delta = cfg->delta;
    e->cfg.sink.batch_bytes = cfg->sink.batch_bytes ? cfg->sink.batch_bytes
                                                    : OTLP_BATCH_BYTES;
    e->started = start;
    buf_append(&e->resource, resource->data, resource->len);
    if (e->resource.failed) {
        otlp_metrics_encoder_free(e);
        return NULL;
    }
    return e;
}

void
otlp_metrics_encoder_free(otlp_metrics_encoder_t *e)
{
    if (e == NULL) {
        return;
    }

    table_clear(&e->prev);
    table_clear(&e->cur);
    free(e->prev.slots);
    free(e->cur.slots);
    buf_free(&e->resource);
    buf_free(&e->point);
    buf_free(&e->points);
    buf_free(&e->metrics);
    free(e);
}

payload_t *
otlp_metrics_encode(otlp_metrics_encoder_t *e, store_t *store, double now,
    size_t *points, size_t *lost)
{
    mtable_t   t;
    payload_t *head;

    e->now = now;
    e->head = NULL;
    e->tail = &e->head;
    e->total = 0;
    e->lost = 0;
    e->failed = 0;
    buf_reset(&e->metrics);
    e->request_points = 0;

    metrics_visit_all(store, &om_visitor, e);
    om_seal(e);

    /* what this push saw is what the next compares with; series it did
       not see are gone */
    table_clear(&e->prev);
    t = e->prev;
    e->prev = e->cur;
    e->cur = t;
    e->last = now;

    *points = e->total;
    *lost = e->lost;
    head = e->head;
    e->head = NULL;
    return head;
}

/* --- the visitor: families, samples, histograms ---------------------- */

static void
om_family(void *data, const char *name, const char *help, const char *unit,
    expo_type_t type)
{
    otlp_metrics_encoder_t  *e = data;
    const family_t          *f;

    e->family = name;
    e->help = help;
    e->kind = type == EXPO_COUNTER ? KIND_SUM
              : type == EXPO_HISTOGRAM ? KIND_HISTOGRAM : KIND_GAUGE;
    e->unit = unit == NULL ? ""
              : strcmp(unit, "seconds") == 0 ? "s"
              : strcmp(unit, "bytes") == 0 ? "By" : unit;

    /* an info family keeps its _info name */
    if (type == EXPO_INFO) {
        snprintf(e->name_buf, sizeof(e->name_buf), "%s_info", name);
        e->name = e->name_buf;
    } else {
        e->name = name;
    }

    /*
     * The gateway's families under their OTLP names and units
     * (proto/obs/v1/families.def); a gauge of theirs counts up and down
     * (requests in flight): a non-monotonic sum.
     */
    f = family_by_name(name);
    if (f != NULL && f->otel_name != NULL) {
        e->name = f->otel_name;
        e->unit = f->otel_unit;
        if (f->type == METRIC_GAUGE) {
            e->kind = KIND_UPDOWN;
        }
    }

    /* requests in flight and gauges are as they are, whatever the
       preference */
    e->delta = e->cfg.delta && (e->kind == KIND_SUM
                                || e->kind == KIND_HISTOGRAM);
    buf_reset(&e->points);
    e->n_points = 0;
}

static void
om_sample(void *data, const char *const *names, const char *const *values,
    int n, double value, uint32_t born)
{
    otlp_metrics_encoder_t  *e = data;
    mstate_t                *st;
    buf_t                   *b = &e->point;
    double                   start = 0, v = value;
    int                      fresh;

    if (e->kind != KIND_GAUGE) {
        st = om_state(e, names, values, n, born, value, &fresh);
        if (st == NULL) {
            e->lost++;
            return;
        }
        start = st->start;
        if (e->delta) {
            v = fresh ? value : value - st->value;
            start = fresh || e->last == 0 ? st->start : e->last;
        }
        st->value = value;
    }

    buf_reset(b);
    om_attributes(b, NP_ATTRIBUTES, names, values, n);
    if (e->kind != KIND_GAUGE) {
        pb_fixed64(b, NP_START, (uint64_t) (start * 1e9));
    }
    pb_fixed64(b, NP_TIME, (uint64_t) (e->now * 1e9));
    pb_double(b, NP_DOUBLE, v);
    om_point_done(e);
}

static void
om_histogram(void *data, const char *const *names, const char *const *values,
    int n, const histogram_t *h, uint32_t born)
{
    otlp_metrics_encoder_t  *e = data;
    mstate_t                *st;
    buf_t                   *b = &e->point;
    double                   start, sum = h->sum, since;
    uint64_t                 count = h->count, bucket;
    const exemplar_t        *x;
    size_t                   ex;
    int                      i, fresh, delta;

    st = om_state(e, names, values, n, born, (double) h->count, &fresh);
    if (st == NULL) {
        e->lost++;
        return;
    }

    /* delta: what came since the last push, when the last push saw the
       same buckets */
    delta = e->delta && !fresh && st->buckets
            && st->n == (uint32_t) h->n_bounds + 1;
    start = st->start;
    since = 0;
    if (e->delta) {
        start = fresh || e->last == 0 ? st->start : e->last;
        since = start;
    }
    if (delta) {
        count -= (uint64_t) st->value;
        sum -= st->sum;
    }

    buf_reset(b);
    om_attributes(b, HP_ATTRIBUTES, names, values, n);
    pb_fixed64(b, HP_START, (uint64_t) (start * 1e9));
    pb_fixed64(b, HP_TIME, (uint64_t) (e->now * 1e9));
    pb_fixed64(b, HP_COUNT, count);
    pb_double(b, HP_SUM, sum);

    pb_len(b, HP_BUCKETS, 8 * ((size_t) h->n_bounds + 1));
    for (i = 0; i <= h->n_bounds; i++) {
        bucket = h->buckets[i] - (delta ? st->buckets[i] : 0);
        pb_raw64(b, bucket);
    }
    pb_len(b, HP_BOUNDS, 8 * (size_t) h->n_bounds);
    for (i = 0; i < h->n_bounds; i++) {
        uint64_t  u;

        memcpy(&u, &h->bounds[i], sizeof(u));
        pb_raw64(b, u);
    }

    /* each bucket's exemplar (delta: those of the interval) */
    for (i = 0; h->exemplars && i <= h->n_bounds; i++) {
        x = &h->exemplars[i];
        if (x->timestamp <= 0 || x->timestamp < since) {
            continue;
        }
        ex = 9 + 9 + pb_len_size(EX_SPAN_ID, 8) + pb_len_size(EX_TRACE_ID, 16);
        pb_len(b, HP_EXEMPLARS, ex);
        pb_fixed64(b, EX_TIME, (uint64_t) (x->timestamp * 1e9));
        pb_double(b, EX_DOUBLE, x->value);
        pb_bytes(b, EX_SPAN_ID, x->span_id, 8);
        pb_bytes(b, EX_TRACE_ID, x->trace_id, 16);
    }

    /* kept for the next push */
    st->value = (double) h->count;
    st->sum = h->sum;
    if (e->cfg.delta) {
        if (st->n != (uint32_t) h->n_bounds + 1) {
            free(st->buckets);
            st->buckets = malloc(sizeof(uint64_t)
                                 * ((size_t) h->n_bounds + 1));
            st->n = st->buckets ? (uint32_t) h->n_bounds + 1 : 0;
        }
        if (st->buckets) {
            memcpy(st->buckets, h->buckets,
                   sizeof(uint64_t) * ((size_t) h->n_bounds + 1));
        }
    }

    om_point_done(e);
}

static void
om_family_end(void *data)
{
    om_flush_metric(data);
}

/*
 * The series' state, carried over from the last push or new: fresh when
 * the last push did not see it or it was reset since (it expired and came
 * back, or its count went down), with the start of its counting.
 */
static mstate_t *
om_state(otlp_metrics_encoder_t *e, const char *const *names,
    const char *const *values, int n, uint32_t born, double value,
    int *fresh)
{
    mstate_t  *old, *st;
    uint64_t   key;
    int        i;

    key = hash_bytes(e->family, strlen(e->family), 0x6f746c70);
    for (i = 0; i < n; i++) {
        key = hash_bytes(names[i], strlen(names[i]) + 1, key);
        key = hash_bytes(values[i], strlen(values[i]) + 1, key);
    }
    key |= 1;

    st = table_insert(&e->cur, key);
    if (st == NULL) {
        return NULL;
    }
    if (st->born == born && st->start != 0) {
        *fresh = 0;
        return st;                  /* the same series twice in a push */
    }

    old = table_find(&e->prev, key);
    *fresh = old == NULL || old->born != born
             || (e->kind != KIND_UPDOWN && value < old->value);

    if (old && !*fresh) {
        *st = *old;
        old->buckets = NULL;        /* moved */
        return st;
    }

    /* counting began after the last push, or at the sidecar's start */
    st->key = key;
    st->born = born;
    st->start = e->last ? e->last : e->started;
    st->value = 0;
    st->sum = 0;
    return st;
}

/* The labels as attributes, the gateway's under semantic-convention
   names; empty values are left out, as remote-write does. */
static void
om_attributes(buf_t *b, unsigned field, const char *const *names,
    const char *const *values, int n)
{
    const char            *v;
    const family_label_t  *l;
    size_t                 len;
    int                    i;

    for (i = 0; i < n; i++) {
        v = values[i];
        len = strlen(v);
        if (len == 0) {
            continue;
        }

        /* the gateway's labels under their attributes (families.def) */
        l = family_label(names[i]);

        if (l == NULL) {
            otlp_attr_str(b, field, names[i], strlen(names[i]), v, len);

        } else if (l->otel_int && len <= 3
                   && strspn(v, "0123456789") == len)
        {
            otlp_attr_int(b, field, l->otel, strlen(l->otel), atoi(v));

        } else {
            otlp_attr_str(b, field, l->otel, strlen(l->otel), v, len);
        }
    }
}

/* A data point is written: it joins the Metric, and a request that grew
   past batch_bytes is sealed. */
static void
om_point_done(otlp_metrics_encoder_t *e)
{
    pb_bytes(&e->points, AGG_POINTS, e->point.data, e->point.len);
    e->n_points++;

    if (e->points.len + e->metrics.len >= e->cfg.sink.batch_bytes) {
        om_flush_metric(e);
        om_seal(e);
    }
}

/* The data points so far as one Metric of the request. */
static void
om_flush_metric(otlp_metrics_encoder_t *e)
{
    size_t    inner, metric, nlen, hlen, ulen;
    unsigned  field;

    if (e->n_points == 0) {
        return;
    }

    inner = e->points.len;
    switch (e->kind) {
    case KIND_SUM:
    case KIND_UPDOWN:
        field = M_SUM;
        inner += 4;                 /* temporality, monotonic */
        break;
    case KIND_HISTOGRAM:
        field = M_HISTOGRAM;
        inner += 2;
        break;
    default:
        field = M_GAUGE;
        break;
    }

    nlen = strlen(e->name);
    hlen = e->help ? strlen(e->help) : 0;
    ulen = strlen(e->unit);
    metric = pb_len_size(M_NAME, nlen) + pb_len_size(M_DESCRIPTION, hlen)
             + (ulen ? pb_len_size(M_UNIT, ulen) : 0)
             + pb_len_size(field, inner);

    pb_len(&e->metrics, SM_METRICS, metric);
    pb_bytes(&e->metrics, M_NAME, e->name, nlen);
    pb_bytes(&e->metrics, M_DESCRIPTION, e->help, hlen);
    if (ulen) {
        pb_bytes(&e->metrics, M_UNIT, e->unit, ulen);
    }
    pb_len(&e->metrics, field, inner);
    buf_append(&e->metrics, e->points.data, e->points.len);
    if (field != M_GAUGE) {
        pb_uint(&e->metrics, AGG_TEMPORALITY,
                e->delta ? TEMPORALITY_DELTA : TEMPORALITY_CUMULATIVE);
    }
    if (field == M_SUM) {
        pb_uint(&e->metrics, SUM_MONOTONIC, e->kind == KIND_SUM);
    }

    e->request_points += e->n_points;
    buf_reset(&e->points);
    e->n_points = 0;
}

/* The request so far as a payload at the chain's end. */
static void
om_seal(otlp_metrics_encoder_t *e)
{
    buf_t       body = { 0 };
    payload_t  *p = NULL;
    size_t      n = e->request_points, cap;

    if (n == 0) {
        return;
    }

    otlp_request(&body, &e->resource, &e->metrics);
    if (!body.failed && !e->metrics.failed && !e->point.failed
        && !e->points.failed)
    {
        if (e->cfg.gzip) {
            cap = compress_bound(COMPRESS_GZIP, body.len);
            p = payload_new(cap, n, "");
            if (p) {
                p->len = compress_fast(COMPRESS_GZIP, body.data, body.len,
                                       p->data, cap);
                if (p->len == 0) {
                    payload_free(p);
                    p = NULL;
                }
            }
        } else if ((p = calloc(1, sizeof(payload_t))) != NULL) {
            /* the body's memory becomes the payload's */
            p->data = (unsigned char *) body.data;
            p->len = body.len;
            p->items = n;
            memset(&body, 0, sizeof(body));
        }
    }
    buf_free(&body);

    if (p == NULL) {
        e->lost += n;
    } else {
        *e->tail = p;
        e->tail = &p->next;
        e->total += n;
    }

    buf_reset(&e->metrics);
    e->metrics.failed = e->points.failed = e->point.failed = 0;
    e->request_points = 0;
}

/* --- series state: open addressing on the series' hash ------------- */

static mstate_t *
table_find(mtable_t *t, uint64_t key)
{
    size_t  i;

    if (t->cap == 0) {
        return NULL;
    }

    for (i = key & (t->cap - 1); t->slots[i].key; i = (i + 1) & (t->cap - 1))
    {
        if (t->slots[i].key == key) {
            return &t->slots[i];
        }
    }
    return NULL;
}

static mstate_t *
table_insert(mtable_t *t, uint64_t key)
{
    mstate_t  *slots, *old = t->slots, *st;
    size_t     cap, i, k;

    if ((st = table_find(t, key)) != NULL) {
        return st;
    }

    if (2 * (t->n + 1) > t->cap) {
        cap = t->cap ? 2 * t->cap : 1024;
        slots = calloc(cap, sizeof(mstate_t));
        if (slots == NULL) {
            return NULL;
        }
        for (k = 0; k < t->cap; k++) {
            if (old[k].key == 0) {
                continue;
            }
            for (i = old[k].key & (cap - 1); slots[i].key;
                 i = (i + 1) & (cap - 1))
            {
                /* void */
            }
            slots[i] = old[k];
        }
        free(old);
        t->slots = slots;
        t->cap = cap;
    }

    for (i = key & (t->cap - 1); t->slots[i].key; i = (i + 1) & (t->cap - 1))
    {
        /* void */
    }
    st = &t->slots[i];
    memset(st, 0, sizeof(*st));
    st->key = key;
    t->n++;
    return st;
}

/* Empties a table, keeping its slots. */
static void
table_clear(mtable_t *t)
{
    size_t  i;

    for (i = 0; i < t->cap; i++) {
        free(t->slots[i].buckets);
    }
    if (t->cap) {
        memset(t->slots, 0, t->cap * sizeof(mstate_t));
    }
    t->n = 0;
}

/* A packed fixed64 (no tag). */
static void
pb_raw64(buf_t *b, uint64_t v)
{
    uint8_t  out[8];
    int      i;

    for (i = 0; i < 8; i++) {
        out[i] = (uint8_t) (v >> (8 * i));
    }
    pb_put(b, out, 8);
}

/* --- settings --------------------------------------------------------- */

/* "prometheus", "otlp", "prometheus,otlp" or "none". */
static int
metrics_set_exporters(const setting_t *s, void *base, json_t *v,
    const char *text, const char *where, char *err, size_t errlen)
{
    otlp_metrics_config_t  *cfg = base;
    const char             *p, *end;
    size_t                  n;
    int                     prometheus = 0, otlp = 0, none = 0;

    (void) s;

    if (v && !json_is_string(v)) {
        snprintf(err, errlen, "config: \"%s\" must be a string", where);
        return -1;
    }
    p = v ? json_string_value(v) : text;

    for ( ; *p; p = *end ? end + 1 : end) {
        end = p + strcspn(p, ",");
        while (p < end && *p == ' ') {
            p++;
        }
        n = (size_t) (end - p);
        while (n && p[n - 1] == ' ') {
            n--;
        }
        if (n == 10 && memcmp(p, "prometheus", 10) == 0) {
            prometheus = 1;
        } else if (n == 4 && memcmp(p, "otlp", 4) == 0) {
            otlp = 1;
        } else if (n == 4 && memcmp(p, "none", 4) == 0) {
            none = 1;
        } else {
            snprintf(err, errlen, "%s: \"%.*s\" is not a metrics exporter: "
                     "prometheus, otlp, both (prometheus,otlp) or none",
                     where, (int) n, p);
            return -1;
        }
    }

    if (none && (prometheus || otlp)) {
        snprintf(err, errlen, "%s: \"none\" goes alone", where);
        return -1;
    }
    if (!none && !prometheus && !otlp) {
        snprintf(err, errlen, "%s: name prometheus, otlp, both or none",
                 where);
        return -1;
    }

    cfg->prometheus = prometheus;
    cfg->otlp = otlp;
    return 0;
}
