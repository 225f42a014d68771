// Decodes Loki native push bodies for the fake Loki: one base64 body per
// line on stdin, one JSON answer per line on stdout, either
// {"ok":true,"streams":[{"labels":"{...}","entries":[{"seconds":..,
// "nanos":..,"line":"..","metadata":[[name,value],...]}]}]} or
// {"ok":false,"error":"..."}.  The body is snappy block format
// (snappyjs) around logproto.PushRequest, read with the JavaScript that
// loki-grpc-client compiled from Loki's own logproto.proto.  Strict: the
// decoded message must serialise back to exactly the bytes received, so a
// wrong field number, wire type or stray byte is an error.
const readline = require('readline');
const snappy = require('snappyjs');
const pb = require('loki-grpc-client/proto/compiled/logproto_pb.js');

function decode(b64) {
  const compressed = Buffer.from(b64, 'base64');
  let raw;
  try {
    raw = Buffer.from(snappy.uncompress(compressed));
  } catch (e) {
    return { ok: false, error: 'not snappy block format: ' + e.message };
  }
  let req;
  try {
    req = pb.PushRequest.deserializeBinary(new Uint8Array(raw));
  } catch (e) {
    return { ok: false, error: 'not a logproto.PushRequest: ' + e.message };
  }
  const again = Buffer.from(req.serializeBinary());
  if (!again.equals(raw)) {
    return { ok: false, error: 'PushRequest has bytes logproto does not define' };
  }
  const streams = req.getStreamsList().map((s) => ({
    labels: s.getLabels(),
    entries: s.getEntriesList().map((e) => {
      const ts = e.getTimestamp();
      return {
        seconds: ts ? ts.getSeconds() : null,
        nanos: ts ? ts.getNanos() : null,
        line: e.getLine(),
        metadata: e.getStructuredmetadataList().map((p) => [p.getName(), p.getValue()]),
      };
    }),
  }));
  return { ok: true, streams };
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let out;
  try {
    out = decode(line.trim());
  } catch (e) {
    out = { ok: false, error: String(e) };
  }
  process.stdout.write(JSON.stringify(out) + '\n');
});
