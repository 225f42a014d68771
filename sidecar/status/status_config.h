/*
 * Settings of the status page (/status, /status.json): the SLO objectives
 * its colours are judged against (the alert rules' own, by default), the
 * window of its rates and quantiles, and where its links lead.
 */

#ifndef OBS_STATUS_CONFIG_H
#define OBS_STATUS_CONFIG_H

#include <stddef.h>

#include "settings.h"

typedef struct {
    double   availability;          /* objective: share of non-5xx */
    double   latency_objective;     /* objective: share faster than ... */
    double   latency_threshold;     /* ... this many seconds */
    long     window;                /* seconds of rates and quantiles */
    char    *grafana_url;           /* Grafana's base address, or NULL */
    char    *trace_url;             /* a trace's address with {trace_id} */
} status_config_t;

/* The rows of the "status" object (config.c nests them). */
extern const setting_t  status_settings[];

/* Sets the defaults: alert-rules/generate.py's objectives, 60 s. */
void status_config_defaults(status_config_t *c);

/* What the rows cannot say alone; err names the setting. */
int status_config_check(const status_config_t *c, char *err, size_t errlen);

/* Frees the strings. */
void status_config_free(status_config_t *c);

#endif
