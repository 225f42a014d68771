/*
 * Per-request trace context: extraction of W3C traceparent/tracestate, the
 * gateway's own ids, injection into the upstream request, and the route,
 * service and tenant labels.  Directive values are compiled in
 * ngx_http_obs_value.c, upstream peers wrapped in ngx_http_obs_upstream.c.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_module.h"


#define NGX_HTTP_OBS_MAX_TRACESTATE_HEADERS  32
#define NGX_HTTP_OBS_UNMATCHED_ROUTE         "unmatched"


typedef struct {
    ngx_uint_t                      traceparents;
    ngx_uint_t                      tracestates;
    ngx_table_elt_t                *traceparent;
    ngx_table_elt_t                *tracestate;
    ngx_table_elt_t                *request_id;
    /* set by the caller: a lone $http_ value whose header to find, or NULL */
    ngx_http_obs_value_t           *tenant;
    ngx_table_elt_t                *tenant_header;
    ngx_uint_t                      tenant_headers;
    obs_slice_t                     states[NGX_HTTP_OBS_MAX_TRACESTATE_HEADERS];
    size_t                          states_len;
} ngx_http_obs_found_t;


static ngx_uint_t ngx_http_obs_header_is_var(ngx_table_elt_t *h,
    ngx_http_obs_value_t *v);
static ngx_uint_t ngx_http_obs_header_matches(ngx_table_elt_t *h,
    ngx_str_t *name);
static u_char ngx_http_obs_underscored(u_char ch);
static void ngx_http_obs_ctx_release(void *data);
static ngx_http_obs_ctx_t *ngx_http_obs_alloc_ctx(ngx_log_t *log);
static ngx_http_obs_ctx_t *ngx_http_obs_create_ctx(ngx_http_request_t *r);
static void ngx_http_obs_start_trace(ngx_http_request_t *r,
    ngx_http_obs_ctx_t *ctx);
static ngx_int_t ngx_http_obs_extract(ngx_http_request_t *r,
    ngx_http_obs_ctx_t *ctx, ngx_http_obs_found_t *found);
static void ngx_http_obs_find_headers(ngx_http_request_t *r,
    ngx_http_obs_found_t *found);
static ngx_int_t ngx_http_obs_header_is(ngx_table_elt_t *h, ngx_str_t *name);
static ngx_int_t ngx_http_obs_rebuild_headers(ngx_http_request_t *r,
    ngx_http_obs_ctx_t *ctx);
static ngx_int_t ngx_http_obs_push_header(ngx_list_t *headers,
    ngx_str_t *name, ngx_uint_t hash, u_char *value, size_t len);
static void ngx_http_obs_start_clock(ngx_http_request_t *r,
    ngx_http_obs_ctx_t *ctx);


static ngx_str_t   ngx_http_obs_traceparent_name = ngx_string("traceparent");
static ngx_str_t   ngx_http_obs_tracestate_name = ngx_string("tracestate");
static ngx_str_t   ngx_http_obs_request_id_name = ngx_string("x-request-id");
static ngx_uint_t  ngx_http_obs_traceparent_hash;

static ngx_http_obs_ctx_t  *ngx_http_obs_free_ctxs;

/* CLOCK_REALTIME - CLOCK_MONOTONIC in microseconds, as of nginx's second */
static time_t    ngx_http_obs_wall_sec;
static uint64_t  ngx_http_obs_wall_offset;
static ngx_uint_t  ngx_http_obs_tracestate_hash;

/* the last tenant value that was a valid label as it came */
static u_char      ngx_http_obs_last_tenant[OBS_TENANT_MAX_LEN];
static size_t      ngx_http_obs_last_tenant_len;


/* Computes the header name hashes injection needs (at configuration). */

void
ngx_http_obs_context_init(void)
{
    ngx_http_obs_traceparent_hash = ngx_hash_key(
        ngx_http_obs_traceparent_name.data,
        ngx_http_obs_traceparent_name.len);
    ngx_http_obs_tracestate_hash = ngx_hash_key(
        ngx_http_obs_tracestate_name.data,
        ngx_http_obs_tracestate_name.len);
}


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


/* The client's first traceparent header (NULL: none); *n: how many came. */

ngx_table_elt_t *
ngx_http_obs_incoming_traceparent(ngx_http_request_t *r, ngx_uint_t *n)
{
    ngx_http_obs_found_t  found;

    found.tenant = NULL;
    ngx_http_obs_find_headers(r, &found);

    *n = found.traceparents;

    return found.traceparent;
}


/* Adds trace context headers to the request that goes upstream. */

ngx_int_t
ngx_http_obs_inject(ngx_http_request_t *r, ngx_http_obs_ctx_t *ctx)
{
    ngx_http_obs_found_t  found;

    if (ctx->injected) {
        return NGX_OK;
    }

    ctx->injected = 1;

    if (r == r->main) {
        found.traceparents = ctx->in_traceparents;
        found.tracestates = ctx->in_tracestates;
        found.traceparent = ctx->in_traceparent;
        found.tracestate = ctx->in_tracestate;

    } else {
        found.tenant = NULL;
        ngx_http_obs_find_headers(r, &found);
    }

    /*
     * A subrequest shares the parent's header array, and a header that must
     * go away cannot be unlinked from an ngx_list_t: both need a new list.
     */

    if (r != r->main || found.traceparents > 1 || found.tracestates > 1
        || (found.tracestate && ctx->tracestate.len == 0))
    {
        return ngx_http_obs_rebuild_headers(r, ctx);
    }

    /* nginx leaves the header list of an HTTP/0.9 request uninitialised */

    if (r->headers_in.headers.nalloc == 0
        && ngx_list_init(&r->headers_in.headers, r->pool, 2,
                         sizeof(ngx_table_elt_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (found.traceparent) {
        found.traceparent->value.data = ctx->traceparent;
        found.traceparent->value.len = OBS_TRACEPARENT_LEN;

    } else if (ngx_http_obs_push_header(&r->headers_in.headers,
                                        &ngx_http_obs_traceparent_name,
                                        ngx_http_obs_traceparent_hash,
                                        ctx->traceparent,
                                        OBS_TRACEPARENT_LEN)
               != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (found.tracestate) {
        found.tracestate->value = ctx->tracestate;
        return NGX_OK;
    }

    if (ctx->tracestate.len == 0) {
        return NGX_OK;
    }

    return ngx_http_obs_push_header(&r->headers_in.headers,
                                    &ngx_http_obs_tracestate_name,
                                    ngx_http_obs_tracestate_hash,
                                    ctx->tracestate.data,
                                    ctx->tracestate.len);
}


void
ngx_http_obs_set_route(ngx_http_request_t *r, ngx_http_obs_ctx_t *ctx)
{
    ngx_str_t                  route;
    ngx_uint_t                 stable;
    ngx_http_obs_loc_conf_t   *olcf;
    ngx_http_core_loc_conf_t  *clcf;

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_obs_module);

    ngx_str_null(&route);
    stable = 0;

    if (olcf->route) {
        if (ngx_http_obs_value(r, olcf->route, &route) != NGX_OK) {
            ngx_str_null(&route);
        }

        stable = olcf->route->constant;

    } else {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        /*
         * A regex location's source is no endpoint label: it is labelled
         * like obs_route_auto, from the URI with its ids replaced.
         */

        if (olcf->route_auto
#if (NGX_PCRE)
            || clcf->regex
#endif
           )
        {
            route.data = ctx->route_buf;
            route.len = obs_route_normalize((char *) r->uri.data, r->uri.len,
                                            (char *) ctx->route_buf);

        } else {
            route = clcf->name;
            stable = 1;
        }
    }

    if (route.len == 0) {
        ngx_str_set(&route, NGX_HTTP_OBS_UNMATCHED_ROUTE);
        stable = 1;
    }

    ctx->route.data = route.data;
    ctx->route.len = ngx_min(route.len, OBS_ROUTE_MAX_LEN);
    ctx->route_conf = olcf;
    ctx->route_set = 1;
    ctx->route_stable = stable;
}


/* Evaluates obs_tenant and reduces it to a safe label. */

ngx_int_t
ngx_http_obs_tenant(ngx_http_request_t *r, ngx_str_t *tenant)
{
    size_t                    len;
    ngx_str_t                 raw;
    ngx_http_obs_ctx_t       *ctx;
    ngx_http_obs_loc_conf_t  *olcf;

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_obs_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_obs_module);

    ngx_str_null(&raw);

    if (olcf->tenant && ctx && ctx->tenant_of == olcf->tenant) {
        raw = ctx->tenant_raw;

    } else if (olcf->tenant
               && ngx_http_obs_value(r, olcf->tenant, &raw) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* a worker sees the same few tenants again and again */

    if (raw.len && raw.len == ngx_http_obs_last_tenant_len
        && ngx_http_obs_same(raw.data, ngx_http_obs_last_tenant, raw.len))
    {
        *tenant = raw;
        return NGX_OK;
    }

    tenant->data = (u_char *) obs_tenant_label((char *) raw.data, raw.len,
                                               &len);
    tenant->len = len;

    if (tenant->data == raw.data && len) {
        ngx_memcpy(ngx_http_obs_last_tenant, raw.data, len);
        ngx_http_obs_last_tenant_len = len;
    }

    return NGX_OK;
}


/*
 * Finds the header a lone $http_NAME variable reads, matching names as
 * nginx does ('-' as '_', any case) but comparing them whole first, which
 * is cheaper than the variable's taking every header name apart.  A header
 * that appears more than once is left to the variable, which knows how this
 * nginx joins them.
 */

ngx_uint_t
ngx_http_obs_lone_header(ngx_http_request_t *r, ngx_http_obs_value_t *v,
    ngx_str_t *value)
{
    ngx_http_obs_found_t  found;

    found.tenant = v;
    ngx_http_obs_find_headers(r, &found);

    if (found.tenant_headers > 1) {
        return 0;
    }

    if (found.tenant_header) {
        *value = found.tenant_header->value;

    } else {
        ngx_str_null(value);
    }

    return 1;
}


/* Tells whether h is the header the lone $http_ value v reads. */

static ngx_uint_t
ngx_http_obs_header_is_var(ngx_table_elt_t *h, ngx_http_obs_value_t *v)
{
    if (h->key.len != v->header.len
        || ngx_http_obs_underscored(h->lowcase_key[0]) != v->header.data[0])
    {
        return 0;
    }

    return ngx_http_obs_same(h->lowcase_key, v->header_dashed.data,
                             v->header.len)
           || ngx_http_obs_header_matches(h, &v->header);
}


/* As nginx reads a header name for $http_: any case, '-' as '_'. */

static ngx_uint_t
ngx_http_obs_header_matches(ngx_table_elt_t *h, ngx_str_t *name)
{
    ngx_uint_t  k;

    for (k = 0; k < name->len; k++) {
        if (ngx_http_obs_underscored(h->lowcase_key[k]) != name->data[k]) {
            return 0;
        }
    }

    return 1;
}


static u_char
ngx_http_obs_underscored(u_char ch)
{
    return ch == '-' ? '_' : ch;
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

        ctx = ngx_palloc(r->pool, sizeof(ngx_http_obs_ctx_t));
        if (ctx == NULL) {
            return NULL;
        }


        /* a subrequest continues its main request's span */

        parent = ngx_http_obs_get_ctx(r->main);
        if (parent == NULL) {
            return NULL;
        }

        *ctx = *parent;
        ctx->injected = 0;
        ctx->route_set = 0;
        ctx->content_reached = 0;
        ctx->attempts = 0;

        olcf = ngx_http_get_module_loc_conf(r, ngx_http_obs_module);
        ngx_http_obs_set_attempt_id(ctx, 0, olcf);

        ngx_http_set_ctx(r, ctx, ngx_http_obs_module);
        return ctx;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    ctx = ngx_http_obs_alloc_ctx(r->connection->log);
    if (ctx == NULL) {
        return NULL;
    }

    ngx_memzero(ctx, offsetof(ngx_http_obs_ctx_t, start_wall_us));

    cln->handler = ngx_http_obs_ctx_release;
    cln->data = ctx;

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


static void
ngx_http_obs_start_trace(ngx_http_request_t *r, ngx_http_obs_ctx_t *ctx)
{
    ngx_http_obs_found_t      found;
    ngx_http_obs_loc_conf_t  *olcf;

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_obs_module);

    /* a tenant read from a header is found in the same pass */

    found.tenant = (olcf->tenant && olcf->tenant->header.len) ? olcf->tenant
                                                               : NULL;

    ngx_http_obs_find_headers(r, &found);

    if (found.request_id) {
        ctx->request_id = found.request_id->value;
    }

    if (found.tenant && found.tenant_headers <= 1) {
        ctx->tenant_of = found.tenant;

        if (found.tenant_header) {
            ctx->tenant_raw = found.tenant_header->value;
        }
    }

    ctx->in_traceparent = found.traceparent;
    ctx->in_tracestate = found.tracestate;
    ctx->in_traceparents = found.traceparents;
    ctx->in_tracestates = found.tracestates;

    if (!(olcf->trace_context & NGX_HTTP_OBS_TRACE_EXTRACT)
        || ngx_http_obs_extract(r, ctx, &found) != NGX_OK)
    {
        ngx_http_obs_new_id(ctx->trace_id, OBS_TRACE_ID_LEN);
        ctx->has_parent = 0;
        ngx_str_null(&ctx->tracestate);

        ctx->flags = OBS_FLAG_RANDOM;

        if (olcf->sample_threshold == NGX_HTTP_OBS_SAMPLE_ALL
            || ngx_http_obs_random() < olcf->sample_threshold)
        {
            ctx->flags |= OBS_FLAG_SAMPLED;
        }
    }

    ngx_http_obs_new_id(ctx->span_id, OBS_SPAN_ID_LEN);
    ngx_http_obs_set_attempt_id(ctx, 0, olcf);
}


static ngx_int_t
ngx_http_obs_extract(ngx_http_request_t *r, ngx_http_obs_ctx_t *ctx,
    ngx_http_obs_found_t *found)
{
    long               len;
    u_char            *p;
    obs_traceparent_t  tp;

    if (found->traceparents != 1
        || obs_traceparent_parse((char *) found->traceparent->value.data,
                                 found->traceparent->value.len, &tp)
           != 0)
    {
        return NGX_DECLINED;
    }

    ngx_memcpy(ctx->trace_id, tp.trace_id, OBS_TRACE_ID_LEN);
    ngx_memcpy(ctx->parent_id, tp.parent_id, OBS_SPAN_ID_LEN);
    ctx->flags = tp.flags & (OBS_FLAG_SAMPLED | OBS_FLAG_RANDOM);
    ctx->has_parent = 1;

    ngx_str_null(&ctx->tracestate);

    if (found->tracestates == 0
        || found->tracestates > NGX_HTTP_OBS_MAX_TRACESTATE_HEADERS)
    {
        return NGX_OK;
    }

    /* the values, and a comma where two headers' lists join */
    p = ngx_pnalloc(r->pool, found->states_len + found->tracestates);
    if (p == NULL) {
        return NGX_OK;
    }

    len = obs_tracestate_combine(found->states, found->tracestates,
                                 (char *) p);

    if (len > 0) {
        ctx->tracestate.data = p;
        ctx->tracestate.len = (size_t) len;
    }

    return NGX_OK;
}


static void
ngx_http_obs_find_headers(ngx_http_request_t *r, ngx_http_obs_found_t *found)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    ngx_memzero(found, offsetof(ngx_http_obs_found_t, tenant));
    found->tenant_header = NULL;
    found->tenant_headers = 0;
    found->states_len = 0;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        /* first: the value may read a header the module reads too */

        if (found->tenant && ngx_http_obs_header_is_var(&h[i], found->tenant))
        {
            found->tenant_header = &h[i];
            found->tenant_headers++;
        }

        if (ngx_http_obs_header_is(&h[i], &ngx_http_obs_traceparent_name)) {
            found->traceparent = &h[i];
            found->traceparents++;
            continue;
        }

        if (ngx_http_obs_header_is(&h[i], &ngx_http_obs_tracestate_name)) {
            if (found->tracestates < NGX_HTTP_OBS_MAX_TRACESTATE_HEADERS) {
                found->states[found->tracestates].data =
                                              (char *) h[i].value.data;
                found->states[found->tracestates].len = h[i].value.len;
                found->states_len += h[i].value.len;
            }

            found->tracestate = &h[i];
            found->tracestates++;
            continue;
        }

        if (ngx_http_obs_header_is(&h[i], &ngx_http_obs_request_id_name)) {
            found->request_id = &h[i];
        }
    }
}


/*
 * Header names arrive in any case; lowcase_key is nginx's lowercase copy.
 * Length and first letter rule out nearly every other header for free.
 */

static ngx_int_t
ngx_http_obs_header_is(ngx_table_elt_t *h, ngx_str_t *name)
{
    return h->key.len == name->len
           && h->lowcase_key[0] == name->data[0]
           && ngx_http_obs_same(h->lowcase_key, name->data, name->len);
}


static ngx_int_t
ngx_http_obs_rebuild_headers(ngx_http_request_t *r, ngx_http_obs_ctx_t *ctx)
{
    ngx_uint_t        i;
    ngx_list_t        headers;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *copy;

    if (ngx_list_init(&headers, r->pool, 20, sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (ngx_http_obs_header_is(&h[i], &ngx_http_obs_traceparent_name)
            || ngx_http_obs_header_is(&h[i], &ngx_http_obs_tracestate_name))
        {
            continue;
        }

        copy = ngx_list_push(&headers);
        if (copy == NULL) {
            return NGX_ERROR;
        }

        *copy = h[i];
    }

    if (ngx_http_obs_push_header(&headers, &ngx_http_obs_traceparent_name,
                                 ngx_http_obs_traceparent_hash,
                                 ctx->traceparent, OBS_TRACEPARENT_LEN)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ctx->tracestate.len
        && ngx_http_obs_push_header(&headers, &ngx_http_obs_tracestate_name,
                                    ngx_http_obs_tracestate_hash,
                                    ctx->tracestate.data,
                                    ctx->tracestate.len)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    r->headers_in.headers = headers;

    return NGX_OK;
}


static ngx_int_t
ngx_http_obs_push_header(ngx_list_t *headers, ngx_str_t *name,
    ngx_uint_t hash, u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = hash;
    h->key = *name;
    h->lowcase_key = name->data;
    h->value.data = value;
    h->value.len = len;

    return NGX_OK;
}
