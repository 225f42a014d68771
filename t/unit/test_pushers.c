/*
 * Unit tests for what the pushers read and write: usage differences (also
 * for a series that expired and came back), the snapshot's label order,
 * the WriteRequest encoding, cost classes and their configuration.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <snappy-c.h>

#include "clickhouse.h"
#include "config.h"
#include "otlp_metrics.h"
#include "pb.h"
#include "remote_write.h"
#include "snapshot.h"
#include "store.h"
#include "usage.h"
#include "unit.h"
#include "unit_config.h"
#include "prometheus/remote.pb-c.h"

typedef struct {
    uint64_t  requests, errors, client_errors, bytes_out, count;
    uint64_t  buckets[3];
    int       rows;
} totals_t;

static void
add_row(const usage_row_t *r, void *data)
{
    totals_t  *t = data;
    int        i;

    if (strcmp(r->tenant, "t1") != 0) {
        return;
    }
    t->rows++;
    t->requests += r->requests;
    t->errors += r->errors;
    t->client_errors += r->client_errors;
    t->bytes_out += r->bytes_out;
    t->count += r->duration_count;
    for (i = 0; i < 3 && r->bounds; i++) {
        t->buckets[i] += r->buckets[i];
    }
}

static void
test_usage(void)
{
    static const double  bounds[] = { 0.1, 1 };
    const char          *req[] = { "api", "/x", "GET", "200", "t1" };
    const char          *fail[] = { "api", "/x", "GET", "503", "t1" };
    const char          *dur[] = { "api", "/x", "GET", "t1" };
    const char          *body[] = { "api", "/x", "t1" };
    store_t             *s = store_new(1000);
    usage_t             *u = usage_new();
    totals_t             t;

    store_add(s, FAMILY_REQUESTS, req, 5, 100, 0, 0);
    store_add(s, FAMILY_REQUESTS, fail, 2, 100, 0, 0);
    store_add(s, FAMILY_RESPONSE_BODY, body, 700, 100, 0, 0);
    store_observe(s, FAMILY_DURATION, dur, bounds, 2, 0.05, NULL, NULL, 100,
                  100, 0, 0);
    store_observe(s, FAMILY_DURATION, dur, bounds, 2, 5, NULL, NULL, 100,
                  100, 0, 0);

    memset(&t, 0, sizeof(t));
    usage_collect(u, s, add_row, &t);
    CHECK(t.rows == 1 && t.requests == 7 && t.errors == 2
          && t.bytes_out == 700, "first collection: everything so far");
    CHECK(t.count == 2 && t.buckets[0] == 1 && t.buckets[1] == 0
          && t.buckets[2] == 1, "latency buckets, not cumulative");

    memset(&t, 0, sizeof(t));
    usage_collect(u, s, add_row, &t);
    CHECK(t.rows == 0, "nothing new: no row");

    store_add(s, FAMILY_REQUESTS, req, 3, 200, 0, 0);
    memset(&t, 0, sizeof(t));
    usage_collect(u, s, add_row, &t);
    CHECK(t.requests == 3 && t.errors == 0 && t.bytes_out == 0,
          "second collection: the difference");

    /* the series expire and come back above their old values between two
       collections: a new series, counted from zero */
    store_expire(s, 1000);
    store_add(s, FAMILY_REQUESTS, req, 20, 1001, 0, 0);
    memset(&t, 0, sizeof(t));
    usage_collect(u, s, add_row, &t);
    CHECK(t.requests == 20, "a series that came back counts from zero");

    usage_free(u);
    store_free(s);
}

static void
test_snapshot_and_encoding(void)
{
    const char                *req[] = { "api", "", "GET", "200", "t1" };
    store_t                   *s = store_new(1000);
    snapshot_t                 snap;
    size_t                     i, idx[1] = { 0 }, len;
    buf_t                      out = { 0 };
    char                      *raw;
    Prometheus__WriteRequest  *wr;
    int                        found = 0;

    memset(&snap, 0, sizeof(snap));
    store_add(s, FAMILY_REQUESTS, req, 4, 100, 0, 0);
    CHECK(snapshot_take(&snap, s) == 0, "snapshot taken");

    for (i = 0; i < snap.n_samples; i++) {
        const snap_sample_t  *x = &snap.samples[i];
        const char           *prev = "";
        uint32_t              l;
        int                   sorted = 1, empty = 0;

        for (l = 0; l < x->n_labels; l++) {
            const char  *n = snapshot_str(&snap,
                                          snap.labels[x->first_label + l]
                                          .name);
            sorted &= strcmp(prev, n) < 0;
            empty |= snapshot_str(&snap, snap.labels[x->first_label + l]
                                  .value)[0] == '\0';
            prev = n;
        }
        CHECK(sorted && !empty, "labels sorted, none empty");

        if (strcmp(snapshot_str(&snap, snap.labels[x->first_label].value),
                   "http_server_requests_total") == 0)
        {
            found = 1;
            idx[0] = i;
            CHECK(x->value == 4 && x->n_labels == 5
                  && strcmp(snapshot_str(&snap, (uint32_t) x->tenant), "t1")
                     == 0, "the counter, route left out, tenant noted");
        }
    }
    CHECK(found, "store series are in the snapshot");

    CHECK(remote_write_encode(&snap, idx, 1, &out) == 0, "encoded");
    CHECK(snappy_uncompressed_length(out.data, out.len, &len) == SNAPPY_OK,
          "snappy block");
    raw = malloc(len);
    CHECK(snappy_uncompress(out.data, out.len, raw, &len) == SNAPPY_OK,
          "uncompressed");
    wr = prometheus__write_request__unpack(NULL, len, (uint8_t *) raw);
    CHECK(wr && wr->n_timeseries == 1
          && strcmp(wr->timeseries[0]->labels[0]->name, "__name__") == 0
          && wr->timeseries[0]->samples[0]->value == 4
          && wr->timeseries[0]->samples[0]->timestamp == snap.timestamp_ms,
          "one series, name first, the value at the snapshot's time");

    prometheus__write_request__free_unpacked(wr, NULL);
    free(raw);
    buf_free(&out);
    snapshot_free(&snap);
    store_free(s);
}

static int
load(const char *json, config_t *c, char *err, size_t errlen)
{
    return unit_config_load(json, c, err, errlen);
}

static void
test_config_and_cost(void)
{
    config_t             c;
    char                 err[512];
    const cost_class_t  *cc;

    CHECK(load("{\"remote_write\": {\"url\": \"http://x\", \"interval\": "
               "\"500ms\", \"tenant_header\": \"per_tenant\", "
               "\"operator_tenant\": \"ops\", \"headers\": {\"X-A\": \"b\"}},"
               " \"clickhouse\": {\"url\": \"http://ch\", \"cost\": "
               "{\"default\": {\"per_1k_requests\": 1}, \"classes\": ["
               "{\"name\": \"ml\", \"service\": \"ml-*\", \"per_gb\": 2},"
               "{\"name\": \"rec\", \"route\": \"/api/v1/rec*\"}]}}}",
               &c, err, sizeof(err)) == CONFIG_OK, "pushers configured");
    CHECK(c.remote_write.interval == 0.5
          && c.remote_write.tenant_header == TENANT_HEADER_PER_TENANT
          && c.remote_write.sink.n_headers == 1, "remote_write settings");

    cc = clickhouse_cost_class(&c.clickhouse, "ml-engine", "/api/v1/rec");
    CHECK(strcmp(cc->name, "ml") == 0 && cc->per_gb == 2,
          "the first class that matches");
    cc = clickhouse_cost_class(&c.clickhouse, "backend-api", "/api/v1/rec");
    CHECK(strcmp(cc->name, "rec") == 0, "a route pattern");
    cc = clickhouse_cost_class(&c.clickhouse, "backend-api", "/other");
    CHECK(strcmp(cc->name, "default") == 0 && cc->per_1k_requests == 1,
          "the default class");
    config_free(&c);

    CHECK(load("{\"remote_write\": {\"tenant_header\": \"fixed\"}}", &c, err,
               sizeof(err)) == CONFIG_ERROR && strstr(err, "org_id"),
          "fixed needs org_id");
    config_free(&c);
    CHECK(load("{\"clickhouse\": {\"interval_seconds\": 7}}", &c, err,
               sizeof(err)) == CONFIG_ERROR
          && strstr(err, "interval_seconds"), "an interval that divides "
          "an hour");
    config_free(&c);
    CHECK(load("{\"clickhouse\": {\"headers\": {\"X\": \"a\\nb\"}}}", &c,
               err, sizeof(err)) == CONFIG_ERROR
          && strstr(err, "clickhouse.headers.X"), "no header injection");
    config_free(&c);
}

/* --- OTLP metrics: read back with a plain wire reader ------------------ */

typedef struct {
    int       found;
    double    value;
    uint64_t  start, time;
} point_t;

/* The sum data point of metric name whose tenant.id is tenant, in every
   request of the chain (metrics.proto's field numbers, written here). */
static point_t
otlp_point(payload_t *chain, const char *name, const char *tenant)
{
    point_t         pt = { 0, 0, 0, 0 };
    payload_t      *p;
    const uint8_t  *a, *ae, *b, *be, *c, *ce, *d, *de, *e, *ee, *f, *fe;
    pb_field_t      x, y, z, m, k, v;
    int             named, mine;
    point_t         cand;

    for (p = chain; p; p = p->next) {
        a = p->data;
        ae = a + p->len;
        while (pb_next(&a, ae, &x) == 1) {          /* resource_metrics */
            b = x.data;
            be = b + x.len;
            while (pb_next(&b, be, &y) == 1) {      /* scope_metrics */
                if (y.field != 2) {
                    continue;
                }
                c = y.data;
                ce = c + y.len;
                while (pb_next(&c, ce, &z) == 1) {  /* metrics */
                    if (z.field != 2) {
                        continue;
                    }
                    d = z.data;
                    de = d + z.len;
                    named = 0;
                    while (pb_next(&d, de, &m) == 1) {
                        if (m.field == 1) {
                            named = m.len == strlen(name)
                                    && memcmp(m.data, name, m.len) == 0;
                        }
                        if (!named || m.field != 7) {
                            continue;
                        }
                        e = m.data;
                        ee = e + m.len;
                        while (pb_next(&e, ee, &k) == 1) {
                            if (k.field != 1) {
                                continue;
                            }
                            f = k.data;
                            fe = f + k.len;
                            mine = 0;
                            memset(&cand, 0, sizeof(cand));
                            while (pb_next(&f, fe, &v) == 1) {
                                if (v.field == 7) {
                                    mine |= memmem(v.data, v.len, tenant,
                                                   strlen(tenant)) != NULL;
                                } else if (v.field == 2) {
                                    cand.start = v.value;
                                } else if (v.field == 3) {
                                    cand.time = v.value;
                                } else if (v.field == 4) {
                                    memcpy(&cand.value, &v.value, 8);
                                }
                            }
                            if (mine) {
                                cand.found = 1;
                                pt = cand;
                            }
                        }
                    }
                }
            }
        }
    }

    return pt;
}

static void
free_chain(payload_t *p)
{
    payload_t  *next;

    for ( ; p; p = next) {
        next = p->next;
        payload_free(p);
    }
}

static void
test_otlp_metrics(void)
{
    const char               *req[] = { "api", "/x", "GET", "200", "tenant-7" };
    otlp_metrics_config_t     cfg;
    otlp_metrics_encoder_t   *cum, *delta;
    store_t                  *s = store_new(1000);
    buf_t                     res = { 0 };
    payload_t                *pc, *pd;
    point_t                   c, d;
    size_t                    n, lost;
    int                       step;
    static const struct {
        uint64_t  add;
        int       expire;               /* the series goes first */
        double    cum, delta;
        uint64_t  cum_start, delta_start;
    } steps[] = {
        { 4, 0, 4, 4, 1000, 1000 },     /* counting since the start */
        { 3, 0, 7, 3, 1000, 1001 },     /* the same series */
        { 0, 0, 7, 0, 1000, 1002 },     /* nothing new */
        { 2, 1, 2, 2, 1003, 1003 },     /* it expired and came back */
    };

    otlp_metrics_config_defaults(&cfg);
    buf_puts(&res, "");
    cum = otlp_metrics_encoder_new(&cfg, &res, 1000);
    cfg.delta = 1;
    delta = otlp_metrics_encoder_new(&cfg, &res, 1000);

    for (step = 0; step < 4; step++) {
        if (steps[step].expire) {
            store_expire(s, 1000000);
        }
        if (steps[step].add) {
            store_add(s, FAMILY_REQUESTS, req, steps[step].add, 100, 0, 0);
        }
        pc = otlp_metrics_encode(cum, s, 1001 + step, &n, &lost);
        pd = otlp_metrics_encode(delta, s, 1001 + step, &n, &lost);
        c = otlp_point(pc, "http.server.requests", "tenant-7");
        d = otlp_point(pd, "http.server.requests", "tenant-7");

        CHECK(c.found && c.value == steps[step].cum
              && c.start == steps[step].cum_start * 1000000000ULL
              && c.time == (uint64_t) (1001 + step) * 1000000000ULL,
              "OTLP cumulative: the value and its start, push by push");
        CHECK(d.found && d.value == steps[step].delta
              && d.start == steps[step].delta_start * 1000000000ULL,
              "OTLP delta: what came since the last push");
        free_chain(pc);
        free_chain(pd);
    }

    /* a counter that went down (another sidecar's store, a reset): new
       start */
    store_free(s);
    s = store_new(1000);
    store_add(s, FAMILY_REQUESTS, req, 1, 100, 0, 0);
    pc = otlp_metrics_encode(cum, s, 1010, &n, &lost);
    c = otlp_point(pc, "http.server.requests", "tenant-7");
    CHECK(c.found && c.value == 1 && c.start == 1004 * 1000000000ULL,
          "OTLP cumulative: a count that went down starts again");
    free_chain(pc);

    otlp_metrics_encoder_free(cum);
    otlp_metrics_encoder_free(delta);
    otlp_metrics_config_free(&cfg);
    buf_free(&res);
    store_free(s);
}

int
main(void)
{
    test_usage();
    test_otlp_metrics();
    test_snapshot_and_encoding();
    test_config_and_cost();
    return unit_report("test_pushers");
}
