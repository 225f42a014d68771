/*
 * libFuzzer target: arbitrary JSON through the settings engine with the
 * exporter's tables (every row type, the custom headers and endpoint
 * readers, nested tables).  A value is either applied or refused with a
 * message; the result must pass the copy and free the exporter uses, and
 * a refused setting must leave a message naming something.  The same
 * bytes are also read as OTEL_EXPORTER_OTLP_HEADERS: every header taken
 * must pass the one header rule (a token, then a value without control
 * characters), and a refusal must say why.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "destination_config.h"
#include "exporter_config.h"
#include "settings.h"

static void
header_list(const uint8_t *data, size_t size)
{
    destination_config_t  dc;
    char                 *text, *colon, err[512] = "";
    int                   i;

    text = malloc(size + 1);
    if (text == NULL) {
        return;
    }
    memcpy(text, data, size);
    text[size] = '\0';

    memset(&dc, 0, sizeof(dc));
    if (destination_add_header_list(&dc, text, "H", err, sizeof(err)) != 0
        && err[0] == '\0')
    {
        abort();
    }
    for (i = 0; i < dc.n_headers; i++) {
        colon = strstr(dc.headers[i], ": ");
        if (colon == NULL
            || !destination_header_ok(dc.headers[i],
                                      (size_t) (colon - dc.headers[i]),
                                      colon + 2, strlen(colon + 2)))
        {
            abort();            /* a header the rule refuses was taken */
        }
    }

    destination_config_free(&dc);
    free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    exporter_config_t  cfg, copy;
    json_t            *root;
    char               err[512] = "";

    header_list(data, size);

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
