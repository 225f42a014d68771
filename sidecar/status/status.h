/*
 * The status page's data: every STATUS_INTERVAL seconds a thread of its
 * own walks the store one shard at a time (as a scrape does) and sums it
 * into a snapshot per service and route, per tenant and per business
 * metric, with the pipeline's counters; rates, error ratios and quantiles
 * are worked out then, over the configured window.  /status.json is
 * rendered from the newest snapshot (top N, sorted, filtered, paged), so a
 * page that polls never walks the store and ingest never waits for it.  A
 * ring of small per-snapshot summaries gives the last 15 minutes'
 * sparklines.
 */

#ifndef OBS_STATUS_H
#define OBS_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "store.h"

#define STATUS_INTERVAL     5       /* seconds between snapshots */
#define STATUS_RING         180     /* snapshots of history: 15 minutes */
#define STATUS_SPARK_ROWS   256     /* routes kept in each summary */
#define STATUS_MAX_LIMIT    100     /* rows of one table in one answer */
#define STATUS_JSON_MAX     (2 * 1024 * 1024)   /* bytes of one answer */

struct active_requests;
struct business;
struct delivery;
struct exporter;

typedef struct status  status_t;

/* What the snapshots read; any but store may be NULL. */
typedef struct {
    store_t           *store;
    struct business   *business;
    struct delivery   *delivery;
    struct exporter   *exporter;
    struct active_requests  *active;    /* requests in flight */
} status_sources_t;

/* Looks up a query argument of the request (NULL when absent). */
typedef const char *(*status_arg_pt)(void *ctx, const char *name);

/* Creates the status page's state (no thread yet); NULL without memory. */
status_t *status_new(const status_sources_t *src, const config_t *cfg);

/* Starts the snapshot thread; -1 when it cannot. */
int status_start(status_t *st);

/* Takes what a reload may change (objectives, window, links, buckets). */
void status_configure(status_t *st, const config_t *cfg);

/*
 * Takes one snapshot as of now (unix seconds) and makes it the newest;
 * the thread calls it every STATUS_INTERVAL.  -1 when memory ran out (the
 * previous snapshot stays).
 */
int status_take(status_t *st, double now);

/*
 * Renders /status.json from the newest snapshot as the arguments ask into
 * out: 0, or -1 with err set (a bad argument: 400) or out->failed (no
 * memory).  The answer is at most STATUS_JSON_MAX bytes.
 */
int status_render(status_t *st, status_arg_pt arg, void *ctx, buf_t *out,
    char *err, size_t errlen);

/* Stops the thread (if started): no source is read after it returns;
   /status.json still renders the last snapshot. */
void status_stop(status_t *st);

/* Stops the thread (if started) and frees everything. */
void status_free(status_t *st);

/*
 * Prometheus' histogram_quantile on classic buckets: counts are per bucket
 * (not cumulative), n_bounds + 1 of them, the last one +Inf.  NaN when
 * there are no observations.
 */
double status_quantile(double q, const double *bounds, int n_bounds,
    const uint64_t *counts);

/*
 * The share of observations at or under le, interpolated linearly inside
 * the bucket that holds it (exact when le is a bound); NaN when empty.
 */
double status_share_under(double le, const double *bounds, int n_bounds,
    const uint64_t *counts);

/* A page's embedded file (/status, /status.js, /status.css) by path, with
   its Content-Type; NULL when there is none. */
const char *status_asset(const char *path, size_t *len,
    const char **content_type);

#endif
