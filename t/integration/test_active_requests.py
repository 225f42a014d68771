#!/usr/bin/env python3
"""http_server_active_requests when workers die and clients invent routes:
real nginx (two workers) with the module and the sidecar.  The backend holds
/slow/ requests until the test lets them go, so the true number in flight is
known; which worker holds which is read from /proc (its upstream sockets).
"""

import http.server
import os
import resource
import signal
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import Stack, main, value, wait_for  # noqa: E402
from test_business_metrics import (gate, open_gates, start_backend,  # noqa
                                   stop_backend)

HTTP = """
    obs_service_name backend-api;
    server {
        listen 127.0.0.1:NGINX_PORT;
        location /slow/ {
            obs_route /slow;
            proxy_read_timeout 120s;
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
        location ~ ^/auto/ { return 200 "auto\\n"; }
        location /configured { return 200 "configured\\n"; }
    }
"""


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def upstream_sockets(stack):
    """{inode} of the TCP connections to the backend."""
    port = "%04X" % stack.backend_port
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = read(table).splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[2].endswith(":" + port) and f[3] == "01":   # ESTABLISHED
                out.add(f[9])
    return out


def held(pid, sockets):
    """How many of the sockets process pid holds."""
    n = 0
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return 0
    for fd in fds:
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in sockets:
            n += 1
    return n


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass            # the answers to a crashed worker find no one


class ActiveRequests(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        # the workers killed with SIGSEGV leave no core files behind
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        cls.stack = Stack(HTTP, workers=2,
                          sidecar_args=["--no-logs", "--no-traces"])
        cls.backend = start_backend(cls.stack.backend_port, QuietServer)
        # last first: held requests go, then nginx and the sidecar stop
        cls.addClassCleanup(stop_backend, cls.backend)
        cls.addClassCleanup(cls.stack.stop)
        cls.addClassCleanup(open_gates)
        cls.stack.start_sidecar()
        cls.stack.start_nginx()

    def get(self, path, failed=None):
        try:
            with urllib.request.urlopen(self.stack.gateway + path,
                                        timeout=130) as r:
                return r.read()
        except Exception:
            if failed is None:
                raise
            failed.append(path)

    def slow(self, name, n, failed):
        """n requests the backend holds until gate(name) opens."""
        threads = []
        for i in range(n):
            t = threading.Thread(
                target=self.get,
                args=("/slow/%s/%d?gate=%s" % (name, i, name), failed),
                daemon=True)
            t.start()
            threads.append(t)
        return threads

    def workers(self):
        """The pids of the workers that take new requests."""
        master = self.stack.nginx.pid
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                stat = read("/proc/%s/stat" % d)
                cmd = read("/proc/%s/cmdline" % d, "rb")
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == master and cmd.startswith(b"nginx: worker process") \
                    and b"shutting down" not in cmd:
                out.append(int(d))
        return out

    def in_flight(self):
        return value(self.stack.metrics(), "http_server_active_requests",
                     route="/slow") or 0

    def expect(self, n, what):
        wait_for(lambda: self.in_flight() == n, timeout=15,
                 what="%s: %d in flight (have %r)" % (what, n,
                                                      self.in_flight()))
        # and it stays so: later snapshots (every worker's) agree
        time.sleep(0.5)
        self.assertEqual(self.in_flight(), n, what)

    def crash_busiest(self, among, connected):
        """Kills (SIGSEGV) the worker of among holding most upstream
        connections once `connected` are up; returns how many it held."""
        sockets = wait_for(lambda: (lambda s: s if len(s) >= connected
                                    else None)(upstream_sockets(self.stack)),
                           what="%d upstream connections" % connected)
        victim = max(among, key=lambda pid: held(pid, sockets))
        lost = held(victim, sockets)
        self.assertGreater(lost, 0)
        os.kill(victim, signal.SIGSEGV)
        wait_for(lambda: victim not in self.workers()
                 and len(self.workers()) == 2, what="a worker in its place")
        return lost

    def test_a_crashed_workers_requests_no_longer_count(self):
        failed = []
        clients = self.slow("crash", 6, failed)
        self.expect(6, "before the crash")

        lost = self.crash_busiest(self.workers(), 6)
        self.expect(6 - lost, "after the crash")
        wait_for(lambda: len(failed) == lost,
                 what="the crashed worker's clients cut off")

        # later traffic and a reload do not bring them back
        self.get("/configured")
        os.kill(self.stack.nginx.pid, signal.SIGHUP)
        time.sleep(1.0)
        self.get("/configured")
        self.expect(6 - lost, "after a reload")

        gate("crash").set()
        for t in clients:
            t.join(30)
        self.expect(0, "all done")

    def test_old_workers_keep_their_counts_when_a_new_one_crashes(self):
        failed = []
        old = self.slow("drain", 3, failed)
        self.expect(3, "before the reload")
        wait_for(lambda: len(upstream_sockets(self.stack)) >= 3,
                 what="3 upstream connections")
        before = set(self.workers())

        os.kill(self.stack.nginx.pid, signal.SIGHUP)
        wait_for(lambda: len(self.workers()) == 2
                 and not set(self.workers()) & before,
                 what="the new workers")

        new = self.slow("fresh", 4, failed)
        self.expect(7, "old and new workers")

        lost = self.crash_busiest(self.workers(), 7)
        self.expect(7 - lost, "a new worker crashed, the old ones drain")

        gate("drain").set()
        for t in old:
            t.join(30)
        self.expect(4 - lost, "the old workers done")

        gate("fresh").set()
        for t in new:
            t.join(30)
        self.expect(0, "all done")
        self.assertEqual(len(failed), lost)

    def test_clients_cannot_take_the_table(self):
        before = value(self.stack.metrics(),
                       "obs_active_requests_overflow_total") or 0
        for i in range(140):
            self.get("/auto/k%s%s" % (chr(97 + i % 26), chr(97 + i // 26)))

        # across a reload, a route of the configuration still has its own
        os.kill(self.stack.nginx.pid, signal.SIGHUP)
        time.sleep(1.0)
        self.get("/configured")

        def settled():
            m = self.stack.metrics()
            return m if value(m, "http_server_active_requests",
                              route="/configured") == 0 else None

        m = wait_for(settled, what="/configured in flight, as its own")
        auto = [ls for (n, ls), v in m.items()
                if n == "http_server_active_requests"
                and dict(ls).get("route", "").startswith("/auto/")]
        self.assertEqual(len(auto), 64)
        self.assertEqual(value(m, "obs_active_requests_overflow_total")
                         - before, 76)


if __name__ == "__main__":
    main()
