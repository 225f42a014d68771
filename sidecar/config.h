/* obs-sidecar configuration: defaults < config file < environment < flags. */

#ifndef OBS_CONFIG_H
#define OBS_CONFIG_H

#include <stddef.h>

#include "audit.h"
#include "clickhouse.h"
#include "exporter.h"
#include "otlp_metrics.h"
#include "remote_write.h"
#include "status_config.h"

#define CONFIG_MAX_INGEST   16
#define CONFIG_MAX_BUCKETS  64

typedef struct {
    char    *ingest[CONFIG_MAX_INGEST];  /* "unix:/path" or "udp:host:port" */
    int      n_ingest;
    char    *ingest_group;               /* group of unix sockets, or NULL */
    char    *ingest_key;                 /* HMAC key of datagrams, or NULL */
    long     ingest_max_skew;            /* seconds a tagged one stays fresh */
    int      ingest_flagged;             /* --ingest replaced the list */
    char    *listen;                     /* "host:port" of /metrics */
    char    *config_path;
    int      argc;                       /* the command line, for SIGHUP */
    char   **argv;

    char    *default_service;
    double   duration_buckets[CONFIG_MAX_BUCKETS];
    int      n_duration_buckets;
    double   upstream_buckets[CONFIG_MAX_BUCKETS];
    int      n_upstream_buckets;

    long     max_tenants;
    long     max_routes;                 /* per service */
    long     max_services;
    long     max_series;
    long     from_request_percent;       /* of each cap, for values that
                                            requests made */
    long     series_ttl;                 /* seconds without update */
    int      exemplars;

    char    *bearer_token;               /* /metrics auth, read from a file */
    char    *basic_user;
    char    *basic_password;

    exporter_config_t  exporter;         /* log lines to Loki, spans to OTLP */
    remote_write_config_t  remote_write; /* series to a remote-write receiver */
    clickhouse_config_t    clickhouse;   /* per-tenant usage rows */
    audit_config_t         audit;        /* the audit trail */
    otlp_metrics_config_t  otlp_metrics; /* /metrics and/or OTLP pushes */
    status_config_t        status;       /* /status: SLOs, links */

    /* --verify-audit FILE... [--audit-anchor MAC] */
    char   **verify_files;               /* in argv */
    int      n_verify_files;
    char    *verify_anchor;
} config_t;

/* What config_load decided. */
enum { CONFIG_OK = 0, CONFIG_EXIT = 1, CONFIG_CHECK = 2, CONFIG_VERIFY = 3,
       CONFIG_ERROR = -1 };

/*
 * Builds the configuration from defaults, the --config file, OBS_SIDECAR_*
 * variables and the command line.  On CONFIG_ERROR err holds a message that
 * names the setting; CONFIG_EXIT means --help was printed; CONFIG_CHECK
 * means --check-config: the caller probes what start-up would meet;
 * CONFIG_VERIFY means --verify-audit: check the chain of the files named.
 */
int config_load(config_t *c, int argc, char **argv, char *err, size_t errlen);

/*
 * Loads the configuration again as at start (file, environment, flags) for
 * SIGHUP; on error c is left unchanged.  Addresses, the exporter, the
 * pushers and the audit trail keep what they started with: restart names
 * the settings of theirs that changed ("" if none), changed every setting
 * that changed (" key key ...", names only).
 */
int config_reload(config_t *c, char *changed, size_t changedlen,
    char *restart, size_t restartlen, char *err, size_t errlen);

/* Frees what config_load allocated. */
void config_free(config_t *c);

/* Prints the usage text (the flags and variables of every setting). */
void config_usage(const char *prog);

/* Prints every setting as docs/sidecar.md's markdown table (--help=markdown). */
void config_markdown(void);

#endif
