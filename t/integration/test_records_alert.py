#!/usr/bin/python3
"""A socket nginx cannot write to must not go unnoticed (issue 25, item 3).

The real failure: the sidecar started without --ingest-group, so its
socket is mode 0660 in the sidecar's own group and nginx's workers
(nobody) get "Permission denied"; the sidecar receives nothing, and the
module's drop counts never arrive either (they travel in the datagrams).
Real nginx with the module and stub_status, Debian's
prometheus-nginx-exporter reading it, the sidecar, and a real Prometheus
with the project's rules and the scrape jobs of the shipped configurations
(obs-nginx and obs-sidecar, paired by the label gateway): under traffic,
ObsRecordsNotReceived's expression becomes true (the alert is pending,
then would fire after its `for`).  With the socket's group right, the same
traffic leaves it false."""

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import (ROOT, GATEWAY_HTTP, Stack, free_port, request,  # noqa
                     value, wait_for, main)

EXPORTER = shutil.which("prometheus-nginx-exporter")
RULES = [os.path.join(ROOT, "alert-rules", f)
         for f in ("recording.yml", "alerts.yml", "slo.yml")]
ALERT = "ObsRecordsNotReceived"

STUB = """
    server {
        listen 127.0.0.1:STUB_PORT;
        obs off;
        access_log off;
        location = /stub_status { stub_status; }
    }
"""


class Gateway:
    """nginx + module + stub_status, the exporter, the sidecar and a
    Prometheus with the rules; ingest_group=False starts the sidecar as the
    issue's user did."""

    def __init__(self, ingest_group):
        self.stub_port = free_port()
        self.stack = Stack(GATEWAY_HTTP + STUB.replace(
            "STUB_PORT", str(self.stub_port)),
            sidecar_args=["--no-logs", "--no-traces"])
        self.ingest_group = ingest_group

    def start(self):
        s = self.stack
        if self.ingest_group:
            s.start_sidecar()
        else:
            # no --ingest-group: the socket keeps the sidecar's group
            saved, harness.worker_group = harness.worker_group, lambda: None
            try:
                s.start_sidecar()
            finally:
                harness.worker_group = saved
            if os.geteuid() != 0:
                # nginx's workers run as this same user: take the right
                # away from everyone, as a foreign group does
                os.chmod(s.sock, 0)
        s.start_nginx()
        self.exporter_port = free_port()
        with open(os.path.join(s.dir, "nginx-exporter.log"), "w") as log:
            p = subprocess.Popen(
                [EXPORTER, "--nginx.scrape-uri=http://127.0.0.1:%d/stub_status"
                 % self.stub_port,
                 "--web.listen-address=127.0.0.1:%d" % self.exporter_port],
                stdout=log, stderr=log)
        s.procs.append(p)
        wait_for(lambda: socket.create_connection(
            ("127.0.0.1", self.exporter_port), timeout=1).close() or True,
            what="nginx-exporter listening")
        # the jobs and the pairing label of the shipped configurations
        scrape = ("  - job_name: obs-sidecar\n"
                  "    static_configs: [{targets: ['127.0.0.1:%d'], "
                  "labels: {gateway: g1}}]\n"
                  "  - job_name: obs-nginx\n"
                  "    static_configs: [{targets: ['127.0.0.1:%d'], "
                  "labels: {gateway: g1}}]\n"
                  % (s.metrics_port, self.exporter_port))
        self.prom = s.start_prometheus(scrape, [], rule_files=RULES)
        self.stop_traffic = threading.Event()
        self.sent = 0
        self.traffic = threading.Thread(target=self.send, daemon=True)
        self.traffic.start()

    def send(self):
        """About 25 requests a second until stopped."""
        while not self.stop_traffic.is_set():
            request(self.stack.gateway + "/api/users/%d" % self.sent,
                    headers={"X-Tenant-ID": "acme"})
            self.sent += 1
            time.sleep(0.04)

    def stop(self):
        self.stop_traffic.set()
        self.traffic.join(timeout=5)
        self.stack.stop()

    def alert(self):
        """The rule as Prometheus evaluates it: (state, [alerts])."""
        for g in self.prom.query("api/v1/rules")["groups"]:
            for r in g["rules"]:
                if r.get("name") == ALERT:
                    return r["state"], r.get("alerts", [])
        raise AssertionError("%s is not among the loaded rules" % ALERT)

    def query(self, expr):
        return self.prom.query("api/v1/query", query=expr)["result"]

    def error_log(self):
        with open(os.path.join(self.stack.dir, "logs", "error.log")) as f:
            return f.read()


@unittest.skipUnless(EXPORTER, "prometheus-nginx-exporter is not installed")
class RecordsNotReceivedTest(unittest.TestCase):

    def run_gateway(self, ingest_group):
        gw = Gateway(ingest_group)
        self.addCleanup(gw.stop)
        gw.start()
        # nginx's requests are counted by the exporter and scraped
        wait_for(lambda: gw.query(
            'rate(nginx_http_requests_total{job="obs-nginx",gateway="g1"}'
            '[5m]) > 1'), timeout=60, interval=1,
            what="nginx serving > 1 request/s in Prometheus")
        return gw

    def test_socket_nginx_cannot_write_to_fires_the_alert(self):
        gw = self.run_gateway(ingest_group=False)

        def pending():
            state, alerts = gw.alert()
            return state in ("pending", "firing") and alerts
        try:
            alerts = wait_for(pending, timeout=60, interval=1,
                              what="%s pending" % ALERT)
        except AssertionError:
            self.fail("%s stayed %s; sidecar received %s" % (
                ALERT, gw.alert()[0], value(gw.stack.metrics(),
                                            "obs_records_received_total")))
        self.assertEqual(alerts[0]["labels"]["gateway"], "g1")
        self.assertEqual(alerts[0]["labels"]["severity"], "critical")
        self.assertGreater(float(alerts[0]["value"]), 1)
        # the failure was the real one: nginx could not write, nothing came
        self.assertIn("Permission denied", gw.error_log())
        self.assertEqual(value(gw.stack.metrics(),
                               "obs_records_received_total"), 0)
        self.assertGreater(gw.sent, 100)

    def test_records_arriving_keep_it_quiet(self):
        gw = self.run_gateway(ingest_group=True)
        wait_for(lambda: gw.query(
            'rate(obs_records_received_total{job="obs-sidecar"}[5m]) > 1'),
            timeout=60, interval=1, what="records arriving")
        # as long as the broken case took to turn pending, and more
        time.sleep(15)
        self.assertEqual(gw.alert(), ("inactive", []))
        self.assertNotIn("Permission denied", gw.error_log())


if __name__ == "__main__":
    main()
