#!/usr/bin/env bash
# The sidecar's cost with both exporters on, against nginx's, under the same
# load: nginx (2 workers, module, every request sampled) proxies to a
# backend; the sidecar aggregates and exports every log line to "Loki" and
# every span over OTLP/HTTP (both answered by a plain nginx receiver).
#
# Reports log lines and spans exported per CPU-second of the sidecar (its
# throughput on one core), and sidecar CPU per record / nginx CPU per
# request.  Usage: bench/exporter_cost.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_LOAD=${1:-15}
NGINX=${NGINX_BIN:-/usr/sbin/nginx}
WORK=$(mktemp -d /tmp/obs-xbench-XXXXXX)
chmod 755 "$WORK"
GW=18580 UP=18581 RX=18582 METRICS=18583
trap 'kill $(jobs -p) 2>/dev/null || true; pkill -f "$WORK" 2>/dev/null || true' EXIT

make -s all >/dev/null
mkdir -p "$WORK"/{up,gw}/logs

cat >"$WORK/up/nginx.conf" <<EOC
daemon on; master_process on; worker_processes 1;
error_log $WORK/up/logs/error.log warn; pid $WORK/up/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_buffer_size 2m;
    server { listen 127.0.0.1:$UP; location / { return 200 "{\"ok\":true}\n"; } }
    server {
        listen 127.0.0.1:$RX;
        location = /loki/api/v1/push { client_max_body_size 64m; return 204; }
        location = /v1/traces { client_max_body_size 64m; return 200; }
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
    access_log off;
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
}
EOC

# nginx started as root writes the records socket as nobody
GROUP=$(if [ "$(id -u)" = 0 ]; then id -gn nobody; else id -gn; fi)
build/obs-sidecar --ingest "unix:$WORK/records.sock" --listen "127.0.0.1:$METRICS" \
    --ingest-group "$GROUP" \
    --loki-url "http://127.0.0.1:$RX/loki/api/v1/push" \
    --otlp-endpoint "http://127.0.0.1:$RX" 2>"$WORK/sidecar.log" &
SIDECAR=$!
sleep 0.5
"$NGINX" -p "$WORK/gw" -c nginx.conf
sleep 0.5

cpu() {     # utime + stime, in clock ticks, of the given pids
    local total=0 pid
    for pid in "$@"; do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}

workers=$(pgrep -f "nginx: worker process" -P "$(cat "$WORK/gw/nginx.pid")" | tr '\n' ' ')
metric() { curl -s "http://127.0.0.1:$METRICS/metrics" | awk -v m="$1" '$1 == m {s += $2} END {print s + 0}'; }

n0=$(cpu $workers); s0=$(cpu $SIDECAR)
[ -n "${PERF_SIDECAR:-}" ] && { perf record -g -o "$PERF_SIDECAR" -p $SIDECAR -- sleep 5 >/dev/null 2>&1 & }
wrk -t2 -c32 -d"${SECONDS_LOAD}s" -H 'X-Tenant-ID: tenant_001' \
    "http://127.0.0.1:$GW/api/v1/users/42" >"$WORK/wrk.out"
sleep 2                     # the last batches leave
curl -s "http://127.0.0.1:$METRICS/metrics" | grep "^obs_exporter" > "$WORK/exporter.metrics"
n1=$(cpu $workers); s1=$(cpu $SIDECAR)

requests=$(awk "/requests in/ {print \$1}" "$WORK/wrk.out")
records=$(metric obs_records_received_total)
lines=$(curl -s "http://127.0.0.1:$METRICS/metrics" | awk '/^obs_exporter_sent_total\{exporter="loki"\}/ {print $2}')
spans=$(curl -s "http://127.0.0.1:$METRICS/metrics" | awk '/^obs_exporter_sent_total\{exporter="otlp"\}/ {print $2}')
tick=$(getconf CLK_TCK)

nginx_cpu=$(echo "scale=3; ($n1 - $n0) / $tick" | bc)
sidecar_cpu=$(echo "scale=3; ($s1 - $s0) / $tick" | bc)
echo "load:            $requests requests in ${SECONDS_LOAD}s ($(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out") req/s)"
echo "records:         $records received, $lines log lines and $spans spans delivered"
echo "nginx CPU:       ${nginx_cpu}s ($(echo "scale=2; $nginx_cpu * 1000000 / $requests" | bc) us/request)"
echo "sidecar CPU:     ${sidecar_cpu}s ($(echo "scale=2; $sidecar_cpu * 1000000 / $records" | bc) us/record)"
echo "ratio:           sidecar per record / nginx per request = $(awk -v s="$sidecar_cpu" -v r="$records" -v n="$nginx_cpu" -v q="$requests" 'BEGIN {printf "%.3f", (s / r) / (n / q)}')"
echo "records dropped by the module (sidecar too slow): $(( requests - records ))"
echo "exported per sidecar CPU-second: $(echo "scale=0; $lines / $sidecar_cpu" | bc) log lines, $(echo "scale=0; $spans / $sidecar_cpu" | bc) spans"

kill -TERM $SIDECAR; wait $SIDECAR || true
"$NGINX" -p "$WORK/gw" -c nginx.conf -s quit
"$NGINX" -p "$WORK/up" -c nginx.conf -s quit
