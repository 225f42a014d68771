#!/usr/bin/python3
"""Dashboards and recording rules against real data: nginx + module +
sidecar + a real Prometheus loaded with the project's rules.  Every
dashboard query (template variables widened) and every recording rule runs
without error, and the gateway panels return data."""

import glob
import json
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (ROOT, GATEWAY_HTTP, Stack, request, value,  # noqa
                     wait_for, main)

NGINX_HTTP = GATEWAY_HTTP

# panels that need something this test does not run
NEEDS_OTHER_SOURCES = {
    "obs-system": "node exporter and cAdvisor",
    ("obs-pipeline", "Exporter deliveries by result"): "the log/span exporters",
    ("obs-pipeline", "Exporter spool use"): "the log/span exporters",
    ("obs-slo", "Burn-rate alerts firing"): "a burning SLO",
}

WIDEN = [
    (re.compile(r"\$__rate_interval"), "1m"),
    (re.compile(r"\$__range"), "5m"),
    (re.compile(r"\$__interval"), "15s"),
    (re.compile(r"\$(service|route|tenant|instance)\b"), ".*"),
]


def widen(expr):
    for pattern, repl in WIDEN:
        expr = pattern.sub(repl, expr)
    return expr


def label_values_query(q):
    m = re.match(r"label_values\((.*),\s*(\w+)\)$", q.strip())
    return "group by (%s) (%s)" % (m.group(2), m.group(1))


class DashboardTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(NGINX_HTTP)
        cls.addClassCleanup(cls.stack.stop)
        cls.stack.start_sidecar()
        cls.stack.start_nginx()
        g = cls.stack.gateway
        for i in range(40):
            tenant = ["acme", "globex", "tenant_001"][i % 3]
            request(g + "/api/v1/users/%d" % i, headers={"X-Tenant-ID": tenant})
            request(g + "/ml/predict", method="POST", body=b"{}",
                    headers={"X-Tenant-ID": tenant})
            if i % 5 == 0:
                request(g + "/api/fail", headers={"X-Tenant-ID": tenant})
                request(g + "/api/limited", headers={"X-Tenant-ID": tenant})
        wait_for(lambda: value(cls.stack.metrics(),
                               "obs_records_received_total") == 96,
                 what="96 records")

        rule_files = [f for f in glob.glob(os.path.join(ROOT, "alert-rules",
                                                        "*.yml"))
                      if not f.endswith("alertmanager.yml")]
        target = "127.0.0.1:%d" % cls.stack.metrics_port
        cls.prom = cls.stack.start_prometheus(
            "  - job_name: obs-sidecar\n"
            "    static_configs: [{targets: ['%s']}]\n" % target, [],
            rule_files=rule_files)

        # the RED group evaluates every 30 s: wait for its first results
        wait_for(lambda: cls.prom.query(
            "api/v1/query", query="service:http_server_requests:rate5m")
            ["result"], timeout=90, interval=1, what="recording rules")

    def query(self, expr):
        return self.prom.query("api/v1/query", query=expr)["result"]

    def test_dashboards_are_up_to_date(self):
        p = subprocess.run(["/usr/bin/python3",
                            os.path.join(ROOT, "dashboards", "build.py"),
                            "--check"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_every_panel_query_runs_and_gateway_panels_have_data(self):
        checked = 0
        for path in sorted(glob.glob(os.path.join(ROOT, "dashboards",
                                                  "*.json"))):
            with open(path) as f:
                d = json.load(f)
            for v in d["templating"]["list"]:
                q = label_values_query(v["query"]["query"])
                result = self.query(widen(q))
                if d["uid"] not in NEEDS_OTHER_SOURCES:
                    self.assertTrue(result, "%s: variable %s is empty"
                                    % (d["uid"], v["name"]))
            for p in d["panels"]:
                for t in p["targets"]:
                    with self.subTest(dashboard=d["uid"], panel=p["title"],
                                      ref=t["refId"]):
                        result = self.query(widen(t["expr"]))
                        checked += 1
                        if (d["uid"] in NEEDS_OTHER_SOURCES
                                or (d["uid"], p["title"])
                                in NEEDS_OTHER_SOURCES):
                            continue
                        self.assertTrue(result, "no data for %r"
                                        % widen(t["expr"]))
        self.assertGreater(checked, 40)

    def test_every_recording_rule_evaluates_with_data(self):
        records = []
        for path in glob.glob(os.path.join(ROOT, "alert-rules", "*.yml")):
            with open(path) as f:
                records += re.findall(r"^\s*- record: (\S+)", f.read(), re.M)
        self.assertGreater(len(records), 40)

        def all_present():
            missing = [r for r in records if not self.query(r)]
            return not missing or None

        try:
            wait_for(all_present, timeout=60, interval=2,
                     what="every recorded series")
        except AssertionError:
            missing = [r for r in records if not self.query(r)]
            self.fail("recording rules without data: %s" % missing)

        rules = self.prom.query("api/v1/rules")["groups"]
        unhealthy = [(r.get("name"), r.get("lastError")) for g in rules
                     for r in g["rules"] if r.get("health") != "ok"]
        self.assertEqual(unhealthy, [])

    def test_grafana_provisioning_refers_to_fixed_uids(self):
        with open(os.path.join(ROOT, "dashboards", "provisioning",
                               "datasources.yml")) as f:
            text = f.read()
        for uid in ("prometheus", "loki", "jaeger"):
            self.assertIn("uid: %s" % uid, text)
        for path in glob.glob(os.path.join(ROOT, "dashboards", "*.json")):
            with open(path) as f:
                d = json.load(f)
            for p in d["panels"]:
                self.assertEqual(p["datasource"]["uid"], "prometheus")


if __name__ == "__main__":
    main()
