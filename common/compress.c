/* gzip through zlib's deflate with the gzip wrapper (windowBits 15 + 16),
   and snappy's block format. */

#include <string.h>

#include <snappy-c.h>
#include <zlib.h>

#include "compress.h"

size_t
compress_gzip_bound(size_t len)
{
    /* compressBound() counts the zlib wrapper (6 bytes); gzip's is 18 */
    return compressBound((uLong) len) + 12;
}

size_t
compress_gzip(const void *in, size_t len, int level, void *out, size_t cap)
{
    z_stream  z;
    int       rc;

    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY)
        != Z_OK)
    {
        return 0;
    }

    z.next_in = (Bytef *) in;
    z.avail_in = (uInt) len;
    z.next_out = out;
    z.avail_out = (uInt) cap;

    rc = deflate(&z, Z_FINISH);
    deflateEnd(&z);

    return rc == Z_STREAM_END ? z.total_out : 0;
}

size_t
compress_bound(compress_t how, size_t len)
{
    return how == COMPRESS_GZIP ? compress_gzip_bound(len)
                                : snappy_max_compressed_length(len);
}

size_t
compress_fast(compress_t how, const void *in, size_t len, void *out,
    size_t cap)
{
    if (how == COMPRESS_GZIP) {
        return compress_gzip(in, len, 1, out, cap);
    }

    return snappy_compress(in, len, out, &cap) == SNAPPY_OK ? cap : 0;
}
