#!/usr/bin/env bash
# Zero loss at full speed (bench/stack.sh): wrk through nginx + module as
# fast as this machine goes, first with every request logged and traced to
# receivers that cost almost nothing, then metrics only (--no-logs
# --no-traces).  Checks, for each run:
#   - the sum of http_server_requests_total equals the requests nginx served
#     (its access log; wrk's own count is printed beside it);
#   - the module dropped no record;
#   - exporters: every log line and span is either delivered (2xx) or
#     counted shed/dropped, exactly; the receivers logged as many bodies as
#     the sidecar counted successful pushes.
# Usage: bench/zero_loss.sh [seconds]  (default 60)
GW_ACCESS_LOG=1
source "$(dirname "$0")/stack.sh"
SECONDS_LOAD=${1:-60}
FAILED=0

check() {   # what, got, want
    if [ "$2" = "$3" ]; then
        echo "  ok    $1: $2"
    else
        echo "  FAIL  $1: $2, want $3"; FAILED=1
    fi
}

run() {     # title, sidecar flags...
    local title=$1 served counted drops
    shift
    echo "== $title"
    stack_start "$@"
    load "$SECONDS_LOAD"
    sleep 3                 # last batches sealed and sent
    "$NGINX" -p "$WORK/gw" -c nginx.conf -s reopen; sleep 0.5
    served=$(wc -l <"$WORK/gw/logs/access.log")
    counted=$(metric http_server_requests_total)
    drops=$(metric obs_records_dropped_total)
    echo "  load: wrk completed $REQUESTS requests in ${SECONDS_LOAD}s ($RATE req/s); nginx served $served"
    check "sum of http_server_requests_total = requests nginx served" "$counted" "$served"
    check "records the module dropped" "$drops" 0
    if [ "$title" = exporters ]; then
        exporter_counts loki
        echo "  log lines: $LINES delivered, $SHED_L shed, $DROP_L dropped; spans: $SPANS delivered, $SHED_T shed, $DROP_T dropped"
        check "log lines delivered + shed + dropped = records" $((LINES + SHED_L + DROP_L)) "$counted"
        check "spans delivered + shed + dropped = records (one span each)" $((SPANS + SHED_T + DROP_T)) "$counted"
        check "Loki bodies the receiver logged = successful pushes" \
            "$(grep -c '^/loki/api/v1/push 204' "$WORK/up/logs/bodies.log")" \
            "$(metric obs_exporter_requests_total 'exporter="loki",result="success"')"
        check "OTLP bodies the receiver logged = successful exports" \
            "$(grep -c '^/v1/traces 200' "$WORK/up/logs/bodies.log")" \
            "$(metric obs_exporter_requests_total 'exporter="otlp",result="success"')"
    fi
    stack_stop
    rm -f "$WORK"/gw/logs/* "$WORK"/up/logs/*
}

run exporters
run metrics-only --no-logs --no-traces
exit $FAILED
