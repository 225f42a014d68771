/* The sidecar's HTTP side (libmicrohttpd): /metrics, /healthz, /readyz. */

#ifndef OBS_HTTP_H
#define OBS_HTTP_H

#include <stddef.h>

#include "config.h"
#include "store.h"

typedef struct http_server  http_server_t;

/* Starts serving on cfg->listen in its own thread; err says why not. */
http_server_t *http_start(const config_t *cfg, store_t *store, char *err,
    size_t errlen);

/* Points the server at a reloaded configuration (auth). */
void http_configure(http_server_t *h, const config_t *cfg);

/* Marks the sidecar ready (or not) for /readyz. */
void http_set_ready(http_server_t *h, int ready);

/* Stops the server and frees it. */
void http_stop(http_server_t *h);

#endif
