/*
 * A request's token, verified when a $obs_jwt_* variable is read, or in
 * the access phase with "obs_jwt require" (just before the content handler
 * in a subrequest, which has no access phase).  The verdict is kept for the
 * whole request (internal redirects and subrequests too), but reused only
 * for the same token under the same policy; each verdict is counted in the
 * worker's counters, which ride the batch headers sent to the sidecar.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_jwt_module.h"
#include "ngx_http_obs_module.h"
#include "obs/v1/record.pb-c.h"


#define NGX_HTTP_OBS_JWT_UNVERIFIED  TENANT_UNVERIFIED  /* label_rules.h */

/*
 * What a source that comes more than once is judged as: no token is this
 * text (it has no dots), so under any policy it is malformed, the verdict
 * of a repeated source, and a verdict on either may serve the other.
 */
#define NGX_HTTP_OBS_JWT_REPEATED    "repeated"


/* The last verdict: status, tenant and user of token under policy. */

typedef struct {
    const obs_jwt_policy_t    *policy;     /* NULL: none yet */
    ngx_str_t                  token;      /* a copy of the token judged */
    obs_jwt_status_e           status;
    ngx_str_t                  tenant;
    ngx_str_t                  user;

    /* "require" refused the request: what its token claimed (audit) */
    ngx_uint_t                 refused;
    obs_jwt_status_e           refused_status;
    obs_jwt_described_t       *described;
} ngx_http_obs_jwt_ctx_t;


typedef enum {
    NGX_HTTP_OBS_JWT_VAR_TENANT = 0,
    NGX_HTTP_OBS_JWT_VAR_USER,
    NGX_HTTP_OBS_JWT_VAR_STATUS
} ngx_http_obs_jwt_var_e;


static ngx_http_obs_jwt_ctx_t *ngx_http_obs_jwt_check(ngx_http_request_t *r);
static ngx_http_obs_jwt_ctx_t *ngx_http_obs_jwt_get_ctx(
    ngx_http_request_t *r);
static ngx_http_obs_jwt_ctx_t *ngx_http_obs_jwt_find_ctx(
    ngx_http_request_t *r);
static void ngx_http_obs_jwt_ctx_marker(void *data);
static ngx_int_t ngx_http_obs_jwt_get_token(ngx_http_request_t *r,
    ngx_http_obs_jwt_loc_conf_t *jlcf, ngx_str_t *token);
static ngx_uint_t ngx_http_obs_jwt_cookies(ngx_http_request_t *r,
    ngx_str_t *name);
static ngx_uint_t ngx_http_obs_jwt_pairs(ngx_str_t *text, ngx_str_t *name,
    u_char sep1, u_char sep2);
static obs_jwt_status_e ngx_http_obs_jwt_verify(ngx_http_request_t *r,
    const obs_jwt_policy_t *p, ngx_str_t *token, obs_jwt_claims_t *claims);
static ngx_int_t ngx_http_obs_jwt_keep(ngx_http_request_t *r,
    ngx_http_obs_jwt_ctx_t *ctx, ngx_str_t *token, obs_jwt_status_e status,
    const obs_jwt_claims_t *claims);
static ngx_int_t ngx_http_obs_jwt_challenge(ngx_http_request_t *r,
    ngx_http_obs_jwt_loc_conf_t *jlcf, ngx_http_obs_jwt_ctx_t *ctx);
static ngx_int_t ngx_http_obs_jwt_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_variable_t  ngx_http_obs_jwt_vars[] = {

    { ngx_string("obs_jwt_tenant"), NULL, ngx_http_obs_jwt_variable,
      NGX_HTTP_OBS_JWT_VAR_TENANT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("obs_jwt_user"), NULL, ngx_http_obs_jwt_variable,
      NGX_HTTP_OBS_JWT_VAR_USER, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("obs_jwt_status"), NULL, ngx_http_obs_jwt_variable,
      NGX_HTTP_OBS_JWT_VAR_STATUS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/*
 * The worker's counts by result, and its cache hits, not yet delivered;
 * "sending" is what the header being sent carries.
 */
static uint64_t          ngx_http_obs_jwt_counts[OBS_JWT_RESULTS + 1];
static uint64_t          ngx_http_obs_jwt_sending[OBS_JWT_RESULTS + 1];
#define NGX_HTTP_OBS_JWT_CACHE_HITS  OBS_JWT_RESULTS

static obs_jwt_cache_t  *ngx_http_obs_jwt_cache;


ngx_int_t
ngx_http_obs_jwt_add_variables(ngx_conf_t *cf)
{
    return ngx_http_obs_add_variable_table(cf, ngx_http_obs_jwt_vars);
}


ngx_int_t
ngx_http_obs_jwt_access_handler(ngx_http_request_t *r)
{
    ngx_http_obs_jwt_ctx_t       *ctx;
    ngx_http_obs_jwt_loc_conf_t  *jlcf;

    jlcf = ngx_http_get_module_loc_conf(r, ngx_http_obs_jwt_module);

    if (jlcf->mode != NGX_HTTP_OBS_JWT_REQUIRE) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_obs_jwt_check(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->status == OBS_JWT_VALID) {
        return NGX_OK;
    }

    return ngx_http_obs_jwt_challenge(r, jlcf, ctx);
}


/*
 * nginx runs no access phase for a subrequest (auth_request, SSI, mirror),
 * and so no access check: "require" is checked there when the rewrite phase
 * begins, before the location's own "return" or "rewrite" (an auth_request
 * location that only says "return 204" would pass every token otherwise),
 * and again in the precontent phase; a subrequest without a valid token
 * answers 401 (which auth_request passes on, challenge included).
 * "satisfy" has no say.
 */

ngx_int_t
ngx_http_obs_jwt_subrequest_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (r == r->main) {
        return NGX_DECLINED;
    }

    rc = ngx_http_obs_jwt_access_handler(r);

    /*
     * NGX_OK would end the subrequest in the rewrite phase, and skip
     * the precontent phase's other handlers (try_files, mirror)
     */

    return rc == NGX_OK ? NGX_DECLINED : rc;
}


ngx_int_t
ngx_http_obs_jwt_init_worker(ngx_cycle_t *cycle)
{
    uint64_t                       seed;
    ngx_http_obs_jwt_main_conf_t  *jmcf;

    jmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_obs_jwt_module);

    if (jmcf == NULL || !jmcf->used || jmcf->cache_size == 0) {
        return NGX_OK;
    }

    seed = ((uint64_t) ngx_random() << 32) ^ (uint64_t) ngx_random()
           ^ (uint64_t) ngx_pid;

    ngx_http_obs_jwt_cache = obs_jwt_cache_create(jmcf->cache_size, seed);
    if (ngx_http_obs_jwt_cache == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "obs_jwt: no memory for a cache of %ui tokens",
                      jmcf->cache_size);
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_http_obs_jwt_exit_worker(void)
{
    obs_jwt_cache_destroy(ngx_http_obs_jwt_cache);
    ngx_http_obs_jwt_cache = NULL;
    obs_jwt_done();
}


void
ngx_http_obs_jwt_batch_header(struct Obs__V1__BatchHeader *h)
{
    uint64_t  *c = ngx_http_obs_jwt_sending;

    ngx_memcpy(c, ngx_http_obs_jwt_counts, sizeof(ngx_http_obs_jwt_counts));

    h->jwt_valid = c[OBS_JWT_VALID];
    h->jwt_missing = c[OBS_JWT_MISSING];
    h->jwt_malformed = c[OBS_JWT_MALFORMED];
    h->jwt_alg_not_allowed = c[OBS_JWT_ALG_NOT_ALLOWED];
    h->jwt_unknown_key = c[OBS_JWT_UNKNOWN_KEY];
    h->jwt_bad_signature = c[OBS_JWT_BAD_SIGNATURE];
    h->jwt_expired = c[OBS_JWT_EXPIRED];
    h->jwt_not_yet_valid = c[OBS_JWT_NOT_YET_VALID];
    h->jwt_bad_issuer = c[OBS_JWT_BAD_ISSUER];
    h->jwt_bad_audience = c[OBS_JWT_BAD_AUDIENCE];
    h->jwt_missing_claim = c[OBS_JWT_MISSING_CLAIM];
    h->jwt_cache_hits = c[NGX_HTTP_OBS_JWT_CACHE_HITS];
}


void
ngx_http_obs_jwt_batch_sent(void)
{
    ngx_uint_t  i;

    for (i = 0; i <= OBS_JWT_RESULTS; i++) {
        ngx_http_obs_jwt_counts[i] -= ngx_http_obs_jwt_sending[i];
        ngx_http_obs_jwt_sending[i] = 0;
    }
}


/*
 * The verdict on the token this location reads, under its policy; NULL: no
 * memory.  A verdict is a function of the policy and the token bytes alone
 * (and of the time, which a request does not outlive by much), so the
 * request's last one is reused only for the same policy object and the
 * same bytes: wherever the token now comes from (obs_jwt_token), and
 * whatever a redirect or a subrequest changed, anything else is judged
 * again, which the worker's cache makes cheap for a known token.
 */

static ngx_http_obs_jwt_ctx_t *
ngx_http_obs_jwt_check(ngx_http_request_t *r)
{
    ngx_str_t                     token;
    obs_jwt_claims_t              claims;
    obs_jwt_status_e              status;
    ngx_http_obs_jwt_ctx_t       *ctx;
    ngx_http_obs_jwt_loc_conf_t  *jlcf;

    jlcf = ngx_http_get_module_loc_conf(r, ngx_http_obs_jwt_module);

    ctx = ngx_http_obs_jwt_get_ctx(r);
    if (ctx == NULL) {
        return NULL;
    }

    switch (ngx_http_obs_jwt_get_token(r, jlcf, &token)) {

    case NGX_OK:
        break;

    case NGX_DECLINED:
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "obs_jwt: the token's source comes more than once");
        ngx_str_set(&token, NGX_HTTP_OBS_JWT_REPEATED);
        break;

    default:
        return NULL;
    }

    if (ctx->policy == jlcf->policy
        && ctx->token.len == token.len
        && (token.len == 0
            || ngx_memcmp(ctx->token.data, token.data, token.len) == 0))
    {
        return ctx;
    }

    status = ngx_http_obs_jwt_verify(r, jlcf->policy, &token, &claims);
    ngx_http_obs_jwt_counts[status]++;

    if (status != OBS_JWT_VALID) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "obs_jwt: token not accepted: %s",
                      obs_jwt_status_names[status]);
    }

    if (ngx_http_obs_jwt_keep(r, ctx, &token, status, &claims) != NGX_OK) {
        return NULL;
    }

    ctx->policy = jlcf->policy;

    return ctx;
}


/*
 * The context lives in a pool cleanup, as realip's does, so that internal
 * redirects (which clear module contexts) and subrequests (which share the
 * pool) find the verdict instead of counting the token again.
 */

static ngx_http_obs_jwt_ctx_t *
ngx_http_obs_jwt_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t      *cln;
    ngx_http_obs_jwt_ctx_t  *ctx;

    ctx = ngx_http_obs_jwt_find_ctx(r);
    if (ctx) {
        return ctx;
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_obs_jwt_ctx_t));
    if (cln == NULL) {
        return NULL;
    }

    ctx = cln->data;
    ngx_memzero(ctx, sizeof(ngx_http_obs_jwt_ctx_t));
    cln->handler = ngx_http_obs_jwt_ctx_marker;

    ngx_http_set_ctx(r, ctx, ngx_http_obs_jwt_module);

    return ctx;
}


/* The request's context if it has one, without making one. */

static ngx_http_obs_jwt_ctx_t *
ngx_http_obs_jwt_find_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t      *cln;
    ngx_http_obs_jwt_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_obs_jwt_module);
    if (ctx) {
        return ctx;
    }

    if (r->internal || r != r->main) {
        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_obs_jwt_ctx_marker) {
                ctx = cln->data;
                ngx_http_set_ctx(r, ctx, ngx_http_obs_jwt_module);
                return ctx;
            }
        }
    }

    return NULL;
}


static void
ngx_http_obs_jwt_ctx_marker(void *data)
{
    /* marks the cleanup that holds the context: nothing to free */
}


/*
 * The token where the location says it is ("" when absent); NGX_DECLINED
 * when its header, cookie or argument comes more than once: nginx reads
 * the first, but the backend behind may read another, which nobody checked.
 */

static ngx_int_t
ngx_http_obs_jwt_get_token(ngx_http_request_t *r,
    ngx_http_obs_jwt_loc_conf_t *jlcf, ngx_str_t *token)
{
    u_char                     *p, *last;
    ngx_table_elt_t            *h;
    ngx_http_obs_jwt_source_t  *src;

    ngx_str_null(token);

    src = jlcf->token;

    if (src) {
        if (src->value.header.len) {
            return ngx_http_obs_lone_header(r, &src->value, token)
                   ? NGX_OK : NGX_DECLINED;
        }

        if (ngx_http_obs_value(r, &src->value, token) != NGX_OK) {
            return NGX_ERROR;
        }

        if (token->len == 0) {
            return NGX_OK;
        }

        if ((src->cookie.len && ngx_http_obs_jwt_cookies(r, &src->cookie) > 1)
            || (src->arg.len
                && ngx_http_obs_jwt_pairs(&r->args, &src->arg, '&', ';') > 1))
        {
            return NGX_DECLINED;
        }

        return NGX_OK;
    }

    /*
     * "Authorization: Bearer <token>", the scheme in any case (RFC 6750);
     * nginx answers 400 to a second Authorization header
     */

    h = r->headers_in.authorization;

    if (h == NULL || h->value.len < sizeof("Bearer ") - 1
        || ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) != 0)
    {
        return NGX_OK;
    }

    p = h->value.data + 7;
    last = h->value.data + h->value.len;

    while (p < last && *p == ' ') {
        p++;
    }

    token->data = p;
    token->len = last - p;

    return NGX_OK;
}


/* How many cookies of all Cookie headers are named name. */

static ngx_uint_t
ngx_http_obs_jwt_cookies(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_uint_t         n;
#if (nginx_version >= 1023000)
    ngx_table_elt_t   *h;

    n = 0;

    for (h = r->headers_in.cookie; h; h = h->next) {
        n += ngx_http_obs_jwt_pairs(&h->value, name, ';', ',');
    }
#else
    ngx_uint_t         i;
    ngx_table_elt_t  **h;

    n = 0;
    h = r->headers_in.cookies.elts;

    for (i = 0; i < r->headers_in.cookies.nelts; i++) {
        n += ngx_http_obs_jwt_pairs(&h[i]->value, name, ';', ',');
    }
#endif

    return n;
}


/*
 * How many "name=value" pairs of text (split at sep1 or sep2) have a name
 * that any reader could take for name (lowercase): in any case, %XX escapes
 * and '+' decoded, blanks around it skipped (what a trim() takes off: bytes
 * up to ' ', and 0x85 and 0xa0 as Python reads Latin-1), and ' ', '.' or
 * '[' read as '_' (PHP's names: "access.token" is $_COOKIE['access_token']).
 * Counting some that nginx would not (it matches the name as sent) only
 * refuses more.
 */

static ngx_uint_t
ngx_http_obs_jwt_pairs(ngx_str_t *text, ngx_str_t *name, u_char sep1,
    u_char sep2)
{
    u_char      *p, *last, c;
    ngx_int_t    x;
    ngx_uint_t   n, k, same;

    n = 0;
    p = text->data;
    last = p + text->len;

    while (p < last) {
        k = 0;
        same = 1;

        while (p < last && *p != '=' && *p != sep1 && *p != sep2) {
            c = *p++;

            if (c == '%' && last - p >= 2
                && (x = ngx_hextoi(p, 2)) != NGX_ERROR)
            {
                c = (u_char) x;
                p += 2;

            } else if (c == '+') {
                c = ' ';
            }

            if ((c <= ' ' || c == 0x85 || c == 0xa0)
                && (k == 0 || k == name->len))
            {
                continue;
            }

            if (k < name->len
                && (ngx_tolower(c) == name->data[k]
                    || (name->data[k] == '_'
                        && (c == ' ' || c == '.' || c == '['))))
            {
                k++;

            } else {
                same = 0;
            }
        }

        if (same && k == name->len && p < last && *p == '=') {
            n++;
        }

        while (p < last && *p != sep1 && *p != sep2) {
            p++;
        }

        p++;
    }

    return n;
}


static obs_jwt_status_e
ngx_http_obs_jwt_verify(ngx_http_request_t *r, const obs_jwt_policy_t *p,
    ngx_str_t *token, obs_jwt_claims_t *claims)
{
    int64_t                  now;
    obs_jwt_status_e         rc;
    const obs_jwt_claims_t  *cached;

    if (token->len == 0) {
        return OBS_JWT_MISSING;
    }

    now = (int64_t) ngx_time();

    if (ngx_http_obs_jwt_cache) {
        cached = obs_jwt_cache_get(ngx_http_obs_jwt_cache, p,
                                   (char *) token->data, token->len, now);
        if (cached) {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "obs_jwt: token found in the cache");
            ngx_http_obs_jwt_counts[NGX_HTTP_OBS_JWT_CACHE_HITS]++;
            *claims = *cached;
            return OBS_JWT_VALID;
        }
    }

    rc = obs_jwt_verify(p, (char *) token->data, token->len, now, claims);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "obs_jwt: token verified: %s", obs_jwt_status_names[rc]);

    if (rc == OBS_JWT_VALID && ngx_http_obs_jwt_cache) {
        obs_jwt_cache_put(ngx_http_obs_jwt_cache, p, (char *) token->data,
                          token->len, claims);
    }

    return rc;
}


/*
 * Makes a verdict the request's last: the token is copied (the memory it
 * was read from may change), and so are the claims (a cache entry may be
 * reused while we run); values already handed out stay as they were.  The
 * context says "none yet" until all of it is there.
 */

static ngx_int_t
ngx_http_obs_jwt_keep(ngx_http_request_t *r, ngx_http_obs_jwt_ctx_t *ctx,
    ngx_str_t *token, obs_jwt_status_e status, const obs_jwt_claims_t *claims)
{
    u_char  *p;
    size_t   len;

    ctx->policy = NULL;

    len = token->len;

    if (status == OBS_JWT_VALID) {
        len += claims->tenant_len + claims->user_len;
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->token.data = p;
    ctx->token.len = token->len;

    if (token->len) {
        p = ngx_cpymem(p, token->data, token->len);
    }

    ctx->status = status;

    if (status != OBS_JWT_VALID) {
        ngx_str_null(&ctx->tenant);
        ngx_str_null(&ctx->user);
        return NGX_OK;
    }

    ctx->tenant.data = p;
    ctx->tenant.len = claims->tenant_len;
    p = ngx_cpymem(p, claims->tenant, claims->tenant_len);

    ctx->user.data = p;
    ctx->user.len = claims->user_len;
    ngx_memcpy(p, claims->user, claims->user_len);

    return NGX_OK;
}


/* 401 with a Bearer challenge (RFC 6750 3): no error code when no token. */

static ngx_int_t
ngx_http_obs_jwt_challenge(ngx_http_request_t *r,
    ngx_http_obs_jwt_loc_conf_t *jlcf, ngx_http_obs_jwt_ctx_t *ctx)
{
    u_char           *p;
    size_t            len;
    ngx_table_elt_t  *h;

    len = sizeof("Bearer realm=\"\", error=\"invalid_token\", "
                 "error_description=\"\"") - 1
          + jlcf->realm.len + ngx_strlen(obs_jwt_status_names[ctx->status]);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif
    ngx_str_set(&h->key, "WWW-Authenticate");
    h->value.data = p;

    p = ngx_cpymem(p, "Bearer", 6);

    if (jlcf->realm.len) {
        p = ngx_sprintf(p, " realm=\"%V\"", &jlcf->realm);
    }

    if (ctx->status != OBS_JWT_MISSING) {
        p = ngx_sprintf(p, "%s error=\"invalid_token\", "
                        "error_description=\"%s\"",
                        jlcf->realm.len ? "," : "",
                        obs_jwt_status_names[ctx->status]);
    }

    h->value.len = p - h->value.data;
    r->headers_out.www_authenticate = h;

    /*
     * the audit trail says what the refused token claimed of itself, never
     * the token: read now, while the verdict's copy of it is at hand
     */

    ctx->refused = 1;
    ctx->refused_status = ctx->status;

    if (ngx_http_obs_audit_possible && ctx->described == NULL) {
        ctx->described = ngx_palloc(r->pool, sizeof(obs_jwt_described_t));

        if (ctx->described) {
            obs_jwt_describe((char *) ctx->token.data, ctx->token.len,
                             ctx->described);
        }
    }

    return NGX_HTTP_UNAUTHORIZED;
}


/* Whether "require" refused the request (in it or in a subrequest). */

ngx_uint_t
ngx_http_obs_jwt_refused(ngx_http_request_t *r)
{
    ngx_http_obs_jwt_ctx_t  *ctx;

    ctx = ngx_http_obs_jwt_find_ctx(r);

    return ctx && ctx->refused;
}


/*
 * The request's verdict for its audit event: the one "require" refused it
 * with, else the verdict on the token the current location reads (judged
 * now if need be, as reading $obs_jwt_tenant would), else the request's
 * last one; none where obs_jwt was never on.
 */

ngx_int_t
ngx_http_obs_jwt_audit(ngx_http_request_t *r, ngx_http_obs_jwt_audit_t *a)
{
    ngx_http_obs_jwt_ctx_t       *ctx;
    ngx_http_obs_jwt_loc_conf_t  *jlcf;

    ngx_memzero(a, sizeof(ngx_http_obs_jwt_audit_t));
    ngx_str_set(&a->tenant, NGX_HTTP_OBS_JWT_UNVERIFIED);
    ngx_str_set(&a->user, NGX_HTTP_OBS_JWT_UNVERIFIED);

    jlcf = ngx_http_get_module_loc_conf(r, ngx_http_obs_jwt_module);
    ctx = ngx_http_obs_jwt_find_ctx(r);

    if (ctx && ctx->refused) {
        a->refused = 1;
        a->status = ctx->refused_status + 1;

        if (ctx->described) {
            a->kid.data = (u_char *) ctx->described->kid;
            a->kid.len = ngx_strlen(ctx->described->kid);
            a->alg.data = (u_char *) ctx->described->alg;
            a->alg.len = ngx_strlen(ctx->described->alg);
            a->issuer.data = (u_char *) ctx->described->iss;
            a->issuer.len = ngx_strlen(ctx->described->iss);
        }

        return NGX_OK;
    }

    if (jlcf->mode != NGX_HTTP_OBS_JWT_OFF) {
        ctx = ngx_http_obs_jwt_check(r);
        if (ctx == NULL) {
            return NGX_ERROR;
        }
    }

    if (ctx == NULL || ctx->policy == NULL) {
        return NGX_OK;
    }

    a->status = ctx->status + 1;

    if (ctx->status == OBS_JWT_VALID) {
        a->tenant = ctx->tenant;
        a->user = ctx->user;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_obs_jwt_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                     s;
    ngx_http_obs_jwt_ctx_t       *ctx;
    ngx_http_obs_jwt_loc_conf_t  *jlcf;

    jlcf = ngx_http_get_module_loc_conf(r, ngx_http_obs_jwt_module);

    ctx = NULL;

    if (jlcf->mode != NGX_HTTP_OBS_JWT_OFF) {
        ctx = ngx_http_obs_jwt_check(r);
        if (ctx == NULL) {
            return NGX_ERROR;
        }
    }

    switch (data) {

    case NGX_HTTP_OBS_JWT_VAR_TENANT:
        if (ctx && ctx->status == OBS_JWT_VALID) {
            s = ctx->tenant;
        } else {
            ngx_str_set(&s, NGX_HTTP_OBS_JWT_UNVERIFIED);
        }
        break;

    case NGX_HTTP_OBS_JWT_VAR_USER:
        if (ctx && ctx->status == OBS_JWT_VALID) {
            s = ctx->user;
        } else {
            ngx_str_null(&s);
        }
        break;

    default: /* NGX_HTTP_OBS_JWT_VAR_STATUS */
        if (ctx) {
            s.data = (u_char *) obs_jwt_status_names[ctx->status];
            s.len = ngx_strlen(s.data);
        } else {
            ngx_str_set(&s, "off");
        }
    }

    v->data = s.data;
    v->len = s.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}
