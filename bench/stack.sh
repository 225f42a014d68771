# Sourced by the exporter benchmarks: a gateway nginx (2 workers, the
# module, every request sampled) proxying to a backend nginx, receivers that
# cost almost nothing (an nginx answering 204/200 to pushes, one access-log
# line per body; for OTLP/gRPC an HTTP/2 server answering grpc-status 0),
# and obs-sidecar.  Everything is stopped on exit.
#
# OTLP_ALL=http|grpc: every signal over OTLP instead (metrics pushed every
# OTEL_METRIC_EXPORT_INTERVAL, default here 5000 ms, besides /metrics; log
# records and spans over OTLP; no Loki).
#
#   stack_start [sidecar flags...]   start it all
#   cpu PID...                       utime + stime in clock ticks
#   metric NAME [LABEL_FILTER]       a sidecar metric, summed over series
#   load SECONDS                     wrk against the gateway; sets REQUESTS
#   exporter_counts [LOG_EXPORTER]   log lines and spans delivered, shed
#                                    and dropped: LINES SPANS SHED_L SHED_T
#                                    DROP_L DROP_T (LOG_EXPORTER: loki, or
#                                    otlp_logs)
#   served                           requests the gateway has served (its
#                                    stub_status, uninstrumented; once per
#                                    stack_start)
#   stack_stop                       stop the sidecar (it drains) and nginx
# SIDECAR_BIN: the sidecar to run (default build/obs-sidecar), e.g. one
# built from another commit, to compare two in the same run.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

NGINX=${NGINX_BIN:-/usr/sbin/nginx}
WORK=$(mktemp -d /tmp/obs-xbench-XXXXXX)
chmod 755 "$WORK"
# six ports from BENCH_PORT_BASE, else the first free run of six from 18580
source bench/ports.sh
BASE=$(free_ports 6 18580 "${BENCH_PORT_BASE:-}")
GW=$BASE UP=$((BASE + 1)) RX=$((BASE + 2)) METRICS=$((BASE + 3)) RXG=$((BASE + 4)) GWS=$((BASE + 5))
SIDECAR=
trap 'stack_stop; rm -rf "$WORK"' EXIT

make -s all >/dev/null

stack_start() {
    mkdir -p "$WORK"/{up,gw}/logs
    cat >"$WORK/up/nginx.conf" <<EOC
load_module ${ECHO_MODULE:-/usr/lib/nginx/modules/ngx_http_echo_module.so};
daemon on; master_process on; worker_processes 1;
error_log $WORK/up/logs/error.log warn; pid $WORK/up/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_buffer_size 4m;
    log_format body '\$uri \$status \$request_length';
    server { listen 127.0.0.1:$UP; location / { return 200 "{\"ok\":true}\n"; } }
    server {
        listen 127.0.0.1:$RX;
        access_log $WORK/up/logs/bodies.log body;
        location = /loki/api/v1/push { client_max_body_size 64m; return 204; }
        location = /v1/traces { client_max_body_size 64m; return 200; }
        location = /v1/logs { client_max_body_size 64m; return 200; }
        location = /v1/metrics { client_max_body_size 64m; return 200; }
    }
    server {
        listen 127.0.0.1:$RXG http2;
        access_log $WORK/up/logs/bodies.log body;
        location / {
            client_max_body_size 64m;
            default_type application/grpc;
            add_header grpc-status 0;
            echo_read_request_body;
            echo -n "";
        }
    }
}
EOC
    "$NGINX" -p "$WORK/up" -c nginx.conf

    cat >"$WORK/gw/nginx.conf" <<EOC
load_module $PWD/build/ngx_http_obs_module.so;
daemon on; master_process on; worker_processes 2;
error_log $WORK/gw/logs/error.log warn; pid $WORK/gw/nginx.pid;
events { worker_connections 1024; }
http {
    $( [ -n "${GW_ACCESS_LOG:-}" ] && echo "access_log $WORK/gw/logs/access.log combined buffer=256k;" || echo "access_log off;" )
    obs_sidecar unix:$WORK/records.sock;
    obs_service_name backend-api;
    obs_tenant \$http_x_tenant_id;
    obs_trace_sample ${SAMPLE:-1};
    upstream backend { server 127.0.0.1:$UP; keepalive 16; }
    server {
        listen 127.0.0.1:$GW;
        location /api/ {
            obs_route_auto on;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://backend;
        }
    }
    server {
        listen 127.0.0.1:$GWS;
        obs off;
        location = /stub { stub_status; }
    }
}
EOC
    # nginx started as root writes the records socket as nobody
    local receivers=(--loki-url "http://127.0.0.1:$RX/loki/api/v1/push"
                     --otlp-endpoint "http://127.0.0.1:$RX")
    if [ -n "${OTLP_ALL:-}" ]; then
        export OTEL_METRICS_EXPORTER=prometheus,otlp OTEL_LOGS_EXPORTER=otlp
        export OTEL_METRIC_EXPORT_INTERVAL=${OTEL_METRIC_EXPORT_INTERVAL:-5000}
        if [ "$OTLP_ALL" = grpc ]; then
            export OTEL_EXPORTER_OTLP_PROTOCOL=grpc
            export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$RXG
        else
            export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$RX
        fi
        receivers=()
    else
        unset OTEL_METRICS_EXPORTER OTEL_LOGS_EXPORTER \
              OTEL_EXPORTER_OTLP_PROTOCOL OTEL_EXPORTER_OTLP_ENDPOINT
    fi
    "${SIDECAR_BIN:-build/obs-sidecar}" --ingest "unix:$WORK/records.sock" \
        --ingest-group "$(if [ "$(id -u)" = 0 ]; then id -gn nobody; else id -gn; fi)" \
        --listen "127.0.0.1:$METRICS" "${receivers[@]}" "$@" \
        2>"$WORK/sidecar.log" &
    SIDECAR=$!
    sleep 0.5
    "$NGINX" -p "$WORK/gw" -c nginx.conf
    sleep 0.5
    WORKERS=$(pgrep -f "nginx: worker process" -P "$(cat "$WORK/gw/nginx.pid")" | tr '\n' ' ')
}

cpu() {
    local total=0 pid
    for pid in "$@"; do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}

metric() {
    curl -s "http://127.0.0.1:$METRICS/metrics" \
        | awk -v m="$1" -v f="${2:-}" 'index($1, m) == 1 && (substr($1, length(m) + 1, 1) == "{" || length($1) == length(m)) && index($1, f) {s += $2} END {printf "%d\n", s}'
}

load() {
    wrk -t2 -c32 -d"${1}s" -H 'X-Tenant-ID: tenant_001' \
        "http://127.0.0.1:$GW/api/v1/users/42" >"$WORK/wrk.out"
    REQUESTS=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
    RATE=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")
}

exporter_counts() {
    local lexp=${1:-loki}
    LINES=$(metric obs_exporter_sent_total "exporter=\"$lexp\"")
    SPANS=$(metric obs_exporter_sent_total 'exporter="otlp"')
    SHED_L=$(metric obs_exporter_shed_total 'signal="logs"')
    SHED_T=$(metric obs_exporter_shed_total 'signal="traces"')
    DROP_L=$(metric obs_exporter_dropped_total "exporter=\"$lexp\"")
    DROP_T=$(metric obs_exporter_dropped_total 'exporter="otlp"')
}

served() {
    # stub_status counts every request, this query among them (ask once
    # per stack_start)
    curl -s "http://127.0.0.1:$GWS/stub" | awk 'NR == 3 {print $3 - 1}'
}

stack_stop() {
    if [ -n "$SIDECAR" ] && kill -0 "$SIDECAR" 2>/dev/null; then
        kill -TERM "$SIDECAR"; wait "$SIDECAR" || true
    fi
    SIDECAR=
    for d in gw up; do
        [ -f "$WORK/$d/nginx.pid" ] && "$NGINX" -p "$WORK/$d" -c nginx.conf -s quit 2>/dev/null || true
    done
    sleep 0.3
}
