/*
 * W3C Trace Context parsing.  See obs_tracecontext.h.
 */

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "obs_tracecontext.h"


typedef struct {
    const char  *key;
    size_t       key_len;
    const char  *member;
    size_t       member_len;
} obs_member_t;


static int obs_hex_decode(const char *in, uint8_t *out, size_t n);
static int obs_hex_decode_id(const char *in, uint8_t *out, size_t n);
static int obs_is_ows(char c);
static int obs_is_key_char(char c);
static int obs_key_valid(const char *key, size_t len);
static int obs_value_valid(const char *value, size_t len);
static int obs_split_members(const obs_slice_t *values, size_t nvalues,
    obs_member_t *members, size_t *count);
static size_t obs_drop_duplicates(obs_member_t *members, size_t count);
static size_t obs_shorten(obs_member_t *members, size_t count);


/* the two lowercase hex digits of every byte value, built on first use */

/* value of a lowercase hex digit, -1 for any other byte */
static const signed char  obs_hex_values[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
     0,  1,  2,  3,  4,  5,  6,  7,  8,  9, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, 10, 11, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1
};


int
obs_traceparent_parse(const char *value, size_t len, obs_traceparent_t *tp)
{
    uint8_t  version;

    while (len && obs_is_ows(value[0])) {
        value++;
        len--;
    }

    while (len && obs_is_ows(value[len - 1])) {
        len--;
    }

    if (len < OBS_TRACEPARENT_LEN
        || value[2] != '-' || value[35] != '-' || value[52] != '-')
    {
        return -1;
    }

    if (obs_hex_decode(value, &version, 1) != 0 || version == 0xff) {
        return -1;
    }

    /* version 00 has exactly four fields; later ones may append more */

    if (len > OBS_TRACEPARENT_LEN && (version == 0 || value[55] != '-')) {
        return -1;
    }

    if (obs_hex_decode(value + 53, &tp->flags, 1) != 0) {
        return -1;
    }

    if (obs_hex_decode_id(value + 3, tp->trace_id, OBS_TRACE_ID_LEN) != 0
        || obs_hex_decode_id(value + 36, tp->parent_id, OBS_SPAN_ID_LEN) != 0)
    {
        return -1;
    }

    return 0;
}


void
obs_traceparent_format(char *out, const uint8_t *trace_id,
    const uint8_t *span_id, uint8_t flags)
{
    out[0] = '0';
    out[1] = '0';
    out[2] = '-';
    hex_encode(out + 3, trace_id, OBS_TRACE_ID_LEN);
    out[35] = '-';
    hex_encode(out + 36, span_id, OBS_SPAN_ID_LEN);
    out[52] = '-';
    hex_encode(out + 53, &flags, 1);
}


long
obs_tracestate_combine(const obs_slice_t *values, size_t nvalues, char *out)
{
    size_t        count, i;
    char         *p;
    obs_member_t  members[OBS_TRACESTATE_MAX_MEMBERS];

    if (obs_split_members(values, nvalues, members, &count) != 0) {
        return -1;
    }

    count = obs_drop_duplicates(members, count);
    count = obs_shorten(members, count);

    p = out;

    for (i = 0; i < count; i++) {
        if (members[i].member_len == 0) {
            continue;
        }

        if (p != out) {
            *p++ = ',';
        }

        memcpy(p, members[i].member, members[i].member_len);
        p += members[i].member_len;
    }

    return (long) (p - out);
}


int
obs_is_zero(const uint8_t *bytes, size_t n)
{
    uint64_t  word, acc;

    acc = 0;

    for ( /* void */ ; n >= 8; n -= 8, bytes += 8) {
        memcpy(&word, bytes, 8);
        acc |= word;
    }

    while (n--) {
        acc |= bytes[n];
    }

    return acc == 0;
}




/*
 * Decodes an id of n bytes (a multiple of 8) from 2n lowercase hex digits;
 * -1 when a digit is invalid or the id is all zeros.  With SSE2 sixteen
 * digits are checked and decoded at once: a traceparent is parsed on every
 * request.
 */

#if defined(__SSE2__)

static int
obs_hex_decode_id(const char *in, uint8_t *out, size_t n)
{
    int      zeros;
    size_t   i;
    __m128i  x, digit, letter, v, pairs;

    zeros = 0xffff;

    for (i = 0; i < n; i += 8, in += 16) {
        x = _mm_loadu_si128((const __m128i *) in);

        /* bytes >= 0x80 are negative and fall outside both ranges */

        digit = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('0' - 1)),
                              _mm_cmplt_epi8(x, _mm_set1_epi8('9' + 1)));
        letter = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('a' - 1)),
                               _mm_cmplt_epi8(x, _mm_set1_epi8('f' + 1)));

        if (_mm_movemask_epi8(_mm_or_si128(digit, letter)) != 0xffff) {
            return -1;
        }

        v = _mm_sub_epi8(x, _mm_or_si128(
                              _mm_and_si128(digit, _mm_set1_epi8('0')),
                              _mm_and_si128(letter, _mm_set1_epi8('a' - 10))));

        /* each 16-bit lane holds two digits, the first in its low byte */

        pairs = _mm_or_si128(
                    _mm_slli_epi16(_mm_and_si128(v, _mm_set1_epi16(0x00ff)), 4),
                    _mm_srli_epi16(v, 8));
        pairs = _mm_packus_epi16(pairs, pairs);

        zeros &= _mm_movemask_epi8(_mm_cmpeq_epi8(pairs, _mm_setzero_si128()));
        _mm_storel_epi64((__m128i *) (out + i), pairs);
    }

    return zeros == 0xffff ? -1 : 0;
}

#else

static int
obs_hex_decode_id(const char *in, uint8_t *out, size_t n)
{
    if (obs_hex_decode(in, out, n) != 0 || obs_is_zero(out, n)) {
        return -1;
    }

    return 0;
}

#endif


/* Only lowercase hex is valid in trace context. */

static int
obs_hex_decode(const char *in, uint8_t *out, size_t n)
{
    size_t  i;
    int     hi, lo;

    for (i = 0; i < n; i++) {
        hi = obs_hex_values[(unsigned char) in[2 * i]];
        lo = obs_hex_values[(unsigned char) in[2 * i + 1]];

        if ((hi | lo) < 0) {
            return -1;
        }

        out[i] = (uint8_t) (hi << 4 | lo);
    }

    return 0;
}


static int
obs_is_ows(char c)
{
    return c == ' ' || c == '\t';
}


static int
obs_is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
           || c == '_' || c == '-' || c == '*' || c == '/' || c == '@';
}


/*
 * Trace Context Level 2:
 * key = ( lcalpha / DIGIT ) 0*255 ( keychar )
 * keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
 * ("@" anywhere after the first character, any number of times).
 */

static int
obs_key_valid(const char *key, size_t len)
{
    size_t  i;

    if (len == 0 || len > 256
        || !((key[0] >= 'a' && key[0] <= 'z')
             || (key[0] >= '0' && key[0] <= '9')))
    {
        return 0;
    }

    for (i = 1; i < len; i++) {
        if (!obs_is_key_char(key[i])) {
            return 0;
        }
    }

    return 1;
}


/* value = 0*255(chr) nblk-chr; chr = %x20 / nblk-chr */

static int
obs_value_valid(const char *value, size_t len)
{
    size_t         i;
    unsigned char  c;

    if (len == 0 || len > 256 || value[len - 1] == ' ') {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = (unsigned char) value[i];

        if (c < 0x20 || c > 0x7e || c == ',' || c == '=') {
            return 0;
        }
    }

    return 1;
}


static int
obs_split_members(const obs_slice_t *values, size_t nvalues,
    obs_member_t *members, size_t *count)
{
    size_t       n, v;
    const char  *p, *end, *start, *stop, *eq;

    n = 0;

    for (v = 0; v < nvalues; v++) {
        p = values[v].data;
        end = p + values[v].len;

        while (p <= end) {
            start = p;
            stop = memchr(p, ',', (size_t) (end - p));

            if (stop == NULL) {
                stop = end;
            }

            p = stop + 1;

            while (start < stop && obs_is_ows(*start)) {
                start++;
            }

            while (stop > start && obs_is_ows(stop[-1])) {
                stop--;
            }

            if (start == stop) {
                continue;
            }

            if (n == OBS_TRACESTATE_MAX_MEMBERS) {
                return -1;
            }

            eq = memchr(start, '=', (size_t) (stop - start));

            if (eq == NULL
                || !obs_key_valid(start, (size_t) (eq - start))
                || !obs_value_valid(eq + 1, (size_t) (stop - eq - 1)))
            {
                return -1;
            }

            members[n].key = start;
            members[n].key_len = (size_t) (eq - start);
            members[n].member = start;
            members[n].member_len = (size_t) (stop - start);
            n++;
        }
    }

    *count = n;

    return 0;
}


/*
 * Level 2: a duplicated key does not invalidate the list, and a vendor may
 * discard duplicates it did not generate.  The first (leftmost, most
 * recent) member of each key is kept, the later ones are dropped; returns
 * how many members remain, in their order.
 */

static size_t
obs_drop_duplicates(obs_member_t *members, size_t count)
{
    size_t  i, j, n;

    n = 0;

    for (i = 0; i < count; i++) {
        for (j = 0; j < n; j++) {
            if (members[j].key_len == members[i].key_len
                && memcmp(members[j].key, members[i].key,
                          members[i].key_len) == 0)
            {
                break;
            }
        }

        if (j == n) {
            members[n++] = members[i];
        }
    }

    return n;
}


/*
 * Keeps the list within OBS_TRACESTATE_MAX_LEN: members longer than
 * OBS_TRACESTATE_LONG_MEMBER go first, then members from the end, as the
 * spec recommends.  Returns how many leading members remain; removed long
 * members get member_len 0.
 */

static size_t
obs_shorten(obs_member_t *members, size_t count)
{
    size_t  total, i;

    total = 0;

    for (i = 0; i < count; i++) {
        total += members[i].member_len + (i ? 1 : 0);
    }

    for (i = count; i > 0 && total > OBS_TRACESTATE_MAX_LEN; i--) {
        if (members[i - 1].member_len > OBS_TRACESTATE_LONG_MEMBER) {
            total -= members[i - 1].member_len + 1;
            members[i - 1].member_len = 0;
        }
    }

    while (count > 0 && total > OBS_TRACESTATE_MAX_LEN) {
        count--;

        if (members[count].member_len) {
            total -= members[count].member_len + 1;
        }
    }

    return count;
}
