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


static void ngx_http_obs_find_header(ngx_table_elt_t *h,
    ngx_http_obs_found_t *found);
static ngx_uint_t ngx_http_obs_header_is_var(ngx_table_elt_t *h,
    ngx_http_obs_value_t *v);
static ngx_uint_t ngx_http_obs_header_matches(ngx_table_elt_t *h,
    ngx_str_t *name);
static u_char ngx_http_obs_underscored(u_char ch);


static ngx_str_t   ngx_http_obs_traceparent_name = ngx_string("traceparent");
static ngx_str_t   ngx_http_obs_tracestate_name = ngx_string("tracestate");
static ngx_str_t   ngx_http_obs_request_id_name = ngx_string("x-request-id");


#define ngx_http_obs_header_bit(hash)  ((uint64_t) 1 << ((hash) & 63))


/* The bits of the headers every configuration reads (at configuration). */

void
ngx_http_obs_headers_init(ngx_http_obs_main_conf_t *omcf)
{
    omcf->header_bits = 0;

    ngx_http_obs_headers_add(omcf, &ngx_http_obs_traceparent_name);
    ngx_http_obs_headers_add(omcf, &ngx_http_obs_tracestate_name);
    ngx_http_obs_headers_add(omcf, &ngx_http_obs_request_id_name);
}


/*
 * Adds the bits of a header a lone $http_ value reads (name: lowercase,
 * '_' where the variable has it): a '_' of the variable matches '-' or '_'
 * of a header, so every such spelling gets its bit; with more '_' than a
 * 64-bit set tells apart, every header is looked at.
 */

void
ngx_http_obs_headers_add(ngx_http_obs_main_conf_t *omcf, ngx_str_t *name)
{
    u_char      spelling[NGX_HTTP_OBS_MAX_VALUE];
    ngx_uint_t  i, k, n, variant;

    n = 0;

    for (i = 0; i < name->len; i++) {
        n += (name->data[i] == '_');
    }

    if (n > 6 || name->len > NGX_HTTP_OBS_MAX_VALUE) {
        omcf->header_bits = (uint64_t) -1;
        return;
    }

    for (variant = 0; variant < ((ngx_uint_t) 1 << n); variant++) {

        for (i = 0, k = 0; i < name->len; i++) {
            spelling[i] = name->data[i];

            if (spelling[i] == '_') {
                spelling[i] = (variant & ((ngx_uint_t) 1 << k)) ? '_' : '-';
                k++;
            }
        }

        omcf->header_bits |= ngx_http_obs_header_bit(
                                       ngx_hash_key(spelling, name->len));
    }
}


/*
 * Finds the headers of the request the module reads; found->tenant, set
 * by the caller, is a lone $http_ value whose header to find too, or NULL.
 * nginx hashed each header's lowercase name as it parsed it: a header whose
 * hash has no bit in the configuration's set is none of them, which spares
 * looking at the names of nearly all the others.  (Exact: a header whose
 * lowercase name equals one the module reads has that name's hash.)
 */

void
ngx_http_obs_find_headers(ngx_http_request_t *r, ngx_http_obs_found_t *found)
{
    uint64_t                   bits;
    ngx_list_part_t           *part;
    ngx_table_elt_t           *h, *end;
    ngx_http_obs_main_conf_t  *omcf;

    ngx_memzero(found, offsetof(ngx_http_obs_found_t, tenant));
    found->tenant_header = NULL;
    found->tenant_headers = 0;

    omcf = ngx_http_get_module_main_conf(r, ngx_http_obs_module);
    bits = omcf->header_bits;

    for (part = &r->headers_in.headers.part; part; part = part->next) {

        h = part->elts;
        end = h + part->nelts;

        for ( /* void */ ; h < end; h++) {

            if (!(bits & ngx_http_obs_header_bit(h->hash))) {
                continue;
            }

            ngx_http_obs_find_header(h, found);
        }
    }
}


/*
 * Notes h if it is one of the headers find_headers looks for; a call of its
 * own, so that the loop that passes over the others stays small.
 */

#if (__GNUC__ >= 4 || defined __clang__)
__attribute__((noinline))
#endif
static void
ngx_http_obs_find_header(ngx_table_elt_t *h, ngx_http_obs_found_t *found)
{
    /* first: the value may read a header the module reads too */

    if (found->tenant && ngx_http_obs_header_is_var(h, found->tenant)) {
        found->tenant_header = h;
        found->tenant_headers++;
    }

    if (ngx_http_obs_header_is(h, &ngx_http_obs_traceparent_name)) {
        found->traceparent = h;
        found->traceparents++;
        return;
    }

    if (ngx_http_obs_header_is(h, &ngx_http_obs_tracestate_name)) {
        if (found->tracestates < NGX_HTTP_OBS_MAX_TRACESTATE_HEADERS) {
            found->states[found->tracestates].data = (char *) h->value.data;
            found->states[found->tracestates].len = h->value.len;
        }

        found->tracestate = h;
        found->tracestates++;
        return;
    }

    if (ngx_http_obs_header_is(h, &ngx_http_obs_request_id_name)) {
        found->request_id = h;
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
