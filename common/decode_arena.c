/* Bump allocation for protobuf-c.  See decode_arena.h. */

#include <stdlib.h>

#include "decode_arena.h"

static void *decode_arena_alloc(void *data, size_t size);
static void decode_arena_release(void *data, void *p);

int
decode_arena_init(decode_arena_t *a, size_t size)
{
    a->base = malloc(size);
    a->used = 0;
    a->size = a->base ? size : 0;
    a->allocator.alloc = decode_arena_alloc;
    a->allocator.free = decode_arena_release;
    a->allocator.allocator_data = a;
    return a->base ? 0 : -1;
}

void
decode_arena_reset(decode_arena_t *a)
{
    a->used = 0;
}

void
decode_arena_free(decode_arena_t *a)
{
    free(a->base);
    a->base = NULL;
    a->size = 0;
}

static void *
decode_arena_alloc(void *data, size_t size)
{
    decode_arena_t  *a = data;
    void            *p;

    size = (size + 15) & ~(size_t) 15;
    if (a->used + size > a->size) {
        return NULL;
    }

    p = a->base + a->used;
    a->used += size;
    return p;
}

static void
decode_arena_release(void *data, void *p)
{
    (void) data;
    (void) p;           /* the whole arena is reset per datagram */
}
