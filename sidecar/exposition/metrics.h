/* Everything /metrics shows: the store's families and the sidecar's own. */

#ifndef OBS_METRICS_H
#define OBS_METRICS_H

#include "buf.h"
#include "expo.h"
#include "store.h"

/* Another part of the sidecar that exposes metrics (exporters). */
typedef void (*metrics_source_pt)(expo_writer_t *w, void *data);

/* Registers a source of extra self-metrics; returns -1 when full. */
int metrics_add_source(metrics_source_pt source, void *data);

/* Renders every metric in format into out; returns -1 if out of memory. */
int metrics_render(store_t *store, expo_format_t format, buf_t *out);

/*
 * metrics_render gzipped as it is written (what a scrape asking for gzip
 * gets): the text passes through window, METRICS_GZIP_WINDOW bytes, so a
 * large scrape is never held whole, only its gzip, appended to zipped
 * (window's content is dropped).  Returns -1 if out of memory.
 */
int metrics_render_gzip(store_t *store, expo_format_t format, buf_t *window,
    buf_t *zipped);

/* The text a gzipped scrape holds at once: small enough to stay in the
   core's cache between rendering and compressing it. */
#define METRICS_GZIP_WINDOW  (256 * 1024)

/* Hands every sample /metrics would show to series (see expo.h). */
void metrics_collect(store_t *store, expo_series_pt series, void *data);

/* Hands every family, sample and histogram /metrics would show to v, as
   they are (see expo.h). */
void metrics_visit_all(store_t *store, const expo_visitor_t *v, void *data);

#endif
