/*
 * libFuzzer target: arbitrary bytes in every text field of a record (and
 * arbitrary numbers, and up to 20 obs_log_fields with arbitrary names and
 * values) through the exporter's JSON writer; jansson must parse
 * every line, every field must read back as its sanitised text, and the
 * line must survive Loki's JSON push (t/unit/logline_oracle.h).  Any
 * disagreement aborts.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "logline_oracle.h"

typedef struct {
    const uint8_t  *p;
    size_t          left;
} input_t;

/* The next field: a two-byte length (cut to what is left), then bytes. */
static void
take_text(input_t *in, ProtobufCBinaryData *out)
{
    size_t  n = 0;

    if (in->left >= 2) {
        n = ((size_t) in->p[0] | (size_t) in->p[1] << 8) % 4096;
        in->p += 2;
        in->left -= 2;
    }
    if (n > in->left) {
        n = in->left;
    }
    out->data = (uint8_t *) in->p;
    out->len = n;
    in->p += n;
    in->left -= n;
}

static uint64_t
take_u64(input_t *in)
{
    uint64_t  v = 0;
    size_t    n = in->left < 8 ? in->left : 8;

    memcpy(&v, in->p, n);
    in->p += n;
    in->left -= n;
    return v;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Obs__V1__Record           r;
    Obs__V1__UpstreamAttempt  a, *ap = &a;
    Obs__V1__LogField         f[20], *fp[20];
    ProtobufCBinaryData       svc;
    size_t                    i;
    input_t                   in = { data, size };
    char                      service[LOKI_SERVICE_MAX], why[256];

    obs__v1__record__init(&r);
    obs__v1__upstream_attempt__init(&a);

    r.status = (uint32_t) take_u64(&in);
    r.duration_us = take_u64(&in);
    r.request_bytes = take_u64(&in);
    r.response_bytes = take_u64(&in);
    r.start_time_unix_nano = take_u64(&in) % 4102444800000000000ULL;
    a.status = (uint32_t) take_u64(&in);
    a.response_time_us = take_u64(&in);

    take_text(&in, &svc);
    take_text(&in, &r.tenant);
    take_text(&in, &r.route);
    take_text(&in, &r.method);
    take_text(&in, &r.path);
    take_text(&in, &r.client_address);
    take_text(&in, &r.user_agent);
    take_text(&in, &r.request_id);
    take_text(&in, &a.address);
    take_text(&in, &r.trace_id);
    take_text(&in, &r.span_id);

    r.n_fields = (size_t) (take_u64(&in) % 21);
    r.fields = fp;
    for (i = 0; i < r.n_fields; i++) {
        obs__v1__log_field__init(&f[i]);
        take_text(&in, &f[i].name);
        take_text(&in, &f[i].value);
        fp[i] = &f[i];
    }

    if (a.status & 1) {
        r.n_upstreams = 1;
        r.upstreams = &ap;
    }

    /* the service arrives sanitised, as the exporter threads pass it */
    if (text_utf8(svc.data, svc.len, service, sizeof(service)) == 0) {
        strcpy(service, "unknown");
    }

    if (oracle_check(&r, service, "gateway", why, sizeof(why)) != 0) {
        fprintf(stderr, "oracle: %s\n", why);
        abort();
    }

    return 0;
}
