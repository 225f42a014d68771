/*
 * The least the exporters' required formats cost per record, on one core,
 * with nothing else running: what any implementation of issue #4's Loki
 * push (JSON built with jansson, gzip) and OTLP/HTTP (protobuf-c) must
 * spend, measured with the exporter's own builders.
 *
 *   1. the JSON log line: log_line() and its compact dump (jansson);
 *   2. the Loki push body of a full batch, dumped by jansson;
 *   3. gzip (zlib level 1, the fastest) of that body;
 *   4. one SERVER span: spans_build() and its share of the packed request.
 *
 * Each is reported in microseconds per record; bench/exporter_cost.sh gives
 * nginx's CPU per request to compare with.  Usage: exporter_floor [records]
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "clock.h"
#include "build.h"

#define BATCH  2000

/* A record like those the benchmarks' load produces. */
static void
make_record(Obs__V1__Record *r, Obs__V1__UpstreamAttempt *a,
    Obs__V1__UpstreamAttempt **ap, char *path, uint8_t *ids, int i)
{
    obs__v1__record__init(r);
    obs__v1__upstream_attempt__init(a);

    snprintf(path, 64, "/api/v1/users/%d/orders", i);

#define TEXT(f, s)  (r->f.data = (uint8_t *) (s), r->f.len = strlen(s))
    TEXT(method, "GET");
    TEXT(route, "/api/v1/users/{id}/orders");
    TEXT(path, path);
    TEXT(tenant, "tenant_001");
    TEXT(service, "backend-api");
    TEXT(client_address, "127.0.0.1");
    TEXT(user_agent, "wrk");
    TEXT(scheme, "http");
    TEXT(server_address, "127.0.0.1:18580");
    TEXT(protocol, "HTTP/1.1");
#undef TEXT

    r->start_time_unix_nano = 1795543032455000000ULL + (uint64_t) i * 1000;
    r->duration_us = 1000 + (uint64_t) (i % 700);
    r->status = 200;
    r->request_bytes = 120;
    r->response_bytes = 250;
    r->response_body_bytes = 12;
    r->server_port = 18580;
    r->trace_flags = 3;

    ids[0] = (uint8_t) i;
    ids[1] = (uint8_t) (i >> 8);
    r->trace_id.data = ids;
    r->trace_id.len = 16;
    r->span_id.data = ids + 16;
    r->span_id.len = 8;

    a->address.data = (uint8_t *) "127.0.0.1:18581";
    a->address.len = 15;
    a->status = 200;
    a->response_time_us = 1000;
    ap[0] = a;
    r->n_upstreams = 1;
    r->upstreams = ap;
}

int
main(int argc, char **argv)
{
    static Obs__V1__Record           recs[BATCH];
    static Obs__V1__UpstreamAttempt  atts[BATCH], *aps[BATCH];
    static char                      paths[BATCH][64];
    static uint8_t                   ids[BATCH][24];
    static otlp_span_t              *spans[BATCH * 2];
    exporter_config_t                cfg;
    json_t                          *line, *root, *values, *entry;
    char                            *text, *body, ts[32];
    long                             n, i, rounds;
    size_t                           body_len, packed;
    double                           t, t_line, t_body, t_gzip, t_span;
    uLongf                           zlen;
    unsigned char                   *z;
    z_stream                         zs;
    arena_t                         *arena;
    otlp_request_t                  *req;
    uint8_t                         *buf;

    n = argc > 1 ? atol(argv[1]) : 200000;
    rounds = (n + BATCH - 1) / BATCH;
    n = rounds * BATCH;

    for (i = 0; i < BATCH; i++) {
        memset(ids[i], 0x5a, sizeof(ids[i]));
        make_record(&recs[i], &atts[i], &aps[i], paths[i], ids[i], (int) i);
    }

    exporter_config_defaults(&cfg);

    /* 1. log lines */
    t = now_seconds();
    for (i = 0; i < n; i++) {
        line = log_line(&recs[i % BATCH], "backend-api", "gateway-1");
        text = json_dumps(line, JSON_COMPACT);
        json_decref(line);
        free(text);
    }
    t_line = (now_seconds() - t) / (double) n;

    /* 2. the push body of one batch: [[ts, line, {metadata}], ...] */
    root = json_object();
    values = json_array();
    for (i = 0; i < BATCH; i++) {
        line = log_line(&recs[i], "backend-api", "gateway-1");
        text = json_dumps(line, JSON_COMPACT);
        json_decref(line);
        snprintf(ts, sizeof(ts), "%llu",
                 (unsigned long long) recs[i].start_time_unix_nano);
        entry = json_pack("[s,s,{s:s,s:s}]", ts, text, "trace_id",
                          "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a", "tenant_id",
                          "tenant_001");
        json_array_append_new(values, entry);
        free(text);
    }
    json_object_set_new(root, "streams", json_pack("[{s:{s:s,s:s,s:s},s:O}]",
                        "stream", "service", "backend-api", "level", "INFO",
                        "host", "gateway-1", "values", values));
    json_decref(values);

    t = now_seconds();
    body = NULL;
    for (i = 0; i < rounds; i++) {
        free(body);
        body = json_dumps(root, JSON_COMPACT);
    }
    t_body = (now_seconds() - t) / (double) n;
    body_len = strlen(body);
    json_decref(root);

    /* 3. gzip, level 1 */
    zlen = compressBound(body_len) + 64;
    z = malloc(zlen);
    t = now_seconds();
    for (i = 0; i < rounds; i++) {
        memset(&zs, 0, sizeof(zs));
        deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
        zs.next_in = (Bytef *) body;
        zs.avail_in = (uInt) body_len;
        zs.next_out = z;
        zs.avail_out = (uInt) zlen;
        deflate(&zs, Z_FINISH);
        deflateEnd(&zs);
    }
    t_gzip = (now_seconds() - t) / (double) n;

    /* 4. spans: built and packed, a batch at a time */
    t = now_seconds();
    packed = 0;
    for (i = 0; i < rounds; i++) {
        long  k, m = 0;

        arena = arena_new();
        for (k = 0; k < BATCH; k++) {
            m += spans_build(arena, &recs[k], "backend-api", spans + m);
        }
        req = spans_request(arena, &cfg, spans, (size_t) m);
        packed = otlp_request_size(req);
        buf = malloc(packed);
        otlp_request_pack(req, buf);
        free(buf);
        arena_free(arena);
    }
    t_span = (now_seconds() - t) / (double) n;

    printf("records:                 %ld (batches of %d)\n", n, BATCH);
    printf("log line, jansson:       %.2f us/record\n", t_line * 1e6);
    printf("push body, jansson dump: %.2f us/record (%zu bytes/entry)\n",
           t_body * 1e6, body_len / BATCH);
    printf("gzip level 1:            %.2f us/record (%.1fx smaller)\n",
           t_gzip * 1e6, (double) body_len / (double) zs.total_out);
    printf("span, protobuf-c:        %.2f us/record (%zu bytes/span)\n",
           t_span * 1e6, packed / BATCH);
    printf("floor:                   %.2f us/record\n",
           (t_line + t_body + t_gzip + t_span) * 1e6);

    free(body);
    free(z);
    exporter_config_free(&cfg);
    return 0;
}
