/* Prometheus remote-write.  See remote_write.h. */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <snappy-c.h>

#include "log.h"
#include "push.h"
#include "pusher_metrics.h"
#include "remote_write.h"
#include "prometheus/remote.pb-c.h"

#define RW_BACKOFF_FIRST   0.5
#define RW_BACKOFF_MAX     30.0
#define RW_ORG_MAX         150      /* what Cortex and Mimir accept */

typedef struct rw_payload {
    struct rw_payload  *next;
    char               *data;       /* snappy-compressed WriteRequest */
    size_t              len;
    size_t              samples;
    char                org[RW_ORG_MAX + 1];
} rw_payload_t;

enum { RW_DROP_QUEUE_FULL = 0, RW_DROP_REJECTED, RW_DROP_SHUTDOWN,
       RW_DROP_REASONS };
enum { RW_REQ_SUCCESS = 0, RW_REQ_RETRIED, RW_REQ_REJECTED, RW_REQ_RESULTS };

struct remote_write {
    const remote_write_config_t  *cfg;
    store_t                      *store;
    push_t                        push;
    pthread_t                     thread;
    pthread_mutex_t               lock;
    pthread_cond_t                wake;
    int                           stopping;

    /* the thread's own */
    snapshot_t                    snap;
    rw_payload_t                 *head, *tail;
    double                        backoff;
    double                        retry_at;

    /* published for /metrics */
    atomic_ullong                 samples_sent;
    atomic_ullong                 dropped[RW_DROP_REASONS];
    atomic_ullong                 requests[RW_REQ_RESULTS];
    atomic_ullong                 queue_bytes;
    atomic_ullong                 last_success_ms;
};

static const char *const  rw_drop_names[RW_DROP_REASONS] = {
    "queue_full", "rejected", "shutdown"
};
static const char *const  rw_request_names[RW_REQ_RESULTS] = {
    "success", "retried", "rejected"
};

static void *rw_thread(void *data);
static void rw_snapshot(remote_write_t *rw);
static void rw_enqueue(remote_write_t *rw, rw_payload_t *p);
static int rw_deliver(remote_write_t *rw, double now);
static void rw_pop(remote_write_t *rw, int dropped_reason);
static const char *rw_org(const remote_write_t *rw, const snapshot_t *s,
    const snap_sample_t *sample);
static int rw_org_valid(const char *org);
static double rw_now(void);

void
remote_write_config_defaults(remote_write_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->interval = 15;
    cfg->max_samples = 2000;
    cfg->sink.timeout_ms = 10000;
    cfg->sink.queue_bytes = 32 << 20;
}

void
remote_write_config_free(remote_write_config_t *cfg)
{
    int  i;

    free(cfg->sink.url);
    free(cfg->sink.basic_user);
    free(cfg->sink.basic_password);
    free(cfg->sink.bearer_token);
    free(cfg->sink.ca_file);
    free(cfg->sink.cert_file);
    free(cfg->sink.key_file);
    for (i = 0; i < cfg->sink.n_headers; i++) {
        free(cfg->sink.headers[i]);
    }
    free(cfg->org_id);
    free(cfg->operator_tenant);
    memset(cfg, 0, sizeof(*cfg));
}

remote_write_t *
remote_write_start(const remote_write_config_t *cfg, store_t *store,
    char *err, size_t errlen)
{
    static const char *const  version[] = {
        "X-Prometheus-Remote-Write-Version: 0.1.0", NULL
    };

    remote_write_t  *rw;
    char             why[256];

    if (cfg->sink.url == NULL) {
        return NULL;
    }

    rw = calloc(1, sizeof(remote_write_t));
    if (rw == NULL) {
        snprintf(err, errlen, "remote_write: out of memory");
        return NULL;
    }

    rw->cfg = cfg;
    rw->store = store;
    pthread_mutex_init(&rw->lock, NULL);
    pthread_cond_init(&rw->wake, NULL);

    if (push_init(&rw->push, &cfg->sink, "application/x-protobuf", "snappy",
                  version, why, sizeof(why)) != 0)
    {
        snprintf(err, errlen, "remote_write: %s", why);
        push_free(&rw->push);
        free(rw);
        return NULL;
    }

    errno = pthread_create(&rw->thread, NULL, rw_thread, rw);
    if (errno != 0) {
        snprintf(err, errlen, "remote_write: cannot start a thread: %s",
                 strerror(errno));
        push_free(&rw->push);
        free(rw);
        return NULL;
    }

    log_msg("info", "remote-writing series to %s every %gs", cfg->sink.url,
            cfg->interval);
    return rw;
}

void
remote_write_stop(remote_write_t *rw)
{
    if (rw == NULL) {
        return;
    }

    pthread_mutex_lock(&rw->lock);
    rw->stopping = 1;
    pthread_cond_signal(&rw->wake);
    pthread_mutex_unlock(&rw->lock);
    pthread_join(rw->thread, NULL);

    while (rw->head) {
        rw_pop(rw, RW_DROP_SHUTDOWN);
    }
    snapshot_free(&rw->snap);
    push_free(&rw->push);
    pthread_mutex_destroy(&rw->lock);
    pthread_cond_destroy(&rw->wake);
    free(rw);
}

/*
 * The loop: a snapshot every interval (on the interval's grid, so a slow
 * delivery does not stretch it), and in between the queue's head delivered
 * whenever no backoff is running.
 */

static void *
rw_thread(void *data)
{
    remote_write_t   *rw = data;
    double            next = rw_now(), now, until;
    struct timespec   ts;
    int               stopping = 0;

    while (!stopping) {
        now = rw_now();
        if (now >= next) {
            rw_snapshot(rw);
            next += rw->cfg->interval * (1 + (int) ((now - next)
                                                   / rw->cfg->interval));
        }

        while (rw->head && rw_now() >= rw->retry_at
               && rw_now() < next && rw_deliver(rw, rw_now()) == 0)
        {
            /* the queue drains while the receiver takes it */
        }

        until = rw->head && rw->retry_at < next ? rw->retry_at : next;
        ts.tv_sec = (time_t) until;
        ts.tv_nsec = (long) ((until - (double) ts.tv_sec) * 1e9);

        pthread_mutex_lock(&rw->lock);
        if (!rw->stopping && rw_now() < until) {
            pthread_cond_timedwait(&rw->wake, &rw->lock, &ts);
        }
        stopping = rw->stopping;
        pthread_mutex_unlock(&rw->lock);
    }

    /* last: what ingest counted up to now, then one try for each payload */
    rw_snapshot(rw);
    rw->retry_at = 0;
    while (rw->head && rw_deliver(rw, rw_now()) == 0) {
        /* until the first failure */
    }

    return NULL;
}

/* Snapshot -> one payload per tenant and max_samples samples. */

static int
rw_org_compare(const void *a, const void *b, void *data)
{
    const char *const  *orgs = data;
    const char         *x = orgs[*(const size_t *) a];
    const char         *y = orgs[*(const size_t *) b];
    int                 c = strcmp(x, y);

    if (c != 0) {
        return c;
    }
    return *(const size_t *) a < *(const size_t *) b ? -1 : 1;
}

static void
rw_snapshot(remote_write_t *rw)
{
    snapshot_t     *s = &rw->snap;
    size_t         *idx, i, start, end;
    const char    **orgs;
    rw_payload_t   *p;
    buf_t           body = { 0 };

    if (snapshot_take(s, rw->store) != 0) {
        log_msg("error", "remote_write: out of memory taking a snapshot");
    }

    idx = malloc(sizeof(size_t) * (s->n_samples + 1));
    orgs = malloc(sizeof(char *) * (s->n_samples + 1));
    if (idx == NULL || orgs == NULL) {
        atomic_fetch_add(&rw->dropped[RW_DROP_QUEUE_FULL], s->n_samples);
        free(idx);
        free(orgs);
        return;
    }

    for (i = 0; i < s->n_samples; i++) {
        idx[i] = i;
        orgs[i] = rw_org(rw, s, &s->samples[i]);
    }
    qsort_r(idx, s->n_samples, sizeof(size_t), rw_org_compare, orgs);

    for (start = 0; start < s->n_samples; start = end) {
        for (end = start + 1;
             end < s->n_samples && end - start < (size_t) rw->cfg->max_samples
             && strcmp(orgs[idx[end]], orgs[idx[start]]) == 0;
             end++)
        {
            /* one tenant, at most max_samples */
        }

        buf_reset(&body);
        p = calloc(1, sizeof(rw_payload_t));
        if (p == NULL
            || remote_write_encode(s, idx + start, end - start, &body) != 0)
        {
            atomic_fetch_add(&rw->dropped[RW_DROP_QUEUE_FULL], end - start);
            free(p);
            continue;
        }

        p->data = body.data;
        p->len = body.len;
        p->samples = end - start;
        snprintf(p->org, sizeof(p->org), "%s", orgs[idx[start]]);
        memset(&body, 0, sizeof(body));
        rw_enqueue(rw, p);
    }

    buf_free(&body);
    free(idx);
    free(orgs);
}

/* The queue keeps the newest: a counter's later value says more than its
   earlier one, so when the bound is reached the oldest payloads go. */

static void
rw_enqueue(remote_write_t *rw, rw_payload_t *p)
{
    while (rw->head
           && atomic_load(&rw->queue_bytes) + p->len > rw->cfg->sink.queue_bytes)
    {
        rw_pop(rw, RW_DROP_QUEUE_FULL);
        rw->backoff = 0;
    }

    if (p->len > rw->cfg->sink.queue_bytes) {
        atomic_fetch_add(&rw->dropped[RW_DROP_QUEUE_FULL], p->samples);
        free(p->data);
        free(p);
        return;
    }

    if (rw->tail) {
        rw->tail->next = p;
    } else {
        rw->head = p;
    }
    rw->tail = p;
    atomic_fetch_add(&rw->queue_bytes, p->len);
}

/* Sends the head; returns 0 when it is done with (sent or refused). */

static int
rw_deliver(remote_write_t *rw, double now)
{
    rw_payload_t   *p = rw->head;
    push_result_t   rc;

    rc = push_post(&rw->push, NULL, p->data, p->len,
                   p->org[0] ? p->org : NULL);

    if (rc == PUSH_OK) {
        atomic_fetch_add(&rw->requests[RW_REQ_SUCCESS], 1);
        atomic_fetch_add(&rw->samples_sent, p->samples);
        atomic_store(&rw->last_success_ms, (unsigned long long) (now * 1000));
        rw->backoff = 0;
        rw_pop(rw, -1);
        return 0;
    }

    if (rc == PUSH_REJECTED) {
        atomic_fetch_add(&rw->requests[RW_REQ_REJECTED], 1);
        log_msg("error", "remote_write: %s refused %zu samples: %s",
                rw->cfg->sink.url, p->samples, rw->push.error);
        rw_pop(rw, RW_DROP_REJECTED);
        return 0;
    }

    atomic_fetch_add(&rw->requests[RW_REQ_RETRIED], 1);
    rw->backoff = push_backoff(&rw->push, rw->backoff, RW_BACKOFF_FIRST,
                               RW_BACKOFF_MAX);
    rw->retry_at = now + rw->backoff;
    log_msg("warn", "remote_write: %s: %s; retrying in %.1fs",
            rw->cfg->sink.url, rw->push.error, rw->backoff);
    return -1;
}

static void
rw_pop(remote_write_t *rw, int dropped_reason)
{
    rw_payload_t  *p = rw->head;

    rw->head = p->next;
    if (rw->head == NULL) {
        rw->tail = NULL;
    }
    atomic_fetch_sub(&rw->queue_bytes, p->len);
    if (dropped_reason >= 0) {
        atomic_fetch_add(&rw->dropped[dropped_reason], p->samples);
    }
    free(p->data);
    free(p);
}

/* The X-Scope-OrgID of a sample ("" for none).  Series without a tenant, of
   no tenant ("none"), past the tenant cap or with a name a receiver would
   refuse are the operator's. */

static const char *
rw_org(const remote_write_t *rw, const snapshot_t *s,
    const snap_sample_t *sample)
{
    const char  *tenant;

    switch (rw->cfg->tenant_header) {
    case TENANT_HEADER_FIXED:
        return rw->cfg->org_id;
    case TENANT_HEADER_PER_TENANT:
        if (sample->tenant < 0) {
            return rw->cfg->operator_tenant;
        }
        tenant = snapshot_str(s, (uint32_t) sample->tenant);
        if (strcmp(tenant, "none") == 0 || strcmp(tenant, "__overflow__") == 0
            || !rw_org_valid(tenant))
        {
            return rw->cfg->operator_tenant;
        }
        return tenant;
    default:
        return "";
    }
}

/* Cortex/Mimir tenant ids: 1-150 of [A-Za-z0-9!-_.*'()], not . or .. */

static int
rw_org_valid(const char *org)
{
    size_t  len = strlen(org);

    if (len == 0 || len > RW_ORG_MAX || strcmp(org, ".") == 0
        || strcmp(org, "..") == 0)
    {
        return 0;
    }
    return strspn(org, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                       "0123456789!-_.*'()") == len;
}

int
remote_write_encode(const snapshot_t *s, const size_t *idx, size_t n,
    buf_t *out)
{
    Prometheus__WriteRequest   req = PROMETHEUS__WRITE_REQUEST__INIT;
    Prometheus__TimeSeries    *series = NULL, **series_ptrs = NULL;
    Prometheus__Sample        *samples = NULL, **sample_ptrs = NULL;
    Prometheus__Label         *labels = NULL, **label_ptrs = NULL;
    size_t                     i, l, n_labels = 0, k = 0, packed_len, max;
    uint8_t                   *packed = NULL;
    int                        rc = -1;

    for (i = 0; i < n; i++) {
        n_labels += s->samples[idx[i]].n_labels;
    }

    series = calloc(n + 1, sizeof(*series));
    series_ptrs = calloc(n + 1, sizeof(*series_ptrs));
    samples = calloc(n + 1, sizeof(*samples));
    sample_ptrs = calloc(n + 1, sizeof(*sample_ptrs));
    labels = calloc(n_labels + 1, sizeof(*labels));
    label_ptrs = calloc(n_labels + 1, sizeof(*label_ptrs));
    if (!series || !series_ptrs || !samples || !sample_ptrs || !labels
        || !label_ptrs)
    {
        goto done;
    }

    for (i = 0; i < n; i++) {
        const snap_sample_t  *in = &s->samples[idx[i]];

        prometheus__time_series__init(&series[i]);
        prometheus__sample__init(&samples[i]);
        samples[i].value = in->value;
        samples[i].timestamp = s->timestamp_ms;
        sample_ptrs[i] = &samples[i];
        series[i].n_samples = 1;
        series[i].samples = &sample_ptrs[i];
        series[i].n_labels = in->n_labels;
        series[i].labels = &label_ptrs[k];

        for (l = 0; l < in->n_labels; l++, k++) {
            const snap_label_t  *sl = &s->labels[in->first_label + l];

            prometheus__label__init(&labels[k]);
            labels[k].name = (char *) snapshot_str(s, sl->name);
            labels[k].value = (char *) snapshot_str(s, sl->value);
            label_ptrs[k] = &labels[k];
        }
        series_ptrs[i] = &series[i];
    }

    req.n_timeseries = n;
    req.timeseries = series_ptrs;

    packed_len = prometheus__write_request__get_packed_size(&req);
    packed = malloc(packed_len + 1);
    max = snappy_max_compressed_length(packed_len);
    if (packed == NULL || buf_reserve(out, max) != 0) {
        goto done;
    }

    prometheus__write_request__pack(&req, packed);
    if (snappy_compress((const char *) packed, packed_len,
                        out->data + out->len, &max) != SNAPPY_OK)
    {
        goto done;
    }
    out->len += max;
    rc = 0;

done:
    free(series);
    free(series_ptrs);
    free(samples);
    free(sample_ptrs);
    free(labels);
    free(label_ptrs);
    free(packed);
    return rc;
}

void
remote_write_metrics(expo_writer_t *w, void *data)
{
    static const char  *reason[] = { "reason" };
    static const char  *result[] = { "result" };
    remote_write_t     *rw = data;
    int                 i;

    expo_family(w, "obs_remote_write_samples_sent",
                "Samples the remote-write receiver accepted.", NULL,
                EXPO_COUNTER);
    expo_sample(w, NULL, NULL, 0, (double) atomic_load(&rw->samples_sent));
    expo_family_end(w);

    expo_family(w, "obs_remote_write_samples_dropped",
                "Samples given up, by reason: the queue bound was reached, "
                "the receiver refused them (4xx), or the sidecar stopped.",
                NULL, EXPO_COUNTER);
    for (i = 0; i < RW_DROP_REASONS; i++) {
        expo_sample(w, reason, &rw_drop_names[i], 1,
                    (double) atomic_load(&rw->dropped[i]));
    }
    expo_family_end(w);

    expo_family(w, "obs_remote_write_requests",
                "Remote-write requests, by result (retried: 429, 5xx or no "
                "connection).", NULL, EXPO_COUNTER);
    for (i = 0; i < RW_REQ_RESULTS; i++) {
        expo_sample(w, result, &rw_request_names[i], 1,
                    (double) atomic_load(&rw->requests[i]));
    }
    expo_family_end(w);

    expo_family(w, "obs_remote_write_queue_bytes",
                "Compressed WriteRequest bytes waiting to be sent.", "bytes",
                EXPO_GAUGE);
    expo_sample(w, NULL, NULL, 0, (double) atomic_load(&rw->queue_bytes));
    expo_family_end(w);

    expo_family(w, "obs_remote_write_last_success_timestamp_seconds",
                "When the receiver last accepted a request (0: never).",
                "seconds", EXPO_GAUGE);
    expo_sample(w, NULL, NULL, 0,
                (double) atomic_load(&rw->last_success_ms) / 1000);
    expo_family_end(w);
}

static double
rw_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}
