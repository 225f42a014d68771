#!/usr/bin/env bash
# What ngx_http_obs_module adds to a proxied request, against the bare proxy
# (the same nginx without the module, the same request shape), every figure
# from this one run:
#
#   1. user-space instructions per request (callgrind; deterministic): each
#      configuration runs twice, serving N_SMALL and N_LARGE requests, and
#      the difference, divided by N_LARGE - N_SMALL, cancels start-up and
#      exit.  One line per variant: name, shape, baseline, with module,
#      added, ratio;
#   2. the request pool: blocks, bytes used and large allocations a request
#      leaves in its pool (bench/pool_probe.c, in runs of their own), and
#      the module's calls to the pool's allocators per request (callgrind);
#   3. where the added instructions go: the module's functions by inclusive
#      cost per request, and what grew outside it (nginx, libc).
#
# nginx 1.22.1 (/usr/sbin/nginx), one worker, keepalive upstream, every
# request with a traceparent and a tenant header, one keepalive client
# connection; the module fully on: metrics, log records and traces (100%
# sampling), propagation, in-flight counting, records flowing to a reader
# (bench/datagram_drain.py).  Batches seal by size and record count, not by
# the flush timer (FLUSH, default 60s): under callgrind a timer flush comes
# every so many wall-clock seconds, so how many fall within the measured
# requests would depend on the machine's load.
#
# Usage: bench/module_cost.sh [BODY [HEADERS [QUERY]]]
#   BODY     bytes of the upstream's response body (default 12)
#   HEADERS  request headers besides Host (default 2: traceparent and
#            X-Tenant-ID; more are the usual ones of an API client, then
#            X-Bench-<n>)
#   QUERY    1: the request has a query string (default 0)
# Variants (VARIANTS, default all of them, in this order):
#   templates      obs_route "/api/v1/users/{id}/orders" (a fixed template)
#   auto           obs_route_auto on instead
#   active_off     templates, obs_active_requests off
#   upstream_span  templates, obs_upstream_span on
#   shape:body     templates, a 2048-byte body (12 if BODY is 2048)
#   shape:headers  templates, 20 request headers (2 if HEADERS is 20)
#   shape:query    templates, with the query string toggled
# Environment: N_SMALL (200), N_LARGE (2200), PROBE_N (300) requests;
# OBS_EXTRA: more directives for every module variant's http block (e.g.
# "obs_audit on;"); MODULE: the module to measure; BEFORE: another build
# of it (say, of the commit before a change), measured in the same run:
# each variant gets a row "<variant> (before)" after its own, against the
# same bare proxy; PROFILES (1): how many variants get the function tables;
# TOP (20) rows each; INSTRUCTIONS_ONLY=1: the first table only; KEEP=1:
# keep the callgrind files (their directory is printed at the end);
# LOAD=1: also emission system calls (strace) and throughput (wrk) of the
# first variant.
set -euo pipefail
cd "$(dirname "$0")/.."

BODY=${1:-12}
HEADERS=${2:-2}
QUERY=${3:-0}
N_SMALL=${N_SMALL:-200}
N_LARGE=${N_LARGE:-2200}
PROBE_N=${PROBE_N:-300}
VARIANTS=${VARIANTS:-templates auto active_off upstream_span shape:body shape:headers shape:query}
NGINX=${NGINX_BIN:-/usr/sbin/nginx}
MODULE=${MODULE:-$PWD/build/ngx_http_obs_module.so}
PROBE=$PWD/build/bench_pool_probe.so
# the gateway's port and the upstreams' after it (a port per body size):
# PORT, else the first free run of four from 18480
source bench/ports.sh
PORT=$(free_ports 4 18480 "${PORT:-}")
UPSTREAM_PORT=$((PORT + 1))
WORK=$(mktemp -d /tmp/obs-bench-XXXXXX)
chmod 755 "$WORK"
GW_MODULE=$MODULE   # the module the gateway loads now
CUR=                # the gateway running now
DRAIN=

[ "$HEADERS" -ge 2 ] || { echo "HEADERS must be at least 2" >&2; exit 2; }

cleanup() {
    local pid
    for pid in $CUR $DRAIN; do kill "$pid" 2>/dev/null || true; done
    [ -f "$WORK/up/nginx.pid" ] \
        && "$NGINX" -p "$WORK/up" -c nginx.conf -s quit 2>/dev/null || true
    if [ -n "${KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

[ "${MODULE_BUILD:-1}" = 1 ] && [ "$MODULE" = "$PWD/build/ngx_http_obs_module.so" ] \
    && make -s module >/dev/null
make -s "$PROBE" >/dev/null

# --- the request shapes and variants --------------------------------------

alt_body=$([ "$BODY" = 2048 ] && echo 12 || echo 2048)
alt_headers=$([ "$HEADERS" = 20 ] && echo 2 || echo 20)
alt_query=$([ "$QUERY" = 1 ] && echo 0 || echo 1)

variant_config() {  # $1: variant -> "config body headers query"
    case $1 in
        templates)     echo "templates $BODY $HEADERS $QUERY" ;;
        auto)          echo "auto $BODY $HEADERS $QUERY" ;;
        active_off)    echo "active_off $BODY $HEADERS $QUERY" ;;
        upstream_span) echo "upstream_span $BODY $HEADERS $QUERY" ;;
        shape:body)    echo "templates $alt_body $HEADERS $QUERY" ;;
        shape:headers) echo "templates $BODY $alt_headers $QUERY" ;;
        shape:query)   echo "templates $BODY $HEADERS $alt_query" ;;
        *) echo "unknown variant $1" >&2; exit 2 ;;
    esac
}

shape_label() { echo "body=$1 headers=$2 query=$([ "$3" = 1 ] && echo yes || echo no)"; }

# a response body of exactly $1 bytes
body_of() {
    local n=$1 head='{"ok":true,"data":"' tail='"}'
    if [ "$n" = 12 ]; then printf '{"ok":true}\\n'; return; fi
    if [ "$n" -lt $(( ${#head} + ${#tail} )) ]; then
        printf '%*s' "$n" '' | tr ' ' x; return
    fi
    printf '%s' "$head"
    printf '%*s' $(( n - ${#head} - ${#tail} )) '' | tr ' ' a
    printf '%s' "$tail"
}

# --- the upstream: a server per body size ---------------------------------

mkdir -p "$WORK"/{up,gw}/logs
BODIES=()
for v in $VARIANTS; do
    read -r _ b _ _ < <(variant_config "$v")
    [[ " ${BODIES[*]} " == *" $b "* ]] || BODIES+=("$b")
done
upstream_port() {   # $1: body size
    local i
    for i in "${!BODIES[@]}"; do
        [ "${BODIES[$i]}" = "$1" ] && { echo $((UPSTREAM_PORT + i)); return; }
    done
}
{
    cat <<EOC
daemon on; master_process on; worker_processes 1;
error_log $WORK/up/logs/error.log warn; pid $WORK/up/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    default_type application/json;
EOC
    for b in "${BODIES[@]}"; do
        echo "    server { listen 127.0.0.1:$(upstream_port "$b"); location / { return 200 \"$(body_of "$b" | sed 's/"/\\"/g')\"; } }"
    done
    echo "}"
} >"$WORK/up/nginx.conf"
"$NGINX" -p "$WORK/up" -c nginx.conf

# --- the gateway ----------------------------------------------------------

gateway_conf() {    # $1: baseline|templates|auto|active_off|upstream_span
                    # $2: body size  $3: 1 to load the pool probe
    local load="" obs_http="" obs_loc=""
    if [ "$1" != baseline ]; then
        load="load_module $GW_MODULE;"
        obs_http="obs_sidecar unix:$WORK/records.sock flush=${FLUSH:-60s};
                  obs_service_name backend-api;
                  obs_tenant \$http_x_tenant_id;
                  obs_trace_context propagate;
                  obs_trace_sample 1;
                  ${OBS_EXTRA:-}"
        case $1 in
            auto)          obs_loc="obs_route_auto on;" ;;
            active_off)    obs_http="$obs_http obs_active_requests off;"
                           obs_loc='obs_route "/api/v1/users/{id}/orders";' ;;
            upstream_span) obs_loc='obs_route "/api/v1/users/{id}/orders"; obs_upstream_span on;' ;;
            *)             obs_loc='obs_route "/api/v1/users/{id}/orders";' ;;
        esac
    fi
    # the probe after the module: its log handler runs last
    [ "${3:-0}" = 1 ] && load="$load load_module $PROBE;"
    cat >"$WORK/gw/nginx.conf" <<EOC
$load
daemon off; master_process off; worker_processes 1;
error_log $WORK/gw/logs/error.log warn; pid $WORK/gw/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    $obs_http
    upstream backend {
        server 127.0.0.1:$(upstream_port "$2");
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
    [ -n "$DRAIN" ] && return
    /usr/bin/python3 bench/datagram_drain.py "$WORK/records.sock" >"$WORK/drain.out" &
    DRAIN=$!
    for _ in $(seq 50); do grep -q ready "$WORK/drain.out" 2>/dev/null && return; sleep 0.1; done
}

wait_port() {
    for _ in $(seq 300); do
        curl -s -o /dev/null "http://127.0.0.1:$PORT/api/ping" && return; sleep 0.1
    done
    echo "gateway did not start:" >&2; cat "$WORK/gw/logs/error.log" >&2; exit 1
}

# the client's headers besides Host: traceparent, the tenant, then those of
# an API client, then fillers; curl's own User-Agent and Accept left out
EXTRA_HEADERS=(
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36'
    'Accept: application/json, text/plain, */*'
    'Accept-Encoding: gzip, deflate, br'
    'Accept-Language: en-US,en;q=0.9'
    'Cache-Control: no-cache'
    'Pragma: no-cache'
    'Referer: https://app.example.com/dashboard/orders'
    'Origin: https://app.example.com'
    'Cookie: session=8c6f3b0e2d1a4f5b9c7e6d5a4b3c2d1e; theme=dark; consent=1'
    'X-Request-ID: 5f0c6a2e-8b1d-4c3e-9f7a-1d2e3f4a5b6c'
    'X-Forwarded-For: 203.0.113.17'
    'X-Forwarded-Proto: https'
    'X-Real-IP: 203.0.113.17'
    'Sec-Fetch-Mode: cors'
    'Sec-Fetch-Site: same-site'
    'Sec-Fetch-Dest: empty'
    'DNT: 1'
    'X-Client-Version: 4.12.0'
)
client() {          # $1: requests on one keepalive connection  $2: headers  $3: query
    local args=(-s -o /dev/null -H 'User-Agent:' -H 'Accept:'
                -H 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
                -H 'X-Tenant-ID: tenant_001') i
    for (( i = 2; i < $2; i++ )); do
        if (( i - 2 < ${#EXTRA_HEADERS[@]} )); then
            args+=(-H "${EXTRA_HEADERS[$((i - 2))]}")
        else
            args+=(-H "X-Bench-$i: value-$i")
        fi
    done
    local query=""
    [ "$3" = 1 ] && query='?page=2&per_page=50&sort=created_at&fields=id,total,status'
    curl "${args[@]}" "http://127.0.0.1:$PORT/api/v1/users/[1-$1]/orders$query"
}

# one callgrind run of the gateway serving $5 requests: cg.<key>.<n>
callgrind_run() {   # $1: key $2: config $3: body $4: headers $5: requests $6: query
    local vg
    gateway_conf "$2" "$3"
    valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$1.$5" \
        "$NGINX" -p "$WORK/gw" -c nginx.conf 2>"$WORK/valgrind.$1.$5.log" &
    vg=$!; CUR=$vg
    wait_port
    client "$5" "$4" "$6"
    kill -QUIT "$vg"; wait "$vg" || true; CUR=
}

# the pool probe's log lines for $5 requests, no valgrind: probe.<key>.log
probe_run() {       # $1: key $2: config $3: body $4: headers $5: requests $6: query
    local gw
    gateway_conf "$2" "$3" 1
    : >"$WORK/gw/logs/error.log"
    "$NGINX" -p "$WORK/gw" -c nginx.conf &
    gw=$!; CUR=$gw
    wait_port
    client "$5" "$4" "$6"
    kill -QUIT "$gw"; wait "$gw" || true; CUR=
    grep pool_probe "$WORK/gw/logs/error.log" | tail -n "$5" >"$WORK/probe.$1.log"
}

# --- the runs -------------------------------------------------------------

drain_start
: >"$WORK/manifest.tsv"
DONE=" "
measure() {         # $1: key, then callgrind_run's $2..$4, $6
    [[ "$DONE" == *" $1 "* ]] && return
    callgrind_run "$1" "$2" "$3" "$4" "$N_SMALL" "$5"
    callgrind_run "$1" "$2" "$3" "$4" "$N_LARGE" "$5"
    [ -n "${INSTRUCTIONS_ONLY:-}" ] || probe_run "$1" "$2" "$3" "$4" "$PROBE_N" "$5"
    DONE="$DONE$1 "
}

echo "module: $MODULE ($(stat -c %y "$MODULE" | cut -d. -f1))"
if [ -n "${BEFORE:-}" ]; then
    # under the measured module's file name: the tables find the module's
    # own functions by the name of their object
    mkdir -p "$WORK/before"
    cp "$BEFORE" "$WORK/before/$(basename "$MODULE")"
    echo "before: $BEFORE ($(stat -c %y "$BEFORE" | cut -d. -f1))"
fi
echo "nginx: $("$NGINX" -v 2>&1 | sed 's/.*: //'), $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for v in $VARIANTS; do
    read -r config body headers query < <(variant_config "$v")
    shape="b${body}h${headers}q${query}"
    measure "base-$shape" baseline "$body" "$headers" "$query"
    measure "$config-$shape" "$config" "$body" "$headers" "$query"
    printf '%s\t%s\t%s\t%s\n' "$v" "$(shape_label "$body" "$headers" "$query")" \
        "base-$shape" "$config-$shape" >>"$WORK/manifest.tsv"
    if [ -n "${BEFORE:-}" ]; then
        GW_MODULE=$WORK/before/$(basename "$MODULE")
        measure "before-$config-$shape" "$config" "$body" "$headers" "$query"
        GW_MODULE=$MODULE
        printf '%s\t%s\t%s\t%s\n' "$v (before)" \
            "$(shape_label "$body" "$headers" "$query")" \
            "base-$shape" "before-$config-$shape" >>"$WORK/manifest.tsv"
    fi
done

if [ -n "${INSTRUCTIONS_ONLY:-}" ]; then
    /usr/bin/python3 bench/callgrind_costs.py "$WORK" "$N_SMALL" "$N_LARGE" \
        "$(basename "$MODULE")" "${TOP:-20}" | sed -n '1,/^$/p'
    exit 0
fi
/usr/bin/python3 bench/callgrind_costs.py "$WORK" "$N_SMALL" "$N_LARGE" \
    "$(basename "$MODULE")" "${TOP:-20}"

[ -n "${LOAD:-}" ] || exit 0

# --- under load: emission system calls, throughput, memory ----------------

read -r config body headers query < <(variant_config "${VARIANTS%% *}")
echo
echo "== emission system calls under load (strace -c, 20000 requests, 8 connections; $config)"
gateway_conf "$config" "$body"
strace -f -c -e trace=sendmsg,sendto,connect -o "$WORK/strace.out" \
    "$NGINX" -p "$WORK/gw" -c nginx.conf &
st=$!; CUR=$st
wait_port
wrk -t2 -c8 -d60s -H 'X-Tenant-ID: tenant_001' \
    -s bench/fixed_count.lua "http://127.0.0.1:$PORT/api/v1/users/7/orders" >"$WORK/wrk.out" 2>&1 || true
kill -QUIT "$st"; wait "$st" 2>/dev/null || true; CUR=
reqs=$(sed -n 's/^requests: //p' "$WORK/wrk.out")
sends=$(awk '$NF=="sendmsg" {print $4}' "$WORK/strace.out")
echo "requests:      ${reqs:-?}; sendmsg calls: ${sends:-0}"
echo "requests per emission syscall: $(echo "scale=1; ${reqs:-0} / ${sends:-1}" | bc)"

echo "== throughput and memory (wrk 10 s, 2 threads, 16 connections; same run)"
for mode in baseline "$config"; do
    gateway_conf "$mode" "$body"
    "$NGINX" -p "$WORK/gw" -c nginx.conf &
    gw=$!; CUR=$gw
    wait_port
    wrk -t2 -c16 -d10s -H 'X-Tenant-ID: tenant_001' \
        "http://127.0.0.1:$PORT/api/v1/users/7/orders" >"$WORK/wrk.$mode" 2>&1
    rss=$(awk '/VmRSS/ {print $2}' /proc/$gw/status)
    kill -QUIT "$gw"; wait "$gw" 2>/dev/null || true; CUR=
    rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.$mode")
    echo "$mode: $rps req/s, worker RSS ${rss} kB"
    [ "$mode" = baseline ] && rps_base=$rps || rps_mod=$rps
done
echo "throughput ratio (module/baseline): $(echo "scale=3; $rps_mod / $rps_base" | bc)"
