/*
 * A datagram decoded once for all the exporter threads.  Ingest decodes
 * each datagram for the metrics; one exporter thread decodes it again,
 * here, for every thread: with N threads a datagram is decoded twice, not
 * N + 1 times.  Each record is tagged with the thread that owns its Loki
 * stream (service, level and, with per-tenant org ids, tenant), so that a
 * stream's lines keep their order; each thread then reads its own records,
 * in datagram order, from the shared form, which nobody writes once it is
 * filled.  A stream's service and tenant are the metrics' (ingest says
 * which of them the caps count as "__overflow__").  A record in column form is read (columns_next) by its own
 * thread only: the tagging reads the three columns the owner depends on.
 * Internal to the exporter library.
 */

#ifndef OBS_EXPORTER_DECODED_H
#define OBS_EXPORTER_DECODED_H

#include <stddef.h>
#include <stdint.h>

#include "columns_reader.h"
#include "decode_arena.h"

/* Every record takes at least a byte of its datagram, at most 64 KiB. */
#define DECODED_MAX_RECORDS  65536

typedef struct {
    decode_arena_t                 arena;     /* what protobuf-c decodes in */
    const Obs__V1__Batch          *batch;     /* NULL: nothing to read */
    const Obs__V1__RecordColumns  *columns;   /* NULL: none, or invalid */
    uint8_t                       *owner;     /* by record: rows, columns */
    uint8_t                       *over;      /* LABEL_OVER_*, when any */
    int                            has_over;
    int                            threads;
} decoded_t;

/* One thread's walk over its records of a decoded datagram. */
typedef struct {
    const decoded_t   *d;
    size_t             next;                  /* rows, then columns */
    size_t             current;               /* the one last returned */
    int                thread;
    Obs__V1__Record    record;                /* a column record, read */
    columns_reader_t   columns;
} decoded_reader_t;

/* Room for one decoded datagram: an arena of arena_size bytes (at least
   what ingest decodes in) and the owners' tags; 0, or -1 out of memory. */
int decoded_init(decoded_t *d, size_t arena_size);

/* Frees the room. */
void decoded_free(decoded_t *d);

/*
 * Decodes a datagram that ingest accepted, with what the caps made of its
 * records' labels (over: LABEL_OVER_*, or NULL), and tags each record with
 * the one of threads threads that builds its stream (split by tenant too
 * when per_tenant); a datagram that does not decode leaves nothing to
 * read.
 */
void decoded_fill(decoded_t *d, const uint8_t *data, size_t len,
    const uint8_t *over, int threads, int per_tenant);

/* Starts thread's walk over its records of d (filled, and left alone
   while the walk lasts). */
void decoded_read(decoded_reader_t *rd, const decoded_t *d, int thread);

/* The thread's next record, in datagram order (valid until the next
   call), or NULL when it has no more. */
const Obs__V1__Record *decoded_next(decoded_reader_t *rd);

/* Which labels of the record decoded_next last gave the caps counted as
   "__overflow__" (LABEL_OVER_*). */
unsigned decoded_over(const decoded_reader_t *rd);

/* The Loki stream label of a record's service (the metrics' label:
   label_sanitize, "__overflow__" where the caps put it, "unknown" when
   empty) in out (LABEL_BUF_LEN bytes); its length. */
size_t decoded_service_label(ProtobufCBinaryData service, unsigned over,
    char *out);

/* The per-tenant X-Scope-OrgID of a tenant (tenant_text: the record's,
   text_utf8): "__overflow__" where the caps put it, "invalid" for one no
   org id may be, else tenant_text. */
const char *decoded_org(const char *tenant_text, unsigned over);

#endif
