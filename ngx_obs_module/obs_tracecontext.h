/*
 * W3C Trace Context (Level 1, with Level 2's random flag): parsing of
 * traceparent and normalisation of tracestate.  Plain C with no nginx types
 * so that the parsers can be unit-tested and fuzzed on their own.
 */

#ifndef OBS_TRACECONTEXT_H
#define OBS_TRACECONTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "hex.h"


#define OBS_TRACE_ID_LEN          16
#define OBS_SPAN_ID_LEN           8
#define OBS_TRACEPARENT_LEN       55
#define OBS_TRACESTATE_MAX_MEMBERS  32
#define OBS_TRACESTATE_MAX_LEN    512
#define OBS_TRACESTATE_LONG_MEMBER  128

#define OBS_FLAG_SAMPLED          0x01
#define OBS_FLAG_RANDOM           0x02


typedef struct {
    uint8_t   trace_id[OBS_TRACE_ID_LEN];
    uint8_t   parent_id[OBS_SPAN_ID_LEN];
    uint8_t   flags;
} obs_traceparent_t;


typedef struct {
    const char  *data;
    size_t       len;
} obs_slice_t;


/* Parses one traceparent header value; returns 0 when valid, -1 otherwise. */
int obs_traceparent_parse(const char *value, size_t len, obs_traceparent_t *tp);

/* Writes the 55-byte version-00 traceparent for the ids and flags to out. */
void obs_traceparent_format(char *out, const uint8_t *trace_id,
    const uint8_t *span_id, uint8_t flags);

/*
 * Combines tracestate header values (in order) into one list in out, which
 * must hold the sum of the value lengths plus nvalues (the commas that join
 * values from different headers), or OBS_TRACESTATE_MAX_LEN bytes if that
 * is less: an over-long list is shortened to that as the spec allows.
 * Empty members are dropped.  Returns the length
 * written (0 for an empty list) or -1 when the list is invalid and must be
 * dropped.
 */
long obs_tracestate_combine(const obs_slice_t *values, size_t nvalues,
    char *out);


/* Returns 1 when all n bytes are zero. */
int obs_is_zero(const uint8_t *bytes, size_t n);

#endif /* OBS_TRACECONTEXT_H */
