/*
 * HTTP with libmicrohttpd.  One thread of ours runs MHD and, between its
 * rounds, enforces what MHD cannot: a total deadline per request, and under
 * pressure a short one for connections that have not sent a request yet,
 * so that slow clients never keep /healthz and /readyz from answering.
 * Rendering /metrics happens in that thread and walks the store one shard
 * at a time, so ingest keeps going meanwhile.
 */

#include <errno.h>
#include <netinet/in.h>
#include <unistd.h>
#include <stdarg.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "compress.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "net.h"
#include "stats.h"
#include "status.h"

#define HTTP_CONNECTIONS     256    /* at once, from all clients */
#define HTTP_PER_ADDRESS     8      /* at once, from one client address */
#define HTTP_IDLE_SECONDS    10     /* MHD: silence on a connection */
#define HTTP_DEADLINE_MS     10000  /* request line to last response byte */
#define HTTP_BUSY_WAITING    16     /* more connections without a request */
#define HTTP_BUSY_GRACE_MS   1000   /* ... and those older than this go */
#define HTTP_TICK_MS         100    /* how often deadlines are looked at */
/*
 * Bytes of /metrics bodies held at once (rendered, not yet sent): one can
 * be tens of megabytes, and a scraper that stops reading keeps its own
 * until the deadline.  Past this, scrapes get 503 and Retry-After; one is
 * always let through.
 */
#define HTTP_SCRAPE_BYTES_HELD  (64 * 1024 * 1024)

/* One TCP connection, from accept or from its last response. */
typedef struct http_conn {
    struct http_conn  *prev;
    struct http_conn  *next;
    int                fd;
    uint64_t           since_ms;
    unsigned           answering:1;  /* a complete request is in hand */
    unsigned           cut:1;
} http_conn_t;

/* A rendered /metrics body on its way out, and whose it is. */
typedef struct {
    struct http_server  *server;
    char                *data;
    size_t               len;
} http_held_t;

struct http_server {
    struct MHD_Daemon  *daemon;
    store_t            *store;
    atomic_int          ready;
    http_ready_pt       ready_check;  /* set before serving */
    void               *ready_data;
    atomic_int          stopping;
    int                 prometheus;  /* /metrics served (set at start) */
    pthread_t           thread;
    int                 running;
    http_conn_t        *conns;       /* touched by the HTTP thread only */
    atomic_size_t       scrape_bytes_held;
    pthread_mutex_t     auth_lock;
    char               *bearer_token;
    char               *basic_user;
    char               *basic_password;
    status_t           *status;      /* /status, or NULL */
};

static enum MHD_Result http_handle(void *cls, struct MHD_Connection *c,
    const char *url, const char *method, const char *version,
    const char *upload, size_t *upload_size, void **state);
static enum MHD_Result http_text(struct MHD_Connection *c, unsigned code,
    const char *body);
static struct MHD_Response *http_held_response(http_server_t *h,
    buf_t *body);
static void http_release_held(void *cls);
static enum MHD_Result http_busy(struct MHD_Connection *c);
static enum MHD_Result http_metrics(http_server_t *h,
    struct MHD_Connection *c);
static enum MHD_Result http_status(http_server_t *h,
    struct MHD_Connection *c, const char *url);
static const char *http_arg(void *ctx, const char *name);
static enum MHD_Result http_unauthorized(http_server_t *h,
    struct MHD_Connection *c);
static int http_authorized(http_server_t *h, struct MHD_Connection *c);
static int http_equal(const char *a, const char *b);
static char *http_dup(const char *s);
static const char *http_origin_path(const char *url);
static void *http_loop(void *data);
static void http_reap(http_server_t *h);
static void http_connection(void *cls, struct MHD_Connection *c,
    void **socket_context, enum MHD_ConnectionNotificationCode toe);
static void http_completed(void *cls, struct MHD_Connection *c,
    void **state, enum MHD_RequestTerminationCode toe);
static http_conn_t *http_conn_of(struct MHD_Connection *c);
static int http_listen_socket(const struct addrinfo *ai, const char *where,
    char *err, size_t errlen);
static void http_mhd_log(void *cls, const char *fmt, va_list ap);
static uint64_t http_now_ms(void);

http_server_t *
http_start(const config_t *cfg, store_t *store, char *err, size_t errlen)
{
    http_server_t    *h;
    struct addrinfo  *ai;
    int               rc, fd;

    h = calloc(1, sizeof(http_server_t));
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    h->store = store;
    pthread_mutex_init(&h->auth_lock, NULL);
    http_configure(h, cfg);
    h->prometheus = cfg->otlp_metrics.prometheus;

    rc = net_resolve(cfg->listen, SOCK_STREAM, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "listen %s: %s", cfg->listen, gai_strerror(rc));
        http_stop(h);
        return NULL;
    }

    /*
     * The socket is ours, so that a busy port is reported as such with the
     * address (MHD would say "Failed to bind to port 0").
     */
    fd = http_listen_socket(ai, cfg->listen, err, errlen);
    freeaddrinfo(ai);
    if (fd < 0) {
        http_stop(h);
        return NULL;
    }

    h->daemon = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_USE_ERROR_LOG,
        0, NULL, NULL, http_handle, h,
        MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) HTTP_IDLE_SECONDS,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int) HTTP_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int) HTTP_PER_ADDRESS,
        MHD_OPTION_NOTIFY_CONNECTION, http_connection, h,
        MHD_OPTION_NOTIFY_COMPLETED, http_completed, h,
        MHD_OPTION_END);

    if (h->daemon == NULL) {
        close(fd);
        snprintf(err, errlen, "listen %s: cannot start the HTTP server",
                 cfg->listen);
        http_stop(h);
        return NULL;
    }

    if (pthread_create(&h->thread, NULL, http_loop, h) != 0) {
        snprintf(err, errlen, "listen %s: cannot start the HTTP thread",
                 cfg->listen);
        http_stop(h);
        return NULL;
    }

    h->running = 1;
    return h;
}

/* A listening TCP socket on ai, or -1 with err naming listen and why. */

static int
http_listen_socket(const struct addrinfo *ai, const char *where, char *err,
    size_t errlen)
{
    int  fd, on = 1;

    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                ai->ai_protocol);
    if (fd < 0) {
        snprintf(err, errlen, "listen %s: socket: %s", where,
                 strerror(errno));
        return -1;
    }

    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (ai->ai_family == AF_INET6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    }

    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0
        || listen(fd, 128) != 0)
    {
        snprintf(err, errlen, "listen %s: %s%s", where, strerror(errno),
                 errno == EADDRINUSE ? " (another process has this port: "
                 "pick another with --listen)" : "");
        close(fd);
        return -1;
    }

    return fd;
}

/* MHD's own messages, as the sidecar's log lines. */

static void
http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char    line[512];
    size_t  n;

    (void) cls;

    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
        line[--n] = '\0';
    }
    sidecar_log("warn", "http: %s", line);
}

int
http_check(const config_t *cfg, char *err, size_t errlen)
{
    struct addrinfo  *ai;
    int               rc;

    rc = net_resolve(cfg->listen, SOCK_STREAM, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "listen %s: %s", cfg->listen, gai_strerror(rc));
        return -1;
    }

    freeaddrinfo(ai);
    return 0;
}

void
http_configure(http_server_t *h, const config_t *cfg)
{
    pthread_mutex_lock(&h->auth_lock);
    free(h->bearer_token);
    free(h->basic_user);
    free(h->basic_password);
    h->bearer_token = http_dup(cfg->bearer_token);
    h->basic_user = http_dup(cfg->basic_user);
    h->basic_password = http_dup(cfg->basic_password);
    pthread_mutex_unlock(&h->auth_lock);
}

void
http_set_status(http_server_t *h, status_t *st)
{
    h->status = st;
}

void
http_set_ready(http_server_t *h, int ready)
{
    atomic_store(&h->ready, ready);
}

void
http_set_ready_check(http_server_t *h, http_ready_pt check, void *data)
{
    h->ready_check = check;
    h->ready_data = data;
}

void
http_stop(http_server_t *h)
{
    if (h == NULL) {
        return;
    }

    if (h->running) {
        atomic_store(&h->stopping, 1);
        pthread_join(h->thread, NULL);
    }

    /* closes what is open; http_connection frees each, in this thread */
    if (h->daemon) {
        MHD_stop_daemon(h->daemon);
    }

    free(h->bearer_token);
    free(h->basic_user);
    free(h->basic_password);
    pthread_mutex_destroy(&h->auth_lock);
    free(h);
}

static enum MHD_Result
http_handle(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **state)
{
    http_server_t  *h = cls;
    http_conn_t    *hc;
    const char     *why;
    char            text[512];
    static int      headers_seen;

    (void) version;
    (void) upload;

    hc = http_conn_of(c);
    if (hc) {
        hc->answering = 1;
    }

    /* answered at once: MHD then closes without reading a body */
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        return http_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                         "only GET and HEAD\n");
    }

    /*
     * MHD first calls with the headers alone.  A response queued then is
     * an "early" one, after which MHD reads nothing more on the connection:
     * no keep-alive and every pipelined request lost.  So the answer waits
     * for the last call, when the whole request (a body ignored) is in.
     */
    if (*state == NULL) {
        *state = &headers_seen;
        return MHD_YES;
    }

    if (*upload_size != 0) {
        *upload_size = 0;
        return MHD_YES;
    }

    url = http_origin_path(url);

    if (strcmp(url, "/metrics") == 0) {
        return h->prometheus
               ? http_metrics(h, c)
               : http_text(c, MHD_HTTP_NOT_FOUND, "not found: metrics go "
                           "over OTLP only (OTEL_METRICS_EXPORTER)\n");
    }

    if (strcmp(url, "/healthz") == 0) {
        return http_text(c, MHD_HTTP_OK, "ok\n");
    }

    if (strcmp(url, "/readyz") == 0) {
        why = h->ready_check ? h->ready_check(h->ready_data) : NULL;
        if (!atomic_load(&h->ready) || why == NULL) {
            return atomic_load(&h->ready)
                   ? http_text(c, MHD_HTTP_OK, "ready\n")
                   : http_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                               "not ready\n");
        }
        snprintf(text, sizeof(text), "not ready: %s\n", why);
        return http_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, text);
    }

    if (h->status && strncmp(url, "/status", 7) == 0) {
        return http_status(h, c, url);
    }

    return http_text(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics, "
                     "/status, /healthz or /readyz\n");
}

static enum MHD_Result
http_text(struct MHD_Connection *c, unsigned code, const char *body)
{
    struct MHD_Response  *r;
    enum MHD_Result       rc;

    r = MHD_create_response_from_buffer(strlen(body), (void *) body,
                                        MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        return MHD_NO;
    }

    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; charset=utf-8");
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    }

    rc = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result
http_metrics(http_server_t *h, struct MHD_Connection *c)
{
    struct MHD_Response  *r;
    enum MHD_Result       rc;
    expo_format_t         format;
    const char           *accept, *encoding, *forced;
    buf_t                 body = { 0 }, zipped = { 0 }, *send = &body;
    int                   gzip, rc_render;

    if (!http_authorized(h, c)) {
        return http_unauthorized(h, c);
    }

    accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                         MHD_HTTP_HEADER_ACCEPT);
    encoding = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                           MHD_HTTP_HEADER_ACCEPT_ENCODING);
    format = expo_negotiate(accept);

    /* ?format= pins one format, e.g. for a scrape job per format */
    forced = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "format");
    if (forced) {
        if (strcmp(forced, "text") == 0) {
            format = EXPO_TEXT;
        } else if (strcmp(forced, "openmetrics") == 0) {
            format = EXPO_OPENMETRICS;
        } else if (strcmp(forced, "protobuf") == 0) {
            format = EXPO_PROTOBUF;
        } else {
            return http_text(c, MHD_HTTP_BAD_REQUEST, "format must be text, "
                             "openmetrics or protobuf\n");
        }
    }

    gzip = http_accepts_gzip(encoding);

    if (atomic_load(&h->scrape_bytes_held) >= HTTP_SCRAPE_BYTES_HELD) {
        STATS_INC(http_scrapes_refused);
        return http_busy(c);
    }

    if (gzip) {
        send = &zipped;
        rc_render = metrics_render_gzip(h->store, format, &body, &zipped);
    } else {
        rc_render = metrics_render(h->store, format, &body);
    }

    if (rc_render != 0) {
        buf_free(&body);
        buf_free(&zipped);
        return http_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                         "out of memory\n");
    }

    r = http_held_response(h, send);
    buf_free(send == &body ? &zipped : &body);
    if (r == NULL) {
        buf_free(send);
        return MHD_NO;
    }

    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            expo_content_type(format));
    MHD_add_response_header(r, MHD_HTTP_HEADER_VARY,
                            "Accept, Accept-Encoding");
    if (gzip) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    }

    rc = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

/* A body MHD sends without a copy; the count of held bodies follows it. */
static struct MHD_Response *
http_held_response(http_server_t *h, buf_t *body)
{
    struct MHD_Response  *r;
    http_held_t          *held;

    held = malloc(sizeof(http_held_t));
    if (held == NULL) {
        return NULL;
    }

    held->server = h;
    held->data = body->data;
    held->len = body->len;

    r = MHD_create_response_from_buffer_with_free_callback_cls(
            body->len, body->data, http_release_held, held);
    if (r == NULL) {
        free(held);
        return NULL;
    }

    atomic_fetch_add(&h->scrape_bytes_held, body->len);
    return r;
}

static void
http_release_held(void *cls)
{
    http_held_t  *held = cls;

    atomic_fetch_sub(&held->server->scrape_bytes_held, held->len);
    free(held->data);
    free(held);
}

static enum MHD_Result
http_busy(struct MHD_Connection *c)
{
    struct MHD_Response  *r;
    enum MHD_Result       rc;
    static const char     body[] = "too many scrapes at once\n";

    r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *) body,
                                        MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        return MHD_NO;
    }

    MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    rc = MHD_queue_response(c, MHD_HTTP_SERVICE_UNAVAILABLE, r);
    MHD_destroy_response(r);
    return rc;
}

/*
 * The status page: its files, and /status.json rendered from the newest
 * snapshot (never from the store).  Read-only, behind the same auth as
 * /metrics; the policy allows scripts and styles from the sidecar alone.
 */

static enum MHD_Result
http_status(http_server_t *h, struct MHD_Connection *c, const char *url)
{
    struct MHD_Response  *r;
    enum MHD_Result       rc;
    const char           *type, *data;
    buf_t                 body = { 0 };
    size_t                len;
    char                  err[256];

    if (!http_authorized(h, c)) {
        return http_unauthorized(h, c);
    }

    if (strcmp(url, "/status.json") == 0) {
        if (status_render(h->status, http_arg, c, &body, err, sizeof(err))
            != 0)
        {
            if (body.failed) {
                buf_free(&body);
                return http_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                 "out of memory\n");
            }
            buf_free(&body);
            strcat(err, "\n");
            r = MHD_create_response_from_buffer(strlen(err), err,
                                                MHD_RESPMEM_MUST_COPY);
            if (r == NULL) {
                return MHD_NO;
            }
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                    "text/plain; charset=utf-8");
            rc = MHD_queue_response(c, strcmp(err, "no snapshot yet\n") == 0
                                       ? MHD_HTTP_SERVICE_UNAVAILABLE
                                       : MHD_HTTP_BAD_REQUEST, r);
            MHD_destroy_response(r);
            return rc;
        }

        r = http_held_response(h, &body);
        if (r == NULL) {
            buf_free(&body);
            return MHD_NO;
        }
        type = "application/json";

    } else {
        data = status_asset(url, &len, &type);
        if (data == NULL) {
            return http_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
        }
        r = MHD_create_response_from_buffer(len, (void *) data,
                                            MHD_RESPMEM_PERSISTENT);
        if (r == NULL) {
            return MHD_NO;
        }
    }

    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'none'; script-src 'self'; "
                            "style-src 'self'; img-src 'self' data:; "
                            "connect-src 'self'; base-uri 'none'; "
                            "form-action 'none'; frame-ancestors 'none'");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");

    rc = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

static const char *
http_arg(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result
http_unauthorized(http_server_t *h, struct MHD_Connection *c)
{
    struct MHD_Response  *r;
    enum MHD_Result       rc;

    r = MHD_create_response_from_buffer(13, (void *) "unauthorized\n",
                                        MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                            h->basic_user ? "Basic realm=\"obs\""
                                          : "Bearer");
    rc = MHD_queue_response(c, MHD_HTTP_UNAUTHORIZED, r);
    MHD_destroy_response(r);
    return rc;
}

static int
http_authorized(http_server_t *h, struct MHD_Connection *c)
{
    const char  *auth;
    char        *user, *pass = NULL;
    int          ok = 1;

    pthread_mutex_lock(&h->auth_lock);

    if (h->bearer_token) {
        auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                           MHD_HTTP_HEADER_AUTHORIZATION);
        ok = auth && strncasecmp(auth, "Bearer ", 7) == 0
             && http_equal(auth + 7, h->bearer_token);

    } else if (h->basic_user) {
        user = MHD_basic_auth_get_username_password(c, &pass);
        ok = user && pass && http_equal(user, h->basic_user)
             && http_equal(pass, h->basic_password);
        MHD_free(user);
        MHD_free(pass);
    }

    pthread_mutex_unlock(&h->auth_lock);
    return ok;
}

/* Compares secrets in time that does not depend on where they differ. */

static int
http_equal(const char *a, const char *b)
{
    size_t         la = strlen(a), lb = strlen(b), i;
    unsigned char  diff = (unsigned char) (la != lb);

    for (i = 0; i < la; i++) {
        diff |= (unsigned char) (a[i] ^ b[i % (lb ? lb : 1)]);
    }

    return diff == 0;
}

static char *
http_dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/*
 * The path of a request target: RFC 9112 (3.2.2) has servers accept the
 * absolute form ("http://host:port/metrics") as well as the origin form.
 * MHD has already cut the query.
 */

static const char *
http_origin_path(const char *url)
{
    const char  *p;

    if (strncasecmp(url, "http://", 7) == 0) {
        p = url + 7;

    } else if (strncasecmp(url, "https://", 8) == 0) {
        p = url + 8;

    } else {
        return url;
    }

    p = strchr(p, '/');
    return p ? p : "/";
}


/*
 * Whether an Accept-Encoding value admits gzip: "gzip" (or "x-gzip") with
 * a q-value above 0, or, when it is not named, "*" with one.
 */

int
http_accepts_gzip(const char *header)
{
    const char  *p, *end, *semi, *q, *param;
    size_t       len;
    double       gzip_q = -1, star_q = -1, value;

    for (p = header; p && *p; p = *end ? end + 1 : end) {
        end = strchr(p, ',');
        if (end == NULL) {
            end = p + strlen(p);
        }

        p += strspn(p, " \t");
        semi = memchr(p, ';', (size_t) (end - p));
        len = (size_t) ((semi ? semi : end) - p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
            len--;
        }

        value = 1;
        for (q = semi; q; q = memchr(q + 1, ';', (size_t) (end - q - 1))) {
            param = q + 1 + strspn(q + 1, " \t");
            if ((param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
                value = strtod(param + 2, NULL);
                break;
            }
        }

        if ((len == 4 && strncasecmp(p, "gzip", 4) == 0)
            || (len == 6 && strncasecmp(p, "x-gzip", 6) == 0))
        {
            gzip_q = value;

        } else if (len == 1 && p[0] == '*') {
            star_q = value;
        }
    }

    return gzip_q >= 0 ? gzip_q > 0 : star_q > 0;
}

/* Runs MHD and, every tick, the deadlines. */

static void *
http_loop(void *data)
{
    http_server_t  *h = data;
    uint64_t        next = 0, now;

    while (!atomic_load(&h->stopping)) {
        MHD_run_wait(h->daemon, HTTP_TICK_MS);

        now = http_now_ms();
        if (now >= next) {
            http_reap(h);
            next = now + HTTP_TICK_MS;
        }
    }

    return NULL;
}

/*
 * Shuts down connections past the deadline, and while many connections
 * wait without a request, those that waited past the grace: MHD then sees
 * them end and frees their slots for new clients.  Runs in the HTTP thread
 * between MHD's rounds, so every fd listed is still open.
 */

static void
http_reap(http_server_t *h)
{
    http_conn_t  *hc;
    uint64_t      now = http_now_ms();
    int           waiting = 0;

    for (hc = h->conns; hc; hc = hc->next) {
        waiting += !hc->answering && !hc->cut;
    }

    for (hc = h->conns; hc; hc = hc->next) {
        if (hc->cut) {
            continue;
        }

        if (now - hc->since_ms > HTTP_DEADLINE_MS) {
            STATS_INC(http_closed[HTTP_CLOSED_DEADLINE]);

        } else if (waiting > HTTP_BUSY_WAITING && !hc->answering
                   && now - hc->since_ms > HTTP_BUSY_GRACE_MS)
        {
            STATS_INC(http_closed[HTTP_CLOSED_BUSY]);
            waiting--;

        } else {
            continue;
        }

        hc->cut = 1;
        shutdown(hc->fd, SHUT_RDWR);
    }
}

static void
http_connection(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
    http_server_t               *h = cls;
    http_conn_t                 *hc = *socket_context;
    const union MHD_ConnectionInfo  *info;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        hc = calloc(1, sizeof(http_conn_t));
        if (hc == NULL || info == NULL) {
            free(hc);
            return;         /* not reaped: MHD's idle timeout still holds */
        }

        hc->fd = info->connect_fd;
        hc->since_ms = http_now_ms();
        hc->next = h->conns;
        if (h->conns) {
            h->conns->prev = hc;
        }
        h->conns = hc;
        *socket_context = hc;
        return;
    }

    if (hc == NULL) {
        return;
    }

    if (hc->prev) {
        hc->prev->next = hc->next;
    } else {
        h->conns = hc->next;
    }
    if (hc->next) {
        hc->next->prev = hc->prev;
    }
    free(hc);
    *socket_context = NULL;
}

/* A response went out: the next request's deadline starts now. */

static void
http_completed(void *cls, struct MHD_Connection *c, void **state,
    enum MHD_RequestTerminationCode toe)
{
    http_conn_t  *hc = http_conn_of(c);

    (void) cls;
    (void) state;
    (void) toe;

    if (hc) {
        hc->answering = 0;
        hc->since_ms = http_now_ms();
    }
}

static http_conn_t *
http_conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo  *info;

    info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

static uint64_t
http_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}
