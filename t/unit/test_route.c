/* Unit tests for route templates and tenant labels (obs_route.c). */

#include <string.h>

#include "obs_route.h"
#include "unit.h"


static int
route_is(const char *path, const char *expected)
{
    char    out[OBS_ROUTE_MAX_LEN];
    size_t  n;

    n = obs_route_normalize(path, strlen(path), out);

    return n == strlen(expected) && memcmp(out, expected, n) == 0;
}


static int
tenant_is(const char *value, size_t len, const char *expected)
{
    size_t       n;
    const char  *label;

    label = obs_tenant_label(value, len, &n);

    return n == strlen(expected) && memcmp(label, expected, n) == 0;
}


static void
test_routes(void)
{
    char  long_path[1000];

    CHECK(route_is("/api/v1/users", "/api/v1/users"), "static path kept");
    CHECK(route_is("/api/v1/users/42", "/api/v1/users/{id}"), "number");
    CHECK(route_is("/users/42/orders/7", "/users/{id}/orders/{id}"),
          "several numbers");
    CHECK(route_is("/o/550e8400-e29b-41d4-a716-446655440000",
                   "/o/{id}"), "uuid");
    CHECK(route_is("/o/550E8400-E29B-41D4-A716-446655440000",
                   "/o/{id}"), "uppercase uuid");
    CHECK(route_is("/blob/0123456789abcdef0123", "/blob/{id}"), "long hex");
    CHECK(route_is("/blob/deadbeef", "/blob/deadbeef"), "short hex kept");
    CHECK(route_is("/t/aZ3_kL9-pQ2rS7tU1vW8xY", "/t/{id}"), "long token");
    CHECK(route_is("/docs/getting-started-with-the-api", 
                   "/docs/getting-started-with-the-api"),
          "long word without digits kept");
    CHECK(route_is("/v2/items", "/v2/items"), "version segment kept");
    CHECK(route_is("/search?q=123", "/search"), "query string dropped");
    CHECK(route_is("/", "/"), "root");
    CHECK(route_is("", ""), "empty");
    CHECK(route_is("/a//b/", "/a//b/"), "slashes kept");

    /* segments are found eight bytes a step: separators at every offset */

    CHECK(route_is("/abcdefg/1", "/abcdefg/{id}"), "'/' at byte 8");
    CHECK(route_is("/abcdef/12", "/abcdef/{id}"), "'/' at byte 7");
    CHECK(route_is("/abcdefghijklmno/1", "/abcdefghijklmno/{id}"),
          "'/' at byte 16");
    CHECK(route_is("/1/2/3/4/5/6/7/8/9",
                   "/{id}/{id}/{id}/{id}/{id}/{id}/{id}/{id}/{id}"),
          "a '/' in every other byte");
    CHECK(route_is("/abcdefghijk?x=1/2", "/abcdefghijk"),
          "'?' inside a step, a '/' after it");
    CHECK(route_is("/abc/12345678901?/9", "/abc/{id}"),
          "'?' right after an id, in a later step");
    CHECK(route_is("/abc/12345678%2F", "/abc/12345678%2F"),
          "an escaped slash is no separator");
    CHECK(route_is("/abc/1234567890123/", "/abc/{id}/"),
          "an id ending a step, a trailing '/'");
    CHECK(route_is("/\xaf\xbf" "wxyz/1", "/\xaf\xbf" "wxyz/{id}"),
          "'/' and '?' with the top bit set are no separators");
    CHECK(route_is("/.>@0wxyz/1", "/.>@0wxyz/{id}"),
          "nor are the bytes beside '/' and '?'");

    memset(long_path, 'g', sizeof(long_path));
    long_path[0] = '/';
    {
        char    out[OBS_ROUTE_MAX_LEN];
        size_t  n = obs_route_normalize(long_path, sizeof(long_path), out);
        CHECK(n == OBS_ROUTE_MAX_LEN, "capped at the maximum length");
    }
}


static void
test_tenants(void)
{
    char  long_value[65];

    CHECK(tenant_is("tenant_001", 10, "tenant_001"), "plain tenant");
    CHECK(tenant_is("acme.eu-west:prod", 17, "acme.eu-west:prod"),
          "all allowed punctuation");
    CHECK(tenant_is("", 0, "none"), "empty");
    CHECK(tenant_is(NULL, 0, "none"), "absent");
    CHECK(tenant_is("bad tenant", 10, "invalid"), "space");
    CHECK(tenant_is("a\"b", 3, "invalid"), "quote");
    CHECK(tenant_is("caf\xc3\xa9", 5, "invalid"), "non-ASCII");
    CHECK(tenant_is("a\nb", 3, "invalid"), "newline");

    memset(long_value, 'a', sizeof(long_value));
    CHECK(tenant_is(long_value, 64, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                    "aaaaaaaaaaaaaaaaaaaaaaaa"), "64 bytes");
    CHECK(tenant_is(long_value, 65, "invalid"), "65 bytes");
    CHECK(tenant_is("none", 4, "invalid"), "reserved: none");
    CHECK(tenant_is("invalid", 7, "invalid"), "reserved: invalid");
    CHECK(tenant_is("__overflow__", 12, "invalid"), "reserved: __overflow__");
    CHECK(tenant_is("None", 4, "None"), "reserved labels are exact");
    CHECK(tenant_is("nonexistent", 11, "nonexistent"), "prefix of none kept");
}


int
main(void)
{
    test_routes();
    test_tenants();

    return unit_report("route");
}
