/*
 * The aggregation store: every metric series the sidecar serves, in 64
 * independently locked shards so that a scrape, which walks one shard at a
 * time, never stalls ingest for long and never sees a half-updated series.
 */

#ifndef OBS_STORE_H
#define OBS_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "histogram.h"

#define STORE_MAX_LABELS  5

/*
 * The gateway's families (proto/obs/v1/families.def): FAMILY_<ID>, the
 * store's first (FAMILY_COUNT of them), then those kept beside it, up to
 * FAMILY_ALL.
 */
typedef enum {
#define OBS_FAMILY(ID, name, type, unit, stored, otel_name, otel_unit, help)  \
    FAMILY_##ID,
#include "obs/v1/families.def"
    FAMILY_ALL
} family_id_t;

enum {
    FAMILY_COUNT = 0
#define OBS_FAMILY(ID, name, type, unit, stored, otel_name, otel_unit, help)  \
    + (stored)
#include "obs/v1/families.def"
};

/*
 * Where each label of a family stands in its labels[]: LABEL_<ID>_<label>,
 * and LABELS_<ID> of them.  A label renamed or moved in families.def breaks
 * the build of whoever fills or reads it by name.
 */
#define OBS_FAMILY(ID, name, type, unit, stored, otel_name, otel_unit, help)  \
    enum {
#define OBS_LABEL(ID, label)  LABEL_##ID##_##label,
#define OBS_FAMILY_END(ID)    LABELS_##ID };
#include "obs/v1/families.def"

typedef enum { METRIC_COUNTER, METRIC_HISTOGRAM, METRIC_GAUGE } metric_type_t;

typedef struct {
    const char     *name;       /* counters: without the _total suffix */
    const char     *help;
    const char     *unit;       /* OpenMetrics unit, or NULL */
    metric_type_t   type;
    int             n_labels;
    const char     *labels[STORE_MAX_LABELS];
    const char     *otel_name;  /* OpenTelemetry's name for it, or NULL */
    const char     *otel_unit;  /* its UCUM unit, or NULL */
} family_t;

/* Every family of families.def, by family_id_t (the store's come first). */
extern const family_t  store_families[FAMILY_ALL];

/* A label the gateway sets, and the OpenTelemetry attribute it becomes. */
typedef struct {
    const char     *label;
    const char     *otel;       /* the attribute's key */
    int             otel_int;   /* 1: an integer attribute */
} family_label_t;

/* The family of a /metrics name (a counter's without _total), or NULL. */
const family_t *family_by_name(const char *name);

/* What families.def says of a label name, or NULL for another label. */
const family_label_t *family_label(const char *label);

typedef struct series {
    struct series  *next;       /* hash chain */
    struct series  *family_next;    /* the shard's series of its family,
                                       oldest first */
    uint64_t        hash;
    time_t          updated;
    uint8_t         family;
    uint8_t         from_request;   /* counted in the store's share */
    uint16_t        key_len;
    uint32_t        born;       /* creation number: a series that expired
                                   and came back is told from the old one */
    union {
        uint64_t      counter;
        histogram_t  *histogram;
    } v;
    char            key[];      /* label values, each NUL-terminated */
} series_t;

typedef struct store  store_t;

/*
 * A label value with its length (without the NUL): a record's values are
 * measured once for all the families that share them.
 */
typedef struct {
    const char  *value;
    size_t       len;
} store_label_t;

/* A label value, measured. */
static inline store_label_t
store_label(const char *value)
{
    return (store_label_t) { value, strlen(value) };
}

/* What store_add and store_observe report. */
enum { STORE_OK = 0, STORE_FULL = 1, STORE_NOMEM = -1 };

/*
 * Creates an empty store of at most max_series series, which series whose
 * labels hold a value made from requests may all take.
 */
store_t *store_new(long max_series);

/* Frees the store and every series. */
void store_free(store_t *s);

/* Changes the series cap (for SIGHUP); existing series stay. */
void store_set_max_series(store_t *s, long max_series);

/*
 * Changes how many of the series may have labels made from requests
 * (for SIGHUP; existing series stay), so that clients can never take the
 * room of the series the configuration's labels make.
 */
void store_set_share(store_t *s, long max_from_request);

/*
 * Adds delta to a counter series.  A new series is created only while
 * more than reserve slots are free under the cap, and, for one whose labels
 * hold a value made from requests (from_request), while such series are
 * fewer than the share (else STORE_FULL): the store never holds more than
 * max_series series.
 */
int store_add(store_t *s, family_id_t family, const char **labels,
    uint64_t delta, time_t now, long reserve, int from_request);

/* Records v in a histogram series (see histogram_observe); as store_add. */
int store_observe(store_t *s, family_id_t family, const char **labels,
    const double *bounds, int n_bounds, double v, const uint8_t *trace_id,
    const uint8_t *span_id, double now_f, time_t now, long reserve,
    int from_request);

/* store_add with the label values measured (store_label). */
int store_add_measured(store_t *s, family_id_t family,
    const store_label_t *labels, uint64_t delta, time_t now, long reserve,
    int from_request);

/* store_observe with the label values measured (store_label). */
int store_observe_measured(store_t *s, family_id_t family,
    const store_label_t *labels, const double *bounds, int n_bounds,
    double v, const uint8_t *trace_id, const uint8_t *span_id, double now_f,
    time_t now, long reserve, int from_request);

/* Removes series not updated since before; returns how many. */
size_t store_expire(store_t *s, time_t before);

/* Number of series. */
long store_size(const store_t *s);

/* Called for each series of a family, with its label values, under the
   series' shard lock. */
typedef void (*store_visit_pt)(const family_t *family, const series_t *se,
    const char **labels, void *data);

/* Visits every series of a family, one shard at a time, each shard's
   oldest first. */
void store_visit(store_t *s, family_id_t family, store_visit_pt visit,
    void *data);

#endif
