/*
 * W3C Trace Context parsing.  See obs_tracecontext.h.
 */

#include <string.h>

#include "obs_tracecontext.h"


typedef struct {
    const char  *key;
    size_t       key_len;
    const char  *member;
    size_t       member_len;
} obs_member_t;


typedef struct {
    uint64_t  word;
    int       invalid;
} obs_hex_word_t;


static int obs_hex_decode(const char *in, uint8_t *out, size_t n);
static obs_hex_word_t obs_hex_decode_word(const char *in);
static int obs_hex_decode_half(const char *in, uint32_t *out);
static void obs_init_hex_pairs(void);
static int obs_is_ows(char c);
static int obs_is_key_char(char c);
static int obs_key_valid(const char *key, size_t len);
static int obs_value_valid(const char *value, size_t len);
static int obs_split_members(const obs_span_t *values, size_t nvalues,
    obs_member_t *members, size_t *count);
static size_t obs_shorten(obs_member_t *members, size_t count);


/* the two lowercase hex digits of every byte value, built on first use */
static char  obs_hex_pairs[256][2];

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
    uint8_t          version;
    obs_hex_word_t   trace_hi, trace_lo, parent;

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

#if !(defined __BYTE_ORDER__ && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)

    if (obs_hex_decode(value + 3, tp->trace_id, OBS_TRACE_ID_LEN) != 0
        || obs_hex_decode(value + 36, tp->parent_id, OBS_SPAN_ID_LEN) != 0
        || obs_is_zero(tp->trace_id, OBS_TRACE_ID_LEN)
        || obs_is_zero(tp->parent_id, OBS_SPAN_ID_LEN))
    {
        return -1;
    }

    return 0;

#else

    /* each id is valid hex and not all zeros */

    trace_hi = obs_hex_decode_word(value + 3);
    trace_lo = obs_hex_decode_word(value + 19);
    parent = obs_hex_decode_word(value + 36);

    if (trace_hi.invalid || trace_lo.invalid || parent.invalid
        || (trace_hi.word | trace_lo.word) == 0 || parent.word == 0)
    {
        return -1;
    }

    memcpy(tp->trace_id, &trace_hi.word, 8);
    memcpy(tp->trace_id + 8, &trace_lo.word, 8);
    memcpy(tp->parent_id, &parent.word, 8);

    return 0;

#endif
}


void
obs_traceparent_format(char *out, const uint8_t *trace_id,
    const uint8_t *span_id, uint8_t flags)
{
    out[0] = '0';
    out[1] = '0';
    out[2] = '-';
    obs_hex_encode(out + 3, trace_id, OBS_TRACE_ID_LEN);
    out[35] = '-';
    obs_hex_encode(out + 36, span_id, OBS_SPAN_ID_LEN);
    out[52] = '-';
    obs_hex_encode(out + 53, &flags, 1);
}


long
obs_tracestate_combine(const obs_span_t *values, size_t nvalues, char *out)
{
    size_t        count, i, j;
    char         *p;
    obs_member_t  members[OBS_TRACESTATE_MAX_MEMBERS];

    if (obs_split_members(values, nvalues, members, &count) != 0) {
        return -1;
    }

    for (i = 0; i < count; i++) {
        for (j = i + 1; j < count; j++) {
            if (members[i].key_len == members[j].key_len
                && memcmp(members[i].key, members[j].key,
                          members[i].key_len) == 0)
            {
                return -1;
            }
        }
    }

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


void
obs_hex_encode(char *out, const uint8_t *bytes, size_t n)
{
    size_t  i;

    if (obs_hex_pairs[0][0] == 0) {
        obs_init_hex_pairs();
    }

    for (i = 0; i < n; i++) {
        memcpy(out, obs_hex_pairs[bytes[i]], 2);
        out += 2;
    }
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


static void
obs_init_hex_pairs(void)
{
    static const char  digits[] = "0123456789abcdef";
    int                b;

    for (b = 255; b >= 0; b--) {
        obs_hex_pairs[b][0] = digits[b >> 4];
        obs_hex_pairs[b][1] = digits[b & 0x0f];
    }
}


/*
 * Decodes 16 lowercase hex digits into 8 bytes (in memory order), eight
 * digits at a time within a 64-bit word: a traceparent is parsed on every
 * request, and this is a third of the per-digit table lookups' cost.
 */

static obs_hex_word_t
obs_hex_decode_word(const char *in)
{
    obs_hex_word_t  r;
    uint32_t        hi, lo;

    r.invalid = obs_hex_decode_half(in, &hi) | obs_hex_decode_half(in + 8, &lo);
    r.word = (uint64_t) lo << 32 | hi;

    return r;
}


/*
 * Eight digits to four bytes.  Byte b is in [lo, hi] when b + (0x80 - lo)
 * has its top bit set and b + (0x7f - hi) has not; no byte carries into
 * the next because every byte is below 0x80 (checked first).
 */

#define OBS_ONES        0x0101010101010101ULL
#define OBS_TOPS        0x8080808080808080ULL

static int
obs_hex_decode_half(const char *in, uint32_t *out)
{
    uint64_t  x, digit, letter, nibbles, v;

    memcpy(&x, in, 8);

    if (x & OBS_TOPS) {
        return 1;
    }

    digit = (x + (0x80 - '0') * OBS_ONES) & ~(x + (0x7f - '9') * OBS_ONES);
    letter = (x + (0x80 - 'a') * OBS_ONES) & ~(x + (0x7f - 'f') * OBS_ONES);

    if (((digit | letter) & OBS_TOPS) != OBS_TOPS) {
        return 1;
    }

    /* a digit's value is its low nibble, a letter's its low nibble + 9 */

    nibbles = (x & 0x0f * OBS_ONES) + ((letter & OBS_TOPS) >> 7) * 9;

    /* each 16-bit lane holds two digits, the first in its low byte */

    v = ((nibbles << 4) & 0x00f000f000f000f0ULL)
        | ((nibbles >> 8) & 0x000f000f000f000fULL);
    v = (v | v >> 8) & 0x0000ffff0000ffffULL;
    v = (v | v >> 16) & 0x00000000ffffffffULL;

    *out = (uint32_t) v;

    return 0;
}


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
           || c == '_' || c == '-' || c == '*' || c == '/';
}


/*
 * key = simple-key / multi-tenant-key
 * simple-key = lcalpha 0*255(keychar)
 * multi-tenant-key = tenant-id "@" system-id
 * tenant-id = (lcalpha / DIGIT) 0*240(keychar)
 * system-id = lcalpha 0*13(keychar)
 */

static int
obs_key_valid(const char *key, size_t len)
{
    size_t       i;
    const char  *at;

    if (len == 0) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (key[i] != '@' && !obs_is_key_char(key[i])) {
            return 0;
        }
    }

    at = memchr(key, '@', len);

    if (at == NULL) {
        return len <= 256 && key[0] >= 'a' && key[0] <= 'z';
    }

    if (memchr(at + 1, '@', len - (size_t) (at - key) - 1) != NULL) {
        return 0;
    }

    i = (size_t) (at - key);            /* tenant-id length */
    len -= i + 1;                       /* system-id length */

    return i >= 1 && i <= 241 && len >= 1 && len <= 14
           && ((key[0] >= 'a' && key[0] <= 'z')
               || (key[0] >= '0' && key[0] <= '9'))
           && at[1] >= 'a' && at[1] <= 'z';
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
obs_split_members(const obs_span_t *values, size_t nvalues,
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
