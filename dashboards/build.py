#!/usr/bin/python3
"""Writes the Grafana dashboards (JSON) from the panel lists below.

Run `make dashboards` after editing; the tests fail when a committed JSON
file differs from what this script writes.  Panels never name a datasource
uid: they use the `${datasource}` (Prometheus) and `${loki}` template
variables, whose default is the `__inputs` entry that Grafana's import
dialog asks for, so the same files work provisioned (compose) and imported
into any Grafana."""

import json
import os
import sys

PROM = {"type": "prometheus", "uid": "${datasource}"}
LOKI = {"type": "loki", "uid": "${loki}"}
SEL = 'service=~"$service",route=~"$route",tenant=~"$tenant"'
SEL_SR = 'service=~"$service",route=~"$route"'
SCHEMA_VERSION = 39             # Grafana 10.4 / 11
GRAFANA_VERSION = "10.4.0"      # the oldest that loads them

# datasource variable name -> (plugin, label, import input)
DATASOURCES = {
    "datasource": ("prometheus", "Prometheus", "DS_PROMETHEUS"),
    "loki": ("loki", "Loki", "DS_LOKI"),
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


def panel(title, exprs, kind="timeseries", unit=None, w=12, h=8,
          legend=None, instant=False, exemplars=False, description=None):
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
    if kind == "table":
        p["transformations"] = [{"id": "merge", "options": {}}]
    return p


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
    uids = {t["datasource"]["uid"] for p in panels for t in p["targets"]}
    uids |= {v["datasource"]["uid"] for v in variables if "datasource" in v}
    return [ds_var(name) for name in DATASOURCES
            if "${%s}" % name in uids]


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
    counts from the services' headers with obs_metric (README: Business
    metrics); empty where no service sends the headers."""
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


def dashboard(uid, title, panels, variables=(), tags=()):
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
          % SEL, kind="table", unit="reqps", instant=True),
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

tenants = dashboard("obs-tenants", "Tenants", [
    panel("Top tenants by traffic",
          "topk(10, sum by (tenant) (rate(http_server_requests_total{%s}[%s])))"
          % (SEL, RATE), unit="reqps", legend="{{tenant}}"),
    panel("Top tenants by errors (5xx)",
          "topk(10, sum by (tenant) (rate(http_server_requests_total{%s,code=~\"5..\"}[%s])))"
          % (SEL, RATE), unit="reqps", legend="{{tenant}}"),
    panel("Latency p95 per tenant",
          "histogram_quantile(0.95, sum by (tenant, le) "
          "(rate(http_server_request_duration_seconds_bucket{%s}[%s])))"
          % (SEL, RATE), unit="s", legend="{{tenant}}"),
    panel("Error ratio per tenant",
          ratio_or_zero("tenant", SEL, RATE), unit="percentunit",
          legend="{{tenant}}"),
    panel("Availability error budget left per tenant (30d)",
          "1 - (tenant:slo_availability_errors:ratio_rate3d{service=~\"$service\",tenant=~\"$tenant\"}"
          " / on() group_left() (1 - slo:availability:objective))",
          unit="percentunit", legend="{{service}} {{tenant}}"),
    panel("Traffic share by tenant",
          "sum by (tenant) (increase(http_server_requests_total{%s}[$__range]))"
          % SEL, kind="piechart", instant=True, legend="{{tenant}}"),
] + gateway_logs(), GATEWAY_VARS, ["tenants"])

slo = dashboard("obs-slo", "SLO and error budget", [
    panel("Availability objective", "slo:availability:objective",
          kind="stat", unit="percentunit", w=6, instant=True),
    panel("Latency objective", "slo:latency:objective", kind="stat",
          unit="percentunit", w=6, instant=True),
    panel("Availability budget remaining (3d window)",
          "1 - (service:slo_availability_errors:ratio_rate3d{service=~\"$service\"}"
          " / on() group_left() (1 - slo:availability:objective))",
          kind="gauge", unit="percentunit", w=6, instant=True,
          legend="{{service}}"),
    panel("Latency budget remaining (3d window)",
          "1 - (service:slo_latency_errors:ratio_rate3d{service=~\"$service\"}"
          " / on() group_left() (1 - slo:latency:objective))",
          kind="gauge", unit="percentunit", w=6, instant=True,
          legend="{{service}}"),
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
    panel("Burn-rate alerts firing",
          "ALERTS{alertname=~\"SLO.*\",alertstate=\"firing\"}", kind="table",
          instant=True, w=24),
], GATEWAY_VARS[:1], ["slo"])

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
], [var("instance", "label_values(node_uname_info, instance)", "Instance")],
    ["system"])

SIDECAR = 'instance=~"$instance"'
pipeline = dashboard("obs-pipeline", "Observability pipeline", [
    panel("Records received",
          "sum(rate(obs_records_received_total{%s}[%s]))" % (SIDECAR, RATE),
          unit="reqps", legend="records/s"),
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
], [var("instance", "label_values(obs_records_received_total, instance)",
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
