#!/usr/bin/python3
"""Deployment files: the compose file passes `docker-compose config`, pins
its images and health-checks its services; the Kubernetes manifests parse,
share the socket through an emptyDir, and carry exactly the tested rules;
the sidecar configurations they ship pass --check-config.

Fit for a shared cluster: every scrape job is one the alerts look at
(STACK_JOBS), nginx's and the sidecar's targets are paired by the label
gateway; the sidecar's memory limit holds what its settings let it keep
(deploy/k8s/sidecar_memory.py); stopping drains nginx before the sidecar;
a PodDisruptionBudget, topology spread, a NetworkPolicy that keeps /metrics
to the Prometheus of parameters.yaml, which also sets the release label;
receiver credentials from a Secret; the tenant from a verified JWT by
default: the shipped nginx.conf files run with the module and label a
request with its token's tenant, never with the header a client sent; and
the audit trail on: every API request an event of a chain that
--verify-audit accepts, the client a pseudonym, the file on a volume that
outlives the container, each key from a secret only its reader gets."""

import base64
import glob
import hashlib
import hmac
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

import yaml

sys.path.insert(0, os.path.dirname(__file__))
from harness import (ROOT, SIDECAR, MODULE, NGINX, Stack, free_port,  # noqa
                     request, value, wait_for, main)

COMPOSE = os.path.join(ROOT, "deploy", "compose", "docker-compose.yml")
K8S = os.path.join(ROOT, "deploy", "k8s")
DEV_TOKEN = os.path.join(ROOT, "deploy", "compose", "dev-token.sh")
AUDIT_KEYS = os.path.join(ROOT, "deploy", "compose", "audit-keys.sh")
sys.path.insert(0, os.path.join(ROOT, "alert-rules"))
sys.path.insert(0, K8S)
import generate  # noqa: E402
import sidecar_memory  # noqa: E402

PARAMS = generate.PARAMETERS


def read(path):
    with open(path) as f:
        return f.read()


def dev_token(secrets, tenant):
    """A token from deploy/compose/dev-token.sh (which makes the key pair
    in secrets/ on its first run)."""
    return subprocess.run([DEV_TOKEN, tenant], capture_output=True,
                          text=True, check=True,
                          env=dict(os.environ, OBS_SECRETS_DIR=secrets)
                          ).stdout.strip()


def audit_keys(secrets):
    """deploy/compose/audit-keys.sh's keys in secrets/: (chain key file,
    client key file)."""
    subprocess.run([AUDIT_KEYS], capture_output=True, check=True,
                   env=dict(os.environ, OBS_SECRETS_DIR=secrets))
    return (os.path.join(secrets, "audit_key"),
            os.path.join(secrets, "audit_client_key"))


def first_line(path):
    with open(path, "rb") as f:
        return f.read().split(b"\n")[0]


class Backend(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args):
        pass


def run_shipped_nginx_conf(test, conf, keys):
    """The shipped nginx.conf with this machine's module, a local backend
    and a sidecar keeping an audit trail (keys from audit-keys.sh), changed
    only where a test must (paths, ports, the cluster's names; "resolve"
    needs 1.27.3).  Returns (gateway URL, stub status URL, stack)."""
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    test.addCleanup(backend.server_close)
    test.addCleanup(backend.shutdown)
    stack = Stack("", sidecar_args=["--no-logs", "--no-traces"])
    test.addCleanup(stack.stop)
    stack.audit_key, stack.audit_client_key = audit_keys(stack.dir)
    stack.audit_file = os.path.join(stack.dir, "audit.log")
    stack.sidecar_args += ["--audit-file", stack.audit_file,
                           "--audit-key-file", stack.audit_key]
    stack.start_sidecar()
    port, stub = free_port(), free_port()
    conf = conf.replace("load_module modules/ngx_http_obs_module.so",
                        "load_module " + MODULE)
    conf = re.sub(r"pid \S+;", "pid %s/nginx.pid;" % stack.dir, conf)
    conf = re.sub(r"access_log /dev/stdout \w+;", "access_log off;", conf)
    conf = conf.replace("unix:/run/obs/records.sock", "unix:" + stack.sock)
    conf = re.sub(r"obs_jwt_keys \S+;", "obs_jwt_keys %s;" % keys, conf)
    conf = re.sub(r" hmac=\S+;", " hmac=%s;" % stack.audit_client_key, conf)
    conf = conf.replace("listen 8080;", "listen 127.0.0.1:%d;" % port)
    conf = conf.replace("listen 127.0.0.1:8081;",
                        "listen 127.0.0.1:%d;" % stub)
    conf = re.sub(r" resolve;", ";", conf)
    conf = re.sub(r"resolver \S+", "resolver 127.0.0.1", conf)
    conf = re.sub(r"server [\w.-]+:8000", "server 127.0.0.1:%d"
                  % backend.server_port, conf)
    os.makedirs(os.path.join(stack.dir, "logs"), exist_ok=True)
    path = os.path.join(stack.dir, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    log = open(os.path.join(stack.dir, "nginx.log"), "w")
    test.addCleanup(log.close)
    p = subprocess.Popen([NGINX, "-p", stack.dir, "-c", path,
                          "-g", "daemon off;"], stdout=log, stderr=log)
    stack.procs.append(p)
    gateway = "http://127.0.0.1:%d" % port
    wait_for(lambda: request(gateway + "/healthz")[0] == 200,
             what="nginx with the shipped configuration")
    return gateway, "http://127.0.0.1:%d/stub_status" % stub, stack


def tenants_seen(test, conf, keys, token):
    """{tenant: requests} for one request with the token, one claiming a
    tenant by header only, one with a forged token; the three are events of
    the audit trail (audit_trail_of)."""
    gateway, stub, stack = run_shipped_nginx_conf(test, conf, keys)
    head, body, _ = token.split(".")
    forged = head + "." + body + "." + "A" * 86
    for headers in ({"Authorization": "Bearer " + token},
                    {"X-Tenant-ID": "someone-else"},
                    {"Authorization": "Bearer " + forged,
                     "X-Tenant-ID": "someone-else"}):
        test.assertEqual(request(gateway + "/api/v1/users/7",
                                 headers=headers)[0], 200)
    test.assertIn(b"Active connections", request(stub)[1])
    wait_for(lambda: value(stack.metrics(), "http_server_requests_total")
             == 3, what="3 records")
    audit_trail_of(test, stack, token)
    return {dict(ls)["tenant"]: v for (n, ls), v in stack.metrics().items()
            if n == "http_server_requests_total"}


def audit_trail_of(test, stack, token):
    """tenants_seen's requests in the trail: the verified tenant or
    "unverified" (never the header's), the client only as its pseudonym
    under the client key, no token, /healthz not audited, and a chain that
    --verify-audit accepts under the chain key."""
    def requests():
        if not os.path.exists(stack.audit_file):
            return []
        with open(stack.audit_file) as f:
            return [e for e in map(json.loads, f) if e["event"] == "request"]
    events = wait_for(lambda: len(requests()) == 3 and requests(),
                      what="3 requests in the audit trail")
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1]
                                                 + "=="))
    # (nginx's workers send their own batches: the file's order may differ)
    test.assertEqual(sorted((e["tenant"], e["method"], e["status"],
                             e["decision"], e["audited_by"]) for e in events),
                     [(claims["tenant_id"], "GET", 200, "allowed",
                       "obs_audit")]
                     + [("unverified", "GET", 200, "allowed", "obs_audit")]
                     * 2)
    pseudonym = hmac.new(first_line(stack.audit_client_key), b"127.0.0.1",
                         hashlib.sha256).hexdigest()
    test.assertEqual({e["client"] for e in events}, {pseudonym})
    test.assertEqual(sorted(e["user"] for e in events),
                     [claims["sub"], "unverified", "unverified"])
    with open(stack.audit_file) as f:
        text = f.read()
    for secret in (token.split(".")[2], "someone-else", "127.0.0.1"):
        test.assertNotIn(secret, text)
    p = subprocess.run([SIDECAR, "--verify-audit", stack.audit_file,
                        "--audit-key-file", stack.audit_key],
                       capture_output=True, text=True)
    test.assertEqual(p.returncode, 0, p.stdout + p.stderr)
    test.assertIn("audit chain holds", p.stdout)


class ComposeTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        with open(COMPOSE) as f:
            cls.doc = yaml.safe_load(f)

    @unittest.skipUnless(subprocess.run(["which", "docker-compose"],
                                        capture_output=True).returncode == 0,
                         "docker-compose is not installed")
    def test_docker_compose_config_passes(self):
        p = subprocess.run(["docker-compose", "-f", COMPOSE, "config"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_the_whole_stack_is_there(self):
        want = {"gateway", "obs-sidecar", "backend-api", "ml-engine",
                "prometheus", "alertmanager", "grafana", "loki", "jaeger",
                "node-exporter", "cadvisor", "postgres", "postgres-exporter",
                "redis", "redis-exporter", "nginx-exporter"}
        self.assertEqual(set(self.doc["services"]), want)

    def test_images_are_pinned(self):
        for name, svc in self.doc["services"].items():
            if "build" in svc or svc["image"].startswith("obs-"):
                continue        # built here from this repository
            image = svc["image"]
            self.assertRegex(image, r":[vV]?\d", "%s: %s" % (name, image))
            self.assertNotIn(":latest", image)

    def test_health_checks_network_volumes(self):
        for name in ("gateway", "obs-sidecar", "prometheus", "alertmanager",
                     "grafana", "loki", "jaeger", "postgres", "redis"):
            self.assertIn("healthcheck", self.doc["services"][name], name)
        for name, svc in self.doc["services"].items():
            if name == "nginx-exporter":
                # in the gateway's network namespace, as in its pod
                self.assertEqual(svc["network_mode"], "service:gateway")
                continue
            self.assertEqual(svc.get("networks"), ["obs"], name)
        self.assertIn("obs-run", self.doc["volumes"])
        for name in ("gateway", "obs-sidecar"):
            self.assertIn("obs-run:/run/obs",
                          self.doc["services"][name]["volumes"])

    def test_no_secret_in_the_repository(self):
        for name, svc in self.doc["services"].items():
            for key in (svc.get("environment") or {}):
                if re.search(r"PASSWORD|TOKEN|SECRET|_KEY", key):
                    self.assertTrue(key.endswith("_FILE"),
                                    "%s: %s holds a secret inline"
                                    % (name, key))
        ignored = subprocess.run(
            ["git", "-C", ROOT, "check-ignore", "-q",
             "deploy/compose/secrets/postgres_password"])
        self.assertEqual(ignored.returncode, 0)

    def test_every_scrape_job_is_one_the_alerts_look_at(self):
        prom = yaml.safe_load(read(os.path.join(
            ROOT, "deploy", "compose", "prometheus.yml")))
        jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
        for name in jobs:
            self.assertRegex(name, "^(%s)$" % PARAMS["STACK_JOBS"])
        self.assertEqual(set(prom["rule_files"]), {
            "/etc/prometheus/rules/%s" % f
            for f in ("recording.yml", "alerts.yml", "slo.yml")})
        # nginx's requests and its sidecar's records, paired by "gateway"
        labels = [jobs[PARAMS[j]]["static_configs"][0]["labels"]
                  for j in ("SIDECAR_JOB", "NGINX_JOB")]
        self.assertEqual(labels[0]["gateway"], labels[1]["gateway"])
        target = jobs[PARAMS["NGINX_JOB"]]["static_configs"][0]["targets"][0]
        exporter = self.doc["services"]["nginx-exporter"]
        self.assertEqual(target, "gateway:9113")
        uri = re.search(r"--nginx.scrape-uri=http://127.0.0.1:(\d+)"
                        r"/stub_status", " ".join(exporter["command"]))
        conf = read(os.path.join(ROOT, "deploy", "compose", "nginx.conf"))
        self.assertIn("listen 127.0.0.1:%s;" % uri.group(1), conf)
        # the 30-day error budget needs 30 days of samples
        retention = [a for a in self.doc["services"]["prometheus"]["command"]
                     if "retention.time" in a][0]
        self.assertGreaterEqual(int(re.search(r"(\d+)d", retention)
                                    .group(1)), 30)

    def test_the_tenant_comes_from_a_verified_token(self):
        """The shipped compose nginx.conf, its key from dev-token.sh: the
        token's tenant counts, a header or a forged token never does."""
        conf = read(os.path.join(ROOT, "deploy", "compose", "nginx.conf"))
        self.assertIn("obs_tenant $obs_jwt_tenant;", conf)
        self.assertNotIn("$http_x_tenant_id", conf)
        keys = re.search(r"obs_jwt_keys (\S+);", conf).group(1)
        gw = self.doc["services"]["gateway"]
        self.assertEqual(keys, "/run/secrets/jwt_keys")
        self.assertIn("jwt_keys", gw["secrets"])
        self.assertEqual(self.doc["secrets"]["jwt_keys"]["file"],
                         "./secrets/jwt_keys")
        secrets = tempfile.mkdtemp(prefix="obs-jwt-")
        self.addCleanup(shutil.rmtree, secrets, True)
        token = dev_token(secrets, "acme")
        self.assertEqual(os.stat(os.path.join(
            secrets, "jwt_signing_key.pem")).st_mode & 0o077, 0)
        seen = tenants_seen(self, conf, os.path.join(secrets, "jwt_keys"),
                            token)
        self.assertEqual(seen, {"acme": 1, "unverified": 2})
        # and the private key never leaves secrets/, which git ignores
        ignored = subprocess.run(
            ["git", "-C", ROOT, "check-ignore", "-q",
             "deploy/compose/secrets/jwt_signing_key.pem"])
        self.assertEqual(ignored.returncode, 0)

    def test_the_audit_trail_is_on(self):
        """nginx audits the API with the clients' pseudonyms, the sidecar
        keeps the chain on a named volume of its own (created for its user
        by the image) and ships it to Loki; each key is a secret only its
        reader gets, made by audit-keys.sh into the ignored secrets/."""
        conf = read(os.path.join(ROOT, "deploy", "compose", "nginx.conf"))
        self.assertRegex(conf, r"listen 8080;[^}]*\n        obs_audit on "
                         r"hmac=/run/secrets/audit_client_key;")
        self.assertIn("location = /healthz { obs off; obs_audit off;", conf)
        services = self.doc["services"]
        gw, side = services["gateway"], services["obs-sidecar"]
        self.assertIn("audit_client_key", gw["secrets"])
        self.assertNotIn("audit_key", gw["secrets"])
        self.assertEqual(side["secrets"], ["audit_key"])
        for name in ("audit_key", "audit_client_key"):
            self.assertEqual(self.doc["secrets"][name]["file"],
                             "./secrets/" + name)
        # nor any other container, through a mount of the secrets folder
        # (Alertmanager needs two files of it, not the audit keys)
        for svc_name, svc in services.items():
            for v in svc.get("volumes", []):
                src = v.split(":")[0] if isinstance(v, str) else v["source"]
                self.assertNotEqual(os.path.normpath(src), "secrets",
                                    "%s mounts every secret: %s"
                                    % (svc_name, v))
        dockerfile = read(os.path.join(ROOT, "deploy", "compose",
                                       "Dockerfile.sidecar"))
        for name in ("sidecar.json", "sidecar.otel-collector.json"):
            with open(os.path.join(ROOT, "deploy", "compose", name)) as f:
                audit = json.load(f)["audit"]
            self.assertEqual(audit["key_file"], "/run/secrets/audit_key")
            d = os.path.dirname(audit["file"])
            self.assertIn("obs-audit:" + d, side["volumes"], name)
            self.assertIsNone(self.doc["volumes"]["obs-audit"])  # named
            self.assertRegex(dockerfile, r"chown obs [^\n]*%s" % d)
        with open(os.path.join(ROOT, "deploy", "compose",
                               "sidecar.json")) as f:
            cfg = json.load(f)
        self.assertTrue(cfg["loki"]["url"])
        self.assertTrue(cfg["audit"].get("loki", True))

        secrets = tempfile.mkdtemp(prefix="obs-audit-keys-")
        self.addCleanup(shutil.rmtree, secrets, True)
        chain, client = audit_keys(secrets)
        keys = [first_line(chain), first_line(client)]
        for k in keys:
            self.assertRegex(k, b"^[0-9a-f]{64}$")
        self.assertNotEqual(keys[0], keys[1])
        # the sidecar (uid 10001) reads its key; nginx's master, root
        self.assertEqual(os.stat(chain).st_mode & 0o777, 0o644)
        self.assertEqual(os.stat(client).st_mode & 0o777, 0o600)
        # a second run keeps them: a new chain key would start a new chain
        audit_keys(secrets)
        self.assertEqual([first_line(chain), first_line(client)], keys)
        for name in ("audit_key", "audit_client_key"):
            ignored = subprocess.run(
                ["git", "-C", ROOT, "check-ignore", "-q",
                 "deploy/compose/secrets/" + name])
            self.assertEqual(ignored.returncode, 0, name)

    def test_shipped_sidecar_configs_are_valid(self):
        """--check-config also probes the paths a container has (socket,
        spool and audit directories, the audit key): they move into a
        temporary directory.  The k8s pod names its audit file in the
        environment (gateway.yaml)."""
        tmp = tempfile.mkdtemp(prefix="obs-deploy-")
        self.addCleanup(shutil.rmtree, tmp, True)
        for key in ("/run/secrets/audit_key", "/etc/obs-audit/chain-key"):
            os.makedirs(os.path.dirname(tmp + key), exist_ok=True)
            with open(tmp + key, "w") as f:
                f.write("not-a-real-audit-key-0123456789\n")
        for path in (os.path.join(ROOT, "deploy", "compose", "sidecar.json"),
                     os.path.join(ROOT, "deploy", "compose",
                                  "sidecar.otel-collector.json"),
                     os.path.join(K8S, "sidecar.json")):
            with open(path) as f:
                text = f.read()
            for d in ("/run/obs", "/var/lib/obs-sidecar",
                      "/var/lib/obs-audit", "/run/secrets",
                      "/etc/obs-audit"):
                os.makedirs(tmp + d, exist_ok=True)
                text = text.replace(d + "/", tmp + d + "/")
            moved = os.path.join(tmp, "sidecar.json")
            with open(moved, "w") as f:
                f.write(text)
            env = dict(os.environ, OBS_SIDECAR_LOKI_URL="http://loki:3100/"
                       "loki/api/v1/push",
                       OTEL_EXPORTER_OTLP_ENDPOINT="http://jaeger:4318")
            if "file" not in json.loads(text)["audit"]:      # k8s
                env["OBS_SIDECAR_AUDIT_FILE"] = \
                    tmp + "/var/lib/obs-audit/obs-gateway-0.log"
            p = subprocess.run([SIDECAR, "--config", moved, "--check-config"],
                               capture_output=True, text=True, env=env)
            self.assertEqual(p.returncode, 0, path + ": " + p.stderr)


class OtelCollectorTest(unittest.TestCase):
    """The collector variants (compose override, Kubernetes overlay): the
    sidecar sends every signal over OTLP/gRPC to the collector, whose
    pipelines use only what they define.  That its transform gives back the
    sidecar's own series is test_otlp.py's
    test_collector_variant_gives_back_the_page."""

    OVERRIDE = os.path.join(ROOT, "deploy", "compose",
                            "docker-compose.otel-collector.yml")
    OVERLAY = os.path.join(ROOT, "deploy", "k8s-otel-collector")

    @unittest.skipUnless(subprocess.run(["which", "docker-compose"],
                                        capture_output=True).returncode == 0,
                         "docker-compose is not installed")
    def test_compose_override(self):
        p = subprocess.run(["docker-compose", "-f", COMPOSE, "-f",
                            self.OVERRIDE, "config"], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        doc = yaml.safe_load(p.stdout)["services"]
        env = doc["obs-sidecar"]["environment"]
        self.assertEqual(env["OTEL_METRICS_EXPORTER"], "otlp")
        self.assertEqual(env["OTEL_LOGS_EXPORTER"], "otlp")
        self.assertEqual(env["OTEL_EXPORTER_OTLP_PROTOCOL"], "grpc")
        self.assertIn("otel-collector", doc)
        self.assertTrue(any("sidecar.otel-collector.json" in v
                            for v in doc["obs-sidecar"]["volumes"]))
        with open(os.path.join(ROOT, "deploy", "compose",
                               "prometheus.otel-collector.yml")) as f:
            prom = yaml.safe_load(f)
        job = [j for j in prom["scrape_configs"]
               if j["job_name"] == "obs-sidecar"][0]
        self.assertTrue(job["honor_labels"])
        self.assertEqual(job["static_configs"][0]["targets"],
                         ["otel-collector:8889"])

    def test_collector_pipelines_use_what_they_define(self):
        with open(os.path.join(self.OVERLAY, "collector.yaml")) as f:
            cfg = yaml.safe_load(f)
        for name, p in cfg["service"]["pipelines"].items():
            for kind in ("receivers", "processors", "exporters"):
                for c in p.get(kind, []):
                    self.assertIn(c, cfg[kind], "%s: %s" % (name, c))
        self.assertEqual(set(cfg["service"]["pipelines"]),
                         {"metrics", "logs", "traces"})

    def test_kubernetes_overlay(self):
        out = subprocess.run(["kubectl", "kustomize", self.OVERLAY],
                             capture_output=True, text=True, check=True)
        docs = [o for o in yaml.safe_load_all(out.stdout) if o]
        dep = [d for d in docs if d["kind"] == "Deployment"
               and d["metadata"]["name"] == "obs-gateway"][0]
        side = [c for c in dep["spec"]["template"]["spec"]["containers"]
                if c["name"] == "obs-sidecar"][0]
        env = [e["name"] for e in side["env"]]
        self.assertLess(env.index("POD_NAME"),
                        env.index("OTEL_RESOURCE_ATTRIBUTES"))
        values = {e["name"]: e.get("value") for e in side["env"]}
        self.assertEqual(values["OTEL_METRICS_EXPORTER"], "otlp")
        self.assertIn("k8s.pod.name=$(POD_NAME)",
                      values["OTEL_RESOURCE_ATTRIBUTES"])
        self.assertNotIn("OBS_SIDECAR_LOKI_URL", values)
        # the audit trail as in the base, each pod its own file
        self.assertLess(env.index("POD_NAME"),
                        env.index("OBS_SIDECAR_AUDIT_FILE"))
        self.assertEqual(values["OBS_SIDECAR_AUDIT_FILE"],
                         "/var/lib/obs-audit/$(POD_NAME).log")
        monitors = {d["metadata"]["name"]: d for d in docs
                    if d["kind"] == "PodMonitor"}
        self.assertEqual([e["port"] for e in monitors["obs-gateway"]
                          ["spec"]["podMetricsEndpoints"]], ["nginx-metrics"])
        col = monitors["obs-otel-collector"]
        self.assertEqual(col["metadata"]["labels"]["release"],
                         monitors["obs-gateway"]["metadata"]["labels"]
                         ["release"])
        self.assertTrue(col["spec"]["podMetricsEndpoints"][0]["honorLabels"])
        self.assertTrue(any(d["kind"] == "ConfigMap" and d["metadata"]["name"]
                            .startswith("obs-otel-collector-config")
                            for d in docs))


class KubernetesTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.objects = cls.render(K8S)
        cls.kinds = {}
        for o in cls.objects:
            cls.kinds.setdefault(o["kind"], []).append(o)
        cls.pod = cls.kinds["Deployment"][0]["spec"]["template"]["spec"]
        cls.containers = {c["name"]: c for c in cls.pod["containers"]}

    @staticmethod
    def render(path):
        out = subprocess.run(["kubectl", "kustomize", path],
                             capture_output=True, text=True, check=True)
        return [o for o in yaml.safe_load_all(out.stdout) if o]

    def load(self, name):
        with open(os.path.join(K8S, name)) as f:
            return list(yaml.safe_load_all(f))

    def sidecar_json(self):
        with open(os.path.join(K8S, "sidecar.json")) as f:
            return json.load(f)

    def test_every_manifest_parses_and_kustomization_lists_them(self):
        kust = self.load("kustomization.yaml")[0]
        for res in kust["resources"]:
            docs = self.load(res)
            for d in docs:
                self.assertIn("apiVersion", d, res)
                self.assertIn("kind", d, res)
        for gen in kust["configMapGenerator"]:
            for f in gen["files"]:
                self.assertTrue(os.path.exists(os.path.join(K8S, f)), f)

    def test_sidecar_shares_the_socket_through_an_emptydir(self):
        dep = self.load("gateway.yaml")[0]
        pod = dep["spec"]["template"]["spec"]
        names = [c["name"] for c in pod["containers"]]
        self.assertEqual(names, ["gateway", "obs-sidecar", "nginx-exporter"])
        vols = {v["name"]: v for v in pod["volumes"]}
        self.assertIn("emptyDir", vols["obs-run"])
        for c in pod["containers"][:2]:
            mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
            self.assertEqual(mounts["obs-run"], "/run/obs")
        self.assertNotIn("volumeMounts", pod["containers"][2])

    def test_podmonitor_scrapes_the_sidecar_port(self):
        pm = self.load("podmonitor.yaml")[0]
        port = pm["spec"]["podMetricsEndpoints"][0]["port"]
        dep = self.load("gateway.yaml")[0]
        sidecar = dep["spec"]["template"]["spec"]["containers"][1]
        self.assertIn(port, [p["name"] for p in sidecar["ports"]])

    def test_prometheusrule_is_generated_from_the_tested_rules(self):
        p = subprocess.run(["/usr/bin/python3",
                            os.path.join(K8S, "generate-prometheusrule.py"),
                            "--check"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_podmonitor_pairs_nginx_and_its_sidecar_by_pod(self):
        pm = self.kinds["PodMonitor"][0]
        ports = {c: [p["name"] for p in self.containers[c]["ports"]]
                 for c in self.containers}
        jobs = {}
        for ep in pm["spec"]["podMetricsEndpoints"]:
            rl = ep["relabelings"]
            job = [r["replacement"] for r in rl if r["targetLabel"] == "job"]
            jobs[job[0]] = ep["port"]
            self.assertIn({"sourceLabels": ["__meta_kubernetes_pod_name"],
                           "targetLabel": "gateway"}, rl)
        self.assertEqual(jobs, {PARAMS["SIDECAR_JOB"]: "metrics",
                                PARAMS["NGINX_JOB"]: "nginx-metrics"})
        self.assertIn("nginx-metrics", ports["nginx-exporter"])
        # the exporter reads the stub_status nginx.conf serves on loopback
        uri = re.search(r"--nginx.scrape-uri=http://127.0.0.1:(\d+)"
                        r"(/stub_status)", " ".join(
                            self.containers["nginx-exporter"]["args"]))
        conf = read(os.path.join(K8S, "nginx.conf"))
        self.assertRegex(conf, r"listen 127.0.0.1:%s;\s+obs off;[^}]*"
                         r"location = %s \{ stub_status; \}"
                         % uri.groups())

    def test_release_label_and_scraper_come_from_parameters(self):
        params = self.load("parameters.yaml")[0]["data"]
        for kind in ("PodMonitor", "PrometheusRule"):
            self.assertEqual(self.kinds[kind][0]["metadata"]["labels"]
                             ["release"], params["prometheus-release"])
        self.assertNotIn("ConfigMap/obs-parameters", [
            "%s/%s" % (o["kind"], o["metadata"]["name"])
            for o in self.objects])
        # another value in parameters.yaml reaches every place
        with tempfile.TemporaryDirectory() as d:
            copy = os.path.join(d, "k8s")
            shutil.copytree(K8S, copy)
            text = read(os.path.join(copy, "parameters.yaml"))
            text = text.replace("prometheus-release: kube-prometheus-stack",
                                "prometheus-release: monitoring-stack")
            text = text.replace("prometheus-namespace: monitoring",
                                "prometheus-namespace: observability")
            with open(os.path.join(copy, "parameters.yaml"), "w") as f:
                f.write(text)
            objs = self.render(copy)
        labels = [o["metadata"]["labels"].get("release") for o in objs
                  if o["kind"] in ("PodMonitor", "PrometheusRule")]
        self.assertEqual(labels, ["monitoring-stack"] * 2)
        np = [o for o in objs if o["kind"] == "NetworkPolicy"][0]
        self.assertEqual(np["spec"]["ingress"][1]["from"][0]
                         ["namespaceSelector"]["matchLabels"],
                         {"kubernetes.io/metadata.name": "observability"})

    def test_network_policy_keeps_metrics_to_the_scraper(self):
        np = self.kinds["NetworkPolicy"][0]["spec"]
        params = self.load("parameters.yaml")[0]["data"]
        self.assertEqual(np["podSelector"]["matchLabels"],
                         {"app.kubernetes.io/name": "obs-gateway"})
        self.assertEqual(np["policyTypes"], ["Ingress"])
        public, scrape = np["ingress"]
        self.assertEqual(public, {"ports": [{"port": "http"}]})
        self.assertEqual(scrape["from"], [{
            "namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name":
                    params["prometheus-namespace"]}},
            "podSelector": {"matchLabels": {
                "app.kubernetes.io/name": params["prometheus-pod-name"]}}}])
        named = {p["name"] for c in self.containers.values()
                 for p in c.get("ports", [])}
        allowed = {p["port"] for rule in np["ingress"] for p in rule["ports"]}
        self.assertEqual(allowed, named)        # every port, none public
        self.assertNotIn("from-parameters.yaml", json.dumps(np))

    def test_disruption_budget_and_topology_spread(self):
        dep = self.kinds["Deployment"][0]
        pdb = self.kinds["PodDisruptionBudget"][0]["spec"]
        pod_labels = dep["spec"]["template"]["metadata"]["labels"]
        for k, v in pdb["selector"]["matchLabels"].items():
            self.assertEqual(pod_labels.get(k), v)
        self.assertLess(pdb["maxUnavailable"], dep["spec"]["replicas"])
        keys = {t["topologyKey"]: t for t in
                self.pod["topologySpreadConstraints"]}
        self.assertEqual(set(keys), {"kubernetes.io/hostname",
                                     "topology.kubernetes.io/zone"})
        for t in keys.values():
            self.assertEqual(t["labelSelector"]["matchLabels"],
                             {"app.kubernetes.io/name": "obs-gateway"})

    def prestop_seconds(self, container):
        cmd = self.containers[container]["lifecycle"]["preStop"]["exec"][
            "command"]
        self.assertEqual(cmd[0], "sleep")
        return int(cmd[1])

    def test_stopping_drains_nginx_before_the_sidecar(self):
        """nginx: its delay, then at most worker_shutdown_timeout for its
        requests (and its workers' last records); the sidecar reads the
        socket until then, then drains within the grace period."""
        conf = read(os.path.join(K8S, "nginx.conf"))
        shutdown = int(re.search(r"\nworker_shutdown_timeout (\d+)s;",
                                 conf).group(1))
        nginx_done = self.prestop_seconds("gateway") + shutdown
        sidecar_stop = self.prestop_seconds("obs-sidecar")
        self.assertGreater(self.prestop_seconds("gateway"), 0)
        self.assertGreaterEqual(sidecar_stop, nginx_done + 2)
        drain = float(self.sidecar_json().get("drain_seconds", 10))
        self.assertGreaterEqual(self.pod["terminationGracePeriodSeconds"],
                                sidecar_stop + drain + 5)

    def test_sidecar_memory_limit_holds_its_bounds(self):
        """deploy/k8s/sidecar_memory.py's bound for the shipped sidecar.json
        (its queues, ring, spools' memory, series at max_series) is within
        the container's limit; the emptyDir holds every spool."""
        cfg = self.sidecar_json()
        parts = sidecar_memory.bound(cfg, sidecar_memory.defaults(SIDECAR))
        need = sum(n for _, n in parts)
        res = self.containers["obs-sidecar"]["resources"]
        limit = sidecar_memory.limit_bytes(res["limits"]["memory"])
        self.assertGreaterEqual(limit, need, "limit %s < %.0f MiB needed: %s"
                                % (res["limits"]["memory"], need / 2**20,
                                   parts))
        self.assertLessEqual(sidecar_memory.limit_bytes(
            res["requests"]["memory"]), limit)
        self.assertIn("audit", {n for n, _ in parts})
        # every sink sidecar.json names is counted, and they are the four
        self.assertEqual({n for n, _ in parts} & set(sidecar_memory.SINKS),
                         set(sidecar_memory.SINKS) & set(cfg))
        spool = sum(cfg[s].get("spool_bytes", 0) for s in sidecar_memory.SINKS
                    if s in cfg)
        vol = {v["name"]: v for v in self.pod["volumes"]}["obs-spool"]
        self.assertGreaterEqual(sidecar_memory.limit_bytes(
            vol["emptyDir"]["sizeLimit"]), spool)
        # the bound grows with what the settings allow
        more = json.loads(json.dumps(cfg))
        more["max_series"] = 2 * cfg["max_series"]
        more["loki"]["queue_bytes"] = 64 << 20
        parts2 = sidecar_memory.bound(more, sidecar_memory.defaults(SIDECAR))
        self.assertGreater(sum(n for _, n in parts2), need + (64 << 20))

    def test_receiver_credentials_come_from_the_example_secret(self):
        example = self.load("receiver-credentials.example.yaml")[0]
        kust = self.load("kustomization.yaml")[0]
        self.assertNotIn("receiver-credentials.example.yaml",
                         kust["resources"])
        self.assertEqual(set(example["stringData"].values()), {"REPLACE-ME"})
        vol = {v["name"]: v for v in self.pod["volumes"]}[
            "receiver-credentials"]
        self.assertEqual(vol["secret"], {"secretName":
                                         example["metadata"]["name"],
                                         "optional": True})
        mount = [m for m in self.containers["obs-sidecar"]["volumeMounts"]
                 if m["name"] == "receiver-credentials"][0]["mountPath"]
        # the settings the example's comment gives read those files
        comment = read(os.path.join(K8S, "receiver-credentials.example.yaml"))
        files = set(re.findall(r'"(%s/[\w-]+)"' % mount, comment))
        self.assertEqual({os.path.basename(f) for f in files},
                         set(example["stringData"]))
        with tempfile.TemporaryDirectory() as d:
            cfg = self.sidecar_json()
            for key, v in example["stringData"].items():
                with open(os.path.join(d, key), "w") as f:
                    f.write("not-a-real-" + key + "\n")
            cfg["loki"]["bearer_token_file"] = d + "/loki-bearer-token"
            cfg["otlp"]["bearer_token_file"] = d + "/otlp-bearer-token"
            for sink in ("remote_write", "clickhouse"):
                cfg[sink]["basic_user"] = "gateway"
                cfg[sink]["basic_password_file"] = "%s/%s-password" % (
                    d, sink.replace("_", "-"))
            for sink in ("loki", "otlp", "clickhouse"):
                cfg[sink]["spool_dir"] = os.path.join(d, sink)
            cfg["ingest"] = ["unix:%s/records.sock" % d]
            with open(os.path.join(d, "chain-key"), "w") as f:
                f.write("not-a-real-audit-key-0123456789\n")
            cfg["audit"]["key_file"] = os.path.join(d, "chain-key")
            path = os.path.join(d, "sidecar.json")
            with open(path, "w") as f:
                json.dump(cfg, f)
            env = dict(os.environ, OBS_SIDECAR_LOKI_URL="http://loki:3100/"
                       "loki/api/v1/push",
                       OTEL_EXPORTER_OTLP_ENDPOINT="http://jaeger:4318")
            p = subprocess.run([SIDECAR, "--config", path, "--check-config"],
                               capture_output=True, text=True, env=env)
            self.assertEqual(p.returncode, 0, p.stderr)

    def test_the_audit_trail_is_on(self):
        """nginx audits the API with the clients' pseudonyms; each pod's
        sidecar keeps its own chain (named by the pod) on a claim that
        outlives it, never an emptyDir, and ships it to Loki; each
        container gets only its own key of the Secret obs-audit, which the
        pod needs to start (example and command beside, not applied)."""
        conf = read(os.path.join(K8S, "nginx.conf"))
        hmac_key = re.search(r"listen 8080;[^}]*\n        obs_audit on "
                             r"hmac=(\S+);", conf).group(1)
        self.assertIn("location = /healthz { obs off; obs_audit off;", conf)
        side, gw = self.containers["obs-sidecar"], self.containers["gateway"]
        vols = {v["name"]: v for v in self.pod["volumes"]}

        def mounts(c):
            return {m["name"]: m["mountPath"] for m in c["volumeMounts"]}

        # the file: per pod, on the claim
        env = [e["name"] for e in side["env"]]
        values = {e["name"]: e for e in side["env"]}
        self.assertLess(env.index("POD_NAME"),
                        env.index("OBS_SIDECAR_AUDIT_FILE"))
        self.assertEqual(values["POD_NAME"]["valueFrom"],
                         {"fieldRef": {"fieldPath": "metadata.name"}})
        path = values["OBS_SIDECAR_AUDIT_FILE"]["value"]
        self.assertEqual(os.path.basename(path), "$(POD_NAME).log")
        self.assertEqual(mounts(side)["obs-audit"], os.path.dirname(path))
        self.assertNotIn("obs-audit", mounts(gw))
        self.assertEqual(vols["obs-audit"], {
            "name": "obs-audit",
            "persistentVolumeClaim": {"claimName": "obs-audit"}})
        claim = [o for o in self.kinds["PersistentVolumeClaim"]
                 if o["metadata"]["name"] == "obs-audit"][0]
        # shared by the replicas
        self.assertEqual(claim["spec"]["accessModes"], ["ReadWriteMany"])
        self.assertGreaterEqual(sidecar_memory.limit_bytes(
            claim["spec"]["resources"]["requests"]["storage"]), 10 << 30)
        # writable by the sidecar's user
        self.assertEqual(self.pod["securityContext"]["fsGroup"],
                         side["securityContext"]["runAsUser"])
        # the keys: the Secret is not optional, each container its own
        cfg = self.sidecar_json()["audit"]
        self.assertNotIn("file", cfg)
        self.assertTrue(cfg.get("loki", True))
        self.assertIn("OBS_SIDECAR_LOKI_URL", values)
        for c, vol, key, used in ((side, "audit-chain-key", "chain-key",
                                   cfg["key_file"]),
                                  (gw, "audit-client-key", "client-key",
                                   hmac_key)):
            self.assertEqual(vols[vol]["secret"], {
                "secretName": "obs-audit",
                "items": [{"key": key, "path": key}]})
            self.assertEqual(os.path.join(mounts(c)[vol], key), used)
        self.assertNotIn("audit-client-key", mounts(side))
        self.assertNotIn("audit-chain-key", mounts(gw))
        example = self.load("audit-keys.example.yaml")[0]
        self.assertEqual(example["metadata"]["name"], "obs-audit")
        self.assertEqual(example["stringData"],
                         {"chain-key": "REPLACE-ME",
                          "client-key": "REPLACE-ME"})
        kust = self.load("kustomization.yaml")[0]
        self.assertNotIn("audit-keys.example.yaml", kust["resources"])
        self.assertIn("audit-volume.yaml", kust["resources"])
        for f in ("kustomization.yaml", "audit-keys.example.yaml",
                  "gateway.yaml"):
            text = re.sub(r" \\\n\s*#\s+", " ", read(os.path.join(K8S, f)))
            self.assertTrue("kubectl -n obs create secret generic obs-audit "
                            "--from-file=chain-key=./chain-key "
                            "--from-file=client-key=./client-key" in text, f)

    def test_the_tenant_comes_from_a_verified_token(self):
        """The shipped k8s nginx.conf: the JWT keys from the Secret mount,
        the token's tenant counts, a header or a forged token never does."""
        conf = read(os.path.join(K8S, "nginx.conf"))
        self.assertIn("obs_tenant $obs_jwt_tenant;", conf)
        self.assertNotIn("$http_x_tenant_id", conf)
        keys = re.search(r"obs_jwt_keys (\S+);", conf).group(1)
        mount = [m for m in self.containers["gateway"]["volumeMounts"]
                 if m["name"] == "jwt-keys"][0]
        self.assertEqual(os.path.dirname(keys), mount["mountPath"])
        secret = {v["name"]: v for v in self.pod["volumes"]}["jwt-keys"]
        self.assertEqual(secret["secret"]["secretName"], "obs-gateway-jwt")
        self.assertIn("--from-file=%s=" % os.path.basename(keys),
                      read(os.path.join(K8S, "kustomization.yaml")))
        secrets = tempfile.mkdtemp(prefix="obs-jwt-")
        self.addCleanup(shutil.rmtree, secrets, True)
        token = dev_token(secrets, "tenant_042")
        seen = tenants_seen(self, conf, os.path.join(secrets, "jwt_keys"),
                            token)
        self.assertEqual(seen, {"tenant_042": 1, "unverified": 2})


if __name__ == "__main__":
    main()
