/*
 * The status page's snapshots.  See status.h.
 *
 * A snapshot walks the store family by family, one shard at a time (the
 * locks /metrics takes, held as briefly), and sums series into rows.  The
 * window's base is an older snapshot kept as a checkpoint: checkpoints are
 * taken every window seconds and the base is the newest one at least a
 * window old, so rates and quantiles cover one to two windows; before the
 * first such checkpoint the base is the sidecar's start, when every
 * counter was 0.  A counter lower than in the base was reset (a series
 * expired and came back): as Prometheus' rate() does, the whole value is
 * then the increase.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "active_requests.h"
#include "business_metrics.h"
#include "expo.h"
#include "hash.h"
#include "status_snap.h"
#include "timed_wait.h"

#define ARENA_CHUNK  (256 * 1024)
#define REMAPS       8

typedef struct {
    const double  *bounds;      /* a series' layout ... */
    int            n;
    int            to[CONFIG_MAX_BUCKETS + 1];  /* ... onto the snapshot's */
} remap_t;

/* What the walk of one snapshot carries. */
typedef struct {
    snap_t   *s;
    double    since;            /* exemplars older than this are not shown */
    remap_t   remaps[REMAPS];
    int       n_remaps;
    int       failed;
} walk_t;

static void *status_loop(void *data);
static void *arena_alloc(snap_t *s, size_t size);
static char *arena_dup(snap_t *s, const char *str);
static void snap_free(snap_t *s);
static void *stab_get(stab_t *t, snap_t *s, const char *key, uint32_t len,
    int *failed);
static void stab_reserve(stab_t *t, size_t n);
static uint32_t key_join(char *out, const char *const *parts, int n);
static srow_t *walk_row(walk_t *w, stab_t *t, const char *const *parts,
    int n);
static uint64_t *walk_buckets(walk_t *w, uint64_t **slot, int n);
static const int *walk_remap(walk_t *w, const histogram_t *h,
    const double *bounds, int n);
static void walk_requests(const family_t *f, const series_t *se,
    const char **labels, void *data);
static void walk_duration(const family_t *f, const series_t *se,
    const char **labels, void *data);
static void walk_upstream(const family_t *f, const series_t *se,
    const char **labels, void *data);
static void walk_business(void *data, const char *name,
    const char *const *names, const char *const *values, int n,
    const char *le, double value);
static void walk_pipeline(status_t *st, snap_t *s);
static void add_buckets(uint64_t *to, const uint64_t *from, const int *map,
    int n);
static void derive(snap_t *s, const snap_t *base);
static void derive_row(snap_t *s, srow_t *r, const srow_t *b, double dt,
    int same_layout);
static void window_buckets(const uint64_t *now, const uint64_t *then, int n,
    uint64_t *out);
static uint64_t increase(uint64_t now, uint64_t then);
static void summarize(status_t *st, snap_t *s, const snap_t *prev);
static int by_window_requests(const void *a, const void *b);
static int by_hash(const void *a, const void *b);
static float interval_p95(const snap_t *s, const srow_t *r,
    const snap_t *prev, const srow_t *p);
static double wall_now(void);

status_t *
status_new(const status_sources_t *src, const config_t *cfg)
{
    status_t  *st;

    st = calloc(1, sizeof(status_t));
    if (st == NULL) {
        return NULL;
    }

    st->src = *src;
    st->started = wall_now();
    pthread_mutex_init(&st->lock, NULL);
    pthread_mutex_init(&st->take_lock, NULL);
    timed_wait_cond_init(&st->wake);
    status_configure(st, cfg);
    return st;
}

int
status_start(status_t *st)
{
    if (pthread_create(&st->thread, NULL, status_loop, st) != 0) {
        return -1;
    }

    st->running = 1;
    return 0;
}

void
status_configure(status_t *st, const config_t *cfg)
{
    pthread_mutex_lock(&st->lock);

    status_config_free(&st->cfg);
    st->cfg = cfg->status;
    st->cfg.grafana_url = cfg->status.grafana_url
                          ? strdup(cfg->status.grafana_url) : NULL;
    st->cfg.trace_url = cfg->status.trace_url
                        ? strdup(cfg->status.trace_url) : NULL;

    st->n_dur = cfg->n_duration_buckets;
    memcpy(st->dur_bounds, cfg->duration_buckets,
           sizeof(double) * (size_t) cfg->n_duration_buckets);
    st->n_up = cfg->n_upstream_buckets;
    memcpy(st->up_bounds, cfg->upstream_buckets,
           sizeof(double) * (size_t) cfg->n_upstream_buckets);
    st->max_series = cfg->max_series;

    pthread_mutex_unlock(&st->lock);
}

void
status_stop(status_t *st)
{
    if (st == NULL || !st->running) {
        return;
    }

    pthread_mutex_lock(&st->lock);
    st->stopping = 1;
    pthread_cond_signal(&st->wake);
    pthread_mutex_unlock(&st->lock);
    pthread_join(st->thread, NULL);
    st->running = 0;
}

void
status_free(status_t *st)
{
    int  i;

    if (st == NULL) {
        return;
    }

    status_stop(st);

    status_release(st->current);
    status_release(st->checkpoint[0]);
    status_release(st->checkpoint[1]);
    for (i = 0; i < STATUS_RING; i++) {
        free(st->ring[i].rows);
    }
    status_config_free(&st->cfg);
    pthread_cond_destroy(&st->wake);
    pthread_mutex_destroy(&st->take_lock);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

snap_t *
status_hold(status_t *st)
{
    snap_t  *s;

    pthread_mutex_lock(&st->lock);
    s = st->current;
    if (s) {
        atomic_fetch_add(&s->refs, 1);
    }
    pthread_mutex_unlock(&st->lock);
    return s;
}

void
status_release(snap_t *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        snap_free(s);
    }
}

int
status_take(status_t *st, double now)
{
    snap_t        *s, *prev, *base = NULL;
    walk_t         w;
    expo_writer_t  ew;

    pthread_mutex_lock(&st->take_lock);

    s = calloc(1, sizeof(snap_t));
    if (s == NULL) {
        pthread_mutex_unlock(&st->take_lock);
        return -1;
    }
    atomic_init(&s->refs, 1);
    s->time = now;
    s->started = st->started;
    s->routes.size = sizeof(srow_t);
    s->tenants.size = sizeof(srow_t);
    s->business.size = sizeof(brow_t);

    /* the settings as they are now, and the base of the window */
    pthread_mutex_lock(&st->lock);
    s->n_dur = st->n_dur;
    memcpy(s->dur_bounds, st->dur_bounds, sizeof(s->dur_bounds));
    s->n_up = st->n_up;
    memcpy(s->up_bounds, st->up_bounds, sizeof(s->up_bounds));
    s->availability = st->cfg.availability;
    s->latency_objective = st->cfg.latency_objective;
    s->latency_threshold = st->cfg.latency_threshold;
    s->grafana_url = arena_dup(s, st->cfg.grafana_url);
    s->trace_url = arena_dup(s, st->cfg.trace_url);
    s->max_series = st->max_series;

    if (st->checkpoint[1]
        && st->checkpoint[1]->time <= now - (double) st->cfg.window)
    {
        base = st->checkpoint[1];
    } else if (st->checkpoint[0]) {
        base = st->checkpoint[0];
    }
    if (base) {
        atomic_fetch_add(&base->refs, 1);
    }
    prev = st->current;
    if (prev) {
        atomic_fetch_add(&prev->refs, 1);
    }
    pthread_mutex_unlock(&st->lock);

    s->base_time = base ? base->time : s->started;

    /* as large as last time: growing a table happens under a shard lock */
    if (prev) {
        stab_reserve(&s->routes, prev->routes.n + prev->routes.n / 8);
        stab_reserve(&s->tenants, prev->tenants.n + prev->tenants.n / 8);
        stab_reserve(&s->business, prev->business.n + prev->business.n / 8);
    }

    memset(&w, 0, sizeof(w));
    w.s = s;
    w.since = s->base_time;

    s->total.k.key = "";
    s->total.dur = walk_buckets(&w, &s->total.dur, s->n_dur);
    s->total.up = walk_buckets(&w, &s->total.up, s->n_up);
    s->total.p50 = s->total.p95 = s->total.p99 = NAN;

    store_visit(st->src.store, FAMILY_REQUESTS, walk_requests, &w);
    store_visit(st->src.store, FAMILY_DURATION, walk_duration, &w);
    store_visit(st->src.store, FAMILY_UPSTREAM_DURATION, walk_upstream, &w);
    s->series = store_size(st->src.store);

    /* business metrics and requests in flight, as /metrics shows them */
    if (st->src.business) {
        expo_begin_series(&ew, walk_business, &w);
        business_metrics(&ew, st->src.business);
        expo_end(&ew);
    }
    if (st->src.active) {
        expo_begin_series(&ew, walk_business, &w);
        active_requests_metrics(&ew, st->src.active);
        expo_end(&ew);
    }

    walk_pipeline(st, s);

    if (w.failed) {
        snap_free(s);
        status_release(base);
        status_release(prev);
        pthread_mutex_unlock(&st->take_lock);
        return -1;
    }

    derive(s, base);
    summarize(st, s, prev);

    pthread_mutex_lock(&st->lock);
    st->current = s;
    if (st->checkpoint[1] == NULL
        || now - st->checkpoint[1]->time >= (double) st->cfg.window)
    {
        status_release(st->checkpoint[0]);
        st->checkpoint[0] = st->checkpoint[1];
        st->checkpoint[1] = s;
        atomic_fetch_add(&s->refs, 1);
    }
    pthread_mutex_unlock(&st->lock);

    /* the thread's own reference to the previous current, and ours */
    status_release(prev);
    status_release(prev);
    status_release(base);

    pthread_mutex_unlock(&st->take_lock);
    return 0;
}

double
status_quantile(double q, const double *bounds, int n_bounds,
    const uint64_t *counts)
{
    double    total = 0, rank, cum = 0, prev = 0, start;
    int       i;

    for (i = 0; i <= n_bounds; i++) {
        total += (double) counts[i];
    }

    if (total == 0 || n_bounds < 1 || isnan(q)) {
        return NAN;
    }
    if (q < 0) {
        return -INFINITY;
    }
    if (q > 1) {
        return INFINITY;
    }

    /* as promql's bucketQuantile: the first bucket whose cumulative count
       reaches the rank, then linear interpolation inside it */
    rank = q * total;
    for (i = 0; i < n_bounds; i++) {
        prev = cum;
        cum += (double) counts[i];
        if (cum >= rank) {
            break;
        }
    }

    if (i == n_bounds) {
        return bounds[n_bounds - 1];
    }
    if (i == 0 && bounds[0] <= 0) {
        return bounds[0];
    }

    start = i > 0 ? bounds[i - 1] : 0;
    return start + (bounds[i] - start) * ((rank - prev) / (cum - prev));
}

double
status_share_under(double le, const double *bounds, int n_bounds,
    const uint64_t *counts)
{
    double  total = 0, under = 0, start = 0;
    int     i;

    for (i = 0; i <= n_bounds; i++) {
        total += (double) counts[i];
    }
    if (total == 0) {
        return NAN;
    }

    for (i = 0; i < n_bounds; i++) {
        if (bounds[i] <= le) {
            under += (double) counts[i];
            start = bounds[i];
            continue;
        }
        if (le > start) {
            under += (double) counts[i] * (le - start) / (bounds[i] - start);
        }
        break;
    }

    return under / total;
}

void *
stab_find(const stab_t *t, const char *key, uint32_t len, uint64_t hash)
{
    size_t   i;
    skey_t  *k;

    if (t->n_slots == 0) {
        return NULL;
    }

    for (i = hash & (t->n_slots - 1); t->slots[i];
         i = (i + 1) & (t->n_slots - 1))
    {
        k = (skey_t *) ((char *) t->rows + (t->slots[i] - 1) * t->size);
        if (k->hash == hash && k->len == len && memcmp(k->key, key, len) == 0)
        {
            return k;
        }
    }

    return NULL;
}

/* Every STATUS_INTERVAL seconds, until stopped. */

static void *
status_loop(void *data)
{
    status_t         *st = data;
    struct timespec   until;
    int               stopping = 0;

    while (!stopping) {
        status_take(st, wall_now());

        timed_wait_deadline(&until, STATUS_INTERVAL * 1000L);

        pthread_mutex_lock(&st->lock);
        while (!st->stopping
               && pthread_cond_timedwait(&st->wake, &st->lock, &until) == 0)
        {
            /* woken without a stop: wait out the interval */
        }
        stopping = st->stopping;
        pthread_mutex_unlock(&st->lock);
    }

    return NULL;
}

static void *
arena_alloc(snap_t *s, size_t size)
{
    arena_chunk_t  *c = s->arena;
    size_t          want;
    void           *p;

    size = (size + 15) & ~(size_t) 15;

    if (c == NULL || c->size - c->used < size) {
        want = size > ARENA_CHUNK ? size : ARENA_CHUNK;
        c = malloc(sizeof(arena_chunk_t) + want);
        if (c == NULL) {
            return NULL;
        }
        c->next = s->arena;
        c->used = 0;
        c->size = want;
        s->arena = c;
    }

    p = c->data + c->used;
    c->used += size;
    return p;
}

static char *
arena_dup(snap_t *s, const char *str)
{
    char    *p;
    size_t   len;

    if (str == NULL) {
        return NULL;
    }

    len = strlen(str) + 1;
    p = arena_alloc(s, len);
    if (p) {
        memcpy(p, str, len);
    }
    return p;
}

static void
snap_free(snap_t *s)
{
    arena_chunk_t  *c, *next;

    for (c = s->arena; c; c = next) {
        next = c->next;
        free(c);
    }
    free(s->routes.rows);
    free(s->routes.slots);
    free(s->tenants.rows);
    free(s->tenants.slots);
    free(s->business.rows);
    free(s->business.slots);
    free(s);
}

/*
 * The row of key, created (zeroed, its key copied) when absent; NULL with
 * *failed set when memory ran out.  Pointers to rows last until the next
 * row is created.
 */

static void *
stab_get(stab_t *t, snap_t *s, const char *key, uint32_t len, int *failed)
{
    uint64_t   hash = hash_bytes(key, len, 0x57a7);
    skey_t    *k;
    uint32_t  *slots;
    size_t     i, n, j;
    char      *copy;
    void      *rows;

    k = stab_find(t, key, len, hash);
    if (k) {
        return k;
    }

    if ((t->n + 1) * 2 > t->n_slots) {
        n = t->n_slots ? t->n_slots * 2 : 256;
        slots = calloc(n, sizeof(uint32_t));
        if (slots == NULL) {
            *failed = 1;
            return NULL;
        }
        for (j = 0; j < t->n; j++) {
            k = (skey_t *) ((char *) t->rows + j * t->size);
            for (i = k->hash & (n - 1); slots[i]; i = (i + 1) & (n - 1)) {
                /* probe */
            }
            slots[i] = (uint32_t) j + 1;
        }
        free(t->slots);
        t->slots = slots;
        t->n_slots = n;
    }

    if (t->n == t->cap) {
        n = t->cap ? t->cap * 2 : 64;
        rows = realloc(t->rows, n * t->size);
        if (rows == NULL) {
            *failed = 1;
            return NULL;
        }
        t->rows = rows;
        t->cap = n;
    }

    copy = arena_alloc(s, len);
    if (copy == NULL) {
        *failed = 1;
        return NULL;
    }
    memcpy(copy, key, len);

    k = (skey_t *) ((char *) t->rows + t->n * t->size);
    memset(k, 0, t->size);
    k->key = copy;
    k->len = len;
    k->hash = hash;

    for (i = hash & (t->n_slots - 1); t->slots[i];
         i = (i + 1) & (t->n_slots - 1))
    {
        /* probe */
    }
    t->slots[i] = (uint32_t) ++t->n;
    return k;
}

/* Room for n rows without growing (best effort: stab_get grows anyway). */

static void
stab_reserve(stab_t *t, size_t n)
{
    size_t  slots = 256;

    if (n == 0) {
        return;
    }
    while (slots < n * 2 + 2) {
        slots *= 2;
    }

    t->rows = malloc(n * t->size);
    t->slots = calloc(slots, sizeof(uint32_t));
    if (t->rows == NULL || t->slots == NULL) {
        free(t->rows);
        free(t->slots);
        t->rows = NULL;
        t->slots = NULL;
        return;
    }
    t->cap = n;
    t->n_slots = slots;
}

/* The parts one after another, each with its NUL; returns the length. */

static uint32_t
key_join(char *out, const char *const *parts, int n)
{
    size_t  len = 0, l;
    int     i;

    for (i = 0; i < n; i++) {
        l = strlen(parts[i]) + 1;
        memcpy(out + len, parts[i], l);
        len += l;
    }

    return (uint32_t) len;
}

/* The row of a service and route (n = 2) or a tenant (n = 1). */

static srow_t *
walk_row(walk_t *w, stab_t *t, const char *const *parts, int n)
{
    char     key[4 * 1100];
    uint32_t len = key_join(key, parts, n);
    srow_t  *r;

    r = stab_get(t, w->s, key, len, &w->failed);
    if (r && r->dur == NULL) {
        if (n == 2) {
            r->service = r->k.key;
            r->route = r->k.key + strlen(r->k.key) + 1;
        } else {
            r->tenant = r->k.key;
        }
        r->p50 = r->p95 = r->p99 = r->good = r->up_p95 = NAN;
        r->dur = walk_buckets(w, &r->dur, w->s->n_dur);
        if (n == 2) {
            r->up = walk_buckets(w, &r->up, w->s->n_up);
        }
    }

    return r;
}

static uint64_t *
walk_buckets(walk_t *w, uint64_t **slot, int n)
{
    if (*slot == NULL) {
        *slot = arena_alloc(w->s, sizeof(uint64_t) * (size_t) (n + 1));
        if (*slot == NULL) {
            w->failed = 1;
            return NULL;
        }
        memset(*slot, 0, sizeof(uint64_t) * (size_t) (n + 1));
    }
    return *slot;
}

/*
 * Where each bucket of a series goes in the snapshot's layout: the same
 * index when the bounds are the snapshot's, else the first bound at or
 * above the series' bound (series made before a reload that changed the
 * buckets keep theirs).
 */

static const int *
walk_remap(walk_t *w, const histogram_t *h, const double *bounds, int n)
{
    remap_t  *m;
    int       i, j;

    for (i = 0; i < w->n_remaps; i++) {
        if (w->remaps[i].bounds == h->bounds && w->remaps[i].n == h->n_bounds
            && (w->remaps[i].to[h->n_bounds] == n))
        {
            return w->remaps[i].to;
        }
    }

    m = &w->remaps[w->n_remaps < REMAPS ? w->n_remaps++ : REMAPS - 1];
    m->bounds = h->bounds;
    m->n = h->n_bounds;
    for (i = 0, j = 0; i < h->n_bounds; i++) {
        while (j < n && bounds[j] < h->bounds[i]) {
            j++;
        }
        m->to[i] = j;
    }
    m->to[h->n_bounds] = n;
    return m->to;
}

static void
add_buckets(uint64_t *to, const uint64_t *from, const int *map, int n)
{
    int  i;

    for (i = 0; i <= n; i++) {
        to[map[i]] += from[i];
    }
}

/* http_server_requests: service, route, method, code, tenant */

/* a route's row is its family's first two labels (families.def) */
_Static_assert(LABEL_REQUESTS_service == 0 && LABEL_REQUESTS_route == 1
               && LABEL_DURATION_service == 0 && LABEL_DURATION_route == 1
               && LABEL_UPSTREAM_DURATION_service == 0
               && LABEL_UPSTREAM_DURATION_route == 1
               && LABEL_ACTIVE_REQUESTS_service == 0
               && LABEL_ACTIVE_REQUESTS_route == 1,
               "walk_row() takes service and route in place");

static void
walk_requests(const family_t *f, const series_t *se, const char **labels,
    void *data)
{
    walk_t    *w = data;
    srow_t    *r, *t;
    uint64_t   v = se->v.counter;
    char       c = labels[LABEL_REQUESTS_code][0];

    (void) f;

    r = walk_row(w, &w->s->routes, labels, 2);
    t = walk_row(w, &w->s->tenants, &labels[LABEL_REQUESTS_tenant], 1);
    if (r == NULL || t == NULL) {
        return;
    }

    r->requests += v;
    t->requests += v;
    w->s->total.requests += v;

    if (c == '5') {
        r->e5xx += v;
        t->e5xx += v;
        w->s->total.e5xx += v;

    } else if (c == '4') {
        r->e4xx += v;
        t->e4xx += v;
        w->s->total.e4xx += v;
    }
}

/* http_server_request_duration_seconds: service, route, method, tenant */

static void
walk_duration(const family_t *f, const series_t *se, const char **labels,
    void *data)
{
    walk_t             *w = data;
    snap_t             *s = w->s;
    const histogram_t  *h = se->v.histogram;
    const exemplar_t   *e;
    const int          *map;
    srow_t             *r, *t;
    int                 i;

    (void) f;

    if (h == NULL) {
        return;
    }

    r = walk_row(w, &s->routes, labels, 2);
    t = walk_row(w, &s->tenants, &labels[LABEL_DURATION_tenant], 1);
    map = walk_remap(w, h, s->dur_bounds, s->n_dur);
    if (r == NULL || t == NULL || s->total.dur == NULL) {
        return;
    }

    add_buckets(r->dur, h->buckets, map, h->n_bounds);
    add_buckets(t->dur, h->buckets, map, h->n_bounds);
    add_buckets(s->total.dur, h->buckets, map, h->n_bounds);

    /* the slowest request of the window with a trace */
    for (i = 0; h->exemplars && i <= h->n_bounds; i++) {
        e = &h->exemplars[i];
        if (e->timestamp >= w->since
            && (!r->has_exemplar || e->value > r->ex_value))
        {
            r->has_exemplar = 1;
            memcpy(r->ex_trace, e->trace_id, 16);
            r->ex_value = e->value;
            r->ex_time = e->timestamp;
        }
    }
}

/* http_upstream_request_duration_seconds: service, route, upstream */

static void
walk_upstream(const family_t *f, const series_t *se, const char **labels,
    void *data)
{
    walk_t             *w = data;
    snap_t             *s = w->s;
    const histogram_t  *h = se->v.histogram;
    const int          *map;
    srow_t             *r;

    (void) f;

    if (h == NULL) {
        return;
    }

    r = walk_row(w, &s->routes, labels, 2);
    map = walk_remap(w, h, s->up_bounds, s->n_up);
    if (r == NULL || s->total.up == NULL) {
        return;
    }

    add_buckets(r->up, h->buckets, map, h->n_bounds);
    add_buckets(s->total.up, h->buckets, map, h->n_bounds);
}

/*
 * What business_metrics and active_requests_metrics write:
 * http_server_active_requests{service,route},
 * obs_business_rejected_total{reason}, and each business metric with
 * service, route, tenant and perhaps its own label.
 */

static void
walk_business(void *data, const char *name, const char *const *names,
    const char *const *values, int n, const char *le, double value)
{
    walk_t       *w = data;
    snap_t       *s = w->s;
    srow_t       *r;
    brow_t       *b;
    char          key[4 * 1100], label[600];
    const char   *parts[4];
    size_t        len;
    uint32_t      klen;

    (void) le;

    if (strcmp(name, store_families[FAMILY_ACTIVE_REQUESTS].name) == 0
        && n == LABELS_ACTIVE_REQUESTS)
    {
        /* a key nginx holds at 0 adds no row of its own */
        if (value == 0) {
            return;
        }
        r = walk_row(w, &s->routes, values, 2);
        if (r) {
            r->in_flight += (uint64_t) value;
            s->total.in_flight += (uint64_t) value;
        }
        return;
    }

    if (strcmp(name, "obs_business_rejected_total") == 0) {
        s->pipe.business_rejected += (uint64_t) value;
        return;
    }

    if (n < 3) {
        return;
    }

    label[0] = '\0';
    if (n > 3) {
        snprintf(label, sizeof(label), "%s=%s", names[3], values[3]);
    }

    parts[0] = name;
    parts[1] = values[0];
    parts[2] = values[1];
    parts[3] = label;
    klen = key_join(key, parts, 4);

    b = stab_get(&s->business, s, key, klen, &w->failed);
    if (b == NULL) {
        return;
    }

    if (b->metric == NULL) {
        b->metric = b->k.key;
        b->service = b->metric + strlen(b->metric) + 1;
        b->route = b->service + strlen(b->service) + 1;
        b->label = b->route + strlen(b->route) + 1;
        len = strlen(name);
        b->counter = len > 6 && strcmp(name + len - 6, "_total") == 0;
        b->value = b->counter ? 0 : value;
        b->rate = NAN;
    }

    b->series++;
    b->value = b->counter ? b->value + value
               : (value > b->value ? value : b->value);
}

/* The sidecar's own counters and every destination's. */

static void
walk_pipeline(status_t *st, snap_t *s)
{
    spipe_t         *p = &s->pipe;
    destination_t   *t;
    int              i;

    p->datagrams = atomic_load(&obs_stats.datagrams_received);
    p->records = atomic_load(&obs_stats.records_received);
    p->lost = atomic_load(&obs_stats.datagrams_lost);
    for (i = 0; i < MODULE_DROP_REASONS; i++) {
        p->dropped[i] = atomic_load(&obs_stats.module_dropped[i]);
    }
    for (i = 0; i < DECODE_REASONS; i++) {
        p->decode[i] = atomic_load(&obs_stats.decode_errors[i]);
    }
    for (i = 0; i < OVERFLOW_KINDS; i++) {
        p->overflow[i] = atomic_load(&obs_stats.overflow[i]);
    }

    if (st->src.exporter) {
        p->has_exporter = 1;
        for (i = 0; i < SIGNALS; i++) {
            p->shed[i] = exporter_shed(st->src.exporter, (signal_id_t) i);
        }
        p->backlog = exporter_backlog(st->src.exporter);
    }

    for (i = 0; st->src.delivery
                && (t = delivery_destination(st->src.delivery, i)) != NULL
                && i < DELIVERY_MAX_DESTINATIONS; i++)
    {
        snprintf(p->dest[i].name, sizeof(p->dest[i].name), "%s",
                 destination_spec(t)->name);
        delivery_stats(t, &p->dest[i].st);
        snprintf(p->dest[i].mode, sizeof(p->dest[i].mode), "%s",
                 p->dest[i].st.mode ? p->dest[i].st.mode : "off");
        p->dest[i].st.mode = NULL;
    }
    p->n_dest = i;
}

/* Rates, ratios and quantiles over the window, from the base snapshot. */

static void
derive(snap_t *s, const snap_t *base)
{
    static const srow_t  zero;
    const srow_t  *b;
    const brow_t  *bb;
    brow_t        *br;
    double         dt = s->time - s->base_time;
    uint64_t       drops = 0, base_drops = 0;
    size_t         i;
    int            k, same;

    same = base == NULL
           || (base->n_dur == s->n_dur && base->n_up == s->n_up
               && memcmp(base->dur_bounds, s->dur_bounds,
                         sizeof(double) * (size_t) s->n_dur) == 0
               && memcmp(base->up_bounds, s->up_bounds,
                         sizeof(double) * (size_t) s->n_up) == 0);

    for (i = 0; i < s->routes.n; i++) {
        srow_t  *r = &((srow_t *) s->routes.rows)[i];

        b = base ? stab_find(&base->routes, r->k.key, r->k.len, r->k.hash)
                 : NULL;
        derive_row(s, r, b ? b : &zero, dt, same && b);
    }

    for (i = 0; i < s->tenants.n; i++) {
        srow_t  *r = &((srow_t *) s->tenants.rows)[i];

        b = base ? stab_find(&base->tenants, r->k.key, r->k.len, r->k.hash)
                 : NULL;
        derive_row(s, r, b ? b : &zero, dt, same && b);
    }

    derive_row(s, &s->total, base ? &base->total : &zero, dt, same && base);

    for (i = 0; i < s->business.n; i++) {
        br = &((brow_t *) s->business.rows)[i];
        if (!br->counter) {
            continue;
        }
        bb = base ? stab_find(&base->business, br->k.key, br->k.len,
                              br->k.hash)
                  : NULL;
        br->rate = dt > 0 ? (bb && br->value >= bb->value
                             ? br->value - bb->value : br->value) / dt
                          : NAN;
    }

    for (k = 0; k < MODULE_DROP_REASONS; k++) {
        drops += s->pipe.dropped[k];
        base_drops += base ? base->pipe.dropped[k] : 0;
    }
    drops += s->pipe.lost;
    base_drops += base ? base->pipe.lost : 0;
    s->pipe.records_rate = dt > 0 ? (double) increase(s->pipe.records,
                                        base ? base->pipe.records : 0) / dt
                                  : NAN;
    s->pipe.dropped_rate = dt > 0 ? (double) increase(drops, base_drops) / dt
                                  : NAN;
}

static void
derive_row(snap_t *s, srow_t *r, const srow_t *b, double dt,
    int same_layout)
{
    uint64_t   dur[CONFIG_MAX_BUCKETS + 1], up[CONFIG_MAX_BUCKETS + 1];

    r->w_requests = increase(r->requests, b->requests);
    r->w_5xx = increase(r->e5xx, b->e5xx);
    r->w_4xx = increase(r->e4xx, b->e4xx);
    r->rate = dt > 0 ? (double) r->w_requests / dt : NAN;
    r->ratio_5xx = r->w_requests ? (double) r->w_5xx / (double) r->w_requests
                                 : NAN;
    r->ratio_4xx = r->w_requests ? (double) r->w_4xx / (double) r->w_requests
                                 : NAN;

    if (r->dur) {
        window_buckets(r->dur, same_layout ? b->dur : NULL, s->n_dur, dur);
        r->p50 = status_quantile(0.5, s->dur_bounds, s->n_dur, dur);
        r->p95 = status_quantile(0.95, s->dur_bounds, s->n_dur, dur);
        r->p99 = status_quantile(0.99, s->dur_bounds, s->n_dur, dur);
        r->good = status_share_under(s->latency_threshold, s->dur_bounds,
                                     s->n_dur, dur);
    }

    if (r->up) {
        window_buckets(r->up, same_layout ? b->up : NULL, s->n_up, up);
        r->up_p95 = status_quantile(0.95, s->up_bounds, s->n_up, up);
    }
}

/*
 * The increase of each bucket since then (NULL: since 0); when any bucket
 * went down the series were reset, and the whole of now is the increase.
 */

static void
window_buckets(const uint64_t *now, const uint64_t *then, int n,
    uint64_t *out)
{
    int  i, reset = then == NULL;

    for (i = 0; !reset && i <= n; i++) {
        reset = now[i] < then[i];
    }
    for (i = 0; i <= n; i++) {
        out[i] = reset ? now[i] : now[i] - then[i];
    }
}

static uint64_t
increase(uint64_t now, uint64_t then)
{
    return now >= then ? now - then : now;
}

/*
 * The ring's entry for a new snapshot: the totals, and the busiest routes
 * of the window (each with its interval's p95, from the previous
 * snapshot).
 */

static void
summarize(status_t *st, snap_t *s, const snap_t *prev)
{
    spark_t       *e;
    srow_t       **order;
    const srow_t  *p;
    spark_row_t   *rows;
    size_t         i, n = s->routes.n;
    uint64_t       dropped = s->pipe.lost;
    int            k;

    if (n > STATUS_SPARK_ROWS) {
        n = STATUS_SPARK_ROWS;
    }

    order = malloc(sizeof(srow_t *) * (s->routes.n ? s->routes.n : 1));
    rows = malloc(sizeof(spark_row_t) * (n ? n : 1));
    if (order == NULL || rows == NULL) {
        free(order);
        free(rows);
        n = 0;
        rows = NULL;
        order = NULL;
    }

    for (i = 0; order && i < s->routes.n; i++) {
        order[i] = &((srow_t *) s->routes.rows)[i];
    }
    if (order && s->routes.n > n) {
        qsort(order, s->routes.n, sizeof(srow_t *), by_window_requests);
    }

    for (i = 0; i < n; i++) {
        p = prev ? stab_find(&prev->routes, order[i]->k.key, order[i]->k.len,
                             order[i]->k.hash)
                 : NULL;
        rows[i].hash = order[i]->k.hash;
        rows[i].requests = order[i]->requests;
        rows[i].e5xx = order[i]->e5xx;
        rows[i].p95 = interval_p95(s, order[i], prev, p);
    }
    if (n) {
        qsort(rows, n, sizeof(spark_row_t), by_hash);
    }
    free(order);

    for (k = 0; k < MODULE_DROP_REASONS; k++) {
        dropped += s->pipe.dropped[k];
    }

    pthread_mutex_lock(&st->lock);
    e = &st->ring[(st->ring_head + st->ring_len) % STATUS_RING];
    if (st->ring_len == STATUS_RING) {
        st->ring_head = (st->ring_head + 1) % STATUS_RING;
    } else {
        st->ring_len++;
    }
    free(e->rows);
    e->time = s->time;
    e->requests = s->total.requests;
    e->e5xx = s->total.e5xx;
    e->records = s->pipe.records;
    e->dropped = dropped;
    e->p95 = interval_p95(s, &s->total, prev, prev ? &prev->total : NULL);
    e->rows = rows;
    e->n_rows = (uint32_t) n;
    pthread_mutex_unlock(&st->lock);
}

static int
by_window_requests(const void *a, const void *b)
{
    const srow_t  *x = *(const srow_t *const *) a;
    const srow_t  *y = *(const srow_t *const *) b;

    if (x->w_requests != y->w_requests) {
        return x->w_requests > y->w_requests ? -1 : 1;
    }
    return x->requests > y->requests ? -1 : x->requests < y->requests;
}

static int
by_hash(const void *a, const void *b)
{
    const spark_row_t  *x = a, *y = b;

    return x->hash < y->hash ? -1 : x->hash > y->hash;
}

/* The p95 of the requests since the previous snapshot; NaN for none. */

static float
interval_p95(const snap_t *s, const srow_t *r, const snap_t *prev,
    const srow_t *p)
{
    uint64_t  d[CONFIG_MAX_BUCKETS + 1];

    if (r->dur == NULL) {
        return NAN;
    }

    /* a row new since the previous snapshot counts whole, as does one
       whose buckets changed */
    if (p == NULL || p->dur == NULL || prev->n_dur != s->n_dur
        || memcmp(prev->dur_bounds, s->dur_bounds,
                  sizeof(double) * (size_t) s->n_dur) != 0)
    {
        p = NULL;
    }
    window_buckets(r->dur, p ? p->dur : NULL, s->n_dur, d);

    return (float) status_quantile(0.95, s->dur_bounds, s->n_dur, d);
}

static double
wall_now(void)
{
    struct timeval  tv;

    gettimeofday(&tv, NULL);
    return (double) tv.tv_sec + (double) tv.tv_usec / 1e6;
}
