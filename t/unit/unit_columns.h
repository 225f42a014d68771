/*
 * Batches in column form (obs.v1.RecordColumns) built for a test: the
 * symbol table from a list of texts, then each column from an array, so a
 * test writes only the columns it is about.
 */

#ifndef OBS_UNIT_COLUMNS_H
#define OBS_UNIT_COLUMNS_H

#include <stdint.h>
#include <string.h>

#include "obs/v1/record.pb-c.h"

typedef struct {
    Obs__V1__RecordColumns  c;
    uint8_t                 text[1024];
    uint32_t                ends[64];      /* ends[k]: where symbol k ends */
} unit_columns_t;

/*
 * A batch of count records whose symbols 1, 2, ... are the NULL-terminated
 * texts (symbol 0 is the empty text, as the module's).
 */
static void
unit_columns_init(unit_columns_t *b, uint32_t count,
    const char *const *symbols)
{
    size_t  len = 0, n = 0, i;

    obs__v1__record_columns__init(&b->c);
    b->c.count = count;
    b->ends[n++] = 0;

    for (i = 0; symbols != NULL && symbols[i] != NULL; i++) {
        memcpy(b->text + len, symbols[i], strlen(symbols[i]));
        len += strlen(symbols[i]);
        b->ends[n++] = (uint32_t) len;
    }

    b->c.symbol_data.data = b->text;
    b->c.symbol_data.len = len;
    b->c.symbol_end = b->ends;
    b->c.n_symbol_end = n;
}

/* A repeated column from an array: every entry of it, or the first n. */
#define UNIT_COLUMN(b, column, values)                                        \
    UNIT_COLUMN_N(b, column, values, sizeof(values) / sizeof((values)[0]))
#define UNIT_COLUMN_N(b, column, values, n)                                   \
    ((b)->c.column = (values), (b)->c.n_##column = (n))

/* An id column (bytes, width bytes an entry) from an array. */
#define UNIT_ID_COLUMN(b, column, bytes)                                      \
    ((b)->c.column.data = (bytes), (b)->c.column.len = sizeof(bytes))

#endif
