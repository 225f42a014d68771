/*
 * The delivery layer against a local HTTP server that answers as told:
 * one table of receiver behaviours (2xx, 3xx, 4xx, 429 with every kind of
 * Retry-After, 5xx, no connection, a timeout, garbage) checked for every
 * destination's own spec (Loki, OTLP, remote-write, ClickHouse), each
 * giving its documented counters with nothing lost uncounted; the spool
 * across a restart and at its bounds (bytes and files); a never-shed
 * destination holding its producer back; the header and org-id rules.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clickhouse.h"
#include "config.h"
#include "delivery.h"
#include "destination_config.h"
#include "exporter.h"
#include "label_rules.h"
#include "otlp_metrics.h"
#include "otlp_result.h"
#include "remote_write.h"
#include "spool.h"
#include "unit.h"
#include "unit_config.h"

#define ITEMS      3
#define MAX_SEEN   64

/* --- a server that answers from a script ------------------------------ */

typedef struct {
    const char  *answer;            /* NULL: 200 */
    double       delay;             /* seconds before answering */
} step_t;

typedef struct {
    int              fd;
    int              port;
    pthread_t        thread;
    pthread_mutex_t  lock;
    const step_t    *script;
    int              n_script;
    int              requests;
    char             paths[MAX_SEEN][64];
    char             orgs[MAX_SEEN][64];
    char             bodies[MAX_SEEN][32];
    int              stop;
} server_t;

#define OK_200  "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" \
                "Connection: close\r\n\r\n"

static void *
server_main(void *data)
{
    server_t       *sv = data;
    struct pollfd   pfd;
    char            req[65536], *end, *cl, *org;
    const char     *answer;
    double          delay;
    size_t          got, want;
    ssize_t         n;
    int             c, i;

    for ( ;; ) {
        pthread_mutex_lock(&sv->lock);
        if (sv->stop) {
            pthread_mutex_unlock(&sv->lock);
            return NULL;
        }
        pthread_mutex_unlock(&sv->lock);

        pfd.fd = sv->fd;
        pfd.events = POLLIN;
        if (poll(&pfd, 1, 20) <= 0 || (c = accept(sv->fd, NULL, NULL)) < 0) {
            continue;
        }

        got = 0;
        want = 0;
        end = NULL;
        while (got < sizeof(req) - 1
               && (n = read(c, req + got, sizeof(req) - 1 - got)) > 0)
        {
            got += (size_t) n;
            req[got] = '\0';
            if (end == NULL && (end = strstr(req, "\r\n\r\n")) != NULL) {
                cl = strcasestr(req, "Content-Length:");
                want = (size_t) (end + 4 - req)
                       + (cl ? strtoul(cl + 15, NULL, 10) : 0);
            }
            if (end && got >= want) {
                break;
            }
        }

        pthread_mutex_lock(&sv->lock);
        i = sv->requests++;
        answer = i < sv->n_script ? sv->script[i].answer : NULL;
        delay = i < sv->n_script ? sv->script[i].delay : 0;
        if (i < MAX_SEEN && end) {
            sscanf(req, "POST %63s", sv->paths[i]);
            org = strcasestr(req, "X-Scope-OrgID: ");
            if (org) {
                sscanf(org + 15, "%63s", sv->orgs[i]);
            }
            snprintf(sv->bodies[i], sizeof(sv->bodies[i]), "%.*s",
                     (int) (got - (size_t) (end + 4 - req)), end + 4);
        }
        pthread_mutex_unlock(&sv->lock);

        if (delay > 0) {
            usleep((useconds_t) (delay * 1e6));
        }
        answer = answer ? answer : OK_200;
        if (write(c, answer, strlen(answer)) < 0) {
            /* the client gave up (a timeout) */
        }
        close(c);
    }
}

static void
server_start(server_t *sv, const step_t *script, int n)
{
    struct sockaddr_in  a;
    socklen_t           len = sizeof(a);
    int                 one = 1;

    memset(sv, 0, sizeof(*sv));
    sv->script = script;
    sv->n_script = n;
    pthread_mutex_init(&sv->lock, NULL);
    sv->fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(sv->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(sv->fd, (struct sockaddr *) &a, sizeof(a));
    listen(sv->fd, 16);
    getsockname(sv->fd, (struct sockaddr *) &a, &len);
    sv->port = ntohs(a.sin_port);
    pthread_create(&sv->thread, NULL, server_main, sv);
}

static void
server_stop(server_t *sv)
{
    pthread_mutex_lock(&sv->lock);
    sv->stop = 1;
    pthread_mutex_unlock(&sv->lock);
    pthread_join(sv->thread, NULL);
    close(sv->fd);
    pthread_mutex_destroy(&sv->lock);
}

/* A port nothing listens on. */
static int
closed_port(void)
{
    struct sockaddr_in  a;
    socklen_t           len = sizeof(a);
    int                 fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *) &a, sizeof(a));
    getsockname(fd, (struct sockaddr *) &a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

/* --- every destination's spec --------------------------------------- */

static config_t  cfg;

typedef struct {
    const char  *name;
    void       (*spec)(destination_spec_t *spec);
} destination_kind_t;

static void
loki_spec(destination_spec_t *spec)
{
    exporter_destination(&cfg.exporter, EXPORTER_LOKI, spec);
}

static void
otlp_spec(destination_spec_t *spec)
{
    exporter_destination(&cfg.exporter, EXPORTER_OTLP, spec);
}

static void
rw_spec(destination_spec_t *spec)
{
    remote_write_destination(&cfg.remote_write, spec);
}

static void
ch_spec(destination_spec_t *spec)
{
    clickhouse_destination(&cfg.clickhouse, "http://x/", spec);
}

static void
otlp_logs_spec(destination_spec_t *spec)
{
    exporter_destination(&cfg.exporter, EXPORTER_OTLP_LOGS, spec);
}

static void
otlp_metrics_spec(destination_spec_t *spec)
{
    otlp_metrics_destination(&cfg.otlp_metrics, spec);
}

static const destination_kind_t  kinds[] = {
    { "loki", loki_spec }, { "otlp", otlp_spec },
    { "remote_write", rw_spec }, { "clickhouse", ch_spec },
    { "otlp_logs", otlp_logs_spec }, { "otlp_metrics", otlp_metrics_spec }
};

static double
now_mono(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static payload_t *
payload(const char *text, const char *org)
{
    payload_t  *p = payload_new(strlen(text), ITEMS, org);

    memcpy(p->data, text, strlen(text));
    p->len = strlen(text);
    return p;
}

static uint64_t
accounted(const destination_stats_t *st)
{
    uint64_t  n = st->items_sent;
    int       i;

    for (i = 0; i < DROP_REASONS; i++) {
        n += st->items_dropped[i];
    }
    return n;
}

/* Waits until want items are sent or dropped (or seconds pass). */
static void
wait_accounted(destination_t *t, uint64_t want, double seconds,
    destination_stats_t *st)
{
    double  until = now_mono() + seconds;

    do {
        delivery_stats(t, st);
        if (accounted(st) >= want) {
            return;
        }
        usleep(10000);
    } while (now_mono() < until);
}

/* --- the table -------------------------------------------------------- */

typedef struct {
    const char  *name;
    step_t       first;             /* the first answer; then 200s */
    int          refused;           /* no server at all */
    long         timeout_ms;
    int          sent;              /* 1: items end up sent */
    uint64_t     retried;           /* requests retried (at least) */
    uint64_t     rejected;
    uint64_t     redirects;
    double       delay_min, delay_max;  /* the wait before the retry */
} behaviour_t;

static char  http_date[160];

static const behaviour_t  behaviours[] = {
    { "200", { OK_200, 0 }, 0, 0, 1, 0, 0, 0, 0, 0 },
    { "204", { "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", 0 },
      0, 0, 1, 0, 0, 0, 0, 0 },
    { "301 kept, not followed",
      { "HTTP/1.1 301 Moved\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n", 0 }, 0, 0, 1, 1, 0, 1, 0.025, 0.05 },
    { "307 kept, not followed",
      { "HTTP/1.1 307 Temporary\r\nLocation: http://other.invalid/\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n", 0 },
      0, 0, 1, 1, 0, 1, 0.025, 0.05 },
    { "400 rejected",
      { "HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\n"
        "Connection: close\r\n\r\nbad payload", 0 }, 0, 0, 0, 0, 1, 0, 0, 0 },
    { "401 rejected",
      { "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n", 0 }, 0, 0, 0, 0, 1, 0, 0, 0 },
    { "413 rejected",
      { "HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n", 0 }, 0, 0, 0, 0, 1, 0, 0, 0 },
    { "429 Retry-After seconds",
      { "HTTP/1.1 429 Slow Down\r\nRetry-After: 1\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n", 0 }, 0, 0, 1, 1, 0, 0, 1, 1 },
    { "429 Retry-After HTTP date", { http_date, 0 }, 0, 0, 1, 1, 0, 0,
      0.0, 2.0 },
    { "429 Retry-After absurd: capped",
      { "HTTP/1.1 429 Slow Down\r\nRetry-After: 99999999999\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n", 0 },
      0, 0, 1, 1, 0, 0, 1.5, 1.5 },
    { "429 Retry-After garbage: backoff",
      { "HTTP/1.1 429 Slow Down\r\nRetry-After: soon\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n", 0 },
      0, 0, 1, 1, 0, 0, 0.025, 0.05 },
    { "500", { "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n"
               "Connection: close\r\n\r\n", 0 }, 0, 0, 1, 1, 0, 0,
      0.025, 0.05 },
    { "503", { "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n"
               "Connection: close\r\n\r\n", 0 }, 0, 0, 1, 1, 0, 0,
      0.025, 0.05 },
    { "slow: timeout", { OK_200, 1.0 }, 0, 300, 1, 1, 0, 0, 0.025, 1.5 },
    { "garbage answer", { "SPAM SPAM SPAM\r\n\r\n", 0 }, 0, 0, 1, 1, 0, 0,
      0.025, 0.05 },
    { "connection refused", { NULL, 0 }, 1, 0, 0, 1, 0, 0, 0.025, 1.5 },
};

/* A kind's spec sending to url, its settings in dc, with no spool. */
static void
memory_spec(const destination_kind_t *k, const char *url,
    destination_spec_t *spec, destination_config_t *dc)
{
    k->spec(spec);
    *dc = *spec->cfg;
    dc->spool_dir = NULL;
    dc->spool_bytes = 0;
    spec->cfg = dc;
    spec->url = url;
    spec->off = 0;
    spec->backoff_first = 0.05;
}

static void
check_behaviour(const destination_kind_t *k, const behaviour_t *b)
{
    destination_spec_t    spec;
    destination_config_t  dc;
    destination_stats_t   st;
    delivery_t           *d = delivery_new(1);
    destination_t        *t;
    server_t              sv;
    char                  url[128], name[256], err[256];
    int                   i, followed = 0;

    server_start(&sv, &b->first, 1);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/push",
             b->refused ? closed_port() : sv.port);

    memory_spec(k, url, &spec, &dc);
    dc.timeout_ms = b->timeout_ms ? b->timeout_ms : 2000;
    spec.backoff_max = 1.5;

    t = delivery_add(d, &spec, err, sizeof(err));
    snprintf(name, sizeof(name), "%s, %s: added", k->name, b->name);
    CHECK(t != NULL, name);
    if (t == NULL) {
        delivery_free(d);
        server_stop(&sv);
        return;
    }

    delivery_submit(t, payload("payload-1", "tenant-a"));
    if (b->refused) {
        usleep(300000);
        delivery_stats(t, &st);
    } else {
        wait_accounted(t, ITEMS, 5, &st);
    }

    snprintf(name, sizeof(name), "%s, %s: %s", k->name, b->name,
             b->sent ? "sent" : b->refused ? "kept while refused"
                                           : "dropped as rejected");
    CHECK(b->refused ? st.items_sent == 0 && accounted(&st) == 0
          : b->sent ? st.items_sent == ITEMS && accounted(&st) == ITEMS
          : st.items_dropped[DROP_REJECTED] == ITEMS && st.items_sent == 0,
          name);

    snprintf(name, sizeof(name), "%s, %s: requests ok %llu retried %llu "
             "rejected %llu redirects %llu", k->name, b->name,
             (unsigned long long) st.requests_ok,
             (unsigned long long) st.requests_retried,
             (unsigned long long) st.requests_rejected,
             (unsigned long long) st.redirects);
    CHECK(st.requests_ok == (uint64_t) b->sent
          && (b->refused || b->timeout_ms ? st.requests_retried >= 1
                                          : st.requests_retried == b->retried)
          && st.retries == st.requests_retried
          && st.requests_rejected == b->rejected
          && st.redirects == b->redirects, name);

    if (b->retried) {
        snprintf(name, sizeof(name), "%s, %s: waited %.3fs before the retry",
                 k->name, b->name, st.last_delay);
        CHECK(st.last_delay >= b->delay_min - 1e-9
              && st.last_delay <= b->delay_max + 1e-9, name);
    }

    pthread_mutex_lock(&sv.lock);
    for (i = 0; i < sv.requests && i < MAX_SEEN; i++) {
        followed |= strcmp(sv.paths[i], "/push") != 0;
    }
    snprintf(name, sizeof(name), "%s, %s: every request to the URL, with "
             "the org", k->name, b->name);
    CHECK(!followed && (b->refused || strcmp(sv.orgs[0], "tenant-a") == 0),
          name);
    pthread_mutex_unlock(&sv.lock);

    delivery_stop(d);
    delivery_stats(t, &st);
    snprintf(name, sizeof(name), "%s, %s: every item counted after the stop",
             k->name, b->name);
    CHECK(accounted(&st) == ITEMS
          && (!b->refused || st.items_dropped[DROP_SHUTDOWN] == ITEMS),
          name);

    delivery_free(d);
    server_stop(&sv);
}

static void
test_behaviours(void)
{
    time_t     when = time(NULL) + 2;
    struct tm  tm;
    char       date[64];
    size_t     k, b;

    gmtime_r(&when, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(http_date, sizeof(http_date), "HTTP/1.1 429 Slow Down\r\n"
             "Retry-After: %s\r\nContent-Length: 0\r\n"
             "Connection: close\r\n\r\n", date);

    for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        for (b = 0; b < sizeof(behaviours) / sizeof(behaviours[0]); b++) {
            check_behaviour(&kinds[k], &behaviours[b]);
        }
    }
}


/* What a hostile receiver says reaches the log printable: no escapes. */

static void
test_log_printable(void)
{
    static const step_t   evil = {
        "HTTP/1.1 301 Moved\r\nLocation: /x\x1b]0;owned\x07\x1b[2J\r\n"
        "Content-Length: 9\r\nConnection: close\r\n\r\n\x1b[31mred\x1b[0m",
        0 };
    destination_spec_t    spec;
    destination_config_t  dc;
    destination_stats_t   st;
    delivery_t           *d = delivery_new(1);
    destination_t        *t;
    server_t              sv;
    char                  url[128], err[256], log[4096];
    FILE                 *f = tmpfile();
    int                   saved;
    size_t                n;

    server_start(&sv, &evil, 1);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/push", sv.port);
    memory_spec(&kinds[0], url, &spec, &dc);

    fflush(stderr);
    saved = dup(2);
    dup2(fileno(f), 2);

    t = delivery_add(d, &spec, err, sizeof(err));
    delivery_submit(t, payload("payload-1", NULL));
    wait_accounted(t, ITEMS, 5, &st);
    delivery_stop(d);
    delivery_free(d);
    server_stop(&sv);

    fflush(stderr);
    dup2(saved, 2);
    close(saved);

    rewind(f);
    n = fread(log, 1, sizeof(log) - 1, f);
    fclose(f);
    log[n] = '\0';

    CHECK(strstr(log, "answers HTTP 301 to /x.]0;owned..[2J") != NULL,
          "log: the receiver's Location is shown");
    CHECK(strchr(log, '\x1b') == NULL && strchr(log, '\x07') == NULL,
          "log: no escape sequence of the receiver's reaches the log");
}

/* --- the spool --------------------------------------------------------- */

/*
 * A spool directory someone else may write to is refused; in one that is
 * ours, names that lead elsewhere (symbolic or hard links, planted later)
 * are never written through, read or sent.
 */

static void
test_spool_links(void)
{
    char         dir[64], path[256], victim[128], buf[64], err[512];
    spool_t      s;
    payload_t   *p, *loaded;
    struct stat  st;
    FILE        *f;
    size_t       n;

    snprintf(dir, sizeof(dir), "/tmp/obs-unit-links-XXXXXX");
    CHECK(mkdtemp(dir) != NULL, "links: a directory");

    chmod(dir, 0777);
    CHECK(spool_open(&s, dir, 1 << 20, 100, err, sizeof(err)) != 0
          && strstr(err, "writable by others") != NULL,
          "links: a spool directory others may write to is refused");
    chmod(dir, 0700);

    if (geteuid() == 0) {
        CHECK(chown(dir, 65534, (gid_t) -1) == 0, "links: chown");
        CHECK(spool_open(&s, dir, 1 << 20, 100, err, sizeof(err)) != 0
              && strstr(err, "the directory of uid 65534") != NULL,
              "links: a spool directory of another user is refused");
        CHECK(chown(dir, 0, (gid_t) -1) == 0, "links: chown back");
    }

    /* the victims: a file the sidecar may write, one it may read */
    snprintf(victim, sizeof(victim), "%s.victim", dir);
    f = fopen(victim, "w");
    fputs("precious\n", f);
    fclose(f);

    /* an old spool file's name, and one of this format, linked to it */
    snprintf(path, sizeof(path), "%s/00000000000000000001-1.jsonl", dir);
    CHECK(symlink(victim, path) == 0, "links: a symbolic link planted");
    snprintf(path, sizeof(path), "%s/00000000000000000002.payload", dir);
    CHECK(link(victim, path) == 0, "links: a hard link planted");

    CHECK(spool_open(&s, dir, 1 << 20, 100, err, sizeof(err)) == 0,
          "links: a directory of ours, mode 0700");
    loaded = spool_load(&s);
    CHECK(loaded == NULL && s.files == 0,
          "links: neither link is taken for a spool file");

    /* the next file's temporary name leads to the victim */
    snprintf(path, sizeof(path), "%s/%020llu.payload.tmp", dir,
             (unsigned long long) s.next_seq);
    CHECK(symlink(victim, path) == 0, "links: a link at the next name");

    p = payload_new(16, 1, NULL);
    memcpy(p->data, "payload bytes\n", 14);
    p->len = 14;
    CHECK(spool_write(&s, p, 0, 0) == 0, "links: the payload is spooled");

    f = fopen(victim, "r");
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    CHECK(strcmp(buf, "precious\n") == 0,
          "links: the file a planted link names is not written");

    snprintf(path, sizeof(path), "%s/%020llu.payload", dir,
             (unsigned long long) p->seq);
    CHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode)
          && (st.st_mode & 077) == 0,
          "links: the spool file is a regular file only its owner reads");

    /* swapped for a link after it was written: not read */
    CHECK(unlink(path) == 0 && symlink(victim, path) == 0,
          "links: the spool file swapped for a link");
    CHECK(spool_read(&s, p) != 0, "links: a spool file that is a link is "
          "not read");

    spool_close(&s);
    payload_free(p);
    unlink(victim);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    CHECK(system(path) == 0, "links: removed");
}



static char  spool_dir[64];

static destination_t *
spooled(delivery_t *d, const destination_kind_t *k, const char *url,
    size_t queue_bytes, size_t spool_bytes, size_t spool_files)
{
    destination_spec_t    spec;
    destination_config_t  dc;
    char                  err[256];

    k->spec(&spec);
    dc = *spec.cfg;
    dc.spool_dir = spool_dir;
    dc.spool_bytes = spool_bytes;
    dc.spool_files = spool_files;
    dc.queue_bytes = queue_bytes;
    dc.timeout_ms = 2000;
    spec.cfg = &dc;
    spec.url = url;
    spec.off = 0;
    spec.backoff_first = 0.05;
    spec.backoff_max = 0.1;
    return delivery_add(d, &spec, err, sizeof(err));
}

static void
test_spool(const destination_kind_t *k)
{
    delivery_t           *d;
    destination_t        *t;
    destination_stats_t   st;
    server_t              sv;
    char                  down[128], up[128], name[256], cmd[128];
    int                   i, in_order = 1;

    snprintf(spool_dir, sizeof(spool_dir), "/tmp/obs-unit-spool-XXXXXX");
    if (mkdtemp(spool_dir) == NULL) {
        return;
    }
    snprintf(down, sizeof(down), "http://127.0.0.1:%d/", closed_port());

    /* receiver down: everything is kept on disk at the stop */
    d = delivery_new(0.2);
    t = spooled(d, k, down, 1 << 20, 1 << 20, 100);
    delivery_submit(t, payload("payload-1", ""));
    delivery_submit(t, payload("payload-2", "t2"));
    delivery_submit(t, payload("payload-3", ""));
    usleep(200000);
    delivery_stop(d);
    delivery_stats(t, &st);
    snprintf(name, sizeof(name), "%s: three payloads spooled at the stop "
             "(%llu files)", k->name, (unsigned long long) st.spool_files);
    CHECK(st.spool_files == 3 && accounted(&st) == 0, name);
    delivery_free(d);

    /* after a restart they go first, in order, with their org */
    server_start(&sv, NULL, 0);
    snprintf(up, sizeof(up), "http://127.0.0.1:%d/", sv.port);
    d = delivery_new(1);
    t = spooled(d, k, up, 1 << 20, 1 << 20, 100);
    wait_accounted(t, 3 * ITEMS, 5, &st);
    pthread_mutex_lock(&sv.lock);
    for (i = 0; i < 3; i++) {
        char  want[32];

        snprintf(want, sizeof(want), "payload-%d", i + 1);
        in_order &= i < sv.requests && strcmp(sv.bodies[i], want) == 0;
    }
    in_order &= strcmp(sv.orgs[1], "t2") == 0 && sv.orgs[0][0] == '\0';
    pthread_mutex_unlock(&sv.lock);
    snprintf(name, sizeof(name), "%s: the spool survives a restart, sent "
             "in order", k->name);
    CHECK(st.items_sent == 3 * ITEMS && st.spool_files == 0 && in_order,
          name);
    delivery_stop(d);
    delivery_free(d);
    server_stop(&sv);

    /* a ClickHouse spool file of earlier releases (rows alone, their
       count in the name) is sent first too */
    if (strcmp(k->name, "clickhouse") == 0) {
        FILE  *f;
        char   old[128];

        snprintf(old, sizeof(old), "%s/00000000000000000007-5.jsonl",
                 spool_dir);
        f = fopen(old, "w");
        fputs("{\"old\":1}\n", f);
        fclose(f);
        server_start(&sv, NULL, 0);
        snprintf(up, sizeof(up), "http://127.0.0.1:%d/", sv.port);
        d = delivery_new(1);
        t = spooled(d, k, up, 1 << 20, 1 << 20, 100);
        wait_accounted(t, 5, 5, &st);
        pthread_mutex_lock(&sv.lock);
        CHECK(st.items_sent == 5 && sv.requests == 1
              && strcmp(sv.bodies[0], "{\"old\":1}\n") == 0
              && access(old, F_OK) != 0,
              "clickhouse: an old spool file is sent and removed");
        pthread_mutex_unlock(&sv.lock);
        delivery_stop(d);
        delivery_free(d);
        server_stop(&sv);
    }

    /* bounded in files: two files, the rest dropped and counted */
    d = delivery_new(0.2);
    t = spooled(d, k, down, 1, 1 << 20, 2);
    for (i = 0; i < 5; i++) {
        delivery_submit(t, payload("payload-x", ""));
    }
    usleep(300000);
    delivery_stop(d);
    delivery_stats(t, &st);
    snprintf(name, sizeof(name), "%s: at most 2 spool files (%llu), the "
             "rest counted spool_full (%llu)", k->name,
             (unsigned long long) st.spool_files,
             (unsigned long long) st.items_dropped[DROP_SPOOL_FULL]);
    CHECK(st.spool_files == 2
          && st.items_dropped[DROP_SPOOL_FULL] == 3 * ITEMS
          && accounted(&st) == 3 * ITEMS, name);
    delivery_free(d);

    /* bounded in bytes: one file of a 100-byte payload fits in 300, not
       two (a file's header may take up to ORG_ID_MAX + 24) */
    snprintf(cmd, sizeof(cmd), "rm -rf %s/*", spool_dir);
    CHECK(system(cmd) == 0, "spool emptied");
    d = delivery_new(0.2);
    t = spooled(d, k, down, 1, 300, 100);
    for (i = 0; i < 3; i++) {
        delivery_submit(t, payload("payload-y-0123456789012345678901234567"
                                   "890123456789012345678901234567890123456"
                                   "7890123456789012345", ""));
    }
    usleep(300000);
    delivery_stop(d);
    delivery_stats(t, &st);
    snprintf(name, sizeof(name), "%s: spool bounded in bytes (%llu bytes, "
             "%llu files)", k->name, (unsigned long long) st.spool_bytes,
             (unsigned long long) st.spool_files);
    CHECK(st.spool_files == 1 && st.spool_bytes <= 300
          && st.items_dropped[DROP_SPOOL_FULL] == 2 * ITEMS, name);
    delivery_free(d);

    snprintf(cmd, sizeof(cmd), "rm -rf %s", spool_dir);
    CHECK(system(cmd) == 0, "spool removed");
}

/* --- never shed --------------------------------------------------------- */

typedef struct {
    destination_t  *t;
    int             submitted;
    pthread_mutex_t lock;
} producer_t;

static void *
producer(void *data)
{
    producer_t  *pr = data;
    int          i;

    for (i = 0; i < 6; i++) {
        delivery_submit(pr->t, payload("12345678", ""));
        pthread_mutex_lock(&pr->lock);
        pr->submitted++;
        pthread_mutex_unlock(&pr->lock);
    }
    return NULL;
}

static void
test_never_shed(void)
{
    destination_spec_t    spec;
    destination_config_t  dc;
    destination_stats_t   st;
    delivery_t           *d = delivery_new(0.2);
    destination_t        *t;
    producer_t            pr;
    pthread_t             th;
    char                  url[128], err[256];
    int                   submitted;

    loki_spec(&spec);
    dc = *spec.cfg;
    dc.queue_bytes = 20;            /* two payloads of 8 bytes */
    spec.cfg = &dc;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", closed_port());
    spec.url = url;
    spec.off = 0;
    spec.overflow = OVERFLOW_BLOCK;
    spec.backoff_first = 0.05;
    spec.backoff_max = 0.1;
    t = delivery_add(d, &spec, err, sizeof(err));

    memset(&pr, 0, sizeof(pr));
    pr.t = t;
    pthread_mutex_init(&pr.lock, NULL);
    pthread_create(&th, NULL, producer, &pr);
    usleep(500000);

    pthread_mutex_lock(&pr.lock);
    submitted = pr.submitted;
    pthread_mutex_unlock(&pr.lock);
    delivery_stats(t, &st);
    CHECK(submitted < 6 && accounted(&st) == 0,
          "never shed: a full queue holds the producer back, drops nothing");

    delivery_stop(d);
    pthread_join(th, NULL);
    delivery_stats(t, &st);
    CHECK(accounted(&st) == 6 * ITEMS
          && st.items_dropped[DROP_SHUTDOWN] == 6 * ITEMS,
          "never shed: at the stop what is held is counted");
    delivery_free(d);
    pthread_mutex_destroy(&pr.lock);
}

/* --- rules ---------------------------------------------------------------- */

static void
test_rules(void)
{
    static const struct { const char *org; int ok; } orgs[] = {
        { "tenant_001", 1 }, { "a.b-c_d!*'()", 1 }, { "", 0 }, { ".", 0 },
        { "..", 0 }, { "...", 1 }, { "a/b", 0 }, { "a b", 0 },
        { "a\r\nX-Evil: 1", 0 }, { "t\xc3\xa9", 0 }, { "a:b", 0 },
    };
    destination_config_t  dc;
    char                  long_org[ORG_ID_MAX + 2], err[256];
    double                s;
    size_t                i;
    int                   rc;

    for (i = 0; i < sizeof(orgs) / sizeof(orgs[0]); i++) {
        CHECK(org_id_valid(orgs[i].org) == orgs[i].ok, orgs[i].org);
    }
    memset(long_org, 'a', sizeof(long_org));
    long_org[ORG_ID_MAX] = '\0';
    CHECK(org_id_valid(long_org), "150 characters");
    long_org[ORG_ID_MAX] = 'a';
    long_org[ORG_ID_MAX + 1] = '\0';
    CHECK(!org_id_valid(long_org), "151 characters");

    CHECK(http_retry_after("Retry-After: 7\r\n", 16, &s) && s == 7,
          "Retry-After seconds");
    CHECK(!http_retry_after("Retry-After: -7\r\n", 17, &s),
          "Retry-After negative: not one");
    CHECK(!http_retry_after("Retry-After: \r\n", 15, &s),
          "Retry-After empty: not one");
    CHECK(http_retry_after("retry-after: Wed, 21 Oct 2015 07:28:00 GMT\r\n",
                           44, &s) && s < 0, "Retry-After: a past date");

    memset(&dc, 0, sizeof(dc));
    rc = destination_add_header_list(&dc, "api-key=a%20b, X-Tenant = t1 ,",
                                     "H", err, sizeof(err));
    CHECK(rc == 0 && dc.n_headers == 2
          && strcmp(dc.headers[0], "api-key: a b") == 0
          && strcmp(dc.headers[1], "X-Tenant: t1") == 0,
          "OTLP headers decoded, whitespace trimmed");
    destination_config_free(&dc);

    {
        static const char *const  bad[] = {
            "bad key=1", "a:b=1", "k=%ZZ", "k=%0", "k=%00", "k=a%0Db",
            "k=a%0Ab", "=v", "k", "k\xc3\xa9=1"
        };
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            memset(&dc, 0, sizeof(dc));
            rc = destination_add_header_list(&dc, bad[i], "H", err,
                                             sizeof(err));
            CHECK(rc == -1 && dc.n_headers == 0, bad[i]);
            destination_config_free(&dc);
        }
    }

    CHECK(destination_header_ok("X-A", 3, "v\tw", 3), "a tab is fine");
    CHECK(!destination_header_ok("X-A", 3, "v\0w", 3), "NUL is not");
    CHECK(!destination_header_ok("X A", 3, "v", 1), "a space in a name");
    CHECK(!destination_header_ok("", 0, "v", 1), "an empty name");
}

/* --- OTLP answers, read as the OTLP specification says ----------------- */

typedef struct {
    const char  *name;
    int          grpc_status;       /* -1: none */
    long         http_status;
    const char  *details;           /* grpc-status-details-bin, or NULL */
    const char  *body;              /* answer bytes (length body_len) */
    size_t       body_len;
    http_verdict_t  verdict;
    double       retry_after;       /* < 0: none */
    size_t       rejected;
} otlp_answer_t;

/*
 * google.rpc.Status {code 8, details [Any {type_url RetryInfo, value
 * RetryInfo {retry_delay {seconds 2, nanos 500000000}}}]}, written here
 * byte by byte from the public definitions, base64 without padding.
 */
#define RETRY_2_5  "CAgaNgoodHlwZS5nb29nbGVhcGlzLmNvbS9nb29nbGUucnBjLlJldHJ5SW5mbxIKCggIAhCAyrXuAQ"
/* the same with another message type in details: no RetryInfo */
#define NOT_RETRY  "CAgaEgoQdHlwZS5leGFtcGxlL0Zvbw"

static const otlp_answer_t  otlp_answers[] = {
    { "gRPC OK", 0, 200, NULL, "", 0, HTTP_SENT, -1, 0 },
    { "gRPC OK, partial success 3 of 5",
      0, 200, NULL, "\0\0\0\0\x0b\x0a\x09\x08\x03\x12\x05stale", 16,
      HTTP_SENT, -1, 3 },
    { "gRPC OK, partial success cut short", 0, 200, NULL,
      "\0\0\0\0\x0b\x0a\x09\x08\x03\x12\x05st", 13, HTTP_SENT, -1, 3 },
    { "gRPC CANCELLED", 1, 200, NULL, "", 0, HTTP_RETRY, -1, 0 },
    { "gRPC UNKNOWN", 2, 200, NULL, "", 0, HTTP_REJECTED, -1, 0 },
    { "gRPC INVALID_ARGUMENT", 3, 200, NULL, "", 0, HTTP_REJECTED, -1, 0 },
    { "gRPC DEADLINE_EXCEEDED", 4, 200, NULL, "", 0, HTTP_RETRY, -1, 0 },
    { "gRPC PERMISSION_DENIED", 7, 200, NULL, "", 0, HTTP_REJECTED, -1, 0 },
    { "gRPC RESOURCE_EXHAUSTED, no RetryInfo", 8, 200, NULL, "", 0,
      HTTP_REJECTED, -1, 0 },
    { "gRPC RESOURCE_EXHAUSTED, other details", 8, 200, NOT_RETRY, "", 0,
      HTTP_REJECTED, -1, 0 },
    { "gRPC RESOURCE_EXHAUSTED, RetryInfo 2.5s", 8, 200, RETRY_2_5, "", 0,
      HTTP_RETRY, 2.5, 0 },
    { "gRPC UNAVAILABLE, RetryInfo 2.5s", 14, 200, RETRY_2_5, "", 0,
      HTTP_RETRY, 2.5, 0 },
    { "gRPC ABORTED", 10, 200, NULL, "", 0, HTTP_RETRY, -1, 0 },
    { "gRPC OUT_OF_RANGE", 11, 200, NULL, "", 0, HTTP_RETRY, -1, 0 },
    { "gRPC UNIMPLEMENTED", 12, 200, NULL, "", 0, HTTP_REJECTED, -1, 0 },
    { "gRPC INTERNAL", 13, 200, NULL, "", 0, HTTP_REJECTED, -1, 0 },
    { "gRPC UNAVAILABLE", 14, 200, NULL, "", 0, HTTP_RETRY, -1, 0 },
    { "gRPC DATA_LOSS", 15, 200, NULL, "", 0, HTTP_RETRY, -1, 0 },
    { "gRPC UNAUTHENTICATED", 16, 200, NULL, "", 0, HTTP_REJECTED, -1, 0 },
    { "no grpc-status, HTTP 503", -1, 503, NULL, "", 0, HTTP_RETRY, -1, 0 },
    { "no grpc-status, HTTP 429", -1, 429, NULL, "", 0, HTTP_RETRY, -1, 0 },
    { "no grpc-status, HTTP 200", -1, 200, NULL, "", 0, HTTP_REJECTED, -1,
      0 },
    { "no grpc-status, HTTP 404", -1, 404, NULL, "", 0, HTTP_REJECTED, -1,
      0 },
    { "no grpc-status, HTTP 301", -1, 301, NULL, "", 0, HTTP_REDIRECTED, -1,
      0 },
};

static void
test_otlp_answers(void)
{
    http_response_t  r;
    http_verdict_t   v;
    char             name[256];
    size_t           i;

    for (i = 0; i < sizeof(otlp_answers) / sizeof(otlp_answers[0]); i++) {
        const otlp_answer_t  *a = &otlp_answers[i];

        memset(&r, 0, sizeof(r));
        r.answered = 1;
        r.status = a->http_status;
        r.retry_after = -1;
        r.grpc_status = a->grpc_status;
        if (a->details) {
            snprintf(r.grpc_details, sizeof(r.grpc_details), "%s",
                     a->details);
        }
        memcpy(r.body, a->body, a->body_len);
        r.body_len = a->body_len;

        v = otlp_grpc_classify(&r);
        snprintf(name, sizeof(name), "%s: verdict %d, retry after %g, "
                 "%zu rejected", a->name, v, r.retry_after, r.rejected);
        CHECK(v == a->verdict && r.rejected == a->rejected
              && (a->retry_after < 0 ? r.retry_after < 0
                  : fabs(r.retry_after - a->retry_after) < 1e-9), name);
    }

    /* OTLP/HTTP: the layer's rules, and a 200's partial success */
    memset(&r, 0, sizeof(r));
    r.answered = 1;
    r.status = 200;
    r.grpc_status = -1;
    memcpy(r.body, "\x0a\x0a\x08\x07\x12\x06" "dup id", 12);
    r.body_len = 12;
    CHECK(otlp_http_classify(&r) == HTTP_SENT && r.rejected == 7
          && strcmp(r.rejected_why, "dup id") == 0,
          "OTLP/HTTP 200 with partial_success: 7 rejected, its message");
    r.status = 400;
    r.rejected = 0;
    CHECK(otlp_http_classify(&r) == HTTP_REJECTED && r.rejected == 0,
          "OTLP/HTTP 400 rejected");
    r.status = 200;
    memcpy(r.body, "<html>", 6);
    r.body_len = 6;
    CHECK(otlp_http_classify(&r) == HTTP_SENT && r.rejected == 0,
          "OTLP/HTTP 200 with a body that is no response: sent");
    r.answered = 0;
    CHECK(otlp_grpc_classify(&r) == HTTP_RETRY, "gRPC no answer: retried");
}

int
main(void)
{
    char    err[512];
    size_t  k;

    CHECK(unit_config_load("{\"loki\": {\"url\": \"http://l/\"}, "
                           "\"otlp\": {\"url\": \"http://o/\"}, "
                           "\"remote_write\": {\"url\": \"http://r/\"}, "
                           "\"clickhouse\": {\"url\": \"http://c/\"}}",
                           &cfg, err, sizeof(err)) == CONFIG_OK,
          "every destination configured");

    test_rules();
    test_otlp_answers();
    test_behaviours();
    for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        test_spool(&kinds[k]);
    }
    test_spool_links();
    test_log_printable();
    test_never_shed();

    config_free(&cfg);
    return unit_report("test_delivery");
}
