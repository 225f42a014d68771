/*
 * Keys: a key file's first line (obs_sidecar key=, obs_log_field hmac=),
 * and the HMAC-SHA256 context keyed with it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "ngx_http_obs_module.h"


/*
 * A key file (obs_sidecar key=, obs_log_field hmac=): the key is the file's
 * first line, OBS_KEY_MIN to OBS_KEY_MAX bytes (framing.h); read at
 * configuration time, so "nginx -t" checks it, and a reload reads it again.
 */

char *
ngx_http_obs_read_key(ngx_conf_t *cf, ngx_str_t *path, ngx_str_t *key,
    const char *directive)
{
    u_char           *p;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t         name;
    ngx_file_info_t   fi;

    name = *path;

    if (name.len == 0 || ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid key file \"%V\" in \"%s\"",
                           path, directive);
        return NGX_CONF_ERROR;
    }

    /*
     * A FIFO would block nginx -t in open() until a writer comes, and a
     * device (/dev/urandom) would give a key nobody has: a regular file
     * only (a symlink to one, as Kubernetes mounts secrets, is one).
     */

    if (ngx_file_info(name.data, &fi) != NGX_FILE_ERROR && !ngx_is_file(&fi))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "key file \"%V\" in \"%s\" is not a regular file",
                           &name, directive);
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(name.data, NGX_FILE_RDONLY | NGX_FILE_NONBLOCK,
                       NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "key file \"%V\" in \"%s\": "
                           ngx_open_file_n " failed", &name, directive);
        return NGX_CONF_ERROR;
    }

    p = ngx_pnalloc(cf->pool, OBS_KEY_MAX + 1);
    n = -1;

    if (p != NULL && ngx_fd_info(fd, &fi) != NGX_FILE_ERROR
        && ngx_is_file(&fi))
    {
        n = read(fd, p, OBS_KEY_MAX + 1);
    }

    (void) ngx_close_file(fd);

    key->data = p;
    key->len = 0;

    while (n > 0 && key->len < (size_t) n
           && p[key->len] != CR && p[key->len] != LF)
    {
        key->len++;
    }

    if (key->len < OBS_KEY_MIN || key->len > OBS_KEY_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "key file \"%V\" in \"%s\" must hold "
                           "a key of %d to %d bytes on its first line",
                           &name, directive, OBS_KEY_MIN, OBS_KEY_MAX);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * An HMAC-SHA256 context keyed with key (obs_sidecar key=, obs_log_field
 * hmac=), or NULL.
 */

EVP_MAC_CTX *
ngx_http_obs_hmac_new(ngx_str_t *key)
{
    EVP_MAC      *hmac;
    OSSL_PARAM    params[2];
    EVP_MAC_CTX  *ctx;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *) "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();

    hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    EVP_MAC_free(hmac);

    if (ctx != NULL && !EVP_MAC_init(ctx, key->data, key->len, params)) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }

    return ctx;
}
