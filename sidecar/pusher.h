/*
 * What the sidecar's pushers (remote-write, ClickHouse) share: a thread that
 * calls its owner's collect() every interval, and an ordered queue of
 * payloads bounded in bytes (past the bound the oldest go, counted) that it
 * delivers one at a time, oldest first, with push.h's retry rules and an
 * exponential backoff between tries.  Its counters become the owner's
 * obs_<name>_* self-metrics.
 */

#ifndef OBS_PUSHER_H
#define OBS_PUSHER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "expo.h"
#include "push.h"

#define PUSHER_ORG_MAX  150         /* X-Scope-OrgID: what Cortex accepts */

typedef struct pusher_item {
    struct pusher_item  *next;
    char                *data;
    size_t               len;
    size_t               count;     /* samples or rows inside */
    uint64_t             seq;       /* the owner's (spool file number) */
    char                 org[PUSHER_ORG_MAX + 1];   /* "" for none */
} pusher_item_t;

enum { PUSHER_DROP_QUEUE_FULL = 0, PUSHER_DROP_REJECTED,
       PUSHER_DROP_SHUTDOWN, PUSHER_DROP_REASONS };
enum { PUSHER_SUCCESS = 0, PUSHER_RETRIED, PUSHER_REJECTED,
       PUSHER_RESULTS };

typedef struct pusher  pusher_t;

struct pusher {
    /* set by the owner before pusher_start */
    const char      *name;          /* "remote_write": logs and metrics */
    const char      *items;         /* "samples", "rows" */
    const char      *url;           /* where to POST (cfg->url if NULL) */
    double           interval;      /* seconds between collections */
    int              collect_first; /* collect at once, not at the first
                                       end of an interval */
    size_t           bound;         /* queue bytes */
    double           backoff_first, backoff_max;
    push_t           push;
    /* interval_start: the start of the interval that ended (or, last, of
       the one in progress) */
    void           (*collect)(pusher_t *p, double interval_start, int last);
    /* an item enters the queue (returns -1 to refuse it) or leaves it */
    int            (*queued)(pusher_t *p, pusher_item_t *item);
    void           (*unqueued)(pusher_t *p, pusher_item_t *item);

    /* the thread's own */
    pthread_t        thread;
    pthread_mutex_t  lock;
    pthread_cond_t   wake;
    int              stopping;
    pusher_item_t   *head, *tail;
    double           backoff;
    double           retry_at;

    /* published for /metrics */
    atomic_ullong    sent;
    atomic_ullong    dropped[PUSHER_DROP_REASONS];
    atomic_ullong    requests[PUSHER_RESULTS];
    atomic_ullong    queue_bytes;
    atomic_ullong    last_success_ms;
};

/* Starts the thread; returns -1 with err set. */
int pusher_start(pusher_t *p, char *err, size_t errlen);

/* Collects one last time, tries each queued item once (until one fails;
   not at all while a backoff runs), and stops the thread.  The items left are the owner's to keep or drop
   (pusher_drop_all). */
void pusher_stop(pusher_t *p);

/* Appends an item (owned from now on) to the queue; the thread only. */
void pusher_enqueue(pusher_t *p, pusher_item_t *item);

/* Counts count items lost before they were queued. */
void pusher_lost(pusher_t *p, size_t count);

/* Empties the queue, counting what was not kept as dropped at shutdown:
   keep(item) says whether it lives on elsewhere (a spool). */
void pusher_drop_all(pusher_t *p, int (*keep)(const pusher_item_t *item));

/* Frees an item. */
void pusher_item_free(pusher_item_t *item);

/* Writes the obs_<name>_* families. */
void pusher_metrics(expo_writer_t *w, pusher_t *p);

/* Wall-clock seconds. */
double pusher_now(void);

#endif
