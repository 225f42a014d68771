/*
 * Directive values with variables (obs_service_name, obs_route, obs_tenant,
 * obs_log_field): compiled once at configuration, evaluated per request,
 * with a fast path for a lone variable and for a lone $http_ header.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_module.h"


static ngx_uint_t ngx_http_obs_is_var_name(ngx_str_t *name);
static ngx_int_t ngx_http_obs_compile_header(ngx_conf_t *cf,
    ngx_str_t *name, ngx_http_obs_value_t *v);


/* obs_service_name, obs_route, obs_tenant: one value each. */

char *
ngx_http_obs_set_value_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t              *value;
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

    if (ngx_http_obs_compile_value(cf, &value[1], v) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    *field = v;

    return NGX_CONF_OK;
}


/* Compiles a directive value (text) into v; see ngx_http_obs_value_t. */

ngx_int_t
ngx_http_obs_compile_value(ngx_conf_t *cf, ngx_str_t *text,
    ngx_http_obs_value_t *v)
{
    ngx_str_t                           name;
    ngx_http_compile_complex_value_t    ccv;

    v->index = NGX_ERROR;
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

    if (text->len >= 2 && text->data[0] == '$'
        && ngx_http_obs_is_var_name(&name))
    {
        v->index = ngx_http_get_variable_index(cf, &name);
    }

    return NGX_OK;
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

    return NGX_OK;
}


/* Evaluates a directive value; a missing variable gives "". */

ngx_int_t
ngx_http_obs_value(ngx_http_request_t *r, ngx_http_obs_value_t *v,
    ngx_str_t *value)
{
    ngx_http_variable_value_t  *vv;

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
