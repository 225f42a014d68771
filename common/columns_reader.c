/* Records in column form, read.  See columns_reader.h. */

#include <string.h>

#include "columns_reader.h"

static int group_entries(const uint32_t *counts, size_t n, size_t *entries);
static int column_ok(size_t n, size_t want, int required);
static int symbol_column_ok(const uint32_t *refs, size_t n, size_t want,
    size_t n_symbols);
static ProtobufCBinaryData symbol(const Obs__V1__RecordColumns *c,
    const uint32_t *refs, size_t n, size_t i);
static uint64_t u64_at(const uint64_t *v, size_t n, size_t i);
static uint32_t u32_at(const uint32_t *v, size_t n, size_t i);
static ProtobufCBinaryData id_at(const ProtobufCBinaryData *ids, size_t width,
    size_t i);

/* The entries each group has in all, from its count column; 0 if too many. */
static int
group_entries(const uint32_t *counts, size_t n, size_t *entries)
{
    size_t  i;

    *entries = 0;

    for (i = 0; i < n; i++) {
        if (counts[i] > COLUMNS_MAX_ENTRIES) {
            return 0;
        }
        *entries += counts[i];
    }

    return 1;
}

int
columns_valid(const Obs__V1__RecordColumns *c)
{
    size_t  i, n_record = c->count, symbols = c->n_symbol_end;
#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
    size_t  n_##group;
#include "obs/v1/columns.def"

    if (c->n_symbol_end > 0 && c->symbol_end[0] != 0) {
        return 0;       /* symbol 0 is the empty string */
    }

    for (i = 0; i < c->n_symbol_end; i++) {
        if (c->symbol_end[i] > c->symbol_data.len
            || (i > 0 && c->symbol_end[i] < c->symbol_end[i - 1]))
        {
            return 0;
        }
    }

    if (symbols == 0) {
        symbols = 1;    /* only the empty string */
    }

    if (n_record > COLUMNS_MAX_RECORDS) {
        return 0;
    }

#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
    if (!group_entries(c->count, c->n_##count, &n_##group)) {                \
        return 0;                                                             \
    }
#include "obs/v1/columns.def"

    /*
     * Every record and entry must occupy bytes of the datagram, or a
     * 14-byte batch could claim four billion records: each group has
     * required columns (columns.def), present whatever their values.
     */

    return 1
#define OBS_U32(group, column, field, required)                               \
           && column_ok(c->n_##column, n_##group, required)
#define OBS_U64(group, column, field, required)                               \
           && column_ok(c->n_##column, n_##group, required)
#define OBS_BOOL(group, column, field)                                        \
           && column_ok(c->n_##column, n_##group, 0)
#define OBS_SYMBOL(group, column, field, text, max)                           \
           && symbol_column_ok(c->column, c->n_##column, n_##group, symbols)
#define OBS_ID(group, column, field, width)                                   \
           && column_ok(c->column.len, n_##group * (width), 0)
#include "obs/v1/columns.def"
           /* obs_log_field: a field is its name and value, both there */
           && column_ok(c->n_field_name, n_log_field, 1)
           && column_ok(c->n_field_value, n_log_field, 1);
}

void
columns_reader_init(columns_reader_t *rd, const Obs__V1__RecordColumns *c)
{
    rd->c = c;
    rd->next_record = 0;
#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
    rd->next_##group = 0;
#include "obs/v1/columns.def"
}

/*
 * Each record column's entry into r, then each group's entries into the
 * reader's arrays, r's repeated field pointing at them.
 */
int
columns_next(columns_reader_t *rd, Obs__V1__Record *r)
{
    const Obs__V1__RecordColumns  *c = rd->c;
    Obs__V1__Record               *record = r;
    size_t                         k;
#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
    Obs__V1__##Row                *group;
#include "obs/v1/columns.def"

    if (rd->next_record >= c->count) {
        return 0;
    }

    obs__v1__record__init(r);

#define OBS_U32(group, column, field, required)                               \
    group->field = u32_at(c->column, c->n_##column, rd->next_##group);
#define OBS_U64(group, column, field, required)                               \
    group->field = u64_at(c->column, c->n_##column, rd->next_##group);
#define OBS_BOOL(group, column, field)                                        \
    group->field = u32_at(c->column, c->n_##column, rd->next_##group) != 0;
#define OBS_SYMBOL(group, column, field, text, max)                           \
    group->field = symbol(c, c->column, c->n_##column, rd->next_##group);
#define OBS_ID(group, column, field, width)                                   \
    group->field = id_at(&c->column, width, rd->next_##group);
#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
    record->rows = rd->group##_ptrs;                                          \
                                                                              \
    for (k = 0; k < record->n_##rows; k++, rd->next_##group++) {              \
        group = &rd->group[k];                                                \
        obs__v1__##row##__init(group);                                        \
        rd->group##_ptrs[k] = group;
#define OBS_GROUP_END(group)                                                  \
    }
#include "obs/v1/columns.def"

    rd->next_record++;
    return 1;
}

/*
 * A column holds one entry per record (or entry of its group), or none at
 * all unless it is required.
 */
static int
column_ok(size_t n, size_t want, int required)
{
    return n == want || (n == 0 && !required);
}

/* ... and a text column's entries all name a symbol of the table. */
static int
symbol_column_ok(const uint32_t *refs, size_t n, size_t want,
    size_t n_symbols)
{
    size_t  i;

    if (!column_ok(n, want, 0)) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (refs[i] >= n_symbols) {
            return 0;
        }
    }

    return 1;
}

static ProtobufCBinaryData
symbol(const Obs__V1__RecordColumns *c, const uint32_t *refs, size_t n,
    size_t i)
{
    ProtobufCBinaryData  s = { 0, NULL };
    uint32_t             ref, start;

    ref = (i < n) ? refs[i] : 0;

    if (ref == 0 || ref >= c->n_symbol_end) {
        return s;
    }

    start = c->symbol_end[ref - 1];
    s.data = c->symbol_data.data + start;
    s.len = c->symbol_end[ref] - start;
    return s;
}

static uint64_t
u64_at(const uint64_t *v, size_t n, size_t i)
{
    return (i < n) ? v[i] : 0;
}

static uint32_t
u32_at(const uint32_t *v, size_t n, size_t i)
{
    return (i < n) ? v[i] : 0;
}

/* An id column of all-zero entries means "none", as W3C ids are never 0. */
static ProtobufCBinaryData
id_at(const ProtobufCBinaryData *ids, size_t width, size_t i)
{
    ProtobufCBinaryData  id = { 0, NULL };
    size_t               k;

    if (ids->len < (i + 1) * width) {
        return id;
    }

    for (k = 0; k < width; k++) {
        if (ids->data[i * width + k] != 0) {
            id.data = ids->data + i * width;
            id.len = width;
            break;
        }
    }

    return id;
}

void
columns_skip(columns_reader_t *rd)
{
    const Obs__V1__RecordColumns  *c = rd->c;

#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
    rd->next_##group += u32_at(c->count, c->n_##count, rd->next_record);
#include "obs/v1/columns.def"

    rd->next_record++;
}

ProtobufCBinaryData
columns_text(const Obs__V1__RecordColumns *c, const uint32_t *refs, size_t n,
    size_t i)
{
    return symbol(c, refs, n, i);
}
