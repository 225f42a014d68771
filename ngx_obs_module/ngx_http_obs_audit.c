/*
 * The audit trail's events (issue 22).  "obs_audit on" makes every request
 * in its scope carry an audit event in its record: who (the verified
 * token's user and tenant, or "unverified"; the client's address or its
 * HMAC pseudonym) did what (the record's method, route, status, bytes,
 * ids and time) and what the gateway decided (allowed, or why it refused).
 * A refusal of "obs_jwt require" is audited wherever records are sent,
 * obs_audit or not, with what the token claimed of itself (kid, alg, iss;
 * never the token).  Nothing else of the request goes in: no query
 * string, no body, no header but those.  The worker numbers the events it
 * admits to its batches (ngx_http_obs_batch.c), so that the sidecar sees
 * any that went missing on the way; those never admitted are counted.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "hex.h"
#include "ngx_http_obs_module.h"
#include "ngx_http_obs_jwt_module.h"


/* the bytes of a request id the module makes (nginx's $request_id's) */
#define NGX_HTTP_OBS_AUDIT_ID_LEN    16


/* the decisions of proto/obs/v1/audit.def */
enum {
#define OBS_AUDIT_DECISION(code, id, name)                                    \
    ngx_http_obs_audit_##id = code,
#include "obs/v1/audit.def"
    ngx_http_obs_audit_decisions
};

/* a refusal's decision is its token's JWT result */
#define ngx_http_obs_audit_is(id, result)                                    \
    ((int) ngx_http_obs_audit_##id == (int) (result))

typedef char ngx_http_obs_audit_jwt_codes[
    ngx_http_obs_audit_is(jwt_missing, OBS_JWT_MISSING)
    && ngx_http_obs_audit_is(jwt_malformed, OBS_JWT_MALFORMED)
    && ngx_http_obs_audit_is(jwt_alg_not_allowed, OBS_JWT_ALG_NOT_ALLOWED)
    && ngx_http_obs_audit_is(jwt_unknown_key, OBS_JWT_UNKNOWN_KEY)
    && ngx_http_obs_audit_is(jwt_bad_signature, OBS_JWT_BAD_SIGNATURE)
    && ngx_http_obs_audit_is(jwt_expired, OBS_JWT_EXPIRED)
    && ngx_http_obs_audit_is(jwt_not_yet_valid, OBS_JWT_NOT_YET_VALID)
    && ngx_http_obs_audit_is(jwt_bad_issuer, OBS_JWT_BAD_ISSUER)
    && ngx_http_obs_audit_is(jwt_bad_audience, OBS_JWT_BAD_AUDIENCE)
    && ngx_http_obs_audit_is(jwt_missing_claim, OBS_JWT_MISSING_CLAIM)
    ? 1 : -1];


static ngx_uint_t ngx_http_obs_audit_decision(ngx_http_request_t *r,
    ngx_http_obs_ctx_t *ctx, ngx_uint_t status);
static void ngx_http_obs_audit_text(ngx_str_t *field, ngx_str_t *value,
    size_t max);
static ngx_int_t ngx_http_obs_audit_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


/* whether this worker's configuration can make audit events */
ngx_uint_t  ngx_http_obs_audit_possible;


/* obs_audit on|off [hmac=file] */

char *
ngx_http_obs_audit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_obs_loc_conf_t *olcf = conf;

    ngx_str_t                 *value;
    ngx_http_obs_main_conf_t  *omcf;

    if (olcf->audit != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "on") == 0) {
        olcf->audit = 1;

    } else if (ngx_strcmp(value[1].data, "off") == 0) {
        olcf->audit = 0;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, "
                           "it must be \"on\" or \"off\"",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {

        if (!olcf->audit) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in \"%V\" "
                               "directive: a key goes with \"on\"",
                               &value[2], &cmd->name);
            return NGX_CONF_ERROR;
        }

        olcf->audit_mac = ngx_http_obs_mac_conf(cf, &value[2], &cmd->name);
        if (olcf->audit_mac == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    omcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_obs_module);

    if (olcf->audit && omcf->audit_file.len == 0) {
        omcf->audit_file = cf->conf_file->file.name;
        omcf->audit_line = cf->conf_file->line;
    }

    return NGX_CONF_OK;
}


/*
 * obs_audit and its key are one setting: a level with its own replaces
 * both.  An audited scope must be recorded: without a sidecar, or with
 * "obs off", its events would be silently lost, so nginx -t refuses it.
 */

char *
ngx_http_obs_audit_merge(ngx_conf_t *cf, ngx_http_obs_loc_conf_t *prev,
    ngx_http_obs_loc_conf_t *conf)
{
    ngx_http_obs_main_conf_t   *omcf;
    ngx_http_core_loc_conf_t   *clcf;

    if (conf->audit == NGX_CONF_UNSET) {
        conf->audit = (prev->audit == NGX_CONF_UNSET) ? 0 : prev->audit;
        conf->audit_mac = prev->audit_mac;
    }

    if (!conf->audit) {
        return NGX_CONF_OK;
    }

    omcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_obs_module);

    if (omcf->sidecar == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"obs_audit\" directive in %V:%ui needs "
                           "\"obs_sidecar\": audit events go to the sidecar",
                           &omcf->audit_file, omcf->audit_line);
        return NGX_CONF_ERROR;
    }

    if (!conf->enable) {
        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"obs_audit on\" and \"obs off\" in the same "
                           "scope (location \"%V\"): an audited request "
                           "must be recorded; use \"obs_audit off\" there",
                           &clcf->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * At configuration: whether events can be made here (obs_audit, or
 * "obs_jwt require" where records are sent), and then the zone that keeps
 * what outlives a worker.
 */

ngx_int_t
ngx_http_obs_audit_init(ngx_conf_t *cf, ngx_http_obs_main_conf_t *omcf)
{
    ngx_http_obs_jwt_main_conf_t  *jmcf;

    jmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_obs_jwt_module);

    if (omcf->sidecar == NULL
        || (omcf->audit_file.len == 0 && !jmcf->require))
    {
        return NGX_OK;
    }

    omcf->audit_possible = 1;

    return ngx_http_obs_audit_zone(cf, omcf);
}


/*
 * Adds the request's audit event to its record when it has one: in an
 * obs_audit scope (of the location that answered, or of the one the route
 * was taken in), or refused by "obs_jwt require".
 */

void
ngx_http_obs_audit_record(ngx_http_request_t *r, ngx_http_obs_ctx_t *ctx,
    ngx_http_obs_loc_conf_t *route_conf, ngx_http_obs_record_t *rec)
{
    u_char                    *id;
    uint8_t                    raw[NGX_HTTP_OBS_AUDIT_ID_LEN];
    ngx_str_t                  client;
    EVP_MAC_CTX               *mac;
    ngx_http_obs_audit_t      *ev;
    ngx_http_obs_jwt_audit_t   jwt;
    ngx_http_obs_loc_conf_t   *olcf;

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_obs_module);

    ev = &rec->audit[0];

    if (olcf->audit || route_conf->audit) {
        ev->scope = NGX_HTTP_OBS_AUDIT_SCOPE_AUDIT;
        mac = olcf->audit ? olcf->audit_mac : route_conf->audit_mac;

        if (ngx_http_obs_jwt_audit(r, &jwt) != NGX_OK) {
            return;
        }

    } else {
        /* only a refusal: a token nobody asked about is not judged */

        if (!ngx_http_obs_jwt_refused(r)
            || ngx_http_obs_jwt_audit(r, &jwt) != NGX_OK)
        {
            return;
        }

        ev->scope = NGX_HTTP_OBS_AUDIT_SCOPE_JWT;
        mac = NULL;
    }

    ev->jwt_status = (uint32_t) jwt.status;
    ev->decision = jwt.refused ? (uint32_t) (jwt.status - 1)
                   : ngx_http_obs_audit_decision(r, ctx, rec->status);

    ngx_http_obs_audit_text(&ev->user, &jwt.user,
                            NGX_HTTP_OBS_AUDIT_CLAIM_MAX);
    ngx_http_obs_audit_text(&ev->tenant, &jwt.tenant,
                            NGX_HTTP_OBS_AUDIT_CLAIM_MAX);
    ngx_http_obs_audit_text(&ev->jwt_kid, &jwt.kid,
                            NGX_HTTP_OBS_AUDIT_KID_MAX);
    ngx_http_obs_audit_text(&ev->jwt_alg, &jwt.alg,
                            NGX_HTTP_OBS_AUDIT_ALG_MAX);
    ngx_http_obs_audit_text(&ev->jwt_issuer, &jwt.issuer,
                            NGX_HTTP_OBS_AUDIT_ISS_MAX);

    /* a pseudonym that cannot be computed is never replaced by the address */

    client = r->connection->addr_text;

    if (mac && ngx_http_obs_hmac_hex(r, mac, &client) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "obs: HMAC-SHA256 of the client's address failed");
        ngx_str_set(&client, "hmac_failed");
    }

    ngx_http_obs_audit_text(&ev->client, &client, NGX_HTTP_OBS_MAX_VALUE);

    /*
     * an event always has a request id: the client's, or nginx's
     * $request_id where something made it (the record has them), else one
     * of the module's own, as random and as long as nginx's, made at a
     * fraction of the cost of OpenSSL's RAND_bytes() that nginx's takes
     */

    if (rec->request_id.len == 0) {
        id = ngx_pnalloc(r->pool, 2 * NGX_HTTP_OBS_AUDIT_ID_LEN);

        if (id) {
            ngx_http_obs_new_id(raw, NGX_HTTP_OBS_AUDIT_ID_LEN);
            hex_encode((char *) id, raw, NGX_HTTP_OBS_AUDIT_ID_LEN);
            rec->request_id.data = id;
            rec->request_id.len = 2 * NGX_HTTP_OBS_AUDIT_ID_LEN;
        }
    }

    rec->n_audit = 1;
}


/*
 * "denied" is an answer nginx gave itself before any content handler ran
 * (a deny, a return, auth_basic, auth_request, limit_req, a malformed
 * request); what a backend answered was allowed through.  A client that
 * went away (499) was refused nothing.
 */

static ngx_uint_t
ngx_http_obs_audit_decision(ngx_http_request_t *r, ngx_http_obs_ctx_t *ctx,
    ngx_uint_t status)
{
    if (ctx->served || status < 400 || status > 599
        || status == NGX_HTTP_CLIENT_CLOSED_REQUEST)
    {
        return ngx_http_obs_audit_allowed;
    }

    switch (status) {

    case NGX_HTTP_UNAUTHORIZED:
        return ngx_http_obs_audit_unauthenticated;

    case NGX_HTTP_FORBIDDEN:
        return ngx_http_obs_audit_forbidden;

    case NGX_HTTP_TOO_MANY_REQUESTS:
        return ngx_http_obs_audit_rate_limited;

    default:
        return ngx_http_obs_audit_refused;
    }
}


static void
ngx_http_obs_audit_text(ngx_str_t *field, ngx_str_t *value, size_t max)
{
    field->data = value->data;
    field->len = ngx_min(value->len, max);
}


/* --- what outlives a worker --------------------------------------------- */

/*
 * A zone of its own (ngx_http_obs_audit_shm_t), not a field of
 * "obs_sidecar"'s: a reload keeps a zone's memory as the module that made
 * it laid it out, and a reload is how a new module comes in.  It holds the
 * events workers exited with, and which configuration was last told.
 */

ngx_int_t
ngx_http_obs_audit_zone(ngx_conf_t *cf, ngx_http_obs_main_conf_t *omcf)
{
    ngx_str_t  name = ngx_string("obs_audit");

    omcf->audit_zone = ngx_shared_memory_add(cf, &name, 8 * ngx_pagesize,
                                             &ngx_http_obs_module);
    if (omcf->audit_zone == NULL) {
        return NGX_ERROR;
    }

    omcf->audit_zone->init = ngx_http_obs_audit_init_zone;

    return NGX_OK;
}


static ngx_int_t
ngx_http_obs_audit_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t  *shpool;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (data) {
        shm_zone->data = data;
        return NGX_OK;
    }

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    shpool->data = ngx_slab_calloc(shpool, sizeof(ngx_http_obs_audit_shm_t));
    if (shpool->data == NULL) {
        return NGX_ERROR;
    }

    shm_zone->data = shpool->data;

    return NGX_OK;
}
