/* The ingest-to-exporter ring.  See queue.h. */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "label_rules.h"
#include "queue.h"
#include "timed_wait.h"

/*
 * Readers asleep are woken once this many datagrams wait for them (at most
 * a quarter of the ring); fewer they find when their wait ends.  A wake-up
 * a datagram cost the exporter thread a context switch per datagram, the
 * kernel's time, and left it building a datagram at a time; a reader that
 * is awake takes whatever is there, woken or not.
 */
#define QUEUE_WAKE_DEPTH  16

typedef struct {
    size_t          len;
    unsigned char  *data;       /* allocated when first used */
    uint8_t        *over;       /* ... when first needed */
    int             has_over;
} slot_t;

typedef struct {
    uint64_t        datagram;   /* the one it holds, + 1 (0: none yet) */
    int             ready;      /* decoded */
} view_t;

struct dgram_queue {
    pthread_mutex_t  lock;
    pthread_cond_t   more;          /* a datagram came, or the end */
    pthread_cond_t   progress;      /* a view decoded, a datagram done */
    slot_t          *slots;
    size_t           n_slots;
    view_t          *views;
    size_t           n_views;
    uint64_t         head;                      /* next slot written */
    uint64_t         next[QUEUE_MAX_READERS];   /* next slot each reads */
    /*
     * Slots every reader is done with give their buffers back (below
     * `freed`), and a new datagram takes the one given back last: the ring
     * keeps as many buffers as datagrams are in it, and the one written is
     * warm in the cache, not a 64 KiB block untouched since the ring last
     * came round (the first time round, not yet faulted in).
     */
    uint64_t         freed;
    unsigned char  **spare;
    uint8_t        **spare_over;
    size_t           n_spare;
    size_t           n_spare_over;
    size_t           wake;          /* datagrams waiting that wake readers */
    int              readers;
    int              sleeping;      /* readers waiting for a datagram */
    int              waiting;       /* readers waiting for progress */
    int              closed;
};

static uint64_t queue_oldest(dgram_queue_t *q);
static void queue_reclaim(dgram_queue_t *q, uint64_t oldest);
static int queue_wait(pthread_cond_t *cond, pthread_mutex_t *lock,
    long wait_ms, struct timespec *until);

dgram_queue_t *
queue_new(size_t slots, size_t views, int readers)
{
    dgram_queue_t  *q;

    if (slots == 0 || views == 0 || readers < 1
        || readers > QUEUE_MAX_READERS)
    {
        return NULL;
    }

    q = calloc(1, sizeof(*q));
    if (q == NULL) {
        return NULL;
    }

    q->slots = calloc(slots, sizeof(slot_t));
    q->views = calloc(views, sizeof(view_t));
    q->spare = calloc(slots, sizeof(unsigned char *));
    q->spare_over = calloc(slots, sizeof(uint8_t *));
    if (q->slots == NULL || q->views == NULL || q->spare == NULL
        || q->spare_over == NULL)
    {
        free(q->slots);
        free(q->views);
        free(q->spare);
        free(q->spare_over);
        free(q);
        return NULL;
    }

    q->n_slots = slots;
    q->n_views = views;
    q->wake = slots / 4 < QUEUE_WAKE_DEPTH ? slots / 4 : QUEUE_WAKE_DEPTH;
    if (q->wake == 0) {
        q->wake = 1;
    }
    q->readers = readers;
    pthread_mutex_init(&q->lock, NULL);
    timed_wait_cond_init(&q->more);
    timed_wait_cond_init(&q->progress);
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
        free(q->slots[i].over);
    }
    for (i = 0; i < q->n_spare; i++) {
        free(q->spare[i]);
    }
    for (i = 0; i < q->n_spare_over; i++) {
        free(q->spare_over[i]);
    }
    free(q->slots);
    free(q->views);
    free(q->spare);
    free(q->spare_over);
    pthread_cond_destroy(&q->more);
    pthread_cond_destroy(&q->progress);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

size_t
queue_depth(dgram_queue_t *q)
{
    size_t  depth;

    pthread_mutex_lock(&q->lock);
    depth = (size_t) (q->head - queue_oldest(q));
    pthread_mutex_unlock(&q->lock);

    return depth;
}

int
queue_put(dgram_queue_t *q, const uint8_t *data, size_t len,
    const uint8_t *over, size_t over_len)
{
    slot_t    *s;
    uint64_t   oldest;
    int        wake;

    if (len > QUEUE_SLOT_BYTES || over_len > QUEUE_OVER_BYTES) {
        return -1;
    }

    /* only this thread moves head, so the depth can only shrink meanwhile */
    pthread_mutex_lock(&q->lock);
    oldest = queue_oldest(q);
    queue_reclaim(q, oldest);
    pthread_mutex_unlock(&q->lock);

    if (q->head - oldest >= q->n_slots) {
        return -1;
    }

    /* no reader looks at the head slot until head moves, and the spare
       buffers only this thread takes: unlocked */
    s = &q->slots[q->head % q->n_slots];
    if (s->data == NULL) {
        s->data = q->n_spare ? q->spare[--q->n_spare]
                             : malloc(QUEUE_SLOT_BYTES);
        if (s->data == NULL) {
            return -1;
        }
    }
    if (over && s->over == NULL) {
        s->over = q->n_spare_over ? q->spare_over[--q->n_spare_over]
                                  : malloc(QUEUE_OVER_BYTES);
        if (s->over == NULL) {
            return -1;
        }
    }
    memcpy(s->data, data, len);
    s->len = len;
    s->has_over = over != NULL;
    if (over) {
        memcpy(s->over, over, over_len);
    }

    pthread_mutex_lock(&q->lock);
    q->head++;
    wake = q->sleeping && q->head - queue_oldest(q) >= q->wake;
    pthread_mutex_unlock(&q->lock);

    /* the woken readers need the lock: not while it is held */
    if (wake) {
        pthread_cond_broadcast(&q->more);
    }
    return 0;
}

/*
 * The reader's next datagram, once there is one, and its view, once the
 * view holds it decoded or is free for this reader to decode it in.
 */
int
queue_get(dgram_queue_t *q, int reader, queue_item_t *item, long wait_ms)
{
    struct timespec  until = { 0, 0 };
    uint64_t         s;
    view_t          *v;
    int              rc, expired = 0;

    pthread_mutex_lock(&q->lock);

    for ( ;; ) {
        s = q->next[reader];

        if (s == q->head) {
            if (q->closed) {
                rc = -1;
                break;
            }
            if (expired) {
                rc = 0;
                break;
            }

            /* datagrams that came without waking it are looked for once
               more when the wait ends */
            q->sleeping++;
            expired = queue_wait(&q->more, &q->lock, wait_ms, &until) != 0;
            q->sleeping--;
            continue;
        }

        v = &q->views[s % q->n_views];

        if (v->datagram == s + 1) {
            item->decode = 0;
            if (v->ready) {
                rc = 1;
                break;
            }

        } else if (queue_oldest(q) >= v->datagram) {
            /* every reader is done with what the view held */
            v->datagram = s + 1;
            v->ready = 0;
            item->decode = 1;
            rc = 1;
            break;
        }

        q->waiting++;
        rc = queue_wait(&q->progress, &q->lock, wait_ms, &until);
        q->waiting--;
        if (rc != 0) {
            rc = 0;
            break;
        }
    }

    pthread_mutex_unlock(&q->lock);

    if (rc == 1) {
        /* the slot stays as it is until this reader is done with it */
        item->data = q->slots[s % q->n_slots].data;
        item->len = q->slots[s % q->n_slots].len;
        item->over = q->slots[s % q->n_slots].has_over
                     ? q->slots[s % q->n_slots].over : NULL;
        item->view = (size_t) (s % q->n_views);
    }

    return rc;
}

void
queue_decoded(dgram_queue_t *q, size_t view)
{
    int  waiting;

    pthread_mutex_lock(&q->lock);
    q->views[view].ready = 1;
    waiting = q->waiting;
    pthread_mutex_unlock(&q->lock);

    /* the woken readers need the lock: not while it is held */
    if (waiting) {
        pthread_cond_broadcast(&q->progress);
    }
}

void
queue_done(dgram_queue_t *q, int reader)
{
    int  waiting;

    pthread_mutex_lock(&q->lock);
    q->next[reader]++;
    waiting = q->waiting;
    pthread_mutex_unlock(&q->lock);

    if (waiting) {
        pthread_cond_broadcast(&q->progress);
    }
}

void
queue_close(dgram_queue_t *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = 1;
    pthread_cond_broadcast(&q->more);
    pthread_mutex_unlock(&q->lock);
}

/* The datagram the slowest reader is at (lock held). */
static uint64_t
queue_oldest(dgram_queue_t *q)
{
    uint64_t  oldest = q->head;
    int       i;

    for (i = 0; i < q->readers; i++) {
        if (q->next[i] < oldest) {
            oldest = q->next[i];
        }
    }

    return oldest;
}

/*
 * Gives back the buffers of the slots every reader is done with (lock
 * held; the producer's).  Their slots are written again only by the
 * producer, which takes a spare buffer for each.
 */
static void
queue_reclaim(dgram_queue_t *q, uint64_t oldest)
{
    slot_t  *s;

    for ( /* void */ ; q->freed < oldest; q->freed++) {
        s = &q->slots[q->freed % q->n_slots];
        if (s->data) {
            q->spare[q->n_spare++] = s->data;
            s->data = NULL;
        }
        if (s->over) {
            q->spare_over[q->n_spare_over++] = s->over;
            s->over = NULL;
        }
    }
}

/*
 * Waits for cond (lock held), at most wait_ms from the first wait of a
 * queue_get (until, zero until then); -1 once that time has passed.
 */
static int
queue_wait(pthread_cond_t *cond, pthread_mutex_t *lock, long wait_ms,
    struct timespec *until)
{
    if (until->tv_sec == 0) {
        timed_wait_deadline(until, wait_ms);
    }

    return pthread_cond_timedwait(cond, lock, until) == ETIMEDOUT ? -1 : 0;
}
