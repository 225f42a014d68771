/*
 * The worker's open batch in column form (obs.v1.RecordColumns).  Adding a
 * record is a handful of stores and the interning of its text; protobuf-c
 * packs the whole batch once, fixed-width columns by a single copy each.
 * Text is interned in the batch's symbol table: text that lives as long as
 * the worker (configuration, static names) by its address alone, other
 * repeating text by content; text that is nearly always new (path, user
 * agent, request id, tracestate) is appended without a lookup.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_module.h"
#include "obs/v1/record.pb-c.h"


#define NGX_HTTP_OBS_BATCH_RECORDS    512
#define NGX_HTTP_OBS_BATCH_ATTEMPTS   1024
#define NGX_HTTP_OBS_BATCH_FIELDS     2048      /* obs_log_field entries */
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

/* text fields of a record, each a symbol (attempts add one each) */
#define NGX_HTTP_OBS_RECORD_SYMBOLS   13

/* encoded bytes one record adds besides its new symbols */
#define NGX_HTTP_OBS_RECORD_WIDTH     (6 * 8 + 19 * 4 + 32)
#define NGX_HTTP_OBS_ATTEMPT_WIDTH    (3 * 4 + 4 * 8 + 8)
#define NGX_HTTP_OBS_FIELD_WIDTH      (2 * 4)   /* name and value */
#define NGX_HTTP_OBS_SYMBOL_WIDTH     4

/* every field's key and length at their longest, and the count */
#define NGX_HTTP_OBS_COLUMNS_FIXED    (41 * (2 + 3) + 6)

/*
 * the most bytes a record with these attempts, obs_log_fields (each two
 * symbols) and this much text adds
 */
#define ngx_http_obs_record_bound(attempts, fields, text)                    \
    (NGX_HTTP_OBS_RECORD_WIDTH                                               \
     + (attempts) * (NGX_HTTP_OBS_ATTEMPT_WIDTH + NGX_HTTP_OBS_SYMBOL_WIDTH) \
     + (fields) * (NGX_HTTP_OBS_FIELD_WIDTH + 2 * NGX_HTTP_OBS_SYMBOL_WIDTH) \
     + NGX_HTTP_OBS_RECORD_SYMBOLS * NGX_HTTP_OBS_SYMBOL_WIDTH + (text))


typedef struct {
    uint32_t                 hash;
    uint32_t                 symbol;        /* 0: a free slot */
} ngx_http_obs_content_slot_t;


typedef struct {
    const u_char            *data;
    size_t                   len;
    uint32_t                 symbol;
} ngx_http_obs_address_slot_t;


struct ngx_http_obs_columns_s {
    Obs__V1__RecordColumns   msg;
    size_t                   size;          /* bound of the packed size */
    ngx_uint_t               interned;      /* symbols in content slots */

    u_char                  *symbol_data;
    size_t                   symbol_data_size;
    uint32_t                 symbol_end[NGX_HTTP_OBS_BATCH_SYMBOLS];

    uint64_t                 start_time[NGX_HTTP_OBS_BATCH_RECORDS];
    uint64_t                 duration[NGX_HTTP_OBS_BATCH_RECORDS];
    uint32_t                 method[NGX_HTTP_OBS_BATCH_RECORDS];
    uint32_t                 route[NGX_HTTP_OBS_BATCH_RECORDS];
    uint32_t                 path[NGX_HTTP_OBS_BATCH_RECORDS];
    uint32_t                 status[NGX_HTTP_OBS_BATCH_RECORDS];
    uint64_t                 request_bytes[NGX_HTTP_OBS_BATCH_RECORDS];
    uint64_t                 response_bytes[NGX_HTTP_OBS_BATCH_RECORDS];
    uint64_t                 request_body[NGX_HTTP_OBS_BATCH_RECORDS];
    uint64_t                 response_body[NGX_HTTP_OBS_BATCH_RECORDS];
    uint32_t                 upstream_name[NGX_HTTP_OBS_BATCH_RECORDS];
    uint32_t                 tenant[NGX_HTTP_OBS_BATCH_RECORDS];
    uint32_t                 service[NGX_HTTP_OBS_BATCH_RECORDS];
    uint32_t                 client_address[NGX_HTTP_OBS_BATCH_RECORDS];
    uint32_t                 user_agent[NGX_HTTP_OBS_BATCH_RECORDS];
    uint32_t                 request_id[NGX_HTTP_OBS_BATCH_RECORDS];
    u_char                   trace_id[NGX_HTTP_OBS_BATCH_RECORDS]
                                     [OBS_TRACE_ID_LEN];
    u_char                   span_id[NGX_HTTP_OBS_BATCH_RECORDS]
                                    [OBS_SPAN_ID_LEN];
    u_char                   parent_id[NGX_HTTP_OBS_BATCH_RECORDS]
                                      [OBS_SPAN_ID_LEN];
    uint32_t                 trace_flags[NGX_HTTP_OBS_BATCH_RECORDS];
    uint32_t                 tracestate[NGX_HTTP_OBS_BATCH_RECORDS];
    uint32_t                 scheme[NGX_HTTP_OBS_BATCH_RECORDS];
    uint32_t                 server_address[NGX_HTTP_OBS_BATCH_RECORDS];
    uint32_t                 server_port[NGX_HTTP_OBS_BATCH_RECORDS];
    uint32_t                 protocol[NGX_HTTP_OBS_BATCH_RECORDS];
    uint32_t                 upstream_span[NGX_HTTP_OBS_BATCH_RECORDS];
    uint32_t                 attempts[NGX_HTTP_OBS_BATCH_RECORDS];

    uint32_t                 attempt_address[NGX_HTTP_OBS_BATCH_ATTEMPTS];
    uint32_t                 attempt_status[NGX_HTTP_OBS_BATCH_ATTEMPTS];
    uint64_t                 attempt_connect[NGX_HTTP_OBS_BATCH_ATTEMPTS];
    uint64_t                 attempt_header[NGX_HTTP_OBS_BATCH_ATTEMPTS];
    uint64_t                 attempt_response[NGX_HTTP_OBS_BATCH_ATTEMPTS];
    uint64_t                 attempt_bytes[NGX_HTTP_OBS_BATCH_ATTEMPTS];
    uint32_t                 attempt_error[NGX_HTTP_OBS_BATCH_ATTEMPTS];
    u_char                   attempt_span_id[NGX_HTTP_OBS_BATCH_ATTEMPTS]
                                            [OBS_SPAN_ID_LEN];

    /* obs_log_field: per record, then name and value per field */
    uint32_t                 field_count[NGX_HTTP_OBS_BATCH_RECORDS];
    uint32_t                 field_name[NGX_HTTP_OBS_BATCH_FIELDS];
    uint32_t                 field_value[NGX_HTTP_OBS_BATCH_FIELDS];

    ngx_http_obs_content_slot_t  content[NGX_HTTP_OBS_CONTENT_SLOTS];
    ngx_http_obs_address_slot_t  address[NGX_HTTP_OBS_ADDRESS_SLOTS];
};


static void ngx_http_obs_columns_add_attempts(ngx_http_obs_columns_t *cols,
    ngx_http_obs_record_t *rec);
static void ngx_http_obs_columns_add_fields(ngx_http_obs_columns_t *cols,
    ngx_http_obs_record_t *rec);
static ngx_http_obs_hot uint32_t ngx_http_obs_intern(
    ngx_http_obs_columns_t *cols, ngx_str_t *s, ngx_uint_t stable,
    uint32_t *column, size_t n);
static uint32_t ngx_http_obs_intern_address(ngx_http_obs_columns_t *cols,
    ngx_str_t *s, ngx_http_obs_address_slot_t *slot);
static uint32_t ngx_http_obs_intern_content(ngx_http_obs_columns_t *cols,
    ngx_str_t *s);
static uint32_t ngx_http_obs_append_symbol(ngx_http_obs_columns_t *cols,
    ngx_str_t *s);
static uint32_t ngx_http_obs_symbol_hash(const u_char *p, size_t len);
static ngx_inline ngx_uint_t ngx_http_obs_same(const u_char *a,
    const u_char *b, size_t len);
static ngx_inline uint64_t ngx_http_obs_mix(uint64_t h, uint64_t w);
static ngx_inline uint64_t ngx_http_obs_load8(const u_char *p);
static ngx_inline uint64_t ngx_http_obs_load_short(const u_char *p,
    size_t len);
static size_t ngx_http_obs_record_text(ngx_http_obs_record_t *rec);


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

    m->start_time_unix_nano = cols->start_time;
    m->duration_us = cols->duration;
    m->method = cols->method;
    m->route = cols->route;
    m->path = cols->path;
    m->status = cols->status;
    m->request_bytes = cols->request_bytes;
    m->response_bytes = cols->response_bytes;
    m->request_body_bytes = cols->request_body;
    m->response_body_bytes = cols->response_body;
    m->upstream_name = cols->upstream_name;
    m->tenant = cols->tenant;
    m->service = cols->service;
    m->client_address = cols->client_address;
    m->user_agent = cols->user_agent;
    m->request_id = cols->request_id;
    m->trace_id.data = cols->trace_id[0];
    m->span_id.data = cols->span_id[0];
    m->parent_span_id.data = cols->parent_id[0];
    m->trace_flags = cols->trace_flags;
    m->tracestate = cols->tracestate;
    m->scheme = cols->scheme;
    m->server_address = cols->server_address;
    m->server_port = cols->server_port;
    m->protocol = cols->protocol;
    m->upstream_span = cols->upstream_span;
    m->upstream_attempts = cols->attempts;

    m->attempt_address = cols->attempt_address;
    m->attempt_status = cols->attempt_status;
    m->attempt_connect_time_us = cols->attempt_connect;
    m->attempt_header_time_us = cols->attempt_header;
    m->attempt_response_time_us = cols->attempt_response;
    m->attempt_bytes_received = cols->attempt_bytes;
    m->attempt_error = cols->attempt_error;
    m->attempt_span_id.data = cols->attempt_span_id[0];

    m->field_count = cols->field_count;
    m->field_name = cols->field_name;
    m->field_value = cols->field_value;

    cols->size = NGX_HTTP_OBS_COLUMNS_FIXED + NGX_HTTP_OBS_SYMBOL_WIDTH;
    cols->interned = 0;

    ngx_memzero(cols->content, sizeof(cols->content));
    ngx_memzero(cols->address, sizeof(cols->address));
}


ngx_uint_t
ngx_http_obs_columns_count(ngx_http_obs_columns_t *cols)
{
    return cols->msg.count;
}


/*
 * Tells whether the record fits in the batch, which must stay within limit
 * bytes packed.  Until the batch nears the limit, the largest record
 * possible is assumed rather than this one measured.
 */

ngx_int_t
ngx_http_obs_columns_fits(ngx_http_obs_columns_t *cols,
    ngx_http_obs_record_t *rec, size_t limit)
{
    size_t                   text;
    Obs__V1__RecordColumns  *m = &cols->msg;

    if (m->count >= NGX_HTTP_OBS_BATCH_RECORDS
        || m->n_attempt_status + rec->n_attempts > NGX_HTTP_OBS_BATCH_ATTEMPTS
        || m->n_symbol_end + NGX_HTTP_OBS_RECORD_SYMBOLS + rec->n_attempts
           > NGX_HTTP_OBS_BATCH_SYMBOLS
        || (rec->n_fields
            && (m->n_field_name + rec->n_fields > NGX_HTTP_OBS_BATCH_FIELDS
                || m->n_symbol_end + NGX_HTTP_OBS_RECORD_SYMBOLS
                   + rec->n_attempts + 2 * rec->n_fields
                   > NGX_HTTP_OBS_BATCH_SYMBOLS)))
    {
        return 0;
    }

    if (cols->size + ngx_http_obs_record_bound(NGX_HTTP_OBS_MAX_ATTEMPTS,
                                               NGX_HTTP_OBS_MAX_FIELDS,
                                               NGX_HTTP_OBS_MAX_TEXT)
        <= limit
        && m->symbol_data.len + NGX_HTTP_OBS_MAX_TEXT
           <= cols->symbol_data_size)
    {
        return 1;
    }

    text = ngx_http_obs_record_text(rec);

    return cols->size + ngx_http_obs_record_bound(rec->n_attempts,
                                                  rec->n_fields, text)
           <= limit
           && m->symbol_data.len + text <= cols->symbol_data_size;
}


/* Appends a record that ngx_http_obs_columns_fits() accepted. */

void
ngx_http_obs_columns_add(ngx_http_obs_columns_t *cols,
    ngx_http_obs_record_t *rec)
{
    size_t                   n, before;
    Obs__V1__RecordColumns  *m = &cols->msg;

    n = m->count;
    before = m->symbol_data.len + m->n_symbol_end * NGX_HTTP_OBS_SYMBOL_WIDTH;

    cols->start_time[n] = rec->start_time_unix_nano;
    cols->duration[n] = rec->duration_us;
    cols->status[n] = rec->status;
    cols->request_bytes[n] = rec->request_bytes;
    cols->response_bytes[n] = rec->response_bytes;
    cols->request_body[n] = rec->request_body_bytes;
    cols->response_body[n] = rec->response_body_bytes;
    cols->trace_flags[n] = rec->trace_flags;
    cols->server_port[n] = rec->server_port;
    cols->upstream_span[n] = rec->upstream_span;

    cols->method[n] = ngx_http_obs_intern(cols, &rec->method,
                                   rec->stable & NGX_HTTP_OBS_STABLE_METHOD,
                                   cols->method, n);
    cols->route[n] = ngx_http_obs_intern(cols, &rec->route,
                                   rec->stable & NGX_HTTP_OBS_STABLE_ROUTE,
                                   cols->route, n);
    cols->upstream_name[n] = ngx_http_obs_intern(cols, &rec->upstream_name,
                                   rec->stable & NGX_HTTP_OBS_STABLE_UPSTREAM,
                                   cols->upstream_name, n);
    cols->service[n] = ngx_http_obs_intern(cols, &rec->service,
                                   rec->stable & NGX_HTTP_OBS_STABLE_SERVICE,
                                   cols->service, n);
    cols->protocol[n] = ngx_http_obs_intern(cols, &rec->protocol,
                                   rec->stable & NGX_HTTP_OBS_STABLE_PROTOCOL,
                                   cols->protocol, n);
    cols->scheme[n] = ngx_http_obs_intern(cols, &rec->scheme, 1,
                                          cols->scheme, n);
    cols->tenant[n] = ngx_http_obs_intern(cols, &rec->tenant, 0,
                                          cols->tenant, n);
    cols->client_address[n] = ngx_http_obs_intern(cols, &rec->client_address,
                                                  0, cols->client_address, n);
    cols->server_address[n] = ngx_http_obs_intern(cols, &rec->server_address,
                                                  0, cols->server_address, n);

    cols->path[n] = ngx_http_obs_append_symbol(cols, &rec->path);
    cols->user_agent[n] = ngx_http_obs_append_symbol(cols, &rec->user_agent);
    cols->request_id[n] = ngx_http_obs_append_symbol(cols, &rec->request_id);
    cols->tracestate[n] = ngx_http_obs_append_symbol(cols, &rec->tracestate);

    ngx_memcpy(cols->trace_id[n], rec->trace_id, OBS_TRACE_ID_LEN);
    ngx_memcpy(cols->span_id[n], rec->span_id, OBS_SPAN_ID_LEN);

    if (rec->parent_span_id) {
        ngx_memcpy(cols->parent_id[n], rec->parent_span_id, OBS_SPAN_ID_LEN);

    } else {
        ngx_memzero(cols->parent_id[n], OBS_SPAN_ID_LEN);
    }

    ngx_http_obs_columns_add_attempts(cols, rec);

    /* obs_log_field: nothing to do while no record of the batch has one */

    if (rec->n_fields || m->n_field_name) {
        ngx_http_obs_columns_add_fields(cols, rec);
    }

    m->count = n + 1;

    cols->size += NGX_HTTP_OBS_RECORD_WIDTH
                  + rec->n_attempts * NGX_HTTP_OBS_ATTEMPT_WIDTH
                  + m->symbol_data.len
                  + m->n_symbol_end * NGX_HTTP_OBS_SYMBOL_WIDTH - before;
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
    size_t                   n;
    Obs__V1__RecordColumns  *m = &cols->msg;

    /* every per-record column is as long as the batch */

    n = m->count;

    m->n_start_time_unix_nano = n;
    m->n_duration_us = n;
    m->n_method = n;
    m->n_route = n;
    m->n_path = n;
    m->n_status = n;
    m->n_request_bytes = n;
    m->n_response_bytes = n;
    m->n_request_body_bytes = n;
    m->n_response_body_bytes = n;
    m->n_upstream_name = n;
    m->n_tenant = n;
    m->n_service = n;
    m->n_client_address = n;
    m->n_user_agent = n;
    m->n_request_id = n;
    m->trace_id.len = n * OBS_TRACE_ID_LEN;
    m->span_id.len = n * OBS_SPAN_ID_LEN;
    m->parent_span_id.len = n * OBS_SPAN_ID_LEN;
    m->n_trace_flags = n;
    m->n_tracestate = n;
    m->n_scheme = n;
    m->n_server_address = n;
    m->n_server_port = n;
    m->n_protocol = n;
    m->n_upstream_span = n;
    m->n_upstream_attempts = n;

    /* obs_log_field: no column at all while no record has a field */
    m->n_field_count = m->n_field_name ? n : 0;

    return obs__v1__record_columns__get_packed_size(m);
}


/* Packs the batch, sized first, to out, which has room for it. */

size_t
ngx_http_obs_columns_pack(ngx_http_obs_columns_t *cols, u_char *out)
{
    return obs__v1__record_columns__pack(&cols->msg, out);
}


static void
ngx_http_obs_columns_add_attempts(ngx_http_obs_columns_t *cols,
    ngx_http_obs_record_t *rec)
{
    size_t                   n;
    ngx_uint_t               i;
    ngx_http_obs_attempt_t  *a;
    Obs__V1__RecordColumns  *m = &cols->msg;

    cols->attempts[m->count] = rec->n_attempts;

    if (rec->n_attempts == 0) {
        return;
    }

    n = m->n_attempt_status;

    for (i = 0; i < rec->n_attempts; i++, n++) {
        a = &rec->attempts[i];

        cols->attempt_address[n] = ngx_http_obs_intern(cols, &a->address, 0,
                                                       cols->attempt_address,
                                                       n);
        cols->attempt_status[n] = a->status;
        cols->attempt_connect[n] = a->connect_time_us;
        cols->attempt_header[n] = a->header_time_us;
        cols->attempt_response[n] = a->response_time_us;
        cols->attempt_bytes[n] = a->bytes_received;
        cols->attempt_error[n] = a->error;

        if (a->span_id) {
            ngx_memcpy(cols->attempt_span_id[n], a->span_id, OBS_SPAN_ID_LEN);

        } else {
            ngx_memzero(cols->attempt_span_id[n], OBS_SPAN_ID_LEN);
        }
    }

    m->n_attempt_address = n;
    m->n_attempt_status = n;
    m->n_attempt_connect_time_us = n;
    m->n_attempt_header_time_us = n;
    m->n_attempt_response_time_us = n;
    m->n_attempt_bytes_received = n;
    m->n_attempt_error = n;
    m->attempt_span_id.len = n * OBS_SPAN_ID_LEN;
}


/*
 * A record's obs_log_fields: the names are configuration text, known by
 * their address; the values (a user id, its HMAC) repeat across records.
 * The count column starts with the batch's first field: the records before
 * it had none.
 */

static void
ngx_http_obs_columns_add_fields(ngx_http_obs_columns_t *cols,
    ngx_http_obs_record_t *rec)
{
    size_t                     n;
    ngx_uint_t                 i;
    ngx_http_obs_log_field_t  *f;
    Obs__V1__RecordColumns    *m = &cols->msg;

    if (m->n_field_name == 0) {
        ngx_memzero(cols->field_count, m->count * sizeof(uint32_t));
    }

    cols->field_count[m->count] = rec->n_fields;
    cols->size += rec->n_fields * NGX_HTTP_OBS_FIELD_WIDTH;

    n = m->n_field_name;

    for (i = 0; i < rec->n_fields; i++, n++) {
        f = &rec->fields[i];

        cols->field_name[n] = ngx_http_obs_intern(cols, &f->name, 1,
                                                  cols->field_name, n);
        cols->field_value[n] = ngx_http_obs_intern(cols, &f->value, 0,
                                                   cols->field_value, n);
    }

    m->n_field_name = n;
    m->n_field_value = n;
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
    ngx_http_obs_address_slot_t  *slot;

    if (s->len == 0) {
        return 0;
    }

    if (stable) {
        slot = &cols->address[((uintptr_t) s->data >> 3)
                              & (NGX_HTTP_OBS_ADDRESS_SLOTS - 1)];

        if (slot->data == s->data && slot->len == s->len) {
            return slot->symbol;
        }

        return ngx_http_obs_intern_address(cols, s, slot);
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


static uint32_t
ngx_http_obs_intern_address(ngx_http_obs_columns_t *cols, ngx_str_t *s,
    ngx_http_obs_address_slot_t *slot)
{
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


/*
 * Eight bytes a step, the last step overlapping the one before: symbols
 * are short and hashing them must be cheap.
 */

static uint32_t
ngx_http_obs_symbol_hash(const u_char *p, size_t len)
{
    uint64_t  h;

    h = len * 0x9e3779b97f4a7c15ULL;

    if (len < 8) {
        return (uint32_t) ngx_http_obs_mix(h, ngx_http_obs_load_short(p, len));
    }

    for ( /* void */ ; len > 8; len -= 8, p += 8) {
        h = ngx_http_obs_mix(h, ngx_http_obs_load8(p));
    }

    return (uint32_t) ngx_http_obs_mix(h, ngx_http_obs_load8(p + len - 8));
}


/* Symbols are short: an inline comparison beats a call to memcmp(). */

static ngx_inline ngx_uint_t
ngx_http_obs_same(const u_char *a, const u_char *b, size_t len)
{
    if (len < 8) {
        return ngx_http_obs_load_short(a, len)
               == ngx_http_obs_load_short(b, len);
    }

    for ( /* void */ ; len > 8; len -= 8, a += 8, b += 8) {
        if (ngx_http_obs_load8(a) != ngx_http_obs_load8(b)) {
            return 0;
        }
    }

    return ngx_http_obs_load8(a + len - 8) == ngx_http_obs_load8(b + len - 8);
}


static ngx_inline uint64_t
ngx_http_obs_mix(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0xff51afd7ed558ccdULL;

    return h ^ (h >> 32);
}


static ngx_inline uint64_t
ngx_http_obs_load8(const u_char *p)
{
    uint64_t  w;

    ngx_memcpy(&w, p, 8);

    return w;
}


/* 1 to 7 bytes as one word: loads that may overlap, no loop. */

static ngx_inline uint64_t
ngx_http_obs_load_short(const u_char *p, size_t len)
{
    uint32_t  lo, hi;

    if (len >= 4) {
        ngx_memcpy(&lo, p, 4);
        ngx_memcpy(&hi, p + len - 4, 4);
        return (uint64_t) hi << 32 | lo;
    }

    if (len == 0) {
        return 0;
    }

    return (uint64_t) p[0] << 16 | (uint64_t) p[len / 2] << 8 | p[len - 1];
}


static size_t
ngx_http_obs_record_text(ngx_http_obs_record_t *rec)
{
    size_t      len;
    ngx_uint_t  i;

    len = rec->method.len + rec->route.len + rec->path.len
          + rec->upstream_name.len + rec->tenant.len + rec->service.len
          + rec->client_address.len + rec->user_agent.len
          + rec->request_id.len + rec->tracestate.len + rec->scheme.len
          + rec->server_address.len + rec->protocol.len;

    for (i = 0; i < rec->n_attempts; i++) {
        len += rec->attempts[i].address.len;
    }

    for (i = 0; i < rec->n_fields; i++) {
        len += rec->fields[i].name.len + rec->fields[i].value.len;
    }

    return len;
}
