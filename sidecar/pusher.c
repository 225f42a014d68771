/* The pushers' thread and queue.  See pusher.h. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pusher.h"

static void *pusher_thread(void *data);
static int pusher_deliver(pusher_t *p, double now);
static void pusher_pop(pusher_t *p, int dropped_reason);
static void pusher_wait(pusher_t *p, double until, int *stopping);

static const char *const  drop_names[PUSHER_DROP_REASONS] = {
    "queue_full", "rejected", "shutdown"
};
static const char *const  result_names[PUSHER_RESULTS] = {
    "success", "retried", "rejected"
};

int
pusher_start(pusher_t *p, char *err, size_t errlen)
{
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);

    errno = pthread_create(&p->thread, NULL, pusher_thread, p);
    if (errno != 0) {
        snprintf(err, errlen, "%s: cannot start a thread: %s", p->name,
                 strerror(errno));
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->wake);
        return -1;
    }

    return 0;
}

void
pusher_stop(pusher_t *p)
{
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
}

/* The queue keeps the newest: a counter's later value says more than its
   earlier one, and the newest usage is what bills are made of last. */

void
pusher_enqueue(pusher_t *p, pusher_item_t *item)
{
    while (p->head && atomic_load(&p->queue_bytes) + item->len > p->bound) {
        pusher_pop(p, PUSHER_DROP_QUEUE_FULL);
    }

    if (item->len > p->bound || (p->queued && p->queued(p, item) != 0)) {
        pusher_lost(p, item->count);
        pusher_item_free(item);
        return;
    }

    item->next = NULL;
    if (p->tail) {
        p->tail->next = item;
    } else {
        p->head = item;
    }
    p->tail = item;
    atomic_fetch_add(&p->queue_bytes, item->len);
}

void
pusher_lost(pusher_t *p, size_t count)
{
    atomic_fetch_add(&p->dropped[PUSHER_DROP_QUEUE_FULL], count);
}

void
pusher_drop_all(pusher_t *p, int (*keep)(const pusher_item_t *item))
{
    pusher_item_t  *item;

    while ((item = p->head) != NULL) {
        if (keep && keep(item)) {
            p->head = item->next;
            atomic_fetch_sub(&p->queue_bytes, item->len);
            pusher_item_free(item);
            continue;
        }
        pusher_pop(p, PUSHER_DROP_SHUTDOWN);
    }
    p->tail = NULL;
}

void
pusher_item_free(pusher_item_t *item)
{
    if (item) {
        free(item->data);
        free(item);
    }
}

/*
 * Collections happen on the interval's grid (a slow delivery does not
 * stretch it); between them the queue's head is delivered whenever no
 * backoff runs.
 */

static void *
pusher_thread(void *data)
{
    pusher_t  *p = data;
    double     start, next, until;
    int        stopping = 0;

    start = (double) (long long) (pusher_now() / p->interval) * p->interval;
    next = start + p->interval;
    if (p->collect_first) {
        p->collect(p, start, 0);
    }

    while (!stopping) {
        if (pusher_now() >= next) {
            p->collect(p, start, 0);
            start = (double) (long long) (pusher_now() / p->interval)
                    * p->interval;
            next = start + p->interval;
        }

        while (p->head && pusher_now() >= p->retry_at && pusher_now() < next
               && pusher_deliver(p, pusher_now()) == 0)
        {
            /* the queue drains while the receiver takes it */
        }

        until = p->head && p->retry_at < next ? p->retry_at : next;
        pusher_wait(p, until, &stopping);
    }

    /* what ingest counted up to now, then one try for each item, unless
       the receiver is known to be down (stopping must not wait on it) */
    p->collect(p, start, 1);
    while (p->head && p->backoff == 0
           && pusher_deliver(p, pusher_now()) == 0)
    {
        /* until the first failure */
    }

    return NULL;
}

static void
pusher_wait(pusher_t *p, double until, int *stopping)
{
    struct timespec  ts;

    ts.tv_sec = (time_t) until;
    ts.tv_nsec = (long) ((until - (double) ts.tv_sec) * 1e9);

    pthread_mutex_lock(&p->lock);
    if (!p->stopping && pusher_now() < until) {
        pthread_cond_timedwait(&p->wake, &p->lock, &ts);
    }
    *stopping = p->stopping;
    pthread_mutex_unlock(&p->lock);
}

/* Sends the head; returns 0 when it is done with (sent or refused). */

static int
pusher_deliver(pusher_t *p, double now)
{
    pusher_item_t  *item = p->head;
    push_result_t   rc;

    rc = push_post(&p->push, p->url, item->data, item->len,
                   item->org[0] ? item->org : NULL);

    if (rc == PUSH_OK) {
        atomic_fetch_add(&p->requests[PUSHER_SUCCESS], 1);
        atomic_fetch_add(&p->sent, item->count);
        atomic_store(&p->last_success_ms, (unsigned long long) (now * 1000));
        p->backoff = 0;
        pusher_pop(p, -1);
        return 0;
    }

    if (rc == PUSH_REJECTED) {
        atomic_fetch_add(&p->requests[PUSHER_REJECTED], 1);
        sidecar_log("error", "%s: %s refused %zu %s: %s", p->name,
                    p->push.cfg->url, item->count, p->items, p->push.error);
        pusher_pop(p, PUSHER_DROP_REJECTED);
        return 0;
    }

    atomic_fetch_add(&p->requests[PUSHER_RETRIED], 1);
    p->backoff = push_backoff(&p->push, p->backoff, p->backoff_first,
                              p->backoff_max);
    p->retry_at = now + p->backoff;
    sidecar_log("warn", "%s: %s: %s; retrying in %.1fs", p->name,
                p->push.cfg->url, p->push.error, p->backoff);
    return -1;
}

static void
pusher_pop(pusher_t *p, int dropped_reason)
{
    pusher_item_t  *item = p->head;

    p->head = item->next;
    if (p->head == NULL) {
        p->tail = NULL;
    }
    if (p->unqueued) {
        p->unqueued(p, item);
    }
    atomic_fetch_sub(&p->queue_bytes, item->len);
    if (dropped_reason >= 0) {
        atomic_fetch_add(&p->dropped[dropped_reason], item->count);
    }
    pusher_item_free(item);
}

void
pusher_metrics(expo_writer_t *w, pusher_t *p)
{
    static const char  *reason[] = { "reason" };
    static const char  *result[] = { "result" };
    char                name[128], help[256];
    int                 i;

    snprintf(name, sizeof(name), "obs_%s_%s_sent", p->name, p->items);
    snprintf(help, sizeof(help), "How many %s the receiver accepted.",
             p->items);
    expo_family(w, name, help, NULL, EXPO_COUNTER);
    expo_sample(w, NULL, NULL, 0, (double) atomic_load(&p->sent));
    expo_family_end(w);

    snprintf(name, sizeof(name), "obs_%s_%s_dropped", p->name, p->items);
    snprintf(help, sizeof(help), "How many %s were given up, by reason: "
             "the queue bound "
             "was reached, the receiver refused them (4xx), or the sidecar "
             "stopped with them unsent (and unspooled).", p->items);
    expo_family(w, name, help, NULL, EXPO_COUNTER);
    for (i = 0; i < PUSHER_DROP_REASONS; i++) {
        expo_sample(w, reason, &drop_names[i], 1,
                    (double) atomic_load(&p->dropped[i]));
    }
    expo_family_end(w);

    snprintf(name, sizeof(name), "obs_%s_requests", p->name);
    expo_family(w, name, "Requests to the receiver, by result (retried: "
                "429, 5xx or no connection; rejected: any other answer).",
                NULL, EXPO_COUNTER);
    for (i = 0; i < PUSHER_RESULTS; i++) {
        expo_sample(w, result, &result_names[i], 1,
                    (double) atomic_load(&p->requests[i]));
    }
    expo_family_end(w);

    snprintf(name, sizeof(name), "obs_%s_queue_bytes", p->name);
    expo_family(w, name, "Payload bytes waiting to be sent.", "bytes",
                EXPO_GAUGE);
    expo_sample(w, NULL, NULL, 0, (double) atomic_load(&p->queue_bytes));
    expo_family_end(w);

    snprintf(name, sizeof(name), "obs_%s_last_success_timestamp_seconds",
             p->name);
    expo_family(w, name, "When the receiver last accepted a request (0: "
                "never).", "seconds", EXPO_GAUGE);
    expo_sample(w, NULL, NULL, 0,
                (double) atomic_load(&p->last_success_ms) / 1000);
    expo_family_end(w);
}

double
pusher_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}
