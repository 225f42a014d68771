/* A thread that collects on an interval grid.  See collector.h. */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "collector.h"
#include "delivery.h"

static void *collector_main(void *data);

int
collector_start(collector_t *c, char *err, size_t errlen)
{
    char  name[16];

    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->wake, NULL);
    c->stopping = 0;

    errno = pthread_create(&c->thread, NULL, collector_main, c);
    if (errno != 0) {
        snprintf(err, errlen, "%s: cannot start a thread: %s", c->name,
                 strerror(errno));
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->wake);
        return -1;
    }

    snprintf(name, sizeof(name), "obs-%.11s", c->name);
    pthread_setname_np(c->thread, name);
    return 0;
}

void
collector_stop(collector_t *c)
{
    pthread_mutex_lock(&c->lock);
    c->stopping = 1;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->wake);
}

static void *
collector_main(void *data)
{
    collector_t      *c = data;
    double            start, next;
    struct timespec   ts;
    int               stopping = 0;

    start = (double) (long long) (delivery_now() / c->interval) * c->interval;
    next = start + c->interval;
    if (c->collect_first) {
        c->collect(c, start, 0);
    }

    for ( ;; ) {
        ts.tv_sec = (time_t) next;
        ts.tv_nsec = (long) ((next - (double) ts.tv_sec) * 1e9);

        pthread_mutex_lock(&c->lock);
        while (!c->stopping && delivery_now() < next
               && pthread_cond_timedwait(&c->wake, &c->lock, &ts)
                  != ETIMEDOUT)
        {
            /* a spurious wakeup */
        }
        stopping = c->stopping;
        pthread_mutex_unlock(&c->lock);

        if (stopping) {
            break;
        }

        c->collect(c, start, 0);
        start = (double) (long long) (delivery_now() / c->interval)
                * c->interval;
        next = start + c->interval;
    }

    /* what ingest counted up to now */
    c->collect(c, start, 1);
    return NULL;
}
