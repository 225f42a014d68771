#!/usr/bin/env bash
# Drops the daily partitions of obs.usage_minute older than DAYS days, over
# ClickHouse's HTTP interface.  For ClickHouse 18.16 (Debian 12), which has
# no table TTL; on current releases ttl.sql does the same by itself.
# Run it daily (cron, a Kubernetes CronJob):
#   retention.sh [URL] [DAYS]    defaults: http://127.0.0.1:8123 400
# Credentials, if any: CLICKHOUSE_USER and CLICKHOUSE_PASSWORD_FILE.
set -euo pipefail

URL="${1:-${CLICKHOUSE_URL:-http://127.0.0.1:8123}}"
DAYS="${2:-${RETENTION_DAYS:-400}}"
AUTH=()
if [ -n "${CLICKHOUSE_USER:-}" ]; then
    AUTH=(-H "X-ClickHouse-User: $CLICKHOUSE_USER"
          -H "X-ClickHouse-Key: $(cat "${CLICKHOUSE_PASSWORD_FILE:?}")")
fi

case "$DAYS" in
    ''|*[!0-9]*) echo "retention.sh: DAYS must be a number" >&2; exit 2 ;;
esac

query() {
    curl -fsS "${AUTH[@]}" --data-binary "$1" "$URL/"
}

cutoff=$(date -u -d "-$DAYS days" +%Y%m%d)
query "SELECT DISTINCT partition FROM system.parts
       WHERE database = 'obs' AND table = 'usage_minute' AND active
         AND toUInt32(partition) < $cutoff ORDER BY partition" |
while read -r partition; do
    echo "dropping obs.usage_minute partition $partition"
    query "ALTER TABLE obs.usage_minute DROP PARTITION $partition"
done
