/*
 * Lowercase hex encoding, the one the module (trace context, $obs_*_id
 * variables), the sidecar (exemplars) and the exporters (trace ids in log
 * lines and spans) all use.  Plain C with no nginx or sidecar dependency,
 * header-only so that the module's per-request caller can inline it.
 */

#ifndef OBS_HEX_H
#define OBS_HEX_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>

/* Nibble values 0-15 to their lowercase hex digits. */
static inline __m128i
hex_ascii(__m128i nibbles)
{
    __m128i  above9;

    above9 = _mm_cmpgt_epi8(nibbles, _mm_set1_epi8(9));

    return _mm_add_epi8(_mm_add_epi8(nibbles, _mm_set1_epi8('0')),
                        _mm_and_si128(above9, _mm_set1_epi8('a' - '0' - 10)));
}

#endif


/* Writes the 2*n lowercase hex digits of bytes to out (no NUL). */
static inline void
hex_encode(char *out, const uint8_t *bytes, size_t n)
{
    static const char  pairs[513] =
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
        "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
        "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
        "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
        "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
    size_t             i;

#if defined(__SSE2__)
    __m128i  b, hi, lo, mask;

    /* sixteen, then eight bytes at a time: the nibbles interleaved */

    mask = _mm_set1_epi8(0x0f);

    for ( /* void */ ; n >= 16; n -= 16, bytes += 16, out += 32) {
        b = _mm_loadu_si128((const __m128i *) bytes);
        hi = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
        lo = _mm_and_si128(b, mask);
        _mm_storeu_si128((__m128i *) out,
                         hex_ascii(_mm_unpacklo_epi8(hi, lo)));
        _mm_storeu_si128((__m128i *) (out + 16),
                         hex_ascii(_mm_unpackhi_epi8(hi, lo)));
    }

    if (n >= 8) {
        b = _mm_loadl_epi64((const __m128i *) bytes);
        hi = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
        lo = _mm_and_si128(b, mask);
        _mm_storeu_si128((__m128i *) out,
                         hex_ascii(_mm_unpacklo_epi8(hi, lo)));
        n -= 8;
        bytes += 8;
        out += 16;
    }
#endif

    for (i = 0; i < n; i++) {
        memcpy(out + 2 * i, pairs + 2 * bytes[i], 2);
    }
}

#endif
