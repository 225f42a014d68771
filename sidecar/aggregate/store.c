/* The aggregation store.  See store.h. */

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "store.h"

#define STORE_SHARDS      64
#define STORE_KEY_MAX     (1 + STORE_MAX_LABELS * 300)
/* the longest key a thread remembers (store_hit_t); most are far shorter */
#define STORE_HIT_KEY     256

#define OBS_FAMILY(ID, name, type, unit, stored, otel_name, otel_unit, help)  \
    _Static_assert(!(stored) || (int) FAMILY_##ID < (int) FAMILY_COUNT,       \
                   "the store's families come first in families.def");       \
    _Static_assert(LABELS_##ID <= STORE_MAX_LABELS,                           \
                   "a series' labels fit its key");
#include "obs/v1/families.def"

const family_t  store_families[FAMILY_ALL] = {
#define OBS_FAMILY(ID, n, ty, u, stored, otel_n, otel_u, h)                   \
    [FAMILY_##ID] = { .name = #n, .help = h, .unit = u,                       \
                      .type = METRIC_##ty, .n_labels = LABELS_##ID,          \
                      .otel_name = otel_n, .otel_unit = otel_u,              \
                      .labels = {
#define OBS_LABEL(ID, label)  #label,
#define OBS_FAMILY_END(ID)    } },
#include "obs/v1/families.def"
};

#define OBS_LABEL_INT_TEXT  0
#define OBS_LABEL_INT_INT   1

static const family_label_t  family_labels[] = {
#define OBS_LABEL_NAME(label, otel_attribute, otel_type)                      \
    { #label, otel_attribute, OBS_LABEL_INT_##otel_type },
#include "obs/v1/families.def"
};

/*
 * A shard also lists its series by family, for store_visit: a scrape walks
 * the store a family at a time, and through the hash chains it would touch
 * every series (a cache miss each) once a family.
 */
typedef struct {
    pthread_mutex_t   lock;
    series_t        **buckets;
    size_t            n_buckets;    /* power of two */
    size_t            count;
    series_t         *family_head[FAMILY_COUNT];
    series_t        **family_tail[FAMILY_COUNT];
    uint64_t          gone;         /* series freed, ever */
} shard_t;

/*
 * The series a thread last found in each family.  Consecutive records
 * mostly carry the same labels (a worker's datagram holds its requests one
 * after the other, most to a few busy routes), and their key compared with
 * the last one's costs less than hashing it and walking its chain.  An
 * entry is trusted under its shard's lock while that shard has freed no
 * series since (gone), in the same store (id: not its address, which a new
 * store may reuse).
 */
typedef struct {
    uint64_t          store_id;     /* 0: none */
    shard_t          *shard;
    series_t         *series;
    uint64_t          gone;
    size_t            len;
    char              key[STORE_HIT_KEY];
} store_hit_t;

static _Thread_local store_hit_t  store_hits[FAMILY_COUNT];
static atomic_ullong              store_ids;

struct store {
    shard_t      shards[STORE_SHARDS];
    atomic_long  size;
    atomic_long  max_series;
    atomic_long  from_request;      /* series with labels made from requests */
    atomic_long  max_from_request;
    atomic_uint  born;
    uint64_t     id;                /* store_hit_t's */
};

static void store_measure(family_id_t family, const char **labels,
    store_label_t *out);
static size_t store_key(family_id_t family, const store_label_t *labels,
    char *key);
static series_t *store_lookup(store_t *s, family_id_t family,
    const store_label_t *labels, time_t now, long reserve, int from_request,
    int *rc, shard_t **shard);
static void store_remember(store_hit_t *hit, const store_t *s,
    shard_t *sh, series_t *se);
static int store_take(store_t *s, long reserve, int from_request);
static void store_give_back(store_t *s, int from_request);
static void store_free_series(series_t *se);
static void store_unchain(shard_t *sh, series_t *se);
static int shard_grow(shard_t *sh);

store_t *
store_new(long max_series)
{
    store_t  *s;
    int       i, f;

    s = calloc(1, sizeof(store_t));
    if (s == NULL) {
        return NULL;
    }

    for (i = 0; i < STORE_SHARDS; i++) {
        pthread_mutex_init(&s->shards[i].lock, NULL);
        for (f = 0; f < FAMILY_COUNT; f++) {
            s->shards[i].family_tail[f] = &s->shards[i].family_head[f];
        }
        s->shards[i].n_buckets = 64;
        s->shards[i].buckets = calloc(64, sizeof(series_t *));
        if (s->shards[i].buckets == NULL) {
            store_free(s);
            return NULL;
        }
    }

    atomic_init(&s->size, 0);
    atomic_init(&s->max_series, max_series);
    atomic_init(&s->from_request, 0);
    atomic_init(&s->max_from_request, max_series);
    s->id = atomic_fetch_add(&store_ids, 1) + 1;
    return s;
}

void
store_free(store_t *s)
{
    series_t  *se, *next;
    size_t     b;
    int        i;

    if (s == NULL) {
        return;
    }

    for (i = 0; i < STORE_SHARDS; i++) {
        for (b = 0; s->shards[i].buckets && b < s->shards[i].n_buckets; b++) {
            for (se = s->shards[i].buckets[b]; se; se = next) {
                next = se->next;
                store_free_series(se);
            }
        }
        free(s->shards[i].buckets);
        pthread_mutex_destroy(&s->shards[i].lock);
    }

    free(s);
}

void
store_set_max_series(store_t *s, long max_series)
{
    atomic_store(&s->max_series, max_series);
}

void
store_set_share(store_t *s, long max_from_request)
{
    atomic_store(&s->max_from_request, max_from_request);
}

int
store_add(store_t *s, family_id_t family, const char **labels,
    uint64_t delta, time_t now, long reserve, int from_request)
{
    store_label_t  m[STORE_MAX_LABELS];

    store_measure(family, labels, m);
    return store_add_measured(s, family, m, delta, now, reserve,
                              from_request);
}

int
store_observe(store_t *s, family_id_t family, const char **labels,
    const double *bounds, int n_bounds, double v, const uint8_t *trace_id,
    const uint8_t *span_id, double now_f, time_t now, long reserve,
    int from_request)
{
    store_label_t  m[STORE_MAX_LABELS];

    store_measure(family, labels, m);
    return store_observe_measured(s, family, m, bounds, n_bounds, v,
                                  trace_id, span_id, now_f, now, reserve,
                                  from_request);
}

int
store_add_measured(store_t *s, family_id_t family,
    const store_label_t *labels, uint64_t delta, time_t now, long reserve,
    int from_request)
{
    int        rc;
    series_t  *se;
    shard_t   *sh;

    se = store_lookup(s, family, labels, now, reserve, from_request, &rc,
                      &sh);
    if (se == NULL) {
        return rc;
    }

    se->v.counter += delta;
    pthread_mutex_unlock(&sh->lock);
    return STORE_OK;
}

int
store_observe_measured(store_t *s, family_id_t family,
    const store_label_t *labels, const double *bounds, int n_bounds,
    double v, const uint8_t *trace_id, const uint8_t *span_id, double now_f,
    time_t now, long reserve, int from_request)
{
    int        rc;
    series_t  *se;
    shard_t   *sh;

    se = store_lookup(s, family, labels, now, reserve, from_request, &rc,
                      &sh);
    if (se == NULL) {
        return rc;
    }

    if (se->v.histogram == NULL) {
        se->v.histogram = histogram_new(bounds, n_bounds);
        if (se->v.histogram == NULL) {
            pthread_mutex_unlock(&sh->lock);
            return STORE_NOMEM;
        }
    }

    rc = histogram_observe(se->v.histogram, v, trace_id, span_id, now_f);
    pthread_mutex_unlock(&sh->lock);
    return rc == 0 ? STORE_OK : STORE_NOMEM;
}

size_t
store_expire(store_t *s, time_t before)
{
    series_t  **link, *se;
    size_t      removed = 0, from_request = 0;
    int         i, f;

    for (i = 0; i < STORE_SHARDS; i++) {
        shard_t  *sh = &s->shards[i];

        pthread_mutex_lock(&sh->lock);

        for (f = 0; f < FAMILY_COUNT; f++) {
            link = &sh->family_head[f];
            while ((se = *link) != NULL) {
                if (se->updated < before) {
                    *link = se->family_next;
                    store_unchain(sh, se);
                    from_request += se->from_request;
                    store_free_series(se);
                    sh->count--;
                    sh->gone++;
                    removed++;
                } else {
                    link = &se->family_next;
                }
            }
            sh->family_tail[f] = link;
        }

        pthread_mutex_unlock(&sh->lock);
    }

    atomic_fetch_sub(&s->size, (long) removed);
    atomic_fetch_sub(&s->from_request, (long) from_request);
    return removed;
}

long
store_size(const store_t *s)
{
    return atomic_load(&((store_t *) s)->size);
}

void
store_visit(store_t *s, family_id_t family, store_visit_pt visit, void *data)
{
    const family_t  *f = &store_families[family];
    const char      *labels[STORE_MAX_LABELS];
    const char      *p;
    series_t        *se;
    int              i, l;

    if ((int) family >= FAMILY_COUNT) {
        return;                     /* kept beside the store, not in it */
    }

    for (i = 0; i < STORE_SHARDS; i++) {
        shard_t  *sh = &s->shards[i];

        pthread_mutex_lock(&sh->lock);

        for (se = sh->family_head[family]; se; se = se->family_next) {
            /* the next series is a cache miss: start it while this one's
               lines are written */
            __builtin_prefetch(se->family_next);

            p = se->key + 1;
            for (l = 0; l < f->n_labels; l++) {
                labels[l] = p;
                p += strlen(p) + 1;
            }

            visit(f, se, labels, data);
        }

        pthread_mutex_unlock(&sh->lock);
    }
}

static void
store_measure(family_id_t family, const char **labels, store_label_t *out)
{
    int  l;

    for (l = 0; l < store_families[family].n_labels; l++) {
        out[l] = store_label(labels[l]);
    }
}

/*
 * Copies n bytes (a label value and its NUL): up to 32 in moves that may
 * overlap, with no loop and no call; values are short, and a call to
 * memcpy costs more than copying them.
 */

static inline void
store_copy(char *dst, const char *src, size_t n)
{
    if (n >= 8 && n <= 16) {
        memcpy(dst, src, 8);
        memcpy(dst + n - 8, src + n - 8, 8);

    } else if (n > 16 && n <= 32) {
        memcpy(dst, src, 16);
        memcpy(dst + n - 16, src + n - 16, 16);

    } else if (n >= 4 && n < 8) {
        memcpy(dst, src, 4);
        memcpy(dst + n - 4, src + n - 4, 4);

    } else {
        memcpy(dst, src, n);
    }
}

/*
 * Key: the family byte, then each label value with its NUL.  The lengths
 * are known (store_label): no value is measured again for each family.
 */

static size_t
store_key(family_id_t family, const store_label_t *labels, char *key)
{
    size_t  n = 1, len;
    int     l, n_labels = store_families[family].n_labels;

    key[0] = (char) (family + 1);

    for (l = 0; l < n_labels; l++) {
        len = labels[l].len + 1;
        store_copy(key + n, labels[l].value, len);
        n += len;
    }

    return n;
}

/*
 * Finds or creates the series; on success returns it with its shard locked
 * (*shard), otherwise NULL with *rc set.
 */

static series_t *
store_lookup(store_t *s, family_id_t family, const store_label_t *labels,
    time_t now, long reserve, int from_request, int *rc, shard_t **shard)
{
    char          key[STORE_KEY_MAX];
    size_t        len;
    uint64_t      hash;
    shard_t      *sh;
    series_t     *se;
    store_hit_t  *hit = (int) family < FAMILY_COUNT ? &store_hits[family]
                                                    : NULL;

    len = store_key(family, labels, key);

    if (hit && hit->store_id == s->id && hit->len == len
        && memcmp(hit->key, key, len) == 0)
    {
        sh = hit->shard;
        pthread_mutex_lock(&sh->lock);
        if (sh->gone == hit->gone) {
            se = hit->series;
            se->updated = now;
            *shard = sh;
            return se;
        }
        pthread_mutex_unlock(&sh->lock);
    }

    hash = hash_bytes(key, len, 0x5eed);
    sh = &s->shards[hash >> 58];

    pthread_mutex_lock(&sh->lock);

    for (se = sh->buckets[hash & (sh->n_buckets - 1)]; se; se = se->next) {
        if (se->hash == hash && se->key_len == len
            && memcmp(se->key, key, len) == 0)
        {
            se->updated = now;
            store_remember(hit, s, sh, se);
            *shard = sh;
            return se;
        }
    }

    if (!store_take(s, reserve, from_request)) {
        pthread_mutex_unlock(&sh->lock);
        *rc = STORE_FULL;
        return NULL;
    }

    se = NULL;
    if (sh->count < sh->n_buckets || shard_grow(sh) == 0) {
        se = calloc(1, sizeof(series_t) + len);
    }

    if (se == NULL) {
        store_give_back(s, from_request);
        pthread_mutex_unlock(&sh->lock);
        *rc = STORE_NOMEM;
        return NULL;
    }

    se->hash = hash;
    se->updated = now;
    se->family = (uint8_t) family;
    se->from_request = from_request != 0;
    se->key_len = (uint16_t) len;
    se->born = atomic_fetch_add(&s->born, 1) + 1;
    memcpy(se->key, key, len);

    se->next = sh->buckets[hash & (sh->n_buckets - 1)];
    sh->buckets[hash & (sh->n_buckets - 1)] = se;
    *sh->family_tail[family] = se;
    sh->family_tail[family] = &se->family_next;
    sh->count++;

    store_remember(hit, s, sh, se);
    *shard = sh;
    return se;
}

/* Notes the series found for the next lookup of its family (its shard's
   lock held). */

static void
store_remember(store_hit_t *hit, const store_t *s, shard_t *sh,
    series_t *se)
{
    if (hit == NULL || se->key_len > STORE_HIT_KEY) {
        return;
    }

    hit->store_id = s->id;
    hit->shard = sh;
    hit->series = se;
    hit->gone = sh->gone;
    hit->len = se->key_len;
    memcpy(hit->key, se->key, se->key_len);
}

/*
 * Takes a slot for a new series, under the cap and, for one with labels
 * made from requests, under the share.  The slot is taken before the
 * series exists, so that the caps are exact with other threads adding.
 */

static int
store_take(store_t *s, long reserve, int from_request)
{
    if (atomic_fetch_add(&s->size, 1) + reserve
        >= atomic_load(&s->max_series))
    {
        atomic_fetch_sub(&s->size, 1);
        return 0;
    }

    if (from_request
        && atomic_fetch_add(&s->from_request, 1)
           >= atomic_load(&s->max_from_request))
    {
        store_give_back(s, 1);
        return 0;
    }

    return 1;
}

static void
store_give_back(store_t *s, int from_request)
{
    atomic_fetch_sub(&s->size, 1);

    if (from_request) {
        atomic_fetch_sub(&s->from_request, 1);
    }
}

static void
store_free_series(series_t *se)
{
    if (store_families[se->family].type == METRIC_HISTOGRAM) {
        histogram_free(se->v.histogram);
    }
    free(se);
}

/* Takes a series out of its hash chain. */

static void
store_unchain(shard_t *sh, series_t *se)
{
    series_t  **link = &sh->buckets[se->hash & (sh->n_buckets - 1)];

    while (*link != se) {
        link = &(*link)->next;
    }

    *link = se->next;
}

static int
shard_grow(shard_t *sh)
{
    series_t  **buckets, *se, *next;
    size_t      n = sh->n_buckets * 2, b;

    buckets = calloc(n, sizeof(series_t *));
    if (buckets == NULL) {
        return -1;
    }

    for (b = 0; b < sh->n_buckets; b++) {
        for (se = sh->buckets[b]; se; se = next) {
            next = se->next;
            se->next = buckets[se->hash & (n - 1)];
            buckets[se->hash & (n - 1)] = se;
        }
    }

    free(sh->buckets);
    sh->buckets = buckets;
    sh->n_buckets = n;
    return 0;
}

const family_t *
family_by_name(const char *name)
{
    int  i;

    for (i = 0; i < FAMILY_ALL; i++) {
        if (strcmp(store_families[i].name, name) == 0) {
            return &store_families[i];
        }
    }

    return NULL;
}

const family_label_t *
family_label(const char *label)
{
    size_t  i;

    for (i = 0; i < sizeof(family_labels) / sizeof(family_labels[0]); i++) {
        if (strcmp(family_labels[i].label, label) == 0) {
            return &family_labels[i];
        }
    }

    return NULL;
}
