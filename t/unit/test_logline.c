/*
 * The exporter's JSON writer against jansson (the oracle): hostile bytes in
 * every text field of a log line, cuts at every length, and the line inside
 * Loki's JSON push.
 */

#include <stdlib.h>

#include "logline_oracle.h"
#include "unit.h"
#include "jsonw.h"

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

int
main(void)
{
    test_hostile_fields();
    test_cuts();
    test_numbers();
    return unit_report("logline");
}
