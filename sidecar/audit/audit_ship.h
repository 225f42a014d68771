/*
 * The audit trail to Loki: the stream {job="obs-audit", host="..."} under
 * the operator's org id, next to the access logs.  The trail's own files
 * are the queue: the shipper reads what the writer committed and hands it
 * to the delivery layer as a never-shed destination ("audit"), so a Loki
 * outage loses nothing and is caught up on.  How far Loki confirmed is
 * kept beside the file (FILE.loki-cursor), so a restart sends from there;
 * Loki drops what it gets twice (the same line at the same time in the same
 * stream).
 */

#ifndef OBS_AUDIT_SHIP_H
#define OBS_AUDIT_SHIP_H

#include <stddef.h>

#include "audit.h"
#include "delivery.h"
#include "exporter.h"

typedef struct audit_ship  audit_ship_t;

/*
 * Starts shipping a's file with the Loki settings of ecfg (URL, auth, TLS,
 * format, batches) to a destination of d; NULL with err empty when there
 * is nothing to ship (no audit file, no Loki URL, audit.loki false), with
 * err set when it cannot.
 */
audit_ship_t *audit_ship_start(audit_t *a, const exporter_config_t *ecfg,
    delivery_t *d, char *err, size_t errlen);

/*
 * Once the writer stopped: hands over what is left of the file, waiting
 * at most seconds (a Loki that takes nothing holds the shipper up).
 */
void audit_ship_flush(audit_ship_t *s, double seconds);

/* After the delivery layer stopped: notes how far Loki got, and frees. */
void audit_ship_stop(audit_ship_t *s);

#endif
