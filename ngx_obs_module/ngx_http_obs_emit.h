/*
 * The worker's emitter: its state and what the files that send records to
 * the sidecar share.
 *
 *   ngx_http_obs_batch.c   records into open batches, sealed batches in
 *                          the bounded buffer, the flush timer, start and
 *                          exit (the overview is there)
 *   ngx_http_obs_send.c    one datagram: the batch header, the HMAC tag,
 *                          the socket
 *   ngx_http_obs_drops.c   drop counts that outlive a worker (the shared
 *                          zone), and a datagram of counts alone
 *   ngx_http_obs_active.c  snapshots of requests in flight, each in a
 *                          datagram of its own
 */

#ifndef _NGX_HTTP_OBS_EMIT_H_INCLUDED_
#define _NGX_HTTP_OBS_EMIT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_module.h"


#define NGX_HTTP_OBS_HOST_MAX         128
#define NGX_HTTP_OBS_ERROR_LOG_EVERY  60000

/* protobuf keys: field number << 3 | wire type 2 (length-delimited) */
#define NGX_HTTP_OBS_BATCH_HEADER_KEY   0x0a
#define NGX_HTTP_OBS_BATCH_COLUMNS_KEY  0x1a

/* why audit events were never admitted (delta_audit_dropped_*) */
#define NGX_HTTP_OBS_AUDIT_BUFFER_FULL  0
#define NGX_HTTP_OBS_AUDIT_OVERSIZE     1
#define NGX_HTTP_OBS_AUDIT_EXIT         2
#define NGX_HTTP_OBS_AUDIT_REASONS      3

/*
 * Why records were dropped (proto/obs/v1/drop_reasons.def): the order of
 * the dropped[] counters and of the BatchHeader fields that carry them.
 */
enum {
#define OBS_MODULE_DROP(ID, reason, field)  NGX_HTTP_OBS_DROP_##ID,
#include "obs/v1/drop_reasons.def"
    NGX_HTTP_OBS_DROP_REASONS
};


typedef struct {
    ngx_http_obs_sidecar_t  *sidecar;
    ngx_socket_t             fd;
    unsigned                 connected:1;
    EVP_MAC_CTX             *mac;          /* keyed, when key= is set */

    unsigned                 announce:1;   /* no header sent yet */
    ngx_http_obs_columns_t  *open;         /* the batch records join */
    ngx_http_obs_columns_t  *audit;        /* ... those with an audit event */
    size_t                   batch_limit;  /* packed bytes it may reach */
    size_t                   open_limit;   /* ... "open", beside the reserve */
    size_t                   reserve;      /* bytes only "audit" may use */

    u_char                  *start;        /* sealed batches waiting */
    u_char                  *pos;
    u_char                  *end;

    ngx_event_t              flush_event;
    ngx_msec_t               retry_at;
    ngx_msec_t               error_logged_at;
    ngx_msec_t               audit_logged_at;

    uint64_t                 worker_start;
    uint64_t                 sequence;
    uint64_t                 records_total;

    /* dropped since the last datagram that was sent, by reason */
    uint64_t                 dropped[NGX_HTTP_OBS_DROP_REASONS];

    /* the audit trail: events admitted, and those never admitted since
       the last datagram that was sent */
    uint64_t                 audit_sequence;
    uint64_t                 audit_dropped[NGX_HTTP_OBS_AUDIT_REASONS];
    ngx_http_obs_audit_shm_t *audit_shm;   /* the zone "obs_audit" */
    ngx_http_obs_main_conf_t *conf;
} ngx_http_obs_emitter_t;


/* ngx_http_obs_send.c */
NGX_HTTP_OBS_LOCAL size_t ngx_http_obs_batch_header(ngx_http_obs_emitter_t *e,
    u_char *out);
NGX_HTTP_OBS_LOCAL uint64_t ngx_http_obs_unix_nano(void);
NGX_HTTP_OBS_LOCAL ngx_int_t ngx_http_obs_send(ngx_http_obs_emitter_t *e,
    u_char *header, size_t header_len, u_char *chunk, size_t chunk_len);
NGX_HTTP_OBS_LOCAL ngx_int_t ngx_http_obs_connect(ngx_http_obs_emitter_t *e);
NGX_HTTP_OBS_LOCAL ngx_int_t ngx_http_obs_mac_init(ngx_http_obs_emitter_t *e);

/* ngx_http_obs_drops.c */
NGX_HTTP_OBS_LOCAL ngx_uint_t ngx_http_obs_claim(ngx_http_obs_emitter_t *e);
NGX_HTTP_OBS_LOCAL void ngx_http_obs_unclaim(ngx_http_obs_emitter_t *e);
NGX_HTTP_OBS_LOCAL ngx_int_t ngx_http_obs_send_counts(
    ngx_http_obs_emitter_t *e);

/* ngx_http_obs_active.c */
NGX_HTTP_OBS_LOCAL ngx_int_t ngx_http_obs_send_active(
    ngx_http_obs_emitter_t *e, ngx_uint_t closed);


/* Writes a protobuf length (a varint); returns where it ends. */

static ngx_inline u_char *
ngx_http_obs_write_varint(u_char *p, size_t n)
{
    while (n >= 0x80) {
        *p++ = (u_char) (n | 0x80);
        n >>= 7;
    }

    *p++ = (u_char) n;

    return p;
}


/* Reads a length this worker wrote itself. */

static ngx_inline u_char *
ngx_http_obs_read_varint(u_char *p, size_t *n)
{
    size_t      value;
    ngx_uint_t  shift;

    value = 0;

    for (shift = 0; /* void */; shift += 7) {
        value |= (size_t) (*p & 0x7f) << shift;

        if (!(*p++ & 0x80)) {
            break;
        }
    }

    *n = value;

    return p;
}


#endif /* _NGX_HTTP_OBS_EMIT_H_INCLUDED_ */
