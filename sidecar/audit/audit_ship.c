/* The audit trail to Loki.  See audit_ship.h. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit_ship.h"
#include "loki.h"
#include "log.h"

#define SHIP_READ        (256 * 1024)
#define SHIP_WAIT_MS     200
#define SHIP_JOB         "obs-audit"
#define SHIP_PATH_MAX    4096
#define SHIP_MAX_FILES   1024

/* Where a payload's last event ends: the cursor once Loki confirms it. */
typedef struct {
    uint64_t  items;
    uint64_t  dev, ino, end;
} ship_pending_t;

struct audit_ship {
    audit_t            *a;
    destination_t      *dest;
    loki_format_t       format;
    char               *host;
    char                org[ORG_ID_MAX + 1];
    size_t              batch_bytes;
    double              batch_wait;
    char                cursor_path[SHIP_PATH_MAX];

    pthread_t           thread;
    atomic_int          finishing;      /* the writer stopped: read to end */
    atomic_int          finished;       /* ... and all is handed over */
    atomic_int          stopping;

    /* files of an earlier run the cursor is in, before the writer's */
    int                 old_fds[SHIP_MAX_FILES];
    uint64_t            old_dev[SHIP_MAX_FILES], old_ino[SHIP_MAX_FILES];
    int                 n_old;
    uint64_t            offset;         /* in the file being read */
    uint64_t            dev, ino;

    loki_batch_t        batch;
    buf_t               line;
    buf_t               body;
    double              opened;

    ship_pending_t     *pending;
    size_t              n_pending, cap_pending;
    uint64_t            confirmed;      /* items Loki took, of this run */
    uint64_t            baseline;       /* the destination's count at start */
};

static void *ship_main(void *data);
static void ship_cursor_load(audit_ship_t *s);
static void ship_cursor_save(audit_ship_t *s, const ship_pending_t *at);
static int ship_read(audit_ship_t *s, int fd, uint64_t upto);
static void ship_line(audit_ship_t *s, const char *line, size_t len);
static void ship_seal(audit_ship_t *s);
static void ship_confirm(audit_ship_t *s);
static uint64_t ship_time(const char *line, size_t len);
static double mono_now(void);

audit_ship_t *
audit_ship_start(audit_t *a, const exporter_config_t *ecfg, delivery_t *d,
    char *err, size_t errlen)
{
    const audit_config_t  *acfg = audit_config(a);
    destination_spec_t     spec;
    destination_config_t   cfg;
    destination_stats_t    st;
    audit_ship_t          *s;
    const char            *org;

    err[0] = '\0';

    if (!audit_enabled(a) || !acfg->loki || ecfg->loki.url == NULL) {
        return NULL;
    }

    s = calloc(1, sizeof(audit_ship_t));
    if (s == NULL) {
        snprintf(err, errlen, "audit: out of memory");
        return NULL;
    }

    s->a = a;
    s->format = ecfg->loki_json ? LOKI_JSON : LOKI_PROTOBUF;
    s->host = strdup(ecfg->gateway_host ? ecfg->gateway_host : "");
    org = acfg->org_id ? acfg->org_id
          : ecfg->tenant_header != TENANT_HEADER_NONE ? ecfg->org_id : NULL;
    snprintf(s->org, sizeof(s->org), "%s", org ? org : "");
    s->batch.job = SHIP_JOB;
    s->batch_bytes = ecfg->loki.batch_bytes;
    s->batch_wait = (double) ecfg->loki.batch_wait_ms / 1000;
    snprintf(s->cursor_path, sizeof(s->cursor_path), "%s.loki-cursor",
             acfg->file);

    /* Loki's own settings, without its spool: the file is the audit
       stream's, and nothing is ever shed */
    exporter_destination(ecfg, EXPORTER_LOKI, &spec);
    cfg = ecfg->loki;
    cfg.spool_dir = NULL;
    cfg.spool_bytes = 0;
    cfg.file = NULL;
    spec.cfg = &cfg;
    spec.name = "audit";
    spec.items = "events";
    spec.overflow = OVERFLOW_BLOCK;
    spec.off = 0;

    s->dest = delivery_add(d, &spec, err, errlen);
    if (s->dest == NULL || s->host == NULL) {
        free(s->host);
        free(s);
        return NULL;
    }

    delivery_stats(s->dest, &st);
    s->baseline = st.items_sent + st.items_dropped[DROP_REJECTED];

    ship_cursor_load(s);

    errno = pthread_create(&s->thread, NULL, ship_main, s);
    if (errno != 0) {
        snprintf(err, errlen, "audit: cannot start its shipper: %s",
                 strerror(errno));
        free(s->host);
        free(s);
        return NULL;
    }
    pthread_setname_np(s->thread, "obs-audit-ship");

    sidecar_log("info", "audit: shipping %s to %s as {job=\"%s\"}%s%s",
                acfg->file, ecfg->loki.url, SHIP_JOB,
                s->org[0] ? " under X-Scope-OrgID " : "", s->org);
    return s;
}

void
audit_ship_flush(audit_ship_t *s, double seconds)
{
    double  until = mono_now() + seconds;

    if (s == NULL) {
        return;
    }

    atomic_store(&s->finishing, 1);
    while (!atomic_load(&s->finished) && mono_now() < until) {
        usleep(20000);
    }
}

void
audit_ship_stop(audit_ship_t *s)
{
    int  i;

    if (s == NULL) {
        return;
    }

    atomic_store(&s->finishing, 1);
    atomic_store(&s->stopping, 1);
    pthread_join(s->thread, NULL);

    for (i = 0; i < s->n_old; i++) {
        close(s->old_fds[i]);
    }
    loki_free(&s->batch);
    buf_free(&s->line);
    buf_free(&s->body);
    free(s->pending);
    free(s->host);
    free(s);
}

/*
 * Reads the files in order (an earlier run's that the cursor points into,
 * then the writer's), an event a Loki entry, and seals batches by size and
 * age.  The writer's files are read up to what it committed.
 */

static void *
ship_main(void *data)
{
    audit_ship_t     *s = data;
    audit_segment_t   seg;
    int               stopped, i, rc;

    /* an earlier run's files first, from the cursor on */
    for (i = 0; i < s->n_old && !atomic_load(&s->stopping); i++) {
        if (s->old_ino[i] != s->ino) {
            s->dev = s->old_dev[i];
            s->ino = s->old_ino[i];
            s->offset = 0;
        }
        (void) ship_read(s, s->old_fds[i], UINT64_MAX);
    }

    for ( ;; ) {
        ship_confirm(s);

        rc = audit_ship_wait(s->a, s->offset, &seg, SHIP_WAIT_MS, &stopped);

        if (rc == 0) {
            if (seg.ino != s->ino || seg.dev != s->dev) {
                s->dev = seg.dev;
                s->ino = seg.ino;
                s->offset = 0;
            }

            if (seg.committed > s->offset) {
                (void) ship_read(s, seg.fd, seg.committed);
            }

            if (seg.done && s->offset >= seg.committed) {
                audit_ship_next(s->a);
                continue;
            }
        }

        if (s->batch.items
            && (s->batch.bytes >= s->batch_bytes
                || mono_now() - s->opened >= s->batch_wait
                || atomic_load(&s->finishing)))
        {
            ship_seal(s);
        }

        if (atomic_load(&s->finishing) && stopped && s->batch.items == 0) {
            atomic_store(&s->finished, 1);
        }

        if (atomic_load(&s->stopping)) {
            ship_seal(s);
            ship_confirm(s);
            break;
        }
    }

    return NULL;
}

/* Reads fd from the offset up to upto (or its end), whole lines only. */

static int
ship_read(audit_ship_t *s, int fd, uint64_t upto)
{
    char     *buf, *p, *end, *nl;
    ssize_t   got;
    size_t    want;

    buf = malloc(SHIP_READ);
    if (buf == NULL) {
        return -1;
    }

    while (s->offset < upto && !atomic_load(&s->stopping)) {
        want = upto - s->offset < SHIP_READ ? (size_t) (upto - s->offset)
                                            : SHIP_READ;
        got = pread(fd, buf, want, (off_t) s->offset);
        if (got <= 0) {
            break;
        }

        p = buf;
        end = buf + got;
        while ((nl = memchr(p, '\n', (size_t) (end - p))) != NULL) {
            ship_line(s, p, (size_t) (nl - p));
            s->offset += (uint64_t) (nl + 1 - p);
            p = nl + 1;

            if (s->batch.bytes >= s->batch_bytes) {
                ship_seal(s);
            }
        }

        if (p == buf) {
            break;              /* no whole line: wait for the rest */
        }
    }

    free(buf);
    return 0;
}

static void
ship_line(audit_ship_t *s, const char *line, size_t len)
{
    loki_entry_t  e;

    buf_reset(&s->line);
    buf_append(&s->line, line, len);

    e.service = "";
    e.level = "";
    e.line = &s->line;
    e.time_ns = ship_time(line, len);
    e.trace_id = NULL;
    e.tenant = "";

    if (s->batch.items == 0) {
        s->opened = mono_now();
        snprintf(s->batch.org, sizeof(s->batch.org), "%s", s->org);
    }

    if (s->line.failed || loki_add(&s->batch, s->format, &e) != 0) {
        s->line.failed = 0;
        ship_seal(s);
        s->opened = mono_now();
        snprintf(s->batch.org, sizeof(s->batch.org), "%s", s->org);
        if (loki_add(&s->batch, s->format, &e) != 0) {
            /* only memory can be short: Loki will miss this event, the
               file has it; a restart sends it again */
            delivery_lost(s->dest, 1);
        }
    }
}

/* Hands the batch to the delivery layer (waiting while its queue is
   full: never shed) and notes where its last event ends. */

static void
ship_seal(audit_ship_t *s)
{
    payload_t       *p;
    ship_pending_t  *q;
    size_t           items = s->batch.items, cap;

    if (items == 0) {
        return;
    }

    buf_reset(&s->body);
    loki_body(&s->batch, s->format, s->host, &s->body);

    p = s->body.failed ? NULL
        : payload_compress(s->format == LOKI_JSON ? COMPRESS_GZIP
                                                  : COMPRESS_SNAPPY,
                           s->body.data, s->body.len, items, s->org);
    s->body.failed = 0;

    if (p == NULL) {
        delivery_lost(s->dest, items);
        return;
    }

    if (s->n_pending == s->cap_pending) {
        cap = s->cap_pending ? 2 * s->cap_pending : 16;
        q = realloc(s->pending, cap * sizeof(ship_pending_t));
        if (q == NULL) {
            payload_free(p);
            delivery_lost(s->dest, items);
            return;
        }
        s->pending = q;
        s->cap_pending = cap;
    }

    q = &s->pending[s->n_pending++];
    q->items = items;
    q->dev = s->dev;
    q->ino = s->ino;
    q->end = s->offset;

    delivery_submit(s->dest, p);
}

/* Moves the cursor past the payloads Loki confirmed (or refused for
   good, as a 4xx: sending them again would not help). */

static void
ship_confirm(audit_ship_t *s)
{
    destination_stats_t  st;
    uint64_t             done;
    size_t               k = 0;

    if (s->n_pending == 0) {
        return;
    }

    delivery_stats(s->dest, &st);
    done = st.items_sent + st.items_dropped[DROP_REJECTED] - s->baseline;

    while (k < s->n_pending && s->confirmed + s->pending[k].items <= done) {
        s->confirmed += s->pending[k].items;
        k++;
    }

    if (k == 0) {
        return;
    }

    ship_cursor_save(s, &s->pending[k - 1]);
    memmove(s->pending, s->pending + k,
            (s->n_pending - k) * sizeof(ship_pending_t));
    s->n_pending -= k;
}

/*
 * The cursor of an earlier run: "<dev> <ino> <offset>".  In the writer's
 * current file, reading starts there; in a rotated file, that file and the
 * newer rotated ones are read first.  No cursor (or a file no longer
 * there): the current file from its start.
 */

static void
ship_cursor_load(audit_ship_t *s)
{
    const audit_config_t  *cfg = audit_config(s->a);
    audit_segment_t        seg;
    struct stat            st;
    FILE                  *f;
    char                   path[SHIP_PATH_MAX];
    unsigned long long     dev, ino, off;
    long                   k, found = 0;
    int                    stopped, fd;

    if (audit_ship_wait(s->a, UINT64_MAX, &seg, 0, &stopped) == 0) {
        s->dev = seg.dev;
        s->ino = seg.ino;
    }

    f = fopen(s->cursor_path, "r");
    if (f == NULL) {
        return;
    }
    if (fscanf(f, "%llu %llu %llu", &dev, &ino, &off) != 3) {
        fclose(f);
        sidecar_log("warn", "audit: %s cannot be read: shipping the current "
                    "file from its start", s->cursor_path);
        return;
    }
    fclose(f);

    if (dev == s->dev && ino == s->ino) {
        s->offset = off;
        return;
    }

    for (k = 1; k <= cfg->rotate_files && k < SHIP_MAX_FILES; k++) {
        snprintf(path, sizeof(path), "%s.%ld", cfg->file, k);
        if (stat(path, &st) == 0 && (uint64_t) st.st_dev == dev
            && (uint64_t) st.st_ino == ino)
        {
            found = k;
            break;
        }
    }

    if (found == 0) {
        sidecar_log("warn", "audit: the file %s points into is gone: "
                    "shipping the current file from its start",
                    s->cursor_path);
        return;
    }

    /* oldest first; a file that is also the writer's is read there */
    for (k = found; k >= 1; k--) {
        snprintf(path, sizeof(path), "%s.%ld", cfg->file, k);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) != 0
            || ((uint64_t) st.st_ino == s->ino
                && (uint64_t) st.st_dev == s->dev))
        {
            if (fd >= 0) {
                close(fd);
            }
            continue;
        }
        s->old_fds[s->n_old] = fd;
        s->old_dev[s->n_old] = (uint64_t) st.st_dev;
        s->old_ino[s->n_old] = (uint64_t) st.st_ino;
        s->n_old++;
    }

    s->dev = dev;
    s->ino = ino;
    s->offset = off;
}

/* Written aside and renamed: a crash leaves the old cursor or the new. */

static void
ship_cursor_save(audit_ship_t *s, const ship_pending_t *at)
{
    char   tmp[SHIP_PATH_MAX + 8];
    FILE  *f;
    int    ok;

    snprintf(tmp, sizeof(tmp), "%s.tmp", s->cursor_path);
    f = fopen(tmp, "w");
    if (f == NULL) {
        return;
    }

    ok = fprintf(f, "%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", at->dev,
                 at->ino, at->end) > 0;
    ok = (fclose(f) == 0) && ok;

    if (!ok || rename(tmp, s->cursor_path) != 0) {
        unlink(tmp);
    }
}

/*
 * The entry's time: the event's own ("time" is the line's second member,
 * written by audit.c as "YYYY-MM-DDTHH:MM:SS.uuuuuuZ"), so that an event
 * sent twice is the same entry to Loki.  Now, if it cannot be read.
 */

static uint64_t
ship_time(const char *line, size_t len)
{
    const char       *t;
    struct tm         tm;
    struct timespec   ts;
    unsigned          us;
    char              text[32];

    t = memchr(line, ',', len < 40 ? len : 40);
    if (t && (size_t) (line + len - t) > 40
        && memcmp(t, ",\"time\":\"", 9) == 0)
    {
        memcpy(text, t + 9, 27);
        text[27] = '\0';
        memset(&tm, 0, sizeof(tm));
        if (sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d.%6uZ", &tm.tm_year,
                   &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                   &tm.tm_sec, &us) == 7)
        {
            tm.tm_year -= 1900;
            tm.tm_mon -= 1;
            return ((uint64_t) timegm(&tm) * 1000000 + us) * 1000;
        }
    }

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000000000 + (uint64_t) ts.tv_nsec;
}

static double
mono_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}
