/*
 * Trace and span ids from a per-worker xoshiro256** generator.  Its state is
 * seeded from OpenSSL's RAND_bytes() in each worker, so workers never share
 * a sequence and a forked worker never repeats its parent's.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/rand.h>

#include "ngx_http_obs_module.h"


static uint64_t ngx_http_obs_rotl(uint64_t x, int k);


static uint64_t  ngx_http_obs_state[4];


void
ngx_http_obs_ids_init(void)
{
    uint64_t  fallback;

    if (RAND_bytes((u_char *) ngx_http_obs_state,
                   sizeof(ngx_http_obs_state)) == 1
        && !obs_is_zero((uint8_t *) ngx_http_obs_state,
                        sizeof(ngx_http_obs_state)))
    {
        return;
    }

    /* RAND_bytes() does not fail on Linux; keep ids unique if it ever does */

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "obs: RAND_bytes() failed, seeding ids from time and pid");

    fallback = (uint64_t) ngx_time() * 1000003 ^ (uint64_t) ngx_pid;

    ngx_http_obs_state[0] = fallback | 1;
    ngx_http_obs_state[1] = fallback * 0x9e3779b97f4a7c15ULL;
    ngx_http_obs_state[2] = (uint64_t) (uintptr_t) &fallback;
    ngx_http_obs_state[3] = ngx_http_obs_state[1] ^ 0xbf58476d1ce4e5b9ULL;
}


uint64_t
ngx_http_obs_random(void)
{
    uint64_t  *s, result, t;

    s = ngx_http_obs_state;

    result = ngx_http_obs_rotl(s[1] * 5, 7) * 9;
    t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = ngx_http_obs_rotl(s[3], 45);

    return result;
}


/* Writes a random id of len bytes, a multiple of 8, never all zeros. */

void
ngx_http_obs_new_id(uint8_t *id, size_t len)
{
    size_t    i;
    uint64_t  r, any;

    do {
        any = 0;

        for (i = 0; i < len; i += sizeof(uint64_t)) {
            r = ngx_http_obs_random();
            ngx_memcpy(id + i, &r, sizeof(uint64_t));
            any |= r;
        }

    } while (any == 0);
}


static uint64_t
ngx_http_obs_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}
