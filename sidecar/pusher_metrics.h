/* The pushers' self-metrics (obs_remote_write_*, obs_clickhouse_*) on
   /metrics.  Apart from remote_write.h and clickhouse.h because config.h
   includes those and expo.h includes config.h. */

#ifndef OBS_PUSHER_METRICS_H
#define OBS_PUSHER_METRICS_H

#include "expo.h"

/* A metrics source (see metrics_add_source); data is the remote_write_t. */
void remote_write_metrics(expo_writer_t *w, void *data);

/* A metrics source (see metrics_add_source); data is the clickhouse_t. */
void clickhouse_metrics(expo_writer_t *w, void *data);

#endif
