#!/usr/bin/python3
"""Every signal over OTLP: real nginx + module -> obs-sidecar -> strict
receivers that decode with independent definitions: the OpenTelemetry JS
packages' protobufjs code (t/helpers/js/otlp_decode.js, which also refuses a
body with fields it does not know) behind the fake OTLP/HTTP receiver
(t/helpers/fake_receivers.py) and behind an OTLP/gRPC receiver built on
Debian's python3-grpcio (t/helpers/grpc_receiver.py).

Checked: the duration histogram's count per tenant equals the requests sent
through nginx, its buckets, sums and exemplars equal /metrics', series keep
their identity and start time across pushes and a restart shows in the start
time, the caps' __overflow__ series, delta temporality, the sidecar's own
health; every log record equals its Loki line (and says, as the line does,
whether its trace was kept); every gRPC status class (OK, retryable, not
retryable, RESOURCE_EXHAUSTED with and without RetryInfo, partial success)
and receiver faults (down, slow, HTTP 429) give the documented counts, with
nothing lost silently; OTEL_METRICS_EXPORTER=otlp alone turns /metrics
off."""

import base64
import datetime
import json
import os
import signal
import subprocess
import sys
import time
import unittest
import urllib.error

sys.path.insert(0, os.path.dirname(__file__))
from harness import (ROOT, Stack, free_port, http_get, parse_text,  # noqa
                     request, value, wait_for, main)
from test_exporters import Receivers  # noqa: E402

HELPERS = os.path.join(ROOT, "t", "helpers")
BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5,
          7.5, 10]

NGINX_HTTP = """
    obs_tenant $http_x_tenant_id;
    obs_trace_sample 0.5;
    server {
        listen 127.0.0.1:NGINX_PORT;
        location /api/ {
            obs_service_name backend-api;
            obs_route_auto on;
            obs_log_field plan $http_x_plan;
            obs_metric counter http_server_recommendations_total
                       $upstream_http_x_count;
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
    }
    server {
        listen 127.0.0.1:BACKEND_PORT;
        obs off;
        location /api/ { add_header X-Count 3; return 200 "ok\\n"; }
        location /api/fail { return 503 "down\\n"; }
    }
"""


def decode(signal_name, bodies):
    """Bodies (base64) decoded by the OpenTelemetry JS packages."""
    if not bodies:
        return []
    out = subprocess.run(
        ["node", os.path.join(HELPERS, "js", "otlp_decode.js"), signal_name],
        input="\n".join(bodies), capture_output=True, text=True,
        check=True).stdout
    reqs = json.loads(out)
    for r in reqs:
        if "error" in r:
            raise AssertionError("%s body does not decode: %s"
                                 % (signal_name, r["error"]))
    return reqs


def anyvalue(v):
    for k in ("stringValue", "intValue", "doubleValue", "boolValue"):
        if k in v:
            return int(v[k]) if k == "intValue" else v[k]
    raise AssertionError("unexpected AnyValue %r" % v)


def attrs(kvs):
    return {a["key"]: anyvalue(a["value"]) for a in kvs or []}


class HttpReceiver(Receivers):
    """test_exporters' fake Loki and OTLP/HTTP receivers."""

    def bodies(self, key):
        return [p["body"] for p in self.state()[key]]

    def stop(self):
        if self.proc.poll() is None:
            super().stop()
        self.proc.stdout.close()


class GrpcReceiver:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.control_port = free_port()
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(HELPERS, "grpc_receiver.py"),
             str(self.port), str(self.control_port)],
            stdout=subprocess.PIPE, text=True)
        assert "ready" in self.proc.stdout.readline()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def state(self):
        return json.loads(http_get("http://127.0.0.1:%d/state"
                                   % self.control_port)[2])

    def control(self, **kw):
        http_get("http://127.0.0.1:%d/control?" % self.control_port
                 + "&".join("%s=%s" % kv for kv in kw.items()))

    def bodies(self, signal_name, accepted=True):
        return [r["body"] for r in self.state()["requests"]
                if r["signal"] == signal_name
                and (not accepted or r["answer"] == 0)]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()
        self.proc.stdout.close()


def start_stack(test, env, config=None, args=()):
    stack = Stack(NGINX_HTTP, sidecar_config=config or {}, sidecar_args=args)
    test.addCleanup(stack.stop)
    old = dict(os.environ)
    for k in list(os.environ):
        if k.startswith("OTEL_"):
            del os.environ[k]
    os.environ.update(env)
    try:
        stack.start_sidecar(stdout=subprocess.DEVNULL)
    finally:
        os.environ.clear()
        os.environ.update(old)
    stack.start_nginx()
    return stack


def send(stack, tenant, n, path="/api/items/1", plan=None):
    for _ in range(n):
        h = {"X-Tenant-ID": tenant}
        if plan:
            h["X-Plan"] = plan
        request(stack.gateway + path, headers=h)


def sidecar_exporter(stack, name, what="sent"):
    s = stack.metrics()
    if what == "sent":
        return value(s, "obs_exporter_sent_total", exporter=name) or 0
    return value(s, "obs_exporter_dropped_total", exporter=name,
                 reason=what) or 0


def metric_points(reqs, name):
    """[(metric, point)] of every push, in push order."""
    out = []
    for r in reqs:
        for rm in r.get("resourceMetrics", []):
            for sm in rm.get("scopeMetrics", []):
                for m in sm.get("metrics", []):
                    if m["name"] != name:
                        continue
                    kind = next(k for k in ("sum", "gauge", "histogram")
                                if k in m)
                    for p in m[kind].get("dataPoints", []):
                        out.append((m, p))
    return out


def log_records(reqs):
    out = []
    for r in reqs:
        for rl in r.get("resourceLogs", []):
            res = attrs(rl["resource"]["attributes"])
            for sl in rl.get("scopeLogs", []):
                for lr in sl.get("logRecords", []):
                    lr["resource"] = res
                    out.append(lr)
    return out


def page_bucket(samples, labels, bound):
    """A cumulative bucket of the page, its le read as a number."""
    want = set(labels.items())
    for (n, ls), v in samples.items():
        if n != "http_server_request_duration_seconds_bucket":
            continue
        d = dict(ls)
        if want <= set(ls) and float(d["le"]) == bound:
            return v
    return None


def rfc3339_ns(ts):
    t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    return int(t.timestamp()) * 10 ** 9 + t.microsecond * 1000


class OtlpHttpTest(unittest.TestCase):
    """OTLP/HTTP protobuf for metrics, logs and traces, beside Loki and
    /metrics."""

    def setUp(self):
        self.rec = HttpReceiver()
        self.addCleanup(self.rec.stop)
        self.stack = start_stack(self, {
            "OTEL_METRICS_EXPORTER": "prometheus,otlp",
            "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.rec.url,
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            "OTEL_SERVICE_NAME": "gw-test",
        }, {"loki": {"url": self.rec.url + "/loki/api/v1/push",
                     "batch_wait_ms": 200},
            "otlp": {"batch_wait_ms": 200},
            "otlp_logs": {"batch_wait_ms": 200}})

    def test_metrics_match_what_was_sent_and_metrics_page(self):
        sent = {"acme": 7, "globex": 4}
        for tenant, n in sent.items():
            send(self.stack, tenant, n)
        send(self.stack, "acme", 2, path="/api/fail")
        sent["acme"] += 2

        def settled():
            s = self.stack.metrics()
            if value(s, "obs_records_received_total") != 13:
                return None
            pushed = sidecar_exporter(self.stack, "otlp_metrics")
            time.sleep(1.2)             # one more push after the count
            return sidecar_exporter(self.stack, "otlp_metrics") > pushed
        wait_for(settled, timeout=30, what="a push after every record")

        page = http_get(self.stack.metrics_url)[2].decode()
        om = http_get(self.stack.metrics_url + "?format=openmetrics")[2]
        samples = parse_text(page)
        reqs = decode("metrics", self.rec.bodies("otlp_metrics"))
        self.assertTrue(reqs)

        res = attrs(reqs[-1]["resourceMetrics"][0]["resource"]["attributes"])
        self.assertEqual(res["service.name"], "gw-test")

        points = metric_points(reqs, "http.server.request.duration")
        last = {}
        for m, p in points:
            self.assertEqual(m["unit"], "s")
            self.assertEqual(m["histogram"]["aggregationTemporality"], 2)
            a = attrs(p["attributes"])
            key = tuple(sorted(a.items()))
            if key in last:
                # one series, one start time, however many pushes
                self.assertEqual(last[key]["startTimeUnixNano"],
                                 p["startTimeUnixNano"])
                self.assertGreaterEqual(int(p["timeUnixNano"]),
                                        int(last[key]["timeUnixNano"]))
            last[key] = p

        by_tenant = {}
        for key, p in last.items():
            a = dict(key)
            self.assertEqual(set(a), {"peer.service", "http.route",
                                      "http.request.method", "tenant.id"})
            self.assertEqual([float(b) for b in p["explicitBounds"]],
                             BOUNDS)
            by_tenant[a["tenant.id"]] = by_tenant.get(a["tenant.id"], 0) + \
                int(p["count"])
            # the page's buckets (cumulative), sum and count, series by series
            labels = {"service": a["peer.service"],
                      "route": a["http.route"],
                      "method": a["http.request.method"],
                      "tenant": a["tenant.id"]}
            cum = 0
            for i, c in enumerate(p["bucketCounts"]):
                cum += int(c)
                le = BOUNDS[i] if i < len(BOUNDS) else float("inf")
                self.assertEqual(cum, page_bucket(samples, labels, le),
                                 (labels, le))
            self.assertEqual(int(p["count"]), value(
                samples, "http_server_request_duration_seconds_count",
                **labels))
            self.assertAlmostEqual(p["sum"], value(
                samples, "http_server_request_duration_seconds_sum",
                **labels), places=9)
            # exemplars: the page's trace ids
            for ex in p.get("exemplars", []):
                self.assertIn(ex["traceId"].encode(), om)
                self.assertEqual(len(ex["spanId"]), 16)
        self.assertEqual(by_tenant, sent)

        # requests by status code, with the semantic-convention names
        codes = {}
        for m, p in metric_points(reqs[-1:], "http.server.requests"):
            self.assertTrue(m["sum"]["isMonotonic"])
            a = attrs(p["attributes"])
            codes[(a["tenant.id"], a["http.response.status_code"])] = \
                p["asDouble"]
        self.assertEqual(codes, {("acme", 200): 7, ("acme", 503): 2,
                                 ("globex", 200): 4})

        # business metrics, requests in flight, the sidecar's own health
        biz = metric_points(reqs[-1:], "http_server_recommendations")
        self.assertEqual(sum(p["asDouble"] for _, p in biz), 33)
        active = metric_points(reqs[-1:], "http.server.active_requests")
        self.assertTrue(active)
        self.assertFalse(active[0][0]["sum"]["isMonotonic"])
        rec = metric_points(reqs[-1:], "obs_records_received")
        self.assertEqual(rec[0][1]["asDouble"], 13)

    def test_logs_match_loki_lines(self):
        for i in range(6):
            send(self.stack, "acme", 1, path="/api/items/%d" % i,
                 plan="gold")
        send(self.stack, "globex", 2, path="/api/fail")

        wait_for(lambda: sidecar_exporter(self.stack, "otlp_logs") == 8
                 and sidecar_exporter(self.stack, "loki") == 8,
                 what="8 lines both ways")
        wait_for(lambda: sidecar_exporter(self.stack, "otlp") > 0,
                 what="spans")
        time.sleep(0.5)

        lines = []
        for p in self.rec.state()["loki"]:
            for s in p["push"]["streams"]:
                for v in s["values"]:
                    lines.append(json.loads(v[1]))
        records = log_records(decode("logs", self.rec.bodies("otlp_logs")))
        spans = set()
        for r in decode("traces", self.rec.bodies("otlp")):
            for rs in r["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    for sp in ss["spans"]:
                        spans.add(sp["spanId"])
        self.assertEqual(len(lines), 8)
        self.assertEqual(len(records), 8)

        by_span = {r["spanId"]: r for r in records}
        kept = 0
        for line in lines:
            r = by_span[line["span_id"]]
            self.assertEqual(r["traceId"], line["trace_id"])
            self.assertEqual(int(r["timeUnixNano"]) // 10 ** 6,
                             rfc3339_ns(line["timestamp"]) // 10 ** 6)
            self.assertEqual(r["severityText"], line["level"])
            self.assertEqual(r["severityNumber"],
                             {"INFO": 9, "WARN": 13, "ERROR": 17}[
                                 line["level"]])
            self.assertEqual(r["body"], {"stringValue": line["message"]})
            rest = {k: v for k, v in line.items()
                    if k not in ("timestamp", "level", "message", "trace_id",
                                 "span_id")}
            self.assertEqual(attrs(r["attributes"]), rest)
            # the line and the record say whether the span was exported
            self.assertEqual(line["trace_kept"], line["span_id"] in spans)
            self.assertEqual(r.get("flags", 0) & 1,
                             1 if line["trace_kept"] else 0)
            kept += line["trace_kept"]
        self.assertEqual(lines[0].get("plan") or lines[-1].get("plan"),
                         "gold")
        self.assertGreaterEqual(kept, 2)        # the two 5xx at least
        self.assertEqual(records[0]["resource"]["service.name"], "gw-test")


COLLECTOR = os.path.join(ROOT, "deploy", "k8s-otel-collector",
                         "collector.yaml")


def collector_view(reqs):
    """The page's samples as the collector variant gives them to Prometheus:
    the transform/gateway statements of the shipped collector.yaml applied
    to the decoded points (the forms it uses: set a name where it is
    another, copy an attribute, delete one), then OpenTelemetry's
    Prometheus names (dots to underscores, the unit's suffix, _total for
    monotonic sums, _bucket/_sum/_count)."""
    import re
    import yaml
    with open(COLLECTOR) as f:
        cfg = yaml.safe_load(f)
    renames, copies, deletes = {}, [], []
    for block in cfg["processors"]["transform/gateway"]["metric_statements"]:
        for st in block["statements"]:
            m = re.match(r'set\(name, "([^"]+)"\) where name == "([^"]+)"$',
                         st)
            if m:
                renames[m.group(2)] = m.group(1)
                continue
            m = re.match(r'set\(attributes\["([^"]+)"\], attributes'
                         r'\["([^"]+)"\]\)', st)
            if m:
                copies.append((m.group(1), m.group(2)))
                continue
            m = re.match(r'delete_key\(attributes, "([^"]+)"\)$', st)
            if m:
                deletes.append(m.group(1))
    out = {}
    for r in reqs[-1:]:
        for rm in r["resourceMetrics"]:
            for sm in rm["scopeMetrics"]:
                for m in sm["metrics"]:
                    name = renames.get(m["name"], m["name"]).replace(".", "_")
                    unit = {"s": "seconds", "By": "bytes"}.get(
                        m.get("unit", ""), "")
                    if unit and not name.endswith("_" + unit) \
                            and "_" + unit + "_" not in name + "_":
                        name += "_" + unit
                    kind = next(k for k in ("sum", "gauge", "histogram")
                                if k in m)
                    for p in m[kind].get("dataPoints", []):
                        a = attrs(p.get("attributes"))
                        for to, frm in copies:
                            if frm in a:
                                a[to] = str(a[frm])
                        for k in deletes:
                            a.pop(k, None)
                        labels = frozenset((k, str(v)) for k, v in a.items())
                        if kind == "histogram":
                            out[(name + "_count", labels)] = int(p["count"])
                            out[(name + "_sum", labels)] = p["sum"]
                        elif kind == "sum" and m["sum"].get("isMonotonic"):
                            out[(name + "_total", labels)] = p["asDouble"]
                        else:
                            out[(name, labels)] = p["asDouble"]
    return out


class OtlpHttpFaultsTest(unittest.TestCase):
    """OTLP/HTTP: partial success, 429, temporality, restarts, caps."""

    def stack_with(self, env, config=None):
        self.rec = HttpReceiver()
        self.addCleanup(self.rec.stop)
        e = {"OTEL_METRICS_EXPORTER": "prometheus,otlp",
             "OTEL_EXPORTER_OTLP_ENDPOINT": self.rec.url,
             "OTEL_METRIC_EXPORT_INTERVAL": "500"}
        e.update(env)
        self.env = e
        self.config = config or {}
        self.stack = start_stack(self, e, self.config)

    def test_partial_success_and_429(self):
        self.stack_with({"OTEL_LOGS_EXPORTER": "otlp",
                         "OTEL_METRICS_EXPORTER": "prometheus"},
                        {"otlp_logs": {"batch_wait_ms": 100}})
        self.rec.control(partial=2, message="two+too+old")
        send(self.stack, "acme", 3)
        wait_for(lambda: sidecar_exporter(self.stack, "otlp_logs") == 1
                 and sidecar_exporter(self.stack, "otlp_logs",
                                      "rejected") == 2,
                 what="1 sent, 2 rejected")
        self.rec.control(fail=1, code=429, retry_after=1)
        t0 = time.time()
        send(self.stack, "acme", 2)
        wait_for(lambda: sidecar_exporter(self.stack, "otlp_logs") == 3,
                 what="the 2 after a 429")
        self.assertGreaterEqual(time.time() - t0, 0.9)
        s = self.stack.metrics()
        self.assertEqual(value(s, "obs_exporter_retries_total",
                               exporter="otlp_logs"), 1)
        with open(os.path.join(self.stack.dir, "sidecar.log")) as f:
            self.assertIn('refused 2 of its 3 log records: "two too old"',
                          f.read())

    def test_delta_temporality_and_restart(self):
        self.stack_with({"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE":
                         "delta"})
        for i in range(3):
            send(self.stack, "acme", 2)
            time.sleep(0.7)
        wait_for(lambda: value(self.stack.metrics(),
                               "obs_records_received_total") == 6,
                 what="6 records")
        time.sleep(1.2)
        reqs = decode("metrics", self.rec.bodies("otlp_metrics"))
        pts = metric_points(reqs, "http.server.request.duration")
        self.assertTrue(all(m["histogram"]["aggregationTemporality"] == 1
                            for m, _ in pts))
        self.assertEqual(sum(int(p["count"]) for _, p in pts), 6)
        # intervals follow one another
        ends = sorted({(int(p["startTimeUnixNano"]), int(p["timeUnixNano"]))
                       for _, p in pts})
        for (s0, e0), (s1, e1) in zip(ends, ends[1:]):
            self.assertEqual(e0, s1)
        # gauges and requests in flight are not deltas
        act = metric_points(reqs, "http.server.active_requests")
        self.assertTrue(all(m["sum"]["aggregationTemporality"] == 2
                            for m, _ in act))

        # a restart: the new process's series start anew, later
        old_start = max(int(p["startTimeUnixNano"]) for _, p in pts)
        self.stack.sidecar.terminate()
        self.stack.sidecar.wait()
        n = len(self.rec.bodies("otlp_metrics"))
        old = dict(os.environ)
        os.environ.update(self.env)
        try:
            self.stack.start_sidecar(stdout=subprocess.DEVNULL)
        finally:
            os.environ.clear()
            os.environ.update(old)
        send(self.stack, "acme", 1)
        wait_for(lambda: metric_points(decode(
            "metrics", self.rec.bodies("otlp_metrics")[n:]),
            "http.server.request.duration"), what="a push after restart")
        new = metric_points(decode("metrics",
                                   self.rec.bodies("otlp_metrics")[n:]),
                            "http.server.request.duration")
        self.assertGreater(int(new[0][1]["startTimeUnixNano"]), old_start)

    def test_caps_and_overflow_as_on_the_page(self):
        # header tenants: the whole cap (they take half by default)
        self.stack_with({}, {"max_tenants": 2, "from_request_percent": 100})
        for t in ("a1", "a2", "a3", "a4"):
            send(self.stack, t, 1)
        wait_for(lambda: value(self.stack.metrics(),
                               "obs_records_received_total") == 4,
                 what="4 records")
        time.sleep(1.2)
        page = self.stack.metrics()
        reqs = decode("metrics", self.rec.bodies("otlp_metrics"))
        last = reqs[-1]
        tenants = {}
        for _, p in metric_points([last], "http.server.request.duration"):
            t = attrs(p["attributes"])["tenant.id"]
            tenants[t] = tenants.get(t, 0) + int(p["count"])
        self.assertEqual(tenants.get("__overflow__"), value(
            page, "http_server_request_duration_seconds_count",
            tenant="__overflow__"))
        self.assertEqual(sum(tenants.values()), 4)
        self.assertEqual(len(tenants), 3)

    def test_otlp_alone_turns_the_metrics_page_off(self):
        self.stack_with({"OTEL_METRICS_EXPORTER": "otlp"})
        status, body = request(self.stack.metrics_url)
        self.assertEqual(status, 404)
        self.assertIn(b"OTLP", body)
        send(self.stack, "acme", 2)

        def pushed():
            reqs = decode("metrics", self.rec.bodies("otlp_metrics"))
            pts = metric_points(reqs[-1:], "http.server.request.duration")
            return sum(int(p["count"]) for _, p in pts) == 2
        wait_for(pushed, what="2 requests pushed")

    def test_collector_variant_gives_back_the_page(self):
        """Through the shipped collector configuration, every series of
        the gateway's families reads as on /metrics: same name, labels and
        value (the dashboards and alerts need nothing else)."""
        self.stack_with({})
        send(self.stack, "acme", 3)
        send(self.stack, "acme", 1, path="/api/fail")
        send(self.stack, "globex", 2)
        wait_for(lambda: value(self.stack.metrics(),
                               "obs_records_received_total") == 6,
                 what="6 records")
        time.sleep(1.2)
        page = self.stack.metrics()
        view = collector_view(decode("metrics",
                                     self.rec.bodies("otlp_metrics")))
        checked = 0
        for (name, labels), v in page.items():
            if not name.startswith("http_") or name.endswith("_bucket"):
                continue
            self.assertIn((name, labels), view, name)
            self.assertAlmostEqual(view[(name, labels)], v, places=9)
            checked += 1
        self.assertGreaterEqual(checked, 10)

    def test_bad_exporter_names_refused(self):
        for env in ({"OTEL_METRICS_EXPORTER": "prometheus,statsd"},
                    {"OTEL_METRICS_EXPORTER": "none,otlp"},
                    {"OTEL_LOGS_EXPORTER": "console"},
                    {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/xml"}):
            r = subprocess.run([os.path.join(ROOT, "build", "obs-sidecar"),
                                "--check-config"], capture_output=True,
                               text=True, env=dict(os.environ, **env))
            self.assertEqual(r.returncode, 2, env)
            self.assertIn(list(env)[0], r.stderr)


class OtlpGrpcTest(unittest.TestCase):
    """OTLP/gRPC for all three signals (HTTP/2 with prior knowledge), and
    what each gRPC status class does to the data."""

    def start(self, env=None, config=None):
        self.rec = GrpcReceiver()
        self.addCleanup(self.rec.stop)
        e = {"OTEL_METRICS_EXPORTER": "prometheus,otlp",
             "OTEL_LOGS_EXPORTER": "otlp",
             "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
             "OTEL_EXPORTER_OTLP_ENDPOINT": self.rec.url,
             "OTEL_EXPORTER_OTLP_TIMEOUT": "2000",
             "OTEL_METRIC_EXPORT_INTERVAL": "500"}
        e.update(env or {})
        cfg = {"otlp": {"batch_wait_ms": 100},
               "otlp_logs": {"batch_wait_ms": 100, "batch_records": 1}}
        cfg.update(config or {})
        self.stack = start_stack(self, e, cfg)

    def counts(self, name="otlp_logs"):
        s = self.stack.metrics()
        out = {"sent": value(s, "obs_exporter_sent_total", exporter=name)}
        for r in ("rejected", "queue_full", "spool_full", "shutdown"):
            out[r] = value(s, "obs_exporter_dropped_total", exporter=name,
                           reason=r)
        out["retries"] = value(s, "obs_exporter_retries_total",
                               exporter=name)
        out["failure"] = value(s, "obs_exporter_requests_total",
                               exporter=name, result="failure")
        return out

    def test_all_signals(self):
        self.start()
        send(self.stack, "acme", 5)
        send(self.stack, "acme", 1, path="/api/fail")
        wait_for(lambda: self.counts()["sent"] == 6, what="6 log records")
        wait_for(lambda: self.counts("otlp")["sent"] >= 1, what="spans")

        def histogram_count():
            reqs = decode("metrics", self.rec.bodies("metrics"))
            pts = metric_points(reqs[-4:], "http.server.request.duration")
            return sum(int(p["count"]) for _, p in pts if
                       attrs(p["attributes"])["tenant.id"] == "acme"
                       and p["timeUnixNano"] == pts[-1][1]["timeUnixNano"])
        wait_for(lambda: histogram_count() == 6, what="histogram count 6")

        st = self.rec.state()
        meta = st["requests"][0]["metadata"]
        self.assertTrue(meta.get("user-agent", "").startswith(
            "obs-sidecar/"))
        records = log_records(decode("logs", self.rec.bodies("logs")))
        self.assertEqual(sorted(attrs(r["attributes"])["status"]
                                for r in records), [200] * 5 + [503])
        spans = decode("traces", self.rec.bodies("traces"))
        self.assertTrue(spans[0]["resourceSpans"][0]["scopeSpans"][0]
                        ["spans"])

    def test_status_classes(self):
        """Each class on the logs destination: one record a request."""
        self.start(env={"OTEL_METRICS_EXPORTER": "prometheus"})

        cases = [
            # (receiver's answer, records, sent, rejected, retried at least)
            ({}, 2, 2, 0, 0),                                   # OK
            ({"partial": 1, "message": "too+old"}, 1, 0, 1, 0),
            ({"fail": 1, "code": 14}, 1, 1, 0, 1),              # UNAVAILABLE
            ({"fail": 1, "code": 4}, 1, 1, 0, 1),       # DEADLINE_EXCEEDED
            ({"fail": 1, "code": 10}, 1, 1, 0, 1),              # ABORTED
            ({"fail": 1, "code": 3}, 1, 0, 1, 0),       # INVALID_ARGUMENT
            ({"fail": 1, "code": 16}, 1, 0, 1, 0),      # UNAUTHENTICATED
            ({"fail": 1, "code": 8}, 1, 0, 1, 0),   # RESOURCE_EXHAUSTED bare
            ({"fail": 1, "code": 8, "retry_delay": "1.5"}, 1, 1, 0, 1),
        ]
        total = {"sent": 0, "rejected": 0}
        for fault, n, sent, rejected, retried in cases:
            before = self.counts()
            if fault:
                self.rec.control(signal="logs", **fault)
            t0 = time.time()
            send(self.stack, "acme", n)
            want_sent = (before["sent"] or 0) + sent
            want_rej = (before["rejected"] or 0) + rejected
            wait_for(lambda: self.counts()["sent"] == want_sent
                     and self.counts()["rejected"] == want_rej,
                     timeout=15, what="%r: %d sent, %d rejected"
                     % (fault, want_sent, want_rej))
            after = self.counts()
            self.assertGreaterEqual(after["retries"] - (before["retries"]
                                                        or 0), retried)
            if fault.get("retry_delay"):
                # RetryInfo's delay, not the first backoff step
                self.assertGreaterEqual(time.time() - t0, 1.4)
            total["sent"] += sent
            total["rejected"] += rejected

        # nothing lost silently: every record sent or counted rejected
        c = self.counts()
        self.assertEqual(c["sent"] + c["rejected"], 10)
        self.assertEqual((c["sent"], c["rejected"]),
                         (total["sent"], total["rejected"]))
        self.assertEqual((c["queue_full"], c["spool_full"], c["shutdown"]),
                         (0, 0, 0))
        with open(os.path.join(self.stack.dir, "sidecar.log")) as f:
            log = f.read()
        self.assertIn("refused 1 of its 1 log records: \"too old\"", log)
        self.assertIn("gRPC status 14: refused by the test receiver", log)

    def test_receiver_down_then_back_and_slow(self):
        port = free_port()
        self.rec = GrpcReceiver(port)
        self.rec.stop()
        self.addCleanup(lambda: self.rec.stop())
        self.stack = start_stack(self, {
            "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://127.0.0.1:%d" % port,
            "OTEL_EXPORTER_OTLP_TIMEOUT": "700"},
            {"otlp_logs": {"batch_wait_ms": 100}})

        send(self.stack, "acme", 4)
        wait_for(lambda: (value(self.stack.metrics(),
                                "obs_exporter_retries_total",
                                exporter="otlp_logs") or 0) >= 2,
                 what="retries while the receiver is down")
        self.assertEqual(value(self.stack.metrics(),
                               "obs_exporter_sent_total",
                               exporter="otlp_logs"), 0)

        # back, but slower than the timeout for its first answers
        self.rec.start()
        self.rec.control(delay=1.5)
        time.sleep(2)
        self.rec.control(delay=0)
        wait_for(lambda: value(self.stack.metrics(),
                               "obs_exporter_sent_total",
                               exporter="otlp_logs") == 4,
                 timeout=40, what="the 4 records after the outage")
        records = log_records(decode("logs", self.rec.bodies("logs")))
        # a timed-out request may have been taken too: at least once each
        self.assertEqual(len({r["spanId"] for r in records}), 4)
        with open(os.path.join(self.stack.dir, "sidecar.log")) as f:
            self.assertIn("delivering again", f.read())


if __name__ == "__main__":
    main()
