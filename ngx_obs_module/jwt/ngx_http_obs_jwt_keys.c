/*
 * Verification keys from JWKS (RFC 7517) and PEM files.  Every key comes
 * out with the set of algorithms it may check, derived from what the key is
 * (kty, curve, size), narrowed by its "alg" member: a token's "alg" is
 * only ever honoured when the key agrees.  Plain C; see ngx_http_obs_jwt.h.
 */


#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ngx_http_obs_jwt.h"


#define OBS_JWT_RSA_MIN_BITS  2048

#define OBS_JWT_HS_ALGS                                                      \
    (OBS_JWT_ALG_BIT(OBS_JWT_HS256) | OBS_JWT_ALG_BIT(OBS_JWT_HS384)         \
     | OBS_JWT_ALG_BIT(OBS_JWT_HS512))
#define OBS_JWT_RS_ALGS                                                      \
    (OBS_JWT_ALG_BIT(OBS_JWT_RS256) | OBS_JWT_ALG_BIT(OBS_JWT_RS384)         \
     | OBS_JWT_ALG_BIT(OBS_JWT_RS512))


static int obs_jwt_jwks_parse(obs_jwt_keyset_t *ks, json_t *root,
    char *err, size_t errlen);
static int obs_jwt_jwk_parse(obs_jwt_key_t *key, json_t *jwk, char *err,
    size_t errlen);
static EVP_PKEY *obs_jwt_jwk_rsa(json_t *jwk, char *err, size_t errlen);
static EVP_PKEY *obs_jwt_jwk_ec(json_t *jwk, char *err, size_t errlen);
static EVP_PKEY *obs_jwt_jwk_okp(json_t *jwk, char *err, size_t errlen);
static EVP_PKEY *obs_jwt_pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld,
    char *err, size_t errlen);
static unsigned char *obs_jwt_jwk_bytes(json_t *jwk, const char *name,
    size_t *len, char *err, size_t errlen);
static int obs_jwt_pem_parse(obs_jwt_keyset_t *ks, const unsigned char *data,
    size_t len, const char *kid, char *err, size_t errlen);
static EVP_PKEY *obs_jwt_pem_block(const char *name, const unsigned char *der,
    long len, char *err, size_t errlen);
static unsigned obs_jwt_pkey_algs(EVP_PKEY *pkey, char *err, size_t errlen);
static int obs_jwt_keys_unique(const obs_jwt_keyset_t *ks, char *err,
    size_t errlen);
static int obs_jwt_error(char *err, size_t errlen, const char *fmt, ...);


int
obs_jwt_keys_load(obs_jwt_keyset_t *ks, const char *path, const char *kid,
    char *err, size_t errlen)
{
    int             rc;
    FILE           *f;
    size_t          n;
    unsigned char  *data;

    f = fopen(path, "r");
    if (f == NULL) {
        return obs_jwt_error(err, errlen, "cannot open: %s", strerror(errno));
    }

    data = malloc(OBS_JWT_MAX_KEY_FILE + 1);
    if (data == NULL) {
        fclose(f);
        return obs_jwt_error(err, errlen, "out of memory");
    }

    n = fread(data, 1, OBS_JWT_MAX_KEY_FILE + 1, f);

    if (ferror(f)) {
        rc = obs_jwt_error(err, errlen, "cannot read: %s", strerror(errno));

    } else if (n > OBS_JWT_MAX_KEY_FILE) {
        rc = obs_jwt_error(err, errlen, "larger than %d bytes",
                           OBS_JWT_MAX_KEY_FILE);

    } else {
        rc = obs_jwt_keys_parse(ks, data, n, kid, err, errlen);
    }

    fclose(f);
    free(data);

    return rc;
}


int
obs_jwt_keys_parse(obs_jwt_keyset_t *ks, const unsigned char *data,
    size_t len, const char *kid, char *err, size_t errlen)
{
    int           rc;
    size_t        i;
    json_t       *root;
    json_error_t  jerr;

    for (i = 0; i < len && strchr(" \t\r\n", data[i]) && data[i]; i++) {
        /* void */
    }

    if (i == len || data[i] != '{') {
        return obs_jwt_pem_parse(ks, data, len, kid, err, errlen);
    }

    if (kid) {
        return obs_jwt_error(err, errlen,
                             "kid= is for PEM files; a JWKS names its keys");
    }

    root = json_loadb((const char *) data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        return obs_jwt_error(err, errlen, "invalid JSON at line %d: %s",
                             jerr.line, jerr.text);
    }

    rc = obs_jwt_jwks_parse(ks, root, err, errlen);

    json_decref(root);

    return rc;
}


void
obs_jwt_keys_free(obs_jwt_keyset_t *ks)
{
    size_t  i;

    for (i = 0; i < ks->n; i++) {
        free(ks->keys[i].kid);
        EVP_PKEY_free(ks->keys[i].pkey);

        if (ks->keys[i].secret) {
            OPENSSL_cleanse(ks->keys[i].secret, ks->keys[i].secret_len);
            free(ks->keys[i].secret);
        }
    }

    ks->n = 0;
}


/* {"keys": [...]}: keys for encryption or other uses are skipped. */

static int
obs_jwt_jwks_parse(obs_jwt_keyset_t *ks, json_t *root, char *err,
    size_t errlen)
{
    int      rc;
    char     msg[256];
    size_t   i, added;
    json_t  *keys, *jwk, *use, *ops, *op;

    keys = json_object_get(root, "keys");
    if (!json_is_array(keys)) {
        return obs_jwt_error(err, errlen, "a JWKS needs a \"keys\" array");
    }

    added = 0;

    json_array_foreach(keys, i, jwk) {

        if (!json_is_object(jwk)) {
            return obs_jwt_error(err, errlen, "key %zu is not an object", i);
        }

        use = json_object_get(jwk, "use");
        if (use && !json_is_string(use)) {
            return obs_jwt_error(err, errlen, "key %zu: \"use\" is not a "
                                 "string", i);
        }

        if (use && strcmp(json_string_value(use), "sig") != 0) {
            continue;
        }

        ops = json_object_get(jwk, "key_ops");
        if (ops) {
            size_t  k;
            int     verify = 0;

            json_array_foreach(ops, k, op) {
                if (json_is_string(op)
                    && strcmp(json_string_value(op), "verify") == 0)
                {
                    verify = 1;
                }
            }

            if (!verify) {
                continue;
            }
        }

        if (ks->n == OBS_JWT_MAX_KEYS) {
            return obs_jwt_error(err, errlen, "more than %d keys",
                                 OBS_JWT_MAX_KEYS);
        }

        rc = obs_jwt_jwk_parse(&ks->keys[ks->n], jwk, msg, sizeof(msg));
        if (rc != 0) {
            return obs_jwt_error(err, errlen, "key %zu: %s", i, msg);
        }

        ks->n++;
        added++;
    }

    if (added == 0) {
        return obs_jwt_error(err, errlen, "no signature verification keys");
    }

    return obs_jwt_keys_unique(ks, err, errlen);
}


static int
obs_jwt_jwk_parse(obs_jwt_key_t *key, json_t *jwk, char *err, size_t errlen)
{
    int          a;
    unsigned     algs;
    json_t      *kid, *alg;
    const char  *kty;

    memset(key, 0, sizeof(obs_jwt_key_t));

    kty = json_string_value(json_object_get(jwk, "kty"));
    if (kty == NULL) {
        return obs_jwt_error(err, errlen, "no \"kty\"");
    }

    kid = json_object_get(jwk, "kid");
    if (kid && !json_is_string(kid)) {
        return obs_jwt_error(err, errlen, "\"kid\" is not a string");
    }

    if (strcmp(kty, "RSA") == 0) {
        key->pkey = obs_jwt_jwk_rsa(jwk, err, errlen);

    } else if (strcmp(kty, "EC") == 0) {
        key->pkey = obs_jwt_jwk_ec(jwk, err, errlen);

    } else if (strcmp(kty, "OKP") == 0) {
        key->pkey = obs_jwt_jwk_okp(jwk, err, errlen);

    } else if (strcmp(kty, "oct") == 0) {
        key->secret = obs_jwt_jwk_bytes(jwk, "k", &key->secret_len, err,
                                        errlen);
        if (key->secret == NULL) {
            return -1;
        }

    } else {
        return obs_jwt_error(err, errlen, "unsupported kty \"%s\"", kty);
    }

    if (key->secret) {
        /* RFC 7518 3.2: a key at least as long as the hash output */
        algs = (key->secret_len >= 32 ? OBS_JWT_ALG_BIT(OBS_JWT_HS256) : 0)
               | (key->secret_len >= 48 ? OBS_JWT_ALG_BIT(OBS_JWT_HS384) : 0)
               | (key->secret_len >= 64 ? OBS_JWT_ALG_BIT(OBS_JWT_HS512) : 0);

        if (algs == 0) {
            obs_jwt_error(err, errlen, "an HMAC key needs at least 32 bytes");
            goto failed;
        }

    } else if (key->pkey == NULL) {
        return -1;

    } else {
        algs = obs_jwt_pkey_algs(key->pkey, err, errlen);
        if (algs == 0) {
            goto failed;
        }
    }

    alg = json_object_get(jwk, "alg");
    if (alg) {
        a = json_is_string(alg)
            ? obs_jwt_alg(json_string_value(alg), json_string_length(alg))
            : -1;

        if (a < 0 || !(algs & OBS_JWT_ALG_BIT(a))) {
            obs_jwt_error(err, errlen, "\"alg\" is not one this %s key can "
                          "verify", kty);
            goto failed;
        }

        algs = OBS_JWT_ALG_BIT(a);
    }

    key->algs = algs;

    if (kid) {
        key->kid = strdup(json_string_value(kid));
        if (key->kid == NULL) {
            obs_jwt_error(err, errlen, "out of memory");
            goto failed;
        }
    }

    return 0;

failed:

    EVP_PKEY_free(key->pkey);
    free(key->secret);
    memset(key, 0, sizeof(obs_jwt_key_t));

    return -1;
}


static EVP_PKEY *
obs_jwt_jwk_rsa(json_t *jwk, char *err, size_t errlen)
{
    size_t           n_len, e_len;
    BIGNUM          *n, *e;
    EVP_PKEY        *pkey;
    unsigned char   *n_bytes, *e_bytes;
    OSSL_PARAM_BLD  *bld;

    pkey = NULL;
    n = NULL;
    e = NULL;
    e_bytes = NULL;
    bld = NULL;

    n_bytes = obs_jwt_jwk_bytes(jwk, "n", &n_len, err, errlen);
    if (n_bytes == NULL) {
        return NULL;
    }

    e_bytes = obs_jwt_jwk_bytes(jwk, "e", &e_len, err, errlen);
    if (e_bytes == NULL) {
        goto done;
    }

    n = BN_bin2bn(n_bytes, (int) n_len, NULL);
    e = BN_bin2bn(e_bytes, (int) e_len, NULL);
    bld = OSSL_PARAM_BLD_new();

    if (n == NULL || e == NULL || bld == NULL
        || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n)
        || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
    {
        obs_jwt_error(err, errlen, "out of memory");
        goto done;
    }

    pkey = obs_jwt_pkey_fromdata("RSA", bld, err, errlen);

done:

    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    free(n_bytes);
    free(e_bytes);

    return pkey;
}


static EVP_PKEY *
obs_jwt_jwk_ec(json_t *jwk, char *err, size_t errlen)
{
    size_t           x_len, y_len, size;
    EVP_PKEY        *pkey;
    const char      *crv, *group;
    unsigned char   *x, *y, point[1 + 2 * 48];
    OSSL_PARAM_BLD  *bld;

    crv = json_string_value(json_object_get(jwk, "crv"));

    if (crv && strcmp(crv, "P-256") == 0) {
        group = "prime256v1";
        size = 32;

    } else if (crv && strcmp(crv, "P-384") == 0) {
        group = "secp384r1";
        size = 48;

    } else {
        obs_jwt_error(err, errlen, "unsupported EC curve \"%s\"",
                      crv ? crv : "");
        return NULL;
    }

    pkey = NULL;
    bld = NULL;

    x = obs_jwt_jwk_bytes(jwk, "x", &x_len, err, errlen);
    y = x ? obs_jwt_jwk_bytes(jwk, "y", &y_len, err, errlen) : NULL;

    if (x == NULL || y == NULL) {
        goto done;
    }

    if (x_len != size || y_len != size) {
        obs_jwt_error(err, errlen, "\"x\" and \"y\" must be %zu bytes for %s",
                      size, crv);
        goto done;
    }

    /* an uncompressed point: 04 || x || y */
    point[0] = 0x04;
    memcpy(point + 1, x, size);
    memcpy(point + 1 + size, y, size);

    bld = OSSL_PARAM_BLD_new();

    if (bld == NULL
        || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                            group, 0)
        || !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
                                             point, 1 + 2 * size))
    {
        obs_jwt_error(err, errlen, "out of memory");
        goto done;
    }

    pkey = obs_jwt_pkey_fromdata("EC", bld, err, errlen);

done:

    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);

    return pkey;
}


static EVP_PKEY *
obs_jwt_jwk_okp(json_t *jwk, char *err, size_t errlen)
{
    size_t          len;
    EVP_PKEY       *pkey;
    const char     *crv;
    unsigned char  *x;

    crv = json_string_value(json_object_get(jwk, "crv"));

    if (crv == NULL || strcmp(crv, "Ed25519") != 0) {
        obs_jwt_error(err, errlen, "unsupported OKP curve \"%s\"",
                      crv ? crv : "");
        return NULL;
    }

    x = obs_jwt_jwk_bytes(jwk, "x", &len, err, errlen);
    if (x == NULL) {
        return NULL;
    }

    pkey = NULL;

    if (len != 32) {
        obs_jwt_error(err, errlen, "\"x\" must be 32 bytes for Ed25519");

    } else {
        pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, len);
        if (pkey == NULL) {
            obs_jwt_error(err, errlen, "invalid Ed25519 key");
        }
    }

    free(x);

    return pkey;
}


/* A public key from parameters, checked (an EC point must be on its curve). */

static EVP_PKEY *
obs_jwt_pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld, char *err,
    size_t errlen)
{
    EVP_PKEY      *pkey;
    OSSL_PARAM    *params;
    EVP_PKEY_CTX  *ctx, *check;

    pkey = NULL;
    check = NULL;

    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);

    if (params == NULL || ctx == NULL
        || EVP_PKEY_fromdata_init(ctx) <= 0
        || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
    {
        obs_jwt_error(err, errlen, "invalid %s key", type);
        goto done;
    }

    check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);

    if (check == NULL || EVP_PKEY_public_check(check) <= 0) {
        obs_jwt_error(err, errlen, "invalid %s public key", type);
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }

done:

    ERR_clear_error();
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);

    return pkey;
}


/* A base64url member of a JWK, decoded into memory the caller frees. */

static unsigned char *
obs_jwt_jwk_bytes(json_t *jwk, const char *name, size_t *len, char *err,
    size_t errlen)
{
    long            n;
    size_t          size;
    json_t         *v;
    unsigned char  *out;

    v = json_object_get(jwk, name);

    if (!json_is_string(v) || json_string_length(v) == 0) {
        obs_jwt_error(err, errlen, "\"%s\" is missing or not a string", name);
        return NULL;
    }

    size = json_string_length(v);

    out = malloc(size * 3 / 4 + 3);
    if (out == NULL) {
        obs_jwt_error(err, errlen, "out of memory");
        return NULL;
    }

    n = obs_jwt_base64url_decode(json_string_value(v), size, out);
    if (n <= 0) {
        obs_jwt_error(err, errlen, "\"%s\" is not base64url", name);
        free(out);
        return NULL;
    }

    *len = (size_t) n;

    return out;
}


/* PEM public keys or certificates; a private key is refused. */

static int
obs_jwt_pem_parse(obs_jwt_keyset_t *ks, const unsigned char *data,
    size_t len, const char *kid, char *err, size_t errlen)
{
    int             rc;
    BIO            *bio;
    long            der_len;
    char           *name, *header, msg[256];
    size_t          added;
    unsigned        algs;
    EVP_PKEY       *pkey;
    unsigned char  *der;

    bio = BIO_new_mem_buf(data, (int) len);
    if (bio == NULL) {
        return obs_jwt_error(err, errlen, "out of memory");
    }

    rc = 0;
    added = 0;

    while (PEM_read_bio(bio, &name, &header, &der, &der_len)) {

        pkey = obs_jwt_pem_block(name, der, der_len, msg, sizeof(msg));
        algs = pkey ? obs_jwt_pkey_algs(pkey, msg, sizeof(msg)) : 0;

        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(der);

        if (algs == 0) {
            EVP_PKEY_free(pkey);
            rc = obs_jwt_error(err, errlen, "PEM block %zu: %s", added + 1,
                               msg);
            break;
        }

        if (ks->n == OBS_JWT_MAX_KEYS) {
            EVP_PKEY_free(pkey);
            rc = obs_jwt_error(err, errlen, "more than %d keys",
                               OBS_JWT_MAX_KEYS);
            break;
        }

        memset(&ks->keys[ks->n], 0, sizeof(obs_jwt_key_t));
        ks->keys[ks->n].pkey = pkey;
        ks->keys[ks->n].algs = algs;
        ks->n++;
        added++;
    }

    BIO_free(bio);
    ERR_clear_error();

    if (rc != 0) {
        return rc;
    }

    if (added == 0) {
        return obs_jwt_error(err, errlen, "neither a JWKS nor a PEM public "
                             "key");
    }

    if (kid) {
        if (added > 1) {
            return obs_jwt_error(err, errlen, "kid= names one key, the file "
                                 "has %zu", added);
        }

        ks->keys[ks->n - 1].kid = strdup(kid);
        if (ks->keys[ks->n - 1].kid == NULL) {
            return obs_jwt_error(err, errlen, "out of memory");
        }
    }

    return obs_jwt_keys_unique(ks, err, errlen);
}


static EVP_PKEY *
obs_jwt_pem_block(const char *name, const unsigned char *der, long len,
    char *err, size_t errlen)
{
    X509      *x509;
    EVP_PKEY  *pkey;

    if (strstr(name, "PRIVATE KEY")) {
        obs_jwt_error(err, errlen, "a private key: give the public key only");
        return NULL;
    }

    if (strcmp(name, "PUBLIC KEY") == 0) {
        pkey = d2i_PUBKEY(NULL, &der, len);

    } else if (strcmp(name, "CERTIFICATE") == 0) {
        x509 = d2i_X509(NULL, &der, len);
        pkey = x509 ? X509_get_pubkey(x509) : NULL;
        X509_free(x509);

    } else {
        obs_jwt_error(err, errlen, "unsupported \"%s\" (PUBLIC KEY or "
                      "CERTIFICATE)", name);
        return NULL;
    }

    if (pkey == NULL) {
        obs_jwt_error(err, errlen, "invalid %s", name);
    }

    return pkey;
}


/* What a public key can verify: 0, with err set, when nothing we accept. */

static unsigned
obs_jwt_pkey_algs(EVP_PKEY *pkey, char *err, size_t errlen)
{
    char  group[64];

    switch (EVP_PKEY_get_base_id(pkey)) {

    case EVP_PKEY_RSA:
        if (EVP_PKEY_get_bits(pkey) < OBS_JWT_RSA_MIN_BITS) {
            obs_jwt_error(err, errlen, "an RSA key needs at least %d bits",
                          OBS_JWT_RSA_MIN_BITS);
            return 0;
        }

        return OBS_JWT_RS_ALGS;

    case EVP_PKEY_EC:
        if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
                                            group, sizeof(group), NULL))
        {
            break;
        }

        if (strcmp(group, "prime256v1") == 0) {
            return OBS_JWT_ALG_BIT(OBS_JWT_ES256);
        }

        if (strcmp(group, "secp384r1") == 0) {
            return OBS_JWT_ALG_BIT(OBS_JWT_ES384);
        }

        obs_jwt_error(err, errlen, "unsupported EC curve \"%s\" (P-256 or "
                      "P-384)", group);
        return 0;

    case EVP_PKEY_ED25519:
        return OBS_JWT_ALG_BIT(OBS_JWT_EDDSA);
    }

    obs_jwt_error(err, errlen, "unsupported key type (RSA, EC or Ed25519)");

    return 0;
}


/* Two keys with one kid would make the choice of key ambiguous. */

static int
obs_jwt_keys_unique(const obs_jwt_keyset_t *ks, char *err, size_t errlen)
{
    size_t       i, j;
    const char  *kid;

    for (i = 0; i < ks->n; i++) {
        kid = ks->keys[i].kid;

        for (j = i + 1; kid && j < ks->n; j++) {
            if (ks->keys[j].kid && strcmp(kid, ks->keys[j].kid) == 0) {
                return obs_jwt_error(err, errlen, "kid \"%s\" is used twice",
                                     ks->keys[i].kid);
            }
        }
    }

    return 0;
}


static int
obs_jwt_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(err, errlen, fmt, args);
    va_end(args);

    return -1;
}
