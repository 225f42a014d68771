/* Text helpers.  See text.h. */

#include <string.h>

#include "hex.h"
#include "text.h"

size_t
text_utf8(const uint8_t *raw, size_t len, char *out, size_t cap)
{
    size_t    i = 0, n = 0, seq, max = cap - 1;
    uint64_t  w;

    /* the usual text is plain ASCII: copy it 8 bytes at a time while no
       byte has its top bit set or is NUL */
    while (i + 8 <= len && n + 8 <= max) {
        memcpy(&w, raw + i, 8);
        if ((w & 0x8080808080808080ULL)
            || ((w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL))
        {
            break;          /* a byte >= 0x80, or a NUL */
        }
        memcpy(out + n, &w, 8);
        i += 8;
        n += 8;
    }

    while (i < len) {
        if (raw[i] - 1u < 0x7f && n < max) {
            out[n++] = (char) raw[i++];     /* ASCII but NUL, as above */
            continue;
        }

        seq = raw[i] ? text_utf8_sequence(raw + i, len - i) : 0;

        if (seq == 0) {
            if (n + 3 > max) {
                break;
            }
            memcpy(out + n, "\xef\xbf\xbd", 3);
            n += 3;
            i++;
            continue;
        }

        if (n + seq > max) {
            break;
        }

        memcpy(out + n, raw + i, seq);
        n += seq;
        i += seq;
    }

    out[n] = '\0';
    return n;
}

int
text_printable(const uint8_t *raw, size_t len)
{
    const uint64_t  ones = 0x0101010101010101ULL, highs = ones * 0x80;
    uint64_t        w;
    size_t          i;

    /* a byte < 0x20 borrows in w - 0x20..., one >= 0x7f carries into its
       top bit in w + 0x01... (or has it already) */
    for (i = 0; i + 8 <= len; i += 8) {
        memcpy(&w, raw + i, 8);
        if ((((w - ones * 0x20) & ~w) | w | (w + ones)) & highs) {
            return 0;
        }
    }

    for ( ; i < len; i++) {
        if (raw[i] < 0x20 || raw[i] >= 0x7f) {
            return 0;
        }
    }

    return 1;
}

size_t
text_u64(char *out, uint64_t v)
{
    char    tmp[20], *p = tmp + sizeof(tmp);
    size_t  n;

    do {
        *--p = (char) ('0' + v % 10);
        v /= 10;
    } while (v);

    n = (size_t) (tmp + sizeof(tmp) - p);
    memcpy(out, p, n);
    out[n] = '\0';
    return n;
}

void
text_hex(char *out, const uint8_t *bytes, size_t n)
{
    hex_encode(out, bytes, n);
    out[2 * n] = '\0';
}

size_t
text_utf8_sequence(const uint8_t *p, size_t left)
{
    size_t  need, i;

    if (p[0] < 0x80) {
        return 1;
    }

    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        need = 2;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        need = 3;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        need = 4;
    } else {
        return 0;
    }

    if (left < need) {
        return 0;
    }

    for (i = 1; i < need; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
    }

    /* overlong forms, surrogates and code points past U+10FFFF */
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0)
        || (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
    {
        return 0;
    }

    return need;
}
