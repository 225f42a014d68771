/*
 * Directive values with variables (obs_service_name, obs_route, obs_tenant,
 * obs_log_field): compiled once at configuration, evaluated per request,
 * with a fast path for a lone variable and for a lone $http_ header.
 *
 * Every such value leaves the gateway (a metric label, a log line, a span
 * attribute), so each, obs_metric's too, first passes one check: no
 * credential, no query string, no request body.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_module.h"
#include "ngx_http_obs_jwt_module.h"


/*
 * A class of variables whose values never leave the gateway: whole names,
 * name prefixes (each of which any name may follow), and headers, read by
 * any of the variables of ngx_http_obs_header_prefixes.
 */
typedef struct {
    ngx_str_t                 *names;
    ngx_str_t                 *prefixes;
    ngx_str_t                 *headers;      /* '-' written '_' */
    const char                *why;          /* and what to use instead */
} ngx_http_obs_source_t;


static u_char *ngx_http_obs_next_variable(u_char *p, u_char *end,
    ngx_str_t *name);
static ngx_http_obs_source_t *ngx_http_obs_secret_source(u_char *name,
    size_t len);
static ngx_uint_t ngx_http_obs_is_var_name(ngx_str_t *name);
static ngx_int_t ngx_http_obs_compile_header(ngx_conf_t *cf,
    ngx_str_t *name, ngx_http_obs_value_t *v);
static ngx_uint_t ngx_http_obs_verified_variable(ngx_str_t *name);


static ngx_str_t  ngx_http_obs_header_prefixes[] = {
    ngx_string("http_"),
    ngx_string("sent_http_"),
    ngx_string("upstream_http_"),
    ngx_string("sent_trailer_"),
    ngx_string("upstream_trailer_"),
    ngx_null_string
};


/* credentials: a pseudonym (hmac=) of a session or token still is one */

static ngx_str_t  ngx_http_obs_credential_headers[] = {
    ngx_string("authorization"),
    ngx_string("proxy_authorization"),
    ngx_string("cookie"),
    ngx_string("set_cookie"),
    /* what API clients and the auth proxies in front of nginx send */
    ngx_string("x_api_key"),
    ngx_string("x_forwarded_access_token"),     /* oauth2-proxy */
    ngx_string("x_auth_request_access_token"),  /* oauth2-proxy */
    ngx_string("x_amzn_oidc_accesstoken"),      /* AWS ALB */
    ngx_string("x_amzn_oidc_data"),             /* AWS ALB: a signed JWT */
    ngx_string("x_amz_security_token"),         /* AWS session token */
    ngx_null_string
};

static ngx_str_t  ngx_http_obs_cookie_prefixes[] = {
    ngx_string("cookie_"),
    ngx_string("upstream_cookie_"),
    ngx_null_string
};


/*
 * the whole query string, and headers whose URL may carry one (an OAuth
 * "?code=", a signed link's token).  Origin is only scheme, host and port
 * (RFC 6454), and one argument ($arg_NAME) is a value the configuration
 * chose: both may leave.
 */

static ngx_str_t  ngx_http_obs_query_variables[] = {
    ngx_string("args"),
    ngx_string("query_string"),
    ngx_string("request_uri"),
    ngx_string("request"),
    ngx_null_string
};

static ngx_str_t  ngx_http_obs_url_headers[] = {
    ngx_string("referer"),
    ngx_string("location"),
    ngx_string("content_location"),
    ngx_string("refresh"),
    ngx_string("link"),
    ngx_string("x_accel_redirect"),
    ngx_string("x_original_uri"),
    ngx_string("x_original_url"),
    ngx_string("x_forwarded_uri"),
    ngx_string("x_rewrite_url"),
    ngx_string("x_envoy_original_path"),
    ngx_null_string
};


/* the request body, which may hold anything */

static ngx_str_t  ngx_http_obs_body_variables[] = {
    ngx_string("request_body"),
    ngx_string("request_body_file"),
    ngx_null_string
};


/* what ngx_http_obs_jwt_module sets from a valid token alone */

static ngx_str_t  ngx_http_obs_verified_variables[] = {
    ngx_string("obs_jwt_tenant"),
    ngx_string("obs_jwt_user"),
    ngx_null_string
};


static ngx_str_t  ngx_http_obs_none[] = {
    ngx_null_string
};

static ngx_http_obs_source_t  ngx_http_obs_secret_sources[] = {

    { ngx_http_obs_none, ngx_http_obs_cookie_prefixes,
      ngx_http_obs_credential_headers,
      "credentials (the Authorization, Proxy-Authorization, Cookie and "
      "Set-Cookie headers, API keys, auth proxies' token headers, cookies) "
      "never leave the gateway, not even as an "
      "hmac= pseudonym; use an identity the gateway verified, such as "
      "$obs_jwt_tenant or $obs_jwt_user" },

    { ngx_http_obs_query_variables, ngx_http_obs_none,
      ngx_http_obs_url_headers,
      "it can carry a query string, which never leaves the gateway; use "
      "$uri, or a map that keeps only the path or the values you choose" },

    { ngx_http_obs_body_variables, ngx_http_obs_none, ngx_http_obs_none,
      "the request body never leaves the gateway; have the service return "
      "the value in a response header ($upstream_http_NAME)" },

    { NULL, NULL, NULL, NULL }
};


/* obs_service_name, obs_route, obs_tenant: one value each. */

char *
ngx_http_obs_set_value_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t              *value;
    ngx_conf_post_t        *post;
    ngx_http_obs_value_t  **field, *v;

    field = (ngx_http_obs_value_t **) (p + cmd->offset);

    if (*field != NULL) {
        return "is duplicate";
    }

    v = ngx_pcalloc(cf->pool, sizeof(ngx_http_obs_value_t));
    if (v == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    /* these values leave the gateway as labels and log fields */

    if (ngx_http_obs_check_export(cf, &value[1]) != NGX_OK
        || ngx_http_obs_compile_value(cf, &value[1], v) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    *field = v;

    if (cmd->post) {
        post = cmd->post;
        return post->post_handler(cf, post, field);
    }

    return NGX_CONF_OK;
}


/*
 * Compiles a directive value (text) into v; see ngx_http_obs_value_t.  A
 * value that leaves the gateway is checked first by its directive
 * (ngx_http_obs_check_export); a token source (obs_jwt_token) is not.
 */

ngx_int_t
ngx_http_obs_compile_value(ngx_conf_t *cf, ngx_str_t *text,
    ngx_http_obs_value_t *v)
{
    ngx_str_t                           name;
    ngx_http_compile_complex_value_t    ccv;

    v->index = NGX_ERROR;
    v->from_request = 1;
    ngx_str_null(&v->header);

    name.data = text->data + 1;
    name.len = text->len - 1;

    if (text->len > sizeof("$http_") - 1 && text->data[0] == '$'
        && ngx_strncasecmp(name.data, (u_char *) "http_", 5) == 0
        && ngx_http_obs_is_var_name(&name))
    {
        return ngx_http_obs_compile_header(cf, &name, v);
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = text;
    ccv.complex_value = &v->cv;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_ERROR;
    }

    v->constant = (v->cv.lengths == NULL);
    v->from_request = !v->constant;

    if (text->len >= 2 && text->data[0] == '$'
        && ngx_http_obs_is_var_name(&name))
    {
        v->index = ngx_http_get_variable_index(cf, &name);
        v->from_request = !ngx_http_obs_verified_variable(&name);
    }

    return NGX_OK;
}


/*
 * Whether a variable's value is what a verified token says (or the
 * gateway's "unverified"): no client chooses it, so a label it makes is
 * not one a request made (Record.from_request).
 */

static ngx_uint_t
ngx_http_obs_verified_variable(ngx_str_t *name)
{
    ngx_str_t  *v;

    for (v = ngx_http_obs_verified_variables; v->len; v++) {
        if (name->len == v->len
            && ngx_strncasecmp(name->data, v->data, v->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * Refuses, naming the directive, a value that reads a secret source through
 * any of its variables ($name or ${name}, in any case), or the variable an
 * obs_jwt_token reads the token from.  This reads the value as written: a
 * variable that "set" or "map" copies from a secret source, or a regex
 * capture of one, is not traced (nginx resolves those per request).
 */

ngx_int_t
ngx_http_obs_check_export(ngx_conf_t *cf, ngx_str_t *text)
{
    u_char                 *p, *end;
    ngx_str_t              *value, name;
    ngx_http_obs_source_t  *source;

    value = cf->args->elts;
    end = text->data + text->len;

    for (p = text->data;
         (p = ngx_http_obs_next_variable(p, end, &name)) != NULL;
         /* void */)
    {
        source = ngx_http_obs_secret_source(name.data, name.len);

        if (source) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" directive may not use \"$%V\": %s",
                               &value[0], &name, source->why);
            return NGX_ERROR;
        }
    }

    return ngx_http_obs_jwt_check_export(cf, text);
}


/* Tells whether text reads the variable name (lowercase, no '$'). */

ngx_uint_t
ngx_http_obs_reads_variable(ngx_str_t *text, ngx_str_t *name)
{
    u_char     *p, *end;
    ngx_str_t   var;

    end = text->data + text->len;

    for (p = text->data;
         (p = ngx_http_obs_next_variable(p, end, &var)) != NULL;
         /* void */)
    {
        if (var.len == name->len
            && ngx_strncasecmp(var.data, name->data, var.len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * The next variable of a value, as nginx's script compiler reads it ($name
 * or ${name}): its name, and where to look on from; NULL when none is left.
 */

static u_char *
ngx_http_obs_next_variable(u_char *p, u_char *end, ngx_str_t *name)
{
    for ( /* void */ ; p < end; p++) {
        if (*p != '$') {
            continue;
        }

        if (p + 1 < end && p[1] == '{') {
            p++;
        }

        name->data = p + 1;

        while (p + 1 < end
               && ((p[1] >= 'a' && p[1] <= 'z') || (p[1] >= 'A' && p[1] <= 'Z')
                   || (p[1] >= '0' && p[1] <= '9') || p[1] == '_'))
        {
            p++;
        }

        name->len = p + 1 - name->data;

        return p + 1;
    }

    return NULL;
}


/* The class of secret sources a variable name belongs to, or NULL. */

static ngx_http_obs_source_t *
ngx_http_obs_secret_source(u_char *name, size_t len)
{
    ngx_str_t              *s, *prefix;
    ngx_http_obs_source_t  *source;

    for (source = ngx_http_obs_secret_sources; source->names; source++) {

        for (s = source->names; s->len; s++) {
            if (len == s->len && ngx_strncasecmp(name, s->data, len) == 0) {
                return source;
            }
        }

        for (s = source->prefixes; s->len; s++) {
            if (len >= s->len && ngx_strncasecmp(name, s->data, s->len) == 0) {
                return source;
            }
        }

        for (prefix = ngx_http_obs_header_prefixes; prefix->len; prefix++) {
            if (len <= prefix->len
                || ngx_strncasecmp(name, prefix->data, prefix->len) != 0)
            {
                continue;
            }

            for (s = source->headers; s->len; s++) {
                if (len - prefix->len == s->len
                    && ngx_strncasecmp(name + prefix->len, s->data, s->len)
                       == 0)
                {
                    return source;
                }
            }
        }
    }

    return NULL;
}


/* Tells whether name (after the '$') is a whole variable name. */

static ngx_uint_t
ngx_http_obs_is_var_name(ngx_str_t *name)
{
    ngx_uint_t  i;

    for (i = 0; i < name->len; i++) {
        if (!((name->data[i] >= 'a' && name->data[i] <= 'z')
              || (name->data[i] >= 'A' && name->data[i] <= 'Z')
              || (name->data[i] >= '0' && name->data[i] <= '9')
              || name->data[i] == '_'))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * A lone $http_NAME: the header is looked up directly (see
 * ngx_http_obs_lone_header), and the variable by name only when the header
 * came more than once, so that nothing indexes it.
 */

static ngx_int_t
ngx_http_obs_compile_header(ngx_conf_t *cf, ngx_str_t *name,
    ngx_http_obs_value_t *v)
{
    ngx_uint_t  i;

    ngx_memzero(&v->cv, sizeof(ngx_http_complex_value_t));
    v->constant = 0;

    v->var.len = name->len;
    v->var.data = ngx_pnalloc(cf->pool, name->len);
    if (v->var.data == NULL) {
        return NGX_ERROR;
    }

    v->var_key = ngx_hash_strlow(v->var.data, name->data, name->len);

    v->header.len = name->len - 5;
    v->header.data = v->var.data + 5;

    /* the usual spelling of the header, to be compared at once */

    v->header_dashed.len = v->header.len;
    v->header_dashed.data = ngx_pnalloc(cf->pool, v->header.len);
    if (v->header_dashed.data == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < v->header.len; i++) {
        v->header_dashed.data[i] = (v->header.data[i] == '_')
                                   ? '-' : v->header.data[i];
    }

    ngx_http_obs_headers_add(
        ngx_http_conf_get_module_main_conf(cf, ngx_http_obs_module),
        &v->header);

    return NGX_OK;
}


/* Evaluates a directive value; a missing variable gives "". */

ngx_int_t
ngx_http_obs_value(ngx_http_request_t *r, ngx_http_obs_value_t *v,
    ngx_str_t *value)
{
    ngx_http_variable_value_t  *vv;

    if (v->constant) {
        *value = v->cv.value;
        return NGX_OK;
    }

    if (v->header.len) {
        if (ngx_http_obs_lone_header(r, v, value)) {
            return NGX_OK;
        }

        /* a repeated header: joined as this nginx joins it */
        vv = ngx_http_get_variable(r, &v->var, v->var_key);

    } else if (v->index == NGX_ERROR) {
        return ngx_http_complex_value(r, &v->cv, value);

    } else {
        vv = ngx_http_get_flushed_variable(r, v->index);
    }

    if (vv == NULL || vv->not_found) {
        ngx_str_null(value);
        return NGX_OK;
    }

    value->data = vv->data;
    value->len = vv->len;

    return NGX_OK;
}
