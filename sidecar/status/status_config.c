/* Settings of the status page.  See status_config.h. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status_config.h"

#define S  status_config_t

const setting_t  status_settings[] = {
    { "availability_objective", SETTING_NUMBER, offsetof(S, availability),
      0.5, 0.999999, NULL, NULL, "/status: the availability SLO (share of "
      "requests without a 5xx; alert-rules/generate.py's)", NULL, NULL },
    { "latency_objective", SETTING_NUMBER, offsetof(S, latency_objective),
      0.5, 0.999999, NULL, NULL, "/status: the latency SLO (share of "
      "requests faster than the threshold)", NULL, NULL },
    { "latency_threshold_seconds", SETTING_NUMBER,
      offsetof(S, latency_threshold), 0.001, 3600, NULL, NULL,
      "/status: the latency SLO's threshold (best a duration bucket bound)",
      NULL, NULL },
    { "window_seconds", SETTING_LONG, offsetof(S, window), 10, 900, NULL,
      NULL, "/status: rates and quantiles cover the last window to twice "
      "that", NULL, NULL },
    { "grafana_url", SETTING_URL, offsetof(S, grafana_url), 0, 0,
      "OBS_SIDECAR_GRAFANA_URL", NULL, "/status links to the dashboards "
      "under this Grafana address", NULL, NULL },
    { "trace_url", SETTING_URL, offsetof(S, trace_url), 0, 0,
      "OBS_SIDECAR_TRACE_URL", NULL, "/status links exemplars to this "
      "address, {trace_id} replaced (e.g. Jaeger's http://host:16686/trace/"
      "{trace_id})", NULL, NULL },
    SETTINGS_END
};

#undef S

void
status_config_defaults(status_config_t *c)
{
    memset(c, 0, sizeof(*c));
    c->availability = 0.999;
    c->latency_objective = 0.99;
    c->latency_threshold = 0.5;
    c->window = 60;
}

int
status_config_check(const status_config_t *c, char *err, size_t errlen)
{
    if (c->trace_url && strstr(c->trace_url, "{trace_id}") == NULL) {
        snprintf(err, errlen, "config: \"status.trace_url\" must contain "
                 "{trace_id}");
        return -1;
    }

    return 0;
}

void
status_config_free(status_config_t *c)
{
    free(c->grafana_url);
    free(c->trace_url);
    c->grafana_url = NULL;
    c->trace_url = NULL;
}
