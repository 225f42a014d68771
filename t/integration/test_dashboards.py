#!/usr/bin/python3
"""Dashboards and recording rules against real data: nginx + module +
sidecar + prometheus-nginx-exporter (stub_status) + a real Prometheus
loaded with the project's rules.  Every dashboard's JSON passes what
Grafana needs to load it (dashboards/validate.py, links included), every
PromQL query (template variables widened) and every recording rule runs
without error, the gateway panels (tenant rankings with 5xx, 429 and 401,
nginx's connections) return data, error-ratio and budget panels show 0 /
a full budget for a service without 5xx instead of nothing, and the
30-day budget is a 30-day one (promtool, over four days of samples)."""

import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest
import urllib.parse

import yaml

sys.path.insert(0, os.path.dirname(__file__))
from harness import (ROOT, GATEWAY_HTTP, Stack, free_port, request,  # noqa
                     value, wait_for, main)
sys.path.insert(0, os.path.join(ROOT, "dashboards"))
import validate  # noqa: E402

# ml-engine answers with the headers the shipped nginx.conf turns into
# business metrics (obs_metric), so their panels have data too
NGINX_HTTP = GATEWAY_HTTP.replace(
    "            obs_route /ml/predict;\n",
    "            obs_route /ml/predict;\n"
    "            obs_metric counter http_server_recommendations_total\n"
    "                $upstream_http_x_recommendations_count;\n"
    "            obs_metric counter http_server_cache_requests_total 1\n"
    "                label=cache:$upstream_http_x_cache:HIT,MISS;\n"
    "            obs_metric gauge http_server_embedding_cache_age_seconds\n"
    "                $upstream_http_x_embedding_cache_age;\n").replace(
    'location /ml/ { return 200 "prediction\\n"; }',
    'location /ml/ { add_header X-Recommendations-Count 3; '
    'add_header X-Cache HIT; add_header X-Embedding-Cache-Age 120; '
    'return 200 "prediction\\n"; }').replace(
    '        location /api/limited { return 429 "slow down\\n"; }\n',
    '        location /api/limited { return 429 "slow down\\n"; }\n'
    '        location /api/denied { return 401 "who are you\\n"; }\n')
assert NGINX_HTTP.count("obs_metric") == 3 and "X-Cache HIT" in NGINX_HTTP
assert "/api/denied" in NGINX_HTTP
# nginx's own counters, read by prometheus-nginx-exporter
STUB = """
    server {
        listen 127.0.0.1:STUB_PORT;
        obs off;
        location = /stub_status { stub_status; }
    }
"""
EXPORTER = shutil.which("prometheus-nginx-exporter")

# panels that need something this test does not run
NEEDS_OTHER_SOURCES = {
    ("obs-pipeline", "Exporter deliveries by result"): "the log/span exporters",
    ("obs-pipeline", "Exporter spool use"): "the log/span exporters",
    ("obs-pipeline", "Audit stream to Loki"): "an audit file shipped to Loki",
    ("obs-slo", "Burn-rate alerts firing"): "a burning SLO",
    ("obs-tenants", "Token verification results (obs_jwt)"): "obs_jwt",
}


def needs_other_sources(uid, title=None):
    """True for a panel (or, without a title, a dashboard's variables)
    whose data this test does not make.  The System health dashboard reads
    the node exporter, cAdvisor, postgres_exporter and redis_exporter
    (test_system_health.py), all but its nginx row."""
    if uid == "obs-system":
        return title is None or "nginx" not in title
    return (uid, title) in NEEDS_OTHER_SOURCES

WIDEN = [
    (re.compile(r"\$__rate_interval"), "5m"),
    (re.compile(r"\$__range"), "5m"),
    (re.compile(r"\$__interval"), "15s"),
    (re.compile(r"\$topk\b"), "10"),
    (re.compile(r"\$(service|route|tenant|instance|gateway)\b"), ".*"),
]


def widen(expr, **values):
    for name, v in values.items():
        expr = re.sub(r"\$%s\b" % name, v, expr)
    for pattern, repl in WIDEN:
        expr = pattern.sub(repl, expr)
    return expr


def dashboards():
    for path in sorted(glob.glob(os.path.join(ROOT, "dashboards",
                                              "*.json"))):
        with open(path) as f:
            yield json.load(f)


def parse_logql(queries):
    """Errors Grafana's LogQL parser finds (None per valid query)."""
    p = subprocess.run(
        ["node", os.path.join(ROOT, "t", "helpers", "js", "logql_check.js")],
        input=json.dumps(queries), capture_output=True, text=True,
        check=True)
    return json.loads(p.stdout)


def prometheus_targets(panel):
    return [t for t in panel.get("targets", [])
            if t["datasource"]["type"] == "prometheus"]


def label_values_query(q):
    m = re.match(r"label_values\((.*),\s*(\w+)\)$", q.strip())
    return "group by (%s) (%s)" % (m.group(2), m.group(1))


class DashboardTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not EXPORTER:
            raise unittest.SkipTest("prometheus-nginx-exporter is missing "
                                    "(scripts/install-deps.sh)")
        stub = free_port()
        cls.stack = Stack(NGINX_HTTP + STUB.replace("STUB_PORT", str(stub)))
        cls.addClassCleanup(cls.stack.stop)
        cls.stack.start_sidecar()
        cls.stack.start_nginx()
        exporter = free_port()
        log = open(os.path.join(cls.stack.dir, "nginx-exporter.log"), "w")
        cls.addClassCleanup(log.close)
        cls.stack.procs.append(subprocess.Popen(
            [EXPORTER, "--nginx.scrape-uri=http://127.0.0.1:%d/stub_status"
             % stub, "--web.listen-address=127.0.0.1:%d" % exporter],
            stdout=log, stderr=log))
        wait_for(lambda: socket.create_connection(
            ("127.0.0.1", exporter), timeout=1).close() or True,
            what="nginx-exporter listening")
        cls.send_traffic(0)
        wait_for(lambda: value(cls.stack.metrics(),
                               "obs_records_received_total") == 104,
                 what="104 records")

        rule_files = [f for f in glob.glob(os.path.join(ROOT, "alert-rules",
                                                        "*.yml"))
                      if not f.endswith("alertmanager.yml")]
        # the jobs and the pairing label of the shipped configurations
        cls.prom = cls.stack.start_prometheus(
            "  - job_name: obs-sidecar\n"
            "    static_configs: [{targets: ['127.0.0.1:%d'], "
            "labels: {gateway: g1}}]\n"
            "  - job_name: obs-nginx\n"
            "    static_configs: [{targets: ['127.0.0.1:%d'], "
            "labels: {gateway: g1}}]\n"
            % (cls.stack.metrics_port, exporter), [],
            rule_files=rule_files)

        # a second round once Prometheus holds the series, so that rates
        # are not 0 (a ratio of two zero rates is NaN, not a value)
        wait_for(lambda: cls.prom.query(
            "api/v1/query", query="obs_records_received_total")["result"],
            timeout=30, interval=0.5, what="first scrape")
        cls.send_traffic(40)
        wait_for(lambda: value(cls.stack.metrics(),
                               "obs_records_received_total") == 208,
                 what="208 records")

        # the RED group evaluates every 30 s: wait for results that saw the
        # second round (NaN >= 0 is false)
        for ready in ('service:http_server_request_error_ratio:rate5m'
                      '{service="ml-engine"} >= 0',
                      'tenant:slo_availability_errors:ratio_rate3d'
                      '{service="ml-engine"} >= 0'):
            wait_for(lambda: cls.prom.query(
                "api/v1/query", query=ready)["result"], timeout=90,
                interval=1, what=ready)

    @classmethod
    def send_traffic(cls, first):
        """104 requests (104 records) over both services and 3 tenants,
        with 5xx, 429 and 401 answers."""
        g = cls.stack.gateway
        for i in range(first, first + 40):
            tenant = ["acme", "globex", "tenant_001"][i % 3]
            request(g + "/api/v1/users/%d" % i, headers={"X-Tenant-ID": tenant})
            request(g + "/ml/predict", method="POST", body=b"{}",
                    headers={"X-Tenant-ID": tenant})
            if i % 5 == 0:
                request(g + "/api/fail", headers={"X-Tenant-ID": tenant})
                request(g + "/api/limited", headers={"X-Tenant-ID": tenant})
                request(g + "/api/denied", headers={"X-Tenant-ID": tenant})

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
                if v["type"] != "query":
                    continue
                q = label_values_query(v["query"]["query"])
                result = self.query(widen(q))
                if not needs_other_sources(d["uid"]) or v["name"] == "gateway":
                    self.assertTrue(result, "%s: variable %s is empty"
                                    % (d["uid"], v["name"]))
            for p in d["panels"]:
                for t in prometheus_targets(p):
                    with self.subTest(dashboard=d["uid"], panel=p["title"],
                                      ref=t["refId"]):
                        result = self.query(widen(t["expr"]))
                        checked += 1
                        if needs_other_sources(d["uid"], p["title"]):
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

    def test_error_ratio_and_budget_panels_show_zero_without_5xx(self):
        # ml-engine answered every request with 200
        checked = 0
        for d in dashboards():
            for p in d["panels"]:
                if not re.search(r"(?i)error ratio|budget", p["title"]):
                    continue
                for t in prometheus_targets(p):
                    with self.subTest(dashboard=d["uid"], panel=p["title"]):
                        result = self.query(widen(t["expr"],
                                                  service="ml-engine"))
                        self.assertTrue(result, "No data for ml-engine: %r"
                                        % t["expr"])
                        want = 1 if "budget" in p["title"].lower() else 0
                        for r in result:
                            self.assertEqual(float(r["value"][1]), want, r)
                        checked += 1
        self.assertGreaterEqual(checked, 5)

    def test_loki_panels_select_a_stream_per_service_and_tenant(self):
        logs = [(d["uid"], p) for d in dashboards() for p in d["panels"]
                if p["type"] == "logs"]
        # the audit trail's stream is the operator's: no service or tenant
        audit = [(u, p) for u, p in logs
                 if p["targets"][0]["expr"].startswith('{job="obs-audit"}')]
        self.assertEqual(sorted({u for u, _ in audit}), ["obs-pipeline"])
        self.assertEqual(len(audit), 2)
        logs = [x for x in logs if x not in audit]
        self.assertEqual(sorted({u for u, _ in logs}),
                         ["obs-red", "obs-tenants"])
        for uid, p in logs:
            for t in p["targets"]:
                expr = widen(t["expr"])
                # Loki refuses a selector whose every matcher matches ""
                m = re.match(r"\{([^}]*)\}", expr)
                self.assertTrue(any(
                    not re.fullmatch(r'\w+=~"\.\*"', x.strip())
                    for x in m.group(1).split(",")), expr)
                self.assertIn('service=~"$service"', t["expr"])
                self.assertIn('tenant_id=~"$tenant"', t["expr"])
        self.assertEqual(logs[0][1]["title"], "Error logs (5xx)")

    def test_loki_queries_parse_with_grafanas_logql_grammar(self):
        queries = [t["expr"] for d in dashboards() for p in d["panels"]
                   for t in p.get("targets", [])
                   if t["datasource"]["type"] == "loki"]
        self.assertGreaterEqual(len(queries), 4)
        # and those of the links that open a tenant's log lines in Explore
        explore = [q["expr"].replace("${__field.labels.tenant}", "acme")
                   .replace("${__data.fields.tenant}", "acme")
                   for d in dashboards() for p in d["panels"]
                   for link in validate.panel_links(p)
                   if link["url"].startswith("/explore")
                   for pane in json.loads(urllib.parse.parse_qs(
                       urllib.parse.urlsplit(link["url"]).query)["panes"][0]
                   ).values()
                   for q in pane["queries"] if q["datasource"]["type"] == "loki"]
        self.assertGreaterEqual(len(explore), 9)
        queries += explore
        # and the query Jaeger uses to open a trace's log lines
        with open(os.path.join(ROOT, "dashboards", "provisioning",
                               "datasources.yml")) as f:
            sources = yaml.safe_load(f)["datasources"]
        queries += [s["jsonData"]["tracesToLogsV2"]["query"].replace(
            "$$", "$") for s in sources if s["type"] == "jaeger"]
        broken = '{service=~"$service"} | tenant_id=~'
        self.assertEqual(parse_logql(queries + [broken])[:-1],
                         [None] * len(queries))
        self.assertIsNotNone(parse_logql([broken])[0])


class ThirtyDayBudgetTest(unittest.TestCase):
    """The "budget left (30 days)" panels count 30 days, not 3: promtool
    with the rules of slo.yml over four days of samples, 10 minutes apart:
    a 5xx every 10 minutes of the first day, none after (10 requests/s)."""

    def budget_expr(self, uid, title):
        for d in dashboards():
            for p in d["panels"]:
                if d["uid"] == uid and p["title"] == title:
                    return widen(p["targets"][0]["expr"],
                                 service="backend-api", tenant="acme")
        self.fail("no panel %r on %s" % (title, uid))

    def test_budget_panels_count_thirty_days(self):
        service = self.budget_expr("obs-slo",
                                   "Availability budget left (30 days)")
        tenant = self.budget_expr(
            "obs-tenants",
            "Availability error budget left (30 days), the $topk lowest")
        # 864 errors among 3,456,864 requests in 96 hours
        want = 1 - (864 / 3456864) / (1 - 0.999)
        three_days = ("1 - service:slo_availability_errors:ratio_rate3d / "
                      "on() group_left() (1 - slo:availability:objective)")
        test = {
            "rule_files": [os.path.join(ROOT, "alert-rules", "slo.yml")],
            "evaluation_interval": "10m",
            "tests": [{
                "interval": "10m",
                "input_series": [
                    {"series": 'http_server_requests_total{service="backend-api",'
                               'route="/a",method="GET",code="200",tenant="acme"}',
                     "values": "0+6000x576"},
                    {"series": 'http_server_requests_total{service="backend-api",'
                               'route="/a",method="GET",code="500",tenant="acme"}',
                     "values": "0+6x144 864+0x431"},
                ],
                "promql_expr_test": [
                    {"expr": "abs((%s) - %.17g) < bool 1e-9" % (service, want),
                     "eval_time": "96h",
                     "exp_samples": [{"labels": '{service="backend-api"}',
                                      "value": 1}]},
                    {"expr": "abs((%s) - %.17g) < bool 1e-9" % (tenant, want),
                     "eval_time": "96h",
                     "exp_samples": [{"labels": '{service="backend-api",'
                                                'tenant="acme"}',
                                      "value": 1}]},
                    # what the 3-day ratio said: the whole budget is left
                    {"expr": three_days, "eval_time": "96h",
                     "exp_samples": [{"labels": '{service="backend-api"}',
                                      "value": 1}]},
                ],
            }],
        }
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "budget_test.yml")
            with open(path, "w") as f:
                json.dump(test, f)          # JSON is YAML
            p = subprocess.run(["promtool", "test", "rules", path],
                               capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertLess(want, 0.76)


class GrafanaLoadTest(unittest.TestCase):
    """What Grafana needs to load and import the dashboards, without a
    Grafana: the shipped files pass, broken ones are caught."""

    def test_shipped_dashboards_and_provisioning_pass(self):
        for d in dashboards():
            self.assertEqual(validate.check_dashboard(d["uid"], d), [])
        self.assertEqual(validate.check_links(
            {d["uid"]: d for d in dashboards()}), [])
        self.assertEqual(validate.check_provisioning(), [])

    def test_dashboards_link_to_each_other_and_to_logs_and_traces(self):
        ds = {d["uid"]: d for d in dashboards()}
        for d in ds.values():
            self.assertEqual([l["type"] for l in d["links"]], ["dashboards"])
            self.assertTrue(d["links"][0]["includeVars"])
        urls = [link["url"] for p in ds["obs-tenants"]["panels"]
                for link in validate.panel_links(p)]
        self.assertTrue(any(u.startswith("/d/obs-tenants/") for u in urls))
        self.assertTrue(any("%22%24%7Bloki%7D" in u or "${loki}" in u
                            for u in urls if u.startswith("/explore")))
        self.assertTrue(any("${jaeger}" in u for u in urls))
        # from the other dashboards to a tenant's drill-down
        for uid in ("obs-red", "obs-slo"):
            self.assertTrue(any(
                link["url"].startswith("/d/obs-tenants/")
                for p in ds[uid]["panels"]
                for link in validate.panel_links(p)), uid)
        # every tenant ranking is bounded by $topk (or a fixed top/bottom)
        for p in ds["obs-tenants"]["panels"]:
            for t in p.get("targets", []):
                if "by (tenant" in t["expr"] and p["type"] != "logs":
                    self.assertRegex(t["expr"], r"(top|bottom)k\(\$topk,"
                                     r"|and on \(tenant\) topk",
                                     p["title"])

    def test_broken_links_are_caught(self):
        def broken(change):
            ds = {d["uid"]: json.loads(json.dumps(d)) for d in dashboards()}
            change(ds)
            return " ".join(validate.check_links(ds))

        def links(ds):
            p = [p for p in ds["obs-tenants"]["panels"]
                 if validate.panel_links(p)][1]
            return p["fieldConfig"]["defaults"]["links"]

        def unknown_uid(ds):
            links(ds)[0]["url"] = "/d/nowhere/x?var-tenant=a"

        def unknown_var(ds):
            links(ds)[0]["url"] = "/d/obs-slo/x?var-tenant=a"

        def explore_uid(ds):
            links(ds)[1]["url"] = links(ds)[1]["url"].replace(
                "${loki}", "loki", 1)

        def no_label(ds):
            links(ds)[0]["url"] = links(ds)[0]["url"].replace(
                "labels.tenant", "labels.customer")

        def elsewhere(ds):
            links(ds)[0]["url"] = "https://example.com/"

        for change, says in [(unknown_uid, "does not exist"),
                             (unknown_var, "does not have"),
                             (explore_uid, "not a datasource variable"),
                             (no_label, "do not produce"),
                             (elsewhere, "neither a dashboard")]:
            self.assertIn(says, broken(change), change.__name__)

    def test_every_mounted_provisioning_file_is_expanded(self):
        """An override compose file's provisioning is checked with the
        merged environment: ${VAR:-default} (which Grafana leaves as it is)
        and a variable no stack sets are caught."""
        import tempfile
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        with open(os.path.join(d, "ds.yml"), "w") as f:
            f.write("apiVersion: 1\ndatasources:\n"
                    "  - {name: A, uid: a, type: prometheus,"
                    " url: 'http://${A_HOST:-a}:9090'}\n"
                    "  - {name: B, uid: b, type: loki, url: 'http://$B_HOST'}\n")
        with open(os.path.join(d, "docker-compose.yml"), "w") as f:
            f.write("services:\n  grafana:\n    environment: {X: y}\n")
        with open(os.path.join(d, "docker-compose.extra.yml"), "w") as f:
            f.write("services:\n  grafana:\n    environment: {A_HOST: h}\n"
                    "    volumes: ['./ds.yml:/etc/grafana/provisioning/"
                    "datasources/ds.yml:ro']\n")
        errors = " | ".join(validate.check_provisioning(
            os.path.join(d, "docker-compose.yml")))
        self.assertIn("${A_HOST:-a}: Grafana expands only", errors)
        self.assertIn("$B_HOST is not set", errors)
        self.assertIn("docker-compose.extra.yml", errors)

    def broken(self, change):
        d = json.loads(json.dumps(next(iter(dashboards()))))
        change(d)
        return " ".join(validate.check_dashboard("d", d))

    def test_broken_dashboards_are_caught(self):
        def dup_id(d):
            d["panels"][1]["id"] = d["panels"][0]["id"]

        def hard_uid(d):
            d["panels"][0]["datasource"] = {"type": "prometheus",
                                            "uid": "prometheus"}

        def undefined_var(d):
            d["panels"][0]["targets"][0]["expr"] += ' * on() $nowhere'

        def wrong_type(d):
            d["panels"][0]["datasource"]["uid"] = "${loki}"

        def old_schema(d):
            d["schemaVersion"] = 16

        def no_input(d):
            d["__inputs"] = d["__inputs"][1:]

        for change, says in [(dup_id, "not unique"),
                             (hard_uid, "hard-coded datasource uid"),
                             (undefined_var, "$nowhere is used"),
                             (wrong_type, "is a loki variable"),
                             (old_schema, "schemaVersion"),
                             (no_input, "not in __inputs")]:
            self.assertIn(says, self.broken(change), change.__name__)


if __name__ == "__main__":
    main()
