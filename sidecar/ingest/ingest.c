/* Ingest sockets and datagram decoding.  See ingest.h. */

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "audit_events.h"
#include "columns_reader.h"
#include "decode_arena.h"
#include "hash.h"
#include "ingest.h"
#include "label_rules.h"
#include "net.h"
#include "stats.h"
#include "obs/v1/framing.h"

#define INGEST_ARENA_SIZE     (8 * 1024 * 1024)
#define INGEST_WORKERS        1024
/* datagrams taken per wake-up before the main loop looks at signals */
#define INGEST_DRAIN_BATCH    256
/* how long a stopping sidecar keeps reading what is queued */
#define INGEST_STOP_SECONDS   2
/*
 * More datagrams than one nginx worker can send in a second: each carries
 * at least one record (or is one of the flush timer's two), and a worker
 * fills a datagram with 20 or more.  A sequence number further ahead is
 * not datagrams lost but a sender that lies or is broken.
 */
#define INGEST_MAX_SENDS      100000
/*
 * More than one header can claim of anything it carries no bytes for
 * (drops, JWT results, requests in flight): 2^40 requests are 12 days of
 * a million a second.  Below it no sum of claims can wrap a counter.
 */
#define INGEST_MAX_CLAIM      ((uint64_t) 1 << 40)
/* the trust classes, each with a table of its own */
#define INGEST_PLAIN          0
#define INGEST_SIGNED         1

typedef struct {
    uint64_t  key;              /* host, pid and start of one nginx worker */
    time_t    last_seen;        /* monotonic seconds; 0: a free entry */
    time_t    created;
    uint64_t  first;            /* the first sequence number seen */
    uint64_t  top;              /* the highest */
    uint64_t  seen;             /* bit k: sequence top - k */
    uint64_t  dropped[MODULE_DROP_REASONS];
    uint64_t  audit_next;       /* its next audit event; 0: not known */
} worker_t;

struct ingest {
    int               fds[CONFIG_MAX_INGEST];
    char             *unix_paths[CONFIG_MAX_INGEST];
    int               n;
    aggregator_t     *agg;
    ingest_datagram_pt hook;
    void             *hook_data;
    unsigned char    *datagram;
    uint8_t          *over;             /* the datagram's LABEL_OVER_* */
    int               any_over;         /* ... some set (else not cleared) */
    decode_arena_t    arena;
    const char       *key;              /* cfg->ingest_key, or NULL */
    uint64_t          max_skew;         /* nanoseconds */
    int               udp[CONFIG_MAX_INGEST];
    int               authenticated;     /* the datagram being read had a tag */
    struct sockaddr_storage  from;      /* ... and its sender */
    socklen_t         fromlen;
    worker_t         *worker;           /* ... and the worker it is from */
    audit_watch_t    *watch;            /* the audit trail's, or NULL */
    /*
     * By trust class: what a plain datagram says about a worker never
     * touches the window its signed datagrams are judged by, whatever
     * worker it names and however many.
     */
    worker_t          workers[2][INGEST_WORKERS];
};

static int ingest_bind(const char *addr, const config_t *cfg,
    char **unix_path, char *err, size_t errlen);
static int ingest_authentic(ingest_t *in, int i, const uint8_t **data,
    size_t *len);
static int ingest_fresh(ingest_t *in, const Obs__V1__BatchHeader *h,
    const struct timespec *now);
static int ingest_plausible(const Obs__V1__BatchHeader *h);
static int ingest_sequence(worker_t *w, uint64_t seq, time_t mono);
static int ingest_account(ingest_t *in, const Obs__V1__BatchHeader *h,
    time_t mono);
static void ingest_record(ingest_t *in, const Obs__V1__Record *r,
    const Obs__V1__BatchHeader *h, size_t i, size_t n, time_t now,
    double now_f);
static void ingest_refused(ingest_t *in, int reason,
    const Obs__V1__BatchHeader *h);
static void ingest_jwt(const Obs__V1__BatchHeader *h);

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
    in->datagram = malloc(OBS_DATAGRAM_READ_MAX + 1);
    /* every record takes at least a byte of its datagram */
    in->over = malloc(LABEL_OVER_BYTES(OBS_DATAGRAM_READ_MAX));
    decode_arena_init(&in->arena, INGEST_ARENA_SIZE);

    if (in->datagram == NULL || in->over == NULL
        || in->arena.base == NULL)
    {
        snprintf(err, errlen, "out of memory");
        ingest_close(in);
        return NULL;
    }

    for (i = 0; i < cfg->n_ingest; i++) {
        in->fds[i] = ingest_bind(cfg->ingest[i], cfg, &in->unix_paths[i],
                                 err, errlen);
        if (in->fds[i] < 0) {
            if (in->unix_paths[i]) {
                unlink(in->unix_paths[i]);
                free(in->unix_paths[i]);
                in->unix_paths[i] = NULL;
            }
            in->n = i;
            ingest_close(in);
            return NULL;
        }
    }

    in->n = cfg->n_ingest;
    in->key = cfg->ingest_key;
    ingest_configure(in, cfg);
    for (i = 0; i < in->n; i++) {
        in->udp[i] = strncmp(cfg->ingest[i], "udp:", 4) == 0;
    }

    return in;
}

void
ingest_configure(ingest_t *in, const config_t *cfg)
{
    in->max_skew = (uint64_t) cfg->ingest_max_skew * 1000000000;
}

int
ingest_set_audit(ingest_t *in, audit_t *a)
{
    in->watch = audit_watch_new(a);
    return in->watch ? 0 : -1;
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
    ssize_t         n;
    size_t          len;
    const uint8_t  *data;
    int             k;

    /* bounded, so that the main loop sees signals however busy ingest is */
    for (k = 0; k < INGEST_DRAIN_BATCH; k++) {
        in->fromlen = sizeof(in->from);
        n = recvfrom(in->fds[i], in->datagram, OBS_DATAGRAM_READ_MAX + 1,
                     MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *) &in->from,
                     &in->fromlen);

        if (n < 0) {
            return 0;       /* EAGAIN, or a transient error: poll again */
        }

        if (n > OBS_DATAGRAM_READ_MAX) {
            STATS_INC(datagrams_received);
            STATS_INC(decode_errors[DECODE_OVERSIZE]);
            continue;
        }

        data = in->datagram;
        len = (size_t) n;

        if (ingest_authentic(in, i, &data, &len)) {
            ingest_datagram(in, data, len);
            in->authenticated = 0;
        }

        in->fromlen = 0;
    }

    return 1;
}

void
ingest_datagram(ingest_t *in, const uint8_t *data, size_t len)
{
    Obs__V1__Batch            *batch;
    Obs__V1__Record            r;
    columns_reader_t           rd;
    struct timespec            ts, mono;
    double                     now_f;
    size_t                     i, n;
    int                        rc;

    STATS_INC(datagrams_received);

    if (len > OBS_DATAGRAM_READ_MAX) {
        STATS_INC(decode_errors[DECODE_OVERSIZE]);
        return;
    }

    decode_arena_reset(&in->arena);
    batch = obs__v1__batch__unpack(&in->arena.allocator, len, data);

    if (batch == NULL) {
        STATS_INC(decode_errors[DECODE_MALFORMED]);
        return;
    }

    if (batch->header == NULL) {
        STATS_INC(decode_errors[DECODE_NO_HEADER]);
        return;
    }

    if (batch->header->schema_version < OBS_SCHEMA_MIN
        || batch->header->schema_version > OBS_SCHEMA_MAX)
    {
        STATS_INC(decode_errors[DECODE_SCHEMA]);
        return;
    }

    if (batch->columns && !columns_valid(batch->columns)) {
        STATS_INC(decode_errors[DECODE_MALFORMED]);
        return;
    }

    clock_gettime(CLOCK_REALTIME, &ts);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    now_f = (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;

    if (in->authenticated && !ingest_fresh(in, batch->header, &ts)) {
        STATS_INC(decode_errors[DECODE_STALE]);
        ingest_refused(in, DECODE_STALE, batch->header);
        return;
    }

    if (!ingest_plausible(batch->header)) {
        STATS_INC(decode_errors[DECODE_IMPLAUSIBLE_COUNT]);
        return;
    }

    rc = ingest_account(in, batch->header, mono.tv_sec);
    if (rc != 0) {
        STATS_INC(decode_errors[rc]);
        ingest_refused(in, rc, batch->header);
        return;
    }

    if (in->watch) {
        audit_watch_header(in->watch, batch->header);      /* audit trail */
    }

    ingest_jwt(batch->header);
    aggregator_active(in->agg, batch->header, in->authenticated,
                      ts.tv_sec);                            /* in flight */
    n = batch->n_records + (batch->columns ? batch->columns->count : 0);
    STATS_ADD(records_received, n);
    in->any_over = 0;

    for (i = 0; i < batch->n_records; i++) {
        ingest_record(in, batch->records[i], batch->header, i, n, ts.tv_sec,
                      now_f);
    }

    if (batch->columns) {
        columns_reader_init(&rd, batch->columns);

        while (columns_next(&rd, &r)) {
            ingest_record(in, &r, batch->header, i++, n, ts.tv_sec, now_f);
        }
    }

    if (in->hook && n) {
        in->hook(data, len, n, in->any_over ? in->over : NULL,
                 in->hook_data);
    }
}

/*
 * With a key, UDP datagrams must carry a valid tag, checked before any
 * decoding; on unix sockets (their mode guards them) a tag is checked when
 * present.  A tagged datagram without a key cannot be trusted either.
 * Strips the mark and tag; 0 when the datagram is dropped (counted).
 */

static int
ingest_authentic(ingest_t *in, int i, const uint8_t **data, size_t *len)
{
    unsigned char  tag[EVP_MAX_MD_SIZE];
    unsigned int   tag_len = 0;
    int            marked;

    marked = *len >= OBS_MAC_MARK_LEN + OBS_MAC_LEN
             && memcmp(*data, OBS_MAC_MARK, OBS_MAC_MARK_LEN) == 0;

    if (!marked && !(in->key && in->udp[i])) {
        return 1;
    }

    if (marked && in->key
        && HMAC(EVP_sha256(), in->key, (int) strlen(in->key),
                *data + OBS_MAC_MARK_LEN + OBS_MAC_LEN,
                *len - OBS_MAC_MARK_LEN - OBS_MAC_LEN, tag, &tag_len)
        && tag_len == OBS_MAC_LEN
        && CRYPTO_memcmp(tag, *data + OBS_MAC_MARK_LEN,
                         OBS_MAC_LEN) == 0)
    {
        *data += OBS_MAC_MARK_LEN + OBS_MAC_LEN;
        *len -= OBS_MAC_MARK_LEN + OBS_MAC_LEN;
        in->authenticated = 1;
        return 1;
    }

    STATS_INC(datagrams_received);
    STATS_INC(decode_errors[DECODE_UNAUTHENTICATED]);
    ingest_refused(in, DECODE_UNAUTHENTICATED, NULL);
    return 0;
}

/* A refusal the audit trail keeps: who sent it, and which worker it named
   when its header was read. */

static void
ingest_refused(ingest_t *in, int reason, const Obs__V1__BatchHeader *h)
{
    if (in->watch) {
        audit_watch_refused(in->watch, reason,
                            (const struct sockaddr *) &in->from, in->fromlen,
                            h);
    }
}

/* The metrics, and the audit trail for a record with an audit event:
   never through the exporters' ring, which may shed.  Record i of n notes
   what the caps made of its labels. */

static void
ingest_record(ingest_t *in, const Obs__V1__Record *r,
    const Obs__V1__BatchHeader *h, size_t i, size_t n, time_t now,
    double now_f)
{
    Obs__V1__Record  plain;
    unsigned         over;

    /*
     * With a key, a plain datagram is the other trust class: its word that
     * the configuration wrote its labels (from_request 0) is not taken, or
     * whoever can write to the unix socket could take the caps from the
     * signed module's configured values.  Every label counts as made.
     */
    if (in->key && !in->authenticated) {
        plain = *r;
        plain.from_request = ~0u;
        r = &plain;
    }

    /* more records than bytes never come: the exporters take none */
    over = aggregator_record(in->agg, r, now, now_f);
    if (over && n <= OBS_DATAGRAM_READ_MAX) {
        if (!in->any_over) {
            memset(in->over, 0, LABEL_OVER_BYTES(n));
            in->any_over = 1;
        }
        label_over_set(in->over, i, over);
    }

    if (r->n_audit && in->watch) {
        audit_watch_record(in->watch, r, h, &in->worker->audit_next);
    }
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
    free(in->over);
    decode_arena_free(&in->arena);
    audit_watch_free(in->watch);
    free(in);
}

/*
 * A signed datagram's send time (0 from older senders: not judged) within
 * the skew allowed of this clock.  The replay window lives in memory; this
 * is what refuses a copy captured before a restart emptied it, once the
 * copy is older than the skew.
 */

static int
ingest_fresh(ingest_t *in, const Obs__V1__BatchHeader *h,
    const struct timespec *now)
{
    uint64_t  sent = h->send_time_unix_nano, t;

    t = (uint64_t) now->tv_sec * 1000000000 + (uint64_t) now->tv_nsec;

    return sent == 0 || (sent <= t ? t - sent : sent - t) <= in->max_skew;
}

/*
 * Whether every number a header claims without bytes to show for it is
 * below INGEST_MAX_CLAIM (a power of two: the bits of all of them, or-ed,
 * tell).
 */

static int
ingest_plausible(const Obs__V1__BatchHeader *h)
{
    uint64_t  bits;
    size_t    i;

    bits = h->dropped_buffer_full | h->dropped_send_failed
           | h->dropped_oversize | h->delta_dropped_buffer_full
           | h->delta_dropped_send_failed | h->delta_dropped_oversize
           | h->delta_dropped_at_exit | h->jwt_valid | h->jwt_missing
           | h->jwt_malformed | h->jwt_alg_not_allowed | h->jwt_unknown_key
           | h->jwt_bad_signature | h->jwt_expired | h->jwt_not_yet_valid
           | h->jwt_bad_issuer | h->jwt_bad_audience | h->jwt_missing_claim
           | h->jwt_cache_hits | h->active_overflow;

    for (i = 0; i < h->n_active; i++) {
        bits |= h->active[i]->count;
    }

    return bits < INGEST_MAX_CLAIM;
}

/*
 * Sequence numbers are per worker: a gap is datagrams lost.  Drops come as
 * deltas (added as they are: a restarted sidecar, or a worker that fell out
 * of the table, adds nothing twice) or, from older modules, as cumulative
 * counters, of which only the difference from what this worker last
 * reported is new.  Returns 0, or the reason the datagram is refused.
 */

static int
ingest_account(ingest_t *in, const Obs__V1__BatchHeader *h, time_t mono)
{
    uint64_t   key, reported[MODULE_DROP_REASONS], delta;
    worker_t  *table, *w = NULL, *oldest;
    int        i, rc;

    key = hash_bytes(h->host.data, h->host.len,
                     h->worker_start_unix_nano ^ ((uint64_t) h->pid << 32));

    table = in->workers[in->authenticated ? INGEST_SIGNED : INGEST_PLAIN];
    oldest = &table[0];

    for (i = 0; i < INGEST_WORKERS; i++) {
        if (table[i].key == key && table[i].last_seen) {
            w = &table[i];
            break;
        }
        if (table[i].last_seen < oldest->last_seen) {
            oldest = &table[i];
        }
    }

    if (w == NULL) {
        w = oldest;
        memset(w, 0, sizeof(*w));
        w->key = key;
        w->created = mono;
        w->first = h->sequence;
        w->top = h->sequence;
        w->seen = 1;

    } else {
        rc = ingest_sequence(w, h->sequence, mono);

        /* plain senders need not number their batches: copies count */
        if (rc == DECODE_SEQUENCE_GAP
            || (rc == DECODE_REPLAYED && in->authenticated))
        {
            return rc;
        }
    }

    reported[MODULE_DROP_BUFFER_FULL] = h->dropped_buffer_full;
    reported[MODULE_DROP_SEND_FAILED] = h->dropped_send_failed;
    reported[MODULE_DROP_OVERSIZE] = h->dropped_oversize;
    reported[MODULE_DROP_EXIT] = 0;

#define OBS_MODULE_DROP(ID, reason, field)                                    \
    STATS_ADD(module_dropped[MODULE_DROP_##ID], h->field);
#include "obs/v1/drop_reasons.def"

    for (i = 0; i < MODULE_DROP_REASONS; i++) {
        if (reported[i] > w->dropped[i]) {
            delta = reported[i] - w->dropped[i];
            STATS_ADD(module_dropped[i], delta);
            w->dropped[i] = reported[i];
        }
    }

    w->last_seen = mono ? mono : 1;
    in->worker = w;
    return 0;
}

/*
 * Notes a worker's datagram sequence number in a window of the last 64, as
 * IPsec does against replays: the module sends each number once, so one
 * seen before (or older than the window) is a copy, DECODE_REPLAYED.  A
 * number further ahead of the first one seen than the worker could have
 * sent since is DECODE_SEQUENCE_GAP, and leaves the window as it was.  No
 * arithmetic here can wrap, whatever the numbers.
 */

static int
ingest_sequence(worker_t *w, uint64_t seq, time_t mono)
{
    uint64_t  ahead, age;

    if (seq > w->top) {
        if (seq - w->first
            > INGEST_MAX_SENDS * ((uint64_t) (mono - w->created) + 1))
        {
            return DECODE_SEQUENCE_GAP;
        }

        ahead = seq - w->top;
        STATS_ADD(datagrams_lost, ahead - 1);
        w->seen = (ahead >= 64) ? 1 : (w->seen << ahead) | 1;
        w->top = seq;
        return 0;
    }

    age = w->top - seq;
    if (age >= 64 || (w->seen & ((uint64_t) 1 << age))) {
        return DECODE_REPLAYED;
    }

    w->seen |= (uint64_t) 1 << age;
    return 0;
}

/*
 * The module's JWT counts are deltas since its last successful send, so
 * they are added as they come: no per-worker state, nothing counted twice
 * after a restart.
 */

static void
ingest_jwt(const Obs__V1__BatchHeader *h)
{
    uint64_t  n[JWT_RESULTS];
    int       i;

    n[JWT_VALID] = h->jwt_valid;
    n[JWT_MISSING] = h->jwt_missing;
    n[JWT_MALFORMED] = h->jwt_malformed;
    n[JWT_ALG_NOT_ALLOWED] = h->jwt_alg_not_allowed;
    n[JWT_UNKNOWN_KEY] = h->jwt_unknown_key;
    n[JWT_BAD_SIGNATURE] = h->jwt_bad_signature;
    n[JWT_EXPIRED] = h->jwt_expired;
    n[JWT_NOT_YET_VALID] = h->jwt_not_yet_valid;
    n[JWT_BAD_ISSUER] = h->jwt_bad_issuer;
    n[JWT_BAD_AUDIENCE] = h->jwt_bad_audience;
    n[JWT_MISSING_CLAIM] = h->jwt_missing_claim;

    for (i = 0; i < JWT_RESULTS; i++) {
        if (n[i]) {
            STATS_ADD(jwt_tokens[i], n[i]);
        }
    }

    if (h->jwt_cache_hits) {
        STATS_ADD(jwt_cache_hits, h->jwt_cache_hits);
    }
}

/* A unix datagram socket and the address of path (checked for length). */

static int
ingest_unix_socket(const char *addr, const char *path,
    struct sockaddr_un *sun, char *err, size_t errlen)
{
    int  fd;

    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "ingest %s: socket: %s", addr, strerror(errno));
        return -1;
    }

    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, strlen(path));
    return fd;
}

/*
 * What is at a unix socket path: 0 nothing (its directory exists), 1 a
 * stale socket nobody receives on, which may be removed; -1 anything else,
 * which is never touched (err says what it is).
 */

static int
ingest_unix_probe(const char *addr, const char *path, char *err,
    size_t errlen)
{
    struct sockaddr_un   sun;
    struct stat          st;
    char                 dir[sizeof(sun.sun_path)], *slash;
    int                  fd, rc;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "ingest %s: path longer than %zu bytes", addr,
                 sizeof(sun.sun_path) - 1);
        return -1;
    }

    if (lstat(path, &st) != 0) {
        if (errno != ENOENT) {
            snprintf(err, errlen, "ingest %s: %s", addr, strerror(errno));
            return -1;
        }

        snprintf(dir, sizeof(dir), "%s", path);
        slash = strrchr(dir, '/');
        *(slash == dir ? slash + 1 : slash) = '\0';
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "ingest %s: directory %s does not exist",
                     addr, dir);
            return -1;
        }
        return 0;
    }

    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "ingest %s: %s exists and is not a socket; "
                 "refusing to replace it", addr, path);
        return -1;
    }

    fd = ingest_unix_socket(addr, path, &sun, err, errlen);
    if (fd < 0) {
        return -1;
    }

    rc = connect(fd, (struct sockaddr *) &sun, sizeof(sun));
    errno = rc == 0 ? 0 : errno;
    close(fd);

    if (rc != 0 && errno == ECONNREFUSED) {
        return 1;
    }

    if (rc == 0) {
        snprintf(err, errlen, "ingest %s: another process receives on this "
                 "socket (is a sidecar already running?)", addr);
    } else {
        snprintf(err, errlen, "ingest %s: a socket is there and cannot be "
                 "probed (%s); refusing to replace it", addr,
                 strerror(errno));
    }

    return -1;
}

/* Resolves ingest_group (a name or a number); 0 with *gid set. */

static int
ingest_group_id(const config_t *cfg, gid_t *gid, char *err, size_t errlen)
{
    struct group   gr, *found = NULL;
    char           buf[4096], *end;
    unsigned long  n;

    *gid = getegid();
    if (cfg->ingest_group == NULL) {
        return 0;
    }

    n = strtoul(cfg->ingest_group, &end, 10);
    if (*end == '\0' && end != cfg->ingest_group) {
        *gid = (gid_t) n;
        return 0;
    }

    if (getgrnam_r(cfg->ingest_group, &gr, buf, sizeof(buf), &found) != 0
        || found == NULL)
    {
        snprintf(err, errlen, "ingest_group: no group \"%s\"",
                 cfg->ingest_group);
        return -1;
    }

    *gid = found->gr_gid;
    return 0;
}

/* "udp:PORT" and "udp::PORT" are 127.0.0.1: other hosts only when named. */

static int
ingest_udp_resolve(const char *addr, struct addrinfo **ai)
{
    const char  *rest = addr + 4;
    char         local[64];

    if (strchr(rest, ':') == NULL || rest[0] == ':') {
        snprintf(local, sizeof(local), "127.0.0.1:%s",
                 rest[0] == ':' ? rest + 1 : rest);
        rest = local;
    }

    return net_resolve(rest, SOCK_DGRAM, ai);
}

int
ingest_check(const config_t *cfg, char *err, size_t errlen)
{
    struct addrinfo  *ai;
    gid_t             gid;
    int               i, rc;

    if (ingest_group_id(cfg, &gid, err, errlen) != 0) {
        return -1;
    }

    for (i = 0; i < cfg->n_ingest; i++) {
        if (strncmp(cfg->ingest[i], "unix:", 5) == 0) {
            if (ingest_unix_probe(cfg->ingest[i], cfg->ingest[i] + 5, err,
                                  errlen) < 0)
            {
                return -1;
            }
            continue;
        }

        rc = ingest_udp_resolve(cfg->ingest[i], &ai);
        if (rc != 0) {
            snprintf(err, errlen, "ingest %s: %s", cfg->ingest[i],
                     gai_strerror(rc));
            return -1;
        }
        freeaddrinfo(ai);
    }

    return 0;
}

static int
ingest_bind_unix(const char *addr, const config_t *cfg, char **unix_path,
    char *err, size_t errlen)
{
    struct sockaddr_un   sun;
    const char          *path = addr + 5;
    mode_t               mask;
    gid_t                gid;
    int                  fd, rc;

    if (ingest_group_id(cfg, &gid, err, errlen) != 0) {
        return -1;
    }

    rc = ingest_unix_probe(addr, path, err, errlen);
    if (rc < 0) {
        return -1;
    }

    if (rc == 1 && unlink(path) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "ingest %s: cannot remove the stale socket: "
                 "%s", addr, strerror(errno));
        return -1;
    }

    fd = ingest_unix_socket(addr, path, &sun, err, errlen);
    if (fd < 0) {
        return -1;
    }

    /* created 0660 at once; no thread runs yet, so umask is ours alone */
    mask = umask(0117);
    rc = bind(fd, (struct sockaddr *) &sun, sizeof(sun));
    umask(mask);

    if (rc != 0) {
        snprintf(err, errlen, "ingest %s: bind: %s", addr, strerror(errno));
        close(fd);
        return -1;
    }

    *unix_path = strdup(path);

    /*
     * nginx's workers write as another user: through the socket's group.
     * lchown, and no chmod (bind made it 0660): by path, these would
     * follow a link someone swapped in since bind, and give them another
     * file's group and mode.
     */
    if (lchown(path, (uid_t) -1, gid) != 0) {
        snprintf(err, errlen, "ingest %s: cannot give the socket to group "
                 "%lu: %s (the sidecar's user must belong to it)", addr,
                 (unsigned long) gid, strerror(errno));
        close(fd);
        return -1;
    }

    return fd;
}

static int
ingest_bind(const char *addr, const config_t *cfg, char **unix_path,
    char *err, size_t errlen)
{
    struct addrinfo  *ai = NULL;
    int               fd, rc, size = 8 * 1024 * 1024;

    *unix_path = NULL;

    if (strncmp(addr, "unix:", 5) == 0) {
        fd = ingest_bind_unix(addr, cfg, unix_path, err, errlen);
        if (fd < 0) {
            return -1;
        }

    } else {
        rc = ingest_udp_resolve(addr, &ai);
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
