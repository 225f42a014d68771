/*
 * Label values (made valid UTF-8 by label_sanitize, common/label_rules.h)
 * bounded in number per dimension (tenants, routes) with "__overflow__"
 * past the cap.
 */

#ifndef OBS_LABELS_H
#define OBS_LABELS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "label_rules.h"     /* label_sanitize, LABEL_BUF_LEN */

#define LABEL_OVERFLOW    label_overflow

/* "__overflow__": one object, so it can be recognised by address */
extern const char  label_overflow[];

/*
 * A set's bounds: at most cap values, of which at most share made from
 * requests (Record.from_request), so that clients can never take the
 * values the configuration writes (those may use the whole cap).
 */
typedef struct {
    long  cap;
    long  share;
} dimension_caps_t;

/* The caps of a cap, with percent of it for values made from requests. */
dimension_caps_t dimension_caps(long cap, long percent);

typedef struct dimension  dimension_t;

/* Creates a set of at most cap distinct values (share: cap). */
dimension_t *dimension_new(long cap);

/* Frees the set. */
void dimension_free(dimension_t *d);

/* Changes the caps; values already admitted stay. */
void dimension_set_caps(dimension_t *d, dimension_caps_t caps);

/*
 * Returns value if it is (or now becomes) one of the set's values, else
 * LABEL_OVERFLOW (and sets *overflowed).  A value made from requests
 * (from_request) is admitted only within the share; one the configuration
 * wrote, within the cap, and it makes a value that requests made before
 * count as the configuration's from then on.  The set remembers when each
 * value was last seen.
 */
const char *dimension_admit(dimension_t *d, const char *value,
    int from_request, time_t now, int *overflowed);

/* Forgets values last seen before the given time. */
void dimension_expire(dimension_t *d, time_t before);

/* Number of values in the set. */
size_t dimension_size(const dimension_t *d);

/* Number of them made from requests. */
size_t dimension_from_request(const dimension_t *d);

/*
 * A bounded set of values per key (routes per service): keys within the
 * caps of keys, and under each key values within the caps of values.
 */
typedef struct dimension_map  dimension_map_t;

/* Creates an empty map (shares: the caps). */
dimension_map_t *dimension_map_new(long max_keys, long cap);

/* Frees the map. */
void dimension_map_free(dimension_map_t *m);

/* Changes both caps; keys and values already admitted stay. */
void dimension_map_set_caps(dimension_map_t *m, dimension_caps_t keys,
    dimension_caps_t values);

/*
 * Returns value if it is (or now becomes) one of key's values, each
 * admitted as dimension_admit() does (key_from_request, from_request).
 * Past the caps of keys it returns LABEL_OVERFLOW and sets
 * *key_overflowed; past key's caps of values, LABEL_OVERFLOW and
 * *overflowed.
 */
const char *dimension_map_admit(dimension_map_t *m, const char *key,
    int key_from_request, const char *value, int from_request, time_t now,
    int *key_overflowed, int *overflowed);

/* Forgets keys, and values under a key, last seen before the given time. */
void dimension_map_expire(dimension_map_t *m, time_t before);

/* Number of values under key (0 when key is not in the map). */
size_t dimension_map_size(const dimension_map_t *m, const char *key);

#endif
