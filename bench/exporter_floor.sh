#!/usr/bin/env bash
# Records per second of one core for the whole exporting sidecar: decode +
# aggregate + JSON log line + Loki push + OTLP span + delivery (see
# bench/exporter_floor.c).  The sidecar's threads are pinned to core 0; the
# receiver (an nginx answering 204/200 without looking at bodies) runs on
# core 1 and is not counted.  Usage: bench/exporter_floor.sh [records] [json]
set -euo pipefail
cd "$(dirname "$0")/.."
NGINX=${NGINX_BIN:-/usr/sbin/nginx}
RX=18592
WORK=$(mktemp -d /tmp/obs-floor-XXXXXX)
make -s "$PWD/build/bench_exporter_floor" >/dev/null
mkdir -p "$WORK/logs"
cat >"$WORK/nginx.conf" <<EOC
daemon on; master_process on; worker_processes 1; worker_cpu_affinity 10;
error_log $WORK/logs/error.log warn; pid $WORK/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    client_body_buffer_size 4m;
    server {
        listen 127.0.0.1:$RX;
        location = /loki/api/v1/push { client_max_body_size 64m; return 204; }
        location = /v1/traces { client_max_body_size 64m; return 200; }
    }
}
EOC
"$NGINX" -p "$WORK" -c nginx.conf
trap '"$NGINX" -p "$WORK" -c nginx.conf -s quit; rm -rf "$WORK"' EXIT
${PROFILE:-} taskset -c 0 build/bench_exporter_floor "${1:-600000}" \
    "http://127.0.0.1:$RX/loki/api/v1/push" "http://127.0.0.1:$RX" ${2:-}
