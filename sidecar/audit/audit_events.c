/* The events of the audit trail.  See audit_events.h. */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "audit_events.h"
#include "hash.h"
#include "jsonw.h"
#include "stats.h"

/* nginx instances whose configuration is known */
#define WATCH_NGINX          64
/* refusal events a second per reason, beyond which they are counted */
#define WATCH_REFUSALS       10
#define WATCH_TEXT_MAX       1024

typedef struct {
    uint64_t    key;                /* host and master pid; 0: free */
    uint64_t    generation;
    uint8_t     sha256[32];
    time_t      seen;
} watch_nginx_t;

typedef struct {
    time_t      second;
    unsigned    told;               /* events told in that second */
    uint64_t    held;               /* refusals not told one by one */
} watch_refusals_t;

struct audit_watch {
    audit_t           *a;
    buf_t              m;
    watch_nginx_t      nginx[WATCH_NGINX];
    watch_refusals_t   refused[DECODE_REASONS];
};

static const char *const  decision_names[] = {
#define OBS_AUDIT_DECISION(code, id, name)  [code] = name,
#include "obs/v1/audit.def"
};

static const char *const  scope_names[] = {
#define OBS_AUDIT_SCOPE(code, id, name)  [code] = name,
#include "obs/v1/audit.def"
};

static void member_text(buf_t *b, const char *key, const uint8_t *data,
    size_t len);
static void member_u64(buf_t *b, const char *key, uint64_t v);
static void member_string(buf_t *b, const char *key, const char *s);
static void member_hex(buf_t *b, const char *key, const uint8_t *data,
    size_t len);
static void member_worker(buf_t *b, const Obs__V1__BatchHeader *h);
static void member_sender(buf_t *b, const struct sockaddr *from,
    socklen_t fromlen);
static void watch_refused_held(audit_watch_t *w, int reason);
static void emit(audit_t *a, buf_t *b, const char *event, uint64_t time_us,
    int requested);

audit_watch_t *
audit_watch_new(audit_t *a)
{
    audit_watch_t  *w = calloc(1, sizeof(audit_watch_t));

    if (w) {
        w->a = a;
    }
    return w;
}

void
audit_watch_free(audit_watch_t *w)
{
    int  i;

    if (w == NULL) {
        return;
    }

    for (i = 0; i < DECODE_REASONS; i++) {
        watch_refused_held(w, i);
    }
    buf_free(&w->m);
    free(w);
}

void
audit_watch_header(audit_watch_t *w, const Obs__V1__BatchHeader *h)
{
    watch_nginx_t  *n, *oldest;
    uint64_t        key;
    buf_t          *b = &w->m;
    int             i, first;

    audit_lost(w->a, AUDIT_LOST_module_buffer_full,
               h->delta_audit_dropped_buffer_full);
    audit_lost(w->a, AUDIT_LOST_module_oversize,
               h->delta_audit_dropped_oversize);
    audit_lost(w->a, AUDIT_LOST_module_exit, h->delta_audit_dropped_at_exit);

    if (h->config_generation == 0 || h->config_sha256.len != 32
        || !audit_enabled(w->a))
    {
        return;
    }

    key = hash_bytes(h->host.data, h->host.len, h->master_pid) | 1;
    oldest = &w->nginx[0];
    n = NULL;

    for (i = 0; i < WATCH_NGINX; i++) {
        if (w->nginx[i].key == key) {
            n = &w->nginx[i];
            break;
        }
        if (w->nginx[i].seen < oldest->seen) {
            oldest = &w->nginx[i];
        }
    }

    /* old workers still draining after a reload name an older one */
    if (n && h->config_generation <= n->generation) {
        n->seen = time(NULL);
        return;
    }

    first = (n == NULL);

    buf_reset(b);
    member_text(b, "host", h->host.data, h->host.len);
    member_u64(b, "master_pid", h->master_pid);
    member_u64(b, "generation", h->config_generation);
    member_hex(b, "config_sha256", h->config_sha256.data, 32);
    member_text(b, "nginx_version", h->server_version.data,
                h->server_version.len);
    member_text(b, "module_version", h->module_version.data,
                h->module_version.len);
    jsonw_lit(b, ",\"first_seen\":");
    buf_puts(b, first ? "true" : "false");
    if (!first) {
        member_hex(b, "previous_sha256", n->sha256, 32);
        jsonw_lit(b, ",\"changed\":");
        buf_puts(b, memcmp(n->sha256, h->config_sha256.data, 32) ? "true"
                                                                 : "false");
    }

    if (n == NULL) {
        n = oldest;
        n->key = key;
    }
    n->generation = h->config_generation;
    memcpy(n->sha256, h->config_sha256.data, 32);
    n->seen = time(NULL);

    emit(w->a, b, "nginx_config", h->config_loaded_unix_nano
                                  ? h->config_loaded_unix_nano / 1000
                                  : audit_now_us(), 0);
}

void
audit_watch_record(audit_watch_t *w, const Obs__V1__Record *r,
    const Obs__V1__BatchHeader *h, uint64_t *next)
{
    const Obs__V1__AuditEvent  *ev;
    buf_t                      *b = &w->m;
    size_t                      i;

    for (i = 0; i < r->n_audit; i++) {
        ev = r->audit[i];

        /* a gap: events admitted by the worker that never arrived */
        if (*next && ev->sequence > *next) {
            audit_lost(w->a, AUDIT_LOST_gap, ev->sequence - *next);
        }
        if (ev->sequence >= *next) {
            *next = ev->sequence + 1;
        }

        buf_reset(b);
        member_text(b, "request_id", r->request_id.data, r->request_id.len);
        if (r->trace_id.len == 16) {
            member_hex(b, "trace_id", r->trace_id.data, 16);
        }
        member_text(b, "user", ev->user.data, ev->user.len);
        member_text(b, "tenant", ev->tenant.data, ev->tenant.len);
        member_text(b, "client", ev->client.data, ev->client.len);
        member_text(b, "method", r->method.data, r->method.len);
        member_text(b, "route", r->route.data, r->route.len);
        member_text(b, "service", r->service.data, r->service.len);
        member_u64(b, "status", r->status);
        member_u64(b, "bytes_in", r->request_bytes);
        member_u64(b, "bytes_out", r->response_bytes);
        member_string(b, "decision",
                      ev->decision < sizeof(decision_names)
                                     / sizeof(decision_names[0])
                      && decision_names[ev->decision]
                      ? decision_names[ev->decision] : "unknown");
        member_string(b, "audited_by",
                      ev->scope < sizeof(scope_names) / sizeof(scope_names[0])
                      && scope_names[ev->scope]
                      ? scope_names[ev->scope] : "unknown");
        member_string(b, "jwt", ev->jwt_status == 0 ? "off"
                      : ev->jwt_status <= JWT_RESULTS
                      ? jwt_result_names[ev->jwt_status - 1] : "unknown");
        if (ev->jwt_kid.len) {
            member_text(b, "jwt_kid", ev->jwt_kid.data, ev->jwt_kid.len);
        }
        if (ev->jwt_alg.len) {
            member_text(b, "jwt_alg", ev->jwt_alg.data, ev->jwt_alg.len);
        }
        if (ev->jwt_issuer.len) {
            member_text(b, "jwt_issuer", ev->jwt_issuer.data,
                        ev->jwt_issuer.len);
        }
        member_text(b, "gateway", h->host.data, h->host.len);
        member_u64(b, "worker_pid", h->pid);
        member_u64(b, "worker_seq", ev->sequence);

        emit(w->a, b, "request", r->start_time_unix_nano / 1000, 1);
    }
}

void
audit_watch_refused(audit_watch_t *w, int reason, const struct sockaddr *from,
    socklen_t fromlen, const Obs__V1__BatchHeader *h)
{
    watch_refusals_t  *rf;
    buf_t             *b = &w->m;
    time_t             now;

    if ((reason != DECODE_UNAUTHENTICATED && reason != DECODE_REPLAYED
         && reason != DECODE_STALE && reason != DECODE_SEQUENCE_GAP)
        || !audit_enabled(w->a))
    {
        return;
    }

    rf = &w->refused[reason];
    now = time(NULL);

    if (now != rf->second) {
        rf->second = now;
        rf->told = 0;
    }

    if (rf->told == WATCH_REFUSALS) {
        rf->held++;
        return;
    }
    rf->told++;

    buf_reset(b);
    member_string(b, "reason", decode_reason_names[reason]);
    member_sender(b, from, fromlen);
    if (h) {
        member_worker(b, h);
    }
    if (rf->held) {
        member_u64(b, "also_refused", rf->held);
        rf->held = 0;
    }

    emit(w->a, b, "ingest_refused", audit_now_us(), 0);
}

void
audit_sidecar_start(audit_t *a, const char *version, const char *config_path)
{
    buf_t  b = { 0 };

    member_string(&b, "version", version);
    member_u64(&b, "pid", (uint64_t) getpid());
    if (config_path) {
        member_text(&b, "config_file", (const uint8_t *) config_path,
                    strlen(config_path));
    }
    emit(a, &b, "sidecar_start", audit_now_us(), 0);
    buf_free(&b);
}

void
audit_sidecar_reload(audit_t *a, const char *config_path,
    const char *changed, const char *restart)
{
    buf_t        b = { 0 };
    const char  *list[2] = { changed, restart };
    const char  *names[2] = { "changed", "restart_needed" };
    const char  *p, *end;
    int          i, n;

    if (config_path) {
        member_text(&b, "config_file", (const uint8_t *) config_path,
                    strlen(config_path));
    }

    /* setting names only: a value may be a secret */
    for (i = 0; i < 2; i++) {
        jsonw_lit(&b, ",\"");
        buf_puts(&b, names[i]);
        jsonw_lit(&b, "\":[");
        for (p = list[i], n = 0; p && *p; p = end) {
            p += strspn(p, " ");
            end = p + strcspn(p, " ");
            if (end == p) {
                break;
            }
            if (n++) {
                jsonw_lit(&b, ",");
            }
            jsonw_text(&b, (const uint8_t *) p, (size_t) (end - p), 256);
        }
        jsonw_lit(&b, "]");
    }

    emit(a, &b, "sidecar_reload", audit_now_us(), 0);
    buf_free(&b);
}

void
audit_sidecar_reload_failed(audit_t *a, const char *error)
{
    buf_t  b = { 0 };

    member_text(&b, "error", (const uint8_t *) error, strlen(error));
    emit(a, &b, "sidecar_reload_failed", audit_now_us(), 0);
    buf_free(&b);
}

void
audit_sidecar_stop(audit_t *a, unsigned signo)
{
    buf_t  b = { 0 };

    member_string(&b, "signal", signo == SIGTERM ? "SIGTERM"
                                : signo == SIGINT ? "SIGINT" : "other");
    emit(a, &b, "sidecar_stop", audit_now_us(), 0);
    buf_free(&b);
}

/* The refusals of a reason held back, told as one event. */

static void
watch_refused_held(audit_watch_t *w, int reason)
{
    buf_t  *b = &w->m;

    if (w->refused[reason].held == 0) {
        return;
    }

    buf_reset(b);
    member_string(b, "reason", decode_reason_names[reason]);
    member_u64(b, "also_refused", w->refused[reason].held);
    w->refused[reason].held = 0;
    emit(w->a, b, "ingest_refused", audit_now_us(), 0);
}

/* Members are written each with a leading comma; emit() drops the first. */

static void
member_text(buf_t *b, const char *key, const uint8_t *data, size_t len)
{
    jsonw_lit(b, ",\"");
    buf_puts(b, key);
    jsonw_lit(b, "\":");
    jsonw_text(b, data, len, WATCH_TEXT_MAX);
}

static void
member_u64(buf_t *b, const char *key, uint64_t v)
{
    jsonw_lit(b, ",\"");
    buf_puts(b, key);
    jsonw_lit(b, "\":");
    jsonw_u64(b, v);
}

static void
member_string(buf_t *b, const char *key, const char *s)
{
    jsonw_lit(b, ",\"");
    buf_puts(b, key);
    jsonw_lit(b, "\":");
    jsonw_string(b, s, strlen(s));
}

static void
member_hex(buf_t *b, const char *key, const uint8_t *data, size_t len)
{
    jsonw_lit(b, ",\"");
    buf_puts(b, key);
    jsonw_lit(b, "\":");
    jsonw_hex(b, data, len);
}

/* The worker a datagram names (its sender's word). */

static void
member_worker(buf_t *b, const Obs__V1__BatchHeader *h)
{
    member_text(b, "worker_host", h->host.data, h->host.len);
    member_u64(b, "worker_pid", h->pid);
    member_u64(b, "worker_start", h->worker_start_unix_nano);
    member_u64(b, "worker_sequence", h->sequence);
}

static void
member_sender(buf_t *b, const struct sockaddr *from, socklen_t fromlen)
{
    char        text[INET6_ADDRSTRLEN + 16], ip[INET6_ADDRSTRLEN];
    const struct sockaddr_in   *in4;
    const struct sockaddr_in6  *in6;
    const struct sockaddr_un   *un;
    size_t      n;

    text[0] = '\0';

    if (from && from->sa_family == AF_INET
        && fromlen >= (socklen_t) sizeof(*in4))
    {
        in4 = (const struct sockaddr_in *) from;
        inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof(ip));
        snprintf(text, sizeof(text), "udp:%s:%u", ip, ntohs(in4->sin_port));

    } else if (from && from->sa_family == AF_INET6
               && fromlen >= (socklen_t) sizeof(*in6))
    {
        in6 = (const struct sockaddr_in6 *) from;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(text, sizeof(text), "udp:[%s]:%u", ip,
                 ntohs(in6->sin6_port));

    } else if (from && from->sa_family == AF_UNIX) {
        un = (const struct sockaddr_un *) from;
        n = fromlen > (socklen_t) offsetof(struct sockaddr_un, sun_path)
            ? fromlen - offsetof(struct sockaddr_un, sun_path) : 0;
        n = strnlen(un->sun_path, n);
        jsonw_lit(b, ",\"sender\":");
        if (n) {
            char  path[sizeof(un->sun_path) + 6];

            snprintf(path, sizeof(path), "unix:%.*s", (int) n, un->sun_path);
            jsonw_text(b, (const uint8_t *) path, strlen(path), 256);
        } else {
            jsonw_lit(b, "\"unix\"");
        }
        return;
    }

    member_string(b, "sender", text[0] ? text : "unknown");
}

/* Queues the event: its members (after the first one's comma). */

static void
emit(audit_t *a, buf_t *b, const char *event, uint64_t time_us,
    int requested)
{
    if (b->failed) {
        b->failed = 0;
        audit_lost(a, AUDIT_LOST_queue_full, 1);
        return;
    }

    if (b->len && b->data[0] == ',') {
        audit_event(a, event, time_us, b->data + 1, b->len - 1, requested);
    } else {
        audit_event(a, event, time_us, b->data, b->len, requested);
    }
}
