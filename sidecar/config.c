/*
 * obs-sidecar configuration.  Every setting is one row of config_settings
 * (settings.h): the file (JSON, read with jansson), the environment, the
 * flags, --help and docs/sidecar.md's table all come from the rows.  Defaults <
 * file < environment < flags.  Secrets are only ever read from files or the
 * environment.
 */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "label_rules.h"
#include "log.h"
#include "exporter_config.h"
#include "settings.h"
#include "spool.h"
#include "obs/v1/framing.h"

#define CONFIG_MAX_FLAGS  64

/* config_set_buckets finds each count right after its array */
_Static_assert(offsetof(config_t, n_duration_buckets)
               == offsetof(config_t, duration_buckets)
                  + CONFIG_MAX_BUCKETS * sizeof(double), "bucket count");
_Static_assert(offsetof(config_t, n_upstream_buckets)
               == offsetof(config_t, upstream_buckets)
                  + CONFIG_MAX_BUCKETS * sizeof(double), "bucket count");

static const double  default_buckets[] = {
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10
};

static void config_defaults(config_t *c);
static int config_read_file(config_t *c, const char *path, char *err,
    size_t errlen);
static int config_add_ingest(config_t *c, const char *addr, char *err,
    size_t errlen);
static int config_check(const config_t *c, char *err, size_t errlen);
static int config_check_pushers(const config_t *c, char *err,
    size_t errlen);
static int config_check_audit(const config_t *c, char *err, size_t errlen);
static int config_check_udp(const char *addr, char *err, size_t errlen);
static int config_check_output(const char *setting, const char *path,
    int is_dir, char *err, size_t errlen);
static void config_replace(char **slot, const char *value);
static int config_same(const char *a, const char *b);
static int config_flags(const setting_t *table, void *base,
    struct option *options, const setting_t **rows, void **bases,
    char (*names)[64], int n);
static void config_bad_option(int opt, const char *arg, char *err,
    size_t errlen);
static void config_unknown_env(void);
static int config_set_ingest(const setting_t *s, void *base, json_t *v,
    const char *text, const char *where, char *err, size_t errlen);
static int config_set_key(const setting_t *s, void *base, json_t *v,
    const char *text, const char *where, char *err, size_t errlen);
static int config_set_buckets(const setting_t *s, void *base, json_t *v,
    const char *text, const char *where, char *err, size_t errlen);
static int config_set_interval(const setting_t *s, void *base, json_t *v,
    const char *text, const char *where, char *err, size_t errlen);
static int config_set_cost(const setting_t *s, void *base, json_t *v,
    const char *text, const char *where, char *err, size_t errlen);
static int config_cost_class(json_t *o, const char *where, cost_class_t *cc,
    char *err, size_t errlen);

#define RW  remote_write_config_t

static const setting_t  remote_write_settings[] = {
    { "url", SETTING_URL, offsetof(RW, sink.url), 0, 0,
      "OBS_SIDECAR_REMOTE_WRITE_URL", "--remote-write-url URL",
      "push series with Prometheus remote-write", NULL, NULL },
    DESTINATION_ROWS(RW, sink),
    { "interval", SETTING_CUSTOM, offsetof(RW, interval), 0.1, 3600, NULL,
      NULL, "seconds between pushes, or \"15s\", \"500ms\", \"1m\"", NULL,
      config_set_interval },
    { "tenant_header", SETTING_ENUM, offsetof(RW, tenant_header), 0, 0, NULL,
      NULL, "X-Scope-OrgID: none, fixed (org_id) or per tenant "
      "(operator_tenant)", exporter_tenant_modes, NULL },
    { "org_id", SETTING_STRING, offsetof(RW, org_id), 0, 0, NULL, NULL,
      "the X-Scope-OrgID of tenant_header fixed", NULL, NULL },
    { "operator_tenant", SETTING_STRING, offsetof(RW, operator_tenant), 0, 0,
      NULL, NULL, "per_tenant: the org of the gateway's own series", NULL,
      NULL },
    { "max_samples_per_send", SETTING_LONG, offsetof(RW, max_samples), 1,
      1e7, NULL, NULL, "samples per request", NULL, NULL },
    SETTINGS_END
};

#undef RW
#define CH  clickhouse_config_t

static const setting_t  clickhouse_settings[] = {
    { "url", SETTING_URL, offsetof(CH, sink.url), 0, 0,
      "OBS_SIDECAR_CLICKHOUSE_URL", "--clickhouse-url URL",
      "per-tenant usage rows to ClickHouse's HTTP interface", NULL, NULL },
    DESTINATION_ROWS(CH, sink),
    DESTINATION_SPOOL_ROWS(CH, sink),
    { "table", SETTING_STRING, offsetof(CH, table), 0, 0, NULL, NULL,
      "[database.]table of the rows", NULL, NULL },
    { "gateway", SETTING_STRING, offsetof(CH, gateway), 0, 0, NULL, NULL,
      "this gateway's name in the rows (default: the host name)", NULL,
      NULL },
    { "interval_seconds", SETTING_LONG, offsetof(CH, interval), 1, 3600,
      NULL, NULL, "seconds a row covers (divides an hour)", NULL, NULL },
    { "cost", SETTING_CUSTOM, 0, 0, 0, NULL, NULL,
      "cost model: {\"default\": {...}, \"classes\": [...]}", NULL,
      config_set_cost },
    SETTINGS_END
};

#undef CH
#define AU  audit_config_t

static const setting_t  audit_settings[] = {
    { "file", SETTING_STRING, offsetof(AU, file), 0, 0,
      "OBS_SIDECAR_AUDIT_FILE", "--audit-file PATH",
      "the audit trail: HMAC-chained JSON lines, appended (with key_file)",
      NULL, NULL },
    { "key_file", SETTING_CUSTOM, offsetof(AU, key), 0, 0,
      "OBS_SIDECAR_AUDIT_KEY_FILE", "--audit-key-file FILE",
      "key of the chain's HMAC-SHA256 (first line, 16-1023 bytes)", NULL,
      config_set_key },
    { "rotate_bytes", SETTING_SIZE, offsetof(AU, rotate_bytes), 4096, 1e15,
      NULL, NULL, "a file this large is rotated (FILE.1, FILE.2, ...)",
      NULL, NULL },
    { "rotate_files", SETTING_LONG, offsetof(AU, rotate_files), 1, 100000,
      NULL, NULL, "rotated files kept (the oldest is removed)", NULL,
      NULL },
    { "queue_bytes", SETTING_SIZE, offsetof(AU, queue_bytes), 65536, 1e12,
      NULL, NULL, "events waiting while the file cannot be written",
      NULL, NULL },
    { "loki", SETTING_BOOL, offsetof(AU, loki), 0, 0, NULL, NULL,
      "also to Loki (loki.url) as the stream {job=\"obs-audit\"}", NULL,
      NULL },
    { "org_id", SETTING_STRING, offsetof(AU, org_id), 0, 0, NULL, NULL,
      "its X-Scope-OrgID, the operator's (default: loki.org_id)", NULL,
      NULL },
    SETTINGS_END
};

#undef AU
#define C  config_t

static const setting_t  auth_settings[] = {
    { "bearer_token_file", SETTING_SECRET, offsetof(C, bearer_token), 0, 0,
      NULL, NULL, "/metrics needs this bearer token (a file)", NULL, NULL },
    { NULL, SETTING_STRING, offsetof(C, bearer_token), 0, 0,
      "OBS_SIDECAR_BEARER_TOKEN", NULL, "the /metrics bearer token itself",
      NULL, NULL },
    { "basic_user", SETTING_STRING, offsetof(C, basic_user), 0, 0, NULL,
      NULL, "/metrics basic auth user (with basic_password_file)", NULL,
      NULL },
    { "basic_password_file", SETTING_SECRET, offsetof(C, basic_password), 0,
      0, NULL, NULL, "file holding its password", NULL, NULL },
    SETTINGS_END
};

static const setting_t  config_settings[] = {
    { NULL, SETTING_STRING, offsetof(C, config_path), 0, 0,
      "OBS_SIDECAR_CONFIG", "--config FILE", "JSON configuration file",
      NULL, NULL },
    { "ingest", SETTING_CUSTOM, 0, 0, 0, "OBS_SIDECAR_INGEST",
      "--ingest ADDR", "where records arrive: unix:/path or udp:host:port "
      "(repeatable; env comma-separated; default "
      "unix:/run/obs/records.sock)", NULL, config_set_ingest },
    { "ingest_key_file", SETTING_CUSTOM, offsetof(C, ingest_key), 0, 0,
      "OBS_SIDECAR_INGEST_KEY_FILE", "--ingest-key-file FILE",
      "shared key: UDP datagrams must carry its HMAC-SHA256 tag", NULL,
      config_set_key },
    { "ingest_max_skew_seconds", SETTING_LONG, offsetof(C, ingest_max_skew),
      1, 3600, "OBS_SIDECAR_INGEST_MAX_SKEW", "--ingest-max-skew SECONDS",
      "a tagged datagram sent longer ago (or dated further ahead) is stale",
      NULL, NULL },
    { "ingest_group", SETTING_STRING, offsetof(C, ingest_group), 0, 0,
      "OBS_SIDECAR_INGEST_GROUP", "--ingest-group GROUP",
      "group of the unix sockets (mode 0660)", NULL, NULL },
    { "listen", SETTING_STRING, offsetof(C, listen), 0, 0,
      "OBS_SIDECAR_LISTEN", "--listen HOST:PORT",
      "HTTP address of /metrics, /healthz, /readyz", NULL, NULL },
    { "default_service", SETTING_NONEMPTY, offsetof(C, default_service), 0,
      0, NULL, NULL, "service of records that name none", NULL, NULL },
    { "duration_buckets", SETTING_CUSTOM, offsetof(C, duration_buckets), 0,
      0, NULL, NULL, "request duration buckets, seconds", NULL,
      config_set_buckets },
    { "upstream_buckets", SETTING_CUSTOM, offsetof(C, upstream_buckets), 0,
      0, NULL, NULL, "upstream duration buckets, seconds", NULL,
      config_set_buckets },
    { "max_tenants", SETTING_LONG, offsetof(C, max_tenants), 1, 1e9, NULL,
      NULL, "tenants before __overflow__", NULL, NULL },
    { "max_routes", SETTING_LONG, offsetof(C, max_routes), 1, 1e9, NULL,
      NULL, "routes per service before __overflow__", NULL, NULL },
    { "max_services", SETTING_LONG, offsetof(C, max_services), 1, 1e9, NULL,
      NULL, "services before __overflow__", NULL, NULL },
    { "max_series", SETTING_LONG, offsetof(C, max_series), 1, 1e9, NULL,
      NULL, "series in all", NULL, NULL },
    { "from_request_percent", SETTING_LONG,
      offsetof(C, from_request_percent), 1, 100, NULL, NULL,
      "percent of max_services, max_routes, max_tenants and max_series "
      "that labels made from requests may take",
      NULL, NULL },
    { "series_ttl_seconds", SETTING_LONG, offsetof(C, series_ttl), 1, 1e9,
      NULL, NULL, "a series unchanged this long goes", NULL, NULL },
    { "exemplars", SETTING_BOOL, offsetof(C, exemplars), 0, 0, NULL, NULL,
      "trace exemplars on histogram buckets", NULL, NULL },
    { "auth", SETTING_OBJECT, 0, 0, 0, NULL, NULL, "/metrics auth",
      auth_settings, NULL },
    { NULL, SETTING_OBJECT, offsetof(C, exporter), 0, 0, NULL, NULL,
      "exporters", exporter_settings, NULL },
    { "remote_write", SETTING_OBJECT, offsetof(C, remote_write), 0, 0, NULL,
      NULL, "remote-write", remote_write_settings, NULL },
    { "clickhouse", SETTING_OBJECT, offsetof(C, clickhouse), 0, 0, NULL,
      NULL, "ClickHouse", clickhouse_settings, NULL },
    { "audit", SETTING_OBJECT, offsetof(C, audit), 0, 0, NULL, NULL,
      "the audit trail", audit_settings, NULL },
    { NULL, SETTING_OBJECT, offsetof(C, otlp_metrics), 0, 0, NULL, NULL,
      "OTLP metrics", otlp_metrics_settings, NULL },
    { "status", SETTING_OBJECT, offsetof(C, status), 0, 0, NULL, NULL,
      "/status page", status_settings, NULL },
    SETTINGS_END
};

#undef C

void
config_usage(const char *prog)
{
    printf("Usage: %s [options]\n"
           "\n"
           "Receives ngx_http_obs_module records, serves RED metrics to "
           "Prometheus.\n"
           "Flags beat the environment, which beats the --config file.\n"
           "\n", prog);
    settings_usage(stdout, config_settings);
    printf("  %-28s %s\n  %-28s %s\n  %-28s %s\n  %-28s %s\n"
           "  %-28s %s\n  %-28s %s\n  %-28s %s\n  %-28s %s\n",
           "--check-config", "validate the configuration and what",
           "", "start-up would meet; exit 0 or 2",
           "--verify-audit FILE...", "check the audit chain of the files",
           "", "(oldest first) under --audit-key-file;",
           "", "exit 0 when it holds, 1 naming the first bad line",
           "--audit-anchor MAC", "with --verify-audit: a mac shipped "
           "elsewhere",
           "--help", "this text",
           "--help=markdown", "every setting as docs/sidecar.md's table");
}

void
config_markdown(void)
{
    config_t  c;

    config_defaults(&c);
    settings_markdown(stdout, config_settings, &c);
    config_free(&c);
}

int
config_load(config_t *c, int argc, char **argv, char *err, size_t errlen)
{
    struct option     options[CONFIG_MAX_FLAGS];
    const setting_t  *rows[CONFIG_MAX_FLAGS], *row;
    void             *bases[CONFIG_MAX_FLAGS];
    const char       *args[CONFIG_MAX_FLAGS * 2];
    int               which[CONFIG_MAX_FLAGS * 2];
    char              names[CONFIG_MAX_FLAGS][64];
    int               n = 0, n_args = 0, opt, idx, i, check_only = 0;
    int               verify = 0;

    config_defaults(c);
    c->argc = argc;
    c->argv = argv;

    /* one long option per row with a flag */
    n = config_flags(config_settings, c, options, rows, bases, names, 0);
    options[n++] = (struct option) { "check-config", no_argument, NULL, 0 };
    options[n++] = (struct option) { "verify-audit", no_argument, NULL, 0 };
    options[n++] = (struct option) { "audit-anchor", required_argument, NULL,
                                     0 };
    options[n++] = (struct option) { "help", optional_argument, NULL, 0 };
    options[n] = (struct option) { NULL, 0, NULL, 0 };

    optind = 1;
    opterr = 0;     /* our messages, which name the option */
    while ((opt = getopt_long(argc, argv, ":", options, &idx)) != -1) {
        if (opt != 0 || n_args == CONFIG_MAX_FLAGS * 2) {
            config_bad_option(opt, argv[optind - 1], err, errlen);
            return CONFIG_ERROR;
        }
        if (strcmp(options[idx].name, "help") == 0) {
            if (optarg && strcmp(optarg, "markdown") == 0) {
                config_markdown();
            } else {
                config_usage(argv[0]);
            }
            return CONFIG_EXIT;
        }
        if (strcmp(options[idx].name, "check-config") == 0) {
            check_only = 1;
            continue;
        }
        if (strcmp(options[idx].name, "verify-audit") == 0) {
            verify = 1;
            continue;
        }
        if (strcmp(options[idx].name, "audit-anchor") == 0) {
            c->verify_anchor = optarg;
            continue;
        }
        which[n_args] = idx;
        args[n_args++] = optarg;
    }

    /* --verify-audit's files are the arguments */
    if (verify) {
        c->verify_files = argv + optind;
        c->n_verify_files = argc - optind;
        if (c->n_verify_files == 0) {
            snprintf(err, errlen, "--verify-audit needs the files of the "
                     "trail, oldest first");
            return CONFIG_ERROR;
        }
    } else if (optind < argc) {
        snprintf(err, errlen, "unexpected argument \"%s\"", argv[optind]);
        return CONFIG_ERROR;
    }

    /* the file first (its path from the environment or a flag) */
    row = &config_settings[0];
    if (getenv(row->env) && *getenv(row->env)) {
        config_replace(&c->config_path, getenv(row->env));
    }
    for (i = 0; i < n_args; i++) {
        if (rows[which[i]] == row) {
            config_replace(&c->config_path, args[i]);
        }
    }
    if (c->config_path
        && config_read_file(c, c->config_path, err, errlen) != 0)
    {
        return CONFIG_ERROR;
    }

    if (settings_env(config_settings, c, err, errlen) != 0) {
        return CONFIG_ERROR;
    }
    config_unknown_env();
    for (i = 0; i < n_args; i++) {
        if (settings_flag(rows[which[i]], bases[which[i]], args[i], err,
                          errlen) != 0)
        {
            return CONFIG_ERROR;
        }
    }

    if (verify) {
        if (c->audit.key == NULL) {
            snprintf(err, errlen, "--verify-audit needs the chain's key: "
                     "--audit-key-file FILE (or audit.key_file)");
            return CONFIG_ERROR;
        }
        return CONFIG_VERIFY;
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
                               errlen) != 0
        || config_check_output("audit.file", c->audit.file, 0, err,
                               errlen) != 0
        || config_check_output("otlp_logs.spool_dir",
                               c->exporter.otlp_logs.spool_dir, 1, err,
                               errlen) != 0
        || config_check_output("otlp_metrics.spool_dir",
                               c->otlp_metrics.sink.spool_dir, 1, err,
                               errlen) != 0)
    {
        return CONFIG_ERROR;
    }

    return check_only ? CONFIG_CHECK : CONFIG_OK;
}

int
config_reload(config_t *c, char *all, size_t alllen, char *restart,
    size_t restartlen, char *err, size_t errlen)
{
    config_t  fresh;
    char      changed[512];
    size_t    n;
    int       i, same;

    restart[0] = '\0';
    all[0] = '\0';
    if (c->config_path == NULL) {
        return 0;
    }

    /* the same layers as at start: flags and environment still win */
    if (config_load(&fresh, c->argc, c->argv, err, errlen) != CONFIG_OK) {
        config_free(&fresh);
        return -1;
    }

    /* every setting that changed, for the audit trail (names only) */
    settings_diff(config_settings, NULL, c, &fresh, all, alllen);

    /* addresses stay: sockets are bound once; the exporter, the pushers
       and the audit trail keep what they started with; everything else
       is live */
    same = fresh.n_ingest == c->n_ingest;
    for (i = 0; i < fresh.n_ingest; i++) {
        same = same && strcmp(fresh.ingest[i], c->ingest[i]) == 0;
        free(fresh.ingest[i]);
    }
    if (!same && strlen(all) + sizeof(" ingest") <= alllen) {
        strcat(all, " ingest");
    }
    snprintf(changed, sizeof(changed), "%s%s%s%s",
             strcmp(fresh.listen, c->listen) ? " listen" : "",
             same ? "" : " ingest",
             config_same(fresh.ingest_group, c->ingest_group) ? ""
             : " ingest_group",
             config_same(fresh.ingest_key, c->ingest_key) ? ""
             : " ingest_key_file");
    settings_diff(exporter_settings, NULL, &c->exporter, &fresh.exporter,
                  changed, sizeof(changed));
    settings_diff(remote_write_settings, "remote_write", &c->remote_write,
                  &fresh.remote_write, changed, sizeof(changed));
    settings_diff(clickhouse_settings, "clickhouse", &c->clickhouse,
                  &fresh.clickhouse, changed, sizeof(changed));
    settings_diff(audit_settings, "audit", &c->audit, &fresh.audit, changed,
                  sizeof(changed));
    settings_diff(otlp_metrics_settings, NULL, &c->otlp_metrics,
                  &fresh.otlp_metrics, changed, sizeof(changed));
    if (fresh.otlp_metrics.prometheus != c->otlp_metrics.prometheus
        || fresh.otlp_metrics.otlp != c->otlp_metrics.otlp)
    {
        n = strlen(changed);
        snprintf(changed + n, sizeof(changed) - n, " metrics_exporter");
    }
    if (changed[0]) {
        snprintf(restart, restartlen, "%s: changed but only a restart "
                 "applies it; still serving http://%s/metrics and ingesting "
                 "and exporting as it started", changed, c->listen);
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

    /* the exporter and the pushers hold copies of their own until a
       restart: the rest of c simply makes way for fresh */
    free(c->default_service);
    free(c->bearer_token);
    free(c->basic_user);
    free(c->basic_password);
    exporter_config_free(&c->exporter);
    remote_write_config_free(&c->remote_write);
    clickhouse_config_free(&c->clickhouse);
    audit_config_free(&c->audit);
    otlp_metrics_config_free(&c->otlp_metrics);
    status_config_free(&c->status);
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
    audit_config_free(&c->audit);
    otlp_metrics_config_free(&c->otlp_metrics);
    status_config_free(&c->status);
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
    c->from_request_percent = 50;
    c->series_ttl = 900;
    c->ingest_max_skew = 30;
    c->exemplars = 1;
    exporter_config_defaults(&c->exporter);
    remote_write_config_defaults(&c->remote_write);
    clickhouse_config_defaults(&c->clickhouse);
    audit_config_defaults(&c->audit);
    otlp_metrics_config_defaults(&c->otlp_metrics);
    status_config_defaults(&c->status);
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

    rc = settings_json(config_settings, NULL, c, root, err, errlen);
    json_decref(root);
    return rc;
}

/* Fills options (and the row and base of each) from the rows' flags. */

static int
config_flags(const setting_t *table, void *base, struct option *options,
    const setting_t **rows, void **bases, char (*names)[64], int n)
{
    const setting_t  *s;

    for (s = table; s->help && n < CONFIG_MAX_FLAGS - 3; s++) {
        if (s->type == SETTING_OBJECT) {
            n = config_flags(s->more, (char *) base + s->offset, options,
                             rows, bases, names, n);
            continue;
        }
        if (s->flag == NULL) {
            continue;
        }
        snprintf(names[n], 64, "%.*s", (int) strcspn(s->flag + 2, " "),
                 s->flag + 2);
        options[n] = (struct option) {
            names[n], strchr(s->flag, ' ') ? required_argument : no_argument,
            NULL, 0
        };
        rows[n] = s;
        bases[n] = base;
        n++;
    }

    return n;
}

/* Why getopt refused arg: an option without its argument, or one that
   does not exist (with the nearest that does). */

static void
config_bad_option(int opt, const char *arg, char *err, size_t errlen)
{
    char         word[64], near[64];
    const char  *guess = NULL;
    size_t       n;

    if (opt == ':') {
        snprintf(err, errlen, "option \"%s\" needs an argument (see --help)",
                 arg);
        return;
    }

    if (strncmp(arg, "--", 2) == 0) {
        n = strcspn(arg + 2, "=");
        if (n < sizeof(word)) {
            memcpy(word, arg + 2, n);
            word[n] = '\0';
            guess = settings_nearest(config_settings, SETTINGS_NAME_FLAG,
                                     word, near, sizeof(near));
        }
    }

    snprintf(err, errlen, "unknown option \"%s\"%s%s%s (see --help)", arg,
             guess ? " (did you mean \"--" : "", guess ? guess : "",
             guess ? "\"?)" : "");
}

/*
 * An OBS_SIDECAR_ variable that no setting reads is most likely a typo of
 * one that does, which would otherwise be ignored without a word.
 */

static void
config_unknown_env(void)
{
    char         name[64], near[64];
    const char  *guess;
    size_t       n;
    char       **e;

    for (e = environ; *e; e++) {
        if (strncmp(*e, "OBS_SIDECAR_", 12) != 0) {
            continue;
        }

        n = strcspn(*e, "=");
        if (n >= sizeof(name)) {
            continue;
        }
        memcpy(name, *e, n);
        name[n] = '\0';

        if (settings_nearest(config_settings, SETTINGS_NAME_ENV, name, near,
                             sizeof(near))
            && strcmp(near, name) == 0)
        {
            continue;
        }

        guess = settings_nearest(config_settings, SETTINGS_NAME_ENV, name,
                                 near, sizeof(near));
        sidecar_log("warn", "environment variable %s is not a setting and is "
                    "ignored%s%s%s", name, guess ? " (did you mean " : "",
                    guess ? guess : "", guess ? "?)" : "");
    }
}

/* "ingest": an array in the file; a comma-separated list in the
   environment; repeated flags, the first of which replaces the list. */

static int
config_set_ingest(const setting_t *s, void *base, json_t *v,
    const char *text, const char *where, char *err, size_t errlen)
{
    config_t  *c = base;
    json_t    *item;
    char      *copy, *addr, *rest;
    size_t     i;
    int        rc = 0;

    (void) s;

    if (v) {
        if (!json_is_array(v) || json_array_size(v) == 0) {
            snprintf(err, errlen, "config: \"ingest\" must be a non-empty "
                     "array of addresses");
            return -1;
        }
        json_array_foreach(v, i, item) {
            if (!json_is_string(item)) {
                snprintf(err, errlen, "config: \"ingest\" entries must be "
                         "strings");
                return -1;
            }
            if (config_add_ingest(c, json_string_value(item), err, errlen)) {
                return -1;
            }
        }
        return 0;
    }

    if (where[0] != '-' || !c->ingest_flagged) {
        for (i = 0; i < (size_t) c->n_ingest; i++) {
            free(c->ingest[i]);
        }
        c->n_ingest = 0;
        c->ingest_flagged = where[0] == '-';
    }

    if (where[0] == '-') {
        return config_add_ingest(c, text, err, errlen);
    }

    copy = strdup(text);
    if (copy == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* strsep, not strtok: ",", "a,,b" and "a," must not quietly lose an
       entry (an empty list would mean the default socket) */
    rest = copy;
    while (rc == 0 && (addr = strsep(&rest, ",")) != NULL) {
        if (addr[0] == '\0') {
            snprintf(err, errlen, "%s: an empty address in \"%s\"", where,
                     text);
            rc = -1;
            break;
        }
        rc = config_add_ingest(c, addr, err, errlen);
    }
    free(copy);
    return rc;
}

/* A key (ingest_key_file, audit.key_file): a secret file's first line,
   OBS_KEY_MIN to OBS_KEY_MAX bytes (obs/v1/framing.h: the module reads its
   key so); messages name the setting, and how it was given. */

static int
config_set_key(const setting_t *s, void *base, json_t *v, const char *text,
    const char *where, char *err, size_t errlen)
{
    char  **key = (char **) ((char *) base + s->offset);
    char    name[128];
    const char  *path;

    if (strcmp(where, s->key) == 0 || strchr(where, '.') != NULL) {
        snprintf(name, sizeof(name), "%s", where);
    } else {
        snprintf(name, sizeof(name), "%s (%s)", s->key, where);
    }

    if (v && !json_is_string(v)) {
        snprintf(err, errlen, "config: \"%s\" must be a string", name);
        return -1;
    }
    path = v ? json_string_value(v) : text;

    free(*key);
    *key = NULL;

    if (settings_read_secret(path, key, name, err, errlen) != 0) {
        return -1;
    }

    if (strlen(*key) < OBS_KEY_MIN || strlen(*key) > OBS_KEY_MAX) {
        snprintf(err, errlen, "config: %s: the key in %s must be %d to %d "
                 "bytes on the first line", name, path, OBS_KEY_MIN,
                 OBS_KEY_MAX);
        return -1;
    }

    return 0;
}


/* Bucket bounds: 1 to CONFIG_MAX_BUCKETS positive increasing numbers; the
   count follows the array in config_t. */

static int
config_set_buckets(const setting_t *s, void *base, json_t *v,
    const char *text, const char *where, char *err, size_t errlen)
{
    double  *out = (double *) ((char *) base + s->offset), prev = 0;
    int     *n = (int *) (out + CONFIG_MAX_BUCKETS);
    json_t  *item;
    size_t   i;

    (void) text;

    if (!json_is_array(v) || json_array_size(v) == 0
        || json_array_size(v) > CONFIG_MAX_BUCKETS)
    {
        snprintf(err, errlen, "config: \"%s\" must be an array of 1 to %d "
                 "numbers", where, CONFIG_MAX_BUCKETS);
        return -1;
    }

    json_array_foreach(v, i, item) {
        if (!json_is_number(item) || json_number_value(item) <= prev) {
            snprintf(err, errlen, "config: \"%s\" must be positive numbers "
                     "in increasing order (entry %zu)", where, i);
            return -1;
        }
        prev = out[i] = json_number_value(item);
    }

    *n = (int) json_array_size(v);
    return 0;
}

/* Seconds, or a string such as "15s", "500ms", "1m". */

static int
config_set_interval(const setting_t *s, void *base, json_t *v,
    const char *text, const char *where, char *err, size_t errlen)
{
    double  x = -1;
    char   *end;

    (void) text;

    if (json_is_number(v)) {
        x = json_number_value(v);
    } else if (json_is_string(v)) {
        x = strtod(json_string_value(v), &end);
        x = strcmp(end, "ms") == 0 ? x / 1000
            : strcmp(end, "s") == 0 ? x
            : strcmp(end, "m") == 0 ? x * 60 : -1;
    }
    if (!(x >= s->min && x <= s->max)) {
        snprintf(err, errlen, "config: \"%s\" must be seconds (%g to %g), "
                 "or a string such as \"15s\"", where, s->min, s->max);
        return -1;
    }

    *(double *) ((char *) base + s->offset) = x;
    return 0;
}

/* "cost": {"default": {...}, "classes": [{...}, ...]} */

static int
config_set_cost(const setting_t *s, void *base, json_t *cost,
    const char *text, const char *where, char *err, size_t errlen)
{
    clickhouse_config_t  *ch = base;
    const char           *key;
    json_t               *v, *item;
    char                  at[64];
    size_t                i;

    (void) s;
    (void) text;

    if (!json_is_object(cost)) {
        snprintf(err, errlen, "config: \"%s\" must be an object", where);
        return -1;
    }

    json_object_foreach(cost, key, v) {
        if (strcmp(key, "default") != 0 && strcmp(key, "classes") != 0) {
            snprintf(err, errlen, "config: unknown setting \"%s.%s\"", where,
                     key);
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
        snprintf(at, sizeof(at), "clickhouse.cost.classes[%zu]", i);
        if (config_cost_class(item, at, &ch->classes[ch->n_classes++], err,
                              errlen) != 0)
        {
            return -1;
        }
        if (ch->classes[ch->n_classes - 1].name == NULL) {
            snprintf(err, errlen, "config: \"%s.name\" is required", at);
            return -1;
        }
    }

    return 0;
}

/* What the remote-write and ClickHouse rows cannot say alone. */

static int
config_check_pushers(const config_t *c, char *err, size_t errlen)
{
    const remote_write_config_t  *rw = &c->remote_write;
    const clickhouse_config_t    *ch = &c->clickhouse;

    if ((rw->tenant_header == TENANT_HEADER_FIXED && rw->org_id == NULL)
        || (rw->tenant_header == TENANT_HEADER_PER_TENANT
            && rw->operator_tenant == NULL))
    {
        snprintf(err, errlen, "config: \"remote_write.tenant_header\" must be "
                 "\"none\", \"fixed\" (with \"remote_write.org_id\") or "
                 "\"per_tenant\" (with \"remote_write.operator_tenant\")");
        return -1;
    }

    if ((rw->org_id && !org_id_valid(rw->org_id))
        || (rw->operator_tenant && !org_id_valid(rw->operator_tenant)))
    {
        snprintf(err, errlen, "config: \"remote_write.%s\" must be 1 to %d "
                 "of A-Z a-z 0-9 !-_.*'() and not \".\" or \"..\" (an "
                 "X-Scope-OrgID)", rw->org_id && !org_id_valid(rw->org_id)
                 ? "org_id" : "operator_tenant", ORG_ID_MAX);
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

    return 0;
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

    return exporter_config_check(&c->exporter, err, errlen) != 0
           || destination_config_check(&c->clickhouse.sink, "clickhouse",
                                       err, errlen) != 0
           || destination_config_check(&c->remote_write.sink, "remote_write",
                                       err, errlen) != 0
           || destination_config_check(&c->otlp_metrics.sink, "otlp_metrics",
                                       err, errlen) != 0
           || config_check_pushers(c, err, errlen) != 0
           || config_check_audit(c, err, errlen) != 0
           || status_config_check(&c->status, err, errlen) != 0 ? -1 : 0;
}

/* The audit trail: a file needs the chain's key; its stream in Loki goes
   under the operator's org, never a tenant's. */

static int
config_check_audit(const config_t *c, char *err, size_t errlen)
{
    const audit_config_t  *a = &c->audit;

    if (a->file && (a->file[0] == '\0' || strcmp(a->file, "-") == 0)) {
        snprintf(err, errlen, "config: \"audit.file\" must be a file's path");
        return -1;
    }

    if (a->file && a->key == NULL) {
        snprintf(err, errlen, "config: \"audit.file\" needs "
                 "\"audit.key_file\" (--audit-key-file): the key of the "
                 "chain's HMAC");
        return -1;
    }

    if (a->org_id && !org_id_valid(a->org_id)) {
        snprintf(err, errlen, "config: \"audit.org_id\" must be 1 to %d of "
                 "A-Z a-z 0-9 !-_.*'() and not \".\" or \"..\" (an "
                 "X-Scope-OrgID)", ORG_ID_MAX);
        return -1;
    }

    if (a->file && a->loki && c->exporter.loki.url && a->org_id == NULL
        && c->exporter.tenant_header == TENANT_HEADER_PER_TENANT)
    {
        snprintf(err, errlen, "config: \"loki.tenant_header\" per_tenant "
                 "sends each tenant's lines under its own X-Scope-OrgID: "
                 "set \"audit.org_id\" to the operator's for the audit "
                 "stream (or \"audit.loki\": false)");
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
        if (is_dir && spool_dir_check(&st, path, dir, sizeof(dir)) != 0) {
            snprintf(err, errlen, "%s: %s", setting, dir);
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
