#!/usr/bin/python3
"""Writes the alert rules: alerts.yml (from the template alerts.yml.in) and
slo.yml (SLO recording rules and burn-rate alerts).

Everything a deployment sets lives here, in one place: the parameters of
the alerts (runbook address, this stack's scrape jobs, the model services,
the minimum traffic) and the SLO targets.  `make rules` writes the files
with the values below and the tests fail when a committed file is stale.
To render the rules for your own Prometheus without editing this file:

    alert-rules/generate.py --out DIR --set RUNBOOK_URL=https://... \
        --set STACK_JOBS='obs-.*|node-exporter'

(DIR then holds recording.yml, alerts.yml and slo.yml;
deploy/k8s/generate-prometheusrule.py takes the same --set.)

The burn-rate pairs are the Google SRE workbook's for a 30-day window.
Error ratios are 0, not absent, for a service or tenant with traffic and no
5xx, so that budget panels show a full budget rather than "No data"."""

import argparse
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# --- the parameters of the alerts (--set NAME=VALUE overrides) ------------
PARAMETERS = {
    # where alert-rules/README.md is read: every alert's runbook_url is this
    # address + "#<alert name in lower case>", and Slack and PagerDuty show
    # it (alertmanager.yml)
    "RUNBOOK_URL": "https://git.example.com/platform/obs-gateway/blob/main/"
                   "alert-rules/README.md",
    # this stack's scrape jobs (a regular expression): ServiceDown and the
    # host, container, PostgreSQL and Redis alerts look at these only, never
    # at the other targets of a shared Prometheus.  The shipped Prometheus
    # configurations name every job obs-*
    "STACK_JOBS": "obs-.*",
    # the sidecars' job, and the job of prometheus-nginx-exporter reading
    # the gateway's stub_status
    "SIDECAR_JOB": "obs-sidecar",
    "NGINX_JOB": "obs-nginx",
    # the model-serving services (a regular expression): their error ratio
    # is MLEngineHighErrorRate, their latency is watched per route
    # (MLModelLatencyHigh), and ModelTrainingFailed reads their training
    # routes
    "ML_SERVICES": "ml-engine",
    "TRAINING_ROUTES": ".*/train.*",
    # a 5-minute ratio alert (error ratio, p95, share of 429) needs at least
    # this many requests in its window
    "MIN_REQUESTS_5M": "100",
    # ObsRecordsNotReceived: nginx requests per second above what probes and
    # stub_status scrapes (which make no records) add up to
    "MIN_NGINX_RPS": "1",
}

# --- the one place SLO targets are set ------------------------------------
AVAILABILITY_OBJECTIVE = 0.999      # non-5xx share of requests
LATENCY_OBJECTIVE = 0.99            # share of requests faster than ...
LATENCY_THRESHOLD = "0.5"           # ... this bucket bound (seconds)
# A burn-rate alert fires only with at least this many requests in its long
# window: with 2 requests, one 500 is a 50% error ratio, and with up to
# 1,000 tenants that would be a storm of alerts about nothing.
MIN_REQUESTS = {"service": 100, "tenant": 100}
# Severity of each pair's alert: a service burning its budget pages
# (critical: PagerDuty + Slack) or opens a ticket (warning: Slack).  One
# tenant burning its budget never pages: the fast pairs notify (warning,
# Slack, one message per service and SLO however many tenants burn), the
# slow pairs are recorded for the Tenants dashboard (info: no notification).
# A large tenant failing makes the service burn too, and that pages.
SEVERITY = {
    "service": {"fast": "critical", "slow": "warning"},
    "tenant": {"fast": "warning", "slow": "info"},
}
# ---------------------------------------------------------------------------

WINDOWS = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
# pace (fast pages, slow opens a ticket), long window, short window, burn
PAIRS = [
    ("fast", "1h", "5m", 14.4),
    ("fast", "6h", "30m", 6),
    ("slow", "1d", "2h", 3),
    ("slow", "3d", "6h", 1),
]
LONG_WINDOWS = sorted({p[1] for p in PAIRS}, key=WINDOWS.index)
SCOPES = [("service", "service"), ("tenant", "service, tenant")]


def q(s):
    return "'" + s.replace("'", "''") + "'"


def recording_rules():
    out = ["  - name: obs-slo-recording", "    rules:",
           "      - record: slo:availability:objective",
           "        expr: vector(%s)" % AVAILABILITY_OBJECTIVE,
           "      - record: slo:latency:objective",
           "        expr: vector(%s)" % LATENCY_OBJECTIVE]
    for scope, by in SCOPES:
        for w in WINDOWS:
            out += [
                "      - record: %s:slo_availability_errors:ratio_rate%s"
                % (scope, w),
                "        expr: >-",
                "          (",
                "            sum by (%s) (rate(http_server_requests_total"
                "{code=~\"5..\"}[%s]))" % (by, w),
                "            or",
                "            sum by (%s) (rate(http_server_requests_total[%s]))"
                " * 0" % (by, w),
                "          )",
                "          /",
                "          sum by (%s) (rate(http_server_requests_total[%s]))"
                % (by, w),
                "      - record: %s:slo_latency_errors:ratio_rate%s"
                % (scope, w),
                "        expr: >-",
                "          1 - (",
                "            sum by (%s) (rate("
                "http_server_request_duration_seconds_bucket{le=\"%s\"}[%s]))"
                % (by, LATENCY_THRESHOLD, w),
                "            /",
                "            sum by (%s) (rate("
                "http_server_request_duration_seconds_count[%s]))" % (by, w),
                "          )",
            ]
            if w in LONG_WINDOWS:
                out += [
                    "      - record: %s:slo_requests:increase%s" % (scope, w),
                    "        expr: sum by (%s) (increase("
                    "http_server_requests_total[%s]))" % (by, w),
                ]
            if w == BUDGET_STEP:
                out += budget_inputs(scope, by)
    return out


# The 30-day budget (dashboards/build.py) adds up the errors and requests of
# the last 720 whole hours: the subquery [30d:1h] reads these at each hour,
# which tiles the 30 days without overlap, at a cost of 720 points a series
# (what 1,000 tenants can afford; the raw counters over 30 days cannot).
BUDGET_STEP = "1h"


def budget_inputs(scope, by):
    w = BUDGET_STEP
    return [
        "      - record: %s:slo_availability_errors:increase%s" % (scope, w),
        "        expr: >-",
        "          sum by (%s) (increase(http_server_requests_total"
        "{code=~\"5..\"}[%s]))" % (by, w),
        "          or",
        "          sum by (%s) (increase(http_server_requests_total[%s]))"
        " * 0" % (by, w),
        "      - record: %s:slo_latency_errors:increase%s" % (scope, w),
        "        expr: >-",
        "          sum by (%s) (increase("
        "http_server_request_duration_seconds_count[%s]))" % (by, w),
        "          -",
        "          sum by (%s) (increase("
        "http_server_request_duration_seconds_bucket{le=\"%s\"}[%s]))"
        % (by, LATENCY_THRESHOLD, w),
    ]


def burn_condition(scope, kind, objective, long, short, burn):
    """Both windows of a pair above the budget, with enough traffic."""
    budget = "(%s * (1 - scalar(%s)))" % (burn, objective)
    return ("(\n"
            "            %s:slo_%s_errors:ratio_rate%s > %s\n"
            "            and\n"
            "            %s:slo_%s_errors:ratio_rate%s > %s\n"
            "            and\n"
            "            %s:slo_requests:increase%s >= %d\n"
            "          )" % (scope, kind, long, budget,
                            scope, kind, short, budget,
                            scope, long, MIN_REQUESTS[scope]))


def slo_alerts(params):
    out = ["  - name: obs-slo-burn-rate", "    rules:"]
    for scope, by in SCOPES:
        for kind, objective, what in [
                ("availability", "slo:availability:objective",
                 "5xx responses"),
                ("latency", "slo:latency:objective",
                 "requests slower than %ss" % LATENCY_THRESHOLD)]:
            name = "SLO%sBurnRate%s" % (kind.capitalize(),
                                        "PerTenant" if scope == "tenant"
                                        else "")
            for pace in ("fast", "slow"):
                severity = SEVERITY[scope][pace]
                exprs = [burn_condition(scope, kind, objective, long, short,
                                        burn)
                         for p, long, short, burn in PAIRS if p == pace]
                who = "{{ $labels.service }}" + (
                    " for tenant {{ $labels.tenant }}"
                    if scope == "tenant" else "")
                out += [
                    "      - alert: %s" % name,
                    "        expr: >-",
                    "          " + "\n          or\n          ".join(exprs),
                    "        for: %s" % ("2m" if pace == "fast" else "15m"),
                    "        labels:",
                    "          severity: %s" % severity,
                    "          slo: %s" % kind,
                    "        annotations:",
                    "          summary: %s" % q(
                        "%s is burning its %s error budget" % (who, kind)),
                    "          description: %s" % q(
                        "%s use up the %s error budget of %s at a pace "
                        "that empties it %s." % (
                            what[0].upper() + what[1:], kind, who,
                            "within 5 days" if pace == "fast"
                            else "within the 30-day window")),
                    "          runbook_url: %s" % q(
                        params["RUNBOOK_URL"] + "#slo-burn-rate"),
                ]
    return out


def fill(template, params, where):
    """The template with each @NAME@ replaced; an unknown name is an error,
    so is a parameter the template never uses."""
    used = set()

    def one(m):
        if m.group(1) not in params:
            sys.exit("%s: unknown parameter @%s@" % (where, m.group(1)))
        used.add(m.group(1))
        return params[m.group(1)]

    text = re.sub(r"@([A-Z0-9_]+)@", one, template)
    unused = set(params) - used
    if unused:
        sys.exit("%s: parameters never used: %s"
                 % (where, ", ".join(sorted(unused))))
    return text


def render(overrides=None):
    """{file name: text} of the generated rule files."""
    params = dict(PARAMETERS)
    for name, value in (overrides or {}).items():
        if name not in params:
            sys.exit("no parameter %s (there are: %s)"
                     % (name, ", ".join(sorted(params))))
        # a value lands inside a quoted PromQL or YAML string
        if re.search(r"[\"'\n\\]", value):
            sys.exit("%s: quotes, backslashes and newlines are not allowed"
                     % name)
        params[name] = value
    with open(os.path.join(HERE, "alerts.yml.in")) as f:
        # the template's own first paragraph is about the template
        _, body = f.read().split("\n#\n", 1)
    alerts = ("# Generated by alert-rules/generate.py from alerts.yml.in: "
              "edit that file\n# (parameters are set in generate.py), then "
              "run make rules.\n#\n" + fill(body, params, "alerts.yml.in"))
    slo = ["# Generated by alert-rules/generate.py: edit that file "
           "(SLO targets are set there).", "groups:"]
    slo += recording_rules() + slo_alerts(params)
    return {"alerts.yml": alerts, "slo.yml": "\n".join(slo) + "\n"}


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="fail when the committed files differ")
    ap.add_argument("--out", metavar="DIR",
                    help="write a complete rule set (recording.yml too) to "
                    "DIR instead of alert-rules/")
    ap.add_argument("--set", metavar="NAME=VALUE", action="append",
                    default=[], help="override a parameter (%s)"
                    % ", ".join(PARAMETERS))
    args = ap.parse_args(argv)
    args.overrides = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            ap.error("--set takes NAME=VALUE, not %r" % item)
        args.overrides[name] = value
    return args


def main():
    args = parse_args(sys.argv[1:])
    files = render(args.overrides)
    if args.check:
        stale = []
        for name, text in files.items():
            with open(os.path.join(HERE, name)) as f:
                if f.read() != text:
                    stale.append(name)
        if stale:
            sys.exit("alert-rules/%s stale: run make rules"
                     % " and ".join(stale) + (" is" if len(stale) == 1
                                              else " are"))
        return
    out = args.out or HERE
    os.makedirs(out, exist_ok=True)
    if args.out:
        shutil.copy(os.path.join(HERE, "recording.yml"), out)
    for name, text in files.items():
        with open(os.path.join(out, name), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
