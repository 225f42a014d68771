/* Timestamped log lines.  See log.h. */

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

void
log_msg(const char *level, const char *fmt, ...)
{
    char        when[32];
    time_t      now = time(NULL);
    struct tm   tm;
    va_list     ap;

    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);

    fprintf(stderr, "%s obs-sidecar %s: ", when, level);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
