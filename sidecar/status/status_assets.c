/*
 * The status page's files, embedded at build time: the Makefile turns
 * sidecar/status/status.{html,js,css} into byte arrays (build/gen/
 * status_assets.inc), so the page needs nothing but the sidecar and works
 * offline.
 */

#include <string.h>

#include "status.h"
#include "status_assets.inc"

static const struct {
    const char           *path;
    const unsigned char  *data;
    size_t                len;
    const char           *type;
} assets[] = {
    { "/status", status_html, sizeof(status_html),
      "text/html; charset=utf-8" },
    { "/status.js", status_js, sizeof(status_js),
      "text/javascript; charset=utf-8" },
    { "/status.css", status_css, sizeof(status_css),
      "text/css; charset=utf-8" },
};

const char *
status_asset(const char *path, size_t *len, const char **content_type)
{
    size_t  i;

    for (i = 0; i < sizeof(assets) / sizeof(assets[0]); i++) {
        if (strcmp(path, assets[i].path) == 0) {
            *len = assets[i].len;
            *content_type = assets[i].type;
            return (const char *) assets[i].data;
        }
    }

    return NULL;
}
