/* Requests in flight.  See active_requests.h. */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "active_requests.h"
#include "labels.h"
#include "stats.h"
#include "store.h"

typedef struct {
    uint64_t  id;
    uint64_t  version;
    uint64_t  overflow;         /* lookups that found no room, so far */
    time_t    seen;
    int       used;
    int       trusted;          /* its snapshots come with a valid tag */
} zone_t;

typedef struct {
    int       zone;
    uint64_t  count;
    time_t    updated;
    char      service[LABEL_BUF_LEN];
    char      route[LABEL_BUF_LEN];
} entry_t;

struct active_requests {
    pthread_mutex_t  lock;
    zone_t           zones[ACTIVE_MAX_ZONES];
    entry_t          active[ACTIVE_MAX_ENTRIES];
    size_t           n_active;
};

static zone_t *active_zone(active_requests_t *b, uint64_t id, int trusted);
static void active_zone_clear(active_requests_t *b, int zone);
static entry_t *active_entry(active_requests_t *b, int zone,
    const char *service, const char *route);
static void active_write(expo_writer_t *w, active_requests_t *b);
static uint64_t active_add(uint64_t a, uint64_t b);

active_requests_t *
active_requests_new(void)
{
    active_requests_t  *a;

    a = calloc(1, sizeof(active_requests_t));
    if (a == NULL) {
        return NULL;
    }

    pthread_mutex_init(&a->lock, NULL);
    return a;
}

void
active_requests_free(active_requests_t *a)
{
    if (a == NULL) {
        return;
    }

    pthread_mutex_destroy(&a->lock);
    free(a);
}

void
active_requests_take(active_requests_t *b, const Obs__V1__BatchHeader *h,
    const char *default_service, int trusted, time_t now)
{
    char        service[LABEL_BUF_LEN], route[LABEL_BUF_LEN];
    zone_t    *z;
    entry_t  *e;
    size_t      i;
    int         zi;

    if (h->active_zone == 0) {
        return;                             /* no snapshot in this header */
    }

    for (i = 0; !h->active_closed && i < h->n_active
                && i < ACTIVE_MAX_SNAPSHOT; i++)
    {
        if (h->active[i]->count > ACTIVE_MAX_IN_FLIGHT) {
            STATS_INC(decode_errors[DECODE_MALFORMED]);
            return;
        }
    }

    pthread_mutex_lock(&b->lock);

    z = active_zone(b, h->active_zone, trusted);

    /* only the newest snapshot of a zone counts */

    if (z == NULL || h->active_version <= z->version) {
        pthread_mutex_unlock(&b->lock);
        return;
    }

    z->version = h->active_version;
    z->overflow = h->active_overflow;
    z->seen = now;
    zi = (int) (z - b->zones);

    for (i = 0; i < b->n_active; i++) {
        if (b->active[i].zone == zi) {
            b->active[i].count = 0;
        }
    }

    /* nginx sends at most 129 entries: more is not a snapshot of it */

    for (i = 0; !h->active_closed && i < h->n_active
                && i < ACTIVE_MAX_SNAPSHOT; i++)
    {
        if (label_sanitize(h->active[i]->service.data,
                           h->active[i]->service.len, service) == 0)
        {
            snprintf(service, sizeof(service), "%s", default_service);
        }
        label_sanitize(h->active[i]->route.data, h->active[i]->route.len,
                       route);

        e = active_entry(b, zi, service, route);
        if (e) {
            e->count = active_add(e->count, h->active[i]->count);
            e->updated = now;
        }
    }

    pthread_mutex_unlock(&b->lock);
}

/*
 * A zone is its id and its trust: a plain snapshot that names a signed
 * zone is a zone of its own, and a signed zone that finds no room takes
 * the slot of the plain zone seen least recently.
 */

static zone_t *
active_zone(active_requests_t *b, uint64_t id, int trusted)
{
    zone_t  *z, *free_zone = NULL, *plain = NULL;
    int       i;

    for (i = 0; i < ACTIVE_MAX_ZONES; i++) {
        z = &b->zones[i];

        if (!z->used) {
            free_zone = free_zone ? free_zone : z;
            continue;
        }
        if (z->id == id && z->trusted == trusted) {
            return z;
        }
        if (!z->trusted && (plain == NULL || z->seen < plain->seen)) {
            plain = z;
        }
    }

    if (free_zone == NULL && trusted && plain) {
        active_zone_clear(b, (int) (plain - b->zones));
        free_zone = plain;
    }

    if (free_zone) {
        memset(free_zone, 0, sizeof(*free_zone));
        free_zone->id = id;
        free_zone->used = 1;
        free_zone->trusted = trusted;
    }

    return free_zone;
}

/* Forgets a zone's in-flight entries (its slot goes to another). */

static void
active_zone_clear(active_requests_t *b, int zone)
{
    size_t  i, k;

    for (i = 0, k = 0; i < b->n_active; i++) {
        if (b->active[i].zone != zone) {
            b->active[k++] = b->active[i];
        }
    }

    b->n_active = k;
}

/*
 * The entry of a zone's service and route; when the table is full, a
 * signed zone's new entry takes one of a plain zone.
 */

static entry_t *
active_entry(active_requests_t *b, int zone, const char *service,
    const char *route)
{
    entry_t  *e, *plain = NULL;
    size_t      i;

    for (i = 0; i < b->n_active; i++) {
        e = &b->active[i];
        if (e->zone == zone && strcmp(e->service, service) == 0
            && strcmp(e->route, route) == 0)
        {
            return e;
        }
        if (plain == NULL && !b->zones[e->zone].trusted) {
            plain = e;
        }
    }

    if (b->n_active == ACTIVE_MAX_ENTRIES) {
        STATS_INC(overflow[OVERFLOW_SERIES]);

        if (!b->zones[zone].trusted || plain == NULL) {
            return NULL;
        }
        e = plain;

    } else {
        e = &b->active[b->n_active++];
    }

    memset(e, 0, sizeof(*e));
    e->zone = zone;
    snprintf(e->service, sizeof(e->service), "%s", service);
    snprintf(e->route, sizeof(e->route), "%s", route);
    return e;
}

void
active_requests_expire(active_requests_t *b, time_t before)
{
    size_t  i, k;
    int     f, in_use[ACTIVE_MAX_ZONES] = { 0 };

    pthread_mutex_lock(&b->lock);

    /*
     * in-flight entries at 0 for a TTL go, and zones with nothing left; a
     * zone silent for a TTL (an nginx killed without a word) counts 0
     */

    for (i = 0, k = 0; i < b->n_active; i++) {
        if (b->zones[b->active[i].zone].seen < before) {
            b->active[i].count = 0;
        }
        if (b->active[i].count == 0 && b->active[i].updated < before) {
            continue;
        }
        in_use[b->active[i].zone] = 1;
        b->active[k++] = b->active[i];
    }
    b->n_active = k;

    for (f = 0; f < ACTIVE_MAX_ZONES; f++) {
        if (b->zones[f].used && !in_use[f] && b->zones[f].seen < before) {
            b->zones[f].used = 0;
        }
    }

    pthread_mutex_unlock(&b->lock);
}

void
active_requests_metrics(expo_writer_t *w, void *data)
{
    active_requests_t  *b = data;

    pthread_mutex_lock(&b->lock);
    active_write(w, b);
    pthread_mutex_unlock(&b->lock);
}

/* Each service and route once, summed over the nginx instances. */

static void
active_write(expo_writer_t *w, active_requests_t *b)
{
    const family_t  *f = &store_families[FAMILY_ACTIVE_REQUESTS];
    const char      *values[LABELS_ACTIVE_REQUESTS];
    uint64_t         sum, overflow;
    size_t           i, j;

    expo_family(w, f->name, f->help, f->unit, EXPO_GAUGE);

    for (i = 0; i < b->n_active; i++) {
        for (j = 0; j < i; j++) {
            if (strcmp(b->active[j].service, b->active[i].service) == 0
                && strcmp(b->active[j].route, b->active[i].route) == 0)
            {
                break;
            }
        }
        if (j < i) {
            continue;                       /* written with the first */
        }

        for (sum = 0, j = i; j < b->n_active; j++) {
            if (strcmp(b->active[j].service, b->active[i].service) == 0
                && strcmp(b->active[j].route, b->active[i].route) == 0)
            {
                sum = active_add(sum, b->active[j].count);
            }
        }

        _Static_assert(LABELS_ACTIVE_REQUESTS == 2, "service and route");
        values[LABEL_ACTIVE_REQUESTS_service] = b->active[i].service;
        values[LABEL_ACTIVE_REQUESTS_route] = b->active[i].route;
        expo_sample(w, f->labels, values, LABELS_ACTIVE_REQUESTS,
                    (double) sum);
    }

    expo_family_end(w);

    for (i = 0, overflow = 0; i < ACTIVE_MAX_ZONES; i++) {
        overflow = active_add(overflow,
                                b->zones[i].used ? b->zones[i].overflow : 0);
    }

    expo_family(w, "obs_active_requests_overflow",
                "Requests counted in flight under __overflow__ because "
                "nginx's table of service and route keys (or its share "
                "for keys made from requests) was full.", NULL,
                EXPO_COUNTER);
    expo_sample(w, NULL, NULL, 0, (double) overflow);
    expo_family_end(w);
}

/* a + b, or UINT64_MAX when that does not fit: a gauge never wraps to 0. */

static uint64_t
active_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}
