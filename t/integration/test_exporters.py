#!/usr/bin/python3
"""Exporters end to end: real nginx + module -> obs-sidecar -> strict fake
Loki and OTLP receivers.  OTLP bodies are decoded by the OpenTelemetry JS
packages (t/helpers/js), never with the project's .proto files.

Covers the push schema and headers in both of Loki's formats (native
protobuf by default, decoded by loki-grpc-client's compiled logproto; JSON
with loki.format), the brief's log fields, spans per the HTTP semantic
conventions, trace ids equal to what the backend received, tail keep,
per-tenant X-Scope-OrgID, basic auth, retries on 503 and on 429 with
Retry-After, a receiver down for a minute with the spool, a slow receiver,
exactly-once in-order delivery (each fault in both formats), SIGTERM
draining, the file fallback, metrics-only mode and each signal switched
off, and a bounded load test: an exporter stalled while nginx is loaded
sheds (and counts) log lines and spans, never the metrics."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (obs_contract, ROOT, Stack, free_port,  # noqa
                     http_get, request, value, wait_for, main)

HELPERS = os.path.join(ROOT, "t", "helpers")

NGINX_HTTP = """
    obs_tenant $http_x_tenant_id;
    obs_trace_sample 0;
    log_format seen '$http_traceparent';
    server {
        listen 127.0.0.1:NGINX_PORT;
        location /api/ {
            obs_service_name backend-api;
            obs_route_auto on;
            obs_upstream_span on;
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
        location /api/dead {
            obs_service_name backend-api;
            obs_upstream_span on;
            proxy_pass http://127.0.0.1:1;
        }
        location /host/ {
            obs_service_name $host;
            proxy_pass http://127.0.0.1:BACKEND_PORT/api/;
        }
    }
    server {
        listen 127.0.0.1:BACKEND_PORT;
        obs off;
        access_log DIR/backend.log seen;
        location /api/ { return 200 "ok\\n"; }
        location /api/fail { return 503 "down\\n"; }
    }
"""


class Receivers:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(HELPERS, "fake_receivers.py"),
             str(self.port)], stdout=subprocess.PIPE, text=True)
        assert "ready" in self.proc.stdout.readline()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def state(self):
        return json.loads(http_get(self.url + "/state")[2])

    def control(self, **kw):
        http_get(self.url + "/control?" + "&".join(
            "%s=%s" % kv for kv in kw.items()))

    def lines(self):
        out = []
        for p in self.state()["loki"]:
            for s in p["push"]["streams"]:
                for v in s["values"]:
                    out.append((s["stream"], v, p["org"]))
        return out

    def spans(self):
        bodies = [p["body"] for p in self.state()["otlp"]]
        if not bodies:
            return []
        out = subprocess.run(
            ["node", os.path.join(HELPERS, "js", "otlp_decode.js")],
            input="\n".join(bodies), capture_output=True, text=True,
            check=True).stdout
        spans = []
        for req in json.loads(out):
            for rs in req["resourceSpans"]:
                res = {a["key"]: a["value"] for a in
                       rs["resource"]["attributes"]}
                for ss in rs["scopeSpans"]:
                    for sp in ss["spans"]:
                        sp["resource"] = res
                        sp["attrs"] = {a["key"]: list(a["value"].values())[0]
                                       for a in sp.get("attributes", [])}
                        spans.append(sp)
        return spans

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def exporter_stack(test, config, env=None, workers=2, args=(), stdout=None,
                   loki=True):
    rec = Receivers()
    test.addCleanup(rec.stop)
    cfg = {"loki": {"url": rec.url + "/loki/api/v1/push",
                    "batch_wait_ms": 200},
           "otlp": {"endpoint": rec.url, "batch_wait_ms": 200},
           "otlp_logs": {"endpoint": rec.url, "batch_wait_ms": 200}}
    if not loki:
        cfg["loki"] = {"batch_wait_ms": 200}
    for k, v in config.items():
        if isinstance(v, dict) and k in cfg:
            cfg[k].update(v)
        else:
            cfg[k] = v
    stack = Stack(NGINX_HTTP, sidecar_config=cfg, workers=workers,
                  sidecar_args=args)
    stack.nginx_http_config = NGINX_HTTP.replace("DIR", stack.dir)
    test.addCleanup(stack.stop)
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        stack.start_sidecar(stdout=stdout)
    finally:
        os.environ.clear()
        os.environ.update(old)
    stack.start_nginx()
    return stack, rec


def backend_traceparents(stack):
    with open(os.path.join(stack.dir, "backend.log")) as f:
        return [l.strip() for l in f if l.strip()]


class LokiAndOtlpTest(unittest.TestCase):

    def test_schema_fields_spans_and_trace_ids(self):
        stack, rec = exporter_stack(
            self, {"otlp": {"slow_ms": 60000}},
            env={"OTEL_SERVICE_NAME": "edge-gateway",
                 "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test"})
        tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        request(stack.gateway + "/api/users/7?token=secret",
                headers={"X-Tenant-ID": "acme", "traceparent": tp,
                         "User-Agent": "it/1.0"})
        request(stack.gateway + "/api/users/8",
                headers={"X-Tenant-ID": "acme"})
        request(stack.gateway + "/api/fail", headers={"X-Tenant-ID": "beta"})

        lines = wait_for(lambda: len(rec.lines()) == 3 and rec.lines(),
                         what="three log lines")
        self.assertEqual(rec.state()["errors"], [])
        # Loki's native push is the default
        self.assertEqual({p["format"] for p in rec.state()["loki"]},
                         {"protobuf"})
        by_path = {json.loads(v[1])["path"]: (st, v) for st, v, _ in lines}
        self.assertNotIn("secret", json.dumps(lines))

        st, v = by_path["/api/users/7"]
        line = json.loads(v[1])
        self.assertEqual(st, {"service": "backend-api", "level": "INFO",
                              "host": st["host"]})
        for field in ("timestamp", "level", "service", "trace_id", "span_id",
                      "tenant_id", "endpoint", "message", "latency_ms"):
            self.assertIn(field, line)
        self.assertRegex(line["timestamp"],
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736")
        self.assertEqual(line["tenant_id"], "acme")
        self.assertEqual(line["endpoint"], "/api/users/{id}")
        self.assertEqual(line["message"], "Request processed")
        self.assertEqual(line["user_agent"], "it/1.0")
        self.assertEqual(line["status"], 200)
        self.assertEqual(v[2], {"trace_id": line["trace_id"],
                                "tenant_id": "acme"})
        self.assertEqual(by_path["/api/fail"][0]["level"], "ERROR")

        # the backend saw the same trace ids as the logs
        seen = backend_traceparents(stack)
        logged = {json.loads(v[1])["trace_id"] for _, v, _ in lines}
        self.assertEqual({s.split("-")[1] for s in seen}, logged)

        # sampled request and the 5xx are exported, the unsampled 200 not
        spans = wait_for(lambda: len([s for s in rec.spans()
                                      if s["kind"] == 2]) == 2
                         and rec.spans(), what="two server spans")
        # OTLP bodies go uncompressed unless OTEL_EXPORTER_OTLP_COMPRESSION
        self.assertEqual({p["encoding"] for p in rec.state()["otlp"]},
                         {None})
        server = {s["attrs"]["url.path"]: s for s in spans if s["kind"] == 2}
        self.assertEqual(set(server), {"/api/users/7", "/api/fail"})
        s = server["/api/users/7"]
        self.assertEqual(s["name"], "GET /api/users/{id}")
        self.assertEqual(s["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736")
        self.assertEqual(s["parentSpanId"], "00f067aa0ba902b7")
        self.assertEqual(s["attrs"]["http.request.method"], "GET")
        self.assertEqual(s["attrs"]["http.route"], "/api/users/{id}")
        self.assertEqual(s["attrs"]["http.response.status_code"], "200")
        self.assertEqual(s["attrs"]["peer.service"], "backend-api")
        self.assertEqual(s["attrs"]["url.scheme"], "http")
        self.assertEqual(s["attrs"]["network.protocol.version"], "1.1")
        self.assertEqual(s["resource"]["service.name"]["stringValue"],
                         "edge-gateway")
        self.assertEqual(
            s["resource"]["deployment.environment"]["stringValue"], "test")
        self.assertNotIn("status", {k: v for k, v in s.items()
                                    if k == "status" and v.get("code")})
        self.assertEqual(server["/api/fail"]["status"]["code"], 2)

        # obs_upstream_span on: a CLIENT span whose id the backend saw
        client = [c for c in spans if c["kind"] == 3
                  and c["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736"]
        self.assertEqual(len(client), 1)
        self.assertEqual(client[0]["parentSpanId"], s["spanId"])
        self.assertIn("00-4bf92f3577b34da6a3ce929d0e0e4736-%s-01"
                      % client[0]["spanId"], seen)
        # HTTP client conventions: the address without its port, the port
        # apart, the backend's own status
        self.assertEqual(client[0]["attrs"]["server.address"], "127.0.0.1")
        self.assertEqual(client[0]["attrs"]["server.port"],
                         str(stack.backend_port))
        self.assertEqual(client[0]["attrs"]["http.response.status_code"],
                         "200")
        self.assertNotIn("error.type", client[0]["attrs"])

    def test_failed_attempt_has_error_type_and_no_status(self):
        """A refused connection gets nginx's 502, but the CLIENT span says
        why no response came instead of a status the backend never sent."""
        stack, rec = exporter_stack(self, {})
        self.assertEqual(request(stack.gateway + "/api/dead")[0], 502)
        spans = wait_for(lambda: [c for c in rec.spans() if c["kind"] == 3],
                         what="a client span")
        attrs = spans[0]["attrs"]
        self.assertEqual(attrs["error.type"], "connection_error")
        self.assertNotIn("http.response.status_code", attrs)
        self.assertEqual(attrs["server.address"], "127.0.0.1")
        self.assertEqual(attrs["server.port"], "1")
        self.assertEqual(spans[0]["status"]["code"], 2)

    def test_per_tenant_org_id_and_basic_auth(self):
        secret = tempfile.NamedTemporaryFile("w", delete=False)
        secret.write("s3cret\n")
        secret.close()
        self.addCleanup(os.unlink, secret.name)
        stack, rec = exporter_stack(self, {"loki": {
            "tenant_header": "per_tenant", "basic_user": "gw",
            "basic_password_file": secret.name}})
        for t in ("acme", "globex", "acme"):
            request(stack.gateway + "/api/x", headers={"X-Tenant-ID": t})
        lines = wait_for(lambda: len(rec.lines()) == 3 and rec.lines(),
                         what="three lines")
        for st, v, org in lines:
            self.assertEqual(org, json.loads(v[1])["tenant_id"])
        auths = {p["auth"] for p in rec.state()["loki"]}
        self.assertEqual(auths, {"Basic Z3c6czNjcmV0"})


    def test_a_forged_tenant_never_becomes_a_header(self):
        """Anyone who can write to the ingest socket picks the tenant: one
        with CR/LF or bytes a tenant id cannot hold goes under the org
        "invalid", and no header is injected."""
        import socket
        stack, rec = exporter_stack(self, {"loki": {
            "tenant_header": "per_tenant"}})
        record_pb2 = obs_contract.record_pb2()
        b = record_pb2.Batch()
        b.header.schema_version = 2
        b.header.pid = 77
        for tenant in (b"evil\r\nX-Injected: yes", b"\xff", b"ok-tenant",
                       b".", b".."):
            r = b.records.add()
            r.service = b"forged"
            r.method = b"GET"
            r.route = b"/x"
            r.status = 200
            r.tenant = tenant
            r.start_time_unix_nano = time.time_ns()
            r.duration_us = 1000
            r.trace_id = os.urandom(16)
            r.span_id = os.urandom(8)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sk:
            sk.sendto(b.SerializeToString(), stack.sock)
        lines = wait_for(lambda: len(rec.lines()) == 5 and rec.lines(),
                         what="five lines")
        self.assertEqual(sorted(org for _, _, org in lines),
                         ["invalid"] * 4 + ["ok-tenant"])
        # and /metrics still parses line by line (no raw CR in a label)
        self.assertEqual(value(stack.metrics(), "http_server_requests_total",
                               service="forged", tenant="ok-tenant"), 1)


class StreamLabelCapsTest(unittest.TestCase):
    """A hostile review: the service of `obs_service_name $host` (any Host
    header a client sends) and, with loki.tenant_header per_tenant, the
    tenant of `obs_tenant $http_x_tenant_id` reached Loki as stream labels
    and X-Scope-OrgIDs without the caps /metrics has, and so did the
    `service` of OTLP log records, which the collector makes a stream
    label: each new Host header was a new Loki stream.  They now take the
    metrics' verdict: the same values, past max_services / max_tenants
    (and the share of values made from requests) `__overflow__`, counted."""

    def test_streams_and_orgs_bounded_as_the_metrics(self):
        sys.path.insert(0, os.path.dirname(__file__))
        from test_otlp import attrs, decode, log_records  # noqa: E402
        import socket
        stack, rec = exporter_stack(self, {
            "max_services": 10, "max_tenants": 20, "exporter_threads": 2,
            "loki": {"tenant_header": "per_tenant"},
            "logs_exporter": "otlp"})
        gw = stack.gateway
        for i in range(30):
            request(gw + "/host/x", headers={"Host": "h%d.example" % i})
        for i in range(60):
            request(gw + "/api/x", headers={"X-Tenant-ID": "t%d" % i})

        # a forged record's control characters: one label in /metrics
        # ("ctl?"), so one stream in Loki, not one per byte
        record_pb2 = obs_contract.record_pb2()
        b = record_pb2.Batch()
        b.header.schema_version = 2
        b.header.pid = 78
        for c in range(1, 9):
            r = b.records.add()
            r.service = b"ctl" + bytes([c])
            r.method = b"GET"
            r.route = b"/x"
            r.status = 200
            r.start_time_unix_nano = time.time_ns()
            r.duration_us = 1000
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sk:
            sk.sendto(b.SerializeToString(), stack.sock)

        total = 30 + 60 + 8
        lines = wait_for(lambda: len(rec.lines()) == total and rec.lines(),
                         what="%d lines" % total)
        records = wait_for(lambda: (lambda r: len(r) == total and r)(
            log_records(decode("logs", [p["body"] for p in
                                        rec.state()["otlp_logs"]]))),
            what="%d log records" % total)
        m = stack.metrics()
        self.assertEqual(value(m, "http_server_requests_total"), total)

        def page(label):
            out = {}
            for (n, ls), v in m.items():
                if n == "http_server_requests_total":
                    k = dict(ls)[label]
                    out[k] = out.get(k, 0) + v
            return out

        def count(pairs):
            out = {}
            for k in pairs:
                out[k] = out.get(k, 0) + 1
            return out

        services = page("service")
        self.assertEqual(services["__overflow__"], 25)
        self.assertEqual(len([s for s in services
                              if s.endswith(".example")]), 5)
        self.assertEqual(services["ctl?"], 8)

        # Loki's streams: the metrics' services, line for line
        self.assertEqual(count(st["service"] for st, _, _ in lines),
                         services)
        # the line itself keeps what the request said (not a label)
        said = {json.loads(v[1])["service"] for st, v, _ in lines
                if st["service"] == "__overflow__"}
        self.assertEqual(len(said), 25)
        # OTLP log records' service (a stream label at the collector)
        self.assertEqual(count(attrs(r["attributes"])["service"]
                               for r in records), services)

        # per-tenant X-Scope-OrgIDs: the metrics' tenants
        tenants = page("tenant")
        self.assertEqual(len([t for t in tenants
                              if re.match(r"^t\d+$", t)]), 10)
        self.assertEqual(tenants["__overflow__"], 50)
        orgs = count(org for _, _, org in lines
                     if org.startswith("t") or org == "__overflow__")
        self.assertEqual(orgs, {t: n for t, n in tenants.items()
                                if t.startswith("t")
                                or t == "__overflow__"})
        # the tenant id stays in the line and its structured metadata
        self.assertEqual(len({v[2]["tenant_id"] for _, v, org in lines
                              if org == "__overflow__"}), 50)

        # counted, by destination and label
        self.assertEqual(value(m, "obs_exporter_overflow_total",
                               exporter="loki", label="service"), 25)
        self.assertEqual(value(m, "obs_exporter_overflow_total",
                               exporter="loki", label="tenant"), 50)
        self.assertEqual(value(m, "obs_exporter_overflow_total",
                               exporter="otlp_logs", label="service"), 25)


class DeliveryFaults:
    """One nginx worker, so that the order the sidecar receives records in
    is the order of the requests.  Run once per Loki format (FORMAT)."""

    FORMAT = None

    def exporter_stack(self, config, workers=1):
        config = json.loads(json.dumps(config))
        config.setdefault("loki", {})["format"] = self.FORMAT
        stack, rec = exporter_stack(self, config, workers=workers)
        self.addCleanup(self.check_format, rec)
        return stack, rec

    def check_format(self, rec):
        if rec.proc.poll() is None:
            self.assertEqual({p["format"] for p in rec.state()["loki"]},
                             {self.FORMAT})

    def sequence(self, rec):
        return [int(json.loads(v[1])["path"].rsplit("/", 1)[1])
                for _, v, _ in rec.lines()]

    def drive(self, stack, start, n):
        for i in range(start, start + n):
            request(stack.gateway + "/api/seq/%d" % i)

    def test_503_then_recovery_exactly_once_in_order(self):
        stack, rec = self.exporter_stack({})
        rec.control(fail=2, code=503)
        self.drive(stack, 1, 30)
        wait_for(lambda: len(rec.lines()) >= 30, timeout=30,
                 what="all lines after two 503s")
        time.sleep(1)
        self.assertEqual(self.sequence(rec), list(range(1, 31)))
        self.assertGreaterEqual(rec.state()["refused"], 2)
        m = stack.metrics()
        self.assertGreaterEqual(value(m, "obs_exporter_retries_total",
                                      exporter="loki"), 1)

    def test_a_redirect_keeps_the_data_and_says_so(self):
        """A 3xx is a configuration error: never followed, never a silent
        drop (it used to count every line `rejected`)."""
        stack, rec = self.exporter_stack({})
        rec.control(fail=2, code=308)
        self.drive(stack, 1, 10)
        wait_for(lambda: len(rec.lines()) >= 10, timeout=30,
                 what="every line after two redirects")
        self.assertEqual(self.sequence(rec), list(range(1, 11)))
        m = stack.metrics()
        self.assertGreaterEqual(value(m, "obs_exporter_redirects_total",
                                      exporter="loki"), 1)
        self.assertEqual(value(m, "obs_exporter_dropped_total",
                               exporter="loki", reason="rejected"), 0)
        with open(os.path.join(stack.dir, "sidecar.log")) as f:
            self.assertIn("HTTP 308: \"try later\": redirects are not "
                          "followed", f.read())

    def test_429_honours_retry_after(self):
        stack, rec = self.exporter_stack({})
        rec.control(fail=1, code=429, retry_after=3)
        t0 = time.time()
        self.drive(stack, 1, 5)
        wait_for(lambda: len(rec.lines()) >= 5, timeout=30,
                 what="lines after a 429")
        self.assertGreaterEqual(rec.state()["loki"][0]["time"] - t0, 3)
        self.assertEqual(self.sequence(rec), list(range(1, 6)))

    def test_slow_receiver(self):
        stack, rec = self.exporter_stack({})
        rec.control(delay=2)
        self.drive(stack, 1, 20)
        wait_for(lambda: len(rec.lines()) >= 20, timeout=60,
                 what="lines from a slow receiver")
        self.assertEqual(self.sequence(rec), list(range(1, 21)))

    def test_receiver_down_for_a_minute_with_spool(self):
        spool = tempfile.mkdtemp(prefix="obs-spool-")
        stack, rec = self.exporter_stack({"loki": {
            "spool_dir": spool, "spool_bytes": 10 * 1024 * 1024,
            "queue_bytes": 2048, "batch_bytes": 4096}})
        port = rec.port
        rec.stop()                      # Loki is down
        self.drive(stack, 1, 200)
        wait_for(lambda: (value(stack.metrics(), "obs_exporter_spooled_total",
                                exporter="loki") or 0) > 0,
                 timeout=30, what="payloads spooled to disk")
        self.assertTrue(os.listdir(spool))
        time.sleep(45)                  # a minute down in all
        rec.port = port
        rec.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(HELPERS, "fake_receivers.py"),
             str(port)], stdout=subprocess.PIPE, text=True)
        rec.proc.stdout.readline()
        self.drive(stack, 201, 10)
        wait_for(lambda: len(rec.lines()) >= 210, timeout=120, interval=1,
                 what="everything after recovery")
        time.sleep(1)
        self.assertEqual(self.sequence(rec), list(range(1, 211)))
        m = stack.metrics()
        self.assertEqual(sum(value(m, "obs_exporter_dropped_total",
                                   exporter="loki", reason=r) or 0
                             for r in ("queue_full", "spool_full",
                                       "rejected", "shutdown")), 0)
        wait_for(lambda: not os.listdir(spool), what="an empty spool")

    def test_sigterm_drains(self):
        stack, rec = self.exporter_stack({"loki": {"batch_wait_ms": 5000}})
        self.drive(stack, 1, 25)
        wait_for(lambda: value(stack.metrics(), "obs_records_received_total")
                 == 25, what="records in the sidecar")
        stack.sidecar.send_signal(signal.SIGTERM)
        self.assertEqual(stack.sidecar.wait(timeout=20), 0)
        self.assertEqual(self.sequence(rec), list(range(1, 26)))


class FailuresSaidOutLoudTest(unittest.TestCase):
    """Issue 25: a receiver that is down or refuses is named in the log
    with what it answered, and so is its recovery; receivers' answers
    never reach stdout, where the log lines go."""

    def test_loki_down_and_otlp_404_logged_with_their_recovery(self):
        loki_port = free_port()
        out = tempfile.TemporaryFile("w+")
        stack, rec = exporter_stack(self, {"loki": {
            "url": "http://127.0.0.1:%d/loki/api/v1/push" % loki_port}},
            stdout=out)
        rec.control(fail=1, code=404)
        for i in range(5):
            request(stack.gateway + "/api/fail/%d" % i)   # 5xx: traced
        log = os.path.join(stack.dir, "sidecar.log")

        def said(*texts):
            with open(log) as f:
                text = f.read()
            return all(t in text for t in texts)

        wait_for(lambda: said("loki: http://127.0.0.1:%d/loki/api/v1/push: "
                              "no answer: " % loki_port,
                              "otlp: %s/v1/traces refused" % rec.url,
                              "for good: HTTP 404: \"try later\""),
                 timeout=30, what="both failures in the log")
        loki = Receivers(loki_port)     # Loki comes up
        self.addCleanup(loki.stop)
        for i in range(5):
            request(stack.gateway + "/api/fail/y%d" % i)
        wait_for(lambda: len(loki.lines()) >= 5 and rec.spans(), timeout=60,
                 interval=1, what="lines and spans after the recovery")
        wait_for(lambda: said("loki: http://127.0.0.1:%d/loki/api/v1/push: "
                              "delivering again" % loki_port,
                              "otlp: %s/v1/traces: delivering again"
                              % rec.url), what="both recoveries logged")
        stack.sidecar.send_signal(signal.SIGTERM)
        stack.sidecar.wait(timeout=20)
        out.seek(0)
        self.assertEqual(out.read(), "")

    def test_stdout_holds_log_lines_only(self):
        out = tempfile.TemporaryFile("w+")
        stack, rec = exporter_stack(self, {}, stdout=out, loki=False)
        rec.control(fail=1000, code=404)
        for i in range(6):
            request(stack.gateway + "/api/fail/%d" % i)   # 5xx: traced
        wait_for(lambda: rec.state()["refused"] >= 1, timeout=30,
                 what="a refused span push")
        stack.sidecar.send_signal(signal.SIGTERM)
        stack.sidecar.wait(timeout=20)
        out.seek(0)
        lines = out.read().splitlines()
        self.assertEqual(len(lines), 6)
        for line in lines:
            self.assertIn("timestamp", json.loads(line))


class DeliveryFaultsProtobufTest(DeliveryFaults, unittest.TestCase):
    FORMAT = "protobuf"


class DeliveryFaultsJsonTest(DeliveryFaults, unittest.TestCase):
    FORMAT = "json"


class FileFallbackTest(unittest.TestCase):

    def test_logs_and_spans_go_to_files_without_receivers(self):
        d = tempfile.mkdtemp(prefix="obs-files-")
        logs, spans = os.path.join(d, "logs.jsonl"), os.path.join(d, "spans")
        stack = Stack(NGINX_HTTP, sidecar_args=["--logs-file", logs,
                                                "--spans-file", spans])
        stack.nginx_http_config = NGINX_HTTP.replace("DIR", stack.dir)
        self.addCleanup(stack.stop)
        stack.start_sidecar()
        stack.start_nginx()
        request(stack.gateway + "/api/fail")
        request(stack.gateway + "/api/ok")

        def read(path):
            with open(path) as f:
                return [json.loads(l) for l in f if l.strip()]

        got = wait_for(lambda: os.path.exists(logs) and len(read(logs)) == 2
                       and read(logs), what="two log lines in the file")
        self.assertEqual({l["path"] for l in got}, {"/api/fail", "/api/ok"})
        req = wait_for(lambda: os.path.exists(spans) and read(spans),
                       what="OTLP/JSON spans")
        span = req[0]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        self.assertEqual(span["name"], "GET /api/fail")
        self.assertRegex(span["traceId"], r"^[0-9a-f]{32}$")
        self.assertEqual(span["status"]["code"], 2)


def thread_names(pid):
    names = []
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            names.append(f.read().strip())
    return names


class SignalSwitchesTest(unittest.TestCase):
    """Logs and traces switched off by flag, environment and config key."""

    def drive_and_count(self, stack, n=10):
        for i in range(n):
            request(stack.gateway + "/api/fail/%d" % i)
        wait_for(lambda: value(stack.metrics(),
                               "http_server_requests_total") == n,
                 what="%d requests counted" % n)

    def test_metrics_only_does_no_exporter_work(self):
        for how in ("flags", "env", "config"):
            with self.subTest(how=how):
                stack, rec = exporter_stack(
                    self, {"logs": False, "traces": False}
                    if how == "config" else {},
                    env={"OBS_SIDECAR_LOGS": "off",
                         "OBS_SIDECAR_TRACES": "false"}
                    if how == "env" else None,
                    args=["--no-logs", "--no-traces"]
                    if how == "flags" else ())
                self.drive_and_count(stack)
                names = thread_names(stack.sidecar.pid)
                self.assertNotIn("obs-export", names)
                self.assertNotIn("obs-deliver", names)
                time.sleep(0.5)
                self.assertEqual(rec.state()["loki"], [])
                self.assertEqual(rec.state()["otlp"], [])
                m = stack.metrics()
                self.assertEqual(value(m, "obs_exporter_shed_total"), 0)
                self.assertEqual(value(m, "obs_exporter_sent_total"), 0)
                stack.stop()

    def test_logs_off_traces_on_and_threads(self):
        stack, rec = exporter_stack(
            self, {"exporter_threads": 3},
            env={"OBS_SIDECAR_LOGS": "off",
                 "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"})
        self.drive_and_count(stack, 6)
        wait_for(lambda: len([s for s in rec.spans() if s["kind"] == 2])
                 == 6, what="six 5xx server spans")
        self.assertEqual({p["encoding"] for p in rec.state()["otlp"]},
                         {"gzip"})
        self.assertEqual(rec.state()["loki"], [])
        self.assertEqual(thread_names(stack.sidecar.pid).count("obs-export"),
                         3)

    def test_traces_off_and_json_format_by_flag(self):
        stack, rec = exporter_stack(self, {}, args=[
            "--no-traces", "--loki-format", "json"])
        self.drive_and_count(stack, 4)
        wait_for(lambda: len(rec.lines()) == 4, what="four lines")
        time.sleep(0.5)
        self.assertEqual({p["format"] for p in rec.state()["loki"]},
                         {"json"})
        self.assertEqual(rec.state()["otlp"], [])

    def test_bad_settings_name_themselves(self):
        for args, env, text in (
                (["--exporter-threads", "0"], {}, "--exporter-threads"),
                (["--loki-format", "xml"], {}, "--loki-format"),
                ([], {"OBS_SIDECAR_LOGS": "maybe"}, "OBS_SIDECAR_LOGS"),
                # header names are tokens, values percent-decoded strictly
                ([], {"OTEL_EXPORTER_OTLP_HEADERS": "bad key=1"},
                 "OTEL_EXPORTER_OTLP_HEADERS: invalid entry \"bad key=1\""),
                ([], {"OTEL_EXPORTER_OTLP_HEADERS": "a:b=1"},
                 "invalid entry \"a:b=1\""),
                ([], {"OTEL_EXPORTER_OTLP_HEADERS": "k=%ZZ"},
                 "not followed by two hex digits"),
                ([], {"OTEL_EXPORTER_OTLP_HEADERS": "k=a%00b"},
                 "decodes to a control character"),
                ([], {"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "k=%0D%0AX: 1"},
                 "decodes to a control character")):
            out = subprocess.run(
                [os.path.join(ROOT, "build", "obs-sidecar"), "--check-config"]
                + args, env=dict(os.environ, **env), capture_output=True,
                text=True)
            self.assertEqual(out.returncode, 2)
            self.assertIn(text, out.stderr)

    def test_one_header_and_org_id_rule_for_every_destination(self):
        """Every destination's "headers" and X-Scope-OrgID settings are
        checked by the same rules: "." and ".." were accepted for Loki."""
        for cfg, text in (
                ({"loki": {"headers": {"X Bad": "1"}}}, "loki.headers.X Bad"),
                ({"remote_write": {"headers": {"X-A": "a\u0001b"}}},
                 "remote_write.headers.X-A"),
                ({"clickhouse": {"headers": {"A:B": "1"}}},
                 "clickhouse.headers.A:B"),
                ({"loki": {"tenant_header": "fixed", "org_id": ".."}},
                 "loki.org_id"),
                ({"remote_write": {"url": "http://127.0.0.1:1/",
                                   "tenant_header": "fixed", "org_id": "."}},
                 "remote_write.org_id"),
                ({"remote_write": {"url": "http://127.0.0.1:1/",
                                   "tenant_header": "per_tenant",
                                   "operator_tenant": "a/b"}},
                 "remote_write.operator_tenant")):
            with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
                json.dump(cfg, f)
                f.flush()
                out = subprocess.run(
                    [os.path.join(ROOT, "build", "obs-sidecar"),
                     "--check-config", "--config", f.name],
                    capture_output=True, text=True)
            self.assertEqual(out.returncode, 2, cfg)
            self.assertIn(text, out.stderr)


LOAD_HTTP = """
    obs_tenant $http_x_tenant_id;
    obs_trace_sample 1;
    server {
        listen 127.0.0.1:NGINX_PORT;
        access_log DIR/gateway.log;
        location /api/ {
            obs_service_name backend-api;
            obs_route_auto on;
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
    }
    server {
        listen 127.0.0.1:BACKEND_PORT;
        obs off;
        location /api/ { return 200 "ok\\n"; }
    }
"""


@unittest.skipUnless(shutil.which("wrk"), "wrk is not installed")
class StalledExporterLoadTest(unittest.TestCase):
    """wrk loads nginx on loopback for a bounded time while the log sink is
    a pipe nobody reads: the exporter stalls, log lines and spans are shed
    and counted, and the metrics still count every request nginx served."""

    def test_shed_counted_metrics_exact(self):
        d = tempfile.mkdtemp(prefix="obs-stall-")
        self.addCleanup(shutil.rmtree, d, True)
        fifo, spans = os.path.join(d, "logs.fifo"), os.path.join(d, "spans")
        os.mkfifo(fifo)
        # a reader exists (so the sidecar's open succeeds) but reads nothing
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, reader)
        stack = Stack(LOAD_HTTP, sidecar_config={
            "logs_file": fifo, "spans_file": spans,
            "exporter_queue_datagrams": 4,
            "loki": {"queue_bytes": 65536, "batch_wait_ms": 100},
            "otlp": {"queue_bytes": 65536, "batch_wait_ms": 100}})
        stack.nginx_http_config = LOAD_HTTP.replace("DIR", stack.dir)
        self.addCleanup(stack.stop)
        stack.start_sidecar()
        stack.start_nginx()

        subprocess.run(["wrk", "-t2", "-c16", "-d4s",
                        stack.gateway + "/api/items/1"],
                       capture_output=True, check=True)

        with open(os.path.join(stack.dir, "gateway.log")) as f:
            served = sum(1 for _ in f)
        wait_for(lambda: value(stack.metrics(), "http_server_requests_total")
                 == served, timeout=30,
                 what="every request nginx served counted (%d)" % served)
        m = stack.metrics()
        self.assertEqual(value(m, "obs_records_dropped_total") or 0, 0)
        shed_logs = value(m, "obs_exporter_shed_total", signal="logs")
        shed_spans = value(m, "obs_exporter_shed_total", signal="traces")
        self.assertGreater(shed_logs, 0)
        self.assertGreater(shed_spans, 0)

        # unstall: read the pipe; everything not shed arrives, exactly
        piped = bytearray()
        os.set_blocking(reader, True)

        def sent(m, exporter):
            return value(m, "obs_exporter_sent_total", exporter=exporter)

        def drained():
            if select_ready(reader):
                piped.extend(os.read(reader, 1 << 20))
            m = stack.metrics()
            return (sent(m, "loki") + shed_logs == served
                    and sent(m, "otlp") + shed_spans == served)
        wait_for(drained, timeout=60, interval=0.05,
                 what="lines and spans not shed delivered")
        while select_ready(reader):
            piped.extend(os.read(reader, 1 << 20))
        lines = piped.split(b"\n")
        self.assertEqual(lines.pop(), b"")
        self.assertEqual(len(lines) + shed_logs, served)
        self.assertEqual(len({json.loads(l)["span_id"] for l in lines}),
                         len(lines))
        with open(spans) as f:
            got = sum(len(r["scopeSpans"][0]["spans"])
                      for l in f for r in json.loads(l)["resourceSpans"])
        self.assertEqual(got + shed_spans, served)
        m = stack.metrics()
        self.assertEqual(value(m, "obs_exporter_dropped_total") or 0, 0)
        self.assertEqual(value(m, "http_server_requests_total"), served)


def select_ready(fd):
    import select
    return bool(select.select([fd], [], [], 0.2)[0])


if __name__ == "__main__":
    main()
