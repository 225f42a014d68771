/*
 * The exporters' settings (settings.h rows): the top-level keys they own
 * (logs_file, logs, exporter_threads, ...), one table per sink ("loki",
 * "otlp"), and the rows every push destination shares, which the
 * sidecar's remote-write and ClickHouse tables reuse.
 */

#ifndef OBS_EXPORTER_CONFIG_H
#define OBS_EXPORTER_CONFIG_H

#include <stddef.h>

#include "exporter.h"
#include "settings.h"

/* The names of tenant_header_t, for every table with a tenant_header. */
extern const char *const  exporter_tenant_modes[];

/* Top-level rows, relative to exporter_config_t; "loki" and "otlp" nest. */
extern const setting_t  exporter_settings[];

/* "headers": {"Name": "value"} of a destination (a sink_config_t at
   s->offset). */
int sink_set_headers(const setting_t *s, void *base, json_t *v,
    const char *text, const char *where, char *err, size_t errlen);

/* Cross-setting rules a row cannot say ("fixed" needs "org_id", ...). */
int exporter_config_check(const exporter_config_t *cfg, char *err,
    size_t errlen);

/* A sink's spool_dir and spool_bytes go together; name is its key. */
int sink_config_check(const sink_config_t *s, const char *name, char *err,
    size_t errlen);

/* *dst = a copy of src (NULL stays NULL); -1 when out of memory. */
int config_copy_string(char **dst, const char *src);

/* Deep-copies a destination's settings; -1 when out of memory (what was
   copied is still dst's to free). */
int sink_config_copy(sink_config_t *dst, const sink_config_t *src);

/* Deep-copies src into dst (dst is overwritten); -1 when out of memory. */
int exporter_config_copy(exporter_config_t *dst,
    const exporter_config_t *src);

/* Rows every push destination has, for a sink_config_t at offsetof(T, f). */
#define SINK_PUSH_ROWS(T, f)                                                 \
    { "headers", SETTING_CUSTOM, offsetof(T, f), 0, 0, NULL, NULL,           \
      "extra request headers (an object of strings)", NULL,                  \
      sink_set_headers },                                                    \
    { "basic_user", SETTING_STRING, offsetof(T, f.basic_user), 0, 0, NULL,   \
      NULL, "HTTP basic auth user (with basic_password_file)", NULL, NULL }, \
    { "basic_password_file", SETTING_SECRET,                                 \
      offsetof(T, f.basic_password), 0, 0, NULL, NULL,                       \
      "file holding the basic auth password", NULL, NULL },                  \
    { "bearer_token_file", SETTING_SECRET, offsetof(T, f.bearer_token), 0,   \
      0, NULL, NULL, "file holding a bearer token", NULL, NULL },            \
    { "ca_file", SETTING_STRING, offsetof(T, f.ca_file), 0, 0, NULL, NULL,   \
      "CA bundle to verify the receiver", NULL, NULL },                      \
    { "cert_file", SETTING_STRING, offsetof(T, f.cert_file), 0, 0, NULL,     \
      NULL, "client certificate (TLS)", NULL, NULL },                        \
    { "key_file", SETTING_STRING, offsetof(T, f.key_file), 0, 0, NULL,       \
      NULL, "client key (TLS)", NULL, NULL },                                \
    { "timeout_ms", SETTING_LONG, offsetof(T, f.timeout_ms), 1, 3600000,     \
      NULL, NULL, "per request", NULL, NULL },                               \
    { "queue_bytes", SETTING_SIZE, offsetof(T, f.queue_bytes), 1, 1e12,      \
      NULL, NULL, "memory queue bound", NULL, NULL }

/* The on-disk spool of a destination. */
#define SINK_SPOOL_ROWS(T, f)                                                \
    { "spool_dir", SETTING_STRING, offsetof(T, f.spool_dir), 0, 0, NULL,     \
      NULL, "on-disk spool directory (with spool_bytes)", NULL, NULL },      \
    { "spool_bytes", SETTING_SIZE, offsetof(T, f.spool_bytes), 1, 1e15,      \
      NULL, NULL, "on-disk spool bound", NULL, NULL }

#endif
