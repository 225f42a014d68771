#!/usr/bin/python3
"""Strict fake Loki and OTLP receivers for the exporter tests.

Loki: POST /loki/api/v1/push takes both of Loki's formats.
- application/json (gzip allowed) must follow the documented push schema
  exactly: {"streams":[{"stream":{label: string}, "values":[["<unix ns as a
  string of digits>", "<line>", {metadata: string}?]]}]}.
- application/x-protobuf (no Content-Encoding) must be snappy block format
  around logproto.PushRequest; it is decoded by t/helpers/js/loki_decode.js
  (Loki's proto compiled to JavaScript by loki-grpc-client, and snappyjs),
  never with this project's code.  Labels must be a selector
  {name="value", ...}; timestamps a valid google.protobuf.Timestamp.
  Each push is kept in the JSON push's shape, with "format" saying which.
Anything else is answered 400 (or 415) and recorded as an error.  OTLP:
POST /v1/traces, /v1/metrics and /v1/logs must be application/x-protobuf;
bodies are kept raw (under "otlp", "otlp_metrics", "otlp_logs") for an
independent decoder (t/helpers/js/otlp_decode.js).

Faults are set through GET /control?fail=N&code=503&retry_after=S&delay=S
&partial=R&message=TEXT: the next N pushes are answered `code` (with
Retry-After when given); every request waits `delay` seconds first; with
partial=R, the next OTLP answer is a 200 whose Export*ServiceResponse says
R items were rejected (partial_success, with `message`).

Usage: fake_receivers.py PORT   (serves both APIs; GET /state shows all)
"""

import base64
import gzip
import os
import subprocess
import json
import re
import sys
import threading
import time
import urllib.parse
from http.server import ThreadingHTTPServer

from otlp_answers import faults, partial_success
from quiet_http import QuietHandler

LOCK = threading.Lock()
STATE = {"loki": [], "otlp": [], "otlp_metrics": [], "otlp_logs": [],
         "errors": [], "refused": 0}
FAULT = {"fail": 0, "code": 503, "retry_after": None, "delay": 0.0,
         "partial": 0, "message": ""}
OTLP_PATHS = {"/v1/traces": "otlp", "/v1/metrics": "otlp_metrics",
              "/v1/logs": "otlp_logs"}
DIGITS = re.compile(r"^[0-9]{19}$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')
ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r"}
DECODER_LOCK = threading.Lock()
DECODER = subprocess.Popen(
    ["node", os.path.join(os.path.dirname(os.path.abspath(__file__)), "js",
                          "loki_decode.js")],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def unquote(v):
    """A label value as Loki's selector parser reads it (Go escapes)."""
    out, i = [], 0
    while i < len(v):
        if v[i] != "\\":
            out.append(v[i])
            i += 1
        elif v[i + 1] == "x":
            out.append(chr(int(v[i + 2:i + 4], 16)))
            i += 4
        elif v[i + 1] in ESCAPES:
            out.append(ESCAPES[v[i + 1]])
            i += 2
        else:
            raise ValueError("unknown escape \\%s" % v[i + 1])
    return "".join(out)


def parse_selector(text):
    """{a="1", b="2"} -> {"a": "1", "b": "2"}, or None when malformed."""
    if not (text.startswith("{") and text.endswith("}")):
        return None
    body, labels, pos = text[1:-1], {}, 0
    while pos < len(body):
        m = LABEL.match(body, pos)
        if not m or m.group(1) in labels:
            return None
        try:
            labels[m.group(1)] = unquote(m.group(2))
        except (ValueError, IndexError):
            return None
        pos = m.end()
        if body.startswith(", ", pos):
            pos += 2
        elif body.startswith(",", pos):
            pos += 1
        elif pos != len(body):
            return None
    return labels or None


def decode_protobuf_push(body):
    """The push in the JSON push's shape, or an error text."""
    with DECODER_LOCK:
        DECODER.stdin.write(base64.b64encode(body).decode() + "\n")
        DECODER.stdin.flush()
        answer = json.loads(DECODER.stdout.readline())
    if not answer["ok"]:
        return None, answer["error"]
    streams = []
    for s in answer["streams"]:
        labels = parse_selector(s["labels"])
        if labels is None:
            return None, "labels must be a selector {name=\"value\", ...}"
        values = []
        for e in s["entries"]:
            if e["seconds"] is None or not 0 <= e["nanos"] < 10 ** 9:
                return None, "an entry needs a valid timestamp"
            v = ["%d" % (e["seconds"] * 10 ** 9 + e["nanos"]), e["line"]]
            if e["metadata"]:
                names = [n for n, _ in e["metadata"]]
                if len(set(names)) != len(names) or not all(names):
                    return None, "structured metadata names must be unique"
                v.append(dict(e["metadata"]))
            values.append(v)
        streams.append({"stream": labels, "values": values})
    return {"streams": streams}, None


def check_push(doc):
    if not isinstance(doc, dict) or set(doc) != {"streams"}:
        return "top level must be {\"streams\": [...]}"
    if not isinstance(doc["streams"], list) or not doc["streams"]:
        return "streams must be a non-empty array"
    for s in doc["streams"]:
        if not isinstance(s, dict) or set(s) != {"stream", "values"}:
            return "a stream has exactly stream and values"
        if not s["stream"] or not all(isinstance(k, str) and
                                      isinstance(v, str)
                                      for k, v in s["stream"].items()):
            return "stream labels must be a non-empty string map"
        for v in s["values"]:
            if not isinstance(v, list) or len(v) not in (2, 3):
                return "a value is [ts, line] or [ts, line, metadata]"
            if not isinstance(v[0], str) or not DIGITS.match(v[0]):
                return "timestamps are strings of unix nanoseconds"
            if not isinstance(v[1], str):
                return "lines are strings"
            if len(v) == 3 and not (isinstance(v[2], dict) and all(
                    isinstance(k, str) and isinstance(x, str)
                    for k, x in v[2].items())):
                return "structured metadata is a string map"
    return None


class Handler(QuietHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        with LOCK:
            if url.path == "/control":
                FAULT.update(faults(q, 503))
                FAULT["retry_after"] = q.get("retry_after")
                return self.reply(200, b"ok\n")
            if url.path == "/state":
                return self.reply(200, json.dumps(STATE).encode(),
                                  {"Content-Type": "application/json"})
        self.reply(404)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(FAULT["delay"])
        with LOCK:
            if FAULT["fail"] > 0:
                FAULT["fail"] -= 1
                STATE["refused"] += 1
                h = {}
                if FAULT["retry_after"]:
                    h["Retry-After"] = FAULT["retry_after"]
                return self.reply(FAULT["code"], b"try later\n", h)
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        elif self.headers.get("Content-Encoding"):
            return self.error(415, "unknown Content-Encoding")
        meta = {"org": self.headers.get("X-Scope-OrgID"),
                "auth": self.headers.get("Authorization"),
                "encoding": self.headers.get("Content-Encoding"),
                "time": time.time()}
        if self.path == "/loki/api/v1/push":
            ctype = self.headers.get("Content-Type")
            if ctype == "application/x-protobuf":
                if self.headers.get("Content-Encoding"):
                    return self.error(415, "the protobuf push is snappy "
                                      "inside the body, not encoded")
                doc, problem = decode_protobuf_push(body)
                meta["format"] = "protobuf"
            elif ctype == "application/json":
                try:
                    doc = json.loads(body)
                except ValueError:
                    return self.error(400, "not JSON")
                meta["format"] = "json"
                problem = None
            else:
                return self.error(415, "Content-Type must be "
                                  "application/json or application/x-protobuf")
            problem = problem or check_push(doc)
            if problem:
                return self.error(400, problem)
            with LOCK:
                STATE["loki"].append(dict(meta, push=doc))
            return self.reply(204)
        if self.path in OTLP_PATHS:
            if self.headers.get("Content-Type") != "application/x-protobuf":
                return self.error(415, "Content-Type must be "
                                  "application/x-protobuf")
            answer = b""
            with LOCK:
                if FAULT["partial"]:
                    answer = partial_success(FAULT["partial"],
                                             FAULT["message"])
                    meta["rejected"] = FAULT["partial"]
                    FAULT["partial"] = 0
                STATE[OTLP_PATHS[self.path]].append(dict(
                    meta, body=base64.b64encode(body).decode()))
            return self.reply(200, answer, {"Content-Type":
                                            "application/x-protobuf"})
        self.error(404, "no such API")

    def error(self, code, message):
        with LOCK:
            STATE["errors"].append(message)
        self.reply(code, message.encode())


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print("ready", flush=True)
server.serve_forever()
