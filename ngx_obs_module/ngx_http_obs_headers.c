/*
 * The client's request headers, read in one pass: the trace headers, their
 * values gathered for tracestate's combination, X-Request-ID, and the
 * header a lone $http_ value reads (obs_tenant's, obs_jwt's token), found
 * as nginx finds it for the variable but compared whole first.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_module.h"


static ngx_uint_t ngx_http_obs_header_is_var(ngx_table_elt_t *h,
    ngx_http_obs_value_t *v);
static ngx_uint_t ngx_http_obs_header_matches(ngx_table_elt_t *h,
    ngx_str_t *name);
static u_char ngx_http_obs_underscored(u_char ch);


static ngx_str_t   ngx_http_obs_traceparent_name = ngx_string("traceparent");
static ngx_str_t   ngx_http_obs_tracestate_name = ngx_string("tracestate");
static ngx_str_t   ngx_http_obs_request_id_name = ngx_string("x-request-id");


/*
 * Finds the headers of the request the module reads; found->tenant, set
 * by the caller, is a lone $http_ value whose header to find too, or NULL.
 */

void
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
