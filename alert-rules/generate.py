#!/usr/bin/python3
"""Writes the SLO recording rules and burn-rate alerts (slo.yml).

SLO targets live here, in one place; `make rules` regenerates slo.yml and
the tests fail when the committed file is stale.  The burn-rate pairs are
the Google SRE workbook's for a 30-day window.  Error ratios are 0, not
absent, for a service or tenant with traffic and no 5xx, so that budget
panels show a full budget rather than "No data"."""

import sys

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
    return out


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


def alerts():
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
                        "alert-rules/README.md#slo-burn-rate"),
                ]
    return out


def main():
    lines = ["# Generated by alert-rules/generate.py: edit that file "
             "(SLO targets are set there).", "groups:"]
    lines += recording_rules() + alerts()
    text = "\n".join(lines) + "\n"
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        with open(sys.argv[2]) as f:
            if f.read() != text:
                sys.exit("%s is stale: run make rules" % sys.argv[2])
        return
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
