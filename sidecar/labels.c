/* Label sanitising and bounded dimensions.  See labels.h. */

#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "labels.h"
#include "text.h"

const char  label_overflow[] = "__overflow__";

typedef struct {
    uint64_t  hash;
    time_t    last_seen;
    char     *value;            /* NULL: empty slot */
} dimension_entry_t;

struct dimension {
    dimension_entry_t  *slots;
    size_t              n_slots;    /* power of two, at least 2 * cap */
    size_t              used;
    long                cap;
};

static int dimension_rehash(dimension_t *d, size_t n_slots);
static dimension_entry_t *dimension_find(dimension_t *d, const char *value,
    uint64_t hash);

size_t
label_sanitize(const uint8_t *raw, size_t len, char *out)
{
    return text_utf8(raw, len, out, LABEL_MAX_LEN + 1);
}


dimension_t *
dimension_new(long cap)
{
    dimension_t  *d;

    d = calloc(1, sizeof(dimension_t));
    if (d == NULL) {
        return NULL;
    }

    d->cap = cap;
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
        free(d->slots[i].value);
    }
    free(d->slots);
    free(d);
}

void
dimension_set_cap(dimension_t *d, long cap)
{
    d->cap = cap;
}

const char *
dimension_admit(dimension_t *d, const char *value, time_t now,
    int *overflowed)
{
    uint64_t            hash;
    dimension_entry_t  *e;

    hash = hash_bytes(value, strlen(value), 0x51);
    e = dimension_find(d, value, hash);

    if (e->value) {
        e->last_seen = now;
        return e->value;
    }

    if ((long) d->used >= d->cap) {
        *overflowed = 1;
        return LABEL_OVERFLOW;
    }

    if ((d->used + 1) * 2 > d->n_slots) {
        if (dimension_rehash(d, d->n_slots * 2) != 0) {
            *overflowed = 1;
            return LABEL_OVERFLOW;
        }
        e = dimension_find(d, value, hash);
    }

    e->value = strdup(value);
    if (e->value == NULL) {
        *overflowed = 1;
        return LABEL_OVERFLOW;
    }

    e->hash = hash;
    e->last_seen = now;
    d->used++;
    return e->value;
}

void
dimension_expire(dimension_t *d, time_t before)
{
    size_t  i;

    for (i = 0; i < d->n_slots; i++) {
        if (d->slots[i].value && d->slots[i].last_seen < before) {
            free(d->slots[i].value);
            d->slots[i].value = NULL;
            d->used--;
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
