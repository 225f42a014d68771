/* One metrics source (see metrics_add_source) rendered as text exposition,
   for the unit tests that read what a part of the sidecar exposes. */

#ifndef OBS_UNIT_EXPO_H
#define OBS_UNIT_EXPO_H

#include "buf.h"
#include "expo.h"
#include "metrics.h"

/* source's families as text 0.0.4 in out, NUL-terminated; the text. */
static const char *
unit_render(metrics_source_pt source, void *data, buf_t *out)
{
    expo_writer_t  w;

    buf_reset(out);
    expo_begin(&w, EXPO_TEXT, out);
    source(&w, data);
    expo_end(&w);
    buf_append(out, "", 1);
    return out->data;
}

#endif
