/* The benchmarks' clock. */

#ifndef OBS_BENCH_CLOCK_H
#define OBS_BENCH_CLOCK_H

#include <time.h>

/* Seconds on the monotonic clock. */
static inline double
now_seconds(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Seconds of CPU the calling thread has used: unlike the wall clock, not
   counting the time another process had the core. */
static inline double
thread_cpu_seconds(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

#endif
