/* Timestamped log lines on stderr. */

#ifndef OBS_LOG_H
#define OBS_LOG_H

/* Writes "time level message" to stderr, at most 20 lines a second. */
void sidecar_log(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
