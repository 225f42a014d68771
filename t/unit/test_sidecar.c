/*
 * Unit tests for the sidecar's aggregation, caps, expiry, escaping and
 * exposition (linked with every sidecar file but main.c).
 */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <zlib.h>

#include "aggregate.h"
#include "buf.h"
#include "compress.h"
#include "active_requests.h"
#include "config.h"
#include "expo.h"
#include "histogram.h"
#include "http.h"
#include "ingest.h"
#include "labels.h"
#include "metrics.h"
#include "settings.h"
#include "stats.h"
#include "store.h"
#include "text.h"
#include "unit.h"
#include "unit_expo.h"
#include "obs/v1/framing.h"

static config_t  cfg;

static void
setup_config(void)
{
    char   err[256];
    char  *argv[] = { "test", "--ingest", "unix:/tmp/unused.sock", NULL };

    CHECK(config_load(&cfg, 3, argv, err, sizeof(err)) == CONFIG_OK,
          "default configuration loads");
}

/* A record whose labels from_request says a request made (framing.h). */
static void
record_made(aggregator_t *a, const char *service, const char *route,
    const char *method, unsigned status, const char *tenant,
    uint64_t duration_us, time_t now, uint32_t from_request)
{
    Obs__V1__Record  r = OBS__V1__RECORD__INIT;

    r.from_request = from_request;

    r.service.data = (uint8_t *) service;
    r.service.len = strlen(service);
    r.route.data = (uint8_t *) route;
    r.route.len = strlen(route);
    r.method.data = (uint8_t *) method;
    r.method.len = strlen(method);
    r.tenant.data = (uint8_t *) tenant;
    r.tenant.len = strlen(tenant);
    r.status = status;
    r.duration_us = duration_us;
    r.response_body_bytes = 10;

    aggregator_record(a, &r, now, (double) now);
}

/* ... and one the configuration wrote, or from a sender without the flag */
static void
record(aggregator_t *a, const char *service, const char *route,
    const char *method, unsigned status, const char *tenant,
    uint64_t duration_us, time_t now)
{
    record_made(a, service, route, method, status, tenant, duration_us, now,
                0);
}

static char *
render(store_t *s, expo_format_t f)
{
    static buf_t  b;

    buf_reset(&b);
    metrics_render(s, f, &b);
    buf_append(&b, "", 1);
    return b.data;
}

/* Inflates one gzip member (zlib: not the encoder's own code) into out;
   0 when it is whole and nothing follows it. */
static int
gunzip(const buf_t *in, buf_t *out)
{
    z_stream  z;
    int       rc;

    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 16 + 15) != Z_OK) {
        return -1;
    }
    z.next_in = (Bytef *) in->data;
    z.avail_in = (uInt) in->len;
    do {
        if (buf_reserve(out, 1 << 20) != 0) {
            rc = Z_MEM_ERROR;
            break;
        }
        z.next_out = (Bytef *) out->data + out->len;
        z.avail_out = (uInt) (out->cap - out->len);
        rc = inflate(&z, Z_NO_FLUSH);
        out->len = out->cap - z.avail_out;
    } while (rc == Z_OK);
    inflateEnd(&z);
    return rc == Z_STREAM_END && z.avail_in == 0 ? 0 : -1;
}

/* The body's lines but the sidecar's own (obs_*: CPU, memory, scrapes
   change from one render to the next). */
static void
store_lines(const buf_t *body, buf_t *out)
{
    const char  *p = body->data, *end = body->data + body->len, *nl;

    for ( ; p < end; p = nl + 1) {
        nl = memchr(p, '\n', (size_t) (end - p));
        nl = nl ? nl : end - 1;
        if (strncmp(p, "obs_", 4) != 0) {
            buf_append(out, p, (size_t) (nl - p) + 1);
        }
    }
}

/* compress_gzip within its bound whatever the bytes: random (stored
   blocks), empty, repetitive; each inflates back. */
static void
test_gzip_bound(void)
{
    static const size_t  sizes[] = { 0, 1, 100, 65535, 65536, 1 << 20 };
    buf_t                in = { 0 }, z = { 0 }, back = { 0 };
    uint64_t             x = 0x9e3779b97f4a7c15ull;
    size_t               i, k;
    int                  bad = 0;

    for (k = 0; k < 2 * sizeof(sizes) / sizeof(sizes[0]); k++) {
        buf_reset(&in);
        buf_reset(&back);
        buf_reserve(&in, sizes[k / 2] + 1);
        for (i = 0; i < sizes[k / 2]; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            in.data[i] = (char) (k % 2 ? x : i % 7);
        }
        in.len = sizes[k / 2];
        buf_reset(&z);
        buf_reserve(&z, compress_gzip_bound(in.len));
        z.len = compress_gzip(in.data, in.len, z.data, z.cap);
        bad += z.len == 0 || gunzip(&z, &back) != 0 || back.len != in.len
               || (in.len && memcmp(back.data, in.data, in.len) != 0);
    }

    CHECK(bad == 0, "compress_gzip fits its bound and inflates back");
    buf_free(&in);
    buf_free(&z);
    buf_free(&back);
}

/* A gzipped scrape of many windows is one gzip member of the same text. */
static void
test_gzip_scrape(void)
{
    store_t       *s = store_new(20000);
    aggregator_t  *a = aggregator_new(s, &cfg);
    buf_t          plain = { 0 }, window = { 0 }, zipped = { 0 };
    buf_t          unzipped = { 0 }, want = { 0 }, got = { 0 };
    char           route[64], tenant[32];
    int            i, f;

    for (i = 0; i < 3000; i++) {
        snprintf(route, sizeof(route), "/api/r%d/{id}", i % 300);
        snprintf(tenant, sizeof(tenant), "t%d", i / 300);
        record(a, "backend-api", route, "GET", 200, tenant,
               1000 + (uint64_t) i * 37, 100);
    }

    for (f = EXPO_TEXT; f <= EXPO_OPENMETRICS; f++) {
        buf_reset(&plain);
        buf_reset(&zipped);
        buf_reset(&unzipped);
        buf_reset(&want);
        buf_reset(&got);
        CHECK(metrics_render(s, (expo_format_t) f, &plain) == 0, "plain");
        CHECK(metrics_render_gzip(s, (expo_format_t) f, &window, &zipped)
              == 0, "gzipped");
        CHECK(plain.len > 4 * METRICS_GZIP_WINDOW,
              "the scrape is several windows long");
        CHECK(window.drain == NULL, "the window is a plain buffer again");
        CHECK(gunzip(&zipped, &unzipped) == 0,
              "the gzip is one whole member");
        store_lines(&plain, &want);
        store_lines(&unzipped, &got);
        CHECK(want.len > 0 && got.len == want.len
              && memcmp(got.data, want.data, want.len) == 0,
              "it inflates to the plain scrape");
    }

    buf_free(&plain);
    buf_free(&window);
    buf_free(&zipped);
    buf_free(&unzipped);
    buf_free(&want);
    buf_free(&got);
    aggregator_free(a);
    store_free(s);
}

static void
test_counts(void)
{
    store_t       *s = store_new(1000);
    aggregator_t  *a = aggregator_new(s, &cfg);
    char          *text;
    int            i;

    for (i = 0; i < 7; i++) {
        record(a, "backend-api", "/users/{id}", "GET", 200, "acme", 3000,
               100);
    }
    record(a, "backend-api", "/users/{id}", "GET", 503, "acme", 1200000, 100);
    record(a, "ml-engine", "/predict", "BREW", 200, "", 20000, 100);

    text = render(s, EXPO_TEXT);

    CHECK(strstr(text, "http_server_requests_total{service=\"backend-api\","
                       "route=\"/users/{id}\",method=\"GET\",code=\"200\","
                       "tenant=\"acme\"} 7\n") != NULL, "7 successes");
    CHECK(strstr(text, "code=\"503\",tenant=\"acme\"} 1\n") != NULL,
          "1 failure");
    CHECK(strstr(text, "method=\"_OTHER\",code=\"200\",tenant=\"none\"} 1")
          != NULL, "unknown method and empty tenant are bounded");
    CHECK(strstr(text, "http_server_request_duration_seconds_bucket{"
                       "service=\"backend-api\",route=\"/users/{id}\","
                       "method=\"GET\",tenant=\"acme\",le=\"0.005\"} 7\n")
          != NULL, "7 fast requests in the 5 ms bucket");
    CHECK(strstr(text, "tenant=\"acme\",le=\"2.5\"} 8\n") != NULL,
          "cumulative buckets");
    CHECK(strstr(text, "http_server_request_duration_seconds_count{"
                       "service=\"backend-api\",route=\"/users/{id}\","
                       "method=\"GET\",tenant=\"acme\"} 8\n") != NULL,
          "count");
    CHECK(strstr(text, "http_server_request_duration_seconds_sum{"
                       "service=\"backend-api\",route=\"/users/{id}\","
                       "method=\"GET\",tenant=\"acme\"} 1.22") != NULL,
          "sum in seconds");
    CHECK(strstr(text, "http_server_response_body_bytes_total{service="
                       "\"backend-api\",route=\"/users/{id}\",tenant="
                       "\"acme\"} 80\n") != NULL, "body bytes");
    CHECK(strstr(text, "# TYPE http_server_requests_total counter\n")
          != NULL, "text TYPE line");

    aggregator_free(a);
    store_free(s);
}

/* The requests of every http_server_requests_total series of text. */
static double
requests_total(const char *text)
{
    double       sum = 0, v;
    const char  *p = text;

    while ((p = strstr(p, "\nhttp_server_requests_total{")) != NULL) {
        p = strchr(p, '}');
        if (sscanf(p + 1, " %lf", &v) == 1) {
            sum += v;
        }
    }

    return sum;
}

/* Many services, routes and tenants against a cap of 200 series. */
static void
test_series_cap_is_exact(void)
{
    config_t       small = cfg;
    store_t       *s;
    aggregator_t  *a;
    char           service[32], route[32], tenant[32];
    char          *text;
    int            i;
    uint64_t       before = obs_stats.overflow[OVERFLOW_SERIES];

    small.max_series = 200;
    small.max_services = 100000;
    small.max_routes = 100000;
    small.max_tenants = 100000;
    s = store_new(small.max_series);
    a = aggregator_new(s, &small);

    for (i = 0; i < 5000; i++) {
        snprintf(service, sizeof(service), "svc%d", i % 997);
        snprintf(route, sizeof(route), "/r%d", i);
        snprintf(tenant, sizeof(tenant), "t%d", i % 13);
        record(a, service, route, i % 2 ? "GET" : "POST", 200 + i % 7, tenant,
               1000, 100);
    }

    CHECK(store_size(s) <= 200, "max_series 200 holds exactly");
    CHECK(store_size(s) >= 190, "the cap is used, not just respected");
    CHECK(obs_stats.overflow[OVERFLOW_SERIES] > before,
          "overflow past the series cap counted");

    text = render(s, EXPO_TEXT);
    CHECK(requests_total(text) == 5000,
          "all 5000 records counted despite the cap");

    aggregator_free(a);
    store_free(s);
}

/* max_routes is per service: a flood on one leaves the others their own. */
static void
test_routes_per_service(void)
{
    config_t       small = cfg;
    store_t       *s;
    aggregator_t  *a;
    char           route[32], *text;
    int            i;
    uint64_t       before = obs_stats.overflow[OVERFLOW_SERVICE];

    small.max_routes = 3;
    small.max_services = 2;
    s = store_new(1000);
    a = aggregator_new(s, &small);

    for (i = 0; i < 50; i++) {
        snprintf(route, sizeof(route), "/flood/%d", i);
        record(a, "noisy", route, "GET", 200, "t", 1000, 100);
    }
    record(a, "quiet", "/a", "GET", 200, "t", 1000, 100);
    record(a, "quiet", "/b", "GET", 200, "t", 1000, 100);
    record(a, "third", "/a", "GET", 200, "t", 1000, 100);

    text = render(s, EXPO_TEXT);
    CHECK(strstr(text, "service=\"noisy\",route=\"__overflow__\","
                       "method=\"GET\",code=\"200\",tenant=\"t\"} 47")
          != NULL, "a flooding service keeps max_routes of its routes");
    CHECK(strstr(text, "service=\"quiet\",route=\"/a\"") != NULL
          && strstr(text, "service=\"quiet\",route=\"/b\"") != NULL,
          "another service still gets routes of its own");
    CHECK(strstr(text, "service=\"__overflow__\",route=\"__overflow__\","
                       "method=\"GET\",code=\"200\",tenant=\"t\"} 1")
          != NULL, "a service past max_services is __overflow__");
    CHECK(obs_stats.overflow[OVERFLOW_SERVICE] == before + 1,
          "service overflow counted");

    aggregator_expire(a, 100 + small.series_ttl + 1);
    record(a, "third", "/a", "GET", 200, "t", 1000, 200 + small.series_ttl);
    text = render(s, EXPO_TEXT);
    CHECK(strstr(text, "service=\"third\",route=\"/a\"") != NULL,
          "expired services free their place");

    aggregator_free(a);
    store_free(s);
}

/*
 * A set's share: values a request made take at most it, values the
 * configuration writes the whole cap, and a value both make is the
 * configuration's from then on.
 */
static void
test_dimension_share(void)
{
    dimension_t       *d = dimension_new(4);
    dimension_caps_t   caps;
    int                over = 0;

    caps = dimension_caps(4, 50);
    CHECK(caps.cap == 4 && caps.share == 2, "half of 4 is 2");
    CHECK(dimension_caps(500, 50).share == 250
          && dimension_caps(1000000000, 50).share == 500000000
          && dimension_caps(3, 50).share == 1
          && dimension_caps(1, 50).share == 1
          && dimension_caps(7, 100).share == 7,
          "shares round down, at least 1, all at 100%");

    dimension_set_caps(d, caps);
    CHECK(dimension_admit(d, "a", 1, 100, &over) != LABEL_OVERFLOW
          && dimension_admit(d, "b", 1, 100, &over) != LABEL_OVERFLOW,
          "two values made from requests fit the share");
    CHECK(dimension_admit(d, "c", 1, 100, &over) == LABEL_OVERFLOW && over,
          "a third one is past the share");
    CHECK(dimension_admit(d, "a", 1, 100, &over) != LABEL_OVERFLOW,
          "values admitted stay");

    over = 0;
    CHECK(dimension_admit(d, "x", 0, 100, &over) != LABEL_OVERFLOW
          && dimension_admit(d, "y", 0, 100, &over) != LABEL_OVERFLOW
          && !over, "the configuration's values take the rest of the cap");
    CHECK(dimension_admit(d, "z", 0, 100, &over) == LABEL_OVERFLOW && over,
          "the cap holds for them too");

    CHECK(dimension_admit(d, "a", 0, 100, &over) != LABEL_OVERFLOW
          && dimension_from_request(d) == 1 && dimension_size(d) == 4,
          "a value the configuration writes too leaves the share");

    dimension_expire(d, 101);
    CHECK(dimension_size(d) == 0 && dimension_from_request(d) == 0,
          "expired values leave the cap and the share");
    CHECK(dimension_admit(d, "c", 1, 200, &over) != LABEL_OVERFLOW,
          "and make room in the share again");

    dimension_free(d);
}

/* A store of max_series series and an aggregator of c over it. */
static aggregator_t *
fresh(store_t **s, const config_t *c)
{
    *s = store_new(c->max_series);
    return aggregator_new(*s, c);
}

/* n 404s to /api/aaa, /api/aab, ...: routes no id normalisation touches */
static void
flood_routes(aggregator_t *a, int n, uint32_t from_request)
{
    char  name[32];
    int   i;

    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "/api/%c%c%c", 'a' + i / 676,
                 'a' + i / 26 % 26, 'a' + i % 26);
        record_made(a, "backend-api", name, "GET", 404, "", 1000, 100,
                    from_request);
    }
}

/*
 * The review's attack: 520 requests to /api/aaa, /api/aab, ... under
 * obs_route_auto filled max_routes, and the configured /api/v1/users then
 * counted as __overflow__ for as long as the attacker kept refreshing.
 * Routes, services, tenants and series made from requests now take at most
 * from_request_percent of each cap; a sender without the flag keeps the
 * caps as they were.
 */
static void
test_request_share(void)
{
    config_t       small = cfg;
    store_t       *s;
    aggregator_t  *a;
    char           name[32], *text;
    int            i, made;

    test_dimension_share();

    CHECK(cfg.from_request_percent == 50, "half by default");

    small.max_routes = 500;
    a = fresh(&s, &small);

    flood_routes(a, 520, OBS_FROM_REQUEST_ROUTE);
    record(a, "backend-api", "/api/v1/users", "GET", 200, "", 1000, 100);

    text = render(s, EXPO_TEXT);
    CHECK(strstr(text, "http_server_requests_total{service=\"backend-api\","
                       "route=\"/api/v1/users\",method=\"GET\",code=\"200\","
                       "tenant=\"none\"} 1\n") != NULL,
          "a configured route has its own series after 520 made ones");
    CHECK(strstr(text, "http_server_requests_total{service=\"backend-api\","
                       "route=\"__overflow__\",method=\"GET\",code=\"404\","
                       "tenant=\"none\"} 270\n") != NULL,
          "routes made from requests take half of max_routes");
    CHECK(strstr(text, "route=\"/api/ajp\"") != NULL
          && strstr(text, "route=\"/api/ajq\"") == NULL,
          "the first 250 made routes are kept, the rest overflow");

    /* the configuration's routes may still take the other half, and more */
    for (i = 0; i < 250; i++) {
        snprintf(name, sizeof(name), "/api/v1/r%d", i);
        record(a, "backend-api", name, "GET", 200, "", 1000, 100);
    }
    text = render(s, EXPO_TEXT);
    CHECK(strstr(text, "route=\"/api/v1/r248\"") != NULL
          && strstr(text, "route=\"/api/v1/r249\"") == NULL,
          "configured routes fill max_routes, no further");

    aggregator_free(a);
    store_free(s);

    /* an older sender (no flag): every route as configured, as before */
    a = fresh(&s, &small);
    flood_routes(a, 520, 0);
    record(a, "backend-api", "/api/v1/users", "GET", 200, "", 1000, 100);
    text = render(s, EXPO_TEXT);
    CHECK(strstr(text, "route=\"/api/v1/users\"") == NULL
          && strstr(text, "route=\"__overflow__\",method=\"GET\","
                          "code=\"200\"") != NULL,
          "without the flag all routes share max_routes (documented)");
    aggregator_free(a);
    store_free(s);

    /* services made from requests (obs_service_name $host) */
    small = cfg;
    small.max_services = 4;
    a = fresh(&s, &small);
    for (i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "host%d.example", i);
        record_made(a, name, "/", "GET", 200, "", 1000, 100,
                    OBS_FROM_REQUEST_SERVICE | OBS_FROM_REQUEST_ROUTE);
    }
    record(a, "backend-api", "/users", "GET", 200, "", 1000, 100);
    record(a, "ml-engine", "/predict", "GET", 200, "", 1000, 100);
    text = render(s, EXPO_TEXT);
    CHECK(strstr(text, "service=\"host1.example\"") != NULL
          && strstr(text, "service=\"host2.example\"") == NULL,
          "services made from requests take half of max_services");
    CHECK(strstr(text, "service=\"backend-api\",route=\"/users\"") != NULL
          && strstr(text, "service=\"ml-engine\",route=\"/predict\"") != NULL,
          "configured services keep their own series");
    CHECK(strstr(text, "service=\"__overflow__\",route=\"__overflow__\","
                       "method=\"GET\",code=\"200\",tenant=\"none\"} 8\n")
          != NULL, "the others count under __overflow__");
    aggregator_free(a);
    store_free(s);

    /* tenants from a header cannot crowd out verified ones */
    small = cfg;
    small.max_tenants = 10;
    a = fresh(&s, &small);
    for (i = 0; i < 30; i++) {
        snprintf(name, sizeof(name), "forged-%d", i);
        record_made(a, "svc", "/a", "GET", 200, name, 1000, 100,
                    OBS_FROM_REQUEST_TENANT);
    }
    for (i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "verified-%d", i);
        record(a, "svc", "/a", "GET", 200, name, 1000, 100);
    }
    record_made(a, "svc", "/a", "GET", 200, "unverified", 1000, 100,
                OBS_FROM_REQUEST_TENANT);
    text = render(s, EXPO_TEXT);
    CHECK(strstr(text, "tenant=\"forged-4\"") != NULL
          && strstr(text, "tenant=\"forged-5\"") == NULL,
          "header tenants take half of max_tenants");
    CHECK(strstr(text, "route=\"/a\",method=\"GET\",code=\"200\","
                       "tenant=\"verified-4\"} 1\n") != NULL,
          "verified tenants keep their own series");
    CHECK(strstr(text, "tenant=\"__overflow__\"} 25\n") != NULL,
          "the other header tenants count under __overflow__");
    CHECK(strstr(text, "tenant=\"unverified\"} 1\n") != NULL,
          "the gateway's own tenant labels take no share");
    aggregator_free(a);
    store_free(s);

    /*
     * the series cap: 40, of which 20 for series with labels made from
     * requests: 5 records of 4 series each (requests, duration, both
     * bodies), then the service's 4 series with the rest __overflow__
     * (not made from requests: route and tenant are the gateway's)
     */
    small = cfg;
    small.max_series = 40;
    small.max_routes = 1000;
    a = fresh(&s, &small);
    for (i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "/made/%d", i);
        record_made(a, "svc", name, "GET", 200, "", 1000, 100,
                    OBS_FROM_REQUEST_ROUTE);
    }
    made = (int) store_size(s);
    CHECK(made == 24, "series made from requests take half of max_series");
    for (i = 0; i < 2; i++) {
        snprintf(name, sizeof(name), "/conf/%d", i);
        record(a, "svc", name, "GET", 200, "", 1000, 100);
    }
    text = render(s, EXPO_TEXT);
    CHECK(strstr(text, "route=\"/made/4\"") != NULL
          && strstr(text, "route=\"/made/5\"") == NULL,
          "the first made series are kept");
    CHECK(strstr(text, "http_server_requests_total{service=\"svc\","
                       "route=\"/conf/1\",method=\"GET\",code=\"200\","
                       "tenant=\"none\"} 1\n") != NULL,
          "configured labels still get series of their own");
    CHECK(store_size(s) <= 40, "max_series holds");
    CHECK(requests_total(text) == 102, "every record counted once");

    aggregator_expire(a, 100 + small.series_ttl + 1);
    CHECK(store_size(s) == 0, "all expired");
    for (i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "/again/%d", i);
        record_made(a, "svc", name, "GET", 200, "", 1000,
                    200 + small.series_ttl, OBS_FROM_REQUEST_ROUTE);
    }
    CHECK((int) store_size(s) == made,
          "expired series give their share back");

    aggregator_free(a);
    store_free(s);
}

static void
test_caps(void)
{
    config_t       small = cfg;
    store_t       *s;
    aggregator_t  *a;
    char          *text, tenant[16];
    int            i;

    small.max_tenants = 3;
    small.max_routes = 2;
    s = store_new(1000);
    a = aggregator_new(s, &small);

    for (i = 0; i < 5; i++) {
        snprintf(tenant, sizeof(tenant), "t%d", i);
        record(a, "svc", "/a", "GET", 200, tenant, 1000, 100);
    }
    record(a, "svc", "/b", "GET", 200, "t0", 1000, 100);
    record(a, "svc", "/c", "GET", 200, "t0", 1000, 100);
    record(a, "svc", "/a", "GET", 200, "", 1000, 100);
    record(a, "svc", "/a", "GET", 200, "none", 1000, 100);
    record(a, "svc", "/a", "GET", 200, "invalid", 1000, 100);
    record(a, "svc", "/a", "GET", 200, "unverified", 1000, 100);

    text = render(s, EXPO_TEXT);

    CHECK(strstr(text, "route=\"/a\",method=\"GET\",code=\"200\",tenant="
                       "\"none\"} 2") != NULL,
          "requests without a tenant stay none past the cap");
    CHECK(strstr(text, "route=\"/a\",method=\"GET\",code=\"200\",tenant="
                       "\"invalid\"} 1") != NULL,
          "invalid tenants stay invalid past the cap");
    /* obs_jwt's verdict, one of the gateway's labels (label_rules.h): it
       used to take a tenant's place under the cap, and past it hid every
       request without a valid token under __overflow__ */
    CHECK(strstr(text, "route=\"/a\",method=\"GET\",code=\"200\",tenant="
                       "\"unverified\"} 1") != NULL,
          "unverified stays unverified past the cap");

    CHECK(strstr(text, "tenant=\"t2\"} 1") != NULL, "third tenant kept");
    CHECK(strstr(text, "tenant=\"t3\"") == NULL, "fourth tenant capped");
    CHECK(strstr(text, "route=\"/a\",method=\"GET\",code=\"200\",tenant="
                       "\"__overflow__\"} 2") != NULL,
          "tenants past the cap are counted as __overflow__");
    CHECK(strstr(text, "route=\"/b\"") != NULL, "second route kept");
    CHECK(strstr(text, "route=\"__overflow__\"") != NULL,
          "third route capped");
    CHECK(strstr(text, "obs_series_overflow_total{dimension=\"tenant\"} 2")
          != NULL, "tenant overflow counted");
    CHECK(strstr(text, "obs_series_overflow_total{dimension=\"route\"} 1")
          != NULL, "route overflow counted");

    aggregator_free(a);
    store_free(s);

    /* the total series cap */
    small = cfg;
    small.max_series = 6;
    s = store_new(small.max_series);
    a = aggregator_new(s, &small);

    for (i = 0; i < 10; i++) {
        snprintf(tenant, sizeof(tenant), "t%d", i);
        record(a, "svc", "/a", "GET", 200, tenant, 1000, 100);
    }

    text = render(s, EXPO_TEXT);
    CHECK(store_size(s) <= 6, "the series cap holds exactly");
    CHECK(strstr(text, "{service=\"__overflow__\",route=\"__overflow__\","
                       "method=\"__overflow__\",code=\"__overflow__\","
                       "tenant=\"__overflow__\"} 10") != NULL,
          "records past the series cap still count");

    aggregator_free(a);
    store_free(s);

    test_series_cap_is_exact();
    test_routes_per_service();
    test_request_share();
}

static void
test_expiry(void)
{
    store_t       *s = store_new(1000);
    aggregator_t  *a = aggregator_new(s, &cfg);
    char          *text;

    record(a, "svc", "/old", "GET", 200, "t", 1000, 100);
    record(a, "svc", "/new", "GET", 200, "t", 1000, 100 + cfg.series_ttl);

    aggregator_expire(a, 100 + cfg.series_ttl + 1);
    text = render(s, EXPO_TEXT);

    CHECK(strstr(text, "route=\"/old\"") == NULL, "idle series expired");
    CHECK(strstr(text, "route=\"/new\"") != NULL, "fresh series kept");

    aggregator_free(a);
    store_free(s);
}

/* buf_double's first form: every precision from 1 up, the first that reads
   back (kept here as the oracle of the faster one). */
static void
double_oracle(char *out, size_t size, double v)
{
    int  precision;

    for (precision = 1; precision <= 17; precision++) {
        snprintf(out, size, "%.*g", precision, v);
        if (strtod(out, NULL) == v) {
            return;
        }
    }
}

/* One double through buf_double against the oracle; 1 if they agree. */
static int
double_agrees(double v)
{
    buf_t  b = { 0 };
    char   want[32];
    int    ok;

    buf_double(&b, v);
    buf_append(&b, "", 1);
    if (b.data == NULL) {
        return 0;
    }

    if (isnan(v) || isinf(v)
        || (fabs(v) < 1e15 && v == (double) (long long) v))
    {
        ok = strtod(b.data, NULL) == v || (isnan(v) && isnan(strtod(b.data,
                                                                 NULL)));
    } else {
        double_oracle(want, sizeof(want), v);
        ok = strcmp(b.data, want) == 0 && strtod(b.data, NULL) == v;
        if (!ok) {
            fprintf(stderr, "buf_double(%.17g): \"%s\", want \"%s\"\n", v,
                    b.data, want);
        }
    }

    buf_free(&b);
    return ok;
}

static void
test_double_format(void)
{
    static const double  fixed[] = {
        0.1, 0.3, 1.5, -2.25, 1e-5, 1.5e-7, 0.0001, 0.00012345, 123456.5,
        1e15, 1.5e15, 2e15, 1234567890123456.0, 9007199254740993.0, 1e16,
        1e20, 1.5e300, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
        0.1 + 0.2, 999999999999999.9, 99999999999999.98, 0.005, 0.075, 2.5,
        7.5, -0.0, 1.0 / 3, 2.0 / 3
    };
    uint64_t  x = 0x9e3779b97f4a7c15ull, bits;
    double    v, sum = 0;
    int       i, bad = 0, n = 0;
    char      dec[40];

    for (i = 0; i < (int) (sizeof(fixed) / sizeof(fixed[0])); i++, n++) {
        bad += !double_agrees(fixed[i]);
    }

    for (i = 0; i < 60000; i++, n += 4) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;

        /* any bit pattern that is a finite double */
        bits = x;
        memcpy(&v, &bits, sizeof(v));
        bad += !double_agrees(v);

        /* short decimals, as configured bounds and durations are */
        snprintf(dec, sizeof(dec), "%llue%d",
                 (unsigned long long) (x >> 20) % 10000000ull,
                 (int) (x % 40) - 25);
        bad += !double_agrees(strtod(dec, NULL));

        /* sums of microsecond durations in seconds, as histograms keep */
        sum += (double) (x % 400000) / 1e6;
        bad += !double_agrees(sum) + !double_agrees(-sum * 1e3);

        /* whole microseconds in seconds (buf_double's fast path), at every
           magnitude it takes and past its edges */
        v = (double) (x % 1000000000000000ull) / 1e6;
        bad += !double_agrees(v) + !double_agrees(-v);
        v = (double) (x % 1000000ull) / 1e6;
        bad += !double_agrees(v) + !double_agrees(v * 1e3 + 1e-6);
        n += 4;
    }

    for (i = -3; i <= 3; i++, n += 4) {
        bad += !double_agrees(1e-4 + i * 1e-6) + !double_agrees(1e9 + i * 1e-6)
               + !double_agrees(999999999.999999 + i * 1e-6)
               + !double_agrees(nextafter(1e-4 + i * 1e-6, 1));
    }

    CHECK(bad == 0, "buf_double is the shortest round-trip text");
    printf("buf_double: %d doubles, %d differ\n", n, bad);
}

/* buf_millis against printf's "%.3f": timestamps of today, ties and
   their neighbours, and values past its integer path. */
static int
millis_agrees(double v)
{
    buf_t  b = { 0 };
    char   want[64];
    int    ok;

    buf_millis(&b, v);
    buf_append(&b, "", 1);
    snprintf(want, sizeof(want), "%.3f", v);
    ok = b.data && strcmp(b.data, want) == 0;
    if (!ok) {
        fprintf(stderr, "buf_millis(%.17g): \"%s\", want \"%s\"\n", v,
                b.data ? b.data : "(null)", want);
    }
    buf_free(&b);
    return ok;
}

static void
test_millis_format(void)
{
    uint64_t  x = 0x2545f4914f6cdd1dull;
    double    v;
    int       i, bad = 0, n = 0;

    for (i = 0; i < 200000; i++, n += 4) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v = 1.7e9 + (double) (x % 400000000000ull) / 1e3;
        bad += !millis_agrees(v) + !millis_agrees(v + 5e-4)
               + !millis_agrees(nextafter(v + 5e-4, 0))
               + !millis_agrees((double) (x % 100000000ull) / 1e6);
    }

    bad += !millis_agrees(0) + !millis_agrees(-1.5) + !millis_agrees(4e9)
           + !millis_agrees(1e20) + !millis_agrees(0.0005) + !millis_agrees(2.0005);
    CHECK(bad == 0, "buf_millis writes what %.3f writes");
    printf("buf_millis: %d timestamps, %d differ\n", n + 6, bad);
}

/* label_sanitize's first form, all through text_utf8 (the oracle of its
   printable-ASCII fast path). */
static size_t
sanitize_oracle(const uint8_t *raw, size_t len, char *out)
{
    size_t  n = text_utf8(raw, len, out, LABEL_MAX_LEN + 1), i;

    for (i = 0; i < n; i++) {
        if (((unsigned char) out[i] < 0x20 && out[i] != '\n')
            || out[i] == 0x7f)
        {
            out[i] = '?';
        }
    }
    return n;
}

static void
test_sanitize_fast_path(void)
{
    static const uint8_t  pick[] = { 'a', 'Z', '/', ' ', '~', 0x7f, 0x1f,
                                     0x20, '\n', '\0', 0x80, 0xc3, 0xa9,
                                     0xff, '"', '\\' };
    uint8_t   raw[300];
    char      got[LABEL_BUF_LEN], want[LABEL_BUF_LEN];
    uint64_t  x = 0x2545f4914f6cdd1dull;
    size_t    len, i, n, m;
    int       bad = 0, c, printable, fast = 0;

    for (c = 0; c < 256; c++) {
        raw[0] = (uint8_t) c;
        for (len = 1; len <= 17; len++) {
            memset(raw + 1, 'x', len - 1);
            raw[len - 1] = (uint8_t) c;
            printable = 1;
            for (i = 0; i < len; i++) {
                printable &= raw[i] >= 0x20 && raw[i] < 0x7f;
            }
            bad += text_printable(raw, len) != printable;
        }
    }
    CHECK(bad == 0, "text_printable: every byte at either end of 1-17");

    for (i = 0; i < 50000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        len = x % 270;
        for (n = 0; n < len; n++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            /* mostly printable, now and then one byte of the edges */
            raw[n] = x % 64 ? (uint8_t) (0x20 + x % 95)
                            : pick[(x >> 8) % sizeof(pick)];
        }
        fast += len <= LABEL_MAX_LEN && text_printable(raw, len);
        n = label_sanitize(raw, len, got);
        m = sanitize_oracle(raw, len, want);
        bad += n != m || memcmp(got, want, n + 1) != 0;
    }
    CHECK(bad == 0, "label_sanitize's fast path gives what the slow one does");
    CHECK(fast > 1000 && fast < 49000, "both paths taken");
    CHECK(label_sanitize(NULL, 0, got) == 0 && got[0] == '\0',
          "an empty value");
}

static void
test_escaping(void)
{
    store_t       *s = store_new(1000);
    aggregator_t  *a = aggregator_new(s, &cfg);
    char          *text, out[LABEL_BUF_LEN];

    record(a, "svc", "/q\"b\\s\nn", "GET", 200, "t", 1000, 100);
    record(a, "svc", "/bad\xff\xfe", "GET", 200, "t", 1000, 100);

    text = render(s, EXPO_TEXT);
    CHECK(strstr(text, "route=\"/q\\\"b\\\\s\\nn\"") != NULL,
          "quote, backslash and newline escaped");
    CHECK(strstr(text, "route=\"/bad\xef\xbf\xbd\xef\xbf\xbd\"") != NULL,
          "invalid UTF-8 replaced");

    text = render(s, EXPO_OPENMETRICS);
    CHECK(strstr(text, "route=\"/q\\\"b\\\\s\\nn\"") != NULL,
          "OpenMetrics escapes the same way");
    CHECK(strlen(text) > 6 && strcmp(text + strlen(text) - 6, "# EOF\n") == 0,
          "OpenMetrics ends with # EOF");
    CHECK(strstr(text, "# TYPE http_server_requests counter\n") != NULL,
          "OpenMetrics counter family has no _total");
    CHECK(strstr(text, "le=\"1.0\"") != NULL, "canonical le values");

    CHECK(label_sanitize((const uint8_t *) "a\0b", 3, out) == 5
          && memcmp(out, "a\xef\xbf\xbd" "b", 5) == 0, "NUL replaced");
    CHECK(label_sanitize((const uint8_t *) "\xe2\x82\xac", 3, out) == 3,
          "valid UTF-8 kept");
    CHECK(label_sanitize((const uint8_t *) "\xc0\xaf", 2, out) == 6,
          "overlong encoding replaced");

    aggregator_free(a);
    store_free(s);
}

static void
test_histogram(void)
{
    static const double  bounds[] = { 0.1, 1 };
    histogram_t         *h = histogram_new(bounds, 2);
    uint8_t              trace[16] = { 1 }, span[8] = { 2 };

    CHECK(histogram_native_index(1.0) == 0, "2^0 is the top of bucket 0");
    CHECK(histogram_native_index(2.0) == 8, "2^1 is the top of bucket 8");
    CHECK(histogram_native_index(1.05) == 1, "just above 1 is bucket 1");
    CHECK(histogram_native_index(0.5) == -8, "2^-1 is the top of bucket -8");
    CHECK(histogram_native_upper(8) == 2.0, "upper bound of bucket 8");
    CHECK(histogram_native_upper(-8) == 0.5, "upper bound of bucket -8");

    histogram_observe(h, 0.05, NULL, NULL, 1);
    histogram_observe(h, 0.5, trace, span, 2);
    histogram_observe(h, 5, NULL, NULL, 3);
    histogram_observe(h, 0, NULL, NULL, 4);

    CHECK(h->count == 4 && h->buckets[0] == 2 && h->buckets[1] == 1
          && h->buckets[2] == 1, "classic buckets");
    CHECK(h->zero_count == 1, "zero bucket");
    CHECK(h->exemplars && h->exemplars[1].value == 0.5
          && h->exemplars[1].span_id[0] == 2, "exemplar on its bucket");

    {
        uint64_t  total = h->zero_count;
        uint32_t  i;

        for (i = 0; i < h->native_len; i++) {
            total += h->native[i];
        }
        CHECK(total == h->count, "native buckets hold every observation");
    }

    histogram_free(h);
}

static void
test_negotiation(void)
{
    CHECK(expo_negotiate(NULL) == EXPO_TEXT, "no Accept: text");
    CHECK(expo_negotiate("text/plain;version=0.0.4") == EXPO_TEXT, "text");
    CHECK(expo_negotiate("application/openmetrics-text;version=1.0.0,"
                         "application/openmetrics-text;version=0.0.1;"
                         "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
          == EXPO_OPENMETRICS, "Prometheus' default Accept");
    CHECK(expo_negotiate("application/vnd.google.protobuf;"
                         "proto=io.prometheus.client.MetricFamily;"
                         "encoding=delimited;q=0.7,text/plain;"
                         "version=0.0.4;q=0.3") == EXPO_PROTOBUF,
          "native-histograms Accept");
    CHECK(expo_negotiate("application/json") == EXPO_TEXT,
          "unknown: text");
}

static int
load_json(config_t *c, const char *json, char *err, size_t errlen)
{
    FILE  *f;
    char  *argv[] = { "t", "--config", "/tmp/obs-test-config.json",
                      "--ingest", "unix:/tmp/unused.sock", NULL };
    int    rc;

    f = fopen("/tmp/obs-test-config.json", "w");
    fputs(json, f);
    fclose(f);
    rc = config_load(c, 5, argv, err, errlen);
    config_free(c);
    remove("/tmp/obs-test-config.json");
    return rc;
}

static void
test_config_types_and_paths(void)
{
    config_t   c;
    char       err[512];
    char       long_path[160];
    char      *argv[] = { "t", "--ingest", long_path, NULL };

    CHECK(load_json(&c, "{\"loki\": {\"tenant_header\": 5}}", err,
                    sizeof(err)) == CONFIG_ERROR
          && strstr(err, "loki.tenant_header") != NULL,
          "a wrong type is an error naming the key");

    CHECK(load_json(&c, "{\"auth\": {\"bearer_token_file\": \"/tmp\"}}",
                    err, sizeof(err)) == CONFIG_ERROR
          && strstr(err, "is a directory") != NULL,
          "a directory as token file says so");

    CHECK(load_json(&c, "{\"logs_file\": \"/nonexistent-dir/x.log\"}", err,
                    sizeof(err)) == CONFIG_ERROR
          && strstr(err, "logs_file") != NULL
          && strstr(err, "does not exist") != NULL,
          "a log file in a missing directory is refused");

    CHECK(load_json(&c, "{\"ingest_group\": 7}", err, sizeof(err))
          == CONFIG_ERROR && strstr(err, "ingest_group") != NULL,
          "ingest_group must be a string");

    CHECK(load_json(&c, "{\"max_services\": 0}", err, sizeof(err))
          == CONFIG_ERROR && strstr(err, "max_services") != NULL,
          "max_services must be positive");

    snprintf(long_path, sizeof(long_path), "unix:/tmp/%0120d", 0);
    CHECK(config_load(&c, 3, argv, err, sizeof(err)) == CONFIG_ERROR
          && strstr(err, "longer than") != NULL,
          "a unix path over 107 bytes is refused");
    config_free(&c);

    snprintf(long_path, sizeof(long_path), "udp:9999");
    CHECK(config_load(&c, 3, argv, err, sizeof(err)) == CONFIG_OK,
          "udp:PORT is a valid address");
    CHECK(ingest_check(&c, err, sizeof(err)) == 0, "udp:PORT resolves");
    config_free(&c);

    snprintf(long_path, sizeof(long_path), "udp:host:");
    CHECK(config_load(&c, 3, argv, err, sizeof(err)) == CONFIG_ERROR,
          "udp without a port is refused");
    config_free(&c);
}

/* Loads json as --config and keeps the result in c (config_free it). */
static int
load_json_keep(config_t *c, const char *json, char *err, size_t errlen)
{
    static char  *argv[] = { "t", "--config", "/tmp/obs-test-config.json",
                             "--ingest", "unix:/tmp/unused.sock", NULL };
    FILE         *f;
    int           rc;

    f = fopen("/tmp/obs-test-config.json", "w");
    fputs(json, f);
    fclose(f);
    rc = config_load(c, 5, argv, err, errlen);
    remove("/tmp/obs-test-config.json");
    return rc;
}

/* Every key a sink accepts takes effect; the others, and URLs that are not
   http(s), are refused by name. */
static void
test_config_sink_keys(void)
{
    static const char *const  refused[][2] = {
        { "{\"loki\": {\"slow_ms\": 5}}", "loki.slow_ms" },
        { "{\"loki\": {\"batch_spans\": 5}}", "loki.batch_spans" },
        { "{\"loki\": {\"compression\": \"gzip\"}}", "loki.compression" },
        { "{\"otlp\": {\"tenant_header\": \"fixed\"}}",
          "otlp.tenant_header" },
        { "{\"otlp\": {\"org_id\": \"a\"}}", "otlp.org_id" },
        { "{\"otlp\": {\"format\": \"json\"}}", "otlp.format" },
        { "{\"loki\": {\"org_id\": \"a\"}}", "loki.org_id" },
        /* receivers' URLs are http(s) with a host */
        { "{\"loki\": {\"url\": \"htp://x\"}}", "loki.url" },
        { "{\"otlp\": {\"endpoint\": \"ftp://x\"}}", "otlp.endpoint" },
        { "{\"remote_write\": {\"url\": \"localhost:9090\"}}",
          "remote_write.url" },
        { "{\"clickhouse\": {\"url\": \"http://\"}}", "clickhouse.url" },
    };

    config_t  c;
    char      err[512];
    size_t    i;

    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        err[0] = '\0';
        CHECK(load_json_keep(&c, refused[i][0], err, sizeof(err))
              == CONFIG_ERROR && strstr(err, refused[i][1]) != NULL,
              refused[i][1]);
        config_free(&c);
    }

    CHECK(load_json_keep(&c, "{\"loki\": {\"headers\": {\"X-A\": \"b\"}}}",
                         err, sizeof(err)) == CONFIG_OK
          && c.exporter.loki.n_headers == 1
          && strcmp(c.exporter.loki.headers[0], "X-A: b") == 0,
          "loki.headers reaches the Loki sink");
    config_free(&c);
}

/* An https URL in capitals is one; a missing file has no line number; an
   OTEL_EXPORTER_OTLP_HEADERS key of any length fits. */
static void
test_config_inputs(void)
{
    config_t   c;
    char       err[512], *key, *env;
    char      *missing[] = { "t", "--config", "/nonexistent/obs.json", NULL };
    size_t     i;

    CHECK(load_json_keep(&c, "{\"loki\": {\"url\": \"HTTPS://l:3100/p\"}}",
                         err, sizeof(err)) == CONFIG_OK, "https URL taken");
    config_free(&c);

    CHECK(config_load(&c, 3, missing, err, sizeof(err)) == CONFIG_ERROR
          && strstr(err, "line -1") == NULL
          && strstr(err, "/nonexistent/obs.json") != NULL,
          "a missing config file is named without a line");
    config_free(&c);

    key = malloc(2001);
    env = malloc(2100);
    for (i = 1022; i <= 2000; i += 978) {   /* one byte past 1 KiB; 2000 */
        memset(key, 'k', i);
        key[i] = '\0';
        snprintf(env, 2100, "%s=v%%41lue", key);
        setenv("OTEL_EXPORTER_OTLP_HEADERS", env, 1);
        CHECK(load_json_keep(&c, "{}", err, sizeof(err)) == CONFIG_OK
              && c.exporter.otlp.n_headers == 1
              && strlen(c.exporter.otlp.headers[0]) == i + 2 + 5
              && strcmp(c.exporter.otlp.headers[0] + i, ": vAlue") == 0,
              "a long OTEL_EXPORTER_OTLP_HEADERS key is kept whole");
        config_free(&c);
    }
    unsetenv("OTEL_EXPORTER_OTLP_HEADERS");
    free(key);
    free(env);
}

/* A number from the environment or a flag is the whole text: blanks before
   it are refused as those after it are, and so are hex, 1e309, nan. */
static void
test_config_number_text(void)
{
    static const char *const  refused[] = {
        " 5", "5 ", "\t5", "\n5", "0x4", "1e309", "nan", "4.0", "",
    };

    config_t  c;
    char      err[512];
    size_t    i;

    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        setenv("OBS_SIDECAR_EXPORTER_THREADS", refused[i], 1);
        err[0] = '\0';
        CHECK(load_json_keep(&c, "{}", err, sizeof(err))
              == (refused[i][0] ? CONFIG_ERROR : CONFIG_OK)
              && (refused[i][0] == '\0'
                  || strstr(err, "OBS_SIDECAR_EXPORTER_THREADS") != NULL),
              refused[i]);
        config_free(&c);
    }

    setenv("OBS_SIDECAR_EXPORTER_THREADS", "+5", 1);
    CHECK(load_json_keep(&c, "{}", err, sizeof(err)) == CONFIG_OK
          && c.exporter.threads == 5, "+5 is 5");
    config_free(&c);
    unsetenv("OBS_SIDECAR_EXPORTER_THREADS");
}

/* A secret file is a regular file: a FIFO would block start-up in open()
   until a writer came, a device would give a key nobody has. */
static void test_config_key_bounds(void);

static void
test_config_secret_files(void)
{
    config_t  c;
    char      err[512], json[128], fifo[64];

    snprintf(fifo, sizeof(fifo), "/tmp/obs-test-fifo-%d", (int) getpid());
    unlink(fifo);
    CHECK(mkfifo(fifo, 0600) == 0, "a FIFO to test with");

    snprintf(json, sizeof(json),
             "{\"auth\": {\"bearer_token_file\": \"%s\"}}", fifo);
    CHECK(load_json_keep(&c, json, err, sizeof(err)) == CONFIG_ERROR
          && strstr(err, "not a regular file") != NULL,
          "a FIFO as token file is refused at once");
    config_free(&c);

    setenv("OBS_SIDECAR_INGEST_KEY_FILE", "/dev/urandom", 1);
    CHECK(load_json_keep(&c, "{}", err, sizeof(err)) == CONFIG_ERROR
          && strstr(err, "not a regular file") != NULL,
          "a device as key file is refused");
    config_free(&c);
    unsetenv("OBS_SIDECAR_INGEST_KEY_FILE");
    unlink(fifo);

    test_config_key_bounds();
}

/* Writes len bytes of text to a key file and loads it as ingest_key_file. */
static int
load_key(config_t *c, const char *text, size_t len, char *err,
    size_t errlen)
{
    FILE  *f;
    int    rc;

    f = fopen("/tmp/obs-test-ingest.key", "w");
    fwrite(text, 1, len, f);
    fclose(f);
    setenv("OBS_SIDECAR_INGEST_KEY_FILE", "/tmp/obs-test-ingest.key", 1);
    rc = load_json_keep(c, "{}", err, errlen);
    unsetenv("OBS_SIDECAR_INGEST_KEY_FILE");
    remove("/tmp/obs-test-ingest.key");
    return rc;
}

/*
 * The key's rule is the module's (obs/v1/framing.h): OBS_KEY_MIN to
 * OBS_KEY_MAX bytes on the first line, no NUL.  A NUL byte used to cut the
 * sidecar's key short while nginx kept every byte: every tag then failed.
 */
static void
test_config_key_bounds(void)
{
    config_t  c;
    char      err[512], key[OBS_KEY_MAX + 2];

    memset(key, 'k', sizeof(key));
    key[OBS_KEY_MAX + 1] = '\n';

    CHECK(load_key(&c, key, OBS_KEY_MIN, err, sizeof(err)) == CONFIG_OK
          && strlen(c.ingest_key) == OBS_KEY_MIN, "the shortest key");
    config_free(&c);
    CHECK(load_key(&c, key, OBS_KEY_MIN - 1, err, sizeof(err))
          == CONFIG_ERROR, "one byte shorter is refused");
    config_free(&c);
    CHECK(load_key(&c, key, OBS_KEY_MAX, err, sizeof(err)) == CONFIG_OK,
          "the longest key");
    config_free(&c);
    CHECK(load_key(&c, key, OBS_KEY_MAX + 1, err, sizeof(err))
          == CONFIG_ERROR, "one byte longer is refused");
    config_free(&c);

    memcpy(key, "0123456789abcdef\0tail\n", 22);
    CHECK(load_key(&c, key, 22, err, sizeof(err)) == CONFIG_ERROR
          && strstr(err, "NUL") != NULL,
          "a NUL byte in the key is refused, not cut at");
    config_free(&c);
}

/* OBS_SIDECAR_INGEST is a comma-separated list: an empty entry is an error,
   never a silent "use the default socket". */
static void
test_config_ingest_list(void)
{
    static const char *const  refused[] = {
        ",", "unix:/tmp/a.sock,", ",unix:/tmp/a.sock",
        "unix:/tmp/a.sock,,udp:127.0.0.1:9",
    };

    config_t  c;
    char      err[512];
    size_t    i;

    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        setenv("OBS_SIDECAR_INGEST", refused[i], 1);
        err[0] = '\0';
        CHECK(load_json_keep(&c, "{}", err, sizeof(err)) == CONFIG_ERROR
              && strstr(err, "OBS_SIDECAR_INGEST") != NULL
              && strstr(err, "empty address") != NULL, refused[i]);
        config_free(&c);
    }

    setenv("OBS_SIDECAR_INGEST", "unix:/tmp/a.sock,udp:127.0.0.1:9", 1);
    CHECK(load_json_keep(&c, "{}", err, sizeof(err)) == CONFIG_OK,
          "a list of two is read (the --ingest flag then wins)");
    config_free(&c);
    unsetenv("OBS_SIDECAR_INGEST");
}

/* One table serves file, environment and flags: flags beat the environment,
   which beats the file, for every setting alike. */
static void
test_config_layers(void)
{
    static char  *flags[] = { "t", "--config", "/tmp/obs-test-config.json",
                              "--ingest", "unix:/tmp/unused.sock",
                              "--listen", "127.0.0.1:3", "--no-traces",
                              "--exporter-threads", "4", NULL };
    config_t      c;
    char          err[512];
    FILE         *f;

    f = fopen("/tmp/obs-test-config.json", "w");
    fputs("{\"listen\": \"127.0.0.1:1\", \"logs\": true, \"traces\": true,"
          " \"exporter_threads\": 2, \"loki\": {\"format\": \"json\"}}", f);
    fclose(f);
    setenv("OBS_SIDECAR_LISTEN", "127.0.0.1:2", 1);
    setenv("OBS_SIDECAR_LOGS", "off", 1);
    setenv("OBS_SIDECAR_EXPORTER_THREADS", "3", 1);

    CHECK(config_load(&c, 5, flags, err, sizeof(err)) == CONFIG_OK
          && strcmp(c.listen, "127.0.0.1:2") == 0 && c.exporter.logs == 0
          && c.exporter.traces == 1 && c.exporter.threads == 3
          && c.exporter.loki_json == 1,
          "the environment beats the file");
    config_free(&c);

    CHECK(config_load(&c, 10, flags, err, sizeof(err)) == CONFIG_OK
          && strcmp(c.listen, "127.0.0.1:3") == 0 && c.exporter.traces == 0
          && c.exporter.threads == 4,
          "flags beat the environment");
    config_free(&c);

    setenv("OBS_SIDECAR_EXPORTER_THREADS", "17", 1);
    CHECK(config_load(&c, 5, flags, err, sizeof(err)) == CONFIG_ERROR
          && strstr(err, "OBS_SIDECAR_EXPORTER_THREADS") != NULL,
          "a bad variable is named");
    config_free(&c);

    unsetenv("OBS_SIDECAR_LISTEN");
    unsetenv("OBS_SIDECAR_LOGS");
    unsetenv("OBS_SIDECAR_EXPORTER_THREADS");
    remove("/tmp/obs-test-config.json");
}

/* SIGHUP: the same layers again; addresses stay and are named. */
static void
test_config_reload(void)
{
    static char  *argv[] = { "t", "--config", "/tmp/obs-test-reload.json",
                             "--ingest", "unix:/tmp/unused.sock", NULL };
    config_t      c;
    char          err[512], restart[512], changed[512];
    FILE         *f;

    f = fopen("/tmp/obs-test-reload.json", "w");
    fputs("{\"listen\": \"127.0.0.1:1\", \"loki\": {\"url\": "
          "\"http://l:1/p\"}}", f);
    fclose(f);
    CHECK(config_load(&c, 5, argv, err, sizeof(err)) == CONFIG_OK,
          "reload: first load");

    f = fopen("/tmp/obs-test-reload.json", "w");
    fputs("{\"listen\": \"127.0.0.1:2\", \"max_tenants\": 5, "
          "\"loki\": {\"url\": \"http://l:2/p\"}}", f);
    fclose(f);
    CHECK(config_reload(&c, changed, sizeof(changed), restart,
                        sizeof(restart), err, sizeof(err)) == 0
          && c.max_tenants == 5 && strcmp(c.listen, "127.0.0.1:1") == 0
          && strncmp(restart, " listen loki.url: ", 18) == 0,
          "reload: settings apply, a new listen is named and not taken");
    CHECK(strstr(changed, " listen") && strstr(changed, " max_tenants")
          && strstr(changed, " loki.url") && !strstr(changed, "ingest"),
          "reload: every setting that changed is named");

    f = fopen("/tmp/obs-test-reload.json", "w");
    fputs("{\"max_tenants\": 0}", f);
    fclose(f);
    CHECK(config_reload(&c, changed, sizeof(changed), restart,
                        sizeof(restart), err, sizeof(err)) != 0
          && c.max_tenants == 5, "reload: a bad file changes nothing");

    config_free(&c);
    remove("/tmp/obs-test-reload.json");
}

static void
test_config_errors(void)
{
    config_t   c;
    char       err[256];
    char      *bad_listen[] = { "t", "--listen", "nohost", NULL };
    char      *bad_ingest[] = { "t", "--ingest", "unix:relative", NULL };
    FILE      *f;

    CHECK(config_load(&c, 3, bad_listen, err, sizeof(err)) == CONFIG_ERROR
          && strstr(err, "listen") != NULL, "bad --listen named");
    config_free(&c);

    CHECK(config_load(&c, 3, bad_ingest, err, sizeof(err)) == CONFIG_ERROR
          && strstr(err, "ingest") != NULL, "relative unix path named");
    config_free(&c);

    f = fopen("/tmp/obs-test-config.json", "w");
    fputs("{\"duration_buckets\": [0.5, 0.1]}", f);
    fclose(f);
    {
        char  *argv[] = { "t", "--config", "/tmp/obs-test-config.json",
                          NULL };
        CHECK(config_load(&c, 3, argv, err, sizeof(err)) == CONFIG_ERROR
              && strstr(err, "duration_buckets") != NULL,
              "unordered buckets named");
        config_free(&c);

        /* each slot of the exporters' ring holds up to 64 KiB */
        f = fopen("/tmp/obs-test-config.json", "w");
        fputs("{\"exporter_queue_datagrams\": 4294967297}", f);
        fclose(f);
        CHECK(config_load(&c, 3, argv, err, sizeof(err)) == CONFIG_ERROR
              && strstr(err, "exporter_queue_datagrams") != NULL,
              "an unbounded exporter ring is refused, by name");
        config_free(&c);
    }
    remove("/tmp/obs-test-config.json");

    test_config_types_and_paths();
    test_config_sink_keys();
    test_config_inputs();
    test_config_number_text();
    test_config_secret_files();
    test_config_ingest_list();
    test_config_layers();
    test_config_reload();
}

/*
 * A 14-byte batch that claims 0xffffffff records and carries no column
 * once made ingest loop four billion times: it is malformed, and counts
 * nothing.
 */
static void
test_count_without_columns(void)
{
    Obs__V1__Batch          batch = OBS__V1__BATCH__INIT;
    Obs__V1__BatchHeader    h = OBS__V1__BATCH_HEADER__INIT;
    Obs__V1__RecordColumns  c = OBS__V1__RECORD_COLUMNS__INIT;
    store_t                *s = store_new(1000);
    aggregator_t           *a = aggregator_new(s, &cfg);
    ingest_t               *in;
    uint8_t                 wire[64];
    size_t                  len;
    uint64_t                received, malformed;
    char                    err[256];

    in = ingest_open(&cfg, a, err, sizeof(err));
    CHECK(in != NULL, "ingest opens");

    h.schema_version = 2;
    c.count = 0xffffffff;
    batch.header = &h;
    batch.columns = &c;
    len = obs__v1__batch__pack(&batch, wire);
    CHECK(len <= 16, "the hostile batch is tiny");

    received = obs_stats.records_received;
    malformed = obs_stats.decode_errors[DECODE_MALFORMED];
    ingest_datagram(in, wire, len);

    CHECK(obs_stats.records_received == received,
          "no record is counted for a count the columns do not carry");
    CHECK(obs_stats.decode_errors[DECODE_MALFORMED] == malformed + 1,
          "the batch is counted malformed");

    ingest_close(in);
    aggregator_free(a);
    store_free(s);
}

/*
 * The module's JWT counts are deltas since its last send: each datagram's
 * are added, and /metrics shows them as obs_jwt_tokens_total{result}.
 */
static void
test_jwt_counts(void)
{
    Obs__V1__Batch        batch = OBS__V1__BATCH__INIT;
    Obs__V1__BatchHeader  h = OBS__V1__BATCH_HEADER__INIT;
    store_t              *s = store_new(1000);
    aggregator_t         *a = aggregator_new(s, &cfg);
    ingest_t             *in;
    uint8_t               wire[256];
    size_t                len;
    char                  err[256], *text;

    in = ingest_open(&cfg, a, err, sizeof(err));
    CHECK(in != NULL, "ingest opens");

    h.schema_version = 2;
    h.jwt_valid = 5;
    h.jwt_expired = 2;
    h.jwt_missing_claim = 1;
    h.jwt_cache_hits = 4;
    batch.header = &h;
    len = obs__v1__batch__pack(&batch, wire);

    ingest_datagram(in, wire, len);
    h.sequence = 1;
    h.jwt_valid = 1;
    h.jwt_expired = 0;
    h.jwt_cache_hits = 0;
    len = obs__v1__batch__pack(&batch, wire);
    ingest_datagram(in, wire, len);

    text = render(s, EXPO_TEXT);
    CHECK(strstr(text, "obs_jwt_tokens_total{result=\"valid\"} 6\n") != NULL,
          "valid tokens of both datagrams are added");
    CHECK(strstr(text, "obs_jwt_tokens_total{result=\"expired\"} 2\n") != NULL,
          "expired tokens are counted");
    CHECK(strstr(text, "obs_jwt_tokens_total{result=\"missing_claim\"} 2\n")
          != NULL, "a repeated delta is added again");
    CHECK(strstr(text, "obs_jwt_tokens_total{result=\"bad_signature\"} 0\n")
          != NULL, "every result is shown, zero or not");
    CHECK(strstr(text, "obs_jwt_cache_hits_total 4\n") != NULL,
          "cache hits are counted");

    ingest_close(in);
    aggregator_free(a);
    store_free(s);
}

static void
test_accept_encoding(void)
{
    CHECK(http_accepts_gzip("gzip"), "gzip");
    CHECK(http_accepts_gzip("deflate, GZIP;q=0.5"), "gzip with q 0.5");
    CHECK(!http_accepts_gzip("gzip;q=0"), "gzip;q=0 refuses gzip");
    CHECK(!http_accepts_gzip("gzip ; q=0.000, identity"),
          "q=0.000 with spaces refuses gzip");
    CHECK(!http_accepts_gzip("*;q=0"), "*;q=0");
    CHECK(http_accepts_gzip("br, *"), "* admits gzip");
    CHECK(!http_accepts_gzip("gzip;q=0, *"), "a named gzip;q=0 beats *");
    CHECK(!http_accepts_gzip("identity, gzipx"), "gzipx is not gzip");
    CHECK(!http_accepts_gzip("notgzip"), "no substring match");
    CHECK(http_accepts_gzip("x-gzip;level=1;q=1"), "x-gzip, other params");
    CHECK(!http_accepts_gzip(NULL), "no header: no gzip");
    CHECK(!http_accepts_gzip(""), "empty header: no gzip");
}

/* A unix path is replaced only when it is a stale socket. */
static void
test_ingest_paths(void)
{
    config_t            c;
    struct sockaddr_un  sun;
    store_t            *s = store_new(1000);
    aggregator_t       *a = aggregator_new(s, &cfg);
    ingest_t           *in;
    char                err[512];
    char               *argv[] = { "t", "--ingest",
                                   "unix:/tmp/obs-unit-ingest.sock", NULL };
    struct stat         st;
    FILE               *f;
    int                 fd;

    CHECK(config_load(&c, 3, argv, err, sizeof(err)) == CONFIG_OK,
          "config loads");
    unlink("/tmp/obs-unit-ingest.sock");

    f = fopen("/tmp/obs-unit-ingest.sock", "w");
    fputs("precious", f);
    fclose(f);
    CHECK(ingest_check(&c, err, sizeof(err)) != 0
          && strstr(err, "not a socket") != NULL,
          "--check-config refuses a regular file");
    CHECK(ingest_open(&c, a, err, sizeof(err)) == NULL
          && strstr(err, "not a socket") != NULL,
          "ingest refuses a regular file");
    CHECK(stat("/tmp/obs-unit-ingest.sock", &st) == 0 && S_ISREG(st.st_mode)
          && st.st_size == 8, "the regular file is left alone");
    unlink("/tmp/obs-unit-ingest.sock");

    /* a stale socket: bound, then its owner gone */
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, "/tmp/obs-unit-ingest.sock");
    CHECK(bind(fd, (struct sockaddr *) &sun, sizeof(sun)) == 0, "bound");

    CHECK(ingest_check(&c, err, sizeof(err)) != 0
          && strstr(err, "another process") != NULL,
          "--check-config refuses a live socket");
    CHECK(ingest_open(&c, a, err, sizeof(err)) == NULL
          && strstr(err, "another process") != NULL,
          "ingest refuses a live socket");
    close(fd);

    CHECK(ingest_check(&c, err, sizeof(err)) == 0, "a stale socket is fine");
    in = ingest_open(&c, a, err, sizeof(err));
    CHECK(in != NULL, "a stale socket is replaced");
    CHECK(stat("/tmp/obs-unit-ingest.sock", &st) == 0
          && (st.st_mode & 0777) == 0660, "the socket is mode 0660");
    ingest_close(in);
    CHECK(stat("/tmp/obs-unit-ingest.sock", &st) != 0,
          "the socket is removed at close");

    config_free(&c);
    aggregator_free(a);
    store_free(s);
}

/* Sends a header-only datagram for worker pid. */
static void
send_header(ingest_t *in, uint32_t pid, uint64_t sequence,
    uint64_t delta_full, uint64_t cumulative_full, uint64_t at_exit)
{
    Obs__V1__Batch        batch = OBS__V1__BATCH__INIT;
    Obs__V1__BatchHeader  h = OBS__V1__BATCH_HEADER__INIT;
    uint8_t               wire[128];

    h.schema_version = 2;
    h.pid = pid;
    h.worker_start_unix_nano = 1;
    h.sequence = sequence;
    h.host.data = (uint8_t *) "host";
    h.host.len = 4;
    h.delta_dropped_buffer_full = delta_full;
    h.dropped_buffer_full = cumulative_full;
    h.delta_dropped_at_exit = at_exit;
    batch.header = &h;

    ingest_datagram(in, wire, obs__v1__batch__pack(&batch, wire));
}

/*
 * Drops come as deltas: each counts once, however many workers report and
 * whether or not the sidecar saw a worker before (a restart); the
 * cumulative counters of older modules still count their increase.
 */
static void
test_drop_accounting(void)
{
    config_t       c = cfg;
    store_t       *s = store_new(1000);
    aggregator_t  *a = aggregator_new(s, &cfg);
    ingest_t      *in, *restarted;
    uint64_t       full, at_exit;
    uint32_t       pid;
    char           err[256];

    c.n_ingest = 0;
    in = ingest_open(&c, a, err, sizeof(err));
    full = obs_stats.module_dropped[MODULE_DROP_BUFFER_FULL];
    at_exit = obs_stats.module_dropped[MODULE_DROP_EXIT];

    for (pid = 1; pid <= 1500; pid++) {
        send_header(in, pid, 0, 2, 0, 0);
    }
    for (pid = 1; pid <= 1500; pid++) {
        send_header(in, pid, 1, 1, 0, 0);
    }
    CHECK(obs_stats.module_dropped[MODULE_DROP_BUFFER_FULL] == full + 4500,
          "1500 workers' drop deltas count exactly once");

    restarted = ingest_open(&c, a, err, sizeof(err));
    send_header(restarted, 7, 2, 0, 0, 0);
    send_header(restarted, 9, 5, 3, 0, 11);
    CHECK(obs_stats.module_dropped[MODULE_DROP_BUFFER_FULL] == full + 4503,
          "a restarted sidecar adds only what is new");
    CHECK(obs_stats.module_dropped[MODULE_DROP_EXIT] == at_exit + 11,
          "records held at a worker's exit are counted");

    full = obs_stats.module_dropped[MODULE_DROP_BUFFER_FULL];
    send_header(in, 4242, 0, 0, 5, 0);
    send_header(in, 4242, 1, 0, 9, 0);
    CHECK(obs_stats.module_dropped[MODULE_DROP_BUFFER_FULL] == full + 9,
          "an older module's cumulative counters count their increase");

    ingest_close(in);
    ingest_close(restarted);
    aggregator_free(a);
    store_free(s);
}

/*
 * One datagram through a unix socket, as nginx sends it: plain, or tagged
 * (0xff "OBH", HMAC-SHA256 of the Batch under key, the Batch), then read
 * by ingest as its poll loop would.
 */
typedef struct {
    ingest_t            *in;
    int                  fd;
    struct sockaddr_un   sun;
    const char          *key;
} wire_t;

static void
wire_send(wire_t *w, int tagged, Obs__V1__Batch *batch)
{
    uint8_t       out[4096];
    size_t        len;
    unsigned int  tag_len = 0;

    enum { HEAD = OBS_MAC_MARK_LEN + OBS_MAC_LEN };

    len = obs__v1__batch__pack(batch, out + HEAD);

    if (tagged) {
        memcpy(out, OBS_MAC_MARK, OBS_MAC_MARK_LEN);
        HMAC(EVP_sha256(), w->key, (int) strlen(w->key), out + HEAD, len,
             out + OBS_MAC_MARK_LEN, &tag_len);
    }

    CHECK(sendto(w->fd, tagged ? out : out + HEAD, tagged ? len + HEAD : len, 0,
                 (struct sockaddr *) &w->sun, sizeof(w->sun)) > 0,
          "a datagram is sent");
    ingest_drain(w->in, 0);
}

/* A worker's batch of one record of service; the header names the worker. */
static void
wire_batch(wire_t *w, int tagged, uint32_t pid, uint64_t sequence,
    uint64_t send_time, const char *service)
{
    Obs__V1__Batch        batch = OBS__V1__BATCH__INIT;
    Obs__V1__BatchHeader  h = OBS__V1__BATCH_HEADER__INIT;
    Obs__V1__Record       r = OBS__V1__RECORD__INIT, *rp = &r;

    h.schema_version = 2;
    h.pid = pid;
    h.worker_start_unix_nano = 1700000000000000000ULL;
    h.sequence = sequence;
    h.send_time_unix_nano = send_time;
    h.host.data = (uint8_t *) "gw-1";
    h.host.len = 4;
    r.service.data = (uint8_t *) service;
    r.service.len = strlen(service);
    r.method.data = (uint8_t *) "GET";
    r.method.len = 3;
    r.status = 200;
    batch.header = &h;
    batch.n_records = 1;
    batch.records = &rp;
    wire_send(w, tagged, &batch);
}

static uint64_t
now_nano(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000000000 + (uint64_t) ts.tv_nsec;
}

static int
wire_open(wire_t *w, config_t *c, aggregator_t *a)
{
    static char  *ingest = "unix:/tmp/obs-unit-trust.sock";
    char          err[256];

    *c = cfg;
    c->ingest[0] = ingest;
    c->n_ingest = 1;
    c->ingest_key = "unit-test-key-0123456789";
    unlink(ingest + 5);

    w->key = c->ingest_key;
    w->in = ingest_open(c, a, err, sizeof(err));
    w->fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    memset(&w->sun, 0, sizeof(w->sun));
    w->sun.sun_family = AF_UNIX;
    strcpy(w->sun.sun_path, ingest + 5);

    return w->in != NULL && w->fd >= 0;
}

static void
wire_close(wire_t *w)
{
    close(w->fd);
    ingest_close(w->in);
}

/*
 * Plain datagrams (a unix socket takes them beside tagged ones) name a
 * worker as they like: they may never move the window its tagged ones are
 * judged by.  At sequence 2^64-1 one wrapped that window to 0, so that
 * every copy counted again; at 2^63-1 it made the worker's next datagrams
 * copies; either set obs_datagrams_lost_total near 2^63.
 */
static void
test_trust_windows(void)
{
    config_t       c;
    wire_t         w;
    store_t       *s = store_new(1000);
    aggregator_t  *a = aggregator_new(s, &cfg);
    uint64_t       records, replayed, lost, t = now_nano();

    CHECK(wire_open(&w, &c, a), "ingest opens a keyed unix socket");

    records = obs_stats.records_received;
    replayed = obs_stats.decode_errors[DECODE_REPLAYED];
    lost = obs_stats.datagrams_lost;

    wire_batch(&w, 1, 7, 0, t, "signed");
    wire_batch(&w, 1, 7, 1, t, "signed");
    wire_batch(&w, 1, 7, 2, t, "signed");
    CHECK(obs_stats.records_received == records + 3, "3 signed records");

    wire_batch(&w, 0, 7, UINT64_MAX, t, "plain");
    CHECK(obs_stats.records_received == records + 4,
          "a plain datagram on a unix socket counts");

    wire_batch(&w, 1, 7, 1, t, "signed");
    wire_batch(&w, 1, 7, 2, t, "signed");
    CHECK(obs_stats.records_received == records + 4
          && obs_stats.decode_errors[DECODE_REPLAYED] == replayed + 2,
          "copies of signed datagrams stay copies after a plain 2^64-1");

    wire_batch(&w, 0, 7, INT64_MAX, t, "plain");
    wire_batch(&w, 1, 7, 3, t, "signed");
    CHECK(obs_stats.records_received == records + 6
          && obs_stats.decode_errors[DECODE_REPLAYED] == replayed + 2,
          "the worker's next signed datagram counts after a plain 2^63-1");

    CHECK(obs_stats.datagrams_lost == lost,
          "no sequence number read off the wire counted a datagram lost");

    wire_close(&w);
    aggregator_free(a);
    store_free(s);
}

/*
 * A gap in a worker's sequence is datagrams lost, but only as many as it
 * could have sent since its last one: beyond that the datagram is refused
 * as a protocol error (sequence_gap) and the window stays where it was.
 */
static void
test_sequence_gap(void)
{
    store_t       *s = store_new(1000);
    aggregator_t  *a = aggregator_new(s, &cfg);
    config_t       c = cfg;
    ingest_t      *in;
    uint64_t       lost, gap;
    char           err[256];

    c.n_ingest = 0;
    in = ingest_open(&c, a, err, sizeof(err));
    lost = obs_stats.datagrams_lost;
    gap = obs_stats.decode_errors[DECODE_SEQUENCE_GAP];

    send_header(in, 31, 10, 0, 0, 0);
    send_header(in, 31, (uint64_t) 1 << 62, 0, 0, 0);
    CHECK(obs_stats.decode_errors[DECODE_SEQUENCE_GAP] == gap + 1
          && obs_stats.datagrams_lost == lost,
          "a gap of 2^62 is a protocol error, not 2^62 datagrams lost");

    send_header(in, 31, 12, 0, 0, 0);
    CHECK(obs_stats.datagrams_lost == lost + 1,
          "the window did not move: 11 is missing after 10 and 12");

    send_header(in, 31, UINT64_MAX, 0, 0, 0);
    send_header(in, 32, UINT64_MAX, 0, 0, 0);
    send_header(in, 32, UINT64_MAX, 0, 0, 0);
    send_header(in, 32, 0, 0, 0, 0);
    CHECK(obs_stats.datagrams_lost == lost + 1
          && obs_stats.decode_errors[DECODE_SEQUENCE_GAP] == gap + 2,
          "no arithmetic on a sequence number wraps");

    ingest_close(in);
    aggregator_free(a);
    store_free(s);
}

/*
 * A signed datagram carries its send time: one further than the skew from
 * the sidecar's clock (a copy captured before a restart, which emptied the
 * window) is refused as stale.  Senders that do not say (0) and plain
 * datagrams are not judged by it.
 */
static void
test_freshness(void)
{
    config_t       c;
    wire_t         w;
    store_t       *s = store_new(1000);
    aggregator_t  *a = aggregator_new(s, &cfg);
    uint64_t       records, stale, t = now_nano(),
                   skew = (uint64_t) cfg.ingest_max_skew * 1000000000;

    CHECK(wire_open(&w, &c, a), "ingest opens a keyed unix socket");
    records = obs_stats.records_received;
    stale = obs_stats.decode_errors[DECODE_STALE];

    wire_batch(&w, 1, 8, 0, t - skew - 1000000000, "signed");
    wire_batch(&w, 1, 8, 1, t + skew + 1000000000, "signed");
    CHECK(obs_stats.decode_errors[DECODE_STALE] == stale + 2
          && obs_stats.records_received == records,
          "signed datagrams sent too long ago or too far ahead are stale");

    wire_batch(&w, 1, 8, 2, t - skew / 2, "signed");
    wire_batch(&w, 1, 8, 3, 0, "signed");
    wire_batch(&w, 0, 8, 4, t - 3600 * skew, "plain");
    CHECK(obs_stats.decode_errors[DECODE_STALE] == stale + 2
          && obs_stats.records_received == records + 3,
          "within the skew, without a send time, or plain: counted");

    ingest_configure(w.in, &(config_t) { .ingest_max_skew = 3600 * 24 });
    wire_batch(&w, 1, 8, 5, t - skew - 1000000000, "signed");
    CHECK(obs_stats.records_received == records + 4,
          "a reload changes the skew");

    wire_close(&w);
    aggregator_free(a);
    store_free(s);
}

/*
 * Requests in flight are kept per nginx (zone) and trust: a plain snapshot
 * that named a signed zone, with the highest version there is, once froze
 * that zone's gauge; plain zones filling the table kept signed ones out.
 */
static void
active_snapshot(wire_t *w, int tagged, uint32_t pid, uint64_t sequence,
    uint64_t zone, uint64_t version, const char *route, uint64_t count)
{
    Obs__V1__Batch           batch = OBS__V1__BATCH__INIT;
    Obs__V1__BatchHeader     h = OBS__V1__BATCH_HEADER__INIT;
    Obs__V1__ActiveRequests  e = OBS__V1__ACTIVE_REQUESTS__INIT, *ep = &e;

    h.schema_version = 2;
    h.pid = pid;
    h.sequence = sequence;
    h.host.data = (uint8_t *) "gw-2";
    h.host.len = 4;
    h.active_zone = zone;
    h.active_version = version;
    h.n_active = 1;
    h.active = &ep;
    e.route.data = (uint8_t *) route;
    e.route.len = strlen(route);
    e.count = count;
    batch.header = &h;
    wire_send(w, tagged, &batch);
}

static const char *
active_text(aggregator_t *a, buf_t *out)
{
    return unit_render(active_requests_metrics, aggregator_active_requests(a),
                       out);
}

static void
test_active_trust(void)
{
    config_t       c;
    wire_t         w;
    store_t       *s = store_new(1000);
    aggregator_t  *a = aggregator_new(s, &cfg);
    buf_t          out = { 0 };
    int            i;

    CHECK(wire_open(&w, &c, a), "ingest opens a keyed unix socket");

    active_snapshot(&w, 1, 9, 0, 77, 10, "/slow", 3);
    active_snapshot(&w, 0, 9, 0, 77, UINT64_MAX, "/slow", 100);
    active_snapshot(&w, 1, 9, 1, 77, 11, "/slow", 1);
    CHECK(strstr(active_text(a, &out), "route=\"/slow\"} 101\n") != NULL,
          "a signed zone's next snapshot counts after a plain one named it "
          "(each is its own zone)");

    /* plain nginx instances in every zone slot there is */
    for (i = 0; i < ACTIVE_MAX_ZONES; i++) {
        active_snapshot(&w, 0, 1000 + i, 0, 5000 + i, 1, "/idle", 0);
    }
    active_snapshot(&w, 1, 11, 0, 78, 1, "/new", 2);
    CHECK(strstr(active_text(a, &out), "route=\"/new\"} 2\n") != NULL,
          "a signed zone finds room however many plain ones there are");

    buf_free(&out);
    wire_close(&w);
    aggregator_free(a);
    store_free(s);
}

/*
 * With a key, plain datagrams are the other trust class (like the replay
 * windows and in-flight zones): their word that the configuration wrote a
 * label (from_request 0) is not taken, or whoever writes to the unix socket
 * could fill max_services with "configured" values and push the signed
 * module's own services into __overflow__.  Their labels take the share.
 */
static void
test_plain_labels_share(void)
{
    config_t       c, small = cfg;
    wire_t         w;
    store_t       *s;
    aggregator_t  *a;
    char           name[32], *text;
    uint64_t       t = now_nano();
    int            i;

    small.max_services = 4;
    a = fresh(&s, &small);
    CHECK(wire_open(&w, &c, a), "ingest opens a keyed unix socket");

    for (i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "forged-%d", i);
        wire_batch(&w, 0, 300 + i, 0, t, name);
    }
    wire_batch(&w, 1, 310, 0, t, "backend-api");
    wire_batch(&w, 1, 311, 0, t, "ml-engine");

    text = render(s, EXPO_TEXT);
    CHECK(strstr(text, "service=\"backend-api\"") != NULL
          && strstr(text, "service=\"ml-engine\"") != NULL,
          "signed services keep their series after plain ones that claim "
          "the configuration wrote theirs");
    CHECK(strstr(text, "service=\"forged-1\"") != NULL
          && strstr(text, "service=\"forged-2\"") == NULL,
          "plain datagrams' services take the share of max_services");

    wire_close(&w);
    aggregator_free(a);
    store_free(s);
}

/*
 * What a header claims with no bytes to show for it (drops, JWT results,
 * requests in flight) is the sender's word: one claim of 2^63 once put
 * 9.2e18 in a counter (two wrapped it).  More than 2^40 in one datagram
 * is no worker's (2^40 requests is 12 days at a million a second): the
 * datagram is refused as implausible_count and counts nothing.
 */
static void
test_implausible_claims(void)
{
    Obs__V1__Batch           batch = OBS__V1__BATCH__INIT;
    Obs__V1__BatchHeader     h = OBS__V1__BATCH_HEADER__INIT;
    Obs__V1__ActiveRequests  e = OBS__V1__ACTIVE_REQUESTS__INIT, *ep = &e;
    store_t                 *s = store_new(1000);
    aggregator_t            *a = aggregator_new(s, &cfg);
    config_t                 c = cfg;
    ingest_t                *in;
    uint8_t                  wire[256];
    uint64_t                 dropped, valid, implausible;
    buf_t                    out = { 0 };
    char                     err[256];

    c.n_ingest = 0;
    in = ingest_open(&c, a, err, sizeof(err));
    dropped = obs_stats.module_dropped[MODULE_DROP_BUFFER_FULL];
    valid = obs_stats.jwt_tokens[JWT_VALID];
    implausible = obs_stats.decode_errors[DECODE_IMPLAUSIBLE_COUNT];

    h.schema_version = 2;
    h.pid = 51;
    h.host.data = (uint8_t *) "gw-3";
    h.host.len = 4;
    batch.header = &h;

    h.delta_dropped_buffer_full = (uint64_t) 1 << 63;
    ingest_datagram(in, wire, obs__v1__batch__pack(&batch, wire));
    h.sequence++;
    h.delta_dropped_buffer_full = 0;
    h.dropped_buffer_full = UINT64_MAX;
    ingest_datagram(in, wire, obs__v1__batch__pack(&batch, wire));
    h.sequence++;
    h.dropped_buffer_full = 0;
    h.jwt_valid = UINT64_MAX;
    ingest_datagram(in, wire, obs__v1__batch__pack(&batch, wire));
    h.sequence++;
    h.jwt_valid = 0;
    h.active_zone = 1234;
    h.active_version = 1;
    h.n_active = 1;
    h.active = &ep;
    e.route.data = (uint8_t *) "/lie";
    e.route.len = 4;
    e.count = (uint64_t) 1 << 62;
    ingest_datagram(in, wire, obs__v1__batch__pack(&batch, wire));
    h.sequence++;

    CHECK(obs_stats.decode_errors[DECODE_IMPLAUSIBLE_COUNT]
          == implausible + 4
          && obs_stats.module_dropped[MODULE_DROP_BUFFER_FULL] == dropped
          && obs_stats.jwt_tokens[JWT_VALID] == valid,
          "claims past 2^40 are refused and count nothing");

    e.count = 7;
    h.active_version = 2;
    h.delta_dropped_buffer_full = (uint64_t) 1 << 39;
    h.jwt_valid = 3;
    ingest_datagram(in, wire, obs__v1__batch__pack(&batch, wire));
    CHECK(obs_stats.module_dropped[MODULE_DROP_BUFFER_FULL]
          == dropped + ((uint64_t) 1 << 39)
          && obs_stats.jwt_tokens[JWT_VALID] == valid + 3,
          "large but possible claims count");

    CHECK(strstr(active_text(a, &out), "route=\"/lie\"} 7\n") != NULL,
          "the gauge holds the plausible snapshot only");
    buf_free(&out);

    ingest_close(in);
    aggregator_free(a);
    store_free(s);
}

/* --help: an environment variable without a flag names itself, and wrapped
   help stays in its column, every line within 79 columns. */
static void
test_settings_usage(void)
{
    static const setting_t  rows[] = {
        { "a", SETTING_STRING, 0, 0, 0, "OBS_TEST_A", "--a VALUE",
          "a help text long enough that it has to wrap onto a second line "
          "beside its flag", NULL, NULL },
        { NULL, SETTING_STRING, 0, 0, 0, "OBS_TEST_ENV_ONLY", NULL,
          "an environment-only setting", NULL, NULL },
        { NULL, SETTING_STRING, 0, 0, 0, "OBS_TEST_A_VERY_LONG_VARIABLE_NAME",
          NULL, "its text below it", NULL, NULL },
        SETTINGS_END
    };
    char    *text = NULL, *line, *end;
    size_t   len = 0;
    int      longest = 0;
    FILE    *f = open_memstream(&text, &len);

    settings_usage(f, rows);
    fclose(f);

    CHECK(strstr(text, "\n  env OBS_TEST_ENV_ONLY        an environment-only "
                 "setting\n") != NULL, "usage: env-only row is labelled");
    CHECK(strstr(text, "\n  env OBS_TEST_A_VERY_LONG_VARIABLE_NAME\n"
                 "                               its text below it\n")
          != NULL, "usage: a wide label stands on its own line");
    CHECK(strstr(text, "\n                               "
                 "a second line beside its flag\n")
          != NULL, "usage: wrapped help starts in the help column");

    for (line = text; *line; line = end + 1) {
        end = strchr(line, '\n');
        if ((int) (end - line) > longest) {
            longest = (int) (end - line);
        }
    }
    CHECK(longest <= 79, "usage: lines within 79 columns");
    free(text);
}

/* The label values test_measured_labels() writes: n bytes, i's. */
static void
measured_value(char *v, size_t i, size_t n)
{
    memset(v, (int) ('a' + i), n);
    v[n] = '\0';
    if (n > 0) {
        v[n - 1] = (char) ('0' + n % 10);
    }
}

typedef struct {
    uint64_t  sum;
    int       ok;
} measured_t;

/* Sums the series and checks their labels read back as written. */
static void
measured_visit(const family_t *f, const series_t *se, const char **labels,
    void *data)
{
    measured_t  *m = data;
    char         v[48];
    size_t       i, n = strlen(labels[0]);

    (void) f;
    for (i = 0; i < 3; i++) {
        measured_value(v, i, n);
        m->ok &= strcmp(labels[i], v) == 0;
    }
    m->sum += se->v.counter;
}

/*
 * A series found by its measured labels (store_label, the aggregator's
 * way) is the one its plain labels find, and its labels read back as
 * written, whatever the values' lengths (store_key copies short ones in
 * overlapping moves).
 */
static void
test_measured_labels(void)
{
    store_t        *s = store_new(1000);
    store_label_t   m[LABELS_REQUEST_BODY];
    const char     *l[LABELS_REQUEST_BODY], *z[LABELS_RESPONSE_BODY];
    char            v[3][48], w[3][48];
    measured_t      seen = { 0, 1 };
    size_t          n, i;
    int             ok = 1;

    for (n = 0; n <= 40; n++) {
        for (i = 0; i < 3; i++) {
            measured_value(v[i], i, n);
            l[i] = v[i];
            m[i] = store_label(v[i]);
            memset(w[i], 'z', n);
            w[i][n] = '\0';
            z[i] = w[i];
        }

        /* between the two, a key of other bytes in the same place */
        ok &= store_add(s, FAMILY_REQUEST_BODY, l, 1, 100, 0, 0) == STORE_OK;
        ok &= store_add(s, FAMILY_RESPONSE_BODY, z, 1, 100, 0, 0)
              == STORE_OK;
        ok &= store_add_measured(s, FAMILY_REQUEST_BODY, m, 2, 100, 0, 0)
              == STORE_OK;
        ok &= store_size(s) == 2 * ((long) n + 1);
    }

    store_visit(s, FAMILY_REQUEST_BODY, measured_visit, &seen);
    CHECK(ok, "measured and plain labels: one series per value length");
    CHECK(seen.ok, "labels of every length read back as written");
    CHECK(seen.sum == 41 * 3, "every addition counted in it");
    store_free(s);
}

int
main(void)
{
    setup_config();
    test_count_without_columns();
    test_jwt_counts();
    test_counts();
    test_gzip_scrape();
    test_gzip_bound();
    test_measured_labels();
    test_caps();
    test_expiry();
    test_escaping();
    test_double_format();
    test_millis_format();
    test_sanitize_fast_path();
    test_histogram();
    test_negotiation();
    test_config_errors();
    test_settings_usage();
    test_accept_encoding();
    test_ingest_paths();
    test_drop_accounting();
    test_trust_windows();
    test_sequence_gap();
    test_freshness();
    test_active_trust();
    test_plain_labels_share();
    test_implausible_claims();
    config_free(&cfg);

    return unit_report("sidecar");
}
