/* The exporters' self-metrics (obs_exporter_*) on /metrics. */

#ifndef OBS_EXPORTER_METRICS_H
#define OBS_EXPORTER_METRICS_H

#include "expo.h"

/* A metrics source (see metrics_add_source); data is the exporter_t. */
void exporter_metrics(expo_writer_t *w, void *data);

#endif
