/*
 * The exporters' settings: rows for the top-level keys, the "loki" and
 * "otlp" tables, and the OTEL_EXPORTER_OTLP_* variables.
 */

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "exporter_config.h"

static int otlp_set_endpoint(const setting_t *s, void *base, json_t *v,
    const char *text, const char *where, char *err, size_t errlen);
static int otlp_set_env_headers(const setting_t *s, void *base, json_t *v,
    const char *text, const char *where, char *err, size_t errlen);
static char *otlp_header(const char *item, const char *value);

const char *const  exporter_tenant_modes[] = {
    "none", "fixed", "per_tenant", NULL         /* tenant_header_t */
};
static const char *const  loki_formats[] = { "protobuf", "json", NULL };
static const char *const  compressions[] = { "none", "gzip", NULL };

#define X  exporter_config_t

static const setting_t  loki_settings[] = {
    { "url", SETTING_URL, offsetof(X, loki.url), 0, 0,
      "OBS_SIDECAR_LOKI_URL", "--loki-url URL",
      "push log lines to Loki (the full push URL)", NULL, NULL },
    SINK_PUSH_ROWS(X, loki),
    SINK_SPOOL_ROWS(X, loki),
    { "batch_bytes", SETTING_SIZE, offsetof(X, loki.batch_bytes), 1, 1e9,
      NULL, NULL, "a batch is sent at this size", NULL, NULL },
    { "batch_wait_ms", SETTING_LONG, offsetof(X, loki.batch_wait_ms), 1,
      3600000, NULL, NULL, "or after this long", NULL, NULL },
    { "tenant_header", SETTING_ENUM, offsetof(X, tenant_header), 0, 0,
      NULL, NULL, "X-Scope-OrgID: none, fixed (loki.org_id) or per tenant",
      exporter_tenant_modes, NULL },
    { "org_id", SETTING_STRING, offsetof(X, org_id), 0, 0, NULL, NULL,
      "the X-Scope-OrgID of tenant_header fixed", NULL, NULL },
    { "format", SETTING_ENUM, offsetof(X, loki_json), 0, 0,
      "OBS_SIDECAR_LOKI_FORMAT", "--loki-format FORMAT",
      "push body: snappy protobuf or gzip'd JSON", loki_formats, NULL },
    SETTINGS_END
};

static const setting_t  otlp_settings[] = {
    { "endpoint", SETTING_CUSTOM, offsetof(X, otlp.url), 0, 0,
      "OTEL_EXPORTER_OTLP_ENDPOINT", "--otlp-endpoint URL",
      "send spans over OTLP/HTTP (/v1/traces is appended)", NULL,
      otlp_set_endpoint },
    { NULL, SETTING_URL, offsetof(X, otlp.url), 0, 0,
      "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", NULL,
      "the OTLP traces URL, used as it is", NULL, NULL },
    { "url", SETTING_URL, offsetof(X, otlp.url), 0, 0, NULL, NULL,
      "the OTLP traces URL, used as it is", NULL, NULL },
    SINK_PUSH_ROWS(X, otlp),
    { NULL, SETTING_CUSTOM, offsetof(X, otlp), 0, 0,
      "OTEL_EXPORTER_OTLP_HEADERS", NULL,
      "key=value,... headers (values percent-encoded)", NULL,
      otlp_set_env_headers },
    { NULL, SETTING_CUSTOM, offsetof(X, otlp), 0, 0,
      "OTEL_EXPORTER_OTLP_TRACES_HEADERS", NULL,
      "the same, for traces only (wins)", NULL, otlp_set_env_headers },
    SINK_SPOOL_ROWS(X, otlp),
    { "batch_spans", SETTING_SIZE, offsetof(X, otlp.batch_items), 1, 1e7,
      NULL, NULL, "a batch is sent at this many spans", NULL, NULL },
    { "batch_wait_ms", SETTING_LONG, offsetof(X, otlp.batch_wait_ms), 1,
      3600000, NULL, NULL, "or after this long", NULL, NULL },
    { "slow_ms", SETTING_LONG, offsetof(X, slow_ms), 1, 1e9, NULL, NULL,
      "spans of requests at least this slow are always kept", NULL, NULL },
    { "compression", SETTING_ENUM, offsetof(X, otlp_gzip), 0, 0,
      "OTEL_EXPORTER_OTLP_COMPRESSION", NULL, "OTLP request bodies",
      compressions, NULL },
    { NULL, SETTING_ENUM, offsetof(X, otlp_gzip), 0, 0,
      "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", NULL,
      "the same, for traces only (wins)", compressions, NULL },
    SETTINGS_END
};

const setting_t  exporter_settings[] = {
    { "loki", SETTING_OBJECT, 0, 0, 0, NULL, NULL, "Loki", loki_settings,
      NULL },
    { "otlp", SETTING_OBJECT, 0, 0, 0, NULL, NULL, "OTLP/HTTP",
      otlp_settings, NULL },
    { "logs_file", SETTING_STRING, offsetof(X, loki.file), 0, 0, NULL,
      "--logs-file PATH", "without Loki: JSON log lines to PATH (- is "
      "stdout)", NULL, NULL },
    { "spans_file", SETTING_STRING, offsetof(X, otlp.file), 0, 0, NULL,
      "--spans-file PATH", "without OTLP: OTLP/JSON lines to PATH (- is "
      "stdout)", NULL, NULL },
    { "gateway_name", SETTING_STRING, offsetof(X, gateway_name), 0, 0,
      "OTEL_SERVICE_NAME", NULL, "resource service.name of the spans", NULL,
      NULL },
    { NULL, SETTING_STRING, offsetof(X, resource_attributes), 0, 0,
      "OTEL_RESOURCE_ATTRIBUTES", NULL, "resource attributes of the spans",
      NULL, NULL },
    { "drain_seconds", SETTING_NUMBER, offsetof(X, drain_seconds), 0, 1e6,
      NULL, NULL, "SIGTERM: deliver for at most this long", NULL, NULL },
    { "logs", SETTING_BOOL, offsetof(X, logs), 0, 0, "OBS_SIDECAR_LOGS",
      "--no-logs", "export log lines (--no-logs: none)", NULL, NULL },
    { "traces", SETTING_BOOL, offsetof(X, traces), 0, 0,
      "OBS_SIDECAR_TRACES", "--no-traces",
      "export spans (--no-traces: none)", NULL, NULL },
    { "exporter_threads", SETTING_LONG, offsetof(X, threads), 1, 16,
      "OBS_SIDECAR_EXPORTER_THREADS", "--exporter-threads N",
      "threads building lines and spans", NULL, NULL },
    { "exporter_queue_datagrams", SETTING_LONG, offsetof(X, queue_datagrams),
      1, 4096, NULL, NULL, "hand-off ring (each slot up to 64 KiB)", NULL,
      NULL },
    SETTINGS_END
};

#undef X

int
sink_set_headers(const setting_t *s, void *base, json_t *v, const char *text,
    const char *where, char *err, size_t errlen)
{
    sink_config_t  *sink = (sink_config_t *) ((char *) base + s->offset);
    const char     *key;
    json_t         *h;
    char           *line;

    (void) text;

    if (!json_is_object(v)) {
        snprintf(err, errlen, "config: \"%s\" must be an object of strings",
                 where);
        return -1;
    }

    json_object_foreach(v, key, h) {
        if (!json_is_string(h) || sink->n_headers == EXPORTER_MAX_HEADERS
            || strpbrk(key, ":\r\n") || strpbrk(json_string_value(h), "\r\n"))
        {
            snprintf(err, errlen, "config: \"%s.%s\" must be a one-line "
                     "string (at most %d headers)", where, key,
                     EXPORTER_MAX_HEADERS);
            return -1;
        }
        line = malloc(strlen(key) + json_string_length(h) + 3);
        if (line == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        sprintf(line, "%s: %s", key, json_string_value(h));
        sink->headers[sink->n_headers++] = line;
    }

    return 0;
}

/* A base endpoint gets /v1/traces. */

static int
otlp_set_endpoint(const setting_t *s, void *base, json_t *v, const char *text,
    const char *where, char *err, size_t errlen)
{
    char        **url = (char **) ((char *) base + s->offset);
    const char   *e;
    size_t        n;

    if (v && !json_is_string(v)) {
        snprintf(err, errlen, "config: \"%s\" must be a string", where);
        return -1;
    }
    e = v ? json_string_value(v) : text;
    if (!settings_url_ok(e)) {
        snprintf(err, errlen, "%s: \"%.256s\" is not an http:// or https:// "
                 "URL with a host", where, e);
        return -1;
    }

    n = strlen(e);
    n -= n && e[n - 1] == '/';
    free(*url);
    *url = malloc(n + sizeof("/v1/traces"));
    if (*url == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    sprintf(*url, "%.*s/v1/traces", (int) n, e);
    return 0;
}

/* "key1=value1,key2=value2" with percent-encoded values (W3C baggage
   style, as the OpenTelemetry specification defines it); the traces
   variable, when set, is taken instead of the general one. */

static int
otlp_set_env_headers(const setting_t *s, void *base, json_t *v,
    const char *text, const char *where, char *err, size_t errlen)
{
    sink_config_t  *sink = (sink_config_t *) ((char *) base + s->offset);
    const char     *traces = getenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS");
    char           *copy, *item, *save, *eq, *header;

    (void) v;

    if (strcmp(where, "OTEL_EXPORTER_OTLP_HEADERS") == 0 && traces
        && *traces)
    {
        return 0;
    }

    copy = strdup(text);
    if (copy == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    for (item = strtok_r(copy, ",", &save); item;
         item = strtok_r(NULL, ",", &save))
    {
        while (*item == ' ') {
            item++;
        }
        eq = strchr(item, '=');
        if (eq == NULL || eq == item || sink->n_headers == EXPORTER_MAX_HEADERS
            || strpbrk(item, "\r\n"))
        {
            snprintf(err, errlen, "%s: invalid entry \"%.64s\" (key=value "
                     "expected, at most %d)", where, item,
                     EXPORTER_MAX_HEADERS);
            free(copy);
            return -1;
        }
        *eq = '\0';

        header = otlp_header(item, eq + 1);
        if (header == NULL) {
            snprintf(err, errlen, "%s: the value of \"%.64s\" is not one "
                     "line (or out of memory)", where, item);
            free(copy);
            return -1;
        }
        sink->headers[sink->n_headers++] = header;
    }

    free(copy);
    return 0;
}

/* "key: value" with the value percent-decoded: never longer than the
   entry, so allocated to fit it; NULL if it decodes to CR or LF. */

static char *
otlp_header(const char *item, const char *value)
{
    char        *header, *o;
    const char  *v;

    header = malloc(strlen(item) + strlen(value) + 3);
    if (header == NULL) {
        return NULL;
    }

    o = header + sprintf(header, "%s: ", item);
    for (v = value; *v; v++) {
        if (v[0] == '%' && isxdigit((unsigned char) v[1])
            && isxdigit((unsigned char) v[2]))
        {
            char  hex[3] = { v[1], v[2], 0 };
            *o++ = (char) strtol(hex, NULL, 16);
            v += 2;
        } else {
            *o++ = *v;
        }
    }
    *o = '\0';

    if (strpbrk(header, "\r\n")) {
        free(header);
        return NULL;
    }
    return header;
}

int
sink_config_check(const sink_config_t *s, const char *name, char *err,
    size_t errlen)
{
    if ((s->spool_dir == NULL) != (s->spool_bytes == 0)) {
        snprintf(err, errlen, "config: \"%s.spool_dir\" and "
                 "\"%s.spool_bytes\" go together", name, name);
        return -1;
    }

    if ((s->basic_user == NULL) != (s->basic_password == NULL)) {
        snprintf(err, errlen, "config: \"%s.basic_user\" and "
                 "\"%s.basic_password_file\" go together", name, name);
        return -1;
    }

    return 0;
}

int
exporter_config_check(const exporter_config_t *cfg, char *err, size_t errlen)
{
    if (sink_config_check(&cfg->loki, "loki", err, errlen) != 0
        || sink_config_check(&cfg->otlp, "otlp", err, errlen) != 0)
    {
        return -1;
    }

    if (cfg->tenant_header == TENANT_HEADER_FIXED && cfg->org_id == NULL) {
        snprintf(err, errlen, "config: \"loki.tenant_header\": \"fixed\" "
                 "needs \"loki.org_id\"");
        return -1;
    }

    if (cfg->tenant_header != TENANT_HEADER_FIXED && cfg->org_id) {
        snprintf(err, errlen, "config: \"loki.org_id\" is used only with "
                 "\"loki.tenant_header\": \"fixed\"");
        return -1;
    }

    return 0;
}

int
config_copy_string(char **dst, const char *src)
{
    *dst = src ? strdup(src) : NULL;
    return src && *dst == NULL ? -1 : 0;
}

int
sink_config_copy(sink_config_t *dst, const sink_config_t *src)
{
    int  i, rc = 0;

    *dst = *src;
    rc |= config_copy_string(&dst->url, src->url);
    rc |= config_copy_string(&dst->file, src->file);
    rc |= config_copy_string(&dst->basic_user, src->basic_user);
    rc |= config_copy_string(&dst->basic_password, src->basic_password);
    rc |= config_copy_string(&dst->bearer_token, src->bearer_token);
    rc |= config_copy_string(&dst->ca_file, src->ca_file);
    rc |= config_copy_string(&dst->cert_file, src->cert_file);
    rc |= config_copy_string(&dst->key_file, src->key_file);
    rc |= config_copy_string(&dst->spool_dir, src->spool_dir);
    for (i = 0; i < src->n_headers; i++) {
        rc |= config_copy_string(&dst->headers[i], src->headers[i]);
    }
    return rc ? -1 : 0;
}

int
exporter_config_copy(exporter_config_t *dst, const exporter_config_t *src)
{
    int  rc = 0;

    *dst = *src;
    rc |= sink_config_copy(&dst->loki, &src->loki);
    rc |= sink_config_copy(&dst->otlp, &src->otlp);
    rc |= config_copy_string(&dst->org_id, src->org_id);
    rc |= config_copy_string(&dst->gateway_name, src->gateway_name);
    rc |= config_copy_string(&dst->gateway_host, src->gateway_host);
    rc |= config_copy_string(&dst->resource_attributes,
                             src->resource_attributes);
    return rc ? -1 : 0;
}
