/*
 * Route templates and tenant labels.  See obs_route.h.
 */

#include <string.h>

#include "obs_route.h"


#define OBS_HEX_ID_MIN_LEN    16
#define OBS_TOKEN_MIN_LEN     20

#define OBS_ID_PLACEHOLDER    "{id}"


static int obs_segment_is_id(const char *s, size_t len);
static int obs_is_uuid(const char *s, size_t len);
static int obs_is_hex(char c);
static int obs_is_digit(char c);


size_t
obs_route_normalize(const char *path, size_t len, char *out)
{
    size_t       n, seg_len, copy;
    const char  *p, *end, *seg, *q;

    q = memchr(path, '?', len);
    end = q ? q : path + len;

    n = 0;
    p = path;

    while (p < end && n < OBS_ROUTE_MAX_LEN) {
        if (*p == '/') {
            out[n++] = '/';
            p++;
            continue;
        }

        seg = p;

        while (p < end && *p != '/') {
            p++;
        }

        seg_len = (size_t) (p - seg);

        if (obs_segment_is_id(seg, seg_len)) {
            seg = OBS_ID_PLACEHOLDER;
            seg_len = sizeof(OBS_ID_PLACEHOLDER) - 1;
        }

        copy = seg_len < OBS_ROUTE_MAX_LEN - n ? seg_len
                                               : OBS_ROUTE_MAX_LEN - n;
        memcpy(out + n, seg, copy);
        n += copy;
    }

    return n;
}


const char *
obs_tenant_label(const char *value, size_t len, size_t *out_len)
{
    size_t  i;
    char    c;

    if (len == 0) {
        *out_len = sizeof(OBS_TENANT_NONE) - 1;
        return OBS_TENANT_NONE;
    }

    if (len > OBS_TENANT_MAX_LEN) {
        goto invalid;
    }

    for (i = 0; i < len; i++) {
        c = value[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || obs_is_digit(c) || c == '.' || c == '_' || c == ':'
              || c == '-'))
        {
            goto invalid;
        }
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
 * (opaque keys, base64url ids).
 */

static int
obs_segment_is_id(const char *s, size_t len)
{
    size_t  i, digits, hex, token;

    if (len == 0) {
        return 0;
    }

    if (obs_is_uuid(s, len)) {
        return 1;
    }

    digits = hex = token = 0;

    for (i = 0; i < len; i++) {
        if (obs_is_digit(s[i])) {
            digits++;
        }

        if (obs_is_hex(s[i])) {
            hex++;
        }

        if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
            || obs_is_digit(s[i]) || s[i] == '-' || s[i] == '_')
        {
            token++;
        }
    }

    if (digits == len) {
        return 1;
    }

    if (hex == len && len >= OBS_HEX_ID_MIN_LEN) {
        return 1;
    }

    return token == len && len >= OBS_TOKEN_MIN_LEN && digits > 0
           && digits < len;
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
