/* libFuzzer target: traceparent parsing, tracestate combining and route
   templates must accept any bytes without crashing or overrunning. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "obs_route.h"
#include "obs_tracecontext.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    obs_traceparent_t  tp;
    obs_slice_t         spans[4];
    char               route[OBS_ROUTE_MAX_LEN], *out;
    size_t             n, part, i;
    long               len;

    obs_traceparent_parse((const char *) data, size, &tp);
    obs_route_normalize((const char *) data, size, route);
    obs_tenant_label((const char *) data, size, &n);

    /* the input split into up to four tracestate header values */
    part = size / 4;
    for (i = 0; i < 4; i++) {
        spans[i].data = (const char *) data + i * part;
        spans[i].len = i == 3 ? size - 3 * part : part;
    }

    out = malloc(size + 4);
    if (out) {
        len = obs_tracestate_combine(spans, 4, out);
        if (len > (long) size + 3) {
            abort();            /* values plus the commas that join them */
        }
        free(out);
    }

    return 0;
}
