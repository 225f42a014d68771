/*
 * Requests in flight in the sidecar: the newest snapshot per nginx (zone),
 * their sum per service and route, expiry, and snapshots whose counts lie.
 */

#include <stdint.h>
#include <string.h>

#include "unit.h"
#include "unit_expo.h"
#include "active_requests.h"
#include "buf.h"
#include "stats.h"

static const char *
render(active_requests_t *b, buf_t *out)
{
    return unit_render(active_requests_metrics, b, out);
}

static void
snapshot(active_requests_t *b, uint64_t zone, uint64_t version, int closed,
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
    active_requests_take(b, &h, "backend-api", 0, 1000);
}

static void
test_active(void)
{
    active_requests_t  *b = active_requests_new();
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
    active_requests_expire(b, 2000);
    text = render(b, &out);
    CHECK(strstr(text, "route=\"/slow\"") == NULL
          && strstr(text, "route=\"/killed\"") == NULL,
          "entries at 0 expire, and so do those of a zone silent for a TTL");

    buf_free(&out);
    active_requests_free(b);
}

/*
 * Counts that lie: one above what an nginx could hold drops the whole
 * snapshot (counted); the largest accepted ones, and overflow counts near
 * 2^64, sum without wrapping.
 */
static void
test_active_lies(void)
{
    active_requests_t         *b = active_requests_new();
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
    active_requests_take(b, &h, "backend-api", 0, 1000);
    text = render(b, &out);
    CHECK(strstr(text, "route=\"/slow\"} 3\n") != NULL,
          "a snapshot with an impossible count changes nothing");
    CHECK(obs_stats.decode_errors[DECODE_MALFORMED] == malformed + 1,
          "... and is counted as malformed");

    e[1].count = ACTIVE_MAX_IN_FLIGHT + 1;
    active_requests_take(b, &h, "backend-api", 0, 1000);
    CHECK(obs_stats.decode_errors[DECODE_MALFORMED] == malformed + 2,
          "one past the bound is impossible too");

    snapshot(b, 1, 11, 0, "/slow", ACTIVE_MAX_IN_FLIGHT);
    snapshot(b, 2, 11, 0, "/slow", ACTIVE_MAX_IN_FLIGHT);
    text = render(b, &out);
    CHECK(strstr(text, "route=\"/slow\"} 8589934590\n") != NULL,
          "the snapshot after a lie counts, and the largest counts sum "
          "exactly");

    h.active_zone = 3;
    h.active_version = 1;
    h.active_overflow = UINT64_MAX - 5;
    h.n_active = 0;
    active_requests_take(b, &h, "backend-api", 0, 1000);
    h.active_zone = 4;
    active_requests_take(b, &h, "backend-api", 0, 1000);
    text = render(b, &out);
    CHECK(strstr(text, "obs_active_requests_overflow_total "
                       "1.8446744073709552e+19\n") != NULL,
          "overflow counts saturate instead of wrapping (have 20 + 2 "
          "times 2^64-6)");

    buf_free(&out);
    active_requests_free(b);
}

int
main(void)
{
    test_active();
    test_active_lies();

    return unit_report("active_requests");
}
