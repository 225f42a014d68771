/*
 * A record's structured JSON log line (the brief's fields), and the same
 * line as an OTLP LogRecord, each written straight into a reused buffer.
 */

#ifndef OBS_EXPORTER_LOGLINE_H
#define OBS_EXPORTER_LOGLINE_H

#include "buf.h"
#include "obs/v1/record.pb-c.h"

/* Longest text field of a log line, in sanitised bytes (plus one). */
#define LOG_TEXT_MAX  2048

/* Level of a response: INFO below 400, WARN for 4xx, ERROR for 5xx. */
const char *log_level(unsigned status);

/* Appends the record's JSON log line (no line end) to b; service is
   sanitised text, host the gateway's name, kept whether the request's
   span was exported ("trace_kept"). */
void log_line(buf_t *b, const Obs__V1__Record *r, const char *service,
    const char *host, int kept);

/*
 * Appends the same line as an OTLP LogRecord (a ScopeLogs.log_records
 * field) to out: time, severity (INFO 9, WARN 13, ERROR 17, and its text),
 * trace_id, span_id and flags (the sampled bit: kept) in the record's own
 * fields, the message as the body, every other key of the line an
 * attribute of the same name and kind.
 */
void log_record(buf_t *out, const Obs__V1__Record *r, const char *service,
    const char *host, int kept);

#endif
