/*
 * obs_metric observations and in-flight snapshots in the sidecar: hostile
 * columns rejected (counts that lie, symbols out of range, bad types), value
 * parsing, aggregation under caps, the newest snapshot per zone, and what
 * /metrics then shows.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "business.h"
#include "buf.h"
#include "columns.h"
#include "expo.h"
#include "stats.h"

static const char *
render(business_t *b, buf_t *out)
{
    expo_writer_t  w;

    buf_reset(out);
    expo_begin(&w, EXPO_TEXT, out);
    business_metrics(&w, b);
    expo_end(&w);
    buf_append(out, "", 1);
    return out->data;
}

/* Two records: the first with two observations, the second with none. */
static void
test_columns(void)
{
    Obs__V1__RecordColumns     c = OBS__V1__RECORD_COLUMNS__INIT;
    Obs__V1__Record            r;
    columns_reader_t           rd;
    uint8_t                    data[] = "hits_totalcacheHIT7depth2.5";
    uint32_t                   ends[] = { 0, 10, 15, 18, 19, 24, 27 };
    uint32_t                   status[] = { 200, 200 };
    uint64_t                   dur[] = { 1, 2 };
    uint32_t                   count[] = { 2, 0 }, name[] = { 1, 5 };
    uint32_t                   type[] = { 1, 2 }, lname[] = { 2, 0 };
    uint32_t                   lvalue[] = { 3, 0 }, value[] = { 4, 6 };

    c.count = 2;
    c.symbol_data.data = data;
    c.symbol_data.len = 27;
    c.symbol_end = ends;
    c.n_symbol_end = 7;
    c.status = status;
    c.n_status = 2;
    c.duration_us = dur;
    c.n_duration_us = 2;
    c.metric_count = count;
    c.n_metric_count = 2;
    c.metric_name = name;
    c.n_metric_name = 2;
    c.metric_type = type;
    c.n_metric_type = 2;
    c.metric_label_name = lname;
    c.n_metric_label_name = 2;
    c.metric_label_value = lvalue;
    c.n_metric_label_value = 2;
    c.metric_value = value;
    c.n_metric_value = 2;

    CHECK(columns_valid(&c), "consistent observation columns are valid");

    columns_reader_init(&rd, &c);
    CHECK(columns_next(&rd, &r) && r.n_metrics == 2
          && r.metrics[0]->name.len == 10
          && memcmp(r.metrics[0]->name.data, "hits_total", 10) == 0
          && r.metrics[0]->type == 1
          && r.metrics[0]->label_value.len == 3
          && r.metrics[0]->value.len == 1 && r.metrics[0]->value.data[0] == '7'
          && r.metrics[1]->type == 2 && r.metrics[1]->label_name.len == 0
          && r.metrics[1]->value.len == 3,
          "the first record's two observations, in order");
    CHECK(columns_next(&rd, &r) && r.n_metrics == 0,
          "the second record has none");

    count[1] = 1;
    CHECK(!columns_valid(&c), "counts that claim more than the entries");
    count[1] = 0;
    count[0] = 1;
    CHECK(!columns_valid(&c), "counts that claim fewer than the entries");
    count[0] = 2;

    count[0] = 0xffffffffu;
    CHECK(!columns_valid(&c), "a count past the most one record carries");
    count[0] = 2;

    name[1] = 7;
    CHECK(!columns_valid(&c), "a name symbol past the table");
    name[1] = 5;
    value[0] = 99;
    CHECK(!columns_valid(&c), "a value symbol past the table");
    value[0] = 4;
    lvalue[0] = 1000;
    CHECK(!columns_valid(&c), "a label value symbol past the table");
    lvalue[0] = 3;

    c.n_metric_type = 0;
    CHECK(!columns_valid(&c), "an observation's type is required");
    c.n_metric_type = 2;

    c.n_metric_value = 1;
    CHECK(!columns_valid(&c), "a value column shorter than the entries");
    c.n_metric_value = 2;

    c.n_metric_count = 1;
    CHECK(!columns_valid(&c), "the count column is one per record");
    c.n_metric_count = 0;
    CHECK(!columns_valid(&c), "observations without counts");
    c.n_metric_count = 2;

    CHECK(columns_valid(&c), "and valid again once restored");
}

static void
test_parse(void)
{
    static const struct {
        const char         *text;
        int                 counter;
        int                 ok;
        business_reject_t   why;
    } cases[] = {
        { "7", 1, 1, 0 }, { "2.5", 0, 1, 0 }, { "-1.5e3", 0, 1, 0 },
        { "1e3", 1, 1, 0 }, { "-3", 1, 0, BUSINESS_NEGATIVE },
        { "abc", 1, 0, BUSINESS_NOT_A_NUMBER },
        { "0x10", 1, 0, BUSINESS_NOT_A_NUMBER },
        { " 5", 1, 0, BUSINESS_NOT_A_NUMBER },
        { "5 ", 1, 0, BUSINESS_NOT_A_NUMBER },
        { "1,5", 0, 0, BUSINESS_NOT_A_NUMBER },
        { "+", 0, 0, BUSINESS_NOT_A_NUMBER },
        { "e5", 0, 0, BUSINESS_NOT_A_NUMBER },
        { "1.2.3", 0, 0, BUSINESS_NOT_A_NUMBER },
        { "nan", 0, 0, BUSINESS_NOT_FINITE },
        { "-Inf", 0, 0, BUSINESS_NOT_FINITE },
        { "Infinity", 1, 0, BUSINESS_NOT_FINITE },
        { "1e999", 0, 0, BUSINESS_NOT_FINITE },
        { "(too long)", 0, 0, BUSINESS_NOT_A_NUMBER },
    };

    business_reject_t  why;
    double             v;
    size_t             i;
    int                rc;
    uint8_t            nul[] = { '1', 0, '2' };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rc = business_parse((const uint8_t *) cases[i].text,
                            strlen(cases[i].text), cases[i].counter, &v,
                            &why);
        CHECK((rc == 0) == cases[i].ok && (cases[i].ok || why == cases[i].why),
              cases[i].text);
    }

    CHECK(business_parse(nul, 3, 0, &v, &why) != 0,
          "a NUL inside a value is not a number");
    CHECK(business_parse((const uint8_t *) "-0", 2, 1, &v, &why) == 0
          && v == 0 && !signbit(v), "-0 is 0 for a counter");
}

static Obs__V1__MetricObservation *
observation(Obs__V1__MetricObservation *o, const char *name, uint32_t type,
    const char *label, const char *label_value, const char *value)
{
    obs__v1__metric_observation__init(o);
    o->name.data = (uint8_t *) name;
    o->name.len = strlen(name);
    o->type = type;
    o->label_name.data = (uint8_t *) label;
    o->label_name.len = strlen(label);
    o->label_value.data = (uint8_t *) label_value;
    o->label_value.len = strlen(label_value);
    o->value.data = (uint8_t *) value;
    o->value.len = strlen(value);
    return o;
}

static void
record(business_t *b, Obs__V1__MetricObservation *o, const char *tenant)
{
    Obs__V1__Record  r = OBS__V1__RECORD__INIT;

    r.n_metrics = 1;
    r.metrics = &o;
    business_record(b, &r, "ml-engine", "/api/v1/recommendations", tenant,
                    1000);
}

/* The same observation at a time: a record of start_ns lasting 1 ms. */
static void
record_at(business_t *b, Obs__V1__MetricObservation *o, const char *tenant,
    uint64_t start_ns)
{
    Obs__V1__Record  r = OBS__V1__RECORD__INIT;

    r.n_metrics = 1;
    r.metrics = &o;
    r.start_time_unix_nano = start_ns;
    r.duration_us = 1000;
    business_record(b, &r, "ml-engine", "/api/v1/recommendations", tenant,
                    1000);
}

/* Two nginx workers' batches arrive in any order: a gauge keeps the value
   observed last, not the one that arrived last. */
static void
test_gauge_order(void)
{
    Obs__V1__MetricObservation  o;
    business_t                 *b = business_new(100);
    buf_t                       out = { 0 };
    uint64_t                    t = 1700000000000000000ULL;

    record_at(b, observation(&o, "age_seconds", 2, "", "", "42.25"), "g",
              t + 3000000);
    record_at(b, observation(&o, "age_seconds", 2, "", "", "3600.5"), "g",
              t + 2000000);
    record_at(b, observation(&o, "age_seconds", 2, "", "", "10"), "g", t);
    CHECK(strstr(render(b, &out), "tenant=\"g\"} 42.25\n") != NULL,
          "an older value arriving later does not replace a newer one");

    record_at(b, observation(&o, "age_seconds", 2, "", "", "7"), "g",
              t + 3000000);
    CHECK(strstr(render(b, &out), "tenant=\"g\"} 7\n") != NULL,
          "a value of the same time replaces it (arrival order)");

    record(b, observation(&o, "age_seconds", 2, "", "", "8"), "g");
    CHECK(strstr(render(b, &out), "tenant=\"g\"} 8\n") != NULL,
          "a record without a time is taken as it comes");

    buf_free(&out);
    business_free(b);
}

static void
test_aggregation(void)
{
    Obs__V1__MetricObservation  o;
    business_t                 *b = business_new(100);
    buf_t                       out = { 0 };
    const char                 *text;
    char                        v[16];
    int                         i;

    record(b, observation(&o, "recs_total", 1, "", "", "7"), "a");
    record(b, observation(&o, "recs_total", 1, "", "", "5"), "a");
    record(b, observation(&o, "recs_total", 1, "", "", "-5"), "a");
    record(b, observation(&o, "age_seconds", 2, "", "", "10"), "a");
    record(b, observation(&o, "age_seconds", 2, "", "", "3.25"), "a");
    record(b, observation(&o, "hits_total", 1, "cache", "HIT", "1"), "a");
    record(b, observation(&o, "hits_total", 1, "cache", "a\"b\\c\nd", "1"),
           "a");

    text = render(b, &out);
    CHECK(strstr(text, "# TYPE recs_total counter\n") != NULL
          && strstr(text, "recs_total{service=\"ml-engine\","
                    "route=\"/api/v1/recommendations\",tenant=\"a\"} 12\n")
             != NULL, "a counter sums its values");
    CHECK(strstr(text, "# TYPE age_seconds gauge\n") != NULL
          && strstr(text, "tenant=\"a\"} 3.25\n") != NULL,
          "a gauge shows the last value");
    CHECK(strstr(text, "cache=\"HIT\"} 1\n") != NULL
          && strstr(text, "cache=\"a\\\"b\\\\c\\nd\"} 1\n") != NULL,
          "label values are escaped");
    CHECK(business_rejected(b, BUSINESS_NEGATIVE) == 1,
          "a negative counter value is rejected");

    record(b, observation(&o, "recs_total", 2, "", "", "1"), "a");
    CHECK(business_rejected(b, BUSINESS_CONFLICT) == 1,
          "a name seen as a counter cannot become a gauge");
    record(b, observation(&o, "recs", 2, "", "", "1"), "a");
    CHECK(business_rejected(b, BUSINESS_CONFLICT) == 2,
          "nor can its OpenMetrics family name");
    record(b, observation(&o, "hits_total", 1, "other", "x", "1"), "a");
    CHECK(business_rejected(b, BUSINESS_CONFLICT) == 3,
          "nor can its label change");
    record(b, observation(&o, "http_server_requests_total", 1, "", "", "1"),
           "a");
    record(b, observation(&o, "obs_x", 2, "", "", "1"), "a");
    record(b, observation(&o, "bad name", 2, "", "", "1"), "a");
    record(b, observation(&o, "count_no_suffix", 1, "", "", "1"), "a");
    record(b, observation(&o, "g", 2, "bad-label", "x", "1"), "a");
    record(b, observation(&o, "typed", 3, "", "", "1"), "a");
    CHECK(business_rejected(b, BUSINESS_INVALID_METRIC) == 6,
          "reserved names, bad grammar, a counter without _total, a type "
          "that is neither counter nor gauge");

    /* label values: at most BUSINESS_MAX_VALUES per metric */
    for (i = 0; i < BUSINESS_MAX_VALUES + 10; i++) {
        snprintf(v, sizeof(v), "v%d", i);
        record(b, observation(&o, "flood_total", 1, "k", v, "1"), "a");
    }
    text = render(b, &out);
    CHECK(strstr(text, "k=\"__overflow__\"} 10\n") != NULL,
          "past the cap, label values overflow");

    /* series: past the cap, one all-overflow series per family */
    business_set_max_series(b, 1);
    record(b, observation(&o, "recs_total", 1, "", "", "4"), "new-tenant");
    text = render(b, &out);
    CHECK(strstr(text, "recs_total{service=\"__overflow__\","
                       "route=\"__overflow__\",tenant=\"__overflow__\"} 4\n")
          != NULL, "past the series cap a value still counts, in overflow");

    business_expire(b, 2000);
    text = render(b, &out);
    CHECK(strstr(text, "recs_total{") == NULL, "series expire");

    buf_free(&out);
    business_free(b);
}

/*
 * Hostile observations any sender may make: a label the sample already has
 * would write it twice (Prometheus then refuses the whole scrape), and a
 * counter's sum must stay a finite number.
 */
static void
test_hostile(void)
{
    static const char  *labels[] = {
        "service", "route", "tenant", "le", "quantile", "job", "instance",
        "__name__", "__x"
    };

    Obs__V1__MetricObservation  o;
    business_t                 *b = business_new(100);
    buf_t                       out = { 0 };
    const char                 *text;
    size_t                      i;

    for (i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
        record(b, observation(&o, "spoof_total", 1, labels[i], "x", "1"),
               "a");
    }
    text = render(b, &out);
    CHECK(business_rejected(b, BUSINESS_INVALID_METRIC)
          == sizeof(labels) / sizeof(labels[0])
          && strstr(text, "spoof_total") == NULL,
          "label names the gateway sets, Prometheus's own and __ ones are "
          "refused");

    record(b, observation(&o, "big_total", 1, "", "", "1e308"), "a");
    record(b, observation(&o, "big_total", 1, "", "", "1e308"), "a");
    text = render(b, &out);
    CHECK(business_rejected(b, BUSINESS_NOT_FINITE) == 1
          && strstr(text, "tenant=\"a\"} 1e+308\n") != NULL,
          "a counter never sums to infinity: the overflowing value is "
          "rejected, the sum kept");

    buf_free(&out);
    business_free(b);
}

/*
 * A reload may change a metric's type or label: once the old series have
 * expired the name is free again, and so are its admitted label values.
 */
static void
test_redefined(void)
{
    Obs__V1__MetricObservation  o;
    business_t                 *b = business_new(100);
    buf_t                       out = { 0 };
    const char                 *text;
    char                        v[16];
    int                         i;

    for (i = 0; i < BUSINESS_MAX_VALUES; i++) {
        snprintf(v, sizeof(v), "old%d", i);
        record(b, observation(&o, "queue_total", 1, "k", v, "1"), "a");
    }
    record(b, observation(&o, "queue", 2, "", "", "3"), "a");
    CHECK(business_rejected(b, BUSINESS_CONFLICT) == 1,
          "while the counter has series, a gauge of its name is refused");

    business_expire(b, 2000);
    record(b, observation(&o, "queue", 2, "", "", "3"), "a");
    record(b, observation(&o, "queue_total", 1, "k", "new", "1"), "a");
    record(b, observation(&o, "depth_total", 1, "k", "new", "2"), "a");
    text = render(b, &out);
    CHECK(business_rejected(b, BUSINESS_CONFLICT) == 2
          && strstr(text, "# TYPE queue gauge\n") != NULL
          && strstr(text, "tenant=\"a\"} 3\n") != NULL
          && strstr(text, "# TYPE queue counter") == NULL,
          "after they expire the name takes its new type");
    CHECK(strstr(text, "depth_total{service=\"ml-engine\","
                       "route=\"/api/v1/recommendations\",tenant=\"a\","
                       "k=\"new\"} 2\n") != NULL,
          "and a new family can take the freed slot");

    for (i = 0; i < 2 * BUSINESS_MAX_FAMILIES; i++) {
        snprintf(v, sizeof(v), "g%d", i);
        record(b, observation(&o, v, 2, "", "", "1"), "a");
        business_expire(b, 2000);
    }
    record(b, observation(&o, "last", 2, "", "", "1"), "a");
    CHECK(business_rejected(b, BUSINESS_TOO_MANY_METRICS) == 0,
          "families that expired never fill the table");

    buf_free(&out);
    business_free(b);
}

static void
snapshot(business_t *b, uint64_t zone, uint64_t version, int closed,
    const char *route, uint64_t count)
{
    Obs__V1__BatchHeader      h = OBS__V1__BATCH_HEADER__INIT;
    Obs__V1__ActiveRequests   a = OBS__V1__ACTIVE_REQUESTS__INIT, *ap = &a;

    h.active_zone = zone;
    h.active_version = version;
    h.active_closed = closed;
    h.active_overflow = zone * 10;
    a.service.data = (uint8_t *) "";
    a.service.len = 0;
    a.route.data = (uint8_t *) route;
    a.route.len = strlen(route);
    a.count = count;
    h.n_active = route ? 1 : 0;
    h.active = &ap;
    business_active(b, &h, "backend-api", 0, 1000);
}

static void
test_active(void)
{
    business_t  *b = business_new(100);
    buf_t        out = { 0 };
    const char  *text;

    snapshot(b, 1, 10, 0, "/slow", 3);
    snapshot(b, 2, 5, 0, "/slow", 2);
    text = render(b, &out);
    CHECK(strstr(text, "# TYPE http_server_active_requests gauge\n") != NULL
          && strstr(text, "http_server_active_requests{service=\"backend-api\","
                    "route=\"/slow\"} 5\n") != NULL,
          "two nginx instances sum; no service is the default service");
    CHECK(strstr(text, "obs_active_requests_overflow_total 30\n") != NULL,
          "the zones' overflow counts sum");

    snapshot(b, 1, 9, 0, "/slow", 100);
    text = render(b, &out);
    CHECK(strstr(text, "route=\"/slow\"} 5\n") != NULL,
          "an older snapshot of a zone is ignored");

    snapshot(b, 1, 11, 0, "/fast", 1);
    text = render(b, &out);
    CHECK(strstr(text, "route=\"/slow\"} 2\n") != NULL
          && strstr(text, "route=\"/fast\"} 1\n") != NULL,
          "a newer one replaces the zone's entries (absent ones are 0)");

    snapshot(b, 2, 6, 1, "/slow", 7);
    text = render(b, &out);
    CHECK(strstr(text, "route=\"/slow\"} 0\n") != NULL,
          "a closed zone counts nothing, whatever it carries");

    snapshot(b, 0, 50, 0, "/slow", 7);
    text = render(b, &out);
    CHECK(strstr(text, "route=\"/slow\"} 0\n") != NULL,
          "a header without a zone carries no snapshot");

    snapshot(b, 3, 1, 0, "/killed", 4);
    business_expire(b, 2000);
    text = render(b, &out);
    CHECK(strstr(text, "route=\"/slow\"") == NULL
          && strstr(text, "route=\"/killed\"") == NULL,
          "entries at 0 expire, and so do those of a zone silent for a TTL");

    buf_free(&out);
    business_free(b);
}

/*
 * Counts that lie: one above what an nginx could hold drops the whole
 * snapshot (counted); the largest accepted ones, and overflow counts near
 * 2^64, sum without wrapping.
 */
static void
test_active_lies(void)
{
    business_t                *b = business_new(100);
    buf_t                      out = { 0 };
    const char                *text;
    uint64_t                   malformed;
    Obs__V1__BatchHeader       h = OBS__V1__BATCH_HEADER__INIT;
    Obs__V1__ActiveRequests    e[2] = { OBS__V1__ACTIVE_REQUESTS__INIT,
                                        OBS__V1__ACTIVE_REQUESTS__INIT };
    Obs__V1__ActiveRequests   *ep[2] = { &e[0], &e[1] };

    snapshot(b, 1, 10, 0, "/slow", 3);

    malformed = obs_stats.decode_errors[DECODE_MALFORMED];
    h.active_zone = 1;
    h.active_version = 20;
    h.n_active = 2;
    h.active = ep;
    e[0].route.data = (uint8_t *) "/slow";
    e[0].route.len = 5;
    e[0].count = 1;
    e[1].route.data = (uint8_t *) "/slow";
    e[1].route.len = 5;
    e[1].count = UINT64_MAX;                /* 1 + this wrapped to 0 */
    business_active(b, &h, "backend-api", 0, 1000);
    text = render(b, &out);
    CHECK(strstr(text, "route=\"/slow\"} 3\n") != NULL,
          "a snapshot with an impossible count changes nothing");
    CHECK(obs_stats.decode_errors[DECODE_MALFORMED] == malformed + 1,
          "... and is counted as malformed");

    e[1].count = BUSINESS_MAX_IN_FLIGHT + 1;
    business_active(b, &h, "backend-api", 0, 1000);
    CHECK(obs_stats.decode_errors[DECODE_MALFORMED] == malformed + 2,
          "one past the bound is impossible too");

    snapshot(b, 1, 11, 0, "/slow", BUSINESS_MAX_IN_FLIGHT);
    snapshot(b, 2, 11, 0, "/slow", BUSINESS_MAX_IN_FLIGHT);
    text = render(b, &out);
    CHECK(strstr(text, "route=\"/slow\"} 8589934590\n") != NULL,
          "the snapshot after a lie counts, and the largest counts sum "
          "exactly");

    h.active_zone = 3;
    h.active_version = 1;
    h.active_overflow = UINT64_MAX - 5;
    h.n_active = 0;
    business_active(b, &h, "backend-api", 0, 1000);
    h.active_zone = 4;
    business_active(b, &h, "backend-api", 0, 1000);
    text = render(b, &out);
    CHECK(strstr(text, "obs_active_requests_overflow_total "
                       "1.8446744073709552e+19\n") != NULL,
          "overflow counts saturate instead of wrapping (have 20 + 2 "
          "times 2^64-6)");

    buf_free(&out);
    business_free(b);
}

int
main(void)
{
    test_columns();
    test_parse();
    test_aggregation();
    test_gauge_order();
    test_hostile();
    test_redefined();
    test_active();
    test_active_lies();

    return unit_report("business");
}
