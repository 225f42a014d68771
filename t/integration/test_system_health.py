#!/usr/bin/python3
"""The infrastructure alerts and the "System health" dashboard against the
real exporters the compose stack runs: a real PostgreSQL with
postgres_exporter, a real Redis with redis_exporter, node exporter, and a
real Prometheus loaded with the project's rules.  The metric names the
rules and panels use must be the ones the exporters serve: PostgreSQL
pushed near max_connections and Redis filled to its maxmemory make
PostgresConnectionsHigh and RedisMemoryHigh true, misses make
CacheHitRateLow true, a stopped PostgreSQL makes DatabaseDown true.  The
exporters are scraped under the job names of the shipped configurations
(obs-postgres, obs-redis, obs-node: this stack's, STACK_JOBS), and once
more under another team's job names, as a shared Prometheus would: the
alerts hold only this stack's.  (cAdvisor is not packaged for Debian: its
rules are proven by promtool.)"""

import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import unittest

import yaml

sys.path.insert(0, os.path.dirname(__file__))
from harness import (ROOT, Stack, free_port, wait_for, main)  # noqa: E402

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1:]
MAX_CONNECTIONS = 10
HELD_CONNECTIONS = 8          # + the exporter's = 90% of max_connections
REDIS_MAXMEMORY = 4 * 1024 * 1024


def alert_exprs():
    """Each alert's expression from the exporters: an alert defined twice
    (CacheHitRateLow from Redis and from the gateway's X-Cache counts) is
    taken from its rule that reads an exporter's metrics, not the gateway's."""
    with open(os.path.join(ROOT, "alert-rules", "alerts.yml")) as f:
        groups = yaml.safe_load(f)["groups"]
    exprs = {}
    for g in groups:
        for r in g["rules"]:
            if "alert" in r and not (r["alert"] in exprs
                                     and "http_server_" in r["expr"]):
                exprs[r["alert"]] = r["expr"]
    return exprs


def redis_command(port, *args):
    """One RESP command; returns the raw reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        msg = "*%d\r\n" % len(args) + "".join(
            "$%d\r\n%s\r\n" % (len(a), a) for a in args)
        s.sendall(msg.encode())
        return s.recv(65536)


def nics():
    """The network devices besides loopback, as node exporter sees them."""
    return [d for d in os.listdir("/sys/class/net") if d != "lo"]


class SystemHealthTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack("")
        cls.addClassCleanup(cls.stack.stop)
        cls.dir = cls.stack.dir
        cls.start_postgres()
        cls.start_redis()
        exporters = {"postgres": free_port(), "redis": free_port(),
                     "node": free_port()}
        listen = {k: "127.0.0.1:%d" % v for k, v in exporters.items()}
        cls.spawn(["prometheus-postgres-exporter",
                   "--web.listen-address=" + listen["postgres"]],
                  env={"DATA_SOURCE_NAME": "postgresql://app@127.0.0.1:%d/"
                       "postgres?sslmode=disable" % cls.pg_port})
        cls.spawn(["prometheus-redis-exporter",
                   "-redis.addr=redis://127.0.0.1:%d" % cls.redis_port,
                   "-web.listen-address=" + listen["redis"]])
        # Debian's node exporter leaves loopback out; with nothing else
        # (a container, a test network namespace) it is let in so that the
        # network panel's query still meets real series
        cls.spawn(["prometheus-node-exporter",
                   "--web.listen-address=" + listen["node"]]
                  + ([] if nics() else
                     ["--collector.netdev.device-exclude=^$"]))
        # postgres_exporter needs more than the harness's 1 s to answer
        # while the database is down; each exporter is scraped as this
        # stack's job and as another team's
        scrape = "".join(
            "  - job_name: %s\n    scrape_interval: 2s\n"
            "    scrape_timeout: 2s\n    static_configs: [{targets: "
            "['127.0.0.1:%d']}]\n" % (job, port)
            for name, port in exporters.items()
            for job in ("obs-" + name, "shared-" + name))
        rule_files = [os.path.join(ROOT, "alert-rules", f)
                      for f in ("recording.yml", "alerts.yml")]
        cls.prom = cls.stack.start_prometheus(scrape, [],
                                              rule_files=rule_files)
        wait_for(lambda: len(cls.query("up == 1")) == 6, timeout=30,
                 interval=0.5, what="three exporters up, twice")

    @classmethod
    def spawn(cls, args, env=None, user=None):
        """Starts a process the stack stops; its output goes to a log."""
        name = os.path.basename(args[0])
        if user:
            args = ["runuser", "-u", user, "--"] + args
        with open(os.path.join(cls.dir, name + ".log"), "w") as log:
            p = subprocess.Popen(args, stdout=log, stderr=log,
                                 env=dict(os.environ, **(env or {})))
        cls.stack.procs.append(p)
        return p

    @classmethod
    def start_postgres(cls):
        data = os.path.join(cls.dir, "pg")
        os.makedirs(data)
        user = "postgres" if os.geteuid() == 0 else None
        if user:
            shutil.chown(data, user)
        initdb = [os.path.join(PG_BIN[0], "initdb"), "-D", data, "-A",
                  "trust", "-U", "app"]
        if user:
            initdb = ["runuser", "-u", user, "--"] + initdb
        subprocess.run(initdb, check=True, stdout=subprocess.DEVNULL)
        cls.pg_port = free_port()
        # PostgreSQL refuses to run as root: as the postgres user then
        cls.postgres = cls.spawn(
            [os.path.join(PG_BIN[0], "postgres"), "-D", data,
             "-p", str(cls.pg_port), "-k", data,
             "-c", "listen_addresses=127.0.0.1",
             "-c", "max_connections=%d" % MAX_CONNECTIONS], user=user)
        wait_for(lambda: subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(cls.pg_port), "-U", "app",
             "-d", "postgres", "-c", "select 1"],
            capture_output=True).returncode == 0, timeout=30,
            what="postgres accepting connections")

    @classmethod
    def start_redis(cls):
        cls.redis_port = free_port()
        cls.spawn(["redis-server", "--port", str(cls.redis_port),
                   "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                   "--maxmemory", str(REDIS_MAXMEMORY),
                   "--maxmemory-policy", "allkeys-lru"])
        wait_for(lambda: redis_command(cls.redis_port, "PING") == b"+PONG\r\n",
                 what="redis answering")

    @classmethod
    def query(cls, expr):
        return cls.prom.query("api/v1/query", query=expr)["result"]

    def wait_true(self, expr, what, timeout=60):
        return wait_for(lambda: self.query(expr), timeout=timeout,
                        interval=1, what=what)

    def test_1_postgres_connections_near_max_fire_the_alert(self):
        held = []
        for _ in range(HELD_CONNECTIONS):
            held.append(subprocess.Popen(
                ["psql", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U",
                 "app", "-d", "postgres", "-c", "select pg_sleep(120)"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        try:
            result = self.wait_true(alert_exprs()["PostgresConnectionsHigh"],
                                    "PostgresConnectionsHigh condition")
            self.assertGreaterEqual(float(result[0]["value"][1]), 0.8)
            # the rule aggregates by instance: both jobs' series are the
            # same database, counted once (the shared job's not at all)
            self.assertEqual(len(result), 1)
            self.assertLessEqual(float(result[0]["value"][1]), 1.0)
        finally:
            for p in held:
                p.terminate()
                p.wait()

    def test_2_redis_memory_and_hit_rate_fire_the_alerts(self):
        exprs = alert_exprs()
        self.assertEqual(self.query(exprs["RedisMemoryHigh"]), [])
        value = "x" * 1024
        for i in range(REDIS_MAXMEMORY // 1024):
            redis_command(self.redis_port, "SET", "k%d" % i, value)
        self.wait_true(exprs["RedisMemoryHigh"], "RedisMemoryHigh condition")
        # then mostly misses over a few scrapes
        for _ in range(5):
            for i in range(40):
                redis_command(self.redis_port, "GET", "missing%d" % i)
            redis_command(self.redis_port, "GET", "k%d" % (
                REDIS_MAXMEMORY // 1024 - 1))
            self.query("up")
        self.wait_true(exprs["CacheHitRateLow"], "CacheHitRateLow condition")

    def test_3_system_health_panels_have_data_except_containers(self):
        with open(os.path.join(ROOT, "dashboards",
                               "system-health.json")) as f:
            d = json.load(f)
        checked = 0
        for p in d["panels"]:
            # cAdvisor: not packaged for Debian; nginx's row: its
            # stub_status is read in test_dashboards.py
            if re.search(r"cAdvisor|Container|nginx", p["title"]):
                continue
            for t in p.get("targets", []):
                expr = re.sub(r"\$__rate_interval", "1m", t["expr"])
                expr = re.sub(r"\$instance\b", ".*", expr)
                if not nics():
                    # a container or a network namespace with loopback
                    # only: the panel (rightly) shows no traffic, so its
                    # query is checked with loopback let in
                    expr = expr.replace('device!="lo"', 'device=~".+"')
                with self.subTest(panel=p["title"], ref=t["refId"]):
                    self.wait_true(expr, "data for %r" % expr, timeout=30)
                    checked += 1
        self.assertGreaterEqual(checked, 12)

    def test_4_stopped_postgres_fires_database_down(self):
        self.assertEqual(self.query(alert_exprs()["DatabaseDown"]), [])
        # a fast shutdown of the postmaster itself (runuser would turn a
        # signal into a kill, and a smart shutdown waits for the exporter)
        with open(os.path.join(self.dir, "pg", "postmaster.pid")) as f:
            os.kill(int(f.readline()), signal.SIGINT)
        self.postgres.wait(timeout=20)
        try:
            down = self.wait_true(alert_exprs()["DatabaseDown"],
                                  "DatabaseDown condition")
            # the other team's job sees the same database down: theirs
            self.wait_true('pg_up{job="shared-postgres"} == 0',
                           "the shared job seeing it too")
            down = self.query(alert_exprs()["DatabaseDown"])
            self.assertEqual([r["metric"]["job"] for r in down],
                             ["obs-postgres"])
        except AssertionError as e:
            targets = self.prom.query("api/v1/targets")["activeTargets"]
            self.fail("%s; targets: %s" % (e, [
                (t["labels"]["job"], t["health"], t["lastError"])
                for t in targets]))


if __name__ == "__main__":
    main()
