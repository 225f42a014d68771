#!/usr/bin/python3
"""`make demo` smoke test: the demo comes up on free ports, per-tenant
series reach the sidecar and Prometheus, nginx's own counters reach
Prometheus (job obs-nginx, paired with the sidecar by the gateway label)
while ObsRecordsNotReceived stays quiet, every request is an event of the
audit trail whose chain `demo.sh verify-audit` checks, and `make demo-stop`
stops it."""

import os
import re
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, ROOT, free_port, http_get, parse_text, wait_for, main  # noqa

import json


class DemoTest(unittest.TestCase):

    def test_demo_starts_shows_tenants_and_stops(self):
        env = dict(os.environ)
        ports = {}
        for name in ("GATEWAY_PORT", "BACKEND_PORT", "ML_PORT",
                     "SIDECAR_PORT", "PROMETHEUS_PORT", "ALERTMANAGER_PORT",
                     "STUB_STATUS_PORT", "NGINX_EXPORTER_PORT"):
            ports[name] = free_port()
            env[name] = str(ports[name])
        env["OBS_DEMO_DIR"] = tempfile.mkdtemp(prefix="obs-demo-")

        try:
            out = subprocess.run(["bash", "deploy/demo/demo.sh", "start"],
                                 cwd=ROOT, env=env, capture_output=True,
                                 text=True, timeout=300)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("http://127.0.0.1:%d/metrics"
                          % ports["SIDECAR_PORT"], out.stdout)
            # the status page's address comes first
            addresses = re.findall(r"https?://\S+", out.stdout)
            self.assertEqual(addresses[0], "http://127.0.0.1:%d/status"
                             % ports["SIDECAR_PORT"])

            samples = parse_text(http_get("http://127.0.0.1:%d/metrics"
                                          % ports["SIDECAR_PORT"])[2]
                                 .decode())
            tenants = {dict(ls).get("tenant") for (n, ls) in samples
                       if n == "http_server_requests_total"}
            self.assertTrue({"tenant_001", "tenant_002", "acme"} <= tenants,
                            tenants)
            services = {dict(ls).get("service") for (n, ls) in samples
                        if n == "http_server_requests_total"}
            self.assertEqual(services, {"backend-api", "ml-engine"})

            def prom_tenants():
                url = ("http://127.0.0.1:%d/api/v1/query?" %
                       ports["PROMETHEUS_PORT"]) + urllib.parse.urlencode(
                    {"query": "count by (tenant) "
                              "(http_server_requests_total)"})
                r = json.loads(http_get(url)[2])["data"]["result"]
                return len(r) >= 5 and r

            wait_for(prom_tenants, timeout=60, interval=1,
                     what="per-tenant series in Prometheus")

            # logs and spans land in local files
            logs = os.path.join(env["OBS_DEMO_DIR"], "logs")

            def lines(name):
                path = os.path.join(logs, name)
                if not os.path.exists(path):
                    return []
                with open(path) as f:
                    return [json.loads(l) for l in f if l.strip()]

            log_lines = wait_for(lambda: len(lines("requests.jsonl")) >= 300
                                 and lines("requests.jsonl"),
                                 what="300 log lines")
            self.assertTrue({"timestamp", "level", "trace_id", "tenant_id",
                             "endpoint", "latency_ms"} <= set(log_lines[0]))
            spans = wait_for(lambda: lines("spans.otlp.jsonl"),
                             what="OTLP/JSON spans")
            self.assertIn("resourceSpans", spans[0])

            self.assertEqual(http_get("http://127.0.0.1:%d/-/ready"
                                      % ports["ALERTMANAGER_PORT"])[0], 200)

            # every request of the traffic is in the audit trail, whose
            # chain holds
            trail = os.path.join(env["OBS_DEMO_DIR"], "audit", "audit.log")
            self.assertIn(trail, out.stdout)
            self.assertIn("deploy/demo/demo.sh verify-audit", out.stdout)

            def audited():
                if not os.path.exists(trail):
                    return []
                with open(trail) as f:
                    return [e for e in map(json.loads, f)
                            if e["event"] == "request"]
            reqs = wait_for(lambda: len(audited()) >= 300 and audited(),
                            what="300 requests in the audit trail")
            self.assertEqual({e["audited_by"] for e in reqs}, {"obs_audit"})
            self.assertTrue(all(re.fullmatch(r"[0-9a-f]{64}", e["client"])
                                for e in reqs))
            self.assertIn("/api/v1/recommendations",
                          {e["route"] for e in reqs})
            verify = subprocess.run(["bash", "deploy/demo/demo.sh",
                                     "verify-audit"], cwd=ROOT, env=env,
                                    capture_output=True, text=True,
                                    timeout=60)
            self.assertEqual(verify.returncode, 0, verify.stderr)
            self.assertIn("audit chain holds", verify.stdout)

            # nginx's requests beside the sidecar's records, one gateway
            def query(expr):
                url = ("http://127.0.0.1:%d/api/v1/query?" %
                       ports["PROMETHEUS_PORT"]) + urllib.parse.urlencode(
                    {"query": expr})
                return json.loads(http_get(url)[2])["data"]["result"]

            paired = wait_for(lambda: query(
                'sum by (gateway) (nginx_http_requests_total{job="obs-nginx"})'
                ' >= 300 and on (gateway) sum by (gateway) '
                '(obs_records_received_total{job="obs-sidecar"}) >= 300'),
                timeout=60, interval=1, what="nginx and sidecar paired")
            self.assertEqual(paired[0]["metric"], {"gateway": "demo"})
            self.assertEqual(query('ALERTS{alertname="ObsRecordsNotReceived"}'),
                             [])

            # the README's screenshot of the status page comes from here:
            # the demo's stack after a second round of traffic, so the
            # sparklines have points (docs/status-page.png is a copy)
            subprocess.run(["bash", "deploy/demo/demo.sh", "traffic", "300"],
                           cwd=ROOT, env=env, check=True, timeout=300)
            time.sleep(6)
            shot = os.path.join(BUILD, "status-demo.png")
            subprocess.run(["node", os.path.join(ROOT, "t", "helpers", "js",
                                                 "status_page.js"),
                            "screenshot", "http://127.0.0.1:%d/status"
                            % ports["SIDECAR_PORT"], shot],
                           check=True, timeout=120)
            with open(shot, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        finally:
            stop = subprocess.run(["bash", "deploy/demo/demo.sh", "stop"],
                                  cwd=ROOT, env=env, capture_output=True,
                                  text=True, timeout=60)
        self.assertEqual(stop.returncode, 0, stop.stderr)
        # the stop is the trail's last event, and the chain still holds
        with open(trail) as f:
            self.assertEqual(json.loads(f.readlines()[-1])["event"],
                             "sidecar_stop")
        verify = subprocess.run(["bash", "deploy/demo/demo.sh",
                                 "verify-audit"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(verify.returncode, 0, verify.stderr)
        self.assertRaises(Exception, http_get,
                          "http://127.0.0.1:%d/metrics"
                          % ports["SIDECAR_PORT"], None, 1)


if __name__ == "__main__":
    main()
