/*
 * The configuration's digest, which the audit trail records for every
 * configuration nginx loads: SHA-256 of the configuration files as
 * "nginx -T" prints them (for each file, in the order nginx read it and
 * once: "# configuration file NAME:", a line end, the file, a line end),
 * so that "nginx -T 2>/dev/null | sha256sum" gives the same digest.  nginx
 * keeps the files' text only for -T, so they are read again here, from
 * the main file on, following each "include" as nginx does: relative to
 * the configuration's directory, wildcards in glob order, each file once.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>

#include "ngx_http_obs_module.h"


/* an include's argument longer than this is not followed */
#define NGX_HTTP_OBS_DIGEST_ARG_MAX   4096


typedef struct {
    ngx_conf_t                *cf;
    EVP_MD_CTX                *md;
    ngx_array_t                seen;         /* of ngx_str_t */
} ngx_http_obs_digest_t;


/* The statement being read: its first two words and how many it has. */
typedef struct {
    ngx_uint_t                 words;
    size_t                     len[2];
    u_char                     first[sizeof("include")];
    u_char                     arg[NGX_HTTP_OBS_DIGEST_ARG_MAX + 1];
} ngx_http_obs_statement_t;


static ngx_int_t ngx_http_obs_digest_file(ngx_http_obs_digest_t *d,
    ngx_str_t *name);
static ngx_int_t ngx_http_obs_digest_includes(ngx_http_obs_digest_t *d,
    u_char *p, u_char *end);
static void ngx_http_obs_digest_char(ngx_http_obs_statement_t *st,
    u_char c);
static ngx_int_t ngx_http_obs_digest_include(ngx_http_obs_digest_t *d,
    ngx_http_obs_statement_t *st);


/* Writes the 32 bytes of the digest; NGX_ERROR when OpenSSL fails. */

ngx_int_t
ngx_http_obs_config_digest(ngx_conf_t *cf, u_char *digest)
{
    ngx_int_t               rc;
    unsigned int            len;
    ngx_http_obs_digest_t   d;

    d.cf = cf;
    d.md = EVP_MD_CTX_new();

    if (d.md == NULL
        || !EVP_DigestInit_ex(d.md, EVP_sha256(), NULL)
        || ngx_array_init(&d.seen, cf->temp_pool, 8, sizeof(ngx_str_t))
           != NGX_OK)
    {
        EVP_MD_CTX_free(d.md);
        return NGX_ERROR;
    }

    rc = ngx_http_obs_digest_file(&d, &cf->cycle->conf_file);

    if (rc == NGX_OK && (!EVP_DigestFinal_ex(d.md, digest, &len)
                         || len != 32))
    {
        rc = NGX_ERROR;
    }

    EVP_MD_CTX_free(d.md);

    return rc;
}


/*
 * One file, as -T prints it, then the files it includes.  A file that
 * cannot be read is left out (nginx has just read it, so it is one that
 * changed meanwhile).
 */

static ngx_int_t
ngx_http_obs_digest_file(ngx_http_obs_digest_t *d, ngx_str_t *name)
{
    u_char           *buf;
    off_t             size;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_int_t         rc;
    ngx_str_t        *seen;
    ngx_uint_t        i;
    ngx_file_info_t   fi;

    seen = d->seen.elts;

    for (i = 0; i < d->seen.nelts; i++) {
        if (seen[i].len == name->len
            && ngx_strncmp(seen[i].data, name->data, name->len) == 0)
        {
            return NGX_OK;
        }
    }

    seen = ngx_array_push(&d->seen);
    if (seen == NULL) {
        return NGX_ERROR;
    }

    *seen = *name;

    fd = ngx_open_file(name->data, NGX_FILE_RDONLY | NGX_FILE_NONBLOCK,
                       NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        return NGX_OK;
    }

    buf = NULL;
    size = 0;

    if (ngx_fd_info(fd, &fi) != NGX_FILE_ERROR && ngx_is_file(&fi)) {
        size = ngx_file_size(&fi);
        buf = ngx_alloc(size + 1, d->cf->log);
    }

    n = 0;

    while (buf && n < size) {
        ssize_t  got = read(fd, buf + n, size - n);

        if (got <= 0) {
            break;
        }

        n += got;
    }

    (void) ngx_close_file(fd);

    if (buf == NULL) {
        return NGX_OK;
    }

    rc = NGX_ERROR;

    if (EVP_DigestUpdate(d->md, "# configuration file ",
                         sizeof("# configuration file ") - 1)
        && EVP_DigestUpdate(d->md, name->data, name->len)
        && EVP_DigestUpdate(d->md, ":\n", 2)
        && (n == 0 || EVP_DigestUpdate(d->md, buf, n))
        && EVP_DigestUpdate(d->md, "\n", 1))
    {
        rc = ngx_http_obs_digest_includes(d, buf, buf + n);
    }

    ngx_free(buf);

    return rc;
}


/*
 * Finds the "include" statements of a file's text, reading it as nginx's
 * tokenizer does: words split by spaces, ";" "{" "}"; "#" starts a comment
 * where a word could start; quotes and backslashes escape; "${" opens a
 * variable whose "}" ends no block.
 */

static ngx_int_t
ngx_http_obs_digest_includes(ngx_http_obs_digest_t *d, u_char *p,
    u_char *end)
{
    u_char                    c, quote;
    ngx_uint_t                in_word, variable;
    ngx_http_obs_statement_t  st;

    st.words = 0;
    in_word = 0;
    variable = 0;

    while (p < end) {
        c = *p++;

        if (!in_word) {

            if (c == ' ' || c == '\t' || c == CR || c == LF) {
                continue;
            }

            if (c == '#') {
                while (p < end && *p != LF) {
                    p++;
                }
                continue;
            }

            if (c == ';') {
                if (ngx_http_obs_digest_include(d, &st) != NGX_OK) {
                    return NGX_ERROR;
                }
                st.words = 0;
                continue;
            }

            if (c == '{' || c == '}') {
                st.words = 0;
                continue;
            }

            if (st.words < 2) {
                st.len[st.words] = 0;
            }

            st.words++;

            if (c == '"' || c == '\'') {
                quote = c;

                while (p < end && *p != quote) {
                    c = *p++;

                    if (c == '\\' && p < end) {
                        c = *p++;
                        c = (c == 't') ? '\t' : (c == 'r') ? CR
                            : (c == 'n') ? LF : c;
                    }

                    ngx_http_obs_digest_char(&st, c);
                }

                p++;
                continue;
            }

            in_word = 1;
            variable = 0;
            p--;
            continue;
        }

        /* inside a word */

        if (c == '\\' && p < end) {
            c = *p++;
            ngx_http_obs_digest_char(&st, (c == 't') ? '\t' : (c == 'r') ? CR
                                          : (c == 'n') ? LF : c);
            variable = 0;
            continue;
        }

        if (c == '{' && variable) {
            ngx_http_obs_digest_char(&st, c);
            continue;
        }

        variable = (c == '$');

        /* as nginx's: "}" does not end a word */

        if (c == ' ' || c == '\t' || c == CR || c == LF || c == ';'
            || c == '{')
        {
            in_word = 0;
            p--;
            continue;
        }

        ngx_http_obs_digest_char(&st, c);
    }

    return NGX_OK;
}


/* Adds a character to the statement's current word, if it is kept. */

static void
ngx_http_obs_digest_char(ngx_http_obs_statement_t *st, u_char c)
{
    if (st->words == 1) {
        if (st->len[0] < sizeof(st->first)) {
            st->first[st->len[0]] = c;
        }
        st->len[0]++;

    } else if (st->words == 2) {
        if (st->len[1] < NGX_HTTP_OBS_DIGEST_ARG_MAX) {
            st->arg[st->len[1]] = c;
        }
        st->len[1]++;
    }
}


/* An "include FILE;" statement: FILE, or each file its wildcard names. */

static ngx_int_t
ngx_http_obs_digest_include(ngx_http_obs_digest_t *d,
    ngx_http_obs_statement_t *st)
{
    u_char      *data;
    ngx_int_t    rc;
    ngx_str_t    file, name;
    ngx_glob_t   gl;

    if (st->words != 2 || st->len[0] != sizeof("include") - 1
        || ngx_strncmp(st->first, "include", st->len[0]) != 0
        || st->len[1] == 0 || st->len[1] > NGX_HTTP_OBS_DIGEST_ARG_MAX)
    {
        return NGX_OK;
    }

    /* the full name is a string of its own, ended by a NUL */

    data = ngx_pnalloc(d->cf->temp_pool, st->len[1] + 1);
    if (data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(data, st->arg, st->len[1]);
    data[st->len[1]] = '\0';

    file.data = data;
    file.len = st->len[1];

    if (ngx_conf_full_name(d->cf->cycle, &file, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    if (strpbrk((char *) file.data, "*?[") == NULL) {
        return ngx_http_obs_digest_file(d, &file);
    }

    ngx_memzero(&gl, sizeof(ngx_glob_t));
    gl.pattern = file.data;
    gl.log = d->cf->log;
    gl.test = 1;

    if (ngx_open_glob(&gl) != NGX_OK) {
        return NGX_OK;
    }

    rc = NGX_OK;

    while (rc == NGX_OK && ngx_read_glob(&gl, &name) == NGX_OK) {
        file.len = name.len++;                      /* with its NUL */
        file.data = ngx_pstrdup(d->cf->temp_pool, &name);

        if (file.data == NULL) {
            rc = NGX_ERROR;
            break;
        }

        rc = ngx_http_obs_digest_file(d, &file);
    }

    ngx_close_glob(&gl);

    return rc;
}
