/* Timestamped, rate-limited log lines.  See log.h. */

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

/* lines per second; past it, lines are counted and the count said later */
#define LOG_LINES_PER_SECOND  20

static pthread_mutex_t  log_lock = PTHREAD_MUTEX_INITIALIZER;
static time_t           log_second;
static unsigned long    log_lines;
static unsigned long    log_suppressed;

static int log_allowed(time_t now, const char *when);

void
sidecar_log(const char *level, const char *fmt, ...)
{
    char        when[32];
    time_t      now = time(NULL);
    struct tm   tm;
    va_list     ap;

    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);

    pthread_mutex_lock(&log_lock);

    if (log_allowed(now, when)) {
        fprintf(stderr, "%s obs-sidecar %s: ", when, level);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }

    pthread_mutex_unlock(&log_lock);
}

/* Counts a line against this second's budget; says what was held back. */
static int
log_allowed(time_t now, const char *when)
{
    if (now != log_second) {
        if (log_suppressed) {
            fprintf(stderr, "%s obs-sidecar warn: %lu log lines suppressed "
                    "(more than %d a second)\n", when, log_suppressed,
                    LOG_LINES_PER_SECOND);
        }

        log_second = now;
        log_lines = 0;
        log_suppressed = 0;
    }

    if (log_lines >= LOG_LINES_PER_SECOND) {
        log_suppressed++;
        return 0;
    }

    log_lines++;
    return 1;
}
