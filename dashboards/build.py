#!/usr/bin/python3
"""Writes the Grafana dashboards (JSON) from the panel lists below.

Run `make dashboards` after editing; the tests fail when a committed JSON
file differs from what this script writes.  Panels never name a datasource
uid: they use the `${datasource}` (Prometheus) and `${loki}` template
variables, whose default is the `__inputs` entry that Grafana's import
dialog asks for, so the same files work provisioned (compose) and imported
into any Grafana.

Every gateway dashboard links to the others (the top bar's "Obs gateway"
menu, carrying $service, $route, $tenant and the time range); panels whose
series are tenants link to that tenant's drill-down on the Tenants
dashboard, which shows its routes, status codes, log lines (Loki, whose
trace_id opens Jaeger) and a search for its traces in Jaeger."""

import json
import os
import re
import sys
import urllib.parse

PROM = {"type": "prometheus", "uid": "${datasource}"}
LOKI = {"type": "loki", "uid": "${loki}"}
JAEGER = {"type": "jaeger", "uid": "${jaeger}"}
SEL = 'service=~"$service",route=~"$route",tenant=~"$tenant"'
SEL_SR = 'service=~"$service",route=~"$route"'
SCHEMA_VERSION = 39             # Grafana 10.4 / 11
GRAFANA_VERSION = "10.4.0"      # the oldest that loads them

# datasource variable name -> (plugin, label, import input)
DATASOURCES = {
    "datasource": ("prometheus", "Prometheus", "DS_PROMETHEUS"),
    "loki": ("loki", "Loki", "DS_LOKI"),
    "jaeger": ("jaeger", "Jaeger", "DS_JAEGER"),
}


def ds_var(name):
    plugin, label, inp = DATASOURCES[name]
    return {
        "name": name, "label": label, "type": "datasource", "query": plugin,
        "current": {"selected": False, "text": "${%s}" % inp,
                    "value": "${%s}" % inp},
        "hide": 0, "refresh": 1, "regex": "", "options": [],
        "multi": False, "includeAll": False,
    }


def var(name, query, label=None):
    return {
        "name": name, "label": label or name.capitalize(), "type": "query",
        "datasource": PROM, "query": {"query": query, "refId": name},
        "definition": query, "refresh": 2, "multi": True,
        "includeAll": True, "allValue": ".*", "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }


GATEWAY_VARS = [
    var("service", "label_values(http_server_requests_total, service)"),
    var("route", 'label_values(http_server_requests_total{service=~"$service"}, route)'),
    var("tenant", 'label_values(http_server_requests_total{service=~"$service"}, tenant)'),
]

# how many tenants a ranking shows: readable with 1,000 of them
TOPK = {
    "name": "topk", "label": "Top", "type": "custom", "hide": 0,
    "query": "5,10,20,50", "multi": False, "includeAll": False,
    "current": {"selected": True, "text": "10", "value": "10"},
    "options": [{"selected": v == "10", "text": v, "value": v}
                for v in ("5", "10", "20", "50")],
}

# the top bar of every gateway dashboard: the others, with the same
# variables and time range
NAV = [{"title": "Obs gateway", "type": "dashboards", "tags": ["obs-gateway"],
        "asDropdown": True, "includeVars": True, "keepTime": True,
        "icon": "external link", "targetBlank": False, "tooltip": "",
        "url": ""}]


# how a data link names the tenant of what was clicked: a series' label, or
# a table row's column
SERIES = "__field.labels.tenant"
ROW = "__data.fields.tenant"


def to_tenant(ref=SERIES):
    """A data link from a series (or table row) of one tenant to its
    drill-down, keeping the services chosen and the time range."""
    return {"title": "Why is this tenant hurting? (drill-down)",
            "url": "/d/obs-tenants/tenants?var-tenant=${%s}"
                   "&${service:queryparam}&${__url_time_range}" % ref}


def explore(title, ds, query):
    """A data link opening Grafana's Explore on one datasource; query
    values written ${...} are filled in by Grafana when it is followed."""
    pane = {"datasource": ds["uid"],
            "queries": [dict(query, refId="A", datasource=ds)],
            "range": {"from": "${__from}", "to": "${__to}"}}
    text = json.dumps({"a": pane}, separators=(",", ":"))
    # the ${name}s stay as they are: Grafana fills them in before it opens
    # the link; the rest is encoded
    names = re.findall(r"\$\{[^}]+\}", text)
    for i, name in enumerate(names):
        text = text.replace(name, "GRAFANAVAR%dX" % i, 1)
    text = urllib.parse.quote(text, safe="")
    for i, name in enumerate(names):
        text = text.replace("GRAFANAVAR%dX" % i, name)
    return {"title": title, "url": "/explore?schemaVersion=1&orgId=1&panes="
            + text}


def tenant_traces(ref=SERIES):
    """Jaeger's search for one tenant's spans (attribute tenant.id)."""
    return explore("Traces of this tenant (Jaeger)", JAEGER, {
        "queryType": "search", "service": "obs-gateway",
        "tags": "tenant.id=${%s}" % ref, "limit": 20})


def tenant_logs(ref=SERIES):
    """The tenant's 5xx log lines in Loki (their trace_id opens Jaeger)."""
    return explore("Error logs of this tenant (Loki)", LOKI, {
        "queryType": "range",
        "expr": '{service=~".+",level="ERROR"} | tenant_id="${%s}"' % ref})


def tenant_links(ref=SERIES):
    return [to_tenant(ref), tenant_logs(ref), tenant_traces(ref)]


def panel(title, exprs, kind="timeseries", unit=None, w=12, h=8,
          legend=None, instant=False, exemplars=False, description=None,
          links=None):
    targets = []
    for i, e in enumerate(exprs if isinstance(exprs, list) else [exprs]):
        expr, fmt = (e if isinstance(e, tuple) else (e, legend))
        t = {"refId": chr(65 + i), "datasource": PROM, "expr": expr,
             "legendFormat": fmt or "__auto", "range": not instant,
             "instant": instant}
        if exemplars:
            t["exemplar"] = True
        if kind == "table":
            t["format"] = "table"
        targets.append(t)
    p = {"type": kind, "title": title, "datasource": PROM,
         "targets": targets, "gridPos": {"w": w, "h": h},
         "fieldConfig": {"defaults": {}, "overrides": []}, "options": {}}
    if unit:
        p["fieldConfig"]["defaults"]["unit"] = unit
    if description:
        p["description"] = description
    if links:
        p["fieldConfig"]["defaults"]["links"] = links
    if kind == "table":
        p["transformations"] = [{"id": "merge", "options": {}}]
    return p


def row(title):
    """A row heading; the panels after it are its own."""
    return {"type": "row", "title": title, "collapsed": False, "panels": [],
            "gridPos": {"w": 24, "h": 1}}


def table(title, columns, by, w=24, h=9, description=None, links=None):
    """An instant table: one row per value of `by`, one column per
    (header, expr, unit)."""
    p = panel(title, [(e, hdr) for hdr, e, _ in columns], kind="table",
              w=w, h=h, instant=True, description=description, links=links)
    p["transformations"] = [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {
            "excludeByName": {"Time": True},
            "renameByName": {"Value #%s" % chr(65 + i): hdr
                             for i, (hdr, _, _) in enumerate(columns)},
            "indexByName": dict([(by, 0)] + [
                ("Value #%s" % chr(65 + i), i + 1)
                for i in range(len(columns))])}},
    ]
    p["fieldConfig"]["overrides"] = [
        {"matcher": {"id": "byName", "options": hdr},
         "properties": [{"id": "unit", "value": unit}]}
        for hdr, _, unit in columns if unit]
    p["options"] = {"sortBy": [{"displayName": columns[0][0], "desc": True}]}
    return p


def budget_30d(scope, kind, sel):
    """The share of the 30-day error budget left: the errors and requests
    of the last 720 whole hours (recorded hourly increases, read at each
    hour by the subquery: generate.py's BUDGET_STEP), or the last hour's
    ratio before a whole hour is recorded."""
    by = "service" if scope == "service" else "service, tenant"
    errors = "%s:slo_%s_errors:increase1h{%s}" % (scope, kind, sel)
    requests = "%s:slo_requests:increase1h{%s}" % (scope, sel)
    return ("1 - ((sum_over_time(%s[30d:1h]) / sum_over_time(%s[30d:1h]))"
            " or on (%s) %s:slo_%s_errors:ratio_rate1h{%s})"
            " / on() group_left() (1 - slo:%s:objective)"
            % (errors, requests, by, scope, kind, sel, kind))


def ratio_or_zero(by, sel, rng):
    """5xx share per series; 0 (not absent) where there is traffic but no
    5xx, so that a healthy service shows 0 rather than "No data"."""
    total = "sum by (%s) (rate(http_server_requests_total{%s}[%s]))" % (
        by, sel, rng)
    errors = ("sum by (%s) (rate(http_server_requests_total{%s,code=~\"5..\"}"
              "[%s]))" % (by, sel, rng))
    return "(%s or %s * 0) / %s" % (errors, total, total)


def logs(title, expr, description, w=24, h=10):
    """A Loki logs panel; trace ids link to Jaeger through the Loki
    datasource's derived field (provisioning/datasources.yml)."""
    return {
        "type": "logs", "title": title, "datasource": LOKI,
        "description": description,
        "targets": [{"refId": "A", "datasource": LOKI, "expr": expr,
                     "queryType": "range"}],
        "gridPos": {"w": w, "h": h},
        "options": {"showTime": True, "wrapLogMessage": True,
                    "sortOrder": "Descending", "enableLogDetails": True,
                    "dedupStrategy": "none", "prettifyLogMessage": False,
                    "showLabels": False, "showCommonLabels": False},
    }


# errors first: 5xx lines, then everything, of the selected services and
# tenants (tenant_id is structured metadata: no line parsing needed)
LOG_TENANT = '| tenant_id=~"$tenant"'
def gateway_logs():
    """Fresh panels each call: dashboard() numbers and places them."""
    return [
        logs("Error logs (5xx)",
             '{service=~"$service",level="ERROR"} ' + LOG_TENANT,
             "Gateway log lines of 5xx responses for the selected services "
             "and tenants; open a line and follow its trace_id to Jaeger."),
        logs("All request logs",
             '{service=~"$service",level=~".+"} ' + LOG_TENANT,
             "Every gateway log line for the selected services and "
             "tenants."),
    ]


def datasource_vars(panels, variables):
    """The datasource variables the panels, their links and the template
    variables name."""
    text = json.dumps([panels, variables])
    return [ds_var(name) for name in DATASOURCES if "${%s}" % name in text]


def imports(ds_vars, panels):
    inputs = []
    requires = [{"type": "grafana", "id": "grafana", "name": "Grafana",
                 "version": GRAFANA_VERSION}]
    for v in ds_vars:
        plugin, label, inp = DATASOURCES[v["name"]]
        inputs.append({"name": inp, "label": label, "type": "datasource",
                       "pluginId": plugin, "pluginName": label,
                       "description": ""})
        requires.append({"type": "datasource", "id": plugin, "name": label,
                         "version": "1.0.0"})
    for kind in sorted({p["type"] for p in panels}):
        requires.append({"type": "panel", "id": kind, "name": kind,
                         "version": ""})
    return inputs, requires


def business_panels():
    """Requests in flight and the business metrics the shipped nginx.conf
    counts from the services' headers with obs_metric (docs/directives.md:
    Business metrics); empty where no service sends the headers."""
    in_flight = 'service=~"$service",route=~"$route"'
    cache = ("sum by (service) (rate(http_server_cache_requests_total"
             "{%s,cache=%%s}[%s]))" % (SEL, RATE))
    return [
        panel("Requests in flight by endpoint",
              "sum by (service, route) (http_server_active_requests{%s})"
              % in_flight, unit="short", legend="{{service}} {{route}}",
              description="Exact across reloads: nginx keeps the counts in "
              "shared memory (http_server_active_requests)."),
        panel("Recommendations served",
              "sum by (service, route) (rate(http_server_recommendations_total{%s}[%s]))"
              % (SEL, RATE), unit="short", legend="{{service}} {{route}}",
              description="Items per second, from the X-Recommendations-Count "
              "header (obs_metric counter)."),
        panel("Cache hit ratio (X-Cache)",
              "%s / %s" % (cache % '"HIT"', cache % '~"HIT|MISS"'),
              unit="percentunit", legend="{{service}}",
              description="HIT among HIT and MISS answers; CacheHitRateLow "
              "fires below 70%."),
        panel("Cache answers by result",
              "sum by (cache) (rate(http_server_cache_requests_total{%s}[%s]))"
              % (SEL, RATE), unit="reqps", legend="{{cache}}",
              description="other: a value the configuration did not declare; "
              "none: no X-Cache header."),
        panel("Embedding cache age",
              "max by (service) (http_server_embedding_cache_age_seconds{%s})"
              % SEL, unit="s", legend="{{service}}",
              description="The last X-Embedding-Cache-Age seen; "
              "EmbeddingCacheStale fires above 1 h."),
    ]


def dashboard(uid, title, panels, variables=(), tags=(), links=NAV):
    x = y = 0
    row_h = 0
    for i, p in enumerate(panels):
        p["id"] = i + 1
        if x + p["gridPos"]["w"] > 24:
            x, y = 0, y + row_h
            row_h = 0
        p["gridPos"].update({"x": x, "y": y})
        x += p["gridPos"]["w"]
        row_h = max(row_h, p["gridPos"]["h"])
    ds_vars = datasource_vars(panels, variables)
    inputs, requires = imports(ds_vars, panels)
    return {
        "__inputs": inputs, "__requires": requires,
        "uid": uid, "title": title, "tags": ["obs-gateway"] + list(tags),
        "timezone": "utc", "schemaVersion": SCHEMA_VERSION, "version": 1,
        "editable": True, "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": ds_vars + list(variables)},
        "annotations": {"list": []}, "panels": panels,
        "links": list(links),
    }


RATE = "$__rate_interval"

red = dashboard("obs-red", "API gateway RED by endpoint", [
    panel("Request rate by endpoint",
          "sum by (service, route) (rate(http_server_requests_total{%s}[%s]))"
          % (SEL, RATE), unit="reqps", legend="{{service}} {{route}}"),
    panel("Error ratio by endpoint (5xx)",
          ratio_or_zero("service, route", SEL, RATE), unit="percentunit",
          legend="{{service}} {{route}}"),
    panel("Latency p50 / p95 / p99", [
        ("histogram_quantile(%s, sum by (le) (rate(http_server_request_duration_seconds_bucket{%s}[%s])))"
         % (q, SEL, RATE), "p%s" % int(float(q) * 100))
        for q in ("0.5", "0.95", "0.99")], unit="s", exemplars=True,
        description="Exemplars link each bucket to a trace in Jaeger."),
    panel("Responses by status code",
          "sum by (code) (rate(http_server_requests_total{%s}[%s]))"
          % (SEL, RATE), unit="reqps", legend="{{code}}"),
    panel("Top 10 slowest endpoints (p95)",
          "topk(10, histogram_quantile(0.95, sum by (service, route, le) "
          "(rate(http_server_request_duration_seconds_bucket{%s}[$__range]))))"
          % SEL, kind="table", unit="s", instant=True),
    panel("Top 10 busiest endpoints",
          "topk(10, sum by (service, route) (rate(http_server_requests_total{%s}[$__range])))"
          % SEL, kind="table", unit="reqps", instant=True,
          links=[{"title": "The tenants of this endpoint",
                  "url": "/d/obs-tenants/tenants?var-service="
                         "${__data.fields.service}&var-route="
                         "${__data.fields.route}&${__url_time_range}"}]),
    panel("Upstream latency p95 by backend",
          "histogram_quantile(0.95, sum by (service, upstream, le) "
          "(rate(http_upstream_request_duration_seconds_bucket{%s}[%s])))"
          % (SEL_SR, RATE), unit="s", legend="{{service}} {{upstream}}"),
    panel("Upstream attempts by status",
          "sum by (upstream, code) (rate(http_upstream_requests_total{%s}[%s]))"
          % (SEL_SR, RATE), unit="reqps", legend="{{upstream}} {{code}}"),
    panel("Service request rate (recorded)",
          "service:http_server_requests:rate5m{service=~\"$service\"}",
          unit="reqps", legend="{{service}}"),
    panel("Service p95 (recorded)",
          "service:http_server_request_duration_seconds:p95_5m{service=~\"$service\"}",
          unit="s", legend="{{service}}"),
] + business_panels() + gateway_logs(), GATEWAY_VARS, ["red"])

# Which tenant is hurting, and why: rankings of the tenants (topk, so a
# thousand stay readable) by 5xx, 429 and 401/403, each series linking to
# the tenant's drill-down below it (its routes and status codes, log lines,
# traces).
SEL_ST = 'service=~"$service",tenant=~"$tenant"'
HURT = ("sum by (tenant) (rate(http_server_requests_total"
        "{%s,code=~\"5..|429|401|403\"}[$__range]))" % SEL)
TOP_HURT = "topk($topk, %s)" % HURT


def by_tenant(code=None, rng=RATE):
    sel = SEL + (',code=~"%s"' % code if code else "")
    return ("sum by (tenant) (rate(http_server_requests_total{%s}[%s]))"
            % (sel, rng))


TENANT_LINKS = tenant_links()


def ranking(what, code=None, description=None):
    """The $topk tenants by their rate of requests (with a code)."""
    return panel("Top $topk tenants %s" % what,
                 "topk($topk, %s)" % by_tenant(code), unit="reqps",
                 legend="{{tenant}}", links=TENANT_LINKS,
                 description=description)

tenants = dashboard("obs-tenants", "Tenants", [
    row("Which tenant is hurting"),
    table("Tenants hurting most (top $topk by 5xx, 429 and 401/403)", [
        ("5xx + 429 + 401/403 /s", TOP_HURT, "reqps"),
        ("requests/s", "%s and on (tenant) %s"
         % (by_tenant(rng="$__range"), TOP_HURT), "reqps"),
        ("5xx ratio", "(%s or %s * 0) / %s and on (tenant) %s" % (
            by_tenant("5..", "$__range"), by_tenant(rng="$__range"),
            by_tenant(rng="$__range"), TOP_HURT), "percentunit"),
        ("429/s", "(%s or %s * 0) and on (tenant) %s" % (
            by_tenant("429", "$__range"), by_tenant(rng="$__range"),
            TOP_HURT), "reqps"),
        ("401/403 /s", "(%s or %s * 0) and on (tenant) %s" % (
            by_tenant("401|403", "$__range"), by_tenant(rng="$__range"),
            TOP_HURT), "reqps"),
        ("p95", "histogram_quantile(0.95, sum by (tenant, le) (rate("
         "http_server_request_duration_seconds_bucket{%s}[$__range])))"
         " and on (tenant) %s" % (SEL, TOP_HURT), "s"),
    ], "tenant", description="Over the dashboard's time range. A row "
        "links to the tenant's drill-down, its log lines and its traces.",
        links=tenant_links(ROW)),
    ranking("by errors (5xx)", "5.."),
    ranking("rate-limited (429)", "429",
            "Answers 429: the tenant is over a rate limit "
            "(HighRateLimitExceeded fires above 10% of a service's "
            "requests)."),
    ranking("refused (401/403)", "401|403",
            "With obs_jwt, a request whose token does not verify counts as "
            "tenant \"unverified\": see \"Token verification results\" "
            "below for why."),
    ranking("by traffic"),
    panel("Latency p95, top $topk tenants",
          "topk($topk, histogram_quantile(0.95, sum by (tenant, le) "
          "(rate(http_server_request_duration_seconds_bucket{%s}[%s]))))"
          % (SEL, RATE), unit="s", legend="{{tenant}}", links=TENANT_LINKS),
    panel("Error ratio, top $topk tenants",
          "topk($topk, %s)" % ratio_or_zero("tenant", SEL, RATE),
          unit="percentunit", legend="{{tenant}}", links=TENANT_LINKS),
    panel("Availability error budget left (30 days), the $topk lowest",
          "bottomk($topk, %s)" % budget_30d("tenant", "availability",
                                            SEL_ST),
          unit="percentunit", legend="{{service}} {{tenant}}",
          links=TENANT_LINKS,
          description="Errors and requests of the last 30 days "
          "(recorded hour by hour); the last hour's until a whole hour is "
          "recorded. Below 0: the budget is spent."),
    panel("Traffic share, top $topk tenants",
          "topk($topk, sum by (tenant) (increase(http_server_requests_total"
          "{%s}[$__range])))" % SEL, kind="piechart", instant=True,
          legend="{{tenant}}", links=TENANT_LINKS),
    row("Why: the routes, status codes, log lines and traces of $tenant"),
    panel("Status codes of $tenant",
          "sum by (code) (rate(http_server_requests_total{%s}[%s]))"
          % (SEL, RATE), unit="reqps", legend="{{code}}"),
    panel("Routes of $tenant by status code (top $topk)",
          "topk($topk, sum by (service, route, code) "
          "(rate(http_server_requests_total{%s}[%s])))" % (SEL, RATE),
          unit="reqps", legend="{{service}} {{route}} {{code}}",
          description="Which endpoint fails the tenant, and how: 5xx "
          "(the service), 429 (rate limits), 401/403 (credentials)."),
    panel("Error ratio by route of $tenant (top $topk)",
          "topk($topk, %s)" % ratio_or_zero("service, route", SEL, RATE),
          unit="percentunit", legend="{{service}} {{route}}"),
    panel("Latency p95 by route of $tenant (top $topk)",
          "topk($topk, histogram_quantile(0.95, sum by (service, route, le) "
          "(rate(http_server_request_duration_seconds_bucket{%s}[%s]))))"
          % (SEL, RATE), unit="s", legend="{{service}} {{route}}",
          exemplars=True,
          description="Exemplars link each bucket to a trace in Jaeger."),
    panel("Token verification results (obs_jwt)",
          "sum by (result) (rate(obs_jwt_tokens_total[%s]))" % RATE,
          unit="reqps", legend="{{result}}",
          description="Why requests are \"unverified\" (and, with "
          "obs_jwt require, answered 401): expired, bad_signature, "
          "unknown_key, bad_issuer... for the whole gateway."),
] + gateway_logs(), GATEWAY_VARS + [TOPK], ["tenants"])

slo = dashboard("obs-slo", "SLO and error budget", [
    panel("Availability objective", "slo:availability:objective",
          kind="stat", unit="percentunit", w=6, instant=True),
    panel("Latency objective", "slo:latency:objective", kind="stat",
          unit="percentunit", w=6, instant=True),
    panel("Availability budget left (30 days)",
          budget_30d("service", "availability", 'service=~"$service"'),
          kind="gauge", unit="percentunit", w=6, instant=True,
          legend="{{service}}",
          description="Errors and requests of the last 30 days (recorded "
          "hour by hour); the last hour's until a whole hour is recorded."),
    panel("Latency budget left (30 days)",
          budget_30d("service", "latency", 'service=~"$service"'),
          kind="gauge", unit="percentunit", w=6, instant=True,
          legend="{{service}}",
          description="Requests slower than the objective's threshold "
          "over the last 30 days, against the budget."),
    panel("Availability burn rate by window", [
        ("service:slo_availability_errors:ratio_rate%s{service=~\"$service\"}"
         " / on() group_left() (1 - slo:availability:objective)" % w,
         "{{service}} %s" % w) for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d")],
        legend=None),
    panel("Latency burn rate by window", [
        ("service:slo_latency_errors:ratio_rate%s{service=~\"$service\"}"
         " / on() group_left() (1 - slo:latency:objective)" % w,
         "{{service}} %s" % w) for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d")],
        legend=None),
    panel("Tenants with the least availability budget left (30 days)",
          "bottomk(10, %s)" % budget_30d(
              "tenant", "availability", 'service=~"$service"'),
          kind="table", instant=True, links=[to_tenant(ROW)],
          description="A row opens the tenant on the Tenants dashboard."),
    panel("Burn-rate alerts firing",
          "sum by (alertname, severity, slo, service, tenant) "
          "(ALERTS{alertname=~\"SLO.*\",alertstate=\"firing\"})", kind="table",
          instant=True, links=[to_tenant(ROW)],
          description="A per-tenant alert's row opens the tenant on the "
          "Tenants dashboard."),
], GATEWAY_VARS[:1], ["slo"])

def nginx_panels():
    """The gateways' nginx as its stub_status shows it
    (prometheus-nginx-exporter; the gateway label is this stack's)."""
    gw = 'gateway=~"$gateway"'
    return [
        row("Gateway nginx (stub_status)"),
        panel("nginx up", "nginx_up{%s}" % gw, kind="stat", w=6,
              instant=True, legend="{{gateway}}",
              description="0: the exporter cannot read nginx's "
              "stub_status."),
        panel("nginx connections", [
            ("sum by (gateway) (nginx_connections_%s{%s})" % (state, gw),
             "{{gateway}} %s" % state)
            for state in ("active", "reading", "writing", "waiting")],
            unit="short", w=9,
            description="active = reading + writing + waiting (idle "
            "keep-alive); against worker_connections x worker_processes."),
        panel("nginx connections accepted and handled", [
            ("sum by (gateway) (rate(nginx_connections_accepted{%s}[%s]))"
             % (gw, RATE), "{{gateway}} accepted"),
            ("sum by (gateway) (rate(nginx_connections_handled{%s}[%s]))"
             % (gw, RATE), "{{gateway}} handled")], unit="cps", w=9,
            description="Handled below accepted: nginx dropped connections "
            "(worker_connections reached)."),
    ]


NODE = 'instance=~"$instance"'
system = dashboard("obs-system", "System health", [
    panel("Targets up", "up", kind="stat", w=24, h=4, instant=True,
          legend="{{job}} {{instance}}"),
    panel("CPU use",
          "1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\",%s}[%s]))"
          % (NODE, RATE), unit="percentunit", legend="{{instance}}"),
    panel("Memory use",
          "1 - node_memory_MemAvailable_bytes{%s} / node_memory_MemTotal_bytes{%s}"
          % (NODE, NODE), unit="percentunit", legend="{{instance}}"),
    panel("Disk free",
          "node_filesystem_avail_bytes{fstype!~\"tmpfs|overlay|squashfs\",%s}"
          " / node_filesystem_size_bytes{fstype!~\"tmpfs|overlay|squashfs\",%s}"
          % (NODE, NODE), unit="percentunit",
          legend="{{instance}} {{mountpoint}}"),
    panel("Network traffic", [
        ("sum by (instance) (rate(node_network_receive_bytes_total{device!=\"lo\",%s}[%s]))"
         % (NODE, RATE), "{{instance}} in"),
        ("-sum by (instance) (rate(node_network_transmit_bytes_total{device!=\"lo\",%s}[%s]))"
         % (NODE, RATE), "{{instance}} out")], unit="Bps"),
    # PostgreSQL (postgres_exporter)
    panel("PostgreSQL up", "pg_up", kind="stat", w=6, instant=True,
          legend="{{instance}}"),
    panel("PostgreSQL connections used",
          "sum by (instance) (pg_stat_activity_count)"
          " / max by (instance) (pg_settings_max_connections)",
          kind="gauge", unit="percentunit", w=6, instant=True,
          legend="{{instance}}",
          description="Share of max_connections in use "
          "(PostgresConnectionsHigh above 80%)."),
    panel("PostgreSQL transactions", [
        ("sum by (instance) (rate(pg_stat_database_xact_commit{datname!~\"template.*\"}[%s]))"
         % RATE, "{{instance}} commit"),
        ("sum by (instance) (rate(pg_stat_database_xact_rollback{datname!~\"template.*\"}[%s]))"
         % RATE, "{{instance}} rollback")], unit="ops", w=6),
    panel("PostgreSQL database size",
          "pg_database_size_bytes{datname!~\"template.*\"}", unit="bytes",
          w=6, legend="{{datname}}"),
    # Redis (redis_exporter)
    panel("Redis up", "redis_up", kind="stat", w=6, instant=True,
          legend="{{instance}}"),
    panel("Redis memory used of maxmemory",
          "redis_memory_used_bytes / (redis_memory_max_bytes > 0)",
          kind="gauge", unit="percentunit", w=6, instant=True,
          legend="{{instance}}",
          description="Empty when Redis runs without a maxmemory "
          "(RedisMemoryHigh above 85%)."),
    panel("Redis cache hit rate",
          "sum by (instance) (rate(redis_keyspace_hits_total[%s]))"
          " / (sum by (instance) (rate(redis_keyspace_hits_total[%s]))"
          " + sum by (instance) (rate(redis_keyspace_misses_total[%s])))"
          % (RATE, RATE, RATE), unit="percentunit", w=6,
          legend="{{instance}}"),
    panel("Redis clients and evictions", [
        ("sum by (instance) (redis_connected_clients)", "{{instance}} clients"),
        ("sum by (instance) (rate(redis_evicted_keys_total[%s]))" % RATE,
         "{{instance}} evicted/s")], w=6),
    # containers (cAdvisor)
    panel("Container CPU (cAdvisor)",
          "sum by (name) (rate(container_cpu_usage_seconds_total{name!=\"\"}[%s]))"
          % RATE, unit="percentunit", w=8, legend="{{name}}",
          description="CPU seconds per second (1 = one core)."),
    panel("Container memory (cAdvisor)",
          "sum by (name) (container_memory_working_set_bytes{name!=\"\"})",
          unit="bytes", w=8, legend="{{name}}"),
    panel("Container restarts (1h)",
          "sum by (name) (changes(container_start_time_seconds{name!=\"\"}[1h]))",
          kind="table", w=8, instant=True, legend="{{name}}",
          description="ContainerRestarting fires above 2 in 15 minutes."),
] + nginx_panels(), [
    var("instance", "label_values(node_uname_info, instance)", "Instance"),
    var("gateway", "label_values(nginx_up, gateway)", "Gateway")],
    ["system"])

SIDECAR = 'instance=~"$instance"'


def audit_panels():
    """The audit trail (issue 22): its counters, and the stream
    {job="obs-audit"} in Loki (the file on the sidecar's host is the record
    of truth; Loki is where it is searched)."""
    return [
        row("Audit trail"),
        panel("Audit events written and lost", [
            ("sum(rate(obs_audit_events_total{%s}[%s]))" % (SIDECAR, RATE),
             "written"),
            ("sum by (reason) (increase(obs_audit_events_lost_total{%s}[%s]))"
             % (SIDECAR, RATE), "lost: {{reason}}")], unit="short", w=8,
            description="Written: events/s into audit.file. Lost: any is "
            "AuditEventsLost; the trail records each count."),
        panel("Audit file", [
            ("min(obs_audit_writable{%s})" % SIDECAR, "writable (1/0)"),
            ("sum(obs_audit_queue_events{%s})" % SIDECAR, "events waiting")],
            unit="short", w=8,
            description="While the file cannot be written events wait "
            "(up to audit.queue_bytes) and /readyz is not ready: "
            "AuditFileNotWritable."),
        panel("Audit stream to Loki", [
            ("sum by (result) (rate(obs_exporter_requests_total"
             "{exporter=\"audit\",%s}[%s]))" % (SIDECAR, RATE),
             "pushes {{result}}"),
            ("sum(rate(obs_exporter_sent_total{exporter=\"audit\",%s}[%s]))"
             % (SIDECAR, RATE), "events/s delivered")], unit="short", w=8,
            description="Never shed: while Loki fails the file is the "
            "queue, and it is caught up on."),
        logs("Security decisions (audit trail)",
             '{job="obs-audit"} | json | decision=~"denied:.+" '
             'or event="ingest_refused"',
             "Requests the gateway refused (denied:<reason>: a JWT result, "
             "forbidden, rate_limited, ...) and datagrams the sidecar "
             "refused, from the audit stream in Loki.", h=9),
        logs("Audit trail",
             '{job="obs-audit"}',
             "Every event of the trail: audited requests (who, what, which "
             "tenant, the decision), nginx configurations loaded, the "
             "sidecar's start, reload and stop, losses. The chain is "
             "verified on the file: obs-sidecar --verify-audit.", h=9),
    ]


pipeline = dashboard("obs-pipeline", "Observability pipeline", [
    panel("Records received",
          "sum(rate(obs_records_received_total{%s}[%s]))" % (SIDECAR, RATE),
          unit="reqps", legend="records/s"),
    panel("nginx requests and records received, per gateway", [
        ("sum by (gateway) (rate(nginx_http_requests_total[%s]))" % RATE,
         "{{gateway}} nginx requests"),
        ("sum by (gateway) (rate(obs_records_received_total[%s]))" % RATE,
         "{{gateway}} records received")], unit="reqps",
        description="Apart by the probes and stub_status scrapes (no "
        "records); records at 0 while nginx serves: "
        "ObsRecordsNotReceived (the socket, address or port)."),
    panel("Records dropped by reason",
          "sum by (reason) (rate(obs_records_dropped_total{%s}[%s]))"
          % (SIDECAR, RATE), unit="reqps", legend="{{reason}}"),
    panel("Datagrams received and lost", [
        ("sum(rate(obs_datagrams_received_total{%s}[%s]))" % (SIDECAR, RATE),
         "received"),
        ("sum(rate(obs_datagrams_lost_total{%s}[%s]))" % (SIDECAR, RATE),
         "lost")], unit="reqps"),
    panel("Decode errors by reason",
          "sum by (reason) (rate(obs_decode_errors_total{%s}[%s]))"
          % (SIDECAR, RATE), unit="reqps", legend="{{reason}}"),
    panel("Series kept", "sum(obs_series{%s})" % SIDECAR, unit="short",
          legend="series"),
    panel("Cardinality overflow by dimension",
          "sum by (dimension) (rate(obs_series_overflow_total{%s}[%s]))"
          % (SIDECAR, RATE), unit="reqps", legend="{{dimension}}"),
    panel("Sidecar CPU",
          "rate(obs_process_cpu_seconds_total{%s}[%s])" % (SIDECAR, RATE),
          unit="percentunit", legend="{{instance}}"),
    panel("Sidecar memory", "obs_process_resident_memory_bytes{%s}" % SIDECAR,
          unit="bytes", legend="{{instance}}"),
    panel("Exporter deliveries by result",
          "sum by (exporter, result) (rate(obs_exporter_requests_total{%s}[%s]))"
          % (SIDECAR, RATE), unit="reqps", legend="{{exporter}} {{result}}",
          description="Loki and OTLP exporters (empty until they run)."),
    panel("Business values rejected by reason",
          "sum by (reason) (rate(obs_business_rejected_total{%s}[%s]))"
          % (SIDECAR, RATE), unit="reqps", legend="{{reason}}",
          description="obs_metric values that were not a finite number "
          "(or negative for a counter), or names that conflict."),
    panel("Exporter spool use",
          "obs_exporter_spool_bytes{%s} / obs_exporter_spool_limit_bytes{%s}"
          % (SIDECAR, SIDECAR), unit="percentunit", legend="{{exporter}}"),
] + audit_panels(),
    [var("instance", "label_values(obs_records_received_total, instance)",
         "Sidecar")], ["pipeline"])

DASHBOARDS = {
    "api-gateway-red.json": red,
    "tenants.json": tenants,
    "slo.json": slo,
    "system-health.json": system,
    "pipeline.json": pipeline,
}


def render(d):
    return json.dumps(d, indent=2, sort_keys=True) + "\n"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    check = "--check" in sys.argv
    stale = []
    for name, d in DASHBOARDS.items():
        path = os.path.join(here, name)
        text = render(d)
        if check:
            with open(path) as f:
                if f.read() != text:
                    stale.append(name)
        else:
            with open(path, "w") as f:
                f.write(text)
    if stale:
        sys.exit("stale dashboards (run make dashboards): " + ", ".join(stale))


if __name__ == "__main__":
    main()
