/*
 * Record -> series.  Every label value is sanitised, tenants, routes and
 * upstreams are bounded by their caps and the store by its series cap;
 * past a cap the value becomes "__overflow__" and the overflow is counted.
 * Values a request made (Record.from_request) take at most a share of the
 * caps of services, routes and tenants, and series with such labels a
 * share of the series cap: clients can never take the place of what the
 * configuration writes.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "active_requests.h"
#include "aggregate.h"
#include "business_metrics.h"
#include "label_rules.h"
#include "labels.h"
#include "stats.h"
#include "text.h"
#include "obs/v1/framing.h"

#define AGG_MADE_ALL  (OBS_FROM_REQUEST_ROUTE | OBS_FROM_REQUEST_SERVICE     \
                       | OBS_FROM_REQUEST_TENANT)

#define AGG_MAX_BOUNDS_SETS  64

typedef struct {
    char  service[LABEL_BUF_LEN];
    char  route[LABEL_BUF_LEN];
    char  tenant[LABEL_BUF_LEN];
    char  method[16];
    char  code[12];
    char  upstream[LABEL_BUF_LEN];
} agg_labels_t;

struct aggregator {
    store_t       *store;
    char          *default_service;
    dimension_t   *tenants;
    dimension_map_t  *routes;       /* per service */
    dimension_t   *upstreams;
    long           ttl;
    int            exemplars;
    business_t    *business;     /* obs_metric */
    active_requests_t  *active;  /* requests in flight */

    /* every bucket layout ever configured: old series still point at theirs */
    double        *bounds_sets[AGG_MAX_BOUNDS_SETS];
    int            n_bounds_sets;
    const double  *duration_bounds;
    int            n_duration_bounds;
    const double  *upstream_bounds;
    int            n_upstream_bounds;
};

static const double *agg_bounds(aggregator_t *a, const double *bounds,
    int n, const double *current, int n_current);
static void agg_method(const ProtobufCBinaryData *m, char *out);
static const char *agg_admit(dimension_t *d, const char *value,
    int from_request, time_t now, overflow_t kind);
static void agg_count(aggregator_t *a, family_id_t family,
    const store_label_t *labels, uint64_t delta, unsigned made, time_t now);
static void agg_observe(aggregator_t *a, family_id_t family,
    const store_label_t *labels, const double *bounds, int n_bounds, double v,
    const uint8_t *trace_id, const uint8_t *span_id, unsigned made,
    double now_f, time_t now);
static const char *agg_tenant(aggregator_t *a, const char *tenant,
    unsigned *made, time_t now);
static void agg_overflow_labels(family_id_t family,
    const store_label_t *labels, store_label_t *out, int keep_service);
static const char *agg_route(aggregator_t *a, agg_labels_t *l,
    unsigned *made, unsigned *over, time_t now);

aggregator_t *
aggregator_new(store_t *store, const config_t *cfg)
{
    aggregator_t  *a;

    a = calloc(1, sizeof(aggregator_t));
    if (a == NULL) {
        return NULL;
    }

    a->store = store;
    a->tenants = dimension_new(cfg->max_tenants);
    a->routes = dimension_map_new(cfg->max_services, cfg->max_routes);
    a->upstreams = dimension_new(cfg->max_routes);
    a->business = business_new(cfg->max_series);
    a->active = active_requests_new();

    if (a->tenants == NULL || a->routes == NULL || a->upstreams == NULL
        || a->business == NULL || a->active == NULL
        || aggregator_configure(a, cfg) != 0)
    {
        aggregator_free(a);
        return NULL;
    }

    return a;
}

void
aggregator_free(aggregator_t *a)
{
    int  i;

    if (a == NULL) {
        return;
    }

    dimension_free(a->tenants);
    dimension_map_free(a->routes);
    dimension_free(a->upstreams);
    business_free(a->business);
    active_requests_free(a->active);
    for (i = 0; i < a->n_bounds_sets; i++) {
        free(a->bounds_sets[i]);
    }
    free(a->default_service);
    free(a);
}

int
aggregator_configure(aggregator_t *a, const config_t *cfg)
{
    const double  *d, *u;
    char          *service;
    long           pct = cfg->from_request_percent;

    d = agg_bounds(a, cfg->duration_buckets, cfg->n_duration_buckets,
                   a->duration_bounds, a->n_duration_bounds);
    u = agg_bounds(a, cfg->upstream_buckets, cfg->n_upstream_buckets,
                   a->upstream_bounds, a->n_upstream_bounds);
    service = strdup(cfg->default_service);

    if (d == NULL || u == NULL || service == NULL) {
        free(service);
        return -1;
    }

    a->duration_bounds = d;
    a->n_duration_bounds = cfg->n_duration_buckets;
    a->upstream_bounds = u;
    a->n_upstream_bounds = cfg->n_upstream_buckets;

    free(a->default_service);
    a->default_service = service;
    a->ttl = cfg->series_ttl;
    a->exemplars = cfg->exemplars;

    dimension_set_caps(a->tenants, dimension_caps(cfg->max_tenants, pct));
    dimension_map_set_caps(a->routes, dimension_caps(cfg->max_services, pct),
                           dimension_caps(cfg->max_routes, pct));
    dimension_set_caps(a->upstreams, dimension_caps(cfg->max_routes, 100));
    store_set_max_series(a->store, cfg->max_series);
    store_set_share(a->store, dimension_caps(cfg->max_series, pct).share);
    business_set_max_series(a->business, cfg->max_series);
    business_set_share(a->business,
                       dimension_caps(cfg->max_series, pct).share);
    return 0;
}

void
aggregator_active(aggregator_t *a, const Obs__V1__BatchHeader *h,
    int trusted, time_t now)
{
    active_requests_take(a->active, h, a->default_service, trusted, now);
}

business_t *
aggregator_business(aggregator_t *a)
{
    return a->business;
}

active_requests_t *
aggregator_active_requests(aggregator_t *a)
{
    return a->active;
}

unsigned
aggregator_record(aggregator_t *a, const Obs__V1__Record *r, time_t now,
    double now_f)
{
    agg_labels_t    l;
    const char     *route, *tenant;
    store_label_t   service_l, route_l, tenant_l, method_l, upstream_l;
    store_label_t   req[LABELS_REQUESTS], dur[LABELS_DURATION];
    store_label_t   body[LABELS_REQUEST_BODY];
    store_label_t   up_dur[LABELS_UPSTREAM_DURATION];
    store_label_t   up_req[LABELS_UPSTREAM_REQUESTS];
    const uint8_t  *trace_id = NULL, *span_id = NULL;
    size_t          i, n;
    unsigned        made, over = 0;

    /* what the request made, then of that what the labels still hold */
    made = r->from_request & AGG_MADE_ALL;

    n = label_sanitize(r->service.data, r->service.len, l.service);
    if (n == 0) {
        snprintf(l.service, sizeof(l.service), "%s", a->default_service);
        made &= ~OBS_FROM_REQUEST_SERVICE;
    }

    label_sanitize(r->route.data, r->route.len, l.route);
    label_sanitize(r->tenant.data, r->tenant.len, l.tenant);
    agg_method(&r->method, l.method);

    route = agg_route(a, &l, &made, &over, now);
    tenant = agg_tenant(a, l.tenant, &made, now);
    if (tenant == LABEL_OVERFLOW) {
        over |= LABEL_OVER_TENANT;
    }

    if (a->exemplars && (r->trace_flags & 1) && r->trace_id.len == 16
        && r->span_id.len == 8)
    {
        trace_id = r->trace_id.data;
        span_id = r->span_id.data;
    }

    /*
     * Every label by name (families.def); the asserts make a label added
     * there a build error here until it is filled.  Each value is measured
     * once for all the families.
     */

    service_l = store_label(l.service);
    route_l = store_label(route);
    tenant_l = store_label(tenant);
    method_l = store_label(l.method);

    _Static_assert(LABELS_REQUESTS == 5, "http_server_requests' labels");
    req[LABEL_REQUESTS_service] = service_l;
    req[LABEL_REQUESTS_route] = route_l;
    req[LABEL_REQUESTS_method] = method_l;
    req[LABEL_REQUESTS_code] = (store_label_t) {
        l.code, text_u64(l.code, r->status)
    };
    req[LABEL_REQUESTS_tenant] = tenant_l;
    agg_count(a, FAMILY_REQUESTS, req, 1, made, now);

    _Static_assert(LABELS_DURATION == 4, "the duration's labels");
    dur[LABEL_DURATION_service] = service_l;
    dur[LABEL_DURATION_route] = route_l;
    dur[LABEL_DURATION_method] = method_l;
    dur[LABEL_DURATION_tenant] = tenant_l;
    agg_observe(a, FAMILY_DURATION, dur, a->duration_bounds,
                a->n_duration_bounds, (double) r->duration_us / 1e6,
                trace_id, span_id, made, now_f, now);

    /* both body families have the same labels in the same places */

    _Static_assert(LABELS_REQUEST_BODY == 3
                   && (int) LABELS_RESPONSE_BODY == (int) LABELS_REQUEST_BODY
                   && (int) LABEL_RESPONSE_BODY_service
                      == (int) LABEL_REQUEST_BODY_service
                   && (int) LABEL_RESPONSE_BODY_route
                      == (int) LABEL_REQUEST_BODY_route
                   && (int) LABEL_RESPONSE_BODY_tenant
                      == (int) LABEL_REQUEST_BODY_tenant,
                   "the body families' labels");
    body[LABEL_REQUEST_BODY_service] = service_l;
    body[LABEL_REQUEST_BODY_route] = route_l;
    body[LABEL_REQUEST_BODY_tenant] = tenant_l;
    agg_count(a, FAMILY_REQUEST_BODY, body, r->request_body_bytes, made,
              now);
    agg_count(a, FAMILY_RESPONSE_BODY, body, r->response_body_bytes, made,
              now);

    _Static_assert(LABELS_UPSTREAM_DURATION == 3
                   && LABELS_UPSTREAM_REQUESTS == 4,
                   "the upstream families' labels");
    up_dur[LABEL_UPSTREAM_DURATION_service] = service_l;
    up_dur[LABEL_UPSTREAM_DURATION_route] = route_l;
    up_req[LABEL_UPSTREAM_REQUESTS_service] = service_l;
    up_req[LABEL_UPSTREAM_REQUESTS_route] = route_l;

    for (i = 0; i < r->n_upstreams; i++) {
        const Obs__V1__UpstreamAttempt  *u = r->upstreams[i];

        if (r->upstream_name.len) {
            label_sanitize(r->upstream_name.data, r->upstream_name.len,
                           l.upstream);
        } else {
            label_sanitize(u->address.data, u->address.len, l.upstream);
        }

        upstream_l = store_label(agg_admit(a->upstreams, l.upstream, 0, now,
                                           OVERFLOW_UPSTREAM));

        /* no tenant label here */
        up_dur[LABEL_UPSTREAM_DURATION_upstream] = upstream_l;
        agg_observe(a, FAMILY_UPSTREAM_DURATION, up_dur, a->upstream_bounds,
                    a->n_upstream_bounds, (double) u->response_time_us / 1e6,
                    trace_id, u->span_id.len == 8 ? u->span_id.data : span_id,
                    made & ~OBS_FROM_REQUEST_TENANT, now_f, now);

        up_req[LABEL_UPSTREAM_REQUESTS_upstream] = upstream_l;
        up_req[LABEL_UPSTREAM_REQUESTS_code] = (store_label_t) {
            l.code, text_u64(l.code, u->status)
        };
        agg_count(a, FAMILY_UPSTREAM_REQUESTS, up_req, 1,
                  made & ~OBS_FROM_REQUEST_TENANT, now);
    }

    /* obs_metric observations, under the same bounded labels */
    business_record(a->business, r, l.service, route, tenant, made != 0,
                    now);

    return over;
}

void
aggregator_expire(aggregator_t *a, time_t now)
{
    size_t  n;

    n = store_expire(a->store, now - a->ttl);
    STATS_ADD(series_expired, n);

    dimension_expire(a->tenants, now - a->ttl);
    dimension_map_expire(a->routes, now - a->ttl);
    dimension_expire(a->upstreams, now - a->ttl);
    business_expire(a->business, now - a->ttl);
    active_requests_expire(a->active, now - a->ttl);
}

/*
 * Routes are bounded per service (max_routes), services by max_services;
 * past that cap the service too becomes "__overflow__" (and *over says
 * so).  A value that becomes "__overflow__" is no longer one a request
 * made (*made).
 */

static const char *
agg_route(aggregator_t *a, agg_labels_t *l, unsigned *made, unsigned *over,
    time_t now)
{
    int          service_over = 0, route_over = 0;
    const char  *route;

    route = dimension_map_admit(a->routes, l->service,
                                *made & OBS_FROM_REQUEST_SERVICE, l->route,
                                *made & OBS_FROM_REQUEST_ROUTE, now,
                                &service_over, &route_over);

    if (service_over) {
        STATS_INC(overflow[OVERFLOW_SERVICE]);
        snprintf(l->service, sizeof(l->service), "%s", LABEL_OVERFLOW);
        *over |= LABEL_OVER_SERVICE;
        *made &= ~(OBS_FROM_REQUEST_SERVICE | OBS_FROM_REQUEST_ROUTE);

    } else if (route_over) {
        STATS_INC(overflow[OVERFLOW_ROUTE]);
        *made &= ~OBS_FROM_REQUEST_ROUTE;
    }

    return route == LABEL_OVERFLOW ? LABEL_OVERFLOW : l->route;
}

/* Returns the current layout if unchanged, else a kept copy of the new one. */

static const double *
agg_bounds(aggregator_t *a, const double *bounds, int n,
    const double *current, int n_current)
{
    double  *copy;

    if (current && n == n_current
        && memcmp(bounds, current, sizeof(double) * (size_t) n) == 0)
    {
        return current;
    }

    if (a->n_bounds_sets == AGG_MAX_BOUNDS_SETS) {
        return NULL;
    }

    copy = malloc(sizeof(double) * (size_t) n);
    if (copy == NULL) {
        return NULL;
    }

    memcpy(copy, bounds, sizeof(double) * (size_t) n);
    a->bounds_sets[a->n_bounds_sets++] = copy;
    return copy;
}

/* Standard methods as they are; anything else is "_OTHER". */

static void
agg_method(const ProtobufCBinaryData *m, char *out)
{
    static const char  *known[] = {
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS",
        "TRACE", "PATCH", NULL
    };

    const char  **k;

    for (k = known; *k; k++) {
        if (m->len == strlen(*k) && memcmp(m->data, *k, m->len) == 0) {
            strcpy(out, *k);
            return;
        }
    }

    strcpy(out, "_OTHER");
}

/* A tenant's label: those the gateway gives (common/label_rules.h: none,
 * invalid, unverified) are a bounded set, never capped, so requests
 * without a (valid) tenant are never hidden under __overflow__; nor are
 * they values a request made (*made), nor is "__overflow__". */
static const char *
agg_tenant(aggregator_t *a, const char *tenant, unsigned *made, time_t now)
{
    const char  *v;

    if (tenant[0] == '\0') {
        *made &= ~OBS_FROM_REQUEST_TENANT;
        return TENANT_NONE;
    }
    if (tenant_from_gateway(tenant)) {
        *made &= ~OBS_FROM_REQUEST_TENANT;
        return tenant;
    }

    v = agg_admit(a->tenants, tenant, *made & OBS_FROM_REQUEST_TENANT, now,
                  OVERFLOW_TENANT);
    if (v == LABEL_OVERFLOW) {
        *made &= ~OBS_FROM_REQUEST_TENANT;
    }

    return v;
}

static const char *
agg_admit(dimension_t *d, const char *value, int from_request, time_t now,
    overflow_t kind)
{
    int          overflowed = 0;
    const char  *v;

    v = dimension_admit(d, value, from_request, now, &overflowed);
    if (overflowed) {
        STATS_INC(overflow[kind]);
        return LABEL_OVERFLOW;
    }

    return v;
}

/*
 * A record into a counter series; made: which of its labels a request
 * made (then the series takes the store's share, see agg_overflow_labels).
 */

static void
agg_count(aggregator_t *a, family_id_t family, const store_label_t *labels,
    uint64_t delta, unsigned made, time_t now)
{
    store_label_t  over[STORE_MAX_LABELS];
    int            rc;

    rc = store_add_measured(a->store, family, labels, delta, now, FAMILY_COUNT,
                            made != 0);

    if (rc == STORE_FULL) {
        STATS_INC(overflow[OVERFLOW_SERIES]);
        agg_overflow_labels(family, labels, over, 1);
        rc = store_add_measured(a->store, family, over, delta, now,
                                FAMILY_COUNT,
                                (made & OBS_FROM_REQUEST_SERVICE) != 0);
    }

    if (rc == STORE_FULL) {
        agg_overflow_labels(family, labels, over, 0);
        rc = store_add_measured(a->store, family, over, delta, now, 0, 0);
    }

    if (rc == STORE_NOMEM) {
        STATS_INC(store_nomem);
    }
}

/* A record into a histogram series, as agg_count(). */

static void
agg_observe(aggregator_t *a, family_id_t family, const store_label_t *labels,
    const double *bounds, int n_bounds, double v, const uint8_t *trace_id,
    const uint8_t *span_id, unsigned made, double now_f, time_t now)
{
    store_label_t  over[STORE_MAX_LABELS];
    int            rc;

    rc = store_observe_measured(a->store, family, labels, bounds, n_bounds,
                                v, trace_id, span_id, now_f, now,
                                FAMILY_COUNT, made != 0);

    if (rc == STORE_FULL) {
        STATS_INC(overflow[OVERFLOW_SERIES]);
        agg_overflow_labels(family, labels, over, 1);
        rc = store_observe_measured(a->store, family, over, bounds,
                                    n_bounds, v, trace_id, span_id, now_f,
                                    now, FAMILY_COUNT,
                                    (made & OBS_FROM_REQUEST_SERVICE) != 0);
    }

    if (rc == STORE_FULL) {
        agg_overflow_labels(family, labels, over, 0);
        rc = store_observe_measured(a->store, family, over, bounds,
                                    n_bounds, v, trace_id, span_id, now_f,
                                    now, 0, 0);
    }

    if (rc == STORE_NOMEM) {
        STATS_INC(store_nomem);
    }
}

/*
 * Past the series cap (or the share of series with labels made from
 * requests) a record still counts: in one series per service (and method
 * and code, both bounded sets) with the rest "__overflow__", while the
 * store has room for those (a service made from requests: within the
 * share); else in the one series of its family with every label
 * "__overflow__", for which the store always keeps room (FAMILY_COUNT
 * slots), so that max_series holds exactly.
 */

static void
agg_overflow_labels(family_id_t family, const store_label_t *labels,
    store_label_t *out, int keep_service)
{
    const family_t  *f = &store_families[family];
    int              i;

    for (i = 0; i < f->n_labels; i++) {
        if (keep_service
            && (strcmp(f->labels[i], "service") == 0
                || strcmp(f->labels[i], "method") == 0
                || strcmp(f->labels[i], "code") == 0))
        {
            out[i] = labels[i];
        } else {
            out[i] = store_label(LABEL_OVERFLOW);
        }
    }
}
