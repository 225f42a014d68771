#!/usr/bin/python3
"""Strict fake Loki and OTLP receivers for the exporter tests.

Loki: POST /loki/api/v1/push must be application/json (gzip allowed) and
follow the documented push schema exactly: {"streams":[{"stream":{label:
string}, "values":[["<unix ns as a string of digits>", "<line>",
{metadata: string}?]]}]}.  Anything else is answered 400 and recorded as
an error.  OTLP: POST /v1/traces must be application/x-protobuf; bodies are
kept raw for an independent decoder.

Faults are set through GET /control?fail=N&code=503&retry_after=S&delay=S:
the next N pushes are answered `code` (with Retry-After when given); every
request waits `delay` seconds first.

Usage: fake_receivers.py PORT   (serves both APIs; GET /state shows all)
"""

import base64
import gzip
import json
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"loki": [], "otlp": [], "errors": [], "refused": 0}
FAULT = {"fail": 0, "code": 503, "retry_after": None, "delay": 0.0}
DIGITS = re.compile(r"^[0-9]{19}$")


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


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body=b"", headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        with LOCK:
            if url.path == "/control":
                FAULT["fail"] = int(q.get("fail", 0))
                FAULT["code"] = int(q.get("code", 503))
                FAULT["retry_after"] = q.get("retry_after")
                FAULT["delay"] = float(q.get("delay", 0))
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
                "time": time.time()}
        if self.path == "/loki/api/v1/push":
            if self.headers.get("Content-Type") != "application/json":
                return self.error(415, "Content-Type must be application/json")
            try:
                doc = json.loads(body)
            except ValueError:
                return self.error(400, "not JSON")
            problem = check_push(doc)
            if problem:
                return self.error(400, problem)
            with LOCK:
                STATE["loki"].append(dict(meta, push=doc))
            return self.reply(204)
        if self.path == "/v1/traces":
            if self.headers.get("Content-Type") != "application/x-protobuf":
                return self.error(415, "Content-Type must be "
                                  "application/x-protobuf")
            with LOCK:
                STATE["otlp"].append(dict(meta, body=base64.b64encode(
                    body).decode()))
            return self.reply(200, b"", {"Content-Type":
                                         "application/x-protobuf"})
        self.error(404, "no such API")

    def error(self, code, message):
        with LOCK:
            STATE["errors"].append(message)
        self.reply(code, message.encode())


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print("ready", flush=True)
server.serve_forever()
