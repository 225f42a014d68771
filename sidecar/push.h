/*
 * One HTTP POST at a time to a receiver that the sidecar pushes to
 * (remote-write, ClickHouse), with the settings every destination shares:
 * bearer or basic auth read from files, TLS files, extra headers, a timeout.
 * Blocking: each pusher calls it from its own thread.  The result says what
 * to do with the payload: done, try again later (429, 5xx, no connection),
 * or give up (any other answer: the receiver refuses it for good).
 */

#ifndef OBS_PUSH_H
#define OBS_PUSH_H

#include <curl/curl.h>

#include "exporter.h"

typedef enum { PUSH_OK = 0, PUSH_RETRY, PUSH_REJECTED } push_result_t;

typedef struct {
    const sink_config_t  *cfg;
    CURL                 *easy;
    struct curl_slist    *headers;
    double                retry_after;  /* seconds the receiver asked for */
    long                  status;       /* last HTTP status, 0 if none */
    char                  error[256];   /* why the last push failed */
} push_t;

/* Prepares a client for cfg (which must outlive it); content_encoding may
   be NULL.  Returns -1 with err set. */
int push_init(push_t *p, const sink_config_t *cfg, const char *content_type,
    const char *content_encoding, const char *const *extra, char *err,
    size_t errlen);

/* POSTs body to url (cfg->url when NULL), with X-Scope-OrgID when org is
   not NULL or empty. */
push_result_t push_post(push_t *p, const char *url, const void *body,
    size_t len, const char *org);

/* Frees the client. */
void push_free(push_t *p);

/* Frees what a destination's settings hold. */
void push_config_free(sink_config_t *cfg);

/* The next backoff: doubled from first up to max, or what the receiver
   asked for (capped at max). */
double push_backoff(const push_t *p, double previous, double first,
    double max);

#endif
