/*
 * Prometheus remote-write 1.0 from the sidecar: every interval a snapshot of
 * what /metrics serves becomes WriteRequests (protobuf, snappy block
 * compression) handed to the delivery layer: queued in memory (bounded:
 * the oldest go first, counted), delivered in order, retried with backoff
 * on 429, 5xx and connection errors, never on other answers.  Per tenant, each
 * tenant's series go with X-Scope-OrgID: <tenant> and the gateway's own
 * series with the operator tenant's.
 */

#ifndef OBS_REMOTE_WRITE_H
#define OBS_REMOTE_WRITE_H

#include "delivery.h"
#include "exporter.h"
#include "snapshot.h"
#include "store.h"

typedef struct {
    destination_config_t    sink;          /* url, auth, TLS, headers, timeout,
                                       queue_bytes */
    double           interval;      /* seconds between snapshots: 15 */
    tenant_header_t  tenant_header; /* none, fixed (org_id), per_tenant */
    char            *org_id;        /* fixed: every series' tenant */
    char            *operator_tenant;   /* per_tenant: the gateway's own */
    long             max_samples;   /* per request: 2000 */
} remote_write_config_t;

typedef struct remote_write  remote_write_t;

/* Fills cfg with the defaults. */
void remote_write_config_defaults(remote_write_config_t *cfg);

/* Frees what cfg holds. */
void remote_write_config_free(remote_write_config_t *cfg);

/* Starts the remote-write thread over store (NULL, and no error, when no URL
   is configured); err says why not. */
remote_write_t *remote_write_start(const remote_write_config_t *cfg,
    store_t *store, delivery_t *d, char *err, size_t errlen);

/* What the delivery layer is told of the remote-write destination. */
void remote_write_destination(const remote_write_config_t *cfg,
    destination_spec_t *spec);

/* Hands over a last snapshot, then stops the thread and frees everything
   but its destination (delivery_stop delivers what is left). */
void remote_write_stop(remote_write_t *rw);

/* Appends samples idx[0..n) of a snapshot to out as a snappy-compressed
   WriteRequest; returns -1 if out of memory. */
int remote_write_encode(const snapshot_t *s, const size_t *idx, size_t n,
    buf_t *out);

#endif
