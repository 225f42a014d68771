/*
 * ngx_http_obs_module: per-request observability records, W3C trace context
 * and $obs_* variables for an nginx API gateway.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_module.h"


#define NGX_HTTP_OBS_DEFAULT_BUFFER    (256 * 1024)
#define NGX_HTTP_OBS_MIN_BUFFER        4096
#define NGX_HTTP_OBS_MAX_BUFFER        (16 * 1024 * 1024)
#define NGX_HTTP_OBS_DEFAULT_FLUSH     1000


/*
 * The post of a directive that matters only where records are sent: nginx
 * -t warns when no obs_sidecar is set, unless the module's variable that
 * also reads the directive ($obs_route, $obs_tenant) is used.
 */
typedef struct {
    ngx_conf_post_handler_pt   post_handler;
    ngx_str_t                  variable;     /* empty: none */
} ngx_http_obs_records_only_t;


/* Where a directive that needs obs_sidecar first appears. */
typedef struct {
    ngx_str_t                  name;
    ngx_str_t                  file;
    ngx_uint_t                 line;
    ngx_str_t                 *variable;
} ngx_http_obs_unsent_t;


static ngx_int_t ngx_http_obs_rewrite_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_obs_precontent_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_obs_log_handler(ngx_http_request_t *r);

static void *ngx_http_obs_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_obs_create_srv_conf(ngx_conf_t *cf);
static void *ngx_http_obs_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_obs_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_obs_sidecar(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_obs_sidecar_address(ngx_conf_t *cf,
    ngx_http_obs_sidecar_t *sidecar, ngx_str_t *value);
static char *ngx_http_obs_trace_context(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_obs_trace_sample(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_obs_records_only(ngx_conf_t *cf, void *post,
    void *data);
static void ngx_http_obs_warn_unsent(ngx_conf_t *cf,
    ngx_http_obs_main_conf_t *omcf, ngx_http_core_main_conf_t *cmcf);
static ngx_int_t ngx_http_obs_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_obs_used_variable(ngx_http_core_main_conf_t *cmcf,
    ngx_str_t *name);
static ngx_int_t ngx_http_obs_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_obs_init_process(ngx_cycle_t *cycle);
static void ngx_http_obs_exit_process(ngx_cycle_t *cycle);
static void ngx_http_obs_exit_master(ngx_cycle_t *cycle);


/* the configurations this master loaded (BatchHeader.config_generation) */
static uint64_t  ngx_http_obs_generation;


static ngx_http_obs_records_only_t  ngx_http_obs_records_post =
    { ngx_http_obs_records_only, ngx_null_string };

static ngx_http_obs_records_only_t  ngx_http_obs_route_post =
    { ngx_http_obs_records_only, ngx_string("obs_route") };

static ngx_http_obs_records_only_t  ngx_http_obs_tenant_post =
    { ngx_http_obs_records_only, ngx_string("obs_tenant") };


static ngx_conf_enum_t  ngx_http_obs_trace_context_modes[] = {
    { ngx_string("ignore"), NGX_HTTP_OBS_TRACE_IGNORE },
    { ngx_string("extract"), NGX_HTTP_OBS_TRACE_EXTRACT },
    { ngx_string("inject"), NGX_HTTP_OBS_TRACE_INJECT },
    { ngx_string("propagate"), NGX_HTTP_OBS_TRACE_PROPAGATE },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_obs_commands[] = {

    { ngx_string("obs"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_obs_loc_conf_t, enable),
      NULL },

    { ngx_string("obs_sidecar"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_obs_sidecar,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("obs_service_name"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_obs_set_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_obs_loc_conf_t, service),
      &ngx_http_obs_records_post },

    { ngx_string("obs_route"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_obs_set_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_obs_loc_conf_t, route),
      &ngx_http_obs_route_post },

    { ngx_string("obs_route_auto"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_obs_loc_conf_t, route_auto),
      &ngx_http_obs_route_post },

    { ngx_string("obs_tenant"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_obs_set_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_obs_loc_conf_t, tenant),
      &ngx_http_obs_tenant_post },

    { ngx_string("obs_trace_context"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_obs_trace_context,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("obs_trace_sample"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_obs_trace_sample,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("obs_upstream_span"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_obs_loc_conf_t, upstream_span),
      &ngx_http_obs_records_post },

    { ngx_string("obs_log_field"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE23,
      ngx_http_obs_log_field,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      &ngx_http_obs_records_post },

    /* business metrics and requests in flight (_metrics.c, _active.c) */

    { ngx_string("obs_metric"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF
      |NGX_CONF_TAKE3|NGX_CONF_TAKE4|NGX_CONF_TAKE5,
      ngx_http_obs_metric,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      &ngx_http_obs_records_post },

    /* the audit trail (ngx_http_obs_audit.c) */

    { ngx_string("obs_audit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_obs_audit,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("obs_active_requests"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_obs_main_conf_t, active),
      &ngx_http_obs_records_post },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_obs_module_ctx = {
    ngx_http_obs_preconfiguration,         /* preconfiguration */
    ngx_http_obs_init,                     /* postconfiguration */

    ngx_http_obs_create_main_conf,         /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_http_obs_create_srv_conf,          /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_obs_create_loc_conf,          /* create location configuration */
    ngx_http_obs_merge_loc_conf            /* merge location configuration */
};


ngx_module_t  ngx_http_obs_module = {
    NGX_MODULE_V1,
    &ngx_http_obs_module_ctx,              /* module context */
    ngx_http_obs_commands,                 /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_obs_init_process,             /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_obs_exit_process,             /* exit process */
    ngx_http_obs_exit_master,              /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * Runs first in every location a main request enters, so the route is set
 * even when "return" or "deny" ends the request there, and follows
 * "rewrite ... last".  Once a location has started on the response, or an
 * error is being answered, redirects (error_page, try_files fallbacks,
 * X-Accel-Redirect) keep the route: an error page counts against the
 * endpoint that failed.
 */

static ngx_int_t
ngx_http_obs_rewrite_handler(ngx_http_request_t *r)
{
    ngx_http_obs_ctx_t       *ctx;
    ngx_http_obs_loc_conf_t  *olcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_obs_module);

    if (!olcf->enable) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_obs_get_ctx(r);

    if (ctx
        && !(ctx->route_set && (ctx->content_reached || r->err_status)))
    {
        ngx_http_obs_set_route(r, ctx);

        if (ngx_http_obs_active_table) {
            ngx_http_obs_active_enter(r, ctx);      /* requests in flight */
        }
    }

    return NGX_DECLINED;
}


/*
 * Runs in the location that will produce the response, before proxy_pass
 * builds the upstream request.
 */

static ngx_int_t
ngx_http_obs_precontent_handler(ngx_http_request_t *r)
{
    ngx_http_obs_ctx_t       *ctx;
    ngx_http_obs_loc_conf_t  *olcf;

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_obs_module);

    if (!olcf->enable) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_obs_get_ctx(r);
    if (ctx == NULL) {
        return NGX_DECLINED;
    }

    if (r == r->main) {
        ctx->content_reached = 1;

        /* not an error page: the audit trail's "allowed" */

        if (ngx_http_obs_audit_possible && r->err_status == 0) {
            ctx->served = 1;
        }
    }

    if (olcf->trace_context & NGX_HTTP_OBS_TRACE_INJECT) {
        (void) ngx_http_obs_inject(r, ctx);
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_obs_log_handler(ngx_http_request_t *r)
{
    ngx_http_obs_ctx_t        *ctx;
    ngx_http_obs_loc_conf_t   *olcf;
    ngx_http_obs_main_conf_t  *omcf;

    if (r != r->main) {
        return NGX_OK;
    }

    omcf = ngx_http_get_module_main_conf(r, ngx_http_obs_module);
    olcf = ngx_http_get_module_loc_conf(r, ngx_http_obs_module);

    if (omcf->sidecar == NULL || !olcf->enable) {
        return NGX_OK;
    }

    ctx = ngx_http_obs_get_ctx(r);

    if (ctx == NULL || ctx->recorded) {
        return NGX_OK;
    }

    ctx->recorded = 1;

    if (!ctx->route_set) {
        ngx_http_obs_set_route(r, ctx);
    }

    (void) ngx_http_obs_record(r, ctx);

    return NGX_OK;
}


static void *
ngx_http_obs_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_obs_main_conf_t  *omcf;

    omcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_obs_main_conf_t));
    if (omcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     omcf->sidecar = NULL;
     *     omcf->metric_defs = NULL;
     *     omcf->active_zone = NULL;
     *     omcf->unsent = NULL;
     *     omcf->audit_possible = 0;
     */

    omcf->active = NGX_CONF_UNSET;

    ngx_http_obs_headers_init(omcf);

    return omcf;
}


static void *
ngx_http_obs_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_obs_srv_conf_t  *oscf;

    oscf = ngx_pcalloc(cf->pool, sizeof(ngx_http_obs_srv_conf_t));
    if (oscf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     oscf->original_init_peer = NULL;
     */

    return oscf;
}


static void *
ngx_http_obs_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_obs_loc_conf_t  *olcf;

    olcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_obs_loc_conf_t));
    if (olcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     olcf->sample_threshold = 0;
     *     olcf->service = NULL;
     *     olcf->route = NULL;
     *     olcf->tenant = NULL;
     *     olcf->metrics = NULL;
     *     olcf->fields = NULL;
     *     olcf->audit_mac = NULL;
     */

    olcf->enable = NGX_CONF_UNSET;
    olcf->route_auto = NGX_CONF_UNSET;
    olcf->upstream_span = NGX_CONF_UNSET;
    olcf->trace_context = NGX_CONF_UNSET_UINT;
    olcf->sample_set = NGX_CONF_UNSET;
    olcf->audit = NGX_CONF_UNSET;

    return olcf;
}


static char *
ngx_http_obs_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_obs_loc_conf_t *prev = parent;
    ngx_http_obs_loc_conf_t *conf = child;

    ngx_http_obs_main_conf_t  *omcf;

    omcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_obs_module);

    ngx_conf_merge_value(conf->enable, prev->enable,
                         omcf->sidecar != NULL);
    ngx_conf_merge_value(conf->route_auto, prev->route_auto, 0);
    ngx_conf_merge_value(conf->upstream_span, prev->upstream_span, 0);
    ngx_conf_merge_uint_value(conf->trace_context, prev->trace_context,
                              NGX_HTTP_OBS_TRACE_PROPAGATE);

    if (conf->sample_set == NGX_CONF_UNSET) {
        conf->sample_set = prev->sample_set;
        conf->sample_threshold = prev->sample_threshold;
    }

    if (conf->sample_set == NGX_CONF_UNSET) {
        conf->sample_threshold = NGX_HTTP_OBS_SAMPLE_ALL;
    }

    if (conf->service == NULL) {
        conf->service = prev->service;
    }

    if (conf->tenant == NULL) {
        conf->tenant = prev->tenant;
    }

    /* obs_metric: a level with its own does not inherit (as add_header) */

    if (conf->metrics == NULL) {
        conf->metrics = prev->metrics;
    }

    /* as proxy_set_header: a block with its own obs_log_field replaces the
       outer list */

    if (conf->fields == NULL) {
        conf->fields = prev->fields;
    }

    /*
     * obs_route names one location's endpoints; it is inherited from the
     * server level but a nested location gets its own name.
     */

    if (conf->route == NULL) {
        conf->route = prev->route;
    }

    return ngx_http_obs_audit_merge(cf, prev, conf);
}


/*
 * obs_sidecar unix:/path | udp:host:port [buffer=size] [flush=time]
 *             [key=file]
 */

static char *
ngx_http_obs_sidecar(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_obs_main_conf_t *omcf = conf;

    ssize_t                  size;
    ngx_str_t               *value, s;
    ngx_msec_t               flush;
    ngx_uint_t               i;
    ngx_http_obs_sidecar_t  *sidecar;

    if (omcf->sidecar) {
        return "is duplicate";
    }

    sidecar = ngx_pcalloc(cf->pool, sizeof(ngx_http_obs_sidecar_t));
    if (sidecar == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    if (ngx_http_obs_sidecar_address(cf, sidecar, &value[1]) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    sidecar->buffer_size = NGX_HTTP_OBS_DEFAULT_BUFFER;
    sidecar->flush = NGX_HTTP_OBS_DEFAULT_FLUSH;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "buffer=", 7) == 0) {
            s.len = value[i].len - 7;
            s.data = value[i].data + 7;

            size = ngx_parse_size(&s);

            if (size < NGX_HTTP_OBS_MIN_BUFFER
                || size > NGX_HTTP_OBS_MAX_BUFFER)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid buffer size \"%V\" in \"%V\" "
                                   "directive, it must be between 4k and 16m",
                                   &s, &cmd->name);
                return NGX_CONF_ERROR;
            }

            sidecar->buffer_size = size;
            continue;
        }

        if (ngx_strncmp(value[i].data, "key=", 4) == 0) {
            s.len = value[i].len - 4;
            s.data = value[i].data + 4;

            if (ngx_http_obs_read_key(cf, &s, &sidecar->key, "obs_sidecar")
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            /* the sidecar keeps its key as a C string (framing.h) */

            if (ngx_strlchr(sidecar->key.data,
                            sidecar->key.data + sidecar->key.len, '\0'))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "key file \"%V\" in \"obs_sidecar\" has "
                                   "a NUL byte in its key: the sidecar would "
                                   "read a shorter key", &s);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "flush=", 6) == 0) {
            s.len = value[i].len - 6;
            s.data = value[i].data + 6;

            flush = ngx_parse_time(&s, 0);

            if (flush == (ngx_msec_t) NGX_ERROR || flush == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid flush time \"%V\" in \"%V\" "
                                   "directive", &s, &cmd->name);
                return NGX_CONF_ERROR;
            }

            sidecar->flush = flush;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\" directive",
                           &value[i], &cmd->name);
        return NGX_CONF_ERROR;
    }

    sidecar->datagram_size = ngx_min(sidecar->buffer_size,
                                     NGX_HTTP_OBS_MAX_DATAGRAM);

    if (ngx_http_obs_emit_zone(cf, sidecar) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    omcf->sidecar = sidecar;

    return NGX_CONF_OK;
}


static char *
ngx_http_obs_sidecar_address(ngx_conf_t *cf, ngx_http_obs_sidecar_t *sidecar,
    ngx_str_t *value)
{
    ngx_url_t  u;

    sidecar->name = *value;

    ngx_memzero(&u, sizeof(ngx_url_t));

    if (ngx_strncmp(value->data, "unix:", 5) == 0) {
        u.url = *value;

        if (value->len == 5) {
            goto invalid;
        }

    } else if (ngx_strncmp(value->data, "udp:", 4) == 0) {
        u.url.len = value->len - 4;
        u.url.data = value->data + 4;
        u.no_resolve = 0;

        if (u.url.len == 0) {
            goto invalid;
        }

    } else {
        goto invalid;
    }

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid address \"%V\" in \"obs_sidecar\" "
                           "directive: %s", value,
                           u.err ? u.err : "cannot be parsed");
        return NGX_CONF_ERROR;
    }

    if (u.family != AF_UNIX && (u.no_port || u.port == 0)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no port in \"%V\" of \"obs_sidecar\" directive",
                           value);
        return NGX_CONF_ERROR;
    }

    if (u.naddrs == 0) {
        goto invalid;
    }

    sidecar->sockaddr = u.addrs[0].sockaddr;
    sidecar->socklen = u.addrs[0].socklen;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid address \"%V\" in \"obs_sidecar\" directive, "
                       "it must be \"unix:/path\" or \"udp:host:port\"",
                       value);
    return NGX_CONF_ERROR;
}


/* obs_trace_context extract|inject|propagate|ignore */

static char *
ngx_http_obs_trace_context(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_obs_loc_conf_t *olcf = conf;

    ngx_str_t        *value;
    ngx_conf_enum_t  *mode;

    if (olcf->trace_context != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (mode = ngx_http_obs_trace_context_modes; mode->name.len; mode++) {
        if (mode->name.len == value[1].len
            && ngx_strcmp(mode->name.data, value[1].data) == 0)
        {
            olcf->trace_context = mode->value;
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive, it must be "
                       "\"extract\", \"inject\", \"propagate\" or \"ignore\"",
                       &value[1], &cmd->name);
    return NGX_CONF_ERROR;
}


/* obs_trace_sample <ratio>, a fraction between 0 and 1 */

static char *
ngx_http_obs_trace_sample(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_obs_loc_conf_t *olcf = conf;

    ngx_int_t   millionths;
    ngx_str_t  *value;

    if (olcf->sample_set != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    millionths = ngx_atofp(value[1].data, value[1].len, 6);

    if (millionths == NGX_ERROR || millionths > 1000000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid ratio \"%V\" in \"%V\" directive, "
                           "it must be a number between 0 and 1",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    olcf->sample_set = 1;

    if (millionths == 1000000) {
        olcf->sample_threshold = NGX_HTTP_OBS_SAMPLE_ALL;

    } else {
        olcf->sample_threshold = (uint64_t) millionths
                                 * (UINT64_MAX / 1000000);
    }

    return NGX_CONF_OK;
}


/* Notes where a directive of ngx_http_obs_records_only_t first appears. */

static char *
ngx_http_obs_records_only(ngx_conf_t *cf, void *post, void *data)
{
    ngx_http_obs_records_only_t *ro = post;

    ngx_str_t                 *value;
    ngx_uint_t                 i;
    ngx_http_obs_unsent_t     *u;
    ngx_http_obs_main_conf_t  *omcf;

    omcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_obs_module);
    value = cf->args->elts;

    if (omcf->unsent == NULL) {
        omcf->unsent = ngx_array_create(cf->pool, 4,
                                        sizeof(ngx_http_obs_unsent_t));
        if (omcf->unsent == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    u = omcf->unsent->elts;

    for (i = 0; i < omcf->unsent->nelts; i++) {
        if (u[i].name.len == value[0].len
            && ngx_strncmp(u[i].name.data, value[0].data, value[0].len) == 0)
        {
            return NGX_CONF_OK;
        }
    }

    u = ngx_array_push(omcf->unsent);
    if (u == NULL) {
        return NGX_CONF_ERROR;
    }

    u->name = value[0];
    u->file = cf->conf_file->file.name;
    u->line = cf->conf_file->line;
    u->variable = &ro->variable;

    return NGX_CONF_OK;
}


/*
 * Not an error: a configuration may be written before its sidecar is set
 * up, and the proxy works the same; but a user who expects records must
 * hear why none come.
 */

static void
ngx_http_obs_warn_unsent(ngx_conf_t *cf, ngx_http_obs_main_conf_t *omcf,
    ngx_http_core_main_conf_t *cmcf)
{
    ngx_uint_t              i;
    ngx_http_obs_unsent_t  *u;

    u = omcf->unsent->elts;

    for (i = 0; i < omcf->unsent->nelts; i++) {

        if (u[i].variable->len
            && ngx_http_obs_used_variable(cmcf, u[i].variable) != NGX_ERROR)
        {
            continue;
        }

        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "\"%V\" directive has no effect: records are not "
                      "sent without \"obs_sidecar\" in %V:%ui",
                      &u[i].name, &u[i].file, u[i].line);
    }
}


static ngx_int_t
ngx_http_obs_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_obs_add_variables(cf);
}


/*
 * The index of a variable the configuration uses, or NGX_ERROR.  Adding an
 * index would make every request's variable array longer (and a request
 * pool a block larger) for a variable that, unused, never has a value.
 */

static ngx_int_t
ngx_http_obs_used_variable(ngx_http_core_main_conf_t *cmcf, ngx_str_t *name)
{
    ngx_uint_t            i;
    ngx_http_variable_t  *v;

    v = cmcf->variables.elts;

    for (i = 0; i < cmcf->variables.nelts; i++) {
        if (v[i].name.len == name->len
            && ngx_strncasecmp(v[i].name.data, name->data, name->len) == 0)
        {
            return i;
        }
    }

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_obs_init(ngx_conf_t *cf)
{
    ngx_str_t                   name = ngx_string("request_id");
    ngx_http_handler_pt        *h;
    ngx_http_obs_main_conf_t   *omcf;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    omcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_obs_module);

    omcf->request_id_index = ngx_http_obs_used_variable(cmcf, &name);

    if (omcf->sidecar == NULL && omcf->unsent) {
        ngx_http_obs_warn_unsent(cf, omcf, cmcf);
    }

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_obs_rewrite_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_obs_precontent_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_obs_log_handler;

    ngx_http_obs_trace_init();

    /* requests in flight: on by default wherever records go */

    if (omcf->sidecar && omcf->active != 0
        && ngx_http_obs_active_zone(cf, omcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /*
     * the audit trail: its events, and the configuration every header
     * names (each one the master loads is numbered, and its files hashed)
     */

    if (ngx_http_obs_audit_init(cf, omcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (omcf->sidecar) {
        omcf->config_generation = ++ngx_http_obs_generation;
        omcf->config_loaded = (uint64_t) ngx_time() * 1000000000;

        if (ngx_http_obs_config_digest(cf, omcf->config_sha256) != NGX_OK) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "obs: cannot compute the configuration's digest");
            return NGX_ERROR;
        }
    }

    return ngx_http_obs_wrap_upstreams(cf);
}


static ngx_int_t
ngx_http_obs_init_process(ngx_cycle_t *cycle)
{
    ngx_http_obs_main_conf_t  *omcf;

    ngx_http_obs_ids_init();

    omcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_obs_module);

    ngx_http_obs_active_init(omcf);

    ngx_http_obs_audit_possible = (omcf != NULL && omcf->audit_possible);

    if (omcf == NULL || omcf->sidecar == NULL) {
        return NGX_OK;
    }

    if (ngx_http_obs_emit_init(cycle, omcf) != NGX_OK) {
        return NGX_ERROR;
    }

    /* after the emitter: what exited workers left counted is reported */
    ngx_http_obs_active_start();

    return NGX_OK;
}


static void
ngx_http_obs_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_obs_emit_exit();
    ngx_http_obs_free_contexts();
}


static void
ngx_http_obs_exit_master(ngx_cycle_t *cycle)
{
    ngx_http_obs_main_conf_t  *omcf;

    omcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_obs_module);

    if (omcf != NULL) {
        ngx_http_obs_active_init(omcf);      /* to report nginx stopped */
        ngx_http_obs_emit_exit_master(omcf);
    }
}
