/*
 * Route templates and tenant labels.  See obs_route.h.
 */

#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "obs_route.h"


#define OBS_HEX_ID_MIN_LEN    16
#define OBS_TOKEN_MIN_LEN     20

#define OBS_ID_PLACEHOLDER    "{id}"

/* the byte b in each of a word's eight bytes */
#define OBS_BYTES(b)          ((uint64_t) (b) * 0x0101010101010101ULL)

/* the copies of a route's runs, worth inlining at each call */
#if defined(__GNUC__)
#define OBS_INLINE            inline __attribute__((always_inline))
#else
#define OBS_INLINE            inline
#endif

/*
 * A step of the route scan, and how the set of a step's separators marks a
 * byte: a bit each with SSE2, the top bit of each byte without.
 */
#if defined(__SSE2__)
#define OBS_STEP              16
#define OBS_MARK              1
#define OBS_MARK_BIT          1
#else
#define OBS_STEP              8
#define OBS_MARK              8
#define OBS_MARK_BIT          0x80
#endif

#define OBS_CLASS_DIGIT       0x01
#define OBS_CLASS_HEX         0x02
#define OBS_CLASS_TOKEN       0x04
#define OBS_CLASS_TENANT      0x10      /* may appear in a tenant label */


static uint64_t obs_separators(const char *p);
static uint64_t obs_separators_short(const char *p, size_t len);
static int obs_maybe_id(const char *s, const char *end);
static size_t obs_lowest_byte(uint64_t hits);
static OBS_INLINE size_t obs_copy_id(char *out, const char *run, size_t len,
    size_t room);
static void obs_init_classes(void);
static int obs_segment_is_id(const char *s, size_t len);
static OBS_INLINE size_t obs_copy_bounded(char *out, const char *s, size_t len,
    size_t room);
static int obs_is_uuid(const char *s, size_t len);
static int obs_is_hex(char c);
static int obs_is_digit(char c);


static unsigned char  obs_char_class[256];


/*
 * Most segments are kept as they are: the path is copied in runs between
 * the identifier segments, which are replaced by the placeholder.  The
 * path is read a step of OBS_STEP bytes at a time, each step giving the set
 * of its '/' and '?' bytes at once (obs_separators), and the segments are
 * taken from that set: a path costs a few instructions a step and a few
 * per segment.
 */

size_t
obs_route_normalize(const char *path, size_t len, char *out)
{
    size_t       n, skip;
    uint64_t     hits;
    const char  *p, *end, *base, *seg, *sep, *kept;

    if (obs_char_class['0'] == 0) {
        obs_init_classes();
    }

    end = path + len;
    n = 0;
    kept = path;            /* the start of the run not yet copied */
    seg = path;             /* the start of the segment being read */

    for (p = path; p < end; p += OBS_STEP) {

        if (end - p >= OBS_STEP) {
            base = p;
            hits = obs_separators(base);

        } else if (len >= OBS_STEP) {

            /* the last bytes: the path's last step, less what was read */

            base = end - OBS_STEP;
            skip = (size_t) (p - base);
            hits = obs_separators(base) & (~(uint64_t) 0 << (skip * OBS_MARK));

        } else {
            base = p;
            hits = obs_separators_short(p, (size_t) (end - p));
        }

        while (hits) {
            sep = base + obs_lowest_byte(hits);
            hits &= hits - 1;

            if (obs_maybe_id(seg, sep)
                && obs_segment_is_id(seg, (size_t) (sep - seg)))
            {
                n += obs_copy_id(out + n, kept, (size_t) (seg - kept),
                                 OBS_ROUTE_MAX_LEN - n);
                kept = sep;

                if (n >= OBS_ROUTE_MAX_LEN) {
                    return n;
                }
            }

            if (*sep == '?') {
                end = sep;
                goto done;
            }

            seg = sep + 1;
        }
    }

    /* the last segment */

    if (obs_maybe_id(seg, end)
        && obs_segment_is_id(seg, (size_t) (end - seg)))
    {
        n += obs_copy_id(out + n, kept, (size_t) (seg - kept),
                         OBS_ROUTE_MAX_LEN - n);
        kept = end;
    }

done:

    return n + obs_copy_bounded(out + n, kept, (size_t) (end - kept),
                                OBS_ROUTE_MAX_LEN - n);
}


#if defined(__SSE2__)

/* The '/' and '?' bytes of sixteen path bytes: bit k for the path's byte k. */

static uint64_t
obs_separators(const char *p)
{
    __m128i  x;

    x = _mm_loadu_si128((const __m128i *) p);

    return (uint64_t) _mm_movemask_epi8(
                          _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('/')),
                                       _mm_cmpeq_epi8(x, _mm_set1_epi8('?'))));
}

#else

/*
 * The '/' and '?' bytes of eight path bytes, as the top bit of each such
 * byte (bit 8k + 7 for the path's byte k).  A byte equal to c is a zero
 * byte of w ^ c; for a byte x, ((x & 0x7f) + 0x7f) | x has its top bit
 * clear exactly when x is zero (no carry leaves a byte), so every mark is
 * right.
 */

static uint64_t
obs_separators(const char *p)
{
    uint64_t  w, slash, query;

    memcpy(&w, p, 8);

#if (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)
    w = __builtin_bswap64(w);
#endif

    slash = w ^ OBS_BYTES('/');
    query = w ^ OBS_BYTES('?');

    slash = ((slash & OBS_BYTES(0x7f)) + OBS_BYTES(0x7f)) | slash;
    query = ((query & OBS_BYTES(0x7f)) + OBS_BYTES(0x7f)) | query;

    return ~(slash & query) & OBS_BYTES(0x80);
}

#endif


/* The same for a path shorter than a step. */

static uint64_t
obs_separators_short(const char *p, size_t len)
{
    size_t    i;
    uint64_t  hits;

    hits = 0;

    for (i = 0; i < len; i++) {
        if (p[i] == '/' || p[i] == '?') {
            hits |= (uint64_t) OBS_MARK_BIT << (i * OBS_MARK);
        }
    }

    return hits;
}


/*
 * Whether the segment from s to end can be an identifier: a segment too
 * short for hex or a token is one only if all digits, so most give up at
 * their first byte here, without a call.
 */

static int
obs_maybe_id(const char *s, const char *end)
{
    return end > s
           && ((size_t) (end - s) >= OBS_HEX_ID_MIN_LEN || obs_is_digit(*s));
}


/* The byte offset of the lowest mark. */

static size_t
obs_lowest_byte(uint64_t hits)
{
    return (size_t) __builtin_ctzll(hits) / OBS_MARK;
}


/* Writes the run before an identifier segment, then the placeholder. */

static OBS_INLINE size_t
obs_copy_id(char *out, const char *run, size_t len, size_t room)
{
    size_t  n;

    n = obs_copy_bounded(out, run, len, room);

    return n + obs_copy_bounded(out + n, OBS_ID_PLACEHOLDER,
                                sizeof(OBS_ID_PLACEHOLDER) - 1, room - n);
}


const char *
obs_tenant_label(const char *value, size_t len, size_t *out_len)
{
    size_t  i;

    if (len == 0) {
        *out_len = sizeof(OBS_TENANT_NONE) - 1;
        return OBS_TENANT_NONE;
    }

    if (len > OBS_TENANT_MAX_LEN) {
        goto invalid;
    }

    if (obs_char_class['0'] == 0) {
        obs_init_classes();
    }

    for (i = 0; i < len; i++) {
        if (!(obs_char_class[(unsigned char) value[i]] & OBS_CLASS_TENANT)) {
            goto invalid;
        }
    }

    /* the labels the module and the sidecar give never come from a client */

    if (tenant_reserved(value, len)) {
        goto invalid;
    }

    *out_len = len;
    return value;

invalid:

    *out_len = sizeof(OBS_TENANT_INVALID) - 1;
    return OBS_TENANT_INVALID;
}


/*
 * An identifier segment is all digits, a UUID, at least 16 hex digits, or a
 * token of at least 20 URL-safe characters that mixes letters and digits
 * (opaque keys, base64url ids).  A shorter segment can only be all digits,
 * and most segments give up at their first character.
 */

static int
obs_segment_is_id(const char *s, size_t len)
{
    size_t         i;
    unsigned char  all, any;

    if (len == 0) {
        return 0;
    }

    if (len < OBS_HEX_ID_MIN_LEN) {
        for (i = 0; i < len; i++) {
            if (!obs_is_digit(s[i])) {
                return 0;
            }
        }

        return 1;
    }

    all = OBS_CLASS_DIGIT | OBS_CLASS_HEX | OBS_CLASS_TOKEN;
    any = 0;

    for (i = 0; i < len; i++) {
        all &= obs_char_class[(unsigned char) s[i]];
        any |= obs_char_class[(unsigned char) s[i]];
    }

    if (all & (OBS_CLASS_DIGIT | OBS_CLASS_HEX)) {
        return 1;
    }

    if ((all & OBS_CLASS_TOKEN) && len >= OBS_TOKEN_MIN_LEN
        && (any & OBS_CLASS_DIGIT))
    {
        return 1;
    }

    return obs_is_uuid(s, len);
}


/*
 * Copies at most room bytes.  Runs of a route are short: up to sixteen
 * bytes are moved in two overlapping words, or halves of one, rather than
 * through a call to memcpy().
 */

static OBS_INLINE size_t
obs_copy_bounded(char *out, const char *s, size_t len, size_t room)
{
    uint32_t  h0, h1;
    uint64_t  w0, w1;

    len = len < room ? len : room;

    if (len > 16) {
        memcpy(out, s, len);

    } else if (len >= 8) {
        memcpy(&w0, s, 8);
        memcpy(&w1, s + len - 8, 8);
        memcpy(out, &w0, 8);
        memcpy(out + len - 8, &w1, 8);

    } else if (len >= 4) {
        memcpy(&h0, s, 4);
        memcpy(&h1, s + len - 4, 4);
        memcpy(out, &h0, 4);
        memcpy(out + len - 4, &h1, 4);

    } else if (len) {
        out[0] = s[0];
        out[len / 2] = s[len / 2];
        out[len - 1] = s[len - 1];
    }

    return len;
}


static void
obs_init_classes(void)
{
    int  c;

    for (c = 0; c < 256; c++) {
        if (obs_is_digit((char) c)) {
            obs_char_class[c] |= OBS_CLASS_DIGIT;
        }

        if (obs_is_hex((char) c)) {
            obs_char_class[c] |= OBS_CLASS_HEX;
        }

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || obs_is_digit((char) c) || c == '-' || c == '_')
        {
            obs_char_class[c] |= OBS_CLASS_TOKEN;
        }
    }

    for (c = 0; c < 256; c++) {
        if ((obs_char_class[c] & OBS_CLASS_TOKEN) || c == '.' || c == ':') {
            obs_char_class[c] |= OBS_CLASS_TENANT;
        }
    }

}


static int
obs_is_uuid(const char *s, size_t len)
{
    size_t  i;

    if (len != 36) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return 0;
            }

        } else if (!obs_is_hex(s[i])) {
            return 0;
        }
    }

    return 1;
}


static int
obs_is_hex(char c)
{
    return obs_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}


static int
obs_is_digit(char c)
{
    return c >= '0' && c <= '9';
}
