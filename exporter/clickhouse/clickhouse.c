/* Per-tenant usage rows to ClickHouse.  See clickhouse.h. */

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "clickhouse.h"
#include "collector.h"
#include "log.h"

#define CH_BACKOFF_FIRST   1.0
#define CH_BACKOFF_MAX     60.0

struct clickhouse {
    collector_t                 c;
    clickhouse_config_t         cfg;        /* its own copy */
    store_t                    *store;
    usage_t                    *usage;
    destination_t              *dest;
    char                       *insert_url;
    char                        gateway[256];
    char                        run[33];    /* this process's rows */

    /* the collector thread's */
    json_t                     *rows;       /* the batch being built */
    time_t                      minute;
};

static void ch_collect(collector_t *c, double start, int last);
static void ch_row(const usage_row_t *row, void *data);
static int ch_insert_url(clickhouse_t *ch, char *err, size_t errlen);
static int ch_config_copy(clickhouse_config_t *dst,
    const clickhouse_config_t *src);
static void ch_free(clickhouse_t *ch);

void
clickhouse_config_defaults(clickhouse_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->table = strdup("obs.usage_minute");
    cfg->interval = 60;
    cfg->sink.timeout_ms = 10000;
    cfg->sink.queue_bytes = 16 << 20;
    cfg->sink.spool_files = SPOOL_FILES_DEFAULT;
    cfg->default_class.name = strdup("default");
}

static void
cost_class_free(cost_class_t *c)
{
    free(c->name);
    free(c->service);
    free(c->route);
}

void
clickhouse_config_free(clickhouse_config_t *cfg)
{
    int  i;

    destination_config_free(&cfg->sink);
    free(cfg->table);
    free(cfg->gateway);
    for (i = 0; i < cfg->n_classes; i++) {
        cost_class_free(&cfg->classes[i]);
    }
    cost_class_free(&cfg->default_class);
    memset(cfg, 0, sizeof(*cfg));
}

const cost_class_t *
clickhouse_cost_class(const clickhouse_config_t *cfg, const char *service,
    const char *route)
{
    const cost_class_t  *c;
    int                  i;

    for (i = 0; i < cfg->n_classes; i++) {
        c = &cfg->classes[i];
        if ((c->service == NULL || fnmatch(c->service, service, 0) == 0)
            && (c->route == NULL || fnmatch(c->route, route, 0) == 0))
        {
            return c;
        }
    }

    return &cfg->default_class;
}

clickhouse_t *
clickhouse_start(const clickhouse_config_t *cfg, store_t *store,
    delivery_t *d, char *err, size_t errlen)
{
    clickhouse_t        *ch;
    destination_spec_t   spec;
    unsigned char        rnd[16];
    int                  i;

    if (cfg->sink.url == NULL) {
        return NULL;
    }

    ch = calloc(1, sizeof(clickhouse_t));
    if (ch == NULL || (ch->usage = usage_new()) == NULL) {
        snprintf(err, errlen, "clickhouse: out of memory");
        free(ch);
        return NULL;
    }

    /* a copy of its own: the sidecar's configuration may be reloaded */
    if (ch_config_copy(&ch->cfg, cfg) != 0) {
        snprintf(err, errlen, "clickhouse: out of memory");
        goto failed;
    }
    cfg = &ch->cfg;
    ch->store = store;

    /* the run id keeps this process's rows apart from an earlier run's
       rows of the same minute */
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd)) {
        snprintf(err, errlen, "clickhouse: getrandom: %s", strerror(errno));
        goto failed;
    }
    for (i = 0; i < 16; i++) {
        snprintf(ch->run + 2 * i, 3, "%02x", rnd[i]);
    }

    if (cfg->gateway) {
        snprintf(ch->gateway, sizeof(ch->gateway), "%s", cfg->gateway);
    } else if (gethostname(ch->gateway, sizeof(ch->gateway) - 1) != 0) {
        snprintf(ch->gateway, sizeof(ch->gateway), "gateway");
    }

    if (ch_insert_url(ch, err, errlen) != 0) {
        goto failed;
    }

    clickhouse_destination(cfg, ch->insert_url, &spec);
    ch->dest = delivery_add(d, &spec, err, errlen);
    if (ch->dest == NULL) {
        goto failed;
    }

    ch->c.name = "ch-collect";
    ch->c.interval = (double) cfg->interval;
    ch->c.collect = ch_collect;
    ch->c.data = ch;
    if (collector_start(&ch->c, err, errlen) != 0) {
        goto failed;
    }

    sidecar_log("info", "usage rows to %s every %lds (run %s)", cfg->sink.url,
                cfg->interval, ch->run);
    return ch;

failed:
    ch_free(ch);
    return NULL;
}

void
clickhouse_destination(const clickhouse_config_t *cfg, const char *url,
    destination_spec_t *spec)
{
    /* billing rows: each batch on disk before it is sent (with a spool);
       past the bound the oldest go */
    memset(spec, 0, sizeof(*spec));
    spec->name = "clickhouse";
    spec->legacy = "clickhouse";
    spec->items = "rows";
    spec->cfg = &cfg->sink;
    spec->url = url;
    spec->content_type = "application/x-ndjson";
    spec->backoff_first = CH_BACKOFF_FIRST;
    spec->backoff_max = CH_BACKOFF_MAX;
    spec->overflow = OVERFLOW_DROP_OLDEST;
    spec->spool_first = 1;
}

void
clickhouse_stop(clickhouse_t *ch)
{
    if (ch == NULL) {
        return;
    }

    collector_stop(&ch->c);
    ch_free(ch);
}

static void
ch_free(clickhouse_t *ch)
{
    usage_free(ch->usage);
    free(ch->insert_url);
    clickhouse_config_free(&ch->cfg);
    free(ch);
}

/* The rows of the interval that started at start: one batch. */

static void
ch_collect(collector_t *c, double start, int last)
{
    clickhouse_t   *ch = c->data;
    payload_t      *b;
    json_t         *row;
    buf_t           out = { 0 };
    size_t          i;
    char           *line;

    (void) last;

    ch->rows = json_array();
    ch->minute = (time_t) start;
    if (ch->rows == NULL) {
        return;
    }

    if (usage_collect(ch->usage, ch->store, ch_row, ch) != 0) {
        sidecar_log("error", "clickhouse: out of memory collecting usage; the "
                    "rest is counted in the next interval");
    }

    json_array_foreach(ch->rows, i, row) {
        line = json_dumps(row, JSON_COMPACT | JSON_REAL_PRECISION(17));
        if (line) {
            buf_puts(&out, line);
            buf_append(&out, "\n", 1);
            free(line);
        }
    }

    if (json_array_size(ch->rows) > 0) {
        b = calloc(1, sizeof(payload_t));
        if (b == NULL || out.failed) {
            delivery_lost(ch->dest, json_array_size(ch->rows));
            free(b);
            buf_free(&out);
        } else {
            b->data = (unsigned char *) out.data;
            b->len = out.len;
            b->items = json_array_size(ch->rows);
            delivery_submit(ch->dest, b);
        }
    }

    json_decref(ch->rows);
    ch->rows = NULL;
}

/* One usage row as ClickHouse's JSONEachRow wants it. */

static void
ch_row(const usage_row_t *r, void *data)
{
    clickhouse_t        *ch = data;
    const cost_class_t  *cost;
    json_t              *row, *bounds, *buckets;
    struct tm            tm;
    char                 minute[32];
    int                  i;

    cost = clickhouse_cost_class(&ch->cfg, r->service, r->route);
    gmtime_r(&ch->minute, &tm);
    strftime(minute, sizeof(minute), "%Y-%m-%d %H:%M:%S", &tm);

    bounds = json_array();
    buckets = json_array();
    for (i = 0; i < r->n_bounds; i++) {
        json_array_append_new(bounds, json_real(r->bounds[i]));
    }
    for (i = 0; r->bounds && i <= r->n_bounds; i++) {
        json_array_append_new(buckets, json_integer((json_int_t)
                                                    r->buckets[i]));
    }

    row = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I,"
                    " s:I, s:f, s:I, s:o, s:o, s:f, s:f}",
                    "minute", minute, "gateway", ch->gateway, "run", ch->run,
                    "tenant", r->tenant, "service", r->service,
                    "route", r->route, "cost_class", cost->name,
                    "requests", (json_int_t) r->requests,
                    "errors", (json_int_t) r->errors,
                    "client_errors", (json_int_t) r->client_errors,
                    "bytes_in", (json_int_t) r->bytes_in,
                    "bytes_out", (json_int_t) r->bytes_out,
                    "duration_sum", r->duration_sum,
                    "duration_count", (json_int_t) r->duration_count,
                    "duration_bounds", bounds, "duration_buckets", buckets,
                    "price_per_1k_requests", cost->per_1k_requests,
                    "price_per_gb", cost->per_gb);

    if (row == NULL || json_array_append_new(ch->rows, row) != 0) {
        delivery_lost(ch->dest, 1);
    }
}

/* <url>[/]?query=INSERT INTO <table> FORMAT JSONEachRow */

static int
ch_insert_url(clickhouse_t *ch, char *err, size_t errlen)
{
    const char  *url = ch->cfg.sink.url;
    char         query[512], *escaped;
    size_t       n = strlen(url);

    snprintf(query, sizeof(query), "INSERT INTO %s FORMAT JSONEachRow",
             ch->cfg.table);
    escaped = http_escape(query);
    if (escaped == NULL
        || (ch->insert_url = malloc(n + strlen(escaped) + 16)) == NULL)
    {
        snprintf(err, errlen, "clickhouse: out of memory");
        free(escaped);
        return -1;
    }

    sprintf(ch->insert_url, "%s%s%s", url,
            strchr(url, '?') ? "&query=" : n && url[n - 1] == '/'
                                           ? "?query=" : "/?query=",
            escaped);
    free(escaped);
    return 0;
}

/* Deep-copies src into dst; on -1 (out of memory) dst is still freeable. */

static int
ch_config_copy(clickhouse_config_t *dst, const clickhouse_config_t *src)
{
    const cost_class_t  *from;
    cost_class_t        *to;
    int                  i, rc;

    *dst = *src;
    rc = destination_config_copy(&dst->sink, &src->sink);
    rc |= config_copy_string(&dst->table, src->table);
    rc |= config_copy_string(&dst->gateway, src->gateway);

    for (i = -1; i < src->n_classes; i++) {
        from = i < 0 ? &src->default_class : &src->classes[i];
        to = i < 0 ? &dst->default_class : &dst->classes[i];
        rc |= config_copy_string(&to->name, from->name);
        rc |= config_copy_string(&to->service, from->service);
        rc |= config_copy_string(&to->route, from->route);
    }

    return rc ? -1 : 0;
}
