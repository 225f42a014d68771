#!/usr/bin/env bash
# The pushers' cost as ratios to a text scrape of the same store, in the same
# run, on one core.  Usage: bench/pushers.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
make -s "$PWD/build/bench_pushers" >/dev/null
exec taskset -c 0 build/bench_pushers "${1:-5}"
