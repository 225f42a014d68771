#!/usr/bin/python3
"""The memory obs-sidecar needs at most with a configuration, to size the
container's limit by (deploy/k8s/gateway.yaml).

    deploy/k8s/sidecar_memory.py [sidecar.json]     # the breakdown, MiB

The bound adds up, for every receiver the configuration names (each one
that a URL in the environment may turn on), what its queues may hold while
the receiver is down, plus the parts that grow with the number of series,
each at its measured peak, as if all peaks came at once:

  base                  the process: libraries, threads, TLS contexts
  ingest arena          8 MiB that ingest decodes datagrams in
  series (store+scrape) the series store at max_series, and a /metrics
                        render of all of it
  hand-off ring         exporter_queue_datagrams x 64 KiB
  exporter threads      per thread: a decoded datagram the threads share
                        (an 8 MiB arena, a byte per record: 64 KiB), and
                        the batches it is building (loki: batch_bytes
                        each, one per tenant with tenant_header
                        per_tenant, at most 64;
                        otlp: batch_spans spans of up to 4 KiB), twice
                        (the batch and its encoded body)
  loki, otlp            2 x queue_bytes (sealed batches handed to the
                        delivery thread, and its memory queue: each is
                        bounded by queue_bytes; past it they wait, or go to
                        the spool on disk) + one batch in flight
  remote_write          queue_bytes + a snapshot of every sample and its
                        encoding, per series
  clickhouse            its bound (spool_bytes with a spool: the batches
                        are kept in memory too; queue_bytes without) + the
                        previous counter values and a collection, per series
  audit                 audit.queue_bytes (events waiting while the file
                        cannot be written) and, with loki, its stream:
                        2 x loki.queue_bytes + a batch in flight, and the
                        batch it is building with its body

The per-series figures were measured with the sidecar of this repository
(2026-12, on the 2-core build machine: t/integration/test_sidecar_memory.py
repeats the measurement against this bound), each as the peak RSS a part
adds to a sidecar holding 100k series: store and a text scrape 98 MiB
(the README's benchmark: 101 MiB peak at 100k series), a remote-write
snapshot and its encoding 116 MiB, a ClickHouse usage collection 184 MiB.
Settings missing from the file take the sidecar's defaults, read from
`obs-sidecar --help=markdown` (the binary must be built)."""

import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SIDECAR = os.path.join(ROOT, "build", "obs-sidecar")

MiB = 1024 * 1024
KiB = 1024

BASE = 16 * MiB
ARENA = 8 * MiB                 # what ingest decodes a datagram in
VIEW = ARENA + 64 * KiB         # a decoded datagram of the exporter threads
RING_SLOT = 64 * KiB            # the largest datagram ingest takes
SPAN_BYTES = 4 * KiB            # a span with long URL and user agent
MAX_LOKI_BATCHES = 64           # open per-tenant batches of a thread
# measured peak RSS added per series (see above)
PER_SERIES = {
    "series (store + scrape)": 1.0 * KiB,
    "remote_write": 1.2 * KiB,
    "clickhouse": 1.9 * KiB,
}
SINKS = ("loki", "otlp", "remote_write", "clickhouse")


def defaults(binary=SIDECAR):
    """{config key: default} from the sidecar's own table of settings."""
    out = subprocess.run([binary, "--help=markdown"], capture_output=True,
                         text=True, check=True,
                         env={"PATH": os.environ.get("PATH", "")}).stdout
    table = {}
    for m in re.finditer(r"^\| `([\w.]+)` \|[^|]*\|[^|]*\|[^|]*\| `?([^|`]*?)`? \|",
                         out, re.M):
        table[m.group(1)] = m.group(2).strip()
    return table


def setting(cfg, table, key):
    """A number from the configuration, else the sidecar's default."""
    node = cfg
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None:
        node = table[key]
    return float(node)


def bound(cfg, table):
    """[(part, bytes)] of the most the sidecar may hold with cfg."""
    def get(key):
        return setting(cfg, table, key)

    series = get("max_series")
    threads = get("exporter_threads")
    sinks = [s for s in SINKS if s in cfg]
    parts = [("base", BASE), ("ingest arena", ARENA),
             ("series (store + scrape)",
              series * PER_SERIES["series (store + scrape)"])]

    exporting = [s for s in ("loki", "otlp") if s in sinks]
    if exporting:
        parts.append(("hand-off ring",
                      get("exporter_queue_datagrams") * RING_SLOT))
        per_thread = VIEW
        if "loki" in exporting:
            batches = (MAX_LOKI_BATCHES if cfg["loki"].get("tenant_header")
                       == "per_tenant" else 1)
            per_thread += 2 * batches * get("loki.batch_bytes")
        if "otlp" in exporting:
            per_thread += 2 * get("otlp.batch_spans") * SPAN_BYTES
        parts.append(("exporter threads", threads * per_thread))
    for s in exporting:
        in_flight = get("loki.batch_bytes") if s == "loki" else \
            get("otlp.batch_spans") * SPAN_BYTES
        parts.append((s, 2 * get(s + ".queue_bytes") + in_flight))
    if "remote_write" in sinks:
        parts.append(("remote_write", get("remote_write.queue_bytes")
                      + series * PER_SERIES["remote_write"]))
    if "clickhouse" in sinks:
        spool = cfg["clickhouse"].get("spool_dir")
        held = get("clickhouse.spool_bytes" if spool
                   else "clickhouse.queue_bytes")
        parts.append(("clickhouse", held
                      + series * PER_SERIES["clickhouse"]))
    if "audit" in cfg:
        held = get("audit.queue_bytes")
        if "loki" in sinks and cfg["audit"].get("loki", True):
            held += 2 * get("loki.queue_bytes") + 3 * get("loki.batch_bytes")
        parts.append(("audit", held))
    return parts


def limit_bytes(quantity):
    """Bytes of a Kubernetes memory quantity (Mi, Gi, M, G, plain)."""
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|K|M|G)?", quantity)
    unit = {None: 1, "Ki": KiB, "Mi": MiB, "Gi": 1024 * MiB, "K": 1000,
            "M": 1000 ** 2, "G": 1000 ** 3}[m.group(2)]
    return int(m.group(1)) * unit


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        HERE, "sidecar.json")
    with open(path) as f:
        cfg = json.load(f)
    parts = bound(cfg, defaults())
    for name, n in parts:
        print("%-26s %7.1f MiB" % (name, n / MiB))
    print("%-26s %7.1f MiB" % ("bound", sum(n for _, n in parts) / MiB))


if __name__ == "__main__":
    main()
