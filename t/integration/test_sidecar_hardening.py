#!/usr/bin/python3
"""The sidecar against hostile neighbours (issue #11, items 3, 4 and 7).

Slow clients trickling header lines from many loopback addresses never keep
/healthz, /readyz and /metrics from answering; one address holds at most 8
connections; a request has a total deadline.  A second sidecar never
removes a live socket or a file that is not a socket, and --check-config
says so (exit 2) as it does for everything start-up would refuse.  All
traffic stays on loopback (127.0.0.0/8)."""

import grp
import gzip
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import (Stack, GATEWAY_HTTP, SIDECAR, free_port,  # noqa
                     http_get, value, wait_for, worker_group, main)


class Trickler:
    """A client that sends a request line, then a header line now and then,
    never finishing its request: the slowloris pattern."""

    def __init__(self, source, port):
        self.sock = socket.socket()
        self.sock.bind((source, 0))
        self.sock.settimeout(2)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        self.opened = time.monotonic()
        self.closed_at = None

    def trickle(self):
        """Sends one more header line; False once the server closed."""
        if self.closed_at is None and (not self.alive() or not self.send()):
            self.closed_at = time.monotonic()
        return self.closed_at is None

    def send(self):
        try:
            self.sock.sendall(b"X-Slow: 1\r\n")
            return True
        except OSError:
            return False

    def alive(self):
        self.sock.setblocking(False)
        try:
            return self.sock.recv(1) != b""
        except BlockingIOError:
            return True
        except OSError:
            return False
        finally:
            self.sock.settimeout(2)

    def close(self):
        self.sock.close()


def refused_or_closed(source, port):
    """True when a new connection from source is refused or closed by the
    server at once without an answer."""
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        return s.recv(100) == b""
    except OSError:
        return True
    finally:
        s.close()


class SlowClientsTest(unittest.TestCase):

    def setUp(self):
        self.stack = Stack(GATEWAY_HTTP)
        self.addCleanup(self.stack.stop)
        self.stack.start_sidecar()
        self.base = "http://127.0.0.1:%d" % self.stack.metrics_port
        self.clients = []
        self.addCleanup(lambda: [c.close() for c in self.clients])

    def test_health_answers_while_64_clients_trickle(self):
        """64 connections from 8 addresses keep trickling header lines;
        every probe meanwhile is answered within its 2 s timeout, and past
        the 10 s deadline no trickler is left."""
        for a in range(2, 10):
            for _ in range(8):
                self.clients.append(Trickler("127.0.0.%d" % a,
                                             self.stack.metrics_port))
        start = time.monotonic()
        probes = 0
        while time.monotonic() - start < 12:
            for path in ("/healthz", "/readyz", "/metrics"):
                status, _, _ = http_get(self.base + path, timeout=2)
                self.assertEqual(status, 200, path)
                probes += 1
            for c in self.clients:
                c.trickle()
            time.sleep(0.5)
        self.assertGreaterEqual(probes, 30)
        self.assertTrue(all(c.closed_at for c in self.clients),
                        "every trickling client was closed")
        closed = value(self.stack.metrics(),
                       "obs_http_connections_closed_total", reason="busy")
        self.assertGreaterEqual(closed, 64 - 16)

    def test_one_address_holds_at_most_8_connections(self):
        for _ in range(8):
            self.clients.append(Trickler("127.0.0.20",
                                         self.stack.metrics_port))
        time.sleep(0.3)
        self.assertTrue(refused_or_closed("127.0.0.20",
                                          self.stack.metrics_port),
                        "a ninth connection from one address is refused")
        self.assertEqual(http_get(self.base + "/healthz", timeout=2)[0], 200,
                         "another address is served")

    def test_a_request_has_a_total_deadline(self):
        """One client alone (no pressure) trickling every 2 s, which MHD's
        idle timeout never catches, is closed after the 10 s deadline."""
        c = Trickler("127.0.0.30", self.stack.metrics_port)
        self.clients.append(c)
        while c.trickle() and time.monotonic() - c.opened < 14:
            time.sleep(0.5)
        self.assertIsNotNone(c.closed_at, "closed by the deadline")
        self.assertGreaterEqual(c.closed_at - c.opened, 9.5)
        self.assertEqual(value(self.stack.metrics(),
                               "obs_http_connections_closed_total",
                               reason="deadline"), 1)

    def test_gzip_only_when_accepted(self):
        req = urllib.request.Request(self.base + "/metrics",
                                     headers={"Accept-Encoding": "gzip;q=0"})
        with urllib.request.urlopen(req, timeout=5) as r:
            self.assertIsNone(r.headers.get("Content-Encoding"))
            self.assertIn(b"obs_scrapes_total", r.read())
        req = urllib.request.Request(self.base + "/metrics", headers={
            "Accept-Encoding": "identity;q=0.5, gzip;q=0.8"})
        with urllib.request.urlopen(req, timeout=5) as r:
            self.assertEqual(r.headers.get("Content-Encoding"), "gzip")
            self.assertIn(b"obs_scrapes_total", gzip.decompress(r.read()))


class HttpConformanceTest(unittest.TestCase):
    """What a scraper or a proxy in front of the sidecar may send."""

    def setUp(self):
        self.stack = Stack(GATEWAY_HTTP)
        self.addCleanup(self.stack.stop)
        self.stack.start_sidecar()
        self.port = self.stack.metrics_port

    def exchange(self, data, wait=3):
        """Sends raw bytes, reads until the server closes or goes quiet."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=wait)
        self.addCleanup(s.close)
        s.sendall(data)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
        return out

    def test_keep_alive_serves_several_requests_on_one_connection(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        self.addCleanup(conn.close)
        for path in ("/healthz", "/metrics", "/readyz", "/metrics"):
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200, path)
            self.assertNotEqual((r.getheader("Connection") or "").lower(),
                                "close", path)
        self.assertIsNotNone(conn.sock, "the connection is still open")

    def test_pipelined_requests_are_all_answered_in_order(self):
        out = self.exchange(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
            b"Connection: close\r\n\r\n")
        statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", out)
        self.assertEqual(statuses, [b"200", b"200", b"404", b"200"], out)
        self.assertIn(b"ready\n", out)

    def test_absolute_form_target_is_the_same_resource(self):
        for target in (b"http://127.0.0.1/metrics?format=text",
                       b"HTTP://gateway:9145/healthz", b"https://x/readyz"):
            out = self.exchange(b"GET " + target + b" HTTP/1.1\r\n"
                                b"Host: x\r\nConnection: close\r\n\r\n")
            self.assertTrue(out.startswith(b"HTTP/1.1 200 "), (target, out))
        out = self.exchange(b"GET http://x/metrics?format=text HTTP/1.1\r\n"
                            b"Host: x\r\nConnection: close\r\n\r\n")
        self.assertIn(b"text/plain; version=0.0.4", out)
        out = self.exchange(b"GET http://x HTTP/1.1\r\n"
                            b"Host: x\r\nConnection: close\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 404 "), out)

    def test_a_body_on_another_method_is_not_read(self):
        out = self.exchange(b"POST /metrics HTTP/1.1\r\nHost: x\r\n"
                            b"Content-Length: 100000000\r\n\r\nxx")
        self.assertTrue(out.startswith(b"HTTP/1.1 405 "), out)
        self.assertIn(b"Allow: GET, HEAD", out)


def run_sidecar(*args, timeout=10):
    return subprocess.run([SIDECAR] + list(args), capture_output=True,
                          text=True, timeout=timeout)


class SocketPathTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="obs-paths-")
        os.chmod(self.dir, 0o755)

    def tearDown(self):
        subprocess.run(["rm", "-rf", self.dir])

    def test_a_second_start_leaves_the_running_socket(self):
        stack = Stack(GATEWAY_HTTP)
        self.addCleanup(stack.stop)
        stack.start_sidecar()
        inode = os.stat(stack.sock).st_ino

        p = run_sidecar("--ingest", "unix:" + stack.sock,
                        "--listen", "127.0.0.1:%d" % free_port())
        self.assertEqual(p.returncode, 1)
        self.assertIn("another process receives on this socket", p.stderr)
        p = run_sidecar("--ingest", "unix:" + stack.sock, "--check-config")
        self.assertEqual(p.returncode, 2)
        self.assertIn("another process", p.stderr)

        self.assertEqual(os.stat(stack.sock).st_ino, inode)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"\xff not a batch", stack.sock)
        wait_for(lambda: value(stack.metrics(), "obs_decode_errors_total",
                               reason="malformed") == 1,
                 what="the first sidecar still receives")

    def test_a_file_that_is_not_a_socket_is_never_removed(self):
        path = os.path.join(self.dir, "important.txt")
        with open(path, "w") as f:
            f.write("keep me\n")
        p = run_sidecar("--ingest", "unix:" + path, "--check-config")
        self.assertEqual(p.returncode, 2)
        self.assertIn("is not a socket", p.stderr)
        p = run_sidecar("--ingest", "unix:" + path,
                        "--listen", "127.0.0.1:%d" % free_port())
        self.assertEqual(p.returncode, 1)
        self.assertIn("is not a socket", p.stderr)
        with open(path) as f:
            self.assertEqual(f.read(), "keep me\n")

    def test_a_stale_socket_is_replaced(self):
        path = os.path.join(self.dir, "stale.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        s.close()                       # the file stays, nobody receives
        p = run_sidecar("--ingest", "unix:" + path, "--check-config")
        self.assertEqual(p.returncode, 0, p.stderr)
        proc = self.serve("--ingest", "unix:" + path)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o660)
        proc.terminate()
        self.assertEqual(proc.wait(timeout=10), 0)

    def serve(self, *args):
        """A sidecar started with args, once it is ready."""
        port = free_port()
        proc = subprocess.Popen([SIDECAR, "--listen", "127.0.0.1:%d" % port]
                                + list(args), stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        wait_for(lambda: http_get("http://127.0.0.1:%d/readyz"
                                  % port)[0] == 200, what="ready")
        return proc

    def test_socket_mode_and_group(self):
        group = worker_group() or subprocess.run(
            ["id", "-gn"], capture_output=True, text=True).stdout.strip()
        path = os.path.join(self.dir, "records.sock")
        self.serve("--ingest", "unix:" + path, "--ingest-group", group)
        st = os.stat(path)
        self.assertEqual(st.st_mode & 0o777, 0o660)
        self.assertEqual(grp.getgrgid(st.st_gid).gr_name, group)
        p = run_sidecar("--ingest", "unix:" + path, "--ingest-group",
                        "no-such-group-here", "--check-config")
        self.assertEqual(p.returncode, 2)
        self.assertIn("ingest_group", p.stderr)

    def test_udp_without_host_is_loopback(self):
        port = free_port()
        self.serve("--ingest", "udp:%d" % port)
        with open("/proc/net/udp") as f:
            bound = [line.split()[1] for line in f.readlines()[1:]
                     if line.split()[1].endswith(":%04X" % port)]
        self.assertEqual(bound, ["0100007F:%04X" % port])


class CheckConfigTest(unittest.TestCase):
    """--check-config exits 2 on what start-up would refuse."""

    def check(self, args, config=None):
        with tempfile.TemporaryDirectory() as d:
            full = ["--ingest", "unix:%s/r.sock" % d] + list(args)
            if config is not None:
                with open(os.path.join(d, "c.json"), "w") as f:
                    f.write(config)
                full += ["--config", os.path.join(d, "c.json")]
            return run_sidecar(*full, "--check-config")

    def test_what_start_up_refuses(self):
        cases = [
            (["--listen", "no-such-host.invalid:9145"], None,
             "no-such-host.invalid"),
            (["--ingest", "unix:/tmp/" + "x" * 120], None, "longer than"),
            (["--logs-file", "/no/such/dir/requests.log"], None,
             "does not exist"),
            ([], '{"spans_file": "/no/such/dir/spans.log"}', "spans_file"),
            ([], '{"loki": {"tenant_header": 5}}', "loki.tenant_header"),
            ([], '{"auth": {"bearer_token_file": "/tmp"}}',
             "is a directory"),
            (["--ingest", "unix:/no/such/dir/r.sock"], None,
             "does not exist"),
        ]
        for args, config, word in cases:
            p = self.check(args, config)
            self.assertEqual(p.returncode, 2, (args, config, p.stderr))
            self.assertIn(word, p.stderr, (args, config))

    def test_a_valid_configuration_passes(self):
        p = self.check(["--listen", "localhost:9145"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("configuration is valid", p.stdout)


class MistakesTest(unittest.TestCase):
    """What a person gets wrong first is answered in words that name it and
    the fix: a busy port, a misspelt setting, option or variable."""

    def test_a_busy_port_is_named(self):
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with tempfile.TemporaryDirectory() as d:
            p = run_sidecar("--listen", "127.0.0.1:%d" % port, "--ingest",
                            "unix:%s/r.sock" % d, "--no-logs", "--no-traces")
        self.assertNotEqual(p.returncode, 0)
        self.assertNotIn("port 0", p.stderr)
        self.assertIn("listen 127.0.0.1:%d: Address already in use" % port,
                      p.stderr)
        self.assertIn("--listen", p.stderr)

    def test_misspellings_suggest_the_nearest(self):
        with tempfile.TemporaryDirectory() as d:
            config = os.path.join(d, "c.json")
            for text, said in [
                    ('{"listn": "127.0.0.1:1"}',
                     'unknown setting "listn" (did you mean "listen"?)'),
                    ('{"loki": {"urll": "http://x"}}',
                     'unknown setting "loki.urll" (did you mean '
                     '"loki.url"?)'),
                    ('{"zzzzzz": 1}', 'unknown setting "zzzzzz"\n')]:
                with open(config, "w") as f:
                    f.write(text)
                p = run_sidecar("--config", config, "--check-config")
                self.assertEqual(p.returncode, 2, text)
                self.assertIn(said, p.stderr, text)
            p = run_sidecar("--otlp-endpiont", "http://x", "--check-config")
            self.assertEqual(p.returncode, 2)
            self.assertIn('unknown option "--otlp-endpiont" (did you mean '
                          '"--otlp-endpoint"?)', p.stderr)
            self.assertNotIn("unrecognized option", p.stderr)
            p = run_sidecar("--listen")
            self.assertIn('option "--listen" needs an argument', p.stderr)
            env = dict(os.environ, OBS_SIDECAR_LISTN="127.0.0.1:1",
                       OBS_SIDECAR_INGEST="unix:%s/r.sock" % d)
            p = subprocess.run([SIDECAR, "--check-config"], env=env,
                               capture_output=True, text=True, timeout=10)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("OBS_SIDECAR_LISTN is not a setting and is ignored "
                          "(did you mean OBS_SIDECAR_LISTEN?)", p.stderr)


if __name__ == "__main__":
    main()
