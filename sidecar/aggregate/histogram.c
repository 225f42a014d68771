/* Classic + native histograms.  See histogram.h. */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "histogram.h"

/* 2^(j/8) for j = 0..8: the schema-3 boundaries within one octave */
static const double  octave[9] = {
    1.0, 1.0905077326652577, 1.189207115002721, 1.2968395546510096,
    1.4142135623730951, 1.5422108254079407, 1.6817928305074290,
    1.8340080864093424, 2.0
};

static int histogram_grow_native(histogram_t *h, int32_t index);

histogram_t *
histogram_new(const double *bounds, int n_bounds)
{
    histogram_t  *h;

    h = calloc(1, sizeof(histogram_t)
                  + sizeof(uint64_t) * (size_t) (n_bounds + 1));
    if (h == NULL) {
        return NULL;
    }

    h->bounds = bounds;
    h->n_bounds = n_bounds;
    return h;
}

void
histogram_free(histogram_t *h)
{
    if (h) {
        free(h->native);
        free(h->exemplars);
        free(h);
    }
}

int32_t
histogram_native_index(double v)
{
    int     exp, j;
    double  frac;

    /* v = frac * 2^exp with frac in [0.5, 1): v = (2 frac) * 2^(exp - 1) */
    frac = frexp(v, &exp) * 2;

    for (j = 0; j < 8 && frac > octave[j]; j++) {
        /* smallest j with 2 frac <= 2^(j/8) */
    }

    return (int32_t) ((exp - 1) * 8 + j);
}

double
histogram_native_upper(int32_t i)
{
    int32_t  octave_index = i >= 0 ? i / 8 : -((-i + 7) / 8);
    int32_t  j = i - octave_index * 8;

    return ldexp(octave[j], octave_index);
}

int
histogram_observe(histogram_t *h, double v, const uint8_t *trace_id,
    const uint8_t *span_id, double now)
{
    int          b, rc = 0;
    int32_t      index;
    exemplar_t  *e;

    for (b = 0; b < h->n_bounds && v > h->bounds[b]; b++) {
        /* first bucket whose upper bound holds v */
    }

    h->buckets[b]++;
    h->count++;
    h->sum += v;

    if (v <= HISTOGRAM_ZERO_THRESHOLD) {
        h->zero_count++;

    } else {
        index = histogram_native_index(v);

        if (histogram_grow_native(h, index) != 0) {

            /* out of range or out of memory: the nearest bucket kept */
            rc = -1;
            if (h->native_len == 0) {
                h->zero_count++;
                goto exemplar;
            }
            if (index < h->native_first) {
                index = h->native_first;
            } else {
                index = h->native_first + (int32_t) h->native_len - 1;
            }
        }

        h->native[index - h->native_first]++;
    }

exemplar:

    if (trace_id == NULL) {
        return rc;
    }

    if (h->exemplars == NULL) {
        h->exemplars = calloc((size_t) h->n_bounds + 1, sizeof(exemplar_t));
        if (h->exemplars == NULL) {
            return -1;
        }
    }

    e = &h->exemplars[b];
    memcpy(e->trace_id, trace_id, 16);
    memcpy(e->span_id, span_id, 8);
    e->value = v;
    e->timestamp = now;

    return rc;
}

/* Makes native[] cover index; keeps at most HISTOGRAM_MAX_NATIVE buckets. */

static int
histogram_grow_native(histogram_t *h, int32_t index)
{
    int32_t    first, last;
    uint32_t   len, *p;

    if (h->native_len
        && index >= h->native_first
        && index < h->native_first + (int32_t) h->native_len)
    {
        return 0;
    }

    if (h->native_len == 0) {
        first = last = index;

    } else {
        first = index < h->native_first ? index : h->native_first;
        last = h->native_first + (int32_t) h->native_len - 1;
        last = index > last ? index : last;
    }

    len = (uint32_t) (last - first + 1);
    if (len > HISTOGRAM_MAX_NATIVE) {
        return -1;
    }

    p = calloc(len, sizeof(uint32_t));
    if (p == NULL) {
        return -1;
    }

    if (h->native_len) {
        memcpy(p + (h->native_first - first), h->native,
               h->native_len * sizeof(uint32_t));
    }

    free(h->native);
    h->native = p;
    h->native_first = first;
    h->native_len = len;
    return 0;
}
