/*
 * The column wire format's reader: records in column form
 * (obs.v1.RecordColumns, what the module sends) validated as a decoded
 * batch, then read one record at a time, for ingest and the exporters
 * alike.  Its writer is the module's ngx_http_obs_columns.c; both follow
 * the column list, proto/obs/v1/columns.def.
 */

#ifndef OBS_COLUMNS_READER_H
#define OBS_COLUMNS_READER_H

#include <stddef.h>

#include "obs/v1/record.pb-c.h"

/* The most entries of a group (upstream attempts, ...) one record has. */
#define COLUMNS_MAX_ENTRIES   64

/* The most records one batch may claim: a datagram is at most 64 KiB. */
#define COLUMNS_MAX_RECORDS   65536

/*
 * A reader over one batch; records are read in order.  A record's entries
 * (its upstream attempts, ...) live in the reader until the next record.
 */
typedef struct {
    const Obs__V1__RecordColumns  *c;
    size_t                         next_record;
#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
    size_t                         next_##group;                             \
    Obs__V1__##Row                 group[COLUMNS_MAX_ENTRIES];               \
    Obs__V1__##Row                *group##_ptrs[COLUMNS_MAX_ENTRIES];
#include "obs/v1/columns.def"
} columns_reader_t;

/*
 * Tells whether every column agrees with count (or its group's counts), the
 * required columns (status, duration, an attempt's status) are all there,
 * and every symbol exists.
 */
int columns_valid(const Obs__V1__RecordColumns *c);

/* Starts reading a batch that columns_valid() accepted. */
void columns_reader_init(columns_reader_t *rd, const Obs__V1__RecordColumns *c);

/*
 * Fills r with the next record (its text pointing into the batch, its
 * entries into the reader); returns 0 when none is left.
 */
int columns_next(columns_reader_t *rd, Obs__V1__Record *r);

/* Passes over the next record (there is one) without reading it. */
void columns_skip(columns_reader_t *rd);

/*
 * Entry i of one of c's text columns (refs, n entries): its bytes in the
 * batch, empty when the column has none.  What a caller that needs a field
 * or two of every record reads instead of columns_next().
 */
ProtobufCBinaryData columns_text(const Obs__V1__RecordColumns *c,
    const uint32_t *refs, size_t n, size_t i);

#endif
