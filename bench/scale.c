/*
 * The sidecar at one size (bench/scale.sh runs the sizes, a process each):
 * a store of SERIES series over TENANTS tenants, filled through the
 * aggregator (aggregator_record, what ingest calls for every decoded
 * record), then what holding and serving it costs:
 *
 *   - resident memory and heap bytes per series, the store alone and with
 *     the pushers' state warm (the remote-write snapshot, the OTLP
 *     start-time table);
 *   - a scrape in each format as /metrics makes one: gzipped as it is
 *     rendered, through a window (Prometheus always asks for gzip), and
 *     without gzip, rendered whole into a fresh buffer;
 *   - a remote-write cycle: the snapshot, then WriteRequests of 2,000
 *     samples (max_samples), snappy-compressed;
 *   - an OTLP metrics push: every series into ExportMetricsServiceRequests,
 *     cumulative, the start-time table warm;
 *
 * each the minimum and median CPU time of ROUNDS runs.  Under callgrind
 * (valgrind --tool=callgrind --collect-atstart=no) each phase's first run
 * is a dump of its own, named after the phase.
 *
 * A record is one proxied request: backend-api, GET, 200, a route and a
 * tenant, one upstream attempt, sampled (so histograms keep exemplars);
 * each (route, tenant) gets RECORDS records of different durations.  Its
 * series: requests, duration, request and response body per (route,
 * tenant); upstream duration and requests per route.
 *
 * Usage: bench_scale SERIES [TENANTS [ROUNDS [RECORDS]]]
 * Prints one line of name=value pairs.
 */

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#endif
#endif
#ifndef CALLGRIND_DUMP_STATS_AT
#define CALLGRIND_TOGGLE_COLLECT
#define CALLGRIND_DUMP_STATS_AT(name)
#endif

#include "clock.h"
#include "aggregate.h"
#include "buf.h"
#include "config.h"
#include "metrics.h"
#include "otlp_metrics.h"
#include "remote_write.h"
#include "snapshot.h"
#include "store.h"

#define RW_MAX_SAMPLES  2000        /* remote_write's max_samples default */
#define MAX_ROUNDS      64

typedef struct {
    double  min;
    double  median;
} timing_t;

typedef struct {
    store_t                 *store;
    expo_format_t            format;
    buf_t                    body;
    buf_t                    zipped;
    size_t                   raw_bytes;
    size_t                   gz_bytes;
    snapshot_t               snap;
    size_t                  *idx;
    size_t                   rw_bytes;
    otlp_metrics_encoder_t  *otlp;
    size_t                   otlp_bytes;
    size_t                   otlp_points;
    int                      round;
} bench_t;

typedef void (*phase_pt)(bench_t *b);

static long
resident_bytes(void)
{
    long   pages = 0, resident = 0;
    FILE  *f = fopen("/proc/self/statm", "r");

    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) {
            resident = 0;
        }
        fclose(f);
    }
    return resident * sysconf(_SC_PAGESIZE);
}

static long
heap_bytes(void)
{
    struct mallinfo2  m = mallinfo2();

    return (long) (m.uordblks + m.hblkhd);
}

static int
by_double(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}

/* Runs a phase `rounds` times; its first run is callgrind's dump `name`. */
static timing_t
measure(const char *name, phase_pt phase, bench_t *b, int rounds)
{
    double    t[MAX_ROUNDS], t0;
    timing_t  r;
    int       i;

    for (i = 0; i < rounds; i++) {
        b->round = i;
        if (i == 0) {
            CALLGRIND_TOGGLE_COLLECT;
        }
        t0 = thread_cpu_seconds();
        phase(b);
        t[i] = thread_cpu_seconds() - t0;
        if (i == 0) {
            CALLGRIND_TOGGLE_COLLECT;
            CALLGRIND_DUMP_STATS_AT(name);
        }
    }

    qsort(t, (size_t) rounds, sizeof(double), by_double);
    r.min = t[0];
    r.median = rounds % 2 ? t[rounds / 2]
                          : (t[rounds / 2 - 1] + t[rounds / 2]) / 2;
    return r;
}

/* What /metrics does for one scrape (sidecar/exposition/http.c): a fresh
   buffer. */
static void
phase_render(bench_t *b)
{
    buf_free(&b->body);
    if (metrics_render(b->store, b->format, &b->body) != 0) {
        fprintf(stderr, "out of memory rendering\n");
        exit(1);
    }
    b->raw_bytes = b->body.len;
}

/* What /metrics does for a scrape that asks for gzip (Prometheus always
   does): rendered through a window and gzipped as it goes, fresh buffers. */
static void
phase_scrape_gzip(bench_t *b)
{
    buf_t  window = { 0 };

    buf_free(&b->zipped);
    if (metrics_render_gzip(b->store, b->format, &window, &b->zipped) != 0) {
        fprintf(stderr, "out of memory gzipping\n");
        exit(1);
    }
    b->gz_bytes = b->zipped.len;
    buf_free(&window);
}

static void
phase_snapshot(bench_t *b)
{
    if (snapshot_take(&b->snap, b->store) != 0) {
        fprintf(stderr, "out of memory taking a snapshot\n");
        exit(1);
    }
}

/* A cycle of the remote-write thread: the snapshot it keeps between
   cycles, then a WriteRequest per max_samples samples, each a buffer of
   its own as the delivery queue takes them. */
static void
phase_remote_write(bench_t *b)
{
    buf_t   body;
    size_t  i, n;

    phase_snapshot(b);
    b->idx = realloc(b->idx, sizeof(size_t) * (b->snap.n_samples + 1));
    for (i = 0; i < b->snap.n_samples; i++) {
        b->idx[i] = i;
    }

    b->rw_bytes = 0;
    for (i = 0; i < b->snap.n_samples; i += n) {
        n = b->snap.n_samples - i < RW_MAX_SAMPLES
            ? b->snap.n_samples - i : RW_MAX_SAMPLES;
        memset(&body, 0, sizeof(body));
        if (remote_write_encode(&b->snap, b->idx + i, n, &body) != 0) {
            fprintf(stderr, "out of memory encoding\n");
            exit(1);
        }
        b->rw_bytes += body.len;
        buf_free(&body);
    }
}

static void
phase_otlp(bench_t *b)
{
    payload_t  *p, *next;
    size_t      lost;

    p = otlp_metrics_encode(b->otlp, b->store, 3.0 + b->round,
                            &b->otlp_points, &lost);
    for (b->otlp_bytes = 0; p; p = next) {
        next = p->next;
        b->otlp_bytes += p->len;
        payload_free(p);
    }
}

static void
fill(aggregator_t *a, store_t *s, long series, long tenants, int records,
    long *n_records)
{
    static const uint8_t  trace[16] = { 0x4b, 0xf9, 1 }, span[8] = { 2 };
    Obs__V1__Record           r;
    Obs__V1__UpstreamAttempt  u, *ups[1] = { &u };
    char                      route[64], tenant[32];
    long                      c;
    int                       k;

    *n_records = 0;
    for (c = 0; store_size(s) < series; c++) {
        snprintf(route, sizeof(route), "/api/v1/resource%ld/{id}",
                 c / tenants);
        snprintf(tenant, sizeof(tenant), "tenant_%05ld", c % tenants);

        for (k = 0; k < records; k++) {
            obs__v1__record__init(&r);
            obs__v1__upstream_attempt__init(&u);
            r.service.data = (uint8_t *) "backend-api";
            r.service.len = 11;
            r.method.data = (uint8_t *) "GET";
            r.method.len = 3;
            r.route.data = (uint8_t *) route;
            r.route.len = strlen(route);
            r.tenant.data = (uint8_t *) tenant;
            r.tenant.len = strlen(tenant);
            r.status = 200;
            r.duration_us = 1000 + (uint64_t) ((c * 7919 + k * 104729)
                                               % 400000);
            r.response_body_bytes = 512;
            r.trace_flags = 1;
            r.trace_id.data = (uint8_t *) trace;
            r.trace_id.len = 16;
            r.span_id.data = (uint8_t *) span;
            r.span_id.len = 8;
            r.upstream_name.data = (uint8_t *) "backend";
            r.upstream_name.len = 7;
            u.address.data = (uint8_t *) "10.0.0.7:8080";
            u.address.len = 13;
            u.status = 200;
            u.response_time_us = r.duration_us - 200;
            r.n_upstreams = 1;
            r.upstreams = ups;

            aggregator_record(a, &r, 1000, 1000.0);
            (*n_records)++;
        }
    }
}

int
main(int argc, char **argv)
{
    static const char  *fmt_names[] = { "text", "openmetrics", "protobuf" };
    config_t                cfg;
    otlp_metrics_config_t   ocfg;
    bench_t                 b;
    aggregator_t           *a;
    buf_t                   resource = { 0 };
    char                    err[256];
    char                   *args[] = { "bench", "--ingest", "unix:/tmp/unused",
                                       NULL };
    long                    series, tenants, n_records, rss0, heap0, rss1;
    long                    heap1;
    int                     rounds, records, f;
    char                    name[64];
    double                  t0, fill_s;
    timing_t                t;
    struct rusage           ru;

    if (argc < 2) {
        fprintf(stderr, "usage: bench_scale SERIES [TENANTS [ROUNDS "
                        "[RECORDS]]]\n");
        return 2;
    }
    series = atol(argv[1]);
    tenants = argc > 2 ? atol(argv[2]) : 100;
    rounds = argc > 3 ? atoi(argv[3]) : 5;
    records = argc > 4 ? atoi(argv[4]) : 4;
    rounds = rounds < 1 ? 1 : rounds > MAX_ROUNDS ? MAX_ROUNDS : rounds;

    if (config_load(&cfg, 3, args, err, sizeof(err)) != CONFIG_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }

    /* caps that hold this store, as an operator of this size sets them */
    cfg.max_series = series + series / 10 + 100;
    cfg.max_tenants = tenants + 10;
    cfg.max_routes = series;

    memset(&b, 0, sizeof(b));
    rss0 = resident_bytes();
    heap0 = heap_bytes();

    b.store = store_new(cfg.max_series);
    a = aggregator_new(b.store, &cfg);

    CALLGRIND_TOGGLE_COLLECT;
    t0 = thread_cpu_seconds();
    fill(a, b.store, series, tenants, records, &n_records);
    fill_s = thread_cpu_seconds() - t0;
    CALLGRIND_TOGGLE_COLLECT;
    CALLGRIND_DUMP_STATS_AT("fill");

    rss1 = resident_bytes();
    heap1 = heap_bytes();

    printf("series=%ld tenants=%ld records=%ld fill_ns_per_record=%.0f "
           "rss_store=%ld heap_store=%ld", store_size(b.store), tenants,
           n_records, fill_s / (double) n_records * 1e9, rss1 - rss0,
           heap1 - heap0);

    /* gzipped scrapes first: what a scrape holds is then measured without
       an identity render's whole body in the peak */
    for (f = 0; f < 3; f++) {
        b.format = (expo_format_t) f;
        snprintf(name, sizeof(name), "gzip_%s", fmt_names[f]);
        t = measure(name, phase_scrape_gzip, &b, rounds);
        printf(" %s_min=%.3f %s_med=%.3f gz_bytes_%s=%zu", name,
               t.min * 1e3, name, t.median * 1e3, fmt_names[f], b.gz_bytes);
        if (f == 0) {
            printf(" rss_scrape=%ld", resident_bytes() - rss0);
        }
    }
    buf_free(&b.zipped);

    t = measure("snapshot", phase_snapshot, &b, rounds);
    printf(" samples=%zu snapshot_min=%.3f snapshot_med=%.3f",
           b.snap.n_samples, t.min * 1e3, t.median * 1e3);
    t = measure("remote_write", phase_remote_write, &b, rounds);
    printf(" remote_write_min=%.3f remote_write_med=%.3f rw_bytes=%zu",
           t.min * 1e3, t.median * 1e3, b.rw_bytes);

    otlp_metrics_config_defaults(&ocfg);
    buf_puts(&resource, "\x0a\x1a\x0a\x0cservice.name\x12\x0a\x0a\x08"
                        "gw-bench");
    b.otlp = otlp_metrics_encoder_new(&ocfg, &resource, 1);
    b.round = -1;
    phase_otlp(&b);             /* the first push fills the start times */
    t = measure("otlp_push", phase_otlp, &b, rounds);
    printf(" otlp_min=%.3f otlp_med=%.3f otlp_bytes=%zu otlp_points=%zu",
           t.min * 1e3, t.median * 1e3, b.otlp_bytes, b.otlp_points);

    getrusage(RUSAGE_SELF, &ru);
    printf(" rss_all=%ld heap_all=%ld rss_peak=%ld",
           resident_bytes() - rss0, heap_bytes() - heap0,
           ru.ru_maxrss * 1024 - rss0);

    /* scrapes without gzip: the whole body in one buffer */
    for (f = 0; f < 3; f++) {
        b.format = (expo_format_t) f;
        snprintf(name, sizeof(name), "render_%s", fmt_names[f]);
        t = measure(name, phase_render, &b, rounds);
        printf(" %s_min=%.3f %s_med=%.3f bytes_%s=%zu", name, t.min * 1e3,
               name, t.median * 1e3, fmt_names[f], b.raw_bytes);
    }
    buf_free(&b.body);
    printf("\n");
    fflush(stdout);

    otlp_metrics_encoder_free(b.otlp);
    otlp_metrics_config_free(&ocfg);
    buf_free(&resource);
    snapshot_free(&b.snap);
    free(b.idx);
    aggregator_free(a);
    store_free(b.store);
    config_free(&cfg);
    return 0;
}
