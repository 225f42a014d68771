/* The sidecar's HTTP side (libmicrohttpd): /metrics, /status, /healthz,
   /readyz. */

#ifndef OBS_HTTP_H
#define OBS_HTTP_H

#include <stddef.h>

#include "config.h"
#include "status.h"
#include "store.h"

typedef struct http_server  http_server_t;

/*
 * Starts serving on cfg->listen in its own thread; err says why not.  A
 * request must arrive and be answered within 10 s; one client address may
 * hold 8 connections; while more than 16 connections wait without a
 * request, those waiting over 1 s are closed.
 */
http_server_t *http_start(const config_t *cfg, store_t *store, char *err,
    size_t errlen);

/* Resolves cfg->listen as http_start would (for --check-config). */
int http_check(const config_t *cfg, char *err, size_t errlen);

/* Whether an Accept-Encoding header value admits gzip (q-values read). */
int http_accepts_gzip(const char *header);

/* Points the server at a reloaded configuration (auth). */
void http_configure(http_server_t *h, const config_t *cfg);

/* Serves /status, /status.json and the page's files from st. */
void http_set_status(http_server_t *h, status_t *st);

/* Marks the sidecar ready (or not) for /readyz. */
void http_set_ready(http_server_t *h, int ready);

/* What else /readyz asks (any thread): NULL when fine, else why not. */
typedef const char *(*http_ready_pt)(void *data);

/* Sets it, before the server answers anything. */
void http_set_ready_check(http_server_t *h, http_ready_pt check,
    void *data);

/* Stops the server and frees it. */
void http_stop(http_server_t *h);

#endif
