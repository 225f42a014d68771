#!/usr/bin/env bash
# apt-get install of the packages named on the command line, from Debian 12,
# without starting or stopping any service: packages such as nginx,
# postgresql or redis-server start their daemon on install, which a
# developer's box does not want (nor CI: the tests start their own servers).
# A policy-rc.d that refuses every start is in place for the install only,
# unless the machine already has one (which then decides).  Sourced by
# install-deps.sh and install-test-deps.sh.

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

apt_install() {
    local policy=/usr/sbin/policy-rc.d ours=""

    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# obs gateway install: start no service\nexit 101\n' \
            | $SUDO tee "$policy" >/dev/null
        $SUDO chmod 0755 "$policy"
        ours=1
        # interrupted, the machine must not keep refusing service starts
        trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
    fi

    export DEBIAN_FRONTEND=noninteractive
    local rc=0
    $SUDO apt-get update -qq \
        && $SUDO apt-get install -y -qq --no-install-recommends "$@" || rc=$?

    if [ -n "$ours" ]; then
        $SUDO rm -f "$policy"
        trap - EXIT
    fi
    return $rc
}
