/*
 * A snapshot of every sample /metrics serves, copied out of the store one
 * shard at a time (so ingest waits no longer than for a scrape) into flat
 * arrays that a pusher can encode at leisure, with no lock held.  Each
 * sample's labels are sorted by name, "__name__" among them, and labels with
 * empty values are left out: the form remote-write asks for.
 */

#ifndef OBS_SNAPSHOT_H
#define OBS_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "store.h"

typedef struct {
    uint32_t  name;             /* offsets into the arena */
    uint32_t  value;
} snap_label_t;

typedef struct {
    size_t    first_label;      /* index into labels */
    uint32_t  n_labels;
    int64_t   tenant;           /* arena offset of the tenant label, or -1 */
    double    value;
} snap_sample_t;

#define SNAP_MAX_LABELS  16

typedef struct {
    uint32_t  offset;
    size_t    len;              /* with the NUL; 0: none */
} snap_cached_t;

typedef struct {
    buf_t           arena;      /* NUL-terminated strings */
    snap_cached_t   cache[2 * SNAP_MAX_LABELS];    /* the last sample's */
    snap_sample_t  *samples;
    size_t          n_samples, cap_samples;
    snap_label_t   *labels;
    size_t          n_labels, cap_labels;
    int64_t         timestamp_ms;
    int             failed;     /* memory ran out: the snapshot is partial */
} snapshot_t;

/* Fills s (emptied first) with every sample; returns -1 if out of memory. */
int snapshot_take(snapshot_t *s, store_t *store);

/* The string at an arena offset. */
const char *snapshot_str(const snapshot_t *s, uint32_t offset);

/* Frees the snapshot's memory. */
void snapshot_free(snapshot_t *s);

#endif
