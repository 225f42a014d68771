#!/usr/bin/env bash
# The least the exporters' required formats cost per record on one core
# (see bench/exporter_floor.c).  Usage: bench/exporter_floor.sh [records]
set -euo pipefail
cd "$(dirname "$0")/.."
make -s "$PWD/build/bench_exporter_floor" >/dev/null
exec taskset -c 0 build/bench_exporter_floor "${1:-200000}"
