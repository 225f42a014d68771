/*
 * ngx_http_obs_module: shared types of the module's files, in the order a
 * request meets them (ARCHITECTURE.md follows one request through them).
 *
 *   ngx_http_obs_module.c     directives, configuration, phase handlers
 *   ngx_http_obs_value.c      directive values with variables; what may
 *                             leave the gateway
 *   ngx_http_obs_context.c    the request's context and its clocks
 *   ngx_http_obs_headers.c    the client's headers, read in one pass
 *   ngx_http_obs_trace.c      W3C trace context: extract, start, inject
 *   ngx_http_obs_ids.c        per-worker trace and span id generator
 *   ngx_http_obs_labels.c     the route and tenant labels
 *   ngx_http_obs_upstream.c   upstream attempts: their ids and timing
 *   ngx_http_obs_active.c     requests in flight, in shared memory, and
 *                             the snapshots that report them
 *   ngx_http_obs_variables.c  $obs_* variables
 *   ngx_http_obs_record.c     the per-request record
 *   ngx_http_obs_metrics.c    obs_metric: business metrics from variables
 *   ngx_http_obs_fields.c     obs_log_field: extra keys of logs and spans
 *   ngx_http_obs_audit.c      obs_audit: the audit trail's events
 *   ngx_http_obs_digest.c     the configuration's digest, as "nginx -T"
 *   ngx_http_obs_columns.c    the worker's open batch in column form (the
 *                             writer; common/columns_reader.c reads it),
 *                             with ngx_http_obs_columns_add.h
 *   ngx_http_obs_batch.c      records into batches, the buffer of sealed
 *                             ones, the flush timer; start and exit
 *   ngx_http_obs_send.c       one datagram: batch header, HMAC tag, socket
 *   ngx_http_obs_drops.c      drop counts that outlive a worker
 *   ngx_http_obs_emit.h       the emitter's state, which these three and
 *                             ngx_http_obs_active.c share
 *   ngx_http_obs_key.c        key files and HMAC-SHA256 contexts
 *   obs_tracecontext.c        traceparent and tracestate parsers (plain C)
 *   obs_route.c               route templates, tenant labels (plain C)
 *   jwt/                      ngx_http_obs_jwt_module, the JWT verifier
 *                             (its files: jwt/ngx_http_obs_jwt.h)
 */

#ifndef _NGX_HTTP_OBS_MODULE_H_INCLUDED_
#define _NGX_HTTP_OBS_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/types.h>

#include "hash.h"
#include "obs_limits.h"
#include "obs_tracecontext.h"
#include "obs_route.h"
#include "metric_names.h"
#include "obs/v1/framing.h"


/*
 * A function one file of the module calls in another that nothing outside
 * the module calls: not exported from the .so, so that a call to it is
 * direct, as when caller and callee were static in one file, rather than
 * through the PLT (on the request path, every instruction counts).
 */
#if (__GNUC__ >= 4 || defined __clang__)
#define NGX_HTTP_OBS_LOCAL            __attribute__((visibility("hidden")))
#else
#define NGX_HTTP_OBS_LOCAL
#endif


#define NGX_HTTP_OBS_TRACE_IGNORE     0
#define NGX_HTTP_OBS_TRACE_EXTRACT    1
#define NGX_HTTP_OBS_TRACE_INJECT     2
#define NGX_HTTP_OBS_TRACE_PROPAGATE  3

#define NGX_HTTP_OBS_MAX_ATTEMPTS     OBS_MAX_UPSTREAM_ATTEMPTS

/* "host:port" of an implicit upstream: NGX_HTTP_OBS_MAX_VALUE, a port */
#define NGX_HTTP_OBS_UPSTREAM_NAME_LEN  (256 + sizeof(":65535") - 1)

/* nginx's cached millisecond clock: its resolution plus some lag */
#define NGX_HTTP_OBS_CLOCK_SLACK_US   2000

/* obs_trace_sample is kept as a threshold on a uniform 64-bit draw */
#define NGX_HTTP_OBS_SAMPLE_ALL       ((uint64_t) -1)


typedef struct ngx_http_obs_shared_s  ngx_http_obs_shared_t;


typedef struct {
    ngx_str_t                  name;         /* as written, for messages */
    struct sockaddr           *sockaddr;
    socklen_t                  socklen;
    size_t                     buffer_size;
    size_t                     datagram_size;
    ngx_msec_t                 flush;
    ngx_shm_zone_t            *zone;         /* drops that outlive workers */
    ngx_http_obs_shared_t     *shared;
    ngx_str_t                  key;          /* HMAC key; empty: none */
} ngx_http_obs_sidecar_t;


typedef struct {
    ngx_http_obs_sidecar_t    *sidecar;      /* NULL: no records */
    ngx_int_t                  request_id_index;   /* nginx's $request_id */

    /* obs_metric (ngx_http_obs_metrics.c), obs_active_requests (_active.c) */
    ngx_array_t               *metric_defs;  /* every name, for conflicts */
    ngx_flag_t                 active;
    ngx_shm_zone_t            *active_zone;

    ngx_array_t               *unsent;       /* what needs obs_sidecar */

    /*
     * The request headers the module reads, as bits of nginx's hash of
     * their lowercase names (h->hash & 63): a header whose bit is clear is
     * passed over without looking at its name (ngx_http_obs_headers.c).
     */
    uint64_t                   header_bits;

    /* the audit trail (ngx_http_obs_audit.c, ngx_http_obs_digest.c) */
    ngx_str_t                  audit_file;   /* where obs_audit first is */
    ngx_uint_t                 audit_line;
    ngx_flag_t                 audit_possible;     /* events can be made */
    ngx_shm_zone_t            *audit_zone;
    uint64_t                   config_generation;
    uint64_t                   config_loaded;      /* Unix nanoseconds */
    u_char                     config_sha256[32];
} ngx_http_obs_main_conf_t;


/*
 * A directive value with variables.  A lone variable is kept as its index:
 * reading one variable is much cheaper than running nginx's script engine
 * on every request.  The common "$http_x_tenant_id" form is not indexed at
 * all: its header is found directly, and an index would cost every request
 * a slot in r->variables for a value the module rarely reads through it.
 */
typedef struct {
    ngx_http_complex_value_t   cv;           /* unused for a lone $http_* */
    ngx_int_t                  index;        /* lone variable, or NGX_ERROR */
    ngx_str_t                  var;          /* lone $http_*: "http_name" */
    ngx_uint_t                 var_key;      /* ... its hash key */
    ngx_str_t                  header;       /* ... the name, in var */
    ngx_str_t                  header_dashed;  /* ... with '-' for '_' */
    ngx_uint_t                 constant;     /* no variables at all */
    ngx_uint_t                 from_request; /* variables, and not a lone
                                                one only a verified token
                                                sets (Record.from_request) */
} ngx_http_obs_value_t;


typedef struct {
    ngx_http_upstream_init_peer_pt  original_init_peer;
} ngx_http_obs_srv_conf_t;


typedef struct ngx_http_obs_loc_conf_s {
    ngx_flag_t                 enable;
    ngx_flag_t                 route_auto;
    ngx_flag_t                 upstream_span;
    ngx_uint_t                 trace_context;
    uint64_t                   sample_threshold;
    ngx_flag_t                 sample_set;
    ngx_http_obs_value_t      *service;
    ngx_http_obs_value_t      *route;
    ngx_http_obs_value_t      *tenant;
    ngx_array_t               *metrics;      /* obs_metric; NULL: none */
    ngx_array_t               *fields;       /* obs_log_field; NULL: none */
    ngx_flag_t                 audit;        /* obs_audit */
    EVP_MAC_CTX               *audit_mac;    /* ... hmac=: the client's key */
} ngx_http_obs_loc_conf_t;


/* The original peer methods of an upstream connection that we wrap. */
typedef struct {
    ngx_http_request_t             *request;
    void                           *data;
    ngx_event_get_peer_pt           get;
    ngx_event_free_peer_pt          free;
    ngx_event_notify_peer_pt        notify;
#if (NGX_SSL || NGX_COMPAT)
    ngx_event_set_peer_session_pt   set_session;
    ngx_event_save_peer_session_pt  save_session;
#endif
} ngx_http_obs_peer_t;


typedef struct ngx_http_obs_ctx_s {
    uint8_t                    flags;

    unsigned                   has_parent:1;
    unsigned                   injected:1;
    unsigned                   route_set:1;
    unsigned                   route_stable:1;
    unsigned                   content_reached:1;
    unsigned                   recorded:1;
    unsigned                   served:1;     /* a content handler ran */

    ngx_str_t                  tracestate;
    ngx_str_t                  route;
    ngx_str_t                  request_id;   /* X-Request-ID, if sent */

    /* the location the route was taken in: its obs_service_name applies */
    struct ngx_http_obs_loc_conf_s  *route_conf;

    /* obs_tenant's header, when tenant_of is the value that reads it */
    ngx_http_obs_value_t      *tenant_of;
    ngx_str_t                  tenant_raw;

    /* the client's trace headers, found once for extraction and injection */
    ngx_table_elt_t           *in_traceparent;
    ngx_table_elt_t           *in_tracestate;
    ngx_uint_t                 in_traceparents;
    ngx_uint_t                 in_tracestates;

    ngx_uint_t                 attempts;

    /* the in-flight counter the request is counted in (_active.c) */
    ngx_atomic_t              *active;

    /* written before they are read, so not cleared for a new request: */

    /*
     * When the request started: wall clock in microseconds, and the
     * monotonic clock the duration is measured on.  lead_us is the part
     * before the module first saw the request (slow request headers, an
     * early error) that only nginx's millisecond clock measured.
     */
    uint64_t                   start_wall_us;
    uint64_t                   start_mono_us;
    uint64_t                   lead_us;

    /* each upstream attempt's monotonic start, then its duration (0: none) */
    uint64_t                   attempt_start_us[NGX_HTTP_OBS_MAX_ATTEMPTS];
    uint64_t                   attempt_us[NGX_HTTP_OBS_MAX_ATTEMPTS];

    uint8_t                    trace_id[OBS_TRACE_ID_LEN];
    uint8_t                    span_id[OBS_SPAN_ID_LEN];
    uint8_t                    parent_id[OBS_SPAN_ID_LEN];

    /* the traceparent value the current upstream attempt carries */
    u_char                     traceparent[OBS_TRACEPARENT_LEN];

    uint8_t                    attempt_ids[NGX_HTTP_OBS_MAX_ATTEMPTS]
                                          [OBS_SPAN_ID_LEN];

    ngx_http_obs_peer_t        peer;         /* set up by each init_peer */
    struct ngx_http_obs_ctx_s *next_free;
    u_char                     route_buf[OBS_ROUTE_MAX_LEN];

    /*
     * A main request's alone (a subrequest's copy stops here): what would
     * otherwise come from the request pool, which the module leaves alone:
     * its pool cleanup, the client's tracestate list, combined (never
     * longer than OBS_TRACESTATE_MAX_LEN), and an implicit upstream's name
     * with its port (ngx_http_obs_record.c).
     */
    ngx_pool_cleanup_t         cleanup;      /* in r->pool's list: release */
    u_char                     tracestate_buf[OBS_TRACESTATE_MAX_LEN];
    u_char                     upstream_buf[NGX_HTTP_OBS_UPSTREAM_NAME_LEN];
} ngx_http_obs_ctx_t;

/* what a subrequest's context holds: all but the main request's buffers */
#define NGX_HTTP_OBS_SUBREQUEST_CTX                                          \
    offsetof(ngx_http_obs_ctx_t, cleanup)


#define NGX_HTTP_OBS_MAX_TRACESTATE_HEADERS  32

/* What one pass over the client's headers found (ngx_http_obs_headers.c). */
typedef struct {
    ngx_uint_t                      traceparents;
    ngx_uint_t                      tracestates;
    ngx_table_elt_t                *traceparent;
    ngx_table_elt_t                *tracestate;
    ngx_table_elt_t                *request_id;
    /* set by the caller: a lone $http_ value whose header to find, or NULL */
    ngx_http_obs_value_t           *tenant;
    ngx_table_elt_t                *tenant_header;
    ngx_uint_t                      tenant_headers;
    obs_slice_t                     states[NGX_HTTP_OBS_MAX_TRACESTATE_HEADERS];
} ngx_http_obs_found_t;


/* The most bytes of each text a record keeps. */
#define NGX_HTTP_OBS_MAX_PATH         1024
#define NGX_HTTP_OBS_MAX_USER_AGENT   512
#define NGX_HTTP_OBS_MAX_REQUEST_ID   128
#define NGX_HTTP_OBS_MAX_VALUE        256      /* any other text */

#define NGX_HTTP_OBS_MAX_SCHEME       (sizeof("https") - 1)

/* obs_log_field: fields per block, and the bytes of a name and a value */
#define NGX_HTTP_OBS_MAX_FIELDS       8
#define NGX_HTTP_OBS_MAX_FIELD_NAME   64
#define NGX_HTTP_OBS_MAX_FIELD_VALUE  256

/*
 * The largest datagram, and what one holds besides the batch's columns:
 * the batch header and the columns field's key and length.
 */
#define NGX_HTTP_OBS_MAX_DATAGRAM     OBS_DATAGRAM_MAX    /* framing.h */
#define NGX_HTTP_OBS_HEADER_MAX       768
#define NGX_HTTP_OBS_DATAGRAM_OVERHEAD  (NGX_HTTP_OBS_HEADER_MAX + 1 + 3)


/* One upstream attempt of a record. */
typedef struct {
    ngx_str_t                  address;
    uint32_t                   status;
    uint64_t                   connect_time_us;
    uint64_t                   header_time_us;
    uint64_t                   response_time_us;
    uint64_t                   bytes_received;
    uint32_t                   error;        /* NGX_HTTP_OBS_ATTEMPT_* */
    u_char                    *span_id;      /* NULL: none */
} ngx_http_obs_attempt_t;

/* One obs_log_field of a record; the name is configuration text. */
typedef struct {
    ngx_str_t                  name;
    ngx_str_t                  value;
} ngx_http_obs_log_field_t;


/*
 * A request's audit event (ngx_http_obs_audit.c; the group "audit" of
 * proto/obs/v1/columns.def): the record carries the rest.
 */
typedef struct {
    uint64_t                   sequence;     /* set when admitted */
    uint32_t                   decision;     /* proto/obs/v1/audit.def */
    uint32_t                   scope;
    uint32_t                   jwt_status;   /* 0: off; else result + 1 */
    ngx_str_t                  user;
    ngx_str_t                  tenant;
    ngx_str_t                  client;
    ngx_str_t                  jwt_kid;
    ngx_str_t                  jwt_alg;
    ngx_str_t                  jwt_issuer;
} ngx_http_obs_audit_t;

/* In the zone "obs_audit", kept across reloads. */
typedef struct {
    ngx_atomic_t               exited;       /* events exited workers held */
    ngx_atomic_t               announced;    /* the newest generation told */
} ngx_http_obs_audit_shm_t;

#define NGX_HTTP_OBS_MAX_AUDIT         1
#define NGX_HTTP_OBS_BATCH_AUDIT       512    /* a batch's records */
#define NGX_HTTP_OBS_AUDIT_CLAIM_MAX   256    /* OBS_JWT_MAX_CLAIM */
#define NGX_HTTP_OBS_AUDIT_KID_MAX     64
#define NGX_HTTP_OBS_AUDIT_ALG_MAX     16
#define NGX_HTTP_OBS_AUDIT_ISS_MAX     256

/* AuditEvent.scope */
#define NGX_HTTP_OBS_AUDIT_SCOPE_AUDIT  1
#define NGX_HTTP_OBS_AUDIT_SCOPE_JWT    2


/* why an upstream attempt got no response (UpstreamAttempt.error) */
#define NGX_HTTP_OBS_ATTEMPT_OK        0
#define NGX_HTTP_OBS_ATTEMPT_ERROR     1
#define NGX_HTTP_OBS_ATTEMPT_TIMEOUT   2


/*
 * One value obs_metric observed (ngx_http_obs_metrics.c; the group "metric"
 * of proto/obs/v1/columns.def).  Name, label name and label value live as
 * long as the configuration; the value is the variable's text, at most
 * NGX_HTTP_OBS_METRIC_VALUE_MAX bytes.
 */
typedef struct {
    ngx_str_t                  name;
    ngx_str_t                  label_name;   /* empty: no label */
    ngx_str_t                  label_value;
    ngx_str_t                  value;
    uint32_t                   type;         /* NGX_HTTP_OBS_METRIC_* */
} ngx_http_obs_observation_t;

/* the wire's and the sidecar's (framing.h, common/metric_names.h) */
#define NGX_HTTP_OBS_METRIC_COUNTER    OBS_METRIC_COUNTER
#define NGX_HTTP_OBS_METRIC_GAUGE      OBS_METRIC_GAUGE
#define NGX_HTTP_OBS_MAX_METRICS       16     /* per location */
#define NGX_HTTP_OBS_METRIC_NAME_MAX   METRIC_NAME_MAX
#define NGX_HTTP_OBS_METRIC_LABEL_MAX  METRIC_LABEL_MAX  /* name or value */
#define NGX_HTTP_OBS_METRIC_VALUE_MAX  METRIC_VALUE_MAX

/* the most text one observation adds to a batch */
#define NGX_HTTP_OBS_METRIC_TEXT                                             \
    (NGX_HTTP_OBS_METRIC_NAME_MAX + 2 * NGX_HTTP_OBS_METRIC_LABEL_MAX        \
     + NGX_HTTP_OBS_METRIC_VALUE_MAX)


/*
 * Which of a record's texts live as long as the worker (configuration or
 * static names): the batch recognises those by their address alone.  A bit
 * per text column of proto/obs/v1/columns.def.
 */
enum {
#define OBS_SYMBOL(group, column, field, text, max)                           \
    ngx_http_obs_text_column_##column,
#include "obs/v1/columns.def"
    ngx_http_obs_text_columns
};

#define NGX_HTTP_OBS_STABLE(column)                                          \
    ((ngx_uint_t) 1 << ngx_http_obs_text_column_##column)


/* One request's record, pointing at the request's own memory. */
typedef struct {
    uint64_t                   start_time_unix_nano;
    uint64_t                   duration_us;
    uint64_t                   request_bytes;
    uint64_t                   response_bytes;
    uint64_t                   request_body_bytes;
    uint64_t                   response_body_bytes;
    uint32_t                   status;
    uint32_t                   trace_flags;
    uint32_t                   server_port;
    uint32_t                   upstream_span;
    uint32_t                   from_request; /* OBS_FROM_REQUEST_* */
    ngx_uint_t                 stable;       /* NGX_HTTP_OBS_STABLE() */

    ngx_str_t                  method;
    ngx_str_t                  route;
    ngx_str_t                  path;
    ngx_str_t                  upstream_name;
    ngx_str_t                  tenant;
    ngx_str_t                  service;
    ngx_str_t                  client_address;
    ngx_str_t                  user_agent;
    ngx_str_t                  request_id;
    ngx_str_t                  tracestate;
    ngx_str_t                  scheme;
    ngx_str_t                  server_address;
    ngx_str_t                  protocol;

    u_char                    *trace_id;
    u_char                    *span_id;
    u_char                    *parent_span_id;  /* NULL: none */

    ngx_uint_t                 n_upstreams;
    ngx_http_obs_attempt_t     upstreams[NGX_HTTP_OBS_MAX_ATTEMPTS];

    ngx_uint_t                 n_metrics;    /* obs_metric observations */
    ngx_http_obs_observation_t metrics[NGX_HTTP_OBS_MAX_METRICS];
    ngx_uint_t                 n_fields;     /* obs_log_field */
    ngx_http_obs_log_field_t   fields[NGX_HTTP_OBS_MAX_FIELDS];
    ngx_uint_t                 n_audit;      /* 0 or 1 */
    ngx_http_obs_audit_t       audit[NGX_HTTP_OBS_MAX_AUDIT];
} ngx_http_obs_record_t;


typedef struct ngx_http_obs_columns_s  ngx_http_obs_columns_t;


extern ngx_module_t  ngx_http_obs_module;


/* Now in microseconds on the clock given (CLOCK_REALTIME, CLOCK_MONOTONIC). */
static ngx_inline uint64_t
ngx_http_obs_clock_us(clockid_t clock)
{
    struct timespec  ts;

    (void) clock_gettime(clock, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}


/* Word loads shared with the symbol hash (common/hash.h). */
#define ngx_http_obs_load8(p)             hash_load8(p)
#define ngx_http_obs_load_short(p, len)   hash_load_short(p, len)


/*
 * Tells whether len bytes at a and b are the same.  Names and symbols are
 * short: an inline comparison beats a call to memcmp().
 */

static ngx_inline ngx_uint_t
ngx_http_obs_same(const u_char *a, const u_char *b, size_t len)
{
    if (len < 8) {
        return ngx_http_obs_load_short(a, len)
               == ngx_http_obs_load_short(b, len);
    }

    for ( /* void */ ; len > 8; len -= 8, a += 8, b += 8) {
        if (ngx_http_obs_load8(a) != ngx_http_obs_load8(b)) {
            return 0;
        }
    }

    return ngx_http_obs_load8(a + len - 8) == ngx_http_obs_load8(b + len - 8);
}


/*
 * Tells whether h is the header name, a lowercase constant.  Header names
 * arrive in any case; lowcase_key is nginx's lowercase copy.  Length and
 * first letter rule out nearly every other header for free.
 */

static ngx_inline ngx_int_t
ngx_http_obs_header_is(ngx_table_elt_t *h, ngx_str_t *name)
{
    return h->key.len == name->len
           && h->lowcase_key[0] == name->data[0]
           && ngx_http_obs_same(h->lowcase_key, name->data, name->len);
}


/* directive values (ngx_http_obs_value.c) */
char *ngx_http_obs_set_value_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_obs_compile_value(ngx_conf_t *cf, ngx_str_t *text,
    ngx_http_obs_value_t *v);
ngx_int_t ngx_http_obs_check_export(ngx_conf_t *cf, ngx_str_t *text);
ngx_uint_t ngx_http_obs_reads_variable(ngx_str_t *text, ngx_str_t *name);
ngx_int_t ngx_http_obs_value(ngx_http_request_t *r, ngx_http_obs_value_t *v,
    ngx_str_t *value);

/* the request's context (ngx_http_obs_context.c) */
ngx_http_obs_ctx_t *ngx_http_obs_find_ctx(ngx_http_request_t *r);
void ngx_http_obs_free_contexts(void);

/* the client's headers (ngx_http_obs_headers.c) */
void ngx_http_obs_headers_init(ngx_http_obs_main_conf_t *omcf);
void ngx_http_obs_headers_add(ngx_http_obs_main_conf_t *omcf,
    ngx_str_t *name);
NGX_HTTP_OBS_LOCAL void ngx_http_obs_find_headers(ngx_http_request_t *r,
    ngx_http_obs_found_t *found);
ngx_uint_t ngx_http_obs_lone_header(ngx_http_request_t *r,
    ngx_http_obs_value_t *v, ngx_str_t *value);

/* W3C trace context (ngx_http_obs_trace.c) */
void ngx_http_obs_trace_init(void);
NGX_HTTP_OBS_LOCAL void ngx_http_obs_start_trace(ngx_http_request_t *r,
    ngx_http_obs_ctx_t *ctx);
ngx_int_t ngx_http_obs_inject(ngx_http_request_t *r, ngx_http_obs_ctx_t *ctx);
ngx_table_elt_t *ngx_http_obs_incoming_traceparent(ngx_http_request_t *r,
    ngx_uint_t *n);

/* trace and span ids (ngx_http_obs_ids.c) */
void ngx_http_obs_ids_init(void);
uint64_t ngx_http_obs_random(void);
void ngx_http_obs_new_id(uint8_t *id, size_t len);

/* route and tenant labels (ngx_http_obs_labels.c) */
void ngx_http_obs_set_route(ngx_http_request_t *r, ngx_http_obs_ctx_t *ctx);
ngx_int_t ngx_http_obs_tenant(ngx_http_request_t *r, ngx_str_t *tenant);

/* upstream attempts (ngx_http_obs_upstream.c) */
ngx_int_t ngx_http_obs_wrap_upstreams(ngx_conf_t *cf);
void ngx_http_obs_set_attempt_id(ngx_http_obs_ctx_t *ctx, ngx_uint_t n,
    ngx_http_obs_loc_conf_t *olcf);

/* requests in flight (ngx_http_obs_active.c); NULL: not counted here */
extern void  *ngx_http_obs_active_table;

ngx_int_t ngx_http_obs_active_zone(ngx_conf_t *cf,
    ngx_http_obs_main_conf_t *omcf);
void ngx_http_obs_active_enter(ngx_http_request_t *r,
    ngx_http_obs_ctx_t *ctx);
void ngx_http_obs_active_leave(ngx_http_obs_ctx_t *ctx);
void ngx_http_obs_active_init(ngx_http_obs_main_conf_t *omcf);
void ngx_http_obs_active_start(void);
ngx_uint_t ngx_http_obs_active_pending(void);
ngx_uint_t ngx_http_obs_active_busy(void);
void ngx_http_obs_active_sent(void);
ngx_uint_t ngx_http_obs_active_snapshot(void *header, ngx_uint_t closed);

/* $obs_* variables (ngx_http_obs_variables.c) */
ngx_int_t ngx_http_obs_add_variables(ngx_conf_t *cf);
ngx_int_t ngx_http_obs_add_variable_table(ngx_conf_t *cf,
    ngx_http_variable_t *vars);

/* the record (ngx_http_obs_record.c) */
ngx_int_t ngx_http_obs_record(ngx_http_request_t *r, ngx_http_obs_ctx_t *ctx);

/* obs_metric (ngx_http_obs_metrics.c) */
char *ngx_http_obs_metric(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
void ngx_http_obs_metrics_record(ngx_http_request_t *r,
    ngx_http_obs_loc_conf_t *olcf, ngx_http_obs_record_t *rec);

/* obs_log_field (ngx_http_obs_fields.c) */
char *ngx_http_obs_log_field(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_obs_record_fields(ngx_http_request_t *r, ngx_array_t *fields,
    ngx_http_obs_record_t *rec);
EVP_MAC_CTX *ngx_http_obs_mac_conf(ngx_conf_t *cf, ngx_str_t *param,
    ngx_str_t *directive);
ngx_int_t ngx_http_obs_hmac_hex(ngx_http_request_t *r, EVP_MAC_CTX *mac,
    ngx_str_t *value);

/* the audit trail (ngx_http_obs_audit.c, ngx_http_obs_digest.c) */
extern ngx_uint_t  ngx_http_obs_audit_possible;

char *ngx_http_obs_audit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_obs_audit_merge(ngx_conf_t *cf, ngx_http_obs_loc_conf_t *prev,
    ngx_http_obs_loc_conf_t *conf);
ngx_int_t ngx_http_obs_audit_zone(ngx_conf_t *cf,
    ngx_http_obs_main_conf_t *omcf);
ngx_int_t ngx_http_obs_audit_init(ngx_conf_t *cf,
    ngx_http_obs_main_conf_t *omcf);
void ngx_http_obs_audit_record(ngx_http_request_t *r,
    ngx_http_obs_ctx_t *ctx, ngx_http_obs_loc_conf_t *route_conf,
    ngx_http_obs_record_t *rec);
ngx_int_t ngx_http_obs_config_digest(ngx_conf_t *cf, u_char *digest);

/* the open batch in column form (ngx_http_obs_columns.c) */
ngx_http_obs_columns_t *ngx_http_obs_columns_create(ngx_pool_t *pool,
    size_t datagram_size);
void ngx_http_obs_columns_reset(ngx_http_obs_columns_t *cols);
ngx_uint_t ngx_http_obs_columns_count(ngx_http_obs_columns_t *cols);
size_t ngx_http_obs_columns_record_max(void);
ngx_int_t ngx_http_obs_columns_fits(ngx_http_obs_columns_t *cols,
    ngx_http_obs_record_t *rec, size_t limit);
void ngx_http_obs_columns_add(ngx_http_obs_columns_t *cols,
    ngx_http_obs_record_t *rec);
ngx_int_t ngx_http_obs_columns_fits_audit(ngx_http_obs_columns_t *cols,
    ngx_http_obs_record_t *rec, size_t limit);
void ngx_http_obs_columns_add_audit(ngx_http_obs_columns_t *cols,
    ngx_http_obs_record_t *rec);
size_t ngx_http_obs_columns_bound(ngx_http_obs_columns_t *cols);
size_t ngx_http_obs_columns_packed_size(ngx_http_obs_columns_t *cols);
size_t ngx_http_obs_columns_pack(ngx_http_obs_columns_t *cols, u_char *out);
uint32_t ngx_http_obs_hash(const u_char *p, size_t len);

/* emission (ngx_http_obs_batch.c; the rest in ngx_http_obs_emit.h) */
ngx_int_t ngx_http_obs_emit_init(ngx_cycle_t *cycle,
    ngx_http_obs_main_conf_t *omcf);
void ngx_http_obs_emit_exit(void);
void ngx_http_obs_emit_exit_master(ngx_http_obs_main_conf_t *omcf);
ngx_int_t ngx_http_obs_emit(ngx_http_obs_record_t *rec);
void ngx_http_obs_emit_wake(void);

/* the zone of drop counts (ngx_http_obs_drops.c) */
ngx_int_t ngx_http_obs_emit_zone(ngx_conf_t *cf,
    ngx_http_obs_sidecar_t *sidecar);

/* keys (ngx_http_obs_key.c) */
char *ngx_http_obs_read_key(ngx_conf_t *cf, ngx_str_t *path, ngx_str_t *key,
    const char *directive);
EVP_MAC_CTX *ngx_http_obs_hmac_new(ngx_str_t *key);


/*
 * Returns the request's context, creating it on first use: the context is
 * read several times a request, and nearly always already there.
 */

static ngx_inline ngx_http_obs_ctx_t *
ngx_http_obs_get_ctx(ngx_http_request_t *r)
{
    ngx_http_obs_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_obs_module);

    return ctx ? ctx : ngx_http_obs_find_ctx(r);
}


#endif /* _NGX_HTTP_OBS_MODULE_H_INCLUDED_ */
