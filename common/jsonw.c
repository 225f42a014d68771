/* The JSON writer.  See jsonw.h. */

#include <stdint.h>
#include <string.h>

#include "hex.h"
#include "jsonw.h"
#include "text.h"

/* 0: copied as it is; 1: escaped (quote, backslash, control); 2: UTF-8 */
static const uint8_t  json_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2
};

static char *jsonw_escape(char *o, uint8_t c);

/* Whether 8 bytes are all of class 0: none below 0x20 (a borrow in
   w - 0x20...), at or above 0x80, a quote or a backslash (a zero byte in
   w ^ the character repeated). */
static inline int
jsonw_plain8(const uint8_t *p)
{
    const uint64_t  ones = 0x0101010101010101ULL, highs = ones * 0x80;
    uint64_t        w, q, s;

    memcpy(&w, p, 8);
    q = w ^ (ones * '"');
    s = w ^ (ones * '\\');

    return ((((w - ones * 0x20) & ~w) | w | ((q - ones) & ~q)
             | ((s - ones) & ~s)) & highs) == 0;
}

void
jsonw_text(buf_t *b, const uint8_t *raw, size_t len, size_t max)
{
    size_t  i = 0, n = 0, run, end, seq;
    char   *o;

    /* at most max sanitised bytes (3 per raw byte), each escaped to at
       most 6 (\u00XX) */
    if (buf_reserve(b, 6 * (len < max / 3 ? 3 * len : max) + 2) != 0) {
        return;
    }

    o = b->data + b->len;
    *o++ = '"';

    while (i < len && n < max) {
        end = len - i < max - n ? len : i + (max - n);
        for (run = i; run + 8 <= end && jsonw_plain8(raw + run); run += 8) {
            /* plain ASCII, 8 bytes at a time */
        }
        for ( ; run < end && json_class[raw[run]] == 0; run++) {
            /* a run of plain ASCII */
        }
        if (run > i) {
            memcpy(o, raw + i, run - i);
            o += run - i;
            n += run - i;
            i = run;
            continue;
        }

        if (json_class[raw[i]] == 1) {
            if (raw[i] == 0) {
                seq = 0;            /* NUL: replaced, as text_utf8 does */
            } else {
                o = jsonw_escape(o, raw[i]);
                n++;
                i++;
                continue;
            }
        } else {
            seq = text_utf8_sequence(raw + i, len - i);
        }

        if (seq == 0) {
            if (n + 3 > max) {
                break;
            }
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3;
            n += 3;
            i++;
            continue;
        }

        if (n + seq > max) {
            break;
        }
        memcpy(o, raw + i, seq);
        o += seq;
        n += seq;
        i += seq;
    }

    *o++ = '"';
    b->len = (size_t) (o - b->data);
}

void
jsonw_string(buf_t *b, const char *text, size_t len)
{
    jsonw_text(b, (const uint8_t *) text, len, len);
}

void
jsonw_u64(buf_t *b, uint64_t v)
{
    char  digits[20], *p = digits + sizeof(digits);

    do {
        *--p = (char) ('0' + v % 10);
        v /= 10;
    } while (v);

    jsonw_raw(b, p, (size_t) (digits + sizeof(digits) - p));
}

void
jsonw_count(buf_t *b, uint64_t v)
{
    jsonw_u64(b, v > INT64_MAX ? INT64_MAX : v);
}

void
jsonw_millis(buf_t *b, uint64_t us)
{
    char      frac[4];
    unsigned  f = (unsigned) (us % 1000);
    size_t    n = 3;

    jsonw_u64(b, us / 1000);

    frac[0] = '.';
    frac[1] = (char) ('0' + f / 100);
    frac[2] = (char) ('0' + f / 10 % 10);
    frac[3] = (char) ('0' + f % 10);
    while (n > 1 && frac[n] == '0') {
        n--;                /* 1.500 -> 1.5, 1.000 -> 1.0 */
    }
    jsonw_raw(b, frac, n + 1);
}

void
jsonw_hex(buf_t *b, const uint8_t *bytes, size_t n)
{
    if (buf_reserve(b, 2 * n + 3) != 0) {
        return;
    }

    b->data[b->len] = '"';
    text_hex(b->data + b->len + 1, bytes, n);
    b->data[b->len + 1 + 2 * n] = '"';
    b->len += 2 * n + 2;
}

static char *
jsonw_escape(char *o, uint8_t c)
{
    *o++ = '\\';

    switch (c) {
    case '"':  *o++ = '"'; break;
    case '\\': *o++ = '\\'; break;
    case '\b': *o++ = 'b'; break;
    case '\f': *o++ = 'f'; break;
    case '\n': *o++ = 'n'; break;
    case '\r': *o++ = 'r'; break;
    case '\t': *o++ = 't'; break;
    default:
        memcpy(o, "u00", 3);
        hex_encode(o + 3, &c, 1);
        o += 5;
    }

    return o;
}
