/* Per-tenant usage rows to ClickHouse.  See clickhouse.h. */

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdatomic.h>
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
#include "log.h"
#include "push.h"
#include "pusher_metrics.h"

#define CH_BACKOFF_FIRST   1.0
#define CH_BACKOFF_MAX     60.0

typedef struct ch_batch {
    struct ch_batch  *next;
    uint64_t          seq;          /* spool file number; 0: memory only */
    char             *data;         /* JSONEachRow lines */
    size_t            len;
    size_t            rows;
} ch_batch_t;

enum { CH_DROP_QUEUE_FULL = 0, CH_DROP_REJECTED, CH_DROP_SHUTDOWN,
       CH_DROP_REASONS };

struct clickhouse {
    const clickhouse_config_t  *cfg;
    store_t                    *store;
    usage_t                    *usage;
    push_t                      push;
    char                       *insert_url;
    char                        gateway[256];
    char                        run[33];    /* this process's rows */
    pthread_t                   thread;
    pthread_mutex_t             lock;
    pthread_cond_t              wake;
    int                         stopping;

    /* the thread's own */
    ch_batch_t                 *head, *tail;
    uint64_t                    next_seq;
    size_t                      bound;
    double                      backoff;
    double                      retry_at;
    json_t                     *rows;       /* the batch being built */
    time_t                      minute;

    /* published for /metrics */
    atomic_ullong               rows_written;
    atomic_ullong               dropped[CH_DROP_REASONS];
    atomic_ullong               requests_ok;
    atomic_ullong               requests_failed;
    atomic_ullong               queue_bytes;
};

static const char *const  ch_drop_names[CH_DROP_REASONS] = {
    "queue_full", "rejected", "shutdown"
};

static void *ch_thread(void *data);
static void ch_collect(clickhouse_t *ch, time_t minute);
static void ch_row(const usage_row_t *row, void *data);
static void ch_enqueue(clickhouse_t *ch, ch_batch_t *b);
static int ch_deliver(clickhouse_t *ch, double now);
static void ch_pop(clickhouse_t *ch, int dropped_reason);
static int ch_spool_write(clickhouse_t *ch, ch_batch_t *b);
static void ch_spool_path(const clickhouse_t *ch, const ch_batch_t *b,
    char *out, size_t size);
static void ch_spool_load(clickhouse_t *ch);
static int ch_insert_url(clickhouse_t *ch, char *err, size_t errlen);
static double ch_now(void);

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

    free(cfg->sink.url);
    free(cfg->sink.basic_user);
    free(cfg->sink.basic_password);
    free(cfg->sink.bearer_token);
    free(cfg->sink.ca_file);
    free(cfg->sink.cert_file);
    free(cfg->sink.key_file);
    free(cfg->sink.spool_dir);
    for (i = 0; i < cfg->sink.n_headers; i++) {
        free(cfg->sink.headers[i]);
    }
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

    ch->cfg = cfg;
    ch->store = store;
    ch->next_seq = 1;
    ch->bound = cfg->sink.spool_dir ? cfg->sink.spool_bytes
                                    : cfg->sink.queue_bytes;
    pthread_mutex_init(&ch->lock, NULL);
    pthread_cond_init(&ch->wake, NULL);

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

    if (push_init(&ch->push, &cfg->sink, "application/x-ndjson", NULL, NULL,
                  why, sizeof(why)) != 0)
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

    errno = pthread_create(&ch->thread, NULL, ch_thread, ch);
    if (errno != 0) {
        snprintf(err, errlen, "clickhouse: cannot start a thread: %s",
                 strerror(errno));
        goto failed;
    }

    log_msg("info", "usage rows to %s every %lds (run %s)", cfg->sink.url,
            cfg->interval, ch->run);
    return ch;

failed:
    push_free(&ch->push);
    usage_free(ch->usage);
    free(ch->insert_url);
    free(ch);
    return NULL;
}

void
clickhouse_stop(clickhouse_t *ch)
{
    if (ch == NULL) {
        return;
    }

    pthread_mutex_lock(&ch->lock);
    ch->stopping = 1;
    pthread_cond_signal(&ch->wake);
    pthread_mutex_unlock(&ch->lock);
    pthread_join(ch->thread, NULL);

    /* what is left is on disk, or lost and counted */
    while (ch->head) {
        if (ch->head->seq) {
            ch_batch_t  *b = ch->head;

            ch->head = b->next;
            free(b->data);
            free(b);
            continue;
        }
        ch_pop(ch, CH_DROP_SHUTDOWN);
    }

    push_free(&ch->push);
    usage_free(ch->usage);
    free(ch->insert_url);
    pthread_mutex_destroy(&ch->lock);
    pthread_cond_destroy(&ch->wake);
    free(ch);
}

/*
 * At each interval's end the rows of the interval that ended are collected
 * first, then the queue is delivered oldest first whenever no backoff runs.
 */

static void *
ch_thread(void *data)
{
    clickhouse_t     *ch = data;
    long              step = ch->cfg->interval;
    time_t            start = (time_t) ch_now() / step * step;
    double            now, until;
    struct timespec   ts;
    int               stopping = 0;

    while (!stopping) {
        now = ch_now();
        if (now >= (double) (start + step)) {
            ch_collect(ch, start);
            start = (time_t) now / step * step;
        }

        while (ch->head && ch_now() >= ch->retry_at
               && ch_now() < (double) (start + step)
               && ch_deliver(ch, ch_now()) == 0)
        {
            /* the queue drains while ClickHouse takes it */
        }

        until = (double) (start + step);
        if (ch->head && ch->retry_at < until) {
            until = ch->retry_at;
        }
        ts.tv_sec = (time_t) until;
        ts.tv_nsec = (long) ((until - (double) ts.tv_sec) * 1e9);

        pthread_mutex_lock(&ch->lock);
        if (!ch->stopping && ch_now() < until) {
            pthread_cond_timedwait(&ch->wake, &ch->lock, &ts);
        }
        stopping = ch->stopping;
        pthread_mutex_unlock(&ch->lock);
    }

    /* the interval in progress, counted so far, and one try for each */
    ch_collect(ch, start);
    ch->retry_at = 0;
    while (ch->head && ch_deliver(ch, ch_now()) == 0) {
        /* until the first failure */
    }

    return NULL;
}

static void
ch_collect(clickhouse_t *ch, time_t minute)
{
    ch_batch_t  *b;
    json_t      *row;
    buf_t        out = { 0 };
    size_t       i;
    char        *line;

    ch->rows = json_array();
    ch->minute = minute;
    if (ch->rows == NULL) {
        return;
    }

    if (usage_collect(ch->usage, ch->store, ch_row, ch) != 0) {
        log_msg("error", "clickhouse: out of memory collecting usage; the "
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
        b = calloc(1, sizeof(ch_batch_t));
        if (b == NULL || out.failed) {
            atomic_fetch_add(&ch->dropped[CH_DROP_QUEUE_FULL],
                             json_array_size(ch->rows));
            free(b);
            buf_free(&out);
        } else {
            b->data = out.data;
            b->len = out.len;
            b->rows = json_array_size(ch->rows);
            ch_enqueue(ch, b);
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

    cost = clickhouse_cost_class(ch->cfg, r->service, r->route);
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
        atomic_fetch_add(&ch->dropped[CH_DROP_QUEUE_FULL], 1);
    }
}

/* A batch goes to disk before anything else; past the bound the oldest
   batches go (counted), as the newest usage is what bills are made of
   last. */

static void
ch_enqueue(clickhouse_t *ch, ch_batch_t *b)
{
    while (ch->head && atomic_load(&ch->queue_bytes) + b->len > ch->bound) {
        ch_pop(ch, CH_DROP_QUEUE_FULL);
    }

    if (b->len > ch->bound
        || (ch->cfg->sink.spool_dir && ch_spool_write(ch, b) != 0))
    {
        atomic_fetch_add(&ch->dropped[CH_DROP_QUEUE_FULL], b->rows);
        free(b->data);
        free(b);
        return;
    }

    if (ch->tail) {
        ch->tail->next = b;
    } else {
        ch->head = b;
    }
    ch->tail = b;
    atomic_fetch_add(&ch->queue_bytes, b->len);
}

/* Sends the head; returns 0 when it is done with (written or refused). */

static int
ch_deliver(clickhouse_t *ch, double now)
{
    ch_batch_t     *b = ch->head;
    push_result_t   rc;

    rc = push_post(&ch->push, ch->insert_url, b->data, b->len, NULL);

    if (rc == PUSH_OK) {
        atomic_fetch_add(&ch->requests_ok, 1);
        atomic_fetch_add(&ch->rows_written, b->rows);
        ch->backoff = 0;
        ch_pop(ch, -1);
        return 0;
    }

    atomic_fetch_add(&ch->requests_failed, 1);

    if (rc == PUSH_REJECTED) {
        log_msg("error", "clickhouse: %s refused %zu rows: %s",
                ch->cfg->sink.url, b->rows, ch->push.error);
        ch_pop(ch, CH_DROP_REJECTED);
        return 0;
    }

    ch->backoff = push_backoff(&ch->push, ch->backoff, CH_BACKOFF_FIRST,
                               CH_BACKOFF_MAX);
    ch->retry_at = now + ch->backoff;
    log_msg("warn", "clickhouse: %s: %s; retrying in %.1fs",
            ch->cfg->sink.url, ch->push.error, ch->backoff);
    return -1;
}

static void
ch_pop(clickhouse_t *ch, int dropped_reason)
{
    ch_batch_t  *b = ch->head;
    char         path[4096];

    ch->head = b->next;
    if (ch->head == NULL) {
        ch->tail = NULL;
    }
    if (b->seq) {
        ch_spool_path(ch, b, path, sizeof(path));
        unlink(path);
    }
    atomic_fetch_sub(&ch->queue_bytes, b->len);
    if (dropped_reason >= 0) {
        atomic_fetch_add(&ch->dropped[dropped_reason], b->rows);
    }
    free(b->data);
    free(b);
}

/* Spool file "<seq>-<rows>.jsonl", written whole or not at all. */

static int
ch_spool_write(clickhouse_t *ch, ch_batch_t *b)
{
    char   path[4096], tmp[4200];
    FILE  *f;

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
ch_spool_path(const clickhouse_t *ch, const ch_batch_t *b, char *out,
    size_t size)
{
    snprintf(out, size, "%s/%020llu-%zu.jsonl", ch->cfg->sink.spool_dir,
             (unsigned long long) b->seq, b->rows);
}

static int
ch_seq_compare(const void *a, const void *b)
{
    const ch_batch_t  *x = *(ch_batch_t *const *) a;
    const ch_batch_t  *y = *(ch_batch_t *const *) b;

    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* What an earlier run spooled is sent first, oldest first. */

static void
ch_spool_load(clickhouse_t *ch)
{
    DIR            *d;
    struct dirent  *de;
    ch_batch_t     *found[4096], *b;
    size_t          n = 0, i;
    char            path[4096], *end;
    FILE           *f;
    struct stat     st;

    d = opendir(ch->cfg->sink.spool_dir);
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
        b->rows = rows;
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
        if (ch->tail) {
            ch->tail->next = b;
        } else {
            ch->head = b;
        }
        ch->tail = b;
        atomic_fetch_add(&ch->queue_bytes, b->len);
    }

    if (n) {
        log_msg("info", "clickhouse: %zu batches from the spool to send "
                "first", n);
    }
}

/* <url>[/]?query=INSERT INTO <table> FORMAT JSONEachRow */

static int
ch_insert_url(clickhouse_t *ch, char *err, size_t errlen)
{
    const char  *url = ch->cfg->sink.url;
    char         query[512], *escaped;
    size_t       n = strlen(url);
    CURL        *e = curl_easy_init();

    snprintf(query, sizeof(query), "INSERT INTO %s FORMAT JSONEachRow",
             ch->cfg->table);
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

void
clickhouse_metrics(expo_writer_t *w, void *data)
{
    static const char  *reason[] = { "reason" };
    static const char  *result[] = { "result" };
    static const char  *results[] = { "success", "failure" };
    clickhouse_t       *ch = data;
    int                 i;

    expo_family(w, "obs_clickhouse_rows_written",
                "Usage rows ClickHouse accepted.", NULL, EXPO_COUNTER);
    expo_sample(w, NULL, NULL, 0, (double) atomic_load(&ch->rows_written));
    expo_family_end(w);

    expo_family(w, "obs_clickhouse_rows_dropped",
                "Usage rows given up, by reason: the spool (or queue) bound "
                "was reached, ClickHouse refused them (4xx), or the sidecar "
                "stopped without a spool.", NULL, EXPO_COUNTER);
    for (i = 0; i < CH_DROP_REASONS; i++) {
        expo_sample(w, reason, &ch_drop_names[i], 1,
                    (double) atomic_load(&ch->dropped[i]));
    }
    expo_family_end(w);

    expo_family(w, "obs_clickhouse_requests",
                "INSERT requests to ClickHouse, by result.", NULL,
                EXPO_COUNTER);
    expo_sample(w, result, &results[0], 1,
                (double) atomic_load(&ch->requests_ok));
    expo_sample(w, result, &results[1], 1,
                (double) atomic_load(&ch->requests_failed));
    expo_family_end(w);

    expo_family(w, "obs_clickhouse_queue_bytes",
                "Usage batch bytes waiting (spooled) to be written.", "bytes",
                EXPO_GAUGE);
    expo_sample(w, NULL, NULL, 0, (double) atomic_load(&ch->queue_bytes));
    expo_family_end(w);
}

static double
ch_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}
