/*
 * The exporter's JSON writer against jansson (the oracle): hostile bytes in
 * every text field of a log line, cuts at every length, and the line inside
 * Loki's JSON push.
 */

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "logline_oracle.h"
#include "unit.h"
#include "jsonw.h"
#include "spans.h"

#define FIELD(r, f, s, n)  ((r)->f.data = (uint8_t *) (s), (r)->f.len = (n))

static const struct {
    const char  *bytes;
    size_t       len;
} hostile[] = {
    { "plain", 5 },
    { "quote \" backslash \\ slash /", 27 },
    { "\x00\x01\x02\x1f\x7f", 5 },
    { "\b\f\n\r\t", 5 },
    { "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 15 },
    { "\xc3", 1 },                          /* cut sequence */
    { "\xc0\xaf", 2 },                      /* overlong slash */
    { "\xed\xa0\x80", 3 },                  /* surrogate */
    { "\xf4\x90\x80\x80", 4 },              /* past U+10FFFF */
    { "\xff\xfe\x80\xbf", 4 },
    { "a\xe2\x82", 3 },
    { "\"}],\"x\":{\"", 10 },               /* tries to break out */
    { "\xe2\x80\xa8\xe2\x80\xa9", 6 },      /* JS line separators */
};

static void
test_hostile_fields(void)
{
    static uint8_t            big[5000];
    Obs__V1__Record           r;
    Obs__V1__UpstreamAttempt  a, *ap = &a;
    char                      why[256];
    size_t                    i, k;
    int                       ok;

    for (i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        obs__v1__record__init(&r);
        obs__v1__upstream_attempt__init(&a);
        FIELD(&r, tenant, hostile[i].bytes, hostile[i].len);
        FIELD(&r, route, hostile[i].bytes, hostile[i].len);
        FIELD(&r, method, hostile[i].bytes, hostile[i].len);
        FIELD(&r, path, hostile[i].bytes, hostile[i].len);
        FIELD(&r, client_address, hostile[i].bytes, hostile[i].len);
        FIELD(&r, user_agent, hostile[i].bytes, hostile[i].len);
        FIELD(&r, request_id, hostile[i].bytes, hostile[i].len);
        FIELD(&a, address, hostile[i].bytes, hostile[i].len);
        r.status = 200 + (unsigned) i * 37;
        r.duration_us = 1234567 + i;
        r.request_bytes = 18446744073709551615ULL;
        a.status = 502;
        a.response_time_us = 1000 * i;
        r.n_upstreams = 1;
        r.upstreams = &ap;

        ok = oracle_check(&r, "svc \"x\"\\", "gw\n1", why, sizeof(why)) == 0;
        if (!ok) {
            fprintf(stderr, "case %zu: %s\n", i, why);
        }
        CHECK(ok, "hostile text reads back as its sanitised text");
    }

    /* long fields: cut at 2047 bytes on a character boundary, each byte
       position of a 4-byte character against the cut */
    for (k = 0; k < 4; k++) {
        memset(big, 'a', sizeof(big));
        memcpy(big + 2044 + k, "\xf0\x9f\x98\x80", 4);
        obs__v1__record__init(&r);
        FIELD(&r, user_agent, big, sizeof(big));
        FIELD(&r, path, big + 1, 2050);
        ok = oracle_check(&r, "s", "g", why, sizeof(why)) == 0;
        if (!ok) {
            fprintf(stderr, "cut %zu: %s\n", k, why);
        }
        CHECK(ok, "long fields are cut like text_utf8 cuts them");
    }
}

/* Every cut length of every hostile text: the writer's string parses and
   equals text_utf8 with the same room. */
static void
test_cuts(void)
{
    char          want[64];
    buf_t         b = { 0 };
    json_t       *v;
    size_t        i, max;
    int           bad = 0;

    for (i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        for (max = 0; max < 40; max++) {
            buf_reset(&b);
            jsonw_text(&b, (const uint8_t *) hostile[i].bytes,
                       hostile[i].len, max);
            text_utf8((const uint8_t *) hostile[i].bytes, hostile[i].len,
                      want, max + 1);
            v = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL,
                           NULL);
            if (!json_is_string(v) || strcmp(json_string_value(v), want)) {
                bad++;
            }
            json_decref(v);
        }
    }

    CHECK(bad == 0, "every cut of every text agrees with text_utf8");
    buf_free(&b);
}

static void
test_numbers(void)
{
    static const uint64_t  us[] = { 0, 1, 999, 1000, 1500, 45123, 1000000,
                                    18446744073709551615ULL };
    buf_t                  b = { 0 };
    json_t                *v;
    size_t                 i;
    int                    bad = 0;

    for (i = 0; i < sizeof(us) / sizeof(us[0]); i++) {
        buf_reset(&b);
        jsonw_millis(&b, us[i]);
        v = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
        if (!json_is_real(v) || json_real_value(v) != (double) (us[i] / 1000)
                                + (double) (us[i] % 1000) / 1000.0)
        {
            if (!(json_is_real(v) && us[i] > 1000000000000ULL)) {
                bad++;
            }
        }
        json_decref(v);
    }
    buf_reset(&b);
    jsonw_millis(&b, 45000);
    CHECK(b.len == 4 && memcmp(b.data, "45.0", 4) == 0, "45 ms is 45.0");
    buf_reset(&b);
    jsonw_millis(&b, 45120);
    CHECK(b.len == 5 && memcmp(b.data, "45.12", 5) == 0, "45.12 ms");
    CHECK(bad == 0, "milliseconds are exact decimals jansson reads");
    buf_free(&b);
}

/*
 * obs_log_field: usable fields become keys of the line and attributes of
 * the SERVER span; hostile names (bad grammar, a key of the line's or the
 * span's own, a repeat, a NUL), empty values and fields past the 16th are
 * left out, so the line never holds a key twice (jansson is told to refuse
 * duplicates).  Every key of the line and of the span is one of
 * log_keys.def or a field: the list the module's nginx -t uses stays true.
 */
static void
test_log_fields(void)
{
    static const char  *names[] = {
        "plan", "user_hash", "Status", "a-b", "", "status", "http.route",
        "tenant.id", "plan", "empty", "a.b_c9", "9lives",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "f13", "f14", "f15", "f16", "f17"
    };
    static const char  *values[] = {
        "gold", "0123abcd", "x", "x", "x", "x", "x", "x", "other", "",
        "dotted", "x", "x", "v13", "v14", "v15", "v16", "v17"
    };
    Obs__V1__Record           r;
    Obs__V1__LogField         f[20], *fp[20];
    Obs__V1__UpstreamAttempt  a, *two[2] = { &a, &a };
    uint8_t                   trace[16] = { 1 }, span[8] = { 2 };
    buf_t                     line = { 0 }, out = { 0 };
    buf_t                     res = { 0 }, req = { 0 };
    exporter_config_t         cfg;
    json_t                   *j, *attrs, *kv;
    const char               *key, *str;
    char                      why[256];
    size_t                    i, n = sizeof(names) / sizeof(names[0]);
    int                       ok, bad = 0, seen = 0;

    obs__v1__record__init(&r);
    obs__v1__upstream_attempt__init(&a);
    FIELD(&r, method, "GET", 3);
    FIELD(&r, route, "/a", 2);
    FIELD(&r, path, "/a", 2);
    FIELD(&r, tenant, "acme", 4);
    FIELD(&r, client_address, "127.0.0.1", 9);
    FIELD(&r, user_agent, "ua", 2);
    FIELD(&r, request_id, "rid", 3);
    FIELD(&r, server_address, "gw", 2);
    FIELD(&r, scheme, "http", 4);
    FIELD(&r, protocol, "HTTP/1.1", 8);
    FIELD(&r, tracestate, "k=v", 3);
    FIELD(&r, trace_id, trace, 16);
    FIELD(&r, span_id, span, 8);
    FIELD(&r, parent_span_id, span, 8);
    FIELD(&a, address, "10.0.0.1:80", 11);
    r.status = 503;
    r.server_port = 8080;
    r.request_body_bytes = 5;
    r.n_upstreams = 2;
    r.upstreams = two;

    for (i = 0; i < n; i++) {
        obs__v1__log_field__init(&f[i]);
        FIELD(&f[i], name, names[i], strlen(names[i]));
        FIELD(&f[i], value, values[i], strlen(values[i]));
        fp[i] = &f[i];
    }
    FIELD(&f[n], name, "a\0b", 3);         /* a NUL in the name */
    FIELD(&f[n], value, "x", 1);
    fp[n] = &f[n];
    r.fields = fp;
    r.n_fields = n + 1;

    ok = oracle_check(&r, "svc", "gw", why, sizeof(why)) == 0;
    if (!ok) {
        fprintf(stderr, "fields: %s\n", why);
    }
    CHECK(ok, "usable fields read back, hostile ones are left out");

    log_line(&line, &r, "svc", "gw", 1);
    CHECK(memmem(line.data, line.len, "\"plan\":\"gold\"", 13) != NULL
          && memmem(line.data, line.len, "\"a.b_c9\":\"dotted\"", 17)
             != NULL
          && memmem(line.data, line.len, "\"f13\":\"v13\"", 11) != NULL
          && memmem(line.data, line.len, "other", 5) == NULL
          && memmem(line.data, line.len, "\"empty\"", 7) == NULL
          && memmem(line.data, line.len, "\"f17\"", 5) == NULL,
          "the line: fields in order, the first of a name, none past "
          "the 16th");

    /* hostile values, as any text of the line */
    for (i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        FIELD(&f[0], value, hostile[i].bytes, hostile[i].len);
        bad += oracle_check(&r, "svc", "gw", why, sizeof(why)) != 0;
    }
    CHECK(bad == 0, "hostile field values read back sanitised");
    FIELD(&f[0], value, "gold", 4);

    memset(&cfg, 0, sizeof(cfg));
    cfg.gateway_name = "obs-gateway";
    cfg.gateway_host = "gw";
    spans_resource(&res, &cfg);
    spans_append(&out, &r, "svc");
    spans_request(&req, &res, &out);
    j = spans_json((const uint8_t *) req.data, req.len);
    attrs = json_object_get(json_array_get(json_object_get(
                json_array_get(json_object_get(json_array_get(
                    json_object_get(j, "resourceSpans"), 0),
                    "scopeSpans"), 0), "spans"), 0), "attributes");
    bad = 0;
    for (i = 0; i < json_array_size(attrs); i++) {
        kv = json_array_get(attrs, i);
        key = json_string_value(json_object_get(kv, "key"));
        str = json_string_value(json_object_get(json_object_get(kv,
                  "value"), "stringValue"));
        if (key && strcmp(key, "plan") == 0) {
            seen += str && strcmp(str, "gold") == 0;
        } else if (key && strcmp(key, "user_hash") == 0) {
            seen += str && strcmp(str, "0123abcd") == 0;
        } else if (key && !log_key_reserved(key)
                   && strncmp(key, "a.b_c9", 6) != 0
                   && !(key[0] == 'f' && key[1] == '1'))
        {
            fprintf(stderr, "span attribute %s\n", key);
            bad++;
        }
    }
    CHECK(seen == 2 && bad == 0 && json_array_size(attrs) > 14,
          "the SERVER span: fields as string attributes; every other "
          "key is in log_keys.def");
    json_decref(j);

    buf_free(&line);
    buf_free(&out);
    buf_free(&res);
    buf_free(&req);
}

/* jsonw_text skips plain ASCII 8 bytes at a time: every byte value at every
   place of a 16-byte text must come out as the byte-at-a-time path makes
   it (ASCII read back as it was; others escaped or replaced). */
static void
test_text_words(void)
{
    uint8_t       raw[16];
    buf_t         b = { 0 };
    json_t       *j;
    json_error_t  err;
    int           c, at, bad = 0;
    char          want[17];

    for (c = 1; c < 0x80; c++) {
        for (at = 0; at < 16; at++) {
            memset(raw, 'a', sizeof(raw));
            raw[at] = (uint8_t) c;
            buf_reset(&b);
            jsonw_text(&b, raw, sizeof(raw), 1024);
            j = json_loadb(b.data, b.len, JSON_DECODE_ANY, &err);
            memcpy(want, raw, 16);
            want[16] = '\0';
            bad += j == NULL || !json_is_string(j)
                   || strcmp(json_string_value(j), want) != 0;
            json_decref(j);
        }
    }
    CHECK(bad == 0, "jsonw_text: each ASCII byte at each place of a word");

    memset(raw, 'a', sizeof(raw));
    raw[11] = 0xff;
    buf_reset(&b);
    jsonw_text(&b, raw, sizeof(raw), 1024);
    CHECK(b.len == 2 + 15 + 3 && memcmp(b.data + 12, "\xef\xbf\xbd", 3) == 0,
          "jsonw_text: a byte >= 0x80 in the second word is replaced");
    buf_free(&b);
}

/* A field written in place (pb_open, pb_close) is byte for byte the field
   written apart and copied (pb_bytes), whatever its length's size. */
static void
test_pb_in_place(void)
{
    static const size_t  lens[] = { 0, 1, 127, 128, 300, 16383, 16384,
                                    20000, 2097152 };
    static uint8_t       body[2097152];
    buf_t                apart = { 0 }, in_place = { 0 };
    size_t               i, at;
    int                  same = 1;

    for (i = 0; i < sizeof(body); i++) {
        body[i] = (uint8_t) (i * 7 + i / 251);
    }

    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        buf_reset(&apart);
        buf_reset(&in_place);
        pb_uint(&apart, 1, 42);
        pb_uint(&in_place, 1, 42);

        pb_bytes(&apart, 2, body, lens[i]);
        at = pb_open(&in_place, 2);
        buf_append(&in_place, body, lens[i]);
        pb_close(&in_place, at);

        if (apart.failed || in_place.failed || apart.len != in_place.len
            || memcmp(apart.data, in_place.data, apart.len) != 0)
        {
            fprintf(stderr, "pb_open/pb_close differ at %zu bytes\n",
                    lens[i]);
            same = 0;
        }
    }

    CHECK(same, "a field written in place has pb_bytes' bytes");
    buf_free(&apart);
    buf_free(&in_place);
}

/* Loki's push as written in place (the entry around its line, a batch of
   one stream sent from its own buffer) is byte for byte the push encoded
   field by field; and a batch of two streams is the two pushes of one
   stream each, one after the other. */
static void
test_loki_push(void)
{
    static const size_t  lens[] = { 40, 300, 20000 };
    static const uint8_t trace[16] = { 1, 2, 3, 4, 5, 6, 7, 8,
                                       9, 10, 11, 12, 13, 14, 15, 16 };
    static char          text[20000];
    loki_batch_t         batch;
    loki_entry_t         e[3];
    buf_t                lines[3] = { { 0 } }, want = { 0 }, entries = { 0 };
    buf_t                entry = { 0 }, ts = { 0 }, pair = { 0 };
    buf_t                one = { 0 }, two = { 0 }, got = { 0 };
    const char          *labels = "{service=\"api\", level=\"INFO\", "
                                  "host=\"gw-1\"}";
    const char          *at;
    size_t               i, len;

    memset(text, 'x', sizeof(text));
    memset(&batch, 0, sizeof(batch));

    for (i = 0; i < 3; i++) {
        buf_append(&lines[i], text, lens[i]);
        e[i].service = "api";
        e[i].level = "INFO";
        e[i].line = &lines[i];
        e[i].time_ns = 1700000000123456789ULL + i;
        e[i].trace_id = i == 1 ? NULL : trace;
        e[i].tenant = i == 2 ? "" : "acme";
        CHECK(loki_add(&batch, LOKI_PROTOBUF, &e[i]) == 0, "entry added");

        /* the same entry, field by field */
        buf_reset(&entry);
        buf_reset(&ts);
        pb_uint(&ts, 1, e[i].time_ns / 1000000000);
        pb_uint(&ts, 2, e[i].time_ns % 1000000000);
        pb_bytes(&entry, 1, ts.data, ts.len);
        pb_bytes(&entry, 2, text, lens[i]);
        if (e[i].trace_id) {
            buf_reset(&pair);
            pb_bytes(&pair, 1, "trace_id", 8);
            pb_bytes(&pair, 2, "0102030405060708090a0b0c0d0e0f10", 32);
            pb_bytes(&entry, 3, pair.data, pair.len);
        }
        if (*e[i].tenant) {
            buf_reset(&pair);
            pb_bytes(&pair, 1, "tenant_id", 9);
            pb_bytes(&pair, 2, "acme", 4);
            pb_bytes(&entry, 3, pair.data, pair.len);
        }
        pb_bytes(&entries, 2, entry.data, entry.len);
    }

    pb_len(&want, 1, pb_len_size(1, strlen(labels)) + entries.len);
    pb_bytes(&want, 1, labels, strlen(labels));
    buf_append(&want, entries.data, entries.len);

    at = loki_seal(&batch, LOKI_PROTOBUF, "gw-1", &got, &len);
    CHECK(got.len == 0 && len == want.len
          && memcmp(at, want.data, len) == 0,
          "a push of one stream, in place, is the push field by field");

    /* two streams: what each sends alone, one after the other */
    loki_add(&batch, LOKI_PROTOBUF, &e[0]);
    loki_body(&batch, LOKI_PROTOBUF, "gw-1", &one);
    e[1].level = "WARN";
    loki_add(&batch, LOKI_PROTOBUF, &e[1]);
    loki_body(&batch, LOKI_PROTOBUF, "gw-1", &two);
    buf_append(&one, two.data, two.len);

    buf_reset(&got);
    loki_add(&batch, LOKI_PROTOBUF, &e[0]);
    loki_add(&batch, LOKI_PROTOBUF, &e[1]);
    CHECK(batch.n_streams == 2 && batch.items == 2, "two streams");
    at = loki_seal(&batch, LOKI_PROTOBUF, "gw-1", &got, &len);
    CHECK(at == got.data && len == one.len
          && memcmp(at, one.data, len) == 0,
          "a push of two streams is theirs one after the other");

    loki_free(&batch);
    for (i = 0; i < 3; i++) {
        buf_free(&lines[i]);
    }
    buf_free(&want);
    buf_free(&entries);
    buf_free(&entry);
    buf_free(&ts);
    buf_free(&pair);
    buf_free(&one);
    buf_free(&two);
    buf_free(&got);
}

int
main(void)
{
    test_pb_in_place();
    test_loki_push();
    test_hostile_fields();
    test_cuts();
    test_numbers();
    test_log_fields();
    test_text_words();
    return unit_report("logline");
}
