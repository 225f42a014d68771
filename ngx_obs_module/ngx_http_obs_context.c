/*
 * A request's context and its clocks.  The context is made on first use
 * and lives until the request's pool is cleaned up, across internal
 * redirects; a subrequest's continues its main request's span.  Main
 * requests' contexts come from a per-worker free list.  The trace it
 * starts with is ngx_http_obs_trace.c's; its labels, ngx_http_obs_labels.c's.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_module.h"


static void ngx_http_obs_ctx_release(void *data);
static ngx_http_obs_ctx_t *ngx_http_obs_alloc_ctx(ngx_log_t *log);
static ngx_http_obs_ctx_t *ngx_http_obs_create_ctx(ngx_http_request_t *r);
static void ngx_http_obs_start_clock(ngx_http_request_t *r,
    ngx_http_obs_ctx_t *ctx);


static ngx_http_obs_ctx_t  *ngx_http_obs_free_ctxs;

/* CLOCK_REALTIME - CLOCK_MONOTONIC in microseconds, as of nginx's second */
static time_t    ngx_http_obs_wall_sec;
static uint64_t  ngx_http_obs_wall_offset;


/*
 * The request's context when the module's slot is empty
 * (ngx_http_obs_get_ctx): the context of a main request survives internal
 * redirects (which reset module contexts) through a marker in the pool's
 * cleanup list, as ngx_http_realip does; otherwise it is created.
 */

ngx_http_obs_ctx_t *
ngx_http_obs_find_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t  *cln;
    ngx_http_obs_ctx_t  *ctx;

    if (r == r->main && (r->internal || r->filter_finalize)) {
        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_obs_ctx_release) {
                ctx = cln->data;
                ngx_http_set_ctx(r, ctx, ngx_http_obs_module);
                return ctx;
            }
        }
    }

    return ngx_http_obs_create_ctx(r);
}


/*
 * The pool cleanup that returns a main request's context to the worker's
 * free list also marks where the context lives (see ngx_http_obs_get_ctx).
 */

static void
ngx_http_obs_ctx_release(void *data)
{
    ngx_http_obs_ctx_t  *ctx = data;

    if (ctx->active) {
        ngx_http_obs_active_leave(ctx);     /* requests in flight */
    }

    ctx->next_free = ngx_http_obs_free_ctxs;
    ngx_http_obs_free_ctxs = ctx;
}


/* Frees the worker's idle contexts, at exit. */

void
ngx_http_obs_free_contexts(void)
{
    ngx_http_obs_ctx_t  *ctx;

    while (ngx_http_obs_free_ctxs) {
        ctx = ngx_http_obs_free_ctxs;
        ngx_http_obs_free_ctxs = ctx->next_free;
        ngx_free(ctx);
    }
}


/*
 * Contexts of main requests come from a per-worker free list rather than
 * the request pool: as large as they are, they would often cost the pool a
 * block of its own.  The list is as long as the most requests a worker has
 * had at once.
 */

static ngx_http_obs_ctx_t *
ngx_http_obs_alloc_ctx(ngx_log_t *log)
{
    ngx_http_obs_ctx_t  *ctx;

    ctx = ngx_http_obs_free_ctxs;

    if (ctx) {
        ngx_http_obs_free_ctxs = ctx->next_free;
        return ctx;
    }

    return ngx_alloc(sizeof(ngx_http_obs_ctx_t), log);
}


static ngx_http_obs_ctx_t *
ngx_http_obs_create_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_obs_ctx_t       *ctx, *parent;
    ngx_http_obs_loc_conf_t  *olcf;

    if (r != r->main) {

        /*
         * a subrequest continues its main request's span; the end of the
         * context is the main request's alone (its pool cleanup, and
         * buffers: its tracestate stays where it is, and only a main
         * request makes a record)
         */

        ctx = ngx_palloc(r->pool, NGX_HTTP_OBS_SUBREQUEST_CTX);
        if (ctx == NULL) {
            return NULL;
        }

        parent = ngx_http_obs_get_ctx(r->main);
        if (parent == NULL) {
            return NULL;
        }

        ngx_memcpy(ctx, parent, NGX_HTTP_OBS_SUBREQUEST_CTX);
        ctx->injected = 0;
        ctx->route_set = 0;
        ctx->content_reached = 0;
        ctx->attempts = 0;

        olcf = ngx_http_get_module_loc_conf(r, ngx_http_obs_module);
        ngx_http_obs_set_attempt_id(ctx, 0, olcf);

        ngx_http_set_ctx(r, ctx, ngx_http_obs_module);
        return ctx;
    }

    ctx = ngx_http_obs_alloc_ctx(r->connection->log);
    if (ctx == NULL) {
        return NULL;
    }

    ngx_memzero(ctx, offsetof(ngx_http_obs_ctx_t, start_wall_us));

    /*
     * The pool cleanup lives in the context, not in the request pool: the
     * module takes nothing from a main request's pool, so it never tips
     * the pool into one more block.  ngx_destroy_pool() reads cln->next
     * after the handler returns, and the release leaves it alone.
     */

    cln = &ctx->cleanup;
    cln->handler = ngx_http_obs_ctx_release;
    cln->data = ctx;
    cln->next = r->pool->cleanup;
    r->pool->cleanup = cln;

    ngx_http_obs_start_clock(r, ctx);
    ngx_http_obs_start_trace(r, ctx);

    ngx_http_set_ctx(r, ctx, ngx_http_obs_module);

    return ctx;
}


/*
 * Durations are measured on the monotonic clock from here.  nginx stamped
 * the request's start with its cached millisecond clock when the request
 * began; when that is more than its resolution (and the cache's lag)
 * earlier, the request waited before the module saw it, and that lead is
 * kept as nginx measured it.
 */

static void
ngx_http_obs_start_clock(ngx_http_request_t *r, ngx_http_obs_ctx_t *ctx)
{
    uint64_t  began;

    ctx->start_mono_us = ngx_http_obs_clock_us(CLOCK_MONOTONIC);

    /*
     * Wall time is the monotonic time plus their difference, read again
     * whenever nginx's cached second moves on: one clock read per request
     * instead of two, and a wall clock step is followed within a second.
     */

    if (ngx_http_obs_wall_sec != ngx_time()) {
        ngx_http_obs_wall_sec = ngx_time();
        ngx_http_obs_wall_offset = ngx_http_obs_clock_us(CLOCK_REALTIME)
                                   - ngx_http_obs_clock_us(CLOCK_MONOTONIC);
    }

    ctx->start_wall_us = ctx->start_mono_us + ngx_http_obs_wall_offset;

    began = ((uint64_t) r->start_sec * 1000 + r->start_msec) * 1000;

    ctx->lead_us = (ctx->start_wall_us > began + NGX_HTTP_OBS_CLOCK_SLACK_US)
                   ? ctx->start_wall_us - began : 0;
    ctx->start_wall_us -= ctx->lead_us;
}
