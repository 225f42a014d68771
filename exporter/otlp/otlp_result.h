/*
 * What an OTLP receiver's answer means, per the OTLP specification, for
 * every signal (traces, metrics, logs) and both transports: the
 * classifiers the OTLP destinations give the delivery layer
 * (destination_spec_t.classify).
 *
 * - OTLP/HTTP: the layer's HTTP rules (http_classify), and a 2xx answer's
 *   partial_success: its rejected count is dropped as `rejected'.
 * - OTLP/gRPC: grpc-status.  OK is sent (with partial_success read from
 *   the message); CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE,
 *   UNAVAILABLE and DATA_LOSS are retried, after RetryInfo's delay when
 *   grpc-status-details-bin carries one; RESOURCE_EXHAUSTED is retried only
 *   with a RetryInfo (the receiver says it will recover), else refused; any
 *   other status is refused.  No answer is retried; an answer without
 *   grpc-status is read from its HTTP status as gRPC does (429, 502, 503,
 *   504: UNAVAILABLE; 3xx: a redirect; else UNKNOWN, refused).
 */

#ifndef OBS_OTLP_RESULT_H
#define OBS_OTLP_RESULT_H

#include <stddef.h>
#include <stdint.h>

#include "http_client.h"

enum {
    GRPC_OK = 0, GRPC_CANCELLED = 1, GRPC_UNKNOWN = 2,
    GRPC_INVALID_ARGUMENT = 3, GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_RESOURCE_EXHAUSTED = 8, GRPC_ABORTED = 10, GRPC_OUT_OF_RANGE = 11,
    GRPC_UNIMPLEMENTED = 12, GRPC_UNAVAILABLE = 14, GRPC_DATA_LOSS = 15,
    GRPC_UNAUTHENTICATED = 16
};

/* The OTLP/HTTP classifier. */
http_verdict_t otlp_http_classify(http_response_t *r);

/* The OTLP/gRPC classifier. */
http_verdict_t otlp_grpc_classify(http_response_t *r);

/*
 * Reads an Export*ServiceResponse's partial_success (every signal's has
 * the rejected count as field 1 and error_message as field 2) into
 * r->rejected and r->rejected_why; a message cut short keeps what was
 * read.  Returns -1 when the bytes are no such message.
 */
int otlp_partial_success(const uint8_t *msg, size_t len, http_response_t *r);

/*
 * The delay of the google.rpc.RetryInfo in a google.rpc.Status (base64,
 * padded or not, as grpc-status-details-bin carries it), in seconds; -1
 * when there is none.
 */
double otlp_retry_info(const char *details_base64);

#endif
