/*
 * ngx_http_obs_jwt_module, nginx side: shared by
 *
 *   ngx_http_obs_jwt_module.c   directives and configuration
 *   ngx_http_obs_jwt_request.c  per-request verification, $obs_jwt_*,
 *                               the 401 of "require", per-worker counters
 *
 * and, for the counters that ride each batch header, ngx_http_obs_send.c
 * (which writes them), ngx_http_obs_batch.c and ngx_http_obs_drops.c.
 */

#ifndef _NGX_HTTP_OBS_JWT_MODULE_H_INCLUDED_
#define _NGX_HTTP_OBS_JWT_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_jwt.h"
#include "ngx_http_obs_module.h"


#define NGX_HTTP_OBS_JWT_OFF       0
#define NGX_HTTP_OBS_JWT_ON        1
#define NGX_HTTP_OBS_JWT_REQUIRE   2


/*
 * obs_jwt_token $variable.  A header, cookie or argument can come twice,
 * and nginx reads one of them while a backend may read another: those are
 * known by their prefix, to be refused when repeated.
 */
typedef struct {
    ngx_http_obs_value_t       value;        /* a lone $http_ header, too */
    ngx_str_t                  cookie;       /* $cookie_NAME: NAME */
    ngx_str_t                  arg;          /* $arg_NAME: NAME */
} ngx_http_obs_jwt_source_t;


/*
 * A variable an obs_jwt_token reads, or a value that leaves the gateway,
 * and where it was written: neither may name the other, whichever comes
 * first in the configuration.
 */
typedef struct {
    ngx_str_t                  directive;
    ngx_str_t                  text;         /* a variable: its lowercase
                                                name, without '$' */
    ngx_str_t                  file;
    ngx_uint_t                 line;
} ngx_http_obs_jwt_use_t;


typedef struct {
    ngx_uint_t                 cache_size;   /* 0: off */
    ngx_flag_t                 used;         /* some location verifies */
    ngx_flag_t                 require;      /* some location requires */
    ngx_array_t                sources;      /* of ngx_http_obs_jwt_use_t */
    ngx_array_t                exports;      /* of ngx_http_obs_jwt_use_t */
} ngx_http_obs_jwt_main_conf_t;


typedef struct {
    ngx_uint_t                 mode;
    ngx_str_t                  realm;        /* empty: none */
    obs_jwt_keyset_t          *keys;
    ngx_uint_t                 algs;
    time_t                     leeway;
    ngx_str_t                  tenant_claim;
    ngx_str_t                  user_claim;   /* empty: none */
    ngx_array_t               *issuers;      /* of char * */
    ngx_array_t               *audiences;    /* of char * */
    ngx_http_obs_jwt_source_t *token;        /* NULL: Authorization */
    obs_jwt_policy_t          *policy;
} ngx_http_obs_jwt_loc_conf_t;


/* A request's verdict as its audit event tells it. */
typedef struct {
    ngx_uint_t                 status;       /* 0: none; else result + 1 */
    ngx_uint_t                 refused;      /* "require" answered 401 */
    ngx_str_t                  tenant;       /* verified, or "unverified" */
    ngx_str_t                  user;         /* ... the same */
    ngx_str_t                  kid;          /* refused: what it claimed */
    ngx_str_t                  alg;
    ngx_str_t                  issuer;
} ngx_http_obs_jwt_audit_t;


struct Obs__V1__BatchHeader;


extern ngx_module_t  ngx_http_obs_jwt_module;


ngx_int_t ngx_http_obs_jwt_add_variables(ngx_conf_t *cf);

/*
 * Notes a value that leaves the gateway; NGX_ERROR, logged naming the
 * directive, when it reads a variable that an obs_jwt_token reads the token
 * from (a credential, as Authorization is).
 */
ngx_int_t ngx_http_obs_jwt_check_export(ngx_conf_t *cf, ngx_str_t *text);
ngx_int_t ngx_http_obs_jwt_access_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_obs_jwt_subrequest_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_obs_jwt_init_worker(ngx_cycle_t *cycle);
void ngx_http_obs_jwt_exit_worker(void);

/* Whether "obs_jwt require" refused the request. */
ngx_uint_t ngx_http_obs_jwt_refused(ngx_http_request_t *r);

/* The request's verdict for its audit event; NGX_ERROR: no memory. */
ngx_int_t ngx_http_obs_jwt_audit(ngx_http_request_t *r,
    ngx_http_obs_jwt_audit_t *a);

/* Puts the counts not yet delivered into a batch header being sent. */
void ngx_http_obs_jwt_batch_header(struct Obs__V1__BatchHeader *h);

/* The last header was sent: its counts are delivered. */
void ngx_http_obs_jwt_batch_sent(void);


#endif /* _NGX_HTTP_OBS_JWT_MODULE_H_INCLUDED_ */
