#!/usr/bin/python3
"""The demo's two backend services, standing in for the brief's FastAPI
backend-api and ml-engine: small JSON APIs with some latency and some
errors, which log the traceparent they receive (the gateway injects it).
ml-engine also returns what a recommendation service knows and the gateway
turns into business metrics (obs_metric): X-Recommendations-Count (items
returned), X-Cache (HIT or MISS of its embedding cache, about 80% HIT) and
X-Embedding-Cache-Age (seconds since the embeddings were refreshed, every
10 minutes here).

Usage: services.py NAME PORT   (NAME: backend-api or ml-engine)
"""

import json
import random
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME, PORT = sys.argv[1], int(sys.argv[2])
STARTED = time.time()
EMBEDDINGS_REFRESH = 600        # seconds between embedding refreshes


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s traceparent=%s\n" % (
            NAME, fmt % args, self.headers.get("traceparent", "-")))

    def reply(self, code, doc, headers=()):
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.handle_any()

    def handle_any(self):
        path = self.path.split("?")[0]
        if path == "/health":
            return self.reply(200, {"status": "ok"})
        if NAME == "ml-engine":
            time.sleep(random.uniform(0.02, 0.25))
            if random.random() < 0.03:
                return self.reply(500, {"error": "model unavailable"})
            return self.recommend()
        time.sleep(random.uniform(0.001, 0.04))
        if path.startswith("/api/v1/orders") and random.random() < 0.05:
            return self.reply(503, {"error": "database busy"})
        if "missing" in path:
            return self.reply(404, {"error": "not found"})
        return self.reply(200, {"service": NAME, "path": path})


    def recommend(self):
        """Recommendations with the headers the gateway counts."""
        items = list(range(random.randint(0, 20)))
        hit = random.random() < 0.8
        age = (time.time() - STARTED) % EMBEDDINGS_REFRESH
        return self.reply(200, {"recommendations": items}, (
            ("X-Recommendations-Count", str(len(items))),
            ("X-Cache", "HIT" if hit else "MISS"),
            ("X-Embedding-Cache-Age", "%.1f" % age)))


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
