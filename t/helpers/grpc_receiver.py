#!/usr/bin/python3
"""A strict OTLP/gRPC receiver for the exporter tests, built on Debian's
python3-grpcio (gRPC's own HTTP/2 server, not this project's code).

It serves the three OTLP services' Export methods
(opentelemetry.proto.collector.{trace,metrics,logs}.v1.*Service/Export),
keeps each request's bytes for an independent decoder
(t/helpers/js/otlp_decode.js) and answers as told:

GET http://127.0.0.1:CONTROL/control?fail=N&code=C&retry_delay=S&delay=S
    &partial=R&message=TEXT&signal=traces|metrics|logs
    the next N requests (of that signal only, when given) end with gRPC
    status C (a number); with
    retry_delay, grpc-status-details-bin carries a google.rpc.Status with a
    google.rpc.RetryInfo of S seconds; every request waits `delay` seconds
    first; with partial=R, the next OK answer's Export*ServiceResponse says
    R items were rejected (partial_success, with `message`).
GET /state  every request ({"signal", "body" (base64), "metadata",
    "answer"}), and those refused.

The google.rpc messages are written by hand from their public definitions
(google/rpc/status.proto, error_details.proto; otlp_answers.py).

Usage: grpc_receiver.py GRPC_PORT CONTROL_PORT
"""

import base64
import json
import sys
import threading
import time
import urllib.parse
from concurrent import futures
from http.server import ThreadingHTTPServer

import grpc

from otlp_answers import faults, field, partial_success, varint
from quiet_http import QuietHandler

LOCK = threading.Lock()
STATE = {"requests": [], "refused": 0}
FAULT = {"fail": 0, "code": 14, "retry_delay": None, "delay": 0.0,
         "partial": 0, "message": "", "signal": None}
SERVICES = {
    "opentelemetry.proto.collector.trace.v1.TraceService": "traces",
    "opentelemetry.proto.collector.metrics.v1.MetricsService": "metrics",
    "opentelemetry.proto.collector.logs.v1.LogsService": "logs",
}


def status_details(code, message, delay):
    """google.rpc.Status {code = 1, message = 2, details = 3 (Any)} with a
    google.rpc.RetryInfo {retry_delay = 1 (Duration {seconds = 1,
    nanos = 2})}."""
    seconds = int(delay)
    nanos = int(round((delay - seconds) * 1e9))
    duration = b""
    if seconds:
        duration += b"\x08" + varint(seconds)
    if nanos:
        duration += b"\x10" + varint(nanos)
    retry_info = field(1, duration)
    any_ = field(1, b"type.googleapis.com/google.rpc.RetryInfo") + \
        field(2, retry_info)
    return b"\x08" + varint(code) + field(2, message.encode()) + \
        field(3, any_)


def export(signal):
    def handler(request, context):
        time.sleep(FAULT["delay"])
        meta = {k: v for k, v in context.invocation_metadata()
                if not k.endswith("-bin")}
        with LOCK:
            entry = {"signal": signal, "metadata": meta,
                     "body": base64.b64encode(request).decode(),
                     "time": time.time()}
            mine = FAULT["signal"] in (None, signal)
            if FAULT["fail"] > 0 and mine:
                FAULT["fail"] -= 1
                STATE["refused"] += 1
                code, delay = FAULT["code"], FAULT["retry_delay"]
                entry["answer"] = code
                STATE["requests"].append(entry)
            else:
                code = 0
                answer = b""
                if FAULT["partial"] and mine:
                    answer = partial_success(FAULT["partial"],
                                             FAULT["message"])
                    entry["rejected"] = FAULT["partial"]
                    FAULT["partial"] = 0
                entry["answer"] = 0
                STATE["requests"].append(entry)
        if code == 0:
            return answer
        status = next(s for s in grpc.StatusCode if s.value[0] == code)
        if delay is not None:
            context.set_trailing_metadata((
                ("grpc-status-details-bin",
                 status_details(code, "try later", float(delay))),))
        context.abort(status, "refused by the test receiver")
    return handler


class Generic(grpc.GenericRpcHandler):
    def service(self, details):
        service, _, method = details.method.lstrip("/").rpartition("/")
        if service not in SERVICES or method != "Export":
            return None
        return grpc.unary_unary_rpc_method_handler(
            export(SERVICES[service]),
            request_deserializer=lambda b: b,
            response_serializer=lambda b: b)


class Control(QuietHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        with LOCK:
            if url.path == "/control":
                FAULT.update(faults(q, 14))
                FAULT["retry_delay"] = q.get("retry_delay")
                FAULT["signal"] = q.get("signal")
                body = b"ok\n"
            elif url.path == "/state":
                body = json.dumps(STATE).encode()
            else:
                return self.reply(404)
        self.reply(200, body)


server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                     handlers=[Generic()])
server.add_insecure_port("127.0.0.1:%d" % int(sys.argv[1]))
server.start()
control = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Control)
print("ready", flush=True)
control.serve_forever()
