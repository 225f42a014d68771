/*
 * Label values: made valid UTF-8, and bounded in number per dimension
 * (tenants, routes) with "__overflow__" past the cap.
 */

#ifndef OBS_LABELS_H
#define OBS_LABELS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define LABEL_MAX_LEN     256         /* bytes of a label value, sanitised */
#define LABEL_BUF_LEN     (LABEL_MAX_LEN + 4)
#define LABEL_OVERFLOW    label_overflow

/* "__overflow__": one object, so it can be recognised by address */
extern const char  label_overflow[];

/*
 * Copies raw into out (LABEL_BUF_LEN bytes) as NUL-terminated valid UTF-8:
 * invalid sequences and NUL become U+FFFD; cut to LABEL_MAX_LEN bytes on a
 * character boundary.  Returns the length.
 */
size_t label_sanitize(const uint8_t *raw, size_t len, char *out);

typedef struct dimension  dimension_t;

/* Creates a set of at most cap distinct values. */
dimension_t *dimension_new(long cap);

/* Frees the set. */
void dimension_free(dimension_t *d);

/* Changes the cap; values already admitted stay. */
void dimension_set_cap(dimension_t *d, long cap);

/*
 * Returns value if it is (or now becomes) one of the set's values, else
 * LABEL_OVERFLOW (and sets *overflowed).  The set remembers when each value
 * was last seen.
 */
const char *dimension_admit(dimension_t *d, const char *value, time_t now,
    int *overflowed);

/* Forgets values last seen before the given time. */
void dimension_expire(dimension_t *d, time_t before);

/* Number of values in the set. */
size_t dimension_size(const dimension_t *d);

/*
 * A bounded set of values per key (routes per service): at most max_keys
 * keys, and under each key at most cap values.
 */
typedef struct dimension_map  dimension_map_t;

/* Creates an empty map. */
dimension_map_t *dimension_map_new(long max_keys, long cap);

/* Frees the map. */
void dimension_map_free(dimension_map_t *m);

/* Changes both caps; keys and values already admitted stay. */
void dimension_map_set_caps(dimension_map_t *m, long max_keys, long cap);

/*
 * Returns value if it is (or now becomes) one of key's values.  Past the
 * cap of keys it returns LABEL_OVERFLOW and sets *key_overflowed; past
 * key's cap of values, LABEL_OVERFLOW and *overflowed.
 */
const char *dimension_map_admit(dimension_map_t *m, const char *key,
    const char *value, time_t now, int *key_overflowed, int *overflowed);

/* Forgets keys, and values under a key, last seen before the given time. */
void dimension_map_expire(dimension_map_t *m, time_t before);

/* Number of values under key (0 when key is not in the map). */
size_t dimension_map_size(const dimension_map_t *m, const char *key);

#endif
