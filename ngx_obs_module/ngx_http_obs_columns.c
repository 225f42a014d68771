/*
 * The column wire format's writer (its reader, for the sidecar and the
 * exporters, is common/columns_reader.c): the worker's open batch in column
 * form (obs.v1.RecordColumns).  Adding a
 * record is a handful of stores and the interning of its text; protobuf-c
 * packs the whole batch once, fixed-width columns by a single copy each.
 * Text is interned in the batch's symbol table: text that lives as long as
 * the worker (configuration, static names) by its address alone, other
 * repeating text (a client's address and user agent, ...) by content;
 * text that is nearly always new (path, request id, tracestate) is appended
 * without a lookup.  The
 * columns, their arrays and the size bound are generated from the column
 * list, proto/obs/v1/columns.def.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_module.h"
#include "obs/v1/record.pb-c.h"


#define NGX_HTTP_OBS_BATCH_RECORDS    512
#define NGX_HTTP_OBS_BATCH_SYMBOLS    8192
#define NGX_HTTP_OBS_CONTENT_SLOTS    1024      /* a power of two */
#define NGX_HTTP_OBS_ADDRESS_SLOTS    64        /* a power of two */

/* symbols interned by content stop at 3/4 load; later ones are appended */
#define NGX_HTTP_OBS_CONTENT_MAX      (NGX_HTTP_OBS_CONTENT_SLOTS / 4 * 3)

/* the interning shortcuts are worth inlining at each of their call sites */
#if defined(__GNUC__)
#define ngx_http_obs_hot  ngx_inline __attribute__((always_inline))
#else
#define ngx_http_obs_hot  ngx_inline
#endif

/* the encoded bytes of a symbol's end; its text is counted apart */
#define NGX_HTTP_OBS_SYMBOL_WIDTH     4


/*
 * Constants per group of columns (proto/obs/v1/columns.def), the group
 * "record" first: each OBS_GROUP line starts the next group's constant and
 * each column adds to the current one.
 */

/* entries of the group one batch holds */
enum {
    ngx_http_obs_batch_record = NGX_HTTP_OBS_BATCH_RECORDS
#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
    , ngx_http_obs_batch_##group = (batch)
#include "obs/v1/columns.def"
};

/* the most entries of the group one record has */
enum {
    ngx_http_obs_max_record = 1
#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
    , ngx_http_obs_max_##group = (max)
#include "obs/v1/columns.def"
};

/* encoded bytes one entry adds to its columns, besides new symbols */
enum {
    ngx_http_obs_width_record = 0
#define OBS_U32(group, column, field, required)      + 4
#define OBS_U64(group, column, field, required)      + 8
#define OBS_BOOL(group, column, field)               + 4
#define OBS_SYMBOL(group, column, field, text, max)  + 4
#define OBS_ID(group, column, field, width)          + (width)
#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
    , ngx_http_obs_width_##group = 0
#include "obs/v1/columns.def"
};

/*
 * ... of which the audit trail's section adds its count to a record (a
 * group's count column is OBS_U32, columns.def says), and the rest
 */
#define ngx_http_obs_width_audit_count  4
#define ngx_http_obs_width_plain                                             \
    (ngx_http_obs_width_record - ngx_http_obs_width_audit_count)

/* symbols one entry may add (one per text column) ... */
enum {
    ngx_http_obs_symbols_record = 0
#define OBS_SYMBOL(group, column, field, text, max)  + 1
#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
    , ngx_http_obs_symbols_##group = 0
#include "obs/v1/columns.def"
};

/* ... and the most bytes of text it keeps */
enum {
    ngx_http_obs_text_record = 0
#define OBS_SYMBOL(group, column, field, text, max)  + (max)
#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
    , ngx_http_obs_text_##group = 0
#include "obs/v1/columns.def"
};

/* the fields of RecordColumns besides count: symbols and columns */
enum {
    ngx_http_obs_fields = 2
#define OBS_U32(group, column, field, required)      + 1
#define OBS_U64(group, column, field, required)      + 1
#define OBS_BOOL(group, column, field)               + 1
#define OBS_SYMBOL(group, column, field, text, max)  + 1
#define OBS_ID(group, column, field, width)          + 1
#include "obs/v1/columns.def"
};

/* the most bytes an entry of the group adds, text included */
#define ngx_http_obs_entry_bound(group)                                      \
    (ngx_http_obs_width_##group                                              \
     + NGX_HTTP_OBS_SYMBOL_WIDTH * ngx_http_obs_symbols_##group              \
     + ngx_http_obs_text_##group)

/* the largest record: most entries in every group, longest text */
enum {
    ngx_http_obs_record_max = ngx_http_obs_entry_bound(record)
#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
        + (max) * ngx_http_obs_entry_bound(group)
#include "obs/v1/columns.def"
};

/* ... its text ... */
enum {
    ngx_http_obs_text_max = ngx_http_obs_text_record
#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
        + (max) * ngx_http_obs_text_##group
#include "obs/v1/columns.def"
};

/* ... and its symbols */
enum {
    ngx_http_obs_symbols_max = ngx_http_obs_symbols_record
#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
        + (max) * ngx_http_obs_symbols_##group
#include "obs/v1/columns.def"
};

/*
 * Every field's key (field numbers stay below 2048) and length (a datagram
 * stays below 2 MB) at their longest, the count's key and value, and the
 * empty string's symbol end.
 */
#define NGX_HTTP_OBS_COLUMNS_FIXED                                           \
    (ngx_http_obs_fields * (2 + 3) + 1 + 5 + NGX_HTTP_OBS_SYMBOL_WIDTH)

/* the largest record fits a datagram of the largest size, alone */
typedef char ngx_http_obs_record_fits_datagram[
    NGX_HTTP_OBS_COLUMNS_FIXED + ngx_http_obs_record_max
    <= NGX_HTTP_OBS_MAX_DATAGRAM - NGX_HTTP_OBS_DATAGRAM_OVERHEAD ? 1 : -1];


typedef struct {
    uint32_t                 hash;
    uint32_t                 symbol;        /* 0: a free slot */
} ngx_http_obs_content_slot_t;


typedef struct {
    const u_char            *data;
    size_t                   len;
    uint32_t                 symbol;
} ngx_http_obs_address_slot_t;


/*
 * One array per column, as long as its group's entries in a batch, and
 * the count of entries each group has.
 */
struct ngx_http_obs_columns_s {
    Obs__V1__RecordColumns   msg;
    size_t                   size;          /* bound of the packed size */
    ngx_uint_t               interned;      /* symbols in content slots */

    u_char                  *symbol_data;
    size_t                   symbol_data_size;
    uint32_t                 symbol_end[NGX_HTTP_OBS_BATCH_SYMBOLS];

    size_t                   n_record;
#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
    size_t                   n_##group;
#include "obs/v1/columns.def"

#define OBS_U32(group, column, field, required)                               \
    uint32_t                 column[ngx_http_obs_batch_##group];
#define OBS_U64(group, column, field, required)                               \
    uint64_t                 column[ngx_http_obs_batch_##group];
#define OBS_BOOL(group, column, field)                                        \
    uint32_t                 column[ngx_http_obs_batch_##group];
#define OBS_SYMBOL(group, column, field, text, max)                           \
    uint32_t                 column[ngx_http_obs_batch_##group];
#define OBS_ID(group, column, field, width)                                   \
    u_char                   column[ngx_http_obs_batch_##group][width];
#include "obs/v1/columns.def"

    ngx_http_obs_content_slot_t  content[NGX_HTTP_OBS_CONTENT_SLOTS];
    ngx_http_obs_address_slot_t  address[NGX_HTTP_OBS_ADDRESS_SLOTS];
};


static ngx_http_obs_hot uint32_t ngx_http_obs_symbol_stable(
    ngx_http_obs_columns_t *cols, ngx_str_t *s, uint32_t *column, size_t n,
    ngx_uint_t stable);
static ngx_http_obs_hot uint32_t ngx_http_obs_symbol_config(
    ngx_http_obs_columns_t *cols, ngx_str_t *s, uint32_t *column, size_t n,
    ngx_uint_t stable);
static ngx_http_obs_hot uint32_t ngx_http_obs_symbol_repeats(
    ngx_http_obs_columns_t *cols, ngx_str_t *s, uint32_t *column, size_t n,
    ngx_uint_t stable);
static ngx_http_obs_hot uint32_t ngx_http_obs_symbol_unique(
    ngx_http_obs_columns_t *cols, ngx_str_t *s, uint32_t *column, size_t n,
    ngx_uint_t stable);
static ngx_http_obs_hot uint32_t ngx_http_obs_intern(
    ngx_http_obs_columns_t *cols, ngx_str_t *s, ngx_uint_t stable,
    uint32_t *column, size_t n);
static uint32_t ngx_http_obs_intern_address(ngx_http_obs_columns_t *cols,
    ngx_str_t *s, ngx_http_obs_address_slot_t *slot,
    ngx_http_obs_address_slot_t *pair);
static uint32_t ngx_http_obs_intern_content(ngx_http_obs_columns_t *cols,
    ngx_str_t *s);
static uint32_t ngx_http_obs_append_symbol(ngx_http_obs_columns_t *cols,
    ngx_str_t *s);
static ngx_inline void ngx_http_obs_id(u_char *to, u_char *id, size_t width);
static ngx_http_obs_hot uint32_t ngx_http_obs_symbol_hash(const u_char *p,
    size_t len);
static size_t ngx_http_obs_record_bound(ngx_http_obs_record_t *record);


ngx_http_obs_columns_t *
ngx_http_obs_columns_create(ngx_pool_t *pool, size_t datagram_size)
{
    ngx_http_obs_columns_t  *cols;

    cols = ngx_palloc(pool, sizeof(ngx_http_obs_columns_t));
    if (cols == NULL) {
        return NULL;
    }

    cols->symbol_data = ngx_palloc(pool, datagram_size);
    if (cols->symbol_data == NULL) {
        return NULL;
    }

    cols->symbol_data_size = datagram_size;

    ngx_http_obs_columns_reset(cols);

    return cols;
}


/* Empties the batch; symbol 0, the empty string, is always there. */

void
ngx_http_obs_columns_reset(ngx_http_obs_columns_t *cols)
{
    Obs__V1__RecordColumns  *m;

    m = &cols->msg;
    obs__v1__record_columns__init(m);

    m->symbol_data.data = cols->symbol_data;
    m->symbol_end = cols->symbol_end;
    cols->symbol_end[0] = 0;
    m->n_symbol_end = 1;

    cols->n_record = 0;

#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
    cols->n_##group = 0;
#define OBS_U32(group, column, field, required)                               \
    m->column = cols->column;
#define OBS_U64(group, column, field, required)                               \
    m->column = cols->column;
#define OBS_BOOL(group, column, field)                                        \
    m->column = cols->column;
#define OBS_SYMBOL(group, column, field, text, max)                           \
    m->column = cols->column;
#define OBS_ID(group, column, field, width)                                   \
    m->column.data = cols->column[0];
#include "obs/v1/columns.def"

    cols->size = NGX_HTTP_OBS_COLUMNS_FIXED;
    cols->interned = 0;

    ngx_memzero(cols->content, sizeof(cols->content));
    ngx_memzero(cols->address, sizeof(cols->address));
}


ngx_uint_t
ngx_http_obs_columns_count(ngx_http_obs_columns_t *cols)
{
    return cols->n_record;
}


/* The most bytes any record adds to a batch. */

size_t
ngx_http_obs_columns_record_max(void)
{
    return NGX_HTTP_OBS_COLUMNS_FIXED + ngx_http_obs_record_max;
}


/*
 * Tells whether the record fits in the batch, which must stay within limit
 * bytes packed.  Until the batch nears the limit, the largest record
 * possible is assumed rather than this one measured.  The record's audit
 * event, if any, is ngx_http_obs_columns_fits_audit()'s.
 */

ngx_int_t
ngx_http_obs_columns_fits(ngx_http_obs_columns_t *cols,
    ngx_http_obs_record_t *record, size_t limit)
{
    size_t                   symbols;
    Obs__V1__RecordColumns  *m = &cols->msg;

    symbols = ngx_http_obs_symbols_record
#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
              + record->n_##rows * ngx_http_obs_symbols_##group
#define OBS_COLUMNS_NO_AUDIT
#include "obs/v1/columns.def"
              ;

    if (cols->n_record >= ngx_http_obs_batch_record
#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
        || cols->n_##group + record->n_##rows > ngx_http_obs_batch_##group
#define OBS_COLUMNS_NO_AUDIT
#include "obs/v1/columns.def"
        || m->n_symbol_end + symbols > NGX_HTTP_OBS_BATCH_SYMBOLS)
    {
        return 0;
    }

    if (cols->size + ngx_http_obs_record_max <= limit
        && m->symbol_data.len + ngx_http_obs_text_max
           <= cols->symbol_data_size)
    {
        return 1;
    }

    return cols->size + ngx_http_obs_record_bound(record) <= limit;
}


/* The same for a record with an audit event, its largest assumed. */

ngx_int_t
ngx_http_obs_columns_fits_audit(ngx_http_obs_columns_t *cols,
    ngx_http_obs_record_t *record, size_t limit)
{
    size_t  audit;

    audit = ngx_http_obs_width_audit_count
            + record->n_audit * ngx_http_obs_entry_bound(audit);

    if (cols->n_audit + record->n_audit > ngx_http_obs_batch_audit
        || cols->msg.n_symbol_end + ngx_http_obs_symbols_max
           > NGX_HTTP_OBS_BATCH_SYMBOLS
        || audit >= limit)
    {
        return 0;
    }

    return ngx_http_obs_columns_fits(cols, record, limit - audit);
}


/*
 * Appends a record that ngx_http_obs_columns_fits() accepted: an entry of
 * each record column, then the entries of each group; the audit trail's
 * section is left out (a batch without it has no audit_count column).
 */

void
ngx_http_obs_columns_add(ngx_http_obs_columns_t *cols,
    ngx_http_obs_record_t *record)
{
#define NGX_HTTP_OBS_ADD_AUDIT  0
#include "ngx_http_obs_columns_add.h"
}


/*
 * Appends a record with its audit event (ngx_http_obs_columns_fits_audit()
 * accepted it): the record, then the audit trail's section.  Every record
 * of such a batch has one.
 */

void
ngx_http_obs_columns_add_audit(ngx_http_obs_columns_t *cols,
    ngx_http_obs_record_t *record)
{
#define NGX_HTTP_OBS_ADD_AUDIT  1
#include "ngx_http_obs_columns_add.h"
}


/* The bound of the packed size that admitting records was measured on. */

size_t
ngx_http_obs_columns_bound(ngx_http_obs_columns_t *cols)
{
    return cols->size;
}


/* Returns the exact packed size of the batch. */

size_t
ngx_http_obs_columns_packed_size(ngx_http_obs_columns_t *cols)
{
    Obs__V1__RecordColumns  *m = &cols->msg;

    /* every column is as long as its group's entries */

#define OBS_U32(group, column, field, required)                               \
    m->n_##column = cols->n_##group;
#define OBS_U64(group, column, field, required)                               \
    m->n_##column = cols->n_##group;
#define OBS_BOOL(group, column, field)                                        \
    m->n_##column = cols->n_##group;
#define OBS_SYMBOL(group, column, field, text, max)                           \
    m->n_##column = cols->n_##group;
#define OBS_ID(group, column, field, width)                                   \
    m->column.len = cols->n_##group * (width);
#include "obs/v1/columns.def"

    /* a batch of access records has no audit section at all */

    if (cols->n_audit == 0) {
        m->n_audit_count = 0;
    }

    return obs__v1__record_columns__get_packed_size(m);
}


/* Packs the batch, sized first, to out, which has room for it. */

size_t
ngx_http_obs_columns_pack(ngx_http_obs_columns_t *cols, u_char *out)
{
    return obs__v1__record_columns__pack(&cols->msg, out);
}


/*
 * A text column's entry, by how the column's text lives (columns.def):
 * text known by its address, text that is so when the record says, other
 * text that repeats, and text that is nearly always new.
 */

static ngx_http_obs_hot uint32_t
ngx_http_obs_symbol_stable(ngx_http_obs_columns_t *cols, ngx_str_t *s,
    uint32_t *column, size_t n, ngx_uint_t stable)
{
    return ngx_http_obs_intern(cols, s, 1, column, n);
}


static ngx_http_obs_hot uint32_t
ngx_http_obs_symbol_config(ngx_http_obs_columns_t *cols, ngx_str_t *s,
    uint32_t *column, size_t n, ngx_uint_t stable)
{
    return ngx_http_obs_intern(cols, s, stable, column, n);
}


static ngx_http_obs_hot uint32_t
ngx_http_obs_symbol_repeats(ngx_http_obs_columns_t *cols, ngx_str_t *s,
    uint32_t *column, size_t n, ngx_uint_t stable)
{
    return ngx_http_obs_intern(cols, s, 0, column, n);
}


static ngx_http_obs_hot uint32_t
ngx_http_obs_symbol_unique(ngx_http_obs_columns_t *cols, ngx_str_t *s,
    uint32_t *column, size_t n, ngx_uint_t stable)
{
    return ngx_http_obs_append_symbol(cols, s);
}


/*
 * Interns text for entry n of a column.  Two shortcuts, inlined, spare most
 * lookups: text that outlives the batch (stable) is known by its address
 * and length, and other text is usually what the entry before it holds.
 */

static ngx_http_obs_hot uint32_t
ngx_http_obs_intern(ngx_http_obs_columns_t *cols, ngx_str_t *s,
    ngx_uint_t stable, uint32_t *column, size_t n)
{
    uint32_t                      prev, start;
    ngx_uint_t                    i;
    ngx_http_obs_address_slot_t  *slot, *pair;

    if (s->len == 0) {
        return 0;
    }

    if (stable) {
        i = ((uintptr_t) s->data >> 3) & (NGX_HTTP_OBS_ADDRESS_SLOTS - 1);
        slot = &cols->address[i];

        if (slot->data == s->data && slot->len == s->len) {
            return slot->symbol;
        }

        /*
         * Two texts of every record whose addresses share a slot would
         * otherwise evict each other record after record, and both be
         * looked up by content each time: which texts do depends on where
         * the configuration happened to put them.
         */

        pair = &cols->address[i ^ 1];

        if (pair->data == s->data && pair->len == s->len) {
            return pair->symbol;
        }

        return ngx_http_obs_intern_address(cols, s, slot, pair);
    }

    prev = n ? column[n - 1] : 0;

    if (prev) {
        start = cols->symbol_end[prev - 1];

        if (cols->symbol_end[prev] - start == s->len
            && ngx_http_obs_same(cols->symbol_data + start, s->data, s->len))
        {
            return prev;
        }
    }

    return ngx_http_obs_intern_content(cols, s);
}


/* The text takes the slot; the slot's text before it moves to the pair. */

static uint32_t
ngx_http_obs_intern_address(ngx_http_obs_columns_t *cols, ngx_str_t *s,
    ngx_http_obs_address_slot_t *slot, ngx_http_obs_address_slot_t *pair)
{
    if (slot->data) {
        *pair = *slot;
    }

    slot->data = s->data;
    slot->len = s->len;
    slot->symbol = ngx_http_obs_intern_content(cols, s);

    return slot->symbol;
}


static uint32_t
ngx_http_obs_intern_content(ngx_http_obs_columns_t *cols, ngx_str_t *s)
{
    size_t                        start;
    uint32_t                      hash, i;
    ngx_http_obs_content_slot_t  *slot;

    if (s->len == 0) {
        return 0;
    }

    if (cols->interned >= NGX_HTTP_OBS_CONTENT_MAX) {
        return ngx_http_obs_append_symbol(cols, s);
    }

    hash = ngx_http_obs_symbol_hash(s->data, s->len);

    for (i = hash; /* void */; i++) {
        slot = &cols->content[i & (NGX_HTTP_OBS_CONTENT_SLOTS - 1)];

        if (slot->symbol == 0) {
            break;
        }

        if (slot->hash != hash) {
            continue;
        }

        start = cols->symbol_end[slot->symbol - 1];

        if (cols->symbol_end[slot->symbol] - start == s->len
            && ngx_http_obs_same(cols->symbol_data + start, s->data, s->len))
        {
            return slot->symbol;
        }
    }

    slot->hash = hash;
    slot->symbol = ngx_http_obs_append_symbol(cols, s);
    cols->interned++;

    return slot->symbol;
}


static uint32_t
ngx_http_obs_append_symbol(ngx_http_obs_columns_t *cols, ngx_str_t *s)
{
    uint32_t                 symbol;
    Obs__V1__RecordColumns  *m = &cols->msg;

    if (s->len == 0) {
        return 0;
    }

    ngx_memcpy(cols->symbol_data + m->symbol_data.len, s->data, s->len);
    m->symbol_data.len += s->len;

    symbol = m->n_symbol_end++;
    cols->symbol_end[symbol] = m->symbol_data.len;

    return symbol;
}


/* The symbol hash for other files (the in-flight table's keys). */

uint32_t
ngx_http_obs_hash(const u_char *p, size_t len)
{
    return ngx_http_obs_symbol_hash(p, len);
}


/* The symbol hash: the sidecar's, so that one algorithm serves both. */

static ngx_http_obs_hot uint32_t
ngx_http_obs_symbol_hash(const u_char *p, size_t len)
{
    return (uint32_t) hash_bytes(p, len, 0);
}


/* The most bytes this record adds, measured (its audit event aside). */

static size_t
ngx_http_obs_record_bound(ngx_http_obs_record_t *record)
{
    size_t      size;
    ngx_uint_t  i;
#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
    ngx_http_obs_##group##_t  *group;
#define OBS_COLUMNS_NO_AUDIT
#include "obs/v1/columns.def"

    size = ngx_http_obs_width_plain
           + ngx_http_obs_symbols_record * NGX_HTTP_OBS_SYMBOL_WIDTH;

#define OBS_SYMBOL(group, column, field, text, max)                           \
    size += group->field.len;
#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
    size += record->n_##rows * (ngx_http_obs_width_##group                    \
                                + ngx_http_obs_symbols_##group                \
                                  * NGX_HTTP_OBS_SYMBOL_WIDTH);               \
                                                                              \
    for (i = 0; i < record->n_##rows; i++) {                                  \
        group = &record->rows[i];
#define OBS_GROUP_END(group)                                                  \
    }
#define OBS_COLUMNS_NO_AUDIT
#include "obs/v1/columns.def"

    return size;
}


/* An id column's entry: the id, or zeros for none. */

static ngx_inline void
ngx_http_obs_id(u_char *to, u_char *id, size_t width)
{
    if (id) {
        ngx_memcpy(to, id, width);

    } else {
        ngx_memzero(to, width);
    }
}
