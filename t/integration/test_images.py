#!/usr/bin/python3
"""Deployable images and the Kubernetes manifests, checked as far as a
machine without a Docker engine allows: `make images` runs the two
Dockerfiles with the right tags; each Dockerfile copies files that exist
and installs what the binaries it ships link against (read off the binaries
built here with ldd and dpkg); the sidecar builds from exactly what its
Dockerfile copies; `kubectl kustomize` renders the manifests with the images
of kustomization.yaml; the k8s nginx.conf routes like the compose and demo
ones and re-resolves its upstream names through its resolver; the ClickHouse
compose override passes `docker-compose config`."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.dirname(__file__))
from harness import MODULE, NGINX, ROOT, SIDECAR, main  # noqa

COMPOSE = os.path.join(ROOT, "deploy", "compose")
K8S = os.path.join(ROOT, "deploy", "k8s")
DOCKERFILES = {"gateway": os.path.join(COMPOSE, "Dockerfile.gateway"),
               "sidecar": os.path.join(COMPOSE, "Dockerfile.sidecar")}


def read(path):
    with open(path) as f:
        return f.read()


def stages(dockerfile):
    """[(from line, [instructions])] with continuation lines joined."""
    text = re.sub(r"\\\n", " ", read(dockerfile))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            out.append((line, []))
        elif out:
            out[-1][1].append(line)
    return out


def apt_packages(instructions):
    pkgs = set()
    for ins in instructions:
        for m in re.finditer(r"apt-get install ([^&]*)", ins):
            pkgs |= {w for w in m.group(1).split() if not w.startswith("-")}
    return pkgs


def linked_packages(binary, skip=()):
    """Debian packages of the shared libraries a binary links against."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True,
                         check=True).stdout
    pkgs = set()
    for path in re.findall(r"=> (/\S+)", out):
        real = os.path.realpath(path)
        owner = None
        for p in (path, real):
            r = subprocess.run(["dpkg", "-S", p], capture_output=True,
                               text=True)
            if r.returncode == 0:
                owner = r.stdout.split(":")[0]
                break
        if owner and owner not in skip:
            pkgs.add(owner)
    return pkgs


class ImagesTest(unittest.TestCase):

    def test_make_images_builds_both_with_the_given_names(self):
        out = subprocess.run(
            ["make", "-s", "-n", "-C", ROOT, "images",
             "IMAGE_REGISTRY=registry.example.com/team/", "IMAGE_TAG=1.2.3"],
            capture_output=True, text=True, check=True).stdout
        self.assertIn("-f deploy/compose/Dockerfile.gateway", out)
        self.assertIn("-t registry.example.com/team/obs-gateway:1.2.3", out)
        self.assertIn("-f deploy/compose/Dockerfile.sidecar", out)
        self.assertIn("-t registry.example.com/team/obs-sidecar:1.2.3", out)
        push = subprocess.run(
            ["make", "-s", "-n", "-C", ROOT, "push-images", "IMAGE_TAG=7"],
            capture_output=True, text=True, check=True).stdout
        self.assertIn("push obs-gateway:7", push)
        self.assertIn("push obs-sidecar:7", push)

    def test_every_copied_path_exists_and_is_in_the_context(self):
        ignored = [l.strip() for l in read(os.path.join(
            ROOT, ".dockerignore")).splitlines()
            if l.strip() and not l.startswith("#")]
        for name, path in DOCKERFILES.items():
            for _, ins in stages(path):
                for line in ins:
                    m = re.match(r"COPY (?!--from)(\S+) ", line)
                    if not m:
                        continue
                    src = m.group(1)
                    self.assertTrue(os.path.exists(os.path.join(ROOT, src)),
                                    "%s copies missing %s" % (name, src))
                    for pattern in ignored:
                        self.assertFalse(src == pattern or src.startswith(
                            pattern + "/"), "%s: %s is dockerignored"
                            % (name, src))

    def test_runtime_stages_install_what_the_binaries_link(self):
        base = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}
        sidecar = stages(DOCKERFILES["sidecar"])
        need = linked_packages(SIDECAR, skip=base)
        # the curl, TLS and libmicrohttpd dependencies come with their
        # packages; the ones the sidecar names itself must be installed
        direct = {p for p in need if re.match(
            r"lib(protobuf-c|microhttpd|jansson|curl|snappy|isal|ssl)", p)}
        self.assertTrue(direct)
        runtime = apt_packages(sidecar[-1][1])
        for pkg in direct:
            self.assertIn(re.sub(r":.*", "", pkg), runtime,
                          "the sidecar image lacks " + pkg)
        gateway = stages(DOCKERFILES["gateway"])
        module_libs = {p for p in linked_packages(MODULE, skip=base)
                       if p.startswith("libprotobuf-c")}
        self.assertEqual(module_libs & apt_packages(gateway[-1][1]),
                         module_libs)

    def test_build_stage_dev_packages_cover_the_link_line(self):
        makefile = read(os.path.join(ROOT, "Makefile"))
        libs = re.search(r"SIDECAR_LIBS :=((?:.*\\\n)*.*)", makefile).group(1)
        build = apt_packages(stages(DOCKERFILES["sidecar"])[0][1])
        dev = {"protobuf-c": "libprotobuf-c-dev",
               "microhttpd": "libmicrohttpd-dev", "jansson": "libjansson-dev",
               "curl": "libcurl4-openssl-dev", "z": "zlib1g-dev",
               "snappy": "libsnappy-dev", "isal": "libisal-dev",
               "crypto": "libssl-dev"}
        for lib in re.findall(r"-l([\w-]+)", libs):
            if lib in ("pthread", "m"):
                continue
            self.assertIn(dev[lib], build, "-l%s needs %s" % (lib, dev[lib]))

    def test_sidecar_builds_from_what_its_dockerfile_copies(self):
        with tempfile.TemporaryDirectory() as d:
            for _, ins in stages(DOCKERFILES["sidecar"])[:1]:
                for line in ins:
                    m = re.match(r"COPY (\S+) (\S+)", line)
                    if m and not line.startswith("COPY --from"):
                        src = os.path.join(ROOT, m.group(1))
                        dst = os.path.join(d, m.group(2).rstrip("/")
                                           if m.group(2) != "./"
                                           else m.group(1))
                        if os.path.isdir(src):
                            shutil.copytree(src, dst)
                        else:
                            shutil.copy(src, dst)
            p = subprocess.run(["make", "-s", "-C", d, "sidecar",
                                "VERSION=image-test"],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr[-2000:])
            self.assertTrue(os.path.exists(os.path.join(d, "build",
                                                        "obs-sidecar")))


class KubernetesTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        out = subprocess.run(["kubectl", "kustomize", K8S],
                             capture_output=True, text=True, check=True)
        cls.objects = list(yaml.safe_load_all(out.stdout))
        with open(os.path.join(K8S, "kustomization.yaml")) as f:
            cls.kust = yaml.safe_load(f)

    def test_images_come_from_the_kustomization(self):
        want = {i["name"]: "%s:%s" % (i.get("newName", i["name"]),
                                     i["newTag"])
                for i in self.kust["images"]}
        dep = [o for o in self.objects if o["kind"] == "Deployment"][0]
        got = {c["name"]: c["image"]
               for c in dep["spec"]["template"]["spec"]["containers"]}
        self.assertEqual(got, {"gateway": want["obs-gateway"],
                               "obs-sidecar": want["obs-sidecar"],
                               "nginx-exporter":
                                   want["nginx-prometheus-exporter"]})
        self.assertRegex(got["nginx-exporter"], r":\d+\.\d+\.\d+$")
        # and a different images: section changes them
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "kustomization.yaml"), "w") as f:
                yaml.safe_dump({"resources": [os.path.relpath(K8S, d)],
                                "images": [{"name": "obs-gateway",
                                            "newName": "reg.example/gw",
                                            "newTag": "9"}]}, f)
            out = subprocess.run(["kubectl", "kustomize",
                                  "--load-restrictor=LoadRestrictionsNone",
                                  d], capture_output=True, text=True,
                                 check=True).stdout
            self.assertIn("image: reg.example/gw:9", out)

    def test_the_configmaps_carry_the_files(self):
        cms = {o["metadata"]["name"]: o for o in self.objects
               if o["kind"] == "ConfigMap"}
        nginx = [c for n, c in cms.items() if n.startswith(
            "obs-gateway-nginx")][0]
        self.assertEqual(nginx["data"]["nginx.conf"],
                         read(os.path.join(K8S, "nginx.conf")))

    def locations(self, conf):
        """{location: (service, upstream)} of an nginx.conf."""
        out = {}
        for m in re.finditer(r"location ([^{]+)\{([^}]*)\}", conf):
            body = m.group(2)
            svc = re.search(r"obs_service_name (\S+);", body)
            up = re.search(r"proxy_pass http://(\w+)", body)
            if up:
                out[m.group(1).strip()] = (svc and svc.group(1),
                                           up.group(1))
        return out

    def test_k8s_routes_like_compose_and_the_demo(self):
        k8s = self.locations(read(os.path.join(K8S, "nginx.conf")))
        compose = self.locations(read(os.path.join(COMPOSE, "nginx.conf")))
        demo = self.locations(read(os.path.join(ROOT, "deploy", "demo",
                                                "demo.sh")))
        self.assertEqual(k8s, compose)
        self.assertEqual(k8s, demo)
        self.assertEqual(k8s["= /api/v1/recommendations"],
                         ("ml-engine", "ml_engine"))

    def test_upstreams_resolve_through_the_resolver(self):
        conf = read(os.path.join(K8S, "nginx.conf"))
        self.assertRegex(conf, r"\n    resolver \S+ valid=\d+s")
        ups = re.findall(r"upstream (\w+) \{([^}]*)\}", conf)
        self.assertEqual({u for u, _ in ups}, {"backend_api", "ml_engine"})
        for name, body in ups:
            self.assertRegex(body, r"zone %s \d+k;" % name)
            servers = re.findall(r"server (\S+?)(?::\d+)?( [^;]*)?;", body)
            self.assertTrue(servers, name)
            for host, params in servers:
                # nginx's resolver has no search domains: fully qualified
                self.assertTrue(host.endswith(".svc.cluster.local"), host)
                self.assertIn("resolve", (params or "").split(), name)
        # "resolve" needs nginx 1.27.3+: what the gateway image is built on
        version = re.search(r"ARG NGINX_VERSION=(\d+)\.(\d+)\.(\d+)",
                            read(DOCKERFILES["gateway"])).groups()
        self.assertGreaterEqual(tuple(map(int, version)), (1, 27, 3))


    def test_nginx_takes_the_k8s_conf_with_the_module(self):
        """nginx -t with this machine's nginx (1.22): only what it cannot
        know is replaced: "resolve" (1.27.3+), the cluster's names, the
        JWT keys of the Secret (a public key made here) and its audit
        client key."""
        conf = read(os.path.join(K8S, "nginx.conf"))
        conf = conf.replace("load_module modules/ngx_http_obs_module.so",
                            "load_module " + MODULE)
        conf = re.sub(r" resolve;", ";", conf)
        conf = re.sub(r"\S+\.svc\.cluster\.local", "127.0.0.1", conf)
        with tempfile.TemporaryDirectory() as d:
            key = os.path.join(d, "key.pem")
            subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519",
                            "-out", key], check=True)
            subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out",
                            os.path.join(d, "keys")], check=True)
            conf = re.sub(r"obs_jwt_keys \S+;", "obs_jwt_keys %s/keys;" % d,
                          conf)
            with open(os.path.join(d, "client-key"), "w") as f:
                f.write("not-a-real-audit-client-key\n")
            conf = re.sub(r" hmac=\S+;", " hmac=%s/client-key;" % d, conf)
            path = os.path.join(d, "nginx.conf")
            with open(path, "w") as f:
                f.write(conf)
            p = subprocess.run([NGINX, "-t", "-p", d, "-c", path],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)


class ComposeOverrideTest(unittest.TestCase):

    @unittest.skipUnless(shutil.which("docker-compose"),
                         "docker-compose is not installed")
    def test_clickhouse_override_passes_compose_config(self):
        p = subprocess.run(
            ["docker-compose", "-f", os.path.join(COMPOSE,
                                                  "docker-compose.yml"),
             "-f", os.path.join(COMPOSE, "docker-compose.clickhouse.yml"),
             "config"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        doc = yaml.safe_load(p.stdout)
        side = doc["services"]["obs-sidecar"]
        self.assertEqual(side["environment"]["OBS_SIDECAR_CLICKHOUSE_URL"],
                         "http://clickhouse:8123")
        self.assertIn("clickhouse", side["depends_on"])
        self.assertRegex(doc["services"]["clickhouse"]["image"], r":\d")


if __name__ == "__main__":
    main()
