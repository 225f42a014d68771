/*
 * What the sidecar spends per record on one core with both exporters on,
 * measured through its real code: ingest_datagram() (decode + aggregate)
 * hands each datagram to the exporter, one of whose threads decodes it
 * again, once for all of them (OBS_SIDECAR_EXPORTER_THREADS sets how many),
 * and they build the JSON log line, Loki's snappy protobuf push and an OTLP
 * span per record (every record traced); the delivery thread POSTs them to
 * the receiver given (bench/exporter_floor.sh starts an nginx answering 204
 * on another core).  The figure is records per second of the process's CPU
 * time (all its threads, pinned to one core by the script), beside the same
 * for decode + aggregate alone (metrics only).
 *
 * Usage: exporter_floor RECORDS LOKI_PUSH_URL OTLP_ENDPOINT [json]
 */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "aggregate.h"
#include "config.h"
#include "exporter.h"
#include "ingest.h"
#include "store.h"

#define PER_DATAGRAM  150

/* Interns text into a column batch's symbol table. */
static uint32_t
symbol(Obs__V1__RecordColumns *c, const char *text)
{
    size_t    len = strlen(text);
    uint32_t  i, start;

    for (i = 1; i < c->n_symbol_end; i++) {
        start = c->symbol_end[i - 1];
        if (c->symbol_end[i] - start == len
            && memcmp(c->symbol_data.data + start, text, len) == 0)
        {
            return i;
        }
    }

    memcpy(c->symbol_data.data + c->symbol_data.len, text, len);
    c->symbol_data.len += len;
    c->symbol_end[c->n_symbol_end] = (uint32_t) c->symbol_data.len;
    return (uint32_t) c->n_symbol_end++;
}

/* A datagram of records like the benchmarks' load: every one sampled. */
static uint8_t *
make_datagram(size_t *len)
{
    static uint32_t         col[14][PER_DATAGRAM], ends[1024];
    static uint64_t         dur[PER_DATAGRAM], body[PER_DATAGRAM];
    static uint64_t         start[PER_DATAGRAM];
    static uint8_t          traces[16 * PER_DATAGRAM], spans[8 * PER_DATAGRAM];
    static uint8_t          symbols[65536];
    Obs__V1__Batch          batch = OBS__V1__BATCH__INIT;
    Obs__V1__BatchHeader    h = OBS__V1__BATCH_HEADER__INIT;
    Obs__V1__RecordColumns  c = OBS__V1__RECORD_COLUMNS__INIT;
    char                    path[64];
    uint8_t                *out;
    int                     i, k;

    c.symbol_data.data = symbols;
    c.symbol_end = ends;
    c.n_symbol_end = 1;

    for (i = 0; i < PER_DATAGRAM; i++) {
        snprintf(path, sizeof(path), "/api/v1/users/%d/orders", i);
        col[0][i] = symbol(&c, "GET");
        col[1][i] = symbol(&c, "/api/v1/users/{id}/orders");
        col[2][i] = symbol(&c, path);
        col[3][i] = symbol(&c, "tenant_001");
        col[4][i] = symbol(&c, "backend-api");
        col[5][i] = symbol(&c, "127.0.0.1");
        col[6][i] = symbol(&c, "wrk/4.2");
        col[7][i] = i % 50 ? 200 : 503;
        col[8][i] = symbol(&c, "http");
        dur[i] = 1000 + (uint64_t) (i * 7) % 700;
        body[i] = 12;
        start[i] = 1795543032455000000ULL + (uint64_t) i * 1000;
        col[9][i] = 1;                          /* sampled */
        col[10][i] = symbol(&c, "HTTP/1.1");
        col[11][i] = 1;                         /* one upstream attempt */
        col[12][i] = symbol(&c, "127.0.0.1:18581");
        col[13][i] = col[7][i];
        for (k = 0; k < 16; k++) {
            traces[16 * i + k] = (uint8_t) (i * 31 + k + 1);
        }
        for (k = 0; k < 8; k++) {
            spans[8 * i + k] = (uint8_t) (i * 17 + k + 1);
        }
    }

    c.count = PER_DATAGRAM;
    c.method = col[0];
    c.route = col[1];
    c.path = col[2];
    c.tenant = col[3];
    c.service = col[4];
    c.client_address = col[5];
    c.user_agent = col[6];
    c.status = col[7];
    c.scheme = col[8];
    c.duration_us = dur;
    c.response_body_bytes = body;
    c.start_time_unix_nano = start;
    c.trace_flags = col[9];
    c.protocol = col[10];
    c.upstream_attempts = col[11];
    c.attempt_address = col[12];
    c.attempt_status = col[13];
    c.attempt_response_time_us = dur;
    c.n_trace_flags = c.n_protocol = c.n_upstream_attempts =
        c.n_attempt_address = c.n_attempt_status =
        c.n_attempt_response_time_us = PER_DATAGRAM;
    c.n_method = c.n_route = c.n_path = c.n_tenant = c.n_service =
        c.n_client_address = c.n_user_agent = c.n_status = c.n_scheme =
        c.n_duration_us = c.n_response_body_bytes =
        c.n_start_time_unix_nano = PER_DATAGRAM;
    c.trace_id.data = traces;
    c.trace_id.len = sizeof(traces);
    c.span_id.data = spans;
    c.span_id.len = sizeof(spans);

    h.schema_version = 2;
    h.pid = 1;
    batch.header = &h;
    batch.columns = &c;

    *len = obs__v1__batch__get_packed_size(&batch);
    out = malloc(*len);
    obs__v1__batch__pack(&batch, out);
    return out;
}

static double
cpu_seconds(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* CPU seconds of this process's threads named name. */
static double
thread_cpu(const char *name)
{
    FILE           *f;
    DIR            *d = opendir("/proc/self/task");
    struct dirent  *t;
    char            path[300], comm[64];
    unsigned long   ut, st;
    double          total = 0;

    while (d && (t = readdir(d)) != NULL) {
        snprintf(path, sizeof(path), "/proc/self/task/%s/stat", t->d_name);
        f = fopen(path, "r");
        if (f == NULL) {
            continue;
        }
        if (fscanf(f, "%*d (%63[^)]) %*c %*d %*d %*d %*d %*d %*u %*u %*u "
                   "%*u %*u %lu %lu", comm, &ut, &st) == 3
            && strcmp(comm, name) == 0)
        {
            total += (double) (ut + st) / (double) sysconf(_SC_CLK_TCK);
        }
        fclose(f);
    }
    if (d) {
        closedir(d);
    }
    return total;
}

static void
hand(const uint8_t *bytes, size_t len, size_t records, const uint8_t *over,
    void *data)
{
    exporter_offer(data, bytes, len, records, over);
}

/* Feeds n records; with an exporter, waits until all were delivered. */
static double
run(config_t *cfg, long n, exporter_t *e, const uint8_t *dgram, size_t len)
{
    store_t        *s = store_new(cfg->max_series);
    aggregator_t   *a = aggregator_new(s, cfg);
    ingest_t       *in;
    destination_stats_t    logs, spans;
    char            err[256];
    long            sent;
    double          t0, wait_until;
    config_t        c = *cfg;

    c.n_ingest = 0;
    in = ingest_open(&c, a, err, sizeof(err));
    if (e) {
        ingest_set_datagram_hook(in, hand, e);
    }

    /* as fast as the exporter takes them: a full queue is waited for
       here (a running sidecar would shed instead) */
    t0 = cpu_seconds();
    for (sent = 0; sent < n; sent += PER_DATAGRAM) {
        while (e && exporter_backlog(e) + 1 >= (size_t)
                                               cfg->exporter.queue_datagrams)
        {
            struct timespec  ms = { 0, 5000000 };
            nanosleep(&ms, NULL);   /* the ring holds ~100 ms of work */
        }
        ingest_datagram(in, dgram, len);
    }

    wait_until = now_seconds() + 120;
    while (e && now_seconds() < wait_until) {
        exporter_stats(e, EXPORTER_LOKI, &logs);
        exporter_stats(e, EXPORTER_OTLP, &spans);
        if ((long) logs.items_sent >= n && (long) spans.items_sent >= n) {
            break;
        }
        struct timespec  ms = { 0, 5000000 };
        nanosleep(&ms, NULL);
    }
    t0 = cpu_seconds() - t0;

    if (e) {
        printf("  exporter threads: building %.2f, delivering %.2f "
               "us/record (thread CPU in 10 ms ticks)\n",
               thread_cpu("obs-export") / (double) n * 1e6,
               thread_cpu("obs-deliver") / (double) n * 1e6);
        printf("  delivered: %llu log lines, %llu spans; shed %llu; "
               "requests ok %llu + %llu\n",
               (unsigned long long) logs.items_sent,
               (unsigned long long) spans.items_sent,
               (unsigned long long) exporter_shed(e, SIGNAL_LOGS),
               (unsigned long long) logs.requests_ok,
               (unsigned long long) spans.requests_ok);
        printf("  %.2f exporter decodes a datagram (%ld threads)\n",
               (double) exporter_decodes(e) / (double) (n / PER_DATAGRAM),
               cfg->exporter.threads);
    }

    ingest_close(in);
    aggregator_free(a);
    store_free(s);
    return t0;
}

int
main(int argc, char **argv)
{
    config_t     cfg;
    delivery_t  *d;
    exporter_t  *e;
    char         err[512];
    char        *args[] = { "bench", "--ingest", "unix:/tmp/unused",
                            "--loki-url", NULL, "--otlp-endpoint", NULL,
                            NULL };
    uint8_t     *dgram;
    size_t       len;
    long         n;
    double       metrics, all;

    if (argc < 4) {
        fprintf(stderr, "usage: %s RECORDS LOKI_PUSH_URL OTLP_ENDPOINT "
                "[json]\n", argv[0]);
        return 2;
    }

    n = atol(argv[1]) / PER_DATAGRAM * PER_DATAGRAM;
    args[4] = argv[2];
    args[6] = argv[3];
    if (config_load(&cfg, 7, args, err, sizeof(err)) != CONFIG_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    cfg.exporter.loki_json = argc > 4 && strcmp(argv[4], "json") == 0;
    cfg.exporter.loki.queue_bytes = 1UL << 30;
    cfg.exporter.otlp.queue_bytes = 1UL << 30;
    cfg.exporter.loki.batch_wait_ms = 100;
    cfg.exporter.otlp.batch_wait_ms = 100;

    dgram = make_datagram(&len);

    metrics = run(&cfg, n, NULL, dgram, len);

    d = delivery_new(cfg.exporter.drain_seconds);
    e = d ? exporter_start(&cfg.exporter, d, err, sizeof(err)) : NULL;
    if (e == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    all = run(&cfg, n, e, dgram, len);
    exporter_stop(e);
    exporter_free(e);
    delivery_stop(d);
    delivery_free(d);

    printf("records:                      %ld (%zu-byte datagrams of %d)\n",
           n, len, PER_DATAGRAM);
    printf("decode + aggregate:           %.2f us CPU/record, %.0f records/s\n",
           metrics / (double) n * 1e6, (double) n / metrics);
    printf("+ log line, Loki %s push, span, delivery:\n"
           "                              %.2f us CPU/record, %.0f records/s"
           " of one core\n", cfg.exporter.loki_json ? "JSON+gzip" :
           "protobuf+snappy", all / (double) n * 1e6, (double) n / all);

    free(dgram);
    config_free(&cfg);
    return 0;
}
