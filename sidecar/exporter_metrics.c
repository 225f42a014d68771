/* obs_exporter_* families, from the exporter's published counters. */

#include <stddef.h>
#include <string.h>

#include "exporter.h"
#include "exporter_metrics.h"

static void exporter_family(expo_writer_t *w, const sink_stats_t *st,
    const char *name, const char *help, const char *unit, expo_type_t type,
    size_t field);

void
exporter_metrics(expo_writer_t *w, void *data)
{
    static const char  *names[] = { "exporter", "result" };
    static const char  *drop_names[] = { "exporter", "reason" };
    static const char  *shed_name = "signal";
    sink_stats_t        st[EXPORTER_SINKS];
    const char         *values[2];
    int                 i, k;

    for (i = 0; i < EXPORTER_SINKS; i++) {
        exporter_stats(data, (sink_id_t) i, &st[i]);
    }

    expo_family(w, "obs_exporter_requests",
                "Deliveries to Loki or the OTLP receiver, by result.", NULL,
                EXPO_COUNTER);
    for (i = 0; i < EXPORTER_SINKS; i++) {
        values[0] = exporter_sink_names[i];
        values[1] = "success";
        expo_sample(w, names, values, 2, (double) st[i].requests_ok);
        values[1] = "failure";
        expo_sample(w, names, values, 2, (double) st[i].requests_failed);
    }
    expo_family_end(w);

    exporter_family(w, st, "obs_exporter_retries",
                    "Deliveries tried again after 429, 5xx or a connection "
                    "error.", NULL, EXPO_COUNTER,
                    offsetof(sink_stats_t, retries));
    exporter_family(w, st, "obs_exporter_sent",
                    "Log lines or spans delivered (or written to their "
                    "file).", NULL, EXPO_COUNTER,
                    offsetof(sink_stats_t, items_sent));

    expo_family(w, "obs_exporter_dropped",
                "Log lines or spans given up, by reason.", NULL,
                EXPO_COUNTER);
    for (i = 0; i < EXPORTER_SINKS; i++) {
        for (k = 0; k < DROP_REASONS; k++) {
            values[0] = exporter_sink_names[i];
            values[1] = exporter_drop_names[k];
            expo_sample(w, drop_names, values, 2,
                        (double) st[i].items_dropped[k]);
        }
    }
    expo_family_end(w);

    expo_family(w, "obs_exporter_shed",
                "Records whose log line or spans were not built because the "
                "exporter threads were a full queue behind (metrics still "
                "counted them).", NULL, EXPO_COUNTER);
    for (i = 0; i < SIGNALS; i++) {
        expo_sample(w, &shed_name, &exporter_signal_names[i], 1,
                    (double) exporter_shed(data, (signal_id_t) i));
    }
    expo_family_end(w);

    expo_family(w, "obs_exporter_backlog_datagrams",
                "Datagrams handed from ingest to the exporter threads and "
                "not yet read (bounded by exporter_queue_datagrams).", NULL,
                EXPO_GAUGE);
    expo_sample(w, NULL, NULL, 0, (double) exporter_backlog(data));
    expo_family_end(w);

    exporter_family(w, st, "obs_exporter_spooled",
                    "Payloads written to the on-disk spool.", NULL,
                    EXPO_COUNTER, offsetof(sink_stats_t, payloads_spooled));
    exporter_family(w, st, "obs_exporter_queue_bytes",
                    "Payload bytes waiting in memory.", "bytes", EXPO_GAUGE,
                    offsetof(sink_stats_t, queue_bytes));
    exporter_family(w, st, "obs_exporter_spool_bytes",
                    "Bytes in the on-disk spool.", "bytes", EXPO_GAUGE,
                    offsetof(sink_stats_t, spool_bytes));
    exporter_family(w, st, "obs_exporter_spool_limit_bytes",
                    "Size bound of the on-disk spool (0: no spool).", "bytes",
                    EXPO_GAUGE, offsetof(sink_stats_t, spool_limit));
}

/* One family with a sample per exporter, from one uint64_t stats field. */

static void
exporter_family(expo_writer_t *w, const sink_stats_t *st, const char *name,
    const char *help, const char *unit, expo_type_t type, size_t field)
{
    static const char  *label[] = { "exporter" };
    uint64_t            v;
    int                 i;

    expo_family(w, name, help, unit, type);
    for (i = 0; i < EXPORTER_SINKS; i++) {
        memcpy(&v, (const char *) &st[i] + field, sizeof(v));
        expo_sample(w, label, &exporter_sink_names[i], 1, (double) v);
    }
    expo_family_end(w);
}
