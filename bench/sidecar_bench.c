/*
 * obs-sidecar benchmark, on one core:
 *   - aggregation alone: decoded records into the store, records/s;
 *   - decode + aggregate: protobuf-c datagrams through ingest_datagram(),
 *     in column form (what the module sends) and in row form;
 *   - scrape time (text, OpenMetrics, protobuf) at 10k and 100k series;
 *   - peak RSS with 100k series;
 *   - the status page at 100k series: a snapshot's CPU time, /status.json's,
 *     and how long one record waits for a shard while a snapshot runs.
 *
 * Usage: sidecar_bench [records]
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/resource.h>
#include <time.h>

#include "clock.h"
#include "aggregate.h"
#include "buf.h"
#include "config.h"
#include "ingest.h"
#include "metrics.h"
#include "status.h"
#include "store.h"

#define ROUTES    50
#define TENANTS   20

static void
make_record(Obs__V1__Record *r, char *route, char *tenant, int i,
    uint8_t *trace, uint8_t *span)
{
    static const char  *methods[] = { "GET", "POST", "PUT", "DELETE" };
    static const unsigned  codes[] = { 200, 200, 200, 201, 404, 503 };

    obs__v1__record__init(r);
    snprintf(route, 64, "/api/v1/resource%d/{id}", i % ROUTES);
    snprintf(tenant, 32, "tenant_%03d", (i / ROUTES) % TENANTS);

    r->service.data = (uint8_t *) (i % 3 ? "backend-api" : "ml-engine");
    r->service.len = strlen((char *) r->service.data);
    r->route.data = (uint8_t *) route;
    r->route.len = strlen(route);
    r->method.data = (uint8_t *) methods[i % 4];
    r->method.len = strlen(methods[i % 4]);
    r->tenant.data = (uint8_t *) tenant;
    r->tenant.len = strlen(tenant);
    r->status = codes[i % 6];
    r->duration_us = (uint64_t) (1000 + (i * 7919) % 400000);
    r->response_body_bytes = 512;
    r->trace_flags = (i % 10) == 0;
    r->trace_id.data = trace;
    r->trace_id.len = 16;
    r->span_id.data = span;
    r->span_id.len = 8;
}

static void
bench_aggregation(config_t *cfg, long n)
{
    store_t          *s = store_new(cfg->max_series);
    aggregator_t     *a = aggregator_new(s, cfg);
    Obs__V1__Record  *recs;
    char            (*routes)[64], (*tenants)[32];
    uint8_t           trace[16] = { 1 }, span[8] = { 2 };
    long              i, pool = 4096;
    double            t0, t;

    recs = calloc((size_t) pool, sizeof(*recs));
    routes = calloc((size_t) pool, 64);
    tenants = calloc((size_t) pool, 32);
    for (i = 0; i < pool; i++) {
        make_record(&recs[i], routes[i], tenants[i], (int) i, trace, span);
    }

    t0 = now_seconds();
    for (i = 0; i < n; i++) {
        aggregator_record(a, &recs[i % pool], 1000, 1000.0);
    }
    t = now_seconds() - t0;

    printf("aggregation alone:      %.0f records/s (%ld records, %ld series, "
           "%.0f ns/record)\n", (double) n / t, n, store_size(s),
           t / (double) n * 1e9);

    free(recs);
    free(routes);
    free(tenants);
    aggregator_free(a);
    store_free(s);
}

/* Interns text into a columns batch's symbol table (bench set-up only). */
static uint32_t
symbol_of(Obs__V1__RecordColumns *c, ProtobufCBinaryData t)
{
    uint32_t  i, start;

    if (t.len == 0) {
        return 0;
    }

    for (i = 1; i < c->n_symbol_end; i++) {
        start = c->symbol_end[i - 1];
        if (c->symbol_end[i] - start == t.len
            && memcmp(c->symbol_data.data + start, t.data, t.len) == 0)
        {
            return i;
        }
    }

    memcpy(c->symbol_data.data + c->symbol_data.len, t.data, t.len);
    c->symbol_data.len += t.len;
    c->symbol_end[c->n_symbol_end] = (uint32_t) c->symbol_data.len;
    return (uint32_t) c->n_symbol_end++;
}

/* Tells whether len bytes at p are all zero. */
static int
all_zero(const void *p, size_t len)
{
    const uint8_t  *b = p;
    size_t          i;

    for (i = 0; i < len; i++) {
        if (b[i] != 0) {
            return 0;
        }
    }

    return 1;
}

/*
 * The same records in column form, as the module sends them: every column
 * of proto/obs/v1/columns.def, filled record after record as the module
 * does; then a column whose entries are all default is left out, as
 * record.proto allows.
 */
static void
columns_from_rows(Obs__V1__RecordColumns *c, Obs__V1__Record **in,
    size_t n)
{
    size_t            i, k, n_record = n;
    Obs__V1__Record  *record;
#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
    Obs__V1__##Row   *group;                                                 \
    size_t            n_##group = 0;
#include "obs/v1/columns.def"

    obs__v1__record_columns__init(c);
    c->count = (uint32_t) n;
    c->symbol_data.data = malloc(65536);
    c->symbol_end = calloc(8192, sizeof(uint32_t));
    c->n_symbol_end = 1;

#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
    for (i = 0; i < n; i++) {                                                 \
        n_##group += in[i]->n_##rows;                                       \
    }
#include "obs/v1/columns.def"

#define OBS_U32(group, column, field, required)                               \
    c->column = calloc(n_##group + 1, sizeof(uint32_t));
#define OBS_U64(group, column, field, required)                               \
    c->column = calloc(n_##group + 1, sizeof(uint64_t));
#define OBS_BOOL(group, column, field)                                        \
    c->column = calloc(n_##group + 1, sizeof(uint32_t));
#define OBS_SYMBOL(group, column, field, text, max)                           \
    c->column = calloc(n_##group + 1, sizeof(uint32_t));
#define OBS_ID(group, column, field, width)                                   \
    c->column.data = calloc(n_##group + 1, width);
#include "obs/v1/columns.def"

    for (i = 0; i < n; i++) {
        record = in[i];

#define OBS_U32(group, column, field, required)                               \
        c->column[c->n_##column++] = (uint32_t) group->field;
#define OBS_U64(group, column, field, required)                               \
        c->column[c->n_##column++] = group->field;
#define OBS_BOOL(group, column, field)                                        \
        c->column[c->n_##column++] = group->field != 0;
#define OBS_SYMBOL(group, column, field, text, max)                           \
        c->column[c->n_##column++] = symbol_of(c, group->field);
#define OBS_ID(group, column, field, width)                                   \
        if (group->field.len == (width)) {                                    \
            memcpy(c->column.data + c->column.len, group->field.data, width); \
        }                                                                     \
        c->column.len += (width);
#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
        for (k = 0; k < record->n_##rows; k++) {                              \
            group = record->rows[k];
#define OBS_GROUP_END(group)                                                  \
        }
#include "obs/v1/columns.def"
    }

#define OBS_U32(group, column, field, required)                               \
    c->n_##column = (required)                                                \
                    || !all_zero(c->column, n_##group * sizeof(uint32_t))     \
                    ? n_##group : 0;
#define OBS_U64(group, column, field, required)                               \
    c->n_##column = (required)                                                \
                    || !all_zero(c->column, n_##group * sizeof(uint64_t))     \
                    ? n_##group : 0;
#define OBS_BOOL(group, column, field)                                        \
    c->n_##column = all_zero(c->column, n_##group * sizeof(uint32_t))         \
                    ? 0 : n_##group;
#define OBS_SYMBOL(group, column, field, text, max)                           \
    c->n_##column = all_zero(c->column, n_##group * sizeof(uint32_t))         \
                    ? 0 : n_##group;
#define OBS_ID(group, column, field, width)                                   \
    c->column.len = all_zero(c->column.data, c->column.len)                   \
                    ? 0 : c->column.len;
#include "obs/v1/columns.def"
}

static void
bench_decode(config_t *cfg, long n, int columns)
{
    store_t          *s = store_new(cfg->max_series);
    aggregator_t     *a = aggregator_new(s, cfg);
    ingest_t         *in;
    Obs__V1__Batch    batch = OBS__V1__BATCH__INIT;
    Obs__V1__BatchHeader  h = OBS__V1__BATCH_HEADER__INIT;
    Obs__V1__Record   recs[150], *ptrs[150];
    Obs__V1__RecordColumns  cols;
    char              routes[150][64], tenants[150][32], err[256];
    uint8_t           trace[16] = { 1 }, span[8] = { 2 }, *dgram;
    size_t            len;
    long              i, sent = 0;
    double            t0, t;
    config_t          c = *cfg;

    c.n_ingest = 0;
    in = ingest_open(&c, a, err, sizeof(err));

    for (i = 0; i < 150; i++) {
        make_record(&recs[i], routes[i], tenants[i], (int) i * 13, trace,
                    span);
        recs[i].path = recs[i].route;
        recs[i].user_agent.data = (uint8_t *) "bench/1.0";
        recs[i].user_agent.len = 9;
        recs[i].client_address.data = (uint8_t *) "10.0.0.1";
        recs[i].client_address.len = 8;
        ptrs[i] = &recs[i];
    }

    h.schema_version = 2;
    h.pid = 1;
    batch.header = &h;

    if (columns) {
        columns_from_rows(&cols, ptrs, 150);
        batch.columns = &cols;

    } else {
        batch.n_records = 150;
        batch.records = ptrs;
    }

    len = obs__v1__batch__get_packed_size(&batch);
    dgram = malloc(len);
    obs__v1__batch__pack(&batch, dgram);

    t0 = now_seconds();
    while (sent < n) {
        ingest_datagram(in, dgram, len);
        sent += 150;
    }
    t = now_seconds() - t0;

    printf("decode + aggregate:     %.0f records/s (%zu-byte datagrams of "
           "150 records, %s form)\n", (double) sent / t, len,
           columns ? "column" : "row");

    free(dgram);
    ingest_close(in);
    aggregator_free(a);
    store_free(s);
}

/*
 * Records until the store holds `series` series: a new route per record
 * (3 series each: requests, duration, two body counters sharing labels),
 * or with by_tenant 50 routes and a new tenant every 50 records.
 */

static void
fill(aggregator_t *a, store_t *s, long series, int by_tenant)
{
    Obs__V1__Record   r;
    char              route[64], tenant[32];
    uint8_t           trace[16] = { 1 }, span[8] = { 2 };
    long              i;

    for (i = 0; store_size(s) < series; i++) {
        make_record(&r, route, tenant, (int) i, trace, span);
        if (by_tenant) {
            snprintf(tenant, sizeof(tenant), "tenant_%ld", i / 50);
            r.tenant.len = strlen(tenant);
        } else {
            snprintf(route, sizeof(route), "/api/v1/r%ld/{id}", i);
            r.route.len = strlen(route);
        }
        aggregator_record(a, &r, 1000, 1000.0);
    }
}

static void
bench_scrape(config_t *cfg, long series)
{
    store_t          *s = store_new(series * 2);
    aggregator_t     *a;
    buf_t             out = { 0 };
    config_t          c = *cfg;
    int               f;
    double            t0;
    struct rusage     ru;
    static const char  *names[] = { "text", "openmetrics", "protobuf" };

    c.max_tenants = series;
    c.max_routes = series;
    c.max_series = series * 2;
    a = aggregator_new(s, &c);

    fill(a, s, series, 0);

    /* the first scrape of a format also sizes its buffer; later ones
       start from the last size, as a running sidecar does */
    for (f = 0; f < 3; f++) {
        double  first, again;

        buf_free(&out);
        t0 = now_seconds();
        metrics_render(s, (expo_format_t) f, &out);
        first = now_seconds() - t0;

        buf_free(&out);
        t0 = now_seconds();
        metrics_render(s, (expo_format_t) f, &out);
        again = now_seconds() - t0;

        printf("scrape %6ld series %-11s %7.1f ms (first: %.1f ms), "
               "%zu bytes\n", store_size(s), names[f], again * 1e3,
               first * 1e3, out.len);
    }

    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS so far:        %.1f MiB\n", (double) ru.ru_maxrss / 1024);

    buf_free(&out);
    aggregator_free(a);
    store_free(s);
}

static double
thread_cpu(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static const char *
no_arg(void *ctx, const char *name)
{
    return strstr(name, "_limit") && ctx ? "100" : NULL;
}

#define LAT_MAX  4000000

typedef struct {
    status_t  *st;
    int        done;
} snapper_t;

static int
by_double(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}

static void *
snap_loop(void *data)
{
    snapper_t  *sn = data;
    int         i;

    for (i = 0; i < 20; i++) {
        status_take(sn->st, 2000.0 + i * 5);
    }
    __atomic_store_n(&sn->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/*
 * The status page over a store of `series` series: by_tenant fills it
 * with 50 routes and as many tenants as it takes (the usual shape), else
 * with a new route per record (the most rows a snapshot can meet).
 */

static void
bench_status(config_t *cfg, long series, int by_tenant)
{
    store_t          *s = store_new(series * 2);
    aggregator_t     *a;
    status_t         *st;
    Obs__V1__Record   r;
    char              route[64], tenant[32];
    uint8_t           trace[16] = { 1 }, span[8] = { 2 };
    buf_t             out = { 0 };
    config_t          c = *cfg;
    char              err[128];
    long              n;
    double            t0, take = 1e9, render = 1e9, render_max = 1e9, t;
    double            w0, rate, rate_idle, p999_idle, *lat;
    snapper_t         sn;
    pthread_t         thread;
    int               k;

    c.max_tenants = series;
    c.max_routes = series;
    c.max_series = series * 2;
    a = aggregator_new(s, &c);
    st = status_new(&(status_sources_t) { s, aggregator_business(a), NULL,
                                          NULL, aggregator_active_requests(a) },
                    &c);

    fill(a, s, series, by_tenant);

    /* best of 5: the machine is shared */
    for (k = 0; k < 5; k++) {
        t0 = thread_cpu();
        status_take(st, 1000.0 + k * 5);
        t = thread_cpu() - t0;
        take = t < take ? t : take;

        buf_reset(&out);
        t0 = thread_cpu();
        status_render(st, no_arg, NULL, &out, err, sizeof(err));
        t = thread_cpu() - t0;
        render = t < render ? t : render;

        buf_reset(&out);
        t0 = thread_cpu();
        status_render(st, no_arg, &out, &out, err, sizeof(err));
        t = thread_cpu() - t0;
        render_max = t < render_max ? t : render_max;
    }

    /* one record at a time, alone and while snapshots run on another
       thread: the rate, and the 99.9th percentile and worst single wait
       (on a shared machine the worst is mostly the scheduler's) */
    lat = malloc(sizeof(double) * LAT_MAX);
    t0 = now_seconds();
    for (n = 0; n < 200000; n++) {
        make_record(&r, route, tenant, (int) n, trace, span);
        w0 = now_seconds();
        aggregator_record(a, &r, 1000, 1000.0);
        lat[n] = now_seconds() - w0;
    }
    rate_idle = (double) n / (now_seconds() - t0);
    qsort(lat, (size_t) n, sizeof(double), by_double);
    p999_idle = lat[n * 999 / 1000];

    sn.st = st;
    sn.done = 0;
    t0 = now_seconds();
    pthread_create(&thread, NULL, snap_loop, &sn);
    for (n = 0; !__atomic_load_n(&sn.done, __ATOMIC_ACQUIRE); n++) {
        make_record(&r, route, tenant, (int) n, trace, span);
        w0 = now_seconds();
        aggregator_record(a, &r, 1000, 1000.0);
        lat[n % LAT_MAX] = now_seconds() - w0;
    }
    rate = (double) n / (now_seconds() - t0);
    pthread_join(thread, NULL);
    n = n < LAT_MAX ? n : LAT_MAX;
    qsort(lat, (size_t) n, sizeof(double), by_double);

    printf("status %6ld series, %-9s snapshot %5.1f ms CPU, status.json "
           "%.2f ms (%zu bytes; 100 rows each: %.2f ms)\n"
           "       ingest alone %.2f M records/s (p99.9 wait %.1f us), "
           "during snapshots %.2f M/s (p99.9 %.1f us, worst %.2f ms)\n",
           store_size(s), by_tenant ? "tenants:" : "routes:", take * 1e3,
           render * 1e3, out.len, render_max * 1e3, rate_idle / 1e6,
           p999_idle * 1e6, rate / 1e6, lat[n * 999 / 1000] * 1e6,
           lat[n - 1] * 1e3);
    free(lat);

    buf_free(&out);
    status_free(st);
    aggregator_free(a);
    store_free(s);
}

int
main(int argc, char **argv)
{
    config_t  cfg;
    char      err[256];
    char     *args[] = { "bench", "--ingest", "unix:/tmp/unused", NULL };
    long      n = argc > 1 ? atol(argv[1]) : 5000000;

    if (config_load(&cfg, 3, args, err, sizeof(err)) != CONFIG_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }

    bench_aggregation(&cfg, n);
    bench_decode(&cfg, n / 2, 1);
    bench_decode(&cfg, n / 2, 0);
    bench_scrape(&cfg, 10000);
    bench_scrape(&cfg, 100000);
    bench_status(&cfg, 100000, 1);
    bench_status(&cfg, 100000, 0);

    config_free(&cfg);
    return 0;
}
