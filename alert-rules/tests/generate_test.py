#!/usr/bin/python3
"""generate.py's parameters take effect, and every runbook link lands.

Renders the rules with every parameter changed (--set) into a temporary
directory and runs `promtool test rules` on that rendering: the runbook
address, this stack's jobs, the model services, their training routes and
the minimum traffic must all move with their parameter.  Then: each
runbook_url of the shipped rules points at a heading of alert-rules/
README.md, and bad --set values are refused."""

import os
import re
import subprocess
import tempfile

from amtest import Tally

HERE = os.path.dirname(os.path.abspath(__file__))
RULES = os.path.dirname(HERE)
GENERATE = os.path.join(RULES, "generate.py")

SET = {
    "RUNBOOK_URL": "https://wiki.corp.example/sre/obs-runbooks",
    "STACK_JOBS": "team-a-.*",
    "SIDECAR_JOB": "team-a-sidecar",
    "NGINX_JOB": "team-a-nginx",
    "ML_SERVICES": "ranker|embedder",
    "TRAINING_ROUTES": "/jobs/.*",
    "MIN_REQUESTS_5M": "10",
    "MIN_NGINX_RPS": "5",
}

RB = SET["RUNBOOK_URL"]
TEST = """
rule_files: [recording.yml, alerts.yml, slo.yml]
evaluation_interval: 1m
tests:
  - name: every parameter moved
    interval: 1m
    input_series:
      - series: 'up{job="team-a-api",instance="a:1"}'
        values: '0x10'
      - series: 'up{job="obs-sidecar",instance="s:9145"}'
        values: '0x10'
      - series: 'pg_up{job="obs-postgres",instance="pg:9187"}'
        values: '0x10'
      # 3 requests a minute, a third 5xx: enough for a minimum of 10
      - series: 'http_server_requests_total{service="ranker",route="/rank",method="GET",code="500",tenant="t"}'
        values: '0+1x15'
      - series: 'http_server_requests_total{service="ranker",route="/rank",method="GET",code="200",tenant="t"}'
        values: '0+2x15'
      - series: 'http_server_requests_total{service="ml-engine",route="/m",method="GET",code="500",tenant="t"}'
        values: '0+1x15'
      - series: 'http_server_requests_total{service="ml-engine",route="/m",method="GET",code="200",tenant="t"}'
        values: '0+2x15'
      - series: 'http_server_requests_total{service="embedder",route="/jobs/{id}",method="POST",code="500",tenant="t"}'
        values: '0 1x9'
      - series: 'nginx_http_requests_total{job="team-a-nginx",instance="g:9113",gateway="g"}'
        values: '0+240x10'
      - series: 'obs_records_received_total{job="team-a-sidecar",instance="g:9145",gateway="g"}'
        values: '0x10'
    alert_rule_test:
      - eval_time: 5m
        alertname: ServiceDown
        exp_alerts:
          - exp_labels: {severity: critical, job: team-a-api, instance: "a:1"}
            exp_annotations:
              summary: 'team-a-api on a:1 is down'
              description: 'Prometheus cannot scrape team-a-api (a:1) for 1 minute.'
              runbook_url: 'RB#servicedown'
      - {eval_time: 5m, alertname: DatabaseDown, exp_alerts: []}
      - eval_time: 12m
        alertname: MLEngineHighErrorRate
        exp_alerts:
          - exp_labels: {severity: critical, service: ranker}
            exp_annotations:
              summary: 'ranker answers more than 5% of requests with 5xx'
              description: 'ranker error ratio is 33.33% over 5 minutes.'
              runbook_url: 'RB#mlenginehigherrorrate'
      - eval_time: 12m
        alertname: HighErrorRate
        exp_alerts:
          - exp_labels: {severity: critical, service: ml-engine}
            exp_annotations:
              summary: 'ml-engine answers more than 5% of requests with 5xx'
              description: 'ml-engine error ratio is 33.33% over 5 minutes.'
              runbook_url: 'RB#higherrorrate'
      - eval_time: 3m
        alertname: ModelTrainingFailed
        exp_alerts:
          - exp_labels: {severity: warning, service: embedder, route: "/jobs/{id}"}
            exp_annotations:
              summary: 'A model training run failed on embedder'
              description: 'Failed training runs lately: 1 (5xx on /jobs/{id}).'
              runbook_url: 'RB#modeltrainingfailed'
      - {eval_time: 8m, alertname: ObsRecordsNotReceived, exp_alerts: []}
      - eval_time: 8m
        alertname: ObsSidecarDown
        exp_alerts:
          - exp_labels: {severity: critical, service: obs-sidecar, job: team-a-sidecar}
            exp_annotations:
              summary: 'obs-sidecar is not scraped: gateway metrics are blind'
              description: 'Prometheus has no obs-sidecar target up for 2 minutes.'
              runbook_url: 'RB#obssidecardown'
""".replace("RB", RB)

TALLY = Tally("generate")
check = TALLY.check


def run(*args):
    return subprocess.run(["/usr/bin/python3", GENERATE] + list(args),
                          capture_output=True, text=True)


def github_anchor(heading):
    """The fragment GitHub and GitLab give a Markdown heading."""
    a = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return a.replace(" ", "-")


def main():
    with tempfile.TemporaryDirectory() as d:
        p = run("--out", d, *["--set=%s=%s" % kv for kv in SET.items()])
        check(p.returncode == 0, "rendering with --set: " + p.stderr)
        with open(os.path.join(d, "parameters_test.yml"), "w") as f:
            f.write(TEST)
        t = subprocess.run(["promtool", "test", "rules",
                            os.path.join(d, "parameters_test.yml")],
                           capture_output=True, text=True)
        check(t.returncode == 0, "promtool on the rendering:\n" + t.stdout
              + t.stderr)
        with open(os.path.join(d, "slo.yml")) as f:
            slo = f.read()
        check(slo.count("'%s#slo-burn-rate'" % RB) == 8,
              "slo.yml's runbook_url follows RUNBOOK_URL")
        texts = ""
        for name in ("alerts.yml", "slo.yml"):
            with open(os.path.join(d, name)) as f:
                texts += f.read()
        for shipped in ("ml-engine", 'job=~"obs-.*"', "/train",
                        'job="obs-sidecar"', 'job="obs-nginx"',
                        "git.example.com"):
            check(shipped not in texts,
                  "%s is left where a parameter was set" % shipped)

    # each runbook_url of the shipped rules has its heading
    with open(os.path.join(RULES, "README.md")) as f:
        anchors = {github_anchor(h) for h in
                   re.findall(r"^#+ (.*)$", f.read(), re.M)}
    urls = []
    for name in ("alerts.yml", "slo.yml"):
        with open(os.path.join(RULES, name)) as f:
            urls += re.findall(r"runbook_url: '([^']*)'", f.read())
    check(len(urls) >= 38, "%d runbook_url annotations" % len(urls))
    for url in urls:
        check(re.match(r"https://[^/\s]+/\S+#[\w-]+$", url),
              "runbook_url %r is not absolute" % url)
        check(url.split("#")[1] in anchors,
              "runbook_url %r: no such heading in alert-rules/README.md"
              % url)

    # what --set refuses
    for bad, says in [("NOPE=1", "no parameter NOPE"),
                      ("STACK_JOBS=a\"b", "quotes"),
                      ("RUNBOOK_URL", "NAME=VALUE")]:
        p = run("--out", "/nonexistent", "--set", bad)
        check(p.returncode != 0 and says in p.stderr,
              "--set %s is refused (%r)" % (bad, p.stderr))

    TALLY.done()


if __name__ == "__main__":
    main()
