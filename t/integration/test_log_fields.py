#!/usr/bin/python3
"""obs_log_field end to end (issue #11, item 9): real nginx + module ->
obs-sidecar -> the strict fake Loki (native push, decoded by
loki-grpc-client's compiled logproto) and OTLP receiver (decoded by the
OpenTelemetry JS packages).  A plain field and an HMAC-SHA256 one (checked
with Python's hmac module) are keys of the log line and attributes of the
SERVER span, and never labels of /metrics; the clear user id goes nowhere."""

import hashlib
import hmac
import json
import os
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


class LogFieldsTest(unittest.TestCase):

    def test_fields_in_loki_line_and_span_never_in_metrics(self):
        rec = Receivers()
        self.addCleanup(rec.stop)
        stack = Stack(NGINX_HTTP, sidecar_config={
            "loki": {"url": rec.url + "/loki/api/v1/push",
                     "batch_wait_ms": 200},
            "otlp": {"endpoint": rec.url, "batch_wait_ms": 200}})
        self.addCleanup(stack.stop)
        with open(os.path.join(stack.dir, "user.key"), "wb") as f:
            f.write(KEY + b"\n")
        os.chmod(os.path.join(stack.dir, "user.key"), 0o644)
        stack.nginx_http_config = NGINX_HTTP.replace("DIR", stack.dir)
        stack.start_sidecar()
        stack.start_nginx()

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


if __name__ == "__main__":
    main()
