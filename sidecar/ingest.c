/* Ingest sockets and datagram decoding.  See ingest.h. */

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "columns.h"
#include "hash.h"
#include "ingest.h"
#include "net.h"
#include "stats.h"

/* the module sends at most 60000 bytes; anything larger is not a record */
#define INGEST_MAX_DATAGRAM   65536
#define INGEST_ARENA_SIZE     (8 * 1024 * 1024)
#define INGEST_WORKERS        1024
/* datagrams taken per wake-up before the main loop looks at signals */
#define INGEST_DRAIN_BATCH    256
/* how long a stopping sidecar keeps reading what is queued */
#define INGEST_STOP_SECONDS   2
/* 1: records in rows; 2: also in columns */
#define INGEST_SCHEMA_MIN     1
#define INGEST_SCHEMA_MAX     2

typedef struct {
    uint64_t  key;              /* host, pid and start of one nginx worker */
    time_t    last_seen;
    uint64_t  next_sequence;
    uint64_t  dropped[MODULE_DROP_REASONS];
} worker_t;

typedef struct {
    unsigned char  *base;
    size_t          used;
    size_t          size;
} arena_t;

struct ingest {
    int               fds[CONFIG_MAX_INGEST];
    char             *unix_paths[CONFIG_MAX_INGEST];
    int               n;
    aggregator_t     *agg;
    ingest_datagram_pt hook;
    void             *hook_data;
    unsigned char    *datagram;
    arena_t           arena;
    ProtobufCAllocator allocator;
    worker_t          workers[INGEST_WORKERS];
};

static int ingest_bind(const char *addr, char **unix_path, char *err,
    size_t errlen);
static void *arena_alloc(void *data, size_t size);
static void arena_free(void *data, void *p);
static void ingest_account(ingest_t *in, const Obs__V1__BatchHeader *h,
    time_t now);
static void ingest_record(ingest_t *in, const Obs__V1__Record *r,
    time_t now, double now_f);

ingest_t *
ingest_open(const config_t *cfg, aggregator_t *agg, char *err, size_t errlen)
{
    ingest_t  *in;
    int        i;

    in = calloc(1, sizeof(ingest_t));
    if (in == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    in->agg = agg;
    in->datagram = malloc(INGEST_MAX_DATAGRAM + 1);
    in->arena.base = malloc(INGEST_ARENA_SIZE);
    in->arena.size = INGEST_ARENA_SIZE;
    in->allocator.alloc = arena_alloc;
    in->allocator.free = arena_free;
    in->allocator.allocator_data = &in->arena;

    if (in->datagram == NULL || in->arena.base == NULL) {
        snprintf(err, errlen, "out of memory");
        ingest_close(in);
        return NULL;
    }

    for (i = 0; i < cfg->n_ingest; i++) {
        in->fds[i] = ingest_bind(cfg->ingest[i], &in->unix_paths[i], err,
                                 errlen);
        if (in->fds[i] < 0) {
            in->n = i;
            ingest_close(in);
            return NULL;
        }
    }

    in->n = cfg->n_ingest;
    return in;
}

void
ingest_set_datagram_hook(ingest_t *in, ingest_datagram_pt hook, void *data)
{
    in->hook = hook;
    in->hook_data = data;
}

int
ingest_pollfds(ingest_t *in, struct pollfd *fds, int max)
{
    int  i;

    for (i = 0; i < in->n && i < max; i++) {
        fds[i].fd = in->fds[i];
        fds[i].events = POLLIN;
        fds[i].revents = 0;
    }

    return i;
}

int
ingest_drain(ingest_t *in, int i)
{
    ssize_t  n;
    int      k;

    /* bounded, so that the main loop sees signals however busy ingest is */
    for (k = 0; k < INGEST_DRAIN_BATCH; k++) {
        n = recv(in->fds[i], in->datagram, INGEST_MAX_DATAGRAM + 1,
                 MSG_DONTWAIT | MSG_TRUNC);

        if (n < 0) {
            return 0;       /* EAGAIN, or a transient error: poll again */
        }

        if (n > INGEST_MAX_DATAGRAM) {
            STATS_INC(datagrams_received);
            STATS_INC(decode_errors[DECODE_OVERSIZE]);
            continue;
        }

        ingest_datagram(in, in->datagram, (size_t) n);
    }

    return 1;
}

void
ingest_datagram(ingest_t *in, const uint8_t *data, size_t len)
{
    Obs__V1__Batch            *batch;
    Obs__V1__Record            r;
    Obs__V1__UpstreamAttempt   attempts[COLUMNS_MAX_ATTEMPTS];
    Obs__V1__UpstreamAttempt  *ptrs[COLUMNS_MAX_ATTEMPTS];
    columns_reader_t           rd;
    struct timespec            ts;
    double                     now_f;
    size_t                     i, n;

    STATS_INC(datagrams_received);

    if (len > INGEST_MAX_DATAGRAM) {
        STATS_INC(decode_errors[DECODE_OVERSIZE]);
        return;
    }

    in->arena.used = 0;
    batch = obs__v1__batch__unpack(&in->allocator, len, data);

    if (batch == NULL) {
        STATS_INC(decode_errors[DECODE_MALFORMED]);
        return;
    }

    if (batch->header == NULL) {
        STATS_INC(decode_errors[DECODE_NO_HEADER]);
        return;
    }

    if (batch->header->schema_version < INGEST_SCHEMA_MIN
        || batch->header->schema_version > INGEST_SCHEMA_MAX)
    {
        STATS_INC(decode_errors[DECODE_SCHEMA]);
        return;
    }

    if (batch->columns && !columns_valid(batch->columns)) {
        STATS_INC(decode_errors[DECODE_MALFORMED]);
        return;
    }

    clock_gettime(CLOCK_REALTIME, &ts);
    now_f = (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;

    ingest_account(in, batch->header, ts.tv_sec);
    STATS_ADD(records_received, batch->n_records);

    for (i = 0; i < batch->n_records; i++) {
        ingest_record(in, batch->records[i], ts.tv_sec, now_f);
    }

    if (batch->columns) {
        STATS_ADD(records_received, batch->columns->count);
        columns_reader_init(&rd, batch->columns);

        while (columns_next(&rd, &r, attempts, ptrs)) {
            ingest_record(in, &r, ts.tv_sec, now_f);
        }
    }

    n = batch->n_records + (batch->columns ? batch->columns->count : 0);
    if (in->hook && n) {
        in->hook(data, len, n, in->hook_data);
    }
}

static void
ingest_record(ingest_t *in, const Obs__V1__Record *r, time_t now,
    double now_f)
{
    aggregator_record(in->agg, r, now, now_f);
}

void
ingest_stop(ingest_t *in)
{
    int     i;
    time_t  deadline = time(NULL) + INGEST_STOP_SECONDS;

    for (i = 0; i < in->n; i++) {
        if (in->unix_paths[i]) {
            shutdown(in->fds[i], SHUT_RD);
        }

        /* a UDP sender may never pause: what it sends late is not read */
        while (ingest_drain(in, i) && time(NULL) < deadline) {
            /* void */
        }
    }
}

void
ingest_close(ingest_t *in)
{
    int  i;

    if (in == NULL) {
        return;
    }

    for (i = 0; i < in->n; i++) {
        close(in->fds[i]);
        if (in->unix_paths[i]) {
            unlink(in->unix_paths[i]);
            free(in->unix_paths[i]);
        }
    }

    free(in->datagram);
    free(in->arena.base);
    free(in);
}

/*
 * The module's drop counters and sequence numbers are cumulative per
 * worker, so a lost datagram loses nothing: only the difference from what
 * this worker last reported is new.
 */

static void
ingest_account(ingest_t *in, const Obs__V1__BatchHeader *h, time_t now)
{
    uint64_t   key, reported[MODULE_DROP_REASONS], delta;
    worker_t  *w = NULL, *oldest = &in->workers[0];
    int        i;

    key = hash_bytes(h->host.data, h->host.len,
                     h->worker_start_unix_nano ^ ((uint64_t) h->pid << 32));

    for (i = 0; i < INGEST_WORKERS; i++) {
        if (in->workers[i].key == key && in->workers[i].last_seen) {
            w = &in->workers[i];
            break;
        }
        if (in->workers[i].last_seen < oldest->last_seen) {
            oldest = &in->workers[i];
        }
    }

    if (w == NULL) {
        w = oldest;
        memset(w, 0, sizeof(*w));
        w->key = key;
        w->next_sequence = h->sequence;
    }

    if (h->sequence > w->next_sequence) {
        STATS_ADD(datagrams_lost, h->sequence - w->next_sequence);
    }

    if (h->sequence >= w->next_sequence) {
        w->next_sequence = h->sequence + 1;
    }

    reported[MODULE_DROP_BUFFER_FULL] = h->dropped_buffer_full;
    reported[MODULE_DROP_SEND_FAILED] = h->dropped_send_failed;
    reported[MODULE_DROP_OVERSIZE] = h->dropped_oversize;

    for (i = 0; i < MODULE_DROP_REASONS; i++) {
        if (reported[i] > w->dropped[i]) {
            delta = reported[i] - w->dropped[i];
            STATS_ADD(module_dropped[i], delta);
            w->dropped[i] = reported[i];
        }
    }

    w->last_seen = now ? now : 1;
}

static int
ingest_bind(const char *addr, char **unix_path, char *err, size_t errlen)
{
    struct sockaddr_un   sun;
    struct addrinfo     *ai = NULL;
    const char          *path;
    int                  fd, rc, size = 8 * 1024 * 1024;

    *unix_path = NULL;

    if (strncmp(addr, "unix:", 5) == 0) {
        path = addr + 5;
        if (strlen(path) >= sizeof(sun.sun_path)) {
            snprintf(err, errlen, "ingest %s: path too long", addr);
            return -1;
        }

        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(err, errlen, "ingest %s: socket: %s", addr,
                     strerror(errno));
            return -1;
        }

        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        strcpy(sun.sun_path, path);
        unlink(path);

        if (bind(fd, (struct sockaddr *) &sun, sizeof(sun)) != 0) {
            snprintf(err, errlen, "ingest %s: bind: %s", addr,
                     strerror(errno));
            close(fd);
            return -1;
        }

        /* nginx workers run as another user: anyone local may send */
        chmod(path, 0666);
        *unix_path = strdup(path);

    } else {
        rc = net_resolve(addr + 4, SOCK_DGRAM, &ai);
        if (rc != 0) {
            snprintf(err, errlen, "ingest %s: %s", addr, gai_strerror(rc));
            return -1;
        }

        fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            snprintf(err, errlen, "ingest %s: bind: %s", addr,
                     strerror(errno));
            if (fd >= 0) {
                close(fd);
            }
            freeaddrinfo(ai);
            return -1;
        }

        freeaddrinfo(ai);
    }

    /* a deep queue rides out a scrape or a burst without losing datagrams */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

    return fd;
}

static void *
arena_alloc(void *data, size_t size)
{
    arena_t  *a = data;
    void     *p;

    size = (size + 15) & ~(size_t) 15;
    if (a->used + size > a->size) {
        return NULL;
    }

    p = a->base + a->used;
    a->used += size;
    return p;
}

static void
arena_free(void *data, void *p)
{
    (void) data;
    (void) p;           /* the whole arena is reset per datagram */
}
