#!/usr/bin/env bash
# obs-sidecar: records ingested per second on one core, scrape time at 10k
# and 100k series, peak RSS at 100k series.  Usage: bench/sidecar.sh [records]
set -euo pipefail
cd "$(dirname "$0")/.."
make -s "$PWD/build/bench_sidecar" >/dev/null
exec taskset -c 0 build/bench_sidecar "${1:-5000000}"
