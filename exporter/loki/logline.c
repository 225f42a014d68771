/*
 * The structured log line, with the brief's field names:
 * {"timestamp","level","service","trace_id","span_id","tenant_id",
 *  "endpoint","message","latency_ms", ...}, written in one pass by the
 * JSON writer (jsonw.h), so it is valid JSON whatever the request held.
 */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "build.h"
#include "jsonw.h"
#include "text.h"

#define LOG_TIME_MAX  64

static void log_timestamp(buf_t *b, uint64_t unix_ns);
static void log_text(buf_t *b, const char *key, size_t key_len,
    const ProtobufCBinaryData *t);
static void log_id(buf_t *b, const char *key, size_t key_len,
    const ProtobufCBinaryData *id, size_t len);
static void log_extra(buf_t *b, const Obs__V1__Record *r);

#define LOG_TEXT(b, key, t)   log_text(b, key, sizeof(key) - 1, t)
#define LOG_ID(b, key, t, n)  log_id(b, key, sizeof(key) - 1, t, n)

const char *
log_level(unsigned status)
{
    return status >= 500 ? "ERROR" : status >= 400 ? "WARN" : "INFO";
}

void
log_line(buf_t *b, const Obs__V1__Record *r, const char *service,
    const char *host)
{
    const Obs__V1__UpstreamAttempt  *u;
    const char                      *level = log_level(r->status);

    /* the time the response was complete, as access logs have it */
    jsonw_lit(b, "{\"timestamp\":");
    log_timestamp(b, r->start_time_unix_nano + r->duration_us * 1000);
    jsonw_lit(b, ",\"level\":\"");
    jsonw_raw(b, level, strlen(level));
    jsonw_lit(b, "\",\"service\":");
    jsonw_string(b, service, strlen(service));
    LOG_ID(b, ",\"trace_id\":", &r->trace_id, 16);
    LOG_ID(b, ",\"span_id\":", &r->span_id, 8);
    LOG_TEXT(b, ",\"tenant_id\":", &r->tenant);
    LOG_TEXT(b, ",\"endpoint\":", &r->route);
    jsonw_lit(b, ",\"message\":\"Request processed\",\"latency_ms\":");
    jsonw_millis(b, r->duration_us);

    LOG_TEXT(b, ",\"method\":", &r->method);
    LOG_TEXT(b, ",\"path\":", &r->path);
    jsonw_lit(b, ",\"status\":");
    jsonw_count(b, r->status);
    jsonw_lit(b, ",\"bytes_in\":");
    jsonw_count(b, r->request_bytes);
    jsonw_lit(b, ",\"bytes_out\":");
    jsonw_count(b, r->response_bytes);

    if (r->n_upstreams) {
        u = r->upstreams[r->n_upstreams - 1];
        LOG_TEXT(b, ",\"upstream_addr\":", &u->address);
        jsonw_lit(b, ",\"upstream_status\":");
        jsonw_count(b, u->status);
        jsonw_lit(b, ",\"upstream_latency_ms\":");
        jsonw_millis(b, u->response_time_us);
        if (r->n_upstreams > 1) {
            jsonw_lit(b, ",\"upstream_attempts\":");
            jsonw_count(b, r->n_upstreams);
        }
    }

    LOG_TEXT(b, ",\"client_addr\":", &r->client_address);
    LOG_TEXT(b, ",\"user_agent\":", &r->user_agent);
    LOG_TEXT(b, ",\"request_id\":", &r->request_id);
    LOG_ID(b, ",\"parent_span_id\":", &r->parent_span_id, 8);
    jsonw_lit(b, ",\"gateway\":");
    jsonw_string(b, host, strlen(host));
    log_extra(b, r);
    jsonw_lit(b, "}");
}

/* obs_log_field: each a key of its own; names need no escaping. */
static void
log_extra(buf_t *b, const Obs__V1__Record *r)
{
    const Obs__V1__LogField  *f[LOG_FIELDS_MAX];
    size_t                    i, n;

    n = log_fields(r, f);

    for (i = 0; i < n; i++) {
        jsonw_lit(b, ",\"");
        jsonw_raw(b, f[i]->name.data, f[i]->name.len);
        jsonw_lit(b, "\":");
        jsonw_text(b, f[i]->value.data, f[i]->value.len, LOG_TEXT_MAX - 1);
    }
}

/*
 * RFC 3339 UTC with milliseconds.  Lines come in bursts within the same
 * second: its formatted part is kept and only the milliseconds change.
 */
static void
log_timestamp(buf_t *b, uint64_t unix_ns)
{
    static _Thread_local time_t  cached_sec = -1;
    static _Thread_local char    cached[LOG_TIME_MAX];  /* "...THH:MM:SS */
    static _Thread_local int     cached_len;
    time_t                       sec;
    unsigned                     ms;
    struct tm                    tm;
    char                         tail[6];

    sec = (time_t) (unix_ns / 1000000000);

    if (sec != cached_sec) {
        gmtime_r(&sec, &tm);
        cached_len = snprintf(cached, sizeof(cached),
                              "\"%04d-%02d-%02dT%02d:%02d:%02d",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                              tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (cached_len < 0 || cached_len > LOG_TIME_MAX - 1) {
            cached_len = 0;
        }
        cached_sec = sec;
    }

    ms = (unsigned) (unix_ns / 1000000 % 1000);
    tail[0] = '.';
    tail[1] = (char) ('0' + ms / 100);
    tail[2] = (char) ('0' + ms / 10 % 10);
    tail[3] = (char) ('0' + ms % 10);
    tail[4] = 'Z';
    tail[5] = '"';
    jsonw_raw(b, cached, (size_t) cached_len);
    jsonw_raw(b, tail, sizeof(tail));
}

static void
log_text(buf_t *b, const char *key, size_t key_len,
    const ProtobufCBinaryData *t)
{
    if (t->len == 0) {
        return;
    }

    jsonw_raw(b, key, key_len);
    jsonw_text(b, t->data, t->len, LOG_TEXT_MAX - 1);
}

static void
log_id(buf_t *b, const char *key, size_t key_len,
    const ProtobufCBinaryData *id, size_t len)
{
    if (id->len != len) {
        return;
    }

    jsonw_raw(b, key, key_len);
    jsonw_hex(b, id->data, len);
}
