/* A datagram decoded once for all the exporter threads.  See decoded.h. */

#include <stdlib.h>

#include "decoded.h"
#include "hash.h"

static uint8_t decoded_owner(ProtobufCBinaryData service, uint32_t status,
    ProtobufCBinaryData tenant, int threads, int per_tenant);

int
decoded_init(decoded_t *d, size_t arena_size)
{
    d->batch = NULL;
    d->columns = NULL;
    d->threads = 1;
    d->owner = malloc(DECODED_MAX_RECORDS);

    if (decode_arena_init(&d->arena, arena_size) != 0 || d->owner == NULL) {
        decoded_free(d);
        return -1;
    }

    return 0;
}

void
decoded_free(decoded_t *d)
{
    decode_arena_free(&d->arena);
    free(d->owner);
    d->owner = NULL;
    d->batch = NULL;
}

void
decoded_fill(decoded_t *d, const uint8_t *data, size_t len, int threads,
    int per_tenant)
{
    const Obs__V1__RecordColumns  *c;
    const Obs__V1__Record         *r;
    Obs__V1__Batch                *batch;
    size_t                         i, n;

    decode_arena_reset(&d->arena);
    d->batch = NULL;
    d->columns = NULL;
    d->threads = threads;

    batch = obs__v1__batch__unpack(&d->arena.allocator, len, data);
    if (batch == NULL) {
        return;
    }

    c = batch->columns && columns_valid(batch->columns) ? batch->columns
                                                        : NULL;
    n = batch->n_records + (c ? c->count : 0);
    if (n > DECODED_MAX_RECORDS) {
        return;                 /* more records than bytes: never */
    }

    d->batch = batch;
    d->columns = c;

    /* one thread owns everything: nothing to tag */
    if (threads == 1) {
        return;
    }

    for (i = 0; i < batch->n_records; i++) {
        r = batch->records[i];
        d->owner[i] = decoded_owner(r->service, r->status, r->tenant,
                                    threads, per_tenant);
    }

    /* validated: the status column is there, an entry per record */
    for (i = 0; c && i < c->count; i++) {
        d->owner[batch->n_records + i] =
            decoded_owner(columns_text(c, c->service, c->n_service, i),
                          c->status[i],
                          columns_text(c, c->tenant, c->n_tenant, i),
                          threads, per_tenant);
    }
}

void
decoded_read(decoded_reader_t *rd, const decoded_t *d, int thread)
{
    rd->d = d;
    rd->next = 0;
    rd->thread = thread;

    if (d->columns) {
        columns_reader_init(&rd->columns, d->columns);
    }
}

const Obs__V1__Record *
decoded_next(decoded_reader_t *rd)
{
    const decoded_t  *d = rd->d;
    size_t            rows, all;

    if (d->batch == NULL) {
        return NULL;
    }

    rows = d->batch->n_records;
    all = rows + (d->columns ? d->columns->count : 0);

    for ( /* void */ ; rd->next < all; rd->next++) {
        if (d->threads > 1 && d->owner[rd->next] != rd->thread) {
            if (rd->next >= rows) {
                columns_skip(&rd->columns);
            }
            continue;
        }

        if (rd->next < rows) {
            return d->batch->records[rd->next++];
        }

        rd->next++;
        columns_next(&rd->columns, &rd->record);
        return &rd->record;
    }

    return NULL;
}

/*
 * A record belongs to the thread of its Loki stream: service, the level
 * log_level() gives its status and, with per-tenant org ids, tenant.
 */
static uint8_t
decoded_owner(ProtobufCBinaryData service, uint32_t status,
    ProtobufCBinaryData tenant, int threads, int per_tenant)
{
    uint64_t  h;

    h = hash_bytes(service.data, service.len,
                   status >= 500 ? 2 : status >= 400 ? 1 : 0);
    if (per_tenant) {
        h = hash_bytes(tenant.data, tenant.len, h);
    }

    return (uint8_t) (h % (uint64_t) threads);
}
