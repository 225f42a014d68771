-- Retention on ClickHouse releases that have table TTL (19.6 and later):
-- rows older than 400 days are deleted by merges.  On 18.16 use
-- retention.sh instead (it drops whole daily partitions).
ALTER TABLE obs.usage_minute MODIFY TTL minute + INTERVAL 400 DAY;
