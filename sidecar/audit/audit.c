/* The audit trail's queue, file and writer.  See audit.h. */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "audit_chain.h"
#include "audit_events.h"
#include "delivery.h"
#include "jsonw.h"
#include "log.h"
#include "timed_wait.h"

/* the most of a file's end read to find its last event */
#define AUDIT_TAIL_READ    (1024 * 1024)
/* seconds between attempts while the file fails, and between log lines */
#define AUDIT_RETRY        1.0
#define AUDIT_LOG_EVERY    60.0
#define AUDIT_PATH_MAX     4096

typedef struct entry {
    struct entry  *next;
    size_t         len;
    char           data[];
} entry_t;

/* A line of the batch being written. */
typedef struct {
    size_t         end;             /* its end in the batch */
    entry_t       *entry;           /* NULL: made by the writer */
    int            loss;            /* a loss event's reason, or -1 */
    uint64_t       count;           /* ... how many it records */
    audit_chain_t  chain;           /* the chain after it */
} line_t;

struct audit {
    audit_config_t    cfg;
    audit_key_t      *key;
    int               enabled;

    pthread_mutex_t   lock;
    pthread_cond_t    wake;         /* the writer: events, losses, stop */
    pthread_cond_t    grown;        /* the shipper: the file grew */
    entry_t          *head, **tail;
    size_t            queued_bytes;
    uint64_t          queued_events;
    uint64_t          unwritten[AUDIT_LOSSES];  /* losses not yet told */
    int               stopping;
    int               stopped;
    double            drain_until;
    char              problem[256]; /* "" while the file takes events */
    double            queue_logged;
    double            unconfigured_logged;
    audit_segment_t  *segments;
    int               n_segments;
    int               cap_segments;

    atomic_ullong     lost[AUDIT_LOSSES];
    atomic_ullong     written;
    atomic_ullong     write_errors;
    atomic_ullong     rotations;
    atomic_ullong     last_write_ms;
    atomic_ullong     file_bytes;

    /* the writer thread's */
    pthread_t         thread;
    int               started;
    int               fd;
    int               lock_fd;
    uint64_t          size;         /* whole events in the current file */
    int               dirty;        /* bytes past size may be there */
    audit_chain_t     chain;
    int               rotated;      /* the next line says so */
    int               failing;
    double            fail_logged;
    buf_t             batch;
    buf_t             body;
    line_t           *lines;
    size_t            cap_lines;
};

const char *const  audit_loss_names[AUDIT_LOSSES] = {
#define OBS_AUDIT_LOSS(id, help)  #id,
#include "obs/v1/audit.def"
};

static const char *const  audit_loss_help[AUDIT_LOSSES] = {
#define OBS_AUDIT_LOSS(id, help)  help,
#include "obs/v1/audit.def"
};

static int audit_open_file(audit_t *a, int create_new, char *err,
    size_t errlen);
static int audit_recover(audit_t *a, const char *path, int fd, int cut,
    uint64_t *discarded, const char **why);
static int audit_rotate(audit_t *a);
static void audit_segment_add(audit_t *a, int fd);
static void *audit_main(void *data);
static int audit_write(audit_t *a, entry_t **list, uint64_t *losses);
static int audit_line(audit_t *a, size_t *n, entry_t *e, int loss,
    uint64_t count, audit_chain_t *chain);
static void audit_requeue(audit_t *a, entry_t *list);
static void audit_fail(audit_t *a, const char *what, int err);
static void audit_members_head(buf_t *b, const char *event, uint64_t time_us);

void
audit_config_defaults(audit_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->rotate_bytes = 100 * 1024 * 1024;
    cfg->rotate_files = 10;
    cfg->queue_bytes = 64 * 1024 * 1024;
    cfg->loki = 1;
}

void
audit_config_free(audit_config_t *cfg)
{
    free(cfg->file);
    if (cfg->key) {
        memset(cfg->key, 0, strlen(cfg->key));
    }
    free(cfg->key);
    free(cfg->org_id);
    memset(cfg, 0, sizeof(*cfg));
}

audit_t *
audit_open(const audit_config_t *cfg, char *err, size_t errlen)
{
    audit_t   *a;
    char       path[AUDIT_PATH_MAX];
    buf_t      m = { 0 };
    uint64_t   discarded = 0;
    const char *why = NULL, *chain = "new";

    a = calloc(1, sizeof(audit_t));
    if (a == NULL) {
        snprintf(err, errlen, "audit: out of memory");
        return NULL;
    }

    pthread_mutex_init(&a->lock, NULL);
    timed_wait_cond_init(&a->wake);
    timed_wait_cond_init(&a->grown);
    a->tail = &a->head;
    a->fd = -1;
    a->lock_fd = -1;
    a->cfg = *cfg;
    a->cfg.file = cfg->file ? strdup(cfg->file) : NULL;
    a->cfg.key = cfg->key ? strdup(cfg->key) : NULL;
    a->cfg.org_id = cfg->org_id ? strdup(cfg->org_id) : NULL;

    if (cfg->file == NULL) {
        return a;
    }

    a->enabled = 1;
    a->key = a->cfg.key ? audit_key_new(a->cfg.key, strlen(a->cfg.key))
                        : NULL;
    if (a->cfg.file == NULL || a->key == NULL) {
        snprintf(err, errlen, "audit: cannot set up HMAC-SHA256");
        goto failed;
    }

    /* one writer a file: its lock lives beside it, across rotations */
    snprintf(path, sizeof(path), "%s.lock", cfg->file);
    a->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (a->lock_fd < 0) {
        snprintf(err, errlen, "audit.file: cannot open %s: %s", path,
                 strerror(errno));
        goto failed;
    }
    if (flock(a->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "audit.file: %s is locked: another sidecar "
                 "writes %s", path, cfg->file);
        goto failed;
    }

    if (audit_open_file(a, 0, err, errlen) != 0) {
        goto failed;
    }

    /* go on from the last event: of this file, or of the one rotated last
       when this one has none yet */
    if (audit_recover(a, cfg->file, a->fd, 1, &discarded, &why) == 0
        && why == NULL)
    {
        snprintf(path, sizeof(path), "%s.1", cfg->file);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            (void) audit_recover(a, path, fd, 0, NULL, &why);
            close(fd);
        }
    }

    if (why) {
        /* a tail that does not verify (edited, or another key): the chain
           is not continued from it; the file is set aside and a new chain
           starts, which the verifier will show */
        sidecar_log("error", "audit: the last event of %s does not verify "
                    "(%s): starting a new chain in a new file; the old one "
                    "is %s.1", cfg->file, why, cfg->file);
        memset(&a->chain, 0, sizeof(a->chain));
        if (audit_rotate(a) != 0) {
            snprintf(err, errlen, "audit.file: %s cannot be rotated: %s",
                     cfg->file, a->problem);
            goto failed;
        }
        a->rotated = 0;
        chain = "restarted";
    } else if (a->chain.seq) {
        chain = "continued";
    }

    audit_members_head(&m, "audit_opened", audit_now_us());
    jsonw_lit(&m, ",\"file\":");
    jsonw_text(&m, (const uint8_t *) cfg->file, strlen(cfg->file), 1024);
    jsonw_lit(&m, ",\"chain\":\"");
    buf_puts(&m, chain);
    jsonw_lit(&m, "\"");
    if (why) {
        jsonw_lit(&m, ",\"previous_tail\":");
        jsonw_string(&m, why, strlen(why));
    }
    if (discarded) {
        /* a line its last writer died in the middle of */
        jsonw_lit(&m, ",\"discarded_bytes\":");
        jsonw_u64(&m, discarded);
    }
    if (m.failed) {
        snprintf(err, errlen, "audit: out of memory");
        buf_free(&m);
        goto failed;
    }

    /* the first line of this run, before anything a producer queues */
    audit_event(a, NULL, 0, m.data, m.len, 0);
    buf_free(&m);

    errno = pthread_create(&a->thread, NULL, audit_main, a);
    if (errno != 0) {
        snprintf(err, errlen, "audit: cannot start its thread: %s",
                 strerror(errno));
        goto failed;
    }
    pthread_setname_np(a->thread, "obs-audit");
    a->started = 1;

    return a;

failed:

    audit_free(a);
    return NULL;
}

int
audit_check(const audit_config_t *cfg, char *err, size_t errlen)
{
    char  path[AUDIT_PATH_MAX];
    int   fd, rc = 0;

    if (cfg->file == NULL) {
        return 0;
    }

    if (access(cfg->file, F_OK) == 0 && access(cfg->file, R_OK | W_OK) != 0)
    {
        snprintf(err, errlen, "audit.file: %s cannot be written: %s",
                 cfg->file, strerror(errno));
        return -1;
    }

    /* probed, never made: --check-config creates nothing */
    snprintf(path, sizeof(path), "%s.lock", cfg->file);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            snprintf(err, errlen, "audit.file: %s is locked: another "
                     "sidecar writes %s", path, cfg->file);
            rc = -1;
        }
        close(fd);
    }

    return rc;
}

int
audit_enabled(const audit_t *a)
{
    return a && a->enabled;
}

void
audit_event(audit_t *a, const char *event, uint64_t time_us,
    const char *members, size_t len, int requested)
{
    entry_t  *e;
    buf_t     b = { 0 };
    double    now;

    if (a == NULL) {
        return;
    }

    if (!a->enabled) {
        if (!requested) {
            return;
        }
        audit_lost(a, AUDIT_LOST_not_configured, 1);
        now = delivery_now();
        pthread_mutex_lock(&a->lock);
        if (now - a->unconfigured_logged >= AUDIT_LOG_EVERY) {
            a->unconfigured_logged = now;
            pthread_mutex_unlock(&a->lock);
            sidecar_log("error", "audit: nginx sends audit events "
                        "(obs_audit, obs_jwt require) and this sidecar has "
                        "no audit.file: they are counted lost "
                        "(obs_audit_events_lost_total{reason="
                        "\"not_configured\"})");
            return;
        }
        pthread_mutex_unlock(&a->lock);
        return;
    }

    /* event NULL: members already hold time and event */
    if (event) {
        audit_members_head(&b, event, time_us);
        if (len) {
            jsonw_lit(&b, ",");
        }
    }

    e = malloc(sizeof(entry_t) + b.len + len);
    if (e == NULL || b.failed) {
        free(e);
        buf_free(&b);
        audit_lost(a, AUDIT_LOST_queue_full, 1);
        return;
    }

    if (b.len) {
        memcpy(e->data, b.data, b.len);
    }
    if (len) {
        memcpy(e->data + b.len, members, len);
    }
    e->len = b.len + len;
    e->next = NULL;
    buf_free(&b);

    pthread_mutex_lock(&a->lock);

    if (a->stopped || a->queued_bytes + e->len > a->cfg.queue_bytes) {
        now = delivery_now();
        if (now - a->queue_logged >= AUDIT_LOG_EVERY) {
            a->queue_logged = now;
            sidecar_log("error", "audit: %s: audit events are lost: %zu "
                        "bytes wait for %s, which %s", a->stopped
                        ? "stopped" : "the queue is full", a->queued_bytes,
                        a->cfg.file, a->problem[0] ? a->problem
                        : "takes them too slowly");
        }
        pthread_mutex_unlock(&a->lock);
        free(e);
        audit_lost(a, a->stopped ? AUDIT_LOST_shutdown
                                 : AUDIT_LOST_queue_full, 1);
        return;
    }

    *a->tail = e;
    a->tail = &e->next;
    a->queued_bytes += e->len;
    a->queued_events++;
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->lock);
}

void
audit_lost(audit_t *a, audit_loss_t why, uint64_t n)
{
    if (a == NULL || n == 0) {
        return;
    }

    atomic_fetch_add(&a->lost[why], n);

    if (a->enabled) {
        pthread_mutex_lock(&a->lock);
        a->unwritten[why] += n;
        pthread_cond_signal(&a->wake);
        pthread_mutex_unlock(&a->lock);
    }
}

const char *
audit_problem(audit_t *a)
{
    static _Thread_local char  copy[sizeof(((audit_t *) 0)->problem)];

    if (a == NULL || !a->enabled) {
        return NULL;
    }

    pthread_mutex_lock(&a->lock);
    memcpy(copy, a->problem, sizeof(copy));
    pthread_mutex_unlock(&a->lock);

    return copy[0] ? copy : NULL;
}

void
audit_metrics(expo_writer_t *w, void *data)
{
    static const char  *reason[] = { "reason" };
    audit_t            *a = data;
    size_t              queued;
    uint64_t            events;
    int                 i;

    pthread_mutex_lock(&a->lock);
    queued = a->queued_bytes;
    events = a->queued_events;
    pthread_mutex_unlock(&a->lock);

    expo_family(w, "obs_audit_events", "Audit events written to the trail "
                "(audit.file).", NULL, EXPO_COUNTER);
    expo_sample(w, NULL, NULL, 0, (double) atomic_load(&a->written));
    expo_family_end(w);

    expo_family(w, "obs_audit_events_lost", "Audit events lost, by where "
                "(each count is also written to the trail).", NULL,
                EXPO_COUNTER);
    for (i = 0; i < AUDIT_LOSSES; i++) {
        expo_sample(w, reason, &audit_loss_names[i], 1,
                    (double) atomic_load(&a->lost[i]));
    }
    expo_family_end(w);

    expo_family(w, "obs_audit_queue_events", "Audit events waiting to be "
                "written (bounded by audit.queue_bytes).", NULL, EXPO_GAUGE);
    expo_sample(w, NULL, NULL, 0, (double) events);
    expo_family_end(w);

    expo_family(w, "obs_audit_queue_bytes", "Bytes of audit events waiting "
                "to be written.", "bytes", EXPO_GAUGE);
    expo_sample(w, NULL, NULL, 0, (double) queued);
    expo_family_end(w);

    expo_family(w, "obs_audit_writable", "1 while the audit file takes "
                "events, 0 while writing it fails (disk full, "
                "permissions); no audit.file: 1.", NULL, EXPO_GAUGE);
    expo_sample(w, NULL, NULL, 0, audit_problem(a) ? 0 : 1);
    expo_family_end(w);

    expo_family(w, "obs_audit_write_errors", "Writes of the audit file that "
                "failed (each is retried).", NULL, EXPO_COUNTER);
    expo_sample(w, NULL, NULL, 0, (double) atomic_load(&a->write_errors));
    expo_family_end(w);

    expo_family(w, "obs_audit_rotations", "Audit files rotated.", NULL,
                EXPO_COUNTER);
    expo_sample(w, NULL, NULL, 0, (double) atomic_load(&a->rotations));
    expo_family_end(w);

    expo_family(w, "obs_audit_file_bytes", "Size of the current audit "
                "file.", "bytes", EXPO_GAUGE);
    expo_sample(w, NULL, NULL, 0, (double) atomic_load(&a->file_bytes));
    expo_family_end(w);

    expo_family(w, "obs_audit_last_write_timestamp_seconds", "When events "
                "were last written to the audit file (0: never).", "seconds",
                EXPO_GAUGE);
    expo_sample(w, NULL, NULL, 0,
                (double) atomic_load(&a->last_write_ms) / 1000);
    expo_family_end(w);
}

void
audit_stop(audit_t *a, double drain_seconds)
{
    if (a == NULL || !a->started) {
        return;
    }

    pthread_mutex_lock(&a->lock);
    a->stopping = 1;
    a->drain_until = delivery_now() + drain_seconds;
    pthread_cond_broadcast(&a->wake);
    pthread_mutex_unlock(&a->lock);

    pthread_join(a->thread, NULL);

    pthread_mutex_lock(&a->lock);
    a->started = 0;
    pthread_mutex_unlock(&a->lock);
}

void
audit_free(audit_t *a)
{
    entry_t  *e;
    int       i;

    if (a == NULL) {
        return;
    }

    audit_stop(a, 0);

    while ((e = a->head) != NULL) {
        a->head = e->next;
        free(e);
    }
    for (i = 0; i < a->n_segments; i++) {
        close(a->segments[i].fd);
    }
    free(a->segments);
    if (a->fd >= 0) {
        close(a->fd);
    }
    if (a->lock_fd >= 0) {
        close(a->lock_fd);
    }
    audit_key_free(a->key);
    audit_config_free(&a->cfg);
    buf_free(&a->batch);
    buf_free(&a->body);
    free(a->lines);
    pthread_cond_destroy(&a->grown);
    pthread_cond_destroy(&a->wake);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

void
audit_time(buf_t *b, uint64_t unix_us)
{
    time_t     sec = (time_t) (unix_us / 1000000);
    struct tm  tm;
    char       text[40];
    int        n;

    gmtime_r(&sec, &tm);
    n = snprintf(text, sizeof(text), "\"%04d-%02d-%02dT%02d:%02d:%02d.%06uZ\"",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (unsigned) (unix_us % 1000000));
    if (n > 0 && (size_t) n < sizeof(text)) {
        jsonw_raw(b, text, (size_t) n);
    }
}

/* --- the file ---------------------------------------------------------- */

/* Opens (creating) the current file for writing, and a descriptor the
   shipper reads it by. */

static int
audit_open_file(audit_t *a, int create_new, char *err, size_t errlen)
{
    struct stat  st;
    int          fd, rfd;

    fd = open(a->cfg.file, O_RDWR | O_CREAT | O_CLOEXEC
                           | (create_new ? O_EXCL : 0), 0640);
    if (fd < 0) {
        snprintf(err, errlen, "audit.file: cannot open %s: %s", a->cfg.file,
                 strerror(errno));
        return -1;
    }

    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "audit.file: %s is not a regular file",
                 a->cfg.file);
        close(fd);
        return -1;
    }

    rfd = open(a->cfg.file, O_RDONLY | O_CLOEXEC);
    if (rfd < 0) {
        snprintf(err, errlen, "audit.file: cannot read %s: %s", a->cfg.file,
                 strerror(errno));
        close(fd);
        return -1;
    }

    a->fd = fd;
    a->size = (uint64_t) st.st_size;
    a->dirty = 0;
    atomic_store(&a->file_bytes, a->size);
    audit_segment_add(a, rfd);
    return 0;
}

/*
 * Finds the last event of the file at fd: a line cut short at its end (its
 * writer died mid-write) is removed when cut says so (its bytes in
 * *discarded) and the chain goes on from the last whole line, which must
 * verify (*why says why not).  Returns 1 when the file has an event.
 */

static int
audit_recover(audit_t *a, const char *path, int fd, int cut,
    uint64_t *discarded, const char **why)
{
    struct stat  st;
    char        *buf, *end, *start;
    size_t       n;
    off_t        from;
    ssize_t      got;
    uint8_t      prev[AUDIT_MAC_LEN];
    int          found = 0;

    if (fstat(fd, &st) != 0 || st.st_size == 0) {
        return 0;
    }

    n = st.st_size > AUDIT_TAIL_READ ? AUDIT_TAIL_READ : (size_t) st.st_size;
    from = st.st_size - (off_t) n;
    buf = malloc(n);
    if (buf == NULL) {
        return 0;
    }

    got = pread(fd, buf, n, from);
    if (got != (ssize_t) n) {
        free(buf);
        return 0;
    }

    end = buf + n;
    if (end[-1] != '\n') {
        start = memrchr(buf, '\n', n);
        start = start ? start + 1 : buf;
        if (cut) {
            if (discarded) {
                *discarded = (uint64_t) (end - start);
            }
            sidecar_log("warn", "audit: %s ends with %zu bytes of a line cut "
                        "short (its writer stopped mid-write): removed; the "
                        "chain goes on from the last whole event", path,
                        (size_t) (end - start));
            if (ftruncate(fd, from + (start - buf)) == 0) {
                a->size = (uint64_t) (from + (start - buf));
                atomic_store(&a->file_bytes, a->size);
            }
        }
        end = start;
    }

    if (end > buf) {
        start = memrchr(buf, '\n', (size_t) (end - 1 - buf));
        start = start ? start + 1 : buf;

        if (start == buf && from > 0) {
            *why = "its last line is longer than any event";
        } else {
            *why = audit_chain_parse(a->key, start, (size_t) (end - 1 - start),
                                     &a->chain.seq, prev, a->chain.mac);
        }
        found = 1;
    }

    free(buf);
    return found;
}

/* FILE -> FILE.1 -> ... -> FILE.<rotate_files>, the last removed; then a
   new FILE.  0, or -1 with a->problem set. */

static int
audit_rotate(audit_t *a)
{
    char  from[AUDIT_PATH_MAX], to[AUDIT_PATH_MAX], err[512];
    long  k;

    snprintf(to, sizeof(to), "%s.%ld", a->cfg.file, a->cfg.rotate_files);
    if (unlink(to) != 0 && errno != ENOENT) {
        audit_fail(a, "cannot remove the oldest file", errno);
        return -1;
    }

    for (k = a->cfg.rotate_files - 1; k >= 0; k--) {
        if (k == 0) {
            snprintf(from, sizeof(from), "%s", a->cfg.file);
        } else {
            snprintf(from, sizeof(from), "%s.%ld", a->cfg.file, k);
        }
        snprintf(to, sizeof(to), "%s.%ld", a->cfg.file, k + 1);
        if (rename(from, to) != 0 && errno != ENOENT) {
            audit_fail(a, "cannot rotate", errno);
            return -1;
        }
    }

    if (a->fd >= 0) {
        close(a->fd);
        a->fd = -1;
    }

    pthread_mutex_lock(&a->lock);
    if (a->n_segments) {
        a->segments[a->n_segments - 1].done = 1;
    }
    pthread_mutex_unlock(&a->lock);

    if (audit_open_file(a, 1, err, sizeof(err)) != 0) {
        audit_fail(a, "cannot open a new file after rotating", errno);
        return -1;
    }

    atomic_fetch_add(&a->rotations, 1);
    a->rotated = 1;
    return 0;
}

static void
audit_segment_add(audit_t *a, int fd)
{
    audit_segment_t  *s;
    struct stat       st;
    int               cap;

    pthread_mutex_lock(&a->lock);
    if (a->n_segments == a->cap_segments) {
        cap = a->cap_segments ? 2 * a->cap_segments : 4;
        s = realloc(a->segments, (size_t) cap * sizeof(audit_segment_t));
        if (s == NULL) {
            pthread_mutex_unlock(&a->lock);
            close(fd);
            return;
        }
        a->segments = s;
        a->cap_segments = cap;
    }

    s = &a->segments[a->n_segments++];
    memset(s, 0, sizeof(*s));
    s->fd = fd;
    if (fstat(fd, &st) == 0) {
        s->dev = (uint64_t) st.st_dev;
        s->ino = (uint64_t) st.st_ino;
    }
    s->committed = a->size;
    pthread_cond_broadcast(&a->grown);
    pthread_mutex_unlock(&a->lock);
}

int
audit_ship_wait(audit_t *a, uint64_t offset, audit_segment_t *s, int wait_ms,
    int *stopped)
{
    struct timespec  until;
    int              rc = -1;

    timed_wait_deadline(&until, wait_ms);

    pthread_mutex_lock(&a->lock);

    while (a->n_segments && a->segments[0].committed <= offset
           && !a->segments[0].done && !a->stopped)
    {
        if (pthread_cond_timedwait(&a->grown, &a->lock, &until) != 0) {
            break;
        }
    }

    if (a->n_segments) {
        *s = a->segments[0];
        rc = 0;
    }
    *stopped = a->stopped || !a->started;

    pthread_mutex_unlock(&a->lock);
    return rc;
}

void
audit_ship_next(audit_t *a)
{
    pthread_mutex_lock(&a->lock);
    if (a->n_segments > 1 || (a->n_segments && a->segments[0].done)) {
        close(a->segments[0].fd);
        memmove(a->segments, a->segments + 1,
                (size_t) (a->n_segments - 1) * sizeof(audit_segment_t));
        a->n_segments--;
    }
    pthread_mutex_unlock(&a->lock);
}

const audit_config_t *
audit_config(const audit_t *a)
{
    return &a->cfg;
}

/* --- the writer -------------------------------------------------------- */

static void *
audit_main(void *data)
{
    audit_t         *a = data;
    entry_t         *list;
    uint64_t         losses[AUDIT_LOSSES], left;
    struct timespec  until;
    double           now;
    int              i, pending, stopping;

    for ( ;; ) {
        pthread_mutex_lock(&a->lock);

        for ( ;; ) {
            pending = a->head != NULL;
            for (i = 0; i < AUDIT_LOSSES; i++) {
                pending |= a->unwritten[i] != 0;
            }
            stopping = a->stopping;
            if (stopping || (pending && !a->failing)) {
                break;
            }
            timed_wait_deadline(&until, 1000);
            if (pthread_cond_timedwait(&a->wake, &a->lock, &until) != 0
                && pending)
            {
                break;          /* failing: time to try again */
            }
        }

        list = a->head;
        a->head = NULL;
        a->tail = &a->head;
        memcpy(losses, a->unwritten, sizeof(losses));
        pthread_mutex_unlock(&a->lock);

        if (pending) {
            (void) audit_write(a, &list, losses);
            if (list) {
                audit_requeue(a, list);     /* failed, or a rotation */
            }
        }

        if (!stopping) {
            continue;
        }

        /* stopping: done when all is written, or when the time is up */
        pthread_mutex_lock(&a->lock);
        pending = a->head != NULL;
        for (i = 0; i < AUDIT_LOSSES; i++) {
            pending |= a->unwritten[i] != 0;
        }
        now = delivery_now();
        if (pending && a->failing && now < a->drain_until) {
            pthread_mutex_unlock(&a->lock);
            usleep(200000);
            continue;
        }
        if (!pending || now >= a->drain_until) {
            a->stopped = 1;
            list = a->head;
            a->head = NULL;
            a->tail = &a->head;
            left = a->queued_events;
            a->queued_events = 0;
            a->queued_bytes = 0;
            pthread_mutex_unlock(&a->lock);
            while (list) {
                entry_t  *next = list->next;
                free(list);
                list = next;
            }
            if (left) {
                atomic_fetch_add(&a->lost[AUDIT_LOST_shutdown], left);
                sidecar_log("error", "audit: stopping with %llu events that "
                            "%s could not take: lost", (unsigned long long)
                            left, a->cfg.file);
            }
            break;
        }
        pthread_mutex_unlock(&a->lock);
    }

    pthread_mutex_lock(&a->lock);
    pthread_cond_broadcast(&a->grown);
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

/*
 * Writes the losses not yet told, then the events of list, as chained
 * lines, up to where the file is to be rotated; what was written whole is
 * committed (the chain moves on, the entries are freed), the rest stays in
 * *list for the next turn.  Returns -1 when writing failed.
 */

static int
audit_write(audit_t *a, entry_t **list, uint64_t *losses)
{
    audit_chain_t   chain;
    entry_t        *e;
    size_t          n = 0, i, whole, done, written;
    ssize_t         w;
    uint64_t        events = 0, bytes = 0;
    int             rc = 0, k, err;

    if (a->fd < 0) {
        char  why[512];

        if (audit_open_file(a, 0, why, sizeof(why)) != 0) {
            audit_fail(a, "cannot open", errno);
            return -1;
        }
    }

    if (a->size >= a->cfg.rotate_bytes && a->cfg.rotate_bytes
        && audit_rotate(a) != 0)
    {
        return -1;
    }

    buf_reset(&a->batch);
    chain = a->chain;

    if (a->rotated && audit_line(a, &n, NULL, -1, 0, &chain) != 0) {
        return -1;
    }

    for (k = 0; k < AUDIT_LOSSES; k++) {
        if (losses[k] && audit_line(a, &n, NULL, k, losses[k], &chain) != 0) {
            return -1;
        }
    }

    /* a file is rotated at the line that takes it past rotate_bytes: the
       rest waits for the next turn, in the next file */
    for (e = *list; e; e = e->next) {
        if (a->cfg.rotate_bytes && a->batch.len
            && a->size + a->batch.len >= a->cfg.rotate_bytes)
        {
            break;
        }
        if (audit_line(a, &n, e, -1, 0, &chain) != 0) {
            return -1;
        }
    }

    /* at the committed size: whatever a failed write left there goes */
    written = 0;
    err = 0;
    while (written < a->batch.len) {
        w = pwrite(a->fd, a->batch.data + written, a->batch.len - written,
                   (off_t) (a->size + written));
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            err = w < 0 ? errno : ENOSPC;
            break;
        }
        written += (size_t) w;
    }

    for (whole = 0; whole < n && a->lines[whole].end <= written; whole++) {
        /* the lines written whole */
    }
    done = whole ? a->lines[whole - 1].end : 0;

    if (written > done || (a->dirty && written == a->batch.len)) {
        /* no half line, nor what an earlier failure left, is kept */
        if (ftruncate(a->fd, (off_t) (a->size + done)) != 0) {
            a->dirty = 1;
        } else {
            a->dirty = 0;
        }
    }

    if (err == 0 && fdatasync(a->fd) != 0) {
        err = errno;
    }

    /* commit what was written whole */
    if (whole) {
        a->chain = a->lines[whole - 1].chain;
        a->size += done;
        bytes = done;
        if (a->rotated && a->lines[0].entry == NULL
            && a->lines[0].loss < 0)
        {
            a->rotated = 0;
        }
    }

    pthread_mutex_lock(&a->lock);
    for (i = 0; i < whole; i++) {
        if (a->lines[i].loss >= 0) {
            a->unwritten[a->lines[i].loss] -= a->lines[i].count;
        } else if (a->lines[i].entry) {
            e = *list;
            *list = e->next;
            a->queued_bytes -= e->len;
            a->queued_events--;
            free(e);
        }
        events++;
    }
    if (a->n_segments) {                /* the shipper reads up to here */
        a->segments[a->n_segments - 1].committed = a->size;
    }
    if (err == 0) {
        a->problem[0] = '\0';
    }
    pthread_cond_broadcast(&a->grown);
    pthread_mutex_unlock(&a->lock);

    if (events) {
        atomic_fetch_add(&a->written, events);
        atomic_store(&a->file_bytes, a->size);
        atomic_store(&a->last_write_ms, (uint64_t) (delivery_now() * 1000));
    }
    (void) bytes;

    if (err) {
        audit_fail(a, "cannot write", err);
        rc = -1;
    } else if (a->failing) {
        a->failing = 0;
        sidecar_log("info", "audit: %s takes events again", a->cfg.file);
    }

    return rc;
}

/* Appends a line to the batch and notes where it ends and the chain
   after it. */

static int
audit_line(audit_t *a, size_t *n, entry_t *e, int loss, uint64_t count,
    audit_chain_t *chain)
{
    line_t  *l;
    char     name[AUDIT_PATH_MAX + 8];

    if (*n == a->cap_lines) {
        size_t  cap = a->cap_lines ? 2 * a->cap_lines : 64;

        l = realloc(a->lines, cap * sizeof(line_t));
        if (l == NULL) {
            return -1;
        }
        a->lines = l;
        a->cap_lines = cap;
    }

    if (e) {
        if (audit_chain_append(chain, a->key, e->data, e->len, &a->batch)
            != 0)
        {
            return -1;
        }

    } else {
        buf_reset(&a->body);
        if (loss >= 0) {
            audit_members_head(&a->body, "audit_events_lost", audit_now_us());
            jsonw_lit(&a->body, ",\"reason\":\"");
            buf_puts(&a->body, audit_loss_names[loss]);
            jsonw_lit(&a->body, "\",\"count\":");
            jsonw_u64(&a->body, count);
            jsonw_lit(&a->body, ",\"what\":");
            jsonw_string(&a->body, audit_loss_help[loss],
                         strlen(audit_loss_help[loss]));
        } else {
            /* the first event of a rotated-to file */
            audit_members_head(&a->body, "audit_rotated", audit_now_us());
            snprintf(name, sizeof(name), "%s.1", a->cfg.file);
            jsonw_lit(&a->body, ",\"previous_file\":");
            jsonw_text(&a->body, (const uint8_t *) name, strlen(name), 1024);
        }
        if (a->body.failed
            || audit_chain_append(chain, a->key, a->body.data, a->body.len,
                                  &a->batch) != 0)
        {
            a->body.failed = 0;
            return -1;
        }
    }

    l = &a->lines[(*n)++];
    l->end = a->batch.len;
    l->entry = e;
    l->loss = loss;
    l->count = count;
    l->chain = *chain;
    return 0;
}

/* Puts what was not written back at the head of the queue, in order. */

static void
audit_requeue(audit_t *a, entry_t *list)
{
    entry_t  *last;

    for (last = list; last->next; last = last->next) {
        /* the end of the list */
    }

    pthread_mutex_lock(&a->lock);
    last->next = a->head;
    if (a->head == NULL) {
        a->tail = &last->next;
    }
    a->head = list;
    pthread_mutex_unlock(&a->lock);
}

/* The file fails: said at once, then once a minute while it does. */

static void
audit_fail(audit_t *a, const char *what, int err)
{
    double  now = delivery_now();

    atomic_fetch_add(&a->write_errors, 1);

    pthread_mutex_lock(&a->lock);
    snprintf(a->problem, sizeof(a->problem), "audit file %s: %s: %s",
             a->cfg.file, what, strerror(err));
    pthread_mutex_unlock(&a->lock);

    if (!a->failing || now - a->fail_logged >= AUDIT_LOG_EVERY) {
        sidecar_log("error", "audit: %s: %s: %s; audit events are kept in "
                    "memory (up to audit.queue_bytes) and written as soon as "
                    "it can be; /readyz says not ready meanwhile",
                    a->cfg.file, what, strerror(err));
        a->fail_logged = now;
    }

    a->failing = 1;
}

static void
audit_members_head(buf_t *b, const char *event, uint64_t time_us)
{
    jsonw_lit(b, "\"time\":");
    audit_time(b, time_us);
    jsonw_lit(b, ",\"event\":\"");
    buf_puts(b, event);
    jsonw_lit(b, "\"");
}

uint64_t
audit_now_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}
