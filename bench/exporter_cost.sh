#!/usr/bin/env bash
# The sidecar's CPU with both exporters on, against nginx's, under the same
# load (bench/stack.sh): every request logged to "Loki" (native protobuf
# push) and traced over OTLP/HTTP.  Reports sidecar CPU per record / nginx
# CPU per proxied request.  Usage: bench/exporter_cost.sh [seconds]
#   [sidecar flags...]   (e.g. --loki-format json, --exporter-threads 2)
# OTLP_ALL=http (or grpc) bench/exporter_cost.sh: every signal over OTLP
# instead (log records, spans, and metrics pushed every 5 s).
source "$(dirname "$0")/stack.sh"
SECONDS_LOAD=${1:-15}
shift || true

stack_start "$@"
n0=$(cpu $WORKERS); s0=$(cpu $SIDECAR)
load "$SECONDS_LOAD"
sleep 2                     # the last batches leave
n1=$(cpu $WORKERS); s1=$(cpu $SIDECAR)

records=$(metric obs_records_received_total)
lines=$(metric obs_exporter_sent_total 'exporter="loki"')
if [ -n "${OTLP_ALL:-}" ]; then
    lines=$(metric obs_exporter_sent_total 'exporter="otlp_logs"')
    points=$(metric obs_exporter_sent_total 'exporter="otlp_metrics"')
    echo "OTLP/$OTLP_ALL:       $points data points pushed, $(metric obs_exporter_dropped_total 'exporter="otlp_') dropped"
fi
spans=$(metric obs_exporter_sent_total 'exporter="otlp"')
tick=$(getconf CLK_TCK)
nginx_cpu=$(echo "scale=3; ($n1 - $n0) / $tick" | bc)
sidecar_cpu=$(echo "scale=3; ($s1 - $s0) / $tick" | bc)

echo "load:            $REQUESTS requests in ${SECONDS_LOAD}s ($RATE req/s)"
echo "records:         $records received, $lines log lines and $spans spans delivered"
echo "shed:            $(metric obs_exporter_shed_total 'signal="logs"') log lines, $(metric obs_exporter_shed_total 'signal="traces"') records' spans"
echo "module drops:    $(metric obs_records_dropped_total)"
echo "nginx CPU:       ${nginx_cpu}s ($(echo "scale=2; $nginx_cpu * 1000000 / $REQUESTS" | bc) us/request)"
echo "sidecar CPU:     ${sidecar_cpu}s ($(echo "scale=2; $sidecar_cpu * 1000000 / $records" | bc) us/record)"
echo "ratio:           sidecar per record / nginx per request = $(awk -v s="$sidecar_cpu" -v r="$records" -v n="$nginx_cpu" -v q="$REQUESTS" 'BEGIN {printf "%.3f", (s / r) / (n / q)}')"
