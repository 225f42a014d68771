/* Per-tenant usage rows to ClickHouse.  See clickhouse.h. */

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "clickhouse.h"
#include "exporter_config.h"
#include "log.h"
#include "pusher.h"
#include "pusher_metrics.h"

#define CH_BACKOFF_FIRST   1.0
#define CH_BACKOFF_MAX     60.0

struct clickhouse {
    pusher_t                    p;          /* first: the hooks cast */
    clickhouse_config_t         cfg;        /* its own copy */
    store_t                    *store;
    usage_t                    *usage;
    char                       *insert_url;
    char                        gateway[256];
    char                        run[33];    /* this process's rows */

    /* the pusher thread's */
    uint64_t                    next_seq;
    json_t                     *rows;       /* the batch being built */
    time_t                      minute;
};

static void ch_collect(pusher_t *p, double start, int last);
static void ch_row(const usage_row_t *row, void *data);
static int ch_spool_write(pusher_t *p, pusher_item_t *b);
static void ch_spool_remove(pusher_t *p, pusher_item_t *b);
static int ch_spooled(const pusher_item_t *b);
static void ch_spool_path(const clickhouse_t *ch, const pusher_item_t *b,
    char *out, size_t size);
static void ch_spool_load(clickhouse_t *ch);
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

    push_config_free(&cfg->sink);
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
clickhouse_start(const clickhouse_config_t *cfg, store_t *store, char *err,
    size_t errlen)
{
    clickhouse_t   *ch;
    unsigned char   rnd[16];
    char            why[256];
    int             i;

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
    ch->next_seq = 1;
    ch->p.name = "clickhouse";
    ch->p.items = "rows";
    ch->p.interval = (double) cfg->interval;
    ch->p.bound = cfg->sink.spool_dir ? cfg->sink.spool_bytes
                                      : cfg->sink.queue_bytes;
    ch->p.backoff_first = CH_BACKOFF_FIRST;
    ch->p.backoff_max = CH_BACKOFF_MAX;
    ch->p.collect = ch_collect;
    if (cfg->sink.spool_dir) {
        ch->p.queued = ch_spool_write;
        ch->p.unqueued = ch_spool_remove;
    }

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
    ch->p.url = ch->insert_url;

    if (push_init(&ch->p.push, &cfg->sink, "application/x-ndjson", NULL,
                  NULL, why, sizeof(why)) != 0)
    {
        snprintf(err, errlen, "clickhouse: %s", why);
        goto failed;
    }

    if (cfg->sink.spool_dir) {
        if (mkdir(cfg->sink.spool_dir, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "clickhouse.spool_dir %s: %s",
                     cfg->sink.spool_dir, strerror(errno));
            goto failed;
        }
        ch_spool_load(ch);
    }

    if (pusher_start(&ch->p, err, errlen) != 0) {
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
clickhouse_stop(clickhouse_t *ch)
{
    if (ch == NULL) {
        return;
    }

    pusher_stop(&ch->p);
    ch_free(ch);
}

/* What is left stays on disk, or is lost and counted; then all goes. */

static void
ch_free(clickhouse_t *ch)
{
    pusher_drop_all(&ch->p, ch_spooled);
    push_free(&ch->p.push);
    usage_free(ch->usage);
    free(ch->insert_url);
    clickhouse_config_free(&ch->cfg);
    free(ch);
}

void
clickhouse_metrics(expo_writer_t *w, void *data)
{
    pusher_metrics(w, &((clickhouse_t *) data)->p);
}

/* The rows of the interval that started at start: one batch. */

static void
ch_collect(pusher_t *p, double start, int last)
{
    clickhouse_t   *ch = (clickhouse_t *) p;
    pusher_item_t  *b;
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
        b = calloc(1, sizeof(pusher_item_t));
        if (b == NULL || out.failed) {
            pusher_lost(p, json_array_size(ch->rows));
            free(b);
            buf_free(&out);
        } else {
            b->data = out.data;
            b->len = out.len;
            b->count = json_array_size(ch->rows);
            pusher_enqueue(p, b);
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
        pusher_lost(&ch->p, 1);
    }
}

/* Spool file "<seq>-<rows>.jsonl", written whole or not at all. */

static int
ch_spool_write(pusher_t *p, pusher_item_t *b)
{
    clickhouse_t  *ch = (clickhouse_t *) p;
    char           path[4096], tmp[4200];
    FILE          *f;

    if (b->seq) {
        return 0;           /* loaded from the spool */
    }

    b->seq = ch->next_seq++;
    ch_spool_path(ch, b, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);

    f = fopen(tmp, "w");
    if (f == NULL) {
        b->seq = 0;
        return -1;
    }
    if (fwrite(b->data, 1, b->len, f) != b->len || fflush(f) != 0
        || fsync(fileno(f)) != 0 || fclose(f) != 0 || rename(tmp, path) != 0)
    {
        unlink(tmp);
        b->seq = 0;
        return -1;
    }
    return 0;
}

static void
ch_spool_remove(pusher_t *p, pusher_item_t *b)
{
    char  path[4096];

    ch_spool_path((clickhouse_t *) p, b, path, sizeof(path));
    unlink(path);
}

static int
ch_spooled(const pusher_item_t *b)
{
    return b->seq != 0;
}

static void
ch_spool_path(const clickhouse_t *ch, const pusher_item_t *b, char *out,
    size_t size)
{
    snprintf(out, size, "%s/%020llu-%zu.jsonl", ch->cfg.sink.spool_dir,
             (unsigned long long) b->seq, b->count);
}

static int
ch_seq_compare(const void *a, const void *b)
{
    const pusher_item_t  *x = *(pusher_item_t *const *) a;
    const pusher_item_t  *y = *(pusher_item_t *const *) b;

    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* What an earlier run spooled is sent first, oldest first. */

static void
ch_spool_load(clickhouse_t *ch)
{
    DIR            *d;
    struct dirent  *de;
    pusher_item_t  *found[4096], *b;
    size_t          n = 0, i;
    char            path[4096], *end;
    FILE           *f;
    struct stat     st;

    d = opendir(ch->cfg.sink.spool_dir);
    if (d == NULL) {
        return;
    }

    while ((de = readdir(d)) != NULL && n < 4096) {
        unsigned long long  seq = strtoull(de->d_name, &end, 10);
        unsigned long       rows;

        if (seq == 0 || *end != '-') {
            continue;
        }
        rows = strtoul(end + 1, &end, 10);
        if (strcmp(end, ".jsonl") != 0 || (b = calloc(1, sizeof(*b))) == NULL)
        {
            continue;
        }
        b->seq = seq;
        b->count = rows;
        found[n++] = b;
    }
    closedir(d);

    qsort(found, n, sizeof(found[0]), ch_seq_compare);

    for (i = 0; i < n; i++) {
        b = found[i];
        ch_spool_path(ch, b, path, sizeof(path));
        f = fopen(path, "r");
        if (f == NULL || fstat(fileno(f), &st) != 0
            || (b->data = malloc((size_t) st.st_size + 1)) == NULL
            || fread(b->data, 1, (size_t) st.st_size, f)
               != (size_t) st.st_size)
        {
            if (f) {
                fclose(f);
            }
            free(b->data);
            free(b);
            continue;
        }
        fclose(f);
        b->len = (size_t) st.st_size;
        if (b->seq >= ch->next_seq) {
            ch->next_seq = b->seq + 1;
        }
        pusher_enqueue(&ch->p, b);
    }

    if (n) {
        sidecar_log("info", "clickhouse: %zu batches from the spool to send "
                    "first", n);
    }
}

/* <url>[/]?query=INSERT INTO <table> FORMAT JSONEachRow */

static int
ch_insert_url(clickhouse_t *ch, char *err, size_t errlen)
{
    const char  *url = ch->cfg.sink.url;
    char         query[512], *escaped;
    size_t       n = strlen(url);
    CURL        *e = curl_easy_init();

    snprintf(query, sizeof(query), "INSERT INTO %s FORMAT JSONEachRow",
             ch->cfg.table);
    escaped = e ? curl_easy_escape(e, query, 0) : NULL;
    if (escaped == NULL
        || (ch->insert_url = malloc(n + strlen(escaped) + 16)) == NULL)
    {
        snprintf(err, errlen, "clickhouse: out of memory");
        curl_free(escaped);
        curl_easy_cleanup(e);
        return -1;
    }

    sprintf(ch->insert_url, "%s%s%s", url,
            strchr(url, '?') ? "&query=" : n && url[n - 1] == '/'
                                           ? "?query=" : "/?query=",
            escaped);
    curl_free(escaped);
    curl_easy_cleanup(e);
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
    rc = sink_config_copy(&dst->sink, &src->sink);
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
