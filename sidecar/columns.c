/* Records in column form.  See columns.h. */

#include <string.h>

#include "columns.h"

#define TRACE_ID_LEN  16
#define SPAN_ID_LEN   8

static int column_ok(size_t n, size_t want);
static int symbol_column_ok(const uint32_t *refs, size_t n, size_t want,
    size_t n_symbols);
static ProtobufCBinaryData symbol(const Obs__V1__RecordColumns *c,
    const uint32_t *refs, size_t n, size_t i);
static uint64_t u64_at(const uint64_t *v, size_t n, size_t i);
static uint32_t u32_at(const uint32_t *v, size_t n, size_t i);
static ProtobufCBinaryData id_at(const ProtobufCBinaryData *ids, size_t width,
    size_t i);
static int fields_valid(const Obs__V1__RecordColumns *c, size_t symbols);
static void fields_next(columns_reader_t *rd, Obs__V1__Record *r, size_t i);

int
columns_valid(const Obs__V1__RecordColumns *c)
{
    size_t  i, n = c->count, attempts = 0, symbols = c->n_symbol_end;

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

    for (i = 0; i < c->n_upstream_attempts; i++) {
        if (c->upstream_attempts[i] > COLUMNS_MAX_ATTEMPTS) {
            return 0;
        }
        attempts += c->upstream_attempts[i];
    }

    /*
     * Every record and attempt must occupy bytes of the datagram, or a
     * 14-byte batch could claim four billion records: status and duration
     * are required, and so is an attempt's status.
     */

    if (n > COLUMNS_MAX_RECORDS || c->n_status != n || c->n_duration_us != n
        || c->n_attempt_status != attempts || !fields_valid(c, symbols))
    {
        return 0;
    }

    return column_ok(c->n_start_time_unix_nano, n)
           && column_ok(c->n_duration_us, n)
           && column_ok(c->n_status, n)
           && column_ok(c->n_request_bytes, n)
           && column_ok(c->n_response_bytes, n)
           && column_ok(c->n_request_body_bytes, n)
           && column_ok(c->n_response_body_bytes, n)
           && column_ok(c->n_trace_flags, n)
           && column_ok(c->n_server_port, n)
           && column_ok(c->n_upstream_span, n)
           && column_ok(c->n_upstream_attempts, n)
           && column_ok(c->trace_id.len, n * TRACE_ID_LEN)
           && column_ok(c->span_id.len, n * SPAN_ID_LEN)
           && column_ok(c->parent_span_id.len, n * SPAN_ID_LEN)
           && symbol_column_ok(c->method, c->n_method, n, symbols)
           && symbol_column_ok(c->route, c->n_route, n, symbols)
           && symbol_column_ok(c->path, c->n_path, n, symbols)
           && symbol_column_ok(c->upstream_name, c->n_upstream_name,
                               n, symbols)
           && symbol_column_ok(c->tenant, c->n_tenant, n, symbols)
           && symbol_column_ok(c->service, c->n_service, n, symbols)
           && symbol_column_ok(c->client_address, c->n_client_address,
                               n, symbols)
           && symbol_column_ok(c->user_agent, c->n_user_agent, n, symbols)
           && symbol_column_ok(c->request_id, c->n_request_id, n, symbols)
           && symbol_column_ok(c->tracestate, c->n_tracestate, n, symbols)
           && symbol_column_ok(c->scheme, c->n_scheme, n, symbols)
           && symbol_column_ok(c->server_address, c->n_server_address,
                               n, symbols)
           && symbol_column_ok(c->protocol, c->n_protocol, n, symbols)
           && symbol_column_ok(c->attempt_address, c->n_attempt_address,
                               attempts, symbols)
           && column_ok(c->n_attempt_status, attempts)
           && column_ok(c->n_attempt_connect_time_us, attempts)
           && column_ok(c->n_attempt_header_time_us, attempts)
           && column_ok(c->n_attempt_response_time_us, attempts)
           && column_ok(c->n_attempt_bytes_received, attempts)
           && column_ok(c->n_attempt_error, attempts)
           && column_ok(c->attempt_span_id.len, attempts * SPAN_ID_LEN);
}

void
columns_reader_init(columns_reader_t *rd, const Obs__V1__RecordColumns *c)
{
    rd->c = c;
    rd->next = 0;
    rd->next_attempt = 0;
    rd->next_field = 0;
}

int
columns_next(columns_reader_t *rd, Obs__V1__Record *r,
    Obs__V1__UpstreamAttempt *attempts, Obs__V1__UpstreamAttempt **ptrs)
{
    const Obs__V1__RecordColumns  *c = rd->c;
    Obs__V1__UpstreamAttempt      *a;
    size_t                         i = rd->next, k, j;

    if (i >= c->count) {
        return 0;
    }

    obs__v1__record__init(r);

    r->start_time_unix_nano = u64_at(c->start_time_unix_nano,
                                     c->n_start_time_unix_nano, i);
    r->duration_us = u64_at(c->duration_us, c->n_duration_us, i);
    r->status = u32_at(c->status, c->n_status, i);
    r->request_bytes = u64_at(c->request_bytes, c->n_request_bytes, i);
    r->response_bytes = u64_at(c->response_bytes, c->n_response_bytes, i);
    r->request_body_bytes = u64_at(c->request_body_bytes,
                                   c->n_request_body_bytes, i);
    r->response_body_bytes = u64_at(c->response_body_bytes,
                                    c->n_response_body_bytes, i);
    r->trace_flags = u32_at(c->trace_flags, c->n_trace_flags, i);
    r->server_port = u32_at(c->server_port, c->n_server_port, i);
    r->upstream_span = u32_at(c->upstream_span, c->n_upstream_span, i) != 0;

    r->method = symbol(c, c->method, c->n_method, i);
    r->route = symbol(c, c->route, c->n_route, i);
    r->path = symbol(c, c->path, c->n_path, i);
    r->upstream_name = symbol(c, c->upstream_name, c->n_upstream_name, i);
    r->tenant = symbol(c, c->tenant, c->n_tenant, i);
    r->service = symbol(c, c->service, c->n_service, i);
    r->client_address = symbol(c, c->client_address, c->n_client_address, i);
    r->user_agent = symbol(c, c->user_agent, c->n_user_agent, i);
    r->request_id = symbol(c, c->request_id, c->n_request_id, i);
    r->tracestate = symbol(c, c->tracestate, c->n_tracestate, i);
    r->scheme = symbol(c, c->scheme, c->n_scheme, i);
    r->server_address = symbol(c, c->server_address, c->n_server_address, i);
    r->protocol = symbol(c, c->protocol, c->n_protocol, i);

    r->trace_id = id_at(&c->trace_id, TRACE_ID_LEN, i);
    r->span_id = id_at(&c->span_id, SPAN_ID_LEN, i);
    r->parent_span_id = id_at(&c->parent_span_id, SPAN_ID_LEN, i);

    r->n_upstreams = u32_at(c->upstream_attempts, c->n_upstream_attempts, i);
    r->upstreams = ptrs;

    for (k = 0; k < r->n_upstreams; k++) {
        j = rd->next_attempt + k;
        a = &attempts[k];
        obs__v1__upstream_attempt__init(a);

        a->address = symbol(c, c->attempt_address, c->n_attempt_address, j);
        a->status = u32_at(c->attempt_status, c->n_attempt_status, j);
        a->connect_time_us = u64_at(c->attempt_connect_time_us,
                                    c->n_attempt_connect_time_us, j);
        a->header_time_us = u64_at(c->attempt_header_time_us,
                                   c->n_attempt_header_time_us, j);
        a->response_time_us = u64_at(c->attempt_response_time_us,
                                     c->n_attempt_response_time_us, j);
        a->bytes_received = u64_at(c->attempt_bytes_received,
                                   c->n_attempt_bytes_received, j);
        a->span_id = id_at(&c->attempt_span_id, SPAN_ID_LEN, j);
        a->error = u32_at(c->attempt_error, c->n_attempt_error, j);
        ptrs[k] = a;
    }

    rd->next_attempt += r->n_upstreams;
    fields_next(rd, r, i);
    rd->next++;
    return 1;
}

/*
 * obs_log_field: each record's count is bounded, the counts sum to exactly
 * the name and value entries there are (each 4 bytes of the datagram), and
 * every entry names a symbol.
 */
static int
fields_valid(const Obs__V1__RecordColumns *c, size_t symbols)
{
    size_t  i, fields = 0;

    if (!column_ok(c->n_field_count, c->count)) {
        return 0;
    }

    for (i = 0; i < c->n_field_count; i++) {
        if (c->field_count[i] > COLUMNS_MAX_FIELDS) {
            return 0;
        }
        fields += c->field_count[i];
    }

    return c->n_field_name == fields && c->n_field_value == fields
           && symbol_column_ok(c->field_name, fields, fields, symbols)
           && symbol_column_ok(c->field_value, fields, fields, symbols);
}

static void
fields_next(columns_reader_t *rd, Obs__V1__Record *r, size_t i)
{
    const Obs__V1__RecordColumns  *c = rd->c;
    Obs__V1__LogField             *f;
    size_t                         k, j;

    r->n_fields = u32_at(c->field_count, c->n_field_count, i);
    r->fields = rd->field_ptrs;

    for (k = 0; k < r->n_fields; k++) {
        j = rd->next_field + k;
        f = &rd->fields[k];
        obs__v1__log_field__init(f);
        f->name = symbol(c, c->field_name, c->n_field_name, j);
        f->value = symbol(c, c->field_value, c->n_field_value, j);
        rd->field_ptrs[k] = f;
    }

    rd->next_field += r->n_fields;
}

/* A column holds one entry per record (or attempt), or none at all. */
static int
column_ok(size_t n, size_t want)
{
    return n == 0 || n == want;
}

/* ... and a text column's entries all name a symbol of the table. */
static int
symbol_column_ok(const uint32_t *refs, size_t n, size_t want,
    size_t n_symbols)
{
    size_t  i;

    if (!column_ok(n, want)) {
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
