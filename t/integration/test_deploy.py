#!/usr/bin/python3
"""Deployment files: the compose file passes `docker-compose config`, pins
its images and health-checks its services; the Kubernetes manifests parse,
share the socket through an emptyDir, and carry exactly the tested rules;
the sidecar configurations they ship pass --check-config."""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.dirname(__file__))
from harness import ROOT, SIDECAR, main  # noqa

COMPOSE = os.path.join(ROOT, "deploy", "compose", "docker-compose.yml")
K8S = os.path.join(ROOT, "deploy", "k8s")


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
                "redis", "redis-exporter"}
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

    def test_shipped_sidecar_configs_are_valid(self):
        """--check-config also probes the paths a container has (socket
        and spool directories): they move into a temporary directory."""
        tmp = tempfile.mkdtemp(prefix="obs-deploy-")
        self.addCleanup(shutil.rmtree, tmp, True)
        for path in (os.path.join(ROOT, "deploy", "compose", "sidecar.json"),
                     os.path.join(K8S, "sidecar.json")):
            with open(path) as f:
                text = f.read()
            for d in ("/run/obs", "/var/lib/obs-sidecar"):
                os.makedirs(tmp + d, exist_ok=True)
                text = text.replace(d + "/", tmp + d + "/")
            moved = os.path.join(tmp, "sidecar.json")
            with open(moved, "w") as f:
                f.write(text)
            env = dict(os.environ, OBS_SIDECAR_LOKI_URL="http://loki:3100/"
                       "loki/api/v1/push",
                       OTEL_EXPORTER_OTLP_ENDPOINT="http://jaeger:4318")
            p = subprocess.run([SIDECAR, "--config", moved, "--check-config"],
                               capture_output=True, text=True, env=env)
            self.assertEqual(p.returncode, 0, path + ": " + p.stderr)


class KubernetesTest(unittest.TestCase):

    def load(self, name):
        with open(os.path.join(K8S, name)) as f:
            return list(yaml.safe_load_all(f))

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
        self.assertEqual(names, ["gateway", "obs-sidecar"])
        vols = {v["name"]: v for v in pod["volumes"]}
        self.assertIn("emptyDir", vols["obs-run"])
        for c in pod["containers"]:
            mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
            self.assertEqual(mounts["obs-run"], "/run/obs")

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


if __name__ == "__main__":
    main()
