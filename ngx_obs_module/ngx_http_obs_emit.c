/*
 * Emission of records to the sidecar.  Each worker adds records to an open
 * batch in column form (ngx_http_obs_columns.c) as large as one datagram.
 * A full batch, or any batch when the flush timer fires or the worker
 * exits, is sealed: packed into a bounded buffer of datagrams waiting to be
 * sent, each a complete obs.v1.Batch (a BatchHeader, then the columns).
 * The request path never waits for the socket.  When the sidecar is absent
 * or not reading, sealed batches stay in the buffer until it is full, then
 * new records are dropped and counted; the counts ride the next header.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_module.h"
#include "obs/v1/record.pb-c.h"


/* 2: records may come in column form */
#define NGX_HTTP_OBS_SCHEMA_VERSION   2
#define NGX_HTTP_OBS_HEADER_MAX       256
#define NGX_HTTP_OBS_HOST_MAX         128
#define NGX_HTTP_OBS_ERROR_LOG_EVERY  60000

/* protobuf keys: field number << 3 | wire type 2 (length-delimited) */
#define NGX_HTTP_OBS_BATCH_HEADER_KEY   0x0a
#define NGX_HTTP_OBS_BATCH_COLUMNS_KEY  0x1a

/*
 * A sealed batch in the buffer: its record count (kept, not sent), then the
 * columns field's key and length and the packed columns.
 */
#define NGX_HTTP_OBS_FRAME_COUNT      sizeof(uint32_t)
#define NGX_HTTP_OBS_FRAME_MAX        (NGX_HTTP_OBS_FRAME_COUNT + 1 + 3)


typedef struct {
    ngx_http_obs_sidecar_t  *sidecar;
    ngx_socket_t             fd;
    unsigned                 connected:1;

    ngx_http_obs_columns_t  *open;         /* the batch records join */
    size_t                   batch_limit;  /* packed bytes it may reach */

    u_char                  *start;        /* sealed batches waiting */
    u_char                  *pos;
    u_char                  *end;

    ngx_event_t              flush_event;
    ngx_msec_t               retry_at;
    ngx_msec_t               error_logged_at;

    uint64_t                 worker_start;
    uint64_t                 sequence;
    uint64_t                 records_total;
    uint64_t                 dropped_buffer_full;
    uint64_t                 dropped_send_failed;
    uint64_t                 dropped_oversize;
} ngx_http_obs_emitter_t;


static void ngx_http_obs_flush_handler(ngx_event_t *ev);
static void ngx_http_obs_flush(ngx_http_obs_emitter_t *e, ngx_uint_t force);
static ngx_int_t ngx_http_obs_seal(ngx_http_obs_emitter_t *e);
static u_char *ngx_http_obs_frame_end(u_char *p, ngx_uint_t *records);
static size_t ngx_http_obs_batch_header(ngx_http_obs_emitter_t *e,
    u_char *out);
static ngx_int_t ngx_http_obs_send(ngx_http_obs_emitter_t *e, u_char *header,
    size_t header_len, u_char *chunk, size_t chunk_len);
static ngx_int_t ngx_http_obs_connect(ngx_http_obs_emitter_t *e);
static void ngx_http_obs_send_error(ngx_http_obs_emitter_t *e,
    ngx_err_t err);
static u_char *ngx_http_obs_write_varint(u_char *p, size_t n);
static u_char *ngx_http_obs_read_varint(u_char *p, size_t *n);


static ngx_http_obs_emitter_t  ngx_http_obs_emitter = { .fd = -1 };


ngx_int_t
ngx_http_obs_emit_init(ngx_cycle_t *cycle, ngx_http_obs_sidecar_t *sidecar)
{
    ngx_time_t              *tp;
    ngx_http_obs_emitter_t  *e;

    e = &ngx_http_obs_emitter;

    e->sidecar = sidecar;
    e->start = ngx_palloc(cycle->pool, sidecar->buffer_size);
    if (e->start == NULL) {
        return NGX_ERROR;
    }

    e->pos = e->start;
    e->end = e->start + sidecar->buffer_size;

    e->open = ngx_http_obs_columns_create(cycle->pool,
                                          sidecar->datagram_size);
    if (e->open == NULL) {
        return NGX_ERROR;
    }

    e->batch_limit = sidecar->datagram_size - NGX_HTTP_OBS_HEADER_MAX
                     - (NGX_HTTP_OBS_FRAME_MAX - NGX_HTTP_OBS_FRAME_COUNT);

    tp = ngx_timeofday();
    e->worker_start = ((uint64_t) tp->sec * 1000 + tp->msec) * 1000000;

    e->flush_event.handler = ngx_http_obs_flush_handler;
    e->flush_event.data = e;
    e->flush_event.log = cycle->log;
    e->flush_event.cancelable = 1;

    e->fd = ngx_socket(sidecar->sockaddr->sa_family, SOCK_DGRAM, 0);
    if (e->fd == (ngx_socket_t) -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_socket_errno,
                      "obs: " ngx_socket_n " failed");
        return NGX_ERROR;
    }

    if (ngx_nonblocking(e->fd) == -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_socket_errno,
                      "obs: " ngx_nonblocking_n " failed");
        return NGX_ERROR;
    }

    /* an absent sidecar is not an error: records wait and are retried */

    (void) ngx_http_obs_connect(e);

    return NGX_OK;
}


/* Sends what is left at worker exit; whatever cannot go is counted lost. */

void
ngx_http_obs_emit_exit(void)
{
    u_char                  *p;
    ngx_uint_t               n;
    ngx_http_obs_emitter_t  *e;

    e = &ngx_http_obs_emitter;

    if (e->start == NULL) {
        return;
    }

    ngx_http_obs_flush(e, 1);

    n = ngx_http_obs_columns_count(e->open);

    for (p = e->start; p < e->pos; p = ngx_http_obs_frame_end(p, &n)) {
        /* count the records that never left */
    }

    if (n) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "obs: %ui records not delivered to \"%V\" at exit",
                      n, &e->sidecar->name);
    }

    if (e->fd != (ngx_socket_t) -1) {
        (void) ngx_close_socket(e->fd);
        e->fd = (ngx_socket_t) -1;
    }

    e->start = NULL;
}


/*
 * Adds a record to the open batch, sealing that batch first when the record
 * does not fit; returns NGX_DECLINED when the record is dropped (counted).
 */

ngx_int_t
ngx_http_obs_emit(ngx_http_obs_record_t *rec)
{
    ngx_http_obs_emitter_t  *e;

    e = &ngx_http_obs_emitter;

    if (e->start == NULL) {
        return NGX_DECLINED;
    }

    if (!ngx_http_obs_columns_fits(e->open, rec, e->batch_limit)) {

        if (ngx_http_obs_columns_count(e->open) == 0) {
            e->dropped_oversize++;
            return NGX_DECLINED;
        }

        if (ngx_http_obs_seal(e) != NGX_OK) {
            e->dropped_buffer_full++;
            return NGX_DECLINED;
        }

        ngx_http_obs_flush(e, 0);

        if (!ngx_http_obs_columns_fits(e->open, rec, e->batch_limit)) {
            e->dropped_oversize++;
            return NGX_DECLINED;
        }
    }

    ngx_http_obs_columns_add(e->open, rec);
    e->records_total++;

    if (!e->flush_event.timer_set) {
        ngx_add_timer(&e->flush_event, e->sidecar->flush);
    }

    return NGX_OK;
}


static void
ngx_http_obs_flush_handler(ngx_event_t *ev)
{
    ngx_http_obs_emitter_t  *e = ev->data;

    ngx_http_obs_flush(e, 1);

    if (e->pos > e->start || ngx_http_obs_columns_count(e->open)) {
        ngx_add_timer(&e->flush_event, e->sidecar->flush);
    }
}


/*
 * Sends the sealed batches, and with force first seals the open one.  After
 * a failure that a later attempt may cure, sends pause until the next timer
 * so that a missing sidecar costs no system call per request.
 */

static void
ngx_http_obs_flush(ngx_http_obs_emitter_t *e, ngx_uint_t force)
{
    u_char      *p, *last, *frame, header[NGX_HTTP_OBS_HEADER_MAX];
    size_t       header_len;
    ngx_int_t    rc;
    ngx_uint_t   n;

    if (force && ngx_http_obs_columns_count(e->open)) {
        (void) ngx_http_obs_seal(e);
    }

    if (!force && (ngx_msec_int_t) (e->retry_at - ngx_current_msec) > 0) {
        return;
    }

    if (!e->connected && ngx_http_obs_connect(e) != NGX_OK) {
        e->retry_at = ngx_current_msec + e->sidecar->flush;
        return;
    }

    p = e->start;

    while (p < e->pos) {
        n = 0;
        last = ngx_http_obs_frame_end(p, &n);
        frame = p + NGX_HTTP_OBS_FRAME_COUNT;

        header_len = ngx_http_obs_batch_header(e, header);

        rc = ngx_http_obs_send(e, header, header_len, frame, last - frame);

        if (rc == NGX_AGAIN) {
            e->retry_at = ngx_current_msec + e->sidecar->flush;
            break;
        }

        if (rc == NGX_ERROR) {
            e->dropped_send_failed += n;
        }

        e->sequence++;
        p = last;
    }

    if (p > e->start) {
        ngx_memmove(e->start, p, e->pos - p);
        e->pos -= p - e->start;
    }
}


/*
 * Packs the open batch into the buffer of waiting datagrams, making room
 * by sending when needed; NGX_DECLINED when there is none.
 */

static ngx_int_t
ngx_http_obs_seal(ngx_http_obs_emitter_t *e)
{
    u_char    *p;
    size_t     size;
    uint32_t   count;

    size = ngx_http_obs_columns_packed_size(e->open);

    /* the bound decides what fits a datagram: it must never be short */

    if (size > ngx_http_obs_columns_bound(e->open)) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "obs: a batch packed to %uz bytes, over its bound %uz",
                      size, ngx_http_obs_columns_bound(e->open));
    }

    if ((size_t) (e->end - e->pos) < NGX_HTTP_OBS_FRAME_MAX + size) {
        ngx_http_obs_flush(e, 0);

        if ((size_t) (e->end - e->pos) < NGX_HTTP_OBS_FRAME_MAX + size) {
            return NGX_DECLINED;
        }
    }

    count = (uint32_t) ngx_http_obs_columns_count(e->open);
    ngx_memcpy(e->pos, &count, NGX_HTTP_OBS_FRAME_COUNT);

    p = e->pos + NGX_HTTP_OBS_FRAME_COUNT;
    *p++ = NGX_HTTP_OBS_BATCH_COLUMNS_KEY;
    p = ngx_http_obs_write_varint(p, size);

    e->pos = p + ngx_http_obs_columns_pack(e->open, p);

    ngx_http_obs_columns_reset(e->open);

    return NGX_OK;
}


/* Returns the end of the sealed batch at p and adds its records. */

static u_char *
ngx_http_obs_frame_end(u_char *p, ngx_uint_t *records)
{
    size_t    len;
    uint32_t  count;

    ngx_memcpy(&count, p, NGX_HTTP_OBS_FRAME_COUNT);
    *records += count;

    p = ngx_http_obs_read_varint(p + NGX_HTTP_OBS_FRAME_COUNT + 1, &len);

    return p + len;
}


static size_t
ngx_http_obs_batch_header(ngx_http_obs_emitter_t *e, u_char *out)
{
    u_char                *p;
    size_t                 size;
    Obs__V1__BatchHeader   h = OBS__V1__BATCH_HEADER__INIT;

    h.schema_version = NGX_HTTP_OBS_SCHEMA_VERSION;
    h.pid = (uint32_t) ngx_pid;
    h.worker_start_unix_nano = e->worker_start;
    h.sequence = e->sequence;
    h.records_total = e->records_total;
    h.dropped_buffer_full = e->dropped_buffer_full;
    h.dropped_send_failed = e->dropped_send_failed;
    h.dropped_oversize = e->dropped_oversize;
    h.host.data = ngx_cycle->hostname.data;
    h.host.len = ngx_min(ngx_cycle->hostname.len, NGX_HTTP_OBS_HOST_MAX);

    size = obs__v1__batch_header__get_packed_size(&h);

    out[0] = NGX_HTTP_OBS_BATCH_HEADER_KEY;
    p = ngx_http_obs_write_varint(out + 1, size);
    obs__v1__batch_header__pack(&h, p);

    return p + size - out;
}


/*
 * Returns NGX_OK when sent, NGX_AGAIN when the sidecar is busy or gone (the
 * data stays), NGX_ERROR when this datagram can never be sent.
 */

static ngx_int_t
ngx_http_obs_send(ngx_http_obs_emitter_t *e, u_char *header,
    size_t header_len, u_char *chunk, size_t chunk_len)
{
    ssize_t        n;
    ngx_err_t      err;
    struct iovec   iov[2];
    struct msghdr  msg;

    iov[0].iov_base = header;
    iov[0].iov_len = header_len;
    iov[1].iov_base = chunk;
    iov[1].iov_len = chunk_len;

    ngx_memzero(&msg, sizeof(struct msghdr));
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;

    n = sendmsg(e->fd, &msg, 0);

    if (n == (ssize_t) (header_len + chunk_len)) {
        return NGX_OK;
    }

    err = (n == -1) ? ngx_socket_errno : EMSGSIZE;

    ngx_http_obs_send_error(e, err);

    switch (err) {

    case NGX_EAGAIN:
    case ENOBUFS:
        return NGX_AGAIN;

    /* the sidecar is gone, restarting or shutting down: wait for the next */

    case NGX_ECONNREFUSED:
    case NGX_ENOENT:
    case NGX_ENOTCONN:
    case NGX_ECONNRESET:
    case NGX_EPIPE:
    case EDESTADDRREQ:
        e->connected = 0;
        return NGX_AGAIN;

    default:
        return NGX_ERROR;
    }
}


static ngx_int_t
ngx_http_obs_connect(ngx_http_obs_emitter_t *e)
{
    if (connect(e->fd, e->sidecar->sockaddr, e->sidecar->socklen) == -1) {
        ngx_http_obs_send_error(e, ngx_socket_errno);
        return NGX_ERROR;
    }

    e->connected = 1;

    return NGX_OK;
}


/* Logs at most once a minute: a missing sidecar must not flood the log. */

static void
ngx_http_obs_send_error(ngx_http_obs_emitter_t *e, ngx_err_t err)
{
    if (e->error_logged_at
        && ngx_current_msec - e->error_logged_at < NGX_HTTP_OBS_ERROR_LOG_EVERY)
    {
        return;
    }

    e->error_logged_at = ngx_current_msec ? ngx_current_msec : 1;

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, err,
                  "obs: cannot send records to \"%V\"", &e->sidecar->name);
}


static u_char *
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

static u_char *
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
