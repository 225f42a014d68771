#!/usr/bin/python3
"""A test receiver for the module's records.

Binds a unix datagram socket, decodes every datagram as obs.v1.Batch with
Google's Python protobuf runtime (generated from record.proto by protoc, so
independent of the module's protobuf-c encoder), and serves what arrived
over HTTP so that Test::Nginx blocks can fetch it through nginx:

  GET /records?min=N&wait=S&FIELD=VALUE...
                              records whose fields have those values, as
                              JSON lines, waiting for N of them up to S s;
                              then forgets all
  GET /count?path=P&wait=S    after S seconds, how many records have path P
  GET /headers?wait=S         after S seconds, batch headers as JSON lines,
                              then forgets them
  GET /active?wait=S&prefix=P after S seconds, the newest snapshot of
                              requests in flight as one JSON line: its keys,
                              how many routes start with P, the overflow
                              count and each route's count; then forgets
                              the headers
  GET /stats?wait=S&expect=N  records received since the last reset, the
                              drops the headers reported and their sum,
                              once N are accounted for (or after S seconds)
  GET /pause, GET /resume     remove / re-create the socket (sidecar absent)
  GET /reset                  forget everything

Usage: obs_sink.py SOCKET_PATH HTTP_PORT PROTO_DIR
"""

import base64
import http.server
import importlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ID_FIELDS = {"traceId", "spanId", "parentSpanId", "configSha256"}


def load_schema(proto_dir):
    out = tempfile.mkdtemp(prefix="obs-sink-")
    subprocess.check_call(["protoc", "-I", proto_dir, "--python_out=" + out,
                           os.path.join(proto_dir, "obs/v1/record.proto")])
    sys.path.insert(0, out)
    return importlib.import_module("obs.v1.record_pb2")


def to_plain(value, key=""):
    """Protobuf JSON -> plain JSON: bytes as text, ids as lowercase hex."""
    if isinstance(value, dict):
        return {k: to_plain(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [to_plain(v, key) for v in value]
    if isinstance(value, str) and key in ID_FIELDS | BYTES_FIELDS:
        raw = base64.b64decode(value)
        if key in ID_FIELDS:
            return raw.hex()
        return raw.decode("utf-8", "backslashreplace")
    return value


BYTES_FIELDS = set()

# drops since the sender's last sent datagram (BatchHeader fields 10-13)
DROP_DELTAS = ("deltaDroppedBufferFull", "deltaDroppedSendFailed",
               "deltaDroppedOversize", "deltaDroppedAtExit")
# audit events never admitted since then (fields 70-72)
AUDIT_DROP_DELTAS = ("deltaAuditDroppedBufferFull",
                     "deltaAuditDroppedOversize", "deltaAuditDroppedAtExit")


class Store:
    def __init__(self, path):
        self.cond = threading.Condition()
        self.path = path
        self.sock = None
        self.records = []
        self.headers = []
        self.received = 0
        self.dropped = 0
        self.audit_dropped = 0
        self.errors = 0
        self.closing = False

    def open(self):
        if os.path.exists(self.path):
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.settimeout(0.05)
        sock.bind(self.path)
        self.sock = sock
        self.cond.notify_all()

    def close(self):
        """Called with cond held.  Shutting the socket for reading makes
        later sends fail (EPIPE) instead of queueing datagrams nobody will
        read; the receiver reads what was queued before, then closes."""
        if self.sock is None:
            return
        self.closing = True
        self.sock.shutdown(socket.SHUT_RD)
        while self.sock is not None:
            self.cond.wait()

    def closed(self):
        """Called by the receiver, with cond held, once drained."""
        self.sock.close()
        os.unlink(self.path)
        self.sock = None
        self.closing = False
        self.cond.notify_all()


def receiver(store, schema):
    while True:
        with store.cond:
            while store.sock is None:
                store.cond.wait()
            sock, closing = store.sock, store.closing
        try:
            data = sock.recv(1 << 20, socket.MSG_DONTWAIT if closing else 0)
        except (socket.timeout, BlockingIOError, OSError):
            data = None
        if closing and not data:
            with store.cond:
                store.closed()
            continue
        if data:
            ingest(store, schema, data)


def ingest(store, schema, data):
    """Decodes one datagram into the store."""
    from google.protobuf import json_format
    batch = schema.Batch()
    try:
        batch.ParseFromString(data)
    except Exception:
        with store.cond:
            store.errors += 1
        return
    try:
        rows = list(batch.records) + column_rows(batch.columns, schema)
    except (IndexError, ValueError) as e:
        print("obs_sink: inconsistent columns:", e, file=sys.stderr)
        with store.cond:
            store.errors += 1
        return
    header = json_format.MessageToDict(batch.header)
    with store.cond:
        store.headers.append(to_plain(header))
        store.dropped += sum(int(header.get(k, "0")) for k in DROP_DELTAS)
        store.audit_dropped += sum(int(header.get(k, "0"))
                                   for k in AUDIT_DROP_DELTAS)
        for r in rows:
            store.records.append(to_plain(json_format.MessageToDict(r)))
            store.received += 1
        store.cond.notify_all()


# The variable-length groups of RecordColumns (proto/obs/v1/columns.def):
# count column -> (the repeated field of Record holding the entries, the
# prefix of the entry columns).  Everything else comes from the descriptor.
GROUPS = {"upstream_attempts": ("upstreams", "attempt_"),
          "metric_count": ("metrics", "metric_"),
          "field_count": ("fields", "field_"),          # obs_log_field
          "audit_count": ("audit", "audit_")}           # the audit trail

# bytes per entry of an id column: W3C trace ids and span ids
ID_WIDTHS = {"trace_id": 16, "span_id": 8}


def column_layout(schema):
    """Each RecordColumns field, from the descriptors: (column, group count
    column or None, target field, kind), kind being number, bool, symbol
    (a fixed32 column of a bytes field) or an id width (a bytes column)."""
    columns = schema.RecordColumns.DESCRIPTOR
    record = schema.Record.DESCRIPTOR
    layout = []
    for f in columns.fields:
        if f.name in ("count", "symbol_data", "symbol_end"):
            continue
        group, target, name = None, record, f.name
        if f.name in GROUPS:
            name = GROUPS[f.name][0]
        for count, (rows, prefix) in GROUPS.items():
            if f.name.startswith(prefix) and f.name not in GROUPS:
                group, name = count, f.name[len(prefix):]
                target = record.fields_by_name[rows].message_type
        to = target.fields_by_name[name]
        if f.name in GROUPS:
            kind = "count"
        elif f.type == f.TYPE_BYTES:
            kind = next(w for k, w in ID_WIDTHS.items()
                        if name.endswith(k))
        elif to.type == to.TYPE_BYTES:
            kind = "symbol"
        elif to.type == to.TYPE_BOOL:
            kind = "bool"
        else:
            kind = "number"
        layout.append((f.name, group, name, kind))
    return layout


def column_rows(cols, schema):
    """Rebuilds Record messages from a batch's column form, checking that
    every column has one entry per record or group entry (or none) as
    record.proto says."""
    n = cols.count
    ends = list(cols.symbol_end)
    if ends and ends[0] != 0:
        raise ValueError("symbol 0 is not empty")
    symbols = [b""] + [cols.symbol_data[ends[i - 1]:ends[i]]
                       for i in range(1, len(ends))]

    def column(name, want):
        values = list(getattr(cols, name))
        if values and len(values) != want:
            raise ValueError("column %s has %d entries, not %d"
                             % (name, len(values), want))
        return values or [0] * want

    def ids(name, width, want):
        raw = getattr(cols, name)
        if raw and len(raw) != want * width:
            raise ValueError("column %s has %d bytes" % (name, len(raw)))
        out = [raw[i * width:(i + 1) * width] for i in range(want)] \
            if raw else [b""] * want
        return [b"" if v == bytes(width) else v for v in out]

    layout = column_layout(schema)
    counts = {count: column(count, n) for count in GROUPS}
    entries = {None: n}
    entries.update({count: sum(c) for count, c in counts.items()})
    values = {}
    for name, group, _, kind in layout:
        want = entries[group]
        if isinstance(kind, int):
            values[name] = ids(name, kind, want)
        else:
            values[name] = column(name, want)
            if kind == "symbol":
                values[name] = [symbols[v] for v in values[name]]
            elif kind == "bool":
                values[name] = [v != 0 for v in values[name]]

    first = {count: 0 for count in GROUPS}
    rows = []
    for i in range(n):
        r = schema.Record()
        for name, group, to, kind in layout:
            if group is None and kind != "count":
                setattr(r, to, values[name][i])
        for count, (field, _) in GROUPS.items():
            for j in range(first[count], first[count] + counts[count][i]):
                e = getattr(r, field).add()
                for name, group, to, kind in layout:
                    if group == count:
                        setattr(e, to, values[name][j])
            first[count] += counts[count][i]
        rows.append(r)
    return rows


def active_summary(headers, prefix):
    """The newest in-flight snapshot of the headers (by its clock), as
    [{keys, prefixed, overflow, count: {route: n}}], or [] without one."""
    snaps = [h for h in headers if "activeZone" in h]
    if not snaps:
        return []
    h = max(snaps, key=lambda h: int(h.get("activeVersion", "0")))
    entries = h.get("active", [])
    return [{"keys": len(entries),
             "prefixed": sum(1 for e in entries if prefix
                             and e.get("route", "").startswith(prefix)),
             "overflow": int(h.get("activeOverflow", "0")),
             "count": {e.get("route", ""): int(e.get("count", "0"))
                       for e in entries}}]


def make_handler(store):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, lines):
            body = "".join(json.dumps(x, sort_keys=True) + "\n" for x in lines)
            body = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def linger(self, seconds):
            """Lets datagrams arrive for a while (store.cond is held)."""
            deadline = time.time() + seconds
            while time.time() < deadline:
                store.cond.wait(deadline - time.time())

        def do_GET(self):
            url = urllib.parse.urlparse(self.path)
            q = dict(urllib.parse.parse_qsl(url.query))
            wait = float(q.get("wait", "5"))
            with store.cond:
                if url.path == "/records":
                    need = int(q.get("min", "1"))
                    filters = {k: v for k, v in q.items()
                               if k not in ("min", "wait")}
                    deadline = time.time() + wait

                    def matching():
                        return [r for r in store.records
                                if all(str(r.get(k, "")) == v
                                       for k, v in filters.items())]

                    while len(matching()) < need and time.time() < deadline:
                        store.cond.wait(deadline - time.time())
                    out, store.records = matching(), []
                    return self.reply(out)
                if url.path == "/count":
                    self.linger(wait)
                    n = sum(1 for r in store.records
                            if r.get("path") == q.get("path"))
                    return self.reply([{"count": n}])
                if url.path == "/headers":
                    self.linger(float(q.get("wait", "0")))
                    out, store.headers = store.headers, []
                    return self.reply(out)
                if url.path == "/active":
                    self.linger(float(q.get("wait", "0")))
                    out, store.headers = store.headers, []
                    return self.reply(active_summary(out, q.get("prefix")))
                if url.path == "/stats":
                    # with expect=N, wait (up to `wait`) until N records are
                    # accounted for, received or reported dropped
                    expect = int(q.get("expect", "0"))
                    deadline = time.time() + float(q.get("wait", "0"))

                    while time.time() < deadline and (
                            not expect
                            or store.received + store.dropped < expect):
                        store.cond.wait(deadline - time.time())
                    return self.reply([{"received": store.received,
                                        "dropped": store.dropped,
                                        "audit_dropped": store.audit_dropped,
                                        "sum": store.received
                                        + store.dropped}])
                if url.path == "/pause":
                    store.close()
                    return self.reply([{"paused": True}])
                if url.path == "/resume":
                    store.open()
                    return self.reply([{"paused": False}])
                if url.path == "/reset":
                    store.records, store.headers = [], []
                    store.received = store.dropped = 0
                    store.audit_dropped = 0
                    return self.reply([{"reset": True}])
            self.send_error(404)

    return Handler


def main():
    path, port, proto_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    schema = load_schema(proto_dir)
    for message in (schema.Record, schema.UpstreamAttempt, schema.BatchHeader,
                    schema.MetricObservation, schema.ActiveRequests,
                    schema.LogField, schema.AuditEvent):
        for f in message.DESCRIPTOR.fields:
            if f.type == f.TYPE_BYTES:
                BYTES_FIELDS.add(f.camelcase_name)
    store = Store(path)
    with store.cond:
        store.open()
    threading.Thread(target=receiver, args=(store, schema),
                     daemon=True).start()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                             make_handler(store))
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
