/*
 * obs-sidecar configuration.  The file is JSON (read with jansson); every
 * setting has a default, the common ones also an environment variable and a
 * flag.  Secrets are only ever read from files or the environment.
 */

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"

static const double  default_buckets[] = {
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10
};

static void config_defaults(config_t *c);
static int config_read_file(config_t *c, const char *path, char *err,
    size_t errlen);
static int config_apply_json(config_t *c, json_t *root, char *err,
    size_t errlen);
static int config_set_ingest_list(config_t *c, const char *list, char *err,
    size_t errlen);
static int config_add_ingest(config_t *c, const char *addr, char *err,
    size_t errlen);
static int config_read_secret(const char *path, char **out,
    const char *setting, char *err, size_t errlen);
static int config_read_key(const char *path, char **out, char *err,
    size_t errlen);
static int config_buckets(json_t *v, double *out, int *n, const char *name,
    char *err, size_t errlen);
static int config_check(const config_t *c, char *err, size_t errlen);
static int config_check_udp(const char *addr, char *err, size_t errlen);
static int config_check_output(const char *setting, const char *path,
    int is_dir, char *err, size_t errlen);
static void config_replace(char **slot, const char *value);
static int config_same(const char *a, const char *b);
static int config_exporter_env(config_t *c, char *err, size_t errlen);
static void config_otlp_endpoint(config_t *c, const char *url, int base);
static int config_otlp_headers(sink_config_t *s, const char *list,
    char *err, size_t errlen);
static int config_string(json_t *o, const char *key, char **out,
    const char *where, char *err, size_t errlen);
static int config_number(json_t *o, const char *key, long *out,
    const char *where, char *err, size_t errlen);
static int config_sink(json_t *o, const char *name, sink_config_t *s,
    const char *const *own, char *err, size_t errlen);
static int config_check_url(const char *setting, const char *url,
    char *err, size_t errlen);
static int config_exporter_json(config_t *c, json_t *root, char *err,
    size_t errlen);
static int config_headers(json_t *o, const char *name, sink_config_t *s,
    char *err, size_t errlen);
static int config_pusher(json_t *o, const char *name, sink_config_t *s,
    const char *const *extra, char *err, size_t errlen);
static int config_remote_write_json(config_t *c, json_t *root, char *err,
    size_t errlen);
static int config_clickhouse_json(config_t *c, json_t *root, char *err,
    size_t errlen);
static int config_cost_class(json_t *o, const char *where, cost_class_t *cc,
    char *err, size_t errlen);
static int config_switch(const char *text, int *out, const char *setting,
    char *err, size_t errlen);
static int config_threads(const char *text, long *out, const char *setting,
    char *err, size_t errlen);
static int config_loki_format(const char *text, int *out,
    const char *setting, char *err, size_t errlen);
static int config_signals_env(config_t *c, char *err, size_t errlen);
static int config_signals_json(config_t *c, json_t *root, char *err,
    size_t errlen);

void
config_usage(const char *prog)
{
    printf(
"Usage: %s [options]\n"
"\n"
"Receives ngx_http_obs_module records, serves RED metrics to Prometheus.\n"
"\n"
"  --ingest ADDR      where records arrive: unix:/path or udp:host:port;\n"
"                     repeat for several nginx instances\n"
"                     (env OBS_SIDECAR_INGEST, comma-separated;\n"
"                      default unix:/run/obs/records.sock); udp:PORT and\n"
"                     udp::PORT listen on 127.0.0.1 only\n"
"  --ingest-key-file FILE  shared key: UDP datagrams must carry its\n"
"                     HMAC-SHA256 tag (obs_sidecar ... key=FILE)\n"
"                     (env OBS_SIDECAR_INGEST_KEY_FILE)\n"
"  --ingest-group GROUP  group of the unix sockets (mode 0660), one that\n"
"                     nginx's worker user belongs to\n"
"                     (env OBS_SIDECAR_INGEST_GROUP; default: the\n"
"                      sidecar's own group)\n"
"  --listen HOST:PORT HTTP address of /metrics, /healthz, /readyz\n"
"                     (env OBS_SIDECAR_LISTEN; default 127.0.0.1:9145)\n"
"  --config FILE      JSON configuration file (env OBS_SIDECAR_CONFIG)\n"
"  --loki-url URL     push log lines to Loki (the full push URL)\n"
"                     (env OBS_SIDECAR_LOKI_URL)\n"
"  --otlp-endpoint URL send spans over OTLP/HTTP (/v1/traces is appended)\n"
"                     (env OTEL_EXPORTER_OTLP_ENDPOINT, or\n"
"                      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT used as is)\n"
"  --logs-file PATH   without Loki: JSON log lines to PATH (- is stdout)\n"
"  --spans-file PATH  without OTLP: OTLP/JSON lines to PATH (- is stdout)\n"
"  --loki-format protobuf|json  Loki push body: snappy protobuf (default)\n"
"                     or gzip'd JSON (env OBS_SIDECAR_LOKI_FORMAT)\n"
"  --no-logs          export no log lines (env OBS_SIDECAR_LOGS=off)\n"
"  --no-traces        export no spans (env OBS_SIDECAR_TRACES=off)\n"
"  --exporter-threads N  threads building lines and spans, 1-16\n"
"                     (env OBS_SIDECAR_EXPORTER_THREADS; default 1)\n"
"  --remote-write-url URL  push series with Prometheus remote-write\n"
"                     (env OBS_SIDECAR_REMOTE_WRITE_URL)\n"
"  --clickhouse-url URL    per-tenant usage rows to ClickHouse's HTTP\n"
"                     interface (env OBS_SIDECAR_CLICKHOUSE_URL)\n"
"  --check-config     validate the configuration and what start-up would\n"
"                     meet (addresses, socket paths, files); exit 0 or 2\n"
"  --help             this text\n"
"\n"
"Config file keys: ingest, ingest_group, ingest_key_file, listen,\n"
"default_service,\n"
"duration_buckets, upstream_buckets, max_tenants, max_routes (per\n"
"service), max_services, max_series, series_ttl_seconds, exemplars,\n"
"auth.bearer_token_file, auth.basic_user,\n"
"auth.basic_password_file, loki.*, otlp.*, logs_file, spans_file,\n"
"gateway_name, drain_seconds, logs, traces, exporter_threads,\n"
"exporter_queue_datagrams (1-4096, default 256), remote_write.*,\n"
"clickhouse.*.  Environment: OBS_SIDECAR_BEARER_TOKEN,\n"
"OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS.\n",
        prog);
}

int
config_load(config_t *c, int argc, char **argv, char *err, size_t errlen)
{
    static const struct option  options[] = {
        { "ingest", required_argument, NULL, 'i' },
        { "ingest-group", required_argument, NULL, 'g' },
        { "ingest-key-file", required_argument, NULL, 'K' },
        { "listen", required_argument, NULL, 'l' },
        { "config", required_argument, NULL, 'c' },
        { "check-config", no_argument, NULL, 'k' },
        { "loki-url", required_argument, NULL, 'L' },
        { "otlp-endpoint", required_argument, NULL, 'O' },
        { "logs-file", required_argument, NULL, 'F' },
        { "spans-file", required_argument, NULL, 'S' },
        { "remote-write-url", required_argument, NULL, 'W' },
        { "clickhouse-url", required_argument, NULL, 'H' },
        { "no-logs", no_argument, NULL, 'N' },
        { "no-traces", no_argument, NULL, 'T' },
        { "exporter-threads", required_argument, NULL, 'X' },
        { "loki-format", required_argument, NULL, 'P' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    const char  *env, *flag_listen = NULL, *flag_config = NULL;
    const char  *flag_loki = NULL, *flag_otlp = NULL, *flag_logs = NULL;
    const char  *flag_spans = NULL, *flag_threads = NULL;
    const char  *flag_format = NULL, *flag_group = NULL, *flag_key = NULL;
    const char  *flag_rw = NULL, *flag_ch = NULL;
    int          flag_no_logs = 0, flag_no_traces = 0;
    const char  *flag_ingest[CONFIG_MAX_INGEST];
    int          n_flag_ingest = 0, opt, i, check_only = 0;

    config_defaults(c);
    c->argc = argc;
    c->argv = argv;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'i':
            if (n_flag_ingest == CONFIG_MAX_INGEST) {
                snprintf(err, errlen, "--ingest: at most %d addresses",
                         CONFIG_MAX_INGEST);
                return CONFIG_ERROR;
            }
            flag_ingest[n_flag_ingest++] = optarg;
            break;
        case 'g':
            flag_group = optarg;
            break;
        case 'K':
            flag_key = optarg;
            break;
        case 'l':
            flag_listen = optarg;
            break;
        case 'c':
            flag_config = optarg;
            break;
        case 'k':
            check_only = 1;
            break;
        case 'L':
            flag_loki = optarg;
            break;
        case 'O':
            flag_otlp = optarg;
            break;
        case 'F':
            flag_logs = optarg;
            break;
        case 'S':
            flag_spans = optarg;
            break;
        case 'W':
            flag_rw = optarg;
            break;
        case 'H':
            flag_ch = optarg;
            break;
        case 'N':
            flag_no_logs = 1;
            break;
        case 'T':
            flag_no_traces = 1;
            break;
        case 'X':
            flag_threads = optarg;
            break;
        case 'P':
            flag_format = optarg;
            break;
        case 'h':
            config_usage(argv[0]);
            return CONFIG_EXIT;
        default:
            snprintf(err, errlen, "unknown option (see --help)");
            return CONFIG_ERROR;
        }
    }

    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument \"%s\"", argv[optind]);
        return CONFIG_ERROR;
    }

    env = getenv("OBS_SIDECAR_CONFIG");
    if (flag_config || (env && *env)) {
        config_replace(&c->config_path, flag_config ? flag_config : env);
        if (config_read_file(c, c->config_path, err, errlen) != 0) {
            return CONFIG_ERROR;
        }
    }

    env = getenv("OBS_SIDECAR_INGEST");
    if (env && *env && n_flag_ingest == 0
        && config_set_ingest_list(c, env, err, errlen) != 0)
    {
        return CONFIG_ERROR;
    }

    env = getenv("OBS_SIDECAR_LISTEN");
    if (env && *env) {
        config_replace(&c->listen, env);
    }

    env = getenv("OBS_SIDECAR_INGEST_GROUP");
    if (flag_group || (env && *env)) {
        config_replace(&c->ingest_group, flag_group ? flag_group : env);
    }

    env = getenv("OBS_SIDECAR_INGEST_KEY_FILE");
    if ((flag_key || (env && *env))
        && config_read_key(flag_key ? flag_key : env, &c->ingest_key, err,
                           errlen) != 0)
    {
        return CONFIG_ERROR;
    }

    env = getenv("OBS_SIDECAR_BEARER_TOKEN");
    if (env && *env) {
        config_replace(&c->bearer_token, env);
    }

    if (n_flag_ingest) {
        for (i = 0; i < c->n_ingest; i++) {
            free(c->ingest[i]);
        }
        c->n_ingest = 0;

        for (i = 0; i < n_flag_ingest; i++) {
            if (config_add_ingest(c, flag_ingest[i], err, errlen) != 0) {
                return CONFIG_ERROR;
            }
        }
    }

    if (flag_listen) {
        config_replace(&c->listen, flag_listen);
    }

    if (config_exporter_env(c, err, errlen) != 0) {
        return CONFIG_ERROR;
    }

    if (flag_loki) {
        config_replace(&c->exporter.loki.url, flag_loki);
    }
    if (flag_otlp) {
        config_otlp_endpoint(c, flag_otlp, 1);
    }
    if (flag_logs) {
        config_replace(&c->exporter.loki.file, flag_logs);
    }
    if (flag_spans) {
        config_replace(&c->exporter.otlp.file, flag_spans);
    }

    env = getenv("OBS_SIDECAR_REMOTE_WRITE_URL");
    if (flag_rw || (env && *env)) {
        config_replace(&c->remote_write.sink.url, flag_rw ? flag_rw : env);
    }
    env = getenv("OBS_SIDECAR_CLICKHOUSE_URL");
    if (flag_ch || (env && *env)) {
        config_replace(&c->clickhouse.sink.url, flag_ch ? flag_ch : env);
    }

    if (config_signals_env(c, err, errlen) != 0
        || (flag_threads && config_threads(flag_threads, &c->exporter.threads,
                                           "--exporter-threads", err, errlen))
        || (flag_format && config_loki_format(flag_format,
                                              &c->exporter.loki_json,
                                              "--loki-format", err, errlen)))
    {
        return CONFIG_ERROR;
    }
    if (flag_no_logs) {
        c->exporter.logs = 0;
    }
    if (flag_no_traces) {
        c->exporter.traces = 0;
    }

    if (c->n_ingest == 0) {
        config_add_ingest(c, "unix:/run/obs/records.sock", err, errlen);
    }

    if (config_check(c, err, errlen) != 0
        || config_check_output("logs_file", c->exporter.loki.file, 0, err,
                               errlen) != 0
        || config_check_output("spans_file", c->exporter.otlp.file, 0, err,
                               errlen) != 0
        || config_check_output("loki.spool_dir", c->exporter.loki.spool_dir,
                               1, err, errlen) != 0
        || config_check_output("otlp.spool_dir", c->exporter.otlp.spool_dir,
                               1, err, errlen) != 0
        || config_check_output("clickhouse.spool_dir",
                               c->clickhouse.sink.spool_dir, 1, err,
                               errlen) != 0)
    {
        return CONFIG_ERROR;
    }

    return check_only ? CONFIG_CHECK : CONFIG_OK;
}

int
config_reload(config_t *c, char *restart, size_t restartlen, char *err,
    size_t errlen)
{
    config_t  fresh;
    int       i, same;

    restart[0] = '\0';
    if (c->config_path == NULL) {
        return 0;
    }

    /* the same layers as at start: flags and environment still win */
    if (config_load(&fresh, c->argc, c->argv, err, errlen) != CONFIG_OK) {
        config_free(&fresh);
        return -1;
    }

    /* addresses stay: sockets are bound once; everything else is live */
    same = fresh.n_ingest == c->n_ingest;
    for (i = 0; i < fresh.n_ingest; i++) {
        same = same && strcmp(fresh.ingest[i], c->ingest[i]) == 0;
        free(fresh.ingest[i]);
    }
    if (!same || strcmp(fresh.listen, c->listen) != 0
        || !config_same(fresh.ingest_group, c->ingest_group)
        || !config_same(fresh.ingest_key, c->ingest_key))
    {
        snprintf(restart, restartlen, "%s%s%s%s: changed in the file but "
                 "only a restart applies it; still serving http://%s/metrics "
                 "and ingesting where it started",
                 strcmp(fresh.listen, c->listen) ? " listen" : "",
                 same ? "" : " ingest",
                 config_same(fresh.ingest_group, c->ingest_group) ? ""
                 : " ingest_group",
                 config_same(fresh.ingest_key, c->ingest_key) ? ""
                 : " ingest_key_file", c->listen);
    }
    memcpy(fresh.ingest, c->ingest, sizeof(c->ingest));
    fresh.n_ingest = c->n_ingest;
    free(fresh.listen);
    fresh.listen = c->listen;
    free(fresh.ingest_group);
    fresh.ingest_group = c->ingest_group;
    free(fresh.ingest_key);
    fresh.ingest_key = c->ingest_key;
    free(fresh.config_path);
    fresh.config_path = c->config_path;

    /* the exporters keep their configuration until a restart */
    exporter_config_free(&fresh.exporter);
    fresh.exporter = c->exporter;
    memset(&c->exporter, 0, sizeof(c->exporter));
    remote_write_config_free(&fresh.remote_write);
    fresh.remote_write = c->remote_write;
    memset(&c->remote_write, 0, sizeof(c->remote_write));
    clickhouse_config_free(&fresh.clickhouse);
    fresh.clickhouse = c->clickhouse;
    memset(&c->clickhouse, 0, sizeof(c->clickhouse));

    free(c->default_service);
    free(c->bearer_token);
    free(c->basic_user);
    free(c->basic_password);
    *c = fresh;
    return 0;
}

void
config_free(config_t *c)
{
    int  i;

    for (i = 0; i < c->n_ingest; i++) {
        free(c->ingest[i]);
    }
    free(c->listen);
    free(c->ingest_group);
    free(c->ingest_key);
    free(c->config_path);
    free(c->default_service);
    free(c->bearer_token);
    free(c->basic_user);
    free(c->basic_password);
    exporter_config_free(&c->exporter);
    remote_write_config_free(&c->remote_write);
    clickhouse_config_free(&c->clickhouse);
    memset(c, 0, sizeof(*c));
}

static void
config_defaults(config_t *c)
{
    memset(c, 0, sizeof(*c));
    c->listen = strdup("127.0.0.1:9145");
    c->default_service = strdup("unknown");
    memcpy(c->duration_buckets, default_buckets, sizeof(default_buckets));
    c->n_duration_buckets = sizeof(default_buckets) / sizeof(double);
    memcpy(c->upstream_buckets, default_buckets, sizeof(default_buckets));
    c->n_upstream_buckets = sizeof(default_buckets) / sizeof(double);
    c->max_tenants = 1000;
    c->max_routes = 500;
    c->max_services = 100;
    c->max_series = 100000;
    c->series_ttl = 900;
    c->exemplars = 1;
    exporter_config_defaults(&c->exporter);
    remote_write_config_defaults(&c->remote_write);
    clickhouse_config_defaults(&c->clickhouse);
}

static int
config_read_file(config_t *c, const char *path, char *err, size_t errlen)
{
    json_t        *root;
    json_error_t   jerr;
    int            rc;

    root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL && jerr.line < 1) {
        /* not read at all (missing, unreadable): there is no line */
        snprintf(err, errlen, "config file %s: %s", path, jerr.text);
        return -1;
    }
    if (root == NULL) {
        snprintf(err, errlen, "config file %s, line %d: %s", path, jerr.line,
                 jerr.text);
        return -1;
    }

    if (!json_is_object(root)) {
        snprintf(err, errlen, "config file %s: must be a JSON object", path);
        json_decref(root);
        return -1;
    }

    rc = config_apply_json(c, root, err, errlen);
    json_decref(root);
    return rc;
}

static int
config_apply_json(config_t *c, json_t *root, char *err, size_t errlen)
{
    static const char  *known[] = {
        "ingest", "ingest_group", "ingest_key_file", "listen",
        "default_service",
        "duration_buckets",
        "upstream_buckets", "max_tenants", "max_routes", "max_services",
        "max_series",
        "series_ttl_seconds", "exemplars", "auth", "loki", "otlp",
        "logs_file", "spans_file", "gateway_name", "drain_seconds",
        "logs", "traces", "exporter_threads", "exporter_queue_datagrams",
        "remote_write", "clickhouse", NULL
    };

    const char  *key, **k;
    json_t      *v, *auth;
    size_t       i;

    json_object_foreach(root, key, v) {
        for (k = known; *k && strcmp(*k, key) != 0; k++) {
            /* find it */
        }
        if (*k == NULL) {
            snprintf(err, errlen, "config: unknown setting \"%s\"", key);
            return -1;
        }
    }

    v = json_object_get(root, "ingest");
    if (v) {
        if (!json_is_array(v) || json_array_size(v) == 0) {
            snprintf(err, errlen,
                     "config: \"ingest\" must be a non-empty array of "
                     "addresses");
            return -1;
        }
        json_array_foreach(v, i, auth) {
            if (!json_is_string(auth)) {
                snprintf(err, errlen, "config: \"ingest\" entries must be "
                         "strings");
                return -1;
            }
            if (config_add_ingest(c, json_string_value(auth), err, errlen)) {
                return -1;
            }
        }
    }

    v = json_object_get(root, "listen");
    if (v) {
        if (!json_is_string(v)) {
            snprintf(err, errlen, "config: \"listen\" must be a string");
            return -1;
        }
        config_replace(&c->listen, json_string_value(v));
    }

    if (config_string(root, "ingest_group", &c->ingest_group, NULL, err,
                      errlen) != 0)
    {
        return -1;
    }

    v = json_object_get(root, "ingest_key_file");
    if (v && !json_is_string(v)) {
        snprintf(err, errlen, "config: \"ingest_key_file\" must be a "
                 "string");
        return -1;
    }
    if (v && config_read_key(json_string_value(v), &c->ingest_key, err,
                             errlen) != 0)
    {
        return -1;
    }

    v = json_object_get(root, "default_service");
    if (v) {
        if (!json_is_string(v) || json_string_length(v) == 0) {
            snprintf(err, errlen,
                     "config: \"default_service\" must be a non-empty string");
            return -1;
        }
        config_replace(&c->default_service, json_string_value(v));
    }

    if (config_buckets(json_object_get(root, "duration_buckets"),
                       c->duration_buckets, &c->n_duration_buckets,
                       "duration_buckets", err, errlen) != 0
        || config_buckets(json_object_get(root, "upstream_buckets"),
                          c->upstream_buckets, &c->n_upstream_buckets,
                          "upstream_buckets", err, errlen) != 0
        || config_number(root, "max_tenants", &c->max_tenants, NULL, err,
                         errlen)
        || config_number(root, "max_routes", &c->max_routes, NULL, err,
                         errlen)
        || config_number(root, "max_services", &c->max_services, NULL, err,
                         errlen)
        || config_number(root, "max_series", &c->max_series, NULL, err,
                         errlen)
        || config_number(root, "series_ttl_seconds", &c->series_ttl, NULL,
                         err, errlen))
    {
        return -1;
    }

    v = json_object_get(root, "exemplars");
    if (v) {
        if (!json_is_boolean(v)) {
            snprintf(err, errlen, "config: \"exemplars\" must be true or "
                     "false");
            return -1;
        }
        c->exemplars = json_is_true(v);
    }

    if (config_exporter_json(c, root, err, errlen) != 0
        || config_signals_json(c, root, err, errlen) != 0
        || config_remote_write_json(c, root, err, errlen) != 0
        || config_clickhouse_json(c, root, err, errlen) != 0)
    {
        return -1;
    }

    auth = json_object_get(root, "auth");
    if (auth == NULL) {
        return 0;
    }

    if (!json_is_object(auth)) {
        snprintf(err, errlen, "config: \"auth\" must be an object");
        return -1;
    }

    json_object_foreach(auth, key, v) {
        if (!json_is_string(v)
            || (strcmp(key, "bearer_token_file") != 0
                && strcmp(key, "basic_user") != 0
                && strcmp(key, "basic_password_file") != 0))
        {
            snprintf(err, errlen, "config: \"auth.%s\" is not a setting "
                     "(bearer_token_file, basic_user, basic_password_file "
                     "take strings)", key);
            return -1;
        }
    }

    v = json_object_get(auth, "bearer_token_file");
    if (v && config_read_secret(json_string_value(v), &c->bearer_token,
                                "auth.bearer_token_file", err, errlen) != 0)
    {
        return -1;
    }

    v = json_object_get(auth, "basic_user");
    if (v) {
        config_replace(&c->basic_user, json_string_value(v));
    }

    v = json_object_get(auth, "basic_password_file");
    if (v && config_read_secret(json_string_value(v), &c->basic_password,
                                "auth.basic_password_file", err, errlen) != 0)
    {
        return -1;
    }

    if ((c->basic_user == NULL) != (c->basic_password == NULL)) {
        snprintf(err, errlen, "config: \"auth.basic_user\" and "
                 "\"auth.basic_password_file\" go together");
        return -1;
    }

    return 0;
}

static int
config_set_ingest_list(config_t *c, const char *list, char *err,
    size_t errlen)
{
    char  *copy, *item, *save;
    int    i, rc = 0;

    for (i = 0; i < c->n_ingest; i++) {
        free(c->ingest[i]);
    }
    c->n_ingest = 0;

    copy = strdup(list);
    if (copy == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    for (item = strtok_r(copy, ",", &save); item && rc == 0;
         item = strtok_r(NULL, ",", &save))
    {
        rc = config_add_ingest(c, item, err, errlen);
    }

    free(copy);
    return rc;
}

static int
config_add_ingest(config_t *c, const char *addr, char *err, size_t errlen)
{
    int  i;

    if (strncmp(addr, "unix:", 5) != 0 && strncmp(addr, "udp:", 4) != 0) {
        snprintf(err, errlen, "ingest: invalid address \"%s\", it must be "
                 "unix:/path or udp:host:port", addr);
        return -1;
    }

    if (c->n_ingest == CONFIG_MAX_INGEST) {
        snprintf(err, errlen, "ingest: at most %d addresses",
                 CONFIG_MAX_INGEST);
        return -1;
    }

    for (i = 0; i < c->n_ingest; i++) {
        if (strcmp(c->ingest[i], addr) == 0) {
            snprintf(err, errlen, "ingest: \"%s\" is given twice", addr);
            return -1;
        }
    }

    c->ingest[c->n_ingest++] = strdup(addr);
    return 0;
}

static int
config_read_secret(const char *path, char **out, const char *setting,
    char *err, size_t errlen)
{
    FILE         *f;
    char          line[4096];
    size_t        n;
    struct stat   st;

    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "config: %s: cannot read %s: %s", setting,
                 path, strerror(errno));
        return -1;
    }

    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "config: %s: %s is a directory, not a file",
                 setting, path);
        fclose(f);
        return -1;
    }

    n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    line[strcspn(line, "\r\n")] = '\0';

    if (line[0] == '\0') {
        snprintf(err, errlen, "config: %s: %s is empty", setting, path);
        return -1;
    }

    config_replace(out, line);
    return 0;
}

/* The datagram key: a secret file's first line, at least 16 bytes. */

static int
config_read_key(const char *path, char **out, char *err, size_t errlen)
{
    if (config_read_secret(path, out, "ingest_key_file", err, errlen) != 0) {
        return -1;
    }

    if (strlen(*out) < 16 || strlen(*out) > 1023) {
        snprintf(err, errlen, "config: ingest_key_file: the key in %s must "
                 "be 16 to 1023 bytes on the first line", path);
        return -1;
    }

    return 0;
}

static int
config_buckets(json_t *v, double *out, int *n, const char *name, char *err,
    size_t errlen)
{
    size_t   i;
    json_t  *item;
    double   prev = 0;

    if (v == NULL) {
        return 0;
    }

    if (!json_is_array(v) || json_array_size(v) == 0
        || json_array_size(v) > CONFIG_MAX_BUCKETS)
    {
        snprintf(err, errlen, "config: \"%s\" must be an array of 1 to %d "
                 "numbers", name, CONFIG_MAX_BUCKETS);
        return -1;
    }

    json_array_foreach(v, i, item) {
        if (!json_is_number(item) || json_number_value(item) <= prev) {
            snprintf(err, errlen, "config: \"%s\" must be positive numbers "
                     "in increasing order (entry %zu)", name, i);
            return -1;
        }
        prev = out[i] = json_number_value(item);
    }

    *n = (int) json_array_size(v);
    return 0;
}

static int
config_check(const config_t *c, char *err, size_t errlen)
{
    const char  *colon;
    char        *end;
    long         port;
    int          i;

    colon = strrchr(c->listen, ':');
    port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (colon == NULL || colon == c->listen || *end != '\0' || port < 1
        || port > 65535)
    {
        snprintf(err, errlen, "listen: invalid address \"%s\", it must be "
                 "host:port", c->listen);
        return -1;
    }

    for (i = 0; i < c->n_ingest; i++) {
        if (strncmp(c->ingest[i], "unix:", 5) != 0) {
            if (config_check_udp(c->ingest[i], err, errlen) != 0) {
                return -1;
            }
            continue;
        }

        if (c->ingest[i][5] != '/') {
            snprintf(err, errlen, "ingest: \"%s\" needs an absolute "
                     "path", c->ingest[i]);
            return -1;
        }

        if (strlen(c->ingest[i] + 5) >= sizeof(((struct sockaddr_un *) 0)
                                                ->sun_path))
        {
            snprintf(err, errlen, "ingest: the path of \"%s\" is longer "
                     "than a unix socket path may be (%zu bytes)",
                     c->ingest[i],
                     sizeof(((struct sockaddr_un *) 0)->sun_path) - 1);
            return -1;
        }
    }

    if (c->ingest_group && c->ingest_group[0] == '\0') {
        snprintf(err, errlen, "ingest_group: must not be empty");
        return -1;
    }

    return config_check_url("loki.url", c->exporter.loki.url, err, errlen)
           || config_check_url("otlp.endpoint", c->exporter.otlp.url, err,
                               errlen)
           || config_check_url("remote_write.url", c->remote_write.sink.url,
                               err, errlen)
           || config_check_url("clickhouse.url", c->clickhouse.sink.url, err,
                               errlen) ? -1 : 0;
}

/* A receiver's URL: http:// or https:// and a host (curl would guess a
   scheme for anything else, and fail only when the first batch is sent). */

static int
config_check_url(const char *setting, const char *url, char *err,
    size_t errlen)
{
    size_t  n;

    if (url == NULL) {
        return 0;
    }

    n = strncasecmp(url, "http://", 7) == 0 ? 7
        : strncasecmp(url, "https://", 8) == 0 ? 8 : 0;
    if (n == 0 || url[n] == '\0' || strchr("/?#:", url[n])
        || strpbrk(url, " \t\r\n"))
    {
        snprintf(err, errlen, "%s: \"%.256s\" is not an http:// or https:// "
                 "URL with a host", setting, url);
        return -1;
    }

    return 0;
}

/* udp:PORT, udp::PORT (both 127.0.0.1), udp:HOST:PORT, udp:[V6]:PORT. */

static int
config_check_udp(const char *addr, char *err, size_t errlen)
{
    const char  *rest = addr + 4, *colon;
    char        *end;
    long         port;

    colon = strrchr(rest, ':');
    if (colon && rest[0] == '[' && colon < strchr(rest, ']')) {
        colon = NULL;
    }

    port = strtol(colon ? colon + 1 : rest, &end, 10);
    if (*end != '\0' || end == (colon ? colon + 1 : rest) || port < 1
        || port > 65535)
    {
        snprintf(err, errlen, "ingest: invalid address \"%s\", it must "
                 "be udp:host:port or udp:port", addr);
        return -1;
    }

    return 0;
}

/*
 * A file the exporters will create (or a directory they will make): its
 * directory must exist, as start-up would find out.
 */

static int
config_check_output(const char *setting, const char *path, int is_dir,
    char *err, size_t errlen)
{
    char         dir[4096], *slash;
    struct stat  st;

    if (path == NULL || strcmp(path, "-") == 0) {
        return 0;
    }

    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode) != is_dir) {
            snprintf(err, errlen, "%s: %s is %s", setting, path,
                     is_dir ? "not a directory" : "a directory, not a file");
            return -1;
        }
        return 0;
    }

    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (slash == NULL) {
        return 0;               /* the working directory */
    }
    *(slash == dir ? slash + 1 : slash) = '\0';

    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: %s cannot be created: directory %s does "
                 "not exist", setting, path, dir);
        return -1;
    }

    if (access(dir, W_OK) != 0) {
        snprintf(err, errlen, "%s: %s cannot be created in %s: %s", setting,
                 path, dir, strerror(errno));
        return -1;
    }

    return 0;
}

static void
config_replace(char **slot, const char *value)
{
    free(*slot);
    *slot = strdup(value);
}

static int
config_same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* OTEL_* variables and OBS_SIDECAR_LOKI_URL. */

static int
config_exporter_env(config_t *c, char *err, size_t errlen)
{
    const char  *env;

    env = getenv("OBS_SIDECAR_LOKI_URL");
    if (env && *env) {
        config_replace(&c->exporter.loki.url, env);
    }

    env = getenv("OTEL_EXPORTER_OTLP_ENDPOINT");
    if (env && *env) {
        config_otlp_endpoint(c, env, 1);
    }

    env = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    if (env && *env) {
        config_otlp_endpoint(c, env, 0);
    }

    env = getenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS");
    if (env == NULL || *env == '\0') {
        env = getenv("OTEL_EXPORTER_OTLP_HEADERS");
    }
    if (env && *env
        && config_otlp_headers(&c->exporter.otlp, env, err, errlen) != 0)
    {
        return -1;
    }

    return 0;
}

/* A base endpoint gets /v1/traces; a traces endpoint is used as it is. */

static void
config_otlp_endpoint(config_t *c, const char *url, int base)
{
    char    full[2048];
    size_t  n = strlen(url);

    if (base) {
        snprintf(full, sizeof(full), "%.*s/v1/traces",
                 (int) (n && url[n - 1] == '/' ? n - 1 : n), url);
        config_replace(&c->exporter.otlp.url, full);
    } else {
        config_replace(&c->exporter.otlp.url, url);
    }
}

/* "key1=value1,key2=value2" with percent-encoded values (W3C baggage
   style, as the OpenTelemetry specification defines it). */

static int
config_otlp_headers(sink_config_t *s, const char *list, char *err,
    size_t errlen)
{
    char        *copy, *item, *save, *eq, *header, *o;
    const char  *v;

    copy = strdup(list);
    if (copy == NULL) {
        return -1;
    }

    for (item = strtok_r(copy, ",", &save); item;
         item = strtok_r(NULL, ",", &save))
    {
        while (*item == ' ') {
            item++;
        }
        eq = strchr(item, '=');
        if (eq == NULL || eq == item || s->n_headers == EXPORTER_MAX_HEADERS
            || strpbrk(item, "\r\n"))
        {
            snprintf(err, errlen, "OTEL_EXPORTER_OTLP_HEADERS: invalid entry "
                     "\"%.64s\" (key=value expected, at most %d)", item,
                     EXPORTER_MAX_HEADERS);
            free(copy);
            return -1;
        }
        *eq = '\0';

        /* "key: value" never outgrows the entry: decoding only shrinks */
        header = malloc(strlen(item) + strlen(eq + 1) + 3);
        if (header == NULL) {
            snprintf(err, errlen, "out of memory");
            free(copy);
            return -1;
        }
        o = header + sprintf(header, "%s: ", item);
        for (v = eq + 1; *v; v++) {
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
            snprintf(err, errlen, "OTEL_EXPORTER_OTLP_HEADERS: the value of "
                     "\"%.64s\" decodes to more than one line", item);
            free(header);
            free(copy);
            return -1;
        }
        s->headers[s->n_headers++] = header;
    }

    free(copy);
    return 0;
}

static int
config_string(json_t *o, const char *key, char **out, const char *where,
    char *err, size_t errlen)
{
    json_t  *v = json_object_get(o, key);

    if (v == NULL) {
        return 0;
    }
    if (!json_is_string(v)) {
        snprintf(err, errlen, "config: \"%s%s%s\" must be a string",
                 where ? where : "", where ? "." : "", key);
        return -1;
    }
    config_replace(out, json_string_value(v));
    return 0;
}

static int
config_number(json_t *o, const char *key, long *out, const char *where,
    char *err, size_t errlen)
{
    json_t  *v = json_object_get(o, key);

    if (v == NULL) {
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) <= 0) {
        snprintf(err, errlen, "config: \"%s%s%s\" must be a positive "
                 "integer", where ? where : "", where ? "." : "", key);
        return -1;
    }
    *out = (long) json_integer_value(v);
    return 0;
}

/* The settings both exporters share. */

static int
config_sink(json_t *o, const char *name, sink_config_t *s,
    const char *const *own, char *err, size_t errlen)
{
    static const char *const  shared[] = {
        "url", "headers", "basic_user", "basic_password_file",
        "bearer_token_file", "ca_file", "cert_file", "key_file",
        "batch_wait_ms", "timeout_ms", "queue_bytes", "spool_dir",
        "spool_bytes", NULL
    };

    const char *const  *k;
    const char         *key;
    json_t             *v;
    long                n;
    char               *path = NULL;

    if (!json_is_object(o)) {
        snprintf(err, errlen, "config: \"%s\" must be an object", name);
        return -1;
    }

    json_object_foreach(o, key, v) {
        for (k = shared; *k && strcmp(*k, key) != 0; k++) {
            /* find it */
        }
        if (*k == NULL && own) {
            for (k = own; *k && strcmp(*k, key) != 0; k++) {
                /* find it */
            }
        }
        if (own && *k == NULL) {
            snprintf(err, errlen, "config: unknown setting \"%s.%s\"", name,
                     key);
            return -1;
        }
    }

    if (config_string(o, "url", &s->url, name, err, errlen)
        || config_string(o, "basic_user", &s->basic_user, name, err, errlen)
        || config_string(o, "ca_file", &s->ca_file, name, err, errlen)
        || config_string(o, "cert_file", &s->cert_file, name, err, errlen)
        || config_string(o, "key_file", &s->key_file, name, err, errlen)
        || config_string(o, "spool_dir", &s->spool_dir, name, err, errlen))
    {
        return -1;
    }

    if (config_string(o, "basic_password_file", &path, name, err, errlen)
        || (path && config_read_secret(path, &s->basic_password,
                                       "basic_password_file", err, errlen)))
    {
        free(path);
        return -1;
    }
    free(path);
    path = NULL;

    if (config_string(o, "bearer_token_file", &path, name, err, errlen)
        || (path && config_read_secret(path, &s->bearer_token,
                                       "bearer_token_file", err, errlen)))
    {
        free(path);
        return -1;
    }
    free(path);

    n = (long) s->batch_bytes;
    if (config_number(o, "batch_bytes", &n, name, err, errlen)) {
        return -1;
    }
    s->batch_bytes = (size_t) n;
    n = (long) s->batch_items;
    if (config_number(o, "batch_spans", &n, name, err, errlen)) {
        return -1;
    }
    s->batch_items = (size_t) n;
    n = (long) s->queue_bytes;
    if (config_number(o, "queue_bytes", &n, name, err, errlen)) {
        return -1;
    }
    s->queue_bytes = (size_t) n;
    n = (long) s->spool_bytes;
    if (json_object_get(o, "spool_bytes")
        && config_number(o, "spool_bytes", &n, name, err, errlen))
    {
        return -1;
    }
    s->spool_bytes = (size_t) n;

    if (config_number(o, "batch_wait_ms", &s->batch_wait_ms, name, err,
                      errlen)
        || config_number(o, "timeout_ms", &s->timeout_ms, name, err, errlen))
    {
        return -1;
    }

    if ((s->spool_dir == NULL) != (s->spool_bytes == 0)) {
        snprintf(err, errlen, "config: \"%s.spool_dir\" and \"%s.spool_bytes\" "
                 "go together", name, name);
        return -1;
    }

    return 0;
}

static int
config_exporter_json(config_t *c, json_t *root, char *err, size_t errlen)
{
    static const char *const  loki_own[] = {
        "batch_bytes", "tenant_header", "org_id", "format", NULL
    };
    static const char *const  otlp_own[] = {
        "endpoint", "batch_spans", "slow_ms", "compression", NULL
    };

    exporter_config_t  *x = &c->exporter;
    json_t             *o, *v;
    const char         *mode;

    o = json_object_get(root, "loki");
    if (o) {
        if (config_sink(o, "loki", &x->loki, loki_own, err, errlen) != 0
            || config_headers(o, "loki", &x->loki, err, errlen) != 0)
        {
            return -1;
        }

        v = json_object_get(o, "tenant_header");
        if (v && !json_is_string(v)) {
            snprintf(err, errlen, "config: \"loki.tenant_header\" must be "
                     "a string: \"none\", \"fixed\" or \"per_tenant\"");
            return -1;
        }
        mode = v ? json_string_value(v) : "none";
        if (strcmp(mode, "fixed") != 0 && json_object_get(o, "org_id")) {
            snprintf(err, errlen, "config: \"loki.org_id\" is used only "
                     "with \"loki.tenant_header\": \"fixed\"");
            return -1;
        }
        if (strcmp(mode, "none") == 0) {
            x->tenant_header = TENANT_HEADER_NONE;
        } else if (strcmp(mode, "per_tenant") == 0) {
            x->tenant_header = TENANT_HEADER_PER_TENANT;
        } else if (strcmp(mode, "fixed") == 0) {
            x->tenant_header = TENANT_HEADER_FIXED;
            if (config_string(o, "org_id", &x->org_id, "loki", err, errlen)) {
                return -1;
            }
            if (x->org_id == NULL) {
                snprintf(err, errlen, "config: \"loki.tenant_header\": "
                         "\"fixed\" needs \"loki.org_id\"");
                return -1;
            }
        } else {
            snprintf(err, errlen, "config: \"loki.tenant_header\" must be "
                     "\"none\", \"fixed\" or \"per_tenant\"");
            return -1;
        }
    }

    o = json_object_get(root, "otlp");
    if (o) {
        if (config_sink(o, "otlp", &x->otlp, otlp_own, err, errlen) != 0) {
            return -1;
        }

        v = json_object_get(o, "endpoint");
        if (v) {
            if (!json_is_string(v)) {
                snprintf(err, errlen, "config: \"otlp.endpoint\" must be a "
                         "string");
                return -1;
            }
            config_otlp_endpoint(c, json_string_value(v), 1);
        }

        if (config_number(o, "slow_ms", &x->slow_ms, "otlp", err, errlen)) {
            return -1;
        }

        if (config_headers(o, "otlp", &x->otlp, err, errlen) != 0) {
            return -1;
        }
    }

    if (config_string(root, "logs_file", &x->loki.file, NULL, err, errlen)
        || config_string(root, "spans_file", &x->otlp.file, NULL, err,
                         errlen)
        || config_string(root, "gateway_name", &x->gateway_name, NULL,
                         err, errlen))
    {
        return -1;
    }

    v = json_object_get(root, "drain_seconds");
    if (v) {
        if (!json_is_number(v) || json_number_value(v) < 0) {
            snprintf(err, errlen, "config: \"drain_seconds\" must be a "
                     "number of seconds");
            return -1;
        }
        x->drain_seconds = json_number_value(v);
    }

    return 0;
}

/* "on" or "off" (also true/false, 1/0) for a signal switch. */

static int
config_switch(const char *text, int *out, const char *setting, char *err,
    size_t errlen)
{
    if (strcmp(text, "on") == 0 || strcmp(text, "true") == 0
        || strcmp(text, "1") == 0)
    {
        *out = 1;
    } else if (strcmp(text, "off") == 0 || strcmp(text, "false") == 0
               || strcmp(text, "0") == 0)
    {
        *out = 0;
    } else {
        snprintf(err, errlen, "%s: \"%s\" is neither on nor off", setting,
                 text);
        return -1;
    }
    return 0;
}

static int
config_threads(const char *text, long *out, const char *setting, char *err,
    size_t errlen)
{
    char  *end;
    long   n = strtol(text, &end, 10);

    if (*text == '\0' || *end != '\0' || n < 1 || n > 16) {
        snprintf(err, errlen, "%s: \"%s\" is not a number of threads "
                 "from 1 to 16", setting, text);
        return -1;
    }
    *out = n;
    return 0;
}

static int
config_loki_format(const char *text, int *out, const char *setting,
    char *err, size_t errlen)
{
    if (strcmp(text, "protobuf") != 0 && strcmp(text, "json") != 0) {
        snprintf(err, errlen, "%s: \"%s\" must be protobuf or json",
                 setting, text);
        return -1;
    }
    *out = strcmp(text, "json") == 0;
    return 0;
}

/* OBS_SIDECAR_LOGS, _TRACES, _EXPORTER_THREADS, _LOKI_FORMAT and
   OTEL_EXPORTER_OTLP_(TRACES_)COMPRESSION. */

static int
config_signals_env(config_t *c, char *err, size_t errlen)
{
    const char  *env;

    env = getenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION");
    if (env == NULL || *env == '\0') {
        env = getenv("OTEL_EXPORTER_OTLP_COMPRESSION");
    }
    if (env && *env) {
        if (strcmp(env, "gzip") != 0 && strcmp(env, "none") != 0) {
            snprintf(err, errlen, "OTEL_EXPORTER_OTLP_COMPRESSION: \"%s\" "
                     "must be gzip or none", env);
            return -1;
        }
        c->exporter.otlp_gzip = strcmp(env, "gzip") == 0;
    }

    env = getenv("OBS_SIDECAR_LOGS");
    if (env && *env && config_switch(env, &c->exporter.logs,
                                     "OBS_SIDECAR_LOGS", err, errlen))
    {
        return -1;
    }
    env = getenv("OBS_SIDECAR_TRACES");
    if (env && *env && config_switch(env, &c->exporter.traces,
                                     "OBS_SIDECAR_TRACES", err, errlen))
    {
        return -1;
    }
    env = getenv("OBS_SIDECAR_EXPORTER_THREADS");
    if (env && *env && config_threads(env, &c->exporter.threads,
                                      "OBS_SIDECAR_EXPORTER_THREADS", err,
                                      errlen))
    {
        return -1;
    }
    env = getenv("OBS_SIDECAR_LOKI_FORMAT");
    if (env && *env && config_loki_format(env, &c->exporter.loki_json,
                                          "OBS_SIDECAR_LOKI_FORMAT", err,
                                          errlen))
    {
        return -1;
    }
    return 0;
}

/* "logs", "traces", "exporter_threads", "exporter_queue_datagrams",
   "loki.format" and "otlp.compression" of the config file. */

static int
config_signals_json(config_t *c, json_t *root, char *err, size_t errlen)
{
    exporter_config_t  *x = &c->exporter;
    const char         *keys[] = { "logs", "traces" };
    int                *flags[] = { &x->logs, &x->traces };
    json_t             *v;
    int                 i;

    for (i = 0; i < 2; i++) {
        v = json_object_get(root, keys[i]);
        if (v == NULL) {
            continue;
        }
        if (!json_is_boolean(v)) {
            snprintf(err, errlen, "config: \"%s\" must be true or false",
                     keys[i]);
            return -1;
        }
        *flags[i] = json_is_true(v);
    }

    if (config_number(root, "exporter_threads", &x->threads, NULL, err,
                      errlen)
        || config_number(root, "exporter_queue_datagrams",
                         &x->queue_datagrams, NULL, err, errlen))
    {
        return -1;
    }
    if (x->queue_datagrams > 4096) {
        snprintf(err, errlen, "config: \"exporter_queue_datagrams\" must "
                 "be from 1 to 4096 (each holds up to 64 KiB)");
        return -1;
    }
    if (x->threads > 16) {
        snprintf(err, errlen, "config: \"exporter_threads\" must be from 1 "
                 "to 16");
        return -1;
    }

    v = json_object_get(json_object_get(root, "otlp"), "compression");
    if (v) {
        if (!json_is_string(v)
            || (strcmp(json_string_value(v), "gzip") != 0
                && strcmp(json_string_value(v), "none") != 0))
        {
            snprintf(err, errlen, "config: \"otlp.compression\" must be "
                     "\"gzip\" or \"none\"");
            return -1;
        }
        x->otlp_gzip = strcmp(json_string_value(v), "gzip") == 0;
    }

    v = json_object_get(json_object_get(root, "loki"), "format");
    if (v && (!json_is_string(v)
              || config_loki_format(json_string_value(v), &x->loki_json,
                                    "config: \"loki.format\"", err, errlen)))
    {
        if (!json_is_string(v)) {
            snprintf(err, errlen, "config: \"loki.format\" must be "
                     "\"protobuf\" or \"json\"");
        }
        return -1;
    }

    return 0;
}

/* "headers": {"Name": "value"} of a destination. */

static int
config_headers(json_t *o, const char *name, sink_config_t *s, char *err,
    size_t errlen)
{
    const char  *key;
    json_t      *v, *h;
    char         line[1024];

    v = json_object_get(o, "headers");
    if (v == NULL) {
        return 0;
    }
    if (!json_is_object(v)) {
        snprintf(err, errlen, "config: \"%s.headers\" must be an object of "
                 "strings", name);
        return -1;
    }

    json_object_foreach(v, key, h) {
        if (!json_is_string(h) || s->n_headers == EXPORTER_MAX_HEADERS
            || strpbrk(key, ":\r\n") || strpbrk(json_string_value(h), "\r\n"))
        {
            snprintf(err, errlen, "config: \"%s.headers.%s\" must be a "
                     "one-line string (at most %d headers)", name, key,
                     EXPORTER_MAX_HEADERS);
            return -1;
        }
        snprintf(line, sizeof(line), "%s: %s", key, json_string_value(h));
        s->headers[s->n_headers++] = strdup(line);
    }

    return 0;
}

/*
 * A push destination (remote_write, clickhouse): the settings it shares
 * with the exporters' sinks are read by config_sink, its own (extra) by the
 * caller; anything else is an error that names it.
 */

static int
config_pusher(json_t *o, const char *name, sink_config_t *s,
    const char *const *extra, char *err, size_t errlen)
{
    static const char *const  shared[] = {
        "url", "headers", "basic_user", "basic_password_file",
        "bearer_token_file", "ca_file", "cert_file", "key_file",
        "timeout_ms", "queue_bytes", NULL
    };

    const char *const  *k;
    const char         *key;
    json_t             *v, *copy;
    int                 rc;

    if (!json_is_object(o)) {
        snprintf(err, errlen, "config: \"%s\" must be an object", name);
        return -1;
    }

    json_object_foreach(o, key, v) {
        for (k = shared; *k && strcmp(*k, key) != 0; k++) {
            /* find it */
        }
        if (*k == NULL) {
            for (k = extra; *k && strcmp(*k, key) != 0; k++) {
                /* find it */
            }
        }
        if (*k == NULL) {
            snprintf(err, errlen, "config: unknown setting \"%s.%s\"", name,
                     key);
            return -1;
        }
    }

    copy = json_copy(o);
    if (copy == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (k = extra; *k; k++) {
        if (strncmp(*k, "spool_", 6) != 0) {
            json_object_del(copy, *k);
        }
    }
    json_object_del(copy, "headers");

    rc = config_sink(copy, name, s, NULL, err, errlen);
    json_decref(copy);

    return rc != 0 ? -1 : config_headers(o, name, s, err, errlen);
}

/* remote_write: {"url", "interval" (seconds, or "15s", "1m", "500ms"),
   "tenant_header", "org_id", "operator_tenant", "max_samples_per_send",
   and the shared push settings}. */

static int
config_remote_write_json(config_t *c, json_t *root, char *err, size_t errlen)
{
    static const char *const  extra[] = {
        "interval", "tenant_header", "org_id", "operator_tenant",
        "max_samples_per_send", NULL
    };

    remote_write_config_t  *rw = &c->remote_write;
    json_t                 *o, *v;
    const char             *mode;
    char                   *end;

    o = json_object_get(root, "remote_write");
    if (o == NULL) {
        return 0;
    }

    if (config_pusher(o, "remote_write", &rw->sink, extra, err, errlen) != 0
        || config_number(o, "max_samples_per_send", &rw->max_samples,
                         "remote_write", err, errlen) != 0
        || config_string(o, "org_id", &rw->org_id, "remote_write", err,
                         errlen) != 0
        || config_string(o, "operator_tenant", &rw->operator_tenant,
                         "remote_write", err, errlen) != 0)
    {
        return -1;
    }

    v = json_object_get(o, "interval");
    if (v) {
        double  x = -1;

        if (json_is_number(v)) {
            x = json_number_value(v);
        } else if (json_is_string(v)) {
            x = strtod(json_string_value(v), &end);
            x = strcmp(end, "ms") == 0 ? x / 1000
                : strcmp(end, "s") == 0 ? x
                : strcmp(end, "m") == 0 ? x * 60 : -1;
        }
        if (!(x >= 0.1 && x <= 3600)) {
            snprintf(err, errlen, "config: \"remote_write.interval\" must be "
                     "seconds (0.1 to 3600), or a string such as \"15s\"");
            return -1;
        }
        rw->interval = x;
    }

    v = json_object_get(o, "tenant_header");
    mode = v && json_is_string(v) ? json_string_value(v) : v ? "" : "none";
    if (strcmp(mode, "none") == 0) {
        rw->tenant_header = TENANT_HEADER_NONE;
    } else if (strcmp(mode, "fixed") == 0 && rw->org_id) {
        rw->tenant_header = TENANT_HEADER_FIXED;
    } else if (strcmp(mode, "per_tenant") == 0 && rw->operator_tenant) {
        rw->tenant_header = TENANT_HEADER_PER_TENANT;
    } else {
        snprintf(err, errlen, "config: \"remote_write.tenant_header\" must be "
                 "\"none\", \"fixed\" (with \"remote_write.org_id\") or "
                 "\"per_tenant\" (with \"remote_write.operator_tenant\")");
        return -1;
    }

    return 0;
}

/* clickhouse: {"url", "table", "gateway", "interval_seconds", "spool_dir",
   "spool_bytes", "cost": {"default": {...}, "classes": [...]}, and the
   shared push settings}. */

static int
config_clickhouse_json(config_t *c, json_t *root, char *err, size_t errlen)
{
    static const char *const  extra[] = {
        "table", "gateway", "interval_seconds", "spool_dir", "spool_bytes",
        "cost", NULL
    };

    clickhouse_config_t  *ch = &c->clickhouse;
    json_t               *o, *cost, *v, *item;
    const char           *key;
    char                  where[64];
    size_t                i;

    o = json_object_get(root, "clickhouse");
    if (o == NULL) {
        return 0;
    }

    if (config_pusher(o, "clickhouse", &ch->sink, extra, err, errlen) != 0
        || config_string(o, "table", &ch->table, "clickhouse", err, errlen)
        || config_string(o, "gateway", &ch->gateway, "clickhouse", err,
                         errlen)
        || config_number(o, "interval_seconds", &ch->interval, "clickhouse",
                         err, errlen))
    {
        return -1;
    }

    if (ch->table[0] == '\0'
        || strspn(ch->table, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRST"
                  "UVWXYZ0123456789_.") != strlen(ch->table)
        || 3600 % ch->interval != 0)
    {
        snprintf(err, errlen, "config: \"clickhouse.table\" must be "
                 "[database.]table of letters, digits and _, and "
                 "\"clickhouse.interval_seconds\" divide an hour");
        return -1;
    }

    cost = json_object_get(o, "cost");
    if (cost == NULL) {
        return 0;
    }

    json_object_foreach(cost, key, v) {
        if (strcmp(key, "default") != 0 && strcmp(key, "classes") != 0) {
            snprintf(err, errlen, "config: unknown setting "
                     "\"clickhouse.cost.%s\"", key);
            return -1;
        }
    }

    v = json_object_get(cost, "default");
    if (v && config_cost_class(v, "clickhouse.cost.default",
                               &ch->default_class, err, errlen) != 0)
    {
        return -1;
    }

    v = json_object_get(cost, "classes");
    if (v == NULL) {
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) > CLICKHOUSE_MAX_CLASSES) {
        snprintf(err, errlen, "config: \"clickhouse.cost.classes\" must be an "
                 "array of at most %d classes", CLICKHOUSE_MAX_CLASSES);
        return -1;
    }

    json_array_foreach(v, i, item) {
        snprintf(where, sizeof(where), "clickhouse.cost.classes[%zu]", i);
        if (config_cost_class(item, where, &ch->classes[ch->n_classes++],
                              err, errlen) != 0)
        {
            return -1;
        }
        if (ch->classes[ch->n_classes - 1].name == NULL) {
            snprintf(err, errlen, "config: \"%s.name\" is required", where);
            return -1;
        }
    }

    return 0;
}

/* {"name", "service", "route" (patterns), "per_1k_requests", "per_gb"} */

static int
config_cost_class(json_t *o, const char *where, cost_class_t *cc, char *err,
    size_t errlen)
{
    const char  *key;
    json_t      *v;
    double      *price;

    if (!json_is_object(o)) {
        snprintf(err, errlen, "config: \"%s\" must be an object", where);
        return -1;
    }

    json_object_foreach(o, key, v) {
        if (strcmp(key, "name") == 0 || strcmp(key, "service") == 0
            || strcmp(key, "route") == 0)
        {
            if (!json_is_string(v) || json_string_length(v) == 0) {
                snprintf(err, errlen, "config: \"%s.%s\" must be a non-empty "
                         "string", where, key);
                return -1;
            }
            config_replace(key[0] == 'n' ? &cc->name
                           : key[0] == 's' ? &cc->service : &cc->route,
                           json_string_value(v));
            continue;
        }

        price = strcmp(key, "per_1k_requests") == 0 ? &cc->per_1k_requests
                : strcmp(key, "per_gb") == 0 ? &cc->per_gb : NULL;
        if (price == NULL) {
            snprintf(err, errlen, "config: unknown setting \"%s.%s\"", where,
                     key);
            return -1;
        }
        if (!json_is_number(v) || json_number_value(v) < 0) {
            snprintf(err, errlen, "config: \"%s.%s\" must be a price (a "
                     "number, 0 or more)", where, key);
            return -1;
        }
        *price = json_number_value(v);
    }

    return 0;
}
