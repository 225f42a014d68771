/* The sidecar's configuration from a JSON text, for the unit tests that
   need one (test_pushers.c, test_delivery.c). */

#ifndef OBS_UNIT_CONFIG_H
#define OBS_UNIT_CONFIG_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"

/* config_load() over a file holding json; its result. */
static int
unit_config_load(const char *json, config_t *c, char *err, size_t errlen)
{
    char   path[] = "/tmp/obs-unit-XXXXXX";
    char  *argv[] = { "test", "--config", path, NULL };
    FILE  *f;
    int    fd = mkstemp(path), rc;

    f = fdopen(fd, "w");
    fputs(json, f);
    fclose(f);
    rc = config_load(c, 3, argv, err, errlen);
    unlink(path);
    return rc;
}

#endif
