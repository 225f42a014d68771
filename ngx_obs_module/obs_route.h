/*
 * Label hygiene for the gateway: route templates from raw paths and tenant
 * ids from request data.  Plain C so that both can be unit-tested alone.
 */

#ifndef OBS_ROUTE_H
#define OBS_ROUTE_H

#include <stddef.h>

#include "label_rules.h"


/* the rules every consumer shares: common/label_rules.h */
#define OBS_ROUTE_MAX_LEN    ROUTE_MAX_LEN
#define OBS_TENANT_MAX_LEN   TENANT_MAX_LEN

#define OBS_TENANT_NONE      TENANT_NONE
#define OBS_TENANT_INVALID   TENANT_INVALID


/*
 * Writes path to out (at most OBS_ROUTE_MAX_LEN bytes) with every segment
 * that looks like an identifier (numeric, UUID, long hex, long token)
 * replaced by "{id}"; the query string, if any, is left out.  Returns the
 * length written.
 */
size_t obs_route_normalize(const char *path, size_t len, char *out);

/*
 * Returns the tenant label for a raw value: the value itself when it is
 * 1..64 bytes of [A-Za-z0-9._:-], OBS_TENANT_NONE when empty, and
 * OBS_TENANT_INVALID otherwise, also for a value a client may not give
 * (tenant_reserved(): none, invalid, __overflow__).  *out_len receives its
 * length.
 */
const char *obs_tenant_label(const char *value, size_t len, size_t *out_len);

#endif /* OBS_ROUTE_H */
