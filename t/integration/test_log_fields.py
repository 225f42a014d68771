#!/usr/bin/python3
"""obs_log_field end to end (issue #11, item 9): real nginx + module ->
obs-sidecar -> the strict fake Loki (native push, decoded by
loki-grpc-client's compiled logproto) and OTLP receiver (decoded by the
OpenTelemetry JS packages).  A plain field and an HMAC-SHA256 one (checked
with Python's hmac module) are keys of the log line and attributes of the
SERVER span, and never labels of /metrics; the clear user id goes nowhere.
A reload reads the key file again; a bad one is refused and the running key
stays."""

import hashlib
import hmac
import json
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Stack, request, wait_for, main  # noqa
from test_exporters import Receivers  # noqa

KEY = b"integration-key-for-log-fields-0123"

NGINX_HTTP = """
    obs_tenant $http_x_tenant_id;
    obs_trace_sample 1;
    server {
        listen 127.0.0.1:NGINX_PORT;
        location /api/ {
            obs_service_name backend-api;
            obs_route_auto on;
            obs_log_field plan $http_x_plan;
            obs_log_field user_hash $http_x_user hmac=DIR/user.key;
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
    }
    server {
        listen 127.0.0.1:BACKEND_PORT;
        obs off;
        location /api/ { return 200 "ok\\n"; }
    }
"""


def write_key(stack, key):
    path = os.path.join(stack.dir, "user.key")
    with open(path + ".new", "wb") as f:
        f.write(key + b"\n")
    os.chmod(path + ".new", 0o644)
    os.rename(path + ".new", path)


class LogFieldsTest(unittest.TestCase):

    def start(self):
        rec = Receivers()
        self.addCleanup(rec.stop)
        stack = Stack(NGINX_HTTP, sidecar_config={
            "loki": {"url": rec.url + "/loki/api/v1/push",
                     "batch_wait_ms": 200},
            "otlp": {"endpoint": rec.url, "batch_wait_ms": 200}})
        self.addCleanup(stack.stop)
        write_key(stack, KEY)
        stack.nginx_http_config = NGINX_HTTP.replace("DIR", stack.dir)
        stack.start_sidecar()
        stack.start_nginx()
        return stack, rec

    def test_fields_in_loki_line_and_span_never_in_metrics(self):
        stack, rec = self.start()

        want = hmac.new(KEY, b"alice@example.com",
                        hashlib.sha256).hexdigest()
        status, _ = request(stack.gateway + "/api/orders/17",
                            headers={"X-Tenant-ID": "acme", "X-Plan": "gold",
                                     "X-User": "alice@example.com"})
        self.assertEqual(status, 200)

        lines = wait_for(lambda: rec.lines(), what="a log line")
        self.assertEqual(rec.state()["errors"], [])
        self.assertEqual({p["format"] for p in rec.state()["loki"]},
                         {"protobuf"})
        line = json.loads(lines[0][1][1])
        self.assertEqual(line["plan"], "gold")
        self.assertEqual(line["user_hash"], want)
        self.assertEqual(line["endpoint"], "/api/orders/{id}")
        # fields stay in the line: not stream labels, not metadata
        self.assertNotIn("plan", lines[0][0])
        self.assertEqual(set(lines[0][1][2]), {"trace_id", "tenant_id"})

        spans = wait_for(lambda: [s for s in rec.spans() if s["kind"] == 2],
                         what="the SERVER span")
        attrs = spans[0]["attrs"]
        self.assertEqual(attrs["plan"], "gold")
        self.assertEqual(attrs["user_hash"], want)
        self.assertEqual(attrs["http.route"], "/api/orders/{id}")

        metrics = wait_for(
            lambda: any(n == "http_server_requests_total"
                        for n, _ in stack.metrics()) and stack.metrics(),
            what="the request counted")
        labels = {k for _, ls in metrics for k, _ in ls}
        values = {v for _, ls in metrics for _, v in ls}
        self.assertIn("tenant", labels)
        self.assertFalse(labels & {"plan", "user_hash"}, labels)
        self.assertFalse(values & {"gold", want}, values)

        everything = (json.dumps(rec.state()) + json.dumps(rec.spans())
                      + json.dumps([[n, sorted(ls)] for n, ls in metrics]))
        self.assertNotIn("alice", everything)


    def test_reload_reads_the_key_again(self):
        stack, rec = self.start()

        def user_hash(user):
            n = len(rec.lines())
            request(stack.gateway + "/api/x", headers={"X-User": user})
            lines = wait_for(lambda: len(rec.lines()) > n and rec.lines(),
                             what="the line of " + user)
            return json.loads(lines[-1][1][1])["user_hash"]

        self.assertEqual(user_hash("bob"),
                         hmac.new(KEY, b"bob", hashlib.sha256).hexdigest())

        new = b"the-key-after-the-reload-0123456789"
        write_key(stack, new)
        stack.nginx.send_signal(signal.SIGHUP)
        want = hmac.new(new, b"bob", hashlib.sha256).hexdigest()
        wait_for(lambda: user_hash("bob") == want, what="the new key used")

        # a short key is refused on reload: the running key stays
        write_key(stack, b"short")
        stack.nginx.send_signal(signal.SIGHUP)
        wait_for(lambda: "must hold a key" in open(os.path.join(
            stack.dir, "logs", "error.log")).read(), what="the refusal")
        self.assertEqual(user_hash("bob"), want)


if __name__ == "__main__":
    main()
