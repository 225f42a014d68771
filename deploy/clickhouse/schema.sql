-- Per-tenant usage and cost, written by obs-sidecar (clickhouse.url).
-- Portable from ClickHouse 18.16 (Debian 12) to current releases: no TTL
-- here (18.16 has none; see retention.sh and ttl.sql), no Nullable, no
-- LowCardinality.  One statement per ';'-terminated block, so that the
-- HTTP interface (one statement a request) can take them in order.

CREATE DATABASE IF NOT EXISTS obs;

-- One row per gateway run, interval (a minute), tenant, service and route.
-- The sort key is the row's identity: a batch sent twice (a retry whose
-- answer was lost, a spool replayed after a crash) replaces itself instead
-- of counting twice.  Read it with FINAL, as the views do, until merges
-- have collapsed the copies.  Daily partitions are what retention drops.
CREATE TABLE IF NOT EXISTS obs.usage_minute
(
    minute                 DateTime('UTC'),
    gateway                String,
    run                    String,
    tenant                 String,
    service                String,
    route                  String,
    cost_class             String,
    requests               UInt64,
    errors                 UInt64,
    client_errors          UInt64,
    bytes_in               UInt64,
    bytes_out              UInt64,
    duration_sum           Float64,
    duration_count         UInt64,
    duration_bounds        Array(Float64),
    duration_buckets       Array(UInt64),
    price_per_1k_requests  Float64,
    price_per_gb           Float64
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(minute)
ORDER BY (tenant, service, route, minute, gateway, run);

-- Usage per tenant, service and route per day.
CREATE VIEW IF NOT EXISTS obs.usage_daily AS
SELECT
    toDate(minute)        AS day,
    tenant,
    service,
    route,
    sum(requests)         AS requests,
    sum(errors)           AS errors,
    sum(client_errors)    AS client_errors,
    sum(bytes_in)         AS bytes_in,
    sum(bytes_out)        AS bytes_out,
    sum(duration_sum)     AS duration_seconds,
    sum(duration_count)   AS observations
FROM obs.usage_minute FINAL
GROUP BY day, tenant, service, route;

-- Cost per tenant per day: each row priced by the cost class the sidecar's
-- configuration gave it when it was written (clickhouse.cost), so a price
-- change applies from then on and never rewrites history.  GB = 10^9 bytes
-- of request and response bodies.  (Aliases differ from the columns:
-- ClickHouse would read an alias named like a column inside the sums.)
CREATE VIEW IF NOT EXISTS obs.cost_daily AS
SELECT
    toDate(minute)                                    AS day,
    tenant,
    cost_class,
    sum(requests)                                     AS request_count,
    sum(bytes_in + bytes_out)                         AS body_bytes,
    sum(requests * price_per_1k_requests) / 1000      AS request_cost,
    sum((bytes_in + bytes_out) * price_per_gb) / 1e9  AS transfer_cost,
    request_cost + transfer_cost                      AS cost
FROM obs.usage_minute FINAL
GROUP BY day, tenant, cost_class;
