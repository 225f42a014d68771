/*
 * Records in column form (obs.v1.RecordColumns, what the module sends):
 * validation of a decoded batch and the reading of one record from it.
 */

#ifndef OBS_COLUMNS_H
#define OBS_COLUMNS_H

#include <stddef.h>

#include "obs/v1/record.pb-c.h"

/* The most upstream attempts one record carries. */
#define COLUMNS_MAX_ATTEMPTS  64

/* The most records one batch may claim: a datagram is at most 64 KiB. */
#define COLUMNS_MAX_RECORDS   65536

/* The most obs_log_fields one record carries (the module sends up to 8). */
#define COLUMNS_MAX_FIELDS    16

/* A reader over one batch; records are read in order. */
typedef struct {
    const Obs__V1__RecordColumns  *c;
    size_t                         next;          /* next record */
    size_t                         next_attempt;  /* its first attempt */
    /* obs_log_field: the next record's first field, and where its fields
       are read to (the record points here) */
    size_t                         next_field;
    Obs__V1__LogField              fields[COLUMNS_MAX_FIELDS];
    Obs__V1__LogField             *field_ptrs[COLUMNS_MAX_FIELDS];
} columns_reader_t;

/*
 * Tells whether every column agrees with count, the required columns
 * (status, duration, an attempt's status) are all there, and every symbol
 * exists.
 */
int columns_valid(const Obs__V1__RecordColumns *c);

/* Starts reading a batch that columns_valid() accepted. */
void columns_reader_init(columns_reader_t *rd, const Obs__V1__RecordColumns *c);

/*
 * Fills r with the next record (its text pointing into the batch, its
 * attempts into the caller's arrays, its fields into the reader); returns 0
 * when none is left.
 */
int columns_next(columns_reader_t *rd, Obs__V1__Record *r,
    Obs__V1__UpstreamAttempt *attempts, Obs__V1__UpstreamAttempt **ptrs);

#endif
