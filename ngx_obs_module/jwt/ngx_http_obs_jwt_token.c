/*
 * A compact JWS (RFC 7515) checked against a policy: the header's "alg"
 * must be allowed and agree with the key, the signature is checked before
 * the payload is read, then the types of the registered claims, exp/nbf,
 * iss, aud and the tenant and user claims.  JSON goes through jansson,
 * base64url through OpenSSL (canonical text only).  Plain C; see
 * ngx_http_obs_jwt.h.
 */


#include <math.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/hmac.h>

#include "ngx_http_obs_jwt.h"


/* NumericDates beyond +-2^53 s are clamped, so that leeway never overflows */
#define OBS_JWT_TIME_MAX  (INT64_C(1) << 53)


typedef struct {
    const char               *md_name;     /* NULL: EdDSA */
    size_t                    ec_size;     /* ES*: bytes of r and of s */
} obs_jwt_alg_t;


static const obs_jwt_alg_t  obs_jwt_algs[OBS_JWT_ALGS] = {
    { "SHA256", 0 }, { "SHA384", 0 }, { "SHA512", 0 },
    { "SHA256", 0 }, { "SHA384", 0 }, { "SHA512", 0 },
    { "SHA256", 32 }, { "SHA384", 48 },
    { NULL, 0 }
};


/* digests fetched once: a fetch per check costs a provider lookup */
static EVP_MD  *obs_jwt_mds[OBS_JWT_ALGS];


const char *const  obs_jwt_status_names[OBS_JWT_RESULTS] = {
    "valid", "missing", "malformed", "alg_not_allowed", "unknown_key",
    "bad_signature", "expired", "not_yet_valid", "bad_issuer",
    "bad_audience", "missing_claim"
};

const char *const  obs_jwt_alg_names[OBS_JWT_ALGS] = {
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384",
    "EdDSA"
};


static json_t *obs_jwt_decode_json(const char *in, size_t len,
    unsigned char *buf);
static obs_jwt_status_e obs_jwt_check_signature(const obs_jwt_policy_t *p,
    int alg, const char *kid, const char *input, size_t input_len,
    const unsigned char *sig, size_t sig_len);
static int obs_jwt_signature_ok(const obs_jwt_key_t *key, int alg,
    const char *input, size_t input_len, const unsigned char *sig,
    size_t sig_len);
static int obs_jwt_hmac_ok(const obs_jwt_key_t *key, const EVP_MD *md,
    const char *input, size_t input_len, const unsigned char *sig,
    size_t sig_len);
static int obs_jwt_ecdsa_der(const unsigned char *sig, size_t size,
    unsigned char *der, size_t *der_len);
static const EVP_MD *obs_jwt_md(int alg);
static obs_jwt_status_e obs_jwt_claims(const obs_jwt_policy_t *p,
    json_t *payload, int64_t now, obs_jwt_claims_t *claims);
static int obs_jwt_time(json_t *payload, const char *name, int64_t *t);
static int obs_jwt_strings(json_t *v);
static int obs_jwt_one_of(json_t *v, const char *const *values, size_t n);
static int obs_jwt_claim(json_t *payload, const char *name, char *out,
    size_t *len);
static void obs_jwt_copy_string(json_t *obj, const char *name, char *out,
    size_t size);


obs_jwt_status_e
obs_jwt_verify(const obs_jwt_policy_t *p, const char *token, size_t len,
    int64_t now, obs_jwt_claims_t *claims)
{
    int                alg;
    long               sig_len;
    json_t            *header, *payload;
    const char        *dot1, *dot2, *end, *kid;
    obs_jwt_status_e   rc;
    unsigned char      buf[OBS_JWT_MAX_TOKEN];

    if (len == 0) {
        return OBS_JWT_MISSING;
    }

    if (len > OBS_JWT_MAX_TOKEN) {
        return OBS_JWT_MALFORMED;
    }

    end = token + len;
    dot1 = memchr(token, '.', len);
    dot2 = dot1 ? memchr(dot1 + 1, '.', end - dot1 - 1) : NULL;

    /* three parts exactly: five would be an encrypted JWT */

    if (dot2 == NULL || memchr(dot2 + 1, '.', end - dot2 - 1)) {
        return OBS_JWT_MALFORMED;
    }

    header = obs_jwt_decode_json(token, dot1 - token, buf);
    if (header == NULL) {
        return OBS_JWT_MALFORMED;
    }

    kid = NULL;
    rc = OBS_JWT_MALFORMED;

    /* "crit" names extensions that must be understood: none is */

    if (!json_is_string(json_object_get(header, "alg"))
        || json_object_get(header, "crit")
        || (json_object_get(header, "kid")
            && !json_is_string(json_object_get(header, "kid"))))
    {
        goto done;
    }

    alg = obs_jwt_alg(json_string_value(json_object_get(header, "alg")),
                      json_string_length(json_object_get(header, "alg")));

    if (alg < 0 || !(p->algs & OBS_JWT_ALG_BIT(alg))) {
        rc = OBS_JWT_ALG_NOT_ALLOWED;
        goto done;
    }

    kid = json_string_value(json_object_get(header, "kid"));

    sig_len = obs_jwt_base64url_decode(dot2 + 1, end - dot2 - 1, buf);
    if (sig_len <= 0) {
        goto done;
    }

    rc = obs_jwt_check_signature(p, alg, kid, token, dot2 - token, buf,
                                 (size_t) sig_len);
    if (rc != OBS_JWT_VALID) {
        goto done;
    }

    payload = obs_jwt_decode_json(dot1 + 1, dot2 - dot1 - 1, buf);
    if (payload == NULL) {
        rc = OBS_JWT_MALFORMED;
        goto done;
    }

    rc = obs_jwt_claims(p, payload, now, claims);

    json_decref(payload);

done:

    json_decref(header);

    return rc;
}


void
obs_jwt_describe(const char *token, size_t len, obs_jwt_described_t *d)
{
    json_t         *part;
    const char     *dot1, *dot2, *end;
    unsigned char   buf[OBS_JWT_MAX_TOKEN];

    d->kid[0] = '\0';
    d->alg[0] = '\0';
    d->iss[0] = '\0';

    if (len == 0 || len > OBS_JWT_MAX_TOKEN) {
        return;
    }

    end = token + len;
    dot1 = memchr(token, '.', len);
    if (dot1 == NULL) {
        return;
    }

    part = obs_jwt_decode_json(token, dot1 - token, buf);
    if (part) {
        obs_jwt_copy_string(part, "kid", d->kid, sizeof(d->kid));
        obs_jwt_copy_string(part, "alg", d->alg, sizeof(d->alg));
        json_decref(part);
    }

    dot2 = memchr(dot1 + 1, '.', end - dot1 - 1);
    if (dot2 == NULL) {
        return;
    }

    part = obs_jwt_decode_json(dot1 + 1, dot2 - dot1 - 1, buf);
    if (part) {
        obs_jwt_copy_string(part, "iss", d->iss, sizeof(d->iss));
        json_decref(part);
    }
}


obs_jwt_status_e
obs_jwt_check_time(const obs_jwt_policy_t *p, const obs_jwt_claims_t *claims,
    int64_t now)
{
    if (claims->exp != INT64_MAX && now >= claims->exp + p->leeway) {
        return OBS_JWT_EXPIRED;
    }

    if (claims->nbf != INT64_MIN && now < claims->nbf - p->leeway) {
        return OBS_JWT_NOT_YET_VALID;
    }

    return OBS_JWT_VALID;
}


int
obs_jwt_alg(const char *name, size_t len)
{
    int  a;

    for (a = 0; a < OBS_JWT_ALGS; a++) {
        if (strlen(obs_jwt_alg_names[a]) == len
            && memcmp(obs_jwt_alg_names[a], name, len) == 0)
        {
            return a;
        }
    }

    return -1;
}


/*
 * OpenSSL decodes standard base64 with padding: the alphabet is translated
 * and the padding added in a copy, and the padding's zero bytes taken off.
 * Only canonical text is taken (RFC 4648 3.5): the low bits of a last
 * character that carry no data must be zero, or two (2 bits) or four
 * (4 bits) more strings would decode to the same bytes, and one signature
 * would make several tokens.
 */

long
obs_jwt_base64url_decode(const char *in, size_t len, unsigned char *out)
{
    int     n, v;
    char    c, copy[OBS_JWT_MAX_TOKEN + 4];
    size_t  i, pad;

    if (len > OBS_JWT_MAX_TOKEN || len % 4 == 1) {
        return -1;
    }

    v = 0;

    for (i = 0; i < len; i++) {
        c = in[i];

        if (c >= 'A' && c <= 'Z') {
            v = c - 'A';

        } else if (c >= 'a' && c <= 'z') {
            v = c - 'a' + 26;

        } else if (c >= '0' && c <= '9') {
            v = c - '0' + 52;

        } else if (c == '-') {
            v = 62;
            c = '+';

        } else if (c == '_') {
            v = 63;
            c = '/';

        } else {
            return -1;
        }

        copy[i] = c;
    }

    /* v: the last character's value; 2 or 3 characters end the text */

    if ((len % 4 == 2 && (v & 0x0f)) || (len % 4 == 3 && (v & 0x03))) {
        return -1;
    }

    pad = (4 - len % 4) % 4;
    memset(copy + len, '=', pad);

    if (len == 0) {
        return 0;
    }

    n = EVP_DecodeBlock(out, (unsigned char *) copy, (int) (len + pad));
    if (n < 0) {
        return -1;
    }

    return n - (long) pad;
}


/* A base64url part holding a JSON object, or NULL. */

static json_t *
obs_jwt_decode_json(const char *in, size_t len, unsigned char *buf)
{
    long           n;
    json_t        *v;
    json_error_t   err;

    n = obs_jwt_base64url_decode(in, len, buf);
    if (n <= 0) {
        return NULL;
    }

    /* duplicated names could mean one thing to us and another upstream */

    v = json_loadb((const char *) buf, (size_t) n, JSON_REJECT_DUPLICATES,
                   &err);

    if (v != NULL && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }

    return v;
}


/*
 * Tries the keys the token may name: a key without a kid answers any, a
 * token without a kid may use any key.  Only keys that agree with alg are
 * tried, so an RSA public key is never taken for an HMAC secret.
 */

static obs_jwt_status_e
obs_jwt_check_signature(const obs_jwt_policy_t *p, int alg, const char *kid,
    const char *input, size_t input_len, const unsigned char *sig,
    size_t sig_len)
{
    size_t                  i;
    obs_jwt_status_e        rc;
    const obs_jwt_key_t    *key;

    rc = OBS_JWT_UNKNOWN_KEY;

    for (i = 0; i < p->keys->n; i++) {
        key = &p->keys->keys[i];

        if (key->kid && kid && strcmp(key->kid, kid) != 0) {
            continue;
        }

        if (!(key->algs & OBS_JWT_ALG_BIT(alg))) {
            if (rc == OBS_JWT_UNKNOWN_KEY) {
                rc = OBS_JWT_ALG_NOT_ALLOWED;
            }

            continue;
        }

        if (obs_jwt_signature_ok(key, alg, input, input_len, sig, sig_len)) {
            return OBS_JWT_VALID;
        }

        rc = OBS_JWT_BAD_SIGNATURE;
    }

    return rc;
}


static int
obs_jwt_signature_ok(const obs_jwt_key_t *key, int alg, const char *input,
    size_t input_len, const unsigned char *sig, size_t sig_len)
{
    int            ok;
    size_t         der_len;
    EVP_MD_CTX    *ctx;
    const EVP_MD  *md;
    unsigned char  der[2 * 48 + 16];

    md = obs_jwt_md(alg);
    if (md == NULL && obs_jwt_algs[alg].md_name) {
        return 0;
    }

    if (key->secret) {
        return obs_jwt_hmac_ok(key, md, input, input_len, sig, sig_len);
    }

    if (obs_jwt_algs[alg].ec_size) {
        if (sig_len != 2 * obs_jwt_algs[alg].ec_size
            || !obs_jwt_ecdsa_der(sig, obs_jwt_algs[alg].ec_size, der,
                                  &der_len))
        {
            return 0;
        }

        sig = der;
        sig_len = der_len;
    }

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return 0;
    }

    ok = EVP_DigestVerifyInit(ctx, NULL, md, NULL, key->pkey) == 1
         && EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *) input,
                             input_len) == 1;

    EVP_MD_CTX_free(ctx);
    ERR_clear_error();

    return ok;
}


static int
obs_jwt_hmac_ok(const obs_jwt_key_t *key, const EVP_MD *md,
    const char *input, size_t input_len, const unsigned char *sig,
    size_t sig_len)
{
    unsigned int   mac_len;
    unsigned char  mac[EVP_MAX_MD_SIZE];

    if (HMAC(md, key->secret, (int) key->secret_len,
             (const unsigned char *) input, input_len, mac, &mac_len)
        == NULL)
    {
        ERR_clear_error();
        return 0;
    }

    return sig_len == mac_len && CRYPTO_memcmp(sig, mac, mac_len) == 0;
}


/* JWS carries ECDSA as r || s (RFC 7518 3.4); OpenSSL wants DER. */

static int
obs_jwt_ecdsa_der(const unsigned char *sig, size_t size, unsigned char *der,
    size_t *der_len)
{
    int         n;
    BIGNUM     *r, *s;
    ECDSA_SIG  *es;

    es = ECDSA_SIG_new();
    r = BN_bin2bn(sig, (int) size, NULL);
    s = BN_bin2bn(sig + size, (int) size, NULL);

    if (es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(es, r, s)) {
        ECDSA_SIG_free(es);
        BN_free(r);
        BN_free(s);
        return 0;
    }

    /* es owns r and s now; der has room for the largest encoding */

    n = i2d_ECDSA_SIG(es, NULL);
    if (n > 0 && (size_t) n <= 2 * size + 16) {
        n = i2d_ECDSA_SIG(es, &der);
    }

    ECDSA_SIG_free(es);

    if (n <= 0 || (size_t) n > 2 * size + 16) {
        return 0;
    }

    *der_len = (size_t) n;

    return 1;
}


static const EVP_MD *
obs_jwt_md(int alg)
{
    if (obs_jwt_algs[alg].md_name == NULL) {
        return NULL;
    }

    if (obs_jwt_mds[alg] == NULL) {
        obs_jwt_mds[alg] = EVP_MD_fetch(NULL, obs_jwt_algs[alg].md_name,
                                        NULL);
    }

    return obs_jwt_mds[alg];
}


void
obs_jwt_done(void)
{
    int  a;

    for (a = 0; a < OBS_JWT_ALGS; a++) {
        EVP_MD_free(obs_jwt_mds[a]);
        obs_jwt_mds[a] = NULL;
    }
}


/*
 * A registered claim of the wrong type (RFC 7519 4.1) makes the token
 * malformed, whether this policy checks that claim or not: "iss" a string,
 * "aud" a string or an array of strings, "exp", "nbf" and "iat" numbers.
 * The tenant claim must be a non-empty string or an integer; the user
 * claim may be absent (no user), else the same; a claim that is there but
 * unfit (another type, over OBS_JWT_MAX_CLAIM bytes, a control character)
 * is missing_claim.
 */

static obs_jwt_status_e
obs_jwt_claims(const obs_jwt_policy_t *p, json_t *payload, int64_t now,
    obs_jwt_claims_t *claims)
{
    int64_t           iat;
    json_t           *iss, *aud;
    obs_jwt_status_e  rc;

    iss = json_object_get(payload, "iss");
    aud = json_object_get(payload, "aud");

    if (obs_jwt_time(payload, "exp", &claims->exp) != 0
        || obs_jwt_time(payload, "nbf", &claims->nbf) != 0
        || obs_jwt_time(payload, "iat", &iat) != 0
        || (iss && !json_is_string(iss))
        || (aud && !obs_jwt_strings(aud)))
    {
        return OBS_JWT_MALFORMED;
    }

    if (claims->exp == INT64_MIN) {
        claims->exp = INT64_MAX;
    }

    rc = obs_jwt_check_time(p, claims, now);
    if (rc != OBS_JWT_VALID) {
        return rc;
    }

    if (p->n_issuers && !obs_jwt_one_of(iss, p->issuers, p->n_issuers)) {
        return OBS_JWT_BAD_ISSUER;
    }

    if (p->n_audiences
        && !obs_jwt_one_of(aud, p->audiences, p->n_audiences))
    {
        return OBS_JWT_BAD_AUDIENCE;
    }

    if (obs_jwt_claim(payload, p->tenant_claim, claims->tenant,
                      &claims->tenant_len)
        != 0
        || claims->tenant_len == 0)
    {
        return OBS_JWT_MISSING_CLAIM;
    }

    claims->user_len = 0;

    if (p->user_claim
        && obs_jwt_claim(payload, p->user_claim, claims->user,
                         &claims->user_len)
           != 0)
    {
        return OBS_JWT_MISSING_CLAIM;
    }

    return OBS_JWT_VALID;
}


/* A NumericDate claim: INT64_MIN when absent, -1 when not a number. */

static int
obs_jwt_time(json_t *payload, const char *name, int64_t *t)
{
    double   d;
    json_t  *v;

    v = json_object_get(payload, name);

    if (v == NULL) {
        *t = INT64_MIN;
        return 0;
    }

    if (!json_is_number(v)) {
        return -1;
    }

    d = floor(json_number_value(v));

    if (d > (double) OBS_JWT_TIME_MAX) {
        d = (double) OBS_JWT_TIME_MAX;

    } else if (d < -(double) OBS_JWT_TIME_MAX) {
        d = -(double) OBS_JWT_TIME_MAX;
    }

    *t = (int64_t) d;

    return 0;
}


/* A string, or an array of nothing but strings (as "aud" may be). */

static int
obs_jwt_strings(json_t *v)
{
    size_t   k;
    json_t  *item;

    if (json_is_string(v)) {
        return 1;
    }

    if (!json_is_array(v)) {
        return 0;
    }

    json_array_foreach(v, k, item) {
        if (!json_is_string(item)) {
            return 0;
        }
    }

    return 1;
}


/* Whether v (checked by obs_jwt_strings(), or NULL) names a value. */

static int
obs_jwt_one_of(json_t *v, const char *const *values, size_t n)
{
    size_t   i, k;
    json_t  *item;

    if (json_is_array(v)) {
        json_array_foreach(v, k, item) {
            if (obs_jwt_one_of(item, values, n)) {
                return 1;
            }
        }

        return 0;
    }

    if (!json_is_string(v)) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (strcmp(json_string_value(v), values[i]) == 0) {
            return 1;
        }
    }

    return 0;
}


/*
 * A string or integer claim copied into out, its length in *len (0 when
 * absent); -1 when it is there but unfit.  A string with a control byte
 * (CR, LF, NUL, DEL ...) is unfit: $obs_jwt_tenant and $obs_jwt_user go
 * where nginx copies values as they are, such as proxy_set_header, and a
 * line break there starts a header or a request of the token's choosing.
 */

static int
obs_jwt_claim(json_t *payload, const char *name, char *out, size_t *len)
{
    int                   n;
    size_t                i;
    json_t               *v;
    const unsigned char  *s;

    *len = 0;
    v = json_object_get(payload, name);

    if (v == NULL) {
        return 0;
    }

    if (json_is_integer(v)) {
        n = snprintf(out, OBS_JWT_MAX_CLAIM, "%" JSON_INTEGER_FORMAT,
                     json_integer_value(v));
        if (n <= 0) {
            return -1;
        }

        *len = (size_t) n;
        return 0;
    }

    if (!json_is_string(v) || json_string_length(v) > OBS_JWT_MAX_CLAIM) {
        return -1;
    }

    s = (const unsigned char *) json_string_value(v);

    for (i = 0; i < json_string_length(v); i++) {
        if (s[i] < 0x20 || s[i] == 0x7f) {
            return -1;
        }
    }

    *len = json_string_length(v);
    memcpy(out, json_string_value(v), *len);

    return 0;
}


/* A string member of obj, cut to size - 1 bytes; "" when not a string. */

static void
obs_jwt_copy_string(json_t *obj, const char *name, char *out, size_t size)
{
    size_t   n;
    json_t  *v;

    v = json_object_get(obj, name);
    n = json_is_string(v) ? json_string_length(v) : 0;

    if (n >= size) {
        n = size - 1;
    }

    if (n) {
        memcpy(out, json_string_value(v), n);
    }

    out[n] = '\0';
}
