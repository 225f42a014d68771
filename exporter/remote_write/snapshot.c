/* Samples copied out of the store.  See snapshot.h. */

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "metrics.h"
#include "snapshot.h"

static void snapshot_sample(void *data, const char *name,
    const char *const *names, const char *const *values, int n,
    const char *le, double value);
static int snapshot_grow(void **items, size_t *cap, size_t need,
    size_t size);
static uint32_t snapshot_intern(snapshot_t *s, snap_cached_t *c,
    const char *str);

int
snapshot_take(snapshot_t *s, store_t *store)
{
    struct timeval  tv;

    buf_reset(&s->arena);
    memset(s->cache, 0, sizeof(s->cache));
    s->n_samples = 0;
    s->n_labels = 0;
    s->failed = 0;

    gettimeofday(&tv, NULL);
    s->timestamp_ms = (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;

    metrics_collect(store, snapshot_sample, s);

    if (s->arena.failed) {
        s->failed = 1;
    }
    return s->failed ? -1 : 0;
}

const char *
snapshot_str(const snapshot_t *s, uint32_t offset)
{
    return s->arena.data + offset;
}

void
snapshot_free(snapshot_t *s)
{
    buf_free(&s->arena);
    free(s->samples);
    free(s->labels);
    memset(s, 0, sizeof(*s));
}

/* One sample: its labels are sorted by name while still pointers. */

static void
snapshot_sample(void *data, const char *name, const char *const *names,
    const char *const *values, int n, const char *le, double value)
{
    snapshot_t     *s = data;
    const char     *ln[SNAP_MAX_LABELS], *lv[SNAP_MAX_LABELS], *t;
    snap_sample_t  *sample;
    snap_label_t   *label;
    int             k = 0, i, j;

    ln[k] = "__name__";
    lv[k++] = name;
    for (i = 0; i < n && k < SNAP_MAX_LABELS - 1; i++) {
        if (values[i][0] != '\0') {
            ln[k] = names[i];
            lv[k++] = values[i];
        }
    }
    if (le) {
        ln[k] = "le";
        lv[k++] = le;
    }

    for (i = 1; i < k; i++) {
        for (j = i; j > 0 && strcmp(ln[j - 1], ln[j]) > 0; j--) {
            t = ln[j]; ln[j] = ln[j - 1]; ln[j - 1] = t;
            t = lv[j]; lv[j] = lv[j - 1]; lv[j - 1] = t;
        }
    }

    if (snapshot_grow((void **) &s->samples, &s->cap_samples,
                      s->n_samples + 1, sizeof(snap_sample_t)) != 0
        || snapshot_grow((void **) &s->labels, &s->cap_labels,
                         s->n_labels + (size_t) k, sizeof(snap_label_t)) != 0)
    {
        s->failed = 1;
        return;
    }

    sample = &s->samples[s->n_samples++];
    sample->first_label = s->n_labels;
    sample->n_labels = (uint32_t) k;
    sample->tenant = -1;
    sample->value = value;

    for (i = 0; i < k; i++) {
        label = &s->labels[s->n_labels++];
        label->name = snapshot_intern(s, &s->cache[2 * i], ln[i]);
        label->value = snapshot_intern(s, &s->cache[2 * i + 1], lv[i]);
        if (strcmp(ln[i], "tenant") == 0) {
            sample->tenant = label->value;
        }
    }
}

static int
snapshot_grow(void **items, size_t *cap, size_t need, size_t size)
{
    size_t   n;
    void    *grown;

    if (need <= *cap) {
        return 0;
    }

    n = *cap ? *cap * 2 : 1024;
    while (n < need) {
        n *= 2;
    }

    grown = realloc(*items, n * size);
    if (grown == NULL) {
        return -1;
    }

    *items = grown;
    *cap = n;
    return 0;
}

/*
 * Copies a string into the arena and returns its offset; the string the
 * previous sample had in the same place is reused when it is the same
 * (a histogram's lines repeat their labels, families their label names).
 */

static uint32_t
snapshot_intern(snapshot_t *s, snap_cached_t *c, const char *str)
{
    size_t  off = s->arena.len, len = strlen(str) + 1;

    if (c->len == len && c->offset + len <= s->arena.len
        && memcmp(s->arena.data + c->offset, str, len) == 0)
    {
        return c->offset;
    }

    buf_append(&s->arena, str, len);
    c->offset = (uint32_t) off;
    c->len = len;
    return (uint32_t) off;
}
