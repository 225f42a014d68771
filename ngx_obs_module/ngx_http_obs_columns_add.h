/*
 * The body of adding one record's entries to a batch (ngx_http_obs_columns.c
 * includes it twice): each record column's entry, then each group's entries,
 * generated from proto/obs/v1/columns.def.  The includer says which part
 * of the list (OBS_COLUMNS_NO_AUDIT: all but the audit trail's section;
 * OBS_COLUMNS_ONLY_AUDIT: that section alone) and has in scope: cols, m,
 * record, i, n_record and, per group of that part, n_<group> and <group>.
 */


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
#include "obs/v1/columns.def"
