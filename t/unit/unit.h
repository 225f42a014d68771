/* A minimal assertion harness for the parser unit tests. */

#ifndef OBS_UNIT_H
#define OBS_UNIT_H

#include <stdio.h>

static int unit_passed;
static int unit_failed;

#define CHECK(cond, name)                                                   \
    do {                                                                    \
        if (cond) {                                                         \
            unit_passed++;                                                  \
        } else {                                                            \
            unit_failed++;                                                  \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, name);  \
        }                                                                   \
    } while (0)

static int
unit_report(const char *suite)
{
    printf("%s: %d passed, %d failed\n", suite, unit_passed, unit_failed);
    return unit_failed ? 1 : 0;
}

#endif
