/*
 * ngx_http_obs_module: shared types of the module's files.
 *
 *   ngx_http_obs_module.c     directives, configuration, phase handlers
 *   ngx_http_obs_context.c    per-request trace context, injection upstream
 *   ngx_http_obs_ids.c        per-worker id generator
 *   ngx_http_obs_record.c     the per-request record (protobuf)
 *   ngx_http_obs_emit.c       per-worker batch buffer, flush timer, socket
 *   ngx_http_obs_variables.c  $obs_* variables
 */

#ifndef _NGX_HTTP_OBS_MODULE_H_INCLUDED_
#define _NGX_HTTP_OBS_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "obs_tracecontext.h"
#include "obs_route.h"


#define NGX_HTTP_OBS_TRACE_IGNORE     0
#define NGX_HTTP_OBS_TRACE_EXTRACT    1
#define NGX_HTTP_OBS_TRACE_INJECT     2
#define NGX_HTTP_OBS_TRACE_PROPAGATE  3

#define NGX_HTTP_OBS_MAX_ATTEMPTS     8

/* obs_trace_sample is kept as a threshold on a uniform 64-bit draw */
#define NGX_HTTP_OBS_SAMPLE_ALL       ((uint64_t) -1)


typedef struct {
    ngx_str_t                  name;         /* as written, for messages */
    struct sockaddr           *sockaddr;
    socklen_t                  socklen;
    size_t                     buffer_size;
    size_t                     datagram_size;
    ngx_msec_t                 flush;
} ngx_http_obs_sidecar_t;


typedef struct {
    ngx_http_obs_sidecar_t    *sidecar;      /* NULL: no records */
} ngx_http_obs_main_conf_t;


/*
 * A directive value with variables.  The common "$http_x_tenant_id" form is
 * kept as a variable index: reading one variable is much cheaper than
 * running nginx's script engine on every request.
 */
typedef struct {
    ngx_http_complex_value_t   cv;
    ngx_int_t                  index;        /* lone variable, or NGX_ERROR */
} ngx_http_obs_value_t;


typedef struct {
    ngx_http_upstream_init_peer_pt  original_init_peer;
} ngx_http_obs_srv_conf_t;


typedef struct {
    ngx_flag_t                 enable;
    ngx_flag_t                 route_auto;
    ngx_flag_t                 upstream_span;
    ngx_uint_t                 trace_context;
    uint64_t                   sample_threshold;
    ngx_flag_t                 sample_set;
    ngx_http_obs_value_t      *service;
    ngx_http_obs_value_t      *route;
    ngx_http_obs_value_t      *tenant;
} ngx_http_obs_loc_conf_t;


typedef struct {
    uint8_t                    trace_id[OBS_TRACE_ID_LEN];
    uint8_t                    span_id[OBS_SPAN_ID_LEN];
    uint8_t                    parent_id[OBS_SPAN_ID_LEN];
    uint8_t                    flags;

    unsigned                   has_parent:1;
    unsigned                   injected:1;
    unsigned                   route_set:1;
    unsigned                   content_reached:1;
    unsigned                   recorded:1;

    ngx_str_t                  tracestate;
    ngx_str_t                  route;
    ngx_str_t                  request_id;   /* X-Request-ID, if sent */

    /* the client's trace headers, found once for extraction and injection */
    ngx_table_elt_t           *in_traceparent;
    ngx_table_elt_t           *in_tracestate;
    ngx_uint_t                 in_traceparents;
    ngx_uint_t                 in_tracestates;

    /* the traceparent value the current upstream attempt carries */
    u_char                     traceparent[OBS_TRACEPARENT_LEN];

    ngx_uint_t                 attempts;
    uint8_t                    attempt_ids[NGX_HTTP_OBS_MAX_ATTEMPTS]
                                          [OBS_SPAN_ID_LEN];
} ngx_http_obs_ctx_t;


extern ngx_module_t  ngx_http_obs_module;


ngx_http_obs_ctx_t *ngx_http_obs_get_ctx(ngx_http_request_t *r);
ngx_int_t ngx_http_obs_inject(ngx_http_request_t *r, ngx_http_obs_ctx_t *ctx);
ngx_int_t ngx_http_obs_wrap_upstreams(ngx_conf_t *cf);
void ngx_http_obs_set_route(ngx_http_request_t *r, ngx_http_obs_ctx_t *ctx);
ngx_int_t ngx_http_obs_tenant(ngx_http_request_t *r, ngx_str_t *tenant);
char *ngx_http_obs_set_value_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_obs_value(ngx_http_request_t *r, ngx_http_obs_value_t *v,
    ngx_str_t *value);

void ngx_http_obs_ids_init(void);
uint64_t ngx_http_obs_random(void);
void ngx_http_obs_new_id(uint8_t *id, size_t len);

ngx_int_t ngx_http_obs_record(ngx_http_request_t *r, ngx_http_obs_ctx_t *ctx);

ngx_int_t ngx_http_obs_emit_init(ngx_cycle_t *cycle,
    ngx_http_obs_sidecar_t *sidecar);
void ngx_http_obs_emit_exit(void);
u_char *ngx_http_obs_emit_reserve(size_t size);
void ngx_http_obs_emit_commit(size_t size);

ngx_int_t ngx_http_obs_add_variables(ngx_conf_t *cf);


#endif /* _NGX_HTTP_OBS_MODULE_H_INCLUDED_ */
