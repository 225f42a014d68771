/*
 * Emission of records to the sidecar.  Each worker adds records to an open
 * batch in column form (ngx_http_obs_columns.c) as large as one datagram.
 * A full batch, or any batch when the flush timer fires or the worker
 * exits, is sealed: packed into a bounded buffer of datagrams waiting to be
 * sent, each a complete obs.v1.Batch (a BatchHeader, then the columns).
 * The request path never waits for the socket.  When the sidecar is absent
 * or not reading, sealed batches stay in the buffer until it is full, then
 * new records are dropped and counted; the counts ride the next header
 * that is sent, as deltas, so that a restarted sidecar adds nothing twice.
 * What a worker still holds when it exits is counted in a shared memory
 * zone; the next datagram of any worker of this nginx carries the count,
 * and when nginx stops the master reports what is left.
 *
 * Audit events (ngx_http_obs_audit.c) ride their requests' records, and are
 * never the ones shed: where they can be made, those records join an open
 * batch of their own, and a quarter of the buffer is kept for it, which
 * other batches may not use: when the buffer fills, access records are
 * dropped first.  Each event admitted is numbered; those never admitted
 * are counted apart, and reported as the record drops are.
 *
 * What makes and sends one datagram is ngx_http_obs_send.c; the drop
 * counts and their shared zone, ngx_http_obs_drops.c; the state all share,
 * ngx_http_obs_emit.h.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>

#include "ngx_http_obs_emit.h"
#include "ngx_http_obs_jwt_module.h"
#include "obs/v1/record.pb-c.h"


/*
 * A sealed batch in the buffer: its record and audit event counts (kept,
 * not sent), then the columns field's key and length and the packed
 * columns.
 */
#define NGX_HTTP_OBS_FRAME_COUNT      (2 * sizeof(uint32_t))
#define NGX_HTTP_OBS_FRAME_MAX        (NGX_HTTP_OBS_FRAME_COUNT + 1 + 3)

/* the part of buffer= kept for batches with audit events: 1 / this */
#define NGX_HTTP_OBS_AUDIT_RESERVE    4

/* how long a stopping master may wait for a busy sidecar, in seconds */
#define NGX_HTTP_OBS_EXIT_REPORT_WAIT  2


static void ngx_http_obs_drop(ngx_http_obs_emitter_t *e, ngx_uint_t reason,
    ngx_http_obs_record_t *rec);
static void ngx_http_obs_flush_handler(ngx_event_t *ev);
static void ngx_http_obs_flush(ngx_http_obs_emitter_t *e, ngx_uint_t force);
static ngx_int_t ngx_http_obs_emit_audit(ngx_http_obs_emitter_t *e,
    ngx_http_obs_record_t *rec);
static ngx_int_t ngx_http_obs_seal(ngx_http_obs_emitter_t *e,
    ngx_http_obs_columns_t *cols);
static u_char *ngx_http_obs_frame_end(u_char *p, ngx_uint_t *records,
    ngx_uint_t *audits);


static ngx_http_obs_emitter_t  ngx_http_obs_emitter = { .fd = -1 };


ngx_int_t
ngx_http_obs_emit_init(ngx_cycle_t *cycle, ngx_http_obs_main_conf_t *omcf)
{
    ngx_atomic_uint_t        n;
    ngx_http_obs_sidecar_t  *sidecar;
    ngx_http_obs_emitter_t  *e;

    e = &ngx_http_obs_emitter;
    sidecar = omcf->sidecar;

    e->sidecar = sidecar;
    e->conf = omcf;

    if (omcf->audit_zone) {
        e->audit_shm = omcf->audit_zone->data;
        e->reserve = sidecar->buffer_size / NGX_HTTP_OBS_AUDIT_RESERVE;
    }

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

    if (e->reserve) {
        e->audit = ngx_http_obs_columns_create(cycle->pool,
                                               sidecar->datagram_size);
        if (e->audit == NULL) {
            return NGX_ERROR;
        }
    }

    e->batch_limit = sidecar->datagram_size - NGX_HTTP_OBS_DATAGRAM_OVERHEAD;

    /* a batch of access records must fit the buffer outside the reserve */

    e->open_limit = ngx_min(e->batch_limit, sidecar->buffer_size - e->reserve
                                            - NGX_HTTP_OBS_FRAME_MAX);

    e->worker_start = ngx_http_obs_unix_nano();

    e->flush_event.handler = ngx_http_obs_flush_handler;
    e->flush_event.data = e;
    e->flush_event.log = cycle->log;
    e->flush_event.cancelable = 1;

    if (ngx_http_obs_mac_init(e) != NGX_OK) {
        return NGX_ERROR;
    }

    /*
     * every header names the configuration; where the audit trail is kept,
     * one worker of each new one tells it at once, traffic or not
     */

    for ( ;; ) {
        n = e->audit_shm ? e->audit_shm->announced : omcf->config_generation;

        if (n >= omcf->config_generation) {
            break;
        }

        if (ngx_atomic_cmp_set(&e->audit_shm->announced, n,
                               omcf->config_generation))
        {
            e->announce = 1;
            ngx_add_timer(&e->flush_event, sidecar->flush);
            break;
        }
    }

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
    ngx_uint_t               n, audits;
    ngx_http_obs_emitter_t  *e;

    e = &ngx_http_obs_emitter;

    if (e->start == NULL) {
        return;
    }

    ngx_http_obs_flush(e, 1);

    if (ngx_http_obs_active_pending()) {
        (void) ngx_http_obs_send_active(e, 0);     /* requests in flight */
    }

    n = ngx_http_obs_columns_count(e->open);
    audits = e->audit ? ngx_http_obs_columns_count(e->audit) : 0;
    n += audits;

    for (p = e->start; p < e->pos; p = ngx_http_obs_frame_end(p, &n, &audits))
    {
        /* count the records and audit events that never left */
    }

    e->dropped[NGX_HTTP_OBS_DROP_EXIT] += n;
    e->audit_dropped[NGX_HTTP_OBS_AUDIT_EXIT] += audits;

    /* a later datagram of another worker, or the master, reports them */
    ngx_http_obs_unclaim(e);

    if (audits) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "obs: %ui records (%ui audit events) not delivered to "
                      "\"%V\" at exit, counted as dropped", n, audits,
                      &e->sidecar->name);

    } else if (n) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "obs: %ui records not delivered to \"%V\" at exit, "
                      "counted as dropped", n, &e->sidecar->name);
    }

    if (e->fd != (ngx_socket_t) -1) {
        (void) ngx_close_socket(e->fd);
        e->fd = (ngx_socket_t) -1;
    }

    EVP_MAC_CTX_free(e->mac);
    e->mac = NULL;
    e->start = NULL;
}


/*
 * When nginx stops: reports the drops no worker could, waiting a little
 * for a busy sidecar (nginx is leaving anyway).
 */

void
ngx_http_obs_emit_exit_master(ngx_http_obs_main_conf_t *omcf)
{
    ngx_uint_t               pending;
    struct timeval           tv;
    ngx_http_obs_sidecar_t  *sidecar;
    Obs__V1__BatchHeader     h = OBS__V1__BATCH_HEADER__INIT;
    ngx_http_obs_emitter_t  *e;

    e = &ngx_http_obs_emitter;
    sidecar = omcf->sidecar;

    if (sidecar == NULL || sidecar->shared == NULL) {
        return;
    }

    e->sidecar = sidecar;
    e->conf = omcf;
    e->audit_shm = omcf->audit_zone ? omcf->audit_zone->data : NULL;
    e->worker_start = (uint64_t) ngx_time() * 1000000000;

    /* the drops no worker reported, and that nothing is in flight */

    pending = ngx_http_obs_claim(e);

    if ((!pending && !ngx_http_obs_active_snapshot(&h, 1))
        || ngx_http_obs_mac_init(e) != NGX_OK)
    {
        return;
    }

    if (e->fd == (ngx_socket_t) -1) {
        e->fd = ngx_socket(sidecar->sockaddr->sa_family, SOCK_DGRAM, 0);
        e->connected = 0;
    }

    tv.tv_sec = NGX_HTTP_OBS_EXIT_REPORT_WAIT;
    tv.tv_usec = 0;

    if (e->fd == (ngx_socket_t) -1
        || ngx_blocking(e->fd) == -1
        || setsockopt(e->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1
        || ngx_http_obs_connect(e) != NGX_OK
        || (pending && ngx_http_obs_send_counts(e) != NGX_OK))
    {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "obs: %uL records (%uL audit events) dropped at exit "
                      "could not be reported to \"%V\"",
                      e->dropped[NGX_HTTP_OBS_DROP_EXIT],
                      e->audit_dropped[NGX_HTTP_OBS_AUDIT_EXIT],
                      &sidecar->name);
    }

    if (e->fd != (ngx_socket_t) -1 && e->connected
        && ngx_http_obs_send_active(e, 1) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "obs: could not report to \"%V\" that no request is "
                      "in flight any more", &sidecar->name);
    }

    if (e->fd != (ngx_socket_t) -1) {
        (void) ngx_close_socket(e->fd);
        e->fd = (ngx_socket_t) -1;
    }

    EVP_MAC_CTX_free(e->mac);
    e->mac = NULL;
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

    if (rec->n_audit && e->audit) {
        return ngx_http_obs_emit_audit(e, rec);
    }

    if (!ngx_http_obs_columns_fits(e->open, rec, e->open_limit)) {

        if (ngx_http_obs_columns_count(e->open) == 0) {
            ngx_http_obs_drop(e, NGX_HTTP_OBS_DROP_OVERSIZE, rec);
            return NGX_DECLINED;
        }

        if (ngx_http_obs_seal(e, e->open) != NGX_OK) {
            ngx_http_obs_drop(e, NGX_HTTP_OBS_DROP_BUFFER_FULL, rec);
            return NGX_DECLINED;
        }

        ngx_http_obs_flush(e, 0);

        if (!ngx_http_obs_columns_fits(e->open, rec, e->open_limit)) {
            ngx_http_obs_drop(e, NGX_HTTP_OBS_DROP_OVERSIZE, rec);
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


/*
 * The same for a record with an audit event: its batch of their own may
 * use the reserve, and the event is numbered when admitted.
 */

static ngx_int_t
ngx_http_obs_emit_audit(ngx_http_obs_emitter_t *e, ngx_http_obs_record_t *rec)
{
    ngx_http_obs_columns_t  *cols;

    cols = e->audit;

    if (!ngx_http_obs_columns_fits_audit(cols, rec, e->batch_limit)) {

        if (ngx_http_obs_columns_count(cols) == 0) {
            ngx_http_obs_drop(e, NGX_HTTP_OBS_DROP_OVERSIZE, rec);
            return NGX_DECLINED;
        }

        if (ngx_http_obs_seal(e, cols) != NGX_OK) {
            ngx_http_obs_drop(e, NGX_HTTP_OBS_DROP_BUFFER_FULL, rec);
            return NGX_DECLINED;
        }

        ngx_http_obs_flush(e, 0);

        if (!ngx_http_obs_columns_fits_audit(cols, rec, e->batch_limit)) {
            ngx_http_obs_drop(e, NGX_HTTP_OBS_DROP_OVERSIZE, rec);
            return NGX_DECLINED;
        }
    }

    rec->audit[0].sequence = ++e->audit_sequence;

    ngx_http_obs_columns_add_audit(cols, rec);
    e->records_total++;

    if (!e->flush_event.timer_set) {
        ngx_add_timer(&e->flush_event, e->sidecar->flush);
    }

    return NGX_OK;
}


/*
 * Counts a dropped record (and its audit event); the flush timer makes sure
 * it is reported.
 */

static void
ngx_http_obs_drop(ngx_http_obs_emitter_t *e, ngx_uint_t reason,
    ngx_http_obs_record_t *rec)
{
    e->dropped[reason]++;

    if (rec->n_audit) {
        e->audit_dropped[reason == NGX_HTTP_OBS_DROP_OVERSIZE
                         ? NGX_HTTP_OBS_AUDIT_OVERSIZE
                         : NGX_HTTP_OBS_AUDIT_BUFFER_FULL]++;

        /* said at once, then at most once a minute: the count is exact */

        if (e->audit_logged_at == 0
            || ngx_current_msec - e->audit_logged_at
               >= NGX_HTTP_OBS_ERROR_LOG_EVERY)
        {
            e->audit_logged_at = ngx_current_msec ? ngx_current_msec : 1;

            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "obs: audit events cannot be kept for \"%V\" "
                          "(%s): they are counted as lost and reported",
                          &e->sidecar->name,
                          reason == NGX_HTTP_OBS_DROP_OVERSIZE
                          ? "too large" : "its buffer is full");
        }
    }

    if (!e->flush_event.timer_set) {
        ngx_add_timer(&e->flush_event, e->sidecar->flush);
    }
}


static void
ngx_http_obs_flush_handler(ngx_event_t *ev)
{
    ngx_http_obs_emitter_t  *e = ev->data;

    ngx_http_obs_flush(e, 1);

    if (ngx_http_obs_active_pending()) {
        (void) ngx_http_obs_send_active(e, 0);     /* requests in flight */
    }

    if (e->pos > e->start || ngx_http_obs_columns_count(e->open)
        || (e->audit && ngx_http_obs_columns_count(e->audit))
        || ngx_http_obs_claim(e) || e->announce
        || ngx_http_obs_active_pending() || ngx_http_obs_active_busy())
    {
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
    ngx_uint_t   n, audits;

    if (force && e->audit && ngx_http_obs_columns_count(e->audit)) {
        (void) ngx_http_obs_seal(e, e->audit);
    }

    if (force && ngx_http_obs_columns_count(e->open)) {
        (void) ngx_http_obs_seal(e, e->open);
    }

    if (!force && (ngx_msec_int_t) (e->retry_at - ngx_current_msec) > 0) {
        return;
    }

    if (!e->connected && ngx_http_obs_connect(e) != NGX_OK) {
        e->retry_at = ngx_current_msec + e->sidecar->flush;
        return;
    }

    p = e->start;

    /* drops with no batch to ride: the timer sends them alone */

    if (p == e->pos) {
        if (force && (ngx_http_obs_claim(e) || e->announce)
            && ngx_http_obs_send_counts(e) == NGX_AGAIN)
        {
            e->retry_at = ngx_current_msec + e->sidecar->flush;
        }

        return;
    }

    (void) ngx_http_obs_claim(e);

    while (p < e->pos) {
        n = 0;
        audits = 0;
        last = ngx_http_obs_frame_end(p, &n, &audits);
        frame = p + NGX_HTTP_OBS_FRAME_COUNT;

        header_len = ngx_http_obs_batch_header(e, header);

        rc = ngx_http_obs_send(e, header, header_len, frame, last - frame);

        if (rc == NGX_AGAIN) {
            e->retry_at = ngx_current_msec + e->sidecar->flush;
            break;
        }

        /*
         * the audit events of a batch that can never be sent leave a gap in
         * the sequence, which is how the sidecar counts them
         */

        if (rc == NGX_OK) {
            ngx_memzero(e->dropped, sizeof(e->dropped));
            ngx_memzero(e->audit_dropped, sizeof(e->audit_dropped));
            ngx_http_obs_jwt_batch_sent();
            e->announce = 0;

        } else {
            e->dropped[NGX_HTTP_OBS_DROP_SEND_FAILED] += n;
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
ngx_http_obs_seal(ngx_http_obs_emitter_t *e, ngx_http_obs_columns_t *cols)
{
    u_char    *p;
    size_t     size, kept;
    uint32_t   count[2];

    size = ngx_http_obs_columns_packed_size(cols);

    /* a batch without audit events leaves the reserve alone */

    kept = (cols == e->audit) ? 0 : e->reserve;

    /* the bound decides what fits a datagram: it must never be short */

    if (size > ngx_http_obs_columns_bound(cols)) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "obs: a batch packed to %uz bytes, over its bound %uz",
                      size, ngx_http_obs_columns_bound(cols));
    }

    if ((size_t) (e->end - e->pos) < NGX_HTTP_OBS_FRAME_MAX + size + kept) {
        ngx_http_obs_flush(e, 0);

        if ((size_t) (e->end - e->pos) < NGX_HTTP_OBS_FRAME_MAX + size + kept)
        {
            return NGX_DECLINED;
        }
    }

    count[0] = (uint32_t) ngx_http_obs_columns_count(cols);
    count[1] = (cols == e->audit) ? count[0] : 0;
    ngx_memcpy(e->pos, count, NGX_HTTP_OBS_FRAME_COUNT);

    p = e->pos + NGX_HTTP_OBS_FRAME_COUNT;
    *p++ = NGX_HTTP_OBS_BATCH_COLUMNS_KEY;
    p = ngx_http_obs_write_varint(p, size);

    e->pos = p + ngx_http_obs_columns_pack(cols, p);

    ngx_http_obs_columns_reset(cols);

    return NGX_OK;
}


/*
 * Returns the end of the sealed batch at p and adds its records and audit
 * events.
 */

static u_char *
ngx_http_obs_frame_end(u_char *p, ngx_uint_t *records, ngx_uint_t *audits)
{
    size_t    len;
    uint32_t  count[2];

    ngx_memcpy(count, p, NGX_HTTP_OBS_FRAME_COUNT);
    *records += count[0];
    *audits += count[1];

    p = ngx_http_obs_read_varint(p + NGX_HTTP_OBS_FRAME_COUNT + 1, &len);

    return p + len;
}


/* A count of requests in flight changed: make sure the timer will run. */

void
ngx_http_obs_emit_wake(void)
{
    ngx_http_obs_emitter_t  *e;

    e = &ngx_http_obs_emitter;

    if (e->start && !e->flush_event.timer_set) {
        ngx_add_timer(&e->flush_event, e->sidecar->flush);
    }
}
