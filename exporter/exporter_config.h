/*
 * The exporters' settings (settings.h rows): the top-level keys they own
 * (logs_file, logs, exporter_threads, ...), one table per sink ("loki",
 * "otlp"), built from the rows every destination shares
 * (destination_config.h).
 */

#ifndef OBS_EXPORTER_CONFIG_H
#define OBS_EXPORTER_CONFIG_H

#include <stddef.h>

#include "destination_config.h"
#include "exporter.h"
#include "settings.h"

/* The names of tenant_header_t, for every table with a tenant_header. */
extern const char *const  exporter_tenant_modes[];

/* Top-level rows, relative to exporter_config_t; "loki" and "otlp" nest. */
extern const setting_t  exporter_settings[];

/* Cross-setting rules a row cannot say ("fixed" needs "org_id", ...). */
int exporter_config_check(const exporter_config_t *cfg, char *err,
    size_t errlen);

/* Deep-copies src into dst (dst is overwritten); -1 when out of memory. */
int exporter_config_copy(exporter_config_t *dst,
    const exporter_config_t *src);

#endif
