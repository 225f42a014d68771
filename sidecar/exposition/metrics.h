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

/* Hands every sample /metrics would show to series (see expo.h). */
void metrics_collect(store_t *store, expo_series_pt series, void *data);

/* Hands every family, sample and histogram /metrics would show to v, as
   they are (see expo.h). */
void metrics_visit_all(store_t *store, const expo_visitor_t *v, void *data);

#endif
