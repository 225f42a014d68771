/* The exporters' and destinations' self-metrics on /metrics. */

#ifndef OBS_EXPORTER_METRICS_H
#define OBS_EXPORTER_METRICS_H

#include "expo.h"

/* A metrics source (see metrics_add_source); data is the exporter_t:
   obs_exporter_shed and obs_exporter_backlog_datagrams. */
void exporter_metrics(expo_writer_t *w, void *data);

/* A metrics source; data is the delivery_t: the obs_exporter_* families
   of every destination (exporter="<name>") and, for destinations that had
   them before the delivery layer, their obs_<name>_* families. */
void delivery_metrics(expo_writer_t *w, void *data);

#endif
