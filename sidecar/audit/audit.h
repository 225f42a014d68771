/*
 * The audit trail (issue 22): who did what to which tenant, and every
 * security decision of the gateway and of this sidecar, in an append-only
 * file of JSON lines chained by HMAC (audit_chain.h), rotated by size with
 * the chain going on across files, and also shipped to Loki as the stream
 * {job="obs-audit"} (audit_ship.c).  The file is the record of truth.
 *
 * Events are never shed: producers (ingest, the main thread) hand them to
 * a queue of their own, which one thread ("obs-audit") writes to the file;
 * they never go through the exporters' ring.  When the file cannot be
 * written (disk full, permissions) the sidecar says so at once (the log,
 * /readyz not ready, obs_audit_writable 0), keeps the events queued and
 * retries every second; only past audit.queue_bytes is an event lost, and
 * then it is counted (obs_audit_events_lost_total{reason}) and the count
 * is written to the trail as soon as the file takes events again.
 */

#ifndef OBS_AUDIT_H
#define OBS_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct {
    char    *file;                  /* NULL: no audit trail */
    char    *key;                   /* the chain's key (a file's line) */
    size_t   rotate_bytes;          /* a file this large is rotated */
    long     rotate_files;          /* rotated files kept: FILE.1 ... */
    size_t   queue_bytes;           /* events waiting, at most */
    int      loki;                  /* also to Loki, where loki.url is */
    char    *org_id;                /* its X-Scope-OrgID (or loki.org_id) */
} audit_config_t;

/* Where an event can be lost (proto/obs/v1/audit.def). */
typedef enum {
#define OBS_AUDIT_LOSS(id, help)  AUDIT_LOST_##id,
#include "obs/v1/audit.def"
    AUDIT_LOSSES
} audit_loss_t;

typedef struct audit  audit_t;

extern const char *const  audit_loss_names[AUDIT_LOSSES];

/* Fills cfg with the defaults. */
void audit_config_defaults(audit_config_t *cfg);

/* Frees what cfg holds. */
void audit_config_free(audit_config_t *cfg);

/*
 * Opens the trail: locks FILE (FILE.lock: one writer), cuts a line its last
 * writer left half written, checks its last event under the key and goes on
 * from it (or, when that does not verify, rotates the file and starts a new
 * chain), starts the writer thread.  Without cfg->file the trail only
 * counts what it is asked to keep.  NULL with err set when it cannot.
 */
audit_t *audit_open(const audit_config_t *cfg, char *err, size_t errlen);

/*
 * For --check-config: what opening would meet that the settings alone do
 * not say (the file not writable, another sidecar writing it); creates
 * nothing.  -1 with err set.
 */
int audit_check(const audit_config_t *cfg, char *err, size_t errlen);

/* Whether there is a file to write to. */
int audit_enabled(const audit_t *a);

/*
 * Queues an event (any thread; never waits): its members (JSON text, no
 * braces) after "time" (time_us, Unix microseconds) and "event".  Without a
 * file an event the module made (requested) is counted lost
 * (not_configured); the sidecar's own are not made at all.
 */
void audit_event(audit_t *a, const char *event, uint64_t time_us,
    const char *members, size_t len, int requested);

/* Counts n events lost for why; the trail records it. */
void audit_lost(audit_t *a, audit_loss_t why, uint64_t n);

/* NULL while the file takes events; else why not (for /readyz). */
const char *audit_problem(audit_t *a);

/*
 * Stops taking events, writes what is queued (trying until drain_seconds
 * when the file fails; what is left is counted lost at shutdown) and stops
 * the writer.  The shipper goes on until audit_free.
 */
void audit_stop(audit_t *a, double drain_seconds);

/* Stops the shipper (after the delivery layer stopped) and frees. */
void audit_free(audit_t *a);

/* Wall-clock time, Unix microseconds. */
uint64_t audit_now_us(void);

/* Appends RFC 3339 UTC with microseconds, quoted. */
void audit_time(buf_t *b, uint64_t unix_us);

/* --- for the shipper (audit_ship.c) --- */

/*
 * A file the writer has written: a descriptor of its own to read it by,
 * and how far whole events reach (the current file grows).
 */
typedef struct {
    int       fd;
    uint64_t  dev, ino;
    uint64_t  committed;            /* bytes of whole events */
    int       done;                 /* rotated: it will not grow */
} audit_segment_t;

/*
 * The oldest file the shipper has not finished: waits up to wait_ms until
 * it holds more than offset bytes of whole events, is rotated away or the
 * writer stopped (*stopped).  0 with s filled, -1 when there is none.
 */
int audit_ship_wait(audit_t *a, uint64_t offset, audit_segment_t *s,
    int wait_ms, int *stopped);

/* The shipper is done with the oldest file (rotated away, read whole). */
void audit_ship_next(audit_t *a);

/* The settings the trail runs with. */
const audit_config_t *audit_config(const audit_t *a);

#endif
