/*
 * Business metrics (obs_metric in nginx): series of their own beside the
 * store's RED families, exposed through the same writer, so /metrics in
 * every format and remote-write carry them.  A name and its label follow
 * the rules nginx -t applies (common/metric_names.c), checked again here.
 */

#ifndef OBS_BUSINESS_METRICS_H
#define OBS_BUSINESS_METRICS_H

#include <time.h>

#include "expo.h"
#include "obs/v1/record.pb-c.h"

/* Why an observation was not counted (obs_business_rejected_total). */
typedef enum {
    BUSINESS_NOT_A_NUMBER = 0,
    BUSINESS_NOT_FINITE,
    BUSINESS_NEGATIVE,          /* a counter may not go down */
    BUSINESS_INVALID_METRIC,    /* bad name, type or label name */
    BUSINESS_CONFLICT,          /* a name seen before with another type */
    BUSINESS_TOO_MANY_METRICS,
    BUSINESS_REJECT_REASONS
} business_reject_t;

#define BUSINESS_MAX_FAMILIES  128
#define BUSINESS_MAX_VALUES    64       /* label values per metric */

typedef struct business  business_t;

/* Creates an empty set of at most max_series business series. */
business_t *business_new(long max_series);

/* Frees it. */
void business_free(business_t *b);

/* Changes the series cap (SIGHUP); existing series stay. */
void business_set_max_series(business_t *b, long max_series);

/*
 * Changes how many of the series may have labels made from requests
 * (SIGHUP; existing series stay): at first, all of them.
 */
void business_set_share(business_t *b, long max_from_request);

/*
 * Counts a record's observations under its (already bounded) service,
 * route and tenant, from_request when one of them a request made (its new
 * series then take the share); what cannot be counted is counted by
 * reason.
 */
void business_record(business_t *b, const Obs__V1__Record *r,
    const char *service, const char *route, const char *tenant,
    int from_request, time_t now);

/* Forgets series not updated since before. */
void business_expire(business_t *b, time_t before);

/* Writes every business family and obs_business_rejected_total (a
   metrics source, see metrics_add_source). */
void business_metrics(expo_writer_t *w, void *data);

/* The count of rejected observations by reason (tests). */
unsigned long long business_rejected(business_t *b, business_reject_t why);

/*
 * Parses an observed value: a plain decimal number (sign, digits, point,
 * exponent), finite, not negative for a counter; else the reason.
 */
int business_parse(const uint8_t *text, size_t len, int counter,
    double *value, business_reject_t *why);

#endif
