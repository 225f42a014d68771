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
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "ngx_http_obs_module.h"
#include "ngx_http_obs_jwt_module.h"
#include "ngx_http_obs_version.h"
#include "obs/v1/record.pb-c.h"


#define NGX_HTTP_OBS_HOST_MAX         128
#define NGX_HTTP_OBS_VERSION_MAX      64
#define NGX_HTTP_OBS_ERROR_LOG_EVERY  60000

/* a snapshot of requests in flight: 129 entries of at most 256 bytes */
#define NGX_HTTP_OBS_MAX_DATAGRAM_ACTIVE  (40 * 1024)

/* protobuf keys: field number << 3 | wire type 2 (length-delimited) */
#define NGX_HTTP_OBS_BATCH_HEADER_KEY   0x0a
#define NGX_HTTP_OBS_BATCH_COLUMNS_KEY  0x1a

/*
 * A sealed batch in the buffer: its record and audit event counts (kept,
 * not sent), then the columns field's key and length and the packed
 * columns.
 */
#define NGX_HTTP_OBS_FRAME_COUNT      (2 * sizeof(uint32_t))
#define NGX_HTTP_OBS_FRAME_MAX        (NGX_HTTP_OBS_FRAME_COUNT + 1 + 3)

/* why audit events were never admitted (delta_audit_dropped_*) */
#define NGX_HTTP_OBS_AUDIT_BUFFER_FULL  0
#define NGX_HTTP_OBS_AUDIT_OVERSIZE     1
#define NGX_HTTP_OBS_AUDIT_EXIT         2
#define NGX_HTTP_OBS_AUDIT_REASONS      3

/* the part of buffer= kept for batches with audit events: 1 / this */
#define NGX_HTTP_OBS_AUDIT_RESERVE      4

/*
 * Why records were dropped (proto/obs/v1/drop_reasons.def): the order of
 * the dropped[] counters and of the BatchHeader fields that carry them.
 */
enum {
#define OBS_MODULE_DROP(ID, reason, field)  NGX_HTTP_OBS_DROP_##ID,
#include "obs/v1/drop_reasons.def"
    NGX_HTTP_OBS_DROP_REASONS
};

/* how long a stopping master may wait for a busy sidecar, in seconds */
#define NGX_HTTP_OBS_EXIT_REPORT_WAIT  2


/* In shared memory: drops of exited workers that no datagram carried yet. */
struct ngx_http_obs_shared_s {
    ngx_atomic_t             dropped[NGX_HTTP_OBS_DROP_REASONS];
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


static ngx_int_t ngx_http_obs_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_obs_drop(ngx_http_obs_emitter_t *e, ngx_uint_t reason,
    ngx_http_obs_record_t *rec);
static ngx_uint_t ngx_http_obs_claim(ngx_http_obs_emitter_t *e);
static void ngx_http_obs_unclaim(ngx_http_obs_emitter_t *e);
static ngx_int_t ngx_http_obs_send_counts(ngx_http_obs_emitter_t *e);
static ngx_int_t ngx_http_obs_mac_init(ngx_http_obs_emitter_t *e);
static ngx_int_t ngx_http_obs_mac(ngx_http_obs_emitter_t *e, u_char *header,
    size_t header_len, u_char *chunk, size_t chunk_len, u_char *out);
static void ngx_http_obs_flush_handler(ngx_event_t *ev);
static void ngx_http_obs_flush(ngx_http_obs_emitter_t *e, ngx_uint_t force);
static ngx_int_t ngx_http_obs_emit_audit(ngx_http_obs_emitter_t *e,
    ngx_http_obs_record_t *rec);
static ngx_int_t ngx_http_obs_seal(ngx_http_obs_emitter_t *e,
    ngx_http_obs_columns_t *cols);
static u_char *ngx_http_obs_frame_end(u_char *p, ngx_uint_t *records,
    ngx_uint_t *audits);
static void ngx_http_obs_header_config(ngx_http_obs_emitter_t *e,
    Obs__V1__BatchHeader *h);
static size_t ngx_http_obs_batch_header(ngx_http_obs_emitter_t *e,
    u_char *out);
static uint64_t ngx_http_obs_unix_nano(void);
static ngx_int_t ngx_http_obs_send(ngx_http_obs_emitter_t *e, u_char *header,
    size_t header_len, u_char *chunk, size_t chunk_len);
static ngx_int_t ngx_http_obs_connect(ngx_http_obs_emitter_t *e);
static void ngx_http_obs_send_error(ngx_http_obs_emitter_t *e,
    ngx_err_t err);
static u_char *ngx_http_obs_write_varint(u_char *p, size_t n);
static u_char *ngx_http_obs_read_varint(u_char *p, size_t *n);
static ngx_int_t ngx_http_obs_send_active(ngx_http_obs_emitter_t *e,
    ngx_uint_t closed);


static ngx_http_obs_emitter_t  ngx_http_obs_emitter = { .fd = -1 };


/* The zone of counts that outlive a worker (and a reload). */

ngx_int_t
ngx_http_obs_emit_zone(ngx_conf_t *cf, ngx_http_obs_sidecar_t *sidecar)
{
    ngx_str_t  name = ngx_string("obs_sidecar");

    sidecar->zone = ngx_shared_memory_add(cf, &name, 8 * ngx_pagesize,
                                          &ngx_http_obs_module);
    if (sidecar->zone == NULL) {
        return NGX_ERROR;
    }

    sidecar->zone->init = ngx_http_obs_init_zone;
    sidecar->zone->data = sidecar;

    return NGX_OK;
}


/*
 * A key file (obs_sidecar key=, obs_log_field hmac=): the key is the file's
 * first line, OBS_KEY_MIN to OBS_KEY_MAX bytes (framing.h); read at
 * configuration time, so "nginx -t" checks it, and a reload reads it again.
 */

char *
ngx_http_obs_read_key(ngx_conf_t *cf, ngx_str_t *path, ngx_str_t *key,
    const char *directive)
{
    u_char           *p;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t         name;
    ngx_file_info_t   fi;

    name = *path;

    if (name.len == 0 || ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid key file \"%V\" in \"%s\"",
                           path, directive);
        return NGX_CONF_ERROR;
    }

    /*
     * A FIFO would block nginx -t in open() until a writer comes, and a
     * device (/dev/urandom) would give a key nobody has: a regular file
     * only (a symlink to one, as Kubernetes mounts secrets, is one).
     */

    if (ngx_file_info(name.data, &fi) != NGX_FILE_ERROR && !ngx_is_file(&fi))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "key file \"%V\" in \"%s\" is not a regular file",
                           &name, directive);
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(name.data, NGX_FILE_RDONLY | NGX_FILE_NONBLOCK,
                       NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "key file \"%V\" in \"%s\": "
                           ngx_open_file_n " failed", &name, directive);
        return NGX_CONF_ERROR;
    }

    p = ngx_pnalloc(cf->pool, OBS_KEY_MAX + 1);
    n = -1;

    if (p != NULL && ngx_fd_info(fd, &fi) != NGX_FILE_ERROR
        && ngx_is_file(&fi))
    {
        n = read(fd, p, OBS_KEY_MAX + 1);
    }

    (void) ngx_close_file(fd);

    key->data = p;
    key->len = 0;

    while (n > 0 && key->len < (size_t) n
           && p[key->len] != CR && p[key->len] != LF)
    {
        key->len++;
    }

    if (key->len < OBS_KEY_MIN || key->len > OBS_KEY_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "key file \"%V\" in \"%s\" must hold "
                           "a key of %d to %d bytes on its first line",
                           &name, directive, OBS_KEY_MIN, OBS_KEY_MAX);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_obs_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_obs_sidecar_t  *osidecar = data;

    ngx_slab_pool_t         *shpool;
    ngx_http_obs_sidecar_t  *sidecar;

    sidecar = shm_zone->data;

    if (osidecar) {
        sidecar->shared = osidecar->shared;    /* a reload keeps the counts */
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        sidecar->shared = shpool->data;
        return NGX_OK;
    }

    sidecar->shared = ngx_slab_calloc(shpool, sizeof(ngx_http_obs_shared_t));
    if (sidecar->shared == NULL) {
        return NGX_ERROR;
    }

    shpool->data = sidecar->shared;

    return NGX_OK;
}


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


/*
 * Takes the counts exited workers left in shared memory into this
 * worker's own; returns whether any drop awaits reporting.
 */

static ngx_uint_t
ngx_http_obs_claim(ngx_http_obs_emitter_t *e)
{
    ngx_uint_t              i, pending;
    ngx_atomic_uint_t       n;
    ngx_http_obs_shared_t  *sh;

    sh = e->sidecar->shared;
    pending = 0;

    for (i = 0; i < NGX_HTTP_OBS_DROP_REASONS; i++) {

        if (sh) {
            do {
                n = sh->dropped[i];
            } while (n && !ngx_atomic_cmp_set(&sh->dropped[i], n, 0));

            e->dropped[i] += n;
        }

        pending |= (e->dropped[i] != 0);
    }

    if (e->audit_shm) {
        do {
            n = e->audit_shm->exited;
        } while (n && !ngx_atomic_cmp_set(&e->audit_shm->exited, n, 0));

        e->audit_dropped[NGX_HTTP_OBS_AUDIT_EXIT] += n;
    }

    for (i = 0; i < NGX_HTTP_OBS_AUDIT_REASONS; i++) {
        pending |= (e->audit_dropped[i] != 0);
    }

    return pending;
}


/* Leaves this worker's unreported drops in shared memory. */

static void
ngx_http_obs_unclaim(ngx_http_obs_emitter_t *e)
{
    ngx_uint_t              i;
    ngx_http_obs_shared_t  *sh;

    sh = e->sidecar->shared;

    for (i = 0; sh && i < NGX_HTTP_OBS_DROP_REASONS; i++) {
        if (e->dropped[i]) {
            (void) ngx_atomic_fetch_add(&sh->dropped[i],
                                        (ngx_atomic_int_t) e->dropped[i]);
            e->dropped[i] = 0;
        }
    }

    /* events never admitted are all "lost at exit" to whoever reports */

    for (i = 0; e->audit_shm && i < NGX_HTTP_OBS_AUDIT_REASONS; i++) {
        if (e->audit_dropped[i]) {
            (void) ngx_atomic_fetch_add(&e->audit_shm->exited,
                                  (ngx_atomic_int_t) e->audit_dropped[i]);
            e->audit_dropped[i] = 0;
        }
    }
}


/* Sends a datagram of drop counts alone. */

static ngx_int_t
ngx_http_obs_send_counts(ngx_http_obs_emitter_t *e)
{
    u_char     header[NGX_HTTP_OBS_HEADER_MAX];
    size_t     header_len;
    ngx_int_t  rc;

    header_len = ngx_http_obs_batch_header(e, header);

    rc = ngx_http_obs_send(e, header, header_len, NULL, 0);

    if (rc == NGX_OK) {
        ngx_memzero(e->dropped, sizeof(e->dropped));
        ngx_memzero(e->audit_dropped, sizeof(e->audit_dropped));
        ngx_http_obs_jwt_batch_sent();
        e->announce = 0;
        e->sequence++;
    }

    return rc;
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


static size_t
ngx_http_obs_batch_header(ngx_http_obs_emitter_t *e, u_char *out)
{
    u_char                *p;
    size_t                 size;
    Obs__V1__BatchHeader   h = OBS__V1__BATCH_HEADER__INIT;

    h.schema_version = OBS_SCHEMA_CURRENT;
    h.pid = (uint32_t) ngx_pid;
    h.worker_start_unix_nano = e->worker_start;
    h.sequence = e->sequence;
    h.send_time_unix_nano = ngx_http_obs_unix_nano();
    h.records_total = e->records_total;
#define OBS_MODULE_DROP(ID, reason, field)                                    \
    h.field = e->dropped[NGX_HTTP_OBS_DROP_##ID];
#include "obs/v1/drop_reasons.def"
    h.delta_audit_dropped_buffer_full =
                             e->audit_dropped[NGX_HTTP_OBS_AUDIT_BUFFER_FULL];
    h.delta_audit_dropped_oversize =
                             e->audit_dropped[NGX_HTTP_OBS_AUDIT_OVERSIZE];
    h.delta_audit_dropped_at_exit = e->audit_dropped[NGX_HTTP_OBS_AUDIT_EXIT];
    h.host.data = ngx_cycle->hostname.data;
    h.host.len = ngx_min(ngx_cycle->hostname.len, NGX_HTTP_OBS_HOST_MAX);

    ngx_http_obs_header_config(e, &h);
    ngx_http_obs_jwt_batch_header(&h);

    size = obs__v1__batch_header__get_packed_size(&h);

    out[0] = NGX_HTTP_OBS_BATCH_HEADER_KEY;
    p = ngx_http_obs_write_varint(out + 1, size);
    obs__v1__batch_header__pack(&h, p);

    return p + size - out;
}


/*
 * The configuration the worker runs, for the audit trail: its nginx (the
 * master's pid; ngx_parent in a worker), which of that master's loads it
 * is, the files' digest, and the versions.
 */

static void
ngx_http_obs_header_config(ngx_http_obs_emitter_t *e, Obs__V1__BatchHeader *h)
{
    static u_char  server_version[] = NGINX_VERSION;
    static u_char  module_version[] = NGX_HTTP_OBS_VERSION;

    if (e->conf == NULL || e->conf->config_generation == 0) {
        return;
    }

    h->master_pid = (uint32_t) (ngx_process == NGX_PROCESS_MASTER
                                ? ngx_pid : ngx_parent);
    h->config_generation = e->conf->config_generation;
    h->config_loaded_unix_nano = e->conf->config_loaded;
    h->config_sha256.data = e->conf->config_sha256;
    h->config_sha256.len = sizeof(e->conf->config_sha256);
    h->server_version.data = server_version;
    h->server_version.len = sizeof(server_version) - 1;
    h->module_version.data = module_version;
    h->module_version.len = ngx_min(sizeof(module_version) - 1,
                                    NGX_HTTP_OBS_VERSION_MAX);
}


/*
 * nginx's cached time in Unix nanoseconds.  A header made with it carries
 * when its datagram is sent (a sealed batch gets its header only then): a
 * sidecar with the key refuses a tagged copy once older than its skew.
 */

static uint64_t
ngx_http_obs_unix_nano(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return ((uint64_t) tp->sec * 1000 + tp->msec) * 1000000;
}


/*
 * Returns NGX_OK when sent, NGX_AGAIN when the sidecar is busy or gone (the
 * data stays), NGX_ERROR when this datagram can never be sent.
 */

static ngx_int_t
ngx_http_obs_send(ngx_http_obs_emitter_t *e, u_char *header,
    size_t header_len, u_char *chunk, size_t chunk_len)
{
    size_t         mark_len;
    ssize_t        n;
    ngx_err_t      err;
    struct iovec   iov[3];
    struct msghdr  msg;
    u_char         mark[OBS_MAC_MARK_LEN + OBS_MAC_LEN];

    mark_len = 0;

    if (e->mac) {
        if (ngx_http_obs_mac(e, header, header_len, chunk, chunk_len, mark)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        mark_len = sizeof(mark);
    }

    iov[0].iov_base = mark;
    iov[0].iov_len = mark_len;
    iov[1].iov_base = header;
    iov[1].iov_len = header_len;
    iov[2].iov_base = chunk;
    iov[2].iov_len = chunk_len;

    ngx_memzero(&msg, sizeof(struct msghdr));
    msg.msg_iov = iov;
    msg.msg_iovlen = 3;

    n = sendmsg(e->fd, &msg, 0);

    if (n == (ssize_t) (mark_len + header_len + chunk_len)) {
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


/* A context keyed once with key=, duplicated for each datagram. */

static ngx_int_t
ngx_http_obs_mac_init(ngx_http_obs_emitter_t *e)
{
    if (e->sidecar->key.len == 0 || e->mac != NULL) {
        return NGX_OK;
    }

    e->mac = ngx_http_obs_hmac_new(&e->sidecar->key);

    if (e->mac == NULL) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "obs: cannot set up HMAC-SHA256 for \"%V\"",
                      &e->sidecar->name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * An HMAC-SHA256 context keyed with key (obs_sidecar key=, obs_log_field
 * hmac=), or NULL.
 */

EVP_MAC_CTX *
ngx_http_obs_hmac_new(ngx_str_t *key)
{
    EVP_MAC      *hmac;
    OSSL_PARAM    params[2];
    EVP_MAC_CTX  *ctx;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *) "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();

    hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    EVP_MAC_free(hmac);

    if (ctx != NULL && !EVP_MAC_init(ctx, key->data, key->len, params)) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }

    return ctx;
}


/* Writes the mark and the tag of header + chunk to out. */

static ngx_int_t
ngx_http_obs_mac(ngx_http_obs_emitter_t *e, u_char *header, size_t header_len,
    u_char *chunk, size_t chunk_len, u_char *out)
{
    size_t        len;
    ngx_int_t     rc;
    EVP_MAC_CTX  *ctx;

    ctx = EVP_MAC_CTX_dup(e->mac);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    out = ngx_cpymem(out, OBS_MAC_MARK, OBS_MAC_MARK_LEN);

    rc = (EVP_MAC_update(ctx, header, header_len)
          && (chunk_len == 0 || EVP_MAC_update(ctx, chunk, chunk_len))
          && EVP_MAC_final(ctx, out, &len, OBS_MAC_LEN)
          && len == OBS_MAC_LEN)
         ? NGX_OK : NGX_ERROR;

    EVP_MAC_CTX_free(ctx);

    return rc;
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

    /*
     * nginx's worker user may not write to the sidecar's unix socket: the
     * sidecar, which sees nothing, cannot say so; this is the one place
     * that can name the fix.
     */

    if ((err == NGX_EACCES || err == NGX_EPERM)
        && e->sidecar->sockaddr->sa_family == AF_UNIX)
    {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, err,
                      "obs: cannot send records to \"%V\": nginx's worker "
                      "user may not write to the socket; start the sidecar "
                      "with \"--ingest-group GROUP\" (setting "
                      "\"ingest_group\") naming a group of that user",
                      &e->sidecar->name);
        return;
    }

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


/* --- requests in flight (ngx_http_obs_active.c) ------------------------ */

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


/*
 * Sends a snapshot of the requests in flight, a header alone in a datagram
 * of its own (up to ~35 KB, whatever buffer= is: it never waits in the
 * buffer); with closed, the one that says nginx stopped.
 */

static ngx_int_t
ngx_http_obs_send_active(ngx_http_obs_emitter_t *e, ngx_uint_t closed)
{
    u_char                *p;
    size_t                 size;
    ngx_int_t              rc;
    Obs__V1__BatchHeader   h = OBS__V1__BATCH_HEADER__INIT;

    static u_char          out[NGX_HTTP_OBS_MAX_DATAGRAM_ACTIVE];

    if (!e->connected && ngx_http_obs_connect(e) != NGX_OK) {
        return NGX_AGAIN;
    }

    if (!ngx_http_obs_active_snapshot(&h, closed)) {
        return NGX_OK;
    }

    h.schema_version = OBS_SCHEMA_CURRENT;
    h.pid = (uint32_t) ngx_pid;
    h.worker_start_unix_nano = e->worker_start;
    h.sequence = e->sequence;
    h.send_time_unix_nano = ngx_http_obs_unix_nano();
    h.records_total = e->records_total;
    h.host.data = ngx_cycle->hostname.data;
    h.host.len = ngx_min(ngx_cycle->hostname.len, NGX_HTTP_OBS_HOST_MAX);

    size = obs__v1__batch_header__get_packed_size(&h);

    if (size + 8 > sizeof(out)) {
        return NGX_ERROR;                     /* cannot be: see the zone */
    }

    out[0] = NGX_HTTP_OBS_BATCH_HEADER_KEY;
    p = ngx_http_obs_write_varint(out + 1, size);
    obs__v1__batch_header__pack(&h, p);

    rc = ngx_http_obs_send(e, out, p + size - out, NULL, 0);

    if (rc != NGX_AGAIN) {
        e->sequence++;
    }

    if (rc == NGX_OK) {
        ngx_http_obs_active_sent();
    }

    return rc;
}
