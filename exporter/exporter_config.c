/*
 * The exporters' settings: rows for the top-level keys, the "loki" and
 * "otlp" tables, and the OTEL_EXPORTER_OTLP_* variables.
 */

#include <stdlib.h>
#include <string.h>

#include "exporter_config.h"
#include "label_rules.h"
#include "otlp_config.h"

const char *const  exporter_tenant_modes[] = {
    "none", "fixed", "per_tenant", NULL         /* tenant_header_t */
};
static const char *const  loki_formats[] = { "protobuf", "json", NULL };
static const char *const  logs_exporters[] = { "none", "otlp", NULL };

#define X  exporter_config_t

static const setting_t  loki_settings[] = {
    { "url", SETTING_URL, offsetof(X, loki.url), 0, 0,
      "OBS_SIDECAR_LOKI_URL", "--loki-url URL",
      "push log lines to Loki (the full push URL)", NULL, NULL },
    DESTINATION_ROWS(X, loki),
    DESTINATION_SPOOL_ROWS(X, loki),
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
      "send spans over OTLP (over HTTP /v1/traces is appended)",
      "/v1/traces", otlp_set_endpoint },
    { NULL, SETTING_URL, offsetof(X, otlp.url), 0, 0,
      "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", NULL,
      "the OTLP traces URL, used as it is", NULL, NULL },
    { "url", SETTING_URL, offsetof(X, otlp.url), 0, 0, NULL, NULL,
      "the OTLP traces URL, used as it is", NULL, NULL },
    { "protocol", SETTING_ENUM, offsetof(X, otlp_protocol), 0, 0,
      "OTEL_EXPORTER_OTLP_PROTOCOL", NULL,
      "OTLP/HTTP protobuf, or OTLP/gRPC", otlp_protocols, NULL },
    { NULL, SETTING_ENUM, offsetof(X, otlp_protocol), 0, 0,
      "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", NULL,
      "the same, for traces only (wins)", otlp_protocols, NULL },
    DESTINATION_ROWS(X, otlp),
    { NULL, SETTING_LONG, offsetof(X, otlp.timeout_ms), 1, 3600000,
      "OTEL_EXPORTER_OTLP_TIMEOUT", NULL, "timeout_ms of every OTLP signal",
      NULL, NULL },
    { NULL, SETTING_LONG, offsetof(X, otlp.timeout_ms), 1, 3600000,
      "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", NULL,
      "the same, for traces only (wins)", NULL, NULL },
    { NULL, SETTING_CUSTOM, offsetof(X, otlp), 0, 0,
      "OTEL_EXPORTER_OTLP_HEADERS", NULL,
      "key=value,... headers (values percent-encoded)",
      "OTEL_EXPORTER_OTLP_TRACES_HEADERS", otlp_set_env_headers },
    { NULL, SETTING_CUSTOM, offsetof(X, otlp), 0, 0,
      "OTEL_EXPORTER_OTLP_TRACES_HEADERS", NULL,
      "the same, for traces only (wins)", NULL, otlp_set_env_headers },
    DESTINATION_SPOOL_ROWS(X, otlp),
    { "batch_spans", SETTING_SIZE, offsetof(X, otlp.batch_items), 1, 1e7,
      NULL, NULL, "a batch is sent at this many spans", NULL, NULL },
    { "batch_wait_ms", SETTING_LONG, offsetof(X, otlp.batch_wait_ms), 1,
      3600000, NULL, NULL, "or after this long", NULL, NULL },
    { "slow_ms", SETTING_LONG, offsetof(X, slow_ms), 1, 1e9, NULL, NULL,
      "spans of requests at least this slow are always kept", NULL, NULL },
    { "compression", SETTING_ENUM, offsetof(X, otlp_gzip), 0, 0,
      "OTEL_EXPORTER_OTLP_COMPRESSION", NULL, "OTLP request bodies",
      otlp_compressions, NULL },
    { NULL, SETTING_ENUM, offsetof(X, otlp_gzip), 0, 0,
      "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", NULL,
      "the same, for traces only (wins)", otlp_compressions, NULL },
    SETTINGS_END
};

static const setting_t  otlp_logs_settings[] = {
    OTLP_SIGNAL_ROWS(X, otlp_logs, otlp_logs_protocol, otlp_logs_gzip,
                     "LOGS", "logs", "/v1/logs"),
    { "batch_records", SETTING_SIZE, offsetof(X, otlp_logs.batch_items), 1,
      1e7, "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", NULL,
      "a batch is sent at this many log records", NULL, NULL },
    { "batch_bytes", SETTING_SIZE, offsetof(X, otlp_logs.batch_bytes), 1,
      1e9, NULL, NULL, "or at this size", NULL, NULL },
    { "batch_wait_ms", SETTING_LONG, offsetof(X, otlp_logs.batch_wait_ms), 1,
      3600000, "OTEL_BLRP_SCHEDULE_DELAY", NULL, "or after this long", NULL,
      NULL },
    SETTINGS_END
};

const setting_t  exporter_settings[] = {
    { "loki", SETTING_OBJECT, 0, 0, 0, NULL, NULL, "Loki", loki_settings,
      NULL },
    { "otlp", SETTING_OBJECT, 0, 0, 0, NULL, NULL, "OTLP/HTTP",
      otlp_settings, NULL },
    { "logs_exporter", SETTING_ENUM, offsetof(X, otlp_logs_on), 0, 0,
      "OTEL_LOGS_EXPORTER", NULL, "log records over OTLP too (otlp_logs.*; "
      "Loki and logs_file as set)", logs_exporters, NULL },
    { "otlp_logs", SETTING_OBJECT, 0, 0, 0, NULL, NULL, "OTLP logs",
      otlp_logs_settings, NULL },
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
      "--no-logs", "export log lines (default; --no-logs: none)", NULL, NULL },
    { "traces", SETTING_BOOL, offsetof(X, traces), 0, 0,
      "OBS_SIDECAR_TRACES", "--no-traces",
      "export spans (default; --no-traces: none)", NULL, NULL },
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
exporter_config_check(const exporter_config_t *cfg, char *err, size_t errlen)
{
    if (destination_config_check(&cfg->loki, "loki", err, errlen) != 0
        || destination_config_check(&cfg->otlp, "otlp", err, errlen) != 0
        || destination_config_check(&cfg->otlp_logs, "otlp_logs", err,
                                    errlen) != 0)
    {
        return -1;
    }

    if (cfg->tenant_header == TENANT_HEADER_FIXED && cfg->org_id == NULL) {
        snprintf(err, errlen, "config: \"loki.tenant_header\": \"fixed\" "
                 "needs \"loki.org_id\"");
        return -1;
    }

    if (cfg->org_id && !org_id_valid(cfg->org_id)) {
        snprintf(err, errlen, "config: \"loki.org_id\" must be 1 to %d of "
                 "A-Z a-z 0-9 !-_.*'() and not \".\" or \"..\"",
                 ORG_ID_MAX);
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
exporter_config_copy(exporter_config_t *dst, const exporter_config_t *src)
{
    int  rc = 0;

    *dst = *src;
    rc |= destination_config_copy(&dst->loki, &src->loki);
    rc |= destination_config_copy(&dst->otlp, &src->otlp);
    rc |= destination_config_copy(&dst->otlp_logs, &src->otlp_logs);
    rc |= config_copy_string(&dst->org_id, src->org_id);
    rc |= config_copy_string(&dst->gateway_name, src->gateway_name);
    rc |= config_copy_string(&dst->gateway_host, src->gateway_host);
    rc |= config_copy_string(&dst->resource_attributes,
                             src->resource_attributes);
    return rc ? -1 : 0;
}
