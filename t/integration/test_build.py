#!/usr/bin/python3
"""Rebuild safety: a rebuild beside a running nginx crashes no worker, `make`
with nothing changed does nothing, switching nginx trees configures again and
a module built from another nginx version than NGINX_BIN is refused."""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import ROOT, MODULE, NGINX, Stack, wait_for, main  # noqa

NGINX_SRC = os.environ.get("NGINX_SRC", "/usr/share/nginx/src")


def make(*args):
    return subprocess.run(["make", "--no-print-directory", "-C", ROOT]
                          + list(args), capture_output=True, text=True,
                          timeout=600)


class RebuildTest(unittest.TestCase):

    def test_rebuild_beside_running_nginx_crashes_nothing(self):
        self.assertEqual(make("module").returncode, 0)
        stack = Stack("""
    server {
        listen 127.0.0.1:NGINX_PORT;
        location / { obs_service_name rebuild; return 200 "ok\\n"; }
    }
""", workers=2)
        stop = threading.Event()
        failures = []
        count = [0]

        def load():
            while not stop.is_set():
                try:
                    with urllib.request.urlopen(stack.gateway + "/x",
                                                timeout=5) as r:
                        if r.status != 200:
                            failures.append(r.status)
                except Exception as e:
                    failures.append(repr(e))
                count[0] += 1

        try:
            stack.start_nginx()
            before = os.stat(MODULE).st_ino
            t = threading.Thread(target=load)
            t.start()
            # a module source changes: it is compiled again, the .so is
            # linked and installed while the workers serve requests
            os.utime(os.path.join(ROOT, "ngx_obs_module",
                                  "ngx_http_obs_ids.c"))
            out = make("module")
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            # the new workers of a reload map the same old module
            subprocess.run([NGINX, "-p", stack.dir, "-c",
                            os.path.join(stack.dir, "nginx.conf"),
                            "-s", "reload"], check=True)
            n = count[0]
            wait_for(lambda: count[0] > n + 200, what="requests after reload")
            stop.set()
            t.join()
            with open(os.path.join(stack.dir, "logs", "error.log")) as f:
                log = f.read()
            self.assertNotIn("exited on signal", log)
            self.assertEqual(failures, [])
            self.assertIsNone(stack.nginx.poll())
            self.assertNotEqual(os.stat(MODULE).st_ino, before,
                                "the new module was not renamed into place")
        finally:
            stop.set()
            stack.stop()

    def test_make_with_nothing_changed_does_nothing(self):
        self.assertEqual(make("module").returncode, 0)
        st = os.stat(MODULE)
        out = make("module")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.strip(), "")
        self.assertEqual((os.stat(MODULE).st_ino, os.stat(MODULE).st_mtime),
                         (st.st_ino, st.st_mtime))

    def test_sidecar_builds_once_and_tracks_headers(self):
        """The sidecar's sources compile once into a library; `make` with
        nothing changed does nothing, and a touched header rebuilds only
        the objects that include it."""
        self.assertEqual(make("sidecar").returncode, 0)
        out = make("sidecar")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("Nothing to be done", out.stdout)
        os.utime(os.path.join(ROOT, "common", "pb.h"))
        plan = make("-n", "sidecar").stdout
        compiled = sorted(os.path.basename(w) for w in plan.split()
                          if w.endswith(".o") and "-o" in plan)
        users = sorted(f[:-2] + ".o"
                       for top in ("sidecar", "exporter", "common")
                       for d, _, files in os.walk(os.path.join(ROOT, top))
                       for f in files
                       if f.endswith(".c") and '"pb.h"' in open(
                           os.path.join(d, f)).read())
        self.assertTrue(users)
        for obj in users:
            self.assertIn(obj, compiled)
        self.assertNotIn("ingest.c", plan)        # includes no pb.h
        self.assertEqual(make("sidecar").returncode, 0)
        for target in ("test_sidecar", "bench_sidecar"):
            path = os.path.join(ROOT, "build", target)
            self.assertEqual(make(path).returncode, 0, target)
            recipe = make("-n", "-W", "sidecar/ingest/ingest.c", path).stdout
            self.assertNotIn("sidecar/aggregate/aggregate.c", recipe, target)
            self.assertIn("sidecar/ingest/ingest.c", recipe, target)

    def test_another_nginx_tree_configures_again(self):
        # a build directory of its own, configured as of a second ago
        d = tempfile.mkdtemp(prefix="obs-build-")
        try:
            build = "BUILD=" + os.path.join(d, "build")
            other = os.path.join(d, "nginx-src")
            os.symlink(NGINX_SRC, other)
            make("-n", "module", build)        # writes the stamp
            objs = os.path.join(d, "build", "nginx", "objs")
            os.makedirs(objs)
            open(os.path.join(objs, "Makefile"), "w").close()
            now = time.time()
            os.utime(os.path.join(d, "build", "nginx-src.stamp"),
                     (now - 2, now - 2))
            os.utime(os.path.join(objs, "Makefile"), (now - 1, now - 1))

            self.assertNotIn("./configure", make("-n", "module", build).stdout)
            switched = make("-n", "module", build, "NGINX_SRC=" + other)
            self.assertIn("./configure", switched.stdout)
        finally:
            shutil.rmtree(d)

    def test_version_mismatch_is_refused(self):
        d = tempfile.mkdtemp(prefix="obs-build-")
        try:
            os.makedirs(os.path.join(d, "src", "core"))
            with open(os.path.join(d, "src", "core", "nginx.h"), "w") as f:
                f.write('#define nginx_version 1099001\n'
                        '#define NGINX_VERSION "1.99.1"\n')
            out = make("module", "NGINX_SRC=" + d)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("is nginx 1.99.1 but NGINX_BIN", out.stderr)
            self.assertNotIn("./configure", out.stdout)
        finally:
            shutil.rmtree(d)


if __name__ == "__main__":
    main()
