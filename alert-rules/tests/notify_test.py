#!/usr/bin/python3
"""What Slack and PagerDuty receive, from a live Alertmanager.

Starts the Debian `prometheus-alertmanager` with alertmanager.yml, changed
only where a test must: the secret files point at test files, Slack's
webhook and PagerDuty's events URL at a local receiver, and the group wait
is 1 s.  Alerts posted with `amtool alert add` (the annotations the rules
give) must arrive with their runbook: in Slack after each alert and as the
title's link, in PagerDuty as a link and a detail of the incident."""

import http.server
import json
import os
import shutil
import tempfile
import threading
import time

import yaml

from amtest import Alertmanager, Tally

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "..", "alertmanager.yml")
RUNBOOK = "https://runbooks.test/alert-rules/README.md"

ALERTS = [
    {"alertname": "HighErrorRate", "severity": "critical",
     "service": "backend-api"},
    {"alertname": "ObsRecordsDropped", "severity": "warning",
     "service": "obs-sidecar", "instance": "gw-1:9145"},
]


class Receiver(http.server.BaseHTTPRequestHandler):
    got = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.got.append((self.path, json.loads(body)))
        self.send_response(200 if self.path == "/slack" else 202)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def test_config(tmp, receiver_url):
    """alertmanager.yml with test secrets, local endpoints, short waits."""
    with open(CONFIG) as f:
        cfg = yaml.safe_load(f)
    slack = os.path.join(tmp, "slack_webhook_url")
    key = os.path.join(tmp, "pagerduty_routing_key")
    with open(slack, "w") as f:
        f.write(receiver_url + "/slack\n")
    with open(key, "w") as f:
        f.write("test-routing-key\n")
    cfg["global"]["slack_api_url_file"] = slack
    cfg["global"]["pagerduty_url"] = receiver_url + "/pagerduty"
    for r in cfg["receivers"]:
        for pd in r.get("pagerduty_configs", []):
            pd["routing_key_file"] = key
    cfg["route"]["group_wait"] = "1s"
    path = os.path.join(tmp, "alertmanager.yml")
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    return path


def main():
    tmp = tempfile.mkdtemp(prefix="am-notify-")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = test_config(tmp, "http://127.0.0.1:%d" % server.server_port)
    am = Alertmanager(config, tmp)
    tally = Tally("notifications")
    check = tally.check
    try:
        for labels in ALERTS:
            am.add(labels, {
                "summary": "%s is failing" % labels["alertname"],
                "description": "details",
                "runbook_url": "%s#%s" % (RUNBOOK,
                                          labels["alertname"].lower())})
        deadline = time.time() + 30
        while len(Receiver.got) < 3 and time.time() < deadline:
            time.sleep(0.2)
        by_path = {}
        for path, body in Receiver.got:
            by_path.setdefault(path, []).append(body)

        pd = by_path.get("/pagerduty", [])
        check(len(pd) == 1, "one PagerDuty event (critical only): %r" % pd)
        want = RUNBOOK + "#higherrorrate"
        for event in pd:
            check([l.get("href") for l in event.get("links", [])] == [want],
                  "PagerDuty links the runbook: %r" % event.get("links"))
            details = event.get("payload", {}).get("custom_details", {})
            check(details.get("runbook") == want,
                  "PagerDuty details carry the runbook: %r" % details)
            check("num_firing" in details,
                  "PagerDuty keeps Alertmanager's default details")

        slack = {m["attachments"][0]["title"]: m["attachments"][0]
                 for m in by_path.get("/slack", [])}
        for labels in ALERTS:
            name = labels["alertname"]
            want = "%s#%s" % (RUNBOOK, name.lower())
            msg = slack.get("[FIRING] " + name)
            check(msg is not None, "a Slack message for %s: %r"
                  % (name, list(slack)))
            if msg:
                check("<%s|Runbook>" % want in msg.get("text", ""),
                      "Slack text links the runbook: %r" % msg.get("text"))
                check(msg.get("title_link") == want,
                      "Slack title links the runbook: %r"
                      % msg.get("title_link"))
        channels = sorted(m["channel"] for m in by_path.get("/slack", []))
        check(channels == ["#alerts", "#alerts-critical"],
              "critical and warning reach their channels: %r" % channels)
    finally:
        am.stop()
        server.shutdown()
        server.server_close()
        shutil.rmtree(tmp, ignore_errors=True)
    tally.done()


if __name__ == "__main__":
    main()
