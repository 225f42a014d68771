/*
 * What the OTLP encoders of every signal share (spans.c, otlp_metrics.c,
 * the log records of loki/logline.c): attributes (KeyValue) written straight into a message under
 * the message's own attributes field number, the gateway's Resource, the
 * Export*ServiceRequest envelope (the three signals' envelopes have the same
 * field numbers: resource_* = 1 { resource = 1, scope_* = 2 { scope = 1,
 * items = 2 } }), and the host/port split of an address nginx writes.
 */

#ifndef OBS_OTLP_PB_H
#define OBS_OTLP_PB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "pb.h"

/* KeyValue = 1 key, 2 value; AnyValue = 1 string, 2 bool, 3 int, 4 double */
enum { OTLP_KV_KEY = 1, OTLP_KV_VALUE = 2, OTLP_ANY_STRING = 1,
       OTLP_ANY_BOOL = 2, OTLP_ANY_INT = 3, OTLP_ANY_DOUBLE = 4 };

/* A span or log record carries a dozen of these: written in one piece. */
static inline void
otlp_attr_str(buf_t *b, unsigned field, const char *key, size_t klen,
    const char *value, size_t len)
{
    size_t    any = pb_len_size(OTLP_ANY_STRING, len);
    size_t    kv = pb_len_size(OTLP_KV_KEY, klen)
                   + pb_len_size(OTLP_KV_VALUE, any);
    uint8_t  *p;

    if (buf_reserve(b, pb_len_size(field, kv)) != 0) {
        return;
    }

    p = (uint8_t *) b->data + b->len;
    p = pb_varint_at(p, (uint64_t) field << 3 | PB_LEN);
    p = pb_varint_at(p, kv);
    p = pb_bytes_at(p, OTLP_KV_KEY, key, klen);
    p = pb_varint_at(p, (uint64_t) OTLP_KV_VALUE << 3 | PB_LEN);
    p = pb_varint_at(p, any);
    p = pb_bytes_at(p, OTLP_ANY_STRING, value, len);
    b->len = (size_t) ((char *) p - b->data);
}

/* A KeyValue up to its AnyValue's one field, which is any bytes long. */
static inline void
otlp_attr_head(buf_t *b, unsigned field, const char *key, size_t klen,
    size_t any)
{
    pb_len(b, field, pb_len_size(OTLP_KV_KEY, klen)
                     + pb_len_size(OTLP_KV_VALUE, any));
    pb_bytes(b, OTLP_KV_KEY, key, klen);
    pb_len(b, OTLP_KV_VALUE, any);
}

static inline void
otlp_attr_int(buf_t *b, unsigned field, const char *key, size_t klen,
    int64_t value)
{
    otlp_attr_head(b, field, key, klen, 1 + pb_varint_size((uint64_t) value));
    pb_uint(b, OTLP_ANY_INT, (uint64_t) value);
}

static inline void
otlp_attr_double(buf_t *b, unsigned field, const char *key, size_t klen,
    double value)
{
    otlp_attr_head(b, field, key, klen, 9);
    pb_double(b, OTLP_ANY_DOUBLE, value);
}

static inline void
otlp_attr_bool(buf_t *b, unsigned field, const char *key, size_t klen,
    int value)
{
    otlp_attr_head(b, field, key, klen, 2);
    pb_uint(b, OTLP_ANY_BOOL, value != 0);
}

/*
 * The gateway's Resource message (its attributes): service.name,
 * host.name, then OTEL_RESOURCE_ATTRIBUTES' key=value,... (a service.name
 * there does not replace the first).
 */
void otlp_resource(buf_t *b, const char *service_name, const char *host,
    const char *attributes);

/* An Export*ServiceRequest holding the resource and items (each already a
   ScopeSpans.spans, ScopeLogs.log_records or ScopeMetrics.metrics field),
   under the gateway's instrumentation scope. */
void otlp_request(buf_t *out, const buf_t *resource, const buf_t *items);

/* What otlp_request writes before the items (items_len bytes of them), so
   that a batch can be copied once, straight after it. */
void otlp_request_head(buf_t *out, const buf_t *resource, size_t items_len);

/*
 * Splits an address as nginx writes it ("host:port", "[v6]:port",
 * "unix:/path", or a name) for server.address / server.port: sets
 * *host, *host_len and *port (0 when none); returns 1 for a unix socket.
 */
int otlp_host_port(const char *a, size_t len, const char **host,
    size_t *host_len, int64_t *port);

#endif
