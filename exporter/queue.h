/*
 * The hand-off from ingest to the exporter threads: a bounded ring of
 * datagram copies that every exporter thread reads in order (each keeps the
 * records of its own streams).  One producer, the ingest thread, which never
 * waits: when the slowest reader is a full ring behind, the datagram is
 * refused and its records are counted as shed by the caller.
 *
 * Each datagram is decoded once for all the readers, into one of a few
 * views (decoded.h: a decoded datagram costs more than its bytes, so there
 * are far fewer views than slots): datagram s goes to view s % views, and
 * the first reader to reach it decodes it there while the others wait for
 * it.  A view is taken for a new datagram once every reader is done with
 * the one it held, so no reader runs more than `views` datagrams ahead of
 * the slowest; the slowest waits for the others at most while one of them
 * decodes its next datagram.
 */

#ifndef OBS_EXPORTER_QUEUE_H
#define OBS_EXPORTER_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#define QUEUE_MAX_READERS   16
#define QUEUE_SLOT_BYTES    65536       /* the largest datagram ingest takes */
/* its records' LABEL_OVER_* (a record takes at least a byte) */
#define QUEUE_OVER_BYTES    (QUEUE_SLOT_BYTES / 4)

typedef struct dgram_queue  dgram_queue_t;

/* A datagram a reader is given. */
typedef struct {
    const uint8_t  *data;       /* valid until queue_done */
    size_t          len;
    const uint8_t  *over;       /* its records' LABEL_OVER_*, or NULL */
    size_t          view;       /* which view holds it decoded */
    int             decode;     /* 1: this reader decodes it into the view,
                                   then calls queue_decoded */
} queue_item_t;

/* A ring of slots datagrams and views decoded ones for readers threads;
   NULL when out of memory. */
dgram_queue_t *queue_new(size_t slots, size_t views, int readers);

/* Frees the ring. */
void queue_free(dgram_queue_t *q);

/* Copies a datagram in, with over_len bytes of over (its records'
   LABEL_OVER_*; NULL: none) (producer); -1 when the ring is full or too
   small. */
int queue_put(dgram_queue_t *q, const uint8_t *data, size_t len,
    const uint8_t *over, size_t over_len);

/*
 * Waits at most wait_ms for reader's next datagram and its view: returns 1
 * and fills *item (decoded in the view unless item->decode), 0 on timeout,
 * -1 once the ring is closed and this reader has read everything.  A
 * reader waiting for a datagram is woken once a few wait (or the ring
 * closes); fewer it takes when wait_ms is up.
 */
int queue_get(dgram_queue_t *q, int reader, queue_item_t *item,
    long wait_ms);

/* Tells the readers waiting for a view that its datagram is decoded. */
void queue_decoded(dgram_queue_t *q, size_t view);

/* Tells the ring that reader is done with the datagram queue_get gave. */
void queue_done(dgram_queue_t *q, int reader);

/* Datagrams the slowest reader has not finished. */
size_t queue_depth(dgram_queue_t *q);

/* No more datagrams: readers finish what is queued, then get -1. */
void queue_close(dgram_queue_t *q);

#endif
