/*
 * A bump allocator for protobuf-c's unpacking of one datagram at a time:
 * every allocation lives until the arena is reset for the next datagram,
 * so decoding costs no malloc/free per field.  Ingest and each exporter
 * thread own one.
 */

#ifndef OBS_DECODE_ARENA_H
#define OBS_DECODE_ARENA_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

typedef struct {
    unsigned char       *base;
    size_t               used;
    size_t               size;
    ProtobufCAllocator   allocator;     /* what protobuf-c is given */
} decode_arena_t;

/* Allocates size bytes for the arena; returns 0, or -1 out of memory. */
int decode_arena_init(decode_arena_t *a, size_t size);

/* Forgets everything allocated: the next datagram starts from empty. */
void decode_arena_reset(decode_arena_t *a);

/* Frees the arena's memory. */
void decode_arena_free(decode_arena_t *a);

#endif
