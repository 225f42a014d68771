/*
 * obs_metric observations in the sidecar: value parsing, the name rules
 * nginx -t applies, observations of bad types, aggregation under caps, and
 * what /metrics then shows (their columns: test_columns_reader.c).
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "unit_expo.h"
#include "business_metrics.h"
#include "buf.h"
#include "stats.h"

static const char *
render(business_t *b, buf_t *out)
{
    return unit_render(business_metrics, b, out);
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

/* An observation under a tenant a request made (from_request) or not. */
static void
record_made(business_t *b, Obs__V1__MetricObservation *o,
    const char *tenant, int from_request)
{
    Obs__V1__Record  r = OBS__V1__RECORD__INIT;

    r.n_metrics = 1;
    r.metrics = &o;
    business_record(b, &r, "ml-engine", "/api/v1/recommendations", tenant,
                    from_request, 1000);
}

static void
record(business_t *b, Obs__V1__MetricObservation *o, const char *tenant)
{
    record_made(b, o, tenant, 0);
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
                    0, 1000);
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

    record(b, observation(&o, "recs", 2, "", "", "1"), "a");
    CHECK(business_rejected(b, BUSINESS_CONFLICT) == 1,
          "a counter's OpenMetrics family name cannot become a gauge");
    record(b, observation(&o, "hits_total", 1, "other", "x", "1"), "a");
    CHECK(business_rejected(b, BUSINESS_CONFLICT) == 2,
          "nor can its label change");

    /*
     * A gauge named like a part of another type's family: nginx -t refused
     * these, the sidecar took them (its own copy of the name rules lacked
     * that one); now both apply common/metric_names.c.
     */
    record(b, observation(&o, "recs_total", 2, "", "", "1"), "a");
    record(b, observation(&o, "queue_bucket", 2, "", "", "1"), "a");
    record(b, observation(&o, "http_server_requests_created", 2, "", "", "1"),
           "a");
    record(b, observation(&o, "jobs_info", 2, "", "", "1"), "a");
    CHECK(business_rejected(b, BUSINESS_INVALID_METRIC) == 4
          && business_rejected(b, BUSINESS_CONFLICT) == 2,
          "a gauge may not end in _total, _bucket, _created, _info (as "
          "nginx -t says)");
    record(b, observation(&o, "http_server_requests_total", 1, "", "", "1"),
           "a");
    record(b, observation(&o, "obs_x", 2, "", "", "1"), "a");
    record(b, observation(&o, "bad name", 2, "", "", "1"), "a");
    record(b, observation(&o, "count_no_suffix", 1, "", "", "1"), "a");
    record(b, observation(&o, "g", 2, "bad-label", "x", "1"), "a");
    record(b, observation(&o, "typed", 3, "", "", "1"), "a");
    CHECK(business_rejected(b, BUSINESS_INVALID_METRIC) == 4 + 6,
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

/*
 * Series whose labels a request made (a header tenant, a route from the
 * URI) take at most the share of max_series: those the configuration's
 * labels make keep room.
 */
static void
test_request_share(void)
{
    Obs__V1__MetricObservation  o;
    business_t                 *b = business_new(5);
    buf_t                       out = { 0 };
    char                        tenant[16];
    const char                 *text;
    int                         i;

    /* 2 of 5: the all-overflow series takes one, as past the cap */
    business_set_share(b, 2);

    for (i = 0; i < 6; i++) {
        snprintf(tenant, sizeof(tenant), "forged-%d", i);
        record_made(b, observation(&o, "recs_total", 1, "", "", "1"), tenant,
                    1);
    }
    record(b, observation(&o, "recs_total", 1, "", "", "1"), "acme");
    record(b, observation(&o, "recs_total", 1, "", "", "1"), "globex");

    text = render(b, &out);
    CHECK(strstr(text, "tenant=\"forged-1\"} 1\n") != NULL
          && strstr(text, "tenant=\"forged-2\"") == NULL,
          "series made from requests stop at the share");
    CHECK(strstr(text, "tenant=\"__overflow__\"} 4\n") != NULL,
          "the rest count in the all-overflow series");
    CHECK(strstr(text, "tenant=\"acme\"} 1\n") != NULL
          && strstr(text, "tenant=\"globex\"} 1\n") != NULL,
          "configured labels keep series of their own");

    business_expire(b, 2000);
    for (i = 0; i < 3; i++) {
        snprintf(tenant, sizeof(tenant), "again-%d", i);
        record_made(b, observation(&o, "recs_total", 1, "", "", "1"), tenant,
                    1);
    }
    text = render(b, &out);
    CHECK(strstr(text, "tenant=\"again-1\"} 1\n") != NULL
          && strstr(text, "tenant=\"again-2\"") == NULL,
          "expired series give their share back");

    buf_free(&out);
    business_free(b);
}

int
main(void)
{
    test_parse();
    test_aggregation();
    test_gauge_order();
    test_hostile();
    test_redefined();
    test_request_share();

    return unit_report("business");
}
