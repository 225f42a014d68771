/* Per-tenant usage as differences of the store's series.  See usage.h. */

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hash.h"
#include "usage.h"

_Static_assert(USAGE_MAX_BUCKETS == CONFIG_MAX_BUCKETS,
               "a usage row holds every configured bucket");

/* What the tracker last saw of one series. */
typedef struct seen {
    struct seen  *next;
    uint64_t      hash;
    uint64_t      epoch;
    uint32_t      born;
    uint16_t      key_len;
    uint64_t      counter;          /* counters; histograms: count */
    double        sum;
    uint64_t     *buckets;          /* histograms: n_bounds + 1 */
    char          key[];
} seen_t;

typedef struct row {
    struct row   *next;
    uint64_t      hash;
    usage_row_t   r;
    char          key[];            /* tenant, service, route, NUL each */
} row_t;

typedef struct {
    void    **items;
    size_t    n_buckets;            /* power of two */
    size_t    count;
} table_t;

struct usage {
    table_t    seen;
    uint64_t   epoch;
};

typedef struct {
    usage_t   *u;
    table_t    rows;
    int        failed;
} collect_t;

static int usage_tenant_label(uint8_t family);
static void usage_visit(const family_t *f, const series_t *se,
    const char **labels, void *data);
static seen_t *usage_seen(collect_t *c, const series_t *se, int *fresh);
static row_t *usage_row(collect_t *c, const char *tenant,
    const char *service, const char *route);
static void usage_histogram(row_t *row, seen_t *s, const histogram_t *h,
    int fresh);
static int table_init(table_t *t);
static int table_grow(table_t *t, size_t hash_offset);

usage_t *
usage_new(void)
{
    usage_t  *u = calloc(1, sizeof(usage_t));

    if (u == NULL || table_init(&u->seen) != 0) {
        free(u);
        return NULL;
    }
    return u;
}

void
usage_free(usage_t *u)
{
    seen_t  *s, *next;
    size_t   b;

    if (u == NULL) {
        return;
    }
    for (b = 0; b < u->seen.n_buckets; b++) {
        for (s = u->seen.items[b]; s; s = next) {
            next = s->next;
            free(s->buckets);
            free(s);
        }
    }
    free(u->seen.items);
    free(u);
}

int
usage_collect(usage_t *u, store_t *store, usage_row_pt fn, void *data)
{
    static const family_id_t  families[] = {
        FAMILY_REQUESTS, FAMILY_DURATION, FAMILY_REQUEST_BODY,
        FAMILY_RESPONSE_BODY
    };

    collect_t   c = { u, { 0 }, 0 };
    seen_t    **link, *s;
    row_t      *r, *next;
    size_t      b, i;

    if (table_init(&c.rows) != 0) {
        return -1;
    }

    u->epoch++;
    for (i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        store_visit(store, families[i], usage_visit, &c);
    }

    /* series the store no longer has are forgotten: if they come back,
       they count from zero */
    for (b = 0; b < u->seen.n_buckets; b++) {
        link = (seen_t **) &u->seen.items[b];
        while ((s = *link) != NULL) {
            if (s->epoch != u->epoch) {
                *link = s->next;
                free(s->buckets);
                free(s);
                u->seen.count--;
            } else {
                link = &s->next;
            }
        }
    }

    for (b = 0; b < c.rows.n_buckets; b++) {
        for (r = c.rows.items[b]; r; r = next) {
            next = r->next;
            if (r->r.requests || r->r.bytes_in || r->r.bytes_out
                || r->r.duration_count)
            {
                fn(&r->r, data);
            }
            free(r);
        }
    }
    free(c.rows.items);

    return c.failed ? -1 : 0;
}

/* One series: its growth since the last collection goes to its row. */

static void
usage_visit(const family_t *f, const series_t *se, const char **labels,
    void *data)
{
    collect_t    *c = data;
    seen_t       *s;
    row_t        *row;
    uint64_t      delta;
    const char   *tenant;
    int           fresh;

    (void) f;

    s = usage_seen(c, se, &fresh);
    if (s == NULL) {
        return;
    }

    /* service and route lead every family usage reads (families.def) */
    _Static_assert(LABEL_REQUESTS_service == 0 && LABEL_REQUESTS_route == 1
                   && LABEL_DURATION_service == 0 && LABEL_DURATION_route == 1
                   && LABEL_REQUEST_BODY_service == 0
                   && LABEL_REQUEST_BODY_route == 1
                   && LABEL_RESPONSE_BODY_service == 0
                   && LABEL_RESPONSE_BODY_route == 1,
                   "usage rows read service and route in place");
    tenant = labels[usage_tenant_label(se->family)];
    row = usage_row(c, tenant, labels[0], labels[1]);
    if (row == NULL) {
        /* not taken: the difference stays for the next collection */
        s->epoch = c->u->epoch;
        return;
    }

    s->epoch = c->u->epoch;

    if (se->family == FAMILY_DURATION) {
        if (se->v.histogram) {
            usage_histogram(row, s, se->v.histogram, fresh);
        }
        return;
    }

    delta = se->v.counter - (fresh ? 0 : s->counter);
    s->counter = se->v.counter;

    switch (se->family) {
    case FAMILY_REQUESTS:
        row->r.requests += delta;
        if (labels[LABEL_REQUESTS_code][0] == '5') {
            row->r.errors += delta;
        } else if (labels[LABEL_REQUESTS_code][0] == '4') {
            row->r.client_errors += delta;
        }
        break;
    case FAMILY_REQUEST_BODY:
        row->r.bytes_in += delta;
        break;
    default:
        row->r.bytes_out += delta;
        break;
    }
}

/* Where a family usage reads keeps its tenant. */

static int
usage_tenant_label(uint8_t family)
{
    switch (family) {
    case FAMILY_REQUESTS:
        return LABEL_REQUESTS_tenant;
    case FAMILY_DURATION:
        return LABEL_DURATION_tenant;
    case FAMILY_REQUEST_BODY:
        return LABEL_REQUEST_BODY_tenant;
    default:
        return LABEL_RESPONSE_BODY_tenant;
    }
}

/*
 * The series' bucket counts go to the row's bucket of the same bound, or
 * the first wider one when the buckets were reconfigured in between.
 */

static void
usage_histogram(row_t *row, seen_t *s, const histogram_t *h, int fresh)
{
    usage_row_t  *r = &row->r;
    int           i, j;

    if (s->buckets == NULL) {
        s->buckets = calloc((size_t) h->n_bounds + 1, sizeof(uint64_t));
        if (s->buckets == NULL) {
            return;
        }
        fresh = 1;
    }

    if (r->bounds == NULL) {
        r->bounds = h->bounds;
        r->n_bounds = h->n_bounds;
    }

    for (i = 0, j = 0; i <= h->n_bounds; i++) {
        while (j < r->n_bounds
               && (i == h->n_bounds || r->bounds[j] < h->bounds[i]))
        {
            j++;
        }
        r->buckets[j] += h->buckets[i] - (fresh ? 0 : s->buckets[i]);
        s->buckets[i] = h->buckets[i];
    }

    r->duration_count += h->count - (fresh ? 0 : s->counter);
    r->duration_sum += h->sum - (fresh ? 0 : s->sum);
    s->counter = h->count;
    s->sum = h->sum;
}

/* The tracker's entry for a series; *fresh when it is new to the tracker
   or a different series under the same labels. */

static seen_t *
usage_seen(collect_t *c, const series_t *se, int *fresh)
{
    table_t  *t = &c->u->seen;
    seen_t   *s;
    size_t    slot = se->hash & (t->n_buckets - 1);

    for (s = t->items[slot]; s; s = s->next) {
        if (s->hash == se->hash && s->key_len == se->key_len
            && memcmp(s->key, se->key, se->key_len) == 0)
        {
            *fresh = s->born != se->born;
            if (*fresh) {
                free(s->buckets);
                s->buckets = NULL;
                s->born = se->born;
                s->counter = 0;
                s->sum = 0;
            }
            return s;
        }
    }

    if (t->count >= t->n_buckets
        && table_grow(t, offsetof(seen_t, hash)) != 0)
    {
        c->failed = 1;
        return NULL;
    }

    s = calloc(1, sizeof(seen_t) + se->key_len);
    if (s == NULL) {
        c->failed = 1;
        return NULL;
    }

    s->hash = se->hash;
    s->born = se->born;
    s->key_len = se->key_len;
    memcpy(s->key, se->key, se->key_len);

    slot = se->hash & (t->n_buckets - 1);
    s->next = t->items[slot];
    t->items[slot] = s;
    t->count++;
    *fresh = 1;
    return s;
}

static row_t *
usage_row(collect_t *c, const char *tenant, const char *service,
    const char *route)
{
    size_t    lt = strlen(tenant) + 1, ls = strlen(service) + 1;
    size_t    lr = strlen(route) + 1, len = lt + ls + lr, slot;
    char      key[3 * 300];
    uint64_t  hash;
    row_t    *r;

    if (len > sizeof(key)) {
        return NULL;
    }
    memcpy(key, tenant, lt);
    memcpy(key + lt, service, ls);
    memcpy(key + lt + ls, route, lr);
    hash = hash_bytes(key, len, 0x05a6e);

    slot = hash & (c->rows.n_buckets - 1);
    for (r = c->rows.items[slot]; r; r = r->next) {
        if (r->hash == hash && memcmp(r->key, key, len) == 0) {
            return r;
        }
    }

    if (c->rows.count >= c->rows.n_buckets
        && table_grow(&c->rows, offsetof(row_t, hash)) != 0)
    {
        c->failed = 1;
        return NULL;
    }

    r = calloc(1, sizeof(row_t) + len);
    if (r == NULL) {
        c->failed = 1;
        return NULL;
    }

    r->hash = hash;
    memcpy(r->key, key, len);
    r->r.tenant = r->key;
    r->r.service = r->key + lt;
    r->r.route = r->key + lt + ls;

    slot = hash & (c->rows.n_buckets - 1);
    r->next = c->rows.items[slot];
    c->rows.items[slot] = r;
    c->rows.count++;
    return r;
}

static int
table_init(table_t *t)
{
    t->n_buckets = 256;
    t->count = 0;
    t->items = calloc(t->n_buckets, sizeof(void *));
    return t->items ? 0 : -1;
}

/* Doubles a chained table whose entries start with a next pointer and keep
   their hash at hash_offset. */

static int
table_grow(table_t *t, size_t hash_offset)
{
    void    **items, *e, *next;
    size_t    n = t->n_buckets * 2, b, slot;
    uint64_t  hash;

    items = calloc(n, sizeof(void *));
    if (items == NULL) {
        return -1;
    }

    for (b = 0; b < t->n_buckets; b++) {
        for (e = t->items[b]; e; e = next) {
            next = *(void **) e;
            memcpy(&hash, (char *) e + hash_offset, sizeof(hash));
            slot = hash & (n - 1);
            *(void **) e = items[slot];
            items[slot] = e;
        }
    }

    free(t->items);
    t->items = items;
    t->n_buckets = n;
    return 0;
}
