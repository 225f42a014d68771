/*
 * What a metric or label may be called: the grammar, and the names the
 * gateway's own families (proto/obs/v1/families.def) and Prometheus keep for
 * themselves.  One rule for "nginx -t" (obs_metric) and for the sidecar,
 * which checks again what arrives, since a datagram may come from another
 * gateway or be forged.  Plain C: the module links it too.
 */

#ifndef OBS_METRIC_NAMES_H
#define OBS_METRIC_NAMES_H

#include <stddef.h>

/* The longest business metric name, label name or label value, and value
   text (obs_metric). */
#define METRIC_NAME_MAX   128
#define METRIC_LABEL_MAX  64
#define METRIC_VALUE_MAX  64

typedef enum {
    METRIC_NAME_OK = 0,
    METRIC_NAME_GRAMMAR,        /* not [a-zA-Z_][a-zA-Z0-9_]*, or too long */
    METRIC_NAME_PIPELINE,       /* "obs_": the pipeline's own metrics */
    METRIC_NAME_GATEWAY,        /* one of families.def, or a part of one */
    METRIC_NAME_COUNTER_SUFFIX, /* a counter not ending in "_total" */
    METRIC_NAME_GAUGE_SUFFIX    /* a gauge ending in a part of another type */
} metric_name_check_t;

/*
 * Whether s is [a-zA-Z_][a-zA-Z0-9_]*: Prometheus's grammar less the colon
 * that recording rules keep for themselves.
 */
int metric_name_grammar(const unsigned char *s, size_t len);

/*
 * Whether name may be a business metric of that type (counter or gauge):
 * the first rule it breaks.  *detail (when not NULL) is then the gateway's
 * family it collides with, as exposed ("http_server_requests_total"), or
 * the gauge's refused suffix.  Counters are compared without "_total"
 * (OpenMetrics names the family so); a histogram's or gauge's name also
 * reserves every name that continues it with "_" (_bucket, _sum, ...).
 */
metric_name_check_t metric_name_check(const unsigned char *name, size_t len,
    int counter, const char **detail);

typedef enum {
    METRIC_LABEL_OK = 0,
    METRIC_LABEL_GRAMMAR,       /* grammar, length, or a leading "__" */
    METRIC_LABEL_RESERVED       /* one the gateway or Prometheus sets */
} metric_label_check_t;

/* Whether name may be a business metric's label name. */
metric_label_check_t metric_label_check(const unsigned char *name,
    size_t len);

#endif
