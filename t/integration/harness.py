"""Shared pieces of the integration tests: free ports, processes that are
always stopped, nginx + module + sidecar + Prometheus started for real, and
the Prometheus text format parsed by a small independent reader."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, "build")
MODULE = os.path.join(BUILD, "ngx_http_obs_module.so")
SIDECAR = os.path.join(BUILD, "obs-sidecar")
NGINX = os.environ.get("NGINX_BIN", "/usr/sbin/nginx")
HELPERS = os.path.join(ROOT, "t", "helpers")

sys.path.insert(0, HELPERS)
import obs_contract  # noqa: E402  (the contract: framing, reasons, families)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_group():
    """The group nginx's workers write the records socket as: nobody's when
    nginx starts as root, else None (the sidecar's own group will do)."""
    if os.geteuid() != 0:
        return None
    import grp
    import pwd
    return grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name


def wait_for(predicate, timeout=20.0, interval=0.1, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:  # the thing is still starting
            last = e
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def http_get(url, headers=None, timeout=5):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, dict(r.headers), r.read()


def request(url, method="GET", headers=None, body=None):
    req = urllib.request.Request(url, method=method, headers=headers or {},
                                 data=body)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# A gateway with the two services of the brief in front of one backend
# server block: backend-api (routes templated automatically) and ml-engine
# (one fixed route).
GATEWAY_HTTP = """
    obs_tenant $http_x_tenant_id;
    server {
        listen 127.0.0.1:NGINX_PORT;
        location /api/ {
            obs_service_name backend-api;
            obs_route_auto on;
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
        location /ml/ {
            obs_service_name ml-engine;
            obs_route /ml/predict;
            proxy_pass http://127.0.0.1:BACKEND_PORT;
        }
    }
    server {
        listen 127.0.0.1:BACKEND_PORT;
        obs off;
        location /api/ { return 200 "ok\\n"; }
        location /api/users/ { return 200 "user\\n"; }
        location /api/orders { return 201 "created\\n"; }
        location /api/fail { return 503 "down\\n"; }
        location /api/limited { return 429 "slow down\\n"; }
        location /ml/ { return 200 "prediction\\n"; }
    }
"""


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_text(body):
    """{(name, frozenset(labels)): value} from text exposition 0.0.4."""
    out = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise AssertionError("unparsable line: %r" % line)
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(samples, name, **labels):
    want = set(labels.items())
    total = None
    for (n, ls), v in samples.items():
        if n == name and want <= set(ls):
            total = (total or 0) + v
    return total


class Stack:
    """nginx with the module, a sidecar, and optionally Prometheus."""

    def __init__(self, nginx_http_config, sidecar_args=(), workers=2,
                 sidecar_config=None, records_address=None, flush="100ms"):
        self.dir = tempfile.mkdtemp(prefix="obs-it-")
        os.chmod(self.dir, 0o755)     # nginx workers run as another user
        self.procs = []
        self.sock = os.path.join(self.dir, "records.sock")
        self.metrics_port = free_port()
        self.nginx_port = free_port()
        self.backend_port = free_port()
        self.sidecar_args = list(sidecar_args)
        self.sidecar_config = sidecar_config
        self.nginx_http_config = nginx_http_config
        self.workers = workers
        self.records_address = records_address or "unix:" + self.sock
        self.flush = flush

    @property
    def metrics_url(self):
        return "http://127.0.0.1:%d/metrics" % self.metrics_port

    @property
    def gateway(self):
        return "http://127.0.0.1:%d" % self.nginx_port

    def start_sidecar(self, stdout=None):
        args = [SIDECAR, "--listen", "127.0.0.1:%d" % self.metrics_port]
        if "--ingest" not in self.sidecar_args:
            args += ["--ingest", "unix:" + self.sock]
        if worker_group():
            args += ["--ingest-group", worker_group()]
        if self.sidecar_config is not None:
            path = os.path.join(self.dir, "sidecar.json")
            with open(path, "w") as f:
                json.dump(self.sidecar_config, f)
            args += ["--config", path]
        with open(os.path.join(self.dir, "sidecar.log"), "w") as log:
            self.sidecar = subprocess.Popen(args + self.sidecar_args,
                                            stdout=stdout, stderr=log)
        self.procs.append(self.sidecar)
        wait_for(lambda: http_get(self.metrics_url.replace(
            "/metrics", "/readyz"))[0] == 200, what="sidecar ready")

    def start_nginx(self):
        for d in ("logs", "tmp"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        conf = """
load_module %(module)s;
worker_processes %(workers)d;
daemon off;
master_process on;
error_log %(dir)s/logs/error.log warn;
pid %(dir)s/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %(dir)s/tmp;
    proxy_temp_path %(dir)s/tmp;
    obs_sidecar %(addr)s flush=%(flush)s;
%(http)s
}
""" % {"module": MODULE, "workers": self.workers, "dir": self.dir,
       "addr": self.records_address, "flush": self.flush,
       "http": self.nginx_http_config.replace(
           "NGINX_PORT", str(self.nginx_port)).replace(
           "BACKEND_PORT", str(self.backend_port))}
        path = os.path.join(self.dir, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        self.nginx = subprocess.Popen([NGINX, "-p", self.dir, "-c", path])
        self.procs.append(self.nginx)
        wait_for(lambda: socket.create_connection(
            ("127.0.0.1", self.nginx_port), timeout=1).close() or True,
            what="nginx listening")

    def start_prometheus(self, scrape_configs, features, rule_files=()):
        """Starts a Prometheus; returns it for queries."""
        prom = Prometheus(self, scrape_configs, features, rule_files)
        self.procs.append(prom.process)
        prom.wait_ready()
        return prom

    def metrics(self):
        return parse_text(http_get(self.metrics_url)[2].decode())

    def stop(self):
        stop_all(self.procs)
        if os.environ.get("OBS_KEEP_TMP"):
            print("kept", self.dir, file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def stop_all(procs):
    """Stops the processes, the last started first: SIGTERM, then SIGKILL
    after 10 s."""
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def check_config(config=None, args=(), env=None):
    """obs-sidecar --check-config with config as its --config file (when
    given), the flags and the environment's additions; the finished
    process (exit 2: refused, the reason on stderr)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        if config is not None:
            json.dump(config, f)
            f.flush()
            args = ["--config", f.name] + list(args)
        return subprocess.run([SIDECAR, "--check-config"] + list(args),
                              env=dict(os.environ, **(env or {})),
                              capture_output=True, text=True)


def destination_stack(test, destination, cfg, http=None, **kw):
    """nginx and a sidecar that sends to one destination (cfg: its
    settings; log lines and spans go nowhere), stopped when test ends."""
    stack = Stack(GATEWAY_HTTP if http is None else http, sidecar_config={
        destination: cfg, "logs_file": "/dev/null",
        "spans_file": "/dev/null"}, **kw)
    test.addCleanup(stack.stop)
    stack.start_sidecar()
    stack.start_nginx()
    return stack


class Prometheus:
    """One real Prometheus server of a Stack."""

    def __init__(self, stack, scrape_configs, features, rule_files=()):
        self.port = free_port()
        base = os.path.join(stack.dir, "prometheus-%d" % self.port)
        os.makedirs(base)
        cfg = os.path.join(base, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    "rule_files: %s\n" % json.dumps(list(rule_files))
                    + "scrape_configs:\n" + scrape_configs)
        log = open(os.path.join(base, "prometheus.log"), "w")
        args = ["prometheus", "--config.file=" + cfg,
                "--storage.tsdb.path=" + os.path.join(base, "tsdb"),
                "--web.listen-address=127.0.0.1:%d" % self.port]
        if features:
            args.append("--enable-feature=" + ",".join(features))
        self.process = subprocess.Popen(args, stdout=log, stderr=log)
        log.close()

    def wait_ready(self):
        wait_for(lambda: http_get(self.url("-/ready"))[0] == 200,
                 what="prometheus ready")

    def url(self, path, **params):
        url = "http://127.0.0.1:%d/%s" % (self.port, path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        return url

    def query(self, path, **params):
        status, _, body = http_get(self.url(path, **params))
        data = json.loads(body)
        if data.get("status") != "success":
            raise AssertionError("query failed: %s" % body)
        return data["data"]


def main():
    """Runs the unittest module and ends with the plain 'N passed, N failed'
    line that CI reads."""
    prog = unittest.main(module="__main__", exit=False, verbosity=2)
    r = prog.result
    failed = len(r.failures) + len(r.errors)
    print("%s: %d passed, %d failed" % (
        os.path.basename(sys.argv[0]), r.testsRun - failed, failed))
    sys.exit(1 if failed else 0)
