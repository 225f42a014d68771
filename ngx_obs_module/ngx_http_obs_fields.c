/*
 * obs_log_field NAME VALUE [hmac=file]: a named value added to the record,
 * which the sidecar writes as a key of the JSON log line and a string
 * attribute of the gateway span, and never as a metric label.  With hmac=
 * the value is replaced by the lowercase hex of its HMAC-SHA256 under the
 * file's key: the same user id always gives the same pseudonym, which
 * cannot be read back.  Values that read a credential, a query string or
 * the request body are refused, hashed or not (ngx_http_obs_check_export).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>

#include "ngx_http_obs_module.h"


#define NGX_HTTP_OBS_FIELD_MAC_LEN    32

/* a value cut to its bound ends with this mark, U+2026 */
#define NGX_HTTP_OBS_FIELD_CUT        "\xe2\x80\xa6"
#define NGX_HTTP_OBS_FIELD_CUT_LEN    3


typedef struct {
    ngx_str_t                  name;         /* stable: interned by address */
    ngx_http_obs_value_t       value;
    EVP_MAC_CTX               *mac;          /* keyed; NULL: plain */
} ngx_http_obs_field_t;


static char *ngx_http_obs_field_name(ngx_conf_t *cf, ngx_array_t *fields,
    ngx_str_t *name);
static void ngx_http_obs_mac_free(void *data);
static ngx_int_t ngx_http_obs_field_cut(ngx_http_request_t *r,
    ngx_str_t *value);


/* Names the log line and the gateway span write themselves. */
static const char  *ngx_http_obs_log_keys[] = {
#define OBS_LOG_KEY(name)  name,
#include "../proto/obs/v1/log_keys.def"
#undef OBS_LOG_KEY
    NULL
};


/* obs_log_field NAME VALUE [hmac=file] */

char *
ngx_http_obs_log_field(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_obs_loc_conf_t *olcf = conf;

    char                  *rv;
    ngx_str_t             *value;
    ngx_conf_post_t       *post;
    ngx_http_obs_field_t  *f;

    post = cmd->post;

    if (post->post_handler(cf, post, NULL) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    if (olcf->fields == NULL) {
        olcf->fields = ngx_array_create(cf->pool, 4,
                                        sizeof(ngx_http_obs_field_t));
        if (olcf->fields == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (olcf->fields->nelts == NGX_HTTP_OBS_MAX_FIELDS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "too many \"obs_log_field\" directives, "
                           "at most %d in one block", NGX_HTTP_OBS_MAX_FIELDS);
        return NGX_CONF_ERROR;
    }

    rv = ngx_http_obs_field_name(cf, olcf->fields, &value[1]);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    f = ngx_array_push(olcf->fields);
    if (f == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(f, sizeof(ngx_http_obs_field_t));
    f->name = value[1];

    if (ngx_http_obs_check_export(cf, &value[2]) != NGX_OK
        || ngx_http_obs_compile_value(cf, &value[2], &f->value) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        return NGX_CONF_OK;
    }

    f->mac = ngx_http_obs_mac_conf(cf, &value[3], &cmd->name);

    return f->mac ? NGX_CONF_OK : NGX_CONF_ERROR;
}


/*
 * A name is [a-z][a-z0-9_.]{0,63}, none of the keys the log line and the
 * span already have, and not twice in one block.
 */

static char *
ngx_http_obs_field_name(ngx_conf_t *cf, ngx_array_t *fields, ngx_str_t *name)
{
    u_char                 c;
    ngx_uint_t             i;
    const char           **key;
    ngx_http_obs_field_t  *f;

    for (i = 0; i < name->len; i++) {
        c = name->data[i];

        if (!((c >= 'a' && c <= 'z')
              || (i > 0 && ((c >= '0' && c <= '9') || c == '_' || c == '.'))))
        {
            break;
        }
    }

    if (name->len == 0 || i < name->len
        || name->len > NGX_HTTP_OBS_MAX_FIELD_NAME)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid name \"%V\" in \"obs_log_field\" "
                           "directive, it must match [a-z][a-z0-9_.]{0,63}",
                           name);
        return NGX_CONF_ERROR;
    }

    for (key = ngx_http_obs_log_keys; *key; key++) {
        if (ngx_strlen(*key) == name->len
            && ngx_strncmp(*key, name->data, name->len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "name \"%V\" in \"obs_log_field\" directive "
                               "is a key the log line or the span already "
                               "has", name);
            return NGX_CONF_ERROR;
        }
    }

    f = fields->elts;

    for (i = 0; i < fields->nelts; i++) {
        if (f[i].name.len == name->len
            && ngx_strncmp(f[i].name.data, name->data, name->len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate name \"%V\" in \"obs_log_field\" "
                               "directive", name);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * The parameter hmac=file (obs_log_field, obs_audit): a keyed HMAC-SHA256,
 * set up once and freed with the configuration; a reload reads the key
 * again.  NULL, logged naming the directive, on error.
 */

EVP_MAC_CTX *
ngx_http_obs_mac_conf(ngx_conf_t *cf, ngx_str_t *param, ngx_str_t *directive)
{
    char                 name[32];
    ngx_str_t            key, path;
    EVP_MAC_CTX         *mac;
    ngx_pool_cleanup_t  *cln;

    if (param->len <= 5 || ngx_strncmp(param->data, "hmac=", 5) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\" directive, "
                           "it must be \"hmac=file\"", param, directive);
        return NULL;
    }

    path.data = param->data + 5;
    path.len = param->len - 5;

    ngx_cpystrn((u_char *) name, directive->data,
                ngx_min(directive->len + 1, sizeof(name)));

    if (ngx_http_obs_read_key(cf, &path, &key, name) != NGX_CONF_OK) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    mac = ngx_http_obs_hmac_new(&key);
    ngx_explicit_memzero(key.data, key.len);

    cln->handler = ngx_http_obs_mac_free;
    cln->data = mac;

    if (mac == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cannot set up HMAC-SHA256 for \"%V\"", directive);
    }

    return mac;
}


static void
ngx_http_obs_mac_free(void *data)
{
    EVP_MAC_CTX_free(data);
}


/*
 * Adds the block's fields with a value to the record (an empty or missing
 * value adds none); a field whose HMAC cannot be computed is left out,
 * never sent in the clear.
 */

void
ngx_http_obs_record_fields(ngx_http_request_t *r, ngx_array_t *fields,
    ngx_http_obs_record_t *rec)
{
    ngx_str_t              value;
    ngx_uint_t             i;
    ngx_http_obs_field_t  *f;

    f = fields->elts;

    for (i = 0; i < fields->nelts; i++) {

        if (ngx_http_obs_value(r, &f[i].value, &value) != NGX_OK
            || value.len == 0)
        {
            continue;
        }

        if (f[i].mac) {
            if (ngx_http_obs_hmac_hex(r, f[i].mac, &value) != NGX_OK) {
                ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                              "obs: HMAC-SHA256 of \"%V\" failed",
                              &f[i].name);
                continue;
            }

        } else if (value.len > NGX_HTTP_OBS_MAX_FIELD_VALUE
                   && ngx_http_obs_field_cut(r, &value) != NGX_OK)
        {
            continue;
        }

        rec->fields[rec->n_fields].name = f[i].name;
        rec->fields[rec->n_fields].value = value;
        rec->n_fields++;
    }
}


/*
 * Replaces value by the lowercase hex of its (whole) HMAC-SHA256 under a
 * context of ngx_http_obs_mac_conf().
 */

ngx_int_t
ngx_http_obs_hmac_hex(ngx_http_request_t *r, EVP_MAC_CTX *mac,
    ngx_str_t *value)
{
    u_char  *hex, md[NGX_HTTP_OBS_FIELD_MAC_LEN];
    size_t   len;

    hex = ngx_pnalloc(r->pool, 2 * NGX_HTTP_OBS_FIELD_MAC_LEN);
    if (hex == NULL) {
        return NGX_ERROR;
    }

    /* no key: the keyed state set up at configuration is restored */

    if (!EVP_MAC_init(mac, NULL, 0, NULL)
        || !EVP_MAC_update(mac, value->data, value->len)
        || !EVP_MAC_final(mac, md, &len, sizeof(md))
        || len != sizeof(md))
    {
        return NGX_ERROR;
    }

    value->data = hex;
    value->len = ngx_hex_dump(hex, md, sizeof(md)) - hex;

    return NGX_OK;
}


/*
 * Cuts a long value to its bound, at a UTF-8 character's start, and marks
 * the cut with an ellipsis.
 */

static ngx_int_t
ngx_http_obs_field_cut(ngx_http_request_t *r, ngx_str_t *value)
{
    u_char  *p;
    size_t   len;

    len = NGX_HTTP_OBS_MAX_FIELD_VALUE - NGX_HTTP_OBS_FIELD_CUT_LEN;

    while (len > 0 && (value->data[len] & 0xc0) == 0x80) {
        len--;
    }

    p = ngx_pnalloc(r->pool, len + NGX_HTTP_OBS_FIELD_CUT_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, value->data, len);
    ngx_memcpy(p + len, NGX_HTTP_OBS_FIELD_CUT, NGX_HTTP_OBS_FIELD_CUT_LEN);

    value->data = p;
    value->len = len + NGX_HTTP_OBS_FIELD_CUT_LEN;

    return NGX_OK;
}
