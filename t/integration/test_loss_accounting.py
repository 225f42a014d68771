#!/usr/bin/python3
"""Every record is delivered or counted dropped exactly once (issue #11,
item 6), with real nginx + module + sidecar: across a sidecar restart (the
new sidecar adds no old drops), a reload and a stop of nginx while the
sidecar is stalled (what workers still hold at exit reaches
obs_records_dropped_total{reason="module_exit"})."""

import http.client
import os
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Stack, value, wait_for, main  # noqa

NGINX_HTTP = """
    server {
        listen 127.0.0.1:NGINX_PORT;
        obs_service_name loss-test;
        location / { return 200 "ok\\n"; }
    }
"""


def drive(stack, n, pause=0):
    """n requests over one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.nginx_port,
                                      timeout=10)
    for i in range(n):
        time.sleep(pause)
        conn.request("GET", "/r/%d" % (i % 7))
        r = conn.getresponse()
        r.read()
        assert r.status == 200
        if r.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", stack.nginx_port,
                                              timeout=10)
    conn.close()


def accounted(stack):
    """(received, dropped by reason) as the sidecar reports them."""
    m = stack.metrics()
    dropped = {}
    for (name, labels), v in m.items():
        if name == "obs_records_dropped_total":
            dropped[dict(labels)["reason"]] = v
    return value(m, "obs_records_received_total") or 0, dropped


def fill_queue(path):
    """Fills the stalled sidecar's socket queue with junk (each counted
    malformed later), so that nginx's sends fail as under a real stall."""
    n = 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        while True:
            try:
                s.sendto(b"\xff" * 64, path)
                n += 1
            except BlockingIOError:
                return n


def children(pid):
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.add(int(d))
    return out


class LossAccountingTest(unittest.TestCase):

    def start(self, flush="50ms", workers=2):
        stack = Stack(NGINX_HTTP, flush=flush, workers=workers,
                      sidecar_args=["--logs-file", os.devnull,
                                    "--spans-file", os.devnull])
        self.addCleanup(stack.stop)
        self.addCleanup(self.resume, stack)
        stack.start_sidecar()
        stack.start_nginx()
        return stack

    def resume(self, stack):
        if stack.sidecar.poll() is None:
            stack.sidecar.send_signal(signal.SIGCONT)

    def stall_and_drive(self, stack, n, nginx_signal):
        """With the sidecar stalled and its queue full, n requests, then
        the signal to nginx; the sidecar resumes once the workers that
        served them have exited (so they exit with records in hand)."""
        workers = wait_for(lambda: children(stack.nginx.pid),
                           what="nginx workers")
        stack.sidecar.send_signal(signal.SIGSTOP)
        fill_queue(stack.sock)
        drive(stack, n)
        stack.nginx.send_signal(nginx_signal)
        wait_for(lambda: not (children(stack.nginx.pid) & workers),
                 interval=0.02, what="the workers to exit")
        stack.sidecar.send_signal(signal.SIGCONT)

    def settle(self, stack, total, what):
        """Waits until every record is received or counted dropped, then
        checks that the sum stays exactly there."""
        def done():
            received, dropped = accounted(stack)
            return received + sum(dropped.values()) >= total
        wait_for(done, timeout=30, what=what)
        time.sleep(1)
        received, dropped = accounted(stack)
        self.assertEqual(received + sum(dropped.values()), total,
                         "%s: received %d, dropped %r" % (what, received,
                                                           dropped))
        return received, dropped

    def test_a_restarted_sidecar_adds_no_old_drops(self):
        stack = self.start(flush="50ms buffer=4k", workers=1)
        stack.sidecar.send_signal(signal.SIGSTOP)
        fill_queue(stack.sock)
        drive(stack, 400)
        stack.sidecar.send_signal(signal.SIGCONT)
        _, dropped = self.settle(stack, 400, "400 records before the restart")
        self.assertGreater(dropped.get("module_buffer_full", 0), 0,
                           "the stall made nginx drop records")

        stack.sidecar.send_signal(signal.SIGTERM)
        self.assertEqual(stack.sidecar.wait(timeout=10), 0)
        stack.start_sidecar()
        drive(stack, 50, pause=0.03)    # slow enough for a 4k buffer
        received, dropped = self.settle(stack, 50, "50 records after it")
        self.assertEqual(received, 50, dropped)
        self.assertEqual(sum(dropped.values()), 0,
                         "drops reported to the old sidecar count once")

    def test_records_held_at_stop_are_counted(self):
        """nginx -s quit while the sidecar is stalled: what the workers
        still hold is counted, and the master reports it once the sidecar
        reads again."""
        stack = self.start(flush="60s")
        self.stall_and_drive(stack, 3000, signal.SIGQUIT)
        self.assertEqual(stack.nginx.wait(timeout=20), 0)

        received, dropped = self.settle(stack, 3000, "3000 records")
        self.assertGreater(dropped.get("module_exit", 0), 0,
                           "records held at exit are counted")

    def test_reload_with_a_stalled_sidecar_counts_once(self):
        stack = self.start(flush="60s")
        self.stall_and_drive(stack, 2000, signal.SIGHUP)

        drive(stack, 100)      # the new workers carry the old ones' counts
        stack.nginx.send_signal(signal.SIGHUP)      # and send what they hold
        received, dropped = self.settle(stack, 2100, "2100 records")
        self.assertGreater(dropped.get("module_exit", 0), 0,
                           "the old workers' held records are counted")


if __name__ == "__main__":
    main()
