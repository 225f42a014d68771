#!/usr/bin/env python3
"""obs_metric and http_server_active_requests end to end: real nginx with the
module, the sidecar and a real Prometheus scraping it.  The backend is a
Python server that returns the headers the demo services send and holds
/slow/ requests until the test lets them go, so in-flight counts are known
exactly."""

import http.server
import os
import shutil
import signal
import sys
import threading
import time
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import Stack, main, value, wait_for  # noqa: E402
from quiet_http import QuietHandler  # noqa: E402  (t/helpers, by harness)
from test_remote_write import RealPrometheus  # noqa: E402

HTTP = """
    obs_tenant $http_x_tenant_id;
    server {
        listen 127.0.0.1:NGINX_PORT;
        location /api/v1/recommendations {
            obs_service_name ml-engine;
            obs_route /api/v1/recommendations;
            obs_metric counter recommendations_served_total
                       $upstream_http_x_recommendations_count;
            obs_metric counter embedding_cache_requests_total 1
                       label=result:$upstream_http_x_cache:HIT,MISS;
            obs_metric gauge embedding_cache_age_seconds
                       $upstream_http_x_embedding_cache_age;
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
        location /slow/ {
            obs_service_name backend-api;
            obs_route /slow;
            proxy_read_timeout 120s;
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
    }
"""


class Backend(QuietHandler):
    """Headers from the query; /slow/ waits for its gate."""
    gates = {}
    lock = threading.Lock()

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if url.path.startswith("/slow/"):
            with Backend.lock:
                gate = Backend.gates.setdefault(q["gate"], threading.Event())
            gate.wait(120)
        self.reply(200, b"ok\n",
                   [(h, q[k]) for h, k in (("X-Recommendations-Count", "n"),
                                           ("X-Cache", "cache"),
                                           ("X-Embedding-Cache-Age", "age"))
                    if k in q])


def gate(name):
    with Backend.lock:
        return Backend.gates.setdefault(name, threading.Event())


def start_backend(port, server_class=http.server.ThreadingHTTPServer):
    """Serves Backend on port from a thread of its own."""
    server = server_class(("127.0.0.1", port), Backend)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def open_gates():
    """Lets every request the backend holds go."""
    for g in list(Backend.gates.values()):
        g.set()


def stop_backend(server):
    server.shutdown()
    server.server_close()


class BusinessMetrics(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        # a second Prometheus takes the sidecar's remote-write
        cls.receiver = RealPrometheus(os.path.join(
            os.environ.get("TMPDIR", "/tmp"),
            "obs-business-rw-%d" % os.getpid()))
        cls.receiver.start()
        cls.stack = Stack(HTTP, workers=2,
                          sidecar_args=["--no-logs", "--no-traces"],
                          sidecar_config={"remote_write": {
                              "url": cls.receiver.url("api/v1/write"),
                              "interval": 1}})
        cls.backend = start_backend(cls.stack.backend_port)
        try:
            cls.stack.start_sidecar()
            cls.stack.start_nginx()
            cls.prom = cls.stack.start_prometheus(
                "  - job_name: obs\n    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n"
                % cls.stack.metrics_port, [])
        except Exception:
            cls.stack.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        open_gates()
        cls.stack.stop()
        cls.receiver.stop()
        shutil.rmtree(cls.receiver.base, ignore_errors=True)
        stop_backend(cls.backend)

    def get(self, path, tenant="t1"):
        req = urllib.request.Request(self.stack.gateway + path,
                                     headers={"X-Tenant-ID": tenant})
        with urllib.request.urlopen(req, timeout=130) as r:
            return r.read()

    def promql(self, expr):
        """{labels-tuple: value} of an instant query."""
        out = {}
        for s in self.prom.query("api/v1/query", query=expr)["result"]:
            m = dict(s["metric"])
            m.pop("__name__", None)
            m.pop("job", None)
            m.pop("instance", None)
            out[tuple(sorted(m.items()))] = float(s["value"][1])
        return out

    def prom_equals(self, expr, want, what):
        """Waits until Prometheus has scraped exactly want."""
        seen = {}

        def equal():
            seen["have"] = self.promql(expr)
            return seen["have"] == want
        try:
            wait_for(equal, timeout=45, what=what)
        except AssertionError:
            raise AssertionError("%s: want %r, have (at the end) %r"
                                 % (what, want, seen.get("have")))

    def test_counter_sums_what_the_upstream_returned(self):
        counts = [3, 0, 12, 7, 1, 25, 4, 9, 2, 8, 6, 10]
        for n in counts:
            self.get("/api/v1/recommendations?n=%d" % n, tenant="acme")
        self.prom_equals(
            'recommendations_served_total{tenant="acme"}',
            {(("route", "/api/v1/recommendations"), ("service", "ml-engine"),
              ("tenant", "acme")): float(sum(counts))},
            "recommendations")

    def test_remote_write_carries_business_series(self):
        for n in (4, 6, 11):
            self.get("/api/v1/recommendations?n=%d&cache=MISS&age=9" % n,
                     tenant="rw")

        def received():
            got = {}
            for expr in ('recommendations_served_total{tenant="rw"}',
                         'embedding_cache_requests_total{tenant="rw"}',
                         'embedding_cache_age_seconds{tenant="rw"}'):
                for r in self.receiver.query("api/v1/query",
                                             query=expr)["result"]:
                    got[r["metric"]["__name__"]] = float(r["value"][1])
            return got
        want = {"recommendations_served_total": 21.0,
                "embedding_cache_requests_total": 3.0,
                "embedding_cache_age_seconds": 9.0}
        wait_for(lambda: received() == want, timeout=30,
                 what="remote-write of the business series (have %r)"
                 % (received(),))

    def test_label_holds_only_declared_values(self):
        for c in ["HIT"] * 5 + ["MISS"] * 3 + ["STALE", "hit", "EXPIRED"]:
            self.get("/api/v1/recommendations?cache=" + c, tenant="cache")
        self.get("/api/v1/recommendations", tenant="cache")    # no X-Cache
        def key(result):
            return (("result", result), ("route", "/api/v1/recommendations"),
                    ("service", "ml-engine"), ("tenant", "cache"))
        self.prom_equals(
            'embedding_cache_requests_total{tenant="cache"}',
            {key("HIT"): 5.0, key("MISS"): 3.0, key("other"): 3.0,
             key("none"): 1.0},
            "cache label")

    def test_gauge_shows_the_last_value(self):
        for age in ("10", "3600.5", "42.25"):
            self.get("/api/v1/recommendations?age=" + age, tenant="gauge")
        self.prom_equals(
            'embedding_cache_age_seconds{tenant="gauge"}',
            {(("route", "/api/v1/recommendations"), ("service", "ml-engine"),
              ("tenant", "gauge")): 42.25},
            "gauge")

    def test_rejected_values_are_counted_not_observed(self):
        before = self.stack.metrics()
        for n in ("abc", "-3", "nan", "1e999", "0x10", "5"):
            self.get("/api/v1/recommendations?n=" + urllib.parse.quote(n),
                     tenant="reject")

        def rejected(samples, reason):
            return value(samples, "obs_business_rejected_total",
                         reason=reason) or 0

        def settled():
            m = self.stack.metrics()
            return m if value(m, "recommendations_served_total",
                              tenant="reject") == 5.0 else None

        after = wait_for(settled, what="the one valid value counted")
        self.assertEqual(rejected(after, "not_a_number")
                         - rejected(before, "not_a_number"), 2)   # abc, 0x10
        self.assertEqual(rejected(after, "negative")
                         - rejected(before, "negative"), 1)
        self.assertEqual(rejected(after, "not_finite")
                         - rejected(before, "not_finite"), 2)     # nan, 1e999
        self.prom_equals(
            'obs_business_rejected_total{reason="negative"} > 0',
            {(("reason", "negative"),): rejected(after, "negative")},
            "rejections scraped")

    def slow(self, name, n):
        threads = []
        for i in range(n):
            t = threading.Thread(target=self.get,
                                 args=("/slow/%s/%d?gate=%s" % (name, i, name),),
                                 daemon=True)
            t.start()
            threads.append(t)
        return threads

    def active(self):
        return self.promql('http_server_active_requests{route="/slow"}')

    def expect_active(self, n):
        key = (("route", "/slow"), ("service", "backend-api"))
        self.prom_equals('http_server_active_requests{route="/slow"}',
                         {key: float(n)}, "in flight")
        # the sidecar itself, exactly
        self.assertEqual(value(self.stack.metrics(),
                               "http_server_active_requests",
                               route="/slow"), float(n))

    def test_active_requests_exact_across_reload(self):
        first = self.slow("before", 4)
        self.expect_active(4)

        # a reload while they are in flight: the old workers keep counting
        os.kill(self.stack.nginx.pid, signal.SIGHUP)
        wait_for(lambda: "reconfiguring" in open(os.path.join(
            self.stack.dir, "logs", "error.log")).read() or True)
        time.sleep(1.0)
        second = self.slow("after", 3)
        self.expect_active(7)

        gate("before").set()
        for t in first:
            t.join(30)
        self.expect_active(3)

        gate("after").set()
        for t in second:
            t.join(30)
        self.expect_active(0)

    def test_active_requests_go_back_to_zero_when_idle(self):
        threads = self.slow("idle", 2)
        key = (("route", "/slow"), ("service", "backend-api"))
        wait_for(lambda: self.promql(
            'http_server_active_requests{route="/slow"}').get(key, 0) >= 2,
            what="two in flight")
        gate("idle").set()
        for t in threads:
            t.join(30)
        self.expect_active(0)


if __name__ == "__main__":
    main()
