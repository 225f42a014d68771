/*
 * The body of a function that adds one record's entries to a batch
 * (ngx_http_obs_columns.c includes it in two): each record column's entry,
 * then each group's entries, generated from proto/obs/v1/columns.def.
 * With NGX_HTTP_OBS_ADD_AUDIT 0, the list but the audit trail's section
 * (OBS_COLUMNS_NO_AUDIT), and the record is counted; with 1, the record
 * goes in that way first, then that section alone (OBS_COLUMNS_ONLY_AUDIT).
 * The function's parameters are cols and record.
 */


    size_t                   before, n_record;
    ngx_uint_t               i;
    Obs__V1__RecordColumns  *m = &cols->msg;
#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
    size_t                     n_##group;                                     \
    ngx_http_obs_##group##_t  *group;
#if (NGX_HTTP_OBS_ADD_AUDIT)
#define OBS_COLUMNS_ONLY_AUDIT
#else
#define OBS_COLUMNS_NO_AUDIT
#endif
#include "obs/v1/columns.def"

#if (NGX_HTTP_OBS_ADD_AUDIT)
    ngx_http_obs_columns_add(cols, record);
    n_record = cols->n_record - 1;
    cols->size += ngx_http_obs_width_audit_count;
#else
    n_record = cols->n_record;
    cols->size += ngx_http_obs_width_plain;
#endif

    before = m->symbol_data.len + m->n_symbol_end * NGX_HTTP_OBS_SYMBOL_WIDTH;

#define OBS_U32(group, column, field, required)                               \
    cols->column[n_##group] = group->field;
#define OBS_U64(group, column, field, required)                               \
    cols->column[n_##group] = group->field;
#define OBS_BOOL(group, column, field)                                        \
    cols->column[n_##group] = group->field;
#define OBS_SYMBOL(group, column, field, text, max)                           \
    cols->column[n_##group] = ngx_http_obs_symbol_##text(cols,                \
                          &group->field, cols->column, n_##group,            \
                          record->stable & NGX_HTTP_OBS_STABLE(column));
#define OBS_ID(group, column, field, width)                                   \
    ngx_http_obs_id(cols->column[n_##group], group->field, width);
#define OBS_GROUP(group, count, rows, Row, row, max, batch)                   \
    n_##group = cols->n_##group;                                              \
    cols->size += record->n_##rows * ngx_http_obs_width_##group;             \
                                                                              \
    for (i = 0; i < record->n_##rows; i++, n_##group++) {                     \
        group = &record->rows[i];
#define OBS_GROUP_END(group)                                                  \
    }                                                                         \
                                                                              \
    cols->n_##group = n_##group;
#if (NGX_HTTP_OBS_ADD_AUDIT)
#define OBS_COLUMNS_ONLY_AUDIT
#else
#define OBS_COLUMNS_NO_AUDIT
#endif
#include "obs/v1/columns.def"

#if !(NGX_HTTP_OBS_ADD_AUDIT)
    cols->n_record = n_record + 1;
    m->count = cols->n_record;
#endif

    cols->size += m->symbol_data.len
                  + m->n_symbol_end * NGX_HTTP_OBS_SYMBOL_WIDTH - before;

#undef NGX_HTTP_OBS_ADD_AUDIT
