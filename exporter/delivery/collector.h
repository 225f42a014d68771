/*
 * A producer that makes its payloads on a clock (remote-write's
 * snapshots, ClickHouse's usage rows): a thread of its own calls
 * collect() at the end of every interval, on the interval's grid (a slow
 * collection does not stretch it), and once more when it stops.  Its
 * payloads go to the delivery layer; it never waits for a receiver.
 */

#ifndef OBS_COLLECTOR_H
#define OBS_COLLECTOR_H

#include <pthread.h>

typedef struct collector  collector_t;

struct collector {
    /* set by the owner before collector_start */
    const char      *name;          /* thread name, "obs-<name>" */
    double           interval;      /* seconds */
    int              collect_first; /* at once, not at the first interval's
                                       end */
    /* interval_start: the start of the interval that ended (last: of the
       one in progress, the sidecar stopping) */
    void           (*collect)(collector_t *c, double interval_start,
                              int last);
    void            *data;          /* the owner's */

    /* the thread's */
    pthread_t        thread;
    pthread_mutex_t  lock;
    pthread_cond_t   wake;
    int              stopping;
};

/* Starts the thread; -1 with err set. */
int collector_start(collector_t *c, char *err, size_t errlen);

/* Collects one last time and ends the thread. */
void collector_stop(collector_t *c);

#endif
