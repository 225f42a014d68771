/*
 * The events of the audit trail, as JSON members (audit.h writes and
 * chains them):
 *
 *   request          a request nginx audited (obs_audit) or refused for
 *                    its token (obs_jwt require): who, what, the decision
 *   ingest_refused   a datagram refused as unauthenticated, replayed,
 *                    stale or sequence_gap: who sent it, which worker it
 *                    named
 *   nginx_config     a configuration an nginx loaded: its digest (as
 *                    "nginx -T | sha256sum"), nginx's and the module's
 *                    versions
 *   sidecar_start, sidecar_reload, sidecar_reload_failed, sidecar_stop
 *
 * and the ingest thread's watch over them: what the module could not keep
 * (counted lost), the gaps in each worker's numbering of its events, each
 * nginx's configurations, and a bound on refusal events (a flood of forged
 * datagrams is told as counts, not as a flood of lines).
 */

#ifndef OBS_AUDIT_EVENTS_H
#define OBS_AUDIT_EVENTS_H

#include <stdint.h>
#include <sys/socket.h>

#include "audit.h"
#include "expo.h"
#include "obs/v1/record.pb-c.h"

typedef struct audit_watch  audit_watch_t;

/* The ingest thread's watch over a's events; NULL when out of memory. */
audit_watch_t *audit_watch_new(audit_t *a);

/* Frees it, telling the refusals it held back. */
void audit_watch_free(audit_watch_t *w);

/*
 * An accepted datagram's header: the module's audit events never admitted
 * (counted lost by reason), and the configuration its nginx runs (a new
 * one, or one of an nginx not seen before, is an nginx_config event).
 */
void audit_watch_header(audit_watch_t *w, const Obs__V1__BatchHeader *h);

/*
 * A record with an audit event, from the worker of h: a gap before its
 * sequence number (*next: the one expected, 0 when not known) is counted
 * lost, then the event is queued.
 */
void audit_watch_record(audit_watch_t *w, const Obs__V1__Record *r,
    const Obs__V1__BatchHeader *h, uint64_t *next);

/*
 * A datagram refused for reason (decode_reason_t: unauthenticated,
 * replayed, stale or sequence_gap; others are ignored) from the sender
 * address given; h is its header when it was read (the worker it names).
 * At most a few events a second per reason: the rest are counted into the
 * next one ("also_refused").
 */
void audit_watch_refused(audit_watch_t *w, int reason,
    const struct sockaddr *from, socklen_t fromlen,
    const Obs__V1__BatchHeader *h);

/* obs_audit_* on /metrics (a metrics source; data is the audit_t). */
void audit_metrics(expo_writer_t *w, void *data);

/* The sidecar's own events; changed/restart: " key key ..." lists. */
void audit_sidecar_start(audit_t *a, const char *version,
    const char *config_path);
void audit_sidecar_reload(audit_t *a, const char *config_path,
    const char *changed, const char *restart);
void audit_sidecar_reload_failed(audit_t *a, const char *error);
void audit_sidecar_stop(audit_t *a, unsigned signo);

#endif
