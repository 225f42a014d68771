/*
 * Per-tenant usage from the store: what each (tenant, service, route)
 * consumed since the last collection, as differences of the store's
 * counters and duration histograms.  Differences telescope, so the rows of
 * successive collections add up exactly to what the store counted; a series
 * that expired and came back (a new creation number) counts from zero.
 */

#ifndef OBS_USAGE_H
#define OBS_USAGE_H

#include <stdint.h>

#include "store.h"

#define USAGE_MAX_BUCKETS  64        /* as CONFIG_MAX_BUCKETS */

typedef struct {
    const char    *tenant;
    const char    *service;
    const char    *route;
    uint64_t       requests;
    uint64_t       errors;          /* 5xx */
    uint64_t       client_errors;   /* 4xx */
    uint64_t       bytes_in;        /* request bodies */
    uint64_t       bytes_out;       /* response bodies */
    double         duration_sum;    /* seconds */
    uint64_t       duration_count;
    const double  *bounds;          /* upper bounds of buckets[0..n_bounds) */
    int            n_bounds;
    uint64_t       buckets[USAGE_MAX_BUCKETS + 1];  /* not cumulative; the
                                                       last is +Inf */
} usage_row_t;

typedef void (*usage_row_pt)(const usage_row_t *row, void *data);

typedef struct usage  usage_t;

/* Creates a tracker that has seen nothing yet. */
usage_t *usage_new(void);

/* Frees the tracker. */
void usage_free(usage_t *u);

/*
 * Calls row() for each (tenant, service, route) whose usage changed since
 * the last call (the first call: since the store began).  Returns -1 if
 * memory ran out (then some usage is counted in a later call).
 */
int usage_collect(usage_t *u, store_t *store, usage_row_pt row, void *data);

#endif
