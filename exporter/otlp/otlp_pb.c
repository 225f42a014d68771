/* What the OTLP encoders share.  See otlp_pb.h. */

#include <stdio.h>
#include <string.h>

#include "otlp_pb.h"

#ifndef OBS_EXPORTER_VERSION
#define OBS_EXPORTER_VERSION "dev"
#endif

#define SCOPE_NAME  "obs-gateway"

enum {
    REQUEST_RESOURCE = 1, R_RESOURCE = 1, R_SCOPE = 2,
    RESOURCE_ATTRIBUTES = 1, S_SCOPE = 1, SCOPE_NAME_FIELD = 1,
    SCOPE_VERSION = 2
};

void
otlp_resource(buf_t *b, const char *service_name, const char *host,
    const char *attributes)
{
    const char  *item, *eq, *end;

    otlp_attr_str(b, RESOURCE_ATTRIBUTES, "service.name", 12, service_name,
                  strlen(service_name));
    otlp_attr_str(b, RESOURCE_ATTRIBUTES, "host.name", 9, host,
                  strlen(host));

    /* OTEL_RESOURCE_ATTRIBUTES: key=value,key=value */
    for (item = attributes; item && *item; item = end) {
        end = strchr(item, ',');
        end = end ? end : item + strlen(item);
        eq = memchr(item, '=', (size_t) (end - item));
        if (eq && eq != item && strncmp(item, "service.name=", 13) != 0) {
            otlp_attr_str(b, RESOURCE_ATTRIBUTES, item,
                          (size_t) (eq - item), eq + 1,
                          (size_t) (end - eq - 1));
        }
        if (*end == ',') {
            end++;
        }
    }
}

void
otlp_request(buf_t *out, const buf_t *resource, const buf_t *items)
{
    otlp_request_head(out, resource, items->len);
    buf_append(out, items->data, items->len);
}

void
otlp_request_head(buf_t *out, const buf_t *resource, size_t items_len)
{
    size_t  scope, ss, rs, vlen = strlen(OBS_EXPORTER_VERSION);

    scope = pb_len_size(SCOPE_NAME_FIELD, sizeof(SCOPE_NAME) - 1)
            + pb_len_size(SCOPE_VERSION, vlen);
    ss = pb_len_size(S_SCOPE, scope) + items_len;
    rs = pb_len_size(R_RESOURCE, resource->len) + pb_len_size(R_SCOPE, ss);

    pb_len(out, REQUEST_RESOURCE, rs);
    pb_bytes(out, R_RESOURCE, resource->data, resource->len);
    pb_len(out, R_SCOPE, ss);
    pb_len(out, S_SCOPE, scope);
    pb_bytes(out, SCOPE_NAME_FIELD, SCOPE_NAME, sizeof(SCOPE_NAME) - 1);
    pb_bytes(out, SCOPE_VERSION, OBS_EXPORTER_VERSION, vlen);
}

int
otlp_host_port(const char *a, size_t len, const char **host,
    size_t *host_len, int64_t *port)
{
    size_t   n, i;
    int64_t  p = 0;

    *host = a;
    *host_len = len;
    *port = 0;

    if (len > 5 && memcmp(a, "unix:", 5) == 0) {
        *host = a + 5;
        *host_len = len - 5;
        return 1;
    }

    for (n = len; n > 0 && a[n - 1] != ':'; n--) {
        /* void */
    }

    /* no port, or a bare IPv6 address */
    if (n == 0 || n == len || len - n > 5
        || (a[0] != '[' && memchr(a, ':', n - 1) != NULL))
    {
        return 0;
    }

    for (i = n; i < len; i++) {
        if (a[i] < '0' || a[i] > '9') {
            return 0;
        }
        p = p * 10 + (a[i] - '0');
    }

    n--;                            /* the colon */
    if (n >= 2 && a[0] == '[' && a[n - 1] == ']') {
        a++;
        n -= 2;
    }

    *host = a;
    *host_len = n;
    *port = p;
    return 0;
}
