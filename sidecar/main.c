/*
 * obs-sidecar: receives ngx_http_obs_module's records, aggregates RED
 * metrics and serves them to Prometheus.  This file only glues: the main
 * thread polls the ingest sockets and a signalfd; libmicrohttpd serves HTTP
 * from its own thread.
 */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "active_requests.h"
#include "aggregate.h"
#include "audit.h"
#include "audit_chain.h"
#include "audit_events.h"
#include "audit_ship.h"
#include "clickhouse.h"
#include "config.h"
#include "delivery.h"
#include "exporter.h"
#include "http.h"
#include "ingest.h"
#include "log.h"
#include "exporter_metrics.h"
#include "business_metrics.h"
#include "metrics.h"
#include "otlp_metrics.h"
#include "remote_write.h"
#include "obs_version.h"
#include "stats.h"
#include "status.h"
#include "store.h"

#define EXPIRE_EVERY  10          /* seconds between expiry sweeps */
/* a stop hands the audit stream's last lines to the delivery layer for at
   most this long (a Loki that takes nothing holds the shipper; the file
   keeps the lines and the next start sends them) */
#define AUDIT_SHIP_FLUSH_SECONDS  2

typedef struct {
    config_t        cfg;
    store_t        *store;
    aggregator_t   *agg;
    ingest_t       *ingest;
    delivery_t     *delivery;
    exporter_t     *exporter;
    http_server_t  *http;
    remote_write_t *remote_write;
    clickhouse_t   *clickhouse;
    audit_t        *audit;
    audit_ship_t   *audit_ship;
    unsigned        stop_signal;
    otlp_metrics_t *otlp_metrics;
    status_t       *status;
    int             signal_fd;
} sidecar_t;

static int sidecar_start(sidecar_t *s, char *err, size_t errlen);
static void sidecar_run(sidecar_t *s);
static int sidecar_signal(sidecar_t *s);
static void sidecar_reload(sidecar_t *s);
static void sidecar_stop(sidecar_t *s);
static void sidecar_export(const uint8_t *bytes, size_t len,
    size_t records, const uint8_t *over, void *data);
static const char *sidecar_audit_ready(void *data);

int
main(int argc, char **argv)
{
    sidecar_t  s;
    char       err[512];
    int        rc;

    memset(&s, 0, sizeof(s));
    s.signal_fd = -1;

    rc = config_load(&s.cfg, argc, argv, err, sizeof(err));
    if (rc == CONFIG_EXIT) {
        config_free(&s.cfg);
        return 0;
    }
    if (rc == CONFIG_VERIFY) {
        rc = audit_verify(s.cfg.audit.key, s.cfg.verify_files,
                          s.cfg.n_verify_files, s.cfg.verify_anchor, stdout,
                          stderr);
        config_free(&s.cfg);
        return rc;
    }
    if (rc == CONFIG_CHECK && (ingest_check(&s.cfg, err, sizeof(err)) != 0
                               || http_check(&s.cfg, err, sizeof(err)) != 0
                               || audit_check(&s.cfg.audit, err,
                                              sizeof(err)) != 0))
    {
        rc = CONFIG_ERROR;
    }

    if (rc == CONFIG_ERROR) {
        fprintf(stderr, "obs-sidecar: %s\n", err);
        config_free(&s.cfg);
        return 2;
    }

    if (rc == CONFIG_CHECK) {
        printf("configuration is valid\n");
        config_free(&s.cfg);
        return 0;
    }

    if (sidecar_start(&s, err, sizeof(err)) != 0) {
        sidecar_log("error", "%s", err);
        sidecar_stop(&s);
        return 1;
    }

    sidecar_run(&s);
    sidecar_stop(&s);
    sidecar_log("info", "stopped");
    return 0;
}

static int
sidecar_start(sidecar_t *s, char *err, size_t errlen)
{
    sigset_t  mask;
    int       i;

    /* block before any thread starts, so only the signalfd sees them */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* past a file size limit a write fails (EFBIG), which the audit trail
       says and survives, instead of the signal killing the sidecar */
    signal(SIGXFSZ, SIG_IGN);

    s->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    s->store = store_new(s->cfg.max_series);
    s->agg = s->store ? aggregator_new(s->store, &s->cfg) : NULL;

    if (s->signal_fd < 0 || s->agg == NULL) {
        snprintf(err, errlen, "cannot start: %s", strerror(errno));
        return -1;
    }

    /* the audit trail before anything that makes events */
    s->audit = audit_open(&s->cfg.audit, err, errlen);
    if (s->audit == NULL) {
        return -1;
    }
    audit_sidecar_start(s->audit, OBS_VERSION, s->cfg.config_path);

    s->ingest = ingest_open(&s->cfg, s->agg, err, errlen);
    if (s->ingest == NULL || ingest_set_audit(s->ingest, s->audit) != 0) {
        return -1;
    }

    /* every destination's queue, spool, retries and requests */
    s->delivery = delivery_new(s->cfg.exporter.drain_seconds);
    if (s->delivery == NULL) {
        snprintf(err, errlen, "cannot start: out of memory");
        return -1;
    }
    metrics_add_source(delivery_metrics, s->delivery);
    metrics_add_source(audit_metrics, s->audit);

    /* the audit stream to Loki, read from the trail's file */
    s->audit_ship = audit_ship_start(s->audit, &s->cfg.exporter, s->delivery,
                                     err, errlen);
    if (s->audit_ship == NULL && err[0]) {
        return -1;
    }

    s->exporter = exporter_start(&s->cfg.exporter, s->delivery, err, errlen);
    if (s->exporter == NULL) {
        return -1;
    }

    /* metrics only: ingest hands nothing over */
    if (s->cfg.exporter.logs || s->cfg.exporter.traces) {
        ingest_set_datagram_hook(s->ingest, sidecar_export, s->exporter);
    }
    metrics_add_source(exporter_metrics, s->exporter);
    metrics_add_source(business_metrics, aggregator_business(s->agg));
    metrics_add_source(active_requests_metrics,
                       aggregator_active_requests(s->agg));

    /* collectors read the store on their own threads; NULL when not
       wanted */
    s->remote_write = remote_write_start(&s->cfg.remote_write, s->store,
                                         s->delivery, err, errlen);
    s->clickhouse = clickhouse_start(&s->cfg.clickhouse, s->store,
                                     s->delivery, err, errlen);
    s->otlp_metrics = otlp_metrics_start(&s->cfg.otlp_metrics,
                                         s->cfg.exporter.gateway_name,
                                         s->cfg.exporter.gateway_host,
                                         s->cfg.exporter.resource_attributes,
                                         s->store, s->delivery, err, errlen);
    if ((s->cfg.remote_write.sink.url && s->remote_write == NULL)
        || (s->cfg.clickhouse.sink.url && s->clickhouse == NULL)
        || (s->cfg.otlp_metrics.otlp && s->otlp_metrics == NULL))
    {
        return -1;
    }

    s->http = http_start(&s->cfg, s->store, err, errlen);
    if (s->http == NULL) {
        return -1;
    }

    /* /status: snapshots on a thread of its own, never on ingest's */
    s->status = status_new(&(status_sources_t) {
                               s->store, aggregator_business(s->agg),
                               s->delivery, s->exporter,
                               aggregator_active_requests(s->agg) },
                           &s->cfg);
    if (s->status == NULL || status_start(s->status) != 0) {
        snprintf(err, errlen, "cannot start the status page's thread");
        return -1;
    }
    http_set_status(s->http, s->status);

    http_set_ready_check(s->http, sidecar_audit_ready, s->audit);
    http_set_ready(s->http, 1);

    for (i = 0; i < s->cfg.n_ingest; i++) {
        sidecar_log("info", "ingesting records on %s", s->cfg.ingest[i]);
    }
    sidecar_log("info", "serving http://%s/metrics and http://%s/status",
                s->cfg.listen, s->cfg.listen);
    sidecar_log("info", "log lines to %s, spans to %s",
                !s->cfg.exporter.logs ? "(off)"
                : s->cfg.exporter.loki.url ? s->cfg.exporter.loki.url
                : s->cfg.exporter.loki.file ? s->cfg.exporter.loki.file
                : s->cfg.exporter.otlp_logs_on ? "(OTLP only)" : "-",
                !s->cfg.exporter.traces ? "(off)"
                : s->cfg.exporter.otlp.url ? s->cfg.exporter.otlp.url
                : s->cfg.exporter.otlp.file ? s->cfg.exporter.otlp.file : "-");
    return 0;
}

static void
sidecar_run(sidecar_t *s)
{
    struct pollfd  fds[CONFIG_MAX_INGEST + 1];
    time_t         next_expire = time(NULL) + EXPIRE_EVERY;
    int            n, i;

    for ( ;; ) {
        n = ingest_pollfds(s->ingest, fds, CONFIG_MAX_INGEST);
        fds[n].fd = s->signal_fd;
        fds[n].events = POLLIN;
        fds[n].revents = 0;

        if (poll(fds, (nfds_t) n + 1, 1000) < 0 && errno != EINTR) {
            sidecar_log("error", "poll: %s", strerror(errno));
            return;
        }

        for (i = 0; i < n; i++) {
            if (fds[i].revents & POLLIN) {
                ingest_drain(s->ingest, i);
            }
        }

        if ((fds[n].revents & POLLIN) && sidecar_signal(s) != 0) {

            /* stop: take in what nginx already sent, then leave */
            ingest_stop(s->ingest);
            return;
        }

        if (time(NULL) >= next_expire) {
            aggregator_expire(s->agg, time(NULL));
            next_expire = time(NULL) + EXPIRE_EVERY;
        }
    }
}

/* Returns 1 when the sidecar is to stop. */

static int
sidecar_signal(sidecar_t *s)
{
    struct signalfd_siginfo  si;

    while (read(s->signal_fd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            sidecar_reload(s);
            continue;
        }

        sidecar_log("info", "signal %u: stopping", si.ssi_signo);
        http_set_ready(s->http, 0);
        s->stop_signal = si.ssi_signo;
        return 1;
    }

    return 0;
}

/* SIGHUP: a new configuration, same sockets, same counters. */

static void
sidecar_reload(sidecar_t *s)
{
    char  err[512] = "out of memory", restart[512], changed[1024];
    char  later[512];

    if (config_reload(&s->cfg, changed, sizeof(changed), restart,
                      sizeof(restart), err, sizeof(err)) != 0
        || aggregator_configure(s->agg, &s->cfg) != 0)
    {
        STATS_INC(reload_failures);
        sidecar_log("error", "reload failed, keeping the running "
                    "configuration: %s", err);
        audit_sidecar_reload_failed(s->audit, err);
        return;
    }

    /* the settings only a restart applies: restart's names, before ':' */
    snprintf(later, sizeof(later), "%.*s", (int) strcspn(restart, ":"),
             restart);
    audit_sidecar_reload(s->audit, s->cfg.config_path, changed, later);

    http_configure(s->http, &s->cfg);
    status_configure(s->status, &s->cfg);
    ingest_configure(s->ingest, &s->cfg);
    STATS_INC(reloads);
    sidecar_log("info", "configuration reloaded from %s",
                s->cfg.config_path ? s->cfg.config_path : "(no file)");
    if (restart[0]) {
        sidecar_log("warn", "reload:%s", restart);
    }
}

static void
sidecar_stop(sidecar_t *s)
{
    /* ingest has stopped: the producers hand over what they hold, the
       audit trail is written to its end (its last event says so), the
       delivery layer drains (bounded), then HTTP goes */
    status_stop(s->status);         /* reads the exporters' counters */
    remote_write_stop(s->remote_write);
    clickhouse_stop(s->clickhouse);
    otlp_metrics_stop(s->otlp_metrics);
    exporter_stop(s->exporter);
    ingest_close(s->ingest);
    s->ingest = NULL;
    if (s->stop_signal) {
        audit_sidecar_stop(s->audit, s->stop_signal);
    }
    audit_stop(s->audit, s->cfg.exporter.drain_seconds);
    audit_ship_flush(s->audit_ship, AUDIT_SHIP_FLUSH_SECONDS);
    delivery_stop(s->delivery);
    audit_ship_stop(s->audit_ship);
    http_stop(s->http);             /* /metrics reads the exporter's */
    exporter_free(s->exporter);
    status_free(s->status);
    delivery_free(s->delivery);
    audit_free(s->audit);
    aggregator_free(s->agg);
    store_free(s->store);
    if (s->signal_fd >= 0) {
        close(s->signal_fd);
    }
    config_free(&s->cfg);
}


static void
sidecar_export(const uint8_t *bytes, size_t len, size_t records,
    const uint8_t *over, void *data)
{
    exporter_offer(data, bytes, len, records, over);
}

/* /readyz: not ready while the audit file cannot be written. */

static const char *
sidecar_audit_ready(void *data)
{
    return audit_problem(data);
}
