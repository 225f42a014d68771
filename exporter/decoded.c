/* A datagram decoded once for all the exporter threads.  See decoded.h. */

#include <stdlib.h>
#include <string.h>

#include "decoded.h"
#include "hash.h"
#include "label_rules.h"
#include "logline.h"
#include "loki.h"
#include "text.h"

static uint8_t decoded_owner(ProtobufCBinaryData service, uint32_t status,
    ProtobufCBinaryData tenant, unsigned over, int threads, int per_tenant);

int
decoded_init(decoded_t *d, size_t arena_size)
{
    d->batch = NULL;
    d->columns = NULL;
    d->threads = 1;
    d->has_over = 0;
    d->owner = malloc(DECODED_MAX_RECORDS);
    d->over = malloc(LABEL_OVER_BYTES(DECODED_MAX_RECORDS));

    if (decode_arena_init(&d->arena, arena_size) != 0 || d->owner == NULL
        || d->over == NULL)
    {
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
    free(d->over);
    d->owner = NULL;
    d->over = NULL;
    d->batch = NULL;
}

void
decoded_fill(decoded_t *d, const uint8_t *data, size_t len,
    const uint8_t *over, int threads, int per_tenant)
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
    d->has_over = over != NULL;
    if (over) {
        memcpy(d->over, over, LABEL_OVER_BYTES(n));
    }
    over = d->has_over ? d->over : NULL;

    /* one thread owns everything: nothing to tag */
    if (threads == 1) {
        return;
    }

    for (i = 0; i < batch->n_records; i++) {
        r = batch->records[i];
        d->owner[i] = decoded_owner(r->service, r->status, r->tenant,
                                    label_over_get(over, i), threads,
                                    per_tenant);
    }

    /* validated: the status column is there, an entry per record */
    for (i = 0; c && i < c->count; i++) {
        d->owner[batch->n_records + i] =
            decoded_owner(columns_text(c, c->service, c->n_service, i),
                          c->status[i],
                          columns_text(c, c->tenant, c->n_tenant, i),
                          label_over_get(over, batch->n_records + i),
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

        rd->current = rd->next;
        if (rd->next < rows) {
            return d->batch->records[rd->next++];
        }

        rd->next++;
        columns_next(&rd->columns, &rd->record);
        return &rd->record;
    }

    return NULL;
}

unsigned
decoded_over(const decoded_reader_t *rd)
{
    return rd->d->has_over ? label_over_get(rd->d->over, rd->current) : 0;
}

size_t
decoded_service_label(ProtobufCBinaryData service, unsigned over, char *out)
{
    size_t  n;

    if (over & LABEL_OVER_SERVICE) {
        n = sizeof(LABEL_OVERFLOW_TEXT) - 1;
        memcpy(out, LABEL_OVERFLOW_TEXT, n + 1);

    } else if ((n = label_sanitize(service.data, service.len, out)) == 0) {
        n = sizeof("unknown") - 1;
        memcpy(out, "unknown", n + 1);
    }

    return n;
}

const char *
decoded_org(const char *tenant_text, unsigned over)
{
    if (over & LABEL_OVER_TENANT) {
        return LABEL_OVERFLOW_TEXT;
    }

    return org_id_valid(tenant_text) ? tenant_text : TENANT_INVALID;
}

/*
 * A record belongs to the thread of its Loki stream: its service's label,
 * the level log_level() gives its status and, with per-tenant org ids, its
 * org: the values the stream is made of, not the bytes the record
 * carries (two services one label are one stream).
 */
static uint8_t
decoded_owner(ProtobufCBinaryData service, uint32_t status,
    ProtobufCBinaryData tenant, unsigned over, int threads, int per_tenant)
{
    char         label[LABEL_BUF_LEN], text[LOKI_TENANT_MAX];
    const char  *org;
    size_t       n;
    uint64_t     h;

    n = decoded_service_label(service, over, label);
    h = hash_bytes(label, n, (uint64_t) (unsigned char) log_level(status)[0]);

    if (per_tenant) {
        text_utf8(tenant.data, tenant.len, text, sizeof(text));
        org = decoded_org(text, over);
        h = hash_bytes(org, strlen(org), h);
    }

    return (uint8_t) (h % (uint64_t) threads);
}
