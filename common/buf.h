/* A growable byte buffer for building responses and keys. */

#ifndef OBS_BUF_H
#define OBS_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

typedef struct buf_s  buf_t;

/* Takes a full buffer's bytes away (buf_drain); returns 0, or -1. */
typedef int (*buf_drain_pt)(buf_t *b, void *data);

struct buf_s {
    char          *data;
    size_t         len;
    size_t         cap;
    int            failed;  /* an allocation failed; the content is incomplete */
    buf_drain_pt   drain;   /* when set, called before the buffer would grow */
    void          *drain_data;
};

/* Makes room for extra more bytes; returns 0, or -1 (and sets failed). */
int buf_reserve(buf_t *b, size_t extra);

/*
 * Makes b a window of a stream: once cap bytes are held, drain takes them
 * (and empties b) before more are appended, so a large body (a scrape being
 * gzipped) never lives whole in memory.  Returns 0, or -1.
 */
int buf_drain(buf_t *b, size_t cap, buf_drain_pt drain, void *data);

/* Appends len bytes. */
void buf_append(buf_t *b, const void *data, size_t len);

/* buf_append, inline while there is room (the usual case: buffers are
   reused and keep their size, and a scrape appends millions of pieces). */
static inline void
buf_put(buf_t *b, const void *data, size_t n)
{
    if (n == 0) {
        return;                     /* data may be NULL (an empty buffer) */
    }
    if (b->cap - b->len >= n) {
        memcpy(b->data + b->len, data, n);
        b->len += n;
    } else {
        buf_append(b, data, n);
    }
}

/* Appends a NUL-terminated string. */
void buf_puts(buf_t *b, const char *s);

/* Appends printf-formatted text. */
void buf_printf(buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends a double the shortest way that reads back exactly (Prometheus style:
   +Inf, -Inf, NaN). */
void buf_double(buf_t *b, double v);

/* Appends seconds as printf's "%.3f" does (exemplar timestamps). */
void buf_millis(buf_t *b, double seconds);

/* Appends an unsigned integer in decimal. */
void buf_u64(buf_t *b, unsigned long long v);

/* Empties the buffer, keeping its memory. */
void buf_reset(buf_t *b);

/* Frees the memory. */
void buf_free(buf_t *b);

#endif
