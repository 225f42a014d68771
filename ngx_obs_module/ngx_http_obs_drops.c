/*
 * Records dropped, by reason (proto/obs/v1/drop_reasons.def), and audit
 * events never admitted.  A worker counts its own (ngx_http_obs_batch.c)
 * and sends them in the next batch header, as deltas, so that a restarted
 * sidecar adds nothing twice.  What a worker could not report when it
 * exited waits in a shared memory zone (kept across reloads) that the next
 * datagram of any worker of this nginx takes up, or the master when nginx
 * stops; with no batch to ride, the counts go in a datagram of their own.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_emit.h"
#include "ngx_http_obs_jwt_module.h"


/* In shared memory: drops of exited workers that no datagram carried yet. */
struct ngx_http_obs_shared_s {
    ngx_atomic_t             dropped[NGX_HTTP_OBS_DROP_REASONS];
};


static ngx_int_t ngx_http_obs_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


/* The zone of counts that outlive a worker (and a reload). */

ngx_int_t
ngx_http_obs_emit_zone(ngx_conf_t *cf, ngx_http_obs_sidecar_t *sidecar)
{
    ngx_str_t  name = ngx_string("obs_sidecar");

    sidecar->zone = ngx_shared_memory_add(cf, &name, 8 * ngx_pagesize,
                                          &ngx_http_obs_module);
    if (sidecar->zone == NULL) {
        return NGX_ERROR;
    }

    sidecar->zone->init = ngx_http_obs_init_zone;
    sidecar->zone->data = sidecar;

    return NGX_OK;
}


static ngx_int_t
ngx_http_obs_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_obs_sidecar_t  *osidecar = data;

    ngx_slab_pool_t         *shpool;
    ngx_http_obs_sidecar_t  *sidecar;

    sidecar = shm_zone->data;

    if (osidecar) {
        sidecar->shared = osidecar->shared;    /* a reload keeps the counts */
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        sidecar->shared = shpool->data;
        return NGX_OK;
    }

    sidecar->shared = ngx_slab_calloc(shpool, sizeof(ngx_http_obs_shared_t));
    if (sidecar->shared == NULL) {
        return NGX_ERROR;
    }

    shpool->data = sidecar->shared;

    return NGX_OK;
}


/*
 * Takes the counts exited workers left in shared memory into this
 * worker's own; returns whether any drop awaits reporting.
 */

ngx_uint_t
ngx_http_obs_claim(ngx_http_obs_emitter_t *e)
{
    ngx_uint_t              i, pending;
    ngx_atomic_uint_t       n;
    ngx_http_obs_shared_t  *sh;

    sh = e->sidecar->shared;
    pending = 0;

    for (i = 0; i < NGX_HTTP_OBS_DROP_REASONS; i++) {

        if (sh) {
            do {
                n = sh->dropped[i];
            } while (n && !ngx_atomic_cmp_set(&sh->dropped[i], n, 0));

            e->dropped[i] += n;
        }

        pending |= (e->dropped[i] != 0);
    }

    if (e->audit_shm) {
        do {
            n = e->audit_shm->exited;
        } while (n && !ngx_atomic_cmp_set(&e->audit_shm->exited, n, 0));

        e->audit_dropped[NGX_HTTP_OBS_AUDIT_EXIT] += n;
    }

    for (i = 0; i < NGX_HTTP_OBS_AUDIT_REASONS; i++) {
        pending |= (e->audit_dropped[i] != 0);
    }

    return pending;
}


/* Leaves this worker's unreported drops in shared memory. */

void
ngx_http_obs_unclaim(ngx_http_obs_emitter_t *e)
{
    ngx_uint_t              i;
    ngx_http_obs_shared_t  *sh;

    sh = e->sidecar->shared;

    for (i = 0; sh && i < NGX_HTTP_OBS_DROP_REASONS; i++) {
        if (e->dropped[i]) {
            (void) ngx_atomic_fetch_add(&sh->dropped[i],
                                        (ngx_atomic_int_t) e->dropped[i]);
            e->dropped[i] = 0;
        }
    }

    /* events never admitted are all "lost at exit" to whoever reports */

    for (i = 0; e->audit_shm && i < NGX_HTTP_OBS_AUDIT_REASONS; i++) {
        if (e->audit_dropped[i]) {
            (void) ngx_atomic_fetch_add(&e->audit_shm->exited,
                                  (ngx_atomic_int_t) e->audit_dropped[i]);
            e->audit_dropped[i] = 0;
        }
    }
}


/* Sends a datagram of drop counts alone. */

ngx_int_t
ngx_http_obs_send_counts(ngx_http_obs_emitter_t *e)
{
    u_char     header[NGX_HTTP_OBS_HEADER_MAX];
    size_t     header_len;
    ngx_int_t  rc;

    header_len = ngx_http_obs_batch_header(e, header);

    rc = ngx_http_obs_send(e, header, header_len, NULL, 0);

    if (rc == NGX_OK) {
        ngx_memzero(e->dropped, sizeof(e->dropped));
        ngx_memzero(e->audit_dropped, sizeof(e->audit_dropped));
        ngx_http_obs_jwt_batch_sent();
        e->announce = 0;
        e->sequence++;
    }

    return rc;
}
