/* OTLP receivers' answers.  See otlp_result.h. */

#include <stdio.h>
#include <string.h>

#include "otlp_result.h"
#include "pb.h"

#define RETRY_INFO_TYPE  "type.googleapis.com/google.rpc.RetryInfo"

static void otlp_printable(char *out, size_t size, const char *in,
    size_t len, int percent);
static size_t base64_decode(const char *in, uint8_t *out, size_t cap);

http_verdict_t
otlp_http_classify(http_response_t *r)
{
    http_verdict_t  v = http_classify(r);

    if (v == HTTP_SENT && r->body_len) {
        (void) otlp_partial_success((const uint8_t *) r->body, r->body_len,
                                    r);
    }
    return v;
}

http_verdict_t
otlp_grpc_classify(http_response_t *r)
{
    const uint8_t  *msg = (const uint8_t *) r->body;
    size_t          len;
    double          delay;
    int             code = r->grpc_status;

    if (!r->answered) {
        return HTTP_RETRY;
    }

    if (code < 0) {
        /* no gRPC answer: what gRPC makes of the HTTP status */
        if (r->status >= 300 && r->status < 400) {
            return HTTP_REDIRECTED;
        }
        code = r->status == 429 || r->status == 502 || r->status == 503
               || r->status == 504 ? GRPC_UNAVAILABLE : GRPC_UNKNOWN;
        r->grpc_status = code;
        snprintf(r->grpc_message, sizeof(r->grpc_message),
                 "no grpc-status in the answer (HTTP %ld)", r->status);
    } else {
        otlp_printable(r->grpc_message, sizeof(r->grpc_message),
                       r->grpc_message, strlen(r->grpc_message), 1);
    }

    if (code == GRPC_OK) {
        /* one uncompressed message: flag 0, length, ExportResponse */
        if (r->body_len >= 5 && msg[0] == 0) {
            len = (size_t) msg[1] << 24 | (size_t) msg[2] << 16
                  | (size_t) msg[3] << 8 | msg[4];
            len = len < r->body_len - 5 ? len : r->body_len - 5;
            (void) otlp_partial_success(msg + 5, len, r);
        }
        return HTTP_SENT;
    }

    delay = otlp_retry_info(r->grpc_details);

    switch (code) {
    case GRPC_RESOURCE_EXHAUSTED:
        if (delay < 0) {
            return HTTP_REJECTED;
        }
        /* fall through */
    case GRPC_CANCELLED:
    case GRPC_DEADLINE_EXCEEDED:
    case GRPC_ABORTED:
    case GRPC_OUT_OF_RANGE:
    case GRPC_UNAVAILABLE:
    case GRPC_DATA_LOSS:
        if (delay >= 0) {
            r->retry_after = delay;
        }
        return HTTP_RETRY;
    default:
        return HTTP_REJECTED;
    }
}

int
otlp_partial_success(const uint8_t *msg, size_t len, http_response_t *r)
{
    const uint8_t  *p = msg, *end = msg + len, *q, *qend;
    pb_field_t      g;
    uint64_t        key, n;

    /* partial_success = 1: read by hand, so that a message cut short by
       the answer bytes kept still gives what came */
    while (p < end) {
        if (pb_read_varint(&p, end, &key) != 0) {
            return p == msg ? -1 : 0;
        }
        if ((key & 7) == PB_VARINT) {
            if (pb_read_varint(&p, end, &n) != 0) {
                return 0;
            }
            continue;
        }
        if ((key & 7) != PB_LEN || pb_read_varint(&p, end, &n) != 0) {
            return key >> 3 == 1 ? 0 : -1;
        }
        q = p;
        qend = n < (uint64_t) (end - p) ? p + n : end;
        p = qend;
        if (key >> 3 != 1) {
            continue;
        }

        /* rejected_* = 1, error_message = 2 */
        while (pb_next(&q, qend, &g) == 1) {
            if (g.field == 1 && g.wire == PB_VARINT) {
                r->rejected = (int64_t) g.value > 0 ? (size_t) g.value : 0;
            } else if (g.field == 2 && g.wire == PB_LEN) {
                otlp_printable(r->rejected_why, sizeof(r->rejected_why),
                               (const char *) g.data, g.len, 0);
            }
        }
    }

    return 0;
}

double
otlp_retry_info(const char *details_base64)
{
    uint8_t         raw[HTTP_GRPC_DETAILS];
    const uint8_t  *p, *end, *q, *qend, *d, *dend;
    pb_field_t      f, g, h;
    const uint8_t  *value = NULL;
    size_t          n, value_len = 0;
    double          s = 0, ns = 0;

    n = base64_decode(details_base64, raw, sizeof(raw));
    p = raw;
    end = raw + n;

    /* google.rpc.Status: details = 3 (google.protobuf.Any: type_url = 1,
       value = 2) */
    while (pb_next(&p, end, &f) == 1) {
        if (f.field != 3 || f.wire != PB_LEN) {
            continue;
        }
        q = f.data;
        qend = f.data + f.len;
        value = NULL;
        n = 0;
        while (pb_next(&q, qend, &g) == 1) {
            if (g.field == 1 && g.wire == PB_LEN) {
                n = g.len == sizeof(RETRY_INFO_TYPE) - 1
                    && memcmp(g.data, RETRY_INFO_TYPE, g.len) == 0;
            } else if (g.field == 2 && g.wire == PB_LEN) {
                value = g.data;
                value_len = g.len;
            }
        }
        if (n && value) {
            break;
        }
        value = NULL;
    }

    if (value == NULL) {
        return -1;
    }

    /* RetryInfo: retry_delay = 1 (google.protobuf.Duration: seconds = 1,
       nanos = 2) */
    q = value;
    qend = value + value_len;
    while (pb_next(&q, qend, &g) == 1) {
        if (g.field != 1 || g.wire != PB_LEN) {
            continue;
        }
        d = g.data;
        dend = g.data + g.len;
        while (pb_next(&d, dend, &h) == 1) {
            if (h.field == 1 && h.wire == PB_VARINT) {
                s = (double) (int64_t) h.value;
            } else if (h.field == 2 && h.wire == PB_VARINT) {
                ns = (double) (int32_t) h.value;
            }
        }
    }

    /* a RetryInfo without a delay (or a negative one): at once */
    return s + ns / 1e9 > 0 ? s + ns / 1e9 : 0;
}

/* Printable ASCII for the log: %XX decoded when percent (grpc-message),
   anything else outside 0x20-0x7e and quotes made '.'. */
static void
otlp_printable(char *out, size_t size, const char *in, size_t len,
    int percent)
{
    char    tmp[256];
    size_t  i, n = 0;
    int     hi, lo;

    for (i = 0; i < len && n < sizeof(tmp) - 1 && n < size - 1; i++) {
        unsigned char  c = (unsigned char) in[i];

        if (percent && c == '%' && i + 2 < len) {
            hi = in[i + 1];
            lo = in[i + 2];
            hi = hi >= '0' && hi <= '9' ? hi - '0'
                 : (hi | 0x20) >= 'a' && (hi | 0x20) <= 'f'
                 ? (hi | 0x20) - 'a' + 10 : -1;
            lo = lo >= '0' && lo <= '9' ? lo - '0'
                 : (lo | 0x20) >= 'a' && (lo | 0x20) <= 'f'
                 ? (lo | 0x20) - 'a' + 10 : -1;
            if (hi >= 0 && lo >= 0) {
                c = (unsigned char) (hi << 4 | lo);
                i += 2;
            }
        }

        tmp[n++] = c < 0x20 || c >= 0x7f || c == '"' || c == '\\'
                   ? '.' : (char) c;
    }

    tmp[n] = '\0';
    memcpy(out, tmp, n + 1);
}

/* Standard base64, padding optional; stops at the first other byte. */
static size_t
base64_decode(const char *in, uint8_t *out, size_t cap)
{
    uint32_t  acc = 0;
    size_t    n = 0;
    int       bits = 0, v;

    for ( ; *in && *in != '='; in++) {
        char  c = *in;

        v = c >= 'A' && c <= 'Z' ? c - 'A'
            : c >= 'a' && c <= 'z' ? c - 'a' + 26
            : c >= '0' && c <= '9' ? c - '0' + 52
            : c == '+' ? 62 : c == '/' ? 63 : -1;
        if (v < 0) {
            break;
        }
        acc = acc << 6 | (uint32_t) v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap) {
                break;
            }
            out[n++] = (uint8_t) (acc >> bits);
        }
    }

    return n;
}
