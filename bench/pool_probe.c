/*
 * A benchmark-only nginx module (never shipped, never loaded by the tests):
 * what a request has taken from its pool, one error-log line a request:
 *
 *   pool_probe: blocks=2 used=5112 large=1 large_bytes=4104
 *
 * blocks: the pool's blocks (request_pool_size each, 4 KB by default);
 * used: bytes handed out of those blocks (ngx_palloc/ngx_pnalloc/...; the
 * block headers not counted); large, large_bytes: allocations too big for
 * a block, each a malloc() of its own (malloc_usable_size).
 *
 * It looks in the log phase, as its last handler (load it after the module
 * measured: log handlers run in the order modules registered them), when
 * nothing but the pool's destruction is left, and it allocates nothing
 * from the pool itself: 40 bytes of its own had tipped requests into one
 * more block that they would not have taken without it.  The log line
 * costs instructions, so bench/module_cost.sh loads it into runs of their
 * own, never into the measured callgrind runs.
 */

#include <malloc.h>

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


static ngx_int_t ngx_http_pool_probe_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_pool_probe_handler(ngx_http_request_t *r);


static ngx_http_module_t  ngx_http_pool_probe_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_pool_probe_init,              /* postconfiguration */
    NULL, NULL, NULL, NULL, NULL, NULL
};


ngx_module_t  ngx_http_pool_probe_module = {
    NGX_MODULE_V1,
    &ngx_http_pool_probe_module_ctx,       /* module context */
    NULL,                                  /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NGX_MODULE_V1_PADDING
};


/* what a dynamic module exports (objs/<module>_modules.c otherwise) */

ngx_module_t  *ngx_modules[] = { &ngx_http_pool_probe_module, NULL };
char          *ngx_module_names[] = { "ngx_http_pool_probe_module", NULL };
char          *ngx_module_order[] = { NULL };


static ngx_int_t
ngx_http_pool_probe_handler(ngx_http_request_t *r)
{
    ngx_pool_t        *p;
    ngx_pool_large_t  *l;
    size_t             used, large_bytes;
    ngx_uint_t         blocks, large;

    if (r != r->main) {
        return NGX_OK;
    }

    blocks = 0;
    used = 0;

    for (p = r->pool; p; p = p->d.next) {
        blocks++;
        used += p->d.last - (u_char *) p
                - (p == r->pool ? sizeof(ngx_pool_t)
                                : sizeof(ngx_pool_data_t));
    }

    large = 0;
    large_bytes = 0;

    for (l = r->pool->large; l; l = l->next) {
        if (l->alloc) {
            large++;
            large_bytes += malloc_usable_size(l->alloc);
        }
    }

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "pool_probe: blocks=%ui used=%uz large=%ui large_bytes=%uz",
                  blocks, used, large, large_bytes);

    return NGX_OK;
}


static ngx_int_t
ngx_http_pool_probe_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_pool_probe_handler;

    return NGX_OK;
}
