/*
 * jansson as the oracle of the exporter's own JSON writer: a record's log
 * line (and the same line inside Loki's JSON push) must parse with jansson,
 * and every field must read back as the sanitised text (text_utf8's rules)
 * or the exact number.  The same record's OTLP LogRecord must say what the
 * line says: read with a plain wire reader and logs.proto's field numbers
 * written here, each key of the line is the record's own field or an
 * attribute of the same name and value, and nothing else is there.  Shared
 * by t/unit/test_logline.c and t/fuzz/fuzz_logline.c.
 */

#ifndef OBS_LOGLINE_ORACLE_H
#define OBS_LOGLINE_ORACLE_H

#include <regex.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "fields.h"
#include "logline.h"
#include "loki.h"
#include "pb.h"
#include "text.h"

/* The sanitised text a field must read back as, like the writer's cut. */
static int
oracle_text(json_t *o, const char *key, const ProtobufCBinaryData *raw,
    size_t cap, char *why, size_t whylen)
{
    static char  want[LOG_TEXT_MAX];
    json_t      *v = json_object_get(o, key);

    if (raw->len == 0) {
        if (v != NULL) {
            snprintf(why, whylen, "%s present for an empty text", key);
            return -1;
        }
        return 0;
    }

    text_utf8(raw->data, raw->len, want, cap);
    if (!json_is_string(v) || strcmp(json_string_value(v), want) != 0
        || json_string_length(v) != strlen(want))
    {
        snprintf(why, whylen, "%s does not read back as its sanitised text",
                 key);
        return -1;
    }
    return 0;
}

static int
oracle_number(json_t *o, const char *key, double want, char *why,
    size_t whylen)
{
    json_t  *v = json_object_get(o, key);
    double   got = json_number_value(v), d = got - want;

    /* exact while the microseconds are below 2^53; past that us / 1000.0
       rounds twice: within an ulp or so */
    if (!json_is_number(v)
        || (want * 1000 < 9007199254740992.0 ? got != want
            : (d < 0 ? -d : d) > want * 1e-15))
    {
        snprintf(why, whylen, "%s is not %.17g", key, want);
        return -1;
    }
    return 0;
}

/* Counts past 2^63 - 1 are written as 2^63 - 1. */
static double
oracle_count(uint64_t v)
{
    return (double) (v > INT64_MAX ? INT64_MAX : v);
}

/*
 * obs_log_field: a name the line may carry, by a POSIX regex rather than
 * the writer's own loop.
 */
static int
oracle_field_name(const ProtobufCBinaryData *name, char *out)
{
    static regex_t  re;
    static int      compiled;

    if (!compiled) {
        regcomp(&re, "^[a-z][a-z0-9_.]{0,63}$", REG_EXTENDED | REG_NOSUB);
        compiled = 1;
    }

    if (name->len == 0 || name->len > LOG_FIELD_NAME_MAX
        || memchr(name->data, '\0', name->len) != NULL)
    {
        return 0;
    }

    memcpy(out, name->data, name->len);
    out[name->len] = '\0';
    return regexec(&re, out, 0, NULL, 0) == 0 && !log_key_reserved(out);
}

/*
 * Every field with a usable name (the first of a name, among the first
 * LOG_FIELDS_MAX) and a value reads back as its sanitised text, and every
 * other key of the line is one the line writes itself.
 */
static int
oracle_extra(json_t *o, const Obs__V1__Record *r, char *why, size_t whylen)
{
    static char   names[LOG_FIELDS_MAX][LOG_FIELD_NAME_MAX + 1];
    const char   *key;
    json_t       *v;
    size_t        i, k, n = 0;

    for (i = 0; i < r->n_fields && i < LOG_FIELDS_MAX; i++) {
        if (r->fields[i]->value.len == 0
            || !oracle_field_name(&r->fields[i]->name, names[n]))
        {
            continue;
        }
        for (k = 0; k < n && strcmp(names[k], names[n]) != 0; k++) {
            /* void */
        }
        if (k < n) {
            continue;                   /* a repeat: the first one counts */
        }
        if (oracle_text(o, names[n], &r->fields[i]->value, LOG_TEXT_MAX, why,
                        whylen))
        {
            return -1;
        }
        n++;
    }

    json_object_foreach(o, key, v) {
        for (k = 0; k < n && strcmp(names[k], key) != 0; k++) {
            /* void */
        }
        if (k == n && !log_key_reserved(key)) {
            snprintf(why, whylen, "key %.64s is neither the line's own "
                     "(log_keys.def) nor a field", key);
            return -1;
        }
    }

    return 0;
}

/* Checks one parsed log line against the record it was written from. */
static int
oracle_fields(json_t *o, const Obs__V1__Record *r, const char *service,
    const char *host, char *why, size_t whylen)
{
    const Obs__V1__UpstreamAttempt  *u;
    ProtobufCBinaryData              svc, gw;

    svc.data = (uint8_t *) service;
    svc.len = strlen(service);
    gw.data = (uint8_t *) host;
    gw.len = strlen(host);

    if (!json_is_object(o)
        || oracle_text(o, "service", &svc, LOG_TEXT_MAX, why, whylen)
        || oracle_text(o, "gateway", &gw, LOG_TEXT_MAX, why, whylen)
        || oracle_text(o, "tenant_id", &r->tenant, LOG_TEXT_MAX, why, whylen)
        || oracle_text(o, "endpoint", &r->route, LOG_TEXT_MAX, why, whylen)
        || oracle_text(o, "method", &r->method, LOG_TEXT_MAX, why, whylen)
        || oracle_text(o, "path", &r->path, LOG_TEXT_MAX, why, whylen)
        || oracle_text(o, "client_addr", &r->client_address, LOG_TEXT_MAX,
                       why, whylen)
        || oracle_text(o, "user_agent", &r->user_agent, LOG_TEXT_MAX, why,
                       whylen)
        || oracle_text(o, "request_id", &r->request_id, LOG_TEXT_MAX, why,
                       whylen)
        || oracle_number(o, "latency_ms", (double) r->duration_us / 1000.0,
                         why, whylen)
        || oracle_number(o, "status", r->status, why, whylen)
        || oracle_number(o, "bytes_in", oracle_count(r->request_bytes), why,
                         whylen)
        || oracle_number(o, "bytes_out", oracle_count(r->response_bytes),
                         why, whylen)
        || oracle_extra(o, r, why, whylen))
    {
        return -1;
    }

    if (strcmp(json_string_value(json_object_get(o, "level")),
               log_level(r->status)) != 0
        || strcmp(json_string_value(json_object_get(o, "message")),
                  "Request processed") != 0
        || !json_is_string(json_object_get(o, "timestamp")))
    {
        snprintf(why, whylen, "level, message or timestamp wrong");
        return -1;
    }

    if (r->n_upstreams) {
        u = r->upstreams[r->n_upstreams - 1];
        if (oracle_text(o, "upstream_addr", &u->address, LOG_TEXT_MAX, why,
                        whylen)
            || oracle_number(o, "upstream_status", u->status, why, whylen)
            || oracle_number(o, "upstream_latency_ms",
                             (double) u->response_time_us / 1000.0, why,
                             whylen))
        {
            return -1;
        }
    }

    return 0;
}

/* One AnyValue against the line's JSON value (string, int, double,
   bool). */
static int
oracle_any(const uint8_t *p, size_t len, json_t *v)
{
    const uint8_t  *end = p + len;
    pb_field_t      f;
    double          d;
    int             n = 0, ok = 0;

    while (pb_next(&p, end, &f) == 1) {
        n++;
        switch (f.field) {
        case 1:             /* string_value */
            ok = f.wire == PB_LEN && json_is_string(v)
                 && json_string_length(v) == f.len
                 && memcmp(json_string_value(v), f.data, f.len) == 0;
            break;
        case 2:             /* bool_value */
            ok = f.wire == PB_VARINT && json_is_boolean(v)
                 && (f.value != 0) == json_is_true(v);
            break;
        case 3:             /* int_value */
            ok = f.wire == PB_VARINT && json_is_integer(v)
                 && (int64_t) f.value == json_integer_value(v);
            break;
        case 4:             /* double_value */
            memcpy(&d, &f.value, sizeof(d));
            ok = f.wire == PB_FIXED64 && json_is_number(v)
                 && d == json_number_value(v);
            break;
        default:
            return 0;
        }
    }
    return n == 1 && ok;
}

/*
 * The record's LogRecord against its parsed line o: time, severity, body,
 * ids and flags in the record's own fields, every other key an attribute
 * once, with its value.
 */
static int
oracle_record(json_t *o, const Obs__V1__Record *r, const char *service,
    const char *host, int kept, char *why, size_t whylen)
{
    buf_t           out = { 0 };
    const uint8_t  *p, *end, *q, *qend;
    pb_field_t      f, g;
    json_t         *seen = json_object(), *v;
    const char     *key, *level = log_level(r->status);
    char            name[LOG_FIELD_NAME_MAX + 64], hex[33];
    const uint8_t  *value;
    size_t          value_len;
    int             rc = -1, n_attrs = 0;
    uint64_t        flags = 0;

    log_record(&out, r, service, host, kept);
    p = (const uint8_t *) out.data;
    end = p + out.len;

    /* ScopeLogs.log_records = 2 */
    if (pb_next(&p, end, &f) != 1 || f.field != 2 || f.wire != PB_LEN
        || p != end)
    {
        snprintf(why, whylen, "record: not one log_records field");
        goto done;
    }

    q = f.data;
    qend = f.data + f.len;
    while (pb_next(&q, qend, &g) == 1) {
        switch (g.field) {
        case 1:             /* time_unix_nano */
            if (g.wire != PB_FIXED64 || g.value != r->start_time_unix_nano
                                                  + r->duration_us * 1000)
            {
                snprintf(why, whylen, "record: time");
                goto done;
            }
            break;
        case 2:             /* severity_number */
            if (g.value != (level[0] == 'E' ? 17u : level[0] == 'W' ? 13u
                                                                  : 9u))
            {
                snprintf(why, whylen, "record: severity_number");
                goto done;
            }
            break;
        case 3:             /* severity_text */
            if (g.len != strlen(level) || memcmp(g.data, level, g.len)) {
                snprintf(why, whylen, "record: severity_text");
                goto done;
            }
            break;
        case 5:             /* body */
            v = json_object_get(o, "message");
            if (!oracle_any(g.data, g.len, v)) {
                snprintf(why, whylen, "record: body");
                goto done;
            }
            break;
        case 8:             /* flags */
            flags = g.value;
            break;
        case 9:             /* trace_id */
        case 10:            /* span_id */
            text_hex(hex, g.data, g.len > 16 ? 16 : g.len);
            v = json_object_get(o, g.field == 9 ? "trace_id" : "span_id");
            if (!json_is_string(v) || strcmp(json_string_value(v), hex)) {
                snprintf(why, whylen, "record: trace_id or span_id");
                goto done;
            }
            break;
        case 6:             /* attributes: KeyValue {key = 1, value = 2} */
            p = g.data;
            end = g.data + g.len;
            name[0] = '\0';
            value = NULL;
            value_len = 0;
            while (pb_next(&p, end, &f) == 1) {
                if (f.field == 1 && f.len < sizeof(name)) {
                    memcpy(name, f.data, f.len);
                    name[f.len] = '\0';
                } else if (f.field == 2) {
                    value = f.data;
                    value_len = f.len;
                }
            }
            v = json_object_get(o, name);
            if (value == NULL || json_object_get(seen, name)
                || !oracle_any(value, value_len, v))
            {
                snprintf(why, whylen, "record: attribute %.64s", name);
                goto done;
            }
            json_object_set_new(seen, name, json_true());
            n_attrs++;
            break;
        default:
            snprintf(why, whylen, "record: unexpected field %u", g.field);
            goto done;
        }
    }

    /* the line's other keys, all of them */
    json_object_foreach(o, key, v) {
        if (strcmp(key, "timestamp") && strcmp(key, "level")
            && strcmp(key, "message") && strcmp(key, "trace_id")
            && strcmp(key, "span_id") && !json_object_get(seen, key))
        {
            snprintf(why, whylen, "record: no attribute %.64s", key);
            goto done;
        }
    }
    if ((flags & 1) != (uint64_t) (kept && r->trace_id.len == 16)) {
        snprintf(why, whylen, "record: flags");
        goto done;
    }

    rc = 0;

done:
    (void) n_attrs;
    json_decref(seen);
    buf_free(&out);
    return rc;
}

/*
 * Writes the record's line, parses it, checks it; then the same line
 * inside a Loki JSON push body, and the record's LogRecord against it.
 * Returns 0, or -1 with why filled in.
 */
static int
oracle_check(const Obs__V1__Record *r, const char *service,
    const char *host, char *why, size_t whylen)
{
    buf_t          line = { 0 }, body = { 0 };
    loki_batch_t   batch;
    loki_entry_t   entry;
    json_error_t   jerr;
    json_t        *o, *push, *text;
    int            rc = -1;

    log_line(&line, r, service, host, r->status & 1);
    o = json_loadb(line.data, line.len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL) {
        snprintf(why, whylen, "line does not parse: %s", jerr.text);
        goto done;
    }
    rc = oracle_fields(o, r, service, host, why, whylen);
    if (rc == 0
        && !json_is_boolean(json_object_get(o, "trace_kept")))
    {
        snprintf(why, whylen, "trace_kept missing");
        rc = -1;
    }
    if (rc == 0) {
        rc = oracle_record(o, r, service, host, r->status & 1, why, whylen);
    }
    json_decref(o);
    if (rc != 0) {
        goto done;
    }

    memset(&batch, 0, sizeof(batch));
    entry.service = service;
    entry.level = log_level(r->status);
    entry.line = &line;
    entry.time_ns = 1;
    entry.trace_id = NULL;
    entry.tenant = "t";
    loki_add(&batch, LOKI_JSON, &entry);
    loki_body(&batch, LOKI_JSON, host, &body);
    loki_free(&batch);

    rc = -1;
    push = json_loadb(body.data, body.len, 0, &jerr);
    text = json_array_get(json_object_get(json_array_get(
               json_object_get(push, "streams"), 0), "values"), 0);
    text = json_array_get(text, 1);
    if (!json_is_string(text) || json_string_length(text) != line.len
        || memcmp(json_string_value(text), line.data, line.len) != 0)
    {
        snprintf(why, whylen, "the push body does not carry the line");
    } else {
        rc = 0;
    }
    json_decref(push);

done:
    buf_free(&line);
    buf_free(&body);
    return rc;
}

#endif
