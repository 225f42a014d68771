/* The ingest-to-exporter ring.  See queue.h. */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue.h"

typedef struct {
    size_t          len;
    unsigned char  *data;       /* allocated when first used */
} slot_t;

struct dgram_queue {
    pthread_mutex_t  lock;
    pthread_cond_t   more;
    slot_t          *slots;
    size_t           n_slots;
    uint64_t         head;                      /* next slot written */
    uint64_t         next[QUEUE_MAX_READERS];   /* next slot each reads */
    int              readers;
    int              closed;
};

dgram_queue_t *
queue_new(size_t slots, int readers)
{
    dgram_queue_t  *q;

    if (slots == 0 || readers < 1 || readers > QUEUE_MAX_READERS) {
        return NULL;
    }

    q = calloc(1, sizeof(*q));
    if (q == NULL || (q->slots = calloc(slots, sizeof(slot_t))) == NULL) {
        free(q);
        return NULL;
    }

    q->n_slots = slots;
    q->readers = readers;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->more, NULL);
    return q;
}

void
queue_free(dgram_queue_t *q)
{
    size_t  i;

    if (q == NULL) {
        return;
    }

    for (i = 0; i < q->n_slots; i++) {
        free(q->slots[i].data);
    }
    free(q->slots);
    pthread_cond_destroy(&q->more);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

size_t
queue_depth(dgram_queue_t *q)
{
    uint64_t  oldest;
    int       i;

    pthread_mutex_lock(&q->lock);
    oldest = q->head;
    for (i = 0; i < q->readers; i++) {
        if (q->next[i] < oldest) {
            oldest = q->next[i];
        }
    }
    pthread_mutex_unlock(&q->lock);

    return (size_t) (q->head - oldest);
}

int
queue_put(dgram_queue_t *q, const uint8_t *data, size_t len)
{
    slot_t  *s;

    /* only this thread moves head, so the depth can only shrink meanwhile */
    if (len > QUEUE_SLOT_BYTES || queue_depth(q) >= q->n_slots) {
        return -1;
    }

    /* no reader looks at the head slot until head moves: copy unlocked */
    s = &q->slots[q->head % q->n_slots];
    if (s->data == NULL && (s->data = malloc(QUEUE_SLOT_BYTES)) == NULL) {
        return -1;
    }
    memcpy(s->data, data, len);
    s->len = len;

    pthread_mutex_lock(&q->lock);
    q->head++;
    pthread_cond_broadcast(&q->more);
    pthread_mutex_unlock(&q->lock);
    return 0;
}

long
queue_get(dgram_queue_t *q, int reader, const uint8_t **data, long wait_ms)
{
    struct timespec  until;
    slot_t          *s;
    int              rc = 0;

    pthread_mutex_lock(&q->lock);

    if (q->next[reader] == q->head && !q->closed && wait_ms > 0) {
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += wait_ms / 1000;
        until.tv_nsec += (wait_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        while (q->next[reader] == q->head && !q->closed && rc != ETIMEDOUT) {
            rc = pthread_cond_timedwait(&q->more, &q->lock, &until);
        }
    }

    if (q->next[reader] == q->head) {
        rc = q->closed ? -1 : 0;
        pthread_mutex_unlock(&q->lock);
        return rc;
    }

    s = &q->slots[q->next[reader] % q->n_slots];
    pthread_mutex_unlock(&q->lock);

    *data = s->data;
    return (long) s->len;
}

void
queue_done(dgram_queue_t *q, int reader)
{
    pthread_mutex_lock(&q->lock);
    q->next[reader]++;
    pthread_mutex_unlock(&q->lock);
}

void
queue_close(dgram_queue_t *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = 1;
    pthread_cond_broadcast(&q->more);
    pthread_mutex_unlock(&q->lock);
}
