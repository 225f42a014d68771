/*
 * /status.json: the newest snapshot, its tables filtered, sorted and paged
 * as the request asks, with the ring's sparklines.  The schema is
 * sidecar/status/status.schema.json; every text goes through jsonw_text,
 * and every number that is not finite is written null.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jsonw.h"
#include "status_snap.h"

#ifndef OBS_VERSION
#define OBS_VERSION "dev"
#endif

#define FILTER_MAX  256

typedef enum { F_TEXT, F_DOUBLE, F_U64 } field_kind_t;

typedef struct {
    const char    *name;
    field_kind_t   kind;
    size_t         offset;
    int            desc;            /* the natural order */
} sort_key_t;

typedef struct {
    const char        *prefix;      /* routes, tenants, business */
    const sort_key_t  *keys;
    const char        *default_key;
    const sort_key_t  *key;
    int                desc;
    long               offset, limit;
} table_query_t;

static const sort_key_t  route_keys[] = {
    { "service", F_TEXT, offsetof(srow_t, service), 0 },
    { "route", F_TEXT, offsetof(srow_t, route), 0 },
    { "requests", F_U64, offsetof(srow_t, requests), 1 },
    { "rate", F_DOUBLE, offsetof(srow_t, rate), 1 },
    { "ratio_5xx", F_DOUBLE, offsetof(srow_t, ratio_5xx), 1 },
    { "ratio_4xx", F_DOUBLE, offsetof(srow_t, ratio_4xx), 1 },
    { "p50", F_DOUBLE, offsetof(srow_t, p50), 1 },
    { "p95", F_DOUBLE, offsetof(srow_t, p95), 1 },
    { "p99", F_DOUBLE, offsetof(srow_t, p99), 1 },
    { "latency_good", F_DOUBLE, offsetof(srow_t, good), 0 },
    { "upstream_p95", F_DOUBLE, offsetof(srow_t, up_p95), 1 },
    { "in_flight", F_U64, offsetof(srow_t, in_flight), 1 },
    { NULL, F_TEXT, 0, 0 }
};

static const sort_key_t  tenant_keys[] = {
    { "tenant", F_TEXT, offsetof(srow_t, tenant), 0 },
    { "requests", F_U64, offsetof(srow_t, requests), 1 },
    { "rate", F_DOUBLE, offsetof(srow_t, rate), 1 },
    { "errors", F_U64, offsetof(srow_t, w_5xx), 1 },
    { "ratio_5xx", F_DOUBLE, offsetof(srow_t, ratio_5xx), 1 },
    { "ratio_4xx", F_DOUBLE, offsetof(srow_t, ratio_4xx), 1 },
    { "p95", F_DOUBLE, offsetof(srow_t, p95), 1 },
    { NULL, F_TEXT, 0, 0 }
};

static const sort_key_t  business_keys[] = {
    { "metric", F_TEXT, offsetof(brow_t, metric), 0 },
    { "service", F_TEXT, offsetof(brow_t, service), 0 },
    { "route", F_TEXT, offsetof(brow_t, route), 0 },
    { "value", F_DOUBLE, offsetof(brow_t, value), 1 },
    { "rate", F_DOUBLE, offsetof(brow_t, rate), 1 },
    { NULL, F_TEXT, 0, 0 }
};

static int parse_table(table_query_t *q, status_arg_pt arg, void *ctx,
    char *err, size_t errlen);
static int parse_long(const char *text, long min, long max, long *out);
static int compare(const void *a, const void *b, void *data);
static int matches(const char *text, const char *filter);
static size_t select_rows(const stab_t *t, void ***out, const char *filter,
    int routes, int tenants, const table_query_t *q);
static void put_num(buf_t *b, double v);
static void put_text(buf_t *b, const char *s);
static void put_key(buf_t *b, const char *key);
static void put_table_head(buf_t *b, const char *name, size_t total,
    const table_query_t *q);
static void put_route(buf_t *b, status_t *st, const snap_t *s,
    const srow_t *r);
static void put_tenant(buf_t *b, const srow_t *r);
static void put_business(buf_t *b, const brow_t *r);
static void put_total(buf_t *b, const srow_t *r);
static void put_pipeline(buf_t *b, const snap_t *s);
static void put_spark(buf_t *b, status_t *st);
static const spark_row_t *spark_find(const spark_t *e, uint64_t hash);

int
status_render(status_t *st, status_arg_pt arg, void *ctx, buf_t *out,
    char *err, size_t errlen)
{
    table_query_t  qr = { "routes", route_keys, "rate", NULL, 1, 0, 50 };
    table_query_t  qt = { "tenants", tenant_keys, "rate", NULL, 1, 0, 10 };
    table_query_t  qb = { "business", business_keys, "metric", NULL, 0, 0,
                          20 };
    const char    *route, *tenant;
    snap_t        *s;
    void         **rows = NULL;
    size_t         n, i;

    route = arg(ctx, "route");
    tenant = arg(ctx, "tenant");
    if ((route && strlen(route) > FILTER_MAX)
        || (tenant && strlen(tenant) > FILTER_MAX))
    {
        snprintf(err, errlen, "route and tenant filters are at most %d "
                 "bytes", FILTER_MAX);
        return -1;
    }

    if (parse_table(&qr, arg, ctx, err, errlen) != 0
        || parse_table(&qt, arg, ctx, err, errlen) != 0
        || parse_table(&qb, arg, ctx, err, errlen) != 0)
    {
        return -1;
    }

    s = status_hold(st);
    if (s == NULL) {
        snprintf(err, errlen, "no snapshot yet");
        return -1;
    }

    jsonw_lit(out, "{\"schema\":\"obs-status/1\",\"version\":");
    put_text(out, OBS_VERSION);
    jsonw_lit(out, ",\"time\":");
    put_num(out, s->time);
    jsonw_lit(out, ",\"started\":");
    put_num(out, s->started);
    buf_printf(out, ",\"interval_seconds\":%d,\"history_seconds\":%d",
               STATUS_INTERVAL, STATUS_INTERVAL * STATUS_RING);
    jsonw_lit(out, ",\"window\":{\"start\":");
    put_num(out, s->base_time);
    jsonw_lit(out, ",\"end\":");
    put_num(out, s->time);
    jsonw_lit(out, ",\"seconds\":");
    put_num(out, s->time - s->base_time);
    jsonw_lit(out, "},\"slo\":{\"availability\":");
    put_num(out, s->availability);
    jsonw_lit(out, ",\"latency_objective\":");
    put_num(out, s->latency_objective);
    jsonw_lit(out, ",\"latency_threshold_seconds\":");
    put_num(out, s->latency_threshold);
    jsonw_lit(out, "},\"links\":{\"grafana\":");
    put_text(out, s->grafana_url);
    jsonw_lit(out, ",\"trace\":");
    put_text(out, s->trace_url);
    jsonw_lit(out, "},\"series\":{\"count\":");
    jsonw_u64(out, (uint64_t) s->series);
    jsonw_lit(out, ",\"max\":");
    jsonw_u64(out, (uint64_t) s->max_series);
    jsonw_lit(out, "},\"filter\":{\"route\":");
    put_text(out, route);
    jsonw_lit(out, ",\"tenant\":");
    put_text(out, tenant);
    jsonw_lit(out, "},\"total\":");
    put_total(out, &s->total);

    n = select_rows(&s->routes, &rows, route, 1, 0, &qr);
    put_table_head(out, "routes", n, &qr);
    for (i = (size_t) qr.offset; i < n && i < (size_t) (qr.offset + qr.limit);
         i++)
    {
        if (i > (size_t) qr.offset) {
            jsonw_lit(out, ",");
        }
        put_route(out, st, s, rows[i]);
    }
    jsonw_lit(out, "]}");
    free(rows);
    rows = NULL;

    n = select_rows(&s->tenants, &rows, tenant, 0, 1, &qt);
    put_table_head(out, "tenants", n, &qt);
    for (i = (size_t) qt.offset; i < n && i < (size_t) (qt.offset + qt.limit);
         i++)
    {
        if (i > (size_t) qt.offset) {
            jsonw_lit(out, ",");
        }
        put_tenant(out, rows[i]);
    }
    jsonw_lit(out, "]}");
    free(rows);
    rows = NULL;

    n = select_rows(&s->business, &rows, route, 0, 0, &qb);
    put_table_head(out, "business", n, &qb);
    for (i = (size_t) qb.offset; i < n && i < (size_t) (qb.offset + qb.limit);
         i++)
    {
        if (i > (size_t) qb.offset) {
            jsonw_lit(out, ",");
        }
        put_business(out, rows[i]);
    }
    jsonw_lit(out, "]}");
    free(rows);

    jsonw_lit(out, ",\"pipeline\":");
    put_pipeline(out, s);
    jsonw_lit(out, ",\"spark\":");
    put_spark(out, st);
    jsonw_lit(out, "}");

    status_release(s);

    if (out->len > STATUS_JSON_MAX) {
        snprintf(err, errlen, "the answer would exceed %d bytes",
                 STATUS_JSON_MAX);
        return -1;
    }
    return out->failed ? -1 : 0;
}

/* <prefix>_sort, <prefix>_order (asc, desc), <prefix>_offset,
   <prefix>_limit (1 to STATUS_MAX_LIMIT). */

static int
parse_table(table_query_t *q, status_arg_pt arg, void *ctx, char *err,
    size_t errlen)
{
    char         name[32];
    const char  *v;
    int          i;

    snprintf(name, sizeof(name), "%s_sort", q->prefix);
    v = arg(ctx, name);
    for (i = 0; q->keys[i].name; i++) {
        if (strcmp(q->keys[i].name, v ? v : q->default_key) == 0) {
            q->key = &q->keys[i];
            q->desc = q->keys[i].desc;
        }
    }
    if (q->key == NULL) {
        snprintf(err, errlen, "%s: unknown column \"%.64s\"", name, v);
        return -1;
    }

    snprintf(name, sizeof(name), "%s_order", q->prefix);
    v = arg(ctx, name);
    if (v && strcmp(v, "asc") != 0 && strcmp(v, "desc") != 0) {
        snprintf(err, errlen, "%s must be asc or desc", name);
        return -1;
    }
    if (v) {
        q->desc = v[0] == 'd';
    }

    snprintf(name, sizeof(name), "%s_offset", q->prefix);
    v = arg(ctx, name);
    if (v && parse_long(v, 0, 1000000000, &q->offset) != 0) {
        snprintf(err, errlen, "%s must be a number of rows", name);
        return -1;
    }

    snprintf(name, sizeof(name), "%s_limit", q->prefix);
    v = arg(ctx, name);
    if (v && parse_long(v, 1, STATUS_MAX_LIMIT, &q->limit) != 0) {
        snprintf(err, errlen, "%s must be 1 to %d", name, STATUS_MAX_LIMIT);
        return -1;
    }

    return 0;
}

static int
parse_long(const char *text, long min, long max, long *out)
{
    char  *end;
    long   v;

    if (text[0] < '0' || text[0] > '9' || strlen(text) > 10) {
        return -1;
    }
    v = strtol(text, &end, 10);
    if (*end != '\0' || v < min || v > max) {
        return -1;
    }

    *out = v;
    return 0;
}

/* The rows that match the filter, sorted as q asks; *out is malloc'ed. */

static size_t
select_rows(const stab_t *t, void ***out, const char *filter, int routes,
    int tenants, const table_query_t *q)
{
    void   **rows;
    char    *row;
    size_t   i, n = 0;

    rows = malloc(sizeof(void *) * (t->n ? t->n : 1));
    *out = rows;
    if (rows == NULL) {
        return 0;
    }

    for (i = 0; i < t->n; i++) {
        row = (char *) t->rows + i * t->size;

        if (filter && filter[0]) {
            if (tenants) {
                if (!matches(((srow_t *) row)->tenant, filter)) {
                    continue;
                }
            } else if (routes) {
                if (!matches(((srow_t *) row)->service, filter)
                    && !matches(((srow_t *) row)->route, filter))
                {
                    continue;
                }
            } else if (!matches(((brow_t *) row)->service, filter)
                       && !matches(((brow_t *) row)->route, filter))
            {
                continue;
            }
        }

        rows[n++] = row;
    }

    qsort_r(rows, n, sizeof(void *), compare, (void *) q);
    return n;
}

/* Case-insensitive substring. */

static int
matches(const char *text, const char *filter)
{
    size_t  fl = strlen(filter), tl = strlen(text), i;

    for (i = 0; i + fl <= tl; i++) {
        if (strncasecmp(text + i, filter, fl) == 0) {
            return 1;
        }
    }
    return 0;
}

/* By the column, NaN always last, then by key for a stable order. */

static int
compare(const void *a, const void *b, void *data)
{
    const table_query_t  *q = data;
    const char           *x = *(const char *const *) a;
    const char           *y = *(const char *const *) b;
    const skey_t         *kx = (const skey_t *) x, *ky = (const skey_t *) y;
    double                dx, dy;
    uint64_t              ux, uy;
    int                   c = 0;

    switch (q->key->kind) {
    case F_TEXT:
        c = strcmp(*(const char *const *) (x + q->key->offset),
                   *(const char *const *) (y + q->key->offset));
        break;

    case F_U64:
        memcpy(&ux, x + q->key->offset, sizeof(ux));
        memcpy(&uy, y + q->key->offset, sizeof(uy));
        c = ux < uy ? -1 : ux > uy;
        break;

    case F_DOUBLE:
        memcpy(&dx, x + q->key->offset, sizeof(dx));
        memcpy(&dy, y + q->key->offset, sizeof(dy));
        if (isnan(dx) || isnan(dy)) {
            if (isnan(dx) != isnan(dy)) {
                return isnan(dx) ? 1 : -1;
            }
        } else {
            c = dx < dy ? -1 : dx > dy;
        }
        break;
    }

    if (c == 0) {
        c = memcmp(kx->key, ky->key, kx->len < ky->len ? kx->len : ky->len);
        return c ? c : (kx->len > ky->len) - (kx->len < ky->len);
    }

    return q->desc ? -c : c;
}

static void
put_num(buf_t *b, double v)
{
    if (!isfinite(v)) {
        jsonw_lit(b, "null");
        return;
    }
    buf_double(b, v);
}

static void
put_text(buf_t *b, const char *s)
{
    if (s == NULL) {
        jsonw_lit(b, "null");
        return;
    }
    jsonw_text(b, (const uint8_t *) s, strlen(s), 4096);
}

static void
put_key(buf_t *b, const char *key)
{
    buf_printf(b, ",\"%s\":", key);
}

static void
put_table_head(buf_t *b, const char *name, size_t total,
    const table_query_t *q)
{
    buf_printf(b, ",\"%s\":{\"total\":%zu,\"offset\":%ld,\"limit\":%ld,"
               "\"sort\":\"%s\",\"order\":\"%s\",\"rows\":[", name, total,
               q->offset, q->limit, q->key->name, q->desc ? "desc" : "asc");
}

/* The counts and window values every route, tenant and total row has. */

static void
put_counts(buf_t *b, const srow_t *r)
{
    jsonw_lit(b, "\"requests\":");
    jsonw_u64(b, r->requests);
    put_key(b, "errors_5xx");
    jsonw_u64(b, r->e5xx);
    put_key(b, "errors_4xx");
    jsonw_u64(b, r->e4xx);
    put_key(b, "window_requests");
    jsonw_u64(b, r->w_requests);
    put_key(b, "window_5xx");
    jsonw_u64(b, r->w_5xx);
    put_key(b, "rate");
    put_num(b, r->rate);
    put_key(b, "ratio_5xx");
    put_num(b, r->ratio_5xx);
    put_key(b, "ratio_4xx");
    put_num(b, r->ratio_4xx);
    put_key(b, "p50");
    put_num(b, r->p50);
    put_key(b, "p95");
    put_num(b, r->p95);
    put_key(b, "p99");
    put_num(b, r->p99);
    put_key(b, "latency_good");
    put_num(b, r->good);
}

static void
put_total(buf_t *b, const srow_t *r)
{
    jsonw_lit(b, "{");
    put_counts(b, r);
    put_key(b, "upstream_p95");
    put_num(b, r->up_p95);
    put_key(b, "in_flight");
    jsonw_u64(b, r->in_flight);
    jsonw_lit(b, "}");
}

static void
put_route(buf_t *b, status_t *st, const snap_t *s, const srow_t *r)
{
    const spark_t      *e = NULL, *pe;
    const spark_row_t  *x = NULL, *px;
    int                 i, n;

    (void) s;

    jsonw_lit(b, "{\"service\":");
    put_text(b, r->service);
    jsonw_lit(b, ",\"route\":");
    put_text(b, r->route);
    jsonw_lit(b, ",");
    put_counts(b, r);
    put_key(b, "upstream_p95");
    put_num(b, r->up_p95);
    put_key(b, "in_flight");
    jsonw_u64(b, r->in_flight);
    put_key(b, "exemplar");
    if (r->has_exemplar) {
        jsonw_lit(b, "{\"trace_id\":");
        jsonw_hex(b, r->ex_trace, 16);
        jsonw_lit(b, ",\"value\":");
        put_num(b, r->ex_value);
        jsonw_lit(b, ",\"time\":");
        put_num(b, r->ex_time);
        jsonw_lit(b, "}");
    } else {
        jsonw_lit(b, "null");
    }

    /* one point per ring entry: the interval's rate and p95 */
    jsonw_lit(b, ",\"spark\":{\"rate\":[");
    pthread_mutex_lock(&st->lock);
    n = st->ring_len;
    for (i = 0, pe = NULL, px = NULL; i < n; i++, pe = e, px = x) {
        e = &st->ring[(st->ring_head + i) % STATUS_RING];
        x = spark_find(e, r->k.hash);
        if (i) {
            jsonw_lit(b, ",");
        }
        if (x && px && x->requests >= px->requests && e->time > pe->time) {
            buf_printf(b, "%.4g", (double) (x->requests - px->requests)
                                  / (e->time - pe->time));
        } else {
            jsonw_lit(b, "null");
        }
    }
    jsonw_lit(b, "],\"p95\":[");
    for (i = 0; i < n; i++) {
        e = &st->ring[(st->ring_head + i) % STATUS_RING];
        x = spark_find(e, r->k.hash);
        if (i) {
            jsonw_lit(b, ",");
        }
        if (x && i && isfinite(x->p95)) {
            buf_printf(b, "%.4g", (double) x->p95);
        } else {
            jsonw_lit(b, "null");
        }
    }
    pthread_mutex_unlock(&st->lock);
    jsonw_lit(b, "]}}");
}

static void
put_tenant(buf_t *b, const srow_t *r)
{
    jsonw_lit(b, "{\"tenant\":");
    put_text(b, r->tenant);
    jsonw_lit(b, ",");
    put_counts(b, r);
    jsonw_lit(b, "}");
}

static void
put_business(buf_t *b, const brow_t *r)
{
    jsonw_lit(b, "{\"metric\":");
    put_text(b, r->metric);
    if (r->counter) {
        jsonw_lit(b, ",\"type\":\"counter\"");
    } else {
        jsonw_lit(b, ",\"type\":\"gauge\"");
    }
    jsonw_lit(b, ",\"service\":");
    put_text(b, r->service);
    jsonw_lit(b, ",\"route\":");
    put_text(b, r->route);
    jsonw_lit(b, ",\"label\":");
    put_text(b, r->label);
    put_key(b, "value");
    put_num(b, r->value);
    put_key(b, "rate");
    put_num(b, r->rate);
    put_key(b, "series");
    jsonw_u64(b, r->series);
    jsonw_lit(b, "}");
}

/*
 * A destination's state: off; file (writes to a file); ok (nothing waits,
 * or the receiver accepted a request within the last minute); failing
 * (items wait and no success for a minute); idle (never sent, nothing
 * waits).
 */

static const char *
dest_state(const sdest_t *d, double now)
{
    const destination_stats_t  *st = &d->st;
    int                         waiting;

    if (!st->enabled || strcmp(d->mode, "off") == 0) {
        return "off";
    }
    if (strcmp(d->mode, "file") == 0) {
        return "file";
    }

    waiting = st->queue_items > 0 || st->spool_bytes > 0;
    if (st->last_success > now - 60 || (!waiting && st->last_success > 0)) {
        return "ok";
    }
    return waiting || st->requests_retried || st->requests_rejected
           ? "failing" : "idle";
}

static void
put_pipeline(buf_t *b, const snap_t *s)
{
    const spipe_t  *p = &s->pipe;
    const sdest_t  *d;
    int             i, k;

    jsonw_lit(b, "{\"records_received\":");
    jsonw_u64(b, p->records);
    put_key(b, "records_rate");
    put_num(b, p->records_rate);
    put_key(b, "datagrams_received");
    jsonw_u64(b, p->datagrams);
    put_key(b, "datagrams_lost");
    jsonw_u64(b, p->lost);
    put_key(b, "dropped_rate");
    put_num(b, p->dropped_rate);

    jsonw_lit(b, ",\"module_dropped\":{");
    for (i = 0; i < MODULE_DROP_REASONS; i++) {
        buf_printf(b, "%s\"%s\":", i ? "," : "", module_drop_names[i]);
        jsonw_u64(b, p->dropped[i]);
    }
    jsonw_lit(b, "},\"decode_errors\":{");
    for (i = 0; i < DECODE_REASONS; i++) {
        buf_printf(b, "%s\"%s\":", i ? "," : "", decode_reason_names[i]);
        jsonw_u64(b, p->decode[i]);
    }
    jsonw_lit(b, "},\"series_overflow\":{");
    for (i = 0; i < OVERFLOW_KINDS; i++) {
        buf_printf(b, "%s\"%s\":", i ? "," : "", overflow_names[i]);
        jsonw_u64(b, p->overflow[i]);
    }
    jsonw_lit(b, "},\"business_rejected\":");
    jsonw_u64(b, p->business_rejected);

    jsonw_lit(b, ",\"exporter\":");
    if (p->has_exporter) {
        jsonw_lit(b, "{\"backlog_datagrams\":");
        jsonw_u64(b, p->backlog);
        jsonw_lit(b, ",\"shed\":{");
        for (i = 0; i < SIGNALS; i++) {
            buf_printf(b, "%s\"%s\":", i ? "," : "",
                       exporter_signal_names[i]);
            jsonw_u64(b, p->shed[i]);
        }
        jsonw_lit(b, "}}");
    } else {
        jsonw_lit(b, "null");
    }

    jsonw_lit(b, ",\"destinations\":[");
    for (i = 0; i < p->n_dest; i++) {
        d = &p->dest[i];
        if (i) {
            jsonw_lit(b, ",");
        }
        jsonw_lit(b, "{\"name\":");
        put_text(b, d->name);
        jsonw_lit(b, ",\"mode\":");
        put_text(b, d->mode);
        jsonw_lit(b, ",\"state\":");
        put_text(b, dest_state(d, s->time));
        put_key(b, "sent");
        jsonw_u64(b, d->st.items_sent);
        put_key(b, "requests_ok");
        jsonw_u64(b, d->st.requests_ok);
        put_key(b, "requests_failed");
        jsonw_u64(b, d->st.requests_retried + d->st.requests_rejected);
        put_key(b, "retries");
        jsonw_u64(b, d->st.retries);
        jsonw_lit(b, ",\"dropped\":{");
        for (k = 0; k < DROP_REASONS; k++) {
            buf_printf(b, "%s\"%s\":", k ? "," : "", delivery_drop_names[k]);
            jsonw_u64(b, d->st.items_dropped[k]);
        }
        jsonw_lit(b, "}");
        put_key(b, "queue_bytes");
        jsonw_u64(b, d->st.queue_bytes);
        put_key(b, "spool_bytes");
        jsonw_u64(b, d->st.spool_bytes);
        put_key(b, "spool_files");
        jsonw_u64(b, d->st.spool_files);
        put_key(b, "last_success");
        put_num(b, d->st.last_success);
        jsonw_lit(b, "}");
    }
    jsonw_lit(b, "]}");
}

/* The whole gateway's sparklines, with the time of each point. */

static void
put_spark(buf_t *b, status_t *st)
{
    static const char  *names[] = {
        "times", "rate", "ratio_5xx", "p95", "records_rate", "dropped_rate"
    };
    const spark_t  *e, *p;
    double          dt, v;
    int             i, k, n;

    pthread_mutex_lock(&st->lock);
    n = st->ring_len;

    jsonw_lit(b, "{");
    for (k = 0; k < 6; k++) {
        buf_printf(b, "%s\"%s\":[", k ? "]," : "", names[k]);
        for (i = 0; i < n; i++) {
            e = &st->ring[(st->ring_head + i) % STATUS_RING];
            p = i ? &st->ring[(st->ring_head + i - 1) % STATUS_RING] : NULL;
            dt = p ? e->time - p->time : 0;
            if (i) {
                jsonw_lit(b, ",");
            }

            switch (k) {
            case 0:
                buf_printf(b, "%.3f", e->time);
                continue;
            case 1:
                v = p && dt > 0 && e->requests >= p->requests
                    ? (double) (e->requests - p->requests) / dt : NAN;
                break;
            case 2:
                v = p && e->requests > p->requests && e->e5xx >= p->e5xx
                    ? (double) (e->e5xx - p->e5xx)
                      / (double) (e->requests - p->requests) : NAN;
                break;
            case 3:
                v = p ? e->p95 : NAN;
                break;
            case 4:
                v = p && dt > 0 && e->records >= p->records
                    ? (double) (e->records - p->records) / dt : NAN;
                break;
            default:
                v = p && dt > 0 && e->dropped >= p->dropped
                    ? (double) (e->dropped - p->dropped) / dt : NAN;
                break;
            }

            if (isfinite(v)) {
                buf_printf(b, "%.4g", v);
            } else {
                jsonw_lit(b, "null");
            }
        }
    }
    jsonw_lit(b, "]}");

    pthread_mutex_unlock(&st->lock);
}

static const spark_row_t *
spark_find(const spark_t *e, uint64_t hash)
{
    uint32_t  lo = 0, hi = e->n_rows, mid;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (e->rows[mid].hash < hash) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }

    return lo < e->n_rows && e->rows[lo].hash == hash ? &e->rows[lo] : NULL;
}
