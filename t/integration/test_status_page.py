#!/usr/bin/env python3
"""The sidecar's status page end to end, in a real browser: nginx with the
module in front of a Python backend (latencies, business headers, a request
held in flight), hand-made datagrams with a hostile tenant and spread-out
durations, the sidecar, and Debian's chromium driven by puppeteer-core
(t/helpers/js/status_page.js).  The page must load with no console error and
no failed request, show exactly what /metrics says for the same instant,
sort and filter, render hostile labels as text, and write a screenshot under
build/.  /status.json is checked against its schema
(sidecar/status/status.schema.json); its parameters, size bound, headers
and auth are checked too, and metrics stay exact while the page is
polled under load."""

import base64
import http.server
import json
import math
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import jsonschema

sys.path.insert(0, os.path.dirname(__file__))
from harness import (BUILD, ROOT, Stack, http_get, main, request,  # noqa
                     wait_for)
from quiet_http import QuietHandler  # noqa: E402  (t/helpers, by harness)

JS = os.path.join(ROOT, "t", "helpers", "js")
SCHEMA = os.path.join(ROOT, "sidecar", "status", "status.schema.json")
SCREENSHOT = os.path.join(BUILD, "status-page.png")

HOSTILE_ROUTE = "<script>alert(1)</script>"
HOSTILE_SERVICE = '"><img src=x onerror=alert(2)>'
HOSTILE_TENANT = "<script>window.__xss=1;alert(3)</script>"
BUSINESS = {"http_server_recommendations_total",
            "http_server_cache_requests_total",
            "http_server_embedding_cache_age_seconds"}

HTTP = """
    obs_tenant $http_x_tenant_id;
    server {
        listen 127.0.0.1:NGINX_PORT;
        location /api/ {
            obs_service_name backend-api;
            obs_route_auto on;
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
        location = /api/v1/recommendations {
            obs_service_name ml-engine;
            obs_metric counter http_server_recommendations_total
                       $upstream_http_x_recommendations_count;
            obs_metric counter http_server_cache_requests_total 1
                       label=cache:$upstream_http_x_cache:HIT,MISS;
            obs_metric gauge http_server_embedding_cache_age_seconds
                       $upstream_http_x_embedding_cache_age;
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
        location /slow {
            obs_service_name ml-engine;
            obs_route /slow;
            proxy_read_timeout 120s;
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
        location /hostile {
            obs_service_name $http_x_svc;
            obs_route $http_x_route;
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
    }
"""


class Backend(QuietHandler):
    """Latency from the path, the demo services' business headers, and
    /slow held until the gate opens."""
    gate = threading.Event()
    protocol_version = "HTTP/1.0"

    def answer(self, code, headers=()):
        self.reply(code, b"ok\n", headers)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if "ms" in q:
            time.sleep(int(q["ms"]) / 1000)
        if url.path == "/slow":
            Backend.gate.wait(60)
            return self.answer(200)
        if url.path == "/api/v1/recommendations":
            return self.answer(200, [
                ("X-Recommendations-Count", q.get("n", "5")),
                ("X-Cache", q.get("cache", "HIT")),
                ("X-Embedding-Cache-Age", q.get("age", "42"))])
        if url.path.startswith("/api/fail"):
            return self.answer(503)
        if url.path.startswith("/api/limited"):
            return self.answer(429)
        if url.path.startswith("/api/missing"):
            return self.answer(404)
        return self.answer(201 if url.path.startswith("/api/orders")
                           else 200)

    do_POST = do_GET


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass        # the held request's client is gone at the end


def start_stack(sidecar_config):
    stack = Stack(HTTP, sidecar_config=sidecar_config)
    stack.sidecar_args = ["--logs-file", os.path.join(stack.dir, "logs.jsonl"),
                          "--spans-file",
                          os.path.join(stack.dir, "spans.jsonl")]
    backend = Server(("127.0.0.1", stack.backend_port), Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    stack.start_sidecar()
    stack.start_nginx()
    return stack, backend


def status_url(stack, path="/status"):
    return stack.metrics_url.replace("/metrics", path)


def status_json(stack, **params):
    url = status_url(stack, "/status.json")
    if params:
        url += "?" + urllib.parse.urlencode(params)
    return json.loads(http_get(url)[2])


# --- an independent reading of /metrics -----------------------------------

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def unescape(v):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n"
                  else m.group(1), v)


def scrape(stack):
    """[(name, {label: value}, value)] with label values unescaped."""
    out = []
    for line in http_get(stack.metrics_url)[2].decode().splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        labels = {k: unescape(v) for k, v in LABEL.findall(m.group(2) or "")}
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def histogram_quantile(q, buckets):
    """Prometheus' bucketQuantile over {le: cumulative count}."""
    bs = sorted(buckets.items())
    if len(bs) < 2 or bs[-1][0] != math.inf or bs[-1][1] == 0:
        return None
    rank = q * bs[-1][1]
    b = next((i for i, (_, c) in enumerate(bs[:-1]) if c >= rank),
             len(bs) - 1)
    if b == len(bs) - 1:
        return bs[-2][0]
    if b == 0 and bs[0][0] <= 0:
        return bs[0][0]
    start, below = (bs[b - 1][0], bs[b - 1][1]) if b else (0.0, 0.0)
    return start + (bs[b][0] - start) * ((rank - below) / (bs[b][1] - below))


def expected(samples):
    """What the page must show, from a scrape: per route, tenant, business
    row and destination."""
    def row():
        return {"requests": 0, "errors_5xx": 0, "errors_4xx": 0,
                "dur": {}, "up": {}, "in_flight": 0}
    routes, tenants, business, sent = {}, {}, {}, {}
    records = None
    for name, ls, v in samples:
        if name == "http_server_requests_total":
            for r in (routes.setdefault((ls["service"], ls["route"]), row()),
                      tenants.setdefault(ls["tenant"], row())):
                r["requests"] += v
                if ls["code"][0] in "45":
                    r["errors_%sxx" % ls["code"][0]] += v
        elif name == "http_server_request_duration_seconds_bucket":
            le = float(ls["le"])
            for r in (routes.setdefault((ls["service"], ls["route"]), row()),
                      tenants.setdefault(ls["tenant"], row())):
                r["dur"][le] = r["dur"].get(le, 0) + v
        elif name == "http_upstream_request_duration_seconds_bucket":
            r = routes.setdefault((ls["service"], ls["route"]), row())
            le = float(ls["le"])
            r["up"][le] = r["up"].get(le, 0) + v
        elif name == "http_server_active_requests" and v:
            routes.setdefault((ls["service"], ls["route"]),
                              row())["in_flight"] += v
        elif name == "obs_records_received_total":
            records = v
        elif name == "obs_exporter_sent_total":
            sent[ls["exporter"]] = v
        elif name in BUSINESS:
            extra = [k for k in ls if k not in ("service", "route", "tenant")]
            label = "%s=%s" % (extra[0], ls[extra[0]]) if extra else ""
            key = (name, ls["service"], ls["route"], label)
            if name.endswith("_total"):
                business[key] = business.get(key, 0) + v
            else:
                business[key] = max(business.get(key, -math.inf), v)
    for r in list(routes.values()) + list(tenants.values()):
        for q in ("p50", "p95", "p99"):
            r[q] = histogram_quantile(int(q[1:]) / 100, r["dur"])
        r["upstream_p95"] = histogram_quantile(0.95, r["up"])
        n = r["dur"].get(math.inf, 0)
        r["latency_good"] = r["dur"].get(0.5, 0) / n if n else None
    return routes, tenants, business, records, sent


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def send_datagrams(sock_path, pb):
    """Records nginx cannot make: a hostile tenant, and durations spread
    over every bucket (with exemplars)."""
    b = pb.Batch()
    b.header.schema_version = 1
    b.header.pid = 777
    b.header.sequence = 0
    b.header.worker_start_unix_nano = 1
    b.header.host = b"test-host"
    durations = [800, 3000, 8000, 20000, 60000, 90000, 200000, 400000,
                 600000, 900000, 2000000, 4000000, 8000000, 12000000]
    for i, d in enumerate(durations * 3):
        r = b.records.add()
        r.method = b"GET"
        r.service = b"synthetic"
        r.route = b"/spread/{id}"
        r.tenant = HOSTILE_TENANT.encode() if i % 2 else b"tenant_spread"
        r.status = [200, 200, 500, 404][i % 4]
        r.duration_us = d
        r.trace_id = bytes([i + 1] * 16)
        r.span_id = bytes([i + 1] * 8)
        r.trace_flags = 1
        a = r.upstreams.add()
        a.address = b"10.0.0.1:80"
        a.status = r.status
        a.response_time_us = d // 2
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(b.SerializeToString(), sock_path)
    return len(durations) * 3


def run_browser(*args, timeout=120):
    out = subprocess.run(["node", os.path.join(JS, "status_page.js")]
                         + list(args), capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode != 0:
        raise AssertionError("status_page.js failed: " + out.stderr[-3000:])
    return json.loads(out.stdout)


class StatusPageTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        Backend.gate.clear()
        cls.stack, cls.backend = start_stack({"status": {
            "window_seconds": 900,
            "grafana_url": "http://grafana.example:3000/",
            "trace_url": "http://jaeger.example:16686/trace/{trace_id}"}})
        cls.addClassCleanup(cls.stack.stop)
        cls.addClassCleanup(cls.backend.shutdown)
        cls.addClassCleanup(Backend.gate.set)

        out = tempfile.mkdtemp(prefix="obs-pb-")
        subprocess.check_call(["protoc", "-I", os.path.join(ROOT, "proto"),
                               "--python_out=" + out,
                               os.path.join(ROOT,
                                            "proto/obs/v1/record.proto")])
        sys.path.insert(0, out)
        from obs.v1 import record_pb2

        gw = cls.stack.gateway
        n = 0
        tenants = ["tenant_001", "tenant_002", "tenant_003", "acme", "globex"]
        for i in range(60):
            t = {"X-Tenant-ID": tenants[i % 5]}
            case = i % 6
            if case == 0:
                code = request(gw + "/api/v1/recommendations?cache=%s&n=%d"
                               % ("HIT" if i % 4 else "MISS", i % 7),
                               headers=t)[0]
            elif case == 1:
                code = request(gw + "/api/users/%d?ms=%d" % (i, i * 4),
                               headers=t)[0]
            elif case == 2:
                code = request(gw + "/api/orders", method="POST", body=b"{}",
                               headers=t)[0]
            elif case == 3:
                code = request(gw + "/api/fail", headers=t)[0]
            elif case == 4:
                code = request(gw + "/api/limited", headers=t)[0]
            else:
                code = request(gw + "/api/missing/%d" % i, headers=t)[0]
            assert code in (200, 201, 404, 429, 503), code
            n += 1
        code = request(gw + "/hostile", headers={
            "X-Svc": HOSTILE_SERVICE, "X-Route": HOSTILE_ROUTE,
            "X-Tenant-ID": "acme"})[0]
        assert code == 200, code
        n += 1
        n += send_datagrams(cls.stack.sock, record_pb2)

        # one request stays in flight while the page is looked at
        cls.slow = socket.create_connection(("127.0.0.1",
                                             cls.stack.nginx_port))
        cls.addClassCleanup(cls.slow.close)
        cls.slow.sendall(b"GET /slow HTTP/1.1\r\nHost: gw\r\n"
                         b"X-Tenant-ID: acme\r\n\r\n")

        def settled():
            samples = scrape(cls.stack)
            got = expected(samples)
            return (got[3] == n and got[0].get(("ml-engine", "/slow"),
                                               {}).get("in_flight") == 1
                    and samples)
        wait_for(settled, timeout=20, what="every record counted")
        stopped = time.time()
        wait_for(lambda: status_json(cls.stack)["time"] > stopped + 0.2,
                 timeout=15, what="a snapshot after the traffic")
        cls.samples = scrape(cls.stack)
        cls.records = n

    def test_page_in_a_real_browser(self):
        os.makedirs(BUILD, exist_ok=True)
        if os.path.exists(SCREENSHOT):
            os.unlink(SCREENSHOT)
        out = run_browser("check", status_url(self.stack), "orders",
                          "tenant_00", SCREENSHOT)
        log = out["log"]

        # loads clean: no console message above info, no failed request,
        # no dialog, nothing the hostile labels could have injected
        self.assertEqual([m for m in log["console"]
                          if m["type"] in ("error", "warn", "assert")], [])
        self.assertEqual(log["pageErrors"], [])
        self.assertEqual(log["failed"], [])
        self.assertEqual(log["dialogs"], [])
        self.assertTrue(all(urllib.parse.urlparse(r["url"]).netloc
                            == "127.0.0.1:%d" % self.stack.metrics_port
                            or r["url"].startswith("data:")
                            for r in log["requests"]), log["requests"])
        page = out["initial"]
        self.assertEqual(page["images"], 0)
        self.assertEqual(page["scripts"], ["/status.js"])
        self.assertIsNone(page["xss"])
        self.assertEqual(page["conn"], "live")

        # what it shows is /metrics at the same instant (no traffic since)
        routes, tenants, business, records, sent = expected(self.samples)
        self.assertGreater(page["snapshot"], 0)
        shown = {(r["data"]["service"], r["data"]["route"]): r
                 for r in page["routes"]}
        self.assertEqual(set(shown), set(routes))
        for key, want in routes.items():
            cells = shown[key]["cells"]
            for col in ("requests", "in_flight"):
                self.assertEqual(float(cells[col]["value"]), want[col],
                                 (key, col))
                self.assertEqual(cells[col]["text"],
                                 "{:,}".format(int(want[col])), (key, col))
            for col in ("p50", "p95", "p99", "upstream_p95",
                        "latency_good"):
                got = cells[col]["value"]
                self.assertTrue(close(float(got) if got else None,
                                      want[col]), (key, col, got, want[col]))
            total = want["requests"]
            for col, n in (("ratio_5xx", want["errors_5xx"]),
                           ("ratio_4xx", want["errors_4xx"])):
                got = cells[col]["value"]
                self.assertTrue(close(float(got) if got else None,
                                      n / total if total else None),
                                (key, col))
        # the colours follow the SLO: 5xx on /api/fail burns the budget
        self.assertEqual(shown[("backend-api", "/api/fail")]["cells"]
                         ["ratio_5xx"]["cls"], "bad")
        self.assertEqual(shown[("backend-api", "/api/orders")]["cells"]
                         ["ratio_5xx"]["cls"], "ok")
        self.assertEqual(shown[("synthetic", "/spread/{id}")]["cells"]
                         ["latency_good"]["cls"], "bad")

        # links: dashboards with the row's labels, the slowest trace
        spread = shown[("synthetic", "/spread/{id}")]
        self.assertIn("http://grafana.example:3000/d/obs-red/?var-service="
                      "synthetic&var-route=%2Fspread%2F%7Bid%7D",
                      spread["links"])
        # the 12 s requests (records 13, 27, 41): the last one's trace id
        self.assertIn("http://jaeger.example:16686/trace/" + "2a" * 16,
                      spread["links"])

        shown_t = {r["data"]["tenant"]: r for r in page["tenants"]}
        for tenant in ("acme", HOSTILE_TENANT, "tenant_spread"):
            self.assertEqual(float(shown_t[tenant]["cells"]["requests"]
                                   ["value"]), tenants[tenant]["requests"])
        self.assertEqual(len(page["tenants"]), min(10, len(tenants)))

        shown_b = {(r["texts"][0], r["texts"][2], r["texts"][3],
                    r["texts"][4]): r for r in page["business"]}
        self.assertEqual(set(shown_b), set(business))
        for key, want in business.items():
            self.assertEqual(float(shown_b[key]["cells"]["value"]["value"]),
                             want, key)

        self.assertEqual(float(page["cards"]["in_flight"]["value"]), 1)
        self.assertEqual(page["cards"]["records_rate"]["value"] != "", True)
        dests = {r["texts"][0]: r for r in page["destinations"]}
        self.assertTrue(sent)
        for name, n in sent.items():
            self.assertEqual(float(dests[name]["cells"]["sent"]["value"]), n)

        # hostile labels are text, exactly as sent
        hostile = shown[(HOSTILE_SERVICE, HOSTILE_ROUTE)]
        self.assertEqual(hostile["texts"][0], HOSTILE_SERVICE)
        self.assertEqual(hostile["texts"][1], HOSTILE_ROUTE)
        self.assertEqual(shown_t[HOSTILE_TENANT]["texts"][0], HOSTILE_TENANT)

        # sorting: by requests, both ways; by service
        def column(p, col):
            return [float(r["cells"][col]["value"]) for r in p["routes"]]
        self.assertEqual(out["byRequests"]["sortedRoutes"],
                         {"col": "requests", "order": "descending"})
        self.assertEqual(column(out["byRequests"], "requests"),
                         sorted(column(out["byRequests"], "requests"),
                                reverse=True))
        self.assertEqual(out["byRequestsAgain"]["sortedRoutes"]["order"],
                         "ascending")
        self.assertEqual(column(out["byRequestsAgain"], "requests"),
                         sorted(column(out["byRequests"], "requests")))
        services = [r["data"]["service"] for r in out["byService"]["routes"]]
        self.assertEqual(services, sorted(services))
        errs = [float(r["cells"]["errors"]["value"])
                for r in out["tenantsByErrors"]["tenants"]]
        self.assertEqual(errs, sorted(errs, reverse=True))
        self.assertEqual(out["tenantsByErrors"]["sortedTenants"],
                         {"col": "errors", "order": "descending"})
        self.assertGreater(errs[0], 0)

        # filtering: routes and business by route, tenants by tenant
        filtered = out["routeFiltered"]["routes"]
        self.assertEqual(sorted((r["data"]["service"], r["data"]["route"])
                                for r in filtered),
                         sorted(k for k in routes if "orders" in k[1]))
        self.assertEqual(out["routeFiltered"]["business"], [])
        self.assertEqual(len(out["routeCleared"]["routes"]), len(routes))
        self.assertEqual(sorted(r["data"]["tenant"]
                                for r in out["tenantFiltered"]["tenants"]),
                         sorted(t for t in tenants if "tenant_00" in t))
        self.assertGreater(out["polled"]["snapshot"], page["snapshot"])
        self.assertGreater(out["initial"]["sparklines"], 0)

        # the screenshot is there (and a PNG)
        with open(SCREENSHOT, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

    def test_json_follows_its_schema(self):
        with open(SCHEMA) as f:
            schema = json.load(f)
        jsonschema.Draft7Validator.check_schema(schema)
        for params in ({}, {"route": "api", "routes_sort": "p99",
                            "routes_order": "asc", "routes_limit": "3",
                            "routes_offset": "2"},
                       {"tenant": "<script>", "tenants_sort": "errors"},
                       {"business_sort": "value", "business_limit": "100"},
                       {"route": "no such route"}):
            data = status_json(self.stack, **params)
            jsonschema.validate(data, schema)
        data = status_json(self.stack, routes_limit="3", routes_offset="2",
                           routes_sort="requests")
        self.assertEqual(len(data["routes"]["rows"]), 3)
        self.assertEqual(data["routes"]["offset"], 2)
        full = status_json(self.stack, routes_sort="requests",
                           routes_limit="100")
        self.assertEqual(data["routes"]["rows"], full["routes"]["rows"][2:5])
        # the window started with the sidecar: totals are the window's
        self.assertEqual(full["window"]["start"], full["started"])
        self.assertEqual(full["total"]["window_requests"],
                         full["total"]["requests"])
        self.assertEqual(full["pipeline"]["records_received"], self.records)
        hostile = status_json(self.stack, tenant="<script>")
        self.assertEqual([r["tenant"] for r in hostile["tenants"]["rows"]],
                         [HOSTILE_TENANT])

    def test_bad_parameters_are_refused(self):
        for params in ({"routes_sort": "nope"}, {"routes_order": "up"},
                       {"routes_limit": "101"}, {"routes_limit": "0"},
                       {"tenants_offset": "-1"}, {"route": "x" * 257}):
            url = status_url(self.stack, "/status.json?"
                             + urllib.parse.urlencode(params))
            code, body = request(url)
            self.assertEqual(code, 400, params)
        self.assertEqual(request(status_url(self.stack, "/status.json"),
                                 method="POST", body=b"x")[0], 405)
        self.assertEqual(request(status_url(self.stack, "/status.nope"))[0],
                         404)

    def test_headers_and_no_inline_code(self):
        for path in ("/status", "/status.js", "/status.css", "/status.json"):
            status, headers, body = http_get(status_url(self.stack, path))
            self.assertEqual(status, 200)
            csp = headers["Content-Security-Policy"]
            self.assertIn("default-src 'none'", csp)
            self.assertIn("script-src 'self'", csp)
            self.assertNotIn("unsafe", csp)
            self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
        html = http_get(status_url(self.stack))[2].decode()
        self.assertEqual(re.findall(r"<script\b[^>]*>", html),
                         ['<script src="/status.js" defer>'])
        self.assertNotRegex(html, r"\son[a-z]+=|\sstyle=|<style|https?://")
        js = http_get(status_url(self.stack, "/status.js"))[2].decode()
        self.assertNotRegex(js, r"innerHTML|outerHTML|insertAdjacentHTML|"
                                r"document\.write|eval\(|new Function")

    def test_size_bound_is_kept(self):
        data = http_get(status_url(self.stack, "/status.json?routes_limit=100"
                                   "&tenants_limit=100&business_limit=100"))
        self.assertLess(len(data[2]), 2 * 1024 * 1024)


class StatusPageAuthTest(unittest.TestCase):
    """The page is behind /metrics' auth."""

    def test_basic_auth(self):
        pw = os.path.join(tempfile.mkdtemp(prefix="obs-pw-"), "pw")
        with open(pw, "w") as f:
            f.write("s3cret-pass\n")
        stack = Stack("", sidecar_config={"auth": {
            "basic_user": "ops", "basic_password_file": pw}})
        self.addCleanup(stack.stop)
        stack.start_sidecar()
        for path in ("/status", "/status.json", "/status.js"):
            self.assertEqual(request(status_url(stack, path))[0], 401)
        auth = {"Authorization": "Basic "
                + base64.b64encode(b"ops:s3cret-pass").decode()}
        wait_for(lambda: request(status_url(stack, "/status.json"),
                                 headers=auth)[0] == 200,
                 what="status.json with the password")


class StatusDestinationsTest(unittest.TestCase):
    """Remote-write and ClickHouse show their state: a receiver that is
    down makes remote-write `failing`, with the failures /metrics counts."""

    def test_receivers_down(self):
        with socket.socket() as s:       # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            dead = "http://127.0.0.1:%d/push" % s.getsockname()[1]
        stack = Stack("", sidecar_config={
            "logs_file": "/dev/null", "spans_file": "/dev/null",
            "remote_write": {"url": dead, "interval": "1s"},
            "clickhouse": {"url": dead, "interval_seconds": 1}})
        self.addCleanup(stack.stop)
        stack.start_sidecar()

        def failing():
            d = {x["name"]: x for x in
                 status_json(stack)["pipeline"]["destinations"]}
            return d.get("remote_write", {}).get("state") == "failing" and d
        dests = wait_for(failing, timeout=30, what="remote_write failing")
        self.assertEqual(dests["remote_write"]["mode"], "http")
        self.assertEqual(dests["clickhouse"]["mode"], "http")
        self.assertIn(dests["clickhouse"]["state"], ("idle", "failing"))
        self.assertEqual(dests["remote_write"]["last_success"], 0)
        self.assertGreater(dests["remote_write"]["requests_failed"], 0)


class StatusUnderLoadTest(unittest.TestCase):
    """Counts stay exact while the page is polled as fast as it goes."""

    def test_exact_while_polled(self):
        stack, backend = start_stack({})
        self.addCleanup(stack.stop)
        self.addCleanup(backend.shutdown)
        stop = threading.Event()
        polls = []

        def poll():
            while not stop.is_set():
                polls.append(http_get(status_url(stack, "/status.json"
                                                 "?routes_limit=100"))[0])
                http_get(status_url(stack))

        pollers = [threading.Thread(target=poll, daemon=True)
                   for _ in range(2)]
        for p in pollers:
            p.start()
        sent = [0]
        lock = threading.Lock()

        def drive(k):
            for i in range(150):
                assert request(stack.gateway + "/api/users/%d" % i,
                               headers={"X-Tenant-ID": "t%d" % k})[0] == 200
                with lock:
                    sent[0] += 1

        drivers = [threading.Thread(target=drive, args=(k,))
                   for k in range(4)]
        for d in drivers:
            d.start()
        for d in drivers:
            d.join()

        def counted():
            total = sum(v for n, _, v in scrape(stack)
                        if n == "http_server_requests_total")
            return total == sent[0] and total
        wait_for(counted, timeout=20, what="every request counted")
        stopped = time.time()
        wait_for(lambda: status_json(stack)["time"] > stopped,
                 timeout=15, what="a snapshot after the traffic")
        stop.set()
        for p in pollers:
            p.join()
        data = status_json(stack)
        self.assertEqual(data["total"]["requests"], 600)
        self.assertEqual(sum(v for n, _, v in scrape(stack)
                             if n == "obs_records_dropped_total"), 0)
        self.assertGreater(len(polls), 10)
        self.assertEqual(set(polls), {200})


if __name__ == "__main__":
    main()
