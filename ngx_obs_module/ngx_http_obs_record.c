/*
 * The per-request record: everything the sidecar needs for RED metrics,
 * the structured log line and the gateway span, gathered from the request
 * and handed to the worker's batch.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_module.h"




static ngx_uint_t ngx_http_obs_status(ngx_http_request_t *r);
static void ngx_http_obs_record_upstreams(ngx_http_request_t *r,
    ngx_http_obs_ctx_t *ctx, ngx_http_obs_record_t *rec);
static void ngx_http_obs_upstream_name(ngx_http_obs_ctx_t *ctx,
    ngx_http_obs_record_t *rec, ngx_http_upstream_srv_conf_t *uscf);
static void ngx_http_obs_method(ngx_http_request_t *r,
    ngx_http_obs_record_t *rec);
static void ngx_http_obs_protocol(ngx_http_request_t *r,
    ngx_http_obs_record_t *rec);
static void ngx_http_obs_request_id(ngx_http_request_t *r,
    ngx_http_obs_ctx_t *ctx, ngx_http_obs_record_t *rec);
static uint64_t ngx_http_obs_msec_to_usec(ngx_msec_t ms);
static void ngx_http_obs_text(ngx_str_t *field, u_char *data, size_t len,
    size_t max);


static ngx_str_t  ngx_http_obs_methods[] = {
    ngx_string("GET"), ngx_string("HEAD"), ngx_string("POST"),
    ngx_string("PUT"), ngx_string("DELETE"), ngx_string("OPTIONS"),
    ngx_string("PATCH")
};

static ngx_str_t  ngx_http_obs_protocols[] = {
    ngx_string("HTTP/1.0"), ngx_string("HTTP/1.1"), ngx_string("HTTP/2.0"),
    ngx_string("HTTP/3.0")
};

static ngx_str_t  ngx_http_obs_http = ngx_string("http");
static ngx_str_t  ngx_http_obs_https = ngx_string("https");


ngx_int_t
ngx_http_obs_record(ngx_http_request_t *r, ngx_http_obs_ctx_t *ctx)
{
    u_char                   *p, *query;
    size_t                    size;
    ngx_connection_t         *c;
    ngx_http_obs_value_t     *service;
    ngx_http_obs_record_t     rec;
    ngx_http_obs_loc_conf_t  *olcf, *route_conf;

    c = r->connection;
    olcf = ngx_http_get_module_loc_conf(r, ngx_http_obs_module);

    /* every other field is set below, whatever the request */

    rec.stable = 0;
    rec.request_body_bytes = 0;
    rec.server_port = 0;
    rec.n_upstreams = 0;
    ngx_str_null(&rec.upstream_name);
    ngx_str_null(&rec.service);
    ngx_str_null(&rec.user_agent);

    rec.start_time_unix_nano = ctx->start_wall_us * 1000;
    rec.duration_us = ngx_http_obs_clock_us(CLOCK_MONOTONIC)
                      - ctx->start_mono_us + ctx->lead_us;

    ngx_http_obs_method(r, &rec);
    ngx_http_obs_text(&rec.route, ctx->route.data, ctx->route.len,
                      OBS_ROUTE_MAX_LEN);

    /*
     * A route the configuration did not write (obs_route_auto, a regex
     * location, a variable) is one clients choose: the sidecar bounds
     * those to a share of its caps (Record.from_request).
     */

    if (ctx->route_stable) {
        rec.stable |= NGX_HTTP_OBS_STABLE(route);
        rec.from_request = 0;

    } else {
        rec.from_request = OBS_FROM_REQUEST_ROUTE;
    }

    /*
     * The query string may carry secrets: it never leaves the gateway.  The
     * request line parser noted where it starts; otherwise memchr() looks.
     */

    p = r->unparsed_uri.data;
    size = r->unparsed_uri.len;

    if (p && r->args_start > p && r->args_start <= p + size) {
        query = r->args_start - 1;

    } else {
        query = p ? memchr(p, '?', size) : NULL;
    }

    if (query) {
        size = query - p;
    }

    ngx_http_obs_text(&rec.path, p, size, NGX_HTTP_OBS_MAX_PATH);

    rec.status = ngx_http_obs_status(r);
    rec.request_bytes = r->request_length;
    rec.response_bytes = c->sent;
    rec.response_body_bytes = c->sent > (off_t) r->header_size
                              ? c->sent - r->header_size : 0;

    if (r->headers_in.content_length_n > 0) {
        rec.request_body_bytes = r->headers_in.content_length_n;

    } else if (r->request_body) {
        rec.request_body_bytes = r->request_body->received;
    }

    ngx_http_obs_record_upstreams(r, ctx, &rec);

    if (ngx_http_obs_tenant(r, &rec.tenant) != NGX_OK) {
        ngx_str_null(&rec.tenant);
    }

    if (olcf->tenant && olcf->tenant->from_request) {
        rec.from_request |= OBS_FROM_REQUEST_TENANT;
    }

    /*
     * the service (and the obs_log_fields) of the location the route was
     * taken in, as the route
     */

    route_conf = ctx->route_conf ? ctx->route_conf : olcf;
    service = route_conf->service;

    if (service && service->constant) {
        rec.service = service->cv.value;
        rec.stable |= NGX_HTTP_OBS_STABLE(service);

    } else if (service) {
        if (service->from_request) {
            rec.from_request |= OBS_FROM_REQUEST_SERVICE;
        }

        if (ngx_http_obs_value(r, service, &rec.service) != NGX_OK) {
            ngx_str_null(&rec.service);
        }
    }

    rec.service.len = ngx_min(rec.service.len, NGX_HTTP_OBS_MAX_VALUE);

    ngx_http_obs_text(&rec.client_address, c->addr_text.data,
                      c->addr_text.len, NGX_HTTP_OBS_MAX_VALUE);

    if (r->headers_in.user_agent) {
        ngx_http_obs_text(&rec.user_agent,
                          r->headers_in.user_agent->value.data,
                          r->headers_in.user_agent->value.len,
                          NGX_HTTP_OBS_MAX_USER_AGENT);
    }

    ngx_http_obs_request_id(r, ctx, &rec);

    rec.trace_id = ctx->trace_id;
    rec.span_id = ctx->span_id;
    rec.parent_span_id = ctx->has_parent ? ctx->parent_id : NULL;
    rec.trace_flags = ctx->flags;
    ngx_http_obs_text(&rec.tracestate, ctx->tracestate.data,
                      ctx->tracestate.len, OBS_TRACESTATE_MAX_LEN);

#if (NGX_HTTP_SSL || NGX_COMPAT)
    rec.scheme = c->ssl ? ngx_http_obs_https : ngx_http_obs_http;
#else
    rec.scheme = ngx_http_obs_http;
#endif

    ngx_http_obs_text(&rec.server_address, r->headers_in.server.data,
                      r->headers_in.server.len, NGX_HTTP_OBS_MAX_VALUE);

    if (c->local_sockaddr) {

        /* the usual family without the call */

        rec.server_port = (c->local_sockaddr->sa_family == AF_INET)
                          ? ntohs(((struct sockaddr_in *)
                                   c->local_sockaddr)->sin_port)
                          : ngx_inet_get_port(c->local_sockaddr);
    }

    ngx_http_obs_protocol(r, &rec);

    rec.upstream_span = olcf->upstream_span ? 1 : 0;

    rec.n_metrics = 0;

    if (olcf->metrics) {
        ngx_http_obs_metrics_record(r, olcf, &rec);     /* obs_metric */
    }

    rec.n_fields = 0;

    if (route_conf->fields) {
        ngx_http_obs_record_fields(r, route_conf->fields, &rec);
    }

    rec.n_audit = 0;

    if (ngx_http_obs_audit_possible) {
        ngx_http_obs_audit_record(r, ctx, route_conf, &rec);
    }

    return ngx_http_obs_emit(&rec);
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
    ngx_http_obs_record_t *rec)
{
    ngx_uint_t                  i, n;
    ngx_http_obs_attempt_t     *a;
    ngx_http_upstream_state_t  *state;

    if (r->upstream && r->upstream->upstream) {
        ngx_http_obs_upstream_name(ctx, rec, r->upstream->upstream);
    }

    if (r->upstream_states == NULL || r->upstream_states->nelts == 0) {
        return;
    }

    state = r->upstream_states->elts;
    n = ngx_min(r->upstream_states->nelts, NGX_HTTP_OBS_MAX_ATTEMPTS);

    for (i = 0; i < n; i++) {
        a = &rec->upstreams[i];

        if (state[i].peer) {
            ngx_http_obs_text(&a->address, state[i].peer->data,
                              state[i].peer->len, NGX_HTTP_OBS_MAX_VALUE);

        } else {
            ngx_str_null(&a->address);
        }

        a->status = state[i].status;
        a->connect_time_us = ngx_http_obs_msec_to_usec(state[i].connect_time);
        a->header_time_us = ngx_http_obs_msec_to_usec(state[i].header_time);
        a->response_time_us = (i < ctx->attempts && ctx->attempt_us[i])
                  ? ctx->attempt_us[i]
                  : ngx_http_obs_msec_to_usec(state[i].response_time);
        a->bytes_received = state[i].bytes_received;

        /* no response header: the status is nginx's 502/504, not a reply */
        a->error = (state[i].header_time != (ngx_msec_t) -1)
                   ? NGX_HTTP_OBS_ATTEMPT_OK
                   : (state[i].status == NGX_HTTP_GATEWAY_TIME_OUT)
                   ? NGX_HTTP_OBS_ATTEMPT_TIMEOUT : NGX_HTTP_OBS_ATTEMPT_ERROR;
        a->span_id = (i < ctx->attempts) ? ctx->attempt_ids[i] : NULL;
    }

    rec->n_upstreams = n;
}


/*
 * An "upstream" block is named by its name; proxy_pass to an address makes
 * an implicit upstream whose name lacks the port, which is added back, in
 * the context rather than the request pool (the batch copies it).
 */

static void
ngx_http_obs_upstream_name(ngx_http_obs_ctx_t *ctx,
    ngx_http_obs_record_t *rec, ngx_http_upstream_srv_conf_t *uscf)
{
    u_char      *p, digits[sizeof("65535") - 1];
    ngx_uint_t   port, n;

    if (uscf->port == 0 || uscf->host.len > NGX_HTTP_OBS_MAX_VALUE) {
        ngx_http_obs_text(&rec->upstream_name, uscf->host.data,
                          uscf->host.len, NGX_HTTP_OBS_MAX_VALUE);
        rec->stable |= NGX_HTTP_OBS_STABLE(upstream_name);
        return;
    }

    p = ngx_cpymem(ctx->upstream_buf, uscf->host.data, uscf->host.len);
    *p++ = ':';

    port = uscf->port;
    n = 0;

    do {
        digits[n++] = (u_char) ('0' + port % 10);
        port /= 10;
    } while (port && n < sizeof(digits));

    while (n) {
        *p++ = digits[--n];
    }

    ngx_http_obs_text(&rec->upstream_name, ctx->upstream_buf,
                      p - ctx->upstream_buf, NGX_HTTP_OBS_MAX_VALUE);
}


/*
 * The usual methods and protocols get names with a fixed address, which the
 * batch's symbol table recognises without reading them.
 */

static void
ngx_http_obs_method(ngx_http_request_t *r, ngx_http_obs_record_t *rec)
{
    ngx_int_t  i;

    switch (r->method) {
    case NGX_HTTP_GET:     i = 0; break;
    case NGX_HTTP_HEAD:    i = 1; break;
    case NGX_HTTP_POST:    i = 2; break;
    case NGX_HTTP_PUT:     i = 3; break;
    case NGX_HTTP_DELETE:  i = 4; break;
    case NGX_HTTP_OPTIONS: i = 5; break;
    case NGX_HTTP_PATCH:   i = 6; break;
    default:               i = -1;
    }

    if (i >= 0) {
        rec->method = ngx_http_obs_methods[i];
        rec->stable |= NGX_HTTP_OBS_STABLE(method);
        return;
    }

    ngx_http_obs_text(&rec->method, r->method_name.data, r->method_name.len,
                      NGX_HTTP_OBS_MAX_VALUE);
}


static void
ngx_http_obs_protocol(ngx_http_request_t *r, ngx_http_obs_record_t *rec)
{
    ngx_int_t  i;

    switch (r->http_version) {
    case NGX_HTTP_VERSION_10: i = 0; break;
    case NGX_HTTP_VERSION_11: i = 1; break;
    case NGX_HTTP_VERSION_20: i = 2; break;
#ifdef NGX_HTTP_VERSION_30
    case NGX_HTTP_VERSION_30: i = 3; break;
#endif
    default:                  i = -1;
    }

    if (i >= 0) {
        rec->protocol = ngx_http_obs_protocols[i];
        rec->stable |= NGX_HTTP_OBS_STABLE(protocol);
        return;
    }

    ngx_http_obs_text(&rec->protocol, r->http_protocol.data,
                      r->http_protocol.len, NGX_HTTP_OBS_MAX_VALUE);
}


/*
 * The client's X-Request-ID, or else nginx's own $request_id when the
 * request has one: whatever uses $request_id (access_log, which runs before
 * this log handler, proxy_set_header, add_header) makes it, and the record
 * then correlates with it.  The module does not make one itself: nginx's
 * RAND_bytes() per request, or even interning a unique id per record, costs
 * more than the module's whole budget allows for a value nobody reads.
 */

static void
ngx_http_obs_request_id(ngx_http_request_t *r, ngx_http_obs_ctx_t *ctx,
    ngx_http_obs_record_t *rec)
{
    ngx_http_variable_value_t  *vv;
    ngx_http_obs_main_conf_t   *omcf;

    if (ctx->request_id.len) {
        ngx_http_obs_text(&rec->request_id, ctx->request_id.data,
                          ctx->request_id.len, NGX_HTTP_OBS_MAX_REQUEST_ID);
        return;
    }

    omcf = ngx_http_get_module_main_conf(r, ngx_http_obs_module);

    if (omcf->request_id_index == NGX_ERROR) {
        ngx_str_null(&rec->request_id);
        return;
    }

    vv = &r->variables[omcf->request_id_index];

    if (!vv->valid || vv->not_found) {
        ngx_str_null(&rec->request_id);
        return;
    }

    ngx_http_obs_text(&rec->request_id, vv->data, vv->len,
                      NGX_HTTP_OBS_MAX_REQUEST_ID);
}


/* nginx marks an upstream time it never measured with (ngx_msec_t) -1 */

static uint64_t
ngx_http_obs_msec_to_usec(ngx_msec_t ms)
{
    return ms == (ngx_msec_t) -1 ? 0 : (uint64_t) ms * 1000;
}


static void
ngx_http_obs_text(ngx_str_t *field, u_char *data, size_t len, size_t max)
{
    field->data = data;
    field->len = data ? ngx_min(len, max) : 0;
}
