/* Unit tests for the W3C trace context parsers (obs_tracecontext.c). */

#include <string.h>

#include "obs_tracecontext.h"
#include "unit.h"


static int
parse(const char *value, obs_traceparent_t *tp)
{
    return obs_traceparent_parse(value, strlen(value), tp);
}


static long
combine(const char **headers, size_t n, char *out)
{
    obs_slice_t  spans[8];
    size_t      i;

    for (i = 0; i < n; i++) {
        spans[i].data = headers[i];
        spans[i].len = strlen(headers[i]);
    }

    return obs_tracestate_combine(spans, n, out);
}


static void
test_traceparent_valid(void)
{
    obs_traceparent_t  tp;
    char               out[OBS_TRACEPARENT_LEN + 1];

    CHECK(parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                &tp) == 0, "valid traceparent");
    CHECK(tp.trace_id[0] == 0x0a && tp.trace_id[15] == 0x9c, "trace id");
    CHECK(tp.parent_id[0] == 0xb7 && tp.parent_id[7] == 0x31, "parent id");
    CHECK(tp.flags == 1, "flags");

    obs_traceparent_format(out, tp.trace_id, tp.parent_id, tp.flags);
    out[OBS_TRACEPARENT_LEN] = '\0';
    CHECK(strcmp(out, "00-0af7651916cd43dd8448eb211c80319c-"
                      "b7ad6b7169203331-01") == 0, "format round trip");

    CHECK(parse(" \t00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                "\t ", &tp) == 0, "surrounding whitespace");
    CHECK(parse("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                &tp) == 0, "future version");
    CHECK(parse("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-xyz",
                &tp) == 0, "future version, more fields");
    CHECK(parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-ff",
                &tp) == 0 && tp.flags == 0xff, "all flags");
}


static void
test_traceparent_invalid(void)
{
    obs_traceparent_t   tp;
    const char        **p;
    static const char  *bad[] = {
        "",
        "00",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01.",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",
        "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01.x",
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ".0-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "000-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "0-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319.-b7ad6b7169203331-01",
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c1-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333.-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033311-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-.0",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-001",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1",
        "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",
        NULL
    };

    for (p = bad; *p; p++) {
        CHECK(parse(*p, &tp) == -1, *p);
    }
}


static void
test_tracestate(void)
{
    char         out[4096];
    long         n;
    char         longkey[300], member[300];
    const char  *one[1], *two[2], *three[3];

    one[0] = "foo=1,bar=2";
    n = combine(one, 1, out);
    CHECK(n == 11 && memcmp(out, "foo=1,bar=2", 11) == 0, "single list");

    /* joined lists are longer than their parts: a comma between headers */
    two[0] = "a=1";
    two[1] = "b=2";
    n = combine(two, 2, out);
    CHECK(n == 7 && memcmp(out, "a=1,b=2", 7) == 0, "comma between headers");

    three[0] = "foo=1";
    three[1] = "";
    three[2] = " bar=2 ,\t, baz=3";
    n = combine(three, 3, out);
    CHECK(n == 17 && memcmp(out, "foo=1,bar=2,baz=3", 17) == 0,
          "combined in order, empties dropped, whitespace trimmed");

    one[0] = "";
    CHECK(combine(one, 1, out) == 0, "empty list");

    /* Level 2: duplicated keys keep the list; the first of each key stays */
    two[0] = "foo=1";
    two[1] = "foo=2";
    n = combine(two, 2, out);
    CHECK(n == 5 && memcmp(out, "foo=1", 5) == 0,
          "duplicate keys across headers: the first stays");

    one[0] = "foo=1,bar=2,foo=3,baz=4,bar=5";
    n = combine(one, 1, out);
    CHECK(n == 17 && memcmp(out, "foo=1,bar=2,baz=4", 17) == 0,
          "duplicate keys: later ones dropped, order kept");

    one[0] = "FOO=1";
    CHECK(combine(one, 1, out) == -1, "uppercase key");

    one[0] = "foo.bar=1";
    CHECK(combine(one, 1, out) == -1, "dot in key");

    one[0] = "foo=bar=baz";
    CHECK(combine(one, 1, out) == -1, "equals in value");

    one[0] = "foo=";
    CHECK(combine(one, 1, out) == -1, "empty value");

    one[0] = "foo";
    CHECK(combine(one, 1, out) == -1, "no equals");

    /* Level 2 key grammar: "@" anywhere after the first character */
    one[0] = "foo@=1";
    CHECK(combine(one, 1, out) == 6, "key ending in @");

    one[0] = "foo@@bar=1";
    CHECK(combine(one, 1, out) == 10, "two @ in a row");

    one[0] = "foo@bar@baz=1";
    CHECK(combine(one, 1, out) == 13, "two @");

    one[0] = "@foo=1";
    CHECK(combine(one, 1, out) == -1, "key starting with @");

    one[0] = "1tenant@sys=1";
    CHECK(combine(one, 1, out) == 13, "tenant id may start with a digit");

    one[0] = "1simple=1";
    CHECK(combine(one, 1, out) == 9, "any key may start with a digit");

    one[0] = "_foo=1";
    CHECK(combine(one, 1, out) == -1, "key starting with _");

    one[0] = "t@0123456789abcdefghij=1";
    CHECK(combine(one, 1, out) == 24, "no length limit after @");

    {
        size_t  at;

        for (at = 1; at < 256; at += 127) {
            memset(longkey, 'k', 256);
            longkey[at] = '@';
            memcpy(longkey + 256, "=1", 3);
            one[0] = longkey;
            CHECK(combine(one, 1, out) == 258, "256-character key with @");
        }

        memset(longkey, 'k', 257);
        longkey[100] = '@';
        memcpy(longkey + 257, "=1", 3);
        CHECK(combine(one, 1, out) == -1, "257-character key with @");
    }

    one[0] = "foo=a\x7f";
    CHECK(combine(one, 1, out) == -1, "DEL in value");

    memset(longkey, 'z', 256);
    memcpy(longkey + 256, "=1", 3);
    one[0] = longkey;
    CHECK(combine(one, 1, out) == 258, "256-character key");

    memset(longkey, 'z', 257);
    memcpy(longkey + 257, "=1", 3);
    CHECK(combine(one, 1, out) == -1, "257-character key");

    {
        char  list[33 * 8];
        int   i, len = 0;

        for (i = 1; i <= 33; i++) {
            len += snprintf(list + len, sizeof(list) - len, "%sk%02d=%d",
                            i > 1 ? "," : "", i, i);
        }

        one[0] = list;
        CHECK(combine(one, 1, out) == -1, "33 members");

        list[strlen(list) - strlen(",k33=33")] = '\0';
        CHECK(combine(one, 1, out) > 0, "32 members");
    }

    /* an over-long list sheds members over 128 characters from the end */
    {
        const char  *four[4];

        memset(member, 'x', 250);
        memcpy(member, "big=", 4);
        member[250] = '\0';

        four[0] = member;               /* big=xxx..., 250 characters */
        four[1] = "a=1,b=2";
        four[2] = member + 1;           /* ig=xxx..., 249 characters */
        four[3] = member + 2;           /* g=xxx..., 248 characters */

        n = combine(four, 4, out);
        CHECK(n == 250 + 1 + 7 + 1 + 249, "shortened to the limit");
        CHECK(n > 0 && memcmp(out + 250, ",a=1,b=2,ig=", 12) == 0
              && out[n - 1] == 'x', "the last long member went first");
    }
}


/* What the spec says of one id field, a byte at a time. */

static int
reference_id(const char *hex, size_t n, unsigned char *out)
{
    size_t  i;
    int     zero = 1, hi, lo;

    for (i = 0; i < 2 * n; i++) {
        if (!((hex[i] >= '0' && hex[i] <= '9')
              || (hex[i] >= 'a' && hex[i] <= 'f')))
        {
            return -1;
        }
    }

    for (i = 0; i < n; i++) {
        hi = hex[2 * i] <= '9' ? hex[2 * i] - '0' : hex[2 * i] - 'a' + 10;
        lo = hex[2 * i + 1] <= '9' ? hex[2 * i + 1] - '0'
                                   : hex[2 * i + 1] - 'a' + 10;
        out[i] = (unsigned char) (hi << 4 | lo);
        zero &= out[i] == 0;
    }

    return zero ? -1 : 0;
}


/*
 * The ids are decoded eight digits at a time: every byte value at every
 * digit position, on random ids, must give what the byte-wise reading gives.
 */

static void
test_traceparent_every_byte(void)
{
    static const char  hex[] = "0123456789abcdef";
    obs_traceparent_t  tp;
    unsigned char      trace[16], parent[8];
    char               v[OBS_TRACEPARENT_LEN + 1];
    char               formatted[OBS_TRACEPARENT_LEN];
    unsigned           seed = 12345, pos, b, i, mismatches = 0, checked = 0;
    unsigned           formats = 0;
    int                want;

    for (pos = 3; pos < 52; pos++) {
        if (pos == 35) {
            continue;
        }

        for (b = 0; b < 256; b++) {
            memcpy(v, "00-", 3);
            for (i = 3; i < 52; i++) {
                seed = seed * 1103515245 + 12345;
                v[i] = hex[(seed >> 16) & 15];
            }
            v[35] = '-';
            memcpy(v + 52, "-01", 4);
            v[pos] = (char) b;

            if (b == 0) {               /* also all-zero ids */
                memset(pos < 35 ? v + 3 : v + 36, '0', pos < 35 ? 32 : 16);
            }

            want = reference_id(v + 3, 16, trace) == 0
                   && reference_id(v + 36, 8, parent) == 0 ? 0 : -1;

            checked++;

            if (obs_traceparent_parse(v, OBS_TRACEPARENT_LEN, &tp) != want
                || (want == 0 && (memcmp(tp.trace_id, trace, 16) != 0
                                  || memcmp(tp.parent_id, parent, 8) != 0)))
            {
                mismatches++;
            }

            /* and formatting gives back what was parsed */

            if (want == 0) {
                obs_traceparent_format(formatted, tp.trace_id, tp.parent_id,
                                       tp.flags);
                formats++;

                if (memcmp(formatted, v, OBS_TRACEPARENT_LEN) != 0) {
                    mismatches++;
                }
            }
        }
    }

    CHECK(checked == 48 * 256 && formats == 48 * 16 && mismatches == 0,
          "vector id decoding and encoding agree with the byte-wise reading");
}


int
main(void)
{
    test_traceparent_valid();
    test_traceparent_invalid();
    test_traceparent_every_byte();
    test_tracestate();

    return unit_report("tracecontext");
}
