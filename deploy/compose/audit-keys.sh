#!/usr/bin/env bash
# The audit trail's two keys for the compose stack (README: "The audit
# trail"), made once, before the first `docker-compose up`:
#
#   deploy/compose/audit-keys.sh
#
# secrets/audit_key         the key of the chain's HMAC (sidecar.json
#                           audit.key_file): only the sidecar gets it, and
#                           --verify-audit needs it
# secrets/audit_client_key  the key of the clients' pseudonyms (nginx.conf
#                           obs_audit hmac=): only the gateway gets it
#
# Each is 32 random bytes as 64 hex digits.  A key that exists is kept:
# a new chain key would start a new chain (move the trail away first), a
# new client key new pseudonyms.  Compose mounts a secret file with the
# mode it has here, and the sidecar runs as uid 10001: audit_key is
# readable by all (0644), so keep this checkout's secrets/ on a host of
# your own; nginx reads audit_client_key as root (0600).  secrets/ is
# ignored by git.
set -euo pipefail

dir=${OBS_SECRETS_DIR:-$(cd "$(dirname "$0")" && pwd)/secrets}

make_key() {    # file, mode
    if [ -s "$1" ]; then
        echo "$1: kept"
        return
    fi
    (umask 077 && openssl rand -hex 32 >"$1.new")
    chmod "$2" "$1.new"
    mv "$1.new" "$1"
    echo "$1: made"
}

make_key "$dir/audit_key" 0644
make_key "$dir/audit_client_key" 0600
