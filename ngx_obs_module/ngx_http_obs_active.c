/*
 * Requests in flight per service and route (http_server_active_requests).
 *
 * The counts live in a shared memory zone ("obs_active"), which a reload
 * keeps (same name and size), so the old workers still serving requests
 * count in the same table as the new ones until they are done.  A request
 * takes a slot when its route is set (again, if a rewrite moves it to
 * another route before its content starts) and gives it back in its pool's
 * cleanup, which runs once on every path (internal redirects, error pages,
 * HTTP/0.9, aborted clients): one atomic add each way.  The slot is found
 * by a per-worker cache of each location's last key when the service is
 * constant, else by hashing the key into the table.
 *
 * Each worker that changed a count sends, within its flush interval, a
 * snapshot of every entry, zeros included (a datagram of its own, see
 * ngx_http_obs_emit_active()); the zone's random id and the monotonic clock
 * at the snapshot let the sidecar keep the newest per nginx.  Keys are
 * never removed: the table holds NGX_HTTP_OBS_ACTIVE_SLOTS of them, and a
 * request that finds no room (or a key too long) counts in the last slot,
 * service and route "__overflow__".
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_module.h"
#include "obs/v1/record.pb-c.h"


#define NGX_HTTP_OBS_ACTIVE_SLOTS        128    /* a power of two */
#define NGX_HTTP_OBS_ACTIVE_SERVICE_MAX  64
#define NGX_HTTP_OBS_ACTIVE_ROUTE_MAX    192
#define NGX_HTTP_OBS_ACTIVE_CACHE        64     /* a power of two */
#define NGX_HTTP_OBS_ACTIVE_CACHED_ROUTE 64
#define NGX_HTTP_OBS_ACTIVE_HEARTBEAT    30000  /* ms, in flight: see below */


typedef struct {
    ngx_atomic_t             count;         /* first: ctx->active points here */
    ngx_atomic_t             used;          /* the key below is written */
    uint32_t                 hash;
    uint16_t                 service_len;
    uint16_t                 route_len;
    u_char                   key[NGX_HTTP_OBS_ACTIVE_SERVICE_MAX
                                 + NGX_HTTP_OBS_ACTIVE_ROUTE_MAX];
} ngx_http_obs_active_slot_t;


typedef struct {
    uint64_t                 id;            /* made with the zone */
    ngx_atomic_t             overflow;      /* requests with no room */
    ngx_http_obs_active_slot_t  slot[NGX_HTTP_OBS_ACTIVE_SLOTS + 1];
} ngx_http_obs_active_shm_t;


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
    ngx_http_obs_active_slot_t  *slot;
} ngx_http_obs_active_cached_t;


static ngx_int_t ngx_http_obs_active_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_http_obs_active_slot_t *ngx_http_obs_active_find(
    ngx_str_t *service, ngx_str_t *route);
static ngx_http_obs_active_slot_t *ngx_http_obs_active_insert(
    ngx_str_t *service, ngx_str_t *route, uint32_t hash);
static void ngx_http_obs_active_changed(void);


static ngx_str_t  ngx_http_obs_active_name = ngx_string("obs_active");

static ngx_shm_zone_t                *ngx_http_obs_active_shm_zone;
static ngx_http_obs_active_shm_t     *ngx_http_obs_active_sh;
void                                 *ngx_http_obs_active_table;
static ngx_slab_pool_t               *ngx_http_obs_active_pool;
static ngx_uint_t                     ngx_http_obs_active_dirty;
static ngx_msec_t                     ngx_http_obs_active_sent_at;
static ngx_http_obs_active_cached_t   ngx_http_obs_active_cache
                                          [NGX_HTTP_OBS_ACTIVE_CACHE];

/* a snapshot's entries, built when a datagram is made */
static Obs__V1__ActiveRequests    ngx_http_obs_active_entry
                                      [NGX_HTTP_OBS_ACTIVE_SLOTS + 1];
static Obs__V1__ActiveRequests   *ngx_http_obs_active_entries
                                      [NGX_HTTP_OBS_ACTIVE_SLOTS + 1];


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
    ngx_slab_pool_t            *shpool;
    ngx_http_obs_active_shm_t  *sh;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (data || shm_zone->shm.exists) {
        return NGX_OK;                      /* a reload keeps the counts */
    }

    sh = ngx_slab_calloc(shpool, sizeof(ngx_http_obs_active_shm_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    sh->id = ((uint64_t) ngx_random() << 32) ^ (uint64_t) ngx_random()
             ^ ((uint64_t) ngx_time() << 20) ^ (uint64_t) ngx_pid;

    ngx_memcpy(sh->slot[NGX_HTTP_OBS_ACTIVE_SLOTS].key,
               "__overflow____overflow__", 24);
    sh->slot[NGX_HTTP_OBS_ACTIVE_SLOTS].service_len = 12;
    sh->slot[NGX_HTTP_OBS_ACTIVE_SLOTS].route_len = 12;
    sh->slot[NGX_HTTP_OBS_ACTIVE_SLOTS].used = 1;

    shpool->data = sh;

    return NGX_OK;
}


/* Points the process at the cycle's zone (workers, and a stopping master). */

void
ngx_http_obs_active_init(ngx_http_obs_main_conf_t *omcf)
{
    ngx_slab_pool_t  *shpool;

    ngx_http_obs_active_shm_zone = omcf ? omcf->active_zone : NULL;
    ngx_http_obs_active_sh = NULL;
    ngx_http_obs_active_table = NULL;

    if (ngx_http_obs_active_shm_zone == NULL) {
        return;
    }

    shpool = (ngx_slab_pool_t *) ngx_http_obs_active_shm_zone->shm.addr;
    ngx_http_obs_active_pool = shpool;
    ngx_http_obs_active_sh = shpool->data;
    ngx_http_obs_active_table = ngx_http_obs_active_sh;
}


/*
 * Counts the request under its service and route, moving it when a
 * rewrite changed them (callers check ngx_http_obs_active_table first).
 */

void
ngx_http_obs_active_enter(ngx_http_request_t *r, ngx_http_obs_ctx_t *ctx)
{
    ngx_str_t                      service;
    ngx_uint_t                     constant;
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
            c->slot = ngx_http_obs_active_find(&service, &ctx->route);
        }

        slot = c->slot;

    } else {
        slot = ngx_http_obs_active_find(&service, &ctx->route);
    }

    if ((ngx_atomic_t *) slot == ctx->active) {
        return;
    }

    if (ctx->active) {
        (void) ngx_atomic_fetch_add(ctx->active, -1);
    }

    (void) ngx_atomic_fetch_add(&slot->count, 1);
    ctx->active = &slot->count;

    if (slot == &ngx_http_obs_active_sh->slot[NGX_HTTP_OBS_ACTIVE_SLOTS]) {
        (void) ngx_atomic_fetch_add(&ngx_http_obs_active_sh->overflow, 1);
    }

    ngx_http_obs_active_changed();
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
 * since its last one, or requests are in flight and its last one is
 * NGX_HTTP_OBS_ACTIVE_HEARTBEAT old.  The sidecar takes an nginx silent for
 * its series TTL as gone (killed): without the repeat, a long request on
 * an otherwise idle nginx would fall to 0 there.
 */

ngx_uint_t
ngx_http_obs_active_pending(void)
{
    if (ngx_http_obs_active_sh == NULL) {
        return 0;
    }

    return ngx_http_obs_active_dirty
           || (ngx_current_msec - ngx_http_obs_active_sent_at
                  >= NGX_HTTP_OBS_ACTIVE_HEARTBEAT
               && ngx_http_obs_active_busy());
}


/* Tells whether a request is in flight: the flush timer then keeps going. */

ngx_uint_t
ngx_http_obs_active_busy(void)
{
    ngx_uint_t  i;

    if (ngx_http_obs_active_sh == NULL) {
        return 0;
    }

    for (i = 0; i <= NGX_HTTP_OBS_ACTIVE_SLOTS; i++) {
        if (ngx_http_obs_active_sh->slot[i].count) {
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
 * Adds the snapshot to a header (every key of the table, so that routes
 * with nothing in flight show 0; with closed, none: nginx stops and
 * nothing is in flight any more).
 */

ngx_uint_t
ngx_http_obs_active_snapshot(void *header, ngx_uint_t closed)
{
    ngx_uint_t                   i, n;
    ngx_atomic_uint_t            count;
    Obs__V1__BatchHeader        *h = header;
    Obs__V1__ActiveRequests     *a;
    ngx_http_obs_active_slot_t  *slot;

    if (ngx_http_obs_active_sh == NULL) {
        return 0;
    }

    h->active_zone = ngx_http_obs_active_sh->id;
    h->active_version = ngx_http_obs_clock_us(CLOCK_MONOTONIC) * 1000;
    h->active_overflow = ngx_http_obs_active_sh->overflow;
    h->active_closed = closed ? 1 : 0;
    h->active = ngx_http_obs_active_entries;
    h->n_active = 0;

    ngx_memory_barrier();

    for (i = 0, n = 0; !closed && i <= NGX_HTTP_OBS_ACTIVE_SLOTS; i++) {
        slot = &ngx_http_obs_active_sh->slot[i];
        count = slot->count;

        if (!slot->used) {
            continue;
        }

        a = &ngx_http_obs_active_entry[n];
        obs__v1__active_requests__init(a);

        a->service.data = slot->key;
        a->service.len = slot->service_len;
        a->route.data = slot->key + slot->service_len;
        a->route.len = slot->route_len;
        a->count = count;

        ngx_http_obs_active_entries[n++] = a;
    }

    h->n_active = n;

    return 1;
}


static ngx_http_obs_active_slot_t *
ngx_http_obs_active_find(ngx_str_t *service, ngx_str_t *route)
{
    uint32_t                     hash;
    ngx_uint_t                   i, n;
    ngx_http_obs_active_slot_t  *slot;

    if (service->len > NGX_HTTP_OBS_ACTIVE_SERVICE_MAX
        || route->len > NGX_HTTP_OBS_ACTIVE_ROUTE_MAX)
    {
        goto overflow;
    }

    /* services are few: their length spreads them, the compare tells */

    hash = ngx_http_obs_hash(route->data, route->len)
           ^ ((uint32_t) service->len * 0x9e3779b1);

    for (n = 0, i = hash; n < NGX_HTTP_OBS_ACTIVE_SLOTS; n++, i++) {
        slot = &ngx_http_obs_active_sh->slot[i
                                       & (NGX_HTTP_OBS_ACTIVE_SLOTS - 1)];

        if (!slot->used) {
            return ngx_http_obs_active_insert(service, route, hash);
        }

        if (slot->hash == hash
            && slot->service_len == service->len
            && slot->route_len == route->len
            && ngx_memcmp(slot->key, service->data, service->len) == 0
            && ngx_memcmp(slot->key + service->len, route->data, route->len)
               == 0)
        {
            return slot;
        }
    }

overflow:

    return &ngx_http_obs_active_sh->slot[NGX_HTTP_OBS_ACTIVE_SLOTS];
}


/*
 * A new key, under the zone's lock: another worker may have added it
 * meanwhile.  Its text is written before it is marked used, so readers
 * without the lock never see half a key.
 */

static ngx_http_obs_active_slot_t *
ngx_http_obs_active_insert(ngx_str_t *service, ngx_str_t *route,
    uint32_t hash)
{
    ngx_uint_t                   i, n;
    ngx_http_obs_active_slot_t  *slot, *found;

    found = NULL;

    ngx_shmtx_lock(&ngx_http_obs_active_pool->mutex);

    for (n = 0, i = hash; n < NGX_HTTP_OBS_ACTIVE_SLOTS; n++, i++) {
        slot = &ngx_http_obs_active_sh->slot[i
                                       & (NGX_HTTP_OBS_ACTIVE_SLOTS - 1)];

        if (!slot->used) {
            slot->hash = hash;
            slot->service_len = (uint16_t) service->len;
            slot->route_len = (uint16_t) route->len;
            ngx_memcpy(slot->key, service->data, service->len);
            ngx_memcpy(slot->key + service->len, route->data, route->len);

            ngx_memory_barrier();
            slot->used = 1;

            found = slot;
            break;
        }

        if (slot->hash == hash
            && slot->service_len == service->len
            && slot->route_len == route->len
            && ngx_memcmp(slot->key, service->data, service->len) == 0
            && ngx_memcmp(slot->key + service->len, route->data, route->len)
               == 0)
        {
            found = slot;
            break;
        }
    }

    ngx_shmtx_unlock(&ngx_http_obs_active_pool->mutex);

    if (found == NULL) {
        found = &ngx_http_obs_active_sh->slot[NGX_HTTP_OBS_ACTIVE_SLOTS];
    }

    return found;
}


/* A count changed: this worker's next flush sends a snapshot. */

static void
ngx_http_obs_active_changed(void)
{
    ngx_http_obs_active_dirty = 1;
    ngx_http_obs_emit_wake();
}
