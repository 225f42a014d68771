#!/usr/bin/env bash
# What ngx_http_obs_module adds to a proxied request, measured against the
# same nginx without the module, in the same run:
#
#   1. user-space instructions per request (callgrind; deterministic): the
#      difference between two request counts cancels start-up and exit;
#   2. emission system calls per request under load (strace -c, sendmsg);
#   3. throughput (wrk, keepalive) and worker RSS, as ratios.
#
# Full instrumentation: route templates, tenant, propagate, 100% sampling,
# records flowing to a reader.  Batches seal by size and record count, not
# by the flush timer (FLUSH, default 60s): under callgrind a timer flush
# comes every so many wall-clock seconds, so how many fall within the
# measured requests depends on the machine's load, which made the count
# vary by some 800 instructions between runs.  Usage: bench/module_cost.sh [requests]
# OBS_EXTRA: more directives for the module's http block (e.g. obs_log_field);
# INSTRUCTIONS_ONLY=1: stop after the instruction count.
set -euo pipefail
cd "$(dirname "$0")/.."

N_SMALL=${N_SMALL:-200}
N_LARGE=${1:-2200}
NGINX=${NGINX_BIN:-/usr/sbin/nginx}
MODULE=${MODULE:-$PWD/build/ngx_http_obs_module.so}
WORK=$(mktemp -d /tmp/obs-bench-XXXXXX)
PORT=18480
UPSTREAM_PORT=18481
trap 'kill $(jobs -p) 2>/dev/null || true; pkill -f "$WORK" 2>/dev/null || true' EXIT

[ -f "$MODULE" ] || make module >/dev/null

mkdir -p "$WORK"/{up,gw}/logs

cat >"$WORK/up/nginx.conf" <<EOC
daemon on; master_process on; worker_processes 1;
error_log $WORK/up/logs/error.log warn; pid $WORK/up/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$UPSTREAM_PORT;
        location / { return 200 "{\"ok\":true}\n"; }
    }
}
EOC
"$NGINX" -p "$WORK/up" -c nginx.conf

gateway_conf() {    # $1: baseline|module
    local load="" obs_http="" obs_loc=""
    if [ "$1" = module ]; then
        load="load_module $MODULE;"
        obs_http="obs_sidecar unix:$WORK/records.sock flush=${FLUSH:-60s};
                  obs_service_name backend-api;
                  obs_tenant \$http_x_tenant_id;
                  obs_trace_context propagate;
                  obs_trace_sample 1;
                  ${OBS_EXTRA:-}"
        obs_loc="obs_route_auto on;"
    fi
    cat >"$WORK/gw/nginx.conf" <<EOC
$load
daemon off; master_process off; worker_processes 1;
error_log $WORK/gw/logs/error.log warn; pid $WORK/gw/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 100000;
    $obs_http
    upstream backend {
        server 127.0.0.1:$UPSTREAM_PORT;
        keepalive 16;
    }
    server {
        listen 127.0.0.1:$PORT;
        location /api/ {
            $obs_loc
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://backend;
        }
    }
}
EOC
}

drain_start() {
    /usr/bin/python3 bench/datagram_drain.py "$WORK/records.sock" >"$WORK/drain.out" &
    DRAIN=$!
    for _ in $(seq 50); do grep -q ready "$WORK/drain.out" 2>/dev/null && return; sleep 0.1; done
}

drain_stop() {
    kill -TERM "$DRAIN"; wait "$DRAIN" 2>/dev/null || true
    tail -1 "$WORK/drain.out"
}

wait_port() {
    for _ in $(seq 200); do
        curl -s -o /dev/null "http://127.0.0.1:$PORT/api/ping" && return; sleep 0.1
    done
    echo "gateway did not start" >&2; exit 1
}

client() {          # $1: number of requests, on one keepalive connection
    curl -s -o /dev/null \
        -H 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' \
        -H 'X-Tenant-ID: tenant_001' \
        "http://127.0.0.1:$PORT/api/v1/users/[1-$1]/orders"
}

# total user-space instructions of one gateway run serving $2 requests
callgrind_total() { # $1: baseline|module  $2: requests
    gateway_conf "$1"
    valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$1.$2" \
        "$NGINX" -p "$WORK/gw" -c nginx.conf 2>"$WORK/valgrind.log" &
    local vg=$!
    wait_port
    client "$2"
    kill -QUIT "$vg"; wait "$vg" || true
    sed -n 's/^summary: //p; s/^totals: //p' "$WORK/cg.$1.$2" | head -1
}

per_request() {     # $1: baseline|module -> instructions per request
    local small large
    small=$(callgrind_total "$1" "$N_SMALL")
    large=$(callgrind_total "$1" "$N_LARGE")
    echo $(( (large - small) / (N_LARGE - N_SMALL) ))
}

echo "== instructions per proxied request (callgrind, $N_SMALL vs $N_LARGE requests)"
base_ir=$(per_request baseline)
drain_start
mod_ir=$(per_request module)
drain_stop >/dev/null
echo "baseline:      $base_ir"
echo "with module:   $mod_ir"
echo "added:         $((mod_ir - base_ir))  (ratio $(echo "scale=3; $mod_ir / $base_ir" | bc))"
[ -n "${INSTRUCTIONS_ONLY:-}" ] && { "$NGINX" -p "$WORK/up" -c nginx.conf -s quit; exit 0; }

echo "== emission system calls under load (strace -c, 20000 requests, 8 connections)"
gateway_conf module
drain_start
strace -f -c -e trace=sendmsg,sendto,connect -o "$WORK/strace.out" \
    "$NGINX" -p "$WORK/gw" -c nginx.conf &
ST=$!
wait_port
wrk -t2 -c8 -d60s -H 'X-Tenant-ID: tenant_001' \
    -s bench/fixed_count.lua "http://127.0.0.1:$PORT/api/v1/users/7" >"$WORK/wrk.out" 2>&1 || true
pkill -QUIT -f "$WORK/gw" || true; wait "$ST" 2>/dev/null || true
reqs=$(sed -n 's/^requests: //p' "$WORK/wrk.out")
read -r dgrams bytes < <(drain_stop)
sends=$(awk '$NF=="sendmsg" {print $4}' "$WORK/strace.out")
echo "requests:      ${reqs:-?}"
echo "sendmsg calls: ${sends:-0}   datagrams received: $dgrams ($bytes bytes)"
echo "requests per emission syscall: $(echo "scale=1; ${reqs:-0} / ${sends:-1}" | bc)"

echo "== throughput and memory (wrk 10 s, 2 threads, 16 connections; same run)"
for mode in baseline module; do
    gateway_conf "$mode"
    [ "$mode" = module ] && drain_start
    "$NGINX" -p "$WORK/gw" -c nginx.conf &
    GW=$!
    wait_port
    wrk -t2 -c16 -d10s -H 'X-Tenant-ID: tenant_001' \
        "http://127.0.0.1:$PORT/api/v1/users/7" >"$WORK/wrk.$mode" 2>&1
    rss=$(awk '/VmRSS/ {print $2}' /proc/$GW/status)
    kill -QUIT "$GW"; wait "$GW" 2>/dev/null || true
    [ "$mode" = module ] && drain_stop >/dev/null
    rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.$mode")
    echo "$mode: $rps req/s, worker RSS ${rss} kB"
    eval "rps_$mode=$rps"
done
echo "throughput ratio (module/baseline): $(echo "scale=3; $rps_module / $rps_baseline" | bc)"

"$NGINX" -p "$WORK/up" -c nginx.conf -s quit
