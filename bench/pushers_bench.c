/*
 * What the pushers cost, on one core, as ratios to a text scrape of the same
 * store in the same run: the remote-write snapshot (the part that holds the
 * shard locks, as a scrape does), snapshot + WriteRequest encoding +
 * snappy, the ClickHouse usage collection, and an OTLP metrics push (every
 * series encoded into ExportMetricsServiceRequests, the start-time table
 * kept; cumulative, and gzip'd as OTEL_EXPORTER_OTLP_COMPRESSION=gzip
 * would), at 10k and 100k series.
 *
 * Usage: pushers_bench [rounds]
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "metrics.h"
#include "otlp_metrics.h"
#include "remote_write.h"
#include "snapshot.h"
#include "store.h"
#include "usage.h"

static const double  bounds[] = {
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10
};

/* Counters and histograms in the proportions the aggregator makes. */

static void
fill(store_t *s, long series)
{
    char         route[64], tenant[32], code[8];
    const char  *req[5], *dur[4], *body[3];
    long         i;

    for (i = 0; store_size(s) < series; i++) {
        snprintf(route, sizeof(route), "/api/v1/resource%ld/{id}", i % 500);
        snprintf(tenant, sizeof(tenant), "tenant_%03ld", (i / 500) % 1000);
        snprintf(code, sizeof(code), "%d", i % 7 ? 200 : 503);
        req[0] = dur[0] = body[0] = i % 3 ? "backend-api" : "ml-engine";
        req[1] = dur[1] = body[1] = route;
        req[2] = dur[2] = "GET";
        req[3] = code;
        req[4] = dur[3] = body[2] = tenant;
        store_add(s, FAMILY_REQUESTS, req, 1, 1, 0, 0);
        store_observe(s, FAMILY_DURATION, dur, bounds, 14, 0.042, NULL, NULL,
                      1, 1, 0, 0);
        store_add(s, FAMILY_RESPONSE_BODY, body, 100, 1, 0, 0);
    }
}

static void
no_row(const usage_row_t *row, void *data)
{
    (void) row;
    (*(long *) data)++;
}

/* One OTLP push of everything (the state table warm after the first), in
   seconds; *bytes is its size on the wire. */
static double
otlp_push(store_t *s, int rounds, int gzip, size_t *bytes)
{
    otlp_metrics_config_t    cfg;
    otlp_metrics_encoder_t  *e;
    buf_t                    res = { 0 };
    payload_t               *p, *next;
    size_t                   n, lost;
    double                   t0, t = 0;
    int                      r;

    otlp_metrics_config_defaults(&cfg);
    cfg.gzip = gzip;
    buf_puts(&res, "\x0a\x1a\x0a\x0cservice.name\x12\x0a\x0a\x08"
                   "gw-bench");
    e = otlp_metrics_encoder_new(&cfg, &res, 1);

    for (r = 0; r <= rounds; r++) {
        t0 = now_seconds();
        p = otlp_metrics_encode(e, s, 2 + r, &n, &lost);
        if (r > 0) {
            t += now_seconds() - t0;
        }
        for (*bytes = 0; p; p = next) {
            next = p->next;
            *bytes += p->len;
            payload_free(p);
        }
    }

    otlp_metrics_encoder_free(e);
    otlp_metrics_config_free(&cfg);
    buf_free(&res);
    return t / rounds;
}

static void
run(long series, int rounds)
{
    store_t     *s = store_new(series * 2);
    snapshot_t   snap;
    buf_t        out = { 0 }, body = { 0 };
    usage_t     *u = usage_new();
    size_t      *idx, i;
    double       t0, text, take, encode, collect, otlp, otlp_gz;
    size_t       otlp_bytes, otlp_gz_bytes;
    long         rows = 0;
    int          r;

    memset(&snap, 0, sizeof(snap));
    fill(s, series);

    t0 = now_seconds();
    for (r = 0; r < rounds; r++) {
        buf_reset(&out);
        metrics_render(s, EXPO_TEXT, &out);
    }
    text = (now_seconds() - t0) / rounds;

    t0 = now_seconds();
    for (r = 0; r < rounds; r++) {
        snapshot_take(&snap, s);
    }
    take = (now_seconds() - t0) / rounds;

    idx = malloc(sizeof(size_t) * snap.n_samples);
    for (i = 0; i < snap.n_samples; i++) {
        idx[i] = i;
    }
    t0 = now_seconds();
    for (r = 0; r < rounds; r++) {
        snapshot_take(&snap, s);
        buf_reset(&body);
        for (i = 0; i < snap.n_samples; i += 2000) {
            remote_write_encode(&snap, idx + i,
                                snap.n_samples - i < 2000
                                ? snap.n_samples - i : 2000, &body);
        }
    }
    encode = (now_seconds() - t0) / rounds;

    t0 = now_seconds();
    for (r = 0; r < rounds; r++) {
        usage_collect(u, s, no_row, &rows);
    }
    collect = (now_seconds() - t0) / rounds;

    otlp = otlp_push(s, rounds, 0, &otlp_bytes);
    otlp_gz = otlp_push(s, rounds, 1, &otlp_gz_bytes);

    printf("%7ld series, %zu samples: text scrape %.1f ms; snapshot %.2fx; "
           "snapshot + encode + snappy %.2fx (%.1f bytes/sample); "
           "usage collection %.2fx; OTLP metrics push %.2fx (%.1f MB), "
           "gzip'd %.2fx (%.1f MB)\n", store_size(s), snap.n_samples,
           text * 1e3, take / text, encode / text,
           (double) body.len / (double) snap.n_samples, collect / text,
           otlp / text, otlp_bytes / 1e6, otlp_gz / text,
           otlp_gz_bytes / 1e6);

    free(idx);
    buf_free(&out);
    buf_free(&body);
    snapshot_free(&snap);
    usage_free(u);
    store_free(s);
}

int
main(int argc, char **argv)
{
    int  rounds = argc > 1 ? atoi(argv[1]) : 5;

    run(10000, rounds);
    run(100000, rounds > 1 ? rounds / 2 : 1);
    return 0;
}
