#!/usr/bin/env bash
# The sidecar's scaling table (bench/scale.c, a process per row, pinned to
# one core): per store size, resident memory, a scrape in each format as
# /metrics makes it (gzipped as it renders, as Prometheus asks; and plain), a
# remote-write cycle (snapshot + WriteRequests + snappy), an OTLP metrics
# push; then the growth per series between consecutive sizes.  Times are
# CPU milliseconds of the bench's thread, min (median) of ROUNDS runs: on a
# shared machine the minimum is the figure, the median shows the noise.
#
# Usage: bench/scale.sh [ROWS...]   a row is SERIES or SERIES:TENANTS
#   default: 1000 10000 100000 1000000 100000:10000 1000000:10000
#   (TENANTS defaults to 100)
# ROUNDS (default 5; 3 at 1M series), RECORDS (4 a route and tenant).
# CALLGRIND=1: instructions per series of each phase instead (rows up to
# CALLGRIND_MAX series, default 100000): deterministic, for before/after.
# Targets (issue 24): 100k series scraped in <= 100 ms, held in <= 100 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s "$PWD/build/bench_scale" >/dev/null
ROWS=("$@")
[ ${#ROWS[@]} -gt 0 ] || ROWS=(1000 10000 100000 1000000 100000:10000 1000000:10000)
RECORDS=${RECORDS:-4}
OUT=$(mktemp /tmp/obs-scale-XXXXXX)
trap 'rm -rf "$OUT" "$OUT".cg*' EXIT

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }
mb() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
ms() { awk -v a="$(field "$1" "$2_min")" -v b="$(field "$1" "$2_med")" 'BEGIN {printf "%.1f (%.1f)", a, b}'; }

echo "bench/scale.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

if [ -n "${CALLGRIND:-}" ]; then
    echo
    echo "instructions per series (callgrind, each phase's first run; fill: per record; plain: a scrape without gzip, gzip: one with, render included)"
    printf '| %-16s | %10s | %12s | %12s | %12s | %12s | %12s | %12s | %12s | %12s | %12s |\n' \
        "series / tenants" "fill/rec" "plain text" "gzip text" "plain OM" "gzip OM" \
        "plain pb" "gzip pb" "snapshot" "remote-wr." "OTLP push"
    printf '|%s|\n' "------------------|------------|--------------|--------------|--------------|--------------|--------------|--------------|--------------|--------------|--------------"
    for row in "${ROWS[@]}"; do
        series=${row%%:*}; tenants=100
        [[ $row == *:* ]] && tenants=${row#*:}
        [ "$series" -le "${CALLGRIND_MAX:-100000}" ] || continue
        line=$(valgrind --tool=callgrind --collect-atstart=no \
                   --callgrind-out-file="$OUT.cg.%p" \
                   build/bench_scale "$series" "$tenants" 1 "$RECORDS" 2>/dev/null)
        n=$(field "$line" series); recs=$(field "$line" records)
        declare -A ir=()
        for f in "$OUT".cg.*; do
            phase=$(sed -n 's/^desc: Trigger: Client Request: //p' "$f")
            [ -n "$phase" ] && ir[$phase]=$(sed -n 's/^totals: //p' "$f")
        done
        per() { awk -v i="${ir[$1]:-0}" -v n="$2" 'BEGIN {printf "%.0f", i / n}'; }
        printf '| %-16s | %10s | %12s | %12s | %12s | %12s | %12s | %12s | %12s | %12s | %12s |\n' \
            "$n / $tenants" "$(per fill "$recs")" "$(per render_text "$n")" "$(per gzip_text "$n")" \
            "$(per render_openmetrics "$n")" "$(per gzip_openmetrics "$n")" \
            "$(per render_protobuf "$n")" "$(per gzip_protobuf "$n")" \
            "$(per snapshot "$n")" "$(per remote_write "$n")" "$(per otlp_push "$n")"
        rm -f "$OUT".cg.*
        unset ir
    done
    exit 0
fi

echo
echo "CPU ms: min (median) of ROUNDS runs; MB = MiB; a format's cell: a scrape with gzip (as Prometheus asks, render included) / without, body MB plain/gzip"
echo "RSS: the store alone / with a gzipped text scrape held / with the pushers' state warm too"
printf '| %-16s | %9s | %-22s | %-25s | %-25s | %-25s | %-17s | %-13s | %-13s |\n' \
    "series / tenants" "samples" "RSS store/scrape/all MB" "text: gzip / plain" \
    "OpenMetrics: gzip / plain" "protobuf: gzip / plain" "remote-write cycle" \
    "of it snapshot" "OTLP push"
printf '|%s|\n' "------------------|-----------|------------------------|---------------------------|----------------------------|---------------------------|-------------------|----------------|---------------"
PREV=
for row in "${ROWS[@]}"; do
    series=${row%%:*}; tenants=100
    [[ $row == *:* ]] && tenants=${row#*:}
    rounds=${ROUNDS:-$([ "$series" -ge 1000000 ] && echo 3 || echo 5)}
    line=$(taskset -c "${CPU:-0}" build/bench_scale "$series" "$tenants" "$rounds" "$RECORDS")
    echo "$row $line" >>"$OUT"
    cell() {        # a format's scrape: "gzip min (med) / plain min ms, sizes"
        awk -v a="$(field "$line" "gzip_$1_min")" -v b="$(field "$line" "gzip_$1_med")" \
            -v c="$(field "$line" "render_$1_min")" \
            -v r="$(field "$line" "bytes_$1")" -v z="$(field "$line" "gz_bytes_$1")" \
            'BEGIN {printf "%.1f (%.0f) / %.1f, %.1f/%.1f MB", a, b, c, r / 1048576, z / 1048576}'
    }
    printf '| %-16s | %9s | %-22s | %-25s | %-25s | %-25s | %-17s | %-13s | %-13s |\n' \
        "$(field "$line" series) / $tenants" "$(field "$line" samples)" \
        "$(mb "$(field "$line" rss_store)") / $(mb "$(field "$line" rss_scrape)") / $(mb "$(field "$line" rss_all)")" \
        "$(cell text)" "$(cell openmetrics)" "$(cell protobuf)" \
        "$(ms "$line" remote_write), $(mb "$(field "$line" rw_bytes)") MB" \
        "$(ms "$line" snapshot)" \
        "$(ms "$line" otlp), $(mb "$(field "$line" otlp_bytes)") MB"
done

echo
echo "growth per series between consecutive rows of the same tenants (min times; ns and bytes per store series)"
printf '| %-22s | %11s | %11s | %15s | %15s | %15s | %13s | %9s | %10s |\n' \
    "from -> to" "RSS store B" "RSS all B" "text gzip ns" "OM gzip ns" "protobuf gz ns" "remote-write" "OTLP ns" "fill ns/rec"
printf '|%s|\n' "------------------------|-------------|-------------|-----------------|-----------------|-----------------|---------------|-----------|------------"
awk '
    function v(line, k,   m) { return match(line, " " k "=[^ ]*") ? substr(line, RSTART + length(k) + 2, RLENGTH - length(k) - 2) + 0 : 0 }
    function t(line, f) { return v(line, "gzip_" f "_min") }
    {
        split($1, rt, ":"); tn = rt[2] == "" ? 100 : rt[2]
        if (tn in last) {
            p = last[tn]; d = v($0, "series") - v(p, "series")
            printf "| %-22s | %11.0f | %11.0f | %15.0f | %15.0f | %15.0f | %13.0f | %9.0f | %10.0f |\n",
                v(p, "series") " -> " v($0, "series") " / " tn,
                (v($0, "rss_store") - v(p, "rss_store")) / d, (v($0, "rss_all") - v(p, "rss_all")) / d,
                (t($0, "text") - t(p, "text")) * 1e6 / d, (t($0, "openmetrics") - t(p, "openmetrics")) * 1e6 / d,
                (t($0, "protobuf") - t(p, "protobuf")) * 1e6 / d,
                (v($0, "remote_write_min") - v(p, "remote_write_min")) * 1e6 / d,
                (v($0, "otlp_min") - v(p, "otlp_min")) * 1e6 / d, v($0, "fill_ns_per_record")
        }
        last[tn] = $0
    }' "$OUT"

echo
awk '
    function v(line, k) { return match(line, " " k "=[^ ]*") ? substr(line, RSTART + length(k) + 2, RLENGTH - length(k) - 2) + 0 : 0 }
    $1 == "100000" {
        for (f = 1; f <= 3; f++) {
            split("text openmetrics protobuf", n, " ")
            r = v($0, "render_" n[f] "_min"); g = v($0, "gzip_" n[f] "_min")
            printf "target: 100k series scraped in <= 100 ms, %-11s with gzip %.0f ms, without %.0f ms: %s\n",
                n[f] ":", g, r, g <= 100 && r <= 100 ? "met" : (g <= 100 ? "met with gzip only" : "NOT MET")
        }
        m = v($0, "rss_all") / 1048576; s = v($0, "rss_store") / 1048576
        c = v($0, "rss_scrape") / 1048576
        printf "target: 100k series held in <= 100 MB: store %.1f MiB, with a gzipped scrape %.1f MiB, with the pushers warm too %.1f MiB (peak %.1f MiB): %s\n",
            s, c, m, v($0, "rss_peak") / 1048576, m <= 100 ? "met" : (c <= 100 ? "met while scraped (pushers off)" : (s <= 100 ? "met by the store alone" : "NOT MET"))
    }' "$OUT"
