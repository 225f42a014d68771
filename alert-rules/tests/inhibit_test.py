#!/usr/bin/python3
"""Alertmanager inhibitions, checked on a live Alertmanager.

Starts the Debian `prometheus-alertmanager` with alertmanager.yml (or the
file given as the first argument), posts alerts with `amtool alert add`
and reads each alert's state back from the API: an inhibited alert is
`suppressed`.  A critical alert must silence the warnings of its own
service or scrape target and nothing else; in particular an alert that
lacks the compared label must not silence every other alert lacking it."""

import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request

from amtest import Alertmanager, Tally

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "..", "alertmanager.yml")

# (labels of an alert, expected state once all alerts are posted)
ALERTS = [
    # one host's scrape target is down: its own host's warnings go quiet,
    # another host's stay active
    ({"alertname": "ServiceDown", "severity": "critical", "job": "node",
      "instance": "db-host:9100"}, "active"),
    ({"alertname": "DiskSpaceLow", "severity": "warning", "job": "node",
      "instance": "db-host:9100", "mountpoint": "/"}, "suppressed"),
    ({"alertname": "DiskSpaceLow", "severity": "warning", "job": "node",
      "instance": "gpu-node-7:9100", "mountpoint": "/"}, "active"),
    ({"alertname": "HighCPUUsage", "severity": "warning",
      "instance": "gpu-node-7:9100"}, "active"),
    # a service-level critical silences that service's warnings only
    ({"alertname": "HighErrorRate", "severity": "critical",
      "service": "backend-api"}, "suppressed"),   # by GatewayBackendDown
    ({"alertname": "HighRateLimitExceeded", "severity": "warning",
      "service": "backend-api"}, "suppressed"),
    ({"alertname": "HighRateLimitExceeded", "severity": "warning",
      "service": "recommender"}, "active"),
    # a backend the gateway cannot reach silences its error/SLO alerts,
    # not another service's; ServiceDown (no service label) silences none
    ({"alertname": "GatewayBackendDown", "severity": "critical",
      "service": "backend-api"}, "active"),
    ({"alertname": "SLOAvailabilityBurnRate", "severity": "critical",
      "service": "backend-api", "slo": "availability"}, "suppressed"),
    ({"alertname": "MLEngineHighErrorRate", "severity": "critical",
      "service": "ml-engine"}, "active"),
    ({"alertname": "HighLatencyP95", "severity": "critical",
      "service": "search"}, "active"),
    # alerts without service or instance neither silence nor are silenced
    ({"alertname": "SomethingCritical", "severity": "critical"}, "active"),
    ({"alertname": "SomethingWarning", "severity": "warning"}, "active"),
    # the sidecar down: pipeline warnings are noise
    ({"alertname": "ObsSidecarDown", "severity": "critical",
      "service": "obs-sidecar"}, "active"),
    ({"alertname": "ObsRecordsDropped", "severity": "warning",
      "service": "obs-sidecar", "instance": "gw-1:9145",
      "reason": "module_buffer_full"}, "suppressed"),
]


def get_alerts(url):
    with urllib.request.urlopen(url + "/api/v2/alerts", timeout=5) as r:
        return json.load(r)


def main():
    config = sys.argv[1] if len(sys.argv) > 1 else CONFIG
    tmp = tempfile.mkdtemp(prefix="am-inhibit-")
    am = Alertmanager(config, tmp)
    tally = Tally("inhibitions")
    try:
        for labels, _ in ALERTS:
            am.add(labels)
        # inhibition is evaluated when the API lists the alerts
        deadline = time.time() + 10
        while len(got := get_alerts(am.url)) < len(ALERTS):
            if time.time() > deadline:
                sys.exit("only %d of %d alerts arrived" % (len(got),
                                                            len(ALERTS)))
            time.sleep(0.2)
        state = {frozenset(a["labels"].items()): a["status"]["state"]
                 for a in got}
        for labels, want in ALERTS:
            have = state.get(frozenset(labels.items()))
            tally.check(have == want, "%s should be %s, is %s"
                        % (labels, want, have))
    finally:
        am.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    tally.done()


if __name__ == "__main__":
    main()
