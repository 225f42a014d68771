/*
 * One datagram to the sidecar: the batch header (counts, drops, the
 * configuration the worker runs), then a batch's columns or nothing, under
 * an HMAC-SHA256 tag when obs_sidecar has key= (the mark and the tag come
 * first: proto/obs/v1/framing.h), sent with one sendmsg() on the worker's
 * connected socket, which never blocks.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>

#include "ngx_http_obs_emit.h"
#include "ngx_http_obs_jwt_module.h"
#include "ngx_http_obs_version.h"
#include "obs/v1/record.pb-c.h"


#define NGX_HTTP_OBS_VERSION_MAX      64


static void ngx_http_obs_header_config(ngx_http_obs_emitter_t *e,
    Obs__V1__BatchHeader *h);
static ngx_int_t ngx_http_obs_mac(ngx_http_obs_emitter_t *e, u_char *header,
    size_t header_len, u_char *chunk, size_t chunk_len, u_char *out);
static void ngx_http_obs_send_error(ngx_http_obs_emitter_t *e,
    ngx_err_t err);


/* Writes the batch header of the next datagram, its key and length first. */

size_t
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

uint64_t
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

ngx_int_t
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

ngx_int_t
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


ngx_int_t
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
     * that can name the fix.  At "error", not "warn": every record is lost
     * until it is fixed, and nginx's default error_log level is "error".
     */

    if ((err == NGX_EACCES || err == NGX_EPERM)
        && e->sidecar->sockaddr->sa_family == AF_UNIX)
    {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, err,
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
