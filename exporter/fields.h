/*
 * A record's obs_log_fields, as both the log line (loki/logline.c) and the
 * span (otlp/spans.c) write them: the same fields, in the same order.
 */

#ifndef OBS_EXPORTER_FIELDS_H
#define OBS_EXPORTER_FIELDS_H

#include <stddef.h>

#include "obs/v1/record.pb-c.h"

/* obs_log_field: the most fields of a record written, the longest name. */
#define LOG_FIELDS_MAX      16
#define LOG_FIELD_NAME_MAX  64

/*
 * Puts the record's fields that the log line and the span may write in out
 * (at most LOG_FIELDS_MAX, in order): a name of [a-z][a-z0-9_.]{0,63}
 * that is no key of their own and not a repeat, and a value.  Returns how
 * many.
 */
size_t log_fields(const Obs__V1__Record *r, const Obs__V1__LogField **out);

/* Tells whether key is one the log line or the span writes itself. */
int log_key_reserved(const char *key);

#endif
