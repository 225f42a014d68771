/*
 * The exporter: batches built on the ingest thread, sealed, compressed and
 * delivered on the exporter's own thread.  See exporter.h.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "build.h"
#include "columns.h"
#include "hash.h"
#include "queue.h"
#include "sink.h"
#include "text.h"

#define MAX_LOKI_BATCHES   64          /* open per-tenant batches */
#define LOKI_ENTRY_EXTRA   96          /* timestamp, metadata, framing */
#define TICK_MS            50
#define DECODE_ARENA       (8 * 1024 * 1024)

typedef struct loki_batch {
    struct loki_batch  *next;
    char                org[128];
    json_t             *streams;       /* "service\x1flevel" -> values[] */
    size_t              bytes;
    size_t              items;
    double              opened;
} loki_batch_t;

typedef struct span_batch {
    struct span_batch  *next;
    arena_t            *arena;
    otlp_span_t       **spans;
    size_t              n;
    size_t              cap;
    double              opened;
} span_batch_t;

typedef struct {
    unsigned char       *base;
    size_t               used;
    size_t               size;
} decode_arena_t;

typedef struct {
    exporter_t          *e;
    int                  index;
    pthread_t            thread;
    decode_arena_t       arena;
    ProtobufCAllocator   allocator;
} encoder_t;

struct exporter {
    exporter_config_t    cfg;
    dgram_queue_t       *queue;
    encoder_t           *encoders;
    int                  n_encoders;
    atomic_ullong        shed[SIGNALS];
    pthread_t            thread;
    int                  started;
    pthread_mutex_t      lock;
    int                  stopping;
    CURLM               *multi;
    sink_t               sinks[EXPORTER_SINKS];

    /* under lock: what the ingest thread fills, and what is sealed */
    loki_batch_t        *open_logs[MAX_LOKI_BATCHES];
    int                  n_open_logs;
    loki_batch_t        *sealed_logs, **sealed_logs_tail;
    span_batch_t        *open_spans;
    span_batch_t        *sealed_spans, **sealed_spans_tail;
    sink_stats_t         published[EXPORTER_SINKS];
};

const char *const  exporter_sink_names[EXPORTER_SINKS] = { "loki", "otlp" };
const char *const  exporter_drop_names[DROP_REASONS] = {
    "queue_full", "spool_full", "rejected", "shutdown"
};
const char *const  exporter_signal_names[SIGNALS] = { "logs", "traces" };

static void *exporter_main(void *data);
static void *encoder_main(void *data);
static void encoder_datagram(encoder_t *c, const uint8_t *data, size_t len);
static int encoder_owns(const encoder_t *c, const Obs__V1__Record *r);
static void exporter_record(exporter_t *e, const Obs__V1__Record *r);
static void *decode_alloc(void *data, size_t size);
static void decode_free(void *data, void *p);
static void exporter_seal_due(exporter_t *e, double now, int all);
static void exporter_ship_logs(exporter_t *e, loki_batch_t *b);
static void exporter_ship_spans(exporter_t *e, span_batch_t *b);
static void exporter_deliver(exporter_t *e, double now);
static void exporter_write_lines(sink_t *s, loki_batch_t *b);
typedef struct {
    z_stream        z;
    unsigned char  *out;
    size_t          cap;
} gzip_stream_t;

static int gzip_open(gzip_stream_t *g, size_t expect);
static int gzip_write(gzip_stream_t *g, const void *data, size_t len,
    int finish);
static int gzip_dump(const char *buffer, size_t size, void *data);
static payload_t *gzip_close(gzip_stream_t *g, int ok, size_t items,
    const char *org);
static payload_t *payload_gzip(const void *data, size_t len, size_t items,
    const char *org);
static payload_t *payload_line(const char *text, size_t len, size_t items);
static loki_batch_t *logs_batch(exporter_t *e, const char *org, double now);
static void logs_seal(exporter_t *e, int i);
static int span_keep(const exporter_t *e, const Obs__V1__Record *r);
static double now_seconds(void);
static char *dup_or_null(const char *s);

void
exporter_config_defaults(exporter_config_t *cfg)
{
    const char  *env;
    char         host[256] = "localhost";
    int          i;

    memset(cfg, 0, sizeof(*cfg));

    for (i = 0; i < EXPORTER_SINKS; i++) {
        sink_config_t  *s = i == EXPORTER_LOKI ? &cfg->loki : &cfg->otlp;

        s->batch_bytes = 1024 * 1024;
        s->batch_items = 512;
        s->batch_wait_ms = 1000;
        s->timeout_ms = 10000;
        s->queue_bytes = 32 * 1024 * 1024;
        s->spool_bytes = 0;
    }

    gethostname(host, sizeof(host) - 1);
    cfg->gateway_host = strdup(host);
    cfg->slow_ms = 1000;
    cfg->drain_seconds = 10;
    cfg->logs = 1;
    cfg->traces = 1;
    cfg->threads = 1;
    cfg->queue_datagrams = 256;

    env = getenv("OTEL_SERVICE_NAME");
    cfg->gateway_name = strdup(env && *env ? env : "obs-gateway");
    cfg->resource_attributes = dup_or_null(getenv("OTEL_RESOURCE_ATTRIBUTES"));
}

void
exporter_config_free(exporter_config_t *cfg)
{
    int  i, h;

    for (i = 0; i < EXPORTER_SINKS; i++) {
        sink_config_t  *s = i == EXPORTER_LOKI ? &cfg->loki : &cfg->otlp;

        free(s->url);
        free(s->file);
        for (h = 0; h < s->n_headers; h++) {
            free(s->headers[h]);
        }
        free(s->basic_user);
        free(s->basic_password);
        free(s->bearer_token);
        free(s->ca_file);
        free(s->cert_file);
        free(s->key_file);
        free(s->spool_dir);
    }
    free(cfg->org_id);
    free(cfg->gateway_name);
    free(cfg->gateway_host);
    free(cfg->resource_attributes);
    memset(cfg, 0, sizeof(*cfg));
}

exporter_t *
exporter_start(const exporter_config_t *cfg, char *err, size_t errlen)
{
    exporter_t  *e;
    encoder_t   *c;
    int          i;

    e = calloc(1, sizeof(exporter_t));
    if (e == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    e->cfg = *cfg;
    pthread_mutex_init(&e->lock, NULL);
    e->sealed_logs_tail = &e->sealed_logs;
    e->sealed_spans_tail = &e->sealed_spans;

    /* metrics only: no thread, no queue, no sink */
    if (!cfg->logs && !cfg->traces) {
        return e;
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    e->multi = curl_multi_init();

    if (e->multi == NULL
        || (cfg->logs
            && sink_init(&e->sinks[EXPORTER_LOKI], EXPORTER_LOKI,
                         &e->cfg.loki, "application/json", e->multi, err,
                         errlen) != 0)
        || (cfg->traces
            && sink_init(&e->sinks[EXPORTER_OTLP], EXPORTER_OTLP,
                         &e->cfg.otlp, "application/x-protobuf", e->multi,
                         err, errlen) != 0))
    {
        free(e);
        return NULL;
    }

    e->n_encoders = (int) cfg->threads;
    e->queue = queue_new((size_t) cfg->queue_datagrams, e->n_encoders);
    e->encoders = calloc((size_t) e->n_encoders, sizeof(encoder_t));
    if (e->queue == NULL || e->encoders == NULL) {
        snprintf(err, errlen, "exporter: out of memory");
        free(e);
        return NULL;
    }

    if (pthread_create(&e->thread, NULL, exporter_main, e) != 0) {
        snprintf(err, errlen, "cannot start the exporter thread");
        free(e);
        return NULL;
    }
    e->started = 1;

    for (i = 0; i < e->n_encoders; i++) {
        c = &e->encoders[i];
        c->e = e;
        c->index = i;
        c->arena.size = DECODE_ARENA;
        c->arena.base = malloc(DECODE_ARENA);
        c->allocator.alloc = decode_alloc;
        c->allocator.free = decode_free;
        c->allocator.allocator_data = &c->arena;
        if (c->arena.base == NULL
            || pthread_create(&c->thread, NULL, encoder_main, c) != 0)
        {
            snprintf(err, errlen, "cannot start exporter thread %d", i + 1);
            e->n_encoders = i;
            exporter_stop(e);
            return NULL;
        }
    }

    return e;
}

void
exporter_offer(exporter_t *e, const uint8_t *data, size_t len,
    size_t records)
{
    if (e->queue == NULL || queue_put(e->queue, data, len) == 0) {
        return;
    }

    if (e->cfg.logs) {
        atomic_fetch_add(&e->shed[SIGNAL_LOGS], records);
    }
    if (e->cfg.traces) {
        atomic_fetch_add(&e->shed[SIGNAL_TRACES], records);
    }
}

uint64_t
exporter_shed(exporter_t *e, signal_id_t signal)
{
    return atomic_load(&e->shed[signal]);
}

/*
 * An exporter thread: reads every datagram, keeps the records of its own
 * streams (so that a stream's entries stay in order), until the queue is
 * closed and read to the end.
 */
static void *
encoder_main(void *data)
{
    encoder_t      *c = data;
    const uint8_t  *dgram;
    long            len;

    while ((len = queue_get(c->e->queue, c->index, &dgram, TICK_MS)) >= 0) {
        if (len > 0) {
            encoder_datagram(c, dgram, (size_t) len);
            queue_done(c->e->queue, c->index);
        }
    }

    return NULL;
}

/* Decodes a datagram ingest accepted and takes this thread's records. */
static void
encoder_datagram(encoder_t *c, const uint8_t *data, size_t len)
{
    Obs__V1__Batch            *batch;
    Obs__V1__Record            r;
    Obs__V1__UpstreamAttempt   attempts[COLUMNS_MAX_ATTEMPTS];
    Obs__V1__UpstreamAttempt  *ptrs[COLUMNS_MAX_ATTEMPTS];
    columns_reader_t           rd;
    size_t                     i;

    c->arena.used = 0;
    batch = obs__v1__batch__unpack(&c->allocator, len, data);
    if (batch == NULL) {
        return;
    }

    for (i = 0; i < batch->n_records; i++) {
        if (encoder_owns(c, batch->records[i])) {
            exporter_record(c->e, batch->records[i]);
        }
    }

    if (batch->columns == NULL || !columns_valid(batch->columns)) {
        return;
    }

    columns_reader_init(&rd, batch->columns);
    while (columns_next(&rd, &r, attempts, ptrs)) {
        if (encoder_owns(c, &r)) {
            exporter_record(c->e, &r);
        }
    }
}

/* A record belongs to the thread of its Loki stream (service, level and,
   with per-tenant org ids, tenant). */
static int
encoder_owns(const encoder_t *c, const Obs__V1__Record *r)
{
    uint64_t  h;

    if (c->e->n_encoders == 1) {
        return 1;
    }

    h = hash_bytes(r->service.data, r->service.len,
                   r->status >= 500 ? 2 : r->status >= 400 ? 1 : 0);
    if (c->e->cfg.tenant_header == TENANT_HEADER_PER_TENANT) {
        h = hash_bytes(r->tenant.data, r->tenant.len, h);
    }

    return (int) (h % (uint64_t) c->e->n_encoders) == c->index;
}

static void *
decode_alloc(void *data, size_t size)
{
    decode_arena_t  *a = data;
    void            *p;

    size = (size + 15) & ~(size_t) 15;
    if (a->used + size > a->size) {
        return NULL;
    }

    p = a->base + a->used;
    a->used += size;
    return p;
}

static void
decode_free(void *data, void *p)
{
    (void) data;
    (void) p;           /* the whole arena is reset per datagram */
}

static void
exporter_record(exporter_t *e, const Obs__V1__Record *r)
{
    json_t         *line, *entry = NULL, *meta, *values;
    char           *text, key[600], service[256], tenant[80], ts[32];
    char            hex[33];
    const char     *org = "", *level;
    loki_batch_t   *b;
    span_batch_t   *sb;
    double          now = now_seconds();
    size_t          len;

    if (text_utf8(r->service.data, r->service.len, service,
                  sizeof(service)) == 0)
    {
        strcpy(service, "unknown");
    }
    text_utf8(r->tenant.data, r->tenant.len, tenant, sizeof(tenant));
    level = log_level(r->status);

    if (!e->cfg.logs) {
        pthread_mutex_lock(&e->lock);
        goto spans;
    }

    line = log_line(r, service, e->cfg.gateway_host);
    text = line ? json_dumps(line, JSON_COMPACT) : NULL;
    json_decref(line);
    if (text == NULL) {
        return;
    }
    len = strlen(text);

    snprintf(ts, sizeof(ts), "%llu", (unsigned long long)
             (r->start_time_unix_nano + r->duration_us * 1000));
    entry = json_array();
    json_array_append_new(entry, json_string_nocheck(ts));
    json_array_append_new(entry, json_string_nocheck(text));
    meta = json_object();
    if (r->trace_id.len == 16) {
        text_hex(hex, r->trace_id.data, 16);
        json_object_set_new_nocheck(meta, "trace_id", json_string_nocheck(hex));
    }
    json_object_set_new_nocheck(meta, "tenant_id", json_string_nocheck(tenant));
    json_array_append_new(entry, meta);
    free(text);

    if (e->cfg.tenant_header == TENANT_HEADER_PER_TENANT) {
        org = tenant;
    } else if (e->cfg.tenant_header == TENANT_HEADER_FIXED) {
        org = e->cfg.org_id;
    }

    snprintf(key, sizeof(key), "%s\x1f%s", service, level);

    pthread_mutex_lock(&e->lock);

    b = logs_batch(e, org, now);
    if (b) {
        values = json_object_get(b->streams, key);
        if (values == NULL) {
            values = json_array();
            json_object_set_new_nocheck(b->streams, key, values);
        }
        json_array_append_new(values, entry);
        entry = NULL;
        b->bytes += len + LOKI_ENTRY_EXTRA;
        b->items++;
        if (b->bytes >= e->cfg.loki.batch_bytes) {
            logs_seal(e, -1);
        }
    }

spans:

    if (e->cfg.traces && span_keep(e, r)) {
        sb = e->open_spans;
        if (sb == NULL) {
            sb = calloc(1, sizeof(*sb));
            if (sb) {
                sb->arena = arena_new();
                sb->cap = e->cfg.otlp.batch_items + 9;
                sb->spans = calloc(sb->cap, sizeof(otlp_span_t *));
                sb->opened = now;
                e->open_spans = sb;
            }
        }
        if (sb && sb->arena && sb->spans) {
            sb->n += (size_t) spans_build(sb->arena, r, service,
                                          sb->spans + sb->n);
            if (sb->n >= e->cfg.otlp.batch_items) {
                *e->sealed_spans_tail = sb;
                e->sealed_spans_tail = &sb->next;
                e->open_spans = NULL;
            }
        }
    }

    pthread_mutex_unlock(&e->lock);
    if (e->cfg.logs) {
        json_decref(entry);
    }
}

void
exporter_stats(exporter_t *e, sink_id_t sink, sink_stats_t *out)
{
    pthread_mutex_lock(&e->lock);
    *out = e->published[sink];
    pthread_mutex_unlock(&e->lock);
}

void
exporter_stop(exporter_t *e)
{
    int  i;

    if (e == NULL) {
        return;
    }

    /* the exporter threads finish the queue, then the delivery drains */
    if (e->queue) {
        queue_close(e->queue);
    }
    for (i = 0; i < e->n_encoders; i++) {
        pthread_join(e->encoders[i].thread, NULL);
    }

    pthread_mutex_lock(&e->lock);
    e->stopping = 1;
    pthread_mutex_unlock(&e->lock);
    if (e->started) {
        pthread_join(e->thread, NULL);
    }

    for (i = 0; i < EXPORTER_SINKS; i++) {
        sink_free(&e->sinks[i]);
    }
    if (e->multi) {
        curl_multi_cleanup(e->multi);
    }
    if (e->encoders) {
        for (i = 0; i < (int) e->cfg.threads; i++) {
            free(e->encoders[i].arena.base);
        }
    }
    free(e->encoders);
    queue_free(e->queue);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

static void *
exporter_main(void *data)
{
    exporter_t     *e = data;
    loki_batch_t   *logs, *lb;
    span_batch_t   *spans, *sb;
    CURLMsg        *msg;
    double          now, deadline = 0;
    int             running, left, stopping, i;

    for ( ;; ) {
        now = now_seconds();

        pthread_mutex_lock(&e->lock);
        stopping = e->stopping;
        exporter_seal_due(e, now, stopping);
        logs = e->sealed_logs;
        spans = e->sealed_spans;
        e->sealed_logs = NULL;
        e->sealed_logs_tail = &e->sealed_logs;
        e->sealed_spans = NULL;
        e->sealed_spans_tail = &e->sealed_spans;
        pthread_mutex_unlock(&e->lock);

        for (lb = logs; lb; lb = logs) {
            logs = lb->next;
            exporter_ship_logs(e, lb);
        }
        for (sb = spans; sb; sb = spans) {
            spans = sb->next;
            exporter_ship_spans(e, sb);
        }

        exporter_deliver(e, now);

        if (stopping) {
            if (deadline == 0) {
                deadline = now + e->cfg.drain_seconds;
            }
            if ((sink_idle(&e->sinks[0]) && sink_idle(&e->sinks[1]))
                || now >= deadline)
            {
                break;
            }
        }

        curl_multi_perform(e->multi, &running);
        while ((msg = curl_multi_info_read(e->multi, &left)) != NULL) {
            sink_t  *s = NULL;

            if (msg->msg != CURLMSG_DONE) {
                continue;
            }
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &s);
            sink_done(s, msg->data.result, now_seconds());
        }

        curl_multi_poll(e->multi, NULL, 0, TICK_MS, NULL);
    }

    for (i = 0; i < EXPORTER_SINKS; i++) {
        sink_shutdown(&e->sinks[i]);
    }

    pthread_mutex_lock(&e->lock);
    for (i = 0; i < EXPORTER_SINKS; i++) {
        e->published[i] = e->sinks[i].stats;
    }
    pthread_mutex_unlock(&e->lock);

    return NULL;
}

/* Seals batches that waited long enough (or all, when stopping). */

static void
exporter_seal_due(exporter_t *e, double now, int all)
{
    int  i;

    for (i = e->n_open_logs - 1; i >= 0; i--) {
        if (all || now - e->open_logs[i]->opened
                   >= e->cfg.loki.batch_wait_ms / 1000.0)
        {
            logs_seal(e, i);
        }
    }

    if (e->open_spans && (all || now - e->open_spans->opened
                                 >= e->cfg.otlp.batch_wait_ms / 1000.0))
    {
        *e->sealed_spans_tail = e->open_spans;
        e->sealed_spans_tail = &e->open_spans->next;
        e->open_spans = NULL;
    }
}

/* Loki push body (or JSON lines in file mode), gzip-compressed. */

static void
exporter_ship_logs(exporter_t *e, loki_batch_t *b)
{
    sink_t       *s = &e->sinks[EXPORTER_LOKI];
    json_t         *root, *streams, *values, *stream;
    const char     *key;
    char            service[256];
    const char     *level;
    payload_t      *p = NULL;
    gzip_stream_t   g;

    if (s->file) {
        exporter_write_lines(s, b);
        goto done;
    }

    root = json_object();
    streams = json_array();
    json_object_set_new_nocheck(root, "streams", streams);

    json_object_foreach(b->streams, key, values) {
        level = strchr(key, '\x1f');
        snprintf(service, sizeof(service), "%.*s",
                 (int) (level - key), key);
        stream = json_pack("{s:{s:s,s:s,s:s},s:O}",
                           "stream", "service", service, "level", level + 1,
                           "host", e->cfg.gateway_host, "values", values);
        json_array_append_new(streams, stream);
    }

    /* compressed as jansson writes it: the body is never held whole */

    if (gzip_open(&g, b->bytes / 4) == 0) {
        p = gzip_close(&g, json_dump_callback(root, gzip_dump, &g,
                                              JSON_COMPACT) == 0,
                       b->items, b->org);
    }

    json_decref(root);

    if (p) {
        sink_enqueue(s, p);
    } else {
        s->stats.items_dropped[DROP_QUEUE_FULL] += b->items;
    }

done:
    json_decref(b->streams);
    free(b);
}

/* OTLP/HTTP protobuf (or OTLP/JSON lines in file mode). */

static void
exporter_ship_spans(exporter_t *e, span_batch_t *b)
{
    sink_t          *s = &e->sinks[EXPORTER_OTLP];
    otlp_request_t  *req;
    json_t          *j;
    char            *text;
    uint8_t         *buf;
    size_t           len;
    payload_t       *p = NULL;

    req = b->n ? spans_request(b->arena, &e->cfg, b->spans, b->n) : NULL;

    if (req && s->file) {
        j = spans_json(req);
        text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (text) {
            p = payload_line(text, strlen(text), b->n);
            free(text);
        }

    } else if (req) {
        len = otlp_request_size(req);
        buf = malloc(len ? len : 1);
        if (buf) {
            otlp_request_pack(req, buf);
            p = payload_gzip(buf, len, b->n, "");
            free(buf);
        }
    }

    if (p) {
        sink_enqueue(s, p);
    } else if (b->n) {
        s->stats.items_dropped[DROP_QUEUE_FULL] += b->n;
    }

    arena_free(b->arena);
    free(b->spans);
    free(b);
}

static void
exporter_deliver(exporter_t *e, double now)
{
    int  i;

    for (i = 0; i < EXPORTER_SINKS; i++) {
        sink_pump(&e->sinks[i], now);
    }

    pthread_mutex_lock(&e->lock);
    for (i = 0; i < EXPORTER_SINKS; i++) {
        e->published[i] = e->sinks[i].stats;
    }
    pthread_mutex_unlock(&e->lock);
}

/*
 * A gzip stream that grows its output as data comes, so that a large JSON
 * body can be compressed while jansson writes it, never held whole.
 */

static int
gzip_open(gzip_stream_t *g, size_t expect)
{
    memset(g, 0, sizeof(*g));

    if (deflateInit2(&g->z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY)
        != Z_OK)
    {
        return -1;
    }

    g->cap = expect > 4096 ? expect : 4096;
    g->out = malloc(g->cap);
    if (g->out == NULL) {
        deflateEnd(&g->z);
        return -1;
    }

    g->z.next_out = g->out;
    g->z.avail_out = (uInt) g->cap;
    return 0;
}

/* Compresses len bytes (or, with finish, the end); -1 on failure. */
static int
gzip_write(gzip_stream_t *g, const void *data, size_t len, int finish)
{
    unsigned char  *grown;
    size_t          used;
    int             rc;

    g->z.next_in = (Bytef *) data;
    g->z.avail_in = (uInt) len;

    for ( ;; ) {
        rc = deflate(&g->z, finish ? Z_FINISH : Z_NO_FLUSH);

        if (rc == Z_STREAM_END || (!finish && g->z.avail_in == 0)) {
            return 0;
        }

        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            return -1;
        }

        if (g->z.avail_out == 0) {
            used = g->cap;
            grown = realloc(g->out, g->cap * 2);
            if (grown == NULL) {
                return -1;
            }
            g->out = grown;
            g->cap *= 2;
            g->z.next_out = g->out + used;
            g->z.avail_out = (uInt) (g->cap - used);
        }
    }
}

/* jansson's dump callback: the body goes straight into the stream. */
static int
gzip_dump(const char *buffer, size_t size, void *data)
{
    return gzip_write(data, buffer, size, 0);
}

/* Ends the stream and makes it a payload (or frees it on failure). */
static payload_t *
gzip_close(gzip_stream_t *g, int ok, size_t items, const char *org)
{
    payload_t  *p = NULL;

    if (ok && gzip_write(g, NULL, 0, 1) == 0) {
        p = calloc(1, sizeof(*p));
    }

    deflateEnd(&g->z);

    if (p == NULL) {
        free(g->out);
        return NULL;
    }

    p->data = g->out;
    p->len = g->z.total_out;
    p->items = items;
    snprintf(p->org, sizeof(p->org), "%s", org ? org : "");
    return p;
}

static payload_t *
payload_gzip(const void *data, size_t len, size_t items, const char *org)
{
    gzip_stream_t  g;

    if (gzip_open(&g, len / 4) != 0) {
        return NULL;
    }

    return gzip_close(&g, gzip_write(&g, data, len, 0) == 0, items, org);
}


/* A file payload: the text and its line end. */

static payload_t *
payload_line(const char *text, size_t len, size_t items)
{
    payload_t  *p = calloc(1, sizeof(*p));

    if (p == NULL || (p->data = malloc(len + 1)) == NULL) {
        free(p);
        return NULL;
    }

    memcpy(p->data, text, len);
    p->data[len] = '\n';
    p->len = len + 1;
    p->items = items;
    return p;
}


/* File mode: the batch's log lines as one payload of JSON lines. */

static void
exporter_write_lines(sink_t *s, loki_batch_t *b)
{
    json_t      *values, *entry;
    const char  *key, *line;
    char        *text, *o;
    size_t       i, total = 0;
    payload_t   *p;

    json_object_foreach(b->streams, key, values) {
        json_array_foreach(values, i, entry) {
            total += strlen(json_string_value(json_array_get(entry, 1))) + 1;
        }
    }

    text = malloc(total ? total : 1);
    if (text == NULL) {
        s->stats.items_dropped[DROP_QUEUE_FULL] += b->items;
        return;
    }

    o = text;
    json_object_foreach(b->streams, key, values) {
        json_array_foreach(values, i, entry) {
            line = json_string_value(json_array_get(entry, 1));
            o = stpcpy(o, line);
            *o++ = '\n';
        }
    }

    /* payload_line adds the last line end */
    p = total ? payload_line(text, total - 1, b->items) : NULL;
    free(text);

    if (p) {
        sink_enqueue(s, p);
    }
}

/* The open batch for an org; the oldest is sealed when too many are open. */

static loki_batch_t *
logs_batch(exporter_t *e, const char *org, double now)
{
    loki_batch_t  *b;
    int            i;

    for (i = 0; i < e->n_open_logs; i++) {
        if (strcmp(e->open_logs[i]->org, org) == 0) {
            return e->open_logs[i];
        }
    }

    if (e->n_open_logs == MAX_LOKI_BATCHES) {
        logs_seal(e, 0);
    }

    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return NULL;
    }

    snprintf(b->org, sizeof(b->org), "%s", org);
    b->streams = json_object();
    b->opened = now;
    e->open_logs[e->n_open_logs++] = b;
    return b;
}

/* Moves open batch i (-1: the one last written) to the sealed list. */

static void
logs_seal(exporter_t *e, int i)
{
    loki_batch_t  *b;
    int            k;

    if (i < 0) {
        for (k = 0; k < e->n_open_logs; k++) {
            if (e->open_logs[k]->bytes >= e->cfg.loki.batch_bytes) {
                i = k;
                break;
            }
        }
        if (i < 0) {
            return;
        }
    }

    b = e->open_logs[i];
    memmove(&e->open_logs[i], &e->open_logs[i + 1],
            sizeof(loki_batch_t *) * (size_t) (e->n_open_logs - i - 1));
    e->n_open_logs--;

    b->next = NULL;
    *e->sealed_logs_tail = b;
    e->sealed_logs_tail = &b->next;
}

/* Head sampling, plus tail keep: 5xx and slow requests are always kept. */

static int
span_keep(const exporter_t *e, const Obs__V1__Record *r)
{
    if (r->trace_id.len != 16 || r->span_id.len != 8) {
        return 0;
    }

    return (r->trace_flags & 1) || r->status >= 500
           || r->duration_us >= (uint64_t) e->cfg.slow_ms * 1000;
}

static double
now_seconds(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static char *
dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}
