/* Self-metrics of the exporters and of every destination.  See
   exporter_metrics.h. */

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "delivery.h"
#include "exporter.h"
#include "exporter_metrics.h"

typedef struct {
    const char           *name;
    const char           *legacy;
    const char           *items;
    destination_stats_t   st;
} row_t;

static void exporter_overflow_metric(expo_writer_t *w, exporter_t *e);
static int delivery_rows(delivery_t *d, row_t *rows);
static void delivery_family(expo_writer_t *w, const row_t *rows, int n,
    const char *name, const char *help, const char *unit, expo_type_t type,
    size_t field);
static void legacy_metrics(expo_writer_t *w, const row_t *r);

void
exporter_metrics(expo_writer_t *w, void *data)
{
    static const char  *shed_name = "signal";
    int                 i;

    expo_family(w, "obs_exporter_shed",
                "Records whose log line or spans were not built because the "
                "exporter threads were a full queue behind (metrics still "
                "counted them).", NULL, EXPO_COUNTER);
    for (i = 0; i < SIGNALS; i++) {
        expo_sample(w, &shed_name, &exporter_signal_names[i], 1,
                    (double) exporter_shed(data, (signal_id_t) i));
    }
    expo_family_end(w);

    exporter_overflow_metric(w, data);

    expo_family(w, "obs_exporter_backlog_datagrams",
                "Datagrams handed from ingest to the exporter threads and "
                "not yet read (bounded by exporter_queue_datagrams).", NULL,
                EXPO_GAUGE);
    expo_sample(w, NULL, NULL, 0, (double) exporter_backlog(data));
    expo_family_end(w);
}

void
delivery_metrics(expo_writer_t *w, void *data)
{
    static const char  *names[] = { "exporter", "result" };
    static const char  *drop_names[] = { "exporter", "reason" };
    row_t               rows[DELIVERY_MAX_DESTINATIONS];
    const char         *values[2];
    int                 i, k, n;

    n = delivery_rows(data, rows);

    expo_family(w, "obs_exporter_requests",
                "Requests to each destination's receiver, by result "
                "(failure: retried or refused).", NULL, EXPO_COUNTER);
    for (i = 0; i < n; i++) {
        values[0] = rows[i].name;
        values[1] = "success";
        expo_sample(w, names, values, 2, (double) rows[i].st.requests_ok);
        values[1] = "failure";
        expo_sample(w, names, values, 2,
                    (double) (rows[i].st.requests_retried
                              + rows[i].st.requests_rejected));
    }
    expo_family_end(w);

    delivery_family(w, rows, n, "obs_exporter_retries",
                    "Requests tried again after 429, 5xx, a connection error "
                    "or a redirect.", NULL, EXPO_COUNTER,
                    offsetof(destination_stats_t, retries));
    delivery_family(w, rows, n, "obs_exporter_redirects",
                    "3xx answers: a configuration error (redirects are not "
                    "followed; the data is kept and retried).", NULL,
                    EXPO_COUNTER, offsetof(destination_stats_t, redirects));
    delivery_family(w, rows, n, "obs_exporter_sent",
                    "Items (log lines, spans, samples, rows) delivered (or "
                    "written to their file).", NULL, EXPO_COUNTER,
                    offsetof(destination_stats_t, items_sent));

    expo_family(w, "obs_exporter_dropped",
                "Items given up, by reason.", NULL, EXPO_COUNTER);
    for (i = 0; i < n; i++) {
        for (k = 0; k < DROP_REASONS; k++) {
            values[0] = rows[i].name;
            values[1] = delivery_drop_names[k];
            expo_sample(w, drop_names, values, 2,
                        (double) rows[i].st.items_dropped[k]);
        }
    }
    expo_family_end(w);

    delivery_family(w, rows, n, "obs_exporter_spooled",
                    "Payloads written to the on-disk spool.", NULL,
                    EXPO_COUNTER,
                    offsetof(destination_stats_t, payloads_spooled));
    delivery_family(w, rows, n, "obs_exporter_queue_bytes",
                    "Payload bytes waiting in memory.", "bytes", EXPO_GAUGE,
                    offsetof(destination_stats_t, queue_bytes));
    delivery_family(w, rows, n, "obs_exporter_spool_bytes",
                    "Bytes in the on-disk spool.", "bytes", EXPO_GAUGE,
                    offsetof(destination_stats_t, spool_bytes));
    delivery_family(w, rows, n, "obs_exporter_spool_files",
                    "Files in the on-disk spool.", NULL, EXPO_GAUGE,
                    offsetof(destination_stats_t, spool_files));
    delivery_family(w, rows, n, "obs_exporter_spool_limit_bytes",
                    "Size bound of the on-disk spool (0: no spool).", "bytes",
                    EXPO_GAUGE, offsetof(destination_stats_t, spool_limit));

    expo_family(w, "obs_exporter_last_success_timestamp_seconds",
                "When the receiver last accepted a request (0: never).",
                "seconds", EXPO_GAUGE);
    for (i = 0; i < n; i++) {
        expo_sample(w, names, &rows[i].name, 1, rows[i].st.last_success);
    }
    expo_family_end(w);

    for (i = 0; i < n; i++) {
        if (rows[i].legacy) {
            legacy_metrics(w, &rows[i]);
        }
    }
}

/* Loki's stream labels always; OTLP log records' service when they go. */
static void
exporter_overflow_metric(expo_writer_t *w, exporter_t *e)
{
    static const char    *names[] = { "exporter", "label" };
    const char           *values[2];
    destination_stats_t   st;
    int                   i;

    exporter_stats(e, EXPORTER_OTLP_LOGS, &st);

    expo_family(w, "obs_exporter_overflow",
                "Log lines (Loki) and log records (OTLP) whose stream label "
                "went under __overflow__ because the metrics count its "
                "value there (max_services, max_tenants).", NULL,
                EXPO_COUNTER);
    values[0] = exporter_sink_names[EXPORTER_LOKI];
    for (i = 0; i < STREAM_LABELS; i++) {
        values[1] = exporter_stream_label_names[i];
        expo_sample(w, names, values, 2,
                    (double) exporter_overflow(e, EXPORTER_LOKI,
                                               (stream_label_t) i));
    }
    if (strcmp(st.mode, "off") != 0) {
        values[0] = exporter_sink_names[EXPORTER_OTLP_LOGS];
        values[1] = exporter_stream_label_names[STREAM_SERVICE];
        expo_sample(w, names, values, 2,
                    (double) exporter_overflow(e, EXPORTER_OTLP_LOGS,
                                               STREAM_SERVICE));
    }
    expo_family_end(w);
}

static int
delivery_rows(delivery_t *d, row_t *rows)
{
    const destination_spec_t  *spec;
    destination_t             *t;
    int                        n;

    for (n = 0; (t = delivery_destination(d, n)) != NULL; n++) {
        spec = destination_spec(t);
        rows[n].name = spec->name;
        rows[n].legacy = spec->legacy;
        rows[n].items = spec->items;
        delivery_stats(t, &rows[n].st);
    }

    return n;
}

/* One family with a sample per destination, from one uint64_t field. */

static void
delivery_family(expo_writer_t *w, const row_t *rows, int n, const char *name,
    const char *help, const char *unit, expo_type_t type, size_t field)
{
    static const char  *label[] = { "exporter" };
    uint64_t            v;
    int                 i;

    expo_family(w, name, help, unit, type);
    for (i = 0; i < n; i++) {
        memcpy(&v, (const char *) &rows[i].st + field, sizeof(v));
        expo_sample(w, label, &rows[i].name, 1, (double) v);
    }
    expo_family_end(w);
}

/* obs_remote_write_*, obs_clickhouse_*: the names dashboards and alerts
   knew before every destination reported as obs_exporter_*. */

static void
legacy_metrics(expo_writer_t *w, const row_t *r)
{
    static const char  *reason[] = { "reason" };
    static const char  *result[] = { "result" };
    static const char  *results[] = { "success", "retried", "rejected" };
    const destination_stats_t  *st = &r->st;
    double              counts[3];
    char                name[128], help[256];
    int                 i;

    snprintf(name, sizeof(name), "obs_%s_%s_sent", r->legacy, r->items);
    snprintf(help, sizeof(help), "How many %s the receiver accepted.",
             r->items);
    expo_family(w, name, help, NULL, EXPO_COUNTER);
    expo_sample(w, NULL, NULL, 0, (double) st->items_sent);
    expo_family_end(w);

    snprintf(name, sizeof(name), "obs_%s_%s_dropped", r->legacy, r->items);
    snprintf(help, sizeof(help), "How many %s were given up, by reason: "
             "the queue or spool bound was reached, the receiver refused "
             "them (4xx), or the sidecar stopped with them unsent (and "
             "unspooled).", r->items);
    expo_family(w, name, help, NULL, EXPO_COUNTER);
    for (i = 0; i < DROP_REASONS; i++) {
        expo_sample(w, reason, &delivery_drop_names[i], 1,
                    (double) st->items_dropped[i]);
    }
    expo_family_end(w);

    counts[0] = (double) st->requests_ok;
    counts[1] = (double) st->requests_retried;
    counts[2] = (double) st->requests_rejected;
    snprintf(name, sizeof(name), "obs_%s_requests", r->legacy);
    expo_family(w, name, "Requests to the receiver, by result (retried: "
                "429, 5xx, a redirect or no connection; rejected: any other "
                "answer).", NULL, EXPO_COUNTER);
    for (i = 0; i < 3; i++) {
        expo_sample(w, result, &results[i], 1, counts[i]);
    }
    expo_family_end(w);

    snprintf(name, sizeof(name), "obs_%s_queue_bytes", r->legacy);
    expo_family(w, name, "Payload bytes waiting to be sent (memory and "
                "spool).", "bytes", EXPO_GAUGE);
    expo_sample(w, NULL, NULL, 0,
                (double) (st->queue_bytes + st->spool_bytes));
    expo_family_end(w);

    snprintf(name, sizeof(name), "obs_%s_last_success_timestamp_seconds",
             r->legacy);
    expo_family(w, name, "When the receiver last accepted a request (0: "
                "never).", "seconds", EXPO_GAUGE);
    expo_sample(w, NULL, NULL, 0, st->last_success);
    expo_family_end(w);
}
