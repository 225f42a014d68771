#!/usr/bin/python3
"""Prometheus remote-write from the sidecar.

Against the real Prometheus (--web.enable-remote-write-receiver): the series
read back with PromQL equal what /metrics serves, and counters never go
backwards across a receiver outage.  Against a strict fake (Python's snappy
and a protobuf wire reader written here, independent of the sidecar's .proto
and encoder): the documented headers, sorted labels without empty values,
a 400 sent once and never again, 5xx and 429 retried with the same body,
and one X-Scope-OrgID per tenant with the gateway's own series under the
operator's."""

import os
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import snappy

sys.path.insert(0, os.path.dirname(__file__))
from harness import (GATEWAY_HTTP, Stack, destination_stack,  # noqa
                     free_port, http_get, main,
                     parse_text, request, wait_for)
import json  # noqa: E402

FAMILIES = ("http_server_requests_total",
            "http_server_request_duration_seconds_bucket",
            "http_server_request_duration_seconds_sum",
            "http_server_request_duration_seconds_count",
            "http_server_request_body_bytes_total",
            "http_server_response_body_bytes_total")


class RealPrometheus:
    """Prometheus receiving remote-write; restartable on the same port and
    storage, for outages."""

    def __init__(self, base):
        self.port = free_port()
        self.base = base
        os.makedirs(base, exist_ok=True)
        self.cfg = os.path.join(base, "prometheus.yml")
        with open(self.cfg, "w") as f:
            f.write("global:\n  evaluation_interval: 1s\n")
        self.process = None

    def start(self):
        log = open(os.path.join(self.base, "prometheus.log"), "a")
        self.process = subprocess.Popen(
            ["prometheus", "--config.file=" + self.cfg,
             "--storage.tsdb.path=" + os.path.join(self.base, "tsdb"),
             "--web.listen-address=127.0.0.1:%d" % self.port,
             "--web.enable-remote-write-receiver"], stdout=log, stderr=log)
        log.close()
        wait_for(lambda: http_get(self.url("-/ready"))[0] == 200,
                 what="prometheus ready")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)

    def url(self, path, **params):
        url = "http://127.0.0.1:%d/%s" % (self.port, path)
        return url + ("?" + urllib.parse.urlencode(params) if params else "")

    def query(self, path, **params):
        data = json.loads(http_get(self.url(path, **params))[2])
        assert data["status"] == "success", data
        return data["data"]

    def instant(self, expr):
        """{(name, frozenset(labels)): value} of an instant query."""
        out = {}
        for r in self.query("api/v1/query", query=expr)["result"]:
            m = dict(r["metric"])
            name = m.pop("__name__")
            out[(name, frozenset(m.items()))] = float(r["value"][1])
        return out


# --- the strict fake --------------------------------------------------------

def varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def fields(buf):
    """(field number, wire type, value) of one protobuf message."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            n, i = varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        yield num, wt, v


def decode_write_request(body):
    """[([(name, value)], [(value, ts_ms)])] from a WriteRequest."""
    import struct
    series = []
    for num, wt, ts in fields(body):
        assert num == 1 and wt == 2, "WriteRequest has only field 1"
        labels, samples = [], []
        for n, w, v in fields(ts):
            if n == 1:
                d = {k: x.decode() for k, _, x in fields(v)}
                labels.append((d.get(1, ""), d.get(2, "")))
            elif n == 2:
                d = {k: x for k, _, x in fields(v)}
                samples.append((struct.unpack("<d", d.get(1, b"\0" * 8))[0],
                                d.get(2, 0)))
            else:
                raise AssertionError("TimeSeries field %d" % n)
        series.append((labels, samples))
    return series


class Fake:
    """Answers `code` to every push; records what it got, or why it is not
    what the specification says."""

    def __init__(self, code=204):
        self.code = code
        self.pushes = []
        self.errors = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                fake.check(self.headers, body)
                self.send_response(fake.code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/api/v1/write" % \
            self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def check(self, h, body):
        want = {"Content-Type": "application/x-protobuf",
                "Content-Encoding": "snappy",
                "X-Prometheus-Remote-Write-Version": "0.1.0"}
        for k, v in want.items():
            if h.get(k) != v:
                self.errors.append("%s: %r" % (k, h.get(k)))
        if not (h.get("User-Agent") or "").startswith("obs-sidecar/"):
            self.errors.append("User-Agent %r" % h.get("User-Agent"))
        try:
            series = decode_write_request(snappy.uncompress(body))
        except Exception as e:          # noqa: BLE001  (recorded)
            self.errors.append("body: %r" % e)
            return
        for labels, samples in series:
            names = [n for n, _ in labels]
            if names != sorted(names) or len(set(names)) != len(names):
                self.errors.append("labels not sorted/unique: %r" % names)
            if "__name__" not in names or any(v == "" for _, v in labels):
                self.errors.append("no name or an empty value: %r" % labels)
            if len(samples) != 1:
                self.errors.append("samples: %r" % samples)
        self.pushes.append({"org": h.get("X-Scope-OrgID"), "body": body,
                            "series": series})

    def stop(self):
        self.server.shutdown()


def traffic(stack, n, tenants=("tenant-a", "tenant-b")):
    for i in range(n):
        t = tenants[i % len(tenants)]
        request(stack.gateway + "/api/users/%d" % i,
                headers={"X-Tenant-ID": t})
        request(stack.gateway + "/ml/predict", method="POST", body=b"x" * i,
                headers={"X-Tenant-ID": t})
    request(stack.gateway + "/api/fail")


def served(stack):
    return {k: v for k, v in stack.metrics().items() if k[0] in FAMILIES}


class RemoteWriteTest(unittest.TestCase):

    def start(self, rw):
        return destination_stack(self, "remote_write", rw)

    def settle(self, stack, n_requests):
        wait_for(lambda: sum(v for (n, _), v in stack.metrics().items()
                             if n == "http_server_requests_total")
                 >= n_requests, what="records aggregated")

    def test_series_read_back_equal_what_metrics_serves(self):
        prom = RealPrometheus(os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                           "obs-rw-%d" % os.getpid()))
        self.addCleanup(prom.stop)
        prom.start()
        stack = self.start({"url": prom.url("api/v1/write"), "interval": 1})
        traffic(stack, 20)
        self.settle(stack, 41)
        want = served(stack)

        def read_back():
            got = {}
            for name in FAMILIES:
                got.update(prom.instant(name))
            return got

        wait_for(lambda: read_back() == want, timeout=15,
                 what="Prometheus to hold what /metrics serves")
        got = read_back()
        self.assertEqual(set(got), set(want))
        self.assertGreater(len(got), 20)
        self.assertTrue(any(n == "http_server_requests_total"
                            and ("tenant", "tenant-b") in ls
                            for n, ls in got))

    def test_counters_never_go_backwards_across_an_outage(self):
        prom = RealPrometheus(os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                           "obs-rw-out-%d" % os.getpid()))
        self.addCleanup(prom.stop)
        prom.start()
        stack = self.start({"url": prom.url("api/v1/write"),
                            "interval": "500ms"})
        traffic(stack, 10)
        time.sleep(2)
        prom.stop()                 # the receiver is down ...
        traffic(stack, 30)          # ... while counters keep growing
        time.sleep(3)
        m = stack.metrics()
        self.assertGreater(m[("obs_remote_write_requests_total",
                              frozenset({("result", "retried")}))], 0)
        prom.start()
        traffic(stack, 10)
        self.settle(stack, 101)
        want = served(stack)
        wait_for(lambda: prom.instant("http_server_requests_total") == {
            k: v for k, v in want.items()
            if k[0] == "http_server_requests_total"}, timeout=60,
            what="the queue delivered after the outage")

        rng = prom.query("api/v1/query",
                         query="http_server_requests_total[10m]")["result"]
        self.assertTrue(rng)
        for series in rng:
            values = [float(v) for _, v in series["values"]]
            self.assertEqual(values, sorted(values), series["metric"])
        resets = prom.query("api/v1/query", query="sum(resets("
                            "http_server_requests_total[10m]))")["result"]
        self.assertEqual(float(resets[0]["value"][1]), 0)
        m = stack.metrics()
        self.assertEqual(m[("obs_remote_write_samples_dropped_total",
                            frozenset({("reason", "rejected")}))], 0)

    def test_a_400_is_not_retried(self):
        fake = Fake(400)
        self.addCleanup(fake.stop)
        stack = self.start({"url": fake.url, "interval": 3600})
        time.sleep(4)               # backoff would have retried 3 times
        self.assertEqual(fake.errors, [])
        self.assertEqual(len(fake.pushes), 1)
        m = stack.metrics()
        self.assertEqual(m[("obs_remote_write_requests_total",
                            frozenset({("result", "rejected")}))], 1)
        self.assertEqual(m[("obs_remote_write_requests_total",
                            frozenset({("result", "retried")}))], 0)
        self.assertGreater(m[("obs_remote_write_samples_dropped_total",
                              frozenset({("reason", "rejected")}))], 0)

    def test_a_redirect_keeps_the_samples_and_says_so(self):
        """A 3xx is a configuration error: the samples are kept (they used
        to be dropped as `rejected`), the redirect is never followed, and
        the log says what to fix."""
        for code in (301, 307, 308):
            with self.subTest(code=code):
                fake = Fake(code)
                self.addCleanup(fake.stop)
                stack = self.start({"url": fake.url, "interval": 3600})
                wait_for(lambda: len(fake.pushes) >= 2, timeout=10,
                         what="a retry after the redirect")
                m = stack.metrics()
                self.assertEqual(m[("obs_remote_write_samples_dropped_total",
                                    frozenset({("reason", "rejected")}))], 0)
                self.assertGreaterEqual(m[(
                    "obs_exporter_redirects_total",
                    frozenset({("exporter", "remote_write")}))], 1)
                with open(os.path.join(stack.dir, "sidecar.log")) as f:
                    self.assertIn("answers HTTP %d: redirects are not "
                                  "followed" % code, f.read())
                fake.code = 204
                wait_for(lambda: stack.metrics()[(
                    "obs_remote_write_requests_total",
                    frozenset({("result", "success")}))] == 1, timeout=10,
                    what="delivered once the URL answers")
                self.assertEqual(len({p["body"] for p in fake.pushes}), 1)

    def test_5xx_and_429_are_retried_with_the_same_body(self):
        for code in (503, 429):
            with self.subTest(code=code):
                fake = Fake(code)
                self.addCleanup(fake.stop)
                stack = self.start({"url": fake.url, "interval": 3600})
                wait_for(lambda: len(fake.pushes) >= 3, timeout=10,
                         what="retries")
                self.assertEqual(fake.errors, [])
                self.assertEqual(len({p["body"] for p in fake.pushes}), 1)
                fake.code = 204
                wait_for(lambda: stack.metrics()[(
                    "obs_remote_write_requests_total",
                    frozenset({("result", "success")}))] == 1, timeout=10,
                    what="delivered once the receiver is back")

    def test_each_tenant_gets_its_own_org_id(self):
        fake = Fake(204)
        self.addCleanup(fake.stop)
        stack = self.start({"url": fake.url, "interval": 1,
                            "tenant_header": "per_tenant",
                            "operator_tenant": "gateway-ops",
                            "max_samples_per_send": 50})
        traffic(stack, 20)
        self.settle(stack, 41)
        # one collection is several pushes (50 samples each), the
        # operator's first: wait for a whole one, however slow the machine
        wanted = {"tenant-a", "tenant-b", "gateway-ops"}
        wait_for(lambda: {p["org"] for p in fake.pushes} >= wanted,
                 what="pushes under every org id")
        self.assertEqual(fake.errors, [])
        orgs = set()
        for p in fake.pushes:
            orgs.add(p["org"])
            for labels, _ in p["series"]:
                tenant = dict(labels).get("tenant")
                if p["org"] == "gateway-ops":
                    self.assertIn(tenant, (None, "none"), labels)
                else:
                    self.assertEqual(tenant, p["org"], labels)
        self.assertEqual(orgs, wanted)

    def test_flag_and_environment_name_the_url(self):
        fake = Fake(204)
        self.addCleanup(fake.stop)
        os.environ["OBS_SIDECAR_REMOTE_WRITE_URL"] = fake.url
        try:
            stack = Stack(GATEWAY_HTTP)
            self.addCleanup(stack.stop)
            stack.start_sidecar()
        finally:
            del os.environ["OBS_SIDECAR_REMOTE_WRITE_URL"]
        wait_for(lambda: fake.pushes, what="a push from the environment's "
                 "URL")
        fake2 = Fake(204)
        self.addCleanup(fake2.stop)
        stack2 = Stack(GATEWAY_HTTP, sidecar_args=["--remote-write-url",
                                                   fake2.url])
        self.addCleanup(stack2.stop)
        stack2.start_sidecar()
        wait_for(lambda: fake2.pushes, what="a push from the flag's URL")


if __name__ == "__main__":
    main()
