#!/usr/bin/python3
"""Real nginx + module -> obs-sidecar -> a real Prometheus.

Exact counts per route, tenant, method and code after a known mix of
requests; Prometheus scrapes the text, OpenMetrics and protobuf formats;
exemplars and native histograms arrive through its API; malformed datagrams
are rejected and counted; SIGHUP keeps counters, SIGTERM exits 0."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (obs_contract, Stack, ROOT, GATEWAY_HTTP,  # noqa
                     http_get, request, value, wait_for, parse_text, main)

NGINX_HTTP = GATEWAY_HTTP

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = "00-%s-00f067aa0ba902b7-01" % TRACE_ID


def drive(gateway):
    """The known mix: 17 requests."""
    for i in range(1, 8):
        assert request(gateway + "/api/users/%d" % i,
                       headers={"X-Tenant-ID": "acme",
                                "traceparent": TRACEPARENT})[0] == 200
    for _ in range(3):
        assert request(gateway + "/api/orders", method="POST", body=b"{}",
                       headers={"X-Tenant-ID": "beta"})[0] == 201
    for _ in range(2):
        assert request(gateway + "/api/fail",
                       headers={"X-Tenant-ID": "acme"})[0] == 503
    for i in range(4):
        assert request(gateway + "/ml/predict-%d" % i, method="POST",
                       body=b"x" * 10,
                       headers={"X-Tenant-ID": "acme"})[0] == 200
    assert request(gateway + "/api/users/9")[0] == 200


FRAMING = obs_contract.framing()


class PipelineTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(NGINX_HTTP)
        cls.addClassCleanup(cls.stack.stop)
        cls.stack.start_sidecar()
        cls.stack.start_nginx()
        drive(cls.stack.gateway)
        wait_for(lambda: value(cls.stack.metrics(),
                               "obs_records_received_total") == 17,
                 what="17 records")
        cls.samples = cls.stack.metrics()

    def count(self, **labels):
        return value(self.samples, "http_server_requests_total", **labels)

    def test_requests_by_route_tenant_method_code(self):
        self.assertEqual(self.count(service="backend-api",
                                    route="/api/users/{id}", method="GET",
                                    code="200", tenant="acme"), 7)
        self.assertEqual(self.count(service="backend-api", route="/api/orders",
                                    method="POST", code="201",
                                    tenant="beta"), 3)
        self.assertEqual(self.count(service="backend-api", route="/api/fail",
                                    method="GET", code="503",
                                    tenant="acme"), 2)
        self.assertEqual(self.count(service="ml-engine", route="/ml/predict",
                                    method="POST", code="200",
                                    tenant="acme"), 4)
        self.assertEqual(self.count(route="/api/users/{id}", tenant="none"),
                         1)
        self.assertEqual(self.count(), 17)

    def test_duration_histograms(self):
        self.assertEqual(value(self.samples,
                               "http_server_request_duration_seconds_count",
                               route="/api/users/{id}", tenant="acme"), 7)
        self.assertEqual(value(self.samples,
                               "http_server_request_duration_seconds_bucket",
                               route="/ml/predict", le="+Inf"), 4)

    def test_body_bytes(self):
        self.assertEqual(value(self.samples,
                               "http_server_request_body_bytes_total",
                               route="/ml/predict"), 40)
        self.assertEqual(value(self.samples,
                               "http_server_request_body_bytes_total",
                               route="/api/orders"), 6)
        self.assertEqual(value(self.samples,
                               "http_server_response_body_bytes_total",
                               route="/api/fail"), 10)

    def test_upstream_metrics(self):
        up = "127.0.0.1:%d" % self.stack.backend_port
        self.assertEqual(value(self.samples, "http_upstream_requests_total",
                               route="/api/fail", upstream=up, code="503"), 2)
        self.assertEqual(value(self.samples,
                               "http_upstream_request_duration_seconds_count",
                               service="ml-engine", upstream=up), 4)

    def test_every_family_as_the_contract_says(self):
        """Each family of proto/obs/v1/families.def is exposed with its
        type, unit and help, and its samples carry its labels in its
        order (the histograms' le after them)."""
        body = http_get(self.stack.metrics_url)[2].decode()
        for f in obs_contract.families():
            name = f["exposed"]      # text 0.0.4 names a counter so
            self.assertTrue("# TYPE %s %s\n" % (name, f["type"]) in body,
                            name)
            self.assertTrue("# HELP %s %s\n" % (name, f["help"]) in body,
                            name)
            sample = f["exposed"] + ("_bucket" if f["type"] == "histogram"
                                     else "")
            lines = [ln for ln in body.splitlines()
                     if ln.startswith(sample + "{")]
            if not f["stored"] and not lines:
                continue            # nothing in flight when scraped
            self.assertTrue(lines, sample)
            keys = re.findall(r'([a-z_]+)="', lines[0])
            self.assertEqual(keys, f["labels"] + (
                ["le"] if f["type"] == "histogram" else []), sample)

    def test_promtool_accepts_the_exposition(self):
        body = http_get(self.stack.metrics_url)[2]
        p = subprocess.run(["promtool", "check", "metrics"], input=body,
                           capture_output=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout + p.stderr, b"")

    def test_content_types_and_gzip(self):
        _, h, _ = http_get(self.stack.metrics_url)
        self.assertEqual(h["Content-Type"],
                         "text/plain; version=0.0.4; charset=utf-8")
        _, h, body = http_get(self.stack.metrics_url, {
            "Accept": "application/openmetrics-text;version=1.0.0"})
        self.assertEqual(h["Content-Type"], "application/openmetrics-text; "
                         "version=1.0.0; charset=utf-8")
        self.assertTrue(body.endswith(b"# EOF\n"))
        self.assertIn(('# {trace_id="%s"' % TRACE_ID).encode(), body)
        _, h, body = http_get(self.stack.metrics_url,
                              {"Accept-Encoding": "gzip"})
        self.assertEqual(h["Content-Encoding"], "gzip")
        self.assertEqual(body[:2], b"\x1f\x8b")

    def test_health_endpoints(self):
        base = self.stack.metrics_url.replace("/metrics", "")
        self.assertEqual(http_get(base + "/healthz")[0], 200)
        self.assertEqual(http_get(base + "/readyz")[0], 200)


class PrometheusTest(unittest.TestCase):
    """Real Prometheus servers scrape each format through its own job.

    Prometheus 2.42 keeps exemplars only with native histograms off, so one
    server (exemplar-storage) scrapes text and OpenMetrics, another
    (native-histograms) the protobuf format."""

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(NGINX_HTTP)
        cls.addClassCleanup(cls.stack.stop)
        cls.stack.start_sidecar()
        cls.stack.start_nginx()
        drive(cls.stack.gateway)
        wait_for(lambda: value(cls.stack.metrics(),
                               "obs_records_received_total") == 17,
                 what="17 records")
        cls.classic = cls.stack.start_prometheus(
            cls.jobs("text", "openmetrics"), ["exemplar-storage"])
        cls.native = cls.stack.start_prometheus(
            cls.jobs("protobuf"), ["native-histograms"])

    @classmethod
    def jobs(cls, *formats):
        target = "127.0.0.1:%d" % cls.stack.metrics_port
        return "".join("  - job_name: %s\n    params: {format: [%s]}\n"
                       "    static_configs: [{targets: ['%s']}]\n"
                       % (f, f, target) for f in formats)

    def totals(self, prom, n):
        r = prom.query("api/v1/query",
                       query="sum by (job) (http_server_requests_total)")
        got = {x["metric"]["job"]: float(x["value"][1]) for x in r["result"]}
        return got if len(got) == n else None

    def test_every_format_is_scraped_with_exact_totals(self):
        got = wait_for(lambda: self.totals(self.classic, 2), timeout=30,
                       interval=0.5, what="text and OpenMetrics jobs")
        self.assertEqual(got, {"text": 17, "openmetrics": 17})
        got = wait_for(lambda: self.totals(self.native, 1), timeout=30,
                       interval=0.5, what="the protobuf job")
        self.assertEqual(got, {"protobuf": 17})

        r = self.classic.query(
            "api/v1/query", query='sum(http_server_requests_total'
            '{job="openmetrics",tenant="acme",code="503"})')
        self.assertEqual(float(r["result"][0]["value"][1]), 2)

    def test_scrapes_are_healthy(self):
        def up(prom, n):
            r = prom.query("api/v1/targets")
            states = {t["labels"]["job"]: (t["health"], t["lastError"])
                      for t in r["activeTargets"]}
            return states if len(states) == n and all(
                h == "up" for h, _ in states.values()) else None

        wait_for(lambda: up(self.classic, 2), timeout=30, interval=0.5,
                 what="healthy text and OpenMetrics targets")
        wait_for(lambda: up(self.native, 1), timeout=30, interval=0.5,
                 what="a healthy protobuf target")

    def test_native_histograms_arrive_through_protobuf(self):
        def native():
            r = self.native.query(
                "api/v1/query", query='http_server_request_duration_seconds'
                '{job="protobuf",route="/api/users/{id}"}')
            return r["result"] if r["result"] and \
                "histogram" in r["result"][0] else None

        result = wait_for(native, timeout=30, interval=0.5,
                          what="a native histogram")
        self.assertEqual(result[0]["histogram"][1]["count"], "7")

    def test_exemplars_arrive_through_openmetrics(self):
        def exemplars():
            now = time.time()
            r = self.classic.query(
                "api/v1/query_exemplars",
                query='http_server_request_duration_seconds_bucket'
                '{job="openmetrics"}', start=now - 600, end=now + 60)
            ids = {e["labels"].get("trace_id") for s in r
                   for e in s["exemplars"]}
            return ids if TRACE_ID in ids else None

        wait_for(exemplars, timeout=30, interval=0.5,
                 what="an exemplar with the request's trace id")


class IngestRobustnessTest(unittest.TestCase):
    """Malformed, truncated and oversized datagrams are counted, never
    crash; batches are built with Google's protobuf runtime."""

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(NGINX_HTTP)
        cls.addClassCleanup(cls.stack.stop)
        cls.stack.start_sidecar()
        cls.pb = obs_contract.record_pb2()

    def send(self, data):
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(data, self.stack.sock)

    def batch(self, records=1, version=1, header=True, pid=4242, seq=0,
              dropped=0):
        b = self.pb.Batch()
        if header:
            b.header.schema_version = version
            b.header.pid = pid
            b.header.sequence = seq
            b.header.worker_start_unix_nano = 1
            b.header.host = b"test-host"
            b.header.dropped_buffer_full = dropped
        for i in range(records):
            r = b.records.add()
            r.method = b"GET"
            r.route = b"/robust"
            r.service = b"robust-%d" % pid
            r.tenant = b"t1"
            r.status = 200
            r.duration_us = 1500
        return b.SerializeToString()

    def errors(self, reason):
        return value(self.stack.metrics(), "obs_decode_errors_total",
                     reason=reason) or 0

    def test_valid_batch(self):
        self.send(self.batch(records=3, pid=1))
        wait_for(lambda: value(self.stack.metrics(),
                               "http_server_requests_total",
                               service="robust-1") == 3, what="3 records")

    def test_garbage_is_malformed(self):
        before = self.errors("malformed")
        self.send(b"\xff\xff\xff\xff not protobuf at all")
        wait_for(lambda: self.errors("malformed") == before + 1,
                 what="a malformed datagram counted")

    def test_truncated_is_malformed(self):
        before = self.errors("malformed")
        data = self.batch(records=5, pid=2)
        self.send(data[:len(data) - 7])
        wait_for(lambda: self.errors("malformed") == before + 1,
                 what="a truncated datagram counted")

    def test_every_reason_of_the_contract_is_served(self):
        """obs_decode_errors_total and obs_records_dropped_total carry each
        reason of proto/obs/v1's lists, and no other, from the start."""
        m = self.stack.metrics()
        for family, reasons in (
                ("obs_decode_errors_total", obs_contract.decode_errors()),
                ("obs_records_dropped_total", obs_contract.drop_reasons())):
            served = sorted(dict(labels)["reason"] for name, labels in m
                            if name == family)
            self.assertEqual(served, sorted(reasons), family)

    def test_oversized(self):
        before = self.errors("oversize")
        self.send(b"\x12" + b"x" * (FRAMING["OBS_DATAGRAM_READ_MAX"] + 1))
        wait_for(lambda: self.errors("oversize") == before + 1,
                 what="an oversized datagram counted")

    def test_no_header(self):
        before = self.errors("no_header")
        self.send(self.batch(header=False))
        wait_for(lambda: self.errors("no_header") == before + 1,
                 what="a batch without header counted")

    def test_unknown_schema(self):
        before = self.errors("schema")
        self.send(self.batch(version=FRAMING["OBS_SCHEMA_MAX"] + 1))
        wait_for(lambda: self.errors("schema") == before + 1,
                 what="a future schema counted")

    def column_batch(self, pid, routes):
        """Records in column form, encoded by Google's protobuf runtime."""
        b = self.pb.Batch()
        b.header.schema_version = 2
        b.header.pid = pid
        b.header.worker_start_unix_nano = 1
        b.header.host = b"test-host"
        c = b.columns
        c.count = len(routes)
        symbols = [b"", b"GET", b"robust-%d" % pid] + \
            [r.encode() for r in sorted(set(routes))]
        c.symbol_data = b"".join(symbols)
        end = 0
        for sym in symbols:
            end += len(sym)
            c.symbol_end.append(end)
        for r in routes:
            c.method.append(1)
            c.service.append(2)
            c.route.append(symbols.index(r.encode()))
            c.status.append(200)
            c.duration_us.append(2500)
            c.upstream_attempts.append(0)
        return b

    def test_column_form_batch(self):
        b = self.column_batch(11, ["/a", "/b", "/a"])
        self.send(b.SerializeToString())
        wait_for(lambda: value(self.stack.metrics(),
                               "http_server_requests_total",
                               service="robust-11", route="/a") == 2,
                 what="2 records of /a from columns")
        self.assertEqual(value(self.stack.metrics(),
                               "http_server_requests_total",
                               service="robust-11", route="/b"), 1)

    def test_inconsistent_columns_are_malformed(self):
        bad = []
        b = self.column_batch(12, ["/a", "/b"])
        b.columns.status.append(200)            # 3 statuses, 2 records
        bad.append(b)
        b = self.column_batch(12, ["/a"])
        b.columns.route[0] = 99                 # no such symbol
        bad.append(b)
        b = self.column_batch(12, ["/a"])
        b.columns.symbol_end[1] = 1 << 20       # past the symbol data
        bad.append(b)
        b = self.column_batch(12, ["/a"])
        b.columns.upstream_attempts[0] = 2      # attempts without columns
        b.columns.attempt_status.append(502)
        bad.append(b)
        before = self.errors("malformed")
        for b in bad:
            self.send(b.SerializeToString())
        wait_for(lambda: self.errors("malformed") == before + len(bad),
                 what="%d inconsistent batches counted" % len(bad))
        self.assertIsNone(value(self.stack.metrics(),
                                "http_server_requests_total",
                                service="robust-12"))

    def test_module_drops_and_lost_datagrams(self):
        m = self.stack.metrics()
        drops = value(m, "obs_records_dropped_total",
                      reason="module_buffer_full") or 0
        lost = value(m, "obs_datagrams_lost_total") or 0
        self.send(self.batch(pid=77, seq=0, dropped=5))
        self.send(self.batch(pid=77, seq=3, dropped=9))
        wait_for(lambda: value(self.stack.metrics(),
                               "obs_records_dropped_total",
                               reason="module_buffer_full") == drops + 9,
                 what="cumulative drops counted once")
        self.assertEqual(value(self.stack.metrics(),
                               "obs_datagrams_lost_total"), lost + 2)

    def test_still_serving_after_abuse(self):
        for _ in range(200):
            self.send(os.urandom(64))
        self.send(self.batch(records=1, pid=3))
        wait_for(lambda: http_get(self.stack.metrics_url)[0] == 200,
                 what="sidecar alive")
        self.assertIsNone(self.stack.sidecar.poll())


class MultipleIngestTest(unittest.TestCase):
    """One sidecar serves two nginx instances: one over a unix socket, one
    over UDP (--ingest repeated)."""

    def test_unix_and_udp_ingest_together(self):
        from harness import free_port
        udp = "udp:127.0.0.1:%d" % free_port()
        stack = Stack(NGINX_HTTP, workers=1)
        stack.sidecar_args = ["--ingest", "unix:" + stack.sock,
                              "--ingest", udp]
        self.addCleanup(stack.stop)
        stack.start_sidecar()
        stack.start_nginx()

        second = Stack(NGINX_HTTP.replace("backend-api", "udp-api"),
                       workers=1, records_address=udp)
        self.addCleanup(second.stop)
        second.start_nginx()

        for _ in range(5):
            request(stack.gateway + "/api/users/1")
        for _ in range(3):
            request(second.gateway + "/api/users/1")

        wait_for(lambda: value(stack.metrics(), "http_server_requests_total",
                               service="backend-api") == 5
                 and value(stack.metrics(), "http_server_requests_total",
                           service="udp-api") == 3,
                 what="records from both nginx instances")


class NginxLifecycleTest(unittest.TestCase):
    """Records waiting in a worker's buffer leave when the worker exits:
    on reload (old workers finish gracefully) and on stop."""

    def test_reload_and_quit_flush_waiting_records(self):
        stack = Stack(NGINX_HTTP, flush="60s")
        self.addCleanup(stack.stop)
        stack.start_sidecar()
        stack.start_nginx()

        for _ in range(7):
            request(stack.gateway + "/api/users/1")
        time.sleep(0.5)
        self.assertEqual(value(stack.metrics(), "obs_records_received_total"),
                         0, "a 60 s flush interval keeps them waiting")

        stack.nginx.send_signal(signal.SIGHUP)
        wait_for(lambda: value(stack.metrics(),
                               "obs_records_received_total") == 7,
                 what="records flushed by the reload")

        for _ in range(4):
            request(stack.gateway + "/api/users/2")
        stack.nginx.send_signal(signal.SIGQUIT)
        stack.nginx.wait(timeout=20)
        wait_for(lambda: value(stack.metrics(),
                               "obs_records_received_total") == 11,
                 what="records flushed at graceful stop")


    def test_sidecar_restart_loses_nothing(self):
        """Records sent while the sidecar stops, or is gone, wait in nginx
        and reach the next sidecar: every request is counted once."""
        stack = Stack(NGINX_HTTP, flush="50ms")
        self.addCleanup(stack.stop)
        stack.start_sidecar()
        stack.start_nginx()

        for i in range(30):
            request(stack.gateway + "/api/users/%d" % i)
        wait_for(lambda: (value(stack.metrics(),
                                "obs_records_received_total") or 0) >= 30,
                 what="30 records before the restart")
        self.assertEqual(value(stack.metrics(), "obs_records_received_total"),
                         30)

        stack.sidecar.send_signal(signal.SIGTERM)
        for i in range(20):            # while it stops, and while it is gone
            request(stack.gateway + "/api/users/%d" % i)
        self.assertEqual(stack.sidecar.wait(timeout=10), 0)
        for i in range(20):
            request(stack.gateway + "/api/users/%d" % i)

        stack.start_sidecar()
        wait_for(lambda: value(stack.metrics(),
                               "obs_records_received_total") == 40,
                 what="the 40 waiting records at the new sidecar")
        time.sleep(0.5)
        m = stack.metrics()
        self.assertEqual(value(m, "obs_records_received_total"), 40)
        self.assertFalse(value(m, "obs_records_dropped_total",
                               reason="module_buffer_full"))


class LifecycleTest(unittest.TestCase):
    """SIGHUP reloads without losing counters; SIGTERM drains and exits 0;
    bad configuration fails before anything starts."""

    def test_reload_keeps_counters_and_term_exits_zero(self):
        stack = Stack(NGINX_HTTP, sidecar_config={"max_tenants": 100})
        try:
            stack.start_sidecar()
            stack.start_nginx()
            drive(stack.gateway)
            wait_for(lambda: value(stack.metrics(),
                                   "http_server_requests_total") == 17,
                     what="17 requests")
            with open(os.path.join(stack.dir, "sidecar.json"), "w") as f:
                f.write('{"max_tenants": 1}')
            stack.sidecar.send_signal(signal.SIGHUP)
            wait_for(lambda: value(stack.metrics(),
                                   "obs_config_reloads_total",
                                   result="success") == 1, what="reload")
            self.assertEqual(value(stack.metrics(),
                                   "http_server_requests_total"), 17)
            request(stack.gateway + "/api/users/1",
                    headers={"X-Tenant-ID": "newcomer"})
            wait_for(lambda: value(stack.metrics(),
                                   "http_server_requests_total",
                                   tenant="__overflow__") == 1,
                     what="the reloaded tenant cap applies")

            with open(os.path.join(stack.dir, "sidecar.json"), "w") as f:
                f.write('{"max_tenants": "many"}')
            stack.sidecar.send_signal(signal.SIGHUP)
            wait_for(lambda: value(stack.metrics(),
                                   "obs_config_reloads_total",
                                   result="failure") == 1,
                     what="a failed reload counted")

            stack.sidecar.send_signal(signal.SIGTERM)
            self.assertEqual(stack.sidecar.wait(timeout=10), 0)
            self.assertFalse(os.path.exists(stack.sock))
        finally:
            stack.stop()

    def test_reload_with_a_new_listen_says_it_needs_a_restart(self):
        """Sockets are bound once: a SIGHUP that changes "listen" keeps
        serving the old address and says so in the log."""
        free_port = __import__("harness").free_port
        old, new = free_port(), free_port()
        d = tempfile.mkdtemp(prefix="obs-it-")
        conf, log = os.path.join(d, "sidecar.json"), os.path.join(d, "log")
        with open(conf, "w") as f:
            f.write('{"listen": "127.0.0.1:%d"}' % old)
        with open(log, "w") as err:
            p = subprocess.Popen([os.path.join(ROOT, "build/obs-sidecar"),
                                  "--config", conf, "--ingest",
                                  "unix:" + os.path.join(d, "r.sock")],
                                 stderr=err)
        url = "http://127.0.0.1:%d/metrics" % old
        try:
            wait_for(lambda: http_get(url)[0] == 200, what="old listen")
            with open(conf, "w") as f:
                f.write('{"listen": "127.0.0.1:%d", "max_tenants": 5}'
                        % new)
            p.send_signal(signal.SIGHUP)
            def restart_lines():
                with open(log) as f:
                    return [x for x in f if "only a restart" in x]
            wait_for(restart_lines, what="the log says listen needs a restart")
            line = restart_lines()[0]
            self.assertIn("reload: listen: changed", line)
            self.assertIn("still serving http://127.0.0.1:%d/" % old, line)
            self.assertEqual(value(parse_text(http_get(url)[2].decode()),
                                   "obs_config_reloads_total",
                                   result="success"), 1)
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", new), timeout=1)
        finally:
            p.terminate()
            self.assertEqual(p.wait(timeout=10), 0)
            shutil.rmtree(d, ignore_errors=True)

    def test_bad_configuration_names_the_setting(self):
        cases = [
            (["--listen", "nowhere"], b"listen"),
            (["--ingest", "tcp:1.2.3.4:5"], b"ingest"),
            (["--bogus"], b"unknown option"),
        ]
        for args, word in cases:
            p = subprocess.run([os.path.join(ROOT, "build/obs-sidecar")]
                               + args, capture_output=True, timeout=10)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(word, p.stderr)

        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            f.write('{"series_ttl_seconds": 0}')
            f.flush()
            p = subprocess.run([os.path.join(ROOT, "build/obs-sidecar"),
                                "--config", f.name, "--check-config"],
                               capture_output=True, timeout=10)
            self.assertEqual(p.returncode, 2)
            self.assertIn(b"series_ttl_seconds", p.stderr)

    def test_environment_variables(self):
        port = __import__("harness").free_port()
        env = dict(os.environ, OBS_SIDECAR_LISTEN="127.0.0.1:%d" % port,
                   OBS_SIDECAR_INGEST="unix:/tmp/obs-env-%d.sock" % port)
        p = subprocess.Popen([os.path.join(ROOT, "build/obs-sidecar")],
                             env=env, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: http_get("http://127.0.0.1:%d/healthz"
                                      % port)[0] == 200, what="env listen")
            self.assertTrue(os.path.exists("/tmp/obs-env-%d.sock" % port))
        finally:
            p.terminate()
            self.assertEqual(p.wait(timeout=10), 0)


if __name__ == "__main__":
    main()
