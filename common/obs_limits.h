/*
 * Limits the module, the sidecar and the exporters agree on.  Plain C: the
 * module includes it too.
 */

#ifndef OBS_LIMITS_H
#define OBS_LIMITS_H

/* The upstream attempts one record carries (the module keeps the first). */
#define OBS_MAX_UPSTREAM_ATTEMPTS  8

#endif
