/*
 * The exporter: exporter threads turn the datagrams ingest handed over into
 * sealed, compressed payloads for the Loki and OTLP destinations of the
 * delivery layer, which sends them.  See exporter.h.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "otlp_pb.h"
#include "compress.h"
#include "decoded.h"
#include "exporter_config.h"
#include "loki.h"
#include "otlp_config.h"
#include "otlp_result.h"
#include "queue.h"
#include "label_rules.h"
#include "log.h"
#include "logline.h"
#include "spans.h"
#include "text.h"

#define MAX_LOKI_BATCHES   64          /* open per-tenant batches */
#define EXPORTER_BACKOFF_FIRST  0.5     /* seconds, doubling */
#define EXPORTER_BACKOFF_MAX    300.0
#define TICK_MS            50
/* what a datagram is decoded in: as much as ingest has (ingest.c) */
#define DECODE_ARENA       (8 * 1024 * 1024)
/* exporter threads yield the CPU to ingest (the metrics) when it is short */
#define EXPORTER_NICE      10

/* An exporter thread and the batches of its share of the streams. */
typedef struct {
    exporter_t          *e;
    int                  index;
    pthread_t            thread;
    decoded_reader_t     reader;        /* over its records of a datagram */
    loki_batch_t        *logs[MAX_LOKI_BATCHES];
    int                  n_logs;
    buf_t                line;          /* the log line being written */
    buf_t                spans;         /* encoded spans of the open batch */
    buf_t                body;          /* a batch's uncompressed body */
    size_t               n_spans;
    double               spans_opened;
    buf_t                records;       /* OTLP log records of the batch */
    size_t               n_records;
    double               records_opened;
} encoder_t;

struct exporter {
    exporter_config_t    cfg;
    loki_format_t        loki_format;
    int                  loki_on;       /* log lines to Loki or a file */
    buf_t                resource;      /* the OTLP Resource, written once */
    dgram_queue_t       *queue;
    decoded_t           *views;         /* datagrams decoded, shared */
    size_t               n_views;
    encoder_t           *encoders;
    int                  n_encoders;
    atomic_ullong        shed[SIGNALS];
    atomic_ullong        overflow[EXPORTER_SINKS][STREAM_LABELS];
    atomic_ullong        decodes;
    destination_t       *dest[EXPORTER_SINKS];
};

const char *const  exporter_sink_names[EXPORTER_SINKS] = {
    "loki", "otlp", "otlp_logs"
};
const char *const  exporter_signal_names[SIGNALS] = { "logs", "traces" };
const char *const  exporter_stream_label_names[STREAM_LABELS] = {
    "service", "tenant"
};

static int exporter_destinations(exporter_t *e, delivery_t *d, char *err,
    size_t errlen);
static int exporter_threads(exporter_t *e, char *err, size_t errlen);
static void exporter_hand(exporter_t *e, sink_id_t sink, payload_t *p,
    size_t items);
static void *encoder_main(void *data);
static void encoder_datagram(encoder_t *c, const queue_item_t *item,
    double now);
static void encoder_record(encoder_t *c, const Obs__V1__Record *r,
    unsigned over, double now);
static void encoder_log(encoder_t *c, const Obs__V1__Record *r,
    const char *service, const char *label, const char *tenant,
    unsigned over, int kept, double now);
static loki_batch_t *encoder_logs_batch(encoder_t *c, const char *org);
static void encoder_seal_logs(encoder_t *c, loki_batch_t *b);
static void encoder_seal_spans(encoder_t *c);
static void encoder_seal_due(encoder_t *c, double now, int all);
static void encoder_free(encoder_t *c);
static payload_t *payload_request(encoder_t *c, buf_t *items, size_t n);
static payload_t *payload_text(const char *text, size_t len, size_t items,
    const char *org);
static void encoder_otlp_log(encoder_t *c, const Obs__V1__Record *r,
    const char *label, unsigned over, int kept, double now);
static void encoder_overflow(encoder_t *c, sink_id_t sink,
    stream_label_t label);
static void encoder_seal_otlp_logs(encoder_t *c);
static int span_keep(const exporter_config_t *cfg,
    const Obs__V1__Record *r);
static double now_seconds(void);

void
exporter_config_defaults(exporter_config_t *cfg)
{
    char         host[256] = "localhost";
    int          i;

    memset(cfg, 0, sizeof(*cfg));

    for (i = 0; i < EXPORTER_SINKS; i++) {
        destination_config_t  *s = i == EXPORTER_LOKI ? &cfg->loki
                                   : i == EXPORTER_OTLP ? &cfg->otlp
                                   : &cfg->otlp_logs;

        s->batch_bytes = 1024 * 1024;
        s->batch_items = 512;
        s->batch_wait_ms = 1000;
        s->timeout_ms = 10000;
        s->queue_bytes = 32 * 1024 * 1024;
        s->spool_bytes = 0;
        s->spool_files = SPOOL_FILES_DEFAULT;
    }

    gethostname(host, sizeof(host) - 1);
    cfg->gateway_host = strdup(host);
    cfg->slow_ms = 1000;
    cfg->drain_seconds = 10;
    cfg->logs = 1;
    cfg->traces = 1;
    cfg->threads = 1;
    cfg->queue_datagrams = 256;
    cfg->loki_json = 0;

    cfg->gateway_name = strdup("obs-gateway");
}

void
exporter_config_free(exporter_config_t *cfg)
{
    destination_config_free(&cfg->loki);
    destination_config_free(&cfg->otlp);
    destination_config_free(&cfg->otlp_logs);
    free(cfg->org_id);
    free(cfg->gateway_name);
    free(cfg->gateway_host);
    free(cfg->resource_attributes);
    memset(cfg, 0, sizeof(*cfg));
}

exporter_t *
exporter_start(const exporter_config_t *cfg, delivery_t *d, char *err,
    size_t errlen)
{
    exporter_t  *e;

    e = calloc(1, sizeof(exporter_t));
    if (e == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    /* the exporter keeps a copy: the sidecar's configuration may change */
    if (exporter_config_copy(&e->cfg, cfg) != 0) {
        exporter_config_free(&e->cfg);
        free(e);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    if (exporter_destinations(e, d, err, errlen) != 0) {
        exporter_stop(e);
        exporter_free(e);
        return NULL;
    }

    /* metrics only: no thread, no queue */
    if (!cfg->logs && !cfg->traces) {
        return e;
    }

    if (exporter_threads(e, err, errlen) != 0) {
        exporter_stop(e);
        exporter_free(e);
        return NULL;
    }

    return e;
}

void
exporter_offer(exporter_t *e, const uint8_t *data, size_t len,
    size_t records, const uint8_t *over)
{
    if (e->queue == NULL
        || queue_put(e->queue, data, len, over,
                     over ? LABEL_OVER_BYTES(records) : 0) == 0)
    {
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

uint64_t
exporter_overflow(exporter_t *e, sink_id_t sink, stream_label_t label)
{
    return atomic_load(&e->overflow[sink][label]);
}

uint64_t
exporter_decodes(exporter_t *e)
{
    return atomic_load(&e->decodes);
}

size_t
exporter_backlog(exporter_t *e)
{
    return e->queue ? queue_depth(e->queue) : 0;
}

void
exporter_stats(exporter_t *e, sink_id_t sink, destination_stats_t *out)
{
    if (e->dest[sink] == NULL) {
        memset(out, 0, sizeof(*out));
        out->mode = "off";
        return;
    }
    delivery_stats(e->dest[sink], out);
}

void
exporter_stop(exporter_t *e)
{
    int  i;

    if (e == NULL) {
        return;
    }

    /* the exporter threads finish the queue and seal everything, which
       the delivery layer then sends (bounded by the drain time) */
    if (e->queue) {
        queue_close(e->queue);
    }
    for (i = 0; i < e->n_encoders; i++) {
        pthread_join(e->encoders[i].thread, NULL);
    }
}

void
exporter_free(exporter_t *e)
{
    int  i;

    if (e == NULL) {
        return;
    }

    for (i = 0; i < e->n_encoders; i++) {
        encoder_free(&e->encoders[i]);
    }
    for (i = 0; i < (int) e->n_views; i++) {
        decoded_free(&e->views[i]);
    }

    free(e->encoders);
    free(e->views);
    queue_free(e->queue);
    buf_free(&e->resource);
    exporter_config_free(&e->cfg);
    free(e);
}

void
exporter_destination(const exporter_config_t *cfg, sink_id_t which,
    destination_spec_t *spec)
{
    int  json = cfg->loki_json;

    memset(spec, 0, sizeof(*spec));
    spec->name = exporter_sink_names[which];
    spec->backoff_first = EXPORTER_BACKOFF_FIRST;
    spec->backoff_max = EXPORTER_BACKOFF_MAX;
    spec->overflow = OVERFLOW_DROP_NEWEST;

    /* Loki's native push is snappy inside the body, not a
       Content-Encoding */
    if (which == EXPORTER_LOKI) {
        spec->items = "lines";
        spec->cfg = &cfg->loki;
        spec->content_type = json ? "application/json"
                                  : "application/x-protobuf";
        spec->content_encoding = json ? "gzip" : NULL;
        /* log records over OTLP and no Loki or file asked for: no
           stdout lines besides */
        spec->off = !cfg->logs || (cfg->otlp_logs_on && cfg->loki.url == NULL
                                   && cfg->loki.file == NULL);
        return;
    }

    spec->items = which == EXPORTER_OTLP ? "spans" : "log records";
    spec->cfg = which == EXPORTER_OTLP ? &cfg->otlp : &cfg->otlp_logs;
    spec->grpc = (which == EXPORTER_OTLP ? cfg->otlp_protocol
                  : cfg->otlp_logs_protocol) == OTLP_GRPC;
    spec->content_type = spec->grpc ? "application/grpc"
                                    : "application/x-protobuf";
    spec->content_encoding = (which == EXPORTER_OTLP ? cfg->otlp_gzip
                              : cfg->otlp_logs_gzip) ? "gzip" : NULL;
    spec->classify = spec->grpc ? otlp_grpc_classify : otlp_http_classify;
    spec->off = which == EXPORTER_OTLP ? !cfg->traces
                : !cfg->logs || !cfg->otlp_logs_on;
}

/* The destinations, each in its format; a signal that is off still has
   its counters (OTLP logs only when asked for). */
static int
exporter_destinations(exporter_t *e, delivery_t *d, char *err,
    size_t errlen)
{
    destination_spec_t  spec;
    int                 json = e->cfg.loki_json;
    char                url[1024];

    e->loki_format = e->cfg.loki.url == NULL ? LOKI_FILE
                     : json ? LOKI_JSON : LOKI_PROTOBUF;
    spans_resource(&e->resource, &e->cfg);
    if (e->resource.failed) {
        snprintf(err, errlen, "exporter: out of memory");
        return -1;
    }

    exporter_destination(&e->cfg, EXPORTER_LOKI, &spec);
    e->loki_on = !spec.off;
    e->dest[EXPORTER_LOKI] = delivery_add(d, &spec, err, errlen);

    exporter_destination(&e->cfg, EXPORTER_OTLP, &spec);
    spec.url = otlp_url(e->cfg.otlp.url, OTLP_TRACES, e->cfg.otlp_protocol,
                        url, sizeof(url));
    e->dest[EXPORTER_OTLP] = e->dest[EXPORTER_LOKI]
                             ? delivery_add(d, &spec, err, errlen) : NULL;

    exporter_destination(&e->cfg, EXPORTER_OTLP_LOGS, &spec);
    if (e->dest[EXPORTER_OTLP] && !spec.off) {
        spec.url = otlp_url(e->cfg.otlp_logs.url, OTLP_LOGS,
                            e->cfg.otlp_logs_protocol, url, sizeof(url));
        e->dest[EXPORTER_OTLP_LOGS] = delivery_add(d, &spec, err, errlen);
        if (e->dest[EXPORTER_OTLP_LOGS] == NULL) {
            return -1;
        }
        sidecar_log("info", "log records over OTLP/%s to %s",
                    spec.grpc ? "gRPC" : "HTTP", spec.url);
    }

    return e->dest[EXPORTER_OTLP] ? 0 : -1;
}

/*
 * The ring, one view (a decoded datagram, decoded.h) per thread, and the
 * threads.  With one view per thread the readers share the decoding and
 * none runs more than n datagrams ahead of the slowest; memory stays what
 * a decode arena per thread cost before.
 */
static int
exporter_threads(exporter_t *e, char *err, size_t errlen)
{
    encoder_t  *c;
    size_t      v;
    int         i, n = (int) e->cfg.threads;

    e->queue = queue_new((size_t) e->cfg.queue_datagrams, (size_t) n, n);
    e->views = calloc((size_t) n, sizeof(decoded_t));
    e->encoders = calloc((size_t) n, sizeof(encoder_t));
    if (e->queue == NULL || e->views == NULL || e->encoders == NULL) {
        snprintf(err, errlen, "exporter: out of memory");
        return -1;
    }

    for (v = 0; v < (size_t) n; v++) {
        if (decoded_init(&e->views[v], DECODE_ARENA) != 0) {
            snprintf(err, errlen, "exporter: out of memory");
            return -1;
        }
        e->n_views = v + 1;
    }

    for (i = 0; i < n; i++) {
        c = &e->encoders[i];
        c->e = e;
        c->index = i;
        if (pthread_create(&c->thread, NULL, encoder_main, c) != 0) {
            snprintf(err, errlen, "cannot start exporter thread %d", i + 1);
            return -1;
        }
        e->n_encoders = i + 1;
        pthread_setname_np(c->thread, "obs-export");
    }

    return 0;
}

/*
 * An exporter thread hands a sealed payload (NULL: none could be made).
 * The delivery layer waits when its thread has not taken a queue's worth
 * (a file that blocks): the ring fills and ingest sheds, memory stays
 * bounded.
 */
static void
exporter_hand(exporter_t *e, sink_id_t sink, payload_t *p, size_t items)
{
    if (p == NULL) {
        delivery_lost(e->dest[sink], items);
        return;
    }

    delivery_submit(e->dest[sink], p);
}

/*
 * An exporter thread: takes every datagram in turn, decodes it for all the
 * threads when it is the first there (decoded.h), builds its own records
 * (those of its streams, so that a stream's entries stay in order) and
 * seals batches by size and time, until the queue is closed and read to
 * the end.
 */
static void *
encoder_main(void *data)
{
    encoder_t     *c = data;
    exporter_t    *e = c->e;
    queue_item_t   item;
    double         now;
    int            rc;

    setpriority(PRIO_PROCESS, (id_t) gettid(), EXPORTER_NICE);

    while ((rc = queue_get(e->queue, c->index, &item, TICK_MS)) >= 0) {
        now = now_seconds();
        if (rc > 0) {
            encoder_datagram(c, &item, now);
            queue_done(e->queue, c->index);
        }
        encoder_seal_due(c, now, 0);
    }

    encoder_seal_due(c, now_seconds(), 1);
    return NULL;
}

/* Builds this thread's records of a datagram, decoding it first for every
   thread when the queue says so. */
static void
encoder_datagram(encoder_t *c, const queue_item_t *item, double now)
{
    exporter_t             *e = c->e;
    decoded_t              *d = &e->views[item->view];
    const Obs__V1__Record  *r;

    if (item->decode) {
        decoded_fill(d, item->data, item->len, item->over, e->n_encoders,
                     e->cfg.tenant_header == TENANT_HEADER_PER_TENANT);
        atomic_fetch_add_explicit(&e->decodes, 1, memory_order_relaxed);
        queue_decoded(e->queue, item->view);
    }

    decoded_read(&c->reader, d, c->index);
    while ((r = decoded_next(&c->reader)) != NULL) {
        encoder_record(c, r, decoded_over(&c->reader), now);
    }
}

/*
 * A record's log line, log record and spans.  The streams' service (the
 * label) is the metrics' label: sanitised as theirs, "__overflow__" where
 * their caps put it (over); the line and the spans keep the record's.
 */
static void
encoder_record(encoder_t *c, const Obs__V1__Record *r, unsigned over,
    double now)
{
    exporter_t  *e = c->e;
    char         service[LOKI_SERVICE_MAX], tenant[LOKI_TENANT_MAX];
    char         label[LABEL_BUF_LEN];
    int          kept = e->cfg.traces && span_keep(&e->cfg, r);

    if (text_utf8(r->service.data, r->service.len, service,
                  sizeof(service)) == 0)
    {
        strcpy(service, "unknown");
    }

    decoded_service_label(r->service, over, label);

    if (e->loki_on) {
        text_utf8(r->tenant.data, r->tenant.len, tenant, sizeof(tenant));
        encoder_log(c, r, service, label, tenant, over, kept, now);
    }

    if (e->dest[EXPORTER_OTLP_LOGS]) {
        encoder_otlp_log(c, r, label, over, kept, now);
    }

    if (kept) {
        if (c->n_spans == 0) {
            c->spans_opened = now;
        }
        c->n_spans += (size_t) spans_append(&c->spans, r, service);
        if (c->spans.failed) {
            buf_reset(&c->spans);
            c->spans.failed = 0;
            delivery_lost(e->dest[EXPORTER_OTLP], c->n_spans);
            c->n_spans = 0;
        } else if (c->n_spans >= e->cfg.otlp.batch_items) {
            encoder_seal_spans(c);
        }
    }
}

static void
encoder_log(encoder_t *c, const Obs__V1__Record *r, const char *service,
    const char *label, const char *tenant, unsigned over, int kept,
    double now)
{
    exporter_t    *e = c->e;
    loki_batch_t  *b;
    loki_entry_t   entry;
    buf_t         *o;
    const char    *org = "";

    /* protobuf: the line is written in place, in its batch */
    if (e->loki_format != LOKI_PROTOBUF) {
        buf_reset(&c->line);
        log_line(&c->line, r, service, e->cfg.gateway_host, kept);
        if (c->line.failed) {
            c->line.failed = 0;
            delivery_lost(e->dest[EXPORTER_LOKI], 1);
            return;
        }
    }

    if (e->cfg.tenant_header == TENANT_HEADER_PER_TENANT) {
        org = decoded_org(tenant, over);
        if (over & LABEL_OVER_TENANT) {
            encoder_overflow(c, EXPORTER_LOKI, STREAM_TENANT);
        }
    } else if (e->cfg.tenant_header == TENANT_HEADER_FIXED) {
        org = e->cfg.org_id;
    }

    if (over & LABEL_OVER_SERVICE) {
        encoder_overflow(c, EXPORTER_LOKI, STREAM_SERVICE);
    }

    entry.service = label;
    entry.level = log_level(r->status);
    entry.line = &c->line;
    entry.time_ns = r->start_time_unix_nano + r->duration_us * 1000;
    entry.trace_id = r->trace_id.len == 16 ? r->trace_id.data : NULL;
    entry.tenant = tenant;

    b = encoder_logs_batch(c, org);
    if (b == NULL) {
        delivery_lost(e->dest[EXPORTER_LOKI], 1);
        return;
    }

    if (b->items == 0) {
        b->opened = now;
    }

    /* a batch with no room for another stream is sealed first */
    if (e->loki_format == LOKI_PROTOBUF) {
        o = loki_open(b, &entry);
        if (o == NULL) {
            encoder_seal_logs(c, b);
            b->opened = now;
            o = loki_open(b, &entry);
        }
        if (o != NULL) {
            log_line(o, r, service, e->cfg.gateway_host, kept);
        }
        if (o == NULL || loki_close(b, &entry) != 0) {
            delivery_lost(e->dest[EXPORTER_LOKI], 1);
            return;
        }

    } else if (loki_add(b, e->loki_format, &entry) != 0) {
        encoder_seal_logs(c, b);
        b->opened = now;
        if (loki_add(b, e->loki_format, &entry) != 0) {
            delivery_lost(e->dest[EXPORTER_LOKI], 1);
            return;
        }
    }

    if (b->bytes >= e->cfg.loki.batch_bytes) {
        encoder_seal_logs(c, b);
    }
}

/* The batch for an org: its own, an empty one, a new one, or the first
   one sealed and taken over when too many are open. */
static loki_batch_t *
encoder_logs_batch(encoder_t *c, const char *org)
{
    loki_batch_t  *b, *empty = NULL;
    int            i;

    for (i = 0; i < c->n_logs; i++) {
        if (strcmp(c->logs[i]->org, org) == 0) {
            return c->logs[i];
        }
        if (empty == NULL && c->logs[i]->items == 0) {
            empty = c->logs[i];
        }
    }

    b = empty;
    if (b == NULL && c->n_logs < MAX_LOKI_BATCHES) {
        b = calloc(1, sizeof(loki_batch_t));
        if (b == NULL) {
            return NULL;
        }
        c->logs[c->n_logs++] = b;
    }
    if (b == NULL) {
        b = c->logs[0];
        encoder_seal_logs(c, b);
    }

    snprintf(b->org, sizeof(b->org), "%s", org);
    return b;
}

static void
encoder_seal_logs(encoder_t *c, loki_batch_t *b)
{
    exporter_t  *e = c->e;
    payload_t   *p;
    size_t       items = b->items, len;
    const char  *body;

    if (items == 0) {
        return;
    }

    buf_reset(&c->body);
    body = loki_seal(b, e->loki_format, e->cfg.gateway_host, &c->body, &len);

    if (c->body.failed) {
        c->body.failed = 0;
        p = NULL;
    } else if (e->loki_format == LOKI_PROTOBUF) {
        p = payload_compress(COMPRESS_SNAPPY, body, len, items, b->org);
    } else if (e->loki_format == LOKI_JSON) {
        p = payload_compress(COMPRESS_GZIP, body, len, items, b->org);
    } else {
        p = payload_text(body, len, items, b->org);
    }

    exporter_hand(e, EXPORTER_LOKI, p, items);
}

static void
encoder_seal_spans(encoder_t *c)
{
    exporter_t  *e = c->e;
    payload_t   *p = NULL;
    json_t      *j;
    char        *text;
    size_t       n = c->n_spans;

    if (n == 0) {
        return;
    }

    if (e->cfg.otlp.url && !e->cfg.otlp_gzip) {
        p = payload_request(c, &c->spans, n);
        buf_reset(&c->spans);
        c->n_spans = 0;
        exporter_hand(e, EXPORTER_OTLP, p, n);
        return;
    }

    buf_reset(&c->body);
    spans_request(&c->body, &e->resource, &c->spans);
    buf_reset(&c->spans);
    c->n_spans = 0;

    if (c->body.failed) {
        c->body.failed = 0;

    } else if (e->cfg.otlp.url == NULL) {
        /* file mode: OTLP/JSON, one request a line */
        j = spans_json((uint8_t *) c->body.data, c->body.len);
        text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (text) {
            p = payload_text(text, strlen(text), n, "");
            if (p) {
                p->data[p->len++] = '\n';
            }
            free(text);
        }

    } else if (e->cfg.otlp_gzip) {
        p = payload_compress(COMPRESS_GZIP, c->body.data, c->body.len, n, "");
    }

    exporter_hand(e, EXPORTER_OTLP, p, n);
}

/* Seals batches that waited long enough (or all of them). */
static void
encoder_seal_due(encoder_t *c, double now, int all)
{
    exporter_t  *e = c->e;
    int          i;

    for (i = 0; i < c->n_logs; i++) {
        if (c->logs[i]->items
            && (all || now - c->logs[i]->opened
                       >= e->cfg.loki.batch_wait_ms / 1000.0))
        {
            encoder_seal_logs(c, c->logs[i]);
        }
    }

    if (c->n_spans && (all || now - c->spans_opened
                              >= e->cfg.otlp.batch_wait_ms / 1000.0))
    {
        encoder_seal_spans(c);
    }

    if (c->n_records && (all || now - c->records_opened
                                >= e->cfg.otlp_logs.batch_wait_ms / 1000.0))
    {
        encoder_seal_otlp_logs(c);
    }
}

/* The record's log line as an OTLP LogRecord, batched by count, size and
   time; its service is the stream label (a collector makes it Loki's). */
static void
encoder_otlp_log(encoder_t *c, const Obs__V1__Record *r, const char *label,
    unsigned over, int kept, double now)
{
    exporter_t  *e = c->e;

    if (c->n_records == 0) {
        c->records_opened = now;
    }
    if (over & LABEL_OVER_SERVICE) {
        encoder_overflow(c, EXPORTER_OTLP_LOGS, STREAM_SERVICE);
    }

    log_record(&c->records, r, label, e->cfg.gateway_host, kept);
    c->n_records++;

    if (c->records.failed) {
        buf_reset(&c->records);
        c->records.failed = 0;
        delivery_lost(e->dest[EXPORTER_OTLP_LOGS], c->n_records);
        c->n_records = 0;
    } else if (c->n_records >= e->cfg.otlp_logs.batch_items
               || c->records.len >= e->cfg.otlp_logs.batch_bytes)
    {
        encoder_seal_otlp_logs(c);
    }
}

/* An ExportLogsServiceRequest of the batch, gzip'd when asked. */
static void
encoder_seal_otlp_logs(encoder_t *c)
{
    exporter_t  *e = c->e;
    payload_t   *p = NULL;
    size_t       n = c->n_records;

    if (e->cfg.otlp_logs_gzip) {
        buf_reset(&c->body);
        otlp_request(&c->body, &e->resource, &c->records);
        if (c->body.failed) {
            c->body.failed = 0;
        } else {
            p = payload_compress(COMPRESS_GZIP, c->body.data, c->body.len, n,
                                 "");
        }
    } else {
        p = payload_request(c, &c->records, n);
    }
    buf_reset(&c->records);
    c->n_records = 0;

    exporter_hand(e, EXPORTER_OTLP_LOGS, p, n);
}

static void
encoder_overflow(encoder_t *c, sink_id_t sink, stream_label_t label)
{
    atomic_fetch_add_explicit(&c->e->overflow[sink][label], 1,
                              memory_order_relaxed);
}

static void
encoder_free(encoder_t *c)
{
    int  i;

    for (i = 0; i < c->n_logs; i++) {
        loki_free(c->logs[i]);
        free(c->logs[i]);
    }
    buf_free(&c->line);
    buf_free(&c->spans);
    buf_free(&c->body);
    buf_free(&c->records);
}

/*
 * An Export*ServiceRequest of a batch of items as a payload: the envelope,
 * then the items copied once, straight into the payload (through c->body
 * they would be copied twice, a batch of up to batch_bytes each time).
 */
static payload_t *
payload_request(encoder_t *c, buf_t *items, size_t n)
{
    payload_t  *p;

    buf_reset(&c->body);
    otlp_request_head(&c->body, &c->e->resource, items->len);
    if (c->body.failed || items->failed) {
        c->body.failed = 0;
        return NULL;
    }

    p = payload_new(c->body.len + items->len, n, "");
    if (p) {
        memcpy(p->data, c->body.data, c->body.len);
        if (items->len) {
            memcpy(p->data + c->body.len, items->data, items->len);
        }
        p->len = c->body.len + items->len;
    }
    return p;
}

/* A copy of text, with room for a line end after it. */
static payload_t *
payload_text(const char *text, size_t len, size_t items, const char *org)
{
    payload_t  *p = payload_new(len + 1, items, org);

    if (p) {
        memcpy(p->data, text, len);
        p->len = len;
    }
    return p;
}

/* Head sampling, plus tail keep: 5xx and slow requests are always kept. */
static int
span_keep(const exporter_config_t *cfg, const Obs__V1__Record *r)
{
    if (r->trace_id.len != 16 || r->span_id.len != 8) {
        return 0;
    }

    return (r->trace_flags & 1) || r->status >= 500
           || r->duration_us >= (uint64_t) cfg->slow_ms * 1000;
}

static double
now_seconds(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}
