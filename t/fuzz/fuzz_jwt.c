/*
 * libFuzzer target for ngx_http_obs_jwt's parsers.  The first byte picks:
 *
 *   0  the rest is a token, verified against keys of every type;
 *   1  the rest is "HEADER\nPAYLOAD" JSON, made into a token signed with
 *      the fuzzer's own HMAC key so that the payload is parsed too; then
 *      again with each part's unused base64url bits set (signed as sent),
 *      which must never verify;
 *   2  the rest is a key file (JWKS or PEM).
 *
 * Valid tokens also go through the cache.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ngx_http_obs_jwt.h"


static obs_jwt_keyset_t   keys;
static obs_jwt_cache_t   *cache;
static const char        *issuers[] = { "https://issuer.example" };
static const char        *audiences[] = { "api", "other" };
static obs_jwt_policy_t   policy = {
    &keys, OBS_JWT_ALL_ALGS, 60, "tenant_id", "sub",
    issuers, 1, audiences, 2
};

/* not a secret: known to anyone who reads this file, as it should be */
static const unsigned char  hmac_key[32] = "obs-jwt-fuzz-key-obs-jwt-fuzz-k";


static void
add_key(const char *kid, EVP_PKEY *pkey, unsigned algs)
{
    obs_jwt_key_t  *k = &keys.keys[keys.n++];

    k->kid = strdup(kid);
    k->pkey = pkey;
    k->algs = algs;
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    obs_jwt_key_t  *k;

    (void) argc;
    (void) argv;

    add_key("rsa", EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048),
            OBS_JWT_ALG_BIT(OBS_JWT_RS256) | OBS_JWT_ALG_BIT(OBS_JWT_RS384)
            | OBS_JWT_ALG_BIT(OBS_JWT_RS512));
    add_key("ec256", EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"),
            OBS_JWT_ALG_BIT(OBS_JWT_ES256));
    add_key("ec384", EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"),
            OBS_JWT_ALG_BIT(OBS_JWT_ES384));
    add_key("ed", EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"),
            OBS_JWT_ALG_BIT(OBS_JWT_EDDSA));

    k = &keys.keys[keys.n++];
    k->kid = strdup("hs");
    k->secret = malloc(sizeof(hmac_key));
    memcpy(k->secret, hmac_key, sizeof(hmac_key));
    k->secret_len = sizeof(hmac_key);
    k->algs = OBS_JWT_ALG_BIT(OBS_JWT_HS256);

    cache = obs_jwt_cache_create(8, 42);

    return 0;
}


static void
verify(const char *token, size_t len)
{
    obs_jwt_claims_t         claims;
    const obs_jwt_claims_t  *hit;

    if (obs_jwt_verify(&policy, token, len, 1700000000, &claims)
        == OBS_JWT_VALID)
    {
        obs_jwt_cache_put(cache, &policy, token, len, &claims);
        hit = obs_jwt_cache_get(cache, &policy, token, len, 1700000000);
        if (hit == NULL && len <= OBS_JWT_CACHE_TOKEN_MAX) {
            abort();
        }
    }
}


static size_t
b64url(const uint8_t *in, size_t len, char *out)
{
    size_t  n, i;

    n = (size_t) EVP_EncodeBlock((unsigned char *) out, in, (int) len);

    while (n && out[n - 1] == '=') {
        n--;
    }

    for (i = 0; i < n; i++) {
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    }

    return n;
}


/*
 * Sets the low bit of the last character of a base64url text when that bit
 * carries no data (RFC 4648 3.5); 0 when the text has no such bit.
 */
static int
non_canonical(char *text, size_t len)
{
    static const char  alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char        *c;

    if (len % 4 < 2) {
        return 0;
    }

    c = strchr(alphabet, text[len - 1]);
    text[len - 1] = alphabet[(c - alphabet) | 1];

    return 1;
}


/*
 * HEADER.PAYLOAD.HMAC into token; part (0, 1, 2) is made non-canonical,
 * or none when 3.  Returns the length, or 0 when that part has no unused
 * bits.
 */
static size_t
make_token(const uint8_t *header, size_t hlen, const uint8_t *payload,
    size_t plen, int part, char *token)
{
    char           *p, *start;
    unsigned int    mac_len;
    unsigned char   mac[EVP_MAX_MD_SIZE];

    p = token + b64url(header, hlen, token);
    if (part == 0 && !non_canonical(token, (size_t) (p - token))) {
        return 0;
    }

    *p++ = '.';
    start = p;
    p += b64url(payload, plen, p);
    if (part == 1 && !non_canonical(start, (size_t) (p - start))) {
        return 0;
    }

    HMAC(EVP_sha256(), hmac_key, sizeof(hmac_key), (unsigned char *) token,
         (size_t) (p - token), mac, &mac_len);

    *p++ = '.';
    start = p;
    p += b64url(mac, mac_len, p);
    if (part == 2 && !non_canonical(start, (size_t) (p - start))) {
        return 0;
    }

    return (size_t) (p - token);
}


static void
signed_token(const uint8_t *data, size_t size)
{
    int                part;
    char              *token;
    size_t             hlen, len;
    const uint8_t     *nl;
    obs_jwt_claims_t   claims;

    nl = memchr(data, '\n', size);
    if (nl == NULL) {
        return;
    }

    hlen = (size_t) (nl - data);
    token = malloc(2 * size + 128);
    if (token == NULL) {
        return;
    }

    len = make_token(data, hlen, nl + 1, size - hlen - 1, 3, token);
    verify(token, len);

    /* one signature, one spelling: a lax decoder would take all of these */

    for (part = 0; part < 3; part++) {
        len = make_token(data, hlen, nl + 1, size - hlen - 1, part, token);

        if (len && obs_jwt_verify(&policy, token, len, 1700000000, &claims)
                   == OBS_JWT_VALID)
        {
            abort();
        }
    }

    free(token);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char              err[256];
    obs_jwt_keyset_t  ks;

    if (size == 0) {
        return 0;
    }

    switch (data[0] % 3) {

    case 0:
        verify((const char *) data + 1, size - 1);
        break;

    case 1:
        signed_token(data + 1, size - 1);
        break;

    default:
        ks.n = 0;
        (void) obs_jwt_keys_parse(&ks, data + 1, size - 1, NULL, err,
                                  sizeof(err));
        obs_jwt_keys_free(&ks);
    }

    return 0;
}
