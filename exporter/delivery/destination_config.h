/*
 * What every destination is configured with (the settings rows each
 * destination's table includes): where to send, auth and TLS files, extra
 * headers, the request timeout, the memory queue and the on-disk spool.
 * Extra headers are checked here once for every destination: names are
 * RFC 9110 tokens, values carry no CR, LF, NUL or other control byte.
 */

#ifndef OBS_DESTINATION_CONFIG_H
#define OBS_DESTINATION_CONFIG_H

#include <stddef.h>

#include "settings.h"

#define DESTINATION_MAX_HEADERS  16
#define SPOOL_FILES_DEFAULT      4096

typedef struct {
    char    *url;                   /* where to POST */
    char    *file;                  /* Loki/OTLP without a URL: "-" stdout */
    char    *headers[DESTINATION_MAX_HEADERS];  /* "Name: value" */
    int      n_headers;
    char    *basic_user;
    char    *basic_password;
    char    *bearer_token;
    char    *ca_file;
    char    *cert_file;
    char    *key_file;
    size_t   batch_bytes;           /* Loki: 1 MiB */
    size_t   batch_items;           /* OTLP: 512 spans */
    long     batch_wait_ms;         /* 1000 */
    long     timeout_ms;            /* per request: 10000 */
    size_t   queue_bytes;           /* memory queue bound */
    size_t   spool_bytes;           /* disk spool bound (0: no spool) */
    size_t   spool_files;           /* and at most this many files */
    char    *spool_dir;
} destination_config_t;

/* "headers": {"Name": "value"} of a destination (a destination_config_t
   at s->offset); every name and value checked. */
int destination_set_headers(const setting_t *s, void *base, json_t *v,
    const char *text, const char *where, char *err, size_t errlen);

/*
 * Adds "key1=value1,key2=value2" (OTEL_EXPORTER_OTLP_HEADERS: W3C
 * baggage style, values percent-decoded, whitespace around keys and values
 * ignored) to cfg's headers; refuses a name that is not a token, a '%' not
 * followed by two hex digits, and a value that decodes to a control byte.
 */
int destination_add_header_list(destination_config_t *cfg, const char *text,
    const char *where, char *err, size_t errlen);

/* Whether name[0..name_len) is a token and value[0..value_len) a field
   value (RFC 9110: no CR, LF, NUL or other control byte but tab). */
int destination_header_ok(const char *name, size_t name_len,
    const char *value, size_t value_len);

/* Cross-setting rules of a destination (name is its key). */
int destination_config_check(const destination_config_t *c, const char *name,
    char *err, size_t errlen);

/* *dst = a copy of src (NULL stays NULL); -1 when out of memory. */
int config_copy_string(char **dst, const char *src);

/* Deep-copies a destination's settings; -1 when out of memory (what was
   copied is still dst's to free). */
int destination_config_copy(destination_config_t *dst,
    const destination_config_t *src);

/* Frees what a destination's settings hold. */
void destination_config_free(destination_config_t *cfg);

/* Rows every push destination has, for a destination_config_t at
   offsetof(T, f). */
#define DESTINATION_ROWS(T, f)                                               \
    { "headers", SETTING_CUSTOM, offsetof(T, f), 0, 0, NULL, NULL,           \
      "extra request headers (an object of strings)", NULL,                  \
      destination_set_headers },                                             \
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
#define DESTINATION_SPOOL_ROWS(T, f)                                         \
    { "spool_dir", SETTING_STRING, offsetof(T, f.spool_dir), 0, 0, NULL,     \
      NULL, "on-disk spool directory (with spool_bytes)", NULL, NULL },      \
    { "spool_bytes", SETTING_SIZE, offsetof(T, f.spool_bytes), 1, 1e15,      \
      NULL, NULL, "on-disk spool bound", NULL, NULL },                       \
    { "spool_files", SETTING_SIZE, offsetof(T, f.spool_files), 1, 1e7,       \
      NULL, NULL, "on-disk spool bound in files", NULL, NULL }

#endif
