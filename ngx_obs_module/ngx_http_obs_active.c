/*
 * Requests in flight per service and route (http_server_active_requests).
 *
 * The counts live in a shared memory zone ("obs_active"), which a reload
 * keeps (same name and size), so the old workers still serving requests
 * count in the same table as the new ones until they are done.  A request
 * is counted when its route is set (again, if a rewrite moves it to another
 * route before its content starts) and uncounted in its pool's cleanup,
 * which runs once on every path (internal redirects, error pages, HTTP/0.9,
 * aborted clients): one atomic add each way.  The key is found by a
 * per-worker cache of each location's last key when the service is
 * constant, else by hashing it into the table without the lock.
 *
 * Each process counts in a row of its own (a count per key), claimed when
 * it starts: the row of a process that exited without finishing its
 * requests (a crash, a quick exit) is zeroed by the next process to start
 * and by the others' periodic checks (ngx_http_obs_active_reap()), while a
 * running process, such as an old worker still finishing requests after a
 * reload, keeps its own.  Rows are also what keeps workers from writing to
 * the same cache lines.
 *
 * Keys come and go: one nothing is counted in that no request used for
 * NGX_HTTP_OBS_ACTIVE_IDLE seconds is let go when a new key finds no room
 * (ngx_http_obs_active_sweep()).  Keys made from requests (a route from the
 * URI, obs_route or obs_service_name with variables) may hold only
 * NGX_HTTP_OBS_ACTIVE_FROM_REQUEST of the NGX_HTTP_OBS_ACTIVE_SLOTS keys, so
 * clients cannot take the table from the routes of the configuration.  A
 * request that finds no room (or a key too long) counts in the last slot,
 * service and route "__overflow__".
 *
 * Each worker that changed a count sends, within its flush interval, a
 * snapshot of every key with its counts summed over the rows, zeros
 * included (a datagram of its own, see ngx_http_obs_send_active()); the
 * zone's random id and the monotonic clock at the snapshot let the sidecar
 * keep the newest per nginx.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_emit.h"
#include "obs/v1/record.pb-c.h"


#define NGX_HTTP_OBS_ACTIVE_SLOTS        128    /* a power of two */
#define NGX_HTTP_OBS_ACTIVE_FROM_REQUEST 64     /* keys made from requests */
#define NGX_HTTP_OBS_ACTIVE_IDLE         10     /* s unused before a key goes */
#define NGX_HTTP_OBS_ACTIVE_ROWS         256    /* processes counting at once */
#define NGX_HTTP_OBS_ACTIVE_REAP         1000   /* ms between checks for rows
                                                   of exited processes */
#define NGX_HTTP_OBS_ACTIVE_RETRIES      4      /* lookups of a key that
                                                   went meanwhile */
#define NGX_HTTP_OBS_ACTIVE_SERVICE_MAX  64
#define NGX_HTTP_OBS_ACTIVE_ROUTE_MAX    192
#define NGX_HTTP_OBS_ACTIVE_KEY_MAX      (NGX_HTTP_OBS_ACTIVE_SERVICE_MAX    \
                                          + NGX_HTTP_OBS_ACTIVE_ROUTE_MAX)
#define NGX_HTTP_OBS_ACTIVE_CACHE        64     /* a power of two */
#define NGX_HTTP_OBS_ACTIVE_CACHED_ROUTE 64
#define NGX_HTTP_OBS_ACTIVE_HEARTBEAT    30000  /* ms, in flight: see below */

/* a snapshot of requests in flight: 129 entries of at most 256 bytes */
#define NGX_HTTP_OBS_MAX_DATAGRAM_ACTIVE  (40 * 1024)


/*
 * A key.  Written only under the zone's lock; gen is odd while it is, and
 * grows each time the slot takes or lets go of a key, so that readers
 * without the lock can tell that what they read still holds (0: the slot
 * never held a key, where a probe ends).
 */

typedef struct {
    ngx_atomic_t             gen;
    ngx_atomic_t             used;          /* ngx_time() of a request */
    uint32_t                 hash;
    uint16_t                 service_len;
    uint16_t                 route_len;
    u_char                   live;          /* 0: free for another key */
    u_char                   from_request;
    u_char                   key[NGX_HTTP_OBS_ACTIVE_KEY_MAX];
} ngx_http_obs_active_slot_t;


typedef struct {
    ngx_atomic_t             pid;           /* its process; 0: free */
    ngx_atomic_t             count[NGX_HTTP_OBS_ACTIVE_SLOTS + 1];
} ngx_http_obs_active_row_t;


typedef struct {
    uint64_t                 id;            /* made with the zone */
    ngx_atomic_t             overflow;      /* requests with no room */

    /* under the lock (read without it to spare a full table the lock) */
    ngx_atomic_t             keys;          /* live keys */
    ngx_atomic_t             from_request;  /* of them, made from requests */
    ngx_atomic_t             swept;         /* ngx_time() of the last sweep */
    ngx_atomic_t             rows;          /* row[0 .. rows - 1] are zeroed */

    ngx_http_obs_active_slot_t  slot[NGX_HTTP_OBS_ACTIVE_SLOTS + 1];

    /* processes beyond NGX_HTTP_OBS_ACTIVE_ROWS share this one */
    ngx_http_obs_active_row_t   shared;

    /* zeroed when first claimed: a zone never touches most of them */
    ngx_http_obs_active_row_t   row[NGX_HTTP_OBS_ACTIVE_ROWS];
} ngx_http_obs_active_shm_t;


/*
 * A slot's gen, read before its key is: an acquire load (no fence on x86),
 * or a load and a full barrier.
 */

#if (NGX_HAVE_GCC_ATOMIC)
#define ngx_http_obs_active_gen(slot)                                        \
    __atomic_load_n(&(slot)->gen, __ATOMIC_ACQUIRE)
#else
#define ngx_http_obs_active_gen(slot)                                        \
    ngx_http_obs_active_gen_fenced(&(slot)->gen)
#endif


/*
 * A worker's memory of the last key each location counted under: the
 * route's text is compared (cheaper than hashing it and probing the zone),
 * so routes made per request (obs_route_auto) hit too.
 */
typedef struct {
    void                    *conf;
    const u_char            *service;
    size_t                   service_len;
    size_t                   route_len;
    u_char                   route[NGX_HTTP_OBS_ACTIVE_CACHED_ROUTE];
    ngx_http_obs_active_slot_t  *slot;      /* NULL: to be looked up */
    ngx_atomic_t            *count;         /* in this process's row */
    ngx_atomic_uint_t        gen;           /* of the slot when looked up */
} ngx_http_obs_active_cached_t;


static ngx_int_t ngx_http_obs_active_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_atomic_t *ngx_http_obs_active_count(ngx_http_obs_ctx_t *ctx,
    ngx_str_t *service, ngx_uint_t from_request,
    ngx_http_obs_active_cached_t *c, ngx_http_obs_active_slot_t **found);
static ngx_http_obs_active_slot_t *ngx_http_obs_active_find(
    ngx_str_t *service, ngx_str_t *route, ngx_uint_t from_request,
    ngx_atomic_uint_t *gen);
static ngx_http_obs_active_slot_t *ngx_http_obs_active_insert(
    ngx_str_t *service, ngx_str_t *route, uint32_t hash,
    ngx_uint_t from_request, ngx_atomic_uint_t *gen);
static ngx_uint_t ngx_http_obs_active_is(ngx_http_obs_active_slot_t *slot,
    ngx_str_t *service, ngx_str_t *route, uint32_t hash);
static void ngx_http_obs_active_sweep(time_t now);
static ngx_uint_t ngx_http_obs_active_counted(ngx_uint_t i);
static ngx_atomic_uint_t ngx_http_obs_active_reap(void);
static void ngx_http_obs_active_changed(void);
#if !(NGX_HAVE_GCC_ATOMIC)
static ngx_atomic_uint_t ngx_http_obs_active_gen_fenced(ngx_atomic_t *gen);
#endif


static ngx_str_t  ngx_http_obs_active_name = ngx_string("obs_active");

static ngx_http_obs_active_shm_t     *ngx_http_obs_active_sh;
static ngx_http_obs_active_row_t     *ngx_http_obs_active_row;
void                                 *ngx_http_obs_active_table;
static ngx_slab_pool_t               *ngx_http_obs_active_pool;
static ngx_uint_t                     ngx_http_obs_active_dirty;
static ngx_msec_t                     ngx_http_obs_active_sent_at;
static ngx_msec_t                     ngx_http_obs_active_reaped_at;
static ngx_http_obs_active_cached_t   ngx_http_obs_active_cache
                                          [NGX_HTTP_OBS_ACTIVE_CACHE];

/* a snapshot's entries, built when a datagram is made */
static Obs__V1__ActiveRequests    ngx_http_obs_active_entry
                                      [NGX_HTTP_OBS_ACTIVE_SLOTS + 1];
static Obs__V1__ActiveRequests   *ngx_http_obs_active_entries
                                      [NGX_HTTP_OBS_ACTIVE_SLOTS + 1];
static u_char                     ngx_http_obs_active_keys
                                      [NGX_HTTP_OBS_ACTIVE_SLOTS + 1]
                                      [NGX_HTTP_OBS_ACTIVE_KEY_MAX];


/* The zone, made once per configuration while obs_sidecar is set. */

ngx_int_t
ngx_http_obs_active_zone(ngx_conf_t *cf, ngx_http_obs_main_conf_t *omcf)
{
    size_t           size;
    ngx_shm_zone_t  *zone;

    size = ngx_align(sizeof(ngx_http_obs_active_shm_t), ngx_pagesize)
           + 8 * ngx_pagesize;

    zone = ngx_shared_memory_add(cf, &ngx_http_obs_active_name, size,
                                 &ngx_http_obs_module);
    if (zone == NULL) {
        return NGX_ERROR;
    }

    zone->init = ngx_http_obs_active_init_zone;
    zone->data = omcf;
    zone->noreuse = 0;

    omcf->active_zone = zone;

    return NGX_OK;
}


static ngx_int_t
ngx_http_obs_active_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t             *shpool;
    ngx_http_obs_active_shm_t   *sh;
    ngx_http_obs_active_slot_t  *overflow;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (data || shm_zone->shm.exists) {
        return NGX_OK;                      /* a reload keeps the counts */
    }

    sh = ngx_slab_alloc(shpool, sizeof(ngx_http_obs_active_shm_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(sh, offsetof(ngx_http_obs_active_shm_t, row));

    sh->id = ((uint64_t) ngx_random() << 32) ^ (uint64_t) ngx_random()
             ^ ((uint64_t) ngx_time() << 20) ^ (uint64_t) ngx_pid;

    overflow = &sh->slot[NGX_HTTP_OBS_ACTIVE_SLOTS];

    /* the sidecar's label past a cap (common/label_rules.h) */

    ngx_memcpy(overflow->key, LABEL_OVERFLOW_TEXT LABEL_OVERFLOW_TEXT,
               2 * (sizeof(LABEL_OVERFLOW_TEXT) - 1));
    overflow->service_len = sizeof(LABEL_OVERFLOW_TEXT) - 1;
    overflow->route_len = sizeof(LABEL_OVERFLOW_TEXT) - 1;
    overflow->live = 1;
    overflow->gen = 2;

    shpool->data = sh;

    return NGX_OK;
}


/* Points the process at the cycle's zone (workers, and a stopping master). */

void
ngx_http_obs_active_init(ngx_http_obs_main_conf_t *omcf)
{
    ngx_shm_zone_t  *zone;

    zone = omcf ? omcf->active_zone : NULL;

    ngx_http_obs_active_sh = NULL;
    ngx_http_obs_active_row = NULL;
    ngx_http_obs_active_table = NULL;

    if (zone == NULL) {
        return;
    }

    ngx_http_obs_active_pool = (ngx_slab_pool_t *) zone->shm.addr;
    ngx_http_obs_active_sh = ngx_http_obs_active_pool->data;
}


/*
 * A worker starts counting: it gives back what exited processes left
 * counted, then claims a row of its own.
 */

void
ngx_http_obs_active_start(void)
{
    ngx_uint_t                   r;
    ngx_atomic_uint_t            reaped;
    ngx_http_obs_active_shm_t   *sh;
    ngx_http_obs_active_row_t   *row;

    sh = ngx_http_obs_active_sh;

    if (sh == NULL
        || (ngx_process != NGX_PROCESS_WORKER
            && ngx_process != NGX_PROCESS_SINGLE))
    {
        return;
    }

    reaped = ngx_http_obs_active_reap();

    ngx_shmtx_lock(&ngx_http_obs_active_pool->mutex);

    for (r = 0; r < NGX_HTTP_OBS_ACTIVE_ROWS; r++) {
        if (sh->row[r].pid == 0) {
            break;
        }
    }

    if (r < NGX_HTTP_OBS_ACTIVE_ROWS) {
        row = &sh->row[r];
        ngx_memzero((void *) row->count, sizeof(row->count));
        row->pid = ngx_pid;

        if (r >= sh->rows) {
            sh->rows = r + 1;
        }

    } else {
        row = &sh->shared;
    }

    ngx_shmtx_unlock(&ngx_http_obs_active_pool->mutex);

    if (row == &sh->shared) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "obs: more than %d processes count requests in "
                      "flight; this one shares a row, whose counts are "
                      "not given back if it dies",
                      NGX_HTTP_OBS_ACTIVE_ROWS);
    }

    ngx_http_obs_active_row = row;
    ngx_http_obs_active_table = row;
    ngx_http_obs_active_reaped_at = ngx_current_msec;

    if (reaped) {
        ngx_http_obs_active_changed();      /* the sidecar learns it now */
    }
}


/*
 * Counts the request under its service and route, moving it when a
 * rewrite changed them (callers check ngx_http_obs_active_table first).
 */

void
ngx_http_obs_active_enter(ngx_http_request_t *r, ngx_http_obs_ctx_t *ctx)
{
    time_t                         now;
    ngx_str_t                      service;
    ngx_uint_t                     constant;
    ngx_atomic_t                  *count;
    ngx_http_obs_value_t          *sv;
    ngx_http_obs_loc_conf_t       *olcf;
    ngx_http_obs_active_slot_t    *slot;
    ngx_http_obs_active_cached_t  *c;

    olcf = ctx->route_conf ? ctx->route_conf
                           : ngx_http_get_module_loc_conf(r,
                                                         ngx_http_obs_module);
    sv = olcf->service;

    if (sv == NULL) {
        ngx_str_null(&service);
        constant = 1;

    } else if (sv->constant) {
        service = sv->cv.value;
        constant = 1;

    } else {
        if (ngx_http_obs_value(r, sv, &service) != NGX_OK) {
            ngx_str_null(&service);
        }

        constant = 0;
    }

    c = NULL;

    if (constant && ctx->route.len <= NGX_HTTP_OBS_ACTIVE_CACHED_ROUTE) {
        c = &ngx_http_obs_active_cache[((uintptr_t) olcf >> 4)
                                       & (NGX_HTTP_OBS_ACTIVE_CACHE - 1)];

        if (c->conf != olcf || c->service != service.data
            || c->service_len != service.len
            || c->route_len != ctx->route.len
            || ngx_memcmp(c->route, ctx->route.data, ctx->route.len) != 0)
        {
            c->conf = olcf;
            c->service = service.data;
            c->service_len = service.len;
            c->route_len = ctx->route.len;
            ngx_memcpy(c->route, ctx->route.data, ctx->route.len);
            c->slot = NULL;
        }
    }

    /*
     * The count is added before the key is checked to be still the one
     * looked up: a key let go meanwhile is looked up again (see
     * ngx_http_obs_active_sweep()).
     */

    if (c && c->slot) {
        slot = c->slot;
        count = c->count;

        if (count == ctx->active) {
            if (slot->gen == c->gen) {
                return;                     /* counted there already */
            }

        } else {
            (void) ngx_atomic_fetch_add(count, 1);

            if (slot->gen == c->gen) {
                goto counted;
            }

            (void) ngx_atomic_fetch_add(count, -1);
        }

        c->slot = NULL;
    }

    count = ngx_http_obs_active_count(ctx, &service,
                                      !constant || !ctx->route_stable, c,
                                      &slot);
    if (count == NULL) {
        return;                             /* counted there already */
    }

counted:

    if (ctx->active) {
        (void) ngx_atomic_fetch_add(ctx->active, -1);
    }

    ctx->active = count;

    now = ngx_time();

    if (slot->used != (ngx_atomic_uint_t) now) {
        slot->used = now;
    }

    if (slot == &ngx_http_obs_active_sh->slot[NGX_HTTP_OBS_ACTIVE_SLOTS]) {
        (void) ngx_atomic_fetch_add(&ngx_http_obs_active_sh->overflow, 1);
    }

    ngx_http_obs_active_changed();
}


/*
 * Looks the key up (and adds it) and counts the request under it; the
 * location's cache entry, if any, remembers where.  NULL: the request is
 * counted there already.
 */

static ngx_atomic_t *
ngx_http_obs_active_count(ngx_http_obs_ctx_t *ctx, ngx_str_t *service,
    ngx_uint_t from_request, ngx_http_obs_active_cached_t *c,
    ngx_http_obs_active_slot_t **found)
{
    ngx_uint_t                   tries;
    ngx_atomic_t                *count;
    ngx_atomic_uint_t            gen;
    ngx_http_obs_active_slot_t  *slot;

    for (tries = 0; /* void */; tries++) {

        if (tries < NGX_HTTP_OBS_ACTIVE_RETRIES) {
            slot = ngx_http_obs_active_find(service, &ctx->route,
                                            from_request, &gen);

        } else {
            slot = &ngx_http_obs_active_sh->slot[NGX_HTTP_OBS_ACTIVE_SLOTS];
            gen = slot->gen;                /* never changes */
        }

        count = &ngx_http_obs_active_row->count
                                       [slot - ngx_http_obs_active_sh->slot];

        if (count == ctx->active) {
            if (slot->gen == gen) {
                break;
            }

            continue;
        }

        (void) ngx_atomic_fetch_add(count, 1);

        if (slot->gen == gen) {
            break;
        }

        (void) ngx_atomic_fetch_add(count, -1);
    }

    if (c) {
        c->slot = slot;
        c->gen = gen;
        c->count = count;
    }

    *found = slot;

    return (count == ctx->active) ? NULL : count;
}


/*
 * The request is done: its pool's cleanup gives its count back (callers
 * check ctx->active first).
 */

void
ngx_http_obs_active_leave(ngx_http_obs_ctx_t *ctx)
{
    (void) ngx_atomic_fetch_add(ctx->active, -1);
    ctx->active = NULL;

    ngx_http_obs_active_changed();
}


/*
 * Tells whether this worker owes the sidecar a snapshot: it changed a count
 * since its last one, or it has requests in flight and its last one is
 * NGX_HTTP_OBS_ACTIVE_HEARTBEAT old.  The sidecar takes an nginx silent for
 * its series TTL as gone (killed): without the repeat, a long request on
 * an otherwise idle nginx would fall to 0 there.
 */

ngx_uint_t
ngx_http_obs_active_pending(void)
{
    if (ngx_http_obs_active_row == NULL) {
        return 0;
    }

    return ngx_http_obs_active_dirty
           || (ngx_current_msec - ngx_http_obs_active_sent_at
                  >= NGX_HTTP_OBS_ACTIVE_HEARTBEAT
               && ngx_http_obs_active_busy());
}


/*
 * Tells whether this worker has a request in flight: its flush timer then
 * keeps going (each process repeats the snapshot for its own).
 */

ngx_uint_t
ngx_http_obs_active_busy(void)
{
    ngx_uint_t  i;

    if (ngx_http_obs_active_row == NULL) {
        return 0;
    }

    for (i = 0; i <= NGX_HTTP_OBS_ACTIVE_SLOTS; i++) {
        if (ngx_http_obs_active_row->count[i]) {
            return 1;
        }
    }

    return 0;
}


/* The snapshot has been sent. */

void
ngx_http_obs_active_sent(void)
{
    ngx_http_obs_active_dirty = 0;
    ngx_http_obs_active_sent_at = ngx_current_msec;
}


/*
 * Adds the snapshot to a header: every key of the table, so that routes
 * with nothing in flight show 0, with the sum of every process's count;
 * with closed, none: nginx stops and nothing is in flight any more.
 */

ngx_uint_t
ngx_http_obs_active_snapshot(void *header, ngx_uint_t closed)
{
    size_t                       len;
    ngx_uint_t                   i, n, r;
    ngx_atomic_uint_t            g, sum[NGX_HTTP_OBS_ACTIVE_SLOTS + 1];
    Obs__V1__BatchHeader        *h = header;
    Obs__V1__ActiveRequests     *a;
    ngx_http_obs_active_shm_t   *sh;
    ngx_http_obs_active_row_t   *row;
    ngx_http_obs_active_slot_t  *slot;

    sh = ngx_http_obs_active_sh;

    if (sh == NULL) {
        return 0;
    }

    h->active_zone = sh->id;
    h->active_closed = closed ? 1 : 0;
    h->active = ngx_http_obs_active_entries;
    h->n_active = 0;

    if (closed) {
        h->active_version = ngx_http_obs_clock_us(CLOCK_MONOTONIC) * 1000;
        h->active_overflow = sh->overflow;
        return 1;
    }

    if (ngx_http_obs_active_row
        && ngx_current_msec - ngx_http_obs_active_reaped_at
           >= NGX_HTTP_OBS_ACTIVE_REAP)
    {
        ngx_http_obs_active_reaped_at = ngx_current_msec;
        (void) ngx_http_obs_active_reap();
    }

    /*
     * Under the lock no key changes, and the snapshots of the workers are
     * in the order of their clock readings.
     */

    ngx_shmtx_lock(&ngx_http_obs_active_pool->mutex);

    h->active_version = ngx_http_obs_clock_us(CLOCK_MONOTONIC) * 1000;
    h->active_overflow = sh->overflow;

    for (i = 0; i <= NGX_HTTP_OBS_ACTIVE_SLOTS; i++) {
        sum[i] = sh->shared.count[i];
    }

    for (r = 0; r < sh->rows; r++) {
        row = &sh->row[r];

        for (i = 0; i <= NGX_HTTP_OBS_ACTIVE_SLOTS; i++) {
            sum[i] += row->count[i];
        }
    }

    for (i = 0, n = 0; i <= NGX_HTTP_OBS_ACTIVE_SLOTS; i++) {
        slot = &sh->slot[i];
        g = slot->gen;

        if (g == 0 || (g & 1) || !slot->live) {
            continue;                       /* (odd: its writer died) */
        }

        /* copied: the key may go once the lock is released */

        len = slot->service_len + slot->route_len;
        ngx_memcpy(ngx_http_obs_active_keys[n], slot->key, len);

        a = &ngx_http_obs_active_entry[n];
        obs__v1__active_requests__init(a);

        a->service.data = ngx_http_obs_active_keys[n];
        a->service.len = slot->service_len;
        a->route.data = ngx_http_obs_active_keys[n] + slot->service_len;
        a->route.len = slot->route_len;
        a->count = sum[i];

        ngx_http_obs_active_entries[n++] = a;
    }

    ngx_shmtx_unlock(&ngx_http_obs_active_pool->mutex);

    h->n_active = n;

    return 1;
}


/*
 * Sends a snapshot of the requests in flight, a header alone in a datagram
 * of its own (up to ~35 KB, whatever buffer= is: it never waits in the
 * buffer); with closed, the one that says nginx stopped.
 */

ngx_int_t
ngx_http_obs_send_active(ngx_http_obs_emitter_t *e, ngx_uint_t closed)
{
    u_char                *p;
    size_t                 size;
    ngx_int_t              rc;
    Obs__V1__BatchHeader   h = OBS__V1__BATCH_HEADER__INIT;

    static u_char          out[NGX_HTTP_OBS_MAX_DATAGRAM_ACTIVE];

    if (!e->connected && ngx_http_obs_connect(e) != NGX_OK) {
        return NGX_AGAIN;
    }

    if (!ngx_http_obs_active_snapshot(&h, closed)) {
        return NGX_OK;
    }

    h.schema_version = OBS_SCHEMA_CURRENT;
    h.pid = (uint32_t) ngx_pid;
    h.worker_start_unix_nano = e->worker_start;
    h.sequence = e->sequence;
    h.send_time_unix_nano = ngx_http_obs_unix_nano();
    h.records_total = e->records_total;
    h.host.data = ngx_cycle->hostname.data;
    h.host.len = ngx_min(ngx_cycle->hostname.len, NGX_HTTP_OBS_HOST_MAX);

    size = obs__v1__batch_header__get_packed_size(&h);

    if (size + 8 > sizeof(out)) {
        return NGX_ERROR;                     /* cannot be: see the zone */
    }

    out[0] = NGX_HTTP_OBS_BATCH_HEADER_KEY;
    p = ngx_http_obs_write_varint(out + 1, size);
    obs__v1__batch_header__pack(&h, p);

    rc = ngx_http_obs_send(e, out, p + size - out, NULL, 0);

    if (rc != NGX_AGAIN) {
        e->sequence++;
    }

    if (rc == NGX_OK) {
        ngx_http_obs_active_sent();
    }

    return rc;
}


/*
 * Finds the slot of a key without the lock, or adds the key; *gen is the
 * slot's generation the key was read at (the caller checks it again after
 * counting).
 */

static ngx_http_obs_active_slot_t *
ngx_http_obs_active_find(ngx_str_t *service, ngx_str_t *route,
    ngx_uint_t from_request, ngx_atomic_uint_t *gen)
{
    uint32_t                     hash;
    ngx_uint_t                   i, n, written;
    ngx_atomic_uint_t            g;
    ngx_http_obs_active_shm_t   *sh;
    ngx_http_obs_active_slot_t  *slot;

    sh = ngx_http_obs_active_sh;

    if (service->len > NGX_HTTP_OBS_ACTIVE_SERVICE_MAX
        || route->len > NGX_HTTP_OBS_ACTIVE_ROUTE_MAX)
    {
        goto overflow;
    }

    /* services are few: their length spreads them, the compare tells */

    hash = ngx_http_obs_hash(route->data, route->len)
           ^ ((uint32_t) service->len * 0x9e3779b1);

    written = 0;

    for (n = 0, i = hash; n < NGX_HTTP_OBS_ACTIVE_SLOTS; n++, i++) {
        slot = &sh->slot[i & (NGX_HTTP_OBS_ACTIVE_SLOTS - 1)];
        g = ngx_http_obs_active_gen(slot);

        if (g == 0) {
            break;                          /* the probe ends here */
        }

        if (g & 1) {
            written = 1;                    /* perhaps this key: see below */
            continue;
        }

        if (ngx_http_obs_active_is(slot, service, route, hash)) {
            *gen = g;
            return slot;
        }
    }

    /*
     * A full table waits for its next sweep without the lock; but a key
     * being written may be this one, found under the lock.
     */

    if (!written
        && (time_t) sh->swept == ngx_time()
        && (from_request ? sh->from_request >= NGX_HTTP_OBS_ACTIVE_FROM_REQUEST
                         : sh->keys >= NGX_HTTP_OBS_ACTIVE_SLOTS))
    {
        goto overflow;
    }

    slot = ngx_http_obs_active_insert(service, route, hash, from_request,
                                      gen);
    if (slot) {
        return slot;
    }

overflow:

    slot = &sh->slot[NGX_HTTP_OBS_ACTIVE_SLOTS];
    *gen = slot->gen;

    return slot;
}


/*
 * A new key, under the zone's lock: another worker may have added it
 * meanwhile.  It goes to the first free slot of its probe, after a sweep
 * when there is none or its kind has its share; NULL: no room.
 */

static ngx_http_obs_active_slot_t *
ngx_http_obs_active_insert(ngx_str_t *service, ngx_str_t *route,
    uint32_t hash, ngx_uint_t from_request, ngx_atomic_uint_t *gen)
{
    time_t                       now;
    ngx_uint_t                   i, n, room;
    ngx_atomic_uint_t            g;
    ngx_http_obs_active_shm_t   *sh;
    ngx_http_obs_active_slot_t  *slot, *spare;

    sh = ngx_http_obs_active_sh;
    now = ngx_time();

    ngx_shmtx_lock(&ngx_http_obs_active_pool->mutex);

again:

    spare = NULL;

    for (n = 0, i = hash; n < NGX_HTTP_OBS_ACTIVE_SLOTS; n++, i++) {
        slot = &sh->slot[i & (NGX_HTTP_OBS_ACTIVE_SLOTS - 1)];
        g = slot->gen;

        if (g == 0) {
            if (spare == NULL) {
                spare = slot;
            }

            break;
        }

        if (g & 1) {
            continue;                       /* its writer died: see sweep */
        }

        if (!slot->live) {
            if (spare == NULL) {
                spare = slot;
            }

            continue;
        }

        if (ngx_http_obs_active_is(slot, service, route, hash)) {
            *gen = g;
            goto done;
        }
    }

    room = (spare != NULL);

    if (from_request
        && sh->from_request >= NGX_HTTP_OBS_ACTIVE_FROM_REQUEST)
    {
        room = 0;
    }

    if (!room) {
        slot = NULL;

        if ((time_t) sh->swept != now) {
            ngx_http_obs_active_sweep(now);
            goto again;
        }

        goto done;
    }

    /* readers skip the slot while gen is odd, and check gen after */

    slot = spare;
    g = slot->gen;

    slot->gen = g + 1;
    ngx_memory_barrier();

    slot->hash = hash;
    slot->service_len = (uint16_t) service->len;
    slot->route_len = (uint16_t) route->len;
    ngx_memcpy(slot->key, service->data, service->len);
    ngx_memcpy(slot->key + service->len, route->data, route->len);
    slot->from_request = from_request ? 1 : 0;
    slot->used = now;
    slot->live = 1;

    ngx_memory_barrier();
    slot->gen = g + 2;

    *gen = g + 2;

    sh->keys++;
    sh->from_request += slot->from_request;

done:

    ngx_shmtx_unlock(&ngx_http_obs_active_pool->mutex);

    return slot;
}


/* Tells whether a slot holds the key (read without the lock: see gen). */

static ngx_uint_t
ngx_http_obs_active_is(ngx_http_obs_active_slot_t *slot, ngx_str_t *service,
    ngx_str_t *route, uint32_t hash)
{
    return slot->live
           && slot->hash == hash
           && slot->service_len == service->len
           && slot->route_len == route->len
           && ngx_memcmp(slot->key, service->data, service->len) == 0
           && ngx_memcmp(slot->key + service->len, route->data, route->len)
              == 0;
}


/*
 * Lets go of the keys that nothing is counted in and no request used for
 * NGX_HTTP_OBS_ACTIVE_IDLE seconds, and counts those kept (under the lock;
 * at most once a second).  Requests count without the lock: a key's gen
 * turns odd before its counts are read here, and a request reads gen
 * after adding its count, each after a full barrier, so that one of the
 * two sees the other: the key stays, or the request looks again.
 */

static void
ngx_http_obs_active_sweep(time_t now)
{
    ngx_uint_t                   i, keys, from_request;
    ngx_atomic_uint_t            g;
    ngx_http_obs_active_shm_t   *sh;
    ngx_http_obs_active_slot_t  *slot;

    sh = ngx_http_obs_active_sh;
    keys = 0;
    from_request = 0;

    for (i = 0; i < NGX_HTTP_OBS_ACTIVE_SLOTS; i++) {
        slot = &sh->slot[i];
        g = slot->gen;

        if (g == 0) {
            continue;
        }

        if (g & 1) {
            /* a process died writing it: a key with counts was live */
            slot->live = ngx_http_obs_active_counted(i) ? 1 : 0;
            ngx_memory_barrier();
            slot->gen = ++g;
        }

        if (!slot->live) {
            continue;
        }

        if (now - (time_t) slot->used >= NGX_HTTP_OBS_ACTIVE_IDLE
            && ngx_atomic_cmp_set(&slot->gen, g, g + 1))
        {
            if (!ngx_http_obs_active_counted(i)) {
                slot->live = 0;
                ngx_memory_barrier();
                slot->gen = g + 2;
                continue;
            }

            ngx_memory_barrier();
            slot->gen = g;                  /* in use after all */
        }

        keys++;
        from_request += slot->from_request;
    }

    sh->keys = keys;
    sh->from_request = from_request;
    sh->swept = now;
}


/* Tells whether any process counts a request under the key of slot i. */

static ngx_uint_t
ngx_http_obs_active_counted(ngx_uint_t i)
{
    ngx_uint_t                  r;
    ngx_http_obs_active_shm_t  *sh;

    sh = ngx_http_obs_active_sh;

    if (sh->shared.count[i]) {
        return 1;
    }

    for (r = 0; r < sh->rows; r++) {
        if (sh->row[r].count[i]) {
            return 1;
        }
    }

    return 0;
}


/*
 * Gives back what processes that exited without finishing their requests
 * (a crash, a quick exit) left counted: their rows are zeroed and freed.
 * A running process, such as an old worker still finishing requests after
 * a reload, keeps its row; one with this process's pid is an exited
 * process's.  Returns the requests given back.
 */

static ngx_atomic_uint_t
ngx_http_obs_active_reap(void)
{
    ngx_pid_t                    pid;
    ngx_uint_t                   r, i;
    ngx_atomic_uint_t            n, total;
    ngx_http_obs_active_shm_t   *sh;
    ngx_http_obs_active_row_t   *row;

    sh = ngx_http_obs_active_sh;
    total = 0;

    for (r = 0; r < sh->rows; r++) {
        row = &sh->row[r];
        pid = (ngx_pid_t) row->pid;

        if (pid == 0 || row == ngx_http_obs_active_row
            || (pid != ngx_pid
                && (kill(pid, 0) == 0 || ngx_errno != NGX_ESRCH)))
        {
            continue;
        }

        n = 0;

        ngx_shmtx_lock(&ngx_http_obs_active_pool->mutex);

        if (row->pid == (ngx_atomic_uint_t) pid) {
            for (i = 0; i <= NGX_HTTP_OBS_ACTIVE_SLOTS; i++) {
                n += row->count[i];
                row->count[i] = 0;
            }

            ngx_memory_barrier();
            row->pid = 0;
        }

        ngx_shmtx_unlock(&ngx_http_obs_active_pool->mutex);

        if (n) {
            ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                          "obs: %uA requests in flight in process %P, "
                          "which exited without finishing them, "
                          "no longer count", n, pid);
        }

        total += n;
    }

    return total;
}


#if !(NGX_HAVE_GCC_ATOMIC)

static ngx_atomic_uint_t
ngx_http_obs_active_gen_fenced(ngx_atomic_t *gen)
{
    ngx_atomic_uint_t  g;

    g = *gen;
    ngx_memory_barrier();

    return g;
}

#endif


/* A count changed: this worker's next flush sends a snapshot. */

static void
ngx_http_obs_active_changed(void)
{
    ngx_http_obs_active_dirty = 1;
    ngx_http_obs_emit_wake();
}
