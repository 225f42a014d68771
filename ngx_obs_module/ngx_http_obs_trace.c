/*
 * A request's W3C trace context: taken from the client's traceparent and
 * tracestate (obs_trace_context extract) or started anew with the
 * sampling decision, the gateway's own span id, and injected into the
 * request that goes upstream (each attempt's parent id is patched in by
 * ngx_http_obs_upstream.c).  The parsers are plain C, obs_tracecontext.c;
 * the headers are found by ngx_http_obs_headers.c.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_module.h"


static ngx_int_t ngx_http_obs_extract(ngx_http_request_t *r,
    ngx_http_obs_ctx_t *ctx, ngx_http_obs_found_t *found);
static ngx_int_t ngx_http_obs_rebuild_headers(ngx_http_request_t *r,
    ngx_http_obs_ctx_t *ctx);
static ngx_int_t ngx_http_obs_push_header(ngx_list_t *headers,
    ngx_str_t *name, ngx_uint_t hash, u_char *value, size_t len);


static ngx_str_t   ngx_http_obs_traceparent_name = ngx_string("traceparent");
static ngx_str_t   ngx_http_obs_tracestate_name = ngx_string("tracestate");
static ngx_uint_t  ngx_http_obs_traceparent_hash;
static ngx_uint_t  ngx_http_obs_tracestate_hash;


/* Computes the header name hashes injection needs (at configuration). */

void
ngx_http_obs_trace_init(void)
{
    ngx_http_obs_traceparent_hash = ngx_hash_key(
        ngx_http_obs_traceparent_name.data,
        ngx_http_obs_traceparent_name.len);
    ngx_http_obs_tracestate_hash = ngx_hash_key(
        ngx_http_obs_tracestate_name.data,
        ngx_http_obs_tracestate_name.len);
}


/*
 * Starts the request's trace: the client's, when extraction is on and its
 * traceparent is valid, else a new one sampled as obs_trace_sample says;
 * either way with a span id of its own.  The one pass over the headers
 * also finds X-Request-ID and obs_tenant's header for the context.
 */

void
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

    len = obs_tracestate_combine(found->states, found->tracestates,
                                 (char *) ctx->tracestate_buf);

    if (len > 0) {
        ctx->tracestate.data = ctx->tracestate_buf;
        ctx->tracestate.len = (size_t) len;
    }

    return NGX_OK;
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
