/* Turns decoded records into RED metric series in the store. */

#ifndef OBS_AGGREGATE_H
#define OBS_AGGREGATE_H

#include <time.h>

#include "config.h"
#include "store.h"
#include "obs/v1/record.pb-c.h"

typedef struct aggregator  aggregator_t;

/* Creates an aggregator writing into store, with cfg's buckets and caps. */
aggregator_t *aggregator_new(store_t *store, const config_t *cfg);

/* Frees the aggregator (not the store). */
void aggregator_free(aggregator_t *a);

/* Applies a reloaded configuration; existing series keep their buckets. */
int aggregator_configure(aggregator_t *a, const config_t *cfg);

/*
 * Counts one request record in every family it belongs to; returns which
 * of its service and tenant the caps counted as "__overflow__"
 * (LABEL_OVER_* of common/label_rules.h), for the exporters' streams.
 */
unsigned aggregator_record(aggregator_t *a, const Obs__V1__Record *r, time_t now,
    double now_f);

/*
 * Takes a header's snapshot of requests in flight (active_requests.c);
 * trusted: it came with a valid tag.
 */
void aggregator_active(aggregator_t *a, const Obs__V1__BatchHeader *h,
    int trusted, time_t now);

/* The business metrics (obs_metric), for metrics_add_source. */
struct business *aggregator_business(aggregator_t *a);

/* Requests in flight, for metrics_add_source. */
struct active_requests *aggregator_active_requests(aggregator_t *a);

/* Expires series and label values not seen within the configured TTL. */
void aggregator_expire(aggregator_t *a, time_t now);

#endif
