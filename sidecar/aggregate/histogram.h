/*
 * Histograms kept two ways at once: classic cumulative buckets with
 * configured bounds, and a Prometheus native (sparse exponential,
 * schema 3) histogram, plus one exemplar per classic bucket.
 */

#ifndef OBS_HISTOGRAM_H
#define OBS_HISTOGRAM_H

#include <stdint.h>

#define HISTOGRAM_SCHEMA          3
#define HISTOGRAM_ZERO_THRESHOLD  2.938735877055719e-39     /* 2^-128 */
#define HISTOGRAM_MAX_NATIVE      320   /* 40 octaves: 1 us to 10^6 s */

typedef struct {
    uint8_t   trace_id[16];
    uint8_t   span_id[8];
    double    value;
    double    timestamp;        /* unix seconds */
} exemplar_t;

typedef struct {
    const double  *bounds;      /* upper bounds, increasing, +Inf implied */
    int            n_bounds;

    uint64_t       count;
    double         sum;
    uint64_t       zero_count;
    int32_t        native_first;    /* index of native[0] */
    uint32_t       native_len;
    uint32_t      *native;          /* counts per native bucket */
    exemplar_t    *exemplars;       /* n_bounds + 1, allocated on first use */
    uint64_t       buckets[];       /* n_bounds + 1, not cumulative */
} histogram_t;

/* Allocates an empty histogram over bounds (which must outlive it). */
histogram_t *histogram_new(const double *bounds, int n_bounds);

/* Frees a histogram. */
void histogram_free(histogram_t *h);

/*
 * Records one observation; with trace ids, it becomes the exemplar of its
 * classic bucket.  Returns -1 only when memory ran out (the observation is
 * then counted in the classic buckets alone).
 */
int histogram_observe(histogram_t *h, double v, const uint8_t *trace_id,
    const uint8_t *span_id, double now);

/* Returns the native bucket index of v > zero threshold for schema 3. */
int32_t histogram_native_index(double v);

/* Returns the upper bound of native bucket index i for schema 3. */
double histogram_native_upper(int32_t i);

#endif
