/*
 * The few protobuf wire-format writes the exporters and the sidecar need
 * (varints, fixed integers, length-delimited fields) onto a growable buffer,
 * so that Loki's push, OTLP spans and the protobuf exposition's delimiters
 * are encoded straight from the data, with no message structures in between;
 * and a field reader for the small answers receivers send (OTLP's partial
 * success, gRPC's status details).
 */

#ifndef OBS_PB_H
#define OBS_PB_H

#include <stdint.h>
#include <string.h>

#include "buf.h"

enum { PB_VARINT = 0, PB_FIXED64 = 1, PB_LEN = 2, PB_FIXED32 = 5 };

/* buf_put: the protobuf writers' name for it. */
static inline void
pb_put(buf_t *b, const void *data, size_t n)
{
    buf_put(b, data, n);
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

/* Writes v as a varint at p, which has room (pb_varint_size); returns
   where it ends. */
static inline uint8_t *
pb_varint_at(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t) (v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t) v;
    return p;
}

static inline void
pb_varint(buf_t *b, uint64_t v)
{
    uint8_t  out[10];

    /* straight into the buffer when it has room: a copy of a length the
       compiler does not know is a call to memcpy, for a byte or two */
    if (b->cap - b->len >= sizeof(out)) {
        b->len = (size_t) (pb_varint_at((uint8_t *) b->data + b->len, v)
                           - (uint8_t *) b->data);
        return;
    }

    pb_put(b, out, (size_t) (pb_varint_at(out, v) - out));
}

/* A length-delimited field's tag, length and n bytes at p, which has room
   (pb_len_size); returns where it ends. */
static inline uint8_t *
pb_bytes_at(uint8_t *p, unsigned field, const void *data, size_t n)
{
    p = pb_varint_at(p, (uint64_t) field << 3 | PB_LEN);
    p = pb_varint_at(p, n);
    if (n) {
        memcpy(p, data, n);
    }
    return p + n;
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

/*
 * A length-delimited field written in place, its length not known yet:
 * pb_open writes the tag and leaves two bytes for the length (what a field
 * of 128 bytes to 16 KiB takes) and returns where the field's bytes start;
 * pb_close writes the length there, moving the bytes when it takes another
 * size.  The same bytes as writing the field apart and pb_bytes, without
 * the copy.
 */
static inline size_t
pb_open(buf_t *b, unsigned field)
{
    pb_tag(b, field, PB_LEN);
    pb_put(b, "\x80\x00", 2);
    return b->len;
}

static inline void
pb_close(buf_t *b, size_t start)
{
    uint8_t  len[10];
    size_t   n, size;

    if (b->failed) {
        return;                     /* the caller drops what it wrote */
    }

    n = b->len - start;
    if (n >= 0x80 && n < 0x4000) {
        /* the usual case, in place: a memcpy of a length the compiler
           does not know would be a call, for two bytes */
        b->data[start - 2] = (char) (n | 0x80);
        b->data[start - 1] = (char) (n >> 7);
        return;
    }

    size = (size_t) (pb_varint_at(len, n) - len);
    if (size != 2) {
        if (size > 2 && buf_reserve(b, size - 2) != 0) {
            return;
        }
        memmove(b->data + start - 2 + size, b->data + start, n);
        b->len = start - 2 + size + n;
    }
    memcpy(b->data + start - 2, len, size);
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

static inline void
pb_double(buf_t *b, unsigned field, double v)
{
    uint64_t  u;

    memcpy(&u, &v, sizeof(u));
    pb_fixed64(b, field, u);
}

/* One field read from a message: its number, wire type and value. */
typedef struct {
    unsigned        field;
    unsigned        wire;
    uint64_t        value;          /* varint and fixed */
    const uint8_t  *data;           /* length-delimited */
    size_t          len;
} pb_field_t;

static inline int
pb_read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    unsigned  shift = 0;

    *v = 0;
    while (*p < end && shift < 64) {
        uint8_t  c = *(*p)++;

        *v |= (uint64_t) (c & 0x7f) << shift;
        if (!(c & 0x80)) {
            return 0;
        }
        shift += 7;
    }
    return -1;
}

/*
 * Reads the next field of [*p, end) into f: 1 when one was read, 0 at the
 * end, -1 when the bytes are no message (or are cut short).
 */
static inline int
pb_next(const uint8_t **p, const uint8_t *end, pb_field_t *f)
{
    uint64_t  key;
    int       i;

    if (*p >= end) {
        return 0;
    }
    if (pb_read_varint(p, end, &key) != 0 || key >> 3 == 0
        || key >> 3 > 0x1fffffff)
    {
        return -1;
    }

    f->field = (unsigned) (key >> 3);
    f->wire = (unsigned) (key & 7);
    f->value = 0;
    f->data = NULL;
    f->len = 0;

    switch (f->wire) {
    case PB_VARINT:
        return pb_read_varint(p, end, &f->value) == 0 ? 1 : -1;
    case PB_FIXED64:
    case PB_FIXED32:
        i = f->wire == PB_FIXED64 ? 8 : 4;
        if (end - *p < i) {
            return -1;
        }
        while (i-- > 0) {
            f->value = f->value << 8 | (*p)[i];
        }
        *p += f->wire == PB_FIXED64 ? 8 : 4;
        return 1;
    case PB_LEN:
        if (pb_read_varint(p, end, &f->value) != 0
            || f->value > (uint64_t) (end - *p))
        {
            return -1;
        }
        f->data = *p;
        f->len = (size_t) f->value;
        *p += f->len;
        return 1;
    default:
        return -1;
    }
}

#endif
