/*
 * Ingest: the sockets records arrive on, and the decoding of each datagram
 * (an obs.v1.Batch) into records handed to the aggregator.
 */

#ifndef OBS_INGEST_H
#define OBS_INGEST_H

#include <poll.h>
#include <stddef.h>

#include "aggregate.h"
#include "audit.h"
#include "config.h"

typedef struct ingest  ingest_t;

/*
 * Called with every datagram whose records were aggregated, how many it
 * held and which of their labels the caps counted as "__overflow__" (over:
 * LABEL_OVER_BYTES(records) bytes, common/label_rules.h; NULL when none):
 * the exporters take a copy (or count them shed) and decode it again,
 * once, on their own threads, so that ingest does only what the metrics
 * need, and their streams take the metrics' verdict.
 */
typedef void (*ingest_datagram_pt)(const uint8_t *bytes, size_t len,
    size_t records, const uint8_t *over, void *data);

/*
 * Checks, without binding, what binding every configured address would
 * meet: unix paths free or stale sockets only, hosts that resolve, the
 * socket group known.  For --check-config; on failure err names it.
 */
int ingest_check(const config_t *cfg, char *err, size_t errlen);

/*
 * Binds every configured address; on failure err names it.  A unix path
 * is replaced only when it is a stale socket nobody receives on; the socket
 * is made mode 0660 in cfg->ingest_group.
 */
ingest_t *ingest_open(const config_t *cfg, aggregator_t *agg, char *err,
    size_t errlen);

/* Takes what a reload may change (the skew allowed); same thread only. */
void ingest_configure(ingest_t *in, const config_t *cfg);

/*
 * Hands the audit trail what ingest sees: records' audit events (never
 * through the exporters), refused datagrams, nginx's configurations and
 * what the module could not keep.  -1 when out of memory.
 */
int ingest_set_audit(ingest_t *in, audit_t *a);

/* Registers a function to see every aggregated datagram. */
void ingest_set_datagram_hook(ingest_t *in, ingest_datagram_pt hook,
    void *data);

/* Fills pollfds for the sockets; returns how many. */
int ingest_pollfds(ingest_t *in, struct pollfd *fds, int max);

/*
 * Reads the datagrams waiting on socket i without blocking, at most a
 * bounded number; returns 1 when more may be waiting.
 */
int ingest_drain(ingest_t *in, int i);

/* Decodes and aggregates one datagram (also used by tests and benchmarks). */
void ingest_datagram(ingest_t *in, const uint8_t *data, size_t len);

/*
 * Stops taking records: nginx's later sends on unix sockets fail (and its
 * records wait for the next sidecar) instead of queueing datagrams that
 * nobody would read; what is already queued is read.
 */
void ingest_stop(ingest_t *in);

/* Closes the sockets and removes unix socket files. */
void ingest_close(ingest_t *in);

#endif
