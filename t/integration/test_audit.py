#!/usr/bin/python3
"""The audit trail end to end (issue 22): real nginx + module (obs_audit,
obs_jwt require) -> obs-sidecar -> the HMAC-chained file, and Loki.

Every chain is checked with Python's hmac and hashlib, independently of the
sidecar's C code, as well as with `obs-sidecar --verify-audit`.  Covers the
events' fields and that nothing secret is in them; tampering (a byte
changed, a line deleted, two lines swapped, the last line cut, a file of
the rotation removed, the tail cut against a shipped mac); a disk that
fills (nothing lost silently: every event is written or counted lost, the
alarms fire: the metric, /readyz, the log); a sidecar killed mid-write;
events the module could not keep, counted exactly; refused datagrams,
nginx reloads (the digest is `nginx -T | sha256sum`), the sidecar's own
start, reload and stop; a Loki outage (and a restart during it) that loses
nothing; and a load where the access logs are shed and the audit trail
keeps every audited request."""

import calendar
import hashlib
import hmac
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import http.client

sys.path.insert(0, os.path.dirname(__file__))
from harness import (ROOT, SIDECAR, NGINX, Stack, free_port, http_get,  # noqa
                     obs_contract,
                     request, value, wait_for, worker_group, main)
from test_exporters import Receivers                           # noqa
from test_udp_auth import tagged                               # noqa

NGINX_HTTP = """
    obs_jwt_keys DIR/jwks.json;
    obs_jwt_issuer https://issuer.example;
    obs_jwt_audience api;
    server {
        listen 127.0.0.1:NGINX_PORT;
        location /admin/ {
            obs_audit on;
            obs_jwt on;
            obs_route /admin;
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
        location /export {
            obs_audit on hmac=DIR/client.key;
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
        location /locked {
            obs_jwt require;
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
        location /plain {
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
    }
    server {
        listen 127.0.0.1:BACKEND_PORT;
        obs off;
        location / { return 200 "ok\\n"; }
    }
"""

KEY = b"audit-chain-key-of-the-tests-0123456789"
CLIENT_KEY = b"audit-client-pseudonym-key-0123"
LINE_TAIL = 74            # ,"mac":"<64 hex>"}


def chain_check(lines, key=KEY, prev=None):
    """Python's own verification: the index of the first line that breaks
    the chain, or None.  lines: bytes without line ends; prev: the mac
    before the first (None: taken from the first line)."""
    for i, line in enumerate(lines):
        if line[-LINE_TAIL:-LINE_TAIL + 8] != b',"mac":"' or \
                not line.endswith(b'"}'):
            return i
        body, mac = line[:-LINE_TAIL], line[-66:-2]
        ev = json.loads(line)
        if prev is None:
            prev = ev["prev"]
        if ev["prev"] != prev:
            return i
        want = hmac.new(key, bytes.fromhex(prev) + body,
                        hashlib.sha256).hexdigest().encode()
        if want != mac:
            return i
        prev = mac.decode()
    return None


def read_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    return data.split(b"\n")[:-1] if data.endswith(b"\n") \
        else data.split(b"\n")


def event_ns(ev):
    """An event's "time" in Unix nanoseconds."""
    t = time.strptime(ev["time"][:19], "%Y-%m-%dT%H:%M:%S")
    return (calendar.timegm(t) * 1000000 + int(ev["time"][20:26])) * 1000


def events(path):
    """The whole events of a file (not a line cut short at its end)."""
    with open(path, "rb") as f:
        data = f.read()
    return [json.loads(l) for l in data.split(b"\n")[:-1] if l]


def verify(files, key_file, anchor=None):
    args = [SIDECAR, "--verify-audit"] + list(files) + \
        ["--audit-key-file", key_file]
    if anchor:
        args += ["--audit-anchor", anchor]
    p = subprocess.run(args, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


class AuditStack(Stack):
    """A Stack whose sidecar keeps an audit trail; tokens from PyJWT."""

    def __init__(self, test, config=None, audit=None, workers=1,
                 flush="100ms", buffer=None, start=True, http=NGINX_HTTP,
                 preexec=None, audit_dir=None):
        self.audit_dir = audit_dir
        cfg = {"logs": False, "traces": False}
        cfg.update(config or {})
        super().__init__(http, sidecar_config=cfg, workers=workers,
                         flush=flush + (" buffer=%s" % buffer
                                        if buffer else ""))
        test.addCleanup(self.stop)
        self.nginx_http_config = http.replace("DIR", self.dir)
        self.key = os.path.join(self.dir, "audit.key")
        with open(self.key, "wb") as f:
            f.write(KEY + b"\n")
        with open(os.path.join(self.dir, "client.key"), "wb") as f:
            f.write(CLIENT_KEY + b"\n")
        out = subprocess.run(["/usr/bin/python3",
                              os.path.join(ROOT, "t/jwt/fixtures.py"),
                              self.dir], capture_output=True, check=True)
        self.tokens = json.loads(out.stdout)
        for name in os.listdir(self.dir):
            os.chmod(os.path.join(self.dir, name), 0o644)
        self.file = os.path.join(audit_dir or self.dir, "audit.log")
        audit_cfg = {"file": self.file, "key_file": self.key}
        audit_cfg.update(audit or {})
        self.sidecar_config["audit"] = audit_cfg
        self.preexec = preexec
        if start:
            self.start_sidecar()
            self.start_nginx()

    def start_sidecar(self, stdout=None):
        """As Stack's, with a preexec function (resource limits)."""
        args = [SIDECAR, "--listen", "127.0.0.1:%d" % self.metrics_port,
                "--ingest", "unix:" + self.sock]
        if worker_group():
            args += ["--ingest-group", worker_group()]
        path = os.path.join(self.dir, "sidecar.json")
        with open(path, "w") as f:
            json.dump(self.sidecar_config, f)
        args += ["--config", path] + self.sidecar_args
        log = open(os.path.join(self.dir, "sidecar.log"), "a")
        self.sidecar = subprocess.Popen(args, stdout=stdout, stderr=log,
                                        preexec_fn=self.preexec)
        log.close()
        self.procs.append(self.sidecar)
        wait_for(lambda: http_get(self.metrics_url.replace(
            "/metrics", "/healthz"))[0] == 200, what="sidecar up")

    def stop_sidecar(self, sig=signal.SIGTERM):
        self.sidecar.send_signal(sig)
        self.sidecar.wait(timeout=30)

    def log(self):
        with open(os.path.join(self.dir, "sidecar.log")) as f:
            return f.read()

    def readyz(self):
        try:
            return http_get(self.metrics_url.replace("/metrics", "/readyz"))
        except Exception as e:       # urllib raises on 503
            return e.code, {}, e.read()

    def requests_in_trail(self, route=None):
        return [e for e in events(self.file) if e["event"] == "request"
                and (route is None or e["route"] == route)]


class AuditFileTest(unittest.TestCase):

    def test_events_fields_and_nothing_secret(self):
        s = AuditStack(self)
        tok = s.tokens["RS256"]
        status, _ = request(
            s.gateway + "/admin/models/7?password=query-secret-2342",
            method="DELETE",
            headers={"Authorization": "Bearer " + tok,
                     "Cookie": "session=cookie-secret-4711",
                     "X-Request-ID": "req-42"},
            body=b"body-secret-1234")
        self.assertEqual(status, 200)
        request(s.gateway + "/export")
        request(s.gateway + "/plain")
        request(s.gateway + "/locked/x",
                headers={"Authorization": "Bearer " + s.tokens["expired"]})

        reqs = wait_for(lambda: len(s.requests_in_trail()) == 3
                        and s.requests_in_trail(), what="three events")
        by_route = {e["route"]: e for e in reqs}
        self.assertEqual(set(by_route), {"/admin", "/export", "/locked"})

        a = by_route["/admin"]
        self.assertEqual(
            {k: a[k] for k in ("user", "tenant", "client", "method",
                               "status", "decision", "audited_by", "jwt",
                               "request_id")},
            {"user": "alice", "tenant": "acme", "client": "127.0.0.1",
             "method": "DELETE", "status": 200, "decision": "allowed",
             "audited_by": "obs_audit", "jwt": "valid",
             "request_id": "req-42"})
        self.assertRegex(a["time"],
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        self.assertRegex(a["trace_id"], r"^[0-9a-f]{32}$")
        self.assertGreater(a["bytes_in"], 0)
        self.assertGreater(a["bytes_out"], 0)
        self.assertEqual(a["worker_seq"], 1)

        e = by_route["/export"]
        self.assertEqual(e["client"], hmac.new(CLIENT_KEY, b"127.0.0.1",
                                               hashlib.sha256).hexdigest())
        self.assertEqual((e["user"], e["jwt"]), ("unverified", "off"))
        self.assertRegex(e["request_id"], r"^[0-9a-f]{32}$")

        r = by_route["/locked"]
        self.assertEqual(
            {k: r[k] for k in ("status", "decision", "audited_by", "jwt",
                               "jwt_kid", "jwt_alg", "jwt_issuer", "user")},
            {"status": 401, "decision": "denied:jwt_expired",
             "audited_by": "obs_jwt", "jwt": "expired", "jwt_kid": "rsa1",
             "jwt_alg": "RS256", "jwt_issuer": "https://issuer.example",
             "user": "unverified"})

        with open(s.file, "rb") as f:
            trail = f.read()
        for secret in (b"query-secret", b"password", b"cookie-secret",
                       b"body-secret", tok.encode(),
                       tok.split(".")[2].encode(),
                       s.tokens["expired"].split(".")[2].encode()):
            self.assertNotIn(secret, trail)

        # the sidecar's own events, and the configuration nginx loaded
        kinds = [ev["event"] for ev in events(s.file)]
        self.assertEqual(kinds[:2], ["audit_opened", "sidecar_start"])
        conf = [ev for ev in events(s.file) if ev["event"] == "nginx_config"]
        self.assertEqual(len(conf), 1)
        dump = subprocess.run([NGINX, "-T", "-p", s.dir, "-c",
                               os.path.join(s.dir, "nginx.conf")],
                              capture_output=True, check=True).stdout
        self.assertEqual(conf[0]["config_sha256"],
                         hashlib.sha256(dump).hexdigest())
        self.assertEqual((conf[0]["generation"], conf[0]["first_seen"]),
                         (1, True))
        self.assertRegex(conf[0]["nginx_version"], r"^1\.\d+\.\d+$")
        self.assertTrue(conf[0]["module_version"])

        # nginx reloads with another configuration: audited once
        with open(os.path.join(s.dir, "nginx.conf"), "a") as f:
            f.write("# reloaded\n")
        os.kill(s.nginx.pid, signal.SIGHUP)
        conf = wait_for(lambda: [ev for ev in events(s.file)
                                 if ev["event"] == "nginx_config"][1:],
                        what="the reload's event")
        dump = subprocess.run([NGINX, "-T", "-p", s.dir, "-c",
                               os.path.join(s.dir, "nginx.conf")],
                              capture_output=True, check=True).stdout
        self.assertEqual(
            {k: conf[0][k] for k in ("generation", "changed",
                                     "config_sha256", "first_seen")},
            {"generation": 2, "changed": True, "first_seen": False,
             "config_sha256": hashlib.sha256(dump).hexdigest()})
        time.sleep(1)
        self.assertEqual(len([ev for ev in events(s.file)
                              if ev["event"] == "nginx_config"]), 2)

        # the sidecar reloads (what changed, by name), then stops
        cfg = dict(s.sidecar_config, max_tenants=7)
        cfg["audit"] = dict(cfg["audit"], rotate_files=3)
        with open(os.path.join(s.dir, "sidecar.json"), "w") as f:
            json.dump(cfg, f)
        s.sidecar.send_signal(signal.SIGHUP)
        rel = wait_for(lambda: [ev for ev in events(s.file)
                                if ev["event"] == "sidecar_reload"],
                       what="the sidecar's reload")[0]
        self.assertEqual(sorted(rel["changed"]),
                         ["audit.rotate_files", "max_tenants"])
        self.assertEqual(rel["restart_needed"], ["audit.rotate_files"])
        s.stop_sidecar()
        self.assertEqual(events(s.file)[-1]["event"], "sidecar_stop")

        # the chain holds, as Python and the sidecar both say
        self.assertIsNone(chain_check(read_lines(s.file)))
        rc, out, err = verify([s.file], s.key)
        self.assertEqual(rc, 0, err)
        self.assertIn("audit chain holds: %d events" % len(events(s.file)),
                      out)

    def test_tampering_is_detected(self):
        s = AuditStack(self, audit={"rotate_bytes": 4096, "rotate_files": 5})
        for i in range(24):
            request(s.gateway + "/admin/x%d" % i)

        def trail():
            return [s.file + ".%d" % k for k in range(5, 0, -1)
                    if os.path.exists(s.file + ".%d" % k)] + [s.file]
        wait_for(lambda: sum(1 for f in trail() for e in events(f)
                             if e["event"] == "request") == 24,
                 what="24 events")
        s.stop_sidecar()
        files = trail()
        self.assertGreaterEqual(len(files), 3, "rotation happened")
        # each rotated-to file starts with its rotation, chained on
        for f in files[1:]:
            self.assertEqual(events(f)[0]["event"], "audit_rotated")
        every = [l for f in files for l in read_lines(f)]
        self.assertIsNone(chain_check(every))
        self.assertEqual(verify(files, s.key)[0], 0)

        work = tempfile.mkdtemp(prefix="obs-tamper-")
        self.addCleanup(shutil.rmtree, work)

        def tampered(name, edit, which=-1):
            out = []
            for i, f in enumerate(files):
                dst = os.path.join(work, "%s.%d" % (name, i))
                shutil.copy(f, dst)
                out.append(dst)
            path = out[which]
            with open(path, "rb") as fh:
                lines = fh.read().split(b"\n")[:-1]
            data = edit(lines)
            with open(path, "wb") as fh:
                fh.write(data)
            return out, path

        def expect_bad(name, edit, line_no, which=-1, drop_file=None):
            out, path = tampered(name, edit, which)
            if drop_file is not None:
                out.pop(drop_file)
            rc, _, err = verify(out, s.key)
            self.assertEqual(rc, 1, name)
            self.assertIn("%s:%d:" % (path, line_no), err, name)
            # Python's verification finds the same line
            lines = [l for f in out for l in read_lines(f)]
            first = sum(len(read_lines(f)) for f in out[:out.index(path)])
            self.assertEqual(chain_check(lines), first + line_no - 1, name)

        def one_byte(lines):
            lines[2] = lines[2][:20] + bytes([lines[2][20] ^ 1]) \
                + lines[2][21:]
            return b"\n".join(lines) + b"\n"
        expect_bad("byte", one_byte, 3, which=0)

        def deleted(lines):
            del lines[2]
            return b"\n".join(lines) + b"\n"
        expect_bad("deleted", deleted, 3, which=0)

        def swapped(lines):
            lines[1], lines[2] = lines[2], lines[1]
            return b"\n".join(lines) + b"\n"
        expect_bad("swapped", swapped, 2, which=0)

        def cut(lines):
            return b"\n".join(lines)[:-20]
        expect_bad("cut", cut, len(read_lines(files[-1])))

        # a file of the rotation removed: the next one's first line breaks
        out, path = tampered("removed", lambda l: b"\n".join(l) + b"\n")
        del out[1]
        rc, _, err = verify(out, s.key)
        self.assertEqual(rc, 1)
        self.assertIn("%s:1: its prev is not the mac" % out[1], err)

        # a whole last line deleted leaves a chain that holds: only the
        # last mac shipped elsewhere (Loki) shows it
        last_mac = json.loads(read_lines(files[-1])[-1])["mac"]
        out, path = tampered("tail", lambda l: b"\n".join(l[:-1]) + b"\n")
        self.assertEqual(verify(out, s.key)[0], 0)
        rc, _, err = verify(out, s.key, anchor=last_mac)
        self.assertEqual(rc, 1)
        self.assertIn("is not in the chain: events were cut from the end",
                      err)
        self.assertEqual(verify(files, s.key, anchor=last_mac)[0], 0)

        # another key does not verify it
        other = os.path.join(work, "other.key")
        with open(other, "w") as f:
            f.write("another-key-of-sixteen-bytes\n")
        rc, _, err = verify(files, other)
        self.assertEqual(rc, 1)
        self.assertIn(":1: its mac is wrong", err)

    def test_killed_mid_write_verifies_to_the_last_whole_event(self):
        s = AuditStack(self, workers=2)
        stop = threading.Event()
        sent = []

        def load():
            c = http.client.HTTPConnection("127.0.0.1", s.nginx_port)
            while not stop.is_set():
                try:
                    c.request("GET", "/admin/k")
                    c.getresponse().read()
                    sent.append(1)
                except OSError:
                    c = http.client.HTTPConnection("127.0.0.1", s.nginx_port)
        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        wait_for(lambda: len(s.requests_in_trail()) > 200, what="load")
        s.sidecar.send_signal(signal.SIGKILL)
        s.sidecar.wait()
        stop.set()
        for t in threads:
            t.join()

        lines = read_lines(s.file)
        whole = lines if open(s.file, "rb").read().endswith(b"\n") \
            else lines[:-1]
        self.assertIsNone(chain_check(whole))

        # as if it died in the middle of a line: what a crash of the
        # machine (or a full disk) can leave
        with open(s.file, "ab") as f:
            f.write(b'{"seq":999999,"time":"2026-')
        rc, _, err = verify([s.file], s.key)
        self.assertEqual(rc, 1)
        self.assertIn("the line is cut short", err)
        self.assertIn(":%d:" % (len(whole) + 1), err)
        # up to the last whole event it verifies
        self.assertIsNone(chain_check(whole))

        # the next sidecar removes the half line, says so, goes on
        before = len(s.requests_in_trail())
        s.start_sidecar()
        request(s.gateway + "/admin/after")
        wait_for(lambda: len(s.requests_in_trail()) > before,
                 what="an event after the restart")
        opened = [e for e in events(s.file) if e["event"] == "audit_opened"]
        self.assertEqual(opened[-1]["chain"], "continued")
        self.assertGreaterEqual(opened[-1]["discarded_bytes"], 27)
        self.assertIn("cut short", s.log())
        self.assertIsNone(chain_check(read_lines(s.file)))
        self.assertEqual(verify([s.file], s.key)[0], 0)


class AuditConfigTest(unittest.TestCase):

    def test_check_config_covers_the_audit_settings(self):
        d = tempfile.mkdtemp(prefix="obs-auditcfg-")
        self.addCleanup(shutil.rmtree, d)
        key = os.path.join(d, "k")
        with open(key, "w") as f:
            f.write("0123456789abcdef-audit\n")
        short = os.path.join(d, "short")
        with open(short, "w") as f:
            f.write("too-short\n")

        def check(*args):
            p = subprocess.run([SIDECAR, "--check-config", "--ingest",
                                "unix:" + os.path.join(d, "r.sock"),
                                "--listen", "127.0.0.1:%d" % free_port()]
                               + list(args), capture_output=True, text=True)
            return p.returncode, p.stderr + p.stdout

        trail = os.path.join(d, "audit.log")
        self.assertEqual(check("--audit-file", trail, "--audit-key-file",
                               key)[0], 0)
        for args, says in (
                (["--audit-file", trail], 'needs "audit.key_file"'),
                (["--audit-file", trail, "--audit-key-file", short],
                 "must be 16 to 1023 bytes"),
                (["--audit-file", "/nonexistent/dir/a.log",
                  "--audit-key-file", key], "audit.file: /nonexistent"),
                (["--audit-file", d, "--audit-key-file", key],
                 "a directory, not a file")):
            rc, out = check(*args)
            self.assertEqual(rc, 2, args)
            self.assertIn(says, out)

        # another sidecar writes it: start-up would fail, so does the check
        s = AuditStack(self, start=False)
        s.start_sidecar()
        rc, out = check("--audit-file", s.file, "--audit-key-file", s.key)
        self.assertEqual(rc, 2)
        self.assertIn("another sidecar writes", out)
        # and the settings are in the table, with flags
        help_text = subprocess.run([SIDECAR, "--help"], capture_output=True,
                                   text=True).stdout
        for flag in ("--audit-file", "--audit-key-file", "--verify-audit",
                     "--audit-anchor"):
            self.assertIn(flag, help_text)


class AuditLossTest(unittest.TestCase):

    def test_disk_full_nothing_lost_silently(self):
        """The file stops taking events: the sidecar says so (log, /readyz,
        obs_audit_writable), keeps them queued, counts those past
        audit.queue_bytes, and once the file takes events again writes the
        rest and a record of the loss.  Written + counted = sent."""
        fs = tempfile.mkdtemp(prefix="obs-fs-")
        self.addCleanup(shutil.rmtree, fs, True)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k",
                                  "tmpfs", fs], capture_output=True
                                 ).returncode == 0
        if mounted:
            self.addCleanup(subprocess.run, ["umount", "-l", fs])
            preexec = None
        else:
            # no tmpfs here: a file size limit (EFBIG) stands for it
            def preexec():
                resource.setrlimit(resource.RLIMIT_FSIZE,
                                   (64 * 1024, resource.RLIM_INFINITY))
        s = AuditStack(self, audit={"queue_bytes": 65536}, audit_dir=fs,
                       preexec=preexec)
        filler = os.path.join(fs, "filler")
        if mounted:
            # leave a little room: the disk fills while events arrive
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                while os.write(fd, b"\0" * 4096) > 0:
                    pass
            except OSError:
                pass
            os.close(fd)
            os.truncate(filler, os.path.getsize(filler) - 16384)

        sent = 0
        while s.readyz()[0] == 200 and sent < 2000:
            request(s.gateway + "/admin/full")
            sent += 1
        self.assertLess(sent, 2000, "the file filled up")
        m = s.metrics()
        self.assertEqual(value(m, "obs_audit_writable"), 0)
        code, _, body = s.readyz()
        self.assertEqual(code, 503)
        self.assertIn(b"audit file", body)
        self.assertIn(b"cannot write", body)
        self.assertIn("audit: %s: cannot write" % s.file, s.log())

        # beyond audit.queue_bytes events are lost, and counted
        for _ in range(400):
            request(s.gateway + "/admin/full")
            sent += 1
        m = wait_for(lambda: value(s.metrics(), "obs_audit_events_lost_total",
                                   reason="queue_full") and s.metrics(),
                     what="losses counted")
        lost = value(m, "obs_audit_events_lost_total", reason="queue_full")
        self.assertGreater(lost, 0)
        self.assertGreater(value(m, "obs_audit_queue_events"), 0)
        self.assertGreater(value(m, "obs_audit_write_errors_total"), 0)

        # room again: everything queued is written, and the loss recorded
        if mounted:
            os.unlink(filler)
        else:
            resource.prlimit(s.sidecar.pid, resource.RLIMIT_FSIZE,
                             (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        wait_for(lambda: s.readyz()[0] == 200, what="ready again")
        m = wait_for(lambda: value(s.metrics(), "obs_audit_queue_events")
                     == 0 and s.metrics(), what="the queue written")
        self.assertEqual(value(m, "obs_audit_writable"), 1)
        self.assertIn("takes events again", s.log())
        written = len(s.requests_in_trail("/admin"))
        told = sum(e["count"] for e in events(s.file)
                   if e["event"] == "audit_events_lost")
        lost = value(m, "obs_audit_events_lost_total")
        self.assertEqual(told, lost)
        self.assertEqual(written + lost, sent)
        self.assertIsNone(chain_check(read_lines(s.file)))
        self.assertEqual(verify([s.file], s.key)[0], 0)

    def test_events_the_module_could_not_keep_are_counted(self):
        """nginx holds its batches while the sidecar is away; past its
        buffer even audit events go, and each is counted: events written +
        counted lost = audited requests, exactly."""
        s = AuditStack(self, buffer="4k", start=False)
        s.start_nginx()
        for i in range(150):
            self.assertEqual(request(s.gateway + "/admin/%d" % i)[0], 200)
        s.start_sidecar()
        m = wait_for(lambda: len(s.requests_in_trail()) + value(
            s.metrics(), "obs_audit_events_lost_total",
            reason="module_buffer_full") == 150 and s.metrics(),
            timeout=30, what="every event written or counted")
        lost = value(m, "obs_audit_events_lost_total",
                     reason="module_buffer_full")
        self.assertGreater(lost, 0)
        told = wait_for(lambda: sum(e["count"] for e in events(s.file)
                                    if e["event"] == "audit_events_lost"
                                    and e["reason"] == "module_buffer_full"),
                        what="the loss in the trail")
        self.assertEqual(told, lost)
        # nothing of it is a gap: those admitted all arrived
        self.assertEqual(value(m, "obs_audit_events_lost_total",
                               reason="gap"), 0)
        seqs = [e["worker_seq"] for e in s.requests_in_trail()]
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)))

    def test_refused_datagrams_are_audited(self):
        s = AuditStack(self, start=False)
        udp = free_port()
        with open(os.path.join(s.dir, "ingest.key"), "wb") as f:
            f.write(b"0123456789abcdef-shared-secret\n")
        s.sidecar_args += ["--ingest", "udp:127.0.0.1:%d" % udp,
                           "--ingest-key-file",
                           os.path.join(s.dir, "ingest.key")]
        s.start_sidecar()
        pb = obs_contract.record_pb2()
        b = pb.Batch()
        b.header.schema_version = 2
        b.header.pid = 99
        b.header.host = b"forger"
        b.header.worker_start_unix_nano = 12345
        b.header.send_time_unix_nano = time.time_ns()
        b.records.add(service=b"x", method=b"GET", route=b"/x", status=200)
        good = tagged(b"0123456789abcdef-shared-secret",
                      b.SerializeToString())
        b.header.sequence = 1
        b.header.send_time_unix_nano = time.time_ns() - 3600 * 10**9
        stale = tagged(b"0123456789abcdef-shared-secret",
                       b.SerializeToString())
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx.bind(("127.0.0.1", 0))
        port = tx.getsockname()[1]
        for d in (b"not a batch", good, good, stale):
            tx.sendto(d, ("127.0.0.1", udp))
            time.sleep(0.05)
        refused = wait_for(lambda: len([e for e in events(s.file)
                                        if e["event"] == "ingest_refused"])
                           == 3 and [e for e in events(s.file)
                                     if e["event"] == "ingest_refused"],
                           what="three refusals")
        self.assertEqual([e["reason"] for e in refused],
                         ["unauthenticated", "replayed", "stale"])
        for e in refused:
            self.assertEqual(e["sender"], "udp:127.0.0.1:%d" % port)
        for e in refused[1:]:
            self.assertEqual((e["worker_host"], e["worker_pid"],
                              e["worker_start"]), ("forger", 99, 12345))

        # a flood is told as counts, not line by line
        for _ in range(200):
            tx.sendto(b"flood", ("127.0.0.1", udp))
        wait_for(lambda: value(s.metrics(), "obs_decode_errors_total",
                               reason="unauthenticated") == 201,
                 what="the flood counted")
        s.stop_sidecar()
        flood = [e for e in events(s.file) if e["event"] == "ingest_refused"
                 and e["reason"] == "unauthenticated"]
        # each event with a sender is one refusal; also_refused counts
        # those told only as a number (the last one, at the stop, alone)
        self.assertLess(len(flood), 60)
        self.assertEqual(sum(1 for e in flood if "sender" in e)
                         + sum(e.get("also_refused", 0) for e in flood), 201)
        self.assertEqual(flood[-1].get("sender"), None)
        tx.close()


class AuditLokiTest(unittest.TestCase):

    def loki_stack(self):
        rec = Receivers()
        self.addCleanup(rec.stop)
        s = AuditStack(self, config={
            "loki": {"url": rec.url + "/loki/api/v1/push",
                     "batch_wait_ms": 200, "tenant_header": "per_tenant"},
            "logs": True}, audit={"org_id": "ops"}, start=False)
        return s, rec

    def audit_lines(self, rec):
        return [(st, v, org) for st, v, org in rec.lines()
                if st.get("job") == "obs-audit"]

    def test_loki_outage_loses_nothing(self):
        s, rec = self.loki_stack()
        rec.control(fail=100000, code=503)          # Loki is down
        s.start_sidecar()
        s.start_nginx()
        for i in range(20):
            request(s.gateway + "/admin/out%d" % i)
        wait_for(lambda: len(s.requests_in_trail()) == 20, what="in file")
        wait_for(lambda: value(s.metrics(), "obs_exporter_requests_total",
                               exporter="audit", result="failure"),
                 what="Loki failing")
        self.assertEqual(self.audit_lines(rec), [])

        # the sidecar restarts during the outage: the file is the queue
        s.stop_sidecar()
        s.start_sidecar()
        for i in range(5):
            request(s.gateway + "/admin/later%d" % i)
        wait_for(lambda: len(s.requests_in_trail()) == 25, what="in file")

        rec.control(fail=0)                          # Loki is back
        in_file = {l.decode() for l in read_lines(s.file)}
        got = wait_for(lambda: in_file <= {v[1] for _, v, _ in
                                          self.audit_lines(rec)}
                       and self.audit_lines(rec), timeout=60,
                       what="every event of the file in Loki")
        for st, v, org in got:
            self.assertEqual(set(st), {"job", "host"})
            self.assertEqual(org, "ops")       # the operator's, no tenant's
            self.assertEqual(int(v[0]), event_ns(json.loads(v[1])))
        self.assertEqual(rec.state()["errors"], [])
        m = s.metrics()
        self.assertEqual(value(m, "obs_exporter_dropped_total",
                               exporter="audit"), 0)
        # how far Loki confirmed is kept for the next start: the file's end
        st = os.stat(s.file)
        wait_for(lambda: open(s.file + ".loki-cursor").read().split()
                 == [str(st.st_dev), str(st.st_ino), str(st.st_size)],
                 what="the cursor at the end of the file")

    def test_load_audit_complete_while_access_logs_are_shed(self):
        """A tiny exporter ring whose log file stalls: access log lines are
        shed (counted), every audited request is in the trail."""
        fifo = os.path.join(tempfile.mkdtemp(prefix="obs-fifo-"), "logs")
        os.mkfifo(fifo)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)   # never read
        s = AuditStack(self, workers=2, flush="10ms", config={
            "logs": True, "logs_file": fifo,
            "exporter_queue_datagrams": 1})
        self.addCleanup(os.close, reader)
        audited = []
        lock = threading.Lock()

        def load(n):
            c = http.client.HTTPConnection("127.0.0.1", s.nginx_port)
            for i in range(n):
                path = "/admin/l%d" % i if i % 2 else "/plain/%d" % i
                c.request("GET", path)
                c.getresponse().read()
                if i % 2:
                    with lock:
                        audited.append(path)
        threads = [threading.Thread(target=load, args=(800,))
                   for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        wait_for(lambda: len(s.requests_in_trail("/admin")) == len(audited),
                 timeout=30, what="every audited request in the trail")
        m = s.metrics()
        shed = value(m, "obs_exporter_shed_total", signal="logs")
        self.assertGreater(shed, 0)
        self.assertEqual(value(m, "obs_audit_events_lost_total"), 0)
        self.assertEqual(value(m, "obs_records_dropped_total"), 0)
        self.assertEqual(value(m, "obs_records_received_total"), 4800)
        self.assertIsNone(chain_check(read_lines(s.file)))
        print("load: %d requests, %d audited, all %d in the trail; %d log "
              "lines shed" % (4800, len(audited), len(audited), shed),
              file=sys.stderr)


if __name__ == "__main__":
    main()
