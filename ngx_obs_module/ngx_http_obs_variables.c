/*
 * $obs_trace_id, $obs_span_id, $obs_parent_id, $obs_traceparent,
 * $obs_sampled, $obs_route and $obs_tenant.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_module.h"


typedef enum {
    NGX_HTTP_OBS_VAR_TRACE_ID = 0,
    NGX_HTTP_OBS_VAR_SPAN_ID,
    NGX_HTTP_OBS_VAR_PARENT_ID,
    NGX_HTTP_OBS_VAR_TRACEPARENT,
    NGX_HTTP_OBS_VAR_SAMPLED
} ngx_http_obs_var_e;


static ngx_int_t ngx_http_obs_trace_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_obs_off_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_obs_route_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_obs_tenant_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_obs_hex_value(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uint8_t *bytes, size_t n);


static ngx_http_variable_t  ngx_http_obs_vars[] = {

    { ngx_string("obs_trace_id"), NULL, ngx_http_obs_trace_variable,
      NGX_HTTP_OBS_VAR_TRACE_ID, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("obs_span_id"), NULL, ngx_http_obs_trace_variable,
      NGX_HTTP_OBS_VAR_SPAN_ID, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("obs_parent_id"), NULL, ngx_http_obs_trace_variable,
      NGX_HTTP_OBS_VAR_PARENT_ID, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("obs_traceparent"), NULL, ngx_http_obs_trace_variable,
      NGX_HTTP_OBS_VAR_TRACEPARENT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("obs_sampled"), NULL, ngx_http_obs_trace_variable,
      NGX_HTTP_OBS_VAR_SAMPLED, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("obs_route"), NULL, ngx_http_obs_route_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("obs_tenant"), NULL, ngx_http_obs_tenant_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_obs_add_variables(ngx_conf_t *cf)
{
    return ngx_http_obs_add_variable_table(cf, ngx_http_obs_vars);
}


/* Adds a table of variables ending in ngx_http_null_variable. */

ngx_int_t
ngx_http_obs_add_variable_table(ngx_conf_t *cf, ngx_http_variable_t *vars)
{
    ngx_http_variable_t  *var, *v;

    for (v = vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/*
 * The ids stay the same for the whole request, but their context can be
 * re-found after an internal redirect, so the values are not cached.
 */

static ngx_int_t
ngx_http_obs_trace_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_obs_ctx_t       *ctx;
    ngx_http_obs_loc_conf_t  *olcf;

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_obs_module);

    if (!olcf->enable) {
        return ngx_http_obs_off_variable(r, v, data);
    }

    ctx = ngx_http_obs_get_ctx(r);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    switch (data) {

    case NGX_HTTP_OBS_VAR_TRACE_ID:
        return ngx_http_obs_hex_value(r, v, ctx->trace_id, OBS_TRACE_ID_LEN);

    case NGX_HTTP_OBS_VAR_SPAN_ID:
        return ngx_http_obs_hex_value(r, v, ctx->span_id, OBS_SPAN_ID_LEN);

    case NGX_HTTP_OBS_VAR_PARENT_ID:
        if (!ctx->has_parent) {
            v->len = 0;
            v->data = (u_char *) "";
            break;
        }

        return ngx_http_obs_hex_value(r, v, ctx->parent_id, OBS_SPAN_ID_LEN);

    case NGX_HTTP_OBS_VAR_TRACEPARENT:
        v->len = OBS_TRACEPARENT_LEN;
        v->data = ctx->traceparent;
        break;

    default: /* NGX_HTTP_OBS_VAR_SAMPLED */
        v->len = 1;
        v->data = (u_char *) ((ctx->flags & OBS_FLAG_SAMPLED) ? "1" : "0");
        break;
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * Under "obs off" the module makes up no ids: the variables show the
 * client's trace context as it came (and so as it goes upstream), or empty.
 */

static ngx_int_t
ngx_http_obs_off_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_uint_t          n;
    ngx_table_elt_t    *h;
    obs_traceparent_t   tp;

    h = ngx_http_obs_incoming_traceparent(r, &n);

    if (data == NGX_HTTP_OBS_VAR_TRACEPARENT && h) {
        v->len = h->value.len;
        v->data = h->value.data;

    } else if (data == NGX_HTTP_OBS_VAR_TRACE_ID
               || data == NGX_HTTP_OBS_VAR_PARENT_ID
               || data == NGX_HTTP_OBS_VAR_SAMPLED)
    {
        if (n == 1
            && obs_traceparent_parse((char *) h->value.data, h->value.len,
                                     &tp) == 0)
        {
            if (data == NGX_HTTP_OBS_VAR_TRACE_ID) {
                return ngx_http_obs_hex_value(r, v, tp.trace_id,
                                              OBS_TRACE_ID_LEN);
            }

            if (data == NGX_HTTP_OBS_VAR_PARENT_ID) {
                return ngx_http_obs_hex_value(r, v, tp.parent_id,
                                              OBS_SPAN_ID_LEN);
            }

            v->len = 1;
            v->data = (u_char *) ((tp.flags & OBS_FLAG_SAMPLED) ? "1" : "0");

        } else {
            v->len = (data == NGX_HTTP_OBS_VAR_SAMPLED) ? 1 : 0;
            v->data = (u_char *) "0";
        }

    } else {
        v->len = 0;
        v->data = (u_char *) "";
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_obs_route_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_obs_ctx_t  *ctx;

    ctx = ngx_http_obs_get_ctx(r->main);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    if (!ctx->route_set) {
        ngx_http_obs_set_route(r->main, ctx);
    }

    v->len = ctx->route.len;
    v->data = ctx->route.data;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_obs_tenant_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t  tenant;

    if (ngx_http_obs_tenant(r, &tenant) != NGX_OK) {
        return NGX_ERROR;
    }

    v->len = tenant.len;
    v->data = tenant.data;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_obs_hex_value(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uint8_t *bytes, size_t n)
{
    v->data = ngx_pnalloc(r->pool, 2 * n);
    if (v->data == NULL) {
        return NGX_ERROR;
    }

    hex_encode((char *) v->data, bytes, n);

    v->len = 2 * n;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}
