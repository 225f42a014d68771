// Reads base64 OTLP/HTTP protobuf bodies (one per line) on stdin and prints
// each decoded ExportTraceServiceRequest as JSON, ids in hex.  The decoder
// is the one the OpenTelemetry JavaScript SDK ships (protobufjs, generated
// from opentelemetry-proto), not the sidecar's.
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root.js');
const Request = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;

let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const out = [];
  for (const line of input.split('\n')) {
    if (!line.trim()) continue;
    const msg = Request.decode(Buffer.from(line, 'base64'));
    const obj = Request.toObject(msg, { longs: String, enums: Number, bytes: String, defaults: false });
    for (const rs of obj.resourceSpans || []) {
      for (const ss of rs.scopeSpans || []) {
        for (const sp of ss.spans || []) {
          for (const k of ['traceId', 'spanId', 'parentSpanId']) {
            if (sp[k] !== undefined) sp[k] = Buffer.from(sp[k], 'base64').toString('hex');
          }
        }
      }
    }
    out.push(obj);
  }
  process.stdout.write(JSON.stringify(out));
});
