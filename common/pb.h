/*
 * The few protobuf wire-format writes the exporters and the sidecar need
 * (varints, fixed integers, length-delimited fields) onto a growable buffer,
 * so that Loki's push, OTLP spans and the protobuf exposition's delimiters
 * are encoded straight from the data, with no message structures in between.
 */

#ifndef OBS_PB_H
#define OBS_PB_H

#include <stdint.h>
#include <string.h>

#include "buf.h"

enum { PB_VARINT = 0, PB_FIXED64 = 1, PB_LEN = 2, PB_FIXED32 = 5 };

/* buf_append, inline while there is room (the usual case: buffers are
   reused and keep their size). */
static inline void
pb_put(buf_t *b, const void *data, size_t n)
{
    if (b->cap - b->len >= n) {
        memcpy(b->data + b->len, data, n);
        b->len += n;
    } else {
        buf_append(b, data, n);
    }
}

static inline size_t
pb_varint_size(uint64_t v)
{
    size_t  n = 1;

    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline void
pb_varint(buf_t *b, uint64_t v)
{
    uint8_t  out[10];
    size_t   n = 0;

    while (v >= 0x80) {
        out[n++] = (uint8_t) (v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t) v;
    pb_put(b, out, n);
}

static inline void
pb_tag(buf_t *b, unsigned field, unsigned wire)
{
    pb_varint(b, (uint64_t) field << 3 | wire);
}

/* The size of a length-delimited field holding n bytes. */
static inline size_t
pb_len_size(unsigned field, size_t n)
{
    return pb_varint_size((uint64_t) field << 3) + pb_varint_size(n) + n;
}

/* A length-delimited field's tag and length; its n bytes follow. */
static inline void
pb_len(buf_t *b, unsigned field, size_t n)
{
    pb_tag(b, field, PB_LEN);
    pb_varint(b, n);
}

static inline void
pb_bytes(buf_t *b, unsigned field, const void *data, size_t n)
{
    pb_len(b, field, n);
    pb_put(b, data, n);
}

static inline void
pb_uint(buf_t *b, unsigned field, uint64_t v)
{
    pb_tag(b, field, PB_VARINT);
    pb_varint(b, v);
}

static inline void
pb_fixed64(buf_t *b, unsigned field, uint64_t v)
{
    uint8_t  out[8];
    int      i;

    for (i = 0; i < 8; i++) {
        out[i] = (uint8_t) (v >> (8 * i));
    }
    pb_tag(b, field, PB_FIXED64);
    pb_put(b, out, 8);
}

static inline void
pb_fixed32(buf_t *b, unsigned field, uint32_t v)
{
    uint8_t  out[4];
    int      i;

    for (i = 0; i < 4; i++) {
        out[i] = (uint8_t) (v >> (8 * i));
    }
    pb_tag(b, field, PB_FIXED32);
    pb_put(b, out, 4);
}

#endif
