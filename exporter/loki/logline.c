/*
 * The structured log line, with the brief's field names:
 * {"timestamp","level","service","trace_id","span_id","tenant_id",
 *  "endpoint","message","latency_ms", ...}, written in one pass by the
 * JSON writer (jsonw.h), so it is valid JSON whatever the request held.
 *
 * The same walk over the fields writes the line as an OTLP LogRecord
 * (logs.proto field numbers): the time, level, ids and message in the
 * record's own fields, every other key as an attribute of the same name
 * and kind (text, integer, milliseconds as a double, true/false), so the
 * two can never disagree on what a line holds.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fields.h"
#include "jsonw.h"
#include "logline.h"
#include "otlp_pb.h"
#include "text.h"

#define LOG_TIME_MAX  64

/* LogRecord fields; ScopeLogs.log_records */
enum {
    LR_TIME = 1, LR_SEVERITY = 2, LR_SEVERITY_TEXT = 3, LR_BODY = 5,
    LR_ATTRIBUTES = 6, LR_FLAGS = 8, LR_TRACE_ID = 9, LR_SPAN_ID = 10,
    SL_LOG_RECORDS = 2
};

/* Where a walk writes: a JSON line, or a LogRecord's fields. */
typedef struct {
    buf_t  *b;
    int     otlp;
} log_writer_t;

static void log_walk(log_writer_t *w, const Obs__V1__Record *r,
    const char *service, const char *host, int kept);
static void log_timestamp(buf_t *b, uint64_t unix_ns);
static void log_text(log_writer_t *w, const char *key, size_t key_len,
    const ProtobufCBinaryData *t);
static void log_id(log_writer_t *w, const char *key, size_t key_len,
    const ProtobufCBinaryData *id, size_t len, unsigned field);
static void log_extra(log_writer_t *w, const Obs__V1__Record *r);
static void otlp_text(buf_t *b, const char *key, size_t key_len,
    const uint8_t *raw, size_t len);
static double log_millis_exact(uint64_t us);

/*
 * Keys are written as JSON literals: ",\"key\":"; the LogRecord takes the
 * name between the quotes.
 */
#define LOG_TEXT(w, lit, t)       log_text(w, lit, sizeof(lit) - 1, t)
#define LOG_ID(w, lit, t, n, f)   log_id(w, lit, sizeof(lit) - 1, t, n, f)

static inline void
log_count(log_writer_t *w, const char *lit, size_t lit_len, uint64_t v)
{
    if (w->otlp) {
        size_t  off = lit[0] == ',' ? 2 : 1;

        otlp_attr_int(w->b, LR_ATTRIBUTES, lit + off, lit_len - off - 2,
                      (int64_t) (v > INT64_MAX ? INT64_MAX : v));
        return;
    }
    jsonw_raw(w->b, lit, lit_len);
    jsonw_count(w->b, v);
}

static inline void
log_millis(log_writer_t *w, const char *lit, size_t lit_len, uint64_t us)
{
    if (w->otlp) {
        size_t  off = lit[0] == ',' ? 2 : 1;

        otlp_attr_double(w->b, LR_ATTRIBUTES, lit + off, lit_len - off - 2,
                         us < (1ULL << 53) ? (double) us / 1000.0
                                           : log_millis_exact(us));
        return;
    }
    jsonw_raw(w->b, lit, lit_len);
    jsonw_millis(w->b, us);
}

static inline void
log_string(log_writer_t *w, const char *lit, size_t lit_len,
    const char *text)
{
    if (w->otlp) {
        size_t  off = lit[0] == ',' ? 2 : 1;

        otlp_attr_str(w->b, LR_ATTRIBUTES, lit + off, lit_len - off - 2,
                      text, strlen(text));
        return;
    }
    jsonw_raw(w->b, lit, lit_len);
    jsonw_string(w->b, text, strlen(text));
}

#define LOG_COUNT(w, lit, v)   log_count(w, lit, sizeof(lit) - 1, v)
#define LOG_MILLIS(w, lit, v)  log_millis(w, lit, sizeof(lit) - 1, v)
#define LOG_STRING(w, lit, v)  log_string(w, lit, sizeof(lit) - 1, v)

const char *
log_level(unsigned status)
{
    return status >= 500 ? "ERROR" : status >= 400 ? "WARN" : "INFO";
}

void
log_line(buf_t *b, const Obs__V1__Record *r, const char *service,
    const char *host, int kept)
{
    log_writer_t  w = { b, 0 };

    jsonw_lit(b, "{");
    log_walk(&w, r, service, host, kept);
    jsonw_lit(b, "}");
}

void
log_record(buf_t *out, const Obs__V1__Record *r, const char *service,
    const char *host, int kept)
{
    log_writer_t  w = { out, 1 };
    size_t        at;

    at = pb_open(out, SL_LOG_RECORDS);
    log_walk(&w, r, service, host, kept);
    pb_close(out, at);
}

/* Every key of the line, in order. */
static void
log_walk(log_writer_t *w, const Obs__V1__Record *r, const char *service,
    const char *host, int kept)
{
    const Obs__V1__UpstreamAttempt  *u;
    const char                      *level = log_level(r->status);
    uint64_t                         end;
    buf_t                           *b = w->b;

    /* the time the response was complete, as access logs have it */
    end = r->start_time_unix_nano + r->duration_us * 1000;

    if (w->otlp) {
        /* SeverityNumber: INFO 9, WARN 13, ERROR 17 */
        pb_fixed64(b, LR_TIME, end);
        pb_uint(b, LR_SEVERITY, level[0] == 'E' ? 17 : level[0] == 'W' ? 13
                                : 9);
        pb_bytes(b, LR_SEVERITY_TEXT, level, strlen(level));
    } else {
        jsonw_lit(b, "\"timestamp\":");
        log_timestamp(b, end);
        jsonw_lit(b, ",\"level\":\"");
        jsonw_raw(b, level, strlen(level));
        jsonw_lit(b, "\"");
    }

    LOG_STRING(w, ",\"service\":", service);
    LOG_ID(w, ",\"trace_id\":", &r->trace_id, 16, LR_TRACE_ID);
    LOG_ID(w, ",\"span_id\":", &r->span_id, 8, LR_SPAN_ID);
    LOG_TEXT(w, ",\"tenant_id\":", &r->tenant);
    LOG_TEXT(w, ",\"endpoint\":", &r->route);

    if (w->otlp) {
        /* the body: an AnyValue string */
        pb_len(b, LR_BODY, pb_len_size(OTLP_ANY_STRING, 17));
        pb_bytes(b, OTLP_ANY_STRING, "Request processed", 17);
    } else {
        jsonw_lit(b, ",\"message\":\"Request processed\"");
    }
    LOG_MILLIS(w, ",\"latency_ms\":", r->duration_us);

    LOG_TEXT(w, ",\"method\":", &r->method);
    LOG_TEXT(w, ",\"path\":", &r->path);
    LOG_COUNT(w, ",\"status\":", r->status);
    LOG_COUNT(w, ",\"bytes_in\":", r->request_bytes);
    LOG_COUNT(w, ",\"bytes_out\":", r->response_bytes);

    if (r->n_upstreams) {
        u = r->upstreams[r->n_upstreams - 1];
        LOG_TEXT(w, ",\"upstream_addr\":", &u->address);
        LOG_COUNT(w, ",\"upstream_status\":", u->status);
        LOG_MILLIS(w, ",\"upstream_latency_ms\":", u->response_time_us);
        if (r->n_upstreams > 1) {
            LOG_COUNT(w, ",\"upstream_attempts\":", r->n_upstreams);
        }
    }

    LOG_TEXT(w, ",\"client_addr\":", &r->client_address);
    LOG_TEXT(w, ",\"user_agent\":", &r->user_agent);
    LOG_TEXT(w, ",\"request_id\":", &r->request_id);
    LOG_ID(w, ",\"parent_span_id\":", &r->parent_span_id, 8, 0);
    LOG_STRING(w, ",\"gateway\":", host);

    /* whether this gateway exported the request's span: a line whose
       trace was not kept has nothing to open in the trace view */
    if (w->otlp) {
        otlp_attr_bool(b, LR_ATTRIBUTES, "trace_kept", 10, kept);
        if (r->trace_id.len == 16) {
            pb_fixed32(b, LR_FLAGS, (r->trace_flags & 0xfe) | (kept != 0));
        }
    } else if (kept) {
        jsonw_lit(b, ",\"trace_kept\":true");
    } else {
        jsonw_lit(b, ",\"trace_kept\":false");
    }

    log_extra(w, r);
}

/* obs_log_field: each a key of its own; names need no escaping. */
static void
log_extra(log_writer_t *w, const Obs__V1__Record *r)
{
    const Obs__V1__LogField  *f[LOG_FIELDS_MAX];
    size_t                    i, n;

    n = log_fields(r, f);

    for (i = 0; i < n; i++) {
        if (w->otlp) {
            otlp_text(w->b, (const char *) f[i]->name.data, f[i]->name.len,
                      f[i]->value.data, f[i]->value.len);
            continue;
        }
        jsonw_lit(w->b, ",\"");
        jsonw_raw(w->b, f[i]->name.data, f[i]->name.len);
        jsonw_lit(w->b, "\":");
        jsonw_text(w->b, f[i]->value.data, f[i]->value.len,
                   LOG_TEXT_MAX - 1);
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
log_text(log_writer_t *w, const char *key, size_t key_len,
    const ProtobufCBinaryData *t)
{
    if (t->len == 0) {
        return;
    }

    if (w->otlp) {
        size_t  off = key[0] == ',' ? 2 : 1;

        otlp_text(w->b, key + off, key_len - off - 2, t->data, t->len);
        return;
    }

    jsonw_raw(w->b, key, key_len);
    jsonw_text(w->b, t->data, t->len, LOG_TEXT_MAX - 1);
}

/* trace_id and span_id: the LogRecord's own fields; parent_span_id (field
   0): a hex attribute, as in the line. */
static void
log_id(log_writer_t *w, const char *key, size_t key_len,
    const ProtobufCBinaryData *id, size_t len, unsigned field)
{
    char    hex[33];
    size_t  off;

    if (id->len != len) {
        return;
    }

    if (!w->otlp) {
        jsonw_raw(w->b, key, key_len);
        jsonw_hex(w->b, id->data, len);
    } else if (field) {
        pb_bytes(w->b, field, id->data, len);
    } else {
        off = key[0] == ',' ? 2 : 1;
        text_hex(hex, id->data, len);
        otlp_attr_str(w->b, LR_ATTRIBUTES, key + off, key_len - off - 2, hex,
                      2 * len);
    }
}

/* A text attribute sanitised and cut as the line's (text_utf8 is what
   jsonw_text does before escaping). */
static void
otlp_text(buf_t *b, const char *key, size_t key_len, const uint8_t *raw,
    size_t len)
{
    char    text[LOG_TEXT_MAX];
    size_t  n = text_utf8(raw, len, text, sizeof(text));

    otlp_attr_str(b, LR_ATTRIBUTES, key, key_len, text, n);
}

/* The double nearest the line's exact decimal, where us / 1000.0 would
   round twice (past 2^53 microseconds, 285 years). */
static double
log_millis_exact(uint64_t us)
{
    char  text[32];

    snprintf(text, sizeof(text), "%llu.%03u",
             (unsigned long long) (us / 1000), (unsigned) (us % 1000));
    return strtod(text, NULL);
}
