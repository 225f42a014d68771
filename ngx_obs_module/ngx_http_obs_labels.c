/*
 * A request's route and tenant labels: the route from obs_route, else the
 * location's name, else (obs_route_auto, a regex location) the URI as a
 * template (obs_route.c); the tenant from obs_tenant, reduced to a safe
 * label (obs_tenant_label(), the rules of common/label_rules.h).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_module.h"


#define NGX_HTTP_OBS_UNMATCHED_ROUTE  "unmatched"


/* the last tenant value that was a valid label as it came */
static u_char      ngx_http_obs_last_tenant[OBS_TENANT_MAX_LEN];
static size_t      ngx_http_obs_last_tenant_len;


/*
 * Sets the route of the location the request is in, and that location as
 * the one whose obs_service_name applies.
 */

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
