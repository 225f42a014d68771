/*
 * Rules for values that leave the gateway as labels or tenant headers,
 * shared by every consumer (the module, the sidecar's aggregation, every
 * destination) so that one rule cannot drift from another: the labels only
 * the gateway gives, what each consumer makes of them, and the
 * X-Scope-OrgID rule of every destination.  Plain C: the module includes
 * this header (the inline rules), the sidecar links label_rules.c too.
 */

#ifndef OBS_LABEL_RULES_H
#define OBS_LABEL_RULES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The longest route template and tenant id the module sends. */
#define ROUTE_MAX_LEN       256
#define TENANT_MAX_LEN      64

/*
 * Tenant labels the gateway gives.  "none": the request named no tenant;
 * "invalid": it named one no label may be (grammar, length, or one of
 * these); "unverified": obs_jwt found no valid token ($obs_jwt_tenant);
 * LABEL_OVERFLOW_TEXT: the sidecar's, for a value past a cap.
 */
#define TENANT_NONE         "none"
#define TENANT_INVALID      "invalid"
#define TENANT_UNVERIFIED   "unverified"
#define LABEL_OVERFLOW_TEXT "__overflow__"

/*
 * Whether a tenant value taken from a request is one the module refuses
 * from a client (none, invalid, __overflow__): those would pass for the
 * gateway's own verdicts.  "unverified" is not among them: obs_tenant
 * reads $obs_jwt_tenant like any other value.  Inline: the module asks for
 * every new tenant value.
 */
static inline int
tenant_reserved(const char *value, size_t len)
{
    switch (len) {
    case sizeof(TENANT_NONE) - 1:
        return memcmp(value, TENANT_NONE, len) == 0;
    case sizeof(TENANT_INVALID) - 1:
        return memcmp(value, TENANT_INVALID, len) == 0;
    case sizeof(LABEL_OVERFLOW_TEXT) - 1:
        return memcmp(value, LABEL_OVERFLOW_TEXT, len) == 0;
    default:
        return 0;
    }
}

/*
 * Whether a tenant label is one of the bounded set the gateway gives
 * (none, invalid, unverified): never counted against max_tenants, so that
 * requests without a (valid) tenant are never hidden under __overflow__.
 * Inline: the sidecar asks for every record.
 */
static inline int
tenant_from_gateway(const char *label)
{
    switch (label[0]) {
    case 'n':
        return strcmp(label, TENANT_NONE) == 0;
    case 'i':
        return strcmp(label, TENANT_INVALID) == 0;
    case 'u':
        return strcmp(label, TENANT_UNVERIFIED) == 0;
    default:
        return 0;
    }
}

/*
 * Whether a tenant label stands for no tenant at all (empty, none,
 * __overflow__): series and lines under it belong to the operator, not to
 * a tenant's X-Scope-OrgID.
 */
int tenant_is_nobody(const char *label);

/* Bytes of a label value, sanitised (label_sanitize). */
#define LABEL_MAX_LEN       256
#define LABEL_BUF_LEN       (LABEL_MAX_LEN + 4)

/*
 * Copies raw into out (LABEL_BUF_LEN bytes) as NUL-terminated valid UTF-8:
 * invalid sequences and NUL become U+FFFD; cut to LABEL_MAX_LEN bytes on a
 * character boundary; control characters but newline become '?'.  Returns
 * the length.  Every label and stream label is this, so that two values
 * one destination keeps apart are never one value in another's caps.
 */
size_t label_sanitize(const uint8_t *raw, size_t len, char *out);

/*
 * What the sidecar's caps made of a record's labels, handed with each
 * datagram from the aggregation to the exporters: a service or tenant that
 * the metrics count as LABEL_OVERFLOW_TEXT is that too as a Loki stream
 * label, a per-tenant X-Scope-OrgID and an OTLP log record's service, so
 * no destination holds a value the caps keep out of /metrics.  Two bits a
 * record, four records a byte, in datagram order (rows, then columns).
 */
#define LABEL_OVER_SERVICE  1u
#define LABEL_OVER_TENANT   2u
#define LABEL_OVER_BYTES(records)  (((size_t) (records) + 3) / 4)

static inline void
label_over_set(uint8_t *over, size_t record, unsigned bits)
{
    over[record / 4] |= (uint8_t) ((bits & 3u) << (record % 4 * 2));
}

static inline unsigned
label_over_get(const uint8_t *over, size_t record)
{
    return over ? (over[record / 4] >> (record % 4 * 2)) & 3u : 0;
}

/* The longest X-Scope-OrgID any destination sends (Cortex/Mimir/Loki's). */
#define ORG_ID_MAX  150

/*
 * Whether s may be sent as an X-Scope-OrgID: 1 to ORG_ID_MAX of
 * [A-Za-z0-9!-_.*'()], and neither "." nor ".." (Mimir, Loki and Cortex
 * refuse those, and would read them as paths).  Anything else (empty,
 * "/", spaces, CR/LF, non-ASCII) is refused: whoever writes to the ingest
 * socket chooses a tenant, and a header must never be injected.
 */
int org_id_valid(const char *s);

#endif
