/* Growable byte buffer.  See buf.h. */

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "text.h"

int
buf_reserve(buf_t *b, size_t extra)
{
    size_t  cap;
    char   *p;

    if (b->failed) {
        return -1;
    }

    if (b->len + extra <= b->cap) {
        return 0;
    }

    if (b->drain && b->len) {
        if (b->drain(b, b->drain_data) != 0) {
            b->failed = 1;
            return -1;
        }

        b->len = 0;
        if (extra <= b->cap) {
            return 0;
        }
    }

    cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) {
        cap *= 2;
    }

    p = realloc(b->data, cap);
    if (p == NULL) {
        b->failed = 1;
        return -1;
    }

    b->data = p;
    b->cap = cap;
    return 0;
}

int
buf_drain(buf_t *b, size_t cap, buf_drain_pt drain, void *data)
{
    if (buf_reserve(b, cap) != 0) {
        return -1;
    }

    b->drain = drain;
    b->drain_data = data;
    return 0;
}

void
buf_append(buf_t *b, const void *data, size_t len)
{
    if (len == 0 || buf_reserve(b, len) != 0) {
        return;
    }

    memcpy(b->data + b->len, data, len);
    b->len += len;
}

void
buf_puts(buf_t *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void
buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list  ap;
    int      n;

    if (buf_reserve(b, 64) != 0) {
        return;
    }

    va_start(ap, fmt);
    n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);

    if (n < 0) {
        b->failed = 1;
        return;
    }

    if ((size_t) n >= b->cap - b->len) {
        if (buf_reserve(b, (size_t) n + 1) != 0) {
            return;
        }

        va_start(ap, fmt);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }

    b->len += (size_t) n;
}

/*
 * Most values a scrape prints are durations the module measured in whole
 * microseconds (bucket sums, exemplar values), so the shortest text that
 * reads back is the decimal of n / 10^6: a double within half an ulp of a
 * number of at most 15 significant digits rounds to that number at %.15g,
 * where buf_double's search starts, and %g writes it without an exponent
 * from 1e-4 on.  Below 1e9 one microsecond is more than an ulp, so n is the
 * only candidate.  Writes it and returns 1, or returns 0 when v is not such
 * a value.
 */
static int
buf_micros(buf_t *b, double v)
{
    char                tmp[32], *p;
    double              a = fabs(v);
    unsigned long long  n;
    size_t              place, frac;

    if (!(a >= 1e-4 && a < 1e9)) {
        return 0;
    }

    n = (unsigned long long) llround(a * 1e6);
    if ((double) n / 1e6 != a) {
        return 0;
    }

    p = tmp;
    if (v < 0) {
        *p++ = '-';
    }

    p += text_u64(p, n / 1000000);
    frac = (size_t) (n % 1000000);      /* not 0: integers are printed above */
    *p++ = '.';
    for (place = 100000; place && frac; place /= 10) {
        *p++ = (char) ('0' + frac / place);
        frac %= place;
    }

    buf_put(b, tmp, (size_t) (p - tmp));
    return 1;
}

void
buf_double(buf_t *b, double v)
{
    char  tmp[32];
    int   precision;

    if (isnan(v)) {
        buf_puts(b, "NaN");
        return;
    }

    if (isinf(v)) {
        buf_puts(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }

    /* range first: converting a larger double to long long is undefined */
    if (fabs(v) < 1e15 && v == (double) (long long) v) {
        if (v < 0) {
            buf_append(b, "-", 1);
            v = -v;
        }
        buf_u64(b, (unsigned long long) v);
        return;
    }

    if (buf_micros(b, v)) {
        return;
    }

    /*
     * The shortest representation that parses back to the same double.  It
     * has at most 17 digits, and a normal double's shortest of up to
     * DBL_DIG (15) digits reads back as itself from %.15g, which drops the
     * trailing zeros: the same text, in the same notation (%g would write
     * an exponent at 15 digits where the shortest does not only for an
     * integer, printed above, or past 1e15, where both do).  So only 16
     * and 17 are left to try.  Subnormals, with fewer digits of their own,
     * try every precision.  Trying every one for all doubles made float
     * formatting ~40% of a text scrape.
     */
    precision = fabs(v) >= DBL_MIN ? DBL_DIG : 1;
    for ( ; precision <= 17; precision++) {
        snprintf(tmp, sizeof(tmp), "%.*g", precision, v);
        if (strtod(tmp, NULL) == v) {
            break;
        }
    }

    buf_puts(b, tmp);
}

/* Integers where the rounding is not near a tie: printf was a third of an
   OpenMetrics scrape (exemplar timestamps). */
void
buf_millis(buf_t *b, double seconds)
{
    char                tmp[32], *p = tmp;
    double              ms = seconds * 1e3, whole;
    unsigned long long  n;

    whole = floor(ms);
    /* below 4e9 s, ms is within 5e-4 of the exact product */
    if (!(seconds >= 0 && seconds < 4e9) || fabs(ms - whole - 0.5) < 1e-3) {
        buf_printf(b, "%.3f", seconds);
        return;
    }

    n = (unsigned long long) llround(ms);
    p += text_u64(p, n / 1000);
    *p++ = '.';
    *p++ = (char) ('0' + n / 100 % 10);
    *p++ = (char) ('0' + n / 10 % 10);
    *p++ = (char) ('0' + n % 10);
    buf_put(b, tmp, (size_t) (p - tmp));
}

void
buf_u64(buf_t *b, unsigned long long v)
{
    char  tmp[24];

    buf_put(b, tmp, text_u64(tmp, v));
}

void
buf_reset(buf_t *b)
{
    b->len = 0;
    b->failed = 0;
}

void
buf_free(buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->drain = NULL;
}
