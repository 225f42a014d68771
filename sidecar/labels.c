/* Label sanitising and bounded dimensions.  See labels.h. */

#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "labels.h"

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

static size_t utf8_sequence(const uint8_t *p, size_t left);
static int dimension_rehash(dimension_t *d, size_t n_slots);
static dimension_entry_t *dimension_find(dimension_t *d, const char *value,
    uint64_t hash);

size_t
label_sanitize(const uint8_t *raw, size_t len, char *out)
{
    size_t  i = 0, n = 0, seq;

    while (i < len) {
        seq = raw[i] ? utf8_sequence(raw + i, len - i) : 0;

        if (seq == 0) {
            if (n + 3 > LABEL_MAX_LEN) {
                break;
            }
            memcpy(out + n, "\xef\xbf\xbd", 3);
            n += 3;
            i++;
            continue;
        }

        if (n + seq > LABEL_MAX_LEN) {
            break;
        }

        memcpy(out + n, raw + i, seq);
        n += seq;
        i += seq;
    }

    out[n] = '\0';
    return n;
}

/* Length of the valid UTF-8 sequence at p, or 0 when it is not valid. */

static size_t
utf8_sequence(const uint8_t *p, size_t left)
{
    size_t  need, i;

    if (p[0] < 0x80) {
        return 1;
    }

    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        need = 2;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        need = 3;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        need = 4;
    } else {
        return 0;
    }

    if (left < need) {
        return 0;
    }

    for (i = 1; i < need; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
    }

    /* overlong forms, surrogates and code points past U+10FFFF */
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0)
        || (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
    {
        return 0;
    }

    return need;
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
