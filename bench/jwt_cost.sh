#!/usr/bin/env bash
# What obs_jwt adds to a request, in user-space instructions (callgrind,
# deterministic), against the same nginx in the same run:
#
#   1. per request, nginx answering with $obs_jwt_tenant against the same
#      nginx answering with a constant, the same token sent to both: a
#      token the worker's cache knows (target: at most 1,000 added) and,
#      with obs_jwt_cache off, one verified every time; for scale, what
#      reading the tenant from a client header ($http_x_tenant_id) adds;
#   2. the floor under an uncached token: OpenSSL's signature check alone
#      on the same token and key, and obs_jwt_verify() as a whole
#      (bench/jwt_verify_floor.c).
#
# Tokens and keys come from t/jwt/fixtures.py (PyJWT).  Per-request figures
# are the difference between runs of two request counts, which cancels
# start-up and exit.  Usage: bench/jwt_cost.sh [requests]
set -euo pipefail
cd "$(dirname "$0")/.."

N_SMALL=${N_SMALL:-100}
N_LARGE=${1:-600}
NGINX=${NGINX_BIN:-/usr/sbin/nginx}
MODULE=${MODULE:-$PWD/build/ngx_http_obs_module.so}
FLOOR=$PWD/build/bench_jwt_floor
WORK=$(mktemp -d /tmp/obs-bench-jwt-XXXXXX)
PORT=18490
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

[ -f "$MODULE" ] || make module >/dev/null
make "$FLOOR" >/dev/null

/usr/bin/python3 t/jwt/fixtures.py "$WORK/keys" >"$WORK/tokens.json"
token() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$WORK/tokens.json" "$1"; }

# one key per file, for the floor
/usr/bin/python3 - "$WORK/keys" <<'EOF'
import json, sys
d = sys.argv[1]
keys = json.load(open(d + "/jwks.json"))["keys"]
json.dump({"keys": [k for k in keys if k["kty"] == "oct"]},
          open(d + "/hs.json", "w"))
EOF

mkdir -p "$WORK/gw/logs"

gateway_conf() {    # $1: constant|header|cached|uncached
    local tenant='acme' jwt="" cache=""
    case $1 in
        header) tenant='$http_x_tenant_id' ;;
        cached) tenant='$obs_jwt_tenant'; jwt="obs_jwt on;" ;;
        uncached) tenant='$obs_jwt_tenant'; jwt="obs_jwt on;"
                  cache="obs_jwt_cache off;" ;;
    esac
    cat >"$WORK/gw/nginx.conf" <<EOC
load_module $MODULE;
daemon off; master_process off; worker_processes 1;
error_log $WORK/gw/logs/error.log warn; pid $WORK/gw/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 100000;
    obs_jwt_keys $WORK/keys/jwks.json;
    obs_jwt_issuer https://issuer.example;
    obs_jwt_audience api;
    $cache
    server {
        listen 127.0.0.1:$PORT;
        location /api/ {
            $jwt
            return 200 "$tenant\n";
        }
    }
}
EOC
}

wait_port() {
    for _ in $(seq 300); do
        curl -s -o /dev/null "http://127.0.0.1:$PORT/api/ping" && return; sleep 0.1
    done
    echo "gateway did not start" >&2; exit 1
}

# QUIT, again every 5 s: under valgrind a signal has been seen to go unseen
stop() {
    local i
    kill -QUIT "$1"
    for i in $(seq 300); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
        [ $((i % 50)) -eq 0 ] && kill -QUIT "$1" 2>/dev/null
    done
    wait "$1" || true
}

# total user-space instructions of one gateway run serving $3 requests
callgrind_total() { # $1: mode  $2: token  $3: requests
    gateway_conf "$1"
    valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$1.$3" \
        "$NGINX" -p "$WORK/gw" -c nginx.conf 2>"$WORK/valgrind.log" &
    local vg=$!
    wait_port
    curl -s -o "$WORK/body" -H "Authorization: Bearer $2" \
        -H 'X-Tenant-ID: acme' "http://127.0.0.1:$PORT/api/v1/users/[1-$3]"
    stop "$vg"
    sed -n 's/^summary: //p; s/^totals: //p' "$WORK/cg.$1.$3" | head -1
}

# per request, the inclusive instructions of $2 in the runs of mode $1:
# everything the module does for a request happens below its variable
# handler, so this is free of the whole request's run-to-run noise (a
# MODULE built elsewhere is named with its object: "fn [obj]")
fn_per_request() {  # $1: mode  $2: function
    local a b
    a=$(callgrind_annotate --inclusive=yes "$WORK/cg.$1.$N_SMALL" 2>/dev/null \
        | awk -v f=":$2( \\[|\$)" '$0 ~ f && !/\?\?\?/ {gsub(",", "", $1); print $1; exit}')
    b=$(callgrind_annotate --inclusive=yes "$WORK/cg.$1.$N_LARGE" 2>/dev/null \
        | awk -v f=":$2( \\[|\$)" '$0 ~ f && !/\?\?\?/ {gsub(",", "", $1); print $1; exit}')
    echo $(( (${b:-0} - ${a:-0}) / (N_LARGE - N_SMALL) ))
}

per_request() {     # $1: mode  $2: token
    local small large
    small=$(callgrind_total "$1" "$2" "$N_SMALL")
    large=$(callgrind_total "$1" "$2" "$N_LARGE")
    echo $(( (large - small) / (N_LARGE - N_SMALL) ))
}

# instructions of one check by bench_jwt_floor
floor() {           # $1: openssl|obs  $2: key file  $3: token
    local a b
    valgrind --tool=callgrind --callgrind-out-file="$WORK/f.out" \
        "$FLOOR" "$1" "$2" "$3" 10 2>/dev/null
    a=$(sed -n 's/^summary: //p; s/^totals: //p' "$WORK/f.out" | head -1)
    valgrind --tool=callgrind --callgrind-out-file="$WORK/f.out" \
        "$FLOOR" "$1" "$2" "$3" 110 2>/dev/null
    b=$(sed -n 's/^summary: //p; s/^totals: //p' "$WORK/f.out" | head -1)
    echo $(( (b - a) / 100 ))
}

echo "== instructions per request (callgrind, $N_SMALL vs $N_LARGE requests)"
printf "%-6s %9s %8s %8s %8s %10s %10s %10s %8s\n" alg constant header+ \
    cached+ handler uncached+ openssl obs_verify ratio
for alg in RS256 ES256 EdDSA HS256; do
    tok=$(token "$alg")
    case $alg in
        RS256) key=$WORK/keys/rsa1.pem ;;
        ES256) key=$WORK/keys/ec256.pem ;;
        EdDSA) key=$WORK/keys/ed.pem ;;
        HS256) key=$WORK/keys/hs.json ;;
    esac
    rm -f "$WORK"/cg.*
    base=$(per_request constant "$tok")
    header=$(( $(per_request header "$tok") - base ))
    cached=$(( $(per_request cached "$tok") - base ))
    handler=$(fn_per_request cached ngx_http_obs_jwt_variable)
    uncached=$(( $(per_request uncached "$tok") - base ))
    ossl=$(floor openssl "$key" "$tok")
    obs=$(floor obs "$key" "$tok")
    printf "%-6s %9d %8d %8d %8d %10d %10d %10d %8s\n" "$alg" "$base" \
        "$header" "$cached" "$handler" "$uncached" "$ossl" "$obs" \
        "$(echo "scale=3; $uncached / $obs" | bc)"
done
echo "constant: a request answered with a constant, the token sent along;"
echo "header+ / cached+ / uncached+: what answering with \$http_x_tenant_id /"
echo "with \$obs_jwt_tenant for a token the cache knows / verified every time"
echo "adds to it (whole-request figures move by a few hundred between runs);
handler: the inclusive instructions of the \$obs_jwt_tenant handler for a
cached token (all the module does for it); openssl: EVP_DigestVerify alone (HMAC for HS256);"
echo "obs_verify: obs_jwt_verify() whole (base64url, jansson, key choice,"
echo "signature, claims); ratio: uncached+ / obs_verify."
