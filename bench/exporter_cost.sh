#!/usr/bin/env bash
# The sidecar's CPU per record against nginx's CPU per proxied request,
# under the same wrk load at full speed (bench/stack.sh), with every request
# logged and traced (obs_trace_sample 1), for each way of exporting:
#
#   loki        log lines to Loki (native protobuf push), spans over
#               OTLP/HTTP
#   otlp-http   every signal over OTLP/HTTP: log records, spans, and the
#               metrics pushed every 5 s (OTEL_METRIC_EXPORT_INTERVAL)
#   otlp-grpc   the same over OTLP/gRPC
#
# Each run checks what the ratio is worth: the metrics exact (the sum of
# http_server_requests_total equals the requests nginx served, from its
# stub_status), no record dropped by the module or lost between it and the
# sidecar, every log line and span delivered (nothing shed or dropped).
# Variants are interleaved REPEAT times so that a change in the machine's
# load falls on all of them; the summary gives the ratio's min and median.
#
# Usage: bench/exporter_cost.sh [seconds] [sidecar flags...]
#   (e.g. --loki-format json, --exporter-threads 2)
# VARIANTS (default "loki otlp-http otlp-grpc"), REPEAT (default 1),
# SIDECAR_BIN (default build/obs-sidecar: another build, for before/after).
# Target (issue 24): ratio <= 0.1, exact, nothing shed.
source "$(dirname "$0")/stack.sh"
SECONDS_LOAD=${1:-15}
shift || true
VARIANTS=${VARIANTS:-loki otlp-http otlp-grpc}
REPEAT=${REPEAT:-1}
RESULTS=$WORK/results

run() {             # $1: variant, then sidecar flags
    local variant=$1 n0 s0 n1 s1 served records counted drops lost
    local points tick nginx_cpu sidecar_cpu ratio
    local exact=yes lexp=loki
    shift
    case $variant in
        loki)      unset OTLP_ALL ;;
        otlp-http) OTLP_ALL=http; lexp=otlp_logs ;;
        otlp-grpc) OTLP_ALL=grpc; lexp=otlp_logs ;;
        *) echo "unknown variant $variant" >&2; exit 2 ;;
    esac
    stack_start "$@"
    n0=$(cpu $WORKERS); s0=$(cpu $SIDECAR)
    load "$SECONDS_LOAD"
    sleep 2                 # the last batches leave
    n1=$(cpu $WORKERS); s1=$(cpu $SIDECAR)

    served=$(served)
    records=$(metric obs_records_received_total)
    counted=$(metric http_server_requests_total)
    drops=$(metric obs_records_dropped_total)
    lost=$(metric obs_datagrams_lost_total)
    exporter_counts "$lexp"
    points=$(metric obs_exporter_sent_total 'exporter="otlp_metrics"')
    stack_stop

    tick=$(getconf CLK_TCK)
    nginx_cpu=$(echo "scale=3; ($n1 - $n0) / $tick" | bc)
    sidecar_cpu=$(echo "scale=3; ($s1 - $s0) / $tick" | bc)
    ratio=$(awk -v s="$sidecar_cpu" -v r="$records" -v n="$nginx_cpu" -v q="$served" \
            'BEGIN {printf "%.3f", (s / r) / (n / q)}')
    [ "$counted" = "$served" ] && [ "$records" = "$served" ] || exact=no

    echo "== $variant: $served requests served in ${SECONDS_LOAD}s ($RATE req/s by wrk), $records records received"
    echo "   metrics exact:  $exact (http_server_requests_total $counted, served $served)"
    echo "   module drops:   $drops; datagrams lost: $lost"
    echo "   log lines:      $LINES delivered, $SHED_L shed, $DROP_L dropped"
    echo "   spans:          $SPANS delivered, $SHED_T shed, $DROP_T dropped"
    [ "$variant" = loki ] || echo "   metric points:  $points pushed over OTLP"
    echo "   nginx CPU:      ${nginx_cpu}s ($(echo "scale=2; $nginx_cpu * 1000000 / $served" | bc) us/request)"
    echo "   sidecar CPU:    ${sidecar_cpu}s ($(echo "scale=2; $sidecar_cpu * 1000000 / $records" | bc) us/record)"
    echo "   ratio:          $ratio (sidecar per record / nginx per request)"
    echo "$variant $ratio $exact $((drops + lost)) $((SHED_L + SHED_T + DROP_L + DROP_T)) $RATE" >>"$RESULTS"
}

echo "exporter cost: $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg), ${SECONDS_LOAD}s a run, REPEAT=$REPEAT"
for _ in $(seq "$REPEAT"); do
    for v in $VARIANTS; do
        run "$v" "$@"
    done
done

echo
echo "== summary (target: ratio <= 0.1, metrics exact, nothing shed or dropped)"
printf '%-10s %6s %6s %6s  %-6s %6s %9s  %s\n' variant runs min median exact drops shed+drop "req/s"
for v in $VARIANTS; do
    awk -v v="$v" '$1 == v' "$RESULTS" | sort -k2,2n | awk -v v="$v" '
        { r[NR] = $2; ex = ex ($3 == "yes" ? "" : "no "); d += $4; s += $5; q = q $6 " " }
        END {
            med = NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2
            printf "%-10s %6d %6.3f %6.3f  %-6s %6d %9d  %s %s\n", v, NR, r[1], med,
                   ex == "" ? "yes" : "NO", d, s, q,
                   (r[1] <= 0.1 && ex == "" && d + s == 0) ? "met" : "NOT MET"
        }'
done
