/*
 * Every string put into these objects is already valid UTF-8 (sanitised by
 * text_utf8, hex, or formatted here), so jansson's _nocheck calls skip a
 * second validation pass.
 *
 * The structured log line, with the brief's field names:
 * {"timestamp","level","service","trace_id","span_id","tenant_id",
 *  "endpoint","message","latency_ms", ...}.  Built with jansson from
 * sanitised text, so it is valid JSON whatever the request held.
 */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "build.h"
#include "text.h"

#define LOG_TEXT_MAX  2048
#define LOG_TIME_MAX  64

static void log_timestamp(uint64_t unix_ns, char *out);
static void log_text(json_t *o, const char *key,
    const ProtobufCBinaryData *b);
static void log_id(json_t *o, const char *key, const ProtobufCBinaryData *b,
    size_t len);

const char *
log_level(unsigned status)
{
    return status >= 500 ? "ERROR" : status >= 400 ? "WARN" : "INFO";
}

json_t *
log_line(const Obs__V1__Record *r, const char *service, const char *host)
{
    json_t    *o;
    char       when[LOG_TIME_MAX];
    uint64_t   end_ns;

    o = json_object();
    if (o == NULL) {
        return NULL;
    }

    /* the time the response was complete, as access logs have it */
    end_ns = r->start_time_unix_nano + r->duration_us * 1000;
    log_timestamp(end_ns, when);

    json_object_set_new_nocheck(o, "timestamp", json_string_nocheck(when));
    json_object_set_new_nocheck(o, "level",
                                json_string_nocheck(log_level(r->status)));
    json_object_set_new_nocheck(o, "service", json_string_nocheck(service));
    log_id(o, "trace_id", &r->trace_id, 16);
    log_id(o, "span_id", &r->span_id, 8);
    log_text(o, "tenant_id", &r->tenant);
    log_text(o, "endpoint", &r->route);
    json_object_set_new_nocheck(o, "message",
                                json_string_nocheck("Request processed"));
    json_object_set_new_nocheck(o, "latency_ms",
                        json_real((double) r->duration_us / 1000.0));

    log_text(o, "method", &r->method);
    log_text(o, "path", &r->path);
    json_object_set_new_nocheck(o, "status", json_integer(r->status));
    json_object_set_new_nocheck(o, "bytes_in", json_integer(
                        (json_int_t) r->request_bytes));
    json_object_set_new_nocheck(o, "bytes_out", json_integer(
                        (json_int_t) r->response_bytes));

    if (r->n_upstreams) {
        const Obs__V1__UpstreamAttempt  *u = r->upstreams[r->n_upstreams - 1];

        log_text(o, "upstream_addr", &u->address);
        json_object_set_new_nocheck(o, "upstream_status",
                                    json_integer(u->status));
        json_object_set_new_nocheck(o, "upstream_latency_ms",
                            json_real((double) u->response_time_us / 1000.0));
        if (r->n_upstreams > 1) {
            json_object_set_new_nocheck(o, "upstream_attempts",
                                json_integer((json_int_t) r->n_upstreams));
        }
    }

    log_text(o, "client_addr", &r->client_address);
    log_text(o, "user_agent", &r->user_agent);
    log_text(o, "request_id", &r->request_id);
    log_id(o, "parent_span_id", &r->parent_span_id, 8);
    json_object_set_new_nocheck(o, "gateway", json_string_nocheck(host));

    return o;
}

/*
 * RFC 3339 UTC with milliseconds.  Lines come in bursts within the same
 * second: its formatted part is kept and only the milliseconds change.
 */
static void
log_timestamp(uint64_t unix_ns, char *out)
{
    static _Thread_local time_t  cached_sec = -1;
    static _Thread_local char    cached[LOG_TIME_MAX];  /* ...THH:MM:SS */
    static _Thread_local int     cached_len;
    time_t                       sec;
    unsigned                     ms;
    struct tm                    tm;

    sec = (time_t) (unix_ns / 1000000000);

    if (sec != cached_sec) {
        gmtime_r(&sec, &tm);
        cached_len = snprintf(cached, sizeof(cached),
                              "%04d-%02d-%02dT%02d:%02d:%02d",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                              tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (cached_len < 0 || cached_len > LOG_TIME_MAX - 6) {
            cached_len = 0;
        }
        cached_sec = sec;
    }

    ms = (unsigned) (unix_ns / 1000000 % 1000);
    memcpy(out, cached, (size_t) cached_len);
    out += cached_len;
    out[0] = '.';
    out[1] = (char) ('0' + ms / 100);
    out[2] = (char) ('0' + ms / 10 % 10);
    out[3] = (char) ('0' + ms % 10);
    out[4] = 'Z';
    out[5] = '\0';
}

static void
log_text(json_t *o, const char *key, const ProtobufCBinaryData *b)
{
    char  text[LOG_TEXT_MAX];

    if (b->len == 0) {
        return;
    }

    text_utf8(b->data, b->len, text, sizeof(text));
    json_object_set_new_nocheck(o, key, json_string_nocheck(text));
}

static void
log_id(json_t *o, const char *key, const ProtobufCBinaryData *b, size_t len)
{
    char  hex[33];

    if (b->len != len) {
        return;
    }

    text_hex(hex, b->data, len);
    json_object_set_new_nocheck(o, key, json_string_nocheck(hex));
}
