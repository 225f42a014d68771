#!/usr/bin/env bash
# Alertmanager: the config is valid and each severity reaches the right
# receivers (amtool exits non-zero when the routed receivers differ).
set -euo pipefail
cd "$(dirname "$0")/.."

amtool check-config alertmanager.yml

passed=0
check() {   # expected receivers, labels...
    local want=$1; shift
    amtool config routes test --config.file=alertmanager.yml \
        --verify.receivers="$want" "$@" >/dev/null 2>&1 \
        || { echo "FAIL: $* should reach $want, got: $(amtool config routes \
             test --config.file=alertmanager.yml "$@" 2>/dev/null)"; exit 1; }
    passed=$((passed + 1))
}

check pagerduty,slack-critical severity=critical alertname=HighErrorRate service=backend-api
check slack-warning severity=warning alertname=SLOAvailabilityBurnRatePerTenant service=backend-api tenant=acme slo=availability
check blackhole severity=info alertname=SLOLatencyBurnRatePerTenant service=backend-api tenant=acme slo=latency
check pagerduty,slack-critical severity=critical alertname=SLOAvailabilityBurnRate service=backend-api slo=availability
check pagerduty,slack-critical severity=critical alertname=ObsRecordsNotReceived service=obs-sidecar gateway=gw-1
check slack-warning severity=warning alertname=HighCPUUsage instance=n:9100
check slack-warning severity=warning alertname=ObsRecordsDropped service=obs-sidecar
check blackhole severity=info alertname=ObsSeriesNearCap
check blackhole alertname=Unlabelled

echo "routes: $passed passed, 0 failed"
