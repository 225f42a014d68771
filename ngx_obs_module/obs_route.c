/*
 * Route templates and tenant labels.  See obs_route.h.
 */

#include <stdint.h>
#include <string.h>

#include "obs_route.h"


#define OBS_HEX_ID_MIN_LEN    16
#define OBS_TOKEN_MIN_LEN     20

#define OBS_ID_PLACEHOLDER    "{id}"

/* the byte b in each of a word's eight bytes */
#define OBS_BYTES(b)          ((uint64_t) (b) * 0x0101010101010101ULL)

#define OBS_CLASS_DIGIT       0x01
#define OBS_CLASS_HEX         0x02
#define OBS_CLASS_TOKEN       0x04
#define OBS_CLASS_TENANT      0x10      /* may appear in a tenant label */


static const char *obs_next_separator(const char *p, const char *end);
static void obs_init_classes(void);
static int obs_segment_is_id(const char *s, size_t len);
static size_t obs_copy_bounded(char *out, const char *s, size_t len,
    size_t room);
static int obs_is_uuid(const char *s, size_t len);
static int obs_is_hex(char c);
static int obs_is_digit(char c);


static unsigned char  obs_char_class[256];


/*
 * Most segments are kept as they are: the path is copied in runs between
 * the identifier segments, which are replaced by the placeholder.
 */

size_t
obs_route_normalize(const char *path, size_t len, char *out)
{
    size_t       n;
    const char  *p, *end, *sep, *kept;

    if (obs_char_class['0'] == 0) {
        obs_init_classes();
    }

    end = path + len;
    n = 0;
    kept = path;            /* the start of the run not yet copied */

    for (p = path; n < OBS_ROUTE_MAX_LEN; p = sep + 1) {
        sep = obs_next_separator(p, end);

        if (sep > p && obs_segment_is_id(p, (size_t) (sep - p))) {
            n += obs_copy_bounded(out + n, kept, (size_t) (p - kept),
                                  OBS_ROUTE_MAX_LEN - n);
            n += obs_copy_bounded(out + n, OBS_ID_PLACEHOLDER,
                                  sizeof(OBS_ID_PLACEHOLDER) - 1,
                                  OBS_ROUTE_MAX_LEN - n);
            kept = sep;
        }

        if (sep == end || *sep == '?') {
            end = sep;
            break;
        }
    }

    return n + obs_copy_bounded(out + n, kept, (size_t) (end - kept),
                                OBS_ROUTE_MAX_LEN - n);
}


/*
 * The first '/' or '?' from p on, or end.  Segments are short: eight bytes
 * a step costs less than a memchr() call or a byte loop.  A byte equal to
 * c is a zero byte of w ^ c, and (x - 0x01..) & ~x & 0x80.. marks the
 * zero bytes of x: the first mark is always right (later ones may not be,
 * which does not matter).
 */

static const char *
obs_next_separator(const char *p, const char *end)
{
    uint64_t  w, slash, query, hit;

    for ( /* void */ ; end - p >= 8; p += 8) {
        memcpy(&w, p, 8);

        slash = w ^ OBS_BYTES('/');
        query = w ^ OBS_BYTES('?');

        hit = ((slash - OBS_BYTES(1)) & ~slash)
              | ((query - OBS_BYTES(1)) & ~query);
        hit &= OBS_BYTES(0x80);

        if (hit) {
#if (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)
            return p + __builtin_clzll(hit) / 8;
#else
            return p + __builtin_ctzll(hit) / 8;
#endif
        }
    }

    for ( /* void */ ; p < end; p++) {
        if (*p == '/' || *p == '?') {
            return p;
        }
    }

    return end;
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


static size_t
obs_copy_bounded(char *out, const char *s, size_t len, size_t room)
{
    len = len < room ? len : room;
    memcpy(out, s, len);
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
