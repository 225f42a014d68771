#!/usr/bin/env bash
# `make deps`: what building the module and the sidecar and `make demo` need,
# from Debian 12 packages.  Starts and stops no service (scripts/apt-install.sh).
# What only the tests need is installed by scripts/install-test-deps.sh
# (`make test-deps`, and CI).  Safe to run again; needs root (or sudo).
set -euo pipefail
. "$(dirname "$0")/apt-install.sh"

PACKAGES=(
    # build
    build-essential pkg-config
    # the nginx the module is built against and loaded into
    nginx nginx-dev libssl-dev libpcre2-dev zlib1g-dev
    # record schema
    protobuf-c-compiler libprotobuf-c-dev
    # sidecar and exporters
    libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev libsnappy-dev
    libisal-dev
    # make demo: the demo services, a real Prometheus and Alertmanager,
    # nginx's own counters (ObsRecordsNotReceived), curl for its traffic,
    # openssl for its audit trail's keys
    python3 prometheus prometheus-alertmanager prometheus-nginx-exporter curl
    openssl
)

apt_install "${PACKAGES[@]}"
