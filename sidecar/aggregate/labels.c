/* Bounded dimensions.  See labels.h. */

#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "label_rules.h"
#include "labels.h"

const char  label_overflow[] = LABEL_OVERFLOW_TEXT;

typedef struct {
    uint64_t      hash;
    time_t        last_seen;
    char         *value;        /* NULL: empty slot */
    dimension_t  *sub;          /* a map's values under this key */
    int           from_request;
} dimension_entry_t;

struct dimension {
    dimension_entry_t  *slots;
    size_t              n_slots;    /* power of two, at least 2 * cap */
    size_t              used;
    size_t              from_request;   /* of used */
    dimension_caps_t    caps;
    /* the entry found last: records in a row mostly carry the same value,
       and a compare with it skips the hash and the probe (NULL once slots
       move or empty) */
    dimension_entry_t  *last;
};

struct dimension_map {
    dimension_t        *keys;
    dimension_caps_t    values;     /* per key */
};

static int dimension_rehash(dimension_t *d, size_t n_slots);
static dimension_entry_t *dimension_find(dimension_t *d, const char *value,
    uint64_t hash);
static dimension_entry_t *dimension_entry(dimension_t *d, const char *value,
    int from_request, time_t now);
static void dimension_entry_free(dimension_t *d, dimension_entry_t *e);

dimension_caps_t
dimension_caps(long cap, long percent)
{
    dimension_caps_t  caps;

    caps.cap = cap;
    caps.share = cap / 100 * percent + cap % 100 * percent / 100;
    if (caps.share < 1) {
        caps.share = 1;
    }

    return caps;
}


dimension_t *
dimension_new(long cap)
{
    dimension_t  *d;

    d = calloc(1, sizeof(dimension_t));
    if (d == NULL) {
        return NULL;
    }

    d->caps.cap = cap;
    d->caps.share = cap;
    if (dimension_rehash(d, 64) != 0) {
        free(d);
        return NULL;
    }

    return d;
}

void
dimension_free(dimension_t *d)
{
    size_t  i;

    if (d == NULL) {
        return;
    }

    for (i = 0; i < d->n_slots; i++) {
        dimension_entry_free(d, &d->slots[i]);
    }
    free(d->slots);
    free(d);
}

void
dimension_set_caps(dimension_t *d, dimension_caps_t caps)
{
    d->caps = caps;
}

const char *
dimension_admit(dimension_t *d, const char *value, int from_request,
    time_t now, int *overflowed)
{
    dimension_entry_t  *e;

    e = dimension_entry(d, value, from_request, now);
    if (e == NULL) {
        *overflowed = 1;
        return LABEL_OVERFLOW;
    }

    return e->value;
}

/* The entry of value, admitted now if the caps allow; NULL past them. */

static dimension_entry_t *
dimension_entry(dimension_t *d, const char *value, int from_request,
    time_t now)
{
    uint64_t            hash = 0;
    dimension_entry_t  *e;

    e = d->last;
    if (e == NULL || strcmp(e->value, value) != 0) {
        hash = hash_bytes(value, strlen(value), 0x51);
        e = dimension_find(d, value, hash);
    }

    if (e->value) {
        d->last = e;
        e->last_seen = now;

        /* the configuration writes it too: it no longer takes the share */
        if (e->from_request && !from_request) {
            e->from_request = 0;
            d->from_request--;
        }

        return e;
    }

    if ((long) d->used >= d->caps.cap
        || (from_request && (long) d->from_request >= d->caps.share))
    {
        return NULL;
    }

    if ((d->used + 1) * 2 > d->n_slots) {
        if (dimension_rehash(d, d->n_slots * 2) != 0) {
            return NULL;
        }
        e = dimension_find(d, value, hash);
    }

    e->value = strdup(value);
    if (e->value == NULL) {
        return NULL;
    }

    e->hash = hash;
    e->last_seen = now;
    e->from_request = from_request != 0;
    d->last = e;
    d->used++;
    d->from_request += e->from_request;
    return e;
}

/* Empties a slot: an entry that is gone leaves the counts too. */

static void
dimension_entry_free(dimension_t *d, dimension_entry_t *e)
{
    if (e->value) {
        d->used--;
        d->from_request -= e->from_request;
    }
    if (d->last == e) {
        d->last = NULL;
    }

    free(e->value);
    dimension_free(e->sub);
    e->value = NULL;
    e->sub = NULL;
    e->from_request = 0;
}

void
dimension_expire(dimension_t *d, time_t before)
{
    size_t  i;

    for (i = 0; i < d->n_slots; i++) {
        if (d->slots[i].value == NULL) {
            continue;
        }

        if (d->slots[i].last_seen < before) {
            dimension_entry_free(d, &d->slots[i]);

        } else if (d->slots[i].sub) {
            dimension_expire(d->slots[i].sub, before);
        }
    }

    /* open addressing needs its probe chains rebuilt after removals */
    dimension_rehash(d, d->n_slots);
}

size_t
dimension_size(const dimension_t *d)
{
    return d->used;
}

size_t
dimension_from_request(const dimension_t *d)
{
    return d->from_request;
}

static int
dimension_rehash(dimension_t *d, size_t n_slots)
{
    dimension_entry_t  *old = d->slots, *e;
    size_t              old_n = d->n_slots, i;

    d->slots = calloc(n_slots, sizeof(dimension_entry_t));
    if (d->slots == NULL) {
        d->slots = old;
        return -1;
    }

    d->last = NULL;
    d->n_slots = n_slots;

    for (i = 0; i < old_n; i++) {
        if (old[i].value) {
            e = dimension_find(d, old[i].value, old[i].hash);
            *e = old[i];
        }
    }

    free(old);
    return 0;
}

static dimension_entry_t *
dimension_find(dimension_t *d, const char *value, uint64_t hash)
{
    size_t  i, mask = d->n_slots - 1;

    for (i = hash & mask; d->slots[i].value; i = (i + 1) & mask) {
        if (d->slots[i].hash == hash && strcmp(d->slots[i].value, value) == 0)
        {
            return &d->slots[i];
        }
    }

    return &d->slots[i];
}


dimension_map_t *
dimension_map_new(long max_keys, long cap)
{
    dimension_map_t  *m;

    m = calloc(1, sizeof(dimension_map_t));
    if (m == NULL) {
        return NULL;
    }

    m->keys = dimension_new(max_keys);
    if (m->keys == NULL) {
        free(m);
        return NULL;
    }

    m->values.cap = cap;
    m->values.share = cap;
    return m;
}

void
dimension_map_free(dimension_map_t *m)
{
    if (m) {
        dimension_free(m->keys);
        free(m);
    }
}

void
dimension_map_set_caps(dimension_map_t *m, dimension_caps_t keys,
    dimension_caps_t values)
{
    dimension_set_caps(m->keys, keys);
    m->values = values;
}

const char *
dimension_map_admit(dimension_map_t *m, const char *key, int key_from_request,
    const char *value, int from_request, time_t now, int *key_overflowed,
    int *overflowed)
{
    dimension_entry_t  *e;

    e = dimension_entry(m->keys, key, key_from_request, now);
    if (e == NULL) {
        *key_overflowed = 1;
        return LABEL_OVERFLOW;
    }

    if (e->sub == NULL) {
        e->sub = dimension_new(m->values.cap);
        if (e->sub == NULL) {
            *overflowed = 1;
            return LABEL_OVERFLOW;
        }
    }

    e->sub->caps = m->values;       /* a reload may have changed them */
    return dimension_admit(e->sub, value, from_request, now, overflowed);
}

void
dimension_map_expire(dimension_map_t *m, time_t before)
{
    dimension_expire(m->keys, before);
}

size_t
dimension_map_size(const dimension_map_t *m, const char *key)
{
    dimension_entry_t  *e;

    e = dimension_find(m->keys, key, hash_bytes(key, strlen(key), 0x51));
    return e->sub ? e->sub->used : 0;
}
