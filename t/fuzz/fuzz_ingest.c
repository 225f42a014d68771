/* libFuzzer target: any datagram through the sidecar's decoder, the
   aggregator, the audit trail's events and the exposition; malformed input
   is counted, never fatal.  What ingest accepts is decoded once more as the
   exporter threads share it (decoded.h): each of its records reaches
   exactly one of them. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"
#include "audit.h"
#include "buf.h"
#include "config.h"
#include "decoded.h"
#include "ingest.h"
#include "metrics.h"
#include "store.h"

static store_t       *store;
static aggregator_t  *agg;
static ingest_t      *in;
static audit_t       *trail;
static decoded_t      view;

/* The records ingest counted, split among three threads, per tenant. */
static void
share(const uint8_t *data, size_t len, size_t records, const uint8_t *over,
    void *unused)
{
    decoded_reader_t  rd;
    size_t            got = 0;
    int               t;

    (void) unused;
    decoded_fill(&view, data, len, over, 3, 1);

    for (t = 0; t < 3; t++) {
        decoded_read(&rd, &view, t);
        while (decoded_next(&rd) != NULL) {
            got++;
        }
    }

    if (got != records) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static config_t  cfg;
    char             err[256];
    buf_t            out = { 0 };
    static int       calls;

    if (in == NULL) {
        char  *argv[] = { "fuzz", "--ingest", "unix:/tmp/unused", NULL };

        config_load(&cfg, 3, argv, err, sizeof(err));
        cfg.n_ingest = 0;
        cfg.max_series = 2000;
        store = store_new(cfg.max_series);
        agg = aggregator_new(store, &cfg);
        in = ingest_open(&cfg, agg, err, sizeof(err));
        decoded_init(&view, 8 * 1024 * 1024);
        ingest_set_datagram_hook(in, share, NULL);

        /* audit events are made (no file: then counted, not written) */
        trail = audit_open(&cfg.audit, err, sizeof(err));
        ingest_set_audit(in, trail);
    }

    ingest_datagram(in, data, size);

    /* the series cap is exact, whatever the records say */
    if (store_size(store) > cfg.max_series) {
        abort();
    }

    if (++calls % 256 == 0) {
        metrics_render(store, EXPO_OPENMETRICS, &out);
        metrics_render(store, EXPO_PROTOBUF, &out);
        buf_free(&out);
    }

    return 0;
}
