/*
 * Per-worker cache of verified tokens: a fixed set-associative table, so
 * its memory is known at start and a lookup costs a few comparisons.  An
 * entry holds the whole token and a hit compares it byte for byte: the
 * hash only picks the set, so a forged token that collides with a cached
 * one gains nothing.  The hash reads the token's last 16 bytes (signature
 * bytes, random for any real token) to stay cheap for long tokens.  Plain
 * C; see ngx_http_obs_jwt.h.
 */


#include <stdlib.h>
#include <string.h>

#include "ngx_http_obs_jwt.h"


#define OBS_JWT_CACHE_WAYS  4


typedef struct {
    const obs_jwt_policy_t   *policy;      /* NULL: free */
    uint64_t                  hash;
    uint64_t                  used;        /* clock of the last hit */
    size_t                    len;
    obs_jwt_claims_t          claims;
    char                      token[OBS_JWT_CACHE_TOKEN_MAX];
} obs_jwt_cache_entry_t;


struct obs_jwt_cache_s {
    size_t                    n_sets;
    uint64_t                  seed;
    uint64_t                  clock;
    obs_jwt_cache_entry_t     entries[];
};


static uint64_t obs_jwt_cache_hash(uint64_t seed, const char *token,
    size_t len);
static uint64_t obs_jwt_mix(uint64_t h);


obs_jwt_cache_t *
obs_jwt_cache_create(size_t size, uint64_t seed)
{
    size_t            n_sets;
    obs_jwt_cache_t  *c;

    n_sets = (size + OBS_JWT_CACHE_WAYS - 1) / OBS_JWT_CACHE_WAYS;
    if (n_sets == 0) {
        n_sets = 1;
    }

    c = calloc(1, sizeof(obs_jwt_cache_t) + n_sets * OBS_JWT_CACHE_WAYS
                                             * sizeof(obs_jwt_cache_entry_t));
    if (c == NULL) {
        return NULL;
    }

    c->n_sets = n_sets;
    c->seed = seed;

    return c;
}


void
obs_jwt_cache_destroy(obs_jwt_cache_t *c)
{
    free(c);
}


const obs_jwt_claims_t *
obs_jwt_cache_get(obs_jwt_cache_t *c, const obs_jwt_policy_t *p,
    const char *token, size_t len, int64_t now)
{
    size_t                  i;
    uint64_t                hash;
    obs_jwt_cache_entry_t  *e;

    if (len > OBS_JWT_CACHE_TOKEN_MAX) {
        return NULL;
    }

    hash = obs_jwt_cache_hash(c->seed, token, len);
    e = &c->entries[(hash % c->n_sets) * OBS_JWT_CACHE_WAYS];

    for (i = 0; i < OBS_JWT_CACHE_WAYS; i++, e++) {

        if (e->policy != p || e->hash != hash || e->len != len
            || memcmp(e->token, token, len) != 0)
        {
            continue;
        }

        if (obs_jwt_check_time(p, &e->claims, now) != OBS_JWT_VALID) {
            e->policy = NULL;
            return NULL;
        }

        e->used = ++c->clock;

        return &e->claims;
    }

    return NULL;
}


void
obs_jwt_cache_put(obs_jwt_cache_t *c, const obs_jwt_policy_t *p,
    const char *token, size_t len, const obs_jwt_claims_t *claims)
{
    size_t                  i;
    uint64_t                hash;
    obs_jwt_cache_entry_t  *e, *victim;

    if (len > OBS_JWT_CACHE_TOKEN_MAX) {
        return;
    }

    hash = obs_jwt_cache_hash(c->seed, token, len);
    e = &c->entries[(hash % c->n_sets) * OBS_JWT_CACHE_WAYS];
    victim = e;

    /* a free way, else the one least recently used */

    for (i = 0; i < OBS_JWT_CACHE_WAYS; i++, e++) {
        if (e->policy == NULL) {
            victim = e;
            break;
        }

        if (e->used < victim->used) {
            victim = e;
        }
    }

    victim->policy = p;
    victim->hash = hash;
    victim->used = ++c->clock;
    victim->len = len;
    victim->claims = *claims;
    memcpy(victim->token, token, len);
}


static uint64_t
obs_jwt_cache_hash(uint64_t seed, const char *token, size_t len)
{
    uint64_t  a, b;

    a = 0;
    b = 0;

    if (len >= 16) {
        memcpy(&a, token + len - 16, 8);
        memcpy(&b, token + len - 8, 8);

    } else {
        memcpy(&a, token, len < 8 ? len : 8);
        if (len > 8) {
            memcpy(&b, token + 8, len - 8);
        }
    }

    return obs_jwt_mix(obs_jwt_mix(seed ^ len ^ a) ^ b);
}


/* splitmix64's finaliser */

static uint64_t
obs_jwt_mix(uint64_t h)
{
    h ^= h >> 30;
    h *= UINT64_C(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h *= UINT64_C(0x94d049bb133111eb);
    h ^= h >> 31;

    return h;
}
