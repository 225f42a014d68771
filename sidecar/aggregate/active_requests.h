/*
 * Requests in flight (http_server_active_requests): nginx counts them in a
 * shared memory zone and sends the whole table as a snapshot in a header;
 * the newest snapshot of each nginx (zone) and trust is kept here and the
 * sum over them exposed, beside the store's families, through the same
 * writer, so /metrics in every format and remote-write carry it.
 */

#ifndef OBS_ACTIVE_REQUESTS_H
#define OBS_ACTIVE_REQUESTS_H

#include <time.h>

#include "expo.h"
#include "obs/v1/record.pb-c.h"

#define ACTIVE_MAX_ZONES     64       /* nginx instances reporting */
#define ACTIVE_MAX_ENTRIES   1024     /* in-flight entries, all zones */
#define ACTIVE_MAX_SNAPSHOT  256      /* entries read from one snapshot */

/*
 * The most requests one nginx can have in flight under one key: more would
 * take terabytes of request pools, so a snapshot saying so is a lie (or
 * nginx's count went below 0) and is dropped, counted as malformed.
 */
#define ACTIVE_MAX_IN_FLIGHT 0xffffffffULL

typedef struct active_requests  active_requests_t;

/* Creates an empty table. */
active_requests_t *active_requests_new(void);

/* Frees it. */
void active_requests_free(active_requests_t *a);

/*
 * Takes a header's snapshot of requests in flight when it is the newest of
 * its nginx (zone) and trust (trusted: the datagram had a valid tag; a
 * plain one never changes a trusted zone); default_service names entries
 * without a service.  A snapshot with a count above ACTIVE_MAX_IN_FLIGHT
 * changes nothing and is counted in
 * obs_decode_errors_total{reason="malformed"}; sums saturate.
 */
void active_requests_take(active_requests_t *a, const Obs__V1__BatchHeader *h,
    const char *default_service, int trusted, time_t now);

/* Forgets entries at zero, and zones silent, since before. */
void active_requests_expire(active_requests_t *a, time_t before);

/* Writes http_server_active_requests and obs_active_requests_overflow (a
   metrics source, see metrics_add_source). */
void active_requests_metrics(expo_writer_t *w, void *data);

#endif
