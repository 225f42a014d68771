#!/usr/bin/python3
"""The README's "Add it to an existing nginx", run as written: its
nginx.conf passes `nginx -t` without a warning, its sidecar command line
starts the sidecar, and its curl commands print the expected series.  The
blocks are read from README.md between their markers, so the README
cannot go stale; only what must differ on a test machine is replaced
(paths, ports, and an nginx that runs as this process)."""

import grp
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (ROOT, MODULE, SIDECAR, NGINX, free_port,  # noqa: E402
                     wait_for, http_get, stop_all, main)


def block(text, name):
    """The fenced block between <!-- quickstart:NAME:begin/end -->."""
    m = re.search(r"<!-- quickstart:%s:begin -->\n```[a-z]*\n(.*?)```\n"
                  r"<!-- quickstart:%s:end -->" % (name, name), text, re.S)
    if not m:
        raise AssertionError("README.md: no quickstart:%s block" % name)
    return m.group(1)


def commands(sh):
    """The shell block's commands, continuation lines joined."""
    return [c.strip() for c in sh.replace("\\\n", " ").splitlines()
            if c.strip()]


def replace(text, old, new):
    if old not in text:
        raise AssertionError("README block lost %r (the test replaces it)"
                             % old)
    return text.replace(old, new)


class ReadmeQuickStart(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        cls.nginx_conf = block(readme, "nginx")
        cls.sidecar_sh = commands(block(readme, "sidecar"))
        cls.check_sh = commands(block(readme, "check"))
        cls.expect = block(readme, "expect").splitlines()

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="obs-readme-")
        os.chmod(self.dir, 0o755)         # nginx's workers read the socket
        for d in ("logs", "tmp"):
            os.mkdir(os.path.join(self.dir, d))
        self.procs = []
        self.addCleanup(self.stop)
        self.sock = os.path.join(self.dir, "records.sock")
        self.gateway_port = free_port()
        self.backend_port = free_port()
        self.metrics_port = free_port()

    def stop(self):
        if os.path.exists(os.path.join(self.dir, "nginx.pid")):
            subprocess.run(self.nginx_cmd() + ["-s", "quit"],
                           capture_output=True)
        stop_all(self.procs)
        shutil.rmtree(self.dir, ignore_errors=True)

    def conf(self):
        """The README's nginx.conf with this machine's paths and ports, and
        a backend answering 200 where it proxies."""
        c = self.nginx_conf
        c = replace(c, "load_module modules/ngx_http_obs_module.so;",
                    "load_module %s;" % MODULE)
        c = replace(c, "unix:/run/obs/records.sock", "unix:" + self.sock)
        c = replace(c, "listen 8080;",
                    "listen 127.0.0.1:%d;" % self.gateway_port)
        c = replace(c, "http://127.0.0.1:8001;",
                    "http://127.0.0.1:%d;" % self.backend_port)
        if os.geteuid() != 0:
            c = replace(c, "user www-data;\n", "")
        # nginx's compiled-in log and temporary paths are the system's
        c = replace(c, "http {\n", """http {
    access_log %(d)s/logs/access.log;
    client_body_temp_path %(d)s/tmp;
    proxy_temp_path %(d)s/tmp;
    server {
        listen 127.0.0.1:%(b)d;
        obs off;
        location / { return 200 "your service\\n"; }
    }
""" % {"d": self.dir, "b": self.backend_port})
        path = os.path.join(self.dir, "nginx.conf")
        with open(path, "w") as f:
            f.write(c)
        return path

    def nginx_cmd(self):
        return [NGINX, "-p", self.dir, "-c",
                os.path.join(self.dir, "nginx.conf"),
                "-e", os.path.join(self.dir, "logs", "error.log"),
                "-g", "pid %s/nginx.pid;" % self.dir]

    def sidecar_cmd(self):
        """The README's sidecar command line, with the test's addresses."""
        self.assertEqual(self.sidecar_sh[0], "sudo mkdir -p /run/obs")
        self.assertEqual(len(self.sidecar_sh), 2, self.sidecar_sh)
        args = shlex.split(self.sidecar_sh[1])
        self.assertEqual(args[:2], ["sudo", "build/obs-sidecar"])
        args = [SIDECAR] + args[2:]
        swap = {"--ingest": "unix:" + self.sock,
                "--listen": "127.0.0.1:%d" % self.metrics_port,
                "--spans-file": os.path.join(self.dir, "spans.jsonl")}
        if os.geteuid() != 0:   # only root may give the socket any group
            swap["--ingest-group"] = grp.getgrgid(os.getegid()).gr_name
        for i, a in enumerate(args):
            if a in swap:
                args[i + 1] = swap.pop(a)
        self.assertEqual(swap, {}, "README's sidecar lost these flags")
        return args

    def shell(self, cmd):
        """A command of the README's check block, on the test's ports."""
        cmd = replace(cmd, "127.0.0.1:8080", "127.0.0.1:%d"
                      % self.gateway_port) if "8080" in cmd else cmd
        cmd = cmd.replace("127.0.0.1:9145", "127.0.0.1:%d"
                          % self.metrics_port)
        cmd = cmd.replace("sleep 2;", "")   # the test waits for the series
        return subprocess.run(["bash", "-c", "set -o pipefail; " + cmd],
                              capture_output=True, text=True, timeout=30)

    def test_readme_config_runs_as_written(self):
        # nginx -t: valid, and not one warning (a directive with no effect,
        # a user directive ignored)
        conf = self.conf()
        t = subprocess.run(self.nginx_cmd() + ["-t"], capture_output=True,
                           text=True)
        self.assertEqual(t.returncode, 0, t.stderr)
        self.assertIn("test is successful", t.stderr)
        self.assertNotIn("[warn]", t.stderr)
        self.assertNotIn("[emerg]", t.stderr)

        with open(os.path.join(self.dir, "sidecar.out"), "w") as log, \
                open(os.path.join(self.dir, "sidecar.err"), "w") as err:
            sidecar = subprocess.Popen(self.sidecar_cmd(), stdout=log,
                                       stderr=err)
        self.procs.append(sidecar)
        wait_for(lambda: http_get("http://127.0.0.1:%d/readyz"
                                  % self.metrics_port)[0] == 200,
                 what="sidecar ready")

        nginx = subprocess.run(self.nginx_cmd(), capture_output=True,
                               text=True)
        self.assertEqual(nginx.returncode, 0, nginx.stderr)
        wait_for(lambda: os.path.exists(
            os.path.join(self.dir, "nginx.pid")), what="nginx started")
        with open(conf) as f:
            self.assertIn("load_module %s;" % MODULE, f.read())

        self.assertEqual(len(self.check_sh), 2, self.check_sh)
        curl = self.shell(self.check_sh[0])
        self.assertEqual(curl.returncode, 0, curl.stderr)
        self.assertEqual(curl.stdout, "your service\n")

        def series():
            r = self.shell(self.check_sh[1])
            return r.stdout.splitlines() if r.returncode == 0 else None
        got = wait_for(series, timeout=15, what="the README's series")
        self.assertEqual(got, self.expect)

        # "The sidecar prints the request's JSON log line"
        def line():
            with open(os.path.join(self.dir, "sidecar.out")) as f:
                return [x for x in f if '"tenant_id":"acme"' in x]
        lines = wait_for(line, timeout=15, what="the request's log line")
        self.assertIn('"endpoint":"/api/v1/users/{id}"', lines[0])
        self.assertIn('"service":"backend-api"', lines[0])
        with open(os.path.join(self.dir, "logs", "error.log")) as f:
            errors = f.read()
        self.assertNotIn("obs:", errors)


if __name__ == "__main__":
    main()
