/*
 * Per-tenant usage and cost in ClickHouse: every interval (a minute) the
 * usage tracker's rows, one per tenant, service and route, each with the
 * price of its cost class, become one JSONEachRow INSERT over ClickHouse's
 * HTTP interface.  Batches are spooled to disk before they are sent (so a
 * ClickHouse that is down, or a sidecar that stops, loses nothing within
 * the spool's bound), sent oldest first, retried with backoff on 5xx and
 * connection errors.  A row is written once: its key (minute, gateway, run,
 * tenant, service, route) is the ReplacingMergeTree's, so a batch sent
 * twice collapses into one.
 */

#ifndef OBS_CLICKHOUSE_H
#define OBS_CLICKHOUSE_H

#include "delivery.h"
#include "exporter.h"
#include "store.h"
#include "usage.h"

#define CLICKHOUSE_MAX_CLASSES  64

/* A cost class: the first whose patterns (fnmatch; NULL: any) match a row's
   service and route prices it. */
typedef struct {
    char    *name;
    char    *service;
    char    *route;
    double   per_1k_requests;
    double   per_gb;                /* request + response bytes, 10^9 */
} cost_class_t;

typedef struct {
    destination_config_t  sink;            /* url, auth, TLS, headers, timeout,
                                       queue_bytes, spool_dir, spool_bytes */
    char          *table;           /* "obs.usage_minute" */
    char          *gateway;         /* this gateway's name in the rows */
    long           interval;        /* seconds a row covers: 60 */
    cost_class_t   classes[CLICKHOUSE_MAX_CLASSES];
    int            n_classes;
    cost_class_t   default_class;   /* "default", free unless configured */
} clickhouse_config_t;

typedef struct clickhouse  clickhouse_t;

/* Fills cfg with the defaults. */
void clickhouse_config_defaults(clickhouse_config_t *cfg);

/* Frees what cfg holds. */
void clickhouse_config_free(clickhouse_config_t *cfg);

/* The cost class of a service and route. */
const cost_class_t *clickhouse_cost_class(const clickhouse_config_t *cfg,
    const char *service, const char *route);

/* Starts the usage thread over store (NULL, and no error, when no URL is
   configured); err says why not. */
clickhouse_t *clickhouse_start(const clickhouse_config_t *cfg,
    store_t *store, delivery_t *d, char *err, size_t errlen);

/* What the delivery layer is told of the ClickHouse destination (url:
   the INSERT URL). */
void clickhouse_destination(const clickhouse_config_t *cfg, const char *url,
    destination_spec_t *spec);

/* Hands over the current interval's partial rows, stops the thread and
   frees everything but its destination (delivery_stop delivers or spools
   what is left). */
void clickhouse_stop(clickhouse_t *ch);

#endif
