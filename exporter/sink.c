/* Delivery with queue, spool and retries.  See sink.h. */

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sink.h"

#define BACKOFF_FIRST   0.5
#define BACKOFF_MAX     300.0

static void sink_push(payload_t **head, payload_t **tail, payload_t *p);
static payload_t *sink_pop(payload_t **head, payload_t **tail);
static int spool_write(sink_t *s, payload_t *p, int front);
static int spool_read(sink_t *s, payload_t *p);
static void spool_remove(sink_t *s, payload_t *p);
static void spool_load(sink_t *s);
static void spool_path(const sink_t *s, uint64_t seq, char *out,
    size_t size);
static void payload_free(payload_t *p);
static size_t sink_header(char *buf, size_t size, size_t n, void *data);
static int seq_compare(const void *a, const void *b);
static void sink_drop_org_header(sink_t *s);

int
sink_init(sink_t *s, sink_id_t id, const sink_config_t *cfg,
    const char *content_type, const char *encoding, CURLM *multi, char *err,
    size_t errlen)
{
    char                buf[512];
    int                 i;

    memset(s, 0, sizeof(*s));
    s->id = id;
    s->cfg = cfg;
    s->content_type = content_type;
    s->multi = multi;
    s->next_seq = 1ULL << 40;      /* room below for payloads put in front */
    s->stats.spool_limit = cfg->spool_bytes;

    if (cfg->url == NULL) {
        s->stats.mode = "file";
        if (cfg->file == NULL || strcmp(cfg->file, "-") == 0) {
            s->file = stdout;
        } else {
            s->file = fopen(cfg->file, "a");
            if (s->file == NULL) {
                snprintf(err, errlen, "%s file %s: %s",
                         exporter_sink_names[id], cfg->file,
                         strerror(errno));
                return -1;
            }
        }
        s->stats.enabled = 1;
        return 0;
    }

    s->stats.mode = "http";
    s->stats.enabled = 1;
    s->easy = curl_easy_init();
    if (s->easy == NULL) {
        snprintf(err, errlen, "%s: curl_easy_init failed",
                 exporter_sink_names[id]);
        return -1;
    }

    snprintf(buf, sizeof(buf), "Content-Type: %s", content_type);
    s->headers = curl_slist_append(s->headers, buf);
    if (encoding) {
        snprintf(buf, sizeof(buf), "Content-Encoding: %s", encoding);
        s->headers = curl_slist_append(s->headers, buf);
    }
    s->headers = curl_slist_append(s->headers, "Expect:");
    if (cfg->bearer_token) {
        snprintf(buf, sizeof(buf), "Authorization: Bearer %s",
                 cfg->bearer_token);
        s->headers = curl_slist_append(s->headers, buf);
    }
    for (i = 0; i < cfg->n_headers; i++) {
        s->headers = curl_slist_append(s->headers, cfg->headers[i]);
    }

    if (cfg->spool_dir && cfg->spool_bytes) {
        if (mkdir(cfg->spool_dir, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "%s spool %s: %s", exporter_sink_names[id],
                     cfg->spool_dir, strerror(errno));
            return -1;
        }
        spool_load(s);
    }

    return 0;
}

void
sink_enqueue(sink_t *s, payload_t *p)
{
    payload_t  *m;

    if (s->file) {
        fwrite(p->data, 1, p->len, s->file);
        fflush(s->file);
        s->stats.items_sent += p->items;
        payload_free(p);
        return;
    }

    /*
     * Order: the spool holds the oldest payloads, memory the newest.  When
     * memory is full everything in it moves to the spool's tail first.
     */
    if (s->stats.queue_bytes + p->len > s->cfg->queue_bytes) {
        if (s->cfg->spool_bytes == 0) {
            s->stats.items_dropped[DROP_QUEUE_FULL] += p->items;
            payload_free(p);
            return;
        }

        while ((m = sink_pop(&s->mem_head, &s->mem_tail)) != NULL) {
            s->stats.queue_bytes -= m->len;
            s->stats.queue_items--;
            if (spool_write(s, m, 0) != 0) {
                s->stats.items_dropped[DROP_SPOOL_FULL] += m->items;
                payload_free(m);
                continue;
            }
            sink_push(&s->spool_head, &s->spool_tail, m);
        }
    }

    if (s->spool_head && s->stats.queue_bytes + p->len > s->cfg->queue_bytes) {
        if (spool_write(s, p, 0) != 0) {
            s->stats.items_dropped[DROP_SPOOL_FULL] += p->items;
            payload_free(p);
            return;
        }
        sink_push(&s->spool_head, &s->spool_tail, p);
        return;
    }

    sink_push(&s->mem_head, &s->mem_tail, p);
    s->stats.queue_bytes += p->len;
    s->stats.queue_items++;
}

void
sink_pump(sink_t *s, double now)
{
    payload_t          *p;
    struct curl_slist  *hdrs;
    char                org[160];

    if (s->file || s->inflight || now < s->retry_at) {
        return;
    }

    /* a payload is retried until it is done; then the spool (older) comes
       before memory (newer) */
    if (s->current == NULL) {
        if (s->spool_head) {
            s->current = sink_pop(&s->spool_head, &s->spool_tail);
        } else if (s->mem_head) {
            s->current = sink_pop(&s->mem_head, &s->mem_tail);
            s->stats.queue_bytes -= s->current->len;
            s->stats.queue_items--;
        } else {
            return;
        }
    }

    p = s->current;
    if (p->data == NULL && spool_read(s, p) != 0) {
        spool_remove(s, p);
        payload_free(p);
        s->current = NULL;
        return;
    }

    /* a per-tenant org goes in front of the shared headers for this
       request only; sink_done takes it off again */
    if (p->org[0]) {
        snprintf(org, sizeof(org), "X-Scope-OrgID: %s", p->org);
        hdrs = curl_slist_append(NULL, org);
        if (hdrs) {
            hdrs->next = s->headers;
            s->headers = hdrs;
            s->org_header = 1;
        }
    }

    curl_easy_reset(s->easy);
    curl_easy_setopt(s->easy, CURLOPT_URL, s->cfg->url);
    curl_easy_setopt(s->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, p->data);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t) p->len);
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
    curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, s->cfg->timeout_ms);
    curl_easy_setopt(s->easy, CURLOPT_CONNECTTIMEOUT_MS, s->cfg->timeout_ms);
    curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, s->error);
    curl_easy_setopt(s->easy, CURLOPT_HEADERFUNCTION, sink_header);
    curl_easy_setopt(s->easy, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
    curl_easy_setopt(s->easy, CURLOPT_USERAGENT, "obs-sidecar");
    if (s->cfg->basic_user) {
        curl_easy_setopt(s->easy, CURLOPT_USERNAME, s->cfg->basic_user);
        curl_easy_setopt(s->easy, CURLOPT_PASSWORD, s->cfg->basic_password);
    }
    if (s->cfg->ca_file) {
        curl_easy_setopt(s->easy, CURLOPT_CAINFO, s->cfg->ca_file);
    }
    if (s->cfg->cert_file) {
        curl_easy_setopt(s->easy, CURLOPT_SSLCERT, s->cfg->cert_file);
    }
    if (s->cfg->key_file) {
        curl_easy_setopt(s->easy, CURLOPT_SSLKEY, s->cfg->key_file);
    }

    s->retry_after = 0;
    s->error[0] = '\0';
    s->inflight = 1;
    curl_multi_add_handle(s->multi, s->easy);
}

void
sink_done(sink_t *s, CURLcode rc, double now)
{
    payload_t          *p = s->current;
    long                code = 0;

    curl_multi_remove_handle(s->multi, s->easy);
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    s->inflight = 0;

    sink_drop_org_header(s);

    if (rc == CURLE_OK && code >= 200 && code < 300) {
        s->stats.requests_ok++;
        s->stats.items_sent += p->items;
        s->backoff = 0;
        s->retry_at = 0;
        spool_remove(s, p);
        payload_free(p);
        s->current = NULL;
        return;
    }

    s->stats.requests_failed++;

    if (rc == CURLE_OK && code != 429 && code < 500) {
        /* the receiver refuses this payload for good (4xx) */
        s->stats.items_dropped[DROP_REJECTED] += p->items;
        spool_remove(s, p);
        payload_free(p);
        s->current = NULL;
        return;
    }

    /* 429, 5xx, connection errors and timeouts: try again later */
    s->stats.retries++;
    s->backoff = s->backoff == 0 ? BACKOFF_FIRST : s->backoff * 2;
    if (s->backoff > BACKOFF_MAX) {
        s->backoff = BACKOFF_MAX;
    }

    s->retry_at = now + (s->retry_after > 0
                         ? (s->retry_after < BACKOFF_MAX ? s->retry_after
                                                         : BACKOFF_MAX)
                         : s->backoff);

    /* a spooled payload waits on disk, not in memory */
    if (p->seq) {
        free(p->data);
        p->data = NULL;
    }
}


int
sink_idle(const sink_t *s)
{
    return s->current == NULL && s->mem_head == NULL && s->spool_head == NULL;
}

/* What is left goes to disk in order: the payload being delivered is the
   oldest, so it is put in front of the spool. */

void
sink_shutdown(sink_t *s)
{
    payload_t  *p;

    p = s->current;
    if (p && p->seq == 0 && !s->inflight) {
        if (s->cfg->spool_bytes == 0 || spool_write(s, p, 1) != 0) {
            s->stats.items_dropped[DROP_SHUTDOWN] += p->items;
        }
    }

    while ((p = sink_pop(&s->mem_head, &s->mem_tail)) != NULL) {
        s->stats.queue_bytes -= p->len;
        s->stats.queue_items--;
        if (s->cfg->spool_bytes && spool_write(s, p, 0) == 0) {
            sink_push(&s->spool_head, &s->spool_tail, p);
            continue;
        }
        s->stats.items_dropped[DROP_SHUTDOWN] += p->items;
        payload_free(p);
    }
}

void
sink_free(sink_t *s)
{
    payload_t  *p;

    payload_free(s->current);
    if (s->inflight) {
        curl_multi_remove_handle(s->multi, s->easy);
        sink_drop_org_header(s);
    }
    while ((p = sink_pop(&s->mem_head, &s->mem_tail)) != NULL) {
        payload_free(p);
    }
    while ((p = sink_pop(&s->spool_head, &s->spool_tail)) != NULL) {
        payload_free(p);
    }
    if (s->easy) {
        curl_easy_cleanup(s->easy);
    }
    curl_slist_free_all(s->headers);
    if (s->file && s->file != stdout) {
        fclose(s->file);
    }
}

/* Takes the request's X-Scope-OrgID off the front of the shared headers. */

static void
sink_drop_org_header(sink_t *s)
{
    struct curl_slist  *org;

    if (!s->org_header) {
        return;
    }

    org = s->headers;
    s->headers = org->next;
    org->next = NULL;
    curl_slist_free_all(org);
    s->org_header = 0;
}


int
sink_retry_after(const char *line, size_t len, double *seconds)
{
    char    value[128];
    time_t  when;

    if (len <= 12 || strncasecmp(line, "Retry-After:", 12) != 0) {
        return 0;
    }

    snprintf(value, sizeof(value), "%.*s", (int) (len - 12), line + 12);
    value[strcspn(value, "\r\n")] = '\0';

    if (strspn(value, " 0123456789") == strlen(value)) {
        *seconds = atof(value);
        return 1;
    }

    when = curl_getdate(value, NULL);
    if (when > 0) {
        *seconds = difftime(when, time(NULL));
        return 1;
    }

    return 0;
}

static size_t
sink_header(char *buf, size_t size, size_t n, void *data)
{
    sink_t  *s = data;

    (void) sink_retry_after(buf, size * n, &s->retry_after);
    return size * n;
}

static void
sink_push(payload_t **head, payload_t **tail, payload_t *p)
{
    p->next = NULL;
    if (*tail) {
        (*tail)->next = p;
    } else {
        *head = p;
    }
    *tail = p;
}

static payload_t *
sink_pop(payload_t **head, payload_t **tail)
{
    payload_t  *p = *head;

    if (p) {
        *head = p->next;
        if (*head == NULL) {
            *tail = NULL;
        }
        p->next = NULL;
    }
    return p;
}

/* Spool file: "org\nitems\n" then the payload. */

static int
spool_write(sink_t *s, payload_t *p, int front)
{
    char   path[4096], tmp[4200];
    FILE  *f;

    if (s->stats.spool_bytes + p->len + 160 > s->cfg->spool_bytes) {
        return -1;
    }

    p->seq = front && s->spool_head ? s->spool_head->seq - 1
                                    : s->next_seq++;
    spool_path(s, p->seq, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);

    f = fopen(tmp, "w");
    if (f == NULL) {
        return -1;
    }

    fprintf(f, "%s\n%zu\n", p->org, p->items);
    p->disk_len = (size_t) ftell(f) + p->len;
    if (fwrite(p->data, 1, p->len, f) != p->len || fclose(f) != 0
        || rename(tmp, path) != 0)
    {
        unlink(tmp);
        return -1;
    }

    s->stats.spool_bytes += p->disk_len;
    s->stats.payloads_spooled++;

    /* on disk now: memory is given back until it is sent */
    free(p->data);
    p->data = NULL;
    return 0;
}

static int
spool_read(sink_t *s, payload_t *p)
{
    char    path[4096];
    FILE   *f;
    long    start;

    spool_path(s, p->seq, path, sizeof(path));
    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }

    if (fgets(p->org, sizeof(p->org), f) == NULL
        || fscanf(f, "%zu\n", &p->items) != 1)
    {
        fclose(f);
        return -1;
    }
    p->org[strcspn(p->org, "\n")] = '\0';

    start = ftell(f);
    fseek(f, 0, SEEK_END);
    p->len = (size_t) (ftell(f) - start);
    fseek(f, start, SEEK_SET);

    p->data = malloc(p->len ? p->len : 1);
    if (p->data == NULL || fread(p->data, 1, p->len, f) != p->len) {
        fclose(f);
        free(p->data);
        p->data = NULL;
        return -1;
    }

    fclose(f);
    return 0;
}

static void
spool_remove(sink_t *s, payload_t *p)
{
    char  path[4096];

    if (p->seq == 0) {
        return;
    }

    spool_path(s, p->seq, path, sizeof(path));
    unlink(path);
    s->stats.spool_bytes -= p->disk_len < s->stats.spool_bytes
                            ? p->disk_len : s->stats.spool_bytes;
}

/* What an earlier run spooled is sent first, oldest first. */

static void
spool_load(sink_t *s)
{
    DIR            *d;
    struct dirent  *de;
    uint64_t       *seqs = NULL, *grown;
    size_t          n = 0, cap = 0, i;
    char            path[4096];
    struct stat     st;
    payload_t      *p;

    d = opendir(s->cfg->spool_dir);
    if (d == NULL) {
        return;
    }

    while ((de = readdir(d)) != NULL) {
        char  *end;
        unsigned long long  seq = strtoull(de->d_name, &end, 10);

        if (seq == 0 || strcmp(end, ".payload") != 0) {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            grown = realloc(seqs, cap * sizeof(uint64_t));
            if (grown == NULL) {
                break;
            }
            seqs = grown;
        }
        seqs[n++] = seq;
    }
    closedir(d);

    qsort(seqs, n, sizeof(uint64_t), seq_compare);

    for (i = 0; i < n; i++) {
        spool_path(s, seqs[i], path, sizeof(path));
        if (stat(path, &st) != 0 || (p = calloc(1, sizeof(*p))) == NULL) {
            continue;
        }
        p->seq = seqs[i];
        p->disk_len = (size_t) st.st_size;
        s->stats.spool_bytes += p->disk_len;
        sink_push(&s->spool_head, &s->spool_tail, p);
        if (seqs[i] >= s->next_seq) {
            s->next_seq = seqs[i] + 1;
        }
    }

    free(seqs);
}

static void
spool_path(const sink_t *s, uint64_t seq, char *out, size_t size)
{
    snprintf(out, size, "%s/%020llu.payload", s->cfg->spool_dir,
             (unsigned long long) seq);
}

static void
payload_free(payload_t *p)
{
    if (p) {
        free(p->data);
        free(p);
    }
}

static int
seq_compare(const void *a, const void *b)
{
    uint64_t  x = *(const uint64_t *) a, y = *(const uint64_t *) b;

    return x < y ? -1 : x > y;
}
