/*
 * obs_metric: business metrics from what the services already return.
 *
 *     obs_metric counter|gauge NAME VALUE [label=LNAME:$variable:v1,v2,...];
 *
 * VALUE (variables allowed, e.g. $upstream_http_x_recommendations_count) is
 * observed once per request when not empty; a counter adds it, a gauge
 * keeps the last one.  The label takes the variable's value when it is one
 * of the values declared, "none" when it is empty and "other" otherwise, so
 * the label's values are a bounded set that nginx -t knows.  The sidecar
 * parses the value and rejects (and counts) what is not a finite number, or
 * a negative one for a counter.  Everything that can be checked here is:
 * the name's grammar, its type's suffix, collisions with the gateway's own
 * metrics and labels, limits and duplicates.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_obs_module.h"


#define NGX_HTTP_OBS_METRIC_VALUES     32     /* declared per label */


typedef struct {
    ngx_str_t                   name;
    ngx_uint_t                  type;
    ngx_http_complex_value_t    value;
    ngx_str_t                   label_name;  /* empty: no label */
    ngx_int_t                   label_index; /* the label's variable */
    ngx_array_t                *label_values;  /* of ngx_str_t */
} ngx_http_obs_metric_t;


/* What one name means, the same in every location that uses it. */
typedef struct {
    ngx_str_t                   name;
    ngx_str_t                   label_name;
    ngx_uint_t                  type;
} ngx_http_obs_metric_def_t;


static char *ngx_http_obs_metric_name(ngx_conf_t *cf,
    ngx_http_obs_metric_t *m);
static char *ngx_http_obs_metric_label(ngx_conf_t *cf,
    ngx_http_obs_metric_t *m, ngx_str_t *arg);
static char *ngx_http_obs_metric_values(ngx_conf_t *cf,
    ngx_http_obs_metric_t *m, u_char *p, u_char *last);
static char *ngx_http_obs_metric_define(ngx_conf_t *cf,
    ngx_http_obs_metric_t *m);
static size_t ngx_http_obs_metric_base(ngx_str_t *name);
static ngx_str_t *ngx_http_obs_metric_label_value(ngx_http_request_t *r,
    ngx_http_obs_metric_t *m);


static ngx_str_t  ngx_http_obs_metric_other = ngx_string("other");
static ngx_str_t  ngx_http_obs_metric_none = ngx_string("none");
static ngx_str_t  ngx_http_obs_metric_no_label = ngx_null_string;

/* a value too long to be a number: the sidecar rejects it as one */
static ngx_str_t  ngx_http_obs_metric_too_long = ngx_string("(too long)");


/* obs_metric counter|gauge NAME VALUE [label=LNAME:$variable:v1,v2,...] */

char *
ngx_http_obs_metric(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_obs_loc_conf_t *olcf = conf;

    char                              *rv;
    ngx_str_t                         *value;
    ngx_uint_t                         i;
    ngx_conf_post_t                   *post;
    ngx_http_obs_metric_t             *m, *other;
    ngx_http_compile_complex_value_t   ccv;

    post = cmd->post;

    if (post->post_handler(cf, post, NULL) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    if (olcf->metrics == NULL) {
        olcf->metrics = ngx_array_create(cf->pool, 4,
                                         sizeof(ngx_http_obs_metric_t));
        if (olcf->metrics == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (olcf->metrics->nelts == NGX_HTTP_OBS_MAX_METRICS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "too many \"obs_metric\" directives at this level, "
                           "at most %d", NGX_HTTP_OBS_MAX_METRICS);
        return NGX_CONF_ERROR;
    }

    m = ngx_array_push(olcf->metrics);
    if (m == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(m, sizeof(ngx_http_obs_metric_t));
    olcf->metrics->nelts--;                  /* until it is valid */

    if (ngx_strcmp(value[1].data, "counter") == 0) {
        m->type = NGX_HTTP_OBS_METRIC_COUNTER;

    } else if (ngx_strcmp(value[1].data, "gauge") == 0) {
        m->type = NGX_HTTP_OBS_METRIC_GAUGE;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid metric type \"%V\" in \"obs_metric\", "
                           "it must be \"counter\" or \"gauge\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    m->name = value[2];

    rv = ngx_http_obs_metric_name(cf, m);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (value[3].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "empty value of metric \"%V\" in \"obs_metric\"",
                           &m->name);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_obs_check_export(cf, &value[3]) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[3];
    ccv.complex_value = &m->value;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    m->label_index = NGX_ERROR;

    for (i = 4; i < cf->args->nelts; i++) {

        if (m->label_name.len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "metric \"%V\" in \"obs_metric\" has more than "
                               "one label", &m->name);
            return NGX_CONF_ERROR;
        }

        rv = ngx_http_obs_metric_label(cf, m, &value[i]);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    other = olcf->metrics->elts;

    for (i = 0; i < olcf->metrics->nelts; i++) {
        if (other[i].name.len == m->name.len
            && ngx_strncmp(other[i].name.data, m->name.data, m->name.len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate metric \"%V\" in \"obs_metric\"",
                               &m->name);
            return NGX_CONF_ERROR;
        }
    }

    rv = ngx_http_obs_metric_define(cf, m);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    olcf->metrics->nelts++;

    return NGX_CONF_OK;
}


/*
 * Appends the request's observations to its record: the metrics of the
 * location that answered (a level with obs_metric of its own does not
 * inherit the outer ones, as add_header does).
 */

void
ngx_http_obs_metrics_record(ngx_http_request_t *r,
    ngx_http_obs_loc_conf_t *olcf, ngx_http_obs_record_t *rec)
{
    ngx_str_t                    value;
    ngx_uint_t                   i;
    ngx_http_obs_metric_t       *m;
    ngx_http_obs_observation_t  *o;

    m = olcf->metrics->elts;

    for (i = 0; i < olcf->metrics->nelts; i++) {

        if (ngx_http_complex_value(r, &m[i].value, &value) != NGX_OK
            || value.len == 0)
        {
            continue;                        /* absent: nothing observed */
        }

        o = &rec->metrics[rec->n_metrics++];

        o->name = m[i].name;
        o->type = (uint32_t) m[i].type;
        o->value = (value.len <= NGX_HTTP_OBS_METRIC_VALUE_MAX)
                   ? value : ngx_http_obs_metric_too_long;
        o->label_name = m[i].label_name;
        o->label_value = m[i].label_name.len
                         ? *ngx_http_obs_metric_label_value(r, &m[i])
                         : ngx_http_obs_metric_no_label;
    }
}


/* A declared value, "none" for an empty one, "other" for any other. */

static ngx_str_t *
ngx_http_obs_metric_label_value(ngx_http_request_t *r,
    ngx_http_obs_metric_t *m)
{
    ngx_str_t                  *v;
    ngx_uint_t                  i;
    ngx_http_variable_value_t  *vv;

    vv = ngx_http_get_flushed_variable(r, m->label_index);

    if (vv == NULL || vv->not_found || vv->len == 0) {
        return &ngx_http_obs_metric_none;
    }

    v = m->label_values->elts;

    for (i = 0; i < m->label_values->nelts; i++) {
        if (v[i].len == vv->len && ngx_memcmp(v[i].data, vv->data, vv->len)
                                   == 0)
        {
            return &v[i];
        }
    }

    return &ngx_http_obs_metric_other;
}


/*
 * The name's rules are the sidecar's too (common/metric_names.c, from
 * proto/obs/v1/families.def): what nginx -t takes, the sidecar counts.
 */

static char *
ngx_http_obs_metric_name(ngx_conf_t *cf, ngx_http_obs_metric_t *m)
{
    const char  *detail = NULL;

    switch (metric_name_check(m->name.data, m->name.len,
                              m->type == NGX_HTTP_OBS_METRIC_COUNTER,
                              &detail))
    {
    case METRIC_NAME_OK:
        return NGX_CONF_OK;

    case METRIC_NAME_GRAMMAR:
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid metric name \"%V\" in \"obs_metric\", "
                           "it must match [a-zA-Z_][a-zA-Z0-9_]* and be at "
                           "most %d characters", &m->name,
                           NGX_HTTP_OBS_METRIC_NAME_MAX);
        return NGX_CONF_ERROR;

    case METRIC_NAME_PIPELINE:
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "metric name \"%V\" in \"obs_metric\" is reserved: "
                           "\"obs_\" names the pipeline's own metrics",
                           &m->name);
        return NGX_CONF_ERROR;

    case METRIC_NAME_GATEWAY:
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "metric name \"%V\" in \"obs_metric\" collides "
                           "with the gateway's own metric \"%s\"",
                           &m->name, detail);
        return NGX_CONF_ERROR;

    case METRIC_NAME_COUNTER_SUFFIX:
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "counter name \"%V\" in \"obs_metric\" must "
                           "end in \"_total\"", &m->name);
        return NGX_CONF_ERROR;

    default: /* METRIC_NAME_GAUGE_SUFFIX */
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "gauge name \"%V\" in \"obs_metric\" may not "
                           "end in \"%s\"", &m->name, detail);
        return NGX_CONF_ERROR;
    }
}


/* label=LNAME:$variable:v1,v2,... */

static char *
ngx_http_obs_metric_label(ngx_conf_t *cf, ngx_http_obs_metric_t *m,
    ngx_str_t *arg)
{
    u_char     *p, *last, *colon;
    ngx_str_t   var;

    last = arg->data + arg->len;

    if (arg->len < 6 || ngx_strncmp(arg->data, "label=", 6) != 0) {
        goto invalid;
    }

    p = arg->data + 6;
    colon = ngx_strlchr(p, last, ':');

    if (colon == NULL) {
        goto invalid;
    }

    m->label_name.data = p;
    m->label_name.len = colon - p;

    switch (metric_label_check(m->label_name.data, m->label_name.len)) {

    case METRIC_LABEL_OK:
        break;

    case METRIC_LABEL_GRAMMAR:
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid label name \"%V\" in \"obs_metric\", "
                           "it must match [a-zA-Z_][a-zA-Z0-9_]*, not start "
                           "with \"__\" and be at most %d characters",
                           &m->label_name, NGX_HTTP_OBS_METRIC_LABEL_MAX);
        return NGX_CONF_ERROR;

    default: /* METRIC_LABEL_RESERVED */
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "label name \"%V\" in \"obs_metric\" collides "
                           "with a label the gateway sets",
                           &m->label_name);
        return NGX_CONF_ERROR;
    }

    p = colon + 1;
    colon = ngx_strlchr(p, last, ':');

    if (colon == NULL || colon - p < 2 || *p != '$') {
        goto invalid;
    }

    /* the label tells which declared value matched: a secret's oracle */

    var.data = p;
    var.len = colon - p;

    if (ngx_http_obs_check_export(cf, &var) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    var.data++;
    var.len--;

    if (!metric_name_grammar(var.data, var.len)) {
        goto invalid;
    }

    m->label_index = ngx_http_get_variable_index(cf, &var);
    if (m->label_index == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_obs_metric_values(cf, m, colon + 1, last);

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid label \"%V\" in \"obs_metric\", it must be "
                       "\"label=NAME:$variable:value,...\"", arg);
    return NGX_CONF_ERROR;
}


/* The declared values: printable, no duplicates, at most 32 of them. */

static char *
ngx_http_obs_metric_values(ngx_conf_t *cf, ngx_http_obs_metric_t *m,
    u_char *p, u_char *last)
{
    u_char      *comma, *c;
    ngx_str_t   *v, *seen;
    ngx_uint_t   i;

    m->label_values = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
    if (m->label_values == NULL) {
        return NGX_CONF_ERROR;
    }

    for ( ;; ) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        if (m->label_values->nelts == NGX_HTTP_OBS_METRIC_VALUES) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "label \"%V\" in \"obs_metric\" declares more "
                               "than %d values", &m->label_name,
                               NGX_HTTP_OBS_METRIC_VALUES);
            return NGX_CONF_ERROR;
        }

        for (c = p; c < comma; c++) {
            if (*c <= 0x20 || *c >= 0x7f || *c == '"' || *c == '\\') {
                break;
            }
        }

        if (comma == p || c < comma
            || comma - p > NGX_HTTP_OBS_METRIC_LABEL_MAX)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%*s\" of label \"%V\" in "
                               "\"obs_metric\": values are 1 to %d printable "
                               "characters without spaces, quotes or "
                               "backslashes", comma - p, p, &m->label_name,
                               NGX_HTTP_OBS_METRIC_LABEL_MAX);
            return NGX_CONF_ERROR;
        }

        seen = m->label_values->elts;

        for (i = 0; i < m->label_values->nelts; i++) {
            if (seen[i].len == (size_t) (comma - p)
                && ngx_strncmp(seen[i].data, p, seen[i].len) == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "duplicate value \"%V\" of label \"%V\" "
                                   "in \"obs_metric\"", &seen[i],
                                   &m->label_name);
                return NGX_CONF_ERROR;
            }
        }

        if ((comma - p == 5 && ngx_strncmp(p, "other", 5) == 0)
            || (comma - p == 4 && ngx_strncmp(p, "none", 4) == 0))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "value \"%*s\" of label \"%V\" in "
                               "\"obs_metric\" is reserved: it stands for "
                               "undeclared (\"other\") or empty (\"none\") "
                               "values", comma - p, p, &m->label_name);
            return NGX_CONF_ERROR;
        }

        v = ngx_array_push(m->label_values);
        if (v == NULL) {
            return NGX_CONF_ERROR;
        }

        v->data = p;
        v->len = comma - p;

        if (comma == last) {
            return NGX_CONF_OK;
        }

        p = comma + 1;
    }
}


/*
 * A name means one thing in the whole configuration: its type and label
 * name must agree wherever it is used, or the sidecar would mix them.
 */

static char *
ngx_http_obs_metric_define(ngx_conf_t *cf, ngx_http_obs_metric_t *m)
{
    ngx_uint_t                  i;
    ngx_http_obs_main_conf_t   *omcf;
    ngx_http_obs_metric_def_t  *def;

    omcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_obs_module);

    if (omcf->metric_defs == NULL) {
        omcf->metric_defs = ngx_array_create(cf->pool, 4,
                                           sizeof(ngx_http_obs_metric_def_t));
        if (omcf->metric_defs == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    def = omcf->metric_defs->elts;

    for (i = 0; i < omcf->metric_defs->nelts; i++) {
        /* "x_total" and "x" are one family name in OpenMetrics */

        if (ngx_http_obs_metric_base(&def[i].name)
               != ngx_http_obs_metric_base(&m->name)
            || ngx_strncmp(def[i].name.data, m->name.data,
                           ngx_http_obs_metric_base(&m->name)) != 0)
        {
            continue;
        }

        if (def[i].type != m->type
            || def[i].name.len != m->name.len
            || def[i].label_name.len != m->label_name.len
            || ngx_strncmp(def[i].label_name.data, m->label_name.data,
                           m->label_name.len) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "metric \"%V\" in \"obs_metric\" is declared "
                               "elsewhere with another type or label",
                               &m->name);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    def = ngx_array_push(omcf->metric_defs);
    if (def == NULL) {
        return NGX_CONF_ERROR;
    }

    def->name = m->name;
    def->label_name = m->label_name;
    def->type = m->type;

    return NGX_CONF_OK;
}


/* The length of a name without its "_total". */

static size_t
ngx_http_obs_metric_base(ngx_str_t *name)
{
    size_t  len = sizeof("_total") - 1;

    if (name->len > len
        && ngx_strncmp(name->data + name->len - len, "_total", len) == 0)
    {
        return name->len - len;
    }

    return name->len;
}
