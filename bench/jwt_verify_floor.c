/*
 * The floor under an uncached token: OpenSSL's signature check alone,
 * against the whole of obs_jwt_verify() (base64url, header and payload
 * JSON, key choice, signature, claims), on the same token and key.
 *
 *   bench_jwt_floor openssl|obs KEYFILE TOKEN N
 *
 * runs N checks; under callgrind, two values of N give the instructions of
 * one.  "openssl" does what any verifier must: EVP_DigestVerifyInit() and
 * EVP_DigestVerify() over the signing input with the decoded signature
 * (decoded once, outside the loop; ES* signatures converted to DER once).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ngx_http_obs_jwt.h"


static int
openssl_floor(const obs_jwt_key_t *key, const char *token, long n)
{
    int             alg, ok;
    long            i, sig_len;
    size_t          der_len;
    BIGNUM         *r, *s;
    ECDSA_SIG      *es;
    EVP_MD_CTX     *ctx;
    const char     *dot2;
    const EVP_MD   *md;
    unsigned char   sig[1024], der[256], *p, mac[EVP_MAX_MD_SIZE];
    unsigned int    mac_len;

    dot2 = strrchr(token, '.');
    sig_len = obs_jwt_base64url_decode(dot2 + 1, strlen(dot2 + 1), sig);

    /* the one algorithm the key may verify */
    for (alg = 0; !(key->algs & OBS_JWT_ALG_BIT(alg)); alg++) { }

    md = alg == OBS_JWT_EDDSA ? NULL
         : (alg % 3 == 0) ? EVP_sha256()
         : (alg % 3 == 1) ? EVP_sha384() : EVP_sha512();

    if (alg == OBS_JWT_ES256 || alg == OBS_JWT_ES384) {
        md = alg == OBS_JWT_ES256 ? EVP_sha256() : EVP_sha384();
        es = ECDSA_SIG_new();
        r = BN_bin2bn(sig, (int) sig_len / 2, NULL);
        s = BN_bin2bn(sig + sig_len / 2, (int) sig_len / 2, NULL);
        ECDSA_SIG_set0(es, r, s);
        p = der;
        der_len = (size_t) i2d_ECDSA_SIG(es, &p);
        memcpy(sig, der, der_len);
        sig_len = (long) der_len;
        ECDSA_SIG_free(es);
    }

    ok = 0;

    for (i = 0; i < n; i++) {
        if (key->secret) {
            HMAC(md, key->secret, (int) key->secret_len,
                 (const unsigned char *) token, (size_t) (dot2 - token), mac,
                 &mac_len);
            ok += CRYPTO_memcmp(mac, sig, mac_len) == 0;
            continue;
        }

        ctx = EVP_MD_CTX_new();
        ok += EVP_DigestVerifyInit(ctx, NULL, md, NULL, key->pkey) == 1
              && EVP_DigestVerify(ctx, sig, (size_t) sig_len,
                                  (const unsigned char *) token,
                                  (size_t) (dot2 - token)) == 1;
        EVP_MD_CTX_free(ctx);
    }

    return ok == n ? 0 : 1;
}


int
main(int argc, char **argv)
{
    long              i, n, ok;
    char              err[256];
    obs_jwt_claims_t  claims;
    obs_jwt_keyset_t  ks;
    obs_jwt_policy_t  p;

    if (argc != 5) {
        fprintf(stderr, "usage: %s openssl|obs KEYFILE TOKEN N\n", argv[0]);
        return 2;
    }

    ks.n = 0;
    if (obs_jwt_keys_load(&ks, argv[2], NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", argv[2], err);
        return 2;
    }

    n = atol(argv[4]);

    if (strcmp(argv[1], "openssl") == 0) {
        return openssl_floor(&ks.keys[0], argv[3], n);
    }

    memset(&p, 0, sizeof(p));
    p.keys = &ks;
    p.algs = OBS_JWT_ALL_ALGS;
    p.leeway = 60;
    p.tenant_claim = "tenant_id";
    p.user_claim = "sub";

    for (i = 0, ok = 0; i < n; i++) {
        ok += obs_jwt_verify(&p, argv[3], strlen(argv[3]), time(NULL),
                             &claims)
              == OBS_JWT_VALID;
    }

    obs_jwt_keys_free(&ks);
    obs_jwt_done();

    return ok == n ? 0 : 1;
}
