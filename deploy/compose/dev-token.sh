#!/usr/bin/env bash
# Tokens for trying the compose gateway, whose tenants come from verified
# JWTs (nginx.conf):
#
#   deploy/compose/dev-token.sh TENANT [SECONDS]
#   curl -H "Authorization: Bearer $(deploy/compose/dev-token.sh acme)" \
#        http://localhost:8080/api/v1/users/42
#
# The first run makes an Ed25519 key pair: secrets/jwt_signing_key.pem (the
# private key: it stays in secrets/, which git ignores) and secrets/jwt_keys
# (the public key the gateway verifies with).  Each run prints a token whose
# tenant_id is TENANT, valid for SECONDS (default a day).  In production
# the keys are your identity provider's: put its JWKS in secrets/jwt_keys.
set -euo pipefail

dir=${OBS_SECRETS_DIR:-$(cd "$(dirname "$0")" && pwd)/secrets}
tenant=${1:?usage: $0 TENANT [SECONDS]}
ttl=${2:-86400}
[[ $tenant =~ ^[A-Za-z0-9_.-]{1,128}$ ]] \
    || { echo "$0: a tenant is 1-128 letters, digits, _ . -" >&2; exit 2; }
[[ $ttl =~ ^[0-9]+$ ]] || { echo "$0: SECONDS is a number" >&2; exit 2; }

key=$dir/jwt_signing_key.pem
if [ ! -f "$key" ]; then
    (umask 077 && openssl genpkey -algorithm ed25519 -out "$key")
    openssl pkey -in "$key" -pubout -out "$dir/jwt_keys"
fi

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
now=$(date +%s)
header=$(printf '{"alg":"EdDSA","typ":"JWT"}' | b64url)
payload=$(printf '{"tenant_id":"%s","sub":"dev","iat":%d,"exp":%d}' \
    "$tenant" "$now" $((now + ttl)) | b64url)
input=$(mktemp)
trap 'rm -f "$input"' EXIT
printf '%s.%s' "$header" "$payload" >"$input"
signature=$(openssl pkeyutl -sign -inkey "$key" -rawin -in "$input" | b64url)
printf '%s.%s.%s\n' "$header" "$payload" "$signature"
