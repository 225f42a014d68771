/*
 * Rules for values that leave the gateway as labels or tenant headers,
 * shared by every consumer so that one rule cannot drift from another.
 * Today: the X-Scope-OrgID rule of every destination (Loki, remote-write,
 * and any later one); the tenant and route rules are to join it here.
 */

#ifndef OBS_LABEL_RULES_H
#define OBS_LABEL_RULES_H

#include <stddef.h>

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
