"""The request handler the tests' fake HTTP servers start from: quiet (no
line a request on stderr) and with reply(), one whole response."""

from http.server import BaseHTTPRequestHandler


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, body=b"", headers=()):
        """Sends code, headers (a dict or (name, value) pairs), a
        Content-Length and body."""
        if isinstance(headers, dict):
            headers = headers.items()
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
