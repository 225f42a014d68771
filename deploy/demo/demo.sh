#!/usr/bin/env bash
# make demo / make demo-stop: the gateway stack on this machine, from Debian
# packages only: nginx + ngx_http_obs_module in front of the two demo
# services, obs-sidecar (log lines and spans to local files), nginx's own
# counters through prometheus-nginx-exporter, a real Prometheus with the
# project's rules, and Alertmanager with its routing.  Every request is an
# event of the audit trail, which verify-audit checks.
#
#   deploy/demo/demo.sh start|stop|traffic [requests]|verify-audit
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEMO=${OBS_DEMO_DIR:-$ROOT/build/demo}
GATEWAY_PORT=${GATEWAY_PORT:-8080}
BACKEND_PORT=${BACKEND_PORT:-8001}
ML_PORT=${ML_PORT:-8002}
SIDECAR_PORT=${SIDECAR_PORT:-9145}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090}
ALERTMANAGER_PORT=${ALERTMANAGER_PORT:-9093}
STUB_STATUS_PORT=${STUB_STATUS_PORT:-8081}
# not 9113: the Debian package runs its own exporter there
NGINX_EXPORTER_PORT=${NGINX_EXPORTER_PORT:-9147}
NGINX_EXPORTER=${NGINX_EXPORTER_BIN:-prometheus-nginx-exporter}
NGINX=${NGINX_BIN:-/usr/sbin/nginx}

pidfile() { echo "$DEMO/run/$1.pid"; }

running() { [ -f "$(pidfile "$1")" ] && kill -0 "$(cat "$(pidfile "$1")")" 2>/dev/null; }

spawn() {   # name, command...
    local name=$1; shift
    nohup "$@" >"$DEMO/logs/$name.log" 2>&1 &
    echo $! >"$(pidfile "$name")"
}

wait_http() {
    for _ in $(seq 300); do
        curl -fs -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "demo: $1 did not come up; see $DEMO/logs" >&2
    return 1
}

write_nginx_conf() {
    cat >"$DEMO/nginx.conf" <<EOC
load_module $DEMO/ngx_http_obs_module.so;
worker_processes 2;
error_log $DEMO/logs/nginx-error.log warn;
pid $(pidfile nginx);
events { worker_connections 1024; }
http {
    log_format traced '\$remote_addr "\$request" \$status '
                      'trace=\$obs_trace_id span=\$obs_span_id '
                      'route=\$obs_route tenant=\$obs_tenant';
    access_log $DEMO/logs/access.log traced;
    client_body_temp_path $DEMO/tmp;
    proxy_temp_path $DEMO/tmp;

    obs_sidecar unix:$DEMO/run/records.sock flush=200ms;
    obs_tenant \$http_x_tenant_id;
    obs_trace_sample 0.5;

    upstream backend_api {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive 16;
    }
    upstream ml_engine {
        server 127.0.0.1:$ML_PORT;
        keepalive 16;
    }

    server {
        listen 127.0.0.1:$GATEWAY_PORT;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        # every request an event of the audit trail, the client a pseudonym
        obs_audit on hmac=$DEMO/audit/client.key;

        location /api/ {
            obs_service_name backend-api;
            obs_route_auto on;
            proxy_pass http://backend_api;
        }
        location = /api/v1/recommendations {
            obs_service_name ml-engine;
            # business metrics from the headers ml-engine returns
            obs_metric counter http_server_recommendations_total
                       \$upstream_http_x_recommendations_count;
            obs_metric counter http_server_cache_requests_total 1
                       label=cache:\$upstream_http_x_cache:HIT,MISS;
            obs_metric gauge http_server_embedding_cache_age_seconds
                       \$upstream_http_x_embedding_cache_age;
            proxy_pass http://ml_engine;
        }
        location /ml/ {
            obs_service_name ml-engine;
            obs_route_auto on;
            proxy_pass http://ml_engine;
        }
    }

    # nginx's own counters for prometheus-nginx-exporter: no records
    server {
        listen 127.0.0.1:$STUB_STATUS_PORT;
        obs off;
        access_log off;
        location = /stub_status { stub_status; }
    }
}
EOC
}

write_prometheus_conf() {
    local rules="rule_files: [\"$ROOT/alert-rules/recording.yml\", \"$ROOT/alert-rules/alerts.yml\", \"$ROOT/alert-rules/slo.yml\"]"
    cat >"$DEMO/prometheus.yml" <<EOC
global:
  scrape_interval: 5s
  evaluation_interval: 5s
$rules
alerting:
  alertmanagers:
    - static_configs: [{targets: ['127.0.0.1:$ALERTMANAGER_PORT']}]
# the jobs are named obs-* as the alerts expect; the gateway label pairs
# nginx's requests with its sidecar's records (ObsRecordsNotReceived)
scrape_configs:
  - job_name: obs-sidecar
    static_configs:
      - targets: ['127.0.0.1:$SIDECAR_PORT']
        labels: {gateway: demo}
  - job_name: obs-nginx
    static_configs:
      - targets: ['127.0.0.1:$NGINX_EXPORTER_PORT']
        labels: {gateway: demo}
EOC
}

traffic() {
    local n=${1:-300} i tenant
    local tenants=(tenant_001 tenant_002 tenant_003 acme globex)
    for i in $(seq "$n"); do
        tenant=${tenants[$((RANDOM % ${#tenants[@]}))]}
        case $((i % 6)) in
            0) curl -s -o /dev/null -H "X-Tenant-ID: $tenant" \
                   -X POST -d '{"user":1}' "http://127.0.0.1:$GATEWAY_PORT/api/v1/recommendations" ;;
            1) curl -s -o /dev/null -H "X-Tenant-ID: $tenant" \
                   "http://127.0.0.1:$GATEWAY_PORT/api/v1/users/$((RANDOM % 1000))" ;;
            2) curl -s -o /dev/null -H "X-Tenant-ID: $tenant" -X POST -d '{}' \
                   "http://127.0.0.1:$GATEWAY_PORT/api/v1/orders" ;;
            3) curl -s -o /dev/null -H "X-Tenant-ID: $tenant" \
                   -H "traceparent: 00-$(head -c16 /dev/urandom | od -An -tx1 | tr -d ' \n')-00f067aa0ba902b7-01" \
                   "http://127.0.0.1:$GATEWAY_PORT/ml/models/$((RANDOM % 5))/predict" ;;
            4) curl -s -o /dev/null -H "X-Tenant-ID: $tenant" \
                   "http://127.0.0.1:$GATEWAY_PORT/api/v1/items/missing" ;;
            5) curl -s -o /dev/null \
                   "http://127.0.0.1:$GATEWAY_PORT/api/v1/users/$((RANDOM % 1000))/orders" ;;
        esac
    done
}

# The audit trail's keys, made once: the chain's (the sidecar's, and
# verify-audit's) and the clients' pseudonyms' (nginx's)
audit_keys() {
    local key
    mkdir -p "$DEMO/audit"
    chmod 700 "$DEMO/audit"
    for key in chain client; do
        [ -s "$DEMO/audit/$key.key" ] \
            || (umask 077 && openssl rand -hex 32 >"$DEMO/audit/$key.key")
    done
}

# the trail's files, oldest first (audit.log.N ... audit.log.1, audit.log)
verify_audit() {
    local files=() n=1
    while [ -f "$DEMO/audit/audit.log.$n" ]; do n=$((n + 1)); done
    for ((n = n - 1; n >= 1; n--)); do files+=("$DEMO/audit/audit.log.$n"); done
    files+=("$DEMO/audit/audit.log")
    "$ROOT/build/obs-sidecar" --verify-audit "${files[@]}" \
        --audit-key-file "$DEMO/audit/chain.key"
}

# nginx started as root writes the records socket as nobody
worker_group() {
    if [ "$(id -u)" = 0 ]; then id -gn nobody; else id -gn; fi
}

start() {
    [ -x "$ROOT/build/obs-sidecar" ] && [ -f "$ROOT/build/ngx_http_obs_module.so" ] \
        || make -C "$ROOT" all >/dev/null
    mkdir -p "$DEMO"/{run,logs,tmp,prometheus}
    chmod 755 "$DEMO" "$DEMO/run"
    audit_keys

    running backend-api || spawn backend-api /usr/bin/python3 "$ROOT/deploy/demo/services.py" backend-api "$BACKEND_PORT"
    running ml-engine || spawn ml-engine /usr/bin/python3 "$ROOT/deploy/demo/services.py" ml-engine "$ML_PORT"
    running sidecar || OTEL_SERVICE_NAME=obs-gateway spawn sidecar "$ROOT/build/obs-sidecar" \
        --ingest "unix:$DEMO/run/records.sock" --listen "127.0.0.1:$SIDECAR_PORT" \
        --ingest-group "$(worker_group)" \
        --logs-file "$DEMO/logs/requests.jsonl" --spans-file "$DEMO/logs/spans.otlp.jsonl" \
        --audit-file "$DEMO/audit/audit.log" --audit-key-file "$DEMO/audit/chain.key"
    wait_http "http://127.0.0.1:$SIDECAR_PORT/readyz"

    write_nginx_conf
    if ! running nginx; then
        # nginx loads its own copy, written beside and renamed into place:
        # a later rebuild never writes over a module a worker has mapped
        cp "$ROOT/build/ngx_http_obs_module.so" "$DEMO/ngx_http_obs_module.so.new"
        mv -f "$DEMO/ngx_http_obs_module.so.new" "$DEMO/ngx_http_obs_module.so"
        "$NGINX" -p "$DEMO" -c "$DEMO/nginx.conf"
    fi
    wait_http "http://127.0.0.1:$STUB_STATUS_PORT/stub_status"
    if command -v "$NGINX_EXPORTER" >/dev/null; then
        running nginx-exporter || spawn nginx-exporter "$NGINX_EXPORTER" \
            --nginx.scrape-uri="http://127.0.0.1:$STUB_STATUS_PORT/stub_status" \
            --web.listen-address="127.0.0.1:$NGINX_EXPORTER_PORT"
    else
        echo "demo: $NGINX_EXPORTER is not installed (scripts/install-deps.sh):" \
             "no nginx counters, ObsRecordsNotReceived cannot fire" >&2
    fi

    mkdir -p "$DEMO/alertmanager"
    running alertmanager || spawn alertmanager prometheus-alertmanager \
        --config.file="$ROOT/alert-rules/alertmanager.yml" \
        --storage.path="$DEMO/alertmanager" \
        --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" \
        --cluster.listen-address=""

    write_prometheus_conf
    running prometheus || spawn prometheus prometheus \
        --config.file="$DEMO/prometheus.yml" \
        --storage.tsdb.path="$DEMO/prometheus" \
        --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
        --enable-feature=exemplar-storage
    wait_http "http://127.0.0.1:$BACKEND_PORT/health"
    wait_http "http://127.0.0.1:$ML_PORT/health"
    wait_http "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"
    wait_http "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready"

    echo "demo: sending a little multi-tenant traffic..."
    traffic 300
    sleep 1

    cat <<EOM

The obs gateway demo is running:

  live status page (open this first)     http://127.0.0.1:$SIDECAR_PORT/status
  gateway (nginx + ngx_http_obs_module)  http://127.0.0.1:$GATEWAY_PORT/api/v1/users/42
  sidecar metrics                        http://127.0.0.1:$SIDECAR_PORT/metrics
  nginx's own counters (stub_status)     http://127.0.0.1:$NGINX_EXPORTER_PORT/metrics
  Prometheus                             http://127.0.0.1:$PROMETHEUS_PORT/graph?g0.expr=sum%20by%20(service%2Croute%2Ctenant)(rate(http_server_requests_total%5B1m%5D))
  Prometheus alerts                      http://127.0.0.1:$PROMETHEUS_PORT/alerts
  Alertmanager                           http://127.0.0.1:$ALERTMANAGER_PORT/
  backend-api, ml-engine                 http://127.0.0.1:$BACKEND_PORT/health, http://127.0.0.1:$ML_PORT/health
  structured log lines (JSON)            $DEMO/logs/requests.jsonl
  spans (OTLP/JSON)                      $DEMO/logs/spans.otlp.jsonl
  nginx access log with trace ids        $DEMO/logs/access.log
  audit trail (HMAC-chained JSON lines)  $DEMO/audit/audit.log

More traffic: deploy/demo/demo.sh traffic 1000     Stop: make demo-stop
Check the audit trail's chain: deploy/demo/demo.sh verify-audit
EOM
}

stop() {
    local name
    if running nginx; then
        "$NGINX" -p "$DEMO" -c "$DEMO/nginx.conf" -s quit || true
    fi
    for name in prometheus alertmanager nginx-exporter sidecar ml-engine backend-api; do
        if running "$name"; then
            local pid
            pid=$(cat "$(pidfile "$name")")
            kill "$pid" 2>/dev/null || true
            # the sidecar drains its exporters before it exits
            for _ in $(seq 100); do
                grep -qs '^State:.*[ZX]' "/proc/$pid/status" && break
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
        fi
        rm -f "$(pidfile "$name")"
    done
    echo "demo: stopped"
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    traffic) traffic "${2:-300}" ;;
    verify-audit) verify_audit ;;
    *) echo "usage: $0 start|stop|traffic [n]|verify-audit" >&2; exit 2 ;;
esac
