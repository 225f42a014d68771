/* Compression the sidecar and its exporters share. */

#ifndef OBS_COMPRESS_H
#define OBS_COMPRESS_H

#include <stddef.h>

#include "buf.h"

/* The most a gzip of len bytes can take. */
size_t compress_gzip_bound(size_t len);

/*
 * Gzips len bytes of in into out (cap bytes, compress_gzip_bound(len) is
 * always enough), at igzip's level 1: the fastest that still finds repeats,
 * as a scrape (~680 bytes a series of text, 68 MB at 100k series) or a
 * batch of log lines is sent once and waited on.  Returns the gzip's
 * length, 0 when cap is too small or memory runs out.
 */
size_t compress_gzip(const void *in, size_t len, void *out, size_t cap);

/* A gzip made piece by piece: one member, as compress_gzip makes it. */
typedef struct gzip_stream_s gzip_stream_t;

/* A new stream, or NULL when memory runs out (~360 KiB of state). */
gzip_stream_t *gzip_stream_new(void);

/* Compresses len bytes of in onto out; last ends the gzip.  Returns 0, or
   -1 when memory runs out (out->failed) or len is over 4 GiB. */
int gzip_stream_write(gzip_stream_t *s, const void *in, size_t len, int last,
    buf_t *out);

/* Frees the stream. */
void gzip_stream_free(gzip_stream_t *s);

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
