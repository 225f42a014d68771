/*
 * The delivery layer's HTTP client: the only code that calls libcurl.  A
 * client POSTs one payload at a time for one destination, with what every
 * destination shares (Content-Type, Content-Encoding, bearer or basic
 * auth, TLS files, extra headers, X-Scope-OrgID, a timeout); many clients
 * run at once on one http_multi_t (one thread).  Answers are never written
 * anywhere: their first bytes are kept for the log, the rest discarded.
 * Redirects are never followed (a 3xx is reported, see http_classify).
 *
 * gRPC (OTLP/gRPC) is a transport of the same client: HTTP/2 (prior
 * knowledge for http://, ALPN for https://), the payload sent as one gRPC
 * message (a 5-byte prefix: compressed flag and big-endian length, framed
 * as it is sent, so that spooled payloads stay transport-free), "TE:
 * trailers", a gzip payload announced by grpc-encoding; the answer's
 * grpc-status, grpc-message and grpc-status-details-bin (headers or
 * trailers) are read into the response for the destination's classifier
 * (http_classify_pt), which maps them to a verdict.
 */

#ifndef OBS_HTTP_CLIENT_H
#define OBS_HTTP_CLIENT_H

#include <stddef.h>

#include "destination_config.h"

#define HTTP_BODY_HEAD  200         /* answer bytes kept for the log */

/* What to do with a payload after a request. */
typedef enum {
    HTTP_SENT = 0,                  /* the receiver took it */
    HTTP_RETRY,                     /* later: 429, 5xx, no connection */
    HTTP_REJECTED,                  /* never: the receiver refuses it */
    HTTP_REDIRECTED                 /* 3xx: a configuration error; kept */
} http_verdict_t;

#define HTTP_GRPC_DETAILS  512     /* grpc-status-details-bin kept */

typedef struct {
    int     answered;               /* 0: no HTTP answer (see error) */
    long    status;                 /* HTTP status, 0 if none */
    double  retry_after;            /* seconds asked for; < 0 if none */
    int     grpc_status;            /* grpc-status; -1 if none */
    char    grpc_message[128];      /* grpc-message, still %-encoded */
    char    grpc_details[HTTP_GRPC_DETAILS];   /* its -details-bin, base64 */
    char    error[256];             /* why no answer came */
    char    location[256];          /* a 3xx's Location */
    char    body[HTTP_BODY_HEAD + 1];   /* the answer's first bytes */
    size_t  body_len;

    /* set by a classifier: a request taken with part of it refused (OTLP's
       partial success) */
    size_t  rejected;               /* items refused */
    char    rejected_why[128];      /* the receiver's words, printable */
} http_response_t;

/* Reads a response into a verdict (and may set retry_after, rejected). */
typedef http_verdict_t (*http_classify_pt)(http_response_t *r);

typedef struct http_multi   http_multi_t;
typedef struct http_client  http_client_t;

/* HTTP rules (Prometheus remote-write, Loki, OTLP/HTTP, ClickHouse): 2xx
   sent; 429, 5xx and no answer retried; 3xx redirected; other 4xx and
   1xx rejected. */
http_verdict_t http_classify(http_response_t *r);

/* A set of transfers run by one thread; NULL when out of memory. */
http_multi_t *http_multi_new(void);

/* Frees the set (its clients first). */
void http_multi_free(http_multi_t *m);

/* Makes http_multi_run return now (any thread). */
void http_multi_wakeup(http_multi_t *m);

/* Runs transfers, calling done(owner) for each client whose request
   ended; when none did, waits for at most timeout_ms (less when one ends
   or a wakeup comes). */
void http_multi_run(http_multi_t *m, int timeout_ms,
    void (*done)(void *owner));

/*
 * A client for cfg (copied by the caller's destination; it must outlive
 * the client) POSTing to url; content_encoding may be NULL, extra is a
 * NULL-ended list of more "Name: value" lines (or NULL); grpc: the gRPC
 * transport (see above).  NULL with err set when it cannot be made.
 */
http_client_t *http_client_new(http_multi_t *m,
    const destination_config_t *cfg, const char *url,
    const char *content_type, const char *content_encoding,
    const char *const *extra, int grpc, void *owner, char *err,
    size_t errlen);

/* Starts a POST of body (which must live until the request ends) with
   X-Scope-OrgID: org when org is not empty; -1 if it cannot start. */
int http_client_post(http_client_t *c, const void *body, size_t len,
    const char *org);

/* Whether a request is running. */
int http_client_busy(const http_client_t *c);

/* The answer to the request that ended (done was called). */
void http_client_result(http_client_t *c, http_response_t *out);

/* Stops a running request (the payload's fate is the caller's). */
void http_client_abort(http_client_t *c);

/* Frees a client (aborting its request). */
void http_client_free(http_client_t *c);

/*
 * Reads a Retry-After header line (delay-seconds or an HTTP date) into
 * seconds from now; returns 1 when line is one, else 0.  A date in the
 * past gives a negative number; callers cap what they honour.
 */
int http_retry_after(const char *line, size_t len, double *seconds);

/* s percent-encoded for a URL's query (to free()); NULL if out of
   memory. */
char *http_escape(const char *s);

#endif
