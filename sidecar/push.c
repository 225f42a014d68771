/* Blocking HTTP POST to a push receiver.  See push.h. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "push.h"
#include "sink.h"

#ifndef OBS_VERSION
#define OBS_VERSION "dev"
#endif

static size_t push_header(char *buf, size_t size, size_t n, void *data);
static size_t push_body(char *buf, size_t size, size_t n, void *data);

int
push_init(push_t *p, const sink_config_t *cfg, const char *content_type,
    const char *content_encoding, const char *const *extra, char *err,
    size_t errlen)
{
    char  line[1024];
    int   i;

    memset(p, 0, sizeof(*p));
    p->cfg = cfg;
    p->easy = curl_easy_init();
    if (p->easy == NULL) {
        snprintf(err, errlen, "curl_easy_init failed");
        return -1;
    }

    snprintf(line, sizeof(line), "Content-Type: %s", content_type);
    p->headers = curl_slist_append(p->headers, line);
    if (content_encoding) {
        snprintf(line, sizeof(line), "Content-Encoding: %s",
                 content_encoding);
        p->headers = curl_slist_append(p->headers, line);
    }
    p->headers = curl_slist_append(p->headers, "Expect:");
    for (i = 0; extra && extra[i]; i++) {
        p->headers = curl_slist_append(p->headers, extra[i]);
    }
    if (cfg->bearer_token) {
        snprintf(line, sizeof(line), "Authorization: Bearer %s",
                 cfg->bearer_token);
        p->headers = curl_slist_append(p->headers, line);
    }
    for (i = 0; i < cfg->n_headers; i++) {
        p->headers = curl_slist_append(p->headers, cfg->headers[i]);
    }

    if (p->headers == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    return 0;
}

push_result_t
push_post(push_t *p, const char *url, const void *body, size_t len,
    const char *org)
{
    struct curl_slist   org_node, *headers = p->headers;
    char                org_line[256];
    char                curl_error[CURL_ERROR_SIZE] = "";
    CURLcode            rc;
    CURL               *e = p->easy;

    /* the tenant header goes in front of the shared list, for this call */
    if (org && *org) {
        snprintf(org_line, sizeof(org_line), "X-Scope-OrgID: %s", org);
        org_node.data = org_line;
        org_node.next = p->headers;
        headers = &org_node;
    }

    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url ? url : p->cfg->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, p->cfg->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, p->cfg->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, curl_error);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, push_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, p);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, push_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, p);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "obs-sidecar/" OBS_VERSION);
    if (p->cfg->basic_user) {
        curl_easy_setopt(e, CURLOPT_USERNAME, p->cfg->basic_user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, p->cfg->basic_password);
    }
    if (p->cfg->ca_file) {
        curl_easy_setopt(e, CURLOPT_CAINFO, p->cfg->ca_file);
    }
    if (p->cfg->cert_file) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, p->cfg->cert_file);
    }
    if (p->cfg->key_file) {
        curl_easy_setopt(e, CURLOPT_SSLKEY, p->cfg->key_file);
    }

    p->retry_after = 0;
    p->status = 0;
    p->error[0] = '\0';

    rc = curl_easy_perform(e);
    if (rc != CURLE_OK) {
        snprintf(p->error, sizeof(p->error), "%s",
                 curl_error[0] ? curl_error : curl_easy_strerror(rc));
        return PUSH_RETRY;
    }

    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &p->status);
    if (p->status >= 200 && p->status < 300) {
        return PUSH_OK;
    }

    if (p->error[0] == '\0') {
        snprintf(p->error, sizeof(p->error), "HTTP %ld", p->status);
    }
    return p->status == 429 || p->status >= 500 ? PUSH_RETRY : PUSH_REJECTED;
}

void
push_free(push_t *p)
{
    if (p->easy) {
        curl_easy_cleanup(p->easy);
    }
    curl_slist_free_all(p->headers);
    memset(p, 0, sizeof(*p));
}

void
push_config_free(sink_config_t *cfg)
{
    int  i;

    free(cfg->url);
    free(cfg->basic_user);
    free(cfg->basic_password);
    free(cfg->bearer_token);
    free(cfg->ca_file);
    free(cfg->cert_file);
    free(cfg->key_file);
    free(cfg->spool_dir);
    for (i = 0; i < cfg->n_headers; i++) {
        free(cfg->headers[i]);
    }
    memset(cfg, 0, sizeof(*cfg));
}

double
push_backoff(const push_t *p, double previous, double first, double max)
{
    double  next = previous == 0 ? first : previous * 2;

    if (p->retry_after > 0) {
        next = p->retry_after;
    }
    return next < max ? next : max;
}

static size_t
push_header(char *buf, size_t size, size_t n, void *data)
{
    push_t  *p = data;

    (void) sink_retry_after(buf, size * n, &p->retry_after);
    return size * n;
}

/* The receiver's answer: its first line says why a push was refused. */

static size_t
push_body(char *buf, size_t size, size_t n, void *data)
{
    push_t  *p = data;
    size_t   len = size * n, have = strlen(p->error);

    if (have == 0 && len > 0) {
        snprintf(p->error, sizeof(p->error), "%.*s",
                 (int) (len < sizeof(p->error) - 1 ? len
                                                   : sizeof(p->error) - 1),
                 buf);
        p->error[strcspn(p->error, "\r\n")] = '\0';
    }

    return len;
}
