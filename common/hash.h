/*
 * One fast 64-bit hash for the module's symbols and the sidecar's series
 * keys and label sets.  Not for adversaries: callers bound every table, so
 * collisions cost time, never memory.  Values live in memory only; nothing
 * stores them, so the algorithm may change between versions.
 */

#ifndef OBS_HASH_H
#define OBS_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Eight bytes as one word. */
static inline uint64_t
hash_load8(const unsigned char *p)
{
    uint64_t  w;

    memcpy(&w, p, 8);

    return w;
}

/* 0 to 7 bytes as one word: loads that may overlap, no loop (with the
   length mixed in, distinct inputs give distinct words). */
static inline uint64_t
hash_load_short(const unsigned char *p, size_t len)
{
    uint32_t  lo, hi;

    if (len >= 4) {
        memcpy(&lo, p, 4);
        memcpy(&hi, p + len - 4, 4);
        return (uint64_t) hi << 32 | lo;
    }

    if (len == 0) {
        return 0;
    }

    return (uint64_t) p[0] << 16 | (uint64_t) p[len / 2] << 8 | p[len - 1];
}

static inline uint64_t
hash_mix(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0xff51afd7ed558ccdULL;

    return h ^ (h >> 32);
}

/* Hashes len bytes eight at a time, the last step overlapping the one
   before: keys are short and hashing them must be cheap. */
static inline uint64_t
hash_bytes(const void *data, size_t len, uint64_t seed)
{
    const unsigned char  *p = data;
    uint64_t              h = seed ^ (len * 0x9e3779b97f4a7c15ULL);

    if (len < 8) {
        return hash_mix(h, hash_load_short(p, len));
    }

    for ( /* void */ ; len > 8; len -= 8, p += 8) {
        h = hash_mix(h, hash_load8(p));
    }

    return hash_mix(h, hash_load8(p + len - 8));
}

#endif
