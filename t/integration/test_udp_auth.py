#!/usr/bin/python3
"""HMAC-authenticated records over udp: (issue #11, item 10).

nginx (obs_sidecar udp:... key=FILE) and the sidecar (--ingest-key-file)
share a key; every datagram carries 0xff "OBH" + HMAC-SHA256 of the Batch.
The module's tags are checked with Python's own hmac module, and batches
built by Google's protobuf runtime are sent with a good tag, a bad tag and
none: only the good one counts, the others are dropped and counted."""

import hashlib
import hmac
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (Stack, NGINX, MODULE, check_config,  # noqa
                     free_port, request, value, wait_for, main, obs_contract)

NGINX_HTTP = """
    server {
        listen 127.0.0.1:NGINX_PORT;
        obs_service_name auth-test;
        location / { return 200 "ok\\n"; }
    }
"""

KEY = b"0123456789abcdef-shared-secret"
FRAMING = obs_contract.framing()
MARK = FRAMING["OBS_MAC_MARK"]
HEAD = FRAMING["OBS_MAC_MARK_LEN"] + FRAMING["OBS_MAC_LEN"]


def tagged(key, batch):
    return MARK + hmac.new(key, batch, hashlib.sha256).digest() + batch


class UdpAuthTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pb = obs_contract.record_pb2()
        cls.dir = tempfile.mkdtemp(prefix="obs-key-")
        cls.key = os.path.join(cls.dir, "obs.key")
        with open(cls.key, "wb") as f:
            f.write(KEY + b"\n")
        os.chmod(cls.dir, 0o755)
        os.chmod(cls.key, 0o644)     # nginx reads it as root, at start

    def batch(self, service):
        b = self.pb.Batch()
        b.header.schema_version = FRAMING["OBS_SCHEMA_CURRENT"]
        b.header.pid = 99
        b.header.host = b"forger"
        r = b.records.add()
        r.service = service.encode()
        r.method = b"GET"
        r.route = b"/x"
        r.status = 200
        return b.SerializeToString()

    def capture(self, requests):
        """The datagrams nginx sends for a few requests, caught by a plain
        UDP socket that stands in for the sidecar (or an attacker on the
        path): nobody counted them."""
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(10)
        self.addCleanup(rx.close)
        stack = Stack(NGINX_HTTP, records_address="udp:127.0.0.1:%d"
                      % rx.getsockname()[1], flush="50ms key=" + self.key)
        self.addCleanup(stack.stop)
        stack.start_nginx()
        for _ in range(requests):
            self.assertEqual(request(stack.gateway + "/a")[0], 200)

        captured, records = [], 0
        while records < requests:
            captured.append(rx.recv(FRAMING["OBS_DATAGRAM_READ_MAX"]))
            b = self.pb.Batch()
            b.ParseFromString(captured[-1][HEAD:])
            records += b.columns.count + len(b.records)
        stack.stop()
        return captured

    def test_module_tags_are_hmac_sha256_of_the_batch(self):
        """Every datagram the module sends verifies with Python's hmac,
        parses as a Batch and says when it was sent."""
        for data in self.capture(3):
            self.assertEqual(data[:len(MARK)], MARK)
            self.assertEqual(data[len(MARK):HEAD],
                             hmac.new(KEY, data[HEAD:],
                                      hashlib.sha256).digest())
            b = self.pb.Batch()
            b.ParseFromString(data[HEAD:])
            # the send time bounds a copy's life (--ingest-max-skew)
            self.assertLess(abs(b.header.send_time_unix_nano / 1e9
                                - time.time()), 5)

    def header(self, data):
        b = self.pb.Batch()
        b.ParseFromString(data[HEAD:])
        return b.header

    def keyed_sidecar(self, unix=False):
        """A sidecar taking udp: records with the key (and, with unix, plain
        ones on a unix socket too); its stack and port."""
        udp = "udp:127.0.0.1:%d" % free_port()
        stack = Stack(NGINX_HTTP, records_address=udp,
                      flush="50ms key=" + self.key)
        stack.sidecar_args = ["--ingest", udp, "--ingest-key-file", self.key,
                              "--logs-file", os.devnull,
                              "--spans-file", os.devnull]
        if unix:
            stack.sidecar_args += ["--ingest", "unix:" + stack.sock]
        self.addCleanup(stack.stop)
        stack.start_sidecar()
        return stack, int(udp.rsplit(":", 1)[1])

    def test_sidecar_counts_only_authentic_datagrams(self):
        stack, port = self.keyed_sidecar()
        stack.start_nginx()
        for _ in range(5):
            request(stack.gateway + "/a")
        wait_for(lambda: value(stack.metrics(), "http_server_requests_total",
                               service="auth-test") == 5,
                 what="5 authenticated records from nginx")

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for data in (self.batch("plain"),
                         tagged(b"the-wrong-key-0123456789", self.batch("bad")),
                         MARK + b"\0" * FRAMING["OBS_MAC_LEN"] + self.batch("zero"),
                         MARK + b"short"):
                s.sendto(data, ("127.0.0.1", port))
            s.sendto(tagged(KEY, self.batch("good")), ("127.0.0.1", port))

        wait_for(lambda: value(stack.metrics(), "http_server_requests_total",
                               service="good") == 1,
                 what="the well-tagged batch")
        m = stack.metrics()
        self.assertEqual(value(m, "obs_decode_errors_total",
                               reason="unauthenticated"), 4)
        for service in ("plain", "bad", "zero"):
            self.assertIsNone(value(m, "http_server_requests_total",
                                    service=service), service)

    def test_a_replayed_datagram_counts_once(self):
        """The tag proves who sent a datagram, not that it is new: a copy
        (same worker, same sequence number) is refused and counted, while
        datagrams that arrive out of order still count."""
        stack, port = self.keyed_sidecar()

        def numbered(seq):
            b = self.pb.Batch()
            b.ParseFromString(self.batch("replay"))
            b.header.sequence = seq
            return tagged(KEY, b.SerializeToString())

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for seq in (100, 102, 101):     # 101 arrives late: still counts
                s.sendto(numbered(seq), ("127.0.0.1", port))
            for _ in range(5):              # copies of 102 and of 101
                s.sendto(numbered(102), ("127.0.0.1", port))
                s.sendto(numbered(101), ("127.0.0.1", port))
            s.sendto(numbered(1), ("127.0.0.1", port))  # older than the window
        wait_for(lambda: value(stack.metrics(), "obs_decode_errors_total",
                               reason="replayed") == 11,
                 what="eleven copies refused")
        self.assertEqual(value(stack.metrics(), "http_server_requests_total",
                               service="replay"), 3)

    def test_plain_datagrams_cannot_touch_the_signed_window(self):
        """A plain datagram on the unix socket that names a captured
        worker (host, pid, start) may not move the replay window its
        signed datagrams are judged by: at sequence 2^64-1 it once wrapped
        the window so that every capture counted again, at 2^63-1 it made
        the worker's next datagrams "replayed", and either set
        obs_datagrams_lost_total to ~9.2e18."""
        captured = self.capture(4)
        h = self.header(captured[0])
        last = max(self.header(d).sequence for d in captured)
        stack, port = self.keyed_sidecar(unix=True)

        def count(service="auth-test"):
            return value(stack.metrics(), "http_server_requests_total",
                         service=service) or 0

        def forged(seq):
            b = self.pb.Batch()
            b.header.CopyFrom(h)
            b.header.sequence = seq
            r = b.records.add()
            r.service = b"forged"
            r.method = b"GET"
            r.route = b"/x"
            r.status = 200
            return b.SerializeToString()

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for d in captured:
                s.sendto(d, ("127.0.0.1", port))
        wait_for(lambda: count() == 4, what="the 4 captured records")

        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as u, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            u.sendto(forged(2**64 - 1), stack.sock)
            wait_for(lambda: count("forged") == 1, what="the plain datagram")
            for d in captured:
                s.sendto(d, ("127.0.0.1", port))
            wait_for(lambda: value(stack.metrics(), "obs_decode_errors_total",
                                   reason="replayed") == len(captured),
                     what="every capture refused as a copy")
            self.assertEqual(count(), 4)

            u.sendto(forged(2**63 - 1), stack.sock)
            wait_for(lambda: count("forged") == 2, what="the second one")
            b = self.pb.Batch()
            b.ParseFromString(forged(last + 1))
            b.records[0].service = b"auth-test"
            s.sendto(tagged(KEY, b.SerializeToString()), ("127.0.0.1", port))
            wait_for(lambda: count() == 5,
                     what="the worker's next signed datagram")

        m = stack.metrics()
        self.assertEqual(value(m, "obs_datagrams_lost_total"), 0)
        self.assertEqual(value(m, "obs_decode_errors_total",
                               reason="replayed"), len(captured))

    def test_a_capture_resent_after_a_restart_is_stale(self):
        """The replay window lives in memory: a restarted sidecar refuses
        a captured datagram by its send time instead, once it is older
        than the skew allowed (OBS_SIDECAR_INGEST_MAX_SKEW, seconds)."""
        captured = self.capture(3)
        os.environ["OBS_SIDECAR_INGEST_MAX_SKEW"] = "1"
        self.addCleanup(os.environ.pop, "OBS_SIDECAR_INGEST_MAX_SKEW")
        stack, port = self.keyed_sidecar()

        def resend():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                for d in captured:
                    s.sendto(d, ("127.0.0.1", port))

        resend()
        wait_for(lambda: value(stack.metrics(), "http_server_requests_total",
                               service="auth-test") == 3,
                 what="the 3 captured records, fresh")

        stack.sidecar.terminate()
        stack.sidecar.wait(timeout=10)
        stack.start_sidecar()
        time.sleep(2.5)
        resend()
        wait_for(lambda: (value(stack.metrics(), "obs_datagrams_received_total")
                          or 0) >= len(captured),
                 what="the copies read")
        m = stack.metrics()
        self.assertIsNone(value(m, "http_server_requests_total",
                                service="auth-test"))
        self.assertEqual(value(m, "obs_decode_errors_total", reason="stale"),
                         len(captured))

    def sidecar_check(self, key):
        """obs-sidecar --check-config with key as its ingest_key_file."""
        return check_config(args=["--ingest", "udp:%d" % free_port(),
                                  "--ingest-key-file", key])

    def nginx_t(self, key):
        """nginx -t of obs_sidecar ... key=key."""
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write("load_module %s;\nevents {}\nhttp {\n"
                    "obs_sidecar udp:127.0.0.1:9 key=%s;\n}\n"
                    % (MODULE, key))
        return subprocess.run([NGINX, "-t", "-p", self.dir, "-c", conf,
                               "-e", "stderr"], capture_output=True,
                              text=True)

    def test_bad_key_files_are_refused(self):
        short = os.path.join(self.dir, "short.key")
        with open(short, "w") as f:
            f.write("tooshort\n")
        p = self.sidecar_check(short)
        self.assertEqual(p.returncode, 2)
        self.assertIn("ingest_key_file", p.stderr)

        for path, word in ((short, "at least"),
                           (os.path.join(self.dir, "none.key"), "failed"),
                           (self.dir, "")):
            p = self.nginx_t(path)
            self.assertNotEqual(p.returncode, 0, path)
            self.assertIn("obs_sidecar" if word != "failed" else word,
                          p.stderr)

    def test_module_and_sidecar_take_the_same_keys(self):
        """One key rule (framing.h) on both sides: a key nginx -t takes,
        the sidecar takes, and the other way round.  A NUL byte used to pass
        both while the sidecar's key ended there: no tag matched."""
        lo, hi = FRAMING["OBS_KEY_MIN"], FRAMING["OBS_KEY_MAX"]
        cases = {"min": (b"k" * lo, True), "max": (b"k" * hi, True),
                 "short": (b"k" * (lo - 1), False),
                 "long": (b"k" * (hi + 1), False),
                 "nul": (b"0123456789abcdef\0tail", False)}
        for name, (key, good) in cases.items():
            path = os.path.join(self.dir, name + ".key")
            with open(path, "wb") as f:
                f.write(key + b"\n")
            os.chmod(path, 0o644)
            sidecar, nginx = self.sidecar_check(path), self.nginx_t(path)
            self.assertEqual(sidecar.returncode == 0, good,
                             name + ": " + sidecar.stderr)
            self.assertEqual(nginx.returncode == 0, good,
                             name + ": " + nginx.stderr)

if __name__ == "__main__":
    main()
