/*
 * Upstream peer wrapping: every attempt to reach a backend (retries
 * included) gets its own parent id, patched into the serialised upstream
 * request, and is timed on the monotonic clock.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_module.h"


static ngx_int_t ngx_http_obs_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_obs_get_peer(ngx_peer_connection_t *pc,
    void *data);
static void ngx_http_obs_next_attempt(ngx_http_request_t *r,
    ngx_http_obs_ctx_t *ctx);
static void ngx_http_obs_free_peer(ngx_peer_connection_t *pc, void *data,
    ngx_uint_t state);
static void ngx_http_obs_notify_peer(ngx_peer_connection_t *pc, void *data,
    ngx_uint_t type);
#if (NGX_SSL || NGX_COMPAT)
static ngx_int_t ngx_http_obs_set_peer_session(ngx_peer_connection_t *pc,
    void *data);
static void ngx_http_obs_save_peer_session(ngx_peer_connection_t *pc,
    void *data);
#endif


/*
 * Wraps the peer initialisation of every upstream so that each attempt to
 * reach a backend (retries included) carries its own parent id.  Upstreams
 * that proxy_pass resolves at run time have no init hook and keep the first
 * attempt's id.
 */

ngx_int_t
ngx_http_obs_wrap_upstreams(ngx_conf_t *cf)
{
    ngx_uint_t                       i;
    ngx_http_obs_srv_conf_t         *oscf;
    ngx_http_upstream_srv_conf_t   **uscfp, *uscf;
    ngx_http_upstream_main_conf_t   *umcf;

    umcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module);
    if (umcf == NULL) {
        return NGX_OK;
    }

    uscfp = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        uscf = uscfp[i];

        if (uscf->srv_conf) {
            oscf = ngx_http_conf_upstream_srv_conf(uscf, ngx_http_obs_module);
            oscf->original_init_peer = uscf->peer.init;

        } else if (uscf->peer.init != ngx_http_upstream_init_round_robin_peer)
        {
            continue;
        }

        if (uscf->peer.init) {
            uscf->peer.init = ngx_http_obs_init_peer;
        }
    }

    return NGX_OK;
}


/*
 * The first attempt's parent id is the gateway span itself unless the
 * upstream call gets a CLIENT span of its own; every retry gets a new id.
 */

void
ngx_http_obs_set_attempt_id(ngx_http_obs_ctx_t *ctx, ngx_uint_t n,
    ngx_http_obs_loc_conf_t *olcf)
{
    uint8_t  *id;

    id = ctx->attempt_ids[n];

    if (n == 0 && !olcf->upstream_span) {
        ngx_memcpy(id, ctx->span_id, OBS_SPAN_ID_LEN);

    } else {
        ngx_http_obs_new_id(id, OBS_SPAN_ID_LEN);
    }

    obs_traceparent_format((char *) ctx->traceparent, ctx->trace_id, id,
                           ctx->flags);
}


static ngx_int_t
ngx_http_obs_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us)
{
    ngx_http_obs_ctx_t              *ctx;
    ngx_http_obs_peer_t             *op;
    ngx_peer_connection_t           *pc;
    ngx_http_obs_srv_conf_t         *oscf;
    ngx_http_upstream_init_peer_pt   init;

    if (us->srv_conf) {
        oscf = ngx_http_conf_upstream_srv_conf(us, ngx_http_obs_module);
        init = oscf->original_init_peer;

    } else {
        init = ngx_http_upstream_init_round_robin_peer;
    }

    if (init(r, us) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_obs_module);

    if (ctx == NULL || !ctx->injected) {
        return NGX_OK;
    }

    op = &ctx->peer;

    pc = &r->upstream->peer;

    op->request = r;
    op->data = pc->data;
    op->get = pc->get;
    op->free = pc->free;
    op->notify = pc->notify;

    pc->data = op;
    pc->get = ngx_http_obs_get_peer;
    pc->free = ngx_http_obs_free_peer;
    pc->notify = op->notify ? ngx_http_obs_notify_peer : NULL;

#if (NGX_SSL || NGX_COMPAT)
    op->set_session = pc->set_session;
    op->save_session = pc->save_session;
    pc->set_session = op->set_session ? ngx_http_obs_set_peer_session : NULL;
    pc->save_session = op->save_session ? ngx_http_obs_save_peer_session
                                        : NULL;
#endif

    return NGX_OK;
}


static ngx_int_t
ngx_http_obs_get_peer(ngx_peer_connection_t *pc, void *data)
{
    ngx_http_obs_peer_t  *op = data;

    ngx_http_obs_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(op->request, ngx_http_obs_module);

    if (ctx) {
        ngx_http_obs_next_attempt(op->request, ctx);
    }

    return op->get(pc, op->data);
}


/*
 * The upstream request was serialised once, before the first attempt; a
 * retry rewrites the parent id inside that buffer (same length, so nothing
 * moves).
 */

static void
ngx_http_obs_next_attempt(ngx_http_request_t *r, ngx_http_obs_ctx_t *ctx)
{
    u_char                   *p;
    ngx_buf_t                *b;
    ngx_uint_t                n;
    ngx_http_obs_loc_conf_t  *olcf;

    n = ctx->attempts++;

    if (n >= NGX_HTTP_OBS_MAX_ATTEMPTS) {
        return;
    }

    ctx->attempt_start_us[n] = ngx_http_obs_clock_us(CLOCK_MONOTONIC);
    ctx->attempt_us[n] = 0;

    if (n == 0) {
        return;
    }

    b = (r->upstream && r->upstream->request_bufs)
        ? r->upstream->request_bufs->buf : NULL;

    p = NULL;

    if (b && !b->in_file && b->start) {
        p = memmem(b->start, b->last - b->start, ctx->traceparent,
                   OBS_TRACEPARENT_LEN);
    }

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_obs_module);
    ngx_http_obs_set_attempt_id(ctx, n, olcf);

    if (p) {
        ngx_memcpy(p, ctx->traceparent, OBS_TRACEPARENT_LEN);
    }
}


static void
ngx_http_obs_free_peer(ngx_peer_connection_t *pc, void *data,
    ngx_uint_t state)
{
    ngx_http_obs_peer_t  *op = data;

    uint64_t             us;
    ngx_uint_t           n;
    ngx_http_obs_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(op->request, ngx_http_obs_module);

    if (ctx && ctx->attempts && ctx->attempts <= NGX_HTTP_OBS_MAX_ATTEMPTS) {
        n = ctx->attempts - 1;

        if (ctx->attempt_us[n] == 0) {

            /* one clock read: ngx_max() evaluates its arguments twice */

            us = ngx_http_obs_clock_us(CLOCK_MONOTONIC)
                 - ctx->attempt_start_us[n];
            ctx->attempt_us[n] = ngx_max(us, 1);
        }
    }

    op->free(pc, op->data, state);
}


static void
ngx_http_obs_notify_peer(ngx_peer_connection_t *pc, void *data,
    ngx_uint_t type)
{
    ngx_http_obs_peer_t  *op = data;

    op->notify(pc, op->data, type);
}


#if (NGX_SSL || NGX_COMPAT)

static ngx_int_t
ngx_http_obs_set_peer_session(ngx_peer_connection_t *pc, void *data)
{
    ngx_http_obs_peer_t  *op = data;

    return op->set_session(pc, op->data);
}


static void
ngx_http_obs_save_peer_session(ngx_peer_connection_t *pc, void *data)
{
    ngx_http_obs_peer_t  *op = data;

    op->save_session(pc, op->data);
}

#endif
