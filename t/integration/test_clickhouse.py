#!/usr/bin/python3
"""Per-tenant usage in the real ClickHouse (Debian's clickhouse-server,
started here on free ports with deploy/clickhouse/schema.sql): after traffic
through nginx + module + sidecar the rows add up to the requests sent per
tenant, also across a ClickHouse restart and a sidecar restart while
ClickHouse is down (the spool); a batch sent twice counts once; the cost
view prices rows by the configured classes; retention drops old
partitions."""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import (GATEWAY_HTTP, ROOT, Stack,  # noqa
                     destination_stack, free_port,
                     main, request, wait_for)

SCHEMA = os.path.join(ROOT, "deploy", "clickhouse", "schema.sql")
DASHBOARD = os.path.join(ROOT, "dashboards", "clickhouse",
                         "tenant-usage-cost.json")
RETENTION = os.path.join(ROOT, "deploy", "clickhouse", "retention.sh")
SERVER = shutil.which("clickhouse-server") or "/usr/bin/clickhouse-server"

CONFIG = """<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><console>1</console></logger>
    <http_port>%(http)d</http_port>
    <tcp_port>%(tcp)d</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <path>%(dir)s/data/</path>
    <tmp_path>%(dir)s/tmp/</tmp_path>
    <users_config>/etc/clickhouse-server/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>5368709</mark_cache_size>
</yandex>
"""

PRICES = {"default": {"per_1k_requests": 0.5, "per_gb": 0.0},
          "classes": [{"name": "ml", "service": "ml-engine",
                       "route": "/ml/*", "per_1k_requests": 40,
                       "per_gb": 1000}]}


class ClickHouse:
    """A clickhouse-server of its own, restartable on the same data."""

    def __init__(self, base):
        self.dir = base
        self.http = free_port()
        os.makedirs(base, exist_ok=True)
        self.cfg = os.path.join(base, "config.xml")
        with open(self.cfg, "w") as f:
            f.write(CONFIG % {"http": self.http, "tcp": free_port(),
                              "dir": base})
        self.process = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.http

    def start(self):
        log = open(os.path.join(self.dir, "server.log"), "a")
        self.process = subprocess.Popen(
            [SERVER, "--config-file=" + self.cfg], stdout=log, stderr=log,
            cwd=self.dir)
        log.close()
        wait_for(lambda: self.sql("SELECT 1") == "1\n", timeout=60,
                 what="clickhouse-server answering")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)

    def sql(self, query, body=None):
        if body is None:
            req = urllib.request.Request(self.url + "/", data=query.encode())
        else:
            req = urllib.request.Request(
                self.url + "/?" + urllib.parse.urlencode({"query": query}),
                data=body)
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read().decode()

    def rows(self, query):
        return [json.loads(line) for line in
                self.sql(query + " FORMAT JSONEachRow").splitlines()]

    def load_schema(self):
        with open(SCHEMA) as f:
            text = re.sub(r"--[^\n]*", "", f.read())
        for statement in text.split(";"):
            if statement.strip():
                self.sql(statement)


def traffic(stack, sent, a=0, b=0, ml=0, fail=0):
    """Sends requests and counts them in sent[tenant]."""
    for i in range(a):
        request(stack.gateway + "/api/users/%d" % i,
                headers={"X-Tenant-ID": "tenant-a"})
    for i in range(b):
        request(stack.gateway + "/api/orders", method="POST", body=b"o" * 10,
                headers={"X-Tenant-ID": "tenant-b"})
    for i in range(ml):
        request(stack.gateway + "/ml/predict", method="POST", body=b"m" * 100,
                headers={"X-Tenant-ID": "tenant-b"})
    for i in range(fail):
        request(stack.gateway + "/api/fail",
                headers={"X-Tenant-ID": "tenant-a"})
    sent["tenant-a"] = sent.get("tenant-a", 0) + a + fail
    sent["tenant-b"] = sent.get("tenant-b", 0) + b + ml


def open_read(path):
    with open(path) as f:
        return f.read()


def metric(stack, name, **labels):
    return sum(v for (n, ls), v in stack.metrics().items()
               if n == name and set(labels.items()) <= set(ls))


class ClickHouseTest(unittest.TestCase):

    def setUp(self):
        self.stack = None
        base = os.path.join(os.environ.get("TMPDIR", "/tmp"),
                            "obs-ch-%d-%s" % (os.getpid(), self.id()[-12:]))
        shutil.rmtree(base, ignore_errors=True)
        self.ch = ClickHouse(base)
        self.addCleanup(shutil.rmtree, base, True)
        self.addCleanup(self.ch.stop)
        self.ch.start()
        self.ch.load_schema()

    def start_stack(self, **extra):
        cfg = {"url": self.ch.url, "interval_seconds": 2,
               "gateway": "gw-test", "cost": PRICES, "timeout_ms": 3000}
        cfg.update(extra)
        return destination_stack(self, "clickhouse", cfg)

    def per_tenant(self):
        return {r["tenant"]: int(r["n"]) for r in self.ch.rows(
            "SELECT tenant, sum(requests) AS n FROM obs.usage_minute FINAL "
            "GROUP BY tenant")}

    def test_rows_add_up_to_the_requests_sent_across_restarts(self):
        spool = os.path.join(self.ch.dir, "spool")
        stack = self.start_stack(spool_dir=spool, spool_bytes=1 << 20)
        sent = {}
        traffic(stack, sent, a=7, b=5, ml=3, fail=2)
        wait_for(lambda: self.per_tenant() == sent, timeout=20,
                 what="the first rows")

        self.ch.stop()                              # ClickHouse is down
        traffic(stack, sent, a=4, b=6)
        wait_for(lambda: metric(stack, "obs_clickhouse_requests_total",
                                result="retried") > 0, what="a failed insert")
        wait_for(lambda: glob.glob(spool + "/*.payload"), what="a spooled batch")

        # the sidecar stops while ClickHouse is down: its rows wait on disk
        traffic(stack, sent, a=3, ml=2)
        wait_for(lambda: metric(stack, "http_server_requests_total")
                 == sum(sent.values()), what="records aggregated")
        stack.sidecar.send_signal(signal.SIGTERM)
        stack.sidecar.wait(timeout=30)
        self.assertTrue(glob.glob(spool + "/*.payload"))
        stack.start_sidecar()

        self.ch.start()
        traffic(stack, sent, b=4, fail=1)
        wait_for(lambda: self.per_tenant() == sent, timeout=30,
                 what="every row after the restarts (sent %r)" % sent)
        self.assertEqual(glob.glob(spool + "/*.payload"), [])

        totals = self.ch.rows(
            "SELECT sum(errors) AS e, sum(client_errors) AS c, "
            "sum(bytes_in) AS i, sum(duration_count) AS d, "
            "uniqExact(run) AS runs, any(gateway) AS g "
            "FROM obs.usage_minute FINAL")[0]
        self.assertEqual(int(totals["e"]), 3)
        self.assertEqual(int(totals["c"]), 0)
        self.assertEqual(int(totals["i"]), 15 * 10 + 5 * 100)
        self.assertEqual(int(totals["d"]), sum(sent.values()))
        self.assertEqual(int(totals["runs"]), 2)
        self.assertEqual(totals["g"], "gw-test")

        # one row per tenant, service, route and interval of a run
        dup = self.ch.rows(
            "SELECT count() AS n FROM (SELECT minute, run, tenant, service, "
            "route, count() AS c FROM obs.usage_minute FINAL GROUP BY "
            "minute, run, tenant, service, route HAVING c > 1)")
        self.assertEqual(int(dup[0]["n"]), 0)

    def test_a_batch_sent_twice_counts_once(self):
        stack = self.start_stack()
        sent = {}
        traffic(stack, sent, a=5, ml=4)
        wait_for(lambda: self.per_tenant() == sent, timeout=20,
                 what="rows")
        rows = self.ch.sql("SELECT * FROM obs.usage_minute "
                           "FORMAT JSONEachRow")
        # a retry whose answer was lost: the same batch arrives again
        self.ch.sql("INSERT INTO obs.usage_minute FORMAT JSONEachRow",
                    rows.encode())
        self.assertEqual(self.per_tenant(), sent)

    def test_cost_per_tenant_per_day_follows_the_classes(self):
        stack = self.start_stack()
        sent = {}
        traffic(stack, sent, a=10, ml=20)
        wait_for(lambda: self.per_tenant() == sent, timeout=20, what="rows")
        usage = self.ch.rows("SELECT tenant, service, route, requests, "
                             "bytes_in, bytes_out, cost_class "
                             "FROM obs.usage_minute FINAL")
        want = {}
        for r in usage:
            ml = r["service"] == "ml-engine" and r["route"].startswith("/ml/")
            self.assertEqual(r["cost_class"], "ml" if ml else "default")
            price = PRICES["classes"][0] if ml else PRICES["default"]
            want[r["tenant"]] = want.get(r["tenant"], 0) + (
                int(r["requests"]) / 1000 * price["per_1k_requests"]
                + (int(r["bytes_in"]) + int(r["bytes_out"])) / 1e9
                * price["per_gb"])
        got = {r["tenant"]: r["c"] for r in self.ch.rows(
            "SELECT tenant, sum(cost) AS c FROM obs.cost_daily "
            "GROUP BY tenant")}
        self.assertEqual(set(got), set(want))
        for t in want:
            self.assertAlmostEqual(got[t], want[t], places=9)
        daily = self.ch.rows("SELECT tenant, sum(requests) AS n "
                             "FROM obs.usage_daily GROUP BY tenant")
        self.assertEqual({r["tenant"]: int(r["n"]) for r in daily}, sent)
        self.dashboard_queries_answer()

    def dashboard_queries_answer(self):
        """Each panel of "Tenant usage and cost" runs and finds rows, with
        the plugin's macros spelled as ClickHouse 18.16 can take them."""
        with open(DASHBOARD) as f:
            dash = json.load(f)
        self.assertEqual(dash["title"], "Tenant usage and cost")
        macros = (("$__timeInterval(minute)", "toStartOfMinute(minute)"),
                  ("$__timeFilter(minute)", "minute > toDateTime(0)"),
                  ("$__dateFilter(day)", "day > toDate('2000-01-01')"),
                  ("${tenant:singlequote}", "'tenant-a','tenant-b'"))
        queries = [dash["templating"]["list"][0]["query"]]
        for panel in dash["panels"]:
            self.assertEqual(panel["datasource"]["uid"], "clickhouse")
            queries += [t["rawSql"] for t in panel["targets"]]
        for q in queries:
            for macro, sql in macros:
                q = q.replace(macro, sql)
            self.assertNotIn("$", q)
            self.assertTrue(self.ch.sql(q).strip(), q)

    def test_retention_drops_old_partitions_only(self):
        row = {"minute": "2020-01-02 03:04:00", "gateway": "g", "run": "r",
               "tenant": "old", "service": "s", "route": "/", "cost_class":
               "default", "requests": 1, "errors": 0, "client_errors": 0,
               "bytes_in": 0, "bytes_out": 0, "duration_sum": 0,
               "duration_count": 1, "duration_bounds": [1],
               "duration_buckets": [1, 0], "price_per_1k_requests": 0,
               "price_per_gb": 0}
        new = dict(row, tenant="new", minute=time.strftime(
            "%Y-%m-%d %H:%M:00", time.gmtime()))
        self.ch.sql("INSERT INTO obs.usage_minute FORMAT JSONEachRow",
                    (json.dumps(row) + "\n" + json.dumps(new)).encode())
        p = subprocess.run(["bash", RETENTION, self.ch.url, "30"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("20200102", p.stdout)
        self.assertEqual(self.per_tenant(), {"new": 1})

    def test_flag_and_environment_name_the_url(self):
        for how in ("flag", "env"):
            args = ["--clickhouse-url", self.ch.url] if how == "flag" else []
            env = {"OBS_SIDECAR_CLICKHOUSE_URL": self.ch.url} \
                if how == "env" else {}
            old = dict(os.environ)
            os.environ.update(env)
            try:
                stack = Stack(GATEWAY_HTTP, sidecar_args=args,
                              sidecar_config={"logs_file": "/dev/null",
                                              "spans_file": "/dev/null"})
                self.addCleanup(stack.stop)
                stack.start_sidecar()
            finally:
                os.environ.clear()
                os.environ.update(old)
            wait_for(lambda: "usage rows to " + self.ch.url in open_read(
                os.path.join(stack.dir, "sidecar.log")), what="the URL used")


class RedirectTest(unittest.TestCase):
    """A ClickHouse URL that answers 3xx (a proxy's https redirect, a
    moved host) keeps the rows and says so; it used to drop them as
    `rejected`."""

    def test_a_redirect_keeps_the_rows(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        seen = {"code": 302, "bodies": []}

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                seen["bodies"].append(body)
                self.send_response(seen["code"])
                self.send_header("Location", "https://elsewhere/")
                self.send_header("Content-Length", "0")
                self.end_headers()

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.shutdown)
        stack = destination_stack(self, "clickhouse", {
            "url": "http://127.0.0.1:%d" % server.server_address[1],
            "interval_seconds": 1})
        sent = {}
        traffic(stack, sent, a=3)
        wait_for(lambda: metric(stack, "obs_clickhouse_requests_total",
                                result="retried") >= 1, timeout=20,
                 what="a redirected insert")
        self.assertEqual(metric(stack, "obs_clickhouse_rows_dropped_total",
                                reason="rejected"), 0)
        with open(os.path.join(stack.dir, "sidecar.log")) as f:
            self.assertIn("answers HTTP 302 to https://elsewhere/: redirects "
                          "are not followed", f.read())
        seen["code"] = 200
        wait_for(lambda: metric(stack, "obs_clickhouse_rows_sent_total") >= 1,
                 timeout=20, what="rows sent once the URL answers")
        self.assertEqual(metric(stack, "obs_clickhouse_rows_dropped_total"),
                         0)


if __name__ == "__main__":
    main()
