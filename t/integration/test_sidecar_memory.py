#!/usr/bin/python3
"""The Kubernetes sidecar's memory under a receiver outage stays within the
bound deploy/k8s/sidecar_memory.py computes (and test_deploy.py holds the
container's limit to): the sidecar runs with the shipped deploy/k8s/
sidecar.json (paths moved here), Loki, OTLP, remote-write and ClickHouse
all pointing at a closed port, the series store filled to max_series, then
300,000 records of log lines and spans that its queues and spools must
hold, with scrapes on the way.  The peak RSS (VmHWM) must stay under the
computed bound: a change to the sidecar that needs more memory per series
or per queued byte shows here before a pod is OOM-killed.  The remote-write
and ClickHouse intervals are shortened so that they push (and queue)
several times within the test."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (obs_contract, ROOT, SIDECAR, free_port,  # noqa
                     http_get, parse_text, value, wait_for, main)
sys.path.insert(0, os.path.join(ROOT, "deploy", "k8s"))
import sidecar_memory  # noqa: E402

MiB = 1 << 20
CLOSED = "http://127.0.0.1:1"          # nothing listens: connection refused


def status(pid):
    with open("/proc/%d/status" % pid) as f:
        fields = dict(line.split(":", 1) for line in f)
    return {k: int(fields[k].split()[0]) * 1024 for k in ("VmHWM", "VmRSS")}


class SidecarMemoryTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="obs-mem-")
        cls.pb = obs_contract.record_pb2()
        with open(os.path.join(ROOT, "deploy", "k8s", "sidecar.json")) as f:
            cls.shipped = json.load(f)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def config(self):
        cfg = json.loads(json.dumps(self.shipped))
        self.sock = os.path.join(self.dir, "records.sock")
        self.port = free_port()
        cfg["ingest"] = ["unix:" + self.sock]
        cfg.pop("ingest_group", None)
        cfg["listen"] = "127.0.0.1:%d" % self.port
        for sink in ("loki", "otlp", "clickhouse"):
            cfg[sink]["spool_dir"] = os.path.join(self.dir, sink)
        cfg["loki"]["url"] = CLOSED + "/loki/api/v1/push"
        cfg["otlp"]["endpoint"] = CLOSED
        cfg["remote_write"]["url"] = CLOSED + "/api/v1/write"
        cfg["remote_write"]["interval"] = "10s"
        cfg["clickhouse"]["url"] = CLOSED
        cfg["clickhouse"]["interval_seconds"] = 20
        # the audit trail as a pod keeps it (its file from the environment
        # there, gateway.yaml)
        cfg["audit"]["key_file"] = os.path.join(self.dir, "chain-key")
        with open(cfg["audit"]["key_file"], "w") as f:
            f.write("not-a-real-audit-key-0123456789\n")
        cfg["audit"]["file"] = os.path.join(self.dir, "audit.log")
        path = os.path.join(self.dir, "sidecar.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        return path

    def record(self, i, tenant, route):
        r = self.pb.Record()
        r.start_time_unix_nano = time.time_ns()
        r.duration_us = 1000 + i % 5000
        r.method = b"GET"
        r.route = route
        r.path = route.replace(b"{id}", b"%d" % i)
        r.status = 503 if i % 7 == 0 else 200
        r.tenant = tenant
        r.service = b"backend-api" if i % 3 else b"ml-engine"
        r.client_address = b"10.1.2.3"
        r.user_agent = (b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"
                        b" (KHTML, like Gecko) Chrome/120.0 Safari/537.36")
        r.request_id = os.urandom(16).hex().encode()
        r.trace_id = os.urandom(16)
        r.span_id = os.urandom(8)
        r.trace_flags = 1                       # sampled: every span kept
        r.request_body_bytes = 10
        r.response_body_bytes = 1234
        r.upstream_name = b"backend_api"
        u = r.upstreams.add()
        u.address = b"10.0.0.%d:8000" % (i % 4)
        u.status = r.status
        u.response_time_us = 900
        return r

    def send(self, records):
        """Datagrams of 150 records, as one worker's batches."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            for start in range(0, len(records), 150):
                b = self.pb.Batch()
                b.header.schema_version = 1
                b.header.pid = 4242
                b.header.sequence = self.seq
                b.header.worker_start_unix_nano = 1
                b.header.host = b"gw-0"
                self.seq += 1
                b.records.extend(records[start:start + 150])
                s.sendto(b.SerializeToString(), self.sock)

    def metrics(self):
        return parse_text(http_get("http://127.0.0.1:%d/metrics"
                                   % self.port, timeout=30)[2].decode())

    def test_peak_rss_under_an_outage_stays_within_the_bound(self):
        path = self.config()
        need = sum(n for _, n in sidecar_memory.bound(
            self.shipped, sidecar_memory.defaults(SIDECAR)))
        log = open(os.path.join(self.dir, "sidecar.log"), "w")
        self.addCleanup(log.close)
        p = subprocess.Popen([SIDECAR, "--config", path], stderr=log,
                             stdout=subprocess.DEVNULL)
        self.addCleanup(p.wait)
        self.addCleanup(p.terminate)
        wait_for(lambda: http_get("http://127.0.0.1:%d/readyz"
                                  % self.port)[0] == 200, what="ready")
        self.seq = 0
        max_series = self.shipped["max_series"]
        routes = [b"/api/v1/resource%d/{id}" % k for k in range(100)]

        # the store at max_series: 1,000 tenants x 100 routes
        n = 0
        for t in range(1000):
            self.send([self.record(n + k, b"tenant_%04d" % t, routes[k])
                       for k in range(100)])
            n += 100
        wait_for(lambda: value(self.metrics(), "obs_records_received_total")
                 == n, timeout=60, what="%d records" % n)
        self.assertGreaterEqual(value(self.metrics(), "obs_series"),
                                0.99 * max_series)

        # log lines and spans with every receiver down, scraped meanwhile
        peak = 0
        for _ in range(6):
            self.send([self.record(n + i, b"tenant_%04d" % (i % 1000),
                                   routes[i % 100]) for i in range(50000)])
            n += 50000
            peak = max(peak, status(p.pid)["VmHWM"])
        for _ in range(5):           # remote-write and ClickHouse cycles
            time.sleep(5)
            self.metrics()
            peak = max(peak, status(p.pid)["VmHWM"])
        m = self.metrics()
        peak = max(peak, status(p.pid)["VmHWM"])
        self.assertIsNone(p.poll(), "the sidecar died")

        # the outage was real and the queues were used
        self.assertEqual(value(m, "obs_records_received_total"), n)
        self.assertGreater(value(m, "obs_exporter_spool_bytes",
                                 exporter="loki"), 0)
        self.assertGreater(value(m, "obs_exporter_spool_bytes",
                                 exporter="otlp"), 0)
        self.assertGreater(value(m, "obs_remote_write_queue_bytes"), 0)
        self.assertGreater(value(m, "obs_clickhouse_queue_bytes"), 0)
        print("\npeak RSS %.0f MiB, bound %.0f MiB (%d series, %d records)"
              % (peak / MiB, need / MiB, value(m, "obs_series"), n),
              file=sys.stderr)
        self.assertLessEqual(peak, need)


if __name__ == "__main__":
    main()
