/*
 * Exposition formats: Prometheus text 0.0.4, OpenMetrics 1.0 (with
 * exemplars) and the delimited protobuf format (with native histograms).
 * One writer interface serves all three, so each metric is described once.
 */

#ifndef OBS_EXPO_H
#define OBS_EXPO_H

#include "buf.h"
#include "config.h"
#include "histogram.h"

typedef enum { EXPO_TEXT = 0, EXPO_OPENMETRICS, EXPO_PROTOBUF,
               EXPO_SERIES, EXPO_VISIT } expo_format_t;

typedef enum {
    EXPO_COUNTER, EXPO_GAUGE, EXPO_HISTOGRAM, EXPO_INFO
} expo_type_t;

/*
 * EXPO_SERIES hands each sample to a callback instead of writing it: name is
 * the full sample name (with _total, _bucket, _sum or _count), le the
 * bucket's bound as /metrics prints it, or NULL.
 */
typedef void (*expo_series_pt)(void *data, const char *name,
    const char *const *names, const char *const *values, int n,
    const char *le, double value);

/*
 * EXPO_VISIT hands each family, sample and histogram to a visitor as they
 * are (a histogram whole, with its bounds, buckets and exemplars), with
 * the store's creation number of the series (0 for series of no store:
 * the sidecar's own, business metrics): OTLP metrics.
 */
typedef struct {
    void  (*family)(void *data, const char *name, const char *help,
                    const char *unit, expo_type_t type);
    void  (*sample)(void *data, const char *const *names,
                    const char *const *values, int n, double value,
                    uint32_t born);
    void  (*histogram)(void *data, const char *const *names,
                       const char *const *values, int n,
                       const histogram_t *h, uint32_t born);
    void  (*family_end)(void *data);
} expo_visitor_t;

typedef struct {
    expo_format_t   format;
    expo_series_pt  series;         /* EXPO_SERIES */
    void           *series_data;    /* EXPO_SERIES and EXPO_VISIT */
    const expo_visitor_t  *visitor; /* EXPO_VISIT */
    uint32_t        born;           /* the current series' (metrics.c) */
    buf_t          *out;
    buf_t           family;         /* protobuf: the family's metrics */
    buf_t           labels;         /* text: one sample's escaped labels */
    buf_t           head;           /* text: what a histogram's bucket
                                       lines share, up to le=" */
    const char     *name;           /* family base name */
    const char     *help;
    expo_type_t     type;
    const double   *le_bounds;      /* bounds whose le strings are cached */
    int             le_n;
    char            le[CONFIG_MAX_BUCKETS][32];
    size_t          le_len[CONFIG_MAX_BUCKETS];
} expo_writer_t;

/* Picks the format an Accept header prefers (text when in doubt). */
expo_format_t expo_negotiate(const char *accept);

/* The Content-Type of a format. */
const char *expo_content_type(expo_format_t format);

/* Starts writing in format to out. */
void expo_begin(expo_writer_t *w, expo_format_t format, buf_t *out);

/* Starts handing every sample to series(data, ...) (EXPO_SERIES). */
void expo_begin_series(expo_writer_t *w, expo_series_pt series, void *data);

/* Starts handing every family, sample and histogram to v (EXPO_VISIT). */
void expo_begin_visit(expo_writer_t *w, const expo_visitor_t *v,
    void *data);

/* Starts a family; name is the base name (counters: without _total). */
void expo_family(expo_writer_t *w, const char *name, const char *help,
    const char *unit, expo_type_t type);

/* Writes a counter, gauge or info sample of the current family. */
void expo_sample(expo_writer_t *w, const char *const *names,
    const char *const *values, int n, double value);

/* Writes a histogram sample of the current family. */
void expo_histogram(expo_writer_t *w, const char *const *names,
    const char *const *values, int n, const histogram_t *h);

/* Ends the current family. */
void expo_family_end(expo_writer_t *w);

/* Ends the exposition (OpenMetrics' # EOF) and frees the writer's memory. */
void expo_end(expo_writer_t *w);

#endif
