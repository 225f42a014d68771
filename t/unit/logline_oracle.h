/*
 * jansson as the oracle of the exporter's own JSON writer: a record's log
 * line (and the same line inside Loki's JSON push) must parse with jansson,
 * and every field must read back as the sanitised text (text_utf8's rules)
 * or the exact number.  Shared by t/unit/test_logline.c and
 * t/fuzz/fuzz_logline.c.
 */

#ifndef OBS_LOGLINE_ORACLE_H
#define OBS_LOGLINE_ORACLE_H

#include <regex.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "build.h"
#include "loki.h"
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

/*
 * Writes the record's line, parses it, checks it; then the same line
 * inside a Loki JSON push body.  Returns 0, or -1 with why filled in.
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

    log_line(&line, r, service, host, 0);
    o = json_loadb(line.data, line.len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL) {
        snprintf(why, whylen, "line does not parse: %s", jerr.text);
        goto done;
    }
    rc = oracle_fields(o, r, service, host, why, whylen);
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
