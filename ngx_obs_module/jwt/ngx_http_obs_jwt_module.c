/*
 * ngx_http_obs_jwt_module: obs_jwt* directives.  Key files are read while
 * the configuration is parsed, so "nginx -t" rejects a bad one and a
 * reload reads them again.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_jwt_module.h"


#define NGX_HTTP_OBS_JWT_DEFAULT_CACHE   256
#define NGX_HTTP_OBS_JWT_MAX_CACHE       1000000
#define NGX_HTTP_OBS_JWT_DEFAULT_LEEWAY  60
#define NGX_HTTP_OBS_JWT_MAX_LEEWAY      86400

#define NGX_HTTP_OBS_JWT_CREDENTIAL                                           \
    "a token is a credential, which never leaves the gateway; use an "       \
    "identity the gateway verified, such as $obs_jwt_tenant or $obs_jwt_user"


static void *ngx_http_obs_jwt_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_obs_jwt_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_obs_jwt_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_obs_jwt_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_obs_jwt_note(ngx_conf_t *cf, ngx_str_t *text,
    ngx_uint_t source);
static ngx_int_t ngx_http_obs_jwt_policy(ngx_conf_t *cf,
    ngx_http_obs_jwt_loc_conf_t *conf, ngx_http_obs_jwt_loc_conf_t *prev);
static char *ngx_http_obs_jwt(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_obs_jwt_keys(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void ngx_http_obs_jwt_free_keys(void *data);
static char *ngx_http_obs_jwt_algorithms(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_obs_jwt_values(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_obs_jwt_user_claim(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_obs_jwt_token(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_obs_jwt_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_obs_jwt_leeway_bounds(ngx_conf_t *cf, void *post,
    void *data);
static ngx_int_t ngx_http_obs_jwt_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_obs_jwt_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_obs_jwt_init_process(ngx_cycle_t *cycle);
static void ngx_http_obs_jwt_exit_process(ngx_cycle_t *cycle);


static ngx_conf_post_handler_pt  ngx_http_obs_jwt_leeway_post =
    ngx_http_obs_jwt_leeway_bounds;


static ngx_command_t  ngx_http_obs_jwt_commands[] = {

    { ngx_string("obs_jwt"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_obs_jwt,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("obs_jwt_keys"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_obs_jwt_keys,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("obs_jwt_algorithms"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_obs_jwt_algorithms,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("obs_jwt_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_obs_jwt_values,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_obs_jwt_loc_conf_t, issuers),
      NULL },

    { ngx_string("obs_jwt_audience"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_obs_jwt_values,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_obs_jwt_loc_conf_t, audiences),
      NULL },

    { ngx_string("obs_jwt_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_obs_jwt_loc_conf_t, leeway),
      &ngx_http_obs_jwt_leeway_post },

    { ngx_string("obs_jwt_tenant_claim"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_obs_jwt_loc_conf_t, tenant_claim),
      NULL },

    { ngx_string("obs_jwt_user_claim"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_obs_jwt_user_claim,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("obs_jwt_token"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_obs_jwt_token,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("obs_jwt_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_obs_jwt_cache,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_obs_jwt_module_ctx = {
    ngx_http_obs_jwt_preconfiguration,     /* preconfiguration */
    ngx_http_obs_jwt_init,                 /* postconfiguration */

    ngx_http_obs_jwt_create_main_conf,     /* create main configuration */
    ngx_http_obs_jwt_init_main_conf,       /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_obs_jwt_create_loc_conf,      /* create location configuration */
    ngx_http_obs_jwt_merge_loc_conf        /* merge location configuration */
};


ngx_module_t  ngx_http_obs_jwt_module = {
    NGX_MODULE_V1,
    &ngx_http_obs_jwt_module_ctx,          /* module context */
    ngx_http_obs_jwt_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_obs_jwt_init_process,         /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_obs_jwt_exit_process,         /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_obs_jwt_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_obs_jwt_main_conf_t  *jmcf;

    jmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_obs_jwt_main_conf_t));
    if (jmcf == NULL) {
        return NULL;
    }

    jmcf->cache_size = NGX_CONF_UNSET_UINT;

    if (ngx_array_init(&jmcf->sources, cf->pool, 4,
                       sizeof(ngx_http_obs_jwt_use_t))
        != NGX_OK
        || ngx_array_init(&jmcf->exports, cf->pool, 16,
                          sizeof(ngx_http_obs_jwt_use_t))
           != NGX_OK)
    {
        return NULL;
    }

    return jmcf;
}


static char *
ngx_http_obs_jwt_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_obs_jwt_main_conf_t *jmcf = conf;

    ngx_conf_init_uint_value(jmcf->cache_size,
                             NGX_HTTP_OBS_JWT_DEFAULT_CACHE);

    return NGX_CONF_OK;
}


static void *
ngx_http_obs_jwt_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_obs_jwt_loc_conf_t  *jlcf;

    jlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_obs_jwt_loc_conf_t));
    if (jlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     jlcf->realm = { 0, NULL };
     *     jlcf->keys = NULL;
     *     jlcf->tenant_claim = { 0, NULL };
     *     jlcf->user_claim = { 0, NULL };
     *     jlcf->issuers = NULL;
     *     jlcf->audiences = NULL;
     *     jlcf->policy = NULL;
     */

    jlcf->mode = NGX_CONF_UNSET_UINT;
    jlcf->algs = NGX_CONF_UNSET_UINT;
    jlcf->leeway = NGX_CONF_UNSET;
    jlcf->token = NGX_CONF_UNSET_PTR;

    return jlcf;
}


static char *
ngx_http_obs_jwt_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_obs_jwt_loc_conf_t *prev = parent;
    ngx_http_obs_jwt_loc_conf_t *conf = child;

    ngx_http_obs_jwt_main_conf_t  *jmcf;

    ngx_conf_merge_uint_value(conf->mode, prev->mode, NGX_HTTP_OBS_JWT_OFF);

    if (conf->realm.data == NULL) {
        conf->realm = prev->realm;
    }

    if (conf->keys == NULL) {
        conf->keys = prev->keys;
    }

    ngx_conf_merge_uint_value(conf->algs, prev->algs, OBS_JWT_ALL_ALGS);
    ngx_conf_merge_sec_value(conf->leeway, prev->leeway,
                             NGX_HTTP_OBS_JWT_DEFAULT_LEEWAY);
    ngx_conf_merge_str_value(conf->tenant_claim, prev->tenant_claim,
                             "tenant_id");
    ngx_conf_merge_str_value(conf->user_claim, prev->user_claim, "sub");

    if (conf->issuers == NULL) {
        conf->issuers = prev->issuers;
    }

    if (conf->audiences == NULL) {
        conf->audiences = prev->audiences;
    }

    ngx_conf_merge_ptr_value(conf->token, prev->token, NULL);

    if (conf->keys == NULL) {
        if (conf->mode != NGX_HTTP_OBS_JWT_OFF) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"obs_jwt\" needs \"obs_jwt_keys\"");
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (ngx_http_obs_jwt_policy(cf, conf, prev) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (conf->mode != NGX_HTTP_OBS_JWT_OFF) {
        jmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_obs_jwt_module);
        jmcf->used = 1;

        if (conf->mode == NGX_HTTP_OBS_JWT_REQUIRE) {
            jmcf->require = 1;
        }
    }

    return NGX_CONF_OK;
}


/*
 * A policy is all that obs_jwt_verify() reads.  A location whose policy is
 * byte for byte its parent's shares the parent's object, and so the cache
 * entries of the tokens it verified; a request reuses a verdict only under
 * the same object (see ngx_http_obs_jwt_check).  The whole object is
 * compared, not a list of settings, so that a setting added later cannot
 * be left out.  Pointers compare as pointers: equal ones are the same
 * configuration text; unequal ones to equal text cost only a cache entry.
 */

static ngx_int_t
ngx_http_obs_jwt_policy(ngx_conf_t *cf, ngx_http_obs_jwt_loc_conf_t *conf,
    ngx_http_obs_jwt_loc_conf_t *prev)
{
    obs_jwt_policy_t  p;

    /* zeroed whole, padding included, for the comparison */
    ngx_memzero(&p, sizeof(obs_jwt_policy_t));

    p.keys = conf->keys;
    p.algs = (unsigned) conf->algs;
    p.leeway = conf->leeway;

    /* directive arguments and default literals end in a NUL */

    p.tenant_claim = (const char *) conf->tenant_claim.data;
    p.user_claim = conf->user_claim.len
                   ? (const char *) conf->user_claim.data : NULL;

    if (conf->issuers) {
        p.issuers = conf->issuers->elts;
        p.n_issuers = conf->issuers->nelts;
    }

    if (conf->audiences) {
        p.audiences = conf->audiences->elts;
        p.n_audiences = conf->audiences->nelts;
    }

    if (prev->policy
        && ngx_memcmp(prev->policy, &p, sizeof(obs_jwt_policy_t)) == 0)
    {
        conf->policy = prev->policy;
        return NGX_OK;
    }

    conf->policy = ngx_palloc(cf->pool, sizeof(obs_jwt_policy_t));
    if (conf->policy == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(conf->policy, &p, sizeof(obs_jwt_policy_t));

    return NGX_OK;
}


/* obs_jwt off | on | require [realm=TEXT] */

static char *
ngx_http_obs_jwt(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_obs_jwt_loc_conf_t *jlcf = conf;

    u_char     *p;
    ngx_str_t  *value;

    if (jlcf->mode != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        jlcf->mode = NGX_HTTP_OBS_JWT_OFF;

    } else if (ngx_strcmp(value[1].data, "on") == 0) {
        jlcf->mode = NGX_HTTP_OBS_JWT_ON;

    } else if (ngx_strcmp(value[1].data, "require") == 0) {
        jlcf->mode = NGX_HTTP_OBS_JWT_REQUIRE;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" (off, on or require)",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 2) {
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value[2].data, "realm=", 6) != 0
        || jlcf->mode != NGX_HTTP_OBS_JWT_REQUIRE)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" (realm= goes with "
                           "\"require\")", &value[2]);
        return NGX_CONF_ERROR;
    }

    /* the realm is sent in a quoted-string: no quotes, no escapes */

    for (p = value[2].data + 6; p < value[2].data + value[2].len; p++) {
        if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid realm \"%V\": printable ASCII "
                               "without '\"' or '\\'", &value[2]);
            return NGX_CONF_ERROR;
        }
    }

    jlcf->realm.data = value[2].data + 6;
    jlcf->realm.len = value[2].len - 6;

    return NGX_CONF_OK;
}


/* obs_jwt_keys FILE [kid=KID]: a JWKS or PEM file, read now */

static char *
ngx_http_obs_jwt_keys(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_obs_jwt_loc_conf_t *jlcf = conf;

    char                *kid, err[512];
    ngx_str_t           *value, file;
    ngx_pool_cleanup_t  *cln;

    value = cf->args->elts;
    kid = NULL;

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "kid=", 4) != 0
            || value[2].len == 4)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        kid = (char *) value[2].data + 4;
    }

    if (jlcf->keys == NULL) {
        cln = ngx_pool_cleanup_add(cf->pool, sizeof(obs_jwt_keyset_t));
        if (cln == NULL) {
            return NGX_CONF_ERROR;
        }

        jlcf->keys = cln->data;
        jlcf->keys->n = 0;
        cln->handler = ngx_http_obs_jwt_free_keys;
    }

    file = value[1];

    if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (obs_jwt_keys_load(jlcf->keys, (char *) file.data, kid, err,
                          sizeof(err))
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "obs_jwt_keys \"%V\": %s",
                           &file, err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void
ngx_http_obs_jwt_free_keys(void *data)
{
    obs_jwt_keys_free(data);
}


/* obs_jwt_algorithms ALG ...: the allow-list; "none" is never on it */

static char *
ngx_http_obs_jwt_algorithms(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_obs_jwt_loc_conf_t *jlcf = conf;

    int         alg;
    ngx_str_t  *value;
    ngx_uint_t  i;

    if (jlcf->algs != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    jlcf->algs = 0;

    for (i = 1; i < cf->args->nelts; i++) {
        alg = obs_jwt_alg((char *) value[i].data, value[i].len);

        if (alg < 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unsupported algorithm \"%V\" (HS256, HS384, "
                               "HS512, RS256, RS384, RS512, ES256, ES384, "
                               "EdDSA)", &value[i]);
            return NGX_CONF_ERROR;
        }

        jlcf->algs |= OBS_JWT_ALG_BIT(alg);
    }

    return NGX_CONF_OK;
}


/* obs_jwt_issuer / obs_jwt_audience VALUE ...: any of them matches */

static char *
ngx_http_obs_jwt_values(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    char         **s;
    ngx_str_t     *value;
    ngx_uint_t     i;
    ngx_array_t  **field;

    field = (ngx_array_t **) (p + cmd->offset);

    if (*field != NULL) {
        return "is duplicate";
    }

    *field = ngx_array_create(cf->pool, cf->args->nelts - 1, sizeof(char *));
    if (*field == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        s = ngx_array_push(*field);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        *s = (char *) value[i].data;
    }

    return NGX_CONF_OK;
}


/* obs_jwt_user_claim NAME | off */

static char *
ngx_http_obs_jwt_user_claim(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_obs_jwt_loc_conf_t *jlcf = conf;

    ngx_str_t  *value;

    if (jlcf->user_claim.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    jlcf->user_claim = value[1];

    if (ngx_strcmp(value[1].data, "off") == 0) {
        /* set, and empty: no user */
        jlcf->user_claim.len = 0;
    }

    return NGX_CONF_OK;
}


/* obs_jwt_token bearer | $variable (e.g. $cookie_session, $http_x_token) */

static char *
ngx_http_obs_jwt_token(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_obs_jwt_loc_conf_t *jlcf = conf;

    ngx_str_t                  *value, name;
    ngx_http_obs_jwt_source_t  *src;

    if (jlcf->token != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "bearer") == 0) {
        jlcf->token = NULL;
        return NGX_CONF_OK;
    }

    src = ngx_pcalloc(cf->pool, sizeof(ngx_http_obs_jwt_source_t));
    if (src == NULL) {
        return NGX_CONF_ERROR;
    }

    if (value[1].len < 2 || value[1].data[0] != '$'
        || ngx_http_obs_compile_value(cf, &value[1], &src->value) != NGX_OK
        || (src->value.index == NGX_ERROR && src->value.header.len == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" (bearer, or one variable "
                           "such as $cookie_NAME or $http_NAME)", &value[1]);
        return NGX_CONF_ERROR;
    }

    /* variable names are in any case; the names they read too */

    name.len = value[1].len - 1;
    name.data = ngx_pnalloc(cf->pool, name.len);
    if (name.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_strlow(name.data, value[1].data + 1, name.len);

    if (name.len > 7 && ngx_strncmp(name.data, "cookie_", 7) == 0) {
        src->cookie.data = name.data + 7;
        src->cookie.len = name.len - 7;

    } else if (name.len > 4 && ngx_strncmp(name.data, "arg_", 4) == 0) {
        src->arg.data = name.data + 4;
        src->arg.len = name.len - 4;
    }

    if (ngx_http_obs_jwt_note(cf, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    jlcf->token = src;

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_obs_jwt_check_export(ngx_conf_t *cf, ngx_str_t *text)
{
    return ngx_http_obs_jwt_note(cf, text, 0);
}


/*
 * Notes where a token is read (a variable's name) or a value that leaves
 * the gateway, refusing either when it meets the other: the token is a
 * credential wherever it comes from, as Authorization is.
 */

static ngx_int_t
ngx_http_obs_jwt_note(ngx_conf_t *cf, ngx_str_t *text, ngx_uint_t source)
{
    ngx_str_t                     *value, *name, *export;
    ngx_uint_t                     i;
    ngx_array_t                   *others, *mine;
    ngx_http_obs_jwt_use_t        *use, *u;
    ngx_http_obs_jwt_main_conf_t  *jmcf;

    jmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_obs_jwt_module);
    value = cf->args->elts;

    others = source ? &jmcf->exports : &jmcf->sources;
    mine = source ? &jmcf->sources : &jmcf->exports;

    use = others->elts;

    for (i = 0; i < others->nelts; i++) {
        name = source ? text : &use[i].text;
        export = source ? &use[i].text : text;

        if (!ngx_http_obs_reads_variable(export, name)) {
            continue;
        }

        if (source) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" directive in %V:%ui may not use "
                               "\"$%V\": this \"%V\" reads the token from "
                               "it; %s", &use[i].directive, &use[i].file,
                               use[i].line, name, &value[0],
                               NGX_HTTP_OBS_JWT_CREDENTIAL);
        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" directive may not use \"$%V\": "
                               "\"%V\" in %V:%ui reads the token from it; "
                               "%s", &value[0], name, &use[i].directive,
                               &use[i].file, use[i].line,
                               NGX_HTTP_OBS_JWT_CREDENTIAL);
        }

        return NGX_ERROR;
    }

    u = ngx_array_push(mine);
    if (u == NULL) {
        return NGX_ERROR;
    }

    u->directive = value[0];
    u->file = cf->conf_file->file.name;
    u->line = cf->conf_file->line;
    u->text.len = text->len;
    u->text.data = ngx_pstrdup(cf->pool, text);

    if (u->text.data == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* obs_jwt_cache SIZE | off: verified tokens kept per worker */

static char *
ngx_http_obs_jwt_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_obs_jwt_main_conf_t *jmcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (jmcf->cache_size != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        jmcf->cache_size = 0;
        return NGX_CONF_OK;
    }

    n = ngx_atoi(value[1].data, value[1].len);

    if (n <= 0 || n > NGX_HTTP_OBS_JWT_MAX_CACHE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid cache size \"%V\" (1..%d tokens, or off)",
                           &value[1], NGX_HTTP_OBS_JWT_MAX_CACHE);
        return NGX_CONF_ERROR;
    }

    jmcf->cache_size = (ngx_uint_t) n;

    return NGX_CONF_OK;
}


static char *
ngx_http_obs_jwt_leeway_bounds(ngx_conf_t *cf, void *post, void *data)
{
    time_t  *leeway = data;

    if (*leeway > NGX_HTTP_OBS_JWT_MAX_LEEWAY) {
        return "is more than a day";
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_obs_jwt_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_obs_jwt_add_variables(cf);
}


static ngx_int_t
ngx_http_obs_jwt_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt          *h;
    ngx_http_core_main_conf_t    *cmcf;
    ngx_http_obs_jwt_main_conf_t  *jmcf;

    /* without obs_jwt anywhere, requests are spared the handler's call */

    jmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_obs_jwt_module);

    if (!jmcf->used) {
        return NGX_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /* in the access phase, as auth_basic: "satisfy any" applies */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_obs_jwt_access_handler;

    if (!jmcf->require) {
        return NGX_OK;
    }

    /*
     * A subrequest has no access phase: see the handler.  It runs first in
     * the rewrite phase (handlers run last added first, and this module
     * comes after ngx_http_rewrite_module), so that a "return 204" in an
     * auth_request location, which ends the subrequest in that phase, is
     * never reached with a bad token; and again before the content handler.
     */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_obs_jwt_subrequest_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_obs_jwt_subrequest_handler;

    return NGX_OK;
}


static ngx_int_t
ngx_http_obs_jwt_init_process(ngx_cycle_t *cycle)
{
    return ngx_http_obs_jwt_init_worker(cycle);
}


static void
ngx_http_obs_jwt_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_obs_jwt_exit_worker();
}
