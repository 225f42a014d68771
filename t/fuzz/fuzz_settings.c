/*
 * libFuzzer target: arbitrary JSON through the settings engine with the
 * exporter's tables (every row type, the custom headers and endpoint
 * readers, nested tables).  A value is either applied or refused with a
 * message; the result must pass the copy and free the exporter uses, and
 * a refused setting must leave a message naming something.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "exporter_config.h"
#include "settings.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    exporter_config_t  cfg, copy;
    json_t            *root;
    char               err[512] = "";

    root = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES,
                      NULL);
    if (root == NULL) {
        return 0;
    }

    exporter_config_defaults(&cfg);
    if (settings_json(exporter_settings, NULL, &cfg, root, err, sizeof(err))
        != 0 && err[0] == '\0')
    {
        abort();                /* refused without saying why */
    }
    json_decref(root);

    if (exporter_config_copy(&copy, &cfg) == 0
        && (copy.loki.n_headers != cfg.loki.n_headers
            || copy.otlp.n_headers != cfg.otlp.n_headers))
    {
        abort();
    }
    exporter_config_free(&copy);
    exporter_config_free(&cfg);
    return 0;
}
