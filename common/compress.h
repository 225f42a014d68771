/* Compression the sidecar and its exporters share. */

#ifndef OBS_COMPRESS_H
#define OBS_COMPRESS_H

#include <stddef.h>

/* The most a gzip of len bytes can take. */
size_t compress_gzip_bound(size_t len);

/*
 * Gzips len bytes of in at level (1 fastest, 9 smallest) into out (cap
 * bytes, compress_gzip_bound(len) is always enough); returns the gzip's
 * length, 0 when zlib fails or cap is too small.
 */
size_t compress_gzip(const void *in, size_t len, int level, void *out,
    size_t cap);

/*
 * The level a /metrics body is gzipped at.  Scrapes are large (~680 bytes a
 * series of text, 68 MB at 100k series), highly repetitive and sent once:
 * level 1 takes 0.29x the CPU of zlib's default 6 on them for a body 6%
 * larger (2.49 MB against 2.34 at 100k series), and Prometheus waits on it.
 */
#define COMPRESS_SCRAPE_LEVEL  1

/* The compressions a payload may take. */
typedef enum { COMPRESS_GZIP, COMPRESS_SNAPPY } compress_t;

/* The most how can make of len bytes. */
size_t compress_bound(compress_t how, size_t len);

/*
 * Compresses len bytes of in into out (cap bytes; compress_bound(how, len)
 * is always enough): gzip at its fastest level, or snappy's block format
 * (Loki's native push, remote-write).  Returns the length, 0 on failure.
 */
size_t compress_fast(compress_t how, const void *in, size_t len, void *out,
    size_t cap);

#endif
