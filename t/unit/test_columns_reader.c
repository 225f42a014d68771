/*
 * The column wire format's reader (common/columns_reader.c): batches that
 * agree with their counts are read record after record, with their
 * upstream attempts, obs_metric observations and obs_log_field fields;
 * every way a batch can lie (a count, a column's length, a symbol) is
 * refused before anything is read.
 */

#include <stdint.h>
#include <string.h>

#include "unit.h"
#include "unit_columns.h"
#include "columns_reader.h"

/* Two records in column form; the second made two upstream attempts. */
static void
test_records(void)
{
    static const char *const   symbols[] = {
        "GET", "/a", "/b", "10.0.0.1:80", NULL
    };

    unit_columns_t             b;
    Obs__V1__Record            r;
    columns_reader_t           rd;
    uint32_t                   method[] = { 1, 1 }, route[] = { 2, 3 };
    uint32_t                   status[] = { 200, 502 }, attempts[] = { 0, 2 };
    uint32_t                   addr[] = { 4, 4 }, astatus[] = { 502, 200 };
    uint32_t                   aerror[] = { 1, 0 };
    uint64_t                   dur[] = { 1500, 2500 };
    uint8_t                    trace[32] = { 1 }, parent[16] = { 0 };
    uint8_t                    aspan[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 9 };

    parent[8] = 7;              /* the first record has no parent */

    unit_columns_init(&b, 2, symbols);
    UNIT_COLUMN(&b, method, method);
    UNIT_COLUMN(&b, route, route);
    UNIT_COLUMN(&b, status, status);
    UNIT_COLUMN(&b, duration_us, dur);
    UNIT_ID_COLUMN(&b, trace_id, trace);
    UNIT_ID_COLUMN(&b, parent_span_id, parent);
    UNIT_COLUMN(&b, upstream_attempts, attempts);
    UNIT_COLUMN(&b, attempt_address, addr);
    UNIT_COLUMN(&b, attempt_status, astatus);
    UNIT_ID_COLUMN(&b, attempt_span_id, aspan);
    UNIT_COLUMN(&b, attempt_error, aerror);

    CHECK(columns_valid(&b.c), "consistent columns are valid");

    columns_reader_init(&rd, &b.c);
    CHECK(columns_next(&rd, &r)
          && r.method.len == 3 && memcmp(r.method.data, "GET", 3) == 0
          && r.route.len == 2 && memcmp(r.route.data, "/a", 2) == 0
          && r.status == 200 && r.duration_us == 1500 && r.n_upstreams == 0
          && r.trace_id.len == 16 && r.parent_span_id.len == 0
          && r.path.len == 0 && r.span_id.len == 0,
          "first record: symbols, numbers, absent columns and zero ids");
    CHECK(columns_next(&rd, &r)
          && r.route.len == 2 && memcmp(r.route.data, "/b", 2) == 0
          && r.status == 502 && r.parent_span_id.len == 8
          && r.n_upstreams == 2 && r.upstreams[0]->status == 502
          && r.upstreams[1]->status == 200
          && r.upstreams[1]->address.len == 11
          && r.upstreams[0]->span_id.len == 0
          && r.upstreams[1]->span_id.len == 8
          && r.upstreams[0]->error == 1 && r.upstreams[1]->error == 0,
          "second record: its two attempts, in order, with why one failed");
    CHECK(!columns_next(&rd, &r), "then no more");

    route[1] = 5;
    CHECK(!columns_valid(&b.c), "a symbol past the table is invalid");
    route[1] = 3;

    b.c.n_status = 1;
    CHECK(!columns_valid(&b.c), "a column shorter than the batch is invalid");
    b.c.n_status = 2;

    attempts[1] = 3;
    CHECK(!columns_valid(&b.c), "attempt columns must match the counts");
    attempts[1] = 2;

    b.c.n_attempt_error = 1;
    CHECK(!columns_valid(&b.c), "the attempt error column matches the counts");
    b.c.n_attempt_error = 2;

    b.ends[2] = 2;
    CHECK(!columns_valid(&b.c), "symbol ends never decrease");
    b.ends[2] = 5;

    b.ends[0] = 1;
    CHECK(!columns_valid(&b.c), "symbol 0 is the empty string");
    b.ends[0] = 0;

    CHECK(columns_valid(&b.c), "and valid again once restored");

    b.c.n_duration_us = 0;
    CHECK(!columns_valid(&b.c), "the duration column is required");
    b.c.n_duration_us = 2;

    b.c.n_attempt_status = 0;
    CHECK(!columns_valid(&b.c), "an attempt's status is required");
    b.c.n_attempt_status = 2;
}

/*
 * obs_log_field columns: two records, the first with two fields, the second
 * with none; then counts that lie, in every way, are refused.
 */
static void
test_fields(void)
{
    static const char *const   symbols[] = {
        "plan", "gold", "user_hash", "ab12", NULL
    };

    unit_columns_t             b;
    Obs__V1__Record            r;
    columns_reader_t           rd;
    uint32_t                   status[] = { 200, 404 };
    uint64_t                   dur[] = { 1, 2 };
    uint32_t                   counts[] = { 2, 0 };
    uint32_t                   names[] = { 1, 3, 3 }, values[] = { 2, 4, 4 };
    uint32_t                   many[] = { COLUMNS_MAX_ENTRIES + 1, 0 };
    uint32_t                   huge[] = { 0xffffffff, 1 };

    unit_columns_init(&b, 2, symbols);
    UNIT_COLUMN(&b, status, status);
    UNIT_COLUMN(&b, duration_us, dur);
    UNIT_COLUMN(&b, field_count, counts);
    UNIT_COLUMN_N(&b, field_name, names, 2);
    UNIT_COLUMN_N(&b, field_value, values, 2);

    CHECK(columns_valid(&b.c), "consistent field columns are valid");

    columns_reader_init(&rd, &b.c);
    CHECK(columns_next(&rd, &r) && r.n_fields == 2
          && r.fields[0]->name.len == 4
          && memcmp(r.fields[0]->name.data, "plan", 4) == 0
          && r.fields[0]->value.len == 4
          && memcmp(r.fields[0]->value.data, "gold", 4) == 0
          && r.fields[1]->name.len == 9
          && memcmp(r.fields[1]->name.data, "user_hash", 9) == 0
          && r.fields[1]->value.len == 4
          && memcmp(r.fields[1]->value.data, "ab12", 4) == 0,
          "first record: its two fields, in order");
    CHECK(columns_next(&rd, &r) && r.n_fields == 0,
          "second record: no fields");

    counts[1] = 1;
    CHECK(!columns_valid(&b.c), "counts summing past the entries are refused");
    b.c.n_field_name = 3;
    CHECK(!columns_valid(&b.c), "... also when only the names are there");
    b.c.n_field_value = 3;
    CHECK(columns_valid(&b.c), "three counted, three of each: valid");
    columns_reader_init(&rd, &b.c);
    CHECK(columns_next(&rd, &r) && columns_next(&rd, &r)
          && r.n_fields == 1 && r.fields[0]->name.len == 9,
          "the second record's field is the third entry");
    counts[1] = 0;
    CHECK(!columns_valid(&b.c), "entries past the counts are refused");
    b.c.n_field_name = b.c.n_field_value = 2;

    b.c.n_field_count = 1;
    CHECK(!columns_valid(&b.c), "a count column shorter than the batch");
    b.c.n_field_count = 0;
    CHECK(!columns_valid(&b.c), "entries without any count column");
    b.c.n_field_count = 2;

    b.c.field_count = many;
    CHECK(!columns_valid(&b.c), "more fields than a record may carry");
    b.c.field_count = huge;
    CHECK(!columns_valid(&b.c), "a count of 0xffffffff (the sum overflows "
          "nothing: it is refused first)");
    b.c.field_count = counts;

    names[1] = 5;
    CHECK(!columns_valid(&b.c), "a name past the symbol table");
    names[1] = 3;
    values[0] = 9;
    CHECK(!columns_valid(&b.c), "a value past the symbol table");
    values[0] = 2;

    CHECK(columns_valid(&b.c), "and valid again once restored");
}

/* Two records: the first with two observations, the second with none. */
static void
test_observations(void)
{
    static const char *const   symbols[] = {
        "hits_total", "cache", "HIT", "7", "depth", "2.5", NULL
    };

    unit_columns_t             b;
    Obs__V1__Record            r;
    columns_reader_t           rd;
    uint32_t                   status[] = { 200, 200 };
    uint64_t                   dur[] = { 1, 2 };
    uint32_t                   count[] = { 2, 0 }, name[] = { 1, 5 };
    uint32_t                   type[] = { 1, 2 }, lname[] = { 2, 0 };
    uint32_t                   lvalue[] = { 3, 0 }, value[] = { 4, 6 };

    unit_columns_init(&b, 2, symbols);
    UNIT_COLUMN(&b, status, status);
    UNIT_COLUMN(&b, duration_us, dur);
    UNIT_COLUMN(&b, metric_count, count);
    UNIT_COLUMN(&b, metric_name, name);
    UNIT_COLUMN(&b, metric_type, type);
    UNIT_COLUMN(&b, metric_label_name, lname);
    UNIT_COLUMN(&b, metric_label_value, lvalue);
    UNIT_COLUMN(&b, metric_value, value);

    CHECK(columns_valid(&b.c), "consistent observation columns are valid");

    columns_reader_init(&rd, &b.c);
    CHECK(columns_next(&rd, &r) && r.n_metrics == 2
          && r.metrics[0]->name.len == 10
          && memcmp(r.metrics[0]->name.data, "hits_total", 10) == 0
          && r.metrics[0]->type == 1
          && r.metrics[0]->label_value.len == 3
          && r.metrics[0]->value.len == 1 && r.metrics[0]->value.data[0] == '7'
          && r.metrics[1]->type == 2 && r.metrics[1]->label_name.len == 0
          && r.metrics[1]->value.len == 3,
          "the first record's two observations, in order");
    CHECK(columns_next(&rd, &r) && r.n_metrics == 0,
          "the second record has none");

    count[1] = 1;
    CHECK(!columns_valid(&b.c), "counts that claim more than the entries");
    count[1] = 0;
    count[0] = 1;
    CHECK(!columns_valid(&b.c), "counts that claim fewer than the entries");
    count[0] = 2;

    count[0] = 0xffffffffu;
    CHECK(!columns_valid(&b.c), "a count past the most one record carries");
    count[0] = 2;

    name[1] = 7;
    CHECK(!columns_valid(&b.c), "a name symbol past the table");
    name[1] = 5;
    value[0] = 99;
    CHECK(!columns_valid(&b.c), "a value symbol past the table");
    value[0] = 4;
    lvalue[0] = 1000;
    CHECK(!columns_valid(&b.c), "a label value symbol past the table");
    lvalue[0] = 3;

    b.c.n_metric_type = 0;
    CHECK(!columns_valid(&b.c), "an observation's type is required");
    b.c.n_metric_type = 2;

    b.c.n_metric_value = 1;
    CHECK(!columns_valid(&b.c), "a value column shorter than the entries");
    b.c.n_metric_value = 2;

    b.c.n_metric_count = 1;
    CHECK(!columns_valid(&b.c), "the count column is one per record");
    b.c.n_metric_count = 0;
    CHECK(!columns_valid(&b.c), "observations without counts");
    b.c.n_metric_count = 2;

    CHECK(columns_valid(&b.c), "and valid again once restored");
}

int
main(void)
{
    test_records();
    test_fields();
    test_observations();

    return unit_report("columns_reader");
}
