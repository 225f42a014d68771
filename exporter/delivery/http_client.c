/* libcurl, for the delivery layer only.  See http_client.h. */

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http_client.h"
#include "label_rules.h"

#ifndef OBS_VERSION
#define OBS_VERSION "dev"
#endif

struct http_multi {
    CURLM               *multi;
    int                  h2c_no_reuse;  /* libcurl < 8.0 (see post) */
};

struct http_client {
    http_multi_t                *m;
    const destination_config_t  *cfg;
    const char                  *url;
    void                        *owner;
    CURL                        *easy;
    struct curl_slist           *headers;   /* shared by every request */
    struct curl_slist            org_node;  /* this request's, in front */
    char                         org_line[ORG_ID_MAX + 32];
    int                          grpc;      /* gRPC: HTTP/2, framed body */
    int                          compressed;    /* gRPC: a gzip payload */
    unsigned char               *framed;    /* gRPC: the message sent */
    int                          busy;
    CURLcode                     rc;
    char                         curl_error[CURL_ERROR_SIZE];
    http_response_t              r;
};

static size_t http_header(char *buf, size_t size, size_t n, void *data);
static size_t http_body(char *buf, size_t size, size_t n, void *data);
static void http_header_value(char *out, size_t size, const char *buf,
    size_t len, size_t name_len);

http_verdict_t
http_classify(http_response_t *r)
{
    if (!r->answered) {
        return HTTP_RETRY;
    }
    if (r->status >= 200 && r->status < 300) {
        return HTTP_SENT;
    }
    if (r->status == 429 || r->status >= 500) {
        return HTTP_RETRY;
    }
    if (r->status >= 300 && r->status < 400) {
        return HTTP_REDIRECTED;
    }
    return HTTP_REJECTED;
}

http_multi_t *
http_multi_new(void)
{
    http_multi_t  *m = calloc(1, sizeof(http_multi_t));

    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (m == NULL || (m->multi = curl_multi_init()) == NULL) {
        free(m);
        return NULL;
    }
    m->h2c_no_reuse = curl_version_info(CURLVERSION_NOW)->version_num
                      < 0x080000;
    return m;
}

void
http_multi_free(http_multi_t *m)
{
    if (m) {
        curl_multi_cleanup(m->multi);
        free(m);
    }
}

void
http_multi_wakeup(http_multi_t *m)
{
    curl_multi_wakeup(m->multi);
}

void
http_multi_run(http_multi_t *m, int timeout_ms, void (*done)(void *owner))
{
    http_client_t  *c;
    CURLMsg        *msg;
    int             running, left, ended = 0;

    curl_multi_perform(m->multi, &running);
    while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        c = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &c);
        c->rc = msg->data.result;
        curl_multi_remove_handle(m->multi, c->easy);
        c->busy = 0;
        done(c->owner);
        ended++;
    }

    /* a request that ended lets its destination send the next at once */
    if (ended == 0) {
        curl_multi_poll(m->multi, NULL, 0, timeout_ms, NULL);
    }
}

http_client_t *
http_client_new(http_multi_t *m, const destination_config_t *cfg,
    const char *url, const char *content_type, const char *content_encoding,
    const char *const *extra, int grpc, void *owner, char *err,
    size_t errlen)
{
    http_client_t  *c = calloc(1, sizeof(http_client_t));
    char            line[1024];
    int             i, failed = 0;

    if (c == NULL || (c->easy = curl_easy_init()) == NULL) {
        snprintf(err, errlen, "curl_easy_init failed");
        free(c);
        return NULL;
    }
    c->m = m;
    c->cfg = cfg;
    c->url = url;
    c->owner = owner;
    c->grpc = grpc;

    /* the order receivers see: type, encoding, fixed extras, auth, the
       operator's headers */
    snprintf(line, sizeof(line), "Content-Type: %s", content_type);
    c->headers = curl_slist_append(c->headers, line);
    if (grpc) {
        /* a gzip'd payload is a compressed message, not a Content-Encoding;
           proxies that strip TE break gRPC, so it is always sent */
        c->compressed = content_encoding != NULL;
        failed |= (c->headers = curl_slist_append(c->headers,
                                                  "TE: trailers")) == NULL;
        if (content_encoding) {
            snprintf(line, sizeof(line), "grpc-encoding: %s",
                     content_encoding);
            failed |= (c->headers = curl_slist_append(c->headers, line))
                      == NULL;
        }
    } else if (content_encoding) {
        snprintf(line, sizeof(line), "Content-Encoding: %s",
                 content_encoding);
        failed |= (c->headers = curl_slist_append(c->headers, line)) == NULL;
    }
    failed |= (c->headers = curl_slist_append(c->headers, "Expect:"))
              == NULL;
    for (i = 0; extra && extra[i]; i++) {
        failed |= (c->headers = curl_slist_append(c->headers, extra[i]))
                  == NULL;
    }
    if (cfg->bearer_token) {
        snprintf(line, sizeof(line), "Authorization: Bearer %s",
                 cfg->bearer_token);
        failed |= (c->headers = curl_slist_append(c->headers, line)) == NULL;
    }
    for (i = 0; i < cfg->n_headers; i++) {
        failed |= (c->headers = curl_slist_append(c->headers,
                                                  cfg->headers[i])) == NULL;
    }

    if (failed) {
        snprintf(err, errlen, "out of memory");
        http_client_free(c);
        return NULL;
    }

    return c;
}

int
http_client_post(http_client_t *c, const void *body, size_t len,
    const char *org)
{
    const destination_config_t  *cfg = c->cfg;
    struct curl_slist           *headers = c->headers;
    CURL                        *e = c->easy;

    if (org && *org) {
        snprintf(c->org_line, sizeof(c->org_line), "X-Scope-OrgID: %s", org);
        c->org_node.data = c->org_line;
        c->org_node.next = c->headers;
        headers = &c->org_node;
    }

    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, c->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    if (c->grpc) {
        /* one message: compressed flag, big-endian length, the payload */
        free(c->framed);
        c->framed = malloc(len + 5);
        if (c->framed == NULL) {
            return -1;
        }
        c->framed[0] = (unsigned char) c->compressed;
        c->framed[1] = (unsigned char) (len >> 24);
        c->framed[2] = (unsigned char) (len >> 16);
        c->framed[3] = (unsigned char) (len >> 8);
        c->framed[4] = (unsigned char) len;
        memcpy(c->framed + 5, body, len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->framed);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t) len + 5);
        if (strncasecmp(c->url, "https:", 6) == 0) {
            curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                             CURL_HTTP_VERSION_2TLS);
        } else {
            curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                             CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
            /* libcurl before 8.0 fails a request on a reused (or
               shared) prior-knowledge connection (curl issue 10634): one
               connection a request there (ALPN's are reused) */
            curl_easy_setopt(e, CURLOPT_FRESH_CONNECT,
                             (long) c->m->h2c_no_reuse);
            curl_easy_setopt(e, CURLOPT_FORBID_REUSE,
                             (long) c->m->h2c_no_reuse);
        }
    } else {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, cfg->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, cfg->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->curl_error);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    /* without it libcurl writes the answer to stdout, the log lines' */
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "obs-sidecar/" OBS_VERSION);
    if (cfg->basic_user) {
        curl_easy_setopt(e, CURLOPT_USERNAME, cfg->basic_user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, cfg->basic_password);
    }
    if (cfg->ca_file) {
        curl_easy_setopt(e, CURLOPT_CAINFO, cfg->ca_file);
    }
    if (cfg->cert_file) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, cfg->cert_file);
    }
    if (cfg->key_file) {
        curl_easy_setopt(e, CURLOPT_SSLKEY, cfg->key_file);
    }

    memset(&c->r, 0, sizeof(c->r));
    c->r.retry_after = -1;
    c->r.grpc_status = -1;
    c->curl_error[0] = '\0';

    if (curl_multi_add_handle(c->m->multi, e) != CURLM_OK) {
        return -1;
    }
    c->busy = 1;
    return 0;
}

int
http_client_busy(const http_client_t *c)
{
    return c->busy;
}

void
http_client_result(http_client_t *c, http_response_t *out)
{
    *out = c->r;
    out->body[out->body_len] = '\0';

    if (c->rc != CURLE_OK) {
        out->answered = 0;
        snprintf(out->error, sizeof(out->error), "%s",
                 c->curl_error[0] ? c->curl_error : curl_easy_strerror(c->rc));
        return;
    }

    out->answered = 1;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &out->status);
}

void
http_client_abort(http_client_t *c)
{
    if (c->busy) {
        curl_multi_remove_handle(c->m->multi, c->easy);
        c->busy = 0;
    }
}

void
http_client_free(http_client_t *c)
{
    if (c == NULL) {
        return;
    }
    http_client_abort(c);
    curl_easy_cleanup(c->easy);
    curl_slist_free_all(c->headers);
    free(c->framed);
    free(c);
}

int
http_retry_after(const char *line, size_t len, double *seconds)
{
    char    value[128];
    time_t  when;
    size_t  n;

    if (len <= 12 || strncasecmp(line, "Retry-After:", 12) != 0) {
        return 0;
    }

    snprintf(value, sizeof(value), "%.*s", (int) (len - 12), line + 12);
    value[strcspn(value, "\r\n")] = '\0';
    n = strspn(value, " ");
    memmove(value, value + n, strlen(value + n) + 1);
    n = strlen(value);
    while (n && value[n - 1] == ' ') {
        value[--n] = '\0';
    }

    if (n && strspn(value, "0123456789") == n) {
        *seconds = atof(value);
        return 1;
    }

    when = n ? curl_getdate(value, NULL) : -1;
    if (when > 0) {
        *seconds = difftime(when, time(NULL));
        return 1;
    }

    return 0;
}

char *
http_escape(const char *s)
{
    char  *escaped = curl_easy_escape(NULL, s, 0), *copy;

    copy = escaped ? strdup(escaped) : NULL;
    curl_free(escaped);
    return copy;
}

/* Retry-After, a redirect's Location, a gRPC status, message and details
   (headers or trailers). */

static size_t
http_header(char *buf, size_t size, size_t n, void *data)
{
    http_client_t  *c = data;
    size_t          len = size * n;

    if (http_retry_after(buf, len, &c->r.retry_after)) {
        return len;
    }

    if (len > 9 && strncasecmp(buf, "Location:", 9) == 0) {
        http_header_value(c->r.location, sizeof(c->r.location), buf, len, 9);

    } else if (len > 12 && strncasecmp(buf, "grpc-status:", 12) == 0) {
        c->r.grpc_status = atoi(buf + 12);

    } else if (len > 13 && strncasecmp(buf, "grpc-message:", 13) == 0) {
        http_header_value(c->r.grpc_message, sizeof(c->r.grpc_message), buf,
                          len, 13);

    } else if (len > 24
               && strncasecmp(buf, "grpc-status-details-bin:", 24) == 0)
    {
        http_header_value(c->r.grpc_details, sizeof(c->r.grpc_details), buf,
                          len, 24);
    }

    return size * n;
}

/* A header's value without the name, surrounding blanks or line end. */

static void
http_header_value(char *out, size_t size, const char *buf, size_t len,
    size_t name_len)
{
    buf += name_len;
    len -= name_len;
    while (len && (*buf == ' ' || *buf == '\t')) {
        buf++;
        len--;
    }
    snprintf(out, size, "%.*s", (int) len, buf);
    out[strcspn(out, "\r\n")] = '\0';
}

/* Keeps the answer's first bytes; the rest is read and dropped. */

static size_t
http_body(char *buf, size_t size, size_t n, void *data)
{
    http_client_t  *c = data;
    size_t          len = size * n, room = HTTP_BODY_HEAD - c->r.body_len;

    if (room) {
        memcpy(c->r.body + c->r.body_len, buf, len < room ? len : room);
        c->r.body_len += len < room ? len : room;
    }

    return len;
}
