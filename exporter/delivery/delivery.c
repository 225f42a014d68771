/* The delivery layer.  See delivery.h. */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "delivery.h"
#include "log.h"
#include "spool.h"

#define TICK_MS          50
#define LOG_EVERY        60.0       /* seconds between repeated failure lines */
/* the delivery thread yields the CPU to ingest (the metrics) */
#define DELIVERY_NICE    10

struct destination {
    delivery_t            *d;
    destination_spec_t     spec;
    destination_config_t   cfg;         /* its own copy */
    char                  *url;
    char                   shown[256];  /* the URL for logs: no user:password,
                                           no query string */
    http_client_t         *client;
    FILE                  *file;
    spool_t                spool;
    int                    spooling;

    /* the delivery thread's */
    payload_t             *mem_head, *mem_tail;
    payload_t             *spool_head, *spool_tail;
    payload_t             *current;     /* being delivered until done */
    double                 retry_at;    /* monotonic */
    double                 backoff;
    uint64_t               rng;
    int                    failing;
    uint64_t               failures;
    double                 failing_since;
    double                 fail_logged;
    double                 reject_logged;
    uint64_t               rejects_unlogged;
    destination_stats_t    stats;

    /* under the layer's lock */
    payload_t             *handed;
    payload_t            **handed_tail;
    size_t                 handed_bytes;
    destination_stats_t    published;

    atomic_ullong          lost;        /* before it was a payload */
    atomic_ullong          late;        /* handed after the stop */
};

struct delivery {
    double                 drain_seconds;
    http_multi_t          *multi;
    pthread_t              thread;
    int                    started;
    pthread_mutex_t        lock;
    pthread_cond_t         taken;
    int                    stopping;
    int                    stopped;
    destination_t         *dest[DELIVERY_MAX_DESTINATIONS];
    int                    n;
};

const char *const  delivery_drop_names[DROP_REASONS] = {
    "queue_full", "spool_full", "rejected", "shutdown"
};

static void *delivery_main(void *data);
static int delivery_take(delivery_t *d, payload_t **taken, int *n);
static void delivery_publish(delivery_t *d);
static int delivery_drained(delivery_t *d, int n, double now);
static void dest_done(void *owner);
static void dest_enqueue(destination_t *t, payload_t *p);
static int dest_spool(destination_t *t, payload_t *p, int first);
static int dest_room(destination_t *t, payload_t *p, size_t mem,
    size_t disk, size_t files);
static void dest_pump(destination_t *t, double now);
static void dest_retry(destination_t *t, const http_response_t *r,
    http_verdict_t v, double now);
static void dest_partial(destination_t *t, payload_t *p,
    const http_response_t *r, double now);
static const char *dest_refusal_log(destination_t *t, double now);
static void dest_shutdown(destination_t *t);
static void dest_drop(destination_t *t, payload_t *p, drop_reason_t why);
static void dest_free(destination_t *t);
static void dest_shown_url(destination_t *t);
static size_t shown(const char *in, size_t len, char *out, size_t size);
static void describe(const http_response_t *r, char *out, size_t size);
static void list_push(payload_t **head, payload_t **tail, payload_t *p);
static payload_t *list_pop(payload_t **head, payload_t **tail);
static double mono_now(void);

/*
 * Bodies of a size malloc hands out fresh each time: a batch's body freed
 * by the delivery thread went back to the system (the exporter thread's
 * heap trimmed, or an mmap'd block unmapped), and the next one faulted its
 * pages in again, a tenth of the sidecar's CPU with OTLP's uncompressed
 * bodies.  A few are kept for payload_new instead, their sizes rounded up
 * so that the next batch's fits.
 */
#define PAYLOAD_SPARES      4
#define PAYLOAD_SPARE_MIN   (64 * 1024)
#define PAYLOAD_SPARE_MAX   (2 * 1024 * 1024)

static pthread_mutex_t  payload_spare_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char   *payload_spare[PAYLOAD_SPARES];
static size_t           payload_spare_cap[PAYLOAD_SPARES];
static int              payload_spares;

payload_t *
payload_new(size_t cap, size_t items, const char *org)
{
    payload_t  *p = calloc(1, sizeof(payload_t));
    int         i;

    if (p == NULL) {
        return NULL;
    }

    if (cap >= PAYLOAD_SPARE_MIN && cap <= PAYLOAD_SPARE_MAX) {
        cap = (cap + PAYLOAD_SPARE_MIN - 1) & ~(size_t) (PAYLOAD_SPARE_MIN - 1);

        pthread_mutex_lock(&payload_spare_lock);
        for (i = payload_spares - 1; i >= 0; i--) {
            if (payload_spare_cap[i] >= cap) {
                p->data = payload_spare[i];
                p->cap = payload_spare_cap[i];
                payload_spares--;
                payload_spare[i] = payload_spare[payload_spares];
                payload_spare_cap[i] = payload_spare_cap[payload_spares];
                break;
            }
        }
        pthread_mutex_unlock(&payload_spare_lock);
    }

    if (p->data == NULL) {
        p->data = malloc(cap ? cap : 1);
        p->cap = cap;
    }

    if (p->data == NULL) {
        free(p);
        return NULL;
    }

    p->items = items;
    snprintf(p->org, sizeof(p->org), "%s", org ? org : "");
    return p;
}

payload_t *
payload_compress(compress_t how, const void *body, size_t len, size_t items,
    const char *org)
{
    payload_t  *p;
    size_t      cap = compress_bound(how, len);

    p = payload_new(cap, items, org);
    if (p == NULL) {
        return NULL;
    }

    p->len = compress_fast(how, body, len, p->data, cap);
    if (p->len == 0) {
        payload_free(p);
        return NULL;
    }

    return p;
}

void
payload_free(payload_t *p)
{
    if (p == NULL) {
        return;
    }

    if (p->data && p->cap >= PAYLOAD_SPARE_MIN
        && p->cap <= PAYLOAD_SPARE_MAX)
    {
        pthread_mutex_lock(&payload_spare_lock);
        if (payload_spares < PAYLOAD_SPARES) {
            payload_spare[payload_spares] = p->data;
            payload_spare_cap[payload_spares] = p->cap;
            payload_spares++;
            p->data = NULL;
        }
        pthread_mutex_unlock(&payload_spare_lock);
    }

    free(p->data);
    free(p);
}

void
payload_spares_free(void)
{
    pthread_mutex_lock(&payload_spare_lock);
    while (payload_spares > 0) {
        payload_spares--;
        free(payload_spare[payload_spares]);
    }
    pthread_mutex_unlock(&payload_spare_lock);
}

delivery_t *
delivery_new(double drain_seconds)
{
    delivery_t  *d = calloc(1, sizeof(delivery_t));

    if (d == NULL) {
        return NULL;
    }

    d->drain_seconds = drain_seconds;
    d->multi = http_multi_new();
    if (d->multi == NULL) {
        free(d);
        return NULL;
    }
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->taken, NULL);
    return d;
}

destination_t *
delivery_add(delivery_t *d, const destination_spec_t *spec, char *err,
    size_t errlen)
{
    destination_t  *t;
    payload_t      *p, *next;
    size_t          n = 0;
    char            why[256];

    if (d->n == DELIVERY_MAX_DESTINATIONS) {
        snprintf(err, errlen, "%s: too many destinations", spec->name);
        return NULL;
    }

    t = calloc(1, sizeof(destination_t));
    if (t == NULL || destination_config_copy(&t->cfg, spec->cfg) != 0
        || config_copy_string(&t->url, spec->url ? spec->url : spec->cfg->url)
           != 0)
    {
        snprintf(err, errlen, "%s: out of memory", spec->name);
        dest_free(t);
        return NULL;
    }

    t->d = d;
    t->spec = *spec;
    t->spec.cfg = &t->cfg;
    t->spec.url = t->url;
    if (t->spec.classify == NULL) {
        t->spec.classify = http_classify;
    }
    t->handed_tail = &t->handed;
    t->rng = (uint64_t) (mono_now() * 1e9) ^ (uint64_t) (uintptr_t) t;
    t->rng |= 1;
    t->stats.spool_limit = t->cfg.spool_bytes;
    t->stats.mode = spec->off ? "off" : t->url ? "http" : "file";
    t->stats.enabled = !spec->off;
    dest_shown_url(t);

    if (spec->off) {
        /* counters only */

    } else if (t->url == NULL) {
        if (t->cfg.file == NULL || strcmp(t->cfg.file, "-") == 0) {
            t->file = stdout;
        } else if ((t->file = fopen(t->cfg.file, "a")) == NULL) {
            snprintf(err, errlen, "%s file %s: %s", spec->name, t->cfg.file,
                     strerror(errno));
            dest_free(t);
            return NULL;
        }

    } else {
        t->client = http_client_new(d->multi, &t->cfg, t->url,
                                    spec->content_type,
                                    spec->content_encoding, spec->headers,
                                    spec->grpc, t, why, sizeof(why));
        if (t->client == NULL) {
            snprintf(err, errlen, "%s: %s", spec->name, why);
            dest_free(t);
            return NULL;
        }

        if (t->cfg.spool_dir && t->cfg.spool_bytes) {
            if (spool_open(&t->spool, t->cfg.spool_dir, t->cfg.spool_bytes,
                           t->cfg.spool_files ? t->cfg.spool_files
                                              : SPOOL_FILES_DEFAULT,
                           why, sizeof(why)) != 0)
            {
                snprintf(err, errlen, "%s %s", spec->name, why);
                dest_free(t);
                return NULL;
            }
            t->spooling = 1;

            /* what an earlier run spooled goes first, oldest first */
            for (p = spool_load(&t->spool); p; p = next) {
                next = p->next;
                list_push(&t->spool_head, &t->spool_tail, p);
                n++;
            }
            if (n) {
                sidecar_log("info", "%s: %zu payloads from the spool %s to "
                            "send first", spec->name, n, t->cfg.spool_dir);
            }
        }
    }

    t->stats.spool_bytes = t->spool.bytes;
    t->stats.spool_files = t->spool.files;
    t->published = t->stats;

    pthread_mutex_lock(&d->lock);
    d->dest[d->n++] = t;
    pthread_mutex_unlock(&d->lock);

    if (!spec->off && !d->started) {
        errno = pthread_create(&d->thread, NULL, delivery_main, d);
        if (errno != 0) {
            snprintf(err, errlen, "cannot start the delivery thread: %s",
                     strerror(errno));
            return NULL;
        }
        pthread_setname_np(d->thread, "obs-deliver");
        d->started = 1;
    }

    return t;
}

void
delivery_submit(destination_t *t, payload_t *p)
{
    delivery_t  *d = t->d;
    size_t       bound = t->cfg.queue_bytes;

    pthread_mutex_lock(&d->lock);

    /* the thread takes everything each turn, unless a file blocks it;
       what it leaves of a never-shed destination did not fit */
    while (!d->stopped && t->handed
           && (t->spec.overflow == OVERFLOW_BLOCK
               || t->handed_bytes + p->len > bound))
    {
        pthread_cond_wait(&d->taken, &d->lock);
    }

    if (d->stopped || !d->started) {
        pthread_mutex_unlock(&d->lock);
        atomic_fetch_add(&t->late, p->items);
        payload_free(p);
        return;
    }

    p->next = NULL;
    *t->handed_tail = p;
    t->handed_tail = &p->next;
    t->handed_bytes += p->len;
    pthread_mutex_unlock(&d->lock);

    http_multi_wakeup(d->multi);
}

void
delivery_lost(destination_t *t, size_t items)
{
    atomic_fetch_add(&t->lost, items);
}

void
delivery_stats(destination_t *t, destination_stats_t *out)
{
    pthread_mutex_lock(&t->d->lock);
    *out = t->published;
    pthread_mutex_unlock(&t->d->lock);
    out->items_dropped[DROP_QUEUE_FULL] += atomic_load(&t->lost);
    out->items_dropped[DROP_SHUTDOWN] += atomic_load(&t->late);
}

destination_t *
delivery_destination(delivery_t *d, int i)
{
    destination_t  *t = NULL;

    pthread_mutex_lock(&d->lock);
    if (i >= 0 && i < d->n) {
        t = d->dest[i];
    }
    pthread_mutex_unlock(&d->lock);
    return t;
}

const destination_spec_t *
destination_spec(const destination_t *t)
{
    return &t->spec;
}

void
delivery_stop(delivery_t *d)
{
    int  i;

    if (d == NULL) {
        return;
    }

    pthread_mutex_lock(&d->lock);
    d->stopping = 1;
    pthread_mutex_unlock(&d->lock);

    if (d->started) {
        http_multi_wakeup(d->multi);
        pthread_join(d->thread, NULL);
        d->started = 0;
    }

    pthread_mutex_lock(&d->lock);
    d->stopped = 1;
    pthread_cond_broadcast(&d->taken);
    pthread_mutex_unlock(&d->lock);

    /* a destination that never started its thread still keeps its own */
    for (i = 0; i < d->n; i++) {
        dest_shutdown(d->dest[i]);
    }
    delivery_publish(d);
}

void
delivery_free(delivery_t *d)
{
    int  i;

    if (d == NULL) {
        return;
    }

    for (i = 0; i < d->n; i++) {
        dest_free(d->dest[i]);
    }
    http_multi_free(d->multi);
    pthread_cond_destroy(&d->taken);
    pthread_mutex_destroy(&d->lock);
    free(d);
    payload_spares_free();
}

double
delivery_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* The delivery thread: every destination's queue and transfers. */

static void *
delivery_main(void *data)
{
    delivery_t  *d = data;
    payload_t   *taken[DELIVERY_MAX_DESTINATIONS], *p;
    double       now, deadline = 0;
    int          stopping, i, n;

    setpriority(PRIO_PROCESS, (id_t) gettid(), DELIVERY_NICE);

    for ( ;; ) {
        now = mono_now();
        stopping = delivery_take(d, taken, &n);

        for (i = 0; i < n; i++) {
            while ((p = taken[i]) != NULL) {
                taken[i] = p->next;
                p->next = NULL;
                dest_enqueue(d->dest[i], p);
            }
            dest_pump(d->dest[i], now);
        }
        delivery_publish(d);

        if (stopping) {
            if (deadline == 0) {
                deadline = now + d->drain_seconds;
            }
            if (delivery_drained(d, n, now) || now >= deadline) {
                break;
            }
        }

        http_multi_run(d->multi, TICK_MS, dest_done);
    }

    return NULL;
}

/* Takes what producers handed over since the last turn, in order; returns
   whether the layer is stopping. */

static int
delivery_take(delivery_t *d, payload_t **taken, int *n)
{
    destination_t  *t;
    payload_t      *p, **tail;
    size_t          mem, disk, files;
    int             i, stopping;

    pthread_mutex_lock(&d->lock);
    stopping = d->stopping;
    *n = d->n;

    for (i = 0; i < d->n; i++) {
        t = d->dest[i];
        taken[i] = NULL;

        if (t->spec.overflow != OVERFLOW_BLOCK) {
            taken[i] = t->handed;
            t->handed = NULL;

        } else {
            /* never shed: only what fits is taken; the rest waits with its
               producer */
            tail = &taken[i];
            mem = disk = files = 0;
            while ((p = t->handed) != NULL
                   && dest_room(t, p, mem, disk, files))
            {
                t->handed = p->next;
                *tail = p;
                tail = &p->next;
                mem += p->len;
                disk += p->len;
                files++;
            }
            *tail = NULL;
        }

        for (p = t->handed, t->handed_bytes = 0; p; p = p->next) {
            t->handed_bytes += p->len;
        }
        t->handed_tail = &t->handed;
        while (*t->handed_tail) {
            t->handed_tail = &(*t->handed_tail)->next;
        }
    }

    pthread_cond_broadcast(&d->taken);
    pthread_mutex_unlock(&d->lock);
    return stopping;
}

static void
delivery_publish(delivery_t *d)
{
    destination_t  *t;
    int             i;

    pthread_mutex_lock(&d->lock);
    for (i = 0; i < d->n; i++) {
        t = d->dest[i];
        t->stats.spool_bytes = t->spool.bytes;
        t->stats.spool_files = t->spool.files;
        t->published = t->stats;
    }
    pthread_mutex_unlock(&d->lock);
}

/* Whether stopping may end: nothing left to send, except to receivers
   that are failing (stopping never waits on one). */

static int
delivery_drained(delivery_t *d, int n, double now)
{
    destination_t  *t;
    int             i, empty;

    for (i = 0; i < n; i++) {
        t = d->dest[i];

        pthread_mutex_lock(&d->lock);
        empty = t->handed == NULL;
        pthread_mutex_unlock(&d->lock);

        if (!empty || (t->client && http_client_busy(t->client))) {
            return 0;
        }
        if (t->current == NULL && t->mem_head == NULL
            && t->spool_head == NULL)
        {
            continue;
        }
        if (!(t->failing && now < t->retry_at)) {
            return 0;
        }
    }

    return 1;
}

/*
 * Order: the spool holds the oldest payloads, memory the newest.  When
 * memory is full everything in it moves to the spool's tail first; a
 * spool_first destination writes every payload to the spool.
 */

static void
dest_enqueue(destination_t *t, payload_t *p)
{
    payload_t  *m;
    size_t      bound = t->cfg.queue_bytes;

    if (t->file) {
        if (fwrite(p->data, 1, p->len, t->file) == p->len
            && fflush(t->file) == 0)
        {
            t->stats.items_sent += p->items;
        } else {
            t->stats.items_dropped[DROP_REJECTED] += p->items;
        }
        payload_free(p);
        return;
    }

    if (t->spooling && t->spec.spool_first) {
        if (dest_spool(t, p, 0) != 0) {
            dest_drop(t, p, DROP_SPOOL_FULL);
        }
        return;
    }

    if (t->stats.queue_bytes + p->len > bound) {
        if (t->spooling) {
            while ((m = list_pop(&t->mem_head, &t->mem_tail)) != NULL) {
                t->stats.queue_bytes -= m->len;
                t->stats.queue_items--;
                if (dest_spool(t, m, 0) != 0) {
                    dest_drop(t, m, DROP_SPOOL_FULL);
                }
            }
        } else if (t->spec.overflow == OVERFLOW_DROP_OLDEST) {
            while (t->stats.queue_bytes + p->len > bound
                   && (m = list_pop(&t->mem_head, &t->mem_tail)) != NULL)
            {
                t->stats.queue_bytes -= m->len;
                t->stats.queue_items--;
                dest_drop(t, m, DROP_QUEUE_FULL);
            }
        }
    }

    if (t->stats.queue_bytes + p->len <= bound) {
        list_push(&t->mem_head, &t->mem_tail, p);
        t->stats.queue_bytes += p->len;
        t->stats.queue_items++;
        return;
    }

    if (!t->spooling) {
        dest_drop(t, p, DROP_QUEUE_FULL);
    } else if (dest_spool(t, p, 0) != 0) {
        dest_drop(t, p, DROP_SPOOL_FULL);
    }
}

/* Writes p to the spool's tail (or front), making room by dropping the
   oldest when the destination says so; -1 if it cannot. */

static int
dest_spool(destination_t *t, payload_t *p, int first)
{
    payload_t  *old;

    while (!spool_fits(&t->spool, p)
           && t->spec.overflow == OVERFLOW_DROP_OLDEST && !first
           && (old = list_pop(&t->spool_head, &t->spool_tail)) != NULL)
    {
        spool_remove(&t->spool, old);
        dest_drop(t, old, DROP_SPOOL_FULL);
    }

    if (spool_write(&t->spool, p, t->spool_head ? t->spool_head->seq : 0,
                    first) != 0)
    {
        return -1;
    }

    t->stats.payloads_spooled++;
    if (first) {
        p->next = t->spool_head;
        t->spool_head = p;
        if (t->spool_tail == NULL) {
            t->spool_tail = p;
        }
    } else {
        list_push(&t->spool_head, &t->spool_tail, p);
    }
    return 0;
}

/* OVERFLOW_BLOCK: whether p fits beside mem/disk bytes and files taken
   this turn. */

static int
dest_room(destination_t *t, payload_t *p, size_t mem, size_t disk,
    size_t files)
{
    if (t->file) {
        return 1;
    }
    if (!t->spec.spool_first && t->spool_head == NULL
        && t->stats.queue_bytes + mem + p->len <= t->cfg.queue_bytes)
    {
        return 1;
    }
    return t->spooling && t->spool.files + files < t->spool.max_files
           && t->spool.bytes + disk + p->len + ORG_ID_MAX + 24
              <= t->spool.max_bytes;
}

static void
dest_pump(destination_t *t, double now)
{
    payload_t       *p;
    http_response_t  r;

    if (t->client == NULL || http_client_busy(t->client)
        || now < t->retry_at)
    {
        return;
    }

    /* a payload is retried until it is done; then the spool (older) comes
       before memory (newer) */
    if (t->current == NULL) {
        if (t->spool_head) {
            t->current = list_pop(&t->spool_head, &t->spool_tail);
        } else if (t->mem_head) {
            t->current = list_pop(&t->mem_head, &t->mem_tail);
            t->stats.queue_bytes -= t->current->len;
            t->stats.queue_items--;
        } else {
            return;
        }
    }

    p = t->current;
    if (p->data == NULL && spool_read(&t->spool, p) != 0) {
        sidecar_log("error", "%s: spool file %020llu of %s cannot be read; "
                    "its %zu %s are lost", t->spec.name,
                    (unsigned long long) p->seq, t->cfg.spool_dir, p->items,
                    t->spec.items);
        spool_remove(&t->spool, p);
        dest_drop(t, p, DROP_SPOOL_FULL);
        t->current = NULL;
        return;
    }

    if (http_client_post(t->client, p->data, p->len, p->org) != 0) {
        memset(&r, 0, sizeof(r));
        r.retry_after = -1;
        snprintf(r.error, sizeof(r.error), "cannot start a request");
        dest_retry(t, &r, HTTP_RETRY, now);
    }
}

/* The end of a destination's request. */

static void
dest_done(void *owner)
{
    destination_t    *t = owner;
    payload_t        *p = t->current;
    http_response_t   r;
    http_verdict_t    v;
    char              what[512];
    const char       *more;
    double            now = mono_now();

    http_client_result(t->client, &r);
    v = t->spec.classify(&r);

    if (v == HTTP_SENT) {
        t->stats.requests_ok++;
        dest_partial(t, p, &r, now);
        t->stats.last_success = delivery_now();
        if (t->failing) {
            sidecar_log("info", "%s: %s: delivering again after %llu failed "
                        "or refused requests in %.0fs", t->spec.name, t->shown,
                        (unsigned long long) t->failures,
                        now - t->failing_since);
        }
        t->failing = 0;
        t->failures = 0;
        t->backoff = 0;
        t->retry_at = 0;
        spool_remove(&t->spool, p);
        payload_free(p);
        t->current = NULL;
        return;
    }

    if (v == HTTP_REJECTED) {
        t->stats.requests_rejected++;
        if (!t->failing) {
            t->failing = 1;
            t->failing_since = now;
            t->fail_logged = now;       /* the refusal below says it */
        }
        t->failures++;
        if ((more = dest_refusal_log(t, now)) != NULL) {
            describe(&r, what, sizeof(what));
            sidecar_log("error", "%s: %s refused %zu %s for good: %s%s",
                        t->spec.name, t->shown, p->items, t->spec.items, what,
                        more);
        }
        spool_remove(&t->spool, p);
        dest_drop(t, p, DROP_REJECTED);
        t->current = NULL;
        return;
    }

    dest_retry(t, &r, v, now);
}

/*
 * A request the receiver took: its items are sent, but for those it says
 * it refused (OTLP's partial success), which are dropped as rejected and
 * logged like a refusal.
 */

static void
dest_partial(destination_t *t, payload_t *p, const http_response_t *r,
    double now)
{
    size_t       n = r->rejected < p->items ? r->rejected : p->items;
    const char  *more;

    t->stats.items_sent += p->items - n;
    t->stats.items_dropped[DROP_REJECTED] += n;

    if (n == 0 && r->rejected_why[0] == '\0') {
        return;
    }

    if ((more = dest_refusal_log(t, now)) != NULL) {
        sidecar_log(n ? "error" : "warn", "%s: %s took the request but "
                    "refused %zu of its %zu %s: \"%s\"%s", t->spec.name,
                    t->shown, n, p->items, t->spec.items, r->rejected_why,
                    more);
    }
}

/* Whether a refusal is logged now (at most one a minute): then the words
   that say how many were not, else NULL (and it is one more of those). */

static const char *
dest_refusal_log(destination_t *t, double now)
{
    const char  *more;

    if (t->reject_logged != 0 && now - t->reject_logged < LOG_EVERY) {
        t->rejects_unlogged++;
        return NULL;
    }

    more = t->rejects_unlogged ? " (and earlier refusals not logged: see "
                                 "obs_exporter_dropped_total)" : "";
    t->reject_logged = now;
    t->rejects_unlogged = 0;
    return more;
}

/* 429, 5xx, no answer, a redirect: the payload waits for a later try. */

static void
dest_retry(destination_t *t, const http_response_t *r, http_verdict_t v,
    double now)
{
    payload_t  *p = t->current;
    double      delay, max = t->spec.backoff_max;
    char        what[512];

    t->stats.requests_retried++;
    t->stats.retries++;
    t->stats.redirects += v == HTTP_REDIRECTED;

    t->backoff = t->backoff == 0 ? t->spec.backoff_first : t->backoff * 2;
    if (t->backoff > max) {
        t->backoff = max;
    }

    /* jitter: receivers that came back are not hit by every sender at
       once; the receiver's own Retry-After is honoured as asked, up to
       the cap */
    t->rng ^= t->rng << 13;
    t->rng ^= t->rng >> 7;
    t->rng ^= t->rng << 17;
    delay = t->backoff * (0.5 + 0.5 * (double) (t->rng >> 11) / 0x1p53);
    if (r->retry_after > 0) {
        delay = r->retry_after < max ? r->retry_after : max;
    }
    t->retry_at = now + delay;
    t->stats.last_delay = delay;

    if (!t->failing) {
        t->failing = 1;
        t->failing_since = now;
        t->fail_logged = 0;
    }
    t->failures++;

    if (t->fail_logged == 0 || now - t->fail_logged >= LOG_EVERY) {
        describe(r, what, sizeof(what));
        if (v == HTTP_REDIRECTED) {
            sidecar_log("error", "%s: %s answers %s: redirects are not "
                        "followed (set the URL the receiver redirects to); "
                        "keeping %zu %s, trying again in %.3gs",
                        t->spec.name, t->shown, what, p->items,
                        t->spec.items, delay);
        } else {
            sidecar_log("warn", "%s: %s: %s; keeping %zu %s, trying again in "
                        "%.3gs (%llu failed requests since %.0fs ago)",
                        t->spec.name, t->shown, what, p->items,
                        t->spec.items, delay,
                        (unsigned long long) t->failures,
                        now - t->failing_since);
        }
        t->fail_logged = now;
    }

    /* a spooled payload waits on disk, not in memory */
    if (p->seq) {
        free(p->data);
        p->data = NULL;
        p->cap = 0;
    }
}

/* What is left goes to disk in order (the payload being delivered is the
   oldest: it goes in front), or is counted dropped at shutdown. */

static void
dest_shutdown(destination_t *t)
{
    payload_t  *p;

    if (t->client) {
        http_client_abort(t->client);
    }

    pthread_mutex_lock(&t->d->lock);
    while ((p = t->handed) != NULL) {
        t->handed = p->next;
        list_push(&t->mem_head, &t->mem_tail, p);
        t->stats.queue_bytes += p->len;
        t->stats.queue_items++;
    }
    t->handed_tail = &t->handed;
    t->handed_bytes = 0;
    pthread_mutex_unlock(&t->d->lock);

    if ((p = t->current) != NULL) {
        t->current = NULL;
        if (p->seq) {
            payload_free(p);            /* it stays in the spool */
        } else if (!t->spooling || dest_spool(t, p, 1) != 0) {
            dest_drop(t, p, DROP_SHUTDOWN);
        }
    }

    while ((p = list_pop(&t->mem_head, &t->mem_tail)) != NULL) {
        t->stats.queue_bytes -= p->len;
        t->stats.queue_items--;
        if (!t->spooling || dest_spool(t, p, 0) != 0) {
            dest_drop(t, p, DROP_SHUTDOWN);
        }
    }

    if (t->file && t->file != stdout) {
        fflush(t->file);
    }
}

static void
dest_drop(destination_t *t, payload_t *p, drop_reason_t why)
{
    t->stats.items_dropped[why] += p->items;
    payload_free(p);
}

static void
dest_free(destination_t *t)
{
    payload_t  *p;

    if (t == NULL) {
        return;
    }

    http_client_free(t->client);
    payload_free(t->current);
    while ((p = list_pop(&t->mem_head, &t->mem_tail)) != NULL) {
        payload_free(p);
    }
    while ((p = list_pop(&t->spool_head, &t->spool_tail)) != NULL) {
        payload_free(p);
    }
    while ((p = t->handed) != NULL) {
        t->handed = p->next;
        payload_free(p);
    }
    if (t->file && t->file != stdout) {
        fclose(t->file);
    }
    spool_close(&t->spool);
    destination_config_free(&t->cfg);
    free(t->url);
    free(t);
}

/* scheme://host[:port]/path: neither user:password nor a query string
   (ClickHouse takes a password there) reaches a log line. */

static void
dest_shown_url(destination_t *t)
{
    const char  *u = t->url, *host, *at, *end;
    size_t       n;

    if (u == NULL) {
        snprintf(t->shown, sizeof(t->shown), "%s",
                 t->cfg.file ? t->cfg.file : "-");
        return;
    }

    host = strstr(u, "://");
    host = host ? host + 3 : u;
    n = strcspn(host, "/?#");
    at = memchr(host, '@', n);
    end = host + strcspn(host, "?#");
    if (at) {
        snprintf(t->shown, sizeof(t->shown), "%.*s%.*s", (int) (host - u), u,
                 (int) (end - at - 1), at + 1);
    } else {
        snprintf(t->shown, sizeof(t->shown), "%.*s", (int) (end - u), u);
    }
}

/*
 * A receiver's bytes as a log line may show them: printable, quote-free,
 * at most size - 1 of them and a NUL in out; returns how many there are.
 */
static size_t
shown(const char *in, size_t len, char *out, size_t size)
{
    size_t  i;

    for (i = 0; i < len && i + 1 < size; i++) {
        unsigned char  c = (unsigned char) in[i];

        out[i] = c < 0x20 || c >= 0x7f || c == '"' || c == '\\'
                 ? (c == '\n' || c == '\r' || c == '\t' ? ' ' : '.')
                 : (char) c;
    }
    out[i] = '\0';
    return i;
}

/* "HTTP 503: "first bytes"", "HTTP 301 to <Location>" or the connection
   error; the answer's bytes made printable and quote-free. */

static void
describe(const http_response_t *r, char *out, size_t size)
{
    char    body[HTTP_BODY_HEAD + 1], location[201];
    size_t  i, n;
    int     len;

    if (!r->answered) {
        snprintf(out, size, "no answer: %s", r->error);
        return;
    }

    i = n = shown(r->body, r->body_len, body, 121);
    while (n && body[n - 1] == ' ') {
        n--;
    }
    body[n] = '\0';

    len = snprintf(out, size, "HTTP %ld", r->status);
    if (r->grpc_status >= 0) {
        len = snprintf(out, size, "gRPC status %d%s%.120s", r->grpc_status,
                       r->grpc_message[0] ? ": " : "", r->grpc_message);
        n = 0;                  /* the framed answer says no more */
    }
    if (len > 0 && (size_t) len < size && r->location[0]) {
        /* the receiver's bytes: an escape sequence would reach a terminal */
        shown(r->location, strlen(r->location), location, sizeof(location));
        len += snprintf(out + len, size - (size_t) len, " to %s", location);
    }
    if (len > 0 && (size_t) len < size && n) {
        snprintf(out + len, size - (size_t) len, ": \"%s%s\"", body,
                 r->body_len > i ? "..." : "");
    }
}

static void
list_push(payload_t **head, payload_t **tail, payload_t *p)
{
    p->next = NULL;
    if (*tail) {
        (*tail)->next = p;
    } else {
        *head = p;
    }
    *tail = p;
}

static payload_t *
list_pop(payload_t **head, payload_t **tail)
{
    payload_t  *p = *head;

    if (p) {
        *head = p->next;
        if (*head == NULL) {
            *tail = NULL;
        }
        p->next = NULL;
    }
    return p;
}

static double
mono_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}
