#!/usr/bin/python3
"""Writes the SLO recording rules and burn-rate alerts (slo.yml).

SLO targets live here, in one place; `make rules` regenerates slo.yml and
the tests fail when the committed file is stale.  The burn-rate pairs are
the Google SRE workbook's for a 30-day window."""

import sys

# --- the one place SLO targets are set ------------------------------------
AVAILABILITY_OBJECTIVE = 0.999      # non-5xx share of requests
LATENCY_OBJECTIVE = 0.99            # share of requests faster than ...
LATENCY_THRESHOLD = "0.5"           # ... this bucket bound (seconds)
# ---------------------------------------------------------------------------

WINDOWS = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
# severity, long window, short window, burn rate
PAIRS = [
    ("critical", "1h", "5m", 14.4),
    ("critical", "6h", "30m", 6),
    ("warning", "1d", "2h", 3),
    ("warning", "3d", "6h", 1),
]
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
                "          sum by (%s) (rate(http_server_requests_total"
                "{code=~\"5..\"}[%s]))" % (by, w),
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
    return out


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
            conds = []
            for severity, long, short, burn in PAIRS:
                conds.append((severity, long, short, burn))
            for severity in ("critical", "warning"):
                exprs = []
                for sev, long, short, burn in conds:
                    if sev != severity:
                        continue
                    budget = "(%s * (1 - scalar(%s)))" % (burn, objective)
                    exprs.append(
                        "(\n            %s:slo_%s_errors:ratio_rate%s > %s\n"
                        "            and\n"
                        "            %s:slo_%s_errors:ratio_rate%s > %s\n"
                        "          )" % (scope, kind, long, budget,
                                        scope, kind, short, budget))
                who = "{{ $labels.service }}" + (
                    " for tenant {{ $labels.tenant }}"
                    if scope == "tenant" else "")
                out += [
                    "      - alert: %s" % name,
                    "        expr: >-",
                    "          " + "\n          or\n          ".join(exprs),
                    "        for: %s" % ("2m" if severity == "critical"
                                        else "15m"),
                    "        labels:",
                    "          severity: %s" % severity,
                    "          slo: %s" % kind,
                    "        annotations:",
                    "          summary: %s" % q(
                        "%s is burning its %s error budget" % (who, kind)),
                    "          description: %s" % q(
                        "%s use up the %s error budget of %s fast enough "
                        "to %s." % (what[0].upper() + what[1:], kind, who,
                                    "page" if severity == "critical"
                                    else "open a ticket")),
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
