/* What /metrics shows.  See metrics.h. */

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compress.h"
#include "metrics.h"
#include "stats.h"

#ifndef OBS_VERSION
#define OBS_VERSION "dev"
#endif

#define METRICS_MAX_SOURCES  8

stats_t  obs_stats;

const char *const  decode_reason_names[DECODE_REASONS] = {
#define OBS_DECODE_ERROR(ID, reason)  #reason,
#include "obs/v1/decode_errors.def"
};
const char *const  module_drop_names[MODULE_DROP_REASONS] = {
#define OBS_MODULE_DROP(ID, reason, field)  #reason,
#include "obs/v1/drop_reasons.def"
};
const char *const  overflow_names[OVERFLOW_KINDS] = {
    "tenant", "route", "upstream", "series", "service"
};
const char *const  http_closed_names[HTTP_CLOSED_REASONS] = {
    "deadline", "busy"
};

const char *const  jwt_result_names[JWT_RESULTS] = {
    "valid", "missing", "malformed", "alg_not_allowed", "unknown_key",
    "bad_signature", "expired", "not_yet_valid", "bad_issuer",
    "bad_audience", "missing_claim"
};

static struct {
    metrics_source_pt  fn;
    void              *data;
} sources[METRICS_MAX_SOURCES];
static int  n_sources;

static void metrics_visit(const family_t *f, const series_t *se,
    const char **labels, void *data);
static void metrics_self(expo_writer_t *w, store_t *store);
static void metrics_counter(expo_writer_t *w, const char *name,
    const char *help, atomic_ullong *value);
static void metrics_by_label(expo_writer_t *w, const char *name,
    const char *help, const char *label, const char *const *values,
    atomic_ullong *counts, int n);
static void metrics_gauge(expo_writer_t *w, const char *name,
    const char *help, const char *unit, double value);
static void metrics_process(expo_writer_t *w);
static void metrics_jwt(expo_writer_t *w);
static void metrics_write(expo_writer_t *w, store_t *store);
static void metrics_write_format(store_t *store, expo_format_t format,
    buf_t *out);

int
metrics_add_source(metrics_source_pt source, void *data)
{
    if (n_sources == METRICS_MAX_SOURCES) {
        return -1;
    }

    sources[n_sources].fn = source;
    sources[n_sources].data = data;
    n_sources++;
    return 0;
}

int
metrics_render(store_t *store, expo_format_t format, buf_t *out)
{
    static atomic_size_t  last_size[3];

    /* the last scrape's size saves growing a large buffer step by step */
    buf_reserve(out, atomic_load(&last_size[format]) * 9 / 8);
    metrics_write_format(store, format, out);
    atomic_store(&last_size[format], out->len);
    return out->failed ? -1 : 0;
}

/* One scrape's body in format, appended to out (or through it, drained). */
static void
metrics_write_format(store_t *store, expo_format_t format, buf_t *out)
{
    expo_writer_t  w;

    STATS_INC(scrapes);
    expo_begin(&w, format, out);
    metrics_write(&w, store);
    expo_end(&w);
}

/* Where a gzipped scrape's window goes when full. */
typedef struct {
    gzip_stream_t  *z;
    buf_t          *zipped;
} metrics_gzip_t;

static int
metrics_gzip_drain(buf_t *window, void *data)
{
    metrics_gzip_t  *g = data;

    return gzip_stream_write(g->z, window->data, window->len, 0, g->zipped);
}

int
metrics_render_gzip(store_t *store, expo_format_t format, buf_t *window,
    buf_t *zipped)
{
    metrics_gzip_t  g = { gzip_stream_new(), zipped };
    int             rc = -1;

    buf_reset(window);
    if (g.z != NULL
        && buf_drain(window, METRICS_GZIP_WINDOW, metrics_gzip_drain, &g) == 0)
    {
        metrics_write_format(store, format, window);
        if (!window->failed
            && gzip_stream_write(g.z, window->data, window->len, 1, zipped)
               == 0)
        {
            rc = 0;
        }
    }

    gzip_stream_free(g.z);
    buf_reset(window);
    window->drain = NULL;
    return rc;
}

void
metrics_collect(store_t *store, expo_series_pt series, void *data)
{
    expo_writer_t  w;

    expo_begin_series(&w, series, data);
    metrics_write(&w, store);
    expo_end(&w);
}

void
metrics_visit_all(store_t *store, const expo_visitor_t *v, void *data)
{
    expo_writer_t  w;

    expo_begin_visit(&w, v, data);
    metrics_write(&w, store);
    expo_end(&w);
}

/* The store's families, then the sidecar's own, then the sources'. */

static void
metrics_write(expo_writer_t *w, store_t *store)
{
    int  f, i;

    for (f = 0; f < FAMILY_COUNT; f++) {
        const family_t  *fam = &store_families[f];

        expo_family(w, fam->name, fam->help, fam->unit,
                    fam->type == METRIC_HISTOGRAM ? EXPO_HISTOGRAM
                                                  : EXPO_COUNTER);
        store_visit(store, (family_id_t) f, metrics_visit, w);
        expo_family_end(w);
    }

    metrics_self(w, store);

    for (i = 0; i < n_sources; i++) {
        sources[i].fn(w, sources[i].data);
    }
}

static void
metrics_visit(const family_t *f, const series_t *se, const char **labels,
    void *data)
{
    expo_writer_t  *w = data;

    /* a series that expired and came back is another series (OTLP's start
       time) */
    w->born = se->born;

    if (f->type == METRIC_HISTOGRAM) {
        if (se->v.histogram) {
            expo_histogram(w, f->labels, labels, f->n_labels,
                           se->v.histogram);
        }
    } else {
        expo_sample(w, f->labels, labels, f->n_labels,
                    (double) se->v.counter);
    }

    w->born = 0;
}

static void
metrics_self(expo_writer_t *w, store_t *store)
{
    static const char  *version_label[] = { "version" };
    static const char  *version[] = { OBS_VERSION };
    static const char  *reload_results[] = { "success", "failure" };

    atomic_ullong  reloads[2];

    metrics_counter(w, "obs_datagrams_received",
                    "Datagrams read from the ingest sockets.",
                    &obs_stats.datagrams_received);
    metrics_counter(w, "obs_records_received",
                    "Request records decoded and aggregated.",
                    &obs_stats.records_received);
    metrics_by_label(w, "obs_records_dropped",
                     "Records lost before aggregation, by reason "
                     "(reported by the nginx module).",
                     "reason", module_drop_names, obs_stats.module_dropped,
                     MODULE_DROP_REASONS);
    metrics_counter(w, "obs_datagrams_lost",
                    "Datagrams missing from a worker's sequence.",
                    &obs_stats.datagrams_lost);
    metrics_by_label(w, "obs_decode_errors",
                     "Datagrams rejected, by reason.",
                     "reason", decode_reason_names, obs_stats.decode_errors,
                     DECODE_REASONS);
    metrics_by_label(w, "obs_series_overflow",
                     "Label values or series replaced by __overflow__ "
                     "because a cap was reached.",
                     "dimension", overflow_names, obs_stats.overflow,
                     OVERFLOW_KINDS);
    metrics_gauge(w, "obs_series", "Series currently kept.", NULL,
                  (double) store_size(store));
    metrics_counter(w, "obs_series_expired",
                    "Series removed after going without updates.",
                    &obs_stats.series_expired);
    metrics_counter(w, "obs_store_allocation_failures",
                    "Updates lost because memory ran out.",
                    &obs_stats.store_nomem);
    metrics_counter(w, "obs_scrapes", "Scrapes of /metrics served.",
                    &obs_stats.scrapes);
    metrics_counter(w, "obs_scrapes_refused",
                    "Scrapes answered 503 because other scrapes' bodies "
                    "were still being sent.",
                    &obs_stats.http_scrapes_refused);
    metrics_by_label(w, "obs_http_connections_closed",
                     "HTTP connections the sidecar closed on slow clients, "
                     "by reason.",
                     "reason", http_closed_names, obs_stats.http_closed,
                     HTTP_CLOSED_REASONS);

    atomic_init(&reloads[0], atomic_load(&obs_stats.reloads));
    atomic_init(&reloads[1], atomic_load(&obs_stats.reload_failures));
    metrics_by_label(w, "obs_config_reloads",
                     "Configuration reloads (SIGHUP), by result.",
                     "result", reload_results, reloads, 2);

    expo_family(w, "obs_build", "obs-sidecar build information.", NULL,
                EXPO_INFO);
    expo_sample(w, version_label, version, 1, 1);
    expo_family_end(w);

    metrics_jwt(w);
    metrics_process(w);
}

/* What obs_jwt made of the tokens nginx saw (the module counts them). */

static void
metrics_jwt(expo_writer_t *w)
{
    metrics_by_label(w, "obs_jwt_tokens",
                     "Tokens checked by obs_jwt in nginx, by result.",
                     "result", jwt_result_names, obs_stats.jwt_tokens,
                     JWT_RESULTS);
    metrics_counter(w, "obs_jwt_cache_hits",
                    "Valid tokens answered by a worker's cache of "
                    "verified tokens, without a signature check.",
                    &obs_stats.jwt_cache_hits);
}

static void
metrics_counter(expo_writer_t *w, const char *name, const char *help,
    atomic_ullong *value)
{
    expo_family(w, name, help, NULL, EXPO_COUNTER);
    expo_sample(w, NULL, NULL, 0, (double) atomic_load(value));
    expo_family_end(w);
}

static void
metrics_by_label(expo_writer_t *w, const char *name, const char *help,
    const char *label, const char *const *values, atomic_ullong *counts,
    int n)
{
    int  i;

    expo_family(w, name, help, NULL, EXPO_COUNTER);
    for (i = 0; i < n; i++) {
        expo_sample(w, &label, &values[i], 1,
                    (double) atomic_load(&counts[i]));
    }
    expo_family_end(w);
}

static void
metrics_gauge(expo_writer_t *w, const char *name, const char *help,
    const char *unit, double value)
{
    expo_family(w, name, help, unit, EXPO_GAUGE);
    expo_sample(w, NULL, NULL, 0, value);
    expo_family_end(w);
}

/* CPU, memory and start time from /proc/self/stat. */

static void
metrics_process(expo_writer_t *w)
{
    static double  start_time;
    FILE          *f;
    char           line[1024], *p;
    unsigned long  utime = 0, stime = 0, start_ticks = 0;
    long           rss_pages = 0, ticks = sysconf(_SC_CLK_TCK);
    long           page = sysconf(_SC_PAGESIZE);
    double         uptime = 0;

    f = fopen("/proc/self/stat", "r");
    if (f == NULL) {
        return;
    }

    p = fgets(line, sizeof(line), f);
    fclose(f);
    if (p == NULL || (p = strrchr(line, ')')) == NULL) {
        return;
    }

    /* fields after the command: state is 3, utime 14, stime 15,
       starttime 22, rss 24 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu "
               "%*d %*d %*d %*d %*d %*d %lu %*u %ld", &utime, &stime,
               &start_ticks, &rss_pages) != 4)
    {
        return;
    }

    if (start_time == 0) {
        f = fopen("/proc/uptime", "r");
        if (f) {
            if (fscanf(f, "%lf", &uptime) == 1) {
                start_time = (double) time(NULL) - uptime
                             + (double) start_ticks / (double) ticks;
            }
            fclose(f);
        }
    }

    expo_family(w, "obs_process_cpu_seconds",
                "User and system CPU time of the sidecar.", "seconds",
                EXPO_COUNTER);
    expo_sample(w, NULL, NULL, 0, (double) (utime + stime) / (double) ticks);
    expo_family_end(w);

    metrics_gauge(w, "obs_process_resident_memory_bytes",
                  "Resident memory of the sidecar.", "bytes",
                  (double) rss_pages * (double) page);
    metrics_gauge(w, "obs_process_start_time_seconds",
                  "When the sidecar started, in unix seconds.", "seconds",
                  start_time);
}
