/* The sidecar's own counters, shared by every thread. */

#ifndef OBS_STATS_H
#define OBS_STATS_H

#include <stdatomic.h>

/* Why a datagram was refused: proto/obs/v1/decode_errors.def. */
typedef enum {
#define OBS_DECODE_ERROR(ID, reason)  DECODE_##ID,
#include "obs/v1/decode_errors.def"
    DECODE_REASONS
} decode_reason_t;

/* Why the module dropped records: proto/obs/v1/drop_reasons.def. */
typedef enum {
#define OBS_MODULE_DROP(ID, reason, field)  MODULE_DROP_##ID,
#include "obs/v1/drop_reasons.def"
    MODULE_DROP_REASONS
} module_drop_t;

typedef enum {
    OVERFLOW_TENANT = 0,
    OVERFLOW_ROUTE,
    OVERFLOW_UPSTREAM,
    OVERFLOW_SERIES,
    OVERFLOW_SERVICE,
    OVERFLOW_KINDS
} overflow_t;

/* Results of the module's JWT checks, in BatchHeader's order (40..50). */
typedef enum {
    JWT_VALID = 0,
    JWT_MISSING,
    JWT_MALFORMED,
    JWT_ALG_NOT_ALLOWED,
    JWT_UNKNOWN_KEY,
    JWT_BAD_SIGNATURE,
    JWT_EXPIRED,
    JWT_NOT_YET_VALID,
    JWT_BAD_ISSUER,
    JWT_BAD_AUDIENCE,
    JWT_MISSING_CLAIM,
    JWT_RESULTS
} jwt_result_t;

typedef enum {
    HTTP_CLOSED_DEADLINE = 0,   /* a request took longer than allowed */
    HTTP_CLOSED_BUSY,           /* waited for a request while others queued */
    HTTP_CLOSED_REASONS
} http_closed_t;

typedef struct {
    atomic_ullong  datagrams_received;
    atomic_ullong  records_received;
    atomic_ullong  decode_errors[DECODE_REASONS];
    atomic_ullong  module_dropped[MODULE_DROP_REASONS];
    atomic_ullong  datagrams_lost;
    atomic_ullong  overflow[OVERFLOW_KINDS];
    atomic_ullong  series_expired;
    atomic_ullong  store_nomem;
    atomic_ullong  scrapes;
    atomic_ullong  http_scrapes_refused;
    atomic_ullong  reloads;
    atomic_ullong  reload_failures;
    atomic_ullong  jwt_tokens[JWT_RESULTS];
    atomic_ullong  jwt_cache_hits;
    atomic_ullong  http_closed[HTTP_CLOSED_REASONS];
} stats_t;

extern stats_t  obs_stats;

extern const char *const  decode_reason_names[DECODE_REASONS];
extern const char *const  module_drop_names[MODULE_DROP_REASONS];
extern const char *const  overflow_names[OVERFLOW_KINDS];
extern const char *const  jwt_result_names[JWT_RESULTS];
extern const char *const  http_closed_names[HTTP_CLOSED_REASONS];

#define STATS_INC(field)      atomic_fetch_add(&obs_stats.field, 1)
#define STATS_ADD(field, n)   atomic_fetch_add(&obs_stats.field, (n))

#endif
