/*
 * The hand-off from ingest to the exporter threads: a bounded ring of
 * datagram copies that every exporter thread reads in order (each keeps the
 * records of its own streams).  One producer, the ingest thread, which never
 * waits: when the slowest reader is a full ring behind, the datagram is
 * refused and its records are counted as shed by the caller.
 */

#ifndef OBS_EXPORTER_QUEUE_H
#define OBS_EXPORTER_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#define QUEUE_MAX_READERS   16
#define QUEUE_SLOT_BYTES    65536       /* the largest datagram ingest takes */

typedef struct dgram_queue  dgram_queue_t;

/* A ring of slots datagrams for readers threads; NULL when out of memory. */
dgram_queue_t *queue_new(size_t slots, int readers);

/* Frees the ring. */
void queue_free(dgram_queue_t *q);

/* Copies a datagram in (producer); -1 when the ring is full or too small. */
int queue_put(dgram_queue_t *q, const uint8_t *data, size_t len);

/*
 * Waits at most wait_ms for reader's next datagram; returns its length and
 * points *data at it (valid until queue_done), 0 on timeout, -1 once the
 * ring is closed and this reader has read everything.
 */
long queue_get(dgram_queue_t *q, int reader, const uint8_t **data,
    long wait_ms);

/* Tells the ring that reader is done with the datagram queue_get gave. */
void queue_done(dgram_queue_t *q, int reader);

/* Datagrams the slowest reader has not finished. */
size_t queue_depth(dgram_queue_t *q);

/* No more datagrams: readers finish what is queued, then get -1. */
void queue_close(dgram_queue_t *q);

#endif
