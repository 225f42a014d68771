#!/usr/bin/python3
"""Clients cannot push the configuration's labels into __overflow__.

A hostile review: 520 unauthenticated 404s to /api/aaa, /api/aab, ...
under obs_route_auto (or a regex location, whose route is the normalised
URI) filled the sidecar's max_routes, and the exact-match location
/api/v1/users then counted as route="__overflow__" for as long as the
attacker kept refreshing within series_ttl.  The module now says which
labels a request made (Record.from_request) and the sidecar gives those
half of each cap (from_request_percent): the configured route, service and
tenant keep series of their own, and every request is still counted."""

import itertools
import os
import string
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Stack, http_get, request, value, wait_for, main  # noqa

HTTP = """
    obs_tenant $http_x_tenant_id;
    server {
        listen 127.0.0.1:NGINX_PORT;
        obs_service_name backend-api;
        location = /api/v1/users {
            obs_tenant acme;
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
        location = /api/v1/orders {
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
        location /api/ {
            obs_route_auto on;
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
        location ~ ^/files/ {
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
        location /host/ {
            obs_service_name $host;
            obs_route /host;
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
        location = /health {
            obs_service_name ml-engine;
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
    }
    server {
        listen 127.0.0.1:BACKEND_PORT;
        obs off;
        location / { return 404 "no\\n"; }
        location = /api/v1/users { return 200 "users\\n"; }
        location = /api/v1/orders { return 200 "orders\\n"; }
        location = /health { return 200 "ok\\n"; }
    }
"""

# the sidecar's defaults but for max_services and max_tenants, kept small
# so that a flood of hosts and tenants is quick
CONFIG = {"max_services": 10, "max_tenants": 20, "logs_file": "/dev/null",
          "spans_file": "/dev/null"}


def names(n):
    """aaa, aab, ...: n paths no id normalisation touches."""
    letters = itertools.product(string.ascii_lowercase, repeat=3)
    return ["".join(t) for t in itertools.islice(letters, n)]


class LabelShare(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(HTTP, sidecar_config=CONFIG)
        try:
            cls.stack.start_sidecar()
            cls.stack.start_nginx()
        except Exception:
            cls.stack.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def settled(self, total):
        """/metrics once all `total` requests are counted."""
        return wait_for(lambda: (lambda m: m if value(
            m, "http_server_requests_total") == total else None)(
            self.stack.metrics()), what="%d requests counted" % total)

    def users(self, m):
        return value(m, "http_server_requests_total", service="backend-api",
                     route="/api/v1/users", code="200", tenant="acme") or 0

    def test_flood_of_routes(self):
        gw = self.stack.gateway
        m = self.stack.metrics()
        before = value(m, "http_server_requests_total") or 0
        users = self.users(m)

        # the review's 520 under obs_route_auto, then 520 more through a
        # regex location: 1040 routes made from requests, one service
        for name in names(520):
            self.assertEqual(request(gw + "/api/" + name)[0], 404)
        for name in names(520):
            self.assertEqual(request(gw + "/files/" + name)[0], 404)
        self.assertEqual(request(gw + "/api/v1/users")[0], 200)

        m = self.settled(before + 1041)
        self.assertEqual(self.users(m), users + 1,
                         "the configured route has its own series")
        made = {dict(ls)["route"] for (n, ls) in m
                if n == "http_server_requests_total"
                and dict(ls)["service"] == "backend-api"
                and dict(ls)["code"] == "404"
                and dict(ls)["route"] != "__overflow__"}
        self.assertEqual(len(made), 250,
                         "routes made from requests: half of max_routes")
        self.assertEqual(value(m, "http_server_requests_total",
                               service="backend-api", route="__overflow__",
                               code="404"), 1040 - 250,
                         "the rest counted under __overflow__")
        self.assertEqual(value(m, "obs_series_overflow_total",
                               dimension="route"), 1040 - 250)

        # the attacker refreshes: the configured route keeps its series
        for name in names(300):
            request(gw + "/api/" + name)
        self.assertEqual(request(gw + "/api/v1/users")[0], 200)
        m = self.settled(before + 1041 + 301)
        self.assertEqual(self.users(m), users + 2)

    def test_flood_of_hosts_and_tenants(self):
        gw = self.stack.gateway
        before = value(self.stack.metrics(),
                       "http_server_requests_total") or 0

        # obs_service_name $host: a client's Host header is a service
        for i in range(30):
            request(gw + "/host/x", headers={"Host": "h%d.example" % i})
        # obs_tenant $http_x_tenant_id: a client's header is a tenant
        for i in range(60):
            request(gw + "/api/v1/orders", headers={"X-Tenant-ID": "t%d" % i})
        self.assertEqual(request(gw + "/health")[0], 200)
        self.assertEqual(request(gw + "/api/v1/users")[0], 200)

        m = self.settled(before + 92)
        self.assertEqual(value(m, "http_server_requests_total",
                               service="ml-engine", route="/health"), 1,
                         "a configured service has its own series")
        hosts = {dict(ls)["service"] for (n, ls) in m
                 if n == "http_server_requests_total"
                 and dict(ls)["service"].endswith(".example")}
        self.assertEqual(len(hosts), 5, "hosts: half of max_services")
        self.assertEqual(value(m, "http_server_requests_total",
                               service="__overflow__"), 25)
        tenants = {dict(ls)["tenant"] for (n, ls) in m
                   if n == "http_server_requests_total"
                   and dict(ls)["route"] == "/api/v1/orders"
                   and dict(ls)["tenant"] != "__overflow__"}
        self.assertEqual(len(tenants), 10, "header tenants: half of 20")
        self.assertEqual(value(m, "http_server_requests_total",
                               route="/api/v1/orders",
                               tenant="__overflow__"), 50)
        self.assertEqual(value(m, "http_server_requests_total",
                               route="/api/v1/users", tenant="acme"), 1,
                         "the configured tenant keeps its series")


if __name__ == "__main__":
    main()
