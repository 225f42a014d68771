/*
 * The per-request record: everything the sidecar needs for RED metrics,
 * the structured log line and the gateway span, encoded with protobuf-c
 * straight into the worker's batch buffer.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_module.h"
#include "obs/v1/record.pb-c.h"


#define NGX_HTTP_OBS_MAX_PATH        1024
#define NGX_HTTP_OBS_MAX_USER_AGENT  512
#define NGX_HTTP_OBS_MAX_REQUEST_ID  128
#define NGX_HTTP_OBS_MAX_VALUE       256

/*
 * What a record needs besides its text: every key and varint at their
 * longest (12 bytes) for the record's fields and for each attempt's.
 */
#define NGX_HTTP_OBS_RECORD_FIXED    (32 * 12)
#define NGX_HTTP_OBS_ATTEMPT_FIXED   (12 + 8 * 12)


typedef struct {
    Obs__V1__Record            rec;
    size_t                     bound;       /* most bytes it can pack to */
} ngx_http_obs_builder_t;


static ngx_uint_t ngx_http_obs_status(ngx_http_request_t *r);
static void ngx_http_obs_record_upstreams(ngx_http_request_t *r,
    ngx_http_obs_ctx_t *ctx, ngx_http_obs_builder_t *b,
    Obs__V1__UpstreamAttempt *attempts, Obs__V1__UpstreamAttempt **ptrs);
static void ngx_http_obs_upstream_name(ngx_http_request_t *r,
    ngx_http_obs_builder_t *b, ngx_http_upstream_srv_conf_t *uscf);
static uint64_t ngx_http_obs_msec_to_usec(ngx_msec_t ms);
static void ngx_http_obs_text(ngx_http_obs_builder_t *b,
    ProtobufCBinaryData *field, u_char *data, size_t len, size_t max);


ngx_int_t
ngx_http_obs_record(ngx_http_request_t *r, ngx_http_obs_ctx_t *ctx)
{
    u_char                    *p, *query;
    size_t                     size;
    uint64_t                   start, now;
    ngx_str_t                  tenant, service;
    ngx_time_t                *tp;
    ngx_connection_t          *c;
    ngx_http_obs_loc_conf_t   *olcf;
    ngx_http_obs_builder_t     b = { OBS__V1__RECORD__INIT,
                                     NGX_HTTP_OBS_RECORD_FIXED };
    Obs__V1__UpstreamAttempt   attempts[NGX_HTTP_OBS_MAX_ATTEMPTS];
    Obs__V1__UpstreamAttempt  *ptrs[NGX_HTTP_OBS_MAX_ATTEMPTS];

    c = r->connection;
    olcf = ngx_http_get_module_loc_conf(r, ngx_http_obs_module);

    tp = ngx_timeofday();
    start = (uint64_t) r->start_sec * 1000 + r->start_msec;
    now = (uint64_t) tp->sec * 1000 + tp->msec;

    b.rec.start_time_unix_nano = start * 1000000;
    b.rec.duration_us = now > start ? (now - start) * 1000 : 0;

    ngx_http_obs_text(&b, &b.rec.method, r->method_name.data,
                      r->method_name.len, NGX_HTTP_OBS_MAX_VALUE);
    ngx_http_obs_text(&b, &b.rec.route, ctx->route.data, ctx->route.len,
                      OBS_ROUTE_MAX_LEN);

    /* the query string may carry secrets: it never leaves the gateway */

    p = r->unparsed_uri.data;
    size = r->unparsed_uri.len;
    query = p ? ngx_strlchr(p, p + size, '?') : NULL;

    if (query) {
        size = query - p;
    }

    ngx_http_obs_text(&b, &b.rec.path, p, size, NGX_HTTP_OBS_MAX_PATH);

    b.rec.status = ngx_http_obs_status(r);
    b.rec.request_bytes = r->request_length;
    b.rec.response_bytes = c->sent;
    b.rec.response_body_bytes = c->sent > (off_t) r->header_size
                              ? c->sent - r->header_size : 0;

    if (r->headers_in.content_length_n > 0) {
        b.rec.request_body_bytes = r->headers_in.content_length_n;

    } else if (r->request_body) {
        b.rec.request_body_bytes = r->request_body->received;
    }

    ngx_http_obs_record_upstreams(r, ctx, &b, attempts, ptrs);

    if (ngx_http_obs_tenant(r, &tenant) == NGX_OK) {
        ngx_http_obs_text(&b, &b.rec.tenant, tenant.data, tenant.len,
                          OBS_TENANT_MAX_LEN);
    }

    if (olcf->service
        && ngx_http_obs_value(r, olcf->service, &service) == NGX_OK)
    {
        ngx_http_obs_text(&b, &b.rec.service, service.data, service.len,
                          NGX_HTTP_OBS_MAX_VALUE);
    }

    ngx_http_obs_text(&b, &b.rec.client_address, c->addr_text.data,
                      c->addr_text.len, NGX_HTTP_OBS_MAX_VALUE);

    if (r->headers_in.user_agent) {
        ngx_http_obs_text(&b, &b.rec.user_agent,
                          r->headers_in.user_agent->value.data,
                          r->headers_in.user_agent->value.len,
                          NGX_HTTP_OBS_MAX_USER_AGENT);
    }

    ngx_http_obs_text(&b, &b.rec.request_id, ctx->request_id.data,
                      ctx->request_id.len, NGX_HTTP_OBS_MAX_REQUEST_ID);

    ngx_http_obs_text(&b, &b.rec.trace_id, ctx->trace_id, OBS_TRACE_ID_LEN,
                      OBS_TRACE_ID_LEN);
    ngx_http_obs_text(&b, &b.rec.span_id, ctx->span_id, OBS_SPAN_ID_LEN,
                      OBS_SPAN_ID_LEN);

    if (ctx->has_parent) {
        ngx_http_obs_text(&b, &b.rec.parent_span_id, ctx->parent_id,
                          OBS_SPAN_ID_LEN, OBS_SPAN_ID_LEN);
    }

    b.rec.trace_flags = ctx->flags;
    ngx_http_obs_text(&b, &b.rec.tracestate, ctx->tracestate.data,
                      ctx->tracestate.len, OBS_TRACESTATE_MAX_LEN);

#if (NGX_HTTP_SSL || NGX_COMPAT)
    if (c->ssl) {
        ngx_http_obs_text(&b, &b.rec.scheme, (u_char *) "https", 5, 5);
    } else
#endif
    {
        ngx_http_obs_text(&b, &b.rec.scheme, (u_char *) "http", 4, 4);
    }

    ngx_http_obs_text(&b, &b.rec.server_address, r->headers_in.server.data,
                      r->headers_in.server.len, NGX_HTTP_OBS_MAX_VALUE);

    if (c->local_sockaddr) {
        b.rec.server_port = ngx_inet_get_port(c->local_sockaddr);
    }

    ngx_http_obs_text(&b, &b.rec.protocol, r->http_protocol.data,
                      r->http_protocol.len, NGX_HTTP_OBS_MAX_VALUE);

    b.rec.upstream_span = olcf->upstream_span ? 1 : 0;

    p = ngx_http_obs_emit_reserve(b.bound);
    if (p == NULL) {
        return NGX_DECLINED;
    }

    size = obs__v1__record__pack(&b.rec, p);
    ngx_http_obs_emit_commit(size);

    return NGX_OK;
}


/* The same choice as the $status variable makes. */

static ngx_uint_t
ngx_http_obs_status(ngx_http_request_t *r)
{
    if (r->err_status) {
        return r->err_status;
    }

    if (r->headers_out.status) {
        return r->headers_out.status;
    }

    if (r->http_version == NGX_HTTP_VERSION_9) {
        return 9;
    }

    return 0;
}


static void
ngx_http_obs_record_upstreams(ngx_http_request_t *r, ngx_http_obs_ctx_t *ctx,
    ngx_http_obs_builder_t *b, Obs__V1__UpstreamAttempt *attempts,
    Obs__V1__UpstreamAttempt **ptrs)
{
    ngx_uint_t                  i, n;
    ngx_http_upstream_state_t  *state;
    Obs__V1__UpstreamAttempt   *a;

    if (r->upstream && r->upstream->upstream) {
        ngx_http_obs_upstream_name(r, b, r->upstream->upstream);
    }

    if (r->upstream_states == NULL || r->upstream_states->nelts == 0) {
        return;
    }

    state = r->upstream_states->elts;
    n = ngx_min(r->upstream_states->nelts, NGX_HTTP_OBS_MAX_ATTEMPTS);

    for (i = 0; i < n; i++) {
        a = &attempts[i];
        obs__v1__upstream_attempt__init(a);

        if (state[i].peer) {
            ngx_http_obs_text(b, &a->address, state[i].peer->data,
                              state[i].peer->len, NGX_HTTP_OBS_MAX_VALUE);
        }

        a->status = state[i].status;
        a->connect_time_us = ngx_http_obs_msec_to_usec(state[i].connect_time);
        a->header_time_us = ngx_http_obs_msec_to_usec(state[i].header_time);
        a->response_time_us =
                           ngx_http_obs_msec_to_usec(state[i].response_time);
        a->bytes_received = state[i].bytes_received;

        if (i < ctx->attempts) {
            ngx_http_obs_text(b, &a->span_id, ctx->attempt_ids[i],
                              OBS_SPAN_ID_LEN, OBS_SPAN_ID_LEN);
        }

        ptrs[i] = a;
    }

    b->bound += n * NGX_HTTP_OBS_ATTEMPT_FIXED;
    b->rec.n_upstreams = n;
    b->rec.upstreams = ptrs;
}


/*
 * An "upstream" block is named by its name; proxy_pass to an address makes
 * an implicit upstream whose name lacks the port, which is added back.
 */

static void
ngx_http_obs_upstream_name(ngx_http_request_t *r, ngx_http_obs_builder_t *b,
    ngx_http_upstream_srv_conf_t *uscf)
{
    u_char  *p;

    if (uscf->port == 0 || uscf->host.len > NGX_HTTP_OBS_MAX_VALUE) {
        ngx_http_obs_text(b, &b->rec.upstream_name, uscf->host.data,
                          uscf->host.len, NGX_HTTP_OBS_MAX_VALUE);
        return;
    }

    p = ngx_pnalloc(r->pool, uscf->host.len + sizeof(":65535") - 1);
    if (p == NULL) {
        return;
    }

    ngx_http_obs_text(b, &b->rec.upstream_name, p,
                      ngx_sprintf(p, "%V:%d", &uscf->host, uscf->port) - p,
                      NGX_HTTP_OBS_MAX_VALUE);
}


/* nginx marks an upstream time it never measured with (ngx_msec_t) -1 */

static uint64_t
ngx_http_obs_msec_to_usec(ngx_msec_t ms)
{
    return ms == (ngx_msec_t) -1 ? 0 : (uint64_t) ms * 1000;
}


static void
ngx_http_obs_text(ngx_http_obs_builder_t *b, ProtobufCBinaryData *field,
    u_char *data, size_t len, size_t max)
{
    field->data = data;
    field->len = data ? ngx_min(len, max) : 0;
    b->bound += field->len;
}
