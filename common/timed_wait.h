/*
 * Condition waits with a deadline on the monotonic clock.
 *
 * pthread_cond_timedwait() measures against CLOCK_REALTIME unless the
 * condition says otherwise: a wall clock stepped back (NTP, an operator)
 * would hold a waiting thread for as long as the step, delaying batches and
 * audit writes.  Conditions made here and deadlines taken here use
 * CLOCK_MONOTONIC, which never steps.
 */

#ifndef OBS_COMMON_TIMED_WAIT_H
#define OBS_COMMON_TIMED_WAIT_H

#include <pthread.h>
#include <time.h>

/* Initialises cond so that timed waits on it measure the monotonic clock. */
void timed_wait_cond_init(pthread_cond_t *cond);

/* Sets *deadline to ms milliseconds from now on the monotonic clock. */
void timed_wait_deadline(struct timespec *deadline, long ms);

#endif
