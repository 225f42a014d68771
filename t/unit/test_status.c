/*
 * The status page's numbers (sidecar/status/status.c, status_json.c):
 * Prometheus' histogram_quantile, the share under the latency threshold, snapshots of
 * a store (windows, resets, bucket layouts), and /status.json read back
 * with jansson (escaping, parameters, bounds).
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <jansson.h>

#include "config.h"
#include "status.h"
#include "store.h"
#include "unit.h"

static const double  bounds[] = {
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10
};
#define N_BOUNDS  14

typedef struct {
    const char  *names[8];
    const char  *values[8];
} args_t;

static const char *
arg(void *ctx, const char *name)
{
    args_t  *a = ctx;
    int      i;

    for (i = 0; i < 8 && a->names[i]; i++) {
        if (strcmp(a->names[i], name) == 0) {
            return a->values[i];
        }
    }
    return NULL;
}

static int
near(double a, double b)
{
    return fabs(a - b) <= 1e-12 * (fabs(b) > 1 ? fabs(b) : 1);
}

static double
now_wall(void)
{
    struct timeval  tv;

    gettimeofday(&tv, NULL);
    return (double) tv.tv_sec + (double) tv.tv_usec / 1e6;
}

static json_t *
render(status_t *st, args_t *a)
{
    buf_t          out = { 0 };
    char           err[256];
    json_error_t   jerr;
    json_t        *root;
    static args_t  none;

    if (status_render(st, arg, a ? a : &none, &out, err, sizeof(err)) != 0) {
        buf_free(&out);
        return NULL;
    }
    root = json_loadb(out.data, out.len, 0, &jerr);
    CHECK(root != NULL, "status.json parses");
    CHECK(out.len <= STATUS_JSON_MAX, "status.json within its bound");
    buf_free(&out);
    return root;
}

static json_t *
row_of(json_t *root, const char *table, const char *key, const char *value)
{
    json_t  *row;
    size_t   i;

    json_array_foreach(json_object_get(json_object_get(root, table), "rows"),
                       i, row)
    {
        if (strcmp(json_string_value(json_object_get(row, key)), value)
            == 0)
        {
            return row;
        }
    }
    return NULL;
}

static double
num(json_t *o, const char *key)
{
    json_t  *v = json_object_get(o, key);

    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void
test_quantile(void)
{
    static const double    b[] = { 0.1, 0.5, 1 };
    static const uint64_t  c[] = { 1, 2, 3, 4 };
    static const uint64_t  empty[] = { 0, 0, 0, 0 };
    static const uint64_t  zero_first[] = { 0, 0, 5, 0 };

    /* rank 5 falls in (0.5, 1]: 0.5 + 0.5 * (5 - 3) / 3 */
    CHECK(near(status_quantile(0.5, b, 3, c), 0.5 + 0.5 * (2.0 / 3.0)),
          "median interpolates in its bucket");
    CHECK(near(status_quantile(0.05, b, 3, c), 0.05),
          "the first bucket starts at 0");
    CHECK(status_quantile(0.99, b, 3, c) == 1,
          "a rank in +Inf is the highest finite bound");
    CHECK(near(status_quantile(0.3, b, 3, c), 0.5),
          "a rank at a bucket's top is its bound");
    CHECK(isnan(status_quantile(0.5, b, 3, empty)), "no observations: NaN");
    CHECK(near(status_quantile(0.5, b, 3, zero_first), 0.75),
          "empty buckets below are skipped");
    CHECK(status_quantile(-1, b, 3, c) == -INFINITY
          && status_quantile(2, b, 3, c) == INFINITY, "q out of [0, 1]");

    CHECK(near(status_share_under(0.5, b, 3, c), 0.3), "share at a bound");
    CHECK(near(status_share_under(0.75, b, 3, c), 0.45),
          "share inside a bucket interpolates");
    CHECK(near(status_share_under(2, b, 3, c), 0.6),
          "+Inf observations are over any threshold");
    CHECK(isnan(status_share_under(0.5, b, 3, empty)), "share of nothing");
}

static void
count(store_t *s, const char *service, const char *route, const char *code,
    const char *tenant, uint64_t n, time_t now)
{
    const char  *labels[5] = { service, route, "GET", code, tenant };

    store_add(s, FAMILY_REQUESTS, labels, n, now, 0, 0);
}

static void
observe(store_t *s, const char *service, const char *route,
    const char *tenant, const double *b, int nb, double v, time_t now)
{
    const char  *labels[4] = { service, route, "GET", tenant };
    uint8_t      trace[16], span[8] = { 1 };

    memset(trace, (int) (v * 100) + 1, sizeof(trace));
    store_observe(s, FAMILY_DURATION, labels, b, nb, v, trace, span,
                  now_wall(), now, 0, 0);
}

static void
test_snapshot(config_t *cfg)
{
    static const double  other[] = { 0.2, 2 };
    store_t          *s = store_new(100000);
    status_sources_t  src = { s, NULL, NULL, NULL, NULL };
    status_t         *st;
    json_t           *root, *r, *ex;
    args_t            a = { { NULL }, { NULL } };
    double            t0 = now_wall();
    time_t            now = (time_t) t0;
    const char       *hostile = "\"><img src=x onerror=alert(1)>\n\\";
    int               i;

    cfg->status.window = 60;
    st = status_new(&src, cfg);

    for (i = 0; i < 9; i++) {
        observe(s, "api", "/a", "t1", bounds, N_BOUNDS, 0.02, now);
    }
    observe(s, "api", "/a", "t2", bounds, N_BOUNDS, 3, now);
    count(s, "api", "/a", "200", "t1", 7, now);
    count(s, "api", "/a", "503", "t1", 2, now);
    count(s, "api", "/a", "404", "t2", 1, now);
    count(s, hostile, "<script>", "200", "__overflow__", 4, now);

    CHECK(status_take(st, t0) == 0, "first snapshot");
    root = render(st, NULL);
    r = row_of(root, "routes", "route", "/a");
    CHECK(r && num(r, "requests") == 10 && num(r, "errors_5xx") == 2
          && num(r, "errors_4xx") == 1, "counts summed over code, tenant");
    CHECK(r && near(num(r, "ratio_5xx"), 0.2), "5xx ratio");
    /* 9 at 0.02 (bucket 0.025), 1 at 3 (bucket 5): p50 inside 0.025 */
    CHECK(r && near(num(r, "p50"), 0.01 + 0.015 * (5.0 / 9.0)), "p50");
    CHECK(r && near(num(r, "p99"), 2.5 + 2.5 * ((9.9 - 9) / 1)), "p99");
    CHECK(r && near(num(r, "latency_good"), 0.9), "share under 0.5 s");
    ex = r ? json_object_get(r, "exemplar") : NULL;
    CHECK(ex && near(num(ex, "value"), 3)
          && strcmp(json_string_value(json_object_get(ex, "trace_id")),
                    "2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d") == 0,
          "the slowest exemplar of the window");
    CHECK(row_of(root, "routes", "service", hostile) != NULL
          && row_of(root, "tenants", "tenant", "__overflow__") != NULL,
          "hostile labels come back byte for byte");
    CHECK(near(num(json_object_get(root, "window"), "start"),
               num(root, "started")), "before a checkpoint: since start");
    json_decref(root);

    /* a window later: the base is the first snapshot */
    count(s, "api", "/a", "200", "t1", 12, now);
    observe(s, "api", "/a", "t1", bounds, N_BOUNDS, 0.7, now);
    CHECK(status_take(st, t0 + 60) == 0, "second snapshot");
    root = render(st, NULL);
    r = row_of(root, "routes", "route", "/a");
    CHECK(near(num(json_object_get(root, "window"), "start"), t0),
          "the window starts at the checkpoint");
    CHECK(r && num(r, "window_requests") == 12 && near(num(r, "rate"), 0.2)
          && near(num(r, "ratio_5xx"), 0), "the window's increase");
    CHECK(r && near(num(r, "p50"), 0.5 + 0.25 * 0.5),
          "the window's quantile from bucket increases");
    json_decref(root);

    /* a series that expired and came back lower is a reset */
    store_expire(s, now + 1);
    count(s, "api", "/a", "200", "t1", 3, now + 2);
    observe(s, "api", "/a", "t1", other, 2, 0.15, now + 2);
    CHECK(status_take(st, t0 + 65) == 0, "third snapshot");
    root = render(st, NULL);
    r = row_of(root, "routes", "route", "/a");
    CHECK(r && num(r, "requests") == 3 && num(r, "window_requests") == 3,
          "a decrease counts whole, as rate() does");
    /* 0.15 in a (0.1, 0.2] bucket of another layout lands in 0.25 */
    CHECK(r && near(num(r, "p50"), 0.1 + 0.15 * 0.5),
          "another bucket layout maps onto the configured one");
    json_decref(root);

    /* sorting, filtering, paging and refusals */
    count(s, "web", "/b", "500", "t3", 50, now + 2);
    CHECK(status_take(st, t0 + 70) == 0, "fourth snapshot");
    a.names[0] = "routes_sort";
    a.values[0] = "requests";
    a.names[1] = "routes_limit";
    a.values[1] = "1";
    root = render(st, &a);
    r = json_array_get(json_object_get(json_object_get(root, "routes"),
                                       "rows"), 0);
    CHECK(json_array_size(json_object_get(json_object_get(root, "routes"),
                                          "rows")) == 1
          && strcmp(json_string_value(json_object_get(r, "route")), "/b")
             == 0, "sorted by requests, one row");
    json_decref(root);

    a.names[2] = "route";
    a.values[2] = "WEB";
    a.values[1] = "100";
    root = render(st, &a);
    CHECK(num(json_object_get(root, "routes"), "total") == 1,
          "the route filter ignores case");
    json_decref(root);

    a.values[1] = "101";
    CHECK(render(st, &a) == NULL, "a limit over 100 is refused");
    a.values[1] = "1";
    a.values[0] = "nope";
    CHECK(render(st, &a) == NULL, "an unknown column is refused");

    status_free(st);
    store_free(s);
}

/* Many long routes: the answer stays within its bound. */

static void
test_bound(config_t *cfg)
{
    store_t          *s = store_new(1000000);
    status_sources_t  src = { s, NULL, NULL, NULL, NULL };
    status_t         *st = status_new(&src, cfg);
    char              route[300];
    json_t           *root;
    args_t            a = { { "routes_limit", "tenants_limit",
                              "business_limit" },
                            { "100", "100", "100" } };
    int               i;

    for (i = 0; i < 3000; i++) {
        memset(route, '"', 256);
        snprintf(route + 240, 60, "%d", i);
        count(s, "svc", route, "200", route, 1, 1000);
        observe(s, "svc", route, "t", bounds, N_BOUNDS, 0.3, 1000);
    }
    for (i = 0; i < STATUS_RING + 5; i++) {
        status_take(st, now_wall() + i * 5);
    }

    root = render(st, &a);
    CHECK(root && json_array_size(json_object_get(json_object_get(root,
          "routes"), "rows")) == 100, "a page of 100 rows");
    CHECK(root && json_array_size(json_object_get(json_object_get(
          json_array_get(json_object_get(json_object_get(root, "routes"),
                         "rows"), 0), "spark"), "rate")) == STATUS_RING,
          "sparklines as long as the ring");
    json_decref(root);
    status_free(st);
    store_free(s);
}

int
main(void)
{
    config_t  cfg;
    char      err[256];
    char     *args[] = { "test", "--ingest", "unix:/tmp/unused", NULL };

    if (config_load(&cfg, 3, args, err, sizeof(err)) != CONFIG_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }

    test_quantile();
    test_snapshot(&cfg);
    test_bound(&cfg);

    config_free(&cfg);
    return unit_report("test_status");
}
