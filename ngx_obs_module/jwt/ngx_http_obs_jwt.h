/*
 * ngx_http_obs_jwt_module: a tenant taken from a verified JWT.
 *
 *   ngx_http_obs_jwt_keys.c     JWKS and PEM files -> verification keys
 *   ngx_http_obs_jwt_token.c    a compact JWS: parse, verify, check claims
 *   ngx_http_obs_jwt_cache.c    per-worker cache of verified tokens
 *   ngx_http_obs_jwt_module.c   directives and configuration
 *   ngx_http_obs_jwt_request.c  per-request verification, $obs_jwt_*,
 *                               the 401 of "require", per-worker counters
 *
 * The first three are plain C (libc, OpenSSL, jansson), declared here: the
 * fuzz target and the benchmarks link them without nginx (the Makefile's
 * JWT_CORE).  The other two are nginx's side: ngx_http_obs_jwt_module.h.
 */

#ifndef _NGX_HTTP_OBS_JWT_H_INCLUDED_
#define _NGX_HTTP_OBS_JWT_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>


/* the largest token looked at; a longer one is malformed */
#define OBS_JWT_MAX_TOKEN        8192
/* the longest tenant or user value taken from a claim */
#define OBS_JWT_MAX_CLAIM        256
/* the most keys of all of a location's files */
#define OBS_JWT_MAX_KEYS         64
/* the largest key file read */
#define OBS_JWT_MAX_KEY_FILE     (1024 * 1024)
/* the longest token the cache keeps; longer ones are verified each time */
#define OBS_JWT_CACHE_TOKEN_MAX  2048


/* Why a token was accepted or not; also the order of the counters. */
typedef enum {
    OBS_JWT_VALID = 0,
    OBS_JWT_MISSING,
    OBS_JWT_MALFORMED,
    OBS_JWT_ALG_NOT_ALLOWED,
    OBS_JWT_UNKNOWN_KEY,
    OBS_JWT_BAD_SIGNATURE,
    OBS_JWT_EXPIRED,
    OBS_JWT_NOT_YET_VALID,
    OBS_JWT_BAD_ISSUER,
    OBS_JWT_BAD_AUDIENCE,
    OBS_JWT_MISSING_CLAIM,
    OBS_JWT_RESULTS
} obs_jwt_status_e;


typedef enum {
    OBS_JWT_HS256 = 0,
    OBS_JWT_HS384,
    OBS_JWT_HS512,
    OBS_JWT_RS256,
    OBS_JWT_RS384,
    OBS_JWT_RS512,
    OBS_JWT_ES256,
    OBS_JWT_ES384,
    OBS_JWT_EDDSA,
    OBS_JWT_ALGS
} obs_jwt_alg_e;

#define OBS_JWT_ALG_BIT(a)  (1u << (a))
#define OBS_JWT_ALL_ALGS    ((1u << OBS_JWT_ALGS) - 1)


/* One verification key; algs says which algorithms it may check. */
typedef struct {
    char                     *kid;         /* NULL: none */
    unsigned                  algs;        /* OBS_JWT_ALG_BIT()s */
    EVP_PKEY                 *pkey;        /* RSA, EC, Ed25519 */
    unsigned char            *secret;      /* oct (HMAC) */
    size_t                    secret_len;
} obs_jwt_key_t;


typedef struct {
    obs_jwt_key_t             keys[OBS_JWT_MAX_KEYS];
    size_t                    n;
} obs_jwt_keyset_t;


/* What a location asks of a token. */
typedef struct {
    const obs_jwt_keyset_t   *keys;
    unsigned                  algs;        /* the allow-list */
    int64_t                   leeway;      /* seconds */
    const char               *tenant_claim;
    const char               *user_claim;  /* NULL: none */
    const char *const        *issuers;     /* n_issuers == 0: any */
    size_t                    n_issuers;
    const char *const        *audiences;   /* n_audiences == 0: any */
    size_t                    n_audiences;
} obs_jwt_policy_t;


/* The claims a verified token yields. */
typedef struct {
    int64_t                   exp;         /* INT64_MAX: none */
    int64_t                   nbf;         /* INT64_MIN: none */
    size_t                    tenant_len;
    size_t                    user_len;
    char                      tenant[OBS_JWT_MAX_CLAIM];
    char                      user[OBS_JWT_MAX_CLAIM];
} obs_jwt_claims_t;


/*
 * What a token says of itself, unverified (the audit trail of refusals):
 * its header's "kid" and "alg" and its payload's "iss", NUL-ended, cut to
 * fit, empty when absent or unreadable.  Never the token.
 */
typedef struct {
    char                      kid[65];
    char                      alg[17];
    char                      iss[257];
} obs_jwt_described_t;


typedef struct obs_jwt_cache_s  obs_jwt_cache_t;


extern const char *const  obs_jwt_status_names[OBS_JWT_RESULTS];
extern const char *const  obs_jwt_alg_names[OBS_JWT_ALGS];


/*
 * Decodes unpadded base64url text of at most OBS_JWT_MAX_TOKEN characters
 * into out (room for len * 3 / 4 bytes); returns the length, or -1.
 */
long obs_jwt_base64url_decode(const char *in, size_t len, unsigned char *out);

/* The algorithm named name (as in a JWS header), or -1. */
int obs_jwt_alg(const char *name, size_t len);

/*
 * Adds the keys of a JWKS or PEM file (told apart by their content) to ks;
 * kid names a PEM file's single key.  Returns 0, or -1 with err set.
 */
int obs_jwt_keys_load(obs_jwt_keyset_t *ks, const char *path,
    const char *kid, char *err, size_t errlen);

/* The same for a file's content already in memory. */
int obs_jwt_keys_parse(obs_jwt_keyset_t *ks, const unsigned char *data,
    size_t len, const char *kid, char *err, size_t errlen);

/* Frees every key of ks (ks itself stays). */
void obs_jwt_keys_free(obs_jwt_keyset_t *ks);

/*
 * Verifies a compact JWS against policy p at time now (unix seconds) and,
 * when valid, fills claims.  Never reads past token + len.
 */
obs_jwt_status_e obs_jwt_verify(const obs_jwt_policy_t *p,
    const char *token, size_t len, int64_t now, obs_jwt_claims_t *claims);

/*
 * Fills d with what token claims in its header and payload, without
 * verifying anything; never reads past token + len.
 */
void obs_jwt_describe(const char *token, size_t len, obs_jwt_described_t *d);

/* Frees what verification keeps between calls (fetched digests). */
void obs_jwt_done(void);

/* Checks exp and nbf of claims at time now, with p's leeway. */
obs_jwt_status_e obs_jwt_check_time(const obs_jwt_policy_t *p,
    const obs_jwt_claims_t *claims, int64_t now);

/* A cache of size verified tokens in one allocation; NULL if out of memory. */
obs_jwt_cache_t *obs_jwt_cache_create(size_t size, uint64_t seed);

/* Frees a cache. */
void obs_jwt_cache_destroy(obs_jwt_cache_t *c);

/*
 * The claims of token if p verified it before and they are still valid at
 * now, or NULL; an entry found expired is dropped.
 */
const obs_jwt_claims_t *obs_jwt_cache_get(obs_jwt_cache_t *c,
    const obs_jwt_policy_t *p, const char *token, size_t len, int64_t now);

/* Remembers that p found token valid with claims (too long: ignored). */
void obs_jwt_cache_put(obs_jwt_cache_t *c, const obs_jwt_policy_t *p,
    const char *token, size_t len, const obs_jwt_claims_t *claims);


#endif /* _NGX_HTTP_OBS_JWT_H_INCLUDED_ */
