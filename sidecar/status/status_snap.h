/*
 * The status page's snapshots, shared by the file that takes them
 * (status.c) and the one that renders them (status_json.c).  A snapshot is
 * never changed once published: readers hold a reference.
 */

#ifndef OBS_STATUS_SNAP_H
#define OBS_STATUS_SNAP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "delivery.h"
#include "exporter.h"
#include "stats.h"
#include "status.h"

/* Memory that lives as long as its snapshot, freed at once. */
typedef struct arena_chunk {
    struct arena_chunk  *next;
    size_t               used, size;
    char                 data[];
} arena_chunk_t;

/* Every row of a table starts with its key. */
typedef struct {
    const char  *key;           /* the label values, each NUL-terminated */
    uint32_t     len;
    uint64_t     hash;
} skey_t;

typedef struct {
    void        *rows;
    size_t       size;          /* of one row */
    size_t       n, cap;
    uint32_t    *slots;         /* row index + 1; 0: empty */
    size_t       n_slots;       /* a power of two */
} stab_t;

/* A service and route, a tenant, or everything (total). */
typedef struct {
    skey_t       k;
    const char  *service;       /* NULL for a tenant */
    const char  *route;
    const char  *tenant;        /* NULL for a route */
    uint64_t     requests, e5xx, e4xx;      /* since the sidecar started */
    uint64_t    *dur;           /* request duration, per bucket */
    uint64_t    *up;            /* upstream duration, per bucket */
    uint64_t     in_flight;
    int          has_exemplar;
    uint8_t      ex_trace[16];
    double       ex_value, ex_time;

    /* over the window */
    uint64_t     w_requests, w_5xx, w_4xx;
    double       rate, ratio_5xx, ratio_4xx, p50, p95, p99, good, up_p95;
} srow_t;

/* A business metric's series summed over tenants (gauges: the highest). */
typedef struct {
    skey_t       k;
    const char  *metric, *service, *route, *label;
    int          counter;
    double       value;
    uint32_t     series;
    double       rate;          /* counters, over the window */
} brow_t;

typedef struct {
    char                 name[32];
    char                 mode[8];
    destination_stats_t  st;
} sdest_t;

typedef struct {
    uint64_t  datagrams, records, lost, business_rejected;
    uint64_t  dropped[MODULE_DROP_REASONS];
    uint64_t  decode[DECODE_REASONS];
    uint64_t  overflow[OVERFLOW_KINDS];
    int       has_exporter;
    uint64_t  shed[SIGNALS];
    uint64_t  backlog;
    int       n_dest;
    sdest_t   dest[DELIVERY_MAX_DESTINATIONS];
    double    records_rate, dropped_rate;
} spipe_t;

typedef struct snap {
    atomic_int       refs;
    double           time, base_time, started;
    int              n_dur, n_up;
    double           dur_bounds[CONFIG_MAX_BUCKETS];
    double           up_bounds[CONFIG_MAX_BUCKETS];
    stab_t           routes, tenants, business;
    srow_t           total;
    spipe_t          pipe;
    long             series, max_series;
    double           availability, latency_objective, latency_threshold;
    char            *grafana_url, *trace_url;
    arena_chunk_t   *arena;
} snap_t;

/* One snapshot's summary in the ring: enough for the sparklines. */
typedef struct {
    uint64_t  hash;
    uint64_t  requests, e5xx;
    float     p95;              /* of the interval before; NaN: none */
} spark_row_t;

typedef struct {
    double        time;
    uint64_t      requests, e5xx, records, dropped;
    float         p95;
    uint32_t      n_rows;
    spark_row_t  *rows;         /* sorted by hash */
} spark_t;

struct status {
    status_sources_t  src;
    pthread_mutex_t   lock;         /* current, checkpoints, ring, cfg */
    pthread_mutex_t   take_lock;    /* one snapshot taken at a time */
    pthread_cond_t    wake;
    pthread_t         thread;
    int               running, stopping;
    double            started;
    snap_t           *current;
    snap_t           *checkpoint[2];    /* [1] newer; window bases */
    spark_t           ring[STATUS_RING];
    int               ring_head, ring_len;
    status_config_t   cfg;              /* strings owned */
    int               n_dur, n_up;
    double            dur_bounds[CONFIG_MAX_BUCKETS];
    double            up_bounds[CONFIG_MAX_BUCKETS];
    long              max_series;
};

/* Finds the row of key in t; NULL when absent. */
void *stab_find(const stab_t *t, const char *key, uint32_t len,
    uint64_t hash);

/* Takes a reference to the newest snapshot (NULL before the first). */
snap_t *status_hold(status_t *st);

/* Drops a reference. */
void status_release(snap_t *s);

#endif
