/* A fast 64-bit hash for series keys and label sets (not for adversaries:
   callers bound every table, so collisions cost time, never memory). */

#ifndef OBS_HASH_H
#define OBS_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Hashes len bytes eight at a time. */
static inline uint64_t
hash_bytes(const void *data, size_t len, uint64_t seed)
{
    const unsigned char  *p = data;
    uint64_t              h = seed ^ (len * 0x9e3779b97f4a7c15ULL), w;

    while (len >= 8) {
        memcpy(&w, p, 8);
        h = (h ^ (w * 0xff51afd7ed558ccdULL)) * 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }

    w = 0;
    if (len) {
        memcpy(&w, p, len);     /* p may be NULL when len is 0 */
    }
    h = (h ^ (w * 0xff51afd7ed558ccdULL)) * 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 32;

    return h;
}

#endif
