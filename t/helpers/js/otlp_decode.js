// Reads base64 OTLP protobuf bodies (one per line) on stdin and prints each
// decoded Export*ServiceRequest as JSON, ids in hex.  The decoder is the one
// the OpenTelemetry JavaScript SDK ships (protobufjs, generated from
// opentelemetry-proto), not the sidecar's.
//
//   node otlp_decode.js [traces|metrics|logs]     (default traces)
//
// A line may carry a prefix "<signal>:" to pick its message instead.  A body
// that does not decode, or (metrics, logs) that holds fields protobufjs does
// not know (it would not write the same number of bytes back), is reported
// as {"error": "..."} in its place.  Traces are not held to the second rule:
// Span.flags (field 16) is newer than this package's definitions.
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root.js');
const collector = root.opentelemetry.proto.collector;
const messages = {
  traces: collector.trace.v1.ExportTraceServiceRequest,
  metrics: collector.metrics.v1.ExportMetricsServiceRequest,
  logs: collector.logs.v1.ExportLogsServiceRequest,
};
const hexFields = new Set(['traceId', 'spanId', 'parentSpanId']);

function hexIds(o) {
  if (Array.isArray(o)) {
    o.forEach(hexIds);
  } else if (o && typeof o === 'object') {
    for (const k of Object.keys(o)) {
      if (hexFields.has(k) && typeof o[k] === 'string') {
        o[k] = Buffer.from(o[k], 'base64').toString('hex');
      } else {
        hexIds(o[k]);
      }
    }
  }
}

let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const out = [];
  for (let line of input.split('\n')) {
    if (!line.trim()) continue;
    let signal = process.argv[2] || 'traces';
    const m = /^(traces|metrics|logs):/.exec(line);
    if (m) {
      signal = m[1];
      line = line.slice(m[0].length);
    }
    const Request = messages[signal];
    try {
      const bytes = Buffer.from(line, 'base64');
      const msg = Request.decode(bytes);
      const err = Request.verify(msg);
      if (err) throw new Error(err);
      // what protobufjs did not recognise it drops: the bytes would not
      // come back whole
      const again = Request.encode(msg).finish();
      if (signal !== 'traces' && again.length !== bytes.length) {
        throw new Error('fields protobufjs does not know: ' + bytes.length +
                        ' bytes read back as ' + again.length);
      }
      const obj = Request.toObject(msg, { longs: String, enums: Number, bytes: String, defaults: false });
      hexIds(obj);
      out.push(obj);
    } catch (e) {
      out.push({ error: String(e.message || e) });
    }
  }
  process.stdout.write(JSON.stringify(out));
});
